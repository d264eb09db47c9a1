"""Issue 21: every bias path beside the floor of reading its data once, timed in the same run.

Three parts (each prints JSON lines, then a markdown table of ratios):

1. ``clarion.bias.report`` (every metric but FT, pre + post, one facet) against its floor:
   ``grouped_counts`` on ready integer codes (the count pass it needs, same groups, weights
   included) + 1 ms (the issue's allowance for the formulas of one facet value) + one encoding
   pass for the columns that are not integer codes yet (``pyarrow.compute.dictionary_encode`` of
   each Arrow-string column, ``pandas.factorize`` of each object-string column; categorical,
   bool and small-range integer columns are codes already). Target: ratio ≤ 1.5.
2. ``Accumulator.update`` on batches of 10,000 and 100,000 rows (+ the final ``report()``)
   against one ``report()`` on the same rows. Target: ≤ 1.5 (10,000) and ≤ 1.1 (100,000).
3. ``clarion.analyze``, bias only (two facets, a group variable, predicted labels in the file),
   on a CSV and a Parquet file, against ``pyarrow`` reading the file once
   (``pyarrow.csv.read_csv`` / ``pyarrow.parquet.read_table``) + the count passes on ready codes.
   Target: ≤ 1.5. The job's report files (HTML, Markdown, PDF: a fixed cost whatever the rows) are
   timed inside each run and shown apart, and the reader alone (``clarion.read_dataset`` with the
   job's bias columns as codes, every chunk taken) is timed in the same rounds, and the job's fixed
   cost (the same job on the file's first 1,000 rows, report files apart). Up to 2e6 rows each
   round reads a file of its own (other rows, other rates: ``--fresh``, session 19), so that every
   report has numbers no earlier run drew, as a pipeline's next file does; ``--no-fresh`` repeats
   one file (what sessions 16-18 measured: report.pdf's per-process caches then hit).

Times are the best of ``--repeat`` runs (the machine these were measured on is shared: take the
ratios of one run, not the absolute times).

Usage::

    python benchmarks/bench_linerate.py                  # 1e4, 1e5, 1e6 (about 2 minutes)
    python benchmarks/bench_linerate.py --big            # adds 1e7 rows to part 1
    python benchmarks/bench_linerate.py --parts report --rows 1e6
    python benchmarks/bench_linerate.py --parts analyze --analyze-rows 1e6 1e7
    python benchmarks/bench_linerate.py --parts analyze --repeat 11 --base-reader 3c5d94e  # the reader change, paired
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
import pyarrow as pa
import pyarrow.compute as pc

import clarion
import clarion.bias as cb

COUNT = [m for m in cb.ALL_METRICS if m != "FT"]
FORMULAS_S = 1e-3  # the allowance for all the formulas of one facet value


def best(fn, repeat):
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def paired(fns, repeat):
    """Best time of each function, the functions interleaved round by round (a load spike on a
    shared machine then hits a case and its floor alike)."""
    t = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            t[i].append(time.perf_counter() - t0)
    return [min(x) for x in t]


def columns(n, kind, seed=0):
    """facet f (10 values), label y, prediction p, group g (5 values), weights w."""
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 10, n)
    y = rng.random(n) < 0.3 + 0.03 * f
    p = np.where(rng.random(n) < 0.2, ~y, y)
    g = rng.integers(0, 5, n)
    w = rng.exponential(size=n)
    names = np.array([f"group_{i}" for i in range(10)], dtype=object)
    gnames = np.array(list("abcde"), dtype=object)
    yn = np.array(["no", "yes"], dtype=object)
    if kind == "numeric":
        df = pd.DataFrame({"f": f, "y": y, "p": p, "g": g})
        pos, one = [True], 3
    elif kind == "categorical":
        df = pd.DataFrame(
            {
                "f": pd.Categorical.from_codes(f, list(names)),
                "y": pd.Categorical.from_codes(y.astype(int), list(yn)),
                "p": pd.Categorical.from_codes(p.astype(int), list(yn)),
                "g": pd.Categorical.from_codes(g, list(gnames)),
            }
        )
        pos, one = ["yes"], "group_3"
    elif kind in ("arrow", "object"):
        cols = {"f": names[f], "y": yn[y.astype(int)], "p": yn[p.astype(int)], "g": gnames[g]}
        if kind == "arrow":
            df = pd.DataFrame({k: pd.array(v, dtype=pd.ArrowDtype(pa.string())) for k, v in cols.items()})
        else:
            df = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()})
        pos, one = ["yes"], "group_3"
    else:
        raise ValueError(kind)
    df["w"] = w
    return df, (f, y, p, g, w), pos, one


def encode_floor(df, kind, cols, repeat):
    """One encoding pass over the columns that are not integer codes yet."""
    if kind == "arrow":
        arrs = [pa.chunked_array([df[c].array._pa_array.combine_chunks()]) for c in cols]
        return best(lambda: [pc.dictionary_encode(a) for a in arrs], repeat)
    if kind == "object":
        return best(lambda: [pd.factorize(df[c]) for c in cols], repeat)
    return 0.0


def part_report(rows, repeat, out):
    cases = [
        # (label, facet_values?, group?, weights?)
        ("one value + group", True, True, False),
        ("all values", False, False, False),
        ("one value + group + weights", True, True, True),
    ]
    for n in rows:
        for kind in ("numeric", "categorical", "arrow", "object"):
            df, (f, y, p, g, w), pos, one = columns(n, kind)
            for label, one_value, group, weighted in cases:
                kw = dict(label="y", facet="f", label_values=pos, predicted_label="p", methods=COUNT)
                if one_value:
                    kw["facet_values"] = [one]
                if group:
                    kw["group_variable"] = "g"
                if weighted:
                    kw["weights"] = "w"
                try:  # warm (first-call imports out of the timing)
                    cb.report(df.iloc[:1000], **kw)
                except ValueError:
                    pass
                K = 5 if group else 1
                G = (f * K + (g if group else 0)).astype(np.int32)
                if one_value:  # the pass counts facet d against the rest
                    G = ((f == 3).astype(np.int32) * K + (g if group else 0)).astype(np.int32)
                yi, pi = y.astype(np.int8), p.astype(np.int8)
                ww = w if weighted else None
                n_groups = (2 if one_value else 10) * K
                t, count = paired(
                    [
                        lambda kw=kw, df=df: cb.report(df, **kw),
                        lambda G=G, yi=yi, pi=pi, ww=ww, n_groups=n_groups: clarion.grouped_counts(
                            G, yi, pi, weights=ww, n_groups=n_groups, n_labels=2, n_preds=2
                        ),
                    ],
                    repeat,
                )
                enc_cols = ["f", "y", "p"] + (["g"] if group else [])
                enc = encode_floor(df, kind, enc_cols, repeat)
                floor = count + FORMULAS_S + enc
                r = {
                    "part": "report",
                    "rows": n,
                    "kind": kind,
                    "case": label,
                    "report_s": t,
                    "count_s": count,
                    "encode_s": enc,
                    "floor_s": floor,
                    "ratio": t / floor,
                }
                print(json.dumps(r), flush=True)
                out.append(r)


def part_accumulator(n, repeat, out):
    """Part 2. Besides the ratio, the stream's own breakdown (of its fastest run): the first
    update (the one-pass path, building the compiled stream), the median of the other updates
    (the steady state: one compiled call each) and ``report()`` (the formulas)."""
    for kind in ("numeric", "categorical", "object"):
        df, _, pos, _ = columns(n, kind)
        kw = dict(label="y", facet="f", label_values=pos, predicted_label="p", group_variable="g")
        for batch in (10_000, 100_000):
            parts = [df.iloc[i : i + batch] for i in range(0, n, batch)]
            runs = []

            def stream(kw=kw, parts=parts, runs=runs):
                t0 = time.perf_counter()
                acc = cb.Accumulator(**kw)
                ts = []
                for part in parts:
                    t1 = time.perf_counter()
                    acc.update(part)
                    ts.append(time.perf_counter() - t1)
                t1 = time.perf_counter()
                acc.report(COUNT)
                t2 = time.perf_counter()
                runs.append((t2 - t0, ts, t2 - t1))

            t_one, t_acc = paired([lambda df=df, kw=kw: cb.report(df, methods=COUNT, **kw), stream], repeat)
            _, ts, t_rep = min(runs, key=lambda r: r[0])
            r = {
                "part": "accumulator",
                "rows": n,
                "kind": kind,
                "batch": batch,
                "one_shot_s": t_one,
                "accumulator_s": t_acc,
                "ratio": t_acc / t_one,
                "first_update_s": ts[0],
                "median_update_s": float(np.median(ts[1:])) if len(ts) > 1 else float("nan"),
                "report_s": t_rep,
            }
            print(json.dumps(r), flush=True)
            out.append(r)


ANALYZE_CFG = {
    "label": "y",
    "label_values_or_threshold": [1],
    "predicted_label": "pred",
    "facet": [
        {"name_or_index": "sex", "value_or_threshold": ["F"]},
        {"name_or_index": "age", "value_or_threshold": [60]},
    ],
    "group_variable": "region",
    "methods": {
        "pre_training_bias": {"methods": "all"},
        "post_training_bias": {
            "methods": ["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "CDDPL", "TE", "GE"]
        },
    },
}


# the job's bias columns (label, facets, group variable, predicted label): read as codes where text
BIAS_COLUMNS = ("y", "sex", "age", "region", "pred")


def analyze_frame(n, seed=0):
    """Part 3's data; ``seed`` > 0: other rows with other rates (every metric of the report moves)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    age = rng.integers(18, 90, n)
    y = (rng.random(n) < np.where(sex == "F", 0.35 + 0.003 * seed, 0.45 - 0.002 * seed)).astype(int)
    pred = np.where(rng.random(n) < 0.8, y, 1 - y)
    return pd.DataFrame(
        {
            "age": age,
            "income": rng.normal(50, 10, n).round(3),
            "sex": sex,
            "region": rng.choice(list("ABCDEFGH"), n),
            "y": y,
            "pred": pred,
        }
    )


