"""Issue 21, part 2 (session 17): the fast paths of ``Accumulator.update`` added for small batches.

* A steady DataFrame batch is read from its blocks by the compiled call
  (``_core.SlotStream.add_frame``, primed by the Python fetch): frames whose column index is not
  the one it knows, another categorical dtype object, a strided or consolidated block, columns in
  another order fall back to the Python fetch.
* Object-string columns are read as codes over the str values learned from the batches the
  accumulator counted (``_core.ObjectCodes``, ``accumulator._TextColumn``): a batch whose every
  row is a learned str becomes a categorical frame; anything else (a missing value, a number, a
  str subclass, an unseen value) keeps the object path, which counts it or raises its error.

Checked against the general path (``State.encode`` + ``State.count`` on the original batch)
after every batch of hypothesis-generated streams: the whole state (vocabularies in their order,
samples, seen codes, count tables bit for bit), the error of a failing batch, the report; the
string table against a plain dict; and with four threads on one accumulator.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from _state_compare import general_update, same, snapshot, update_both
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion import _backend, _reference
from clarion.bias import accumulator as acc_mod
from clarion.bias._engine import State, Table

COUNT = [m for m in cb.ALL_METRICS if m != "FT"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# ASCII, Latin-1, BMP and astral strings (the str kinds of 1, 2 and 4 bytes a code point)
WORDS = ["no", "yes", "w2", "é3", "€4", "😀5", "", "w 7"]

pytestmark = pytest.mark.skipif(
    not (_backend.has_core() and hasattr(_backend.core(), "ObjectCodes")), reason="needs the compiled core"
)


def fresh(s: str) -> str:
    """An equal str that is another object (no interning, no shared constant)."""
    return "".join(list(s)) if len(s) > 1 else (s + "x")[:-1] if s else "".join([])


def _hits(monkeypatch) -> dict:
    """Counts the batches read as codes and those the compiled stream counted."""
    hits = {"text": 0, "stream": 0}
    real_text, real_add = acc_mod.Accumulator._text_batch, acc_mod._Stream.add

    def text_batch(self, batch, text):
        out = real_text(self, batch, text)
        hits["text"] += out is not None
        return out

    def add(self, batch):
        out = real_add(self, batch)
        hits["stream"] += type(out) is int and out > 0
        return out

    monkeypatch.setattr(acc_mod.Accumulator, "_text_batch", text_batch)
    monkeypatch.setattr(acc_mod._Stream, "add", add)
    return hits


# -- the string table against a plain dict ----------------------------------------------------


@SETTINGS
@given(
    learned=st.lists(st.lists(st.sampled_from(WORDS + [None, 1, 2.5, float("nan")]), max_size=30), max_size=4),
    rows=st.lists(st.sampled_from(WORDS + ["unseen", None, 3, float("nan"), np.str_("yes")]), max_size=40),
    limit=st.integers(0, 12),
    itemsize=st.sampled_from([1, 2, 4, 8]),
    copies=st.booleans(),
)
def test_object_codes_equal_a_dict(learned, rows, limit, itemsize, copies):
    codes = _backend.core().ObjectCodes()
    twin = _reference.ObjectCodes()
    ref: dict = {}
    for batch in learned:
        arr = np.array([fresh(v) if copies and isinstance(v, str) else v for v in batch] + [0], dtype=object)[:-1]
        added = codes.learn(arr)
        assert twin.learn(arr) == added
        before = len(ref)
        for v in batch:
            if type(v) is str and v not in ref:
                ref[v] = len(ref)
        assert added == len(ref) - before
    assert codes.values() == list(ref) == twin.values() and len(codes) == len(ref) == len(twin)
    arr = np.array(rows + [0], dtype=object)[:-1]
    got = codes.encode(arr, limit, itemsize)
    want = twin.encode(arr, limit, itemsize)
    ok = all(type(v) is str and v in ref and ref[v] < limit for v in rows)
    if not ok:
        assert got is None and want is None
    else:
        assert got.dtype == np.dtype(f"i{itemsize}") == want.dtype
        assert got.tolist() == [ref[v] for v in rows] == want.tolist()


@pytest.mark.parametrize("make", [lambda: _backend.core().ObjectCodes(), lambda: _reference.ObjectCodes()])
def test_object_codes_bad_arguments(make):
    """The compiled table and its twin refuse the same arguments with the same messages."""
    codes = make()
    with pytest.raises(ValueError, match="1-D object array"):
        codes.learn(np.zeros(3))
    with pytest.raises(ValueError, match="1-D object array"):
        codes.encode(np.array([["a"]], dtype=object), 1, 1)
    codes.learn(np.array(["a", "b"], dtype=object))
    with pytest.raises(ValueError, match="itemsize"):
        codes.encode(np.array(["a"], dtype=object), 1, 3)
    assert codes.encode(np.array([], dtype=object), 2, 1).tolist() == []  # empty: no row declines
    assert codes.encode(np.array(["b"], dtype=object), 1, 1) is None  # beyond the limit
    assert codes.encode(np.array([np.str_("a")], dtype=object), 2, 1) is None  # a str subclass


def test_object_codes_strided_rows_and_many_objects():
    """A strided view (a row of a 2-D object block) and more distinct objects than the table of
    objects seen lately holds (it starts again: the codes stay right)."""
    codes = _backend.core().ObjectCodes()
    block = np.array([[f"v{i % 50}" for i in range(9000)], [None] * 9000], dtype=object)
    many = np.array([fresh(f"v{i % 50}") for i in range(9000)], dtype=object)  # 9,000 distinct objects
    assert codes.learn(block[0]) == 50
    got = codes.encode(many[::3], 50, 1)
    assert got.tolist() == [(3 * i) % 50 for i in range(3000)]
    assert codes.encode(block[1], 50, 1) is None  # missing values: the object path
    with pytest.raises(ValueError, match="object"):
        codes.encode(np.zeros(3), 5, 1)


# -- accumulators: object-string streams against the general path ----------------------------


@st.composite
def text_streams(draw):
    """Batches of object-string columns (facet, label, predicted label, group) from a few
    templates, repeated, and batches that leave the fast path: unseen values, None / NaN, numbers
    in an object column, str subclasses, equal strings as other objects, empty batches, a
    categorical column in place of an object one."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    with_group = draw(st.booleans())
    with_pred = draw(st.booleans())
    weighted = draw(st.booleans())
    facet_values = draw(st.booleans())
    compat = draw(st.sampled_from(["clarion", "smclarify"]))
    k = draw(st.integers(1, 6))
    labels = ["no", "yes"]

    def column(n, values, variant, missing_ok):
        vals = np.array(values, dtype=object)[rng.integers(0, len(values), n)]
        if n and variant == "missing" and missing_ok:
            vals[rng.integers(0, n)] = draw(st.sampled_from([None, float("nan")]))
        elif n and variant == "number":
            vals[rng.integers(0, n)] = draw(st.sampled_from([1, 2.5, True]))
        elif n and variant == "subclass":
            i = rng.integers(0, n)
            vals[i] = np.str_(vals[i])
        elif variant == "copies":
            vals = np.array([fresh(v) for v in vals] + [0], dtype=object)[:-1]
        return vals

    def template(variant):
        n = 0 if variant == "empty" else draw(st.sampled_from([1, 5, 40, 300]))
        facet_words = WORDS[2 : 2 + k] + (["brand new"] if variant == "unseen" else [])
        cols = {"f": column(n, facet_words, variant, True)}
        cols["y"] = column(n, labels, variant, compat == "smclarify")
        if with_group:
            cols["g"] = column(n, WORDS[:3], variant, True)
        if with_pred:
            cols["p"] = column(n, labels, variant if variant != "missing" else "base", False)
        if weighted:
            cols["w"] = rng.exponential(size=n)
        fr = pd.DataFrame({c: pd.Series(v, dtype=object) if c != "w" else v for c, v in cols.items()})
        if variant == "categorical" and n:
            fr["f"] = pd.Categorical(fr["f"])
        return fr

    variants = ["base", "base2"] + draw(
        st.lists(
            st.sampled_from(["unseen", "missing", "number", "subclass", "copies", "empty", "categorical"]), max_size=4
        )
    )
    templates = [template(v) for v in variants]
    order = [0, 0, 0, 1, 1] + draw(st.lists(st.integers(0, len(templates) - 1), min_size=2, max_size=12))
    kw = dict(label="y", facet="f", label_values=["yes"])
    if facet_values:
        kw["facet_values"] = [WORDS[2]]
    if with_group:
        kw["group_variable"] = "g"
    if with_pred:
        kw["predicted_label"] = "p"
    if weighted:
        kw["weights"] = "w"
    return [templates[i] for i in order], kw, compat


