// Argument checks shared by every binding. A binding hands raw pointers to a kernel, so it must
// refuse every array the kernel cannot read as "C-contiguous, aligned, native-endian T[shape]"
// (a byte-swapped, strided, broadcast, misaligned or wrong-dtype array would be read as garbage)
// and every size whose arithmetic could overflow: each failure raises ValueError (via
// std::invalid_argument) naming the argument. The Python wrappers convert their inputs first, so
// these checks only fire on a wrapper bug or a direct call of the private module.
//
// Every array argument, host or device, first becomes an ArrayView (pointer, shape, strides,
// dtype, device): host_view() reads a numpy array, device_view() a CUDA Array Interface
// description. The checks read only the view, so the CPU and the CUDA binding of a kernel run the
// same checks, in the same order, with the same messages, before anything touches the data.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef CLARION_WITH_CUDA
#include "clarion/device.hpp"
#endif

namespace clarion::bind {

namespace py = pybind11;
using i64 = std::int64_t;

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

// The message is built only when the check fails (the bindings sit on per-batch hot paths).
#define CLARION_CHECK(cond, msg)             \
  do {                                       \
    if (!(cond)) ::clarion::bind::fail(msg); \
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
  CLARION_CHECK(v >= lo,
                std::string(name) + " must be >= " + std::to_string(lo) + ", got " + std::to_string(v));
  return v;
}

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kNativeOrder = '>';
#else
constexpr char kNativeOrder = '<';
#endif

// numpy's byte-order character: '=' native, '|' not applicable, '<' or '>' explicit.
inline bool native_byte_order(char byteorder) {
  return byteorder == '=' || byteorder == '|' || byteorder == kNativeOrder;
}

enum class Device { cpu, cuda };

// A non-owning view of one array argument. `owner` keeps the Python object that holds the memory
// alive while the view is in use (a list converted to an array is such a temporary).
struct ArrayView {
  std::string name;  // the argument's name, for messages
  Device device = Device::cpu;
  std::uintptr_t data = 0;
  std::vector<i64> shape;
  std::vector<i64> strides;  // in bytes
  char kind = '?';           // numpy dtype kind: 'i', 'u', 'f', 'b', 'O', ...
  i64 itemsize = 0;
  char byteorder = '=';
  std::string dtype;  // as numpy prints it: "int64", ">f8"
  bool aligned = true;
  bool c_contiguous = true;  // numpy's rule: extent-1 axes and size-0 arrays are contiguous
  bool writeable = true;
  // Device arrays: the stream the producer's work on the data is queued on (the CUDA Array
  // Interface's 'stream'; absent: no synchronisation needed).
  std::optional<std::uintptr_t> stream;
  i64 size = 0;  // elements
  i64 nbytes = 0;
  py::object owner;

  int ndim() const { return static_cast<int>(shape.size()); }
  i64 dim(int i) const { return shape[static_cast<size_t>(i)]; }
  bool native() const { return native_byte_order(byteorder); }
  bool has_dtype(char k, i64 bytes) const { return kind == k && itemsize == bytes && native(); }
  template <class T>
  T* ptr() const {
    return reinterpret_cast<T*>(data);
  }
};

// The view of a numpy array (host memory).
inline ArrayView host_view(const py::array& a, const char* name) {
  ArrayView v;
  v.name = name;
  v.device = Device::cpu;
  v.data = reinterpret_cast<std::uintptr_t>(a.data());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    v.shape.push_back(static_cast<i64>(a.shape(i)));
    v.strides.push_back(static_cast<i64>(a.strides(i)));
  }
  const py::dtype dt = a.dtype();
  v.kind = dt.kind();
  v.itemsize = static_cast<i64>(dt.itemsize());
  v.byteorder = dt.byteorder();
  v.dtype = py::str(dt).cast<std::string>();
  v.aligned = (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0;
  v.c_contiguous = (a.flags() & py::array::c_style) != 0;
  v.writeable = a.writeable();
  v.size = static_cast<i64>(a.size());
  v.nbytes = static_cast<i64>(a.nbytes());
  v.owner = a;
  return v;
}

// An optional host array: None is absent.
inline std::optional<ArrayView> host_view(const py::object& a, const char* name) {
  if (a.is_none()) return std::nullopt;
  return host_view(a.cast<py::array>(), name);
}

// The number of elements of `shape` (0 when any extent is 0), checked for overflow.
inline i64 element_count(const std::vector<i64>& shape, const std::string& name) {
  for (const i64 s : shape)
    if (s == 0) return 0;
  i64 n = 1;
  for (const i64 s : shape) n = mul(n, s, name.c_str());
  return n;
}

// numpy's C-contiguity rule on byte strides.
inline bool is_c_contiguous(const std::vector<i64>& shape, const std::vector<i64>& strides, i64 itemsize) {
  for (const i64 s : shape)
    if (s == 0) return true;
  i64 expected = itemsize;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (strides[i] != expected) return false;
    expected *= shape[i];  // no overflow: bounded by the array's byte size, checked before
  }
  return true;
}

