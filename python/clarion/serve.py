"""A local model server speaking the SageMaker invocation protocol (``clarion serve MODEL``:
:mod:`clarion.cli.serve`).

``POST /invocations`` takes rows as ``text/csv`` (one row per line, no header),
``application/jsonlines`` (one JSON value per line: a list of feature values, or an object whose
``features`` field — or the ``--features`` JMESPath — holds them) or ``application/json`` (a list
of such records, or an object with ``instances`` / the ``--features`` JMESPath). It answers, by
the ``Accept`` header (default: the request's content type):

* ``text/csv``: one line per row with the model's outputs;
* ``application/jsonlines``: one ``{"scores": [...]}`` per row (plus ``"predicted_label"``, the
  name of the highest score, when the model has several outputs);
* ``application/json``: ``{"predictions": [{"scores": [...], ...}, ...]}``.

With an explainer (``explainer=``, ``clarion serve MODEL --explain EXPLAINER_CONFIG``: SageMaker
Clarify's ``ClarifyExplainerConfig`` as JSON) every answer is Clarify's online explainability
response instead, ``application/json``: the predictions in the ``Accept`` format under
``predictions.data`` plus the Kernel SHAP attributions of each record that ``EnableExplanations``
(or the request's ``X-Amzn-SageMaker-Enable-Explanations`` header) selects
(:class:`clarion.explain.OnlineExplainer`; ``docs/online-explainability.md``). A request with
more records than ``InferenceConfig.MaxRecordCount`` is answered 413, a body larger than
``MaxPayloadInMB`` (when smaller than ``max_body_bytes``) 413, a record of the wrong width or with
text where the baseline is numeric 400 naming the record. Explanations run in worker threads
(at most ``max_concurrency`` at once), never on the event loop: ``/ping`` answers while they run.

``GET /ping`` answers 200 when the model is loaded. Bad requests (malformed CSV / JSON, JSON
nested too deeply, records of the wrong shape or feature values that are not scalars) get 400
with a message, unsupported media types 415 / 406, and a body larger than ``max_body_bytes``
(default :data:`DEFAULT_MAX_BODY_BYTES`, SageMaker's 6 MB invocation limit; ``--max-body-bytes``)
413: the body is read as a stream and the request refused as soon as it passes the limit (or
at once when its ``Content-Length`` does), so a large body never sits in memory. The server is
uvicorn + starlette (optional dependencies, ``pip install clarion[serve]``).

For tests and demos, :class:`ModelServer` runs the same server in a background thread::

    with ModelServer(model) as url:
        Endpoint(url).predict(X)
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from typing import Any

import numpy as np

from clarion import options
from clarion.models import Model, as_model
from clarion.models.wire import (
    CONTENT_TYPES,
    MSG_NOT_SCALAR,
    MSG_TOO_DEEP,
    RequestError,
    format_response,
    parse_request,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MSG_BODY_TOO_LARGE",
    "MSG_NOT_SCALAR",
    "MSG_TOO_DEEP",
    "MSG_TOO_MANY_RECORDS",
    "ModelServer",
    "create_app",
    "listen_socket",
    "parse_max_body",
    "uvicorn_module",
]

#: largest request body accepted by default: SageMaker's invocation payload limit (6 MB = 6 MiB);
#: clarion's :class:`clarion.models.Endpoint` sends at most 6,000,000 bytes per request
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024

MSG_TOO_MANY_RECORDS = (
    "request has {n} records, more than {key}={limit}: the model takes at most {limit} records per "
    "call; send at most {limit} records per request"
)
MSG_BODY_TOO_LARGE = (
    "request body larger than this server's limit of {limit} bytes (max_body_bytes, "
    "--max-body-bytes); send fewer rows per request"
)
#: a request the server cannot read (the wire format's error; answered 400)
_BadRequest = RequestError


class _TooLarge(Exception):
    pass


def _max_body(v: Any, arg: str = "max_body_bytes") -> int:
    """A positive byte count: an int, or a size such as ``"6MiB"``, ``"6MB"`` (one grammar for every
    byte size: :func:`clarion.options.byte_size`)."""
    return options.byte_size(v, name=arg)


async def _read_body(request: Any, limit: int) -> bytes:
    """The request body, read as a stream; :class:`_TooLarge` as soon as it passes ``limit`` bytes
    (at once when ``Content-Length`` says so; the count of bytes received decides otherwise, with
    chunked transfer or a ``Content-Length`` that lies)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise _BadRequest(f"Content-Length {declared[:40]!r} is not a number") from None
        if n > limit:
            raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _predict(model: Model, X: Any) -> Any:
    """``model.predict(X)``; a float overflow in the model (an extreme feature value) gives inf in
    the answer, as numpy's default does, and is never raised where warnings are errors."""
    with np.errstate(over="ignore"):
        return model.predict(X)


