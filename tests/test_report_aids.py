"""Issue 17 items 3 and 8: the report's reading aids and presentation.

Bands per metric (DI's four-fifths rule), the legend and significance said in text, disparities
ranked comparably across metrics, the degenerate-model warning, group statistics and threshold
curves next to each facet's metrics (from clarion's additions to analysis.json; a Clarify document
has none and still renders), categorical PDPs as points, facet thresholds / indexes and encoded
feature names readable, n/a metrics without an empty chart, ``clarion report`` choosing the format
by extension, the job writing every format. The fixture ``tests/data/report_demo`` is the real
demo's output extended with the group statistics schema (computed with numpy from the demo's data
and model)."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.cli import EXIT_ERROR, EXIT_OK, main
from clarion.report import render_html, render_markdown, write_report
from clarion.report.model import (
    BANDS,
    band_of,
    build_report,
    disparity_score,
    facet_label,
    feature_label,
    largest_disparities,
    model_warnings,
    significant,
)

FIXTURE = Path(__file__).parent / "data" / "report_demo"


def demo_doc() -> dict:
    return json.loads((FIXTURE / "analysis.json").read_text())


def demo_config() -> dict:
    return json.loads((FIXTURE / "analysis_config.json").read_text())


def strip_clarion(doc: dict) -> dict:
    """The document as SageMaker Clarify writes it: without clarion's additions."""
    doc = copy.deepcopy(doc)
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        sec = doc[stage]
        sec.pop("model_performance", None)
        sec.pop("dataset", None)
        for entries in sec["facets"].values():
            for e in entries:
                e.pop("group_statistics", None)
                e.pop("threshold_curve", None)
    return doc


def section(html: str, heading: str) -> str:
    """The card whose heading is ``heading`` (first match) in the post-training part when asked."""
    start = html.index(f"<h3>{heading}</h3>")
    return html[start : html.index("</section>", start)]


# ---- bands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, band",
    [(1.0, "fine"), (0.8, "fine"), (1.25, "fine"), (0.79, "watch"), (1.26, "watch"), (0.6667, "watch")]
    + [(1.5, "watch"), (0.66, "concern"), (1.51, "concern"), (0.0, "concern"), (math.inf, "concern")],
)
def test_di_follows_the_four_fifths_rule(value, band):
    assert band_of("DI", value) == band


@pytest.mark.parametrize(
    "name, value, band",
    [
        ("DPPL", 0.05, "fine"),
        ("DPPL", -0.05, "fine"),
        ("DPPL", 0.07, "watch"),
        ("DPPL", -0.1, "watch"),
        ("DPPL", 0.2, "concern"),
        ("CI", 0.5, "watch"),
        ("CI", 0.83, "concern"),
        ("KL", 0.004, "fine"),
        ("KL", 0.03, "concern"),
        ("DCR", -36.56, "concern"),
        ("DCR", 0.2, "watch"),
        ("DPPL", None, "n/a"),
        ("DPPL", math.nan, "n/a"),
    ],
)
def test_each_metric_has_its_own_bands(name, value, band):
    assert band_of(name, value) == band


def test_every_registry_metric_has_documented_bands():
    from clarion.bias.registry import METRIC_INFO

    assert set(BANDS) == set(METRIC_INFO)
    doc = (Path(__file__).parents[1] / "docs" / "reports.md").read_text()
    for name in METRIC_INFO:
        assert re.search(rf"\b{name}\b", doc), name  # docs/reports.md's band table names every metric


# ---- significance and ranking ----------------------------------------------------------------------


def metric(name, value, lo=None, hi=None):
    return {"name": name, "description": name, "value": value, "ci_low": lo, "ci_high": hi}


def test_significance_is_the_interval_excluding_the_ideal():
    assert significant(metric("DI", 0.9, 0.85, 0.95)) is True
    assert significant(metric("DI", 0.9, 0.8, 1.05)) is False
    assert significant(metric("DPPL", 0.1)) is None  # no interval
    assert significant(metric("KL", 0.1, 0.05, 0.2)) is None  # a distance: its interval tests nothing


