"""clarion.bias.report: hand-computed metrics, both conventions, properties, many models, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion.bias import _engine, _metrics

# facet a: (y, yhat) = (1,1) (1,1) (1,0) (0,1) (0,0) (0,0); facet d: (1,1) (0,1) (0,0) (0,0)
HAND = pd.DataFrame(
    {
        "f": ["a"] * 6 + ["d"] * 4,
        "y": [1, 1, 1, 0, 0, 0, 1, 0, 0, 0],
        "p": [1, 1, 0, 1, 0, 0, 1, 1, 0, 0],
        "g": ["x", "x", "y", "x", "y", "y", "x", "y", "y", "y"],
        "z": [0.1, 0.5, 0.2, 0.9, 0.3, 0.8, 0.4, 0.6, 0.7, 0.0],
    }
)
_P = (0.625, 0.375)
_GE_MEAN = 1.1
HAND_EXPECTED = {
    "CI": 0.2,
    "DPL": 0.25,
    "KL": 0.5 * math.log(4 / 3),
    "JS": 0.5
    * (
        0.5 * math.log(0.5 / _P[0])
        + 0.5 * math.log(0.5 / _P[1])
        + 0.75 * math.log(0.75 / _P[0])
        + 0.25 * math.log(0.25 / _P[1])
    ),
    "LP": 0.25 * math.sqrt(2),
    "TVD": 0.25,
    "KS": 0.25,
    "CDDL": (4 * (-1 / 3) + 6 * 0.6) / 10,
    "DPPL": 0.0,
    "DI": 1.0,
    "DCA": 0.5,
    "DCR": 0.5,
    "RD": -1 / 3,
    "SD": 0.0,
    "DAR": 1 / 6,
    "DRR": 1 / 3,
    "AD": -1 / 12,
    "TE": -1.0,
    "GE": (7 * ((1 / _GE_MEAN) ** 2 - 1) + 2 * ((2 / _GE_MEAN) ** 2 - 1) - 1) / 20,
}
# CDDPL: subgroup x has no negative prediction: smclarify takes its share as 0, clarion drops x
CDDPL = {"smclarify": (4 * -0.25 + 6 * -0.6) / 10, "clarion": -0.6}


def frame_values(rep, **select):
    df = rep.to_frame()
    for k, v in select.items():
        df = df[df[k] == v]
    return dict(zip(df.metric, df.value))


@pytest.mark.parametrize("compat", ["clarion", "smclarify"])
def test_hand_computed_every_count_metric(compat):
    rep = cb.report(
        HAND,
        label="y",
        facet="f",
        facet_values=["d"],
        label_values=[1],
        predicted_label="p",
        group_variable="g",
        methods=list(_metrics.COUNT_METRICS),
        compat=compat,
    )
    got = frame_values(rep)
    for name, want in HAND_EXPECTED.items():
        assert got[name] == pytest.approx(want, abs=1e-15), name
    assert got["CDDPL"] == pytest.approx(CDDPL[compat], abs=1e-15)
    assert set(got) == set(_metrics.COUNT_METRICS)


def test_one_vs_rest_from_one_pass_equals_selected_values():
    allv = cb.report(
        HAND,
        label="y",
        facet="f",
        label_values=[1],
        predicted_label="p",
        group_variable="g",
        methods=list(_metrics.COUNT_METRICS),
    ).to_frame()
    for v in ("a", "d"):
        one = cb.report(
            HAND,
            label="y",
            facet="f",
            facet_values=[v],
            label_values=[1],
            predicted_label="p",
            group_variable="g",
            methods=list(_metrics.COUNT_METRICS),
        ).to_frame()
        sub = allv[allv.value_or_threshold == v].reset_index(drop=True)
        pd.testing.assert_frame_equal(sub, one)


def _tensor(cells):
    """C[2, 1, 2, 2] from {(group, y, yhat): count}."""
    C = np.zeros((2, 1, 2, 2))
    for (g, y, p), c in cells.items():
        C[g, 0, y, p] = c
    return C


@pytest.mark.parametrize(
    ("cells", "name", "clarion", "smclarify"),
    [
        # facet a has no positive prediction, d has: DI = +inf in both
        ({(0, 1, 0): 2, (1, 1, 1): 1}, "DI", math.inf, math.inf),
        # neither has positive predictions: clarion undefined, smclarify 0/0 -> 0
        ({(0, 1, 0): 2, (1, 0, 0): 1}, "DI", math.nan, 0.0),
        # both groups have positives but no positive predictions: inf - inf
        ({(0, 1, 0): 2, (1, 1, 0): 1}, "DCA", math.nan, 0.0),
        ({(0, 1, 0): 2, (1, 1, 1): 1}, "DCA", math.inf, math.inf),
        ({(0, 0, 1): 2, (1, 0, 0): 1}, "DCR", -math.inf, -math.inf),
        ({(0, 1, 1): 2, (1, 0, 0): 1}, "RD", math.nan, 1.0),
        ({(0, 1, 1): 2, (1, 1, 1): 1}, "SD", math.nan, 0.0),
        ({(0, 0, 0): 2, (1, 1, 1): 1}, "DAR", math.nan, -1.0),
        ({(0, 1, 1): 2, (1, 0, 0): 1}, "DRR", math.nan, 1.0),
        ({(0, 1, 0): 2, (1, 1, 0): 1}, "TE", math.nan, 0.0),
        ({(0, 1, 0): 2, (0, 0, 1): 1, (1, 1, 0): 1}, "TE", math.inf, math.inf),
        # d lacks negative labels: smclarify KL over the shared value only, clarion full support -> inf
        ({(0, 1, 0): 1, (0, 0, 0): 1, (1, 1, 0): 2}, "KL", math.inf, 0.5 * math.log(0.5)),
        ({(0, 1, 0): 1, (0, 0, 0): 3, (1, 1, 0): 2}, "KL", math.inf, 0.25 * math.log(0.25)),
        ({(0, 1, 0): 1, (0, 0, 0): 1, (1, 1, 0): 2}, "LP", math.sqrt(0.5), 0.5),
        ({(0, 1, 0): 1, (0, 0, 0): 1, (1, 1, 0): 2}, "TVD", 0.5, 0.25),
        ({(0, 0, 0): 1, (1, 1, 0): 2}, "KS", 1.0, math.nan),
        # every row a false negative: GE undefined in both
        ({(0, 1, 0): 1, (1, 1, 0): 2}, "GE", math.nan, math.nan),
        # empty facet d: clarion NaN, smclarify error (NaN with its message)
        ({(0, 1, 0): 1, (0, 0, 1): 2}, "CI", math.nan, math.nan),
    ],
)
def test_edge_cases_both_conventions(cells, name, clarion, smclarify):
    for compat, want in (("clarion", clarion), ("smclarify", smclarify)):
        v, r = _metrics.compute(_tensor(cells), [name], compat=compat)[name]
        if math.isnan(want):
            assert math.isnan(v) and r != 0 and _metrics.MESSAGES[int(r)], (compat, name)
        else:
            assert v == pytest.approx(want, abs=1e-15) and r == 0, (compat, name, v)


def test_every_metric_is_classified():
    kinds = {
        "difference",
        "ratio",
        "imbalance",
        "divergence-symmetric",
        "divergence",
        "conditional",
        "dataset",
        "individual",
    }
    assert set(_metrics.METRIC_INFO) == set(cb.ALL_METRICS)
    for name, info in _metrics.METRIC_INFO.items():
        assert info["kind"] in kinds, name
        assert info["stage"] in ("pre", "post") and info["description"].endswith(f"({name})")
        assert info["range"][0] <= info["ideal"] <= info["range"][1]
    assert len(cb.ALL_METRICS) == 21


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=16, max_size=16), st.integers(0, 3))
def test_swapping_facets_follows_the_metric_class(raw, k):
    C = np.array(raw, dtype=float).reshape(2, 2, 2, 2)[:, : 1 + (k % 2)]  # K = 1 or 2 subgroups
    swapped = C[::-1]
    names = list(_metrics.COUNT_METRICS)
    a = _metrics.compute(C, names, has_group=True)
    b = _metrics.compute(swapped, names, has_group=True)
    for name in names:
        kind = _metrics.METRIC_INFO[name]["kind"]
        va, vb = float(a[name][0]), float(b[name][0])
        if math.isnan(va) or math.isnan(vb):
            assert math.isnan(va) and math.isnan(vb) or kind in ("divergence", "ratio"), name
            continue
        if kind in ("difference", "imbalance", "conditional"):
            assert vb == pytest.approx(-va, abs=1e-12), name
        elif kind == "ratio":
            assert vb == pytest.approx(1 / va if va != 0 else math.inf), name
        elif kind in ("divergence-symmetric", "dataset"):
            assert vb == pytest.approx(va, abs=1e-12), name
        elif kind == "divergence":
            assert va >= 0 and vb >= 0


def _random_data(seed, n=300):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "f": rng.choice(["r", "s", "t"], n),
            "y": rng.integers(0, 2, n),
            "g": rng.choice(["u", "v"], n),
            "x": rng.normal(size=n),
        }
    )
    df["p"] = np.where(rng.random(n) < 0.3, 1 - df.y, df.y)
    df["s1"] = rng.random(n)
    df["s2"] = rng.random(n)
    return df


COMMON = dict(label="y", facet="f", label_values=[1], group_variable="g", methods=list(_metrics.COUNT_METRICS))


def test_row_order_and_relabelling_invariance():
    df = _random_data(1)
    base = cb.report(df, predicted_label="p", **COMMON).to_frame()
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(cb.report(shuffled, predicted_label="p", **COMMON).to_frame(), base)
    mapping = {"r": "t2", "s": "r2", "t": "s2"}
    rel = df.assign(f=df.f.map(mapping), g=df.g.map({"u": "v9", "v": "u9"}))
    got = cb.report(rel, predicted_label="p", **COMMON).to_frame()
    got["value_or_threshold"] = got.value_or_threshold.map({v: k for k, v in mapping.items()})
    key = ["stage", "value_or_threshold", "metric"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True), base.sort_values(key).reset_index(drop=True)
    )


def test_integer_weights_equal_repeated_rows():
    df = _random_data(2, 120)
    w = np.random.default_rng(0).integers(0, 4, len(df))
    weighted = cb.report(df.assign(w=w), predicted_label="p", weights="w", **COMMON).to_frame()
    repeated = cb.report(df.loc[df.index.repeat(w)].reset_index(drop=True), predicted_label="p", **COMMON).to_frame()
    pd.testing.assert_frame_equal(weighted, repeated, atol=1e-13, rtol=0)


def test_many_models_and_thresholds_equal_separate_calls():
    df = _random_data(3)
    multi = cb.report(
        df, predicted_label={"lab": "p", "m1": "s1", "m2": "s2"}, probability_threshold=[0.3, 0.6], **COMMON
    ).to_frame()
    assert {"model", "threshold"} <= set(multi.columns)
    post = multi[multi.stage == "post_training"]
    for model, col, thr in [("lab", "p", None), ("m1", "s1", 0.3), ("m1", "s1", 0.6), ("m2", "s2", 0.6)]:
        single = cb.report(
            df,
            predicted_label=col,
            probability_threshold=thr or 0.5,
            stage="post",
            **{
                **COMMON,
                "methods": list(cb.POST_TRAINING[:1]) + [m for m in cb.POST_TRAINING if m not in ("FT", "AD")],
            },
        )
        want = single.to_frame()
        sel = post[(post.model == model) & ((post.threshold == thr) if thr is not None else post.threshold.isna())]
        got = dict(zip(zip(sel.value_or_threshold, sel.metric), sel.value))
        for _, row in want.iterrows():
            g = got[(row.value_or_threshold, row.metric)]
            assert (math.isnan(g) and math.isnan(row.value)) or g == row.value, (model, thr, row.metric)
    # scores thresholded: positive iff score > threshold (Clarify's rule)
    s = np.array([0.2, 0.5, 0.5000001, 0.9])
    small = pd.DataFrame({"f": ["a", "a", "d", "d"], "y": [0, 1, 0, 1], "s": s})
    rep = cb.report(
        small, label="y", facet="f", facet_values=["d"], label_values=[1], predicted_label="s", methods=["DPPL"]
    )
    assert frame_values(rep)["DPPL"] == pytest.approx(0.0 - 1.0)


def test_pyarrow_and_dict_inputs_equal_pandas():
    pa = pytest.importorskip("pyarrow")
    df = _random_data(4)
    base = cb.report(df, predicted_label="p", **COMMON).to_frame()
    pd.testing.assert_frame_equal(cb.report(pa.Table.from_pandas(df), predicted_label="p", **COMMON).to_frame(), base)
    as_dict = {c: df[c].to_numpy() for c in df.columns}
    pd.testing.assert_frame_equal(cb.report(as_dict, predicted_label="p", **COMMON).to_frame(), base)
    cat = df.astype({"f": "category", "g": "category"})
    pd.testing.assert_frame_equal(cb.report(cat, predicted_label="p", **COMMON).to_frame(), base)


def test_to_dict_is_analysis_json_shaped():
    df = _random_data(5)
    d = cb.report(df, predicted_label="p", **COMMON).to_dict()
    assert set(d) == {"pre_training_bias_metrics", "post_training_bias_metrics"}
    sec = d["post_training_bias_metrics"]
    assert sec["label"] == "y" and sec["label_value_or_threshold"] == "1"
    entries = sec["facets"]["f"]
    assert [e["value_or_threshold"] for e in entries] == ["r", "s", "t"]
    names = [m["name"] for m in entries[0]["metrics"]]
    assert names == sorted(names)
    inf = cb.report(
        pd.DataFrame({"f": ["a", "a", "d"], "y": [1, 0, 1], "p": [0, 0, 1]}),
        label="y",
        facet="f",
        facet_values=["d"],
        label_values=[1],
        predicted_label="p",
        methods=["DI", "RD"],
    ).to_dict()
    ms = {m["name"]: m for m in inf["post_training_bias_metrics"]["facets"]["f"][0]["metrics"]}
    assert ms["DI"]["value"] == "Infinity"
    assert ms["RD"]["value"] is None or isinstance(ms["RD"]["value"], float)


def test_threshold_facet_and_label():
    df = pd.DataFrame({"age": [20, 30, 40, 50, 60, 70], "score": [0.1, 0.9, 0.4, 0.8, 0.7, 0.2]})
    rep = cb.report(df, label="score", label_threshold=0.5, facet="age", facet_threshold=40, methods=["CI", "DPL"])
    d = rep.to_dict()["pre_training_bias_metrics"]
    assert d["facets"]["age"][0]["value_or_threshold"] == "(40, 70]"
    assert d["label_value_or_threshold"] == "(0.5, 0.9]"
    got = frame_values(rep)
    assert got["CI"] == pytest.approx((3 - 3) / 6)
    assert got["DPL"] == pytest.approx(1 / 3 - 2 / 3)


def test_fliptest_is_reported():
    pytest.importorskip("clarion.bias.fliptest")
    df = _random_data(6, 60)
    rep = cb.report(df, label="y", facet="f", label_values=[1], predicted_label="p", methods=["FT"], features=["x"])
    v = rep.to_frame().value
    assert ((v >= -1) & (v <= 1)).all()
    with pytest.raises(ValueError, match="'f'"):
        cb.report(df, label="y", facet="f", label_values=[1], predicted_label="p", methods=["FT"], features=["f"])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(facet="nope"), ValueError, "facet: column 'nope'"),
        (dict(label="nope"), ValueError, "label: column 'nope'"),
        (dict(facet_values=["zz"]), ValueError, "facet_values: value 'zz' does not occur in column 'f'"),
        (
            dict(label_values=[7]),
            ValueError,
            "label_values: value 7 does not occur in column 'y'",
        ),  # "1" matches 1 (rule)
        (dict(label_values=None), ValueError, "label_values"),
        (dict(label_threshold=0.5), ValueError, "label_values or label_threshold|not both"),
        (dict(facet_threshold=1.0), TypeError, "facet_threshold: column 'f' must be numeric"),
        (dict(facet_values=["r"], facet_threshold=1.0), ValueError, "facet_values or facet_threshold"),
        (dict(methods=["XX"]), ValueError, "methods: unknown metric 'XX'"),
        (dict(methods=["DI"], predicted_label=None), ValueError, "predicted_label is required"),
        (dict(stage="pre", methods=["DI"]), ValueError, "DI is a post-training metric"),
        (dict(stage="middle"), ValueError, "stage must be one of"),
        (dict(compat="sagemaker"), ValueError, "compat must be"),
        (dict(weights="x"), ValueError, "weights: value"),
        (dict(weights=np.ones(3)), ValueError, "weights: the array has 3 rows"),
        (dict(predicted_label="nope"), ValueError, "predicted_label: column 'nope'"),
        (dict(probability_threshold="high", predicted_label="s1"), ValueError, "probability_threshold"),
        (dict(confidence=1.5), ValueError, "confidence must be"),
        (dict(group_variable="nope"), ValueError, "group_variable: column 'nope'"),
    ],
)
def test_bad_input_errors_name_the_argument(kwargs, exc, match):
    df = _random_data(7, 50)
    args = dict(label="y", facet="f", label_values=[1], predicted_label="p")
    args.update(kwargs)
    if args.get("label_values") is None and "label_threshold" not in args:
        args.pop("label_values")
    with pytest.raises(exc, match=match):
        cb.report(df, **args)


def test_missing_values_are_errors_in_clarion_mode():
    df = pd.DataFrame({"f": ["a", "b", "a"], "y": [1.0, np.nan, 0.0], "p": [1, 0, 1], "g": ["u", None, "v"]})
    with pytest.raises(ValueError, match="label: column 'y' has a missing value .* at row 1"):
        cb.report(df, label="y", facet="f", label_values=[1.0])
    with pytest.raises(ValueError, match="group_variable: missing value at row 1"):
        cb.report(df.assign(y=[1, 0, 0]), label="y", facet="f", label_values=[1], group_variable="g")
    with pytest.raises(ValueError, match="model 's' has a NaN score at row 0"):
        cb.report(
            df.assign(y=[1, 0, 0], s=[np.nan, 0.1, 0.2]), label="y", facet="f", label_values=[1], predicted_label="s"
        )
    with pytest.raises(TypeError, match="data must be"):
        cb.report([1, 2], label="y", facet="f", label_values=[1])
    with pytest.raises(ValueError, match="to_dict: analysis.json holds one model"):
        cb.report(
            df.assign(y=[1, 0, 0], s=[0.3, 0.1, 0.2]),
            label="y",
            facet="f",
            label_values=[1],
            predicted_label="s",
            probability_threshold=[0.1, 0.2],
        ).to_dict()


def test_missing_facet_rows_belong_to_facet_a():
    df = pd.DataFrame({"f": ["a", None, "d", "d"], "y": [1, 0, 1, 0]})
    got = frame_values(cb.report(df, label="y", facet="f", facet_values=["d"], label_values=[1], methods=["CI"]))
    assert got["CI"] == 0.0  # a = {row 0, row 1}


def test_interval_string_matches_smclarify_rule():
    assert _engine.interval_string(40, 79) == "(40, 79]"
    assert _engine.interval_string(2.0, 3.0) == "(2.0, 3.0]"


def test_to_dict_feeds_the_html_report_and_the_drift_monitor():
    from clarion import monitor
    from clarion.report.html import render_html, render_markdown

    df = _random_data(8, 400)
    rep = cb.report(df, predicted_label="p", confidence=0.9, n_bootstrap=100, seed=3, **COMMON)
    doc = {"version": "1.0", **rep.to_dict()}
    html = render_html(doc)
    assert "Pre-training bias" in html and "Post-training bias" in html
    md = render_markdown(doc)
    dpl = next(m for m in doc["pre_training_bias_metrics"]["facets"]["f"][0]["metrics"] if m["name"] == "DPL")
    from clarion.report.svg import fmt

    assert f"[{fmt(dpl['ci_low'])}, {fmt(dpl['ci_high'])}]" in md  # the interval column
    drift = monitor.bias_drift(doc, doc)
    assert drift.ok
    shifted = {"version": "1.0", **cb.report(df.assign(p=1 - df.p), predicted_label="p", **COMMON).to_dict()}
    assert not monitor.bias_drift(doc, shifted).ok


def test_prediction_containers():
    df = _random_data(9, 80)
    base = cb.report(df, predicted_label=["p", "s1"], **COMMON).to_frame()
    arrays = cb.report(df, predicted_label=[df.p.to_numpy(), df.s1.to_numpy()], **COMMON).to_frame()
    assert list(arrays.model.dropna().unique()) == ["model_0", "model_1"]
    pd.testing.assert_frame_equal(arrays.drop(columns="model"), base.drop(columns="model"))
    two_d = cb.report(df, predicted_label=np.column_stack([df.p, df.p]), **COMMON).to_frame()
    assert set(two_d.model.dropna()) == {"model_0", "model_1"}
    one = cb.report(df, predicted_label=list(df.p), **COMMON).to_frame()
    assert "model" not in one.columns
    pd.testing.assert_frame_equal(one, cb.report(df, predicted_label="p", **COMMON).to_frame())
