"""False-alarm rate and power of the bias-drift rules of ``clarion monitor``.

A fixed population (two facets: ``sex`` with value ``F``, ``age`` with threshold 40; a group column
for the conditional metrics; labels and predictions that depend on the facets) gives one baseline
sample and, per run, a fresh sample of ``--rows`` rows from the *same* population. Every run is
analysed once in-process (:func:`clarion.analyze`, every count metric of both stages on both
facets: pre-training CI, DPL, KL, JS, LP, TVD, KS, CDDL and post-training DPPL, DI, DCA, DCR, RD, DAR,
DRR, AD, CDDPL, TE, SD, GE — FlipTest needs a model, so it is left out; intervals at the level the
interval rule asks for, :func:`clarion.monitor.interval_config`) and checked with both rules
(:func:`clarion.monitor.check_analysis`):

* ``interval``: the default of ``clarion monitor`` (Bonferroni over the checks, alpha = 0.05);
  against a baseline analysed with 95% intervals (A = the baseline's interval) and against
  the same baseline with its intervals removed (A = the baseline value, the current interval
  widened by sqrt(2));
* ``baseline``: Clarify's "farther from the ideal than the baseline".

``unchanged`` runs sample the population as it is; ``DPPL +0.1`` runs move the predicted-positive
rate of facet ``F`` down by 0.1 (a post-training change: labels and every pre-training metric are
unchanged), which moves DPPL of ``sex = F`` by +0.1. The table gives, per rule, the share of runs
with any violation (false-alarm rate on unchanged data; power on the changed data) and, for the
changed data, the share of runs that name DPPL of ``sex = F``. Shares come with a 95% Wilson interval.

Run: PYTHONPATH=python python benchmarks/bench_monitor_rules.py [--runs 200] [--rows 5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

PRE = ["CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL"]
POST = ["DPPL", "DI", "DCA", "DCR", "RD", "DAR", "DRR", "AD", "CDDPL", "TE", "SD", "GE"]
CONFIG: dict[str, Any] = {
    "dataset_type": "text/csv",
    "label": "y",
    "label_values_or_threshold": [1],
    "predicted_label": "pred",
    "group_variable": "grp",
    "facet": [
        {"name_or_index": "sex", "value_or_threshold": ["F"]},
        {"name_or_index": "age", "value_or_threshold": [40]},
    ],
    "methods": {
        "pre_training_bias": {"methods": PRE},
        "post_training_bias": {"methods": POST},
    },
}
SHIFT = 0.1  # the change of DPPL (sex = F) in the changed runs


def sample(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """``n`` rows of the population; ``shift``: lower the predicted-positive rate of ``sex = F`` by
    ``shift`` (in expectation), leaving everything else as it is."""
    female = rng.random(n) < 0.4
    age = rng.integers(18, 80, n)
    grp = rng.integers(0, 4, n)
    p_y = 0.35 + 0.1 * (~female) + 0.05 * (age > 40) + 0.03 * grp
    y = (rng.random(n) < p_y).astype(int)
    p_pred = np.where(y == 1, 0.8, 0.2) - 0.05 * female
    pred = (rng.random(n) < p_pred).astype(int)
    if shift:
        q = float(np.mean(np.where(y == 1, 0.8, 0.2)[female] - 0.05))  # the expected rate among F
        flip = female & (pred == 1) & (rng.random(n) < shift / q)
        pred[flip] = 0
    return pd.DataFrame(
        {"sex": np.where(female, "F", "M"), "age": age, "grp": grp, "x": rng.normal(size=n), "y": y, "pred": pred}
    )


def strip_intervals(doc: Any) -> Any:
    """A copy of an analysis document without ``ci_low``/``ci_high``."""
    if isinstance(doc, dict):
        return {k: strip_intervals(v) for k, v in doc.items() if k not in ("ci_low", "ci_high")}
    if isinstance(doc, list):
        return [strip_intervals(v) for v in doc]
    return doc


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def simulate(runs: int, rows: int, seed: int = 0, *, progress: bool = False) -> dict[str, Any]:
    """``runs`` unchanged and ``runs`` changed monitor runs; the counts per rule."""
    import clarion
    from clarion import monitor

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        probe = clarion.analyze(CONFIG, sample(rng, rows), output_dir=os.path.join(tmp, "probe"), progress=False)
        cfg, level = monitor.interval_config(CONFIG, probe.analysis)
        # the baseline as a user would run it: clarion analyze with 95% intervals (A = that interval)
        base_cfg = {**CONFIG, "methods": {k: {**v, "confidence": 0.95} for k, v in CONFIG["methods"].items()}}
        base = clarion.analyze(base_cfg, sample(rng, rows), output_dir=os.path.join(tmp, "base"), progress=False)
        base = base.analysis
        bare = strip_intervals(base)
        rules = {
            "interval (baseline with intervals)": dict(baseline=base, rule="interval"),
            "interval (baseline without intervals)": dict(baseline=bare, rule="interval"),
            "baseline (Clarify)": dict(baseline=bare, rule="baseline"),
        }
        counts = {
            case: {name: {"any": 0, "dppl": 0, "violations": 0} for name in rules}
            for case in ("unchanged", "DPPL +0.1")
        }
        n_checks = monitor.count_checks(base)
        t0 = time.perf_counter()
        for case, shift in (("unchanged", 0.0), ("DPPL +0.1", SHIFT)):
            for i in range(runs):
                doc = clarion.analyze(
                    cfg, sample(rng, rows, shift), output_dir=os.path.join(tmp, "run"), progress=False, overwrite=True
                ).analysis
                for name, kw in rules.items():
                    r = monitor.check_analysis(kw["baseline"], doc, rule=kw["rule"], confidence=level)
                    c = counts[case][name]
                    c["any"] += bool(r.violations)
                    c["violations"] += len(r.violations)
                    c["dppl"] += any(v["metric_name"] == "DPPL" and v["facet"] == "sex" for v in r.violations)
                if progress and (i + 1) % 20 == 0:
                    print(f"  {case}: {i + 1}/{runs} runs ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {
        "runs": runs,
        "rows": rows,
        "checks": n_checks,
        "confidence": level,
        "n_bootstrap": cfg.post_training_bias.n_bootstrap,
        "counts": counts,
        "seconds": time.perf_counter() - t0,
    }


def table(res: dict[str, Any]) -> str:
    n = res["runs"]
    lines = [
        "| rule | unchanged: runs with any violation | DPPL +0.1: runs with any violation "
        "| DPPL +0.1: runs naming DPPL |",
        "| --- | --- | --- | --- |",
    ]

    def share(k: int) -> str:
        lo, hi = wilson(k, n)
        return f"{k}/{n} = {k / n:.1%} [{lo:.1%}, {hi:.1%}]"

    for name in res["counts"]["unchanged"]:
        u, c = res["counts"]["unchanged"][name], res["counts"]["DPPL +0.1"][name]
        lines.append(f"| {name} | {share(u['any'])} | {share(c['any'])} | {share(c['dppl'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="monitor runs per case (default 200)")
    ap.add_argument("--rows", type=int, default=5000, help="rows a run (default 5000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    res = simulate(args.runs, args.rows, args.seed, progress=True)
    print(
        f"\n{res['runs']} runs a case, {res['rows']:,} rows a run, {res['checks']} checks a run, per-check level "
        f"{res['confidence']:.5f}, {res['n_bootstrap']} replicates; {res['seconds']:.0f} s on "
        f"{platform.processor() or platform.machine()}\n"
    )
    print(table(res))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
