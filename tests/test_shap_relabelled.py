"""The cubic estimator with one relabelled design per background row (issue 19): background row k
evaluates the plan's coalitions with the players relabelled by perm_k (perm_0 the identity), and
phi = sum_k pi_k (L[perm_k] (y_k - f(b_k)) + c[perm_k] (f(x) - f(b_k))). Checked against a plain
numpy implementation of that formula, and for the cases that keep the shared design (estimator
"shap", exact mode, the logit link, features_to_explain, rows with null players) against the
shared-design formula."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion import _backend
from clarion._reference import exact_shapley
from clarion.explain import Baseline, KernelShap, _kernels

BACKENDS = ["numpy", "cpu"] if _backend.has_core() else ["numpy"]


def _model(M: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(M, 4))

    def f(a):
        # elementwise products and a fixed-order sum, no BLAS: each row's output does not depend on
        # the batch it is in (a matrix product's last bit can), so chunked runs compare bit for bit
        a = np.asarray(a, dtype=np.float64)
        h = np.tanh((a[:, :, None] * W[None, :, :]).sum(axis=1))
        return h.sum(axis=1) + a[:, 0] * a[:, 1] * np.sin(a[:, -1]) + np.maximum(a[:, 1], 0.0) ** 2

    return f


def _relabelled_reference(f, X, B, pi, Z, L, c, perms):
    """Plain numpy: sum_k pi_k (L[p_k] (y_k - f(b_k)) + c[p_k] (f(x) - f(b_k))), y_k[s] = f(x where
    Z[s, p_k], b_k elsewhere); one column per player."""
    out = np.zeros((len(X), Z.shape[1]))
    fb = f(B)
    for n, x in enumerate(X):
        fx = f(x[None, :])[0]
        for k, p in enumerate(perms):
            yk = f(np.where(Z[:, p].astype(bool), x[None, :], B[k][None, :]))
            out[n] += pi[k] * (L[p] @ (yk - fb[k]) + c[p] * (fx - fb[k]))
    return out


def _shared_reference(f, X, B, pi, Z, L, c):
    """Plain numpy, the shared design: L (sum_k pi_k y_k - E f) + c (f(x) - E f)."""
    base = pi @ f(B)
    out = np.zeros((len(X), Z.shape[1]))
    for n, x in enumerate(X):
        y = sum(pi[k] * f(np.where(Z.astype(bool), x[None, :], B[k][None, :])) for k in range(len(B)))
        out[n] = L @ (y - base) + c * (f(x[None, :])[0] - base)
    return out


@settings(max_examples=20, deadline=None)
@given(
    M=st.integers(5, 7),
    K=st.integers(2, 5),
    N=st.integers(1, 4),
    seed=st.integers(0, 2**63 - 1),
    frac=st.floats(0.2, 0.9),
    weighted=st.booleans(),
    backend=st.sampled_from(BACKENDS),
)
def test_matches_numpy_formula(M, K, N, seed, frac, weighted, backend):
    rng = np.random.default_rng(seed % 1000)
    B, X = rng.normal(size=(K, M)), rng.normal(size=(N, M))
    pi = rng.uniform(0.1, 1.0, size=K) if weighted else np.full(K, 1.0)
    pi = pi / pi.sum()
    S = max(4 * M, min(2**M - 4, int(frac * (2**M - 2))))  # determined, not exact
    f = _model(M)
    bg = Baseline(B, pi) if weighted else B
    ks = KernelShap(f, bg, num_samples=S, seed=seed, backend=backend)
    assert ks._relabel
    perms = _kernels.background_permutations(M, K, seed)
    assert (perms[0] == np.arange(M)).all()
    assert all(sorted(p) == list(range(M)) for p in perms)
    want = _relabelled_reference(f, X, B, pi, ks._Z, ks._L, ks._c, perms)
    got = ks.explain(X)
    np.testing.assert_allclose(got.values, want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()))
    # efficiency: sum_j phi_j = f(x) - E_pi f(b)
    np.testing.assert_allclose(got.values.sum(axis=1), f(X) - pi @ f(B), rtol=0, atol=1e-11)


def test_permutation_direction_by_brute_force():
    """The mask's column -> player map perm_k[col_player] makes background row k take x on
    column j exactly when Z[s, perm_k[j]]; checked on the synthetic rows the model receives, in
    one model call per batch."""
    M, K, S = 5, 3, 12
    B = np.arange(K * M, dtype=np.float64).reshape(K, M) + 100.0
    X = -np.arange(1, M + 1, dtype=np.float64)[None, :]
    seen = []

    def f(a):
        seen.append(np.array(a, copy=True))
        return a.sum(axis=1)

    ks = KernelShap(f, B, num_samples=S, seed=7, backend="numpy")
    seen.clear()
    ks.explain(X)
    assert len(seen) == 2  # f(x), then one call for all S K synthetic rows
    rows = seen[1]
    Z, perms = ks._Z.astype(bool), ks._perms
    # pair-major, background rows innermost (the shared design's layout): row s K + k
    want = np.stack([np.where(Z[:, perms[k]], X, B[k][None, :]) for k in range(K)], axis=1).reshape(S * K, M)
    np.testing.assert_array_equal(rows, want)


@pytest.mark.parametrize("M,S", [(8, 60), (12, 300)])
def test_operator_closed_under_relabelling(M, S):
    """The operator of the relabelled plan Z[:, p] is the plan's operator with its rows relabelled,
    L[p] and c[p] (the cubic span is closed under relabelling): no operator is built again."""
    Z, w, *_ = _kernels.stratified_plan(M, S, 3)
    L, c = _kernels.cubic_operator(Z, w)[:2]
    for p in _kernels.background_permutations(M, 4, 11)[1:]:
        Lp, cp = _kernels.cubic_operator(np.ascontiguousarray(Z[:, p]), w)[:2]
        np.testing.assert_allclose(Lp, L[p], rtol=0, atol=1e-10)
        np.testing.assert_allclose(cp, c[p], rtol=0, atol=1e-10)


def test_shared_design_kept_where_it_must_be():
    """estimator='shap', the logit link, features_to_explain, one background row and exact mode keep
    the shared design (the shared-design formula, to 1e-12)."""
    M, K = 5, 4
    rng = np.random.default_rng(1)
    B, X = rng.normal(size=(K, M)), rng.normal(size=(3, M))
    f = _model(M)
    pi = np.full(K, 1.0 / K)
    for kw in ({"estimator": "shap"}, {"num_samples": 2**M - 2}):
        ks = KernelShap(f, B, seed=5, **{"num_samples": 20, **kw})
        assert not ks._relabel
        want = _shared_reference(f, X, B, pi, ks._Z, ks._L, ks._c)
        np.testing.assert_allclose(ks.explain(X).values, want, rtol=0, atol=1e-12)
    exact = KernelShap(f, B, num_samples=2**M - 2, seed=5).explain(X).values
    for n in range(len(X)):
        np.testing.assert_allclose(exact[n], exact_shapley(f, X[n], B)[:, 0], rtol=0, atol=1e-12)
    one = KernelShap(f, B[:1], num_samples=20, seed=5)
    assert not one._relabel
    g = _model(M)

    def prob(a):
        return 1.0 / (1.0 + np.exp(-g(a)))

    assert not KernelShap(prob, B, num_samples=20, seed=5, link="logit")._relabel
    assert not KernelShap(f, B, num_samples=20, seed=5, features_to_explain=[0, 2, 3])._relabel


def test_rows_with_null_players_keep_the_shared_design():
    """A row equal to the (constant) background on a player: that player gets exactly 0 and the
    row the shared design's restricted solution (numpy KKT solve); the other rows of the same call
    get the relabelled designs, and every row's value is the same explained alone."""
    M, K = 6, 3
    rng = np.random.default_rng(2)
    B = rng.normal(size=(K, M))
    B[:, 2] = 0.5  # constant in the background
    X = rng.normal(size=(4, M))
    X[1, 2] = 0.5  # row 1: player 2 is null
    f = _model(M)
    pi = np.full(K, 1.0 / K)
    ks = KernelShap(f, B, num_samples=40, seed=9)
    got = ks.explain(X).values
    assert got[1, 2] == 0.0
    np.testing.assert_allclose(got.sum(axis=1), f(X) - f(B).mean(), rtol=0, atol=1e-12)
    # row 1: constrained WLS on the shared design without player 2
    Z, w = ks._Z.astype(np.float64), ks._w
    keep = [j for j in range(M) if j != 2]
    base = f(B).mean()
    y = sum(pi[k] * f(np.where(Z.astype(bool), X[1][None, :], B[k][None, :])) for k in range(K)) - base
    Zk = Z[:, keep]
    A = (Zk.T * w) @ Zk
    kkt = np.block([[A, np.ones((M - 1, 1))], [np.ones((1, M - 1)), np.zeros((1, 1))]])
    sol = np.linalg.solve(kkt, np.concatenate([(Zk.T * w) @ y, [f(X[1:2])[0] - base]]))
    np.testing.assert_allclose(got[1, keep], sol[:-1], rtol=0, atol=1e-10)
    others = [0, 2, 3]
    want = _relabelled_reference(f, X[others], B, pi, ks._Z, ks._L, ks._c, ks._perms)
    np.testing.assert_allclose(got[others], want, rtol=0, atol=1e-12)
    for n in range(len(X)):
        np.testing.assert_array_equal(ks.explain(X[n : n + 1]).values[0], got[n])
    # the same with standard errors (the rounds path): same values, std 0 for the null player
    es = ks.explain(X, return_std=True)
    np.testing.assert_allclose(es.values, got, rtol=0, atol=1e-12)
    assert es.std[1, 2] == 0.0 and (es.std[0] > 0).all()


