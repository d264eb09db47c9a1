"""Cost of drift over time: the windowed monitor beside the plain analysis and a per-window loop.

A synthetic data set with N rows over 30 days (predicted labels in the data; pre- and post-training
bias, every count metric, one facet; no model), given as a DataFrame already in memory (so the CSV
reader, measured by bench_analysis.py, is not what is timed), is analysed

* ``analyze``: :func:`clarion.analyze` on the whole file (the floor: one read, no windows);
* ``windowed``: :func:`clarion.monitor.drift_over_time` with ``window="1D"`` — the same single read,
  30 windows of bias metrics, every window and the whole file checked against a baseline;
* ``per_window_loop``: what one would do without it — split the DataFrame by day, and run
  :func:`clarion.analyze` plus :func:`clarion.monitor.check_analysis` on each day's DataFrame.

The table reports seconds (best of ``--repeat``) and the ratios to ``analyze``.

Run: python benchmarks/bench_monitor.py [--rows 200000 1000000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import pandas as pd

CONFIG = {
    "dataset_type": "text/csv",
    "label": "y",
    "label_values_or_threshold": [1],
    "predicted_label": "pred",
    "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
    "excluded_columns": ["ts"],
    "methods": {
        "pre_training_bias": {"methods": ["CI", "DPL", "KL", "JS", "LP", "TVD", "KS"]},
        "post_training_bias": {"methods": ["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "TE", "GE"]},
    },
}
DAYS = 30


def make(path: str, n: int) -> None:
    rng = np.random.default_rng(0)
    ts = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, DAYS * 86400, n)), unit="s")
    pd.DataFrame(
        {
            "ts": ts,
            "sex": np.where(rng.random(n) < 0.4, "F", "M"),
            "x": rng.normal(size=n),
            "y": (rng.random(n) < 0.5).astype(int),
            "pred": (rng.random(n) < 0.5).astype(int),
        }
    ).to_csv(path, index=False)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(n: int, tmp: str, cfg: str, repeat: int) -> dict:
    import clarion
    from clarion import monitor

    path = os.path.join(tmp, f"data_{n}.csv")
    make(path, n)
    data = pd.read_csv(path, parse_dates=["ts"])
    base = clarion.analyze(cfg, data, output_dir=os.path.join(tmp, f"base_{n}"), progress=False).analysis
    k = [0]

    def out() -> str:
        k[0] += 1
        return os.path.join(tmp, f"o{n}_{k[0]}")

    def per_window_loop() -> None:
        for _, part in data.groupby(data["ts"].dt.floor("1D")):
            r = clarion.analyze(cfg, part, output_dir=out(), progress=False)
            monitor.check_analysis(base, r.analysis)

    return {
        "rows": n,
        "windows": DAYS,
        "analyze": best(lambda: clarion.analyze(cfg, data, output_dir=out(), progress=False), repeat),
        "windowed": best(
            lambda: monitor.drift_over_time(base, cfg, data, time_column="ts", window="1D", output_dir=out()), repeat
        ),
        "per_window_loop": best(per_window_loop, repeat),
    }


def main() -> None:

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[200_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "config.json")
        with open(cfg, "w") as fh:
            json.dump(CONFIG, fh)
        results = [measure(n, tmp, cfg, args.repeat) for n in args.rows]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, python "
        f"{platform.python_version()}"
    )
    print(
        "| rows | windows | analyze (s) | windowed (s) | per-window loop (s) | windowed / analyze | loop / windowed |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['windows']} | {r['analyze']:.2f} | {r['windowed']:.2f} | "
            f"{r['per_window_loop']:.2f} | {r['windowed'] / r['analyze']:.2f} | "
            f"{r['per_window_loop'] / r['windowed']:.2f} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
