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

``--ablation`` prints, for the candidates tried for the cells under 2x (degree-5 weights, the
first-order fit, cubic ridges, cross-fitted regression-adjusted Monte Carlo, a link-space surrogate
per background row, a capped ridge at M = 30), the ratio of clarion's shap scheme's error to theirs
on the same plans (about 10 minutes).

    python benchmarks/bench_shap_estimator.py --ablation

``--permuted`` measures what ``KernelShap`` now does for the cubic estimator (issue 19; the
"clarion cubic" column of the main run is it, with ``_kernels.background_permutations``), in
isolation on game tables: each background row
gets its own design, the plan's coalitions with the players relabelled by a seeded permutation
(background row 0 keeps the plan). The operator of a relabelled plan is the plan's operator with
its rows relabelled (the cubic span is closed under relabelling; checked to 1e-16 here), so no
operator is built again and the model evaluations are the same; with the identity link the
attributions are ``sum_k pi_k (L_k (y_k - f(b_k)) + c_k (f(x) - f(b_k)))``, efficiency exact.
Prints the ratio of clarion's shap scheme's error to the shared design's and to the relabelled
designs' (M = 12 and 20, exact values, 8 rows x 4 seeds, K = 5).

    python benchmarks/bench_shap_estimator.py --permuted
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


# -- ablations (issue 19): the candidates tried for the cells under 2x, as operators on game tables --


