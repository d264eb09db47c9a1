"""Issue 17 item 4: ``report.pdf``, a real paginated PDF with the HTML's content.

Read back with pypdf (text, fonts, images) and, where poppler-utils is installed (``.ci/run``
installs it), with ``pdftotext`` / ``pdffonts`` / ``pdftoppm``; pages are rendered to PNG (pdftoppm,
else pypdfium2) and checked for the charts' colours. Tables must never split a row across pages and
repeat their header row; fonts must be embedded; charts must be vector (no images in the file)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("reportlab")
pytest.importorskip("svglib")
pypdf = pytest.importorskip("pypdf")

from clarion.report.folder import render_file  # noqa: E402
from clarion.report.model import largest_disparities, model_warnings  # noqa: E402
from clarion.report.pdf import FONT, render_pdf  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "report_demo"
POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext") and shutil.which("pdffonts")


@pytest.fixture(scope="module")
def demo_pdf(tmp_path_factory) -> Path:
    """The demo fixture's report.pdf, written by ``render_file`` (what ``clarion report`` runs)."""
    d = tmp_path_factory.mktemp("pdf")
    shutil.copytree(FIXTURE, d / "out")
    return Path(render_file(d / "out" / "analysis.json", d / "report.pdf"))


def page_texts(path: Path) -> list[str]:
    return [" ".join(p.extract_text().split()) for p in pypdf.PdfReader(str(path)).pages]


def fonts(reader) -> dict[str, dict]:
    """Every font used on any page (also inside form XObjects): base name -> font dict."""
    out: dict[str, dict] = {}

    def walk(res):
        res = res.get_object() if res is not None else {}
        for f in (res.get("/Font") or {}).values():
            f = f.get_object()
            out[str(f["/BaseFont"])] = f
        for x in (res.get("/XObject") or {}).values():
            x = x.get_object()
            if x.get("/Subtype") == "/Form":
                walk(x.get("/Resources"))

    for p in reader.pages:
        walk(p.get("/Resources"))
    return out


def images(reader) -> int:
    n = 0
    for p in reader.pages:
        for x in ((p.get("/Resources") or {}).get("/XObject") or {}).values():
            n += x.get_object().get("/Subtype") == "/Image"
    return n


def test_demo_pdf_is_paginated_and_has_the_reports_content(demo_pdf):
    texts = page_texts(demo_pdf)
    assert len(texts) > 1
    whole = " ".join(texts)
    doc = json.loads((FIXTURE / "analysis.json").read_text())
    for heading in (
        "Summary",
        "Configuration",
        "Model performance",
        "How to read the metrics",
        "Pre-training bias (data)",
        "Post-training bias (model)",
        "colour = Black",
        "sex = Female",
        "Threshold trade-off",
        "Feature attributions (Kernel SHAP)",
        "Local attributions",
        "Partial dependence",
    ):
        assert heading in whole, heading
    # the numbers: group sizes, facet d's confusion matrix, model performance, the ranked disparities
    assert "d: colour = Black 1,288 74.1% 92.3% 905 284 50 49 0.741 0.761 0.948 0.853 0.691" in whole
    assert "TP 4,279 · FP 834 · FN 55 · TN 58" in whole
    for w in model_warnings(doc):
        assert w[:60] in whole
    for _, t in largest_disparities(doc):
        assert t.split(":")[0][:50] in whole
    assert "four-fifths rule" in whole and "excludes the ideal value" in whole
    # every metric of every facet value, with its value
    post = doc["post_training_bias_metrics"]["facets"]["colour"][0]["metrics"]
    assert all(m["name"] in whole for m in post)
    assert "-36.56" in whole and "0.9264" in whole


