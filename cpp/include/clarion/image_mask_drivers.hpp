// Entry points of the image masking kernel. CPU drivers take host pointers, CUDA drivers device
// pointers; all arrays are C-contiguous and allocated by the caller.
#pragma once

#include "clarion/common.hpp"
#include "clarion/image_mask.hpp"

namespace clarion::image {

// out[s - s0, p, c] = masked_pixel(x, b, Z[s], segment, C, p, c) for s in [s0, s1).
// x, b [P x C] (the explained and the baseline image, in), segment [P] int32 (in, values in
// [-1, M)), Z [S x M] uint8 coalitions (in), out [(s1 - s0) x P x C] (out; must not overlap the
// inputs). T is uint8, float or double.
template <class T>
void mask_cpu(const T* x, const T* b, const int* segment, const unsigned char* Z, i64 P, i64 C, i64 M, i64 s0,
              i64 s1, T* out, int n_threads);

#ifdef CLARION_WITH_CUDA
template <class T>
void mask_cuda(const T* x, const T* b, const int* segment, const unsigned char* Z, i64 P, i64 C, i64 M,
               i64 s0, i64 s1, T* out, void* stream);
#endif

}  // namespace clarion::image
