// Per-row arithmetic of the exact k-nearest-neighbour vote behind FlipTest, shared by the CPU
// driver (knn_cpu.cpp, a kd-tree) and the CUDA driver (knn_cuda.cu, tiled brute force).
//
// Exactness contract: the squared Euclidean distance of a query q to a point x is
//   d = (...((0 + t_0*t_0) + t_1*t_1) + ...) + t_{M-1}*t_{M-1},   t_j = q_j - x_j,
// evaluated in float64, left to right, each product and sum rounded on its own (no fused
// multiply-add: the CUDA side uses __dmul_rn/__dadd_rn, the CPU file is compiled with
// -ffp-contract=off). Every backend and the numpy reference therefore see bit-identical distances,
// and "the k nearest" is a well-defined set: candidates are ordered by (distance, a-row index),
// so equal distances are broken by the lower a-row index.
//
// Because rounding is monotone, box_lower_bound() (the same expression with each t_j replaced by
// the gap between q_j and a box [lo_j, hi_j]) is <= the computed distance of every point inside
// the box, and a partial sum over the first j terms is <= the full sum. Pruning with these bounds
// (strictly greater than the current k-th distance) never drops a true neighbour.
#pragma once

#include <cstdint>

#include "clarion/common.hpp"

namespace clarion::knn {

CLARION_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

CLARION_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

CLARION_HD double sub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

// One term of the distance sum: (q - x)^2, rounded as described above.
CLARION_HD double sq_term(double q, double x) {
  const double t = sub_rn(q, x);
  return mul_rn(t, t);
}

// Squared Euclidean distance of q[0..m) to x[0..m) (both contiguous).
CLARION_HD double sq_dist(const double* q, const double* x, i64 m) {
  double acc = 0.0;
  for (i64 j = 0; j < m; ++j) acc = add_rn(acc, sq_term(q[j], x[j]));
  return acc;
}

// Squared distance with early exit: returns a value > bound as soon as a partial sum exceeds
// `bound` (then the exact distance exceeds it too); otherwise the exact distance.
CLARION_HD double sq_dist_bounded(const double* q, const double* x, i64 m, double bound) {
  double acc = 0.0;
  for (i64 j = 0; j < m; ++j) {
    acc = add_rn(acc, sq_term(q[j], x[j]));
    if (acc > bound) return acc;
  }
  return acc;
}

// sq_dist of q to each of `count` points stored column by column (point p's column j at
// cols[j * count + p]) into acc[0..count): the same left-to-right sums as sq_dist, laid out so
// that the loop over points vectorises.
CLARION_HD void sq_dist_columns(const double* q, const double* cols, i64 count, i64 m, double* acc) {
  for (i64 p = 0; p < count; ++p) acc[p] = 0.0;
  for (i64 j = 0; j < m; ++j) {
    const double qj = q[j];
    const double* col = cols + j * count;
    for (i64 p = 0; p < count; ++p) acc[p] = add_rn(acc[p], sq_term(qj, col[p]));
  }
}

// Lower bound of sq_dist(q, x) over every x with lo[j] <= x[j] <= hi[j]. The gap is computed as
// (lo - q) or (q - hi), which by monotone rounding is <= |fl(q - x)| for every x in the box.
CLARION_HD double box_lower_bound(const double* q, const double* lo, const double* hi, i64 m) {
  double acc = 0.0;
  for (i64 j = 0; j < m; ++j) {
    double t = 0.0;
    if (q[j] < lo[j])
      t = sub_rn(lo[j], q[j]);
    else if (q[j] > hi[j])
      t = sub_rn(q[j], hi[j]);
    acc = add_rn(acc, mul_rn(t, t));
  }
  return acc;
}

// The neighbour order: (distance, a-row index) lexicographically.
CLARION_HD bool closer(double d1, i64 i1, double d2, i64 i2) { return d1 < d2 || (d1 == d2 && i1 < i2); }

// Majority vote of k neighbours with `positives` positive labels: positive only when strictly more
// than half are positive (an even split votes negative, as scikit-learn's KNeighborsClassifier does:
// its classes are sorted [False, True] and the first of equal counts wins).
CLARION_HD bool majority_vote(i64 positives, i64 k) { return 2 * positives > k; }

// Offer (d, idx, label) to a neighbour list sorted by closer(), of current length *len and capacity
// k: the list keeps the k closest offered so far. Returns true when the candidate was kept. Used by
// the CUDA kernel and by the CPU driver for small k.
CLARION_HD bool insert_sorted(double* dist, i64* index, std::uint8_t* label, i64* len, i64 k, double d,
                              i64 idx, std::uint8_t lab) {
  i64 n = *len;
  if (n == k) {
    if (!closer(d, idx, dist[n - 1], index[n - 1])) return false;
    --n;
  }
  i64 pos = n;
  while (pos > 0 && closer(d, idx, dist[pos - 1], index[pos - 1])) {
    dist[pos] = dist[pos - 1];
    index[pos] = index[pos - 1];
    label[pos] = label[pos - 1];
    --pos;
  }
  dist[pos] = d;
  index[pos] = idx;
  label[pos] = lab;
  *len = n + 1;
  return true;
}

}  // namespace clarion::knn
