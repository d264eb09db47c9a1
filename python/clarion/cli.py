"""The ``clarion`` command line.

Each subcommand lives in its own module, imported only when that subcommand runs, so
``clarion --help`` stays fast and a subcommand's heavy dependencies load only when used. A
subcommand module provides two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...   # returns the exit code

Exit codes that scripts can rely on (module constants, imported by the subcommands and tests):

* ``EXIT_OK`` (0): success;
* ``EXIT_ERROR`` (1): bad input (config, data, model) — the message says which argument or column;
* ``EXIT_USAGE`` (2): bad command-line usage (argparse's own code);
* ``EXIT_VIOLATIONS`` (3): ``clarion monitor`` found drift violations;
* ``EXIT_INTERRUPTED`` (130): interrupted by the user.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "EXIT_VIOLATIONS", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_VIOLATIONS = 3
EXIT_INTERRUPTED = 130

#: subcommand -> (module that implements it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("clarion.analysis", "run a Clarify analysis config on a data file"),
    "report": ("clarion.report.cli", "re-render report.html from an existing analysis.json"),
    "demo": ("clarion.demo", "train a model on a bundled real data set and analyse it"),
    "serve": ("clarion.serve", "serve a model at POST /invocations (SageMaker protocol)"),
    "monitor": ("clarion.monitor_cli", "check new data for bias and attribution drift"),
}


def _parser(command: str | None) -> argparse.ArgumentParser:
    from clarion import __version__

    parser = argparse.ArgumentParser(
        prog="clarion",
        description="Local, fast bias metrics and Kernel SHAP attributions (SageMaker Clarify compatible).",
    )
    parser.add_argument("--version", action="version", version=f"clarion {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    args = _parser(command).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        print("clarion: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, OSError, LookupError) as exc:
        # User-facing errors (ConfigError, DataError, bad model output...) name what is wrong;
        # a traceback would only hide that.
        print(f"clarion {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
