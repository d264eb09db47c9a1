// The CPU driver shared by every row-wise counting kernel: rows are cut into chunks, threads pull
// chunks, each slot fills a private table, and the tables are merged. Exact (integer) sums use a
// table per thread, merged in any order. Floating sums follow sum_schedule.hpp, the schedule the
// CUDA driver follows too: a table per leaf, combined by the ordered tree, so the result is a pure
// function of (rows, table size) -- never of the thread count -- and equals the GPU's bit for bit.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

#include "clarion/common.hpp"
#include "clarion/sum_schedule.hpp"

namespace clarion::detail {

constexpr i64 kRowsPerChunk = i64{1} << 16;          // exact sums: rows a thread pulls at once
constexpr i64 kScratchCells = sched::kScratchCells;  // 256 MiB of private tables at most

inline int resolve_threads(int n_threads) {
  if (n_threads > 0) return n_threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Runs fn(t) for t in [0, n) on up to n_threads threads (t = 0 runs on the calling thread).
template <class Fn>
void parallel_for_threads(int n, Fn&& fn) {
  if (n <= 1) {
    fn(0);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(n - 1);
  for (int t = 1; t < n; ++t) pool.emplace_back([&fn, t] { fn(t); });
  fn(0);
  for (auto& th : pool) th.join();
}

// range_fn(begin, end, table) -> RowError: counts rows [begin, end) into the slot's `table` and
// returns the first invalid row of the range (what == 0 when there is none).
template <class Out, class RangeFn>
RowError run_chunked_ranges(i64 n_rows, i64 total_cells, int n_threads, Out* out, RangeFn&& range_fn) {
  constexpr bool kExact = std::is_integral_v<Out>;
  std::fill(out, out + total_cells, Out{0});
  RowError first;
  if (n_rows <= 0) return first;
  // An empty table (a declared size of 0) still has its rows checked: every counted row is then
  // out of range (or, with 0 batch columns, adds nothing), so a one-cell dummy is never written.
  Out dummy{0};
  if (total_cells <= 0) {
    out = &dummy;
    total_cells = 1;
  }

  const i64 cells = std::max<i64>(total_cells, 1);
  const i64 max_slots = std::max<i64>(1, kScratchCells / cells);
  i64 n_chunks = 0, rows_per_chunk = 0;
  if (kExact) {
    n_chunks = (n_rows + kRowsPerChunk - 1) / kRowsPerChunk;
    rows_per_chunk = (n_rows + n_chunks - 1) / n_chunks;
    n_chunks = (n_rows + rows_per_chunk - 1) / rows_per_chunk;
  } else {  // a chunk is a leaf of the shared schedule
    const sched::SumSchedule sch = sched::sum_schedule(n_rows, cells);
    n_chunks = sch.n_leaves;
    rows_per_chunk = sch.rows_per_leaf;
  }
  int threads = static_cast<int>(std::min<i64>(resolve_threads(n_threads), n_chunks));
  if (kExact) threads = static_cast<int>(std::min<i64>(threads, max_slots));
  const i64 n_slots = kExact ? threads : n_chunks;

  // Slot 0 is the output itself; the others are private scratch tables.
  std::vector<Out> scratch(static_cast<size_t>((n_slots - 1) * cells), Out{0});
  auto slot_table = [&](i64 s) { return s == 0 ? out : scratch.data() + (s - 1) * cells; };

  std::atomic<i64> next_chunk{0};
  std::vector<RowError> errors(threads);
  parallel_for_threads(threads, [&](int t) {
    for (;;) {
      const i64 c = next_chunk.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks) break;
      Out* table = slot_table(kExact ? t : c);
      const i64 begin = c * rows_per_chunk;
      const i64 end = std::min(n_rows, begin + rows_per_chunk);
      keep_first_error(errors[t], range_fn(begin, end, table));
    }
  });
  for (const auto& e : errors) keep_first_error(first, e);
  if (first.what != 0 || n_slots == 1) return first;

  // Merge the slots into slot 0, in parallel over cell ranges: exact sums in slot order, floating
  // sums by the ordered tree of sum_schedule.hpp (level by level, the CUDA driver's order).
  const int merge_threads =
      static_cast<int>(std::min<i64>(resolve_threads(n_threads), std::max<i64>(1, cells / 4096)));
  const i64 span = (cells + merge_threads - 1) / merge_threads;
  parallel_for_threads(merge_threads, [&](int t) {
    const i64 lo = t * span, hi = std::min(cells, lo + span);
    if constexpr (kExact) {
      for (i64 s = 1; s < n_slots; ++s) {
        const Out* src = slot_table(s);
        for (i64 k = lo; k < hi; ++k) out[k] += src[k];
      }
    } else {
      for (i64 stride = 1; stride < n_slots; stride *= 2) {
        const i64 pairs = sched::tree_pairs(n_slots, stride);
        for (i64 j = 0; j < pairs; ++j)
          for (i64 k = lo; k < hi; ++k) sched::tree_add<Out>(slot_table, stride, j, k);
      }
    }
  });
  return first;
}

// row_fn(i, add, &bad_col) -> error code; add(cell, value) accumulates into the slot's table.
template <class Out, class RowFn>
RowError run_chunked(i64 n_rows, i64 total_cells, int n_threads, Out* out, RowFn&& row_fn) {
  return run_chunked_ranges<Out>(n_rows, total_cells, n_threads, out, [&](i64 begin, i64 end, Out* table) {
    auto add = [table](i64 cell, Out v) { table[cell] += v; };
    for (i64 i = begin; i < end; ++i) {
      i64 bad_col = -1;
      const int err = row_fn(i, add, &bad_col);
      if (err != 0) return RowError{err, i, bad_col};
    }
    return RowError{};
  });
}

}  // namespace clarion::detail
