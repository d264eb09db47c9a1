"""FlipTest (FT): the counterfactual k-nearest-neighbour bias metric, on an exact compiled kernel.

Every other Clarify bias metric is a function of counts; FlipTest asks, for each member of the
sensitive group d, what the model predicted for its nearest members of group a. The neighbour
search is exact (the same neighbours as a brute-force search) on every backend:

* ``cpu``: a kd-tree over facet a, built once in parallel, queried in parallel (GIL released);
* ``cuda``: tiled brute force, one GPU thread per facet-d row (cupy inputs);
* ``numpy``: the brute-force reference in :mod:`clarion._reference`.

All three use the same float64 distance arithmetic (``cpp/include/clarion/knn.hpp``), so they
agree bit for bit, and the same tie rule: **equal distances are broken by the lower facet-a row
index** (the order of ``features_a``). scikit-learn's ``KNeighborsClassifier``, which smclarify
uses, leaves the order of equidistant neighbours to its tree; on data without distance ties the
results are identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from clarion import _backend, _counts, _reference, options

__all__ = ["FlipTestResult", "flip_test"]

# Message templates (tests import and match these).
MSG_NDIM = "{arg} must be 2-D (rows x feature columns), got an array of shape {shape}"
MSG_NO_COLUMNS = "{arg} has no feature columns; FlipTest needs at least one numeric feature"
MSG_COLUMNS = "features_d has {got} feature columns but features_a has {want}"
MSG_DTYPE = "{arg}: FlipTest supports numeric or bool features only, got dtype {dtype}{where}"
MSG_NONFINITE = "{arg}: non-finite value {value} at row {row}, column {col}"
MSG_PRED_NDIM = "{arg} must be 1-D, got an array of shape {shape}"
MSG_PRED_LENGTH = "{arg} has {got} entries but {features} has {n} rows"
MSG_PRED_DTYPE = "{arg} must be boolean (or 0/1 integers), got dtype {dtype}"
MSG_PRED_VALUE = "{arg}: value {value!r} at row {row} is not a boolean (0/1)"
MSG_EMPTY_D = "features_d: facet d (the sensitive group) has no rows; FlipTest is undefined"
MSG_EMPTY_A = "features_a: facet a (the reference group) has no rows; FlipTest is undefined"
MSG_K = "k must be an integer in [1, n_a = {n_a}], got {k!r}"

#: smclarify's rule for the number of neighbours (``bias/metrics/constants.py``).
FT_DEFAULT_NEIGHBOR = 5
FT_MIN_NEIGHBOR = 1
FT_SAMPLES_COUNT_THRESHOLD = 9


@dataclass(frozen=True)
class FlipTestResult:
    """The outcome of :func:`flip_test`.

    Attributes
    ----------
    value : float
        ``(f_plus - f_minus) / n_d``, in ``[-1, 1]``.
    f_plus : int
        Facet-d rows the model predicts positive while their neighbours' vote is negative.
    f_minus : int
        Facet-d rows the model predicts negative while their neighbours' vote is positive.
    k : int
        Neighbours used.
    n_a, n_d : int
        Rows of facet a (the reference set) and facet d (the queries).
    """

    value: float
    f_plus: int
    f_minus: int
    k: int
    n_a: int
    n_d: int


def default_k(n_a: int) -> int:
    """smclarify's neighbour count: 5 when facet a has more than 9 rows, else 1."""
    return FT_DEFAULT_NEIGHBOR if n_a > FT_SAMPLES_COUNT_THRESHOLD else FT_MIN_NEIGHBOR


def _xp(a: Any):
    if _backend.is_device_array(a):
        import cupy  # optional dependency, only for device arrays

        return cupy
    return np


def _features(x: Any, arg: str) -> tuple[Any, list[Any] | None]:
    """float64 C-contiguous (n, M) array, and the column names when x is a DataFrame."""
    names = None
    if hasattr(x, "columns") and hasattr(x, "dtypes") and hasattr(x, "to_numpy"):  # pandas DataFrame
        names = list(x.columns)
        for name, dtype in zip(names, x.dtypes):
            if getattr(dtype, "kind", "O") not in "biuf":
                raise ValueError(MSG_DTYPE.format(arg=arg, dtype=dtype, where=f" in column {name!r}"))
        x = x.to_numpy(dtype=np.float64, na_value=np.nan)
    elif not (_backend.is_device_array(x) or isinstance(x, np.ndarray)):
        x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(MSG_NDIM.format(arg=arg, shape=tuple(x.shape)))
    if x.dtype.kind not in "biuf":
        raise ValueError(MSG_DTYPE.format(arg=arg, dtype=x.dtype, where=""))
    return _xp(x).ascontiguousarray(x, dtype=np.float64), names