@SETTINGS
@given(stream=text_streams())
def test_text_stream_equals_general_path_after_every_batch(stream):
    batches, kw, compat = stream
    acc = cb.Accumulator(compat=compat, **kw)
    want = State(acc.spec)
    for i, b in enumerate(batches):
        err_a, err_b = update_both(acc, want, b, compat)
        assert err_a == err_b, (i, kw, compat)
        if "all" in acc._states:
            assert same(snapshot(acc._states["all"]), snapshot(want)), (i, kw, compat)
    if acc.n_rows:
        methods = COUNT if "predicted_label" in kw else list(cb.PRE_TRAINING)
        good = [b for b in batches if len(b)]
        try:
            rep = acc.report(methods).to_frame()
        except ValueError as exc:
            rep = str(exc)
        ref = cb.Accumulator(compat=compat, **kw)
        ref._text = False  # the object path throughout
        for b in good:
            try:
                ref.update(b)
            except ValueError:
                pass
        try:
            want_rep = ref.report(methods).to_frame()
        except ValueError as exc:
            want_rep = str(exc)
        if isinstance(rep, str) or isinstance(want_rep, str):
            assert rep == want_rep
        else:
            pd.testing.assert_frame_equal(rep, want_rep)
            assert acc.to_bytes() == ref.to_bytes()


