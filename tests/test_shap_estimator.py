"""The cubic Kernel SHAP estimator (issue 19): plan, operator, accuracy against exact Shapley values,
standard errors, num_samples="auto", determinism, config keys."""

from __future__ import annotations

import itertools
from math import comb, factorial

import numpy as np
import pytest

from clarion.config import ConfigError
from clarion.config._sections import ShapConfig
from clarion.explain import KernelShap
from clarion.explain import _kernels as K


def exact_shapley(v, M):
    """Brute-force Shapley values of a game given as a function of a 0/1 vector."""
    phi = np.zeros(M)
    for j in range(M):
        others = [i for i in range(M) if i != j]
        for s in range(M):
            wt = factorial(s) * factorial(M - s - 1) / factorial(M)
            for S in itertools.combinations(others, s):
                z = np.zeros(M)
                z[list(S)] = 1
                z1 = z.copy()
                z1[j] = 1
                phi[j] += wt * (v(z1) - v(z))
    return phi


def _model(X):
    w = np.linspace(-1.0, 1.0, X.shape[1])
    t = (X * w).sum(axis=1)  # elementwise: a row's output does not depend on its batch
    return 1 / (1 + np.exp(-(t + 0.5 * X[:, 0] * X[:, 1] * X[:, 2] - 0.3 * X[:, 3] * X[:, 4])))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(6, 9)), rng.normal(size=(5, 9))


