"""Issue 16: online explainability in process (:class:`clarion.explain.OnlineExplainer`) and the
``ClarifyExplainerConfig`` reader (:mod:`clarion.config.explainer`).

The attributions are checked against :class:`clarion.explain.KernelShap` run with the same baseline,
samples and seed (bitwise), the selection of ``EnableExplanations`` against the same predicate in
numpy, and the response against the shape SageMaker documents for online explainability
(``version``, ``predictions`` {``content_type``, ``data``}, ``label_headers``, ``explanations`` ->
``kernel_shap``: per record ``null`` or one object per feature with ``attributions`` ->
``attribution``, one value per explained output).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression, LogisticRegression

from clarion.config import ConfigError, ConfigWarning
from clarion.config.explainer import (
    ExplainerConfig,
    parse_baseline,
    read_explainer_config,
)
from clarion.explain import KernelShap, OnlineExplainer, OnlineExplanation
from clarion.models.wire import RequestError, format_response

RNG = np.random.default_rng(16)
X = RNG.normal(size=(200, 5))
Y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 3] > 0).astype(int)
CLF = LogisticRegression().fit(X, Y)
REG = LinearRegression().fit(X, X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]))
BASE = X[:4]
HEADERS = ["a", "b", "c", "d", "e"]


def _csv(rows) -> str:
    return "\n".join(",".join(repr(float(v)) for v in r) for r in rows)


def _cfg(**over):
    cfg = {
        "InferenceConfig": {"FeatureHeaders": HEADERS},
        "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": _csv(BASE)}, "NumberOfSamples": 24, "Seed": 5},
    }
    for k, v in over.items():
        section, _, key = k.partition("__")
        if key:
            cfg.setdefault(section, {})[key] = v
        else:
            cfg[section] = v
    return cfg


def check_clarify_shape(doc, *, n, n_features, n_outputs, headers=None):
    """The online explainability response as SageMaker documents it; returns the per-record
    attributions as an (n, M, n_out) array with NaN rows for records not explained."""
    assert set(doc) <= {"version", "predictions", "label_headers", "explanations"}
    assert {"version", "predictions", "explanations"} <= set(doc)
    assert doc["version"] == "1.0"
    assert set(doc["predictions"]) == {"content_type", "data"}
    assert isinstance(doc["predictions"]["data"], str) and isinstance(doc["predictions"]["content_type"], str)
    if "label_headers" in doc:
        assert all(isinstance(h, str) for h in doc["label_headers"])
    out = np.full((n, n_features, n_outputs), np.nan)
    if doc["explanations"] == {}:
        return out
    assert set(doc["explanations"]) == {"kernel_shap"}
    ks = doc["explanations"]["kernel_shap"]
    assert isinstance(ks, list) and len(ks) == n
    for i, rec in enumerate(ks):
        if rec is None:
            continue
        assert isinstance(rec, list) and len(rec) == n_features
        for j, feat in enumerate(rec):
            assert set(feat) <= {"feature_header", "feature_type", "attributions"}
            if headers is not None:
                assert feat["feature_header"] == headers[j]
            else:
                assert "feature_header" not in feat
            (attr,) = feat["attributions"]  # tabular: one attribution object per feature
            assert set(attr) == {"attribution"}
            assert len(attr["attribution"]) == n_outputs
            out[i, j] = attr["attribution"]
    assert any(rec is not None for rec in ks), "explanations must be {} when no record is explained"
    return out


# ---- the numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [None, 1])
@pytest.mark.parametrize("logit", [False, True])
def test_attributions_equal_kernel_shap(index, logit):
    cfg = _cfg(ShapConfig__UseLogit=logit)
    if index is not None:
        cfg["InferenceConfig"]["ProbabilityIndex"] = index
    ex = OnlineExplainer.from_config(CLF, cfg)
    rows = X[10:17]
    doc = json.loads(ex.explain(rows).to_json())
    n_out = 1 if index is not None else 2
    got = check_clarify_shape(doc, n=7, n_features=5, n_outputs=n_out, headers=HEADERS)
    ref = KernelShap(
        CLF, BASE, num_samples=24, seed=5, estimator="shap", link="logit" if logit else "identity"
    ).explain(rows)
    want = ref.values if index is None else ref.values[:, :, [index]]
    np.testing.assert_array_equal(got, want)  # JSON floats round-trip: bitwise
    # each explained row adds up: sum_j phi_j = g(f(x)) - E_g
    p = np.clip(CLF.predict_proba(rows), 1e-15, 1 - 1e-15)
    g = np.log(p / (1 - p)) if logit else p
    cols = [index] if index is not None else [0, 1]
    ev = np.asarray(ref.expected_value)[cols]
    np.testing.assert_allclose(got.sum(axis=1), g[:, cols] - ev, atol=1e-10)
    assert doc["label_headers"] == (["1"] if index == 1 else ["0", "1"])  # the classifier's classes


def test_one_output_regressor_and_predictions_text():
    ex = OnlineExplainer(REG, BASE, num_samples=30, seed=1)
    res = ex.explain(X[:3], accept="application/jsonlines")
    assert isinstance(res, OnlineExplanation)
    ref = KernelShap(REG, BASE, num_samples=30, seed=1, estimator="shap").explain(X[:3])
    np.testing.assert_array_equal(res.values[:, :, 0], ref.values)
    # the predictions are what the plain server answers for the same Accept
    assert res.data == format_response(REG.predict(X[:3]).reshape(-1, 1), "application/jsonlines", None).decode()
    doc = res.to_dict()
    assert "label_headers" not in doc  # a regressor has no classes and none were configured
    check_clarify_shape(doc, n=3, n_features=5, n_outputs=1)
    # a linear model's Kernel SHAP value is exact: w_j (x_j - E b_j)
    np.testing.assert_allclose(res.values[:, :, 0], REG.coef_ * (X[:3] - BASE.mean(axis=0)), atol=1e-9)


@settings(max_examples=25)
@given(threshold=st.floats(0.0, 1.0), seed=st.integers(0, 2**32))
def test_enable_explanations_selects_exactly_its_records(threshold, seed):
    rows = np.random.default_rng(seed).normal(size=(9, 5))
    p1 = CLF.predict_proba(rows)[:, 1]
    want = p1 > threshold
    ex = _EX_ENABLE
    expr = f"[1] > `{threshold!r}`"
    res = ex.explain(rows, enable_explanations=expr)
    np.testing.assert_array_equal(res.explained, want)
    res_j = ex.explain(rows, accept="application/jsonlines", enable_explanations=f"scores[1] > `{threshold!r}`")
    np.testing.assert_array_equal(res_j.explained, want)
    res_json = ex.explain(rows, accept="application/json", enable_explanations=f"scores[1] > `{threshold!r}`")
    np.testing.assert_array_equal(res_json.explained, want)
    doc = res.to_dict()
    got = check_clarify_shape(doc, n=9, n_features=5, n_outputs=2, headers=HEADERS)
    assert [rec is not None for rec in doc["explanations"].get("kernel_shap", [None] * 9)] == want.tolist()
    if want.any():  # explaining a subset gives each selected record what explaining it alone gives
        ref = KernelShap(CLF, BASE, num_samples=24, seed=5, estimator="shap").explain(rows[want]).values
        np.testing.assert_array_equal(got[want], ref)
    else:
        assert doc["explanations"] == {}


_EX_ENABLE = OnlineExplainer.from_config(CLF, _cfg())


def test_configured_enable_explanations_and_header_override():
    ex = OnlineExplainer.from_config(CLF, _cfg(EnableExplanations="[0] > `0.5`"))
    rows = X[:20]
    res = ex.explain(rows)
    np.testing.assert_array_equal(res.explained, CLF.predict_proba(rows)[:, 0] > 0.5)
    assert not ex.explain(rows, enable_explanations="`false`").explained.any()
    assert ex.explain(rows, enable_explanations="`true`").explained.all()
    with pytest.raises(RequestError, match=r"X-Amzn-SageMaker-Enable-Explanations: '\[0' is not a valid JMESPath"):
        ex.explain(rows, enable_explanations="[0")
    with pytest.raises(RequestError, match=r"gave None for record 0, not true or false"):
        ex.explain(rows, enable_explanations="probability > `0.5`")  # a CSV record is a list
    with pytest.raises(RequestError, match=r"EnableExplanations '\[0\]' gave 0\.\d+ for record 0"):
        OnlineExplainer.from_config(CLF, _cfg(EnableExplanations="[0]")).explain(rows)


def test_probability_attribute_selects_outputs():
    ex = OnlineExplainer.from_config(CLF, _cfg(InferenceConfig__ProbabilityAttribute="scores[1]"))
    assert ex.outputs == [1]
    ex2 = OnlineExplainer.from_config(CLF, _cfg(InferenceConfig__ProbabilityAttribute="scores"))
    assert ex2.outputs == [0, 1]
    with pytest.raises(ConfigError, match=r"^InferenceConfig.ProbabilityAttribute: 'predicted_label' must select"):
        OnlineExplainer.from_config(CLF, _cfg(InferenceConfig__ProbabilityAttribute="predicted_label"))
    with pytest.raises(ConfigError, match=r"^InferenceConfig.ProbabilityIndex: 2 is not an output of the model"):
        OnlineExplainer.from_config(CLF, _cfg(InferenceConfig__ProbabilityIndex=2))


def test_bad_records_name_their_index():
    ex = OnlineExplainer.from_config(CLF, _cfg())
    with pytest.raises(RequestError, match=r"^record 0 has 4 feature values but the explainer's baseline has 5"):
        ex.explain(X[:3, :4])
    rows = [[0.1, 0.2, 0.3, 0.4, 0.5], [0.1, 0.2, "x", 0.4, 0.5], [1, 2, 3, 4, 5]]
    with pytest.raises(RequestError, match=r"^record 1, feature 2: 'x' is not a number"):
        ex.explain(rows)
    # None is a missing value (NaN), passed to the model as the plain server does
    res = OnlineExplainer(lambda A: np.nan_to_num(A).sum(axis=1), BASE, num_samples=24, seed=0).explain(
        [[0.1, None, 0.3, 0.4, 0.5]]
    )
    assert np.isfinite(res.values).all()


def test_max_record_count_caps_every_model_call():
    calls = []

    def model(A):
        calls.append(len(A))
        return A @ np.arange(5.0)

    ex = OnlineExplainer(model, BASE, num_samples=40, seed=2, max_record_count=17)
    calls.clear()
    res = ex.explain(X[:6])
    assert max(calls) <= 17 and sum(calls) == 6 + 6 * ex.num_samples * len(BASE)  # f(x) once, then synthetic
    ref = KernelShap(model, BASE, num_samples=40, seed=2, estimator="shap").explain(X[:6]).values
    np.testing.assert_allclose(res.values[:, :, 0], ref, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"^max_record_count: expected an integer >= 1, got 0"):
        OnlineExplainer(model, BASE, max_record_count=0)


def test_feature_headers_types_and_response_json_is_strict():
    cfg = _cfg(InferenceConfig__FeatureTypes=["numerical"] * 4 + ["categorical"])
    res = OnlineExplainer.from_config(CLF, cfg).explain(X[:2])
    doc = json.loads(res.to_json())
    assert [f["feature_type"] for f in doc["explanations"]["kernel_shap"][0]] == ["numerical"] * 4 + ["categorical"]
    assert [f["feature_header"] for f in doc["explanations"]["kernel_shap"][1]] == HEADERS
    with pytest.raises(ConfigError, match=r"^InferenceConfig.FeatureHeaders: 3 names for the 5 features"):
        OnlineExplainer.from_config(CLF, _cfg(InferenceConfig__FeatureHeaders=["a", "b", "c"]))


# ---- the config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            {**_cfg(), "EnableExplanation": "`true`"},
            r"^EnableExplanation: unknown key \(did you mean 'EnableExplanations'",
        ),
        (
            _cfg(InferenceConfig__MaxRecordCont=3),
            r"^InferenceConfig.MaxRecordCont: unknown key \(did you mean 'MaxRecordCount'",
        ),
        (
            _cfg(ShapConfig={"ShapBaselineConfig": {"ShapBaselne": "1,2"}}),
            r"^ShapConfig.ShapBaselineConfig.ShapBaselne: unknown key \(did you mean 'ShapBaseline'",
        ),
        (_cfg(ShapConfig__NumberOfSamples=0), r"^ShapConfig.NumberOfSamples: expected an integer in"),
        (_cfg(ShapConfig__UseLogit="yes"), r"^ShapConfig.UseLogit: expected true or false, got 'yes'"),
        (_cfg(ShapConfig__Seed=-1), r"^ShapConfig.Seed: expected an integer in \[0,"),
        (_cfg(ShapConfig__Seed=1.5), r"^ShapConfig.Seed: expected an integer, got 1.5"),
        (
            _cfg(ShapConfig__TextConfig={"Granularity": "word", "Language": "en"}),
            r"^ShapConfig.TextConfig.Granularity: must be one of",
        ),
        (
            _cfg(InferenceConfig__FeatureTypes=["numerical", "text", "numerical", "numerical", "numerical"]),
            r"^InferenceConfig.FeatureTypes\[1\]: a \"text\" feature needs ShapConfig.TextConfig",
        ),
        (
            _cfg(InferenceConfig__FeatureTypes=["numeric"]),
            r"^InferenceConfig.FeatureTypes\[0\]: must be one of .* \(did you mean 'numerical'",
        ),
        (_cfg(EnableExplanations="[0] >"), r"^EnableExplanations: '\[0\] >' is not a valid JMESPath expression"),
        (
            _cfg(EnableExplanations="x" * 65),
            r"^EnableExplanations: expected a JMESPath expression of 1 to 64 characters",
        ),
        (_cfg(InferenceConfig__MaxRecordCount=0), r"^InferenceConfig.MaxRecordCount: expected an integer >= 1"),
        (_cfg(InferenceConfig__MaxPayloadInMB=True), r"^InferenceConfig.MaxPayloadInMB: expected an integer in \[1"),
        (_cfg(InferenceConfig__ProbabilityIndex=-1), r"^InferenceConfig.ProbabilityIndex: expected an integer >= 0"),
        (
            _cfg(InferenceConfig__ProbabilityIndex=1, InferenceConfig__ProbabilityAttribute="scores[1]"),
            r"^InferenceConfig: give ProbabilityIndex or ProbabilityAttribute, not both",
        ),
        (
            _cfg(InferenceConfig__FeatureHeaders=["a", "a"]),
            r"^InferenceConfig.FeatureHeaders: duplicate entries \['a'\]",
        ),
        (_cfg(InferenceConfig__ContentTemplate='{"f": 1}'), r"^InferenceConfig.ContentTemplate: .* has no \$features"),
        (_cfg(InferenceConfig__ContentTemplate="{f:$features}"), r"^InferenceConfig.ContentTemplate: .* is not JSON"),
        ({"InferenceConfig": {}}, r"^ShapConfig: required"),
        (_cfg(ShapConfig={"NumberOfSamples": 10}), r"^ShapConfig.ShapBaselineConfig: required"),
        (
            _cfg(ShapConfig={"ShapBaselineConfig": {"ShapBaseline": "1,2", "ShapBaselineUri": "b.csv"}}),
            r"^ShapConfig.ShapBaselineConfig: give ShapBaseline or ShapBaselineUri, not both",
        ),
        (
            _cfg(ShapConfig={"ShapBaselineConfig": {"ShapBaselineUri": "s3://bucket/b.csv"}}),
            r"^ShapConfig.ShapBaselineConfig.ShapBaselineUri: 's3://bucket/b.csv' is a remote URI",
        ),
        (
            _cfg(ShapConfig={"ShapBaselineConfig": {"ShapBaseline": "1,2", "MimeType": "text/cvs"}}),
            r"^ShapConfig.ShapBaselineConfig.MimeType: must be one of .* \(did you mean 'text/csv'",
        ),
        (
            {"ClarifyExplainerConfig": _cfg(ShapConfig__Seed="7")},
            r"^ClarifyExplainerConfig.ShapConfig.Seed: expected an integer, got '7'",
        ),
    ],
)
def test_config_errors_name_the_key_path(cfg, message):
    with pytest.raises(ConfigError, match=message):
        read_explainer_config(cfg)


def test_config_file_wrapped_baseline_uri_and_template(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "baseline.csv").write_text(_csv(BASE) + "\n")
    doc = {
        "ClarifyExplainerConfig": {
            "InferenceConfig": {"ContentTemplate": '{"data":{"values":$features}}', "LabelHeaders": ["no", "yes"]},
            "ShapConfig": {"ShapBaselineConfig": {"ShapBaselineUri": "base/baseline.csv"}, "Seed": 5},
        }
    }
    path = tmp_path / "explainer.json"
    path.write_text(json.dumps(doc))
    cfg = read_explainer_config(path)
    assert isinstance(cfg, ExplainerConfig) and cfg.prefix == "ClarifyExplainerConfig."
    assert cfg.features_attribute == '"data"."values"'  # where the template puts $features
    assert cfg.seed == 5 and cfg.number_of_samples is None and cfg.use_logit is False
    np.testing.assert_array_equal(np.array(parse_baseline(cfg.baseline), dtype=float), BASE)
    ex = OnlineExplainer.from_config(CLF, path)
    assert ex.label_headers == ["no", "yes"] and ex.num_samples == 2**5 - 2  # every coalition of 5 features
    (tmp_path / "dup.json").write_text('{"ShapConfig": {}, "ShapConfig": {}}')
    with pytest.raises(ConfigError, match=r"key 'ShapConfig' appears twice"):
        read_explainer_config(tmp_path / "dup.json")
    with pytest.raises(ConfigError, match=r"^explainer config: file not found"):
        read_explainer_config(tmp_path / "missing.json")
    missing = _cfg(ShapConfig={"ShapBaselineConfig": {"ShapBaselineUri": "nope.csv"}})
    with pytest.raises(ConfigError, match=r"^ShapConfig.ShapBaselineConfig.ShapBaselineUri: cannot read .*nope.csv"):
        read_explainer_config(missing, base_dir=tmp_path)


def test_label_index_and_attribute_warn_they_are_ignored():
    with pytest.warns(ConfigWarning, match=r"InferenceConfig.LabelIndex: ignored"):
        read_explainer_config(_cfg(InferenceConfig__LabelIndex=0))
    with pytest.warns(ConfigWarning, match=r"InferenceConfig.LabelAttribute: ignored"):
        read_explainer_config(_cfg(InferenceConfig__LabelAttribute="labels"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_explainer_config(_cfg())  # nothing to warn about


def test_baseline_text_forms():
    assert parse_baseline("1,2,3\n\n4,,x\n")[1][:1] == [4.0]
    rows = parse_baseline("1,2,3\n4,,x\n")
    assert math.isnan(rows[1][1]) and rows[1][2] == "x"
    jl = parse_baseline('{"features":[1,2]}\n[3,null]\n', "application/jsonlines")
    assert jl[0] == [1.0, 2.0] and math.isnan(jl[1][1])
    assert parse_baseline('{"f":{"v":[1,2]}}', "application/jsonlines", features_attribute="f.v") == [[1.0, 2.0]]
    with pytest.raises(ConfigError, match=r"^ShapBaseline: record 1 has 2 features, record 0 has 3"):
        parse_baseline("1,2,3\n4,5\n")
    with pytest.raises(ConfigError, match=r"^ShapBaseline: no baseline records"):
        parse_baseline("\n\n")
    with pytest.raises(ConfigError, match=r"^ShapBaseline: record 0 is not JSON"):
        parse_baseline("{", "application/jsonlines")
    with pytest.raises(ConfigError, match=r"^ShapBaseline: record 0, feature 1: \[2\] is not a number or text"):
        parse_baseline("[1,[2]]", "application/jsonlines")
    # a baseline of one feature cannot be explained (Kernel SHAP needs two players)
    with pytest.raises(ConfigError, match=r"^ShapConfig.ShapBaselineConfig.ShapBaseline: Kernel SHAP needs at least 2"):
        OnlineExplainer.from_config(
            lambda A: A[:, 0], _cfg(ShapConfig={"ShapBaselineConfig": {"ShapBaseline": "1\n2"}})
        )


def test_categorical_text_features_through_a_pipeline():
    """A baseline with text cells (a categorical feature) and a Pipeline with a OneHotEncoder: the
    request's records (as the server parses them) are explained as KernelShap explains DataFrames."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from clarion.models.wire import parse_request

    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {"age": rng.normal(40, 10, 300), "city": rng.choice(["a", "b", "c"], 300), "inc": rng.normal(5, 1, 300)}
    )
    y = ((df.age > 40) ^ (df.city == "b")).astype(int)
    enc = ColumnTransformer([("oh", OneHotEncoder(handle_unknown="ignore"), ["city"])], remainder="passthrough")
    pipe = make_pipeline(enc, LogisticRegression()).fit(df, y)
    cfg = {
        "InferenceConfig": {"FeatureTypes": ["numerical", "categorical", "numerical"], "ProbabilityIndex": 1},
        "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": "40,a,5\n30,c,6"}, "Seed": 1},
    }
    ex = OnlineExplainer.from_config(pipe, cfg)
    assert ex.feature_headers == ["age", "city", "inc"]  # the pipeline's own feature names
    X_req = parse_request(
        b"45,b,5.5\n33,a,4\n", "text/csv", feature_names=ex.model.feature_names, accepts=ex.model.accepts
    )
    res = ex.explain(X_req)
    base = pd.DataFrame({"age": [40.0, 30.0], "city": ["a", "c"], "inc": [5.0, 6.0]})
    rows = pd.DataFrame({"age": [45.0, 33.0], "city": ["b", "a"], "inc": [5.5, 4.0]})
    ref = KernelShap(pipe, base, seed=1, estimator="shap").explain(rows)
    np.testing.assert_array_equal(res.values[:, :, 0], ref.values[:, :, 1])
    doc = res.to_dict()
    assert [f["feature_type"] for f in doc["explanations"]["kernel_shap"][0]] == cfg["InferenceConfig"]["FeatureTypes"]
