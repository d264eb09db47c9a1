"""Benchmark clarion on a Dask LocalCluster: 1 vs 2 workers against the single-process run.

Two workloads, each timed in the same run three ways:

* **single process**: the plain API on in-memory data (the bias report reads the Parquet files
  with pandas first, inside the timing);
* **dask, 1 worker** and **dask, 2 workers**: the same call on a Dask collection
  (``dask.dataframe.read_parquet`` for bias, ``from_pandas`` partitions for SHAP), on a
  ``LocalCluster`` of single-threaded worker processes (cluster start-up is not timed), started
  as ``clarion analyze --dask-workers`` starts one (without the nanny's
  ``MALLOC_TRIM_THRESHOLD_``; see ``clarion.distributed.NANNY_TRIM_KEY``).

Workloads:

* **bias**: ``clarion.bias.report`` over ``--bias-rows`` rows of Parquet (label, a 5-valued
  facet, a subgroup column, a binary prediction and a score, 2 probability thresholds;
  every count-based metric, no FlipTest), files of ``--rows-per-file`` rows;
* **shap**: ``KernelShap(LogisticRegression, 10 background rows, exact: 254 coalitions of
  M = 8 features).explain(X)`` over ``--shap-rows`` rows (the cost is the model:
  N x 254 x 10 synthetic rows).

Reported per workload: best-of-``--repeat`` seconds, the **overhead** of Dask with one worker
against the single process (ratio), the **speed-up** of 2 workers over 1, and whether the
results are identical to the single-process ones (bias: the whole report, bit for bit; SHAP:
every attribution, and the largest difference: a BLAS-based model such as logistic regression
rounds a row's output differently in the last bit depending on the size of the batch it is in,
so partitions give ~1e-17 differences that no batching scheme can rule out).

Every process runs one thread (BLAS, OpenMP and clarion's own pools), so "2 workers" means two
cores.

    python benchmarks/bench_dask.py                           # 2e7 bias rows, 10,000 SHAP rows
    python benchmarks/bench_dask.py --bias-rows 100000000     # the issue's 1e8 rows (~3 GB on disk)
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CLARION_NUM_THREADS"):
    os.environ[_v] = "1"  # before numpy is imported; inherited by the worker processes

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BIAS_KW = dict(
    label="y",
    label_values=[1],
    facet="s",
    group_variable="g",
    predicted_label={"clf": "pred", "scorer": "score"},
    probability_threshold=[0.4, 0.6],
    methods=[
        "CI",
        "DPL",
        "KL",
        "JS",
        "LP",
        "TVD",
        "KS",
        "CDDL",
        "DPPL",
        "DI",
        "DCA",
        "DCR",
        "RD",
        "SD",
        "DAR",
        "DRR",
        "AD",
        "TE",
        "CDDPL",
        "GE",
    ],
)


def write_parquet(folder: str, rows: int, rows_per_file: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    for i, a in enumerate(range(0, rows, rows_per_file)):
        n = min(rows_per_file, rows - a)
        s = rng.integers(0, 5, n, dtype=np.int16)
        x = rng.normal(size=n).astype(np.float32) + 0.2 * s
        t = pa.table(
            {
                "y": (x + rng.normal(size=n).astype(np.float32) > 0.5).astype(np.int8),
                "s": s,
                "g": rng.integers(0, 3, n, dtype=np.int8),
                "pred": (x > 0.4).astype(np.int8),
                "score": (1 / (1 + np.exp(-x))).astype(np.float64),
            }
        )
        pq.write_table(t, os.path.join(folder, f"part-{i:05d}.parquet"), row_group_size=1 << 20)


def best(fn, repeat: int, label: str = ""):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    if label:
        print(f"  {label}: " + ", ".join(f"{t:.2f}" for t in times) + " s")
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bias-rows", type=float, default=2e7)
    ap.add_argument("--rows-per-file", type=float, default=2e6)
    ap.add_argument("--shap-rows", type=int, default=10_000)
    ap.add_argument("--shap-partitions", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    from sklearn.linear_model import LogisticRegression

    import clarion.bias as cb
    from clarion.distributed import NANNY_TRIM_KEY
    from clarion.explain import KernelShap

    rows, per_file = int(args.bias_rows), int(args.rows_per_file)
    tmp = tempfile.mkdtemp(prefix="clarion-bench-dask-")
    results: dict = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "bias_rows": rows,
        "shap_rows": args.shap_rows,
        "runs": {},
    }
    try:
        t0 = time.perf_counter()
        write_parquet(tmp, rows, per_file)
        print(f"wrote {rows:,} rows in {len(os.listdir(tmp))} Parquet files ({time.perf_counter() - t0:.1f} s)")

        # SHAP data and explainer (built once; the plan, operator and background are what is shipped)
        rng = np.random.default_rng(1)
        M = 8
        Xall = pd.DataFrame(rng.normal(size=(args.shap_rows + 4000, M)), columns=[f"f{j}" for j in range(M)])
        yall = (Xall["f0"] + Xall["f1"] * Xall["f2"] - 0.5 * Xall["f3"] > 0).astype(int)
        model = LogisticRegression(max_iter=500).fit(Xall.iloc[:4000], yall.iloc[:4000])
        X = Xall.iloc[4000:].reset_index(drop=True)
        explainer = KernelShap(model, Xall.iloc[:10], seed=0, n_threads=1)

        # single process
        def bias_single():
            return cb.report(pd.read_parquet(tmp), **BIAS_KW)

        t_bias_1p, rep_1p = best(bias_single, args.repeat, "bias, single process")
        t_shap_1p, shap_1p = best(lambda: explainer.explain(X), args.repeat, "shap, single process")
        results["runs"]["single process"] = {"bias_s": t_bias_1p, "shap_s": t_shap_1p}
        print(f"single process: bias {t_bias_1p:.2f} s, shap {t_shap_1p:.2f} s")
        want_bias = rep_1p.to_frame()

        for n_workers in (1, 2):
            t0 = time.perf_counter()
            with dask.config.set({NANNY_TRIM_KEY: None}):  # as clarion's own local clusters (see docs)
                cluster = LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
                )
            client = Client(cluster)
            start = time.perf_counter() - t0
            try:
                ddf = dd.read_parquet(tmp)
                t_bias, rep = best(
                    lambda ddf=ddf: cb.report(ddf, **BIAS_KW), args.repeat, f"bias, {n_workers} worker(s)"
                )
                Xd = dd.from_pandas(X, npartitions=args.shap_partitions)
                t_shap, sh = best(lambda Xd=Xd: explainer.explain(Xd), args.repeat, f"shap, {n_workers} worker(s)")
                bias_same = want_bias.equals(rep.to_frame())
                shap_same = bool(np.array_equal(sh.values, shap_1p.values))
                shap_diff = float(np.abs(sh.values - shap_1p.values).max())
            finally:
                client.close()
                cluster.close()
            results["runs"][f"dask, {n_workers} worker{'s' if n_workers > 1 else ''}"] = {
                "bias_s": t_bias,
                "shap_s": t_shap,
                "cluster_start_s": start,
                "bias_identical": bias_same,
                "shap_identical": shap_same,
                "shap_max_abs_diff": shap_diff,
                "bias_partitions": ddf.npartitions,
                "shap_partitions": args.shap_partitions,
            }
            print(
                f"dask {n_workers} worker(s): bias {t_bias:.2f} s (identical: {bias_same}), shap {t_shap:.2f} s "
                f"(identical: {shap_same}, max |diff| {shap_diff:.1e}); cluster start {start:.1f} s"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    r = results["runs"]
    one, two, single = r["dask, 1 worker"], r["dask, 2 workers"], r["single process"]
    print()
    print(f"| run | bias {rows:.0e} rows (s) | SHAP {args.shap_rows:,} rows (s) |")
    print("|---|---:|---:|")
    for name, v in r.items():
        print(f"| {name} | {v['bias_s']:.2f} | {v['shap_s']:.2f} |")
    print(
        f"| overhead, dask 1 worker / single process | {one['bias_s'] / single['bias_s']:.2f}x | "
        f"{one['shap_s'] / single['shap_s']:.2f}x |"
    )
    print(f"| speed-up, 2 workers vs 1 | {one['bias_s'] / two['bias_s']:.2f}x | {one['shap_s'] / two['shap_s']:.2f}x |")
    print(
        f"| speed-up, 2 workers vs single process | {single['bias_s'] / two['bias_s']:.2f}x | "
        f"{single['shap_s'] / two['shap_s']:.2f}x |"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
