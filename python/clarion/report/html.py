"""Render an ``analysis.json`` document (Clarify's or clarion's) as one self-contained HTML file
and as Markdown. No network fetches: styles are inline and charts are inline SVG. Every string
that came from data (column names, values, descriptions, errors) is escaped."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from clarion.bias.registry import METRIC_INFO
from clarion.report.image import has_images as _images_in
from clarion.report.image import image_section_html, image_section_markdown
from clarion.report.svg import (
    bars,
    esc,
    fmt,
    grid_label,
    interval_track,
    line_with_distribution,
    md,
    strip_plot,
)

__all__ = ["METRIC_GUIDE", "render_html", "render_markdown"]

#: name: (lowest, highest axis value drawn, ideal, one-line reading), from the metric registry
#: (:data:`clarion.bias.registry.METRIC_INFO`). Axes of unbounded metrics are clipped for drawing
#: only; the tables show the exact value.
METRIC_GUIDE: dict[str, tuple[float, float, float, str]] = {
    name: (*info["axis"], info["ideal"], info["reading"]) for name, info in METRIC_INFO.items()
}

STAGE_TITLES = {
    "pre_training_bias_metrics": "Pre-training bias (data)",
    "post_training_bias_metrics": "Post-training bias (model)",
}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111827;background:#f8fafc}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin-top:36px;border-bottom:2px solid #e5e7eb;padding-bottom:4px}
h3{font-size:16px;margin:22px 0 8px} .muted{color:#6b7280;font-size:13px}
section.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:14px 18px;margin:14px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f1f5f9;vertical-align:middle}
th{background:#f8fafc;font-weight:600} td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.err{color:#b91c1c;overflow-wrap:anywhere;white-space:normal}
.flag{color:#b91c1c;font-weight:600} .grid{display:flex;flex-wrap:wrap;gap:18px}
.summary li{margin:3px 0} code{background:#f1f5f9;padding:1px 4px;border-radius:3px}
"""


def _num(v: Any) -> float | None:
    """A value of analysis.json as a float: "Infinity" and the other strings the monitor reads
    (:data:`clarion.monitor.METRIC_STRINGS`), None for null / NaN."""
    if v is None:
        return None
    if isinstance(v, str):
        from clarion.monitor.documents import METRIC_STRINGS

        f = METRIC_STRINGS.get(v)
    else:
        f = float(v)
    return None if f is None or math.isnan(f) else f


def _guide(name: str) -> tuple[float, float, float, str]:
    return METRIC_GUIDE.get(name, (-1, 1, 0, ""))


def _bias_sections(doc: Mapping[str, Any]):
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        sec = doc.get(stage)
        if sec:
            yield stage, sec


def largest_disparities(doc: Mapping[str, Any], k: int = 3) -> list[tuple[float, str]]:
    found = []
    for stage, sec in _bias_sections(doc):
        for facet, entries in sec.get("facets", {}).items():
            for e in entries:
                for m in e.get("metrics", []):
                    v = _num(m.get("value"))
                    if v is None or math.isnan(v):
                        continue
                    lo, hi, ideal, _ = _guide(m["name"])
                    dist = abs(v - ideal) / ((hi - lo) / 2 or 1)
                    found.append(
                        (
                            dist,
                            f"{m['name']} = {fmt(v)} for {facet} = {e.get('value_or_threshold')} "
                            f"({STAGE_TITLES[stage].split(' (')[0].lower()})",
                        )
                    )
    found.sort(key=lambda t: -t[0])
    return found[:k]


def _metric_rows(metrics: list[Mapping[str, Any]]) -> str:
    rows = []
    for m in metrics:
        name = str(m.get("name"))
        lo, hi, ideal, reading = _guide(name)
        v = _num(m.get("value"))
        ci = None
        if m.get("ci_low") is not None and m.get("ci_high") is not None:
            ci = (_num(m["ci_low"]), _num(m["ci_high"]))
        flag = ""
        if ci is not None and ci[0] is not None and ci[1] is not None and not (ci[0] <= ideal <= ci[1]):
            flag = '<span class="flag" title="the interval excludes the ideal value">●</span>'
        value = f'<span class="err">n/a — {esc(m.get("error", "undefined"))}</span>' if v is None else esc(fmt(v))
        ci_txt = "" if ci is None else f"[{esc(fmt(ci[0]))}, {esc(fmt(ci[1]))}] {flag}"
        chart = interval_track(v, lo=lo, hi=hi, ideal=ideal, ci=ci, label=name)
        rows.append(
            f"<tr><td><b>{esc(name)}</b><br><span class='muted'>{esc(m.get('description', ''))}</span></td>"
            f"<td class='num'>{value}</td><td class='num'>{ci_txt}</td><td>{chart}</td>"
            f"<td class='num'>{esc(fmt(ideal))}</td><td class='muted'>{esc(reading)}</td></tr>"
        )
    return "".join(rows)


