// Bindings of the Kernel SHAP kernels: shape/dtype checks and conversion only; the GIL is released
// around every kernel. Python allocates every output.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "checks.hpp"
#include "clarion/shap_drivers.hpp"

namespace py = pybind11;
using clarion::i64;

namespace {

using clarion::bind::mul;
using clarion::bind::require_array;
using clarion::bind::require_disjoint;

// The WLS solve indexes its (M-1) x (M-1) matrices with int arithmetic.
constexpr i64 kMaxPlayers = 46341;

i64 shap_coalition_plan(int M, i64 n_samples, std::uint64_t seed, bool paired, py::array& Z, py::array& w,
                        py::array& block) {
  require_array(Z, "Z", 'u', 1, 2, "uint8", true);
  require_array(w, "w", 'f', 8, 1, "float64", true);
  require_array(block, "block", 'i', 8, 1, "int64", true);
  CLARION_CHECK(M >= 2, "M must be >= 2, got " + std::to_string(M));
  CLARION_CHECK(n_samples >= 1, "n_samples must be >= 1, got " + std::to_string(n_samples));
  CLARION_CHECK(M > 62 || n_samples <= (i64{1} << M) - 2, "n_samples must be <= 2**M - 2, got " + std::to_string(n_samples));
  CLARION_CHECK(Z.shape(0) >= n_samples && Z.shape(1) == M, "Z must have shape (>= n_samples, M)");
  CLARION_CHECK(w.shape(0) >= n_samples, "w needs n_samples entries");
  CLARION_CHECK(block.shape(0) >= n_samples, "block needs n_samples entries");
  require_disjoint(Z, "Z", {{&w, "w"}, {&block, "block"}});
  require_disjoint(w, "w", {{&block, "block"}});
  auto* z = static_cast<unsigned char*>(Z.mutable_data());
  auto* wp = static_cast<double*>(w.mutable_data());
  auto* bp = static_cast<i64*>(block.mutable_data());
  py::gil_scoped_release release;
  return clarion::shap::coalition_plan(M, n_samples, seed, paired, z, wp, bp);
}

int shap_wls_operator(const py::array& Z, const py::array& w, py::array& L, py::array& c) {
  require_array(Z, "Z", 'u', 1, 2, "uint8");
  require_array(w, "w", 'f', 8, 1, "float64");
  require_array(L, "L", 'f', 8, 2, "float64", true);
  require_array(c, "c", 'f', 8, 1, "float64", true);
  const i64 S = Z.shape(0), M = Z.shape(1);
  CLARION_CHECK(M >= 2, "Z must have at least 2 columns (players)");
  CLARION_CHECK(M <= kMaxPlayers, "Z has " + std::to_string(M) + " columns (players); at most " +
                              std::to_string(kMaxPlayers) + " are supported");
  CLARION_CHECK(w.shape(0) == S, "w must have one entry per row of Z");
  CLARION_CHECK(L.shape(0) == M && L.shape(1) == S, "L must have shape (M, S)");
  CLARION_CHECK(c.shape(0) == M, "c must have shape (M,)");
  require_disjoint(L, "L", {{&Z, "Z"}, {&w, "w"}, {&c, "c"}});
  require_disjoint(c, "c", {{&Z, "Z"}, {&w, "w"}});
  const auto* z = static_cast<const unsigned char*>(Z.data());
  const auto* wp = static_cast<const double*>(w.data());
  auto* lp = static_cast<double*>(L.mutable_data());
  auto* cp = static_cast<double*>(c.mutable_data());
  py::gil_scoped_release release;
  return clarion::shap::wls_operator(z, wp, S, static_cast<int>(M), lp, cp);
}

// The pair range [q0, q1) of N explained rows and S coalitions, checked without overflow.
void check_pair_range(i64 q0, i64 q1, i64 N, i64 S) {
  const i64 pairs = mul(N, S, "the pair range N * S");
  CLARION_CHECK(0 <= q0 && q0 <= q1 && q1 <= pairs, "pair range [q0, q1) must lie in [0, N * S] = [0, " +
                                                std::to_string(pairs) + "], got [" + std::to_string(q0) + ", " +
                                                std::to_string(q1) + ")");
}

void shap_mask_cpu(const py::array& X, const py::array& B, const py::array& Z, const py::array& col_player, i64 q0,
                   i64 q1, py::array& out, int n_threads) {
  CLARION_CHECK(X.dtype().kind() == 'f' && (X.dtype().itemsize() == 8 || X.dtype().itemsize() == 4),
        "X must be float32 or float64, got dtype " + clarion::bind::dtype_str(X));
  const int size = static_cast<int>(X.dtype().itemsize());
  const char* fname = size == 8 ? "float64 (the dtype of X)" : "float32 (the dtype of X)";
  require_array(X, "X", 'f', size, 2, fname);
  require_array(B, "B", 'f', size, 2, fname);
  require_array(out, "out", 'f', size, 2, fname, true);
  require_array(Z, "Z", 'u', 1, 2, "uint8");
  require_array(col_player, "col_player", 'i', 4, 1, "int32");
  const i64 P = X.shape(1), S = Z.shape(0), N = X.shape(0), K = B.shape(0), M = Z.shape(1);
  CLARION_CHECK(B.shape(1) == P, "B must have the columns of X");
  CLARION_CHECK(out.shape(1) == P, "out must have the columns of X");
  CLARION_CHECK(col_player.shape(0) == P, "col_player must have one entry per column of X");
  check_pair_range(q0, q1, N, S);
  CLARION_CHECK(out.shape(0) == mul(q1 - q0, K, "out"), "out must have (q1 - q0) * K rows");
  require_disjoint(out, "out", {{&X, "X"}, {&B, "B"}, {&Z, "Z"}, {&col_player, "col_player"}});
  const int* cp = static_cast<const int*>(col_player.data());
  for (i64 c = 0; c < P; ++c)
    CLARION_CHECK(cp[c] >= -1 && cp[c] < M, "col_player values must be in [-1, M): col_player[" + std::to_string(c) +
                                        "] = " + std::to_string(cp[c]));
  n_threads = clarion::bind::threads_arg(n_threads);
  const auto* z = static_cast<const unsigned char*>(Z.data());
  if (size == 8) {
    const auto* x = static_cast<const double*>(X.data());
    const auto* b = static_cast<const double*>(B.data());
    auto* o = static_cast<double*>(out.mutable_data());
    py::gil_scoped_release release;
    clarion::shap::mask_cpu<double>(x, b, z, cp, P, M, K, S, q0, q1, o, n_threads);
  } else {
    const auto* x = static_cast<const float*>(X.data());
    const auto* b = static_cast<const float*>(B.data());
    auto* o = static_cast<float*>(out.mutable_data());
    py::gil_scoped_release release;
    clarion::shap::mask_cpu<float>(x, b, z, cp, P, M, K, S, q0, q1, o, n_threads);
  }
}

void shap_reduce_cpu(const py::array& F, const py::array& pi, int link, py::array& Y, int n_threads) {
  require_array(F, "F", 'f', 8, 2, "float64");
  require_array(pi, "pi", 'f', 8, 1, "float64");
  require_array(Y, "Y", 'f', 8, 2, "float64", true);
  const i64 K = pi.shape(0), R = Y.shape(0), D = Y.shape(1);
  CLARION_CHECK(K >= 1, "pi must have at least one entry");
  CLARION_CHECK(F.shape(0) == mul(R, K, "F") && F.shape(1) == D, "F must have shape (R * K, D) for Y of shape (R, D)");
  CLARION_CHECK(link == clarion::shap::kLinkIdentity || link == clarion::shap::kLinkLogit, "link must be 0 or 1");
  require_disjoint(Y, "Y", {{&F, "F"}, {&pi, "pi"}});
  n_threads = clarion::bind::threads_arg(n_threads);
  const auto* f = static_cast<const double*>(F.data());
  const auto* p = static_cast<const double*>(pi.data());
  auto* y = static_cast<double*>(Y.mutable_data());
  py::gil_scoped_release release;
  clarion::shap::reduce_cpu(f, p, R, K, D, link, y, n_threads);
}

void shap_apply_cpu(const py::array& Y, const py::array& base, const py::array& LT, i64 q0, i64 q1, py::array& phi,
                    int n_threads) {
  require_array(Y, "Y", 'f', 8, 2, "float64");
  require_array(base, "base", 'f', 8, 1, "float64");
  require_array(LT, "LT", 'f', 8, 2, "float64");
  require_array(phi, "phi", 'f', 8, 3, "float64", true);
  const i64 S = LT.shape(0), Mo = LT.shape(1), D = Y.shape(1), N = phi.shape(0);
  CLARION_CHECK(phi.shape(1) == Mo && phi.shape(2) == D, "phi must have shape (N, Mo, D)");
  CLARION_CHECK(base.shape(0) == D, "base must have shape (D,)");
  check_pair_range(q0, q1, N, S);
  CLARION_CHECK(Y.shape(0) == q1 - q0, "Y must have q1 - q0 rows");
  require_disjoint(phi, "phi", {{&Y, "Y"}, {&base, "base"}, {&LT, "LT"}});
  n_threads = clarion::bind::threads_arg(n_threads);
  const auto* y = static_cast<const double*>(Y.data());
  const auto* b = static_cast<const double*>(base.data());
  const auto* lt = static_cast<const double*>(LT.data());
  auto* ph = static_cast<double*>(phi.mutable_data());
  py::gil_scoped_release release;
  clarion::shap::apply_cpu(y, b, lt, S, Mo, D, q0, q1, ph, n_threads);
}

#ifdef CLARION_WITH_CUDA
template <class T>
T* ptr(std::uintptr_t p) { return reinterpret_cast<T*>(p); }

void shap_mask_cuda(std::uintptr_t X, std::uintptr_t B, std::uintptr_t Z, std::uintptr_t col_player,
                    std::uintptr_t out, const std::string& dtype, i64 P, i64 M, i64 K, i64 S, i64 q0, i64 q1,
                    std::uintptr_t stream) {
  using clarion::bind::size_arg;
  size_arg(P, "P", 1);
  size_arg(M, "M", 1);
  size_arg(K, "K", 1);
  size_arg(S, "S", 1);
  size_arg(q0, "q0");
  CLARION_CHECK(q0 <= q1, "q1 must be >= q0");
  clarion::bind::product({q1 - q0, K, P}, "out");
  clarion::bind::product({S, M}, "Z");
  clarion::bind::product({K, P}, "B");
  void* st = reinterpret_cast<void*>(stream);
  const auto* z = ptr<const unsigned char>(Z);
  const int* cp = ptr<const int>(col_player);
  py::gil_scoped_release release;
  if (dtype == "float64")
    clarion::shap::mask_cuda<double>(ptr<const double>(X), ptr<const double>(B), z, cp, P, M, K, S, q0, q1,
                                     ptr<double>(out), st);
  else if (dtype == "float32")
    clarion::shap::mask_cuda<float>(ptr<const float>(X), ptr<const float>(B), z, cp, P, M, K, S, q0, q1,
                                    ptr<float>(out), st);
  else
    throw std::invalid_argument("X must be float32 or float64");
}

void shap_reduce_cuda(std::uintptr_t F, std::uintptr_t pi, std::uintptr_t Y, i64 R, i64 K, i64 D, int link,
                      std::uintptr_t stream) {
  clarion::bind::size_arg(R, "R");
  clarion::bind::size_arg(K, "K", 1);
  clarion::bind::size_arg(D, "D", 1);
  clarion::bind::product({R, K, D}, "F");
  CLARION_CHECK(link == clarion::shap::kLinkIdentity || link == clarion::shap::kLinkLogit, "link must be 0 or 1");
  py::gil_scoped_release release;
  clarion::shap::reduce_cuda(ptr<const double>(F), ptr<const double>(pi), R, K, D, link, ptr<double>(Y),
                             reinterpret_cast<void*>(stream));
}

void shap_apply_cuda(std::uintptr_t Y, std::uintptr_t base, std::uintptr_t LT, std::uintptr_t phi, i64 S, i64 Mo,
                     i64 D, i64 q0, i64 q1, std::uintptr_t stream) {
  using clarion::bind::size_arg;
  size_arg(S, "S", 1);
  size_arg(Mo, "Mo", 1);
  size_arg(D, "D", 1);
  size_arg(q0, "q0");
  CLARION_CHECK(q0 <= q1, "q1 must be >= q0");
  clarion::bind::product({q1 - q0, D}, "Y");
  clarion::bind::product({S, Mo}, "LT");
  clarion::bind::product({q1 / S + 1, Mo, D}, "phi");
  py::gil_scoped_release release;
  clarion::shap::apply_cuda(ptr<const double>(Y), ptr<const double>(base), ptr<const double>(LT), S, Mo, D, q0, q1,
                            ptr<double>(phi), reinterpret_cast<void*>(stream));
}
#endif

}  // namespace

