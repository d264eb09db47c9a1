"""Public grouped-count kernels: argument checking, dispatch, and result shaping."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from clarion import _backend, _reference
from clarion._reference import ERR_GROUPS, ERR_LABELS, ERR_PREDS, ERR_SCORES, ERR_WEIGHTS

__all__ = ["grouped_counts", "grouped_threshold_counts"]

# Message templates (tests import and match these).
MSG_NOT_INTEGER = "{arg} must hold integer codes (int8/16/32/64), got dtype {dtype}"
MSG_NOT_FLOAT = "{arg} must be float32 or float64, got dtype {dtype}"
MSG_NDIM = "{arg} must be {want}, got an array of shape {shape}"
MSG_LENGTH = "{arg} has {got} rows but groups has {n}"
MSG_CODE_RANGE = "{arg}: code {value} at row {row}{col} is outside [0, {n}){hint}"
MSG_WEIGHT = "weights: value {value} at row {row} is not a finite number >= 0"
MSG_SCORE_NAN = "scores: NaN at row {row}{col}"
MSG_THRESHOLDS_NAN = "thresholds: NaN at position {pos}"
MSG_THRESHOLDS_ORDER = (
    "thresholds must be sorted ascending: thresholds[{pos}] = {value} < thresholds[{prev}] = {prev_value}"
)
MSG_SIZE = "{arg} must be a non-negative integer, got {value!r}"


def _xp(a: Any):
    if _backend.is_device_array(a):
        import cupy  # optional dependency, only on device arrays

        return cupy
    return np


def _native(a: Any, dtype: Any = None):
    """``a`` as the compiled kernels read it: C-contiguous, aligned, native byte order.

    A byte-swapped (``>f8`` on a little-endian machine), strided, broadcast or misaligned array is
    copied; an array that already has that layout is returned as is.
    """
    dtype = np.dtype(a.dtype if dtype is None else dtype)
    dtype = dtype.newbyteorder("=") if not dtype.isnative else dtype
    if _backend.is_device_array(a):
        import cupy

        return cupy.ascontiguousarray(a, dtype=dtype)
    return np.require(a, dtype=dtype, requirements=["C", "A"])


def _as_array(a: Any, arg: str):
    if a is None:
        return None
    if _backend.is_device_array(a) or isinstance(a, np.ndarray):
        return a
    if hasattr(a, "to_numpy"):  # pandas / pyarrow
        return np.asarray(a.to_numpy())
    arr = np.asarray(a)
    if arr.dtype == object:
        raise TypeError(MSG_NOT_INTEGER.format(arg=arg, dtype=arr.dtype))
    return arr


def _as_codes(a: Any, arg: str, ndims: tuple[int, ...]):
    arr = _as_array(a, arg)
    if arr.ndim not in ndims:
        want = "1-D" if ndims == (1,) else "1-D or 2-D"
        raise ValueError(MSG_NDIM.format(arg=arg, want=want, shape=tuple(arr.shape)))
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.int8)
    if kind == "u":
        if arr.dtype.itemsize == 8:
            over = arr > np.iinfo(np.int64).max
            big = _xp(arr).flatnonzero(over.any(axis=1) if over.ndim == 2 else over)
            if big.size:
                row = int(big[0])
                raise ValueError(
                    MSG_CODE_RANGE.format(arg=arg, value=int(arr[row].max()), row=row, col="", n="2**63", hint="")
                )
            return arr.astype(np.int64)
        return arr.astype({1: np.int16, 2: np.int32, 4: np.int64}[arr.dtype.itemsize])
    if kind != "i":
        raise TypeError(MSG_NOT_INTEGER.format(arg=arg, dtype=arr.dtype))
    return arr


def _as_floats(a: Any, arg: str, ndims: tuple[int, ...], n: int):
    arr = _as_array(a, arg)
    if arr.ndim not in ndims:
        want = "1-D" if ndims == (1,) else "1-D or 2-D"
        raise ValueError(MSG_NDIM.format(arg=arg, want=want, shape=tuple(arr.shape)))
    if arr.shape[0] != n:
        raise ValueError(MSG_LENGTH.format(arg=arg, got=arr.shape[0], n=n))
    kind = arr.dtype.kind
    if kind in "iub" and arg == "weights":
        arr = arr.astype(np.float64)
    elif kind != "f" or arr.dtype.itemsize not in (4, 8):
        raise TypeError(MSG_NOT_FLOAT.format(arg=arg, dtype=arr.dtype))
    return _native(arr)


def _size(value: Any, arg: str, codes) -> int:
    """n_groups/n_labels/n_preds: given, or 1 + the largest code (0 for empty input)."""
    if value is None:
        if codes.size == 0:
            return 0
        return max(int(codes.max()) + 1, 0)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(MSG_SIZE.format(arg=arg, value=value))
    return int(value)


MSG_ENV_THREADS = "CLARION_NUM_THREADS must be an integer >= 0 (0: all cores), got {value!r}"


def env_threads() -> int:
    """``CLARION_NUM_THREADS`` (0, all cores, when unset), checked."""
    env = os.environ.get("CLARION_NUM_THREADS", "").strip()
    if not env:
        return 0
    try:
        value = int(env)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(MSG_ENV_THREADS.format(value=env))
    return value


def _n_threads(n_threads: int | None) -> int:
    if n_threads is None:
        return env_threads()
    if not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
        raise ValueError(MSG_SIZE.format(arg="n_threads", value=n_threads).replace("non-negative", "positive"))
    return int(n_threads)


def _seed(seed: int | None, n_bootstrap: int) -> int:
    if n_bootstrap and seed is None:
        raise ValueError("seed is required with n_bootstrap > 0 (the replicates are keyed on it)")
    if seed is None:
        return 0
    if not isinstance(seed, (int, np.integer)) or seed < 0 or seed >= 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def _raise_row_error(err: tuple[int, int, int], arrays: dict[str, Any], sizes: dict[str, int]) -> None:
    what, row, col = (int(x) for x in err)
    if what == 0:
        return
    colstr = f" (column {col})" if col >= 0 and arrays.get("batched") else ""

    def value_at(name: str):
        a = arrays[name]
        v = a[row] if a.ndim == 1 else a[row, col]
        return v.item() if hasattr(v, "item") else v

    if what in (ERR_GROUPS, ERR_LABELS, ERR_PREDS):
        arg = {ERR_GROUPS: "groups", ERR_LABELS: "labels", ERR_PREDS: "preds"}[what]
        hint = " (-1 leaves a row out)" if what == ERR_GROUPS else ""
        raise ValueError(
            MSG_CODE_RANGE.format(arg=arg, value=value_at(arg), row=row, col=colstr, n=sizes[arg], hint=hint)
        )
    if what == ERR_WEIGHTS:
        raise ValueError(MSG_WEIGHT.format(value=value_at("weights"), row=row))
    if what == ERR_SCORES:
        raise ValueError(MSG_SCORE_NAN.format(row=row, col=colstr))
    raise RuntimeError(f"unknown kernel error code {what}")  # pragma: no cover


def _common(groups, labels, weights, n_groups, n_labels, n_bootstrap, seed, row_offset):
    g = _as_codes(groups, "groups", (1,))
    n = g.shape[0]
    lab = _as_codes(labels, "labels", (1,))
    if lab.shape[0] != n:
        raise ValueError(MSG_LENGTH.format(arg="labels", got=lab.shape[0], n=n))
    w = None if weights is None else _as_floats(weights, "weights", (1,), n)
    if not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(MSG_SIZE.format(arg="n_bootstrap", value=n_bootstrap))
    if not isinstance(row_offset, (int, np.integer)) or row_offset < 0:
        raise ValueError(MSG_SIZE.format(arg="row_offset", value=row_offset))
    s = _seed(seed, n_bootstrap)
    G = _size(n_groups, "n_groups", g)
    L = _size(n_labels, "n_labels", lab)
    return g, lab, w, n, G, L, s


def _unify_codes(*arrays):
    """Give all code arrays one dtype (the widest), C-contiguous."""
    present = [a for a in arrays if a is not None]
    dtype = np.result_type(*[a.dtype for a in present])
    return [None if a is None else _native(a, dtype) for a in arrays]


def _to_host(*arrays):
    out = []
    for a in arrays:
        if a is not None and _backend.is_device_array(a):
            import cupy

            a = cupy.asnumpy(a)
        out.append(a)
    return out


def _stream_ptr() -> int:
    import cupy

    return int(cupy.cuda.get_current_stream().ptr)


def grouped_counts(
    groups: Any,
    labels: Any,
    preds: Any = None,
    *,
    weights: Any = None,
    n_groups: int | None = None,
    n_labels: int | None = None,
    n_preds: int | None = None,
    n_bootstrap: int = 0,
    seed: int | None = None,
    row_offset: int = 0,
    backend: str = "auto",
    n_threads: int | None = None,
) -> Any:
    r"""Count rows per (group, label[, prediction]) cell in one pass.

    .. math::

        C[b, g, l, p] = \sum_i w_i \,[g_i = g]\,[y_i = l]\,[\hat y_{ib} = p]

    Parameters
    ----------
    groups : array of int, shape (N,)
        Group code of each row in ``[0, n_groups)``; ``-1`` leaves the row out.
    labels : array of int, shape (N,)
        Label code of each row in ``[0, n_labels)``.
    preds : array of int, shape (N,) or (N, B), optional
        Predicted codes in ``[0, n_preds)``; a 2-D array is a batch of ``B`` models or
        thresholds counted in the same pass.
    weights : array of float, shape (N,), optional
        Row weights, finite and ``>= 0``. With weights the result is float64 (sums of weights).
    n_groups, n_labels, n_preds : int, optional
        Table sizes; default ``1 + max(code)``.
    n_bootstrap : int, default 0
        Poisson bootstrap replicates: with ``R > 0`` the result gains a leading axis of ``R``
        tables, replicate ``r`` weighting row ``i`` by a Poisson(1) draw keyed on
        ``(seed, r, row_offset + i)`` (identical on every backend, chunking and thread count).
    seed : int, optional
        Bootstrap seed in ``[0, 2**64)``; required with ``n_bootstrap > 0``.
    row_offset : int, default 0
        Global index of the first row, so that chunks of one data set draw the same weights as
        the whole.
    backend : {"auto", "numpy", "cpu", "cuda"}
        See :mod:`clarion._backend`. Device (cupy) inputs give a cupy result.
    n_threads : int, optional
        CPU threads (default: all cores, or ``CLARION_NUM_THREADS``).

    Arrays may have any memory layout numpy can describe (byte-swapped, strided, broadcast,
    misaligned, read-only); they are copied into the kernels' layout (C-contiguous, aligned,
    native byte order) only when they are not in it already.

    Returns
    -------
    ndarray
        ``[G, L, P]``, ``[B, G, L, P]`` for 2-D ``preds``, ``[G, L]`` without ``preds``, each with
        a leading ``[R]`` axis when bootstrapping. int64 counts without weights, float64 sums
        with weights. Results are exact for integer counts and independent of the thread count.

    Raises
    ------
    TypeError
        A code array that is not integer (or bool), weights that are not numeric.
    ValueError
        Mismatched lengths, a code outside its range, a negative or non-finite weight: the
        message names the argument, the first offending row and its value.
    """
    g, lab, w, n, G, L, s = _common(groups, labels, weights, n_groups, n_labels, n_bootstrap, seed, row_offset)
    p = None
    if preds is not None:
        p = _as_codes(preds, "preds", (1, 2))
        if p.shape[0] != n:
            raise ValueError(MSG_LENGTH.format(arg="preds", got=p.shape[0], n=n))
    P = _size(n_preds, "n_preds", p) if p is not None else 1
    B = p.shape[1] if p is not None and p.ndim == 2 else 1
    R = int(n_bootstrap)
    impl = _backend.resolve(backend, g, lab, p, w)
    if impl != "cuda":
        g, lab, p, w = _to_host(g, lab, p, w)
    g, lab, p = _unify_codes(g, lab, p)
    sizes = {"groups": G, "labels": L, "preds": P}
    batched = {"batched": p is not None and p.ndim == 2}

    if impl == "numpy":
        err = _reference.first_invalid_row(g, lab, G, L, preds=p, n_preds=P, weights=w)
        _raise_row_error(err, {"groups": g, "labels": lab, "preds": p, "weights": w, **batched}, sizes)
        out = _reference.grouped_counts(g, lab, p, w, G, L, P, n_bootstrap=R, seed=s, row_offset=row_offset)
    elif impl == "cpu":
        out = np.empty((max(R, 1), B, G, L, P), dtype=np.int64 if w is None else np.float64)
        err = _backend.core().grouped_counts_cpu(g, lab, p, w, out, G, L, P, R, s, row_offset, _n_threads(n_threads))
        _raise_row_error(err, {"groups": g, "labels": lab, "preds": p, "weights": w, **batched}, sizes)
    else:
        import cupy

        out = cupy.empty((max(R, 1), B, G, L, P), dtype=np.int64 if w is None else np.float64)
        err = _backend.core().grouped_counts_cuda(g, lab, p, w, out, G, L, P, R, s, row_offset, _stream_ptr())
        _raise_row_error(err, {"groups": g, "labels": lab, "preds": p, "weights": w, **batched}, sizes)

    if p is None:
        out = out[..., 0]
    if p is None or p.ndim == 1:
        out = out[:, 0]
    if R == 0:
        out = out[0]
    return out


def grouped_threshold_counts(
    groups: Any,
    labels: Any,
    scores: Any,
    thresholds: Any,
    *,
    weights: Any = None,
    n_groups: int | None = None,
    n_labels: int | None = None,
    n_bootstrap: int = 0,
    seed: int | None = None,
    row_offset: int = 0,
    backend: str = "auto",
    n_threads: int | None = None,
) -> Any:
    r"""Count rows per (threshold, group, label, score >= threshold) in one pass over the rows.

    .. math::

        C[b, t, g, l, 1] = \sum_i w_i [g_i = g][y_i = l][s_{ib} \ge \tau_t],\qquad
        C[b, t, g, l, 0] = \sum_i w_i [g_i = g][y_i = l][s_{ib} < \tau_t]

    Each score is binned once (binary search in the sorted thresholds), and cumulative sums over
    the bins give every threshold, so 1,000 thresholds cost about as much as one.

    Parameters
    ----------
    groups, labels : array of int, shape (N,)
        As in :func:`grouped_counts` (group ``-1`` leaves a row out).
    scores : array of float, shape (N,) or (N, B)
        Model scores; a 2-D array is a batch of ``B`` models. NaN is an error.
    thresholds : array of float, shape (T,)
        Sorted ascending, no NaN (``±inf`` allowed).
    weights, n_groups, n_labels, n_bootstrap, seed, row_offset, backend, n_threads
        As in :func:`grouped_counts`.

    Returns
    -------
    ndarray
        ``[T, G, L, 2]`` (``[B, T, G, L, 2]`` for 2-D scores; leading ``[R]`` when bootstrapping),
        where the last axis is (score < threshold, score >= threshold). int64 without weights.
    """
    g, lab, w, n, G, L, s = _common(groups, labels, weights, n_groups, n_labels, n_bootstrap, seed, row_offset)
    sc = _as_floats(scores, "scores", (1, 2), n)
    th = _as_array(thresholds, "thresholds")
    if th.ndim != 1:
        raise ValueError(MSG_NDIM.format(arg="thresholds", want="1-D", shape=tuple(th.shape)))
    if th.dtype.kind not in "iuf":
        raise TypeError(MSG_NOT_FLOAT.format(arg="thresholds", dtype=th.dtype))
    th_host = _native(np.asarray(_to_host(th)[0]), np.float64)
    nan = np.flatnonzero(np.isnan(th_host))
    if nan.size:
        raise ValueError(MSG_THRESHOLDS_NAN.format(pos=int(nan[0])))
    dec = np.flatnonzero(th_host[1:] < th_host[:-1])
    if dec.size:
        k = int(dec[0]) + 1
        raise ValueError(MSG_THRESHOLDS_ORDER.format(pos=k, value=th_host[k], prev=k - 1, prev_value=th_host[k - 1]))
    T = th_host.shape[0]
    B = sc.shape[1] if sc.ndim == 2 else 1
    R = int(n_bootstrap)
    impl = _backend.resolve(backend, g, lab, sc, w)
    if impl != "cuda":
        g, lab, sc, w = _to_host(g, lab, sc, w)
    g, lab = _unify_codes(g, lab)
    sizes = {"groups": G, "labels": L}
    arrays = {"groups": g, "labels": lab, "weights": w, "batched": sc.ndim == 2}
    dtype = np.int64 if w is None else np.float64

    if impl == "numpy":
        err = _reference.first_invalid_row(g, lab, G, L, weights=w, scores=sc)
        _raise_row_error(err, arrays, sizes)
        out = _reference.grouped_threshold_counts(
            g, lab, sc, th_host, w, G, L, n_bootstrap=R, seed=s, row_offset=row_offset
        )
    elif impl == "cpu":
        out = np.empty((max(R, 1), B, T, G, L, 2), dtype=dtype)
        err = _backend.core().grouped_threshold_counts_cpu(
            g, lab, sc, th_host, w, out, G, L, R, s, row_offset, _n_threads(n_threads)
        )
        _raise_row_error(err, arrays, sizes)
    else:
        import cupy

        th_dev = cupy.asarray(th_host)
        out = cupy.empty((max(R, 1), B, T, G, L, 2), dtype=dtype)
        err = _backend.core().grouped_threshold_counts_cuda(
            g, lab, sc, th_dev, w, out, G, L, R, s, row_offset, _stream_ptr()
        )
        _raise_row_error(err, arrays, sizes)

    if sc.ndim == 1:
        out = out[:, 0]
    if R == 0:
        out = out[0]
    return out


# Rows the compiled kernels count in one chunk (``kRowsPerChunk`` in cpp/include/clarion/parallel.hpp):
# a call on at most this many rows runs on one thread whatever ``n_threads`` says.
_ROWS_PER_CHUNK = 1 << 16


def _host_codes(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.aligned:
        return a
    return _native(a, dtype)


def grouped_counts_prepared(
    groups: np.ndarray,
    labels: np.ndarray,
    preds: np.ndarray | None,
    weights: np.ndarray | None,
    n_groups: int,
    n_labels: int,
    n_preds: int,
    *,
    n_bootstrap: int = 0,
    seed: int = 0,
    row_offset: int = 0,
    backend: str = "auto",
    n_threads: int | None = None,
) -> np.ndarray:
    """:func:`grouped_counts` for internal callers that built the arrays themselves.

    For the bias engine's per-batch counts (the streaming accumulator calls this once per batch,
    so the public wrapper's argument checks would be a large part of a small batch's cost). The
    caller guarantees what those checks establish: host numpy arrays, 1-D integer ``groups`` and
    ``labels`` of one length, ``preds`` None or 2-D ``[N, B]`` integer, ``weights`` None or 1-D
    float of length N, valid sizes, ``seed`` and ``row_offset``. The values are still checked
    where the public function checks them, in the kernel: a code outside its range or a bad
    weight raises the same ``ValueError`` naming the argument, row and value. The backend is
    still chosen by :func:`clarion._backend.resolve`; anything but the compiled CPU kernel goes
    through :func:`grouped_counts`.

    Returns
    -------
    ndarray
        ``[R, B, G, L, P]`` with ``R = max(n_bootstrap, 1)`` and ``B = 1`` without ``preds``
        (``P = 1`` then): no axis is dropped.
    """
    impl = _backend.resolve(backend, groups, labels, preds, weights)
    R = int(n_bootstrap)
    if (
        impl != "cpu"
        or any(a is not None and a.dtype.kind != "i" for a in (groups, labels, preds))
        or (weights is not None and weights.dtype not in (np.float64, np.float32))
    ):
        out = grouped_counts(
            groups,
            labels,
            None if preds is None else preds,
            weights=weights,
            n_groups=n_groups,
            n_labels=n_labels,
            n_preds=n_preds if preds is not None else None,
            n_bootstrap=R,
            seed=seed if R else None,
            row_offset=row_offset,
            backend=impl,
            n_threads=n_threads,
        )
        B = 1 if preds is None else preds.shape[1]
        P = 1 if preds is None else n_preds
        return np.asarray(out).reshape((max(R, 1), B, n_groups, n_labels, P))
    dtype = groups.dtype if groups.dtype.kind == "i" else np.dtype(np.int64)
    for a in (labels, preds):
        if a is not None and a.dtype.itemsize > dtype.itemsize:
            dtype = a.dtype
    if not dtype.isnative:  # the kernel reads native values
        dtype = dtype.newbyteorder("=")
    g = _host_codes(groups, dtype)
    lab = _host_codes(labels, dtype)
    p = None if preds is None else _host_codes(preds, dtype)
    w = weights
    if w is not None and not (w.dtype.isnative and w.flags.c_contiguous and w.flags.aligned):
        w = _native(w)
    n = g.shape[0]
    B = 1 if p is None else p.shape[1]
    P = 1 if p is None else int(n_preds)
    out = np.empty((max(R, 1), B, n_groups, n_labels, P), dtype=np.int64 if w is None else np.float64)
    threads = 1 if n <= _ROWS_PER_CHUNK else _n_threads(n_threads)
    err = _backend.core().grouped_counts_cpu(g, lab, p, w, out, n_groups, n_labels, P, R, seed, row_offset, threads)
    if err[0]:
        _raise_row_error(
            err,
            {"groups": g, "labels": lab, "preds": p, "weights": w, "batched": p is not None},
            {"groups": n_groups, "labels": n_labels, "preds": P},
        )
    return out


def _host_cpu(backend: str, codes: list, weights: np.ndarray | None) -> bool:
    """Whether :func:`clarion._backend.resolve` picks the compiled CPU kernel for host numpy
    ``codes`` (and ``weights``). The common case, ``"auto"`` with ``CLARION_BACKEND`` unset and the
    extension present, is answered without ``resolve``'s per-array device checks; ``CLARION_BACKEND``
    is still read on every call, so changing it takes effect at once, as documented."""
    if (
        backend == "auto"
        and _backend.has_core()
        and not os.environ.get("CLARION_BACKEND")
        and all(type(c) is np.ndarray for c in codes)
        and (weights is None or type(weights) is np.ndarray)
    ):
        return True
    return _backend.resolve(backend, *codes, weights) == "cpu"


def slot_counts_prepared(
    codes: list,
    offsets: list,
    sizes: list,
    *,
    weights: np.ndarray | None = None,
    luts: list | None = None,
    map_strides: list | None = None,
    mapped_cells: int = 0,
    backend: str = "auto",
    n_threads: int | None = None,
    team: bool = False,
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Counts of each combination of slots of up to four code columns, in one pass (issue 21).

    ``slot = code + offset`` (slot 0 is a missing value); the result ``raw`` has shape ``sizes``
    and counts the rows of each slot combination. With ``weights``, ``raw`` counts occurrences
    only and ``mapped`` (``mapped_cells`` float64) holds each row's weight added at cell
    ``sum(luts[j][slot_j] * map_strides[j])``, in :func:`grouped_counts`' summation order (so
    the sums equal ``grouped_counts`` on the mapped codes bit for bit).

    ``team``: an unweighted pass counts on the persistent helper team of an accumulator's stream
    (``_core.slot_counts_team``: no thread started per call; the same table).

    Returns None when this call is not for the compiled CPU kernel (another backend was chosen,
    or the extension is absent) or a row holds a code outside its slots or a bad weight: the
    caller then takes the general path, which reports the row. Internal: the caller guarantees
    1-D host integer code arrays of one length, ``weights`` None or float64 of that length.
    """
    if not _host_cpu(backend, codes, weights):
        return None
    core = _backend.core()
    if not hasattr(core, "slot_counts_cpu"):
        return None
    n = codes[0].shape[0]
    team = team and weights is None and hasattr(core, "slot_counts_team")
    threads = _n_threads(n_threads) if team or n > _ROWS_PER_CHUNK else 1
    codes = [c if c.flags.c_contiguous and c.flags.aligned and c.dtype.isnative else _native(c) for c in codes]
    offsets = [int(o) for o in offsets]
    sizes = [int(s) for s in sizes]
    raw = np.empty(sizes, dtype=np.int64)
    if team:
        err = core.slot_counts_team(codes, offsets, sizes, raw, threads)
        mapped = None
    elif weights is None:
        err = core.slot_counts_cpu(codes, offsets, sizes, raw, threads)
        mapped = None
    else:
        w = weights if weights.flags.c_contiguous and weights.flags.aligned else _native(weights)
        mapped = np.empty(int(mapped_cells), dtype=np.float64)
        err = core.slot_weighted_counts_cpu(
            codes, offsets, sizes, list(luts or []), [int(s) for s in map_strides or []], w, mapped, raw, threads
        )
    return None if err[0] else (raw, mapped)


def int_range(x: np.ndarray) -> tuple[int, int]:
    """``(min, max)`` of a non-empty 1-D signed integer array in one pass (the compiled CPU kernel
    when there is one, else numpy's two reductions): the slot offset of an integer column."""
    core = _backend.core() if _backend.has_core() else None
    if (
        core is not None
        and hasattr(core, "int_range_cpu")
        and x.flags.c_contiguous
        and x.flags.aligned
        and x.dtype.isnative
        and os.environ.get("CLARION_BACKEND", "").strip().lower() != "numpy"
    ):
        lo, hi = core.int_range_cpu(x)
        return int(lo), int(hi)
    return int(x.min()), int(x.max())
