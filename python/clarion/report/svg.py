"""Tiny, dependency-free SVG charts for the self-contained HTML report.

Every string that reaches the SVG goes through :func:`esc`; numbers are formatted by the helpers.

Shapes: a generator given a list as ``shapes`` also appends to it what it draws, as
:func:`clarion.report.pdf.svg_ops` reads it back from the SVG text: first ``("svg", width,
height)``, then that function's ops in SVG order, with each paint the SVG's text (``"#2563eb"``,
``None`` for no stroke) where ``svg_ops`` has a reportlab colour. Every number is ``float`` of the
very text written into the SVG, so the two agree to the bit (``tests/test_report_pdf_ops.py``);
report.pdf draws the chart from them without parsing the SVG (the reading converts the paints and
declines shapes with a number that is not finite: those charts' SVG is read as before).
"""

from __future__ import annotations

import html
import math
import numbers
import re
from collections.abc import Sequence

__all__ = [
    "BAND_COLOURS",
    "bars",
    "curve_chart",
    "esc",
    "fmt",
    "grid_label",
    "interval_track",
    "line_with_distribution",
    "md",
    "strip_plot",
]

# Markdown punctuation that can open or close markup inline (escapes, code spans, emphasis, link and
# image brackets, table pipes, strikethrough, a heading's closing #s); ``<``, ``>``, ``&`` become
# entities. Line-start markup (-, +, =, >, 1.) needs no escape: a data string never starts a line of
# clarion's Markdown.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
_LINE_BREAK = re.compile(r"\r\n?|\n")

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2")

#: a metric's band -> (bar colour, shade of its region on the axis); see :mod:`clarion.report.model`
BAND_COLOURS = {
    "fine": ("#2563eb", "#dcfce7"),
    "watch": ("#d97706", "#fef3c7"),
    "concern": ("#dc2626", "#fee2e2"),
}


# (a text with none of these characters is its own escape: returned as it is, without the passes)
_HTML_SPECIAL = re.compile(r"[&<>\"']")
_MD_ANY = re.compile(r"[\\`*_\[\]|~#\r\n&<>]")


def esc(s: object) -> str:
    """HTML/SVG-escape any value (quotes included)."""
    t = s if type(s) is str else str(s)
    return html.escape(t, quote=True) if _HTML_SPECIAL.search(t) else t


def md(s: object) -> str:
    """Markdown-escape any value for inline text or a GFM table cell: Markdown punctuation
    backslash-escaped (``|`` included, so a cell cannot be split), ``&``, ``<`` and ``>`` as HTML
    entities (no inline HTML), line breaks as spaces (a row stays one line)."""
    t = s if type(s) is str else str(s)
    if not _MD_ANY.search(t):
        return t
    return html.escape(_MD_SPECIAL.sub(r"\\\1", _LINE_BREAK.sub(" ", t)), quote=False)


def grid_label(x: object) -> str:
    """A PDP grid value as shown: numbers formatted (3 digits), categories (strings, booleans,
    null) as they are."""
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return fmt(float(x), 3)
    return str(x)


