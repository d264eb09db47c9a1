"""Issue 21, part 2 (third round): the compiled stream step against its numpy twin, the team pass,
and the first batch handing its slot tables to the stream.

``_core.SlotStream`` (count, pattern check, mapping, add) is compared with
``clarion._reference.SlotStream`` (the same step in plain numpy) on hypothesis-generated plans and
sequences of calls: every status (added, pattern handed back, declined for a bad row / bad weight,
replaced tables, arrays that do not fit, a value without a code), the state's tables and row count
after each call, the accepted patterns; empty batches, one row, weights, every thread count
(batches of 4,096 rows or more are counted by the persistent team of helper threads).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion import _backend
from clarion import _reference as ref
from clarion.bias import _engine as eng
from clarion.bias import accumulator as acc_mod

pytestmark = pytest.mark.skipif(
    not _backend.has_core() or not hasattr(_backend.core(), "SlotStream"), reason="needs the compiled core"
)

COUNT = [m for m in cb.ALL_METRICS if m != "FT"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}


class _Holder:
    """What the stream adds rows to: an object with ``n_rows``."""

    def __init__(self) -> None:
        self.n_rows = 0


@st.composite
def plans(draw):
    """A stream's plan: columns [facets, group?, label, prediction?] with slot maps and code tables
    as ``Accumulator`` builds them (a vocabulary facet / group: slot 0 -> code 0, other slots
    distinct codes or -1; a selected facet, label, prediction: 0/1)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    F = draw(st.integers(1, 2))
    has_group = draw(st.booleans())
    has_pred = draw(st.booleans())
    weighted = draw(st.booleans())
    roles = ["facet"] * F + (["group"] if has_group else []) + ["label"] + (["pred"] if has_pred else [])
    cols = []
    for role in roles:
        boolean = draw(st.booleans()) if role != "group" else False
        itemsize = 1 if boolean else draw(st.sampled_from([1, 2, 4, 8]))
        size = 3 if boolean else draw(st.integers(1, 7))
        offset = 1 if boolean else draw(st.integers(-40, 40))
        vocab = role == "group" or (role == "facet" and draw(st.booleans()))
        if vocab:
            axis = size + draw(st.integers(0, 3))
            code = np.full(size, -1, dtype=np.int32)
            code[0] = 0
            free = list(rng.permutation(np.arange(1, axis)))
            for s in range(1, size):
                if free and rng.random() < 0.95:
                    code[s] = free.pop()
            wmap = np.arange(size, dtype=np.int32)
        else:
            axis = 2
            code = rng.integers(0, 2, size).astype(np.int32)
            wmap = code
        cols.append(dict(role=role, boolean=boolean, itemsize=itemsize, size=size, offset=offset, vocab=vocab,
                         axis=axis, code=code, wmap=wmap))  # fmt: skip
    return dict(
        F=F,
        has_group=has_group,
        has_pred=has_pred,
        weighted=weighted,
        cols=cols,
        K=cols[F]["axis"] if has_group else 1,
        sightings=draw(st.integers(1, 3)),
        sighting_rows=draw(st.sampled_from([1, 40, 10_000])),
    )


def _build(plan, cls):
    """A stream of class ``cls`` over fresh tables; returns (stream, its state's pieces)."""
    F, K, P = plan["F"], plan["K"], 2 if plan["has_pred"] else 1
    kind = "labels" if plan["has_pred"] else "pre"
    dtype = np.float64 if plan["weighted"] else np.int64
    cols = plan["cols"]
    V = [cols[f]["axis"] for f in range(F)]
    tables = [np.zeros((v, K, 2) if P == 1 else (1, v, K, 2, 2), dtype=dtype) for v in V]
    counts = [{kind: t} for t in tables]
    vocabs = [[0] * 3, [0] * 5]
    holder = _Holder()
    stream = cls(
        F,
        plan["has_group"],
        plan["has_pred"],
        plan["weighted"],
        K,
        V,
        [c["itemsize"] for c in cols],
        [c["boolean"] for c in cols],
        [c["offset"] for c in cols],
        [c["size"] for c in cols],
        [c["code"] for c in cols],
        [c["wmap"] for c in cols],
        [cols[f]["vocab"] for f in range(F)],
        threading.RLock(),
        holder,
        counts,
        kind,
        tables,
        vocabs,
        [3, 5],
        plan["sightings"],
        plan["sighting_rows"],
    )
    return stream, dict(holder=holder, counts=counts, kind=kind, tables=tables, vocabs=vocabs)


