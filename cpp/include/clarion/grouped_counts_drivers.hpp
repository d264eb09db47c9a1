// Entry points of the grouped count kernels. All pointers are host (CPU drivers) or device (CUDA
// drivers) memory, C-contiguous, and read-only except `out`, which the caller allocates with
// pb.total_cells() elements (threshold kernel: see grouped_threshold_counts_*), and which the
// driver overwrites. A non-zero RowError names the first offending row; `out` is then undefined.
#pragma once

#include "clarion/common.hpp"
#include "clarion/grouped_counts.hpp"

namespace clarion::bias {

// groups, labels: [N] codes; preds: [N x B] codes or null; weights: [N] or null.
// Out = i64 when weights == null, double otherwise.
template <class Code, class W, class Out>
RowError grouped_counts_cpu(const CountsProblem& pb, const Code* groups, const Code* labels,
                            const Code* preds, const W* weights, Out* out, int n_threads);

// scores: [N x B]; thresholds: [T] sorted ascending, no NaN; pb.n_preds must be T + 1.
// out: [R][B][T][G][L][2] with R = max(n_boot, 1).
template <class Code, class S, class W, class Out>
RowError grouped_threshold_counts_cpu(const CountsProblem& pb, const Code* groups, const Code* labels,
                                      const S* scores, const double* thresholds, const W* weights, Out* out,
                                      int n_threads);

#ifdef CLARION_WITH_CUDA
// Same contracts, with every pointer in device memory. `stream` is a cudaStream_t (0: default).
template <class Code, class W, class Out>
RowError grouped_counts_cuda(const CountsProblem& pb, const Code* groups, const Code* labels,
                             const Code* preds, const W* weights, Out* out, void* stream);

template <class Code, class S, class W, class Out>
RowError grouped_threshold_counts_cuda(const CountsProblem& pb, const Code* groups, const Code* labels,
                                       const S* scores, const double* thresholds, const W* weights, Out* out,
                                       void* stream);

// Number of usable CUDA devices (0 when there is no driver or no device; never throws).
int cuda_device_count();
#endif

}  // namespace clarion::bias
