"""clarion.dataset on real-world inputs (issue 13 items 4, 5, 6 and the data parts of 22).

Keys of JSON records are matched by name, integers are exact whatever their size, a byte-order
mark is never part of the data, a file in another format than ``dataset_type`` is named as such,
``headers`` that do not fit the file are named, and no bytes make a reader fail with anything but
a ValueError.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import dataset
from clarion.dataset import (
    MSG_HEADERS_COUNT,
    MSG_HEADERS_DIFFER,
    MSG_HEADERS_KEYS,
    MSG_HEADERS_ORDER,
    MSG_HEADERS_VALUES,
    MSG_INT_RANGE,
    MSG_RECORD_KEYS,
    MSG_WRONG_FORMAT,
    DataError,
    read_dataset,
)

# CLARION_FUZZ_EXAMPLES raises the examples per fuzz test for a longer run.
FUZZ = settings(
    max_examples=int(os.environ.get("CLARION_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
CSV_PATHS = ["fast", "fallback"]


def _read(path, kind="text/csv", csv_path="fast", monkeypatch=None, **kw):
    """The whole file as a frame, through the CSV fast path or only the line-by-line path."""
    if csv_path == "fallback":
        with monkeypatch.context() as m:
            m.setattr(dataset.Reader, "_csv_fast", lambda self, src, names, need: None)
            return read_dataset(path, kind, **kw).read_all()[0]
    return read_dataset(path, kind, **kw).read_all()[0]


def _pattern(template: str, **kw) -> str:
    """A regex matching a message template with some fields filled in and the others free."""
    parts = re.split(r"(\{\w+(?:![rs])?(?::[^}]*)?\})", template)
    out = []
    for p in parts:
        m = re.fullmatch(r"\{(\w+)(?:![rs])?(?::[^}]*)?\}", p)
        if m is None:
            out.append(re.escape(p))
        elif m.group(1) in kw:
            out.append(re.escape(str(kw[m.group(1)])))
        else:
            out.append(".*")
    return "".join(out)


# ---- item 4: JSON records are aligned by key name --------------------------------------------------

ROWS = [
    {"age": 30, "sex": "F", "income": 1.5, "y": 1},
    {"age": 41, "sex": "M", "income": 2.0, "y": 0},
    {"age": 52, "sex": "F", "income": 0.5, "y": 0},
    {"age": 63, "sex": "M", "income": 3.25, "y": 1},
]


def _shuffled(rec: dict, rng: random.Random) -> dict:
    keys = list(rec)
    rng.shuffle(keys)
    return {k: rec[k] for k in keys}


def test_jsonlines_objects_in_another_key_order_are_aligned(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [ROWS[0], {"y": 0, "income": 2.0, "sex": "M", "age": 41}]))
    got, _ = read_dataset(path, "application/jsonlines").read_all()
    pd.testing.assert_frame_equal(got, pd.DataFrame(ROWS[:2]))
    # features selecting an object, label appended after the features
    path.write_text(
        json.dumps({"f": {"age": 30, "sex": "F"}, "y": 1})
        + "\n"
        + json.dumps({"y": 0, "f": {"sex": "M", "age": 41}})
        + "\n"
    )
    got, _ = read_dataset(path, "application/jsonlines", features="f", label="y").read_all()
    assert got.to_dict("records") == [{"age": 30, "sex": "F", "y": 1}, {"age": 41, "sex": "M", "y": 0}]


def test_json_features_selecting_objects_gives_their_values(tmp_path):
    path = tmp_path / "d.json"
    feats = [{k: r[k] for k in ("age", "sex", "income")} for r in ROWS]
    feats[1] = {"income": 2.0, "age": 41, "sex": "M"}
    path.write_text(json.dumps({"rows": feats, "labels": [r["y"] for r in ROWS]}))
    got, lines = read_dataset(path, "application/json", features="rows", label="labels").read_all()
    assert list(got.columns) == ["age", "sex", "income", "labels"]
    pd.testing.assert_frame_equal(got.rename(columns={"labels": "y"}), pd.DataFrame(ROWS))
    np.testing.assert_array_equal(lines, [1, 2, 3, 4])


def test_jsonlines_no_label_duplicate_when_features_absent(tmp_path):
    """Without ``features``, a record's label key is the label column, not also a feature."""
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    got, _ = read_dataset(path, "application/jsonlines", label="y").read_all()
    assert list(got.columns) == ["age", "sex", "income", "y"]
    pd.testing.assert_frame_equal(got, pd.DataFrame(ROWS))


