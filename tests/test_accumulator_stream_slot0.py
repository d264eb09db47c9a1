"""Trust fix: the compiled stream never counts an integer below its range as a missing value.

An integer column's slots in the compiled stream (``_core.SlotStream``) are ``value - lo + 1``,
slot 0 being a categorical's missing value. The value just below the stream's range (``lo - 1``)
falls on slot 0: the stream accepted such a batch's pattern (after three sightings, or at once
in a batch of 10,000 rows) and then counted those rows as a missing facet value / group / label,
silently. Now slot 0 of an integer range or boolean column has no code, so such a batch is
declined and counted by the one-pass path. Checked against the general path after every batch,
for every role the column can have (facet by value, facet by threshold, group, label,
prediction), every signed integer dtype, one-row and 10,000-row batches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _state_compare import same, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion.bias._engine import State

ROLES = {
    "facet": dict(label="y", facet="f", label_values=[1]),
    "facet_values": dict(label="y", facet="f", label_values=[1], facet_values=[-1]),
    "facet_threshold": dict(label="y", facet="f", label_values=[1], facet_threshold=-1),
    "group": dict(label="y", facet="z", label_values=[1], group_variable="f"),
    "label": dict(label="f", facet="z", label_values=[0]),
    "prediction": dict(label="y", facet="z", label_values=[1], predicted_label="f"),
    "facet_weighted": dict(label="y", facet="f", label_values=[1], weights="w"),
    "prediction_weighted": dict(label="y", facet="z", label_values=[1], predicted_label="f", weights="w"),
}


def _batches(dtype, values, rows):
    """One batch per value of ``values``: column ``f`` that value (``rows`` rows), ``y`` and ``p``
    labels, ``z`` a second facet."""
    out = []
    for i, v in enumerate(values):
        out.append(
            pd.DataFrame(
                {
                    "f": np.full(rows, v, dtype=dtype),
                    "y": (np.arange(rows, dtype=np.int64) + i) % 2,
                    "z": np.full(rows, i % 2, dtype=np.int64),
                    "w": 0.5 + (np.arange(rows) + i) % 3,
                }
            )
        )
    return out


def _states(kw, batches, general):
    acc = cb.Accumulator(**kw)
    snaps = []
    with pytest.MonkeyPatch.context() as m:
        if general:
            m.setattr(State, "fast_count", lambda self, *a, **k: None)  # the general path, no stream
        for b in batches:
            acc.update(b)
            snaps.append(snapshot(acc._states["all"]))
        try:
            rep = acc.report().to_frame()
        except ValueError as exc:  # (e.g. a facet value that never occurs: the same error either way)
            rep = pd.DataFrame({"error": [str(exc)]})
    return snaps, rep


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64"])
@pytest.mark.parametrize("rows", [1, 10_000])
def test_value_below_the_range_is_not_a_missing_value(role, dtype, rows):
    # 0 sets the stream's range to [0, 0]; then -1 (slot 0) again and again
    values = [0, 0, 0, 0] + [-1] * 6 + [0, -1]
    batches = _batches(dtype, values, rows)
    got, rep = _states(ROLES[role], batches, general=False)
    want, rep_want = _states(ROLES[role], batches, general=True)
    for i, (a, b) in enumerate(zip(got, want)):
        assert same(a, b), (role, dtype, rows, i)
    pd.testing.assert_frame_equal(rep, rep_want, rtol=1e-12)  # (weighted: batch sums added in order)


@settings(max_examples=40, deadline=None)
@given(
    role=st.sampled_from(list(ROLES)),
    dtype=st.sampled_from(["int8", "int16", "int64"]),
    values=st.lists(st.integers(-3, 3), min_size=2, max_size=16),
)
def test_any_sequence_of_small_ranges(role, dtype, values):
    batches = _batches(dtype, values, 3)
    got, rep = _states(ROLES[role], batches, general=False)
    want, rep_want = _states(ROLES[role], batches, general=True)
    for i, (a, b) in enumerate(zip(got, want)):
        assert same(a, b), (role, dtype, values, i)
    pd.testing.assert_frame_equal(rep, rep_want, rtol=1e-12)  # (weighted: batch sums added in order)
