"""Parquet batches prepared on the reader's thread and made frames once (issue 21 part 3, session 18).

``clarion.dataset._arrow_block`` prepares each decoded batch on the reader's thread (plain numeric
columns as writable views of the buffers Arrow decoded them into, coded text coded into its
vocabulary where every value is known, other columns through ``to_pandas``), and
``Reader._block_chunk`` makes the chunk's frame once on the caller's thread, typing and coding
it before the frame is built where no row can be dropped. The chunks must be exactly those of the
former way (``_FAST_PARQUET`` off: each batch a frame on the reader's thread, then typed and coded
as a frame): the same frames, dtypes, categories (in the same order), codes, lines, skips and
errors (a bad value names the file, the record and the column), with and without the read-ahead
thread, whatever the column types, nulls, row groups, chunk sizes, codes, ``usecols``,
``headers`` and required columns. Memory stays bounded by the chunk: a file of one large row
group is read chunk by chunk (Arrow's peak allocation, measured in a fresh interpreter, is a
small part of the decoded file). The type sample's row-group statistics, the first-seen order of
new vocabulary values and the identity remap are compared with their plain references. CSV
blocks are typed and coded before their frame is made the same way (``_CSV_BLOCK_FRAMES``):
the same chunks as made a frame first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import dataset
from clarion.dataset import DataError, read_dataset

PARQUET = "application/x-parquet"
_KINDS = [
    "int64",
    "int32",
    "uint8",
    "uint64_big",
    "float64",
    "float32",
    "bool",
    "int_null",
    "float_nan",
    "bool_null",
    "text",
    "text_null",
    "large_text",
    "numtext",
    "category",
]
_AS_THEY_ARE = ["int64", "int32", "uint8", "uint64_big", "float64", "float32", "float_nan", "bool", "text", "text_null"]
_WORDS = ["F", "M", "é", "", "north", "東京", "a b"]


def _array(kind: str, n: int, rng: np.random.Generator) -> pa.Array:
    if kind in ("int64", "int32", "uint8"):
        return pa.array(rng.integers(0, 120, n).astype(kind))
    if kind == "uint64_big":
        return pa.array(rng.integers(0, 5, n).astype(np.uint64) + np.uint64(2**63), pa.uint64())
    if kind in ("float64", "float32"):
        return pa.array(rng.normal(0, 100, n).astype(kind))
    if kind == "bool":
        return pa.array(rng.random(n) < 0.5)
    if kind == "int_null":
        return pa.array([None if rng.random() < 0.3 else int(v) for v in rng.integers(-9, 9, n)], pa.int64())
    if kind == "float_nan":
        v = rng.normal(0, 1, n)
        v[rng.random(n) < 0.3] = np.nan
        return pa.array(v)
    if kind == "bool_null":
        return pa.array([None if rng.random() < 0.3 else bool(v) for v in rng.random(n) < 0.5], pa.bool_())
    if kind in ("text", "large_text"):
        words = rng.choice(_WORDS, n).tolist()
        return pa.array(words, pa.large_string() if kind == "large_text" else pa.string())
    if kind == "text_null":
        return pa.array([None if rng.random() < 0.25 else str(w) for w in rng.choice(_WORDS[:4], n)])
    if kind == "numtext":  # numbers as text (typed numeric by the sample), one of them maybe not a number
        vals = [str(v) for v in rng.integers(-50, 50, n)]
        if n >= 4 and rng.random() < 0.5:
            vals[int(rng.integers(1, n))] = "x7"
        return pa.array(vals)
    return pa.array(rng.choice(["p", "q", "r"], n).tolist()).dictionary_encode()  # category


def _write(path, table: pa.Table, sizes: list[int], how: str, dictionary: bool) -> None:
    if how == "pandas":  # with pandas metadata (a category column stays categorical)
        table = pa.Table.from_pandas(table.to_pandas(), preserve_index=False)
    elif how == "range_index":  # a range index from 5 stored in the metadata (to_pandas restores it)
        df = table.to_pandas()
        df.index = pd.RangeIndex(5, 5 + len(df))
        table = pa.Table.from_pandas(df, preserve_index=None)
    with pq.ParquetWriter(path, table.schema, use_dictionary=dictionary) as w:
        at = 0
        for s in sizes:  # one row group each
            w.write_table(table.slice(at, s), row_group_size=max(s, 1))
            at += s


def _read(path, *, fast: bool, prefetch: bool, monkeypatch, **kw):
    """The chunks (frame, start, lines, coded), skips, and the error if one ends the reading."""
    monkeypatch.setattr(dataset, "_FAST_PARQUET", fast)
    r = read_dataset(str(path), PARQUET, prefetch=prefetch, **kw)
    chunks, error = [], None
    try:
        for c in r:
            chunks.append((c.frame, c.start, c.lines.tolist(), dict(c.coded)))
    except DataError as exc:
        error = str(exc)
    return chunks, error, r.skipped, list(r.skipped_examples)


def _same(got, want) -> None:
    (ca, ea, sa, xa), (cb, eb, sb, xb) = got, want
    assert (ea, sa, xa) == (eb, sb, xb)
    assert len(ca) == len(cb)
    for (fa, a0, la, da), (fb, b0, lb, db) in zip(ca, cb):
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        assert (a0, la, da) == (b0, lb, db)
        assert list(fa.columns) == list(fb.columns)
        for c in fa.columns:
            assert fa[c].dtype == fb[c].dtype, c
            if isinstance(fa[c].dtype, pd.CategoricalDtype):
                assert list(fa[c].cat.categories) == list(fb[c].cat.categories), c
                assert fa[c].cat.codes.dtype == fb[c].cat.codes.dtype, c
                np.testing.assert_array_equal(fa[c].cat.codes, fb[c].cat.codes)


@st.composite
def _files(draw):
    n = draw(st.integers(1, 90))
    # half the files of the kinds a chunk takes without typing it as a frame (numbers, widened or
    # not, booleans, text: the frame built once), half of any kind (most then typed as a frame)
    kinds = draw(st.lists(st.sampled_from(draw(st.sampled_from([_KINDS, _AS_THEY_ARE]))), min_size=1, max_size=6))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=4, unique=True)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, n]) if b > a]
    names = [f"c{i}_{k}" for i, k in enumerate(kinds)]
    codes = draw(st.lists(st.sampled_from(names), unique=True))
    return {
        "n": n,
        "kinds": kinds,
        "names": names,
        "sizes": sizes,
        "seed": draw(st.integers(0, 2**16)),
        "how": draw(st.sampled_from(["pandas", "pyarrow", "range_index"])),
        "dictionary": draw(st.booleans()),
        "chunk_rows": draw(st.integers(1, n + 10)),
        "codes": tuple(codes),
        "required": tuple(draw(st.lists(st.sampled_from(names), max_size=2, unique=True))),
        "skip": draw(st.booleans()),
        "select": draw(st.sampled_from(["all", "usecols", "headers"])),
        "pick": draw(st.lists(st.sampled_from(names), min_size=1, unique=True)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_files())
def test_fast_chunks_equal_former_chunks(tmp_path, monkeypatch, spec):
    """Generated files (column types, nulls, row groups of random sizes, dictionary or plain
    pages, pandas metadata or none, a stored range index), read with random chunk sizes, codes,
    ``usecols`` / ``headers``, required columns and skips: the chunks, skips and errors of the
    former way, with and without the read-ahead thread."""
    rng = np.random.default_rng(spec["seed"])
    table = pa.table({c: _array(k, spec["n"], rng) for c, k in zip(spec["names"], spec["kinds"])})
    path = tmp_path / "d.parquet"
    _write(path, table, spec["sizes"], spec["how"], spec["dictionary"])
    kw = {
        "chunk_rows": spec["chunk_rows"],
        "codes": spec["codes"],
        "required": spec["required"],
        "skip_bad_rows": spec["skip"],
    }
    if spec["select"] == "usecols":
        kw["usecols"] = [c for c in spec["names"] if c in spec["pick"] or c in spec["required"]]
    elif spec["select"] == "headers":
        kw["headers"] = list(dict.fromkeys([*spec["pick"], *spec["required"]]))
    want = _read(path, fast=False, prefetch=False, monkeypatch=monkeypatch, **kw)
    for prefetch in (False, True):
        _same(_read(path, fast=True, prefetch=prefetch, monkeypatch=monkeypatch, **kw), want)


@pytest.mark.parametrize("chunk_rows", [4, 10, 100])
@pytest.mark.parametrize("codes", [(), ("s",)])
def test_stored_range_index(tmp_path, monkeypatch, chunk_rows, codes):
    """A range index stored in the pandas metadata (from 5): ``to_pandas`` restores it on a batch
    of the whole file; the chunks' index is 0 .. n - 1 as the former way makes it."""
    df = pd.DataFrame(
        {"x": np.arange(10), "t": list("abcdefghij"), "s": list("uvuvuvuvuv")}, index=pd.RangeIndex(5, 15)
    )
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    kw = {"chunk_rows": chunk_rows, "codes": codes}
    got = _read(path, fast=True, prefetch=True, monkeypatch=monkeypatch, **kw)
    _same(got, _read(path, fast=False, prefetch=False, monkeypatch=monkeypatch, **kw))
    assert all(type(f.index) is pd.RangeIndex and f.index.start == 0 for f, *_ in got[0])


