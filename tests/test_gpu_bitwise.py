"""CUDA kernels against the CPU kernels, bit for bit (issue 20): `pytest -m gpu`, run by
`tools/gpu-check` on a machine with a device; every test skips cleanly without one (the ``cuda``
fixture of conftest.py).

The comparisons are ``tobytes()`` equalities: the CPU and CUDA drivers share the floating-point
sum schedule (sum_schedule.hpp) and the per-element arithmetic (the headers), and both are built
without fused multiply-add. The one documented exception is SHAP's logit link, where CUDA's
``log`` and the C library's may differ in the last bit: its reduce is compared to 1e-15.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clarion
from clarion import _backend
from clarion.explain import _kernels

pytestmark = pytest.mark.gpu

LEAF_ROWS = 1 << 13


def _same(dev, host) -> None:
    import cupy

    got = cupy.asnumpy(dev)
    assert got.dtype == np.asarray(host).dtype and got.shape == np.asarray(host).shape
    assert got.tobytes() == np.ascontiguousarray(host).tobytes()


def _case(seed, n, G, L, P, B, weighted, wdtype):
    rng = np.random.default_rng(seed)
    groups = rng.integers(-1, G, n).astype(np.int32)
    labels = rng.integers(0, L, n).astype(np.int32)
    preds = rng.integers(0, P, (n, B)).astype(np.int32)
    weights = (rng.lognormal(0.0, 3.0, n) * (rng.random(n) < 0.9)).astype(wdtype) if weighted else None
    return groups, labels, preds, weights


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.just(0), st.just(1), st.integers(2, 300), st.integers(3 * LEAF_ROWS, 6 * LEAF_ROWS)),
    G=st.integers(1, 4),
    L=st.integers(1, 3),
    P=st.integers(1, 3),
    B=st.integers(1, 3),
    R=st.sampled_from([0, 0, 3]),
    weighted=st.booleans(),
    wdtype=st.sampled_from([np.float32, np.float64]),
)
def test_grouped_counts_cuda_equals_cpu_bitwise(cuda, seed, n, G, L, P, B, R, weighted, wdtype):
    groups, labels, preds, weights = _case(seed, n, G, L, P, B, weighted, wdtype)
    kw = dict(n_groups=G, n_labels=L, n_preds=P, n_bootstrap=R, seed=seed)
    host = clarion.grouped_counts(groups, labels, preds, weights=weights, backend="cpu", **kw)
    g, lab, p, w = cuda.put(groups, labels, preds, weights)
    _same(clarion.grouped_counts(g, lab, p, weights=w, backend="cuda", **kw), host)
    if B == 1:  # the fast path: one prediction column, or none
        host1 = clarion.grouped_counts(groups, labels, preds[:, 0], weights=weights, backend="cpu", **kw)
        _same(clarion.grouped_counts(g, lab, p[:, 0], weights=w, backend="cuda", **kw), host1)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.integers(0, 200), st.integers(2 * LEAF_ROWS, 4 * LEAF_ROWS)),
    T=st.integers(0, 6),
    B=st.integers(1, 2),
    R=st.sampled_from([0, 2]),
    weighted=st.booleans(),
)
def test_threshold_counts_cuda_equals_cpu_bitwise(cuda, seed, n, T, B, R, weighted):
    rng = np.random.default_rng(seed)
    groups, labels, _, weights = _case(seed, n, 3, 2, 1, 1, weighted, np.float64)
    scores = rng.random((n, B))
    th = np.sort(rng.random(T))
    kw = dict(n_groups=3, n_labels=2, n_bootstrap=R, seed=seed)
    host = clarion.grouped_threshold_counts(groups, labels, scores, th, weights=weights, backend="cpu", **kw)
    g, lab, s, w = cuda.put(groups, labels, scores, weights)
    _same(clarion.grouped_threshold_counts(g, lab, s, th, weights=w, backend="cuda", **kw), host)


def test_skewed_and_large_integer_counts_are_exact(cuda):
    """Every row in one cell (the warp-aggregation case), and a table too large for shared memory
    (global 64-bit atomics), on 3M rows: exact."""
    n = 3_000_000
    rng = np.random.default_rng(1)
    zeros = np.zeros(n, np.int8)
    host = clarion.grouped_counts(zeros, zeros, zeros, n_groups=2, n_labels=2, n_preds=2, backend="cpu")
    _same(clarion.grouped_counts(*cuda.put(zeros, zeros, zeros), n_groups=2, n_labels=2, n_preds=2), host)
    g = rng.integers(0, 5000, n).astype(np.int32)
    y = rng.integers(0, 2, n).astype(np.int32)
    p = rng.integers(0, 2, n).astype(np.int32)
    host = clarion.grouped_counts(g, y, p, n_groups=5000, n_labels=2, n_preds=2, backend="cpu")
    _same(clarion.grouped_counts(*cuda.put(g, y, p), n_groups=5000, n_labels=2, n_preds=2), host)


class _OnStream:
    """A device array whose __cuda_array_interface__ declares the producer's stream."""

    def __init__(self, a, stream):
        self.__cuda_array_interface__ = {**a.__cuda_array_interface__, "stream": stream}


