"""Issue 13, bias items: values matched by value across types (2), non-finite model scores (3),
two facet entries on one column (9), a tampered accumulator state (13), one interval format (25),
error messages that name the cause (22)."""

from __future__ import annotations

import hashlib
import json
import re
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import analysis as A
from clarion import bias
from clarion.bias import _engine as E
from clarion.bias.accumulator import MAGIC


def _analyze(tmp_path, cfg, df, model=None, name="out"):
    data = tmp_path / f"{name}.csv"
    df.to_csv(data, index=False)
    res = A.analyze(cfg, data, model=model, output_dir=tmp_path / name, progress=False)
    return res.analysis


def _people(n=200, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 67, n)
    age[0] = 66  # the maximum, for the interval strings
    return pd.DataFrame(
        {
            "age": age,
            "x": rng.normal(size=n).round(3),
            "g": rng.choice(["a", "b"], n),
            "y": rng.integers(0, 2, n),
            "p": rng.integers(0, 2, n),
        }
    )


# ---- item 9: two facet entries on the same column ---------------------------------------------------


def test_two_facet_entries_on_one_column_are_both_in_analysis_json(tmp_path):
    df = _people()
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "predicted_label": "p",
        "facet": [
            {"name_or_index": "age", "value_or_threshold": [40]},
            {"name_or_index": "age", "value_or_threshold": [60]},
            {"name_or_index": "g", "value_or_threshold": ["b"]},
        ],
        "methods": {"pre_training_bias": {"methods": ["CI"]}, "post_training_bias": {"methods": ["DPPL", "FT"]}},
    }
    doc = _analyze(tmp_path, cfg, df)
    for key, metrics in (("pre_training_bias_metrics", ["CI"]), ("post_training_bias_metrics", ["DPPL"])):
        entries = doc[key]["facets"]["age"]
        assert [e["value_or_threshold"] for e in entries] == ["(40, 66]", "(60, 66]"]
        for e, t in zip(entries, (40, 60)):
            want = bias.report(
                df, label="y", facet="age", facet_threshold=t, label_values=[1], predicted_label="p", methods=metrics
            ).to_dict()[key]["facets"]["age"][0]
            assert [m for m in e["metrics"] if m["name"] != "FT"] == want["metrics"]
            assert e["value_or_threshold"] == want["value_or_threshold"]
        assert [e["value_or_threshold"] for e in doc[key]["facets"]["g"]] == ["b"]
    post = doc["post_training_bias_metrics"]["facets"]["age"]
    fts = [next(m for m in e["metrics"] if m["name"] == "FT") for e in post]
    assert all(isinstance(m["value"], float) for m in fts) and fts[0]["value"] != fts[1]["value"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "(40, 66\\]" in md and "(60, 66\\]" in md  # report.md escapes Markdown's "]"


# ---- item 25: one interval format ---------------------------------------------------------------


def test_integer_threshold_is_written_as_clarify_writes_it_everywhere(tmp_path):
    df = _people()
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "age", "value_or_threshold": [30]}],
        "methods": {"pre_training_bias": {"methods": ["CI"]}},
    }
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
    cfg2 = {
        **cfg,
        "label": "age",
        "label_values_or_threshold": [50],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
    }
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


# ---- item 2: values matched by value across types, never "everything negative" ---------------------


def _frame(n=300, seed=1):
    rng = np.random.default_rng(seed)
    f = rng.choice(["a", "b"], n)
    y = (rng.random(n) < np.where(f == "a", 0.6, 0.3)).astype(np.int64)
    p = (rng.random(n) < np.where(f == "a", 0.7, 0.2)).astype(np.int64)
    return pd.DataFrame({"f": f, "y": y, "p": p, "x": rng.normal(size=n)})


def _values(r):
    return r.to_frame().set_index(["stage", "value_or_threshold", "metric"]).value


@pytest.mark.parametrize("compat", ["clarion", "smclarify"])
def test_text_predictions_of_numbers_match_an_integer_label(compat):
    df = _frame()
    want = bias.report(
        df,
        label="y",
        facet="f",
        facet_values=["b"],
        label_values=[1],
        predicted_label="p",
        compat=compat,
        methods=["DPPL", "DI", "AD", "RD", "CI", "DPL"],
    )
    assert want.to_frame().query("metric == 'DPPL'").value.abs().iloc[0] > 0.2
    for pred in (df.p.astype(str), df.p.astype(float).astype(str)):  # "1"/"0" and "1.0"/"0.0"
        got = bias.report(
            df.assign(p=pred),
            label="y",
            facet="f",
            facet_values=["b"],
            label_values=[1],
            predicted_label="p",
            compat=compat,
            methods=["DPPL", "DI", "AD", "RD", "CI", "DPL"],
        )
        pd.testing.assert_series_equal(_values(got), _values(want))
    # the same through the Accumulator, batch by batch
    acc = bias.Accumulator(
        label="y", facet="f", facet_values=["b"], label_values=["1"], predicted_label="p", compat=compat
    )
    for part in np.array_split(np.arange(len(df)), 4):
        acc.update(df.assign(p=df.p.astype(str)).iloc[part])
    pd.testing.assert_series_equal(_values(acc.report(methods=["DPPL", "DI", "AD", "RD", "CI", "DPL"])), _values(want))


