"""The HTTP endpoint client: a :class:`~clarion.models.Model` behind a SageMaker-style endpoint.

Rows go out in batches (bounded in rows and bytes), several requests in flight, with retries on
transient faults; the wire format (request bodies, answer parsing) is :mod:`clarion.models.wire`,
shared with :mod:`clarion.serve`.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from clarion.models import wire
from clarion.models._base import Model, _cupy, _is_dataframe, _is_device_array

__all__ = [
    "MSG_ENDPOINT_COUNT",
    "MSG_ENDPOINT_HTTP",
    "MSG_ENDPOINT_PARSE",
    "MSG_ENDPOINT_RETRIES",
    "MSG_ENDPOINT_TIMEOUT",
    "Endpoint",
    "EndpointError",
    "EndpointResponseError",
]

MSG_ENDPOINT_TIMEOUT = "timed out: no complete answer within timeout={timeout:g} s (connect, send and the whole answer)"
MSG_ENDPOINT_HTTP = "endpoint {url} answered HTTP {status} for the batch starting at row {row}: {message}"
MSG_ENDPOINT_RETRIES = (
    "endpoint {url} failed for the batch starting at row {row} after {attempts} attempts; last error: {message}"
)
MSG_ENDPOINT_COUNT = "endpoint {url} returned {got} predictions for the batch starting at row {row}, which has {n} rows"
MSG_ENDPOINT_PARSE = "endpoint {url}: cannot parse the response for the batch starting at row {row}: {message}"


class EndpointError(RuntimeError, OSError):
    """An endpoint call failed: an HTTP 4xx answer, or retries exhausted on transient faults.

    An ``OSError`` (the failure of an outside system, like a file that cannot be read) as well
    as a ``RuntimeError``, so that callers and the command line report it as one message.

    Attributes
    ----------
    first_row : int
        Row number (0-based, in the input of ``predict``) of the first row of the failed batch.
    status : int or None
        The last HTTP status, or None for connection errors and timeouts.
    server_message : str
        The server's answer (first 1000 characters) or the connection error.
    """

    def __init__(self, message: str, *, first_row: int, status: int | None, server_message: str) -> None:
        super().__init__(message)
        self.first_row = first_row
        self.status = status
        self.server_message = server_message


class EndpointResponseError(EndpointError, ValueError):
    """An endpoint answered 200 with a wrong number of predictions or values that do not parse."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _expire(conn: http.client.HTTPConnection, expired: threading.Event) -> None:
    """The request on ``conn`` ran past its deadline: shut its socket, which ends the blocked read."""
    expired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _close_connections(conns: set, lock: threading.Lock) -> None:
    with lock:
        for conn in list(conns):
            conn.close()
        conns.clear()


class _HTTPConnection(http.client.HTTPConnection):
    # http.client sends the headers and the body in two writes; without TCP_NODELAY, Nagle's
    # algorithm and the server's delayed ACK add ~40 ms to every request.
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-npy")


