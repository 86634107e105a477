#pragma once
// The device forward pass's matrix products through cuBLAS: f16 weights and activations,
// f32 accumulation and output (cublasGemmEx, CUBLAS_COMPUTE_32F).
#include <cuda_runtime.h>

#include <cstdint>

namespace tq::cuda {

class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);  // tq::Error when cuBLAS cannot start
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y[n][ldy] (first `rows` columns) = x[n][in] · W[rows][in]ᵀ + beta · y, as ops.h's
  // matmul with GGUF's row layout; x and W f16, y f32. beta = 1 adds into y (residual).
  void nt(const uint16_t* x, int n, int in, const uint16_t* w, int rows, float* y, int ldy, float beta = 0.f) const;

 private:
  void* handle_ = nullptr;  // cublasHandle_t
};

}  // namespace tq::cuda
