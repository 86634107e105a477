// Tokenizers on tiny vocabularies written with GgufWriter (always run): pre-tokenizer
// splits, merge order, byte fallback, special tokens, round trips, chat formats, errors.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tiny_tokenizers.h"
#include "tokenizer_pretokenize.h"
#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/tokenizer.h"

namespace tq {
namespace {

using Pieces = std::vector<std::string_view>;

// ---------------------------------------------------------------- pre-tokenizers

TEST(Pretokenize, Gpt2Rules) {
  using pretok::Kind;
  EXPECT_EQ(pretok::split(Kind::kGpt2, "Hello world"), (Pieces{"Hello", " world"}));
  // \s+(?!\S): a run of spaces leaves its last space to the next word.
  EXPECT_EQ(pretok::split(Kind::kGpt2, "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(pretok::split(Kind::kGpt2, "a  "), (Pieces{"a", "  "}));  // at the end: all of it
  EXPECT_EQ(pretok::split(Kind::kGpt2, "I'm don't"), (Pieces{"I", "'m", " don", "'t"}));
  EXPECT_EQ(pretok::split(Kind::kGpt2, "IT'S"), (Pieces{"IT", "'", "S"}));  // case-sensitive contractions
  EXPECT_EQ(pretok::split(Kind::kGpt2, "x=12+34"), (Pieces{"x", "=", "12", "+", "34"}));
  EXPECT_EQ(pretok::split(Kind::kGpt2, "hi!!! ok"), (Pieces{"hi", "!!!", " ok"}));
  EXPECT_EQ(pretok::split(Kind::kGpt2, "a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
  EXPECT_EQ(pretok::split(Kind::kGpt2, "naïve 日本語 🙂"), (Pieces{"naïve", " 日本語", " 🙂"}));
  EXPECT_EQ(pretok::split(Kind::kGpt2, ""), Pieces{});
}

TEST(Pretokenize, SmolLMSplitsEveryDigit) {
  using pretok::Kind;
  EXPECT_EQ(pretok::split(Kind::kSmolLM, "a123 b"), (Pieces{"a", "1", "2", "3", " b"}));
  // The space before a number is a piece of its own: the digit split comes first.
  EXPECT_EQ(pretok::split(Kind::kSmolLM, "have 42"), (Pieces{"have", " ", "4", "2"}));
  EXPECT_EQ(pretok::split(Kind::kSmolLM, "3.14"), (Pieces{"3", ".", "1", "4"}));
  EXPECT_EQ(pretok::split(Kind::kSmolLM, "x²"), (Pieces{"x", "²"}));  // ² is \p{N}
}

TEST(Pretokenize, Llama3AndQwen2) {
  using pretok::Kind;
  EXPECT_EQ(pretok::split(Kind::kLlama3, "12345"), (Pieces{"123", "45"}));
  EXPECT_EQ(pretok::split(Kind::kQwen2, "123"), (Pieces{"1", "2", "3"}));
  EXPECT_EQ(pretok::split(Kind::kLlama3, "IT'S ok"), (Pieces{"IT", "'S", " ok"}));  // case-insensitive
  EXPECT_EQ(pretok::split(Kind::kLlama3, "(hello)"), (Pieces{"(hello", ")"}));     // one non-letter may lead
  EXPECT_EQ(pretok::split(Kind::kLlama3, "a \n\n b"), (Pieces{"a", " \n\n", " b"}));
  EXPECT_EQ(pretok::split(Kind::kLlama3, "x;\n"), (Pieces{"x", ";\n"}));
}

TEST(Pretokenize, PiecesCoverTheText) {
  std::mt19937 rng(3);
  const std::vector<std::string> alphabet = {"a", "Z", " ", "  ", "\n", "\t", "7", "'", "s", "é", "日", "🙂", "!", "\xff", "\xc3"};
  for (auto kind : {pretok::Kind::kGpt2, pretok::Kind::kSmolLM, pretok::Kind::kLlama3, pretok::Kind::kQwen2}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::string text;
      const int n = static_cast<int>(rng() % 20);
      for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
      std::string joined;
      for (std::string_view p : pretok::split(kind, text)) {
        EXPECT_FALSE(p.empty());
        joined += p;
      }
      EXPECT_EQ(joined, text);
    }
  }
}

// ---------------------------------------------------------------- byte-level BPE

// GPT-2's byte → code point map for the bytes these tests use, written out: printable
// ASCII maps to itself, space (0x20) to U+0120 'Ġ', newline (0x0A) to U+010A 'Ċ'.
constexpr const char* kSpace = "\xc4\xa0";  // Ġ

// Vocabulary: ids 0..2 specials, then single characters, then merge results.
gguf::GgufWriter tiny_bpe_writer(const std::string& pre = "smollm") {
  gguf::GgufWriter w;
  std::vector<std::string> tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  std::vector<int32_t> types = {3, 3, 3};
  for (const char* c : {"a", "b", "c", "1", "2", "!", kSpace, "\xc4\x8a" /* Ċ */}) {
    tokens.push_back(c);
    types.push_back(1);
  }
  // Merges, by rank: "b c" first, then "a b", "Ġ a", "ab c" is not a merge.
  const std::vector<std::string> merges = {"b c", "a b", std::string(kSpace) + " a", std::string(kSpace) + "a bc"};
  for (const std::string& m : std::vector<std::string>{"bc", "ab", std::string(kSpace) + "a", std::string(kSpace) + "abc"}) {
    tokens.push_back(m);
    types.push_back(1);
  }
  test::add_bpe_tokenizer(w, pre, tokens, types, merges);
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  w.add_string("tokenizer.chat_template",
               "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
               "{{ '<|im_start|>system\nYou are tiny.<|im_end|>\n' }}{% endif %}"
               "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}");
  return w;
}

Tokenizer tokenizer_of(const gguf::GgufWriter& w) { return Tokenizer::from_gguf(gguf::GgufFile::from_memory(w.bytes())); }

TEST(TokenizerBpe, MergesByRank) {
  const Tokenizer t = tokenizer_of(tiny_bpe_writer());
  const int32_t a = 3, c = 5, one = 6, two = 7, bang = 8, sp = 9, bc = 11, ab = 12, sp_a = 13;
  // "abc": "b c" (rank 0) beats "a b" (rank 1), and "a bc" is no merge: a + bc.
  EXPECT_EQ(t.encode("abc", false), (std::vector<int32_t>{a, bc}));
  EXPECT_EQ(t.encode("ab", false), (std::vector<int32_t>{ab}));
  // " abc": "b c" first, then "Ġ a", then "Ġa bc" → one token.
  EXPECT_EQ(t.encode(" abc", false), (std::vector<int32_t>{14}));
  // " ab": "a b" (rank 1) beats "Ġ a" (rank 2), and "Ġ ab" is no merge.
  EXPECT_EQ(t.encode(" ab", false), (std::vector<int32_t>{sp, ab}));
  EXPECT_EQ(t.encode(" a", false), (std::vector<int32_t>{sp_a}));
  EXPECT_EQ(t.encode("c!12", false), (std::vector<int32_t>{c, bang, one, two}));
  EXPECT_EQ(t.encode(" 1", false), (std::vector<int32_t>{sp, one}));
  EXPECT_EQ(t.vocab_size(), 15);
}

TEST(TokenizerBpe, SpecialTokensAndRoundTrip) {
  const Tokenizer t = tokenizer_of(tiny_bpe_writer());
  EXPECT_EQ(t.encode("<|im_start|>ab<|im_end|>", false), (std::vector<int32_t>{1, 12, 2}));
  EXPECT_EQ(t.encode("ab", true), (std::vector<int32_t>{1, 12}));  // bos = <|im_start|> here
  EXPECT_EQ(t.bos(), 1);
  EXPECT_EQ(t.eos(), 2);
  EXPECT_FALSE(t.add_bos_default());
  EXPECT_TRUE(t.is_eog(2));
  EXPECT_TRUE(t.is_eog(0));  // <|endoftext|> is a control token of the EOG list
  EXPECT_FALSE(t.is_eog(1));
  EXPECT_TRUE(t.is_control(1));
  EXPECT_FALSE(t.is_control(3));
  EXPECT_EQ(t.token_text(9), " ");
  EXPECT_EQ(t.token_text(10), "\n");
  EXPECT_EQ(t.token_text(2), "<|im_end|>");
  EXPECT_EQ(t.piece(9), kSpace);
  EXPECT_EQ(t.find_piece("ab"), 12);
  EXPECT_EQ(t.find_piece("zz"), -1);
  for (const std::string s : {"abc abc", "  a\nb", "<|im_start|>a<|im_end|>", "cab!21", ""}) {
    EXPECT_EQ(t.decode(t.encode(s, false)), s) << s;
  }
  EXPECT_THROW(t.token_text(15), Error);
  EXPECT_THROW(t.token_text(-1), Error);
}

TEST(TokenizerBpe, ChatMLWithDefaultSystem) {
  const Tokenizer t = tokenizer_of(tiny_bpe_writer());
  ASSERT_TRUE(t.has_chat_template());
  EXPECT_EQ(t.format_chat({{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are tiny.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.format_chat({{"system", "S"}, {"user", "Hi"}, {"assistant", "Yo"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n");
}

TEST(TokenizerBpe, Errors) {
  {
    gguf::GgufWriter w = tiny_bpe_writer("no-such-pre");
    try {
      tokenizer_of(w);
      ADD_FAILURE() << "unknown pre-tokenizer accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("no-such-pre"), std::string::npos) << e.what();
    }
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", "gpt-2");
    w.add_string_array("tokenizer.ggml.tokens", {"a"});
    EXPECT_THROW(tokenizer_of(w), Error);  // no merges
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", "gpt-2");
    w.add_string_array("tokenizer.ggml.tokens", {"a"});
    w.add_string_array("tokenizer.ggml.merges", {});
    w.add_uint32("tokenizer.ggml.bos_token_id", 5);
    EXPECT_THROW(tokenizer_of(w), Error);  // bos outside the vocabulary
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "bert");
    w.add_string_array("tokenizer.ggml.tokens", {"a"});
    EXPECT_THROW(tokenizer_of(w), Error);
  }
  EXPECT_THROW(tokenizer_of(gguf::GgufWriter()), Error);  // no tokenizer at all
}

// ---------------------------------------------------------------- SentencePiece BPE

constexpr const char* kMarker = "\xe2\x96\x81";  // ▁

gguf::GgufWriter tiny_spm_writer(bool add_space_prefix, bool chat) {
  const std::string m = kMarker;
  // id: piece, score, type
  struct P {
    std::string piece;
    float score;
    int32_t type;
  };
  std::vector<P> v = {
      {"<pad>", 0, 3}, {"<eos>", 0, 3}, {"<bos>", 0, 3}, {"<unk>", 0, 2},                 // 0..3
      {"<start_of_turn>", 0, 3}, {"<end_of_turn>", 0, 3}, {"\n", 0, 4}, {"\n\n", 0, 4},  // 4..7
      {"<0x0A>", 0, 6}, {"<0xC3>", 0, 6}, {"<0xA9>", 0, 6}, {"<0x21>", 0, 6},           // 8..11
      {m, -10, 1}, {"a", -1, 1}, {"b", -1, 1}, {"c", -1, 1},                           // 12..15
      {"ab", -5, 1}, {"bc", -3, 1}, {m + "a", -2, 1}, {m + "ab", -4, 1}, {"abc", -6, 1},  // 16..20
  };
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (const P& p : v) {
    pieces.push_back(p.piece);
    scores.push_back(p.score);
    types.push_back(p.type);
  }
  gguf::GgufWriter w;
  test::add_spm_tokenizer(w, pieces, scores, types, 2, 1, 3);
  w.add_string("tokenizer.ggml.pre", "default");
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_bool("tokenizer.ggml.add_space_prefix", add_space_prefix);
  if (chat) {
    w.add_string("tokenizer.chat_template",
                 "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\n' + "
                 "message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}");
  }
  return w;
}

TEST(TokenizerSpm, MergesByScore) {
  const Tokenizer t = tokenizer_of(tiny_spm_writer(false, false));
  // "abc": candidates ab (−5), bc (−3): bc wins; then "a"+"bc" = "abc" (−6) merges.
  EXPECT_EQ(t.encode("abc", false), (std::vector<int32_t>{20}));
  // " ab": ▁a (−2) beats ab (−5); then ▁a + b = ▁ab (−4).
  EXPECT_EQ(t.encode(" ab", false), (std::vector<int32_t>{19}));
  // "ab ": no prefix space; ▁ alone at the end.
  EXPECT_EQ(t.encode("ab ", false), (std::vector<int32_t>{16, 12}));
  EXPECT_EQ(t.encode("ab", true), (std::vector<int32_t>{2, 16}));
  EXPECT_TRUE(t.add_bos_default());
}

TEST(TokenizerSpm, ByteFallbackSpecialsAndRoundTrip) {
  const Tokenizer t = tokenizer_of(tiny_spm_writer(false, true));
  // "é" = C3 A9 has no piece: two byte tokens. "!" has its byte token. "z" has none: <unk>.
  EXPECT_EQ(t.encode("aé!", false), (std::vector<int32_t>{13, 9, 10, 11}));
  EXPECT_EQ(t.encode("z", false), (std::vector<int32_t>{3}));
  // User-defined "\n\n" and control tokens are matched in the text, longest first.
  EXPECT_EQ(t.encode("a\n\n\nb", false), (std::vector<int32_t>{13, 7, 6, 14}));
  EXPECT_EQ(t.encode("<start_of_turn>ab<end_of_turn>", false), (std::vector<int32_t>{4, 16, 5}));
  EXPECT_EQ(t.token_text(12), " ");
  EXPECT_EQ(t.token_text(19), " ab");
  EXPECT_EQ(t.token_text(9), "\xc3");
  EXPECT_EQ(t.token_text(4), "<start_of_turn>");
  EXPECT_TRUE(t.is_eog(1));
  EXPECT_TRUE(t.is_eog(5));  // <end_of_turn>
  for (const std::string s : {"ab abc", " a b c ", "aé!\n\nb", "<start_of_turn>ab\nab<end_of_turn>\n"}) {
    EXPECT_EQ(t.decode(t.encode(s, false)), s) << s;
  }
  EXPECT_EQ(t.format_chat({{"system", "Be brief."}, {"user", "  hi  "}, {"assistant", "ok"}}, true),
            "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\nok<end_of_turn>\n<start_of_turn>model\n");
}

TEST(TokenizerSpm, SpacePrefix) {
  const Tokenizer t = tokenizer_of(tiny_spm_writer(true, false));
  // A space is added in front of the text and after each special token.
  EXPECT_EQ(t.encode("ab", false), (std::vector<int32_t>{19}));
  EXPECT_EQ(t.encode("ab<end_of_turn>ab", false), (std::vector<int32_t>{19, 5, 19}));
  for (const std::string s : {"ab", " ab", "a b"}) EXPECT_EQ(t.decode(t.encode(s, false)), s) << s;
  // Regression (fuzz/tokenizer_fuzz.cpp): the space added after a special token in the
  // middle of the text came back out of decode. "\n" is a user-defined token here, so
  // it splits too.
  for (const std::string s : {"ab<end_of_turn>ab", "<start_of_turn>a\nb<end_of_turn>", " <end_of_turn> a",
                              "<start_of_turn><end_of_turn>\n\n c"})
    EXPECT_EQ(t.decode(t.encode(s, false)), s) << s;
  EXPECT_EQ(t.decode(t.encode("ab", true)), "<bos>ab");
  EXPECT_THROW(t.format_chat({{"user", "x"}}, true), Error);  // no chat template
}

// The exact input with which fuzz/tokenizer_fuzz.cpp found the space after a special
// token surviving decode, on the fuzzer's own SentencePiece vocabulary.
TEST(TokenizerSpm, FuzzFoundRoundTrip) {
  gguf::GgufWriter w;
  test::add_tiny_spm_tokenizer(w, {{kMarker, 1}, {"<start_of_turn>", 3}, {"<end_of_turn>", 3}});
  const Tokenizer t = tokenizer_of(w);
  const std::string found = "<start_of_turn>user\nthe<end_of_turn>";
  const std::vector<int32_t> ids = t.encode(found, false);
  ASSERT_EQ(ids.front(), t.find_piece("<start_of_turn>"));
  EXPECT_EQ(t.token_text(ids[1])[0], ' ');  // the encoder's space after the special token
  EXPECT_EQ(t.decode(ids), found);
}

TEST(TokenizerSpm, InconsistentVocabulary) {
  gguf::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  w.add_float_array("tokenizer.ggml.scores", {0.0f});
  EXPECT_THROW(tokenizer_of(w), Error);
  gguf::GgufWriter w2;
  w2.add_string("tokenizer.ggml.model", "llama");
  w2.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  w2.add_int_array("tokenizer.ggml.token_type", {1, 9});
  EXPECT_THROW(tokenizer_of(w2), Error);
}

}  // namespace
}  // namespace tq
