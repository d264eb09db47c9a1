// Bindings of the grouped count kernels and of the build/device queries.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>

#include "clarion/grouped_counts_drivers.hpp"

namespace py = pybind11;
using clarion::i64;
using clarion::RowError;
using clarion::bias::CountsProblem;

namespace {

enum class Num { i8, i16, i32, i64, f32, f64, other };

Num num_of(const py::dtype& dt) {
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

Num num_of_name(const std::string& name) {
  if (name == "int8") return Num::i8;
  if (name == "int16") return Num::i16;
  if (name == "int32") return Num::i32;
  if (name == "int64") return Num::i64;
  if (name == "float32") return Num::f32;
  if (name == "float64") return Num::f64;
  throw std::invalid_argument("unsupported dtype name '" + name + "'");
}

void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + " must be C-contiguous");
}

void require_rows(const py::array& a, const char* name, i64 n) {
  if (a.ndim() < 1 || a.shape(0) != n)
    throw std::invalid_argument(std::string(name) + " must have " + std::to_string(n) + " rows");
}

template <class F>
auto with_code_type(Num num, F&& f) {
  switch (num) {
    case Num::i8: return f(std::int8_t{});
    case Num::i16: return f(std::int16_t{});
    case Num::i32: return f(std::int32_t{});
    case Num::i64: return f(std::int64_t{});
    default: throw std::invalid_argument("codes must be int8, int16, int32 or int64");
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

CountsProblem make_problem(i64 n_rows, i64 n_batch, i64 n_groups, i64 n_labels, i64 n_preds, i64 n_boot,
                           std::uint64_t seed, i64 row_offset) {
  if (n_rows < 0 || n_batch < 1 || n_groups < 0 || n_labels < 0 || n_preds < 1 || n_boot < 0 || row_offset < 0)
    throw std::invalid_argument("invalid counts problem dimensions");
  CountsProblem pb;
  pb.n_rows = n_rows;
  pb.n_batch = n_batch;
  pb.n_groups = n_groups;
  pb.n_labels = n_labels;
  pb.n_preds = n_preds;
  pb.n_boot = n_boot;
  pb.seed = seed;
  pb.row_offset = row_offset;
  return pb;
}

// ---- CPU ---------------------------------------------------------------------------------------

py::tuple grouped_counts_cpu(const py::array& groups, const py::array& labels, const py::object& preds_obj,
                             const py::object& weights_obj, py::array& out, i64 n_groups, i64 n_labels,
                             i64 n_preds, i64 n_boot, std::uint64_t seed, i64 row_offset, int n_threads) {
  const i64 n = groups.ndim() == 1 ? groups.shape(0) : -1;
  if (n < 0) throw std::invalid_argument("groups must be 1-D");
  require_rows(labels, "labels", n);
  for (auto* a : {&groups, &labels}) require_c_contiguous(*a, a == &groups ? "groups" : "labels");
  const Num code = num_of(groups.dtype());
  if (num_of(labels.dtype()) != code) throw std::invalid_argument("labels must have the dtype of groups");
  py::array preds, weights;
  const bool has_preds = !preds_obj.is_none(), has_weights = !weights_obj.is_none();
  i64 n_batch = 1;
  if (has_preds) {
    preds = preds_obj.cast<py::array>();
    require_rows(preds, "preds", n);
    require_c_contiguous(preds, "preds");
    if (num_of(preds.dtype()) != code) throw std::invalid_argument("preds must have the dtype of groups");
    if (preds.ndim() == 2) n_batch = preds.shape(1);
    else if (preds.ndim() != 1) throw std::invalid_argument("preds must be 1-D or 2-D");
  }
  if (has_weights) {
    weights = weights_obj.cast<py::array>();
    require_rows(weights, "weights", n);
    require_c_contiguous(weights, "weights");
  }
  const CountsProblem pb = make_problem(n, n_batch, n_groups, n_labels, has_preds ? n_preds : 1, n_boot, seed, row_offset);
  require_c_contiguous(out, "out");
  if (out.size() != pb.total_cells()) throw std::invalid_argument("out has the wrong size");
  if (!out.writeable()) throw std::invalid_argument("out must be writeable");
  const Num out_num = num_of(out.dtype());

  return with_code_type(code, [&](auto code_tag) {
    using Code = decltype(code_tag);
    const Code* g = static_cast<const Code*>(groups.data());
    const Code* l = static_cast<const Code*>(labels.data());
    const Code* p = has_preds ? static_cast<const Code*>(preds.data()) : nullptr;
    RowError err;
    if (!has_weights) {
      if (out_num != Num::i64) throw std::invalid_argument("out must be int64 without weights");
      auto* o = static_cast<i64*>(out.mutable_data());
      py::gil_scoped_release release;
      err = clarion::bias::grouped_counts_cpu<Code, float, i64>(pb, g, l, p, nullptr, o, n_threads);
    } else {
      if (out_num != Num::f64) throw std::invalid_argument("out must be float64 with weights");
      auto* o = static_cast<double*>(out.mutable_data());
      err = with_float_type(num_of(weights.dtype()), "weights", [&](auto w_tag) {
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
  const i64 n = groups.ndim() == 1 ? groups.shape(0) : -1;
  if (n < 0) throw std::invalid_argument("groups must be 1-D");
  require_rows(labels, "labels", n);
  require_rows(scores, "scores", n);
  require_c_contiguous(groups, "groups");
  require_c_contiguous(labels, "labels");
  require_c_contiguous(scores, "scores");
  require_c_contiguous(thresholds, "thresholds");
  const Num code = num_of(groups.dtype());
  if (num_of(labels.dtype()) != code) throw std::invalid_argument("labels must have the dtype of groups");
  if (num_of(thresholds.dtype()) != Num::f64 || thresholds.ndim() != 1)
    throw std::invalid_argument("thresholds must be a 1-D float64 array");
  if (scores.ndim() != 1 && scores.ndim() != 2) throw std::invalid_argument("scores must be 1-D or 2-D");
  const i64 n_batch = scores.ndim() == 2 ? scores.shape(1) : 1;
  const i64 T = thresholds.shape(0);
  py::array weights;
  const bool has_weights = !weights_obj.is_none();
  if (has_weights) {
    weights = weights_obj.cast<py::array>();
    require_rows(weights, "weights", n);
    require_c_contiguous(weights, "weights");
  }
  const CountsProblem pb = make_problem(n, n_batch, n_groups, n_labels, T + 1, n_boot, seed, row_offset);
  require_c_contiguous(out, "out");
  if (out.size() != (n_boot > 0 ? n_boot : 1) * n_batch * T * n_groups * n_labels * 2)
    throw std::invalid_argument("out has the wrong size");
  const Num out_num = num_of(out.dtype());
  const double* t = static_cast<const double*>(thresholds.data());

  return with_code_type(code, [&](auto code_tag) {
    using Code = decltype(code_tag);
    const Code* g = static_cast<const Code*>(groups.data());
    const Code* l = static_cast<const Code*>(labels.data());
    return with_float_type(num_of(scores.dtype()), "scores", [&](auto s_tag) {
      using S = decltype(s_tag);
      const S* s = static_cast<const S*>(scores.data());
      RowError err;
      if (!has_weights) {
        if (out_num != Num::i64) throw std::invalid_argument("out must be int64 without weights");
        auto* o = static_cast<i64*>(out.mutable_data());
        py::gil_scoped_release release;
        err = clarion::bias::grouped_threshold_counts_cpu<Code, S, float, i64>(pb, g, l, s, t, nullptr, o, n_threads);
      } else {
        if (out_num != Num::f64) throw std::invalid_argument("out must be float64 with weights");
        auto* o = static_cast<double*>(out.mutable_data());
        err = with_float_type(num_of(weights.dtype()), "weights", [&](auto w_tag) {
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

py::tuple grouped_counts_cuda(std::uintptr_t groups, std::uintptr_t labels, std::uintptr_t preds,
                              std::uintptr_t weights, std::uintptr_t out, const std::string& code_dtype,
                              const std::string& weight_dtype, i64 n_rows, i64 n_batch, i64 n_groups,
                              i64 n_labels, i64 n_preds, i64 n_boot, std::uint64_t seed, i64 row_offset,
                              std::uintptr_t stream) {
  const CountsProblem pb = make_problem(n_rows, n_batch, n_groups, n_labels, preds ? n_preds : 1, n_boot, seed, row_offset);
  void* st = reinterpret_cast<void*>(stream);
  return with_code_type(num_of_name(code_dtype), [&](auto code_tag) {
    using Code = decltype(code_tag);
    RowError err;
    if (!weights) {
      py::gil_scoped_release release;
      err = clarion::bias::grouped_counts_cuda<Code, float, i64>(pb, dptr<Code>(groups), dptr<Code>(labels),
                                                                 preds ? dptr<Code>(preds) : nullptr, nullptr,
                                                                 reinterpret_cast<i64*>(out), st);
    } else {
      err = with_float_type(num_of_name(weight_dtype), "weights", [&](auto w_tag) {
        using W = decltype(w_tag);
        py::gil_scoped_release release;
        return clarion::bias::grouped_counts_cuda<Code, W, double>(pb, dptr<Code>(groups), dptr<Code>(labels),
                                                                   preds ? dptr<Code>(preds) : nullptr,
                                                                   dptr<W>(weights), reinterpret_cast<double*>(out), st);
      });
    }
    return as_tuple(err);
  });
}

py::tuple grouped_threshold_counts_cuda(std::uintptr_t groups, std::uintptr_t labels, std::uintptr_t scores,
                                        std::uintptr_t thresholds, std::uintptr_t weights, std::uintptr_t out,
                                        const std::string& code_dtype, const std::string& score_dtype,
                                        const std::string& weight_dtype, i64 n_rows, i64 n_batch, i64 n_thresholds,
                                        i64 n_groups, i64 n_labels, i64 n_boot, std::uint64_t seed, i64 row_offset,
                                        std::uintptr_t stream) {
  const CountsProblem pb = make_problem(n_rows, n_batch, n_groups, n_labels, n_thresholds + 1, n_boot, seed, row_offset);
  void* st = reinterpret_cast<void*>(stream);
  const double* t = dptr<double>(thresholds);
  return with_code_type(num_of_name(code_dtype), [&](auto code_tag) {
    using Code = decltype(code_tag);
    return with_float_type(num_of_name(score_dtype), "scores", [&](auto s_tag) {
      using S = decltype(s_tag);
      RowError err;
      if (!weights) {
        py::gil_scoped_release release;
        err = clarion::bias::grouped_threshold_counts_cuda<Code, S, float, i64>(
            pb, dptr<Code>(groups), dptr<Code>(labels), dptr<S>(scores), t, nullptr, reinterpret_cast<i64*>(out), st);
      } else {
        err = with_float_type(num_of_name(weight_dtype), "weights", [&](auto w_tag) {
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
        py::arg("weights"), py::arg("out"), py::arg("code_dtype"), py::arg("weight_dtype"), py::arg("n_rows"),
        py::arg("n_batch"), py::arg("n_groups"), py::arg("n_labels"), py::arg("n_preds"), py::arg("n_boot"),
        py::arg("seed"), py::arg("row_offset"), py::arg("stream"),
        "CUDA grouped counts on device pointers; returns (error_code, row, column).");
  m.def("grouped_threshold_counts_cuda", &grouped_threshold_counts_cuda, py::arg("groups"), py::arg("labels"),
        py::arg("scores"), py::arg("thresholds"), py::arg("weights"), py::arg("out"), py::arg("code_dtype"),
        py::arg("score_dtype"), py::arg("weight_dtype"), py::arg("n_rows"), py::arg("n_batch"),
        py::arg("n_thresholds"), py::arg("n_groups"), py::arg("n_labels"), py::arg("n_boot"), py::arg("seed"),
        py::arg("row_offset"), py::arg("stream"),
        "CUDA threshold counts on device pointers; returns (error_code, row, column).");
#endif
  m.def("compiled_info", &compiled_info, "What this build of the extension contains.");
  m.def("cuda_device_count", &cuda_device_count, "Usable CUDA devices now (0 without a driver).");
}
