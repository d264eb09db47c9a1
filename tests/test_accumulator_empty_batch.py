"""A batch without rows changes nothing in an Accumulator (issue 21, session 20).

``Accumulator.update`` returns before it reads a batch of zero rows, on every path (the compiled
stream, the one-pass path, the object-string columns read as codes): its state, serialized, is
byte for byte what it was, even after a batch that failed (whose new values may have grown a
vocabulary), and the final report equals that of the same stream without the empty batches.
``tests/_state_compare.update_both`` leans on this: it no longer gives empty batches to the
general update it compares with (which records a model kind and zero tables of zero rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion.bias as cb

WORDS = ["a", "b", "é3", "d"]


def _frame(rng: np.random.Generator, n: int, missing: bool, categorical: bool, weighted: bool) -> pd.DataFrame:
    f = np.array(WORDS, dtype=object)[rng.integers(0, len(WORDS), n)]
    g = np.array(WORDS[:3], dtype=object)[rng.integers(0, 3, n)]
    if missing and n:
        g[rng.integers(0, n)] = None  # a missing group value: the batch fails (compat="clarion")
    cols = {
        "f": pd.Categorical(f) if categorical else pd.Series(f, dtype=object),
        "g": pd.Series(g, dtype=object),
        "y": pd.Series(np.array(["no", "yes"], dtype=object)[rng.integers(0, 2, n)], dtype=object),
        "p": pd.Series(np.array(["no", "yes"], dtype=object)[rng.integers(0, 2, n)], dtype=object),
    }
    if weighted:
        cols["w"] = rng.exponential(size=n)
    return pd.DataFrame(cols)


def _empty_like(fr: pd.DataFrame) -> pd.DataFrame:
    return fr.iloc[:0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    kinds=st.lists(st.sampled_from(["good", "good", "bad", "empty"]), min_size=1, max_size=10),
    n=st.sampled_from([1, 7, 300, 5000]),
    categorical=st.booleans(),
    weighted=st.booleans(),
    with_pred=st.booleans(),
)
def test_empty_batches_change_nothing(seed, kinds, n, categorical, weighted, with_pred):
    rng = np.random.default_rng(seed)
    kw = dict(label="y", facet="f", label_values=["yes"], group_variable="g")
    if with_pred:
        kw["predicted_label"] = "p"
    if weighted:
        kw["weights"] = "w"
    acc = cb.Accumulator(**kw)
    ref = cb.Accumulator(**kw)
    frames = []
    for kind in kinds:
        fr = _frame(rng, n, kind == "bad", categorical, weighted)
        frames.append(_empty_like(fr) if kind == "empty" else fr)
    for fr in frames:
        before = acc.to_bytes()
        err = _update(acc, fr)
        if not len(fr):
            assert err is None
            assert acc.to_bytes() == before
            continue
        assert _update(ref, fr) == err  # (the same stream without its empty batches)
    assert acc.to_bytes() == ref.to_bytes()
    if acc.n_rows:
        methods = ["CI", "DPL", "KL"] + (["DPPL", "DI", "RD"] if with_pred else [])
        got, want = _report(acc, methods), _report(ref, methods)
        if isinstance(got, str) or isinstance(want, str):
            assert got == want  # (e.g. label_values never seen: the same error)
        else:
            pd.testing.assert_frame_equal(got, want)


def _update(acc: cb.Accumulator, fr: pd.DataFrame) -> str | None:
    try:
        acc.update(fr)
    except ValueError as exc:
        return str(exc)
    return None


def _report(acc: cb.Accumulator, methods: list) -> pd.DataFrame | str:
    try:
        return acc.report(methods).to_frame()
    except ValueError as exc:
        return str(exc)