def _image_body(batch: np.ndarray, content_type: str) -> bytes:
    """One request body: the image encoded as JPEG / PNG (Pillow), or the batch as ``.npy``."""
    import io

    buf = io.BytesIO()
    if content_type == "application/x-npy":
        np.save(buf, np.ascontiguousarray(batch), allow_pickle=False)
        return buf.getvalue()
    from PIL import Image

    img = np.asarray(batch[0])
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img.astype(np.float64) * (255.0 if img.max(initial=0) <= 1 else 1.0)), 0, 255)
        img = img.astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    fmt = "PNG" if content_type == "image/png" else "JPEG"
    Image.fromarray(img).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _detection_lists(ep: Any, data: bytes, n: int, first_row: int) -> list[np.ndarray]:
    """Per image (K, 6) detections from a JSON response (the document, or ep.probability's
    JMESPath): (K, 6) for one image, (n, K, 6) for n."""
    try:
        doc = json.loads(data)
        if isinstance(ep.probability, str):
            import jmespath

            doc = jmespath.search(ep.probability, doc)
    except (ValueError, TypeError) as exc:
        raise ep._bad(first_row, f"not a JSON detection list: {exc}") from None
    items = doc if isinstance(doc, list) else None
    if items is None:
        raise ep._bad(first_row, f"expected a list of detections, got {type(doc).__name__}")
    if n == 1 and (not items or not isinstance(items[0], list) or not items[0] or not isinstance(items[0][0], list)):
        items = [items]  # one image's (K, 6) rows
    if len(items) != n:
        raise EndpointResponseError(
            MSG_ENDPOINT_COUNT.format(url=ep.url, got=len(items), row=first_row, n=n),
            first_row=first_row,
            status=200,
            server_message=data[:200].decode("utf-8", "replace"),
        )
    out = []
    for it in items:
        try:
            d = np.asarray(it, dtype=np.float64).reshape(-1, 6) if len(it) else np.empty((0, 6))
        except (ValueError, TypeError):
            raise ep._bad(first_row, "each detection must be 6 numbers [class, score, x0, y0, x1, y1]") from None
        out.append(d)
    return out


