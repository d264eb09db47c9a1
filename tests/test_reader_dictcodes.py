"""Bias text columns read as dictionary codes (issue 21 part 3, ``Reader.codes``).

The reader hands the text of the requested columns over as ``pandas.Categorical`` codes into one
running vocabulary per column (first-seen order, one categories object while no value is new);
``Chunk.plain()`` must be exactly the frame the reader gives without codes, and ``clarion.analyze``
must write the same files with and without codes (``clarion.job.source.DICTIONARY_CODES``), bad
records still located by file, line and column.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion
import clarion.job.source as job_source
import clarion.report
from clarion import dataset
from clarion.bias import _encode, _engine
from clarion.dataset import DataError, read_dataset

# text a CSV field can hold: empty, NA-like words, quotes, separators, blanks, non-ASCII, numbers
TEXTS = ["a", "b", "", "NA", "nan", "None", "N/A", "x,y", 'say "hi"', " a", "b ", "é", "1", "01", "Ünï", "c"]


def _csv(rows, header) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _chunks(path, dataset_type="text/csv", **kw):
    r = read_dataset(path, dataset_type, **kw)
    try:
        return list(r), r.skipped, list(r.skipped_examples)
    except DataError as exc:
        return str(exc)


def _first_seen(frames, col):
    seen: dict = {}
    for f in frames:
        for v in f[col]:
            if isinstance(v, str):
                seen.setdefault(v, None)
    return list(seen)


def _check_codes(path, coded_cols, dataset_type="text/csv", **kw):
    """Read with and without codes: same chunks, plain() equal to the frames without codes,
    categories the values seen so far in first-seen order, one categories object while no value
    is new."""
    plain = _chunks(path, dataset_type, **kw)
    coded = _chunks(path, dataset_type, codes=tuple(coded_cols), **kw)
    if isinstance(plain, str):
        assert coded == plain
        return None
    assert coded[1:] == plain[1:]
    assert len(coded[0]) == len(plain[0])
    prev = {}
    for k, (cc, pc) in enumerate(zip(coded[0], plain[0])):
        assert cc.start == pc.start
        np.testing.assert_array_equal(cc.lines, pc.lines)
        pd.testing.assert_frame_equal(cc.plain(), pc.frame, check_exact=True)
        for c in coded_cols:
            if c not in cc.coded:
                continue
            col = cc.frame[c]
            assert isinstance(col.dtype, pd.CategoricalDtype)
            assert list(col.dtype.categories) == _first_seen([p.frame for p in plain[0][: k + 1]], c)
            if c in prev and len(col.dtype.categories) == len(prev[c].categories):
                assert col.dtype is prev[c]  # the accumulators' caches key on this object
            prev[c] = col.dtype
    return coded


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(TEXTS),
        st.sampled_from(["Y", "N"]),
        st.integers(-5, 5),
        st.sampled_from(TEXTS[:6]),
        st.sampled_from(["Y", "N"]),
    ),
    min_size=1,
    max_size=40,
)
HEADER = ["t", "y", "n", "g", "p"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, chunk_rows=st.integers(1, 9), bad_at=st.none() | st.integers(0, 39), skip=st.booleans())
def test_codes_are_the_values_as_read(tmp_path_factory, rows, chunk_rows, bad_at, skip):
    text = _csv(rows, HEADER)
    if bad_at is not None and bad_at < len(rows):  # a wrong field count: that chunk goes line by line
        lines = text.splitlines(keepends=True)
        lines[bad_at + 1] = "a,Y,1\n"
        text = "".join(lines)
    path = tmp_path_factory.mktemp("c") / "d.csv"
    path.write_text(text, encoding="utf-8")
    _check_codes(path, ["t", "y", "g", "p", "n"], chunk_rows=chunk_rows, skip_bad_rows=skip, required=("y",))


@pytest.mark.parametrize("chunk_rows", [1, 2, 5])
def test_headers_without_header_line(tmp_path, chunk_rows):
    """``headers`` given and the first line is data: that line waits for the next chunk (a text
    frame joined to pyarrow's): its values are coded like the others."""
    rows = [["b", "Y", 1, "u", "N"], ["a", "N", 2, "", "Y"], ["", "Y", 3, "v", "Y"], ["b", "N", 4, "u", "N"]]
    path = tmp_path / "d.csv"
    path.write_text(_csv(rows, HEADER).split("\n", 1)[1])
    out = _check_codes(path, ["t", "g"], chunk_rows=chunk_rows, headers=HEADER)
    assert sum(len(c.frame) for c in out[0]) == 4
    assert list(out[0][-1].frame["t"].cat.categories) == ["b", "a", ""]


def test_numeric_column_is_not_coded(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(_csv([["a", "Y", 1, "g", "N"], ["b", "N", 2, "h", "Y"]], HEADER))
    (chunk,) = read_dataset(path, "text/csv", codes=("t", "n"))
    assert list(chunk.coded) == ["t"]
    assert chunk.frame["n"].dtype == np.int64
    assert list(chunk.frame["t"].cat.categories) == ["a", "b"]


def test_parquet_text_with_nulls(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    n = 23
    rng = np.random.default_rng(1)
    t = [None if i % 7 == 3 else str(v) for i, v in enumerate(rng.choice(["a", "", "NA", "zz", "é"], n))]
    t[20:] = ["new", "new", None]  # a value first seen in the last chunk
    table = pa.table({"t": pa.array(t, pa.string()), "y": rng.integers(0, 2, n), "w": rng.random(n)})
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=5)
    out = _check_codes(path, ["t", "y"], "application/x-parquet", chunk_rows=6)
    assert all(list(c.coded) == ["t"] for c in out[0])
    last = out[0][-1].frame["t"]
    assert last.isna().sum() == 1 and list(last.cat.categories)[-1] == "new"


@pytest.mark.parametrize("index", [None, "id", "unnamed"])
@pytest.mark.parametrize("headers", [None, ["y", "s"]])
def test_parquet_stored_index_and_headers(tmp_path, index, headers):
    df = pd.DataFrame({"s": ["a", "b", None, "a", "c", ""], "y": [1, 0, 1, 1, 0, 1], "z": list("uvwxyz")})
    if index == "id":
        df.index = pd.Index([10, 11, 12, 13, 14, 15], name="id")
    elif index == "unnamed":
        df.index = [5, 6, 7, 8, 9, 4]
    path = tmp_path / "d.parquet"
    df.to_parquet(path, index=index is not None)
    out = _check_codes(path, ["s", "z"], "application/x-parquet", chunk_rows=4, headers=headers)
    assert [list(c.coded) for c in out[0]] == ([["s"]] * 2 if headers else [["s", "z"]] * 2)


def test_vocabulary_cap_gives_values_back(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "MAX_CODES", 3)
    rows = [[v, "Y", 1, "g", "N"] for v in ["a", "b", "a", "c", "d", "a", "e"]]
    path = tmp_path / "d.csv"
    path.write_text(_csv(rows, HEADER))
    out = _check_codes(path, ["t"], chunk_rows=2)
    # chunks 1-2 hold a, b, c (3 values); chunk 3 would add d: from there on, the values
    assert [list(c.coded) for c in out[0]] == [["t"], ["t"], [], []]
    assert out[0][2].frame["t"].dtype == object


# ---- the analysis job ---------------------------------------------------------------------------

BASE_CFG = {
    "dataset_type": "text/csv",
    "label": "y",
    "label_values_or_threshold": ["Y"],
    "predicted_label": "p",
    "facet": [{"name_or_index": "t", "value_or_threshold": ["a"]}, {"name_or_index": "n"}],
    "group_variable": "g",
    "methods": {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}},
}


@pytest.fixture
def no_report(monkeypatch):
    """The report files are renderings of analysis.json (compared here): not written."""
    monkeypatch.setattr(clarion.report, "write_report", lambda *a, **kw: {})


def _analyze(cfg, path, out, codes, monkeypatch, **kw):
    """(analysis.json text, other output files, skipped count, skip examples, notes) or the error
    message."""
    monkeypatch.setattr(job_source, "DICTIONARY_CODES", codes)
    try:
        res = clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True, **kw)
    except (DataError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    files = {}
    for k, p in res.paths.items():
        if k not in ("analysis", "config"):
            with open(p, "rb") as fh:
                files[k] = fh.read()
    return (out / "analysis.json").read_text(), files, res.skipped_rows, res.skipped_examples, res.notes


def _same_analysis(cfg, path, tmp, monkeypatch, **kw):
    off = _analyze(cfg, path, tmp / "off", False, monkeypatch, **kw)
    on = _analyze(cfg, path, tmp / "on", True, monkeypatch, **kw)
    assert on == off
    return on


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=rows_strategy,
    chunk_rows=st.integers(1, 12),
    group=st.booleans(),
    facet_values=st.sampled_from([["a"], ["a", ""], None]),
    skip=st.booleans(),
)
def test_analysis_identical_with_codes(
    tmp_path_factory, monkeypatch, no_report, rows, chunk_rows, group, facet_values, skip
):
    cfg = json.loads(json.dumps(BASE_CFG))
    if not group:
        del cfg["group_variable"]
    if facet_values is None:
        del cfg["facet"][0]["value_or_threshold"]
    else:
        cfg["facet"][0]["value_or_threshold"] = facet_values
    rows = [list(r) for r in rows]
    rows[len(rows) // 2][1] = ""  # a missing label: a malformed record (or a skipped one)
    path = tmp_path_factory.mktemp("a") / "d.csv"
    path.write_text(_csv(rows, HEADER), encoding="utf-8")
    _same_analysis(cfg, path, tmp_path_factory.mktemp("o"), monkeypatch, chunk_rows=chunk_rows, skip_bad_rows=skip)


def test_parquet_analysis_identical(tmp_path, monkeypatch, no_report):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    n = 500
    t = [None if i % 11 == 0 else v for i, v in enumerate(rng.choice(["a", "b", "", "NA"], n).tolist())]
    table = pa.table(
        {
            "t": pa.array(t, pa.string()),
            "y": rng.choice(["Y", "N"], n),
            "n": rng.integers(0, 4, n),
            "g": rng.choice(["u", "v", "w"], n),
            "p": rng.choice(["Y", "N"], n),
        }
    )
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=64)
    cfg = dict(BASE_CFG, dataset_type="application/x-parquet")
    out = _same_analysis(cfg, path, tmp_path, monkeypatch, chunk_rows=100)
    assert not isinstance(out, str)