@pytest.mark.parametrize(
    "change,diff",
    [
        ("missing", "missing key 'sex'"),
        ("extra", "unexpected key 'zip'"),
        ("renamed", "missing key 'sex', unexpected key 'gender'"),
    ],
)
def test_jsonlines_record_with_other_keys_is_refused_with_its_line(tmp_path, change, diff):
    recs = [dict(r) for r in ROWS]
    if change == "missing":
        del recs[2]["sex"]
    elif change == "extra":
        recs[2]["zip"] = "123"
    else:
        recs[2]["gender"] = recs[2].pop("sex")
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    message = MSG_RECORD_KEYS.format(diff=diff)
    with pytest.raises(DataError, match=re.escape(f"d.jsonl: line 3: {message}") + "$"):
        read_dataset(path, "application/jsonlines").read_all()
    r = read_dataset(path, "application/jsonlines", skip_bad_rows=True)
    got, lines = r.read_all()
    assert r.skipped == 1 and message in r.skipped_examples[0]
    np.testing.assert_array_equal(lines, [1, 2, 4])
    pd.testing.assert_frame_equal(got, pd.DataFrame([ROWS[0], ROWS[1], ROWS[3]]))
    jpath = tmp_path / "d.json"
    jpath.write_text(json.dumps({"rows": recs}))
    with pytest.raises(DataError, match=re.escape(f"d.json: record 3: {message}") + "$"):
        read_dataset(jpath, "application/json", features="rows").read_all()


def test_jsonlines_headers_and_object_records(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"f": {k: r[k] for k in ("age", "sex")}, "y": r["y"]}) + "\n" for r in ROWS))
    # headers naming the keys in another order: aligned by name, columns in headers' order
    got, _ = read_dataset(
        path, "application/jsonlines", features="f", label="y", headers=["sex", "age", "label"]
    ).read_all()
    assert got.to_dict("records")[0] == {"sex": "F", "age": 30, "label": 1}
    # headers renaming the keys (no name in common): by position, as for list records
    got, _ = read_dataset(
        path, "application/jsonlines", features="f", label="y", headers=["a", "s", "label"]
    ).read_all()
    assert got.to_dict("records")[0] == {"a": 30, "s": "F", "label": 1}
    # some names in common: ambiguous, refused naming `headers`
    with pytest.raises(DataError, match=_pattern(MSG_HEADERS_KEYS, path=path)):
        read_dataset(
            path, "application/jsonlines", features="f", label="y", headers=["sex", "income", "label"]
        ).read_all()


@pytest.mark.parametrize("skip", [False, True])
def test_jsonlines_headers_of_the_wrong_length_are_named(tmp_path, skip):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"features": [r["age"], r["sex"]], "y": r["y"]}) + "\n" for r in ROWS))
    msg = MSG_HEADERS_VALUES.format(path=path, n=4, unit="line", line=1, m=3, what="features + 'y'")
    with pytest.raises(DataError, match=re.escape(msg)):
        read_dataset(
            path,
            "application/jsonlines",
            features="features",
            label="y",
            headers=["age", "sex", "income", "y"],
            skip_bad_rows=skip,
        ).read_all()
    # one short record among good ones is a located bad record, not a headers error
    lines = path.read_text().splitlines()
    lines[0] = json.dumps({"features": [30], "y": 1})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d\.jsonl: line 1: expected 3 values, got 2$"):
        read_dataset(
            path, "application/jsonlines", features="features", label="y", headers=["age", "sex", "y"]
        ).read_all()


def test_jsonlines_mixed_shapes_and_nested_values_are_located(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"f": [1, "a"], "y": 1}\n{"f": {"x": 1, "s": "b"}, "y": 0}\n{"f": [2, [3]], "y": 1}\n'
        '{"f": 7, "y": 1}\n{"f": [3, "c"], "y": 0}\n'
    )
    r = read_dataset(path, "application/jsonlines", features="f", label="y", skip_bad_rows=True)
    _, lines = r.read_all()
    np.testing.assert_array_equal(lines, [1, 5])
    assert r.skipped == 3
    found = sorted(e.split(": ", 1)[1] for e in r.skipped_examples)
    assert found == [
        "line 2: features 'f' is an object, but the first record's is a list",
        "line 3, column 'column_1': a list is not a single value",
        "line 4: features 'f' did not select a list or an object (got int)",
    ]


