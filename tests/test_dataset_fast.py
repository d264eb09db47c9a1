"""clarion.dataset's CSV fast path (pyarrow, chunk at a time) against its line-by-line path.

The fast path must give exactly what the line-by-line ``csv`` path gives: the same frames (values,
dtypes, line numbers), the same chunk boundaries, and for malformed records the same error
message or the same skip count and examples.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import dataset
from clarion.dataset import DataError, read_dataset


# The CSV reader as it was before the fast path (line by line with the csv module), verbatim: the
# oracle both paths must match.
def _csv_before(self):
    import csv

    import pandas as pd

    with open(self.path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        first = next(reader, None)
        while first is not None and not first:
            first = next(reader, None)
        if first is None:
            raise DataError(f"{self.path}: empty file")
        if self.headers is None:
            names, pending = [f.strip() for f in first], None
        elif [f.strip() for f in first] == list(self.headers):
            names, pending = list(self.headers), None
        else:
            names, pending = list(self.headers), (first, reader.line_num)
        if len(set(names)) != len(names):
            raise DataError(f"{self.path}: duplicate column names in the header")
        n = len(names)
        rows: list[list[str]] = []
        lines: list[int] = []

        def records():
            if pending is not None:
                yield pending
            for fields in reader:
                yield fields, reader.line_num

        for fields, lineno in records():
            if not fields:
                continue
            if len(fields) != n:
                self._bad(f"line {lineno}", f"expected {n} fields, got {len(fields)}")
                continue
            rows.append(fields)
            lines.append(lineno)
            if len(rows) >= self.chunk_rows:
                yield pd.DataFrame(rows, columns=names, dtype=object), np.asarray(lines, dtype=np.int64)
                rows, lines = [], []
        if rows:
            yield pd.DataFrame(rows, columns=names, dtype=object), np.asarray(lines, dtype=np.int64)


def _outcome(path, path_kind, monkeypatch, **kw):
    """(chunks as (frame, start, lines), skipped, examples) or the DataError message."""
    with monkeypatch.context() as m:
        if path_kind == "fallback":
            m.setattr(dataset.Reader, "_csv_fast", lambda self, src, names, need: None)
        elif path_kind == "before":
            m.setattr(dataset.Reader, "_csv", _csv_before)
        r = read_dataset(path, "text/csv", **kw)
        try:
            chunks = [(c.frame, c.start, c.lines) for c in r]
        except DataError as exc:
            return str(exc)
        return chunks, r.skipped, list(r.skipped_examples)


def _assert_same(path, monkeypatch, **kw):
    fast = _outcome(path, "fast", monkeypatch, **kw)
    _assert_equal(_outcome(path, "fallback", monkeypatch, **kw), fast)
    _assert_equal(_outcome(path, "before", monkeypatch, **kw), fast)
    return fast


def _assert_equal(slow, fast):
    if isinstance(slow, str) or isinstance(fast, str):
        assert fast == slow
        return fast
    assert fast[1:] == slow[1:]
    assert len(fast[0]) == len(slow[0])
    for (ff, fs, fl), (sf, ss, sl) in zip(fast[0], slow[0]):
        assert fs == ss
        np.testing.assert_array_equal(fl, sl)
        assert fl.dtype == sl.dtype
        pd.testing.assert_frame_equal(ff, sf, check_exact=True)


TEXT = st.lists(
    st.sampled_from(list("ab ,\"'xé") + ["\n", "\r", "NaN", "nan", "NA", "null", "1", "-"]), max_size=4
).map("".join)
INTS = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.integers(2**63, 2**70),
    st.sampled_from([0, -0, 2**53 + 1]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(-1e6, 1e6).map(lambda x: f"{x:.3f}"),
    st.sampled_from(["1e3", ".5", "5.", "+2", "-0", "1E-5", "0.1", "nan", "inf", " 3", "0x10"]),
)
CELL_INT = st.one_of(INTS.map(str), st.just(""), st.sampled_from([" 7", "7 ", "1.0", "x"]))


@st.composite
def csv_files(draw):
    n = draw(st.integers(0, 40))
    clean = draw(st.booleans())
    ints = draw(st.lists(INTS.map(str) if clean else CELL_INT, min_size=n, max_size=n))
    floats = draw(
        st.lists(
            FLOATS.filter(lambda s: s.strip() not in ("nan", "inf", "0x10")) if clean else FLOATS,
            min_size=n,
            max_size=n,
        )
    )
    texts = draw(st.lists(TEXT, min_size=n, max_size=n))
    labels = draw(st.lists(st.sampled_from(["0", "1"] if clean else ["0", "1", ""]), min_size=n, max_size=n))
    buf = io.StringIO()
    w = csv.writer(
        buf,
        lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])),
    )
    if draw(st.booleans()):
        w.writerow(["i", "f", "s", "label"])
    for row in zip(ints, floats, texts, labels):
        w.writerow(row)
        if draw(st.integers(0, 30)) == 0:
            buf.write("\n")  # blank lines are skipped
        if not clean and draw(st.integers(0, 30)) == 0:
            buf.write("1,2\n")  # a wrong field count
    return buf.getvalue()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=csv_files(),
    chunk_rows=st.sampled_from([1, 2, 3, 7, 1000]),
    skip=st.booleans(),
    headers=st.sampled_from([None, ["i", "f", "s", "label"]]),
)
def test_fast_path_equals_line_by_line(tmp_path, monkeypatch, text, chunk_rows, skip, headers):
    path = tmp_path / "g.csv"
    path.write_bytes(text.encode("utf-8"))
    _assert_same(path, monkeypatch, chunk_rows=chunk_rows, skip_bad_rows=skip, required=("label",), headers=headers)


def test_fast_path_quoting_and_text_columns(tmp_path, monkeypatch):
    """Quoted fields with commas, doubled quotes, NaN-like text, empty fields and large ints are read
    by the fast path itself (not the fallback) and equal the line-by-line path."""
    text = (
        'id,name,score,big\n1,"a, b",0.5,9007199254740993\n2,"say ""hi""",,-9223372036854775807\n'
        "3,NaN,1e3,0\n4,,2.5,12\n5,null,-0.125,7\n"
    )
    path = tmp_path / "q.csv"
    path.write_text(text)
    calls = []
    real = dataset.Reader._csv_fast
    monkeypatch.setattr(dataset.Reader, "_csv_fast", lambda *a: calls.append(r := real(*a)) or r)
    chunks, skipped, _ = _assert_same(path, monkeypatch, chunk_rows=2)
    assert skipped == 0 and calls and all(c is not None for c in calls)
    df = pd.concat([c[0] for c in chunks], ignore_index=True)
    assert df["name"].tolist() == ["a, b", 'say "hi"', "NaN", "", "null"] and df["name"].dtype == object
    assert df["big"].dtype == np.int64 and df["big"].tolist() == [9007199254740993, -9223372036854775807, 0, 12, 7]
    assert np.isnan(df["score"][1]) and df["score"].dtype == np.float64


