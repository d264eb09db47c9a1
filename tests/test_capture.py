"""Issue 15, items 4-6: ``clarion serve --capture`` writes SageMaker data-capture records, and
``clarion monitor --capture DIR --ground-truth GT`` joins them with SageMaker-format labels and
runs the bias checks on the joined rows.

A real server on 127.0.0.1: uvicorn in a thread for the loop, ``python -m clarion serve`` in a
subprocess for the crash (SIGKILL mid-traffic must leave only whole lines).
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from clarion.capture import CaptureWriter, capture_record, join, read_records
from clarion.cli import EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("starlette") is None,
    reason="clarion serve needs uvicorn and starlette",
)

HEADERS = ["g", "a", "b", "c", "y"]
METHODS = ["CI", "DPL", "KL", "DPPL", "DI", "DCA", "RD"]
CONFIG = {
    "dataset_type": "text/csv",
    "headers": HEADERS,
    "label": "y",
    "label_values_or_threshold": [1],
    "facet": [{"name_or_index": "g", "value_or_threshold": [1]}],
    "methods": {
        "pre_training_bias": {"methods": ["CI", "DPL", "KL"]},
        "post_training_bias": {"methods": ["DPPL", "DI", "DCA", "RD"]},
    },
    "predictor": {"model_uri": "model.skops", "probability": 1},
}


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = (rng.random(n) < 0.4).astype(int)
    a, b, c = rng.normal(size=(3, n)).round(4)
    y = (rng.random(n) < 0.4 + 0.2 * g).astype(int)
    return pd.DataFrame({"g": g, "a": a, "b": b, "c": c, "y": y})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    import clarion

    d = tmp_path_factory.mktemp("capture")
    model = LogisticRegression()
    model.coef_ = np.array([[0.8, 2.0, 1.0, -0.5]])
    model.intercept_ = np.array([0.0])
    model.classes_ = np.array([0, 1])
    model.n_features_in_ = 4
    dump(model, d / "model.skops")
    (d / "config.json").write_text(json.dumps(CONFIG))
    base = rows(2000, 1)
    base["pred"] = model.predict_proba(base[HEADERS[:-1]].to_numpy(float))[:, 1]
    cfg = {**CONFIG, "predicted_label": "pred"}
    del cfg["headers"]
    cfg["predictor"] = {"probability": 1}
    res = clarion.analyze(cfg, base, output_dir=d / "baseline", progress=False)
    return {"dir": d, "model": model, "baseline": res.paths["analysis"]}


def _post(conn, body: str, ctype: str, inference_id: str | None) -> bytes:
    headers = {"Content-Type": ctype, "Accept": ctype}
    if inference_id:
        headers["X-Amzn-SageMaker-Inference-Id"] = inference_id
    conn.request("POST", "/invocations", body=body.encode(), headers=headers)
    r = conn.getresponse()
    out = r.read()
    assert r.status == 200, out
    return out


def _labels(folder, pairs, when):
    """SageMaker-format ground truth: one record per event id, in the hourly layout."""
    sub = folder / when.strftime("%Y/%m/%d/%H")
    sub.mkdir(parents=True, exist_ok=True)
    with open(sub / "labels.jsonl", "w") as fh:
        for eid, y in pairs:
            rec = {
                "groundTruthData": {"data": str(y), "encoding": "CSV", "observedContentType": "text/csv"},
                "eventMetadata": {"eventId": eid},
                "eventVersion": "0",
            }
            fh.write(json.dumps(rec) + "\n")


@pytest.fixture(scope="module")
def loop(setup):
    """300 requests to a capturing server (CSV and JSON Lines, one and several rows, with and
    without an inference id), ground truth for most of them, and 5 labels nobody asked for."""
    from clarion.serve import ModelServer, create_app

    d = setup["dir"]
    cap, gt = d / "capture", d / "gt"
    data = rows(600, 2)
    app = create_app(str(d / "model.skops"), capture=cap)
    sent = []
    with ModelServer(None, app=app) as url:
        port = int(url.split(":")[2].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i = k = 0
        while i < len(data):
            n = 1 if k % 3 else 4
            blk = data.iloc[i : i + n]
            i += n
            iid = f"req-{k}" if k % 5 else None
            if k % 2:
                body = "\n".join(",".join(str(v) for v in r) for r in blk[HEADERS[:-1]].itertuples(index=False))
                _post(conn, body, "text/csv", iid)
            else:
                body = "\n".join(
                    json.dumps({"features": list(map(float, r))}) for r in blk[HEADERS[:-1]].itertuples(index=False)
                )
                _post(conn, body, "application/jsonlines", iid)
            sent.append((iid, blk))
            k += 1
        conn.close()
    # event ids of the requests without an inference id come from the capture files
    recs = read_records(cap).records
    assert len(recs) == len(sent)
    pairs, joined_parts = [], []
    for (iid, blk), rec in zip(sent, recs):
        eid = iid or rec["eventMetadata"]["eventId"]
        if iid is not None:
            assert rec["eventMetadata"]["inferenceId"] == iid
        if len(pairs) % 10 == 9:  # every tenth request is never labelled
            pairs.append((None, None))
            continue
        pairs.append((eid, "\n".join(str(v) for v in blk["y"])))
        joined_parts.append(blk)
    real = [p for p in pairs if p[0] is not None]
    now = datetime.now(timezone.utc)
    _labels(gt, real + [(str(uuid.uuid4()), 1) for _ in range(5)], now)
    return {
        "cap": cap,
        "gt": gt,
        "sent": sent,
        "joined": pd.concat(joined_parts, ignore_index=True),
        "n_labels": len(real),
    }


def test_capture_files_parse_as_sagemaker_documents(loop):
    cap = loop["cap"]
    files = [os.path.join(p, f) for p, _, fs in os.walk(cap) for f in fs]
    assert files
    for f in files:
        rel = os.path.relpath(f, cap).split(os.sep)
        assert len(rel) == 5 and re.fullmatch(r"\d{4}/\d{2}/\d{2}/\d{2}", "/".join(rel[:4]))
        assert rel[4].endswith(".jsonl")
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        assert text.endswith("\n")
        for line in text.splitlines():
            rec = json.loads(line)
            assert set(rec) == {"captureData", "eventMetadata", "eventVersion"}
            assert rec["eventVersion"] == "0"
            meta = rec["eventMetadata"]
            assert set(meta) <= {"eventId", "inferenceId", "inferenceTime"} and {"eventId", "inferenceTime"} <= set(
                meta
            )
            uuid.UUID(meta["eventId"])
            t = datetime.strptime(meta["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
            assert t.strftime("%Y/%m/%d/%H") == "/".join(rel[:4])
            cd = rec["captureData"]
            assert set(cd) == {"endpointInput", "endpointOutput"}
            for key, mode in (("endpointInput", "INPUT"), ("endpointOutput", "OUTPUT")):
                part = cd[key]
                assert set(part) == {"observedContentType", "mode", "data", "encoding"}
                assert part["mode"] == mode and part["encoding"] in ("CSV", "JSON", "BASE64")
            inp = cd["endpointInput"]
            if inp["observedContentType"] == "text/csv":
                assert inp["encoding"] == "CSV" and all(len(r.split(",")) == 4 for r in inp["data"].splitlines())
            else:
                assert inp["encoding"] == "JSON"
                assert all(len(json.loads(r)["features"]) == 4 for r in inp["data"].splitlines())


def test_binary_bodies_are_base64():
    rec = capture_record(b"\x00\xff", "application/x-npy", b"0.5", "text/csv")
    inp = rec["captureData"]["endpointInput"]
    assert inp["encoding"] == "BASE64" and base64.b64decode(inp["data"]) == b"\x00\xff"


def test_join_counts_what_did_not_join(loop):
    j = join(loop["cap"], loop["gt"], headers=HEADERS, probability=1)
    n = len(loop["sent"])
    assert j.captures == n
    assert j.matched == loop["n_labels"]
    assert j.unmatched_captures == n - loop["n_labels"] and j.unmatched_captures > 0
    assert j.unmatched_labels == 5
    assert j.bad_records == j.torn_lines == 0
    pd.testing.assert_frame_equal(
        j.frame[HEADERS].reset_index(drop=True), loop["joined"][HEADERS].reset_index(drop=True), check_dtype=False
    )


def test_monitor_on_capture_equals_bias_report(setup, loop, capsys):
    from clarion.bias import report

    d = setup["dir"]
    out = d / "monitor_out"
    rc = main(
        [
            "monitor",
            "--baseline",
            setup["baseline"],
            "--config",
            str(d / "config.json"),
            "--capture",
            str(loop["cap"]),
            "--ground-truth",
            str(loop["gt"]),
            "--output",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert rc in (EXIT_OK, EXIT_VIOLATIONS)
    assert "unmatched_captures" in printed and "unmatched_labels 5" in printed
    counts = json.loads((out / "capture_join.json").read_text())
    assert counts["unmatched_labels"] == 5 and counts["matched"] == loop["n_labels"]
    doc = json.loads((out / "analysis.json").read_text())
    X = loop["joined"].copy()
    X["predicted_label"] = setup["model"].predict_proba(X[HEADERS[:-1]].to_numpy(float))[:, 1]
    rep = report(
        X, label="y", facet="g", facet_values=[1], label_values=[1], predicted_label="predicted_label", methods=METHODS
    )
    frame = rep.to_frame()
    want = dict(zip(frame["metric"], frame["value"]))
    got = {}
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        for m in doc[stage]["facets"]["g"][0]["metrics"]:
            got[m["name"]] = m["value"]
    assert set(got) == set(METHODS) and all(math.isfinite(got[m]) for m in METHODS)
    for m in METHODS:
        assert math.isclose(got[m], float(want[m]), rel_tol=1e-9, abs_tol=1e-12), m


def test_monitor_capture_time_range_and_bad_input(setup, loop, capsys):
    d = setup["dir"]
    base = ["monitor", "--baseline", setup["baseline"], "--config", str(d / "config.json"), "--overwrite", "--quiet"]
    later = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    rc = main(
        [
            *base,
            "--capture",
            str(loop["cap"]),
            "--ground-truth",
            str(loop["gt"]),
            "--start",
            later,
            "--output",
            str(d / "m2"),
        ]
    )
    assert rc == EXIT_ERROR and "no captured request joined" in capsys.readouterr().err
    rc = main([*base, "--capture", str(loop["cap"]), "--output", str(d / "m3")])
    assert rc == EXIT_ERROR and "--ground-truth" in capsys.readouterr().err
    rc = main([*base, "--output", str(d / "m4")])
    assert rc == EXIT_ERROR and "--data or --capture" in capsys.readouterr().err


def test_killed_server_leaves_only_whole_lines(setup, tmp_path):
    d = setup["dir"]
    cap = tmp_path / "cap"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.abspath("python"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "clarion", "serve", str(d / "model.skops"), "--port", "0", "--capture", str(cap)],
        stderr=subprocess.PIPE,
        env=env,
    )
    drain = None
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline().decode()
            m = re.search(r":(\d+)/invocations", line)
            port = int(m.group(1)) if m else None
        assert port is not None
        drain = threading.Thread(target=proc.stderr.read, daemon=True)
        drain.start()
        for _ in range(50):  # wait until it answers
            ping = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                ping.request("GET", "/ping")
                ping.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
            finally:
                ping.close()
        big = "\n".join("0.5,1.25,-3.5,2.0" for _ in range(2000))
        stop = threading.Event()

        def traffic():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                while not stop.is_set():
                    _post(conn, big, "text/csv", str(uuid.uuid4()))
            except Exception:  # noqa: BLE001 - the server is killed under us
                pass
            finally:
                conn.close()

        threads = [threading.Thread(target=traffic) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(cap.rglob("*.jsonl")):
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        proc.kill()
        proc.wait()
        if drain is not None:
            drain.join(10)
        proc.stderr.close()
    files = list(cap.rglob("*.jsonl"))
    assert files
    n = 0
    for f in files:
        data = f.read_bytes()
        assert data.endswith(b"\n")
        for line in data.splitlines():
            rec = json.loads(line)
            assert len(rec["captureData"]["endpointInput"]["data"].splitlines()) == 2000
            n += 1
    assert n > 0
    assert read_records(cap).torn == 0


def test_reader_skips_a_torn_last_line(tmp_path):
    w = CaptureWriter(tmp_path)
    w.capture(b"1,2,3,4", "text/csv", b"0.5", "text/csv", inference_id="x")
    w.close()
    (f,) = tmp_path.rglob("*.jsonl")
    with open(f, "ab") as fh:
        fh.write(b'{"captureData": {"endpointIn')
    r = read_records(tmp_path)
    assert len(r.records) == 1 and r.torn == 1


def test_join_reads_sagemaker_written_captures(tmp_path):
    """Records as SageMaker's endpoints write them: base64 input (no CaptureContentTypeHeader), a
    JSON output addressed by a JMESPath ``predictor.probability``, ``eventId`` as the join key."""
    cap, gt = tmp_path / "cap" / "2026" / "03" / "10" / "12", tmp_path / "gt" / "2026" / "03" / "10" / "13"
    cap.mkdir(parents=True)
    gt.mkdir(parents=True)
    lines, labels = [], []
    for k in range(4):
        eid = str(uuid.uuid4())
        rec = {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": base64.b64encode(f"{k % 2},{k}.5,1,2".encode()).decode(),
                    "encoding": "BASE64",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": json.dumps({"predictions": [{"score": 0.25 * k}]}),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": eid, "inferenceTime": f"2026-03-10T12:0{k}:00Z"},
            "eventVersion": "0",
        }
        lines.append(json.dumps(rec))
        labels.append(
            json.dumps(
                {
                    "groundTruthData": {"data": str(k % 2), "encoding": "CSV", "observedContentType": "text/csv"},
                    "eventMetadata": {"eventId": eid},
                    "eventVersion": "0",
                }
            )
        )
    (cap / "01-02-003-abc.jsonl").write_text("\n".join(lines) + "\n")
    (gt / "labels.jsonl").write_text("\n".join(labels[:3]) + "\n")
    j = join(
        tmp_path / "cap",
        tmp_path / "gt",
        headers=HEADERS,
        probability="score",
        start=datetime(2026, 3, 10, 12, 1, tzinfo=timezone.utc),
    )
    assert (j.captures, j.matched, j.out_of_range, j.unmatched_captures, j.unmatched_labels) == (4, 2, 1, 1, 0)
    assert j.frame["predicted_label"].tolist() == [0.25, 0.5]
    assert j.frame["y"].tolist() == [1, 0] and j.frame["a"].tolist() == [1.5, 2.5]
