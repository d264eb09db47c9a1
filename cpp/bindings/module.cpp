// clarion._core: the compiled kernels. Bindings check and convert arguments only; every compute
// call releases the GIL. Registration functions live beside the kernels they bind.
#include <pybind11/pybind11.h>

#include "clarion/errors.hpp"

namespace py = pybind11;

void register_counts(py::module_& m);
void register_image(py::module_& m);
void register_encode(py::module_& m);
void register_knn(py::module_& m);
void register_shap(py::module_& m);
void register_text_codes(py::module_& m);
void register_csv_lines(py::module_& m);
void register_csv_block(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "clarion's compiled kernels (private: use the functions re-exported by `clarion`).";
  auto cuda_error = py::register_exception<clarion::CudaError>(m, "CudaError", PyExc_RuntimeError);
  cuda_error.attr("__doc__") =
      "A CUDA runtime call failed in a clarion kernel; the message names the call, file and line.";
  register_counts(m);
  register_encode(m);
  register_knn(m);
  register_shap(m);
  register_image(m);
  register_text_codes(m);
  register_csv_lines(m);
  register_csv_block(m);
}