def _table(f, x: np.ndarray, B: np.ndarray, M: int, per_background: bool = False) -> np.ndarray:
    """v(z) for all 2^M coalitions (bit i of the index = player i): the background mean, or
    (per_background) each background row's output, [2^M, K]."""
    codes = np.arange(1 << M, dtype=np.int64)
    out = np.empty((len(codes), len(B)))
    step = max(1, 1_000_000 // len(B))
    for a in range(0, len(codes), step):
        bits = ((codes[a : a + step, None] >> np.arange(M)) & 1).astype(bool)
        syn = np.where(bits[:, None, :], x[None, None, :], B[None, :, :]).reshape(-1, M)
        out[a : a + step] = f(syn).reshape(-1, len(B))
    return out if per_background else out.mean(axis=1)


def _exact_from_table(v: np.ndarray, M: int) -> np.ndarray:
    from math import factorial

    codes = np.arange(1 << M, dtype=np.int64)
    size = ((codes[:, None] >> np.arange(M)) & 1).sum(axis=1)
    wt = np.array([factorial(s) * factorial(M - s - 1) / factorial(M) for s in range(M)])
    phi = np.empty(M)
    for j in range(M):
        without = codes[((codes >> j) & 1) == 0]
        phi[j] = np.sum((v[without | (1 << j)] - v[without]) * wt[size[without]])
    return phi


def _msr_contrast(Z: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """C [M, S]: the stratified (per coalition size k) unbiased estimate of a game's Shapley values
    minus Delta / M from the selected coalitions: mean over size k of v(T) (1[i in T]/k - 1[i not
    in T]/(M - k))."""
    S, M = Z.shape
    size = Z.sum(axis=1).astype(int)
    C = np.zeros((M, S))
    for k in range(1, M):
        idx = np.flatnonzero(sel & (size == k))
        if len(idx):
            z = Z[idx].astype(np.float64)
            C[:, idx] = (z / k - (1 - z) / (M - k)).T / len(idx)
    return C


def _cubic_features(Z: np.ndarray) -> np.ndarray:
    from clarion.explain import _kernels

    trip = _kernels.cubic_terms(Z.shape[1])
    x = 2.0 * Z - 1.0
    return np.hstack([Z.astype(np.float64), (x[:, trip[:, 0]] * x[:, trip[:, 1]] * x[:, trip[:, 2]] + 1.0) / 2.0])


def _crossfit_operator(Z, w, stratum, n_p, N_p):
    """Regression-adjusted Monte Carlo, 2-fold cross-fitted: the cubic surrogate fitted on one half
    of each sampled stratum's pairs (enumerated strata in both), the residual game's Shapley values
    estimated by the stratified contrast on the other half; swapped and averaged. (L, c)."""
    from clarion.explain import _kernels

    S, M = Z.shape
    enum = np.zeros(S, bool)
    rank = np.zeros(S, int)
    for p in range(1, len(n_p)):
        enum[stratum == p] = n_p[p] >= N_p[p]
        idx = np.flatnonzero(stratum[0::2] == p)
        rank[2 * idx] = rank[2 * idx + 1] = np.arange(len(idx))
    fold = rank % 2
    X = _cubic_features(Z)
    L, c = np.zeros((M, S)), np.zeros(M)
    for f in (0, 1):
        fit = (fold == f) | enum
        wf = np.zeros(S)
        for p in range(1, len(n_p)):
            m = fit & (stratum == p)
            if m.any():
                wf[m] = w[stratum == p].sum() / m.sum()
        Lf, cf, _, ex = _kernels.cubic_operator(Z[fit], wf[fit], hat=True, form="primal", quintic=0.0)
        G = np.zeros((S, S))
        G[:, fit] = X @ ex["Theta"]
        C = _msr_contrast(Z, (fold != f) | enum)
        Lfull = np.zeros((M, S))
        Lfull[:, fit] = Lf
        L += 0.5 * (Lfull + C @ (np.eye(S) - G))
        c += 0.5 * (cf - C @ (X @ ex["ctheta"]))
    return L, c


def _ratios(ests: dict, ref: np.ndarray) -> str:
    base = _err(np.concatenate(ests.pop("shap scheme")), ref)
    out = []
    for k, v in ests.items():
        e = _err(np.concatenate(v), ref)
        if e["p90"] < 1e-12:  # e.g. the logit surrogate of a logistic model: exact to rounding
            out.append(f"{k} exact (p90 error {e['p90']:.0e})")
        else:
            out.append(f"{k} {base['median'] / e['median']:.2f}/{base['p90'] / e['p90']:.2f}")
    return " | ".join(out)


def ablation() -> None:
    """Ratios (clarion's shap scheme ÷ candidate, median / p90; same plans, exact values) of the
    candidates tried for the cells under 2x. M = 12: 16 rows x 5 seeds; M = 20: 6 rows x 3 seeds
    (exact values by enumeration); M = 30: 8 rows x 3 seeds against the mean of two 16384-coalition
    cubic runs. Prints one line per (M, model, coalitions)."""
    from math import comb

    from clarion.explain import KernelShap, _kernels

    def lg(p):
        p = np.clip(p, 1e-15, 1 - 1e-15)
        return np.log(p / (1 - p))

    K = 5
    for M, N, seeds, budgets in ((12, 16, range(1, 6), (512, 1024, 2072)), (20, 6, range(1, 4), (1024, 2088))):
        X, models = _models(M)
        B, Xe = X[400 : 400 + K], X[450 : 450 + N]
        codes = np.arange(1 << M)
        Zall = ((codes[:, None] >> np.arange(M)) & 1).astype(np.uint8)
        for name, model in models.items():

            def f(a, model=model):
                return model.predict_proba(a)[:, 1]

            Vk = np.stack([_table(f, x, B, M, per_background=True) for x in Xe]) if M == 12 else None
            V = Vk.mean(axis=2) if Vk is not None else np.stack([_table(f, x, B, M) for x in Xe])
            ref = np.stack([_exact_from_table(v, M) for v in V])
            Xall = _cubic_features(Zall) if M == 12 else None
            for S in budgets:
                ests: dict = {}
                for seed in seeds:
                    Zs, ws, _ = _kernels.coalition_plan("numpy", M, S, seed, True)
                    Ls, cs, _ = _kernels.wls_operator("numpy", Zs, ws)
                    idx = (Zs.astype(np.int64) << np.arange(M)).sum(axis=1)
                    ests.setdefault("shap scheme", []).append(
                        (V[:, idx] - V[:, :1]) @ Ls.T + np.outer(V[:, -1] - V[:, 0], cs)
                    )
                    Z, w, st, n_p, N_p = _kernels.stratified_plan(M, S, seed)
                    idx = (Z.astype(np.int64) << np.arange(M)).sum(axis=1)
                    y, d = V[:, idx] - V[:, :1], V[:, -1] - V[:, 0]
                    ridge = _kernels.CUBIC_RIDGE * (M + comb(M, 3)) / (S / 2)
                    cands = {"cubic": {"quintic": 0.0}, "linear": None}
                    for kappa in (0.05, 0.12, 0.3):
                        cands[f"quintic k={kappa}"] = {"quintic": kappa * comb(M, 3) / comb(M, 5)}
                    if M == 20:
                        for m in (0.25, 0.5, 2.0, 4.0):
                            cands[f"cubic ridge x{m}"] = {"quintic": 0.0, "ridge": ridge * m}
                    for key, kw in cands.items():
                        if kw is None:
                            L, c, _ = _kernels.wls_operator("numpy", Z, w)
                        else:
                            L, c = _kernels.cubic_operator(Z, w, **kw)[:2]
                        ests.setdefault(key, []).append(y @ L.T + np.outer(d, c))
                    if M == 12:
                        L, c = _crossfit_operator(Z, w, st, n_p, N_p)
                        ests.setdefault("cross-fitted RA-MC", []).append(y @ L.T + np.outer(d, c))
                        # link space, per background row: cubic fit of logit f(S, b_k), the Shapley
                        # values of mean_k sigmoid(g_k) by enumeration, plus the cubic estimate of the residual
                        Lc, cc, _, ex = _kernels.cubic_operator(Z, w, hat=True, form="primal", quintic=0.0)
                        out = []
                        for n in range(N):
                            g = np.zeros(1 << M)
                            for k in range(K):
                                lk = lg(Vk[n, :, k])
                                theta = ex["Theta"] @ (lk[idx] - lk[0]) + ex["ctheta"] * (lk[-1] - lk[0])
                                g += 1 / (1 + np.exp(-(lk[0] + Xall @ theta))) / K
                            r = V[n, idx] - g[idx]
                            out.append(_exact_from_table(g, M) + Lc @ r + cc * ((V[n, -1] - g[-1]) - (V[n, 0] - g[0])))
                        ests.setdefault("logit per background", []).append(np.array(out))
                print(f"M = {M} {name} S = {S}: " + _ratios(ests, np.concatenate([ref] * len(seeds))), flush=True)
    M, N, seeds = 30, 8, range(1, 4)
    X, models = _models(M)
    B, Xe = X[400 : 400 + K], X[450 : 450 + N]
    for name, model in models.items():

        def f(a, model=model):
            return model.predict_proba(a)[:, 1]

        def values(Z):
            syn = np.where(Z[None, :, None, :].astype(bool), Xe[:, None, None, :], B[None, None]).reshape(-1, M)
            v = f(syn).reshape(N, len(Z), K).mean(axis=2)
            return v - f(B).mean(), f(Xe) - f(B).mean()

        refs = [KernelShap(f, B, num_samples=16384, seed=s).explain(Xe).values for s in (987, 988)]
        ref = (refs[0] + refs[1]) / 2
        for S in (1054, 2108):
            ests = {}
            for seed in seeds:
                Zs, ws, _ = _kernels.coalition_plan("numpy", M, S, seed, True)
                Ls, cs, _ = _kernels.wls_operator("numpy", Zs, ws)
                y, d = values(Zs)
                ests.setdefault("shap scheme", []).append(y @ Ls.T + np.outer(d, cs))
                Z, w, *_ = _kernels.stratified_plan(M, S, seed)
                y, d = values(Z)
                ridge = _kernels.CUBIC_RIDGE * (M + comb(M, 3)) / (S / 2)
                for key, kw in (
                    ("cubic", {"quintic": 0.0}),
                    ("quintic (default)", {}),
                    ("quintic, ridge capped at 0.1", {"ridge": min(ridge, 0.1)}),
                ):
                    L, c = _kernels.cubic_operator(Z, w, **kw)[:2]
                    ests.setdefault(key, []).append(y @ L.T + np.outer(d, c))
            print(f"M = 30 {name} S = {S}: " + _ratios(ests, np.concatenate([ref] * len(seeds))), flush=True)


def permuted() -> None:
    """Shared design against one relabelled design per background row (see the module docstring)."""
    from clarion.explain import _kernels

    K, N, seeds = 5, 8, range(1, 5)
    for M, budgets in ((12, (512, 1024, 2072)), (20, (1024, 2088))):
        X, models = _models(M)
        B, Xe = X[400 : 400 + K], X[450 : 450 + N]
        for name, model in models.items():
            if M == 20 and name == "logistic":
                continue  # at 2^20 coalitions per row: the two models with cells under 2x

            def f(a, model=model):
                return model.predict_proba(a)[:, 1]

            Vk = np.stack([_table(f, x, B, M, per_background=True) for x in Xe])  # [N, 2^M, K]
            V = Vk.mean(axis=2)
            ref = np.concatenate([np.stack([_exact_from_table(v, M) for v in V])] * len(seeds))
            for S in budgets:
                ests: dict = {}
                for seed in seeds:
                    Zs, ws, _ = _kernels.coalition_plan("numpy", M, S, seed, True)
                    Ls, cs, _ = _kernels.wls_operator("numpy", Zs, ws)
                    idx = (Zs.astype(np.int64) << np.arange(M)).sum(axis=1)
                    ests.setdefault("shap scheme", []).append(
                        (V[:, idx] - V[:, :1]) @ Ls.T + np.outer(V[:, -1] - V[:, 0], cs)
                    )
                    Z, w, *_ = _kernels.stratified_plan(M, S, seed)
                    L, c = _kernels.cubic_operator(Z, w)[:2]
                    idx = (Z.astype(np.int64) << np.arange(M)).sum(axis=1)
                    ests.setdefault("shared design", []).append(
                        (V[:, idx] - V[:, :1]) @ L.T + np.outer(V[:, -1] - V[:, 0], c)
                    )
                    rng, acc = np.random.default_rng(seed), 0.0
                    for k in range(K):
                        perm = np.arange(M) if k == 0 else rng.permutation(M)
                        idx = (Z[:, perm].astype(np.int64) << np.arange(M)).sum(axis=1)
                        vk = Vk[:, :, k]
                        acc = acc + ((vk[:, idx] - vk[:, :1]) @ L[perm].T + np.outer(vk[:, -1] - vk[:, 0], c[perm])) / K
                    ests.setdefault("relabelled per background", []).append(acc)
                print(f"M = {M} {name} S = {S}: " + _ratios(ests, ref), flush=True)


def relabel_cost() -> None:
    """Time of ``KernelShap.explain`` with the relabelled designs against the shared design on the
    same explainer (its ``_relabel`` switched off), and the bare model on the same S K N + N rows,
    interleaved, best of 3 (M = 20, K = 50, S = 2048, N = 20 rows, one thread)."""
    from clarion.explain import KernelShap

    M, K, S, N = 20, 50, 2048, 20
    X, models = _models(M)
    B, Xe = X[400 : 400 + K], X[450 : 450 + N]
    rows = np.repeat(Xe, S * K // 4, axis=0)  # the same number of synthetic rows, built beforehand
    print("| model | bare model (s) | shared design (s) | relabelled designs (s) | relabelled / shared |")
    print("|---|---|---|---|---|")
    for name, model in models.items():

        def f(a, model=model):
            return model.predict_proba(a)[:, 1]

        ks = KernelShap(f, B, num_samples=S, seed=1, n_threads=1)
        best = {"bare": np.inf, "shared": np.inf, "relabelled": np.inf}
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(4):
                f(rows)
            f(Xe)
            best["bare"] = min(best["bare"], time.perf_counter() - t0)
            for key, flag in (("shared", False), ("relabelled", True)):
                ks._relabel = flag
                t0 = time.perf_counter()
                ks.explain(Xe)
                best[key] = min(best[key], time.perf_counter() - t0)
        print(
            f"| {name} | {best['bare']:.2f} | {best['shared']:.2f} | {best['relabelled']:.2f} "
            f"| {best['relabelled'] / best['shared']:.2f} |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="M = 12 and 20 only, fewer rows")
    ap.add_argument("--json", help="write the results as JSON")
    ap.add_argument("--plot", help="write the error curves as a PNG (needs matplotlib)")
    ap.add_argument("--from-json", help="only print the table (and plot) of a saved run")
    ap.add_argument("--operator", type=int, metavar="M", help="time the operator build at auto's rounds for M players")
    ap.add_argument("--ablation", action="store_true", help="the candidates tried for the cells under 2x")
    ap.add_argument("--relabel-cost", action="store_true", help="time of the relabelled designs against the shared one")
    ap.add_argument(
        "--permuted", action="store_true", help="a relabelled design per background row, against the shared design"
    )
    args = ap.parse_args()
    if args.relabel_cost:
        relabel_cost()
        return
    if args.permuted:
        permuted()
        return
    if args.ablation:
        ablation()
        return
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
