"""Issue 13, items 17, 19, 20 (report) and 21 (analysis.json): the model server bounds request
bodies and answers bad JSON with 400; report.md escapes data; ``clarion report`` refuses an output
it cannot write and keeps a monitor folder's drift section; a malformed analysis.json gives one
clear ``ValueError`` naming the file and the key path, never a traceback.

The server tests run a real uvicorn server on 127.0.0.1 (a free port) and talk raw HTTP over a
socket, so chunked bodies and lying ``Content-Length`` headers are exercised as a client sends them.
"""

from __future__ import annotations

import asyncio
import html as _html
import importlib.util
import json
import math
import re
import socket
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion import serve
from clarion.cli import EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, main
from clarion.monitor import (
    MAX_ANALYSIS_DEPTH,
    AnalysisError,
    DriftResult,
    check_analysis,
    load_analysis,
    load_violations,
)
from clarion.report import render_html, render_markdown
from clarion.report.drift import drift_markdown
from clarion.report.folder import FORMATS, render_file
from clarion.serve import (
    DEFAULT_MAX_BODY_BYTES,
    MSG_BODY_TOO_LARGE,
    ModelServer,
    create_app,
)

#: the server tests need clarion's [serve] extra; the report tests do not
needs_serve = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("starlette") is None,
    reason="clarion serve needs uvicorn and starlette",
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


@needs_serve
def test_declared_body_over_the_limit_gets_413_without_sending_it(small_server):
    """Content-Length of 256 MiB: answered 413 at once (before the fix the server waited for,
    then buffered, the whole body)."""
    status, resp = _raw(
        small_server, f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {256 << 20}"
    )
    assert status == 413
    assert MSG_BODY_TOO_LARGE.format(limit=1000).encode() in resp
    assert b"connection: close" in resp.lower()


@needs_serve
def test_chunked_body_over_the_limit_gets_413_while_streaming(small_server):
    """No Content-Length (chunked): the server counts what arrives and answers 413 once past the
    limit, without waiting for the end of the body (which never comes here)."""
    chunk = b"1,2,3\n" * 100  # 600 bytes
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(3)]  # 1800 bytes, no last chunk
    status, resp = _raw(
        small_server,
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked",
        parts,
    )
    assert status == 413, resp


@needs_serve
def test_lying_content_length_is_not_trusted(small_server):
    """Content-Length says 10 but the body is chunked and larger: the bytes received decide."""
    chunk = b"1,2,3\n" * 100
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(3)]
    status, resp = _raw(
        small_server,
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        "Content-Length: 10\r\nTransfer-Encoding: chunked",
        parts,
    )
    assert status in (400, 413), resp  # 400: h11 itself refuses the conflicting headers
    assert status != 200


@needs_serve
def test_body_at_the_limit_is_served_and_one_byte_more_is_not():
    row = b"1.5,2\n"
    body = row * 50
    with ModelServer(_double, max_body_bytes=len(body)) as url:
        status, resp = _raw(
            url,
            f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {len(body)}",
            [body],
        )
        assert status == 200 and resp.endswith(b"3.0\n")
        status, _ = _raw(
            url,
            f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {len(body) + 1}",
            [body + b"\n"],
        )
        assert status == 413
        # the server still answers on new connections
        status, _ = _raw(
            url, f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {len(row)}", [row]
        )
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

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/invocations",
        "raw_path": b"/invocations",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", ctype.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode("utf-8", "replace")


@needs_serve
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


@needs_serve
@pytest.mark.parametrize("bad", [0, -5, "lots", "6 parsecs", True, 1.5])
def test_max_body_bytes_is_validated(bad):
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(_double, max_body_bytes=bad)


def test_cli_max_body_bytes_accepts_units_and_refuses_garbage(capsys):
    import argparse

    from clarion.cli import serve as serve_cli

    p = argparse.ArgumentParser()
    serve_cli.add_arguments(p)
    assert p.parse_args(["m.onnx"]).max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert serve._max_body(p.parse_args(["m.onnx", "--max-body-bytes", "16MiB"]).max_body_bytes) == 16 << 20
    assert serve._max_body("2MB") == 2_000_000
    with pytest.raises(ValueError, match="--max-body-bytes"):
        serve._max_body("-1", "--max-body-bytes")


