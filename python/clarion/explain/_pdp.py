"""Partial dependence through the batched masking path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from clarion import _backend, dispatch, options
from clarion.explain import _kernels
from clarion.explain._common import MSG_INDEX, bytes_per_row
from clarion.explain._model import prediction_function
from clarion.explain._tabular import _NUM, TabularCodec, densify

__all__ = ["partial_dependence"]


def _grid(
    codec: TabularCodec,
    template: np.ndarray,
    col: np.ndarray,
    j: int,
    grid_resolution: int,
    percentiles: tuple[float, float],
):
    """Grid in code space and its display values.

    Numeric column (Clarify's rule): the centres of ``grid_resolution`` equally wide buckets over
    the column's range (between its ``percentiles`` quantiles; the default (0, 1) is min..max),
    missing values ignored; a constant column gives its one value. An integer (or bool) column is
    only ever given integers: the centres are rounded half up and repeated values dropped.
    Categorical / string / bool-dtype column: every value present, in the dtype's order."""
    kind = codec.kinds[j] if codec.is_frame else _NUM
    if kind == _NUM:
        vals = col[~np.isnan(col)]
        if vals.size == 0:
            return np.empty(0), []
        lo, hi = (float(v) for v in np.quantile(vals, percentiles))
        grid = lo + (hi - lo) * (np.arange(grid_resolution) + 0.5) / grid_resolution
        integer = pd.api.types.is_integer_dtype(codec.dtypes[j]) if codec.is_frame else codec.orig_dtype.kind in "biu"
        if integer:
            grid = np.floor(grid + 0.5)
        grid = np.unique(grid) if hi > lo or integer else grid[:1]
        if codec.is_frame:
            shown = _show(codec, template, j, grid)
        elif codec.orig_dtype.kind in "biu":
            shown = grid.astype(codec.orig_dtype).tolist()
        else:
            shown = grid.tolist()
        return grid, shown
    codes = np.unique(col[col >= 0])
    cats = codec.categories[j]
    if kind == "cat":  # follow the dtype's category order
        order = {v: i for i, v in enumerate(codec.dtypes[j].categories)}
        codes = np.array(sorted(codes, key=lambda c: order.get(cats[int(c)], len(order))), dtype=np.float64)
    codes = codes.astype(np.float64)
    return codes, (_show(codec, template, j, codes) if codes.size else [])


def check_pd_arguments(grid_resolution: Any, percentiles: Any) -> tuple[int, tuple[float, float]]:
    """``grid_resolution`` (an integer >= 2) and ``percentiles`` (``0 <= lo < hi <= 1``), checked."""
    if isinstance(grid_resolution, bool) or not isinstance(grid_resolution, (int, np.integer)) or grid_resolution < 2:
        raise ValueError(f"grid_resolution must be an integer >= 2, got {grid_resolution!r}")
    lo, hi = percentiles
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"percentiles must satisfy 0 <= lo < hi <= 1, got {percentiles!r}")
    return int(grid_resolution), (float(lo), float(hi))


def _show(codec: TabularCodec, template: np.ndarray, j: int, grid: np.ndarray) -> list[Any]:
    """Grid values of column j in the column's own type (decoded through a valid row)."""
    rows = np.tile(template, (grid.size, 1))
    rows[:, j] = grid
    return codec.decode(rows)[codec.columns[j]].tolist()


