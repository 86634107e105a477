#pragma once
// Reading a model's configuration and weights out of an open GGUF file.
#include "turboquant/gguf.h"
#include "turboquant/model.h"
#include "model_weights.h"

namespace tq::model {

// Architecture facts from the metadata; throws tq::Error for an unsupported
// architecture, head size or RoPE scaling, or inconsistent dimensions.
ModelConfig read_model_config(const gguf::GgufFile& file);

// Every tensor the architecture needs, dequantized to f32 and checked for shape and
// finiteness; throws tq::Error naming the tensor otherwise.
ModelWeights load_weights(const gguf::GgufFile& file, const ModelConfig& config);

}  // namespace tq::model
