"""Session 17 (issue 21, report files): ``write_report``'s cheaper report files say exactly what they
said before.

* ``report.html`` and ``report.md``: byte-identical to the renderer before (golden SHA-256 of the
  former code's files for the same analyses: bias only, bias + Kernel SHAP + PDP, a text job's
  top units, facet names and values in Zürich / 東京 / Hebrew, image heat maps) and to the
  standalone renderers (``render_html`` / ``render_markdown``), a drift section included;
* ``report.ipynb``: valid under ``nbformat.validate``, the JSON of a freshly built notebook (cell
  ids aside: nbformat draws them at random), built once per (analysis path, title);
* ``report.pdf``: the pages and words (per page, in order) of the former renderer (golden), and
  the same pages, words and pixels as a reference path kept here: the former drawing code
  (reportlab's text objects and canvas calls for every run, rule and shape) and reportlab's own
  embedding of the font subsets (no subsets kept between documents).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).parent / "data" / "report_demo"


# ---- the analyses ------------------------------------------------------------------------------------


def _demo():
    import pandas as pd

    doc = json.loads((FIXTURE / "analysis.json").read_text())
    config = json.loads((FIXTURE / "analysis_config.json").read_text())
    local = pd.read_csv(FIXTURE / "explanations_shap" / "out.csv")
    return doc, config, local


def case_bias(out: Path):
    doc, config, _ = _demo()
    doc = {k: v for k, v in doc.items() if k != "explanations"}
    return doc, {"config": config, "notes": ["3 rows skipped: label missing"]}


def case_shap(out: Path):
    import pandas as pd

    doc, config, local = _demo()
    rng = np.random.default_rng(0)
    values = pd.DataFrame({c: rng.random(len(local)) for c in local.columns})
    return doc, {"config": config, "local_shap": local, "feature_values": values, "title": "Bias & SHAP <demo>"}


def case_text(out: Path):
    doc, config, _ = _demo()
    block = next(iter(doc["explanations"]["kernel_shap"].values()))
    block["global_top_shap_text"] = {"review": {"awful": -0.31, "great": 0.42, "délai": 0.05}}
    return doc, {"config": config}


def case_unicode(out: Path):
    """Facet names and values in Latin with diacritics, CJK and Hebrew (right to left)."""
    doc, config, _ = _demo()
    doc = {k: v for k, v in doc.items() if k != "explanations"}
    names = ["Zürich", "東京", "עיר"]
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        facets = doc[stage]["facets"]
        renamed = {}
        for k, entries in enumerate(facets.values()):
            for e in entries:
                e["value_or_threshold"] = f"{names[(k + 1) % 3]} – {e['value_or_threshold']}"
            renamed[names[k % 3]] = entries
        doc[stage]["facets"] = renamed
    return doc, {"title": "Städte · 東京 · עיר"}


def case_images(out: Path):
    from clarion.report.image import encode_image

    rng = np.random.default_rng(0)
    images = []
    out.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate([(40, 80), (30, 90)]):
        (out / f"shap_{i}.jpeg").write_bytes(encode_image(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
        images.append(
            {"image": f"img{i}.png", "heatmaps": [{"label": "cat", "prediction": 0.75, "file": f"shap_{i}.jpeg"}]}
        )
    doc = {"version": "1.0", "explanations": {"image_shap": {"model_type": "IMAGE_CLASSIFICATION", "images": images}}}
    return doc, {}


CASES = {"bias": case_bias, "shap": case_shap, "text": case_text, "unicode": case_unicode, "images": case_images}

#: the former renderer's files for the cases above (``write_report`` at ``ca64b72``, before session
#: 17): SHA-256 of report.html and report.md; report.pdf's page count and the SHA-256 of its words
#: per page (pypdf's text, split at white space, as JSON)
GOLDEN = {
    "bias": (
        "a3e6333be8b01245ebc1f8637f23c639ddc88975bb0cf34da1b83ea4ea618ec6",
        "ddd7bb9c23a89a175d05abfce66b37c0c86412866a3b3ca281ce08725861d756",
        7,
        "74bdf468488d35724a0c2f165753c902b8f6755391bf315452c2174834925f35",
    ),
    "shap": (
        "e00d4827db7ca2c38ce66dce6bbf638084cf665228e4592203983fd7b0382d51",
        "ff6c68a6397324321feb9b8f2f96220193e33d2878bb3ebffb31cfa12d0faf8b",
        8,
        "6c4e0c077ecafce84df791f172654c268cde730dc96010d0199c24c8fe969297",
    ),
    "text": (
        "66f15ec8e44ec9971a95f543c24ffad7be6379eb9f0de1f77ea6838af63b5cea",
        "5483527a1028c4eba4a0946fea7f372f61543f2015e4178d1de0b70f7c1cb4c5",
        8,
        "9cd413187e0e9a4c111da9b981915a98cc61dd4ac0af938be02c3e287826d806",
    ),
    "unicode": (
        "7a4bf3026a7824577085aba94b4c475b0720e5e106af48633dce5c17d1657fd1",
        "5548d172aa4720158f687068e3ac417e729b4388e30ffb8601d82a3887a9129e",
        6,
        "5f8106cc2bc352939437decf0067cc94e4bfe98f39ec625d1de3e4c850b681d4",
    ),
    "images": (
        "15e89e2878ed091c1ba44f26c15d6fae7c454e0599ae8971b6a3a68141a30619",
        "3e69b1f16b50bfe15854dabe4fed307c6dc3d8f8bf301a240df0e433b3a8fa00",
        1,
        "4b80802b1a48c906875c062b2c8b398b8232d13d5df897dfed83eca3fa34de5d",
    ),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def words_per_page(data: bytes) -> list[list[str]]:
    import pypdf

    return [p.extract_text().split() for p in pypdf.PdfReader(io.BytesIO(data)).pages]


def fingerprint(folder: Path) -> tuple[str, str, int, str]:
    """What :data:`GOLDEN` holds for the report files in ``folder``."""
    words = words_per_page((folder / "report.pdf").read_bytes())
    return (
        sha((folder / "report.html").read_bytes()),
        sha((folder / "report.md").read_bytes()),
        len(words),
        sha(json.dumps(words, ensure_ascii=False).encode()),
    )


def write(name: str, folder: Path) -> tuple[dict, dict, dict]:
    from clarion.report import write_report

    doc, kwargs = CASES[name](folder)
    return doc, kwargs, write_report(folder, doc, **kwargs)


# ---- the reference PDF path: the former drawing code, reportlab's own font subsets ------------------


def _ref_emit(self, canv, tx, x0, y0, state):
    """The former ``_Text.emit``: a reportlab text object, one ``setFont`` / ``setFillColor`` /
    ``textOut`` per run, the chips' backgrounds through the canvas."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    size, leading = self.size, self.leading
    top = y0 + self.height - size
    for n, line in enumerate(self.lines):
        y = top - n * leading
        if any(r.back is not None for r, _ in line):
            x = x0
            for r, t in line:
                w = stringWidth(t, r.font, size)
                if r.back is not None and t != " ":
                    canv.setFillColor(r.back)
                    canv.rect(x, y + size - leading, w, leading, stroke=0, fill=1)
                x += w
        tx.setTextOrigin(x0, y)
        squeeze = self.squeeze[n]
        if squeeze:
            tx.setWordSpace(squeeze)
        k = 0
        while k < len(line):
            r = line[k][0]
            j = k + 1
            while j < len(line) and line[j][0].font == r.font and line[j][0].colour is r.colour:
                j += 1
            if (r.font, size) != state[0]:
                tx.setFont(r.font, size, leading)
                state[0] = (r.font, size)
            if r.colour is not state[1]:
                tx.setFillColor(r.colour)
                state[1] = r.colour
            tx.textOut("".join(t for _, t in line[k:j]))
            k = j
        if squeeze:
            tx.setWordSpace(0)


