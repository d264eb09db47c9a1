"""Typed analysis configs that read and write SageMaker Clarify's ``analysis_config.json``.

A config is data: JSON (or YAML with PyYAML installed, read with ``safe_load``); nothing in it is
evaluated or unpickled. Reading applies Clarify's job defaults, warns (:class:`ConfigWarning`)
about SageMaker-only keys and Clarify keys that clarion does not implement, and raises
:class:`ConfigError` naming the key path for a key that is neither Clarify's nor clarion's (with a
did-you-mean suggestion) and for values outside the allowed types and ranges.
``AnalysisConfig.from_dict(c.to_dict()) == c`` for every valid config (round trip).

clarion additions to Clarify's schema (all optional):

* ``predictor.model_uri``: a local model file that :func:`clarion.models.as_model` reads;
* ``predictor.endpoint_url``: an HTTP endpoint speaking SageMaker's invocation protocol;
* ``methods.{pre,post}_training_bias.confidence`` / ``n_bootstrap``: bootstrap intervals;
* ``weights``: a column of row weights used by every count-based bias metric.

See ``docs/config.md`` for every key.
"""

from __future__ import annotations

import collections.abc
import copy
import difflib
import json
import math
import numbers
import os
import re
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from clarion import options
from clarion.bias.registry import metric_names

__all__ = [
    "AnalysisConfig",
    "BiasMethodConfig",
    "ConfigError",
    "ConfigWarning",
    "FacetConfig",
    "PdpConfig",
    "PredictorConfig",
    "ReportConfig",
    "ShapConfig",
    "read_config",
]

DATASET_TYPES = ("text/csv", "application/jsonlines", "application/json", "application/x-parquet")
CONTENT_TYPES = ("text/csv", "application/jsonlines", "application/json")
#: allowed ``methods`` of each bias stage, in Clarify's order (from the metric registry,
#: :data:`clarion.bias.METRIC_INFO`)
PRE_TRAINING_METHODS = metric_names("pre")
POST_TRAINING_METHODS = metric_names("post")
AGG_METHODS = ("mean_abs", "median", "mean_sq")
SAGEMAKER_ONLY_PREDICTOR_KEYS = {
    "model_name": "predictor.model_uri (a local model file) or predictor.endpoint_url",
    "endpoint_name": "predictor.endpoint_url (the endpoint's HTTP invocation URL)",
    "endpoint_name_prefix": "predictor.endpoint_url",
    "instance_type": "nothing: clarion runs the model locally",
    "initial_instance_count": "nothing: clarion runs the model locally",
    "accelerator_type": "nothing: clarion runs the model locally",
    "target_model": "predictor.endpoint_url of the target model",
    "custom_attributes": "nothing (not sent by clarion)",
}
SAGEMAKER_ONLY_TOP_KEYS = {
    "dataset_uri": "the --data argument (local path)",
    "facet_dataset_uri": "a single input file holding the facet columns",
    "predicted_label_dataset_uri": "a single input file holding the predicted-label column",
    "facet_headers": "headers",
    "predicted_label_headers": "headers",
}
#: Clarify keys that clarion does not implement: warned about (MSG_UNSUPPORTED) and ignored, per
#: key path prefix; the top-level ones are kept in the written config like SageMaker-only keys.
UNSUPPORTED_TOP_KEYS = {
    "segment_config": "segments are not supported yet",
    "time_series_data_config": "time series are not supported",
}
UNSUPPORTED_METHOD_KEYS = {"asymmetric_shapley_value": "time series are not supported"}
UNSUPPORTED_SHAP_KEYS = {"text_config": "text features are not supported",
                         "image_config": "images are not supported"}
UNSUPPORTED_PREDICTOR_KEYS = {"time_series_predictor_config": "time series are not supported"}
#: clarion predictor keys read by clarion.models / the CLI besides PredictorConfig's own list:
#: known here so that they are never reported as unknown keys.
PREDICTOR_EXTRA_KEYS = ("trusted_types", "record_template", "timeout", "retries")

#: bounds of numeric keys (inclusive), from clarion.options (one validator per shared option; see
#: its docstring and docs/config.md for each bound's reason). MIN_N_BOOTSTRAP here is the config's
#: minimum (options.MIN_CONFIG_N_BOOTSTRAP); the engines accept fewer.
MIN_NUM_SAMPLES = options.MIN_NUM_SAMPLES
MAX_NUM_SAMPLES = options.MAX_NUM_SAMPLES
MIN_N_BOOTSTRAP = options.MIN_CONFIG_N_BOOTSTRAP
MAX_N_BOOTSTRAP = options.MAX_N_BOOTSTRAP
MIN_GRID_RESOLUTION = 2
MAX_GRID_RESOLUTION = 1_000
SEED_LIMIT = options.SEED_LIMIT  # seeds are unsigned 64-bit integers in the engines
#: a path-valued key given as a URI (s3://, https://, gs://, file://...)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")

