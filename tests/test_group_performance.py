"""clarion.bias.group_performance / threshold_curves and their analysis.json form.

Checked against a hand computation, scikit-learn (confusion_matrix, roc_auc_score,
calibration_curve) per group on hypothesis-generated data, smclarify's model_performance_report,
and clarion.bias.report at every threshold of the curves; the curves come from one threshold-count
call per batch.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import bias

sk_metrics = pytest.importorskip("sklearn.metrics")


def assert_close(x, z, rel=1e-12):
    """Same JSON structure, numbers equal to ``rel``."""
    if isinstance(x, dict):
        assert isinstance(z, dict) and x.keys() == z.keys()
        for k in x:
            assert_close(x[k], z[k], rel)
    elif isinstance(x, list):
        assert isinstance(z, list) and len(x) == len(z)
        for u, v in zip(x, z):
            assert_close(u, v, rel)
    elif isinstance(x, float):
        assert z == pytest.approx(x, rel=rel, abs=1e-12)
    else:
        assert x == z


# ---- a hand-computed example -------------------------------------------------------------------


def hand_data():
    # facet f: rows 0-3 are "x" (facet d for x), rows 4-9 are "y"
    return pd.DataFrame(
        {
            "y": [1, 1, 0, 0, 1, 1, 1, 0, 0, 0],
            "p": [1, 0, 0, 0, 1, 1, 0, 1, 0, 0],
            "s": [0.9, 0.4, 0.3, 0.05, 0.8, 0.7, 0.2, 0.6, 0.1, 0.35],
            "f": ["x", "x", "x", "x", "y", "y", "y", "y", "y", "y"],
        }
    )


def test_hand_computed_example():
    res = bias.group_performance(hand_data(), label="y", facet="f", label_values=[1], predicted_label="p")
    x = res.facets["f"][0]
    assert x["value_or_threshold"] == "x"
    d, a = x["group_statistics"]["facet_d"], x["group_statistics"]["facet_a"]
    # x rows: y = 1 1 0 0, p = 1 0 0 0 -> TP 1, FN 1, TN 2, FP 0
    assert d["confusion_matrix"] == {"TP": 1.0, "FP": 0.0, "FN": 1.0, "TN": 2.0}
    assert d["rows"] == 4 and d["weight"] == 4.0
    assert d["observed_positive_rate"] == 0.5 and d["predicted_positive_rate"] == 0.25
    assert d["accuracy"] == 0.75 and d["precision"] == 1.0 and d["recall"] == 0.5
    assert d["false_positive_rate"] == 0.0 and d["f1"] == pytest.approx(2 / 3)
    assert d["undefined"] == {}
    # y rows: y = 1 1 1 0 0 0, p = 1 1 0 1 0 0 -> TP 2, FN 1, FP 1, TN 2
    assert a["confusion_matrix"] == {"TP": 2.0, "FP": 1.0, "FN": 1.0, "TN": 2.0}
    assert a["accuracy"] == pytest.approx(4 / 6) and a["precision"] == pytest.approx(2 / 3)
    assert a["false_positive_rate"] == pytest.approx(1 / 3)
    mp = res.model_performance
    assert mp["rows"] == 10 and mp["accuracy"] == pytest.approx(0.7) and mp["label_positive_rate"] == 0.5
    assert res.dataset == {"rows": 10, "weight": 10.0, "observed_positive_rate": 0.5}
    assert "roc_auc" not in d and "threshold_curve" not in x  # no score given


def test_hand_computed_scores_auc_calibration_and_curve():
    df = hand_data()
    res = bias.group_performance(df, label="y", facet="f", label_values=[1], probability="s")
    d = res.facets["f"][0]["group_statistics"]["facet_d"]
    # x: positives 0.9, 0.4; negatives 0.3, 0.05: every positive outranks every negative
    assert d["roc_auc"] == 1.0
    # y: positives 0.8 0.7 0.2, negatives 0.6 0.1 0.35: pairs won 3 + 3 + 1 = 7 of 9
    assert res.facets["f"][0]["group_statistics"]["facet_a"]["roc_auc"] == pytest.approx(7 / 9)
    # decision at 0.5 from the scores: x -> TP 1 (0.9), FN 1, TN 2
    assert d["confusion_matrix"] == {"TP": 1.0, "FP": 0.0, "FN": 1.0, "TN": 2.0}
    cal = d["calibration"]
    assert cal["bin_edges"] == pytest.approx(np.arange(11) / 10)
    # 0.05 | 0.3 in (0.2, 0.3] | 0.4 in (0.3, 0.4] | 0.9 in (0.8, 0.9]
    assert cal["rows"] == [1, 0, 1, 1, 0, 0, 0, 0, 1, 0]
    assert cal["mean_score"][0] == pytest.approx(0.05) and cal["mean_score"][1] is None
    assert cal["observed_positive_rate"][2] == 0.0 and cal["observed_positive_rate"][3] == 1.0
    curve = res.facets["f"][0]["threshold_curve"]
    assert curve["configured_threshold"] == 0.5 and len(curve["thresholds"]) == 101
    j = curve["thresholds"].index(0.5)
    # at 0.5: d predicted positive 1/4, a predicted positive 3/6 -> DPPL = 0.5 - 0.25, DI = 0.5
    assert curve["DPPL"][j] == pytest.approx(0.25) and curve["DI"][j] == pytest.approx(0.5)
    # recall a = 2/3, recall d = 1/2 -> RD = 1/6; accuracy = (1 + 2 + 2 + 2) / 10
    assert curve["RD"][j] == pytest.approx(1 / 6) and curve["accuracy"][j] == pytest.approx(0.7)
    # at t = 1 nobody is predicted positive: DI is 0/0, null with the reason
    assert curve["DI"][-1] is None and "DI" in curve["undefined"]


def test_undefined_rates_are_null_with_a_reason():
    df = pd.DataFrame({"y": [1, 1, 0, 1], "p": [0, 0, 0, 1], "f": ["x", "x", "z", "z"]})
    res = bias.group_performance(df, label="y", facet="f", label_values=[1], predicted_label="p")
    d = res.facets["f"][0]["group_statistics"]["facet_d"]  # x: y 1 1, p 0 0
    assert d["precision"] is None and d["undefined"]["precision"] == "no predicted positives"
    assert d["false_positive_rate"] is None and d["undefined"]["false_positive_rate"] == "no observed negatives"
    assert d["recall"] == 0.0


def test_errors_name_the_argument():
    df = hand_data()
    with pytest.raises(ValueError, match="predicted_label .* probability"):
        bias.group_performance(df, label="y", facet="f", label_values=[1])
    with pytest.raises(ValueError, match="probability: scores need a classification label"):
        bias.group_performance(df, label="y", facet="f", label_threshold=0, probability="s")
    with pytest.raises(ValueError, match=r"thresholds must be numbers in \[0, 1\]"):
        bias.group_performance(df, label="y", facet="f", label_values=[1], probability="s", thresholds=[0.2, 1.5])
    with pytest.raises(ValueError, match="column 'nope'"):
        bias.group_performance(df, label="y", facet="nope", label_values=[1], probability="s")


# ---- peers on generated data ---------------------------------------------------------------------


@st.composite
def frames(draw):
    n = draw(st.integers(2, 60))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    y[0] = 1  # the positive label occurs
    f = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    s = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))  # scores on the 0.001 grid: exact AUC
    w = draw(st.one_of(st.none(), st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    t = draw(st.sampled_from([0.3, 0.5, 0.72]))
    df = pd.DataFrame({"y": y, "f": f, "s": np.asarray(s) / 1000.0})
    if w is not None:
        df["w"] = np.asarray(w, dtype=np.float64)
    return df, t


def check_group(g, y, s, w, t):
    """One group's statistics against scikit-learn and plain numpy."""
    pred = (s > t).astype(int)
    ww = np.ones(len(y)) if w is None else w
    assert g["rows"] == len(y)
    assert g["weight"] == pytest.approx(ww.sum())
    if ww.sum() > 0:  # (scikit-learn refuses all-zero weights)
        cm = sk_metrics.confusion_matrix(y, pred, labels=[0, 1], sample_weight=ww)
    else:
        cm = np.zeros((2, 2))
    tn, fp, fn, tp = cm.ravel()
    assert g["confusion_matrix"] == pytest.approx({"TP": tp, "FP": fp, "FN": fn, "TN": tn})
    n = ww.sum()
    if n > 0:
        assert g["accuracy"] == pytest.approx((tp + tn) / n)
        assert g["predicted_positive_rate"] == pytest.approx((tp + fp) / n)
        assert g["observed_positive_rate"] == pytest.approx((tp + fn) / n)
    else:
        assert g["accuracy"] is None and g["undefined"]["accuracy"] == "empty group"
    for key, num, den in (
        ("precision", tp, tp + fp),
        ("recall", tp, tp + fn),
        ("false_positive_rate", fp, fp + tn),
    ):
        if den > 0:
            assert g[key] == pytest.approx(num / den)
        else:
            assert g[key] is None and key in g["undefined"]
    pos, neg = ww[y == 1].sum(), ww[y == 0].sum()
    if pos > 0 and neg > 0:
        want = sk_metrics.roc_auc_score(y, s, sample_weight=ww)
        assert g["roc_auc"] == pytest.approx(want, rel=1e-12, abs=1e-12)
    else:
        assert g["roc_auc"] is None and "roc_auc" in g["undefined"]
    cal = g["calibration"]
    b = np.searchsorted(np.arange(1, 10) / 10, s, side="left")
    for k in range(10):
        m = (b == k) & (ww > 0)
        assert cal["rows"][k] == int((b == k).sum())
        if ww[m].sum() > 0:
            assert cal["mean_score"][k] == pytest.approx(np.average(s[m], weights=ww[m]))
            assert cal["observed_positive_rate"][k] == pytest.approx(np.average(y[m], weights=ww[m]))
        else:
            assert cal["mean_score"][k] is None and cal["observed_positive_rate"][k] is None
    if w is None and len(y):  # sklearn's calibration_curve: the non-empty bins
        from sklearn.calibration import calibration_curve

        prob_true, prob_pred = calibration_curve(y, s, n_bins=10)
        got_t = [v for v in cal["observed_positive_rate"] if v is not None]
        got_p = [v for v in cal["mean_score"] if v is not None]
        np.testing.assert_allclose(got_t, prob_true, rtol=1e-12)
        np.testing.assert_allclose(got_p, prob_pred, rtol=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_every_group_matches_sklearn(case):
    df, t = case
    w = "w" if "w" in df else None
    res = bias.group_performance(
        df, label="y", facet="f", label_values=[1], probability="s", probability_threshold=t, weights=w
    )
    y, s = df["y"].to_numpy(), df["s"].to_numpy()
    ww = df["w"].to_numpy() if w else None
    values = sorted(df["f"].unique())
    assert [e["value_or_threshold"] for e in res.facets["f"]] == values
    for e in res.facets["f"]:
        m = (df["f"] == e["value_or_threshold"]).to_numpy()
        for key, mask in (("facet_d", m), ("facet_a", ~m)):
            check_group(e["group_statistics"][key], y[mask], s[mask], None if ww is None else ww[mask], t)
        pre = next(p for p in res.pre_facets["f"] if p["value_or_threshold"] == e["value_or_threshold"])
        for key in ("facet_d", "facet_a"):
            g, gp = e["group_statistics"][key], pre["group_statistics"][key]
            assert gp == {k: g[k] for k in ("rows", "weight", "observed_positive_rate")} | {
                "undefined": {k: v for k, v in g["undefined"].items() if k == "observed_positive_rate"}
            }
    check_group(res.model_performance, y, s, ww, t)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_curves_equal_bias_report_at_every_threshold(case):
    df, t = case
    thresholds = [0.0, 0.25, t, 0.999]
    curves = bias.threshold_curves(
        df, label="y", facet="f", label_values=[1], probability="s", probability_threshold=t, thresholds=thresholds
    )
    rep = bias.report(
        df,
        label="y",
        facet="f",
        label_values=[1],
        predicted_label="s",
        probability_threshold=sorted(set(thresholds)),
        methods=["DPPL", "DI", "RD"],
    ).to_frame()
    for r in rep.itertuples():
        got = curves.loc[("f", r.value_or_threshold, r.threshold), r.metric]
        if math.isnan(r.value):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(r.value, rel=1e-12, abs=1e-15)
    acc = curves.xs("f", level="facet")
    for thr in thresholds:
        want = float(((df["s"] > thr).astype(int) == df["y"]).mean())
        assert acc.xs(thr, level="threshold")["accuracy"].iloc[0] == pytest.approx(want)
    assert curves["configured"].sum() == df["f"].nunique()


def test_continuous_scores_auc_within_the_documented_bound():
    rng = np.random.default_rng(3)
    n = 4000
    y = rng.integers(0, 2, n)
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    df = pd.DataFrame({"y": y, "s": s, "f": rng.choice(["u", "v"], n)})
    res = bias.group_performance(df, label="y", facet="f", label_values=[1], probability="s")
    got = res.model_performance["roc_auc"]
    want = sk_metrics.roc_auc_score(y, s)
    cells = np.ceil(s * 1000).astype(int)  # cell of each score: (t_j, t_j+1]
    p_pos = np.bincount(cells[y == 1], minlength=1001) / (y == 1).sum()
    p_neg = np.bincount(cells[y == 0], minlength=1001) / (y == 0).sum()
    assert abs(got - want) <= 0.5 * float(np.sum(p_pos * p_neg)) + 1e-12
    assert got != want or float(np.sum(p_pos * p_neg)) == 0  # the bound is not vacuous here


def test_one_threshold_count_call_per_batch_and_batches_add_up(monkeypatch):
    from clarion.bias import _engine

    calls = []
    real = _engine.grouped_threshold_counts

    def counting(*a, **k):
        calls.append(np.asarray(a[3] if len(a) > 3 else k["thresholds"]).size)
        return real(*a, **k)

    monkeypatch.setattr(_engine, "grouped_threshold_counts", counting)
    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "s": rng.random(n), "f": rng.choice(list("abcd"), n)})
    kw = dict(label="y", facet="f", label_values=[1], probability="s")
    one = bias.group_performance(df, **kw)
    assert len(calls) == 1 and calls[0] >= 1001  # every curve threshold and the AUC grid in one call
    acc = bias.PerformanceAccumulator(**kw)
    for part in np.array_split(np.arange(n), 3):
        acc.update(df.iloc[part])
    assert len(calls) == 4
    two = acc.result()
    # bit for bit: counts are integers and the calibration's score sums are summed exactly
    assert json.dumps(one.to_dict(), sort_keys=True) == json.dumps(two.to_dict(), sort_keys=True)