def render_html(
    analysis: Mapping[str, Any],
    *,
    title: str | None = None,
    config: Mapping[str, Any] | None = None,
    local_shap: Any = None,
    feature_values: Any = None,
    notes: list[str] | None = None,
    max_local_rows: int = 400,
) -> str:
    """Render ``analysis`` as one self-contained HTML page.

    Parameters
    ----------
    analysis : mapping
        An ``analysis.json`` document.
    title : str, optional
        Page title (default: ``config["methods"]["report"]["title"]`` or "Analysis Report").
    config : mapping, optional
        The analysis config; its summary is shown at the top.
    local_shap : pandas.DataFrame, optional
        Local attributions (``<feature>_<label>`` columns) for the beeswarm-style summary.
    feature_values : pandas.DataFrame, optional
        The explained rows, to colour the summary by feature value.
    notes : list of str, optional
        Extra lines for the summary (e.g. skipped rows).
    """
    from clarion import __version__
    from clarion.monitor.documents import load_analysis

    load_analysis(analysis)  # a malformed document: AnalysisError naming the key path
    if title is None:
        title = ((config or {}).get("methods", {}).get("report", {}) or {}).get("title") or "Analysis Report"

    out = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1><p class='muted'>clarion {esc(__version__)} · bias metrics and feature "
        f"attributions, compatible with SageMaker Clarify's analysis.json</p>",
    ]
    # summary
    items = []
    for _, text in largest_disparities(analysis):
        items.append(f"<li>Largest disparity: {esc(text)}</li>")
    shap = (analysis.get("explanations") or {}).get("kernel_shap") or {}
    for label, block in shap.items():
        g = block.get("global_shap_values", {})
        top = sorted(g.items(), key=lambda kv: -abs(kv[1]))[:3]
        if top:
            items.append(
                f"<li>Top features for {esc(label)}: "
                + ", ".join(f"{esc(k)} ({esc(fmt(v))})" for k, v in top)
                + "</li>"
            )
    for n in notes or []:
        items.append(f"<li>{esc(n)}</li>")
    if items:
        out.append(f"<section class='card summary'><h3>Summary</h3><ul>{''.join(items)}</ul></section>")
    if config:
        rows = []
        for key in (
            "dataset_type",
            "label",
            "label_values_or_threshold",
            "facet",
            "group_variable",
            "predicted_label",
            "probability_threshold",
        ):
            if key in config:
                v = config[key]
                if key == "facet":
                    v = "; ".join(
                        f"{f.get('name_or_index')}"
                        + (f" = {f.get('value_or_threshold')}" if f.get("value_or_threshold") else " (every value)")
                        for f in v
                    )
                rows.append(f"<tr><th>{esc(key)}</th><td>{esc(v)}</td></tr>")
        methods = ", ".join(k for k in (config.get("methods") or {}) if k != "report")
        rows.append(f"<tr><th>methods</th><td>{esc(methods)}</td></tr>")
        pred = config.get("predictor")
        if pred:
            rows.append(f"<tr><th>predictor</th><td>{esc(', '.join(f'{k}={v}' for k, v in pred.items()))}</td></tr>")
        out.append(f"<section class='card'><h3>Configuration</h3><table>{''.join(rows)}</table></section>")

    for stage, sec in _bias_sections(analysis):
        out.append(
            f"<h2>{esc(STAGE_TITLES[stage])}</h2><p class='muted'>label <code>{esc(sec.get('label'))}</code>, "
            f"positive when <code>{esc(sec.get('label_value_or_threshold'))}</code>. Each bar runs from the "
            f"metric's ideal value (green line) to its value; black whiskers are confidence intervals.</p>"
        )
        for facet, entries in sec.get("facets", {}).items():
            for e in entries:
                out.append(
                    f"<section class='card bias'><h3>{esc(facet)} = {esc(e.get('value_or_threshold'))}</h3>"
                    "<table><tr><th>metric</th><th>value</th><th>interval</th><th>value vs ideal</th>"
                    f"<th>ideal</th><th>reading</th></tr>{_metric_rows(e.get('metrics', []))}</table></section>"
                )
    if shap:
        out.append("<h2>Feature attributions (Kernel SHAP)</h2>")
        for label, block in shap.items():
            g = block.get("global_shap_values", {})
            items_sorted = sorted(g.items(), key=lambda kv: -abs(kv[1]))
            out.append(
                f"<section class='card shap'><h3>Global importance — {esc(label)}</h3>"
                f"<p class='muted'>expected value (mean model output over the baseline): "
                f"{esc(fmt(_num(block.get('expected_value'))))}</p>"
                + bars([k for k, _ in items_sorted], [float(v) for _, v in items_sorted], title=f"global SHAP {label}")
                + "</section>"
            )
        if local_shap is not None and len(local_shap):
            out.append(_local_summary(local_shap, feature_values, max_local_rows))
    out.append(image_section_html(analysis))
    pdp = (analysis.get("explanations") or {}).get("pdp") or []
    if pdp:
        out.append("<h2>Partial dependence</h2><div class='grid'>")
        for entry in pdp:
            name = entry.get("feature_name")
            if entry.get("error"):
                out.append(
                    f"<section class='card'><h3>{esc(name)}</h3><p class='err'>{esc(entry['error'])}</p></section>"
                )
                continue
            out.append(
                f"<section class='card pdp'><h3>{esc(name)}</h3>"
                + line_with_distribution(
                    entry.get("feature_values", []),
                    entry.get("model_predictions", []),
                    entry.get("data_distribution"),
                    title=f"PDP {name}",
                )
                + "<p class='muted'>line: mean model output with the feature set to each value; grey: share "
                "of rows per value</p></section>"
            )
        out.append("</div>")
    out.append("</main></body></html>")
    return "".join(out)