def create_app(
    model: Any,
    *,
    features: str | None = None,
    max_body_bytes: int | str = DEFAULT_MAX_BODY_BYTES,
    capture: Any = None,
    capture_percent: float = 100.0,
    explainer: Any = None,
    max_concurrency: int | None = None,
) -> Any:
    """A starlette application serving ``model`` at ``POST /invocations`` and ``GET /ping``.

    Parameters
    ----------
    model
        Anything :func:`clarion.models.as_model` accepts.
    features : str, optional
        JMESPath locating the feature values in JSON / JSON Lines records (default: the record
        itself when it is a list, its ``features`` field when it is an object).
    max_body_bytes : int or str, default :data:`DEFAULT_MAX_BODY_BYTES`
        Largest request body accepted (bytes, or a string like ``"16MiB"``); a larger one is
        answered 413 (:data:`MSG_BODY_TOO_LARGE`) without being read whole.
    capture : str, path or :class:`clarion.capture.CaptureWriter`, optional
        Write each answered request and its response as a SageMaker data-capture record into
        hourly JSON Lines files under this folder (``--capture``; :mod:`clarion.capture`).
    capture_percent : float, default 100
        Share of the requests captured (``--capture-percent``), when ``capture`` is a folder.
    explainer : path, dict or :class:`clarion.explain.OnlineExplainer`, optional
        Answer Clarify's online explainability response (predictions + Kernel SHAP per record): a
        ``ClarifyExplainerConfig`` (JSON file or dict, read and checked now: a bad key is a
        :class:`clarion.config.ConfigError` naming its path), or an explainer built in Python
        (whose model then serves; ``model`` may be None).
    max_concurrency : int, optional
        Explanations computed at once (default: the number of CPU cores); more requests wait.

    Returns
    -------
    starlette.applications.Starlette
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.routing import Route

    limit = _max_body(max_body_bytes)
    max_records = None
    if explainer is not None:
        from clarion.explain import OnlineExplainer

        if not isinstance(explainer, OnlineExplainer):
            explainer = OnlineExplainer.from_config(model, explainer)
        model = explainer.model
        cfg = explainer.config
        if cfg is not None and cfg.max_payload_in_mb is not None:
            limit = min(limit, cfg.max_payload_in_mb << 20)
        if explainer.max_record_count is not None:
            max_records = (explainer.max_record_count, explainer.keys["max_record_count"])
        if features is None:
            features = explainer.features_attribute
    model = as_model(model)
    writer = None
    if capture is not None:
        from clarion.capture import CaptureWriter

        writer = capture if isinstance(capture, CaptureWriter) else CaptureWriter(capture, capture_percent)
    finder = None
    if features:
        import jmespath

        finder = jmespath.compile(features)

    async def ping(request):
        return Response(b"", status_code=200)

    n_workers = max_concurrency if max_concurrency is not None else (os.cpu_count() or 1)
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
    limiter = None
    if explainer is not None:
        import anyio

        limiter = anyio.CapacityLimiter(n_workers)

    async def explain(request, body: bytes, ctype: str, accept: str):
        import anyio

        from clarion.explain.online import ENABLE_EXPLANATIONS_HEADER

        if ctype == "text/csv":  # every record against the baseline's width, with the explainer's message
            bad = _csv_width_error(body, explainer.n_features)
            if bad is not None:
                return Response(f"ValueError: {bad}", status_code=400, media_type="text/plain")
        try:
            X = parse_request(body, ctype, feature_names=model.feature_names, accepts=model.accepts, features=finder)
        except (ValueError, TypeError, KeyError) as exc:
            return Response(f"{type(exc).__name__}: {exc}", status_code=400, media_type="text/plain")
        n = X.shape[0]
        if max_records is not None and n > max_records[0]:
            return Response(
                MSG_TOO_MANY_RECORDS.format(n=n, key=max_records[1], limit=max_records[0]),
                status_code=413,
                media_type="text/plain",
            )
        call = functools.partial(
            _explain_json, explainer, X, accept, request.headers.get(ENABLE_EXPLANATIONS_HEADER.lower())
        )
        try:
            answer = await anyio.to_thread.run_sync(call, limiter=limiter)
        except _BadRequest as exc:
            return Response(f"ValueError: {exc}", status_code=400, media_type="text/plain")
        except Exception as exc:  # noqa: BLE001 - the model or the explainer failed: a server error
            return Response(f"{type(exc).__name__}: {exc}", status_code=500, media_type="text/plain")
        return answer

    async def invocations(request):
        ctype = request.headers.get("content-type", "text/csv").split(";")[0].strip().lower()
        if ctype not in CONTENT_TYPES:
            return Response(
                f"unsupported content type {ctype!r}; use one of {list(CONTENT_TYPES)}",
                status_code=415,
                media_type="text/plain",
            )
        accept = request.headers.get("accept", ctype).split(",")[0].split(";")[0].strip().lower()
        if accept in ("", "*/*"):
            accept = ctype
        if accept not in CONTENT_TYPES:
            return Response(
                f"unsupported accept type {accept!r}; use one of {list(CONTENT_TYPES)}",
                status_code=406,
                media_type="text/plain",
            )
        try:
            body = await _read_body(request, limit)
        except _TooLarge:
            # close the connection: the rest of the body is not read
            return Response(
                MSG_BODY_TOO_LARGE.format(limit=limit),
                status_code=413,
                media_type="text/plain",
                headers={"connection": "close"},
            )
        except _BadRequest as exc:
            return Response(
                f"ValueError: {exc}", status_code=400, media_type="text/plain", headers={"connection": "close"}
            )
        except ClientDisconnect:
            return Response(b"", status_code=400)
        if explainer is not None:
            answer = await explain(request, body, ctype, accept)
            if isinstance(answer, Response):
                return answer
            if writer is not None and writer.sampled():
                from clarion.capture import INFERENCE_ID_HEADER

                writer.capture(
                    body, ctype, answer, "application/json", inference_id=request.headers.get(INFERENCE_ID_HEADER)
                )
            return Response(answer, media_type="application/json")
        try:
            X = parse_request(body, ctype, feature_names=model.feature_names, accepts=model.accepts, features=finder)
            y = await run_in_threadpool(_predict, model, X)
        except (ValueError, TypeError, KeyError) as exc:
            return Response(f"{type(exc).__name__}: {exc}", status_code=400, media_type="text/plain")
        except Exception as exc:  # noqa: BLE001 - the model failed: a server error, not the client's
            return Response(f"{type(exc).__name__}: {exc}", status_code=500, media_type="text/plain")
        answer = format_response(np.asarray(y), accept, model.output_names)
        if writer is not None and writer.sampled():
            from clarion.capture import INFERENCE_ID_HEADER

            writer.capture(
                body,
                ctype,
                answer,
                accept,
                inference_id=request.headers.get(INFERENCE_ID_HEADER),
            )
        return Response(answer, media_type=accept)

    return Starlette(
        routes=[Route("/ping", ping, methods=["GET"]), Route("/invocations", invocations, methods=["POST"])]
    )


def _csv_width_error(body: bytes, width: int) -> str | None:
    """The message for the first CSV record without ``width`` fields (None when all have them)."""
    import csv
    import io

    from clarion.explain.online import MSG_RECORD_WIDTH

    text = body.decode("utf-8", errors="replace")
    for i, row in enumerate(r for r in csv.reader(io.StringIO(text)) if r):
        if len(row) != width:
            return MSG_RECORD_WIDTH.format(record=i, got=len(row), want=width)
    return None


def _explain_json(explainer: Any, X: Any, accept: str, enable: str | None) -> bytes:
    """The explainer's answer to one request (run in a worker thread)."""
    with np.errstate(over="ignore"):
        return explainer.explain(X, accept=accept, enable_explanations=enable).to_json()


