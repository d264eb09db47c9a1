"""Issue 21 (report files): report.pdf's fast renderer (paragraphs and cells as runs of text, report tables
laid out in one flowable, charts drawn straight from the report's SVG) says and draws what the
renderer before it did.

The reference is that renderer, kept here: :class:`BaseRenderer` (``Paragraph`` for every text,
its cells in reportlab's ``Table``, charts converted by svglib). For a bias report with intervals, a SHAP + PDP
report with local attributions, a drift section and image heat maps, both PDFs have the same pages,
the same words in the same order, the same charts and pages that render to the same pixels; the
numbers of analysis.json are in the text; every chart's shapes are svglib's for the same SVG; a
cell wraps as ``Paragraph`` wraps it (hypothesis-generated cells)."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("reportlab")
pytest.importorskip("svglib")
pypdf = pytest.importorskip("pypdf")
pdfium = pytest.importorskip("pypdfium2")

from clarion.report import pdf  # noqa: E402
from clarion.report.model import Chart, ChartRow, Section, Span, Table, build_report, markdown_section  # noqa: E402
from clarion.report.svg import fmt  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "report_demo"


class BaseRenderer(pdf._Renderer):
    """The renderer before issue 21: every cell a ``Paragraph`` in reportlab's ``Table``, every
    chart converted by svglib."""

    def drawing(self, chart, max_width):
        return self.svglib_drawing(chart, max_width)

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
                t = f'<font color="{pdf._COLOURS[s.style]}"><b>{t}</b></font>'
            elif s.style in pdf._BACKS:
                t = f'<font color="{pdf._COLOURS[s.style]}" backColor="{pdf._BACKS[s.style]}"><b>{t}</b></font>'
                if s.style == "code":
                    t = t.replace("<b>", "").replace("</b>", "")
            elif s.style in pdf._COLOURS:
                t = f'<font color="{pdf._COLOURS[s.style]}">{t}</font>'
            out.append(t)
        return "".join(out)

    def para(self, spans, style="body"):
        from reportlab.platypus import Paragraph

        return Paragraph(self.markup(spans), self.styles[style])

    def table(self, t):
        from reportlab.lib import colors
        from reportlab.platypus import Table as RLTable
        from reportlab.platypus import TableStyle

        n = len(t.header)
        rel = t.widths if t.widths and len(t.widths) == n else None
        if rel is None:
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
                    ("FONTNAME", (0, 0), (-1, -1), pdf.FONT),
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


def render_base(report) -> bytes:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pdf, "_Renderer", BaseRenderer)
        return pdf.render_report_pdf(report)


def _demo():
    import pandas as pd

    doc = json.loads((FIXTURE / "analysis.json").read_text())
    config = json.loads((FIXTURE / "analysis_config.json").read_text())
    local = pd.read_csv(FIXTURE / "explanations_shap" / "out.csv")
    return doc, config, local


def _bias():
    doc, config, _ = _demo()
    doc = {k: v for k, v in doc.items() if k != "explanations"}
    return doc, build_report(doc, config=config)


def _shap():
    doc, config, local = _demo()
    rng = np.random.default_rng(0)  # feature values colour the strip plot's dots (rgb() fills)
    values = pd_frame({c: rng.random(len(local)) for c in local.columns})
    return doc, build_report(doc, config=config, local_shap=local, feature_values=values)


def pd_frame(cols):
    import pandas as pd

    return pd.DataFrame(cols)


def _drift(tmp: Path):
    import pandas as pd

    import clarion
    from clarion.cli import main

    rng = np.random.default_rng(0)

    def block(shift: float, n: int = 300) -> pd.DataFrame:
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
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    clarion.analyze(cfg, block(0.0), output_dir=tmp / "base", progress=False)
    block(0.8).to_csv(tmp / "new.csv", index=False)
    args = ["monitor", "--baseline", str(tmp / "base" / "analysis.json"), "--data", str(tmp / "new.csv")]
    main([*args, "--config", str(tmp / "cfg.json"), "--output", str(tmp / "mon"), "--quiet"])
    doc = json.loads((tmp / "mon" / "analysis.json").read_text())
    md = (tmp / "mon" / "report.md").read_text()
    report = build_report(doc, config=cfg)
    section = markdown_section(md[md.index("## Drift against the baseline") :])
    assert section is not None
    report.sections.append(section)
    return doc, report


def _images(tmp: Path):
    from clarion.report.image import encode_image, image_sections

    rng = np.random.default_rng(0)
    images = []
    for i, (h, w) in enumerate([(40, 80), (30, 90)]):
        (tmp / f"shap_{i}.jpeg").write_bytes(encode_image(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
        images.append(
            {"image": f"img{i}.png", "heatmaps": [{"label": "cat", "prediction": 0.75, "file": f"shap_{i}.jpeg"}]}
        )
    doc = {"version": "1.0", "explanations": {"image_shap": {"model_type": "IMAGE_CLASSIFICATION", "images": images}}}
    report = build_report(doc)
    report.sections.append(image_sections(doc, str(tmp)))
    return doc, report


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """name -> (analysis, new PDF bytes, base PDF bytes, charts in the report)."""
    out = {}
    for name, make in (
        ("bias", _bias),
        ("shap", _shap),
        ("drift", lambda: _drift(tmp_path_factory.mktemp("drift"))),
        ("images", lambda: _images(tmp_path_factory.mktemp("images"))),
    ):
        doc, report = make()
        out[name] = (doc, pdf.render_report_pdf(report), render_base(report), charts_of(report))
    return out


def charts_of(report) -> list[Chart]:
    found: list[Chart] = []

    def walk(b):
        if isinstance(b, Chart):
            found.append(b)
        elif isinstance(b, ChartRow):
            found.extend(b.charts)
        elif isinstance(b, Section):
            for x in b.blocks:
                walk(x)
        elif isinstance(b, Table):
            for r in b.rows:
                for c in r:
                    for p in c:
                        walk(p)

    for s in report.sections:
        walk(s)
    return found


def words_per_page(data: bytes) -> list[list[str]]:
    return [p.extract_text().split() for p in pypdf.PdfReader(io.BytesIO(data)).pages]


def pages(data: bytes) -> list[np.ndarray]:
    doc = pdfium.PdfDocument(data)
    try:
        return [np.asarray(doc[i].render(scale=1.0).to_pil().convert("L")).astype(int) for i in range(len(doc))]
    finally:
        doc.close()


def content(data: bytes) -> bytes:
    return b"".join(p.get_contents().get_data() for p in pypdf.PdfReader(io.BytesIO(data)).pages)


#: a chart's drawing: the SVG's coordinates set up, px -> pt (k <= 0.75) with y flipped, by svglib's
#: drawing and by the fast renderer alike (svglib's upright labels are ``1 0 0 -1 0 0 cm``: not these)
FLIP = re.compile(rb"(?<![\d.-])([\d.]+) 0 0 -([\d.]+) 0 [\d.]+ cm")


def charts_drawn(data: bytes) -> int:
    return sum(float(a) == float(b) < 1 for a, b in FLIP.findall(content(data)))


CASES = ("bias", "shap", "drift", "images")


@pytest.mark.parametrize("name", CASES)
def test_same_pages_words_and_pixels_as_the_base_renderer(cases, name):
    _, new, base, charts = cases[name]
    assert words_per_page(new) == words_per_page(base)  # every word, on the same page, in order
    a, b = pages(new), pages(base)
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert x.shape == y.shape
        differ = float((np.abs(x - y) > 60).mean())
        assert differ < 0.002, (name, k, differ)  # sub-pixel shifts at most
        assert (x < 200).sum() > 0.5 * (y < 200).sum(), (name, k)  # nothing left blank
    # every chart drawn, by both
    assert charts_drawn(new) == charts_drawn(base) == len(charts)


def test_the_text_has_every_number_of_the_analysis(cases):
    for name in ("bias", "shap"):
        doc, new, _, _ = cases[name]
        text = " ".join(" ".join(w) for w in words_per_page(new))
        n = 0
        for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
            for facet, entries in doc[stage]["facets"].items():
                for e in entries:
                    assert f"{facet} = {e['value_or_threshold']}" in text
                    for m in e["metrics"]:
                        assert m["name"] in text and m["description"][:20] in text
                        if m.get("value") is not None:
                            assert fmt(float(m["value"])) in text, (m["name"], m["value"])
                        lo, hi = (float(m[k]) if m.get(k) is not None else math.nan for k in ("ci_low", "ci_high"))
                        if math.isfinite(lo) and math.isfinite(hi):
                            assert f"[{fmt(lo)}, {fmt(hi)}]" in text
                            n += 1
                        n += 1
        assert n > 20
    doc, new, _, _ = cases["shap"]
    text = " ".join(" ".join(w) for w in words_per_page(new))
    for label, entry in doc["explanations"]["kernel_shap"].items():
        assert f"Global importance — {label}" in text
        assert fmt(entry["expected_value"]) in text
        for feature, v in entry["global_shap_values"].items():
            assert f"{feature} {fmt(v)}" in text  # the bar's label and its value, drawn in the chart
    for pdp in doc["explanations"]["pdp"]:
        assert pdp["feature_name"] in text
    doc, new, _, _ = cases["images"]
    text = " ".join(" ".join(w) for w in words_per_page(new))
    assert "img0.png" in text and "img1.png" in text


def _svglib_shapes(svg: str) -> list[tuple]:
    """svglib's conversion of ``svg`` as primitives in the SVG's coordinates (y down)."""
    from reportlab.graphics.shapes import Circle, Drawing, Group, Line, Path, PolyLine, Rect, String
    from svglib.svglib import svg2rlg

    out: list[tuple] = []

    def col(c):
        return None if c is None else tuple(round(v, 4) for v in c.rgb())

    def walk(node, flipped=False):
        if isinstance(node, (Group, Drawing)):
            for c in node.contents:
                walk(c, flipped or (isinstance(node, Group) and tuple(node.transform) == (1, 0, 0, -1, 0, 0)))
        elif isinstance(node, String):
            bold = "Bold" in node.fontName
            out.append(
                (
                    "text",
                    node.x,
                    -node.y if flipped else node.y,
                    node.text,
                    node.textAnchor,
                    bold,
                    node.fontSize,
                    col(node.fillColor),
                )
            )
        elif isinstance(node, Rect):
            out.append(("rect", node.x, node.y, node.width, node.height, col(node.fillColor), col(node.strokeColor)))
        elif isinstance(node, Line):
            out.append(
                (
                    "line",
                    node.x1,
                    node.y1,
                    node.x2,
                    node.y2,
                    col(node.strokeColor),
                    node.strokeWidth,
                    node.strokeDashArray,
                )
            )
        elif isinstance(node, Circle):
            out.append(("circle", node.cx, node.cy, node.r, col(node.fillColor), col(node.strokeColor)))
        elif isinstance(node, (PolyLine, Path)):
            pts = [round(v, 4) for v in node.points]
            fill = None if isinstance(node, PolyLine) else col(node.fillColor)
            out.append(("poly", pts, fill, col(node.strokeColor), node.strokeWidth if node.strokeColor else None))
        else:
            raise AssertionError(type(node))

    d = svg2rlg(io.BytesIO(svg.encode()))
    walk(d)
    return out


def _fast_shapes(svg: str) -> list[tuple]:
    def col(c):
        return None if c is None else tuple(round(v, 4) for v in c.rgb())

    out: list[tuple] = []
    for op in pdf.svg_ops(svg)[2]:
        kind = op[0]
        if kind == "text":
            _, x, y, text, anchor, bold, size, fill = op
            out.append(("text", x, y, text, anchor, bold, size, col(fill)))
        elif kind == "rect":
            out.append(("rect", *op[1:5], col(op[5]), col(op[6])))
        elif kind == "line":
            out.append(("line", *op[1:5], col(op[5]), op[6], op[7]))
        elif kind == "circle":
            out.append(("circle", *op[1:4], col(op[4]), col(op[5])))
        else:
            _, pts, fill, stroke, sw, _, _ = op
            out.append(
                (
                    "poly",
                    [round(v, 4) for p in pts for v in p[1:]],
                    fill and col(fill),
                    col(stroke),
                    sw if stroke else None,
                )
            )
    return out


def _close(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return a == b or abs(a - b) < 1e-4 or (math.isnan(a) and math.isnan(b))
    return a == b


def test_every_chart_has_svglibs_shapes(cases):
    kinds = set()
    n = 0
    for name in CASES:
        for chart in cases[name][3]:
            fast, ref = _fast_shapes(chart.svg), _svglib_shapes(chart.svg)
            assert _close(fast, ref), (name, chart.title, fast, ref)
            kinds.add(chart.svg.split('"')[1])
            n += 1
    assert kinds == {"track", "curve", "bars", "pdp", "strip"} and n > 50


def test_an_svg_beyond_the_vocabulary_goes_through_svglib():
    from reportlab.graphics.shapes import Drawing

    svg = (
        '<svg width="40" height="20" viewBox="0 0 40 20"><ellipse cx="20" cy="10" rx="15" ry="5" fill="#dc2626"/></svg>'
    )
    with pytest.raises(ValueError):
        pdf.svg_ops(svg)
    r = pdf._Renderer(500)
    d = r.drawing(Chart(svg, 40, 20, "e"), 500)
    assert isinstance(d, Drawing) and d.width == pytest.approx(30)  # svglib's, px -> pt
    report = build_report({})
    report.sections = [Section("odd chart", 2, [Chart(svg, 40, 20, "e")])]
    shot = pages(pdf.render_report_pdf(report))[0]
    assert (shot < 200).sum() > 100  # drawn (and its title)


STYLES = ["", "b", "muted", "err", "flag", "warn", "code", "fine", "watch", "concern"]
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789.,-≤|·", min_size=1, max_size=30)


@st.composite
def cells(draw):
    """Texts as the report makes them: styled runs of words, single line breaks, one space at
    most between two runs."""
    spans = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 5)) == 0:
            if not spans or spans[-1].style != "br":  # the report's breaks: one at a time
                spans.append(Span("", "br"))
            continue
        words = draw(st.lists(WORDS, min_size=1, max_size=8))
        sep = draw(st.sampled_from([" ", "  "]))
        # one space at most between two runs, as the report writes them (reportlab measures a
        # space on each side of a style change differently when it then splits a long word)
        after_space = bool(spans) and spans[-1].text.endswith(" ")
        lead = "" if after_space else draw(st.sampled_from(["", " "]))
        tail = draw(st.sampled_from(["", " "]))
        spans.append(Span(lead + sep.join(words) + tail, draw(st.sampled_from(STYLES))))
    return spans


@settings(max_examples=200, deadline=None)
@given(
    spans=cells(),
    width=st.floats(30, 800),
    style=st.sampled_from(["cell", "head", "body", "muted", "h2", "h3", "title"]),
)
def test_a_text_wraps_and_splits_as_paragraph(spans, width, style):
    new, ref = _renderers()
    para = ref.para(spans, style)
    text = new.para(spans, style)
    h = para.wrap(width, 1e6)[1]
    assert text.wrap(width, 1e6)[1] == pytest.approx(h)
    assert [" ".join("".join(t for _, t in line).split()) for line in text.lines] == _paragraph_lines(para)
    assert (text.getSpaceBefore(), text.getSpaceAfter()) == (para.getSpaceBefore(), para.getSpaceAfter())
    if any(sp.style == "br" for sp in spans):
        return  # line breaks are in table cells only, and a row never splits over two pages
    for room in (h / 2, h - 1, 2.5 * text.leading):  # at a page's foot: the same lines on each side
        a = ref.para(spans, style).split(width, room)
        b = new.para(spans, style).split(width, room)
        assert len(a) == len(b)
        if len(b) == 2:
            assert [p.wrap(width, 1e6)[1] for p in a] == pytest.approx([p.wrap(width, 1e6)[1] for p in b])


_R: tuple | None = None


def _renderers():
    global _R
    if _R is None:
        _R = (pdf._Renderer(500), BaseRenderer(500))
    return _R


def _paragraph_lines(p) -> list[str]:
    """The text of each line reportlab's Paragraph broke (after ``wrap``), spaces normalised."""
    out = []
    for line in p.blPara.lines:
        if isinstance(line, tuple):  # one style: (extra space, words)
            out.append(" ".join(line[1]))
        else:
            out.append("".join(getattr(w, "text", "") for w in line.words))
    return [" ".join(t.split()) for t in out]


