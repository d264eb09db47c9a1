"""Typed analysis configs that read and write SageMaker Clarify's ``analysis_config.json``.

A config is data: JSON (or YAML with PyYAML installed, read with ``safe_load``); nothing in it is
evaluated or unpickled. Reading applies Clarify's job defaults, warns (:class:`ConfigWarning`)
about unknown keys and SageMaker-only keys, and raises :class:`ConfigError` naming the key path
for values outside the allowed sets. ``AnalysisConfig.from_dict(c.to_dict()) == c`` for every
valid config (round trip).

clarion additions to Clarify's schema (all optional):

* ``predictor.model_uri``: a local model file that :func:`clarion.models.as_model` reads;
* ``predictor.endpoint_url``: an HTTP endpoint speaking SageMaker's invocation protocol;
* ``methods.{pre,post}_training_bias.confidence`` / ``n_bootstrap``: bootstrap intervals;
* ``weights``: a column of row weights used by every count-based bias metric.

See ``docs/config.md`` for every key.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Literal

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
PRE_TRAINING_METHODS = ("CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL")
POST_TRAINING_METHODS = ("DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "CDDPL", "TE", "FT", "GE")
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
    "segment_config": "nothing yet (segments are not supported)",
    "time_series_data_config": "nothing (time series are not supported)",
}

MSG_TYPE = "{path}: expected {want}, got {got!r}"
MSG_CHOICE = "{path}: must be one of {choices}, got {got!r}"
MSG_REQUIRED = "{path}: required{why}"
MSG_UNKNOWN = "{path}: unknown key, ignored"
MSG_SAGEMAKER = "{path}: SageMaker-only key, ignored by clarion; use {instead}"


class ConfigError(ValueError):
    """An invalid analysis config; the message starts with the offending key path."""


class ConfigWarning(UserWarning):
    """A config key that clarion ignores (unknown, or only meaningful on SageMaker)."""


def _is_name_or_index(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)


def _check(cond: bool, path: str, want: str, got: Any) -> None:
    if not cond:
        raise ConfigError(MSG_TYPE.format(path=path, want=want, got=got))


def _scalar_list(v: Any, path: str) -> list:
    _check(isinstance(v, list) and len(v) > 0 and all(
        isinstance(x, (str, int, float)) and not isinstance(x, bool) or isinstance(x, bool) for x in v),
        path, "a non-empty list of values", v)
    return list(v)


def _warn_unknown(d: dict, known: set[str], path: str, sagemaker: dict[str, str] | None = None) -> None:
    for k in d:
        if k in known:
            continue
        p = f"{path}.{k}" if path else k
        if sagemaker and k in sagemaker:
            warnings.warn(MSG_SAGEMAKER.format(path=p, instead=sagemaker[k]), ConfigWarning, stacklevel=4)
        else:
            warnings.warn(MSG_UNKNOWN.format(path=p), ConfigWarning, stacklevel=4)


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
                if name not in allowed:
                    raise ConfigError(MSG_CHOICE.format(path=f"{path}.methods[{i}]", choices=list(allowed), got=name))
            m = list(m)
        conf = d.get("confidence")
        if conf is not None:
            _check(isinstance(conf, (int, float)) and not isinstance(conf, bool) and 0 < conf < 1,
                   f"{path}.confidence", "a number in (0, 1)", conf)
        nb = d.get("n_bootstrap", 1000)
        _check(isinstance(nb, int) and not isinstance(nb, bool) and nb >= 10, f"{path}.n_bootstrap",
               "an integer >= 10", nb)
        return cls(m, conf, nb)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"methods": self.methods}
        if self.confidence is not None:
            d["confidence"] = self.confidence
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
        _warn_unknown(d, names, path, {"text_config": "nothing (text is not supported)",
                                       "image_config": "nothing (images are not supported)"})
        c = cls()
        if "baseline" in d and "num_clusters" in d:
            raise ConfigError(f"{path}: baseline and num_clusters are mutually exclusive")
        b = d.get("baseline")
        if b is not None:
            _check(isinstance(b, (str, list)) and (not isinstance(b, list) or all(isinstance(r, (list, dict)) for r in b)),
                   f"{path}.baseline", "a file path or a list of rows", b)
        c.baseline = b
        for key in ("num_clusters", "num_samples", "seed"):
            v = d.get(key)
            if v is not None:
                low = 0 if key == "seed" else 1
                _check(isinstance(v, int) and not isinstance(v, bool) and v >= low, f"{path}.{key}",
                       f"an integer >= {low}", v)
            setattr(c, key, v)
        agg = d.get("agg_method", "mean_abs")
        if agg not in AGG_METHODS:
            raise ConfigError(MSG_CHOICE.format(path=f"{path}.agg_method", choices=list(AGG_METHODS), got=agg))
        c.agg_method = agg
        for key, default in (("use_logit", False), ("save_local_shap_values", True)):
            v = d.get(key, default)
            _check(isinstance(v, bool), f"{path}.{key}", "true or false", v)
            setattr(c, key, v)
        fe = d.get("features_to_explain")
        if fe is not None:
            _check(isinstance(fe, list) and fe and all(_is_name_or_index(x) for x in fe),
                   f"{path}.features_to_explain", "a non-empty list of column names or indices", fe)
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
        g = d.get("grid_resolution", 15)
        _check(isinstance(g, int) and not isinstance(g, bool) and g >= 2, f"{path}.grid_resolution",
               "an integer >= 2", g)
        f = d.get("features")
        if f is not None:
            _check(isinstance(f, list) and f and all(_is_name_or_index(x) for x in f), f"{path}.features",
                   "a non-empty list of column names or indices", f)
        k = d.get("top_k_features", 10)
        _check(isinstance(k, int) and not isinstance(k, bool) and k >= 1, f"{path}.top_k_features",
               "an integer >= 1", k)
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
        for key in ("content_type", "accept_type"):
            v = d.get(key)
            if v is not None and v not in CONTENT_TYPES:
                raise ConfigError(MSG_CHOICE.format(path=f"{path}.{key}", choices=list(CONTENT_TYPES), got=v))
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
            _check(isinstance(lh, list) and lh and all(isinstance(x, (str, int)) for x in lh),
                   f"{path}.label_headers", "a non-empty list", lh)
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
        _warn_unknown(d, set(cls._TOP), "", SAGEMAKER_ONLY_TOP_KEYS)
        c = cls(sagemaker={k: v for k, v in d.items() if k in SAGEMAKER_ONLY_TOP_KEYS})
        v = d.get("version", "1.0")
        if v != "1.0":
            raise ConfigError(MSG_CHOICE.format(path="version", choices=["1.0"], got=v))
        if "dataset_type" not in d:
            raise ConfigError(MSG_REQUIRED.format(path="dataset_type", why=f" (one of {list(DATASET_TYPES)})"))
        dt = d["dataset_type"]
        if not isinstance(dt, str) or dt.lower() not in DATASET_TYPES:
            raise ConfigError(MSG_CHOICE.format(path="dataset_type", choices=list(DATASET_TYPES), got=dt))
        c.dataset_type = dt.lower()
        h = d.get("headers")
        if h is not None:
            _check(isinstance(h, list) and all(isinstance(x, str) for x in h), "headers", "a list of strings", h)
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
            _check(isinstance(f, str), "features", "a JMESPath string", f)
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
        pt = d.get("probability_threshold", 0.5)
        _check(isinstance(pt, (int, float)) and not isinstance(pt, bool), "probability_threshold", "a number", pt)
        c.probability_threshold = float(pt)

        if "methods" not in d:
            raise ConfigError(MSG_REQUIRED.format(path="methods", why=" (at least one analysis method)"))
        m = d["methods"]
        _check(isinstance(m, dict), "methods", "an object", m)
        _warn_unknown(m, {"pre_training_bias", "post_training_bias", "shap", "pdp", "report"}, "methods",
                      {"asymmetric_shapley_value": "nothing (time series are not supported)"})
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
            import yaml  # noqa: PLC0415 - optional

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
        with open(p, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {p}") from None
    if p.endswith((".yaml", ".yml")):
        try:
            import yaml  # noqa: PLC0415 - optional
        except ImportError:
            raise ConfigError(f"config: {p} is YAML but PyYAML is not installed (pip install pyyaml)") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config: {p} is not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config: {p} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return AnalysisConfig.from_dict(data)