def fmt(v: float | None, digits: int = 4) -> str:
    """Short human formatting: 4 significant digits, ±∞, n/a."""
    if type(v) is float:  # (the common case, as below without the generic tests)
        if v != v:
            return "n/a"
        a = abs(v)
        if a == math.inf:
            return "∞" if v > 0 else "−∞"
        if v == 0:
            return "0"
        return f"{v:.{digits - 1}e}" if a >= 1e5 or a < 1e-3 else f"{v:.{digits}g}"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def interval_track(
    value: float | None,
    *,
    lo: float,
    hi: float,
    ideal: float,
    ci: tuple[float, float] | None = None,
    width: int = 260,
    height: int = 26,
    label: str = "",
    colour: str | None = None,
    regions: Sequence[tuple[float, float, str]] = (),
    shapes: list | None = None,
) -> str:
    """One metric on its own axis [lo, hi]: the ideal value as a line, the value as a bar from the
    ideal, an optional confidence interval as an error bar; values beyond the axis are clipped
    and drawn with an arrow head.

    ``colour``: the bar's colour (default: by distance from ideal relative to the axis);
    ``regions``: ``(from, to, fill)`` value ranges shaded behind the axis (a metric's bands);
    ``shapes``: a list that receives the chart's shapes (see the module's note on shapes)."""
    pad = 8
    span = hi - lo
    add = shapes.append if shapes is not None else None

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return pad + (v - lo) / span * (width - 2 * pad)

    w_s, h_s = f"{width}", f"{height}"
    parts = [
        f'<svg class="track" width="{w_s}" height="{h_s}" viewBox="0 0 {w_s} {h_s}" role="img" '
        f'aria-label="{esc(label)}">'
    ]
    if add:
        add(("svg", float(w_s), float(h_s)))
    band_h = f"{height - 4}"
    for a, b, fill in regions:
        if math.isfinite(a) or math.isfinite(b):
            xa, xb = sorted((x(max(a, lo)), x(min(b, hi))))
            if xb > xa:
                xa_s, bw_s = f"{xa:.1f}", f"{xb - xa:.1f}"
                parts.append(f'<rect class="band" x="{xa_s}" y="2" width="{bw_s}" height="{band_h}" fill="{fill}"/>')
                if add:
                    add(("rect", float(xa_s), 2.0, float(bw_s), float(band_h), fill, None, 1.0, None))
    mid = f"{height / 2}"
    right = f"{width - pad}"
    xi = f"{x(ideal):.1f}"
    foot = f"{height - 3}"
    parts += [
        f'<line x1="{pad}" y1="{mid}" x2="{right}" y2="{mid}" stroke="#cbd5e1"/>',
        f'<line x1="{xi}" y1="3" x2="{xi}" y2="{foot}" stroke="#059669" '
        f'stroke-width="2"><title>ideal {fmt(ideal)}</title></line>',
    ]
    if add:
        add(("line", float(pad), float(mid), float(right), float(mid), "#cbd5e1", 1.0, None))
        add(("line", float(xi), 3.0, float(xi), float(foot), "#059669", 2.0, None))
    if value is not None and not math.isnan(value):
        x0, x1 = sorted((x(ideal), x(value)))
        far = abs(value - ideal) / (span / 2 if span else 1)
        if colour is None:
            colour = "#2563eb" if far < 0.1 else ("#d97706" if far < 0.3 else "#dc2626")
        x0_s, top, bw_s = f"{x0:.1f}", f"{height / 2 - 5}", f"{max(x1 - x0, 1.5):.1f}"
        parts.append(
            f'<rect class="bar" x="{x0_s}" y="{top}" width="{bw_s}" '
            f'height="10" fill="{colour}" opacity="0.85"><title>{esc(label)} = {esc(fmt(value))}</title></rect>'
        )
        if add:
            add(("rect", float(x0_s), float(top), float(bw_s), 10.0, colour, None, 1.0, None))
        if value > hi or value < lo:
            tip = f"{x(value):.1f}"
            d = 6 if value > hi else -6
            up = f"{height / 2 - 7}"
            parts.append(f'<path d="M{tip},{up} l{d},7 l{-d},7 z" fill="{colour}"/>')
            if add:  # the points as the path's relative moves add up
                px, py = float(tip), float(up)
                qx, qy = px + float(d), py + 7.0
                add(
                    (
                        "poly",
                        [("M", px, py), ("L", qx, qy), ("L", qx + float(-d), qy + 7.0)],
                        colour,
                        None,
                        1.0,
                        None,
                        True,
                    )
                )
    if ci is not None and all(c is not None and math.isfinite(c) for c in ci):
        a, b = f"{x(ci[0]):.1f}", f"{x(ci[1]):.1f}"
        lo5, hi5 = f"{height / 2 - 5}", f"{height / 2 + 5}"
        parts.append(
            f'<g class="ci" stroke="#111827" stroke-width="1.5"><line x1="{a}" y1="{mid}" '
            f'x2="{b}" y2="{mid}"/><line x1="{a}" y1="{lo5}" x2="{a}" '
            f'y2="{hi5}"/><line x1="{b}" y1="{lo5}" x2="{b}" '
            f'y2="{hi5}"/><title>interval [{fmt(ci[0])}, {fmt(ci[1])}]</title></g>'
        )
        if add:
            fa, fb, fm, f5, g5 = float(a), float(b), float(mid), float(lo5), float(hi5)
            add(("line", fa, fm, fb, fm, "#111827", 1.5, None))
            add(("line", fa, f5, fa, g5, "#111827", 1.5, None))
            add(("line", fb, f5, fb, g5, "#111827", 1.5, None))
    parts.append("</svg>")
    return "".join(parts)


