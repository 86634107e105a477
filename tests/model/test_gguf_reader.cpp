// The GGUF reader on files written by GgufWriter and on hand-broken bytes: every metadata
// kind reads back, and each kind of damage gives a tq::Error that names it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "test_gguf_models.h"
#include "turboquant/error.h"
#include "turboquant/gguf.h"

namespace tq::gguf {
namespace {

// Expects `f` to throw a tq::Error whose message contains `needle`.
template <typename F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

GgufWriter sample_writer() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_uint32("llama.block_count", 3);
  w.add_int("big", -5000000000LL);
  w.add_int32("neg", -7);
  w.add_float("llama.rope.freq_base", 10000.5f);
  w.add_bool("flag", true);
  w.add_string_array("tokenizer.ggml.tokens", {"a", "", "ü\n"});
  w.add_float_array("scores", {0.5f, -1.0f});
  w.add_int_array("types", {1, 3, 6});
  std::vector<float> m(64 * 3);
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<float>(i) * 0.25f - 10.0f;
  w.add_tensor_f32("w", {64, 3}, m);
  w.add_tensor_quantized("q", {32, 2}, GgmlType::Q8_0, std::vector<float>(m.begin(), m.begin() + 64));
  w.add_tensor_f32("v", {5}, {1, 2, 3, 4, 5});
  return w;
}

TEST(GgufReader, MetadataRoundTrip) {
  const GgufFile f = GgufFile::from_memory(sample_writer().bytes());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 3);
  EXPECT_EQ(f.get_int("big"), -5000000000LL);
  EXPECT_EQ(f.get_int("neg"), -7);
  EXPECT_EQ(f.get_int("missing", 42), 42);
  EXPECT_FLOAT_EQ(f.get_float("llama.rope.freq_base"), 10000.5);
  EXPECT_DOUBLE_EQ(f.get_float("llama.block_count"), 3.0);  // integers read as numbers
  EXPECT_EQ(f.get_float("missing", 1.5), 1.5);
  EXPECT_TRUE(f.get_bool("flag"));
  EXPECT_FALSE(f.get_bool("missing", false));
  EXPECT_EQ(f.get_string("missing", "dflt"), "dflt");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"), (std::vector<std::string>{"a", "", "ü\n"}));
  EXPECT_EQ(f.get_float_array("scores"), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(f.get_int_array("types"), (std::vector<int64_t>{1, 3, 6}));
  EXPECT_EQ(f.get_float_array("types"), (std::vector<float>{1, 3, 6}));
  EXPECT_EQ(f.array_size("types"), 3u);
  EXPECT_EQ(f.array_type("types"), ValueType::INT32);
  EXPECT_EQ(f.value_type("flag"), ValueType::BOOL);
  EXPECT_TRUE(f.has("flag"));
  EXPECT_FALSE(f.has("nope"));
  EXPECT_EQ(f.keys().size(), 9u);
  EXPECT_EQ(f.keys().front(), "general.architecture");
  EXPECT_EQ(f.value_to_string("tokenizer.ggml.tokens"), "[\"a\", \"\", \"ü\\n\"] (3 string)");
  EXPECT_EQ(f.value_to_string("flag"), "true");

  expect_error([&] { f.get_string("missing"); }, "'missing' is missing");
  expect_error([&] { f.get_int("general.architecture"); }, "is string, not an integer");
  expect_error([&] { f.get_string("llama.block_count"); }, "is uint32, not a string");
  expect_error([&] { f.get_string_array("types"); }, "array of int32");
  expect_error([&] { f.get_int_array("scores"); }, "not an array of integers");
  expect_error([&] { f.get_bool("neg"); }, "not a bool");
}

TEST(GgufReader, TensorsRoundTrip) {
  const GgufFile f = GgufFile::from_memory(sample_writer().bytes());
  ASSERT_EQ(f.tensors().size(), 3u);
  const TensorInfo& w = f.tensor("w");
  EXPECT_EQ(w.shape, (std::vector<uint64_t>{64, 3}));
  EXPECT_EQ(w.type, GgmlType::F32);
  EXPECT_EQ(w.elements(), 192u);
  EXPECT_EQ(w.bytes, 768u);
  EXPECT_EQ(w.rows(), 3u);
  const std::vector<float> all = dequantize_tensor(w);
  EXPECT_EQ(all[65], 65 * 0.25f - 10.0f);
  std::vector<float> row(64);
  dequantize_row(w, 1, row.data());
  EXPECT_EQ(row[0], 64 * 0.25f - 10.0f);

  const TensorInfo& q = f.tensor("q");
  EXPECT_EQ(q.type, GgmlType::Q8_0);
  EXPECT_EQ(q.bytes, 68u);
  EXPECT_EQ(q.offset % 32, 0u);
  const std::vector<float> qv = dequantize_tensor(q);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(qv[i], i * 0.25f - 10.0f, 0.05f) << i;

  EXPECT_EQ(f.tensor("v").elements(), 5u);
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  expect_error([&] { f.tensor("nope"); }, "'nope' is not in the GGUF file");
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_EQ((t.data - f.tensors()[0].data + f.data_offset()) % 32, 0u) << t.name;
  }
}

