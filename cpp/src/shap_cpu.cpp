// CPU drivers of the Kernel SHAP kernels: coalition plan, WLS operator, masking, background
// reduction and operator application. The per-element arithmetic is in shap.hpp (shared with the
// CUDA kernels); this file decides how rows are iterated.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "clarion/parallel.hpp"
#include "clarion/shap_drivers.hpp"

namespace clarion::shap {
namespace {

// Split [0, n) into contiguous ranges over up to n_threads threads when the work is large enough.
template <class Fn>
void for_ranges(i64 n, i64 work_per_item, int n_threads, Fn&& fn) {
  const i64 min_work = i64{1} << 20;  // elements per thread: below that a thread costs more than it saves
  i64 threads = std::min<i64>(detail::resolve_threads(n_threads), std::max<i64>(1, n));
  threads = std::min<i64>(threads, std::max<i64>(1, n * std::max<i64>(work_per_item, 1) / min_work));
  const i64 span = (n + threads - 1) / std::max<i64>(threads, 1);
  detail::parallel_for_threads(static_cast<int>(threads), [&](int t) {
    const i64 lo = t * span, hi = std::min(n, lo + span);
    if (lo < hi) fn(lo, hi);
  });
}

struct PlanWriter {
  int M;
  unsigned char* Z;
  double* w;
  i64* block;
  i64 n = 0;
  std::unordered_map<std::string, i64> seen;

