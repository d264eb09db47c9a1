"""Kernel SHAP estimators: absolute error against exact Shapley values at equal model evaluations.

clarion's ``estimator="cubic"`` (the default), clarion's ``estimator="shap"`` (shap's scheme) and
shap's own ``KernelExplainer`` (``l1_reg=False``, so every feature gets a value, as in Clarify) are
run in the same process on the same rows, background and models: a boosted model (xgboost), a
logistic regression and a small neural network (scikit-learn MLP) trained on the first M features
of scikit-learn's breast cancer data (shipped in the package). Exact values come from clarion's
exact mode (every coalition, M <= 20); for M = 30 the reference is the cubic estimator at a large
budget with another seed (its own standard error is printed: it must be far below the errors
compared). "coalitions" is S, the coalitions evaluated per explained row; each costs K model rows
in every method, so equal S is equal model evaluations. ``num_samples="auto"`` is run at several
tolerances: its coalitions per row (mean) and its error are reported.

    python benchmarks/bench_shap_estimator.py [--quick] [--json out.json] [--plot out.png]

``--operator M`` instead times the building of the cubic operator (with the standard-error terms,
as ``num_samples="auto"`` builds it) at the sizes of auto's rounds for M players: the form
``KernelShap`` takes (``form="auto"``: the dual form or the paired primal form, whichever costs
less) against the generic primal form (a product and a solve on all S rows), in the same run.

    python benchmarks/bench_shap_estimator.py --operator 30
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import numpy as np


def _models(M: int):
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :M]
    idx = np.random.default_rng(0).permutation(len(X))
    X, y = X[idx], y[idx]
    fit = {
        "boosted": xgb.XGBClassifier(n_estimators=100, max_depth=4, learning_rate=0.1, n_jobs=1),
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "mlp": make_pipeline(StandardScaler(), MLPClassifier((32, 16), max_iter=2000, random_state=0)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {k: m.fit(X[:400], y[:400]) for k, m in fit.items()}
    return X, out


def _exact(f, x: np.ndarray, B: np.ndarray, M: int) -> np.ndarray:
    """Exact Shapley values of one row by plain numpy: v(z) for all 2^M coalitions (background
    mean), then phi_j = sum_S |S|! (M-|S|-1)! / M! (v(S + j) - v(S))."""
    from math import factorial

    codes = np.arange(1 << M, dtype=np.int64)
    bits = ((codes[:, None] >> np.arange(M)) & 1).astype(bool)
    v = np.empty(len(codes))
    step = max(1, 1_000_000 // len(B))
    for a in range(0, len(codes), step):
        syn = np.where(bits[a : a + step, None, :], x[None, None, :], B[None, :, :]).reshape(-1, M)
        v[a : a + step] = f(syn).reshape(-1, len(B)).mean(axis=1)
    size = bits.sum(axis=1)
    wt = np.array([factorial(s) * factorial(M - s - 1) / factorial(M) for s in range(M)])
    phi = np.empty(M)
    for j in range(M):
        without = codes[~bits[:, j]]
        phi[j] = np.sum((v[without | (1 << j)] - v[without]) * wt[size[without]])
    return phi


def _err(a: np.ndarray, b: np.ndarray) -> dict:
    e = np.abs(a - b).ravel()
    return {"median": float(np.median(e)), "p90": float(np.quantile(e, 0.9))}


def run(quick: bool = False) -> dict:
    import shap

    from clarion.explain import KernelShap

    K, N = 5, 4
    seeds = (1,) if quick else (1, 2, 3)  # the errors of N rows x M features x seeds are pooled
    cases = {12: [512, 1024, 2072], 20: [1024, 2088, 4096], 30: [1054, 2108, 4096]}
    if quick:
        cases = {12: [512, 2072], 20: [2088]}
    tolerances = [0.05, 0.02, 0.01]
    results = []
    for M, budgets in cases.items():
        X, models = _models(M)
        B, Xe = X[400 : 400 + K], X[450 : 450 + N]
        for name, model in models.items():

            def f(a, model=model):
                return model.predict_proba(a)[:, 1]

            t0 = time.perf_counter()
            if M <= 20:
                ref = np.stack([_exact(f, x, B, M) for x in Xe])
                ref_std = 0.0
            else:
                # a large budget, twice (other seeds): the median |difference| / sqrt(2) estimates
                # the reference's own error
                ref = KernelShap(f, B, num_samples=8192, seed=987).explain(Xe).values
                ref2 = KernelShap(f, B, num_samples=8192, seed=988).explain(Xe).values
                ref_std = float(np.median(np.abs(ref - ref2)) / np.sqrt(2))
                ref = (ref + ref2) / 2
            row = {"M": M, "model": name, "reference_seconds": time.perf_counter() - t0, "reference_std": ref_std}
            row["curves"] = []
            refs = np.concatenate([ref] * len(seeds))
            for S in budgets:
                cubic = np.concatenate([KernelShap(f, B, num_samples=S, seed=s).explain(Xe).values for s in seeds])
                old = np.concatenate(
                    [KernelShap(f, B, num_samples=S, seed=s, estimator="shap").explain(Xe).values for s in seeds]
                )
                sv = []
                for s in seeds:
                    np.random.seed(s)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        v = shap.KernelExplainer(f, B).shap_values(Xe, nsamples=S, l1_reg=False, silent=True)
                    sv.append(np.asarray(v).reshape(N, M))
                sv = np.concatenate(sv)
                row["curves"].append(
                    {
                        "coalitions": S,
                        "cubic": _err(cubic, refs),
                        "clarion_shap": _err(old, refs),
                        "shap_kernelexplainer": _err(sv, refs),
                    }
                )
            row["auto"] = []
            if M <= 20:
                for tol in tolerances:
                    runs = [
                        KernelShap(f, B, num_samples="auto", tolerance=tol, seed=s).explain(Xe, return_std=True)
                        for s in seeds
                    ]
                    vals = np.concatenate([e.values for e in runs])
                    sd = np.concatenate([e.std for e in runs])
                    used = np.concatenate([e.row_samples for e in runs])
                    err = np.abs(vals - refs)
                    spread = (refs.max(axis=1) - refs.min(axis=1))[:, None]
                    row["auto"].append(
                        {
                            "tolerance": tol,
                            "coalitions_mean": float(np.mean(used)),
                            "coalitions_max": int(np.max(used)),
                            "error": _err(vals, refs),
                            # the tolerance bounds (std / spread); the error per row relative to the spread:
                            "err_over_spread_median": float(np.median(err / spread)),
                            "err_over_spread_p90": float(np.quantile(err / spread, 0.9)),
                            "err_over_spread_max": float(np.max(err / spread)),
                            "err_over_std_rms": float(np.sqrt(np.mean((err / np.where(sd > 0, sd, np.inf)) ** 2))),
                        }
                    )
            results.append(row)
            print(json.dumps({k: v for k, v in row.items()}), flush=True)
    return {
        "K": K,
        "N": N,
        "seeds": list(seeds),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "results": results,
    }


def table(doc: dict) -> str:
    lines = [
        "| M | model | coalitions | shap KernelExplainer median / p90 | clarion shap scheme median / p90 "
        "| clarion cubic median / p90 | shap ÷ cubic median / p90 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        for c in r["curves"]:
            s, o, n = c["shap_kernelexplainer"], c["clarion_shap"], c["cubic"]
            lines.append(
                f"| {r['M']} | {r['model']} | {c['coalitions']} | {s['median']:.2e} / {s['p90']:.2e} "
                f"| {o['median']:.2e} / {o['p90']:.2e} | {n['median']:.2e} / {n['p90']:.2e} "
                f"| **{s['median'] / n['median']:.1f}× / {s['p90'] / n['p90']:.1f}×** |"
            )
    lines += [
        "",
        "| M | model | tolerance | coalitions per row: mean (max) | median / p90 error "
        "| error ÷ spread of the row's values: median / p90 / max | rms(error ÷ std) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        for a in r["auto"]:
            lines.append(
                f"| {r['M']} | {r['model']} | {a['tolerance']} | {a['coalitions_mean']:.0f} ({a['coalitions_max']}) "
                f"| {a['error']['median']:.2e} / {a['error']['p90']:.2e} "
                f"| {a['err_over_spread_median']:.4f} / {a['err_over_spread_p90']:.4f} / "
                f"{a['err_over_spread_max']:.4f} | {a['err_over_std_rms']:.2f} |"
            )
    return "\n".join(lines)


def plot(doc: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["results"]
    Ms = sorted({r["M"] for r in rows})
    names = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(len(Ms), len(names), figsize=(4 * len(names), 3 * len(Ms)), squeeze=False)
    for r in rows:
        ax = axes[Ms.index(r["M"])][names.index(r["model"])]
        S = [c["coalitions"] for c in r["curves"]]
        for key, label in (
            ("shap_kernelexplainer", "shap KernelExplainer"),
            ("clarion_shap", 'clarion estimator="shap"'),
            ("cubic", 'clarion estimator="cubic"'),
        ):
            ax.loglog(S, [c[key]["median"] for c in r["curves"]], marker="o", label=label)
        if r["auto"]:
            ax.scatter(
                [a["coalitions_mean"] for a in r["auto"]],
                [a["error"]["median"] for a in r["auto"]],
                marker="x",
                color="k",
                label='num_samples="auto"',
            )
        ax.set_title(f"M = {r['M']}, {r['model']}")
        ax.set_xlabel("coalitions per row (model evaluations / K)")
        ax.set_ylabel("median |error|")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def operator_times(M: int) -> str:
    """Seconds to build the cubic operator with its standard-error terms at auto's round sizes."""
    from clarion.explain import _kernel_shap, _kernels

    Q = M + len(_kernels.cubic_terms(M))
    S = 512
    while S < Q and S < _kernel_shap.AUTO_MAX_SAMPLES:
        S *= 2
    rounds = [S]
    while rounds[-1] < min(_kernel_shap.AUTO_MAX_SAMPLES, 2**M - 2):
        rounds.append(min(2 * rounds[-1], _kernel_shap.AUTO_MAX_SAMPLES, 2**M - 2))
    lines = [
        f"M = {M} (Q = {Q} coefficients)",
        "",
        "| coalitions | generic primal (s) | KernelShap's form | its time (s) | speed-up | max abs diff of L |",
        "|---|---|---|---|---|---|",
    ]
    for S in rounds:
        Z, w, *_ = _kernels.stratified_plan(M, S, seed=0)
        t0 = time.perf_counter()
        Lp, cp = _kernels.cubic_operator(Z, w, hat=True, form="primal", quintic=0.0)[:2]
        tp = time.perf_counter() - t0
        t0 = time.perf_counter()
        La, ca, _status, extra = _kernels.cubic_operator(Z, w, hat=True, form="auto", quintic=0.0)
        ta = time.perf_counter() - t0
        which = "dual" if "R" in extra else "paired" if "Ainv" in extra else "primal"
        diff = float(max(np.abs(La - Lp).max(), np.abs(ca - cp).max()))
        lines.append(f"| {S} | {tp:.1f} | {which} | {ta:.1f} | **{tp / ta:.1f}×** | {diff:.1e} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="M = 12 and 20 only, fewer rows")
    ap.add_argument("--json", help="write the results as JSON")
    ap.add_argument("--plot", help="write the error curves as a PNG (needs matplotlib)")
    ap.add_argument("--from-json", help="only print the table (and plot) of a saved run")
    ap.add_argument("--operator", type=int, metavar="M", help="time the operator build at auto's rounds for M players")
    args = ap.parse_args()
    if args.operator:
        print(operator_times(args.operator))
        return
    if args.from_json:
        with open(args.from_json) as fh:
            doc = json.load(fh)
    else:
        doc = run(args.quick)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(doc, fh, indent=1)
    print(table(doc))
    if args.plot:
        plot(doc, args.plot)


if __name__ == "__main__":
    main()
