"""The ``clarion`` command line.

Each subcommand lives in its own module, imported only when that subcommand runs, so
``clarion --help`` stays fast and a subcommand's heavy dependencies load only when used. A
subcommand module provides two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...   # returns the exit code

Subcommand modules: :mod:`clarion.cli.analyze`, :mod:`clarion.cli.monitor`, :mod:`clarion.cli.report`,
:mod:`clarion.cli.demo`, :mod:`clarion.cli.serve`; what they share (exit codes, error messages,
warning display, common flags) is in :mod:`clarion.cli._common`. No library module imports this
package.

Exit codes that scripts can rely on (module constants, re-exported here):

* ``EXIT_OK`` (0): success;
* ``EXIT_ERROR`` (1): bad input (config, data, model) — the message says which argument or column;
* ``EXIT_USAGE`` (2): bad command-line usage (argparse's own code);
* ``EXIT_VIOLATIONS`` (3): ``clarion monitor`` found drift violations;
* ``EXIT_INTERRUPTED`` (130): interrupted by the user.

Errors are one line on stderr, ``clarion COMMAND: error: MESSAGE``, never a traceback: bad input
(clarion's own error classes such as ``ConfigError``, ``DataError``, ``EndpointError``; ``ValueError``,
``TypeError``, ``LookupError``; ``OSError`` on files; ``MemoryError`` from a request too large to
hold) and a missing optional dependency (the message names the extra to install, e.g.
``pip install 'clarion[serve]'``) exit with ``EXIT_ERROR``. Anything else is an internal error (a
bug): also ``EXIT_ERROR`` and one line, which says so. ``--debug`` (or ``CLARION_DEBUG=1`` in the
environment) prints the traceback as well, for every error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from clarion.cli._common import (
    COMMAND_EXTRAS,
    COMMAND_NEEDS,
    DEBUG_ENV,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VIOLATIONS,
    MSG_DEBUG_HINT,
    MSG_INTERNAL,
    MSG_MISSING_EXTRA,
    MSG_MISSING_MODULE,
    MSG_OUT_OF_MEMORY,
    OPTIONAL_MODULES,
    check_needs,
    message,
    report_error,
)

# exit codes and error texts are defined once, in clarion.cli._common, and re-exported here
__all__ = [
    "COMMANDS",
    "COMMAND_EXTRAS",
    "COMMAND_NEEDS",
    "DEBUG_ENV",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_VIOLATIONS",
    "MSG_DEBUG_HINT",
    "MSG_INTERNAL",
    "MSG_MISSING_EXTRA",
    "MSG_MISSING_MODULE",
    "MSG_OUT_OF_MEMORY",
    "OPTIONAL_MODULES",
    "main",
]

_message = message  # the name tests call

#: subcommand -> (module that implements it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("clarion.cli.analyze", "run a Clarify analysis config on a data file"),
    "report": ("clarion.cli.report", "re-render report.html from an existing analysis.json"),
    "demo": ("clarion.cli.demo", "train a model on a bundled real data set and analyse it"),
    "serve": ("clarion.cli.serve", "serve a model at POST /invocations (SageMaker protocol)"),
    "monitor": ("clarion.cli.monitor", "check new data for bias and attribution drift"),
}


def _parser(command: str | None) -> argparse.ArgumentParser:
    from clarion import __version__

    parser = argparse.ArgumentParser(
        prog="clarion",
        description="Local, fast bias metrics and Kernel SHAP attributions (SageMaker Clarify compatible).",
    )
    parser.add_argument("--version", action="version", version=f"clarion {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help=f"show the traceback of an error (also: {DEBUG_ENV}=1 in the environment)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    try:
        args = _parser(command).parse_args(argv)
        check_needs(args.command)
        module = importlib.import_module(COMMANDS[args.command][0])
        return int(module.run(args))
    except KeyboardInterrupt:
        from clarion._progress import end_line

        end_line()
        print("clarion: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every error becomes one line (the traceback with --debug)
        # User-facing errors (ConfigError, DataError, EndpointError, bad model output...) name what
        # is wrong; a traceback would only hide that.
        text = message(exc, command or "")
        if debug:
            import traceback

            from clarion._progress import end_line

            end_line()
            traceback.print_exc()
        report_error(command or "", text)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