def _batch(plan, rng, n, spoil=None):
    """The stream's arrays for n rows (slots drawn from a few templates of occurring slots, so
    patterns repeat) and weights; ``spoil`` makes it decline: a row outside its slots, a bad
    weight, a wrong dtype, lengths that differ, a strided column."""
    arrays = []
    for c in plan["cols"]:
        hi = c["size"]
        slots = (
            rng.integers(0, max(1, min(hi, rng.integers(1, 4))), n) if rng.random() < 0.6 else rng.integers(0, hi, n)
        )
        if c["boolean"]:
            arrays.append(np.clip(slots - c["offset"], 0, 1).astype(bool))
        else:
            arrays.append((slots - c["offset"]).astype(DTYPES[c["itemsize"]]))
    w = rng.exponential(size=n) if plan["weighted"] else None
    if spoil == "row" and n:
        j = int(rng.integers(0, len(arrays)))
        c = plan["cols"][j]
        if not c["boolean"]:
            a = arrays[j].copy()
            a[int(rng.integers(0, n))] = c["size"] - c["offset"] + int(rng.integers(0, 3))
            arrays[j] = a
    elif spoil == "weight" and w is not None and n:
        w = w.copy()
        w[int(rng.integers(0, n))] = [np.nan, -1.0, np.inf][int(rng.integers(0, 3))]
    elif spoil == "dtype":
        j = int(rng.integers(0, len(arrays)))
        arrays[j] = arrays[j].astype(np.float64)
    elif spoil == "length" and n:
        arrays[-1] = arrays[-1][:-1]
    elif spoil == "strided" and n > 1:
        arrays[0] = np.repeat(arrays[0], 2)[::2]
    return arrays, w


def _same_state(a, b, weighted):
    assert a["holder"].n_rows == b["holder"].n_rows
    for x, y in zip(a["tables"], b["tables"]):
        if weighted:  # (numpy adds in row order, the stream in grouped_counts' chunked order)
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=0)
        else:
            np.testing.assert_array_equal(x, y)


@SETTINGS
@given(plan=plans(), seed=st.integers(0, 2**32 - 1), ops=st.lists(st.integers(0, 99), min_size=8, max_size=20))
def test_compiled_stream_equals_numpy_twin(plan, seed, ops):
    """Every call of a random sequence returns the same status (or pattern) on both, and leaves
    the same tables, row count and accepted patterns."""
    rng = np.random.default_rng(seed)
    got, gs = _build(plan, _backend.core().SlotStream)
    want, ws = _build(plan, ref.SlotStream)
    last_key = None
    # a few batches that come back (so their patterns get accepted and added), and one-offs
    sizes = [1, int(rng.integers(2, 60)), int(rng.integers(4096, 9000))]
    pool = [(_batch(plan, rng, n), n) for n in sizes[: int(rng.integers(1, 4))]]
    for op in ops:
        # 0-49 add, 50-69 allow, 70-84 note (a handed-back pattern, or a batch's slot tables),
        # 85-94 add a one-off batch that is declined (or empty), 95-99 change the state
        spoil = None
        if 85 <= op < 95:
            spoil = ["row", "row", "weight", "weight", "dtype", "length", "strided", "empty"][op % 8]
            n = 0 if spoil == "empty" else int(rng.choice([1, 30, 5000]))
            arrays, w = _batch(plan, rng, n, spoil)
        else:
            (arrays, w), n = pool[int(rng.integers(0, len(pool)))]
        threads = int(rng.choice([0, 1, 2, 3]))
        if op < 50 or spoil is not None:  # add (the steady state's call)
            a, b = got.add(arrays, w, threads), want.add(arrays, w, threads)
            assert a == b, (a, b)
            if type(a) is bytes:
                last_key = (a, n)
        elif op < 70:  # allow: the pattern of a batch the one-pass path counted
            assert got.allow(arrays, w, threads) == want.allow(arrays, w, threads)
        elif op < 85:
            if last_key is not None and op % 2:
                assert got.note(*last_key) == want.note(*last_key)
            else:
                raws = []
                shared = list(range(plan["F"], len(plan["cols"])))
                for f in range(plan["F"]):
                    cj = [f] + shared
                    codes = [arrays[j].view(np.int8) if plan["cols"][j]["boolean"] else arrays[j] for j in cj]
                    raws.append(
                        ref.slot_counts(
                            codes, [plan["cols"][j]["offset"] for j in cj], [plan["cols"][j]["size"] for j in cj]
                        ).ravel()
                    )
                assert got.note_tables(raws, n) == want.note_tables(raws, n)
        else:  # the state changes under the stream: a table replaced, a vocabulary grown
            if op % 2:
                f = int(rng.integers(0, plan["F"]))
                for s in (gs, ws):
                    s["counts"][f][s["kind"]] = s["tables"][f].copy()
                    s["tables"][f] = s["counts"][f][s["kind"]]
            else:
                for s in (gs, ws):
                    s["vocabs"][int(op % 4 == 0)].append(0)
        assert got.fresh() == want.fresh()
        assert got.n_patterns == want.n_patterns
        _same_state(gs, ws, plan["weighted"])


