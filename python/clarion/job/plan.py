"""The plan: the config and the data's columns decide, once, what the job computes and from which columns.

Column roles (label, predicted label, facets, group, weights, join, features), and how a config
value selects rows (:func:`_values_or_threshold`: equality or a threshold, decided on the first
``DECIDE_ROWS`` rows, independent of chunking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clarion import options

DEFAULT_MEMORY_BUDGET = 1 << 30


#: rows sampled (uniformly, seeded) for the baseline and PDP when the rows exceed the memory budget
SAMPLE_ROWS = 100_000


#: rows used to decide how a config value is matched (equality vs. threshold); independent of chunking
DECIDE_ROWS = 1000


#: a single numeric value on a numeric column with at most this many distinct values (in the first
#: DECIDE_ROWS rows) that contains it selects by equality; otherwise it is a threshold
MAX_CATEGORIES = 20


DEFAULT_NUM_CLUSTERS = 10


PREDICTED_COLUMN = "predicted_label"


MSG_COLUMN = "{key}: column {name!r} not found in the data (columns: {columns})"


MSG_INDEX = "{key}: column index {index} is out of range for {n} columns"


MSG_VALUE_KIND = (
    "{key}: {values!r} can never equal a value of column {name!r}, which holds numbers (values seen: "
    '{seen}); give numbers (text that is a decimal number, like "1", is that number)'
)


def parse_bytes(v: int | str) -> int:
    """``"1GiB"``, ``"512MB"``, ``"2e9"`` or an int -> bytes: :func:`clarion.options.byte_size`."""
    return options.byte_size(v, name="memory_budget")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _numeric_dtype(s: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _coerce_values(values: list[Any], sample: Any) -> list[Any]:
    """Config values in the column's type: "1" for an int column is 1, 1 for a text column "1"."""
    import pandas as pd

    if _numeric_dtype(sample):
        out = []
        for v in values:
            if isinstance(v, str):
                try:
                    f = float(v)
                    v = int(f) if f.is_integer() else f
                except ValueError:
                    pass
            out.append(v)
        return out
    if pd.api.types.is_bool_dtype(sample.dtype):
        return [v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1", "yes") for v in values]
    return [str(v) if _is_number(v) else v for v in values]


#: :func:`_distinct` of a numpy integer or boolean column by ``numpy.unique`` (no missing value can
#: be there) instead of pandas' ``dropna().unique()``. Off: pandas (the same values in the same
#: order; tests compare the two).
DISTINCT_BY_NUMPY = True


def _distinct(sample: Any) -> list[Any]:
    """``sample.dropna().unique().tolist()``: the values of the Series ``sample`` other than
    missing ones, each once, in the order they first occur."""
    dt = sample.dtype
    if DISTINCT_BY_NUMPY and isinstance(dt, np.dtype) and dt.kind in "iub":
        values, first = np.unique(sample.to_numpy(), return_index=True)
        return values[np.argsort(first, kind="stable")].tolist()
    return sample.dropna().unique().tolist()


def _check_values_kind(key: str, values: list[Any] | None, sample: Any) -> None:
    """Values (after :func:`_coerce_values`) that are text on a numeric column can never match:
    an error naming the config key and the column, not a count of nothing (or numpy's
    DType promotion error)."""
    if values is None or not _numeric_dtype(sample):
        return
    bad = [v for v in values if not _is_number(v)]
    if bad:
        seen = ", ".join(repr(v) for v in _distinct(sample)[:10]) or "none"
        raise ValueError(MSG_VALUE_KIND.format(key=key, values=bad, name=sample.name, seen=seen))


def _values_or_threshold(values: list[Any], sample: Any) -> tuple[list[Any] | None, float | None]:
    """Clarify's ``value_or_threshold`` semantics, made explicit: one numeric value on a numeric
    column is a threshold (selected ⇔ value > t) unless the column looks categorical (at most
    MAX_CATEGORIES distinct values in the first rows) and contains that value; anything else is a
    list of values matched by equality (a union)."""
    values = _coerce_values(values, sample)
    if len(values) == 1 and _is_number(values[0]) and _numeric_dtype(sample):
        distinct = set(_distinct(sample))
        if not (len(distinct) <= MAX_CATEGORIES and values[0] in distinct):
            return None, values[0]  # as given: [30] is "(30, 66]" on an integer column, as Clarify writes it
    return values, None


@dataclass
class _Facet:
    name: str
    values: list[Any] | None
    threshold: float | None


@dataclass
class _Plan:
    columns: list[str]
    label: str | None
    predicted: str | None  # a predicted-label column in the data
    facets: list[_Facet]
    group: str | None
    weights: str | None
    join: str | None
    features: list[str]
    label_values: list[Any] | None = None
    label_threshold: float | None = None
    label_numeric: bool = False
    negative_label: Any = None
    need_model_rows: bool = False  # model called on the data rows (post-training bias)
    need_model: bool = False


def _resolve(key: str, v: str | int | None, columns: list[str]) -> str | None:
    if v is None:
        return None
    if isinstance(v, int):
        if not 0 <= v < len(columns):
            raise ValueError(MSG_INDEX.format(key=key, index=v, n=len(columns)))
        return columns[v]
    if v not in columns:
        raise ValueError(MSG_COLUMN.format(key=key, name=v, columns=columns))
    return v


def _make_plan(cfg: Any, columns: list[str]) -> _Plan:
    label_key, pred_key = cfg.label, cfg.predicted_label
    if cfg.dataset_type in ("application/jsonlines", "application/json"):
        # label / predicted_label are JMESPaths into each record; the reader appends their values
        # after the features, named by them (or by the last entries of ``headers``)
        extra = [k for k in (label_key, pred_key) if isinstance(k, str)]
        tail = columns[len(columns) - len(extra) :]
        named = dict(zip(extra, tail))
        label_key = named.get(label_key, label_key) if isinstance(label_key, str) else label_key
        pred_key = named.get(pred_key, pred_key) if isinstance(pred_key, str) else pred_key
    label = _resolve("label", label_key, columns)
    pred = _resolve("predicted_label", pred_key, columns)
    facets = (
        [
            _Facet(_resolve(f"facet[{i}].name_or_index", f.name_or_index, columns), f.value_or_threshold, None)
            for i, f in enumerate(cfg.facet)
        ]
        if (cfg.pre_training_bias or cfg.post_training_bias)
        else []
    )
    group = _resolve("group_variable", cfg.group_variable, columns)
    weights = _resolve("weights", cfg.weights, columns)
    join = _resolve("joinsource_name_or_index", cfg.joinsource_name_or_index, columns)
    excluded = {_resolve(f"excluded_columns[{i}]", c, columns) for i, c in enumerate(cfg.excluded_columns or [])}
    drop = {label, pred, weights, join} | excluded
    features = [c for c in columns if c not in drop]
    if not features and (cfg.shap or cfg.pdp or (cfg.post_training_bias and pred is None)):
        raise ValueError(
            "features: no feature columns left after removing the label, predicted label, excluded and weight columns"
        )
    plan = _Plan(columns, label, pred, facets, group, weights, join, features)
    plan.need_model_rows = bool(cfg.post_training_bias) and pred is None
    plan.need_model = plan.need_model_rows or cfg.shap is not None or cfg.pdp is not None
    return plan


def _negative_label(values: list[Any], sample: Any) -> Any:
    """A label value that is not positive, in the label column's type (to map predictions into the
    label's space): the first observed one, else a made-up value of the same type."""
    pos = set(values)
    for v in _distinct(sample):
        if v not in pos:
            return v
    first = values[0]
    if isinstance(first, str):
        return "not " + first
    if isinstance(first, bool):
        return not first
    return min(v for v in values if _is_number(v)) - 1
