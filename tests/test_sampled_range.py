"""Session 18 (issue 21, part 1): a one-shot report's integer column of at least 65,536 rows is
first counted in the range of a strided sample of it (``_engine._sampled_range``), without its
min/max pass. The report is the one measured without the guess whatever the column holds: a value
above the sample's largest or below its smallest (the value just below it lands in the missing
slot) anywhere the sample does not look makes the guessed pass refuse, and the column is measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion.bias import _encode, _engine

N = 1 << 16  # the smallest column that is sampled

COUNT = ["CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "TE"]


def frame(seed: int, dtype, outlier: int | None, where: int, column: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 6, N).astype(dtype)
    g = rng.integers(10, 14, N).astype(dtype)
    y = rng.integers(0, 2, N).astype(dtype)
    p = rng.integers(0, 2, N).astype(dtype)
    df = pd.DataFrame({"f": f, "g": g, "y": y, "p": p, "w": rng.exponential(size=N)})
    if outlier is not None:
        step = N // _engine._SAMPLE_RANGE_ROWS
        if where % step == 0:  # a row the sample does not look at
            where += 1
        df.loc[where, column] = outlier
    return df


def measured(df: pd.DataFrame, **kw):
    """The report with no sampled guess (every integer column measured)."""
    old = _engine._SAMPLE_RANGE_MIN_ROWS
    _engine._SAMPLE_RANGE_MIN_ROWS = 1 << 62
    try:
        return cb.report(df, methods=COUNT, **kw).to_frame()
    finally:
        _engine._SAMPLE_RANGE_MIN_ROWS = old


def ranges_measured(monkeypatch) -> list:
    calls: list = []
    real = _encode.int_range

    def spy(x):
        calls.append(len(x))
        return real(x)

    monkeypatch.setattr(_encode, "int_range", spy)
    return calls


CASES = [
    dict(label="y", facet="f", label_values=[1], predicted_label="p", group_variable="g"),
    dict(
        label="y", facet="f", facet_values=[3], label_values=[1], predicted_label="p", group_variable="g", weights="w"
    ),
    dict(label="y", facet="f", facet_values=[2], label_values=[1], predicted_label="p"),
]


@pytest.mark.parametrize("kw", CASES)
def test_a_column_within_its_sample_is_not_measured(kw, monkeypatch):
    df = frame(0, np.int64, None, 0, "f")
    want = measured(df, **kw)
    calls = ranges_measured(monkeypatch)
    got = cb.report(df, methods=COUNT, **kw).to_frame()
    pd.testing.assert_frame_equal(got, want)
    assert calls == []  # every integer column counted in its sampled range


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
    column=st.sampled_from(["f", "g", "y", "p"]),
    shift=st.sampled_from([-1, -2, -50, 1, 2, 90]),
    where=st.integers(0, N - 2),
    case=st.integers(0, len(CASES) - 1),
)
def test_a_value_outside_the_sample_gives_the_measured_report(seed, dtype, column, shift, where, case):
    kw = CASES[case]
    lo_hi = {"f": (0, 5), "g": (10, 13), "y": (0, 1), "p": (0, 1)}[column]
    outlier = lo_hi[0] + shift if shift < 0 else lo_hi[1] + shift
    df = frame(seed, dtype, outlier, where, column)
    try:
        want = measured(df, **kw)
    except ValueError as exc:  # e.g. a label or prediction value outside the configured ones
        with pytest.raises(ValueError) as got:
            cb.report(df, methods=COUNT, **kw)
        assert str(got.value) == str(exc)
        return
    pd.testing.assert_frame_equal(cb.report(df, methods=COUNT, **kw).to_frame(), want)


def test_the_value_just_below_the_sample_is_measured_not_missing(monkeypatch):
    kw = CASES[0]
    df = frame(3, np.int64, -1, 12_345, "f")  # f's sample holds 0..5; one row holds -1
    want = measured(df, **kw)
    calls = ranges_measured(monkeypatch)
    got = cb.report(df, methods=COUNT, **kw).to_frame()
    pd.testing.assert_frame_equal(got, want)
    assert calls  # the guessed pass was refused: the columns were measured
    assert "-1" in set(got["value_or_threshold"].astype(str)) or -1 in set(got["value_or_threshold"])


def test_an_accumulator_of_large_batches_keeps_its_counts():
    kw = CASES[1]
    df = pd.concat([frame(5, np.int64, None, 0, "f"), frame(6, np.int64, 9, 777, "f")], ignore_index=True)
    acc = cb.Accumulator(**{k: v for k, v in kw.items()})
    for part in (df.iloc[:N], df.iloc[N:]):
        acc.update(part)
    want = measured(df, **kw)
    pd.testing.assert_frame_equal(acc.report(COUNT).to_frame(), want)