def _check_finite(x: Any, arg: str, names: list[Any] | None) -> None:
    xp = _xp(x)
    finite = xp.isfinite(x)
    if bool(finite.all()):
        return
    bad = ~finite
    row = int(bad.any(axis=1).argmax())
    col = int(bad[row].argmax())
    value = float(x[row, col])
    col_str = f"{col} ({names[col]!r})" if names is not None else str(col)
    raise ValueError(MSG_NONFINITE.format(arg=arg, value=value, row=row, col=col_str))


def _predictions(p: Any, arg: str, features: str, n: int):
    """uint8 0/1 vector of length n."""
    if hasattr(p, "to_numpy") and not _backend.is_device_array(p):  # pandas / pyarrow
        dtype = getattr(p, "dtype", None)
        if dtype is not None and not isinstance(dtype, np.dtype) and getattr(dtype, "kind", "O") in "biuf":
            p = p.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable boolean/Int64: NA -> NaN, an error below
        else:
            p = p.to_numpy()
    elif not (_backend.is_device_array(p) or isinstance(p, np.ndarray)):
        p = np.asarray(p)
    xp = _xp(p)
    if p.ndim != 1:
        raise ValueError(MSG_PRED_NDIM.format(arg=arg, shape=tuple(p.shape)))
    if p.shape[0] != n:
        raise ValueError(MSG_PRED_LENGTH.format(arg=arg, got=p.shape[0], features=features, n=n))
    kind = p.dtype.kind
    if kind == "b":
        return xp.ascontiguousarray(p, dtype=np.uint8)
    if kind not in "iuf":
        raise ValueError(MSG_PRED_DTYPE.format(arg=arg, dtype=p.dtype))
    bad = ~((p == 0) | (p == 1))
    if bool(bad.any()):
        row = int(bad.argmax())
        raise ValueError(MSG_PRED_VALUE.format(arg=arg, value=p[row].item(), row=row))
    return xp.ascontiguousarray(p, dtype=np.uint8)


def _resolve_k(k: Any, n_a: int) -> int:
    if k is None:
        return default_k(n_a)
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_a:
        raise ValueError(MSG_K.format(n_a=n_a, k=k))
    return int(k)


def _vote_cuda(xa, ya, xd, k: int):
    import cupy

    core = _backend.core()
    xa, ya, xd = (cupy.ascontiguousarray(a) for a in (xa, ya, xd))  # the kernel's layout
    positives = cupy.empty(xd.shape[0], dtype=cupy.int64)
    votes = cupy.empty(xd.shape[0], dtype=cupy.uint8)
    # the checked descriptor form: dtype, shape, strides, device and stream read from each array's
    # __cuda_array_interface__ (the same checks as knn_vote_cpu)
    core.knn_vote_cuda(xa, ya, xd, positives, votes, k, int(cupy.cuda.get_current_stream().ptr))
    return positives, votes


