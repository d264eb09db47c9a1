// Bindings of the slot counts (clarion/encode.hpp): argument checks and conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "checks.hpp"
#include "clarion/encode.hpp"
#include "clarion/slot_stream.hpp"

namespace py = pybind11;
using clarion::i64;
using clarion::RowError;
using clarion::bias::SlotProblem;
using clarion::bias::StreamBatch;
using clarion::bias::StreamColumn;
using clarion::bias::StreamPlan;

namespace {

// A light view of a host array (the bindings sit on a per-batch path: checks.hpp's ArrayView
// formats the dtype name of every array, which costs more than a small batch's count).
struct Light {
  const void* data = nullptr;
  int ndim = 0;
  i64 n = 0;
  char kind = '?';
  i64 itemsize = 0;
  bool ok_layout = false;  // C-contiguous, aligned, native byte order
  bool writeable = false;
};

Light light(const py::array& a) {
  Light v;
  v.data = a.data();
  v.ndim = static_cast<int>(a.ndim());
  v.n = v.ndim >= 1 ? static_cast<i64>(a.shape(0)) : 0;
  const py::dtype dt = a.dtype();
  v.kind = dt.kind();
  v.itemsize = static_cast<i64>(dt.itemsize());
  const int flags = a.flags();
  v.ok_layout = (flags & py::array::c_style) != 0 && (flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0 &&
                clarion::bind::native_byte_order(dt.byteorder());
  v.writeable = a.writeable();
  return v;
}

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Fills the problem's columns from the Python lists; `mapped`: the lookup tables are required.
SlotProblem slot_problem(const py::list& codes, const std::vector<i64>& offsets,
                         const std::vector<i64>& sizes, const py::list& luts,
                         const std::vector<i64>& map_strides, bool mapped, std::vector<py::array>& keep) {
  const auto k = static_cast<i64>(codes.size());
  CLARION_CHECK(k >= 1 && k <= clarion::bias::kMaxCodeColumns,
                "codes must list 1 to 4 code columns, got " + std::to_string(k));
  CLARION_CHECK(static_cast<i64>(offsets.size()) == k && static_cast<i64>(sizes.size()) == k,
                "offsets and sizes must have one entry per code column");
  SlotProblem pb;
  pb.n_cols = static_cast<int>(k);
  i64 stride = 1;
  for (i64 j = k - 1; j >= 0; --j) {
    CLARION_CHECK(sizes[j] >= 1, "sizes[" + std::to_string(j) + "] must be >= 1");
    pb.raw_stride[j] = stride;
    stride = clarion::bind::mul(stride, sizes[j], "the slot table");
  }
  CLARION_CHECK(stride <= i64{1} << 30, "the slot table (prod(sizes)) must have at most 2**30 cells");
  for (i64 j = 0; j < k; ++j) {
    keep.push_back(codes[j].cast<py::array>());
    const py::array& a = keep.back();
    const Light v = light(a);
    const std::string name = "codes[" + std::to_string(j) + "]";
    CLARION_CHECK(v.ndim == 1, name + " must be 1-D");
    CLARION_CHECK(v.ok_layout && v.kind == 'i' &&
                      (v.itemsize == 1 || v.itemsize == 2 || v.itemsize == 4 || v.itemsize == 8),
                  name + " must hold C-contiguous int8/16/32/64 codes in native byte order, got dtype " +
                      dtype_name(a));
    if (j == 0) pb.n_rows = v.n;
    CLARION_CHECK(v.n == pb.n_rows, name + " has " + std::to_string(v.n) + " rows but codes[0] has " +
                                        std::to_string(pb.n_rows));
    CLARION_CHECK(offsets[j] > -(i64{1} << 62) && offsets[j] < (i64{1} << 62),
                  name + ": offset out of range");
    pb.codes[j] = v.data;
    pb.itemsize[j] = static_cast<int>(v.itemsize);
    pb.offset[j] = offsets[j];
    pb.size[j] = sizes[j];
  }
  if (!mapped) return pb;
  CLARION_CHECK(static_cast<i64>(luts.size()) == k && static_cast<i64>(map_strides.size()) == k,
                "luts and map_strides must have one entry per code column");
  for (i64 j = 0; j < k; ++j) {
    keep.push_back(luts[j].cast<py::array>());
    const py::array& a = keep.back();
    const Light v = light(a);
    const std::string name = "luts[" + std::to_string(j) + "]";
    CLARION_CHECK(v.ndim == 1 && v.n == sizes[j], name + " must be 1-D with sizes[j] entries");
    CLARION_CHECK(v.ok_layout && v.kind == 'i' && v.itemsize == 4,
                  name + " must be C-contiguous int32, got dtype " + dtype_name(a));
    pb.lut[j] = static_cast<const std::int32_t*>(v.data);
    pb.map_stride[j] = map_strides[j];
  }
  return pb;
}

py::tuple to_tuple(const RowError& e) { return py::make_tuple(e.what, e.row, e.col); }

// One slot-count pass of `count` (slot_counts_cpu, or slot_counts_team: the persistent team of
// slot_stream.hpp that an Accumulator's one-pass batches use) into `raw`, without the GIL.
template <class Count>
py::tuple slot_pass(const py::list& codes, const std::vector<i64>& offsets, const std::vector<i64>& sizes,
                    const py::array& raw, int n_threads, Count count) {
  std::vector<py::array> keep;
  keep.reserve(8);
  const SlotProblem pb = slot_problem(codes, offsets, sizes, py::list(), {}, false, keep);
  const Light out = light(raw);
  CLARION_CHECK(out.ok_layout && out.writeable && out.kind == 'i' && out.itemsize == 8 &&
                    static_cast<i64>(raw.size()) == pb.raw_cells(),
                "raw must be a writeable C-contiguous int64 array with prod(sizes) elements");
  n_threads = clarion::bind::threads_arg(n_threads);
  RowError e;
  {
    py::gil_scoped_release release;
    e = count(pb, static_cast<std::int64_t*>(const_cast<void*>(out.data)), n_threads);
  }
  return to_tuple(e);
}

py::tuple slot_counts_cpu(const py::list& codes, const std::vector<i64>& offsets,
                          const std::vector<i64>& sizes, const py::array& raw, int n_threads) {
  return slot_pass(codes, offsets, sizes, raw, n_threads, [](const SlotProblem& pb, std::int64_t* o, int t) {
    return clarion::bias::slot_counts_cpu(pb, o, t);
  });
}

py::tuple slot_counts_team(const py::list& codes, const std::vector<i64>& offsets,
                           const std::vector<i64>& sizes, const py::array& raw, int n_threads) {
  return slot_pass(codes, offsets, sizes, raw, n_threads, [](const SlotProblem& pb, std::int64_t* o, int t) {
    return clarion::bias::slot_counts_team(pb, o, t);
  });
}

py::tuple slot_weighted_counts_cpu(const py::list& codes, const std::vector<i64>& offsets,
                                   const std::vector<i64>& sizes, const py::list& luts,
                                   const std::vector<i64>& map_strides, const py::array& weights,
                                   const py::array& mapped, const py::array& raw, int n_threads) {
  std::vector<py::array> keep;
  keep.reserve(12);
  const SlotProblem pb = slot_problem(codes, offsets, sizes, luts, map_strides, true, keep);
  const Light w = light(weights);
  CLARION_CHECK(w.ndim == 1 && w.n == pb.n_rows && w.ok_layout && w.kind == 'f' && w.itemsize == 8,
                "weights must be C-contiguous float64 with one entry per row");
  const Light m = light(mapped);
  const auto m_size = static_cast<i64>(mapped.size());
  CLARION_CHECK(m.ok_layout && m.writeable && m.kind == 'f' && m.itemsize == 8,
                "mapped must be a writeable C-contiguous float64 array");
  const Light out = light(raw);
  CLARION_CHECK(out.ok_layout && out.writeable && out.kind == 'i' && out.itemsize == 8 &&
                    static_cast<i64>(raw.size()) == pb.raw_cells(),
                "raw must be a writeable C-contiguous int64 array with prod(sizes) elements");
  // every lookup value must address a cell of `mapped`
  i64 top = 0;
  for (int j = 0; j < pb.n_cols; ++j) {
    i64 hi = 0;
    for (i64 s = 0; s < pb.size[j]; ++s) {
      CLARION_CHECK(pb.lut[j][s] >= 0, "luts[" + std::to_string(j) + "] must be >= 0");
      hi = std::max<i64>(hi, pb.lut[j][s]);
    }
    CLARION_CHECK(pb.map_stride[j] >= 0, "map_strides must be >= 0");
    top = clarion::bind::add(top, clarion::bind::mul(hi, pb.map_stride[j], "mapped"), "mapped");
  }
  CLARION_CHECK(top < m_size && m_size <= i64{1} << 30, "luts and map_strides address cells beyond mapped");
  n_threads = clarion::bind::threads_arg(n_threads);
  RowError e;
  {
    py::gil_scoped_release release;
    e = clarion::bias::slot_weighted_counts_cpu(
        pb, static_cast<const double*>(w.data), m_size, static_cast<double*>(const_cast<void*>(m.data)),
        static_cast<std::int64_t*>(const_cast<void*>(out.data)), n_threads);
  }
  return to_tuple(e);
}

template <class T>
py::tuple int_range_t(const void* data, i64 n) {
  T lo{}, hi{};
  {
    py::gil_scoped_release release;
    clarion::bias::int_range_cpu<T>(static_cast<const T*>(data), n, &lo, &hi);
  }
  return py::make_tuple(static_cast<i64>(lo), static_cast<i64>(hi));
}

py::tuple int_range_cpu(const py::array& x) {
  const Light v = light(x);
  CLARION_CHECK(v.ndim == 1 && v.n >= 1 && v.ok_layout && v.kind == 'i',
                "x must be a non-empty 1-D C-contiguous signed integer array, got dtype " + dtype_name(x));
  switch (v.itemsize) {
    case 1: return int_range_t<std::int8_t>(v.data, v.n);
    case 2: return int_range_t<std::int16_t>(v.data, v.n);
    case 4: return int_range_t<std::int32_t>(v.data, v.n);
    default: return int_range_t<std::int64_t>(v.data, v.n);
  }
}

// The compiled steady state of an Accumulator's stream (clarion/slot_stream.hpp). It holds the
// stream's plan, the patterns accepted so far, and references to the state it adds into: the
// state object (its n_rows), its lock (a threading.RLock, the one every other change of the state
// takes) and, per facet, the count dictionary and the table array it must still hold.
class SlotStream {
 public:
  SlotStream(int n_facets, bool has_group, bool has_pred, bool weighted, i64 K, const std::vector<i64>& V,
             const std::vector<int>& itemsizes, const std::vector<bool>& booleans,
             const std::vector<i64>& offsets, const std::vector<i64>& sizes, const py::list& codes,
             const py::list& wmaps, const std::vector<bool>& facet_slots, py::object lock, py::object state,
             const py::list& counts, py::object kind, const py::list& tables, const py::list& vocabs,
             const std::vector<i64>& vocab_sizes, int sightings, i64 sighting_rows)
      : lock_(std::move(lock)),
        state_(std::move(state)),
        kind_(std::move(kind)),
        sightings_(sightings),
        sighting_rows_(sighting_rows) {
    acquire_ = lock_.attr("acquire");
    release_ = lock_.attr("release");
    CLARION_CHECK(n_facets >= 1, "n_facets must be >= 1");
    CLARION_CHECK(sightings >= 1 && sighting_rows >= 1, "sightings and sighting_rows must be >= 1");
    StreamPlan& pl = plan_;
    pl.serial = clarion::bias::next_stream_serial();
    pl.n_facets = n_facets;
    pl.has_group = has_group;
    pl.has_pred = has_pred;
    pl.weighted = weighted;
    pl.K = K;
    pl.P = has_pred ? 2 : 1;
    const size_t ncols = static_cast<size_t>(n_facets) + (has_group ? 1 : 0) + 1 + (has_pred ? 1 : 0);
    CLARION_CHECK(itemsizes.size() == ncols && booleans.size() == ncols && offsets.size() == ncols &&
                      sizes.size() == ncols && codes.size() == ncols && wmaps.size() == ncols,
                  "one itemsize, boolean flag, offset, size, code table and weighted map per column");
    CLARION_CHECK(V.size() == static_cast<size_t>(n_facets) && facet_slots.size() == V.size() &&
                      counts.size() == V.size() && tables.size() == V.size(),
                  "one V, facet_slots flag, counts dictionary and table per facet");
    CLARION_CHECK(K >= 1 && K <= (i64{1} << 20), "K out of range");
    pl.V = V;
    pl.facet_slots = facet_slots;
    pl.cols.resize(ncols);
    for (size_t j = 0; j < ncols; ++j) {
      StreamColumn& c = pl.cols[j];
      const std::string name = "column " + std::to_string(j);
      CLARION_CHECK(itemsizes[j] == 1 || itemsizes[j] == 2 || itemsizes[j] == 4 || itemsizes[j] == 8,
                    name + ": itemsize must be 1, 2, 4 or 8");
      CLARION_CHECK(!booleans[j] || itemsizes[j] == 1, name + ": a boolean column has itemsize 1");
      CLARION_CHECK(sizes[j] >= 1 && sizes[j] <= (i64{1} << 16), name + ": size must be in [1, 65536]");
      CLARION_CHECK(offsets[j] > -(i64{1} << 62) && offsets[j] < (i64{1} << 62),
                    name + ": offset out of range");
      c.itemsize = itemsizes[j];
      c.boolean = booleans[j];
      c.offset = offsets[j];
      c.size = sizes[j];
      // the axis the column's codes index: V (facet), K (group), 2 (label, prediction)
      const i64 axis = j < static_cast<size_t>(n_facets)
                           ? V[j]
                           : (has_group && j == static_cast<size_t>(n_facets) ? K : 2);
      c.code = int32_table(codes[j], c.size, -1, axis, name + " codes");
      if (weighted) {
        const bool slot_axis = (j < static_cast<size_t>(n_facets) && facet_slots[j]) ||
                               (has_group && j == static_cast<size_t>(n_facets));
        c.wmap = int32_table(wmaps[j], c.size, 0, slot_axis ? c.size : 2, name + " weighted map");
      }
    }
    CLARION_CHECK(vocabs.size() == vocab_sizes.size(), "one size per vocabulary");
    for (size_t v = 0; v < vocabs.size(); ++v) {
      CLARION_CHECK(py::isinstance<py::list>(vocabs[v]), "vocabs must be lists");
      vocabs_.push_back(vocabs[v].cast<py::list>());
      vocab_sizes_.push_back(vocab_sizes[v]);
    }
    pl.mapped_cells.resize(V.size());
    for (size_t f = 0; f < V.size(); ++f) {
      CLARION_CHECK(V[f] >= 1 && V[f] <= (i64{1} << 20), "V out of range");
      const i64 Fm = facet_slots[f] ? pl.cols[f].size : 2;
      const i64 Km = has_group ? pl.cols[static_cast<size_t>(n_facets)].size : 1;
      pl.mapped_cells[f] = Fm * Km * 2 * pl.P;
      CLARION_CHECK(pl.table_cells(static_cast<int>(f)) <= (i64{1} << 24), "the count table is too large");
      counts_.push_back(counts[f].cast<py::dict>());
      tables_.push_back(tables[f].cast<py::array>());
      const Light t = light(tables_.back());
      CLARION_CHECK(t.ok_layout && t.writeable && t.itemsize == 8 && t.kind == (weighted ? 'f' : 'i') &&
                        static_cast<i64>(tables_.back().size()) == pl.table_cells(static_cast<int>(f)),
                    "tables must be writeable C-contiguous " + std::string(weighted ? "float64" : "int64") +
                        " arrays of V * K * 2 * P cells");
    }
  }

  // Counts a batch and, when its pattern was accepted before and the state still holds the
  // stream's tables, adds it. Returns 0 (added), the batch's pattern (bytes: not accepted yet;
  // `note` it once the general path has counted the batch), 2 (a row outside its slots, or a bad
  // weight), 3 (the state's tables were replaced: a vocabulary grew), 4 (the arrays do not fit
  // the plan), 5 (a value without a code). Nothing changes unless 0.
  py::object add(const py::list& arrays, const py::object& weights, int n_threads) {
    thread_local StreamBatch b;  // (scratch: keeps its capacity from batch to batch)
    i64 n = 0;
    const int st = count(arrays, weights, n_threads, b, n);
    if (st != 0) return py::int_(st);
    return finish(b, n, false);
  }

  // The steady state straight from a pandas DataFrame (issue 21, session 17): the stream's columns
  // read from the frame's blocks here (no Python: the positions of the columns in the frame's
  // column index and the categorical dtypes the stream accepts come from `prime_frame`, which the
  // Python fetch calls once it has read a frame itself), then counted and added as `add` does.
  // Returns n > 0 (the batch's rows, added), the pattern (bytes: not accepted yet), 0 (declined:
  // a row outside its slots, the state's tables replaced, a value without a code), or -1 (this
  // frame is not one the fetch knows: another column index, another dtype, an unexpected block
  // layout or pandas internals; the caller then reads it in Python). Nothing changes unless n > 0.
  // An unweighted stream only.
  py::object add_frame(const py::handle& df, int n_threads) {
    thread_local std::vector<const void*> ptrs;
    thread_local std::vector<py::object> keep;  // (the blocks' arrays, alive during the pass)
    i64 n = 0;
    const bool ok = !plan_.weighted && frame_arrays(df, ptrs, n, keep);
    if (!ok) {
      keep.clear();
      return py::int_(-1);
    }
    thread_local StreamBatch b;
    RowError e;
    {
      py::gil_scoped_release release;
      e = clarion::bias::slot_stream_count(plan_, ptrs.data(), nullptr, n, n_threads < 0 ? 0 : n_threads, b);
    }
    keep.clear();
    if (e.what != 0 || !b.known) return py::int_(0);
    return finish(b, n, true);
  }

  // What add_frame needs to read a frame's columns: the frame (its column index's identity), the
  // stream's columns' positions in it, per column the categorical dtype accepted (None: a numpy
  // column) and pandas.Categorical (the type a categorical column's block holds).
  void prime_frame(const py::handle& df, const std::vector<i64>& pos, const py::list& dtypes,
                   const py::object& cat_type) {
    frame_cols_ = py::object();
    frame_id_ = py::object();
    const size_t ncols = plan_.cols.size();
    CLARION_CHECK(pos.size() == ncols && dtypes.size() == ncols, "one position and one dtype per column");
    py::object mgr = py::reinterpret_steal<py::object>(PyObject_GetAttr(df.ptr(), str_mgr()));
    if (!mgr) throw py::error_already_set();
    py::object axes = mgr.attr("axes");
    CLARION_CHECK(PyList_Check(axes.ptr()) && PyList_GET_SIZE(axes.ptr()) >= 1, "the frame has no axes");
    py::object cols = py::reinterpret_borrow<py::object>(PyList_GET_ITEM(axes.ptr(), 0));
    frame_pos_ = pos;
    frame_dtypes_.assign(ncols, py::object());
    frame_cat_.assign(ncols, 0);
    for (size_t j = 0; j < ncols; ++j) {
      CLARION_CHECK(pos[j] >= 0, "positions must be >= 0");
      if (!dtypes[j].is_none()) {
        frame_cat_[j] = 1;
        frame_dtypes_[j] = py::reinterpret_borrow<py::object>(dtypes[j]);
      }
    }
    cat_type_ = cat_type;
    py::object id = py::reinterpret_steal<py::object>(PyObject_GetAttr(cols.ptr(), str_id()));
    if (!id) PyErr_Clear();
    frame_id_ = id && !id.is_none() ? id : py::object();
    frame_cols_ = cols;
  }

  // Notes a pattern `add` returned, once the general path has counted its batch of n_rows rows
  // (0: noted; 3: the state's tables were replaced; 4: not a pattern of this stream).
  int note(const py::bytes& key, i64 n_rows) {
    std::string k = key;
    if (k.size() != key_size()) return 4;
    if (!fresh()) return 3;
    sight(k, n_rows);
    return 0;
  }

  // Notes the pattern of a batch the general path has just counted (same statuses as add; 0:
  // noted); a pattern noted in `sightings` batches or `sighting_rows` rows is accepted. Adds nothing.
  int allow(const py::list& arrays, const py::object& weights, int n_threads) {
    thread_local StreamBatch b;
    i64 n = 0;
    const int st = count(arrays, weights, n_threads, b, n);
    if (st != 0) return st;
    if (!fresh()) return 3;
    sight(b.key, n);
    return 0;
  }

  // Notes the pattern of a batch of n_rows rows the one-pass path has just counted, from its slot
  // tables (one int64 array per facet, [facet][group?][label][prediction?] over this stream's
  // slots: the one-pass path's tables when it read the batch through the stream's slot maps), with
  // no second pass (statuses as note; 5: a slot that occurs has no code). Adds nothing.
  int note_tables(const py::list& raws, i64 n_rows) {
    const auto F = static_cast<size_t>(plan_.n_facets);
    if (raws.size() != F || n_rows < 1) return 4;
    std::vector<py::array> keep;
    keep.reserve(F);
    std::vector<const std::int64_t*> ptrs(F, nullptr);
    for (size_t f = 0; f < F; ++f) {
      if (!py::isinstance<py::array>(raws[f])) return 4;
      keep.push_back(raws[f].cast<py::array>());
      const Light v = light(keep.back());
      i64 cells = plan_.cols[f].size;
      if (plan_.has_group) cells *= plan_.cols[static_cast<size_t>(plan_.group_col())].size;
      cells *= plan_.cols[static_cast<size_t>(plan_.label_col())].size;
      if (plan_.has_pred) cells *= plan_.cols[static_cast<size_t>(plan_.pred_col())].size;
      if (!v.ok_layout || v.kind != 'i' || v.itemsize != 8 || static_cast<i64>(keep.back().size()) != cells)
        return 4;
      ptrs[f] = static_cast<const std::int64_t*>(v.data);
    }
    thread_local StreamBatch b;
    clarion::bias::slot_stream_pattern(plan_, ptrs.data(), b);
    if (!b.known) return 5;
    if (!fresh()) return 3;
    sight(b.key, n_rows);
    return 0;
  }

  // Takes the accepted patterns of another stream with the same slot maps.
  void copy_patterns(const SlotStream& other) {
    if (&other == this) return;
    std::scoped_lock g(mu_, other.mu_);
    for (const auto& [k, seen] : other.patterns_) {
      if (k.size() != key_size()) continue;
      Seen& mine = patterns_[k];
      mine.batches = std::max(mine.batches, seen.batches);
      mine.rows = std::max(mine.rows, seen.rows);
    }
  }

  // Patterns accepted (counted by the general path in `sightings` batches or `sighting_rows` rows).
  size_t n_patterns() const {
    std::lock_guard<std::mutex> g(mu_);
    size_t k = 0;
    for (const auto& p : patterns_) k += accepted(p.second) ? 1 : 0;
    return k;
  }

  // Whether the state still holds the stream's tables and its vocabularies the stream's sizes (a
  // table replaced, or a value added by a batch that then failed: the next addition pads).
  bool fresh() const {
    for (size_t f = 0; f < tables_.size(); ++f) {
      PyObject* cur = PyDict_GetItem(counts_[f].ptr(), kind_.ptr());  // borrowed
      if (cur != tables_[f].ptr()) return false;
    }
    for (size_t v = 0; v < vocabs_.size(); ++v)
      if (static_cast<i64>(PyList_GET_SIZE(vocabs_[v].ptr())) != vocab_sizes_[v]) return false;
    return true;
  }

 private:
  // at most 4096 patterns and 4 MiB of keys (a key holds a byte per slot of every column)
  static constexpr size_t kMaxPatterns = 4096;
  static constexpr size_t kMaxPatternBytes = size_t{4} << 20;

  size_t key_size() const {
    size_t s = 0;
    for (const auto& c : plan_.cols) s += static_cast<size_t>(c.size);
    return s;
  }

  static std::vector<std::int32_t> int32_table(const py::handle& h, i64 size, std::int32_t lo, i64 axis,
                                               const std::string& name) {
    const auto a = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>::ensure(h);
    CLARION_CHECK(a && a.ndim() == 1 && static_cast<i64>(a.shape(0)) == size,
                  name + " must be a 1-D int32 array of `size` entries");
    std::vector<std::int32_t> v(a.data(), a.data() + size);
    for (const std::int32_t x : v) CLARION_CHECK(x >= lo && x < axis, name + ": an entry is out of range");
    return v;
  }

  // After a batch was counted into b (its pattern known): adds it when the pattern was accepted
  // and the state still holds the stream's tables. Returns (rows_on_success ? n : 0) when added, the
  // pattern (bytes) when not accepted yet, 3 (or 0 with rows_on_success) when the tables were
  // replaced.
  py::object finish(const StreamBatch& b, i64 n, bool rows_on_success) {
    {
      std::lock_guard<std::mutex> g(mu_);
      const auto it = patterns_.find(b.key);
      if (it == patterns_.end() || !accepted(it->second)) return py::bytes(b.key);
    }
    call_no_args(acquire_);
    bool added = false;
    try {
      if (fresh()) {
        for (size_t f = 0; f < tables_.size(); ++f) {
          void* data = tables_[f].mutable_data();
          if (plan_.weighted) {
            auto* t = static_cast<double*>(data);
            const auto& w = b.wtable[f];
            for (size_t c = 0; c < w.size(); ++c) t[c] += w[c];
          } else {
            auto* t = static_cast<std::int64_t*>(data);
            const auto& cells = b.cells[f];
            for (size_t c = 0; c + 1 < cells.size(); c += 2) t[cells[c]] += cells[c + 1];
          }
        }
        const py::object cur =
            py::reinterpret_steal<py::object>(PyObject_GetAttr(state_.ptr(), str_n_rows()));
        if (!cur) throw py::error_already_set();
        const py::object next = py::int_(cur.cast<i64>() + n);
        if (PyObject_SetAttr(state_.ptr(), str_n_rows(), next.ptr()) != 0) throw py::error_already_set();
        added = true;
      }
    } catch (...) {
      call_no_args(release_);
      throw;
    }
    call_no_args(release_);
    if (rows_on_success) return py::int_(added ? n : 0);
    return py::int_(added ? 0 : 3);
  }

  // f() through the C API (the state lock's bound acquire / release, once a batch: pybind11's
  // call builds an argument tuple and a wrapper around the result, ~0.1 us each)
  static void call_no_args(const py::object& f) {
    PyObject* r = PyObject_CallNoArgs(f.ptr());
    if (r == nullptr) throw py::error_already_set();
    Py_DECREF(r);
  }

  static PyObject* interned(const char* s) {
    PyObject* o = PyUnicode_InternFromString(s);  // (immortal once interned: kept for the process)
    if (o == nullptr) throw py::error_already_set();
    return o;
  }
  static PyObject* str_mgr() {
    static PyObject* const s = interned("_mgr");
    return s;
  }
  static PyObject* str_id() {
    static PyObject* const s = interned("_id");
    return s;
  }
  static PyObject* str_n_rows() {
    static PyObject* const s = interned("n_rows");
    return s;
  }

  // a new reference to obj.name, or null (the error cleared)
  static py::object attr_or_null(PyObject* obj, PyObject* name) {
    PyObject* r = PyObject_GetAttr(obj, name);
    if (r == nullptr) PyErr_Clear();
    return py::reinterpret_steal<py::object>(r);
  }

  // A 1-D intp array's data (blknos, blklocs), or null.
  static const i64* intp_data(const py::object& a, i64& len) {
    if (!a || !py::isinstance<py::array>(a)) return nullptr;
    const Light v = light(py::reinterpret_borrow<py::array>(a));
    if (v.ndim != 1 || !v.ok_layout || v.kind != 'i' || v.itemsize != 8) return nullptr;
    len = v.n;
    return static_cast<const i64*>(v.data);
  }

  // The stream's columns from a DataFrame's blocks (see add_frame); false: read it in Python.
  bool frame_arrays(const py::handle& df, std::vector<const void*>& ptrs, i64& n,
                    std::vector<py::object>& keep) {
    if (!frame_cols_) return false;
    static PyObject* const s_axes = interned("axes");
    static PyObject* const s_blocks = interned("blocks");
    static PyObject* const s_blknos_ = interned("_blknos");
    static PyObject* const s_blklocs_ = interned("_blklocs");
    static PyObject* const s_blknos = interned("blknos");
    static PyObject* const s_blklocs = interned("blklocs");
    static PyObject* const s_values = interned("values");
    static PyObject* const s_dtype_ = interned("_dtype");
    static PyObject* const s_ndarray_ = interned("_ndarray");
    const py::object mgr = attr_or_null(df.ptr(), str_mgr());
    if (!mgr) return false;
    const py::object axes = attr_or_null(mgr.ptr(), s_axes);
    if (!axes || !PyList_Check(axes.ptr()) || PyList_GET_SIZE(axes.ptr()) < 1) return false;
    PyObject* cols = PyList_GET_ITEM(axes.ptr(), 0);
    if (cols != frame_cols_.ptr()) {  // a frame iloc cut from the same frame shares its index's _id
      if (!frame_id_) return false;
      const py::object id = attr_or_null(cols, str_id());
      if (!id || id.ptr() != frame_id_.ptr()) return false;
    }
    const py::object blocks = attr_or_null(mgr.ptr(), s_blocks);
    if (!blocks || !PyTuple_Check(blocks.ptr())) return false;
    py::object nos = attr_or_null(mgr.ptr(), s_blknos_);
    if (!nos || nos.is_none()) nos = attr_or_null(mgr.ptr(), s_blknos);  // (built on first use)
    py::object locs = attr_or_null(mgr.ptr(), s_blklocs_);
    if (!locs || locs.is_none()) locs = attr_or_null(mgr.ptr(), s_blklocs);
    i64 n_nos = 0, n_locs = 0;
    const i64* blknos = intp_data(nos, n_nos);
    const i64* blklocs = intp_data(locs, n_locs);
    if (blknos == nullptr || blklocs == nullptr || n_nos != n_locs) return false;
    const size_t ncols = plan_.cols.size();
    const auto n_blocks = static_cast<i64>(PyTuple_GET_SIZE(blocks.ptr()));
    ptrs.assign(ncols, nullptr);
    keep.clear();
    n = -1;
    for (size_t j = 0; j < ncols; ++j) {
      const i64 p = frame_pos_[j];
      if (p >= n_nos) return false;
      const i64 bn = blknos[p], bl = blklocs[p];
      if (bn < 0 || bn >= n_blocks) return false;
      py::object values = attr_or_null(PyTuple_GET_ITEM(blocks.ptr(), bn), s_values);
      if (!values) return false;
      const StreamColumn& c = plan_.cols[j];
      const char kind = c.boolean ? 'b' : 'i';
      i64 rows = 0;
      if (frame_cat_[j] != 0) {
        if (Py_TYPE(values.ptr()) != reinterpret_cast<PyTypeObject*>(cat_type_.ptr())) return false;
        const py::object dt = attr_or_null(values.ptr(), s_dtype_);
        if (!dt || dt.ptr() != frame_dtypes_[j].ptr()) return false;
        py::object codes = attr_or_null(values.ptr(), s_ndarray_);
        if (!codes || !py::isinstance<py::array>(codes)) return false;
        const Light v = light(py::reinterpret_borrow<py::array>(codes));
        if (v.ndim != 1 || !v.ok_layout || v.kind != kind || v.itemsize != c.itemsize) return false;
        ptrs[j] = v.data;
        rows = v.n;
        keep.push_back(std::move(codes));
      } else {
        if (!py::isinstance<py::array>(values)) return false;
        const auto a = py::reinterpret_borrow<py::array>(values);
        const Light v = light(a);  // (a block's values: [columns of the block, rows])
        if (v.kind != kind || v.itemsize != c.itemsize) return false;
        if (v.ndim == 2) {
          if (bl < 0 || bl >= v.n || a.strides(1) != v.itemsize) return false;
          const auto* base = static_cast<const char*>(a.data()) + bl * static_cast<i64>(a.strides(0));
          if (reinterpret_cast<std::uintptr_t>(base) % static_cast<std::uintptr_t>(v.itemsize) != 0 ||
              !clarion::bind::native_byte_order(a.dtype().byteorder()))
            return false;
          ptrs[j] = base;
          rows = static_cast<i64>(a.shape(1));
        } else {
          if (v.ndim != 1 || bl != 0 || !v.ok_layout) return false;
          ptrs[j] = v.data;
          rows = v.n;
        }
        keep.push_back(std::move(values));
      }
      if (n < 0) n = rows;
      if (rows != n) return false;
    }
    return n > 0;
  }

  int count(const py::list& arrays, const py::object& weights, int n_threads, StreamBatch& b, i64& n) {
    const size_t ncols = plan_.cols.size();
    CLARION_CHECK(arrays.size() == ncols, "arrays must list one array per column of the stream");
    std::vector<py::array> keep;
    keep.reserve(ncols + 1);
    std::vector<const void*> ptrs(ncols, nullptr);
    n = -1;
    for (size_t j = 0; j < ncols; ++j) {
      if (!py::isinstance<py::array>(arrays[j])) return 4;
      keep.push_back(arrays[j].cast<py::array>());
      const Light v = light(keep.back());
      const StreamColumn& c = plan_.cols[j];
      if (v.ndim != 1 || !v.ok_layout || v.itemsize != c.itemsize || v.kind != (c.boolean ? 'b' : 'i'))
        return 4;
      if (n < 0) n = v.n;
      if (v.n != n) return 4;
      ptrs[j] = v.data;
    }
    const double* w = nullptr;
    if (plan_.weighted) {
      if (!py::isinstance<py::array>(weights)) return 4;
      keep.push_back(weights.cast<py::array>());
      const Light v = light(keep.back());
      if (v.ndim != 1 || !v.ok_layout || v.kind != 'f' || v.itemsize != 8 || v.n != n) return 4;
      w = static_cast<const double*>(v.data);
    }
    if (n <= 0) return 4;
    RowError e;
    {
      py::gil_scoped_release release;
      e = clarion::bias::slot_stream_count(plan_, ptrs.data(), w, n, n_threads < 0 ? 0 : n_threads, b);
    }
    if (e.what != 0) return 2;
    return b.known ? 0 : 5;
  }

  StreamPlan plan_;
  py::object lock_, state_, kind_, acquire_, release_;
  // add_frame's fetch (prime_frame; read and written with the GIL held)
  py::object frame_cols_, frame_id_, cat_type_;
  std::vector<i64> frame_pos_;
  std::vector<py::object> frame_dtypes_;
  std::vector<char> frame_cat_;
  int sightings_ = 1;
  i64 sighting_rows_ = 1;
  std::vector<py::dict> counts_;
  std::vector<py::array> tables_;
  std::vector<py::list> vocabs_;  // the values lists of the vocabularies the codes index
  std::vector<i64> vocab_sizes_;
  mutable std::mutex mu_;
  struct Seen {
    int batches = 0;  // batches with the pattern the general path counted
    i64 rows = 0;     // and their rows
  };
  bool accepted(const Seen& s) const { return s.batches >= sightings_ || s.rows >= sighting_rows_; }
  void sight(const std::string& k, i64 rows) {  // a batch of the general path with pattern k
    std::lock_guard<std::mutex> g(mu_);
    const size_t most =
        std::max<size_t>(16, std::min(kMaxPatterns, kMaxPatternBytes / std::max<size_t>(k.size(), 1)));
    if (patterns_.size() >= most && patterns_.count(k) == 0) patterns_.clear();
    Seen& s = patterns_[k];
    s.batches = std::min(s.batches + 1, sightings_);
    s.rows = std::min(s.rows + rows, sighting_rows_);
  }
  std::unordered_map<std::string, Seen> patterns_;
};

// The codes of a column of Python strings against the values a stream has learned (an
// Accumulator's object-string columns, issue 21): `learn` adds the str values of a batch the
// accumulator has counted, in row order; `encode` gives each row the index of its value among the
// first `limit` values learned, or declines the whole batch (None) at a row that is not a str (a
// missing value, a number, a str subclass) or whose value was not learned. Strings are equal when
// their code points are (Python's ==). Rows that hold one string object share its lookup: a table
// of the objects seen lately (each held by a reference, so that its address cannot be reused by
// another object while it is there) before the table of values. Called with the GIL held.
class ObjectCodes {
 public:
  ObjectCodes() = default;
  ObjectCodes(const ObjectCodes&) = delete;
  ObjectCodes& operator=(const ObjectCodes&) = delete;
  ~ObjectCodes() {
    clear_seen();
    for (PyObject* v : values_) Py_DECREF(v);
  }

  size_t size() const { return values_.size(); }

  py::list values() const {
    py::list out(values_.size());
    for (size_t i = 0; i < values_.size(); ++i) out[i] = py::reinterpret_borrow<py::object>(values_[i]);
    return out;
  }

  // Adds the str values of `arr` (a 1-D object array) not learned yet, in row order; returns how
  // many were added.
  i64 learn(const py::array& arr) {
    i64 n = 0, step = 0;
    PyObject* const* rows = object_rows(arr, n, step);
    const size_t before = values_.size();
    for (i64 i = 0; i < n; ++i) {
      PyObject* o = rows[i * step];
      if (o == nullptr || !PyUnicode_CheckExact(o) || seen_code(o) >= 0) continue;
      const Py_hash_t h = PyObject_Hash(o);
      if (h == -1) {
        PyErr_Clear();
        continue;
      }
      if (find(o, h) < 0) insert(o, h);
    }
    return static_cast<i64>(values_.size() - before);
  }

  // Codes (signed integers of `itemsize` bytes) of the rows of `arr` among the first `limit`
  // values learned, or None (see the class).
  py::object encode(const py::array& arr, i64 limit, int itemsize) {
    i64 n = 0, step = 0;
    PyObject* const* rows = object_rows(arr, n, step);
    CLARION_CHECK(itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8,
                  "itemsize must be 1, 2, 4 or 8");
    limit = std::min<i64>(limit, static_cast<i64>(values_.size()));
    CLARION_CHECK(limit <= (itemsize == 8 ? i64{1} << 62 : (i64{1} << (8 * itemsize - 1)) - 1),
                  "limit does not fit the itemsize");
    switch (itemsize) {
      case 1: return encode_t<std::int8_t>(rows, n, step, limit);
      case 2: return encode_t<std::int16_t>(rows, n, step, limit);
      case 4: return encode_t<std::int32_t>(rows, n, step, limit);
      default: return encode_t<std::int64_t>(rows, n, step, limit);
    }
  }

 private:
  static PyObject* const* object_rows(const py::array& arr, i64& n, i64& step) {
    CLARION_CHECK(arr.ndim() == 1 && arr.dtype().kind() == 'O', "arr must be a 1-D object array");
    const auto st = static_cast<i64>(arr.strides(0));
    CLARION_CHECK(st % static_cast<i64>(sizeof(PyObject*)) == 0 &&
                      reinterpret_cast<std::uintptr_t>(arr.data()) % alignof(PyObject*) == 0,
                  "arr must be an aligned object array");
    n = static_cast<i64>(arr.shape(0));
    step = st / static_cast<i64>(sizeof(PyObject*));
    return static_cast<PyObject* const*>(arr.data());
  }

  template <class T>
  py::object encode_t(PyObject* const* rows, i64 n, i64 step, i64 limit) {
    py::array_t<T> out(static_cast<py::ssize_t>(n));
    T* c = out.mutable_data();
    PyObject* last = nullptr;
    i64 last_code = -1;
    for (i64 i = 0; i < n; ++i) {
      PyObject* o = rows[i * step];
      if (o != last) {
        i64 code = seen_code(o);
        if (code < 0) {
          if (o == nullptr || !PyUnicode_CheckExact(o)) return py::none();
          const Py_hash_t h = PyObject_Hash(o);
          if (h == -1) {
            PyErr_Clear();
            return py::none();
          }
          code = find(o, h);
          if (code < 0) return py::none();
          remember(o, code);
        }
        if (code >= limit) return py::none();
        last = o;
        last_code = code;
      }
      c[i] = static_cast<T>(last_code);
    }
    return std::move(out);
  }

  static bool str_eq(PyObject* a, PyObject* b) {
    if (a == b) return true;
    const Py_ssize_t len = PyUnicode_GET_LENGTH(a);
    const int kind = PyUnicode_KIND(a);
    return len == PyUnicode_GET_LENGTH(b) && kind == static_cast<int>(PyUnicode_KIND(b)) &&
           std::memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), static_cast<size_t>(len) * kind) == 0;
  }