@pytest.mark.parametrize("compat", ["clarion", "smclarify"])
def test_words_as_predictions_of_a_numeric_label_are_an_error(compat):
    df = _frame()
    yn = df.assign(p=np.where(df.p == 1, "y", "n"))
    with pytest.raises(
        ValueError,
        match=r"predicted_label: label_values \[1\] can never equal a value of column "
        r"'p' \(values seen: '.', '.'\)",
    ):
        bias.report(yn, label="y", facet="f", label_values=[1], predicted_label="p", compat=compat)
    acc = bias.Accumulator(label="y", facet="f", label_values=[1], predicted_label="p", compat=compat)
    with pytest.raises(ValueError, match="predicted_label: label_values"):
        acc.update(yn)


@pytest.mark.parametrize("compat", ["clarion", "smclarify"])
def test_float_label_with_text_label_values(compat):
    df = _frame().assign(y=lambda d: d.y.astype(float))
    want = bias.report(df, label="y", facet="f", label_values=[1], compat=compat, methods=["DPL", "CI"])
    assert want.to_frame().query("metric == 'DPL'").value.abs().min() > 0.1
    got = bias.report(df, label="y", facet="f", label_values=["1"], compat=compat, methods=["DPL", "CI"])
    pd.testing.assert_series_equal(_values(got), _values(want))
    assert got.label_value_or_threshold == "1"
    # DType promotion error before; now a message naming the column, the values given and seen
    with pytest.raises(
        ValueError,
        match=r"label_values: \['yes'\] can never equal a value of column 'y' "
        r"\(values seen: 1\.0, 0\.0|label_values: \['yes'\] can never equal a "
        r"value of column 'y' \(values seen: 0\.0, 1\.0",
    ):
        bias.report(df, label="y", facet="f", label_values=["yes"], compat=compat)
    with pytest.raises(ValueError, match=r"label_values: \['yes'\] can never equal"):
        bias.report(df.assign(y=df.y.astype(int)), label="y", facet="f", label_values=["yes"], compat=compat)


def test_facet_values_are_matched_by_the_same_rule():
    df = _frame().assign(k=lambda d: np.where(d.f == "a", 1, 2))
    want = bias.report(df, label="y", facet="k", facet_values=[2], label_values=[1], methods=["CI", "DPL"])
    for data, values in ((df, ["2"]), (df.assign(k=df.k.astype(str)), [2]), (df.assign(k=df.k.astype(str)), [2.0])):
        got = bias.report(data, label="y", facet="k", facet_values=values, label_values=[1], methods=["CI", "DPL"])
        assert got.to_frame().value.tolist() == want.to_frame().value.tolist()
    with pytest.raises(
        ValueError,
        match=r"facet_values: \['b'\] can never equal a value of column 'k' "
        r"\(values seen: 1, 2\)",
    ):
        bias.report(df.assign(k=df.k.astype(object)), label="y", facet="k", facet_values=["b"], label_values=[1])
    with pytest.raises(ValueError, match=r"facet_values: \['b'\] can never equal a value of column 'k' "):
        bias.report(df, label="y", facet="k", facet_values=["b"], label_values=[1])  # numpy ints
    with pytest.raises(
        ValueError,
        match=r"facet_values: value 3 does not occur in column 'k' "
        r"\(values seen: (1, 2|2, 1)\)",
    ):
        bias.report(df, label="y", facet="k", facet_values=[3], label_values=[1])


def test_predictions_in_other_words_than_the_label_are_an_error():
    df = _frame()
    text = df.assign(y=np.where(df.y == 1, "yes", "no"), p=np.where(df.p == 1, "Yes", "No"))
    with pytest.raises(
        ValueError,
        match=E.MSG_PRED_UNKNOWN.split("{")[0]
        + r"'p' predicts '(Yes|No)', '(Yes|No)', none of which is a value of the label column 'y'",
    ):
        bias.report(text, label="y", facet="f", label_values=["yes"], predicted_label="p")
    # a model that predicts one class only is fine
    ok = bias.report(
        text.assign(p="no"), label="y", facet="f", label_values=["yes"], predicted_label="p", methods=["DPPL"]
    )
    assert ok.to_frame().value.tolist() == [0.0, 0.0]


