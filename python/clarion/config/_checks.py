"""The config reader's key tables, bounds, messages and checking helpers (shared by the section
readers in :mod:`clarion.config._sections` and :class:`clarion.config.AnalysisConfig`)."""

from __future__ import annotations

import difflib
import math
import numbers
import re
import warnings
from typing import Any

from clarion import options
from clarion.bias.registry import metric_names

DATASET_TYPES = (
    "text/csv",
    "application/jsonlines",
    "application/json",
    "application/x-parquet",
    "application/x-image",
)
CONTENT_TYPES = ("text/csv", "application/jsonlines", "application/json")
#: predictor.content_type of an image model (Clarify's; "image/jpg" is read as image/jpeg)
IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-npy")
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
UNSUPPORTED_SHAP_KEYS: dict[str, str] = {}  # text_config and image_config are implemented
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
MSG_VALUE_BOOL = (
    "{path}: true/false is not a value here; write 1 or 0 (or the text as it appears in the data), got {got!r}"
)
MSG_NOT_FINITE = "{path}: expected a finite number, got {got!r}"
MSG_DUPLICATES = "{path}: duplicate entries {dup}"
MSG_JMESPATH_LOCAL = (
    "{path}: {got!r} is a JMESPath, which selects from an endpoint's JSON response, but a "
    "local model returns an array of outputs: give the output's index (0, 1, ...)"
)
MSG_DUPLICATE_KEY = "config: {file}: key {key!r} appears twice in one object{where} (only one would be read)"
MSG_TOO_DEEP = "config: nested deeper than {n} levels"
JSON_VALUE = "a JSON value (text, number, true/false, null, list or object)"
MSG_NOT_UTF8 = "config: {file} is not UTF-8 text ({exc})"
#: deepest nesting a config may have (Clarify's deepest is 4); deeper input would otherwise end in a
#: RecursionError somewhere (parsing, copying, writing)
MAX_DEPTH = 64
MSG_REMOTE = (
    "{path}: {got!r} is a remote URI; clarion reads local files only: download it and give "
    "its path (absolute, or relative to the config file){hint}"
)


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
    ok = (
        isinstance(v, numbers.Real)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and (low < v < high if open_ends else low <= v <= high)
    )
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


def _warn_unknown(
    d: dict,
    known: set[str],
    path: str,
    sagemaker: dict[str, str] | None = None,
    unsupported: dict[str, str] | None = None,
) -> None:
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


#: leaf types a config holds as they are (JSON's own)
_PLAIN_TYPES = frozenset([str, int, float, bool, type(None)])


def _check_depth(obj: Any) -> None:
    """ConfigError when ``obj`` nests deeper than MAX_DEPTH (iterative: a YAML alias bomb or a
    recursive structure terminates too) or holds a value JSON cannot write (a YAML date...), which
    would otherwise fail only when the config is written beside the results."""
    deepest: dict[int, int] = {}
    stack: list[tuple[Any, int, str]] = [(obj, 1, "")]
    while stack:
        o, depth, path = stack.pop()
        if type(o) in _PLAIN_TYPES:  # (the usual leaves, without the numbers ABCs' checks)
            continue
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
    if type(o) in _PLAIN_TYPES:  # (returned as they are, as below)
        return o
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
