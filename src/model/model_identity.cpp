// The identity a session records for its model file: size + hash of everything before
// the tensor data. Reading only that prefix keeps the check fast enough to run before
// the model itself is loaded.
#include <fstream>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/model.h"

namespace tq {

ModelIdentity model_identity(const std::string& gguf_path) {
  const gguf::GgufFile f = gguf::GgufFile::open(gguf_path);
  std::vector<uint8_t> head(static_cast<size_t>(f.data_offset()));
  std::ifstream in(gguf_path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size())))
    throw Error("cannot read the header of " + gguf_path);
  return identify_model(f.file_size(), head);
}

}  // namespace tq