def test_absent_values_name_the_values_seen():
    df = _frame()
    # before: "values seen: of the selected values: none of them"
    with pytest.raises(
        ValueError,
        match=r"facet_values: value 'zz' does not occur in column 'f' "
        r"\(values seen: '(a|b)', '(a|b)'\)",
    ):
        bias.report(df, label="y", facet="f", facet_values=["zz"], label_values=[1])
    with pytest.raises(
        ValueError,
        match=r"label_values: value 7 does not occur in column 'y' \(values seen: "
        r"(0, 1|1, 0)\)",
    ):
        bias.report(df, label="y", facet="f", label_values=[7])
    acc = bias.Accumulator(label="y", facet="f", facet_values=["zz"], label_values=[1])
    acc.update(df.iloc[:50]).update(df.iloc[50:])
    with pytest.raises(ValueError, match=r"values seen: '(a|b)', '(a|b)'\)"):
        acc.report()


# ---- item 3: non-finite scores and missing predicted labels ------------------------------------------


@pytest.mark.parametrize("compat", ["clarion", "smclarify"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_refused(compat, bad):
    df = _frame().assign(s=lambda d: d.x.abs() / (1 + d.x.abs()))
    df.loc[17, "s"] = bad
    with pytest.raises(ValueError, match=r"predicted_label: model 's' has a (NaN|inf|-inf) score at row 17"):
        bias.report(df, label="y", facet="f", label_values=[1], predicted_label="s", compat=compat)
    with pytest.raises(ValueError, match=r"model 's' has a (NaN|inf|-inf) score at row 17"):
        bias.Accumulator(label="y", facet="f", label_values=[1], predicted_label="s", compat=compat).update(df)
    every = df.assign(s=np.nan)  # an all-NaN model gave DPPL 0.0
    with pytest.raises(ValueError, match="has a NaN score at row 0"):
        bias.report(every, label="y", facet="f", label_values=[1], predicted_label="s", compat=compat)


@pytest.mark.parametrize("compat", ["clarion", "smclarify"])
def test_missing_predicted_labels_are_refused(compat):
    df = _frame()
    p = df.p.astype(object)
    p[5] = None
    with pytest.raises(ValueError, match=r"predicted_label: model 'p' has a missing prediction .* at row 5"):
        bias.report(df.assign(p=p), label="y", facet="f", label_values=[1], predicted_label="p", compat=compat)
    lt = df.assign(p=df.x.where(df.index != 9))
    with pytest.raises(ValueError, match=r"model 'p' has a missing prediction .* at row 9"):
        bias.report(lt.assign(y=df.x), label="y", facet="f", label_threshold=0.0, predicted_label="p", compat=compat)


class _Const:
    def __init__(self, v):
        self.v = v

    def __call__(self, X):
        return np.full(len(X), self.v)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_analyze_refuses_non_finite_model_outputs(tmp_path, bad):
    df = _people()
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "methods": {"post_training_bias": {"methods": ["DPPL"]}},
    }
    with pytest.raises(
        ValueError,
        match=r"model: output 0 is (nan|inf) for data row 0 \(line/record 2 of the "
        r"input\); post-training bias needs finite model outputs",
    ):
        _analyze(tmp_path, cfg, df.drop(columns="p"), model=_Const(bad))


def test_analyze_text_label_value_on_a_numeric_label(tmp_path):
    df = _people()
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": ["yes"],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "methods": {"post_training_bias": {"methods": ["DPPL"]}},
    }
    # before: numpy's "The DType <class 'numpy.dtypes.StrDType'> could not be promoted"
    with pytest.raises(
        ValueError,
        match=r"label_values_or_threshold: \['yes'\] can never equal a value of column "
        r"'y', which holds numbers \(values seen: [01], [01]\)",
    ):
        _analyze(tmp_path, cfg, df.drop(columns="p"), model=_Const(0.7))
    cfg["label_values_or_threshold"] = [1]
    cfg["facet"] = [{"name_or_index": "age", "value_or_threshold": ["old"]}]
    with pytest.raises(
        ValueError,
        match=r"facet\[0\].value_or_threshold: \['old'\] can never equal a value of "
        r"column 'age'",
    ):
        _analyze(tmp_path, cfg, df.drop(columns="p"), model=_Const(0.7), name="o2")


# ---- item 13: a loaded accumulator state is checked, not only its digest ------------------------------


def _split(raw):
    _, version, hlen = struct.unpack_from("<8sIQ", raw)
    return version, json.loads(raw[20 : 20 + hlen]), bytearray(raw[20 + hlen : -32])


def _join(head, blob, version=2):
    h = head if isinstance(head, bytes) else json.dumps(head, sort_keys=True).encode()
    body = struct.pack("<8sIQ", MAGIC, version, len(h)) + h + bytes(blob)
    return body + hashlib.sha256(body).digest()  # the digest recomputed, as anyone who edits a state can


