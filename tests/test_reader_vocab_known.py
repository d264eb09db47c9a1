"""Coded text columns coded straight into the running vocabulary (issue 21 part 3).

A block whose coded column holds only values the column's vocabulary already has is coded into
it where the block is built (``clarion.dataset._Vocabulary.known``: the reader's thread for
Parquet, the compiled CSV block's build for CSV), and ``Reader._global_codes`` takes it as it is;
a block with a new value goes the old way (a Categorical of its own values, then remapped), so
values are still added in the order their kept rows come. The chunks must be exactly those of
the old way (``known`` off): the same frames, categories in the same order, codes, lines, skips,
with and without the read-ahead thread, whatever the values, nulls, empty values and row groups.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import dataset
from clarion.dataset import read_dataset

_VALUES = ["a", "b", "c", "é", "", "1", "東京", "a b"]


def _read(path, kind, *, known, prefetch, chunk_rows, required, skip):
    old = dataset._Vocabulary.known
    if not known:
        dataset._Vocabulary.known = lambda self, parts: None
    try:
        r = read_dataset(
            str(path),
            kind,
            chunk_rows=chunk_rows,
            codes=("f", "g"),
            required=required,
            prefetch=prefetch,
            skip_bad_rows=skip,
        )
        chunks = [(c.frame, c.lines.tolist(), dict(c.coded)) for c in r]
        return chunks, r.skipped, list(r.skipped_examples)
    finally:
        dataset._Vocabulary.known = old


def _same(a, b):
    (ca, sa, ea), (cb, sb, eb) = a, b
    assert (sa, ea) == (sb, eb)
    assert len(ca) == len(cb)
    for (fa, la, da), (fb, lb, db) in zip(ca, cb):
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        assert la == lb and da == db
        for c in fa.columns:
            if isinstance(fa[c].dtype, pd.CategoricalDtype):
                assert list(fa[c].cat.categories) == list(fb[c].cat.categories), c
                np.testing.assert_array_equal(fa[c].cat.codes, fb[c].cat.codes)


def _frame(draw_values, n, seed, nulls):
    rng = np.random.default_rng(seed)
    f = rng.choice(draw_values, n).astype(object)
    g = rng.choice(draw_values[::-1], n).astype(object)
    if nulls:
        f[rng.random(n) < 0.2] = None
    return pd.DataFrame({"x": rng.integers(0, 9, n), "f": f, "g": g, "y": rng.integers(0, 2, n)})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.sampled_from(_VALUES), min_size=1, max_size=6, unique=True),
    n=st.integers(1, 120),
    seed=st.integers(0, 2**16),
    row_group=st.integers(1, 60),
    chunk_rows=st.integers(1, 70),
    nulls=st.booleans(),
    required=st.booleans(),
)
def test_parquet_chunks_equal_old_way(tmp_path, values, n, seed, row_group, chunk_rows, nulls, required):
    path = tmp_path / "d.parquet"
    _frame(values, n, seed, nulls).to_parquet(path, index=False, row_group_size=row_group)
    req = ("f",) if required else ()
    ref = _read(
        path, "application/x-parquet", known=False, prefetch=False, chunk_rows=chunk_rows, required=req, skip=True
    )
    for prefetch in (False, True):
        got = _read(
            path, "application/x-parquet", known=True, prefetch=prefetch, chunk_rows=chunk_rows, required=req, skip=True
        )
        _same(got, ref)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.sampled_from([v for v in _VALUES if v]), min_size=1, max_size=6, unique=True),
    n=st.integers(1, 120),
    seed=st.integers(0, 2**16),
    chunk_rows=st.integers(1, 70),
    required=st.booleans(),
)
def test_csv_chunks_equal_old_way(tmp_path, values, n, seed, chunk_rows, required):
    path = tmp_path / "d.csv"
    df = _frame(values, n, seed, False)
    df.loc[df.index[:: max(1, n // 3)], "f"] = ""  # empty values: missing where f is required
    df.to_csv(path, index=False)
    req = ("f",) if required else ()
    ref = _read(path, "text/csv", known=False, prefetch=False, chunk_rows=chunk_rows, required=req, skip=True)
    for prefetch in (False, True):
        _same(
            _read(path, "text/csv", known=True, prefetch=prefetch, chunk_rows=chunk_rows, required=req, skip=True), ref
        )


@pytest.mark.parametrize("kind", ["application/x-parquet", "text/csv"])
def test_known_block_is_taken_as_it_is(tmp_path, kind):
    """After the first chunk, a chunk of known values is coded into the vocabulary's dtype (no
    second Categorical), and its codes decode to the file's values."""
    n = 5000
    df = _frame(["u", "v", "w"], n, 1, kind != "text/csv")
    if kind == "text/csv":
        path = tmp_path / "d.csv"
        df.to_csv(path, index=False)
    else:
        path = tmp_path / "d.parquet"
        df.to_parquet(path, index=False, row_group_size=1000)
    calls = []
    old = dataset._Vocabulary.categorical

    def counted(self, local, values, *rest):
        calls.append(len(local))
        return old(self, local, values, *rest)

    dataset._Vocabulary.categorical = counted
    try:
        chunks = list(read_dataset(str(path), kind, chunk_rows=1000, codes=("f", "g")))
    finally:
        dataset._Vocabulary.categorical = old
    assert len(chunks) == 5
    assert len(calls) == 2  # the first chunk's two coded columns only
    got = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert got["f"].isna().tolist() == df["f"].isna().tolist()
    assert got["f"].dropna().astype(str).tolist() == df["f"].dropna().tolist()
    assert got["g"].astype(str).tolist() == df["g"].tolist()


