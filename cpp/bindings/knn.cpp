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

// The checks of both backends, on the views: dtypes, layouts, lengths, aliasing and k.
KnnProblem check_knn(const ArrayView& xa, const ArrayView& ya, const ArrayView& xd, const ArrayView& pos,
                     const ArrayView& votes, i64 k) {
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
  return make_problem(xa.dim(0), xd.dim(0), xa.dim(1), k);
}

// Strict: no silent conversion (a wrong dtype or layout is the Python wrapper's bug).
void knn_vote_cpu(const py::array& xa_, const py::array& ya_, const py::array& xd_, const py::array& pos_,
                  const py::array& votes_, i64 k, int n_threads) {
  using clarion::bind::host_view;
  const ArrayView xa = host_view(xa_, "xa"), ya = host_view(ya_, "ya"), xd = host_view(xd_, "xd"),
                  pos = host_view(pos_, "positives"), votes = host_view(votes_, "votes");
  const KnnProblem pb = check_knn(xa, ya, xd, pos, votes, k);
  n_threads = clarion::bind::threads_arg(n_threads);
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
// Device arrays as CUDA Array Interface descriptions (device_view), checked as on the CPU (the
// values' finiteness is the caller's to check: device memory is not read here).
void knn_vote_cuda(const py::object& xa_, const py::object& ya_, const py::object& xd_,
                   const py::object& pos_, const py::object& votes_, i64 k, std::uintptr_t stream) {
  using clarion::bind::device_view;
  const ArrayView xa = device_view(xa_, "xa"), ya = device_view(ya_, "ya"), xd = device_view(xd_, "xd"),
                  pos = device_view(pos_, "positives"), votes = device_view(votes_, "votes");
  const KnnProblem pb = check_knn(xa, ya, xd, pos, votes, k);
  CLARION_CHECK(pb.k <= clarion::knn::kCudaMaxK, "k must be <= " + std::to_string(clarion::knn::kCudaMaxK) +
                                                     " on the CUDA backend, got " + std::to_string(pb.k));
  void* st = clarion::bind::stream_arg(stream);
  clarion::bind::prepare_device_arrays({&xa, &ya, &xd, &pos, &votes}, st);
  py::gil_scoped_release release;
  clarion::knn::knn_vote_cuda(pb, xa.ptr<const double>(), ya.ptr<const std::uint8_t>(),
                              xd.ptr<const double>(), pos.ptr<std::int64_t>(), votes.ptr<std::uint8_t>(), st);
}

// The former raw-pointer form (bias/fliptest.py's caller): the pointers become C-contiguous
// descriptions of the documented dtypes and shapes, then the call above checks them.
void knn_vote_cuda_pointers(std::uintptr_t xa, std::uintptr_t ya, std::uintptr_t xd, std::uintptr_t positives,
                            std::uintptr_t votes, i64 n_a, i64 n_d, i64 m, i64 k, std::uintptr_t stream) {
  using clarion::bind::size_arg;
  size_arg(n_a, "n_a");
  size_arg(n_d, "n_d");
  size_arg(m, "m");
  clarion::bind::product({n_a, m}, "xa");
  clarion::bind::product({n_d, m}, "xd");
  auto desc = [](std::uintptr_t p, py::tuple shape, const char* typestr) {
    return py::make_tuple(p, shape, py::none(), typestr);
  };
  knn_vote_cuda(desc(xa, py::make_tuple(n_a, m), "<f8"), desc(ya, py::make_tuple(n_a), "|u1"),
                desc(xd, py::make_tuple(n_d, m), "<f8"), desc(positives, py::make_tuple(n_d), "<i8"),
                desc(votes, py::make_tuple(n_d), "|u1"), k, stream);
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
        py::arg("votes"), py::arg("k"), py::arg("stream"),
        "CUDA exact k-NN vote (tiled brute force) on device arrays (objects with __cuda_array_interface__, "
        "or their descriptions); same contract and checks as knn_vote_cpu.");
  m.def("knn_vote_cuda", &knn_vote_cuda_pointers, py::arg("xa"), py::arg("ya"), py::arg("xd"),
        py::arg("positives"), py::arg("votes"), py::arg("n_a"), py::arg("n_d"), py::arg("m"), py::arg("k"),
        py::arg("stream"), "The same on raw device pointers of C-contiguous arrays (former form).");
  m.attr("KNN_CUDA_MAX_K") = clarion::knn::kCudaMaxK;
#endif
}
