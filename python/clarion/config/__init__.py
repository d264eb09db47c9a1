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
import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from clarion.config._checks import (  # the key tables, bounds and messages are public here too
    AGG_METHODS,  # noqa: F401 - re-exported: clarion.config's public constants
    CONTENT_TYPES,
    DATASET_TYPES,
    IMAGE_CONTENT_TYPES,
    JSON_VALUE,  # noqa: F401 - re-exported: clarion.config's public constants
    MAX_DEPTH,
    MAX_GRID_RESOLUTION,  # noqa: F401 - re-exported: clarion.config's public constants
    MAX_N_BOOTSTRAP,  # noqa: F401 - re-exported: clarion.config's public constants
    MAX_NUM_SAMPLES,  # noqa: F401 - re-exported: clarion.config's public constants
    MIN_GRID_RESOLUTION,  # noqa: F401 - re-exported: clarion.config's public constants
    MIN_N_BOOTSTRAP,  # noqa: F401 - re-exported: clarion.config's public constants
    MIN_NUM_SAMPLES,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_CHOICE,
    MSG_DID_YOU_MEAN,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_DUPLICATE_KEY,
    MSG_DUPLICATES,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_JMESPATH_LOCAL,
    MSG_KNOWN_KEYS,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_NOT_FINITE,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_NOT_UTF8,
    MSG_REMOTE,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_REQUIRED,
    MSG_SAGEMAKER,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_TOO_DEEP,
    MSG_TYPE,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_UNKNOWN,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_UNSUPPORTED,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_VALUE_BOOL,  # noqa: F401 - re-exported: clarion.config's public constants
    MSG_VALUES_MIXED,  # noqa: F401 - re-exported: clarion.config's public constants
    POST_TRAINING_METHODS,
    PRE_TRAINING_METHODS,
    PREDICTOR_EXTRA_KEYS,  # noqa: F401 - re-exported: clarion.config's public constants
    SAGEMAKER_ONLY_PREDICTOR_KEYS,  # noqa: F401 - re-exported: clarion.config's public constants
    SAGEMAKER_ONLY_TOP_KEYS,
    SEED_LIMIT,  # noqa: F401 - re-exported: clarion.config's public constants
    UNSUPPORTED_METHOD_KEYS,
    UNSUPPORTED_PREDICTOR_KEYS,  # noqa: F401 - re-exported: clarion.config's public constants
    UNSUPPORTED_SHAP_KEYS,  # noqa: F401 - re-exported: clarion.config's public constants
    UNSUPPORTED_TOP_KEYS,
    ConfigError,
    ConfigWarning,
    _check,
    _check_depth,
    _choice_error,
    _is_name_or_index,
    _number,
    _plain,
    _scalar_list,
    _warn_unknown,
)
from clarion.config._sections import (
    BiasMethodConfig,
    FacetConfig,
    ImageConfig,
    PdpConfig,
    PredictorConfig,
    ReportConfig,
    ShapConfig,
    TextConfig,
)

__all__ = [
    "AnalysisConfig",
    "BiasMethodConfig",
    "ConfigError",
    "ConfigWarning",
    "FacetConfig",
    "ImageConfig",
    "PdpConfig",
    "PredictorConfig",
    "ReportConfig",
    "ShapConfig",
    "TextConfig",
    "read_config",
]


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

    _TOP = (
        "version",
        "dataset_type",
        "headers",
        "label",
        "label_values_or_threshold",
        "facet",
        "group_variable",
        "predicted_label",
        "features",
        "excluded_columns",
        "probability_threshold",
        "joinsource_name_or_index",
        "weights",
        "methods",
        "predictor",
    )

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
            _check(
                isinstance(h, list) and h and all(isinstance(x, str) and x for x in h),
                "headers",
                "a non-empty list of non-empty strings",
                h,
            )
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
            _check(
                isinstance(ex, list) and all(_is_name_or_index(x) for x in ex),
                "excluded_columns",
                "a list of column names or indices",
                ex,
            )
        c.excluded_columns = ex
        # a score threshold: outside [0, 1] every prediction would be one class (DPPL 0.0, silently)
        c.probability_threshold = _number(d.get("probability_threshold", 0.5), "probability_threshold", 0, 1)

        if "methods" not in d:
            raise ConfigError(MSG_REQUIRED.format(path="methods", why=" (at least one analysis method)"))
        m = d["methods"]
        _check(isinstance(m, dict), "methods", "an object", m)
        _warn_unknown(
            m,
            {"pre_training_bias", "post_training_bias", "shap", "pdp", "report"},
            "methods",
            unsupported=UNSUPPORTED_METHOD_KEYS,
        )
        if "pre_training_bias" in m:
            c.pre_training_bias = BiasMethodConfig.from_dict(
                m["pre_training_bias"], "methods.pre_training_bias", PRE_TRAINING_METHODS
            )
        if "post_training_bias" in m:
            c.post_training_bias = BiasMethodConfig.from_dict(
                m["post_training_bias"], "methods.post_training_bias", POST_TRAINING_METHODS
            )
        if "shap" in m:
            c.shap = ShapConfig.from_dict(m["shap"], "methods.shap")
        if "pdp" in m:
            c.pdp = PdpConfig.from_dict(m["pdp"], "methods.pdp")
            if c.pdp.features is None and c.shap is None:
                raise ConfigError("methods.pdp.features: required unless methods.shap is also requested")
        if "report" in m:
            c.report = ReportConfig.from_dict(m["report"], "methods.report")
        if not any((c.pre_training_bias, c.post_training_bias, c.shap, c.pdp)):
            raise ConfigError(
                "methods: no analysis method requested (pre_training_bias, post_training_bias, shap, pdp)"
            )
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
        if c.dataset_type == "application/x-image":  # images: explanations over superpixels only
            if c.shap is None or c.shap.image_config is None:
                raise ConfigError(MSG_REQUIRED.format(path="methods.shap.image_config", why=" for application/x-image"))
            if c.pre_training_bias or c.post_training_bias or c.pdp:
                raise ConfigError("methods: only shap (with image_config) is supported for application/x-image")
            if c.shap.features_to_explain is not None:  # as the SDK: tabular data only
                raise ConfigError("methods.shap.features_to_explain: not supported with image_config")
        elif c.predictor is not None and c.predictor.content_type in IMAGE_CONTENT_TYPES:
            raise ConfigError(
                MSG_CHOICE.format(
                    path="predictor.content_type",
                    choices=f"{list(CONTENT_TYPES)} (image types need dataset_type application/x-image)",
                    got=c.predictor.content_type,
                )
            )
        elif c.shap is not None and c.shap.image_config is not None:  # the SDK writes it for any data
            warnings.warn(
                f"methods.shap.image_config: applies to dataset_type application/x-image only, "
                f"ignored for {c.dataset_type}",
                ConfigWarning,
                stacklevel=2,
            )
            c.shap.image_config = None
        if c.dataset_type in ("application/jsonlines", "application/json") and c.features is None:
            raise ConfigError(MSG_REQUIRED.format(path="features", why=f" for dataset_type {c.dataset_type}"))
        return c

    def to_dict(self) -> dict:
        """The config as Clarify's JSON document (defaults written explicitly)."""
        d: dict[str, Any] = {"version": self.version, "dataset_type": self.dataset_type}
        for key in (
            "headers",
            "label",
            "label_values_or_threshold",
            "group_variable",
            "predicted_label",
            "features",
            "excluded_columns",
            "joinsource_name_or_index",
            "weights",
        ):
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
