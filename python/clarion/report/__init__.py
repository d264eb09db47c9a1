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
    document as written (what reading the file back gives).

    The text is ``json.dumps(json_document(analysis), indent=2, allow_nan=False)`` and a line
    break, byte for byte; it is made in one pass (:func:`_indented_json`) instead of
    :func:`json_document` followed by the standard library's indenting encoder (pure Python, a
    generator per level); whatever that pass does not take (an object JSON cannot hold, a cycle,
    nesting deeper than ``_FAST_JSON_DEPTH``) goes the standard way, which raises as before."""
    try:
        text = _indented_json(analysis)
    except Exception:  # noqa: BLE001 - the standard way gives the error (or the text)
        text = json.dumps(json_document(analysis), indent=2, allow_nan=False)
    text += "\n"
    atomic_write_text(path, text)
    return json.loads(text)


class _NotFast(Exception):
    """A value :func:`_indented_json` leaves to the standard way."""


#: deeper nesting goes the standard way (its errors, e.g. a RecursionError, are the standard's)
_FAST_JSON_DEPTH = 64
_encode_str = json.encoder.encode_basestring_ascii  # (the C function json.dumps uses)
_float_repr = float.__repr__
_int_repr = int.__repr__
_INF, _NINF = float("inf"), float("-inf")


def _indented_json(obj: Any) -> str:
    """``json.dumps(json_document(obj), indent=2, allow_nan=False)``, byte for byte, in one pass
    that appends to a list; raises (``_NotFast`` or the error met) where the standard way must
    decide."""
    out: list[str] = []
    _put(obj, out, "\n")
    return "".join(out)


def _put(o: Any, out: list[str], nl: str) -> None:
    """Append ``o``'s text at the indentation ``nl`` (a line break and the level's spaces): the
    standard encoder's choices, after :func:`json_document`'s conversions."""
    t = type(o)
    if t is str:
        out.append(_encode_str(o))
    elif t is float:
        out.append(_float_text(o))
    elif t is int:
        out.append(_int_repr(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif t is dict or isinstance(o, Mapping):
        d = {str(k): v for k, v in o.items()}  # (json_document's keys: later duplicates win)
        if not d:
            out.append("{}")
            return
        if len(nl) > 2 * _FAST_JSON_DEPTH:
            raise _NotFast
        inner = nl + "  "
        sep = "{" + inner
        for k, v in d.items():
            out.append(sep)
            out.append(_encode_str(k))
            out.append(": ")
            _put(v, out, inner)
            sep = "," + inner
        out.append(nl + "}")
    elif t is list or t is tuple or isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        if len(nl) > 2 * _FAST_JSON_DEPTH:
            raise _NotFast
        inner = nl + "  "
        sep = "[" + inner
        for v in o:
            out.append(sep)
            _put(v, out, inner)
            sep = "," + inner
        out.append(nl + "]")
    else:  # numpy scalars, subclasses of str / int / float: as json_document leaves them
        v = json_document(o)
        if isinstance(v, str):
            out.append(_encode_str(v))
        elif v is None or v is True or v is False:
            out.append("null" if v is None else "true" if v else "false")
        elif isinstance(v, int):
            out.append(_int_repr(v))
        elif isinstance(v, float):
            out.append(_float_text(v))
        else:
            raise _NotFast


def _float_text(v: float) -> str:
    """A float as :func:`json_value` and the encoder write it: NaN null, infinities as strings."""
    if v != v:
        return "null"
    if v == _INF:
        return '"Infinity"'
    if v == _NINF:
        return '"-Infinity"'
    return _float_repr(v)


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
    notebook = None
    if "ipynb" not in missing:  # (written before the PDF: its fsync runs while the PDF is drawn)
        from clarion.report.notebook import render_notebook

        notebook = os.path.join(output_dir, f"{name}.ipynb")
        atomic_write_text(notebook, render_notebook("analysis.json", title=report.title))
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
    if notebook is not None:
        paths["ipynb"] = notebook
    return paths