def _state_acc(**kw):
    df = _frame(120).assign(q=lambda d: 1 - d.p)
    args = {"label": "y", "facet": "f", "label_values": [1], "predicted_label": ["p", "q"]}
    args.update(kw)
    return bias.Accumulator(**args).update(df.iloc[:70]).update(df.iloc[70:])


def test_negative_counts_with_a_recomputed_digest_are_refused():
    acc = _state_acc(predicted_label=None)
    assert acc.report(methods=["CI"]).to_frame().value.abs().max() < 1
    version, head, blob = _split(acc.to_bytes())
    counts = np.frombuffer(bytes(blob), dtype="<i8").copy()
    # move rows from facet d to facet a through a negative cell: CI 1.04 before this fix
    v = counts.reshape(3, 1, 2)
    v[1, 0, 0] += v[2, 0, 0] + v[2, 0, 1] + 5
    v[2, 0, 0] = -5
    v[2, 0, 1] = 0
    with pytest.raises(ValueError, match="from_bytes: .*negative count"):
        bias.Accumulator.from_bytes(_join(head, v.astype("<i8").tobytes(), version))


def _edits():
    """(description, edit of (head, blob) in place, expected message)."""

    def st0(h):
        return h["windows"][0]["state"]

    def arr0(h):
        return st0(h)["arrays"][0]

    return [
        ("n_rows off by one", lambda h, b: st0(h).update(n_rows=st0(h)["n_rows"] + 1), "rows, not the state's"),
        ("n_rows negative", lambda h, b: st0(h).update(n_rows=-1), "n_rows is negative"),
        ("n_rows a string", lambda h, b: st0(h).update(n_rows="120"), "n_rows is a str, not a int"),
        ("n_rows a float", lambda h, b: st0(h).update(n_rows=120.0), "n_rows is a float"),
        ("weighted flipped", lambda h, b: st0(h).update(weighted=True), "weighted is True"),
        ("unknown key", lambda h, b: st0(h).update(extra=1), "unexpected keys \\['extra'\\]"),
        ("missing key", lambda h, b: st0(h).pop("label_vocab"), "lacks keys \\['label_vocab'\\]"),
        ("model kinds", lambda h, b: st0(h).update(model_kinds=["labels"]), "model_kinds"),
        ("duplicate vocab", lambda h, b: st0(h)["facets"][0]["vocab"].append(["s", "a"]), "lists a value twice"),
        (
            "int and float one value",
            lambda h, b: st0(h).update(label_vocab=[["i", "1"], ["f", "1.0"]]),
            "lists a value twice",
        ),
        ("nan in vocab", lambda h, b: st0(h)["facets"][0]["vocab"].append(["f", "nan"]), "missing value"),
        ("bad tag", lambda h, b: st0(h)["facets"][0]["vocab"].append(["x", "a"]), "not a tagged value"),
        ("bad int", lambda h, b: st0(h).update(label_vocab=[["i", "one"]]), "not a valid integer"),
        ("bool tag", lambda h, b: st0(h).update(label_vocab=[["b", "false"]]), "is a str, not a bool"),
        ("seen too long", lambda h, b: st0(h)["facets"][0].update(seen=[True] * 9), "seen must be at most 3"),
        ("seen not bools", lambda h, b: st0(h)["facets"][0].update(seen=[0, 1, 1]), "seen must be"),
        (
            "counts not seen",
            lambda h, b: st0(h)["facets"][0].update(seen=[False, True, False]),
            "'seen' list does not mark",
        ),
        ("col_max without threshold", lambda h, b: st0(h)["facets"][0].update(col_max=["i", "3"]), "col_max is set"),
        ("shape", lambda h, b: arr0(h).update(shape=[1, 3, 1, 4, 1]), "nbytes .* does not match|shape"),
        ("shape and nbytes", lambda h, b: arr0(h).update(shape=[3, 3, 1, 2, 2], nbytes=288), "shape"),
        ("dtype", lambda h, b: arr0(h).update(dtype="<f4"), "dtype '<f4' is not one of"),
        ("dtype object", lambda h, b: arr0(h).update(dtype="|O"), "is not one of"),
        ("float counts unweighted", lambda h, b: arr0(h).update(dtype="<f8"), "must be integers|non-finite|negative"),
        ("kind", lambda h, b: arr0(h).update(kind="pre"), "kind 'pre' is not one of"),
        ("kind scores", lambda h, b: arr0(h).update(kind="scores"), "kind 'scores' is not one of"),
        ("facet index", lambda h, b: arr0(h).update(facet=3), "facet 3 is not a facet"),
        ("facet index bool", lambda h, b: arr0(h).update(facet=True), "facet is a bool"),
        ("boot without replicates", lambda h, b: arr0(h).update(boot=True), "keeps no replicates"),
        ("offset past end", lambda h, b: arr0(h).update(offset=10_000), "runs past the end"),
        ("array twice", lambda h, b: st0(h)["arrays"].append(dict(arr0(h))), "second 'labels' table"),
        ("array dropped", lambda h, b: st0(h).update(arrays=[]), "lacks count tables"),
        ("window key", lambda h, b: h["windows"][0].update(key="2024-01-01T00:00:00"), "only key is 'all'"),
        ("window twice", lambda h, b: h["windows"].append(h["windows"][0]), "listed twice"),
        ("rows next", lambda h, b: h["rows"].update(next=5), "below rows.next"),
        ("rows ranges", lambda h, b: h["rows"].update(ranges=[[0, 50], [40, 120]]), "after the previous one"),
        ("rows ranges bad", lambda h, b: h["rows"].update(ranges=[[0]]), "not a \\[start, end\\] pair"),
        ("rows none", lambda h, b: h["rows"].update(ranges=[]), "cover 0 rows but the counts hold 120"),
        ("config key", lambda h, b: h["config"].update(labl=["s", "y"]), "unexpected keys \\['labl'\\]"),
        ("config value", lambda h, b: h["config"].update(compat=["s", "sm"]), "invalid configuration"),
        ("config type", lambda h, b: h["config"].update(n_bootstrap=["s", "3"]), "invalid configuration"),
        ("config nesting", lambda h, b: h["config"].update(label_values={"x": 1}), "invalid configuration|malformed"),
        ("header list", lambda h, b: h.clear(), "lacks keys"),
        ("counts moved between cells", lambda h, b: _move_count(b), "label totals|rows, not the state's"),
    ]


