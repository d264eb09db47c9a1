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

using clarion::bind::ArrayView;
using clarion::bind::Device;
using clarion::bind::host_view;
using clarion::bind::mul;
using clarion::bind::require_array;
using clarion::bind::require_disjoint;

// The WLS solve indexes its (M-1) x (M-1) matrices with int arithmetic.
constexpr i64 kMaxPlayers = 46341;

i64 shap_coalition_plan(int M, i64 n_samples, std::uint64_t seed, bool paired, const py::array& Z_,
                        const py::array& w_, const py::array& block_) {
  const ArrayView Z = host_view(Z_, "Z"), w = host_view(w_, "w"), block = host_view(block_, "block");
  require_array(Z, 'u', 1, 2, "uint8", true);
  require_array(w, 'f', 8, 1, "float64", true);
  require_array(block, 'i', 8, 1, "int64", true);
  CLARION_CHECK(M >= 2, "M must be >= 2, got " + std::to_string(M));
  CLARION_CHECK(n_samples >= 1, "n_samples must be >= 1, got " + std::to_string(n_samples));
  CLARION_CHECK(M > 62 || n_samples <= (i64{1} << M) - 2,
                "n_samples must be <= 2**M - 2, got " + std::to_string(n_samples));
  CLARION_CHECK(Z.dim(0) >= n_samples && Z.dim(1) == M, "Z must have shape (>= n_samples, M)");
  CLARION_CHECK(w.dim(0) >= n_samples, "w needs n_samples entries");
  CLARION_CHECK(block.dim(0) >= n_samples, "block needs n_samples entries");
  require_disjoint(Z, {&w, &block});
  require_disjoint(w, {&block});
  auto* z = Z.ptr<unsigned char>();
  auto* wp = w.ptr<double>();
  auto* bp = block.ptr<i64>();
  py::gil_scoped_release release;
  return clarion::shap::coalition_plan(M, n_samples, seed, paired, z, wp, bp);
}

int shap_wls_operator(const py::array& Z_, const py::array& w_, const py::array& L_, const py::array& c_) {
  const ArrayView Z = host_view(Z_, "Z"), w = host_view(w_, "w"), L = host_view(L_, "L"),
                  c = host_view(c_, "c");
  require_array(Z, 'u', 1, 2, "uint8");
  require_array(w, 'f', 8, 1, "float64");
  require_array(L, 'f', 8, 2, "float64", true);
  require_array(c, 'f', 8, 1, "float64", true);
  const i64 S = Z.dim(0), M = Z.dim(1);
  CLARION_CHECK(M >= 2, "Z must have at least 2 columns (players)");
  CLARION_CHECK(M <= kMaxPlayers, "Z has " + std::to_string(M) + " columns (players); at most " +
                                      std::to_string(kMaxPlayers) + " are supported");
  CLARION_CHECK(w.dim(0) == S, "w must have one entry per row of Z");
  CLARION_CHECK(L.dim(0) == M && L.dim(1) == S, "L must have shape (M, S)");
  CLARION_CHECK(c.dim(0) == M, "c must have shape (M,)");
  require_disjoint(L, {&Z, &w, &c});
  require_disjoint(c, {&Z, &w});
  const auto* z = Z.ptr<const unsigned char>();
  const auto* wp = w.ptr<const double>();
  auto* lp = L.ptr<double>();
  auto* cp = c.ptr<double>();
  py::gil_scoped_release release;
  return clarion::shap::wls_operator(z, wp, S, static_cast<int>(M), lp, cp);
}

// The pair range [q0, q1) of N explained rows and S coalitions, checked without overflow.
void check_pair_range(i64 q0, i64 q1, i64 N, i64 S) {
  const i64 pairs = mul(N, S, "the pair range N * S");
  CLARION_CHECK(0 <= q0 && q0 <= q1 && q1 <= pairs, "pair range [q0, q1) must lie in [0, N * S] = [0, " +
                                                        std::to_string(pairs) + "], got [" +
                                                        std::to_string(q0) + ", " + std::to_string(q1) + ")");
}

// ---- one check per kernel, for both backends ----------------------------------------------------

