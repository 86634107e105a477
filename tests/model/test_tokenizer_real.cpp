// Tokenizers of the two real models (skipped when scripts/setup_models.sh has not run):
// token ids of varied strings against independent implementations given the same GGUF
// vocabulary (scripts/reference_tokens.py: Hugging Face `tokenizers` for SmolLM2's
// byte-level BPE, `sentencepiece` BPE for Gemma 3), round trips, special tokens and the
// chat formats.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "test_gguf_models.h"
#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/tokenizer.h"

namespace tq {
namespace {

using Ids = std::vector<int32_t>;
struct Reference {
  std::string text;
  Ids ids;
};

// scripts/reference_tokens.py on smollm2-135m-instruct-q4_1.gguf.
const std::vector<Reference> kSmolLM2 = {
    {"Hello world", {19556, 905}},
    {"Hello, world! How are you?", {19556, 28, 905, 17, 1073, 359, 346, 47}},
    {" leading space", {2899, 1898}},
    {"trailing space ", {4861, 4966, 1898, 216}},
    {"two  spaces and   three", {11355, 216, 5600, 284, 256, 1296}},
    {"tabs\tand\nnewlines\n\nend", {100, 7366, 197, 397, 198, 2241, 5110, 198, 198, 486}},
    {"I have 12345 apples and 3.14 pies.", {57, 457, 216, 33, 34, 35, 36, 37, 13855, 284, 216, 35, 30, 33, 36, 42801, 30}},
    {"don't won't I'm we'll they've she'd it's", {12420, 982, 3763, 982, 339, 5248, 392, 3060, 502, 3543, 1041, 6737, 357, 506}},
    {"CAPS'S and Mixed'Ll", {33467, 67, 23, 67, 284, 34326, 23, 60, 92}},
    {"naïve café résumé", {3546, 46494, 37366, 412, 2756, 5422, 2756}},
    {"日本語のテキスト", {23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226}},
    {"Привет, мир", {155, 249, 46879, 16464, 32547, 28, 41337, 7872, 9175}},
    {"emoji 🙂👍🏽 done", {391, 33777, 47526, 10813, 235, 231, 10813, 233, 138, 2294}},
    {"x = a*b + (c/d) - e^2; // comment", {104, 446, 253, 26, 82, 1232, 365, 83, 31, 84, 25, 731, 297, 78, 34, 43, 13241, 5189}},
    {"def f(x):\n    return x + 1\n", {1604, 275, 24, 104, 727, 472, 1003, 1792, 1232, 216, 33, 198}},
    {"http://example.com/path?q=1&r=2", {5031, 1742, 7434, 30, 824, 31, 1537, 47, 97, 45, 33, 22, 98, 45, 34}},
    {"   ", {333}},
    {"\n", {198}},
    {"a", {81}},
    {"", {}},
};

// scripts/reference_tokens.py on gemma-3-270m-q4_k_m.gguf. Strings with runs of spaces are
// checked separately below: Gemma's vocabulary holds them as user-defined tokens, which
// llama.cpp (and Hugging Face's added-token matching) take from the raw text before
// SentencePiece runs, while the sentencepiece library only matches them after escaping.
const std::vector<Reference> kGemma3 = {
    {"Hello world", {9259, 1902}},
    {"Hello, world! How are you?", {9259, 236764, 1902, 236888, 2088, 659, 611, 236881}},
    {" leading space", {5830, 2557}},
    {"trailing space ", {136697, 2557, 236743}},
    {"tabs\tand\nnewlines\n\nend", {39218, 255968, 624, 107, 208697, 108, 643}},
    {"I have 12345 apples and 3.14 pies.", {236777, 735, 236743, 236770, 236778, 236800, 236812, 236810, 36157, 532, 236743, 236800, 236761, 236770, 236812, 46393, 236761}},
    {"don't won't I'm we'll they've she'd it's", {13246, 236789, 236745, 2810, 236789, 236745, 564, 236789, 236757, 692, 236789, 859, 901, 236789, 560, 1304, 236789, 236753, 625, 236789, 236751}},
    {"CAPS'S and Mixed'Ll", {31832, 236773, 236789, 236773, 532, 65371, 236789, 148194}},
    {"naïve café résumé", {1789, 238527, 560, 33443, 118515}},
    {"日本語のテキスト", {94951, 236945, 95830}},
    {"Привет, мир", {116130, 236764, 58562}},
    {"emoji 🙂👍🏽 done", {67906, 57235, 240493, 242713, 3028}},
    {"x = a*b + (c/d) - e^2; // comment", {236781, 578, 496, 236829, 236763, 900, 568, 236755, 236786, 236753, 236768, 753, 545, 236884, 236778, 236793, 973, 5739}},
    {"http://example.com/path?q=1&r=2", {2855, 1411, 8358, 236761, 854, 236786, 2337, 236881, 236809, 236784, 236770, 236880, 236750, 236784, 236778}},
    {"\n", {107}},
    {"a", {236746}},
    {"", {}},
};

// Strings for round trips beyond the reference list.
const std::vector<std::string> kRoundTrip = {
    "The quick brown fox jumps over the lazy dog.",
    "  multiple   spaces\t\ttabs\n\n\nnewlines  ",
    "Numbers: 0 1 22 333 4444 55555 3.14159 -42 1e10 ١٢٣",
    "Ünïcödé: 中文, 한국어, العربية, עברית, हिन्दी, 😀🎉👨‍👩‍👧",
    "Code: for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "Quotes 'single' \"double\" `back` «guillemets»",
    "\x80\xe9 invalid UTF-8 \xc3 bytes",
};

class RealTokenizer : public ::testing::Test {
 protected:
  static Tokenizer load(const std::string& path) { return Tokenizer::from_gguf(gguf::GgufFile::open(path)); }
};

TEST_F(RealTokenizer, SmolLM2ReferenceIds) {
  const std::string path = testing::real_model_path(testing::kSmolLM2File);
  TQ_SKIP_IF_NO_MODEL(path, testing::kSmolLM2File);
  const Tokenizer t = load(path);
  EXPECT_EQ(t.model(), "gpt2");
  EXPECT_EQ(t.pre(), "smollm");
  EXPECT_EQ(t.vocab_size(), 49152);
  for (const Reference& r : kSmolLM2) {
    EXPECT_EQ(t.encode(r.text, false), r.ids) << "text: " << r.text;
    EXPECT_EQ(t.decode(r.ids), r.text);
  }
  for (const std::string& s : kRoundTrip) EXPECT_EQ(t.decode(t.encode(s, false)), s) << s;
  // Bytes whose byte-level character is not in the vocabulary (0xFF here) are dropped.
  EXPECT_EQ(t.encode("a\xff", false), t.encode("a", false));
}

TEST_F(RealTokenizer, SmolLM2SpecialsAndChat) {
  const std::string path = testing::real_model_path(testing::kSmolLM2File);
  TQ_SKIP_IF_NO_MODEL(path, testing::kSmolLM2File);
  const Tokenizer t = load(path);
  const int32_t im_start = t.find_piece("<|im_start|>"), im_end = t.find_piece("<|im_end|>");
  ASSERT_EQ(im_start, 1);
  ASSERT_EQ(im_end, 2);
  EXPECT_EQ(t.eos(), im_end);
  EXPECT_TRUE(t.is_eog(im_end));
  EXPECT_TRUE(t.is_eog(t.find_piece("<|endoftext|>")));
  EXPECT_FALSE(t.add_bos_default());
  // Specials are single ids wherever they appear, and the text around them is encoded alone.
  const Ids hello = t.encode("Hello world", false);
  Ids expected = {im_start};
  const Ids user = t.encode("user\nHello world", false);
  expected.insert(expected.end(), user.begin(), user.end());
  expected.push_back(im_end);
  EXPECT_EQ(t.encode("<|im_start|>user\nHello world<|im_end|>", false), expected);
  EXPECT_EQ(t.token_text(im_end), "<|im_end|>");

  const std::string prompt = t.format_chat({{"user", "What is 2+2?"}}, true);
  EXPECT_EQ(prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  const Ids ids = t.encode(prompt, false);
  EXPECT_EQ(ids.front(), im_start);
  EXPECT_EQ(t.decode(ids), prompt);
}

TEST_F(RealTokenizer, Gemma3ReferenceIds) {
  const std::string path = testing::real_model_path(testing::kGemma3File);
  TQ_SKIP_IF_NO_MODEL(path, testing::kGemma3File);
  const Tokenizer t = load(path);
  EXPECT_EQ(t.model(), "llama");
  EXPECT_EQ(t.vocab_size(), 262144);
  for (const Reference& r : kGemma3) {
    EXPECT_EQ(t.encode(r.text, false), r.ids) << "text: " << r.text;
    EXPECT_EQ(t.decode(r.ids), r.text);
  }
  // Runs of spaces: user-defined tokens ("  ", "   ", ...) taken from the raw text first.
  const auto id = [&](const char* piece) {
    const int32_t i = t.find_piece(piece);
    EXPECT_GE(i, 0) << "no piece " << piece;
    return i;
  };
  EXPECT_EQ(t.encode("   ", false), (Ids{id("   ")}));
  EXPECT_EQ(t.encode("two  spaces and   three", false),
            (Ids{id("two"), id("  "), id("spaces"), id("\xe2\x96\x81" "and"), id("   "), id("three")}));
  EXPECT_EQ(t.encode("\n    return", false), (Ids{id("\n"), id("    "), id("return")}));
  for (const std::string& s : kRoundTrip) EXPECT_EQ(t.decode(t.encode(s, false)), s) << s;
}

TEST_F(RealTokenizer, Gemma3SpecialsAndNoChatTemplate) {
  const std::string path = testing::real_model_path(testing::kGemma3File);
  TQ_SKIP_IF_NO_MODEL(path, testing::kGemma3File);
  const Tokenizer t = load(path);
  EXPECT_EQ(t.bos(), 2);
  EXPECT_EQ(t.eos(), 1);
  EXPECT_TRUE(t.add_bos_default());
  const int32_t sot = t.find_piece("<start_of_turn>"), eot = t.find_piece("<end_of_turn>");
  ASSERT_EQ(sot, 105);
  ASSERT_EQ(eot, 106);
  EXPECT_TRUE(t.is_eog(eot));
  EXPECT_TRUE(t.is_eog(t.eos()));
  EXPECT_FALSE(t.is_eog(sot));
  EXPECT_EQ(t.encode("Hello world", true), (Ids{2, 9259, 1902}));
  EXPECT_EQ(t.encode("<start_of_turn>user\nHi<end_of_turn>", false),
            (Ids{sot, t.find_piece("user"), t.find_piece("\n"), t.find_piece("Hi"), eot}));
  // Bytes outside the vocabulary fall back to <0xXX> tokens.
  EXPECT_EQ(t.encode("\xff", false), (Ids{t.find_piece("<0xFF>")}));
  const std::string invalid = "\xff\xfe\xc3 x";  // a malformed lead byte must not swallow the space
  EXPECT_EQ(t.decode(t.encode(invalid, false)), invalid);
  // The base model's GGUF carries no chat template.
  EXPECT_FALSE(t.has_chat_template());
  EXPECT_THROW(t.format_chat({{"user", "hi"}}, true), Error);
}

}  // namespace
}  // namespace tq