def _move_count(blob):
    a = np.frombuffer(bytes(blob[:96]), dtype="<i8").copy().reshape(1, 3, 1, 2, 2)
    a[0, 1, 0, 1, 1] += 1  # a positive label more in one cell, one fewer negative elsewhere: totals differ
    a[0, 2, 0, 0, 0] -= 1 if a[0, 2, 0, 0, 0] else -1
    blob[:96] = a.astype("<i8").tobytes()


@pytest.mark.parametrize("name", [e[0] for e in _edits()])
def test_every_invariant_of_a_loaded_state_is_checked(name):
    _, edit, msg = next(e for e in _edits() if e[0] == name)
    raw = _state_acc().to_bytes()
    bias.Accumulator.from_bytes(raw)  # the unedited state loads
    version, head, blob = _split(raw)
    edit(head, blob)
    with pytest.raises(ValueError, match="from_bytes: .*(" + msg + ")"):
        bias.Accumulator.from_bytes(_join(head, blob, version))


def test_threshold_and_window_states_are_checked_too():
    df = _frame(60).assign(age=np.arange(60), t=pd.date_range("2024-01-01", periods=60, freq="h"))
    acc = bias.Accumulator(
        label="y",
        facet="age",
        facet_threshold=30,
        label_values=[1],
        window="1D",
        time_column="t",
        n_bootstrap=4,
        seed=1,
    ).update(df)
    raw = acc.to_bytes()
    assert (
        bias.Accumulator.from_bytes(raw).report(methods=["CI"]).to_frame().equals(acc.report(methods=["CI"]).to_frame())
    )
    for edit, msg in [
        (lambda h: h["windows"][0].update(key="all"), "not a window start time"),
        (lambda h: h["windows"][0].update(key="2024-01-01"), "not a window start time"),
        (lambda h: h["windows"][0]["state"]["facets"][0]["vocab"].append(["i", "1"]), "facet has a threshold"),
        (lambda h: h["windows"][0]["state"]["facets"][0].update(col_max=["s", "x"]), "col_max is not a number"),
        (lambda h: h["windows"][0]["state"]["arrays"][1].update(shape=[3, 3, 1, 2]), "shape"),
        (lambda h: h["rows"].update(ranges=[[0, 59]]), "cover 59 rows but the counts hold 60"),
        (
            lambda h: h["windows"][0]["state"].update(
                arrays=[a for a in h["windows"][0]["state"]["arrays"] if not a["boot"]]
            ),
            "replicates are missing",
        ),
    ]:
        version, head, blob = _split(raw)
        edit(head)
        with pytest.raises(ValueError, match="from_bytes: .*" + msg):
            bias.Accumulator.from_bytes(_join(head, blob, version))


def _load_or_value_error(raw):
    try:
        acc = bias.Accumulator.from_bytes(raw)
    except ValueError:
        return
    # what loads is usable: reports and round-trips, or says what is wrong with a ValueError
    try:
        acc.report()
    except ValueError:
        pass
    assert bias.Accumulator.from_bytes(acc.to_bytes()).to_bytes() == acc.to_bytes()


