// Per-row arithmetic of the grouped count kernels, shared by the CPU loop (grouped_counts_cpu.cpp)
// and the CUDA kernels (grouped_counts_cuda.cu). The drivers differ only in how they iterate rows
// (the CPU bootstrap driver walks replicates per block of rows, calling add_replicate as add_row
// does) and in the `Adder` they pass (plain `+=` into a private table, or an atomic add).
//
// Output layout (C order): [R][B][G][L][P] where R is the bootstrap replicate axis (absent when
// n_boot == 0), B the batch axis (columns of a 2-D `preds`/`scores`), G groups, L labels and P
// predicted codes (P = 1 when there are no predictions). The threshold kernel first fills a
// histogram with P = T + 1 score bins and then turns it into [R][B][T][G][L][2].
#pragma once

#include "clarion/common.hpp"
#include "clarion/rng.hpp"

namespace clarion::bias {

enum : int { kErrNone = 0, kErrGroups = 1, kErrLabels = 2, kErrPreds = 3, kErrWeights = 4, kErrScores = 5 };

struct CountsProblem {
  i64 n_rows = 0;      // N
  i64 n_batch = 1;     // B
  i64 n_groups = 0;    // G
  i64 n_labels = 0;    // L
  i64 n_preds = 1;     // P (score bins T + 1 for the threshold kernel)
  i64 n_boot = 0;      // R; 0 means no bootstrap axis
  u64 seed = 0;        // bootstrap seed
  i64 row_offset = 0;  // global index of local row 0: bootstrap draws are keyed on global rows

