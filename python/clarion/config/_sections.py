"""The config's sections: facets, bias methods, SHAP, PDP, report and predictor."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from clarion import options
from clarion.config._checks import (
    AGG_METHODS,
    CONTENT_TYPES,
    IMAGE_CONTENT_TYPES,
    MAX_GRID_RESOLUTION,
    MIN_GRID_RESOLUTION,
    MSG_CHOICE,
    MSG_REQUIRED,
    MSG_TYPE,
    SAGEMAKER_ONLY_PREDICTOR_KEYS,
    UNSUPPORTED_SHAP_KEYS,
    ConfigError,
    _check,
    _choice_error,
    _drop_none,
    _integer,
    _is_int,
    _is_name_or_index,
    _local_path,
    _option,
    _scalar_list,
    _unique,
    _warn_unknown,
)


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
        nb = _option(
            options.n_bootstrap, d.get("n_bootstrap", 1000), f"{path}.n_bootstrap", low=options.MIN_CONFIG_N_BOOTSTRAP
        )
        return cls(m, conf, nb)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"methods": self.methods}
        if self.confidence is not None:
            d["confidence"] = self.confidence
        if self.confidence is not None or self.n_bootstrap != 1000:  # round trip
            d["n_bootstrap"] = self.n_bootstrap
        return d


@dataclass
class TextConfig:
    """``methods.shap.text_config``: explain text columns by units of text (Clarify's NLP
    explainability): ``granularity`` (token, sentence, paragraph), ``language`` (Clarify's name or
    ISO code; ``multi-language`` / ``xx`` for mixed text) and ``max_top_tokens`` (units listed in
    ``global_top_shap_text``, default 50)."""

    granularity: str = "token"
    language: str = "english"
    max_top_tokens: int = 50

    @classmethod
    def from_dict(cls, d: Any, path: str) -> TextConfig:
        from clarion.explain.text import GRANULARITIES, language_code

        _check(isinstance(d, dict), path, "an object with granularity and language", d)
        _warn_unknown(d, {"granularity", "language", "max_top_tokens"}, path)
        for key in ("granularity", "language"):
            if key not in d:
                raise ConfigError(MSG_REQUIRED.format(path=f"{path}.{key}", why=""))
        g = d["granularity"]
        if g not in GRANULARITIES:
            raise _choice_error(f"{path}.granularity", list(GRANULARITIES), g)
        lang = d["language"]
        _check(isinstance(lang, str), f"{path}.language", "a language name or code", lang)
        try:
            language_code(lang, f"{path}.language")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        top = _integer(d.get("max_top_tokens", 50), f"{path}.max_top_tokens", 1)
        return cls(g, lang, top)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"granularity": self.granularity, "language": self.language}
        if self.max_top_tokens != 50:
            d["max_top_tokens"] = self.max_top_tokens
        return d


@dataclass
class ImageConfig:
    """``methods.shap.image_config``: Kernel SHAP over superpixels (Clarify's keys and defaults;
    :class:`clarion.explain.ImageShap` runs it)."""

    model_type: Literal["IMAGE_CLASSIFICATION", "OBJECT_DETECTION"] = "IMAGE_CLASSIFICATION"
    num_segments: int = 20
    segment_compactness: float = 5
    feature_extraction_method: str = "segmentation"
    max_objects: int = 3
    iou_threshold: float = 0.5
    context: float = 1.0

    @classmethod
    def from_dict(cls, d: Any, path: str) -> ImageConfig:
        _check(isinstance(d, dict), path, "an object with model_type", d)
        _warn_unknown(d, {f.name for f in fields(cls)} | {"debug"}, path)
        if "model_type" not in d:
            raise ConfigError(MSG_REQUIRED.format(path=f"{path}.model_type", why=""))
        mt = d["model_type"]
        if mt not in ("IMAGE_CLASSIFICATION", "OBJECT_DETECTION"):
            raise _choice_error(f"{path}.model_type", ["IMAGE_CLASSIFICATION", "OBJECT_DETECTION"], mt)
        fem = d.get("feature_extraction_method", "segmentation")
        if fem != "segmentation":
            raise _choice_error(f"{path}.feature_extraction_method", ["segmentation"], fem)
        c = cls(mt, feature_extraction_method=fem)
        c.num_segments = _integer(d.get("num_segments", 20), f"{path}.num_segments", 1)
        c.max_objects = _integer(d.get("max_objects", 3), f"{path}.max_objects", 1)
        for key, default, lo, hi in (
            ("segment_compactness", 5, None, None),
            ("iou_threshold", 0.5, 0.0, 1.0),
            ("context", 1.0, 0.0, 1.0),
        ):
            v = d.get(key, default)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
            ok = ok and (v > 0 if lo is None else lo <= v <= hi) and v != float("inf")
            want = "a positive number" if lo is None else f"a number in [{lo}, {hi}]"
            _check(ok, f"{path}.{key}", want, v)
            setattr(c, key, v)
        return c

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ShapConfig:
    """``methods.shap``: Kernel SHAP options (Clarify's keys and defaults)."""

    baseline: Any = None
    num_clusters: int | None = None
    num_samples: int | Literal["auto"] | None = None
    agg_method: Literal["mean_abs", "median", "mean_sq"] = "mean_abs"
    use_logit: bool = False
    save_local_shap_values: bool = True
    seed: int | None = None
    features_to_explain: list[str | int] | None = None
    text_config: TextConfig | None = None
    image_config: ImageConfig | None = None
    # clarion additions (issue 19): Clarify's numbers by default (shap's scheme); "cubic" opts in to
    # the estimator with ~2-10x lower error per model call, "auto" num_samples to its tolerance
    estimator: Literal["shap", "cubic"] | None = None
    tolerance: float | None = None

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
            _check(
                isinstance(b, (str, list)) and (not isinstance(b, list) or all(isinstance(r, (list, dict)) for r in b)),
                f"{path}.baseline",
                "a file path or a list of rows",
                b,
            )
            _check(b != "" and b != [], f"{path}.baseline", "a file path or a non-empty list of rows", b)
            _local_path(b, f"{path}.baseline")
        c.baseline = b
        v = d.get("num_clusters")
        c.num_clusters = None if v is None else _integer(v, f"{path}.num_clusters", 1)
        est = d.get("estimator")
        if est is not None and est not in ("shap", "cubic"):
            raise _choice_error(f"{path}.estimator", ["shap", "cubic"], est)
        c.estimator = est
        if d.get("num_samples") == "auto":
            _check(est == "cubic", f"{path}.num_samples", '"auto" only with estimator "cubic"', "auto")
            c.num_samples = "auto"
        else:
            c.num_samples = _option(options.num_samples, d.get("num_samples"), f"{path}.num_samples")
        tol = d.get("tolerance")
        if tol is not None:
            _check(
                isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0 < tol < 1,
                f"{path}.tolerance",
                "a number in (0, 1)",
                tol,
            )
            c.tolerance = float(tol)
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
            _check(
                isinstance(fe, list) and fe and all(_is_name_or_index(x) for x in fe),
                f"{path}.features_to_explain",
                "a non-empty list of column names or indices",
                fe,
            )
            _unique(fe, f"{path}.features_to_explain")
        c.features_to_explain = fe
        if d.get("text_config") is not None:
            if fe is not None:  # as the SDK: features_to_explain is for tabular data only
                raise ConfigError(f"{path}: features_to_explain cannot be combined with text_config")
            c.text_config = TextConfig.from_dict(d["text_config"], f"{path}.text_config")
        if d.get("image_config") is not None:
            c.image_config = ImageConfig.from_dict(d["image_config"], f"{path}.image_config")
        return c

    def to_dict(self) -> dict:
        d = _drop_none({f.name: getattr(self, f.name) for f in fields(self)})
        if self.text_config is not None:
            d["text_config"] = self.text_config.to_dict()
        if self.image_config is not None:
            d["image_config"] = self.image_config.to_dict()
        return d


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
        g = _integer(d.get("grid_resolution", 15), f"{path}.grid_resolution", MIN_GRID_RESOLUTION, MAX_GRID_RESOLUTION)
        f = d.get("features")
        if f is not None:
            _check(
                isinstance(f, list) and f and all(_is_name_or_index(x) for x in f),
                f"{path}.features",
                "a non-empty list of column names or indices",
                f,
            )
            _unique(f, f"{path}.features")
        k = _integer(d.get("top_k_features", 10), f"{path}.top_k_features", 1)
        return cls(g, f, k)

    def to_dict(self) -> dict:
        return _drop_none(
            {"grid_resolution": self.grid_resolution, "features": self.features, "top_k_features": self.top_k_features}
        )


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
        _check(
            isinstance(name, str) and name and "/" not in name and "\\" not in name and name not in (".", ".."),
            f"{path}.name",
            "a file name without a directory",
            name,
        )
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
            raise ConfigError(
                f"{path}.record_template: applies to content_type application/json only, "
                f"and {path}.content_type is {ct!r}"
            )
        from clarion.models import check_record_template

        try:
            check_record_template(rt)
        except ValueError as exc:
            raise ConfigError(f"{path}.{exc}") from None
    c.record_template = rt
    tt = d.get("trusted_types")
    if tt is not None:
        _check(
            isinstance(tt, list) and all(isinstance(x, str) and x for x in tt),
            f"{path}.trusted_types",
            'a list of type names (e.g. ["sklearn.ensemble._hist_gradient_boosting.'
            'gradient_boosting.HistGradientBoostingClassifier"])',
            tt,
        )
    c.trusted_types = tt
    t = d.get("timeout")
    if t is not None:
        _check(
            isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < float("inf"),
            f"{path}.timeout",
            "a positive number of seconds",
            t,
        )
    c.timeout = t
    r = d.get("retries")
    if r is not None:
        _check(
            isinstance(r, int) and not isinstance(r, bool) and 0 <= r <= 100,
            f"{path}.retries",
            "a whole number from 0 to 100",
            r,
        )
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
        known = {
            "model_uri",
            "endpoint_url",
            "content_type",
            "accept_type",
            "content_template",
            "label",
            "probability",
            "label_headers",
        }
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
            raise ConfigError(
                MSG_TYPE.format(path=f"{path}.endpoint_url", want="an http(s):// URL", got=c.endpoint_url)
            )
        _local_path(
            c.model_uri, f"{path}.model_uri", "; for a model behind an HTTP endpoint use predictor.endpoint_url"
        )
        for key in ("content_type", "accept_type"):
            v = d.get(key)
            v = v.lower() if isinstance(v, str) else v  # Clarify compares them lower-cased
            allowed = CONTENT_TYPES + (IMAGE_CONTENT_TYPES if key == "content_type" else ())
            v = "image/jpeg" if v == "image/jpg" else v
            if v is not None and v not in allowed:
                raise _choice_error(f"{path}.{key}", list(allowed), d.get(key))
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
            _check(
                isinstance(lh, list) and lh and all(isinstance(x, str) or _is_int(x) for x in lh),
                f"{path}.label_headers",
                "a non-empty list of names (text or integers)",
                lh,
            )
            _unique(lh, f"{path}.label_headers")  # they name result blocks: a duplicate would overwrite one
        c.label_headers = lh
        _predictor_extras(c, d, path)
        return c

    def to_dict(self) -> dict:
        d = _drop_none({f.name: getattr(self, f.name) for f in fields(self) if f.name != "sagemaker"})
        d.update(self.sagemaker)
        return d
