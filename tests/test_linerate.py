"""Issue 21: the one-pass bias path (State.fast_count and the slot-count kernel) against the
general path (State.encode + State.count) and a plain numpy reference.

The general path is the oracle: on every input the one-pass path either declines (returns None,
and the general path then runs) or gives the same counts (bit for bit, weighted sums included),
the same vocabularies, samples and flags, batch after batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _state_compare import general_update, same, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion
import clarion.bias as cb
from clarion import _backend, _reference
from clarion._counts import slot_counts_prepared
from clarion.bias._encode import slot_codes
from clarion.bias._engine import Spec, State, Table

pytestmark = pytest.mark.skipif(
    not _backend.has_core() or not hasattr(_backend.core(), "slot_counts_cpu"), reason="needs the compiled kernel"
)

COUNT = [m for m in cb.ALL_METRICS if m != "FT"]
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------------
# the kernel against numpy


@SETTINGS
@given(
    n=st.integers(0, 300),
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    dtypes=st.lists(st.sampled_from([np.int8, np.int16, np.int32, np.int64]), min_size=4, max_size=4),
    seed=st.integers(0, 2**31),
    weighted=st.booleans(),
)
def test_slot_kernel_matches_numpy(n, sizes, dtypes, seed, weighted):
    rng = np.random.default_rng(seed)
    codes = [(rng.integers(0, s, n) - 1).astype(dt) for s, dt in zip(sizes, dtypes)]  # -1: the missing slot
    offsets = [1] * len(sizes)
    if not weighted:
        raw, mapped = slot_counts_prepared(codes, offsets, sizes)
        assert mapped is None
        np.testing.assert_array_equal(raw, _reference.slot_counts(codes, offsets, sizes))
        return
    # weighted: the mapped sums equal grouped_counts on the mapped codes, bit for bit
    w = rng.exponential(size=n) * (rng.random(n) > 0.2)
    luts = [rng.integers(0, 2, s).astype(np.int32) for s in sizes]
    k = len(sizes)
    strides = [2 ** (k - 1 - j) for j in range(k)]
    raw, mapped = slot_counts_prepared(
        codes, offsets, sizes, weights=w, luts=luts, map_strides=strides, mapped_cells=2**k
    )
    np.testing.assert_array_equal(raw, _reference.slot_counts(codes, offsets, sizes))
    groups = np.zeros(n, dtype=np.int32)
    for c, lt, s in zip(codes, luts, strides):
        groups += lt[c.astype(np.int64) + 1] * s
    want = clarion.grouped_counts(groups, np.zeros(n, np.int8), weights=w, n_groups=2**k, n_labels=1)
    assert mapped.tobytes() == np.asarray(want, dtype=np.float64).reshape(-1).tobytes()


def test_slot_kernel_declines_bad_rows():
    good = np.array([0, 1, 2], dtype=np.int8)
    assert slot_counts_prepared([good], [1], [4]) is not None
    assert slot_counts_prepared([np.array([0, 5, 1], dtype=np.int8)], [1], [4]) is None  # slot 6 >= 4
    assert slot_counts_prepared([np.array([-2, 0, 1], dtype=np.int8)], [1], [4]) is None  # slot -1
    w = np.array([1.0, np.nan, 1.0])
    lut = np.arange(4, dtype=np.int32)
    assert slot_counts_prepared([good], [1], [4], weights=w, luts=[lut], map_strides=[1], mapped_cells=4) is None
    # a wide offset (integer columns): slot = code + offset
    big = np.array([10**12, 10**12 + 2], dtype=np.int64)
    raw, _ = slot_counts_prepared([big], [1 - 10**12], [4])
    np.testing.assert_array_equal(raw, [0, 1, 0, 1])


def test_slot_kernel_threads_do_not_change_sums():
    rng = np.random.default_rng(3)
    n = 300_000  # several chunks
    codes = [rng.integers(-1, 4, n).astype(np.int8), rng.integers(-1, 2, n).astype(np.int16)]
    w = rng.random(n)
    luts = [np.array([0, 1, 2, 3, 4], np.int32), np.array([0, 0, 1], np.int32)]
    kw = dict(weights=w, luts=luts, map_strides=[2, 1], mapped_cells=10)
    r1 = slot_counts_prepared(codes, [1, 1], [5, 3], n_threads=1, **kw)
    r2 = slot_counts_prepared(codes, [1, 1], [5, 3], n_threads=2, **kw)
    assert r1[1].tobytes() == r2[1].tobytes()
    np.testing.assert_array_equal(r1[0], _reference.slot_counts(codes, [1, 1], [5, 3]))


# ------------------------------------------------------------------------------------------------
# columns of every kind


WORDS = ["a", "b", "c", "d"]


def _column(kind: str, idx: np.ndarray, missing: np.ndarray):
    """A column of ``kind`` whose value at row i stands for ``idx[i]`` (missing where ``missing``)."""
    if kind == "int":
        return idx.astype(np.int64) * 3 - 2
    if kind == "int8":
        return idx.astype(np.int8)
    if kind == "bigint":
        return idx.astype(np.int64) * (10**9) + 7
    if kind == "bool":
        return (idx % 2).astype(bool)
    if kind == "float":
        return np.where(missing, np.nan, idx * 0.5)
    words = np.array(WORDS, dtype=object)[idx % len(WORDS)]
    if kind == "object":
        return pd.Series(np.where(missing, None, words), dtype=object)
    if kind == "categorical":
        return pd.Series(pd.Categorical(np.where(missing, None, words), categories=WORDS + ["unused"]))
    if kind == "arrow":
        return pd.Series(pd.array(np.where(missing, None, words), dtype=pd.ArrowDtype(pa.string())))
    if kind == "string_pyarrow":
        return pd.Series(pd.array(np.where(missing, None, words), dtype="string[pyarrow]"))
    raise AssertionError(kind)


KINDS = ["int", "int8", "bigint", "bool", "float", "object", "categorical", "arrow", "string_pyarrow"]
WORDLIKE = {"object", "categorical", "arrow", "string_pyarrow"}


def _value_of(kind: str, i: int):
    if kind in WORDLIKE:
        return WORDS[i % len(WORDS)]
    if kind == "int":
        return i * 3 - 2
    if kind == "int8":
        return i
    if kind == "bigint":
        return i * 10**9 + 7
    if kind == "bool":
        return bool(i % 2)
    return i * 0.5


@st.composite
def problems(draw):
    n = draw(st.integers(1, 60))
    k = draw(st.integers(1, 4))  # distinct values per column
    one_value = draw(st.booleans())
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)

    def idx():
        return np.zeros(n, dtype=np.int64) if one_value else rng.integers(0, k, n)

    miss_rate = draw(st.sampled_from([0.0, 0.0, 0.2]))
    label_kind = draw(st.sampled_from(KINDS))
    facet_kind = draw(st.sampled_from(KINDS))
    yi, fi = idx(), idx()
    cols = {
        "y": _column(label_kind, yi, rng.random(n) < miss_rate),
        "f": _column(facet_kind, fi, rng.random(n) < miss_rate),
    }
    kw: dict = {"label": "y", "facet": "f"}
    if label_kind in ("float", "int") and draw(st.booleans()):
        kw["label_threshold"] = 0.25
    else:
        kw["label_values"] = [_value_of(label_kind, int(draw(st.integers(0, k))))]
    facet_mode = draw(st.sampled_from(["all", "values", "threshold"]))
    if facet_mode == "values":
        kw["facet_values"] = [_value_of(facet_kind, int(draw(st.integers(0, k))))]
    elif facet_mode == "threshold" and facet_kind in ("int", "int8", "bigint", "float"):
        kw["facet_threshold"] = 0
    if draw(st.booleans()):
        gk = draw(st.sampled_from(KINDS))
        cols["g"] = _column(gk, idx(), rng.random(n) < miss_rate)
        kw["group_variable"] = "g"
    if draw(st.booleans()):
        cols["p"] = _column(label_kind, idx(), rng.random(n) < miss_rate / 2)
        kw["predicted_label"] = "p"
    if draw(st.booleans()):
        w = rng.exponential(size=n) * (rng.random(n) > 0.2)
        cols["w"] = w
        kw["weights"] = "w"
    compat = draw(st.sampled_from(["clarion", "smclarify"]))
    frame = pd.DataFrame(cols)
    n_batches = draw(st.integers(1, 3))
    cuts = sorted(set([0, n] + [int(c) for c in rng.integers(0, n + 1, n_batches - 1)]))
    batches = [frame.iloc[a:b].reset_index(drop=True) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    return frame, batches, kw, compat


@SETTINGS
@given(problems())
def test_fast_count_equals_general_path(problem):
    frame, batches, kw, compat = problem
    spec = Spec.build(**kw)
    fast, slow = State(spec), State(spec)
    for part in batches:
        table = Table(part)
        err_slow = None
        try:
            general_update(slow, table, compat)
        except (ValueError, TypeError) as exc:
            err_slow = exc
        got = None
        try:
            got = fast.fast_count(table, compat)
            if got is None:
                general_update(fast, table, compat)
            else:
                fast.add_counts(got, table.n)
        except (ValueError, TypeError) as exc:
            assert err_slow is not None and type(exc) is type(err_slow) and str(exc) == str(err_slow)
            return
        if err_slow is not None:
            raise AssertionError(f"the general path raised {err_slow!r}, the one-pass path did not")
        a, b = snapshot(fast), snapshot(slow)
        assert same(a, b), (kw, compat, a, b)


@SETTINGS
@given(problem=problems())
def test_report_equals_general_path(problem, monkeypatch_module):
    frame, _, kw, compat = problem
    methods = COUNT if "predicted_label" in kw else [m for m in cb.PRE_TRAINING]

    def run():
        try:
            return cb.report(frame, methods=methods, compat=compat, **kw).to_frame()
        except (ValueError, TypeError) as exc:
            return (type(exc), str(exc))

    got = run()
    with monkeypatch_module.context() as m:
        m.setattr(State, "fast_count", lambda self, *a, **k: None)
        want = run()
    if isinstance(want, tuple):
        assert got == want
    else:
        pd.testing.assert_frame_equal(got, want)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


# ------------------------------------------------------------------------------------------------
# the one-pass path is taken where it should be


@pytest.mark.parametrize("kind", ["int", "bool", "categorical", "arrow", "string_pyarrow", "object", "float"])
@pytest.mark.parametrize("group", [False, True])
@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("mode", ["all", "values"])
def test_fast_path_taken(kind, group, weights, mode):
    rng = np.random.default_rng(0)
    n = 500
    idx = rng.integers(0, 4, n)
    cols = {"y": _column("bool", rng.integers(0, 2, n), np.zeros(n, bool)), "f": _column(kind, idx, np.zeros(n, bool))}
    cols["p"] = _column("bool", rng.integers(0, 2, n), np.zeros(n, bool))
    kw: dict = {"label": "y", "facet": "f", "label_values": [True], "predicted_label": "p"}
    if mode == "values":
        kw["facet_values"] = [_value_of(kind, 1)]
    if group:
        cols["g"] = _column("categorical", rng.integers(0, 3, n), np.zeros(n, bool))
        kw["group_variable"] = "g"
    if weights:
        cols["w"] = rng.random(n)
        kw["weights"] = "w"
    st_ = State(Spec.build(**kw))
    assert st_.fast_count(Table(pd.DataFrame(cols)), "clarion") is not None


def test_slot_codes_shapes():
    sc = slot_codes(pd.Series(pd.Categorical(["x", None, "y"], categories=["y", "x", "z"])))
    assert sc.codes.dtype == np.int8 and sc.offset == 1 and sc.size == 4
    assert [sc.value(j) for j in (1, 2, 3)] == ["y", "x", "z"]
    sc = slot_codes(np.array([5, 7, 5]))
    assert sc.size == 4 and sc.value(1) == 5 and sc.value(3) == 7 and sc.codes[0] + sc.offset == 1
    sc = slot_codes(np.array([True, False]))
    assert sc.codes.dtype == np.int8 and sc.value(2) is True
    assert slot_codes(np.zeros((2, 2))) is None


def test_accumulator_one_pass_equals_report():
    rng = np.random.default_rng(5)
    n = 40_000
    df = pd.DataFrame(
        {
            "f": pd.Categorical.from_codes(rng.integers(0, 6, n), list("uvwxyz")),
            "y": rng.random(n) < 0.4,
            "p": rng.random(n) < 0.5,
            "g": rng.integers(0, 3, n),
        }
    )
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    acc = cb.Accumulator(**kw)
    for i in range(0, n, 7_000):
        acc.update(df.iloc[i : i + 7_000])
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(df, methods=COUNT, **kw).to_frame())


@SETTINGS
@given(
    values=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=40),
    dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
)
def test_int_range_matches_numpy(values, dtype):
    from clarion._counts import int_range

    info = np.iinfo(dtype)
    x = np.array([min(max(v, info.min), info.max) for v in values], dtype=dtype)
    assert int_range(x) == (int(x.min()), int(x.max()))
    assert int_range(x[::-1].copy()) == (int(x.min()), int(x.max()))


# ------------------------------------------------------------------------------------------------
# the kernel's split sub-tables (tables up to 4,096 cells) and its plain path (larger tables)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 2_100),  # several 512-row blocks, a tail that is not a multiple of 4
    big=st.booleans(),
    dtypes=st.lists(st.sampled_from([np.int8, np.int16, np.int32, np.int64]), min_size=3, max_size=3),
    seed=st.integers(0, 2**31),
)
def test_slot_kernel_small_and_large_tables_match_numpy(n, big, dtypes, seed):
    rng = np.random.default_rng(seed)
    sizes = [40, 30, 5] if big else [7, 3, 3]  # 6,000 cells: past the split sub-tables; 63: within
    codes = [(rng.integers(0, s, n) - 1).astype(dt) for s, dt in zip(sizes, dtypes)]
    # skewed rows (most in one cell): the case the sub-tables are for
    hot = rng.random(n) < 0.7
    for c in codes:
        c[hot] = 0
    raw, mapped = slot_counts_prepared(codes, [1, 1, 1], sizes)
    assert mapped is None
    np.testing.assert_array_equal(raw, _reference.slot_counts(codes, [1, 1, 1], sizes))
    if n:  # a bad code in the last row is still refused
        bad = [c.copy() for c in codes]
        bad[2][-1] = sizes[2]
        assert slot_counts_prepared(bad, [1, 1, 1], sizes) is None


def test_slot_kernel_backend_env_read_per_call(monkeypatch):
    codes = [np.array([0, 1, 1], dtype=np.int8)]
    assert slot_counts_prepared(codes, [1], [3]) is not None
    monkeypatch.setenv("CLARION_BACKEND", "numpy")  # takes effect at once: the caller's general path
    assert slot_counts_prepared(codes, [1], [3]) is None
    monkeypatch.setenv("CLARION_BACKEND", "cpu")
    raw, _ = slot_counts_prepared(codes, [1], [3])
    np.testing.assert_array_equal(raw, [0, 1, 2])
    monkeypatch.setenv("CLARION_BACKEND", "bogus")  # still checked on the fast path's fallback
    with pytest.raises(ValueError, match="CLARION_BACKEND"):
        slot_counts_prepared(codes, [1], [3])
