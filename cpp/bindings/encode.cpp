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

// A light view of a host array (the bindings sit on a per-batch path: checks.hpp's ArrayView
// formats the dtype name of every array, which costs more than a small batch's count).
struct Light {
  const void* data = nullptr;
  int ndim = 0;
  i64 n = 0;
  char kind = '?';
  i64 itemsize = 0;
  bool ok_layout = false;  // C-contiguous, aligned, native byte order
  bool writeable = false;
};

Light light(const py::array& a) {
  Light v;
  v.data = a.data();
  v.ndim = static_cast<int>(a.ndim());
  v.n = v.ndim >= 1 ? static_cast<i64>(a.shape(0)) : 0;
  const py::dtype dt = a.dtype();
  v.kind = dt.kind();
  v.itemsize = static_cast<i64>(dt.itemsize());
  const int flags = a.flags();
  v.ok_layout = (flags & py::array::c_style) != 0 && (flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0 &&
                clarion::bind::native_byte_order(dt.byteorder());
  v.writeable = a.writeable();
  return v;
}

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Fills the problem's columns from the Python lists; `mapped`: the lookup tables are required.
SlotProblem slot_problem(const py::list& codes, const std::vector<i64>& offsets,
                         const std::vector<i64>& sizes, const py::list& luts,
                         const std::vector<i64>& map_strides, bool mapped, std::vector<py::array>& keep) {
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
    keep.push_back(codes[j].cast<py::array>());
    const py::array& a = keep.back();
    const Light v = light(a);
    const std::string name = "codes[" + std::to_string(j) + "]";
    CLARION_CHECK(v.ndim == 1, name + " must be 1-D");
    CLARION_CHECK(v.ok_layout && v.kind == 'i' &&
                      (v.itemsize == 1 || v.itemsize == 2 || v.itemsize == 4 || v.itemsize == 8),
                  name + " must hold C-contiguous int8/16/32/64 codes in native byte order, got dtype " +
                      dtype_name(a));
    if (j == 0) pb.n_rows = v.n;
    CLARION_CHECK(v.n == pb.n_rows, name + " has " + std::to_string(v.n) + " rows but codes[0] has " +
                                        std::to_string(pb.n_rows));
    CLARION_CHECK(offsets[j] > -(i64{1} << 62) && offsets[j] < (i64{1} << 62),
                  name + ": offset out of range");
    pb.codes[j] = v.data;
    pb.itemsize[j] = static_cast<int>(v.itemsize);
    pb.offset[j] = offsets[j];
    pb.size[j] = sizes[j];
  }
  if (!mapped) return pb;
  CLARION_CHECK(static_cast<i64>(luts.size()) == k && static_cast<i64>(map_strides.size()) == k,
                "luts and map_strides must have one entry per code column");
  for (i64 j = 0; j < k; ++j) {
    keep.push_back(luts[j].cast<py::array>());
    const py::array& a = keep.back();
    const Light v = light(a);
    const std::string name = "luts[" + std::to_string(j) + "]";
    CLARION_CHECK(v.ndim == 1 && v.n == sizes[j], name + " must be 1-D with sizes[j] entries");
    CLARION_CHECK(v.ok_layout && v.kind == 'i' && v.itemsize == 4,
                  name + " must be C-contiguous int32, got dtype " + dtype_name(a));
    pb.lut[j] = static_cast<const std::int32_t*>(v.data);
    pb.map_stride[j] = map_strides[j];
  }
  return pb;
}

py::tuple to_tuple(const RowError& e) { return py::make_tuple(e.what, e.row, e.col); }

py::tuple slot_counts_cpu(const py::list& codes, const std::vector<i64>& offsets,
                          const std::vector<i64>& sizes, const py::array& raw, int n_threads) {
  std::vector<py::array> keep;
  keep.reserve(8);
  const SlotProblem pb = slot_problem(codes, offsets, sizes, py::list(), {}, false, keep);
  const Light out = light(raw);
  CLARION_CHECK(out.ok_layout && out.writeable && out.kind == 'i' && out.itemsize == 8 &&
                    static_cast<i64>(raw.size()) == pb.raw_cells(),
                "raw must be a writeable C-contiguous int64 array with prod(sizes) elements");
  n_threads = clarion::bind::threads_arg(n_threads);
  RowError e;
  {
    py::gil_scoped_release release;
    e = clarion::bias::slot_counts_cpu(pb, static_cast<std::int64_t*>(const_cast<void*>(out.data)),
                                       n_threads);
  }
  return to_tuple(e);
}

