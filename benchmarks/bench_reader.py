"""Time and peak memory of clarion's chunked CSV reader (``clarion.dataset``) beside
``pandas.read_csv``, in the same run.

Cases, each in a fresh subprocess (peak RSS is its own; imports are outside the timings), on the
synthetic CSV of ``bench_analysis.py`` (6 columns: 2 text, 4 numeric), chunks of 50,000 rows,
``required=("y",)``:

* ``pandas_read_csv``: the floor (whole file, no error location);
* ``pyarrow_read_csv``: ``pyarrow.csv.read_csv`` of the whole file (multi-threaded, typed; no
  error location, no chunks): the floor of issue 21;
* ``reader_before``: the reader before the fast path (``--before FILE``: a copy of the old
  ``dataset.py``, e.g. ``git show <rev>:python/clarion/dataset.py > old.py``); skipped without it;
* ``reader_line_by_line``: today's reader with the fast path switched off (the fallback alone);
* ``reader_fast``: today's reader;
* ``reader_fast_codes``: today's reader with the two text columns as dictionary codes
  (``codes=("sex", "region")``, what ``clarion analyze`` asks for its bias columns);
* ``reader_fast_one_bad_row``: today's reader, ``skip_bad_rows=True``, on the same file with one
  malformed row in the middle (its chunk goes through the fallback).

Run: python benchmarks/bench_reader.py [--rows 100000 1000000] [--before old_dataset.py] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CHILD = r"""
import importlib.util, json, resource, sys, time
kind, path, before = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy, pandas, pyarrow.csv, pyarrow.compute, jmespath  # noqa: E401,F401 - imports are not timed
import clarion.dataset as ds
if kind == "reader_before":
    spec = importlib.util.spec_from_file_location("old_dataset", before)
    ds = sys.modules["old_dataset"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ds)
if kind == "reader_line_by_line":
    ds.Reader._csv_fast = lambda self, src, names, need: None
t = time.perf_counter()
if kind == "pandas_read_csv":
    pandas.read_csv(path)
    rows, skipped = None, None
elif kind == "pyarrow_read_csv":
    pyarrow.csv.read_csv(path)
    rows, skipped = None, None
else:
    kw = {"codes": ("sex", "region")} if kind == "reader_fast_codes" else {}
    kw["skip_bad_rows"] = kind.endswith("bad_row")
    r = ds.read_dataset(path, "text/csv", chunk_rows=50_000, required=("y",), **kw)
    rows = sum(len(c.frame) for c in r)
    skipped = r.skipped
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows_read": rows, "skipped": skipped}))
"""


def child(kind: str, path: str, before: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(HERE, "..", "python"), env.get("PYTHONPATH", "")])
    r = subprocess.run(
        [sys.executable, "-c", CHILD, kind, path, before], capture_output=True, text=True, env=env, check=False
    )
    if r.returncode:
        raise SystemExit(f"{kind} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench_analysis import make_csv

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--before", default="", help="the old dataset.py to time as reader_before")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (each case's best is kept)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = os.path.join(tmp, f"data_{n}.csv")
            make_csv(path, n)
            bad = os.path.join(tmp, f"bad_{n}.csv")
            with open(path) as src, open(bad, "w") as dst:
                dst.writelines("60,oops,F,A,1,1\n" if i == n // 2 else line for i, line in enumerate(src))
            kinds = (
                ["pandas_read_csv", "pyarrow_read_csv"]
                + (["reader_before"] if args.before else [])
                + ["reader_line_by_line", "reader_fast", "reader_fast_codes", "reader_fast_one_bad_row"]
            )
            best: dict[str, dict] = {}
            for _ in range(args.repeat):  # the cases interleaved round by round; best of the rounds
                for kind in kinds:
                    r = child(kind, bad if kind.endswith("bad_row") else path, args.before)
                    if kind not in best or r["seconds"] < best[kind]["seconds"]:
                        best[kind] = r
            for kind in kinds:
                results.append({"case": kind, "rows": n, **best[kind]})
                print(json.dumps(results[-1]), flush=True)
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("command: python benchmarks/bench_reader.py " + " ".join(sys.argv[1:]))
    print()
    floor = {r["rows"]: r["seconds"] for r in results if r["case"] == "pandas_read_csv"}
    pa_floor = {r["rows"]: r["seconds"] for r in results if r["case"] == "pyarrow_read_csv"}
    print("| case | rows | seconds | × pandas.read_csv | × pyarrow.csv.read_csv | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['case']} | {r['rows']:,} | {r['seconds']:.2f} | {r['seconds'] / floor[r['rows']]:.1f} | "
            f"{r['seconds'] / pa_floor[r['rows']]:.1f} | {r['peak_rss_mib']:.0f} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
