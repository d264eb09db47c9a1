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

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "EXIT_VIOLATIONS", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_VIOLATIONS = 3
EXIT_INTERRUPTED = 130

#: environment variable that, set to 1, shows the traceback of every error (as ``--debug`` does)
DEBUG_ENV = "CLARION_DEBUG"

#: optional package (top-level import name) -> the extra of ``pyproject.toml`` that installs it
OPTIONAL_MODULES: dict[str, str] = {
    "starlette": "serve", "uvicorn": "serve",
    "dask": "dask", "distributed": "dask",
    "xgboost": "models", "onnxruntime": "models", "skops": "models",
    "sklego": "examples",
    "cupy": "gpu",
}
#: subcommands whose optional packages come with another extra than OPTIONAL_MODULES says
COMMAND_EXTRAS: dict[str, str] = {"demo": "examples"}
#: optional packages a subcommand always needs: checked before it starts
COMMAND_NEEDS: dict[str, tuple[str, ...]] = {"serve": ("starlette", "uvicorn")}

MSG_MISSING_EXTRA = "{module} is not installed; it comes with clarion's {extra!r} extra: pip install 'clarion[{extra}]'"
MSG_MISSING_MODULE = ("{message}: a dependency of clarion is missing from this environment "
                      "(reinstall clarion: pip install --force-reinstall clarion)")
MSG_OUT_OF_MEMORY = ("out of memory: {detail}; lower the size that asked for it (e.g. methods.*.n_bootstrap, "
                     "--memory-budget, --chunk-rows)")
MSG_INTERNAL = ("internal error: {message} (this is a bug in clarion, not in your input: rerun with --debug "
                "or CLARION_DEBUG=1 for the traceback, and please report it)")
MSG_DEBUG_HINT = " (--debug shows the traceback)"

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
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error (also: {DEBUG_ENV}=1 in the environment)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error")
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def _missing_module(exc: BaseException) -> str | None:
    """The top-level name of the module whose absence caused ``exc`` (an ImportError, possibly
    re-raised by clarion with a message of its own), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return exc.name.split(".")[0]
        exc = exc.__cause__ or exc.__context__
    return None


def _is_clarion_error(exc: BaseException) -> bool:
    """An instance of one of clarion's own error classes (``ConfigError``, ``DataError``,
    ``EndpointError``, ``CudaError``...): raised on purpose, with a message for the user."""
    return any((c.__module__ or "").split(".")[0] == "clarion" for c in type(exc).__mro__)


def _message(exc: Exception, command: str) -> str:
    """The one-line message for an error of ``command`` (MSG_INTERNAL for what looks like a bug)."""
    import zipfile

    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, ImportError):
        name = _missing_module(exc)
        extra = COMMAND_EXTRAS.get(command) if name in OPTIONAL_MODULES else None
        extra = extra or OPTIONAL_MODULES.get(name or "")
        if extra is not None:
            return MSG_MISSING_EXTRA.format(module=name, extra=extra)
        return MSG_MISSING_MODULE.format(message=text)
    if isinstance(exc, MemoryError):
        return MSG_OUT_OF_MEMORY.format(detail=text)
    if _is_clarion_error(exc) or isinstance(exc, (ValueError, OSError, zipfile.BadZipFile)):
        return text
    if isinstance(exc, (TypeError, LookupError, RecursionError)):
        return f"{type(exc).__name__}: {text}{MSG_DEBUG_HINT}"
    return MSG_INTERNAL.format(message=f"{type(exc).__name__}: {text}")


def _check_needs(command: str) -> None:
    """Raise ModuleNotFoundError for the first optional package ``command`` needs that is missing."""
    import importlib.util

    for name in COMMAND_NEEDS.get(command, ()):
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _report(command: str, message: str) -> None:
    from clarion._progress import end_line

    end_line()  # a progress bar interrupted mid-line
    print(f"clarion {command}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    try:
        args = _parser(command).parse_args(argv)
        _check_needs(args.command)
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
        message = _message(exc, command or "")
        if debug:
            import traceback

            from clarion._progress import end_line

            end_line()
            traceback.print_exc()
        _report(command or "", message)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
