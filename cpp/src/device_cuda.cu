// Device queries for the CUDA bindings (declared in device.hpp).
#include <cuda_runtime.h>

#include "clarion/cuda_check.hpp"
#include "clarion/device.hpp"

namespace clarion::cuda {

int current_device() {
  int dev = 0;
  CLARION_CUDA_CHECK(cudaGetDevice(&dev));
  return dev;
}

int pointer_device(std::uintptr_t ptr) {
  cudaPointerAttributes attr{};
  CLARION_CUDA_CHECK(cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(ptr)));
  if (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged) return attr.device;
  return -1;
}

void wait_for_stream(std::uintptr_t producer, void* consumer) {
  cudaStream_t p = producer == 1   ? cudaStreamLegacy
                   : producer == 2 ? cudaStreamPerThread
                                   : reinterpret_cast<cudaStream_t>(producer);
  cudaStream_t c = static_cast<cudaStream_t>(consumer);
  // Same stream (0 and 1 both name the legacy default stream here): already ordered.
  if (p == c || (producer == 1 && c == nullptr)) return;
  cudaEvent_t ev = nullptr;
  CLARION_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  const cudaError_t rec = cudaEventRecord(ev, p);
  const cudaError_t wait = rec == cudaSuccess ? cudaStreamWaitEvent(c, ev, 0) : rec;
  cudaEventDestroy(ev);  // released once the wait is satisfied
  CLARION_CUDA_CHECK(wait);
}

}  // namespace clarion::cuda
