// CUDA drivers of the grouped count kernels. The per-row arithmetic is the same header the CPU
// driver uses (grouped_counts.hpp); this file only launches.
//
// * Integer counts: a grid of a few blocks per SM (grid-stride loops). Each block privatises the
//   table in shared memory as uint32 when it fits (native 32-bit shared atomics; the fast path of
//   one prediction column without bootstrap first aggregates equal cells across the warp with
//   __match_any_sync, so a skewed table costs one atomic per distinct cell per warp) and flushes
//   it to the int64 totals with global atomics: at the end, and every kFlushIters rows per thread
//   so that no uint32 cell can overflow. Integer sums are exact: any order gives the same bits.
// * Weighted (floating) sums: no float atomics. The order of every addition is the one of
//   sum_schedule.hpp, which the CPU driver follows too: leaves of rows, each summed in row order
//   into its own partial table, then the ordered pairwise tree over the leaves, one kernel per
//   level, parallel over (pair, cell). The leaf kernel runs one thread per (leaf, replicate,
//   batch column, slice of the cells): a thread adds only its cells, in row order, and the slices
//   make up for the leaves a large table leaves out of the scratch budget, so the device stays
//   busy whatever the table size. Results equal the CPU's bit for bit.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <type_traits>

#include "clarion/cuda_check.hpp"
#include "clarion/device_buffer.hpp"
#include "clarion/grouped_counts_drivers.hpp"
#include "clarion/sum_schedule.hpp"