TEST(GgufReader, CustomAlignmentAndMove) {
  GgufWriter w;
  w.set_alignment(64);
  w.add_tensor_f32("a", {3}, {1, 2, 3});
  w.add_tensor_f32("b", {2}, {4, 5});
  GgufFile f = GgufFile::from_memory(w.bytes());
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.tensor("b").offset, 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  GgufFile moved = std::move(f);
  EXPECT_EQ(dequantize_tensor(moved.tensor("b")), (std::vector<float>{4, 5}));
}

TEST(GgufReader, OpenFromDiskAndWriterRefusesOverwrite) {
  const std::string path = (std::filesystem::temp_directory_path() / ("tq_gguf_" + std::to_string(getpid()) + ".gguf")).string();
  std::filesystem::remove(path);
  const GgufWriter w = sample_writer();
  w.write(path);
  expect_error([&] { w.write(path); }, "refusing to overwrite");
  w.write(path, true);
  {
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.get_int("llama.block_count"), 3);
    EXPECT_EQ(dequantize_tensor(f.tensor("v")), (std::vector<float>{1, 2, 3, 4, 5}));
    EXPECT_EQ(f.file_size(), std::filesystem::file_size(path));
  }
  std::filesystem::remove(path);
  expect_error([&] { GgufFile::open(path); }, "cannot open");
}

// Byte offsets inside sample-like files, computed from the format: header is 24 bytes.
void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
void put_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }

// One tensor "t" (F32, shape {8}) and no metadata: header 24, name 8 + 1, n_dims 4 (at 33),
// dim 8 (at 37), type 4 (at 45), offset 8 (at 49), data at 64.
std::vector<uint8_t> one_tensor_file() {
  GgufWriter w;
  w.add_tensor_f32("t", {8}, {1, 2, 3, 4, 5, 6, 7, 8});
  return w.bytes();
}

TEST(GgufReader, Errors) {
  expect_error([] { GgufFile::from_memory({}); }, "truncated");
  expect_error([] { GgufFile::from_memory({'G', 'G', 'U'}); }, "truncated");
  expect_error([] { GgufFile::from_memory({'G', 'G', 'M', 'L', 3, 0, 0, 0}); }, "bad magic");

  std::vector<uint8_t> good = one_tensor_file();
  ASSERT_EQ(good.size(), 64u + 32u);
  ASSERT_NO_THROW(GgufFile::from_memory(good));
  {
    auto b = good;
    put_u32(b, 4, 1);
    expect_error([&] { GgufFile::from_memory(b); }, "version 1");
    put_u32(b, 4, 4);
    expect_error([&] { GgufFile::from_memory(b); }, "bad GGUF version 4");
  }
  {  // every truncation point fails cleanly, never crashes
    for (size_t n = 0; n < good.size(); ++n) {
      std::vector<uint8_t> b(good.begin(), good.begin() + static_cast<long>(n));
      EXPECT_THROW(GgufFile::from_memory(b), Error) << "truncated to " << n;
    }
    std::vector<uint8_t> b(good.begin(), good.end() - 1);
    expect_error([&] { GgufFile::from_memory(b); }, "out of bounds");
  }
  {
    auto b = good;
    put_u32(b, 45, 99);
    expect_error([&] { GgufFile::from_memory(b); }, "unknown ggml type 99");
    put_u32(b, 45, 2);  // Q4_0 with a row of 8 elements
    expect_error([&] { GgufFile::from_memory(b); }, "not a multiple of its block size 32");
  }
  {
    auto b = good;
    put_u64(b, 49, 4);
    expect_error([&] { GgufFile::from_memory(b); }, "misaligned");
    put_u64(b, 49, 1ull << 62);
    expect_error([&] { GgufFile::from_memory(b); }, "out of bounds");
  }
  {
    auto b = good;
    put_u32(b, 33, 5);  // n_dims
    expect_error([&] { GgufFile::from_memory(b); }, "5 dimensions");
    put_u32(b, 33, 0);
    expect_error([&] { GgufFile::from_memory(b); }, "0 dimensions");
  }
  {
    auto b = good;
    put_u64(b, 8, 1ull << 40);  // tensor count
    expect_error([&] { GgufFile::from_memory(b); }, "tensor infos cannot fit");
    put_u64(b, 8, 1);
    put_u64(b, 16, 1ull << 40);  // metadata count
    expect_error([&] { GgufFile::from_memory(b); }, "metadata entries cannot fit");
  }
  {
    auto b = good;
    put_u64(b, 24, 1ull << 60);  // name length
    expect_error([&] { GgufFile::from_memory(b); }, "tensor #0 name");
  }
}

