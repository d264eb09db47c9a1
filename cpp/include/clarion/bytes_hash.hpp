// The byte-string hash of the reader's compiled dictionaries (text_codes_cpu, csv_block_cpu): the
// same values hash alike in both, so their tables agree on every value's bucket order.
#pragma once

#include <cstdint>
#include <cstring>

#include "clarion/common.hpp"

namespace clarion::io {

// The final mix of a 64-bit hash (the table takes its high bits).
inline std::uint64_t mix_hash(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// A hash of the bytes p[0 .. len): 8-byte words folded in, then mixed.
inline std::uint64_t hash_bytes(const std::uint8_t* p, i64 len) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ static_cast<std::uint64_t>(len);
  i64 i = 0;
  for (; i + 8 <= len; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  if (i < len) {
    std::uint64_t w = 0;
    std::memcpy(&w, p + i, static_cast<std::size_t>(len - i));
    h = (h ^ w) * 0x100000001b3ULL;
  }
  return mix_hash(h);
}

}  // namespace clarion::io
