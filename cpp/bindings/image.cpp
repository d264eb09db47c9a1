// Bindings of the image masking kernel: shape/dtype checks and conversion only; the GIL is released
// around the kernel. Python allocates the output.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "checks.hpp"
#include "clarion/image_mask_drivers.hpp"

namespace py = pybind11;
using clarion::i64;

namespace {

using clarion::bind::ArrayView;
using clarion::bind::Device;
using clarion::bind::host_view;
using clarion::bind::mul;
using clarion::bind::require_array;
using clarion::bind::require_disjoint;

// x, b [P x C] of one dtype (uint8, float32 or float64), segment [P] int32, Z [S x M] uint8,
// out [(s1 - s0) x P x C]. Returns the dtype code: 1 (uint8), 4 (float32), 8 (float64).
// segment's values are read only in host memory (the CUDA caller builds them on the host).
int check_image_mask(const ArrayView& x, const ArrayView& b, const ArrayView& segment, const ArrayView& Z,
                     i64 s0, i64 s1, const ArrayView& out) {
  const bool ok =
      (x.kind == 'u' && x.itemsize == 1) || (x.kind == 'f' && (x.itemsize == 4 || x.itemsize == 8));
  CLARION_CHECK(ok, "image must be uint8, float32 or float64, got dtype " + x.dtype);
  const char* name =
      x.kind == 'u' ? "uint8 (the dtype of image)"
                    : (x.itemsize == 4 ? "float32 (the dtype of image)" : "float64 (the dtype of image)");
  require_array(x, x.kind, x.itemsize, 2, name);
  require_array(b, x.kind, x.itemsize, 2, name);
  require_array(out, x.kind, x.itemsize, 3, name, true);
  require_array(segment, 'i', 4, 1, "int32");
  require_array(Z, 'u', 1, 2, "uint8");
  const i64 P = x.dim(0), C = x.dim(1), S = Z.dim(0), M = Z.dim(1);
  CLARION_CHECK(b.dim(0) == P && b.dim(1) == C, "baseline must have the shape of image");
  CLARION_CHECK(segment.dim(0) == P, "segment must have one entry per pixel of image");
  CLARION_CHECK(0 <= s0 && s0 <= s1 && s1 <= S, "coalition range [s0, s1) must lie in [0, S] = [0, " +
                                                    std::to_string(S) + "], got [" + std::to_string(s0) +
                                                    ", " + std::to_string(s1) + ")");
  CLARION_CHECK(out.dim(0) == s1 - s0 && out.dim(1) == P && out.dim(2) == C,
                "out must have shape (s1 - s0, P, C) = (" + std::to_string(s1 - s0) + ", " +
                    std::to_string(P) + ", " + std::to_string(C) + ")");
  mul(mul(s1 - s0, P, "out"), C, "out");
  require_disjoint(out, {&x, &b, &segment, &Z});
  if (segment.device == Device::cpu) {
    const int* sp = segment.ptr<const int>();
    for (i64 p = 0; p < P; ++p)
      CLARION_CHECK(sp[p] >= -1 && sp[p] < M,
                    "segment values must be in [-1, M) with M = " + std::to_string(M) + ": segment[" +
                        std::to_string(p) + "] = " + std::to_string(sp[p]));
  }
  return x.kind == 'u' ? 1 : static_cast<int>(x.itemsize);
}

template <class Launch>
void run_typed(int code, const ArrayView& x, const ArrayView& b, const ArrayView& out, Launch&& launch) {
  py::gil_scoped_release release;
  if (code == 1)
    launch(x.ptr<const std::uint8_t>(), b.ptr<const std::uint8_t>(), out.ptr<std::uint8_t>());
  else if (code == 4)
    launch(x.ptr<const float>(), b.ptr<const float>(), out.ptr<float>());
  else
    launch(x.ptr<const double>(), b.ptr<const double>(), out.ptr<double>());
}

void image_mask_cpu(const py::array& x_, const py::array& b_, const py::array& segment_, const py::array& Z_,
                    i64 s0, i64 s1, const py::array& out_, int n_threads) {
  const ArrayView x = host_view(x_, "image"), b = host_view(b_, "baseline"),
                  seg = host_view(segment_, "segment"), Z = host_view(Z_, "Z"), out = host_view(out_, "out");
  const int code = check_image_mask(x, b, seg, Z, s0, s1, out);
  n_threads = clarion::bind::threads_arg(n_threads);
  const i64 P = x.dim(0), C = x.dim(1), M = Z.dim(1);
  run_typed(code, x, b, out, [&](auto xp, auto bp, auto op) {
    clarion::image::mask_cpu(xp, bp, seg.ptr<const int>(), Z.ptr<const unsigned char>(), P, C, M, s0, s1, op,
                             n_threads);
  });
}

#ifdef CLARION_WITH_CUDA
using clarion::bind::device_view;

void image_mask_cuda(const py::object& x_, const py::object& b_, const py::object& segment_,
                     const py::object& Z_, i64 s0, i64 s1, const py::object& out_, std::uintptr_t stream) {
  const ArrayView x = device_view(x_, "image"), b = device_view(b_, "baseline"),
                  seg = device_view(segment_, "segment"), Z = device_view(Z_, "Z"),
                  out = device_view(out_, "out");
  const int code = check_image_mask(x, b, seg, Z, s0, s1, out);
  void* st = clarion::bind::stream_arg(stream);
  const i64 P = x.dim(0), C = x.dim(1), M = Z.dim(1);
  run_typed(code, x, b, out, [&](auto xp, auto bp, auto op) {
    clarion::image::mask_cuda(xp, bp, seg.ptr<const int>(), Z.ptr<const unsigned char>(), P, C, M, s0, s1, op,
                              st);
  });
}
#endif

}  // namespace

void register_image(py::module_& m) {
  m.def("image_mask_cpu", &image_mask_cpu, py::arg("image"), py::arg("baseline"), py::arg("segment"),
        py::arg("Z"), py::arg("s0"), py::arg("s1"), py::arg("out"), py::arg("n_threads"),
        "out[s - s0, p, c] = image[p, c] if Z[s, segment[p]] (or segment[p] < 0) else baseline[p, c], "
        "for coalitions s in [s0, s1).");
#ifdef CLARION_WITH_CUDA
  m.def("image_mask_cuda", &image_mask_cuda, py::arg("image"), py::arg("baseline"), py::arg("segment"),
        py::arg("Z"), py::arg("s0"), py::arg("s1"), py::arg("out"), py::arg("stream"),
        "image_mask_cpu on device arrays (objects with __cuda_array_interface__).");
#endif
}
