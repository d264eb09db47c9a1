"""Backgrounds (baselines) for Kernel SHAP: plain rows, or weighted k-means summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clarion.explain._tabular import _NUM, TabularCodec, densify

__all__ = ["Baseline", "kmeans_baseline"]


@dataclass
class Baseline:
    """Background rows with weights (what :func:`kmeans_baseline` returns).

    Attributes
    ----------
    data : ndarray or DataFrame, shape (K, P)
        The background rows, in the same form (and dtypes) as the data they summarise.
    weights : ndarray, shape (K,)
        Non-negative weights summing to 1; the explainer's value function is
        ``v(z) = g(sum_k weights[k] f(h(x, data[k], z)))``.
    """

    data: Any
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.weights)


def kmeans_baseline(X: Any, k: int, *, seed: int = 0, round_values: bool = True) -> Baseline:
    r"""Summarise ``X`` by ``k`` weighted cluster representatives, as Clarify builds a baseline.

    Numeric columns (NaN mean-imputed) are clustered with scikit-learn's ``KMeans(n_clusters=k,
    random_state=seed, n_init=10)``; categorical, string and bool columns join the clustering as
    one-hot indicators scaled by :math:`\gamma = \tfrac12\,\overline{\sigma}_{num}` (the
    k-prototypes weighting). Each representative takes

    * for a numeric column, the cluster mean, snapped to the nearest observed value of the column
      when ``round_values`` (so discrete features keep valid values; as ``shap.kmeans``);
    * for a categorical / string / bool column, the most frequent value in the cluster (ties: the
      value seen first) — never a mean.

    The weights are the cluster sizes over ``N``. For all-numeric data this is exactly
    ``shap.kmeans(X, k)`` (same data and weights when ``seed=0``).

    Parameters
    ----------
    X : ndarray, DataFrame or scipy.sparse matrix, shape (N, P)
        Data to summarise (a sparse matrix is densified; it must fit in 1 GiB dense).
    k : int
        Number of representatives, ``1 <= k <= N``.
    seed : int, default 0
        ``random_state`` of the k-means run.
    round_values : bool, default True
        Snap numeric centres to observed values.

    Returns
    -------
    Baseline
        ``data`` in the form of ``X`` (DataFrame with the original dtypes, or ndarray) and
        ``weights`` summing to 1.
    """
    try:
        from sklearn.cluster import KMeans  # optional dependency
    except ImportError as exc:  # pragma: no cover
        raise ImportError("kmeans_baseline needs scikit-learn (pip install scikit-learn)") from exc
    X = densify(X, "X")
    codec = TabularCodec(X, "X")
    mat = codec.encode(X, "X")
    n, P = mat.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, {n}] (the number of rows of X), got {k!r}")
    kinds = codec.kinds if codec.is_frame else [_NUM] * P
    num = [j for j in range(P) if kinds[j] == _NUM]
    cat = [j for j in range(P) if kinds[j] != _NUM]
    parts = []
    numeric = mat[:, num].astype(np.float64)
    if num:
        with np.errstate(invalid="ignore"):
            means = np.array([np.mean(col[~np.isnan(col)]) if (~np.isnan(col)).any() else 0.0 for col in numeric.T])
        numeric = np.where(np.isnan(numeric), means[None, :], numeric)
        parts.append(numeric)
    if cat:
        gamma = 0.5 * float(np.mean(numeric.std(axis=0))) if num else 1.0
        gamma = gamma if gamma > 0 else 1.0
        for j in cat:
            codes = mat[:, j].astype(np.int64)
            values = np.unique(codes)
            parts.append(gamma * (codes[:, None] == values[None, :]).astype(np.float64))
    feats = np.hstack(parts)
    km = KMeans(n_clusters=int(k), random_state=seed, n_init=10).fit(feats)
    labels = km.labels_
    centres = np.empty((k, P), dtype=np.float64)
    if num:
        c_num = km.cluster_centers_[:, : len(num)].copy()
        if round_values:
            for i in range(k):  # k x P nearest-value lookups (shap.kmeans does the same)
                idx = np.argmin(np.abs(numeric - c_num[i][None, :]), axis=0)
                c_num[i] = numeric[idx, np.arange(len(num))]
        centres[:, num] = c_num
    for j in cat:
        codes = mat[:, j].astype(np.int64)
        for i in range(k):
            members = codes[labels == i]
            vals, first, counts = np.unique(members, return_index=True, return_counts=True)
            best = np.lexsort((first, -counts))[0]  # most frequent, then first seen
            centres[i, j] = vals[best]
    weights = np.bincount(labels, minlength=k).astype(np.float64)
    weights /= weights.sum()
    data = codec.decode(centres if codec.is_frame else centres.astype(codec.dtype))
    if codec.is_frame:
        data.index = pd.RangeIndex(k)
    return Baseline(data=data, weights=weights)