@st.composite
def _records(draw):
    keys = draw(st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=1, max_size=5, unique=True))
    value = st.one_of(
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text("xyz01 ", max_size=3),
        st.none(),
        st.booleans(),
    )
    n = draw(st.integers(1, 12))
    recs = [{k: draw(value) for k in keys} for _ in range(n)]
    seed = draw(st.integers(0, 2**32 - 1))
    return recs, seed


@FUZZ
@given(data=_records(), chunk_rows=st.sampled_from([1, 2, 5, 1000]))
def test_fuzz_permuted_key_orders_give_the_same_frame(tmp_path, data, chunk_rows):
    recs, seed = data
    rng = random.Random(seed)
    mixed = recs[:1] + [_shuffled(r, rng) for r in recs[1:]]  # the first record fixes the column order
    frames = []

    def read(path, kind, features):
        try:
            return read_dataset(
                path, kind, features=features, label="y", skip_bad_rows=True, chunk_rows=chunk_rows
            ).read_all()[0]
        except DataError as exc:  # every row skipped (a value that is not a number in a numeric column)
            assert "no data rows" in str(exc)
            return None

    for k, rs in enumerate((recs, mixed)):
        path = tmp_path / f"d{k}.jsonl"
        path.write_text("".join(json.dumps({"f": r, "y": i % 2}) + "\n" for i, r in enumerate(rs)))
        frames.append(read(path, "application/jsonlines", "f"))
        jpath = tmp_path / f"d{k}.json"
        jpath.write_text(json.dumps({"rows": rs, "y": [i % 2 for i in range(len(rs))]}))
        frames.append(read(jpath, "application/json", "rows"))
    if frames[0] is None:
        assert all(f is None for f in frames)
        return
    for f in frames[1:]:  # (a value that is not a number in a numeric column is skipped alike)
        pd.testing.assert_frame_equal(f, frames[0])
    assert list(frames[0].columns) == list(recs[0]) + ["y"]


# ---- item 5: integers beyond int64 stay exact ------------------------------------------------------

BIG = [2**63, 2**63 + 1, 2**64 - 1, 2**63]  # distinct values beyond int64 (two rows share one)


@pytest.mark.parametrize("csv_path", CSV_PATHS)
@pytest.mark.parametrize("chunk_rows", [1, 3, 1000])
def test_csv_integers_beyond_int64_stay_distinct(tmp_path, monkeypatch, csv_path, chunk_rows):
    path = tmp_path / "big.csv"
    path.write_text("g,y\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(BIG)))
    got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows)
    assert got["g"].dtype == np.uint64
    assert [int(v) for v in got["g"]] == BIG and got["g"].nunique() == 3
    # beyond uint64, or negative values beside values beyond int64: their exact decimal text
    for vals in ([10**20, 10**20 + 1, 5, 10**20], [-1, 2**63, 2**63 + 1, -1], [-(2**63) - 1, -(2**63) - 2, 0, 0]):
        path.write_text("g,y\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(vals)))
        got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows)
        assert got["g"].tolist() == [str(v) for v in vals] and got["g"].nunique() == len(set(vals))
    path.write_text("g,y\n100000000000000000000,1\n0100000000000000000000,0\n,1\n7,1\n")
    got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows)
    assert got["g"].tolist()[:2] == ["100000000000000000000"] * 2 and pd.isna(got["g"][2]) and got["g"][3] == "7"


@pytest.mark.parametrize("csv_path", CSV_PATHS)
def test_csv_chunk_of_skipped_large_integers(tmp_path, monkeypatch, csv_path):
    """A chunk whose only rows (with exact large integers) are skipped is simply empty."""
    path = tmp_path / "s.csv"
    path.write_text("i,label\n9223372036854775808,\n0,0\n5,1\n")
    if csv_path == "fallback":
        monkeypatch.setattr(dataset.Reader, "_csv_fast", lambda self, src, names, need: None)
    r = read_dataset(path, "text/csv", chunk_rows=1, skip_bad_rows=True, required=("label",))
    got, lines = r.read_all()
    assert r.skipped == 1 and got["i"].tolist() == [0, 5] and got["i"].dtype == np.uint64
    np.testing.assert_array_equal(lines, [3, 4])