def test_fonts_are_embedded_and_charts_are_vector(demo_pdf):
    reader = pypdf.PdfReader(str(demo_pdf))
    used = fonts(reader)
    assert used and all("BitstreamVeraSans" in name for name in used), sorted(used)
    for name, f in used.items():
        desc = f["/FontDescriptor"].get_object()
        assert "/FontFile2" in desc, name  # the TrueType program is in the file
    assert images(reader) == 0  # charts are paths and text, not pictures
    content = b"".join(p.get_contents().get_data() for p in reader.pages)
    assert content.count(b" re f") > 100  # filled rectangles: the bars and bands of the charts


@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm, pdftotext, pdffonts) not installed")
def test_poppler_reads_the_pdf_back(demo_pdf, tmp_path):
    out = subprocess.run(["pdffonts", str(demo_pdf)], capture_output=True, text=True, check=True).stdout
    rows = [ln.split() for ln in out.splitlines()[2:]]
    assert rows and all("BitstreamVeraSans" in r[0] for r in rows)
    assert all(r[-5] == "yes" for r in rows)  # the "emb" column
    text = subprocess.run(["pdftotext", "-layout", str(demo_pdf), "-"], capture_output=True, text=True).stdout
    assert "Model performance" in text and "1,288" in text and "excludes ideal" in text
    assert text.count("\f") > 1  # pages
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(demo_pdf), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) == text.count("\f")
    from PIL import Image

    reds = [_red_pixels(np.asarray(Image.open(p).convert("RGB")).astype(int)) for p in pages]
    assert max(reds) > 200  # the concern bars (and the DCR arrow) are drawn


def _red_pixels(img) -> int:
    return int(((img[..., 0] > 190) & (img[..., 1] < 80) & (img[..., 2] < 80)).sum())


def test_pages_render_to_images(demo_pdf):
    pdfium = pytest.importorskip("pypdfium2")
    pdf = pdfium.PdfDocument(str(demo_pdf))
    try:
        shots = [np.asarray(pdf[i].render(scale=0.7).to_pil().convert("RGB")).astype(int) for i in range(len(pdf))]
    finally:
        pdf.close()
    assert len(shots) > 1
    assert all(s.shape[1] > s.shape[0] for s in shots)  # A4 landscape
    assert sum(_red_pixels(s) for s in shots) > 500
    blue = sum(int(((s[..., 2] > 200) & (s[..., 0] < 80) & (s[..., 1] < 130)).sum()) for s in shots)
    assert blue > 500  # SHAP bars, fine bands, threshold curves


def test_tables_never_split_a_row_and_repeat_their_header():
    # one facet value with 60 metrics of three-line descriptions: the table runs over several pages
    metrics = [
        {
            "name": f"M{i:02d}",
            "description": f"start-{i:02d} " + "long words " * 20 + f"end-{i:02d}",
            "value": 0.01 * i,
            "ci_low": 0.01 * i - 0.02,
            "ci_high": 0.01 * i + 0.02,
        }
        for i in range(60)
    ]
    doc = {
        "pre_training_bias_metrics": {
            "label": "y",
            "label_value_or_threshold": "1",
            "facets": {"g": [{"value_or_threshold": "b", "metrics": metrics}]},
        }
    }
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(doc)))
    texts = [" ".join(p.extract_text().split()) for p in reader.pages]
    holding = [[i for i in range(60) if f"start-{i:02d}" in t or f"end-{i:02d}" in t] for t in texts]
    table_pages = [k for k, h in enumerate(holding) if h]
    assert len(table_pages) > 1
    for k in table_pages:
        t = texts[k]
        assert "metric value interval value vs ideal ideal reading" in t  # the header row, on every page
        for i in holding[k]:  # a row is whole on its page: its first and last words are there
            assert f"start-{i:02d}" in t and f"end-{i:02d}" in t, (k, i)
    seen = [i for h in holding for i in h]
    assert sorted(seen) == list(range(60))  # every row once: none split over two pages


def test_pdf_is_deterministic_and_replaces_glyphs_the_font_lacks():
    doc = json.loads((FIXTURE / "analysis.json").read_text())
    a = render_pdf(doc, title="A → B ● 検査")
    assert a == render_pdf(doc, title="A → B ● 検査")
    first = " ".join(pypdf.PdfReader(io.BytesIO(a)).pages[0].extract_text().split())
    assert "A -> B • ??" in first


