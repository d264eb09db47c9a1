// Bindings of the text column codes (clarion/text_codes.hpp): argument checks and conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checks.hpp"
#include "clarion/text_codes.hpp"

namespace py = pybind11;
using clarion::i64;

namespace {

// (codes int32[n], first int64[k]) of the n values whose bytes are data[offsets[i] .. offsets[i + 1]).
py::tuple text_codes(const py::array& offsets_, const py::array& data_) {
  using clarion::bind::host_view;
  using clarion::bind::require_array;
  const auto offsets = host_view(offsets_, "offsets");
  const auto data = host_view(data_, "data");
  require_array(data, 'u', 1, 1, "uint8");
  CLARION_CHECK(offsets.ndim() == 1 && offsets.dim(0) >= 1, "offsets must be 1-D with at least one entry");
  const bool wide = offsets.itemsize == 8;
  if (wide)
    require_array(offsets, 'i', 8, 1, "int64");
  else
    require_array(offsets, 'i', 4, 1, "int32");
  const i64 n = offsets.dim(0) - 1;
  py::array_t<std::int32_t> codes(n);
  std::vector<i64> first;
  {
    auto* c = codes.mutable_data();
    const auto* d = data.ptr<const std::uint8_t>();
    const i64 len = data.dim(0);
    py::gil_scoped_release release;
    if (wide)
      clarion::io::text_codes_cpu(offsets.ptr<const std::int64_t>(), n, d, len, c, first);
    else
      clarion::io::text_codes_cpu(offsets.ptr<const std::int32_t>(), n, d, len, c, first);
  }
  py::array_t<i64> out(static_cast<py::ssize_t>(first.size()));
  std::copy(first.begin(), first.end(), out.mutable_data());
  return py::make_tuple(codes, out);
}

}  // namespace

void register_text_codes(py::module_& m) {
  m.def("text_codes_cpu", &text_codes, py::arg("offsets"), py::arg("data"),
        "Codes (int32) of the values data[offsets[i]:offsets[i + 1]] in first-seen order, and each "
        "code's first row (int64).");
}
