"""Session 18 (issue 21, part 3): a chunk's frame is made with the column index pandas makes of its
names, kept per distinct names (``dataset._frame_of``), instead of inferring it from the names for
every chunk. The frame is ``pd.DataFrame(cols, index=index, copy=False)``'s: the same columns
(their index's type and dtype included), values, dtypes, blocks and index, the arrays not copied;
and the chunks of one read share their column index object."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion import dataset
from clarion.dataset import read_dataset

NAMES = st.one_of(
    st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=6, unique=True),
    st.lists(st.integers(-3, 8), min_size=1, max_size=6, unique=True),
    st.just([0, 1, 2, 3]),
    st.just([1, 1.5, "a", False]),
    st.just(["Zürich", "東京", "עיר"]),
)


def _columns(names, n, rng, series_index):
    cols = {}
    for k, c in enumerate(names):
        kind = k % 4
        if kind == 0:
            v = rng.integers(0, 9, n)
        elif kind == 1:
            v = rng.random(n)
        elif kind == 2:
            v = pd.Categorical.from_codes(rng.integers(-1, 3, n).astype(np.int8), ["a", "b", "c"])
        else:
            v = np.array([str(x) for x in rng.integers(0, 5, n)], dtype=object)
        cols[c] = pd.Series(v, index=series_index, copy=False) if series_index is not None else v
    return cols


@settings(max_examples=150, deadline=None)
@given(names=NAMES, n=st.integers(0, 40), seed=st.integers(0, 2**31), indexed=st.booleans())
def test_the_frame_is_pandas_own(names, n, seed, indexed):
    rng = np.random.default_rng(seed)
    index = pd.RangeIndex(5, 5 + n) if indexed else None
    cols = _columns(names, n, rng, index)
    want = pd.DataFrame(cols, index=index, copy=False)
    got = dataset._frame_of(cols, index)
    pd.testing.assert_frame_equal(got, want)
    assert type(got.columns) is type(want.columns) and got.columns.dtype == want.columns.dtype
    assert list(got.columns) == list(want.columns) and got.index.equals(want.index)
    assert [type(b).__name__ for b in got._mgr.blocks] == [type(b).__name__ for b in want._mgr.blocks]
    for k in range(got.shape[1]):
        if got.dtypes.iloc[k].kind in "if" and n:  # not copied: pandas' own frame's arrays
            assert np.shares_memory(got.iloc[:, k].to_numpy(), want.iloc[:, k].to_numpy())
    # the same names again: the kept index, the same frame
    again = dataset._frame_of(_columns(names, n, rng, index), index)
    assert again.columns is got.columns


def test_mixed_keys_that_compare_equal_keep_their_own_index():
    a = dataset._frame_of({1: np.arange(3), 2: np.arange(3)})
    b = dataset._frame_of({1.0: np.arange(3), 2.0: np.arange(3)})
    c = dataset._frame_of({True: np.arange(3), 2: np.arange(3)})
    for got, keys in ((a, [1, 2]), (b, [1.0, 2.0]), (c, [True, 2])):
        want = pd.DataFrame(dict(zip(keys, [np.arange(3)] * 2)))
        assert got.columns.equals(want.columns) and got.columns.dtype == want.columns.dtype
        assert [type(x) for x in got.columns] == [type(x) for x in want.columns]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_chunks_of_a_read_share_their_column_index(tmp_path, fmt):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.integers(0, 5, 5000), "s": rng.choice(["a", "b"], 5000), "y": rng.random(5000)})
    path = tmp_path / f"d.{fmt}"
    kind = "text/csv" if fmt == "csv" else "application/x-parquet"
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    for codes in ((), ("s",)):
        frames = [c.frame for c in read_dataset(str(path), kind, chunk_rows=1000, codes=codes)]
        assert len(frames) == 5
        assert all(f.columns is frames[0].columns for f in frames)
        dataset._KEPT_COLUMN_INDEX = False
        try:
            old = [c.frame for c in read_dataset(str(path), kind, chunk_rows=1000, codes=codes)]
        finally:
            dataset._KEPT_COLUMN_INDEX = True
        assert len(old) == 5
        for f, o in zip(frames, old):
            pd.testing.assert_frame_equal(f, o)
            assert f.columns.dtype == o.columns.dtype