void register_shap(py::module_& m) {
  m.def("shap_coalition_plan", &shap_coalition_plan, py::arg("M"), py::arg("n_samples"), py::arg("seed"),
        py::arg("paired"), py::arg("Z"), py::arg("w"), py::arg("block"),
        "Fill Z [>= n_samples x M] (uint8), w and block with shap's coalition plan; returns S.");
  m.def("shap_wls_operator", &shap_wls_operator, py::arg("Z"), py::arg("w"), py::arg("L"), py::arg("c"),
        "Fill L [M x S] and c [M] (phi = L y + c Delta); returns 0 (Cholesky) or 1 (pseudo-inverse).");
  m.def("shap_mask_cpu", &shap_mask_cpu, py::arg("X"), py::arg("B"), py::arg("Z"), py::arg("col_player"),
        py::arg("q0"), py::arg("q1"), py::arg("out"), py::arg("n_threads"),
        "Write the synthetic rows of pairs [q0, q1) into out [(q1 - q0) * K x P].");
  m.def("shap_reduce_cpu", &shap_reduce_cpu, py::arg("F"), py::arg("pi"), py::arg("link"), py::arg("Y"),
        py::arg("n_threads"), "Y[r, d] = link(sum_k pi_k F[r * K + k, d]).");
  m.def("shap_apply_cpu", &shap_apply_cpu, py::arg("Y"), py::arg("base"), py::arg("LT"), py::arg("q0"),
        py::arg("q1"), py::arg("phi"), py::arg("n_threads"),
        "phi[n, m, d] += LT[s, m] * (Y[q - q0, d] - base[d]) for pairs q = n * S + s in [q0, q1).");
#ifdef CLARION_WITH_CUDA
  m.def("shap_mask_cuda", &shap_mask_cuda, py::arg("X"), py::arg("B"), py::arg("Z"), py::arg("col_player"),
        py::arg("out"), py::arg("dtype"), py::arg("P"), py::arg("M"), py::arg("K"), py::arg("S"), py::arg("q0"),
        py::arg("q1"), py::arg("stream"), "CUDA masking on device pointers.");
  m.def("shap_reduce_cuda", &shap_reduce_cuda, py::arg("F"), py::arg("pi"), py::arg("Y"), py::arg("R"), py::arg("K"),
        py::arg("D"), py::arg("link"), py::arg("stream"), "CUDA background reduction on device pointers.");
  m.def("shap_apply_cuda", &shap_apply_cuda, py::arg("Y"), py::arg("base"), py::arg("LT"), py::arg("phi"),
        py::arg("S"), py::arg("Mo"), py::arg("D"), py::arg("q0"), py::arg("q1"), py::arg("stream"),
        "CUDA operator application on device pointers.");
#endif
}
