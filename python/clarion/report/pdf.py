"""``report.pdf``: the report of :func:`clarion.report.model.build_report` as a paginated PDF.

Made with reportlab (its platypus layout engine) and svglib:

* the content is the same :class:`~clarion.report.model.Report` the HTML page renders;
* fonts are embedded: Bitstream Vera (regular, bold, italic), the TrueType family reportlab ships
  with itself, so no system font is needed and every reader shows the same glyphs (a character
  Vera lacks is replaced, see :data:`GLYPH_SUBSTITUTES`);
* tables repeat their header row on every page and split only between rows;
* charts are vector graphics: the report's own SVG charts converted by svglib into reportlab
  drawings, so they are the HTML's charts, not screenshots of them.

reportlab and svglib are the ``report`` extra (``pip install 'clarion[report]'``); without them
:func:`render_pdf` raises :class:`ModuleNotFoundError` saying so.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from clarion.report.model import Bullets, Chart, ChartRow, Para, Picture, Report, Section, Span, Table, build_report

__all__ = ["FONT", "GLYPH_SUBSTITUTES", "render_pdf", "render_report_pdf"]

#: the embedded font family's name in the PDF
FONT = "ClarionVera"
#: characters the report uses that Vera has no glyph for -> what is drawn instead
GLYPH_SUBSTITUTES = {"●": "•", "→": "->", "∈": "in", "⚠": "!", "✓": "v"}

_COLOURS = {
    "muted": "#6b7280",
    "err": "#b91c1c",
    "flag": "#b91c1c",
    "warn": "#b91c1c",
    "code": "#1f2937",
    "fine": "#1d4ed8",
    "watch": "#92400e",
    "concern": "#b91c1c",
}
_BACKS = {"fine": "#dbeafe", "watch": "#fef3c7", "concern": "#fee2e2", "code": "#f1f5f9"}


def _require() -> None:
    from clarion.report.formats import require_format

    require_format("pdf")


def _register_fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    import reportlab

    here = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    for suffix, file, bold, italic in (
        ("", "Vera.ttf", 0, 0),
        ("-Bold", "VeraBd.ttf", 1, 0),
        ("-Italic", "VeraIt.ttf", 0, 1),
        ("-BoldItalic", "VeraBI.ttf", 1, 1),
    ):
        pdfmetrics.registerFont(TTFont(FONT + suffix, os.path.join(here, file)))
        addMapping(FONT, bold, italic, FONT + suffix)


class _Glyphs:
    """Replaces characters the embedded font cannot draw."""

    def __init__(self) -> None:
        from reportlab.pdfbase import pdfmetrics

        self.cmap = pdfmetrics.getFont(FONT).face.charToGlyph

    def __call__(self, text: str) -> str:
        if all(ord(c) in self.cmap or c in "\n\t" for c in text):
            return text
        out = []
        for c in text:
            if ord(c) in self.cmap or c in "\n\t":
                out.append(c)
            else:
                sub = GLYPH_SUBSTITUTES.get(c, "?")
                out.append(sub if all(ord(x) in self.cmap for x in sub) else "?")
        return "".join(out)


class _Renderer:
    def __init__(self, width: float) -> None:
        from reportlab.lib.styles import ParagraphStyle

        _register_fonts()
        self.glyphs = _Glyphs()
        self.width = width
        base = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11)
        self.styles = {
            "title": ParagraphStyle("title", parent=base, fontName=FONT + "-Bold", fontSize=18, leading=22),
            "h2": ParagraphStyle(
                "h2", parent=base, fontName=FONT + "-Bold", fontSize=14, leading=18, spaceBefore=12, spaceAfter=4
            ),
            "h3": ParagraphStyle(
                "h3", parent=base, fontName=FONT + "-Bold", fontSize=11, leading=14, spaceBefore=10, spaceAfter=4
            ),
            "body": ParagraphStyle("body2", parent=base, spaceAfter=4),
            "muted": ParagraphStyle("muted", parent=base, textColor="#6b7280", spaceAfter=4),
            "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5),
            "head": ParagraphStyle("head", parent=base, fontName=FONT + "-Bold", fontSize=7.5, leading=9.5),
            "bullet": ParagraphStyle("bullet", parent=base, leftIndent=12, bulletIndent=2, spaceAfter=2),
        }

    # -- text --------------------------------------------------------------------------------------
    def markup(self, spans: list[Span]) -> str:
        out = []
        for s in spans:
            if s.style == "br":
                out.append("<br/>")
                continue
            t = escape(self.glyphs(s.text))
            if s.style == "b":
                t = f"<b>{t}</b>"
            elif s.style in ("flag", "warn"):
                t = f'<font color="{_COLOURS[s.style]}"><b>{t}</b></font>'
            elif s.style in _BACKS:
                t = f'<font color="{_COLOURS[s.style]}" backColor="{_BACKS[s.style]}"><b>{t}</b></font>'
                if s.style == "code":
                    t = t.replace("<b>", "").replace("</b>", "")
            elif s.style in _COLOURS:
                t = f'<font color="{_COLOURS[s.style]}">{t}</font>'
            out.append(t)
        return "".join(out)

    def para(self, spans: list[Span], style: str = "body") -> Any:
        from reportlab.platypus import Paragraph

        return Paragraph(self.markup(spans), self.styles[style])

    # -- charts ------------------------------------------------------------------------------------
    def drawing(self, chart: Chart, max_width: float) -> Any:
        from reportlab.graphics.shapes import Drawing, Group, String
        from svglib.svglib import svg2rlg

        d = svg2rlg(io.BytesIO(chart.svg.encode("utf-8")))
        if d is None:  # not reachable for the report's own SVG; keep the page whole regardless
            return self.para([Span(f"[chart: {chart.title}]", "muted")])

        def fix(node: Any) -> None:
            if isinstance(node, String):
                bold = "Bold" in (node.fontName or "")
                node.fontName = FONT + ("-Bold" if bold else "")
                node.text = self.glyphs(node.text)
            if isinstance(node, (Group, Drawing)):
                for c in node.contents:
                    fix(c)

        fix(d)
        d.initialFontName = FONT  # the drawing's default font (reportlab's is Helvetica, not embedded)
        scale = min(1.0, max_width / d.width) if d.width else 1.0
        if scale < 1.0:
            d.width, d.height = d.width * scale, d.height * scale
            d.scale(scale, scale)
        return d

    # -- blocks ------------------------------------------------------------------------------------
    def table(self, t: Table) -> Any:
        from reportlab.lib import colors
        from reportlab.platypus import Table as RLTable
        from reportlab.platypus import TableStyle

        n = len(t.header)
        rel = t.widths if t.widths and len(t.widths) == n else None
        if rel is None:
            # proportional to the longest text in each column, within bounds
            lens = [
                max([len(h)] + [sum(len(p.text) for p in r[i] if isinstance(p, Span)) for r in t.rows])
                for i, h in enumerate(t.header)
            ]
            rel = [min(max(x, 4), 40) for x in lens]
        widths = [self.width * w / sum(rel) for w in rel]
        data = [[self.para([Span(h)], "head") for h in t.header]]
        for r in t.rows:
            row = []
            for i, cell in enumerate(r):
                charts = [p for p in cell if isinstance(p, Chart)]
                spans = [p for p in cell if isinstance(p, Span)]
                if charts:
                    row.append(
                        [self.drawing(c, widths[i] - 6) for c in charts] + ([self.para(spans, "cell")] if spans else [])
                    )
                else:
                    row.append(self.para(spans, "cell"))
            data.append(row)
        rl = RLTable(data, colWidths=widths, repeatRows=1, splitByRow=1, splitInRow=0, hAlign="LEFT")
        rl.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), FONT),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f1f5f9")),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#e2e8f0")),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 3),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                    ("TOPPADDING", (0, 0), (-1, -1), 2),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        return rl

    def chart_row(self, row: ChartRow) -> Any:
        from reportlab.platypus import Table as RLTable

        per = self.width / max(len(row.charts), 1)
        cells = [self.drawing(c, per - 8) for c in row.charts]
        t = RLTable([cells], colWidths=[per] * len(cells), hAlign="LEFT")
        t.setStyle([("FONTNAME", (0, 0), (-1, -1), FONT)])
        return t

    def blocks(self, blocks: list[Any]) -> list[Any]:
        from reportlab.platypus import ListFlowable, ListItem, Spacer

        out: list[Any] = []
        for b in blocks:
            if isinstance(b, Para):
                out.append(self.para(b.parts, "muted" if b.cls == "muted" else "body"))
            elif isinstance(b, Bullets):
                out.append(
                    ListFlowable(
                        [ListItem(self.para(it, "body"), leftIndent=12) for it in b.items],
                        bulletType="bullet",
                        bulletFontName=FONT,
                        start="•",
                        leftIndent=12,
                    )
                )
            elif isinstance(b, Chart):
                out.append(self.drawing(b, self.width))
            elif isinstance(b, ChartRow):
                out.append(self.chart_row(b))
            elif isinstance(b, Picture):
                from reportlab.platypus import Image

                scale = min(1.0, self.width / b.width) if b.width > 0 else 1.0
                out.append(Image(b.path, width=b.width * scale, height=b.height * scale, hAlign="LEFT"))
            elif isinstance(b, Table):
                out += [self.table(b), Spacer(1, 6)]
            elif isinstance(b, Section):
                out += self.section(b)
            else:
                raise TypeError(f"report block {type(b).__name__}")
        return out

    def section(self, sec: Section) -> list[Any]:
        from reportlab.platypus import CondPageBreak, KeepTogether, Spacer

        head = self.para([Span(sec.title)], "h2" if sec.level == 2 else "h3")
        if sec.grid and sec.blocks:  # side by side, three to a row, as the HTML's grid
            from reportlab.platypus import Table as RLTable

            per = self.width / 3
            inner = _Renderer.__new__(_Renderer)
            inner.__dict__.update(self.__dict__, width=per - 10)
            cells = [
                [inner.para([Span(b.title)], "h3"), *inner.blocks(b.blocks)]
                if isinstance(b, Section)
                else inner.blocks([b])
                for b in sec.blocks
            ]
            rows = [cells[i : i + 3] + [""] * (3 - len(cells[i : i + 3])) for i in range(0, len(cells), 3)]
            grid = RLTable(rows, colWidths=[per] * 3, hAlign="LEFT", splitInRow=0)
            grid.setStyle([("FONTNAME", (0, 0), (-1, -1), FONT), ("VALIGN", (0, 0), (-1, -1), "TOP")])
            return [CondPageBreak(108), KeepTogether([head, grid]), Spacer(1, 4)]
        body = self.blocks(sec.blocks)
        # a heading never ends a page: it stays with what follows it
        first = [KeepTogether([head, body[0]])] if body else [head]
        return [CondPageBreak(108), *first, *body[1:], Spacer(1, 4)]


def render_report_pdf(report: Report) -> bytes:
    """A :class:`clarion.report.model.Report` as PDF bytes (A4 landscape)."""
    _require()
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    buf = io.BytesIO()
    page = landscape(A4)
    margin = 14 * mm
    doc = SimpleDocTemplate(
        buf,
        pagesize=page,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin + 4,
        title=report.title,
        author="clarion",
        subject=report.subtitle,
        creator="clarion",
        invariant=1,  # same input, same bytes (no creation date or random document id)
        initialFontName=FONT,  # the pages' initial font is the embedded one (reportlab's is Helvetica)
    )
    r = _Renderer(page[0] - 2 * margin)
    title_text = r.glyphs(report.title)

    def footer(canvas: Any, d: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.setFillColorRGB(0.42, 0.45, 0.5)
        canvas.drawString(margin, margin - 2, title_text[:120])
        canvas.drawRightString(page[0] - margin, margin - 2, f"page {d.page}")
        canvas.restoreState()

    story = [r.para([Span(report.title)], "title"), r.para([Span(report.subtitle)], "muted")]
    for sec in report.sections:
        story += r.section(sec)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def render_pdf(
    analysis: Mapping[str, Any],
    *,
    title: str | None = None,
    config: Mapping[str, Any] | None = None,
    local_shap: Any = None,
    feature_values: Any = None,
    notes: list[str] | None = None,
    max_local_rows: int = 400,
) -> bytes:
    """Render ``analysis`` as a PDF (bytes): the content of :func:`clarion.report.render_html`,
    paginated, with embedded fonts and vector charts. Parameters as :func:`clarion.report.render_html`.

    Raises
    ------
    ModuleNotFoundError
        reportlab or svglib is not installed (the message says ``pip install 'clarion[report]'``).
    clarion.monitor.AnalysisError
        ``analysis`` is malformed (the key path named).
    """
    _require()
    from clarion.monitor.documents import load_analysis

    load_analysis(analysis)
    report = build_report(
        analysis,
        title=title,
        config=config,
        local_shap=local_shap,
        feature_values=feature_values,
        notes=notes,
        max_local_rows=max_local_rows,
    )
    return render_report_pdf(report)
