"""Issue 21, part 2 (session 19): the steady batch of a DataFrame stream (``_Stream.add``, which
reads ``CLARION_BACKEND`` and ``CLARION_NUM_THREADS`` on every batch, and the rows
``Accumulator.update`` records), the stream primed with the frame it was built from, and the text
set-up's look at the frame's blocks.

Checked against the general path (``State.encode`` + ``State.count`` on each batch) after every
batch of hypothesis-generated DataFrame streams, with the variables set, unset or empty, and
changed between batches: the whole state bit for bit, the rows recorded (``next_row``, the counted
ranges), which batches the compiled stream counted (none while a backend is forced), the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _state_compare import general_update, same, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion import _backend
from clarion.bias import accumulator as acc_mod
from clarion.bias._engine import State, Table

COUNT = [m for m in cb.ALL_METRICS if m != "FT"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.skipif(
    not (_backend.has_core() and hasattr(_backend.core(), "SlotStream")), reason="needs the compiled core"
)

FACETS = list("abcd")


def _frame(rng: np.random.Generator, n: int, kind: str, lo: int) -> pd.DataFrame:
    f = rng.integers(0, 4, n)
    y = rng.random(n) < 0.4
    p = np.where(rng.random(n) < 0.2, ~y, y)
    g = rng.integers(lo, lo + 3, n)
    if kind == "categorical":
        return pd.DataFrame(
            {
                "f": pd.Categorical.from_codes(f, FACETS),
                "y": y,
                "p": p,
                "g": pd.Categorical.from_codes(g - lo, ["x", "y", "z"]),
            }
        )
    return pd.DataFrame({"f": f.astype(np.int64), "y": y, "p": p, "g": g.astype(np.int64)})


def _report(acc_or_state) -> pd.DataFrame | str:
    """The report's long table, or its error's text."""
    try:
        if isinstance(acc_or_state, State):
            rep = acc_or_state.assemble(methods=COUNT, stage="both", compat="clarion")
        else:
            rep = acc_or_state.report(COUNT)
    except ValueError as exc:
        return str(exc)
    return rep.to_frame()


def _same_report(a, b) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
    else:
        pd.testing.assert_frame_equal(a, b)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["categorical", "numeric"]),
    sizes=st.lists(st.sampled_from([0, 1, 7, 300, 5000]), min_size=1, max_size=12),
    envs=st.lists(
        st.tuples(st.sampled_from([None, "", "numpy", "cpu"]), st.sampled_from([None, "", "1", "2"])),
        min_size=1,
        max_size=12,
    ),
    lo=st.sampled_from([0, 5, -(2**62)]),
)
def test_steady_batches_equal_the_general_path(seed, kind, sizes, envs, lo):
    with pytest.MonkeyPatch.context() as monkeypatch:
        _steady_case(monkeypatch, seed, kind, sizes, envs, lo)


def _spy_stream_adds(monkeypatch) -> list:
    """A list that gets, for every ``_Stream.add`` from now on, whether the compiled stream
    counted the batch."""
    counted: list = []
    real = acc_mod._Stream.add

    def add(self, batch):
        out = real(self, batch)
        counted.append(type(out) is int and out > 0)
        return out

    monkeypatch.setattr(acc_mod._Stream, "add", add)
    return counted


def _steady_case(monkeypatch, seed, kind, sizes, envs, lo):
    rng = np.random.default_rng(seed)
    whole = _frame(rng, sum(sizes), kind, lo)
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    acc = cb.Accumulator(**kw)
    want = State(acc.spec)
    counted = _spy_stream_adds(monkeypatch)
    at, rows = 0, 0
    for i, n in enumerate(sizes):
        backend, threads = envs[i % len(envs)]
        for name, v in (("CLARION_BACKEND", backend), ("CLARION_NUM_THREADS", threads)):
            if v is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, v)
        batch = whole.iloc[at : at + n]
        at += n
        before = len(counted)
        acc.update(batch)
        if n:
            general_update(want, Table(batch), "clarion")
        rows += n
        if "all" in acc._states:
            assert same(snapshot(acc._states["all"]), snapshot(want))
        assert acc.next_row == rows
        assert acc._ranges == ([[0, rows]] if rows else [])
        if backend:  # a backend forced: the compiled stream declines every batch
            assert not any(counted[before:])
    monkeypatch.delenv("CLARION_BACKEND", raising=False)
    if rows:
        _same_report(_report(acc), _report(want))


def test_a_steady_stream_counts_in_the_compiled_call_whatever_the_threads(monkeypatch):
    """The steady batches of a DataFrame stream are the compiled stream's, with
    ``CLARION_NUM_THREADS`` unset, empty or set, and none is while ``CLARION_BACKEND`` is set."""
    rng = np.random.default_rng(7)
    whole = _frame(rng, 60_000, "categorical", 0)
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    counted = _spy_stream_adds(monkeypatch)
    for threads in (None, "", "1", "3"):
        monkeypatch.delenv("CLARION_BACKEND", raising=False)
        if threads is None:
            monkeypatch.delenv("CLARION_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("CLARION_NUM_THREADS", threads)
        counted.clear()
        acc = cb.Accumulator(**kw)
        for i in range(0, 60_000, 6_000):
            acc.update(whole.iloc[i : i + 6_000])
        assert counted and all(counted[1:]), (threads, counted)
        monkeypatch.setenv("CLARION_BACKEND", "numpy")
        counted.clear()
        acc.update(whole.iloc[:6_000])
        assert counted == [False]
        monkeypatch.delenv("CLARION_BACKEND")
        assert acc.next_row == 66_000
        pd.testing.assert_frame_equal(
            _report(acc), cb.report(pd.concat([whole, whole.iloc[:6_000]]), methods=COUNT, **kw).to_frame()
        )


@pytest.mark.parametrize("kind", ["categorical", "numeric"])
def test_the_stream_built_by_a_frame_reads_the_next_frames_without_python(monkeypatch, kind):
    """The compiled fetch is primed with the frame the stream was built from: the second and later
    frames cut from the same DataFrame are read by ``add_frame`` (no Python fetch), and the state
    equals the general path's."""
    rng = np.random.default_rng(3)
    whole = _frame(rng, 50_000, kind, 0)
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    fetched = []
    real = acc_mod._Stream._frame_arrays

    def frame_arrays(self, df):
        fetched.append(len(df))
        return real(self, df)

    monkeypatch.setattr(acc_mod._Stream, "_frame_arrays", frame_arrays)
    acc = cb.Accumulator(**kw)
    want = State(acc.spec)
    for i in range(0, 50_000, 10_000):
        batch = whole.iloc[i : i + 10_000]
        acc.update(batch)
        general_update(want, Table(batch), "clarion")
        if i == 0:
            assert acc._stream is not None and fetched == [10_000]
        assert same(snapshot(acc._states["all"]), snapshot(want))
    assert fetched == [10_000]
    assert acc._stream.misses == 0
    _same_report(_report(acc), _report(want))