def test_tables_split_between_rows_with_the_header_repeated():
    doc, report = _bias()
    tables: list[Table] = []

    def walk(b):
        if isinstance(b, Table) and b.header[0] == "metric":
            tables.append(b)
        elif isinstance(b, Section):
            for x in b.blocks:
                walk(x)

    for s in report.sections:
        walk(s)
    rows = [row for t in tables for row in t.rows]
    report.sections = [Section("All rows", 2, [Table(tables[0].header, rows * 3, widths=tables[0].widths)])]
    new, base = pdf.render_report_pdf(report), render_base(report)
    assert words_per_page(new) == words_per_page(base)
    assert len(words_per_page(new)) > 3


FINITE = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
ANY = st.one_of(FINITE, st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.none())
NAMES = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=12)


@st.composite
def chart_svgs(draw):
    """Every chart generator of clarion.report.svg, on edge cases: NaN, ±inf, None, values beyond
    the axis, intervals, gaps, one point, escaped names."""
    from clarion.report import svg as charts

    kind = draw(st.sampled_from(["track", "bars", "strip", "pdp", "curve"]))
    if kind == "track":
        lo = draw(FINITE)
        hi = lo + draw(st.floats(0.1, 100))
        ci = draw(st.none() | st.tuples(ANY, ANY))
        regions = draw(st.lists(st.tuples(ANY.filter(lambda v: v is not None), FINITE, st.just("#dcfce7")), max_size=2))
        value = draw(ANY)
        return charts.interval_track(
            None if value is None or math.isnan(value) else value,
            lo=lo,
            hi=hi,
            ideal=draw(st.floats(lo, hi)),
            ci=ci,
            label=draw(NAMES),
            colour=draw(st.none() | st.just("#d97706")),
            regions=regions,
        )
    if kind == "bars":
        names = draw(st.lists(NAMES, min_size=1, max_size=6))
        return charts.bars(names, draw(st.lists(FINITE, min_size=len(names), max_size=len(names))), title="t")
    if kind == "strip":
        names = draw(st.lists(NAMES, min_size=1, max_size=3))
        n = draw(st.integers(1, 6))
        values = [draw(st.lists(ANY.filter(lambda v: v is not None), min_size=n, max_size=n)) for _ in names]
        colours = draw(st.none() | st.just([[draw(st.floats(-0.5, 1.5)) for _ in range(n)] for _ in names]))
        return charts.strip_plot(names, values, colours)
    if kind == "pdp":
        n = draw(st.integers(1, 6))
        xs = draw(st.lists(st.one_of(FINITE, NAMES), min_size=n, max_size=n))
        series = draw(st.lists(st.lists(ANY, min_size=n, max_size=n), min_size=1, max_size=2))
        dist = draw(st.none() | st.lists(st.floats(0, 1), min_size=n, max_size=n))
        return charts.line_with_distribution(xs, series, dist, categorical=draw(st.booleans()))
    xs = sorted(draw(st.lists(FINITE, min_size=1, max_size=8, unique=True)))
    ys = draw(st.lists(ANY, min_size=len(xs), max_size=len(xs)))
    return charts.curve_chart(
        xs,
        ys,
        marker=draw(st.none() | FINITE),
        ideal=draw(st.none() | FINITE),
        regions=[(0.0, 0.1, "#dcfce7")],
        title=draw(NAMES),
    )