def test_ranking_is_comparable_across_metrics():
    # hand computation, in units of each metric's fine band:
    # DI [0.65, 0.75]: nearer end 0.75, |ln 0.75| / ln 1.25 = 1.289; DPPL [0.01, 0.07]: 0.01 / 0.05 = 0.2;
    # DCR = 5 with interval [-1, 11] holds 0: not significant; GE and CI are not ranked at all
    assert disparity_score(metric("DI", 0.7, 0.65, 0.75)) == (1, pytest.approx(math.log(0.75) / -math.log(1.25)))
    assert disparity_score(metric("DPPL", 0.04, 0.01, 0.07)) == (1, pytest.approx(0.2))
    assert disparity_score(metric("DCR", 5.0, -1.0, 11.0)) == (0, pytest.approx(50.0))
    doc = {
        "post_training_bias_metrics": {
            "label": "y",
            "label_value_or_threshold": "1",
            "facets": {
                "g": [
                    {
                        "value_or_threshold": "b",
                        "metrics": [
                            metric("DCR", 5.0, -1.0, 11.0),
                            metric("GE", 3.0, 2.9, 3.1),
                        ],
                    },
                    {"value_or_threshold": "c", "metrics": [metric("DPPL", 0.04, 0.01, 0.07)]},
                    {"value_or_threshold": "d", "metrics": [metric("DI", 0.7, 0.65, 0.75)]},
                ]
            },
        }
    }
    ranked = [t for _, t in largest_disparities(doc, k=5)]
    assert [t.split(" ")[0] for t in ranked] == ["DI", "DPPL", "DCR"]  # raw distance would put DCR first
    assert "(significant)" in ranked[0] and "(significant)" not in ranked[2]
    assert not any(t.startswith("GE") for t in ranked)


def test_demo_ranking_puts_few_row_metrics_after_supported_ones():
    ranked = [t for _, t in largest_disparities(demo_doc(), k=10)]
    # the demo's DCR for colour = Black divides by 99 vs 14 predicted negatives (issue 17): not first
    first_post = next(t for t in ranked if "post-training" in t)
    assert not first_post.startswith("DCR")
    # one line per facet value and stage, each with its groups' sizes
    assert len(ranked) == 4
    assert all("rows)" in t for t in ranked)
    black_pre = next(t for t in ranked if "colour = Black (pre-training" in t)
    assert "74.1% in d (1,288 rows) vs 85.8% in a (3,938 rows)" in black_pre


# ---- the degenerate model ---------------------------------------------------------------------------


def perf_doc(tp, fp, fn, tn):
    return {"post_training_bias_metrics": {"model_performance": {"confusion_matrix": dict(TP=tp, FP=fp, FN=fn, TN=tn)}}}


def test_degenerate_model_warnings():
    # the demo's model: predicts positive for (4279 + 834) / 5226 = 97.8% of rows; accuracy
    # (4279 + 58) / 5226 = 0.8299 against the majority class's (4279 + 55) / 5226 = 0.8293
    w = model_warnings(demo_doc())
    assert len(w) == 2
    assert "97.8% of rows (5,113 of 5,226)" in w[0] and "113 negative predictions" in w[0]
    assert "accuracy 0.830" in w[1] and "majority class (0.829" in w[1]
    assert model_warnings(perf_doc(400, 100, 100, 400)) == []  # accuracy 0.8, base rate 0.5, balanced
    assert len(model_warnings(perf_doc(40, 1, 10, 949))) == 1  # 95.9% predicted negative, accuracy 0.989 vs 0.95
    assert "negative class for 95.9%" in model_warnings(perf_doc(40, 1, 10, 949))[0]
    w = model_warnings(perf_doc(300, 200, 200, 300))  # accuracy 0.6 vs 0.5: fine; 50% positive: fine
    assert w == []
    w = model_warnings(perf_doc(500, 250, 50, 200))  # accuracy 0.7 vs majority 0.55 -> no; 75% positive -> no
    assert w == []
    w = model_warnings(perf_doc(545, 440, 5, 10))  # accuracy 0.555 vs 0.55: within 1 point
    assert len(w) == 2 and "within 1 point" in w[1]
    assert model_warnings(strip_clarion(demo_doc())) == []  # Clarify's document: nothing to say


# ---- the numbers next to each facet's metrics --------------------------------------------------------