def test_plan_pairs_distinct_prefix_and_exact_weights():
    M = 9
    Z, w, stratum, n_p, N_p = K.stratified_plan(M, 200, seed=5)
    assert Z.shape == (200, M) and np.all(Z[0::2] + Z[1::2] == 1)  # complement pairs
    assert len({z.tobytes() for z in Z}) == len(Z)  # without replacement
    sizes = Z.sum(axis=1)
    assert np.all(np.minimum(sizes, M - sizes) == stratum)
    assert np.isclose(w.sum(), 1.0)
    # each stratum carries its exact Shapley-kernel mass (2 (M-1)/(p (M-p)), normalised)
    mass = {p: 2 * (M - 1) / (p * (M - p)) for p in range(1, M // 2 + 1)}
    tot = sum(mass.values())
    for p in range(1, M // 2 + 1):
        assert np.isclose(w[stratum == p].sum(), mass[p] / tot)
    Z2 = K.stratified_plan(M, 420, seed=5)[0]
    assert np.array_equal(Z2[:200], Z)  # a larger budget extends the plan
    # every coalition: the Shapley kernel weights themselves
    Zf, wf, *_ = K.stratified_plan(M, 2**M - 2, seed=5)
    assert len({z.tobytes() for z in Zf}) == 2**M - 2
    s = Zf.sum(axis=1)
    kern = (M - 1) / (np.array([comb(M, int(k)) for k in s]) * s * (M - s))
    assert np.allclose(wf, kern / kern.sum())


def test_plan_middle_stratum_and_rejection_stream():
    Z, w, stratum, n_p, N_p = K.stratified_plan(8, 2 * 35 + 2 * 8 + 2 * 28 + 2 * 56, seed=1)
    mid = Z[0::2][stratum[0::2] == 4]
    assert np.all(mid[:, 0] == 1) and len(mid) == len({m.tobytes() for m in mid})
    # a stratum too big to enumerate is sampled by rejection: distinct, right size, seeded
    a = K._stratum_stream(40, 6, 300, seed=9)
    b = K._stratum_stream(40, 6, 100, seed=9)
    assert np.array_equal(a[:100], b) and np.all(a.sum(axis=1) == 6)
    assert len({r.tobytes() for r in a}) == 300


def test_cubic_operator_exact_for_cubic_games_and_efficient():
    M = 8
    rng = np.random.default_rng(0)
    a, B2, C3 = rng.normal(size=M), rng.normal(size=(M, M)), rng.normal(size=(M, M, M))

    def v(z):
        return a @ z + z @ B2 @ z * 0.3 + 0.2 * np.einsum("ijk,i,j,k->", C3, z, z, z)

    Z, w, *_ = K.stratified_plan(M, 160, seed=2)  # 160 of 254 coalitions
    L, c, status, _ = K.cubic_operator(Z, w, ridge=0.0)
    assert status == 0
    assert np.allclose(L.sum(axis=0), 0, atol=1e-10) and np.isclose(c.sum(), 1.0)
    y = np.array([v(z) for z in Z.astype(float)]) - v(np.zeros(M))
    delta = v(np.ones(M)) - v(np.zeros(M))
    assert np.allclose(L @ y + c * delta, exact_shapley(v, M), atol=1e-9)
    # the first-order operator (shap's and the plain regression) is not exact on it
    L1, c1, _ = K.wls_operator("numpy", Z, w)
    assert not np.allclose(L1 @ y + c1 * delta, exact_shapley(v, M), atol=1e-3)


def test_cubic_beats_shap_scheme_and_is_exact_at_full_budget(data):
    B, X = data
    ref = KernelShap(_model, B, num_samples=2**9 - 2).explain(X).values
    cub = KernelShap(_model, B, num_samples=200, seed=1).explain(X)
    old = KernelShap(_model, B, num_samples=200, seed=1, estimator="shap").explain(X)
    e_cub, e_old = np.abs(cub.values - ref), np.abs(old.values - ref)
    assert np.median(e_cub) * 2 < np.median(e_old)
    assert np.quantile(e_cub, 0.9) * 2 < np.quantile(e_old, 0.9)
    f = _model(X) - np.sum(_model(B)) / len(B)
    assert np.allclose(cub.values.sum(axis=1), f, atol=1e-12)  # efficiency exact
    full = KernelShap(_model, B, num_samples=2**9 - 2, estimator="cubic").explain(X)
    assert full.exact and np.allclose(full.values, ref, atol=1e-12)


def test_deterministic_across_threads_batches_and_backends(data):
    B, X = data
    a = KernelShap(_model, B, num_samples=150, seed=4).explain(X).values
    b = KernelShap(_model, B, num_samples=150, seed=4, n_threads=1, memory_budget=4096).explain(X).values
    c = KernelShap(_model, B, num_samples=150, seed=4, backend="numpy").explain(X).values
    assert np.array_equal(a, b)
    assert np.allclose(a, c, atol=1e-12)
    s = KernelShap(_model, B, num_samples=150, seed=4).explain(X, return_std=True)
    assert np.allclose(s.values, a, atol=1e-12) and s.std.shape == a.shape and (s.std > 0).all()


def test_std_tracks_the_error(data):
    B, X = data
    ref = KernelShap(_model, B, num_samples=2**9 - 2).explain(X).values
    z = []
    for seed in range(4):
        e = KernelShap(_model, B, num_samples=300, seed=seed).explain(X, return_std=True)
        z.append(np.abs(e.values - ref) / e.std)
    rms = np.sqrt(np.mean(np.concatenate(z) ** 2))
    assert 0.3 < rms < 3.0


def test_auto_converges_per_row_and_reuses_rows():
    rng = np.random.default_rng(7)
    M = 14
    B, X = rng.normal(size=(3, M)), rng.normal(size=(5, M))
    X[0] = B.mean(axis=0)  # a row near the background: tiny values, its own stopping point

    def f(A):
        return np.tanh((A * np.linspace(-1, 1, M)).sum(axis=1)) + 0.5 * A[:, 0] * A[:, 1] * A[:, 2]

    ex = KernelShap(f, B, num_samples="auto", tolerance=0.01, seed=3)
    e = ex.explain(X, return_std=True)
    assert e.row_samples.shape == (5,) and set(e.row_samples) <= set(ex._rounds)
    spread = e.values.max(axis=1) - e.values.min(axis=1)
    ratio = (e.std.max(axis=1) / spread)[e.row_samples < ex._rounds[-1]]
    assert np.all(ratio <= 0.01)
    ref = KernelShap(f, B, num_samples=2**M - 2).explain(X).values
    assert np.all(np.abs(e.values - ref).max(axis=1) <= 0.05 * spread)
    one = ex.explain(X[2:3], return_std=True)  # a row's result does not depend on its batch
    assert np.array_equal(one.values[0], e.values[2]) and one.row_samples[0] == e.row_samples[2]
    assert np.allclose(e.values.sum(axis=1), f(X) - f(B).mean(), atol=1e-12)


def test_bad_arguments_name_themselves(data):
    B, _ = data
    with pytest.raises(ValueError, match="estimator must be"):
        KernelShap(_model, B, estimator="leverage")
    with pytest.raises(ValueError, match="tolerance must be"):
        KernelShap(_model, B, num_samples="auto", tolerance=0)
    with pytest.raises(ValueError, match="needs estimator='cubic'"):
        KernelShap(_model, B, num_samples="auto", estimator="shap")
    with pytest.raises(ValueError, match="num_samples must be"):
        KernelShap(_model, B, num_samples="fast")


def test_config_keys():
    c = ShapConfig.from_dict({"estimator": "cubic", "num_samples": "auto", "tolerance": 0.02}, "methods.shap")
    assert (c.estimator, c.num_samples, c.tolerance) == ("cubic", "auto", 0.02)
    assert ShapConfig.from_dict({}, "methods.shap").estimator is None  # Clarify's scheme by default
    with pytest.raises(ConfigError, match="methods.shap.estimator"):
        ShapConfig.from_dict({"estimator": "fast"}, "methods.shap")
    with pytest.raises(ConfigError, match="methods.shap.num_samples"):
        ShapConfig.from_dict({"num_samples": "auto"}, "methods.shap")
    with pytest.raises(ConfigError, match="methods.shap.tolerance"):
        ShapConfig.from_dict({"estimator": "cubic", "tolerance": 1.5}, "methods.shap")


def test_dask_partitions_equal_the_local_run():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(11)
    M = 12
    B, X = rng.normal(size=(3, M)), rng.normal(size=(7, M))

    def f(A):
        return np.tanh((A * np.linspace(-1, 1, M)).sum(axis=1)) + 0.3 * A[:, 0] * A[:, 1] * A[:, 2]

    ex = KernelShap(f, B, num_samples="auto", tolerance=0.005, seed=1)
    local = ex.explain(X, return_std=True)
    dist = ex.explain(da.from_array(X, chunks=(3, M)), return_std=True)
    np.testing.assert_array_equal(dist.values, local.values)
    np.testing.assert_array_equal(dist.std, local.std)
    np.testing.assert_array_equal(dist.row_samples, local.row_samples)


def _job_inputs(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(5)
    n, M = 40, 6
    Xd = rng.normal(size=(n, M))
    cols = [f"x{i}" for i in range(M)]
    df = pd.DataFrame(Xd, columns=cols)
    df["g"] = np.where(rng.random(n) < 0.5, "a", "b")
    df["y"] = (rng.random(n) < 0.5).astype(int)
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)

    def model(A):
        A = np.asarray(A, dtype=np.float64)
        p = 1 / (1 + np.exp(-((A * np.linspace(-1, 1, M)).sum(axis=1) + 0.8 * A[:, 0] * A[:, 1] * A[:, 2])))
        return np.stack([1 - p, p], axis=1)

    base = Xd[:4].tolist()
    return path, model, cols, Xd, base


def _job(tmp_path, name, shap_cfg, path, model):
    import clarion

    cfg = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "excluded_columns": ["g"],
        "methods": {"shap": shap_cfg},
        "predictor": {"probability": 1},
    }
    import pandas as pd

    out = tmp_path / name
    clarion.analyze(cfg, path, model=model, output_dir=out, progress=False)
    return pd.read_csv(out / "explanations_shap" / "out.csv").to_numpy()


def test_analyze_estimator_keys_end_to_end(tmp_path):
    path, model, cols, Xd, base = _job_inputs(tmp_path)

    def f(A):
        return model(A)[:, 1]

    B = np.asarray(base)
    exact = KernelShap(f, B, num_samples=2**6 - 2).explain(Xd).values
    # no estimator key: Clarify's (shap's) scheme, as KernelShap(estimator="shap") with the job's seed
    got = _job(tmp_path, "clarify", {"baseline": base, "num_samples": 30, "seed": 3}, path, model)
    want = KernelShap(f, B, num_samples=30, seed=3, estimator="shap").explain(Xd).values
    np.testing.assert_allclose(got, want, atol=1e-9)
    got = _job(tmp_path, "cubic", {"baseline": base, "num_samples": 30, "seed": 3, "estimator": "cubic"}, path, model)
    want = KernelShap(f, B, num_samples=30, seed=3).explain(Xd).values
    np.testing.assert_allclose(got, want, atol=1e-9)
    auto = {"baseline": base, "seed": 3, "estimator": "cubic", "num_samples": "auto", "tolerance": 0.02}
    got = _job(tmp_path, "auto", auto, path, model)  # M = 6: the first round is every coalition
    np.testing.assert_allclose(got, exact, atol=1e-9)


@pytest.mark.parametrize(("M", "S"), [(7, 126), (9, 100), (12, 300)])
def test_cubic_operator_dual_form_equals_primal(M, S):
    Z, w, *_ = K.stratified_plan(M, S, seed=3)
    # the cubic surrogate alone (the degree-5 terms exist only in the dual form: test_shap_estimator_v2)
    Ld, cd, _, ed = K.cubic_operator(Z, w, hat=True, form="dual", quintic=0.0)
    Lp, cp, _, ep = K.cubic_operator(Z, w, hat=True, form="primal", quintic=0.0)
    np.testing.assert_allclose(Ld, Lp, atol=1e-11)
    np.testing.assert_allclose(cd, cp, atol=1e-11)
    np.testing.assert_allclose(ed["R"], np.eye(S) - ep["X"] @ ep["Theta"], atol=1e-11)
    np.testing.assert_allclose(ed["h"], ep["h"], atol=1e-11)
    np.testing.assert_allclose(ed["rdelta"], -ep["X"] @ ep["ctheta"], atol=1e-11)


def test_std_path_handles_fixed_columns_and_null_players():
    rng = np.random.default_rng(2)
    M = 8
    B, X = rng.normal(size=(4, M)), rng.normal(size=(5, M))
    B[:, 3] = 1.5  # column 3 constant in the background ...
    X[1, 3] = 1.5  # ... and equal to it in row 1: a null player of row 1

    def f(A):
        return np.tanh((A * np.linspace(-1, 1, M)).sum(axis=1)) + 0.4 * A[:, 0] * A[:, 3] * A[:, 5]

    ex = KernelShap(f, B, num_samples=120, seed=2)
    plain, with_std = ex.explain(X), ex.explain(X, return_std=True)
    np.testing.assert_allclose(with_std.values, plain.values, atol=1e-12)
    assert with_std.values[1, 3] == 0.0 and with_std.std[1, 3] == 0.0
    np.testing.assert_allclose(with_std.values.sum(axis=1), f(X) - f(B).mean(), atol=1e-12)
    sub = KernelShap(f, B, num_samples=120, seed=2, features_to_explain=[0, 2, 3, 5, 6])
    a, b = sub.explain(X), sub.explain(X, return_std=True)
    np.testing.assert_allclose(b.values, a.values, atol=1e-12)
    np.testing.assert_allclose(b.expected_value, a.expected_value, atol=1e-12)
    np.testing.assert_allclose(b.values.sum(axis=1), f(X) - a.expected_value, atol=1e-12)


@pytest.mark.parametrize(("M", "S"), [(7, 100), (9, 300), (12, 800)])
def test_cubic_operator_paired_form_equals_primal(M, S):
    """The paired form (first members of the pairs only, Cholesky, residuals per row) gives the
    generic primal form's operator, hat diagonal, attributions and standard errors."""
    Z, w, stratum, n_p, N_p = K.stratified_plan(M, S, seed=3)
    Lp, cp, _, ep = K.cubic_operator(Z, w, hat=True, form="primal")
    Lq, cq, _, eq = K.cubic_operator(Z, w, hat=True, form="paired")
    assert "Ainv" in eq and "Theta" in ep
    np.testing.assert_allclose(Lq, Lp, atol=1e-12)
    np.testing.assert_allclose(cq, cp, atol=1e-12)
    np.testing.assert_allclose(eq["h"], ep["h"], atol=1e-12)
    L0, c0, _, _ = K.cubic_operator(Z, w, hat=False, form="paired")  # same operator without the hat
    np.testing.assert_array_equal(L0, Lq)
    np.testing.assert_array_equal(c0, cq)
    rng = np.random.default_rng(M)
    y, delta = rng.normal(size=(3, S, 2)), rng.normal(size=(3, 2))
    for impl in ("numpy", "cpu"):
        phi_p, sd_p = K.stratified_solve(impl, y, delta, Lp, cp, ep, stratum, n_p, N_p, 1)
        phi_q, sd_q = K.stratified_solve(impl, y, delta, Lq, cq, eq, stratum, n_p, N_p, 1)
        np.testing.assert_allclose(phi_q, phi_p, atol=1e-12)
        np.testing.assert_allclose(sd_q, sd_p, atol=1e-12)
        assert (sd_q > 0).all()
        # a row's result does not depend on the rows beside it
        one_phi, one_sd = K.stratified_solve(impl, y[1:2], delta[1:2], Lq, cq, eq, stratum, n_p, N_p, 1)
        np.testing.assert_array_equal(one_phi[0], phi_q[1])
        np.testing.assert_array_equal(one_sd[0], sd_q[1])
    # not a paired plan: the paired form is not taken
    Zs, ws = Z[: S - 1], w[: S - 1]
    assert not K._is_paired(Zs, ws)
    assert "Theta" in K.cubic_operator(Zs, ws, hat=True, form="paired")[3]


def test_cubic_operator_paired_form_undetermined_plan_falls_back():
    """Too few pairs to determine the linear part: the paired form declines (its linear-block
    check) and the generic primal form's minimum-norm solution is returned (status 1), still
    exactly efficient."""
    Z, w, *_ = K.stratified_plan(8, 6, seed=1)  # 3 pairs for 8 players
    assert K._is_paired(Z, w)
    assert K._cubic_paired(Z, w / w.sum(), 0.1, False) is None
    L, c, status, _ = K.cubic_operator(Z, w, form="paired")
    assert status == 1
    np.testing.assert_allclose(L.sum(axis=0), 0.0, atol=1e-9)
    assert abs(c.sum() - 1.0) < 1e-9