def test_values_pandas_cannot_hold_as_categories_keep_the_object_path():
    """A lone surrogate is a str the object path counts, but pandas' str dtype refuses it as a
    category: such a column keeps the object path (no error), and the counts are the general
    path's."""
    rng = np.random.default_rng(2)
    words = np.array(["a", "\ud800", "b"], dtype=object)
    frames = [
        pd.DataFrame(
            {
                "f": pd.Series(words[rng.integers(0, 3, 50)], dtype=object),
                "y": pd.Series(np.where(rng.random(50) < 0.5, "yes", "no"), dtype=object),
            }
        )
        for _ in range(5)
    ]
    kw = dict(label="y", facet="f", label_values=["yes"])
    acc = cb.Accumulator(**kw)
    want = State(acc.spec)
    for fr in frames:
        assert update_both(acc, want, fr, "clarion") == (None, None)
        assert same(snapshot(acc._states["all"]), snapshot(want))
    assert acc._text["f"].cat == (3, None)  # three values learned, no dtype for them


def _text_frames(seed, n_frames, n):
    rng = np.random.default_rng(seed)
    f_words = np.array(WORDS[2:], dtype=object)
    out = []
    for _ in range(n_frames):
        f = rng.integers(0, len(f_words), n)
        y = rng.random(n) < 0.3 + 0.05 * f
        out.append(
            pd.DataFrame(
                {
                    "f": pd.Series(f_words[f], dtype=object),
                    "y": pd.Series(np.where(y, "yes", "no"), dtype=object),
                    "p": pd.Series(np.where(rng.random(n) < 0.5, "yes", "no"), dtype=object),
                    "g": pd.Series(np.array(list("xyz"), dtype=object)[rng.integers(0, 3, n)], dtype=object),
                    "w": rng.exponential(size=n),
                }
            )
        )
    return out


KW = dict(label="y", facet="f", label_values=["yes"], predicted_label="p", group_variable="g")


@pytest.mark.parametrize("weighted", [False, True])
def test_text_batches_take_the_codes_and_the_stream(monkeypatch, weighted):
    """From the second batch on an object-string stream is read as codes, and its steady batches
    are counted by the compiled stream; the report equals the one-shot report."""
    frames = _text_frames(3, 8, 2_000)
    kw = dict(KW, weights="w") if weighted else KW
    hits = _hits(monkeypatch)
    acc = cb.Accumulator(**kw)
    for fr in frames:
        acc.update(fr)
    assert hits["text"] == 7 and hits["stream"] >= 4
    one = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **kw).to_frame())


def test_bad_text_batch_after_steady_state_raises_as_general_path():
    """A missing label or prediction after the stream took over: the object path's error (the
    general path's message), nothing changed, the stream goes on."""
    frames = _text_frames(4, 6, 300)
    acc = cb.Accumulator(**KW)
    for fr in frames:
        acc.update(fr)
    for spoil in (
        lambda fr: fr.assign(y=fr["y"].where(fr.index != 4, None)),
        lambda fr: fr.assign(p=fr["p"].where(fr.index != 2, float("nan"))),
    ):
        bad = spoil(frames[0])
        before = snapshot(acc._states["all"])
        with pytest.raises(ValueError) as got:
            acc.update(bad)
        assert same(snapshot(acc._states["all"]), before)
        want = State(acc.spec)
        for fr in frames:
            general_update(want, Table(fr), "clarion")
        with pytest.raises(ValueError) as ref:
            general_update(want, Table(bad), "clarion")
        assert str(got.value) == str(ref.value)
    acc.update(frames[1])
    assert acc.n_rows == 7 * 300


def test_four_threads_text_batches():
    """Four threads on one accumulator of object-string batches (new values now and then, bad
    batches raising in their own thread): the counts equal the one-shot report over the good
    batches."""
    frames = _text_frames(5, 40, 1_000)
    for i in range(5, 40, 7):  # new facet values
        frames[i] = frames[i].assign(f=frames[i]["f"].where(frames[i].index > 3, f"new{i}"))
    bad = {8, 21, 33}
    for i in bad:
        frames[i] = frames[i].assign(y=frames[i]["y"].where(frames[i].index > 0, None))
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
    got, want = acc.report(COUNT).to_frame(), cb.report(one, methods=COUNT, **KW).to_frame()
    # (threads commit new values in their own order: compare the entries, not their order)
    pd.testing.assert_frame_equal(got.sort_index(), want.sort_index())


