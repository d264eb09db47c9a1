"""Issue 21 (the job's accumulators): a facet threshold on an integer column, counted through the
column's own slots.

The one-pass path gives an integer facet column with ``facet_threshold`` its range slots (no
float conversion, no comparison pass) and a lookup table of each slot's side of the threshold
(``float64(value) > threshold``, the general path's comparison); the column maximum (for the
"(t, max]" entry label) is that of the slots that occur. Such a facet now has a pattern-memo key
and a compiled stream. Checked against the general path (``State.encode`` + ``State.count``),
state by state after every batch, bit for bit (counts, ``seen``, the column maximum and its type,
vocabularies), on hypothesis-generated streams: every signed integer dtype, ranges that grow,
shrink and wander (guessed ranges missed above and below), ranges too wide for slots (the old
route), values beyond 2**53 where the float conversion rounds, integer and fractional thresholds,
with or without a group variable, a predicted label, weights, both compat modes; the errors of bad
batches with their messages.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _state_compare import general_update, same, snapshot, update_both
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion import _backend
from clarion.bias import _engine as eng
from clarion.bias import accumulator as acc_mod

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COUNT = [m for m in cb.ALL_METRICS if m != "FT"]


@st.composite
def streams(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dtype = draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64]))
    info = np.iinfo(dtype)
    huge = dtype is np.int64 and draw(st.integers(0, 3)) == 0
    base = 2**53 - 40 if huge else int(draw(st.integers(max(info.min, -100), min(info.max - 100, 100))))
    width = draw(st.integers(1, 60))
    if huge:
        threshold = float(2**53) if draw(st.booleans()) else 2**53 + 1
    else:
        threshold = base + draw(st.integers(-3, width + 3)) + draw(st.sampled_from([0, 0, 0.5, -0.25]))
    group = draw(st.sampled_from([None, "cat", "int"]))
    pred = draw(st.booleans())
    weighted = draw(st.booleans())
    compat = draw(st.sampled_from(["clarion", "smclarify"]))
    batches = []
    for _ in range(draw(st.integers(1, 9))):
        n = draw(st.sampled_from([1, 2, 30, 300, 2000]))
        move = draw(st.sampled_from(["same", "same", "same", "below", "above", "wide", "bad_label"]))
        lo, w = base, width
        if move == "below":
            lo = base - draw(st.integers(1, 5))
        elif move == "above":
            w = width + draw(st.integers(1, 5))
        hi = min(lo + w, info.max)
        x = rng.integers(max(lo, info.min), hi, n, endpoint=True).astype(dtype)
        if move == "wide" and dtype in (np.int32, np.int64) and not huge:
            x[0] = info.max // 2  # a span no slot map takes: the comparison pass, as before
        frame = {
            "age": x,
            "y": rng.integers(0, 2, n),
            "p": rng.integers(0, 2, n),
            "w": rng.random(n) + 0.25,
        }
        if move == "bad_label":
            frame["y"] = frame["y"].astype(float)
            frame["y"][int(rng.integers(0, n))] = np.nan
        if group == "cat":
            frame["g"] = pd.Categorical(rng.choice(["u", "v", "z"], n), categories=["u", "v", "z"])
        elif group == "int":
            frame["g"] = rng.integers(0, 4, n)
        batches.append(pd.DataFrame(frame))
    kw = dict(label="y", label_values=[1], facet="age", facet_threshold=threshold)
    if group is not None:
        kw["group_variable"] = "g"
    if pred:
        kw["predicted_label"] = "p"
    if weighted:
        kw["weights"] = "w"
    return kw, compat, batches


@SETTINGS
@given(streams())
def test_threshold_facet_state_equals_the_general_path(case):
    kw, compat, batches = case
    acc = cb.Accumulator(**kw, compat=compat)
    want = eng.State(acc.spec)
    for b in batches:
        err_a, err_b = update_both(acc, want, b, compat)
        assert err_a == err_b
        if err_a is None:
            got = acc._states["all"]
            assert same(snapshot(got), snapshot(want))
    if acc.n_rows:
        stage = "both" if "predicted_label" in kw else "pre"
        assert _report(lambda: acc.report(COUNT, stage=stage)) == _report(
            lambda: want.assemble(methods=COUNT, stage=stage, compat=compat)
        )


def _report(make) -> str:
    """A report as JSON text (NaN as null), or its error."""
    try:
        return json.dumps(make().to_dict(), sort_keys=True, default=str)
    except ValueError as exc:
        return f"ValueError: {exc}"


def test_large_values_round_as_the_comparison_does():
    """Around 2**53 neighbouring int64 values convert to one float64: the lookup table compares
    the converted value, as the general path does (2**53 + 1 is not above the threshold 2**53)."""
    x = np.array([2**53 - 1, 2**53, 2**53 + 1, 2**53 + 2, 2**53 + 3], dtype=np.int64)
    df = pd.DataFrame({"age": x, "y": [1, 0, 1, 0, 1]})
    kw = dict(label="y", label_values=[1], facet="age", facet_threshold=2**53)
    st_ = eng.State(eng.Spec.build(**kw))
    plan = st_._slot_plan(eng.Table(df), "clarion", None)
    assert plan["facets"]["age"]["kind"] == "threshold_range"
    lut = plan["facets"]["age"]["lut"]
    assert lut[1:].tolist() == (x.astype(np.float64) > 2**53).astype(int).tolist() == [0, 0, 0, 1, 1]
    acc = cb.Accumulator(**kw)
    acc.update(df)
    want = eng.State(acc.spec)
    general_update(want, eng.Table(df), "clarion")
    assert same(snapshot(acc._states["all"]), snapshot(want))
    assert acc._states["all"].facets["age"].col_max == 2**53 + 3  # exact, an int


@pytest.mark.skipif(
    not _backend.has_core() or not hasattr(_backend.core(), "SlotStream"), reason="needs the compiled core"
)
def test_job_shaped_stream_counts_threshold_facets(monkeypatch):
    """Reader-like chunks (categoricals whose dtype is replaced when a value is new), a facet by
    value and a facet by integer threshold, a group variable and a predicted label: after the
    first batches each update of either accumulator is one compiled call, and the reports equal
    the general path's."""
    rng = np.random.default_rng(21)
    n, chunk = 120_000, 10_000
    age = rng.integers(18, 90, n)
    sex = rng.choice(["F", "M"], n)
    region = rng.choice(list("ABCDEFGH"), n)
    region[: 3 * chunk] = np.where(region[: 3 * chunk] == "H", "A", region[: 3 * chunk])  # "H" from chunk 4
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.8, y, 1 - y)
    cats: dict = {}

    def categorical(name, vals):
        known = cats.setdefault(name, [])
        new = [v for v in pd.unique(vals) if v not in known]
        if new or name not in cats or not known:
            known.extend(new)
            cats[name + "_dtype"] = pd.CategoricalDtype(list(known))
        return pd.Categorical(vals, dtype=cats[name + "_dtype"])

    chunks = []
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        chunks.append(
            pd.DataFrame(
                {
                    "age": age[sl],
                    "sex": categorical("sex", sex[sl]),
                    "region": categorical("region", region[sl]),
                    "y": y[sl],
                    "pred": p[sl],
                }
            )
        )
    hits = []
    real = acc_mod._Stream.add

    def add(self, batch):
        out = real(self, batch)
        hits.append((self.names[0], type(out) is int and out > 0))
        return out

    monkeypatch.setattr(acc_mod._Stream, "add", add)
    for facet in (dict(facet="sex", facet_values=["F"]), dict(facet="age", facet_threshold=60)):
        kw = dict(label="y", label_values=[1], predicted_label="pred", group_variable="region", **facet)
        acc = cb.Accumulator(**kw)
        want = eng.State(acc.spec)
        for c in chunks:
            acc.update(c)
            general_update(want, eng.Table(c), "clarion")
            assert same(snapshot(acc._states["all"]), snapshot(want))
        took = [h for name, h in hits if name == kw["facet"]]
        assert sum(took) >= len(chunks) - 5, took
        assert _report(lambda acc=acc: acc.report(COUNT)) == _report(
            lambda want=want: want.assemble(methods=COUNT, stage="both", compat="clarion")
        )


@pytest.mark.skipif(not _backend.has_core() or not hasattr(_backend.core(), "int_range_cpu"), reason="needs the core")
@settings(max_examples=200, deadline=None)
@given(
    dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
    n=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
    spots=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(["min", "max", "zero", "-1"])), max_size=4
    ),
)
def test_int_range_kernel_equals_numpy(dtype, n, seed, spots):
    """The vectorised min / max kernel (``int_range_cpu``, AVX2 or baseline) against numpy, every
    signed dtype, lengths around the vector widths, the dtype's extremes anywhere."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    if seed % 3 == 0:
        x = rng.integers(-3, 4, n).astype(dtype)
    for where, what in spots:
        x[int(where * n)] = {"min": info.min, "max": info.max, "zero": 0, "-1": -1}[what]
    lo, hi = _backend.core().int_range_cpu(x)
    assert (lo, hi) == (int(x.min()), int(x.max()))
    view = x[::2]  # a strided view: the Python wrapper's own reductions, same answer
    from clarion._counts import int_range

    assert int_range(np.ascontiguousarray(view)) == int_range(view) == (int(view.min()), int(view.max()))