def bars(
    names: Sequence[str],
    values: Sequence[float],
    *,
    width: int = 560,
    bar_height: int = 18,
    title: str = "",
    shapes: list | None = None,
) -> str:
    """Horizontal bar chart (sorted as given), signed values around a zero line. ``shapes``: a
    list that receives the chart's shapes (see the module's note on shapes)."""
    n = len(names)
    label_w = min(220, 12 + 7 * max((len(str(s)) for s in names), default=4))
    plot_w = width - label_w - 70
    height = n * (bar_height + 6) + 10
    vmax = max((abs(v) for v in values if math.isfinite(v)), default=1.0) or 1.0
    neg = any(v < 0 for v in values)
    zero = label_w + (plot_w / 2 if neg else 0)
    scale = (plot_w / 2 if neg else plot_w) / vmax
    if not math.isfinite(scale):  # values all below ~1e-306: the length as a fraction of the longest
        scale = None
    add = shapes.append if shapes is not None else None
    w_s, h_s = f"{width}", f"{height}"
    parts = [
        f'<svg class="bars" width="{w_s}" height="{h_s}" viewBox="0 0 {w_s} {h_s}" role="img" '
        f'aria-label="{esc(title)}">'
    ]
    if add:
        add(("svg", float(w_s), float(h_s)))
    label_x = f"{label_w - 6}"
    bar_h = f"{bar_height}"
    for i, (name, v) in enumerate(zip(names, values)):
        y = 5 + i * (bar_height + 6)
        w = (
            0.0
            if not math.isfinite(v)
            else abs(v) * scale
            if scale is not None
            else abs(v) / vmax * (plot_w / 2 if neg else plot_w)
        )
        x0 = zero - w if v < 0 else zero
        colour = PALETTE[1] if v < 0 else PALETTE[0]
        ty, name_s, value_s = f"{y + bar_height * 0.75:.1f}", esc(name), esc(fmt(v))
        x0_s, y_s, bw_s = f"{x0:.1f}", f"{y}", f"{max(w, 1):.1f}"
        parts.append(f'<text x="{label_x}" y="{ty}" text-anchor="end" font-size="12">{name_s}</text>')
        parts.append(
            f'<rect class="bar" x="{x0_s}" y="{y_s}" width="{bw_s}" height="{bar_h}" '
            f'fill="{colour}"><title>{name_s}: {value_s}</title></rect>'
        )
        tx = f"{(x0 + max(w, 1) + 4) if v >= 0 else (x0 - 4):.1f}"
        anchor = "start" if v >= 0 else "end"
        parts.append(f'<text x="{tx}" y="{ty}" font-size="11" text-anchor="{anchor}" fill="#374151">{value_s}</text>')
        if add:
            fy = float(ty)
            add(("text", float(label_x), fy, name_s, "end", False, 12.0, "black"))
            add(("rect", float(x0_s), float(y_s), float(bw_s), float(bar_h), colour, None, 1.0, None))
            add(("text", float(tx), fy, value_s, anchor, False, 11.0, "#374151"))
    zx = f"{zero:.1f}"
    parts.append(f'<line x1="{zx}" y1="0" x2="{zx}" y2="{h_s}" stroke="#6b7280"/></svg>')
    if add:
        add(("line", float(zx), 0.0, float(zx), float(h_s), "#6b7280", 1.0, None))
    return "".join(parts)


