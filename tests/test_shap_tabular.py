"""KernelShap on DataFrames and pipelines; Explanation outputs; baselines; PDP; errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clarion import _reference
from clarion.explain import Baseline, KernelShap, kmeans_baseline, partial_dependence
from clarion.explain._model import MSG_NONFINITE, MSG_ROWS
from clarion.explain._tabular import TabularCodec


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, size=n),
            "income": rng.normal(50, 15, size=n),
            "city": rng.choice(["paris", "lyon", "nice"], size=n),
            "plan": pd.Categorical(rng.choice(["basic", "pro"], size=n), categories=["basic", "pro", "max"]),
            "member": rng.random(n) < 0.5,
        }
    )
    df.loc[df.index[::7], "city"] = None  # missing values survive masking
    return df


def pipeline(df: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    y = ((df["income"] > 50) ^ (df["city"] == "paris") | (df["plan"] == "pro")).astype(int)
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan", "member"]),
            ("num", StandardScaler(), ["age", "income"]),
        ]
    )
    return make_pipeline(pre, LogisticRegression()).fit(df, y)


def test_pipeline_with_string_columns_exact():
    df = frame(300)
    model = pipeline(df)
    seen = []

    def spy(batch):
        seen.append(batch)
        return model.predict_proba(batch)

    bg, X = df.iloc[:8], df.iloc[100:104]
    e = KernelShap(spy, bg, num_samples=2**5).explain(X)
    assert all(isinstance(b, pd.DataFrame) and list(b.dtypes) == list(df.dtypes) for b in seen)
    assert e.values.shape == (4, 5, 2)
    np.testing.assert_allclose(e.values.sum(1) + e.expected_value, model.predict_proba(X), atol=1e-12)
    # Exact Shapley in code space, with the model seeing decoded frames.
    codec = TabularCodec(bg)
    B = codec.encode(bg, "bg")
    Xm = codec.encode(X, "X")
    ref = np.stack([_reference.exact_shapley(lambda m: model.predict_proba(codec.decode(m)), x, B) for x in Xm])
    np.testing.assert_allclose(e.values, ref, atol=1e-10)
    # The estimator itself (predict_proba picked automatically), sampled mode.
    e2 = KernelShap(model, bg, num_samples=20, seed=0).explain(X)
    assert e2.output_names == [0, 1]
    np.testing.assert_allclose(e2.values.sum(1) + e2.expected_value, model.predict_proba(X), atol=1e-12)


def test_codec_round_trip_keeps_dtypes_and_values():
    df = frame(40, seed=3)
    df["small"] = df["income"].astype(np.float32)
    df["nullable"] = pd.array([1, None] * 20, dtype="Int64")
    codec = TabularCodec(df)
    back = codec.decode(codec.encode(df, "X"))
    assert list(back.dtypes) == list(df.dtypes)
    pd.testing.assert_frame_equal(back, df.reset_index(drop=True))
    # New categories in later data extend the code table without changing known codes.
    other = df.copy()
    other.loc[0, "city"] = "brest"
    m = codec.encode(other, "X")
    assert codec.decode(m)["city"][0] == "brest"
    np.testing.assert_array_equal(m[1:, 2], codec.encode(df, "X")[1:, 2])


def test_explanation_outputs():
    rng = np.random.default_rng(0)
    w = np.array([3.0, -1.0, 0.5, 0.0])
    B, X = rng.normal(size=(5, 4)), rng.normal(size=(10, 4))
    e = KernelShap(lambda Z: Z @ w, B).explain(X)
    g = e.global_importance()
    assert list(g.index) == ["0", "1", "2", "3"] and g.name == "mean_abs"
    np.testing.assert_allclose(g["0"], np.abs(e.values[:, 0]).mean())
    np.testing.assert_allclose(e.global_importance("mean_sq")["1"], (e.values[:, 1] ** 2).mean())
    np.testing.assert_allclose(e.global_importance("median")["2"], np.median(e.values[:, 2]))
    with pytest.raises(ValueError, match="agg must be"):
        e.global_importance("max")
    assert e.to_frame().shape == (10, 4)
    multi = KernelShap(lambda Z: np.c_[Z @ w, -(Z @ w)], B).explain(pd.DataFrame(X, columns=list("abcd")).to_numpy())
    gi = multi.global_importance()
    assert gi.shape == (4, 2) and list(gi.columns) == [0, 1]
    tf = multi.to_frame()
    assert tf.shape == (10, 8) and tf.columns.names == ["output", "feature"]


def test_to_shap():
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(1)
    B, X = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    e = KernelShap(lambda Z: Z.sum(1), B).explain(X)
    s = e.to_shap()
    assert isinstance(s, shap.Explanation)
    np.testing.assert_array_equal(s.values, e.values)
    np.testing.assert_allclose(s.base_values, np.full(4, e.expected_value))
    np.testing.assert_array_equal(s.data, X)


def test_kmeans_baseline_matches_shap_kmeans():
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(2)
    X = np.round(rng.normal(size=(200, 4)), 1)
    X[::9, 2] = np.nan  # mean-imputed before clustering, as shap.kmeans does
    ours = kmeans_baseline(X, 5)
    ref = shap.kmeans(X, 5)
    np.testing.assert_allclose(ours.data, ref.data)
    np.testing.assert_allclose(ours.weights, ref.weights)
    f = lambda Z: np.tanh(Z).sum(1)
    a = KernelShap(f, ours, num_samples=14).explain(X[1:4])
    b = shap.KernelExplainer(f, ref).shap_values(X[1:4], l1_reg=False, nsamples=14, silent=True)
    np.testing.assert_allclose(a.values, b, atol=1e-8)


def test_kmeans_baseline_categorical_uses_modes():
    df = frame(120, seed=4)
    base = kmeans_baseline(df, 3, seed=0)
    assert isinstance(base, Baseline) and len(base) == 3
    assert list(base.data.dtypes) == list(df.dtypes)
    assert abs(base.weights.sum() - 1) < 1e-12
    for col in ["city", "plan", "member"]:
        assert set(base.data[col].dropna()) <= set(df[col].dropna())  # observed values, never a mean
    assert set(base.data["age"]) <= set(df["age"])  # numeric centres snapped to observed values
    with pytest.raises(ValueError, match="k must be"):
        kmeans_baseline(df, 0)


def test_partial_dependence_numeric_and_categorical():
    df = frame(150, seed=5)
    model = pipeline(df)
    pdp = partial_dependence(model, df, ["income", "city", "member"], grid_resolution=5)
    assert list(pdp.columns) == ["feature", "value", "output", "average"]
    inc = pdp[(pdp.feature == "income") & (pdp.output == 1)]
    assert len(inc) == 5
    lo, hi = df["income"].min(), df["income"].max()  # Clarify: centres of 5 equal buckets of the range
    expected_grid = lo + (hi - lo) * (np.arange(5) + 0.5) / 5
    np.testing.assert_allclose(inc["value"].astype(float), expected_grid)
    for v, avg in zip(inc["value"], inc["average"]):
        mod = df.copy()
        mod["income"] = v
        np.testing.assert_allclose(avg, model.predict_proba(mod)[:, 1].mean(), atol=1e-12)
    city = pdp[(pdp.feature == "city") & (pdp.output == 0)]
    assert set(city["value"]) == {"paris", "lyon", "nice"}
    for v, avg in zip(city["value"], city["average"]):
        mod = df.copy()
        mod["city"] = v
        np.testing.assert_allclose(avg, model.predict_proba(mod)[:, 0].mean(), atol=1e-12)
    # Chunked background (tiny budget) gives the same numbers.
    small = partial_dependence(model, df, "income", grid_resolution=5, memory_budget=2000)
    np.testing.assert_allclose(small["average"], pdp[pdp.feature == "income"]["average"], atol=1e-12)


def test_partial_dependence_matches_sklearn_on_arrays():
    from sklearn.inspection import partial_dependence as sk_pd
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(6)
    X = rng.normal(size=(80, 3))
    X[:, 2] = rng.integers(0, 4, size=80)
    model = Ridge().fit(X, X[:, 0] * 2 + X[:, 2])
    ours = partial_dependence(model, X, [0, 2], grid_resolution=10)
    for j in (0, 2):
        sub = ours[ours.feature == j]
        grid = sub["value"].to_numpy(dtype=float)
        ref = sk_pd(model, X, [j], custom_values={j: grid}, kind="average")
        np.testing.assert_allclose(sub["average"], ref["average"][0], atol=1e-12)


def test_errors():
    rng = np.random.default_rng(7)
    B, X = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    good = lambda Z: Z.sum(1)
    with pytest.raises(ValueError, match=MSG_ROWS.split("{")[0]):
        KernelShap(lambda Z: Z.sum(1)[:-1], B)
    with pytest.raises(ValueError, match="returned 3 rows for a batch of"):
        KernelShap(lambda Z: np.ones(3), B, num_samples=6).explain(X)
    calls = []

    def nan_later(Z):
        calls.append(1)
        out = Z.sum(1)
        if len(calls) > 1:
            out[1] = np.nan
        return out

    with pytest.raises(ValueError, match="non-finite value \\(nan\\) at row 1"):
        KernelShap(nan_later, B).explain(X)
    with pytest.raises(ValueError, match="non-finite value \\(inf\\)"):
        KernelShap(lambda Z: np.full(len(Z), np.inf), B)
    assert "non-finite" in MSG_NONFINITE
    dfb = pd.DataFrame(B, columns=list("abc"))
    ks = KernelShap(lambda d: d.to_numpy().sum(1), dfb)
    with pytest.raises(ValueError, match="missing \\['c'\\], unexpected \\['z'\\]"):
        ks.explain(pd.DataFrame(X, columns=list("abz")))
    with pytest.raises(ValueError, match="2 columns but the background has 3"):
        KernelShap(good, B).explain(X[:, :2])
    with pytest.raises(ValueError, match="at least 2 players.*M = 1"):
        KernelShap(good, B[:, :1])
    with pytest.raises(ValueError, match="M = 0"):
        KernelShap(good, B, features_to_explain=[])
    with pytest.raises(ValueError, match="K = 0"):
        KernelShap(good, B[:0])
    for bad in (1, 0, -5, 2.5, True):
        with pytest.raises(ValueError, match="num_samples must be"):
            KernelShap(good, B, num_samples=bad)
    with pytest.raises(ValueError, match="link must be"):
        KernelShap(good, B, link="probit")
    with pytest.raises(ValueError, match="seed must be"):
        KernelShap(good, B, seed=-1)
    with pytest.raises(ValueError, match="memory_budget"):
        KernelShap(good, B, memory_budget="lots")
    with pytest.raises(ValueError, match="unknown column 'q'"):
        KernelShap(good, dfb, feature_groups={"g": ["a", "q"]})
    with pytest.raises(ValueError, match="more than one group"):
        KernelShap(good, dfb, feature_groups=[["a", "b"], ["b", "c"]])
    with pytest.raises(ValueError, match="unknown feature 'zz'"):
        KernelShap(good, dfb, features_to_explain=["a", "zz"])
    with pytest.raises(ValueError, match="background weights"):
        KernelShap(good, Baseline(B, np.array([1.0, -1.0, 0.5, 0.5])))
    with pytest.raises(TypeError, match="numpy array of dtype"):
        KernelShap(good, np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(TypeError, match="cannot use an object of type int"):
        KernelShap(42, B)
    with pytest.raises(ValueError, match="grid_resolution"):
        partial_dependence(good, X, [0], grid_resolution=1)
    with pytest.raises(ValueError, match=r"index 7 is out of range: there are 3 columns"):
        partial_dependence(good, X, [7])
