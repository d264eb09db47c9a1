// CPU drivers of the grouped count kernels: the row arithmetic is in grouped_counts.hpp, the
// threading in parallel.hpp.
#include <cstdint>
#include <type_traits>
#include <vector>

#include "clarion/grouped_counts_drivers.hpp"
#include "clarion/parallel.hpp"

namespace clarion::bias {

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
  return detail::run_chunked<Out>(pb.n_rows, pb.total_cells(), n_threads, out,
                                  [&](i64 i, auto& add, i64* bad_col) {
                                    return count_row<Code, W, Out>(pb, i, groups, labels, preds, weights, add, bad_col);
                                  });
}

template <class Code, class S, class W, class Out>
RowError grouped_threshold_counts_cpu(const CountsProblem& pb, const Code* groups, const Code* labels,
                                      const S* scores, const double* thresholds, const W* weights,
                                      Out* out, int n_threads) {
  const i64 T = pb.n_preds - 1;
  std::vector<Out> hist(static_cast<size_t>(pb.total_cells()));
  RowError err = detail::run_chunked<Out>(
      pb.n_rows, pb.total_cells(), n_threads, hist.data(), [&](i64 i, auto& add, i64* bad_col) {
        return threshold_row<Code, S, W, Out>(pb, i, groups, labels, scores, thresholds, weights, add, bad_col);
      });
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

#define CLARION_INSTANTIATE_COUNTS(Code)                                                                 \
  template RowError grouped_counts_cpu<Code, float, i64>(const CountsProblem&, const Code*, const Code*,   \
                                                         const Code*, const float*, i64*, int);           \
  template RowError grouped_counts_cpu<Code, float, double>(const CountsProblem&, const Code*, const Code*, \
                                                            const Code*, const float*, double*, int);     \
  template RowError grouped_counts_cpu<Code, double, double>(const CountsProblem&, const Code*, const Code*, \
                                                             const Code*, const double*, double*, int);   \
  template RowError grouped_threshold_counts_cpu<Code, float, float, i64>(                                 \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const float*, i64*, int); \
  template RowError grouped_threshold_counts_cpu<Code, double, float, i64>(                                \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const float*, i64*, int); \
  template RowError grouped_threshold_counts_cpu<Code, float, float, double>(                              \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const float*, double*, int); \
  template RowError grouped_threshold_counts_cpu<Code, double, float, double>(                             \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const float*, double*, int); \
  template RowError grouped_threshold_counts_cpu<Code, float, double, double>(                             \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const double*, double*, int); \
  template RowError grouped_threshold_counts_cpu<Code, double, double, double>(                            \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const double*, double*, int);

CLARION_INSTANTIATE_COUNTS(std::int8_t)
CLARION_INSTANTIATE_COUNTS(std::int16_t)
CLARION_INSTANTIATE_COUNTS(std::int32_t)
CLARION_INSTANTIATE_COUNTS(std::int64_t)
#undef CLARION_INSTANTIATE_COUNTS

}  // namespace clarion::bias
