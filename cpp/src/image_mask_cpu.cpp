// CPU driver of the image masking kernel: coalitions are split across threads; each masked image
// is written run by run (a run: consecutive pixels of one superpixel), from x or from the baseline
// as keeps_pixel decides for the run -- masked_pixel's rule, a copy, so bitwise equal to the CUDA
// kernel and the numpy reference.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "clarion/image_mask_drivers.hpp"
#include "clarion/parallel.hpp"

namespace clarion::image {

template <class T>
void mask_cpu(const T* x, const T* b, const int* segment, const unsigned char* Z, i64 P, i64 C, i64 M, i64 s0,
              i64 s1, T* out, int n_threads) {
  const i64 ns = s1 - s0;
  if (ns <= 0 || P <= 0 || C <= 0) return;
  const i64 image = P * C;
  // Runs of consecutive pixels in one superpixel (rows of an image cross few superpixels):
  // keeps_pixel is the same for every pixel of a run, so a masked image is one copy per run.
  std::vector<i64> starts;
  for (i64 p = 0; p < P; ++p)
    if (p == 0 || segment[p] != segment[p - 1]) starts.push_back(p);
  starts.push_back(P);
  const i64 runs = static_cast<i64>(starts.size()) - 1;
  const i64 min_work = i64{1} << 20;  // elements per thread below which a thread costs more than it saves
  i64 threads = std::min<i64>(detail::resolve_threads(n_threads), ns);
  threads = std::max<i64>(1, std::min<i64>(threads, ns * image / min_work));
  const i64 span = (ns + threads - 1) / threads;
  detail::parallel_for_threads(static_cast<int>(threads), [&](int t) {
    const i64 lo = t * span, hi = std::min(ns, lo + span);
    for (i64 i = lo; i < hi; ++i) {
      const unsigned char* z = Z + (s0 + i) * M;
      T* o = out + i * image;
      for (i64 r = 0; r < runs; ++r) {
        const i64 p0 = starts[r], len = starts[r + 1] - p0;
        const T* src = keeps_pixel(z, segment, p0) ? x : b;
        std::memcpy(o + p0 * C, src + p0 * C, static_cast<size_t>(len * C) * sizeof(T));
      }
    }
  });
}

template void mask_cpu<std::uint8_t>(const std::uint8_t*, const std::uint8_t*, const int*,
                                     const unsigned char*, i64, i64, i64, i64, i64, std::uint8_t*, int);
template void mask_cpu<float>(const float*, const float*, const int*, const unsigned char*, i64, i64, i64,
                              i64, i64, float*, int);
template void mask_cpu<double>(const double*, const double*, const int*, const unsigned char*, i64, i64, i64,
                               i64, i64, double*, int);

}  // namespace clarion::image
