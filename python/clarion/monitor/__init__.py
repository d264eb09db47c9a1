"""Bias drift and feature-attribution drift of an analysis against a baseline analysis.

Both checks read ``analysis.json`` documents (Clarify's or clarion's; a path or a dict) and
return a :class:`DriftResult` whose ``to_dict()`` is Clarify's ``constraint_violations.json``
plus the compared values.

Bias drift has two rules (``rule=``; see ``docs/monitoring.md``). ``"interval"`` (the default of
``clarion monitor``): a violation when the current value's bootstrap interval C, at the per-check
level :func:`interval_confidence` (Bonferroni over the :func:`count_checks` checks, so a run on
unchanged data alarms with probability at most 5%), does not overlap the allowed range A (the
``rules`` bounds, else the baseline's ``ci_low``/``ci_high``, else the baseline value with C widened
by sqrt(2)); :func:`interval_config` sets the analysis up for it. ``"baseline"`` (the library
default, Clarify's constraint check), per stage, facet, facet value and metric present in
``current``:

* ideal value ``I`` from the metric registry (:data:`clarion.bias.METRIC_INFO`: 1 for DI, 0 for
  every other metric); distance ``d(v) = |v - I|``;
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

from clarion.monitor.documents import (
    MAX_ANALYSIS_DEPTH,
    METRIC_STRINGS,
    MSG_ANALYSIS,
    AnalysisError,
    load_analysis,
    load_json,
    load_violations,
)
from clarion.monitor.drift import (
    ALPHA,
    RULES,
    DriftResult,
    attribution_drift,
    bias_drift,
    check_analysis,
    check_baseline,
    count_checks,
    explain,
    interval_confidence,
    interval_config,
    interval_replicates,
    ndcg,
)
from clarion.monitor.windows import TABLE_COLUMNS, DriftOverTime, check_windows, drift_over_time

__all__ = [
    "ALPHA",
    "RULES",
    "MAX_ANALYSIS_DEPTH",
    "METRIC_STRINGS",
    "MSG_ANALYSIS",
    "TABLE_COLUMNS",
    "AnalysisError",
    "DriftOverTime",
    "DriftResult",
    "attribution_drift",
    "bias_drift",
    "check_analysis",
    "check_baseline",
    "check_windows",
    "count_checks",
    "explain",
    "interval_config",
    "interval_confidence",
    "interval_replicates",
    "drift_over_time",
    "load_analysis",
    "load_json",
    "load_violations",
    "ndcg",
]
