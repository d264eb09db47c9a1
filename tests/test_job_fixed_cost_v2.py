"""The job's fixed cost, session 18 (issue 21 part 3): each shortcut compared with the way it replaces.

* Metric formulas on Python floats for a count table of one value (``_metrics.SCALAR_FORMULAS``)
  give the array path's numbers bit for bit (signed zeros included; NaN where it is NaN) and its
  reasons, on generated count tensors (integers, weights, zeros, NaN, ±inf, -0.0, tiny and huge
  values, 1 to 11 subgroups: numpy's pairwise sums beyond 7), both conventions, with and without
  a group variable, and its errors.
* The threshold interval's text without pandas (``_engine.INTERVAL_TEXT_DIRECT``) is pandas'
  ``IntervalIndex.from_breaks`` text.
* A file of at most one chunk read without the read-ahead thread
  (``source.ONE_CHUNK_WITHOUT_THREAD``): the same outputs.
* The staged output folder (``_io.DEFERRED_SYNC``): every file ``fsync``-ed before any takes a
  place in the output folder; the same bytes and modes; an ``fsync`` error or an exception in any
  step leaves the previous results as they were and no staging folder; the replaced files are
  removed on a thread into a sibling ``.<name>.clarion-removed`` folder that nothing else lists,
  and what a killed process left there is removed by the next run; the staged files are listed as
  ``os.walk`` lists them.
* Group statistics read off a bias accumulator's counts
  (``PerformanceAccumulator.read_counts``, ``run.PERFORMANCE_FROM_ACCUMULATORS``) equal a
  ``PerformanceAccumulator`` that counts the same batches; where the accumulator's tables do not
  hold them (weights, windows, bootstrap replicates, scores, nothing counted, other arguments) it
  says so and counts as before. Spec.build's long threshold grid checks equal the former ones.
* The whole job with every switch on and off: the same ``analysis.json``, config and report
  files, the same result.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion
import clarion.report
from clarion import _io
from clarion.bias import Accumulator, PerformanceAccumulator, _engine, _metrics
from clarion.job import run, source

# ---- metric formulas on one count table ----------------------------------------------------------------

_cells = st.one_of(
    st.integers(0, 6).map(float),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e-300, 5e-324, 1e300, 3.7, np.inf, np.nan]),
    st.floats(0, 1e6, allow_nan=False),
)


@st.composite
def _count_tensors(draw):
    lead = draw(st.sampled_from([(), (1,), (1, 1)]))
    K = draw(st.integers(1, 11))
    P = draw(st.sampled_from([1, 2]))
    shape = (*lead, 2, K, 2, P)
    values = draw(st.lists(_cells, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(values, dtype=np.float64).reshape(shape)


def _both_ways(monkeypatch, C, methods, **kw):
    monkeypatch.setattr(_metrics, "SCALAR_FORMULAS", True)
    one = _metrics.compute(C, methods, **kw)
    monkeypatch.setattr(_metrics, "SCALAR_FORMULAS", False)
    ref = _metrics.compute(C, methods, **kw)
    return one, ref


def _same_numbers(a, b):
    """Equal arrays: the same shape and dtype, NaN where the other is NaN, other values bit for bit."""
    assert a.shape == b.shape and a.dtype == b.dtype
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    assert np.array_equal(nan_a, nan_b)
    assert np.array_equal(np.where(nan_a, 0.0, a).view(np.int64), np.where(nan_b, 0.0, b).view(np.int64))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    _count_tensors(),
    st.sampled_from(["clarion", "smclarify"]),
    st.booleans(),
    st.booleans(),
)
def test_scalar_formulas_equal_the_array_formulas(monkeypatch, C, compat, has_group, missing):
    methods = list(_metrics.COUNT_METRICS if C.shape[-1] == 2 else _metrics.PRE_TRAINING)
    with np.errstate(all="ignore"):  # (the array path may warn of an overflow on 1e300 cells)
        one, ref = _both_ways(monkeypatch, C, methods, compat=compat, has_group=has_group, missing_subgroup=missing)
    assert list(one) == list(ref)
    for name in methods:
        _same_numbers(one[name][0], ref[name][0])
        assert one[name][1].dtype == ref[name][1].dtype == np.int16
        assert np.array_equal(one[name][1], ref[name][1]), name


def test_scalar_formulas_known_answers():
    """A hand computation: facet a 60 rows (30 positive), facet d 40 rows (10 positive), one subgroup."""
    C = np.zeros((2, 1, 2, 1))
    C[0, 0, 0, 0], C[0, 0, 1, 0] = 30, 30
    C[1, 0, 0, 0], C[1, 0, 1, 0] = 30, 10
    res = _metrics.compute(C, ["CI", "DPL", "KL", "CDDL"], has_group=False)
    assert res["CI"][0] == (60 - 40) / 100
    assert res["DPL"][0] == 30 / 60 - 10 / 40
    assert res["KL"][0] == pytest.approx(0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25))
    assert np.isnan(res["CDDL"][0]) and _metrics.MESSAGES[int(res["CDDL"][1])] == "no group_variable was given"


@pytest.mark.parametrize(
    ("C", "methods"),
    [
        (np.ones((1, 2, 3, 2, 1)), ["DPPL"]),  # a post-training metric without predictions
        (np.ones((2, 1, 2, 2)), ["CI", "nope"]),
        (np.ones((2, 1, 2, 2)), ["FT"]),
    ],
)
def test_scalar_formulas_raise_the_same_errors(monkeypatch, C, methods):
    errors = []
    for flag in (True, False):
        monkeypatch.setattr(_metrics, "SCALAR_FORMULAS", flag)
        with pytest.raises(ValueError) as e:
            _metrics.compute(C, methods)
        errors.append(str(e.value))
    assert errors[0] == errors[1]


def test_several_values_keep_the_array_path(monkeypatch):
    C = np.random.default_rng(0).integers(0, 5, (3, 2, 2, 2, 2)).astype(float)
    calls = []
    real = _metrics._compute_one
    monkeypatch.setattr(_metrics, "_compute_one", lambda *a: calls.append(1) or real(*a))
    _metrics.compute(C, ["DPPL"])
    assert calls == []
    _metrics.compute(C[:1], ["DPPL"])
    assert calls == [1]


# ---- the threshold interval's text --------------------------------------------------------------------

_bounds = st.one_of(
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False),
    st.sampled_from([0, 1, -1, 30, 60, 2**53, -(2**53), 0.0, -0.0, 0.5, 1e16, 1e-5, 30.5, 66.0, float("inf")]),
)


def _interval_both_ways(monkeypatch, t, m, compat):
    out = []
    for flag in (True, False):
        monkeypatch.setattr(_engine, "INTERVAL_TEXT_DIRECT", flag)
        try:
            out.append(_engine.interval_string(t, m, compat))
        except Exception as exc:  # noqa: BLE001 - the same error either way
            out.append((type(exc), str(exc)))
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_bounds, _bounds, st.sampled_from(["clarion", "smclarify"]))
def test_interval_text_equals_pandas(monkeypatch, t, m, compat):
    direct, pandas_text = _interval_both_ways(monkeypatch, t, m, compat)
    assert direct == pandas_text


@pytest.mark.parametrize(
    ("t", "m"),
    [
        (np.int64(30), np.int64(66)),
        (np.float64(30.5), 66),
        (30, np.float32(66.5)),
        (True, 5),
        (30, 2**70),
        (1.5, 2**60),
    ],
)
def test_interval_text_of_other_types_goes_through_pandas(monkeypatch, t, m):
    direct, pandas_text = _interval_both_ways(monkeypatch, t, m, "smclarify")
    assert direct == pandas_text


def test_interval_text_known_answers():
    assert _engine.interval_string(30, 66) == "(30, 66]"
    assert _engine.interval_string(30.5, 66) == "(30.5, 66.0]"
    assert _engine.interval_string(30, 66.0) == "(30.0, 66.0]"


# ---- one chunk without the read-ahead thread ---------------------------------------------------------


def test_at_most_one_chunk(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b\n" + "1,2\n" * 10)  # 44 bytes
    assert source._at_most_one_chunk(str(p), "text/csv", 44)
    assert not source._at_most_one_chunk(str(p), "text/csv", 43)  # (unsure: maybe more)
    q = tmp_path / "d.parquet"
    pd.DataFrame({"a": range(100)}).to_parquet(q)
    assert source._at_most_one_chunk(str(q), "application/x-parquet", 100)
    assert not source._at_most_one_chunk(str(q), "application/x-parquet", 99)
    assert not source._at_most_one_chunk(str(tmp_path / "missing.csv"), "text/csv", 10**9)
    assert not source._at_most_one_chunk(str(p), "application/x-parquet", 10**9)  # not Parquet: unsure
    assert not source._at_most_one_chunk(str(p), "application/jsonlines", 10**9)


# ---- the whole job, every switch on and off ---------------------------------------------------------

CFG = {
    "label": "y",
    "label_values_or_threshold": [1],
    "predicted_label": "pred",
    "facet": [
        {"name_or_index": "sex", "value_or_threshold": ["F"]},
        {"name_or_index": "age", "value_or_threshold": [60]},
    ],
    "group_variable": "region",
    "methods": {
        "pre_training_bias": {"methods": "all"},
        "post_training_bias": {
            "methods": ["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "CDDPL", "TE", "GE"]
        },
    },
}


def _frame(n, seed=0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    y = (rng.random(n) < np.where(sex == "F", 0.35, 0.45)).astype(int)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50, 10, n).round(3),
            "sex": sex,
            "region": rng.choice(list("ABCDEFGH"), n),
            "y": y,
            "pred": np.where(rng.random(n) < 0.8, y, 1 - y),
        }
    )


SWITCHES = [
    (_metrics, "SCALAR_FORMULAS"),
    (_engine, "INTERVAL_TEXT_DIRECT"),
    (source, "ONE_CHUNK_WITHOUT_THREAD"),
    (_io, "DEFERRED_SYNC"),
    (run, "PERFORMANCE_FROM_ACCUMULATORS"),
]


def _tree(folder):
    """relative path -> (sha256, mode) of every file under ``folder``."""
    out = {}
    for d, _dirs, files in os.walk(folder):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = (
                    hashlib.sha256(fh.read()).hexdigest(),
                    stat.S_IMODE(os.stat(p).st_mode),
                )
    return out


@pytest.mark.parametrize(
    ("fmt", "rows", "chunk_rows"), [("csv", 400, 50_000), ("parquet", 400, 50_000), ("csv", 3000, 700)]
)
def test_job_writes_the_same_files_every_switch_on_and_off(tmp_path, monkeypatch, fmt, rows, chunk_rows):
    df = _frame(rows)
    if fmt == "csv":
        path, dtype = tmp_path / "d.csv", "text/csv"
        df.to_csv(path, index=False)
    else:
        path, dtype = tmp_path / "d.parquet", "application/x-parquet"
        df.to_parquet(path, index=False)
    cfg = {**CFG, "dataset_type": dtype}
    results = {}
    for on in (True, False):
        for mod, name in SWITCHES:
            monkeypatch.setattr(mod, name, on)
        out = tmp_path / f"out_{on}"
        (out / "explanations_shap").mkdir(parents=True)
        (out / "explanations_shap" / "out.csv").write_text("a previous run's")
        (out / "report.html").write_text("a previous run's")
        (out / "notes.txt").write_text("the user's")
        res = clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True, chunk_rows=chunk_rows)
        _io.wait_for_removals()
        results[on] = (res, _tree(out), sorted(n for n in os.listdir(tmp_path) if not n.startswith("out_")))
    (new, new_files, new_listing), (old, old_files, old_listing) = results[True], results[False]
    assert new_files == old_files
    assert "notes.txt" in new_files and "explanations_shap/out.csv" not in new_files
    assert new.analysis == old.analysis and new.n_rows == old.n_rows == rows
    assert {k: os.path.relpath(v, tmp_path / "out_True") for k, v in new.paths.items()} == {
        k: os.path.relpath(v, tmp_path / "out_False") for k, v in old.paths.items()
    }
    assert new_listing == old_listing == [path.name]  # nothing left beside the output folders


# ---- the staged output folder -------------------------------------------------------------------------


def _previous(tmp_path):
    """An output folder with a previous run's files and a user's file."""
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "a.json").write_text("old a")
    (out / "sub" / "b.txt").write_text("old b")
    (out / "gone.txt").write_text("old, not written again")
    (out / "mine.txt").write_text("the user's")
    return out


def _stale(target):
    return ["a.json", "sub/b.txt", "gone.txt"]


def _write_run(stage):
    _io.atomic_write_text(os.path.join(stage, "a.json"), "new a")
    _io.atomic_write_bytes(os.path.join(stage, "sub", "b.txt"), b"new b" * 1000)
    _io.atomic_write_bytes(os.path.join(stage, "c.bin"), memoryview(np.arange(300, dtype=np.float64)))


@pytest.mark.parametrize("deferred", [True, False])
def test_staged_folder_same_files_either_way(tmp_path, monkeypatch, deferred):
    monkeypatch.setattr(_io, "DEFERRED_SYNC", deferred)
    out = _previous(tmp_path)
    with _io.staged_output_dir(out, _stale) as stage:
        _write_run(stage)
    _io.wait_for_removals()
    assert (out / "a.json").read_text() == "new a"
    assert (out / "sub" / "b.txt").read_bytes() == b"new b" * 1000
    assert (out / "c.bin").read_bytes() == np.arange(300, dtype=np.float64).tobytes()
    assert (out / "mine.txt").read_text() == "the user's"
    assert not (out / "gone.txt").exists()
    assert sorted(os.listdir(out)) == ["a.json", "c.bin", "mine.txt", "sub"]
    assert os.listdir(tmp_path) == ["out"]  # no staging folder, no removal folder left


def test_every_file_is_on_disk_before_the_swap(tmp_path, monkeypatch):
    """Each staged file's fsync ends before any file is moved into the output folder (and the
    fsyncs did not run inline in the writes)."""
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    out = _previous(tmp_path)
    events = []
    real_fsync, real_move, real_rename = os.fsync, _io._move, os.rename

    def fsync(fd):
        real_fsync(fd)
        events.append(
            ("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) if os.path.exists("/proc/self/fd") else fd)
        )

    def move(src, dst):
        events.append(("move", os.path.basename(src)))
        real_move(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(_io, "_move", move)
    with _io.staged_output_dir(out, _stale) as stage:
        _write_run(stage)
        written = len(events)
    kinds = [k for k, _ in events]
    assert kinds.count("fsync") == 3
    assert kinds.index("move") > max(i for i, k in enumerate(kinds) if k == "fsync")
    assert written <= 3  # (fsyncs may have started on their threads, but the writes did not wait)
    _io.wait_for_removals()
    # a new output folder (one rename): the same rule
    events.clear()
    monkeypatch.setattr(os, "rename", lambda a, b: events.append(("rename", os.path.basename(a))) or real_rename(a, b))
    with _io.staged_output_dir(tmp_path / "fresh") as stage:
        _write_run(stage)
    kinds = [k for k, _ in events]
    assert kinds.count("fsync") == 3 and kinds[-1] == "rename"
    assert (tmp_path / "fresh" / "a.json").read_text() == "new a"


def test_an_fsync_error_keeps_the_previous_results(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    out = _previous(tmp_path)
    before = _tree(out)
    real = os.fsync
    calls = []

    def failing(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"):
        with _io.staged_output_dir(out, _stale) as stage:
            _write_run(stage)
    assert _tree(out) == before
    assert os.listdir(tmp_path) == ["out"]
    assert not _io._STAGES  # (no folder stays registered)


@pytest.mark.parametrize("deferred", [True, False])
@pytest.mark.parametrize("where", ["write_analysis_json", "write_report", "_swap_in", "after the writes"])
def test_a_step_that_fails_keeps_the_previous_results(tmp_path, monkeypatch, deferred, where):
    """A writer killed mid-run, as an exception injected in a step: the previous results as they
    were, no staging folder left, and the next run succeeds."""
    monkeypatch.setattr(_io, "DEFERRED_SYNC", deferred)
    data = tmp_path / "d.csv"
    _frame(300).to_csv(data, index=False)
    cfg = {**CFG, "dataset_type": "text/csv"}
    out = tmp_path / "out"
    clarion.analyze(cfg, data, output_dir=out, progress=False)
    (out / "mine.txt").write_text("the user's")
    _io.wait_for_removals()
    before = _tree(out)

    def boom(*a, **kw):
        raise KeyboardInterrupt("killed")

    if where == "write_analysis_json":
        monkeypatch.setattr(clarion.report, "write_analysis_json", boom)
    elif where == "write_report":
        real = clarion.report.write_report

        def half(*a, **kw):
            real(*a, **kw)  # every report file written (and its fsync on its way), then killed
            raise KeyboardInterrupt("killed")

        monkeypatch.setattr(clarion.report, "write_report", half)
    elif where == "_swap_in":
        real_move, moves = _io._move, []

        def move(src, dst):
            moves.append(src)
            if len(moves) == 3:
                raise KeyboardInterrupt("killed")
            real_move(src, dst)

        monkeypatch.setattr(_io, "_move", move)
    else:
        real_wait = _io._Syncs.wait

        def wait(self):
            real_wait(self)
            raise KeyboardInterrupt("killed")

        monkeypatch.setattr(_io._Syncs, "wait", wait)
        if not deferred:
            monkeypatch.setattr(_io, "_swap_in", boom)
    with pytest.raises(KeyboardInterrupt):
        clarion.analyze(cfg, data, output_dir=out, progress=False, overwrite=True)
    _io.wait_for_removals()
    assert _tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["d.csv", "out"]
    monkeypatch.undo()
    clarion.analyze(cfg, data, output_dir=out, progress=False, overwrite=True)
    _io.wait_for_removals()
    assert (out / "mine.txt").read_text() == "the user's"
    assert sorted(os.listdir(tmp_path)) == ["d.csv", "out"]


def test_what_a_killed_process_left_to_remove_goes_with_the_next_run(tmp_path, monkeypatch):
    """A process killed after its swap, before its removal ended, leaves ``.out.clarion-removed``
    (replaced files only); the next run into the same folder removes it."""
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    out = _previous(tmp_path)
    trash = tmp_path / ".out.clarion-removed"
    (trash / "abc123" / "sub").mkdir(parents=True)
    (trash / "abc123" / "sub" / "b.txt").write_text("replaced long ago")
    with _io.staged_output_dir(out, _stale) as stage:
        _write_run(stage)
    _io.wait_for_removals()
    assert os.listdir(tmp_path) == ["out"]
    assert (out / "mine.txt").read_text() == "the user's"


def test_removal_folder_is_not_an_output_nor_a_staging_folder(tmp_path, monkeypatch):
    """While the replaced files are being removed, the output folder holds only the results."""
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    out = _previous(tmp_path)
    hold = []
    real = _io._remove_all
    monkeypatch.setattr(_io, "_remove_all", lambda paths, trash: hold.append((paths, trash)))
    with _io.staged_output_dir(out, _stale) as stage:
        _write_run(stage)
    assert sorted(os.listdir(out)) == ["a.json", "c.bin", "mine.txt", "sub"]
    assert sorted(os.listdir(tmp_path)) == [".out.clarion-removed", "out"]
    assert not any(_io.STAGE_TAG in n for n in os.listdir(tmp_path))
    _io.wait_for_removals()  # (the held removal: on its thread)
    ((paths, trash),) = hold
    kept = sorted(os.path.relpath(os.path.join(d, f), trash) for d, _, fs in os.walk(trash) for f in fs)
    assert len(paths) == 2 and sorted(x.split(os.sep, 1)[1] for x in kept) == ["a.json", "gone.txt", "sub/b.txt"]
    real(paths, trash)
    assert os.listdir(tmp_path) == ["out"]


def test_a_mount_point_output_folder_removes_in_place(tmp_path, monkeypatch):
    """Where the replaced files cannot be renamed beside the folder (another file system), they are
    removed at once, as before."""
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    out = _previous(tmp_path)
    real_rename = os.rename

    def rename(a, b):
        if _io.TRASH_TAG in os.fspath(b):
            raise OSError(18, "Invalid cross-device link")
        real_rename(a, b)

    monkeypatch.setattr(os, "rename", rename)
    with _io.staged_output_dir(out, _stale) as stage:
        _write_run(stage)
    assert sorted(os.listdir(out)) == ["a.json", "c.bin", "mine.txt", "sub"]
    assert sorted(os.listdir(tmp_path)) in (["out"], [".out.clarion-removed", "out"])
    _io.wait_for_removals()


def test_writes_outside_a_staged_folder_sync_inline(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    _io.atomic_write_text(tmp_path / "x.json", json.dumps({"a": 1}))
    assert len(synced) == 1 and (tmp_path / "x.json").read_text() == '{"a": 1}'
    with _io.staged_output_dir(tmp_path / "out") as stage:
        _io.atomic_write_text(tmp_path / "beside.txt", "x")  # not in the stage: inline
        assert len(synced) == 2
        _io.atomic_write_text(os.path.join(stage, "in.txt"), "y")
    assert len(synced) == 3


# ---- group statistics read off a bias accumulator -----------------------------------------------------


def _perf_data(n, seed):
    rng = np.random.default_rng(seed)
    df = _frame(n, seed)
    df["grade"] = rng.choice(["lo", "mid", "hi"], n)
    df["score"] = rng.random(n).round(3)
    df["w"] = rng.random(n)
    df.loc[rng.random(n) < 0.05, "sex"] = None  # missing facet values
    df["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 3, n), unit="D")
    return df


PERF_CASES = [
    dict(label="y", facet="sex", facet_values=["F"], label_values=[1], predicted_label="pred"),
    dict(label="y", facet="age", facet_threshold=60, label_values=[1], predicted_label="pred"),
    dict(label="y", facet="sex", label_values=[1], predicted_label="pred"),  # every value
    dict(label="grade", facet="region", facet_values=["A", "B"], label_values=["hi"], predicted_label="grade"),
    dict(label="income", facet="sex", facet_values=["M"], label_threshold=50.0),  # no model: pre-training only
    dict(label="y", facet="region", label_values=[1], predicted_label="pred"),
]


@pytest.mark.parametrize("case", range(len(PERF_CASES)))
@pytest.mark.parametrize("group", [None, "region"])
def test_performance_reading_an_accumulator_equals_counting(case, group):
    kw = PERF_CASES[case]
    df = _perf_data(900, case)
    acc = Accumulator(**kw, group_variable=group if group != kw["facet"] else None)
    counting, reading = PerformanceAccumulator(**kw), PerformanceAccumulator(**kw)
    for s in range(0, len(df), 250):
        acc.update(df.iloc[s : s + 250])
        counting.update(df.iloc[s : s + 250])
        if s == 0:
            assert reading.read_counts([acc])
        assert reading.result().to_dict() == counting.result().to_dict()
    with pytest.raises(ValueError, match="update the Accumulators"):
        reading.update(df)


def test_one_performance_accumulator_reads_two_facets_accumulators():
    df = _perf_data(600, 3)
    common = dict(label="y", label_values=[1], predicted_label="pred")
    a1 = Accumulator(**common, facet="sex", facet_values=["F"], group_variable="region")
    a2 = Accumulator(**common, facet="age", facet_threshold=60, group_variable="region")
    both = dict(
        facet=["sex", "age"], facet_values={"sex": ["F"], "age": None}, facet_threshold={"sex": None, "age": 60}
    )
    counting, reading = PerformanceAccumulator(**common, **both), PerformanceAccumulator(**common, **both)
    for s in range(0, len(df), 200):
        a1.update(df.iloc[s : s + 200])
        a2.update(df.iloc[s : s + 200])
        counting.update(df.iloc[s : s + 200])
    assert not reading.read_counts([a2, a1])  # (each facet's own accumulator, in order)
    assert reading.read_counts([a1, a2])
    assert reading.result().to_dict() == counting.result().to_dict()


def test_performance_reading_an_accumulator_where_it_cannot():
    df = _perf_data(300, 1)
    base = dict(label="y", facet="sex", facet_values=["F"], label_values=[1])
    pacc = PerformanceAccumulator(**base, predicted_label="pred")
    assert not pacc.read_counts([Accumulator(**base, predicted_label="pred")])  # nothing counted
    for kw in (
        dict(predicted_label="pred", weights="w"),
        dict(predicted_label="pred", window="1D", time_column="t"),
        dict(predicted_label="pred", n_bootstrap=20, seed=1),
        dict(predicted_label="score"),  # a score, not labels
        dict(predicted_label=["pred", "score"]),
    ):
        acc = Accumulator(**base, **kw)
        acc.update(df)
        assert not PerformanceAccumulator(**base, predicted_label=kw["predicted_label"]).read_counts([acc]), kw
    acc = Accumulator(**base, predicted_label="pred")
    acc.update(df)
    other = dict(base, facet_values=["M"])
    for pacc in (
        PerformanceAccumulator(**other, predicted_label="pred"),  # another facet value
        PerformanceAccumulator(**base, predicted_label="pred", weights="w"),
        PerformanceAccumulator(**base, predicted_label="pred", probability="score"),
        PerformanceAccumulator(**dict(base, label_values=[0]), predicted_label="pred"),
    ):
        assert not pacc.read_counts([acc])
    counted = PerformanceAccumulator(**base, predicted_label="pred").update(df)
    assert not counted.read_counts([acc])  # (it has counted rows of its own)
    assert counted.result().to_dict()["dataset"]["rows"] == 300


def test_removal_of_what_a_swap_left_takes_the_long_way_for_anything_else(tmp_path):
    for extra in (None, "other.txt", "a/other.txt"):
        f = tmp_path / f"x{extra is None}{len(extra or '')}"
        (f / "a" / "b").mkdir(parents=True)
        (f / "a" / "b" / "1.txt").write_text("1")
        (f / "c").mkdir()
        if extra:
            (f / extra).write_text("?")
        _io._remove_known(str(f), ["a/b/1.txt"], ["c/moved.txt"])
        assert not f.exists()
    assert os.listdir(tmp_path) == []


# ---- a long threshold grid's checks ------------------------------------------------------------------


def _old_grid_check(thresholds):
    """Spec.build's checks of a long grid of floats before session 18 (the reference)."""
    arr = np.asarray(thresholds, dtype=np.float64)
    if np.isnan(arr).any():
        return "nan"
    if ((arr < 0) | (arr > 1)).any():
        return "range"
    if np.unique(arr).size != arr.size:
        return "repeat"
    return [float(t) for t in thresholds]


