"""Report writers: ``analysis.json`` (Clarify's schema), ``report.html`` (self-contained) and
``report.md``, all written atomically."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from clarion._io import atomic_write_text
from clarion.report.html import METRIC_GUIDE, render_html, render_markdown

__all__ = ["METRIC_GUIDE", "json_value", "render_html", "render_markdown", "write_analysis_json", "write_report"]


def json_value(v: Any) -> Any:
    """A metric value in Clarify's JSON form: ±inf → "Infinity"/"-Infinity", NaN → None."""
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    return v


def _clean(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalars
        obj = obj.item()
    return json_value(obj)


def write_analysis_json(path: str | os.PathLike, analysis: Mapping[str, Any]) -> None:
    """Write ``analysis`` as JSON (infinities as strings, NaN as null), atomically."""
    atomic_write_text(path, json.dumps(_clean(analysis), indent=2, allow_nan=False) + "\n")


def write_report(output_dir: str | os.PathLike, analysis: Mapping[str, Any], *, name: str = "report",
                 title: str | None = None, config: Mapping[str, Any] | None = None, local_shap: Any = None,
                 feature_values: Any = None, notes: list[str] | None = None) -> dict[str, str]:
    """Write ``<name>.html`` and ``<name>.md`` into ``output_dir``; returns their paths."""
    html_text = render_html(analysis, title=title, config=config, local_shap=local_shap,
                            feature_values=feature_values, notes=notes)
    md_text = render_markdown(analysis, title=title or "Analysis Report")
    paths = {"html": os.path.join(output_dir, f"{name}.html"), "md": os.path.join(output_dir, f"{name}.md")}
    atomic_write_text(paths["html"], html_text)
    atomic_write_text(paths["md"], md_text)
    return paths
