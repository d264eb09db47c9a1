"""Image jobs' heat maps in the paged report (issue 17's "same content" for issue 18's images):
report.pdf draws each heat-map file beside the report, with its caption, as report.html shows it."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("reportlab")
pytest.importorskip("svglib")
pypdf = pytest.importorskip("pypdf")
pytest.importorskip("PIL")

from clarion.report import write_report  # noqa: E402
from clarion.report.image import encode_image, image_sections  # noqa: E402
from clarion.report.model import Para, Picture, Section  # noqa: E402


def _doc(files):
    return {
        "version": "1.0",
        "explanations": {
            "image_shap": {
                "model_type": "IMAGE_CLASSIFICATION",
                "images": [
                    {
                        "image": f"img{i}.png",
                        "heatmaps": [{"label": "cat", "prediction": 0.75, "expected_value": 0.5, "file": f}],
                    }
                    for i, f in enumerate(files)
                ],
            }
        },
    }


def _pdf_images(path):
    """(width, height) in pixels of every raster image drawn in the PDF, and its text."""
    reader = pypdf.PdfReader(str(path))
    sizes, text = [], ""
    for page in reader.pages:
        text += page.extract_text() or ""
        xobj = page["/Resources"].get("/XObject") or {}
        for ref in xobj.values():
            o = ref.get_object()
            if o.get("/Subtype") == "/Image":
                sizes.append((int(o["/Width"]), int(o["/Height"])))
    return sizes, text


def test_pdf_draws_each_heat_map_with_its_caption(tmp_path):
    rng = np.random.default_rng(0)
    for name, (h, w) in {"shap_a.jpeg": (40, 80), "shap_b.jpeg": (30, 90)}.items():
        (tmp_path / name).write_bytes(encode_image(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
    paths = write_report(tmp_path, _doc(["shap_a.jpeg", "shap_b.jpeg"]), title="images")
    sizes, text = _pdf_images(paths["pdf"])
    assert sorted(sizes) == [(80, 40), (90, 30)]  # both files, at their own pixel sizes
    assert "Image attributions" in text and "img0.png" in text and "img1.png" in text
    assert "label cat (score 0.75, baseline 0.5)" in text
    # and the HTML links the same files
    html = (tmp_path / "report.html").read_text()
    assert "src='shap_a.jpeg'" in html and "src='shap_b.jpeg'" in html


def test_missing_heat_map_is_named_not_drawn(tmp_path):
    sec = image_sections(_doc(["gone.jpeg"]), str(tmp_path))
    assert isinstance(sec, Section)
    card = sec.blocks[1]
    assert not any(isinstance(b, Picture) for b in card.blocks)
    assert isinstance(card.blocks[0], Para) and "gone.jpeg not found" in card.blocks[0].parts[0].text
    paths = write_report(tmp_path, _doc(["gone.jpeg"]), title="images")
    sizes, text = _pdf_images(paths["pdf"])
    assert sizes == [] and "gone.jpeg not found beside the report" in text


def test_no_images_no_section(tmp_path):
    assert image_sections({"version": "1.0"}, str(tmp_path)) is None


def test_picture_aspect_ratio(tmp_path):
    (tmp_path / "h.jpeg").write_bytes(encode_image(np.zeros((100, 50, 3), np.uint8)))
    sec = image_sections(_doc(["h.jpeg"]), str(tmp_path))
    pic = sec.blocks[1].blocks[0]
    assert isinstance(pic, Picture) and pic.height == pytest.approx(2 * pic.width)
    assert os.path.isabs(pic.path) and os.path.samefile(pic.path, tmp_path / "h.jpeg")
