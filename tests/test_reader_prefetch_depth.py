"""The prefetch thread reads ``dataset.PREFETCH_BLOCKS`` blocks ahead (2 since session 19, issue 21
part 3): at every depth the chunks, their codes and vocabularies, the skips and the errors are the
ones read without the thread (a block coded on the thread against a vocabulary that the caller
grows meanwhile is coded again, as at depth 1); the thread holds at most that many blocks beyond
the caller's, stops with the iteration, on an error and when the caller stops, and closes the file;
the job's analysis is the same at every depth."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from test_job_fixed_cost_v2 import CFG
from test_reader_linerate import (
    READ_CASES,
    _assert_same_reads,
    _csv,
    _csv_with_bad_lines,
    _open_fds,
    _prefetch_threads,
    _read,
    _write,
)

import clarion
from clarion import dataset
from clarion.dataset import read_dataset

DEPTHS = [1, 2, 3, 6]


def _same_at_every_depth(monkeypatch, path, dataset_type="text/csv", **kw):
    off = _read(path, False, dataset_type, **kw)
    for depth in DEPTHS:
        monkeypatch.setattr(dataset, "PREFETCH_BLOCKS", depth)
        _assert_same_reads(_read(path, True, dataset_type, **kw), off)
    return off[0], off[1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**READ_CASES)
def test_every_depth_gives_the_same_chunks_skips_and_errors(
    tmp_path_factory, monkeypatch, rows, chunk_rows, bad, skip, codes
):
    path = _csv_with_bad_lines(tmp_path_factory, rows, bad)
    kw = {"codes": ("t", "y", "g", "p")} if codes else {}
    _same_at_every_depth(monkeypatch, path, chunk_rows=chunk_rows, skip_bad_rows=skip, required=("y",), **kw)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_new_values_in_blocks_read_ahead(tmp_path, monkeypatch, fmt):
    """Each block brings values no block before it had (the vocabulary grows while the thread
    codes the blocks ahead against the one it read), nulls included: the same chunks at every
    depth, the codes in first-seen order."""
    n, per = 900, 60
    t = [None if i % 17 == 0 else f"v{i // per}-{i % 3}" for i in range(n)]
    frame = pd.DataFrame(
        {"t": pd.array(t, dtype=object), "y": np.arange(n) % 2, "g": [f"g{i // 200}" for i in range(n)]}
    )
    path, kind = _write(frame, tmp_path, fmt, per)
    off, end = _same_at_every_depth(monkeypatch, path, kind, chunk_rows=per, codes=("t", "g"))
    assert end is None and sum(len(c.frame) for c, _, _ in off) == n
    cats = off[-1][0].frame["t"].cat.categories.tolist()
    # every value, in first-seen order (a CSV's empty field is the text "", a Parquet null no value)
    want = ["" if v is None else v for v in t] if fmt == "csv" else [v for v in t if v is not None]
    assert cats == list(dict.fromkeys(want))


def test_the_thread_holds_at_most_the_depth_ahead(tmp_path, monkeypatch):
    """The thread reads a block more only when the caller takes one: with the caller holding its
    first chunk, exactly PREFETCH_BLOCKS more are read (not the whole file)."""
    path = tmp_path / "d.csv"
    path.write_text(_csv([["a", "Y", i, "g", "N"] for i in range(200)]))
    for depth in (1, 2, 4):
        monkeypatch.setattr(dataset, "PREFETCH_BLOCKS", depth)
        reads = []
        real = dataset.Reader._raw

        def counted(self, kind, _real=real, _reads=reads):
            for block in _real(self, kind):
                _reads.append(threading.current_thread().name)
                yield block

        monkeypatch.setattr(dataset.Reader, "_raw", counted)
        r = read_dataset(path, "text/csv", chunk_rows=5)
        it = iter(r)
        first = next(it)
        assert first.start == 0
        for _ in range(200):  # (the thread reads ahead and then waits: give it the time it takes)
            if len([x for x in reads if x == "clarion-reader-prefetch"]) >= 1 + depth:
                break
            threading.Event().wait(0.005)
        threading.Event().wait(0.05)
        ahead = [x for x in reads if x == "clarion-reader-prefetch"]
        assert len(ahead) == 1 + depth  # the caller's block and `depth` more, no further
        rest = list(it)
        assert sum(len(c.frame) for c in [first, *rest]) == 200
        assert not _prefetch_threads() and _open_fds(path) == 0
        monkeypatch.setattr(dataset.Reader, "_raw", real)


@pytest.mark.parametrize("how", ["close", "error"])
def test_the_thread_ends_when_the_caller_stops_at_any_depth(tmp_path, monkeypatch, how):
    path = tmp_path / "d.csv"
    path.write_text(_csv([["a", "Y", i, "g", "N"] for i in range(100)]))
    for depth in DEPTHS:
        monkeypatch.setattr(dataset, "PREFETCH_BLOCKS", depth)
        if how == "close":
            it = iter(read_dataset(path, "text/csv", chunk_rows=3))
            next(it)
            it.close()
        else:
            with pytest.raises(RuntimeError, match="caller"):
                for _ in read_dataset(path, "text/csv", chunk_rows=3):
                    raise RuntimeError("caller")
        assert not _prefetch_threads() and _open_fds(path) == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_analysis_is_the_same_at_every_depth(tmp_path, monkeypatch, fmt):
    rng = np.random.default_rng(3)
    n = 3000
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "sex": rng.choice(["F", "M", "X"], n),
            "region": [f"r{k}" for k in rng.integers(0, 40, n)],
            "y": y,
            "pred": np.where(rng.random(n) < 0.8, y, 1 - y),
        }
    )
    path, kind = _write(frame, tmp_path, fmt, 250)
    cfg = {**CFG, "dataset_type": kind}
    got = []
    for depth in DEPTHS:
        monkeypatch.setattr(dataset, "PREFETCH_BLOCKS", depth)
        res = clarion.analyze(cfg, path, output_dir=tmp_path / f"out{depth}", progress=False, chunk_rows=250)
        got.append(res.analysis)
    assert all(g == got[0] for g in got[1:])
