// Bindings of the grouped count kernels and of the build/device queries.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>

#include "checks.hpp"
#include "clarion/grouped_counts_drivers.hpp"

namespace py = pybind11;
using clarion::i64;
using clarion::RowError;
using clarion::bias::CountsProblem;

namespace {

enum class Num { i8, i16, i32, i64, f32, f64, other };

// The kernel type of a dtype; non-native byte order is "other" (the kernels read native values).
Num num_of(const py::dtype& dt) {
  if (!clarion::bind::native_byte_order(dt)) return Num::other;
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'i') {
    switch (size) {
      case 1: return Num::i8;
      case 2: return Num::i16;
      case 4: return Num::i32;
      case 8: return Num::i64;
    }
  }
  if (kind == 'f') {
    if (size == 4) return Num::f32;
    if (size == 8) return Num::f64;
  }
  return Num::other;
}

Num num_of_name(const std::string& name, const char* arg) {
  if (name == "int8") return Num::i8;
  if (name == "int16") return Num::i16;
  if (name == "int32") return Num::i32;
  if (name == "int64") return Num::i64;
  if (name == "float32") return Num::f32;
  if (name == "float64") return Num::f64;
  throw std::invalid_argument(std::string(arg) + ": unsupported dtype name '" + name +
                              "' (int8/16/32/64 or float32/64, native byte order)");
}

// A 1-D or 2-D input of the kernel layout with n rows; returns its kernel type.
Num input_array(const py::array& a, const char* name, i64 n, int max_ndim) {
  CLARION_CHECK(a.ndim() >= 1 && a.ndim() <= max_ndim,
        std::string(name) + " must be " + (max_ndim == 1 ? "1-D" : "1-D or 2-D") + ", got " +
            std::to_string(a.ndim()) + "-D");
  CLARION_CHECK(a.shape(0) == n, std::string(name) + " has " + std::to_string(a.shape(0)) + " rows but groups has " +
                             std::to_string(n));
  clarion::bind::require_layout(a, name);
  return num_of(a.dtype());
}

Num code_array(const py::array& a, const char* name, i64 n, int max_ndim) {
  const Num num = input_array(a, name, n, max_ndim);
  CLARION_CHECK(num == Num::i8 || num == Num::i16 || num == Num::i32 || num == Num::i64,
        std::string(name) + " must hold int8/16/32/64 codes in native byte order, got dtype " +
            clarion::bind::dtype_str(a));
  return num;
}

Num float_array(const py::array& a, const char* name, i64 n, int max_ndim) {
  const Num num = input_array(a, name, n, max_ndim);
  CLARION_CHECK(num == Num::f32 || num == Num::f64,
        std::string(name) + " must be float32 or float64 in native byte order, got dtype " +
            clarion::bind::dtype_str(a));
  return num;
}

// `out`: the kernel layout, writeable, int64 counts without weights or float64 sums with them,
// holding exactly `cells` elements.
void require_out(const py::array& out, bool weighted, i64 cells, const std::string& shape) {
  clarion::bind::require_layout(out, "out", true);
  if (weighted) CLARION_CHECK(num_of(out.dtype()) == Num::f64, "out must be float64 with weights, got dtype " +
                                                           clarion::bind::dtype_str(out));
  else CLARION_CHECK(num_of(out.dtype()) == Num::i64, "out must be int64 without weights, got dtype " +
                                                  clarion::bind::dtype_str(out));
  CLARION_CHECK(out.size() == cells, "out has " + std::to_string(out.size()) + " elements but the table " + shape +
                                 " has " + std::to_string(cells));
}

template <class F>
auto with_code_type(Num num, F&& f) {
  switch (num) {
    case Num::i8: return f(std::int8_t{});
    case Num::i16: return f(std::int16_t{});
    case Num::i32: return f(std::int32_t{});
    case Num::i64: return f(std::int64_t{});
    default: throw std::invalid_argument("groups must hold int8, int16, int32 or int64 codes");
  }
}

template <class F>
auto with_float_type(Num num, const char* name, F&& f) {
  switch (num) {
    case Num::f32: return f(float{});
    case Num::f64: return f(double{});
    default: throw std::invalid_argument(std::string(name) + " must be float32 or float64");
  }
}

py::tuple as_tuple(const RowError& e) { return py::make_tuple(e.what, e.row, e.col); }

