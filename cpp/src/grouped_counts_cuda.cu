// CUDA drivers of the grouped count kernels. The per-row arithmetic is the same header the CPU
// driver uses (grouped_counts.hpp); this file only launches.
//
// * Integer counts: each block privatises the table in shared memory when it fits, adds rows with
//   integer atomics, then flushes it with integer atomics: exact, so reruns are bit-identical.
// * Weighted (floating) sums: no float atomics. Rows are cut into chunks; thread c adds its chunk's
//   rows in row order into its own partial table; a second kernel sums the partial tables of each
//   cell in chunk order. The result is a pure function of the inputs, so reruns are bit-identical.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "clarion/cuda_check.hpp"
#include "clarion/grouped_counts_drivers.hpp"

namespace clarion::bias {
namespace {

using ull = unsigned long long;
constexpr int kThreads = 256;
constexpr i64 kSharedCellsMax = 4096;                   // 32 KiB of int64 per block
constexpr i64 kPartialCellsMax = (i64{256} << 20) / 8;  // 256 MiB of partial tables
constexpr i64 kMaxChunks = 65536;

struct AtomicAdder {
  i64* table;
  __device__ void operator()(i64 cell, i64 v) const {
    atomicAdd(reinterpret_cast<ull*>(table + cell), static_cast<ull>(v));
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

template <class RowFn>
__global__ void integer_counts_kernel(CountsProblem pb, RowFn fn, i64* out, ull* err, bool use_shared) {
  extern __shared__ i64 shared_table[];
  const i64 cells = pb.total_cells();
  if (use_shared) {
    for (i64 c = threadIdx.x; c < cells; c += blockDim.x) shared_table[c] = 0;
    __syncthreads();
  }
  AtomicAdder add{use_shared ? shared_table : out};
  const i64 stride = static_cast<i64>(gridDim.x) * blockDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < pb.n_rows; i += stride) {
    i64 col = -1;
    const int e = fn(i, add, &col);
    if (e != 0) report_error(err, pb.n_batch, i, col, e);
  }
  if (use_shared) {
    __syncthreads();
    for (i64 c = threadIdx.x; c < cells; c += blockDim.x) {
      const i64 v = shared_table[c];
      if (v != 0) atomicAdd(reinterpret_cast<ull*>(out + c), static_cast<ull>(v));
    }
  }
}

template <class RowFn>
__global__ void chunked_sums_kernel(CountsProblem pb, RowFn fn, double* partial, i64 rows_per_chunk,
                                    i64 n_chunks, ull* err) {
  const i64 c = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= n_chunks) return;
  PlainAdder add{partial + c * pb.total_cells()};
  const i64 begin = c * rows_per_chunk;
  const i64 end = min(pb.n_rows, begin + rows_per_chunk);
  for (i64 i = begin; i < end; ++i) {
    i64 col = -1;
    const int e = fn(i, add, &col);
    if (e != 0) {
      report_error(err, pb.n_batch, i, col, e);
      return;
    }
  }
}

__global__ void reduce_partials_kernel(const double* partial, i64 n_chunks, i64 cells, double* out) {
  const i64 cell = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (cell >= cells) return;
  double acc = 0.0;
  for (i64 c = 0; c < n_chunks; ++c) acc += partial[c * cells + cell];
  out[cell] = acc;
}

template <class Out>
__global__ void threshold_transform_kernel(const Out* hist, i64 tables, i64 gl_cells, i64 T, Out* out) {
  const i64 k = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= tables * gl_cells) return;
  const i64 tb = k / gl_cells, c = k % gl_cells;
  histogram_to_threshold_counts<Out>(hist + tb * gl_cells * (T + 1), gl_cells, T, out + tb * T * gl_cells * 2,
                                     c);
}

int blocks_for(i64 n, int threads, i64 cap) {
  return static_cast<int>(std::max<i64>(1, std::min<i64>(cap, (n + threads - 1) / threads)));
}

// Runs one row functor over all rows into `out` (pb.total_cells() elements), on `stream`.
template <class Out, class RowFn>
RowError run_rows(const CountsProblem& pb, const RowFn& fn, Out* out, cudaStream_t stream) {
  const i64 cells = pb.total_cells();
  ull* err = nullptr;
  CLARION_CUDA_CHECK(cudaMallocAsync(&err, sizeof(ull), stream));
  CLARION_CUDA_CHECK(cudaMemsetAsync(err, 0xFF, sizeof(ull), stream));
  if (cells > 0) CLARION_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(Out) * cells, stream));
  double* partial = nullptr;
  // Rows are checked even when the table is empty (a declared size of 0): every counted row is
  // then out of range, or adds nothing (0 batch columns), so no cell is written.
  if (pb.n_rows > 0) {
    if constexpr (std::is_integral_v<Out>) {
      const bool use_shared = cells <= kSharedCellsMax;
      const int blocks = blocks_for(pb.n_rows, kThreads, 65535);
      integer_counts_kernel<<<blocks, kThreads, use_shared ? cells * sizeof(i64) : 0, stream>>>(
          pb, fn, out, err, use_shared);
      CLARION_CUDA_CHECK(cudaGetLastError());
    } else {
      i64 n_chunks = std::min<i64>({(pb.n_rows + 255) / 256, kMaxChunks,
                                    std::max<i64>(1, kPartialCellsMax / std::max<i64>(cells, 1))});
      n_chunks = std::max<i64>(n_chunks, 1);
      const i64 rows_per_chunk = (pb.n_rows + n_chunks - 1) / n_chunks;
      n_chunks = (pb.n_rows + rows_per_chunk - 1) / rows_per_chunk;
      CLARION_CUDA_CHECK(
          cudaMallocAsync(&partial, sizeof(double) * std::max<i64>(n_chunks * cells, 1), stream));
      CLARION_CUDA_CHECK(cudaMemsetAsync(partial, 0, sizeof(double) * n_chunks * cells, stream));
      chunked_sums_kernel<<<blocks_for(n_chunks, 128, INT_MAX), 128, 0, stream>>>(
          pb, fn, partial, rows_per_chunk, n_chunks, err);
      CLARION_CUDA_CHECK(cudaGetLastError());
      reduce_partials_kernel<<<blocks_for(cells, kThreads, INT_MAX), kThreads, 0, stream>>>(partial, n_chunks,
                                                                                            cells, out);
      CLARION_CUDA_CHECK(cudaGetLastError());
    }
  }
  ull key = ULLONG_MAX;
  CLARION_CUDA_CHECK(cudaMemcpyAsync(&key, err, sizeof(ull), cudaMemcpyDeviceToHost, stream));
  if (partial != nullptr) CLARION_CUDA_CHECK(cudaFreeAsync(partial, stream));
  CLARION_CUDA_CHECK(cudaFreeAsync(err, stream));
  CLARION_CUDA_CHECK(cudaStreamSynchronize(stream));
  return decode_error(key, pb.n_batch);
}

}  // namespace

