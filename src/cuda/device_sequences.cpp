// DeviceSequences: the host-side page table of a DeviceKvCache (cuda_model.h).
#include <algorithm>
#include <string>

#include "turboquant/cuda_model.h"
#include "turboquant/error.h"

namespace tq::cuda {

DeviceSequences::DeviceSequences(const DeviceKvCache& cache) : block_tokens_(cache.config().block_tokens) {
  // Taken from the back: block 0 first.
  for (int b = cache.num_blocks() - 1; b >= 0; --b) free_.push_back(b);
}

const DeviceSequences::Seq& DeviceSequences::at(int seq) const {
  if (!has_sequence(seq)) throw Error("DeviceSequences: no live sequence " + std::to_string(seq));
  return seqs_[seq];
}

DeviceSequences::Seq& DeviceSequences::at(int seq) {
  return const_cast<Seq&>(static_cast<const DeviceSequences&>(*this).at(seq));
}

int DeviceSequences::add_sequence() {
  auto it = std::find_if(seqs_.begin(), seqs_.end(), [](const Seq& s) { return !s.live; });
  const int id = static_cast<int>(it - seqs_.begin());
  // Sequence ids index the sink store (one row per block), as in quantize_on_write.
  const int limit = static_cast<int>(free_.size()) +
                    static_cast<int>(std::count_if(seqs_.begin(), seqs_.end(), [](const Seq& s) { return s.live; }));
  if (id >= limit) throw Error("DeviceSequences: every sequence id of the pool is in use");
  if (it == seqs_.end()) seqs_.emplace_back();
  seqs_[id] = Seq{true, 0, {}};
  return id;
}

void DeviceSequences::remove_sequence(int seq) {
  Seq& s = at(seq);
  free_.insert(free_.end(), s.blocks.rbegin(), s.blocks.rend());
  s = Seq{};
}

bool DeviceSequences::has_sequence(int seq) const {
  return seq >= 0 && seq < static_cast<int>(seqs_.size()) && seqs_[seq].live;
}

int DeviceSequences::length(int seq) const { return at(seq).length; }

const std::vector<int32_t>& DeviceSequences::blocks(int seq) const { return at(seq).blocks; }

void DeviceSequences::reserve(int seq, int n) {
  Seq& s = at(seq);
  if (n < 0) throw Error("DeviceSequences: cannot reserve " + std::to_string(n) + " tokens");
  const size_t need = static_cast<size_t>((s.length + n + block_tokens_ - 1) / block_tokens_);
  if (need <= s.blocks.size()) return;
  const size_t more = need - s.blocks.size();
  if (more > free_.size())
    throw Error("the device KV cache is full: sequence " + std::to_string(seq) + " needs " + std::to_string(more) +
                " more blocks of " + std::to_string(block_tokens_) + " tokens, " + std::to_string(free_.size()) +
                " are free (raise the cache's max_tokens)");
  for (size_t i = 0; i < more; ++i) {
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
}

void DeviceSequences::advance(int seq, int n) {
  Seq& s = at(seq);
  if (n < 0 || static_cast<size_t>(s.length + n) > s.blocks.size() * block_tokens_)
    throw Error("DeviceSequences: advancing sequence " + std::to_string(seq) + " by " + std::to_string(n) +
                " tokens past its reserved blocks");
  s.length += n;
}

}  // namespace tq::cuda
