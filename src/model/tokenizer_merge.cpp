// The merge loop both BPE flavours share (llama.cpp's llm_tokenizer_bpe/spm sessions):
// symbols in a linked list, candidate pairs in a priority queue; a popped pair is stale
// (and skipped) when either side has changed since it was queued.
#include <queue>

#include "tokenizer_impl.h"
#include "tokenizer_unicode.h"

namespace tq {
namespace {

struct Symbol {
  size_t offset;  // into the word
  size_t length;  // 0 once merged into its left neighbour
  int prev;
  int next;
};

struct Candidate {
  double priority;
  int left;
  int right;
  size_t length;  // left.length + right.length when queued
};

struct Lower {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.priority != b.priority) return a.priority < b.priority;
    return a.left > b.left;  // on ties the leftmost pair comes first
  }
};

}  // namespace

std::vector<std::string_view> merge_symbols(std::string_view word, const MergePriority& priority) {
  std::vector<Symbol> sym;
  for (size_t i = 0; i < word.size();) {
    // A malformed sequence is split byte by byte so it cannot swallow the next character.
    size_t n = std::min(unicode::utf8_length(static_cast<uint8_t>(word[i])), word.size() - i);
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(word[i + k]) & 0xc0) != 0x80) n = 1;
    }
    const int index = static_cast<int>(sym.size());
    sym.push_back({i, n, index - 1, index + 1});
    i += n;
  }
  if (!sym.empty()) sym.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, Lower> queue;
  const auto text = [&](int k) { return word.substr(sym[k].offset, sym[k].length); };
  const auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    if (auto p = priority(text(left), text(right))) queue.push({*p, left, right, sym[left].length + sym[right].length});
  };
  for (int k = 0; k + 1 < static_cast<int>(sym.size()); ++k) consider(k, k + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = sym[c.left];
    Symbol& r = sym[c.right];
    if (l.length == 0 || r.length == 0 || l.next != c.right || l.length + r.length != c.length) continue;
    l.length += r.length;
    r.length = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }

  std::vector<std::string_view> out;
  for (int k = sym.empty() ? -1 : 0; k >= 0; k = sym[k].next) out.push_back(text(k));
  return out;
}

}  // namespace tq
