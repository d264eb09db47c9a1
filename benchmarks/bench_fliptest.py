"""Benchmark clarion's FlipTest beside smclarify's FT and scikit-learn, in the same run.

Data: ``rows`` rows of ``M`` independent standard-normal features (no distance ties), facet d a
random ~30% of the rows, model predictions a fair coin. Timed per configuration:

* clarion ``flip_test`` on 1 thread and on all threads (kd-tree build + queries + FT);
* smclarify 0.5 ``bias.metrics.FT`` on the same DataFrame (its Python row loops, then
  scikit-learn's ``KNeighborsClassifier`` with ``algorithm="auto"``);
* scikit-learn ``KNeighborsClassifier(5).fit(a).predict(d)`` alone (the neighbour search floor
  smclarify pays, without its row loops).

Every value is checked equal to smclarify's. Timings are the best of ``--repeat`` runs (peers
once above 1e5 rows); a peer whose predicted time (from the previous size, scaled by
rows^2 / rows_prev^2 as an upper estimate) exceeds ``--budget`` seconds is skipped and shown "—".

    python benchmarks/bench_fliptest.py
    python benchmarks/bench_fliptest.py --rows 1e4 1e5 1e6 --features 3 10 --json ft.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time

import numpy as np
import pandas as pd

import clarion
from clarion.bias.fliptest import flip_test


def best_of(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def smclarify_ft(df, facet, pred):
    from smclarify.bias.metrics import FT

    return FT(df, facet, pred)


def sklearn_knn(xa, ya, xd):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5).fit(xa, ya).predict(xd)


def run(rows_list, features_list, repeat, threads_all, budget, peers):
    rng = np.random.default_rng(0)
    results = []
    if "smclarify" in peers:  # import and warm up outside the timed region
        w = pd.DataFrame({"f0": np.arange(20.0)})
        smclarify_ft(w, pd.Series(np.arange(20) % 2 == 0), pd.Series(np.arange(20) % 3 == 0))
    for m in features_list:
        prev = {}
        for n in rows_list:
            x = rng.normal(size=(n, m))
            facet = rng.random(n) < 0.3
            pred = rng.random(n) < 0.5
            xa, xd = np.ascontiguousarray(x[~facet]), np.ascontiguousarray(x[facet])
            pa, pd_ = pred[~facet], pred[facet]
            df = pd.DataFrame(x, columns=[f"f{j}" for j in range(m)])
            r = {"rows": n, "features": m, "n_a": int(len(xa)), "n_d": int(len(xd))}
            rep = repeat if n <= 10**5 else 1
            r["clarion_1thread_s"], res1 = best_of(lambda: flip_test(xa, xd, pa, pd_, n_threads=1), rep)
            r["clarion_all_threads_s"], res = best_of(lambda: flip_test(xa, xd, pa, pd_, n_threads=threads_all), rep)
            assert res == res1
            r["ft"] = res.value

            def predicted(name):
                if name not in prev:
                    return 0.0
                t, n0 = prev[name]
                return t * (n / n0) ** 2

            for name, fn in (
                ("smclarify_ft_s", lambda: smclarify_ft(df, pd.Series(facet), pd.Series(pred))),
                ("sklearn_knn_s", lambda: sklearn_knn(xa, pa, xd)),
            ):
                if name.split("_")[0] not in peers or predicted(name) > budget:
                    r[name] = None
                    continue
                r[name], out = best_of(fn, 1 if n > 10**5 else repeat)
                prev[name] = (r[name], n)
                if name == "smclarify_ft_s":
                    assert abs(out - res.value) <= 1e-12, f"clarion {res.value} != smclarify {out}"
                else:
                    assert res.f_plus - res.f_minus == int(np.sum(pd_ & ~out)) - int(np.sum(~pd_ & out))
            for name in ("smclarify_ft_s", "sklearn_knn_s"):
                r[f"speedup_vs_{name[:-2]}"] = None if r[name] is None else r[name] / r["clarion_all_threads_s"]
            r["thread_scaling"] = r["clarion_1thread_s"] / r["clarion_all_threads_s"]
            results.append(r)
            print(json.dumps(r), file=sys.stderr)
    return results


def _s(t):
    if t is None:
        return "—"
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def _x(v):
    return "—" if v is None else f"{v:.1f}×"


def markdown(results, threads_all):
    lines = [
        f"| rows | M | clarion 1 thread | clarion {threads_all} threads | smclarify FT | sklearn kNN fit+predict |"
        " vs smclarify | vs sklearn | thread scaling |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:.0e} | {r['features']} | {_s(r['clarion_1thread_s'])} | {_s(r['clarion_all_threads_s'])} | "
            f"{_s(r['smclarify_ft_s'])} | {_s(r['sklearn_knn_s'])} | {_x(r['speedup_vs_smclarify_ft'])} | "
            f"{_x(r['speedup_vs_sklearn_knn'])} | {r['thread_scaling']:.2f}× |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", type=float, default=[1e4, 1e5, 1e6])
    ap.add_argument("--features", nargs="+", type=int, default=[3, 10])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budget", type=float, default=600.0, help="skip a peer predicted to take longer (s)")
    ap.add_argument("--peers", nargs="*", default=["smclarify", "sklearn"], choices=["smclarify", "sklearn"])
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    logging.disable(logging.CRITICAL)  # smclarify logs at ERROR level on every failure
    threads_all = os.cpu_count() or 1
    results = run([int(r) for r in args.rows], args.features, args.repeat, threads_all, args.budget, args.peers)
    import sklearn

    versions = {"numpy": np.__version__, "pandas": pd.__version__, "sklearn": sklearn.__version__}
    try:
        import importlib.metadata as md

        versions["smclarify"] = md.version("smclarify")
    except Exception:  # noqa: BLE001 - reported as missing
        versions["smclarify"] = None
    doc = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": threads_all,
            "python": platform.python_version(),
            **versions,
        },
        "build": clarion.build_info(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "results": results,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    print(json.dumps(doc["machine"]))
    print(markdown(results, threads_all))


if __name__ == "__main__":
    main()
