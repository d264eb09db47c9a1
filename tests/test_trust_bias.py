"""Issue 13, bias items: values matched by value across types (2), non-finite model scores (3),
two facet entries on one column (9), a tampered accumulator state (13), one interval format (25),
error messages that name the cause (22)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clarion import analysis as A
from clarion import bias
from clarion.bias import _engine as E


def _analyze(tmp_path, cfg, df, model=None, name="out"):
    data = tmp_path / f"{name}.csv"
    df.to_csv(data, index=False)
    res = A.analyze(cfg, data, model=model, output_dir=tmp_path / name, progress=False)
    return res.analysis


def _people(n=200, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 67, n)
    age[0] = 66  # the maximum, for the interval strings
    return pd.DataFrame({"age": age, "x": rng.normal(size=n).round(3), "g": rng.choice(["a", "b"], n),
                         "y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n)})


# ---- item 9: two facet entries on the same column ---------------------------------------------------


def test_two_facet_entries_on_one_column_are_both_in_analysis_json(tmp_path):
    df = _people()
    cfg = {"dataset_type": "text/csv", "label": "y", "label_values_or_threshold": [1], "predicted_label": "p",
           "facet": [{"name_or_index": "age", "value_or_threshold": [40]},
                     {"name_or_index": "age", "value_or_threshold": [60]},
                     {"name_or_index": "g", "value_or_threshold": ["b"]}],
           "methods": {"pre_training_bias": {"methods": ["CI"]}, "post_training_bias": {"methods": ["DPPL"]}}}
    doc = _analyze(tmp_path, cfg, df)
    for key, metric in (("pre_training_bias_metrics", "CI"), ("post_training_bias_metrics", "DPPL")):
        entries = doc[key]["facets"]["age"]
        assert [e["value_or_threshold"] for e in entries] == ["(40, 66]", "(60, 66]"]
        for e, t in zip(entries, (40, 60)):
            want = bias.report(df, label="y", facet="age", facet_threshold=t, label_values=[1], predicted_label="p",
                               methods=[metric]).to_dict()[key]["facets"]["age"][0]
            assert e == want
        assert [e["value_or_threshold"] for e in doc[key]["facets"]["g"]] == ["b"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "(40, 66]" in md and "(60, 66]" in md


# ---- item 25: one interval format ---------------------------------------------------------------


def test_integer_threshold_is_written_as_clarify_writes_it_everywhere(tmp_path):
    df = _people()
    cfg = {"dataset_type": "text/csv", "label": "y", "label_values_or_threshold": [1],
           "facet": [{"name_or_index": "age", "value_or_threshold": [30]}],
           "methods": {"pre_training_bias": {"methods": ["CI"]}}}
    doc = _analyze(tmp_path, cfg, df)
    written = doc["pre_training_bias_metrics"]["facets"]["age"][0]["value_or_threshold"]
    api = bias.report(df, label="y", facet="age", facet_threshold=30, label_values=[1], methods=["CI"])
    acc = bias.Accumulator(label="y", facet="age", facet_threshold=30, label_values=[1])
    for part in np.array_split(np.arange(len(df)), 3):
        acc.update(df.iloc[part])
    acc2 = bias.Accumulator.from_bytes(acc.to_bytes())
    # Clarify / smclarify: pandas.IntervalIndex.from_breaks of the threshold and the column's maximum
    clarify = str(pd.IntervalIndex.from_breaks([30, int(df.age.max())])[0])
    assert written == clarify == "(30, 66]"
    for r in (api, acc.report(methods=["CI"]), acc2.report(methods=["CI"])):
        assert r.to_frame().value_or_threshold.tolist() == [clarify]
    # the label interval too
    cfg2 = {**cfg, "label": "age", "label_values_or_threshold": [50],
            "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}]}
    doc2 = _analyze(tmp_path, cfg2, df, name="out2")
    assert doc2["pre_training_bias_metrics"]["label_value_or_threshold"] == "(50, 66]"


def test_interval_format_follows_the_column_type_whatever_the_batches():
    # a float threshold or a float column: floats, as pandas writes them
    assert E.interval_string(30, 66) == "(30, 66]"
    assert E.interval_string(30.5, 66) == "(30.5, 66.0]"
    assert E.interval_string(30, 66.0) == "(30.0, 66.0]"
    assert E.interval_string(np.int64(30), np.int64(66)) == "(30, 66]"
    # a column that is float in one batch (a missing value) is a float column, in any batch order
    a = pd.DataFrame({"age": [20, 70], "y": [0, 1]})
    b = pd.DataFrame({"age": [40.0, np.nan], "y": [1, 0]})
    outs = set()
    for first, second in ((a, b), (b, a)):
        acc = bias.Accumulator(label="y", facet="age", facet_threshold=30, label_values=[1], compat="smclarify")
        acc.update(first).update(second)
        outs.add(acc.report(methods=["CI"]).to_frame().value_or_threshold.iloc[0])
        x = bias.Accumulator(label="y", facet="age", facet_threshold=30, label_values=[1], compat="smclarify")
        y = bias.Accumulator(label="y", facet="age", facet_threshold=30, label_values=[1], compat="smclarify")
        x.update(first)
        y.update(second)
        outs.add(x.merge(y).report(methods=["CI"]).to_frame().value_or_threshold.iloc[0])
    assert outs == {"(30.0, 70.0]"}