  std::string key_of(const unsigned char* z) const {
    return std::string(reinterpret_cast<const char*>(z), M);
  }
  i64 add(const unsigned char* z, double weight, i64 blk, bool track) {
    std::memcpy(Z + n * M, z, M);
    w[n] = weight;
    block[n] = blk;
    if (track) seen.emplace(key_of(z), n);
    return n++;
  }
};

// Next combination of k out of M in lexicographic order (itertools.combinations order).
bool next_combination(std::vector<int>& idx, int M) {
  const int k = static_cast<int>(idx.size());
  int i = k - 1;
  while (i >= 0 && idx[i] == M - k + i) --i;
  if (i < 0) return false;
  ++idx[i];
  for (int j = i + 1; j < k; ++j) idx[j] = idx[j - 1] + 1;
  return true;
}

// Cyclic Jacobi eigen-decomposition of the symmetric n x n matrix A (destroyed): A = V diag(e) V^T.
void jacobi_eigen(std::vector<double>& A, int n, std::vector<double>& e, std::vector<double>& V) {
  V.assign(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) V[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, total = 0.0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        total += A[i * n + j] * A[i * n + j];
        if (i != j) off += A[i * n + j] * A[i * n + j];
      }
    if (off <= 1e-30 * total || off == 0.0) break;
    for (int p = 0; p < n - 1; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = A[p * n + q];
        if (apq == 0.0) continue;
        const double theta = (A[q * n + q] - A[p * n + p]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double cs = 1.0 / std::sqrt(t * t + 1.0), sn = t * cs;
        for (int k = 0; k < n; ++k) {  // A <- A J (columns p, q)
          const double akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = cs * akp - sn * akq;
          A[k * n + q] = sn * akp + cs * akq;
        }
        for (int k = 0; k < n; ++k) {  // A <- J^T A (rows p, q)
          const double apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = cs * apk - sn * aqk;
          A[q * n + k] = sn * apk + cs * aqk;
        }
        for (int k = 0; k < n; ++k) {
          const double vkp = V[k * n + p], vkq = V[k * n + q];
          V[k * n + p] = cs * vkp - sn * vkq;
          V[k * n + q] = sn * vkp + cs * vkq;
        }
      }
  }
  e.resize(n);
  for (int i = 0; i < n; ++i) e[i] = A[i * n + i];
}

}  // namespace

i64 coalition_plan(int M, i64 n_samples, u64 seed, bool paired, unsigned char* Z, double* w, i64* block) {
  if (M < 2) throw std::invalid_argument("coalition_plan: M must be >= 2");
  if (n_samples < 1) throw std::invalid_argument("coalition_plan: n_samples must be >= 1");
  if (M <= 62 && n_samples > (i64{1} << M) - 2)
    throw std::invalid_argument("coalition_plan: n_samples exceeds 2^M - 2");
  const int n_sizes = (M - 1 + 1) / 2;  // ceil((M - 1) / 2)
  const int n_paired = (M - 1) / 2;     // floor((M - 1) / 2)
  std::vector<double> wv(n_sizes);
  double total = 0.0;
  for (int s = 1; s <= n_sizes; ++s) {
    wv[s - 1] = size_mass(M, s) * (s <= n_paired ? 2.0 : 1.0);
    total += wv[s - 1];
  }
  for (auto& v : wv) v /= total;

  PlanWriter out{M, Z, w, block, 0, {}};
  std::vector<unsigned char> mask(M), comp(M);

  // Phase 1: enumerate whole sizes, smallest first, while the budget covers them.
  int n_full = 0;
  double left = static_cast<double>(n_samples);
  std::vector<double> rem = wv;
  for (int s = 1; s <= n_sizes; ++s) {
    double nsub = binom(M, s);
    if (s <= n_paired) nsub *= 2.0;
    if (left * rem[s - 1] / nsub >= 1.0 - 1e-8) {
      ++n_full;
      left -= nsub;
      if (rem[s - 1] < 1.0) {
        const double scale = 1.0 - rem[s - 1];
        for (auto& v : rem) v /= scale;
      }
      double wk = wv[s - 1] / binom(M, s);
      if (s <= n_paired) wk /= 2.0;
      std::vector<int> idx(s);
      for (int i = 0; i < s; ++i) idx[i] = i;
      do {
        std::fill(mask.begin(), mask.end(), 0);
        for (int i : idx) mask[i] = 1;
        out.add(mask.data(), wk, -1, false);
        if (s <= n_paired) {
          for (int j = 0; j < M; ++j) comp[j] = 1 - mask[j];
          out.add(comp.data(), wk, -1, false);
        }
      } while (next_combination(idx, M));
    } else {
      break;
    }
  }

  // Phase 2: sample what is left by size mass, subsets uniform within a size.
  const i64 n_fixed = out.n;
  i64 samples_left = n_samples - n_fixed;
  if (n_full != n_sizes && samples_left > 0) {
    const int n_rest = n_sizes - n_full;
    std::vector<double> cdf(n_rest);
    double acc = 0.0;
    for (int i = 0; i < n_rest; ++i) {
      const int s = n_full + 1 + i;
      // Each paired draw yields two coalitions, so its size mass is halved (as in shap).
      cdf[i] = wv[s - 1] / ((paired && s <= n_paired) ? 2.0 : 1.0);
      acc += cdf[i];
    }
    double run = 0.0;
    for (int i = 0; i < n_rest; ++i) {
      run += cdf[i] / acc;
      cdf[i] = run;
    }
    const u64 key = plan_key(seed);
    u64 ctr = 0;
    std::vector<int> perm(M);
    std::vector<i64> comp_of(static_cast<size_t>(n_samples), -1);
    const i64 n_draws = 4 * samples_left;
    i64 draw = 0;
    for (i64 t = 0; t < n_draws && samples_left > 0; ++t) {
      const double u = uniform01(key, ctr++);
      int i = 0;
      while (i < n_rest - 1 && !(u < cdf[i])) ++i;
      const int s = n_full + 1 + i;
      for (int j = 0; j < M; ++j) perm[j] = j;
      for (int j = 0; j < s; ++j) {  // partial Fisher-Yates: perm[0..s) is a uniform s-subset
        int r = j + static_cast<int>(uniform01(key, ctr++) * static_cast<double>(M - j));
        if (r > M - 1) r = M - 1;
        std::swap(perm[j], perm[r]);
      }
      std::fill(mask.begin(), mask.end(), 0);
      for (int j = 0; j < s; ++j) mask[perm[j]] = 1;
      const bool has_pair = s <= n_paired;
      if (!paired && has_pair && uniform01(key, ctr++) < 0.5)
        for (int j = 0; j < M; ++j) mask[j] = 1 - mask[j];
      const auto it = out.seen.find(out.key_of(mask.data()));
      if (it == out.seen.end()) {
        const i64 at = out.add(mask.data(), 1.0, draw, true);
        --samples_left;
        if (paired && has_pair && samples_left > 0) {
          for (int j = 0; j < M; ++j) comp[j] = 1 - mask[j];
          comp_of[at] = out.add(comp.data(), 1.0, draw, false);
          --samples_left;
        }
        ++draw;
      } else {
        w[it->second] += 1.0;
        if (paired && has_pair && samples_left > 0 && comp_of[it->second] >= 0) w[comp_of[it->second]] += 1.0;
      }
    }
    double weight_left = 0.0;
    for (int i = n_full; i < n_sizes; ++i) weight_left += wv[i];
    double sampled = 0.0;
    for (i64 q = n_fixed; q < out.n; ++q) sampled += w[q];
    for (i64 q = n_fixed; q < out.n; ++q) w[q] *= weight_left / sampled;
  }
  return out.n;
}

int wls_operator(const unsigned char* Z, const double* w, i64 S, int M, double* L, double* c) {
  if (M < 2) throw std::invalid_argument("wls_operator: M must be >= 2");
  const int m = M - 1;  // the last player is eliminated through the efficiency constraint
  // A = X^T W X with X[s, j] = z[s, j] - z[s, M-1].
  std::vector<double> A(static_cast<size_t>(m) * m, 0.0), x(m);
  for (i64 s = 0; s < S; ++s) {
    const unsigned char* z = Z + s * M;
    for (int j = 0; j < m; ++j) x[j] = static_cast<double>(z[j]) - static_cast<double>(z[m]);
    for (int i = 0; i < m; ++i) {
      if (x[i] == 0.0) continue;
      const double wi = w[s] * x[i];
      for (int j = 0; j <= i; ++j) A[i * m + j] += wi * x[j];
    }
  }
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < i; ++j) A[j * m + i] = A[i * m + j];

