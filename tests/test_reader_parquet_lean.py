"""Parquet chunks built without ``to_pandas`` for their plain numeric columns (issue 21 part 3).

``clarion.dataset._coded_frame`` takes integer, float and boolean columns without nulls straight
from their Arrow buffers (copied into pyarrow's memory pool where Arrow's are read-only) and
builds the dictionary columns' Categoricals with one shared dtype per set of values. The chunks
must be exactly those of the ``to_pandas`` path (``_LEAN_PARQUET`` off): the same columns, dtypes,
values, categories and skips, whatever the dtypes, nulls, stored pandas metadata and row groups,
and the arrays must be writable (pandas writes into a frame's arrays in place).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import dataset
from clarion.dataset import read_dataset

N_MAX = 60

_KINDS = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "bool",
    "Int64",  # pandas nullable: to_pandas restores it from the stored metadata
    "float_nan",
    "int_null",  # written by pyarrow with nulls (no pandas metadata for the column's dtype)
    "text",
    "text_null",
    "category",
    "datetime",
]


def _column(kind: str, n: int, rng: np.random.Generator):
    if kind in ("int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"):
        info = np.iinfo(kind)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), n, endpoint=True).astype(kind)
    if kind in ("float32", "float64"):
        return rng.normal(0, 1e3, n).astype(kind)
    if kind == "bool":
        return rng.random(n) < 0.5
    if kind == "Int64":
        return pd.array(rng.integers(0, 5, n), dtype="Int64")
    if kind == "float_nan":
        v = rng.normal(0, 1, n)
        v[rng.random(n) < 0.3] = np.nan
        return v
    if kind == "int_null":
        return pa.array([None if rng.random() < 0.3 else int(x) for x in rng.integers(0, 9, n)], type=pa.int64())
    if kind == "text":
        return rng.choice(["a", "b", "é", ""], n).astype(object)
    if kind == "text_null":
        return np.array([None if rng.random() < 0.3 else str(x) for x in rng.choice(list("xyz"), n)], dtype=object)
    if kind == "category":
        return pd.Categorical(rng.choice(["p", "q"], n))
    return pd.to_datetime(rng.integers(0, 10**9, n), unit="s")


def _write(path, kinds, n, seed, how, row_group):
    rng = np.random.default_rng(seed)
    cols = {f"c{i}_{k}": _column(k, n, rng) for i, k in enumerate(kinds)}
    if how == "pyarrow":  # no pandas metadata
        table = pa.table({c: (v if isinstance(v, pa.Array) else pa.array(np.asarray(v))) for c, v in cols.items()})
        pq.write_table(table, path, row_group_size=row_group)
        return
    df = pd.DataFrame({c: (v.to_pandas() if isinstance(v, pa.Array) else v) for c, v in cols.items()})
    if how == "named_index":
        df.index = pd.Index(np.arange(100, 100 + n), name="rowid")
    df.to_parquet(path, index=None if how == "named_index" else how == "range_index", row_group_size=row_group)


def _read(path, codes, chunk_rows, lean):
    old = dataset._LEAN_PARQUET
    dataset._LEAN_PARQUET = lean
    try:
        r = read_dataset(str(path), "application/x-parquet", chunk_rows=chunk_rows, codes=codes)
        return [(c.frame, c.lines.tolist(), dict(c.coded)) for c in r]
    finally:
        dataset._LEAN_PARQUET = old


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.sampled_from(_KINDS), min_size=1, max_size=6),
    n=st.integers(1, N_MAX),
    seed=st.integers(0, 2**16),
    how=st.sampled_from(["pandas", "pyarrow", "range_index", "named_index"]),
    row_group=st.integers(1, N_MAX),
    chunk_rows=st.integers(1, N_MAX + 5),
    code_text=st.booleans(),
)
def test_lean_chunks_equal_to_pandas_chunks(tmp_path, kinds, n, seed, how, row_group, chunk_rows, code_text):
    path = tmp_path / "d.parquet"
    _write(path, kinds, n, seed, how, row_group)
    names = pq.ParquetFile(path).schema_arrow.names
    codes = tuple(c for c in names if "text" in c) if code_text else ()
    lean = _read(path, codes, chunk_rows, True)
    ref = _read(path, codes, chunk_rows, False)
    assert len(lean) == len(ref)
    for (fa, la, ca), (fb, lb, cb) in zip(lean, ref):
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        assert la == lb and ca.keys() == cb.keys()
        for c in fa.columns:
            assert fa[c].dtype == fb[c].dtype, c
            if isinstance(fa[c].dtype, np.dtype) and fa[c].dtype != object:
                fa.loc[0, c] = fa[c].iloc[-1]  # writable: pandas assigns in place


def test_plain_columns_taken_and_writable(tmp_path):
    """The plain numeric columns of a pandas-written file come from Arrow (no to_pandas), writable,
    with the same values; a nullable Int64 column and a stored named index keep to_pandas."""
    n = 1000
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "x": rng.normal(size=n),
            "b": rng.random(n) < 0.5,
            "k": pd.array(rng.integers(0, 3, n), dtype="Int64"),
            "s": rng.choice(["F", "M"], n),
        }
    )
    df.to_parquet(tmp_path / "d.parquet", index=False, row_group_size=300)
    table = pq.read_table(tmp_path / "d.parquet", read_dictionary=["s"])
    plain = dataset._plain_columns(table, ["s"])
    assert set(plain) == {"age", "x", "b"}  # Int64 is restored by to_pandas: not taken
    for c, a in plain.items():
        assert a.flags.writeable
        np.testing.assert_array_equal(a, df[c].to_numpy())
    frame = dataset._coded_frame(table, ["s"])
    assert frame["k"].dtype == pd.Int64Dtype()
    assert list(frame["s"].astype(str)) == list(df["s"])
    df.index = pd.Index(np.arange(n), name="rowid")
    df.to_parquet(tmp_path / "i.parquet", row_group_size=300)
    assert dataset._plain_columns(pq.read_table(tmp_path / "i.parquet"), []) is None


def test_shared_dtype_per_value_set():
    """Blocks with the same dictionary values share one CategoricalDtype; "1" and 1 are other values."""
    a = dataset._local_categorical(pa.chunked_array([pa.array(["u", "v", "u"]).dictionary_encode()]))
    b = dataset._local_categorical(pa.chunked_array([pa.array(["u", "v"]).dictionary_encode()]))
    assert a.dtype is b.dtype
    assert dataset._categories(["1"]) is not dataset._categories([1])
    c = dataset._local_categorical(pa.chunked_array([pa.array(["v", None, "u"]).dictionary_encode()]))
    assert c.codes.tolist() == [0, -1, 1] and list(c.categories) == ["v", "u"]


@pytest.mark.parametrize("nbytes", [0, 8, 400_000])
def test_writable_copy(nbytes):
    src = pa.array(np.arange(nbytes // 8, dtype=np.int64)).to_numpy()
    assert not src.flags.writeable or nbytes == 0
    out = dataset._writable(src)
    assert out.flags.writeable and out.dtype == src.dtype
    np.testing.assert_array_equal(out, src)
    if len(out):
        out[0] = 7
        assert src[0] == 0


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 127),
    n=st.sampled_from([0, 1, 4095, 4096, 5000]),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.int8, np.int16]),
)
def test_remapped_codes_equal_take(k, n, seed, dtype):
    """A chunk's codes into the running vocabulary (``_remapped``, bytes.translate for int8) equal
    ``np.take`` of the map, a missing value (-1) included."""
    rng = np.random.default_rng(seed)
    local = rng.integers(-1, k, n).astype(dtype)
    remap = np.append(rng.permutation(k), -1).astype(np.int8 if k < 127 else np.int16)
    got = dataset._remapped(remap, local)
    np.testing.assert_array_equal(got, np.take(remap, local))
    assert got.dtype == remap.dtype and (got.flags.writeable or n == 0)
