"""Issue 21: the bias job's accumulators per chunk, against the count passes they need.

``clarion analyze`` (bias only) runs, per facet and per chunk, one ``clarion.bias.Accumulator``
update (the bias metrics: facet, group variable, label, predicted label) and one
``clarion.bias.PerformanceAccumulator`` update (the group statistics of ``analysis.json``). This
times both on the chunks as the job's reader gives them (``clarion.read_dataset`` of a Parquet
file with the bias columns as codes: ``sex`` and ``region`` categoricals whose dtype is replaced
when a value is new, ``age``, ``y`` and ``pred`` int64), two facets (``sex`` value ``"F"``,
``age`` threshold 60), ``label_values=[1]``, ``predicted_label="pred"``, against the floor: the
two ``grouped_counts`` passes on ready int32 codes (facet side x 8 regions, label, prediction)
over all the rows, timed in the same rounds (interleaved; best of ``--repeat``).

Also shown: the first update of each accumulator (the one-pass path, building the compiled
stream) and the median of the others (the steady state), per facet.

Usage::

    python benchmarks/bench_job_accumulators.py                   # 1e6 rows, 50,000-row chunks
    python benchmarks/bench_job_accumulators.py --rows 1e6 --chunk-rows 100000 --repeat 21
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import clarion
import clarion.bias as cb
from clarion.dataset import read_dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_linerate import BIAS_COLUMNS, analyze_frame

FACETS = (dict(facet="sex", facet_values=["F"]), dict(facet="age", facet_threshold=60))
COMMON = dict(label="y", label_values=[1], predicted_label="pred")


def chunks_of(n: int, chunk_rows: int, tmp: str) -> list:
    path = os.path.join(tmp, "data.parquet")
    analyze_frame(n).to_parquet(path)
    return [c.frame for c in read_dataset(path, "application/x-parquet", chunk_rows=chunk_rows, codes=BIAS_COLUMNS)]


def floor_codes(chunks: list) -> list:
    """The count passes' inputs: int32 group codes (facet side * 8 + region) per facet, int8
    label and prediction."""
    sex = np.concatenate([np.asarray(c["sex"].astype(str)) for c in chunks])
    region = pd.factorize(np.concatenate([np.asarray(c["region"].astype(str)) for c in chunks]))[0]
    age = np.concatenate([c["age"].to_numpy() for c in chunks])
    y = np.concatenate([c["y"].to_numpy() for c in chunks]).astype(np.int8)
    p = np.concatenate([c["pred"].to_numpy() for c in chunks]).astype(np.int8)
    g_sex = ((sex == "F").astype(np.int32) * 8 + region).astype(np.int32)
    g_age = ((age > 60).astype(np.int32) * 8 + region).astype(np.int32)
    return [g_sex, g_age, y, p]


def run(chunks: list, repeat: int) -> dict:
    g_sex, g_age, y, p = floor_codes(chunks)

    def floor():
        for g in (g_sex, g_age):
            clarion.grouped_counts(g, y, p, n_groups=16, n_labels=2, n_preds=2)

    per_update: dict = {}

    def accumulate(cls, extra):
        def go():
            accs = [cls(**COMMON, **f, **extra) for f in FACETS]
            ts = [[] for _ in accs]
            t = 0.0
            for c in chunks:
                for i, a in enumerate(accs):
                    t0 = time.perf_counter()
                    a.update(c)
                    dt = time.perf_counter() - t0
                    ts[i].append(dt)
                    t += dt
            best = per_update.get(cls.__name__)
            if best is None or t < best[0]:
                per_update[cls.__name__] = (t, ts)
            return t

        return go

    bias_go = accumulate(cb.Accumulator, dict(group_variable="region"))
    perf_go = accumulate(cb.PerformanceAccumulator, {})
    times: dict = {"floor": [], "bias": [], "performance": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        floor()
        times["floor"].append(time.perf_counter() - t0)
        times["bias"].append(bias_go())
        times["performance"].append(perf_go())
    out = {k: min(v) for k, v in times.items()}
    for name, key in (("Accumulator", "bias"), ("PerformanceAccumulator", "performance")):
        _, ts = per_update[name]
        for f, t in zip(FACETS, ts):
            out[f"{key}_{f['facet']}_first_s"] = t[0]
            out[f"{key}_{f['facet']}_median_s"] = float(np.median(t[1:])) if len(t) > 1 else float("nan")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=float, default=1e6)
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args(argv)
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, clarion {clarion.__version__}",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory() as tmp:
        chunks = chunks_of(int(args.rows), args.chunk_rows, tmp)
    r = run(chunks, args.repeat)
    r.update(rows=int(args.rows), chunk_rows=args.chunk_rows, chunks=len(chunks))
    print(json.dumps(r), flush=True)
    fl = r["floor"]
    print(f"\n{r['rows']:,} rows in {r['chunks']} chunks of {r['chunk_rows']:,}, two facets (sex = F, age > 60)\n")
    print("| accumulators (both facets, every chunk) | time | floor: 2 count passes | ratio |")
    print("|---|---:|---:|---:|")
    for key, label in (("bias", "`Accumulator` (+ group variable)"), ("performance", "`PerformanceAccumulator`")):
        print(f"| {label} | {r[key] * 1e3:.2f} ms | {fl * 1e3:.2f} ms | {r[key] / fl:.2f}× |")
    print("\n| accumulator | facet | first update | other updates (median) |")
    print("|---|---|---:|---:|")
    for key, label in (("bias", "`Accumulator`"), ("performance", "`PerformanceAccumulator`")):
        for f in FACETS:
            name = f["facet"]
            print(
                f"| {label} | {name} | {r[f'{key}_{name}_first_s'] * 1e3:.3f} ms | "
                f"{r[f'{key}_{name}_median_s'] * 1e3:.3f} ms |"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(r, fh, indent=1)


if __name__ == "__main__":
    main()
