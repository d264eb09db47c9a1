// Entry points of the Kernel SHAP kernels. CPU drivers take host pointers, CUDA drivers device
// pointers; all arrays are C-contiguous. Outputs are allocated by the caller.
//
// Index conventions: an explained row n and a coalition s form the "pair" q = n * S + s; a chunk
// is a range [q0, q1) of pairs; the synthetic rows of a chunk are ordered (q, k) with the K
// background rows innermost, so synthetic row r = (q - q0) * K + k.
#pragma once

#include "clarion/common.hpp"
#include "clarion/shap.hpp"

namespace clarion::shap {

// shap's coalition plan (spec section 3): sizes enumerated whole while the budget covers them,
// the rest sampled by size mass, each draw paired with its complement when `paired`, duplicates
// merged into weights. Writes S <= n_samples rows of Z [n_samples x M] (0/1 bytes), weights w [S]
// (sum 1) and block [S] (-1 for enumerated coalitions, else the index of the sampled draw that
// produced it, shared by a coalition and its complement). Returns S. n_samples must be in
// [1, 2^M - 2] (the caller caps it). Deterministic in (M, n_samples, seed, paired).
i64 coalition_plan(int M, i64 n_samples, u64 seed, bool paired, unsigned char* Z, double* w, i64* block);

// The fixed operator of the constrained WLS solve (spec 2.3): phi = L y + c Delta with
// L [M x S], c [M] (row-major, float64). Cholesky of the (M-1)x(M-1) normal matrix; when it is
// not positive definite to working precision, a pseudo-inverse (symmetric Jacobi eigensolver)
// gives the minimum-norm least-squares solution instead. Returns 0 (Cholesky) or 1 (fallback).
int wls_operator(const unsigned char* Z, const double* w, i64 S, int M, double* L, double* c);

// Masking: out[(q - q0) * K + k, c] = masked_value(X[n], B[k], Z[s], col_player, c) for q in
// [q0, q1), n = q / S, s = q % S. X [N x P], B [K x P], Z [S x M], col_player [P] (values in [-1, M)), out
// [(q1 - q0) * K x P]. X, B and out must not overlap.
template <class T>
void mask_cpu(const T* X, const T* B, const unsigned char* Z, const int* col_player, i64 P, i64 M, i64 K,
              i64 S, i64 q0, i64 q1, T* out, int n_threads);

// Background reduction: Y[r, d] = g(sum_k pi_k F[r * K + k, d]) for r in [0, R). F [R*K x D].
void reduce_cpu(const double* F, const double* pi, i64 R, i64 K, i64 D, int link, double* Y, int n_threads);

// Operator application for one chunk: for q in [q0, q1) (n = q / S, s = q % S)
//   phi[n, m, d] += LT[s, m] * (Y[q - q0, d] - base[d])
// LT [S x Mo] is the transposed operator (Mo may stack several operators), phi [N x Mo x D].
// Within a row, coalitions are added in s order, so the result does not depend on the chunking
// or the thread count.
void apply_cpu(const double* Y, const double* base, const double* LT, i64 S, i64 Mo, i64 D, i64 q0, i64 q1,
               double* phi, int n_threads);

#ifdef CLARION_WITH_CUDA
template <class T>
void mask_cuda(const T* X, const T* B, const unsigned char* Z, const int* col_player, i64 P, i64 M, i64 K,
               i64 S, i64 q0, i64 q1, T* out, void* stream);
void reduce_cuda(const double* F, const double* pi, i64 R, i64 K, i64 D, int link, double* Y, void* stream);
void apply_cuda(const double* Y, const double* base, const double* LT, i64 S, i64 Mo, i64 D, i64 q0, i64 q1,
                double* phi, void* stream);
#endif

}  // namespace clarion::shap