MSG_TYPE = "{path}: expected {want}, got {got!r}"
MSG_CHOICE = "{path}: must be one of {choices}, got {got!r}"
MSG_REQUIRED = "{path}: required{why}"
MSG_UNKNOWN = "{path}: unknown key{hint}"
MSG_DID_YOU_MEAN = " (did you mean {name!r}?)"
MSG_KNOWN_KEYS = "; the keys here are {names}"
MSG_SAGEMAKER = "{path}: SageMaker-only key, ignored by clarion; use {instead}"
MSG_UNSUPPORTED = "{path}: Clarify key not supported by clarion, ignored ({why})"
MSG_VALUES_MIXED = "{path}: values must be all text or all numbers, got {got!r}"
MSG_VALUE_BOOL = ("{path}: true/false is not a value here; write 1 or 0 (or the text as it appears in "
                  "the data), got {got!r}")
MSG_NOT_FINITE = "{path}: expected a finite number, got {got!r}"
MSG_DUPLICATES = "{path}: duplicate entries {dup}"
MSG_JMESPATH_LOCAL = ("{path}: {got!r} is a JMESPath, which selects from an endpoint's JSON response, but a "
                      "local model returns an array of outputs: give the output's index (0, 1, ...)")
MSG_DUPLICATE_KEY = "config: {file}: key {key!r} appears twice in one object{where} (only one would be read)"
MSG_TOO_DEEP = "config: nested deeper than {n} levels"
JSON_VALUE = "a JSON value (text, number, true/false, null, list or object)"
MSG_NOT_UTF8 = "config: {file} is not UTF-8 text ({exc})"
#: deepest nesting a config may have (Clarify's deepest is 4); deeper input would otherwise end in a
#: RecursionError somewhere (parsing, copying, writing)
MAX_DEPTH = 64
MSG_REMOTE = ("{path}: {got!r} is a remote URI; clarion reads local files only: download it and give "
              "its path (absolute, or relative to the config file){hint}")


class ConfigError(ValueError):
    """An invalid analysis config; the message starts with the offending key path."""


class ConfigWarning(UserWarning):
    """A config key that clarion ignores (only meaningful on SageMaker, or a Clarify feature that
    clarion does not implement); an unknown key is a :class:`ConfigError`."""


