"""Time and peak memory of ``clarion analyze`` beside its floors, in the same run.

Two measurements:

1. ``clarion demo`` end to end (train + full analysis on the Toronto arrests data; target: under a
   minute on a loaded 2-core machine).
2. A bias-only analysis (pre- and post-training, every metric but FlipTest, two facets, predicted
   labels in the file) of a synthetic CSV with N rows, read in chunks, beside:

   * ``pandas.read_csv`` of the same file (the floor for "read the data once");
   * clarion's chunked reader alone (``clarion.dataset``: located errors, typed columns);
   * ``clarion.bias.report`` on the DataFrame already in memory;
   * the same analysis with the whole file as one chunk (memory not bounded).

Every measurement runs in a fresh subprocess so its peak RSS is its own.

Run: python benchmarks/bench_analysis.py [--rows 100000 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, resource, sys, time
kind, path, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = {"dataset_type": "text/csv", "label": "y", "label_values_or_threshold": [1], "predicted_label": "pred",
       "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]},
                 {"name_or_index": "age", "value_or_threshold": [60]}],
       "group_variable": "region",
       "methods": {"pre_training_bias": {"methods": "all"},
                   "post_training_bias": {"methods": ["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR",
                                                      "AD", "CDDPL", "TE", "GE"]}}}
import pandas  # noqa: F401 - imports are not part of any timing
import clarion, clarion.dataset  # noqa: E401
if kind.startswith(("bias", "analyze")):
    import clarion.analysis, clarion.bias  # noqa: E401
t = time.perf_counter()
if kind == "pandas_read_csv":
    import pandas as pd
    pd.read_csv(path)
elif kind == "clarion_reader":
    from clarion.dataset import read_dataset
    for _ in read_dataset(path, "text/csv", chunk_rows=50_000, required=("y",)):
        pass
elif kind == "bias_report_in_memory":
    import pandas as pd
    from clarion import bias
    df = pd.read_csv(path)
    t = time.perf_counter()
    methods = ["CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL"] + cfg["methods"]["post_training_bias"]["methods"]
    for facet, kw in (("sex", {"facet_values": ["F"]}), ("age", {"facet_threshold": 60})):
        bias.report(df, label="y", facet=facet, label_values=[1], predicted_label="pred",
                    group_variable="region", methods=methods, **kw)
elif kind in ("analyze_chunked", "analyze_whole"):
    import clarion
    clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True,
                    chunk_rows=50_000 if kind == "analyze_chunked" else n + 1)
else:
    raise SystemExit(f"unknown kind {kind}")
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_csv(path: str, n: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], n)
    age = rng.integers(18, 90, n)
    y = (rng.random(n) < np.where(sex == "F", 0.35, 0.45)).astype(int)
    pred = np.where(rng.random(n) < 0.8, y, 1 - y)
    pd.DataFrame(
        {
            "age": age,
            "income": rng.normal(50, 10, n).round(3),
            "sex": sex,
            "region": rng.choice(list("ABCDEFGH"), n),
            "y": y,
            "pred": pred,
        }
    ).to_csv(path, index=False)


def child(kind: str, path: str, out: str, n: int) -> dict:
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "..", "python"), env.get("PYTHONPATH", "")])
    r = subprocess.run(
        [sys.executable, "-c", CHILD, kind, path, out, str(n)], capture_output=True, text=True, env=env, check=False
    )
    if r.returncode:
        raise SystemExit(f"{kind} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--no-demo", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_demo:
            env = dict(os.environ)
            here = os.path.dirname(os.path.abspath(__file__))
            env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "..", "python"), env.get("PYTHONPATH", "")])
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "clarion", "demo", "--output", os.path.join(tmp, "demo"), "--quiet"],
                check=True,
                env=env,
                capture_output=True,
            )
            results.append(
                {
                    "case": "clarion demo (train + full analysis, 5,226 rows)",
                    "rows": 5226,
                    "seconds": time.perf_counter() - t,
                    "peak_rss_mib": None,
                }
            )
        for n in args.rows:
            path = os.path.join(tmp, f"data_{n}.csv")
            make_csv(path, n)
            for kind in (
                "pandas_read_csv",
                "clarion_reader",
                "bias_report_in_memory",
                "analyze_chunked",
                "analyze_whole",
            ):
                r = child(kind, path, os.path.join(tmp, f"out_{kind}_{n}"), n)
                results.append({"case": kind, "rows": n, **r})
                print(json.dumps(results[-1]), flush=True)
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("command: python benchmarks/bench_analysis.py " + " ".join(sys.argv[1:]))
    print()
    print("| case | rows | seconds | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for r in results:
        rss = "" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:.0f}"
        print(f"| {r['case']} | {r['rows']:,} | {r['seconds']:.2f} | {rss} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