def _plain_plan(weighted=False):
    col = dict(boolean=False, itemsize=8, offset=1, vocab=True)
    cols = [
        dict(col, role="facet", size=7, axis=7, code=np.arange(7, dtype=np.int32), wmap=np.arange(7, dtype=np.int32)),
        dict(col, role="group", size=4, axis=4, code=np.arange(4, dtype=np.int32), wmap=np.arange(4, dtype=np.int32)),
        dict(col, role="label", size=3, axis=2, vocab=False, code=np.array([0, 0, 1], np.int32)),
        dict(col, role="pred", size=3, axis=2, vocab=False, code=np.array([0, 1, 0], np.int32)),
    ]
    for c in cols[2:]:
        c["wmap"] = c["code"]
    return dict(F=1, has_group=True, has_pred=True, weighted=weighted, cols=cols, K=4, sightings=1, sighting_rows=1)


def _plain_arrays(rng, n):
    return [
        rng.integers(0, 6, n).astype(np.int64),
        rng.integers(0, 3, n).astype(np.int64),
        rng.integers(0, 2, n).astype(np.int64),
        rng.integers(0, 2, n).astype(np.int64),
    ]


@pytest.mark.parametrize("weighted", [False, True])
def test_every_thread_count_counts_the_same(weighted):
    """A 100,003-row batch (the team pass: chunks pulled by the caller and the helpers) gives the
    same table for 1, 2, 3, 8 and all threads, equal to numpy's; the weighted sums are identical
    across thread counts (their order is fixed by the rows alone)."""
    plan = _plain_plan(weighted)
    rng = np.random.default_rng(3)
    arrays = _plain_arrays(rng, 100_003)
    w = rng.exponential(size=100_003) if weighted else None
    tabs = []
    for threads in (1, 2, 3, 8, 0):
        got, gs = _build(plan, _backend.core().SlotStream)
        want, ws = _build(plan, ref.SlotStream)
        assert type(got.add(arrays, w, threads)) is bytes  # not accepted yet
        assert got.allow(arrays, w, threads) == want.allow(arrays, w, threads) == 0
        for _ in range(2):
            assert got.add(arrays, w, threads) == want.add(arrays, w, threads) == 0
        _same_state(gs, ws, weighted)
        tabs.append(gs["tables"][0].copy())
    for t in tabs[1:]:
        np.testing.assert_array_equal(t, tabs[0])