def test_headers_from_config_and_lone_cr(tmp_path, monkeypatch):
    path = tmp_path / "h.csv"
    path.write_bytes(b"1,2,x\r3,4,y\r\n5,6,z\n\n7,8,w")
    for k in (1, 2, 3, 10):
        chunks, _, _ = _assert_same(path, monkeypatch, chunk_rows=k, headers=["a", "b", "c"])
        lines = np.concatenate([c[2] for c in chunks])
        np.testing.assert_array_equal(lines, [1, 2, 3, 5])
        assert [len(c[0]) for c in chunks] == [min(k, 4 - s) for s in range(0, 4, k)]


def _big(tmp_path, n=5000, bad_row=3777, kind="fields"):
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "a": rng.integers(0, 100, n),
            "b": rng.normal(size=n).round(4),
            "c": rng.choice(["p", "q"], n),
            "label": rng.integers(0, 2, n),
        }
    )
    lines = df.to_csv(index=False).splitlines(keepends=True)
    i = bad_row  # lines[0] is the header, so lines[i] is file line i + 1
    if kind == "fields":
        lines[i] = "1,2,p\n"
    elif kind == "number":
        lines[i] = "oops,2,p,1\n"
    else:
        lines[i] = "1,2,p,\n"
    path = tmp_path / f"big_{kind}.csv"
    path.write_text("".join(lines))
    return path, df.drop(index=bad_row - 1).reset_index(drop=True), i + 1


@pytest.mark.parametrize(
    "kind,message",
    [
        ("fields", "expected 4 fields, got 3"),
        ("number", "column 'a': 'oops' is not a number"),
        ("missing", "column 'label': missing value"),
    ],
)
def test_malformed_row_deep_in_large_file(tmp_path, monkeypatch, kind, message):
    path, good, line = _big(tmp_path, kind=kind)
    for k in (500, 777, 3775, 3776, 3777, 10_000):
        with pytest.raises(
            DataError, match=rf"big_{kind}.csv: line {line}(, |: ){message}$".replace("(, |: )column", ", column")
        ):
            read_dataset(path, "text/csv", chunk_rows=k, required=("label",)).read_all()
        chunks, skipped, examples = _assert_same(
            path, monkeypatch, chunk_rows=k, skip_bad_rows=True, required=("label",)
        )
        assert skipped == 1 and f"line {line}" in examples[0]
        got = pd.concat([c[0] for c in chunks], ignore_index=True)
        pd.testing.assert_frame_equal(got, good, check_dtype=False)
        assert [c[1] for c in chunks] == list(np.cumsum([0] + [len(c[0]) for c in chunks[:-1]]))
        if kind == "fields":  # a dropped line is not a row: chunks still hold k kept rows
            assert [c[1] for c in chunks] == list(range(0, len(good), k))
        lines = np.concatenate([c[2] for c in chunks])
        assert line not in lines and len(lines) == len(good) and lines[-1] == len(good) + 2
