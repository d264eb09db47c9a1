"""Bias drift and feature-attribution drift of an analysis against a baseline analysis.

Both checks read ``analysis.json`` documents (Clarify's or clarion's; a path or a dict) and
return a :class:`DriftResult` whose ``to_dict()`` is Clarify's ``constraint_violations.json``
plus the compared values.

Bias drift rule (per stage, facet, facet value and metric present in ``current``):

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

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MAX_ANALYSIS_DEPTH", "METRIC_STRINGS", "MSG_ANALYSIS", "TABLE_COLUMNS", "AnalysisError", "DriftOverTime",
           "DriftResult", "attribution_drift", "bias_drift", "check_analysis", "check_baseline", "check_windows",
           "drift_over_time", "load_analysis", "load_json", "load_violations", "ndcg"]

STAGES = ("pre_training_bias_metrics", "post_training_bias_metrics")

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
MAX_ANALYSIS_DEPTH = 64

#: message of :class:`AnalysisError`: where (argument and/or file), key path, what is wrong
MSG_ANALYSIS = "{where}: {path}: {problem}"

#: strings an analysis.json may hold for a metric value, and what they mean
METRIC_STRINGS = {"Infinity": math.inf, "+Infinity": math.inf, "inf": math.inf, "-Infinity": -math.inf,
                  "-inf": -math.inf, "NaN": math.nan}


class AnalysisError(ValueError):
    """A malformed ``analysis.json`` (or analysis document): the message names the file (or the
    argument) and the key path of the offending value, e.g.
    ``baseline: base/analysis.json: pre_training_bias_metrics.facets["sex"][0].metrics[2].value:
    expected a number, "Infinity", "-Infinity" or null, got {...}``."""


def _key(path: str, k: Any) -> str:
    if isinstance(k, int):
        return f"{path}[{k}]"
    if isinstance(k, str) and k.isidentifier() and len(k) <= 60:
        return f"{path}.{k}" if path else k
    return f"{path}[{_show(k)}]"


def _show(v: Any, n: int = 60) -> str:
    """A short description of ``v`` for a message (never the whole of a large value)."""
    if isinstance(v, Mapping):
        return f"an object with {len(v)} key{'s' if len(v) != 1 else ''}"
    if isinstance(v, (list, tuple)):
        return f"a list of {len(v)} item{'s' if len(v) != 1 else ''}"
    r = json.dumps(v) if isinstance(v, str) else repr(v)
    return r if len(r) <= n else r[: n - 1] + "…"


class _Checker:
    """Validates an analysis document against Clarify's schema (spec: clarify-config.md §3),
    clarion's additions allowed; unknown keys are kept and not checked."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, problem: str) -> AnalysisError:
        return AnalysisError(MSG_ANALYSIS.format(where=self.where, path=path or "(top level)", problem=problem))

    def obj(self, v: Any, path: str, what: str = "an object") -> dict:
        if not isinstance(v, Mapping):
            raise self.fail(path, f"expected {what}, got {_show(v)}")
        return v

    def arr(self, v: Any, path: str) -> list:
        if not isinstance(v, (list, tuple)):
            raise self.fail(path, f"expected a list, got {_show(v)}")
        return v

    def text(self, v: Any, path: str, *, null: bool = True) -> None:
        if not (isinstance(v, str) or (null and v is None)):
            raise self.fail(path, f"expected a string{' or null' if null else ''}, got {_show(v)}")

    def number(self, v: Any, path: str, *, strings: bool = False, null: bool = False) -> None:
        if v is None and null:
            return
        if strings and isinstance(v, str) and v in METRIC_STRINGS:
            return
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        if ok:
            try:
                float(v)
            except OverflowError:
                raise self.fail(path, f"number too large: {_show(v)}") from None
            return
        allowed = "a number" + (', "Infinity", "-Infinity"' if strings else "") + (" or null" if null else "")
        raise self.fail(path, f"expected {allowed}, got {_show(v)}")

    def scalar(self, v: Any, path: str) -> None:
        """A label / facet value: a string or number (a list of them: several values)."""
        items = v if isinstance(v, (list, tuple)) else [v]
        for i, x in enumerate(items):
            if x is not None and not isinstance(x, (str, int, float, np.integer, np.floating)):
                raise self.fail(path if v is items else _key(path, i),
                                f"expected a string, a number or a list of them, got {_show(x)}")

    def document(self, doc: Any) -> dict:
        self.obj(doc, "", "a JSON object (an analysis.json document)")
        if "version" in doc and not isinstance(doc["version"], (str, int, float)):
            raise self.fail("version", f"expected a string, got {_show(doc['version'])}")
        for stage in STAGES:
            if doc.get(stage) is not None:
                self.bias_section(doc[stage], stage)
        if doc.get("explanations") is not None:
            self.explanations(doc["explanations"], "explanations")
        return doc

    def bias_section(self, sec: Any, path: str) -> None:
        self.obj(sec, path)
        if "label" in sec:
            self.scalar(sec["label"], _key(path, "label"))
        if "label_value_or_threshold" in sec:
            self.scalar(sec["label_value_or_threshold"], _key(path, "label_value_or_threshold"))
        facets = self.obj(sec.get("facets", {}), _key(path, "facets"))
        for facet, entries in facets.items():
            fpath = _key(_key(path, "facets"), facet)
            for i, entry in enumerate(self.arr(entries, fpath)):
                epath = _key(fpath, i)
                self.obj(entry, epath)
                if "value_or_threshold" in entry:
                    self.scalar(entry["value_or_threshold"], _key(epath, "value_or_threshold"))
                for j, m in enumerate(self.arr(entry.get("metrics", []), _key(epath, "metrics"))):
                    mpath = _key(_key(epath, "metrics"), j)
                    self.obj(m, mpath)
                    if "name" not in m:
                        raise self.fail(mpath, 'no "name"')
                    self.text(m["name"], _key(mpath, "name"), null=False)
                    for k in ("description", "error"):
                        if k in m:
                            self.text(m[k], _key(mpath, k))
                    for k in ("value", "ci_low", "ci_high"):
                        if k in m:
                            self.number(m[k], _key(mpath, k), strings=True, null=True)

    def explanations(self, ex: Any, path: str) -> None:
        self.obj(ex, path)
        if ex.get("kernel_shap") is not None:
            kpath = _key(path, "kernel_shap")
            for label, block in self.obj(ex["kernel_shap"], kpath).items():
                bpath = _key(kpath, label)
                self.obj(block, bpath)
                if "global_shap_values" not in block:
                    raise self.fail(bpath, 'no "global_shap_values"')
                gpath = _key(bpath, "global_shap_values")
                for f, v in self.obj(block["global_shap_values"], gpath).items():
                    self.number(v, _key(gpath, f))
                if "expected_value" in block:
                    self.number(block["expected_value"], _key(bpath, "expected_value"), strings=True, null=True)
        if ex.get("pdp") is not None:
            ppath = _key(path, "pdp")
            for i, e in enumerate(self.arr(ex["pdp"], ppath)):
                epath = _key(ppath, i)
                self.obj(e, epath)
                if "feature_name" not in e:
                    raise self.fail(epath, 'no "feature_name"')
                if not isinstance(e["feature_name"], (str, int)) or isinstance(e["feature_name"], bool):
                    raise self.fail(_key(epath, "feature_name"), f"expected a string, got {_show(e['feature_name'])}")
                for k in ("data_type", "error"):
                    if k in e:
                        self.text(e[k], _key(epath, k))
                if e.get("error"):
                    continue
                xs = self.arr(e.get("feature_values", []), _key(epath, "feature_values"))
                for j, x in enumerate(xs):  # a grid value or category: a string, number, boolean or null
                    if x is not None and not isinstance(x, (str, bool, np.bool_)):
                        self.number(x, _key(_key(epath, "feature_values"), j))
                mp = _key(epath, "model_predictions")
                for j, row in enumerate(self.arr(e.get("model_predictions", []), mp)):
                    self.arr(row, _key(mp, j))
                    if len(row) != len(xs):
                        raise self.fail(_key(mp, j), f"{len(row)} values for {len(xs)} feature_values")
                    for k, v in enumerate(row):
                        self.number(v, _key(_key(mp, j), k), strings=True, null=True)
                if e.get("data_distribution") is not None:
                    dp = _key(epath, "data_distribution")
                    dist = self.arr(e["data_distribution"], dp)
                    if len(dist) != len(xs):
                        raise self.fail(dp, f"{len(dist)} values for {len(xs)} feature_values")
                    for j, v in enumerate(dist):
                        self.number(v, _key(dp, j))


