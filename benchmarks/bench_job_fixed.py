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

Usage::

    python benchmarks/bench_job_fixed.py                   # CSV and Parquet, 40 runs each
    python benchmarks/bench_job_fixed.py --formats parquet --repeat 100
    python benchmarks/bench_job_fixed.py --report-files    # report files written (timed apart)
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import tempfile
import time

from bench_linerate import ANALYZE_CFG, analyze_frame

import clarion
import clarion._io as cio
import clarion.bias._engine as engine
import clarion.bias.accumulator as acc
import clarion.bias.performance as perf
import clarion.config as config
import clarion.dataset as ds
import clarion.job.outputs as outputs
import clarion.job.run as run
import clarion.job.source as source
import clarion.report as report

# (module or class, function name, row label, owner: what the step is)
STEPS = [
    (config, "read_config", "read the config"),
    (source._Source, "columns", "type sample (first 1,000 rows read and typed)"),
    (run._Job, "_decide", "decisions on the first rows + accumulators built"),
    (run._Job, "_process", "chunks counted (first updates included)"),
    (acc.Accumulator, "update", "  Accumulator.update"),
    (perf.PerformanceAccumulator, "__init__", "  PerformanceAccumulator built"),
    (perf.PerformanceAccumulator, "update", "  PerformanceAccumulator.update"),
    (ds.Reader, "_global_codes", "  chunk coded into the vocabularies"),
    (ds._PendingFrame, "build", "  chunk frame built"),
    (run._Job, "_bias_sections", "bias sections (reports + group statistics)"),
    (acc.Accumulator, "report", "  Accumulator.report"),
    (engine, "compute", "    metric formulas (compute)"),
    (engine, "interval_string", "    threshold facet's interval text"),
    (perf.PerformanceAccumulator, "result", "  PerformanceAccumulator.result"),
    (report, "write_analysis_json", "analysis.json written"),
    (config.AnalysisConfig, "write", "analysis_config.json written"),
    (cio.os, "fsync", "  fsync (both files)"),
    (outputs, "_previous_outputs", "previous run's files listed"),
    (cio, "_swap_in", "output folder swapped in"),
    (shutil, "rmtree", "  folders removed (rmtree)"),
    (ds.Reader, "_csv_fast", "CSV blocks found and parsed (reader's thread)"),
    (ds, "_coded_frame", "Parquet batches made frames"),
    (ds.Reader, "_typed", "chunks typed"),
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


def measure(fmt, repeat, tmp, report_files=False):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    df = analyze_frame(1000)
    if fmt == "csv":
        path, dtype, read = os.path.join(tmp, "s.csv"), "text/csv", pacsv.read_csv
        df.to_csv(path, index=False)
    else:
        path, dtype, read = os.path.join(tmp, "s.parquet"), "application/x-parquet", pq.read_table
        df.to_parquet(path, index=False)
    cfg = {**ANALYZE_CFG, "dataset_type": dtype}
    out = os.path.join(tmp, f"out_{fmt}")
    times: dict[str, float] = {}
    saved = [(o, n, _timed(o, n, label, times)) for o, n, label in STEPS]
    real_write, written = report.write_report, []

    def timed_write(*a, **kw):  # the report files written and timed apart (as bench_linerate does)
        t0 = time.perf_counter()
        try:
            return real_write(*a, **kw)
        finally:
            written.append(time.perf_counter() - t0)

    report.write_report = timed_write if report_files else (lambda *a, **kw: {})
    try:
        clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True)
        best: dict[str, float] = {}
        totals, reads = [], []
        for _ in range(repeat):
            times.clear()
            written.clear()
            t0 = time.perf_counter()
            clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True)
            totals.append(time.perf_counter() - t0 - sum(written))
            for k, v in times.items():
                best[k] = min(best.get(k, v), v)
            t0 = time.perf_counter()
            read(path)
            reads.append(time.perf_counter() - t0)
    finally:
        report.write_report = real_write
        for o, n, real in saved:
            setattr(o, n, real)
    return min(totals), statistics.median(totals), min(reads), best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formats", nargs="+", default=["csv", "parquet"], choices=["csv", "parquet"])
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument(
        "--report-files",
        action="store_true",
        help="write the report files too (timed apart, as bench_linerate's column; the folder swap then moves them)",
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = {fmt: measure(fmt, args.repeat, tmp, args.report_files) for fmt in args.formats}
    print("| step | " + " | ".join(args.formats) + " |")
    print("|---|" + "---:|" * len(args.formats))
    print(
        "| **the job on 1,000 rows, best (median)** | "
        + " | ".join(f"**{r[0] * 1e3:.2f} ms** ({r[1] * 1e3:.2f})" for r in results.values())
        + " |"
    )
    print("| pyarrow reading the file once | " + " | ".join(f"{r[2] * 1e3:.2f} ms" for r in results.values()) + " |")
    for _o, _n, label in STEPS:
        cells = []
        for r in results.values():
            v = r[3].get(label)
            cells.append("–" if v is None else f"{v * 1e3:.2f} ms")
        print(f"| {label.replace('  ', '&nbsp;&nbsp;')} | " + " | ".join(cells) + " |")
    rest = [r[0] - sum(v for k, v in r[3].items() if k in TOP) for r in results.values()]
    print(
        "| the rest, by difference (reader thread start and hand-off, file opens, staging, Python around) | "
        + " | ".join(f"{v * 1e3:.2f} ms" for v in rest)
        + " |"
    )


if __name__ == "__main__":
    main()