@pytest.mark.parametrize("where", [0, 1, 4095, 50_000, 99_999])
@pytest.mark.parametrize("threads", [1, 2, 0])
def test_a_bad_row_anywhere_declines_the_whole_batch(where, threads):
    """A row outside its slots (first, last, any chunk) declines the batch, nothing added."""
    plan = _plain_plan()
    rng = np.random.default_rng(4)
    arrays = _plain_arrays(rng, 100_000)
    got, gs = _build(plan, _backend.core().SlotStream)
    want, ws = _build(plan, ref.SlotStream)
    assert got.allow(arrays, None, threads) == want.allow(arrays, None, threads) == 0
    bad = [a.copy() for a in arrays]
    bad[1][where] = 9  # group slot 10 of 4
    for _ in range(2):
        assert got.add(bad, None, threads) == want.add(bad, None, threads) == 2
    assert gs["holder"].n_rows == 0 and not gs["tables"][0].any()
    # (the helpers' tables of the failed pass were cleared: the next pass counts from zero)
    assert got.add(arrays, None, threads) == want.add(arrays, None, threads) == 0
    _same_state(gs, ws, False)


def test_edge_batches():
    """Empty batch, one row, arrays that do not fit, weights of another dtype: as the twin."""
    for weighted in (False, True):
        plan = _plain_plan(weighted)
        got, gs = _build(plan, _backend.core().SlotStream)
        want, ws = _build(plan, ref.SlotStream)
        rng = np.random.default_rng(5)
        empty = [a[:0] for a in _plain_arrays(rng, 3)]
        w0 = np.zeros(0) if weighted else None
        assert got.add(empty, w0, 0) == want.add(empty, w0, 0) == 4
        one = _plain_arrays(rng, 1)
        w1 = np.array([2.5]) if weighted else None
        key = got.add(one, w1, 0)
        assert type(key) is bytes and key == want.add(one, w1, 0)
        assert got.note(key, 1) == want.note(key, 1) == 0
        assert got.add(one, w1, 0) == want.add(one, w1, 0) == 0
        _same_state(gs, ws, weighted)
        assert gs["holder"].n_rows == 1
        if weighted:
            f32 = np.array([2.5], dtype=np.float32)
            assert got.add(one, f32, 0) == want.add(one, f32, 0) == 4
            assert got.add(one, None, 0) == want.add(one, None, 0) == 4
        for stream in (got, want):
            with pytest.raises(ValueError, match="one array per column"):
                stream.add(one[:-1], w1, 0)
        short = [one[0][:0]] + one[1:]
        assert got.add(short, w1, 0) == want.add(short, w1, 0) == 4
        assert got.note(key[:-1], 1) == want.note(key[:-1], 1) == 4
        assert got.note_tables([], 1) == want.note_tables([], 1) == 4
        _same_state(gs, ws, weighted)


def test_uncoded_value_declines():
    """A slot whose value has no code yet (5), whatever the thread count."""
    plan = _plain_plan()
    plan["cols"][0]["code"] = np.array([0, 1, 2, -1, 4, 5, 6], np.int32)
    got, gs = _build(plan, _backend.core().SlotStream)
    want, ws = _build(plan, ref.SlotStream)
    rng = np.random.default_rng(6)
    arrays = _plain_arrays(rng, 20_000)  # facet values 0..5: slot 3 (value 2) occurs
    for threads in (1, 0):
        assert got.add(arrays, None, threads) == want.add(arrays, None, threads) == 5
        assert got.allow(arrays, None, threads) == want.allow(arrays, None, threads) == 5
    _same_state(gs, ws, False)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([0, 1, 7, 4095, 4096, 4097, 20_000, 70_001]),
    threads=st.sampled_from([0, 1, 2, 3, 5]),
    bad=st.booleans(),
)
def test_team_pass_equals_numpy(seed, n, threads, bad):
    """``slot_counts_team`` (the one-pass batches of an accumulator) against the numpy twin of
    the slot counts, every dtype, small and large tables; a bad row is the same error as
    ``slot_counts_cpu``'s (the first one)."""
    assert_team_pass(*team_problem(np.random.default_rng(seed), n, bad), threads)


