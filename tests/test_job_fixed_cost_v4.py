"""The job's fixed cost, session 19 (issue 21 part 3): each shortcut compared with the way it replaces.

* A new file of a staged output folder is written under its own name (``_io.STAGE_DIRECT``: no
  temporary name, no rename): the job writes the same files, bytes and modes either way; a file
  written twice in a stage is replaced whole; a write that fails leaves no part of the file in the
  stage (nor a temporary file), and the earlier version of a file written before stays; a link
  at the file's name is replaced, never followed; outside a stage nothing changes.
* ``write_report`` writes report.ipynb before report.pdf (its fsync runs while the PDF is drawn):
  the same files and the same returned paths, in the same order.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from test_job_fixed_cost_v2 import CFG, _frame, _tree

import clarion
import clarion.report
from clarion import _io


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_job_writes_the_same_files_either_way(tmp_path, monkeypatch, fmt):
    df = _frame(500)
    path = tmp_path / f"d.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False)
    cfg = {**CFG, "dataset_type": "text/csv" if fmt == "csv" else "application/x-parquet"}
    got = {}
    for direct in (True, False):
        monkeypatch.setattr(_io, "STAGE_DIRECT", direct)
        out = tmp_path / f"out_{direct}"
        out.mkdir()
        (out / "report.html").write_text("a previous run's")
        (out / "notes.txt").write_text("the user's")
        res = clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True)
        _io.wait_for_removals()
        got[direct] = (res.analysis, _tree(out), {k: os.path.relpath(v, out) for k, v in res.paths.items()})
    assert got[True] == got[False]
    assert "report.html" in got[True][1] and "notes.txt" in got[True][1]
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, "out_True", "out_False"])  # nothing left beside


def test_a_new_staged_file_is_written_under_its_name(tmp_path, monkeypatch):
    """No temporary name or rename for a new file of the stage; a second write of it goes the
    usual way (a temporary file, then a rename) and replaces it whole."""
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    monkeypatch.setattr(_io, "STAGE_DIRECT", True)
    renames, temps = [], []
    real_replace, real_temp = os.replace, _io.create_temp_file
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append(os.path.basename(b)) or real_replace(a, b))
    monkeypatch.setattr(_io, "create_temp_file", lambda d, s="": temps.append(s) or real_temp(d, s))
    with _io.staged_output_dir(tmp_path / "out") as stage:
        _io.atomic_write_text(os.path.join(stage, "a.json"), "first, a longer text than the second")
        _io.atomic_write_bytes(os.path.join(stage, "sub", "b.bin"), memoryview(np.arange(50, dtype=np.int32)))
        assert renames == [] and temps == []
        _io.atomic_write_text(os.path.join(stage, "a.json"), "second")
        assert renames == ["a.json"] and temps == ["-a.json"]
    assert (tmp_path / "out" / "a.json").read_text() == "second"
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == np.arange(50, dtype=np.int32).tobytes()
    mode = stat.S_IMODE(os.stat(tmp_path / "out" / "a.json").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["out"]


class _Unwritable:
    """Data that fails when it is written (as a full disk would, or an interrupt)."""


@pytest.mark.parametrize("first", [False, True])
def test_a_failed_write_leaves_no_part_of_the_file(tmp_path, monkeypatch, first):
    """A write that fails (the error is the caller's) leaves nothing of it in the stage: no part of
    the new file, no temporary file; a version written before stays whole."""
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    monkeypatch.setattr(_io, "STAGE_DIRECT", True)
    real_write = os.write
    writes = []

    def failing(fd, data):
        writes.append(len(data))
        if len(writes) >= 2:
            raise OSError(28, "No space left on device")
        return real_write(fd, data[:7])  # (a part: the loop writes the rest)

    with _io.staged_output_dir(tmp_path / "out") as stage:
        target = os.path.join(stage, "r.pdf")
        if first:
            _io.atomic_write_bytes(target, b"earlier")
        monkeypatch.setattr(os, "write", failing)
        with pytest.raises(OSError, match="No space left"):
            _io.atomic_write_bytes(target, b"x" * 100)
        with pytest.raises(TypeError):
            _io.atomic_write_bytes(os.path.join(stage, "other.bin"), _Unwritable())
        monkeypatch.setattr(os, "write", real_write)
        assert sorted(os.listdir(stage)) == (["r.pdf"] if first else [])
    if first:
        assert (tmp_path / "out" / "r.pdf").read_bytes() == b"earlier"
    else:
        assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_a_link_at_the_name_is_replaced_not_followed(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "DEFERRED_SYNC", True)
    monkeypatch.setattr(_io, "STAGE_DIRECT", True)
    victim = tmp_path / "victim.txt"
    victim.write_text("not ours")
    with _io.staged_output_dir(tmp_path / "out") as stage:
        os.symlink(victim, os.path.join(stage, "a.txt"))
        _io.atomic_write_text(os.path.join(stage, "a.txt"), "ours")
    assert victim.read_text() == "not ours"
    assert (tmp_path / "out" / "a.txt").read_text() == "ours" and not (tmp_path / "out" / "a.txt").is_symlink()


def test_outside_a_stage_a_file_goes_through_a_temporary_name(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "STAGE_DIRECT", True)
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append(os.path.basename(b)) or real_replace(a, b))
    _io.atomic_write_text(tmp_path / "x.json", "{}")
    assert renames == ["x.json"] and (tmp_path / "x.json").read_text() == "{}"


def test_write_report_writes_the_notebook_before_the_pdf(tmp_path, monkeypatch):
    pytest.importorskip("reportlab")
    pytest.importorskip("nbformat")
    data = tmp_path / "d.csv"
    _frame(300).to_csv(data, index=False)
    res = clarion.analyze({**CFG, "dataset_type": "text/csv"}, data, output_dir=tmp_path / "out", progress=False)
    order = []
    real = _io.atomic_write_bytes
    monkeypatch.setattr(_io, "atomic_write_bytes", lambda p, d: order.append(os.path.basename(p)) or real(p, d))
    paths = clarion.report.write_report(tmp_path / "again", res.analysis)
    assert order == ["report.html", "report.md", "report.ipynb", "report.pdf"]
    assert list(paths) == ["html", "md", "pdf", "ipynb"]  # (the order they are listed in, as before)
    with open(paths["ipynb"], "rb") as a, open(res.paths["report_ipynb"], "rb") as b:
        assert a.read() == b.read()
    with open(paths["pdf"], "rb") as f:
        assert f.read(5) == b"%PDF-"
