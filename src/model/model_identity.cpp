// The identity a session records for its model file: size + hash of everything before
// the tensor data and of 16 evenly spaced 64 KiB samples of the data. The header alone
// is the same for two fine-tunes of one architecture; the samples tell them apart while
// reading at most ~1 MiB, so the check runs before the model itself is loaded.
#include <algorithm>
#include <fstream>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/model.h"

namespace tq {

ModelIdentity model_identity(const std::string& gguf_path) {
  constexpr uint64_t kSamples = 16, kSampleBytes = 64 * 1024;
  const gguf::GgufFile f = gguf::GgufFile::open(gguf_path);
  const uint64_t head = f.data_offset(), size = f.file_size();
  std::ifstream in(gguf_path, std::ios::binary);
  std::vector<uint8_t> bytes;
  auto read_at = [&](uint64_t offset, uint64_t n) {
    const size_t at = bytes.size();
    bytes.resize(at + n);
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(reinterpret_cast<char*>(bytes.data() + at), static_cast<std::streamsize>(n)))
      throw Error("cannot read " + std::to_string(n) + " bytes at offset " + std::to_string(offset) + " of " +
                  gguf_path);
  };
  read_at(0, head);
  const uint64_t data = size - std::min(size, head);
  if (data <= kSamples * kSampleBytes) {
    read_at(head, data);
  } else {
    for (uint64_t i = 0; i < kSamples; ++i) read_at(head + (data - kSampleBytes) * i / (kSamples - 1), kSampleBytes);
  }
  return identify_model(size, bytes);
}

}  // namespace tq