// Masking: X [N x P] and B [K x P] of one float dtype, Z [S x M] uint8, col_player [P] int32,
// out [(q1 - q0) * K x P]. Returns the itemsize of X (4 or 8). col_player's values are read only
// in host memory (the CUDA wrapper builds them on the host).
int check_mask(const ArrayView& X, const ArrayView& B, const ArrayView& Z, const ArrayView& col_player,
               i64 q0, i64 q1, const ArrayView& out) {
  CLARION_CHECK(X.kind == 'f' && (X.itemsize == 8 || X.itemsize == 4),
                "X must be float32 or float64, got dtype " + X.dtype);
  const int size = static_cast<int>(X.itemsize);
  const char* fname = size == 8 ? "float64 (the dtype of X)" : "float32 (the dtype of X)";
  require_array(X, 'f', size, 2, fname);
  require_array(B, 'f', size, 2, fname);
  require_array(out, 'f', size, 2, fname, true);
  require_array(Z, 'u', 1, 2, "uint8");
  require_array(col_player, 'i', 4, 1, "int32");
  const i64 P = X.dim(1), S = Z.dim(0), N = X.dim(0), K = B.dim(0), M = Z.dim(1);
  CLARION_CHECK(B.dim(1) == P, "B must have the columns of X");
  CLARION_CHECK(out.dim(1) == P, "out must have the columns of X");
  CLARION_CHECK(col_player.dim(0) == P, "col_player must have one entry per column of X");
  check_pair_range(q0, q1, N, S);
  CLARION_CHECK(out.dim(0) == mul(q1 - q0, K, "out"), "out must have (q1 - q0) * K rows");
  require_disjoint(out, {&X, &B, &Z, &col_player});
  if (col_player.device == Device::cpu) {
    const int* cp = col_player.ptr<const int>();
    for (i64 c = 0; c < P; ++c)
      CLARION_CHECK(cp[c] >= -1 && cp[c] < M, "col_player values must be in [-1, M): col_player[" +
                                                  std::to_string(c) + "] = " + std::to_string(cp[c]));
  }
  return size;
}

// Runs launch(X, B, out) with X's float type (T = float or double), the GIL released.
template <class Launch>
void run_mask(int size, const ArrayView& X, const ArrayView& B, const ArrayView& out, Launch&& launch) {
  if (size == 8) {
    py::gil_scoped_release release;
    launch(X.ptr<const double>(), B.ptr<const double>(), out.ptr<double>());
  } else {
    py::gil_scoped_release release;
    launch(X.ptr<const float>(), B.ptr<const float>(), out.ptr<float>());
  }
}

// Background reduction: F [R * K x D], pi [K], Y [R x D], all float64.
void check_reduce(const ArrayView& F, const ArrayView& pi, int link, const ArrayView& Y) {
  require_array(F, 'f', 8, 2, "float64");
  require_array(pi, 'f', 8, 1, "float64");
  require_array(Y, 'f', 8, 2, "float64", true);
  const i64 K = pi.dim(0), R = Y.dim(0), D = Y.dim(1);
  CLARION_CHECK(K >= 1, "pi must have at least one entry");
  CLARION_CHECK(F.dim(0) == mul(R, K, "F") && F.dim(1) == D,
                "F must have shape (R * K, D) for Y of shape (R, D)");
  CLARION_CHECK(link == clarion::shap::kLinkIdentity || link == clarion::shap::kLinkLogit,
                "link must be 0 or 1");
  require_disjoint(Y, {&F, &pi});
}

// Operator application: Y [(q1 - q0) x D], base [D], LT [S x Mo], phi [N x Mo x D], all float64.
void check_apply(const ArrayView& Y, const ArrayView& base, const ArrayView& LT, i64 q0, i64 q1,
                 const ArrayView& phi) {
  require_array(Y, 'f', 8, 2, "float64");
  require_array(base, 'f', 8, 1, "float64");
  require_array(LT, 'f', 8, 2, "float64");
  require_array(phi, 'f', 8, 3, "float64", true);
  const i64 S = LT.dim(0), Mo = LT.dim(1), D = Y.dim(1), N = phi.dim(0);
  CLARION_CHECK(phi.dim(1) == Mo && phi.dim(2) == D, "phi must have shape (N, Mo, D)");
  CLARION_CHECK(base.dim(0) == D, "base must have shape (D,)");
  check_pair_range(q0, q1, N, S);
  CLARION_CHECK(Y.dim(0) == q1 - q0, "Y must have q1 - q0 rows");
  require_disjoint(phi, {&Y, &base, &LT});
}

// ---- CPU ---------------------------------------------------------------------------------------

void shap_mask_cpu(const py::array& X_, const py::array& B_, const py::array& Z_,
                   const py::array& col_player_, i64 q0, i64 q1, const py::array& out_, int n_threads) {
  const ArrayView X = host_view(X_, "X"), B = host_view(B_, "B"), Z = host_view(Z_, "Z"),
                  cp = host_view(col_player_, "col_player"), out = host_view(out_, "out");
  const int size = check_mask(X, B, Z, cp, q0, q1, out);
  n_threads = clarion::bind::threads_arg(n_threads);
  const i64 P = X.dim(1), M = Z.dim(1), K = B.dim(0), S = Z.dim(0);
  run_mask(size, X, B, out, [&](auto x, auto b, auto o) {
    clarion::shap::mask_cpu(x, b, Z.ptr<const unsigned char>(), cp.ptr<const int>(), P, M, K, S, q0, q1, o,
                            n_threads);
  });
}

