// The one definition of how a floating-point count table is summed, shared by the CPU driver
// (parallel.hpp, run_chunked_ranges) and the CUDA driver (grouped_counts_cuda.cu). Both backends
// call these functions, so every cell of a weighted table receives the same additions in the same
// order on both, and their results are bit-identical by construction (tests/test_gpu_schedule.py
// emulates both drivers' loops in numpy and compares them with the compiled CPU kernel).
//
// The order, for every cell of a table of `cells` elements over rows [0, n):
//   1. Leaves. Rows are cut into n_leaves contiguous leaves of rows_per_leaf rows (the last may be
//      shorter). Leaf l's partial table starts at +0.0 and receives its rows' values in row order.
//   2. Ordered tree. The leaf partials are combined by a pairwise tree in leaf order: at the level
//      of stride s (s = 1, 2, 4, ... while s < n_leaves), partial j * 2s receives partial
//      j * 2s + s (for every j with j * 2s + s < n_leaves), and partial 0 ends as the result.
// With one leaf (n <= kLeafRows) the result is the plain row-order sum.
//
// The schedule is a pure function of (n_rows, cells): never of the thread count, the device or the
// grid. The leaf count is bounded so that all partial tables fit kScratchCells elements.
#pragma once

#include "clarion/common.hpp"

namespace clarion::sched {

// Rows of a leaf when the table is small: small enough that a GPU gets a thread per leaf on 1e8
// rows (12,208 leaves), large enough that a CPU thread amortises zeroing its leaf's table.
constexpr i64 kLeafRows = i64{1} << 13;
// Elements of all partial tables together at most (256 MiB of float64).
constexpr i64 kScratchCells = (i64{256} << 20) / 8;

struct SumSchedule {
  i64 n_rows = 0;
  i64 rows_per_leaf = 1;
  i64 n_leaves = 0;  // 0 when n_rows == 0

  CLARION_HD i64 leaf_begin(i64 leaf) const { return leaf * rows_per_leaf; }
  CLARION_HD i64 leaf_end(i64 leaf) const {
    const i64 e = (leaf + 1) * rows_per_leaf;
    return e < n_rows ? e : n_rows;
  }
};

// The leaves of n_rows rows for a table of `cells` elements (cells <= 0 counts as 1).
CLARION_HD SumSchedule sum_schedule(i64 n_rows, i64 cells) {
  SumSchedule s;
  s.n_rows = n_rows;
  if (n_rows <= 0) return s;
  const i64 c = cells > 0 ? cells : 1;
  const i64 max_leaves = kScratchCells / c > 1 ? kScratchCells / c : 1;
  i64 n_leaves = (n_rows + kLeafRows - 1) / kLeafRows;
  if (n_leaves > max_leaves) n_leaves = max_leaves;
  s.rows_per_leaf = (n_rows + n_leaves - 1) / n_leaves;
  s.n_leaves = (n_rows + s.rows_per_leaf - 1) / s.rows_per_leaf;
  return s;
}

// Number of pairs at the tree level of stride s: the j with j * 2s + s < n_leaves.
CLARION_HD i64 tree_pairs(i64 n_leaves, i64 stride) {
  return n_leaves > stride ? (n_leaves - stride + 2 * stride - 1) / (2 * stride) : 0;
}

// The leaf partial that pair j of the level of stride s writes (it receives dst + stride).
CLARION_HD i64 tree_dst(i64 stride, i64 pair) { return pair * 2 * stride; }

// One addition of the ordered tree: partial(dst)[cell] += partial(dst + stride)[cell], where
// partial(l) is `slot(l)`, a pointer to leaf l's table.
template <class T, class Slot>
CLARION_HD void tree_add(const Slot& slot, i64 stride, i64 pair, i64 cell) {
  const i64 dst = tree_dst(stride, pair);
  slot(dst)[cell] += slot(dst + stride)[cell];
}

}  // namespace clarion::sched
