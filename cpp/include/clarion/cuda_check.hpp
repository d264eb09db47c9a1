// CUDA error handling: a failed runtime call throws clarion::CudaError with file and line (mapped
// to the Python exception clarion.CudaError). Never abort: that would take the interpreter down.
#pragma once

#include <stdexcept>
#include <string>

#include "clarion/errors.hpp"

#define CLARION_CUDA_CHECK(call)                                                                         \
  do {                                                                                                   \
    const cudaError_t clarion_status_ = (call);                                                          \
    if (clarion_status_ != cudaSuccess) {                                                                \
      throw ::clarion::CudaError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + #call + \
                                 ": " + cudaGetErrorString(clarion_status_));                            \
    }                                                                                                    \
  } while (0)