def test_chunking_return_std_and_auto_consistency():
    M, K = 7, 4
    rng = np.random.default_rng(3)
    B, X = rng.normal(size=(K, M)), rng.normal(size=(9, M))
    f = _model(M)
    ks = KernelShap(f, B, num_samples=64, seed=21)
    full = ks.explain(X).values
    small = KernelShap(f, B, num_samples=64, seed=21, memory_budget=4000).explain(X).values
    np.testing.assert_array_equal(small, full)
    threads = KernelShap(f, B, num_samples=64, seed=21, n_threads=1).explain(X).values
    np.testing.assert_array_equal(threads, full)
    parts = np.vstack([ks.explain(X[a : a + 2]).values for a in range(0, len(X), 2)])
    np.testing.assert_array_equal(parts, full)
    es = ks.explain(X, return_std=True)
    np.testing.assert_allclose(es.values, full, rtol=0, atol=1e-12)
    assert np.isfinite(es.std).all() and (es.std > 0).all()
    # std = sqrt(sum_k pi_k^2 std_k^2): each background row's own design-based standard error
    Z, w, L, c, _, extra, stratum, n_p, N_p = ks._plan(64, hat=True)
    var = np.zeros((len(X), M))
    fb = f(B)
    for k, p in enumerate(ks._perms):
        y = np.stack([f(np.where(Z[:, p].astype(bool), x[None, :], B[k][None, :])) - fb[k] for x in X])
        _, sd = _kernels.stratified_solve(
            "numpy", y[:, :, None], (f(X) - fb[k])[:, None], L, c, extra, stratum, n_p, N_p, 1
        )
        var += (sd[:, p, 0] / K) ** 2
    np.testing.assert_allclose(es.std, np.sqrt(var), rtol=1e-10, atol=1e-14)
    auto = KernelShap(f, B, num_samples="auto", tolerance=0.02, seed=21)
    ea = auto.explain(X, return_std=True)
    np.testing.assert_allclose(ea.values.sum(axis=1), f(X) - fb.mean(), rtol=0, atol=1e-11)
    eb = KernelShap(f, B, num_samples="auto", tolerance=0.02, seed=21, backend="numpy").explain(X)
    np.testing.assert_allclose(eb.values, ea.values, rtol=0, atol=1e-12)
    for n in (0, 4):
        one = auto.explain(X[n : n + 1], return_std=True)
        np.testing.assert_allclose(one.values[0], ea.values[n], rtol=0, atol=1e-12)
        assert one.row_samples[0] == ea.row_samples[n]