@pytest.mark.parametrize("csv_path", CSV_PATHS)
def test_csv_integer_beyond_the_sampled_int64_type_is_a_located_error(tmp_path, monkeypatch, csv_path):
    n = dataset.TYPE_SAMPLE_ROWS + 10
    vals = list(range(n))
    vals[n - 3] = 2**63 + 7
    path = tmp_path / "late.csv"
    path.write_text("g,y\n" + "".join(f"{v},1\n" for v in vals))
    msg = MSG_INT_RANGE.format(value=2**63 + 7)
    with pytest.raises(DataError, match=re.escape(f"late.csv: line {n - 1}, column 'g': {msg}") + "$"):
        _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=100)
    r = read_dataset(path, "text/csv", chunk_rows=100, skip_bad_rows=True)
    got, _ = r.read_all()
    assert r.skipped == 1 and got["g"].dtype == np.int64 and len(got) == n - 1


@pytest.mark.parametrize("csv_path", CSV_PATHS)
@pytest.mark.parametrize("chunk_rows", [2, 1000])
def test_csv_large_integers_with_a_missing_value_stay_exact(tmp_path, monkeypatch, csv_path, chunk_rows):
    """float64 would merge 2**53 and 2**53 + 1; a chunk with a missing value keeps exact integers."""
    vals = [2**53, 2**53 + 1, None, 2**62 + 1]
    path = tmp_path / "m.csv"
    path.write_text("g,y\n" + "".join(f"{'' if v is None else v},1\n" for v in vals))
    got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows)
    present = [v for v in got["g"] if not pd.isna(v)]
    assert [int(v) for v in present] == [v for v in vals if v is not None]
    assert got["g"].isna().sum() == 1
    # small integers with a missing value stay float64, as before
    path.write_text("g,y\n1,1\n,1\n3,0\n")
    got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows)
    assert got["g"].dtype == np.float64 and got["g"].isna().tolist() == [False, True, False]


def test_jsonlines_and_parquet_integers_beyond_int64(tmp_path):
    path = tmp_path / "big.jsonl"
    vals = [2**63, 2**63 + 1, 10**30, 10**30 + 1, -5]
    path.write_text("".join(json.dumps({"f": [v], "y": 1}) + "\n" for v in vals))
    got, _ = read_dataset(path, "application/jsonlines", features="f", label="y").read_all()
    assert got["column_0"].tolist() == [str(v) for v in vals] and got["column_0"].nunique() == 5
    # beside a missing value, and over chunks typed differently (uint64, int64, exact)
    vals = [2**63, 1, 2**63 + 1, None, 2**60 + 1, 2**60]
    path.write_text("".join(json.dumps({"f": [v], "y": 1}) + "\n" for v in vals))
    for k in (1, 2, 100):
        got, _ = read_dataset(path, "application/jsonlines", features="f", label="y", chunk_rows=k).read_all()
        assert [None if pd.isna(v) else int(v) for v in got["column_0"]] == vals
    import pyarrow as pa
    import pyarrow.parquet as pq

    ppath = tmp_path / "big.parquet"
    pq.write_table(
        pa.table(
            {"g": pa.array(BIG, pa.uint64()), "h": pa.array([2**53, 2**53 + 1, None, 1], pa.int64()), "y": [0, 1, 0, 1]}
        ),
        ppath,
    )
    for k in (1, 3, 100):
        got, _ = read_dataset(ppath, "application/x-parquet", chunk_rows=k).read_all()
        assert got["g"].dtype == np.uint64 and [int(v) for v in got["g"]] == BIG
        assert [int(v) for v in got["h"] if not pd.isna(v)] == [2**53, 2**53 + 1, 1]


def test_json_float_column_is_float_in_any_chunking(tmp_path):
    """A JSON float beside a null: the column is float64 whether or not they share a chunk."""
    path = tmp_path / "f.jsonl"
    path.write_text('{"f": [0, 1.8446744073709552e+19], "y": 1}\n{"f": [0, null], "y": 0}\n{"f": [1, 2.0], "y": 0}\n')
    for k in (1, 2, 1000):
        got, _ = read_dataset(path, "application/jsonlines", features="f", label="y", chunk_rows=k).read_all()
        assert got["column_1"].dtype == np.float64 and got["column_1"][0] == 2.0**64 and pd.isna(got["column_1"][1])


# ---- item 6: a UTF-8 byte-order mark is not data ----------------------------------------------------