py::tuple slot_weighted_counts_cpu(const py::list& codes, const std::vector<i64>& offsets,
                                   const std::vector<i64>& sizes, const py::list& luts,
                                   const std::vector<i64>& map_strides, const py::array& weights,
                                   const py::array& mapped, const py::array& raw, int n_threads) {
  std::vector<py::array> keep;
  keep.reserve(12);
  const SlotProblem pb = slot_problem(codes, offsets, sizes, luts, map_strides, true, keep);
  const Light w = light(weights);
  CLARION_CHECK(w.ndim == 1 && w.n == pb.n_rows && w.ok_layout && w.kind == 'f' && w.itemsize == 8,
                "weights must be C-contiguous float64 with one entry per row");
  const Light m = light(mapped);
  const auto m_size = static_cast<i64>(mapped.size());
  CLARION_CHECK(m.ok_layout && m.writeable && m.kind == 'f' && m.itemsize == 8,
                "mapped must be a writeable C-contiguous float64 array");
  const Light out = light(raw);
  CLARION_CHECK(out.ok_layout && out.writeable && out.kind == 'i' && out.itemsize == 8 &&
                    static_cast<i64>(raw.size()) == pb.raw_cells(),
                "raw must be a writeable C-contiguous int64 array with prod(sizes) elements");
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
  CLARION_CHECK(top < m_size && m_size <= i64{1} << 30, "luts and map_strides address cells beyond mapped");
  n_threads = clarion::bind::threads_arg(n_threads);
  RowError e;
  {
    py::gil_scoped_release release;
    e = clarion::bias::slot_weighted_counts_cpu(
        pb, static_cast<const double*>(w.data), m_size, static_cast<double*>(const_cast<void*>(m.data)),
        static_cast<std::int64_t*>(const_cast<void*>(out.data)), n_threads);
  }
  return to_tuple(e);
}

template <class T>
py::tuple int_range_t(const void* data, i64 n) {
  T lo{}, hi{};
  {
    py::gil_scoped_release release;
    clarion::bias::int_range_cpu<T>(static_cast<const T*>(data), n, &lo, &hi);
  }
  return py::make_tuple(static_cast<i64>(lo), static_cast<i64>(hi));
}

py::tuple int_range_cpu(const py::array& x) {
  const Light v = light(x);
  CLARION_CHECK(v.ndim == 1 && v.n >= 1 && v.ok_layout && v.kind == 'i',
                "x must be a non-empty 1-D C-contiguous signed integer array, got dtype " + dtype_name(x));
  switch (v.itemsize) {
    case 1: return int_range_t<std::int8_t>(v.data, v.n);
    case 2: return int_range_t<std::int16_t>(v.data, v.n);
    case 4: return int_range_t<std::int32_t>(v.data, v.n);
    default: return int_range_t<std::int64_t>(v.data, v.n);
  }
}

}  // namespace

void register_encode(py::module_& m) {
  m.def("int_range_cpu", &int_range_cpu, py::arg("x"), "(min, max) of a signed integer array, in one pass.");
  m.def("slot_counts_cpu", &slot_counts_cpu, py::arg("codes"), py::arg("offsets"), py::arg("sizes"),
        py::arg("raw"), py::arg("n_threads"),
        "Fill `raw` ([S_0]...[S_k-1], int64) with the counts of each combination of slots "
        "(slot = code + offset) of the code columns; returns (error_code, row, column).");
  m.def("slot_weighted_counts_cpu", &slot_weighted_counts_cpu, py::arg("codes"), py::arg("offsets"),
        py::arg("sizes"), py::arg("luts"), py::arg("map_strides"), py::arg("weights"), py::arg("mapped"),
        py::arg("raw"), py::arg("n_threads"),
        "Weighted slot counts: `mapped` (float64) gets each row's weight at sum(luts[j][slot_j] * "
        "map_strides[j]) in grouped_counts' summation order, `raw` the occurrence count of each slot "
        "combination; returns (error_code, row, column).");
}