def _post(url: str, body: bytes, ctype: str) -> tuple[int, bytes]:
    status, resp = _raw(
        url, f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}", [body]
    )
    return status, resp.split(b"\r\n\r\n", 1)[1]


@pytest.fixture(scope="module")
def server():
    with ModelServer(_double) as url:
        yield url


@needs_serve
@pytest.mark.parametrize("ctype", ["application/json", "application/jsonlines"])
def test_deeply_nested_json_is_a_400(server, ctype):
    """Before the fix json.loads raised RecursionError, answered 500 as a model failure."""
    deep = b"[" * 200_000 + b"]" * 200_000
    status, text = _post(server, deep, ctype)
    assert status == 400, text
    assert b"nested too deeply" in text
    # deep but within what the parser handles: a nested value where a feature value belongs, 400
    status, text = _post(server, b"[" * 500 + b"1" + b"]" * 500, ctype)
    assert status == 400 and b"record 0, feature 0: expected a number, string, boolean or null, got a list" in text


@needs_serve
@pytest.mark.parametrize(
    "body, ctype, needle",
    [
        (b"[[1, 2], [3", "application/json", b"cannot parse JSON"),
        (b"\xff\xfe", "application/json", b"not UTF-8"),
        (b'[[1, {"a": 2}]]', "application/json", b"record 0, feature 1"),
        (b"[[1, [2, 3]]]", "application/json", b"record 0, feature 1"),
        (b'{"instances": 5}', "application/json", b"expected a JSON list"),
        (b'[1, 2]\n"text"\n', "application/jsonlines", b"record 1"),
        (b'{"features": {"x": 1}}\n', "application/jsonlines", b"record 0"),
        (b"1,2\n3,4,5,6,7\n", "text/csv", b"cannot parse CSV"),
        (b"", "text/csv", b"empty request body"),
    ],
)
def test_malformed_requests_are_400_with_a_message(server, body, ctype, needle):
    status, text = _post(server, body, ctype)
    assert status == 400, text
    assert needle in text, text


def _containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["features", "instances", "x", "a"]), inner, max_size=3
    )


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-10, 10)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    _containers,
    max_leaves=20,
)


@needs_serve
@settings(max_examples=150, deadline=None)
@given(doc=_json, ctype=st.sampled_from(["application/json", "application/jsonlines"]))
def test_any_json_request_gets_200_or_400_never_500(doc, ctype):
    body = json.dumps(doc).encode()
    if ctype == "application/jsonlines":
        body = b"\n".join(json.dumps(d).encode() for d in (doc if isinstance(doc, list) else [doc]))
    status, text = _asgi_post(_app(), [body], ctype)
    assert status in (200, 400), text


def _app(cache={}):  # noqa: B006  (one app for all examples)
    if "app" not in cache:
        cache["app"] = create_app(_double)
    return cache["app"]


# ---- item 21 (analysis.json): one validated loader --------------------------------------------------


# as SageMaker Clarify writes it (spec/clarify-config.md §3, smclarify's FacetReport JSON), with
# the keys of a text job and keys Clarify may add that clarion does not read
CLARIFY_DOC = {
    "version": "1.0",
    "pre_training_bias_metrics": {
        "label": "approved",
        "label_value_or_threshold": "1",
        "facets": {
            "sex": [
                {
                    "value_or_threshold": "female",
                    "metrics": [
                        {
                            "name": "CDDL",
                            "description": "Conditional Demographic Disparity in Labels (CDDL)",
                            "value": 0.041,
                        },
                        {"name": "CI", "description": "Class Imbalance (CI)", "value": 0.18},
                        {"name": "KL", "description": "Kullback-Liebler Divergence (KL)", "value": 0.0104},
                    ],
                }
            ],
            "age": [
                {
                    "value_or_threshold": "(60, 91]",
                    "metrics": [{"name": "CI", "description": "Class Imbalance (CI)", "value": 0.64}],
                }
            ],
        },
    },
    "post_training_bias_metrics": {
        "label": "approved",
        "label_value_or_threshold": "1",
        "facets": {
            "sex": [
                {
                    "value_or_threshold": "female",
                    "metrics": [
                        {"name": "AD", "description": "Accuracy Difference (AD)", "value": 0.013},
                        {"name": "DI", "description": "Disparate Impact (DI)", "value": "Infinity"},
                        {
                            "name": "DPPL",
                            "description": "Difference in Positive Proportions in Predicted Labels (DPPL)",
                            "value": -0.21,
                        },
                        {
                            "name": "FT",
                            "description": "Flip Test (FT)",
                            "value": None,
                            "error": "FlipTest does not support non-numeric columns",
                        },
                    ],
                }
            ]
        },
    },
    "explanations": {
        "kernel_shap": {
            "label0": {
                "global_shap_values": {"age": 0.051, "income": 0.112, "sex": 0.004},
                "expected_value": 0.43,
                "global_top_shap_text": {"good": 0.1, "bad": -0.05},
            }
        },
        "pdp": [
            {
                "feature_name": "income",
                "data_type": "numerical",
                "feature_values": [1250.0, 3750.0, 6250.0],
                "model_predictions": [[0.21, 0.47, 0.66]],
                "data_distribution": [0.42, 0.38, 0.20],
            },
            {"feature_name": "notes", "data_type": "free_text", "error": "PDP does not support text"},
        ],
        "asymmetric_shapley_value": {"label0": {"whatever": [1, 2]}},
    },
    "basic_statistics": {"some": {"thing": [1, 2, 3]}},
}


