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
from clarion.report.model import (
    STAGE_TITLES,
    Bullets,
    Chart,
    ChartRow,
    Para,
    Report,
    Section,
    Span,
    Table,
    build_report,
    largest_disparities,
    model_warnings,
)
from clarion.report.svg import esc, fmt, grid_label, md

__all__ = [
    "METRIC_GUIDE",
    "largest_disparities",
    "render_html",
    "render_markdown",
    "render_report_html",
    "render_report_markdown",
    "with_images",
]

#: name: (lowest, highest axis value drawn, ideal, one-line reading), from the metric registry
#: (:data:`clarion.bias.registry.METRIC_INFO`). Axes of unbounded metrics are clipped for drawing
#: only; the tables show the exact value.
METRIC_GUIDE: dict[str, tuple[float, float, float, str]] = {
    name: (*info["axis"], info["ideal"], info["reading"]) for name, info in METRIC_INFO.items()
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
.warn{color:#fff;background:#b91c1c;padding:0 5px;border-radius:3px;font-weight:600}
.band{padding:0 6px;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}
.band.fine{background:#dbeafe;color:#1d4ed8} .band.watch{background:#fef3c7;color:#92400e}
.band.concern{background:#fee2e2;color:#b91c1c} .legend p{margin:6px 0;font-size:13px}
table.groups{margin-bottom:10px} table.groups td,table.groups th{white-space:nowrap}
.charts{gap:10px;margin-top:6px} section.pdp{max-width:440px}
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


# a span's style -> the markup around its text ("br" and unnamed styles apart, see _span)
_WRAP = {
    "b": ("<b>", "</b>"),
    "code": ("<code>", "</code>"),
    "flag": ('<span class="flag" title="the interval excludes the ideal value">', "</span>"),
    "fine": ('<span class="band fine">', "</span>"),
    "watch": ('<span class="band watch">', "</span>"),
    "concern": ('<span class="band concern">', "</span>"),
}


def _span(s: Span) -> str:
    style = s.style
    if style == "br":
        return "<br>"
    t = esc(s.text)
    if not style:
        return t
    wrap = _WRAP.get(style)
    if wrap is None:
        return f'<span class="{style}">{t}</span>'
    return wrap[0] + t + wrap[1]


def _cell(parts: list[Any]) -> str:
    return "".join([p.svg if isinstance(p, Chart) else _span(p) for p in parts])


def _block(b: Any) -> str:
    if isinstance(b, Para):
        cls = f" class='{b.cls}'" if b.cls else ""
        return f"<p{cls}>{''.join(_span(s) for s in b.parts)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{''.join(_span(s) for s in it)}</li>" for it in b.items) + "</ul>"
    if isinstance(b, Chart):
        return b.svg
    if isinstance(b, ChartRow):
        return "<div class='grid charts'>" + "".join(c.svg for c in b.charts) + "</div>"
    if isinstance(b, Table):
        cls = f" class='{b.cls}'" if b.cls else ""
        head = "".join(f"<th>{esc(h)}</th>" for h in b.header)
        numeric = b.numeric
        rows = "".join(
            [
                "<tr>"
                + "".join(
                    [
                        f"<td class='num'>{_cell(c)}</td>" if i in numeric else f"<td>{_cell(c)}</td>"
                        for i, c in enumerate(r)
                    ]
                )
                + "</tr>"
                for r in b.rows
            ]
        )
        return f"<table{cls}><tr>{head}</tr>{rows}</table>"
    if isinstance(b, Section):
        return _section(b)
    raise TypeError(f"report block {type(b).__name__}")


def _section(sec: Section) -> str:
    inner = "".join(_block(b) for b in sec.blocks)
    if sec.level == 2:
        body = f"<div class='grid'>{inner}</div>" if sec.grid else inner
        return f"<h2>{esc(sec.title)}</h2>{body}"
    cls = f"card {sec.cls}" if sec.cls else "card"
    return f"<section class='{cls}'><h3>{esc(sec.title)}</h3>{inner}</section>"


def render_report_html(report: Report) -> str:
    """A :class:`clarion.report.model.Report` as one self-contained HTML page."""
    out = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(report.title)}</title>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body><main>",
        f"<h1>{esc(report.title)}</h1><p class='muted'>{esc(report.subtitle)}</p>",
    ]
    out += [_section(s) for s in report.sections]
    out.append("</main></body></html>")
    return "".join(out)


def render_html(
    analysis: Mapping[str, Any],
    *,
    title: str | None = None,
    config: Mapping[str, Any] | None = None,
    local_shap: Any = None,
    feature_values: Any = None,
    notes: list[str] | None = None,
    max_local_rows: int = 400,
    image_dir: str = "",
) -> str:
    """Render ``analysis`` as one self-contained HTML page (the content of
    :func:`clarion.report.model.build_report`); an image job's heat maps are linked, from beside
    the page or under ``image_dir`` (a relative URL path to the analysis folder).

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
    from clarion.monitor.documents import load_analysis

    load_analysis(analysis)  # a malformed document: AnalysisError naming the key path
    report = build_report(
        analysis,
        title=title,
        config=config,
        local_shap=local_shap,
        feature_values=feature_values,
        notes=notes,
        max_local_rows=max_local_rows,
    )
    return with_images(render_report_html(report), analysis, image_dir)


def with_images(page: str, analysis: Mapping[str, Any], image_dir: str = "") -> str:
    """``page`` (a rendered report) with the image jobs' heat-map section
    (:func:`clarion.report.image.image_section_html`, links under ``image_dir``) at its end;
    unchanged without images."""
    images = image_section_html(analysis, image_dir)  # heat maps linked from the output folder
    if not images:
        return page
    return page.replace("</main></body></html>", images + "</main></body></html>", 1)


def _md_groups(facet: str, entry: Mapping[str, Any]) -> list[str]:
    """clarion's group statistics of a facet entry as a Markdown table (none for Clarify's)."""
    from clarion.report.model import facet_label, group_table

    t = group_table(entry, facet_label(facet, entry.get("value_or_threshold")))
    if t is None:
        return []
    out = ["| " + " | ".join(md(h) for h in t.header) + " |", "|" + "---|" * len(t.header)]
    for r in t.rows:
        out.append("| " + " | ".join(md("".join(p.text for p in c if isinstance(p, Span))) for c in r) + " |")
    return [*out, ""]


def render_markdown(analysis: Mapping[str, Any], *, title: str = "Analysis Report", image_dir: str = "") -> str:
    """The same tables as :func:`render_html`, as Markdown (for terminals and pull requests);
    heat maps linked under ``image_dir`` as there.

    Every string that came from data goes through :func:`clarion.report.svg.md`: Markdown
    punctuation escaped, ``<``/``>``/``&`` as entities, line breaks as spaces, so no value can
    inject markup or HTML, nor split a table cell or row."""
    from clarion.monitor.documents import load_analysis

    load_analysis(analysis)  # a malformed document: AnalysisError naming the key path
    return _markdown(
        analysis, title, image_dir, model_warnings(analysis), [t for _, t in largest_disparities(analysis)]
    )


def render_report_markdown(
    analysis: Mapping[str, Any], report: Report, *, title: str = "Analysis Report", image_dir: str = ""
) -> str:
    """:func:`render_markdown` of ``analysis`` (already validated) with the summary of ``report``
    (its :func:`~clarion.report.model.build_report`, whose warnings and largest disparities it
    reuses instead of ranking them again): the same text."""
    return _markdown(analysis, title, image_dir, report.warnings, report.disparities)


def _markdown(
    analysis: Mapping[str, Any], title: str, image_dir: str, warnings: list[str], disparities: list[str]
) -> str:
    lines = [f"# {md(title)}", ""]
    summary = [f"- **Warning:** {md(w)}" for w in warnings]
    summary += [f"- **Largest disparity:** {md(t)}" for t in disparities]
    if summary:
        lines += ["## Summary", "", *summary, ""]
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
                    *_md_groups(facet, e),
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
            if isinstance(block.get("global_top_shap_text"), Mapping):  # text jobs (report/text.py)
                from clarion.report.text import render_text_markdown

                lines += render_text_markdown({label: block["global_top_shap_text"]}).splitlines()[2:]
    lines += [image_section_markdown(analysis, image_dir)] if _images_in(analysis) else []
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
