"""Type stubs of the compiled extension (private; use the wrappers in clarion).

Every array argument of a ``*_cpu`` function must be C-contiguous, aligned and in native byte
order, with the exact dtype the kernel reads; anything else (and any size whose arithmetic would
overflow int64, a negative size, an out-of-range index or a length mismatch) raises ValueError
naming the argument. The ``*_cuda`` functions take the same arguments as their ``*_cpu`` twins,
with device arrays instead of numpy arrays and a CUDA stream pointer instead of ``n_threads``: a
device array is any object with ``__cuda_array_interface__`` (a cupy array), or such a description
itself (a dict with ``data``, ``shape``, ``strides``, ``typestr``), or a ``(pointer, shape, strides,
typestr)`` tuple. They run the CPU bindings' checks on those descriptions before any device call;
an absent optional array is ``None`` (a present size-0 array may have pointer 0).
"""

from typing import Any, Protocol

import numpy as np

class CudaError(RuntimeError): ...

class _CudaArray(Protocol):
    @property
    def __cuda_array_interface__(self) -> dict[str, Any]: ...

# A device array argument: an object with __cuda_array_interface__, its description (dict), or
# (pointer, shape, strides, typestr).
DeviceArray = _CudaArray | dict[str, Any] | tuple[int, tuple[int, ...], tuple[int, ...] | None, str]

def grouped_counts_cpu(
    groups: np.ndarray,
    labels: np.ndarray,
    preds: np.ndarray | None,
    weights: np.ndarray | None,
    out: np.ndarray,
    n_groups: int,
    n_labels: int,
    n_preds: int,
    n_boot: int,
    seed: int,
    row_offset: int,
    n_threads: int,
) -> tuple[int, int, int]: ...
def grouped_threshold_counts_cpu(
    groups: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray,
    weights: np.ndarray | None,
    out: np.ndarray,
    n_groups: int,
    n_labels: int,
    n_boot: int,
    seed: int,
    row_offset: int,
    n_threads: int,
) -> tuple[int, int, int]: ...
def grouped_counts_cuda(
    groups: DeviceArray,
    labels: DeviceArray,
    preds: DeviceArray | None,
    weights: DeviceArray | None,
    out: DeviceArray,
    n_groups: int,
    n_labels: int,
    n_preds: int,
    n_boot: int,
    seed: int,
    row_offset: int,
    stream: int,
) -> tuple[int, int, int]: ...
def grouped_threshold_counts_cuda(
    groups: DeviceArray,
    labels: DeviceArray,
    scores: DeviceArray,
    thresholds: DeviceArray,
    weights: DeviceArray | None,
    out: DeviceArray,
    n_groups: int,
    n_labels: int,
    n_boot: int,
    seed: int,
    row_offset: int,
    stream: int,
) -> tuple[int, int, int]: ...
def shap_coalition_plan(
    M: int,
    n_samples: int,
    seed: int,
    paired: bool,
    Z: np.ndarray,
    w: np.ndarray,
    block: np.ndarray,
) -> int: ...
def shap_wls_operator(Z: np.ndarray, w: np.ndarray, L: np.ndarray, c: np.ndarray) -> int: ...
def shap_mask_cpu(
    X: np.ndarray,
    B: np.ndarray,
    Z: np.ndarray,
    col_player: np.ndarray,
    q0: int,
    q1: int,
    out: np.ndarray,
    n_threads: int,
) -> None: ...
def shap_reduce_cpu(F: np.ndarray, pi: np.ndarray, link: int, Y: np.ndarray, n_threads: int) -> None: ...
def shap_apply_cpu(
    Y: np.ndarray,
    base: np.ndarray,
    LT: np.ndarray,
    q0: int,
    q1: int,
    phi: np.ndarray,
    n_threads: int,
) -> None: ...
def shap_mask_cuda(
    X: DeviceArray,
    B: DeviceArray,
    Z: DeviceArray,
    col_player: DeviceArray,
    q0: int,
    q1: int,
    out: DeviceArray,
    stream: int,
) -> None: ...
def shap_reduce_cuda(F: DeviceArray, pi: DeviceArray, link: int, Y: DeviceArray, stream: int) -> None: ...
def shap_apply_cuda(
    Y: DeviceArray,
    base: DeviceArray,
    LT: DeviceArray,
    q0: int,
    q1: int,
    phi: DeviceArray,
    stream: int,
) -> None: ...
def image_mask_cpu(
    image: np.ndarray,
    baseline: np.ndarray,
    segment: np.ndarray,
    Z: np.ndarray,
    s0: int,
    s1: int,
    out: np.ndarray,
    n_threads: int,
) -> None: ...
def image_mask_cuda(
    image: DeviceArray,
    baseline: DeviceArray,
    segment: DeviceArray,
    Z: DeviceArray,
    s0: int,
    s1: int,
    out: DeviceArray,
    stream: int,
) -> None: ...
def compiled_info() -> dict[str, Any]: ...
def cuda_device_count() -> int: ...