def team_problem(rng: np.random.Generator, n: int, bad: bool) -> tuple:
    """A slot-count problem of n rows (1 to 4 code columns of every dtype, small and large
    tables), with ``bad``: a code outside its slots at up to 3 rows. Returns (codes, offsets,
    sizes, the bad rows)."""
    k = int(rng.integers(1, 5))
    sizes = [int(rng.choice([1, 3, 11, 40])) for _ in range(k)]
    offsets = [int(rng.integers(-5, 6)) for _ in range(k)]
    codes = [(rng.integers(0, s, n) - o).astype(DTYPES[int(rng.choice([1, 2, 4, 8]))]) for s, o in zip(sizes, offsets)]
    rows = rng.integers(0, n, 3) if bad and n else np.zeros(0, dtype=np.int64)
    if rows.size:
        j = int(rng.integers(0, k))
        for r in rows:
            codes[j][r] = sizes[j] - offsets[j]
    return codes, offsets, sizes, rows


def assert_team_pass(codes: list, offsets: list, sizes: list, rows: np.ndarray, threads: int) -> None:
    """``slot_counts_team`` gives ``slot_counts_cpu``'s error and the numpy twin's table."""
    core = _backend.core()
    got = np.full(sizes, -7, dtype=np.int64)
    err = core.slot_counts_team(codes, offsets, sizes, got, threads)
    want = np.empty(sizes, dtype=np.int64)
    assert err == core.slot_counts_cpu(codes, offsets, sizes, want, 1)
    if err[0] == 0:
        np.testing.assert_array_equal(got, ref.slot_counts(codes, offsets, sizes))
    else:
        assert rows.size and err[1] == int(rows.min())


# -- the accumulator ----------------------------------------------------------------------------


def _frames(seed, n_frames, n, f_kind="categorical"):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_frames):
        f = rng.integers(0, 6, n)
        out.append(
            pd.DataFrame(
                {
                    "f": f if f_kind == "int" else pd.Categorical.from_codes(f, [f"w{i}" for i in range(6)]),
                    "y": rng.random(n) < 0.3 + 0.05 * f,
                    "p": rng.random(n) < 0.5,
                    "g": pd.Categorical.from_codes(rng.integers(0, 3, n), list("xyz")),
                    "w": rng.exponential(size=n),
                }
            )
        )
    return out


KW = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("f_kind", ["int", "categorical"])
def test_first_batch_hands_its_tables_to_the_stream(monkeypatch, weighted, f_kind):
    """The first 10,000-row batch is counted once (the one-pass path's pass; the stream notes
    its pattern from that pass's tables, no second pass), and the second batch is the stream's."""
    frames = _frames(8, 3, 10_000, f_kind)
    kw = dict(KW, weights="w") if weighted else KW
    passes = []
    real = eng.slot_counts_prepared
    monkeypatch.setattr(eng, "slot_counts_prepared", lambda *a, **k: passes.append(1) or real(*a, **k))
    monkeypatch.setattr(acc_mod._Stream, "allow", lambda *a, **k: pytest.fail("a second pass"))
    acc = cb.Accumulator(**kw)
    acc.update(frames[0])
    assert len(passes) == 1 and acc._stream is not None and acc._stream.core.n_patterns == 1
    calls = []
    monkeypatch.setattr(eng.State, "fast_count", lambda *a, **k: calls.append(1))
    acc.update(frames[1])
    acc.update(frames[2])
    assert not calls and acc.n_rows == 30_000
    monkeypatch.undo()
    one = pd.concat(frames, ignore_index=True)
    got, want = acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **kw).to_frame()
    if weighted:  # (different summation orders: the batches' sums, added)
        pd.testing.assert_frame_equal(got, want, rtol=1e-9)
    else:
        pd.testing.assert_frame_equal(got, want)