template <class Code, class W, class Out>
RowError grouped_counts_cuda(const CountsProblem& pb, const Code* groups, const Code* labels,
                             const Code* preds, const W* weights, Out* out, void* stream) {
  const CountsRow<Code, W, Out> fn{pb, groups, labels, preds, weights};
  return run_rows<Out>(pb, fn, out, static_cast<cudaStream_t>(stream));
}

template <class Code, class S, class W, class Out>
RowError grouped_threshold_counts_cuda(const CountsProblem& pb, const Code* groups, const Code* labels,
                                       const S* scores, const double* thresholds, const W* weights, Out* out,
                                       void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  const i64 T = pb.n_preds - 1;
  Out* hist = nullptr;
  CLARION_CUDA_CHECK(cudaMallocAsync(&hist, sizeof(Out) * std::max<i64>(1, pb.total_cells()), st));
  const ThresholdRow<Code, S, W, Out> fn{pb, groups, labels, scores, thresholds, weights};
  const RowError e = run_rows<Out>(pb, fn, hist, st);
  if (e.what == 0) {
    const i64 gl_cells = pb.n_groups * pb.n_labels;
    const i64 tables = (pb.n_boot > 0 ? pb.n_boot : 1) * pb.n_batch;
    if (tables * gl_cells * T > 0) {
      threshold_transform_kernel<Out><<<blocks_for(tables * gl_cells, kThreads, INT_MAX), kThreads, 0, st>>>(
          hist, tables, gl_cells, T, out);
      CLARION_CUDA_CHECK(cudaGetLastError());
    }
  }
  CLARION_CUDA_CHECK(cudaFreeAsync(hist, st));
  CLARION_CUDA_CHECK(cudaStreamSynchronize(st));
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