def _write(tmp_path, doc, name="analysis.json"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def test_clarify_and_clarion_documents_load(tmp_path):
    p = _write(tmp_path, CLARIFY_DOC)
    assert load_analysis(p) == CLARIFY_DOC
    assert load_analysis(CLARIFY_DOC) is CLARIFY_DOC
    # clarion's own output, as analyze writes it (pre- and post-training bias with intervals off)
    import pandas as pd

    import clarion

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], 200),
            "x": rng.normal(size=200),
            "y": rng.integers(0, 2, 200),
            "pred": rng.integers(0, 2, 200),
        }
    )
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "predicted_label": "pred",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
        "methods": {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}},
    }
    res = clarion.analyze(cfg, df, output_dir=tmp_path / "out")
    on_disk = load_analysis(tmp_path / "out" / "analysis.json")
    assert on_disk["pre_training_bias_metrics"]["facets"]["sex"][0]["metrics"]
    load_analysis(res.analysis)  # the in-memory document too


BAD_DOCS = [
    ([], "", "expected a JSON object"),
    ({"pre_training_bias_metrics": []}, "pre_training_bias_metrics", "expected an object, got a list of 0 items"),
    (
        {"pre_training_bias_metrics": {"facets": {"sex": {"a": 1}}}},
        "pre_training_bias_metrics.facets.sex",
        "expected a list",
    ),
    (
        {"post_training_bias_metrics": {"facets": {"sex": [{"metrics": [{"value": 1}]}]}}},
        "post_training_bias_metrics.facets.sex[0].metrics[0]",
        'no "name"',
    ),
    (
        {"post_training_bias_metrics": {"facets": {"the sex": [{"metrics": [{"name": "DI", "value": {"x": 1}}]}]}}},
        'post_training_bias_metrics.facets["the sex"][0].metrics[0].value',
        'expected a number, "Infinity", "-Infinity" or null, got an object with 1 key',
    ),
    (
        {"post_training_bias_metrics": {"facets": {"s": [{"metrics": [{"name": "DI", "value": "big"}]}]}}},
        "post_training_bias_metrics.facets.s[0].metrics[0].value",
        'got "big"',
    ),
    (
        {"post_training_bias_metrics": {"facets": {"s": [{"metrics": [{"name": "DI", "value": True}]}]}}},
        "post_training_bias_metrics.facets.s[0].metrics[0].value",
        "got True",
    ),
    (
        {"explanations": {"kernel_shap": {"label0": {"global_shap_values": {"a": "0.1"}}}}},
        "explanations.kernel_shap.label0.global_shap_values.a",
        "expected a number",
    ),
    (
        {"explanations": {"kernel_shap": {"label0": {"expected_value": 1}}}},
        "explanations.kernel_shap.label0",
        'no "global_shap_values"',
    ),
    ({"explanations": {"kernel_shap": []}}, "explanations.kernel_shap", "expected an object"),
    (
        {"explanations": {"pdp": [{"feature_name": "x", "feature_values": [1, 2], "model_predictions": [[0.1]]}]}},
        "explanations.pdp[0].model_predictions[0]",
        "1 values for 2 feature_values",
    ),
    (
        {
            "explanations": {
                "pdp": [
                    {
                        "feature_name": "x",
                        "feature_values": [1],
                        "model_predictions": [[0.1]],
                        "data_distribution": [0.5, 0.5],
                    }
                ]
            }
        },
        "explanations.pdp[0].data_distribution",
        "2 values for 1 feature_values",
    ),
    (
        {"explanations": {"pdp": [{"feature_name": "x", "feature_values": [[1]]}]}},
        "explanations.pdp[0].feature_values[0]",
        "expected a number",
    ),
    (
        {"explanations": {"kernel_shap": {"label0": {"global_shap_values": {"a": 10**400}}}}},
        "explanations.kernel_shap.label0.global_shap_values.a",
        "number too large",
    ),
]


