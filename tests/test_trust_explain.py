"""Issue 13, explanation items: null players get exactly 0 (28), several model outputs with
features_to_explain through analyze (24), Clarify's PDP grid and label_headers (27), and clear
errors for out-of-range feature indices and scipy.sparse inputs (22)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion import _backend, _reference
from clarion import analysis as A
from clarion.explain import (
    Baseline,
    KernelShap,
    ShapConditioningWarning,
    kmeans_baseline,
    partial_dependence,
)
from clarion.explain._common import MSG_INDEX
from clarion.explain._tabular import MSG_SPARSE, MSG_SPARSE_TYPE, TabularCodec

BACKENDS = ["numpy", pytest.param("cpu", marks=pytest.mark.skipif(not _backend.has_core(), reason="no extension"))]


def mlp(P: int, D: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    W1, W2 = rng.normal(size=(P, 8)), rng.normal(size=(8, D))

    def f(X):
        out = np.tanh(X @ W1) @ W2 + (X[:, :1] * X[:, -1:])
        return out[:, 0] if D == 1 else out

    return f


def with_null_players(rng, M, K, N):
    """Background and rows where some columns are constant in the background and some rows take
    that constant (null players of those rows); with K = 1 any equal value is one."""
    B, X = rng.normal(size=(K, M)), rng.normal(size=(N, M))
    const = rng.random(M) < 0.5
    B[:, const] = B[0, const]
    hit = (rng.random((N, M)) < 0.6) & const[None, :]
    X[hit] = np.broadcast_to(B[0], (N, M))[hit]
    null = (X == B[0][None, :]) & (B == B[0]).all(axis=0)[None, :]
    return B, X, null


# ---- item 28: null players -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(M=st.integers(2, 7), K=st.integers(1, 4), N=st.integers(1, 6), D=st.integers(1, 2), seed=st.integers(0, 2**31))
def test_null_players_exactly_zero_exact_mode(backend, M, K, N, D, seed):
    rng = np.random.default_rng(seed)
    B, X, null = with_null_players(rng, M, K, N)
    f = mlp(M, D, seed)
    e = KernelShap(f, B, num_samples=2**M, backend=backend, seed=1).explain(X)
    v = e.values if D > 1 else e.values[:, :, None]
    assert (v[null] == 0.0).all()  # exactly, not -3.3e-16
    ref = np.stack([_reference.exact_shapley(f, x, B) for x in X])
    np.testing.assert_allclose(v, ref, atol=1e-10, rtol=0)
    fx = f(X).reshape(N, D)
    np.testing.assert_allclose(v.sum(1), fx - np.reshape(e.expected_value, (1, D)), atol=1e-12, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(M=st.integers(4, 9), K=st.integers(1, 4), N=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_null_players_exactly_zero_sampled_mode_keeps_efficiency(backend, M, K, N, seed):
    rng = np.random.default_rng(seed)
    B, X, null = with_null_players(rng, M, K, N)
    f = mlp(M, 1, seed)
    with warnings.catch_warnings():  # a rank-deficient plan (least-squares operator) is covered too
        warnings.simplefilter("ignore", ShapConditioningWarning)
        ks = KernelShap(f, B, num_samples=2 * M + 2, backend=backend, seed=seed)
    assert not ks.exact_
    e = ks.explain(X, return_std=True)
    assert (e.values[null] == 0.0).all() and (e.std[null] == 0.0).all()
    np.testing.assert_allclose(e.values.sum(1), f(X) - e.expected_value, atol=1e-10, rtol=0)
    # rows without a null player keep the plain estimate (to rounding: the operator has more columns)
    plain = ~null.any(axis=1)
    if plain.any():
        np.testing.assert_allclose(e.values[plain], ks.explain(X[plain]).values, atol=1e-12, rtol=0)


def test_null_players_equal_shap_exact():
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(28)
    M = 6
    B, X, null = with_null_players(rng, M, 3, 12)
    assert null.any() and not null.all()
    f = mlp(M, 1, 3)
    ours = KernelShap(f, B, num_samples=2**M).explain(X).values
    theirs = np.asarray(shap.KernelExplainer(f, B).shap_values(X, l1_reg=False, nsamples=2**M - 2, silent=True))
    assert (theirs[null] == 0).all() and (ours[null] == 0).all()
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_null_player_ignores_background_rows_of_weight_zero():
    rng = np.random.default_rng(6)
    B, X = rng.normal(size=(3, 5)), rng.normal(size=(4, 5))
    B[[0, 2], 1] = 0.7  # row 1 differs, but has weight 0
    X[:2, 1] = 0.7
    pi = np.array([0.5, 0.0, 0.5])
    f = mlp(5, 1, 6)
    e = KernelShap(f, Baseline(B, pi), num_samples=2**5).explain(X)
    assert (e.values[:2, 1] == 0).all() and (e.values[2:, 1] != 0).all()
    ref = np.stack([_reference.exact_shapley(f, x, B, pi=pi) for x in X])[:, :, 0]
    np.testing.assert_allclose(e.values, ref, atol=1e-10)


def test_null_groups_categorical_and_features_to_explain():
    rng = np.random.default_rng(5)
    n = 12
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "city": rng.choice(["paris", "lyon"], size=n),
            "c": rng.normal(size=n),
        }
    )
    bg = df.iloc[:1].copy()  # one background row: any equal value is a null player

    def model(frame):
        return np.tanh(frame["a"] * frame["c"]).to_numpy() + (frame["city"] == "paris") * frame["b"].to_numpy()

    X = df.copy()
    X.loc[X.index[::2], "city"] = bg["city"].iloc[0]
    X.loc[X.index[::3], ["a", "b"]] = bg[["a", "b"]].to_numpy()
    e = KernelShap(model, bg, feature_groups={"ab": ["a", "b"]}, num_samples=2**3).explain(X)
    ab, city = e.feature_names.index("ab"), e.feature_names.index("city")
    assert (e.values[::3, ab] == 0).all() and (e.values[::2, city] == 0).all()
    np.testing.assert_allclose(e.values.sum(1), model(X) - e.expected_value, atol=1e-12)
    # a missing value equals a missing value (masking copies it)
    bg_na, X_na = bg.copy(), X.copy()
    bg_na["city"] = None
    X_na.loc[X_na.index[1::2], "city"] = None
    e_na = KernelShap(model, bg_na, num_samples=2**4).explain(X_na)
    assert (e_na.values[1::2, 2] == 0).all() and (e_na.values[::2, 2] != 0).any()
    np.testing.assert_allclose(e_na.values.sum(1), model(X_na) - e_na.expected_value, atol=1e-12)
    # features_to_explain: per-row base value, efficiency against it, null players still exactly 0
    e2 = KernelShap(model, bg, features_to_explain=["city", "c"], num_samples=2**2).explain(X)
    assert (e2.values[::2, 0] == 0).all()
    np.testing.assert_allclose(e2.values.sum(1), model(X) - e2.expected_value, atol=1e-12)


# ---- item 24: several outputs with features_to_explain through analyze ------------------------------


def data(n=160, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n).round(3),
            "x2": rng.integers(0, 30, n),
            "x3": rng.normal(size=n).round(3),
            "g": rng.integers(0, 2, n),
        }
    )
    logit = df.x1 - 0.1 * df.x2 + 1 + df.g * df.x3
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def fit(df):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(df[["x1", "x2", "x3", "g"]], df.y)


def cfg(**methods):
    return {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "methods": {
            "shap": {"num_clusters": 2, "seed": 3, "features_to_explain": ["x1", 2], "save_local_shap_values": True},
            **methods,
        },
        "predictor": {"label_headers": ["no", "yes"]},
    }


def test_features_to_explain_with_two_outputs(tmp_path):
    df = data()
    model = fit(df)
    df.to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "o"
    res = A.analyze(
        cfg(pdp={"grid_resolution": 4, "features": ["x1", 1]}),
        tmp_path / "d.csv",
        model=model,
        output_dir=out,
        progress=False,
    )
    shap_doc = res.analysis["explanations"]["kernel_shap"]
    assert list(shap_doc) == ["no", "yes"]
    local = pd.read_csv(out / "explanations_shap" / "out.csv")
    assert list(local.columns) == ["x1_no", "x3_no", "x1_yes", "x3_yes"]
    proba = model.predict_proba(df[["x1", "x2", "x3", "g"]])
    for d, lab in enumerate(["no", "yes"]):
        block = shap_doc[lab]
        assert list(block["global_shap_values"]) == ["x1", "x3"]
        for f in ("x1", "x3"):
            assert block["global_shap_values"][f] == pytest.approx(local[f"{f}_{lab}"].abs().mean(), rel=1e-12)
        # the base value is per row (x2 and g keep the row's values); analysis.json has its mean,
        # so mean(sum phi) + expected_value = mean f(x)
        tot = local[[f"x1_{lab}", f"x3_{lab}"]].sum(axis=1).mean()
        assert tot + block["expected_value"] == pytest.approx(proba[:, d].mean(), abs=1e-10)
    pdp = res.analysis["explanations"]["pdp"]
    assert [e["feature_name"] for e in pdp] == ["x1", "x2"]
    for e in pdp:
        assert "error" not in e and e["label_headers"] == ["no", "yes"] and len(e["model_predictions"]) == 2
        np.testing.assert_allclose(np.sum(e["model_predictions"], axis=0), 1.0, atol=1e-12)


def test_features_to_explain_one_output_reports_the_mean_base(tmp_path):
    # before: the first row's base value of the last batch was written as expected_value
    df = data(seed=1)
    model = fit(df)
    c = cfg()
    c["predictor"] = {"probability": 1}
    res = A.analyze(c, df, model=model, output_dir=tmp_path / "o", progress=False, chunk_rows=50)
    local = pd.read_csv(tmp_path / "o" / "explanations_shap" / "out.csv")
    block = res.analysis["explanations"]["kernel_shap"]["label0"]
    p1 = model.predict_proba(df[["x1", "x2", "x3", "g"]])[:, 1]
    assert local.sum(axis=1).mean() + block["expected_value"] == pytest.approx(p1.mean(), abs=1e-10)


def test_cli_analyze_features_to_explain_two_outputs(tmp_path, capsys):
    skops_io = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    from clarion.cli import EXIT_OK, main

    df = data(seed=2)
    model = LogisticRegression().fit(df[["x1", "x2", "x3", "g"]], df.y)
    df.to_csv(tmp_path / "d.csv", index=False)
    skops_io.dump(model, tmp_path / "m.skops")
    c = cfg(pdp={"grid_resolution": 3, "features": ["x3"]})
    c["predictor"]["model_uri"] = "m.skops"
    (tmp_path / "c.json").write_text(json.dumps(c))
    code = main(
        [
            "analyze",
            "--config",
            str(tmp_path / "c.json"),
            "--data",
            str(tmp_path / "d.csv"),
            "--output",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    assert code == EXIT_OK, capsys.readouterr().err
    doc = json.loads((tmp_path / "o" / "analysis.json").read_text())
    assert list(doc["explanations"]["kernel_shap"]) == ["no", "yes"]
    assert doc["explanations"]["pdp"][0]["label_headers"] == ["no", "yes"]


# ---- item 27: Clarify's PDP grid ----------------------------------------------------------------------


def test_pdp_grid_is_bucket_centres_over_the_range():
    rng = np.random.default_rng(27)
    df = pd.DataFrame(
        {
            "f": rng.normal(3, 2, 200),
            "i": rng.integers(0, 100, 200),
            "s": rng.integers(0, 3, 200),
            "k": np.full(200, 2.5),
            "c": rng.choice(["u", "v"], 200),
        }
    )

    def model(frame):
        return np.column_stack([frame["f"] * 0.1 + frame["i"] * 0.01, (frame["c"] == "u") + frame["s"] * 0.2])

    pdp = partial_dependence(model, df, ["f", "i", "s", "k", "c"], grid_resolution=6)
    grid = lambda name: pdp[(pdp.feature == name) & (pdp.output == 0)]["value"].to_numpy()
    lo, hi = df.f.min(), df.f.max()
    np.testing.assert_allclose(grid("f").astype(float), lo + (hi - lo) * (np.arange(6) + 0.5) / 6, rtol=1e-15)
    ilo, ihi = df.i.min(), df.i.max()  # integers: the centres rounded half up
    want = np.floor(ilo + (ihi - ilo) * (np.arange(6) + 0.5) / 6 + 0.5)
    np.testing.assert_array_equal(grid("i"), want)
    assert all(isinstance(v, (int, np.integer)) for v in grid("i"))
    np.testing.assert_array_equal(grid("s"), [0, 1, 2])  # 6 buckets over 0..2 round to 0, 1, 2
    np.testing.assert_array_equal(grid("k"), [2.5])  # a constant column: its one value
    assert set(grid("c")) == {"u", "v"}
    for v, avg in zip(grid("f"), pdp[(pdp.feature == "f") & (pdp.output == 0)]["average"]):
        np.testing.assert_allclose(avg, model(df.assign(f=v))[:, 0].mean(), atol=1e-12)
    # the quantile range stays available
    q = partial_dependence(model, df, "f", grid_resolution=4, percentiles=(0.1, 0.9))
    qlo, qhi = np.quantile(df.f, [0.1, 0.9])
    np.testing.assert_allclose(q[q.output == 0]["value"].astype(float), qlo + (qhi - qlo) * (np.arange(4) + 0.5) / 4)


def test_pdp_grid_dask_equals_local():
    dd = pytest.importorskip("dask.dataframe")
    import dask

    rng = np.random.default_rng(7)
    df = pd.DataFrame({"f": rng.normal(size=120), "i": rng.integers(-5, 40, 120)})
    model = lambda Z: (Z["f"] * Z["i"]).to_numpy()
    one = partial_dependence(model, df, ["f", "i"], grid_resolution=5)
    with dask.config.set(scheduler="synchronous"):
        many = partial_dependence(model, dd.from_pandas(df, npartitions=4), ["f", "i"], grid_resolution=5)
    pd.testing.assert_frame_equal(one, many, rtol=1e-12)


def test_analysis_pdp_entry_has_label_headers_and_bucket_shares(tmp_path):
    df = data(seed=4)
    model = fit(df)
    c = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "methods": {"pdp": {"grid_resolution": 5, "features": ["x1", "x2", "g"]}},
    }
    res = A.analyze(c, df, model=model, output_dir=tmp_path / "o", progress=False)
    pdp = {e["feature_name"]: e for e in res.analysis["explanations"]["pdp"]}
    e = pdp["x1"]
    assert list(e) == [
        "feature_name",
        "data_type",
        "feature_values",
        "model_predictions",
        "label_headers",
        "data_distribution",
    ]
    assert e["label_headers"] == ["label0", "label1"]
    lo, hi = df.x1.min(), df.x1.max()
    np.testing.assert_allclose(e["feature_values"], lo + (hi - lo) * (np.arange(5) + 0.5) / 5)
    counts, _ = np.histogram(df.x1, bins=5, range=(lo, hi))  # equal buckets of the range
    np.testing.assert_allclose(e["data_distribution"], counts / len(df), atol=1e-12)
    assert pdp["g"]["feature_values"] == [0, 1]
    np.testing.assert_allclose(pdp["g"]["data_distribution"], [np.mean(df.g == 0), np.mean(df.g == 1)])
    assert all(float(v).is_integer() for v in pdp["x2"]["feature_values"])


# ---- item 22: out-of-range indices, sparse inputs -----------------------------------------------------


def test_out_of_range_feature_index_names_the_key(tmp_path):
    df = data(seed=5)
    model = fit(df)
    c = cfg()
    c["methods"]["shap"]["features_to_explain"] = ["x1", 7]
    with pytest.raises(
        ValueError,
        match=r"^methods\.shap\.features_to_explain\[1\]: column index 7 is out of "
        r"range for 4 columns",
    ):
        A.analyze(c, df, model=model, output_dir=tmp_path / "a", progress=False)
    c = cfg(pdp={"grid_resolution": 3, "features": [9]})
    with pytest.raises(ValueError, match=r"^methods\.pdp\.features\[0\]: column index 9 is out of range"):
        A.analyze(c, df, model=model, output_dir=tmp_path / "b", progress=False)
    rng = np.random.default_rng(0)
    B = rng.normal(size=(3, 4))
    f = mlp(4)
    with pytest.raises(ValueError, match=r"^features_to_explain: index 4 is out of range: there are 4 features"):
        KernelShap(f, B, features_to_explain=[0, 4])
    with pytest.raises(ValueError, match=r"^feature_groups: index 9 is out of range: there are 4 columns"):
        KernelShap(f, B, feature_groups=[[0, 9]])
    with pytest.raises(ValueError, match=r"^features: index 5 is out of range: there are 4 columns \(0\.\.3\)"):
        partial_dependence(f, B, [1, 5])
    assert MSG_INDEX.startswith("{arg}: index {index} is out of range")


def test_sparse_background_and_rows_are_densified():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(22)
    Bd = rng.normal(size=(6, 5)) * (rng.random((6, 5)) < 0.4)
    Xd = rng.normal(size=(4, 5)) * (rng.random((4, 5)) < 0.4)
    f = mlp(5)
    want = KernelShap(f, Bd, num_samples=2**5).explain(Xd).values
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_array):
        got = KernelShap(f, fmt(Bd), num_samples=2**5).explain(fmt(Xd)).values
        np.testing.assert_array_equal(got, want)
        got = KernelShap(f, Baseline(fmt(Bd), np.full(6, 1 / 6)), num_samples=2**5).explain(Xd).values
        np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)
    pd_dense = partial_dependence(f, Xd, [0, 1], grid_resolution=3)
    pd.testing.assert_frame_equal(partial_dependence(f, sp.csr_matrix(Xd), [0, 1], grid_resolution=3), pd_dense)
    pytest.importorskip("sklearn")
    kb = kmeans_baseline(sp.csr_matrix(Bd), 2)
    np.testing.assert_array_equal(kb.data, kmeans_baseline(Bd, 2).data)


def test_sparse_model_output_is_densified():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(3)
    B, X = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    f = lambda Z: np.column_stack([Z[:, 0] * Z[:, 1], Z[:, 2]])
    want = KernelShap(f, B, num_samples=6).explain(X).values
    got = KernelShap(lambda Z: sp.csr_matrix(f(Z)), B, num_samples=6).explain(X).values
    np.testing.assert_array_equal(got, want)


def test_sparse_too_large_or_unexpected_says_it_is_sparse():
    sp = pytest.importorskip("scipy.sparse")
    big = sp.csr_matrix((10**6, 10**3))
    with pytest.raises(ValueError, match=r"^background is a scipy\.sparse matrix of shape \(1000000, 1000\)"):
        KernelShap(mlp(3), big, memory_budget="1MiB")
    assert MSG_SPARSE.startswith("{arg} is a scipy.sparse matrix")
    with pytest.raises(TypeError, match=r"^X is a scipy\.sparse matrix"):
        TabularCodec(sp.csr_matrix(np.eye(3)), "X")
    assert MSG_SPARSE_TYPE.startswith("{arg} is a scipy.sparse matrix")
