"""Type stubs of the compiled extension (private; use the wrappers in clarion)."""

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
    groups: int, labels: int, preds: int, weights: int, out: int, code_dtype: str, weight_dtype: str,
    n_rows: int, n_batch: int, n_groups: int, n_labels: int, n_preds: int, n_boot: int, seed: int,
    row_offset: int, stream: int,
) -> tuple[int, int, int]: ...
def grouped_threshold_counts_cuda(
    groups: int, labels: int, scores: int, thresholds: int, weights: int, out: int, code_dtype: str,
    score_dtype: str, weight_dtype: str, n_rows: int, n_batch: int, n_thresholds: int, n_groups: int,
    n_labels: int, n_boot: int, seed: int, row_offset: int, stream: int,
) -> tuple[int, int, int]: ...
def compiled_info() -> dict[str, Any]: ...
def cuda_device_count() -> int: ...