def test_values_known_since_the_thread_looked(tmp_path, monkeypatch):
    """A batch the reader's thread prepared before the job's thread added its values to the
    vocabulary (here: the thread never sees it) is coded into the vocabulary on the job's thread
    without adding anything: one shared dtype after the first chunk, the same chunks."""
    rng = np.random.default_rng(5)
    n = 5000
    df = pd.DataFrame({"f": rng.choice(["u", "v", "w"], n), "y": rng.integers(0, 2, n)})
    path = tmp_path / "d.parquet"
    df.to_parquet(path, index=False, row_group_size=1000)
    blind = dataset._arrow_block
    monkeypatch.setattr(dataset, "_arrow_block", lambda b, coded, vocabs, cols: blind(b, coded, {}, cols))
    calls = []
    learn = dataset._Vocabulary.categorical

    def counted(self, local, values, *rest):
        calls.append(len(local))
        return learn(self, local, values, *rest)

    monkeypatch.setattr(dataset._Vocabulary, "categorical", counted)
    got = _read(path, fast=True, prefetch=True, monkeypatch=monkeypatch, chunk_rows=1000, codes=("f",))
    assert calls == [1000]  # (the first chunk's values only)
    assert all(f["f"].dtype is got[0][0][0]["f"].dtype for f, *_ in got[0])
    monkeypatch.setattr(dataset, "_arrow_block", blind)
    _same(got, _read(path, fast=False, prefetch=False, monkeypatch=monkeypatch, chunk_rows=1000, codes=("f",)))