def test_bias_columns_take_the_categorical_fast_path(tmp_path, monkeypatch, no_report):
    rng = np.random.default_rng(0)
    n = 3000
    rows = zip(
        rng.choice(["a", "b", "c"], n),
        rng.choice(["Y", "N"], n),
        rng.integers(0, 3, n),
        rng.choice(["g", "h"], n),
        rng.choice(["Y", "N"], n),
    )
    path = tmp_path / "d.csv"
    path.write_text(_csv(list(rows), HEADER))
    fast, hashed, inside = [], [], []
    real_update, real_fast, real_factorize = (
        clarion.bias.Accumulator.update,
        _engine.State.fast_count,
        _encode.factorize,
    )

    def spy_update(self, batch, **kw):
        inside.append(True)
        try:
            return real_update(self, batch, **kw)
        finally:
            inside.pop()

    def spy_fast(self, table, *a, **kw):
        out = real_fast(self, table, *a, **kw)
        if inside:
            fast.append(out is not None)
        return out

    def spy_factorize(col):
        dt = getattr(col, "dtype", None)
        if inside and isinstance(dt, np.dtype) and dt.kind == "O":
            hashed.append(len(col))
        return real_factorize(col)

    monkeypatch.setattr(clarion.bias.Accumulator, "update", spy_update)
    monkeypatch.setattr(_engine.State, "fast_count", spy_fast)
    monkeypatch.setattr(_encode, "factorize", spy_factorize)
    monkeypatch.setattr(job_source, "DICTIONARY_CODES", True)
    clarion.analyze(BASE_CFG, path, output_dir=tmp_path / "o", progress=False, chunk_rows=1000)
    assert fast == [True] * 6  # every update of both facets' accumulators counted in one pass
    assert hashed == []  # no text column hashed as Python strings


