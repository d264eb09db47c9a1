"""The drift rules: bias drift and feature-attribution drift of an analysis against a baseline
(pure functions of two analysis documents; see :mod:`clarion.monitor`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clarion.monitor.documents import METRIC_STRINGS, STAGES, _load

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


# ---- reading analysis.json ----------------------------------------------------------------------

#: nesting accepted in an analysis document (Clarify's own files nest 9 levels at most)


def _value(v: Any) -> float | None:
    """A metric value from analysis.json: number, "Infinity"/"-Infinity", or None (failed)."""
    if v is None:
        return None
    if isinstance(v, str):
        if v not in METRIC_STRINGS:
            raise ValueError(f"metric value {v!r} is neither a number nor 'Infinity'/'-Infinity'")
        f = METRIC_STRINGS[v]
        return None if math.isnan(f) else f
    f = float(v)
    return None if math.isnan(f) else f


def _bias_entries(doc: dict) -> dict[tuple[str, str, str, str], Any]:
    """``{(stage, facet, facet value, metric): metric record}`` of an analysis document."""
    out = {}
    for stage in STAGES:
        section = doc.get(stage)
        if not section:
            continue
        for facet, entries in section.get("facets", {}).items():
            for entry in entries:
                for m in entry.get("metrics", []):
                    out[(stage, facet, str(entry.get("value_or_threshold")), m["name"])] = m
    return out


#: the bias-drift rules (``rule=`` of :func:`bias_drift`, ``clarion monitor --rule``)
RULES = ("interval", "baseline")
#: the run false-alarm rate the interval rule is built for (``alpha=`` of :func:`bias_drift`)
ALPHA = 0.05


def count_checks(baseline: Any) -> int:
    """The number of bias checks a run against ``baseline`` can make (one per stage, facet, facet
    value and metric with a baseline value): the ``k`` of the interval rule's correction."""
    return max(1, sum(1 for m in _bias_entries(_load(baseline, "baseline")).values() if m.get("value") is not None))