def test_vocabulary_past_max_codes_equals_former(tmp_path, monkeypatch):
    """A coded column whose vocabulary would pass ``MAX_CODES`` values goes back to its values
    from that chunk on: the same chunks as the former way."""
    n = dataset.MAX_CODES + 9000
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {"s": [f"v{i}" for i in rng.permutation(n)], "g": rng.choice(["a", "b"], n), "y": rng.integers(0, 2, n)}
    )
    path = tmp_path / "d.parquet"
    df.to_parquet(path, index=False, row_group_size=7000)
    kw = {"chunk_rows": 10_000, "codes": ("s", "g"), "required": ("s",)}
    got = _read(path, fast=True, prefetch=True, monkeypatch=monkeypatch, **kw)
    _same(got, _read(path, fast=False, prefetch=False, monkeypatch=monkeypatch, **kw))
    coded = [c[3] for c in got[0]]
    assert "s" in coded[0] and "s" not in coded[-1] and all("g" in c for c in coded)


_CSV_COLUMNS = {
    "int": lambda rng, n: [str(v) for v in rng.integers(-9, 99, n)],
    "float": lambda rng, n: [f"{v:.3f}" for v in rng.normal(0, 9, n)],
    "word": lambda rng, n: rng.choice(["F", "M", "north", "é"], n).tolist(),
    "word_empty": lambda rng, n: rng.choice(["a", "b", ""], n).tolist(),
    "quoted": lambda rng, n: rng.choice(['"x, y"', "z", '"q""r"'], n).tolist(),
    "badnum": lambda rng, n: [str(v) if i != n // 2 or n < 4 else "7x" for i, v in enumerate(rng.integers(0, 9, n))],
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.sampled_from(sorted(_CSV_COLUMNS)), min_size=1, max_size=5),
    n=st.integers(1, 80),
    seed=st.integers(0, 2**16),
    chunk_rows=st.integers(1, 90),
    codes=st.lists(st.integers(0, 4), max_size=5),
    required=st.lists(st.integers(0, 4), max_size=2),
    skip=st.booleans(),
    usecols=st.booleans(),
)
def test_csv_blocks_typed_before_their_frame_equal_former(
    tmp_path, monkeypatch, kinds, n, seed, chunk_rows, codes, required, skip, usecols
):
    """CSV blocks typed and coded before their frame is made (``_CSV_BLOCK_FRAMES``): the same
    chunks, skips and errors as made a frame first, with and without the read-ahead thread."""
    rng = np.random.default_rng(seed)
    names = [f"c{i}_{k}" for i, k in enumerate(kinds)]
    cols = [_CSV_COLUMNS[k](rng, n) for k in kinds]
    path = tmp_path / "d.csv"
    path.write_text(",".join(names) + "\n" + "".join(",".join(r) + "\n" for r in zip(*cols)))
    req = tuple(dict.fromkeys(names[i] for i in required if i < len(names)))
    kw = {"chunk_rows": chunk_rows, "codes": tuple(names[i] for i in codes if i < len(names)), "required": req}
    kw["skip_bad_rows"] = skip
    if usecols:
        kw["usecols"] = [c for j, c in enumerate(names) if j % 2 == 0 or c in req]

    def read(on, prefetch):
        monkeypatch.setattr(dataset, "_CSV_BLOCK_FRAMES", on)
        r = read_dataset(str(path), "text/csv", prefetch=prefetch, **kw)
        chunks, error = [], None
        try:
            chunks = [(c.frame, c.start, c.lines.tolist(), dict(c.coded)) for c in r]
        except DataError as exc:
            error = str(exc)
        return chunks, error, r.skipped, list(r.skipped_examples)

    want = read(False, False)
    for prefetch in (False, True):
        _same(read(True, prefetch), want)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("column", ["x", "s", "t"])
