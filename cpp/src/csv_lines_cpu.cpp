// The lines of a block of CSV bytes (clarion/csv_lines.hpp): the line ends found 8 bytes at a time
// (an exact zero-byte test on the word xor '\n'), one look at each line's first bytes for
// blanks, memchr for '\r'.
#include <cstring>

#include "clarion/csv_lines.hpp"

namespace clarion::io {

namespace {

constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
constexpr std::uint64_t kNewlines = 0x0a0a0a0a0a0a0a0aULL;

// The bytes of `w` equal to '\n', as their high bits (exact: no false positives).
inline std::uint64_t newline_bits(std::uint64_t w) {
  const std::uint64_t x = w ^ kNewlines;
  return ~(((x & kLow7) + kLow7) | x | kLow7);
}

inline int lowest_byte(std::uint64_t bits) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(bits) >> 3;
#else
  int b = 0;
  while ((bits & 0x80ULL) == 0) {
    bits >>= 8;
    ++b;
  }
  return b;
#endif
}

struct Scan {
  const std::uint8_t* data;
  i64 n;
  i64 need;
  i64 start = 0;
  CsvLines out;

  // A line ends at `stop` (its '\n', or n): true when the need-th non-blank line is taken.
  bool line(i64 stop) {
    const i64 size = stop - start;
    if (!(size == 0 || (size == 1 && data[start] == '\r'))) out.kept.push_back(out.count);
    ++out.count;
    out.cut = stop < n ? stop + 1 : n;
    start = stop + 1;
    return static_cast<i64>(out.kept.size()) >= need;
  }
};

}  // namespace

CsvLines csv_lines_cpu(const std::uint8_t* data, i64 n, i64 need, bool at_eof) {
  Scan s{data, n, need, 0, CsvLines{}};
  if (need > 0) {
    s.out.kept.reserve(static_cast<std::size_t>(need < n / 2 + 1 ? need : n / 2 + 1));
    bool done = false;
    i64 p = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; !done && p + 8 <= n; p += 8) {
      std::uint64_t w;
      std::memcpy(&w, data + p, 8);
      for (std::uint64_t bits = newline_bits(w); bits != 0 && !done; bits &= bits - 1)
        done = s.line(p + lowest_byte(bits));
    }
#endif
    for (; !done && p < n; ++p)
      if (data[p] == '\n') done = s.line(p);
    if (!done && at_eof && s.start < n) s.line(n);  // the last line, unterminated
  }
  CsvLines& out = s.out;
  for (i64 p = 0; p < out.cut;) {
    const void* hit = std::memchr(data + p, '\r', static_cast<std::size_t>(out.cut - p));
    if (hit == nullptr) break;
    const i64 at = static_cast<const std::uint8_t*>(hit) - data;
    if (at + 1 >= out.cut || data[at + 1] != '\n') {
      out.lone_cr = true;
      break;
    }
    p = at + 1;
  }
  return out;
}

}  // namespace clarion::io