// Every size argument checked (names in the messages), and the table size computed without
// overflow: the kernels index [R][B][G][L][P] tables with plain int64 arithmetic bounded by it.
CountsProblem make_problem(i64 n_rows, i64 n_batch, i64 n_groups, i64 n_labels, i64 n_preds, i64 n_boot,
                           std::uint64_t seed, i64 row_offset) {
  using clarion::bind::size_arg;
  CountsProblem pb;
  pb.n_rows = size_arg(n_rows, "n_rows");
  pb.n_batch = size_arg(n_batch, "n_batch");
  pb.n_groups = size_arg(n_groups, "n_groups");
  pb.n_labels = size_arg(n_labels, "n_labels");
  pb.n_preds = size_arg(n_preds, "n_preds");
  pb.n_boot = size_arg(n_boot, "n_boot");
  pb.seed = seed;
  pb.row_offset = size_arg(row_offset, "row_offset");
  clarion::bind::add(row_offset, n_rows, "row_offset + n_rows");  // bootstrap draws key on global rows
  clarion::bind::product({n_boot > 0 ? n_boot : 1, n_batch, n_groups, n_labels, n_preds},
                         "the count table [n_boot][n_batch][n_groups][n_labels][n_preds]");
  return pb;
}

// ---- CPU ---------------------------------------------------------------------------------------

py::tuple grouped_counts_cpu(const py::array& groups, const py::array& labels, const py::object& preds_obj,
                             const py::object& weights_obj, py::array& out, i64 n_groups, i64 n_labels,
                             i64 n_preds, i64 n_boot, std::uint64_t seed, i64 row_offset, int n_threads) {
  CLARION_CHECK(groups.ndim() == 1, "groups must be 1-D, got " + std::to_string(groups.ndim()) + "-D");
  const i64 n = groups.shape(0);
  const Num code = code_array(groups, "groups", n, 1);
  CLARION_CHECK(code_array(labels, "labels", n, 1) == code, "labels must have the dtype of groups (" +
                                                        clarion::bind::dtype_str(groups) + "), got " +
                                                        clarion::bind::dtype_str(labels));
  py::array preds, weights;
  const bool has_preds = !preds_obj.is_none(), has_weights = !weights_obj.is_none();
  i64 n_batch = 1;
  if (has_preds) {
    preds = preds_obj.cast<py::array>();
    CLARION_CHECK(code_array(preds, "preds", n, 2) == code, "preds must have the dtype of groups (" +
                                                        clarion::bind::dtype_str(groups) + "), got " +
                                                        clarion::bind::dtype_str(preds));
    if (preds.ndim() == 2) n_batch = preds.shape(1);
  }
  Num w_num = Num::other;
  if (has_weights) {
    weights = weights_obj.cast<py::array>();
    w_num = float_array(weights, "weights", n, 1);
  }
  const CountsProblem pb = make_problem(n, n_batch, n_groups, n_labels, has_preds ? n_preds : 1, n_boot, seed, row_offset);
  require_out(out, has_weights, pb.total_cells(), "[R][B][G][L][P]");
  clarion::bind::require_disjoint(out, "out", {{&groups, "groups"}, {&labels, "labels"},
                                               {has_preds ? &preds : nullptr, "preds"},
                                               {has_weights ? &weights : nullptr, "weights"}});
  n_threads = clarion::bind::threads_arg(n_threads);

  return with_code_type(code, [&](auto code_tag) {
    using Code = decltype(code_tag);
    const Code* g = static_cast<const Code*>(groups.data());
    const Code* l = static_cast<const Code*>(labels.data());
    const Code* p = has_preds ? static_cast<const Code*>(preds.data()) : nullptr;
    RowError err;
    if (!has_weights) {
      auto* o = static_cast<i64*>(out.mutable_data());
      py::gil_scoped_release release;
      err = clarion::bias::grouped_counts_cpu<Code, float, i64>(pb, g, l, p, nullptr, o, n_threads);
    } else {
      auto* o = static_cast<double*>(out.mutable_data());
      err = with_float_type(w_num, "weights", [&](auto w_tag) {
        using W = decltype(w_tag);
        const W* w = static_cast<const W*>(weights.data());
        py::gil_scoped_release release;
        return clarion::bias::grouped_counts_cpu<Code, W, double>(pb, g, l, p, w, o, n_threads);
      });
    }
    return as_tuple(err);
  });
}