@settings(max_examples=150, deadline=None)
@given(svg=chart_svgs())
def test_chart_generators_draw_as_svglib_reads_them(svg):
    fast, ref = _fast_shapes(svg), _svglib_shapes(svg)
    assert _close(fast, ref), (svg, fast, ref)


@pytest.mark.parametrize(
    "spans",
    [
        # a space that starts a run is measured in that run's font (here regular after bold): the
        # long word's first letter then still fits on the line, as Paragraph places it
        [Span("0 0 0 0 s 0B", "b"), Span(" 0 ·0000000", "")],
        [Span("0 0 0 0 s 0B", "b"), Span(" 0 .0000000", "")],
        [Span("s 0B", "b"), Span(" 0 ·0000000", "")],
        # a long word's first piece keeps the space before the word (its run's width): "0v" fits
        # after "0mn"
        [Span("0", ""), Span("000 0000000mn", "b"), Span(" 0v00000", "")],
    ],
)
def test_a_space_starting_a_run_is_measured_in_its_font(spans):
    new, ref = _renderers()
    para, text = ref.para(spans, "cell"), new.para(spans, "cell")
    assert text.wrap(30.0, 1e6)[1] == pytest.approx(para.wrap(30.0, 1e6)[1])
    assert [" ".join("".join(t for _, t in line).split()) for line in text.lines] == _paragraph_lines(para)