def _local_summary(local_shap: Any, feature_values: Any, max_rows: int) -> str:
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    def numeric(s: Any) -> bool:  # pandas 3 string columns are not numpy dtypes
        return is_numeric_dtype(s.dtype) and not is_bool_dtype(s.dtype)

    df = local_shap.iloc[:max_rows]
    cols = [c for c in df.columns if numeric(df[c])]
    order = sorted(cols, key=lambda c: -float(np.nanmean(np.abs(df[c].to_numpy(dtype=float)))))[:12]
    values = [df[c].to_numpy(dtype=float).tolist() for c in order]
    colours = None
    if feature_values is not None:
        fv = feature_values.iloc[:max_rows]
        colours = []
        for c in order:
            bases = [f for f in fv.columns if c == f or c.startswith(f"{f}_")]
            base = max(bases, key=len) if bases else None  # "age_group_label0" is age_group's, not age's
            if base is not None and numeric(fv[base]):
                x = fv[base].to_numpy(dtype=float)
                lo, hi = np.nanmin(x), np.nanmax(x)
                colours.append(((x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)).tolist())
            else:
                colours.append([math.nan] * len(fv))
    return (
        "<section class='card local'><h3>Local attributions</h3><p class='muted'>one dot per record "
        f"(first {len(df)}), x = its attribution; colour: feature value from low (blue) to high (red)</p>"
        + strip_plot(order, values, colours, title="local SHAP summary")
        + "</section>"
    )


def render_markdown(analysis: Mapping[str, Any], *, title: str = "Analysis Report") -> str:
    """The same tables as :func:`render_html`, as Markdown (for terminals and pull requests).

    Every string that came from data goes through :func:`clarion.report.svg.md`: Markdown
    punctuation escaped, ``<``/``>``/``&`` as entities, line breaks as spaces, so no value can
    inject markup or HTML, nor split a table cell or row."""
    from clarion.monitor.documents import load_analysis

    load_analysis(analysis)  # a malformed document: AnalysisError naming the key path
    lines = [f"# {md(title)}", ""]
    for stage, sec in _bias_sections(analysis):
        lines += [
            f"## {STAGE_TITLES[stage]}",
            "",
            f"label {md(sec.get('label'))}, positive when {md(sec.get('label_value_or_threshold'))}",
            "",
        ]
        for facet, entries in sec.get("facets", {}).items():
            for e in entries:
                lines += [
                    f"### {md(facet)} = {md(e.get('value_or_threshold'))}",
                    "",
                    "| metric | value | interval | ideal | description |",
                    "|---|---:|---|---:|---|",
                ]
                for m in e.get("metrics", []):
                    v = _num(m.get("value"))
                    val = f"n/a ({md(m.get('error') or 'undefined')})" if v is None else md(fmt(v))
                    ci = ""
                    if m.get("ci_low") is not None and m.get("ci_high") is not None:
                        ci = f"[{fmt(_num(m['ci_low']))}, {fmt(_num(m['ci_high']))}]"  # numbers only
                    lines.append(
                        f"| {md(m['name'])} | {val} | {ci} | {md(fmt(_guide(m['name'])[2]))} | "
                        f"{md(m.get('description') or '')} |"
                    )
                lines.append("")
    shap = (analysis.get("explanations") or {}).get("kernel_shap") or {}
    if shap:
        lines += ["## Feature attributions (Kernel SHAP)", ""]
        for label, block in shap.items():
            lines += [
                f"### {md(label)} (expected value {md(fmt(_num(block.get('expected_value'))))})",
                "",
                "| feature | global SHAP |",
                "|---|---:|",
            ]
            for k, v in sorted(block.get("global_shap_values", {}).items(), key=lambda kv: -abs(kv[1])):
                lines.append(f"| {md(k)} | {md(fmt(float(v)))} |")
            lines.append("")
    lines += [image_section_markdown(analysis)] if _images_in(analysis) else []
    pdp = (analysis.get("explanations") or {}).get("pdp") or []
    if pdp:
        lines += ["## Partial dependence", ""]
        for e in pdp:
            if e.get("error"):
                lines += [f"- {md(e.get('feature_name'))}: {md(e['error'])}"]
                continue
            preds = (e.get("model_predictions") or [[]])[0]
            pts = ", ".join(
                f"{md(grid_label(x))} → {md(fmt(_num(p), 3))}" for x, p in zip(e.get("feature_values", []), preds)
            )
            lines.append(f"- **{md(e.get('feature_name'))}**: {pts}")
        lines.append("")
    return "\n".join(lines)
