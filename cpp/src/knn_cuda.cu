// CUDA driver of the exact k-NN vote: tiled brute force, one thread per query row. Each block
// stages a tile of reference rows in shared memory and every thread of the block scans it, keeping
// its k closest (distance, index) pairs in a sorted list in local memory. The distance arithmetic,
// the neighbour order, the list insertion and the vote are the ones of knn.hpp, so the result is
// identical to the CPU kd-tree and to the numpy reference. No atomics: reruns are bit-identical.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "clarion/cuda_check.hpp"
#include "clarion/knn.hpp"
#include "clarion/knn_drivers.hpp"

namespace clarion::knn {
namespace {

constexpr int kThreads = 128;
constexpr i64 kSharedBytes = 40 * 1024;
constexpr i64 kMaxTileRows = 256;

template <int KCap>
__global__ void knn_brute_kernel(KnnProblem pb, const double* __restrict__ xa,
                                 const std::uint8_t* __restrict__ ya, const double* __restrict__ xd,
                                 std::int64_t* __restrict__ positives, std::uint8_t* __restrict__ votes,
                                 i64 tile_rows, bool use_shared) {
  extern __shared__ double tile[];
  std::uint8_t* tile_labels = reinterpret_cast<std::uint8_t*>(tile + (use_shared ? tile_rows * pb.m : 0));
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = i < pb.n_d;
  const double* q = xd + (active ? i : 0) * pb.m;

  double dist[KCap];
  i64 index[KCap];
  std::uint8_t label[KCap];
  i64 len = 0;
  const double inf = __longlong_as_double(0x7ff0000000000000LL);

  for (i64 base = 0; base < pb.n_a; base += tile_rows) {
    const i64 rows = min(tile_rows, pb.n_a - base);
    if (use_shared) {
      __syncthreads();
      for (i64 e = threadIdx.x; e < rows * pb.m; e += blockDim.x) tile[e] = xa[base * pb.m + e];
      for (i64 e = threadIdx.x; e < rows; e += blockDim.x) tile_labels[e] = ya[base + e];
      __syncthreads();
    }
    if (!active) continue;
    for (i64 r = 0; r < rows; ++r) {
      const double* x = use_shared ? tile + r * pb.m : xa + (base + r) * pb.m;
      const double bound = len == pb.k ? dist[len - 1] : inf;
      const double d = sq_dist_bounded(q, x, pb.m, bound);
      if (d > bound) continue;
      insert_sorted(dist, index, label, &len, pb.k, d, base + r, use_shared ? tile_labels[r] : ya[base + r]);
    }
  }
  if (!active) return;
  i64 pos = 0;
  for (i64 j = 0; j < len; ++j) pos += label[j];
  positives[i] = pos;
  votes[i] = majority_vote(pos, pb.k) ? 1 : 0;
}

template <int KCap>
void launch(const KnnProblem& pb, const double* xa, const std::uint8_t* ya, const double* xd,
            std::int64_t* positives, std::uint8_t* votes, cudaStream_t stream) {
  const i64 row_bytes = pb.m * static_cast<i64>(sizeof(double)) + 1;
  i64 tile_rows = std::min<i64>(kMaxTileRows, kSharedBytes / row_bytes);
  const bool use_shared = tile_rows >= 1;
  if (!use_shared) tile_rows = kMaxTileRows;  // very wide rows: read the reference rows from global memory
  const size_t smem = use_shared ? static_cast<size_t>(tile_rows * pb.m * sizeof(double) + tile_rows) : 0;
  const i64 blocks = (pb.n_d + kThreads - 1) / kThreads;
  if (blocks > INT_MAX) throw std::invalid_argument("knn: too many query rows for one CUDA launch");
  knn_brute_kernel<KCap><<<static_cast<int>(blocks), kThreads, smem, stream>>>(pb, xa, ya, xd, positives,
                                                                               votes, tile_rows, use_shared);
  CLARION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void knn_vote_cuda(const KnnProblem& pb, const double* xa, const std::uint8_t* ya, const double* xd,
                   std::int64_t* positives, std::uint8_t* votes, void* stream) {
  validate(pb);
  if (pb.k > kCudaMaxK)
    throw std::invalid_argument("knn: the CUDA kernel supports k <= " + std::to_string(kCudaMaxK) + ", got " +
                                std::to_string(pb.k));
  auto st = static_cast<cudaStream_t>(stream);
  if (pb.n_d > 0) {
    if (pb.k <= 8)
      launch<8>(pb, xa, ya, xd, positives, votes, st);
    else if (pb.k <= 32)
      launch<32>(pb, xa, ya, xd, positives, votes, st);
    else
      launch<kCudaMaxK>(pb, xa, ya, xd, positives, votes, st);
  }
  CLARION_CUDA_CHECK(cudaStreamSynchronize(st));
}

}  // namespace clarion::knn
