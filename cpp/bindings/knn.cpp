// Bindings of the exact k-NN vote (FlipTest's kernel): argument checks and conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "checks.hpp"
#include "clarion/knn_drivers.hpp"

namespace py = pybind11;
using clarion::i64;
using clarion::knn::KnnProblem;

namespace {

using clarion::bind::ArrayView;
using clarion::bind::require_array;

KnnProblem make_problem(i64 n_a, i64 n_d, i64 m, i64 k) {
  KnnProblem pb;
  pb.n_a = n_a;
  pb.n_d = n_d;
  pb.m = m;
  pb.k = k;
  clarion::knn::validate(pb);
  return pb;
}

// The kd-tree and the distance order assume finite coordinates.
void require_finite(const double* x, i64 rows, i64 m, const char* name) {
  for (i64 i = 0; i < rows; ++i)
    for (i64 j = 0; j < m; ++j) {
      const double v = x[i * m + j];
      CLARION_CHECK(v - v == 0.0, std::string(name) + ": non-finite value at row " + std::to_string(i) +
                                      ", column " + std::to_string(j));
    }
}

// Strict: no silent conversion (a wrong dtype or layout is the Python wrapper's bug).
void knn_vote_cpu(const py::array& xa_, const py::array& ya_, const py::array& xd_, const py::array& pos_,
                  const py::array& votes_, i64 k, int n_threads) {
  using clarion::bind::host_view;
  const ArrayView xa = host_view(xa_, "xa"), ya = host_view(ya_, "ya"), xd = host_view(xd_, "xd"),
                  pos = host_view(pos_, "positives"), votes = host_view(votes_, "votes");
  require_array(xa, 'f', 8, 2, "float64");
  require_array(xd, 'f', 8, 2, "float64");
  require_array(ya, 'u', 1, 1, "uint8");
  require_array(pos, 'i', 8, 1, "int64", true);
  require_array(votes, 'u', 1, 1, "uint8", true);
  CLARION_CHECK(xa.dim(1) == xd.dim(1), "xa and xd must have the same number of columns");
  CLARION_CHECK(ya.dim(0) == xa.dim(0), "ya must have one entry per row of xa");
  CLARION_CHECK(pos.dim(0) == xd.dim(0), "positives must have one entry per row of xd");
  CLARION_CHECK(votes.dim(0) == xd.dim(0), "votes must have one entry per row of xd");
  clarion::bind::require_disjoint(pos, {&xa, &ya, &xd, &votes});
  clarion::bind::require_disjoint(votes, {&xa, &ya, &xd});
  n_threads = clarion::bind::threads_arg(n_threads);
  const KnnProblem pb = make_problem(xa.dim(0), xd.dim(0), xa.dim(1), k);
  const auto* a = xa.ptr<const double>();
  const auto* d = xd.ptr<const double>();
  require_finite(a, pb.n_a, pb.m, "xa");
  require_finite(d, pb.n_d, pb.m, "xd");
  const auto* y = ya.ptr<const std::uint8_t>();
  auto* p = pos.ptr<std::int64_t>();
  auto* v = votes.ptr<std::uint8_t>();
  py::gil_scoped_release release;
  clarion::knn::knn_vote_cpu(pb, a, y, d, p, v, n_threads);
}

#ifdef CLARION_WITH_CUDA
void knn_vote_cuda(std::uintptr_t xa, std::uintptr_t ya, std::uintptr_t xd, std::uintptr_t positives,
                   std::uintptr_t votes, i64 n_a, i64 n_d, i64 m, i64 k, std::uintptr_t stream) {
  const KnnProblem pb = make_problem(n_a, n_d, m, k);
  clarion::bind::product({n_a, m}, "xa");
  clarion::bind::product({n_d, m}, "xd");
  CLARION_CHECK(xa != 0 && ya != 0, "xa and ya must be non-null device pointers (n_a >= 1)");
  CLARION_CHECK(n_d == 0 || (xd != 0 && positives != 0 && votes != 0),
                "xd, positives and votes are null device pointers");
  py::gil_scoped_release release;
  clarion::knn::knn_vote_cuda(pb, reinterpret_cast<const double*>(xa),
                              reinterpret_cast<const std::uint8_t*>(ya), reinterpret_cast<const double*>(xd),
                              reinterpret_cast<std::int64_t*>(positives),
                              reinterpret_cast<std::uint8_t*>(votes), reinterpret_cast<void*>(stream));
}
#endif

}  // namespace

void register_knn(py::module_& m) {
  m.def(
      "knn_vote_cpu", &knn_vote_cpu, py::arg("xa"), py::arg("ya"), py::arg("xd"), py::arg("positives"),
      py::arg("votes"), py::arg("k"), py::arg("n_threads"),
      "Exact k-NN vote (kd-tree): for each row of xd, the number of positive ya among its k nearest rows of "
      "xa (ties by lower xa row) into `positives`, and the strict-majority vote into `votes`.");
#ifdef CLARION_WITH_CUDA
  m.def("knn_vote_cuda", &knn_vote_cuda, py::arg("xa"), py::arg("ya"), py::arg("xd"), py::arg("positives"),
        py::arg("votes"), py::arg("n_a"), py::arg("n_d"), py::arg("m"), py::arg("k"), py::arg("stream"),
        "CUDA exact k-NN vote (tiled brute force) on device pointers; same contract as knn_vote_cpu.");
  m.attr("KNN_CUDA_MAX_K") = clarion::knn::kCudaMaxK;
#endif
}
