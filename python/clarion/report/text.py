"""The report's text explanations: each explained record's text with its units highlighted by
attribution (red raises the explained output, blue lowers it; the stronger the colour, the larger
``|attribution|`` relative to the largest in the section), plus the top units of
``global_top_shap_text``. Every string that came from data is escaped."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from clarion.report.svg import esc, fmt, md

__all__ = ["MAX_RECORDS", "render_text_markdown", "render_text_section", "render_top_units", "top_units_by_column"]

#: records shown in the report (all of them are in ``explanations_shap/out.jsonl``)
MAX_RECORDS = 50

_CSS = (
    "<style>.txt{line-height:1.9;white-space:pre-wrap;overflow-wrap:anywhere;font-size:14px}"
    ".txt mark{border-radius:3px;padding:1px 0;color:inherit}</style>"
)


def _colour(v: float, scale: float) -> str:
    """Background of a unit: red for positive, blue for negative, alpha ∝ |v| / scale."""
    if not math.isfinite(v) or scale <= 0:
        return "transparent"
    a = min(1.0, abs(v) / scale) * 0.85
    return f"rgba(220,38,38,{a:.3f})" if v > 0 else f"rgba(37,99,235,{a:.3f})"


def _highlight(text: str, units: Sequence[tuple[str, int, float]], scale: float) -> str:
    """``text`` with each unit ``(unit text, start offset, value)`` wrapped in a coloured mark;
    the text between units is kept as it is."""
    out, pos = [], 0
    for unit, start, v in sorted(units, key=lambda u: u[1]):
        if start < pos or text[start : start + len(unit)] != unit:
            continue  # not where it says it is: never drawn over other text
        out.append(esc(text[pos:start]))
        out.append(f"<mark style='background:{_colour(v, scale)}' title='{esc(fmt(v))}'>{esc(unit)}</mark>")
        pos = start + len(unit)
    out.append(esc(text[pos:]))
    return "".join(out)


def render_text_section(
    records: Sequence[Mapping[str, Any]],
    texts: Sequence[Mapping[str, str]],
    labels: Sequence[Any],
    top: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    *,
    max_records: int = MAX_RECORDS,
) -> str:
    """The HTML section of text explanations.

    Parameters
    ----------
    records
        Per record, the object written to ``out.jsonl`` (``{"explanations": [{"feature_header",
        "feature_type", "attributions": [{"attribution": [...], "description": {"partial_text",
        "start_idx"}}]}]}``).
    texts
        Per record, ``{text column: the record's text}``.
    labels
        The explained outputs (the ``kernel_shap`` labels); the highlight uses the first.
    top
        ``{label: {column: {unit: value}}}`` (``global_top_shap_text``), shown as a table.
    """
    parts = [_CSS, "<h2>Text explanations</h2>"]
    label = labels[0] if labels else "label0"
    shown = list(zip(records, texts))[:max_records]
    vals = [
        abs(a["attribution"][0])
        for r, _ in shown
        for f in r["explanations"]
        if f["feature_type"] == "text"
        for a in f["attributions"]
        if a.get("attribution") and math.isfinite(a["attribution"][0])
    ]
    scale = max(vals) if vals else 0.0
    parts.append(
        f"<p class='muted'>units of text coloured by their attribution to <code>{esc(label)}</code> "
        f"(red raises it, blue lowers it; full colour = {esc(fmt(scale))}); hover a unit for its value. "
        f"{len(shown)} of {len(records)} records shown; all are in explanations_shap/out.jsonl.</p>"
    )
    if top:
        parts += [render_top_units(lab, cols) for lab, cols in top.items()]
    for i, (rec, txt) in enumerate(shown):
        body = []
        for f in rec["explanations"]:
            col = f["feature_header"]
            if f["feature_type"] == "text":
                units = [
                    (a["description"]["partial_text"], int(a["description"]["start_idx"]), float(a["attribution"][0]))
                    for a in f["attributions"]
                ]
                marked = _highlight(txt.get(col, ""), units, scale)
                body.append(f"<p class='muted'>{esc(col)}</p><div class='txt'>{marked}</div>")
            elif f["attributions"]:
                body.append(
                    f"<p class='muted'>{esc(col)}: attribution {esc(fmt(f['attributions'][0]['attribution'][0]))}</p>"
                )
        parts.append(f"<section class='card text'><h3>Record {i}</h3>{''.join(body)}</section>")
    return "".join(parts)


def top_units_by_column(top: Any) -> dict[str, dict[str, Any]]:
    """``global_top_shap_text`` as ``{column: {unit: value}}``. clarion writes one mapping per text
    column; a flat ``{unit: value}`` (one text column, as Clarify's documents may hold) is read as
    one column named "text". Entries of any other shape, and values that are not numbers, are left
    out (a report never fails on them)."""
    if not isinstance(top, Mapping):
        return {}

    def numbers(units: Mapping) -> dict[str, Any]:
        return {str(u): v for u, v in units.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    if top and all(not isinstance(v, Mapping) for v in top.values()):
        return {"text": numbers(top)}
    return {str(c): numbers(u) for c, u in top.items() if isinstance(u, Mapping)}


def render_top_units(label: Any, top: Mapping[str, Mapping[str, float]]) -> str:
    """HTML cards of one label's ``global_top_shap_text`` (``{column: {unit: value}}``): the top
    units of each text column with their global values."""
    parts = []
    for col, units in top_units_by_column(top).items():
        rows = "".join(f"<tr><td>{esc(u)}</td><td class='num'>{esc(fmt(v))}</td></tr>" for u, v in units.items())
        parts.append(
            f"<section class='card'><h3>Top units — {esc(col)}, {esc(label)}</h3>"
            f"<table><tr><th>unit</th><th>global value</th></tr>{rows}</table></section>"
        )
    return "".join(parts)


def render_text_markdown(top: Mapping[str, Mapping[str, Mapping[str, float]]] | None) -> str:
    """The Markdown report's text section: the top units per label and text column."""
    lines = ["## Text explanations", ""]
    for lab, cols in (top or {}).items():
        for col, units in top_units_by_column(cols).items():
            lines += [f"### Top units — {md(col)}, {md(lab)}", "", "| unit | global value |", "|---|---|"]
            lines += [f"| {md(u)} | {fmt(v)} |" for u, v in units.items()]
            lines.append("")
    return "\n".join(lines)