def _valid_states():
    df = _frame(80).assign(
        q=lambda d: 1 - d.p,
        s=lambda d: d.x.abs() / (1 + d.x.abs()),
        w=lambda d: 1 + d.x.abs(),
        age=np.arange(80),
        t=pd.date_range("2024-01-01", periods=80, freq="h"),
        g=lambda d: np.where(d.x > 0, "u", "v"),
    )
    return [
        _state_acc().to_bytes(),
        bias.Accumulator(
            label="y",
            facet=["f", "age"],
            facet_threshold={"age": 30},
            label_values=[1],
            predicted_label=["p", "s"],
            probability_threshold=[0.3, 0.6],
            group_variable="g",
            weights="w",
        )
        .update(df)
        .to_bytes(),
        bias.Accumulator(
            label="x",
            facet="age",
            facet_threshold=30,
            label_threshold=0.0,
            predicted_label="s",
            window="1D",
            time_column="t",
            n_bootstrap=3,
            seed=5,
            compat="smclarify",
        )
        .update(df)
        .to_bytes(),
    ]


_VALIDS = _valid_states()
_VALID = _VALIDS[0]


def _mutate(obj, path, value):
    """``obj`` with the item at ``path`` (indices into nested lists/dicts, taken modulo) replaced."""
    if not path or not isinstance(obj, (dict, list)) or not obj:
        return value
    keys = sorted(obj) if isinstance(obj, dict) else list(range(len(obj)))
    k = keys[path[0] % len(keys)]
    out = dict(obj) if isinstance(obj, dict) else list(obj)
    out[k] = _mutate(obj[k], path[1:], value)
    return out


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 2), path=st.lists(st.integers(0, 50), min_size=1, max_size=7), value=_json_values)
def test_fuzz_mutated_states_load_or_raise_value_error(which, path, value):
    version, head, blob = _split(_VALIDS[which])
    _load_or_value_error(_join(_mutate(head, path, value), blob, version))


@settings(max_examples=200, deadline=None)
@given(which=st.integers(0, 2), pos=st.integers(0, 10_000), data=st.binary(min_size=1, max_size=16))
def test_fuzz_blob_bytes_load_or_raise_value_error(which, pos, data):
    version, head, blob = _split(_VALIDS[which])
    pos %= len(blob)
    blob[pos : pos + len(data)] = data[: len(blob) - pos]
    _load_or_value_error(_join(head, blob, version))


@settings(max_examples=100, deadline=None)
@given(header=st.binary(max_size=64), blob=st.binary(max_size=64), version=st.sampled_from([1, 2, 7]))
def test_fuzz_random_bytes_raise_value_error(header, blob, version):
    with pytest.raises(ValueError):
        bias.Accumulator.from_bytes(_join(header, blob, version))


@pytest.mark.parametrize("depth", [50, 5_000, 200_000])
def test_deeply_nested_headers_raise_value_error(depth):
    version, head, blob = _split(_VALID)
    nested = ("[" * depth + "]" * depth).encode()
    for h in (
        nested,
        json.dumps({**head, "windows": "X"}).replace('"X"', nested.decode()).encode(),
        json.dumps({**head, "config": {**head["config"], "label_values": "X"}})
        .replace('"X"', nested.decode())
        .encode(),
    ):
        with pytest.raises(ValueError, match="from_bytes: "):
            bias.Accumulator.from_bytes(_join(h, blob, version))


def test_a_label_threshold_above_every_label_is_an_error_like_an_absent_value():
    df = _frame().assign(score=lambda d: d.x.round(2))
    with pytest.raises(
        ValueError,
        match=r"label_threshold: no value of column 'score' is above 99 \(the largest "
        r"is [0-9.]+\), so every label would be negative",
    ):
        bias.report(df, label="score", facet="f", label_threshold=99, methods=["DPL"])
    acc = bias.Accumulator(label="score", facet="f", label_threshold=99)
    with pytest.raises(ValueError, match="label_threshold: no value of column 'score' is above 99"):
        acc.update(df).report()
    # smclarify's convention is kept under compat="smclarify"
    r = bias.report(df, label="score", facet="f", label_threshold=99, methods=["DPL"], compat="smclarify")
    assert r.to_frame().value.tolist() == [0.0, 0.0]


def test_dask_writes_the_same_interval():
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    df = _people(90)
    with dask.config.set(scheduler="synchronous"):
        r = bias.report(
            dd.from_pandas(df, npartitions=3),
            label="y",
            facet="age",
            facet_threshold=30,
            label_values=[1],
            methods=["CI"],
        )
    assert r.to_frame().value_or_threshold.tolist() == [bias.interval_string(30, 66)] == ["(30, 66]"]