def base_dataset(commit, tmp):
    """``clarion/dataset.py`` of ``commit`` as a module of its own (``--base-reader``)."""
    import importlib.util
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    show = ["git", "-C", root, "show", f"{commit}:python/clarion/dataset.py"]
    path = os.path.join(tmp, "base_dataset.py")
    with open(path, "wb") as fh:
        fh.write(subprocess.run(show, capture_output=True, check=True).stdout)
    spec = importlib.util.spec_from_file_location("clarion._base_dataset", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def part_analyze(n, repeat, chunk_rows, out, base=None, fresh=False):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from clarion.dataset import read_dataset

    df = analyze_frame(n)
    # the count passes on ready codes: one per facet, the group variable in the groups
    region = pd.factorize(df["region"])[0].astype(np.int32)
    yi, pi = df["y"].to_numpy(np.int8), df["pred"].to_numpy(np.int8)
    g_sex = ((df["sex"] == "F").to_numpy().astype(np.int32) * 8 + region).astype(np.int32)
    g_age = ((df["age"] > 60).to_numpy().astype(np.int32) * 8 + region).astype(np.int32)

    def counts():
        for G in (g_sex, g_age):
            clarion.grouped_counts(G, yi, pi, n_groups=16, n_labels=2, n_preds=2)

    t_count = best(counts, repeat)
    import clarion.report as creport

    real_write, rep_t = creport.write_report, []

    def timed_write(*a, **kw):  # the job's own writer, timed (the job imports it at call time)
        t0 = time.perf_counter()
        try:
            return real_write(*a, **kw)
        finally:
            rep_t.append(time.perf_counter() - t0)

    creport.write_report = timed_write
    with tempfile.TemporaryDirectory() as tmp:
        # fresh: one file per round, each with other rows and rates, so that no report number is
        # one an earlier run drew (what is kept per process by text or shape, as report.pdf keeps
        # cells and chart shapes, misses as in a pipeline whose next file has other numbers)
        n_files = repeat if fresh else 1
        files = {"csv": [], "parquet": []}
        small = {"csv": [], "parquet": []}  # the job's fixed cost: its first 1,000 rows (report files apart)
        for k in range(n_files):
            d = df if k == 0 else analyze_frame(n, seed=k)
            files["csv"].append(os.path.join(tmp, f"data{k}.csv"))
            files["parquet"].append(os.path.join(tmp, f"data{k}.parquet"))
            d.to_csv(files["csv"][-1], index=False)
            d.to_parquet(files["parquet"][-1], index=False, row_group_size=chunk_rows)
            small["csv"].append(os.path.join(tmp, f"small{k}.csv"))
            small["parquet"].append(os.path.join(tmp, f"small{k}.parquet"))
            d.iloc[:1000].to_csv(small["csv"][-1], index=False)
            d.iloc[:1000].to_parquet(small["parquet"][-1], index=False)
        for fmt, read, dtype in (
            ("csv", lambda p: pacsv.read_csv(p), "text/csv"),
            ("parquet", lambda p: pq.read_table(p), "application/x-parquet"),
        ):
            cfg = {**ANALYZE_CFG, "dataset_type": dtype}
            outdir = os.path.join(tmp, f"out_{fmt}")
            fixed = []
            for k in range(max(3, repeat)):
                rep_t.clear()
                t0 = time.perf_counter()
                clarion.analyze(cfg, small[fmt][k % n_files], output_dir=outdir, progress=False, overwrite=True)
                fixed.append(time.perf_counter() - t0 - sum(rep_t))
            # read and analyze interleaved round by round; the report files (HTML, Markdown and,
            # with the report extra installed, PDF) are timed inside each run: a fixed cost of the
            # job's outputs, whatever the rows
            t_read, t_reader, runs, b_reader, b_runs = [], [], [], [], []

            def base_round():  # the reader and the job again, with --base-reader's clarion.dataset
                t0 = time.perf_counter()
                for _ in base.read_dataset(path, dtype, chunk_rows=chunk_rows, codes=BIAS_COLUMNS):
                    pass
                b_reader.append(time.perf_counter() - t0)
                this, sys.modules["clarion.dataset"] = sys.modules["clarion.dataset"], base
                rep_t.clear()
                t0 = time.perf_counter()
                try:
                    clarion.analyze(cfg, path, output_dir=outdir, progress=False, overwrite=True, chunk_rows=chunk_rows)
                finally:
                    sys.modules["clarion.dataset"] = this
                b_runs.append((time.perf_counter() - t0, sum(rep_t)))

            for k in range(repeat):
                path = files[fmt][k % n_files]
                if base is not None and k % 2:  # (base first in every other round: no order favoured)
                    base_round()
                t0 = time.perf_counter()
                read(path)
                t_read.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for _ in read_dataset(path, dtype, chunk_rows=chunk_rows, codes=BIAS_COLUMNS):
                    pass
                t_reader.append(time.perf_counter() - t0)
                rep_t.clear()
                t0 = time.perf_counter()
                clarion.analyze(cfg, path, output_dir=outdir, progress=False, overwrite=True, chunk_rows=chunk_rows)
                runs.append((time.perf_counter() - t0, sum(rep_t)))
                if base is not None and not k % 2:
                    base_round()
            t_read = min(t_read)
            t_an, t_rep = min(runs)
            floor = t_read + t_count
            r = {
                "part": "analyze",
                "rows": n,
                "format": fmt,
                "chunk_rows": chunk_rows,
                "analyze_s": t_an,
                "report_files_s": t_rep,
                "pyarrow_read_s": t_read,
                "reader_s": min(t_reader),
                "count_s": t_count,
                "ratio": t_an / floor,
                "ratio_without_report_files": (t_an - t_rep) / floor,
                "job_fixed_s": min(fixed),
                "fresh_files": n_files,
            }
            if base is not None:
                b_an, b_rep = min(b_runs)
                r.update({"base_reader_s": min(b_reader), "base_analyze_s": b_an, "base_report_files_s": b_rep})
            print(json.dumps(r), flush=True)
            out.append(r)
    creport.write_report = real_write


def ms(v):
    return f"{v * 1e3:.2f} ms" if v < 1 else f"{v:.2f} s"


def tables(out):
    rep = [r for r in out if r["part"] == "report"]
    if rep:
        print("\n| rows | columns | case | report | count pass | encoding pass | floor (+1 ms) | ratio |")
        print("|---:|---|---|---:|---:|---:|---:|---:|")
        for r in rep:
            print(
                f"| {r['rows']:.0e} | {r['kind']} | {r['case']} | {ms(r['report_s'])} | {ms(r['count_s'])} | "
                f"{ms(r['encode_s'])} | {ms(r['floor_s'])} | {r['ratio']:.2f}× |"
            )
    acc = [r for r in out if r["part"] == "accumulator"]
    if acc:
        print(
            "\n| rows | columns | batch | one-shot report | updates + report | ratio | first update | "
            "other updates (median) | report() |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in acc:
            print(
                f"| {r['rows']:.0e} | {r['kind']} | {r['batch']:,} | {ms(r['one_shot_s'])} | "
                f"{ms(r['accumulator_s'])} | {r['ratio']:.2f}× | {ms(r['first_update_s'])} | "
                f"{r['median_update_s'] * 1e6:.1f} µs | {ms(r['report_s'])} |"
            )
    an = [r for r in out if r["part"] == "analyze"]
    if an:
        print(
            "\n| rows | format | files | chunk rows | clarion analyze | of which report files | pass (without them) | "
            "reader alone | pyarrow read | count passes | ratio | ratio without report files | "
            "job on 1,000 rows (without report files) |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in an:
            files = "one" if r.get("fresh_files", 1) == 1 else f"{r['fresh_files']} (fresh)"
            print(
                f"| {r['rows']:.0e} | {r['format']} | {files} | {r['chunk_rows']:,} | {ms(r['analyze_s'])} | "
                f"{ms(r['report_files_s'])} | {ms(r['analyze_s'] - r['report_files_s'])} | "
                f"{ms(r.get('reader_s', float('nan')))} | {ms(r['pyarrow_read_s'])} | {ms(r['count_s'])} | "
                f"{r['ratio']:.2f}× | {r['ratio_without_report_files']:.2f}× | "
                f"{ms(r.get('job_fixed_s', float('nan')))} |"
            )
        based = [r for r in an if "base_reader_s" in r]
        if based:
            print("\n| rows | format | reader alone: base → this | pass (without report files): base → this |")
            print("|---:|---|---:|---:|")
            for r in based:
                bp, tp = r["base_analyze_s"] - r["base_report_files_s"], r["analyze_s"] - r["report_files_s"]
                print(
                    f"| {r['rows']:.0e} | {r['format']} | {ms(r['base_reader_s'])} → {ms(r['reader_s'])} | "
                    f"{ms(bp)} → {ms(tp)} |"
                )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", type=float, default=[1e4, 1e5, 1e6], help="rows for part 1")
    ap.add_argument("--big", action="store_true", help="add 1e7 rows to part 1")
    ap.add_argument("--acc-rows", type=float, default=1e6)
    ap.add_argument("--analyze-rows", nargs="+", type=float, default=[1e6], help="rows for part 3 (e.g. 1e6 1e7)")
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--parts", nargs="+", default=["report", "accumulator", "analyze"])
    ap.add_argument(
        "--fresh",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="part 3: a file of other rows and rates per round, so that every report has new numbers "
        "(default: on up to 2e6 rows, where the report files weigh; --no-fresh: one file, every round)",
    )
    ap.add_argument("--json", help="write the results here")
    ap.add_argument(
        "--base-reader",
        help="part 3: also time the reader alone and the job with this commit's clarion/dataset.py, in the same rounds",
    )
    args = ap.parse_args(argv)
    rows = [int(r) for r in args.rows] + ([10**7] if args.big else [])
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, pyarrow {pa.__version__}, clarion {clarion.__version__}",
        file=sys.stderr,
    )
    out: list = []
    if "report" in args.parts:
        part_report(rows, args.repeat, out)
    if "accumulator" in args.parts:
        part_accumulator(int(args.acc_rows), args.repeat, out)
    if "analyze" in args.parts:
        for n in args.analyze_rows:
            with tempfile.TemporaryDirectory() as tmp:
                base = base_dataset(args.base_reader, tmp) if args.base_reader else None
                fresh = args.fresh if args.fresh is not None else n <= 2e6
                part_analyze(int(n), max(2, args.repeat // 2), args.chunk_rows, out, base, fresh)
    tables(out)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
