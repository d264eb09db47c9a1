"""clarion.dataset: chunked readers for CSV, JSON Lines, JSON and Parquet, with located errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clarion.dataset import DataError, read_dataset


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 57
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(size=n).round(6),
            "sex": rng.choice(["F", "M"], n),
            "label": rng.integers(0, 2, n),
        }
    )


def test_csv_with_header_chunked_equals_whole(tmp_path, frame):
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    whole, lines = read_dataset(path, "text/csv").read_all()
    pd.testing.assert_frame_equal(whole, frame, check_dtype=False)
    assert whole["age"].dtype == np.int64 and whole["income"].dtype == np.float64
    np.testing.assert_array_equal(lines, np.arange(2, len(frame) + 2))
    chunks = list(read_dataset(path, "text/csv", chunk_rows=10))
    assert [c.start for c in chunks] == [0, 10, 20, 30, 40, 50]
    pd.testing.assert_frame_equal(pd.concat([c.frame for c in chunks], ignore_index=True), whole)


def test_csv_headers_from_config_without_header_row(tmp_path, frame):
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False, header=False)
    got, _ = read_dataset(path, "text/csv", headers=list(frame.columns)).read_all()
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)


def test_jsonlines_and_json(tmp_path, frame):
    path = tmp_path / "d.jsonl"
    feats = ["age", "income", "sex"]
    with open(path, "w") as fh:
        for r in frame.itertuples(index=False):
            fh.write(json.dumps({"features": [int(r.age), float(r.income), r.sex], "label": int(r.label)}) + "\n")
    got, lines = read_dataset(
        path, "application/jsonlines", features="features", label="label", headers=feats + ["label"], chunk_rows=7
    ).read_all()
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)
    assert lines[0] == 1 and lines[-1] == len(frame)
    jpath = tmp_path / "d.json"
    jpath.write_text(json.dumps({"rows": frame[feats].values.tolist(), "y": frame["label"].tolist()}))
    got, _ = read_dataset(jpath, "application/json", features="rows", label="y", headers=feats + ["label"]).read_all()
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)


def test_parquet(tmp_path, frame):
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    chunks = list(read_dataset(path, "application/x-parquet", chunk_rows=20))
    assert len(chunks) == 3
    pd.testing.assert_frame_equal(pd.concat([c.frame for c in chunks], ignore_index=True), frame)


BAD = "a,b,label\n1,x,1\n2,y,0\n\n3,z,1\n4,w\nabc,v,1\n5,u,\n6,t,0\n"


@pytest.mark.parametrize("chunk_rows", [1, 2, 100])
def test_malformed_rows_are_located(tmp_path, chunk_rows):
    path = tmp_path / "bad.csv"
    path.write_text(BAD)
    with pytest.raises(DataError, match=r"bad.csv: line 6: expected 3 fields, got 2$"):
        read_dataset(path, "text/csv", chunk_rows=chunk_rows).read_all()
    path.write_text(BAD.replace("4,w\n", "4,w,0\n"))
    with pytest.raises(DataError, match=r"bad.csv: line 7, column 'a': 'abc' is not a number$"):
        read_dataset(path, "text/csv", chunk_rows=chunk_rows).read_all()
    path.write_text(BAD.replace("4,w\n", "4,w,0\n").replace("abc", "7"))
    with pytest.raises(DataError, match=r"bad.csv: line 8, column 'label': missing value$"):
        read_dataset(path, "text/csv", chunk_rows=chunk_rows, required=("label",)).read_all()


def test_skip_bad_rows_counts_them(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD)
    r = read_dataset(path, "text/csv", chunk_rows=2, skip_bad_rows=True, required=("label",))
    df, lines = r.read_all()
    assert r.skipped == 3
    assert df["a"].tolist() == [1, 2, 3, 6] and df["a"].dtype == np.int64
    np.testing.assert_array_equal(lines, [2, 3, 5, 9])


def test_missing_file_and_columns(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_dataset(tmp_path / "x.csv", "text/csv")
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"column 'label' not found"):
        read_dataset(path, "text/csv", required=("label",)).read_all()
