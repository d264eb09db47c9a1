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
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DriftResult", "attribution_drift", "bias_drift", "ndcg"]

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
    base = _bias_entries(_load(baseline, "baseline"))
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
        score: dict[str, Any] = {"stage": stage, "facet": facet, "facet_value": value, "metric_name": metric,
                                 "baseline": base.get(key), "current": raw}
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
            if key not in base:
                score.update(status="unchecked", reason="metric absent from the baseline")
            elif v is None:
                score.update(status="unchecked", reason="current value is null (the metric failed)")
            elif _value(base[key]) is None:
                score.update(status="unchecked", reason="baseline value is null (the metric failed)")
            else:
                b = _value(base[key])
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
