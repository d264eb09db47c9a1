"""The explanation steps of a job: SHAP values to Clarify's blocks (global aggregation, base
values), the baseline as a frame, and partial dependence entries."""

from __future__ import annotations

from typing import Any

import numpy as np

from clarion.job.plan import _numeric_dtype


def _values_3d(e: Any, feats: list[str]) -> np.ndarray:
    v = np.asarray(e.values, dtype=np.float64)
    if v.ndim == 2:
        v = v[:, :, None]
    if v.shape[1] != len(feats):  # values for every feature; keep the explained ones
        names = list(e.feature_names)
        v = v[:, [names.index(f) for f in feats], :]
    return v


def _base_rows(e: Any, n: int, d: int) -> np.ndarray:
    """The explanation's expected value as ``(n, d)``: one row per explained row, one column per
    explained output (a global base value, shape () or (d,), is repeated; a per-row one, as with
    ``features_to_explain``, shape (n,) or (n, d), is kept per row)."""
    ev = np.asarray(e.expected_value, dtype=np.float64)
    if ev.ndim == np.ndim(e.values) - 1:  # per row
        return ev.reshape(n, d)
    return np.broadcast_to(ev.reshape(1, d), (n, d))


def _aggregate(v: np.ndarray, agg: str) -> np.ndarray:
    """Clarify's global aggregation over records: mean |φ|, median φ (signed) or mean φ²."""
    if agg == "mean_abs":
        return np.mean(np.abs(v), axis=0)
    if agg == "mean_sq":
        return np.mean(v * v, axis=0)
    return np.median(v, axis=0)


def _baseline_frame(bg: Any, feats: list[str]) -> Any:
    import pandas as pd

    if isinstance(bg, pd.DataFrame):
        return bg
    for attr in ("data", "frame", "centers"):
        v = getattr(bg, attr, None)
        if v is not None:
            return v if isinstance(v, pd.DataFrame) else pd.DataFrame(np.asarray(v), columns=feats)
    if isinstance(bg, tuple):
        return _baseline_frame(bg[0], feats)
    return pd.DataFrame(np.asarray(bg), columns=feats)


def _pdp_entry(pdp: Any, feature: str, col: Any, label_headers: list[str] | None = None) -> dict[str, Any]:
    """Clarify's PdpEntry from clarion's tidy partial_dependence output, with the data distribution
    (share of rows per bucket: the buckets of the grid's centres, i.e. rows nearest each grid value,
    a value on a bucket edge counted in the upper bucket; per category for categorical features) and
    ``label_headers`` naming the lists of ``model_predictions``."""
    import pandas as pd

    df = pdp if isinstance(pdp, pd.DataFrame) else pd.DataFrame(pdp)
    if "feature" in df.columns:
        df = df[df["feature"] == feature]
    value_col = next(c for c in ("value", "grid_value", "feature_value", "x") if c in df.columns)
    pred_col = next(c for c in ("prediction", "average", "mean_prediction", "pdp", "y") if c in df.columns)
    out_col = next((c for c in ("output", "label", "target") if c in df.columns), None)
    grid = list(dict.fromkeys(df[value_col].tolist()))
    if out_col is None:
        preds = [df[pred_col].astype(float).tolist()]
    else:
        preds = [
            g.set_index(value_col).loc[grid, pred_col].astype(float).tolist()
            for _, g in df.groupby(out_col, sort=False)
        ]
    numeric = _numeric_dtype(col)
    vals = col.dropna()
    if numeric:
        g = np.asarray(grid, dtype=np.float64)
        order = np.argsort(g)
        edges = (g[order][1:] + g[order][:-1]) / 2
        idx = np.searchsorted(edges, vals.to_numpy(np.float64), side="right")
        counts = np.bincount(idx, minlength=len(g)).astype(np.float64)
        dist = np.empty(len(g))
        dist[order] = counts
        feature_values = [float(x) for x in g]
    else:
        vc = vals.astype(str).value_counts()
        dist = np.asarray([vc.get(str(x), 0) for x in grid], dtype=np.float64)
        feature_values = [x.item() if hasattr(x, "item") else x for x in grid]
    dist = dist / max(len(vals), 1)
    entry = {
        "feature_name": feature,
        "data_type": "numerical" if numeric else "categorical",
        "feature_values": feature_values,
        "model_predictions": preds,
    }
    if label_headers is not None:
        entry["label_headers"] = [str(h) for h in label_headers]
    entry["data_distribution"] = [float(x) for x in dist]
    return entry