def partial_dependence(
    model: Any,
    X: Any,
    features: Any,
    *,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.0, 1.0),
    memory_budget: int | str = "1GiB",
    n_threads: int | None = None,
    backend: str = "auto",
    n_jobs: int | None = None,
) -> pd.DataFrame:
    r"""Partial dependence of the model's outputs on each of ``features`` (Clarify's PDP).

    .. math::

        \mathrm{PD}_j(v) = \frac1N \sum_{n=1}^N f(x_n \text{ with } x_{nj} := v)

    for every grid value ``v`` of feature ``j``: for a numeric feature, as Clarify, the centres of
    ``grid_resolution`` equally wide buckets over the feature's range (min..max by default;
    rounded half up to integers, repeats dropped, for an integer column, so the model only sees
    values of the column's type); for a categorical / string / bool feature, every value present
    in ``X``. The rows ``x_n`` with the feature replaced are written by the same masking
    kernel as Kernel SHAP, straight into model-sized batches (one model call per batch, never per
    grid point or row), and averaged by the same reduction kernel.

    Parameters
    ----------
    model : callable or scikit-learn estimator
        As for :class:`KernelShap` (``predict_proba`` for classifiers).
    X : ndarray, DataFrame or scipy.sparse matrix, shape (N, P)
        Data over which the model output is averaged; a DataFrame keeps its dtypes; a sparse
        matrix is densified (it must fit in ``memory_budget`` dense). A Dask
        DataFrame / array is summed partition by partition on its workers
        (:func:`clarion.distributed.partial_dependence`).
    features : column name / index, or a list of them
    grid_resolution : int, default 20
        Number of buckets of a numeric feature's range, i.e. of grid points (>= 2; fewer for an
        integer column with a narrow range, or a constant column).
    percentiles : (float, float), default (0.0, 1.0)
        The range that is cut into buckets: from the ``lo`` to the ``hi`` quantile of the
        feature, ``0 <= lo < hi <= 1`` (the default is Clarify's: the whole range).
    memory_budget, n_threads, backend
        As for :class:`KernelShap`.
    n_jobs : int, optional
        Deprecated name of ``n_threads`` (:class:`DeprecationWarning`).

    Returns
    -------
    DataFrame
        Tidy: columns ``feature``, ``value`` (grid value, in the column's own type), ``output``
        (class label or output index) and ``average`` (the partial dependence), one row per
        (feature, grid value, output).
    """
    n_threads = options.threads_alias(n_threads, n_jobs)
    if dispatch.is_partitioned(X):  # partial sums per partition on the workers (clarion.distributed)
        return dispatch.handler("explain.partial_dependence")(
            model,
            X,
            features,
            grid_resolution=grid_resolution,
            percentiles=percentiles,
            memory_budget=memory_budget,
            n_threads=n_threads,
            backend=backend,
        )
    grid_resolution, (lo, hi) = check_pd_arguments(grid_resolution, percentiles)
    predict = prediction_function(model)
    budget = options.byte_size(memory_budget)
    threads = _kernels.n_threads(n_threads)
    X = densify(X, "X", budget)
    codec = TabularCodec(X, "X")
    Xm = codec.encode(X, "X")
    N, P = Xm.shape
    if N == 0:
        raise ValueError("X has no rows; partial dependence averages over the rows of X")
    impl = _backend.resolve(backend, Xm)
    xp = np
    if impl == "cuda":
        import cupy

        xp = cupy
    cols = feature_columns(features, codec.columns)

    host = Xm.get() if impl == "cuda" else Xm
    first = predict(codec.decode(Xm[:1]), where=" (on X row 0)")
    D = first.shape[1]
    outputs = (
        predict.output_names if predict.output_names is not None and len(predict.output_names) == D else list(range(D))
    )
    rows_per_batch = max(1, budget // bytes_per_row(P, Xm.dtype.itemsize, D, codec.is_frame))
    bg_rows = min(N, rows_per_batch)
    Z = xp.asarray(np.array([[1, 0]], dtype=np.uint8))
    frames: list[pd.DataFrame] = []
    for j in cols:
        grid, shown = _grid(codec, host[:1], host[:, j], j, int(grid_resolution), (float(lo), float(hi)))
        G = grid.size
        if G == 0:
            continue
        gx = np.tile(host[:1], (G, 1)).astype(host.dtype)
        gx[:, j] = grid
        gx = xp.asarray(gx)
        col_player = np.ones(P, dtype=np.int32)
        col_player[j] = 0
        col_player = xp.asarray(col_player)
        avg = xp.zeros((G, D))
        pairs_per_batch = max(1, rows_per_batch // bg_rows)
        for k0 in range(0, N, bg_rows):  # background slices only when N rows exceed the budget
            k1 = min(N, k0 + bg_rows)
            B = Xm[k0:k1]
            pi = xp.full(k1 - k0, 1.0 / N)
            for q0 in range(0, G, pairs_per_batch):
                q1 = min(G, q0 + pairs_per_batch)
                syn = _kernels.mask(impl, gx, B, Z, col_player, q0, q1, threads)
                F = predict(codec.decode(syn), where=f" (partial dependence of {codec.columns[j]!r})")
                del syn
                avg[q0:q1] += _kernels.reduce(impl, F, pi, 0, threads)
        avg = avg.get() if impl == "cuda" else avg
        frames.append(pdp_frame(codec.columns[j], shown, outputs, avg))
    if not frames:
        return pd.DataFrame({"feature": [], "value": [], "output": [], "average": []})
    return pd.concat(frames, ignore_index=True)


def feature_columns(features: Any, columns: Sequence[Any]) -> list[int]:
    """Positions in ``columns`` of ``features`` (one name or position, or a sequence of them)."""
    if isinstance(features, (str, int, np.integer)) or not isinstance(features, Sequence):
        features = [features]
    columns = list(columns)
    names = [str(c) for c in columns]
    cols = []
    for f in features:
        if f in columns:
            cols.append(columns.index(f))
        elif isinstance(f, str) and f in names:
            cols.append(names.index(f))
        elif isinstance(f, (int, np.integer)) and not isinstance(f, bool):
            if not 0 <= f < len(columns):
                raise ValueError(
                    MSG_INDEX.format(arg="features", index=f, n=len(columns), what="columns", last=len(columns) - 1)
                )
            cols.append(int(f))
        else:
            raise ValueError(f"features: unknown column {f!r} (columns: {columns})")
    return cols


def pdp_frame(column: Any, shown: Sequence[Any], outputs: Sequence[Any], avg: Any) -> pd.DataFrame:
    """Tidy rows (feature, value, output, average) of one feature's ``G x D`` grid averages."""
    G, D = len(shown), len(outputs)
    values = np.empty(G, dtype=object)
    values[:] = list(shown)
    outs = np.empty(D, dtype=object)
    outs[:] = list(outputs)
    return pd.DataFrame(
        {
            "feature": np.full(G * D, column, dtype=object),
            "value": np.repeat(values, D),
            "output": np.tile(outs, G),
            "average": np.asarray(avg, dtype=np.float64).reshape(G * D),
        }
    )