def _ref_text_draw(self):
    tx = self.canv.beginText(0, 0)
    _ref_emit(self, self.canv, tx, 0, 0, [None, None])
    self.canv.drawText(tx)


def _ref_grid_draw(self):
    from clarion.report import pdf

    c = self.canv
    heights = self._measure()
    top = sum(heights)
    c.setFillColor(self.head)
    c.rect(0, top - heights[0], self.width, heights[0], stroke=0, fill=1)
    tx = c.beginText(0, 0)
    state = [None, None]
    y_top = top
    bottoms = []
    for row, rh in zip(self.rows, heights):
        bottom = y_top - rh
        bottoms.append(bottom)
        x = 0.0
        for cell, w in zip(row, self.widths):
            sizes = [f.wrap(w - 2 * self.PAD_X, 0xFFFFFFF)[1] for f in cell]
            y = bottom + (rh + sum(sizes)) / 2
            for f, h in zip(cell, sizes):
                y -= h
                if isinstance(f, pdf._text_class()):
                    _ref_emit(f, c, tx, x + self.PAD_X, y, state)
                else:
                    f.drawOn(c, x + self.PAD_X, y)
            x += w
        y_top = bottom
    c.drawText(tx)
    c.saveState()
    c.setStrokeColor(self.line)
    c.setLineWidth(0.25)
    c.setLineCap(1)
    c.setLineJoin(1)
    for b in bottoms:
        c.line(0, b, self.width, b)
    c.restoreState()


