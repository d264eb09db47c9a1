"""``clarion serve MODEL``: serve a model at ``POST /invocations`` (:mod:`clarion.serve`); with
``--explain EXPLAINER_CONFIG`` each answer carries Clarify's online explanations too."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clarion.cli._common import EXIT_ERROR, EXIT_OK, import_object, is_object_spec

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``clarion serve``."""
    from clarion.serve import DEFAULT_MAX_BODY_BYTES

    parser.add_argument(
        "model",
        metavar="MODEL",
        help="model file (.json/.ubj xgboost, .onnx, .skops) or module:attribute of a "
        "Python object (a fitted estimator or a function); pickle files are refused",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free port)")
    parser.add_argument(
        "--output",
        choices=["label", "probability", "score"],
        default=None,
        help="which prediction to serve (classifiers default to probability)",
    )
    parser.add_argument(
        "--label-headers", default=None, help="comma-separated names of the outputs (used for predicted_label)"
    )
    parser.add_argument("--features", default=None, help="JMESPath of the feature values in JSON / JSON Lines records")
    parser.add_argument(
        "--max-body-bytes",
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="BYTES",
        help="largest request body accepted, e.g. 6291456 or 16MiB (default 6MiB, SageMaker's "
        "invocation limit); a larger one is answered 413",
    )
    parser.add_argument(
        "--capture",
        default=None,
        metavar="DIR",
        help="write each request/response pair as a SageMaker data-capture record into hourly "
        "JSON Lines files under DIR/yyyy/mm/dd/hh/",
    )
    parser.add_argument(
        "--capture-percent",
        type=float,
        default=100.0,
        metavar="P",
        help="percentage of the requests captured (default 100)",
    )
    parser.add_argument(
        "--explain",
        default=None,
        metavar="EXPLAINER_CONFIG",
        help="answer SageMaker Clarify's online explainability response (predictions + Kernel SHAP "
        "attributions per record): EXPLAINER_CONFIG is a ClarifyExplainerConfig as JSON",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        metavar="N",
        help="with --explain: explanations computed at once (default: the number of CPU cores)",
    )
    parser.add_argument(
        "--trusted",
        action="append",
        default=None,
        metavar="TYPE",
        help="extra type to trust when loading a .skops file (repeatable)",
    )


def load_model(spec: str, args: argparse.Namespace) -> Any:
    """The model to serve: a model file, or ``module:attribute`` of a Python object (typed by the
    user on the command line, never read from a config)."""
    from clarion.models import as_model

    headers = args.label_headers.split(",") if args.label_headers else None
    if not is_object_spec(spec):
        return as_model(spec, output=args.output, label_headers=headers, trusted=args.trusted)
    return as_model(import_object(spec, "MODEL"), output=args.output, label_headers=headers)


def run(args: argparse.Namespace) -> int:
    """Serve the model until interrupted; returns the exit code."""
    from clarion.serve import create_app, listen_socket, parse_max_body, uvicorn_module

    try:
        model = load_model(args.model, args)
        app = create_app(
            model,
            features=args.features,
            max_body_bytes=parse_max_body(args.max_body_bytes, "--max-body-bytes"),
            capture=args.capture,
            capture_percent=args.capture_percent,
            explainer=args.explain,
            max_concurrency=args.max_concurrency,
        )
        uvicorn = uvicorn_module()
    except (ValueError, TypeError, ImportError, FileNotFoundError, AttributeError) as exc:
        print(f"clarion serve: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        sock = listen_socket(args.host, args.port)
    except OSError as exc:
        print(f"clarion serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"clarion serve: {model!r} at http://{args.host}:{sock.getsockname()[1]}/invocations", file=sys.stderr)
    try:
        uvicorn.Server(
            uvicorn.Config(app, host=args.host, port=sock.getsockname()[1], log_level="info", lifespan="off")
        ).run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_OK