BOM = "\ufeff"


@pytest.mark.parametrize("csv_path", CSV_PATHS)
@pytest.mark.parametrize("chunk_rows", [1, 2, 1000])
@pytest.mark.parametrize("gz", [False, True])
def test_bom_csv_with_and_without_headers(tmp_path, monkeypatch, csv_path, chunk_rows, gz):
    text = "sex,age,y\nF,30,1\nM,41,0\nF,52,1\n"
    plain = tmp_path / "plain.csv"
    plain.write_text(text)
    path = tmp_path / "bom.csv"
    data = (BOM + text).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    want = _read(plain, csv_path=csv_path, monkeypatch=monkeypatch)
    got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows)
    assert list(got.columns) == ["sex", "age", "y"]
    pd.testing.assert_frame_equal(got, want)
    got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows, headers=["sex", "age", "y"])
    pd.testing.assert_frame_equal(got, want)
    # without a header line, the BOM is not part of the first value
    path.write_bytes((BOM + "F,30,1\nM,41,0\n").encode("utf-8"))
    got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows, headers=["sex", "age", "y"])
    assert got["sex"].tolist() == ["F", "M"]


def test_bom_jsonlines_and_json(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(BOM + "".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    r = read_dataset(path, "application/jsonlines")
    got, _ = r.read_all()
    pd.testing.assert_frame_equal(got, pd.DataFrame(ROWS))
    jpath = tmp_path / "d.json"
    jpath.write_text(BOM + json.dumps({"rows": ROWS}), encoding="utf-8")
    got, _ = read_dataset(jpath, "application/json", features="rows").read_all()
    pd.testing.assert_frame_equal(got, pd.DataFrame(ROWS))


# ---- item 22: the file's real format, and headers that do not fit ----------------------------------


@pytest.mark.parametrize("kind", ["text/csv", "application/jsonlines", "application/json"])
def test_parquet_or_archive_read_as_text_names_file_type_and_format(tmp_path, kind):
    ppath = tmp_path / "d.parquet"
    pd.DataFrame(ROWS).to_parquet(ppath)
    msg = MSG_WRONG_FORMAT.format(
        path=ppath, what="a Parquet file", dataset_type=kind, hint="; set dataset_type to 'application/x-parquet'"
    )
    with pytest.raises(DataError, match=re.escape(msg) + "$"):
        read_dataset(ppath, kind, features="rows").read_all()
    zpath = tmp_path / "d.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("d.csv", "a,b\n1,2\n")
    with pytest.raises(
        DataError, match=_pattern(MSG_WRONG_FORMAT, path=zpath, what="a zip archive", dataset_type=repr(kind))
    ):
        read_dataset(zpath, kind, features="rows").read_all()
    gpath = tmp_path / "d.parquet.gz"
    gpath.write_bytes(gzip.compress(ppath.read_bytes()))
    with pytest.raises(
        DataError, match=_pattern(MSG_WRONG_FORMAT, path=gpath, what="gzip-compressed and a Parquet file")
    ):
        read_dataset(gpath, kind, features="rows").read_all()


def test_utf16_text_is_named(tmp_path):
    path = tmp_path / "u.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16"))
    with pytest.raises(DataError, match=_pattern(MSG_WRONG_FORMAT, path=path, dataset_type="'text/csv'") + "iconv"):
        read_dataset(path, "text/csv").read_all()


def test_text_read_as_parquet_names_the_format(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=_pattern(MSG_WRONG_FORMAT, path=path, dataset_type="'application/x-parquet'")):
        read_dataset(path, "application/x-parquet").read_all()
    path.write_bytes(b"PAR1 then garbage")
    with pytest.raises(DataError, match=r"d\.csv: not a readable Parquet file"):
        read_dataset(path, "application/x-parquet").read_all()


