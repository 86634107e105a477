#pragma once
// Reading a model's configuration and weights out of an open GGUF file.
#include <memory>

#include "turboquant/gguf.h"
#include "turboquant/model.h"
#include "model_weights.h"

namespace tq::model {

// Architecture facts from the metadata; throws tq::Error for an unsupported
// architecture, head size or RoPE scaling, or inconsistent dimensions.
ModelConfig read_model_config(const gguf::GgufFile& file);

// Every tensor the architecture needs, checked for shape, type and finiteness; throws
// tq::Error naming the tensor otherwise. Matrices view `file` (kept alive by the result)
// in their stored type, or are dequantized to f32 copies for WeightFormat::f32.
ModelWeights load_weights(std::shared_ptr<const gguf::GgufFile> file, const ModelConfig& config, WeightFormat format);

}  // namespace tq::model