def _ref_chart_draw(self):
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from clarion.report import pdf

    c = self.canv
    c.saveState()
    c.transform(self.k, 0, 0, -self.k, 0, self.height)
    fill_c = stroke_c = width = dash = None
    texts = []
    for op in self.ops:
        kind = op[0]
        if kind == "text":
            texts.append(op)
            continue
        if kind == "line":
            _, x1, y1, x2, y2, stroke, sw, d = op
            if stroke is None:
                continue
            fill = None
        else:
            fill, stroke, sw, d = op[-4:] if kind != "poly" else op[2:6]
        if fill is not None and fill is not fill_c:
            c.setFillColor(fill)
            fill_c = fill
        if stroke is not None:
            if stroke is not stroke_c:
                c.setStrokeColor(stroke)
                stroke_c = stroke
            if sw != width:
                c.setLineWidth(sw)
                width = sw
            if d != dash:
                c.setDash(d or [])
                dash = d
        s, f = int(stroke is not None), int(fill is not None)
        if kind == "rect":
            c.rect(op[1], op[2], op[3], op[4], stroke=s, fill=f)
        elif kind == "line":
            c.line(x1, y1, x2, y2)
        elif kind == "circle":
            c.circle(op[1], op[2], op[3], stroke=s, fill=f)
        else:
            p = c.beginPath()
            for o, x, y in op[1]:
                if o == "M":
                    p.moveTo(x, y)
                else:
                    p.lineTo(x, y)
            if op[6]:
                p.close()
            c.drawPath(p, stroke=s, fill=f, fillMode=1)
    for _, x, y, text, anchor, bold, sz, fill in texts:
        if fill is None:
            continue
        text = self.glyphs(text)
        name = pdf.FONT + "-Bold" if bold else pdf.FONT
        if anchor in ("end", "middle"):
            w = stringWidth(text, name, sz)
            x -= w if anchor == "end" else w / 2
        tx = c.beginText()
        tx.setFont(name, sz)
        tx.setFillColor(fill)
        tx.setTextTransform(1, 0, 0, -1, x, y)
        tx.textOut(text)
        c.drawText(tx)
    c.restoreState()


