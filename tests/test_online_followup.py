"""Online explainability, follow-up of issue 16: ``KernelShap.explain(predictions=)`` (the
records' f(x) from the caller instead of a second model call), the OnlineExplainer's per-request
work, and the estimator choice in the explainer config (``ShapConfig.Estimator``).

Attributions are compared with :class:`clarion.explain.KernelShap` run with the same baseline,
samples and seed; model calls are counted with a counting callable.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from clarion.explain import KernelShap, OnlineExplainer

RNG = np.random.default_rng(1619)
X = RNG.normal(size=(200, 6))
Y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 3] > 0).astype(int)
CLF = LogisticRegression().fit(X, Y)
BASE = X[:5]
W = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])


class Counting:
    """A model that counts its calls (and the rows it was given)."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0
        self.rows = 0

    def __call__(self, A):
        self.calls += 1
        self.rows += A.shape[0]
        return self.fn(A)


def _proba(A):
    return CLF.predict_proba(A)


def _score(A):
    return A @ W + 0.25 * A[:, 0] * A[:, 1]


# ------------------------------------------------------------------------------------------------
# item 1: KernelShap.explain(predictions=)


@pytest.mark.parametrize(
    ("fn", "link", "estimator", "std"),
    [
        (_proba, "identity", "shap", False),
        (_proba, "logit", "shap", True),
        (_proba, "logit", "cubic", False),
        (_score, "identity", "cubic", True),
        (_score, "identity", "shap", False),
    ],
)
def test_predictions_give_the_same_attributions_with_one_call_fewer(fn, link, estimator, std):
    rows = X[10:17]
    model = Counting(fn)
    ks = KernelShap(model, BASE, num_samples=40, seed=3, link=link, estimator=estimator)
    model.calls = model.rows = 0
    ref = ks.explain(rows, return_std=std)
    calls, n_rows = model.calls, model.rows
    model.calls = model.rows = 0
    got = ks.explain(rows, return_std=std, predictions=fn(rows))
    assert model.calls == calls - 1  # f(x) of the rows was the only call on X itself
    assert model.rows == n_rows - len(rows)
    np.testing.assert_array_equal(got.values, ref.values)
    np.testing.assert_array_equal(got.expected_value, ref.expected_value)
    if std:
        np.testing.assert_array_equal(got.std, ref.std)


def test_predictions_are_used_as_f_of_x():
    # efficiency holds against the given predictions: sum_j phi_j = f(x) - E f(b) (identity link)
    rows = X[:3]
    ks = KernelShap(_score, BASE, num_samples=64, seed=0, estimator="shap")
    given = _score(rows) + np.array([1.0, -2.0, 0.5])
    e = ks.explain(rows, predictions=given)
    np.testing.assert_allclose(e.values.sum(axis=1), given - ks.expected_value, rtol=0, atol=1e-9)


@pytest.mark.parametrize("shape", ["1d", "2d"])
def test_predictions_of_a_one_output_model_take_either_shape(shape):
    rows = X[:4]
    ks = KernelShap(_score, BASE, num_samples=30, seed=2, estimator="shap")
    p = _score(rows)
    got = ks.explain(rows, predictions=p if shape == "1d" else p[:, None])
    np.testing.assert_array_equal(got.values, ks.explain(rows).values)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (np.zeros((3, 3)), r"shape \(3, 2\), got shape \(3, 3\)"),
        (np.zeros(3), r"shape \(3, 2\), got shape \(3,\)"),
        (np.zeros((2, 2)), r"got shape \(2, 2\)"),
        (np.array([[0.1, 0.9], [np.nan, 0.5], [0.2, 0.8]]), r"got nan at row 1, output 0"),
        (np.array([[0.1, 0.9], [0.5, 0.5], [0.2, np.inf]]), r"got inf at row 2, output 1"),
        ([["a", "b"]] * 3, "non-numbers"),
    ],
)
def test_bad_predictions_are_refused_naming_the_argument(bad, why):
    ks = KernelShap(_proba, BASE, num_samples=30, seed=2)
    with pytest.raises(ValueError, match=r"^predictions must be the model's outputs on X.*" + why):
        ks.explain(X[:3], predictions=bad)


def test_online_request_predicts_its_records_once():
    # one request: the records' predictions (one call) and the synthetic batches; no second call
    # on the records for f(x), so the same number of calls as a bare KernelShap.explain
    rows = X[20:23]
    served = Counting(_proba)
    ox = OnlineExplainer(served, BASE, num_samples=40, seed=4)
    bare = Counting(_proba)
    ks = KernelShap(bare, BASE, num_samples=40, seed=4, estimator="shap")
    ks.explain(rows[:1])  # both past their first (lazily built) call
    served.calls = served.rows = bare.calls = bare.rows = 0
    got = ox.explain(rows)
    ref = ks.explain(rows)
    assert served.calls == bare.calls
    assert served.rows == bare.rows
    np.testing.assert_array_equal(got.values, ref.values)
    np.testing.assert_array_equal(got.predictions, _proba(rows))