@pytest.mark.parametrize("csv_path", CSV_PATHS)
@pytest.mark.parametrize("chunk_rows", [1, 1000])
def test_gzip_text_is_read_transparently(tmp_path, monkeypatch, csv_path, chunk_rows):
    text = "".join(f"{i},{'FM'[i % 2]},{i % 3 == 0:d}\n" for i in range(50))
    plain, gz = tmp_path / "d.csv", tmp_path / "d.csv.gz"
    plain.write_text("a,s,y\n" + text)
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    want = _read(plain, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows)
    pd.testing.assert_frame_equal(_read(gz, csv_path=csv_path, monkeypatch=monkeypatch, chunk_rows=chunk_rows), want)
    jl = tmp_path / "d.jsonl.gz"
    jl.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    pd.testing.assert_frame_equal(read_dataset(jl, "application/jsonlines").read_all()[0], pd.DataFrame(ROWS))
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(plain.read_bytes())[:-30])
    with pytest.raises(DataError, match=r"bad\.csv\.gz: cannot read the file"):
        read_dataset(bad, "text/csv", chunk_rows=chunk_rows).read_all()


@pytest.mark.parametrize("csv_path", CSV_PATHS)
@pytest.mark.parametrize("skip", [False, True])
def test_csv_headers_in_another_order_than_the_header_line(tmp_path, monkeypatch, csv_path, skip):
    path = tmp_path / "h.csv"
    path.write_text("approved,age,sex\n1,30,F\n0,40,M\n")
    msg = MSG_HEADERS_ORDER.format(
        path=path, line=1, found=["approved", "age", "sex"], expected=["age", "approved", "sex"]
    )
    with pytest.raises(DataError, match=re.escape(msg) + "$"):
        _read(path, csv_path=csv_path, monkeypatch=monkeypatch, headers=["age", "approved", "sex"], skip_bad_rows=skip)
    with pytest.raises(
        DataError, match=_pattern(MSG_HEADERS_DIFFER, path=path, only_file=["sex"], only_headers=["gender"])
    ):
        _read(
            path, csv_path=csv_path, monkeypatch=monkeypatch, headers=["approved", "age", "gender"], skip_bad_rows=skip
        )
    with pytest.raises(
        DataError,
        match=_pattern(
            MSG_HEADERS_DIFFER, path=path, only_file=["approved", "age", "sex"], only_headers=["Approved", "Age", "Sex"]
        ),
    ):
        _read(path, csv_path=csv_path, monkeypatch=monkeypatch, headers=["Approved", "Age", "Sex"])
    with pytest.raises(DataError, match=r"`headers` lists \['age'\] more than once"):
        _read(path, csv_path=csv_path, monkeypatch=monkeypatch, headers=["age", "age", "sex"])
    # a first data line of numbers that happens to permute numeric names is data
    path.write_text("1,0\n0,1\n")
    got = _read(path, csv_path=csv_path, monkeypatch=monkeypatch, headers=["0", "1"])
    assert got["0"].tolist() == [1, 0]


@pytest.mark.parametrize("csv_path", CSV_PATHS)
@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("header_line", [True, False])
def test_csv_headers_of_the_wrong_length_are_named(tmp_path, monkeypatch, csv_path, skip, header_line):
    path = tmp_path / "w.csv"
    path.write_text(("approved,age\n" if header_line else "") + "1,30\n0,40\n1,50\n")
    msg = MSG_HEADERS_COUNT.format(path=path, n=3, m=2, line=1)
    with pytest.raises(DataError, match=re.escape(msg) + "$"):
        _read(path, csv_path=csv_path, monkeypatch=monkeypatch, headers=["approved", "age", "sex"], skip_bad_rows=skip)
    # one short first data line among good ones is a located bad record
    path.write_text("1,30\n0,40,M\n1,50,F\n")
    r = read_dataset(path, "text/csv", headers=["approved", "age", "sex"], skip_bad_rows=True)
    _, lines = r.read_all()
    assert r.skipped == 1 and "line 1: expected 3 fields, got 2" in r.skipped_examples[0]
    np.testing.assert_array_equal(lines, [2, 3])


