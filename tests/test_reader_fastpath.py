"""clarion.dataset's typed CSV fast path (issue 21): lines found in byte blocks, numeric columns
parsed typed by pyarrow. It must give exactly what the line-by-line path gives (frames, dtypes,
chunk starts, line numbers, skip counts, error messages), and take the typed route on clean files.
"""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import dataset
from clarion.dataset import DataError, read_dataset


def _outcome(path, monkeypatch, fast, **kw):
    """(chunks as (frame, start, lines), skipped, examples), or the DataError message."""
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(dataset.Reader, "_csv_fast", lambda self, src, names, need: None)
        r = read_dataset(path, "text/csv", **kw)
        try:
            chunks = [(c.frame, c.start, c.lines) for c in r]
        except DataError as exc:
            return str(exc)
        return chunks, r.skipped, list(r.skipped_examples)


def _assert_same(path, monkeypatch, **kw):
    fast = _outcome(path, monkeypatch, True, **kw)
    slow = _outcome(path, monkeypatch, False, **kw)
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
    return fast


def _typed_calls(monkeypatch):
    """Record whether each block read once the column types are fixed went through the typed parse
    (its columns) or not (None)."""
    calls = []
    real = dataset.Reader._csv_typed

    def typed(self, *a):
        out = real(self, *a)
        if self._numeric is not None:
            calls.append(out)
        return out

    monkeypatch.setattr(dataset.Reader, "_csv_typed", typed)
    return calls


def _write(rows, header=("i", "u", "f", "s", "y"), eol="\n", quoting=csv.QUOTE_MINIMAL):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=eol, quoting=quoting)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _clean_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    words = np.array(["a b", "x", "New York", "é", "", 'say "hi"', "1,2"], dtype=object)
    return [
        (
            int(rng.integers(-(2**62), 2**62)),
            int(rng.integers(0, 2**63)) + 2**63 * int(rng.integers(0, 2)),
            repr(float(rng.normal(0, 1e3))),
            words[rng.integers(0, len(words))],
            int(rng.integers(0, 2)),
        )
        for _ in range(n)
    ]


def test_clean_file_takes_the_typed_route_and_equals_line_by_line(tmp_path, monkeypatch):
    path = tmp_path / "c.csv"
    path.write_text(_write(_clean_rows(3000)))
    calls = _typed_calls(monkeypatch)
    chunks, skipped, _ = _assert_same(path, monkeypatch, chunk_rows=700, required=("y",))
    assert skipped == 0 and calls and len(calls) == len(chunks) and all(c is not None for c in calls)
    df = pd.concat([c[0] for c in chunks], ignore_index=True)
    assert [str(df[c].dtype) for c in df.columns] == ["int64", "uint64", "float64", "object", "int64"]
    assert [c[1] for c in chunks] == list(range(0, 3000, 700))
    np.testing.assert_array_equal(np.concatenate([c[2] for c in chunks]), np.arange(2, 3002))


@pytest.mark.parametrize(
    "cell, typed",
    [
        ("0x10", False),  # pyarrow reads hexadecimal integers, pandas does not
        (" 7", False),  # pyarrow trims blanks around a number
        ("7 ", False),
        ("\t7", False),
        ("", True),  # missing: float64 with NaN (exact below 2**53)
        ("9007199254740993", True),
        ("1.5", False),  # not an integer: the int64 parse refuses it
        ("x", False),  # not a number: a malformed record, located
    ],
)
def test_values_pyarrow_reads_otherwise_go_the_careful_way(tmp_path, monkeypatch, cell, typed):
    rows = [(i, i, f"{i}.5", "t t", i % 2) for i in range(1, 2001)]
    rows[1500] = (cell, 1, "0.5", "t", 1)
    path = tmp_path / "v.csv"
    path.write_text(_write(rows))
    calls = _typed_calls(monkeypatch)
    for skip in (False, True):
        out = _assert_same(path, monkeypatch, chunk_rows=500, skip_bad_rows=skip, required=("y",))
    assert (calls[3] is not None) == typed  # the block holding line 1502
    assert all(c is not None for c in calls[:3])
    if cell == "x":
        assert out[1] == 1 and "line 1502, column 'i'" in out[2][0]
        with pytest.raises(DataError, match=r"v\.csv: line 1502, column 'i': 'x' is not a number"):
            list(read_dataset(path, "text/csv", chunk_rows=500))


