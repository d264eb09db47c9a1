"""Drift over time: per-window drift of new data (or of per-window analyses) against a baseline."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clarion.monitor.documents import _load
from clarion.monitor.drift import (
    DriftResult,
    _has_shap,
    _shap_blocks,
    _value,
    check_analysis,
    check_baseline,
)

#: columns of :attr:`DriftOverTime.table`
TABLE_COLUMNS = ("window", "n_rows", "check", "stage", "facet", "facet_value", "metric", "value", "baseline", "status")


@dataclass
class DriftOverTime:
    """Per-window drift of new data against a baseline (see :func:`drift_over_time`).

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy, one row per (window, compared value), columns :data:`TABLE_COLUMNS`:

        * bias rows: ``check="bias_drift_check"``, ``stage`` = ``pre_training_bias_metrics`` or
          ``post_training_bias_metrics``, ``facet``, ``facet_value``, ``metric`` (e.g. ``DPPL``),
          ``value`` and ``baseline`` as floats (``±inf`` kept, a failed metric NaN), ``status``
          ``ok`` / ``violation`` / ``unchecked``;
        * attribution rows: ``check="feature_attribution_drift_check"``, ``stage="kernel_shap"``,
          ``facet`` = the explained output (``label0``…), then one row per feature
          (``facet_value`` = feature, ``metric="global_shap_value"``, ``status`` empty: features are
          not checked one by one) and one row ``metric="NDCG"`` (``value`` = NDCG against the
          baseline, ``baseline`` = 1.0, the baseline's own NDCG; ``status`` from the threshold).

        ``window`` is the window start (``Timestamp``), ``n_rows`` the rows in the window.
    results : dict of str to DriftResult
        Window start (ISO string) -> the checks of that window.
    windows : dict of str to dict
        Window start -> the window's ``analysis.json``-shaped document.
    overall : DriftResult or None
        The checks of all the new rows together (when the analysis ran here).
    analysis : dict or None
        The ``analysis.json`` document of all the new rows (when the analysis ran here).
    output : clarion.analysis.AnalysisResult or None
        What the analysis wrote (paths, row counts), when it ran here (without ``output_dir`` its
        paths pointed into a temporary folder that no longer exists).
    n_rows : dict of str to int
        Window start -> rows in the window (when known).
    window : str or None
        The window frequency (``"1D"``, ``"ME"``…) when known.
    """

    table: Any
    results: dict[str, DriftResult]
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)
    overall: DriftResult | None = None
    analysis: dict[str, Any] | None = None
    output: Any = None
    n_rows: dict[str, int] = field(default_factory=dict)
    window: str | None = None

    @property
    def ok(self) -> bool:
        """No violation in any window nor overall."""
        return all(r.ok for r in self.results.values()) and (self.overall is None or self.overall.ok)

    @property
    def flagged(self) -> list[str]:
        """Window starts (ISO, in time order) with at least one violation."""
        return [w for w in sorted(self.results) if not self.results[w].ok]

    def to_dict(self) -> dict[str, Any]:
        """Clarify's ``constraint_violations.json`` for all of it: the overall violations as Clarify
        writes them, then each window's violations with an extra ``"window"`` key; plus
        ``scores`` (overall), ``window_scores`` (window -> scores) and, when known, ``window`` (the
        frequency). :func:`load_violations` reads it back."""
        violations = list(self.overall.violations) if self.overall is not None else []
        for w in sorted(self.results):
            violations += [{**v, "window": w} for v in self.results[w].violations]
        out = {
            "version": "1.0",
            "violations": violations,
            "scores": list(self.overall.scores) if self.overall is not None else [],
            "window_scores": {w: self.results[w].scores for w in sorted(self.results)},
        }
        if self.window is not None:
            out["window"] = self.window
        return out


def _float(v: Any) -> float:
    f = _value(v)
    return math.nan if f is None else f


def check_windows(
    baseline: Any,
    windows: dict[str, Any],
    *,
    rules: dict[str, dict[str, float]] | None = None,
    threshold: float = 0.9,
    rule: str = "baseline",
    confidence: float | None = None,
    n_rows: dict[str, int] | None = None,
) -> DriftOverTime:
    """Check each window's analysis against the baseline and gather the tidy table.

    Parameters
    ----------
    baseline : str, path or dict
        The baseline ``analysis.json`` (Clarify's or clarion's).
    windows : dict
        Window start (an ISO timestamp string) -> that window's ``analysis.json`` document (or path).
    rules, threshold, rule, confidence
        As in :func:`bias_drift` and :func:`attribution_drift` (``rule``: ``"baseline"`` or ``"interval"``).
    n_rows : dict, optional
        Window start -> number of rows (goes into the table).

    Returns
    -------
    DriftOverTime
        With ``overall`` and ``analysis`` left ``None``.
    """
    import pandas as pd

    base = _load(baseline, "baseline")
    base_shap = _shap_blocks(base, "baseline") if _has_shap(base) else {}
    rows: list[tuple] = []
    results: dict[str, DriftResult] = {}
    docs: dict[str, dict[str, Any]] = {}
    for w in sorted(windows):
        doc = _load(windows[w], f"windows[{w!r}]")
        docs[w] = doc
        try:
            start = pd.Timestamp(w)
        except ValueError:
            raise ValueError(f"windows: key {w!r} is not a timestamp (the window start)") from None
        n = None if n_rows is None else n_rows.get(w)
        r = check_analysis(base, doc, rules=rules, threshold=threshold, rule=rule, confidence=confidence)
        results[w] = r
        for s in r.scores:
            if "stage" in s:
                rows.append(
                    (
                        start,
                        n,
                        "bias_drift_check",
                        s["stage"],
                        s["facet"],
                        s["facet_value"],
                        s["metric_name"],
                        _float(s["current"]),
                        _float(s["baseline"]),
                        s["status"],
                    )
                )
        if _has_shap(doc):
            for label, values in _shap_blocks(doc, f"windows[{w!r}]").items():
                bvals = base_shap.get(label, {})
                for f, v in values.items():
                    rows.append(
                        (
                            start,
                            n,
                            "feature_attribution_drift_check",
                            "kernel_shap",
                            label,
                            f,
                            "global_shap_value",
                            float(v),
                            float(bvals[f]) if f in bvals else math.nan,
                            None,
                        )
                    )
                sc = next(s for s in r.scores if s.get("label") == label and "ndcg" in s)
                rows.append(
                    (
                        start,
                        n,
                        "feature_attribution_drift_check",
                        "kernel_shap",
                        label,
                        None,
                        "NDCG",
                        math.nan if sc["ndcg"] is None else float(sc["ndcg"]),
                        1.0,
                        sc["status"],
                    )
                )
    table = pd.DataFrame.from_records(rows, columns=list(TABLE_COLUMNS))
    table["window"] = pd.to_datetime(table["window"])
    table["n_rows"] = table["n_rows"].astype("Int64")
    for c in ("value", "baseline"):
        table[c] = table[c].astype(np.float64)
    return DriftOverTime(table, results, docs, n_rows=dict(n_rows or {}))


def drift_over_time(
    baseline: Any,
    config: Any,
    data: Any,
    *,
    time_column: str,
    window: str,
    model: Any = None,
    output_dir: str | os.PathLike | None = None,
    rules: dict[str, dict[str, float]] | None = None,
    threshold: float = 0.9,
    rule: str = "baseline",
    confidence: float | None = None,
    progress: bool = False,
    overwrite: bool = False,
    **analyze_kw: Any,
) -> DriftOverTime:
    """Analyse new data once, cut into time windows, and check every window against a baseline.

    One read of ``data`` gives the whole-data analysis (what :func:`clarion.analyze` writes) and,
    per window, the bias metrics (the window is one more group axis of the bias count tensor:
    :class:`clarion.bias.Accumulator` with ``window``) and the global SHAP values (the config's
    ``agg_method`` applied to the local attributions of the window's rows). Each window, and the
    whole data, is then checked with :func:`bias_drift` and :func:`attribution_drift`.

    Parameters
    ----------
    baseline : str, path or dict
        The baseline ``analysis.json`` (e.g. written by ``clarion analyze`` on the training or
        validation data, or by a SageMaker Clarify job).
    config : path, dict or AnalysisConfig
        The analysis config (as for :func:`clarion.analyze`).
    data : path or pandas.DataFrame
        The new data, with a timestamp column.
    time_column : str
        The timestamp column; never used as a model feature (it is added to ``excluded_columns``).
    window : str
        A pandas frequency: a fixed length (``"1D"``, ``"6h"``, ``"7D"``: a row belongs to the window
        that starts at its time floored to it) or a calendar period of one unit (``"ME"``/``"MS"``,
        ``"W"``, ``"QS"``…: the period that contains the row's day, binned as ``pandas`` resample
        bins it); windows are named by their start. See ``docs/monitoring.md``.
    model : optional
        As for :func:`clarion.analyze`.
    output_dir : path, optional
        Where the analysis files go (as for :func:`clarion.analyze`); a temporary directory,
        removed afterwards, when omitted.
    rules, threshold, rule, confidence
        As in :func:`bias_drift` and :func:`attribution_drift` (``rule``: ``"baseline"`` or ``"interval"``).
    progress, overwrite, **analyze_kw
        Passed to the analysis (``skip_bad_rows``, ``chunk_rows``, ``memory_budget``).

    Returns
    -------
    DriftOverTime
        ``table``, per-window ``results`` and documents, ``overall`` checks and ``analysis``.

    Notes
    -----
    FlipTest needs the rows, not counts, so it is in the whole-data analysis only, not per window.
    Per-window metrics of a window where a facet group has no rows are undefined (NaN with a
    reason) and reported as ``unchecked``, never as a pass.
    """
    import tempfile

    from clarion.job.api import analyze_windowed

    base = _load(baseline, "baseline")
    check_baseline(base, config)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")

    def go(out: str | os.PathLike) -> DriftOverTime:
        w = analyze_windowed(
            config,
            data,
            time_column=time_column,
            window=window,
            model=model,
            output_dir=out,
            progress=progress,
            overwrite=overwrite,
            **analyze_kw,
        )
        res = check_windows(
            base, w.windows, rules=rules, threshold=threshold, rule=rule, confidence=confidence, n_rows=w.n_rows
        )
        res.window = window
        res.analysis = w.result.analysis
        res.overall = check_analysis(
            base, w.result.analysis, rules=rules, threshold=threshold, rule=rule, confidence=confidence
        )
        res.output = w.result
        return res

    if output_dir is not None:
        return go(output_dir)
    with tempfile.TemporaryDirectory(prefix="clarion-monitor-") as tmp:
        return go(tmp)