// The view of a device array: an object with __cuda_array_interface__ (a cupy or numba array), a
// dict in that format ({"data": (ptr, readonly), "shape", "strides", "typestr"}) or a tuple
// (ptr, shape, strides, typestr). Reads the description only: no device call.
inline ArrayView device_view(const py::handle& obj, const char* name) {
  const std::string who(name);
  py::object desc;
  if (py::hasattr(obj, "__cuda_array_interface__")) {
    desc = obj.attr("__cuda_array_interface__");
  } else if (py::isinstance<py::dict>(obj) || py::isinstance<py::tuple>(obj)) {
    desc = py::reinterpret_borrow<py::object>(obj);
  } else {
    fail(who + " must be a device array (an object with __cuda_array_interface__, or its description), got " +
         py::str(py::type::of(obj)).cast<std::string>());
  }
  ArrayView v;
  v.name = who;
  v.device = Device::cuda;
  v.owner = py::reinterpret_borrow<py::object>(obj);
  py::object data, shape, strides, typestr;
  bool readonly = false;
  try {
    if (py::isinstance<py::dict>(desc)) {
      const py::dict d = desc.cast<py::dict>();
      CLARION_CHECK(d.contains("data") && d.contains("shape") && d.contains("typestr"),
                    who + ": a __cuda_array_interface__ needs 'data', 'shape' and 'typestr'");
      CLARION_CHECK(!d.contains("mask") || d["mask"].is_none(),
                    who + ": masked device arrays are not supported");
      const py::tuple dt = d["data"].cast<py::tuple>();
      CLARION_CHECK(dt.size() == 2, who + ": 'data' must be (pointer, readonly)");
      data = dt[0];
      readonly = dt[1].cast<bool>();
      shape = d["shape"];
      strides = d.contains("strides") ? py::object(d["strides"]) : py::object(py::none());
      typestr = d["typestr"];
      if (d.contains("stream") && !d["stream"].is_none()) {
        CLARION_CHECK(py::isinstance<py::int_>(d["stream"]) && !py::isinstance<py::bool_>(d["stream"]),
                      who + ": 'stream' must be an integer or None");
        const auto st = d["stream"].cast<long long>();
        // The interface (v3) reserves 0 (ambiguous), 1 is the legacy and 2 the per-thread default.
        CLARION_CHECK(st > 0, who +
                                  ": 'stream' must be None or a positive integer (0 is not allowed by "
                                  "the CUDA Array Interface), got " +
                                  std::to_string(st));
        v.stream = static_cast<std::uintptr_t>(st);
      }
    } else {
      const py::tuple t = desc.cast<py::tuple>();
      CLARION_CHECK(t.size() == 4,
                    who + ": a device array description is (pointer, shape, strides, typestr)");
      data = t[0];
      shape = t[1];
      strides = t[2];
      typestr = t[3];
    }
    v.data = data.cast<std::uintptr_t>();
    for (const auto& s : shape.cast<py::tuple>()) v.shape.push_back(s.cast<i64>());
    if (!strides.is_none())
      for (const auto& s : strides.cast<py::tuple>()) v.strides.push_back(s.cast<i64>());
    const py::dtype dt(typestr.cast<std::string>());
    v.kind = dt.kind();
    v.itemsize = static_cast<i64>(dt.itemsize());
    v.byteorder = dt.byteorder();
    v.dtype = py::str(dt).cast<std::string>();
  } catch (const py::error_already_set& e) {
    fail(who + ": not a valid device array description (" + std::string(e.what()) + ")");
  } catch (const py::cast_error& e) {
    fail(who + ": not a valid device array description (" + std::string(e.what()) + ")");
  }
  for (const i64 s : v.shape) CLARION_CHECK(s >= 0, who + ": negative extent in the shape");
  v.size = element_count(v.shape, who);
  v.nbytes = mul(v.size, v.itemsize, name);
  if (strides.is_none()) {  // C order
    v.strides.resize(v.shape.size());
    i64 s = v.itemsize;
    for (size_t i = v.shape.size(); i-- > 0;) {
      v.strides[i] = s;
      if (v.size > 0) s *= v.shape[i];  // no overflow: bounded by nbytes, checked above
    }
  } else {
    CLARION_CHECK(v.strides.size() == v.shape.size(), who + ": strides must have one entry per axis");
    v.c_contiguous = is_c_contiguous(v.shape, v.strides, v.itemsize);
  }
  v.aligned = v.itemsize <= 0 || v.data % static_cast<std::uintptr_t>(v.itemsize) == 0;
  v.writeable = !readonly;
  // cupy gives pointer 0 for a size-0 array; an array with elements needs a real pointer.
  CLARION_CHECK(v.data != 0 || v.size == 0,
                who + " is a null device pointer but holds " + std::to_string(v.size) + " elements");
  return v;
}