TEST(GgufReader, MetadataErrors) {
  GgufWriter w;
  w.add_string_array("arr", {"x", "y"});
  std::vector<uint8_t> good = w.bytes();
  // header 24, key: len 8 + "arr" 3, type 4 (at 35), elem type 4 (at 39), count 8 (at 43).
  ASSERT_NO_THROW(GgufFile::from_memory(good));
  {
    auto b = good;
    put_u32(b, 35, 13);
    expect_error([&] { GgufFile::from_memory(b); }, "unknown metadata value type 13");
  }
  {
    auto b = good;
    put_u64(b, 43, 1ull << 50);
    expect_error([&] { GgufFile::from_memory(b); }, "claims 1125899906842624 elements");
  }
  {
    GgufWriter d;
    d.add_bool("b", true);
    auto b = d.bytes();
    b[24 + 8 + 1 + 4] = 2;
    expect_error([&] { GgufFile::from_memory(b); }, "neither 0 nor 1");
  }
  {
    GgufWriter d;
    d.add_uint32("general.alignment", 48);
    expect_error([&] { GgufFile::from_memory(d.bytes()); }, "not a power of two");
  }
  {  // duplicate keys and tensors are refused by the writer; write them by hand
    GgufWriter d;
    d.add_uint32("k", 1);
    auto b = d.bytes();
    const size_t kv_bytes = 8 + 1 + 4 + 4;  // key length, "k", type, u32
    const std::vector<uint8_t> kv(b.begin() + 24, b.begin() + 24 + kv_bytes);
    b.insert(b.begin() + 24 + kv_bytes, kv.begin(), kv.end());
    put_u64(b, 16, 2);
    expect_error([&] { GgufFile::from_memory(b); }, "duplicate metadata key 'k'");
  }
  {
    GgufWriter d;
    expect_error([&] { d.add_tensor("x", {32}, GgmlType::Q8_0, std::vector<uint8_t>(33)); }, "need 34");
    d.add_tensor_f32("x", {1}, {1.0f});
    expect_error([&] { d.add_tensor_f32("x", {1}, {1.0f}); }, "added twice");
  }
}

TEST(GgufReader, OverlappingTensors) {
  GgufWriter w;
  w.add_tensor_f32("a", {16}, std::vector<float>(16, 1.0f));
  w.add_tensor_f32("b", {16}, std::vector<float>(16, 2.0f));
  auto b = w.bytes();
  // Second tensor info: after "a"'s info (8+1+4+8+4+8 = 33 bytes from 24): offset field at 57 + 33 − 8.
  const size_t b_offset_field = 24 + 33 + 33 - 8;
  uint64_t off;
  std::memcpy(&off, b.data() + b_offset_field, 8);
  ASSERT_EQ(off, 64u);
  put_u64(b, b_offset_field, 32);
  expect_error([&] { GgufFile::from_memory(b); }, "overlap");
}

// The real models: their facts as `tq inspect` shows them, every tensor of a supported
// type, and one row of each tensor finite. (Whole tensors match the `gguf` Python package
// bit for bit: scripts/crosscheck_gguf.py.)
void check_real_model(const std::string& path, const std::string& arch, size_t n_tensors, int64_t blocks) {
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), arch);
  EXPECT_EQ(f.get_int(arch + ".block_count"), blocks);
  ASSERT_EQ(f.tensors().size(), n_tensors);
  std::vector<float> row;
  for (const TensorInfo& t : f.tensors()) {
    ASSERT_TRUE(type_supported(t.type)) << t.name << " " << type_name(t.type);
    row.resize(t.row_elements());
    dequantize_row(t, t.rows() - 1, row.data());
    for (float x : row) ASSERT_TRUE(std::isfinite(x)) << t.name;
  }
}

TEST(GgufReader, RealModels) {
  const std::string smol = testing::real_model_path(testing::kSmolLM2File);
  const std::string gemma = testing::real_model_path(testing::kGemma3File);
  if (smol.empty() && gemma.empty()) GTEST_SKIP() << "no real model installed: run scripts/setup_models.sh";
  if (!smol.empty()) {
    check_real_model(smol, "llama", 272, 30);
    EXPECT_EQ(GgufFile::open(smol).tensor("blk.0.attn_q.weight").type, GgmlType::Q4_1);
  }
  if (!gemma.empty()) {
    check_real_model(gemma, "gemma3", 236, 18);
    const GgufFile f = GgufFile::open(gemma);
    EXPECT_EQ(f.tensor("blk.0.attn_output.weight").type, GgmlType::Q4_K);
    EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").type, GgmlType::Q6_K);
    EXPECT_EQ(f.tensor("token_embd.weight").shape, (std::vector<uint64_t>{640, 262144}));
  }
}

}  // namespace
}  // namespace tq::gguf
