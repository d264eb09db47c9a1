"""Matplotlib plots of an :class:`~clarion.explain.Explanation`, in shap's look.

* :func:`bar` — global importance (mean |SHAP value| per feature), largest on top, the rest
  summed in one last bar, each bar labelled with its value;
* :func:`beeswarm` — every row's SHAP value per feature, stacked where points crowd, coloured by
  the feature's value (blue low, red high, grey when not numeric);
* :func:`dependence` — one feature's SHAP value against its value, optionally coloured by another
  feature.

matplotlib is imported only when a plot is drawn (``pip install 'clarion[plot]'``). Each function
draws on ``ax`` (a new figure when None) and returns the Axes. For a model with several outputs,
``output`` chooses one (name or index; default the only one, or the second of two: a binary
classifier's positive class).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BLUE", "RED", "bar", "beeswarm", "dependence"]

#: shap's colours: negative / low (blue) and positive / high (red)
BLUE = "#008bfb"
RED = "#ff0051"

MSG_MATPLOTLIB = "Explanation plots need matplotlib: pip install 'clarion[plot]'"
MSG_OUTPUT = "output: {value!r} is not one of the explanation's outputs {outputs}"
MSG_OUTPUT_NEEDED = "output: the explanation has {d} outputs {outputs}; choose one (output=name or index)"
MSG_FEATURE = "feature: {value!r} is not an explained feature{hint} (features: {features})"
MSG_MAX_DISPLAY = "max_display must be an integer >= 1, got {value!r}"


def _plt() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(MSG_MATPLOTLIB) from exc
    return plt


def _axes(ax: Any, height: float) -> Any:
    if ax is not None:
        return ax
    fig, ax = _plt().subplots(figsize=(7.5, height), layout="constrained")  # labels never cut off
    return ax


def _style(ax: Any) -> None:
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)


def output_values(expl: Any, output: Any = None) -> tuple[np.ndarray, Any]:
    """``(values [N, M], output name)`` of one output of ``expl``."""
    v = np.asarray(expl.values, dtype=np.float64)
    if v.ndim == 2:
        if output not in (None, 0):
            raise ValueError(MSG_OUTPUT.format(value=output, outputs=[0]))
        return v, None
    D = v.shape[2]
    names = list(expl.output_names) if expl.output_names is not None and len(expl.output_names) == D else None
    labels = names if names is not None else list(range(D))
    if output is None:
        if D == 1:
            return v[:, :, 0], labels[0]
        if D == 2:
            return v[:, :, 1], labels[1]
        raise ValueError(MSG_OUTPUT_NEEDED.format(d=D, outputs=labels))
    if names is not None and any(output == n for n in names):
        j = next(i for i, n in enumerate(names) if output == n)
    elif isinstance(output, (int, np.integer)) and not isinstance(output, bool) and 0 <= output < D:
        j = int(output)
    else:
        raise ValueError(MSG_OUTPUT.format(value=output, outputs=labels))
    return v[:, :, j], labels[j]


def feature_column(expl: Any, j: int) -> np.ndarray | None:
    """The explained rows' values of player ``j`` (None for a group of columns or no data)."""
    cols = getattr(expl, "_player_columns", None)
    data = expl.data
    if data is None:
        return None
    if cols is not None:
        if len(cols[j]) != 1:
            return None
        c = cols[j][0]
    else:
        c = j
    if isinstance(data, pd.DataFrame):
        return data.iloc[:, c].to_numpy()
    arr = np.asarray(data)
    if arr.ndim != 2 or c >= arr.shape[1]:
        return None
    return arr[:, c]


def _numeric(x: np.ndarray | None) -> np.ndarray | None:
    if x is None:
        return None
    try:
        f = pd.to_numeric(pd.Series(x), errors="raise").to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return f


