"""A bias-only job leaves out the text columns it does not use (issue 21 part 3,
``job.source.ONLY_USED_COLUMNS``).

With no model, no SHAP / PDP / FlipTest and no time windows, ``clarion analyze`` hands the CSV /
Parquet reader its label, facet, group, weight and predicted-label columns and every numeric
column as ``Reader.usecols``: the other text columns are not converted. The outputs, errors and
skips must be exactly those of reading every column (CSV, Parquet; codes on and off; any
chunking; the reader-level selection of every format is tests/test_reader_usecols.py): a value
that is not a number in a numeric column is located as before; a job that needs the other
columns reads them all.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion
import clarion.job.source as job_source
import clarion.report
from clarion import dataset
from clarion.dataset import DataError

CFG = {
    "dataset_type": "text/csv",
    "label": "y",
    "label_values_or_threshold": [1],
    "predicted_label": "p",
    "facet": [
        {"name_or_index": "sex", "value_or_threshold": ["F"]},
        {"name_or_index": "age", "value_or_threshold": [40]},
    ],
    "group_variable": "g",
    "methods": {
        "pre_training_bias": {"methods": "all"},
        "post_training_bias": {"methods": ["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "CDDPL", "TE"]},
    },
}


@pytest.fixture
def no_report(monkeypatch):
    """The report files are renderings of analysis.json (compared here): not written."""
    monkeypatch.setattr(clarion.report, "write_report", lambda *a, **kw: {})


@pytest.fixture
def seen_usecols(monkeypatch):
    """The ``usecols`` each reader iteration ran with."""
    seen: list = []
    real = dataset.Reader.__iter__

    def spy(self):
        seen.append(self.usecols)
        return real(self)

    monkeypatch.setattr(dataset.Reader, "__iter__", spy)
    return seen


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50, 10, n).round(2),
            "sex": rng.choice(["F", "M"], n),
            "note": rng.choice(["x", "y z", "é"], n),
            "g": rng.choice(["a", "b", "c"], n),
            "y": rng.integers(0, 2, n),
            "p": rng.integers(0, 2, n),
        }
    )


def _write(df, path, fmt):
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        df.to_parquet(path, index=False, row_group_size=max(1, len(df) // 3))


_TYPES = {"csv": "text/csv", "jsonl": "application/jsonlines", "parquet": "application/x-parquet"}


def _run(cfg, path, out, monkeypatch, only, **kw):
    monkeypatch.setattr(job_source, "ONLY_USED_COLUMNS", only)
    try:
        res = clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True, **kw)
    except (DataError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return (out / "analysis.json").read_text(), res.n_rows, res.skipped_rows, res.notes


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fmt=st.sampled_from(["csv", "parquet"]),
    n=st.integers(2, 300),
    seed=st.integers(0, 2**16),
    chunk_rows=st.integers(1, 400),
    codes=st.booleans(),
)
def test_same_outputs_reading_only_the_used_columns(
    tmp_path_factory, monkeypatch, no_report, seen_usecols, fmt, n, seed, chunk_rows, codes
):
    monkeypatch.setattr(job_source, "DICTIONARY_CODES", codes)
    tmp = tmp_path_factory.mktemp("u")
    path = tmp / f"d.{fmt}"
    df = _frame(n, seed)
    df.loc[:1, "y"] = df.loc[:1, "p"] = [0, 1]  # (both labels and both facet values occur)
    df.loc[:1, "sex"] = ["F", "M"]
    _write(df, path, fmt)
    cfg = dict(CFG, dataset_type=_TYPES[fmt])
    seen_usecols.clear()
    on = _run(cfg, path, tmp / "on", monkeypatch, True, chunk_rows=chunk_rows)
    assert not isinstance(on, str), on
    assert set(seen_usecols[-1]) == {"y", "sex", "age", "g", "p", "income"}  # (not "note": unused text)
    off = _run(cfg, path, tmp / "off", monkeypatch, False, chunk_rows=chunk_rows)
    assert seen_usecols[-1] is None
    assert on == off


def test_bad_value_in_an_unused_numeric_column_still_located(tmp_path, monkeypatch, no_report):
    """A non-number in ``income`` (numeric by the type sample, not used by the bias job): the
    same error (file, line, column) and, with skip_bad_rows, the same skipped row as reading
    every column; bad bytes in the unused text column ``note`` too."""
    df = _frame(200, 1).astype({"income": object})
    df.loc[57, "income"] = "n/a?"
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    on = _run(CFG, path, tmp_path / "on", monkeypatch, True)
    off = _run(CFG, path, tmp_path / "off", monkeypatch, False)
    assert isinstance(on, str) and on == off and "line 59" in on and "income" in on
    on = _run(CFG, path, tmp_path / "on_s", monkeypatch, True, skip_bad_rows=True)
    off = _run(CFG, path, tmp_path / "off_s", monkeypatch, False, skip_bad_rows=True)
    assert on == off and on[1] == 199 and on[2] == 1
    raw = path.read_bytes().splitlines(keepends=True)
    raw[20] = raw[20].replace(b",x,", b",\xff,").replace(b",y z,", b",\xff,").replace(b",\xc3\xa9,", b",\xff,")
    path.write_bytes(b"".join(raw))
    on = _run(CFG, path, tmp_path / "on_u", monkeypatch, True, skip_bad_rows=True)
    off = _run(CFG, path, tmp_path / "off_u", monkeypatch, False, skip_bad_rows=True)
    assert on == off


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_used_columns_still_checked(tmp_path, monkeypatch, no_report, fmt):
    """A missing label (a used column) is located as before; a wrong field count too (CSV)."""
    df = _frame(120, 2).astype({"y": object})
    df.loc[30, "y"] = None
    path = tmp_path / f"d.{fmt}"
    _write(df, path, fmt)
    cfg = dict(CFG, dataset_type=_TYPES[fmt])
    on = _run(cfg, path, tmp_path / "on", monkeypatch, True)
    off = _run(cfg, path, tmp_path / "off", monkeypatch, False)
    assert isinstance(on, str) and on == off and "'y'" in on and "missing value" in on
    if fmt == "csv":
        text = path.read_text().splitlines()
        text[10] += ",extra"
        path.write_text("\n".join(text) + "\n")
        on = _run(cfg, path, tmp_path / "on2", monkeypatch, True)
        assert isinstance(on, str) and "line 11" in on and "expected 7 fields, got 8" in on


def test_jobs_that_need_other_columns_read_them_all(tmp_path, monkeypatch, no_report, seen_usecols):
    """FlipTest (post-training "all") looks at the features: every column is read, and a bad
    value in one is located as before."""
    df = _frame(120, 3).drop(columns=["note"])
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    cfg = json.loads(json.dumps(CFG))
    cfg["methods"]["post_training_bias"]["methods"] = "all"
    res = clarion.analyze(cfg, path, output_dir=tmp_path / "o", progress=False, overwrite=True)
    assert res.n_rows == 120 and seen_usecols[-1] is None
    df = df.astype({"income": object})
    df.loc[7, "income"] = "bad"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="line 9.*income"):
        clarion.analyze(cfg, path, output_dir=tmp_path / "o2", progress=False, overwrite=True)
