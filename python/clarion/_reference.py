"""Plain-numpy reference implementations of clarion's kernels: the oracle for tests.

Written for clarity rather than speed; the math is in the comments. Every compiled kernel has a
twin here, and tests compare them on generated inputs. Inputs are assumed validated by the
public functions (codes in range, weights finite and >= 0, no NaN scores): the reference does not
re-check them, see :func:`first_invalid_row` for the shared validation rule.
"""

from __future__ import annotations

import itertools
import math

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
        0x5E2D58D8B3BCDF1A,
        0xBC5AB1B16779BE35,
        0xEB715E1DC1582DC2,
        0xFB23979734A252F1,
        0xFF1025F59174DC3D,
        0xFFD90F3BA4055E19,
        0xFFFA8B71FC72C913,
        0xFFFF540C0914B3C9,
        0xFFFFED1F4AA8F120,
        0xFFFFFE216E641462,
        0xFFFFFFD4D85D3183,
        0xFFFFFFFC6DA262B4,
        0xFFFFFFFFBA12D178,
        0xFFFFFFFFFB07C64C,
        0xFFFFFFFFFFAB8EA5,
        0xFFFFFFFFFFFABE22,
        0xFFFFFFFFFFFFB11A,
        0xFFFFFFFFFFFFFBA1,
        0xFFFFFFFFFFFFFFC5,
        0xFFFFFFFFFFFFFFFD,
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
    s2 = _as_2d(scores)
    B = s2.shape[1]
    T = len(thresholds)
    bins = np.searchsorted(thresholds, s2, side="right")  # [N, B] in 0..T
    hist = grouped_counts(
        groups,
        labels,
        bins,
        weights,
        n_groups,
        n_labels,
        T + 1,
        n_bootstrap=n_bootstrap,
        seed=seed,
        row_offset=row_offset,
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


# =================================================================================================
# Kernel SHAP (issue 4; spec ../shared/spec/kernel-shap.md). Twins of cpp/src/shap_cpu.cpp.
# =================================================================================================

_MASK64 = (1 << 64) - 1
SHAP_LINK_IDENTITY, SHAP_LINK_LOGIT = 0, 1
SHAP_LOGIT_EPS = 1e-15


def _splitmix64_int(x: int) -> int:
    """Scalar splitmix64 on Python ints (same bits as rng.hpp)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def shap_uniform01(key: int, counter: int) -> float:
    """u = (splitmix64(key + counter) >> 11) * 2^-53: a uniform double in [0, 1) (shap.hpp)."""
    return float(_splitmix64_int((key + counter) & _MASK64) >> 11) * 2.0**-53


def shap_plan_key(seed: int) -> int:
    return _splitmix64_int((seed ^ 0x5348415050) & _MASK64)


def shap_size_mass(M: int, s: int) -> float:
    """Kernel mass of all coalitions of size s: (M - 1) / (s (M - s))."""
    return (float(M) - 1.0) / (float(s) * float(M - s))


def shap_binom(n: int, k: int) -> float:
    r = 1.0
    for i in range(1, k + 1):
        r = r * float(n - k + i) / float(i)
    return r


def shap_coalition_plan(M: int, n_samples: int, seed: int, paired: bool = True):
    """shap's coalition plan (spec section 3), driven by clarion's counter-based RNG.

    Phase 1 enumerates whole subset sizes s (with their complements M - s), smallest first, while
    ``left * rem[s] / nsub >= 1 - 1e-8``; each enumerated coalition gets weight
    ``wv[s] / C(M, s)`` (halved for paired sizes) where ``wv[s] ∝ (M-1)/(s(M-s))`` (doubled for
    paired sizes) sums to 1. Phase 2 draws ``4 * left`` times: a size from the remaining size mass
    (halved for paired sizes since each draw yields two coalitions), a uniform subset of that
    size by partial Fisher-Yates, then (``paired``) its complement; a coalition seen before adds
    1 to its weight instead of a new row. The sampled block is rescaled to the remaining mass.
    Scalar Python loops on purpose: every floating operation happens in the order of the C++
    driver, so both give the same plan bit for bit.

    Returns ``(Z [S, M] uint8, w [S] float64, block [S] int64)``.
    """
    n_sizes = (M - 1 + 1) // 2
    n_paired = (M - 1) // 2
    wv = [shap_size_mass(M, s) * (2.0 if s <= n_paired else 1.0) for s in range(1, n_sizes + 1)]
    total = 0.0
    for v in wv:
        total += v
    wv = [v / total for v in wv]
    rows: list[list[int]] = []
    weights: list[float] = []
    blocks: list[int] = []
    n_full = 0
    left = float(n_samples)
    rem = list(wv)
    for s in range(1, n_sizes + 1):
        nsub = shap_binom(M, s) * (2.0 if s <= n_paired else 1.0)
        if left * rem[s - 1] / nsub >= 1.0 - 1e-8:
            n_full += 1
            left -= nsub
            if rem[s - 1] < 1.0:
                scale = 1.0 - rem[s - 1]
                rem = [v / scale for v in rem]
            wk = wv[s - 1] / shap_binom(M, s)
            if s <= n_paired:
                wk /= 2.0
            for idx in itertools.combinations(range(M), s):
                z = [0] * M
                for i in idx:
                    z[i] = 1
                rows.append(z)
                weights.append(wk)
                blocks.append(-1)
                if s <= n_paired:
                    rows.append([1 - v for v in z])
                    weights.append(wk)
                    blocks.append(-1)
        else:
            break
    n_fixed = len(rows)
    samples_left = n_samples - n_fixed
    if n_full != n_sizes and samples_left > 0:
        n_rest = n_sizes - n_full
        mass = []
        acc = 0.0
        for i in range(n_rest):
            s = n_full + 1 + i
            mass.append(wv[s - 1] / (2.0 if (paired and s <= n_paired) else 1.0))
            acc += mass[-1]
        cdf, run = [], 0.0
        for i in range(n_rest):
            run += mass[i] / acc
            cdf.append(run)
        key = shap_plan_key(seed)
        ctr = 0
        seen: dict[tuple[int, ...], int] = {}
        comp_of: dict[int, int] = {}
        draw = 0
        t = 0
        n_draws = 4 * samples_left
        while t < n_draws and samples_left > 0:
            t += 1
            u = shap_uniform01(key, ctr)
            ctr += 1
            i = 0
            while i < n_rest - 1 and not (u < cdf[i]):
                i += 1
            s = n_full + 1 + i
            perm = list(range(M))
            for j in range(s):
                r = j + int(shap_uniform01(key, ctr) * float(M - j))
                ctr += 1
                r = min(r, M - 1)
                perm[j], perm[r] = perm[r], perm[j]
            z = [0] * M
            for j in range(s):
                z[perm[j]] = 1
            has_pair = s <= n_paired
            if not paired and has_pair:
                if shap_uniform01(key, ctr) < 0.5:
                    z = [1 - v for v in z]
                ctr += 1
            tz = tuple(z)
            if tz not in seen:
                at = len(rows)
                seen[tz] = at
                rows.append(z)
                weights.append(1.0)
                blocks.append(draw)
                samples_left -= 1
                if paired and has_pair and samples_left > 0:
                    comp_of[at] = len(rows)
                    rows.append([1 - v for v in z])
                    weights.append(1.0)
                    blocks.append(draw)
                    samples_left -= 1
                draw += 1
            else:
                at = seen[tz]
                weights[at] += 1.0
                if paired and has_pair and samples_left > 0 and at in comp_of:
                    weights[comp_of[at]] += 1.0
        weight_left = 0.0
        for i in range(n_full, n_sizes):
            weight_left += wv[i]
        sampled = 0.0
        for q in range(n_fixed, len(rows)):
            sampled += weights[q]
        for q in range(n_fixed, len(rows)):
            weights[q] *= weight_left / sampled
    Z = np.array(rows, dtype=np.uint8).reshape(len(rows), M)
    return Z, np.array(weights, dtype=np.float64), np.array(blocks, dtype=np.int64)


def shap_wls_operator(Z: np.ndarray, w: np.ndarray):
    """The fixed operator (L [M, S], c [M]) with phi = L y + c Delta (spec 2.3).

    Eliminating the last player through sum(phi) = Delta:
    X = Z[:, :M-1] - Z[:, M-1:],  P = (X^T W X)^{-1} X^T W,  p = P Z[:, M-1],
    L = [P; -1^T P],  c = [-p; 1 + 1^T p].  Cholesky when the normal matrix is positive definite
    (relative pivot > 1e-10), else the minimum-norm least-squares solution (pseudo-inverse,
    eigenvalues below 1e-10 * max cut). Returns (L, c, status) with status 1 for the fallback.
    """
    Zf = Z.astype(np.float64)
    M = Z.shape[1]
    X = Zf[:, : M - 1] - Zf[:, M - 1 :]
    XtW = X.T * w[None, :]
    A = XtW @ X
    status = 0
    try:
        R = np.linalg.cholesky(A)
        piv = np.diag(R) ** 2
        if A.size and not (piv > 1e-10 * np.max(np.diag(A))).all():
            raise np.linalg.LinAlgError("ill-conditioned")
        P = np.linalg.solve(R.T, np.linalg.solve(R, XtW))
    except np.linalg.LinAlgError:
        status = 1
        e, V = np.linalg.eigh(A)
        keep = np.abs(e) > 1e-10 * np.max(np.abs(e))
        Ainv = (V[:, keep] / e[keep]) @ V[:, keep].T
        P = Ainv @ XtW
    p = P @ Zf[:, M - 1]
    L = np.vstack([P, -P.sum(axis=0, keepdims=True)])
    c = np.concatenate([-p, [1.0 + p.sum()]])
    return L, c, status


def shap_mask(X: np.ndarray, B: np.ndarray, Z: np.ndarray, col_player: np.ndarray, q0: int, q1: int):
    """Synthetic rows of pairs q in [q0, q1) (n = q // S, s = q % S), K background rows innermost:
    out[(q - q0) K + k, c] = X[n, c] if col_player[c] < 0 or Z[s, col_player[c]] else B[k, c]."""
    S, K = Z.shape[0], B.shape[0]
    q = np.arange(q0, q1)
    n, s = q // S, q % S
    player = np.asarray(col_player)
    zc = np.where(player[None, :] < 0, 1, Z[:, np.maximum(player, 0)])  # [S, P] takes-x flags
    take_x = zc[s].astype(bool)[:, None, :]  # [nq, 1, P]
    out = np.where(take_x, X[n][:, None, :], B[None, :, :])  # [nq, K, P]
    return out.reshape(len(q) * K, X.shape[1]).astype(X.dtype, copy=False)


def shap_link(v: np.ndarray, link: int) -> np.ndarray:
    """identity, or shap's logit log(p / (1 - p)) with p clipped to [1e-15, 1 - 1e-15]."""
    if link == SHAP_LINK_LOGIT:
        p = np.clip(v, SHAP_LOGIT_EPS, 1.0 - SHAP_LOGIT_EPS)
        return np.log(p / (1.0 - p))
    return v


def shap_reduce(F: np.ndarray, pi: np.ndarray, link: int) -> np.ndarray:
    """Y[r, d] = g(sum_k pi_k F[r K + k, d]) (link after the background average, as shap)."""
    K = len(pi)
    D = F.shape[1]
    Fr = F.reshape(-1, K, D)
    return shap_link(np.einsum("rkd,k->rd", Fr, pi), link)


def shap_apply(Y: np.ndarray, base: np.ndarray, LT: np.ndarray, q0: int, q1: int, phi: np.ndarray):
    """phi[n, m, d] += LT[s, m] (Y[q - q0, d] - base[d]) for pairs q = n S + s in [q0, q1)."""
    S = LT.shape[0]
    q = np.arange(q0, q1)
    n, s = q // S, q % S
    contrib = LT[s][:, :, None] * (Y - base[None, :])[:, None, :]  # [nq, Mo, D]
    out = phi.copy()
    np.add.at(out, n, contrib)
    return out


def shap_value_function(
    f, x: np.ndarray, B: np.ndarray, pi: np.ndarray, col_player: np.ndarray, coalitions: np.ndarray, link: int
) -> np.ndarray:
    """v(z) = g(sum_k pi_k f(h(x, b_k, z))) for each coalition row z: [T, D]."""
    rows = shap_mask(x[None, :], B, coalitions, col_player, 0, coalitions.shape[0])
    F = np.asarray(f(rows), dtype=np.float64)
    F = F.reshape(rows.shape[0], -1)
    return shap_reduce(F, pi, link)


def exact_shapley(
    f,
    x: np.ndarray,
    B: np.ndarray,
    pi: np.ndarray | None = None,
    col_player: np.ndarray | None = None,
    M: int | None = None,
    link: int = 0,
) -> np.ndarray:
    """Brute-force Shapley values of the background-expectation game, M <= 10 players.

    phi_j = sum_{S ⊆ N \\ {j}} |S|! (M - |S| - 1)! / M! [v(S ∪ {j}) - v(S)], with
    v(S) = g(E_pi f(h(x, b, S))). Returns [M, D].
    """
    P = x.shape[0]
    col_player = np.arange(P, dtype=np.int32) if col_player is None else np.asarray(col_player)
    M = int(col_player.max()) + 1 if M is None else M
    if M > 10:
        raise ValueError("exact_shapley enumerates 2^M coalitions; M must be <= 10")
    pi = np.full(B.shape[0], 1.0 / B.shape[0]) if pi is None else np.asarray(pi, dtype=np.float64)
    subsets = np.array(list(itertools.product([0, 1], repeat=M)), dtype=np.uint8)  # [2^M, M]
    v = shap_value_function(f, x, B, pi, col_player, subsets, link)  # [2^M, D]
    index = {tuple(z): i for i, z in enumerate(subsets.tolist())}
    fact = [math.factorial(i) for i in range(M + 1)]
    phi = np.zeros((M, v.shape[1]))
    for j in range(M):
        for z in subsets.tolist():
            if z[j]:
                continue
            size = sum(z)
            with_j = list(z)
            with_j[j] = 1
            weight = fact[size] * fact[M - size - 1] / fact[M]
            phi[j] += weight * (v[index[tuple(with_j)]] - v[index[tuple(z)]])
    return phi


def slot_counts(codes: list, offsets: list, sizes: list) -> np.ndarray:
    """Twin of ``slot_counts_cpu`` (issue 21's one-pass count): row i's slot in column j is
    ``codes[j][i] + offsets[j]`` (slot 0 holds missing values); the result, of shape ``sizes``,
    counts the rows of each combination of slots (row-major cell ``sum_j slot_j * prod sizes[j+1:]``)."""
    n = codes[0].shape[0] if codes else 0
    idx = np.zeros(n, dtype=np.int64)
    for c, o, s in zip(codes, offsets, sizes):
        idx = idx * int(s) + (np.asarray(c).astype(np.int64) + int(o))
    return np.bincount(idx, minlength=math.prod(int(s) for s in sizes)).reshape([int(s) for s in sizes])


def image_mask(image: np.ndarray, baseline: np.ndarray, segment: np.ndarray, Z: np.ndarray, s0: int, s1: int):
    """Twin of ``image_mask_cpu`` / ``image_mask_cuda`` (``cpp/include/clarion/image_mask.hpp``):
    ``out[s - s0, p, c]`` is ``image[p, c]`` when pixel p's superpixel is in coalition s (or p belongs
    to none: segment -1), else ``baseline[p, c]``. image, baseline: (P, C); segment: (P,); Z: (S, M)."""
    keep = (segment[None, :] < 0) | (Z[s0:s1][:, np.maximum(segment, 0)] != 0)  # (s1 - s0, P)
    return np.where(keep[:, :, None], image[None, :, :], baseline[None, :, :])


__all__ += ["SlotStream"]


class SlotStream:
    """Twin of ``_core.SlotStream`` (``cpp/include/clarion/slot_stream.hpp``, issue 21): the
    compiled steady state of a bias ``Accumulator``'s stream, the whole step of one batch in numpy.

    Same constructor arguments and methods. The stream's columns are ``[facet_0 .. facet_{F-1},
    group?, label, prediction?]``; column j's row i sits in slot ``s = arrays[j][i] + offsets[j]``
    (``0 <= s < sizes[j]``) and ``codes[j][s]`` is its index on the count table's axis (the
    vocabulary code of a facet or group value, 0/1 for a selected facet value or a positive label,
    -1 for a value without a code). A batch's *pattern* is, per column in that order, one byte per
    slot: 1 when some row holds it. :meth:`add`:

    1. one array per column (else ``ValueError``), each fitting the plan (1-D, C-contiguous,
       native, the column's itemsize, bool for a boolean column, one length ``n >= 1``; float64
       weights of that length when weighted): else 4;
    2. per facet in order, over the facet's column and the shared ones: a slot outside its column
       (or, weighted, a weight that is not finite and >= 0) is 2; an occurring slot without a code
       is 5 (the facets after it are not looked at);
    3. a pattern not accepted yet (noted in ``sightings`` batches or ``sighting_rows`` rows) is
       handed back (bytes);
    4. under ``lock``: when the state still holds the stream's tables (``counts[f][kind] is
       tables[f]``) and its vocabularies their sizes, each row is added to its facet's table at
       ``((v * K + k) * 2 + y) * P + p`` (its weight, or 1) and ``state.n_rows`` grows by n: 0;
       else 3 and nothing changes.

    Weighted sums are numpy's ``bincount`` in row order; the compiled stream adds them in
    ``grouped_counts``' chunked order (equal to rounding; bit for bit within one chunk).
    """

    _MAX_PATTERNS = 4096
    _MAX_PATTERN_BYTES = 4 << 20

    def __init__(
        self,
        n_facets,
        has_group,
        has_pred,
        weighted,
        K,
        V,
        itemsizes,
        booleans,
        offsets,
        sizes,
        codes,
        wmaps,
        facet_slots,
        lock,
        state,
        counts,
        kind,
        tables,
        vocabs,
        vocab_sizes,
        sightings,
        sighting_rows,
    ):
        self.F, self.has_group, self.has_pred, self.weighted = int(n_facets), bool(has_group), bool(has_pred), weighted
        self.K, self.P, self.V = int(K), 2 if has_pred else 1, [int(v) for v in V]
        self.itemsizes, self.booleans = list(itemsizes), list(booleans)
        self.offsets, self.sizes = [int(o) for o in offsets], [int(s) for s in sizes]
        self.codes = [np.asarray(c, dtype=np.int64) for c in codes]
        self.lock, self.state, self.counts, self.kind = lock, state, list(counts), kind
        self.tables, self.vocabs, self.vocab_sizes = list(tables), list(vocabs), list(vocab_sizes)
        self.sightings, self.sighting_rows = int(sightings), int(sighting_rows)
        self.patterns: dict = {}  # key -> [batches, rows] the one-pass path counted

    # -- the plan ----------------------------------------------------------------------------------

    def _shared(self) -> list:
        """Columns after the facets: group?, label, prediction?"""
        return list(range(self.F, len(self.sizes)))

    def _mult(self, j: int) -> int:
        """The count-table stride of column j's code."""
        if j < self.F:
            return self.K * 2 * self.P
        if self.has_group and j == self.F:
            return 2 * self.P
        label = self.F + (1 if self.has_group else 0)
        return self.P if j == label else 1

    def _key_size(self) -> int:
        return sum(self.sizes)

    def fresh(self) -> bool:
        if any(c.get(self.kind) is not t for c, t in zip(self.counts, self.tables)):
            return False
        return all(len(v) == s for v, s in zip(self.vocabs, self.vocab_sizes))

    @property
    def n_patterns(self) -> int:
        return sum(1 for s in self.patterns.values() if self._accepted(s))

    def _accepted(self, seen: list) -> bool:
        return seen[0] >= self.sightings or seen[1] >= self.sighting_rows

    def _sight(self, key: bytes, rows: int) -> None:
        most = max(16, min(self._MAX_PATTERNS, self._MAX_PATTERN_BYTES // max(len(key), 1)))
        if len(self.patterns) >= most and key not in self.patterns:
            self.patterns.clear()
        s = self.patterns.setdefault(key, [0, 0])
        s[0] = min(s[0] + 1, self.sightings)
        s[1] = min(s[1] + rows, self.sighting_rows)

    # -- one batch ---------------------------------------------------------------------------------

    def _fits(self, arrays, weights):
        """(slots per column, weights, n) or None (status 4)."""
        if len(arrays) != len(self.sizes):
            raise ValueError("arrays must list one array per column of the stream")
        n = None
        for a, size, b in zip(arrays, self.itemsizes, self.booleans):
            if not isinstance(a, np.ndarray) or a.ndim != 1 or not a.flags.c_contiguous or not a.flags.aligned:
                return None
            if not a.dtype.isnative or a.dtype.itemsize != size or a.dtype.kind != ("b" if b else "i"):
                return None
            if n is None:
                n = a.shape[0]
            if a.shape[0] != n:
                return None
        w = None
        if self.weighted:
            ok = isinstance(weights, np.ndarray) and weights.ndim == 1 and weights.dtype == np.float64
            if not ok or not weights.flags.c_contiguous or not weights.dtype.isnative or weights.shape[0] != n:
                return None
            w = weights
        if not n:
            return None
        slots = [
            a.view(np.int8).astype(np.int64) + o if b else a.astype(np.int64) + o
            for a, o, b in zip(arrays, self.offsets, self.booleans)
        ]
        return slots, w, n

    def _count(self, arrays, weights):
        """(status, key, per-facet count-table contributions, n): the batch counted, nothing shared touched."""
        got = self._fits(arrays, weights)
        if got is None:
            return 4, None, None, 0
        slots, w, n = got
        shared = self._shared()
        present = [np.bincount(np.clip(s, 0, size - 1), minlength=size) > 0 for s, size in zip(slots, self.sizes)]
        adds = []
        for f in range(self.F):
            cols = [f] + shared
            for j in cols:
                if ((slots[j] < 0) | (slots[j] >= self.sizes[j])).any():
                    return 2, None, None, n
            if w is not None and not (np.isfinite(w) & (w >= 0)).all():
                return 2, None, None, n
            # every occurring slot of the table's columns has a code
            if any((self.codes[j][present[j]] < 0).any() for j in cols):
                return 5, None, None, n
            cell = np.zeros(n, dtype=np.int64)
            for j in cols:
                cell += self.codes[j][slots[j]] * self._mult(j)
            cells = self.tables[f].size
            adds.append(
                np.bincount(cell, weights=w, minlength=cells)
                if w is not None
                else np.bincount(cell, minlength=cells).astype(np.int64)
            )
        key = b"".join(p.astype(np.uint8).tobytes() for p in present)
        return 0, key, adds, n

    def add(self, arrays, weights, n_threads):
        """0 (added), the pattern (bytes: not accepted yet), 2, 3, 4 or 5 (declined: nothing changed)."""
        status, key, adds, n = self._count(arrays, weights)
        if status:
            return status
        seen = self.patterns.get(key)
        if seen is None or not self._accepted(seen):
            return key
        with self.lock:
            if not self.fresh():
                return 3
            for t, a in zip(self.tables, adds):
                flat = t.reshape(-1)  # (a view: the tables are C-contiguous)
                flat += a.astype(flat.dtype)
            self.state.n_rows += n
        return 0

    def note(self, key, n_rows):
        if len(key) != self._key_size():
            return 4
        if not self.fresh():
            return 3
        self._sight(bytes(key), int(n_rows))
        return 0

    def allow(self, arrays, weights, n_threads):
        status, key, _, n = self._count(arrays, weights)
        if status:
            return status
        if not self.fresh():
            return 3
        self._sight(key, n)
        return 0

    def note_tables(self, raws, n_rows):
        """The pattern from the one-pass path's slot tables (raws[f]: [facet][group?][label][prediction?])."""
        if not isinstance(raws, list) or len(raws) != self.F or n_rows < 1:
            return 4
        shared = self._shared()
        present = [None] * len(self.sizes)
        for f, raw in enumerate(raws):
            shape = [self.sizes[j] for j in [f] + shared]
            ok = isinstance(raw, np.ndarray) and raw.dtype == np.int64 and raw.flags.c_contiguous
            if not ok or not raw.dtype.isnative or raw.size != math.prod(shape):
                return 4
            occ = raw.reshape(shape) != 0
            for ax, j in enumerate([f] + shared):
                slot_has_row = occ.any(axis=tuple(a for a in range(len(shape)) if a != ax))
                if j == f or f == 0:  # the facet's slots from its own table, the shared ones from facet 0's
                    present[j] = slot_has_row
                if (self.codes[j][slot_has_row] < 0).any():  # an occurring slot without a code
                    return 5
        if not self.fresh():
            return 3
        self._sight(b"".join(p.astype(np.uint8).tobytes() for p in present), int(n_rows))
        return 0

    def copy_patterns(self, other):
        if other is self:
            return
        for k, (b, r) in other.patterns.items():
            if len(k) != self._key_size():
                continue
            mine = self.patterns.setdefault(k, [0, 0])
            mine[0], mine[1] = max(mine[0], b), max(mine[1], r)


__all__ += ["ObjectCodes"]


class ObjectCodes:
    """Twin of ``_core.ObjectCodes`` (``cpp/bindings/encode.cpp``, an Accumulator's object-string
    columns read as codes): ``learn`` adds the exact ``str`` values of a 1-D object array not seen
    yet, in row order, and returns how many were new; ``encode`` gives each row the index of its
    value among the first ``limit`` values learned, as signed integers of ``itemsize`` bytes, or
    None when a row is not an exact ``str`` (a missing value, a number, a ``str`` subclass) or its
    value is not among them."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._index)

    def values(self) -> list[str]:
        return list(self._index)

    @staticmethod
    def _rows(arr: np.ndarray) -> np.ndarray:
        if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype.kind != "O":
            raise ValueError("arr must be a 1-D object array")
        return arr

    def learn(self, arr: np.ndarray) -> int:
        before = len(self._index)
        for v in self._rows(arr):
            if type(v) is str and v not in self._index:
                self._index[v] = len(self._index)
        return len(self._index) - before

    def encode(self, arr: np.ndarray, limit: int, itemsize: int) -> np.ndarray | None:
        rows = self._rows(arr)
        if itemsize not in (1, 2, 4, 8):
            raise ValueError("itemsize must be 1, 2, 4 or 8")
        limit = min(int(limit), len(self._index))
        if limit > (2**62 if itemsize == 8 else 2 ** (8 * itemsize - 1) - 1):
            raise ValueError("limit does not fit the itemsize")
        out = np.empty(len(rows), dtype=f"i{itemsize}")
        for i, v in enumerate(rows):
            k = self._index.get(v) if type(v) is str else None
            if k is None or k >= limit:
                return None
            out[i] = k
        return out


__all__ += ["text_codes"]


def text_codes(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Twin of ``text_codes_cpu`` (``cpp/include/clarion/text_codes.hpp``, the reader's coding of
    a text column): row i's value is ``bytes(data[offsets[i]:offsets[i + 1]])``; returns the codes
    (int32) of the rows' values in first-seen order and the first row (int64) of each code."""
    seen: dict[bytes, int] = {}
    first: list[int] = []
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    off = np.asarray(offsets, dtype=np.int64)
    codes = np.empty(len(off) - 1, dtype=np.int32)
    for i in range(len(off) - 1):
        v = raw[off[i] : off[i + 1]]
        if v not in seen:
            seen[v] = len(first)
            first.append(i)
        codes[i] = seen[v]
    return codes, np.asarray(first, dtype=np.int64)


__all__ += ["csv_lines"]


def csv_lines(data: np.ndarray, need: int, at_eof: bool) -> tuple[np.ndarray, int, int, bool]:
    """Twin of ``csv_lines_cpu`` (``cpp/include/clarion/csv_lines.hpp``, the reader's line
    finding): the lines of ``data`` up to and including the ``need``-th non-blank one (a line ends
    at each ``\\n``; at the end of the file the bytes after the last one are a line too; a line is
    blank when it is ``\\n`` or ``\\r\\n``). Returns (indices of the non-blank lines among those
    taken, how many lines are taken, the byte where they end, whether a ``\\r`` in them is not
    followed by ``\\n``)."""
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    arr = np.frombuffer(raw, dtype=np.uint8)
    stops = np.flatnonzero(arr == 10)
    if at_eof and raw and not raw.endswith(b"\n"):
        stops = np.append(stops, len(raw))
    starts = np.concatenate([np.zeros(1, dtype=np.int64), stops[:-1] + 1]) if len(stops) else stops
    size = stops - starts
    blank = (size == 0) | ((size == 1) & (arr[starts] == 13))
    kept = np.flatnonzero(~blank).astype(np.int64)
    if need <= 0:
        kept, count = kept[:0], 0
    elif len(kept) >= need:
        count = int(kept[need - 1]) + 1
        kept = kept[:need]
    else:
        count = len(stops)
    cut = min(int(stops[count - 1]) + 1, len(raw)) if count else 0
    block = raw[:cut]
    return kept, count, cut, b"\r" in block and block.count(b"\r") != block.count(b"\r\n")


__all__ += ["csv_block"]

_CSV_DBL_MIN = 2.2250738585072014e-308


def _csv_block_problem(status: int, line: int, field: int, n_fields: int, kind: int = 0, fields: int = 0) -> str:
    """The reason ``csv_block_cpu`` gives for a decline (``line``, ``field``: 1-based)."""
    at = f"line {line}, field {field}: "
    if status == 1:
        return at + "a quote character"
    if status == 2:
        return at + "a carriage return not followed by a line feed"
    if status == 3:
        if fields < 0:
            return f"line {line}: more than {n_fields} fields"
        return f"line {line}: {fields} fields, expected {n_fields}"
    if status == 4:
        return at + ("not a plain integer" if kind == 1 else "not a plain decimal number")
    if status == 5:
        return at + (
            "an integer of more than 18 digits"
            if kind == 1
            else "a number beyond the exact range (not finite, |v| >= 2**63, or below the normal range)"
        )
    if status == 6:
        return at + "an empty numeric field"
    return at + "not valid UTF-8"


def _csv_mantissa_end(fb: bytes) -> int:
    """Where the mantissa of ``-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]{1,4})?`` ends in ``fb``; -1 when
    ``fb`` is not of that form."""
    body = fb[1:] if fb.startswith(b"-") else fb
    at = len(fb) - len(body)
    mant, _, exp = body.replace(b"E", b"e").partition(b"e")
    whole, dot, frac = mant.partition(b".")
    if not whole.isdigit() or (dot and not frac.isdigit()):
        return -1
    if len(mant) < len(body):  # an exponent
        digits = exp[1:] if exp[:1] in (b"+", b"-") else exp
        if not digits.isdigit() or len(digits) > 4:
            return -1
    return at + len(mant)


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def csv_block(
    data: np.ndarray, kinds: np.ndarray, n_threads: int = 0, part_lines: int = 8192
) -> tuple[int, str, int, list | None]:
    """Twin of ``csv_block_cpu`` (``cpp/include/clarion/csv_block.hpp``, the reader's compiled CSV
    blocks): the lines of ``data`` (whole CSV lines, no quoting) parsed by field kind (0 skip, 1
    int64, 2 float64, 3 text), checked line by line and field by field in order; the first problem
    declines the block. Returns ``(status, reason, rows, columns)``: status 0 and a column per
    field (None for a skipped one, an int64 / float64 array, or ``(codes int32, first rows int64,
    values)`` of a text field in first-seen order), or the decline's status (1 quote, 2 lone
    carriage return, 3 field count, 4 not a plain number, 5 beyond the exact range, 6 empty
    number, 7 invalid UTF-8) and reason with ``columns`` None. ``n_threads`` and ``part_lines``
    (how the kernel cuts the block for its threads) change nothing."""
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    kinds = [int(k) for k in np.asarray(kinds)]
    nf = len(kinds)
    ints: dict[int, list[int]] = {f: [] for f in range(nf) if kinds[f] == 1}
    floats: dict[int, list[float]] = {f: [] for f in range(nf) if kinds[f] == 2}
    texts: dict[int, tuple[dict, list, list, list]] = {f: ({}, [], [], []) for f in range(nf) if kinds[f] == 3}
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":  # (the block ends with a line break: no line after it)
        lines.pop()
    rows = 0
    for li, line in enumerate(lines, start=1):
        content = line[:-1] if line.endswith(b"\r") and (li < len(lines) or raw.endswith(b"\n")) else line
        if content == b"":
            continue
        fields = content.split(b",")
        for j, fb in enumerate(fields):

            def no(status: int, kind: int = 0, fields: int = 0, j: int = j, li: int = li):
                return status, _csv_block_problem(status, li, j + 1, nf, kind, fields), 0, None

            if b'"' in fb:
                return no(1)
            if b"\r" in fb:
                return no(2)
            if j >= nf:
                return no(3, fields=-1)
            kind = kinds[j]
            if kind == 1:
                if fb == b"":
                    return no(6, 1)
                digits = fb[1:] if fb.startswith(b"-") else fb
                if not digits.isdigit():
                    return no(4, 1)
                if len(digits) > 18:
                    return no(5, 1)
                ints[j].append(int(fb))
            elif kind == 2:
                if fb == b"":
                    return no(6, 2)
                end = _csv_mantissa_end(fb)
                if end < 0:
                    return no(4, 2)
                v = float(fb)
                mantissa = fb[:end]
                a = abs(v)
                if (
                    not math.isfinite(v)
                    or a >= 2.0**63
                    or 0.0 < a < _CSV_DBL_MIN
                    or (a == 0.0 and mantissa.strip(b"-.0") != b"")
                ):
                    return no(5, 2)
                floats[j].append(v)
            elif kind == 3:
                seen, codes, first, values = texts[j]
                code = seen.get(fb)
                if code is None:
                    if not _utf8(fb):
                        return no(7, 3)
                    code = seen[fb] = len(first)
                    first.append(rows)
                    values.append(fb.decode("utf-8"))
                codes.append(code)
            elif not fb.isascii() and not _utf8(fb):
                return no(7)
        if len(fields) < nf:
            return 3, _csv_block_problem(3, li, len(fields), nf, fields=len(fields)), 0, None
        rows += 1
    cols: list = []
    for f in range(nf):
        if kinds[f] == 1:
            cols.append(np.asarray(ints[f], dtype=np.int64))
        elif kinds[f] == 2:
            cols.append(np.asarray(floats[f], dtype=np.float64))
        elif kinds[f] == 3:
            _, codes, first, values = texts[f]
            cols.append((np.asarray(codes, dtype=np.int32), np.asarray(first, dtype=np.int64), values))
        else:
            cols.append(None)
    return 0, "", rows, cols