@pytest.mark.parametrize(
    "grid",
    [
        [i / 20 for i in range(21)],  # increasing: no sort needed
        [i / 20 for i in range(20, -1, -1)],  # decreasing: no repeat either
        [i / 20 for i in range(21)] + [0.5],  # a repeat
        [i / 20 for i in range(21)] + [float("nan")],
        [i / 20 for i in range(21)] + [1.5],
        [1.5] + [i / 20 for i in range(21)] + [float("nan")],
        [i / 20 for i in range(21)] + [-0.0, 0.0],  # -0.0 == 0.0: a repeat
        [0.0, -0.0] + [i / 20 for i in range(1, 21)],
    ],
)
def test_long_threshold_grid_checks_equal_the_former_ones(grid):
    try:
        got = _engine.Spec.build(
            label="y", label_values=[1], facet="f", predicted_label="p", probability_threshold=grid
        ).thresholds
    except ValueError as exc:
        msg = str(exc)
        got = {
            _engine.MSG_PROB.format(value=grid): "nan",
            _engine.MSG_PROB_RANGE.format(value=grid): "range",
            f"probability_threshold: repeated value in {grid}": "repeat",
        }[msg]
    want = _old_grid_check(grid)
    assert got == want
    if isinstance(got, list):
        assert [t.hex() for t in got] == [t.hex() for t in want]  # (signed zeros kept)


