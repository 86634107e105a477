#pragma once
// The quantizer-kind table, ggml's type_traits for cache codecs: one row per QuantKind
// holding what every backend needs to know about that kind, so no backend switches on the
// kind to learn it. The codec table (codec.h) names rows of it; fast paths register against
// it by setting their flag. docs/ARCHITECTURE.md walks through adding a kind.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "turboquant/codec.h"

namespace tq {

// Builds a codec row's Quantizer for code dimension `dim` (tq::Error when the row cannot
// take that dimension). `seed` is the codec's seed; a kind with parameters of its own
// (prod's QJL matrix) derives its sub-stream from it.
using QuantizerFactory = std::shared_ptr<const Quantizer> (*)(const CodecSpec& spec, int dim, uint64_t seed);

struct QuantTraits {
  QuantKind kind;
  std::string_view name;
  // Record layout: fixed blocks of block_coords coordinates, block_bytes each, the
  // size of the block struct in blocks.h; 0, 0 when the layout depends on the row (bits,
  // group) or the dimension: then Quantizer::record_bytes() and its offsets say it.
  int block_coords;
  size_t block_bytes;
  QuantizerFactory make;  // null for calibrated kinds (Codec::make_calibrated builds them)
  bool calibrated;        // built per model/layer/head from a calibration profile, never by name
  bool code_width;        // CodecSpec::bits is a code width per coordinate (quality goals compare
                          // codecs of one width); false for baselines and calibrated budgets
  // CPU fast paths (src/cpu) that exist for this kind; a codec may still fall back to the
  // reference when its dimension or widths are outside what the path handles.
  bool cpu_lane_encoder;  // quantize-on-write, one vector per SIMD lane (encode_lanes.h)
  int cpu_lane_max_bits;  // widest CodecSpec::bits it takes (level tables of 16 entries:
                          // prod's codes are bits − 1 wide); 0: any
  bool cpu_simd_scorer;   // AVX2/AVX-512 key scorer and value accumulator (kernels_avx*.cpp)
  // CUDA (src/cuda): the quantize-on-write and decode kernels read this kind's records, for
  // rows of CodecSpec::bits up to cuda_max_bits (0: any) and, unless cuda_rotated, only
  // the unrotated rows.
  bool cuda_kernels;
  int cuda_max_bits;
  bool cuda_rotated;
  // A tensor-core decode split kernel reads this kind's records (DecodeKernel::mma): the
  // tile kernel f16, q8_0, q4_0, fp8 and calibrated records (one kind on both sides), the
  // uniform kernel mse codes of one width and codebook. Other kinds decode on the CUDA-core
  // kernel only (DecodeKernel::simt, which every kind with cuda_kernels has).
  bool cuda_mma;
};

const QuantTraits& quant_traits(QuantKind kind);  // every QuantKind has a row

}  // namespace tq
