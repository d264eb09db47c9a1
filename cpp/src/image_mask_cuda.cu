// CUDA driver of the image masking kernel: one thread per output element (grid-stride), the value
// from masked_pixel in image_mask.hpp, the header the CPU driver uses. A pure copy, so the GPU
// result equals the CPU's bit for bit.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "clarion/cuda_check.hpp"
#include "clarion/image_mask_drivers.hpp"

namespace clarion::image {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(i64 n) {
  const i64 b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<i64>(std::max<i64>(b, 1), 65535 * 64));
}

template <class T>
__global__ void mask_kernel(const T* x, const T* b, const int* segment, const unsigned char* Z, i64 P, i64 C,
                            i64 M, i64 s0, i64 total, T* out) {
  const i64 image = P * C;
  for (i64 e = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 i = e / image, r = e % image;
    const i64 p = r / C, c = r % C;
    out[e] = masked_pixel(x, b, Z + (s0 + i) * M, segment, C, p, c);
  }
}

}  // namespace

template <class T>
void mask_cuda(const T* x, const T* b, const int* segment, const unsigned char* Z, i64 P, i64 C, i64 M,
               i64 s0, i64 s1, T* out, void* stream) {
  const i64 total = (s1 - s0) * P * C;
  if (total <= 0) return;
  mask_kernel<T><<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, b, segment, Z, P,
                                                                                        C, M, s0, total, out);
  CLARION_CUDA_CHECK(cudaGetLastError());
}

template void mask_cuda<std::uint8_t>(const std::uint8_t*, const std::uint8_t*, const int*,
                                      const unsigned char*, i64, i64, i64, i64, i64, std::uint8_t*, void*);
template void mask_cuda<float>(const float*, const float*, const int*, const unsigned char*, i64, i64, i64,
                               i64, i64, float*, void*);
template void mask_cuda<double>(const double*, const double*, const int*, const unsigned char*, i64, i64, i64,
                                i64, i64, double*, void*);

}  // namespace clarion::image