def test_matches_smclarify_model_performance_report():
    pytest.importorskip("smclarify")
    import logging

    from smclarify.bias.report import LabelColumn, model_performance_report

    rng = np.random.default_rng(5)
    n = 300
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n), "f": rng.choice(["a", "b"], n)})
    res = bias.group_performance(df, label="y", facet="f", label_values=[1], predicted_label="p")
    logging.disable(logging.CRITICAL)
    try:
        for e in res.facets["f"]:
            m = df["f"] == e["value_or_threshold"]
            for key, rows in (("facet_d", df[m]), ("facet_a", df[~m]), (None, df)):
                g = e["group_statistics"][key] if key else res.model_performance
                rows = rows.reset_index(drop=True)
                rep = model_performance_report(
                    rows[["f"]], LabelColumn("y", rows["y"], [1]), LabelColumn("p", rows["p"], [1])
                )
                sm = {r["name"]: r["value"] for r in rep["model_performance_metrics"]}
                assert sm["Accuracy"] == pytest.approx(g["accuracy"])
                assert sm["Proportion of Positive Predictions in Labels"] == pytest.approx(g["predicted_positive_rate"])
                assert sm["Proportion of Negative Predictions in Labels"] == pytest.approx(
                    1 - g["predicted_positive_rate"]
                )
                assert sm["True Positive Rate / Recall"] == pytest.approx(g["recall"])
                assert sm["True Negative Rate / Specificity"] == pytest.approx(g["true_negative_rate"])
                assert sm["Acceptance Rate / Precision"] == pytest.approx(g["precision"])
                assert sm["Rejection Rate"] == pytest.approx(g["negative_predictive_value"])
                assert sm["Conditional Acceptance"] == pytest.approx(
                    g["observed_positive_rate"] / g["predicted_positive_rate"]
                )
                assert sm["Conditional Rejection"] == pytest.approx(
                    (1 - g["observed_positive_rate"]) / (1 - g["predicted_positive_rate"])
                )
                assert sm["F1 Score"] == pytest.approx(g["f1"])
                cm = g["confusion_matrix"]
                assert rep["binary_confusion_matrix"] == pytest.approx(
                    [cm[k] / g["weight"] for k in ("TP", "FP", "FN", "TN")]
                )
    finally:
        logging.disable(logging.NOTSET)