@pytest.mark.parametrize("doc, path, problem", BAD_DOCS)
def test_malformed_analysis_names_file_and_key_path(tmp_path, doc, path, problem):
    p = _write(tmp_path, doc)
    with pytest.raises(AnalysisError) as exc:
        load_analysis(p, name="baseline")
    msg = str(exc.value)
    assert msg.startswith(f"baseline: {p}: {path or '(top level)'}: "), msg
    assert problem in msg, msg
    assert isinstance(exc.value, ValueError)


def test_deep_and_cyclic_documents_give_analysis_error(tmp_path):
    # deeper than the JSON parser's recursion limit: was RecursionError
    p = _write(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(AnalysisError, match=rf"{p}: nested more than {MAX_ANALYSIS_DEPTH} levels deep"):
        load_analysis(p)
    # parsed, but deeper than the limit (in a key clarion does not read)
    deep: object = 1
    for _ in range(MAX_ANALYSIS_DEPTH + 5):
        deep = [deep]
    with pytest.raises(AnalysisError, match=r"analysis: extra(\[0\])+: nested more than"):
        load_analysis({"extra": deep})
    cyclic: dict = {"version": "1.0"}
    cyclic["explanations"] = {"me": cyclic}
    with pytest.raises(AnalysisError, match="nested more than"):
        load_analysis(cyclic)
    # not JSON, not UTF-8, missing
    with pytest.raises(AnalysisError, match=rf"{_write(tmp_path, '{{', 'b.json')} is not valid JSON"):
        load_analysis(tmp_path / "b.json")
    (tmp_path / "c.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(AnalysisError, match="not UTF-8"):
        load_analysis(tmp_path / "c.json")
    with pytest.raises(AnalysisError, match="file not found"):
        load_analysis(tmp_path / "nope.json")


def _json_values(max_leaves=30):
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-3, 3)
        | st.floats(allow_nan=False)
        | st.sampled_from(["Infinity", "-Infinity", "NaN", "x", "<b>", ""])
    )
    keys = st.sampled_from(
        [
            "version",
            "pre_training_bias_metrics",
            "post_training_bias_metrics",
            "explanations",
            "facets",
            "metrics",
            "name",
            "value",
            "error",
            "kernel_shap",
            "global_shap_values",
            "expected_value",
            "pdp",
            "feature_name",
            "feature_values",
            "model_predictions",
            "data_distribution",
            "label",
            "value_or_threshold",
            "sex",
            "a",
        ]
    )

    def containers(inner):
        return st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4)

    return st.recursive(scalars, containers, max_leaves=max_leaves)


@settings(max_examples=300, deadline=None)
@given(doc=_json_values())
def test_fuzz_random_json_only_analysis_error(tmp_path_factory, doc):
    p = tmp_path_factory.mktemp("fz") / "analysis.json"
    p.write_text(json.dumps(doc))
    try:
        load_analysis(p)
    except AnalysisError as exc:
        assert str(p) in str(exc)


def _nodes(doc, path=()):
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, (*path, i))


def _replace(doc, path, value):
    import copy

    doc = copy.deepcopy(doc)
    if not path:
        return value
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


_PATHS = list(_nodes(CLARIFY_DOC))