  // Ainv by Cholesky (A = R R^T, lower R); fall back to the pseudo-inverse when a pivot vanishes.
  std::vector<double> Ainv(static_cast<size_t>(m) * m, 0.0);
  double max_diag = 0.0;
  for (int i = 0; i < m; ++i) max_diag = std::max(max_diag, A[i * m + i]);
  std::vector<double> R(static_cast<size_t>(m) * m, 0.0);
  bool ok = max_diag > 0.0;
  for (int j = 0; j < m && ok; ++j) {
    double d = A[j * m + j];
    for (int k = 0; k < j; ++k) d -= R[j * m + k] * R[j * m + k];
    if (!(d > 1e-10 * max_diag)) {
      ok = false;
      break;
    }
    R[j * m + j] = std::sqrt(d);
    for (int i = j + 1; i < m; ++i) {
      double v = A[i * m + j];
      for (int k = 0; k < j; ++k) v -= R[i * m + k] * R[j * m + k];
      R[i * m + j] = v / R[j * m + j];
    }
  }
  int status = 0;
  if (ok) {
    // Solve R R^T Ainv = I column by column.
    std::vector<double> y(m);
    for (int col = 0; col < m; ++col) {
      for (int i = 0; i < m; ++i) {
        double v = (i == col) ? 1.0 : 0.0;
        for (int k = 0; k < i; ++k) v -= R[i * m + k] * y[k];
        y[i] = v / R[i * m + i];
      }
      for (int i = m - 1; i >= 0; --i) {
        double v = y[i];
        for (int k = i + 1; k < m; ++k) v -= R[k * m + i] * Ainv[k * m + col];
        Ainv[i * m + col] = v / R[i * m + i];
      }
    }
  } else {
    status = 1;
    std::vector<double> work = A, e, V;
    jacobi_eigen(work, m, e, V);
    double emax = 0.0;
    for (double v : e) emax = std::max(emax, std::fabs(v));
    const double cut = 1e-10 * emax;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j) {
        double v = 0.0;
        for (int k = 0; k < m; ++k)
          if (std::fabs(e[k]) > cut) v += V[i * m + k] * V[j * m + k] / e[k];
        Ainv[i * m + j] = v;
      }
  }

  // P = Ainv X^T W  (m x S);  L = [P; -1^T P];  p = P z_last;  c = [-p; 1 + 1^T p].
  std::vector<double> p(m, 0.0);
  for (i64 s = 0; s < S; ++s) {
    const unsigned char* z = Z + s * M;
    for (int j = 0; j < m; ++j) x[j] = (static_cast<double>(z[j]) - static_cast<double>(z[m])) * w[s];
    double colsum = 0.0;
    for (int i = 0; i < m; ++i) {
      double v = 0.0;
      for (int j = 0; j < m; ++j) v += Ainv[i * m + j] * x[j];
      L[i * S + s] = v;
      colsum += v;
      if (z[m]) p[i] += v;
    }
    L[static_cast<i64>(m) * S + s] = -colsum;
  }
  double psum = 0.0;
  for (int i = 0; i < m; ++i) {
    c[i] = -p[i];
    psum += p[i];
  }
  c[m] = 1.0 + psum;
  return status;
}

