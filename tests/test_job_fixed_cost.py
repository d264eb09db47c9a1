"""The job's fixed cost (issue 21 part 3): every shortcut compared with the way it replaces.

* ``analysis.json``'s text, made in one pass (``clarion.report._indented_json``), is
  ``json.dumps(json_document(doc), indent=2, allow_nan=False)`` byte for byte on generated
  documents (nested dicts, lists, tuples, NaN / ±inf / -0.0, numpy scalars, keys that are not
  strings, unicode); what it does not take (an object JSON cannot hold, a cycle, deep nesting)
  raises exactly the standard way's error.
* The type sample: a compiled CSV block typed on its columns' distinct values, a Parquet file on
  its Arrow columns, and the whole-sample rule's faster patterns give the types (and column
  names) that the frames and the value-by-value rule give.
* The chunk frames (built from arrays, not Series), the vocabulary's kept blocks and the first
  rows the job decides on (column by column) equal what the general way builds.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion
import clarion.report
from clarion import dataset
from clarion.dataset import decode_codes, decode_column, read_dataset
from clarion.report import json_document, write_analysis_json

# ---- analysis.json's writer -------------------------------------------------------------------


def _reference_text(doc):
    return json.dumps(json_document(doc), indent=2, allow_nan=False)


_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-320, 1.5e300, -2.5, 0.1]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    _floats,
    st.text(max_size=8),
    st.sampled_from(["Infinity", '"q"', "\\", "\x00\x1f", "é\u2028", "😀"]),
    _floats.map(np.float64),
    st.floats(width=32, allow_nan=True).map(np.float32),
    st.integers(-(2**62), 2**62).map(np.int64),
    st.booleans().map(np.bool_),
)
_keys = st.one_of(
    st.text(max_size=5),
    st.integers(-3, 3),
    st.sampled_from([1.5, True, False, None, "1", "True", "None", "1.5"]),
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_keys, inner, max_size=4),
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents)
def test_json_text_equals_the_standard_indented_encoder(doc):
    assert clarion.report._indented_json(doc) == _reference_text(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(max_size=6), _documents, max_size=5))
def test_write_analysis_json_writes_and_returns_the_standard_document(tmp_path, doc):
    path = tmp_path / "analysis.json"
    got = write_analysis_json(path, doc)
    text = _reference_text(doc) + "\n"
    assert path.read_bytes() == text.encode("utf-8")
    assert json.dumps(got) == json.dumps(json.loads(text))  # (NaN-free: equal as JSON text)


def test_json_known_answers():
    doc = {
        "a": [1, 2.5, float("nan"), float("inf"), -math.inf, None, True],
        2: (np.float64(0.25), np.int64(7), np.bool_(False)),
        "e": {},
        "l": [],
        "t": (),
        "s": 'q"\\é',
    }
    assert clarion.report._indented_json(doc) == (
        "{\n"
        '  "a": [\n    1,\n    2.5,\n    null,\n    "Infinity",\n    "-Infinity",\n    null,\n    true\n  ],\n'
        '  "2": [\n    0.25,\n    7,\n    false\n  ],\n'
        '  "e": {},\n  "l": [],\n  "t": [],\n'
        '  "s": "q\\"\\\\\\u00e9"\n'
        "}"
    )
    # keys that are one string after str(): the later value, at the first key's place (as json_document)
    assert clarion.report._indented_json({1: "a", "x": 0, "1": "b"}) == _reference_text({1: "a", "x": 0, "1": "b"})
    assert '"1": "b"' in clarion.report._indented_json({1: "a", "1": "b"})


class _Odd:
    pass


class _BadItem:
    def item(self):
        raise RuntimeError("no item")


class _Str(str):
    pass


class _Float(float):
    pass


@pytest.mark.parametrize(
    "doc",
    [
        {"x": _Odd()},
        {"x": [1, {2, 3}]},
        {"x": b"bytes"},
        {"x": np.array([1.0, 2.0])},  # .item() of two values: numpy's ValueError
        {"x": _BadItem(), "y": _Odd()},  # json_document's error comes first
        {"x": [_Odd(), _BadItem()]},
    ],
)
def test_json_errors_are_the_standard_ones(tmp_path, doc):
    with pytest.raises(Exception) as want:  # (the standard way's error, whatever it is)
        _reference_text(doc)
    with pytest.raises(type(want.value)) as got:
        write_analysis_json(tmp_path / "a.json", doc)
    assert str(got.value) == str(want.value)
    assert not (tmp_path / "a.json").exists()


def test_json_cycles_and_deep_nesting_go_the_standard_way(tmp_path):
    loop: dict = {"a": 1}
    loop["self"] = loop
    with pytest.raises(RecursionError):
        write_analysis_json(tmp_path / "a.json", loop)
    deep: list = [1.5]
    for _ in range(120):  # beyond the one-pass writer's depth: the standard writer's text
        deep = [deep, {"k": float("nan")}]
    write_analysis_json(tmp_path / "d.json", {"deep": deep})
    assert (tmp_path / "d.json").read_text() == _reference_text({"deep": deep}) + "\n"


def test_json_subclasses_and_numpy_scalars():
    doc = {_Str("k"): [_Str("v"), _Float(2.5), _Float("nan"), np.float32(0.1), np.uint64(2**63)]}
    doc["0-d"] = [np.array(1.5, dtype=object), np.array(2), np.array([[3.0]])]
    assert clarion.report._indented_json(doc) == _reference_text(doc)


def test_analyze_writes_the_standard_analysis_json(tmp_path, monkeypatch):
    """The job's analysis.json with the one-pass writer equals the standard writer's, byte for byte."""
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "sex": rng.choice(["F", "M"], n),
            "region": rng.choice(list("ABCD"), n),
            "y": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "predicted_label": "pred",
        "facet": [
            {"name_or_index": "sex", "value_or_threshold": ["F"]},
            {"name_or_index": "age", "value_or_threshold": [40]},
        ],
        "group_variable": "region",
        "methods": {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}},
    }
    texts = []
    for fast in (True, False):
        if not fast:

            def refuse(obj):
                raise clarion.report._NotFast

            monkeypatch.setattr(clarion.report, "_indented_json", refuse)
        res = clarion.analyze(cfg, tmp_path / "d.csv", output_dir=tmp_path / f"o{fast}", progress=False)
        texts.append((tmp_path / f"o{fast}" / "analysis.json").read_bytes())
        assert json.dumps(res.analysis, sort_keys=True) == json.dumps(json.loads(texts[-1]), sort_keys=True)
    assert texts[0] == texts[1]


# ---- the type sample --------------------------------------------------------------------------

# the whole-sample rule as it was (one look-ahead pattern per value, a pattern for words)
_OLD_WORDS = re.compile(r"(?![\s\S]*[iI][nN][fF])[^0-9]*")
_OLD_DECIMALS = re.compile(
    r"(?:(?=-?(?:[0-9]\.?){1,15}(?:\n|\Z))-?[0-9]+(?:\.[0-9]+)?)(?:\n(?=-?(?:[0-9]\.?){1,15}(?:\n|\Z))-?[0-9]+(?:\.[0-9]+)?)*"
)
_OLD_FRACTION = re.compile(r"\.[0-9]*[1-9]")


def _old_sample_kind(values):
    if set(map(type, values)) - {str}:
        return None
    nonempty = list(filter(str.strip, values))
    if not nonempty:
        return "text"
    joined = "\n".join(nonempty)
    if joined.count("\n") == len(nonempty) - 1:
        if len(nonempty) > 1 and joined.isascii() and _OLD_WORDS.fullmatch(joined) is not None:
            return "text"
        if _OLD_DECIMALS.fullmatch(joined) is not None:
            return "float" if _OLD_FRACTION.search(joined) is not None else "int"
    return dataset._sample_kind_each(nonempty)


_digits = st.text("0123456789", min_size=1, max_size=17)
_sample_value = st.one_of(
    _digits,
    st.builds(lambda d: "-" + d, _digits),
    st.builds(lambda a, b: f"{a}.{b}", _digits, _digits),
    st.sampled_from(["F", "M", "inf", "xINFy", "Info", "nan", "é", " ", "", "a\nb", "1\n2", "1.", ".5", "1e5", "٣"]),
    st.text(max_size=5),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_sample_value, max_size=30))
def test_sample_kind_equals_the_former_patterns(values):
    assert dataset._sample_kind(np.array(values, dtype=object)) == _old_sample_kind(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(_sample_value, min_size=1, max_size=30))
def test_sample_kind_on_distinct_values_equals_on_every_value(values):
    """A coded block (the compiled parser's codes and distinct values): decided on the distinct
    values where the whole-sample rule decides, else left to the rule on every value."""
    distinct = list(dict.fromkeys(values))
    codes = np.array([distinct.index(v) for v in values], dtype=np.int32)
    got = dataset._sample_kind_coded(dataset._CodedText(codes, distinct))
    want = dataset._sample_kind(np.array(values, dtype=object))
    assert got is None or got == want


def _sampled(path, kind, monkeypatch, headers=None):
    out = {}
    for fast in (True, False):
        monkeypatch.setattr(dataset, "_FAST_SAMPLE", fast)
        r = read_dataset(path, kind, headers=headers)
        try:
            out[fast] = (r._infer_types(kind), r._names)
        except Exception as exc:  # noqa: BLE001 - the same error both ways
            out[fast] = (type(exc), str(exc))
    return out[True], out[False]


_csv_column = st.one_of(
    st.lists(st.sampled_from(["1", "22", "-3", "4.50", "0.0", "1234567890123456", "7"]), min_size=1, max_size=40),
    st.lists(st.sampled_from(["F", "M", "north", "inf", "x y", "", " "]), min_size=1, max_size=40),
    st.lists(st.sampled_from(["1", "F", "", "2.5", "nan", "1e3"]), min_size=1, max_size=40),
    st.lists(st.just("only"), min_size=1, max_size=3),
    st.lists(st.just("5"), min_size=1, max_size=3),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_csv_column, min_size=1, max_size=4))
def test_csv_sample_types_fast_equal_frames(tmp_path_factory, monkeypatch, cols):
    n = max(len(c) for c in cols)
    lines = ["c" + ",c".join(str(j) for j in range(1, len(cols))) if len(cols) > 1 else "c"]
    lines[0] = ",".join(f"c{j}" for j in range(len(cols)))
    for i in range(n):
        lines.append(",".join(c[i % len(c)] for c in cols))
    path = tmp_path_factory.mktemp("s") / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    fast, slow = _sampled(path, "text/csv", monkeypatch)
    assert fast == slow


def _parquet_cases():
    n = 50
    rng = np.random.default_rng(0)
    words = rng.choice(["F", "M", " ", ""], n)
    return {
        "plain": pa.table(
            {
                "i8": pa.array(rng.integers(-5, 5, n), pa.int8()),
                "u64": pa.array(rng.integers(0, 2**40, n).astype(np.uint64), pa.uint64()),
                "u32": pa.array(rng.integers(0, 9, n).astype(np.uint32), pa.uint32()),
                "f16": pa.array(rng.random(n).astype(np.float16), pa.float16()),
                "f32": pa.array(rng.random(n).astype(np.float32), pa.float32()),
                "b": pa.array(rng.random(n) < 0.5),
                "s": pa.array(words),
                "ls": pa.array(words, pa.large_string()),
                "nums": pa.array([str(v) for v in rng.integers(0, 99, n)]),
                "decs": pa.array([f"{v:.2f}" for v in rng.normal(0, 9, n)]),
                "two": pa.array(["solo"] * 2 + [" "] * (n - 2)),
            }
        ),
        "undecided": pa.table(
            {
                "mixed": pa.array(["1"] * (n - 1) + ["x"]),
                "one": pa.array(["solo"] + [""] * (n - 1)),  # (one word once: the rule value by value)
                "x": pa.array(np.arange(n)),
            }
        ),
        "nulls": pa.table(
            {"i": pa.array([1, None, 3]), "s": pa.array(["a", None, "b"]), "b": pa.array([True, None, False])}
        ),
        "others": pa.table(
            {
                "t": pa.array(pd.date_range("2024-01-01", periods=3)),
                "d": pa.array(["a", "b", "a"]).dictionary_encode(),
                "x": pa.array([1, 2, 3]),
            }
        ),
        "empty": pa.table({"x": pa.array([], pa.int64()), "s": pa.array([], pa.string())}),
    }


@pytest.mark.parametrize("case", ["plain", "undecided", "nulls", "others", "empty"])
def test_parquet_sample_types_fast_equal_frames(tmp_path, monkeypatch, case):
    table = _parquet_cases()[case]
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=7)  # (the first rows in several batches)
    fast, slow = _sampled(path, "application/x-parquet", monkeypatch)
    assert fast == slow
    assert (dataset._parquet_sample_kinds(str(path)) is not None) == (case == "plain")  # (decided from Arrow)
    if case in ("plain", "nulls"):  # the same file written by pandas (its metadata)
        frame = table.to_pandas()
        frame.to_parquet(tmp_path / "p.parquet", index=False)
        assert (dataset._parquet_sample_kinds(str(tmp_path / "p.parquet")) is not None) == (case == "plain")
        assert (
            _sampled(tmp_path / "p.parquet", "application/x-parquet", monkeypatch)[0]
            == _sampled(tmp_path / "p.parquet", "application/x-parquet", monkeypatch)[1]
        )
        frame.index = pd.Index([f"r{i}" for i in range(len(frame))], name="key")  # a stored index
        frame.to_parquet(tmp_path / "i.parquet")
        fast, slow = _sampled(tmp_path / "i.parquet", "application/x-parquet", monkeypatch)
        assert fast == slow
        fast, slow = _sampled(
            tmp_path / "d.parquet", "application/x-parquet", monkeypatch, headers=list(table.column_names)[:2]
        )
        assert fast == slow


def test_parquet_sample_of_many_rows(tmp_path, monkeypatch):
    """More rows than the sample, in small row groups: the first TYPE_SAMPLE_ROWS decide."""
    n = dataset.TYPE_SAMPLE_ROWS + 300
    vals = ["1"] * n
    vals[dataset.TYPE_SAMPLE_ROWS + 5] = "word"  # (after the sample: not seen)
    table = pa.table({"a": pa.array(vals), "b": pa.array(np.arange(n))})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=333)
    fast, slow = _sampled(tmp_path / "d.parquet", "application/x-parquet", monkeypatch)
    assert fast == slow == ({"a": "int", "b": "int"}, ["a", "b"])


# ---- chunk frames, vocabularies, the first rows -----------------------------------------------


def _reference_build(pending, vocabs):
    """``_PendingFrame.build`` as it was: every column a Series."""
    cols = {}
    for c, v in pending.cols.items():
        if type(v) is dataset._CodedText:
            if c in vocabs:
                cols[c] = pd.Series(v.categorical(), copy=False)
                continue
            v = v.array()
        elif not isinstance(v, np.ndarray):
            if c in vocabs:
                cols[c] = pd.Series(dataset._text_categorical(v), copy=False)
                continue
            v = v.to_numpy(zero_copy_only=False)
        v = dataset._writable(v)
        cols[c] = pd.Series(v, dtype=object if v.dtype == object else v.dtype, copy=False)
    return pd.DataFrame(cols, copy=False)


@pytest.mark.parametrize("with_text", [False, True])
def test_pending_frame_build_equals_series_build(with_text):
    n = 40
    rng = np.random.default_rng(1)
    words = ["F", "M", "x"]
    codes = rng.integers(0, 3, n).astype(np.int32)
    cols = {
        "i": rng.integers(0, 9, n),
        "f": rng.random(n),
        "c": dataset._CodedText(codes, words),
        "a": pa.chunked_array([pa.array(rng.choice(words, n))]),
    }
    if with_text:
        cols["t"] = np.array(rng.choice(words, n), dtype=object)
        cols["u"] = dataset._CodedText(codes, words)  # (not coded: its values)
    vocabs = {"c": None, "a": None}
    got = dataset._PendingFrame(cols, n).build(vocabs)
    want = _reference_build(dataset._PendingFrame(cols, n), vocabs)
    pd.testing.assert_frame_equal(got, want)
    assert list(got.dtypes) == list(want.dtypes)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_chunks_equal_without_the_kept_blocks(tmp_path, monkeypatch, kind):
    """The vocabulary returning a block as it is (identity remap) gives the chunks of a fresh
    Categorical for every block: frames, dtypes, categories and ``coded``."""
    rng = np.random.default_rng(2)
    n = 2500
    frame = pd.DataFrame(
        {
            "sex": np.where(np.arange(n) < 1200, rng.choice(["F", "M"], n), rng.choice(["M", "F", "X"], n)),
            "y": rng.integers(0, 2, n),
            "region": rng.choice(list("AB"), n),
        }
    )
    if kind == "csv":
        path, dtype = tmp_path / "d.csv", "text/csv"
        frame.to_csv(path, index=False)
    else:
        path, dtype = tmp_path / "d.parquet", "application/x-parquet"
        frame.to_parquet(path, index=False, row_group_size=500)

    def chunks():
        r = read_dataset(path, dtype, chunk_rows=500)
        r.codes = ("sex", "region", "y")
        return list(r)

    fast = chunks()
    real = dataset._Vocabulary.categorical
    monkeypatch.setattr(
        dataset._Vocabulary, "categorical", lambda self, local, values, given=None: real(self, local, values)
    )
    slow = chunks()
    assert len(fast) == len(slow) == 5
    for a, b in zip(fast, slow):
        pd.testing.assert_frame_equal(a.frame, b.frame)
        assert a.coded == b.coded and a.start == b.start
        np.testing.assert_array_equal(a.lines, b.lines)
        for c in a.coded:
            assert list(a.frame[c].cat.categories) == list(b.frame[c].cat.categories)
            assert a.frame[c].array.codes.dtype == b.frame[c].array.codes.dtype


def test_decode_column_equals_decode_codes():
    cat = pd.Categorical.from_codes(np.array([0, 1, -1, 1], dtype=np.int8), categories=["a", "b"])
    frame = pd.DataFrame({"c": cat, "n": [1, 2, 3, 4]})
    coded = {"c": np.dtype(object)}
    whole = decode_codes(frame, coded)
    for name in frame.columns:
        pd.testing.assert_series_equal(decode_column(frame[name], coded.get(name)), whole[name])
    part = frame.iloc[:3]
    pd.testing.assert_series_equal(decode_column(part["c"], coded["c"]), decode_codes(part, coded)["c"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_job_decides_alike_on_one_chunk_and_several(tmp_path, fmt):
    """The first rows decided on column by column (one chunk) or as a frame (several chunks): the
    same analysis.json (label values, thresholds, negative label)."""
    rng = np.random.default_rng(4)
    n = 1500
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "sex": rng.choice(["F", "M", "X"], n),
            "y": rng.choice(["yes", "no"], n),
            "pred": rng.choice(["yes", "no"], n),
        }
    )
    path = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    cfg = {
        "dataset_type": "text/csv" if fmt == "csv" else "application/x-parquet",
        "label": "y",
        "label_values_or_threshold": ["yes"],
        "predicted_label": "pred",
        "facet": [
            {"name_or_index": "sex", "value_or_threshold": ["F"]},
            {"name_or_index": "age", "value_or_threshold": [50]},
        ],
        "methods": {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}},
    }
    docs = []
    for chunk_rows in (5000, 400):
        out = tmp_path / f"o{chunk_rows}"
        clarion.analyze(cfg, path, output_dir=out, progress=False, chunk_rows=chunk_rows)
        docs.append((out / "analysis.json").read_bytes())
    assert docs[0] == docs[1]


def test_csv_sample_decided_on_distinct_values(tmp_path, monkeypatch):
    """A plain CSV sample (one compiled block) is typed without building its frame."""
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame(
        {
            "i": rng.integers(-50, 50, n),
            "f": rng.normal(0, 9, n).round(3),
            "w": rng.choice(["F", "M", "north"], n),
            "z": np.zeros(n, dtype=int),
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    seen = []
    real = dataset._coded_sample_kinds
    monkeypatch.setattr(dataset, "_coded_sample_kinds", lambda frames: seen.append(real(frames)) or seen[-1])
    fast, slow = _sampled(tmp_path / "d.csv", "text/csv", monkeypatch)
    assert fast == slow == ({"i": "int", "f": "float", "z": "int"}, ["i", "f", "w", "z"])
    assert seen == [{"i": "int", "f": "float", "w": "text", "z": "int"}]


# ---- one report per facet ---------------------------------------------------------------------

_POST = ["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "CDDPL", "TE", "GE"]


@pytest.mark.parametrize(
    ("methods", "combined"),
    [
        ({"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": _POST}}, True),
        ({"pre_training_bias": {"methods": ["KL", "CI"]}, "post_training_bias": {"methods": ["DI", "AD"]}}, True),
        ({"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}}, True),  # (FT on rows)
        (
            {
                "pre_training_bias": {"methods": ["CI"], "confidence": 0.9, "n_bootstrap": 200},
                "post_training_bias": {"methods": ["DPPL"], "confidence": 0.9, "n_bootstrap": 200},
            },
            True,
        ),
        (
            {
                "pre_training_bias": {"methods": ["CI"], "confidence": 0.9, "n_bootstrap": 200},
                "post_training_bias": {"methods": ["DPPL"]},
            },
            False,
        ),
        ({"pre_training_bias": {"methods": "all"}}, False),
        ({"post_training_bias": {"methods": ["FT", "DI"]}}, False),
    ],
)
def test_one_report_per_facet_writes_the_same_analysis_json(tmp_path, monkeypatch, methods, combined):
    import clarion.job.run as job_run
    from clarion.bias import Accumulator

    rng = np.random.default_rng(6)
    n = 400
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50, 10, n).round(2),
            "sex": rng.choice(["F", "M", "X"], n),
            "region": rng.choice(list("ABC"), n),
            "y": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "predicted_label": "pred",
        "facet": [
            {"name_or_index": "sex", "value_or_threshold": ["F", "X"]},
            {"name_or_index": "age", "value_or_threshold": [55]},
            {"name_or_index": "sex"},
        ],
        "group_variable": "region",
        "methods": methods,
    }
    stages = []
    real = Accumulator.report
    monkeypatch.setattr(
        Accumulator, "report", lambda self, *a, **kw: stages.append(kw.get("stage")) or real(self, *a, **kw)
    )
    texts = []
    for one in (True, False):
        monkeypatch.setattr(job_run, "ONE_REPORT_PER_FACET", one)
        stages.clear()
        clarion.analyze(cfg, tmp_path / "d.csv", output_dir=tmp_path / f"o{one}", progress=False)
        texts.append((tmp_path / f"o{one}" / "analysis.json").read_bytes())
        if one:
            assert ("both" in stages) == combined
            if combined:
                assert stages == ["both"] * 3  # (one report per facet)
    assert texts[0] == texts[1]


# ---- the previous run's files -----------------------------------------------------------------


def _old_previous_image_files(output_dir):
    import os

    try:
        with open(os.path.join(output_dir, "analysis.json"), encoding="utf-8") as fh:
            images = json.load(fh)["explanations"]["image_shap"]["images"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return []
    out = []
    for entry in images if isinstance(images, list) else []:
        if not isinstance(entry, dict):
            continue
        maps = entry.get("heatmaps")
        names = [h.get("file") for h in maps if isinstance(h, dict)] if isinstance(maps, list) else []
        names.append(entry.get("objects_file"))
        out += [n for n in names if isinstance(n, str) and n and n == os.path.basename(n) and n not in (".", "..")]
    return out


_IMAGES = '{"images": [{"heatmaps": [{"file": "shap_0.jpeg"}], "objects_file": "boxes_0.jpeg"}]}'


@pytest.mark.parametrize(
    "text",
    [
        None,
        '{"explanations": {"image_shap": ' + _IMAGES + "}}",
        '{"explanations": {"image\\u005fshap": ' + _IMAGES + "}}",  # (an escaped key)
        '{"explanations": {"kernel_shap": {}}, "note": "a \\"quote\\""}',
        '{"version": "1.0"}',
        "\ufeff" + '{"explanations": {"image_shap": ' + _IMAGES + "}}",
        "not json",
        '{"explanations": {"image_shap": ' + _IMAGES + "}",
        "",
    ],
)
def test_previous_image_files_as_before(tmp_path, text):
    from clarion.job.outputs import _previous_image_files

    if text is not None:
        (tmp_path / "analysis.json").write_bytes(text.encode("utf-8"))
    assert _previous_image_files(str(tmp_path)) == _old_previous_image_files(str(tmp_path))
    if text is not None and text.startswith('{"explanations": {"image') and text.endswith("}}}"):
        assert _previous_image_files(str(tmp_path)) == ["shap_0.jpeg", "boxes_0.jpeg"]


# ---- one PerformanceAccumulator for the facets ------------------------------------------------


@pytest.mark.parametrize(
    ("facets", "shared", "extra"),
    [
        (
            [
                {"name_or_index": "sex", "value_or_threshold": ["F", "X"]},
                {"name_or_index": "age", "value_or_threshold": [55]},
                {"name_or_index": "region"},
            ],
            True,
            {},
        ),
        (
            [
                {"name_or_index": "sex", "value_or_threshold": ["F"]},
                {"name_or_index": "age", "value_or_threshold": [40]},
            ],
            True,
            {"label_values_or_threshold": [0]},
        ),
        (
            [
                {"name_or_index": "age", "value_or_threshold": [30]},
                {"name_or_index": "age", "value_or_threshold": [60]},
            ],
            False,  # (one column twice: one accumulator each)
            {},
        ),
        ([{"name_or_index": "sex", "value_or_threshold": ["M"]}], False, {}),
        (
            [
                {"name_or_index": "sex", "value_or_threshold": ["F"]},
                {"name_or_index": "region", "value_or_threshold": ["A"]},
            ],
            True,
            {"weights": "w"},
        ),
    ],
)
def test_one_performance_accumulator_writes_the_same_analysis_json(tmp_path, monkeypatch, facets, shared, extra):
    import clarion.job.run as job_run
    from clarion.bias import PerformanceAccumulator

    rng = np.random.default_rng(7)
    n = 700
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "sex": rng.choice(["F", "M", "X"], n),
            "region": rng.choice(list("ABC"), n),
            "w": rng.random(n).round(3) + 0.1,
            "y": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "predicted_label": "pred",
        "facet": facets,
        "group_variable": "region" if all(f["name_or_index"] != "region" for f in facets) else None,
        "methods": {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": _POST}},
        **extra,
    }
    built = []
    real = PerformanceAccumulator.__init__

    def spy(self, **kw):
        built.append(kw["facet"])
        real(self, **kw)

    monkeypatch.setattr(PerformanceAccumulator, "__init__", spy)
    texts = []
    for one in (True, False):
        monkeypatch.setattr(job_run, "ONE_PERFORMANCE_ACCUMULATOR", one)
        built.clear()
        clarion.analyze(cfg, tmp_path / "d.csv", output_dir=tmp_path / f"o{one}", progress=False, chunk_rows=300)
        texts.append((tmp_path / f"o{one}" / "analysis.json").read_bytes())
        if one:
            assert (len(built) == 1 and isinstance(built[0], list)) == shared
    assert texts[0] == texts[1]
    doc = json.loads(texts[0])
    for key in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        for entries in doc[key]["facets"].values():  # (the group statistics are there)
            assert all(e["group_statistics"]["facet_d"]["rows"] > 0 for e in entries)
