// Counting straight from a batch's local codes (issue 21): up to four code columns (facet, group
// variable, label, prediction), each read in its own integer dtype, turned into a slot
// (slot = code + offset; slot 0 is "missing") and combined into one cell of a small "raw" table
// [S_0][S_1]...[S_{k-1}] of slot combinations. The bias engine derives from that table which
// values occur, the vocabulary codes and the positive labels (lookup tables on a few hundred cells
// instead of passes over N rows), so a batch costs one pass over its columns.
//
// With row weights the floating sums must equal grouped_counts' bit for bit, so the weighted
// driver also maps every row through per-column lookup tables to its final cell
// ((v * K + k) * 2 + y) * P + p and adds its weight there, in the same chunked row order as
// grouped_counts (parallel.hpp); the raw table then only records which slots occur.
#pragma once

#include "clarion/common.hpp"

namespace clarion::bias {

constexpr int kMaxCodeColumns = 4;

enum : int { kErrSlot = 1, kErrWeight = 2 };

struct SlotProblem {
  i64 n_rows = 0;
  int n_cols = 0;                           // 1..kMaxCodeColumns
  const void* codes[kMaxCodeColumns] = {};  // [N] each, integer of `itemsize` bytes
  int itemsize[kMaxCodeColumns] = {};       // 1, 2, 4 or 8 (signed)
  i64 offset[kMaxCodeColumns] = {};         // slot = code + offset
  i64 size[kMaxCodeColumns] = {};           // slots of the column (0 <= slot < size)
  i64 raw_stride[kMaxCodeColumns] = {};     // raw cell = sum slot * raw_stride
  // weighted driver only: final cell = sum lut[slot] * map_stride
  const std::int32_t* lut[kMaxCodeColumns] = {};
  i64 map_stride[kMaxCodeColumns] = {};

  CLARION_HD i64 raw_cells() const {
    i64 c = 1;
    for (int j = 0; j < n_cols; ++j) c *= size[j];
    return c;
  }
};

// The slot of a code, or -1 when it is outside [0, size).
CLARION_HD i64 slot_of(i64 code, i64 offset, i64 size) {
  const i64 s = code + offset;
  return static_cast<u64>(s) < static_cast<u64>(size) ? s : -1;
}

// Entry points (encode_cpu.cpp). raw: [raw_cells] int64, overwritten with the slot-combination
// counts (unweighted) or occurrence counts (weighted). mapped (weighted only): [mapped_cells]
// float64 weight sums, the layout and summation order of grouped_counts. A non-zero RowError names
// the first row with a code outside its slots (col = the column) or a bad weight.
RowError slot_counts_cpu(const SlotProblem& pb, std::int64_t* raw, int n_threads);
// The smallest and largest of n integers (n >= 1), in one pass: an integer column's slot offset.
template <class T>
void int_range_cpu(const T* x, i64 n, T* lo, T* hi);
RowError slot_weighted_counts_cpu(const SlotProblem& pb, const double* weights, i64 mapped_cells,
                                  double* mapped, std::int64_t* raw, int n_threads);

}  // namespace clarion::bias