def test_many_files_hold_few_open_and_an_early_error_stops_the_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    monkeypatch.setattr(_io, "_MAX_PENDING_SYNCS", 3)
    with _io.staged_output_dir(tmp_path / "many") as stage:
        for i in range(20):
            _io.atomic_write_bytes(os.path.join(stage, f"f{i}.bin"), bytes([i]) * 100)
        assert len(_io._STAGES[stage].pending) <= 3
    assert sorted(os.listdir(tmp_path / "many")) == sorted(f"f{i}.bin" for i in range(20))
    real, calls = os.fsync, []

    def failing(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"):
        with _io.staged_output_dir(tmp_path / "bad") as stage:
            for i in range(20):
                _io.atomic_write_bytes(os.path.join(stage, f"f{i}.bin"), b"x")
    assert sorted(os.listdir(tmp_path)) == ["many"]


def test_no_thread_work_left_syncs_here(tmp_path, monkeypatch):
    """At interpreter shutdown the pool takes no new work: the file is fsync-ed at once."""
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)

    class Closed:
        def submit(self, *a, **kw):
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    with _io.staged_output_dir(tmp_path / "out") as stage:
        monkeypatch.setattr(_io, "_pool", lambda: Closed())
        _io.atomic_write_text(os.path.join(stage, "a.txt"), "a")
        assert _io._STAGES[stage].pending == []
    assert (tmp_path / "out" / "a.txt").read_text() == "a"


def _walk_files(root):
    """The former ``_io._files`` (os.walk), the reference."""
    out = []
    for d, dirs, files in os.walk(root):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            out.append(os.path.relpath(os.path.join(d, name), root))
    return sorted(out)


def test_staged_files_listed_as_os_walk_lists_them(tmp_path):
    root = tmp_path / "stage"
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "x.json").write_text("1")
    (root / "a" / "y.csv").write_text("2")
    (root / "a" / "b" / "z.bin").write_text("3")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "w.txt").write_text("4")
    os.symlink(tmp_path / "elsewhere", root / "a" / "linked_folder")  # not followed: listed as a file
    os.symlink(tmp_path / "nowhere", root / "broken")
    os.symlink(root / "x.json", root / "a" / "b" / "linked_file")
    assert _io._files(str(root)) == _walk_files(str(root))
    assert "a/linked_folder" in _io._files(str(root)) and "broken" in _io._files(str(root))
    assert _io._files(str(tmp_path / "missing")) == _walk_files(str(tmp_path / "missing")) == []
