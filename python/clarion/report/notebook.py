"""``report.ipynb``: a Jupyter notebook that rebuilds the report's tables and charts from the files of
an output folder (``analysis.json`` and the local SHAP values ``explanations_shap/out.csv``), with
pandas and matplotlib.

The notebook does not import clarion: it reads the files beside it, so it runs wherever pandas and
matplotlib do and a reviewer can check every number against ``analysis.json``. The metric bands of
:data:`clarion.report.model.BANDS` are written into it as data. Writing needs nbformat; running it
needs pandas, matplotlib and a Jupyter kernel (all in the ``report`` extra:
``pip install 'clarion[report]'``).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from clarion.report.model import BANDS, DEGENERATE_ACCURACY_MARGIN, DEGENERATE_SHARE

__all__ = ["build_notebook", "relative_path", "render_notebook"]


_SETUP = '''\
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

ANALYSIS = Path({analysis!r})  # relative to the notebook's folder
FOLDER = ANALYSIS.parent  # the output folder, with explanations_shap/ beside analysis.json
with open(ANALYSIS, encoding="utf-8") as fh:
    analysis = json.load(fh)

# per metric: (scale, fine, watch); |value - ideal| (|ln value| on the "log" scale) up to `fine` is
# fine, up to `watch` is watch, beyond is concern (docs/reports.md explains the choice)
BANDS = {bands}
IDEAL = {{"DI": 1.0}}  # every other metric's ideal value is 0
BAND_COLOURS = {{"fine": "#2563eb", "watch": "#d97706", "concern": "#dc2626", "n/a": "#9ca3af"}}
STAGES = {{
    "pre_training_bias_metrics": "Pre-training bias (data)",
    "post_training_bias_metrics": "Post-training bias (model)",
}}


def number(v):
    """A value of analysis.json as a float: "Infinity" strings as inf, null as NaN."""
    if isinstance(v, str):
        return {{"Infinity": math.inf, "-Infinity": -math.inf}}.get(v, math.nan)
    return math.nan if v is None or isinstance(v, bool) else float(v)


def band(name, v):
    if math.isnan(v):
        return "n/a"
    scale, fine, watch = BANDS.get(name, ("linear", 0.1, 0.3))
    d = (abs(math.log(v)) if v > 0 else math.inf) if scale == "log" else abs(v - IDEAL.get(name, 0.0))
    return "fine" if d <= fine else ("watch" if d <= watch else "concern")


print("analysis.json sections:", ", ".join(analysis))
'''

_METRICS = """\
rows = []
for stage, title in STAGES.items():
    for facet, entries in (analysis.get(stage) or {}).get("facets", {}).items():
        for e in entries:
            for m in e.get("metrics", []):
                v, lo, hi = number(m.get("value")), number(m.get("ci_low")), number(m.get("ci_high"))
                ideal = IDEAL.get(m["name"], 0.0)
                rows.append(
                    {
                        "stage": title,
                        "facet": facet,
                        "facet value": e.get("value_or_threshold"),
                        "metric": m["name"],
                        "value": v,
                        "ci_low": lo,
                        "ci_high": hi,
                        "significant": bool(lo == lo and hi == hi and not (lo <= ideal <= hi)),
                        "band": band(m["name"], v),
                        "error": m.get("error"),
                    }
                )
metrics = pd.DataFrame(rows)
metrics
"""

_GROUPS = """\
# clarion's numbers behind the metrics: per facet value, facet d (the group) and facet a (the rest)
group_rows = []
for stage, title in STAGES.items():
    for facet, entries in (analysis.get(stage) or {}).get("facets", {}).items():
        for e in entries:
            for side, g in (e.get("group_statistics") or {}).items():
                cm = g.get("confusion_matrix") or {}
                group_rows.append(
                    {
                        "stage": title,
                        "facet": facet,
                        "facet value": e.get("value_or_threshold"),
                        "group": side,
                        "rows": g.get("rows"),
                        "observed positive rate": g.get("observed_positive_rate"),
                        "predicted positive rate": g.get("predicted_positive_rate"),
                        **{k: cm.get(k) for k in ("TP", "FP", "FN", "TN")},
                        "accuracy": g.get("accuracy"),
                        "precision": g.get("precision"),
                        "recall": g.get("recall"),
                        "FPR": g.get("false_positive_rate"),
                        "ROC AUC": g.get("roc_auc"),
                    }
                )
groups = pd.DataFrame(group_rows)
if groups.empty:
    print("this analysis.json has no group statistics (SageMaker Clarify does not write them)")