def _is_int(v: Any) -> bool:
    """An integer that is not a bool (JSON's true/false are Python ints)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_name_or_index(v: Any) -> bool:
    return (isinstance(v, str) and v != "") or (_is_int(v) and v >= 0)


def _check(cond: bool, path: str, want: str, got: Any) -> None:
    if not cond:
        raise ConfigError(MSG_TYPE.format(path=path, want=want, got=got))


def _integer(v: Any, path: str, low: int, high: int | None = None) -> int:
    """``v`` as an int in ``[low, high]`` (bool refused), or ConfigError naming ``path``."""
    want = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high:,}]"
    _check(_is_int(v) and v >= low and (high is None or v <= high), path, want, v)
    return int(v)


def _number(v: Any, path: str, low: float, high: float, *, open_ends: bool = False) -> float:
    """``v`` as a finite float in ``[low, high]`` (``(low, high)`` with ``open_ends``); bool, str and
    NaN refused."""
    want = f"a number in ({low:g}, {high:g})" if open_ends else f"a number in [{low:g}, {high:g}]"
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and (
        low < v < high if open_ends else low <= v <= high)
    _check(ok, path, want, v)
    return float(v)


def _option(check: Any, v: Any, path: str, **kw: Any) -> Any:
    """``check(v, key=path)`` from :mod:`clarion.options`, its error as a ConfigError naming ``path``."""
    try:
        return check(v, key=path, **kw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _scalar_list(v: Any, path: str) -> list:
    """A non-empty list of values that are all text or all finite numbers (bool refused), so that
    later stages can rely on one type; numbers come back as Python int / float."""
    _check(isinstance(v, list) and len(v) > 0, path, "a non-empty list of values", v)
    out: list = []
    for i, x in enumerate(v):
        if isinstance(x, bool) or _is_np_bool(x):
            raise ConfigError(MSG_VALUE_BOOL.format(path=f"{path}[{i}]", got=x))
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, numbers.Real):
            if not math.isfinite(x):
                raise ConfigError(MSG_NOT_FINITE.format(path=f"{path}[{i}]", got=x))
            out.append(int(x) if isinstance(x, numbers.Integral) else float(x))
        else:
            raise ConfigError(MSG_TYPE.format(path=f"{path}[{i}]", want="a text or a number", got=x))
    if len({isinstance(x, str) for x in out}) > 1:
        raise ConfigError(MSG_VALUES_MIXED.format(path=path, got=v))
    return out


def _unique(v: list, path: str) -> None:
    seen: set = set()
    dup = [x for x in v if x in seen or seen.add(x)]  # type: ignore[func-returns-value]
    if dup:
        raise ConfigError(MSG_DUPLICATES.format(path=path, dup=sorted(set(dup), key=str)))


def _local_path(v: Any, path: str, hint: str = "") -> None:
    """A path-valued key must name a local file: a URI (``s3://``...) is never joined onto the config's
    folder as if it were a relative path."""
    if isinstance(v, str) and _URI.match(v):
        raise ConfigError(MSG_REMOTE.format(path=path, got=v, hint=hint))


def _choice_error(path: str, choices: Any, got: Any) -> ConfigError:
    """MSG_CHOICE, with a did-you-mean suggestion when ``got`` is close to one of the choices."""
    msg = MSG_CHOICE.format(path=path, choices=choices, got=got)
    if isinstance(got, str) and isinstance(choices, (list, tuple)):
        close = difflib.get_close_matches(got, [c for c in choices if isinstance(c, str)], n=1, cutoff=0.6)
        if close:
            msg += MSG_DID_YOU_MEAN.format(name=close[0])
    return ConfigError(msg)


def _did_you_mean(key: str, names: list[str], known: set[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return MSG_DID_YOU_MEAN.format(name=close[0])
    return MSG_KNOWN_KEYS.format(names=", ".join(sorted(known)))


def _warn_unknown(d: dict, known: set[str], path: str, sagemaker: dict[str, str] | None = None,
                  unsupported: dict[str, str] | None = None) -> None:
    """Check the keys of one config object: a SageMaker-only key or a Clarify key clarion does not
    implement warns (ConfigWarning) and is ignored; any other key that is not in ``known`` is an
    error naming its path, with a did-you-mean suggestion (a typo must never silently change a run)."""
    sagemaker, unsupported = sagemaker or {}, unsupported or {}
    if path == "predictor":  # PredictorConfig's call passes its own keys and the SageMaker-only ones
        known = set(known) | set(PREDICTOR_EXTRA_KEYS)
        unsupported = {**UNSUPPORTED_PREDICTOR_KEYS, **unsupported}
    for k in d:
        if k in known:
            continue
        p = f"{path}.{k}" if path else str(k)
        if k in sagemaker:
            warnings.warn(MSG_SAGEMAKER.format(path=p, instead=sagemaker[k]), ConfigWarning, stacklevel=4)
        elif k in unsupported:
            warnings.warn(MSG_UNSUPPORTED.format(path=p, why=unsupported[k]), ConfigWarning, stacklevel=4)
        else:
            names = sorted({*known, *sagemaker, *unsupported})
            raise ConfigError(MSG_UNKNOWN.format(path=p, hint=_did_you_mean(str(k), names, known)))


def _check_depth(obj: Any) -> None:
    """ConfigError when ``obj`` nests deeper than MAX_DEPTH (iterative: a YAML alias bomb or a
    recursive structure terminates too) or holds a value JSON cannot write (a YAML date...), which
    would otherwise fail only when the config is written beside the results."""
    deepest: dict[int, int] = {}
    stack: list[tuple[Any, int, str]] = [(obj, 1, "")]
    while stack:
        o, depth, path = stack.pop()
        if not isinstance(o, (dict, list)):
            if o is not None and not isinstance(o, (str, numbers.Real)) and not _is_np_bool(o):
                raise ConfigError(MSG_TYPE.format(path=path or "config", want=JSON_VALUE, got=o))
            continue
        if depth > MAX_DEPTH:
            raise ConfigError(MSG_TOO_DEEP.format(n=MAX_DEPTH))
        if deepest.get(id(o), 0) >= depth:
            continue
        deepest[id(o)] = depth
        items = o.items() if isinstance(o, dict) else ((f"[{i}]", v) for i, v in enumerate(o))
        for k, v in items:
            sub = (f"{path}.{k}" if path else str(k)) if isinstance(o, dict) else f"{path}{k}"
            stack.append((v, depth + 1, sub))


def _is_np_bool(v: Any) -> bool:
    return type(v).__module__ == "numpy" and type(v).__name__ in ("bool", "bool_")


def _plain(o: Any, memo: dict[int, Any]) -> Any:
    """A copy of a (depth-checked) config with numpy scalars as Python ones, so that every value
    read is one JSON can write (shared sub-objects are copied once)."""
    if isinstance(o, (dict, list)):
        if id(o) not in memo:
            memo[id(o)] = r = {} if isinstance(o, dict) else []
            if isinstance(o, dict):
                r.update((_plain(k, memo), _plain(v, memo)) for k, v in o.items())
            else:
                r.extend(_plain(v, memo) for v in o)
        return memo[id(o)]
    if _is_np_bool(o):
        return bool(o)
    if isinstance(o, numbers.Integral) and type(o) not in (int, bool):
        return int(o)
    if isinstance(o, numbers.Real) and type(o) is not float and not isinstance(o, numbers.Integral):
        return float(o)
    return o


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


@dataclass
class FacetConfig:
    """One sensitive attribute: ``name_or_index`` and the values (or ``[threshold]``) that select facet d.

    ``value_or_threshold=None`` on a categorical facet means one-vs-rest for every value.
    """

    name_or_index: str | int
    value_or_threshold: list[Any] | None = None

    @classmethod
    def from_dict(cls, d: Any, path: str) -> FacetConfig:
        _check(isinstance(d, dict), path, "an object with name_or_index", d)
        _warn_unknown(d, {"name_or_index", "value_or_threshold"}, path)
        if "name_or_index" not in d:
            raise ConfigError(MSG_REQUIRED.format(path=f"{path}.name_or_index", why=""))
        name = d["name_or_index"]
        _check(_is_name_or_index(name), f"{path}.name_or_index", "a column name or index", name)
        v = d.get("value_or_threshold")
        if v is not None and v != []:
            v = _scalar_list(v, f"{path}.value_or_threshold")
        else:
            v = None
        return cls(name, v)

    def to_dict(self) -> dict:
        return _drop_none({"name_or_index": self.name_or_index, "value_or_threshold": self.value_or_threshold})


@dataclass
class BiasMethodConfig:
    """``methods.pre_training_bias`` / ``post_training_bias``: which metrics, optional intervals."""

    methods: Literal["all"] | list[str] = "all"
    confidence: float | None = None
    n_bootstrap: int = 1000

    @classmethod
    def from_dict(cls, d: Any, path: str, allowed: tuple[str, ...]) -> BiasMethodConfig:
        _check(isinstance(d, dict), path, "an object", d)
        _warn_unknown(d, {"methods", "confidence", "n_bootstrap"}, path)
        m = d.get("methods", "all")
        if isinstance(m, str):
            if m != "all":
                raise ConfigError(MSG_CHOICE.format(path=f"{path}.methods", choices='"all" or a list', got=m))
        else:
            _check(isinstance(m, list) and len(m) > 0, f"{path}.methods", '"all" or a non-empty list', m)
            for i, name in enumerate(m):
                if not isinstance(name, str) or name not in allowed:
                    raise _choice_error(f"{path}.methods[{i}]", list(allowed), name)
            _unique(m, f"{path}.methods")
            m = list(m)
        conf = d.get("confidence")
        if conf is not None:
            conf = _option(options.confidence, conf, f"{path}.confidence")
        nb = _option(options.n_bootstrap, d.get("n_bootstrap", 1000), f"{path}.n_bootstrap",
                     low=options.MIN_CONFIG_N_BOOTSTRAP)
        return cls(m, conf, nb)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"methods": self.methods}
        if self.confidence is not None:
            d["confidence"] = self.confidence
        if self.confidence is not None or self.n_bootstrap != 1000:  # round trip
            d["n_bootstrap"] = self.n_bootstrap
        return d


@dataclass
class ShapConfig:
    """``methods.shap``: Kernel SHAP options (Clarify's keys and defaults)."""

    baseline: Any = None
    num_clusters: int | None = None
    num_samples: int | None = None
    agg_method: Literal["mean_abs", "median", "mean_sq"] = "mean_abs"
    use_logit: bool = False
    save_local_shap_values: bool = True
    seed: int | None = None
    features_to_explain: list[str | int] | None = None

    @classmethod
    def from_dict(cls, d: Any, path: str) -> ShapConfig:
        _check(isinstance(d, dict), path, "an object", d)
        names = {f.name for f in fields(cls)}
        _warn_unknown(d, names, path, unsupported=UNSUPPORTED_SHAP_KEYS)
        c = cls()
        if d.get("baseline") is not None and d.get("num_clusters") is not None:
            raise ConfigError(f"{path}: baseline and num_clusters are mutually exclusive")
        b = d.get("baseline")
        if b is not None:
            _check(isinstance(b, (str, list)) and (not isinstance(b, list) or all(isinstance(r, (list, dict)) for r in b)),
                   f"{path}.baseline", "a file path or a list of rows", b)
            _check(b != "" and b != [], f"{path}.baseline", "a file path or a non-empty list of rows", b)
            _local_path(b, f"{path}.baseline")
        c.baseline = b
        v = d.get("num_clusters")
        c.num_clusters = None if v is None else _integer(v, f"{path}.num_clusters", 1)
        c.num_samples = _option(options.num_samples, d.get("num_samples"), f"{path}.num_samples")
        c.seed = _option(options.seed, d.get("seed"), f"{path}.seed")
        agg = d.get("agg_method", "mean_abs")
        agg = agg.lower() if isinstance(agg, str) else agg  # Clarify compares it lower-cased
        if agg not in AGG_METHODS:
            raise _choice_error(f"{path}.agg_method", list(AGG_METHODS), d.get("agg_method"))
        c.agg_method = agg
        for key, default in (("use_logit", False), ("save_local_shap_values", True)):
            v = d.get(key, default)
            _check(isinstance(v, bool), f"{path}.{key}", "true or false", v)
            setattr(c, key, v)
        fe = d.get("features_to_explain")
        if fe is not None:
            _check(isinstance(fe, list) and fe and all(_is_name_or_index(x) for x in fe),
                   f"{path}.features_to_explain", "a non-empty list of column names or indices", fe)
            _unique(fe, f"{path}.features_to_explain")
        c.features_to_explain = fe
        return c

    def to_dict(self) -> dict:
        return _drop_none({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass
class PdpConfig:
    """``methods.pdp``: partial dependence (``features``, or the top-k SHAP features)."""

    grid_resolution: int = 15
    features: list[str | int] | None = None
    top_k_features: int = 10

    @classmethod
    def from_dict(cls, d: Any, path: str) -> PdpConfig:
        _check(isinstance(d, dict), path, "an object", d)
        _warn_unknown(d, {"grid_resolution", "features", "top_k_features"}, path)
        g = _integer(d.get("grid_resolution", 15), f"{path}.grid_resolution", MIN_GRID_RESOLUTION,
                     MAX_GRID_RESOLUTION)
        f = d.get("features")
        if f is not None:
            _check(isinstance(f, list) and f and all(_is_name_or_index(x) for x in f), f"{path}.features",
                   "a non-empty list of column names or indices", f)
            _unique(f, f"{path}.features")
        k = _integer(d.get("top_k_features", 10), f"{path}.top_k_features", 1)
        return cls(g, f, k)

    def to_dict(self) -> dict:
        return _drop_none({"grid_resolution": self.grid_resolution, "features": self.features,
                           "top_k_features": self.top_k_features})


@dataclass
class ReportConfig:
    """``methods.report``: the report's file name stem and title."""

    name: str = "report"
    title: str = "Analysis Report"

    @classmethod
    def from_dict(cls, d: Any, path: str) -> ReportConfig:
        _check(isinstance(d, dict), path, "an object", d)
        _warn_unknown(d, {"name", "title"}, path)
        name = d.get("name", "report")
        _check(isinstance(name, str) and name and "/" not in name and "\\" not in name and name not in (".", ".."),
               f"{path}.name", "a file name without a directory", name)
        title = d.get("title", "Analysis Report")
        _check(isinstance(title, str), f"{path}.title", "a string", title)
        return cls(name, title)

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title}


def _predictor_extras(c: Any, d: dict, path: str) -> None:
    """``predictor.record_template`` (Clarify's, JSON requests), and clarion's ``trusted_types``
    (extra types to trust in a ``.skops`` model), ``timeout`` (seconds one endpoint request may
    take in all) and ``retries`` (extra attempts on transient endpoint faults)."""
    rt = d.get("record_template")
    if rt is not None:
        _check(isinstance(rt, str) and rt, f"{path}.record_template", "a non-empty string", rt)
        ct = d.get("content_type")
        if ct is not None and ct != "application/json":
            raise ConfigError(f"{path}.record_template: applies to content_type application/json only, "
                              f"and {path}.content_type is {ct!r}")
        from clarion.models import _check_record_template

        try:
            _check_record_template(rt)
        except ValueError as exc:
            raise ConfigError(f"{path}.{exc}") from None
    c.record_template = rt
    tt = d.get("trusted_types")
    if tt is not None:
        _check(isinstance(tt, list) and all(isinstance(x, str) and x for x in tt),
               f"{path}.trusted_types", "a list of type names (e.g. [\"sklearn.ensemble._hist_gradient_boosting."
               "gradient_boosting.HistGradientBoostingClassifier\"])", tt)
    c.trusted_types = tt
    t = d.get("timeout")
    if t is not None:
        _check(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < float("inf"),
               f"{path}.timeout", "a positive number of seconds", t)
    c.timeout = t
    r = d.get("retries")
    if r is not None:
        _check(isinstance(r, int) and not isinstance(r, bool) and 0 <= r <= 100, f"{path}.retries",
               "a whole number from 0 to 100", r)
    c.retries = r


@dataclass
class PredictorConfig:
    """``predictor``: where predictions come from and how to read them.

    clarion adds ``model_uri`` (a local model file) and ``endpoint_url`` (an HTTP endpoint);
    SageMaker's deployment keys are kept in ``sagemaker`` (and warned about) but unused.
    """

    model_uri: str | None = None
    endpoint_url: str | None = None
    content_type: str | None = None
    accept_type: str | None = None
    content_template: str | dict | None = None
    label: str | int | None = None
    probability: str | int | None = None
    label_headers: list[str | int] | None = None
    record_template: str | None = None
    trusted_types: list[str] | None = None
    timeout: float | None = None
    retries: int | None = None
    sagemaker: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, path: str) -> PredictorConfig:
        _check(isinstance(d, dict), path, "an object", d)
        known = {"model_uri", "endpoint_url", "content_type", "accept_type", "content_template", "label",
                 "probability", "label_headers"}
        known |= {"record_template", "trusted_types", "timeout", "retries"}
        _warn_unknown(d, known, path, SAGEMAKER_ONLY_PREDICTOR_KEYS)
        c = cls(sagemaker={k: v for k, v in d.items() if k in SAGEMAKER_ONLY_PREDICTOR_KEYS})
        for key in ("model_uri", "endpoint_url"):
            v = d.get(key)
            if v is not None:
                _check(isinstance(v, str) and v, f"{path}.{key}", "a non-empty string", v)
            setattr(c, key, v)
        if c.model_uri and c.endpoint_url:
            raise ConfigError(f"{path}: model_uri and endpoint_url are mutually exclusive")
        if c.endpoint_url and not c.endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(MSG_TYPE.format(path=f"{path}.endpoint_url", want="an http(s):// URL", got=c.endpoint_url))
        _local_path(c.model_uri, f"{path}.model_uri", "; for a model behind an HTTP endpoint use predictor.endpoint_url")
        for key in ("content_type", "accept_type"):
            v = d.get(key)
            v = v.lower() if isinstance(v, str) else v  # Clarify compares them lower-cased
            if v is not None and v not in CONTENT_TYPES:
                raise _choice_error(f"{path}.{key}", list(CONTENT_TYPES), d.get(key))
            setattr(c, key, v)
        t = d.get("content_template")
        if t is not None:
            _check(isinstance(t, (str, dict)), f"{path}.content_template", "a string or an object", t)
            text = t if isinstance(t, str) else json.dumps(t)
            if "$features" not in text and "$record" not in text:
                raise ConfigError(f"{path}.content_template: must contain $features (or $record/$records)")
        c.content_template = t
        for key in ("label", "probability"):
            v = d.get(key)
            if v is not None:
                _check(_is_name_or_index(v), f"{path}.{key}", "a column index or a JMESPath string", v)
            setattr(c, key, v)
        lh = d.get("label_headers")
        if lh is not None:
            _check(isinstance(lh, list) and lh and all(isinstance(x, str) or _is_int(x) for x in lh),
                   f"{path}.label_headers", "a non-empty list of names (text or integers)", lh)
            _unique(lh, f"{path}.label_headers")  # they name result blocks: a duplicate would overwrite one
        c.label_headers = lh
        _predictor_extras(c, d, path)
        return c

    def to_dict(self) -> dict:
        d = _drop_none({f.name: getattr(self, f.name) for f in fields(self) if f.name != "sagemaker"})
        d.update(self.sagemaker)
        return d


@dataclass
class AnalysisConfig:
    """A whole ``analysis_config.json``.

    Read with :meth:`from_dict` / :func:`read_config`, write with :meth:`to_dict` / :meth:`write`.
    Job defaults are applied on reading: ``probability_threshold`` 0.5, ``methods.shap.agg_method``
    ``mean_abs``, ``methods.pdp.top_k_features`` 10, ``methods.report.name`` ``report``.
    """

    dataset_type: str = "text/csv"
    version: str = "1.0"
    headers: list[str] | None = None
    label: str | int | None = None
    label_values_or_threshold: list[Any] | None = None
    facet: list[FacetConfig] = field(default_factory=list)
    group_variable: str | int | None = None
    predicted_label: str | int | None = None
    features: str | None = None
    excluded_columns: list[str | int] | None = None
    probability_threshold: float = 0.5
    joinsource_name_or_index: str | int | None = None
    weights: str | int | None = None
    pre_training_bias: BiasMethodConfig | None = None
    post_training_bias: BiasMethodConfig | None = None
    shap: ShapConfig | None = None
    pdp: PdpConfig | None = None
    report: ReportConfig | None = None
    predictor: PredictorConfig | None = None
    sagemaker: dict[str, Any] = field(default_factory=dict)

    _TOP = ("version", "dataset_type", "headers", "label", "label_values_or_threshold", "facet",
            "group_variable", "predicted_label", "features", "excluded_columns", "probability_threshold",
            "joinsource_name_or_index", "weights", "methods", "predictor")

    @classmethod
    def from_dict(cls, d: Any) -> AnalysisConfig:
        """Validate and read a config dict (see the module docstring for the rules)."""
        _check(isinstance(d, dict), "config", "a JSON object", type(d).__name__)
        _check_depth(d)
        d = _plain(d, {})
        _warn_unknown(d, set(cls._TOP), "", SAGEMAKER_ONLY_TOP_KEYS, UNSUPPORTED_TOP_KEYS)
        c = cls(sagemaker={k: v for k, v in d.items() if k in SAGEMAKER_ONLY_TOP_KEYS or k in UNSUPPORTED_TOP_KEYS})
        v = d.get("version", "1.0")
        if v != "1.0":
            raise ConfigError(MSG_CHOICE.format(path="version", choices=["1.0"], got=v))
        if "dataset_type" not in d:
            raise ConfigError(MSG_REQUIRED.format(path="dataset_type", why=f" (one of {list(DATASET_TYPES)})"))
        dt = d["dataset_type"]
        if not isinstance(dt, str) or dt.lower() not in DATASET_TYPES:
            raise _choice_error("dataset_type", list(DATASET_TYPES), dt)
        c.dataset_type = dt.lower()
        h = d.get("headers")
        if h is not None:
            _check(isinstance(h, list) and h and all(isinstance(x, str) and x for x in h), "headers",
                   "a non-empty list of non-empty strings", h)
            dup = sorted({x for x in h if h.count(x) > 1})
            if dup:
                raise ConfigError(f"headers: duplicate column names {dup}")
        c.headers = h
        for key in ("label", "predicted_label", "group_variable", "joinsource_name_or_index", "weights"):
            val = d.get(key)
            if val is not None:
                _check(_is_name_or_index(val), key, "a column name or index", val)
            setattr(c, key, val)
        f = d.get("features")
        if f is not None:
            _check(isinstance(f, str) and f != "", "features", "a JMESPath string", f)
        c.features = f
        lv = d.get("label_values_or_threshold")
        c.label_values_or_threshold = None if lv is None else _scalar_list(lv, "label_values_or_threshold")
        facets = d.get("facet", [])
        _check(isinstance(facets, list), "facet", "a list of facet objects", facets)
        c.facet = [FacetConfig.from_dict(x, f"facet[{i}]") for i, x in enumerate(facets)]
        ex = d.get("excluded_columns")
        if ex is not None:
            _check(isinstance(ex, list) and all(_is_name_or_index(x) for x in ex), "excluded_columns",
                   "a list of column names or indices", ex)
        c.excluded_columns = ex
        # a score threshold: outside [0, 1] every prediction would be one class (DPPL 0.0, silently)
        c.probability_threshold = _number(d.get("probability_threshold", 0.5), "probability_threshold", 0, 1)

        if "methods" not in d:
            raise ConfigError(MSG_REQUIRED.format(path="methods", why=" (at least one analysis method)"))
        m = d["methods"]
        _check(isinstance(m, dict), "methods", "an object", m)
        _warn_unknown(m, {"pre_training_bias", "post_training_bias", "shap", "pdp", "report"}, "methods",
                      unsupported=UNSUPPORTED_METHOD_KEYS)
        if "pre_training_bias" in m:
            c.pre_training_bias = BiasMethodConfig.from_dict(m["pre_training_bias"], "methods.pre_training_bias",
                                                             PRE_TRAINING_METHODS)
        if "post_training_bias" in m:
            c.post_training_bias = BiasMethodConfig.from_dict(m["post_training_bias"], "methods.post_training_bias",
                                                              POST_TRAINING_METHODS)
        if "shap" in m:
            c.shap = ShapConfig.from_dict(m["shap"], "methods.shap")
        if "pdp" in m:
            c.pdp = PdpConfig.from_dict(m["pdp"], "methods.pdp")
            if c.pdp.features is None and c.shap is None:
                raise ConfigError("methods.pdp.features: required unless methods.shap is also requested")
        if "report" in m:
            c.report = ReportConfig.from_dict(m["report"], "methods.report")
        if not any((c.pre_training_bias, c.post_training_bias, c.shap, c.pdp)):
            raise ConfigError("methods: no analysis method requested (pre_training_bias, post_training_bias, shap, pdp)")
        if "predictor" in d:
            c.predictor = PredictorConfig.from_dict(d["predictor"], "predictor")
            if c.predictor.model_uri:  # else it would select nothing and every output be explained
                for key in ("label", "probability"):
                    v = getattr(c.predictor, key)
                    if isinstance(v, str):
                        raise ConfigError(MSG_JMESPATH_LOCAL.format(path=f"predictor.{key}", got=v))
        if c.pre_training_bias or c.post_training_bias:
            if c.label is None:
                raise ConfigError(MSG_REQUIRED.format(path="label", why=" for bias metrics"))
            if c.label_values_or_threshold is None:
                raise ConfigError(MSG_REQUIRED.format(path="label_values_or_threshold", why=" for bias metrics"))
            if not c.facet:
                raise ConfigError(MSG_REQUIRED.format(path="facet", why=" for bias metrics"))
        if c.dataset_type in ("application/jsonlines", "application/json") and c.features is None:
            raise ConfigError(MSG_REQUIRED.format(path="features", why=f" for dataset_type {c.dataset_type}"))
        return c

    def to_dict(self) -> dict:
        """The config as Clarify's JSON document (defaults written explicitly)."""
        d: dict[str, Any] = {"version": self.version, "dataset_type": self.dataset_type}
        for key in ("headers", "label", "label_values_or_threshold", "group_variable", "predicted_label",
                    "features", "excluded_columns", "joinsource_name_or_index", "weights"):
            v = getattr(self, key)
            if v is not None:
                d[key] = copy.deepcopy(v)
        if self.facet:
            d["facet"] = [f.to_dict() for f in self.facet]
        d["probability_threshold"] = self.probability_threshold
        methods: dict[str, Any] = {}
        for key in ("pre_training_bias", "post_training_bias", "shap", "pdp", "report"):
            v = getattr(self, key)
            if v is not None:
                methods[key] = v.to_dict()
        d["methods"] = methods
        if self.predictor is not None:
            d["predictor"] = self.predictor.to_dict()
        d.update(copy.deepcopy(self.sagemaker))
        return d

    def write(self, path: str | os.PathLike) -> None:
        """Write as JSON (or YAML for a ``.yaml``/``.yml`` path), atomically."""
        from clarion._io import atomic_write_text

        p = os.fspath(path)
        if p.endswith((".yaml", ".yml")):
            import yaml  # optional

            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        else:
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        atomic_write_text(p, text)


def read_config(source: str | os.PathLike | dict | AnalysisConfig) -> AnalysisConfig:
    """Read an analysis config from a path (JSON, or YAML by extension), a dict, or return it as is."""
    if isinstance(source, AnalysisConfig):
        return source
    if isinstance(source, dict):
        return AnalysisConfig.from_dict(source)
    p = os.fspath(source)
    try:
        with open(p, encoding="utf-8-sig") as fh:  # a BOM (Windows editors) is not part of the JSON
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {p}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(MSG_NOT_UTF8.format(file=p, exc=exc)) from None
    try:
        data = _load_yaml(text, p) if p.endswith((".yaml", ".yml")) else _load_json(text, p)
    except RecursionError:
        raise ConfigError(MSG_TOO_DEEP.format(n=MAX_DEPTH)) from None
    return AnalysisConfig.from_dict(data)


def _load_json(text: str, p: str) -> Any:
    def pairs(items: list) -> dict:
        d: dict = {}
        for k, v in items:
            if k in d:  # json keeps the last one silently: as bad as a typo
                raise ConfigError(MSG_DUPLICATE_KEY.format(file=p, key=k, where=""))
            d[k] = v
        return d

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config: {p} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def _load_yaml(text: str, p: str) -> Any:
    try:
        import yaml  # optional
    except ImportError:
        raise ConfigError(f"config: {p} is YAML but PyYAML is not installed (pip install pyyaml)") from None

    class Loader(yaml.SafeLoader):  # safe_load, refusing a key given twice in one mapping
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<": keys it merges may be overridden
                continue
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, collections.abc.Hashable):
                continue  # construct_mapping reports it as a YAML error
            if key in seen:
                where = f" (line {key_node.start_mark.line + 1})"
                raise ConfigError(MSG_DUPLICATE_KEY.format(file=p, key=key, where=where))
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {p} is not valid YAML: {exc}") from None