def interval_confidence(n_checks: int, alpha: float = ALPHA) -> float:
    """Per-check confidence level of the interval rule: ``1 - alpha / n_checks`` (Bonferroni), so
    that the chance of any false alarm among ``n_checks`` checks on unchanged data is at most
    ``alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    return 1.0 - alpha / max(int(n_checks), 1)


def interval_replicates(n_checks: int, alpha: float = ALPHA, minimum: int = 1000) -> int:
    """Bootstrap replicates for intervals at :func:`interval_confidence`: at least ``10 / tail``
    per interval end (``tail = alpha / (2 n_checks)``), so each end is the 10th order statistic or
    further in; never fewer than ``minimum``."""
    return int(max(minimum, math.ceil(10.0 / (alpha / (2 * max(int(n_checks), 1))))))


def interval_config(config: Any, baseline: Any, *, alpha: float = ALPHA) -> tuple[Any, float]:
    """``config`` (a path, dict or :class:`~clarion.config.AnalysisConfig`, not modified) with the
    bias stages' bootstrap intervals set for the interval rule against ``baseline``: ``confidence =
    interval_confidence(count_checks(baseline), alpha)`` and at least
    :func:`interval_replicates` replicates. Returns ``(AnalysisConfig, confidence)``; a level the
    config already asks for that is higher is kept."""
    import copy

    from clarion.config import read_config

    cfg = copy.deepcopy(read_config(config))
    k = count_checks(baseline)
    level = interval_confidence(k, alpha)
    for m in (cfg.pre_training_bias, cfg.post_training_bias):
        if m is None:
            continue
        m.confidence = max(level, m.confidence or 0.0)
        m.n_bootstrap = max(m.n_bootstrap, interval_replicates(k, alpha))
    levels = [m.confidence for m in (cfg.pre_training_bias, cfg.post_training_bias) if m is not None]
    return cfg, (min(levels) if levels else level)


def _ci(rec: Any) -> tuple[float, float] | None:
    if not isinstance(rec, dict):
        return None
    lo, hi = _value(rec.get("ci_low")), _value(rec.get("ci_high"))
    if lo is None or hi is None:
        return None
    return (lo, hi)


def bias_drift(
    baseline: Any,
    current: Any,
    *,
    rules: dict[str, dict[str, float]] | None = None,
    rule: str = "baseline",
    confidence: float | None = None,
) -> DriftResult:
    """Check every bias metric of ``current`` against ``baseline`` (see the module docstring).

    Parameters
    ----------
    baseline, current : str, path or dict
        ``analysis.json`` documents.
    rules : dict, optional
        Per-metric absolute bounds ``{"NAME": {"lower": float, "upper": float}}`` (either bound may
        be omitted). With ``rule="baseline"`` they replace the "farther from ideal than the
        baseline" rule for that metric (a violation when the value is outside); with
        ``rule="interval"`` they are the allowed range A of that metric.
    rule : {"baseline", "interval"}
        ``"baseline"``: Clarify's constraint check (a violation when the current value is farther
        from the ideal than the baseline value). ``"interval"``: a violation when the current
        value's bootstrap interval C (``ci_low``/``ci_high`` of ``current``, which must have been
        analysed with ``confidence``) does not overlap the allowed range A (the baseline's
        interval, ``rules`` bounds, or the baseline value with C widened by sqrt(2)); see
        ``docs/monitoring.md``. ``clarion monitor`` uses ``"interval"`` by default.
    confidence : float, optional
        The level of ``current``'s intervals, recorded in each score (``rule="interval"``).

    Returns
    -------
    DriftResult
        Each score carries ``baseline``, ``baseline_interval``, ``current``, ``current_interval``
        (``[low, high]`` or null), ``allowed`` (A, interval rule), ``rule`` and ``status``.
    """
    from clarion.bias import entry_key, ideal_value

    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
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
    for key, rec in cur.items():
        stage, facet, value, metric = key
        raw = rec.get("value")
        bkey = (stage, facet, entry_key(value), metric)
        brec = base.get(bkey)
        c_ci = _ci(rec)
        b_ci = _ci(brec)
        score: dict[str, Any] = {
            "stage": stage,
            "facet": facet,
            "facet_value": value,
            "metric_name": metric,
            "baseline": brec.get("value") if isinstance(brec, dict) else None,
            "baseline_interval": list(b_ci) if b_ci else None,
            "current": raw,
            "current_interval": list(c_ci) if c_ci else None,
        }
        v = _value(raw)
        b = _value(score["baseline"])
        violated = False
        bounds = None
        if metric in rules:
            bounds = (rules[metric].get("lower", -math.inf), rules[metric].get("upper", math.inf))
        if rule == "interval":
            score["rule"] = {"name": "interval", "confidence": confidence}
            allowed = None
            if bounds is not None:
                allowed, source = bounds, "rules"
            elif b is not None and b_ci is not None:
                allowed, source = b_ci, "baseline interval"
            elif b is not None:
                allowed, source = (b, b), "baseline value"
            if v is None:
                score.update(status="unchecked", reason="current value is null (the metric failed)")
            elif allowed is None:
                why = (
                    "metric absent from the baseline" if brec is None else "baseline value is null (the metric failed)"
                )
                score.update(status="unchecked", reason=why)
            elif c_ci is None:
                score.update(
                    status="unchecked",
                    reason="no bootstrap interval for the current value (not analysed with confidence, "
                    "or a resample left the metric undefined)",
                )
            else:
                lo, hi = c_ci
                if source == "baseline value":  # the baseline's own sampling error, taken as the current's
                    lo, hi = v - math.sqrt(2.0) * (v - lo), v + math.sqrt(2.0) * (hi - v)
                    score["rule"]["widened"] = [lo, hi]
                score["rule"]["allowed_from"] = source
                score["allowed"] = [allowed[0], allowed[1]]
                violated = hi < allowed[0] or lo > allowed[1]
                score["status"] = "violation" if violated else "ok"
        elif bounds is not None:
            score["rule"] = {"name": "bounds", "lower": bounds[0], "upper": bounds[1]}
            if v is None:
                score.update(status="unchecked", reason="current value is null (the metric failed)")
            else:
                violated = not (bounds[0] <= v <= bounds[1])
                score["status"] = "violation" if violated else "ok"
        else:
            score["rule"] = {"name": "baseline"}
            ideal = ideal_value(metric)  # the metric registry's (1 for DI, 0 otherwise)
            if bkey not in base:
                score.update(status="unchecked", reason="metric absent from the baseline")
            elif v is None:
                score.update(status="unchecked", reason="current value is null (the metric failed)")
            elif b is None:
                score.update(status="unchecked", reason="baseline value is null (the metric failed)")
            else:
                d_cur, d_base = abs(v - ideal), abs(b - ideal)
                violated = d_cur > d_base
                score["status"] = "violation" if violated else "ok"
        result.scores.append(score)
        if violated:
            result.violations.append(
                {
                    "facet": facet,
                    "facet_value": value,
                    "metric_name": metric,
                    "constraint_check_type": "bias_drift_check",
                    "description": MSG_BIAS.format(value=raw),
                    "explanation": explain(score),
                    "baseline": score["baseline"],
                    "current": raw,
                    "current_interval": score["current_interval"],
                    "rule": score["rule"],
                }
            )
    return result


def explain(score: dict[str, Any]) -> str:
    """The words after Clarify's description: what the value was compared with, under which rule."""
    r = score["rule"]
    if r["name"] == "interval":
        lo, hi = r.get("widened") or score["current_interval"]
        a = score["allowed"]
        return (
            f"interval rule: current interval [{lo:.4g}, {hi:.4g}] does not overlap the allowed range "
            f"[{a[0]:.4g}, {a[1]:.4g}] from the {r['allowed_from']}; baseline {score['baseline']}"
        )
    if r["name"] == "bounds":
        return f"bounds rule: outside [{r['lower']}, {r['upper']}]; baseline {score['baseline']}"
    return f"baseline rule: farther from the ideal than the baseline {score['baseline']}"


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
        raise ValueError(
            f"baseline and current explain different features: only in baseline {only_b}, only in current {only_c}"
        )
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
                score["rule"] = {"name": "ndcg_threshold", "threshold": threshold}
                if v < threshold:
                    result.violations.append(
                        {
                            "label": label,
                            "metric_name": "shap",
                            "constraint_check_type": "feature_attribution_drift_check",
                            "description": MSG_ATTR.format(value=v, threshold=threshold),
                            "baseline": 1.0,
                            "current": float(v),
                            "current_interval": None,
                            "rule": score["rule"],
                            "explanation": f"NDCG rule: NDCG {v:.4g} of the current feature ranking against "
                            f"the baseline's (1.0 = same ranking) is below the threshold {threshold}",
                        }
                    )
        result.scores.append(score)
    return result