  // the value table: open addressing on the str hash, entries (hash, index + 1)
  i64 find(PyObject* o, Py_hash_t h) const {
    if (vtab_.empty()) return -1;
    const size_t mask = vtab_.size() - 1;
    for (size_t i = static_cast<size_t>(h) & mask;; i = (i + 1) & mask) {
      const auto& e = vtab_[i];
      if (e.second == 0) return -1;
      if (e.first == h && str_eq(values_[static_cast<size_t>(e.second - 1)], o)) return e.second - 1;
    }
  }

  void insert(PyObject* o, Py_hash_t h) {
    Py_INCREF(o);
    values_.push_back(o);
    if (2 * values_.size() > vtab_.size()) {
      size_t cap = 64;  // (a power of two: the probes wrap with a mask)
      while (cap < 4 * values_.size()) cap *= 2;
      std::vector<std::pair<Py_hash_t, i64>> grown(cap, {0, 0});
      const size_t mask = grown.size() - 1;
      for (const auto& e : vtab_) {
        if (e.second == 0) continue;
        size_t i = static_cast<size_t>(e.first) & mask;
        while (grown[i].second != 0) i = (i + 1) & mask;
        grown[i] = e;
      }
      vtab_.swap(grown);
    }
    const size_t mask = vtab_.size() - 1;
    size_t i = static_cast<size_t>(h) & mask;
    while (vtab_[i].second != 0) i = (i + 1) & mask;
    vtab_[i] = {h, static_cast<i64>(values_.size())};
    remember(o, static_cast<i64>(values_.size()) - 1);
  }

