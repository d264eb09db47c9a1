"""Reading and checking ``analysis.json`` and ``constraint_violations.json`` documents for the
monitor: every malformed input is an :class:`AnalysisError` naming the file and the key path."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

#: the bias sections of an analysis document
STAGES = ("pre_training_bias_metrics", "post_training_bias_metrics")
MAX_ANALYSIS_DEPTH = 64

#: message of :class:`AnalysisError`: where (argument and/or file), key path, what is wrong
MSG_ANALYSIS = "{where}: {path}: {problem}"

#: strings an analysis.json may hold for a metric value, and what they mean
METRIC_STRINGS = {
    "Infinity": math.inf,
    "+Infinity": math.inf,
    "inf": math.inf,
    "-Infinity": -math.inf,
    "-inf": -math.inf,
    "NaN": math.nan,
}


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
                raise self.fail(
                    path if v is items else _key(path, i),
                    f"expected a string, a number or a list of them, got {_show(x)}",
                )

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


_SCALARS = (str, int, float, bool, type(None))


def _check_depth(doc: Any, check: _Checker) -> None:
    """Refuse nesting deeper than :data:`MAX_ANALYSIS_DEPTH` (iterative: no RecursionError, and a
    dict that contains itself stops here too). Only containers are visited; a node's key path is
    spelled (:func:`_trail_path`) only for the message."""
    containers = (Mapping, list, tuple)
    if not isinstance(doc, containers):
        return
    stack: list[tuple[Any, Any, int]] = [(doc, None, 1)]  # (node, (parent's trail, key) or None, depth)
    while stack:
        node, trail, depth = stack.pop()
        if depth > MAX_ANALYSIS_DEPTH:
            raise check.fail(_trail_path(trail), f"nested more than {MAX_ANALYSIS_DEPTH} levels deep")
        items = node.items() if isinstance(node, Mapping) else enumerate(node)
        for k, v in items:
            t = type(v)
            if t is dict or t is list or (t not in _SCALARS and isinstance(v, containers)):
                stack.append((v, (trail, k), depth + 1))


def _trail_path(trail: Any) -> str:
    """The key path of a node :func:`_check_depth` reached by ``trail`` (as :func:`_key` spells it)."""
    keys = []
    while trail is not None:
        trail, k = trail
        keys.append(k)
    path = ""
    for k in reversed(keys):
        path = _key(path, k)
    return path


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
        need = (
            ("stage", "facet", "facet_value", "metric_name", "baseline", "current", "status")
            if bias
            else ("label", "ndcg", "threshold", "status")
        )
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