_COLUMN_KINDS = {
    "int": lambda n: np.arange(n, dtype=np.int64),
    "bool": lambda n: np.arange(n) % 2 == 0,
    "float": lambda n: np.arange(n, dtype=np.float64),
    "object": lambda n: np.array([f"v{i % 3}" for i in range(n)], dtype=object),
    "category": lambda n: pd.Categorical([f"v{i % 3}" for i in range(n)]),
    "string": lambda n: pd.array([f"v{i % 3}" for i in range(n)], dtype="string"),
    "nullable": lambda n: pd.array(list(range(n)), dtype="Int64"),
}


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(sorted(_COLUMN_KINDS)), min_size=1, max_size=6),
    n=st.integers(0, 5),
    copy=st.booleans(),
)
def test_object_blocks_says_whether_a_frame_has_a_numpy_object_column(kinds, n, copy):
    df = pd.DataFrame({f"c{i}": _COLUMN_KINDS[k](n) for i, k in enumerate(kinds)})
    if copy:  # (consolidated blocks)
        df = df.copy()
    want = any(isinstance(df[c].dtype, np.dtype) and df[c].dtype.kind == "O" for c in df.columns)
    assert acc_mod._object_blocks(df) == want


@pytest.mark.parametrize("kind", ["object", "categorical", "numeric"])
def test_text_columns_are_set_up_as_before(kind):
    """An accumulator reads its object bias columns as codes, and none of a frame without one (an
    object column that is not a bias column included); the reports equal the one-shot report."""
    rng = np.random.default_rng(5)
    whole = _frame(rng, 30_000, "categorical" if kind == "object" else kind, 0)
    if kind == "object":
        whole["f"] = whole["f"].astype(str).astype(object)
    whole["note"] = np.array(["x"] * len(whole), dtype=object)
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    acc = cb.Accumulator(**kw)
    for i in range(0, 30_000, 10_000):
        acc.update(whole.iloc[i : i + 10_000])
    if kind == "object":
        assert isinstance(acc._text, dict) and set(acc._text) == {"f"}
    else:
        assert acc._text is False
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(whole, methods=COUNT, **kw).to_frame())