def reference_pdf(report) -> bytes:
    """``render_report_pdf(report)`` through the reference path."""
    from reportlab.pdfbase import pdfmetrics

    from clarion.report import pdf

    pdf._register_fonts()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pdf._text_class(), "draw", _ref_text_draw)
        mp.setattr(pdf._grid_class(), "draw", _ref_grid_draw)
        mp.setattr(pdf._chart_class(), "draw", _ref_chart_draw)
        for suffix in ("", "-Bold", "-Italic", "-BoldItalic"):  # reportlab's own subsetting
            font = pdfmetrics.getFont(pdf.FONT + suffix)
            mp.delattr(font, "addObjects")
            mp.delattr(font.face, "addSubsetObjects")
        return pdf.render_report_pdf(report)


def pixels(data: bytes) -> list[np.ndarray]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    try:
        return [np.asarray(doc[i].render(scale=1.0).to_pil().convert("L")).astype(int) for i in range(len(doc))]
    finally:
        doc.close()


def report_of(doc, kwargs, folder: Path, md_section: str | None = None):
    """The Report ``write_report`` draws into report.pdf for ``doc``."""
    from clarion.report.image import image_sections
    from clarion.report.model import build_report, markdown_section

    keep = ("title", "config", "local_shap", "feature_values", "notes")
    report = build_report(doc, **{k: v for k, v in kwargs.items() if k in keep})
    images = image_sections(doc, str(folder))
    if images is not None:
        report.sections.append(images)
    drift = markdown_section(md_section)
    if drift is not None:
        report.sections.append(drift)
    return report


# ---- the tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    pytest.importorskip("reportlab")
    pytest.importorskip("svglib")
    pytest.importorskip("nbformat")
    pytest.importorskip("pypdf")
    out = {}
    for name in CASES:
        folder = tmp_path_factory.mktemp(name)
        doc, kwargs, paths = write(name, folder)
        assert sorted(paths) == ["html", "ipynb", "md", "pdf"]
        out[name] = (folder, doc, kwargs)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_html_md_and_pdf_words_are_the_former_renderers(written, name):
    folder, _, _ = written[name]
    html_sha, md_sha, n_pages, words_sha = fingerprint(folder)
    assert (html_sha, md_sha) == GOLDEN[name][:2]  # byte for byte
    assert (n_pages, words_sha) == GOLDEN[name][2:]  # the same pages, the same words on each


@pytest.mark.parametrize("name", list(CASES))
def test_html_and_md_are_the_standalone_renderers(written, name):
    from clarion.report import render_html, render_markdown

    folder, doc, kwargs = written[name]
    keep = ("title", "config", "local_shap", "feature_values", "notes")
    assert (folder / "report.html").read_text() == render_html(doc, **{k: v for k, v in kwargs.items() if k in keep})
    md = render_markdown(doc, title=kwargs.get("title") or "Analysis Report")
    assert (folder / "report.md").read_text() == md


@pytest.mark.parametrize("name", list(CASES))
def test_pdf_is_the_reference_paths(written, name):
    pytest.importorskip("pypdfium2")
    folder, doc, kwargs = written[name]
    new = (folder / "report.pdf").read_bytes()
    ref = reference_pdf(report_of(doc, kwargs, folder))
    assert words_per_page(new) == words_per_page(ref)
    a, b = pixels(new), pixels(ref)
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert x.shape == y.shape
        assert float((np.abs(x - y) > 40).mean()) < 0.0005, (name, k)  # the same drawing
        assert (x < 200).sum() > 0.5 * (y < 200).sum(), (name, k)  # nothing left blank
    if name == "unicode":  # the characters the font draws, as before (the others are replaced)
        text = " ".join(" ".join(w) for w in words_per_page(new))
        assert "Zürich" in text and "Städte" in text and "–" in text


