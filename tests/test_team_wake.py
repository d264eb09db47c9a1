"""The count team's wake and its threshold (issue 21, session 20).

* ``_core.team_wake(n_threads, hold_us)`` readies ``slot_counts_team``'s helpers before a pass:
  the passes after it (from any thread, during or after the hold) give the table of
  ``slot_counts_cpu``, and bad arguments are refused with the argument named.
* An adaptive pass (``n_threads = 0``) over fewer than 128 KiB of codes counts alone: the same
  table, and the same first bad row.
* An Accumulator wakes the team before it prepares a one-pass batch of at least
  ``_TEAM_WAKE_ROWS`` rows, never in the steady state, and not with ``CLARION_BACKEND`` forced.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_accumulator_stream_v3 import assert_team_pass, team_problem

import clarion.bias as cb
from clarion import _backend, _reference
from clarion.bias import accumulator as acc_mod

pytestmark = pytest.mark.skipif(
    not _backend.has_core() or not hasattr(_backend.core(), "team_wake"), reason="needs the compiled kernel"
)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([1, 4096, 10_000, 16_383, 16_384, 40_000, 70_001]),
    threads=st.sampled_from([0, 1, 2, 3]),
    hold=st.sampled_from([0, 200, 5000]),
    bad=st.booleans(),
)
def test_passes_after_a_wake_equal_the_one_thread_pass(seed, n, threads, hold, bad):
    problem = team_problem(np.random.default_rng(seed), n, bad)
    _backend.core().team_wake(threads, hold)
    assert_team_pass(*problem, threads)


def test_team_wake_refuses_bad_arguments():
    core = _backend.core()
    with pytest.raises(ValueError, match="n_threads"):
        core.team_wake(-1, 10)
    with pytest.raises(ValueError, match="hold_us"):
        core.team_wake(0, -1)
    core.team_wake(0, 10**9)  # (a hold past 0.1 s is cut to 0.1 s)
    core.team_wake(1, 0)  # one thread: no helper to wake


def test_wakes_and_passes_from_many_threads():
    """Threads waking the team and counting on it at once: every pass is its own table."""
    core = _backend.core()
    rng = np.random.default_rng(5)
    problems = [team_problem(rng, int(rng.choice([5_000, 20_000, 60_000])), False)[:3] for _ in range(8)]
    wants = [_reference.slot_counts(c, o, s) for c, o, s in problems]

    def run(i):
        for r in range(30):
            codes, offsets, sizes = problems[(i + r) % len(problems)]
            if r % 3 == 0:
                core.team_wake(0, 300)
            got = np.empty(sizes, dtype=np.int64)
            assert core.slot_counts_team(codes, offsets, sizes, got, 0) == (0, -1, -1)
            np.testing.assert_array_equal(got, wants[(i + r) % len(problems)])

    with ThreadPoolExecutor(4) as ex:  # (an error in a thread is raised here)
        list(ex.map(run, range(4)))


def _frame(n, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "f": rng.integers(0, 10, n),
            "g": rng.integers(0, 5, n),
            "y": rng.random(n) < 0.4,
            "p": rng.random(n) < 0.5,
        }
    )


KW = dict(label="y", facet="f", label_values=[True], predicted_label="p", group_variable="g")


def test_accumulator_wakes_the_team_for_large_one_pass_batches(monkeypatch):
    calls: list = []
    monkeypatch.setattr(acc_mod, "_wake_team", lambda: calls.append(1))
    big = acc_mod._TEAM_WAKE_ROWS
    acc = cb.Accumulator(**KW)
    acc.update(_frame(big - 1))  # a one-pass batch under the threshold: no wake
    assert calls == []
    acc2 = cb.Accumulator(**KW)
    acc2.update(_frame(big, 1))  # the first batch: the one-pass path
    assert calls == [1]
    assert acc2._stream is not None
    for s in range(2, 6):  # the steady state: one compiled call each, no wake
        acc2.update(_frame(big, s))
    assert calls == [1]
    frames = [_frame(big, s) for s in range(1, 6)]
    one = cb.report(pd.concat(frames, ignore_index=True), methods=["CI", "DPL", "DPPL", "DI"], **KW).to_frame()
    pd.testing.assert_frame_equal(acc2.report(["CI", "DPL", "DPPL", "DI"]).to_frame(), one)


def test_no_wake_with_a_backend_forced(monkeypatch):
    woken: list = []
    core = _backend.core()

    class Spy:
        def __getattr__(self, name):
            return getattr(core, name)

        def team_wake(self, *a):
            woken.append(a)

    monkeypatch.setattr(_backend, "core", lambda: Spy())
    acc_mod._wake_team()
    assert woken == [(acc_mod._stream_threads(), acc_mod._TEAM_WAKE_HOLD_US)]
    monkeypatch.setenv("CLARION_BACKEND", "numpy")
    acc_mod._wake_team()
    assert len(woken) == 1
