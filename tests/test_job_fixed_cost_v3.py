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
import clarion.dataset
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
    # the reader as it was: a new column index per chunk (its kept index is
    # tests/test_reader_column_index.py's; with it the chunks share one index already)
    monkeypatch.setattr(clarion.dataset, "_KEPT_COLUMN_INDEX", False)
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


def test_equal_names_of_another_type_keep_their_own_index():
    # Index([1, 2]).equals(Index([1.0, 2.0])) is True: such a chunk must keep its float names
    job = job_run._Job.__new__(job_run._Job)
    job.windows = None
    job.plan = None
    a = pd.DataFrame([[1, 2]], columns=pd.Index([1, 2]))
    b = pd.DataFrame([[3, 4]], columns=pd.Index([1.0, 2.0]))
    job._bias_batch(a, None)
    assert job._bias_batch(b, None) is b and b.columns is not a.columns and b.columns.dtype == np.float64


def test_a_copied_batch_with_predictions_shares_the_index_too():
    # the model path: each chunk's bias columns copied and the predictions added (a new index each time)
    from types import SimpleNamespace

    job = job_run._Job.__new__(job_run._Job)
    job.windows = None
    job.pred_col = "p"
    facet = SimpleNamespace(name="s")
    job.plan = SimpleNamespace(label="y", facets=[facet], group=None, weights=None, predicted=None)
    f1 = pd.DataFrame({"y": [1, 0], "s": [0, 1], "x": [0.5, 0.2]})
    f2 = pd.DataFrame({"y": [0, 0], "s": [1, 1], "x": [0.1, 0.3]})
    b1 = job._bias_batch(f1, np.array([1, 0]))
    b2 = job._bias_batch(f2, np.array([0, 1]))
    assert list(b1.columns) == ["y", "s", "p"] and b2.columns is b1.columns
    assert b2["p"].tolist() == [0, 1] and b2["y"].tolist() == [0, 0] and b2["s"].tolist() == [1, 1]