# ------------------------------------------------------------------------------------------------
# item 2: per-request work (scikit-learn's finiteness check of the synthetic batches skipped when
# every value in them is finite; the operator transposed once)


def test_skipping_sklearns_check_changes_no_number_and_does_not_leak():
    import sklearn

    rows = X[30:34]
    ox = OnlineExplainer(CLF, BASE, num_samples=40, seed=6)
    ref = KernelShap(CLF, BASE, num_samples=40, seed=6, estimator="shap").explain(rows)
    for _ in range(2):  # the second call reuses the transposed operator
        got = ox.explain(rows)
        np.testing.assert_array_equal(got.values, ref.values)
    assert sklearn.get_config()["assume_finite"] is False


def test_missing_values_still_reach_a_model_that_takes_them():
    from sklearn.ensemble import HistGradientBoostingClassifier

    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, Y)
    rows = X[40:43].copy()
    rows[1, 2] = np.nan  # the synthetic rows of this record hold NaN: no assume_finite
    ox = OnlineExplainer(hgb, BASE, num_samples=40, seed=6)
    ref = KernelShap(hgb, BASE, num_samples=40, seed=6, estimator="shap").explain(rows)
    np.testing.assert_array_equal(ox.explain(rows).values, ref.values)


def test_a_model_that_refuses_missing_values_still_refuses_them():
    rows = X[40:43].copy()
    rows[1, 2] = np.nan
    ox = OnlineExplainer(CLF, BASE, num_samples=40, seed=6)
    with pytest.raises(ValueError, match="NaN"):
        ox.explain(rows)


# ------------------------------------------------------------------------------------------------
# item 3: ShapConfig.Estimator (a clarion addition)


def _csv(rows) -> str:
    return "\n".join(",".join(repr(float(v)) for v in r) for r in rows)


def _config(**shap):
    return {
        "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": _csv(BASE)}, "NumberOfSamples": 40, "Seed": 8, **shap}
    }


@pytest.mark.parametrize("estimator", ["cubic", "shap"])
def test_served_attributions_are_kernel_shaps_with_the_configured_estimator(estimator):
    rows = X[50:54]
    ox = OnlineExplainer.from_config(CLF, _config(Estimator=estimator))
    assert ox.config.estimator == estimator
    ref = KernelShap(CLF, BASE, num_samples=40, seed=8, estimator=estimator).explain(rows)
    got = ox.explain(rows)
    np.testing.assert_array_equal(got.values, ref.values)
    body = got.to_dict()["explanations"]["kernel_shap"]
    served = np.array([[f["attributions"][0]["attribution"] for f in rec] for rec in body])
    np.testing.assert_array_equal(served, ref.values)


def test_estimator_defaults_to_clarifys():
    rows = X[50:52]
    ox = OnlineExplainer.from_config(CLF, _config())
    assert ox.config.estimator == "shap"
    shap_ref = KernelShap(CLF, BASE, num_samples=40, seed=8, estimator="shap").explain(rows).values
    cubic_ref = KernelShap(CLF, BASE, num_samples=40, seed=8, estimator="cubic").explain(rows).values
    got = ox.explain(rows).values
    np.testing.assert_array_equal(got, shap_ref)
    assert not np.array_equal(got, cubic_ref)  # the two estimators differ on this sampled plan


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("cubicc", r"ShapConfig\.Estimator: .*'cubicc'.*did you mean 'cubic'"),
        ("exact", r"ShapConfig\.Estimator: .*'exact'"),
        (3, r"ShapConfig\.Estimator: .*3"),
    ],
)
def test_a_bad_estimator_is_refused_naming_its_key(value, why):
    from clarion.config import ConfigError

    with pytest.raises(ConfigError, match=why):
        OnlineExplainer.from_config(CLF, _config(Estimator=value))
    with pytest.raises(ConfigError, match="ClarifyExplainerConfig." + why):
        OnlineExplainer.from_config(CLF, {"ClarifyExplainerConfig": _config(Estimator=value)})


# ------------------------------------------------------------------------------------------------
# item 4: ShapConfig.TextConfig through TextShap


