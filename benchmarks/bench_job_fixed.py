"""Issue 21 part 3: where the fixed cost of a bias-only ``clarion analyze`` goes.

The job of ``bench_linerate.py --parts analyze`` (two facets, a group variable, predicted labels
in the file) on a 1,000-row CSV and Parquet file, the report files left out (``write_report``
replaced by a no-op), written into the same output folder again and again (``overwrite``: the
output folder's swap with the previous run's files). Each step of the job is timed by a wrapper
around its function; the table gives each step's best time over ``--repeat`` runs, and the whole
job's best and median. Steps overlap (a step holds the ones it calls: ``_bias_sections`` holds the
``Accumulator.report`` calls, which hold ``compute``), so the rows do not add up to the total.

It also times ``pyarrow`` reading the same file once and the count passes, the floor of
``bench_linerate.py`` at that size: the fixed cost is what stays of the job when the rows go to
zero.

With ``--report-files`` the report files are written too, and timed apart (as
``bench_linerate.py`` does); the table then also gives the whole job with them (``with report
files``): where the files' ``fsync``s run on threads until the output folder's swap (session 18),
part of what the report files cost moves into the job's own time, so compare that total.

With ``--rows 1e6`` (``--chunk-rows``, 100,000 by default) the file has that many rows: the job's
per-chunk costs (the compiled stream's updates, the hand-off of the reader's chunks) count too; the
table then also gives the reader alone (``read_dataset`` with the bias columns coded, as
``bench_linerate.py``'s floor) and the job above it (session 18).

With ``--base COMMIT`` the same measure runs in two worker processes, this tree and the base
commit's ``python/`` (``git archive``, this tree's compiled core copied beside it), alternating
for ``--rounds`` rounds; each step's best over the rounds is kept, and the table pairs them.

Usage::

    python benchmarks/bench_job_fixed.py                   # CSV and Parquet, 40 runs each
    python benchmarks/bench_job_fixed.py --formats parquet --repeat 100
    python benchmarks/bench_job_fixed.py --report-files    # report files written (timed apart)
    python benchmarks/bench_job_fixed.py --base 3c5d94e --rounds 5 --repeat 20
    python benchmarks/bench_job_fixed.py --rows 1e6 --base f75ad18 --rounds 4 --repeat 6  # per-chunk costs too
"""

from __future__ import annotations

import argparse
import functools
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (module or class, function name, row label): what the step is (resolved once clarion is imported)
STEPS_BY_NAME = [
    ("clarion.config", "read_config", "read the config"),
    ("clarion.job.source._Source", "columns", "type sample (first 1,000 rows read and typed)"),
    ("clarion.job.run._Job", "_decide", "decisions on the first rows + accumulators built"),
    ("clarion.job.run._Job", "_process", "chunks counted (first updates included)"),
    ("clarion.bias.accumulator.Accumulator", "update", "  Accumulator.update"),
    ("clarion.bias.performance.PerformanceAccumulator", "__init__", "  PerformanceAccumulator built"),
    ("clarion.bias.performance.PerformanceAccumulator", "update", "  PerformanceAccumulator.update"),
    ("clarion.dataset.Reader", "_global_codes", "  chunk coded into the vocabularies"),
    ("clarion.dataset._PendingFrame", "build", "  chunk frame built"),
    ("clarion.job.run._Job", "_bias_sections", "bias sections (reports + group statistics)"),
    ("clarion.bias.accumulator.Accumulator", "report", "  Accumulator.report"),
    ("clarion.bias._engine", "compute", "    metric formulas (compute)"),
    ("clarion.bias._engine", "interval_string", "    threshold facet's interval text"),
    ("clarion.bias.performance.PerformanceAccumulator", "result", "  PerformanceAccumulator.result"),
    ("clarion.report", "write_analysis_json", "analysis.json written"),
    ("clarion.config.AnalysisConfig", "write", "analysis_config.json written"),
    ("os", "fsync", "  fsync (every file; on threads since session 18)"),
    ("clarion._io._Syncs", "wait", "  fsyncs waited for before the swap (session 18)"),
    ("clarion.job.outputs", "_previous_outputs", "previous run's files listed"),
    ("clarion._io", "_swap_in", "output folder swapped in"),
    ("shutil", "rmtree", "  folders removed (rmtree; on a thread since session 18)"),
    ("clarion.dataset.Reader", "_csv_fast", "CSV blocks found and parsed (reader's thread)"),
    ("clarion.dataset", "_coded_frame", "Parquet batches made frames"),
    ("clarion.dataset.Reader", "_typed", "chunks typed"),
]
#: the steps that do not hold one another (what stays of the total is shown as "the rest")
TOP = {
    "read the config",
    "type sample (first 1,000 rows read and typed)",
    "decisions on the first rows + accumulators built",
    "chunks counted (first updates included)",
    "bias sections (reports + group statistics)",
    "analysis.json written",
    "analysis_config.json written",
    "previous run's files listed",
    "output folder swapped in",
    "CSV blocks found and parsed (reader's thread)",
    "Parquet batches made frames",
    "chunks typed",
}