// An optional device array: None is absent (a size-0 array is present, whatever its pointer).
inline std::optional<ArrayView> device_view_opt(const py::object& obj, const char* name) {
  if (obj.is_none()) return std::nullopt;
  return device_view(obj, name);
}

// The memory layout every kernel assumes: native byte order, aligned, C-contiguous (no negative,
// zero or padded strides); `writeable` for outputs.
inline void require_layout(const ArrayView& a, bool writeable = false) {
  CLARION_CHECK(a.native(),
                a.name + " must be in native byte order, got dtype " + a.dtype +
                    " (convert with numpy.ascontiguousarray(a, dtype=a.dtype.newbyteorder('=')))");
  CLARION_CHECK(a.aligned, a.name + " must be aligned");
  CLARION_CHECK(
      a.c_contiguous,
      a.name + " must be C-contiguous (no negative, zero or padded strides; use numpy.ascontiguousarray)");
  if (writeable) CLARION_CHECK(a.writeable, a.name + " must be writeable");
}

// An array of dtype (kind, itemsize) with `ndim` dimensions and the kernel layout.
inline void require_array(const ArrayView& a, char kind, i64 itemsize, int ndim, const char* dtype_name,
                          bool writeable = false) {
  CLARION_CHECK(a.ndim() == ndim,
                a.name + " must be " + std::to_string(ndim) + "-D, got " + std::to_string(a.ndim()) + "-D");
  require_layout(a, writeable);
  CLARION_CHECK(a.has_dtype(kind, itemsize), a.name + " must be " + dtype_name + ", got dtype " + a.dtype);
}

// Outputs must not share memory with any other argument: the kernels clear and fill an output
// while still reading their inputs (both arrays are C-contiguous here, so their byte ranges are
// exact). Arrays on different devices never overlap.
inline void require_disjoint(const ArrayView& out, std::initializer_list<const ArrayView*> others) {
  if (out.nbytes == 0) return;
  const std::uintptr_t o0 = out.data, o1 = o0 + static_cast<std::uintptr_t>(out.nbytes);
  for (const ArrayView* a : others) {
    if (a == nullptr || a->nbytes == 0 || a->device != out.device) continue;
    const std::uintptr_t a0 = a->data, a1 = a0 + static_cast<std::uintptr_t>(a->nbytes);
    CLARION_CHECK(!(o0 < a1 && a0 < o1), out.name + " must not share memory with " + a->name);
  }
}

// An optional view as a pointer (null when absent), for require_disjoint.
inline const ArrayView* opt(const std::optional<ArrayView>& v) { return v ? &*v : nullptr; }

// Threads argument of a CPU kernel: 0 means all cores.
inline int threads_arg(int n_threads) {
  CLARION_CHECK(n_threads >= 0, "n_threads must be >= 0 (0: all cores), got " + std::to_string(n_threads));
  return n_threads;
}

// The stream argument of a CUDA kernel, as the driver takes it (0: the default stream).
inline void* stream_arg(std::uintptr_t stream) { return reinterpret_cast<void*>(stream); }

#ifdef CLARION_WITH_CUDA
// The device-side checks of a CUDA call, after every check on the descriptions has passed (they
// query the runtime, so they raise clarion.CudaError where there is no driver): every array with
// elements must live on the current device (an array of another GPU, or host memory passed as a
// device pointer, is a ValueError naming it), and the kernel's `stream` is made to wait for the
// stream each array's producer declared (the CUDA Array Interface's 'stream').
inline void prepare_device_arrays(std::initializer_list<const ArrayView*> arrays, void* stream) {
  const int current = clarion::cuda::current_device();
  for (const ArrayView* a : arrays) {
    if (a == nullptr || a->size == 0 || a->device != Device::cuda) continue;
    const int where = clarion::cuda::pointer_device(a->data);
    CLARION_CHECK(where >= 0,
                  a->name + " is not in device memory (its pointer is host memory CUDA does not know)");
    CLARION_CHECK(where == current, a->name + " lives on CUDA device " + std::to_string(where) +
                                        " but the current device is " + std::to_string(current) +
                                        " (run the call under `with cupy.cuda.Device(" +
                                        std::to_string(where) + "):`)");
  }
  for (const ArrayView* a : arrays)
    if (a != nullptr && a->stream) clarion::cuda::wait_for_stream(*a->stream, stream);
}
#endif

}  // namespace clarion::bind