def strip_plot(
    names: Sequence[str],
    values: Sequence[Sequence[float]],
    colours: Sequence[Sequence[float]] | None,
    *,
    width: int = 560,
    row_height: int = 22,
    title: str = "",
    shapes: list | None = None,
) -> str:
    """Beeswarm-style summary: one row per feature, one dot per record at its local attribution,
    coloured from blue (low feature value) to red (high) when ``colours`` (in [0, 1]) are given.
    ``shapes``: a list that receives the chart's shapes (see the module's note on shapes)."""
    n = len(names)
    label_w = min(220, 12 + 7 * max((len(str(s)) for s in names), default=4))
    plot_w = width - label_w - 20
    height = n * row_height + 26
    finite = [v for row in values for v in row if math.isfinite(v)]
    vmax = max((abs(v) for v in finite), default=1.0) or 1.0
    zero = label_w + plot_w / 2
    scale = plot_w / 2 / vmax
    if not math.isfinite(scale):  # values all below ~1e-306: positions as fractions of the largest
        scale = None
    add = shapes.append if shapes is not None else None
    w_s, h_s = f"{width}", f"{height}"
    parts = [
        f'<svg class="strip" width="{w_s}" height="{h_s}" viewBox="0 0 {w_s} {h_s}" role="img" '
        f'aria-label="{esc(title)}">'
    ]
    if add:
        add(("svg", float(w_s), float(h_s)))
    label_x = f"{label_w - 6}"
    for i, name in enumerate(names):
        yc = 6 + i * row_height + row_height / 2
        ty, name_s = f"{yc + 4:.1f}", esc(name)
        parts.append(f'<text x="{label_x}" y="{ty}" text-anchor="end" font-size="12">{name_s}</text>')
        if add:
            add(("text", float(label_x), float(ty), name_s, "end", False, 12.0, "black"))
        row = values[i]
        for j, v in enumerate(row):
            if not math.isfinite(v):
                continue
            jitter = ((j * 2654435761) % 1000 / 1000 - 0.5) * (row_height - 8)
            if colours is not None and math.isfinite(colours[i][j]):
                c = min(max(colours[i][j], 0.0), 1.0)
                fill = f"rgb({int(37 + c * 183)},{int(99 - c * 61)},{int(235 - c * 197)})"
            else:
                fill = "#6b7280"
            cx = zero + (v * scale if scale is not None else v / vmax * (plot_w / 2))
            cx_s, cy_s = f"{cx:.1f}", f"{yc + jitter:.1f}"
            parts.append(f'<circle cx="{cx_s}" cy="{cy_s}" r="2.2" fill="{fill}" opacity="0.7"/>')
            if add:
                add(("circle", float(cx_s), float(cy_s), 2.2, fill, None, 1.0, None))
    zx, foot, base = f"{zero:.1f}", f"{height - 20}", f"{height - 5}"
    lo_s, hi_s, right = esc(fmt(-vmax)), esc(fmt(vmax)), f"{width - 20}"
    parts.append(f'<line x1="{zx}" y1="0" x2="{zx}" y2="{foot}" stroke="#6b7280"/>')
    parts.append(
        f'<text x="{label_w}" y="{base}" font-size="11" fill="#374151">{lo_s}</text>'
        f'<text x="{right}" y="{base}" font-size="11" text-anchor="end" fill="#374151">'
        f"{hi_s}</text></svg>"
    )
    if add:
        add(("line", float(zx), 0.0, float(zx), float(foot), "#6b7280", 1.0, None))
        add(("text", float(label_w), float(base), lo_s, "start", False, 11.0, "#374151"))
        add(("text", float(right), float(base), hi_s, "end", False, 11.0, "#374151"))
    return "".join(parts)


_FMAX = 1.7976931348623157e308


def axis_range(ys: Sequence[float], margin: float = 0.0) -> tuple[float, float]:
    """``(lo, hi)`` of an axis over the finite values ``ys``: ``hi > lo`` always (a single value, or
    values equal after rounding, get a band around them), widened by ``margin`` × span on each side
    and clamped to finite floats, so :func:`axis_fraction` never divides by zero or overflows."""
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if not hi / 2 - lo / 2 > 0:
        d = max(0.5, abs(lo) * 2.0**-40)
        lo, hi = max(lo - d, -_FMAX), min(hi + d, _FMAX)
    span = 2 * (hi / 2 - lo / 2)  # may be inf for values near ±max; the halves below are not
    if margin:
        lo, hi = max(lo - margin * span, -_FMAX), min(hi + margin * span, _FMAX)
    return lo, hi