def test_invalid_utf8_is_located(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes("a,b\n1,x\n2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"l\.csv: line 3: not UTF-8 text \(byte 0xe9 at position 6\)"):
        read_dataset(path, "text/csv").read_all()
    path = tmp_path / "l.json"
    path.write_bytes(b'{"rows": [\n[1],\n["caf\xe9"]]}')
    with pytest.raises(DataError, match=r"l\.json: line 3: not UTF-8 text \(byte 0xe9 at position 6\)"):
        read_dataset(path, "application/json", features="rows").read_all()
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n{"a": 2}\n')
    r = read_dataset(path, "application/jsonlines", skip_bad_rows=True)
    _, lines = r.read_all()
    np.testing.assert_array_equal(lines, [1, 3])
    assert "line 2: not UTF-8 text" in r.skipped_examples[0]


# ---- fuzz: any bytes give a frame or a ValueError ---------------------------------------------------

PREFIXES = [b"", b"\xef\xbb\xbf", b"PAR1", b"\x1f\x8b", b"a,b,y\n", b'{"f": [1, 2], "y": 1}\n', b"[[", b"PK\x03\x04"]
KINDS = ["text/csv", "application/jsonlines", "application/json", "application/x-parquet"]


def _bytes_like_input():
    noise = st.binary(max_size=200)
    texty = st.lists(
        st.sampled_from(
            [
                b"1",
                b"-9223372036854775809",
                b"18446744073709551616",
                b"x",
                b",",
                b"\n",
                b"\r",
                b'"',
                b"{",
                b"}",
                b"[",
                b"]",
                b":",
                b'"f"',
                b'"y"',
                b"\xef\xbb\xbf",
                b"\xff",
                b" ",
                b"nan",
                b"1e400",
                b"1" * 30,
                b"null",
                b"true",
            ]
        ),
        max_size=60,
    ).map(b"".join)
    return st.tuples(st.sampled_from(PREFIXES), st.one_of(noise, texty), st.booleans())


@FUZZ
@given(
    data=_bytes_like_input(),
    kind=st.sampled_from(KINDS),
    chunk_rows=st.sampled_from([1, 3, 1000]),
    skip=st.booleans(),
    headers=st.sampled_from([None, ["a", "b", "y"]]),
)
def test_fuzz_random_bytes_give_a_frame_or_a_value_error(tmp_path, data, kind, chunk_rows, skip, headers):
    prefix, body, compress = data
    raw = prefix + body
    path = tmp_path / "f.bin"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    features = "f" if kind == "application/jsonlines" else "rows" if kind == "application/json" else None
    label = "y" if kind in ("application/jsonlines", "application/json") else None
    try:
        r = read_dataset(
            path,
            kind,
            headers=headers,
            features=features,
            label=label,
            chunk_rows=chunk_rows,
            skip_bad_rows=skip,
            required=("y",) if kind == "text/csv" and headers else (),
        )
        for c in r:
            assert isinstance(c.frame, pd.DataFrame) and len(c.lines) == len(c.frame)
    except ValueError:
        pass


@FUZZ
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["F", "M", "x y", "é", ""]), st.integers(-(2**70), 2**70), st.sampled_from(["0", "1"])
        ),
        min_size=1,
        max_size=30,
    ),
    chunk_rows=st.sampled_from([1, 2, 7, 1000]),
    headers=st.booleans(),
    gz=st.booleans(),
)
def test_fuzz_bom_and_gzip_change_nothing(tmp_path, monkeypatch, rows, chunk_rows, headers, gz):
    buf = io.StringIO()
    buf.write("s,n,y\n")
    for s, n, y in rows:
        buf.write(f"{s},{n},{y}\n")
    plain = tmp_path / "p.csv"
    plain.write_text(buf.getvalue(), encoding="utf-8")
    other = tmp_path / "o.csv"
    data = (BOM + buf.getvalue()).encode("utf-8")
    other.write_bytes(gzip.compress(data) if gz else data)
    kw = {"chunk_rows": chunk_rows, "headers": ["s", "n", "y"] if headers else None}
    for csv_path in CSV_PATHS:
        try:
            want = _read(plain, csv_path=csv_path, monkeypatch=monkeypatch, **kw)
        except DataError as exc:  # an integer beyond the sampled type: same error both ways
            with pytest.raises(DataError) as info:
                _read(other, csv_path=csv_path, monkeypatch=monkeypatch, **kw)
            assert str(info.value).replace("o.csv", "p.csv") == str(exc)
            continue
        got = _read(other, csv_path=csv_path, monkeypatch=monkeypatch, **kw)
        pd.testing.assert_frame_equal(got, want)
        assert [int(v) for v in got["n"]] == [n for _, n, _ in rows]  # exact, however large


# ---- the same through `clarion analyze` --------------------------------------------------------------


def _analyze(tmp_path, data, skip=True, **cfg_extra):
    from clarion.cli import main

    cfg = {
        "dataset_type": "text/csv",
        "label": "approved",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
        "methods": {"pre_training_bias": {"methods": ["CI", "DPL"]}},
    }
    cfg.update(cfg_extra)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "out"
    code = main(
        ["analyze", "--config", str(path), "--data", str(data), "--output", str(out), "--quiet"]
        + (["--skip-bad-rows"] if skip else [])
    )
    return code, out


