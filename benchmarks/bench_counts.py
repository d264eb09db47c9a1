"""Benchmark clarion.grouped_counts beside the floors measured in the same run.

Floors: numpy ``bincount`` on a combined key ``(g * L + l) * P + p`` (the fastest plain-numpy
way to get the same table, key arithmetic included) and pandas ``groupby(...).size()``.
Every configuration is timed as the best of ``--repeat`` runs; ratios are within one run.

    python benchmarks/bench_counts.py                 # rows 1e5..1e7
    python benchmarks/bench_counts.py --rows 1e5 1e6 1e7 1e8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import clarion


def best_of(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def numpy_floor(g, lab, p, G, L, P):
    out = []
    for b in range(p.shape[1]):
        key = (g.astype(np.int64) * L + lab) * P + p[:, b]
        out.append(np.bincount(key, minlength=G * L * P))
    return np.stack(out).reshape(p.shape[1], G, L, P)


def pandas_floor(g, lab, p):
    import pandas as pd

    out = []
    for b in range(p.shape[1]):
        df = pd.DataFrame({"g": g, "l": lab, "p": p[:, b]})
        out.append(df.groupby(["g", "l", "p"]).size())
    return out


def run(rows_list, groups_list, batch_list, repeat, threads_all, dtype):
    rng = np.random.default_rng(0)
    results = []
    for n in rows_list:
        for G in groups_list:
            for B in batch_list:
                if n * (B + 2) * np.dtype(dtype).itemsize > 8 << 30:
                    continue
                g = rng.integers(0, G, n, dtype=dtype)
                lab = rng.integers(0, 2, n, dtype=dtype)
                p = np.ascontiguousarray(rng.integers(0, 2, (n, B), dtype=dtype))
                want = numpy_floor(g, lab, p, G, 2, 2)
                got = clarion.grouped_counts(g, lab, p, n_groups=G, n_labels=2, n_preds=2, n_threads=1)
                assert np.array_equal(got, want), "clarion disagrees with the numpy floor"
                r = {"rows": n, "groups": G, "batch": B, "dtype": np.dtype(dtype).name}
                r["clarion_1thread_s"] = best_of(
                    lambda: clarion.grouped_counts(g, lab, p, n_groups=G, n_labels=2, n_preds=2, n_threads=1), repeat
                )
                r["clarion_all_threads_s"] = best_of(
                    lambda: clarion.grouped_counts(g, lab, p, n_groups=G, n_labels=2, n_preds=2, n_threads=threads_all),
                    repeat,
                )
                r["numpy_bincount_s"] = best_of(lambda: numpy_floor(g, lab, p, G, 2, 2), repeat)
                r["pandas_groupby_s"] = best_of(lambda: pandas_floor(g, lab, p), 1) if n <= 10**7 else None
                r["speedup_vs_bincount_1thread"] = r["numpy_bincount_s"] / r["clarion_1thread_s"]
                r["thread_scaling"] = r["clarion_1thread_s"] / r["clarion_all_threads_s"]
                results.append(r)
                print(json.dumps(r), file=sys.stderr)
    return results


def markdown(results, threads_all):
    lines = [
        f"| rows | G | B | clarion 1 thread | clarion {threads_all} threads | numpy bincount | pandas groupby |"
        " speedup vs bincount (1 thread) | thread scaling |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        pd_s = "—" if r["pandas_groupby_s"] is None else f"{r['pandas_groupby_s'] * 1e3:.1f} ms"
        lines.append(
            f"| {r['rows']:.0e} | {r['groups']} | {r['batch']} | {r['clarion_1thread_s'] * 1e3:.1f} ms | "
            f"{r['clarion_all_threads_s'] * 1e3:.1f} ms | {r['numpy_bincount_s'] * 1e3:.1f} ms | {pd_s} | "
            f"{r['speedup_vs_bincount_1thread']:.1f}× | {r['thread_scaling']:.2f}× |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    ap.add_argument("--groups", nargs="+", type=int, default=[2, 50, 10_000])
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dtype", default="int32", choices=["int8", "int16", "int32", "int64"])
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    threads_all = os.cpu_count() or 1
    results = run([int(r) for r in args.rows], args.groups, args.batch, args.repeat, threads_all, args.dtype)
    doc = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": threads_all,
            "python": platform.python_version(),
            "numpy": np.__version__,
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