  CLARION_HD i64 table_cells() const { return n_groups * n_labels * n_preds; }
  CLARION_HD i64 total_cells() const { return (n_boot > 0 ? n_boot : 1) * n_batch * table_cells(); }
};

// True when 0 <= v < n. One unsigned compare covers the negative codes too.
CLARION_HD bool code_in_range(i64 v, i64 n) { return static_cast<u64>(v) < static_cast<u64>(n); }

// A row weight must be finite and >= 0 (NaN fails both tests).
CLARION_HD bool weight_ok(double w) { return w >= 0.0 && w <= 1.7976931348623157e308; }

// Number of thresholds <= s in the sorted vector t[0..T): the score bin. Score s is counted as
// "score >= t[j]" exactly for the thresholds j < bin.
CLARION_HD i64 score_bin(double s, const double* t, i64 T) {
  i64 lo = 0, hi = T;
  while (lo < hi) {
    const i64 mid = lo + (hi - lo) / 2;
    if (t[mid] <= s)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// Adds a row of weight w to one bootstrap replicate: the row's Poisson(1) draw k in the replicate
// (`key`: the replicate's key, see rng::ReplicateKeys; `global_row`: row_offset + the row's index)
// multiplies w, and w * k goes to the row's cell of each of the n_batch columns: `table` (the
// replicate's first cell) + cell_of(b), cell_of(b) being the cell within one replicate's
// [B][G][L][P] table. This is the one place a replicate weight is drawn and added: add_row (the
// row-major loop of the CUDA kernels) and the CPU's replicate-major block driver both call it, so
// every backend adds the same values, and each cell receives them in row order.
// kSkipZero: return without adding when k == 0 (about 37% of draws; saves atomics and the cells'
// computation on the GPU). The CPU adds the zero instead of branching on an unpredictable draw:
// adding +0 leaves every cell (all >= +0) bit-identical.
template <bool kSkipZero, class Out, class CellOf, class Adder>
CLARION_HD void add_replicate(u64 key, i64 global_row, Out w, i64 n_batch, i64 table, const CellOf& cell_of,
                              Adder& add) {
  const unsigned k = rng::poisson1(key, global_row);
  if (kSkipZero && k == 0) return;
  const Out wr = w * static_cast<Out>(k);
  for (i64 b = 0; b < n_batch; ++b) add(table + cell_of(b), wr);
}

// Adds the contribution of row i (already known to hold codes g, l and the per-column codes
// `code_of(b)`) to every batch column and bootstrap replicate.
template <class Out, class CodeOf, class Adder>
CLARION_HD void add_row(const CountsProblem& pb, i64 i, i64 gl_base, Out w, const CodeOf& code_of,
                        Adder& add) {
  const i64 cells = pb.table_cells();
  auto cell_of = [cells, gl_base, &code_of](i64 b) -> i64 { return b * cells + gl_base + code_of(b); };
  if (pb.n_boot == 0) {
    for (i64 b = 0; b < pb.n_batch; ++b) add(cell_of(b), w);
    return;
  }
  const rng::ReplicateKeys keys(pb.seed);
  for (i64 r = 0; r < pb.n_boot; ++r)
    add_replicate<true, Out>(keys(r), pb.row_offset + i, w, pb.n_batch, r * pb.n_batch * cells, cell_of, add);
}

// Row i of grouped_counts. `preds` is N x B row-major (or null: P = 1); `weights` may be null.
// Returns kErrNone (counted or left out) or the error code; `bad_col` gets the batch column.
template <class Code, class W, class Out, class Adder>
CLARION_HD int count_row(const CountsProblem& pb, i64 i, const Code* groups, const Code* labels,
                         const Code* preds, const W* weights, Adder& add, i64* bad_col) {
  const i64 g = groups[i];
  if (g == -1) return kErrNone;
  if (!code_in_range(g, pb.n_groups)) return kErrGroups;
  const i64 l = labels[i];
  if (!code_in_range(l, pb.n_labels)) return kErrLabels;
  Out w = 1;
  if (weights != nullptr) {
    const double wd = static_cast<double>(weights[i]);
    if (!weight_ok(wd)) return kErrWeights;
    w = static_cast<Out>(wd);
  }
  const Code* prow = preds != nullptr ? preds + i * pb.n_batch : nullptr;
  if (prow != nullptr) {
    for (i64 b = 0; b < pb.n_batch; ++b) {
      if (!code_in_range(static_cast<i64>(prow[b]), pb.n_preds)) {
        *bad_col = b;
        return kErrPreds;
      }
    }
  }
  const i64 gl_base = (g * pb.n_labels + l) * pb.n_preds;
  auto code_of = [prow](i64 b) -> i64 { return prow != nullptr ? static_cast<i64>(prow[b]) : 0; };
  add_row<Out>(pb, i, gl_base, w, code_of, add);
  return kErrNone;
}

// Fast path of count_row for the common case (one prediction column or none, no bootstrap):
// the same checks and arithmetic with the optional inputs resolved at compile time.
template <bool kPreds, bool kWeights, class Code, class W, class Out, class Adder>
CLARION_HD int count_row_single(const CountsProblem& pb, i64 i, const Code* groups, const Code* labels,
                                const Code* preds, const W* weights, Adder& add, i64* bad_col) {
  const i64 g = groups[i];
  if (g == -1) return kErrNone;
  const i64 l = labels[i];
  const i64 p = kPreds ? static_cast<i64>(preds[i]) : 0;
  Out w = 1;
  if (kWeights) w = static_cast<Out>(weights[i]);
  const bool ok = code_in_range(g, pb.n_groups) & code_in_range(l, pb.n_labels) &
                  code_in_range(p, pb.n_preds) & (!kWeights || weight_ok(static_cast<double>(weights[i])));
  if (!ok) {
    if (!code_in_range(g, pb.n_groups)) return kErrGroups;
    if (!code_in_range(l, pb.n_labels)) return kErrLabels;
    if (kWeights && !weight_ok(static_cast<double>(weights[i]))) return kErrWeights;
    *bad_col = 0;
    return kErrPreds;
  }
  add((g * pb.n_labels + l) * pb.n_preds + p, w);
  return kErrNone;
}

// Row i of grouped_threshold_counts: like count_row with the predicted code replaced by the score
// bin (pb.n_preds == T + 1). `scores` is N x B row-major.
template <class Code, class S, class W, class Out, class Adder>
CLARION_HD int threshold_row(const CountsProblem& pb, i64 i, const Code* groups, const Code* labels,
                             const S* scores, const double* thresholds, const W* weights, Adder& add,
                             i64* bad_col) {
  const i64 g = groups[i];
  if (g == -1) return kErrNone;
  if (!code_in_range(g, pb.n_groups)) return kErrGroups;
  const i64 l = labels[i];
  if (!code_in_range(l, pb.n_labels)) return kErrLabels;
  Out w = 1;
  if (weights != nullptr) {
    const double wd = static_cast<double>(weights[i]);
    if (!weight_ok(wd)) return kErrWeights;
    w = static_cast<Out>(wd);
  }
  const S* srow = scores + i * pb.n_batch;
  for (i64 b = 0; b < pb.n_batch; ++b) {
    const double s = static_cast<double>(srow[b]);
    if (s != s) {
      *bad_col = b;
      return kErrScores;
    }
  }
  const i64 T = pb.n_preds - 1;
  const i64 gl_base = (g * pb.n_labels + l) * pb.n_preds;
  auto code_of = [srow, thresholds, T](i64 b) -> i64 {
    return score_bin(static_cast<double>(srow[b]), thresholds, T);
  };
  add_row<Out>(pb, i, gl_base, w, code_of, add);
  return kErrNone;
}

// Turns one histogram [G*L][T+1] (bins of score_bin) into counts [T][G*L][2]: for threshold j,
// cell 1 = rows with score >= t[j] = bins j+1..T, cell 0 = bins 0..j. Sums run in a fixed order.
template <class Out>
CLARION_HD void histogram_to_threshold_counts(const Out* hist, i64 gl_cells, i64 T, Out* out, i64 c) {
  // c: which (group, label) cell of this histogram to transform
  const Out* h = hist + c * (T + 1);
  Out acc = 0;
  for (i64 j = T - 1; j >= 0; --j) {  // suffix sums: never subtract, so no cancellation
    acc += h[j + 1];
    out[(j * gl_cells + c) * 2 + 1] = acc;
  }
  acc = 0;
  for (i64 j = 0; j < T; ++j) {
    acc += h[j];
    out[(j * gl_cells + c) * 2 + 0] = acc;
  }
}

}  // namespace clarion::bias
