"""SageMaker Clarify's ``ClarifyExplainerConfig`` (online explainability), read and checked.

The file ``clarion serve MODEL --explain EXPLAINER_CONFIG`` takes is the ``ClarifyExplainerConfig``
of SageMaker's ``CreateEndpointConfig`` API as JSON, with the API's key names::

    {"EnableExplanations": "`true`",
     "InferenceConfig": {"FeatureHeaders": ["age", "income"], "MaxRecordCount": 64},
     "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": "35,52000"},
                    "NumberOfSamples": 500, "UseLogit": false, "Seed": 7}}

(or the same object under a top-level ``"ClarifyExplainerConfig"`` key, as in ``ExplainerConfig``).
Reading it checks every key: an unknown key is a :class:`~clarion.config.ConfigError` naming its
path with a did-you-mean suggestion, a bad value one naming its path and what is allowed, a JMESPath
that does not compile one naming the key. Nothing in the file is evaluated; ``ShapBaselineUri`` must
be a local file (relative paths are read from the config file's folder). Text explanations
(``ShapConfig.TextConfig``, ``"text"`` feature types) go through :class:`clarion.explain.TextShap`.

:class:`clarion.explain.OnlineExplainer.from_config` builds the explainer from the result; the
mapping of every key is in ``docs/online-explainability.md``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from clarion import options
from clarion.config import _load_json
from clarion.config._checks import (
    MAX_DEPTH,
    MSG_NOT_UTF8,
    MSG_REQUIRED,
    MSG_TOO_DEEP,
    ConfigError,
    ConfigWarning,
    _check,
    _check_depth,
    _choice_error,
    _integer,
    _is_int,
    _local_path,
    _option,
    _unique,
    _warn_unknown,
)

__all__ = [
    "BASELINE_MIME_TYPES",
    "ESTIMATORS",
    "FEATURE_TYPES",
    "MSG_BAD_JMESPATH",
    "MSG_BASELINE",
    "MSG_EXCLUSIVE",
    "MSG_TEMPLATE",
    "ExplainerConfig",
    "parse_baseline",
    "read_explainer_config",
]

#: ``ShapBaselineConfig.MimeType`` values (Clarify's)
BASELINE_MIME_TYPES = ("text/csv", "application/jsonlines")
#: ``InferenceConfig.FeatureTypes`` values (Clarify's ``ClarifyFeatureType``)
FEATURE_TYPES = ("numerical", "categorical", "text")

MSG_BAD_JMESPATH = "{path}: {got!r} is not a valid JMESPath expression: {why}"
MSG_EXCLUSIVE = "{path}: give {a} or {b}, not both"
MSG_BASELINE = "{path}: {why}"
MSG_TEMPLATE = (
    "{path}: {got!r} {why}; a ContentTemplate is one JSON record with $features where the list of "
    'feature values goes, e.g. {{"features":$features}}'
)
MSG_LABEL_KEY = (
    "{path}: ignored: the served model's answers carry no label headers for it to find (clarion "
    "takes them from InferenceConfig.LabelHeaders, or from a classifier's classes)"
)
#: EnableExplanations' length limit in SageMaker's API
MAX_ENABLE_EXPLANATIONS = 64

_TOP = {"EnableExplanations", "InferenceConfig", "ShapConfig"}
_INFERENCE = {
    "FeaturesAttribute",
    "ContentTemplate",
    "MaxRecordCount",
    "MaxPayloadInMB",
    "ProbabilityIndex",
    "LabelIndex",
    "ProbabilityAttribute",
    "LabelAttribute",
    "LabelHeaders",
    "FeatureHeaders",
    "FeatureTypes",
}
_SHAP = {"ShapBaselineConfig", "NumberOfSamples", "UseLogit", "Seed", "TextConfig", "Estimator"}
_TEXT = {"Granularity", "Language"}
#: ``ShapConfig.Estimator`` (a clarion addition): KernelShap's estimator; "shap" gives Clarify's numbers
ESTIMATORS = ("shap", "cubic")
_BASELINE = {"MimeType", "ShapBaseline", "ShapBaselineUri"}
_SENTINEL = "\x00clarion-features\x00"


@dataclass
class ExplainerConfig:
    """A checked ``ClarifyExplainerConfig``: one attribute per key (snake_case), ``None`` when absent.

    Attributes
    ----------
    enable_explanations : str or None
        ``EnableExplanations``: JMESPath boolean expression over each record's prediction.
    features_attribute : str or None
        ``InferenceConfig.FeaturesAttribute``, or the path that ``ContentTemplate`` puts
        ``$features`` at (JMESPath locating the features in a JSON Lines / JSON record).
    content_template : str or None
    max_record_count : int or None
    max_payload_in_mb : int or None
    probability_index, label_index : int or None
    probability_attribute, label_attribute : str or None
    label_headers, feature_headers : list of str or None
    feature_types : list of str or None
    baseline : str
        The baseline's text (inline ``ShapBaseline``, or the ``ShapBaselineUri`` file's content).
    baseline_mime_type : str
    baseline_path : str
        Where the baseline came from, for messages (the key path, or the file).
    number_of_samples : int or None
    use_logit : bool
    seed : int or None
    text_granularity, text_language : str or None
        ``ShapConfig.TextConfig``'s ``Granularity`` and ``Language`` (None without TextConfig).
    estimator : str
        ``ShapConfig.Estimator`` (a clarion addition, not in SageMaker's API): ``"shap"`` (default,
        Clarify's estimator and numbers) or ``"cubic"`` (:class:`clarion.explain.KernelShap`'s
        paired third-order-surrogate estimator).
    prefix : str
        ``"ClarifyExplainerConfig."`` when the file wrapped the config in that key, else ``""``:
        every message names the key path as written in the file.
    """

    baseline: str
    baseline_mime_type: str = "text/csv"
    baseline_path: str = "ShapConfig.ShapBaselineConfig.ShapBaseline"
    enable_explanations: str | None = None
    features_attribute: str | None = None
    content_template: str | None = None
    max_record_count: int | None = None
    max_payload_in_mb: int | None = None
    probability_index: int | None = None
    label_index: int | None = None
    probability_attribute: str | None = None
    label_attribute: str | None = None
    label_headers: list[str] | None = None
    feature_headers: list[str] | None = None
    feature_types: list[str] | None = None
    number_of_samples: int | None = None
    use_logit: bool = False
    seed: int | None = None
    estimator: str = "shap"
    text_granularity: str | None = None
    text_language: str | None = None
    prefix: str = ""

    @classmethod
    def from_dict(cls, d: Any, *, base_dir: str | os.PathLike | None = None) -> ExplainerConfig:
        """Check a ``ClarifyExplainerConfig`` object (parsed JSON).

        Parameters
        ----------
        d : dict
            The config, or ``{"ClarifyExplainerConfig": config}``.
        base_dir : path, optional
            Folder that a relative ``ShapBaselineUri`` is read from (default: the working folder).

        Raises
        ------
        ConfigError
            The first problem, naming its key path.
        """
        _check_depth(d)
        prefix = ""
        if isinstance(d, dict) and list(d) == ["ClarifyExplainerConfig"]:
            d, prefix = d["ClarifyExplainerConfig"], "ClarifyExplainerConfig."
        root = prefix.rstrip(".") or "config"
        _check(isinstance(d, dict), root, "an object (ClarifyExplainerConfig)", d)
        _warn_unknown(d, _TOP, prefix.rstrip("."))
        out: dict[str, Any] = {"prefix": prefix}

        def p(key: str) -> str:
            return prefix + key

        ee = d.get("EnableExplanations")
        if ee is not None:
            _check(
                isinstance(ee, str) and 1 <= len(ee) <= MAX_ENABLE_EXPLANATIONS,
                p("EnableExplanations"),
                f"a JMESPath expression of 1 to {MAX_ENABLE_EXPLANATIONS} characters",
                ee,
            )
            _compile(ee, p("EnableExplanations"))
            out["enable_explanations"] = ee

        inf = d.get("InferenceConfig")
        if inf is not None:
            out.update(_inference(inf, p("InferenceConfig")))

        if "ShapConfig" not in d:
            raise ConfigError(MSG_REQUIRED.format(path=p("ShapConfig"), why=" (it holds ShapBaselineConfig)"))
        out.update(_shap(d["ShapConfig"], p("ShapConfig"), base_dir))
        ft = out.get("feature_types") or []
        if "text" in ft and out.get("text_granularity") is None:
            raise ConfigError(
                f'{p("InferenceConfig.FeatureTypes")}[{ft.index("text")}]: a "text" feature needs '
                f"{p('ShapConfig.TextConfig')} (Granularity and Language)"
            )
        return cls(**out)


def read_explainer_config(
    source: str | os.PathLike | dict | ExplainerConfig, *, base_dir: str | os.PathLike | None = None
) -> ExplainerConfig:
    """Read a ``ClarifyExplainerConfig`` from a JSON file, a dict, or return an :class:`ExplainerConfig`.

    A relative ``ShapBaselineUri`` is read from the file's folder (``base_dir`` for a dict).

    Raises
    ------
    ConfigError
        Naming the key path (or the file) of the first problem.
    """
    if isinstance(source, ExplainerConfig):
        return source
    if isinstance(source, dict):
        return ExplainerConfig.from_dict(source, base_dir=base_dir)
    path = os.fspath(source)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"explainer config: file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"explainer config: {path} is a folder, not a JSON file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(MSG_NOT_UTF8.format(file=path, exc=exc)) from None
    try:
        data = _load_json(text, path)
    except RecursionError:
        raise ConfigError(MSG_TOO_DEEP.format(n=MAX_DEPTH)) from None
    return ExplainerConfig.from_dict(data, base_dir=os.path.dirname(os.path.abspath(path)))


# ------------------------------------------------------------------------------------------------


def _compile(expr: str, path: str) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expr)
    except JMESPathError as exc:
        raise ConfigError(MSG_BAD_JMESPATH.format(path=path, got=expr, why=str(exc).splitlines()[0])) from None


def _text(v: Any, path: str, what: str = "a non-empty text") -> str:
    _check(isinstance(v, str) and v != "", path, what, v)
    return v


def _names(v: Any, path: str) -> list[str]:
    _check(isinstance(v, list) and len(v) > 0, path, "a non-empty list of texts", v)
    for i, x in enumerate(v):
        _text(x, f"{path}[{i}]")
    return list(v)


def _template_path(template: str, path: str) -> str:
    """The JMESPath at which ``template`` puts ``$features`` (so request records in the model's input
    format are read where the template writes the features)."""
    if template.count("$features") != 1:
        why = "has no $features" if "$features" not in template else "has $features more than once"
        raise ConfigError(MSG_TEMPLATE.format(path=path, got=template, why=why))
    try:
        doc = json.loads(template.replace("$features", json.dumps(_SENTINEL)))
    except json.JSONDecodeError as exc:
        raise ConfigError(MSG_TEMPLATE.format(path=path, got=template, why=f"is not JSON ({exc.msg})")) from None
    steps: list[str] = []

    def find(o: Any) -> bool:
        if o == _SENTINEL:
            return True
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()
        for k, v in items:
            steps.append(json.dumps(k) if isinstance(k, str) else f"[{k}]")
            if find(v):
                return True
            steps.pop()
        return False

    find(doc)
    if not steps:
        raise ConfigError(MSG_TEMPLATE.format(path=path, got=template, why="is $features alone (not a record)"))
    expr = steps[0] + "".join(s if s.startswith("[") else "." + s for s in steps[1:])
    return expr


def _inference(d: Any, path: str) -> dict[str, Any]:
    _check(isinstance(d, dict), path, "an object", d)
    _warn_unknown(d, _INFERENCE, path)
    out: dict[str, Any] = {}
    fa = d.get("FeaturesAttribute")
    if fa is not None:
        _compile(_text(fa, f"{path}.FeaturesAttribute", "a JMESPath expression"), f"{path}.FeaturesAttribute")
        out["features_attribute"] = fa
    ct = d.get("ContentTemplate")
    if ct is not None:
        _text(ct, f"{path}.ContentTemplate")
        derived = _template_path(ct, f"{path}.ContentTemplate")
        out["content_template"] = ct
        out.setdefault("features_attribute", derived)
    if d.get("MaxRecordCount") is not None:
        out["max_record_count"] = _integer(d["MaxRecordCount"], f"{path}.MaxRecordCount", 1)
    if d.get("MaxPayloadInMB") is not None:
        out["max_payload_in_mb"] = _integer(d["MaxPayloadInMB"], f"{path}.MaxPayloadInMB", 1, 1024)
    for key, attr in (("ProbabilityIndex", "probability_index"), ("LabelIndex", "label_index")):
        if d.get(key) is not None:
            out[attr] = _integer(d[key], f"{path}.{key}", 0)
    for key, attr in (("ProbabilityAttribute", "probability_attribute"), ("LabelAttribute", "label_attribute")):
        if d.get(key) is not None:
            _compile(_text(d[key], f"{path}.{key}", "a JMESPath expression"), f"{path}.{key}")
            out[attr] = d[key]
    if "probability_index" in out and "probability_attribute" in out:
        raise ConfigError(MSG_EXCLUSIVE.format(path=path, a="ProbabilityIndex", b="ProbabilityAttribute"))
    for key in ("LabelIndex", "LabelAttribute"):
        if d.get(key) is not None:
            warnings.warn(MSG_LABEL_KEY.format(path=f"{path}.{key}"), ConfigWarning, stacklevel=4)
    if d.get("LabelHeaders") is not None:
        out["label_headers"] = _names(d["LabelHeaders"], f"{path}.LabelHeaders")
    if d.get("FeatureHeaders") is not None:
        out["feature_headers"] = _names(d["FeatureHeaders"], f"{path}.FeatureHeaders")
        _unique(out["feature_headers"], f"{path}.FeatureHeaders")
    if d.get("FeatureTypes") is not None:
        ft = d["FeatureTypes"]
        _check(isinstance(ft, list) and len(ft) > 0, f"{path}.FeatureTypes", "a non-empty list of feature types", ft)
        for i, t in enumerate(ft):
            if t not in FEATURE_TYPES:
                raise _choice_error(f"{path}.FeatureTypes[{i}]", list(FEATURE_TYPES), t)
        out["feature_types"] = list(ft)
        fh = out.get("feature_headers")
        if fh is not None and len(fh) != len(ft):
            raise ConfigError(
                f"{path}.FeatureTypes: {len(ft)} types for the {len(fh)} features of {path}.FeatureHeaders"
            )
    return out


def _shap(d: Any, path: str, base_dir: Any) -> dict[str, Any]:
    _check(isinstance(d, dict), path, "an object with ShapBaselineConfig", d)
    _warn_unknown(d, _SHAP, path)
    out: dict[str, Any] = {}
    if d.get("TextConfig") is not None:
        out.update(_text_config(d["TextConfig"], f"{path}.TextConfig"))
    if "ShapBaselineConfig" not in d:
        raise ConfigError(
            MSG_REQUIRED.format(path=f"{path}.ShapBaselineConfig", why=" (ShapBaseline or ShapBaselineUri)")
        )
    bc = d["ShapBaselineConfig"]
    bpath = f"{path}.ShapBaselineConfig"
    _check(isinstance(bc, dict), bpath, "an object with ShapBaseline or ShapBaselineUri", bc)
    _warn_unknown(bc, _BASELINE, bpath)
    mime = bc.get("MimeType", "text/csv")
    if mime not in BASELINE_MIME_TYPES:
        raise _choice_error(f"{bpath}.MimeType", list(BASELINE_MIME_TYPES), mime)
    out["baseline_mime_type"] = mime
    inline, uri = bc.get("ShapBaseline"), bc.get("ShapBaselineUri")
    if inline is not None and uri is not None:
        raise ConfigError(MSG_EXCLUSIVE.format(path=bpath, a="ShapBaseline", b="ShapBaselineUri"))
    if inline is None and uri is None:
        raise ConfigError(MSG_REQUIRED.format(path=f"{bpath}.ShapBaseline", why=" (or ShapBaselineUri)"))
    if inline is not None:
        out["baseline"] = _text(inline, f"{bpath}.ShapBaseline", "the baseline records as text")
        out["baseline_path"] = f"{bpath}.ShapBaseline"
    else:
        _text(uri, f"{bpath}.ShapBaselineUri", "a local file path")
        _local_path(uri, f"{bpath}.ShapBaselineUri")
        file = uri if os.path.isabs(uri) or base_dir is None else os.path.join(os.fspath(base_dir), uri)
        try:
            with open(file, encoding="utf-8-sig") as fh:
                out["baseline"] = fh.read()
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise ConfigError(f"{bpath}.ShapBaselineUri: cannot read {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{bpath}.ShapBaselineUri: {file} is not UTF-8 text ({exc})") from None
        out["baseline_path"] = f"{bpath}.ShapBaselineUri ({file})"
    if d.get("NumberOfSamples") is not None:
        out["number_of_samples"] = _option(options.num_samples, d["NumberOfSamples"], f"{path}.NumberOfSamples")
    if d.get("UseLogit") is not None:
        _check(isinstance(d["UseLogit"], bool), f"{path}.UseLogit", "true or false", d["UseLogit"])
        out["use_logit"] = d["UseLogit"]
    if d.get("Seed") is not None:
        _check(_is_int(d["Seed"]), f"{path}.Seed", "an integer", d["Seed"])
        out["seed"] = _option(options.seed, d["Seed"], f"{path}.Seed")
    if d.get("Estimator") is not None:
        if d["Estimator"] not in ESTIMATORS:
            raise _choice_error(f"{path}.Estimator", list(ESTIMATORS), d["Estimator"])
        out["estimator"] = d["Estimator"]
    return out


def _text_config(d: Any, path: str) -> dict[str, Any]:
    """``ShapConfig.TextConfig`` (``ClarifyTextConfig``): ``Granularity`` and ``Language``, both
    required, as SageMaker's API."""
    from clarion.explain.text import GRANULARITIES, language_code

    _check(isinstance(d, dict), path, "an object with Granularity and Language", d)
    _warn_unknown(d, _TEXT, path)
    for key in ("Granularity", "Language"):
        if d.get(key) is None:
            raise ConfigError(MSG_REQUIRED.format(path=f"{path}.{key}", why=""))
    g = d["Granularity"]
    if g not in GRANULARITIES:
        raise _choice_error(f"{path}.Granularity", list(GRANULARITIES), g)
    lang = d["Language"]
    _check(isinstance(lang, str), f"{path}.Language", "an ISO 639-1 / 639-3 language code ('xx': mixed)", lang)
    try:
        language_code(lang, f"{path}.Language")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {"text_granularity": g, "text_language": lang}