def test_monitor_matches_a_threshold_entry_by_its_threshold():
    from clarion import monitor

    def doc(value, ci):
        return {
            "pre_training_bias_metrics": {
                "label": "y",
                "label_value_or_threshold": "1",
                "facets": {
                    "age": [
                        {
                            "value_or_threshold": value,
                            "metrics": [{"name": "CI", "description": "Class Imbalance (CI)", "value": ci}],
                        }
                    ]
                },
            }
        }

    # an older clarion analyze wrote "(30.0, 66.0]"; Clarify writes "(30, 66]"; new data has another maximum
    res = monitor.bias_drift(doc("(30.0, 66.0]", 0.1), doc("(30, 70]", 0.3))
    (score,) = res.scores
    assert score["status"] == "violation" and score["baseline"] == 0.1 and score["facet_value"] == "(30, 70]"
    # a different threshold is a different facet entry
    (score,) = monitor.bias_drift(doc("(40, 66]", 0.1), doc("(30, 66]", 0.3)).scores
    assert score["status"] == "unchecked"
    assert bias.entry_key("(30, 66]") == bias.entry_key("(30.0, 70.0]") == "(30, *]"
    assert bias.entry_key("female") == "female"


def test_interval_maximum_of_a_large_integer_column_is_exact():
    x = np.array([1, 2**60 + 1, 5], dtype=np.int64)
    r = bias.report(
        {"a": x, "y": np.array([1, 0, 1])}, label="y", facet="a", facet_threshold=3, label_values=[1], methods=["CI"]
    )
    assert r.to_frame().value_or_threshold.tolist() == [f"(3, {2**60 + 1}]"]


def test_monitor_windows_keep_both_entries_of_one_column(tmp_path):
    from clarion.job import analyze_windowed

    df = _people(120).assign(t=pd.date_range("2024-01-01", periods=120, freq="h").astype(str))
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "predicted_label": "p",
        "facet": [
            {"name_or_index": "age", "value_or_threshold": [40]},
            {"name_or_index": "age", "value_or_threshold": [60]},
        ],
        "methods": {"pre_training_bias": {"methods": ["CI"]}, "post_training_bias": {"methods": ["DPPL"]}},
    }
    w = analyze_windowed(cfg, data, time_column="t", window="1D", output_dir=tmp_path / "out")
    assert len(w.windows) == 5
    for doc in w.windows.values():
        for key in ("pre_training_bias_metrics", "post_training_bias_metrics"):
            values = [e["value_or_threshold"] for e in doc[key]["facets"]["age"]]
            assert len(values) == 2 and values[0].startswith("(40, ") and values[1].startswith("(60, ")
    # a window where nobody is older than 60 still names the threshold (smclarify would write "")
    assert any(
        e["value_or_threshold"] in ("(60, 60]", "(60, 59]", "(60, 58]")
        for doc in w.windows.values()
        for e in doc["pre_training_bias_metrics"]["facets"]["age"]
    )


def test_an_interval_with_nobody_above_the_threshold_still_names_it():
    assert E.interval_string(60, 60) == "(60, 60]" and E.interval_string(60, 55.0) == "(60.0, 55.0]"
    assert E.interval_string(60, 60, "smclarify") == "" and E.interval_string(60, 55, "smclarify") == "(55, 60]"
    df = _people()
    r = bias.report(df, label="y", facet="age", facet_threshold=70, label_values=[1], methods=["CI"])
    assert r.to_frame().value_or_threshold.tolist() == ["(70, 66]"]
    assert r.to_frame().error.iloc[0].startswith("facet d is empty")
    assert bias.entry_key("(70, 66]") == bias.entry_key("(70, 80]")


def test_analyze_matches_text_predictions_by_value_or_refuses_them(tmp_path):
    df = _people()
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "predicted_label": "p",
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "methods": {"post_training_bias": {"methods": ["DPPL", "AD"]}},
    }

    def run(frame, name):
        return A.analyze(cfg, frame, output_dir=tmp_path / name, progress=False).analysis

    want = run(df, "ints")["post_training_bias_metrics"]
    assert run(df.assign(p=df.p.astype(str)), "text")["post_training_bias_metrics"] == want
    with pytest.raises(
        ValueError,
        match=r"predicted_label: label_values \[1\] can never equal a value of column 'p' "
        r"\(values seen: '(y|n)', '(y|n)'\)",
    ):
        run(df.assign(p=df.p.map({1: "y", 0: "n"})), "words")


def test_analyze_interval_and_flip_test_do_not_depend_on_chunk_dtypes(tmp_path):
    df = _people(200)
    df["age"] = df["age"].astype(float)
    df.loc[150, "age"] = np.nan  # only the last chunk is float when read in chunks of 50
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False, float_format="%g")
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "predicted_label": "p",
        "facet": [{"name_or_index": "age", "value_or_threshold": [40]}],
        "methods": {"post_training_bias": {"methods": ["DPPL", "FT"]}},
    }
    docs = [
        A.analyze(cfg, data, output_dir=tmp_path / f"o{n}", progress=False, chunk_rows=n).analysis for n in (50, 1000)
    ]
    # Clarify reads the whole column: float, so "(40.0, 66.0]"
    for doc in docs:
        (entry,) = doc["post_training_bias_metrics"]["facets"]["age"]
        assert entry["value_or_threshold"] == "(40.0, 66.0]"
        assert sorted(m["name"] for m in entry["metrics"]) == ["DPPL", "FT"]
    assert docs[0] == docs[1]