def _resolve(dotted: str):
    """The module or class named ``dotted`` (None when this tree has no such name)."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def _timed(owner, name, label, times):
    real = getattr(owner, name)

    @functools.wraps(real)
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            times[label] = times.get(label, 0.0) + time.perf_counter() - t0

    setattr(owner, name, wrapper)
    return real


def measure(fmt, repeat, tmp, report_files=False, rows=1000, chunk_rows=100_000):
    """(best job, median job, best pyarrow read, best per step, best job with the report files,
    best reader alone: ``clarion.dataset.read_dataset`` with the bias columns coded, as
    ``bench_linerate.py``'s floor row)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    sys.path.insert(0, HERE)
    from bench_linerate import ANALYZE_CFG, BIAS_COLUMNS, analyze_frame

    import clarion
    import clarion.report as report
    from clarion.dataset import read_dataset

    df = analyze_frame(rows)
    if fmt == "csv":
        path, dtype, read = os.path.join(tmp, "s.csv"), "text/csv", pacsv.read_csv
        df.to_csv(path, index=False)
    else:
        path, dtype, read = os.path.join(tmp, "s.parquet"), "application/x-parquet", pq.read_table
        df.to_parquet(path, index=False, row_group_size=chunk_rows)
    cfg = {**ANALYZE_CFG, "dataset_type": dtype}
    out = os.path.join(tmp, f"out_{fmt}")
    times: dict[str, float] = {}
    steps = [(_resolve(o), n, label) for o, n, label in STEPS_BY_NAME]
    saved = [(o, n, _timed(o, n, label, times)) for o, n, label in steps if o is not None and hasattr(o, n)]
    real_write, written = report.write_report, []

    def timed_write(*a, **kw):  # the report files written and timed apart (as bench_linerate does)
        t0 = time.perf_counter()
        try:
            return real_write(*a, **kw)
        finally:
            written.append(time.perf_counter() - t0)

    report.write_report = timed_write if report_files else (lambda *a, **kw: {})
    try:
        clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True, chunk_rows=chunk_rows)
        best: dict[str, float] = {}
        totals, whole, reads, readers = [], [], [], []
        for _ in range(repeat):
            times.clear()
            written.clear()
            t0 = time.perf_counter()
            clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True, chunk_rows=chunk_rows)
            t = time.perf_counter() - t0
            totals.append(t - sum(written))
            whole.append(t)
            for k, v in times.items():
                best[k] = min(best.get(k, v), v)
            t0 = time.perf_counter()
            read(path)
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in read_dataset(path, dtype, chunk_rows=chunk_rows, codes=BIAS_COLUMNS):
                pass
            readers.append(time.perf_counter() - t0)
    finally:
        report.write_report = real_write
        for o, n, real in saved:
            setattr(o, n, real)
    return min(totals), statistics.median(totals), min(reads), best, min(whole), min(readers)


def _run_worker(pythonpath, formats, repeat, report_files, rows=1000, chunk_rows=100_000):
    env = {**os.environ, "PYTHONPATH": pythonpath}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--repeat", str(repeat), "--formats", *formats]
    cmd += ["--rows", str(rows), "--chunk-rows", str(chunk_rows)]
    if report_files:
        cmd.append("--report-files")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _base_tree(commit, tmp):
    """The base commit's ``python/`` (with this tree's compiled core beside it)."""
    dest = os.path.join(tmp, "base")
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "python"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    for so in glob.glob(os.path.join(ROOT, "python", "clarion", "_core*")):
        shutil.copy(so, os.path.join(dest, "python", "clarion"))
    return os.path.join(dest, "python")


