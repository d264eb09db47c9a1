"""clarion.job and clarion.cli: the layering the restructuring promised (issue 14), checked on the
source, and the monitor's single write of its report."""

from __future__ import annotations

import ast
import json
import pathlib

import numpy as np
import pandas as pd
import pytest

import clarion

PACKAGE = pathlib.Path(clarion.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    """Every clarion module ``path`` imports (module level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("clarion")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("clarion"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def test_no_library_module_imports_the_cli():
    bad = {
        m: sorted(i for i in _imports(p) if i == "clarion.cli" or i.startswith("clarion.cli."))
        for m, p in _modules().items()
        if not (m.startswith("clarion.cli") or m == "clarion.__main__")
    }
    assert not {m: v for m, v in bad.items() if v}


def test_distributed_does_not_import_the_job():
    imports = _imports(_modules()["clarion.distributed"])
    assert not {i for i in imports if i.startswith(("clarion.job", "clarion.analysis", "clarion.cli"))}


def test_one_job_class_no_subclass():
    """The windowed analysis is a sink of the one pass, not a subclass of the job."""
    for m, p in _modules().items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b) for b in node.bases}
                assert not {b for b in bases if b.endswith("_Job")}, (m, node.name)


@pytest.fixture(scope="module")
def monitor_setup(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    d = tmp_path_factory.mktemp("job_monitor")
    rng = np.random.default_rng(3)
    n = 240
    df = pd.DataFrame(
        {
            "ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 4 * 86_400, n)), unit="s"),
            "sex": np.where(rng.random(n) < 0.4, "F", "M"),
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "y": (rng.random(n) < 0.5).astype(int),
        }
    )
    model = LogisticRegression().fit(df[["a", "b"]], df["y"])
    dump(model, d / "model.skops")
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
        "excluded_columns": ["sex"],
        "methods": {
            "pre_training_bias": {"methods": ["CI", "DPL"]},
            "post_training_bias": {"methods": ["DPPL", "DI"]},
            "shap": {"baseline": [[0.0, 0.0]], "agg_method": "mean_abs", "seed": 1},
        },
        "predictor": {"model_uri": "model.skops", "probability": 1},
    }
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "config_ts.json").write_text(json.dumps({**cfg, "excluded_columns": ["sex", "ts"]}))
    df.to_csv(d / "data.csv", index=False)
    base = clarion.analyze(d / "config_ts.json", d / "data.csv", output_dir=d / "baseline", progress=False)
    return d, base.paths["analysis"]


@pytest.mark.parametrize("window", [None, "1D"])
def test_monitor_renders_its_report_once(monitor_setup, monkeypatch, window):
    """The drift section is part of the one write of the report: nothing reopens report.html to
    splice it in, and analysis.json is not read back (the result's document is the one written)."""
    from clarion.cli import EXIT_ERROR, main
    from clarion.report import drift

    d, baseline = monitor_setup

    def reopen(*a, **k):
        raise AssertionError("the report was reopened to add the drift section")

    monkeypatch.setattr(drift, "add_drift_section", reopen)
    out = d / f"out_{window}"
    extra = ["--time-column", "ts", "--window", window] if window else []
    config = d / ("config.json" if window else "config_ts.json")
    code = main(
        [
            "monitor",
            "--baseline",
            baseline,
            "--data",
            str(d / "data.csv"),
            "--config",
            str(config),
            "--output",
            str(out),
            "--quiet",
            *extra,
        ]
    )
    assert code != EXIT_ERROR
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert html.count("Drift against the baseline") >= 1 and html.rstrip().endswith("</html>")
    assert html.index("id='drift'") < html.rindex("</main>")
    assert md.rstrip("\n").count("## Drift against the baseline") == 1
    assert json.loads((out / "constraint_violations.json").read_text())["version"] == "1.0"
    assert (out / "analysis_by_window.json").exists() == bool(window)