def _check_depth(doc: Any, check: _Checker) -> None:
    """Refuse nesting deeper than :data:`MAX_ANALYSIS_DEPTH` (iterative: no RecursionError, and a
    dict that contains itself stops here too)."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, (Mapping, list, tuple)):
            if depth > MAX_ANALYSIS_DEPTH:
                raise check.fail(path, f"nested more than {MAX_ANALYSIS_DEPTH} levels deep")
            items = node.items() if isinstance(node, Mapping) else enumerate(node)
            stack.extend((v, _key(path, k), depth + 1) for k, v in items)


def load_analysis(doc: Any, *, name: str | None = None) -> dict[str, Any]:
    """Read and validate an ``analysis.json`` (Clarify's or clarion's).

    Parameters
    ----------
    doc : str, path or dict
        The file, or an already loaded document (checked the same way).
    name : str, optional
        What the document is (e.g. ``"baseline"``), put first in error messages.

    Returns
    -------
    dict
        The document (the same object when a dict was given).

    Raises
    ------
    AnalysisError
        (a ``ValueError``) the file is missing, unreadable, not JSON, nested more than
        :data:`MAX_ANALYSIS_DEPTH` levels, or has a value of the wrong type where Clarify's schema
        puts a section, facet entry, metric, SHAP block or PDP entry; the message names the file
        and the key path (:data:`MSG_ANALYSIS`). Keys Clarify does not define are allowed and
        not checked.
    """
    if isinstance(doc, (str, os.PathLike)):
        path = os.fspath(doc)
        where = f"{name}: {path}" if name else path
        check = _Checker(where)
        if not os.path.exists(path):
            raise AnalysisError(f"{name + ': ' if name else ''}file not found: {path}")
        data = _read_json(path, where)
    else:
        data = doc
        check = _Checker(name or "analysis")
    _check_depth(data, check)
    return check.document(data)


def _load(doc: Any, arg: str) -> dict:
    return load_analysis(doc, name=arg)


def load_json(path: str | os.PathLike, *, name: str | None = None) -> Any:
    """Read a JSON file the way :func:`load_analysis` does (file, UTF-8, JSON syntax and
    :data:`MAX_ANALYSIS_DEPTH` checked; :class:`AnalysisError` naming ``name`` and the file), with no
    schema: for the other JSON files of an output folder (e.g. ``analysis_config.json``)."""
    path = os.fspath(path)
    where = f"{name}: {path}" if name else path
    if not os.path.exists(path):
        raise AnalysisError(f"{name + ': ' if name else ''}file not found: {path}")
    data = _read_json(path, where)
    _check_depth(data, _Checker(where))
    return data


def _read_json(path: str, where: str) -> Any:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise AnalysisError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise AnalysisError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise AnalysisError(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise AnalysisError(f"{where}: nested more than {MAX_ANALYSIS_DEPTH} levels deep") from None


def _check_scores(check: _Checker, scores: Any, path: str) -> None:
    for i, sc in enumerate(check.arr(scores, path)):
        sp = _key(path, i)
        check.obj(sc, sp)
        bias = "stage" in sc
        need = ("stage", "facet", "facet_value", "metric_name", "baseline", "current", "status") if bias else \
            ("label", "ndcg", "threshold", "status")
        for k in need:
            if k not in sc:
                raise check.fail(sp, f'no "{k}" (a {"bias" if bias else "attribution"} score has {list(need)})')
        for k in ("stage", "metric_name", "status") if bias else ("status",):
            check.text(sc[k], _key(sp, k), null=False)
        for k in ("facet", "facet_value") if bias else ("label",):
            check.scalar(sc[k], _key(sp, k))
        for k in ("baseline", "current") if bias else ("ndcg",):
            check.number(sc[k], _key(sp, k), strings=True, null=True)
        if not bias:
            check.number(sc["threshold"], _key(sp, "threshold"))
        if "reason" in sc:
            check.text(sc["reason"], _key(sp, "reason"))


def load_violations(doc: Any, *, name: str | None = None) -> dict[str, Any]:
    """Read and validate a ``constraint_violations.json`` as ``clarion monitor`` writes it
    (:meth:`DriftResult.to_dict` / :meth:`DriftOverTime.to_dict`; Clarify's own file, with
    ``violations`` only, loads too). Raises :class:`AnalysisError` naming the file and key path."""
    if isinstance(doc, (str, os.PathLike)):
        path = os.fspath(doc)
        where = f"{name}: {path}" if name else path
        data = _read_json(path, where)
    else:
        where, data = name or "constraint_violations", doc
    check = _Checker(where)
    _check_depth(data, check)
    check.obj(data, "", "a JSON object (a constraint_violations.json document)")
    for i, v in enumerate(check.arr(data.get("violations", []), "violations")):
        vp = _key("violations", i)
        check.obj(v, vp)
        for k in ("metric_name", "constraint_check_type", "description", "window"):
            if k in v:
                check.text(v[k], _key(vp, k))
        for k in ("facet", "facet_value", "label"):
            if k in v:
                check.scalar(v[k], _key(vp, k))
    _check_scores(check, data.get("scores", []), "scores")
    if data.get("window_scores") is not None:
        for w, scores in check.obj(data["window_scores"], "window_scores").items():
            _check_scores(check, scores, _key("window_scores", w))
    for k in ("window", "baseline"):
        if k in data:
            check.text(data[k], k)
    return data


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
    from clarion.bias import entry_key, ideal_value

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
            ideal = ideal_value(metric)  # the metric registry's (1 for DI, 0 otherwise)
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
        out = {"version": "1.0", "violations": violations,
               "scores": list(self.overall.scores) if self.overall is not None else [],
               "window_scores": {w: self.results[w].scores for w in sorted(self.results)}}
        if self.window is not None:
            out["window"] = self.window
        return out


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
        res.window = window
        res.analysis = w.result.analysis
        res.overall = check_analysis(base, w.result.analysis, rules=rules, threshold=threshold)
        res.output = w.result
        return res

    if output_dir is not None:
        return go(output_dir)
    with tempfile.TemporaryDirectory(prefix="clarion-monitor-") as tmp:
        return go(tmp)
