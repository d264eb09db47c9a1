"""Charts of values too small to scale by (|v| < ~1e-306: plot width / vmax overflows) are drawn
at their relative lengths, with finite coordinates, and the PDF renders them (it raised before)."""

import math
import re

import pytest

from clarion.report import svg as charts

NUM = re.compile(r' (?:x|x0|x1|x2|width|cx)="([^"]+)"')


def _numbers(svg: str) -> list[float]:
    return [float(v) for v in NUM.findall(svg)]


@pytest.mark.parametrize("scale", [1e-300, 1e-308, 5e-324])
def test_bars_of_tiny_values_have_finite_relative_lengths(scale):
    svg = charts.bars(["a", "b", "c"], [scale, -scale / 2 if scale > 5e-324 else -scale, 0.0], title="t")
    nums = _numbers(svg)
    assert nums and all(math.isfinite(v) for v in nums), svg
    widths = [float(w) for w in re.findall(r'<rect class="bar"[^>]* width="([^"]+)"', svg)]
    big = charts.bars(["a", "b", "c"], [1.0, -0.5 if scale > 5e-324 else -1.0, 0.0], title="t")
    # the same picture as the same values scaled up to ordinary numbers
    assert widths == [float(w) for w in re.findall(r'<rect class="bar"[^>]* width="([^"]+)"', big)]


@pytest.mark.parametrize("scale", [1e-300, 1e-308])
def test_strip_plot_of_tiny_values_has_finite_positions(scale):
    svg = charts.strip_plot(["f"], [[scale, -scale, 0.0]], None)
    nums = _numbers(svg)
    assert nums and all(math.isfinite(v) for v in nums), svg
    big = charts.strip_plot(["f"], [[1.0, -1.0, 0.0]], None)
    assert re.findall(r'cx="([^"]+)"', svg) == re.findall(r'cx="([^"]+)"', big)


def test_the_pdf_draws_tiny_bars():
    pytest.importorskip("reportlab")
    from clarion.report import pdf

    w, h, ops = pdf.svg_ops(charts.bars(["a", "b"], [1e-308, 2e-308], title="t"))
    rects = [op for op in ops if op[0] == "rect"]
    assert len(rects) == 2 and all(math.isfinite(x) for op in rects for x in op[1:5])
    assert rects[1][3] == pytest.approx(2 * rects[0][3], rel=1e-3)
