#pragma once

#include <stdexcept>

namespace clarion {

// A CUDA runtime failure; what() holds the file, line, call and CUDA's message.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace clarion
