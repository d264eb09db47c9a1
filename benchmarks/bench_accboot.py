"""Peak memory of ``clarion.analyze`` with bootstrap intervals: the accumulators' replicate tables
(this branch) against collecting every chunk's bias columns and one ``bias.report`` at the end
(the previous path, run from a given git revision), in the same run, each in a fresh subprocess.

Run: python benchmarks/bench_accboot.py [--rows 500000 2000000] [--old-rev 119ed0e] [--n-bootstrap 200]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import json, resource, sys, time
path, out, nb = sys.argv[1], sys.argv[2], int(sys.argv[3])
conf = {"confidence": 0.95, "n_bootstrap": nb}
cfg = {"dataset_type": "text/csv", "label": "y", "label_values_or_threshold": [1], "predicted_label": "pred",
       "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]},
                 {"name_or_index": "age", "value_or_threshold": [60]}],
       "group_variable": "region",
       "methods": {"pre_training_bias": {"methods": "all", **conf},
                   "post_training_bias": {"methods": ["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR",
                                                      "AD", "CDDPL", "TE", "GE"], **conf}}}
import clarion, clarion.analysis, clarion.bias, pandas  # noqa: E401
t = time.perf_counter()
clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True, chunk_rows=50_000)
dt = time.perf_counter() - t
doc = json.load(open(out + "/analysis.json"))
print(json.dumps({"seconds": dt, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "doc": [doc["pre_training_bias_metrics"], doc["post_training_bias_metrics"]]}))
"""


def make_csv(path: str, n: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], n)
    y = (rng.random(n) < np.where(sex == "F", 0.35, 0.45)).astype(int)
    pd.DataFrame(
        {
            "sex": sex,
            "age": rng.integers(18, 90, n),
            "region": rng.choice(["north", "south", "east"], n),
            "x1": rng.random(n),
            "x2": rng.random(n),
            "y": y,
            "pred": np.where(rng.random(n) < 0.2, 1 - y, y),
        }
    ).to_csv(path, index=False)


def run(pythonpath: str, path: str, out: str, nb: int) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    res = subprocess.run(
        [sys.executable, "-c", CHILD, path, out, str(nb)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[500_000, 2_000_000])
    ap.add_argument("--old-rev", default="119ed0e")
    ap.add_argument("--n-bootstrap", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = os.path.join(tmp, "old")
        os.makedirs(old)
        arch = subprocess.run(
            ["git", "-C", ROOT, "archive", args.old_rev, "python/clarion"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", old], input=arch, check=True)
        for so in glob.glob(os.path.join(ROOT, "python", "clarion", "_core*.so")):
            shutil.copy(so, os.path.join(old, "python", "clarion"))
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"n_bootstrap={args.n_bootstrap}, chunks of 50,000 rows; old = {args.old_rev}"
        )
        print("| rows | path | seconds | peak RSS (MiB) |\n|---:|---|---:|---:|")
        for n in args.rows:
            path = os.path.join(tmp, f"d{n}.csv")
            # in a subprocess: a child's peak RSS would include this process's memory at fork time
            code = f"import sys; sys.path.insert(0, {HERE!r}); import bench_accboot as b; b.make_csv({path!r}, {n})"
            subprocess.run([sys.executable, "-c", code], check=True)
            a = run(os.path.join(old, "python"), path, os.path.join(tmp, "o1"), args.n_bootstrap)
            b = run(os.path.join(ROOT, "python"), path, os.path.join(tmp, "o2"), args.n_bootstrap)
            same = a["doc"] == b["doc"]
            print(
                f"| {n:,} | collect bias columns + one `bias.report` ({args.old_rev}) | {a['seconds']:.2f} | "
                f"{a['peak_rss_mib']:.0f} |"
            )
            print(
                f"| {n:,} | `Accumulator(n_bootstrap=...)` replicates (this branch) | {b['seconds']:.2f} | "
                f"{b['peak_rss_mib']:.0f} |"
            )
            print(f"identical analysis.json bias sections (values and intervals): {same}")
            os.unlink(path)


if __name__ == "__main__":
    main()
