// Dictionary codes of a text column in first-seen order (clarion/text_codes.hpp): one pass over
// the rows with an open-addressing hash table of the distinct values (their first row's bytes).
#include <cstring>
#include <stdexcept>
#include <string>

#include "clarion/bytes_hash.hpp"
#include "clarion/text_codes.hpp"

namespace clarion::io {

namespace {

// One distinct value: its bytes (the first 8 as a word, zero-padded; the rest compared in the
// data), their hash and its code + 1 (0: an empty slot).
struct Slot {
  std::uint64_t word = 0;
  std::uint64_t hash = 0;
  i64 start = 0;
  i64 len = 0;
  std::int32_t code1 = 0;
};

}  // namespace

template <class Off>
void text_codes_cpu(const Off* offsets, i64 n, const std::uint8_t* data, i64 data_len, std::int32_t* codes,
                    std::vector<i64>& first) {
  first.clear();
  std::size_t cap = 64;  // a power of two, at most half full
  int shift = 58;        // 64 - log2(cap): a slot is the hash's high bits
  std::vector<Slot> slots(cap);
  for (i64 i = 0; i < n; ++i) {
    const i64 start = static_cast<i64>(offsets[i]);
    const i64 stop = static_cast<i64>(offsets[i + 1]);
    if (start < 0 || stop < start || stop > data_len)
      throw std::invalid_argument("offsets: row " + std::to_string(i) + " is not within the data (offsets " +
                                  std::to_string(start) + ", " + std::to_string(stop) + ", data of " +
                                  std::to_string(data_len) + " bytes)");
    const i64 len = stop - start;
    const std::uint8_t* p = data + start;
    const std::uint64_t word = head_word(p, len, data_len - start);
    const std::uint64_t h = value_hash(p, len, word);
    std::size_t mask = cap - 1;
    std::size_t at = static_cast<std::size_t>(h >> shift);
    std::int32_t code = -1;
    while (slots[at].code1 != 0) {
      const Slot& s = slots[at];
      if (s.hash == h && s.len == len && s.word == word &&
          (len <= 8 || std::memcmp(data + s.start + 8, p + 8, static_cast<std::size_t>(len - 8)) == 0)) {
        code = s.code1 - 1;
        break;
      }
      at = (at + 1) & mask;
    }
    if (code < 0) {
      code = static_cast<std::int32_t>(first.size());
      first.push_back(i);
      slots[at] = Slot{word, h, start, len, code + 1};
      if (2 * first.size() > cap) {  // grow: re-insert every value
        cap *= 2;
        --shift;
        mask = cap - 1;
        std::vector<Slot> grown(cap);
        for (const Slot& s : slots) {
          if (s.code1 == 0) continue;
          std::size_t k = static_cast<std::size_t>(s.hash >> shift);
          while (grown[k].code1 != 0) k = (k + 1) & mask;
          grown[k] = s;
        }
        slots.swap(grown);
      }
    }
    codes[i] = code;
  }
}

template void text_codes_cpu<std::int32_t>(const std::int32_t*, i64, const std::uint8_t*, i64, std::int32_t*,
                                           std::vector<i64>&);
template void text_codes_cpu<std::int64_t>(const std::int64_t*, i64, const std::uint8_t*, i64, std::int32_t*,
                                           std::vector<i64>&);

}  // namespace clarion::io