template <class T>
void mask_cpu(const T* X, const T* B, const unsigned char* Z, const int* col_player, i64 P, i64 M, i64 K,
              i64 S, i64 q0, i64 q1, T* out, int n_threads) {
  const i64 nq = q1 - q0;
  if (nq <= 0 || K <= 0 || P <= 0) return;
  for_ranges(nq, K * P, n_threads, [&](i64 lo, i64 hi) {
    std::vector<i64> from_x(static_cast<size_t>(P));
    for (i64 iq = lo; iq < hi; ++iq) {
      const i64 q = q0 + iq, n = q / S, s = q % S;
      const unsigned char* z = Z + s * M;
      const T* x = X + n * P;
      // The masked_value rule evaluated once per (row, coalition): copy the whole background
      // block, then overwrite the columns that come from x.
      i64 nx = 0;
      for (i64 c = 0; c < P; ++c)
        if (takes_x(z, col_player, c)) from_x[nx++] = c;
      T* o = out + iq * K * P;
      std::memcpy(o, B, static_cast<size_t>(K * P) * sizeof(T));
      for (i64 k = 0; k < K; ++k) {
        T* ok = o + k * P;
        for (i64 i = 0; i < nx; ++i) ok[from_x[i]] = x[from_x[i]];
      }
    }
  });
}

template void mask_cpu<float>(const float*, const float*, const unsigned char*, const int*, i64, i64, i64,
                              i64, i64, i64, float*, int);
template void mask_cpu<double>(const double*, const double*, const unsigned char*, const int*, i64, i64, i64,
                               i64, i64, i64, double*, int);

void reduce_cpu(const double* F, const double* pi, i64 R, i64 K, i64 D, int link, double* Y, int n_threads) {
  if (R <= 0 || D <= 0) return;
  for_ranges(R, K * D, n_threads, [&](i64 lo, i64 hi) {
    for (i64 r = lo; r < hi; ++r)
      for (i64 d = 0; d < D; ++d) Y[r * D + d] = background_value(F + r * K * D, pi, K, D, d, link);
  });
}

void apply_cpu(const double* Y, const double* base, const double* LT, i64 S, i64 Mo, i64 D, i64 q0, i64 q1,
               double* phi, int n_threads) {
  if (q1 <= q0 || S <= 0) return;
  const i64 n0 = chunk_first_row(q0, S), n1 = chunk_end_row(q1, S);
  for_ranges(n1 - n0, std::max<i64>(1, (q1 - q0) / (n1 - n0)) * Mo * D, n_threads, [&](i64 lo, i64 hi) {
    std::vector<double> y(static_cast<size_t>(D));
    for (i64 n = n0 + lo; n < n0 + hi; ++n) {
      const i64 qb = row_pair_end(n, S, q1);
      double* ph = phi + n * Mo * D;
      for (i64 q = row_pair_begin(n, S, q0); q < qb; ++q) {
        const i64 s = q - n * S;
        for (i64 d = 0; d < D; ++d) y[d] = centred(Y[(q - q0) * D + d], base[d]);
        const double* l = LT + s * Mo;
        for (i64 m = 0; m < Mo; ++m) {
          const double lm = l[m];
          for (i64 d = 0; d < D; ++d) ph[m * D + d] = apply_term(ph[m * D + d], lm, y[d]);
        }
      }
    }
  });
}

}  // namespace clarion::shap