def test_to_frame_is_one_row_per_group():
    res = bias.group_performance(hand_data(), label="y", facet="f", label_values=[1], probability="s")
    frame = res.to_frame()
    assert list(frame.index.get_level_values("group")) == ["d", "a", "d", "a", "all"]
    assert frame.loc[("f", "x", "d"), "rows"] == 4 and frame.loc[("f", "x", "d"), "roc_auc"] == 1.0


# ---- analysis.json -------------------------------------------------------------------------------


def test_analyze_writes_the_numbers_behind_each_metric(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    import clarion

    rng = np.random.default_rng(0)
    n = 400
    g = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    x1 = rng.normal(size=n).round(4)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x1 + 0.8 * (g == "a"))))).astype(int)
    df = pd.DataFrame({"x1": x1, "g": g, "y": y})
    pre = ColumnTransformer([("cat", OneHotEncoder(), ["g"])], remainder="passthrough")
    model = Pipeline([("p", pre), ("m", LogisticRegression())]).fit(df[["x1", "g"]], df["y"])
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    cfg = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "probability_threshold": 0.6,
        "methods": {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": ["DPPL", "DI"]}},
        "predictor": {"probability": 1},
    }
    res = clarion.analyze(cfg, str(data), model=model, output_dir=tmp_path / "out", progress=False)
    doc = json.loads((tmp_path / "out" / "analysis.json").read_text())
    score = model.predict_proba(df[["x1", "g"]])[:, 1]
    want = bias.group_performance(
        df.assign(score=score),
        label="y",
        facet="g",
        facet_values=["b"],
        label_values=[1],
        probability="score",
        probability_threshold=0.6,
    ).to_dict()
    want = json.loads(json.dumps(want))
    post = doc["post_training_bias_metrics"]
    e = post["facets"]["g"][0]
    assert e["value_or_threshold"] == "b" and [m["name"] for m in e["metrics"]] == ["DI", "DPPL"]
    assert_close(want["facets"]["g"][0]["group_statistics"], e["group_statistics"], rel=1e-9)
    assert e["threshold_curve"]["configured_threshold"] == 0.6
    j = e["threshold_curve"]["thresholds"].index(0.6)
    assert e["threshold_curve"]["DPPL"][j] == pytest.approx(
        next(m["value"] for m in e["metrics"] if m["name"] == "DPPL")
    )
    assert post["model_performance"]["rows"] == n
    assert post["model_performance"]["roc_auc"] == pytest.approx(sk_metrics.roc_auc_score(y, score), abs=2e-3)
    pre = doc["pre_training_bias_metrics"]
    assert pre["dataset"] == {"rows": n, "weight": float(n), "observed_positive_rate": pytest.approx(y.mean())}
    gd = pre["facets"]["g"][0]["group_statistics"]["facet_d"]
    assert gd["rows"] == int((g == "b").sum()) and set(gd) == {"rows", "weight", "observed_positive_rate", "undefined"}
    # JSON null, never NaN, for an undefined number: the curve at t = 1 predicts nobody positive
    assert e["threshold_curve"]["DI"][-1] is None
    assert "NaN" not in (tmp_path / "out" / "analysis.json").read_text()
    assert " rows)" in res.summary() or "largest disparities" not in res.summary()


def test_float_predicted_label_is_a_score():
    """A float predicted_label with label_values is a score (clarion.bias.report's rule): the
    decision is score > probability_threshold, and the AUC and curves come with it."""
    df = hand_data()
    a = bias.group_performance(df, label="y", facet="f", label_values=[1], predicted_label="s")
    b = bias.group_performance(df, label="y", facet="f", label_values=[1], probability="s")
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    # labels and scores together: the labels decide, the scores give the AUC
    c = bias.group_performance(df, label="y", facet="f", label_values=[1], predicted_label="p", probability="s")
    d = c.facets["f"][0]["group_statistics"]["facet_a"]
    assert d["confusion_matrix"] == {"TP": 2.0, "FP": 1.0, "FN": 1.0, "TN": 2.0}  # from p (hand example)
    assert d["roc_auc"] == pytest.approx(7 / 9)