def _text_models():
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    texts = ["good movie great", "bad awful film", "great fun", "boring bad plot", "fun and good", "awful"] * 4
    y = [1, 0, 1, 0, 1, 0] * 4
    text_only = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, y)
    import pandas as pd

    frame = pd.DataFrame({"review": texts, "stars": np.tile([4.0, 1.0, 5.0, 2.0, 4.0, 1.0], 4)})
    ct = ColumnTransformer([("t", TfidfVectorizer(), "review"), ("n", "passthrough", ["stars"])])
    mixed = make_pipeline(ct, LogisticRegression()).fit(frame, y)
    return text_only, mixed


TEXT_ONLY, MIXED = _text_models()
TEXT_CFG = {"Granularity": "token", "Language": "en"}


def _served(body):
    """(attribution, description) per unit of each feature of one served record."""
    return [[(a["attribution"], a.get("description")) for a in feature["attributions"]] for feature in body]


def _reference(ref_record, outputs):
    """The same from TextShap's record, keeping ``outputs``."""
    return [
        [([a["attribution"][k] for k in outputs], a.get("description")) for a in feature["attributions"]]
        for feature in ref_record["explanations"]
    ]


def test_text_record_is_explained_per_unit_as_textshap_does():
    from clarion.explain import TextShap

    cfg = {
        "EnableExplanations": "[1] > `0.5`",
        "InferenceConfig": {"FeatureTypes": ["text"], "ProbabilityIndex": 1},
        "ShapConfig": {
            "ShapBaselineConfig": {"ShapBaseline": "<UNK>"},
            "TextConfig": TEXT_CFG,
            "NumberOfSamples": 30,
            "Seed": 3,
        },
    }
    ox = OnlineExplainer.from_config(TEXT_ONLY, cfg)
    texts = ["good film, great fun. A fun plot", "bad awful plot", "great movie"]
    got = ox.explain([[t] for t in texts])
    p = TEXT_ONLY.predict_proba(texts)
    np.testing.assert_array_equal(got.predictions, p)
    want = p[:, 1] > 0.5
    np.testing.assert_array_equal(got.explained, want)
    kept = [t for t, w in zip(texts, want) if w]
    ref = TextShap(TEXT_ONLY, "<UNK>", num_samples=30, seed=3, granularity="token", language="en").explain(kept)
    body = got.to_dict()["explanations"]["kernel_shap"]
    assert [b is None for b in body] == [not w for w in want]
    served = [r for r in body if r is not None]
    for rec, ref_rec in zip(served, ref.to_records()):
        assert [f["feature_type"] for f in rec] == ["text"]
        assert _served(rec) == _reference(ref_rec, [1])
    # units: the record's tokens with their offsets in the record's text
    first = served[0][0]["attributions"]
    assert [a["description"]["partial_text"] for a in first][:3] == ["good", "film", ","]
    for a in first:
        d = a["description"]
        assert kept[0][d["start_idx"] : d["start_idx"] + len(d["partial_text"])] == d["partial_text"]
    # values: the feature's sum over its units; efficiency against the record's own base value
    np.testing.assert_allclose(
        got.values[:, 0, 0], [sum(a["attribution"][0] for a in r[0]["attributions"]) for r in served]
    )
    np.testing.assert_allclose(got.values.sum(axis=1)[:, 0], p[want, 1] - got.expected_value[:, 0], atol=1e-9)


def test_text_and_tabular_features_served_over_http():
    import json

    import pandas as pd

    from clarion.explain import TextShap
    from clarion.serve import ModelServer

    cfg = {
        "InferenceConfig": {"FeatureHeaders": ["review", "stars"], "FeatureTypes": ["text", "numerical"]},
        "ShapConfig": {
            "ShapBaselineConfig": {"ShapBaseline": '"",3\n<UNK>,2'},
            "TextConfig": {"Granularity": "sentence", "Language": "en"},
            "NumberOfSamples": 40,
            "Seed": 5,
        },
    }
    records = pd.DataFrame({"review": ["Great fun. Bad plot though. Good film!", "Awful."], "stars": [4.0, 1.0]})
    base = pd.DataFrame({"review": ["", "<UNK>"], "stars": [3.0, 2.0]})
    ref = TextShap(MIXED, base, text_features=["review"], granularity="sentence", num_samples=40, seed=5)
    want = ref.explain(records).to_records()
    ox = OnlineExplainer.from_config(MIXED, cfg)
    got = ox.explain(records.values.tolist()).to_dict()["explanations"]["kernel_shap"]
    for rec, ref_rec in zip(got, want):
        assert [f["feature_header"] for f in rec] == ["review", "stars"]
        assert [f["feature_type"] for f in rec] == ["text", "numerical"]
        assert _served(rec) == _reference(ref_rec, [0, 1])
    assert [a["description"]["partial_text"] for a in got[0][0]["attributions"]] == [
        "Great fun.",
        "Bad plot though.",
        "Good film!",
    ]
    assert "description" not in got[0][1]["attributions"][0]
    body = b'"Great fun. Bad plot though. Good film!",4\nAwful.,1\n'
    with ModelServer(MIXED, explainer=cfg) as url:
        import http.client

        host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
            r = conn.getresponse()
            status, out = r.status, json.loads(r.read())
        finally:
            conn.close()
    assert status == 200
    assert out["explanations"]["kernel_shap"] == got


