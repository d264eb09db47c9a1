"""Backend-dispatched Kernel SHAP kernels (numpy reference / C++ CPU / CUDA).

``impl`` comes from :func:`clarion._backend.resolve`; nothing here asks whether a GPU exists.
The coalition plan and the operator are tiny and always computed on the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clarion import _backend, _counts, _reference


def n_threads(n_jobs: int | None) -> int:
    if n_jobs is None:
        return _counts.env_threads()
    return 0 if n_jobs == -1 else int(n_jobs)


def coalition_plan(impl: str, M: int, n_samples: int, seed: int, paired: bool):
    """(Z [S, M] uint8, w [S], block [S]) on the host."""
    if impl == "numpy" or not _backend.has_core():
        return _reference.shap_coalition_plan(M, n_samples, seed, paired)
    Z = np.empty((n_samples, M), dtype=np.uint8)
    w = np.empty(n_samples, dtype=np.float64)
    block = np.empty(n_samples, dtype=np.int64)
    S = _backend.core().shap_coalition_plan(M, n_samples, seed, paired, Z, w, block)
    return Z[:S].copy(), w[:S].copy(), block[:S].copy()


def wls_operator(impl: str, Z: np.ndarray, w: np.ndarray):
    """(L [M, S], c [M], status) on the host; status 1 = least-squares fallback."""
    if impl == "numpy" or not _backend.has_core():
        return _reference.shap_wls_operator(Z, w)
    M, S = Z.shape[1], Z.shape[0]
    L = np.empty((M, S), dtype=np.float64)
    c = np.empty(M, dtype=np.float64)
    status = _backend.core().shap_wls_operator(_host(Z), _host(w), L, c)
    return L, c, int(status)


def _host(a: Any) -> np.ndarray:
    """``a`` as the compiled kernels read it: C-contiguous, aligned, native byte order."""
    a = np.asarray(a)
    return np.require(a, dtype=a.dtype.newbyteorder("="), requirements=["C", "A"])


def _dev(a: Any) -> Any:
    """A device input as the CUDA kernels read it: C-contiguous (cupy arrays are native-endian)."""
    import cupy

    return cupy.ascontiguousarray(a)


def _stream() -> int:
    import cupy

    return int(cupy.cuda.get_current_stream().ptr)


def mask(
    impl: str, X: Any, B: Any, Z: Any, col_player: Any, q0: int, q1: int, threads: int, buffer: np.ndarray | None = None
) -> Any:
    """Synthetic rows of pairs [q0, q1): [(q1 - q0) K, P] (see shap_drivers.hpp).

    ``buffer`` (CPU only): a C-contiguous array of at least that many rows to write into and
    return a view of, so that batches reuse warm memory."""
    K, P = B.shape
    if impl == "numpy":
        return _reference.shap_mask(X, B, Z, col_player, q0, q1)
    if impl == "cpu":
        X, B = _host(X), _host(B)
        rows = (q1 - q0) * K
        if buffer is not None and buffer.shape[0] >= rows and buffer.dtype == X.dtype:
            out = buffer[:rows]
        else:
            out = np.empty((rows, P), dtype=X.dtype)
        _backend.core().shap_mask_cpu(X, B, _host(Z), _host(col_player), q0, q1, out, threads)
        return out
    import cupy

    X, B, Z, col_player = _dev(X), _dev(B), _dev(Z), _dev(col_player)
    out = cupy.empty(((q1 - q0) * K, P), dtype=X.dtype)
    _backend.core().shap_mask_cuda(X, B, Z, col_player, q0, q1, out, _stream())
    return out


def reduce(impl: str, F: Any, pi: Any, link: int, threads: int) -> Any:
    """Y[r, d] = link(sum_k pi_k F[r K + k, d])."""
    K = pi.shape[0]
    R, D = F.shape[0] // K, F.shape[1]
    if impl == "numpy":
        return _reference.shap_reduce(F, pi, link)
    if impl == "cpu":
        Y = np.empty((R, D), dtype=np.float64)
        _backend.core().shap_reduce_cpu(_host(F), _host(pi), link, Y, threads)
        return Y
    import cupy

    F, pi = cupy.ascontiguousarray(F), _dev(pi)
    Y = cupy.empty((R, D), dtype=cupy.float64)
    _backend.core().shap_reduce_cuda(F, pi, link, Y, _stream())
    return Y


def apply(impl: str, Y: Any, base: Any, LT: Any, q0: int, q1: int, phi: Any, threads: int) -> Any:
    """phi[n, m, d] += LT[s, m] (Y[q - q0, d] - base[d]) for pairs q = n S + s in [q0, q1)."""
    if impl == "numpy":
        return _reference.shap_apply(Y, base, LT, q0, q1, phi)
    if impl == "cpu":
        _backend.core().shap_apply_cpu(_host(Y), _host(base), _host(LT), q0, q1, phi, threads)
        return phi
    Y, base, LT = _dev(Y), _dev(base), _dev(LT)
    _backend.core().shap_apply_cuda(Y, base, LT, q0, q1, phi, _stream())
    return phi


def background_permutations(M: int, K: int, seed: int) -> np.ndarray:
    """The relabellings of the cubic estimator's plan, one per background row (issue 19):
    ``perm[k]`` (int64 [K, M]); ``perm[0]`` is the identity, ``perm[k]`` for k >= 1 the k-th
    permutation drawn by ``numpy.random.default_rng([seed, M, 0, 0x7065726D])`` (so it does not
    depend on K). Background row k evaluates the plan's coalition s as ``Z[s, perm[k]]`` (player j
    present when ``Z[s, perm[k][j]]``), whose operator is ``L[perm[k]], c[perm[k]]``."""
    rng = np.random.default_rng([int(seed) & ((1 << 64) - 1), int(M), 0, 0x7065726D])
    out = np.empty((K, M), dtype=np.int64)
    if K:
        out[0] = np.arange(M)
    for k in range(1, K):
        out[k] = rng.permutation(M)
    return out


# -- the "cubic" estimator (issue 19): a nested stratified paired plan and a third-order operator --
#
# Built once per explainer on the host with numpy (tiny next to the model work); the per-row work
# (masking, model, background reduction, operator application) stays in the compiled kernels.

#: candidates drawn per batch when a stratum is sampled by rejection (fixed, so a stratum's stream
#: of coalitions does not depend on how many are taken from it)
_DRAW_BATCH = 4096
#: strata with at most this many pairs are enumerated and shuffled instead of sampled by rejection
_ENUMERATE_PAIRS = 1 << 17
#: the cubic terms are used while M + C(M, 3) stays at most this (M <= 31)
CUBIC_MAX_TERMS = 4600
#: ridge on the cubic coefficients, relative to the total kernel weight (1), per coefficient per
#: pair: ``CUBIC_RIDGE * Q / (S / 2)`` (Q coefficients, S coalitions). A fixed prior on the
#: coefficients, as the weights are normalised: it fades as the plan grows (measured best among
#: fixed ridges 0.001-0.2 on boosted, logistic and MLP models, M = 12-20)
CUBIC_RIDGE = 0.05
#: weight of the fifth-order odd terms against the cubic ones (issue 19): the degree-5 coefficients
#: get the ridge of the cubic ones divided by ``QUINTIC_WEIGHT * C(M, 3) / C(M, 5)``, i.e. their
#: total prior variance is ``QUINTIC_WEIGHT`` times that of the cubic block whatever M (measured
#: on boosted, logistic and MLP models at M = 12 and 20 with exact values among 0.05, 0.12, 0.3)
QUINTIC_WEIGHT = 0.12
#: the degree-5 terms enter only through the dual form (C(M, 5) coefficients are too many for the
#: primal one), whose cost is (S + M + 1)^3: they are used while S + M + 1 stays at most this
QUINTIC_MAX_DUAL = 4200


def _stratum_pairs(M: int, p: int) -> int:
    """Complement pairs (z, 1 - z) with |z| = p: C(M, p), or C(M, p) / 2 for the middle size."""
    from math import comb

    return comb(M, p) // 2 if 2 * p == M else comb(M, p)


def _canonical(Z: np.ndarray, p: int, M: int) -> np.ndarray:
    """The representative of each pair: the size-p member, or for the middle size the member that
    contains player 0."""
    if 2 * p == M:
        flip = Z[:, 0] == 0
        Z[flip] = 1 - Z[flip]
    return Z


def _stratum_stream(M: int, p: int, n: int, seed: int) -> np.ndarray:
    """The first ``n`` pairs (representatives, uint8 [n, M]) of stratum p's seeded stream of distinct
    pairs. The stream is a function of (M, p, seed) only, so a plan of a larger budget extends the
    plan of a smaller one (the adaptive mode reuses the model outputs of earlier rounds)."""
    import itertools

    N = _stratum_pairs(M, p)
    rng = np.random.default_rng([int(seed) & ((1 << 64) - 1), M, p])
    if N <= _ENUMERATE_PAIRS:  # enumerate and shuffle
        if 2 * p == M:
            rest = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(1, M), p - 1)), np.int64)
            idx = np.hstack([np.zeros((N, 1), np.int64), rest.reshape(N, p - 1)])
        else:
            idx = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(M), p)), np.int64)
            idx = idx.reshape(N, p)
        idx = idx[rng.permutation(N)[:n]]
        Z = np.zeros((len(idx), M), np.uint8)
        np.put_along_axis(Z, idx, 1, axis=1)
        return Z
    out: list[np.ndarray] = []
    seen: set[bytes] = set()
    got = 0
    while got < n:  # rejection: uniform p-subsets in fixed-size batches, first occurrences kept
        idx = np.argsort(rng.random((_DRAW_BATCH, M)), axis=1)[:, :p]
        Z = np.zeros((_DRAW_BATCH, M), np.uint8)
        np.put_along_axis(Z, idx, 1, axis=1)
        Z = _canonical(Z, p, M)
        keys = np.packbits(Z, axis=1)
        keep = []
        for i in range(_DRAW_BATCH):
            k = keys[i].tobytes()
            if k not in seen:
                seen.add(k)
                keep.append(i)
                got += 1
                if got == n:
                    break
        out.append(Z[keep])
    return np.vstack(out) if out else np.zeros((0, M), np.uint8)


def stratified_plan(M: int, n_samples: int, seed: int):
    r"""The stratified paired plan of ``n_samples`` coalitions (``n_samples // 2`` pairs).

    Strata are the pair sizes p = 1..floor(M/2) (coalitions of size p and M - p). Pairs are given to
    the strata by water-filling: level by level, one more pair to every stratum that still has one
    (a stratum small enough is therefore enumerated whole, and the plan of a larger budget extends
    this one: pair k of the plan is pair k of every larger plan). Within a stratum the pairs are a
    uniform sample without replacement. A coalition of stratum p gets the weight
    :math:`\mu_p / (2 n_p)`, :math:`\mu_p` being the Shapley-kernel mass of its sizes
    (:math:`2 (M-1)/(p (M-p))`, once for the middle size) and :math:`n_p` its sampled pairs, so every
    stratum carries its exact kernel mass (weights normalised to sum 1). With every pair taken the
    weights are the Shapley kernel's and the estimate is exact.

    Returns ``(Z [S, M] uint8, w [S], stratum [S] (p), n_p [floor(M/2) + 1], N_p [same])``; a pair
    is rows 2k (size p) and 2k + 1 (its complement).
    """
    B = n_samples // 2
    P = M // 2
    caps = np.array([0] + [_stratum_pairs(M, p) for p in range(1, P + 1)], dtype=object)
    # water-filling: largest level t with sum_p min(N_p, t) <= B, the remainder to the smallest p
    n = np.zeros(P + 1, dtype=np.int64)
    lo, hi = 0, B + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if sum(min(int(caps[p]), mid) for p in range(1, P + 1)) <= B:
            lo = mid
        else:
            hi = mid
    for p in range(1, P + 1):
        n[p] = min(int(caps[p]), lo)
    extra = B - int(n.sum())
    for p in range(1, P + 1):
        if extra == 0:
            break
        if int(caps[p]) > lo:
            n[p] += 1
            extra -= 1
    reps, level, strat = [], [], []
    for p in range(1, P + 1):
        if n[p]:
            reps.append(_stratum_stream(M, p, int(n[p]), seed))
            level.append(np.arange(n[p]))
            strat.append(np.full(n[p], p))
    rep = np.vstack(reps)
    lev, st = np.concatenate(level), np.concatenate(strat)
    order = np.lexsort((st, lev))  # the water-filling order: level, then stratum
    rep, st = rep[order], st[order]
    Z = np.empty((2 * len(rep), M), np.uint8)
    Z[0::2], Z[1::2] = rep, 1 - rep
    stratum = np.repeat(st, 2)
    mass = np.array([0.0] + [(M - 1) / (p * (M - p)) * (1.0 if 2 * p == M else 2.0) for p in range(1, P + 1)])
    w = mass[stratum] / (2.0 * n[stratum])
    w /= w.sum()
    return Z, w, stratum, n, np.array([0] + [int(c) for c in caps[1:]], dtype=np.float64)


def cubic_terms(M: int) -> np.ndarray:
    """The triples (i < j < k) of the cubic terms, [T, 3]; empty when M + C(M, 3) exceeds
    :data:`CUBIC_MAX_TERMS` (the operator is then the first-order one)."""
    from math import comb

    if M < 3 or M + comb(M, 3) > CUBIC_MAX_TERMS:
        return np.zeros((0, 3), dtype=np.int64)
    i, j, k = np.array(
        [(a, b, c) for a in range(M) for b in range(a + 1, M) for c in range(b + 1, M)], dtype=np.int64
    ).T
    return np.stack([i, j, k], axis=1)


def _esym(k: int, n: int, m: np.ndarray) -> np.ndarray:
    """e_k (elementary symmetric polynomial) of n entries of +-1 of which m are -1:
    sum_j (-1)^j C(m, j) C(n - m, k - j)."""
    from math import comb

    m = np.asarray(m, dtype=np.int64)
    table = np.array(
        [sum((-1) ** j * comb(mm, j) * comb(n - mm, k - j) for j in range(0, k + 1)) for mm in range(n + 1)],
        dtype=np.float64,
    )
    return table[m]


def _odd_sums(d: int, M: int, Zi: np.ndarray, size: np.ndarray, x: np.ndarray, ham: np.ndarray):
    r"""The degree-d odd terms :math:`t_A = (\chi_A + 1)/2` (|A| = d) of the dual form, summed in
    closed form: their Gram matrix :math:`\sum_A t_A(z_s) t_A(z_{s'})`, :math:`\sum_A t_A(z_s)` and
    :math:`\frac1d \sum_{A \ni i} t_A(z_s)` ([M, S])."""
    from math import comb

    Cd = float(comb(M, d))
    es = _esym(d, M, M - size)
    G = 0.25 * (_esym(d, M, ham) + es[:, None] + es[None, :] + Cd)
    minus_rest = (M - size)[:, None] - (Zi == 0)  # -1 entries among the other M - 1
    H = ((x * _esym(d - 1, M - 1, minus_rest) + comb(M - 1, d - 1)) / (2.0 * d)).T
    return G, 0.5 * (es + Cd), H


def _cubic_dual(Z: np.ndarray, w: np.ndarray, ridge: float, hat: bool, quintic: float = 0.0):
    r"""The operator of :func:`cubic_operator` through its dual (kernel) form (None when the
    system is singular to working precision), of size S + M + 1
    instead of Q = M + C(M, 3): the cubic terms enter only through their Gram matrix
    :math:`G_{ss'} = \sum_T t_T(z_s) t_T(z_{s'}) = \frac14\big(e_3(x_s \circ x_{s'}) + e_3(x_s) +
    e_3(x_{s'}) + \binom M3\big)` (closed form from Hamming distances). With
    :math:`b = T^\top \beta - \nu 1`, the KKT system is symmetric:

    .. math::

        \begin{pmatrix} \lambda W^{-1} + G & Z & -\tau \\ Z^\top & 0 & -1 \\ -\tau^\top & -1^\top & Q_3
        \end{pmatrix} \begin{pmatrix} \beta \\ a \\ \nu \end{pmatrix} =
        \begin{pmatrix} y \\ 0 \\ -\Delta \end{pmatrix}

    (:math:`\tau_s = \sum_T t_T(z_s)`, :math:`Q_3 = \binom M3`), and
    :math:`\phi = a + H \beta - \nu \binom{M-1}2 / 3` with
    :math:`H_{is} = \frac13 \sum_{T \ni i} t_T(z_s)`. The residuals are
    :math:`r = \lambda W^{-1} \beta`.

    ``quintic`` = :math:`\gamma > 0` adds the degree-5 odd terms with the ridge
    :math:`\lambda / \gamma`: the same system with every degree-3 quantity (G, :math:`\tau`,
    :math:`Q_3`, H, :math:`\binom{M-1}2/3`) plus :math:`\gamma` times its degree-5 twin
    (:math:`\frac14(e_5(x_s \circ x_{s'}) + e_5(x_s) + e_5(x_{s'}) + \binom M5)`, ...,
    :math:`\binom{M-1}4/5`); the attributions are the Shapley values of the fitted
    :math:`g = a^\top z + \sum_{|A| = 3} b_A t_A + \sum_{|A| = 5} b_A t_A`."""
    from math import comb

    S, M = Z.shape
    Zi = Z.astype(np.int64)
    size = Zi.sum(axis=1)
    Zf = Z.astype(np.float64)
    x = 2.0 * Zf - 1.0
    ham = (size[:, None] + size[None, :] - 2 * (Zf @ Zf.T).round().astype(np.int64)).astype(np.int64)
    C3 = float(comb(M, 3))
    G, tau, H = _odd_sums(3, M, Zi, size, x, ham)
    Qc, econst = C3, comb(M - 1, 2) / 3.0
    if quintic > 0 and M >= 5:
        G5, tau5, H5 = _odd_sums(5, M, Zi, size, x, ham)
        G += quintic * G5
        tau += quintic * tau5
        H += quintic * H5
        Qc += quintic * comb(M, 5)
        econst += quintic * comb(M - 1, 4) / 5.0
    n = S + M + 1
    K = np.zeros((n, n))
    K[:S, :S] = G
    K[np.arange(S), np.arange(S)] += ridge / w
    K[:S, S : S + M] = Zf
    K[S : S + M, :S] = Zf.T
    K[:S, -1] = -tau
    K[-1, :S] = -tau
    K[S : S + M, -1] = -1.0
    K[-1, S : S + M] = -1.0
    K[-1, -1] = Qc
    E = np.zeros((M, n))
    E[:, :S] = H  # H[i, s] = (x_i e_2(x without i) + C(M-1, 2)) / 6 (+ the degree-5 twin)
    E[:, S : S + M] = np.eye(M)
    E[:, -1] = -econst
    try:  # the same solve with or without hat, so that both give the same operator bit for bit
        X = np.linalg.solve(K, E.T)
        Kinv = np.linalg.inv(K) if hat else None
    except np.linalg.LinAlgError:
        return None
    L = np.ascontiguousarray(X[:S].T)
    c = -X[-1].copy()
    # a plan too small to determine the linear part makes K (nearly) singular: the caller then
    # takes the primal form, whose pseudo-inverse keeps the efficiency exact
    ok = np.isfinite(X).all() and np.abs(K @ X - E.T).max() <= 1e-9 * max(1.0, np.abs(E).max())
    if not ok or np.abs(L.sum(axis=0)).max() > 1e-9 or abs(c.sum() - 1.0) > 1e-9:
        return None
    extra = None
    if hat:
        scale = ridge / w
        R = scale[:, None] * Kinv[:S, :S]  # r = R y + rdelta * Delta
        extra = {"R": R, "rdelta": -scale * Kinv[:S, -1], "h": 1.0 - np.diag(R), "Q": M + int(C3)}
    return L, c, 0, extra


#: rows of the plan handled at once by the paired form (bounds its temporary memory)
_PAIRED_CHUNK = 4096


def _is_paired(Z: np.ndarray, w: np.ndarray) -> bool:
    """Whether rows 2k and 2k + 1 are complements with equal weights (every stratified plan)."""
    S = Z.shape[0]
    if S < 2 or S % 2:
        return False
    return bool((Z[0::2].astype(np.int16) + Z[1::2] == 1).all() and np.array_equal(w[0::2], w[1::2]))


def _cubic_paired(Z: np.ndarray, w: np.ndarray, ridge: float, hat: bool):
    r"""The primal operator of :func:`cubic_operator` on a paired plan (rows 2k and 2k + 1
    complements with equal weights), from the pairs' first members only.

    In the centred features :math:`\tilde X = X - \frac12` a complement's row is :math:`-\tilde X`,
    so :math:`\sum_s w_s X_s X_s^\top = 2 \sum_k w_k \tilde X_k \tilde X_k^\top + \frac14 1 1^\top`
    (one symmetric rank-k update on S/2 rows instead of a product on S), the system is inverted
    once (:math:`A^{-1}`, Q x Q), and the hat diagonal
    :math:`h_s = w_s (X_s^\top A^{-1} X_s - (X_s^\top t)^2 / s)` comes from the same S/2 rows
    (:math:`X_{2k+1} = 1 - X_{2k}`). Returns None when A is not positive definite to working
    precision (the caller then takes the generic primal form and its pseudo-inverse). The
    residuals are computed per row by :func:`stratified_solve` from ``extra`` =
    ``{"Ainv", "Xh", "wh", "t", "s", "h", "Q"}`` (no S x Q operator is formed)."""
    S, M = Z.shape
    trip = cubic_terms(M)
    Zh = Z[0::2].astype(np.float64)
    wh = w[0::2]
    Q = M + len(trip)
    A = np.zeros((Q, Q))
    for a in range(0, len(Zh), _PAIRED_CHUNK):  # A = 2 sum_k w_k Xc_k Xc_k^T (numpy: a rank-k update)
        z = Zh[a : a + _PAIRED_CHUNK]
        x = 2.0 * z - 1.0
        Xc = np.empty((len(z), Q))
        Xc[:, :M] = 0.5 * x
        Xc[:, M:] = 0.5 * (x[:, trip[:, 0]] * x[:, trip[:, 1]] * x[:, trip[:, 2]])
        Xc *= np.sqrt(2.0 * wh[a : a + _PAIRED_CHUNK])[:, None]
        A += Xc.T @ Xc
    A += 0.25
    A[np.arange(M, Q), np.arange(M, Q)] += ridge
    # with a positive ridge on the cubic block, v'Av = sum_s w_s (z_s . v_lin)^2 + ridge |v_cub|^2 +
    # (1'v)^2 / 4 vanishes only for v = (v_lin, 0) with Z v_lin = 0: A is positive definite iff its
    # M x M linear block is, so that block alone is checked (a Cholesky of the whole costs Q^3 / 3)
    ev = np.linalg.eigvalsh(A[:M, :M])
    if not ev[0] > 1e-12 * ev[-1]:
        return None
    try:
        Ainv = np.linalg.inv(A)
    except np.linalg.LinAlgError:
        return None
    Ainv = 0.5 * (Ainv + Ainv.T)
    T = np.zeros((Q, M))
    T[:M] = np.eye(M)
    if len(trip):
        T[M + np.arange(len(trip))[:, None], trip] = 1.0 / 3.0
    t = Ainv.sum(axis=1)
    U = Ainv @ T
    s = t.sum()
    Tt = T.T @ t
    L = np.empty((M, S))
    h = np.empty(S) if hat else None
    Xh = np.empty((len(Zh), Q)) if hat else None
    oneU, one_t = U.sum(axis=0), s
    for a in range(0, len(Zh), _PAIRED_CHUNK):
        z = Zh[a : a + _PAIRED_CHUNK]
        x = 2.0 * z - 1.0
        X = np.empty((len(z), Q))
        X[:, :M] = z
        X[:, M:] = 0.5 * (x[:, trip[:, 0]] * x[:, trip[:, 1]] * x[:, trip[:, 2]] + 1.0)
        ww = wh[a : a + _PAIRED_CHUNK]
        XU, Xt = X @ U, X @ t  # [k, M], [k]
        k0, k1 = 2 * a, 2 * (a + len(z))
        L[:, k0:k1:2] = (ww[:, None] * (XU - np.outer(Xt, Tt) / s)).T
        L[:, k0 + 1 : k1 : 2] = (ww[:, None] * ((oneU - XU) - np.outer(one_t - Xt, Tt) / s)).T
        if hat:
            Xh[a : a + len(z)] = X
            XA = X @ Ainv
            q1 = np.einsum("kq,kq->k", XA, X)
            # (1 - X) A^-1 (1 - X) = 1'A^-1 1 - 2 X t + X A^-1 X
            q2 = s - 2.0 * Xt + q1
            h[k0:k1:2] = ww * (q1 - Xt * Xt / s)
            h[k0 + 1 : k1 : 2] = ww * (q2 - (s - Xt) ** 2 / s)
    c = Tt / s
    if not (np.isfinite(L).all() and np.abs(L.sum(axis=0)).max() <= 1e-9 and abs(c.sum() - 1.0) <= 1e-9):
        return None
    extra = None
    if hat:
        extra = {"Ainv": Ainv, "Xh": Xh, "wh": wh, "t": t, "s": s, "h": h, "Q": Q}
    return L, c, 0, extra


def quintic_weight(M: int, n_samples: int) -> float:
    r"""The weight :math:`\gamma` of the degree-5 terms for M players and a plan of ``n_samples``
    coalitions: ``QUINTIC_WEIGHT * C(M, 3) / C(M, 5)`` while the dual form is affordable
    (``n_samples + M + 1 <= QUINTIC_MAX_DUAL``) and the cubic terms are used, else 0 (the cubic
    surrogate alone). A fixed rule of (M, S): one operator per plan."""
    from math import comb

    if M < 5 or not len(cubic_terms(M)) or n_samples + M + 1 > QUINTIC_MAX_DUAL:
        return 0.0
    return QUINTIC_WEIGHT * comb(M, 3) / comb(M, 5)


def cubic_operator(
    Z: np.ndarray,
    w: np.ndarray,
    ridge: float | None = None,
    hat: bool = False,
    form: str = "auto",
    quintic: float | None = None,
):
    r"""The operator of the third-order surrogate fit: :math:`\phi = L y + c \Delta`.

    Fits :math:`g(z) = \sum_i a_i z_i + \sum_{i<j<k} b_{ijk} t_{ijk}(z)`, with
    :math:`t_{ijk} = (x_i x_j x_k + 1)/2` and :math:`x = 2z - 1` (so :math:`t(0) = 0`,
    :math:`t(1) = 1`), by weighted least squares on the plan (weights summing to 1), a ridge on the b's
    (``ridge``, default :data:`CUBIC_RIDGE` times coefficients per pair), under
    :math:`\sum a + \sum b = \Delta`; the attributions are the Shapley values of g:
    :math:`\phi_i = a_i + \frac13 \sum_{T \ni i} b_T`. Linear in y (one fixed operator), exactly
    efficient (:math:`1^\top L = 0`, :math:`1^\top c = 1`), exact for any game whose odd part has
    degree at most 3 (paired plans already cancel the even part), and exact for every game when
    the plan holds every coalition with the kernel weights.

    ``form``: ``"primal"`` (a Q x Q solve), ``"paired"`` (the same from the first members of the
    pairs of a paired plan, see :func:`_cubic_paired`; about 4x fewer operations), ``"dual"`` (an
    (S + M + 1) square one, see :func:`_cubic_dual`; needs a positive ridge) or ``"auto"`` (the
    cheaper); same operator.

    ``quintic``: weight :math:`\gamma` of the degree-5 odd terms (their ridge is
    :math:`\lambda / \gamma`); None takes :func:`quintic_weight` (positive only while the dual form
    is affordable), 0 the cubic surrogate alone. With :math:`\gamma > 0` the dual form is taken
    (``form`` "auto" or "dual"; with a positive ridge); if it fails (a plan too small for the linear
    part) the cubic operator is returned. Its standard-error terms (``hat=True``) are those of
    the cubic fit (conservative: its residuals keep the degree-5 part), L is the same with or
    without them.

    Returns ``(L [M, S], c [M], status, extra)``: status 1 when the normal matrix was singular and
    a pseudo-inverse gave the minimum-norm solution; ``extra`` (``hat=True``) holds ``Theta`` [Q, S],
    ``ctheta`` [Q], ``X`` [S, Q] and the hat diagonal ``h`` [S] for the residuals of
    :func:`stratified_solve` (the dual form gives the residual operator ``R`` [S, S], ``rdelta``,
    ``h`` and ``Q`` instead), else None.
    """
    S, M = Z.shape
    trip = cubic_terms(M)
    Qc = M + len(trip)
    if ridge is None:
        ridge = CUBIC_RIDGE * Qc / max(1.0, S / 2.0)
    if quintic is None:
        quintic = quintic_weight(M, S)
    if quintic > 0 and len(trip) and ridge > 0 and form in ("auto", "dual"):
        got = _cubic_dual(Z, w / w.sum(), ridge, False, quintic)
        if got is not None:
            if not hat:
                return got
            # the standard-error terms (residuals, leverages) of the cubic fit: the degree-5 terms
            # would absorb part of the residuals without lowering the error as much (measured:
            # rms(error / std) up to 1.4 with their own residuals); L stays the degree-5 one
            extra = cubic_operator(Z, w, ridge=ridge, hat=True, form=form, quintic=0.0)[3]
            if extra is not None:
                return got[0], got[1], got[2], extra
    paired = len(trip) > 0 and ridge > 0 and _is_paired(Z, w)
    primal_cost = (S * Qc * Qc / 2 + Qc**3) if paired else (2 * S * Qc * Qc + Qc**3)
    cheaper = (S + M + 1) ** 3 < primal_cost
    if len(trip) and ridge > 0 and (form == "dual" or (form == "auto" and cheaper)):
        got = _cubic_dual(Z, w / w.sum(), ridge, hat)  # fewer coalitions than coefficients: cheaper
        if got is not None:
            return got
    if paired and form in ("auto", "paired"):
        got = _cubic_paired(Z, w / w.sum(), ridge, hat)
        if got is not None:
            return got
    w = w / w.sum()
    Zf = Z.astype(np.float64)
    if len(trip):
        x = 2.0 * Zf - 1.0
        X = np.hstack([Zf, (x[:, trip[:, 0]] * x[:, trip[:, 1]] * x[:, trip[:, 2]] + 1.0) / 2.0])
    else:
        X = Zf
    Q = X.shape[1]
    A = (X.T * w) @ X
    A[M:, M:] += ridge * np.eye(Q - M)
    T = np.zeros((Q, M))
    T[:M] = np.eye(M)
    if len(trip):
        T[M + np.arange(len(trip))[:, None], trip] = 1.0 / 3.0
    rhs = np.hstack([T, np.ones((Q, 1))])
    XtW = X.T * w  # [Q, S]
    for status in (0, 1):
        if status == 0:
            try:
                np.linalg.cholesky(A)  # positive definite to working precision
                sol = np.linalg.solve(A, rhs)
            except np.linalg.LinAlgError:
                continue
            solve = lambda b: np.linalg.solve(A, b)  # noqa: E731
        else:  # singular: the minimum-norm solution (the constraint still holds exactly)
            solve = np.linalg.pinv(A, hermitian=True).__matmul__
            sol = solve(rhs)
        U, t = sol[:, :M], sol[:, M]
        s = t.sum()
        tX = t @ XtW
        L = U.T @ XtW - np.outer(T.T @ t, tX) / s
        c = (T.T @ t) / s
        if status == 1 or (np.isfinite(L).all() and np.abs(L.sum(axis=0)).max() <= 1e-9 and abs(c.sum() - 1) <= 1e-9):
            break
    extra = None
    if hat:
        theta = solve(XtW)
        theta -= np.outer(t, tX) / s
        h = np.einsum("sq,qs->s", X, theta)
        extra = {"Theta": theta, "ctheta": t / s, "X": X, "h": h, "Q": Q}
    return L, c, status, extra


def _host_apply(impl: str, y: np.ndarray, LT: np.ndarray, threads: int) -> np.ndarray:
    """``out[n, m, d] = sum_s LT[s, m] y[n, s, d]`` on the host, by the apply kernel (its fixed
    summation order makes every row's result independent of the rows beside it)."""
    n, S, D = y.shape
    out = np.zeros((n, LT.shape[1], D))
    if n == 0 or S == 0:
        return out
    which = "numpy" if impl == "numpy" or not _backend.has_core() else "cpu"
    return apply(which, y.reshape(n * S, D), np.zeros(D), np.ascontiguousarray(LT), 0, n * S, out, threads)


def stratified_solve(
    impl: str,
    y: np.ndarray,
    delta: np.ndarray,
    L: np.ndarray,
    c: np.ndarray,
    extra: dict | None,
    stratum: np.ndarray,
    n_p: np.ndarray,
    N_p: np.ndarray,
    threads: int,
):
    r"""Attributions and their standard errors for rows whose coalition values are all at hand.

    y [n, S, D] (centred values of the plan's coalitions), delta [n, D]. Returns (phi [n, M, D],
    std [n, M, D]). The standard error is the design-based (linearised) one of a stratified sample
    without replacement of pairs: with the surrogate's residuals :math:`r_s` inflated by the
    leverage, :math:`\tilde r_s = r_s / (1 - h_{ss})`, pair k's contribution
    :math:`d_{jk} = L_{j,2k} \tilde r_{2k} + L_{j,2k+1} \tilde r_{2k+1}`, and
    :math:`\sigma_j^2 = \sum_p (1 - n_p/N_p)\, \frac{n_p}{n_p - 1} \sum_{k \in p} (d_{jk} - \bar d_{jp})^2`
    (enumerated strata add nothing), times the degrees-of-freedom factor :math:`1 + Q/(S/2)` for
    the Q coefficients fitted on S/2 pairs (residuals of a fit are smaller than its errors; the
    factor was checked against exact values: rms(error / std) 0.9-1.8 for Q/(S/2) in 0.2-1.9).
    ``extra`` None (exact plan) gives zeros.
    """
    n, S, D = y.shape
    M = L.shape[0]
    phi = _host_apply(impl, y, L.T, threads) + c[None, :, None] * delta[:, None, :]
    std = np.zeros_like(phi)
    if extra is None or n == 0:
        return phi, std
    if "R" in extra:  # dual form: the residual operator itself
        res = _host_apply(impl, y, extra["R"].T, threads) + extra["rdelta"][None, :, None] * delta[:, None, :]
    elif "Ainv" in extra:  # paired form: X^T W y from the pairs, then the coefficients, then X theta
        Xh, wh, t, s = extra["Xh"], extra["wh"], extra["t"], extra["s"]
        # sum_s w_s X_s y_s = sum_k w_k (X_k (y_2k - y_2k+1) + y_2k+1)
        b = _host_apply(impl, y[:, 0::2] - y[:, 1::2], Xh * wh[:, None], threads)
        b += _host_apply(impl, y[:, 1::2], wh[:, None], threads)  # [n, 1, D], broadcast over Q
        g = _host_apply(impl, b, extra["Ainv"], threads)  # A^-1 X^T W y  [n, Q, D]
        tb = _host_apply(impl, b, t[:, None], threads)[:, 0, :]  # 1^T A^-1 X^T W y
        theta = g + t[None, :, None] * ((delta - tb) / s)[:, None, :]  # 1^T theta = delta
        xt = _host_apply(impl, theta, Xh.T, threads)  # X_2k theta  [n, S/2, D]
        res = np.empty_like(y)
        res[:, 0::2] = y[:, 0::2] - xt
        res[:, 1::2] = y[:, 1::2] - (delta[:, None, :] - xt)  # X_2k+1 = 1 - X_2k
    else:
        theta = _host_apply(impl, y, extra["Theta"].T, threads) + extra["ctheta"][None, :, None] * delta[:, None, :]
        res = y - _host_apply(impl, theta, extra["X"].T, threads)
    r = res / np.maximum(1.0 - extra["h"], 1e-3)[None, :, None]
    d = L[None, :, 0::2, None] * r[:, None, 0::2, :] + L[None, :, 1::2, None] * r[:, None, 1::2, :]  # [n, M, B, D]
    pair_stratum = stratum[0::2]
    var = np.zeros((n, M, D))
    for p in range(1, len(n_p)):
        k = int(n_p[p])
        if k < 2 or k >= N_p[p]:
            continue
        dp = d[:, :, pair_stratum == p, :]
        dev = dp - dp.mean(axis=2, keepdims=True)
        var += (1.0 - k / N_p[p]) * k / (k - 1) * (dev * dev).sum(axis=2)
    return phi, np.sqrt(var * (1.0 + extra["Q"] / max(1.0, S / 2.0)))
