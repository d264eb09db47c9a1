"""clarion.report: analysis.json writing, HTML/Markdown rendering, escaping, and a real browser."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from clarion.report import render_html, render_markdown, write_analysis_json, write_report

EVIL = "<script>alert(1)</script>"


def doc():
    return {
        "version": "1.0",
        "pre_training_bias_metrics": {
            "label": "approved",
            "label_value_or_threshold": "1",
            "facets": {
                EVIL: [
                    {
                        "value_or_threshold": "a&b",
                        "metrics": [
                            {
                                "name": "CI",
                                "description": "Class Imbalance (CI)",
                                "value": 0.18,
                                "ci_low": 0.12,
                                "ci_high": 0.24,
                            },
                            {"name": "DPL", "description": "DPL", "value": 0.07, "ci_low": -0.01, "ci_high": 0.15},
                            {"name": "CDDL", "description": "CDDL", "value": None, "error": "needs <group_variable>"},
                        ],
                    }
                ]
            },
        },
        "post_training_bias_metrics": {
            "label": "approved",
            "label_value_or_threshold": "1",
            "facets": {
                "sex": [
                    {
                        "value_or_threshold": "female",
                        "metrics": [
                            {"name": "DI", "description": "Disparate Impact (DI)", "value": "Infinity"},
                            {"name": "TE", "description": "TE", "value": "-Infinity"},
                        ],
                    }
                ]
            },
        },
        "explanations": {
            "kernel_shap": {"label0": {"global_shap_values": {EVIL: 0.2, "income": 0.1}, "expected_value": 0.4}},
            "pdp": [
                {
                    "feature_name": "income",
                    "data_type": "numerical",
                    "feature_values": [1.0, 2.0, 3.0],
                    "model_predictions": [[0.2, 0.4, 0.6]],
                    "data_distribution": [0.5, 0.3, 0.2],
                },
                {"feature_name": "text", "data_type": "free_text", "error": "not <supported>"},
            ],
        },
    }


def test_analysis_json_infinities_and_nan(tmp_path):
    d = {"x": [float("inf"), float("-inf"), float("nan"), np.float64(0.5), np.int64(3)]}
    write_analysis_json(tmp_path / "a.json", d)
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": ["Infinity", "-Infinity", None, 0.5, 3]}


def test_html_escapes_every_data_string():
    html = render_html(doc(), config={"label": EVIL, "methods": {"shap": {}}})
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "needs &lt;group_variable&gt;" in html and "not &lt;supported&gt;" in html
    assert "a&amp;b" in html
    assert "<script" not in html  # the page has no script at all
    assert "http://" not in html and "https://" not in html  # self-contained


def test_html_content():
    html = render_html(doc())
    assert html.count("<section class='card bias'>") == 2
    assert html.count('class="bar"') >= 6
    assert "∞" in html and "−∞" in html
    # CI's interval [0.12, 0.24] excludes the ideal 0: flagged; DPL's includes it: not flagged
    ci_row = html.split("<b>CI</b>")[1].split("</tr>")[0]
    dpl_row = html.split("<b>DPL</b>")[1].split("</tr>")[0]
    assert 'class="flag"' in ci_row and 'class="flag"' not in dpl_row


def test_markdown():
    md = render_markdown(doc(), title="T")
    assert "| CI | 0.18 | [0.12, 0.24] | 0 | Class Imbalance (CI) |" in md
    assert "| DI | ∞ |" in md
    assert r"n/a (needs &lt;group\_variable&gt;)" in md  # data strings escaped (issue 13 item 19)
    assert "<" not in md


def test_report_renders_in_a_real_browser(tmp_path, browser):
    rng = np.random.default_rng(0)
    local = pd.DataFrame(rng.normal(size=(50, 2)), columns=["income_label0", f"{EVIL}_label0"])
    paths = write_report(tmp_path, doc(), local_shap=local, feature_values=pd.DataFrame({"income": rng.random(50)}))
    dom = browser.dom(paths["html"])
    assert "Pre-training bias" in dom and "Partial dependence" in dom
    assert dom.count("<svg") >= 7  # 5 metric tracks (CDDL is n/a: text, no empty chart), SHAP, local, PDP
    assert "<script>alert(1)</script>" not in dom
    img = browser.screenshot(paths["html"], tmp_path / "shot.png", width=1200, height=1600)
    # charts are visible: the page has clearly coloured (blue bar / red arrow) pixels, not just text
    blue = (img[..., 2] > 200) & (img[..., 0] < 80) & (img[..., 1] < 130)
    red = (img[..., 0] > 190) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert blue.sum() > 500 and red.sum() > 100