def test_analyze_checks_the_outputs_the_predicted_label_reads(tmp_path):
    df = _people().drop(columns="p")
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "predictor": {"probability": 1},
        "methods": {"post_training_bias": {"methods": ["DPPL"]}},
    }

    def two(nan_col):
        def f(X):
            out = np.column_stack([np.full(len(X), 0.2), np.full(len(X), 0.7)])
            out[3, nan_col] = np.nan
            return out

        return f

    with pytest.raises(ValueError, match=r"model: output 1 is nan for data row 3 \(line/record 5 of the input\)"):
        _analyze(tmp_path, cfg, df, model=two(1))
    # an output the predicted label does not read may be anything
    doc = _analyze(tmp_path, cfg, df, model=two(0), name="o2")
    assert doc["post_training_bias_metrics"]["facets"]["g"][0]["metrics"][0]["value"] == 0.0
    cfg["predictor"] = {"label": 0}
    with pytest.raises(ValueError, match=r"model: output 0 is nan for data row 3"):
        _analyze(tmp_path, cfg, df, model=two(0), name="o3")


def test_the_matching_rule():
    from clarion.bias._encode import Matcher, number_of

    assert [number_of(v) for v in ("1", " 1.0 ", "2e3", "-.5", "1_0", "nan", "inf", "yes", True, 2.5, None)] == [
        1,
        1.0,
        2000.0,
        -0.5,
        None,
        None,
        None,
        None,
        1,
        2.5,
        None,
    ]
    m = Matcher([1])
    assert all(m.given_matching(u) == [1] for u in (1, 1.0, True, "1", "1.0", np.int64(1), np.float32(1)))
    assert not any(m.given_matching(u) for u in (0, "01x", "one", None, np.nan))
    assert Matcher(["1"]).given_matching(1.0) == ["1"] and Matcher(["yes"]).given_matching("yes") == ["yes"]
    assert Matcher(["yes"]).incomparable([0, 1]) == ["yes"] and Matcher([1]).incomparable(["y", "n"]) == [1]
    assert Matcher([1]).incomparable(["1", "0"]) == [] and Matcher([1, "yes"]).incomparable(["yes", "no"]) == []
    assert Matcher([1, "yes"]).incomparable(["yes", "no"], every=True) == [1]


# ---- same class as config items 10 / 21, at the API: bounds the config has hold at bias.report too ----


@pytest.mark.parametrize("thr", [5, -3, 1.0000001, [0.5, 2.0]])
def test_api_probability_threshold_outside_0_1_is_refused(thr):
    # config refuses probability_threshold 5 or -3; the API gave DPPL 0.0 (every score one class)
    from clarion.bias._engine import MSG_PROB_RANGE

    df = pd.DataFrame({"y": [0, 1, 0, 1], "s": [0.2, 0.9, 0.6, 0.4], "g": ["a", "a", "b", "b"]})
    with pytest.raises(ValueError, match=re.escape(MSG_PROB_RANGE.split("(")[0])):
        bias.report(
            df,
            label="y",
            facet="g",
            facet_values=["b"],
            label_values=[1],
            predicted_label="s",
            probability_threshold=thr,
            methods=["DPPL"],
        )
    with pytest.raises(ValueError, match="probability_threshold must lie in"):
        bias.Accumulator(
            label="y", facet="g", facet_values=["b"], label_values=[1], predicted_label="s", probability_threshold=thr
        ).update(df)


def test_api_n_bootstrap_has_the_config_bound():
    from clarion.bias._engine import MAX_N_BOOTSTRAP
    from clarion.config import MAX_N_BOOTSTRAP as CONFIG_MAX

    assert MAX_N_BOOTSTRAP == CONFIG_MAX
    df = pd.DataFrame({"y": [0, 1, 0, 1], "g": ["a", "a", "b", "b"]})
    with pytest.raises(ValueError, match=r"n_bootstrap must be an integer in \[1, 100,000\]"):
        bias.report(
            df,
            label="y",
            facet="g",
            facet_values=["b"],
            label_values=[1],
            methods=["CI"],
            confidence=0.95,
            n_bootstrap=10**12,
        )
    with pytest.raises(ValueError, match=r"n_bootstrap must be an integer in \[0, 100,000\]"):
        bias.Accumulator(label="y", facet="g", facet_values=["b"], label_values=[1], n_bootstrap=10**12)