namespace clarion::bias {
namespace {

using ull = unsigned long long;
using cuda::DeviceBuffer;
using cuda::StreamGuard;
constexpr int kThreads = 256;
constexpr i64 kSharedCellsMax = 8192;  // 32 KiB of uint32 per block
// A cell receives at most 20 per row (the largest Poisson(1) draw; 1 without bootstrap), so a
// block that flushes every kFlushIters x kThreads rows keeps each uint32 cell below 2^31.
constexpr i64 kFlushIters = (i64{1} << 26) / kThreads;
// Weighted sums: aim for this many (leaf, replicate, column, slice) threads per SM, with at most
// kMaxSlices slices of the cells (see leaf_sums_kernel).
constexpr i64 kSliceTarget = 512;
constexpr i64 kMaxSlices = 32;

struct SharedAdder {
  unsigned* table;
  __device__ void operator()(i64 cell, i64 v) const { atomicAdd(table + cell, static_cast<unsigned>(v)); }
};

struct GlobalAdder {
  i64* table;
  __device__ void operator()(i64 cell, i64 v) const {
    atomicAdd(reinterpret_cast<ull*>(table + cell), static_cast<ull>(v));
  }
};

// Records the one addition of a fast-path row (count_row_single adds exactly once when counted).
struct RecordAdder {
  i64 cell = -1;
  i64 value = 0;
  __device__ void operator()(i64 c, i64 v) {
    cell = c;
    value = v;
  }
};

// Keeps the `want`-th addition of a row (the one for batch column `want`; add_row adds the
// columns in order) and drops the others.
struct PickAdder {
  i64 want;
  i64 seen = 0;
  i64 cell = -1;
  double value = 0.0;
  __device__ void operator()(i64 c, double v) {
    if (seen == want) {
      cell = c;
      value = v;
    }
    ++seen;
  }
};

struct PlainAdder {
  double* table;
  __device__ void operator()(i64 cell, double v) const { table[cell] += v; }
};

// Error key: ordered by row, then column, so atomicMin keeps the first offending row.
__device__ void report_error(ull* err, i64 n_batch, i64 row, i64 col, int what) {
  const ull key = (static_cast<ull>(row) * static_cast<ull>(n_batch + 1) + static_cast<ull>(col + 1)) * 8ull +
                  static_cast<ull>(what);
  atomicMin(err, key);
}

RowError decode_error(ull key, i64 n_batch) {
  RowError e;
  if (key == ULLONG_MAX) return e;
  e.what = static_cast<int>(key % 8ull);
  const ull rc = key / 8ull;
  e.row = static_cast<i64>(rc / static_cast<ull>(n_batch + 1));
  e.col = static_cast<i64>(rc % static_cast<ull>(n_batch + 1)) - 1;
  return e;
}

template <class Code, class W, class Out>
struct CountsRow {
  CountsProblem pb;
  const Code* groups;
  const Code* labels;
  const Code* preds;
  const W* weights;
  template <class Adder>
  __device__ int operator()(i64 i, Adder& add, i64* col) const {
    return count_row<Code, W, Out>(pb, i, groups, labels, preds, weights, add, col);
  }
};

// The fast path (one prediction column or none, no bootstrap, no weights): count_row_single.
template <bool kPreds, class Code>
struct SingleRow {
  CountsProblem pb;
  const Code* groups;
  const Code* labels;
  const Code* preds;
  template <class Adder>
  __device__ int operator()(i64 i, Adder& add, i64* col) const {
    return count_row_single<kPreds, false, Code, float, i64>(pb, i, groups, labels, preds, nullptr, add, col);
  }
};

template <class Code, class S, class W, class Out>
struct ThresholdRow {
  CountsProblem pb;
  const Code* groups;
  const Code* labels;
  const S* scores;
  const double* thresholds;
  const W* weights;
  template <class Adder>
  __device__ int operator()(i64 i, Adder& add, i64* col) const {
    return threshold_row<Code, S, W, Out>(pb, i, groups, labels, scores, thresholds, weights, add, col);
  }
};

// Adds the block's uint32 table to the int64 totals and clears it.
__device__ void flush_shared(unsigned* table, i64 cells, i64* out) {
  __syncthreads();
  for (i64 c = threadIdx.x; c < cells; c += blockDim.x) {
    const unsigned v = table[c];
    if (v != 0) {
      atomicAdd(reinterpret_cast<ull*>(out + c), static_cast<ull>(v));
      table[c] = 0;
    }
  }
  __syncthreads();
}

// kAggregate: fn adds at most once per row (SingleRow), and the warp's equal cells are combined.
// The loop bound is uniform across the block (base depends on blockIdx only), so every thread
// reaches each __syncthreads and every lane of a warp each __match_any_sync.
template <bool kAggregate, class RowFn>
__global__ void integer_counts_kernel(CountsProblem pb, RowFn fn, i64* out, ull* err, bool use_shared) {
  extern __shared__ unsigned shared_table[];
  const i64 cells = pb.total_cells();
  if (use_shared) {
    for (i64 c = threadIdx.x; c < cells; c += blockDim.x) shared_table[c] = 0;
    __syncthreads();
  }
  const SharedAdder shared_add{shared_table};
  const GlobalAdder global_add{out};
  const i64 stride = static_cast<i64>(gridDim.x) * blockDim.x;
  i64 iters = 0;
  for (i64 base = static_cast<i64>(blockIdx.x) * blockDim.x; base < pb.n_rows; base += stride) {
    const i64 i = base + threadIdx.x;
    i64 col = -1;
    if constexpr (kAggregate) {
      RecordAdder rec;
      if (i < pb.n_rows) {
        const int e = fn(i, rec, &col);
        if (e != 0) report_error(err, pb.n_batch, i, col, e);
      }
      const unsigned peers = __match_any_sync(0xffffffffu, static_cast<long long>(rec.cell));
      const int lane = static_cast<int>(threadIdx.x & 31u);
      if (rec.cell >= 0 && lane == __ffs(peers) - 1) {
        const i64 v = rec.value * static_cast<i64>(__popc(peers));
        if (use_shared)
          shared_add(rec.cell, v);
        else
          global_add(rec.cell, v);
      }
    } else if (i < pb.n_rows) {
      int e = 0;
      if (use_shared) {
        SharedAdder add = shared_add;
        e = fn(i, add, &col);
      } else {
        GlobalAdder add = global_add;
        e = fn(i, add, &col);
      }
      if (e != 0) report_error(err, pb.n_batch, i, col, e);
    }
    if (use_shared && ++iters == kFlushIters) {
      flush_shared(shared_table, cells, out);
      iters = 0;
    }
  }
  if (use_shared) flush_shared(shared_table, cells, out);
}

// The leaves of sum_schedule.hpp: unit u = (leaf, replicate r, batch column b, cell slice),
// slice fastest, then b, so a warp's threads read the same rows. `fn` is the row function of the
// problem without bootstrap; the unit adds the row's column-b value (times its Poisson(1) draw in
// replicate r, through add_replicate: the CPU bootstrap driver's call) to the leaf's table, in row
// order, for the cells c with c % n_slices == slice only. Slices keep the device busy when the
// table is large (few leaves fit the scratch budget) and there is no replicate or batch axis to
// spread over; every cell still receives its rows in row order, from one thread.
template <class RowFn>
__global__ void leaf_sums_kernel(CountsProblem pb, RowFn fn, sched::SumSchedule sch, i64 n_slices,
                                 double* partial, ull* err) {
  const i64 R = pb.n_boot > 0 ? pb.n_boot : 1;
  const i64 Bu = pb.n_batch > 0 ? pb.n_batch : 1;  // rows are checked even with 0 columns
  const i64 replicate_cells = pb.n_batch * pb.table_cells();
  const i64 cells = pb.total_cells() > 0 ? pb.total_cells() : 0;
  const i64 units = sch.n_leaves * R * Bu * n_slices;
  const rng::ReplicateKeys keys(pb.seed);
  const i64 stride = static_cast<i64>(gridDim.x) * blockDim.x;
  for (i64 u = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; u < units; u += stride) {
    const i64 slice = u % n_slices, v = u / n_slices;
    const i64 b = v % Bu, r = (v / Bu) % R, leaf = v / (Bu * R);
    PlainAdder add{partial + leaf * cells};
    const u64 key = keys(r);
    const i64 end = sch.leaf_end(leaf);
    for (i64 i = sch.leaf_begin(leaf); i < end; ++i) {
      PickAdder pick{b};
      i64 col = -1;
      const int e = fn(i, pick, &col);
      if (e != 0) {
        report_error(err, pb.n_batch, i, col, e);
        break;
      }
      if (pick.cell < 0 || pick.cell % n_slices != slice) continue;  // left out, no column, not ours
      if (pb.n_boot == 0) {
        add(pick.cell, pick.value);
      } else {
        const i64 c = pick.cell;
        add_replicate<true, double>(
            key, pb.row_offset + i, pick.value, 1, r * replicate_cells, [c](i64) { return c; }, add);
      }
    }
  }
}

// One level of the ordered tree (sum_schedule.hpp), parallel over (pair, cell).
__global__ void tree_level_kernel(double* partial, i64 cells, i64 n_leaves, i64 level_stride) {
  const i64 total = sched::tree_pairs(n_leaves, level_stride) * cells;
  auto slot = [partial, cells](i64 leaf) { return partial + leaf * cells; };
  for (i64 e = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<i64>(gridDim.x) * blockDim.x)
    sched::tree_add<double>(slot, level_stride, e / cells, e % cells);
}

template <class Out>
__global__ void threshold_transform_kernel(const Out* hist, i64 tables, i64 gl_cells, i64 T, Out* out) {
  const i64 n = tables * gl_cells;
  for (i64 k = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 tb = k / gl_cells, c = k % gl_cells;
    histogram_to_threshold_counts<Out>(hist + tb * gl_cells * (T + 1), gl_cells, T,
                                       out + tb * T * gl_cells * 2, c);
  }
}

template <bool kAggregate, class RowFn>
void launch_integer(const CountsProblem& pb, const RowFn& fn, i64* out, ull* err, cudaStream_t stream) {
  const i64 cells = pb.total_cells();
  const bool use_shared = cells <= kSharedCellsMax;
  const size_t smem = use_shared ? static_cast<size_t>(std::max<i64>(cells, 1)) * sizeof(unsigned) : 0;
  const auto kernel = integer_counts_kernel<kAggregate, RowFn>;
  // Up to 8 resident blocks of 256 per SM (full occupancy where the table allows): a streaming
  // kernel with one load per array per row needs every warp it can get to cover DRAM latency.
  const int blocks = cuda::grid_for(reinterpret_cast<const void*>(kernel), kThreads, smem, pb.n_rows, 8);
  kernel<<<blocks, kThreads, smem, stream>>>(pb, fn, out, err, use_shared);
  CLARION_CUDA_CHECK(cudaGetLastError());
}

// The weighted sum of sum_schedule.hpp into out (pb.total_cells() elements). plain_fn: the row
// function of pb without bootstrap.
template <class RowFn>
void launch_weighted(const CountsProblem& pb, const RowFn& plain_fn, double* out, ull* err,
                     cudaStream_t stream) {
  const i64 cells = pb.total_cells();
  const sched::SumSchedule sch = sched::sum_schedule(pb.n_rows, cells);
  DeviceBuffer<double> partial(std::max<i64>(sch.n_leaves * cells, 1), stream);
  if (cells > 0)
    CLARION_CUDA_CHECK(cudaMemsetAsync(partial.get(), 0,
                                       sizeof(double) * static_cast<size_t>(sch.n_leaves * cells), stream));
  const i64 units = sch.n_leaves * std::max<i64>(pb.n_boot, 1) * std::max<i64>(pb.n_batch, 1);
  // Slices of the cells: enough units for ~kSliceTarget threads per SM, at most kMaxSlices (each
  // slice re-reads the leaf's rows) and at most one slice per cell of a sub-table.
  int dev = 0, sms = 1;
  CLARION_CUDA_CHECK(cudaGetDevice(&dev));
  CLARION_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const i64 want = (static_cast<i64>(sms) * kSliceTarget + units - 1) / std::max<i64>(units, 1);
  const i64 n_slices =
      std::max<i64>(1, std::min<i64>({want, kMaxSlices, std::max<i64>(pb.table_cells(), 1)}));
  const auto leaf_kernel = leaf_sums_kernel<RowFn>;
  leaf_kernel<<<cuda::grid_for(reinterpret_cast<const void*>(leaf_kernel), 128, 0, units * n_slices, 16), 128,
                0, stream>>>(pb, plain_fn, sch, n_slices, partial.get(), err);
  CLARION_CUDA_CHECK(cudaGetLastError());
  if (cells <= 0) return;
  for (i64 s = 1; s < sch.n_leaves; s *= 2) {
    const i64 work = sched::tree_pairs(sch.n_leaves, s) * cells;
    tree_level_kernel<<<cuda::grid_for(reinterpret_cast<const void*>(tree_level_kernel), kThreads, 0, work,
                                       8),
                        kThreads, 0, stream>>>(partial.get(), cells, sch.n_leaves, s);
    CLARION_CUDA_CHECK(cudaGetLastError());
  }
  CLARION_CUDA_CHECK(
      cudaMemcpyAsync(out, partial.get(), sizeof(double) * cells, cudaMemcpyDeviceToDevice, stream));
}

// Runs the row functors over all rows into `out` (pb.total_cells() elements) on `stream`, and
// returns the first offending row. fn: the row function of pb (integer counts); plain_fn: the one
// of pb without bootstrap (weighted sums). The caller's guard synchronises.
template <bool kAggregate, class Out, class RowFn, class PlainFn>
RowError run_rows(const CountsProblem& pb, const RowFn& fn, const PlainFn& plain_fn, Out* out,
                  cudaStream_t stream) {
  const i64 cells = pb.total_cells();
  DeviceBuffer<ull> err(1, stream);
  CLARION_CUDA_CHECK(cudaMemsetAsync(err.get(), 0xFF, sizeof(ull), stream));
  if (cells > 0) CLARION_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(Out) * cells, stream));
  // Rows are checked even when the table is empty (a declared size of 0): every counted row is
  // then out of range, or adds nothing (0 batch columns), so no cell is written.
  if (pb.n_rows > 0) {
    if constexpr (std::is_integral_v<Out>)
      launch_integer<kAggregate>(pb, fn, out, err.get(), stream);
    else
      launch_weighted(pb, plain_fn, out, err.get(), stream);
  }
  ull key = ULLONG_MAX;
  CLARION_CUDA_CHECK(cudaMemcpyAsync(&key, err.get(), sizeof(ull), cudaMemcpyDeviceToHost, stream));
  CLARION_CUDA_CHECK(cudaStreamSynchronize(stream));
  return decode_error(key, pb.n_batch);
}