class Endpoint(Model):
    """A model behind an HTTP endpoint that speaks the SageMaker invocation protocol.

    Rows are sent as ``POST`` requests in batches of at most ``max_batch_rows`` rows and
    ``max_payload_bytes`` bytes, ``concurrency`` batches at a time, and the answers are put back
    in input order. Connection errors, timeouts, HTTP 429 and 5xx are retried ``retries`` times
    with exponential backoff (``backoff * 2**attempt`` seconds, or the server's ``Retry-After``
    when larger). Anything else raises; the result is never shortened or reordered.

    Parameters
    ----------
    url : str
        ``http://host:port/path``; an empty path means ``/invocations``.
    content_type : {"text/csv", "application/jsonlines", "application/json"}, default "text/csv"
        Request format. CSV: one row per line, no header. JSON Lines: one
        ``content_template`` per row with ``$features`` replaced by the row as a JSON list
        (default ``{"features":$features}``). JSON: ``content_template`` with ``$records`` (the
        batch as a JSON list; default) or ``$record`` (one row per request), each record built
        from ``record_template`` (``$features`` list, default; ``$features_kvp`` object;
        ``$feature_names``; or ``${name}`` per feature).
    accept_type : str, optional
        Response format (default: ``content_type``). CSV: one line per row; ``probability`` /
        ``label`` are column indices (absent: the whole line is the scores; a cell holding a JSON
        list is expanded). JSON Lines: one JSON value per row; JSON: one document;
        ``probability`` / ``label`` are JMESPath expressions (for JSON they must yield a list with
        one item per row). Absent, the line (JSON Lines) or document (JSON) itself must be the
        number(s).
    label, probability : int or str, optional
        Where the predicted label / the scores are (Clarify's ``predictor.label`` /
        ``predictor.probability``).
    output : {"probability", "label"}, optional
        Which one to return when both are given (default: probability when set).
    label_headers : sequence of str, optional
        Names of the score columns; also maps non-numeric predicted labels to their index.
    content_template, record_template : str, optional
        See ``content_type``.
    feature_names : sequence of str, optional
        For ``$features_kvp``, ``$feature_names`` and ``${name}`` (default: DataFrame columns).
    max_batch_rows : int, default 1000
    max_payload_bytes : int, default 6_000_000
    concurrency : int, default 4
        Requests in flight at once.
    timeout : float, default 60
        Seconds one request may take in all (connect, send, and the whole answer, however slowly
        it comes); a request past it is a transient fault (retried). A batch therefore takes at
        most about ``(retries + 1) * timeout`` seconds plus the backoff.
    retries : int, default 3
        Extra attempts after the first on transient faults (connection errors, timeouts, 429, 5xx).
    backoff : float, default 0.1
        Seconds before the first retry; doubles with each one.
    headers : dict, optional
        Extra request headers (e.g. ``X-Amzn-SageMaker-Custom-Attributes``).

    Raises
    ------
    EndpointError
        From ``predict``: HTTP 4xx (other than 429), or retries exhausted; carries the failed
        batch's first row, the status and the server's message.
    EndpointResponseError
        From ``predict``: a 200 answer with the wrong number of predictions or unparseable values.
    """

    def __init__(
        self,
        url: str,
        *,
        content_type: str = "text/csv",
        accept_type: str | None = None,
        label: int | str | None = None,
        probability: int | str | None = None,
        output: str | None = None,
        label_headers: Sequence[Any] | None = None,
        content_template: str | None = None,
        record_template: str | None = None,
        feature_names: Sequence[str] | None = None,
        max_batch_rows: int = 1000,
        max_payload_bytes: int = 6_000_000,
        concurrency: int = 4,
        timeout: float = 60,
        retries: int = 3,
        backoff: float = 0.1,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host[:port]/path, got {url!r}")
        content_type = content_type.lower()
        content_type = "image/jpeg" if content_type == "image/jpg" else content_type
        image = content_type in IMAGE_CONTENT_TYPES  # images: predict_images (Clarify's CV content types)
        accept_type = (accept_type or ("application/json" if image else content_type)).lower()
        if content_type not in wire.CONTENT_TYPES and not image:
            raise ValueError(
                f"content_type must be one of {wire.CONTENT_TYPES + IMAGE_CONTENT_TYPES}, got {content_type!r}"
            )
        if accept_type not in wire.CONTENT_TYPES:
            raise ValueError(f"accept_type must be one of {wire.CONTENT_TYPES}, got {accept_type!r}")
        for arg, value in (
            ("max_batch_rows", max_batch_rows),
            ("max_payload_bytes", max_payload_bytes),
            ("concurrency", concurrency),
        ):
            if int(value) <= 0:
                raise ValueError(f"{arg} must be positive, got {value!r}")
        if float(timeout) <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if int(retries) < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        for arg, value in (("label", label), ("probability", probability)):
            if value is None:
                continue
            if accept_type == "text/csv" and not isinstance(value, (int, np.integer)):
                raise ValueError(f"{arg} must be a column index for accept_type text/csv, got {value!r}")
            if accept_type != "text/csv" and not isinstance(value, str):
                raise ValueError(f"{arg} must be a JMESPath string for accept_type {accept_type}, got {value!r}")
        if output is None:
            output = "label" if (label is not None and probability is None) else "probability"
        if output not in ("label", "probability"):
            raise ValueError(f"output must be 'label' or 'probability' for an Endpoint, got {output!r}")
        if output == "label" and label is None:
            raise ValueError("output='label' needs label= (where the predicted label is in the response)")
        if content_type == "application/jsonlines":
            content_template = content_template or '{"features":$features}'
            if "$features" not in content_template:
                raise ValueError(f"content_template for JSON Lines must contain $features, got {content_template!r}")
        elif content_type == "application/json":
            content_template = content_template or "$records"
            if "$records" not in content_template and "$record" not in content_template:
                raise ValueError(
                    f"content_template for JSON must contain $record or $records, got {content_template!r}"
                )
            record_template = record_template or "$features"
            wire.check_record_template(record_template)
        elif record_template is not None:
            raise ValueError(f"record_template applies to content_type application/json only, not {content_type}")
        self.url = url
        self.content_type = content_type
        self.accept_type = accept_type
        self.label = label
        self.probability = probability
        self.output = output
        self.content_template = content_template
        self.record_template = record_template
        self.max_batch_rows = int(max_batch_rows)
        self.max_payload_bytes = int(max_payload_bytes)
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.extra_headers = dict(headers or {})
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/invocations") + (f"?{parts.query}" if parts.query else "")
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # every worker thread's connection, so that close() (or garbage collection) closes them all
        self._conns: set[http.client.HTTPConnection] = set()
        self._conns_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_connections, self._conns, self._conns_lock)
        self._one_per_request = content_type == "application/json" and "$records" not in content_template
        field = probability if output == "probability" else label
        self._field = field
        self._parser = wire.ResponseParser(
            accept_type, field=field, output=output, label_headers=label_headers, one_per_request=self._one_per_request
        )
        headers_out = label_headers
        super().__init__(
            self._call_endpoint,
            accepts="numpy",
            feature_names=feature_names,
            output_names=None if output == "label" else headers_out,
            name=url,
            output=output,
        )
        if output == "label":
            self._output_names = ["label"]
            self._n_outputs = 1
        self._label_headers = None if label_headers is None else list(label_headers)

    def predict_images(self, images: Any, *, detections: bool = False) -> Any:
        """Predictions for a batch of images ``(B, H, W[, C])`` from an endpoint whose content type
        is an image type: ``image/jpeg`` / ``image/png`` send one encoded image per request (uint8
        pixels; floats in [0, 1] are scaled to 0..255), ``application/x-npy`` sends up to
        ``max_batch_rows`` images per request as one ``.npy`` array. Requests run ``concurrency`` at
        a time with the retries of :meth:`predict`.

        Returns scores ``(B, D)`` float64 (the response read like :meth:`predict`'s), or with
        ``detections=True`` a list of B arrays ``(K_i, 6)`` of ``[class, score, x0, y0, x1, y1]``
        (the JSON response, or its ``probability`` JMESPath, is per image ``(K, 6)`` for one image
        or ``(n, K, 6)`` for a batch of n)."""
        if self.content_type not in IMAGE_CONTENT_TYPES:
            raise ValueError(
                f"predict_images needs an image content_type {IMAGE_CONTENT_TYPES}; "
                f"this endpoint sends {self.content_type}"
            )
        batch = np.asarray(images)
        n = batch.shape[0]
        per = 1 if self.content_type != "application/x-npy" else self.max_batch_rows
        bodies = [(_image_body(batch[a : a + per], self.content_type), a, min(n, a + per)) for a in range(0, n, per)]

        def run(body: bytes, start: int, stop: int) -> Any:
            data = self._post(body, start)
            if not detections and stop - start == 1 and self.accept_type == "application/json" and self._field is None:
                doc = json.loads(data) if data.strip()[:1] == b"[" else None
                if isinstance(doc, list) and doc and not isinstance(doc[0], list):  # one image's scores
                    data = json.dumps([doc]).encode()
            return (
                _detection_lists(self, data, stop - start, start)
                if detections
                else self._decode(data, stop - start, start)
            )

        if len(bodies) == 1 or self.concurrency == 1:
            parts = [run(*b) for b in bodies]
        else:
            futures = [self._executor().submit(run, *b) for b in bodies]
            parts = [f.result() for f in futures]
        if detections:
            return [d for p in parts for d in p]
        return np.concatenate(parts, axis=0) if parts else np.empty((0, self._n_outputs or 0))

    def with_options(self, *, output: str | None = None, label_headers: Sequence[Any] | None = None) -> Endpoint:
        """A copy of this endpoint returning ``output`` and/or using other ``label_headers``."""
        return self._replace(
            output=output or self.output,
            label_headers=label_headers if label_headers is not None else self._label_headers,
        )

    def _replace(self, **changes: Any) -> Endpoint:
        """A copy of this endpoint with some constructor arguments changed."""
        kw: dict[str, Any] = dict(
            content_type=self.content_type,
            accept_type=self.accept_type,
            label=self.label,
            probability=self.probability,
            output=self.output,
            label_headers=self._label_headers,
            content_template=self.content_template,
            record_template=self.record_template,
            feature_names=self.feature_names,
            max_batch_rows=self.max_batch_rows,
            max_payload_bytes=self.max_payload_bytes,
            concurrency=self.concurrency,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            headers=self.extra_headers,
        )
        kw.update(changes)
        return Endpoint(self.url, **kw)

    def select(self, *, label: int | str | None = None, probability: int | str | Sequence[int] | None = None) -> Model:
        """This endpoint restricted to its predicted label or to some of its scores.

        A field in the form of the answers (a column index for ``accept_type`` text/csv, a
        JMESPath expression for JSON and JSON Lines) gives an :class:`Endpoint` that reads that
        field from each answer (``predictor.label`` / ``predictor.probability``); other indices
        select among the outputs already read, as :meth:`Model.select` does.
        """
        if (label is None) == (probability is None):
            raise ValueError("select() takes exactly one of label= and probability=")
        value = label if label is not None else probability
        csv_field = (
            self.accept_type == "text/csv"
            and isinstance(value, (int, np.integer))
            and not isinstance(value, bool)
            and value >= 0
        )
        if csv_field or (self.accept_type != "text/csv" and isinstance(value, str)):
            return self._replace(
                label=label if label is not None else self.label,
                probability=probability if probability is not None else self.probability,
                output="label" if label is not None else "probability",
            )
        if isinstance(value, str):
            raise TypeError(
                f"{'label' if label is not None else 'probability'} must be a column index for "
                f"accept_type text/csv, got {value!r}"
            )
        return super().select(label=label, probability=probability)  # type: ignore[arg-type]

    def close(self) -> None:
        """Shut the worker threads down and close this thread's connection."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _close_connections(self._conns, self._conns_lock)

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- Model hooks ---------------------------------------------------------------------------

    def _prepare(self, X: Any) -> tuple[Any, bool]:
        if _is_dataframe(X) or type(X) is np.ndarray:
            return X, False
        if _is_device_array(X):
            return _cupy().asnumpy(X), True
        return np.asarray(X), False

    def _chunk_rows(self, X: Any) -> int:
        return max(super()._chunk_rows(X), 1)

    def _predict_one(self, X: Any, n: int, offset: int) -> Any:
        if n == 0:
            if self._n_outputs is None:
                raise ValueError(f"cannot predict 0 rows with endpoint {self.url}: its number of outputs is unknown")
            return np.empty((0, self._n_outputs), dtype=np.float64)
        xin, on_device = self._prepare(X)
        return self._finish(self._call_endpoint(xin, offset), n, on_device)

    # -- encoding (the wire format lives in clarion.models.wire) --------------------------------

    def _encode_rows(self, X: Any) -> tuple[list[bytes], bytes, bytes, bytes]:
        """Each row's bytes, plus the batch's prefix, separator and suffix."""
        if self.content_type in IMAGE_CONTENT_TYPES:
            raise ValueError(f"endpoint {self.url} takes images ({self.content_type}): call predict_images")
        return wire.encode_rows(
            X,
            content_type=self.content_type,
            content_template=self.content_template,
            record_template=self.record_template,
            feature_names=self.feature_names,
        )

    def _batches(self, enc: list[bytes], pre: bytes, sep: bytes, post: bytes) -> list[tuple[int, int]]:
        return wire.batches(
            enc,
            pre,
            sep,
            post,
            max_rows=1 if self._one_per_request else self.max_batch_rows,
            max_bytes=self.max_payload_bytes,
        )

    # -- transport -----------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = _HTTPSConnection if self._scheme == "https" else _HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.add(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._conns_lock:
                self._conns.discard(conn)

    def _post(self, body: bytes, first_row: int) -> bytes:
        headers = {"Content-Type": self.content_type, "Accept": self.accept_type, **self.extra_headers}
        attempt = 0
        while True:
            status: int | None = None
            wait = self.backoff * (2**attempt)
            expired = threading.Event()
            watchdog = None
            try:
                conn = self._connection()
                # the socket timeout bounds each read; the watchdog bounds the whole request (a
                # server that trickles its answer a byte at a time never trips a per-read timeout)
                watchdog = threading.Timer(self.timeout, _expire, (conn, expired))
                watchdog.daemon = True
                watchdog.start()
                conn.request("POST", self._path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                watchdog.cancel()
                if expired.is_set():
                    raise TimeoutError(MSG_ENDPOINT_TIMEOUT.format(timeout=self.timeout))
                if resp.will_close:
                    self._drop_connection()
            except (OSError, http.client.HTTPException) as exc:
                if watchdog is not None:
                    watchdog.cancel()
                self._drop_connection()
                if expired.is_set() or isinstance(exc, TimeoutError):
                    status = None
                    message = MSG_ENDPOINT_TIMEOUT.format(timeout=self.timeout)
                else:
                    message = self._describe(exc)
            else:
                if 200 <= status < 300:
                    return data
                message = data[:1000].decode("utf-8", "replace").strip() or f"(an empty answer, {resp.reason})"
                if status != 429 and status < 500:
                    raise EndpointError(
                        MSG_ENDPOINT_HTTP.format(url=self.url, status=status, row=first_row, message=message),
                        first_row=first_row,
                        status=status,
                        server_message=message,
                    )
                hint = _retry_after(resp.getheader("Retry-After"))
                if hint is not None:
                    wait = max(wait, min(hint, self.timeout))
                message = f"HTTP {status}: {message}"
            if attempt >= self.retries:
                raise EndpointError(
                    MSG_ENDPOINT_RETRIES.format(url=self.url, row=first_row, attempts=attempt + 1, message=message),
                    first_row=first_row,
                    status=status,
                    server_message=message,
                )
            time.sleep(wait)
            attempt += 1

    def _describe(self, exc: BaseException) -> str:
        """A connection failure in words, with what to check."""
        where = f"{self._host}:{self._port or (443 if self._scheme == 'https' else 80)}"
        kind = type(exc).__name__
        if isinstance(exc, ConnectionRefusedError):
            return f"{kind}: nothing listens on {where} (is the endpoint server running?)"
        if isinstance(exc, socket.gaierror):
            return f"{kind}: cannot resolve the host {self._host!r} ({exc.strerror or exc})"
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
            return f"{kind}: the server at {where} closed the connection without an answer"
        return f"{kind}: {exc}"

    # -- decoding ------------------------------------------------------------------------------

    def _bad(self, first_row: int, message: str) -> EndpointResponseError:
        return EndpointResponseError(
            MSG_ENDPOINT_PARSE.format(url=self.url, row=first_row, message=message),
            first_row=first_row,
            status=200,
            server_message=message,
        )

    def _decode(self, data: bytes, n: int, first_row: int) -> np.ndarray:
        try:
            return self._parser.parse(data, n, first_row)
        except wire.ResponseError as exc:
            if exc.got is not None:
                raise EndpointResponseError(
                    MSG_ENDPOINT_COUNT.format(url=self.url, got=exc.got, row=first_row, n=n),
                    first_row=first_row,
                    status=200,
                    server_message=exc.text,
                ) from None
            raise self._bad(first_row, str(exc)) from None

    # -- the call ------------------------------------------------------------------------------

    def _run_batch(self, body: bytes, start: int, stop: int) -> np.ndarray:
        # start/stop are row numbers in the input of predict (chunk offset included)
        return self._decode(self._post(body, start), stop - start, start)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="clarion-endpoint")
            return self._pool

    def _call_endpoint(self, X: Any, offset: int = 0) -> np.ndarray:
        enc, pre, sep, post = self._encode_rows(X)
        local = self._batches(enc, pre, sep, post)
        bodies = [pre + sep.join(enc[s:e]) + post for s, e in local]
        batches = [(s + offset, e + offset) for s, e in local]
        if len(batches) == 1 or self.concurrency == 1:
            parts = [self._run_batch(b, s, e) for b, (s, e) in zip(bodies, batches)]
        else:
            pool = self._executor()
            futures = [pool.submit(self._run_batch, b, s, e) for b, (s, e) in zip(bodies, batches)]
            try:
                parts = [f.result() for f in futures]
            finally:
                for f in futures:
                    f.cancel()
        widths = {p.shape[1] for p in parts}
        if len(widths) > 1:
            raise self._bad(0, f"batches returned different numbers of values per row: {sorted(widths)}")
        return np.concatenate(parts, axis=0)