def test_pdf_is_the_same_bytes_when_the_subsets_are_kept(written):
    """A second render (the subset fonts kept from the first) writes the same file, and a report
    with other characters gets subsets of its own (every character it draws is in them)."""
    from clarion.report import pdf

    folder, doc, kwargs = written["unicode"]
    report = report_of(doc, kwargs, folder)
    first = pdf.render_report_pdf(report)
    assert pdf.render_report_pdf(report) == first == (folder / "report.pdf").read_bytes()
    folder, doc, kwargs = written["bias"]
    other = pdf.render_report_pdf(report_of(doc, kwargs, folder))
    assert words_per_page(other) == words_per_page(reference_pdf(report_of(doc, kwargs, folder)))


def test_drift_section_is_the_standalone_renderers(tmp_path):
    """A ``clarion monitor`` output: the drift section in report.html / report.md as
    ``with_html_section`` / ``with_md_section`` add it, and drawn in report.pdf as the reference
    path draws it."""
    import pandas as pd

    import clarion
    from clarion.cli import main
    from clarion.report import render_html, render_markdown, write_report
    from clarion.report.drift import with_html_section, with_md_section

    for module in ("reportlab", "svglib", "pypdf", "pypdfium2"):
        pytest.importorskip(module)
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
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    clarion.analyze(cfg, block(0.0), output_dir=tmp_path / "base", progress=False)
    block(0.8).to_csv(tmp_path / "new.csv", index=False)
    args = ["monitor", "--baseline", str(tmp_path / "base" / "analysis.json"), "--data", str(tmp_path / "new.csv")]
    main([*args, "--config", str(tmp_path / "cfg.json"), "--output", str(tmp_path / "mon"), "--quiet"])
    doc = json.loads((tmp_path / "mon" / "analysis.json").read_text())
    md = (tmp_path / "mon" / "report.md").read_text()
    md_section = md[md.index("\n## Drift against the baseline") :].rstrip("\n")
    html = (tmp_path / "mon" / "report.html").read_text()
    html_section = html[html.index("<h2 id='drift'>Drift against the baseline") : html.rindex("</main>")]

    out = tmp_path / "again"
    write_report(out, doc, config=cfg, html_section=html_section, md_section=md_section)
    assert (out / "report.html").read_text() == with_html_section(render_html(doc, config=cfg), html_section)
    assert (out / "report.md").read_text() == with_md_section(render_markdown(doc), md_section)
    new = (out / "report.pdf").read_bytes()
    ref = reference_pdf(report_of(doc, {"config": cfg}, out, md_section))
    assert words_per_page(new) == words_per_page(ref)
    assert "Drift" in " ".join(words_per_page(new)[-1])
    a, b = pixels(new), pixels(ref)
    assert len(a) == len(b) and all(float((np.abs(x - y) > 40).mean()) < 0.0005 for x, y in zip(a, b))


def test_notebook_is_valid_and_built_once_per_path_and_title(written, monkeypatch):
    import nbformat

    from clarion.report import notebook

    folder, _, kwargs = written["shap"]
    text = (folder / "report.ipynb").read_text()
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)  # the written file, validated
    fresh = notebook.build_notebook("analysis.json", title=kwargs["title"])  # built (and validated) anew

    def without_ids(d: dict) -> dict:
        for cell in d["cells"]:
            cell.pop("id", None)
        return d

    assert without_ids(json.loads(text)) == without_ids(json.loads(nbformat.writes(fresh)))
    assert text.endswith("\n") and "".join(json.loads(text)["cells"][0]["source"]).startswith("# Bias & SHAP <demo>")
    # kept per (path, title): not built again; another title or path is a notebook of its own
    calls = []
    real = notebook.build_notebook
    monkeypatch.setattr(notebook, "build_notebook", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert notebook.render_notebook("analysis.json", title=kwargs["title"]) == text
    assert calls == []
    other = notebook.render_notebook("../run/analysis.json", title="Другой отчёт")
    assert len(calls) == 1 and "Другой отчёт" in other and "../run/analysis.json" in other
    nbformat.validate(nbformat.reads(other, as_version=4))
    assert notebook.render_notebook("../run/analysis.json", title="Другой отчёт") == other and len(calls) == 1