def flip_test(
    features_a: Any,
    features_d: Any,
    pred_a: Any,
    pred_d: Any,
    *,
    k: int | None = None,
    backend: Literal["auto", "numpy", "cpu", "cuda"] = "auto",
    n_threads: int | None = None,
) -> FlipTestResult:
    r"""Counterfactual FlipTest (Clarify's FT), with an exact k-nearest-neighbour vote.

    Each facet-d row :math:`x` gets the majority vote :math:`v(x)` of the model's predictions on
    its :math:`k` nearest facet-a rows (Euclidean distance on the raw features, no scaling), and

    .. math::

        F_+ = \#\{x \in d : \hat y(x) = 1,\ v(x) = 0\},\qquad
        F_- = \#\{x \in d : \hat y(x) = 0,\ v(x) = 1\},\qquad
        \mathrm{FT} = \frac{F_+ - F_-}{n_d} \in [-1, 1].

    The sign is smclarify's (and so Clarify's): FT > 0 means the model treats members of d
    *better* than it treated their nearest members of a (the Clarify documentation words F+/F-
    the other way round). The ideal value is 0.

    Parameters
    ----------
    features_a : array-like or DataFrame, shape (n_a, M)
        Features of the facet-a rows (the reference group), numeric or bool.
    features_d : array-like or DataFrame, shape (n_d, M)
        Features of the facet-d rows (the sensitive group), same columns.
    pred_a, pred_d : array-like of bool, shape (n_a,) and (n_d,)
        The model's predicted label is the positive one (0/1 integers are accepted).
    k : int, optional
        Neighbours; default is smclarify's rule, 5 when ``n_a > 9`` else 1. The vote is positive
        only with a strict majority (an even split votes negative, as scikit-learn's does).
    backend : {"auto", "numpy", "cpu", "cuda"}
        See :mod:`clarion._backend`; cupy inputs run on the GPU (``k`` up to 256 there, larger
        ``k`` is computed on the host and logged).
    n_threads : int, optional
        CPU threads: None (``CLARION_NUM_THREADS``, else all cores), -1 (all cores) or a positive
        integer (:func:`clarion.options.threads`).

    Returns
    -------
    FlipTestResult

    Raises
    ------
    ValueError
        Features that are not 2-D, not numeric/bool, with different column counts, with NaN or
        ±inf (the message names the argument, the first offending row and column, and the
        value); predictions that are not 1-D 0/1 values or whose length differs from the feature
        rows; an empty facet d or facet a (FT is undefined there: raised, as smclarify does,
        rather than returned as NaN); ``k`` outside ``[1, n_a]``.

    Notes
    -----
    Neighbours are exact: squared distances are summed over columns left to right in float64
    with every operation rounded on its own, and equal distances are broken by the lower row
    index of ``features_a``. smclarify (scikit-learn's kd/ball tree) may order equidistant
    neighbours differently, so results can differ from smclarify only when distances tie.
    """
    xa, names_a = _features(features_a, "features_a")
    xd, names_d = _features(features_d, "features_d")
    n_a, n_d = xa.shape[0], xd.shape[0]
    if xa.shape[1] == 0:
        raise ValueError(MSG_NO_COLUMNS.format(arg="features_a"))
    if xd.shape[1] != xa.shape[1]:
        raise ValueError(MSG_COLUMNS.format(got=xd.shape[1], want=xa.shape[1]))
    ya = _predictions(pred_a, "pred_a", "features_a", n_a)
    yd = _predictions(pred_d, "pred_d", "features_d", n_d)
    if n_d == 0:
        raise ValueError(MSG_EMPTY_D)
    if n_a == 0:
        raise ValueError(MSG_EMPTY_A)
    _check_finite(xa, "features_a", names_a)
    _check_finite(xd, "features_d", names_d)
    k = _resolve_k(k, n_a)

    impl = _backend.resolve(backend, xa, xd, ya, yd)
    if impl == "cuda" and k > int(_backend.core().KNN_CUDA_MAX_K):
        _backend._log_once(f"clarion: FlipTest with k > {_backend.core().KNN_CUDA_MAX_K} runs on the CPU")
        impl = "cpu"
    if impl != "cuda":
        xa, xd, ya, yd = (_to_host(a) for a in (xa, xd, ya, yd))

    if impl == "numpy":
        _, votes = _reference.knn_vote(xa, ya, xd, k)
        votes = votes.astype(np.uint8)
    elif impl == "cpu":
        threads = options.threads(n_threads)  # None: CLARION_NUM_THREADS or all cores; -1: all cores
        threads = _counts.env_threads() if threads is None else max(threads, 0)
        positives = np.empty(n_d, dtype=np.int64)
        votes = np.empty(n_d, dtype=np.uint8)
        xa, ya, xd = (np.require(a, requirements=["C", "A"]) for a in (xa, ya, xd))  # the kernel's layout
        _backend.core().knn_vote_cpu(xa, ya, xd, positives, votes, k, threads)
    else:
        _, votes = _vote_cuda(xa, ya, xd, k)

    f_plus = int(((yd == 1) & (votes == 0)).sum())
    f_minus = int(((yd == 0) & (votes == 1)).sum())
    return FlipTestResult(value=(f_plus - f_minus) / n_d, f_plus=f_plus, f_minus=f_minus, k=k, n_a=n_a, n_d=n_d)


def _to_host(a: Any) -> np.ndarray:
    if _backend.is_device_array(a):
        import cupy

        return cupy.asnumpy(a)
    return a
