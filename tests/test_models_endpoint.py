"""HTTP endpoints: clarion serve round trips, fault injection, payload splitting, ordering.

Every server here is real (uvicorn on 127.0.0.1, a free port), started and stopped by the test.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from clarion.models import (
    MSG_ENDPOINT_COUNT,
    Endpoint,
    EndpointError,
    EndpointResponseError,
    as_model,
)
from clarion.serve import ModelServer

RNG = np.random.default_rng(11)


def _mixed_frame(n: int = 150) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": RNG.integers(18, 80, size=n).astype(float),
            "income": RNG.normal(50, 10, size=n),
            "city": RNG.choice(["paris", "lyon", "saint-étienne, loire"], size=n),
        }
    )


@pytest.fixture(scope="module")
def pipeline_and_data():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = _mixed_frame()
    y = np.digitize(df["income"] + 5 * (df["city"] == "lyon"), [45, 55])
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("city", OneHotEncoder(), ["city"]), ("num", StandardScaler(), ["age", "income"])]),
            ),
            ("lr", LogisticRegression()),
        ]
    ).fit(df, y)
    return pipe, df


@pytest.fixture(scope="module")
def served_pipeline(pipeline_and_data):
    pipe, df = pipeline_and_data
    with ModelServer(pipe) as url:
        yield url, pipe, df


CASES = {
    "csv": {},
    "csv-prob-column": {"probability": 1},
    "csv->jsonlines": {"accept_type": "application/jsonlines", "probability": "scores"},
    "jsonlines": {"content_type": "application/jsonlines", "probability": "scores"},
    "jsonlines-template": {
        "content_type": "application/jsonlines",
        "probability": "scores",
        "content_template": '{"id":7,"features":$features}',
    },
    "jsonlines->json": {
        "content_type": "application/jsonlines",
        "accept_type": "application/json",
        "probability": "predictions[*].scores",
    },
    "json-records": {"content_type": "application/json", "probability": "predictions[*].scores"},
    "json-instances-kvp": {
        "content_type": "application/json",
        "content_template": '{"instances":$records}',
        "record_template": "$features_kvp",
        "probability": "predictions[*].scores",
    },
    "json-one-record": {
        "content_type": "application/json",
        "content_template": "$record",
        "record_template": '{"features":[${age},${income},${city}]}',
        "accept_type": "text/csv",
    },
    "json->csv": {"content_type": "application/json", "accept_type": "text/csv"},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_served_predictions_equal_direct_ones(served_pipeline, case):
    url, pipe, df = served_pipeline
    kwargs = dict(CASES[case])
    rows = 40 if case == "json-one-record" else len(df)
    data = df.iloc[:rows]
    with Endpoint(url, max_batch_rows=37, concurrency=3, **kwargs) as ep:
        got = ep.predict(data)
    if case == "json-one-record":  # one row per request: the model ran on single rows (BLAS gemv)
        expected = np.concatenate([pipe.predict_proba(data.iloc[[i]]) for i in range(rows)])
    else:
        expected = pipe.predict_proba(data)
    if kwargs.get("probability") == 1:
        expected = expected[:, [1]]
    np.testing.assert_array_equal(got, expected)


def test_served_label_maps_through_label_headers(served_pipeline):
    url, pipe, df = served_pipeline
    headers = [str(c) for c in pipe.classes_]
    with Endpoint(
        url,
        content_type="application/jsonlines",
        label="predicted_label",
        probability="scores",
        output="label",
        label_headers=headers,
    ) as ep:
        got = ep.predict(df)
    np.testing.assert_array_equal(got[:, 0], np.argmax(pipe.predict_proba(df), axis=1))
    # the same endpoint through as_model, choosing the probabilities instead
    with as_model(ep, output="probability") as prob:
        np.testing.assert_array_equal(prob.predict(df), pipe.predict_proba(df))
        assert prob.output_names == headers


def test_served_numeric_model_and_bad_requests():
    from sklearn.linear_model import LinearRegression

    X = RNG.normal(size=(500, 6))
    reg = LinearRegression().fit(X, X @ np.arange(6.0))
    with ModelServer(reg) as url:
        with Endpoint(url, max_batch_rows=128) as ep:
            np.testing.assert_array_equal(ep.predict(X)[:, 0], reg.predict(X))
        with Endpoint(url, retries=0) as ep, pytest.raises(EndpointError) as info:
            ep.predict(X[:, :4])  # wrong number of features: the server answers 400
        assert info.value.status == 400 and info.value.first_row == 0
        assert "features" in info.value.server_message
        conn = http.client.HTTPConnection("127.0.0.1", int(url.split(":")[2].split("/")[0]), timeout=5)
        conn.request("POST", "/invocations", body=b"1,2", headers={"Content-Type": "image/png"})
        assert conn.getresponse().status == 415
        conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serve_xgboost_file(tmp_path):
    xgb = pytest.importorskip("xgboost")
    X = RNG.normal(size=(300, 5))
    y = (X[:, 0] - X[:, 3] > 0).astype(int)
    clf = xgb.XGBClassifier(n_jobs=1, n_estimators=10, max_depth=3).fit(X, y)
    path = tmp_path / "model.json"
    clf.save_model(path)
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "python"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "clarion", "serve", str(path), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                conn.close()
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "clarion serve did not come up"
            time.sleep(0.2)
        with Endpoint(f"http://127.0.0.1:{port}", max_batch_rows=100) as ep:  # empty path: /invocations
            np.testing.assert_array_equal(ep.predict(X), clf.predict_proba(X))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_cli_serve_refuses_pickles(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(b"x")
    from clarion.cli import EXIT_ERROR, main

    assert main(["serve", str(path), "--port", "0"]) == EXIT_ERROR


# -- a deliberately faulty server ----------------------------------------------------------------


class FaultyServer:
    """A raw ASGI server whose "model" is y = [x0, x0 + x1]. ``plan[first_row]`` lists the
    faults for the successive requests of the batch whose first row is ``first_row`` (x0 holds
    the row number); when a batch's list is empty, it answers correctly."""

    def __init__(self, *, delay_of=None):
        self.plan: dict[int, list[str]] = {}
        self.log: list[tuple[int, int, int]] = []  # (first_row, rows, body bytes)
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_of = delay_of
        self._lock = threading.Lock()
        self._server = ModelServer(None, app=self.app)

    def __enter__(self) -> str:
        return self._server.start()

    def __exit__(self, *exc) -> None:
        self._server.stop()

    @staticmethod
    def _rows(body: bytes, ctype: str) -> np.ndarray:
        if ctype == "application/json":
            return np.array(json.loads(body), dtype=np.float64).reshape(-1, 2)
        return np.array(
            [[float(v) for v in ln.split(",")] for ln in body.decode().splitlines() if ln], dtype=np.float64
        ).reshape(-1, 2)

    async def app(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        ctype = dict(scope["headers"]).get(b"content-type", b"text/csv").decode()
        X = self._rows(body, ctype)
        first = int(X[0, 0])
        with self._lock:
            self.log.append((first, len(X), len(body)))
            faults = self.plan.get(first, [])
            action = faults.pop(0) if faults else "ok"
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_of is not None:
                await asyncio.sleep(self.delay_of(first))
            Y = np.stack([X[:, 0], X[:, 0] + X[:, 1]], axis=1)
            out = "".join(f"{a!r},{b!r}\n" for a, b in Y.tolist()).encode()
            status, headers = 200, [(b"content-type", b"text/csv")]
            if action == "503":
                status, out = 503, b"model is warming up"
            elif action == "429":
                status, out = 429, b"slow down"
                headers.append((b"retry-after", b"0"))
            elif action == "400":
                status, out = 400, b"feature 3 is not a number"
            elif action == "slow":
                await asyncio.sleep(1.0)
            elif action == "short":
                out = b"".join(out.splitlines(keepends=True)[:-1])
            elif action == "garbage":
                out = out.replace(b",", b",oops", 1)
            if action == "truncate":  # declares more bytes than it sends, then drops the connection
                headers.append((b"content-length", str(len(out) + 50).encode()))
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": out[: len(out) // 2], "more_body": True})
                return
            headers.append((b"content-length", str(len(out)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": out})
        finally:
            with self._lock:
                self.in_flight -= 1


def _rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.stack([np.arange(n, dtype=np.float64), RNG.normal(size=n)], axis=1)
    return X, np.stack([X[:, 0], X[:, 0] + X[:, 1]], axis=1)


@pytest.mark.parametrize("faults", [["503", "503"], ["429"], ["slow"], ["truncate"], ["503", "truncate", "slow"]])
def test_transient_faults_are_retried_away(faults):
    X, expected = _rows(60)
    server = FaultyServer()
    server.plan = {20: list(faults)}
    with server as url, Endpoint(url, max_batch_rows=10, concurrency=3, timeout=0.4, retries=3, backoff=0.01) as ep:
        np.testing.assert_array_equal(ep.predict(X), expected)
    assert sum(1 for first, _, _ in server.log if first == 20) == len(faults) + 1


@pytest.mark.parametrize(
    "fault, status, text",
    [
        ("503", 503, "model is warming up"),
        ("slow", None, "timed out"),
    ],
)
def test_exhausted_retries_raise_with_first_row_and_message(fault, status, text):
    X, _ = _rows(60)
    server = FaultyServer()
    server.plan = {30: [fault] * 10}
    with server as url, Endpoint(url, max_batch_rows=10, concurrency=2, timeout=0.3, retries=2, backoff=0.01) as ep:
        with pytest.raises(EndpointError, match="batch starting at row 30 after 3 attempts") as info:
            ep.predict(X)
    assert info.value.first_row == 30 and info.value.status == status
    assert text in str(info.value)
    assert sum(1 for first, _, _ in server.log if first == 30) == 3


def test_client_errors_are_not_retried():
    X, _ = _rows(40)
    server = FaultyServer()
    server.plan = {10: ["400"]}
    with server as url, Endpoint(url, max_batch_rows=10, concurrency=1, backoff=0.01) as ep:
        with pytest.raises(EndpointError, match=r"HTTP 400 for the batch starting at row 10: feature 3") as info:
            ep.predict(X)
    assert info.value.status == 400 and not isinstance(info.value, EndpointResponseError)
    assert sum(1 for first, _, _ in server.log if first == 10) == 1


def test_wrong_row_count_and_unparseable_values_raise():
    X, _ = _rows(40)
    server = FaultyServer()
    server.plan = {10: ["short"], 20: ["garbage"]}
    with server as url, Endpoint(url, max_batch_rows=10, concurrency=1) as ep:
        expected_msg = MSG_ENDPOINT_COUNT.format(url=url, got=9, row=10, n=10)
        with pytest.raises(EndpointResponseError) as info:
            ep.predict(X)
        assert str(info.value) == expected_msg and info.value.first_row == 10
        with pytest.raises(EndpointResponseError, match=r"row 20: value 'oops[^']+' is not a number") as info:
            ep.predict(X)  # batch 10 is fine now, batch 20 answers garbage
        assert info.value.first_row == 20
        assert isinstance(info.value, ValueError)  # a bad answer is a ValueError as well
    # rows are numbered in the input of predict, also across model-level chunks
    server = FaultyServer()
    server.plan = {30: ["400"]}
    with server as url, Endpoint(url, max_batch_rows=10, concurrency=1) as ep:
        ep.batch_rows = 20  # model-level chunks of 20 rows: batch 30 is the second one of chunk 1
        with pytest.raises(EndpointError, match="batch starting at row 30") as info:
            ep.predict(X)
        assert info.value.first_row == 30


def test_unreachable_endpoint_raises_after_retries():
    port = _free_port()
    with Endpoint(f"http://127.0.0.1:{port}/invocations", retries=1, backoff=0.01, timeout=1) as ep:
        with pytest.raises(EndpointError, match="after 2 attempts; last error: ConnectionRefusedError"):
            ep.predict(np.zeros((3, 2)))


def test_order_preserved_under_concurrency():
    X, expected = _rows(200)
    server = FaultyServer(delay_of=lambda first: 0.002 * ((200 - first) % 7))
    with server as url, Endpoint(url, max_batch_rows=5, concurrency=8) as ep:
        got = ep.predict(X)
    np.testing.assert_array_equal(got, expected)
    assert len(server.log) == 40 and server.max_in_flight > 1


def test_payload_split_respects_rows_and_bytes():
    n = 300
    X = np.stack([np.arange(n, dtype=np.float64), np.zeros(n)], axis=1)
    X[n // 2 :, 1] = RNG.normal(size=n - n // 2)  # second half: long reprs (~20 bytes more a row)
    expected = np.stack([X[:, 0], X[:, 0] + X[:, 1]], axis=1)
    for ctype in ("text/csv", "application/json"):
        server = FaultyServer()
        with (
            server as url,
            Endpoint(
                url, content_type=ctype, accept_type="text/csv", max_batch_rows=25, max_payload_bytes=400, concurrency=4
            ) as ep,
        ):
            np.testing.assert_array_equal(ep.predict(X), expected)
        sizes = sorted(server.log)
        assert sum(r for _, r, _ in sizes) == n
        assert all(r <= 25 and b <= 400 for _, r, b in sizes), sizes
        assert any(r == 25 for _, r, _ in sizes)  # the row limit bound some batches ...
        # ... and bytes others: a batch cut short before the end can only have hit the byte limit
        assert any(r < 25 and first + r < n for first, r, _ in sizes)


def test_row_larger_than_payload_limit():
    with Endpoint("http://127.0.0.1:9/invocations", max_payload_bytes=10) as ep:
        with pytest.raises(ValueError, match=r"row 1 alone takes 3\d bytes, more than max_payload_bytes=10"):
            ep.predict(np.array([[1.0, 2.0], [0.123456789012, 0.98765432101234]]))


@settings(max_examples=40)
@given(
    sizes=st.lists(st.integers(1, 60), max_size=120),
    rows=st.integers(1, 30),
    limit=st.integers(90, 400),
    fixed=st.integers(0, 20),
)
def test_batches_are_contiguous_bounded_and_greedy(sizes, rows, limit, fixed):
    ep = Endpoint("http://127.0.0.1:9/", max_batch_rows=rows, max_payload_bytes=limit)
    enc = [b"x" * s for s in sizes]
    pre, post = b"[" * fixed, b""
    batches = ep._batches(enc, pre, b",", post)
    if not sizes:
        assert batches == []
        return
    assert [s for s, _ in batches] == [0] + [e for _, e in batches[:-1]]
    assert (batches[-1][1] if batches else 0) == len(enc)

    def size(s, e):
        return fixed + sum(sizes[s:e]) + (e - s - 1)

    for s, e in batches:
        assert 0 < e - s <= rows and size(s, e) <= limit
        if e < len(enc):  # greedy: the next row would break a limit
            assert e - s == rows or size(s, e + 1) > limit


def test_endpoint_argument_checks():
    with pytest.raises(ValueError, match="url must be"):
        Endpoint("ftp://example.com/x")
    with pytest.raises(ValueError, match="content_type"):
        Endpoint("http://h/", content_type="image/gif")
    with pytest.raises(ValueError, match="column index"):
        Endpoint("http://h/", probability="scores")
    with pytest.raises(ValueError, match="JMESPath"):
        Endpoint("http://h/", content_type="application/jsonlines", probability=0)
    with pytest.raises(ValueError, match=r"must contain \$features"):
        Endpoint("http://h/", content_type="application/jsonlines", content_template='{"x":1}')
    with pytest.raises(ValueError, match="output='label' needs label"):
        Endpoint("http://h/", output="label")


def test_serve_loads_module_attribute_and_features_path(tmp_path, monkeypatch):
    import argparse

    from clarion.cli import serve

    (tmp_path / "my_scorer.py").write_text(
        "import numpy as np\n\ndef score(X):\n    return np.asarray(X)[:, 0] * 3 + 1\n"
    )
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(output=None, label_headers=None, trusted=None)
    model = serve.load_model("my_scorer:score", args)
    X, _ = _rows(30)
    np.testing.assert_array_equal(model.predict(X)[:, 0], X[:, 0] * 3 + 1)
    with ModelServer(model, features="payload.values") as url:
        with Endpoint(
            url,
            content_type="application/jsonlines",
            content_template='{"payload":{"values":$features}}',
            probability="scores[0]",
            max_batch_rows=7,
        ) as ep:
            np.testing.assert_array_equal(ep.predict(X)[:, 0], X[:, 0] * 3 + 1)
    sys.modules.pop("my_scorer", None)


@settings(max_examples=40)
@given(
    data=st.data(), n=st.integers(1, 6), width=st.integers(1, 4), kind=st.sampled_from(["float64", "float32", "int64"])
)
def test_row_encoding_round_trips_exactly(data, n, width, kind):
    from hypothesis.extra.numpy import arrays

    elements = (
        st.floats(allow_nan=True, allow_infinity=True, width=32 if kind == "float32" else 64)
        if kind != "int64"
        else st.integers(-(2**62), 2**62)
    )
    X = data.draw(arrays(kind, (n, width), elements=elements))
    for ctype in ("text/csv", "application/jsonlines", "application/json"):
        ep = Endpoint("http://127.0.0.1:9/", content_type=ctype)
        if ctype != "text/csv" and np.isinf(X.astype(np.float64)).any():
            with pytest.raises(ValueError, match="JSON cannot carry infinities"):
                ep._encode_rows(X)
            continue
        enc, pre, sep, post = ep._encode_rows(X)
        assert len(enc) == n
        for i, row in enumerate(enc):
            if ctype == "text/csv":
                back = [float(v) if v else np.nan for v in row.decode().split(",")]
            else:
                doc = json.loads(row)
                back = [np.nan if v is None else v for v in (doc["features"] if isinstance(doc, dict) else doc)]
            np.testing.assert_array_equal(np.asarray(back, dtype=np.float64), X[i].astype(np.float64), err_msg=ctype)
        body = json.loads(pre + sep.join(enc) + post) if ctype == "application/json" else None
        if body is not None:
            assert len(body) == n
