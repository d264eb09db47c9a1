"""``--model module:attribute`` on ``clarion analyze`` and ``clarion monitor``: a Python callable
written by the test into a folder, found from the current directory (a real ``python -m clarion``
process run there) or through PYTHONPATH, explained end to end; bad names are input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clarion.cli import EXIT_ERROR, EXIT_OK, main

PYTHON_DIR = str(Path(__file__).resolve().parents[1] / "python")

MODULE = '''
import numpy as np

WEIGHTS = {"good": 2.0, "great": 1.5, "bad": -1.5, "awful": -2.5}


def predict(X):
    """Sum of word weights of the text column (the last one) plus half the rating."""
    X = np.asarray(X, dtype=object)
    text = [sum(WEIGHTS.get(w, 0.0) for w in str(t).split()) for t in X[:, -1]]
    rating = X[:, 0].astype(float) if X.shape[1] > 1 else 0.0
    return np.asarray(text) + 0.5 * rating


class Linear:
    coef = np.array([1.0, -2.0, 0.5])

    @staticmethod
    def score(X):
        return np.asarray(X, dtype=float) @ Linear.coef
'''


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "mymodel", raising=False)  # each test imports its own copy
    (tmp_path / "mymodel.py").write_text(MODULE)
    pd.DataFrame(
        {"label": [1, 0, 1, 0], "rating": [5.0, 1.0, 4.0, 2.0], "review": ["good movie", "bad awful", "great", "ok"]}
    ).to_csv(tmp_path / "texts.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "label",
        "methods": {
            "shap": {
                "text_config": {"granularity": "token", "language": "english"},
                "baseline": [[3.0, ""]],
                "seed": 1,
            }
        },
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


def test_analyze_text_with_a_module_in_the_current_directory(project):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "clarion",
            "analyze",
            "--config",
            "cfg.json",
            "--data",
            "texts.csv",
            "--model",
            "mymodel:predict",
            "--output",
            "out",
            "--quiet",
        ],
        cwd=project,
        env=_env(PYTHONPATH=PYTHON_DIR),  # clarion itself; mymodel is found in the current directory
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    lines = [json.loads(x) for x in (project / "out" / "explanations_shap" / "out.jsonl").read_text().splitlines()]
    weights = {"good": 2.0, "great": 1.5, "bad": -1.5, "awful": -2.5}
    for line, rating, text in zip(lines, [5.0, 1.0, 4.0, 2.0], ["good movie", "bad awful", "great", "ok"]):
        rating_f, review_f = line["explanations"]
        assert rating_f["attributions"][0]["attribution"][0] == pytest.approx(0.5 * (rating - 3.0), abs=1e-10)
        got = {a["description"]["partial_text"]: a["attribution"][0] for a in review_f["attributions"]}
        assert got == pytest.approx({w: weights.get(w, 0.0) for w in text.split()}, abs=1e-10)
    doc = json.loads((project / "out" / "analysis.json").read_text())
    block = doc["explanations"]["kernel_shap"]["label0"]
    assert block["global_top_shap_text"]["review"]["awful"] == pytest.approx(2.5)
    assert "Text explanations" in (project / "out" / "report.html").read_text()


def test_module_found_through_pythonpath_and_monitor_accepts_it(project, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)  # not the module's folder: PYTHONPATH finds it
    monkeypatch.syspath_prepend(str(project))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    data = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=(X[:, 0] > 0).astype(int))
    data.to_csv(project / "num.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "methods": {"shap": {"baseline": [[0.0, 0.0, 0.0]], "num_samples": 6, "seed": 0}},
    }
    (project / "num.json").write_text(json.dumps(cfg))
    args = ["--config", str(project / "num.json"), "--data", str(project / "num.csv"), "--model"]
    assert main(["analyze", *args, "mymodel:Linear.score", "--output", str(elsewhere / "base"), "--quiet"]) == EXIT_OK
    base = json.loads((elsewhere / "base" / "analysis.json").read_text())
    g = base["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
    coef = np.array([1.0, -2.0, 0.5])
    assert [g[k] for k in "abc"] == pytest.approx(np.abs(X * coef).mean(axis=0), abs=1e-10)  # linear closed form
    code = main(
        [
            "monitor",
            "--baseline",
            str(elsewhere / "base" / "analysis.json"),
            *args,
            "mymodel:Linear.score",
            "--output",
            str(elsewhere / "mon"),
            "--quiet",
        ]
    )
    assert code == EXIT_OK
    mon = json.loads((elsewhere / "mon" / "analysis.json").read_text())
    assert mon["explanations"]["kernel_shap"]["label0"]["global_shap_values"] == pytest.approx(g, abs=1e-12)


def test_bad_module_or_attribute_is_an_input_error(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    base = ["analyze", "--config", "cfg.json", "--data", "texts.csv", "--output", "o", "--quiet", "--model"]
    assert main([*base, "mymodel:predikt"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--model mymodel:predikt" in err and "did you mean 'predict'" in err and "internal error" not in err
    assert main([*base, "nosuchmodule:predict"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "cannot import module 'nosuchmodule'" in err and str(project) in err
    assert not (project / "o").exists()


def test_object_spec_is_never_read_from_a_config(project, monkeypatch, capsys):
    """predictor.model_uri "mymodel:predict" is a file path (and none exists), not code to import."""
    monkeypatch.chdir(project)
    cfg = json.loads((project / "cfg.json").read_text())
    cfg["predictor"] = {"model_uri": "mymodel:predict"}
    (project / "cfg2.json").write_text(json.dumps(cfg))
    code = main(["analyze", "--config", "cfg2.json", "--data", "texts.csv", "--output", "o2", "--quiet"])
    assert code == EXIT_ERROR
    assert "mymodel" not in sys.modules  # nothing was imported
    assert "mymodel:predict" in capsys.readouterr().err
