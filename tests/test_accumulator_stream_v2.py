"""Issue 21, part 2: the compiled steady state of ``Accumulator.update`` (``_core.SlotStream``).

Once the one-pass path has counted a batch pattern (which slots of each column occur) in three
batches or 10,000 rows, later batches with that pattern are counted, mapped and added in one
compiled call. Everything else (a new value, a missing value, an integer outside the stream's
range, a bad weight, another categorical dtype, a grown vocabulary) must decline before any
change and take the one-pass / general path, which counts the batch or raises its error.

Checked against the general path (``State.encode`` + ``State.count``) after every batch of
hypothesis-generated streams that leave and re-enter the steady state: the whole state
(vocabularies, samples, seen codes, count tables bit for bit), the error of a failing batch, the
report and the serialized accumulator; and with four threads on one accumulator.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from _state_compare import general_update, same, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion.bias import accumulator as acc_mod
from clarion.bias._engine import State, Table

COUNT = [m for m in cb.ALL_METRICS if m != "FT"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = [f"w{i}" for i in range(6)]


def _stream_hits(monkeypatch) -> list:
    """Records the batches the compiled stream counted (``_Stream.add`` returning a length)."""
    hits: list = []
    real = acc_mod._Stream.add

    def add(self, batch):
        out = real(self, batch)
        if type(out) is int and out:
            hits.append(out)
        return out

    monkeypatch.setattr(acc_mod._Stream, "add", add)
    return hits


@st.composite
def streams(draw):
    """Batches from a few templates, repeated (so the stream accepts their patterns) and
    interleaved with batches that leave the steady state: new categories, missing values, a
    wider integer range, another categorical dtype object (same or reordered categories), bad
    weights, empty batches."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    facet_kind = draw(st.sampled_from(["int", "int32", "bool", "categorical"]))
    group_kind = draw(st.sampled_from([None, "int", "categorical"]))
    label_kind = draw(st.sampled_from(["bool", "int", "categorical"]))
    with_pred = draw(st.booleans())
    weighted = draw(st.booleans())
    facet_mode = draw(st.sampled_from(["all", "values"]))
    compat = draw(st.sampled_from(["clarion", "smclarify"]))
    cats = pd.CategoricalDtype(WORDS)

    def column(kind, n, lo, k, miss, dtype=None):
        idx = rng.integers(lo, lo + k, n)
        if kind == "int":
            return idx.astype(np.int64) * 3 - 2
        if kind == "int32":
            return idx.astype(np.int32) - 1
        if kind == "bool":
            return (idx % 2).astype(bool)
        vals = np.array(WORDS, dtype=object)[idx % len(WORDS)]
        if miss:
            vals = np.where(rng.random(n) < 0.3, None, vals)
        return pd.Categorical(vals, dtype=dtype or cats)

    def template(variant):
        n = draw(st.integers(1, 30)) if variant != "empty" else 0
        lo = 0 if variant != "shift" else draw(st.integers(1, 3))
        k = draw(st.integers(1, 3))
        miss = variant == "missing"
        dtype = None
        if variant == "copy":  # an equal dtype, another object
            dtype = pd.CategoricalDtype(list(WORDS))
        elif variant == "reorder":  # the same categories in another order: other codes
            dtype = pd.CategoricalDtype(list(reversed(WORDS)))
        cols = {"f": column(facet_kind, n, lo, k, miss, dtype)}
        cols["y"] = column(label_kind, n, 0, 2, miss and compat == "smclarify", dtype)
        if group_kind is not None:
            cols["g"] = column(group_kind, n, lo, draw(st.integers(1, 3)), miss and compat == "smclarify", dtype)
        if with_pred:
            cols["p"] = column(label_kind, n, 0, 2, False, dtype)
        if weighted:
            w = rng.exponential(size=n) * (rng.random(n) > 0.2)
            if variant == "bad_weight" and n:
                w[rng.integers(0, n)] = draw(st.sampled_from([np.nan, -1.0]))
            cols["w"] = w
        return pd.DataFrame(cols)

    variants = ["base", "base2"] + draw(
        st.lists(st.sampled_from(["shift", "missing", "copy", "reorder", "bad_weight", "empty"]), max_size=3)
    )
    templates = [template(v) for v in variants]
    # the base templates first and repeated (the stream takes them over), then a mix
    order = [0, 0, 0, 0, 1, 1, 1, 1] + draw(st.lists(st.integers(0, len(templates) - 1), min_size=2, max_size=12))
    batches = [templates[i] for i in order]
    pos = {"bool": [True], "int": [-2], "categorical": ["w1"]}[label_kind]
    kw = dict(label="y", facet="f", label_values=pos)
    if facet_mode == "values":
        first = templates[0]["f"].iloc[0] if len(templates[0]) else None
        kw["facet_values"] = ["w2" if first is None or pd.isna(first) else getattr(first, "item", lambda: first)()]
    if group_kind is not None:
        kw["group_variable"] = "g"
    if with_pred:
        kw["predicted_label"] = "p"
    if weighted:
        kw["weights"] = "w"
    return batches, kw, compat