def test_relabelling_lowers_the_error():
    """On exact Shapley values, at equal model evaluations: the relabelled designs' median error is
    well below the shared design's (same plan, same operator; 6 seeds x 4 rows x 10 players) for a
    ReLU network over background rows close to each other, whose per-background games share their
    higher-order part, so the shared design's errors add up over the background rows while the
    relabelled designs' average out (measured about 0.45x at these sizes). On games whose
    higher-order parts cancel over the background the two are closer (benchmarks/README.md)."""
    M, K = 10, 8
    rng = np.random.default_rng(4)
    B = rng.normal(size=(1, M)) + 0.2 * rng.normal(size=(K, M))
    X = rng.normal(size=(4, M))
    W1, W2 = rng.normal(size=(M, 16)), rng.normal(size=16)

    def f(a):
        return np.maximum(np.asarray(a, dtype=np.float64) @ W1, 0.0) @ W2

    exact = np.stack([exact_shapley(f, x, B)[:, 0] for x in X])
    pi = np.full(K, 1.0 / K)
    for S in (64, 256):
        err_rel, err_shared = [], []
        for seed in range(6):
            ks = KernelShap(f, B, num_samples=S, seed=seed)
            err_rel.append(np.abs(ks.explain(X).values - exact))
            err_shared.append(np.abs(_shared_reference(f, X, B, pi, ks._Z, ks._L, ks._c) - exact))
        med_rel, med_shared = np.median(err_rel), np.median(err_shared)
        assert med_rel < 0.7 * med_shared, (S, med_rel, med_shared)


