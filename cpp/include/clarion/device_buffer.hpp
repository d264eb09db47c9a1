// RAII for the CUDA drivers (CUDA translation units only): a device allocation that is freed on
// every path, and a stream guard that synchronises on every path. A driver declares the guard
// first and its buffers after it, so that on a throw (a failed check) the buffers are released
// (stream-ordered) and then the stream is drained: nothing leaks, and no kernel still runs on
// memory the caller is about to reuse. On the normal path the driver calls guard.sync(), which
// raises clarion::CudaError for a fault of any kernel it launched.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "clarion/common.hpp"
#include "clarion/cuda_check.hpp"

namespace clarion::cuda {

// n elements of T in device memory, allocated and freed on `stream` (cudaMallocAsync/FreeAsync).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer(i64 n, cudaStream_t stream) : stream_(stream) {
    if (n > 0) CLARION_CUDA_CHECK(cudaMallocAsync(&ptr_, sizeof(T) * static_cast<size_t>(n), stream));
  }
  ~DeviceBuffer() {
    // A failed free cannot be raised from a destructor; clear it so that it is not reported as a
    // later call's error.
    if (ptr_ != nullptr && cudaFreeAsync(ptr_, stream_) != cudaSuccess) (void)cudaGetLastError();
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  cudaStream_t stream_;
};

// Synchronises `stream` when the scope ends, whatever the path; sync() does it now and raises.
class StreamGuard {
 public:
  explicit StreamGuard(cudaStream_t stream) : stream_(stream) {}
  ~StreamGuard() {
    if (!synced_ && cudaStreamSynchronize(stream_) != cudaSuccess) (void)cudaGetLastError();
  }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;
  void sync() {
    synced_ = true;
    CLARION_CUDA_CHECK(cudaStreamSynchronize(stream_));
    CLARION_CUDA_CHECK(cudaGetLastError());
  }

 private:
  cudaStream_t stream_;
  bool synced_ = false;
};

// Blocks for a grid-stride kernel: a few resident blocks per SM of the current device (as many
// as the kernel's occupancy allows, at most `per_sm_cap`), never more than the work needs.
inline int grid_for(const void* kernel, int threads, size_t smem, i64 work_items, int per_sm_cap = 4) {
  int dev = 0, sms = 1, per_sm = 1;
  CLARION_CUDA_CHECK(cudaGetDevice(&dev));
  CLARION_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CLARION_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
  per_sm = per_sm < 1 ? 1 : (per_sm > per_sm_cap ? per_sm_cap : per_sm);
  const i64 need = (work_items + threads - 1) / threads;
  const i64 cap = static_cast<i64>(sms) * per_sm;
  return static_cast<int>(need < 1 ? 1 : (need < cap ? need : cap));
}

}  // namespace clarion::cuda