py::tuple grouped_threshold_counts_cpu(const py::array& groups, const py::array& labels, const py::array& scores,
                                       const py::array& thresholds, const py::object& weights_obj, py::array& out,
                                       i64 n_groups, i64 n_labels, i64 n_boot, std::uint64_t seed, i64 row_offset,
                                       int n_threads) {
  CLARION_CHECK(groups.ndim() == 1, "groups must be 1-D, got " + std::to_string(groups.ndim()) + "-D");
  const i64 n = groups.shape(0);
  const Num code = code_array(groups, "groups", n, 1);
  CLARION_CHECK(code_array(labels, "labels", n, 1) == code, "labels must have the dtype of groups (" +
                                                        clarion::bind::dtype_str(groups) + "), got " +
                                                        clarion::bind::dtype_str(labels));
  const Num s_num = float_array(scores, "scores", n, 2);
  clarion::bind::require_array(thresholds, "thresholds", 'f', 8, 1, "float64");
  const i64 n_batch = scores.ndim() == 2 ? scores.shape(1) : 1;
  const i64 T = thresholds.shape(0);
  const double* t = static_cast<const double*>(thresholds.data());
  // The kernel bins each score by binary search: the thresholds must be sorted, without NaN.
  for (i64 j = 0; j < T; ++j) {
    CLARION_CHECK(t[j] == t[j], "thresholds: NaN at position " + std::to_string(j));
    CLARION_CHECK(j == 0 || t[j] >= t[j - 1], "thresholds must be sorted ascending: position " + std::to_string(j) +
                                          " is smaller than position " + std::to_string(j - 1));
  }
  py::array weights;
  const bool has_weights = !weights_obj.is_none();
  Num w_num = Num::other;
  if (has_weights) {
    weights = weights_obj.cast<py::array>();
    w_num = float_array(weights, "weights", n, 1);
  }
  const CountsProblem pb =
      make_problem(n, n_batch, n_groups, n_labels, clarion::bind::add(T, 1, "thresholds"), n_boot, seed, row_offset);
  const i64 cells = clarion::bind::product({n_boot > 0 ? n_boot : 1, n_batch, T, n_groups, n_labels, 2},
                                           "the count table [R][B][T][G][L][2]");
  require_out(out, has_weights, cells, "[R][B][T][G][L][2]");
  clarion::bind::require_disjoint(out, "out", {{&groups, "groups"}, {&labels, "labels"}, {&scores, "scores"},
                                               {&thresholds, "thresholds"},
                                               {has_weights ? &weights : nullptr, "weights"}});
  n_threads = clarion::bind::threads_arg(n_threads);

  return with_code_type(code, [&](auto code_tag) {
    using Code = decltype(code_tag);
    const Code* g = static_cast<const Code*>(groups.data());
    const Code* l = static_cast<const Code*>(labels.data());
    return with_float_type(s_num, "scores", [&](auto s_tag) {
      using S = decltype(s_tag);
      const S* s = static_cast<const S*>(scores.data());
      RowError err;
      if (!has_weights) {
        auto* o = static_cast<i64*>(out.mutable_data());
        py::gil_scoped_release release;
        err = clarion::bias::grouped_threshold_counts_cpu<Code, S, float, i64>(pb, g, l, s, t, nullptr, o, n_threads);
      } else {
        auto* o = static_cast<double*>(out.mutable_data());
        err = with_float_type(w_num, "weights", [&](auto w_tag) {
          using W = decltype(w_tag);
          const W* w = static_cast<const W*>(weights.data());
          py::gil_scoped_release release;
          return clarion::bias::grouped_threshold_counts_cpu<Code, S, W, double>(pb, g, l, s, t, w, o, n_threads);
        });
      }
      return as_tuple(err);
    });
  });
}

// ---- CUDA --------------------------------------------------------------------------------------

#ifdef CLARION_WITH_CUDA
template <class T>
const T* dptr(std::uintptr_t p) { return reinterpret_cast<const T*>(p); }

// A device pointer must be non-null when its array holds elements. Presence of an optional array
// is an explicit flag: cupy gives pointer 0 for a size-0 array, so 0 cannot mean "absent".
void require_ptr(std::uintptr_t p, i64 elements, const char* name) {
  CLARION_CHECK(p != 0 || elements == 0, std::string(name) + " is a null device pointer but holds " +
                                     std::to_string(elements) + " elements");
}

