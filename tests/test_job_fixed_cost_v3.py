"""Issue 21 part 3, session 18: a bias-only job's chunks share the first chunk's column index, so
the compiled stream's fetch (``SlotStream.add_frame``) reads every chunk after the first without
Python; the outputs are the same as the way it replaces (each chunk's own index)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import clarion
import clarion.bias.accumulator as acc_mod
import clarion.job.run as job_run

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
        "post_training_bias": {"methods": ["DPPL", "DI", "AD", "CDDPL"]},
    },
}


def _frame(n: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    sex = rng.choice(["F", "M"], n)
    y = (rng.random(n) < np.where(sex == "F", 0.35, 0.45)).astype(int)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "sex": sex,
            "region": rng.choice(list("ABCDEFGH"), n),
            "y": y,
            "pred": np.where(rng.random(n) < 0.8, y, 1 - y),
        }
    )


def _old_bias_batch(self, frame, pred):  # the way it replaces: each chunk's frame as the reader made it
    if pred is None and self.windows is None:
        return frame
    return _NEW(self, frame, pred)


_NEW = job_run._Job._bias_batch


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunks_share_the_first_index_and_outputs_match(tmp_path, monkeypatch, fmt):
    pytest.importorskip("pyarrow")
    df = _frame()
    path = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
        dtype = "text/csv"
    else:
        df.to_parquet(path, index=False, row_group_size=2_000)
        dtype = "application/x-parquet"
    cfg = {**CFG, "dataset_type": dtype}
    calls = []
    real = acc_mod._Stream._frame_arrays

    def counted(self, df):  # the Python fetch: each call is a frame add_frame did not know
        calls.append(1)
        return real(self, df)

    monkeypatch.setattr(acc_mod._Stream, "_frame_arrays", counted)
    docs = {}
    for name, fn in (("old", _old_bias_batch), ("new", _NEW)):
        monkeypatch.setattr(job_run._Job, "_bias_batch", fn)
        calls.clear()
        clarion.analyze(cfg, str(path), output_dir=str(tmp_path / name), progress=False, chunk_rows=2_000)
        docs[name] = (json.loads((tmp_path / name / "analysis.json").read_text()), len(calls))
    (old_doc, old_misses), (new_doc, new_misses) = docs["old"], docs["new"]
    assert new_doc == old_doc
    # 10 chunks, 2 accumulators: the old way reads every chunk after the first-update ones in Python
    assert old_misses >= 2 * 8
    # the new way: only the frame that primes each stream's fetch
    assert new_misses <= 2
    assert old_doc["pre_training_bias_metrics"]["facets"]


def test_a_chunk_with_other_names_keeps_its_own_index(tmp_path):
    job = job_run._Job.__new__(job_run._Job)
    job.windows = None
    job.plan = None
    a = pd.DataFrame({"x": [1], "y": [2]})
    b = pd.DataFrame({"x": [3], "y": [4]})
    c = pd.DataFrame({"x": [5], "z": [6]})
    assert job._bias_batch(a, None) is a
    assert job._bias_batch(b, None) is b and b.columns is a.columns
    assert job._bias_batch(c, None) is c and c.columns is not a.columns and list(c.columns) == ["x", "z"]
