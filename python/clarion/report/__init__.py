"""Report writers: ``analysis.json`` (Clarify's schema), ``report.html`` (self-contained),
``report.md``, ``report.pdf`` and ``report.ipynb``, all written atomically.

The HTML page and the PDF render one content model (:mod:`clarion.report.model`); the PDF needs
reportlab and svglib, the notebook nbformat (the ``report`` extra): :func:`write_report` writes
them when those are installed and :func:`missing_formats` says what is missing otherwise."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from clarion._io import atomic_write_text
from clarion.report.formats import FORMAT_MODULES, missing_formats, require_format
from clarion.report.html import METRIC_GUIDE, render_html, render_markdown

__all__ = [
    "METRIC_GUIDE",
    "json_document",
    "json_value",
    "FORMAT_MODULES",
    "missing_formats",
    "require_format",
    "render_html",
    "render_markdown",
    "write_analysis_json",
    "write_report",
]


def json_value(v: Any) -> Any:
    """A metric value in Clarify's JSON form: ±inf → "Infinity"/"-Infinity", NaN → None."""
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    return v


def json_document(obj: Any) -> Any:
    """``obj`` in JSON's types, as :func:`write_analysis_json` writes it: string keys, lists for
    tuples, Python scalars for numpy ones, and :func:`json_value` for floats."""
    if isinstance(obj, Mapping):
        return {str(k): json_document(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_document(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalars
        obj = obj.item()
    return json_value(obj)


_clean = json_document


def write_analysis_json(path: str | os.PathLike, analysis: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``analysis`` as JSON (infinities as strings, NaN as null), atomically; returns the
    document as written (what reading the file back gives)."""
    text = json.dumps(json_document(analysis), indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)
    return json.loads(text)


def write_report(
    output_dir: str | os.PathLike,
    analysis: Mapping[str, Any],
    *,
    name: str = "report",
    title: str | None = None,
    config: Mapping[str, Any] | None = None,
    local_shap: Any = None,
    feature_values: Any = None,
    notes: list[str] | None = None,
    html_section: str | None = None,
    md_section: str | None = None,
) -> dict[str, str]:
    """Write ``<name>.html`` and ``<name>.md`` into ``output_dir``, and ``<name>.pdf`` /
    ``<name>.ipynb`` when their packages are installed (:func:`missing_formats`); returns the
    written paths under the keys ``html``, ``md``, ``pdf``, ``ipynb``.

    ``html_section`` / ``md_section``: a section to end the report with (``clarion monitor``'s
    drift section), rendered in the same write; the PDF shows ``md_section``'s text and tables."""
    from clarion.monitor.documents import load_analysis
    from clarion.report.html import render_report_html, render_report_markdown, with_images
    from clarion.report.model import build_report

    load_analysis(analysis)
    report = build_report(
        analysis, title=title, config=config, local_shap=local_shap, feature_values=feature_values, notes=notes
    )
    html_text = with_images(render_report_html(report), analysis)
    # render_markdown's text, with the summary already ranked for the page
    md_text = render_report_markdown(analysis, report, title=title or "Analysis Report")
    if html_section is not None or md_section:
        from clarion.report.drift import with_html_section, with_md_section

        if html_section is not None:
            html_text = with_html_section(html_text, html_section)
        md_text = with_md_section(md_text, md_section)
    paths = {"html": os.path.join(output_dir, f"{name}.html"), "md": os.path.join(output_dir, f"{name}.md")}
    atomic_write_text(paths["html"], html_text)
    atomic_write_text(paths["md"], md_text)
    missing = missing_formats()
    if "pdf" not in missing:
        from clarion._io import atomic_write_bytes
        from clarion.report.image import image_sections
        from clarion.report.model import markdown_section
        from clarion.report.pdf import render_report_pdf

        images = image_sections(analysis, output_dir)  # heat maps (image jobs), drawn into the PDF
        if images is not None:
            report.sections.append(images)
        drift = markdown_section(md_section)  # the drift section's tables and text, as in report.md
        if drift is not None:
            report.sections.append(drift)
        paths["pdf"] = os.path.join(output_dir, f"{name}.pdf")
        atomic_write_bytes(paths["pdf"], render_report_pdf(report))
    if "ipynb" not in missing:
        from clarion.report.notebook import render_notebook

        paths["ipynb"] = os.path.join(output_dir, f"{name}.ipynb")
        atomic_write_text(paths["ipynb"], render_notebook("analysis.json", title=report.title))
    return paths