# ---- both checks on one document -----------------------------------------------------------------


def _has_bias(doc: dict) -> bool:
    return any(doc.get(s) for s in STAGES)


def _has_shap(doc: dict) -> bool:
    return bool(((doc.get("explanations") or {}).get("kernel_shap")) if isinstance(doc, dict) else False)


def check_analysis(
    baseline: Any,
    current: Any,
    *,
    rules: dict[str, dict[str, float]] | None = None,
    threshold: float = 0.9,
    rule: str = "baseline",
    confidence: float | None = None,
) -> DriftResult:
    """Every check that ``current`` supports: :func:`bias_drift` when it has bias sections,
    :func:`attribution_drift` when it has ``explanations.kernel_shap``; the results added.
    ``rule`` and ``confidence`` go to :func:`bias_drift`.

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
            raise ValueError(
                "baseline: no pre_training_bias_metrics or post_training_bias_metrics, but the "
                "current analysis has bias metrics to check"
            )
        result = result + bias_drift(base, cur, rules=rules, rule=rule, confidence=confidence)
    if _has_shap(cur):
        if not _has_shap(base):
            raise ValueError(
                "baseline: no explanations.kernel_shap section, but the current analysis has SHAP values to check"
            )
        result = result + attribution_drift(base, cur, threshold=threshold)
    return result


def check_baseline(baseline: Any, config: Any) -> dict[str, Any]:
    """Fail early, before any analysis runs, when the baseline cannot be compared with what ``config``
    computes: bias methods but no bias sections in the baseline, or SHAP but no
    ``explanations.kernel_shap``. Returns the loaded baseline document."""
    from clarion.config import read_config

    base = _load(baseline, "baseline")
    cfg = read_config(config)
    if (cfg.pre_training_bias or cfg.post_training_bias) and not _has_bias(base):
        raise ValueError(
            "baseline: no pre_training_bias_metrics or post_training_bias_metrics, but the config "
            "computes bias metrics; baseline with the same config (clarion analyze)"
        )
    if cfg.shap is not None and not _has_shap(base):
        raise ValueError(
            "baseline: no explanations.kernel_shap section, but the config computes SHAP values; "
            "baseline with the same config (clarion analyze)"
        )
    if not (cfg.pre_training_bias or cfg.post_training_bias or cfg.shap is not None):
        raise ValueError(
            "config: no pre_training_bias, post_training_bias or shap method, so there is no drift to check"
        )
    return base


# ---- drift over time -------------------------------------------------------------------------------