def _finite_or_none(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def axis_fraction(v: float, lo: float, hi: float) -> float:
    """Where ``v`` lies from the top (0 at ``hi``, 1 at ``lo``), in halves so no difference overflows."""
    return (hi / 2 - v / 2) / (hi / 2 - lo / 2)


def line_with_distribution(
    xs: Sequence[object],
    series: Sequence[Sequence[float]],
    dist: Sequence[float] | None,
    *,
    series_names: Sequence[str] = (),
    width: int = 420,
    height: int = 220,
    title: str = "",
    categorical: bool = False,
    shapes: list | None = None,
) -> str:
    """PDP: model output per grid value (one line per output) above bars of the data distribution.

    ``categorical``: the grid values are categories, with no order between them: each output is
    drawn as points (with their value written above), not as a line joining the categories.
    ``shapes``: a list that receives the chart's shapes (see the module's note on shapes)."""
    pad_l, pad_r, pad_t = 46, 10, 10
    dist_h = 40 if dist else 0
    plot_h = height - pad_t - 30 - dist_h
    n = len(xs)
    # only finite numbers are drawn: None, NaN, ±inf and text such as "Infinity" leave a gap
    series = [[_finite_or_none(v) for v in s] for s in series]
    ys = [v for s in series for v in s if v is not None]
    lo, hi = axis_range(ys)
    step = (width - pad_l - pad_r) / max(n, 1)

    def px(i: int) -> float:
        return pad_l + step * (i + 0.5)

    def py(v: float) -> float:
        return pad_t + axis_fraction(v, lo, hi) * plot_h

    add = shapes.append if shapes is not None else None
    w_s, h_s, bottom, label_x, top_y = f"{width}", f"{height}", f"{pad_t + plot_h}", f"{pad_l - 4}", f"{pad_t + 9}"
    hi_s, lo_s = esc(fmt(hi, 3)), esc(fmt(lo, 3))
    parts = [
        f'<svg class="pdp" width="{w_s}" height="{h_s}" viewBox="0 0 {w_s} {h_s}" role="img" '
        f'aria-label="{esc(title)}">',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{bottom}" stroke="#6b7280"/>',
        f'<text x="{label_x}" y="{top_y}" font-size="10" text-anchor="end">{hi_s}</text>',
        f'<text x="{label_x}" y="{bottom}" font-size="10" text-anchor="end">{lo_s}</text>',
    ]
    if add:
        add(("svg", float(w_s), float(h_s)))
        add(("line", float(pad_l), float(pad_t), float(pad_l), float(bottom), "#6b7280", 1.0, None))
        add(("text", float(label_x), float(top_y), hi_s, "end", False, 10.0, "black"))
        add(("text", float(label_x), float(bottom), lo_s, "end", False, 10.0, "black"))
    for k, s in enumerate(series):
        name = series_names[k] if k < len(series_names) else f"output {k}"
        if categorical:
            colour = PALETTE[k % len(PALETTE)]
            for i, v in enumerate(s):
                if v is None:
                    continue
                cx, cy = f"{px(i):.1f}", f"{py(v):.1f}"
                xa, xb = f"{px(i) - step * 0.3:.1f}", f"{px(i) + step * 0.3:.1f}"
                parts.append(
                    f'<circle class="point" cx="{cx}" cy="{cy}" r="4.5" fill="{colour}">'
                    f"<title>{esc(name)} at {esc(grid_label(xs[i]))}: {esc(fmt(v))}</title></circle>"
                    f'<line x1="{xa}" y1="{cy}" x2="{xb}" '
                    f'y2="{cy}" stroke="{colour}" stroke-width="2"/>'
                )
                if add:
                    add(("circle", float(cx), float(cy), 4.5, colour, None, 1.0, None))
                    add(("line", float(xa), float(cy), float(xb), float(cy), colour, 2.0, None))
                if len(series) == 1:
                    tx, ty, value_s = f"{px(i) + step * 0.3 + 3:.1f}", f"{py(v) + 3.5:.1f}", esc(fmt(v, 3))
                    parts.append(f'<text x="{tx}" y="{ty}" font-size="10" fill="#374151">{value_s}</text>')
                    if add:
                        add(("text", float(tx), float(ty), value_s, "start", False, 10.0, "#374151"))
            continue
        at = [(f"{px(i):.1f}", f"{py(v):.1f}") for i, v in enumerate(s) if v is not None and math.isfinite(v)]
        pts = " ".join(f"{a},{b}" for a, b in at)
        parts.append(
            f'<polyline class="line" points="{pts}" fill="none" stroke="{PALETTE[k % len(PALETTE)]}" '
            f'stroke-width="2"><title>{esc(name)}</title></polyline>'
        )
        if add:
            line = [("M" if j == 0 else "L", float(a), float(b)) for j, (a, b) in enumerate(at)]
            add(("poly", line, "none", PALETTE[k % len(PALETTE)], 2.0, None, False))
    if dist:
        dmax = max(dist) or 1.0
        base = height - 30
        for i, d in enumerate(dist):
            h = d / dmax * (dist_h - 4)
            rx, ry, rw, rh = f"{px(i) - step * 0.4:.1f}", f"{base - h:.1f}", f"{step * 0.8:.1f}", f"{h:.1f}"
            parts.append(
                f'<rect x="{rx}" y="{ry}" width="{rw}" '
                f'height="{rh}" fill="#cbd5e1"><title>{esc(xs[i])}: {d:.1%} of rows</title></rect>'
            )
            if add:
                add(("rect", float(rx), float(ry), float(rw), float(rh), "#cbd5e1", None, 1.0, None))
    every = 1 if categorical else max(1, n // 6)
    foot = f"{height - 14}"
    for i in range(0, n, every):
        tx, label = f"{px(i):.1f}", esc(grid_label(xs[i]))
        parts.append(f'<text x="{tx}" y="{foot}" font-size="10" text-anchor="middle">{label}</text>')
        if add:
            add(("text", float(tx), float(foot), label, "middle", False, 10.0, "black"))
    parts.append("</svg>")
    return "".join(parts)


def curve_chart(
    xs: Sequence[float],
    ys: Sequence[object],
    *,
    marker: float | None = None,
    ideal: float | None = None,
    regions: Sequence[tuple[float, float, str]] = (),
    y_range: tuple[float, float] | None = None,
    width: int = 250,
    height: int = 150,
    title: str = "",
    colour: str = PALETTE[0],
    shapes: list | None = None,
) -> str:
    """One quantity across thresholds (a threshold trade-off curve): ``ys`` over ``xs`` as a line
    (None / non-finite values leave a gap), the configured threshold ``marker`` as a dashed
    vertical line, the ``ideal`` as a green horizontal line, ``regions`` ``(from, to, fill)``
    shaded, the y axis ``y_range`` (default: the values' range), the title above. ``shapes``: a
    list that receives the chart's shapes (see the module's note on shapes)."""
    pad_l, pad_r, pad_t, pad_b = 40, 14, 18, 22
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    pts = [(float(x), _finite_or_none(y)) for x, y in zip(xs, ys) if _finite_or_none(x) is not None]
    finite = [y for _, y in pts if y is not None]
    if y_range is not None:
        lo, hi = y_range  # values beyond it are drawn at its edge
    else:
        lo, hi = axis_range(finite + ([ideal] if ideal is not None else []), margin=0.08)
    x_lo, x_hi = axis_range([x for x, _ in pts] + ([marker] if marker is not None else []))

    def px(x: float) -> float:
        return pad_l + (1 - axis_fraction(x, x_lo, x_hi)) * pw

    def py(y: float) -> float:
        return pad_t + axis_fraction(min(max(y, lo), hi), lo, hi) * ph

    add = shapes.append if shapes is not None else None
    w_s, h_s, title_s = f"{width}", f"{height}", esc(title)
    parts = [
        f'<svg class="curve" width="{w_s}" height="{h_s}" viewBox="0 0 {w_s} {h_s}" role="img" aria-label="{title_s}">',
        f'<text x="{pad_l}" y="12" font-size="11" font-weight="bold">{title_s}</text>',
    ]
    if add:
        add(("svg", float(w_s), float(h_s)))
        add(("text", float(pad_l), 12.0, title_s, "start", True, 11.0, "black"))
    pw_s = f"{pw}"
    for a, b, fill in regions:
        ya, yb = sorted((py(max(a, lo)), py(min(b, hi))))
        if yb > ya:
            ya_s, bh_s = f"{ya:.1f}", f"{yb - ya:.1f}"
            parts.append(f'<rect class="band" x="{pad_l}" y="{ya_s}" width="{pw_s}" height="{bh_s}" fill="{fill}"/>')
            if add:
                add(("rect", float(pad_l), float(ya_s), float(pw_s), float(bh_s), fill, None, 1.0, None))
    axis_y, right, foot = f"{pad_t + ph}", f"{pad_l + pw}", f"{height - 8}"
    label_x, top_y, mid_x = f"{pad_l - 3}", f"{pad_t + 8}", f"{pad_l + pw / 2}"
    hi_s, lo_s, xlo_s, xhi_s = esc(fmt(hi, 3)), esc(fmt(lo, 3)), esc(fmt(x_lo, 3)), esc(fmt(x_hi, 3))
    parts += [
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{axis_y}" stroke="#6b7280"/>',
        f'<line x1="{pad_l}" y1="{axis_y}" x2="{right}" y2="{axis_y}" stroke="#6b7280"/>',
        f'<text x="{label_x}" y="{top_y}" font-size="9" text-anchor="end">{hi_s}</text>',
        f'<text x="{label_x}" y="{axis_y}" font-size="9" text-anchor="end">{lo_s}</text>',
        f'<text x="{pad_l}" y="{foot}" font-size="9" text-anchor="middle">{xlo_s}</text>',
        f'<text x="{right}" y="{foot}" font-size="9" text-anchor="middle">{xhi_s}</text>',
        f'<text x="{mid_x}" y="{foot}" font-size="9" text-anchor="middle" fill="#6b7280">threshold</text>',
    ]
    if add:
        fl, fa, fr, ff = float(pad_l), float(axis_y), float(right), float(foot)
        add(("line", fl, float(pad_t), fl, fa, "#6b7280", 1.0, None))
        add(("line", fl, fa, fr, fa, "#6b7280", 1.0, None))
        add(("text", float(label_x), float(top_y), hi_s, "end", False, 9.0, "black"))
        add(("text", float(label_x), fa, lo_s, "end", False, 9.0, "black"))
        add(("text", fl, ff, xlo_s, "middle", False, 9.0, "black"))
        add(("text", fr, ff, xhi_s, "middle", False, 9.0, "black"))
        add(("text", float(mid_x), ff, "threshold", "middle", False, 9.0, "#6b7280"))
    if ideal is not None and lo <= ideal <= hi:
        iy = f"{py(ideal):.1f}"
        parts.append(
            f'<line class="ideal" x1="{pad_l}" y1="{iy}" x2="{right}" y2="{iy}" '
            f'stroke="#059669" stroke-width="1.5"><title>ideal {esc(fmt(ideal))}</title></line>'
        )
        if add:
            add(("line", float(pad_l), float(iy), float(right), float(iy), "#059669", 1.5, None))
    run: list[str] = []
    runs = []
    for x, y in pts:
        if y is None:
            if run:
                runs.append(run)
            run = []
        else:
            run.append((f"{px(x):.1f}", f"{py(y):.1f}"))
    if run:
        runs.append(run)
    for r in runs:
        if len(r) == 1:
            cx, cy = r[0]
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
            if add:
                add(("circle", float(cx), float(cy), 2.0, colour, None, 1.0, None))
        else:
            points = " ".join(f"{a},{b}" for a, b in r)
            parts.append(f'<polyline class="line" points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
            if add:
                line = [("M" if j == 0 else "L", float(a), float(b)) for j, (a, b) in enumerate(r)]
                add(("poly", line, "none", colour, 2.0, None, False))
    if marker is not None and math.isfinite(marker):
        mx = f"{px(marker):.1f}"
        parts.append(
            f'<line class="marker" x1="{mx}" y1="{pad_t}" x2="{mx}" y2="{axis_y}" stroke="#111827" '
            f'stroke-dasharray="4,3"><title>configured threshold {esc(fmt(marker))}</title></line>'
        )
        if add:
            add(("line", float(mx), float(pad_t), float(mx), float(axis_y), "#111827", 1.0, [4.0, 3.0]))
        at = min(range(len(pts)), key=lambda i: abs(pts[i][0] - marker), default=None)
        if at is not None and pts[at][1] is not None and abs(pts[at][0] - marker) < 1e-9:
            cy = f"{py(pts[at][1]):.1f}"
            parts.append(f'<circle cx="{mx}" cy="{cy}" r="3.5" fill="#111827"/>')
            if add:
                add(("circle", float(mx), float(cy), 3.5, "#111827", None, 1.0, None))
    parts.append("</svg>")
    return "".join(parts)