def _run(kw, batches, compat):
    """An Accumulator over the batches: its snapshot after every batch (with the error of a
    failing batch: the general path may have extended a vocabulary before it failed), its report
    and its bytes."""
    acc = cb.Accumulator(compat=compat, **kw)
    snaps = []
    for b in batches:
        err = None
        try:
            acc.update(b)
        except (ValueError, TypeError) as exc:
            err = (type(exc), str(exc))
        snaps.append((err, snapshot(acc._states["all"]) if "all" in acc._states else None))
    methods = COUNT if "predicted_label" in kw else list(cb.PRE_TRAINING)
    rep = None  # (no batch counted: nothing to report)
    if acc.n_rows:
        try:
            rep = acc.report(methods).to_frame()
        except ValueError as exc:
            rep = str(exc)
    return snaps, rep, acc.to_bytes() if acc.n_rows else None


@SETTINGS
@given(stream=streams())
def test_stream_equals_general_path_after_every_batch(stream):
    batches, kw, compat = stream
    with pytest.MonkeyPatch.context() as m:
        hits = _stream_hits(m)
        got = _run(kw, batches, compat)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(State, "fast_count", lambda self, *a, **k: None)  # the general path (no stream either)
        want = _run(kw, batches, compat)
    for i, (a, b) in enumerate(zip(got[0], want[0])):
        assert same(a, b), (i, kw, compat, a, b)
    if want[1] is None or isinstance(want[1], str):
        assert got[1] == want[1]
    else:
        pd.testing.assert_frame_equal(got[1], want[1])
    assert got[2] == want[2]
    assert len(hits) <= len(batches)


def _frames(seed, n_frames, n, f_kind="int"):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_frames):
        f = rng.integers(0, 6, n)
        out.append(
            pd.DataFrame(
                {
                    "f": f if f_kind == "int" else pd.Categorical.from_codes(f, WORDS),
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
def test_steady_batches_take_the_compiled_stream(monkeypatch, weighted, f_kind):
    """Small batches: the fourth batch of a pattern on is counted by the stream (the one-pass
    path is not called); the state equals the general path's bit for bit (weighted sums too)."""
    frames = _frames(5, 12, 200, f_kind)
    kw = dict(KW, weights="w") if weighted else KW
    hits = _stream_hits(monkeypatch)
    calls = []
    real = State.fast_count
    monkeypatch.setattr(State, "fast_count", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    acc = cb.Accumulator(**kw)
    for fr in frames:
        acc.update(fr)
    assert len(calls) == 3 and len(hits) == 9 and acc._stream.core.n_patterns == 1
    want = State(acc.spec)
    for fr in frames:
        general_update(want, Table(fr), "clarion")
    assert same(snapshot(acc._states["all"]), snapshot(want))
    one = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **kw).to_frame())


def test_large_batch_pattern_taken_over_at_once(monkeypatch):
    """A pattern counted in 10,000 rows or more is the stream's from the next batch on."""
    frames = _frames(6, 3, 10_000)
    hits = _stream_hits(monkeypatch)
    acc = cb.Accumulator(**KW)
    for fr in frames:
        acc.update(fr)
    assert hits == [10_000, 10_000]
    one = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **KW).to_frame())


