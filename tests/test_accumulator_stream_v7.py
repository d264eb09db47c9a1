"""The compiled stream's walk reuse (issue 21, session 20).

A steady batch's slot tables are walked for its pattern and its count-table cells; the next
batch of the same stream that occupies the same cells takes the last walk's pattern and cells
over and only gathers its own counts (``StreamBatch::walked_*`` in ``slot_stream.hpp``). The
reuse is keyed on the stream's serial number, and the scratch it lives in is per thread, shared
by every stream a thread feeds. So, against the one-shot report of the same rows:

* streams fed alternately on one thread, batches that occupy the same cells with other counts,
  batches that occupy fewer or more cells (a value absent, a new combination), new values;
* streams fed from several threads at once, one of them shared by all.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion import _backend

pytestmark = pytest.mark.skipif(not _backend.has_core(), reason="needs the compiled kernel")

METHODS = ["CI", "DPL", "KL", "DPPL", "DI", "RD", "DCA"]
FACETS = [f"v{i}" for i in range(6)]


def _frame(rng: np.random.Generator, n: int, kind: str, values: int, categorical: bool) -> pd.DataFrame:
    if kind == "numeric":
        f = rng.integers(0, values, n)
        g = rng.integers(0, 3, n)
        return pd.DataFrame({"f": f, "g": g, "y": rng.random(n) < 0.4, "p": rng.random(n) < 0.5})
    f = np.array(FACETS[:values], dtype=object)[rng.integers(0, values, n)]
    cols = {
        "f": pd.Categorical(f, categories=FACETS) if categorical else pd.Series(f, dtype=object),
        "g": pd.Categorical(np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, n)], categories=["a", "b", "c"]),
        "y": pd.Categorical(np.where(rng.random(n) < 0.4, "yes", "no"), categories=["no", "yes"]),
        "p": pd.Categorical(np.where(rng.random(n) < 0.5, "yes", "no"), categories=["no", "yes"]),
    }
    return pd.DataFrame(cols)


def _kw(kind: str) -> dict:
    pos = [True] if kind == "numeric" else ["yes"]
    return dict(label="y", facet="f", label_values=pos, predicted_label="p", group_variable="g")


def _same_report(acc: cb.Accumulator, frames: list, kw: dict) -> None:
    want = cb.report(pd.concat(frames, ignore_index=True), methods=METHODS, **kw).to_frame()
    pd.testing.assert_frame_equal(acc.report(METHODS).to_frame(), want)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["numeric", "categorical"]),
    n_streams=st.integers(1, 3),
    rows=st.sampled_from([6, 50, 3000, 12_000]),
    values=st.lists(st.integers(2, 6), min_size=4, max_size=14),
)
def test_streams_fed_alternately_equal_their_one_shot_reports(seed, kind, n_streams, rows, values):
    """Batch i of every stream draws its facet from the first values[i] values: consecutive
    batches occupy the same cells (same values[i]), fewer or more; small batches leave some
    combinations out at random."""
    rng = np.random.default_rng(seed)
    kw = _kw(kind)
    accs = [cb.Accumulator(**kw) for _ in range(n_streams)]
    fed: list[list] = [[] for _ in range(n_streams)]
    for v in values:
        for j, acc in enumerate(accs):
            fr = _frame(rng, rows, kind, v, True)
            acc.update(fr)
            fed[j].append(fr)
    for acc, frames in zip(accs, fed):
        _same_report(acc, frames, kw)


def test_same_cells_other_counts_are_counted_each_time():
    """A long run of batches occupying the same cells with other counts: every batch's counts,
    not the first one's (the reused cells gather each batch's own slot table)."""
    rng = np.random.default_rng(7)
    kw = _kw("categorical")
    acc = cb.Accumulator(**kw)
    frames = []
    for i in range(40):
        fr = _frame(rng, 2000 + 37 * i, "categorical", 6, True)
        acc.update(fr)
        frames.append(fr)
        if i in (5, 20, 39):
            _same_report(acc, frames, kw)
    assert acc._stream is not None and acc._stream.core.n_patterns >= 1


def test_streams_fed_from_several_threads():
    """Four threads, each with a stream of its own and all of them feeding one shared stream:
    every stream equals the one-shot report of its rows."""
    kw = _kw("categorical")
    shared = cb.Accumulator(**kw)
    own = [cb.Accumulator(**kw) for _ in range(4)]
    fed: list[list] = [[] for _ in range(4)]
    shared_fed: list = []
    lock = threading.Lock()

    def run(t: int) -> None:
        rng = np.random.default_rng(100 + t)
        for i in range(60):
            fr = _frame(rng, 5000, "categorical", 6 if i % 7 else 4, True)
            own[t].update(fr)
            fed[t].append(fr)
            shared.update(fr)
            with lock:
                shared_fed.append(fr)

    with ThreadPoolExecutor(4) as ex:  # (an error in a thread is raised here)
        list(ex.map(run, range(4)))
    for acc, frames in zip(own, fed):
        _same_report(acc, frames, kw)
    _same_report(shared, shared_fed, kw)
