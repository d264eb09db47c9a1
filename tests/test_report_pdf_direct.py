"""Issue 21 part 3 (session 18): report.pdf laid out and written without platypus, canvas and
pdfdoc (``clarion.report.pdf._direct_pdf``, ``clarion.report.pdfwriter``) says and draws what
reportlab's platypus path (``_platypus_pdf``, the reference) does.

Hypothesis-generated reports (sections in sections, paragraphs of styled spans, bulleted lists,
tables of styled cells and charts with enough rows to split over pages, charts, rows of charts,
grids of sections) rendered by both:
the same pages, the same words on each page in the same order, pages that render to the same
pixels (pdfium), and a file pypdf reads strictly without a warning. Content the direct writer
does not lay out (a table in the grid of sections, a picture, a chart svglib converts) goes
through platypus."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

pytest.importorskip("reportlab")
pytest.importorskip("svglib")
pypdf = pytest.importorskip("pypdf")
pdfium = pytest.importorskip("pypdfium2")

from clarion.report import pdf  # noqa: E402
from clarion.report import svg as charts  # noqa: E402
from clarion.report.model import (  # noqa: E402
    Bullets,
    Chart,
    ChartRow,
    Para,
    Picture,
    Report,
    Section,
    Span,
    Table,
    build_report,
)

STYLES = ["", "b", "muted", "err", "flag", "warn", "code", "fine", "watch", "concern"]
ALPHABET = "abcdefghijklmnopqrstuvwxyzABC0123456789.,-≤|·é→●"
#: words, now and then one longer than a narrow column (split as Paragraph splits it)
WORDS = st.text(alphabet=ALPHABET, min_size=1, max_size=14) | st.text(alphabet=ALPHABET, min_size=30, max_size=60)


@st.composite
def spans(draw, max_runs: int = 6, breaks: bool = False) -> list[Span]:
    out: list[Span] = []
    for _ in range(draw(st.integers(1, max_runs))):
        if breaks and out and out[-1].style != "br" and draw(st.integers(0, 5)) == 0:
            out.append(Span("", "br"))
            continue
        words = draw(st.lists(WORDS, min_size=1, max_size=10))
        lead = "" if not out or out[-1].text.endswith(" ") else draw(st.sampled_from(["", " "]))
        out.append(Span(lead + " ".join(words) + draw(st.sampled_from(["", " "])), draw(st.sampled_from(STYLES))))
    return out


@st.composite
def chart(draw) -> Chart:
    kind = draw(st.sampled_from(["track", "bars", "curve"]))
    v = draw(st.floats(-1, 1))
    if kind == "track":
        svg = charts.interval_track(v, lo=-1.0, hi=1.0, ideal=0.0, ci=(v - 0.1, v + 0.1), label="m")
        return Chart(svg, 260, 26, "track")
    if kind == "bars":
        names = draw(st.lists(st.sampled_from(["age", "sex", "income", "région"]), min_size=1, max_size=4))
        svg = charts.bars(names, [v * (k + 1) for k in range(len(names))], title="bars")
        return Chart(svg, 560, len(names) * 24 + 10, "bars")
    xs = [0.0, 0.25, 0.5, 0.75, 1.0]
    svg = charts.curve_chart(xs, [v * x for x in xs], marker=0.5, ideal=0.0, title="curve")
    return Chart(svg, 250, 150, "curve")


@st.composite
def table(draw) -> Table:
    n = draw(st.integers(1, 6))
    header = draw(st.lists(WORDS, min_size=n, max_size=n))
    with_charts = draw(st.booleans())
    rows = []
    for _ in range(draw(st.sampled_from([1, 3, 12, 45, 90]))):  # 45, 90 rows: split over pages
        row = []
        for k in range(n):
            cell: list = draw(spans(max_runs=3, breaks=True))
            if with_charts and k == n - 1 and draw(st.booleans()):
                cell = [draw(chart())] + cell
            row.append(cell)
        rows.append(row)
    widths = draw(st.none() | st.just([float(k + 1) for k in range(n)]))
    return Table(header, rows, widths=widths)


def blocks(depth: int) -> st.SearchStrategy:
    leaf = st.one_of(
        spans().map(Para),
        spans().map(lambda s: Para(s, "muted")),
        st.lists(spans(max_runs=3), min_size=1, max_size=4).map(Bullets),
        chart(),
        st.lists(chart(), min_size=1, max_size=3).map(ChartRow),
        table(),
    )
    leaf = leaf | grids()
    if depth == 0:
        return leaf
    sub = st.builds(Section, WORDS, st.sampled_from([2, 3]), st.lists(blocks(depth - 1), max_size=3), st.just(""))
    return st.one_of(leaf, sub)


def grids() -> st.SearchStrategy:
    """The partial dependence grid: sections three to a row, each a heading and a chart (and now
    and then a paragraph), rows enough to split over pages."""
    cell = st.builds(
        Section,
        WORDS,
        st.just(3),
        st.tuples(chart(), st.lists(spans().map(Para), max_size=1)).map(lambda t: [t[0], *t[1]]),
    )
    return st.builds(
        Section, WORDS, st.sampled_from([2, 3]), st.lists(cell, min_size=1, max_size=14), st.just(""), st.just(True)
    )


@st.composite
def reports(draw) -> Report:
    sections = draw(
        st.lists(
            st.builds(Section, WORDS, st.sampled_from([2, 3]), st.lists(blocks(1), max_size=4), st.just("")),
            min_size=1,
            max_size=4,
        )
    )
    return Report(draw(WORDS), draw(WORDS), sections)


def words_per_page(data: bytes) -> list[list[str]]:
    return [p.extract_text().split() for p in pypdf.PdfReader(io.BytesIO(data), strict=True).pages]


def pixels(data: bytes) -> list[np.ndarray]:
    doc = pdfium.PdfDocument(data)
    try:
        return [np.asarray(doc[i].render(scale=1.0).to_pil().convert("L")).astype(int) for i in range(len(doc))]
    finally:
        doc.close()


def assert_same(new: bytes, ref: bytes) -> None:
    assert words_per_page(new) == words_per_page(ref)  # every word, on the same page, in order
    a, b = pixels(new), pixels(ref)
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert x.shape == y.shape
        assert float((np.abs(x - y) > 60).mean()) < 0.002, k  # sub-pixel shifts at most
        assert (x < 200).sum() > 0.5 * (y < 200).sum(), k  # nothing left blank


@pytest.fixture
def pypdf_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="pypdf")
    return caplog


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(report=reports())
def test_direct_pdf_is_platypuss(report):
    from reportlab.platypus.doctemplate import LayoutError

    try:
        ref = pdf._platypus_pdf(report)
    except LayoutError:  # a block larger than a page: platypus has no file to compare with
        reject()
    try:
        new = pdf._direct_pdf(report)  # the direct writer covers every block drawn here
    except pdf._Fallback as exc:
        # only a flowable no page can hold (a table row taller than a page) is declined: the
        # public path then writes platypus's file, byte for byte
        assert "too large for a page" in str(exc) or "does not fit" in str(exc), exc
        assert pdf.render_report_pdf(report) == ref
        return
    assert new.startswith(b"%PDF-1.4") and not ref.startswith(new[:20])
    assert_same(new, ref)


def test_a_long_table_splits_between_rows_with_its_header_on_every_page(pypdf_warnings):
    rows = [[[Span(f"row{k}")], [Span(f"{k * 0.5:.2f}", "b")]] for k in range(120)]
    report = Report("T", "s", [Section("Long", 2, [Para([Span("before " * 40)]), Table(["name", "value"], rows)])])
    new, ref = pdf._direct_pdf(report), pdf._platypus_pdf(report)
    assert_same(new, ref)
    pages = words_per_page(new)
    assert len(pages) >= 3
    assert all(p.count("name") == 1 and "value" in p for p in pages)  # the header repeated
    assert [w for p in pages for w in p if w.startswith("row")] == [f"row{k}" for k in range(120)]
    assert not [r for r in pypdf_warnings.records if r.name.startswith("pypdf")]


def _demo_report() -> Report:
    import json
    from pathlib import Path

    fixture = Path(__file__).parent / "data" / "report_demo"
    doc = json.loads((fixture / "analysis.json").read_text())
    doc = {k: v for k, v in doc.items() if k != "explanations"}
    return build_report(doc, config=json.loads((fixture / "analysis_config.json").read_text()))


def test_the_report_is_written_directly_well_formed_and_deterministic(pypdf_warnings, tmp_path):
    import shutil
    import subprocess

    report = _demo_report()
    new = pdf.render_report_pdf(report)
    assert new == pdf._direct_pdf(report) == pdf.render_report_pdf(report)  # the direct path, same bytes
    assert b"ReportLab" not in new
    assert_same(new, pdf._platypus_pdf(report))
    reader = pypdf.PdfReader(io.BytesIO(new), strict=True)
    fonts = {}
    for page in reader.pages:
        for f in page["/Resources"]["/Font"].values():
            f = f.get_object()
            fonts[str(f["/BaseFont"])] = f
    assert fonts and all("BitstreamVeraSans" in name for name in fonts)
    for f in fonts.values():
        desc = f["/FontDescriptor"].get_object()
        program = desc["/FontFile2"].get_object()
        assert len(program.get_data()) == program["/Length1"]  # the subset's TrueType program
        assert len(f["/Widths"]) == f["/LastChar"] + 1
    assert reader.metadata.title == report.title and reader.metadata.subject == report.subtitle
    assert not [r for r in pypdf_warnings.records if r.name.startswith("pypdf")]
    if shutil.which("pdftotext"):
        path = tmp_path / "r.pdf"
        path.write_bytes(new)
        run = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True)
        assert run.returncode == 0 and not run.stderr and report.title in run.stdout


def test_content_the_direct_writer_does_not_lay_out_goes_through_platypus(tmp_path):
    from clarion.report.image import encode_image

    track = charts.interval_track(0.2, lo=-1.0, hi=1.0, ideal=0.0, label="m")
    odd = '<svg width="40" height="20" viewBox="0 0 40 20"><ellipse cx="20" cy="10" rx="15" ry="5"/></svg>'
    path = tmp_path / "p.jpeg"
    path.write_bytes(encode_image(np.zeros((20, 40, 3), dtype=np.uint8)))
    table = Table(["a"], [[[Span("b")]]])
    grid = Section("grid", 2, [Section("a", 3, [Chart(track, 260, 26, "a"), table])], grid=True)
    for block in (grid, Chart(odd, 40, 20, "e")):
        report = Report("T", "s", [Section("x", 2, [Para([Span("text")]), block])])
        with pytest.raises(pdf._Fallback):
            pdf._direct_pdf(report)
        out = pdf.render_report_pdf(report)
        assert out == pdf._platypus_pdf(report) and "text" in words_per_page(out)[0]
    report = Report("T", "s", [Section("x", 2, [Picture(str(path), 40, 20)])])
    with pytest.raises(pdf._Fallback):
        pdf._direct_pdf(report)
    assert pdf.render_report_pdf(report) == pdf._platypus_pdf(report)


def test_a_replaced_renderer_goes_through_platypus(monkeypatch):
    """A test's reference renderer (a ``_Renderer`` subclass, or flowables drawn another way)
    is laid out by platypus itself: the direct writer mirrors this module's own only."""
    report = Report("T", "s", [Section("x", 2, [Para([Span("text " * 30)])])])
    assert pdf._direct_ok() and pdf.render_report_pdf(report) == pdf._direct_pdf(report)

    class Other(pdf._Renderer):
        pass

    monkeypatch.setattr(pdf, "_Renderer", Other)
    assert not pdf._direct_ok() and b"ReportLab" in pdf.render_report_pdf(report)
    monkeypatch.undo()
    monkeypatch.setattr(pdf._text_class(), "draw", lambda self: None)
    assert not pdf._direct_ok()