def test_four_threads_team_sized_batches():
    """Four Python threads updating one accumulator with 6,000-row batches (each counted by the
    team pass, one pass holding the team at a time, the others counting alone): the report equals
    the one-shot report on all rows."""
    frames = _frames(9, 24, 6_000)
    acc = cb.Accumulator(**KW)
    acc.update(frames[0])
    todo = list(range(1, len(frames)))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            acc.update(frames[i])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acc.n_rows == 24 * 6_000
    one = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **KW).to_frame())


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_team_after_fork():
    """A forked child (which has none of the parent's helper threads) counts steady batches
    with a team of its own."""
    frames = _frames(10, 4, 50_000)
    acc = cb.Accumulator(**KW)
    for fr in frames[:2]:
        acc.update(fr)  # the parent's team exists now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (fork with threads: what is tested)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            for fr in frames[2:]:
                acc.update(fr)
            one = pd.concat(frames, ignore_index=True)
            same = acc.report(COUNT).to_frame().equals(cb.report(one, methods=COUNT, **KW).to_frame())
            code = 0 if same and acc.n_rows == 200_000 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# -- the steady state's column fetch (_Stream._frame_arrays) -------------------------------------


def _mixed_frame(seed, n):
    """f categorical, g int64, y bool, p bool, x (unused) float: frames cut from it share their
    column index and their block layout."""
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 6, n)
    return pd.DataFrame(
        {
            "x": rng.random(n),
            "f": pd.Categorical.from_codes(f, [f"w{i}" for i in range(6)]),
            "g": rng.integers(0, 4, n),
            "y": rng.random(n) < 0.3 + 0.05 * f,
            "p": rng.random(n) < 0.5,
        }
    )


def _variants(base, rng):
    """Batches that are not laid out as the stream's frames (the stream's column fetch must
    re-locate their columns, or decline them; never count them wrongly)."""
    n = len(base)
    out = []
    # a new categorical dtype object, the same categories (a reader's chunk)
    out.append(base.assign(f=pd.Categorical(base["f"].astype(object), categories=base["f"].cat.categories)))
    out.append(base[["p", "y", "g", "f", "x"]])  # the columns reordered
    out.append(base.assign(z=np.arange(n)))  # a column added
    out.append(base.copy())  # a copy (its own column index)
    out.append(base.assign(g=base["g"].astype(np.int32)))  # another integer dtype
    out.append(base.assign(g=np.asfortranarray(np.stack([base["g"].to_numpy()] * 2, axis=1))[:, 0]))  # strided
    out.append(base.assign(f=base["f"].astype(object)))  # strings: hashed per batch
    new = base["f"].cat.add_categories(["w9"])
    out.append(base.assign(f=new.where(np.arange(n) != 3, "w9")))  # a new value
    bad = base["g"].to_numpy().copy()
    bad[rng.integers(0, n)] = 10_000  # outside the integer range
    out.append(base.assign(g=bad))
    return out


@pytest.mark.parametrize("n", [300, 5_000])
def test_steady_column_fetch_equals_the_general_path(monkeypatch, n):
    """Batches cut from one frame are fetched by the stream's one-loop column fetch; frames laid
    out otherwise (reordered or added columns, copies, new dtype objects, other dtypes, strided
    columns, strings, new values, wider ranges) must not be counted wrongly. After every batch the
    state equals the general path's bit for bit, and the steady batches took the stream."""
    from _state_compare import same, snapshot, update_both

    big = _mixed_frame(12, 40 * n)
    frames = [big.iloc[i * n : (i + 1) * n] for i in range(40)]
    rng = np.random.default_rng(13)
    batches = []
    for i, fr in enumerate(frames):
        batches.append(fr)
        if i % 4 == 3:
            v = _variants(fr, rng)
            batches.append(v[int(rng.integers(0, len(v)))])
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    hits = []
    real = acc_mod._Stream.add

    def add(self, batch):
        out = real(self, batch)
        if type(out) is int and out:
            hits.append(out)
        return out

    monkeypatch.setattr(acc_mod._Stream, "add", add)
    acc = cb.Accumulator(**kw)
    want = eng.State(acc.spec)
    for b in batches:
        err_a, err_b = update_both(acc, want, b, "clarion")
        assert err_a == err_b
        assert same(snapshot(acc._states["all"]), snapshot(want))
    assert acc._stream is not None
    assert len(hits) >= len(frames) // 2, (len(hits), len(batches))