CountsProblem without_bootstrap(const CountsProblem& pb) {
  CountsProblem plain = pb;
  plain.n_boot = 0;
  return plain;
}

}  // namespace

template <class Code, class W, class Out>
RowError grouped_counts_cuda(const CountsProblem& pb, const Code* groups, const Code* labels,
                             const Code* preds, const W* weights, Out* out, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  StreamGuard guard(st);
  RowError e;
  bool done = false;
  if constexpr (std::is_integral_v<Out>) {
    if (weights == nullptr && pb.n_boot == 0 && pb.n_batch == 1) {
      if (preds != nullptr) {
        const SingleRow<true, Code> fn{pb, groups, labels, preds};
        e = run_rows<true, Out>(pb, fn, fn, out, st);
      } else {
        const SingleRow<false, Code> fn{pb, groups, labels, preds};
        e = run_rows<true, Out>(pb, fn, fn, out, st);
      }
      done = true;
    }
  }
  if (!done) {
    const CountsRow<Code, W, Out> fn{pb, groups, labels, preds, weights};
    const CountsRow<Code, W, Out> plain{without_bootstrap(pb), groups, labels, preds, weights};
    e = run_rows<false, Out>(pb, fn, plain, out, st);
  }
  guard.sync();
  return e;
}

template <class Code, class S, class W, class Out>
RowError grouped_threshold_counts_cuda(const CountsProblem& pb, const Code* groups, const Code* labels,
                                       const S* scores, const double* thresholds, const W* weights, Out* out,
                                       void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  StreamGuard guard(st);
  const i64 T = pb.n_preds - 1;
  DeviceBuffer<Out> hist(std::max<i64>(1, pb.total_cells()), st);
  const ThresholdRow<Code, S, W, Out> fn{pb, groups, labels, scores, thresholds, weights};
  const ThresholdRow<Code, S, W, Out> plain{
      without_bootstrap(pb), groups, labels, scores, thresholds, weights};
  const RowError e = run_rows<false, Out>(pb, fn, plain, hist.get(), st);
  if (e.what == 0) {
    const i64 gl_cells = pb.n_groups * pb.n_labels;
    const i64 tables = (pb.n_boot > 0 ? pb.n_boot : 1) * pb.n_batch;
    if (tables * gl_cells * T > 0) {
      const auto kernel = threshold_transform_kernel<Out>;
      kernel<<<cuda::grid_for(reinterpret_cast<const void*>(kernel), kThreads, 0, tables * gl_cells, 8),
               kThreads, 0, st>>>(hist.get(), tables, gl_cells, T, out);
      CLARION_CUDA_CHECK(cudaGetLastError());
    }
  }
  guard.sync();
  return e;
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

#define CLARION_INSTANTIATE_CUDA(Code)                                                                       \
  template RowError grouped_counts_cuda<Code, float, i64>(const CountsProblem&, const Code*, const Code*,    \
                                                          const Code*, const float*, i64*, void*);           \
  template RowError grouped_counts_cuda<Code, float, double>(const CountsProblem&, const Code*, const Code*, \
                                                             const Code*, const float*, double*, void*);     \
  template RowError grouped_counts_cuda<Code, double, double>(                                               \
      const CountsProblem&, const Code*, const Code*, const Code*, const double*, double*, void*);           \
  template RowError grouped_threshold_counts_cuda<Code, float, float, i64>(                                  \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const float*, i64*,       \
      void*);                                                                                                \
  template RowError grouped_threshold_counts_cuda<Code, double, float, i64>(                                 \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const float*, i64*,      \
      void*);                                                                                                \
  template RowError grouped_threshold_counts_cuda<Code, float, float, double>(                               \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const float*, double*,    \
      void*);                                                                                                \
  template RowError grouped_threshold_counts_cuda<Code, double, float, double>(                              \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const float*, double*,   \
      void*);                                                                                                \
  template RowError grouped_threshold_counts_cuda<Code, float, double, double>(                              \
      const CountsProblem&, const Code*, const Code*, const float*, const double*, const double*, double*,   \
      void*);                                                                                                \
  template RowError grouped_threshold_counts_cuda<Code, double, double, double>(                             \
      const CountsProblem&, const Code*, const Code*, const double*, const double*, const double*, double*,  \
      void*);

CLARION_INSTANTIATE_CUDA(std::int8_t)
CLARION_INSTANTIATE_CUDA(std::int16_t)
CLARION_INSTANTIATE_CUDA(std::int32_t)
CLARION_INSTANTIATE_CUDA(std::int64_t)
#undef CLARION_INSTANTIATE_CUDA

}  // namespace clarion::bias
