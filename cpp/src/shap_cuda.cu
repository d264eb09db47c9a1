// CUDA drivers of the Kernel SHAP kernels: masking, background reduction and operator
// application. The per-element arithmetic is shap.hpp, the header the CPU drivers use; this file
// only launches. No atomics: every output element is written by exactly one thread, summing in
// the same order as the CPU loop (built with --fmad=false, the CPU with -ffp-contract=off: no
// fused multiply-add on either side), so results equal the CPU's bit for bit and reruns too.
// Every driver synchronises its stream before returning, so a device fault is raised here as
// clarion.CudaError (naming the call) rather than later by an unrelated cupy call.
#include <cuda_runtime.h>

#include <algorithm>

#include "clarion/cuda_check.hpp"
#include "clarion/device_buffer.hpp"
#include "clarion/shap_drivers.hpp"

namespace clarion::shap {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(i64 n) {
  const i64 b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<i64>(std::max<i64>(b, 1), 65535 * 64));
}

// Index type I: 32-bit when every index fits (the element index e, the pairs q < q1), since the
// three divisions per element dominate this kernel's cost and a 64-bit division is several times
// the instructions of a 32-bit one; the pointer offsets are formed in 64 bits either way.
template <class T, class I>
__global__ void mask_kernel(const T* X, const T* B, const unsigned char* Z, const int* col_player, I P, I M,
                            I K, I S, I q0, I total, T* out) {
  for (I e = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<I>(gridDim.x) * blockDim.x) {
    const I c = e % P;
    const I row = e / P;  // synthetic row (iq, k)
    const I k = row % K, iq = row / K;
    const I q = q0 + iq, n = q / S, s = q % S;
    out[e] = masked_value(X + static_cast<i64>(n) * P, B + static_cast<i64>(k) * P,
                          Z + static_cast<i64>(s) * M, col_player, static_cast<i64>(c));
  }
}

__global__ void reduce_kernel(const double* F, const double* pi, i64 R, i64 K, i64 D, int link, double* Y) {
  const i64 total = R * D;
  for (i64 e = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 r = e / D, d = e % D;
    Y[e] = background_value(F + r * K * D, pi, K, D, d, link);
  }
}

__global__ void apply_kernel(const double* Y, const double* base, const double* LT, i64 S, i64 Mo, i64 D,
                             i64 q0, i64 q1, i64 n0, i64 n_rows, double* phi) {
  const i64 total = n_rows * Mo * D;
  for (i64 e = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 d = e % D, m = (e / D) % Mo, n = n0 + e / (D * Mo);
    double* ph = phi + (n * Mo + m) * D + d;
    *ph = apply_element(*ph, Y, base, LT, S, Mo, D, q0, q1, n, m, d);
  }
}

}  // namespace

template <class T>
void mask_cuda(const T* X, const T* B, const unsigned char* Z, const int* col_player, i64 P, i64 M, i64 K,
               i64 S, i64 q0, i64 q1, T* out, void* stream) {
  const i64 total = (q1 - q0) * K * P;
  if (total <= 0) return;
  cuda::StreamGuard guard(static_cast<cudaStream_t>(stream));
  auto st = static_cast<cudaStream_t>(stream);
  // e < total + the grid's stride, and q <= q1: both must fit the index type.
  const i64 span = total + static_cast<i64>(blocks_for(total)) * kThreads;
  constexpr i64 k32 = i64{1} << 32;
  if (span < k32 && q1 < k32 && M < k32 && S < k32) {
    using I = unsigned;
    mask_kernel<T, I><<<blocks_for(total), kThreads, 0, st>>>(
        X, B, Z, col_player, static_cast<I>(P), static_cast<I>(M), static_cast<I>(K), static_cast<I>(S),
        static_cast<I>(q0), static_cast<I>(total), out);
  } else {
    mask_kernel<T, i64>
        <<<blocks_for(total), kThreads, 0, st>>>(X, B, Z, col_player, P, M, K, S, q0, total, out);
  }
  CLARION_CUDA_CHECK(cudaGetLastError());
  guard.sync();
}

template void mask_cuda<float>(const float*, const float*, const unsigned char*, const int*, i64, i64, i64,
                               i64, i64, i64, float*, void*);
template void mask_cuda<double>(const double*, const double*, const unsigned char*, const int*, i64, i64, i64,
                                i64, i64, i64, double*, void*);

void reduce_cuda(const double* F, const double* pi, i64 R, i64 K, i64 D, int link, double* Y, void* stream) {
  if (R * D <= 0) return;
  cuda::StreamGuard guard(static_cast<cudaStream_t>(stream));
  reduce_kernel<<<blocks_for(R * D), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(F, pi, R, K, D, link,
                                                                                       Y);
  CLARION_CUDA_CHECK(cudaGetLastError());
  guard.sync();
}

void apply_cuda(const double* Y, const double* base, const double* LT, i64 S, i64 Mo, i64 D, i64 q0, i64 q1,
                double* phi, void* stream) {
  if (q1 <= q0 || S <= 0) return;
  const i64 n0 = chunk_first_row(q0, S), n1 = chunk_end_row(q1, S);
  const i64 total = (n1 - n0) * Mo * D;
  cuda::StreamGuard guard(static_cast<cudaStream_t>(stream));
  apply_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      Y, base, LT, S, Mo, D, q0, q1, n0, n1 - n0, phi);
  CLARION_CUDA_CHECK(cudaGetLastError());
  guard.sync();
}

}  // namespace clarion::shap
