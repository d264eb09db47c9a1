// Bindings of the grouped count kernels and of the build/device queries.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "checks.hpp"
#include "clarion/grouped_counts_drivers.hpp"
#include "clarion/sum_schedule.hpp"

namespace py = pybind11;
using clarion::i64;
using clarion::RowError;
using clarion::bias::CountsProblem;

namespace {

using clarion::bind::ArrayView;
using clarion::bind::Device;
using OptView = std::optional<ArrayView>;

enum class Num { i8, i16, i32, i64, f32, f64, other };

// The kernel type of an array's dtype; non-native byte order is "other" (the kernels read native
// values).
Num num_of(const ArrayView& a) {
  if (!a.native()) return Num::other;
  if (a.kind == 'i') {
    switch (a.itemsize) {
      case 1: return Num::i8;
      case 2: return Num::i16;
      case 4: return Num::i32;
      case 8: return Num::i64;
    }
  }
  if (a.kind == 'f') {
    if (a.itemsize == 4) return Num::f32;
    if (a.itemsize == 8) return Num::f64;
  }
  return Num::other;
}

// A 1-D or 2-D input of the kernel layout with n rows; returns its kernel type.
Num input_array(const ArrayView& a, i64 n, int max_ndim) {
  CLARION_CHECK(a.ndim() >= 1 && a.ndim() <= max_ndim, a.name + " must be " +
                                                           (max_ndim == 1 ? "1-D" : "1-D or 2-D") + ", got " +
                                                           std::to_string(a.ndim()) + "-D");
  CLARION_CHECK(a.dim(0) == n,
                a.name + " has " + std::to_string(a.dim(0)) + " rows but groups has " + std::to_string(n));
  clarion::bind::require_layout(a);
  return num_of(a);
}

Num code_array(const ArrayView& a, i64 n, int max_ndim) {
  const Num num = input_array(a, n, max_ndim);
  CLARION_CHECK(num == Num::i8 || num == Num::i16 || num == Num::i32 || num == Num::i64,
                a.name + " must hold int8/16/32/64 codes in native byte order, got dtype " + a.dtype);
  return num;
}

Num float_array(const ArrayView& a, i64 n, int max_ndim) {
  const Num num = input_array(a, n, max_ndim);
  CLARION_CHECK(num == Num::f32 || num == Num::f64,
                a.name + " must be float32 or float64 in native byte order, got dtype " + a.dtype);
  return num;
}

// A code array of the dtype of `groups`.
void same_codes(const ArrayView& a, const ArrayView& groups, Num code, i64 n, int max_ndim) {
  CLARION_CHECK(code_array(a, n, max_ndim) == code,
                a.name + " must have the dtype of groups (" + groups.dtype + "), got " + a.dtype);
}

// `out`: the kernel layout, writeable, int64 counts without weights or float64 sums with them,
// holding exactly `cells` elements.
void require_out(const ArrayView& out, bool weighted, i64 cells, const std::string& shape) {
  clarion::bind::require_layout(out, true);
  if (weighted)
    CLARION_CHECK(num_of(out) == Num::f64, "out must be float64 with weights, got dtype " + out.dtype);
  else
    CLARION_CHECK(num_of(out) == Num::i64, "out must be int64 without weights, got dtype " + out.dtype);
  CLARION_CHECK(out.size == cells, "out has " + std::to_string(out.size) + " elements but the table " +
                                       shape + " has " + std::to_string(cells));
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

// ---- grouped_counts: one check for both backends ------------------------------------------------

// The array arguments of a count kernel, and what their checks found.
struct CountsArgs {
  ArrayView groups, labels;
  OptView preds, weights;
  ArrayView out;
};

struct ThresholdArgs {
  ArrayView groups, labels, scores, thresholds;
  OptView weights;
  ArrayView out;
};

struct Checked {
  CountsProblem pb;
  Num code = Num::other, score = Num::other, weight = Num::other;
};

// Checks every argument of grouped_counts_{cpu,cuda}: dtypes, layouts, lengths, sizes (without
// overflow) and aliasing. Reads only the views, never the data.
Checked check_counts(const CountsArgs& a, i64 n_groups, i64 n_labels, i64 n_preds, i64 n_boot,
                     std::uint64_t seed, i64 row_offset) {
  Checked c;
  CLARION_CHECK(a.groups.ndim() == 1, "groups must be 1-D, got " + std::to_string(a.groups.ndim()) + "-D");
  const i64 n = a.groups.dim(0);
  c.code = code_array(a.groups, n, 1);
  same_codes(a.labels, a.groups, c.code, n, 1);
  i64 n_batch = 1;
  if (a.preds) {
    same_codes(*a.preds, a.groups, c.code, n, 2);
    if (a.preds->ndim() == 2) n_batch = a.preds->dim(1);
  }
  if (a.weights) c.weight = float_array(*a.weights, n, 1);
  c.pb = make_problem(n, n_batch, n_groups, n_labels, a.preds ? n_preds : 1, n_boot, seed, row_offset);
  require_out(a.out, a.weights.has_value(), c.pb.total_cells(), "[R][B][G][L][P]");
  clarion::bind::require_disjoint(
      a.out, {&a.groups, &a.labels, clarion::bind::opt(a.preds), clarion::bind::opt(a.weights)});
  return c;
}

// Runs launch(groups, labels, preds, weights, out) with the typed pointers of checked arguments,
// the GIL released: launch is the CPU or the CUDA driver.
template <class Launch>
py::tuple run_counts(const CountsArgs& a, const Checked& c, Launch&& launch) {
  return with_code_type(c.code, [&](auto code_tag) {
    using Code = decltype(code_tag);
    const Code* g = a.groups.ptr<const Code>();
    const Code* l = a.labels.ptr<const Code>();
    const Code* p = a.preds ? a.preds->ptr<const Code>() : nullptr;
    RowError err;
    if (!a.weights) {
      auto* o = a.out.ptr<i64>();
      py::gil_scoped_release release;
      err = launch(g, l, p, static_cast<const float*>(nullptr), o);
    } else {
      auto* o = a.out.ptr<double>();
      err = with_float_type(c.weight, "weights", [&](auto w_tag) {
        using W = decltype(w_tag);
        const W* w = a.weights->ptr<const W>();
        py::gil_scoped_release release;
        return launch(g, l, p, w, o);
      });
    }
    return as_tuple(err);
  });
}

// ---- grouped_threshold_counts: one check for both backends --------------------------------------

Checked check_threshold_counts(const ThresholdArgs& a, i64 n_groups, i64 n_labels, i64 n_boot,
                               std::uint64_t seed, i64 row_offset) {
  Checked c;
  CLARION_CHECK(a.groups.ndim() == 1, "groups must be 1-D, got " + std::to_string(a.groups.ndim()) + "-D");
  const i64 n = a.groups.dim(0);
  c.code = code_array(a.groups, n, 1);
  same_codes(a.labels, a.groups, c.code, n, 1);
  c.score = float_array(a.scores, n, 2);
  clarion::bind::require_array(a.thresholds, 'f', 8, 1, "float64");
  const i64 n_batch = a.scores.ndim() == 2 ? a.scores.dim(1) : 1;
  const i64 T = a.thresholds.dim(0);
  // The kernel bins each score by binary search: the thresholds must be sorted, without NaN. Host
  // memory is checked here; the CUDA wrapper checks its host copy before uploading it.
  if (a.thresholds.device == Device::cpu) {
    const double* t = a.thresholds.ptr<const double>();
    for (i64 j = 0; j < T; ++j) {
      CLARION_CHECK(t[j] == t[j], "thresholds: NaN at position " + std::to_string(j));
      CLARION_CHECK(j == 0 || t[j] >= t[j - 1], "thresholds must be sorted ascending: position " +
                                                    std::to_string(j) + " is smaller than position " +
                                                    std::to_string(j - 1));
    }
  }
  if (a.weights) c.weight = float_array(*a.weights, n, 1);
  c.pb = make_problem(n, n_batch, n_groups, n_labels, clarion::bind::add(T, 1, "thresholds"), n_boot, seed,
                      row_offset);
  const i64 cells = clarion::bind::product({n_boot > 0 ? n_boot : 1, n_batch, T, n_groups, n_labels, 2},
                                           "the count table [R][B][T][G][L][2]");
  require_out(a.out, a.weights.has_value(), cells, "[R][B][T][G][L][2]");
  clarion::bind::require_disjoint(
      a.out, {&a.groups, &a.labels, &a.scores, &a.thresholds, clarion::bind::opt(a.weights)});
  return c;
}

template <class Launch>
py::tuple run_threshold_counts(const ThresholdArgs& a, const Checked& c, Launch&& launch) {
  return with_code_type(c.code, [&](auto code_tag) {
    using Code = decltype(code_tag);
    const Code* g = a.groups.ptr<const Code>();
    const Code* l = a.labels.ptr<const Code>();
    const double* t = a.thresholds.ptr<const double>();
    return with_float_type(c.score, "scores", [&](auto s_tag) {
      using S = decltype(s_tag);
      const S* s = a.scores.ptr<const S>();
      RowError err;
      if (!a.weights) {
        auto* o = a.out.ptr<i64>();
        py::gil_scoped_release release;
        err = launch(g, l, s, t, static_cast<const float*>(nullptr), o);
      } else {
        auto* o = a.out.ptr<double>();
        err = with_float_type(c.weight, "weights", [&](auto w_tag) {
          using W = decltype(w_tag);
          const W* w = a.weights->ptr<const W>();
          py::gil_scoped_release release;
          return launch(g, l, s, t, w, o);
        });
      }
      return as_tuple(err);
    });
  });
}

// ---- CPU ---------------------------------------------------------------------------------------

py::tuple grouped_counts_cpu(const py::array& groups, const py::array& labels, const py::object& preds,
                             const py::object& weights, const py::array& out, i64 n_groups, i64 n_labels,
                             i64 n_preds, i64 n_boot, std::uint64_t seed, i64 row_offset, int n_threads) {
  using clarion::bind::host_view;
  CountsArgs a{host_view(groups, "groups"), host_view(labels, "labels"), host_view(preds, "preds"),
               host_view(weights, "weights"), host_view(out, "out")};
  const Checked c = check_counts(a, n_groups, n_labels, n_preds, n_boot, seed, row_offset);
  n_threads = clarion::bind::threads_arg(n_threads);
  return run_counts(a, c, [&](auto g, auto l, auto p, auto w, auto o) {
    return clarion::bias::grouped_counts_cpu(c.pb, g, l, p, w, o, n_threads);
  });
}

py::tuple grouped_threshold_counts_cpu(const py::array& groups, const py::array& labels,
                                       const py::array& scores, const py::array& thresholds,
                                       const py::object& weights, const py::array& out, i64 n_groups,
                                       i64 n_labels, i64 n_boot, std::uint64_t seed, i64 row_offset,
                                       int n_threads) {
  using clarion::bind::host_view;
  ThresholdArgs a{host_view(groups, "groups"),   host_view(labels, "labels"),
                  host_view(scores, "scores"),   host_view(thresholds, "thresholds"),
                  host_view(weights, "weights"), host_view(out, "out")};
  const Checked c = check_threshold_counts(a, n_groups, n_labels, n_boot, seed, row_offset);
  n_threads = clarion::bind::threads_arg(n_threads);
  return run_threshold_counts(a, c, [&](auto g, auto l, auto s, auto t, auto w, auto o) {
    return clarion::bias::grouped_threshold_counts_cpu(c.pb, g, l, s, t, w, o, n_threads);
  });
}

// ---- CUDA --------------------------------------------------------------------------------------

#ifdef CLARION_WITH_CUDA
// Device arrays arrive as CUDA Array Interface descriptions (device_view): the same checks as on
// the CPU run on them before any device call. Only the thresholds' values cannot be read here.
py::tuple grouped_counts_cuda(const py::object& groups, const py::object& labels, const py::object& preds,
                              const py::object& weights, const py::object& out, i64 n_groups, i64 n_labels,
                              i64 n_preds, i64 n_boot, std::uint64_t seed, i64 row_offset,
                              std::uintptr_t stream) {
  using clarion::bind::device_view;
  using clarion::bind::device_view_opt;
  CountsArgs a{device_view(groups, "groups"), device_view(labels, "labels"), device_view_opt(preds, "preds"),
               device_view_opt(weights, "weights"), device_view(out, "out")};
  const Checked c = check_counts(a, n_groups, n_labels, n_preds, n_boot, seed, row_offset);
  void* st = clarion::bind::stream_arg(stream);
  clarion::bind::prepare_device_arrays(
      {&a.groups, &a.labels, clarion::bind::opt(a.preds), clarion::bind::opt(a.weights), &a.out}, st);
  return run_counts(a, c, [&](auto g, auto l, auto p, auto w, auto o) {
    return clarion::bias::grouped_counts_cuda(c.pb, g, l, p, w, o, st);
  });
}

py::tuple grouped_threshold_counts_cuda(const py::object& groups, const py::object& labels,
                                        const py::object& scores, const py::object& thresholds,
                                        const py::object& weights, const py::object& out, i64 n_groups,
                                        i64 n_labels, i64 n_boot, std::uint64_t seed, i64 row_offset,
                                        std::uintptr_t stream) {
  using clarion::bind::device_view;
  ThresholdArgs a{device_view(groups, "groups"),
                  device_view(labels, "labels"),
                  device_view(scores, "scores"),
                  device_view(thresholds, "thresholds"),
                  clarion::bind::device_view_opt(weights, "weights"),
                  device_view(out, "out")};
  const Checked c = check_threshold_counts(a, n_groups, n_labels, n_boot, seed, row_offset);
  void* st = clarion::bind::stream_arg(stream);
  clarion::bind::prepare_device_arrays(
      {&a.groups, &a.labels, &a.scores, &a.thresholds, clarion::bind::opt(a.weights), &a.out}, st);
  return run_threshold_counts(a, c, [&](auto g, auto l, auto s, auto t, auto w, auto o) {
    return clarion::bias::grouped_threshold_counts_cuda(c.pb, g, l, s, t, w, o, st);
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
  d["cuda_fp_flags"] = std::string(CLARION_CUDA_FP_FLAGS);
#else
  d["cuda_compiled"] = false;
  d["cuda_version"] = py::none();
  d["cuda_archs"] = py::list();
  d["cuda_fp_flags"] = py::none();
#endif
  d["cxx_fp_flags"] = std::string(CLARION_CXX_FP_FLAGS);
  d["backends"] = backends;
  d["hardware_threads"] = static_cast<int>(std::thread::hardware_concurrency());
  return d;
}

// The leaves of the shared floating-point sum schedule (sum_schedule.hpp) for n_rows rows and a
// table of `cells` elements: (rows_per_leaf, n_leaves).
py::tuple sum_schedule(i64 n_rows, i64 cells) {
  clarion::bind::size_arg(n_rows, "n_rows");
  clarion::bind::size_arg(cells, "cells");
  const clarion::sched::SumSchedule s = clarion::sched::sum_schedule(n_rows, cells);
  return py::make_tuple(s.rows_per_leaf, s.n_leaves);
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
        "Fill `out` ([R][B][T][G][L][2]) with counts of score >= threshold; returns (error_code, row, "
        "column).");
#ifdef CLARION_WITH_CUDA
  m.def("grouped_counts_cuda", &grouped_counts_cuda, py::arg("groups"), py::arg("labels"), py::arg("preds"),
        py::arg("weights"), py::arg("out"), py::arg("n_groups"), py::arg("n_labels"), py::arg("n_preds"),
        py::arg("n_boot"), py::arg("seed"), py::arg("row_offset"), py::arg("stream"),
        "grouped_counts_cpu on device arrays (objects with __cuda_array_interface__, or their "
        "descriptions); returns (error_code, row, column).");
  m.def("grouped_threshold_counts_cuda", &grouped_threshold_counts_cuda, py::arg("groups"), py::arg("labels"),
        py::arg("scores"), py::arg("thresholds"), py::arg("weights"), py::arg("out"), py::arg("n_groups"),
        py::arg("n_labels"), py::arg("n_boot"), py::arg("seed"), py::arg("row_offset"), py::arg("stream"),
        "grouped_threshold_counts_cpu on device arrays (the thresholds' order is the caller's to check); "
        "returns (error_code, row, column).");
#endif
  m.def("compiled_info", &compiled_info, "What this build of the extension contains.");
  m.def("sum_schedule", &sum_schedule, py::arg("n_rows"), py::arg("cells"),
        "(rows_per_leaf, n_leaves) of the floating-point sum schedule shared by the CPU and CUDA drivers.");
  m.def("cuda_device_count", &cuda_device_count, "Usable CUDA devices now (0 without a driver).");
}
