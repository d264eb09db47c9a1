"""Benchmark clarion.models: a scikit-learn model called directly, through ``as_model``, and
through ``clarion serve`` on loopback, at several batch sizes, with the overhead ratios.

* **direct**: ``clf.predict_proba`` on consecutive slices of ``batch`` rows;
* **as_model**: ``as_model(clf).predict`` on the same slices (target: ≤ 5 % slower);
* **endpoint c=1 / c=4**: ``Endpoint(url, max_batch_rows=batch, concurrency=c).predict`` on all
  rows; the server is ``clarion serve model.skops`` in its own process on 127.0.0.1 (or, with
  ``--in-process``, a :class:`clarion.serve.ModelServer` thread). Target at 1,000 rows per batch:
  within 3× of the direct call.

Every result is checked equal to the direct prediction before timing; the contenders are timed in
interleaved rounds (``--repeat`` of them, alternating order, each round >= 50 ms per contender),
best of each, and ratios are within one run.

    python benchmarks/bench_models.py
    python benchmarks/bench_models.py --rows 20000 --batch 100 1000 10000 --json out.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def interleaved(contenders, repeat, min_time=0.05):
    """Best time per call of each contender over ``repeat`` rounds; in each round every
    contender runs ``k`` times back to back (``k`` chosen so a round takes >= ``min_time``), and
    the order of the contenders alternates between rounds so none is always first."""
    loops = {}
    for name, fn in contenders.items():
        t0 = time.perf_counter()
        fn()
        loops[name] = max(1, int(np.ceil(min_time / max(time.perf_counter() - t0, 1e-9))))
    best = dict.fromkeys(contenders, np.inf)
    names = list(contenders)
    for r in range(repeat):
        for name in names if r % 2 == 0 else names[::-1]:
            fn, k = contenders[name], loops[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / k)
    return best


def sliced(predict, X, batch):
    return np.concatenate([predict(X[s : s + batch]) for s in range(0, len(X), batch)])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cli_server(model, workdir):
    import skops.io as sio

    path = Path(workdir) / "model.skops"
    sio.dump(model, path)
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    trusted = []  # we wrote this file ourselves a moment ago, so its types are trusted
    for t in sio.get_untrusted_types(file=path):
        trusted += ["--trusted", t]
    proc = subprocess.Popen(
        [sys.executable, "-m", "clarion", "serve", str(path), "--port", str(port), *trusted],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
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
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("clarion serve did not start: " + proc.stderr.read().decode())
        time.sleep(0.2)
    return f"http://127.0.0.1:{port}/invocations", proc


def make_models(kind, X, y):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "rf":
        return RandomForestClassifier(n_estimators=100, max_depth=10, n_jobs=1, random_state=0).fit(X, y)
    return LogisticRegression(max_iter=500).fit(X, y)


def run(args):
    from clarion.models import Endpoint, as_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, args.features))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=args.rows) > 0).astype(int)
    results = []
    for kind in args.models:
        clf = make_models(kind, X[:5000], y[:5000])
        model = as_model(clf)
        with tempfile.TemporaryDirectory() as tmp:
            if args.in_process:
                from clarion.serve import ModelServer

                server = ModelServer(clf)
                url, proc = server.start(), None
            else:
                url, proc = start_cli_server(clf, tmp)
            try:
                for batch in args.batch:
                    expected = sliced(clf.predict_proba, X, batch)
                    assert np.array_equal(sliced(model.predict, X, batch), expected)
                    row = {"model": kind, "rows": args.rows, "batch": batch}
                    contenders = {
                        "direct_s": lambda: sliced(clf.predict_proba, X, batch),
                        "as_model_s": lambda: sliced(model.predict, X, batch),
                    }
                    endpoints = []
                    for c in args.concurrency:
                        ep = Endpoint(url, max_batch_rows=batch, concurrency=c)
                        endpoints.append(ep)
                        # the server runs the model on the same batches, so results are equal
                        assert np.array_equal(ep.predict(X), expected), "endpoint result differs"
                        contenders[f"endpoint_c{c}_s"] = lambda ep=ep: ep.predict(X)
                    # interleaved rounds, best of each: the load on a shared machine drifts
                    row.update(interleaved(contenders, args.repeat))
                    # Model's own fixed cost per call, measured on a no-op model (timing noise on a
                    # loaded machine is larger than this cost, so it is measured apart)
                    Xb = X[:batch]
                    noop = as_model(lambda A: A[:, :2])
                    fixed = interleaved(
                        {"raw": lambda: Xb[:, :2], "model": lambda: noop.predict(Xb)}, args.repeat, min_time=0.02
                    )
                    row["model_fixed_cost_s"] = max(0.0, fixed["model"] - fixed["raw"])
                    row["calls"] = -(-args.rows // batch)
                    for ep in endpoints:
                        ep.close()
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr)
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.communicate(timeout=30)
                else:
                    server.stop()
    return results


def table(results, concurrency):
    cols = [
        "model",
        "batch",
        "direct rows/s",
        "as_model rows/s",
        "as_model overhead (measured)",
        "Model fixed cost / call",
        "fixed cost / direct call",
    ]
    cols += [f"endpoint c={c} rows/s" for c in concurrency] + [f"endpoint c={c} / direct" for c in concurrency]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        n = r["rows"]
        cells = [
            r["model"],
            f"{r['batch']:,}",
            f"{n / r['direct_s']:,.0f}",
            f"{n / r['as_model_s']:,.0f}",
            f"{(r['as_model_s'] / r['direct_s'] - 1) * 100:+.1f} %",
            f"{r['model_fixed_cost_s'] * 1e6:.1f} µs",
            f"{r['model_fixed_cost_s'] * r['calls'] / r['direct_s'] * 100:.2f} %",
        ]
        cells += [f"{n / r[f'endpoint_c{c}_s']:,.0f}" for c in concurrency]
        cells += [f"{r[f'endpoint_c{c}_s'] / r['direct_s']:.2f}×" for c in concurrency]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--batch", type=int, nargs="+", default=[100, 1000, 10_000])
    p.add_argument("--models", nargs="+", default=["rf", "logreg"], choices=["rf", "logreg"])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--in-process", action="store_true", help="serve from a thread of this process")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    results = run(args)
    meta = {
        "machine": f"{os.cpu_count()} cpus, {platform.machine()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
    }
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"machine: {meta['machine']}, Python {meta['python']}\ncommand: python {meta['command']}\n")
    print(table(results, args.concurrency))


if __name__ == "__main__":
    main()
