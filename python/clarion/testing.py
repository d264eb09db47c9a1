"""Shared hypothesis strategies and helpers for clarion's tests (and for projects that extend it).

Importing this module needs ``hypothesis`` (in the ``test`` extra); ``import clarion`` does not
import it. The strategies deliberately produce the edge cases the kernels must survive: empty
input, one group, every row left out (group -1), zero weights, one label only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["CODE_DTYPES", "CountsCase", "available_backends", "counts_cases"]

#: Integer dtypes accepted as codes.
CODE_DTYPES = (np.int8, np.int16, np.int32, np.int64)


@dataclass
class CountsCase:
    """One generated input of the grouped count kernels."""

    groups: np.ndarray
    labels: np.ndarray
    preds: np.ndarray | None
    weights: np.ndarray | None
    n_groups: int
    n_labels: int
    n_preds: int
    scores: np.ndarray | None = None
    thresholds: np.ndarray | None = None


def available_backends() -> list[tuple[str, str | None]]:
    """``(backend, reason_unavailable)`` for every backend; reason is None when usable."""
    import clarion
    from clarion import _backend

    info = clarion.build_info()
    out: list[tuple[str, str | None]] = [("numpy", None)]
    out.append(("cpu", None if _backend.has_core() else "compiled extension not importable"))
    if not info["cuda_compiled"]:
        out.append(("cuda", "built without CUDA kernels"))
    elif not info["cuda_device"]:
        out.append(("cuda", "no CUDA device"))
    else:
        try:
            import cupy  # noqa: F401
        except ImportError:
            out.append(("cuda", "cupy not installed"))
        else:
            out.append(("cuda", None))
    return out


@st.composite
def counts_cases(
    draw,
    *,
    max_rows: int = 300,
    max_groups: int = 6,
    max_labels: int = 3,
    max_preds: int = 3,
    max_batch: int = 3,
    with_preds: bool | None = None,
    with_weights: bool | None = None,
    with_scores: bool = False,
) -> CountsCase:
    """Random inputs of ``grouped_counts`` (or ``grouped_threshold_counts`` with ``with_scores``)."""
    n = draw(st.integers(0, max_rows))
    G = draw(st.integers(1, max_groups))
    L = draw(st.integers(1, max_labels))
    P = draw(st.integers(1, max_preds))
    dtype = draw(st.sampled_from(CODE_DTYPES))
    drop_all = draw(st.booleans()) and draw(st.booleans())  # about 1 in 4: a big share left out
    groups = draw(hnp.arrays(dtype, n, elements=st.integers(-1 if drop_all else 0, G - 1)))
    if draw(st.booleans()):
        groups[draw(hnp.arrays(np.bool_, n))] = -1
    labels = draw(hnp.arrays(dtype, n, elements=st.integers(0, L - 1)))
    preds = None
    if with_preds if with_preds is not None else draw(st.booleans()):
        B = draw(st.integers(0, max_batch))
        shape = (n,) if B == 0 else (n, B)
        preds = draw(hnp.arrays(dtype, shape, elements=st.integers(0, P - 1)))
    weights = None
    if with_weights if with_weights is not None else draw(st.booleans()):
        wdtype = draw(st.sampled_from([np.float32, np.float64]))
        weights = draw(
            hnp.arrays(
                wdtype,
                n,
                elements=st.one_of(st.just(0.0), st.floats(0, 1e6, allow_nan=False, width=32)),
            )
        )
    scores = thresholds = None
    if with_scores:
        B = draw(st.integers(0, max_batch))
        shape = (n,) if B == 0 else (n, B)
        sdtype = draw(st.sampled_from([np.float32, np.float64]))
        grid = [-np.inf, -1.0, 0.0, 0.25, 0.5, 0.75, 1.0, np.inf]
        scores = draw(hnp.arrays(sdtype, shape, elements=st.one_of(st.sampled_from(grid), st.floats(-2, 2, width=32))))
        thresholds = np.sort(
            np.asarray(
                draw(st.lists(st.one_of(st.sampled_from(grid), st.floats(-2, 2)), max_size=12)), dtype=np.float64
            )
        )
    return CountsCase(groups, labels, preds, weights, G, L, P, scores, thresholds)
