"""Issue 16: ``clarion serve MODEL --explain EXPLAINER_CONFIG`` over real HTTP.

A real uvicorn server on 127.0.0.1 (a free port) answers Clarify's online explainability response;
the attributions it serves equal :class:`clarion.explain.KernelShap` with the same baseline, samples
and seed; :class:`clarion.models.Endpoint` still reads the predictions; limits (MaxRecordCount,
MaxPayloadInMB) are answered 413 and bad records 400 naming the record; ``/ping`` answers while a
slow model explains, and two requests are explained at the same time.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from clarion.cli import EXIT_ERROR, main
from clarion.explain import KernelShap, OnlineExplainer
from clarion.models import Endpoint
from clarion.serve import MSG_TOO_MANY_RECORDS, ModelServer

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("starlette") is None,
    reason="clarion serve needs uvicorn and starlette",
)

RNG = np.random.default_rng(61)
X = RNG.normal(size=(200, 4))
CLF = LogisticRegression().fit(X, (X[:, 0] - X[:, 2] > 0).astype(int))
BASE = X[:3]


def _csv(rows) -> str:
    return "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows)


CFG = {
    "InferenceConfig": {"FeatureHeaders": ["w", "x", "y", "z"], "ProbabilityIndex": 1, "MaxRecordCount": 50},
    "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": _csv(BASE)}, "NumberOfSamples": 12, "Seed": 9},
}


def _post(url: str, body: bytes, ctype: str = "text/csv", **headers) -> tuple[int, bytes, str]:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": ctype, **headers})
        r = conn.getresponse()
        return r.status, r.read(), r.getheader("content-type", "")
    finally:
        conn.close()


def _ping(url: str) -> int:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server():
    with ModelServer(CLF, explainer=CFG) as url:
        yield url


def _attributions(doc) -> dict[int, np.ndarray]:
    out = {}
    for i, rec in enumerate(doc["explanations"].get("kernel_shap", [])):
        if rec is not None:
            out[i] = np.array([f["attributions"][0]["attribution"] for f in rec])
    return out


def test_served_attributions_equal_kernel_shap(server):
    rows = X[20:28]
    status, body, ctype = _post(server, _csv(rows).encode())
    assert status == 200 and ctype.startswith("application/json")
    doc = json.loads(body)
    assert doc["version"] == "1.0" and doc["predictions"]["content_type"] == "text/csv"
    served = np.array([[float(v) for v in ln.split(",")] for ln in doc["predictions"]["data"].splitlines()])
    np.testing.assert_array_equal(served, CLF.predict_proba(rows))
    assert doc["label_headers"] == ["1"]
    got = _attributions(doc)
    assert sorted(got) == list(range(8))
    ref = KernelShap(CLF, BASE, num_samples=12, seed=9, estimator="shap").explain(rows).values[:, :, 1]
    np.testing.assert_array_equal(np.stack([got[i][:, 0] for i in range(8)]), ref)  # bitwise through JSON
    assert [f["feature_header"] for f in doc["explanations"]["kernel_shap"][0]] == ["w", "x", "y", "z"]


def test_json_lines_request_and_enable_header(server):
    rows = X[30:36]
    body = "".join(json.dumps({"features": r.tolist()}) + "\n" for r in rows).encode()
    expr = "scores[1] > `0.5`"
    status, out, _ = _post(
        server,
        body,
        "application/jsonlines",
        Accept="application/jsonlines",
        **{"X-Amzn-SageMaker-Enable-Explanations": expr},
    )
    assert status == 200, out
    doc = json.loads(out)
    want = CLF.predict_proba(rows)[:, 1] > 0.5
    assert [rec is not None for rec in doc["explanations"].get("kernel_shap", [None] * 6)] == want.tolist()
    lines = doc["predictions"]["data"].splitlines()
    assert [json.loads(ln)["scores"] for ln in lines] == CLF.predict_proba(rows).tolist()
    status, out, _ = _post(server, body, "application/jsonlines", **{"X-Amzn-SageMaker-Enable-Explanations": "`false`"})
    assert status == 200 and json.loads(out)["explanations"] == {}
    status, out, _ = _post(server, body, "application/jsonlines", **{"X-Amzn-SageMaker-Enable-Explanations": "[1"})
    assert status == 400 and b"X-Amzn-SageMaker-Enable-Explanations: '[1' is not a valid JMESPath" in out


def test_endpoint_reads_predictions_from_an_explaining_server(server):
    rows = X[:120]
    with Endpoint(server, max_batch_rows=40) as ep:
        np.testing.assert_array_equal(ep.predict(rows), CLF.predict_proba(rows))
    # explanations switched off by the header: the same predictions, nothing explained
    with Endpoint(server, max_batch_rows=40, headers={"X-Amzn-SageMaker-Enable-Explanations": "`false`"}) as ep:
        np.testing.assert_array_equal(ep.predict(rows), CLF.predict_proba(rows))
    with Endpoint(
        server, content_type="application/jsonlines", accept_type="application/jsonlines", probability="scores"
    ) as ep:
        np.testing.assert_array_equal(ep.predict(rows[:30]), CLF.predict_proba(rows[:30]))


def test_limits_and_bad_records(server):
    status, out, _ = _post(server, _csv(X[:51]).encode())
    assert status == 413
    assert out.decode() == MSG_TOO_MANY_RECORDS.format(n=51, key="InferenceConfig.MaxRecordCount", limit=50)
    body = _csv(X[:3]) + "1.0,2.0,3.0\n" + _csv(X[3:5])
    status, out, _ = _post(server, body.encode())
    assert status == 400 and b"record 3 has 3 feature values but the explainer's baseline has 4" in out
    status, out, _ = _post(server, b"1,2,3,4\n5,6,abc,8\n")
    assert status == 400 and b"record 1, feature 2: 'abc' is not a number" in out
    status, out, _ = _post(server, b"[[1,2,3,4],[1,2,3]]", "application/json")
    assert status == 400 and b"record 1 has 3, record 0 has 4" in out
    # the server is still well after the bad requests
    status, out, _ = _post(server, _csv(X[:2]).encode())
    assert status == 200 and len(json.loads(out)["explanations"]["kernel_shap"]) == 2


def test_max_payload_in_mb_bounds_the_body():
    cfg = {**CFG, "InferenceConfig": {"MaxPayloadInMB": 1}}
    with ModelServer(CLF, explainer=cfg, max_body_bytes="16MiB") as url:
        # the declared length (1.12 MB) is refused before the body is sent: sending it too would race
        # the server closing the connection after its 413 (a broken pipe on a loaded machine)
        host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.putrequest("POST", "/invocations")
            conn.putheader("Content-Type", "text/csv")
            conn.putheader("Content-Length", str(len(b"0.5,0.5,0.5,0.5\n") * 70_000))
            conn.endheaders()
            r = conn.getresponse()
            status, out = r.status, r.read()
        finally:
            conn.close()
        assert status == 413 and b"limit of 1048576 bytes" in out
        assert _post(url, b"0.5,0.5,0.5,0.5\n")[0] == 200


def test_ping_answers_while_explanations_run_concurrently():
    """Two requests explained at once: the model waits at a barrier for two concurrent calls, so a
    server that explained one request at a time would time out there (500); /ping answers meanwhile."""
    barrier = threading.Barrier(2, timeout=20)
    armed = threading.Event()

    def model(A):
        if armed.is_set() and len(A) > 1:  # the synthetic batches, not the records' own predictions
            barrier.wait()
            time.sleep(0.3)
        return A @ np.array([1.0, -1.0, 0.5, 2.0])

    from clarion.serve import create_app

    ex = OnlineExplainer(model, BASE, num_samples=12, seed=1)
    app = create_app(None, explainer=ex, max_concurrency=2)  # two at once, whatever the CPU count
    with ModelServer(None, app=app) as url:
        armed.set()
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(_post(url, _csv(X[:1]).encode()))) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.1)
        t0 = time.monotonic()
        assert _ping(url) == 200
        ping_s = time.monotonic() - t0
        for t in threads:
            t.join(30)
        assert [r[0] for r in results] == [200, 200], results
        assert ping_s < 5  # answered while both explanations were held in the model
        ref = KernelShap(
            lambda A: A @ np.array([1.0, -1.0, 0.5, 2.0]), BASE, num_samples=12, seed=1, estimator="shap"
        ).explain(X[:1])
        got = _attributions(json.loads(results[0][1]))[0][:, 0]
        np.testing.assert_array_equal(got, ref.values[0])


def test_capture_records_the_explained_answer(tmp_path):
    from clarion.serve import create_app

    app = create_app(CLF, explainer=CFG, capture=tmp_path / "cap")
    with ModelServer(None, app=app) as url:
        status, out, _ = _post(url, _csv(X[:2]).encode())
    assert status == 200
    (f,) = list((tmp_path / "cap").rglob("*.jsonl"))
    rec = json.loads(f.read_text().splitlines()[0])
    cap = rec["captureData"]["endpointOutput"]
    assert cap["observedContentType"] == "application/json" and json.loads(cap["data"]) == json.loads(out)


def test_cli_refuses_a_bad_explainer_config(tmp_path, monkeypatch, capsys):
    (tmp_path / "scorer_online.py").write_text("def score(X):\n    return X[:, 0] + X[:, 1]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    bad = tmp_path / "explainer.json"
    bad.write_text(json.dumps({"ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": "1,2"}, "NumberOfSample": 9}}))
    assert main(["serve", "scorer_online:score", "--port", "0", "--explain", str(bad)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "ShapConfig.NumberOfSample: unknown key (did you mean 'NumberOfSamples'?)" in err and "Traceback" not in err
    monkeypatch.delitem(sys.modules, "scorer_online", raising=False)


def test_cli_serve_explain_end_to_end(tmp_path):
    (tmp_path / "online_model.py").write_text(
        "import numpy as np\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X = np.random.default_rng(3).normal(size=(100, 3))\n"
        "model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))\n"
    )
    (tmp_path / "baseline.csv").write_text("0,0,0\n1,1,1\n")
    (tmp_path / "explainer.json").write_text(
        json.dumps(
            {
                "ClarifyExplainerConfig": {
                    "EnableExplanations": "[1] > `0.5`",
                    "InferenceConfig": {"FeatureHeaders": ["a", "b", "c"], "ProbabilityIndex": 1},
                    "ShapConfig": {"ShapBaselineConfig": {"ShapBaselineUri": "baseline.csv"}, "Seed": 4},
                }
            }
        )
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "python"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clarion",
            "serve",
            "online_model:model",
            "--port",
            str(port),
            "--explain",
            "explainer.json",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _ping(url) == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "clarion serve --explain did not come up"
            time.sleep(0.2)
        status, out, _ = _post(url, b"2,0,0\n-2,0,0\n")
        assert status == 200, out
        doc = json.loads(out)
        ks = doc["explanations"]["kernel_shap"]
        assert ks[1] is None and [f["feature_header"] for f in ks[0]] == ["a", "b", "c"]
        p1 = float(doc["predictions"]["data"].splitlines()[0].split(",")[1])
        # exact mode (3 features: every coalition): attributions add up to f(x) - mean f(baseline)
        import importlib.util as iu

        spec = iu.spec_from_file_location("online_model_t", tmp_path / "online_model.py")
        mod = iu.module_from_spec(spec)
        spec.loader.exec_module(mod)
        ev = mod.model.predict_proba(np.array([[0, 0, 0], [1, 1, 1.0]]))[:, 1].mean()
        total = sum(f["attributions"][0]["attribution"][0] for f in ks[0])
        assert abs(total - (p1 - ev)) < 1e-12
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_max_concurrency_bounds_the_explanations_at_once():
    """With max_concurrency=1 the second request waits for the first: two model calls never meet
    at the barrier (it breaks after 1 s, and both requests report the model's failure as 500)."""
    from clarion.serve import create_app

    barrier = threading.Barrier(2, timeout=1)
    armed = threading.Event()

    def model(A):
        if armed.is_set() and len(A) > 1:
            barrier.wait()
        return A @ np.array([1.0, -1.0, 0.5, 2.0])

    app = create_app(None, explainer=OnlineExplainer(model, BASE, num_samples=12, seed=1), max_concurrency=1)
    with ModelServer(None, app=app) as url:
        armed.set()
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(_post(url, _csv(X[:1]).encode()))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(r[0] for r in results) == [500, 500]
        assert all(b"BrokenBarrierError" in r[1] for r in results)
    with pytest.raises(ValueError, match=r"max_concurrency must be a positive integer, got 0"):
        create_app(None, explainer=OnlineExplainer(lambda A: A[:, 0], BASE, num_samples=12), max_concurrency=0)