def test_known_refuses_a_new_value_and_codes_nulls():
    voc = dataset._Vocabulary()
    assert voc.known([(["a"], np.array([0, 0], dtype=np.int32))]) is None
    voc.categorical(np.array([0, 1, -1], dtype=np.int8), np.array(["a", "b"], dtype=object))
    got = voc.known([(["b", "a"], np.array([0, -1, 1], dtype=np.int32)), (["a"], np.array([0], dtype=np.int32))])
    assert got.dtype is voc.dtype
    assert got.codes.tolist() == [1, -1, 0, 0]
    assert voc.known([(["a", "z"], np.array([0], dtype=np.int32))]) is None  # z: new, even unused
    assert voc.values == ["a", "b"]  # nothing added


def test_known_while_values_are_added_concurrently():
    """``known`` on one thread while another adds values: every block it codes decodes to its values
    (it codes against the dtype it reads first)."""
    voc = dataset._Vocabulary()
    words = [f"w{i}" for i in range(3000)]
    done = threading.Event()

    def add():
        for k in range(0, len(words), 7):
            part = np.array(words[k : k + 7], dtype=object)
            voc.categorical(np.arange(len(part), dtype=np.int16), part)
        done.set()

    t = threading.Thread(target=add)
    t.start()
    rng = np.random.default_rng(0)
    seen = 0
    while not done.is_set() or seen == 0:
        top = max(1, len(voc.values))
        vals = [words[i] for i in rng.integers(0, top, 5)]
        codes = rng.integers(-1, 5, 50).astype(np.int32)
        got = voc.known([(vals, codes)])
        if got is not None:
            seen += 1
            want = [None if c < 0 else vals[c] for c in codes]
            assert [None if pd.isna(v) else v for v in got] == want
    t.join()
    assert seen > 0


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32])
@pytest.mark.parametrize("writeable", [True, False])
def test_remapped_identity(dtype, writeable):
    """An identity map gives the codes as they are: a writable array equal to np.take's, never a
    read-only view."""
    local = np.array([0, 2, -1, 1, 2] * 1000, dtype=dtype)
    local.flags.writeable = writeable
    remap = np.array([0, 1, 2, -1], dtype=dtype)
    got = dataset._remapped(remap, local)
    np.testing.assert_array_equal(got, np.take(remap, local))
    assert got.dtype == remap.dtype and got.flags.writeable
    other = np.array([2, 1, 0, -1], dtype=dtype)
    np.testing.assert_array_equal(dataset._remapped(other, local), np.take(other, local))


def test_parquet_dictionary_with_unused_value(tmp_path):
    """A sliced dictionary block whose dictionary holds a value none of its rows has: that value is
    not added to the vocabulary before a row holds it."""
    arr = pa.array(["p", "q", "p", "r", "p", "p"]).dictionary_encode()
    table = pa.table({"f": arr, "g": pa.array(["k"] * 6).dictionary_encode(), "y": pa.array([1] * 6)})
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=6)
    chunks = list(read_dataset(str(path), "application/x-parquet", chunk_rows=2, codes=("f", "g")))
    cats = list(chunks[-1].frame["f"].cat.categories)
    assert cats == ["p", "q", "r"]
    assert [list(c.frame["f"].astype(str)) for c in chunks] == [["p", "q"], ["p", "r"], ["p", "p"]]