def test_group_statistics_are_shown_next_to_each_facets_metrics():
    html = render_html(demo_doc(), config=demo_config())
    cards = html.split("<section class='card bias'>")[1:]
    assert len(cards) == 4  # two facet values, pre and post
    post_black = cards[2]
    assert post_black.startswith("<h3>colour = Black</h3><table class='groups'>")
    # facet d's confusion matrix and hand-computed rates: accuracy (905 + 49) / 1288, precision 905 / 1189,
    # recall 905 / 955, FPR 284 / 333, predicted positive (905 + 284) / 1288
    d_row = post_black.split("<tr>")[2].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", d_row)
    assert cells[1:12] == [
        "1,288",
        f"{(905 + 50) / 1288:.1%}",
        f"{(905 + 284) / 1288:.1%}",
        "905",
        "284",
        "50",
        "49",
        f"{(905 + 49) / 1288:.3g}",
        f"{905 / 1189:.3g}",
        f"{905 / 955:.3g}",
        f"{284 / 333:.3g}",
    ]
    # the model performance card and the degenerate warning in the summary
    assert "<h3>Model performance</h3>" in html and "TP 4,279 · FP 834 · FN 55 · TN 58" in html
    summary = section(html, "Summary")
    assert summary.count('<span class="warn">Warning: </span>') == 2
    # the same in Markdown
    text = render_markdown(demo_doc())
    assert "| d: colour = Black | 1,288 | 74.1% | 92.3% | 905 | 284 | 50 | 49 |" in text
    assert "**Warning:** The model is degenerate" in text


def test_undefined_group_rates_say_why():
    doc = demo_doc()
    g = doc["post_training_bias_metrics"]["facets"]["sex"][0]["group_statistics"]["facet_d"]
    g["precision"] = None
    g["undefined"] = {"precision": "no predicted positives"}
    html = render_html(doc)
    assert '<span class="err">n/a</span><span class="muted"> (no predicted positives)</span>' in html


def test_threshold_curves_are_drawn_with_the_configured_threshold_marked():
    doc = demo_doc()
    html = render_html(doc)
    assert html.count('<svg class="curve"') == 8  # DPPL, DI, RD, accuracy for each facet value
    curve = doc["post_training_bias_metrics"]["facets"]["colour"][0]["threshold_curve"]
    first = html[html.index('<svg class="curve"') :]
    first = first[: first.index("</svg>")]
    # x axis: thresholds 0.05 .. 0.95 over 40 .. 236 px; the configured 0.5 at 40 + 196 * 0.45 / 0.9 = 138
    assert curve["configured_threshold"] == 0.5
    mx = float(re.search(r'class="marker" x1="([\d.]+)"', first).group(1))
    assert mx == pytest.approx(40 + 196 * (0.5 - 0.05) / 0.9, abs=0.06)
    assert "configured threshold 0.5" in first
    # a document without curves draws none
    assert '<svg class="curve"' not in render_html(strip_clarion(doc))


def test_a_clarify_document_renders_without_the_additions():
    doc = strip_clarion(demo_doc())
    html = render_html(doc, config=demo_config())
    assert "<table class='groups'>" not in html and "Model performance" not in html
    assert html.count("<section class='card bias'>") == 4
    assert "How to read the metrics" in html  # the legend does not depend on the additions


# ---- legend and significance in text ----------------------------------------------------------------


def test_legend_explains_colours_and_significance_in_text():
    html = render_html(demo_doc())
    legend = section(html, "How to read the metrics")
    for band in ("fine", "watch", "concern"):
        assert f'<span class="band {band}">{band}</span>' in legend
    assert "four-fifths rule" in legend and "0.8 to 1.25" in legend
    assert "excludes the ideal value" in legend  # in text, not only in a tooltip
    # each value carries its band as a word and the flag says what it means
    post_black = html.split("<section class='card bias'>")[3]
    di_row = post_black.split("<b>DI</b>")[1].split("</tr>")[0]
    assert '<span class="band fine">fine</span>' in di_row  # DI 0.926 lies within 0.8 .. 1.25
    assert "● excludes ideal" in di_row  # [0.913, 0.943] excludes 1


# ---- presentation ----------------------------------------------------------------------------------


def test_na_metric_says_why_and_draws_no_chart():
    doc = demo_doc()
    m = doc["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"]
    m[0] = {"name": "AD", "description": "AD", "value": None, "error": "facet d has no rows"}
    html = render_html(doc)
    row = html.split("<section class='card bias'>")[4].split("<b>AD</b>")[1].split("</tr>")[0]
    assert "<svg" not in row and "n/a: facet d has no rows" in row