def test_float_text_nan_inf_and_big_int_with_missing(tmp_path, monkeypatch):
    rows = [(i, i, f"{i / 7!r}", "s", 1) for i in range(1200)]
    rows[1100] = (2**60, 1, "inf", "s", 1)
    rows[1101] = ("", 1, "nan", "s", 1)
    path = tmp_path / "n.csv"
    path.write_text(_write(rows))
    calls = _typed_calls(monkeypatch)
    for chunk_rows in (300, 1100, 5000):
        _assert_same(path, monkeypatch, chunk_rows=chunk_rows)
    assert None in calls


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("wrap", ["plain", "bom", "gzip"])
def test_blocks_split_anywhere_in_a_line(tmp_path, monkeypatch, eol, wrap):
    """Byte blocks end in the middle of lines (and of a \\r\\n): lines, blank lines and chunk
    boundaries are those of the line-by-line path, through a BOM and gzip."""
    rng = np.random.default_rng(3)
    rows = [(int(v), 1, "0.25", "w" * int(rng.integers(0, 300)), int(v) % 2) for v in rng.integers(0, 99, 4000)]
    text = _write(rows, eol=eol)
    lines = text.split(eol)
    for k in (5, 77, 78, 2500):  # blank lines between records
        lines.insert(k, "")
    data = eol.join(lines).encode()
    data = {"plain": data, "bom": b"\xef\xbb\xbf" + data, "gzip": gzip.compress(data)}[wrap]
    path = tmp_path / "b.csv"
    path.write_bytes(data)
    for chunk_rows in (37, 1000, 3999, 10_000):
        chunks, _, _ = _assert_same(path, monkeypatch, chunk_rows=chunk_rows)
        assert sum(len(c[0]) for c in chunks) == 4000


def test_quoted_line_break_falls_back(tmp_path, monkeypatch):
    rows = [(i, i, "1.0", "a\nb" if i == 900 else "c", 1) for i in range(1000)]
    path = tmp_path / "q.csv"
    path.write_text(_write(rows))
    for chunk_rows in (100, 1000):
        chunks, _, _ = _assert_same(path, monkeypatch, chunk_rows=chunk_rows)
        df = pd.concat([c[0] for c in chunks], ignore_index=True)
        assert df["s"].iloc[900] == "a\nb" and len(df) == 1000


CELLS = st.one_of(
    st.integers(-(2**63), 2**64).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " 1", "1 ", "0x1f", "+3", "-0", "1e3", "٣", "a b", '"', "\t", "NaN"]),
)


@st.composite
def files(draw):
    """Mostly clean numeric columns (so that the sample types them) with rare odd cells."""
    n = draw(st.integers(1, 60))
    base = draw(st.sampled_from(["int", "uint", "float"]))
    gen = {
        "int": st.integers(-(2**63), 2**63 - 1).map(str),
        "uint": st.integers(0, 2**64 - 1).map(str),
        "float": st.floats(allow_nan=False, allow_infinity=False).map(repr),
    }[base]
    cells = draw(st.lists(st.one_of(gen, gen, gen, CELLS), min_size=n, max_size=n))
    text = draw(st.lists(st.sampled_from(["a", "a b", " a", "", "x,y"]), min_size=n, max_size=n))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    w.writerow(["v", "t"])
    w.writerows(zip(cells, text))
    return buf.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=files(), chunk_rows=st.sampled_from([1, 4, 25, 1000]), skip=st.booleans())
def test_typed_route_equals_line_by_line(tmp_path, monkeypatch, text, chunk_rows, skip):
    path = tmp_path / "h.csv"
    path.write_bytes(text.encode())
    _assert_same(path, monkeypatch, chunk_rows=chunk_rows, skip_bad_rows=skip)


def test_parquet_headers_read_only_those_columns(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    df = pd.DataFrame({"a": np.arange(10), "b": list("xyzxyzxyzx"), "c": np.linspace(0, 1, 10), "d": [None] * 10})
    path = tmp_path / "p.parquet"
    df.to_parquet(path, index=False, row_group_size=4)
    asked = []
    real = pq.ParquetFile.iter_batches
    monkeypatch.setattr(
        pq.ParquetFile, "iter_batches", lambda self, **kw: asked.append(kw["columns"]) or real(self, **kw)
    )
    chunks = list(read_dataset(path, "application/x-parquet", headers=["c", "a"], chunk_rows=3))
    got = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert list(got.columns) == ["c", "a"] and asked and all(a == ["c", "a"] for a in asked)
    np.testing.assert_array_equal(got["a"].to_numpy(), np.arange(10))
    np.testing.assert_array_equal(got["c"].to_numpy(), df["c"].to_numpy())
    assert [c.start for c in chunks] == [0, 3, 6, 9]
    with pytest.raises(DataError, match=r"columns \['e'\] from `headers` not found in the Parquet file"):
        list(read_dataset(path, "application/x-parquet", headers=["a", "e"]))
