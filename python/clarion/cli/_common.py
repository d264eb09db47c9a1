"""What every ``clarion`` subcommand shares: exit codes, the one-line error messages, warning
display, and the common flags (data/config/output, model, run options, Dask).

Exit codes that scripts can rely on (re-exported by :mod:`clarion.cli`):

* ``EXIT_OK`` (0): success;
* ``EXIT_ERROR`` (1): bad input (config, data, model) — the message says which argument or column;
* ``EXIT_USAGE`` (2): bad command-line usage (argparse's own code);
* ``EXIT_VIOLATIONS`` (3): ``clarion monitor`` found drift violations;
* ``EXIT_INTERRUPTED`` (130): interrupted by the user.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
from typing import Any

__all__ = [
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
    "add_dask_arguments",
    "add_input_arguments",
    "add_model_arguments",
    "add_run_arguments",
    "check_needs",
    "cli_warnings",
    "import_object",
    "is_object_spec",
    "message",
    "model_from_args",
    "report_error",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_VIOLATIONS = 3
EXIT_INTERRUPTED = 130

#: environment variable that, set to 1, shows the traceback of every error (as ``--debug`` does)
DEBUG_ENV = "CLARION_DEBUG"

#: optional package (top-level import name) -> the extra of ``pyproject.toml`` that installs it
OPTIONAL_MODULES: dict[str, str] = {
    "starlette": "serve",
    "uvicorn": "serve",
    "dask": "dask",
    "distributed": "dask",
    "xgboost": "models",
    "onnxruntime": "models",
    "skops": "models",
    "sklego": "examples",
    "cupy": "gpu",
    "reportlab": "report",
    "svglib": "report",
    "nbformat": "report",
}
#: subcommands whose optional packages come with another extra than OPTIONAL_MODULES says
COMMAND_EXTRAS: dict[str, str] = {"demo": "examples"}
#: optional packages a subcommand always needs: checked before it starts
COMMAND_NEEDS: dict[str, tuple[str, ...]] = {"serve": ("starlette", "uvicorn")}

MSG_MISSING_EXTRA = "{module} is not installed; it comes with clarion's {extra!r} extra: pip install 'clarion[{extra}]'"
MSG_MISSING_MODULE = (
    "{message}: a dependency of clarion is missing from this environment "
    "(reinstall clarion: pip install --force-reinstall clarion)"
)
MSG_OUT_OF_MEMORY = (
    "out of memory: {detail}; lower the size that asked for it (e.g. methods.*.n_bootstrap, "
    "--memory-budget, --chunk-rows)"
)
MSG_INTERNAL = (
    "internal error: {message} (this is a bug in clarion, not in your input: rerun with --debug "
    "or CLARION_DEBUG=1 for the traceback, and please report it)"
)
MSG_DEBUG_HINT = " (--debug shows the traceback)"


# ---- errors ------------------------------------------------------------------------------------


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


def message(exc: Exception, command: str) -> str:
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


def check_needs(command: str) -> None:
    """Raise ModuleNotFoundError for the first optional package ``command`` needs that is missing."""
    import importlib.util

    for name in COMMAND_NEEDS.get(command, ()):
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def report_error(command: str, text: str) -> None:
    """Print ``clarion COMMAND: error: TEXT`` on stderr (after ending a progress bar's line)."""
    from clarion._progress import end_line

    end_line()  # a progress bar interrupted mid-line
    print(f"clarion {command}: error: {text}", file=sys.stderr)


class cli_warnings:
    """Show warnings (unknown config keys, SageMaker-only keys...) as one plain line each."""

    def __init__(self, command: str) -> None:
        self.command = command
        self._ctx = None

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("default")

        def show(message, category, filename, lineno, file=None, line=None):
            print(f"clarion {self.command}: warning: {message}", file=sys.stderr)

        warnings.showwarning = show

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


# ---- common flags ------------------------------------------------------------------------------


def add_input_arguments(parser: argparse.ArgumentParser, *, data_required: bool = True) -> None:
    """``--config``, ``--data``, ``--output`` (clarion analyze and clarion monitor; ``--data`` is
    optional for monitor, which can read captured traffic instead)."""
    parser.add_argument("--config", required=True, help="analysis_config.json (or .yaml)")
    parser.add_argument("--data", required=data_required, help="the data file (CSV, JSON Lines, JSON or Parquet)")
    parser.add_argument("--output", required=True, help="output directory")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` / ``--endpoint``, ``--trusted``, ``--timeout``, ``--retries``."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument(
        "--model",
        help="a model file clarion.models.as_model reads, or module:attribute of a Python object (a "
        "fitted estimator or a function; the module is imported from the current directory, then "
        "PYTHONPATH); overrides predictor.model_uri",
    )
    g.add_argument("--endpoint", help="an HTTP model endpoint URL (overrides predictor.endpoint_url)")
    parser.add_argument(
        "--trusted",
        action="append",
        default=None,
        metavar="TYPE",
        help="extra type to trust when loading a .skops model (repeatable; adds to predictor.trusted_types)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="endpoints only: seconds one request may take in all (overrides predictor.timeout; default 60)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=None,
        metavar="N",
        help="endpoints only: extra attempts on transient faults (overrides predictor.retries; default 3)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``, ``--skip-bad-rows``, ``--chunk-rows``, ``--memory-budget``, ``--quiet``."""
    parser.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty directory")
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="skip malformed records (counted in the report) instead of stopping",
    )
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="rows per chunk read (default 50000)")
    parser.add_argument("--memory-budget", default="1GiB", help="memory for kept rows (default 1GiB)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no summary")


def add_dask_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dask-scheduler`` / ``--dask-workers`` (clarion analyze)."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument(
        "--dask-scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help="run SHAP and PDP on this Dask cluster (pip install clarion[dask])",
    )
    g.add_argument(
        "--dask-workers",
        type=int,
        metavar="N",
        default=None,
        help="start a local Dask cluster of N worker processes for SHAP and PDP",
    )


#: ``module:attribute`` (dotted names on both sides), as ``clarion serve`` and ``--model`` take it
_OBJECT_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def is_object_spec(spec: str) -> bool:
    """Whether ``spec`` names a Python object (``module:attribute``) rather than a model file or
    URL: it has that form and no file of that name exists."""
    return bool(_OBJECT_SPEC.match(spec)) and not os.path.exists(spec)


def import_object(spec: str, arg: str = "--model") -> Any:
    """The object ``module:attribute`` names (typed by the user on the command line, never read
    from a config). The module is imported with the current directory first on ``sys.path``
    (then ``PYTHONPATH`` and the installed packages); ``attribute`` may be dotted.

    Raises
    ------
    ValueError
        The module cannot be imported (its own error quoted), or has no such attribute (with the
        closest name); the message names ``arg``.
    """
    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"{arg} {spec}: cannot import module {module_name!r} (searched the current directory "
            f"{cwd}, PYTHONPATH and the installed packages): {exc}"
        ) from exc
    finally:
        if cwd in sys.path:
            sys.path.remove(cwd)
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{arg} {spec}: {getattr(obj, '__name__', module_name)!r} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
    return obj


def model_from_args(args: argparse.Namespace) -> Any:
    """The model for ``clarion analyze`` / ``clarion monitor``: ``--model`` / ``--endpoint`` (else
    the config's predictor), with ``--trusted`` (added to ``predictor.trusted_types``),
    ``--timeout`` and ``--retries`` (over ``predictor.timeout`` / ``predictor.retries``) applied.
    None: the job loads the config's own model itself."""
    trusted = list(getattr(args, "trusted", None) or [])
    timeout, retries = getattr(args, "timeout", None), getattr(args, "retries", None)
    if timeout is not None and not 0 < timeout < float("inf"):
        raise ValueError(f"--timeout: must be a positive number of seconds, got {timeout!r}")
    if retries is not None and not 0 <= retries <= 100:
        raise ValueError(f"--retries: must be a whole number from 0 to 100, got {retries!r}")
    if args.model is None and args.endpoint is None and not trusted and timeout is None and retries is None:
        return None
    from clarion import models
    from clarion.config import read_config
    from clarion.job import endpoint_for

    local_only = "--timeout and --retries apply to an endpoint (--endpoint or predictor.endpoint_url); {what}"
    if args.model is not None and is_object_spec(args.model):  # module:attribute, a Python object
        if timeout is not None or retries is not None:
            raise ValueError(local_only.format(what=f"--model {args.model} is a Python object, called in process"))
        return models.as_model(import_object(args.model))
    cfg = read_config(args.config)
    p = cfg.predictor
    url = args.endpoint or (p.endpoint_url if args.model is None and p is not None else None)
    if url:
        return endpoint_for(cfg, url, timeout=timeout, retries=retries)
    if timeout is not None or retries is not None:  # said, not silently ignored
        raise ValueError(local_only.format(what="the model here is a local file, called in process"))
    path = args.model
    if path is None:
        if p is None or not p.model_uri:
            return None  # no model anywhere: the job says so if the config needs one
        path = (
            p.model_uri
            if os.path.isabs(p.model_uri) or "://" in p.model_uri
            else os.path.join(os.path.dirname(os.path.abspath(args.config)), p.model_uri)
        )
    if not trusted:
        return path  # loaded by the job only when needed, with predictor.trusted_types
    return models.as_model(path, trusted=[*(p.trusted_types or [] if p is not None else []), *trusted])
