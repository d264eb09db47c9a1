// A block of plain CSV lines parsed straight into typed columns (clarion.dataset's compiled CSV
// path), on the CPU only: an I/O helper of the file reader (the bytes never are on a device, so it
// has no CUDA twin). It replaces pyarrow's parse and the frame building for the blocks where the
// result is certain to be what the reader's pyarrow path gives; on anything else it DECLINES (a
// status and a reason) and the reader takes that path. The numpy reference is
// clarion._reference.csv_block (same results, same declines, same reasons).
//
// Contract. `data` is whole lines as _Lines.take_block gives them: a line ends at each '\n'
// (included); the bytes after the last '\n' are a last line too. A line's content is the line
// without its '\n' and, when it had one, without a '\r' just before it. An empty content is a
// blank line (no row). Every other line is a row; its fields are its content split at each ','
// (no quoting). Lines are checked in order, each field of a line left to right; the first
// problem met declines the whole block:
//   1 quote         the field holds '"'
//   2 carriage      the field holds '\r' (a '\r' not followed by '\n')
//   3 field count   the field is the (n_fields + 1)-th; or, at the line's end, fewer fields
//   then by the column's kind:
//   skip (0)    only the field count matters; a non-ASCII field must be valid UTF-8 (7)
//   int64 (1)   6 empty; 4 not -?[0-9]+; 5 more than 18 digits. The value is exact.
//   float64 (2) 6 empty; 4 not -?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?; 5 not finite, |v| >= 2**63,
//               or 0 < |v| < DBL_MIN, or 0 from a non-zero mantissa. The value is the correctly
//               rounded double (std::from_chars; pyarrow's parser rounds alike).
//   text (3)    codes int32 in first-seen order and each code's first row (what text_codes_cpu
//               gives for the column's values); 7 when a value is not valid UTF-8 (strict: no
//               overlong form, no surrogate, nothing beyond U+10FFFF), checked at its first row.
// `line` of a decline is 1-based within the block, counting blank lines; `field` is 1-based.
//
// Threads: the block is cut at line starts into up to n_threads parts (at most one per ~part_lines
// lines, 8,192 by default, the line length taken from the first 64 KiB), each parsed with its own
// dictionaries; the parts' dictionaries are merged in part order, so codes are first-seen order,
// and the decline reported is the first in block order: every result is the same for every thread
// count. The reasons' texts are in csv_block_cpu.cpp (reason_of) and in the twin.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "clarion/common.hpp"

namespace clarion::io {

enum CsvKind : std::int8_t { kCsvSkip = 0, kCsvInt64 = 1, kCsvFloat64 = 2, kCsvText = 3 };

enum CsvDecline : int {
  kCsvOk = 0,
  kCsvQuote = 1,
  kCsvCarriage = 2,
  kCsvFieldCount = 3,
  kCsvNumber = 4,
  kCsvRange = 5,
  kCsvEmpty = 6,
  kCsvUtf8 = 7,
};

// An allocator whose resize leaves new elements uninitialised (the parser writes every row it
// keeps; a buffer sized to a bound is not zeroed first).
template <class T>
struct NoInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInitAllocator<U>;
  };
  NoInitAllocator() = default;
  template <class U>
  NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <class T>
using RawVector = std::vector<T, NoInitAllocator<T>>;

// One output column (by its kind: ints, floats, or codes + first + each code's bytes in data).
struct CsvColumn {
  RawVector<i64> ints;
  RawVector<double> floats;
  RawVector<std::int32_t> codes;
  std::vector<i64> first;        // the first row of each code
  std::vector<i64> value_start;  // each code's value: data[value_start[c] .. + value_len[c])
  std::vector<i64> value_len;
};

struct CsvBlock {
  int status = kCsvOk;
  std::string reason;  // empty when status is kCsvOk
  i64 rows = 0;
  std::vector<CsvColumn> columns;  // one per field (a skipped field's stays empty)
};

constexpr i64 kCsvPartLines = 8192;  // at most one part (thread) per this many lines, by default

// kinds[0 .. n_fields) are CsvKind values (checked by the caller); n_threads <= 0: every core;
// part_lines <= 0: kCsvPartLines (the tests cut small blocks into many parts with a small one).
CsvBlock csv_block_cpu(const std::uint8_t* data, i64 n, const std::int8_t* kinds, i64 n_fields, int n_threads,
                       i64 part_lines = kCsvPartLines);

}  // namespace clarion::io
