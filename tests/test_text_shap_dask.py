"""Text SHAP of the analysis job on a real dask.distributed LocalCluster: the records are
explained on the workers, and every output equals the one-process run's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("spacy")

from clarion import distributed as cdist  # noqa: E402
from clarion.job import analyze  # noqa: E402

WORDS = {"good": 1.0, "great": 2.0, "bad": -1.0, "awful": -2.5, "not": -0.5}


def _model(X):
    """Words add up; ``rating`` interacts with the text (not additive: the sampled game matters)."""
    X = np.asarray(X, dtype=object)
    text = np.array([sum(WORDS.get(w, 0.0) for w in str(t).split()) for t in X[:, 1]])
    return 1 / (1 + np.exp(-(text * (1 + 0.1 * X[:, 0].astype(float)))))


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def test_text_shap_runs_on_the_workers_with_the_same_outputs(client, tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    vocab = [*WORDS, "plot", "the", "and", "film"]
    n = 40
    data = pd.DataFrame(
        {
            "label": rng.integers(0, 2, n),
            "rating": rng.integers(1, 6, n).astype(float),
            "review": [" ".join(rng.choice(vocab, rng.integers(1, 9))) for _ in range(n)],
            "id": [f"r{i}" for i in range(n)],
        }
    )
    data.to_csv(tmp_path / "d.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "label",
        "joinsource_name_or_index": "id",
        "methods": {
            "shap": {
                "text_config": {"granularity": "token", "language": "english", "max_top_tokens": 5},
                "baseline": [[3.0, ""]],
                "num_samples": 40,
                "seed": 7,
            }
        },
    }
    local = analyze(cfg, tmp_path / "d.csv", model=_model, output_dir=tmp_path / "local", progress=False, chunk_rows=16)
    submitted = []
    real_submit = client.submit

    def counting_submit(fn, *a, **k):
        submitted.append(len(a[1]))
        return real_submit(fn, *a, **k)

    monkeypatch.setattr(client, "submit", counting_submit)
    with cdist.cluster(client=client) as c:
        dist = analyze(
            cfg,
            tmp_path / "d.csv",
            model=_model,
            output_dir=tmp_path / "dist",
            progress=False,
            chunk_rows=16,
            dask_client=c,
        )
    assert len(submitted) >= 4 and sum(submitted) == n  # every record went to a worker, once
    a = (tmp_path / "local" / "explanations_shap" / "out.jsonl").read_text()
    b = (tmp_path / "dist" / "explanations_shap" / "out.jsonl").read_text()
    assert a == b  # per record, byte for byte, in input order (join values included)
    assert [json.loads(x)["join_source_value"] for x in b.splitlines()] == list(data["id"])
    assert local.analysis["explanations"] == dist.analysis["explanations"]
    assert not any("this process" in note for note in dist.notes)