def test_categorical_pdp_is_points_and_numeric_pdp_is_a_line():
    html = render_html(demo_doc())
    cards = {c.split("</h3>")[0]: c for c in html.split("<section class='card pdp'><h3>")[1:]}
    assert set(cards) == {"checks", "employed", "colour"}
    assert "<polyline" in cards["checks"] and 'class="point"' not in cards["checks"]
    for cat in ("employed", "colour"):
        assert "<polyline" not in cards[cat] and cards[cat].count('class="point"') == 2
    assert ">0.858<" in cards["employed"]  # each category's value is written at its point


def test_config_shows_facet_thresholds_and_indexes_readably():
    doc = {
        "pre_training_bias_metrics": {
            "label": "y",
            "label_value_or_threshold": "1",
            "facets": {
                "age": [{"value_or_threshold": "(40, 91]", "metrics": [metric("CI", 0.2)]}],
                "1": [{"value_or_threshold": "1", "metrics": [metric("CI", 0.1)]}],
            },
        }
    }
    cfg = {
        "headers": ["y", "sex", "age"],
        "label": "y",
        "facet": [
            {"name_or_index": "age", "value_or_threshold": [40]},
            {"name_or_index": 1, "value_or_threshold": [1]},
        ],
        "methods": {"pre_training_bias": {}},
    }
    html = render_html(doc, config=cfg)
    config_row = section(html, "Configuration").split("<b>facet</b>")[1].split("</tr>")[0]
    assert "age &gt; 40; sex (column 1) = 1" in config_row
    assert "age = [40]" not in html and "1 = [1]" not in html
    assert "<h3>age &gt; 40</h3>" in html and "<h3>sex (column 1) = 1</h3>" in html
    assert facet_label("colour", "Black,White") == "colour ∈ {Black, White}"


@pytest.mark.parametrize(
    "column, labels, features, want",
    [
        ("checks_Yes", ["Yes"], [], "checks"),
        ("credit_score_label0", [], [], "credit_score"),
        ("age_group_label0", [], ["age", "age_group"], "age_group"),
        ("checks_Yes", ["No"], ["checks"], "checks"),  # the feature named in the data
        ("plain", ["Yes"], [], "plain"),
    ],
)
def test_encoded_feature_names_are_readable(column, labels, features, want):
    assert feature_label(column, labels, features) == want


def test_local_summary_labels_are_feature_names():
    local = pd.read_csv(FIXTURE / "explanations_shap" / "out.csv")
    html = render_html(demo_doc(), local_shap=local)
    card = section(html, "Local attributions")
    assert ">checks</text>" in card and "checks_Yes" not in card


# ---- the report model is one for every format --------------------------------------------------------


def test_html_and_markdown_rank_the_same_disparities():
    doc = demo_doc()
    report = build_report(doc)
    summary = next(s for s in report.sections if s.title == "Summary")
    texts = ["".join(p.text for p in it) for it in summary.blocks[0].items]
    for _, t in largest_disparities(doc):
        assert f"Largest disparity: {t}" in texts