groups
"""

_PERFORMANCE = """\
perf = (analysis.get("post_training_bias_metrics") or {{}}).get("model_performance")
if perf:
    cm = perf["confusion_matrix"]
    n = sum(cm.values())
    predicted_positive = (cm["TP"] + cm["FP"]) / n
    accuracy = (cm["TP"] + cm["TN"]) / n
    base = (cm["TP"] + cm["FN"]) / n
    print(f"rows {{n:,.0f}}; label positive rate {{base:.3f}}; predicted positive rate {{predicted_positive:.3f}}")
    print(f"accuracy {{accuracy:.3f}}; always predicting the majority class: {{max(base, 1 - base):.3f}}")
    one_class = max(predicted_positive, 1 - predicted_positive)
    if one_class >= {share}:
        print(f"WARNING: the model predicts one class for {{one_class:.1%}} of rows")
    if accuracy < max(base, 1 - base):
        print("WARNING: the model's accuracy is below always predicting the majority class")
    elif accuracy - max(base, 1 - base) < {margin}:
        print("WARNING: the model's accuracy is within 1 point of always predicting the majority class")
    display(pd.Series({{k: v for k, v in perf.items() if not isinstance(v, dict)}}, name="model performance"))
else:
    print("no model performance in this analysis.json")
"""

_METRIC_CHARTS = """\
# each facet value's metrics on their own scale: bars from the ideal, interval whiskers, band colours
for (title, facet, value), part in metrics.groupby(["stage", "facet", "facet value"], sort=False):
    part = part.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(part) + 1))
    for i, r in part.iterrows():
        ideal = IDEAL.get(r["metric"], 0.0)
        if math.isnan(r["value"]):
            ax.text(0, i, f"n/a: {r['error'] or 'undefined'}", va="center", fontsize=8, color="#6b7280")
            continue
        shown = float(np.clip(r["value"], -2, 2))
        ax.barh(i, shown - ideal, left=ideal, color=BAND_COLOURS[r["band"]])
        if not math.isnan(r["ci_low"]):
            lo, hi = np.clip([r["ci_low"], r["ci_high"]], -2, 2)
            ax.plot([lo, hi], [i, i], color="#111827", lw=1.5)
    ax.set_yticks(range(len(part)), [f"{m}{' ●' if s else ''}" for m, s in zip(part["metric"], part["significant"])])
    ax.axvline(0, color="#059669", lw=1)
    ax.invert_yaxis()
    ax.set_title(f"{title}: {facet} = {value}  (● interval excludes the ideal)", fontsize=10)
    plt.show()
"""

_CURVES = """\
# threshold trade-off curves (clarion's threshold_curve): the metrics if the score were cut elsewhere
drawn = 0
for facet, entries in (analysis.get("post_training_bias_metrics") or {}).get("facets", {}).items():
    for e in entries:
        curve = e.get("threshold_curve")
        if not curve:
            continue
        keys = [k for k in ("DPPL", "DI", "RD", "accuracy") if k in curve]
        fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.6))
        for ax, k in zip(np.atleast_1d(axes), keys):
            ax.plot(curve["thresholds"], [number(v) for v in curve[k]], color="#2563eb")
            ax.axvline(curve["configured_threshold"], color="#111827", ls="--", lw=1)
            if k != "accuracy":
                ax.axhline(IDEAL.get(k, 0.0), color="#059669", lw=1)
            ax.set_title(k, fontsize=9)
            ax.set_xlabel("threshold", fontsize=8)
        fig.suptitle(f"{facet} = {e.get('value_or_threshold')}", fontsize=10)
        fig.tight_layout()
        plt.show()
        drawn += 1
print(f"{drawn} facet value(s) with threshold curves")
"""

_SHAP = """\
shap_blocks = (analysis.get("explanations") or {}).get("kernel_shap") or {}
for label, block in shap_blocks.items():
    g = pd.Series(block["global_shap_values"], name=f"global SHAP ({label})").sort_values(key=abs)
    ax = g.plot.barh(figsize=(7, 0.35 * len(g) + 1), color="#2563eb")
    ax.set_title(f"Global importance — {label} (expected value {number(block.get('expected_value')):.4g})")
    plt.show()
    display(g.sort_values(key=abs, ascending=False).to_frame())
"""

_LOCAL = """\
local_path = FOLDER / "explanations_shap" / "out.csv"
if local_path.exists():
    local = pd.read_csv(local_path)
    local = local.select_dtypes("number")
    labels = list(shap_blocks)
    def feature(col):
        for lab in labels:
            if col.endswith(f"_{lab}"):
                return col[: -len(lab) - 1] if len(labels) == 1 else col
        return col
    local.columns = [feature(c) for c in local.columns]
    order = local.abs().mean().sort_values(ascending=False).index[:12]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(order) + 1))
    rng = np.random.default_rng(0)
    for i, c in enumerate(order):
        ax.scatter(local[c], i + rng.uniform(-0.25, 0.25, len(local)), s=4, alpha=0.5, color="#2563eb")
    ax.set_yticks(range(len(order)), order)
    ax.axvline(0, color="#6b7280", lw=1)
    ax.invert_yaxis()
    ax.set_title(f"Local attributions: one dot per record ({len(local):,} rows)")
    plt.show()
    # the global values of analysis.json are the mean |local value| (agg_method mean_abs) when every row was kept
    display(local.abs().mean().rename("mean |local SHAP|").sort_values(ascending=False).to_frame())