@pytest.mark.parametrize(
    "spoil",
    [
        lambda fr: fr.assign(y=pd.array([None] + [True] * (len(fr) - 1), dtype="boolean")),
        lambda fr: fr.assign(g=fr["g"].cat.set_categories(list("xyz")).where(fr.index != 3)),
        lambda fr: fr.assign(w=np.where(fr.index == 5, -1.0, fr["w"])),
        lambda fr: fr.assign(w=np.where(fr.index == 7, np.nan, fr["w"])),
        lambda fr: fr.drop(columns="p"),
    ],
)
def test_bad_batch_in_steady_state_raises_as_general_path(spoil):
    """A bad batch after the stream took over raises the general path's error, in that update,
    and changes nothing."""
    frames = _frames(7, 5, 300)
    kw = dict(KW, weights="w")
    acc = cb.Accumulator(**kw)
    for fr in frames:
        acc.update(fr)
    assert acc._stream is not None and acc._stream.core.n_patterns == 1
    bad = spoil(frames[0])
    before = snapshot(acc._states["all"])
    with pytest.raises(ValueError) as got:
        acc.update(bad)
    assert same(snapshot(acc._states["all"]), before)
    ref = cb.Accumulator(**kw)
    for fr in frames:
        ref.update(fr)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(State, "fast_count", lambda self, *a, **k: None)
        with pytest.raises(ValueError) as want:
            ref.update(bad)
    assert str(got.value) == str(want.value)
    acc.update(frames[1])  # the stream goes on
    assert acc.n_rows == 6 * 300


def test_leaving_and_reentering_the_steady_state():
    """New facet values, a wider integer range, a new group and an equal categorical dtype
    (another object) between steady batches: counts equal the one-shot report's."""
    frames = _frames(8, 20, 500)
    frames[6] = frames[6].assign(f=frames[6]["f"] + 10)  # outside the range: re-measured
    frames[9] = frames[9].assign(g=frames[9]["g"].cat.add_categories(["zz"]).where(frames[9].index > 2, "zz"))
    frames[12] = frames[12].assign(g=frames[12]["g"].astype(pd.CategoricalDtype(list("xyz"))))
    frames[15] = frames[15].assign(g=frames[15]["g"].cat.reorder_categories(list("zyx")))
    acc = cb.Accumulator(**KW)
    for fr in frames:
        acc.update(fr)
    one = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **KW).to_frame())
    want = State(acc.spec)
    for fr in frames:
        general_update(want, Table(fr), "clarion")
    assert same(snapshot(acc._states["all"]), snapshot(want))


def test_strided_columns_and_dict_batches(monkeypatch):
    """A frame built from a 2-D array (strided columns) and dicts of arrays count as frames do."""
    rng = np.random.default_rng(9)
    frames = []
    for _ in range(6):
        a = np.column_stack([rng.integers(0, 4, 400), rng.integers(0, 2, 400), rng.integers(0, 3, 400)])
        fr = pd.DataFrame(a, columns=["f", "y", "g"], copy=False)  # each column a strided row of a.T
        frames.append(fr.assign(w=rng.exponential(size=400)))
    assert not frames[0]._mgr.blocks[0].values[0].flags.c_contiguous
    kw = dict(label="y", facet="f", label_values=[1], group_variable="g", weights="w")
    hits = _stream_hits(monkeypatch)
    acc = cb.Accumulator(**kw)
    for fr in frames:
        acc.update(fr)
    for fr in frames:
        acc.update({c: fr[c].to_numpy() for c in fr.columns})
    assert len(hits) >= 8
    one = pd.concat(frames + frames, ignore_index=True)
    pre = list(cb.PRE_TRAINING)
    pd.testing.assert_frame_equal(acc.report(pre).to_frame(), cb.report(one, methods=pre, **kw).to_frame())
    with pytest.raises(ValueError, match="data"):  # a dict with a column of another length
        acc.update({**{c: frames[0][c].to_numpy() for c in frames[0].columns}, "x": np.zeros(3)})


def test_backend_env_and_row_offset_in_steady_state(monkeypatch):
    frames = _frames(10, 6, 300)
    acc = cb.Accumulator(**KW)
    for fr in frames[:4]:
        acc.update(fr)
    with pytest.raises(ValueError, match="row_offset"):
        acc.update(frames[4], row_offset=-1)
    hits = _stream_hits(monkeypatch)
    monkeypatch.setenv("CLARION_BACKEND", "numpy")  # read on every call: the stream steps aside
    acc.update(frames[4], row_offset=acc.next_row)
    assert hits == []
    monkeypatch.delenv("CLARION_BACKEND")
    acc.update(frames[5])
    assert hits == [300]
    one = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **KW).to_frame())