def test_dask_partitions_identical():
    """Relabelled designs on Dask workers (the explainer pickled, its permutations with it): the same
    values bit for bit, in the single pass and with standard errors."""
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    import pandas as pd

    M, K = 6, 4
    rng = np.random.default_rng(6)
    B, X = rng.normal(size=(K, M)), rng.normal(size=(30, M))
    W = rng.normal(size=(M, 5))
    f = lambda a: np.tanh((np.asarray(a, dtype=np.float64)[:, :, None] * W).sum(axis=1)).prod(axis=1)  # no BLAS
    cols = [f"c{j}" for j in range(M)]
    e = KernelShap(f, pd.DataFrame(B, columns=cols), num_samples=40, seed=12)
    assert e._relabel
    rows = pd.DataFrame(X, columns=cols)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    try:
        for kw in ({}, {"return_std": True}):
            one = e.explain(rows, **kw)
            many = e.explain(dd.from_pandas(rows, npartitions=3), **kw)
            np.testing.assert_array_equal(one.values, many.values)
            if kw:
                np.testing.assert_array_equal(one.std, many.std)
    finally:
        client.close()
        cluster.close()


def test_stacked_operator_cap_keeps_the_shared_design(monkeypatch):
    """Above RELABEL_MAX_OPERATOR_BYTES (S K M float64) the design stays shared, in the single
    pass and with standard errors alike (the two agree)."""
    from clarion.explain import _kernel_shap

    M, K, S = 5, 3, 20
    rng = np.random.default_rng(8)
    B, X = rng.normal(size=(K, M)), rng.normal(size=(3, M))
    f = _model(M)
    assert KernelShap(f, B, num_samples=S, seed=2)._relabel
    monkeypatch.setattr(_kernel_shap, "RELABEL_MAX_OPERATOR_BYTES", S * K * M * 8 - 1)
    ks = KernelShap(f, B, num_samples=S, seed=2)
    assert not ks._relabel
    want = _shared_reference(f, X, B, np.full(K, 1.0 / K), ks._Z, ks._L, ks._c)
    np.testing.assert_allclose(ks.explain(X).values, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ks.explain(X, return_std=True).values, want, rtol=0, atol=1e-12)


def test_background_permutations_are_seeded_and_nested():
    """perm_0 is the identity; the others come from the explainer's seed only (a larger background
    extends the list), differ between seeds, and are fixed at construction (pickled with it)."""
    a, b = _kernels.background_permutations(9, 3, 5), _kernels.background_permutations(9, 6, 5)
    np.testing.assert_array_equal(a, b[:3])
    assert (b[0] == np.arange(9)).all() and all(sorted(p) == list(range(9)) for p in b)
    assert len({tuple(p) for p in b}) == 6
    assert not np.array_equal(b, _kernels.background_permutations(9, 6, 6))
    rng = np.random.default_rng(0)
    ks = KernelShap(_model(9), rng.normal(size=(6, 9)), num_samples=100, seed=5)
    np.testing.assert_array_equal(ks._perms, b)