def test_cli_names_headers_and_the_real_format(tmp_path, capsys):
    from clarion.cli import EXIT_ERROR, EXIT_OK

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"approved": rng.integers(0, 2, 40), "age": rng.integers(18, 80, 40), "sex": rng.choice(["F", "M"], 40)}
    )
    csv_path = tmp_path / "d.csv"
    df.to_csv(csv_path, index=False)
    code, _ = _analyze(tmp_path, csv_path, headers=["approved", "age", "sex", "extra"])
    assert code == EXIT_ERROR
    assert MSG_HEADERS_COUNT.format(path=csv_path, n=4, m=3, line=1) in capsys.readouterr().err
    code, _ = _analyze(tmp_path, csv_path, headers=["age", "approved", "sex"])
    assert code == EXIT_ERROR and "`headers` in another order" in capsys.readouterr().err
    pq_path = tmp_path / "d.parquet"
    df.to_parquet(pq_path)
    code, _ = _analyze(tmp_path, pq_path)
    assert code == EXIT_ERROR and "the file is a Parquet file but dataset_type is 'text/csv'" in capsys.readouterr().err
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    code, out = _analyze(tmp_path, bom, skip=False, headers=["approved", "age", "sex"])
    assert code == EXIT_OK
    doc = json.loads((out / "analysis.json").read_text())
    ci = {m["name"]: m["value"] for m in doc["pre_training_bias_metrics"]["facets"]["sex"][0]["metrics"]}
    n_f, n_m = int((df["sex"] == "F").sum()), int((df["sex"] == "M").sum())
    assert ci["CI"] == pytest.approx((n_m - n_f) / len(df))  # the header line was not a row


# ---- fuzz: JSON records of any shape, read in any chunk size, give the same outcome ------------------

_SCALAR = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "a", "1", " 2", "x y"]),
    st.none(),
    st.booleans(),
)
_VALUE = st.one_of(_SCALAR, st.lists(_SCALAR, max_size=2), st.dictionaries(st.sampled_from("ab"), _SCALAR, max_size=2))
_FEATURES = st.one_of(
    st.lists(_VALUE, min_size=1, max_size=4),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _VALUE, min_size=1, max_size=4),
    _SCALAR,
)


def _outcome_of(path, kind, **kw):
    r = read_dataset(path, kind, **kw)
    try:
        frame, lines = r.read_all()
    except DataError as exc:
        return str(exc), r.skipped
    return (frame, lines), r.skipped


@FUZZ
@given(
    records=st.lists(st.fixed_dictionaries({"f": _FEATURES, "y": _SCALAR}), min_size=1, max_size=15),
    skip=st.booleans(),
    headers=st.sampled_from([None, ["a", "b", "y"], ["b", "a", "y"]]),
)
def test_fuzz_json_records_any_shape_same_outcome_in_any_chunking(tmp_path, records, skip, headers):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    jpath = tmp_path / "r.json"
    jpath.write_text(json.dumps({"rows": [r["f"] for r in records], "y": [r["y"] for r in records]}))
    for p, kind, feats in ((path, "application/jsonlines", "f"), (jpath, "application/json", "rows")):
        outcomes = []
        for k in (1, 4, 1000):
            try:
                outcomes.append(
                    _outcome_of(p, kind, features=feats, label="y", headers=headers, skip_bad_rows=skip, chunk_rows=k)
                )
            except ValueError as exc:  # (only DataError is expected; any other ValueError is a failure)
                raise AssertionError(f"{type(exc).__name__}: {exc}") from exc
        first, skipped = outcomes[0]
        for got, s in outcomes[1:]:
            if isinstance(first, str) or isinstance(got, str):
                # an error either way (which malformed record is reported first may depend on the
                # chunking, as the checks run chunk by chunk), the same error when skipping
                assert isinstance(first, str) and isinstance(got, str)
                if skip:
                    assert got == first
                continue
            assert s == skipped
            np.testing.assert_array_equal(got[1], first[1])
            # the same values, exactly (a column mixing JSON booleans and numbers may be typed by
            # chunk: pandas concatenates int64 and bool chunks as int64, where one chunk is object)
            pd.testing.assert_frame_equal(got[0], first[0], check_dtype=False, check_exact=True)
