"""Bias drift and feature-attribution drift of an analysis against a baseline analysis.

Both checks read ``analysis.json`` documents (Clarify's or clarion's; a path or a dict) and
return a :class:`DriftResult` whose ``to_dict()`` is Clarify's ``constraint_violations.json``
plus the compared values.

Bias drift rule (per stage, facet, facet value and metric present in ``current``):

* ideal value ``I`` = 1 for DI, 0 for every other metric; distance ``d(v) = |v - I|``;
* a violation when ``d(current) > d(baseline)`` (the disparity moved away from the ideal);
  ``±Infinity`` has distance ``inf``, so a finite baseline and an infinite current violates, and
  two infinite values do not (neither is farther);
* ``rules={"DPPL": {"lower": -0.1, "upper": 0.1}, ...}`` replaces that rule for the named metrics
  with absolute bounds (a violation when the current value is outside ``[lower, upper]``);
* a metric whose current or baseline value is ``null`` (failed/undefined) or absent from the
  baseline cannot be checked: it is listed in ``scores`` with ``status = "unchecked"`` and a
  reason, and is never reported as a violation nor silently as a pass.

Attribution drift: per label, NDCG between baseline and current global SHAP values (below); a
violation when NDCG < ``threshold`` (default 0.9).

Drift over time: :func:`drift_over_time` runs the analysis of new data once, with the rows cut into
time windows (a pandas frequency over a timestamp column), and checks every window against the
baseline with the same two rules; :func:`check_windows` does the checking part for per-window
``analysis.json`` documents computed elsewhere. Both return a :class:`DriftOverTime` whose
``table`` is the tidy per-window table that ``clarion monitor --window`` writes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TABLE_COLUMNS", "DriftOverTime", "DriftResult", "attribution_drift", "bias_drift", "check_analysis",
           "check_baseline", "check_windows", "drift_over_time", "ndcg"]

STAGES = ("pre_training_bias_metrics", "post_training_bias_metrics")
IDEAL = {"DI": 1.0}  # every other bias metric is ideally 0

MSG_BIAS = "Value {value} does not meet the constraint requirement"
MSG_ATTR = "Feature attribution drift {value} exceeds threshold {threshold}"


@dataclass
class DriftResult:
    """Outcome of a drift check.

    Attributes
    ----------
    ok : bool
        True when there is no violation.
    violations : list of dict
        Clarify-shaped violation records (``constraint_check_type`` = ``bias_drift_check`` or
        ``feature_attribution_drift_check``).
    scores : list of dict
        Every compared value (bias: baseline, current, status; attributions: NDCG per label).
    """

    violations: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        """``{"version": "1.0", "violations": [...], "scores": [...]}`` (Clarify's file plus scores)."""
        return {"version": "1.0", "violations": list(self.violations), "scores": list(self.scores)}

    def __add__(self, other: DriftResult) -> DriftResult:
        return DriftResult(self.violations + other.violations, self.scores + other.scores)


def _load(doc: Any, arg: str) -> dict:
    if isinstance(doc, dict):
        return doc
    try:
        with open(os.fspath(doc), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"{arg}: file not found: {doc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{arg}: {doc} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _value(v: Any) -> float | None:
    """A metric value from analysis.json: number, "Infinity"/"-Infinity", or None (failed)."""
    if v is None:
        return None
    if isinstance(v, str):
        if v in ("Infinity", "+Infinity", "inf"):
            return math.inf
        if v in ("-Infinity", "-inf"):
            return -math.inf
        if v == "NaN":
            return None
        raise ValueError(f"metric value {v!r} is neither a number nor 'Infinity'/'-Infinity'")
    f = float(v)
    return None if math.isnan(f) else f


def _bias_entries(doc: dict) -> dict[tuple[str, str, str, str], Any]:
    out = {}
    for stage in STAGES:
        section = doc.get(stage)
        if not section:
            continue
        for facet, entries in section.get("facets", {}).items():
            for entry in entries:
                for m in entry.get("metrics", []):
                    out[(stage, facet, str(entry.get("value_or_threshold")), m["name"])] = m.get("value")
    return out


def bias_drift(baseline: Any, current: Any, *, rules: dict[str, dict[str, float]] | None = None) -> DriftResult:
    """Check every bias metric of ``current`` against ``baseline`` (see the module docstring).

    Parameters
    ----------
    baseline, current : str, path or dict
        ``analysis.json`` documents.
    rules : dict, optional
        Per-metric absolute bounds ``{"NAME": {"lower": float, "upper": float}}`` (either bound may
        be omitted) replacing the "farther from ideal than the baseline" rule for that metric.

    Returns
    -------
    DriftResult
    """
    from clarion.bias import entry_key

    # a threshold entry matches on its threshold: "(30, 66]" ~ "(30.0, 70.0]"
    base = {(s, f, entry_key(v), m): x for (s, f, v, m), x in _bias_entries(_load(baseline, "baseline")).items()}
    cur_doc = _load(current, "current")
    cur = _bias_entries(cur_doc)
    if not cur:
        raise ValueError("current: no pre_training_bias_metrics or post_training_bias_metrics to check")
    rules = dict(rules or {})
    for name, r in rules.items():
        if not isinstance(r, dict) or not set(r) <= {"lower", "upper"} or not r:
            raise ValueError(f"rules[{name!r}]: expected {{'lower': x, 'upper': y}}, got {r!r}")
    result = DriftResult()
    for key, raw in cur.items():
        stage, facet, value, metric = key
        bkey = (stage, facet, entry_key(value), metric)
        score: dict[str, Any] = {"stage": stage, "facet": facet, "facet_value": value, "metric_name": metric,
                                 "baseline": base.get(bkey), "current": raw}
        v = _value(raw)
        violated = False
        if metric in rules:
            lo = rules[metric].get("lower", -math.inf)
            hi = rules[metric].get("upper", math.inf)
            score["rule"] = {"lower": lo, "upper": hi}
            if v is None:
                score.update(status="unchecked", reason="current value is null (the metric failed)")
            else:
                violated = not (lo <= v <= hi)
                score["status"] = "violation" if violated else "ok"
        else:
            ideal = IDEAL.get(metric, 0.0)
            if bkey not in base:
                score.update(status="unchecked", reason="metric absent from the baseline")
            elif v is None:
                score.update(status="unchecked", reason="current value is null (the metric failed)")
            elif _value(base[bkey]) is None:
                score.update(status="unchecked", reason="baseline value is null (the metric failed)")
            else:
                b = _value(base[bkey])
                d_cur, d_base = abs(v - ideal), abs(b - ideal)
                violated = d_cur > d_base
                score["status"] = "violation" if violated else "ok"
        result.scores.append(score)
        if violated:
            result.violations.append({
                "facet": facet, "facet_value": value, "metric_name": metric,
                "constraint_check_type": "bias_drift_check",
                "description": MSG_BIAS.format(value=raw),
            })
    return result


def ndcg(baseline: dict[str, float], current: dict[str, float]) -> float:
    r"""Normalised discounted cumulative gain of the current ranking, with baseline relevances.

    .. math::

        \mathrm{NDCG} = \frac{\sum_i a(F'_i) / \log_2(i + 1)}{\sum_i a(F_i) / \log_2(i + 1)}

    where :math:`a(f)` is the baseline attribution of feature f, :math:`F` the features sorted by
    baseline attribution and :math:`F'` sorted by current attribution (descending). Features tied
    in the current attributions share the mean discount of their positions, as
    ``sklearn.metrics.ndcg_score`` does. Attributions are compared by magnitude (``|a|``), so a
    large negative attribution (possible with ``agg_method="median"``) counts as important.
    Returns NaN when every baseline attribution is 0 (no ranking to compare against).
    """
    if set(baseline) != set(current):
        only_b = sorted(set(baseline) - set(current))
        only_c = sorted(set(current) - set(baseline))
        raise ValueError(f"baseline and current explain different features: only in baseline {only_b}, "
                         f"only in current {only_c}")
    names = sorted(baseline)
    a = np.array([abs(float(baseline[n])) for n in names])
    c = np.array([abs(float(current[n])) for n in names])
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(c)):
        raise ValueError("attributions must be finite numbers")
    m = len(names)
    discount = 1.0 / np.log2(np.arange(m) + 2.0)
    ideal = float(np.sum(np.sort(a)[::-1] * discount))
    if ideal == 0.0:
        return math.nan
    # tie-averaged DCG: group features by equal current score, descending
    order = np.argsort(-c, kind="stable")
    cs, gains = c[order], a[order]
    dcg, i = 0.0, 0
    while i < m:
        j = i
        while j + 1 < m and cs[j + 1] == cs[i]:
            j += 1
        dcg += gains[i : j + 1].mean() * discount[i : j + 1].sum()
        i = j + 1
    return dcg / ideal


def _shap_blocks(doc: dict, arg: str) -> dict[str, dict[str, float]]:
    try:
        blocks = doc["explanations"]["kernel_shap"]
    except (KeyError, TypeError):
        raise ValueError(f"{arg}: no explanations.kernel_shap section") from None
    return {label: b["global_shap_values"] for label, b in blocks.items()}


def attribution_drift(baseline: Any, current: Any, *, threshold: float = 0.9) -> DriftResult:
    """Feature-attribution drift per label: :func:`ndcg` of current vs baseline global SHAP values.

    A violation when NDCG < ``threshold`` (Clarify's default 0.9). A label missing from the
    baseline, or an NDCG that is NaN (all-zero baseline), is listed in ``scores`` as unchecked.
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    base = _shap_blocks(_load(baseline, "baseline"), "baseline")
    cur = _shap_blocks(_load(current, "current"), "current")
    result = DriftResult()
    for label, values in cur.items():
        score: dict[str, Any] = {"label": label, "metric_name": "shap", "threshold": threshold}
        if label not in base:
            score.update(ndcg=None, status="unchecked", reason="label absent from the baseline")
        else:
            v = ndcg(base[label], values)
            if math.isnan(v):
                score.update(ndcg=None, status="unchecked", reason="all baseline attributions are 0")
            else:
                score.update(ndcg=v, status="violation" if v < threshold else "ok")
                if v < threshold:
                    result.violations.append({
                        "label": label, "metric_name": "shap",
                        "constraint_check_type": "feature_attribution_drift_check",
                        "description": MSG_ATTR.format(value=v, threshold=threshold),
                    })
        result.scores.append(score)
    return result


# ---- both checks on one document -----------------------------------------------------------------


def _has_bias(doc: dict) -> bool:
    return any(doc.get(s) for s in STAGES)


def _has_shap(doc: dict) -> bool:
    return bool(((doc.get("explanations") or {}).get("kernel_shap")) if isinstance(doc, dict) else False)


def check_analysis(baseline: Any, current: Any, *, rules: dict[str, dict[str, float]] | None = None,
                   threshold: float = 0.9) -> DriftResult:
    """Every check that ``current`` supports: :func:`bias_drift` when it has bias sections,
    :func:`attribution_drift` when it has ``explanations.kernel_shap``; the results added.

    Raises
    ------
    ValueError
        ``current`` has a section the baseline lacks (there is nothing to compare it with), or has
        neither bias metrics nor SHAP values.
    """
    base, cur = _load(baseline, "baseline"), _load(current, "current")
    if not _has_bias(cur) and not _has_shap(cur):
        raise ValueError("current: the analysis has neither bias metrics nor kernel_shap values to check")
    result = DriftResult()
    if _has_bias(cur):
        if not _has_bias(base):
            raise ValueError("baseline: no pre_training_bias_metrics or post_training_bias_metrics, but the "
                             "current analysis has bias metrics to check")
        result = result + bias_drift(base, cur, rules=rules)
    if _has_shap(cur):
        if not _has_shap(base):
            raise ValueError("baseline: no explanations.kernel_shap section, but the current analysis has SHAP "
                             "values to check")
        result = result + attribution_drift(base, cur, threshold=threshold)
    return result


def check_baseline(baseline: Any, config: Any) -> dict[str, Any]:
    """Fail early, before any analysis runs, when the baseline cannot be compared with what ``config``
    computes: bias methods but no bias sections in the baseline, or SHAP but no
    ``explanations.kernel_shap``. Returns the loaded baseline document."""
    from clarion.config import read_config

    base = _load(baseline, "baseline")
    if not isinstance(base, dict):
        raise TypeError(f"baseline: expected a JSON object (an analysis.json), got {type(base).__name__}")
    cfg = read_config(config)
    if (cfg.pre_training_bias or cfg.post_training_bias) and not _has_bias(base):
        raise ValueError("baseline: no pre_training_bias_metrics or post_training_bias_metrics, but the config "
                         "computes bias metrics; baseline with the same config (clarion analyze)")
    if cfg.shap is not None and not _has_shap(base):
        raise ValueError("baseline: no explanations.kernel_shap section, but the config computes SHAP values; "
                         "baseline with the same config (clarion analyze)")
    if not (cfg.pre_training_bias or cfg.post_training_bias or cfg.shap is not None):
        raise ValueError("config: no pre_training_bias, post_training_bias or shap method, so there is no drift "
                         "to check")
    return base


# ---- drift over time -------------------------------------------------------------------------------

#: columns of :attr:`DriftOverTime.table`
TABLE_COLUMNS = ("window", "n_rows", "check", "stage", "facet", "facet_value", "metric", "value", "baseline",
                 "status")


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
    """

    table: Any
    results: dict[str, DriftResult]
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)
    overall: DriftResult | None = None
    analysis: dict[str, Any] | None = None
    output: Any = None
    n_rows: dict[str, int] = field(default_factory=dict)

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
        ``scores`` (overall) and ``window_scores`` (window -> scores)."""
        violations = list(self.overall.violations) if self.overall is not None else []
        for w in sorted(self.results):
            violations += [{**v, "window": w} for v in self.results[w].violations]
        return {"version": "1.0", "violations": violations,
                "scores": list(self.overall.scores) if self.overall is not None else [],
                "window_scores": {w: self.results[w].scores for w in sorted(self.results)}}


def _float(v: Any) -> float:
    f = _value(v)
    return math.nan if f is None else f


def check_windows(baseline: Any, windows: dict[str, Any], *, rules: dict[str, dict[str, float]] | None = None,
                  threshold: float = 0.9, n_rows: dict[str, int] | None = None) -> DriftOverTime:
    """Check each window's analysis against the baseline and gather the tidy table.

    Parameters
    ----------
    baseline : str, path or dict
        The baseline ``analysis.json`` (Clarify's or clarion's).
    windows : dict
        Window start (an ISO timestamp string) -> that window's ``analysis.json`` document (or path).
    rules, threshold
        As in :func:`bias_drift` and :func:`attribution_drift`.
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
        r = check_analysis(base, doc, rules=rules, threshold=threshold)
        results[w] = r
        for s in r.scores:
            if "stage" in s:
                rows.append((start, n, "bias_drift_check", s["stage"], s["facet"], s["facet_value"], s["metric_name"],
                             _float(s["current"]), _float(s["baseline"]), s["status"]))
        if _has_shap(doc):
            for label, values in _shap_blocks(doc, f"windows[{w!r}]").items():
                bvals = base_shap.get(label, {})
                for f, v in values.items():
                    rows.append((start, n, "feature_attribution_drift_check", "kernel_shap", label, f,
                                 "global_shap_value", float(v), float(bvals[f]) if f in bvals else math.nan, None))
                sc = next(s for s in r.scores if s.get("label") == label and "ndcg" in s)
                rows.append((start, n, "feature_attribution_drift_check", "kernel_shap", label, None, "NDCG",
                             math.nan if sc["ndcg"] is None else float(sc["ndcg"]), 1.0, sc["status"]))
    table = pd.DataFrame.from_records(rows, columns=list(TABLE_COLUMNS))
    table["window"] = pd.to_datetime(table["window"])
    table["n_rows"] = table["n_rows"].astype("Int64")
    for c in ("value", "baseline"):
        table[c] = table[c].astype(np.float64)
    return DriftOverTime(table, results, docs, n_rows=dict(n_rows or {}))


def drift_over_time(baseline: Any, config: Any, data: Any, *, time_column: str, window: str, model: Any = None,
                    output_dir: str | os.PathLike | None = None, rules: dict[str, dict[str, float]] | None = None,
                    threshold: float = 0.9, progress: bool = False, overwrite: bool = False,
                    **analyze_kw: Any) -> DriftOverTime:
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
    rules, threshold
        As in :func:`bias_drift` and :func:`attribution_drift`.
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

    from clarion._monitor_job import analyze_windowed

    base = _load(baseline, "baseline")
    check_baseline(base, config)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")

    def go(out: str | os.PathLike) -> DriftOverTime:
        w = analyze_windowed(config, data, time_column=time_column, window=window, model=model, output_dir=out,
                             progress=progress, overwrite=overwrite, **analyze_kw)
        res = check_windows(base, w.windows, rules=rules, threshold=threshold, n_rows=w.n_rows)
        res.analysis = w.result.analysis
        res.overall = check_analysis(base, w.result.analysis, rules=rules, threshold=threshold)
        res.output = w.result
        return res

    if output_dir is not None:
        return go(output_dir)
    with tempfile.TemporaryDirectory(prefix="clarion-monitor-") as tmp:
        return go(tmp)
