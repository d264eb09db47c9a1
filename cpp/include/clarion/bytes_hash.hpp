// The byte-string hashing of the reader's compiled dictionaries (text_codes_cpu, csv_block_cpu):
// a value's first 8 bytes as a word (compared before the rest) and its hash, alike in both.
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

// The first min(len, 8) bytes of p as a little-endian word, zero-padded (one load when `room`, the
// bytes readable from p, is at least 8).
inline std::uint64_t head_word(const std::uint8_t* p, i64 len, i64 room) {
  std::uint64_t w = 0;
  if (room >= 8) {
    std::memcpy(&w, p, 8);
    if (len < 8) w &= (std::uint64_t{1} << (8 * len)) - 1;
  } else {
    const i64 k = len < 8 ? len : 8;
    for (i64 j = 0; j < k; ++j) w |= static_cast<std::uint64_t>(p[j]) << (8 * j);
  }
  return w;
}

// A value's hash (a table takes its high bits): one multiply for a value of at most 8 bytes
// (`word` is its head_word), hash_bytes beyond.
inline std::uint64_t value_hash(const std::uint8_t* p, i64 len, std::uint64_t word) {
  if (len <= 8) return (word ^ (static_cast<std::uint64_t>(len) << 59)) * 0x9e3779b97f4a7c15ULL;
  return hash_bytes(p, len);
}

}  // namespace clarion::io
