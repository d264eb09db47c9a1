// CPU drivers of the grouped count kernels: the row arithmetic is in grouped_counts.hpp, the
// threading in parallel.hpp.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "clarion/grouped_counts_drivers.hpp"
#include "clarion/parallel.hpp"

namespace clarion::bias {

namespace {

// Bootstrap driver: the same draws and additions as count_row/threshold_row with n_boot > 0, in
// a cache-friendly order. A block of rows is validated and its cells recorded once (row_fn runs
// the no-bootstrap row function), then each replicate walks the block, adding each row with
// add_replicate (grouped_counts.hpp), the function add_row calls: one replicate key per block
// instead of per row, and additions stay inside one replicate's table. Every table cell still
// receives its additions in ascending row order within the same chunk slots, so integer and
// floating results are bit-identical to the row-major loop.
template <class Out, class RowFn>
RowError bootstrap_cpu(const CountsProblem& pb, int n_threads, Out* out, RowFn&& row_fn) {
  constexpr i64 kBlock = 256;
  const i64 B = pb.n_batch, replicate_cells = pb.n_batch * pb.table_cells(), row_offset = pb.row_offset;
  const rng::ReplicateKeys keys(pb.seed);
  return detail::run_chunked_ranges<Out>(
      pb.n_rows, pb.total_cells(), n_threads, out, [&](i64 begin, i64 end, Out* table) -> RowError {
        std::vector<i64> cell(static_cast<size_t>(kBlock * B));
        std::vector<i64> row(kBlock);
        std::vector<Out> weight(kBlock);
        auto add = [table](i64 c, Out v) { table[c] += v; };
        for (i64 b0 = begin; b0 < end; b0 += kBlock) {
          const i64 b1 = std::min(end, b0 + kBlock);
          i64 m = 0, nb = 0;
          Out wlast{0};
          auto record = [&](i64 c, Out v) {
            cell[static_cast<size_t>(m * B + nb++)] = c;
            wlast = v;
          };
          for (i64 i = b0; i < b1; ++i) {
            i64 bad_col = -1;
            nb = 0;
            const int err = row_fn(i, record, &bad_col);
            if (err != 0) return RowError{err, i, bad_col};
            if (nb == B) {
              row[m] = i;
              weight[m] = wlast;
              ++m;
            }
          }
          for (i64 r = 0; r < pb.n_boot; ++r) {
            const u64 key = keys(r);
            const i64 tr = r * replicate_cells;
            for (i64 j = 0; j < m; ++j) {
              const i64* cj = cell.data() + j * B;
              add_replicate<false, Out>(
                  key, row_offset + row[j], weight[j], B, tr, [cj](i64 b) { return cj[b]; }, add);
            }
          }
        }
        return RowError{};
      });
}

}  // namespace

template <class Code, class W, class Out>
RowError grouped_counts_cpu(const CountsProblem& pb, const Code* groups, const Code* labels,
                            const Code* preds, const W* weights, Out* out, int n_threads) {
  if (pb.n_boot == 0 && pb.n_batch == 1) {
    auto single = [&](auto preds_tag, auto weights_tag) {
      constexpr bool kPreds = decltype(preds_tag)::value;
      constexpr bool kWeights = decltype(weights_tag)::value;
      return detail::run_chunked<Out>(pb.n_rows, pb.total_cells(), n_threads, out,
                                      [&](i64 i, auto& add, i64* bad_col) {
                                        return count_row_single<kPreds, kWeights, Code, W, Out>(
                                            pb, i, groups, labels, preds, weights, add, bad_col);
                                      });
    };
    using T = std::true_type;
    using F = std::false_type;
    if (preds != nullptr) return weights != nullptr ? single(T{}, T{}) : single(T{}, F{});
    return weights != nullptr ? single(F{}, T{}) : single(F{}, F{});
  }
  if (pb.n_boot > 0) {
    CountsProblem plain = pb;
    plain.n_boot = 0;
    return bootstrap_cpu<Out>(pb, n_threads, out, [&](i64 i, auto& add, i64* bad_col) {
      return count_row<Code, W, Out>(plain, i, groups, labels, preds, weights, add, bad_col);
    });
  }
  return detail::run_chunked<Out>(
      pb.n_rows, pb.total_cells(), n_threads, out, [&](i64 i, auto& add, i64* bad_col) {
        return count_row<Code, W, Out>(pb, i, groups, labels, preds, weights, add, bad_col);
      });
}

template <class Code, class S, class W, class Out>
RowError grouped_threshold_counts_cpu(const CountsProblem& pb, const Code* groups, const Code* labels,
                                      const S* scores, const double* thresholds, const W* weights, Out* out,
                                      int n_threads) {
  const i64 T = pb.n_preds - 1;
  if (T == 0) {
    // No thresholds: the output is empty, and the histogram (whose size the caller's `out` does
    // not bound then) is not needed; the rows are still checked, adding nowhere.
    CountsProblem plain = pb;
    plain.n_boot = 0;
    return detail::run_chunked_ranges<Out>(pb.n_rows, 0, n_threads, out, [&](i64 begin, i64 end, Out*) {
      auto discard = [](i64, Out) {};
      for (i64 i = begin; i < end; ++i) {
        i64 bad_col = -1;
        const int e = threshold_row<Code, S, W, Out>(plain, i, groups, labels, scores, thresholds, weights,
                                                     discard, &bad_col);
        if (e != 0) return RowError{e, i, bad_col};
      }
      return RowError{};
    });
  }
  std::vector<Out> hist(static_cast<size_t>(pb.total_cells()));
  RowError err;
  if (pb.n_boot > 0) {
    CountsProblem plain = pb;
    plain.n_boot = 0;
    err = bootstrap_cpu<Out>(pb, n_threads, hist.data(), [&](i64 i, auto& add, i64* bad_col) {
      return threshold_row<Code, S, W, Out>(plain, i, groups, labels, scores, thresholds, weights, add,
                                            bad_col);
    });
  } else {
    err = detail::run_chunked<Out>(pb.n_rows, pb.total_cells(), n_threads, hist.data(),
                                   [&](i64 i, auto& add, i64* bad_col) {
                                     return threshold_row<Code, S, W, Out>(pb, i, groups, labels, scores,
                                                                           thresholds, weights, add, bad_col);
                                   });
  }
  if (err.what != 0) return err;
  const i64 gl_cells = pb.n_groups * pb.n_labels;
  const i64 tables = (pb.n_boot > 0 ? pb.n_boot : 1) * pb.n_batch;
  for (i64 tb = 0; tb < tables; ++tb) {
    const Out* h = hist.data() + tb * gl_cells * (T + 1);
    Out* o = out + tb * T * gl_cells * 2;
    for (i64 c = 0; c < gl_cells; ++c) histogram_to_threshold_counts<Out>(h, gl_cells, T, o, c);
  }
  return err;
}

#define CLARION_INSTANTIATE_COUNTS(Code)                                                                     \
  template RowError grouped_counts_cpu<Code, float, i64>(const CountsProblem&, const Code*, const Code*,     \
                                                         const Code*, const float*, i64*, int);              \
  template RowError grouped_counts_cpu<Code, float, double>(const CountsProblem&, const Code*, const Code*,  \
                                                            const Code*, const float*, double*, int);        \
  template RowError grouped_counts_cpu<Code, double, double>(const CountsProblem&, const Code*, const Code*, \
                                                             const Code*, const double*, double*, int);      \
  template RowError grouped_threshold_counts_cpu<Code, float, float, i64>(                                   \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const float*, i64*, int); \
  template RowError grouped_threshold_counts_cpu<Code, double, float, i64>(                                  \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const float*, i64*,      \
      int);                                                                                                  \
  template RowError grouped_threshold_counts_cpu<Code, float, float, double>(                                \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const float*, double*,    \
      int);                                                                                                  \
  template RowError grouped_threshold_counts_cpu<Code, double, float, double>(                               \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const float*, double*,   \
      int);                                                                                                  \
  template RowError grouped_threshold_counts_cpu<Code, float, double, double>(                               \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const double*, double*,   \
      int);                                                                                                  \
  template RowError grouped_threshold_counts_cpu<Code, double, double, double>(                              \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const double*, double*,  \
      int);

CLARION_INSTANTIATE_COUNTS(std::int8_t)
CLARION_INSTANTIATE_COUNTS(std::int16_t)
CLARION_INSTANTIATE_COUNTS(std::int32_t)
CLARION_INSTANTIATE_COUNTS(std::int64_t)
#undef CLARION_INSTANTIATE_COUNTS

}  // namespace clarion::bias
