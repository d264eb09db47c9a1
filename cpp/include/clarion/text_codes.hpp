// Codes of a column of text (an Arrow string array's offsets and bytes) in first-seen order: the
// reader's dictionary coding of the bias text columns (clarion.dataset), on the CPU only (an I/O
// helper of the file reader: the rows never are on a device, so it has no CUDA twin).
//
// Contract: codes[i] = the number of distinct values among rows 0 .. i-1 when row i's bytes
// data[offsets[i] .. offsets[i + 1]) differ from every one of them, else the code of the first row
// with the same bytes; first[c] = the first row of code c. Values are compared byte for byte (no
// normalisation: "a" and "a " are two values; an empty value is one). The numpy reference is
// clarion._reference.text_codes.
#pragma once

#include <cstdint>
#include <vector>

#include "clarion/common.hpp"

namespace clarion::io {

// Fills codes[0 .. n) and appends each code's first row to `first`; offsets has n + 1 entries,
// non-decreasing, within [0, data_len] (checked: std::invalid_argument naming the row otherwise).
// Off is int32 (Arrow string) or int64 (Arrow large_string).
template <class Off>
void text_codes_cpu(const Off* offsets, i64 n, const std::uint8_t* data, i64 data_len, std::int32_t* codes,
                    std::vector<i64>& first);

}  // namespace clarion::io