def test_peek_rows_typed_once(tmp_path, monkeypatch, no_report):
    path = tmp_path / "d.csv"
    path.write_text(_csv([["a", "YN"[i % 2], i % 3, "g", "NY"[i % 3 % 2]] for i in range(50)], HEADER))
    calls = []
    real = dataset.Reader._infer_types

    def spy(self, kind):
        calls.append(kind)
        return real(self, kind)

    monkeypatch.setattr(dataset.Reader, "_infer_types", spy)
    clarion.analyze(BASE_CFG, path, output_dir=tmp_path / "o", progress=False, chunk_rows=7)
    assert calls == ["text/csv"]


@pytest.mark.parametrize(
    "line, bad, message",
    [
        (4, ["a", "Y", "x", "g", "N"], "line 4, column 'n': 'x' is not a number"),
        (5, ["a", "", 1, "g", "N"], "line 5, column 'y': missing value"),
        (6, ["a", "Y", 1, "g", ""], "line 6, column 'p': missing value"),
        (3, ["a", "Y", 1], "line 3: expected 5 fields, got 3"),
    ],
)
def test_bad_record_located(tmp_path, monkeypatch, no_report, line, bad, message):
    rows = [["ab"[i % 3 % 2], "YN"[i % 2], i % 3, "gh"[i % 4 % 2], "NY"[i % 3 % 2]] for i in range(30)]
    rows[line - 2] = bad
    path = tmp_path / "d.csv"
    path.write_text(_csv(rows, HEADER))
    for codes in (True, False):
        monkeypatch.setattr(job_source, "DICTIONARY_CODES", codes)
        with pytest.raises(DataError) as err:
            clarion.analyze(BASE_CFG, path, output_dir=tmp_path / f"o{codes}", progress=False, chunk_rows=4)
        assert str(err.value) == f"{path}: {message}"
    out = _same_analysis(BASE_CFG, path, tmp_path, monkeypatch, chunk_rows=4, skip_bad_rows=True)
    assert out[2] == 1


