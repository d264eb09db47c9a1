// Image Kernel SHAP masking: the per-pixel rule, shared by the CPU driver (image_mask_cpu.cpp) and
// the CUDA kernel (image_mask_cuda.cu). The numpy twin is clarion.explain.image._mask_numpy.
//
// An image is P = H * W pixels of C channels, row-major ([P x C]); `segment` [P] gives each pixel's
// superpixel (player) in [0, M), or -1 for a pixel that belongs to no player and always keeps its
// value. A coalition z [M] (0/1 bytes) keeps the pixels of its present superpixels and replaces the
// others by the baseline image's pixels.
#pragma once

#include "clarion/common.hpp"

namespace clarion::image {

// Whether pixel p keeps the explained image's value under coalition z.
CLARION_HD bool keeps_pixel(const unsigned char* z, const int* segment, i64 p) {
  const int s = segment[p];
  return s < 0 || z[s] != 0;
}

// Channel c of pixel p of the masked image: x's value when the pixel is kept, else the baseline's.
// A copy, never arithmetic, so every backend and the numpy reference agree bit for bit.
template <class T>
CLARION_HD T masked_pixel(const T* x, const T* b, const unsigned char* z, const int* segment, i64 C, i64 p,
                          i64 c) {
  const i64 e = p * C + c;
  return keeps_pixel(z, segment, p) ? x[e] : b[e];
}

}  // namespace clarion::image
