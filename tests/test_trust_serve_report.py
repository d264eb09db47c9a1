"""Issue 13, items 17, 19, 20 (report) and 21 (analysis.json): the model server bounds request
bodies and answers bad JSON with 400; report.md escapes data; ``clarion report`` refuses an output
it cannot write and keeps a monitor folder's drift section; a malformed analysis.json gives one
clear ``ValueError`` naming the file and the key path, never a traceback.

The server tests run a real uvicorn server on 127.0.0.1 (a free port) and talk raw HTTP over a
socket, so chunked bodies and lying ``Content-Length`` headers are exercised as a client sends them.
"""

from __future__ import annotations

import asyncio
import json
import socket

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from clarion import serve
from clarion.serve import (
    DEFAULT_MAX_BODY_BYTES,
    MSG_BODY_TOO_LARGE,
    ModelServer,
    create_app,
)


def _double(X):
    return np.asarray(X, dtype=np.float64)[:, :1] * 2


# ---- item 17: clarion serve ---------------------------------------------------------------------


def _raw(url: str, head: str, body_parts=(), *, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send ``head`` (request line + headers, no blank line) and the body parts over a socket;
    return (status, whole response). Sending stops quietly when the server closes the connection."""
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head.encode() + b"\r\n\r\n")
        for part in body_parts:
            try:
                s.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head_end = data.index(b"\r\n\r\n")
                headers = data[:head_end].decode().lower()
                n = next((int(h.split(":")[1]) for h in headers.split("\r\n") if h.startswith("content-length:")), None)
                if n is not None and len(data) >= head_end + 4 + n:
                    break
    return int(data.split(b" ", 2)[1]), data


@pytest.fixture(scope="module")
def small_server():
    with ModelServer(_double, max_body_bytes=1000) as url:
        yield url


def test_declared_body_over_the_limit_gets_413_without_sending_it(small_server):
    """Content-Length of 256 MiB: answered 413 at once (before the fix the server waited for,
    then buffered, the whole body)."""
    status, resp = _raw(small_server, "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                                      f"Content-Length: {256 << 20}")
    assert status == 413
    assert MSG_BODY_TOO_LARGE.format(limit=1000).encode() in resp
    assert b"connection: close" in resp.lower()


def test_chunked_body_over_the_limit_gets_413_while_streaming(small_server):
    """No Content-Length (chunked): the server counts what arrives and answers 413 once past the
    limit, without waiting for the end of the body (which never comes here)."""
    chunk = b"1,2,3\n" * 100  # 600 bytes
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(3)]  # 1800 bytes, no last chunk
    status, resp = _raw(small_server, "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                                      "Transfer-Encoding: chunked", parts)
    assert status == 413, resp


def test_lying_content_length_is_not_trusted(small_server):
    """Content-Length says 10 but the body is chunked and larger: the bytes received decide."""
    chunk = b"1,2,3\n" * 100
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(3)]
    status, resp = _raw(small_server, "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                                      "Content-Length: 10\r\nTransfer-Encoding: chunked", parts)
    assert status in (400, 413), resp  # 400: h11 itself refuses the conflicting headers
    assert status != 200


def test_body_at_the_limit_is_served_and_one_byte_more_is_not():
    row = b"1.5,2\n"
    body = row * 50
    with ModelServer(_double, max_body_bytes=len(body)) as url:
        status, resp = _raw(url, "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                                 f"Content-Length: {len(body)}", [body])
        assert status == 200 and resp.endswith(b"3.0\n")
        status, _ = _raw(url, "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                              f"Content-Length: {len(body) + 1}", [body + b"\n"])
        assert status == 413
        # the server still answers on new connections
        status, _ = _raw(url, "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                              f"Content-Length: {len(row)}", [row])
        assert status == 200


def _asgi_post(app, chunks, ctype: str, *, endless: bool = False) -> tuple[int, str]:
    """POST ``chunks`` to the ASGI ``app`` directly (no Content-Length); with ``endless`` the last
    chunk repeats forever. Returns (status, body text); ``_asgi_post.received`` counts receive calls."""
    sent: list[dict] = []
    queue = list(chunks)
    _asgi_post.received = 0

    async def receive():
        _asgi_post.received += 1
        assert _asgi_post.received < 1000, "the app kept reading an endless body"
        part = queue.pop(0) if len(queue) > 1 or not endless else queue[0]
        return {"type": "http.request", "body": part, "more_body": endless or bool(queue)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/invocations", "raw_path": b"/invocations", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", ctype.encode())], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode("utf-8", "replace")


def test_app_stops_reading_the_stream_past_the_limit():
    """At the ASGI level: an endless body is read only up to the limit (bounded memory)."""
    app = create_app(_double, max_body_bytes=10_000)
    chunk = b"1,2\n" * 256  # 1 KiB
    status, _ = _asgi_post(app, [chunk], "text/csv", endless=True)
    assert status == 413
    assert _asgi_post.received <= 10_000 // len(chunk) + 1


def test_default_limit_is_sagemakers_and_covers_the_endpoint_client():
    import inspect

    from clarion.models import Endpoint

    assert DEFAULT_MAX_BODY_BYTES == 6 * 1024 * 1024
    assert inspect.signature(Endpoint).parameters["max_payload_bytes"].default <= DEFAULT_MAX_BODY_BYTES
    assert inspect.signature(create_app).parameters["max_body_bytes"].default == DEFAULT_MAX_BODY_BYTES


@pytest.mark.parametrize("bad", [0, -5, "lots", "6 parsecs", True, 1.5])
def test_max_body_bytes_is_validated(bad):
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(_double, max_body_bytes=bad)


def test_cli_max_body_bytes_accepts_units_and_refuses_garbage(capsys):
    import argparse

    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    assert p.parse_args(["m.onnx"]).max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert serve._max_body(p.parse_args(["m.onnx", "--max-body-bytes", "16MiB"]).max_body_bytes) == 16 << 20
    assert serve._max_body("2MB") == 2_000_000
    with pytest.raises(ValueError, match="--max-body-bytes"):
        serve._max_body("-1", "--max-body-bytes")


def _post(url: str, body: bytes, ctype: str) -> tuple[int, bytes]:
    status, resp = _raw(url, f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                             f"Content-Length: {len(body)}", [body])
    return status, resp.split(b"\r\n\r\n", 1)[1]


@pytest.fixture(scope="module")
def server():
    with ModelServer(_double) as url:
        yield url


@pytest.mark.parametrize("ctype", ["application/json", "application/jsonlines"])
def test_deeply_nested_json_is_a_400(server, ctype):
    """Before the fix json.loads raised RecursionError, answered 500 as a model failure."""
    deep = b"[" * 200_000 + b"]" * 200_000
    status, text = _post(server, deep, ctype)
    assert status == 400, text
    assert b"nested too deeply" in text
    # deep but within what the parser handles: still refused (limit on nesting), 400
    status, text = _post(server, b"[" * 500 + b"1" + b"]" * 500, ctype)
    assert status == 400 and b"nested too deeply" in text


@pytest.mark.parametrize("body, ctype, needle", [
    (b"[[1, 2], [3", "application/json", b"cannot parse JSON"),
    (b"\xff\xfe", "application/json", b"not UTF-8"),
    (b'[[1, {"a": 2}]]', "application/json", b"record 0, feature 1"),
    (b'[[1, [2, 3]]]', "application/json", b"record 0, feature 1"),
    (b'{"instances": 5}', "application/json", b"expected a JSON list"),
    (b'[1, 2]\n"text"\n', "application/jsonlines", b"record 1"),
    (b'{"features": {"x": 1}}\n', "application/jsonlines", b"record 0"),
    (b"1,2\n3,4,5,6,7\n", "text/csv", b"cannot parse CSV"),
    (b"", "text/csv", b"empty request body"),
])
def test_malformed_requests_are_400_with_a_message(server, body, ctype, needle):
    status, text = _post(server, body, ctype)
    assert status == 400, text
    assert needle in text, text


_json = st.recursive(st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False, allow_infinity=False)
                     | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
                         ["features", "instances", "x", "a"]), inner, max_size=3), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(doc=_json, ctype=st.sampled_from(["application/json", "application/jsonlines"]))
def test_any_json_request_gets_200_or_400_never_500(doc, ctype):
    body = json.dumps(doc).encode()
    if ctype == "application/jsonlines":
        body = b"\n".join(json.dumps(d).encode() for d in (doc if isinstance(doc, list) else [doc]))
    status, text = _asgi_post(_APP, [body], ctype)
    assert status in (200, 400), text


_APP = create_app(_double)
