// Entry points of the exact k-nearest-neighbour vote (FlipTest's kernel). All pointers are host
// (CPU driver) or device (CUDA driver) memory, C-contiguous; only the outputs are written.
//
//   xa        [n_a x m] float64, the reference rows (facet a), row-major
//   ya        [n_a]     uint8 in {0, 1}, the reference rows' labels (the model's predictions)
//   xd        [n_d x m] float64, the query rows (facet d), row-major
//   positives [n_d]     int64 out: number of positive labels among the k nearest reference rows
//   votes     [n_d]     uint8 out: majority_vote(positives, k) (1 only for a strict majority)
//
// Neighbours are ordered by (squared distance, reference-row index), see knn.hpp, so the result
// equals a brute-force search with that tie rule, on every backend. Inputs must be finite and
// 1 <= k <= n_a, m >= 1 (the caller checks; the drivers throw std::invalid_argument otherwise).
#pragma once

#include <cstdint>

#include "clarion/common.hpp"

namespace clarion::knn {

struct KnnProblem {
  i64 n_a = 0;
  i64 n_d = 0;
  i64 m = 0;
  i64 k = 0;
};

void validate(const KnnProblem& pb);

// CPU: a kd-tree over xa (built once, in parallel), queried in parallel over the rows of xd.
void knn_vote_cpu(const KnnProblem& pb, const double* xa, const std::uint8_t* ya, const double* xd,
                  std::int64_t* positives, std::uint8_t* votes, int n_threads);

#ifdef CLARION_WITH_CUDA
// Largest k the CUDA kernel supports (lists of k > 32 live in a global scratch buffer).
constexpr i64 kCudaMaxK = 256;

// CUDA: tiled brute force over parts of xa, one thread per (query row, part), the parts' k-lists
// merged in the neighbour order. `stream` is a cudaStream_t (0: default); synchronised on return.
void knn_vote_cuda(const KnnProblem& pb, const double* xa, const std::uint8_t* ya, const double* xd,
                   std::int64_t* positives, std::uint8_t* votes, void* stream);
#endif

}  // namespace clarion::knn
