// The lines of a block of CSV bytes (clarion/csv_lines.hpp): memchr for the line ends, one look
// at each line's first bytes for blanks, memchr for '\r'.
#include <cstring>

#include "clarion/csv_lines.hpp"

namespace clarion::io {

CsvLines csv_lines_cpu(const std::uint8_t* data, i64 n, i64 need, bool at_eof) {
  CsvLines out;
  i64 start = 0;
  while (start < n && static_cast<i64>(out.kept.size()) < need) {
    const void* hit = std::memchr(data + start, '\n', static_cast<std::size_t>(n - start));
    i64 stop;
    if (hit != nullptr) {
      stop = static_cast<const std::uint8_t*>(hit) - data;
    } else if (at_eof) {
      stop = n;  // the last line, unterminated
    } else {
      break;  // a partial line: more bytes are needed
    }
    const i64 size = stop - start;
    const bool blank = size == 0 || (size == 1 && data[start] == '\r');
    if (!blank) out.kept.push_back(out.count);
    ++out.count;
    out.cut = stop < n ? stop + 1 : n;
    start = stop + 1;
  }
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
