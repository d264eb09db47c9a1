// Bindings of the slot counts (clarion/encode.hpp): argument checks and conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "checks.hpp"
#include "clarion/encode.hpp"

namespace py = pybind11;
using clarion::i64;
using clarion::RowError;
using clarion::bias::SlotProblem;

namespace {

using clarion::bind::ArrayView;
using clarion::bind::host_view;

// Fills the problem's columns from the Python lists; `mapped`: the lookup tables are required.
SlotProblem slot_problem(const py::list& codes, const std::vector<i64>& offsets, const std::vector<i64>& sizes,
                         const py::list& luts, const std::vector<i64>& map_strides, bool mapped,
                         std::vector<ArrayView>& keep) {
  const auto k = static_cast<i64>(codes.size());
  CLARION_CHECK(k >= 1 && k <= clarion::bias::kMaxCodeColumns,
                "codes must list 1 to 4 code columns, got " + std::to_string(k));
  CLARION_CHECK(static_cast<i64>(offsets.size()) == k && static_cast<i64>(sizes.size()) == k,
                "offsets and sizes must have one entry per code column");
  SlotProblem pb;
  pb.n_cols = static_cast<int>(k);
  i64 stride = 1;
  for (i64 j = k - 1; j >= 0; --j) {
    CLARION_CHECK(sizes[j] >= 1, "sizes[" + std::to_string(j) + "] must be >= 1");
    pb.raw_stride[j] = stride;
    stride = clarion::bind::mul(stride, sizes[j], "the slot table");
  }
  CLARION_CHECK(stride <= i64{1} << 30, "the slot table (prod(sizes)) must have at most 2**30 cells");
  for (i64 j = 0; j < k; ++j) {
    const std::string name = "codes[" + std::to_string(j) + "]";
    keep.push_back(host_view(codes[j].cast<py::array>(), name.c_str()));
    const ArrayView& v = keep.back();
    CLARION_CHECK(v.ndim() == 1, name + " must be 1-D");
    clarion::bind::require_layout(v);
    CLARION_CHECK(v.kind == 'i' && v.native() &&
                      (v.itemsize == 1 || v.itemsize == 2 || v.itemsize == 4 || v.itemsize == 8),
                  name + " must hold int8/16/32/64 codes in native byte order, got dtype " + v.dtype);
    if (j == 0) pb.n_rows = v.dim(0);
    CLARION_CHECK(v.dim(0) == pb.n_rows, name + " has " + std::to_string(v.dim(0)) + " rows but codes[0] has " +
                                             std::to_string(pb.n_rows));
    pb.codes[j] = v.ptr<const void>();
    pb.itemsize[j] = static_cast<int>(v.itemsize);
    pb.offset[j] = offsets[j];
    pb.size[j] = sizes[j];
  }
  if (!mapped) return pb;
  CLARION_CHECK(static_cast<i64>(luts.size()) == k && static_cast<i64>(map_strides.size()) == k,
                "luts and map_strides must have one entry per code column");
  for (i64 j = 0; j < k; ++j) {
    const std::string name = "luts[" + std::to_string(j) + "]";
    keep.push_back(host_view(luts[j].cast<py::array>(), name.c_str()));
    const ArrayView& v = keep.back();
    CLARION_CHECK(v.ndim() == 1 && v.dim(0) == sizes[j], name + " must be 1-D with sizes[j] entries");
    clarion::bind::require_layout(v);
    CLARION_CHECK(v.has_dtype('i', 4), name + " must be int32, got dtype " + v.dtype);
    pb.lut[j] = v.ptr<const std::int32_t>();
    pb.map_stride[j] = map_strides[j];
  }
  return pb;
}

py::tuple to_tuple(const RowError& e) { return py::make_tuple(e.what, e.row, e.col); }

py::tuple slot_counts_cpu(const py::list& codes, const std::vector<i64>& offsets, const std::vector<i64>& sizes,
                          const py::array& raw, int n_threads) {
  std::vector<ArrayView> keep;
  keep.reserve(8);
  const SlotProblem pb = slot_problem(codes, offsets, sizes, py::list(), {}, false, keep);
  const ArrayView out = host_view(raw, "raw");
  clarion::bind::require_layout(out, true);
  CLARION_CHECK(out.has_dtype('i', 8) && out.size == pb.raw_cells(),
                "raw must be int64 with prod(sizes) elements");
  n_threads = clarion::bind::threads_arg(n_threads);
  RowError e;
  {
    py::gil_scoped_release release;
    e = clarion::bias::slot_counts_cpu(pb, out.ptr<std::int64_t>(), n_threads);
  }
  return to_tuple(e);
}

py::tuple slot_weighted_counts_cpu(const py::list& codes, const std::vector<i64>& offsets,
                                   const std::vector<i64>& sizes, const py::list& luts,
                                   const std::vector<i64>& map_strides, const py::array& weights,
                                   const py::array& mapped, const py::array& raw, int n_threads) {
  std::vector<ArrayView> keep;
  keep.reserve(12);
  const SlotProblem pb = slot_problem(codes, offsets, sizes, luts, map_strides, true, keep);
  const ArrayView w = host_view(weights, "weights");
  clarion::bind::require_layout(w);
  CLARION_CHECK(w.ndim() == 1 && w.dim(0) == pb.n_rows && w.has_dtype('f', 8),
                "weights must be float64 with one entry per row");
  const ArrayView m = host_view(mapped, "mapped");
  clarion::bind::require_layout(m, true);
  CLARION_CHECK(m.has_dtype('f', 8), "mapped must be float64");
  const ArrayView out = host_view(raw, "raw");
  clarion::bind::require_layout(out, true);
  CLARION_CHECK(out.has_dtype('i', 8) && out.size == pb.raw_cells(),
                "raw must be int64 with prod(sizes) elements");
  // every lookup value must address a cell of `mapped`
  i64 top = 0;
  for (int j = 0; j < pb.n_cols; ++j) {
    i64 hi = 0;
    for (i64 s = 0; s < pb.size[j]; ++s) {
      CLARION_CHECK(pb.lut[j][s] >= 0, "luts[" + std::to_string(j) + "] must be >= 0");
      hi = std::max<i64>(hi, pb.lut[j][s]);
    }
    CLARION_CHECK(pb.map_stride[j] >= 0, "map_strides must be >= 0");
    top = clarion::bind::add(top, clarion::bind::mul(hi, pb.map_stride[j], "mapped"), "mapped");
  }
  CLARION_CHECK(top < m.size && m.size <= i64{1} << 30, "luts and map_strides address cells beyond mapped");
  n_threads = clarion::bind::threads_arg(n_threads);
  RowError e;
  {
    py::gil_scoped_release release;
    e = clarion::bias::slot_weighted_counts_cpu(pb, w.ptr<const double>(), m.size, m.ptr<double>(),
                                                out.ptr<std::int64_t>(), n_threads);
  }
  return to_tuple(e);
}

}  // namespace

void register_encode(py::module_& m) {
  m.def("slot_counts_cpu", &slot_counts_cpu, py::arg("codes"), py::arg("offsets"), py::arg("sizes"), py::arg("raw"),
        py::arg("n_threads"),
        "Fill `raw` ([S_0]...[S_k-1], int64) with the counts of each combination of slots "
        "(slot = code + offset) of the code columns; returns (error_code, row, column).");
  m.def("slot_weighted_counts_cpu", &slot_weighted_counts_cpu, py::arg("codes"), py::arg("offsets"),
        py::arg("sizes"), py::arg("luts"), py::arg("map_strides"), py::arg("weights"), py::arg("mapped"),
        py::arg("raw"), py::arg("n_threads"),
        "Weighted slot counts: `mapped` (float64) gets each row's weight at sum(luts[j][slot_j] * "
        "map_strides[j]) in grouped_counts' summation order, `raw` the occurrence count of each slot "
        "combination; returns (error_code, row, column).");
}
