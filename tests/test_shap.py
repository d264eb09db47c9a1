"""KernelShap end to end: exact Shapley, axioms, shap parity, sampling error, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion import _backend, _reference
from clarion.explain import KernelShap, ShapConditioningWarning

BACKENDS = ["numpy", pytest.param("cpu", marks=pytest.mark.skipif(not _backend.has_core(), reason="no extension"))]


def mlp(P: int, D: int = 1, seed: int = 0):
    """A small nonlinear model with interactions: sum tanh(X W1) W2 + x0 x1."""
    rng = np.random.default_rng(seed)
    W1, W2 = rng.normal(size=(P, 8)), rng.normal(size=(8, D))

    def f(X):
        out = np.tanh(X @ W1) @ W2 + (X[:, :1] * X[:, 1:2])
        return out[:, 0] if D == 1 else out

    return f


def rowwise_mlp(P: int, D: int = 1, seed: int = 0):
    """:func:`mlp` without matrix products: each output depends on its own row only, bit for bit,
    whatever the batch around it (a BLAS product's last bit depends on the batch size, and a
    model that is not batch-invariant cannot give bit-identical explanations under different
    batchings, whatever the estimator)."""
    rng = np.random.default_rng(seed)
    W1, W2 = rng.normal(size=(P, 8)), rng.normal(size=(8, D))

    def f(X):
        h = np.tanh((X[:, :, None] * W1[None]).sum(axis=1))
        out = (h[:, :, None] * W2[None]).sum(axis=1) + (X[:, :1] * X[:, 1:2])
        return out[:, 0] if D == 1 else out

    return f


def exact(f, X, B, pi=None, col_player=None, link=0):
    return np.stack([_reference.exact_shapley(f, x, B, pi=pi, col_player=col_player, link=link) for x in X])


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=10, deadline=None)
@given(M=st.integers(2, 7), K=st.integers(1, 6), N=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_exact_mode_equals_brute_force(backend, M, K, N, seed):
    rng = np.random.default_rng(seed)
    f = mlp(M, seed=seed)
    B, X = rng.normal(size=(K, M)), rng.normal(size=(N, M))
    ks = KernelShap(f, B, num_samples=2**M, backend=backend, seed=1)
    assert ks.exact_ and ks.num_samples_ == 2**M - 2
    e = ks.explain(X)
    np.testing.assert_allclose(e.values, exact(f, X, B)[:, :, 0], atol=1e-10, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weighted_background_multioutput_exact(backend):
    rng = np.random.default_rng(5)
    f = mlp(6, D=3)
    B, X = rng.normal(size=(5, 6)), rng.normal(size=(4, 6))
    pi = np.array([0.1, 0.0, 0.4, 0.3, 0.2])
    from clarion.explain import Baseline

    e = KernelShap(f, Baseline(B, pi), num_samples=10**6, backend=backend).explain(X)
    assert e.values.shape == (4, 6, 3) and np.shape(e.expected_value) == (3,)
    np.testing.assert_allclose(e.values, exact(f, X, B, pi=pi), atol=1e-10)
    np.testing.assert_allclose(e.expected_value, (pi[:, None] * f(B)).sum(0), atol=1e-12)


def test_linear_closed_form_and_additivity_sampled():
    rng = np.random.default_rng(1)
    M = 20
    w, b0 = rng.normal(size=M), 0.3
    B, X = rng.normal(size=(7, M)), rng.normal(size=(6, M))
    e = KernelShap(lambda Z: Z @ w + b0, B, num_samples=300, seed=3).explain(X)
    assert not KernelShap(lambda Z: Z @ w, B, num_samples=300, seed=3).exact_
    np.testing.assert_allclose(e.values, w[None, :] * (X - B.mean(0)), atol=1e-10)
    np.testing.assert_allclose(e.values.sum(1), X @ w + b0 - e.expected_value, atol=1e-10)


def test_additivity_nonlinear_sampled():
    rng = np.random.default_rng(2)
    f = mlp(14, D=2)
    B, X = rng.normal(size=(4, 14)), rng.normal(size=(5, 14))
    e = KernelShap(f, B, num_samples=200, seed=0).explain(X)
    np.testing.assert_allclose(e.values.sum(1), f(X) - e.expected_value, atol=1e-10)


def test_symmetry_dummy_null():
    rng = np.random.default_rng(3)
    B = rng.normal(size=(6, 5))
    B[:, 1] = B[:, 0]  # symmetric background in players 0 and 1
    X = rng.normal(size=(4, 5))
    X[:, 1] = X[:, 0]

    def f(Z):  # symmetric in columns 0 and 1, ignores column 4
        return np.sin(Z[:, 0] * Z[:, 1]) + Z[:, 0] ** 2 + Z[:, 1] ** 2 + np.cos(Z[:, 2]) * Z[:, 3]

    e = KernelShap(f, B, num_samples=2**5).explain(X)
    np.testing.assert_allclose(e.values[:, 0], e.values[:, 1], atol=1e-12)
    assert np.abs(e.values[:, 4]).max() < 1e-12
    null = KernelShap(lambda Z: np.full(len(Z), 3.0), B, num_samples=2**5).explain(X)
    assert np.abs(null.values).max() < 1e-12 and null.expected_value == 3.0
    # Dummy in sampled mode: noise level only.
    f16 = lambda Z: np.tanh(Z[:, :15].sum(1))  # column 15 is a dummy
    Xs, Bs = rng.normal(size=(3, 16)), rng.normal(size=(4, 16))
    es = KernelShap(f16, Bs, num_samples=1000, seed=1).explain(Xs)
    assert np.abs(es.values[:, 15]).max() < 0.05 * np.abs(es.values).max()


def test_constant_column_gets_zero():
    rng = np.random.default_rng(4)
    B, X = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    B[:, 2] = 1.5
    X[:, 2] = 1.5
    e = KernelShap(mlp(4), B, num_samples=14).explain(X)
    assert np.abs(e.values[:, 2]).max() < 1e-12


def test_logit_additivity_with_predict_proba():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(6)
    Xtr = rng.normal(size=(200, 5))
    y = (Xtr[:, 0] + Xtr[:, 1] * Xtr[:, 2] > 0).astype(int) + (Xtr[:, 3] > 1)
    clf = LogisticRegression(max_iter=500).fit(Xtr, y)  # 3 classes
    B, X = Xtr[:10], Xtr[50:56]
    e = KernelShap(clf, B, link="logit", num_samples=2**5).explain(X)
    assert e.values.shape == (6, 5, 3) and e.output_names == [0, 1, 2]
    p = clf.predict_proba(X)
    np.testing.assert_allclose(1 / (1 + np.exp(-(e.values.sum(1) + e.expected_value))), p, atol=1e-12)
    # logit of the background average, not the average of logits
    pbar = clf.predict_proba(B).mean(0)
    np.testing.assert_allclose(e.expected_value, np.log(pbar / (1 - pbar)), atol=1e-12)
    np.testing.assert_allclose(e.values, exact(clf.predict_proba, X, B, link=1), atol=1e-10)


def test_agrees_with_shap_kernel_explainer_exact():
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(7)
    M = 6
    f = mlp(M, D=2)
    B, X = rng.normal(size=(8, M)), rng.normal(size=(5, M))
    ours = KernelShap(f, B, num_samples=2**M - 2).explain(X)
    ref = shap.KernelExplainer(f, B).shap_values(X, l1_reg=False, nsamples=2**M - 2, silent=True)
    np.testing.assert_allclose(ours.values, np.asarray(ref), atol=1e-8)
    # logit link, one output
    g = lambda Z: 1 / (1 + np.exp(-mlp(M)(Z)))
    ours = KernelShap(g, B, link="logit", num_samples=2**M - 2).explain(X)
    ke = shap.KernelExplainer(g, B, link="logit")
    ref = ke.shap_values(X, l1_reg=False, nsamples=2**M - 2, silent=True)
    np.testing.assert_allclose(ours.values, np.asarray(ref), atol=1e-8)
    np.testing.assert_allclose(ours.expected_value, ke.expected_value, atol=1e-12)


def test_feature_groups_equal_shap_groups_and_reference():
    shap = pytest.importorskip("shap")
    from shap.utils._legacy import DenseData

    rng = np.random.default_rng(8)
    P = 7
    f = mlp(P)
    B, X = rng.normal(size=(6, P)), rng.normal(size=(4, P))
    groups = {"a": [0, 3], "b": [1, 2, 6]}
    ks = KernelShap(f, B, feature_groups=groups, num_samples=10**4)
    assert ks.feature_names == ["a", "b", "4", "5"]
    e = ks.explain(X)
    col_player = np.array([0, 1, 1, 0, 2, 3, 1], dtype=np.int32)
    np.testing.assert_allclose(e.values, exact(f, X, B, col_player=col_player)[:, :, 0], atol=1e-10)
    dd = DenseData(B, ["a", "b", "4", "5"], [[0, 3], [1, 2, 6], [4], [5]])
    ref = shap.KernelExplainer(f, dd).shap_values(X, l1_reg=False, nsamples=14, silent=True)
    np.testing.assert_allclose(e.values, np.asarray(ref), atol=1e-8)


def test_groups_equal_model_on_grouped_inputs():
    # A one-hot block as one player = a model on the un-encoded (grouped) input.
    rng = np.random.default_rng(9)
    cats = rng.integers(0, 3, size=(30,))
    num = rng.normal(size=(30, 2))
    onehot = np.eye(3)[cats]
    Xfull = np.hstack([onehot, num])
    coef = np.array([0.5, -1.0, 2.0])

    def f_full(Z):
        return np.tanh(Z[:, :3] @ coef + Z[:, 3] * Z[:, 4])

    def f_grouped(Z):
        return np.tanh(coef[Z[:, 0].astype(int)] + Z[:, 1] * Z[:, 2])

    Xg = np.column_stack([cats, num]).astype(float)
    full = KernelShap(f_full, Xfull[:6], feature_groups=[[0, 1, 2]], num_samples=6).explain(Xfull[10:15])
    grouped = KernelShap(f_grouped, Xg[:6], num_samples=6).explain(Xg[10:15])
    np.testing.assert_allclose(full.values, grouped.values, atol=1e-12)


def test_features_to_explain_fixes_the_others_to_x():
    rng = np.random.default_rng(10)
    f = mlp(6)
    B, X = rng.normal(size=(5, 6)), rng.normal(size=(3, 6))
    e = KernelShap(f, B, features_to_explain=["1", 3, "5"], num_samples=100).explain(X)
    assert e.feature_names == ["1", "3", "5"]
    cp = np.array([-1, 0, -1, 1, -1, 2], dtype=np.int32)
    np.testing.assert_allclose(e.values, exact(f, X, B, col_player=cp)[:, :, 0], atol=1e-10)
    np.testing.assert_allclose(e.values.sum(1) + e.expected_value, f(X), atol=1e-10)


def _relative_errors(M, n_samples, n_rows=30, K=10, seed=0):
    rng = np.random.default_rng(100 + M)
    f = mlp(M, seed=M)
    B, X = rng.normal(size=(K, M)), rng.normal(size=(n_rows, M))
    truth = KernelShap(f, B, num_samples=2**M).explain(X).values
    est = KernelShap(f, B, num_samples=n_samples, seed=seed).explain(X).values
    return np.linalg.norm(est - truth, axis=1) / np.linalg.norm(truth, axis=1)


@pytest.mark.parametrize("M,n_samples,table_median", [(12, 512, 0.022), (12, 2072, 0.0076), (16, 2080, 0.013)])
def test_sampled_error_within_three_times_spec_table(M, n_samples, table_median):
    err = _relative_errors(M, n_samples, n_rows=30 if M == 12 else 12, K=10 if M == 12 else 4)
    assert np.median(err) <= 3 * table_median, np.median(err)


def test_return_std():
    rng = np.random.default_rng(11)
    M = 12
    f = mlp(M, seed=M)
    B, X = rng.normal(size=(6, M)), rng.normal(size=(25, M))
    truth = KernelShap(f, B, num_samples=2**M).explain(X, return_std=True)
    assert truth.std is not None and (truth.std == 0).all()
    ks = KernelShap(f, B, num_samples=700, seed=2)
    e = ks.explain(X, return_std=True)
    plain = ks.explain(X)
    np.testing.assert_array_equal(e.values, plain.values)  # the point estimate is unchanged
    assert e.std.shape == e.values.shape and (e.std > 0).all()
    z = np.abs(e.values - truth.values) / e.std
    assert 0.2 < np.median(z) < 2.5, np.median(z)  # |N(0,1)| has median 0.67


def test_determinism_and_chunking_invariance():
    rng = np.random.default_rng(12)
    f = rowwise_mlp(14, D=2)  # batch-invariant: the batchings below must give identical values
    B, X = rng.normal(size=(5, 14)), rng.normal(size=(7, 14))
    a = KernelShap(f, B, num_samples=300, seed=42).explain(X).values
    b = KernelShap(f, B, num_samples=300, seed=42, memory_budget=3000, n_threads=1).explain(X).values
    c = KernelShap(f, B, num_samples=300, seed=42, n_threads=2, memory_budget="1MiB").explain(X).values
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    d = KernelShap(f, B, num_samples=300, seed=43).explain(X).values
    assert not np.array_equal(a, d)
    ks = KernelShap(f, B, num_samples=300)
    assert isinstance(ks.seed_, int)
    np.testing.assert_array_equal(
        ks.explain(X).values, KernelShap(f, B, num_samples=300, seed=ks.seed_).explain(X).values
    )


def test_backends_agree_end_to_end():
    if not _backend.has_core():
        pytest.skip("no extension")
    rng = np.random.default_rng(13)
    f = mlp(9, D=2)
    B, X = rng.normal(size=(4, 9)), rng.normal(size=(5, 9)).astype(np.float32)
    a = KernelShap(f, B.astype(np.float32), num_samples=100, seed=1, backend="numpy").explain(X)
    b = KernelShap(f, B.astype(np.float32), num_samples=100, seed=1, backend="cpu").explain(X)
    np.testing.assert_allclose(a.values, b.values, atol=1e-12)


def test_progress_and_default_budget():
    rng = np.random.default_rng(14)
    B, X = rng.normal(size=(3, 11)), rng.normal(size=(2, 11))
    calls = []
    ks = KernelShap(mlp(11), B, memory_budget=20_000)
    assert ks.num_samples_ == 2**11 - 2 and ks.exact_  # default 2M + 2048 capped at 2^M - 2
    ks.explain(X, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) > 1 and calls[-1] == (2 * 2046 * 3, 2 * 2046 * 3)
    assert KernelShap(mlp(20), rng.normal(size=(2, 20)), seed=0).num_samples_ == 2 * 20 + 2048


def test_empty_x():
    rng = np.random.default_rng(15)
    e = KernelShap(mlp(4), rng.normal(size=(3, 4))).explain(np.empty((0, 4)))
    assert e.values.shape == (0, 4)
    assert e.global_importance().isna().all()


def test_ill_conditioned_plan_warns():
    rng = np.random.default_rng(16)
    with pytest.warns(ShapConditioningWarning, match="least squares"):
        ks = KernelShap(mlp(8), rng.normal(size=(3, 8)), num_samples=3, seed=0)
    X = rng.normal(size=(2, 8))
    e = ks.explain(X)
    np.testing.assert_allclose(e.values.sum(1), mlp(8)(X) - e.expected_value, atol=1e-10)


def test_sampled_accuracy_matches_shap_on_the_same_budget():
    # Same scheme as shap (spec 3): on the same model and budget clarion's error is shap's.
    shap = pytest.importorskip("shap")
    M, n = 12, 1024
    rng = np.random.default_rng(112)
    f = mlp(M, seed=M)
    B, X = rng.normal(size=(5, M)), rng.normal(size=(12, M))
    truth = KernelShap(f, B, num_samples=2**M).explain(X).values
    np.random.seed(0)
    theirs = np.asarray(shap.KernelExplainer(f, B).shap_values(X, l1_reg=False, nsamples=n, silent=True))
    ours = np.stack([KernelShap(f, B, num_samples=n, seed=s).explain(X).values for s in range(3)])
    rel = lambda v: np.median(np.linalg.norm(v - truth, axis=-1) / np.linalg.norm(truth, axis=-1))
    assert rel(ours) < 1.5 * rel(theirs), (rel(ours), rel(theirs))


def test_to_shap_with_groups_and_per_row_base():
    pytest.importorskip("shap")
    rng = np.random.default_rng(17)
    f = mlp(5, D=2)
    B, X = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    e = KernelShap(f, B, feature_groups={"g": [0, 1]}, features_to_explain=["g", "3", "4"], num_samples=6).explain(X)
    assert e.values.shape == (3, 3, 2) and np.shape(e.expected_value) == (3, 2)
    s = e.to_shap()
    assert s.data is None and s.base_values.shape == (3, 2)
    np.testing.assert_allclose(s.values.sum(1) + s.base_values, f(X), atol=1e-10)


@pytest.mark.gpu
def test_cuda_end_to_end_equals_cpu(cuda):
    import cupy

    rng = np.random.default_rng(18)
    W = rng.normal(size=(10, 3))
    f_host = lambda Z: np.tanh(Z @ W)
    f_dev = lambda Z: cupy.tanh(Z @ cupy.asarray(W))
    B, X = rng.normal(size=(6, 10)), rng.normal(size=(20, 10))
    host = KernelShap(f_host, B, num_samples=300, seed=4).explain(X, return_std=True)
    dev = KernelShap(f_dev, cupy.asarray(B), num_samples=300, seed=4).explain(cupy.asarray(X), return_std=True)
    np.testing.assert_allclose(dev.values, host.values, atol=1e-9)
    np.testing.assert_allclose(dev.std, host.std, atol=1e-9)
    np.testing.assert_allclose(dev.expected_value, host.expected_value, atol=1e-12)
    again = KernelShap(f_dev, cupy.asarray(B), num_samples=300, seed=4).explain(cupy.asarray(X))
    np.testing.assert_array_equal(again.values, dev.values)
