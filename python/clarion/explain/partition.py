"""Partition-level operations of the explainers: what a scheduler runs on each part of the data.

A scheduler that splits the rows into partitions (:mod:`clarion.distributed` on Dask) runs the
explainers piece by piece with these operations and adds no math of its own:

* Kernel SHAP: :func:`explain_partition` explains one partition with a fitted
  :class:`~clarion.explain.KernelShap` (the same plan, so every row's attributions equal the
  one-shot ones); :func:`shap_partition_frame` gives them as a DataFrame with
  :func:`shap_columns`; :func:`empty_values` is the attributions array of no rows.
* partial dependence: :func:`check_pd_arguments`, :func:`pd_column` (a gathered grid column in
  the codec's code space), :func:`pd_grid` (the grid and its display values, from the whole
  column), :func:`pd_partial_sums` (a partition's sums of ``f`` over its rows for every grid,
  divided by the global row count), :func:`pd_add` (their sum) and :func:`pdp_frame` (the table).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clarion import _backend, options
from clarion.explain import _kernels
from clarion.explain._common import bytes_per_row
from clarion.explain._kernel_shap import Explanation, KernelShap
from clarion.explain._model import prediction_function
from clarion.explain._pdp import _grid, check_pd_arguments, feature_columns, pdp_frame
from clarion.explain._tabular import TabularCodec

__all__ = [
    "Explanation",
    "TabularCodec",
    "check_pd_arguments",
    "empty_values",
    "explain_partition",
    "feature_columns",
    "kernel_threads",
    "pd_add",
    "pd_column",
    "pd_grid",
    "pd_partial_sums",
    "pdp_frame",
    "prediction_function",
    "shap_columns",
    "shap_partition_frame",
]


# -- Kernel SHAP ---------------------------------------------------------------------------------


def explain_partition(explainer: KernelShap, part: Any, return_std: bool = False) -> tuple:
    """``(values, std, per-row expected values or None, part, coalitions per row or None)`` of one
    partition (the last: ``num_samples="auto"``)."""
    e = explainer.explain(part, return_std=return_std)
    per_row = np.ndim(e.expected_value) == e.values.ndim - 1
    return e.values, e.std, (np.asarray(e.expected_value) if per_row else None), part, e.row_samples


def empty_values(explainer: KernelShap) -> np.ndarray:
    """The attributions of no rows: ``(0, M)`` for a 1-D model output, else ``(0, M, D)``."""
    if explainer.vector_out:
        return np.zeros((0, explainer.M))
    return np.zeros((0, explainer.M, explainer.n_outputs))


def shap_columns(explainer: KernelShap) -> list[str]:
    """Column names of :func:`shap_partition_frame`: the feature names for a one-output model,
    else ``"output/feature"``."""
    names = [str(n) for n in explainer.feature_names]
    if explainer.vector_out:
        return names
    outs = explainer.output_names
    D = explainer.n_outputs
    outs = list(outs) if outs is not None and len(outs) == D else list(range(D))
    return [f"{o}/{n}" for o in outs for n in names]


def shap_partition_frame(part: Any, explainer: KernelShap, columns: list[str]) -> pd.DataFrame:
    """The local attributions of one partition as a float64 DataFrame (``part``'s index)."""
    v = explainer.explain(part).values
    if v.ndim == 3:
        N, M, D = v.shape
        v = v.transpose(0, 2, 1).reshape(N, D * M)
    index = part.index if isinstance(part, pd.DataFrame) else None
    return pd.DataFrame(np.ascontiguousarray(v), columns=columns, index=index)


# -- partial dependence --------------------------------------------------------------------------


def kernel_threads(n_threads: Any) -> int:
    """The kernels' thread count for an ``n_threads`` option (0 = every core)."""
    return _kernels.n_threads(options.threads(n_threads))


def pd_column(codec: TabularCodec, j: int, s: Any) -> np.ndarray:
    """Column ``j`` of the data (gathered values ``s``) in the codec's code space."""
    return codec.encode_column(j, s)


def pd_grid(
    codec: TabularCodec,
    template: np.ndarray,
    col: np.ndarray,
    j: int,
    grid_resolution: int,
    percentiles: tuple[float, float],
) -> tuple[np.ndarray, list]:
    """The grid of feature ``j`` in code space and its display values, from the whole column
    ``col`` (as :func:`clarion.explain.partial_dependence` builds it)."""
    return _grid(codec, template, col, j, grid_resolution, percentiles)


def pd_partial_sums(
    part: Any, codec: TabularCodec, predict: Any, grids: list, N: int, budget: int, threads: int, backend: str = "auto"
) -> list:
    """Sum over this partition's rows of f(x with x_j := v), divided by the global ``N``, per
    ``(j, grid rows)`` of ``grids``: one ``(G, D)`` array per grid, None for each when the
    partition is empty."""
    Xm = codec.encode(part, "X")
    n, P = Xm.shape
    out = []
    if n == 0:
        return [None] * len(grids)
    impl = _backend.resolve(backend, Xm)
    xp = np
    if impl == "cuda":
        import cupy

        xp = cupy
    D = predict.n_outputs
    rows_per_batch = max(1, budget // bytes_per_row(P, Xm.dtype.itemsize, D, codec.is_frame))
    bg_rows = min(n, rows_per_batch)
    Z = xp.asarray(np.array([[1, 0]], dtype=np.uint8))
    for j, gx in grids:
        G = gx.shape[0]
        gxd = xp.asarray(gx)
        cp = np.ones(P, dtype=np.int32)
        cp[j] = 0
        cp = xp.asarray(cp)
        avg = xp.zeros((G, D))
        pairs = max(1, rows_per_batch // bg_rows)
        for k0 in range(0, n, bg_rows):
            k1 = min(n, k0 + bg_rows)
            pi = xp.full(k1 - k0, 1.0 / N)
            for q0 in range(0, G, pairs):
                q1 = min(G, q0 + pairs)
                syn = _kernels.mask(impl, gxd, Xm[k0:k1], Z, cp, q0, q1, threads)
                F = predict(codec.decode(syn), where=f" (partial dependence of {codec.columns[j]!r})")
                avg[q0:q1] += _kernels.reduce(impl, F, pi, 0, threads)
        out.append(avg.get() if impl == "cuda" else np.asarray(avg))
    return out


def pd_add(items: list) -> list | None:
    """The sum of :func:`pd_partial_sums` results (None entries skipped)."""
    items = [it for it in items if it is not None]
    if not items:
        return None
    out = [None if a is None else a.copy() for a in items[0]]
    for it in items[1:]:
        for g, a in enumerate(it):
            if a is not None:
                out[g] = a.copy() if out[g] is None else out[g] + a
    return out
