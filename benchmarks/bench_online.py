"""Benchmark online explainability (``clarion serve --explain``, :class:`clarion.explain.OnlineExplainer`).

For every (model, M features, records per request) the same run times

* **explain**: ``OnlineExplainer.explain(records)`` in process (predictions of the records, masking,
  the model on the synthetic rows, reduction, solve, the Clarify JSON body), p50 and p99;
* **model**: one call of the bare model (``predict_proba``) on a synthetic batch like the one the
  explainer builds, ``records x n_samples x baseline rows`` rows, each a record with a random
  coalition of its features replaced by a baseline row's (built beforehand, not timed), p50 and p99
  — the floor the explainer is measured against;
* **shap**: ``shap.KernelExplainer(predict_proba, baseline).shap_values(record, nsamples=n_samples)``
  on the same one record (the peer), p50;
* **HTTP**: a real local server (uvicorn on 127.0.0.1) answering one-record CSV requests from 1 and
  16 concurrent keep-alive clients for ``--seconds`` each: requests/s and the p50 round trip.

n_samples is Clarify's default, ``min(2 M + 2048, 2^M - 2)``: 1022 for 10 features (every coalition),
2108 for 30. Target (issue 16): p50 of a one-record explanation <= 1.3 x the model's own p50 on the
synthetic batch + 2 ms.

BLAS runs single-threaded (``--blas-threads 1``, threadpoolctl) for the explainer and the model
alike, and so do clarion's kernels (``--threads 1``): on a small shared machine OpenBLAS' threads
cost a logistic regression on 21k rows 20 ms instead of 0.8 ms, which would time the machine's
scheduler, not the explainer.

    python benchmarks/bench_online.py                       # default grid (about 2 minutes)
    python benchmarks/bench_online.py --json out.json --seconds 5 --repeat 50
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import threading
import time
import warnings

import numpy as np

from clarion.explain import OnlineExplainer
from clarion.serve import ModelServer


def make_models(M: int, seed: int = 0):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, M))
    y = (X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2 + 0.3 * rng.normal(size=3000) > 0).astype(int)
    return X, {
        "gradient_boosting": GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0).fit(X, y),
        "logistic_regression": LogisticRegression(max_iter=500).fit(X, y),
    }


def synthetic_batch(rows, base, S, seed=0):
    """``len(rows) * S * K`` masked rows: per record and coalition z (a random half of the features),
    one row per baseline row b_k with x where z is 1 and b_k where z is 0 (what the explainer's
    masking writes, with another coalition plan)."""
    rng = np.random.default_rng(seed)
    n, M = rows.shape
    K = base.shape[0]
    out = np.empty((n, S, K, M))
    for i in range(n):
        z = rng.random((S, M)) < 0.5
        out[i] = np.where(z[:, None, :], rows[i][None, None, :], base[None, :, :])
    return out.reshape(n * S * K, M)


def percentiles(times):
    t = np.asarray(times) * 1e3
    return float(np.percentile(t, 50)), float(np.percentile(t, 99))


def time_calls(fn, repeat):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def interleaved(fns, repeat):
    """Times of each function over `repeat` interleaved rounds (f1, f2, f1, f2, ...)."""
    out = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            out[i].append(time.perf_counter() - t0)
    return out


def load(url, body, clients, seconds):
    """Requests/s and round-trip times of `clients` keep-alive clients posting `body` for `seconds`."""
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    stop = time.monotonic() + seconds
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine = []
        try:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    errors.append(data[:200].decode(errors="replace"))
                    return
                mine.append(time.perf_counter() - t0)
        finally:
            conn.close()
            with lock:
                lat.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"server answered an error: {errors[0]}")
    return len(lat) / wall, percentiles(lat)[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--records", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--baseline-rows", type=int, default=10, help="K, rows of the SHAP baseline (default 10)")
    ap.add_argument("--repeat", type=int, default=30, help="timed calls per one-record case (default 30)")
    ap.add_argument("--repeat-batch", type=int, default=3, help="timed calls per 64-record case (default 3)")
    ap.add_argument("--shap-repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="load per client count (default 2 s)")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--no-shap", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--blas-threads", type=int, default=1, help="BLAS / OpenMP threads (default 1; 0: leave)")
    ap.add_argument("--threads", type=int, default=1, help="clarion's kernel threads, n_threads (default 1)")
    ap.add_argument(
        "--estimator", choices=["shap", "cubic"], default="shap", help="ShapConfig.Estimator (default shap)"
    )
    args = ap.parse_args(argv)
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads)

    results = []
    for M in args.features:
        X, models = make_models(M)
        base = X[: args.baseline_rows]
        for name, model in models.items():
            ex = OnlineExplainer(model, base, seed=0, n_threads=args.threads, estimator=args.estimator)
            S, K = ex.num_samples, len(base)
            for n in args.records:
                rows = X[100 : 100 + n]
                syn = synthetic_batch(rows, base, S)
                repeat = args.repeat if n == 1 else args.repeat_batch
                if n == 1:  # warm (the batch cases are long enough not to need it)
                    ex.explain(rows).to_json()
                    model.predict_proba(syn)
                t_ex, t_model = interleaved(
                    [lambda: ex.explain(rows).to_json(), lambda: model.predict_proba(syn)], repeat
                )
                ex50, ex99 = percentiles(t_ex)
                m50, m99 = percentiles(t_model)
                row = {
                    "model": name,
                    "features": M,
                    "records": n,
                    "baseline_rows": K,
                    "n_samples": S,
                    "synthetic_rows": n * S * K,
                    "explain_p50_ms": ex50,
                    "explain_p99_ms": ex99,
                    "model_p50_ms": m50,
                    "model_p99_ms": m99,
                    "ratio_p50": ex50 / m50,
                    "target_ms": 1.3 * m50 + 2.0,
                    "meets_target": bool(ex50 <= 1.3 * m50 + 2.0) if n == 1 else None,
                }
                if n == 1 and not args.no_shap:
                    import shap

                    kx = shap.KernelExplainer(model.predict_proba, base)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t_shap = time_calls(
                            lambda: kx.shap_values(rows, nsamples=S, l1_reg=False, silent=True), args.shap_repeat
                        )
                    row["shap_p50_ms"] = percentiles(t_shap)[0]
                    row["shap_over_explain"] = row["shap_p50_ms"] / ex50
                if n == 1:
                    body = ",".join(repr(float(v)) for v in rows[0]).encode() + b"\n"
                    with ModelServer(None, explainer=ex) as url:
                        load(url, body, 1, 0.3)  # warm the connection path
                        for c in args.clients:
                            rps, rt50 = load(url, body, c, args.seconds)
                            row[f"rps_{c}"] = rps
                            row[f"http_p50_ms_{c}"] = rt50
                results.append(row)
                print(json.dumps(row), file=sys.stderr)

    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "command": "python benchmarks/bench_online.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(f"\n{meta['machine']}, {meta['cpus']} CPUs; {meta['command']}\n")
    head = (
        "| model | M | records | synthetic rows | explain p50 / p99 (ms) | model p50 / p99 (ms) | p50 ratio "
        "| target (1.3 x model + 2 ms) | shap p50 (ms) | req/s 1 client | req/s 16 clients |"
    )
    print(head)
    print("|" + "---|" * 11)
    for r in results:
        tgt = "" if r["meets_target"] is None else f"{r['target_ms']:.2f} ({'met' if r['meets_target'] else 'NOT met'})"
        shp = f"{r['shap_p50_ms']:.0f} ({r['shap_over_explain']:.0f}x)" if "shap_p50_ms" in r else ""
        rps1 = f"{r['rps_1']:.0f}" if "rps_1" in r else ""
        rps16 = f"{r['rps_16']:.0f}" if "rps_16" in r else ""
        print(
            f"| {r['model']} | {r['features']} | {r['records']} | {r['synthetic_rows']:,} | "
            f"{r['explain_p50_ms']:.2f} / {r['explain_p99_ms']:.2f} | "
            f"{r['model_p50_ms']:.2f} / {r['model_p99_ms']:.2f} | "
            f"{r['ratio_p50']:.2f} | {tgt} | {shp} | {rps1} | {rps16} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
