"""``Reader.usecols`` / ``read_dataset(usecols=...)``: chunks hold only the selected columns (in
the file's order) with the values a full read gives them, in every format; the other columns are
neither converted nor checked (a bad value there is no error any more), while a CSV line's field
count, a JSON record's keys and the file's UTF-8 still are, with the line named. An unknown name is
a DataError naming it and the columns; ``columns()`` still names every column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clarion import dataset
from clarion.dataset import DataError, read_dataset

FORMATS = ["csv", "csv-pyarrow", "jsonl", "json", "parquet"]
TYPES = {
    "csv": "text/csv",
    "csv-pyarrow": "text/csv",
    "jsonl": "application/jsonlines",
    "json": "application/json",
    "parquet": "application/x-parquet",
}


def _frame(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.integers(-1000, 1000, n),
            "b": rng.normal(size=n).round(4),
            "s": rng.choice(["F", "M", "é"], n).astype(object),
            "t": rng.choice(["x y", "z", ""], n).astype(object),
            "y": rng.integers(0, 2, n),
        }
    )


def _write(df, fmt, tmp_path, records=None):
    path = tmp_path / f"d.{fmt}"
    rows = df.to_dict(orient="records") if records is None else records
    if fmt.startswith("csv"):
        df.to_csv(path, index=False)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps({"rows": rows}))
    else:
        df.to_parquet(path, index=False)
    return path


def _chunks(path, fmt, monkeypatch, **kw):
    monkeypatch.setattr(dataset, "_COMPILED_CSV", fmt != "csv-pyarrow")
    if fmt == "json":
        kw.setdefault("features", "rows")
    return list(read_dataset(path, TYPES[fmt], chunk_rows=128, **kw))


def _all(chunks):
    return pd.concat([c.plain() for c in chunks], ignore_index=True), np.concatenate([c.lines for c in chunks])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("use", [("y", "a", "s"), ("t",), ("a", "b", "s", "t", "y")])
def test_only_those_columns_same_values(tmp_path, monkeypatch, fmt, use):
    df = _frame()
    path = _write(df, fmt, tmp_path)
    codes = ("s", "t") if fmt in ("csv", "csv-pyarrow", "parquet") else ()
    full, full_lines = _all(_chunks(path, fmt, monkeypatch, codes=codes))
    chunks = _chunks(path, fmt, monkeypatch, codes=codes, usecols=use)
    want = [c for c in df.columns if c in use]  # (the file's order)
    assert all(list(c.frame.columns) == want for c in chunks)
    got, lines = _all(chunks)
    pd.testing.assert_frame_equal(got, full[want], check_exact=True)
    np.testing.assert_array_equal(lines, full_lines)
    assert set(got.columns) <= set(df.columns)
    reader = read_dataset(path, TYPES[fmt], usecols=use, **({"features": "rows"} if fmt == "json" else {}))
    assert reader.columns() == list(df.columns)  # (every column still named)


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_name(tmp_path, monkeypatch, fmt):
    path = _write(_frame(50), fmt, tmp_path)
    with pytest.raises(DataError, match=r"`usecols` names \['sx'\] not among the columns") as err:
        _chunks(path, fmt, monkeypatch, usecols=("a", "sx"))
    assert "'a', 'b', 's', 't', 'y'" in str(err.value) and "did you mean 's'?" in str(err.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_required_column_left_out(tmp_path, monkeypatch, fmt):
    path = _write(_frame(50), fmt, tmp_path)
    with pytest.raises(DataError, match=r"required columns \['y'\] are not in `usecols`"):
        _chunks(path, fmt, monkeypatch, usecols=("a",), required=("y",))
    assert len(_chunks(path, fmt, monkeypatch, usecols=("a", "y"), required=("y",))) == 1


@pytest.mark.parametrize("fmt", ["csv", "csv-pyarrow", "jsonl", "json"])
def test_bad_value_in_unused_column_is_no_error(tmp_path, monkeypatch, fmt):
    df = _frame(300)
    records = df.to_dict(orient="records")
    records[200]["b"] = "not a number" if fmt != "json" else [1, 2]  # (JSON: a list is no single value)
    if fmt.startswith("csv"):
        path = tmp_path / "d.csv"
        text = df.to_csv(index=False).split("\n")
        fields = text[201].split(",")
        fields[1] = "not a number"
        text[201] = ",".join(fields)
        path.write_text("\n".join(text))
    else:
        path = _write(df, fmt, tmp_path, records)
    unit = "record" if fmt == "json" else "line"
    with pytest.raises(DataError, match=rf"{unit} 20[12], column 'b'"):
        _chunks(path, fmt, monkeypatch)
    got, _ = _all(_chunks(path, fmt, monkeypatch, usecols=("a", "s", "y")))
    assert len(got) == 300
    pd.testing.assert_frame_equal(
        got.astype({"s": object}), df[["a", "s", "y"]].astype({"s": object}), check_exact=True
    )


@pytest.mark.parametrize("fmt", ["csv", "csv-pyarrow"])
@pytest.mark.parametrize("skip", [False, True])
def test_field_count_still_located(tmp_path, monkeypatch, fmt, skip):
    df = _frame(400)
    text = df.to_csv(index=False).split("\n")
    text[300] = text[300].rsplit(",", 1)[0]  # line 301: a field short
    path = tmp_path / "d.csv"
    path.write_text("\n".join(text))
    if not skip:
        with pytest.raises(DataError, match="line 301: expected 5 fields, got 4"):
            _chunks(path, fmt, monkeypatch, usecols=("a",))
        return
    monkeypatch.setattr(dataset, "_COMPILED_CSV", fmt != "csv-pyarrow")
    reader = read_dataset(path, "text/csv", chunk_rows=128, usecols=("a",), skip_bad_rows=True)
    got, lines = _all(list(reader))
    assert reader.skipped == 1 and "line 301" in reader.skipped_examples[0]
    assert 301 not in lines and len(got) == 399
    np.testing.assert_array_equal(got["a"], np.delete(df["a"].to_numpy(), 299))


def test_jsonl_keys_still_checked(tmp_path, monkeypatch):
    df = _frame(100)
    records = df.to_dict(orient="records")
    del records[40]["t"]
    path = _write(df, "jsonl", tmp_path, records)
    with pytest.raises(DataError, match="line 41: keys differ from the first record's: missing key 't'"):
        _chunks(path, "jsonl", monkeypatch, usecols=("a",))


@pytest.mark.parametrize("fmt", ["csv", "csv-pyarrow"])
def test_invalid_utf8_in_unused_column_still_located(tmp_path, monkeypatch, fmt):
    df = _frame(200)
    text = df.to_csv(index=False).encode().split(b"\n")
    fields = text[150].split(b",")
    fields[3] = b"caf\xe9"
    text[150] = b",".join(fields)
    path = tmp_path / "d.csv"
    path.write_bytes(b"\n".join(text))
    with pytest.raises(DataError, match="line 151: not UTF-8 text"):
        _chunks(path, fmt, monkeypatch, usecols=("a", "y"))


def test_parquet_reads_only_those_columns(tmp_path, monkeypatch):
    """Parquet: the other columns are not read (a column of nested lists is no problem), also with
    ``headers`` selecting columns first."""
    df = _frame(300)
    df["nested"] = [[1, 2]] * 300
    path = tmp_path / "d.parquet"
    df.to_parquet(path, index=False)
    import pyarrow.parquet as pq

    seen = []
    real = pq.ParquetFile.iter_batches

    def spy(self, *a, **kw):
        seen.append(kw.get("columns"))
        return real(self, *a, **kw)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    got, _ = _all(_chunks(path, "parquet", monkeypatch, usecols=("y", "s"), codes=("s",)))
    assert seen[-1] == ["s", "y"]
    pd.testing.assert_frame_equal(got.astype({"s": object}), df[["s", "y"]].astype({"s": object}), check_exact=True)
    got, _ = _all(_chunks(path, "parquet", monkeypatch, usecols=("a",), headers=["b", "a"]))
    assert seen[-1] == ["a"]
    np.testing.assert_array_equal(got["a"], df["a"])
    with pytest.raises(DataError, match=r"`usecols` names \['s'\] not among the columns \['b', 'a'\]"):
        _chunks(path, "parquet", monkeypatch, usecols=("s",), headers=["b", "a"])


def test_usecols_argument(tmp_path, monkeypatch):
    path = _write(_frame(20), "csv", tmp_path)
    for bad in ("a", (), []):
        with pytest.raises(ValueError, match="usecols must be a non-empty sequence of column names"):
            read_dataset(path, "text/csv", usecols=bad)
    reader = read_dataset(path, "text/csv")
    reader.usecols = "a"  # (set on the reader: refused when the chunks are read)
    with pytest.raises(ValueError, match="usecols must be a non-empty sequence"):
        list(reader)
    assert list(next(iter(read_dataset(path, "text/csv", usecols=["y", "a"]))).frame.columns) == ["a", "y"]