else:
    print("no local SHAP values beside analysis.json")
"""

_PDP = """\
for entry in (analysis.get("explanations") or {}).get("pdp") or []:
    name = entry.get("feature_name")
    if entry.get("error"):
        print(f"{name}: {entry['error']}")
        continue
    xs = entry["feature_values"]
    categorical = entry.get("data_type") == "categorical" or any(isinstance(x, (str, bool)) or x is None for x in xs)
    fig, ax = plt.subplots(figsize=(5, 3))
    for k, ys in enumerate(entry["model_predictions"]):
        ys = [number(y) for y in ys]
        if categorical:  # categories have no order: points, not a line
            ax.scatter([str(x) for x in xs], ys, s=40, zorder=3)
        else:
            ax.plot(xs, ys, marker="o", ms=3)
    ax.set_title(f"Partial dependence: {name}")
    ax.set_ylabel("mean model output")
    plt.show()
"""


def build_notebook(analysis: str = "analysis.json", *, title: str = "Analysis Report") -> Any:
    """The report notebook (an ``nbformat`` v4 notebook) for the ``analysis.json`` at the relative
    path ``analysis`` (from the notebook's folder).

    Raises
    ------
    ModuleNotFoundError
        nbformat is not installed (the message says ``pip install 'clarion[report]'``).
    """
    from clarion.report.formats import require_format

    require_format("ipynb")
    import nbformat
    from nbformat import v4

    bands = "{\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in BANDS.items()) + "}"
    bands = bands.replace("'", '"')
    md = v4.new_markdown_cell
    code = v4.new_code_cell
    heading = title.replace("\n", " ")
    cells = [
        md(
            f"# {heading}\n\nThis notebook rebuilds the report's tables and charts from `{analysis}` and the "
            "local SHAP values in `explanations_shap/out.csv` beside it, with pandas and matplotlib. "
            "It does not need clarion: every number comes from those files. Run it top to bottom."
        ),
        code(_SETUP.format(analysis=analysis, bands=bands)),
        md(
            "## Bias metrics\n\nOne row per metric and facet value. `significant`: the confidence interval "
            "excludes the ideal value (1 for DI, 0 otherwise). `band`: fine / watch / concern on the "
            "metric's own scale (DI: the four-fifths rule, 0.8 to 1.25 is fine)."
        ),
        code(_METRICS),
        md(
            "## The numbers behind the metrics\n\nGroup sizes, label and prediction rates, confusion "
            "matrices and accuracy per group (clarion's additions to analysis.json)."
        ),
        code(_GROUPS),
        code(_PERFORMANCE.format(share=DEGENERATE_SHARE, margin=DEGENERATE_ACCURACY_MARGIN)),
        md("## Metrics per facet value"),
        code(_METRIC_CHARTS),
        md("## Threshold trade-off"),
        code(_CURVES),
        md("## Feature attributions (Kernel SHAP)"),
        code(_SHAP),
        code(_LOCAL),
        md("## Partial dependence"),
        code(_PDP),
    ]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    return nb


def render_notebook(analysis: str = "analysis.json", *, title: str = "Analysis Report") -> str:
    """:func:`build_notebook` as the text of an ``.ipynb`` file.

    The notebook depends on ``analysis`` and ``title`` only (never on the results: it reads them
    from ``analysis.json`` when it runs), so its text is built and validated once per pair and
    kept (the last 64 pairs): every job writes the same ``report.ipynb`` for the same title."""
    from clarion.report.formats import require_format

    require_format("ipynb")
    return _notebook_text(str(analysis), str(title))


@functools.lru_cache(maxsize=64)
def _notebook_text(analysis: str, title: str) -> str:
    import nbformat

    text = nbformat.writes(build_notebook(analysis, title=title))
    return text if text.endswith("\n") else text + "\n"


def relative_path(analysis_path: str | os.PathLike, notebook_path: str | os.PathLike) -> str:
    """``analysis_path`` as the notebook at ``notebook_path`` opens it: relative to the notebook's
    folder, with ``/`` separators."""
    rel = os.path.relpath(os.path.abspath(analysis_path), os.path.dirname(os.path.abspath(notebook_path)))
    return rel.replace(os.sep, "/")