def _max_display(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(MSG_MAX_DISPLAY.format(value=k))
    return int(k)


def _order(values: np.ndarray) -> np.ndarray:
    imp = np.abs(values).mean(axis=0) if values.shape[0] else np.zeros(values.shape[1])
    return np.argsort(-imp, kind="stable")


def bar(expl: Any, *, output: Any = None, max_display: int = 10, ax: Any = None) -> Any:
    """Global importance: one bar per feature of length mean_n |φ_nj| (Clarify's ``mean_abs``),
    largest on top; beyond ``max_display - 1`` features the rest are summed in one last bar
    ("Sum of k other features"), as shap's bar plot does."""
    k = _max_display(max_display)
    values, name = output_values(expl, output)
    imp = np.abs(values).mean(axis=0) if values.shape[0] else np.zeros(values.shape[1])
    order = _order(values)
    names = [str(expl.feature_names[i]) for i in order]
    heights = list(imp[order])
    if len(names) > k:
        rest = len(names) - (k - 1)
        names = names[: k - 1] + [f"Sum of {rest} other features"]
        heights = heights[: k - 1] + [float(np.sum(heights[k - 1 :]))]
    ax = _axes(ax, 0.45 * len(names) + 1.2)
    y = np.arange(len(names))[::-1]
    bars = ax.barh(y, heights, color=RED, height=0.7)
    top = max(heights) if heights else 0.0
    for b, h in zip(bars, heights):
        ax.text(b.get_width() + top * 0.01, b.get_y() + b.get_height() / 2, f"+{h:.3g}", va="center", color=RED)
    ax.set_yticks(y, names)
    ax.set_xlabel("mean(|SHAP value|)" + (f" — output {name}" if name is not None else ""))
    ax.set_xlim(0, top * 1.15 if top > 0 else 1.0)
    _style(ax)
    return ax


def _swarm_offsets(x: np.ndarray, width: float = 0.4, n_bins: int = 100) -> np.ndarray:
    """Vertical offsets that stack points sharing an x bin (shap's beeswarm layout): the i-th point
    of a bin goes to alternating sides, ``width`` at the fullest bin."""
    n = x.size
    if n == 0:
        return np.zeros(0)
    span = float(np.ptp(x)) or 1.0
    bins = np.floor((x - x.min()) / span * n_bins).astype(np.int64)
    order = np.argsort(bins, kind="stable")
    counts = np.bincount(bins)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[bins[order]]
    side = np.where(rank % 2 == 0, 1.0, -1.0)
    level = (rank + 1) // 2
    fullest = max(int(counts.max()) // 2, 1)
    return side * level * (width / fullest)


def beeswarm(expl: Any, *, output: Any = None, max_display: int = 10, ax: Any = None) -> Any:
    """Every explained row's SHAP value per feature (one row of points per feature, features by
    mean |SHAP value|, the largest on top), points stacked where they crowd and coloured by the
    feature's value scaled to its 5th–95th percentiles (blue low → red high; grey when the feature
    is not numeric or is a group of columns). Only the top ``max_display`` features are drawn."""
    plt = _plt()
    from matplotlib.colors import LinearSegmentedColormap

    k = _max_display(max_display)
    values, name = output_values(expl, output)
    order = _order(values)[:k]
    cmap = LinearSegmentedColormap.from_list("clarion_shap", [BLUE, RED])
    ax = _axes(ax, 0.5 * len(order) + 1.5)
    mappable = None
    for pos, j in enumerate(order):
        yc = len(order) - 1 - pos
        x = values[:, j]
        y = yc + _swarm_offsets(x)
        fv = _numeric(feature_column(expl, int(j)))
        if fv is None or not np.isfinite(fv).any():
            ax.scatter(x, y, s=12, color="#777777", linewidths=0, alpha=0.8, zorder=3)
            continue
        lo, hi = np.nanpercentile(fv, [5, 95])
        if hi <= lo:
            lo, hi = np.nanmin(fv), np.nanmax(fv)
        c = np.clip((fv - lo) / (hi - lo), 0, 1) if hi > lo else np.full(fv.shape, 0.5)
        mappable = ax.scatter(x, y, s=12, c=c, cmap=cmap, vmin=0, vmax=1, linewidths=0, alpha=0.8, zorder=3)
    ax.axvline(0, color="#999999", lw=1, zorder=1)
    ax.set_yticks(range(len(order))[::-1], [str(expl.feature_names[j]) for j in order])
    ax.set_xlabel("SHAP value (impact on model output)" + (f" — output {name}" if name is not None else ""))
    _style(ax)
    if mappable is not None:
        cb = plt.colorbar(mappable, ax=ax, ticks=[0, 1], aspect=40, fraction=0.04)
        cb.set_ticklabels(["Low", "High"])
        cb.set_label("Feature value")
        cb.outline.set_visible(False)
    return ax


def _feature_index(expl: Any, feature: Any, arg: str = "feature") -> int:
    names = list(expl.feature_names)
    if feature in names:
        return names.index(feature)
    if isinstance(feature, (int, np.integer)) and not isinstance(feature, bool) and 0 <= feature < len(names):
        return int(feature)
    import difflib

    close = difflib.get_close_matches(str(feature), [str(n) for n in names], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(MSG_FEATURE.format(value=feature, hint=hint, features=names).replace("feature:", f"{arg}:", 1))


def dependence(expl: Any, feature: Any, *, output: Any = None, color_by: Any = None, ax: Any = None) -> Any:
    """One feature's SHAP value (y) against the feature's value (x), one point per explained row.
    A non-numeric feature is drawn at one x position per category (labelled ticks, jittered).
    ``color_by``: another feature whose value colours the points (blue low → red high)."""
    plt = _plt()
    from matplotlib.colors import LinearSegmentedColormap

    values, name = output_values(expl, output)
    j = _feature_index(expl, feature)
    raw = feature_column(expl, j)
    if raw is None:
        raise ValueError(f"feature: {expl.feature_names[j]!r} is a group of columns or the rows were not kept")
    y = values[:, j]
    x = _numeric(raw)
    ax = _axes(ax, 4.5)
    cats = None
    if x is None:
        codes, cats = pd.factorize(pd.Series(raw).astype(str), sort=True)
        rng = np.random.default_rng(0)
        x = codes.astype(np.float64) + rng.uniform(-0.15, 0.15, size=codes.size)
    kw: dict[str, Any] = {"s": 14, "linewidths": 0, "alpha": 0.85, "zorder": 3}
    if color_by is not None:
        cj = _feature_index(expl, color_by, "color_by")
        cv = _numeric(feature_column(expl, cj))
        if cv is None:
            codes, _ = pd.factorize(pd.Series(feature_column(expl, cj)).astype(str), sort=True)
            cv = codes.astype(np.float64)
        cmap = LinearSegmentedColormap.from_list("clarion_shap", [BLUE, RED])
        sc = ax.scatter(x, y, c=cv, cmap=cmap, **kw)
        cb = plt.colorbar(sc, ax=ax, aspect=40, fraction=0.04)
        cb.set_label(str(expl.feature_names[cj]))
        cb.outline.set_visible(False)
    else:
        ax.scatter(x, y, color=BLUE, **kw)
    if cats is not None:
        ax.set_xticks(range(len(cats)), [str(c) for c in cats])
    ax.axhline(0, color="#999999", lw=1, zorder=1)
    ax.set_xlabel(str(expl.feature_names[j]))
    ax.set_ylabel(f"SHAP value for {expl.feature_names[j]}" + (f" — output {name}" if name is not None else ""))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax
