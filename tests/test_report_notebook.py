"""Issue 17 item 5: ``report.ipynb`` rebuilds the report's tables and charts from ``analysis.json``
and the local SHAP values, executed top to bottom with a real Jupyter kernel (nbclient + ipykernel).

A cell appended by the test checks, inside the kernel, the tables the notebook built against hand
computations from the fixture (the real demo's output with clarion's group statistics)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

from clarion.cli import EXIT_OK, main  # noqa: E402
from clarion.report.notebook import build_notebook, relative_path  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "report_demo"

CHECKS = """
# the test's checks, run in the notebook's kernel after every cell of the notebook
black = metrics[(metrics["facet"] == "colour") & (metrics["stage"] == "Post-training bias (model)")]
assert len(black) == 13 and set(black["metric"]) >= {"DI", "DPPL", "DCR"}
di = black.set_index("metric").loc["DI"]
assert abs(di["value"] - 0.9264302017842106) < 1e-12 and di["significant"] and di["band"] == "fine"
assert black.set_index("metric").loc["DCR", "band"] == "concern"
post = groups[groups["stage"] == "Post-training bias (model)"]
d = post[(post["facet"] == "colour") & (post["group"] == "facet_d")].iloc[0]
assert (d["rows"], d["TP"], d["FP"], d["FN"], d["TN"]) == (1288, 905, 284, 50, 49)
assert abs(d["accuracy"] - (905 + 49) / 1288) < 1e-12
assert abs(predicted_positive - 5113 / 5226) < 1e-12 and abs(accuracy - 4337 / 5226) < 1e-12
assert drawn == 2
assert list(local.columns) == ["colour", "year", "age", "sex", "employed", "citizen", "checks"]
print("CHECKS PASSED")
"""


def execute(nb, folder: Path):
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return nb


def outputs(nb) -> tuple[str, int]:
    """All text the cells printed or displayed, and the number of PNG images."""
    text, pngs = [], 0
    for c in nb.cells:
        for o in c.get("outputs", []):
            assert o["output_type"] != "error", o
            text.append(o.get("text", ""))
            data = o.get("data", {})
            text.append(data.get("text/plain", ""))
            text.append(data.get("text/html", ""))
            pngs += "image/png" in data
    return "\n".join(text), pngs


def test_demo_notebook_executes_and_rebuilds_the_tables(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "out")
    # written by the job as report.ipynb beside analysis.json
    nb = build_notebook("analysis.json", title="Toronto arrests")
    nbformat.validate(nb)
    nb.cells.append(nbformat.v4.new_code_cell(CHECKS))
    execute(nb, tmp_path / "out")
    text, pngs = outputs(nb)
    assert "CHECKS PASSED" in text
    assert "WARNING: the model predicts one class for 97.8% of rows" in text
    assert "within 1 point of always predicting the majority class" in text
    assert "2 facet value(s) with threshold curves" in text
    # charts: 4 facet values' metrics, 2 sets of curves, 1 global SHAP, 1 local, 3 PDPs
    assert pngs == 11


def test_cli_notebook_elsewhere_opens_the_analysis_relative_to_itself(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "out")
    # no group statistics nor local values: a Clarify-like folder, the notebook says so and runs
    doc = json.loads((tmp_path / "out" / "analysis.json").read_text())
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        doc[stage].pop("model_performance", None)
        doc[stage].pop("dataset", None)
        for entries in doc[stage]["facets"].values():
            for e in entries:
                e.pop("group_statistics")
                e.pop("threshold_curve", None)
    (tmp_path / "out" / "analysis.json").write_text(json.dumps(doc))
    shutil.rmtree(tmp_path / "out" / "explanations_shap")
    (tmp_path / "review").mkdir()
    nb_path = tmp_path / "review" / "r.ipynb"
    assert main(["report", str(tmp_path / "out" / "analysis.json"), "-o", str(nb_path)]) == EXIT_OK
    assert relative_path(tmp_path / "out" / "analysis.json", nb_path) == "../out/analysis.json"
    nb = nbformat.read(str(nb_path), as_version=4)
    nbformat.validate(nb)
    assert "Path('../out/analysis.json')" in nb.cells[1].source
    assert nb.cells[0].source.startswith("# Toronto arrests: who is released with a summons?")
    execute(nb, nb_path.parent)
    text, pngs = outputs(nb)
    assert "no group statistics" in text and "no model performance" in text
    assert "no local SHAP values beside analysis.json" in text
    assert "0 facet value(s) with threshold curves" in text
    assert pngs == 4 + 1 + 3  # metrics per facet value, global SHAP, PDPs