  // the objects seen lately: open addressing on the address, each held by a reference
  static size_t slot_of(PyObject* o) {
    return static_cast<size_t>((reinterpret_cast<std::uintptr_t>(o) >> 4) * 0x9E3779B97F4A7C15ull >> 52);
  }
  static constexpr size_t kSeen = size_t{1} << 12;  // (slot_of's 12 bits)

  i64 seen_code(PyObject* o) const {
    if (seen_.empty() || o == nullptr) return -1;
    for (size_t i = slot_of(o);; i = (i + 1) & (kSeen - 1)) {
      const auto& e = seen_[i];
      if (e.first == o) return e.second;
      if (e.first == nullptr) return -1;
    }
  }

  void remember(PyObject* o, i64 code) {
    if (seen_.empty()) seen_.assign(kSeen, {nullptr, 0});
    if (2 * n_seen_ >= kSeen) clear_seen();  // (a stream of ever new objects: start again)
    if (seen_.empty()) seen_.assign(kSeen, {nullptr, 0});
    size_t i = slot_of(o);
    while (seen_[i].first != nullptr) {
      if (seen_[i].first == o) return;
      i = (i + 1) & (kSeen - 1);
    }
    Py_INCREF(o);
    seen_[i] = {o, code};
    ++n_seen_;
  }

