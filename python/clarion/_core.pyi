"""Type stubs of the compiled extension (private; use the wrappers in clarion).

Every array argument of a ``*_cpu`` function must be C-contiguous, aligned and in native byte
order, with the exact dtype the kernel reads; anything else (and any size whose arithmetic would
overflow int64, a negative size, an out-of-range index or a length mismatch) raises ValueError
naming the argument. The ``*_cuda`` functions take device pointers and explicit presence flags
(a size-0 cupy array has pointer 0, so 0 never means "absent").
"""

from typing import Any

import numpy as np

class CudaError(RuntimeError): ...

def grouped_counts_cpu(
    groups: np.ndarray, labels: np.ndarray, preds: np.ndarray | None, weights: np.ndarray | None,
    out: np.ndarray, n_groups: int, n_labels: int, n_preds: int, n_boot: int, seed: int,
    row_offset: int, n_threads: int,
) -> tuple[int, int, int]: ...
def grouped_threshold_counts_cpu(
    groups: np.ndarray, labels: np.ndarray, scores: np.ndarray, thresholds: np.ndarray,
    weights: np.ndarray | None, out: np.ndarray, n_groups: int, n_labels: int, n_boot: int, seed: int,
    row_offset: int, n_threads: int,
) -> tuple[int, int, int]: ...
def grouped_counts_cuda(
    groups: int, labels: int, preds: int, weights: int, out: int, has_preds: bool, has_weights: bool,
    code_dtype: str, weight_dtype: str, n_rows: int, n_batch: int, n_groups: int, n_labels: int, n_preds: int, n_boot: int, seed: int,
    row_offset: int, stream: int,
) -> tuple[int, int, int]: ...
def grouped_threshold_counts_cuda(
    groups: int, labels: int, scores: int, thresholds: int, weights: int, out: int, has_weights: bool,
    code_dtype: str, score_dtype: str, weight_dtype: str, n_rows: int, n_batch: int, n_thresholds: int, n_groups: int,
    n_labels: int, n_boot: int, seed: int, row_offset: int, stream: int,
) -> tuple[int, int, int]: ...
def shap_coalition_plan(
    M: int, n_samples: int, seed: int, paired: bool, Z: np.ndarray, w: np.ndarray, block: np.ndarray,
) -> int: ...
def shap_wls_operator(Z: np.ndarray, w: np.ndarray, L: np.ndarray, c: np.ndarray) -> int: ...
def shap_mask_cpu(
    X: np.ndarray, B: np.ndarray, Z: np.ndarray, col_player: np.ndarray, q0: int, q1: int, out: np.ndarray,
    n_threads: int,
) -> None: ...
def shap_reduce_cpu(F: np.ndarray, pi: np.ndarray, link: int, Y: np.ndarray, n_threads: int) -> None: ...
def shap_apply_cpu(
    Y: np.ndarray, base: np.ndarray, LT: np.ndarray, q0: int, q1: int, phi: np.ndarray, n_threads: int,
) -> None: ...
def shap_mask_cuda(
    X: int, B: int, Z: int, col_player: int, out: int, dtype: str, P: int, M: int, K: int, S: int, q0: int,
    q1: int, stream: int,
) -> None: ...
def shap_reduce_cuda(F: int, pi: int, Y: int, R: int, K: int, D: int, link: int, stream: int) -> None: ...
def shap_apply_cuda(
    Y: int, base: int, LT: int, phi: int, S: int, Mo: int, D: int, q0: int, q1: int, stream: int,
) -> None: ...
def compiled_info() -> dict[str, Any]: ...
def cuda_device_count() -> int: ...

# Exact k-NN vote (FlipTest's kernel; cpp/include/clarion/knn_drivers.hpp).
def knn_vote_cpu(
    xa: np.ndarray, ya: np.ndarray, xd: np.ndarray, positives: np.ndarray, votes: np.ndarray, k: int,
    n_threads: int,
) -> None: ...
def knn_vote_cuda(
    xa: int, ya: int, xd: int, positives: int, votes: int, n_a: int, n_d: int, m: int, k: int, stream: int,
) -> None: ...

KNN_CUDA_MAX_K: int