void shap_reduce_cpu(const py::array& F_, const py::array& pi_, int link, const py::array& Y_,
                     int n_threads) {
  const ArrayView F = host_view(F_, "F"), pi = host_view(pi_, "pi"), Y = host_view(Y_, "Y");
  check_reduce(F, pi, link, Y);
  n_threads = clarion::bind::threads_arg(n_threads);
  py::gil_scoped_release release;
  clarion::shap::reduce_cpu(F.ptr<const double>(), pi.ptr<const double>(), Y.dim(0), pi.dim(0), Y.dim(1),
                            link, Y.ptr<double>(), n_threads);
}

void shap_apply_cpu(const py::array& Y_, const py::array& base_, const py::array& LT_, i64 q0, i64 q1,
                    const py::array& phi_, int n_threads) {
  const ArrayView Y = host_view(Y_, "Y"), base = host_view(base_, "base"), LT = host_view(LT_, "LT"),
                  phi = host_view(phi_, "phi");
  check_apply(Y, base, LT, q0, q1, phi);
  n_threads = clarion::bind::threads_arg(n_threads);
  py::gil_scoped_release release;
  clarion::shap::apply_cpu(Y.ptr<const double>(), base.ptr<const double>(), LT.ptr<const double>(), LT.dim(0),
                           LT.dim(1), Y.dim(1), q0, q1, phi.ptr<double>(), n_threads);
}

// ---- CUDA --------------------------------------------------------------------------------------

#ifdef CLARION_WITH_CUDA
// Device arrays arrive as CUDA Array Interface descriptions (device_view) and get the CPU checks
// before any device call; only col_player's values are not read (see check_mask).
using clarion::bind::device_view;

void shap_mask_cuda(const py::object& X_, const py::object& B_, const py::object& Z_,
                    const py::object& col_player_, i64 q0, i64 q1, const py::object& out_,
                    std::uintptr_t stream) {
  const ArrayView X = device_view(X_, "X"), B = device_view(B_, "B"), Z = device_view(Z_, "Z"),
                  cp = device_view(col_player_, "col_player"), out = device_view(out_, "out");
  const int size = check_mask(X, B, Z, cp, q0, q1, out);
  void* st = clarion::bind::stream_arg(stream);
  clarion::bind::prepare_device_arrays({&X, &B, &Z, &cp, &out}, st);
  const i64 P = X.dim(1), M = Z.dim(1), K = B.dim(0), S = Z.dim(0);
  run_mask(size, X, B, out, [&](auto x, auto b, auto o) {
    clarion::shap::mask_cuda(x, b, Z.ptr<const unsigned char>(), cp.ptr<const int>(), P, M, K, S, q0, q1, o,
                             st);
  });
}

void shap_reduce_cuda(const py::object& F_, const py::object& pi_, int link, const py::object& Y_,
                      std::uintptr_t stream) {
  const ArrayView F = device_view(F_, "F"), pi = device_view(pi_, "pi"), Y = device_view(Y_, "Y");
  check_reduce(F, pi, link, Y);
  void* st = clarion::bind::stream_arg(stream);
  clarion::bind::prepare_device_arrays({&F, &pi, &Y}, st);
  py::gil_scoped_release release;
  clarion::shap::reduce_cuda(F.ptr<const double>(), pi.ptr<const double>(), Y.dim(0), pi.dim(0), Y.dim(1),
                             link, Y.ptr<double>(), st);
}

void shap_apply_cuda(const py::object& Y_, const py::object& base_, const py::object& LT_, i64 q0, i64 q1,
                     const py::object& phi_, std::uintptr_t stream) {
  const ArrayView Y = device_view(Y_, "Y"), base = device_view(base_, "base"), LT = device_view(LT_, "LT"),
                  phi = device_view(phi_, "phi");
  check_apply(Y, base, LT, q0, q1, phi);
  void* st = clarion::bind::stream_arg(stream);
  clarion::bind::prepare_device_arrays({&Y, &base, &LT, &phi}, st);
  py::gil_scoped_release release;
  clarion::shap::apply_cuda(Y.ptr<const double>(), base.ptr<const double>(), LT.ptr<const double>(),
                            LT.dim(0), LT.dim(1), Y.dim(1), q0, q1, phi.ptr<double>(), st);
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
        py::arg("q0"), py::arg("q1"), py::arg("out"), py::arg("stream"),
        "shap_mask_cpu on device arrays (objects with __cuda_array_interface__, or their descriptions).");
  m.def("shap_reduce_cuda", &shap_reduce_cuda, py::arg("F"), py::arg("pi"), py::arg("link"), py::arg("Y"),
        py::arg("stream"), "shap_reduce_cpu on device arrays.");
  m.def("shap_apply_cuda", &shap_apply_cuda, py::arg("Y"), py::arg("base"), py::arg("LT"), py::arg("q0"),
        py::arg("q1"), py::arg("phi"), py::arg("stream"), "shap_apply_cpu on device arrays.");
#endif
}
