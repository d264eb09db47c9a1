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
