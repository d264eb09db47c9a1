// Counter-based random numbers: a draw is a pure function of (seed, stream, counter), so the CPU
// and the GPU, any thread count and any chunking give the same value for the same row.
// The numpy twin lives in clarion/_reference.py (splitmix64, poisson1_draws).
#pragma once

#include "clarion/common.hpp"

namespace clarion::rng {

// splitmix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mix.
CLARION_HD u64 splitmix64(u64 x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Keys of the bootstrap replicates under `seed`: key(r) = splitmix64(splitmix64(seed) + r). The
// seed is mixed once, when the object is made, so a loop over replicates mixes once per key.
struct ReplicateKeys {
  u64 seed_key;
  CLARION_HD explicit ReplicateKeys(u64 seed) : seed_key(splitmix64(seed)) {}
  CLARION_HD u64 operator()(i64 r) const { return splitmix64(seed_key + static_cast<u64>(r)); }
};

// Key of bootstrap replicate r under `seed`.
CLARION_HD u64 replicate_key(u64 seed, i64 r) { return ReplicateKeys(seed)(r); }

// Poisson(1) by inversion: k = #{j : kPoisson1Cdf[j] <= u} with u uniform on [0, 2^64), where
// kPoisson1Cdf[j] = floor(P(X <= j) * 2^64). Integer comparisons only, so host and device agree.
CLARION_HD unsigned poisson1_from_bits(u64 u) {
  const u64 cdf[20] = {
      0x5E2D58D8B3BCDF1AULL, 0xBC5AB1B16779BE35ULL, 0xEB715E1DC1582DC2ULL, 0xFB23979734A252F1ULL,
      0xFF1025F59174DC3DULL, 0xFFD90F3BA4055E19ULL, 0xFFFA8B71FC72C913ULL, 0xFFFF540C0914B3C9ULL,
      0xFFFFED1F4AA8F120ULL, 0xFFFFFE216E641462ULL, 0xFFFFFFD4D85D3183ULL, 0xFFFFFFFC6DA262B4ULL,
      0xFFFFFFFFBA12D178ULL, 0xFFFFFFFFFB07C64CULL, 0xFFFFFFFFFFAB8EA5ULL, 0xFFFFFFFFFFFABE22ULL,
      0xFFFFFFFFFFFFB11AULL, 0xFFFFFFFFFFFFFBA1ULL, 0xFFFFFFFFFFFFFFC5ULL, 0xFFFFFFFFFFFFFFFDULL};
  // The first four comparisons decide 98.1% of draws; counting them without branches avoids a
  // mispredicted jump per draw (cdf is increasing, so the count equals the loop's k when k < 4).
  unsigned k = static_cast<unsigned>(cdf[0] <= u) + static_cast<unsigned>(cdf[1] <= u) +
               static_cast<unsigned>(cdf[2] <= u) + static_cast<unsigned>(cdf[3] <= u);
  if (k == 4) {
    while (k < 20 && cdf[k] <= u) ++k;
  }
  return k;
}

// The Poisson(1) weight of global row `row` in the replicate whose key is `key`.
CLARION_HD unsigned poisson1(u64 key, i64 row) {
  return poisson1_from_bits(splitmix64(key + static_cast<u64>(row)));
}

}  // namespace clarion::rng
