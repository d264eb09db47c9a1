// Bindings of the exact k-NN vote (FlipTest's kernel): argument checks and conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "clarion/knn_drivers.hpp"

namespace py = pybind11;
using clarion::i64;
using clarion::knn::KnnProblem;

namespace {

using F64 = py::array_t<double, py::array::c_style>;
using U8 = py::array_t<std::uint8_t, py::array::c_style>;
using I64 = py::array_t<std::int64_t, py::array::c_style>;

void require(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

// Strict: no silent conversion (a wrong dtype or layout is the Python wrapper's bug).
template <class A>
A exact(const py::array& a, const char* name, const char* want) {
  require(A::check_(a), std::string(name) + " must be a C-contiguous " + want + " array");
  return py::reinterpret_borrow<A>(a);
}

KnnProblem make_problem(i64 n_a, i64 n_d, i64 m, i64 k) {
  KnnProblem pb;
  pb.n_a = n_a;
  pb.n_d = n_d;
  pb.m = m;
  pb.k = k;
  clarion::knn::validate(pb);
  return pb;
}

void knn_vote_cpu(const py::array& xa_obj, const py::array& ya_obj, const py::array& xd_obj, py::array& pos_obj,
                  py::array& votes_obj, i64 k, int n_threads) {
  const F64 xa = exact<F64>(xa_obj, "xa", "float64");
  const F64 xd = exact<F64>(xd_obj, "xd", "float64");
  const U8 ya = exact<U8>(ya_obj, "ya", "uint8");
  I64 pos = exact<I64>(pos_obj, "positives", "int64");
  U8 votes = exact<U8>(votes_obj, "votes", "uint8");
  require(xa.ndim() == 2 && xd.ndim() == 2, "xa and xd must be 2-D");
  require(xa.shape(1) == xd.shape(1), "xa and xd must have the same number of columns");
  require(ya.ndim() == 1 && ya.shape(0) == xa.shape(0), "ya must be 1-D with one entry per row of xa");
  require(pos.ndim() == 1 && pos.shape(0) == xd.shape(0), "positives must be 1-D with one entry per row of xd");
  require(votes.ndim() == 1 && votes.shape(0) == xd.shape(0), "votes must be 1-D with one entry per row of xd");
  require(pos.writeable() && votes.writeable(), "positives and votes must be writeable");
  const KnnProblem pb = make_problem(xa.shape(0), xd.shape(0), xa.shape(1), k);
  const double* a = xa.data();
  const double* d = xd.data();
  const std::uint8_t* y = ya.data();
  std::int64_t* p = pos.mutable_data();
  std::uint8_t* v = votes.mutable_data();
  py::gil_scoped_release release;
  clarion::knn::knn_vote_cpu(pb, a, y, d, p, v, n_threads);
}

#ifdef CLARION_WITH_CUDA
void knn_vote_cuda(std::uintptr_t xa, std::uintptr_t ya, std::uintptr_t xd, std::uintptr_t positives,
                   std::uintptr_t votes, i64 n_a, i64 n_d, i64 m, i64 k, std::uintptr_t stream) {
  const KnnProblem pb = make_problem(n_a, n_d, m, k);
  py::gil_scoped_release release;
  clarion::knn::knn_vote_cuda(pb, reinterpret_cast<const double*>(xa), reinterpret_cast<const std::uint8_t*>(ya),
                              reinterpret_cast<const double*>(xd), reinterpret_cast<std::int64_t*>(positives),
                              reinterpret_cast<std::uint8_t*>(votes), reinterpret_cast<void*>(stream));
}
#endif

}  // namespace

void register_knn(py::module_& m) {
  m.def("knn_vote_cpu", &knn_vote_cpu, py::arg("xa"), py::arg("ya"), py::arg("xd"), py::arg("positives"),
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
