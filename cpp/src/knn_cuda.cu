// CUDA driver of the exact k-NN vote: tiled brute force. The reference rows are split into G
// contiguous parts (G chosen so that queries x parts fill the device: a small facet d still uses
// every SM); thread (query, part) scans its part, tile by tile through shared memory, keeping the
// k closest (distance, index, label) of the part sorted by knn.hpp's closer(). A merge kernel then
// takes, per query, the k closest of the G sorted lists (a G-way merge under the same total order:
// indices are distinct, so the result does not depend on the split) and votes. The distance
// arithmetic, the order, the insertion and the vote are knn.hpp's, and labels are normalised to
// 0/1 as the CPU driver does, so the result equals the CPU kd-tree and the numpy reference.
//
// Lists: for k <= 32 in local memory (registers/L1) of the thread; for larger k in a global
// scratch buffer sized to the launched threads (a local array of 256 entries would make the
// runtime reserve ~1.2 GB of local memory for the whole device). No atomics: reruns are
// bit-identical.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "clarion/cuda_check.hpp"
#include "clarion/device_buffer.hpp"
#include "clarion/knn.hpp"
#include "clarion/knn_drivers.hpp"

namespace clarion::knn {
namespace {

using cuda::DeviceBuffer;
using cuda::StreamGuard;
constexpr int kThreads = 128;
constexpr i64 kSharedBytes = 40 * 1024;
constexpr i64 kMaxTileRows = 256;
constexpr i64 kMaxParts = 32;
constexpr i64 kMinPartRows = 256;              // a part scans at least this many rows
constexpr i64 kScratchBytes = i64{256} << 20;  // lists of one launch at most
constexpr i64 kEntryBytes = sizeof(double) + sizeof(i64) + 1;

// The neighbour lists of one launch, [part][query][k] (lengths [part][query]).
struct Lists {
  double* dist = nullptr;
  i64* index = nullptr;
  std::uint8_t* label = nullptr;
  i64* len = nullptr;
  i64 n_q = 0;  // queries of the launch
};

// KCap > 0: the list lives in local arrays of that capacity; with G == 1 the thread votes
// directly, otherwise it stores its list into `lists`. KCap == 0: the list lives in `lists`.
template <int KCap>
__global__ void knn_part_kernel(KnnProblem pb, const double* __restrict__ xa,
                                const std::uint8_t* __restrict__ ya, const double* __restrict__ xd, i64 q0,
                                i64 n_q, i64 n_parts, Lists lists, std::int64_t* __restrict__ positives,
                                std::uint8_t* __restrict__ votes, i64 tile_rows, bool use_shared) {
  extern __shared__ double tile[];
  std::uint8_t* tile_labels = reinterpret_cast<std::uint8_t*>(tile + (use_shared ? tile_rows * pb.m : 0));
  const i64 iq = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 part = blockIdx.y;
  const bool active = iq < n_q;
  const double* q = xd + (active ? q0 + iq : 0) * pb.m;
  const i64 lo = pb.n_a * part / n_parts, hi = pb.n_a * (part + 1) / n_parts;

  constexpr int kLocal = KCap > 0 ? KCap : 1;
  double local_dist[kLocal];
  i64 local_index[kLocal];
  std::uint8_t local_label[kLocal];
  const i64 slot = (part * lists.n_q + (active ? iq : 0)) * pb.k;
  double* dist = KCap > 0 ? local_dist : lists.dist + slot;
  i64* index = KCap > 0 ? local_index : lists.index + slot;
  std::uint8_t* label = KCap > 0 ? local_label : lists.label + slot;
  i64 len = 0;
  const double inf = __longlong_as_double(0x7ff0000000000000LL);

  for (i64 base = lo; base < hi; base += tile_rows) {
    const i64 rows = min(tile_rows, hi - base);
    if (use_shared) {
      __syncthreads();
      for (i64 e = threadIdx.x; e < rows * pb.m; e += blockDim.x) tile[e] = xa[base * pb.m + e];
      for (i64 e = threadIdx.x; e < rows; e += blockDim.x) tile_labels[e] = ya[base + e] != 0 ? 1 : 0;
      __syncthreads();
    }
    if (!active) continue;
    for (i64 r = 0; r < rows; ++r) {
      const double* x = use_shared ? tile + r * pb.m : xa + (base + r) * pb.m;
      const double bound = len == pb.k ? dist[len - 1] : inf;
      const double d = sq_dist_bounded(q, x, pb.m, bound);
      if (d > bound) continue;
      const std::uint8_t lab = use_shared ? tile_labels[r] : (ya[base + r] != 0 ? 1 : 0);
      insert_sorted(dist, index, label, &len, pb.k, d, base + r, lab);
    }
  }
  if (!active) return;
  if (KCap > 0 && n_parts == 1) {
    i64 pos = 0;
    for (i64 j = 0; j < len; ++j) pos += label[j];
    positives[q0 + iq] = pos;
    votes[q0 + iq] = majority_vote(pos, pb.k) ? 1 : 0;
    return;
  }
  if (KCap > 0) {
    for (i64 j = 0; j < len; ++j) {
      lists.dist[slot + j] = dist[j];
      lists.index[slot + j] = index[j];
      lists.label[slot + j] = label[j];
    }
  }
  lists.len[part * lists.n_q + iq] = len;
}

// Per query: the k closest of the parts' sorted lists (a G-way merge under closer()), and the vote.
__global__ void knn_merge_kernel(KnnProblem pb, i64 q0, i64 n_q, i64 n_parts, Lists lists,
                                 std::int64_t* __restrict__ positives, std::uint8_t* __restrict__ votes) {
  const i64 iq = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (iq >= n_q) return;
  i64 head[kMaxParts];
  for (i64 p = 0; p < n_parts; ++p) head[p] = 0;
  i64 pos = 0;
  for (i64 taken = 0; taken < pb.k; ++taken) {
    i64 best = -1;
    double bd = 0.0;
    i64 bi = 0;
    for (i64 p = 0; p < n_parts; ++p) {
      const i64 row = p * n_q + iq;
      if (head[p] >= lists.len[row]) continue;
      const i64 e = row * pb.k + head[p];
      if (best < 0 || closer(lists.dist[e], lists.index[e], bd, bi)) {
        best = p;
        bd = lists.dist[e];
        bi = lists.index[e];
      }
    }
    if (best < 0) break;
    pos += lists.label[(best * n_q + iq) * pb.k + head[best]];
    ++head[best];
  }
  positives[q0 + iq] = pos;
  votes[q0 + iq] = majority_vote(pos, pb.k) ? 1 : 0;
}

template <int KCap>
void launch(const KnnProblem& pb, const double* xa, const std::uint8_t* ya, const double* xd,
            std::int64_t* positives, std::uint8_t* votes, cudaStream_t stream) {
  const i64 row_bytes = pb.m * static_cast<i64>(sizeof(double)) + 1;
  i64 tile_rows = std::min<i64>(kMaxTileRows, kSharedBytes / row_bytes);
  const bool use_shared = tile_rows >= 1;
  if (!use_shared) tile_rows = kMaxTileRows;  // very wide rows: read the reference rows from global memory
  const size_t smem = use_shared ? static_cast<size_t>(tile_rows * pb.m * sizeof(double) + tile_rows) : 0;

  // Parts: enough (query, part) threads to fill the device, each part at least kMinPartRows rows.
  int dev = 0, sms = 1;
  CLARION_CUDA_CHECK(cudaGetDevice(&dev));
  CLARION_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const i64 target = static_cast<i64>(sms) * 2048;
  i64 parts = std::max<i64>(1, (target + pb.n_d - 1) / std::max<i64>(pb.n_d, 1));
  parts = std::min<i64>({parts, kMaxParts, std::max<i64>(1, pb.n_a / kMinPartRows)});
  const bool need_lists = parts > 1 || KCap == 0;
  // Queries per launch: all of them, unless the lists would exceed kScratchBytes.
  i64 batch = pb.n_d;
  if (need_lists)
    batch = std::max<i64>(1, std::min<i64>(pb.n_d, kScratchBytes / (parts * pb.k * kEntryBytes)));
  const i64 entries = need_lists ? parts * batch * pb.k : 0;
  DeviceBuffer<double> dist(entries, stream);
  DeviceBuffer<i64> index(entries, stream);
  DeviceBuffer<std::uint8_t> label(entries, stream);
  DeviceBuffer<i64> len(need_lists ? parts * batch : 0, stream);
  for (i64 q0 = 0; q0 < pb.n_d; q0 += batch) {
    const i64 n_q = std::min(batch, pb.n_d - q0);
    const Lists lists{dist.get(), index.get(), label.get(), len.get(), n_q};
    const i64 blocks = (n_q + kThreads - 1) / kThreads;
    if (blocks > INT_MAX) throw std::invalid_argument("knn: too many query rows for one CUDA launch");
    const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(parts));
    knn_part_kernel<KCap><<<grid, kThreads, smem, stream>>>(pb, xa, ya, xd, q0, n_q, parts, lists, positives,
                                                            votes, tile_rows, use_shared);
    CLARION_CUDA_CHECK(cudaGetLastError());
    if (need_lists) {
      knn_merge_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(pb, q0, n_q, parts, lists,
                                                                               positives, votes);
      CLARION_CUDA_CHECK(cudaGetLastError());
    }
  }
}

}  // namespace

void knn_vote_cuda(const KnnProblem& pb, const double* xa, const std::uint8_t* ya, const double* xd,
                   std::int64_t* positives, std::uint8_t* votes, void* stream) {
  validate(pb);
  if (pb.k > kCudaMaxK)
    throw std::invalid_argument("knn: the CUDA kernel supports k <= " + std::to_string(kCudaMaxK) + ", got " +
                                std::to_string(pb.k));
  auto st = static_cast<cudaStream_t>(stream);
  StreamGuard guard(st);
  if (pb.n_d > 0) {
    if (pb.k <= 8)
      launch<8>(pb, xa, ya, xd, positives, votes, st);
    else if (pb.k <= 32)
      launch<32>(pb, xa, ya, xd, positives, votes, st);
    else
      launch<0>(pb, xa, ya, xd, positives, votes, st);
  }
  guard.sync();
}

}  // namespace clarion::knn