# Exact k-NN vote (FlipTest's kernel; cpp/include/clarion/knn_drivers.hpp).
def knn_vote_cpu(
    xa: np.ndarray,
    ya: np.ndarray,
    xd: np.ndarray,
    positives: np.ndarray,
    votes: np.ndarray,
    k: int,
    n_threads: int,
) -> None: ...

# Still raw device pointers (its wrapper is bias/fliptest.py's _vote_cuda).
def knn_vote_cuda(
    xa: int,
    ya: int,
    xd: int,
    positives: int,
    votes: int,
    n_a: int,
    n_d: int,
    m: int,
    k: int,
    stream: int,
) -> None: ...

KNN_CUDA_MAX_K: int

def text_codes_cpu(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
def csv_lines_cpu(data: np.ndarray, need: int, at_eof: bool) -> tuple[np.ndarray, int, int, bool]: ...
def csv_block_cpu(
    data: np.ndarray, kinds: np.ndarray, n_threads: int = 0, part_lines: int = 8192
) -> tuple[int, str, int, list[np.ndarray | tuple[np.ndarray, np.ndarray, list[str]] | None] | None]: ...
def slot_counts_cpu(
    codes: list[np.ndarray], offsets: list[int], sizes: list[int], raw: np.ndarray, n_threads: int
) -> tuple[int, int, int]: ...
def slot_counts_team(
    codes: list[np.ndarray], offsets: list[int], sizes: list[int], raw: np.ndarray, n_threads: int
) -> tuple[int, int, int]: ...
def team_wake(n_threads: int, hold_us: int) -> None: ...
def slot_weighted_counts_cpu(
    codes: list[np.ndarray],
    offsets: list[int],
    sizes: list[int],
    luts: list[np.ndarray],
    map_strides: list[int],
    weights: np.ndarray,
    mapped: np.ndarray,
    raw: np.ndarray,
    n_threads: int,
) -> tuple[int, int, int]: ...
def int_range_cpu(x: np.ndarray) -> tuple[int, int]: ...

class SlotStream:
    """The compiled steady state of a bias Accumulator's stream (clarion/slot_stream.hpp)."""

    def __init__(
        self,
        n_facets: int,
        has_group: bool,
        has_pred: bool,
        weighted: bool,
        K: int,
        V: list[int],
        itemsizes: list[int],
        booleans: list[bool],
        offsets: list[int],
        sizes: list[int],
        codes: list[np.ndarray],
        wmaps: list[np.ndarray],
        facet_slots: list[bool],
        lock: object,
        state: object,
        counts: list[dict],
        kind: str,
        tables: list[np.ndarray],
        vocabs: list[list],
        vocab_sizes: list[int],
        sightings: int,
        sighting_rows: int,
    ) -> None: ...
    def add(self, arrays: list[np.ndarray], weights: np.ndarray | None, n_threads: int) -> int | bytes: ...
    def note(self, key: bytes, n_rows: int) -> int: ...
    def allow(self, arrays: list[np.ndarray], weights: np.ndarray | None, n_threads: int) -> int: ...
    def note_tables(self, raws: list[np.ndarray], n_rows: int) -> int: ...
    def copy_patterns(self, other: SlotStream) -> None: ...
    def fresh(self) -> bool: ...
    @property
    def n_patterns(self) -> int: ...