def test_counts_wait_for_the_producer_stream(cuda):
    """Inputs still being written on another stream (declared in __cuda_array_interface__) are
    read after that stream's work: the result equals the CPU's."""
    import cupy

    n = 4_000_000
    rng = np.random.default_rng(2)
    g = rng.integers(0, 3, n).astype(np.int32)
    y = rng.integers(0, 2, n).astype(np.int32)
    host = clarion.grouped_counts(g, y, n_groups=3, n_labels=2, backend="cpu")
    side = cupy.cuda.Stream(non_blocking=True)
    gd, yd = cupy.asarray(g), cupy.asarray(y)
    cupy.cuda.Device().synchronize()
    with side:  # queued on `side`: a slow no-op pass, then the real values
        gd2, yd2 = cupy.empty_like(gd), cupy.empty_like(yd)
        for _ in range(20):
            cupy.copyto(gd2, gd)
            cupy.copyto(yd2, yd)
    out = cupy.empty((1, 1, 3, 2, 1), dtype=cupy.int64)
    err = _backend.core().grouped_counts_cuda(
        _OnStream(gd2, side.ptr), _OnStream(yd2, side.ptr), None, None, out, 3, 2, 1, 0, 0, 0, 0
    )
    assert tuple(err) == (0, -1, -1)
    _same(out[0, 0, :, :, 0], host)


@pytest.mark.parametrize(("n_a", "n_d", "k"), [(20_000, 7, 1), (20_000, 7, 8), (6_000, 50, 40), (3_000, 2_000, 5)])
def test_knn_cuda_equals_cpu_with_normalised_labels(cuda, n_a, n_d, k):
    """Few queries (the reference rows are split over parts and the k-lists merged), k > 32 (lists
    in global memory), ties (integer coordinates), and labels other than 0/1 (normalised to 1 as
    the CPU does)."""
    import cupy

    core = _backend.core()
    rng = np.random.default_rng(n_a + n_d + k)
    xa = rng.integers(0, 5, (n_a, 3)).astype(np.float64)
    xd = rng.integers(0, 5, (n_d, 3)).astype(np.float64)
    ya = (rng.integers(0, 2, n_a) * rng.choice([1, 3, 255], n_a)).astype(np.uint8)
    pos, votes = np.empty(n_d, np.int64), np.empty(n_d, np.uint8)
    core.knn_vote_cpu(xa, ya, xd, pos, votes, k, 0)
    dpos, dvotes = cupy.empty(n_d, cupy.int64), cupy.empty(n_d, cupy.uint8)
    stream = int(cupy.cuda.get_current_stream().ptr)
    core.knn_vote_cuda(cupy.asarray(xa), cupy.asarray(ya), cupy.asarray(xd), dpos, dvotes, k, stream)
    _same(dpos, pos)
    _same(dvotes, votes)
    assert int(pos.max()) <= k


def test_shap_kernels_cuda_equal_cpu_bitwise(cuda):
    rng = np.random.default_rng(0)
    N, P, M, K, S, D = 7, 6, 4, 33, 9, 2
    X, B = rng.normal(size=(N, P)), rng.normal(size=(K, P))
    Z = (rng.random((S, M)) < 0.5).astype(np.uint8)
    cp_ = np.array([0, 1, 2, 3, -1, 1], np.int32)
    host = _kernels.mask("cpu", X, B, Z, cp_, 3, 31, 1)
    _same(_kernels.mask(cuda, *cuda.put(X, B, Z, cp_), 3, 31, 1), host)
    F = rng.random((N * S * K, D))
    pi = rng.dirichlet(np.ones(K))
    _same(_kernels.reduce(cuda, *cuda.put(F, pi), 0, 1), _kernels.reduce("cpu", F, pi, 0, 1))
    logit = cuda.get(_kernels.reduce(cuda, *cuda.put(F, pi), 1, 1))
    np.testing.assert_allclose(logit, _kernels.reduce("cpu", F, pi, 1, 1), rtol=1e-15, atol=0)
    Y, base, LT = rng.normal(size=(N * S - 4, D)), rng.normal(size=D), rng.normal(size=(S, M))
    phi = rng.normal(size=(N, M, D))
    host = _kernels.apply("cpu", Y, base, LT, 2, N * S - 2, phi.copy(), 1)
    (dphi,) = cuda.put(phi.copy())
    _same(_kernels.apply(cuda, Y, base, LT, 2, N * S - 2, dphi, 1), host)