def parse_baseline(
    text: str,
    mime_type: str = "text/csv",
    *,
    features_attribute: str | None = None,
    path: str = "ShapBaseline",
) -> list[list[Any]]:
    """The baseline records of a ``ShapBaseline`` text: one list of feature values per record.

    CSV: one record per line, no header; a cell that reads as a number is a float, an empty cell
    NaN, anything else text. JSON Lines: one record per line, a list of values or an object whose
    ``features`` field (or ``features_attribute``) holds them.

    Raises
    ------
    ConfigError
        No records, records of different lengths, or a record that does not parse, naming ``path``
        and the record (0-based).
    """
    rows: list[list[Any]] = []
    if mime_type == "text/csv":
        for r in csv.reader(io.StringIO(text)):
            if not r or all(c.strip() == "" for c in r):
                continue
            rows.append([_cell(c) for c in r])
    else:
        finder = None
        if features_attribute:
            import jmespath

            finder = jmespath.compile(features_attribute)
        for i, line in enumerate(x for x in text.splitlines() if x.strip()):
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise ConfigError(MSG_BASELINE.format(path=path, why=f"record {i} is not JSON: {exc}")) from None
            f = finder.search(rec) if finder is not None else rec.get("features") if isinstance(rec, dict) else rec
            if not isinstance(f, list):
                raise ConfigError(MSG_BASELINE.format(path=path, why=f"record {i} holds no list of feature values"))
            for j, v in enumerate(f):
                if v is not None and not isinstance(v, (int, float, str)) or isinstance(v, bool):
                    raise ConfigError(
                        MSG_BASELINE.format(path=path, why=f"record {i}, feature {j}: {v!r} is not a number or text")
                    )
            rows.append([np.nan if v is None else float(v) if isinstance(v, (int, float)) else v for v in f])
    if not rows:
        raise ConfigError(MSG_BASELINE.format(path=path, why="no baseline records"))
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ConfigError(
                MSG_BASELINE.format(path=path, why=f"record {i} has {len(r)} features, record 0 has {width}")
            )
    return rows


def _cell(c: str) -> Any:
    s = c.strip()
    if s == "":
        return np.nan
    try:
        return float(s)
    except ValueError:
        return s