def test_pdf_of_a_clarify_document(tmp_path):
    doc = json.loads((FIXTURE / "analysis.json").read_text())
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        doc[stage].pop("model_performance", None)
        doc[stage].pop("dataset", None)
        for entries in doc[stage]["facets"].values():
            for e in entries:
                e.pop("group_statistics")
                e.pop("threshold_curve", None)
    whole = " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(render_pdf(doc))).pages)
    assert "Post-training bias (model)" in whole and "Model performance" not in whole
    assert re.search(r"DCR Difference in Conditional Rejection \(DCR\) -36\.56", whole)
    assert FONT == "ClarionVera"


@pytest.mark.parametrize(
    "stats, curve",
    [
        ("x", None),
        ({"facet_d": [1], "facet_a": {}}, {"thresholds": "x"}),
        (
            {"facet_d": {"rows": "Infinity", "confusion_matrix": [1, 2]}, "facet_a": {"undefined": 3}},
            {"thresholds": [0.1, "x", None], "DI": ["Infinity", None, 0.5], "configured_threshold": "y"},
        ),
        ({"facet_d": {"rows": 3, "confusion_matrix": {"TP": "a"}}, "facet_a": {"rows": True}}, {"DPPL": [1]}),
    ],
)
def test_malformed_additions_still_make_a_pdf(stats, curve):
    doc = {
        "post_training_bias_metrics": {
            "label": "y",
            "label_value_or_threshold": "1",
            "model_performance": {"confusion_matrix": {"TP": None, "FP": "Infinity"}},
            "facets": {
                "g": [
                    {
                        "value_or_threshold": "<b>",
                        "metrics": [{"name": "DI", "value": 0.7, "ci_low": 0.6, "ci_high": 0.8}],
                        "group_statistics": stats,
                        "threshold_curve": curve,
                    }
                ]
            },
        }
    }
    pdf = render_pdf(doc)
    text = " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "g = <b>" in text and "DI" in text


def test_monitor_report_pdf_has_the_drift_section(tmp_path):
    import pandas as pd

    import clarion
    from clarion.cli import EXIT_OK, EXIT_VIOLATIONS, main

    rng = np.random.default_rng(0)

    def block(shift: float, n: int = 400) -> pd.DataFrame:
        sex = rng.choice(["F", "M"], n)
        y = (rng.random(n) < 0.5).astype(int)
        pred = np.where((sex == "F") & (rng.random(n) < shift), 0, (rng.random(n) < 0.5).astype(int))
        return pd.DataFrame({"sex": sex, "y": y, "pred": pred})

    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "predicted_label": "pred",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
        "methods": {"post_training_bias": {"methods": ["DPPL", "DI"]}},
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    clarion.analyze(cfg, block(0.0), output_dir=tmp_path / "base", progress=False)
    block(0.8).to_csv(tmp_path / "new.csv", index=False)
    args = ["monitor", "--baseline", str(tmp_path / "base" / "analysis.json"), "--data", str(tmp_path / "new.csv")]
    args += ["--config", str(tmp_path / "cfg.json"), "--output", str(tmp_path / "mon"), "--quiet"]
    assert main(args) == EXIT_VIOLATIONS
    md_text = (tmp_path / "mon" / "report.md").read_text()
    violations = md_text.count("| violation |")
    assert violations >= 1
    assert main(["report", str(tmp_path / "mon" / "analysis.json"), "-o", str(tmp_path / "again.pdf")]) == EXIT_OK
    for pdf in (tmp_path / "mon" / "report.pdf", tmp_path / "again.pdf"):
        whole = " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(str(pdf)).pages)
        assert "Drift against the baseline" in whole and "All new rows:" in whole
        assert "check where metric baseline baseline interval current current interval rule status" in whole
        assert whole.count("sex = F DPPL") + whole.count("sex = F DI") >= violations
