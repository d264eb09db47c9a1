// Argument checks shared by every binding. A binding hands raw pointers to a kernel, so it must
// refuse every array the kernel cannot read as "C-contiguous, aligned, native-endian T[shape]"
// (a byte-swapped, strided, broadcast, misaligned or wrong-dtype array would be read as garbage)
// and every size whose arithmetic could overflow: each failure raises ValueError (via
// std::invalid_argument) naming the argument. The Python wrappers convert their inputs first, so
// these checks only fire on a wrapper bug or a direct call of the private module.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace clarion::bind {

namespace py = pybind11;
using i64 = std::int64_t;

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

// The message is built only when the check fails (the bindings sit on per-batch hot paths).
#define CLARION_CHECK(cond, msg)                          \
  do {                                                    \
    if (!(cond)) ::clarion::bind::fail(msg);              \
  } while (0)

// a * b for a, b >= 0, or ValueError saying that `what` is too large.
inline i64 mul(i64 a, i64 b, const char* what) {
  i64 r = 0;
#if defined(__GNUC__) || defined(__clang__)
  const bool overflow = __builtin_mul_overflow(a, b, &r);
#else
  const bool overflow = a != 0 && b > std::numeric_limits<i64>::max() / a;
  if (!overflow) r = a * b;
#endif
  if (overflow) fail(std::string(what) + " is too large: its size overflows int64");
  return r;
}

// a + b for a, b >= 0, or ValueError saying that `what` is too large.
inline i64 add(i64 a, i64 b, const char* what) {
  i64 r = 0;
#if defined(__GNUC__) || defined(__clang__)
  const bool overflow = __builtin_add_overflow(a, b, &r);
#else
  const bool overflow = b > std::numeric_limits<i64>::max() - a;
  if (!overflow) r = a + b;
#endif
  if (overflow) fail(std::string(what) + " is too large: it overflows int64");
  return r;
}

// The product of non-negative factors, checked for overflow.
inline i64 product(std::initializer_list<i64> factors, const char* what) {
  i64 r = 1;
  for (const i64 f : factors) r = mul(r, f, what);
  return r;
}

// A size argument: an integer >= lo.
inline i64 size_arg(i64 v, const char* name, i64 lo = 0) {
  CLARION_CHECK(v >= lo, std::string(name) + " must be >= " + std::to_string(lo) + ", got " + std::to_string(v));
  return v;
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kNativeOrder = '>';
#else
constexpr char kNativeOrder = '<';
#endif

inline bool native_byte_order(const py::dtype& dt) {
  const char bo = dt.byteorder();
  return bo == '=' || bo == '|' || bo == kNativeOrder;
}

// dtype kind ('i', 'u', 'f', 'b', ...) and itemsize, in native byte order.
inline bool has_dtype(const py::array& a, char kind, py::ssize_t itemsize) {
  const py::dtype dt = a.dtype();
  return dt.kind() == kind && dt.itemsize() == itemsize && native_byte_order(dt);
}

// The memory layout every kernel assumes: native byte order, aligned, C-contiguous (no negative,
// zero or padded strides); `writeable` for outputs.
inline void require_layout(const py::array& a, const std::string& name, bool writeable = false) {
  CLARION_CHECK(native_byte_order(a.dtype()),
        name + " must be in native byte order, got dtype " + dtype_str(a) +
            " (convert with numpy.ascontiguousarray(a, dtype=a.dtype.newbyteorder('=')))");
  CLARION_CHECK((a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0, name + " must be aligned");
  CLARION_CHECK((a.flags() & py::array::c_style) != 0,
        name + " must be C-contiguous (no negative, zero or padded strides; use numpy.ascontiguousarray)");
  if (writeable) CLARION_CHECK(a.writeable(), name + " must be writeable");
}

// An array of dtype (kind, itemsize) with `ndim` dimensions and the kernel layout.
inline void require_array(const py::array& a, const std::string& name, char kind, py::ssize_t itemsize, int ndim,
                          const char* dtype_name, bool writeable = false) {
  CLARION_CHECK(a.ndim() == ndim, name + " must be " + std::to_string(ndim) + "-D, got " + std::to_string(a.ndim()) + "-D");
  require_layout(a, name, writeable);
  CLARION_CHECK(has_dtype(a, kind, itemsize), name + " must be " + dtype_name + ", got dtype " + dtype_str(a));
}

// Outputs must not share memory with any other argument: the kernels clear and fill an output
// while still reading their inputs (both arrays are C-contiguous here, so their byte ranges are
// exact).
inline void require_disjoint(const py::array& out, const char* out_name,
                             std::initializer_list<std::pair<const py::array*, const char*>> others) {
  if (out.nbytes() == 0) return;
  const char* o0 = static_cast<const char*>(out.data());
  const char* o1 = o0 + out.nbytes();
  for (const auto& [a, name] : others) {
    if (a == nullptr || a->nbytes() == 0) continue;
    const char* a0 = static_cast<const char*>(a->data());
    const char* a1 = a0 + a->nbytes();
    CLARION_CHECK(!(o0 < a1 && a0 < o1), std::string(out_name) + " must not share memory with " + name);
  }
}

// Threads argument of a CPU kernel: 0 means all cores.
inline int threads_arg(int n_threads) {
  CLARION_CHECK(n_threads >= 0, "n_threads must be >= 0 (0: all cores), got " + std::to_string(n_threads));
  return n_threads;
}

}  // namespace clarion::bind
