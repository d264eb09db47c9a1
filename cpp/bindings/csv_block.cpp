// Bindings of the compiled CSV block parser (clarion/csv_block.hpp): argument checks and
// conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "clarion/csv_block.hpp"

namespace py = pybind11;
using clarion::i64;

namespace {

// A 1-D numpy array that owns the vector's memory (no copy).
template <class V, class T = typename V::value_type>
py::array_t<T> owned(V&& v) {
  auto* held = new V(std::move(v));
  py::capsule free_it(held, [](void* p) { delete static_cast<V*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(held->size())}, {static_cast<py::ssize_t>(sizeof(T))},
                        held->data(), free_it);
}

// (status, reason, rows, columns): columns[f] is None (a skipped field), int64[rows],
// float64[rows], or (codes int32[rows], first int64[k], values list of k str) for a text field;
// columns is None when the block is declined (status > 0, reason says why).
py::tuple csv_block(const py::array& data_, const py::array& kinds_, int n_threads, i64 part_lines) {
  using clarion::bind::host_view;
  using clarion::bind::require_array;
  const auto data = host_view(data_, "data");
  const auto kinds = host_view(kinds_, "kinds");
  require_array(data, 'u', 1, 1, "uint8");
  require_array(kinds, 'i', 1, 1, "int8");
  const i64 n = data.dim(0);
  const i64 n_fields = kinds.dim(0);
  CLARION_CHECK(n_fields >= 1, "kinds must name at least one field");
  CLARION_CHECK(n < std::numeric_limits<std::int32_t>::max(),
                "data must be under 2**31 bytes (int32 codes), got " + std::to_string(n));
  const auto* k = kinds.ptr<const std::int8_t>();
  for (i64 f = 0; f < n_fields; ++f)
    CLARION_CHECK(k[f] >= 0 && k[f] <= 3, "kinds[" + std::to_string(f) +
                                              "] must be 0 (skip), 1 (int64), 2 (float64) or 3 (text), got " +
                                              std::to_string(static_cast<int>(k[f])));
  CLARION_CHECK(n_threads >= 0, "n_threads must be >= 0 (0: every core), got " + std::to_string(n_threads));
  CLARION_CHECK(part_lines >= 1, "part_lines must be >= 1, got " + std::to_string(part_lines));
  const auto* d = data.ptr<const std::uint8_t>();
  clarion::io::CsvBlock r;
  {
    py::gil_scoped_release release;
    r = clarion::io::csv_block_cpu(d, n, k, n_fields, n_threads, part_lines);
  }
  if (r.status != clarion::io::kCsvOk) return py::make_tuple(r.status, r.reason, 0, py::none());
  py::list cols;
  for (i64 f = 0; f < n_fields; ++f) {
    auto& c = r.columns[f];
    switch (k[f]) {
      case clarion::io::kCsvInt64: cols.append(owned(std::move(c.ints))); break;
      case clarion::io::kCsvFloat64: cols.append(owned(std::move(c.floats))); break;
      case clarion::io::kCsvText: {
        py::list values;
        for (std::size_t j = 0; j < c.value_start.size(); ++j) {
          PyObject* s = PyUnicode_DecodeUTF8(reinterpret_cast<const char*>(d + c.value_start[j]),
                                             static_cast<Py_ssize_t>(c.value_len[j]), "strict");
          if (s == nullptr) throw py::error_already_set();  // (checked by the kernel: never)
          values.append(py::reinterpret_steal<py::object>(s));
        }
        cols.append(py::make_tuple(owned(std::move(c.codes)), owned(std::move(c.first)), values));
        break;
      }
      default: cols.append(py::none());
    }
  }
  return py::make_tuple(r.status, r.reason, r.rows, cols);
}

}  // namespace

void register_csv_block(py::module_& m) {
  m.def("csv_block_cpu", &csv_block, py::arg("data"), py::arg("kinds"), py::arg("n_threads") = 0,
        py::arg("part_lines") = clarion::io::kCsvPartLines,
        "A block of plain CSV lines parsed into typed columns, or declined: (status, reason, rows, "
        "columns); kinds per field: 0 skip, 1 int64, 2 float64, 3 text (codes, first rows, values); at most "
        "one thread per part_lines lines.");
}