def test_report_cli_chooses_the_format_by_extension(tmp_path, capsys):
    for p in FIXTURE.rglob("*"):
        if p.is_file():
            dst = tmp_path / p.relative_to(FIXTURE)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dst)
    a = tmp_path / "analysis.json"
    for name, head in (("r.html", b"<!DOCTYPE html>"), ("r.md", b"# Toronto"), ("r.pdf", b"%PDF-"), ("r.ipynb", b"{")):
        assert main(["report", str(a), "-o", str(tmp_path / name)]) == EXIT_OK
        assert (tmp_path / name).read_bytes().startswith(head), name
    capsys.readouterr()
    assert main(["report", str(a), "-o", str(tmp_path / "r.docx")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "cannot write a '.docx' file" in err and ".html, .htm, .md, .pdf, .ipynb" in err
    assert not (tmp_path / "r.docx").exists()


def test_missing_report_extra_is_named(tmp_path, capsys, monkeypatch):
    import clarion.report.formats as formats

    shutil.copy(FIXTURE / "analysis.json", tmp_path / "analysis.json")
    monkeypatch.setattr(formats, "_installed", lambda m: m not in ("svglib", "nbformat"))
    for name, module in (("r.pdf", "svglib"), ("r.ipynb", "nbformat")):
        assert main(["report", str(tmp_path / "analysis.json"), "-o", str(tmp_path / name)]) == EXIT_ERROR
        err = capsys.readouterr().err
        assert f"{module} is not installed" in err and "pip install 'clarion[report]'" in err
        assert not (tmp_path / name).exists()
    # the job still writes the HTML and Markdown, and says how to get the rest
    paths = write_report(tmp_path, demo_doc())
    assert set(paths) == {"html", "md"}


def test_job_writes_every_format_and_its_summary_says_so(tmp_path, monkeypatch):
    from clarion import analysis as A

    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"g": rng.choice(["a", "b"], n), "x": rng.normal(size=n)})
    df["y"] = (rng.random(n) < 0.5).astype(int)
    df["pred"] = (df["x"] > 0).astype(int)
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "predicted_label": "pred",
        "methods": {"post_training_bias": {"methods": ["DPPL", "DI", "AD"]}},
    }
    r = A.analyze(cfg, df, output_dir=tmp_path / "o", progress=False)
    assert {"report_html", "report_md", "report_pdf", "report_ipynb"} <= set(r.paths)
    assert (tmp_path / "o" / "report.pdf").read_bytes().startswith(b"%PDF-")
    nb = json.loads((tmp_path / "o" / "report.ipynb").read_text())
    assert nb["nbformat"] == 4 and any("analysis.json" in "".join(c["source"]) for c in nb["cells"])
    assert "not written" not in r.summary()

    import clarion.report.formats as formats

    monkeypatch.setattr(formats, "_installed", lambda m: m != "reportlab")
    r = A.analyze(cfg, df, output_dir=tmp_path / "o", progress=False, overwrite=True)
    assert "report_pdf" not in r.paths and not (tmp_path / "o" / "report.pdf").exists()  # the stale one is gone
    assert "report.pdf not written: pip install 'clarion[report]'" in r.summary()


# ---- clarion's additions are data too: any JSON there renders ------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.sampled_from(["Infinity", "-Infinity", "x", "<script>", ""])
)
_keys = st.sampled_from(
    ["rows", "weight", "observed_positive_rate", "predicted_positive_rate", "confusion_matrix", "TP", "FP"]
    + ["FN", "TN", "accuracy", "precision", "undefined", "roc_auc", "thresholds", "configured_threshold"]
    + ["DPPL", "DI", "RD", "facet_d", "facet_a", "label_positive_rate"]
)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5))


@settings(max_examples=60, deadline=None)
@given(stats=_json, curve=_json, perf=_json, where=st.sampled_from(["group_statistics", "threshold_curve", "both"]))
def test_any_json_in_clarions_additions_renders(stats, curve, perf, where):
    """What load_analysis does not check (keys Clarify does not define) cannot break a report: the
    renderers show what is well-formed and skip the rest."""
    doc = strip_clarion(demo_doc())
    e = doc["post_training_bias_metrics"]["facets"]["colour"][0]
    if where in ("group_statistics", "both"):
        e["group_statistics"] = stats
    if where in ("threshold_curve", "both"):
        e["threshold_curve"] = curve
    doc["post_training_bias_metrics"]["model_performance"] = perf
    html = render_html(doc)
    assert "<script" not in html  # a data string shown is escaped
    text = render_markdown(doc)
    assert "<" not in text
    model_warnings(doc)
    largest_disparities(doc)


def test_demo_report_reads_in_a_real_browser(tmp_path, browser):
    local = pd.read_csv(FIXTURE / "explanations_shap" / "out.csv")
    paths = write_report(tmp_path, demo_doc(), config=demo_config(), local_shap=local)
    dom = browser.dom(paths["html"])
    for text in ("How to read the metrics", "Model performance", "Threshold trade-off", "excludes ideal"):
        assert text in dom
    assert dom.count('<svg class="curve"') == 8 and dom.count('<table class="groups">') == 4
    img = browser.screenshot(paths["html"], tmp_path / "shot.png", width=1200, height=2200)
    # the summary's warning chips (white on #b91c1c), the watch bars (#d97706) and the fine band's
    # green shading (#dcfce7) are all on the first screen
    warn = (abs(img[..., 0] - 185) < 12) & (abs(img[..., 1] - 28) < 12) & (abs(img[..., 2] - 28) < 12)
    amber = (img[..., 0] > 200) & (img[..., 1] > 100) & (img[..., 1] < 160) & (img[..., 2] < 70)  # 85% opaque
    green = (abs(img[..., 0] - 220) < 6) & (abs(img[..., 1] - 252) < 4) & (abs(img[..., 2] - 231) < 6)
    assert warn.sum() > 300 and amber.sum() > 200 and green.sum() > 200
