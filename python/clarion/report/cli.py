"""``clarion report``: re-render a report from an existing ``analysis.json`` (clarion's or Clarify's).

``clarion report OUT/analysis.json -o report.html`` writes one self-contained HTML page (or
Markdown, for a ``.md`` output). Files found beside ``analysis.json`` are used when present: the
config summary from ``analysis_config.json`` and the local-attribution summary from
``explanations_shap/out.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["add_arguments", "render_file", "run"]


def _load_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: {path} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def render_file(analysis_path: str | os.PathLike, output: str | os.PathLike, *, title: str | None = None,
                config_path: str | os.PathLike | None = None) -> str:
    """Render ``analysis_path`` to ``output`` (HTML, or Markdown when it ends in ``.md``), atomically.

    Parameters
    ----------
    analysis_path : path
        An ``analysis.json`` written by clarion or by SageMaker Clarify.
    output : path
        The report file to write.
    title : str, optional
        Report title (default: ``methods.report.title`` of the config, else "Analysis Report").
    config_path : path, optional
        The analysis config (default: ``analysis_config.json`` beside ``analysis_path``, if any).

    Returns
    -------
    str
        The written path.
    """
    from clarion._io import atomic_write_text
    from clarion.report import render_html, render_markdown

    analysis_path = os.fspath(analysis_path)
    doc = _load_json(analysis_path, "analysis")
    if not isinstance(doc, dict):
        raise ValueError(f"analysis: {analysis_path} is not an analysis.json document (expected a JSON object)")
    known = ("pre_training_bias_metrics", "post_training_bias_metrics", "explanations")
    if not any(k in doc for k in known):
        raise ValueError(f"analysis: {analysis_path} has none of {list(known)}; is it an analysis.json?")
    here = os.path.dirname(os.path.abspath(analysis_path))
    if config_path is None and os.path.exists(os.path.join(here, "analysis_config.json")):
        config_path = os.path.join(here, "analysis_config.json")
    config = _load_json(os.fspath(config_path), "config") if config_path is not None else None
    if title is None:
        title = ((config or {}).get("methods", {}).get("report", {}) or {}).get("title") or "Analysis Report"
    out = os.fspath(output)
    if out.endswith(".md"):
        text = render_markdown(doc, title=title)
    else:
        local = None
        local_path = os.path.join(here, "explanations_shap", "out.csv")
        if os.path.exists(local_path):
            import pandas as pd

            local = pd.read_csv(local_path)
            join = (config or {}).get("joinsource_name_or_index")
            if isinstance(join, str) and join in local.columns:
                local = local.drop(columns=[join])
        text = render_html(doc, title=title, config=config, local_shap=local)
    atomic_write_text(out, text)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``clarion report``."""
    parser.add_argument("analysis", help="an analysis.json (clarion's or SageMaker Clarify's)")
    parser.add_argument("-o", "--output", help="report file: .html (default: report.html beside the input) or .md")
    parser.add_argument("--title", help="report title (default: the config's methods.report.title)")
    parser.add_argument("--config", help="the analysis config (default: analysis_config.json beside the input)")


def run(args: argparse.Namespace) -> int:
    """``clarion report``: returns an exit code of :mod:`clarion.cli`."""
    from clarion.cli import EXIT_OK

    out = args.output or os.path.join(os.path.dirname(os.path.abspath(args.analysis)), "report.html")
    path = render_file(args.analysis, out, title=args.title, config_path=args.config)
    print(path, file=sys.stdout)
    return EXIT_OK
