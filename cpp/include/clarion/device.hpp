// Device queries for the CUDA bindings (plain C++ declarations: the bindings are compiled without
// the CUDA headers; the definitions are in cpp/src/device_cuda.cu). Each raises clarion::CudaError
// when the runtime call fails (no driver, no device).
#pragma once

#include <cstdint>

namespace clarion::cuda {

// The ordinal of the device the calling thread uses (cudaGetDevice).
int current_device();

// Where `ptr` lives: the device ordinal for device or managed memory, -1 for host memory that CUDA
// does not know (a numpy buffer handed over as a device pointer).
int pointer_device(std::uintptr_t ptr);

// Makes `consumer` (a cudaStream_t) wait for the work queued so far on `producer`, a stream as the
// CUDA Array Interface gives it (1: the legacy default stream, 2: the per-thread default stream,
// otherwise a cudaStream_t). Stream-ordered: the host does not block.
void wait_for_stream(std::uintptr_t producer, void* consumer);

}  // namespace clarion::cuda
