// CPU driver of the image masking kernel: coalitions are split across threads; each masked image
// starts as a copy of the baseline and takes the kept pixels from x (masked_pixel's rule, decided
// once per pixel and coalition with keeps_pixel).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "clarion/image_mask_drivers.hpp"
#include "clarion/parallel.hpp"

namespace clarion::image {

template <class T>
void mask_cpu(const T* x, const T* b, const int* segment, const unsigned char* Z, i64 P, i64 C, i64 M, i64 s0,
              i64 s1, T* out, int n_threads) {
  const i64 ns = s1 - s0;
  if (ns <= 0 || P <= 0 || C <= 0) return;
  const i64 image = P * C;
  const i64 min_work = i64{1} << 20;  // elements per thread below which a thread costs more than it saves
  i64 threads = std::min<i64>(detail::resolve_threads(n_threads), ns);
  threads = std::max<i64>(1, std::min<i64>(threads, ns * image / min_work));
  const i64 span = (ns + threads - 1) / threads;
  detail::parallel_for_threads(static_cast<int>(threads), [&](int t) {
    const i64 lo = t * span, hi = std::min(ns, lo + span);
    for (i64 i = lo; i < hi; ++i) {
      const unsigned char* z = Z + (s0 + i) * M;
      T* o = out + i * image;
      std::memcpy(o, b, static_cast<size_t>(image) * sizeof(T));
      for (i64 p = 0; p < P; ++p) {
        if (!keeps_pixel(z, segment, p)) continue;
        for (i64 c = 0; c < C; ++c) o[p * C + c] = x[p * C + c];
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