@pytest.mark.parametrize("coded", [True, False])
def test_required_missing_found_in_a_block(tmp_path, monkeypatch, fmt, column, coded):
    """A missing value in a required column of a block otherwise taken as it is (a float NaN, an
    empty text, a null): found and located as the former way finds it, or skipped and counted."""
    n = 50
    x = np.arange(n) / 4.0
    s = ["u", "v"] * (n // 2)
    t = ["p", "q"] * (n // 2)
    x[37] = np.nan
    s[23] = ""
    t[11] = None
    df = pd.DataFrame({"x": x, "s": s, "t": t, "y": np.arange(n)})
    path = tmp_path / f"d.{fmt}"
    kind = "text/csv" if fmt == "csv" else PARQUET
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False, row_group_size=20)
    line = {"x": 38, "s": 24, "t": 12}[column] + (fmt == "csv")
    unit = "line" if fmt == "csv" else "record"
    for on in (True, False):
        monkeypatch.setattr(dataset, "_CSV_BLOCK_FRAMES", on)
        monkeypatch.setattr(dataset, "_FAST_PARQUET", on)
        kw = {"chunk_rows": 16, "codes": ("s", "t") if coded else (), "required": (column,)}
        with pytest.raises(DataError) as err:
            list(read_dataset(str(path), kind, **kw))
        assert str(err.value) == f"{path}: {unit} {line}, column {column!r}: missing value"
        r = read_dataset(str(path), kind, skip_bad_rows=True, **kw)
        assert sum(len(c.frame) for c in r) == n - 1 and r.skipped == 1


def test_values_are_the_files(tmp_path):
    """The chunks' values (Chunk.plain) are pyarrow's: ``read_table(...).to_pandas()`` of a file
    written by pandas, row groups of several sizes, the text columns coded."""
    rng = np.random.default_rng(7)
    n = 5000
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50, 10, n).round(3),
            "sex": rng.choice(["F", "M"], n),
            "region": rng.choice(list("ABCDEFGH"), n),
            "flag": rng.random(n) < 0.3,
            "y": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "d.parquet"
    table = pa.Table.from_pandas(df, preserve_index=False)
    with pq.ParquetWriter(path, table.schema) as w:
        for a, b in [(0, 700), (700, 3100), (3100, 5000)]:
            w.write_table(table.slice(a, b - a), row_group_size=b - a)
    for chunk_rows in (333, 1000, 4000):
        r = read_dataset(str(path), PARQUET, chunk_rows=chunk_rows, codes=("sex", "region", "y"))
        chunks = list(r)
        assert [len(c.frame) for c in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
        assert all(set(c.coded) == {"sex", "region"} for c in chunks)
        got = pd.concat([c.plain() for c in chunks], ignore_index=True)
        pd.testing.assert_frame_equal(got, pq.read_table(path).to_pandas(), check_exact=True)
        lines = np.concatenate([c.lines for c in chunks])
        np.testing.assert_array_equal(lines, np.arange(1, n + 1))


def test_chunk_arrays_are_writable_and_their_own(tmp_path):
    """The numeric columns taken as views of Arrow's decoded buffers are writable, and writing
    into one chunk's frame changes no other chunk (each batch's buffers are its own)."""
    rng = np.random.default_rng(1)
    n = 3000
    df = pd.DataFrame({"a": rng.integers(0, 9, n), "x": rng.normal(size=n), "s": rng.choice(["u", "v"], n)})
    path = tmp_path / "d.parquet"
    df.to_parquet(path, index=False, row_group_size=1000)
    for chunk_rows in (400, 1000, 2500):  # inside, equal to and across row groups
        frames = [c.frame for c in read_dataset(str(path), PARQUET, chunk_rows=chunk_rows, codes=("s",))]
        for k, f in enumerate(frames):
            f.loc[:, "a"] = -1 - k  # in place (pandas writes into the frame's arrays)
            f.loc[f.index[0], "x"] = np.inf
        at = 0
        for k, f in enumerate(frames):
            assert (f["a"] == -1 - k).all()
            np.testing.assert_array_equal(f["x"].to_numpy()[1:], df["x"].to_numpy()[at + 1 : at + len(f)])
            at += len(f)


@pytest.mark.parametrize("fast", [True, False])
def test_errors_located(tmp_path, monkeypatch, fast):
    """A non-number in a column typed numeric and a missing required value: the file, the record
    and the column named, the same with the read-ahead thread; skipped and counted on request."""
    monkeypatch.setattr(dataset, "_FAST_PARQUET", fast)
    n = 3000
    rng = np.random.default_rng(2)
    num = [str(v) for v in rng.integers(0, 99, n)]
    num[2345] = "12abc"
    sex = rng.choice(["F", "M"], n).astype(object)
    sex[1500] = None
    df = pd.DataFrame({"num": num, "sex": sex, "y": rng.integers(0, 2, n)})
    path = tmp_path / "d.parquet"
    df.to_parquet(path, index=False, row_group_size=1000)
    for prefetch in (False, True):
        r = read_dataset(str(path), PARQUET, chunk_rows=700, codes=("sex",), required=("sex",), prefetch=prefetch)
        with pytest.raises(DataError) as err:
            list(r)
        assert str(err.value) == f"{path}: record 1501, column 'sex': missing value"
        r = read_dataset(str(path), PARQUET, chunk_rows=700, codes=("sex",), prefetch=prefetch)
        with pytest.raises(DataError) as err:
            list(r)
        assert str(err.value) == f"{path}: record 2346, column 'num': '12abc' is not a number"
        r = read_dataset(
            str(path), PARQUET, chunk_rows=700, codes=("sex",), required=("sex",), skip_bad_rows=True, prefetch=prefetch
        )
        rows = sum(len(c.frame) for c in r)
        assert rows == n - 2 and r.skipped == 2
        assert r.skipped_examples == [
            f"{path}: record 1501, column 'sex': missing value",
            f"{path}: record 2346, column 'num': '12abc' is not a number",
        ]


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys, tracemalloc
    import pyarrow as pa
    from clarion.dataset import read_dataset

    r = read_dataset(sys.argv[1], "application/x-parquet", chunk_rows=int(sys.argv[2]), codes=("s", "t"))
    for c in r:  # (a first pass: the modules the reader imports as it goes, imported)
        pass
    c = None
    tracemalloc.start()
    rows, at_chunk = 0, 0
    for c in r:
        rows += len(c.frame)
        at_chunk = max(at_chunk, pa.total_allocated_bytes())
    print(json.dumps({"rows": rows, "arrow_peak": pa.default_memory_pool().max_memory(),
                      "arrow_at_chunk": at_chunk, "traced_peak": tracemalloc.get_traced_memory()[1]}))
    """
)


def test_memory_bounded_by_the_chunk(tmp_path):
    """A file of one 600,000-row row group read in chunks of 20,000 rows: Arrow's peak allocation
    and the peak of memory numpy and Python allocate (tracemalloc), in a fresh interpreter, are a
    small part of the decoded file (the chunk, not the file)."""
    n, chunk = 600_000, 20_000
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "a": rng.integers(0, 9, n),
            "b": rng.integers(0, 90, n),
            "x": rng.integers(0, 16, n) / 4.0,
            "s": pa.array(rng.choice(["F", "M"], n)),
            "t": pa.array(rng.choice(list("ABCDEFGH"), n)),
            "y": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=n)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    decoded = pq.read_table(path, read_dictionary=["s", "t"]).nbytes  # the whole file as the reader decodes it
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(dataset.__file__))}
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(path), str(chunk)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rows"] == n
    assert decoded > 20e6
    assert got["arrow_peak"] < decoded / 4, (got, decoded)
    assert got["traced_peak"] < decoded / 4, (got, decoded)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 1500),
    group=st.integers(1, 1500),
    null_at=st.one_of(st.none(), st.integers(0, 1499)),
    kind=st.sampled_from(["int", "float", "bool", "text"]),
    stats=st.booleans(),
)
def test_sample_kinds_from_statistics_equal_frames(tmp_path, monkeypatch, n, group, null_at, kind, stats):
    """The type sample, numbers and booleans typed from their Arrow type where the row groups'
    statistics say the sample has no null (else their values read): the types of the frames'
    way, a null inside the sample or after it, in row groups of any size, with or without
    statistics."""
    vals = {
        "int": list(range(n)),
        "float": [i / 2 for i in range(n)],
        "bool": [i % 3 == 0 for i in range(n)],
        "text": [str(i % 7) if i % 5 else "w" for i in range(n)],
    }[kind]
    if null_at is not None and null_at < n:
        vals[null_at] = None
    table = pa.table({"v": vals, "k": pa.array(np.arange(n))})
    path = tmp_path / f"s{n}_{group}.parquet"
    pq.write_table(table, path, row_group_size=group, write_statistics=stats)
    got = {}
    for fast in (True, False):
        monkeypatch.setattr(dataset, "_FAST_SAMPLE", fast)
        r = read_dataset(str(path), PARQUET)
        got[fast] = (r._infer_types(PARQUET), r._names)
    assert got[True] == got[False]
    quick = dataset._parquet_sample_kinds(str(path))
    if null_at is not None and null_at < min(n, dataset.TYPE_SAMPLE_ROWS):
        assert quick is None  # (a null in the sample: the frames decide)
    elif kind != "text":
        assert quick == {"v": {"int": "int", "float": "float", "bool": "text"}[kind], "k": "int"}


def test_parquet_file_footer_read_again_when_the_file_changes(tmp_path):
    """The footer is parsed once for the sample and the pass, and again when the file changes
    between two readings by the same reader."""
    path = tmp_path / "d.parquet"
    pd.DataFrame({"x": [1, 2, 3], "s": ["a", "b", "a"]}).to_parquet(path, index=False)
    r = read_dataset(str(path), PARQUET, codes=("s",))
    assert [list(c.plain()["x"]) for c in r] == [[1, 2, 3]]
    pd.DataFrame({"x": [4, 5, 6, 7, 8], "s": ["c", "a", "c", "d", "e"]}).to_parquet(path, index=False)
    assert [list(c.plain()["x"]) for c in r] == [[4, 5, 6, 7, 8]]
    assert [list(c.plain()["s"]) for c in r] == [["c", "a", "c", "d", "e"]]


@settings(max_examples=300, deadline=None)
@given(
    k=st.integers(1, 60),
    codes=st.lists(st.integers(-1, 59), max_size=80),
    new=st.lists(st.booleans(), min_size=60, max_size=60),
    dtype=st.sampled_from([np.int8, np.int16, np.int32]),
)
def test_first_seen_equals_unique(k, codes, new, dtype):
    """The new values' first-seen order: what ``pandas.unique`` of the rows holding them gives."""
    local = np.array([c % (k + 1) - 1 if c >= 0 else -1 for c in codes], dtype=dtype)
    mask = np.array(new[:k])
    want = pd.unique(local[np.take(np.append(mask, False), local)])
    got = dataset._first_seen(local, mask)
    assert got.tolist() == want.tolist() and got.dtype == want.dtype


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 40),
    codes=st.lists(st.integers(-1, 39), max_size=50),
    local_dtype=st.sampled_from([np.int8, np.int16, np.int32]),
    remap_dtype=st.sampled_from([np.int8, np.int16, np.int32]),
    identity=st.booleans(),
    seed=st.integers(0, 99),
    long=st.booleans(),
)
def test_remapped_equals_take(k, codes, local_dtype, remap_dtype, identity, seed, long):
    """Codes mapped through a table, the identity cast rather than taken, long codes into int8
    translated as bytes: ``np.take``'s codes in the table's dtype, writable."""
    local = np.array([c % k if c >= 0 else -1 for c in codes], dtype=local_dtype)
    if long:  # (the bytes-translate path: 4,096 codes or more)
        local = np.tile(local, 4096 // max(1, len(local)) + 1) if len(local) else local
    local.flags.writeable = bool(seed % 2)
    table = np.arange(k) if identity else np.random.default_rng(seed).permutation(k)
    remap = np.append(table, -1).astype(remap_dtype)
    got = dataset._remapped(remap, local)
    want = np.take(remap, local)
    assert got.dtype == remap.dtype and got.flags.writeable
    np.testing.assert_array_equal(got, want)
