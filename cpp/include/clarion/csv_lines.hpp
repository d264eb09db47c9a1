// The lines of a block of CSV bytes (clarion.dataset's line finding), on the CPU only: an I/O
// helper of the file reader (the bytes never are on a device, so it has no CUDA twin).
//
// Contract (the numpy reference is clarion._reference.csv_lines): a line ends at each '\n'
// (included in it); at the end of the file (at_eof) the bytes after the last '\n' are a last line
// too. A line is blank when it is "\n" or "\r\n" (the csv module reads no fields there). The
// result takes the lines up to and including the need-th non-blank one (all the lines when there
// are fewer): `kept` lists the 0-based indices of the non-blank ones among them, `count` how many
// lines they are, `cut` the byte where they end, and `lone_cr` whether a '\r' in data[0 .. cut)
// is not followed by '\n' (those lines are for the line-by-line path).
#pragma once

#include <cstdint>
#include <vector>

#include "clarion/common.hpp"

namespace clarion::io {

struct CsvLines {
  std::vector<i64> kept;
  i64 count = 0;
  i64 cut = 0;
  bool lone_cr = false;
};

CsvLines csv_lines_cpu(const std::uint8_t* data, i64 n, i64 need, bool at_eof);

}  // namespace clarion::io
