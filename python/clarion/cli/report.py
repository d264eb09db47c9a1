"""``clarion report``: re-render a report from an existing ``analysis.json``
(:func:`clarion.report.folder.render_file`)."""

from __future__ import annotations

import argparse
import os
import sys

from clarion.cli._common import EXIT_OK

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``clarion report``."""
    parser.add_argument("analysis", help="an analysis.json (clarion's or SageMaker Clarify's)")
    parser.add_argument(
        "-o",
        "--output",
        help="report file, its format chosen by the extension: .html/.htm (default: report.html beside the "
        "input), .md, .pdf or .ipynb (the last two need pip install 'clarion[report]'); other extensions are refused",
    )
    parser.add_argument("--title", help="report title (default: the config's methods.report.title)")
    parser.add_argument("--config", help="the analysis config (default: analysis_config.json beside the input)")


def run(args: argparse.Namespace) -> int:
    """``clarion report``: returns an exit code of :mod:`clarion.cli`."""
    from clarion.report.folder import render_file

    out = args.output or os.path.join(os.path.dirname(os.path.abspath(args.analysis)), "report.html")
    path = render_file(args.analysis, out, title=args.title, config_path=args.config)
    print(path, file=sys.stdout)
    return EXIT_OK