// The device arrays cannot be inspected here: the Python wrapper passes C-contiguous,
// native-endian arrays of the named dtypes; the binding checks every size and pointer it can.
py::tuple grouped_counts_cuda(std::uintptr_t groups, std::uintptr_t labels, std::uintptr_t preds,
                              std::uintptr_t weights, std::uintptr_t out, bool has_preds, bool has_weights,
                              const std::string& code_dtype, const std::string& weight_dtype, i64 n_rows,
                              i64 n_batch, i64 n_groups, i64 n_labels, i64 n_preds, i64 n_boot, std::uint64_t seed,
                              i64 row_offset, std::uintptr_t stream) {
  CLARION_CHECK(has_preds || n_batch == 1, "n_batch must be 1 without preds, got " + std::to_string(n_batch));
  const CountsProblem pb =
      make_problem(n_rows, n_batch, n_groups, n_labels, has_preds ? n_preds : 1, n_boot, seed, row_offset);
  require_ptr(groups, n_rows, "groups");
  require_ptr(labels, n_rows, "labels");
  if (has_preds) require_ptr(preds, clarion::bind::mul(n_rows, n_batch, "preds"), "preds");
  if (has_weights) require_ptr(weights, n_rows, "weights");
  require_ptr(out, pb.total_cells(), "out");
  void* st = reinterpret_cast<void*>(stream);
  return with_code_type(num_of_name(code_dtype, "code_dtype"), [&](auto code_tag) {
    using Code = decltype(code_tag);
    const Code* p = has_preds ? dptr<Code>(preds) : nullptr;
    RowError err;
    if (!has_weights) {
      py::gil_scoped_release release;
      err = clarion::bias::grouped_counts_cuda<Code, float, i64>(pb, dptr<Code>(groups), dptr<Code>(labels), p,
                                                                 nullptr, reinterpret_cast<i64*>(out), st);
    } else {
      err = with_float_type(num_of_name(weight_dtype, "weight_dtype"), "weights", [&](auto w_tag) {
        using W = decltype(w_tag);
        py::gil_scoped_release release;
        return clarion::bias::grouped_counts_cuda<Code, W, double>(pb, dptr<Code>(groups), dptr<Code>(labels), p,
                                                                   dptr<W>(weights), reinterpret_cast<double*>(out),
                                                                   st);
      });
    }
    return as_tuple(err);
  });
}

py::tuple grouped_threshold_counts_cuda(std::uintptr_t groups, std::uintptr_t labels, std::uintptr_t scores,
                                        std::uintptr_t thresholds, std::uintptr_t weights, std::uintptr_t out,
                                        bool has_weights, const std::string& code_dtype,
                                        const std::string& score_dtype, const std::string& weight_dtype,
                                        i64 n_rows, i64 n_batch, i64 n_thresholds, i64 n_groups, i64 n_labels,
                                        i64 n_boot, std::uint64_t seed, i64 row_offset, std::uintptr_t stream) {
  clarion::bind::size_arg(n_thresholds, "n_thresholds");
  const CountsProblem pb = make_problem(n_rows, n_batch, n_groups, n_labels,
                                        clarion::bind::add(n_thresholds, 1, "n_thresholds"), n_boot, seed,
                                        row_offset);
  const i64 cells = clarion::bind::product({n_boot > 0 ? n_boot : 1, n_batch, n_thresholds, n_groups, n_labels, 2},
                                           "the count table [R][B][T][G][L][2]");
  require_ptr(groups, n_rows, "groups");
  require_ptr(labels, n_rows, "labels");
  require_ptr(scores, clarion::bind::mul(n_rows, n_batch, "scores"), "scores");
  require_ptr(thresholds, n_thresholds, "thresholds");
  if (has_weights) require_ptr(weights, n_rows, "weights");
  require_ptr(out, cells, "out");
  void* st = reinterpret_cast<void*>(stream);
  const double* t = dptr<double>(thresholds);
  return with_code_type(num_of_name(code_dtype, "code_dtype"), [&](auto code_tag) {
    using Code = decltype(code_tag);
    return with_float_type(num_of_name(score_dtype, "score_dtype"), "scores", [&](auto s_tag) {
      using S = decltype(s_tag);
      RowError err;
      if (!has_weights) {
        py::gil_scoped_release release;
        err = clarion::bias::grouped_threshold_counts_cuda<Code, S, float, i64>(
            pb, dptr<Code>(groups), dptr<Code>(labels), dptr<S>(scores), t, nullptr, reinterpret_cast<i64*>(out), st);
      } else {
        err = with_float_type(num_of_name(weight_dtype, "weight_dtype"), "weights", [&](auto w_tag) {
          using W = decltype(w_tag);
          py::gil_scoped_release release;
          return clarion::bias::grouped_threshold_counts_cuda<Code, S, W, double>(
              pb, dptr<Code>(groups), dptr<Code>(labels), dptr<S>(scores), t, dptr<W>(weights),
              reinterpret_cast<double*>(out), st);
        });
      }
      return as_tuple(err);
    });
  });
}
#endif

