// Bindings of the CSV line finding (clarion/csv_lines.hpp): argument checks and conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>

#include "checks.hpp"
#include "clarion/csv_lines.hpp"

namespace py = pybind11;
using clarion::i64;

namespace {

// (kept int64[k], count, cut, lone_cr) of the bytes `data` (see csv_lines.hpp).
py::tuple csv_lines(const py::array& data_, i64 need, bool at_eof) {
  using clarion::bind::host_view;
  using clarion::bind::require_array;
  const auto data = host_view(data_, "data");
  require_array(data, 'u', 1, 1, "uint8");
  CLARION_CHECK(need >= 0, "need must be >= 0, got " + std::to_string(need));
  clarion::io::CsvLines r;
  {
    const auto* d = data.ptr<const std::uint8_t>();
    const i64 n = data.dim(0);
    py::gil_scoped_release release;
    r = clarion::io::csv_lines_cpu(d, n, need, at_eof);
  }
  py::array_t<i64> kept(static_cast<py::ssize_t>(r.kept.size()));
  std::copy(r.kept.begin(), r.kept.end(), kept.mutable_data());
  return py::make_tuple(kept, r.count, r.cut, r.lone_cr);
}

}  // namespace

void register_csv_lines(py::module_& m) {
  m.def("csv_lines_cpu", &csv_lines, py::arg("data"), py::arg("need"), py::arg("at_eof"),
        "The lines of CSV bytes up to the need-th non-blank one: (kept line indices, line count, end "
        "byte, whether a lone carriage return is among them).");
}
