"""Session 18 (issue 21): the slot-count pass computes the cells of 8-bit code columns in int16 lanes
when its table has at most 32,767 cells and every offset is within ±16,384 (``narrow_cells`` in
``cpp/src/encode_cpu.cpp``). The table, and the error of a bad row (its kind, the first such row,
the first such column in that row), are numpy's (``clarion._reference.slot_counts``) on either side
of both limits, on one thread, on several (chunked passes) and on the accumulator's team."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion import _backend, _reference

pytestmark = pytest.mark.skipif(
    not _backend.has_core() or not hasattr(_backend.core(), "slot_counts_team"), reason="needs the compiled kernel"
)

KERR_SLOT = 1  # RowError kind of a code outside its column's slots (clarion/common.hpp)


def expected(codes, offsets, sizes):
    """(table, None) or (None, (row, column)) of the first row with a slot outside its column."""
    n = len(codes[0])
    bad = np.zeros((n, len(codes)), dtype=bool)
    for j, (c, o, s) in enumerate(zip(codes, offsets, sizes)):
        slot = c.astype(np.int64) + o
        bad[:, j] = (slot < 0) | (slot >= s)
    rows = np.flatnonzero(bad.any(axis=1))
    if len(rows):
        r = int(rows[0])
        return None, (r, int(np.flatnonzero(bad[r])[0]))
    return _reference.slot_counts(codes, offsets, sizes), None


def run(fn, codes, offsets, sizes, threads):
    raw = np.empty(math.prod(sizes), dtype=np.int64)
    what, row, col = fn(codes, offsets, sizes, raw, threads)
    return raw.reshape(sizes), (int(what), int(row), int(col))


def check(codes, offsets, sizes, threads=(1, 2)):
    core = _backend.core()
    table, err = expected(codes, offsets, sizes)
    for fn in (core.slot_counts_cpu, core.slot_counts_team):
        for t in threads:
            raw, (what, row, col) = run(fn, codes, offsets, sizes, t)
            if err is None:
                assert what == 0, (fn, t, what, row, col)
                np.testing.assert_array_equal(raw, table)
            else:
                assert what == KERR_SLOT and (row, col) == err, (fn, t, what, row, col, err)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 3000),
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    seed=st.integers(0, 2**31),
    n_bad=st.integers(0, 3),
)
def test_small_tables_of_8bit_codes(n, sizes, seed, n_bad):
    rng = np.random.default_rng(seed)
    codes = [(rng.integers(0, s, n) - 1).astype(np.int8) for s in sizes]
    for _ in range(n_bad):  # a code outside its column's slots, anywhere
        j = int(rng.integers(len(sizes)))
        codes[j][int(rng.integers(n))] = rng.choice([-2, -128, sizes[j] - 1, 127])
    check(codes, [1] * len(sizes), sizes)


@settings(max_examples=120, deadline=None)
@given(
    n=st.integers(1, 2000),
    offset=st.sampled_from([16383, 16384, 16385, -16384, -16385, 128, -127, 0, 300]),
    size=st.sampled_from([1, 255, 16512, 16513, 16640, 32767, 32768, 40000]),
    seed=st.integers(0, 2**31),
)
def test_offsets_and_table_sizes_on_both_sides_of_the_limits(n, offset, size, seed):
    rng = np.random.default_rng(seed)
    codes = [rng.integers(-128, 128, n).astype(np.int8)]
    lo, hi = max(-128, -offset), min(127, size - 1 - offset)  # codes whose slot is in range
    if lo <= hi and rng.random() < 0.8:
        codes = [rng.integers(lo, hi + 1, n).astype(np.int8)]
    check(codes, [offset], [size])
    # the same column beside a small one: the table's size is the product
    other = (rng.integers(0, 3, n) - 1).astype(np.int8)
    if size * 3 <= 200_000:
        check([other, codes[0]], [1, offset], [3, size])


def test_cells_at_the_table_limit_and_one_past_it():
    rng = np.random.default_rng(0)
    n = 20_000
    for sizes in ([7, 31, 151], [32767], [2, 16384], [2, 16383], [32768]):
        codes = [
            (rng.integers(0, s, n) - 1).astype(np.int8) if s <= 128 else rng.integers(-1, 127, n).astype(np.int8)
            for s in sizes
        ]
        check(codes, [1] * len(sizes), sizes)


def test_mixed_itemsizes_take_the_wide_cells():
    rng = np.random.default_rng(1)
    n = 10_000
    codes = [(rng.integers(0, 5, n) - 1).astype(np.int8), (rng.integers(0, 4, n) - 1).astype(np.int16)]
    check(codes, [1, 1], [5, 4])
    codes[1][777] = 9
    check(codes, [1, 1], [5, 4])


def test_many_rows_on_several_threads_and_a_late_bad_row():
    rng = np.random.default_rng(2)
    n = 300_000  # several chunks: the threads' tables are added
    sizes = [11, 3, 3, 6]
    codes = [(rng.integers(0, s, n) - 1).astype(np.int8) for s in sizes]
    check(codes, [1, 1, 1, 1], sizes, threads=(1, 2, 4))
    codes[2][250_001] = 2  # slot 3 of a 3-slot column
    codes[0][250_001] = -5
    check(codes, [1, 1, 1, 1], sizes, threads=(1, 2, 4))
