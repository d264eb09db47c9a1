// Kernel SHAP per-element math, shared by the CPU drivers (shap_cpu.cpp) and the CUDA kernels
// (shap_cuda.cu). See ../shared/spec/kernel-shap.md for the derivation. The numpy twin of every
// function lives in clarion/_reference.py ("Kernel SHAP" section).
#pragma once

#include <cmath>

#include "clarion/common.hpp"
#include "clarion/rng.hpp"

namespace clarion::shap {

constexpr int kLinkIdentity = 0;
constexpr int kLinkLogit = 1;
// shap's logit clips probabilities to [eps, 1 - eps] before log(p / (1 - p)).
constexpr double kLogitEps = 1e-15;

// Unnormalised Shapley kernel mass of all coalitions of size s (0 < s < M): (M - 1) / (s (M - s)).
// Dividing by C(M, s) gives the per-coalition kernel weight pi_M(s) = (M-1) / (C(M,s) s (M-s)).
CLARION_HD double size_mass(int M, int s) {
  return (static_cast<double>(M) - 1.0) / (static_cast<double>(s) * static_cast<double>(M - s));
}

// C(n, k) as a double, by the same multiplicative loop in C++ and in the numpy reference.
CLARION_HD double binom(int n, int k) {
  double r = 1.0;
  for (int i = 1; i <= k; ++i) r = r * static_cast<double>(n - k + i) / static_cast<double>(i);
  return r;
}

// Uniform double in [0, 1) from draw number `counter` of the stream keyed by `key` (53 bits).
CLARION_HD double uniform01(u64 key, u64 counter) {
  return static_cast<double>(rng::splitmix64(key + counter) >> 11) * 0x1.0p-53;
}

// Key of the coalition stream for a user seed.
CLARION_HD u64 plan_key(u64 seed) { return rng::splitmix64(seed ^ 0x5348415050ULL); }

// One column of one synthetic row: column c comes from the explained row x when the player owning
// it is present in coalition z (or when the column belongs to no player: player < 0, "fixed to
// x"), and from the background row b otherwise.
CLARION_HD bool takes_x(const unsigned char* z, const int* col_player, i64 c) {
  const int p = col_player[c];
  return p < 0 || z[p] != 0;
}

template <class T>
CLARION_HD T masked_value(const T* x, const T* b, const unsigned char* z, const int* col_player, i64 c) {
  return takes_x(z, col_player, c) ? x[c] : b[c];
}

// The link applied after the background average: identity, or shap's clipped logit.
CLARION_HD double apply_link(double v, int link) {
  if (link == kLinkLogit) {
    const double p = v < kLogitEps ? kLogitEps : (v > 1.0 - kLogitEps ? 1.0 - kLogitEps : v);
    return log(p / (1.0 - p));
  }
  return v;
}

// v(z) for one coalition and output d: g(sum_k pi_k F[k, d]), F holding the K model outputs of the
// coalition's synthetic rows (row stride D). Summed in k order so every backend agrees bitwise.
CLARION_HD double background_value(const double* F, const double* pi, i64 K, i64 D, i64 d, int link) {
  double acc = 0.0;
  for (i64 k = 0; k < K; ++k) acc += pi[k] * F[k * D + d];
  return apply_link(acc, link);
}

// ---- Operator application: phi[n, m, d] += LT[s, m] * (Y[q - q0, d] - base[d]) ----------------
// For a chunk of pairs [q0, q1) (q = n * S + s). Each backend visits the elements in its own order
// (the CPU loops q, then m, then d; a CUDA thread owns one (n, m, d)), but every element receives
// its terms through apply_term, in ascending q, so the result does not depend on the chunking, the
// thread count or the loop order.

// The explained rows a chunk touches: [chunk_first_row, chunk_end_row). Needs q0 < q1.
CLARION_HD i64 chunk_first_row(i64 q0, i64 S) { return q0 / S; }
CLARION_HD i64 chunk_end_row(i64 q1, i64 S) { return (q1 - 1) / S + 1; }

// The pairs of explained row n inside the chunk: [row_pair_begin, row_pair_end).
CLARION_HD i64 row_pair_begin(i64 n, i64 S, i64 q0) { return q0 > n * S ? q0 : n * S; }
CLARION_HD i64 row_pair_end(i64 n, i64 S, i64 q1) { return q1 < (n + 1) * S ? q1 : (n + 1) * S; }

// The value of coalition output d relative to the base value: Y[q - q0, d] - base[d].
CLARION_HD double centred(double y, double base) { return y - base; }

// One term: the accumulated phi[n, m, d] plus LT[s, m] times a centred value.
CLARION_HD double apply_term(double acc, double lt, double centred_y) { return acc + lt * centred_y; }

// phi[n, m, d] (given as `acc`) after the terms of row n's pairs in [q0, q1), in q order.
CLARION_HD double apply_element(double acc, const double* Y, const double* base, const double* LT, i64 S,
                                i64 Mo, i64 D, i64 q0, i64 q1, i64 n, i64 m, i64 d) {
  const i64 qb = row_pair_end(n, S, q1);
  for (i64 q = row_pair_begin(n, S, q0); q < qb; ++q)
    acc = apply_term(acc, LT[(q - n * S) * Mo + m], centred(Y[(q - q0) * D + d], base[d]));
  return acc;
}

}  // namespace clarion::shap