@pytest.mark.parametrize(
    ("text_config", "why"),
    [
        ({"Granularity": "token"}, r"^ShapConfig\.TextConfig\.Language: "),
        ({"Language": "en"}, r"^ShapConfig\.TextConfig\.Granularity: "),
        ({"Granularity": "tokens", "Language": "en"}, r"^ShapConfig\.TextConfig\.Granularity: .*did you mean 'token'"),
        ({"Granularity": "token", "Language": "klingon"}, r"^ShapConfig\.TextConfig\.Language: "),
        ({"Granularity": "token", "Language": "en", "Lang": 1}, r"^ShapConfig\.TextConfig\.Lang: unknown key"),
    ],
)
def test_bad_text_config_is_refused_naming_its_key(text_config, why):
    import warnings

    from clarion.config import ConfigError

    cfg = {"ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": "<UNK>"}, "TextConfig": text_config}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises((ConfigError, Warning), match=why):
            OnlineExplainer.from_config(TEXT_ONLY, cfg)


def test_text_record_of_the_wrong_width_is_a_request_error():
    from clarion.models.wire import RequestError

    cfg = {
        "InferenceConfig": {"FeatureHeaders": ["review", "stars"], "FeatureTypes": ["text", "numerical"]},
        "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": "<UNK>,3"}, "TextConfig": TEXT_CFG, "Seed": 1},
    }
    ox = OnlineExplainer.from_config(MIXED, cfg)
    with pytest.raises(RequestError, match="record 1 has 1 feature values but the explainer's baseline has 2"):
        ox.explain([["good", 3.0], ["bad"]])
    with pytest.raises(RequestError, match="record 0, feature 1: 'many' is not a number"):
        ox.explain([["good", "many"]])


def test_text_with_the_cubic_estimator_is_refused_naming_the_key():
    from clarion.config import ConfigError

    cfg = {
        "ShapConfig": {
            "ShapBaselineConfig": {"ShapBaseline": "<UNK>"},
            "TextConfig": TEXT_CFG,
            "Estimator": "cubic",
        }
    }
    with pytest.raises(ConfigError, match=r"^ShapConfig\.Estimator: 'cubic' does not apply to text features"):
        OnlineExplainer.from_config(TEXT_ONLY, cfg)


def test_an_empty_text_baseline_drops_the_absent_units():
    from clarion.explain import TextShap

    cfg = {
        "ShapConfig": {
            "ShapBaselineConfig": {"ShapBaseline": '[""]', "MimeType": "application/jsonlines"},
            "TextConfig": TEXT_CFG,
            "NumberOfSamples": 30,
            "Seed": 2,
        }
    }
    texts = ["fun and good movie", "awful film"]
    got = OnlineExplainer.from_config(TEXT_ONLY, cfg).explain([[t] for t in texts])
    ref = TextShap(TEXT_ONLY, None, num_samples=30, seed=2).explain(texts)
    body = got.to_dict()["explanations"]["kernel_shap"]
    for rec, ref_rec in zip(body, ref.to_records()):
        assert _served(rec) == _reference(ref_rec, [0, 1])


def test_concurrent_text_requests_give_each_its_own_attributions():
    from concurrent.futures import ThreadPoolExecutor

    cfg = {
        "ShapConfig": {
            "ShapBaselineConfig": {"ShapBaseline": "<UNK>"},
            "TextConfig": TEXT_CFG,
            "NumberOfSamples": 30,
            "Seed": 4,
        }
    }
    ox = OnlineExplainer.from_config(TEXT_ONLY, cfg)
    texts = ["good", "bad film", "great fun plot", "boring bad awful movie", "fun", "good and great"] * 3
    alone = [ox.explain([[t]]).to_dict() for t in texts]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda t: ox.explain([[t]]).to_dict(), texts))
    assert together == alone


def test_predictions_with_a_partitioned_x_are_refused():
    da = pytest.importorskip("dask.array")
    ks = KernelShap(_score, BASE, num_samples=30, seed=2)
    rows = X[:4]
    with pytest.raises(ValueError, match=r"^predictions: not supported with a partitioned X"):
        ks.explain(da.from_array(rows, chunks=2), predictions=_score(rows))