def test_four_threads_mixed_batches():
    """Four threads on one accumulator: steady batches, batches with new values, bad batches
    (their error raised in their own thread, nothing counted). The result equals the general
    path over the good batches."""
    frames = _frames(11, 40, 1_000, "categorical")
    for i in range(5, 40, 7):  # new facet values
        frames[i] = frames[i].assign(f=frames[i]["f"].cat.set_categories(WORDS).where(frames[i].index > 3, "w5"))
    bad = {8, 21, 33}
    for i in bad:  # a missing label: an error
        frames[i] = frames[i].assign(y=pd.array([None] + [True] * 999, dtype="boolean"))
    acc = cb.Accumulator(**KW)
    acc.update(frames[0])
    todo = list(range(1, len(frames)))
    lock = threading.Lock()
    errors: dict = {}

    def work():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            try:
                acc.update(frames[i])
            except ValueError as exc:
                errors[i] = str(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(errors) == bad and all("label" in e for e in errors.values())
    good = [fr for i, fr in enumerate(frames) if i not in bad]
    assert acc.n_rows == sum(len(fr) for fr in good)
    one = pd.concat(good, ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **KW).to_frame())


def test_column_positions_follow_each_frame(monkeypatch):
    """The columns' positions are reused only for frames cut from one frame (a shared column
    index); a frame with its columns in another order (facet and group of one dtype swapped)
    is read by name."""
    rng = np.random.default_rng(12)
    n = 3_000
    df = pd.DataFrame(
        {"f": rng.integers(0, 4, n), "g": rng.integers(0, 3, n), "y": rng.random(n) < 0.4, "p": rng.random(n) < 0.5}
    )
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    hits = _stream_hits(monkeypatch)
    acc = cb.Accumulator(**kw)
    parts = [df.iloc[i : i + 500] for i in range(0, n, 500)]
    swapped = [p[["g", "f", "p", "y"]] for p in parts]
    order = [parts[0], parts[1], parts[2], parts[3], swapped[4], parts[5], swapped[0], swapped[1]]
    for fr in order:
        acc.update(fr)
    assert len(hits) >= 4
    one = pd.concat([fr[["f", "g", "y", "p"]] for fr in order], ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **kw).to_frame())


@pytest.mark.parametrize("weighted", [False, True])
def test_several_facets(monkeypatch, weighted):
    """Two facets (one with all its values, one with selected values) share the group, label and
    prediction columns: each facet's table equals the general path's, bit for bit."""
    rng = np.random.default_rng(13)
    frames = []
    for i in range(10):
        n = 700
        f1 = rng.integers(0, 5 + (i == 6), n)  # batch 6: a new value of f1
        frames.append(
            pd.DataFrame(
                {
                    "f1": f1,
                    "f2": pd.Categorical.from_codes(rng.integers(0, 4, n), WORDS[:4]),
                    "g": rng.integers(0, 3, n).astype(np.int32),
                    "y": pd.Categorical.from_codes((rng.random(n) < 0.4).astype(int), ["no", "yes"]),
                    "p": pd.Categorical.from_codes((rng.random(n) < 0.5).astype(int), ["no", "yes"]),
                    "w": rng.exponential(size=n),
                }
            )
        )
    kw = dict(
        label="y",
        facet=["f1", "f2"],
        facet_values={"f2": ["w1", "w3"]},
        label_values=["yes"],
        predicted_label="p",
        group_variable="g",
    )
    if weighted:
        kw["weights"] = "w"
    hits = _stream_hits(monkeypatch)
    acc = cb.Accumulator(**kw)
    for fr in frames:
        acc.update(fr)
    assert len(hits) == 3  # batches 3-5 (then the range of f1 widens: three batches to re-accept)
    want = State(acc.spec)
    for fr in frames:
        general_update(want, Table(fr), "clarion")
    assert same(snapshot(acc._states["all"]), snapshot(want))
    one = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **kw).to_frame())
