"""``clarion demo``: train a model on a bundled real data set and analyse it (:mod:`clarion.demo`)."""

from __future__ import annotations

import argparse
import sys

from clarion.cli._common import EXIT_OK

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``clarion demo``."""
    parser.add_argument("--output", required=True, help="output directory (created)")
    parser.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty directory")
    parser.add_argument("--quiet", action="store_true", help="no progress bars; print only the report path")


def run(args: argparse.Namespace) -> int:
    """``clarion demo``: returns an exit code of :mod:`clarion.cli`."""
    from clarion.demo import run_demo

    result = run_demo(args.output, overwrite=args.overwrite, progress=not args.quiet)
    if args.quiet:
        print(result.paths["report_html"])
    else:
        print(result.summary(), file=sys.stdout)
    return EXIT_OK
