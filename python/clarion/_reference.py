"""Plain-numpy reference implementations of clarion's kernels: the oracle for tests.

Written for clarity rather than speed; the math is in the comments. Every compiled kernel has a
twin here, and tests compare them on generated inputs. Inputs are assumed validated by the
public functions (codes in range, weights finite and >= 0, no NaN scores): the reference does not
re-check them, see :func:`first_invalid_row` for the shared validation rule.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "POISSON1_CDF_BITS",
    "first_invalid_row",
    "grouped_counts",
    "grouped_threshold_counts",
    "poisson1_draws",
    "splitmix64",
]

_U64 = np.uint64
_GAMMA = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)

#: floor(P(X <= k) * 2**64) for X ~ Poisson(1), k = 0..19 (the same table as rng.hpp).
POISSON1_CDF_BITS = np.array(
    [
        0x5E2D58D8B3BCDF1A, 0xBC5AB1B16779BE35, 0xEB715E1DC1582DC2, 0xFB23979734A252F1,
        0xFF1025F59174DC3D, 0xFFD90F3BA4055E19, 0xFFFA8B71FC72C913, 0xFFFF540C0914B3C9,
        0xFFFFED1F4AA8F120, 0xFFFFFE216E641462, 0xFFFFFFD4D85D3183, 0xFFFFFFFC6DA262B4,
        0xFFFFFFFFBA12D178, 0xFFFFFFFFFB07C64C, 0xFFFFFFFFFFAB8EA5, 0xFFFFFFFFFFFABE22,
        0xFFFFFFFFFFFFB11A, 0xFFFFFFFFFFFFFBA1, 0xFFFFFFFFFFFFFFC5, 0xFFFFFFFFFFFFFFFD,
    ],
    dtype=np.uint64,
)

# Error codes shared with the C++ kernels (grouped_counts.hpp).
ERR_GROUPS, ERR_LABELS, ERR_PREDS, ERR_WEIGHTS, ERR_SCORES = 1, 2, 3, 4, 5


def splitmix64(x: np.ndarray | int) -> np.ndarray:
    """splitmix64 mix of uint64 values (wrapping arithmetic), as in ``rng.hpp``."""
    z = np.asarray(x, dtype=np.uint64) + _GAMMA
    z = (z ^ (z >> _U64(30))) * _M1
    z = (z ^ (z >> _U64(27))) * _M2
    return z ^ (z >> _U64(31))


def poisson1_draws(seed: int, replicate: int, rows: np.ndarray) -> np.ndarray:
    """Poisson(1) bootstrap weights of global ``rows`` in ``replicate`` under ``seed``.

    key_r = splitmix64(splitmix64(seed) + r); u_i = splitmix64(key_r + i);
    weight = #{k : POISSON1_CDF_BITS[k] <= u_i}  (inversion of the Poisson(1) CDF).
    """
    with np.errstate(over="ignore"):
        key = splitmix64(splitmix64(_U64(seed)) + _U64(replicate))
        u = splitmix64(key + np.asarray(rows, dtype=np.uint64))
    return np.searchsorted(POISSON1_CDF_BITS, u, side="right").astype(np.int64)


def _as_2d(a: np.ndarray) -> np.ndarray:
    """(N,) -> (N, 1); (N, B) unchanged (also for N = 0, where reshape(-1) is ambiguous)."""
    return a[:, None] if a.ndim == 1 else a


def first_invalid_row(
    groups: np.ndarray,
    labels: np.ndarray,
    n_groups: int,
    n_labels: int,
    *,
    preds: np.ndarray | None = None,
    n_preds: int = 1,
    weights: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """The kernels' validation rule, in numpy: ``(error_code, row, column)`` or ``(0, -1, -1)``.

    Rows with group -1 are left out and not checked. In a checked row the order is groups,
    labels, weights, then predictions/scores (first offending column).
    """
    g = groups.astype(np.int64, copy=False)
    kept = g != -1
    bad = np.zeros((len(g), 5), dtype=bool)
    bad[:, 0] = kept & ((g < 0) | (g >= n_groups))
    lab = labels.astype(np.int64, copy=False)
    bad[:, 1] = kept & ~bad[:, 0] & ((lab < 0) | (lab >= n_labels))
    ok = kept & ~bad[:, 0] & ~bad[:, 1]
    if weights is not None:
        w = weights.astype(np.float64, copy=False)
        with np.errstate(invalid="ignore"):
            bad[:, 2] = ok & ~(np.isfinite(w) & (w >= 0))
        ok &= ~bad[:, 2]
    cols = None
    if preds is not None:
        p = _as_2d(preds).astype(np.int64, copy=False)
        badp = (p < 0) | (p >= n_preds)
        bad[:, 3] = ok & badp.any(axis=1)
        cols = badp
    elif scores is not None:
        s = _as_2d(scores)
        bads = np.isnan(s)
        bad[:, 4] = ok & bads.any(axis=1)
        cols = bads
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size == 0:
        return (0, -1, -1)
    row = int(rows[0])
    kind = int(np.argmax(bad[row]))
    code = [ERR_GROUPS, ERR_LABELS, ERR_WEIGHTS, ERR_PREDS, ERR_SCORES][kind]
    col = int(np.argmax(cols[row])) if code in (ERR_PREDS, ERR_SCORES) else -1
    return (code, row, col)


def _replicate_weights(n: int, weights, n_bootstrap: int, seed: int, row_offset: int):
    """Row weights of each table: [None] (plain), [w], or one weight vector per replicate."""
    base = None if weights is None else weights.astype(np.float64)
    if n_bootstrap == 0:
        return [base]
    rows = np.arange(row_offset, row_offset + n, dtype=np.int64)
    out = []
    for r in range(n_bootstrap):
        k = poisson1_draws(seed, r, rows)
        out.append(k if base is None else base * k)
    return out


def grouped_counts(
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
) -> np.ndarray:
    """counts[r, b, g, l, p] = sum of w_i * k_ri over rows i with (groups_i, labels_i, preds_ib) = (g, l, p).

    Rows with groups_i == -1 are left out; w_i = 1 without weights, k_ri = 1 without bootstrap,
    else the Poisson(1) draw of (seed, r, row_offset + i). Returns the full [R, B, G, L, P]
    array (R = max(n_bootstrap, 1), B = columns of preds, P = 1 without preds); int64 without
    weights, float64 with.
    """
    n = len(groups)
    g = groups.astype(np.int64)
    lab = labels.astype(np.int64)
    p2 = np.zeros((n, 1), dtype=np.int64) if preds is None else _as_2d(preds).astype(np.int64)
    P = 1 if preds is None else n_preds
    B = p2.shape[1]
    kept = g != -1
    cells = n_groups * n_labels * P
    dtype = np.int64 if weights is None else np.float64
    R = max(n_bootstrap, 1)
    out = np.zeros((R, B, n_groups, n_labels, P), dtype=dtype)
    for r, w in enumerate(_replicate_weights(n, weights, n_bootstrap, seed, row_offset)):
        for b in range(B):
            key = (g[kept] * n_labels + lab[kept]) * P + p2[kept, b]
            ww = None if w is None else w[kept]
            c = np.bincount(key, weights=ww, minlength=cells) if cells else np.zeros(0)
            out[r, b] = c.astype(dtype).reshape(n_groups, n_labels, P)
    return out


def grouped_threshold_counts(
    groups: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray,
    weights: np.ndarray | None,
    n_groups: int,
    n_labels: int,
    *,
    n_bootstrap: int = 0,
    seed: int = 0,
    row_offset: int = 0,
) -> np.ndarray:
    """counts[r, b, t, g, l, 1] = weight of rows in (g, l) with scores_ib >= thresholds_t; [..., 0] the rest.

    Implemented the way the kernel is: bin_i = #{t : thresholds_t <= score_i} (so score >= t_j
    iff bin > j), a histogram over bins, then suffix sums (>=) and prefix sums (<) over bins.
    Returns [R, B, T, G, L, 2].
    """
    n = len(groups)
    s2 = _as_2d(scores)
    B = s2.shape[1]
    T = len(thresholds)
    bins = np.searchsorted(thresholds, s2, side="right")  # [N, B] in 0..T
    hist = grouped_counts(
        groups, labels, bins, weights, n_groups, n_labels, T + 1,
        n_bootstrap=n_bootstrap, seed=seed, row_offset=row_offset,
    )  # [R, B, G, L, T+1]
    R = hist.shape[0]
    out = np.zeros((R, B, T, n_groups, n_labels, 2), dtype=hist.dtype)
    if T == 0:
        return out
    # above[j] = sum_{k > j} hist[k] accumulated from the top; below[j] = sum_{k <= j} hist[k].
    above = np.cumsum(hist[..., :0:-1], axis=-1)[..., ::-1]  # above[..., j] for j = 0..T-1
    below = np.cumsum(hist[..., :T], axis=-1)
    out[..., 1] = np.moveaxis(above, -1, 2)
    out[..., 0] = np.moveaxis(below, -1, 2)
    return out


# ---------------------------------------------------------------------------------------------
# Exact k-nearest-neighbour majority vote (FlipTest's kernel, cpp/include/clarion/knn.hpp).
#
# Brute force with the kernel's rules:
#   d(q, x) = (...((0 + t_0*t_0) + t_1*t_1) + ...) + t_{M-1}*t_{M-1},  t_j = q_j - x_j  (float64,
#   every product and sum rounded on its own, summed over columns left to right),
#   neighbours ordered by (d, reference-row index): equal distances go to the lower row index,
#   vote = 1 when strictly more than k/2 of the k nearest labels are 1 (an even split votes 0).
# ---------------------------------------------------------------------------------------------

__all__ += ["knn_vote"]


def knn_vote(
    xa: np.ndarray, ya: np.ndarray, xd: np.ndarray, k: int, *, block_rows: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Positive labels among the k nearest rows of ``xa`` for each row of ``xd``, and the vote.

    Parameters
    ----------
    xa : float64 array, shape (n_a, M)
        Reference rows (facet a).
    ya : bool or 0/1 array, shape (n_a,)
        Their labels.
    xd : float64 array, shape (n_d, M)
        Query rows (facet d).
    k : int
        Neighbours, ``1 <= k <= n_a``.
    block_rows : int
        Query rows per distance block (memory: ``block_rows * n_a`` doubles).

    Returns
    -------
    positives : int64 array, shape (n_d,)
    votes : bool array, shape (n_d,)
    """
    xa = np.asarray(xa, dtype=np.float64)
    xd = np.asarray(xd, dtype=np.float64)
    ya = np.asarray(ya).astype(np.int64)
    n_d = xd.shape[0]
    positives = np.zeros(n_d, dtype=np.int64)
    for start in range(0, n_d, block_rows):
        q = xd[start : start + block_rows]
        dist = np.zeros((q.shape[0], xa.shape[0]))
        for j in range(xa.shape[1]):
            t = q[:, j, None] - xa[None, :, j]
            dist = dist + t * t
        # A stable sort keeps equal distances in row order: the lower reference row comes first.
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
        positives[start : start + q.shape[0]] = ya[nearest].sum(axis=1)
    return positives, 2 * positives > k
