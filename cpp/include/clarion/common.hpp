// Shared definitions for code that compiles both as host C++ and as CUDA device code.
// Core headers never include pybind11 or any Python header.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define CLARION_HD __host__ __device__ __forceinline__
#else
#define CLARION_HD inline
#endif

namespace clarion {

using i64 = std::int64_t;
using u64 = std::uint64_t;

// Where a per-row check failed. `what` is one of the kErr* codes of the kernel that reported it;
// `row` is the (local) index of the first offending row, `col` the batch column (or -1).
struct RowError {
  int what = 0;
  i64 row = -1;
  i64 col = -1;
};

inline void keep_first_error(RowError& acc, const RowError& e) {
  if (e.what != 0 && (acc.what == 0 || e.row < acc.row)) acc = e;
}

}  // namespace clarion