def _merge(a, b):
    """The best of two workers' results of one format (medians: the lower)."""
    if a is None:
        return b
    steps = {k: min(v, a[3].get(k, v)) for k, v in b[3].items()}
    steps.update({k: v for k, v in a[3].items() if k not in steps})
    return [min(a[0], b[0]), min(a[1], b[1]), min(a[2], b[2]), steps, min(a[4], b[4]), min(a[5], b[5])]


def _table(columns, report_files, rows=1000):
    """Print the steps table: ``columns`` is a list of (heading, result of one format)."""
    print("| step | " + " | ".join(h for h, _ in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    print(
        f"| **the job on {rows:,} rows, best (median)** | "
        + " | ".join(f"**{r[0] * 1e3:.2f} ms** ({r[1] * 1e3:.2f})" for _, r in columns)
        + " |"
    )
    if report_files:
        cells = " | ".join(f"{r[4] * 1e3:.2f} ms" for _, r in columns)
        print(f"| the job with its report files, best | {cells} |")
    print("| pyarrow reading the file once | " + " | ".join(f"{r[2] * 1e3:.2f} ms" for _, r in columns) + " |")
    print(
        "| the reader alone (read_dataset, bias columns coded) | "
        + " | ".join(f"{r[5] * 1e3:.2f} ms" for _, r in columns)
        + " |"
    )
    cells = " | ".join(f"{(r[0] - r[5]) * 1e3:.2f} ms" for _, r in columns)
    print(f"| the job above the reader alone (its counts included) | {cells} |")
    for _o, _n, label in STEPS_BY_NAME:
        cells = []
        for _, r in columns:
            v = r[3].get(label)
            cells.append("–" if v is None else f"{v * 1e3:.2f} ms")
        print(f"| {label.replace('  ', '&nbsp;&nbsp;')} | " + " | ".join(cells) + " |")
    rest = [r[0] - sum(v for k, v in r[3].items() if k in TOP) for _, r in columns]
    print(
        "| the rest, by difference (reader thread start and hand-off, file opens, staging, Python around) | "
        + " | ".join(f"{v * 1e3:.2f} ms" for v in rest)
        + " |"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formats", nargs="+", default=["csv", "parquet"], choices=["csv", "parquet"])
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument(
        "--report-files",
        action="store_true",
        help="write the report files too (timed apart, as bench_linerate's column; the folder swap then moves them)",
    )
    ap.add_argument("--base", help="a commit whose job is timed beside this tree's, in alternating worker processes")
    ap.add_argument("--rounds", type=int, default=5, help="with --base: rounds of the two workers")
    ap.add_argument("--rows", type=float, default=1000, help="rows of the file (1e6: the per-chunk costs too)")
    ap.add_argument("--chunk-rows", type=int, default=100_000, help="the job's and the reader's chunk rows")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker or not args.base:
        with tempfile.TemporaryDirectory() as tmp:
            results = {
                fmt: measure(fmt, args.repeat, tmp, args.report_files, int(args.rows), args.chunk_rows)
                for fmt in args.formats
            }
        if args.worker:
            print(json.dumps(results))
            return
        _table(list(results.items()), args.report_files, int(args.rows))
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = [(f"base {args.base}", _base_tree(args.base, tmp)), ("this tree", os.path.join(ROOT, "python"))]
        best: dict[str, dict] = {name: {} for name, _ in trees}
        for _ in range(args.rounds):
            for name, path in trees:  # alternating
                r = _run_worker(path, args.formats, args.repeat, args.report_files, int(args.rows), args.chunk_rows)
                for fmt, res in r.items():
                    best[name][fmt] = _merge(best[name].get(fmt), res)
    columns = [(f"{fmt}, {name}", best[name][fmt]) for fmt in args.formats for name, _ in trees]
    _table(columns, args.report_files, int(args.rows))
    print()
    for fmt in args.formats:
        b, n = best[trees[0][0]][fmt], best["this tree"][fmt]
        line = f"{fmt}: the job {b[0] * 1e3:.2f} -> {n[0] * 1e3:.2f} ms ({n[0] / b[0]:.2f}x)"
        line += f"; above the reader alone {(b[0] - b[5]) * 1e3:.2f} -> {(n[0] - n[5]) * 1e3:.2f} ms"
        if args.report_files:
            line += f"; with its report files {b[4] * 1e3:.2f} -> {n[4] * 1e3:.2f} ms ({n[4] / b[4]:.2f}x)"
        print(line)


if __name__ == "__main__":
    main()