py::dict compiled_info() {
  py::dict d;
  py::list backends;
  backends.append("cpu");
#ifdef CLARION_WITH_CUDA
  backends.append("cuda");
  d["cuda_compiled"] = true;
  d["cuda_version"] = std::string(CLARION_CUDA_VERSION);
  py::list archs;
  std::string s = CLARION_CUDA_ARCHS;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(',', start);
    const std::string a = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!a.empty()) archs.append(a);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  d["cuda_archs"] = archs;
#else
  d["cuda_compiled"] = false;
  d["cuda_version"] = py::none();
  d["cuda_archs"] = py::list();
#endif
  d["backends"] = backends;
  d["hardware_threads"] = static_cast<int>(std::thread::hardware_concurrency());
  return d;
}

int cuda_device_count() {
#ifdef CLARION_WITH_CUDA
  return clarion::bias::cuda_device_count();
#else
  return 0;
#endif
}

}  // namespace

void register_counts(py::module_& m) {
  m.def("grouped_counts_cpu", &grouped_counts_cpu, py::arg("groups"), py::arg("labels"), py::arg("preds"),
        py::arg("weights"), py::arg("out"), py::arg("n_groups"), py::arg("n_labels"), py::arg("n_preds"),
        py::arg("n_boot"), py::arg("seed"), py::arg("row_offset"), py::arg("n_threads"),
        "Fill `out` ([R][B][G][L][P]) with grouped counts; returns (error_code, row, column).");
  m.def("grouped_threshold_counts_cpu", &grouped_threshold_counts_cpu, py::arg("groups"), py::arg("labels"),
        py::arg("scores"), py::arg("thresholds"), py::arg("weights"), py::arg("out"), py::arg("n_groups"),
        py::arg("n_labels"), py::arg("n_boot"), py::arg("seed"), py::arg("row_offset"), py::arg("n_threads"),
        "Fill `out` ([R][B][T][G][L][2]) with counts of score >= threshold; returns (error_code, row, column).");
#ifdef CLARION_WITH_CUDA
  m.def("grouped_counts_cuda", &grouped_counts_cuda, py::arg("groups"), py::arg("labels"), py::arg("preds"),
        py::arg("weights"), py::arg("out"), py::arg("has_preds"), py::arg("has_weights"), py::arg("code_dtype"),
        py::arg("weight_dtype"), py::arg("n_rows"),
        py::arg("n_batch"), py::arg("n_groups"), py::arg("n_labels"), py::arg("n_preds"), py::arg("n_boot"),
        py::arg("seed"), py::arg("row_offset"), py::arg("stream"),
        "CUDA grouped counts on device pointers; returns (error_code, row, column).");
  m.def("grouped_threshold_counts_cuda", &grouped_threshold_counts_cuda, py::arg("groups"), py::arg("labels"),
        py::arg("scores"), py::arg("thresholds"), py::arg("weights"), py::arg("out"), py::arg("has_weights"),
        py::arg("code_dtype"), py::arg("score_dtype"), py::arg("weight_dtype"), py::arg("n_rows"), py::arg("n_batch"),
        py::arg("n_thresholds"), py::arg("n_groups"), py::arg("n_labels"), py::arg("n_boot"), py::arg("seed"),
        py::arg("row_offset"), py::arg("stream"),
        "CUDA threshold counts on device pointers; returns (error_code, row, column).");
#endif
  m.def("compiled_info", &compiled_info, "What this build of the extension contains.");
  m.def("cuda_device_count", &cuda_device_count, "Usable CUDA devices now (0 without a driver).");
}