  void clear_seen() {
    for (auto& e : seen_)
      if (e.first != nullptr) Py_DECREF(e.first);
    seen_.clear();
    n_seen_ = 0;
  }

  std::vector<PyObject*> values_;                // the values learned (references)
  std::vector<std::pair<Py_hash_t, i64>> vtab_;  // (hash, index + 1); 0: empty
  std::vector<std::pair<PyObject*, i64>> seen_;  // (object, index); null: empty
  size_t n_seen_ = 0;
};
}  // namespace

void register_encode(py::module_& m) {
  m.def("int_range_cpu", &int_range_cpu, py::arg("x"), "(min, max) of a signed integer array, in one pass.");
  m.def("slot_counts_cpu", &slot_counts_cpu, py::arg("codes"), py::arg("offsets"), py::arg("sizes"),
        py::arg("raw"), py::arg("n_threads"),
        "Fill `raw` ([S_0]...[S_k-1], int64) with the counts of each combination of slots "
        "(slot = code + offset) of the code columns; returns (error_code, row, column).");
  m.def(
      "team_wake",
      [](int n_threads, i64 hold_us) {
        CLARION_CHECK(n_threads >= 0, "n_threads must be >= 0");
        CLARION_CHECK(hold_us >= 0, "hold_us must be >= 0");
        clarion::bias::team_wake(n_threads, hold_us);
      },
      py::arg("n_threads"), py::arg("hold_us"),
      "Ready the helpers of slot_counts_team (n_threads: 0 = every core) for a pass about to come: "
      "start them, wake the sleeping ones, keep them watching for hold_us microseconds (<= 0.1 s).");
  m.def("slot_counts_team", &slot_counts_team, py::arg("codes"), py::arg("offsets"), py::arg("sizes"),
        py::arg("raw"), py::arg("n_threads"),
        "slot_counts_cpu counted by the calling thread with the persistent helper team of a stream's "
        "passes (n_threads: 0 = every core, adaptive); the same table and error.");
  m.def("slot_weighted_counts_cpu", &slot_weighted_counts_cpu, py::arg("codes"), py::arg("offsets"),
        py::arg("sizes"), py::arg("luts"), py::arg("map_strides"), py::arg("weights"), py::arg("mapped"),
        py::arg("raw"), py::arg("n_threads"),
        "Weighted slot counts: `mapped` (float64) gets each row's weight at sum(luts[j][slot_j] * "
        "map_strides[j]) in grouped_counts' summation order, `raw` the occurrence count of each slot "
        "combination; returns (error_code, row, column).");
  py::class_<SlotStream>(
      m, "SlotStream", "The compiled steady state of a bias Accumulator's stream (clarion/slot_stream.hpp).")
      .def(py::init<int, bool, bool, bool, i64, const std::vector<i64>&, const std::vector<int>&,
                    const std::vector<bool>&, const std::vector<i64>&, const std::vector<i64>&,
                    const py::list&, const py::list&, const std::vector<bool>&, py::object, py::object,
                    const py::list&, py::object, const py::list&, const py::list&, const std::vector<i64>&,
                    int, i64>(),
           py::arg("n_facets"), py::arg("has_group"), py::arg("has_pred"), py::arg("weighted"), py::arg("K"),
           py::arg("V"), py::arg("itemsizes"), py::arg("booleans"), py::arg("offsets"), py::arg("sizes"),
           py::arg("codes"), py::arg("wmaps"), py::arg("facet_slots"), py::arg("lock"), py::arg("state"),
           py::arg("counts"), py::arg("kind"), py::arg("tables"), py::arg("vocabs"), py::arg("vocab_sizes"),
           py::arg("sightings"), py::arg("sighting_rows"))
      .def("add", &SlotStream::add, py::arg("arrays"), py::arg("weights"), py::arg("n_threads"),
           "Count a batch and add it when its pattern was accepted; returns 0 (added), the pattern (bytes: "
           "not "
           "accepted yet), 2 (a row outside its slots or a bad weight), 3 (the state's tables were "
           "replaced), 4 "
           "(arrays do not fit), 5 (a value without a code).")
      .def("add_frame", &SlotStream::add_frame, py::arg("frame"), py::arg("n_threads"),
           "Count a DataFrame batch read straight from its blocks and add it when its pattern was "
           "accepted; returns its rows (added), the pattern (bytes), 0 (declined) or -1 (read the frame "
           "in Python, then prime_frame).")
      .def("prime_frame", &SlotStream::prime_frame, py::arg("frame"), py::arg("positions"), py::arg("dtypes"),
           py::arg("categorical"),
           "What add_frame needs to read frames like this one: the columns' positions, per column the "
           "categorical dtype accepted (None: a numpy column), pandas.Categorical.")
      .def("note", &SlotStream::note, py::arg("key"), py::arg("n_rows"),
           "Note a pattern `add` returned (the general path counted its batch).")
      .def("note_tables", &SlotStream::note_tables, py::arg("raws"), py::arg("n_rows"),
           "Note the pattern of a batch the one-pass path counted, from its slot tables (no second pass).")
      .def("allow", &SlotStream::allow, py::arg("arrays"), py::arg("weights"), py::arg("n_threads"),
           "Note the pattern of a batch the general path counted (statuses as add; adds nothing); a pattern "
           "noted in `sightings` batches or `sighting_rows` rows is accepted.")
      .def("copy_patterns", &SlotStream::copy_patterns, py::arg("other"))
      .def("fresh", &SlotStream::fresh)
      .def_property_readonly("n_patterns", &SlotStream::n_patterns);
  py::class_<ObjectCodes>(m, "ObjectCodes",
                          "Codes of a column of Python strings against the values learned from the batches "
                          "an Accumulator counted (its object-string columns).")
      .def(py::init<>())
      .def("learn", &ObjectCodes::learn, py::arg("arr"),
           "Learn the str values of a 1-D object array (in row order); returns how many were new.")
      .def("encode", &ObjectCodes::encode, py::arg("arr"), py::arg("limit"), py::arg("itemsize"),
           "Each row's index among the first `limit` values learned (signed integers of `itemsize` bytes), "
           "or None at a row that is not a str or whose value was not learned.")
      .def("values", &ObjectCodes::values, "The values learned, in order.")
      .def("__len__", &ObjectCodes::size);
}
