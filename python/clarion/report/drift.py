"""The drift section of the report that ``clarion monitor`` writes: the checks against the baseline,
and with time windows one time-series chart per compared value, the baseline marked.

The section is added to the ``report.html`` / ``report.md`` that the analysis wrote
(:func:`add_drift_section`), so the analysis part of the report stays the one
:mod:`clarion.report.html` renders. Every data-derived string is escaped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from clarion._io import atomic_write_text
from clarion.report.svg import PALETTE, axis_fraction, axis_range, esc, fmt, md

__all__ = ["add_drift_section", "drift_html", "drift_markdown", "time_series"]

OK_COLOUR, BAD_COLOUR, NA_COLOUR = "#2563eb", "#dc2626", "#9ca3af"
STAGE_NAMES = {"pre_training_bias_metrics": "pre-training", "post_training_bias_metrics": "post-training"}


def time_series(
    xs: Sequence[str],
    series: Sequence[Sequence[float]],
    *,
    baselines: Sequence[float | None] = (),
    status: Sequence[Sequence[str | None]] | None = None,
    series_names: Sequence[str] = (),
    baseline_label: str = "baseline",
    width: int = 440,
    height: int = 190,
    title: str = "",
) -> str:
    """Line chart over windows: one line per series, each series' baseline as a dashed line of its
    colour, points coloured by status (red = violation, grey = unchecked). Infinite values are
    drawn as triangles on the top/bottom edge; NaN leaves a gap."""
    pad_l, pad_r, pad_t, pad_b = 52, 12, 10, 34
    plot_h = height - pad_t - pad_b
    n = len(xs)
    ys = [v for s in series for v in s if v is not None and math.isfinite(v)]
    ys += [b for b in baselines if b is not None and math.isfinite(b)]
    lo, hi = axis_range(ys, margin=0.08)
    step = (width - pad_l - pad_r) / max(n, 1)

    def px(i: int) -> float:
        return pad_l + step * (i + 0.5)

    def py(v: float) -> float:
        return pad_t + axis_fraction(v, lo, hi) * plot_h

    parts = [
        (
            f'<svg class="drift" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{esc(title)}">'
        ),
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}" stroke="#6b7280"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 9}" font-size="10" text-anchor="end">{esc(fmt(hi, 3))}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" font-size="10" text-anchor="end">{esc(fmt(lo, 3))}</text>',
    ]
    for k, b in enumerate(baselines):
        if b is None or not math.isfinite(b):
            continue
        colour = PALETTE[k % len(PALETTE)]
        parts.append(
            f'<line class="baseline" x1="{pad_l}" y1="{py(b):.1f}" x2="{width - pad_r}" y2="{py(b):.1f}" '
            f'stroke="{colour}" stroke-dasharray="5,4" stroke-width="1.5"><title>{esc(baseline_label)}'
            f"{': ' + esc(series_names[k]) if k < len(series_names) else ''} = {esc(fmt(b))}</title></line>"
        )
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        name = series_names[k] if k < len(series_names) else ""
        segment: list[str] = []
        lines: list[list[str]] = []
        for i, v in enumerate(s):
            if v is not None and math.isfinite(v):
                segment.append(f"{px(i):.1f},{py(v):.1f}")
            elif segment:
                lines.append(segment)
                segment = []
        if segment:
            lines.append(segment)
        for seg in lines:
            parts.append(
                f'<polyline class="line" points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
            )
        for i, v in enumerate(s):
            st = status[k][i] if status is not None else None
            fill = BAD_COLOUR if st == "violation" else NA_COLOUR if st == "unchecked" else colour
            tip = f"{esc(name)} {esc(xs[i])}: {esc(fmt(v))}{' — ' + esc(st) if st else ''}"
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            if math.isinf(v):
                y = pad_t + 2 if v > 0 else pad_t + plot_h - 2
                d = 6 if v > 0 else -6
                parts.append(
                    f'<path class="pt {esc(st or "")}" d="M{px(i) - 4:.1f},{y + d:.1f} L{px(i):.1f},{y:.1f} '
                    f'L{px(i) + 4:.1f},{y + d:.1f} Z" fill="{fill}"><title>{tip}</title></path>'
                )
            else:
                r = 4 if st == "violation" else 3
                parts.append(
                    f'<circle class="pt {esc(st or "")}" cx="{px(i):.1f}" cy="{py(v):.1f}" r="{r}" '
                    f'fill="{fill}"><title>{tip}</title></circle>'
                )
    every = max(1, math.ceil(n / 6))
    for i in range(0, n, every):
        parts.append(
            f'<text x="{px(i):.1f}" y="{height - 18}" font-size="10" text-anchor="middle">{esc(_short(xs[i]))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(iso: str) -> str:
    s = str(iso)
    return s[:10] if s.endswith("T00:00:00") else s.replace("T", " ")[:16]


def _cell(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return fmt(float(v))


def _interval(iv: Any) -> str:
    if not iv:
        return "n/a"
    return f"[{_cell(iv[0])}, {_cell(iv[1])}]"


def rule_text(score: dict[str, Any]) -> str:
    """The rule that decided a check, in words (``score["rule"]`` of :mod:`clarion.monitor`)."""
    r = score.get("rule") or {}
    name = r.get("name")
    if name == "interval":
        conf = r.get("confidence")
        lvl = f" at {conf:.4%}" if isinstance(conf, (int, float)) else ""
        a = score.get("allowed")
        txt = f"interval{lvl}"
        if a:
            txt += f"; allowed {_interval(a)} from the {r.get('allowed_from')}"
        if r.get("widened"):
            txt += f"; current interval widened x1.414 to {_interval(r['widened'])}"
        return txt
    if name == "bounds":
        return f"bounds [{_cell(r.get('lower'))}, {_cell(r.get('upper'))}]"
    if name == "ndcg_threshold":
        return f"NDCG >= {_cell(r.get('threshold'))}"
    return "baseline (not farther from the ideal)" if name == "baseline" else (name or "n/a")


def check_line(score: dict[str, Any]) -> str:
    """One check on one line: where, metric, baseline, current [interval], rule, status (the CLI summary)."""
    if "stage" in score:
        where = f"{STAGE_NAMES.get(score['stage'], score['stage'])}: {score['facet']} = {score['facet_value']} "
        where += str(score["metric_name"])
        vals = (
            f"baseline {_cell(score['baseline'])} {_interval(score.get('baseline_interval'))}, "
            f"current {_cell(score['current'])} {_interval(score.get('current_interval'))}"
        )
    else:
        where = f"attribution: {score.get('label')} NDCG"
        vals = f"baseline 1, current {_cell(score.get('ndcg'))}"
    status = score["status"] + (f" ({score['reason']})" if score.get("reason") else "")
    return f"{status}: {where}: {vals}; rule {rule_text(score)}"


def _checks_table(scores: list[dict[str, Any]]) -> str:
    bias = [s for s in scores if "stage" in s]
    attr = [s for s in scores if "ndcg" in s]
    order = {"violation": 0, "unchecked": 1, "ok": 2}
    out = []
    if bias:
        rows = "".join(
            f"<tr class='{esc(s['status'])}'><td>{esc(STAGE_NAMES.get(s['stage'], s['stage']))}</td>"
            f"<td>{esc(s['facet'])} = {esc(s['facet_value'])}</td><td>{esc(s['metric_name'])}</td>"
            f"<td>{esc(_cell(s['baseline']))}</td><td>{esc(_interval(s.get('baseline_interval')))}</td>"
            f"<td>{esc(_cell(s['current']))}</td><td>{esc(_interval(s.get('current_interval')))}</td>"
            f"<td>{esc(rule_text(s))}</td>"
            f"<td>{esc(s['status'])}{': ' + esc(s['reason']) if s.get('reason') else ''}</td></tr>"
            for s in sorted(bias, key=lambda s: order.get(s["status"], 3))
        )
        out.append(
            "<table><tr><th>stage</th><th>facet</th><th>metric</th><th>baseline</th><th>baseline interval</th>"
            f"<th>current</th><th>current interval</th><th>rule</th><th>status</th></tr>{rows}</table>"
        )
    if attr:
        rows = "".join(
            f"<tr class='{esc(s['status'])}'><td>{esc(s['label'])}</td><td>{esc(_cell(s['ndcg']))}</td>"
            f"<td>{esc(fmt(s['threshold']))}</td><td>{esc(rule_text(s))}</td><td>{esc(s['status'])}"
            f"{': ' + esc(s['reason']) if s.get('reason') else ''}</td></tr>"
            for s in attr
        )
        out.append(
            "<table><tr><th>explained output</th><th>NDCG</th><th>threshold</th><th>rule</th><th>status</th></tr>"
            f"{rows}</table>"
        )
    return "".join(out)


_CAPTURE_TEXT = {
    "captures": "captured requests read",
    "matched": "joined a label",
    "rows": "rows checked",
    "unmatched_captures": "no label yet",
    "unmatched_labels": "labels with no capture",
    "captures_out_of_range": "outside --start/--end",
    "bad_records": "unreadable records",
    "torn_lines": "torn last lines",
    "duplicate_captures": "repeated captures (joined once)",
    "ambiguous_captures": "one id for different requests (not joined)",
    "duplicate_labels": "repeated labels (counted once)",
    "conflicting_labels": "ids with disagreeing labels (not joined)",
}


def drift_html(
    *,
    overall: Any = None,
    over_time: Any = None,
    baseline: str = "",
    window: str | None = None,
    capture: dict[str, int] | None = None,
) -> str:
    """The drift section as HTML cards.

    Parameters
    ----------
    overall : DriftResult, optional
        The checks of all the new rows.
    over_time : DriftOverTime, optional
        Per-window checks and the tidy table (one chart per compared value).
    baseline : str
        The baseline's name or path (shown).
    window : str, optional
        The window frequency (shown).
    capture : dict, optional
        With ``clarion monitor --capture``: :meth:`clarion.capture.Joined.summary`, the counts of
        what joined and what did not (shown, the non-zero ones, as a table).
    """
    out = ["<h2 id='drift'>Drift against the baseline</h2>"]
    n_bad = len(overall.violations) if overall is not None else 0
    flagged = over_time.flagged if over_time is not None else []
    items = [f"<li>baseline: <code>{esc(baseline)}</code></li>"] if baseline else []
    if overall is not None:
        items.append(f"<li>all new rows: <b>{n_bad}</b> violation{'s' if n_bad != 1 else ''}</li>")
    if over_time is not None:
        nw = len(over_time.results)
        items.append(
            f"<li>{nw} window{'s' if nw != 1 else ''}{' of ' + esc(window) if window else ''}: "
            + (
                f"<b>{len(flagged)}</b> with violations, first <b>{esc(_short(flagged[0]))}</b>"
                if flagged
                else "none with violations"
            )
            + "</li>"
        )
    out.append(
        f"<section class='card summary drift-summary'><h3>Summary</h3><ul>{''.join(items)}</ul>"
        "<p class='muted'>Bias, interval rule (clarion monitor's default): a violation when the current "
        "value's bootstrap interval, at a level corrected for the number of checks, does not overlap the "
        "allowed range (the baseline's interval, the --rules bounds, or the baseline value). Baseline rule "
        "(Clarify's): a violation when a metric is farther from its ideal value (1 for DI, 0 "
        "otherwise) than in the baseline, or outside the rule's bounds. Attributions: a violation when the "
        "NDCG of the current ranking of features against the baseline's falls below the threshold."
        "</p></section>"
    )
    if capture:
        rows = "".join(
            f"<tr><td>{esc(_CAPTURE_TEXT.get(k, k))}</td><td><code>{esc(k)}</code></td><td>{int(v):,}</td></tr>"
            for k, v in capture.items()
            if v or k in ("captures", "matched", "rows")
        )
        out.append(
            "<section class='card capture-join'><h3>Captured traffic joined with ground truth</h3>"
            f"<table><thead><tr><th>what</th><th>count</th><th>n</th></tr></thead><tbody>{rows}</tbody></table>"
            "</section>"
        )
    if overall is not None:
        out.append(
            f"<section class='card drift-checks'><h3>Checks on all new rows</h3>"
            f"{_checks_table(overall.scores)}</section>"
        )
    if over_time is not None and len(over_time.table):
        out.append(
            "<div class='drift-grid' style='display:grid;grid-template-columns:repeat(auto-fill,"
            "minmax(480px,1fr));gap:0 16px'>" + _time_series_cards(over_time) + "</div>"
        )
    return "".join(out)


def _time_series_cards(over_time: Any) -> str:
    t = over_time.table
    xs = sorted(over_time.results)
    keys = {x: i for i, x in enumerate(xs)}
    t = t.assign(_w=[ts.isoformat() for ts in t["window"]])
    out = []
    bias = t[t["check"] == "bias_drift_check"]
    for (stage, facet, value, metric), g in bias.groupby(["stage", "facet", "facet_value", "metric"], sort=False):
        vals: list[float] = [math.nan] * len(xs)
        status: list[str | None] = [None] * len(xs)
        for w, v, s in zip(g["_w"], g["value"], g["status"]):
            vals[keys[w]], status[keys[w]] = float(v), s
        base = g["baseline"].dropna()
        b = float(base.iloc[0]) if len(base) else None
        name = f"{metric} ({STAGE_NAMES.get(stage, stage)}), {facet} = {value}"
        out.append(
            f"<section class='card drift-series'><h3>{esc(name)}</h3>"
            + time_series(xs, [vals], baselines=[b], status=[status], series_names=[metric], title=name)
            + f"<p class='muted'>dashed: baseline {esc(fmt(b))}; red points: violations</p></section>"
        )
    attr = t[t["check"] == "feature_attribution_drift_check"]
    for label, g in attr.groupby("facet", sort=False):
        nd = g[g["metric"] == "NDCG"]
        vals = [math.nan] * len(xs)
        status = [None] * len(xs)
        for w, v, s in zip(nd["_w"], nd["value"], nd["status"]):
            vals[keys[w]], status[keys[w]] = float(v), s
        thr = next(
            (
                s["threshold"]
                for r in over_time.results.values()
                for s in r.scores
                if s.get("label") == label and "threshold" in s
            ),
            None,
        )
        name = f"NDCG of the attributions — {label}"
        out.append(
            f"<section class='card drift-series'><h3>{esc(name)}</h3>"
            + time_series(
                xs,
                [vals],
                baselines=[thr],
                status=[status],
                series_names=["NDCG"],
                baseline_label="threshold",
                title=name,
            )
            + f"<p class='muted'>dashed: threshold {esc(fmt(thr))}; red points: violations</p></section>"
        )
        feats = g[g["metric"] == "global_shap_value"]
        base_by_f = feats.groupby("facet_value", sort=False)["baseline"].first()
        top = base_by_f.abs().sort_values(ascending=False, kind="stable").index[: len(PALETTE)].tolist()
        series, names, bases = [], [], []
        for f in top:
            fv = feats[feats["facet_value"] == f]
            vals = [math.nan] * len(xs)
            for w, v in zip(fv["_w"], fv["value"]):
                vals[keys[w]] = float(v)
            series.append(vals)
            names.append(str(f))
            bases.append(float(base_by_f[f]) if math.isfinite(base_by_f[f]) else None)
        legend = "".join(
            f"<span style='color:{PALETTE[k % len(PALETTE)]}'>■</span> {esc(n)} " for k, n in enumerate(names)
        )
        name = f"Global SHAP values per window — {label}"
        out.append(
            f"<section class='card drift-series'><h3>{esc(name)}</h3>"
            + time_series(xs, series, baselines=bases, series_names=names, title=name)
            + f"<p class='muted'>{legend}— dashed: baseline values</p></section>"
        )
    return "".join(out)


def drift_markdown(
    *,
    overall: Any = None,
    over_time: Any = None,
    baseline: str = "",
    window: str | None = None,
    capture: dict[str, int] | None = None,
) -> str:
    """The drift section as Markdown: the capture join's counts (``capture``, as in
    :func:`drift_html`), the checks on all rows and the windows with violations; data strings
    escaped as in :func:`clarion.report.html.render_markdown`."""

    def cell(v: Any) -> str:
        return md(_cell(v))

    lines = ["", "## Drift against the baseline", ""]
    if baseline:
        lines.append(f"Baseline: {md(baseline)}")
        lines.append("")
    if capture:
        lines += ["Captured traffic joined with ground truth:", "", "| what | count | n |", "| --- | --- | --- |"]
        lines += [
            f"| {md(_CAPTURE_TEXT.get(k, k))} | `{k}` | {int(v):,} |"
            for k, v in capture.items()
            if v or k in ("captures", "matched", "rows")
        ]
        lines.append("")
    if overall is not None:
        lines += [
            f"All new rows: {len(overall.violations)} violation(s).",
            "",
            "| check | where | metric | baseline | baseline interval | current | current interval | rule | status |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for s in overall.scores:
            if "stage" in s:
                lines.append(
                    f"| bias ({STAGE_NAMES.get(s['stage'], s['stage'])}) | {cell(s['facet'])} = "
                    f"{cell(s['facet_value'])} | {cell(s['metric_name'])} | {cell(s['baseline'])} | "
                    f"{md(_interval(s.get('baseline_interval')))} | {cell(s['current'])} | "
                    f"{md(_interval(s.get('current_interval')))} | {md(rule_text(s))} | {cell(s['status'])} |"
                )
            else:
                lines.append(
                    f"| attribution | {cell(s['label'])} | NDCG | 1 (same ranking) | n/a | "
                    f"{cell(s['ndcg'])} | n/a | {md(rule_text(s))} | {cell(s['status'])} |"
                )
        lines.append("")
    if over_time is not None:
        flagged = over_time.flagged
        lines.append(
            f"{len(over_time.results)} window(s){' of ' + cell(window) if window else ''}; "
            + (f"{len(flagged)} with violations, first {md(flagged[0])}." if flagged else "none with violations.")
        )
        if flagged:
            lines += ["", "| window | violations |", "| --- | --- |"]
            for w in flagged:
                names = ", ".join(
                    sorted(
                        {
                            f"{v.get('facet', v.get('label'))}:{v['metric_name']}"
                            for v in over_time.results[w].violations
                        }
                    )
                )
                lines.append(f"| {md(w)} | {cell(names)} |")
        lines.append("")
    return "\n".join(lines)


def with_html_section(text: str, section: str, *, where: str = "report") -> str:
    """The HTML report ``text`` with ``section`` inserted at the end of its ``<main>`` (before
    ``</main>``); ValueError naming ``where`` when it has none."""
    at = text.rfind("</main>")
    if at < 0:
        raise ValueError(f"{where}: not a clarion report (no </main>)")
    return text[:at] + section + text[at:]


def with_md_section(text: str, section: str | None) -> str:
    """The Markdown report ``text`` with ``section`` appended (``text`` itself without one)."""
    return text.rstrip("\n") + "\n" + section + "\n" if section else text


def add_drift_section(
    html_path: str | os.PathLike, md_path: str | os.PathLike | None, *, html_section: str, md_section: str | None = None
) -> None:
    """Insert ``html_section`` at the end of the report's ``<main>`` (before ``</main>``) and append
    ``md_section`` to the Markdown report; both files rewritten atomically. (``clarion monitor``
    renders its report once with the section: :func:`clarion.report.write_report`.)"""
    with open(html_path, encoding="utf-8") as fh:
        text = fh.read()
    atomic_write_text(html_path, with_html_section(text, html_section, where=os.fspath(html_path)))
    if md_path is not None and md_section:
        with open(md_path, encoding="utf-8") as fh:
            md = fh.read()
        atomic_write_text(md_path, with_md_section(md, md_section))