# -- the compiled fetch of a steady frame --------------------------------------------------------


@st.composite
def cat_streams(draw):
    """Categorical / integer / boolean frames whose layout changes between batches: a new column
    index (a frame built anew), columns in another order, a consolidated 2-D block, a strided
    block (built from a 2-D array), an equal categorical dtype that is another object, the same
    categories in another order, ordered categoricals, new categories, missing values."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    words = ["a", "b", "c", "d"]
    base = pd.CategoricalDtype(words)
    compat = draw(st.sampled_from(["clarion", "smclarify"]))

    def frame(variant, n):
        f = rng.integers(0, 3, n)
        dt = base
        if variant == "copy":
            dt = pd.CategoricalDtype(list(words))
        elif variant == "reorder":
            dt = pd.CategoricalDtype(list(reversed(words)))
        elif variant == "ordered":
            dt = pd.CategoricalDtype(words, ordered=True)
        vals = np.array(words, dtype=object)[f]
        if variant == "new" and n:
            vals[0] = "zz"
            dt = pd.CategoricalDtype(words + ["zz"])
        if variant == "missing" and n:
            vals[-1] = None
        g = rng.integers(0, 3, n)
        y = rng.random(n) < 0.5
        p = rng.random(n) < 0.5
        if variant == "strided":  # g a strided row of a 2-D array's transpose
            a = np.column_stack([g, g + 1]).astype(np.int64)
            fr = pd.DataFrame(a, columns=["g", "g2"], copy=False).assign(y=y, p=p)
        else:
            fr = pd.DataFrame({"g": g, "y": y, "p": p})
        fr["f"] = pd.Categorical(vals, dtype=dt)
        if variant == "consolidated":
            fr = pd.DataFrame({"g": g, "g2": g + 1, "y": y, "p": p, "f": fr["f"]})._consolidate()
        if variant == "reversed":
            fr = fr[list(reversed(fr.columns))]
        return fr

    n = draw(st.sampled_from([1, 50, 600, 5000]))
    variants = ["base"] * 4 + draw(
        st.lists(
            st.sampled_from(
                ["base", "copy", "reorder", "ordered", "new", "missing", "strided", "consolidated", "reversed"]
            ),
            min_size=2,
            max_size=10,
        )
    )
    parent = frame("base", 4 * n)
    batches = []
    for v in variants:
        if v == "base":  # iloc cuts of one frame: a column index shared by _id
            i = int(rng.integers(0, 4)) * n
            batches.append(parent.iloc[i : i + n])
        else:
            batches.append(frame(v, n))
    return batches, compat


@SETTINGS
@given(stream=cat_streams())
def test_compiled_fetch_equals_general_path(stream):
    batches, compat = stream
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    acc = cb.Accumulator(compat=compat, **kw)
    want = State(acc.spec)
    for i, b in enumerate(batches):
        err_a, err_b = update_both(acc, want, b, compat)
        assert err_a == err_b, i
        assert same(snapshot(acc._states["all"]), snapshot(want)), i


def test_compiled_fetch_counts_the_steady_frames(monkeypatch):
    """Frames cut from one frame are read by the compiled fetch (the Python fetch runs once to
    prime it); a frame with a new column index is read in Python, then primes it again."""
    rng = np.random.default_rng(1)
    n = 3_000
    parent = pd.DataFrame(
        {
            "f": pd.Categorical.from_codes(rng.integers(0, 4, 20 * n), list("abcd")),
            "y": rng.random(20 * n) < 0.4,
            "p": rng.random(20 * n) < 0.5,
            "g": rng.integers(0, 3, 20 * n),
        }
    )
    frames = [parent.iloc[i : i + n] for i in range(0, 20 * n, n)]
    calls = {"python": 0}
    real = acc_mod._Stream._frame_arrays

    def py_fetch(self, df):
        calls["python"] += 1
        return real(self, df)

    monkeypatch.setattr(acc_mod._Stream, "_frame_arrays", py_fetch)
    kw = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")
    acc = cb.Accumulator(**kw)
    for fr in frames:
        acc.update(fr)
    assert acc._stream is not None and calls["python"] == 1
    rebuilt = pd.DataFrame({c: frames[3][c] for c in frames[3].columns})  # a new column index
    assert not rebuilt.columns.is_(frames[3].columns)
    acc.update(rebuilt)  # the Python fetch, which primes the compiled one for frames like it
    acc.update(rebuilt)
    assert calls["python"] == 2
    pd.testing.assert_frame_equal(
        acc.report(COUNT).to_frame(),
        cb.report(pd.concat(frames + [frames[3]] * 2, ignore_index=True), methods=COUNT, **kw).to_frame(),
    )
