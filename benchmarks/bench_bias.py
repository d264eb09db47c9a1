"""Benchmark: clarion.bias.report beside smclarify 0.5, fairlearn's MetricFrame and the count floor.

One facet with 10 values, a binary label and a binary prediction, N rows. Timed in the same run:

* clarion: the full pre + post report (every metric but FT) for ALL 10 facet values one-vs-rest,
  with facet/label/prediction given as categorical, bool/int (numeric) or object-string columns
  (encoding included);
* clarion metric step: the report's formulas on the count state alone (no encoding, no counting);
* floor: ``clarion.grouped_counts`` on ready int codes (the one pass the report needs);
* clarion with 1,000 bootstrap replicates (``confidence=0.95``): issue 9's target;
* smclarify: the same report for ONE facet value (and for all 10 values up to --smclarify-all-max);
* fairlearn: ``MetricFrame`` with five metrics grouped by the facet.

Prints JSON lines and a markdown table. Usage::

    python benchmarks/bench_bias.py --rows 1e4 1e5
    python benchmarks/bench_bias.py --rows 1e6 --repeat 2
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
import clarion.bias as cb

COUNT = [m for m in cb.ALL_METRICS if m != "FT"]


def best(fn, repeat):
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def make(n, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 10, n)
    y = rng.random(n) < 0.3 + 0.03 * f
    p = np.where(rng.random(n) < 0.2, ~y, y)
    vals = np.array([f"group_{i}" for i in range(10)], dtype=object)
    return (
        {
            "numeric": pd.DataFrame({"f": f, "y": y, "p": p, "x": rng.normal(size=n)}),
            "categorical": pd.DataFrame(
                {
                    "f": pd.Categorical.from_codes(f, list(vals)),
                    "y": pd.Categorical.from_codes(y.astype(int), ["no", "yes"]),
                    "p": pd.Categorical.from_codes(p.astype(int), ["no", "yes"]),
                    "x": rng.normal(size=n),
                }
            ),
            "string": pd.DataFrame(
                {
                    "f": pd.Series(vals[f], dtype=object),
                    "y": pd.Series(np.where(y, "yes", "no"), dtype=object),
                    "p": pd.Series(np.where(p, "yes", "no"), dtype=object),
                    "x": rng.normal(size=n),
                }
            ),
        },
        f,
        y,
        p,
    )


def clarion_report(df, kind, **kw):
    """The full report (all metrics but FT); all facet values one-vs-rest unless facet_values=."""
    pos = [True] if kind == "numeric" else ["yes"]
    return cb.report(df, label="y", facet="f", label_values=pos, predicted_label="p", methods=COUNT, **kw)


def smclarify_one(df, value, *, all_values=False):
    from smclarify.bias.report import FacetColumn, LabelColumn, StageType, bias_report

    df = df[["f", "y", "p", "x"]]
    fc = FacetColumn("f", None if all_values else [value])
    lc = LabelColumn("y", df["y"], [True])
    bias_report(df.drop(columns=["p"]), fc, lc, StageType.PRE_TRAINING, metrics=["all"])
    bias_report(
        df,
        fc,
        lc,
        StageType.POST_TRAINING,
        LabelColumn("p", df["p"], [True]),
        metrics=[m for m in cb.POST_TRAINING if m != "FT"],
    )


def have_fliptest():
    try:
        import clarion.bias.fliptest  # noqa: F401
    except ImportError:
        return False
    return True


def smclarify_ft(df, value):
    from smclarify.bias.report import FacetColumn, LabelColumn, StageType, bias_report

    df = df[["f", "y", "p", "x"]]
    bias_report(
        df,
        FacetColumn("f", [value]),
        LabelColumn("y", df["y"], [True]),
        StageType.POST_TRAINING,
        LabelColumn("p", df["p"], [True]),
        metrics=["FT"],
    )


def fairlearn_frame(df):
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score

    mf = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "accuracy": accuracy_score,
            "precision": lambda a, b: precision_score(a, b, zero_division=0),
        },
        y_true=df["y"],
        y_pred=df["p"],
        sensitive_features=df["f"],
    )
    mf.difference()


def bench_accumulator(rows, batch, repeat):
    """Issue 10: rows/s of Accumulator.update on fixed-size batches vs the one-shot report."""
    out = []
    for n in rows:
        frames, *_ = make(n)
        for kind in ("numeric", "string"):
            df = frames[kind]
            pos = [True] if kind == "numeric" else ["yes"]
            kw = dict(label="y", facet="f", label_values=pos, predicted_label="p")
            parts = [df.iloc[i : i + batch] for i in range(0, n, batch)]

            def stream(kw=kw, parts=parts):
                acc = cb.Accumulator(**kw)
                for part in parts:
                    acc.update(part)
                acc.report(COUNT)
                return acc

            t_one = best(lambda df=df, kw=kw: cb.report(df, methods=COUNT, **kw), repeat)
            t_acc = best(stream, repeat)
            size = len(stream().to_bytes())
            r = {"rows": n, "kind": kind, "batch": batch, "one_shot": t_one, "accumulator": t_acc, "state_bytes": size}
            print(json.dumps(r))
            out.append(r)
    print(
        "\n| rows | columns | batch | one-shot report | accumulator (updates + report) | one-shot rows/s | "
        "accumulator rows/s | ratio | state size |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in out:
        print(
            f"| {r['rows']:.0e} | {r['kind']} | {r['batch']:,} | {r['one_shot'] * 1e3:.1f} ms | "
            f"{r['accumulator'] * 1e3:.1f} ms | {r['rows'] / r['one_shot']:,.0f} | "
            f"{r['rows'] / r['accumulator']:,.0f} | "
            f"{r['accumulator'] / r['one_shot']:.2f}× | {r['state_bytes']:,} B |"
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", type=float, default=[1e4, 1e5])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smclarify-max", type=float, default=1e6, help="largest N for smclarify (one value)")
    ap.add_argument("--smclarify-all-max", type=float, default=1e5, help="largest N for smclarify, all values")
    ap.add_argument("--fairlearn-max", type=float, default=1e6)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument(
        "--accumulator",
        action="store_true",
        help="also time Accumulator.update on 10,000-row batches against the one-shot report",
    )
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args(argv)
    if args.accumulator:
        bench_accumulator([int(r) for r in args.rows], args.batch, args.repeat)
        return
    logging.disable(logging.CRITICAL)
    rows_out = []
    warm, *_ = make(200)
    smclarify_one(warm["numeric"], 3)  # imports and first-call set-up out of the timings
    fairlearn_frame(warm["numeric"])
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, clarion {clarion.__version__}",
        file=sys.stderr,
    )
    for n in [int(r) for r in args.rows]:
        frames, f, y, p = make(n)
        r = {"rows": n}
        for kind, df in frames.items():
            r[f"clarion_{kind}"] = best(lambda df=df, kind=kind: clarion_report(df, kind), args.repeat)
        r["clarion_one_value"] = best(
            lambda: clarion_report(frames["numeric"], "numeric", facet_values=[3]), args.repeat
        )
        if have_fliptest():
            r["clarion_ft_one_value"] = best(
                lambda: cb.report(
                    frames["numeric"],
                    label="y",
                    facet="f",
                    facet_values=[3],
                    label_values=[True],
                    predicted_label="p",
                    methods=["FT"],
                ),
                1,
            )
            if n <= args.smclarify_max:
                r["smclarify_ft_one_value"] = best(lambda: smclarify_ft(frames["numeric"], 3), 1)
        # metric step alone and the count floor, on the numeric columns
        from clarion.bias._engine import Spec, State, Table

        spec = Spec.build(label="y", facet="f", label_values=[True], predicted_label="p")
        state = State(spec)
        enc = state.encode(Table(frames["numeric"]), "clarion")
        state.add_counts(state.count(enc), n)
        r["metric_step"] = best(lambda: state.assemble(methods=COUNT), args.repeat)
        g = f.astype(np.int32)
        yi = y.astype(np.int8)
        pi = p.astype(np.int8)
        r["floor_grouped_counts"] = best(
            lambda: clarion.grouped_counts(g, yi, pi, n_groups=10, n_labels=2, n_preds=2), args.repeat
        )
        r["clarion_bootstrap"] = best(
            lambda: clarion_report(frames["numeric"], "numeric", confidence=0.95, n_bootstrap=args.bootstrap, seed=1), 1
        )
        if n <= args.smclarify_max:
            r["smclarify_one_value"] = best(lambda: smclarify_one(frames["numeric"], 3), 1)
        if n <= args.smclarify_all_max:
            r["smclarify_all_values"] = best(lambda: smclarify_one(frames["numeric"], 3, all_values=True), 1)
        if n <= args.fairlearn_max:
            r["fairlearn_metricframe"] = best(lambda: fairlearn_frame(frames["numeric"]), 1)
        print(json.dumps(r))
        rows_out.append(r)

    def ms(v):
        return "—" if v is None else (f"{v * 1e3:.1f} ms" if v < 10 else f"{v:.1f} s")

    def ratio(a, b):
        return "—" if a is None or b is None else f"{a / b:,.0f}×"

    print(
        "\n| rows | clarion 1 value (numeric) | smclarify 1 value | speedup (1 value) | FT clarion | FT smclarify "
        "| FT speedup |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows_out:
        print(
            f"| {r['rows']:.0e} | {ms(r['clarion_one_value'])} | {ms(r.get('smclarify_one_value'))} | "
            f"{ratio(r.get('smclarify_one_value'), r['clarion_one_value'])} | {ms(r.get('clarion_ft_one_value'))} | "
            f"{ms(r.get('smclarify_ft_one_value'))} | "
            f"{ratio(r.get('smclarify_ft_one_value'), r.get('clarion_ft_one_value'))} |"
        )
    print(
        "\n| rows | clarion numeric | clarion categorical | clarion string | metric step | grouped_counts floor "
        "| 1,000 bootstrap | smclarify 1 value | smclarify 10 values | fairlearn | speedup vs smclarify "
        "(10 values, numeric) | string vs smclarify | metric step / floor |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows_out:
        sm_all = r.get("smclarify_all_values")
        sm_all_est = (
            sm_all
            if sm_all is not None
            else (None if r.get("smclarify_one_value") is None else 10 * r["smclarify_one_value"])
        )
        print(
            f"| {r['rows']:.0e} | {ms(r['clarion_numeric'])} | {ms(r['clarion_categorical'])} | "
            f"{ms(r['clarion_string'])} | {ms(r['metric_step'])} | {ms(r['floor_grouped_counts'])} | "
            f"{ms(r['clarion_bootstrap'])} | {ms(r.get('smclarify_one_value'))} | "
            f"{ms(sm_all) if sm_all is not None else ('≈' + ms(sm_all_est) if sm_all_est else '—')} | "
            f"{ms(r.get('fairlearn_metricframe'))} | {ratio(sm_all_est, r['clarion_numeric'])} | "
            f"{ratio(sm_all_est, r['clarion_string'])} | {r['metric_step'] / r['floor_grouped_counts']:.1f} |"
        )


if __name__ == "__main__":
    main()