@settings(max_examples=400, deadline=None)
@given(where=st.sampled_from(_PATHS), value=_json_values(12), drop=st.booleans())
def test_fuzz_mutated_document_is_refused_or_renders(where, value, drop):
    """Anything load_analysis accepts, the renderers and the drift checks handle: a mutated Clarify
    document either raises AnalysisError or renders (HTML, Markdown) and checks against itself
    with at most a ValueError (e.g. nothing left to check)."""
    doc = _replace(CLARIFY_DOC, where, value)
    if drop and where and isinstance(_replace(CLARIFY_DOC, where[:-1], None), object):
        parent = doc
        for k in where[:-1]:
            parent = parent[k]
        if isinstance(parent, dict):
            parent.pop(where[-1], None)
    try:
        load_analysis(doc)
    except AnalysisError:
        return
    render_html(doc)
    md = render_markdown(doc)
    assert "<" not in md
    try:
        check_analysis(doc, doc)
    except ValueError:
        pass


def test_cli_report_and_monitor_on_malformed_analysis_exit_1_without_traceback(tmp_path, capsys):
    bad = _write(tmp_path, {"pre_training_bias_metrics": {"facets": {"sex": [{"metrics": "CI"}]}}})
    deep = _write(tmp_path, "[" * 50_000 + "]" * 50_000, "deep.json")
    for p, where in (
        (bad, "pre_training_bias_metrics.facets.sex[0].metrics: expected a list"),
        (deep, "nested more than"),
    ):
        assert main(["report", str(p), "-o", str(tmp_path / "r.html")]) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "Traceback" not in err and str(p) in err and where in err
        assert err.count("\n") == 1
        assert (
            main(
                [
                    "monitor",
                    "--baseline",
                    str(p),
                    "--data",
                    str(tmp_path / "new.csv"),
                    "--config",
                    str(tmp_path / "cfg.json"),
                    "--output",
                    str(tmp_path / "mon"),
                    "--quiet",
                ]
            )
            == EXIT_ERROR
        )
        err = capsys.readouterr().err
        assert "Traceback" not in err and f"baseline: {p}" in err and where in err
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "mon").exists()