def test_model_shap_pdp_flip_test_identical(tmp_path, monkeypatch, no_report):
    """A scikit-learn pipeline (one-hot encoding of the coded text columns) gets the values as
    read: predictions, SHAP values, PDP and FlipTest are the same with codes."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(5)
    n = 300
    df = pd.DataFrame(
        {
            "t": rng.choice(["a", "b", "", "NA"], n),
            "n": rng.integers(0, 5, n),
            "g": rng.choice(["u", "v"], n),
            "y": rng.choice(["Y", "N"], n),
        }
    )
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), ["t", "g"])], remainder="passthrough"
                ),
            ),
            ("clf", LogisticRegression(max_iter=200)),
        ]
    ).fit(df[["t", "n", "g"]], df["y"])
    path = tmp_path / "d.csv"
    df[["t", "n", "g", "y"]].to_csv(path, index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": ["Y"],
        "facet": [{"name_or_index": "t", "value_or_threshold": ["a"]}],
        "group_variable": "g",
        "methods": {
            "pre_training_bias": {"methods": "all"},
            "post_training_bias": {"methods": "all"},
            "shap": {"num_clusters": 3, "num_samples": 20, "seed": 0, "save_local_shap_values": True},
            "pdp": {"top_k_features": 2, "grid_resolution": 4},
        },
        "predictor": {"probability": 1, "label_headers": ["Y"]},
    }
    seen = []
    real = model.predict_proba

    def predict_proba(X):
        seen.append({c: X[c].dtype for c in X.columns})
        return real(X)

    model.predict_proba = predict_proba
    out = _same_analysis(cfg, path, tmp_path, monkeypatch, model=model, chunk_rows=64)
    assert not isinstance(out, str) and "local_shap" in out[1]
    assert seen and all(d["t"].kind == "O" and d["g"].kind == "O" for d in seen)  # the model never sees codes


def test_windowed_analysis_identical(tmp_path, monkeypatch, no_report):
    from clarion.job import analyze_windowed

    rng = np.random.default_rng(7)
    n = 200
    df = pd.DataFrame(
        {
            "t": rng.choice(["a", "b", "", "NA"], n),
            "y": rng.choice(["Y", "N"], n),
            "n": rng.integers(0, 3, n),
            "g": rng.choice(["u", "v"], n),
            "p": rng.choice(["Y", "N"], n),
            "ts": pd.date_range("2026-01-01", periods=n, freq="7h").astype(str),
        }
    )
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    docs = {}
    for codes in (False, True):
        monkeypatch.setattr(job_source, "DICTIONARY_CODES", codes)
        w = analyze_windowed(
            BASE_CFG, path, time_column="ts", window="1W", output_dir=tmp_path / f"o{codes}", chunk_rows=33
        )
        docs[codes] = json.dumps([w.result.analysis, w.windows, w.n_rows], sort_keys=True)
    assert docs[True] == docs[False]
    assert len(json.loads(docs[True])[1]) > 2
