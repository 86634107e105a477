#include "model_gemm.h"

#include <cublas_v2.h>

#include <string>

#include "turboquant/error.h"

namespace tq::cuda {
namespace {

void check_cublas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) throw Error(std::string("cuBLAS: ") + what + " failed with status " + std::to_string(static_cast<int>(st)));
}

}  // namespace

Gemm::Gemm(cudaStream_t stream) {
  cublasHandle_t h = nullptr;
  check_cublas(cublasCreate(&h), "cublasCreate");
  handle_ = h;
  check_cublas(cublasSetStream(h, stream), "cublasSetStream");
}

Gemm::~Gemm() {
  if (handle_) cublasDestroy(static_cast<cublasHandle_t>(handle_));
}

void Gemm::nt(const uint16_t* x, int n, int in, const uint16_t* w, int rows, float* y, int ldy, float beta) const {
  // Column-major view: yᵀ [rows][n] (ld ldy) = (W as an in×rows matrix)ᵀ · (x as in×n).
  const float alpha = 1.f;
  check_cublas(cublasGemmEx(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N, rows, n, in, &alpha, w,
                            CUDA_R_16F, in, x, CUDA_R_16F, in, &beta, y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

}  // namespace tq::cuda