def test_report_config_is_checked_too(tmp_path, capsys):
    _write(tmp_path, CLARIFY_DOC)
    _write(tmp_path, {"methods": ["shap"]}, "analysis_config.json")
    assert main(["report", str(tmp_path / "analysis.json"), "-o", str(tmp_path / "r.html")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "analysis_config.json: methods: expected an object, got a list" in err
    _write(tmp_path, {"facet": [["sex"]]}, "analysis_config.json")
    assert main(["report", str(tmp_path / "analysis.json"), "-o", str(tmp_path / "r.html")]) == EXIT_ERROR
    assert "facet[0]: expected an object" in capsys.readouterr().err


# ---- item 20 (report): output extension, monitor folders ---------------------------------------------


@pytest.mark.parametrize("name", ["r.docx", "r.txt", "report", "r.html.bak"])  # .pdf is a format now (issue 17)
def test_report_refuses_an_extension_it_cannot_write(tmp_path, capsys, name):
    _write(tmp_path, CLARIFY_DOC)
    assert main(["report", str(tmp_path / "analysis.json"), "-o", str(tmp_path / name)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert ".html, .htm, .md" in err and name in err
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name, kind", [("r.html", "html"), ("R.HTM", "html"), ("r.MD", "markdown")])
def test_report_writes_the_formats_it_lists(tmp_path, name, kind):
    _write(tmp_path, CLARIFY_DOC)
    assert FORMATS[name[name.rindex(".") :].lower()] == kind
    out = render_file(tmp_path / "analysis.json", tmp_path / name)
    with open(out, encoding="utf-8") as fh:
        text = fh.read()
    assert text.startswith("<!DOCTYPE html>") == (kind == "html")
    assert text.startswith("# Analysis Report") == (kind == "markdown")


# ---- item 19: report.md escapes data -------------------------------------------------------------------


_GFM_CELL = re.compile(r"(?:\\.|[^|\\])*")  # GFM: a cell runs to the next pipe not escaped by a backslash
_MARKUP = set("\\`*_[]|~#<>")


def _cells(line: str) -> list[str]:
    """Split a GFM table row the way GitHub does (escaped pipes do not split)."""
    assert line.startswith("|") and line.endswith("|"), line
    inner, pos, out = line[1:-1], 0, []
    while True:
        m = _GFM_CELL.match(inner, pos)
        out.append(m.group().strip())
        pos = m.end()
        if pos >= len(inner):
            return out
        assert inner[pos] == "|"
        pos += 1


def _decode(text: str) -> str:
    """What a CommonMark renderer shows for inline ``text`` that holds no markup: backslash escapes
    resolved, entities decoded; an unescaped markup character fails the test."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in string.punctuation:
            out.append(text[i + 1])
            i += 2
            continue
        assert c not in _MARKUP, f"unescaped {c!r} at {i} in {text!r}"
        out.append(c)
        i += 1
    return _html.unescape("".join(out))


def _nl(s: str) -> str:
    """``s`` as one line (each line break one space)."""
    return s.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


_nasty = st.lists(
    st.sampled_from(
        list("<>&|\\`*_[]()!~#:;'\"\r\n =-+.a1é")
        + ["<script>", "<img src=x onerror=alert(1)>", "&lt;", "&#124;", "\\|", "```", "**", "[x](javascript:alert(1))"]
    ),
    min_size=1,
    max_size=12,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(
    label=_nasty,
    facet=_nasty,
    value=_nasty,
    name=_nasty,
    desc=_nasty,
    err=_nasty,
    feat=_nasty,
    shap_label=_nasty,
    title=_nasty,
)
def test_fuzz_markdown_no_data_string_injects_markup_or_breaks_a_table(
    label, facet, value, name, desc, err, feat, shap_label, title
):
    doc = {
        "version": "1.0",
        "pre_training_bias_metrics": {
            "label": label,
            "label_value_or_threshold": value,
            "facets": {
                facet: [
                    {
                        "value_or_threshold": value,
                        "metrics": [
                            {"name": name, "description": desc, "value": 0.5},
                            {"name": "CI", "description": desc, "value": None, "error": err},
                        ],
                    }
                ]
            },
        },
        "explanations": {
            "kernel_shap": {shap_label: {"global_shap_values": {feat: 0.3, "b": 0.1}, "expected_value": 0.5}},
            "pdp": [
                {"feature_name": feat, "feature_values": [value, "x"], "model_predictions": [[1, 2]]},
                {"feature_name": feat, "error": err},
            ],
        },
    }
    md = render_markdown(doc, title=title)
    scores = [
        {
            "stage": "pre_training_bias_metrics",
            "facet": facet,
            "facet_value": value,
            "metric_name": name,
            "baseline": 0.1,
            "current": 0.2,
            "status": "violation",
        }
    ]
    md += drift_markdown(overall=DriftResult([{"facet": facet, "metric_name": name}], scores), baseline=desc)
    assert "<" not in md and ">" not in md
    assert all(any(md.startswith(x, m.start()) for x in ("&amp;", "&lt;", "&gt;")) for m in re.finditer("&", md))
    lines = md.split("\n")
    # the bias table: header, rule, two rows of five cells, each cell's text exactly the data
    at = lines.index("| metric | value | interval | ideal | description |")
    rows = [_cells(ln) for ln in lines[at + 2 : at + 4]]
    assert lines[at + 4] == ""
    assert [len(r) for r in rows] == [5, 5]
    assert _decode(rows[0][0]) == _nl(name).strip() and _decode(rows[0][4]) == _nl(desc).strip()
    assert _decode(rows[1][1]) == f"n/a ({_nl(err)})"
    # the SHAP table
    at = lines.index("| feature | global SHAP |")
    shap_rows = [_cells(ln) for ln in lines[at + 2 : at + 4]]
    assert all(len(r) == 2 for r in shap_rows) and lines[at + 4] == ""
    assert sorted(_decode(r[0]) for r in shap_rows) == sorted([_nl(feat).strip(), "b"])
    # headings and lines of text: one line each, the data shown exactly
    assert _decode(lines[0][2:]) == _nl(title)
    head = next(ln for ln in lines if ln.startswith("### ") and " = " in ln)
    assert _decode(head[4:]) == f"{_nl(facet)} = {_nl(value)}"
    label_line = next(ln for ln in lines if ln.startswith("label "))
    assert _decode(label_line) == f"label {_nl(label)}, positive when {_nl(value)}"
    pdp_err = next(ln for ln in lines if ln.startswith("- ") and not ln.startswith("- **"))
    assert _decode(pdp_err[2:]) == f"{_nl(feat)}: {_nl(err)}"
    # the drift table
    at = lines.index(
        "| check | where | metric | baseline | baseline interval | current | current interval | rule | status |"
    )
    drow = _cells(lines[at + 2])
    assert len(drow) == 9 and _decode(drow[2]) == _nl(name).strip()
    assert _decode(drow[1]) == f"{_nl(facet)} = {_nl(value)}".strip()
    baseline_line = next(ln for ln in lines if ln.startswith("Baseline: "))
    assert _decode(baseline_line[len("Baseline: ") :]) == _nl(desc)


def test_markdown_escapes_the_issue_examples():
    doc = {
        "pre_training_bias_metrics": {
            "label": "<script>alert(1)</script>",
            "facets": {
                "<img src=x onerror=alert(1)>": [
                    {"value_or_threshold": "a|b\nc", "metrics": [{"name": "CI", "description": "x | y", "value": 0.1}]}
                ]
            },
        }
    }
    md = render_markdown(doc)
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert r"### &lt;img src=x onerror=alert(1)&gt; = a\|b c" in md
    assert r"| CI | 0.1 |  | 0 | x \| y |" in md


def _monitor_folder(tmp_path, *, window: bool):
    import pandas as pd

    import clarion

    rng = np.random.default_rng(3)
    n = 240

    def block(shift: float) -> pd.DataFrame:
        sex = rng.choice(["F", "M"], n)
        y = (rng.random(n) < 0.5).astype(int)
        pred = np.where((sex == "F") & (rng.random(n) < shift), 0, (rng.random(n) < 0.5).astype(int))
        return pd.DataFrame({"sex": sex, "x": rng.normal(size=n), "y": y, "pred": pred})

    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "predicted_label": "pred",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
        "excluded_columns": ["ts"],
        "methods": {"pre_training_bias": {"methods": ["CI", "DPL"]}, "post_training_bias": {"methods": ["DPPL", "DI"]}},
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    clarion.analyze(cfg, block(0.0).assign(ts="2026-01-01"), output_dir=tmp_path / "base")
    days = [block(0.0 if d < 2 else 0.8).assign(ts=f"2026-03-0{d + 1}T12:00:00") for d in range(4)]
    pd.concat(days, ignore_index=True).to_csv(tmp_path / "new.csv", index=False)
    args = [
        "monitor",
        "--baseline",
        str(tmp_path / "base" / "analysis.json"),
        "--data",
        str(tmp_path / "new.csv"),
        "--config",
        str(tmp_path / "cfg.json"),
        "--output",
        str(tmp_path / "mon"),
        "--quiet",
    ]
    if window:
        args += ["--time-column", "ts", "--window", "1D"]
    assert main(args) == EXIT_VIOLATIONS
    return tmp_path / "mon"


def _drift_part(text: str) -> str:
    at = text.index("<h2 id='drift'>")
    section = text[at : text.rindex("</main>")]
    return re.sub(r"<li>baseline: <code>[^<]*</code></li>", "", section)  # the baseline's path is not kept


@pytest.mark.parametrize("window", [True, False])
def test_report_on_a_monitor_folder_keeps_the_drift_section(tmp_path, window):
    """clarion report re-renders the drift section that clarion monitor wrote (before the fix it
    was dropped): the same checks table and, with windows, the same per-window charts."""
    mon = _monitor_folder(tmp_path, window=window)
    written = (mon / "report.html").read_text(encoding="utf-8")
    assert main(["report", str(mon / "analysis.json"), "-o", str(tmp_path / "again.html")]) == EXIT_OK
    again = (tmp_path / "again.html").read_text(encoding="utf-8")
    assert _drift_part(again) == _drift_part(written)
    assert ("drift-series" in again) == window and "Checks on all new rows" in again
    if window:
        assert "<li>4 windows of 1D: <b>" in again  # the frequency is kept in constraint_violations.json
    assert main(["report", str(mon / "analysis.json"), "-o", str(tmp_path / "again.md")]) == EXIT_OK
    md_again = (tmp_path / "again.md").read_text(encoding="utf-8")
    md_written = (mon / "report.md").read_text(encoding="utf-8")
    drift_md = md_written[md_written.index("## Drift against the baseline") :]
    drift_md = re.sub(r"Baseline: [^\n]*\n\n", "", drift_md)
    assert md_again.endswith(drift_md), (md_again, drift_md)
    # a Parquet-less folder re-renders from the CSV table, and the same
    if window:
        (mon / "drift_over_time.parquet").unlink()
        assert main(["report", str(mon / "analysis.json"), "-o", str(tmp_path / "csv.html")]) == EXIT_OK
        assert _drift_part((tmp_path / "csv.html").read_text(encoding="utf-8")) == _drift_part(written)


def test_malformed_monitor_files_name_the_file_and_key(tmp_path, capsys):
    mon = _monitor_folder(tmp_path, window=True)
    cv = json.loads((mon / "constraint_violations.json").read_text())
    assert load_violations(cv) is cv and cv["window"] == "1D"
    cv["window_scores"]["2026-03-01T00:00:00"][0]["current"] = {"no": 1}
    (mon / "constraint_violations.json").write_text(json.dumps(cv))
    assert main(["report", str(mon / "analysis.json"), "-o", str(tmp_path / "r.html")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert 'constraint_violations.json: window_scores["2026-03-01T00:00:00"][0].current: expected a number' in err
    cv["window_scores"]["2026-03-01T00:00:00"][0]["current"] = 0.1
    (mon / "constraint_violations.json").write_text(json.dumps(cv))
    (mon / "drift_over_time.parquet").unlink()
    table = (mon / "drift_over_time.csv").read_text().replace("2026-03-02", "2027-01-01")
    (mon / "drift_over_time.csv").write_text(table)
    assert main(["report", str(mon / "analysis.json"), "-o", str(tmp_path / "r.html")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "drift_over_time.csv: row" in err and "2027-01-01" in err and "Traceback" not in err


def test_cli_serve_refuses_a_bad_max_body_bytes(tmp_path, monkeypatch, capsys):
    (tmp_path / "scorer_mod.py").write_text("def score(X):\n    return X\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["serve", "scorer_mod:score", "--port", "0", "--max-body-bytes", "lots"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--max-body-bytes: expected a byte count" in err and "Traceback" not in err
    monkeypatch.delitem(__import__("sys").modules, "scorer_mod", raising=False)


def test_pdp_categories_of_any_json_scalar_render():
    """A categorical PDP grid as clarion writes it (``x.item()`` of each category) may hold booleans
    or null: accepted by the loader and shown as they are by both renderers."""
    doc = {
        "explanations": {
            "pdp": [
                {
                    "feature_name": "member",
                    "data_type": "categorical",
                    "feature_values": [True, False, None, 3],
                    "model_predictions": [[0.25, 0.5, None, 1.0]],
                    "data_distribution": [0.5, 0.25, 0.125, 0.125],
                }
            ]
        }
    }
    load_analysis(doc)
    assert "**member**: True → 0.25, False → 0.5, None → n/a, 3 → 1" in render_markdown(doc)
    page = render_html(doc)
    assert ">True</text>" in page and ">None</text>" in page


@pytest.mark.parametrize(
    "ys",
    [
        [4503599627370498.0],
        [2.0**53, 2.0**53 + 2],
        [-1.7e308, 1.7e308],
        [1.7976931348623157e308],
        [-5e-324, 5e-324],
        [],
    ],
)
def test_chart_axes_never_divide_by_zero_or_overflow(ys):
    # found by the mutated-document fuzz: a PDP line at 2**52 + 2 had lo ± 0.5 == lo, so the axis
    # span was 0 (ZeroDivisionError); values near ±max overflowed the span to inf
    from clarion.report.svg import axis_fraction, axis_range, line_with_distribution

    for margin in (0.0, 0.08):
        lo, hi = axis_range(ys, margin=margin)
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
        for v in ys:
            f = axis_fraction(v, lo, hi)
            assert math.isfinite(f) and -1e-9 <= f <= 1 + 1e-9
    svg = line_with_distribution(list(range(len(ys))), [ys], None, title="t")
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


def test_pdp_chart_draws_only_finite_numbers():
    # found by the mutated-document fuzz: a PDP prediction "Infinity" (Clarify writes non-finite
    # numbers as text) reached the chart's arithmetic as a str (TypeError)
    from clarion.report.svg import line_with_distribution

    svg = line_with_distribution([0, 1, 2, 3], [[0.1, "Infinity", None, True], [float("nan"), 0.5, 0.7, "x"]], None)
    assert "polyline" in svg and "nan" not in svg.lower() and "inf" not in svg.lower()