def _uvicorn():
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError("clarion serve needs uvicorn and starlette: pip install 'clarion[serve]'") from exc
    return uvicorn


def _listen_socket(host: str, port: int) -> socket.socket:
    """A bound socket with TCP_NODELAY, which accepted connections inherit: uvicorn writes a
    response's headers and body separately, and with Nagle's algorithm the client's delayed ACK
    would add ~40 ms to every answer."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


class ModelServer:
    """Run the model server in a background thread (for tests, demos and notebooks).

    Parameters
    ----------
    model
        Anything :func:`clarion.models.as_model` accepts, or a starlette/ASGI app from
        :func:`create_app`.
    host : str, default "127.0.0.1"
    port : int, default 0
        0 picks a free port.
    features : str, optional
        See :func:`create_app`.
    max_body_bytes : int or str, default :data:`DEFAULT_MAX_BODY_BYTES`
        See :func:`create_app`.
    explainer : path, dict or :class:`clarion.explain.OnlineExplainer`, optional
        See :func:`create_app`: answer with predictions and Kernel SHAP attributions.

    Examples
    --------
    >>> with ModelServer(model) as url:            # doctest: +SKIP
    ...     Endpoint(url).predict(X)

    Attributes
    ----------
    url : str
        ``http://host:port/invocations`` once started.
    """

    def __init__(
        self,
        model: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        features: str | None = None,
        app: Any = None,
        max_body_bytes: int | str = DEFAULT_MAX_BODY_BYTES,
        explainer: Any = None,
    ) -> None:
        self._app = (
            app
            if app is not None
            else create_app(model, features=features, max_body_bytes=max_body_bytes, explainer=explainer)
        )
        self.host = host
        self.port = int(port)
        self._server = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.url: str | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the ``/invocations`` URL."""
        uvicorn = _uvicorn()
        sock = _listen_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            log_config=None,
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._sock = sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="clarion-serve", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the model server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}/invocations"
        return self.url

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# the command line (clarion.cli.serve) uses these
def parse_max_body(v: Any, arg: str = "max_body_bytes") -> int:
    """A request body limit (bytes, or a size such as ``"16MiB"``) as a positive int; ValueError
    naming ``arg`` otherwise."""
    return _max_body(v, arg)


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port), for uvicorn to serve on."""
    return _listen_socket(host, port)


def uvicorn_module() -> Any:
    """The ``uvicorn`` module (ImportError naming the ``serve`` extra when it is missing)."""
    return _uvicorn()
