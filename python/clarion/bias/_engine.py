"""Layer 2 of the bias engine: a validated specification, count state, and report assembly.

``Spec`` holds what a call asked for (columns, values, thresholds, models). ``State`` turns
batches of rows into count tensors with the grouped-count kernel, keeps them (growing with the
vocabularies), merges with another state, and assembles a :class:`BiasReport` by evaluating the
formulas of :mod:`clarion.bias._metrics`. :func:`clarion.bias.report` is one ``State`` fed with
all rows; :class:`clarion.bias.Accumulator` is one fed batch by batch.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clarion import options
from clarion._counts import (
    grouped_counts,
    grouped_counts_prepared,
    grouped_threshold_counts,
    slot_counts_prepared,
)
from clarion.bias._encode import (
    Matcher,
    SlotCodes,
    Vocabulary,
    column_values,
    factorize,
    is_missing_value,
    is_numeric_column,
    number_of,
    slot_codes,
)
from clarion.bias._metrics import (
    ALL_METRICS,
    COUNT_METRICS,
    METRIC_INFO,
    POST_TRAINING,
    PRE_TRAINING,
    compute,
)
from clarion.bias._result import BiasReport, FacetResult

# Message templates (tests import and match these).
MSG_DATA_TYPE = "data must be a pandas DataFrame, a pyarrow Table or RecordBatch, or a dict of 1-D arrays; got {t}"
MSG_COLUMN = "{arg}: column {name!r} is not in the data (columns: {cols})"
MSG_LENGTH = "{arg}: {what} has {got} rows but the data has {n}"
MSG_NOT_NUMERIC = "{arg}: column {name!r} must be numeric (bool, integer or float) for a threshold; got dtype {dtype}"
MSG_LABEL_MISSING = (
    "{arg}: column {name!r} has a missing value (NaN/None) at row {row}; clarion does not guess "
    "its class (compat='smclarify' counts it as negative)"
)
MSG_VALUE_ABSENT = "{arg}: value {value!r} does not occur in column {name!r} (values seen: {seen})"
MSG_NO_POSITIVE = (
    "label_threshold: no value of column {name!r} is above {t} (the largest is {max}), so every label would be negative"
)
MSG_BOTH = "give either {a} or {b}, not both"
MSG_NEITHER = "give label_values (the positive label values) or label_threshold (positive = label > threshold)"
MSG_METHOD = "methods: unknown metric {name!r}; known: {known}"
MSG_STAGE_METHOD = "methods: {name} is a {stage}-training metric but stage={want!r}"
MSG_NEED_PRED = "predicted_label is required for post-training metrics ({names})"
MSG_SCORE_NAN = (
    "predicted_label: model {model!r} has a {value} score at row {row}; scores must be finite "
    "(a NaN score would count as a negative prediction)"
)
MSG_PRED_MISSING = (
    "predicted_label: model {model!r} has a missing prediction (NaN/None) at row {row}; a model "
    "must predict a label for every row"
)
MSG_KIND = (
    "{arg}: {values} can never equal a value of column {name!r} (values seen: {seen}); give values of the "
    'column\'s type (text that is a decimal number, like "1", matches the number 1)'
)
MSG_PRED_UNKNOWN = (
    "predicted_label: model {model!r} predicts {preds}, none of which is a value of the label column "
    "{label!r} (values seen: {seen}) or one of label_values {values}; predictions must be given in "
    "the label's values"
)
MSG_GROUP_MISSING = (
    "group_variable: missing value at row {row}; give every row a subgroup (compat='smclarify' "
    "leaves such rows out of CDDL/CDDPL as smclarify does)"
)
MSG_FEATURE = "features: column {name!r} is not numeric (dtype {dtype}); FlipTest needs numeric or bool features"
MSG_MODEL_KIND = (
    "predicted_label: model {model!r} changed kind between batches (was {was}, now {now}); "
    "give the same dtype in every batch"
)
MSG_PROB = "probability_threshold must be a number or a list of numbers, got {value!r}"
MSG_PROB_RANGE = (
    "probability_threshold must lie in [0, 1] (a score > threshold is a positive prediction, so "
    "outside [0, 1] every probability would give the same class), got {value!r}"
)
#: the most bootstrap replicates any bias call accepts (config's ``n_bootstrap`` has the same bound):
#: each replicate holds its own count table, and beyond 10**5 the Monte-Carlo error of an interval
#: end is far below the sampling error the interval describes
MAX_N_BOOTSTRAP = options.MAX_N_BOOTSTRAP
MSG_CONFIDENCE = "confidence must be a number in (0, 1), got {value!r}"

STAGES = ("pre", "post", "both")


# ------------------------------------------------------------------------------------------------
# data access


class Table:
    """Uniform column access over a DataFrame, a pyarrow Table/RecordBatch or a dict of arrays."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self._index: pd.Index | None = None  # a DataFrame's columns: hashed membership, no list
        self._columns: list | None = None
        if isinstance(data, pd.DataFrame):
            if isinstance(data.columns, pd.MultiIndex):  # partial keys would match an Index lookup
                self._columns = list(data.columns)
            else:
                self._index = data.columns
            self.n = len(data)
            self._get = self._frame_getter(data)
        elif type(data).__module__.startswith("pyarrow") and hasattr(data, "column_names"):
            self.columns = list(data.column_names)
            self.n = data.num_rows
            self._get = lambda name: data.column(name)
        elif isinstance(data, Mapping):
            self.columns = list(data.keys())
            arrays = {k: column_values(v) for k, v in data.items()}
            lengths = {k: len(v) for k, v in arrays.items()}
            self.n = next(iter(lengths.values()), 0)
            for k, ln in lengths.items():
                if ln != self.n:
                    raise ValueError(MSG_LENGTH.format(arg="data", what=f"column {k!r}", got=ln, n=self.n))
            self._get = arrays.__getitem__
        else:
            raise TypeError(MSG_DATA_TYPE.format(t=type(data).__name__))

    @staticmethod
    def _frame_getter(data: pd.DataFrame):
        """Column access; numpy-typed columns come back as arrays without building a Series
        (``DataFrame.__getitem__`` costs tens of microseconds, which adds up over small batches)."""
        unique = data.columns.is_unique

        def get(name: Any) -> Any:
            if unique and hasattr(data, "_get_column_array"):
                try:
                    arr = data._get_column_array(data.columns.get_loc(name))  # guarded
                except (AttributeError, TypeError, IndexError, KeyError):  # pragma: no cover - pandas internals
                    return data[name]
                if isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.dtype.kind in "biufcmM":
                    return arr
            return data[name]

        return get

    @property
    def columns(self) -> list:
        """Column names, in order (built on first use: listing a DataFrame's Arrow-backed column
        index costs more than a small batch's whole encoding)."""
        if self._columns is None:
            self._columns = list(self._index)
        return self._columns

    @columns.setter
    def columns(self, value: list) -> None:
        self._columns = value

    def col(self, name: Any, arg: str) -> Any:
        try:
            ok = name in (self._index if self._columns is None else self._columns)
        except TypeError:
            ok = False
        if not ok:
            cols = ", ".join(repr(c) for c in self.columns[:20]) + (" ..." if len(self.columns) > 20 else "")
            raise ValueError(MSG_COLUMN.format(arg=arg, name=name, cols=cols))
        return self._get(name)

    def codes_col(self, name: Any, arg: str) -> Any:
        """:meth:`col`, except that a DataFrame's categorical column comes back as its
        ``pandas.Categorical`` (no Series is built: for :func:`clarion.bias._encode.slot_codes`)."""
        if self._index is not None and self._index.is_unique and hasattr(self.data, "_get_column_array"):
            try:
                arr = self.data._get_column_array(self._index.get_loc(name))  # guarded
            except (AttributeError, TypeError, IndexError, KeyError):
                arr = None
            if isinstance(arr, pd.Categorical):
                return arr
            if isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.dtype.kind in "biufcmM":
                return arr  # what col() returns for it, without a second lookup
        return self.col(name, arg)

    def source(self, src: Any, arg: str) -> Any:
        """A column by name, or an array given directly (checked for length)."""
        if isinstance(src, str) or (isinstance(src, (int, np.integer)) and not isinstance(src, bool)):
            return self.col(src, arg)
        arr = column_values(src)
        if len(arr) != self.n:
            raise ValueError(MSG_LENGTH.format(arg=arg, what="the array", got=len(arr), n=self.n))
        return arr


def dtype_of(col: Any) -> Any:
    col = column_values(col)
    return getattr(col, "dtype", None) or getattr(col, "type", None)


def to_numeric(col: Any, arg: str, name: Any) -> np.ndarray:
    """A numeric column as a float64 numpy array (NaN for missing); TypeError for non-numeric."""
    if not is_numeric_column(col):
        raise TypeError(MSG_NOT_NUMERIC.format(arg=arg, name=name, dtype=dtype_of(col)))
    col = column_values(col)
    if isinstance(col, pd.Series):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(col, np.ndarray):
        return col.astype(np.float64, copy=False)
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _native_max(x: np.ndarray, col: Any) -> Any:
    """max of the non-NaN values, as an int when the column holds integers (for "(t, max]")."""
    m = float(np.nanmax(x))
    dt = dtype_of(col)
    kind = getattr(dt, "kind", None)
    if kind in ("i", "u") or (kind is None and "int" in str(dt)):
        arr = column_values(col)
        if isinstance(arr, np.ndarray) and arr.size:  # exact beyond 2**53, where the float max is not
            return int(arr.max())
        return int(m)
    return m


def seen_string(values: list, limit: int = 10) -> str:
    """The values of a column named in an error message: their reprs, or what says there is none."""
    vals = [v.item() if isinstance(v, np.generic) else v for v in values if not is_missing_value(v)]
    if not vals:
        return "only missing values" if values else "none recorded"
    out = ", ".join(repr(v) for v in vals[:limit])
    return out + (", ..." if len(vals) > limit else "")


def _distinct_sample(col: Any, limit: int = 10) -> list:
    """Up to ``limit`` distinct non-missing values of a column (for error messages)."""
    try:
        _, uniques, present = factorize(column_values(col))
    except (TypeError, ValueError):  # pragma: no cover - exotic column
        return []
    out = [u for j, u in enumerate(uniques) if (present is None or present[j]) and not is_missing_value(u)]
    return [u.item() if isinstance(u, np.generic) else u for u in out[:limit]]


def _add_sample(sample: list, new: list, limit: int = 10) -> None:
    for v in new:
        if len(sample) >= limit:
            return
        try:
            if v in sample:
                continue
        except TypeError:  # pragma: no cover
            continue
        sample.append(v)


def combine_max(a: Any, b: Any) -> Any:
    """The larger of two column maxima (None: none yet), a float when either is (a column that
    is float in one batch, e.g. with a missing value, is a float column: one interval format
    whatever the batches or the merge order)."""
    if a is None:
        return b
    if b is None:
        return a
    m = max(a, b)
    return float(m) if isinstance(a, float) or isinstance(b, float) else m


def is_float_column(col: Any) -> bool:
    col = column_values(col)
    if isinstance(col, pd.Series):
        return pd.api.types.is_float_dtype(col.dtype)
    if isinstance(col, np.ndarray):
        return col.dtype.kind == "f"
    import pyarrow as pa

    return pa.types.is_floating(col.type)


# ------------------------------------------------------------------------------------------------
# the specification


def _as_list(v: Any) -> list | None:
    if v is None:
        return None
    if isinstance(v, (list, tuple, set, frozenset, np.ndarray, pd.Index, pd.Series)):
        return list(v)
    return [v]


def _per_facet(v: Any, facets: list, arg: str, is_list: bool) -> dict:
    if isinstance(v, Mapping):
        unknown = [k for k in v if k not in facets]
        if unknown:
            raise ValueError(f"{arg}: {unknown[0]!r} is not one of the facets {facets}")
        return {f: (_as_list(v.get(f)) if is_list else v.get(f)) for f in facets}
    return {f: (_as_list(v) if is_list else v) for f in facets}


def _threshold(v: Any, arg: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or math.isnan(v):
        raise ValueError(f"{arg} must be a number, got {v!r}")
    return v


@dataclass
class Spec:
    """A validated bias configuration (shared by report() and Accumulator)."""

    label: Any
    facets: list
    facet_values: dict
    facet_threshold: dict
    label_values: list | None
    label_threshold: float | None
    models: list  # [(name, source)]
    thresholds: list  # probability thresholds
    multi_model: bool
    group_variable: Any
    weights: Any
    features: list | None = None

    @classmethod
    def build(
        cls,
        *,
        label: Any,
        facet: Any,
        facet_values: Any = None,
        facet_threshold: Any = None,
        label_values: Any = None,
        label_threshold: Any = None,
        predicted_label: Any = None,
        probability_threshold: Any = 0.5,
        group_variable: Any = None,
        weights: Any = None,
        features: Any = None,
    ) -> Spec:
        if label is None:
            raise ValueError("label: give the label column name")
        facets = _as_list(facet)
        if not facets:
            raise ValueError("facet: give a facet column name or a list of names")
        if len(set(map(repr, facets))) != len(facets):
            raise ValueError(f"facet: a facet is listed twice in {facets}")
        if label in facets:
            raise ValueError(f"facet: {label!r} is the label column")
        fv = _per_facet(facet_values, facets, "facet_values", True)
        ft = {
            f: _threshold(t, "facet_threshold")
            for f, t in _per_facet(facet_threshold, facets, "facet_threshold", False).items()
        }
        for f in facets:
            if fv[f] is not None and ft[f] is not None:
                raise ValueError(MSG_BOTH.format(a="facet_values", b="facet_threshold") + f" (facet {f!r})")
            if fv[f] is not None and len(fv[f]) == 0:
                raise ValueError(f"facet_values: empty list for facet {f!r}")
        lv = _as_list(label_values)
        for arg, vals in [("label_values", lv)] + [(f"facet_values[{f!r}]", fv[f]) for f in facets]:
            for v in vals or []:
                try:
                    hash(v)
                except TypeError:
                    raise ValueError(
                        f"{arg}: {str(v)[:80]} is not a single value (give numbers, text, booleans or dates)"
                    ) from None
        lt = _threshold(label_threshold, "label_threshold")
        if lv is not None and lt is not None:
            raise ValueError(MSG_BOTH.format(a="label_values", b="label_threshold"))
        if lv is None and lt is None:
            raise ValueError(MSG_NEITHER)
        if lv is not None and not lv:
            raise ValueError("label_values: empty list")
        # models
        models: list = []
        if predicted_label is None:
            pass
        elif isinstance(predicted_label, str):
            models = [(predicted_label, predicted_label)]
        elif isinstance(predicted_label, Mapping):
            models = [(str(k), v) for k, v in predicted_label.items()]
        elif isinstance(predicted_label, np.ndarray) and predicted_label.ndim == 2:
            models = [(f"model_{j}", predicted_label[:, j]) for j in range(predicted_label.shape[1])]
        elif isinstance(predicted_label, (list, tuple)) and all(isinstance(p, str) for p in predicted_label):
            models = [(p, p) for p in predicted_label]
        elif (
            isinstance(predicted_label, (list, tuple))
            and predicted_label
            and all(
                isinstance(p, str) or (hasattr(p, "__len__") and not isinstance(p, (bytes, dict)))
                for p in predicted_label
            )
        ):
            models = [(p, p) if isinstance(p, str) else (f"model_{j}", p) for j, p in enumerate(predicted_label)]
        elif isinstance(predicted_label, pd.DataFrame):
            models = [(str(c), predicted_label[c]) for c in predicted_label.columns]
        else:
            models = [("predicted_label", predicted_label)]
        if predicted_label is not None and not models:
            raise ValueError("predicted_label: no model given")
        names = [m for m, _ in models]
        if len(set(names)) != len(names):
            raise ValueError(f"predicted_label: model names must be unique, got {names}")
        multi_thr = isinstance(probability_threshold, (list, tuple, np.ndarray))
        thresholds = _as_list(probability_threshold)
        if not thresholds:
            raise ValueError(MSG_PROB.format(value=probability_threshold))
        grid = len(thresholds) > 16 and set(map(type, thresholds)) == {float}
        if grid:
            # a long grid of floats (PerformanceAccumulator's ~1,100 count thresholds): the same
            # checks in three numpy passes instead of a Python loop (~0.4 ms a build); a strictly
            # increasing grid has no repeated value (no sort needed to tell)
            arr = np.array(thresholds, dtype=np.float64)
            if np.isnan(arr).any():
                raise ValueError(MSG_PROB.format(value=probability_threshold))
            if ((arr < 0) | (arr > 1)).any():
                raise ValueError(MSG_PROB_RANGE.format(value=probability_threshold))
            if not (arr[1:] > arr[:-1]).all() and np.unique(arr).size != arr.size:
                raise ValueError(f"probability_threshold: repeated value in {thresholds}")
        else:
            for t in thresholds:
                if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or math.isnan(t):
                    raise ValueError(MSG_PROB.format(value=probability_threshold))
                if not 0 <= t <= 1:
                    raise ValueError(MSG_PROB_RANGE.format(value=probability_threshold))
            if len(set(thresholds)) != len(thresholds):
                raise ValueError(f"probability_threshold: repeated value in {thresholds}")
        feats = _as_list(features)
        return cls(
            label=label,
            facets=facets,
            facet_values=fv,
            facet_threshold=ft,
            label_values=lv,
            label_threshold=lt,
            models=models,
            thresholds=list(thresholds) if grid else [float(t) for t in thresholds],  # (floats already)
            multi_model=len(models) > 1 or multi_thr,
            group_variable=group_variable,
            weights=weights,
            features=feats,
        )


def normalize_methods(methods: Any, stage: str, has_pred: bool) -> tuple[list[str], list[str]]:
    """(pre-training names, post-training names) to evaluate."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if isinstance(methods, str) and methods == "all":
        pre = list(PRE_TRAINING) if stage in ("pre", "both") else []
        post = list(POST_TRAINING) if stage in ("post", "both") and has_pred else []
        if stage == "post" and not has_pred:
            raise ValueError(MSG_NEED_PRED.format(names="stage='post'"))
        return pre, post
    names = _as_list(methods)
    if not names:
        raise ValueError("methods: give 'all' or a non-empty list of metric names")
    pre, post = [], []
    for n in names:
        if n not in ALL_METRICS:
            raise ValueError(MSG_METHOD.format(name=n, known=", ".join(ALL_METRICS)))
        st = METRIC_INFO[n]["stage"]
        if stage != "both" and st != stage:
            raise ValueError(MSG_STAGE_METHOD.format(name=n, stage=st, want=stage))
        (pre if st == "pre" else post).append(n)
    if post and not has_pred:
        raise ValueError(MSG_NEED_PRED.format(names=", ".join(post)))
    return sorted(set(pre)), sorted(set(post))


def _sort_key_values(values: list) -> list[int]:
    """Indices of ``values`` in a canonical order (sorted; mixed types by type name, then str)."""
    idx = list(range(len(values)))
    try:
        return sorted(idx, key=lambda i: values[i])
    except TypeError:
        return sorted(idx, key=lambda i: (type(values[i]).__name__, str(values[i])))


def interval_string(threshold: Any, col_max: Any, compat: str = "clarion") -> str:
    """THE ``value_or_threshold`` string of a threshold: ``"(t, max]"``, formatted as smclarify and
    Clarify do (``pandas.IntervalIndex.from_breaks``): integers stay integers (``"(30, 66]"``)
    unless the threshold or the column is float (``"(30.5, 66.0]"``, ``"(30.0, 66.0]"`` for a
    float column). Every writer of a facet or label interval (``clarion.bias.report``, the
    Accumulator, ``clarion analyze`` / ``monitor``, Dask) goes through this function; a threshold
    keeps the type it was given in (a config's ``[30]`` is the integer 30), and the column's
    maximum is a float as soon as any batch of the column was float (:func:`combine_max`).

    When no value is above the threshold (``max <= t``) smclarify writes ``""`` (``max == t``) or
    ``"(max, t]"``; with ``compat="clarion"`` the string stays ``"(t, max]"`` (``"(60, 55]"``: the
    empty group of values above 60), so that it still names the threshold, the entry's identity
    (see :func:`entry_key`)."""
    if isinstance(threshold, (np.integer, np.floating)):
        threshold = threshold.item()
    if isinstance(col_max, (np.integer, np.floating)):
        col_max = col_max.item()
    if col_max is None or (isinstance(col_max, float) and math.isnan(col_max)):
        return f"({threshold}, nan]"
    if compat == "clarion" and not col_max > threshold:
        if isinstance(threshold, float) or isinstance(col_max, float):
            return f"({float(threshold)}, {float(col_max)}]"
        return f"({threshold}, {col_max}]"
    breaks = [threshold]
    if abs(col_max) not in breaks:
        breaks.append(col_max)
    breaks = sorted(breaks)
    if INTERVAL_TEXT_DIRECT:
        text = _interval_text(breaks)
        if text is not None:
            return text
    return ",".join(map(str, pd.IntervalIndex.from_breaks(breaks)))


#: :func:`interval_string` writes the text of ``pandas.IntervalIndex.from_breaks`` itself for
#: Python ints and floats (what pandas writes: one int64 or float64 dtype for both breaks, each
#: printed as numpy prints it, which for a float64 is Python's ``repr``); anything else goes through
#: pandas. Off: always pandas (the strings are the same; tests compare the two).
INTERVAL_TEXT_DIRECT = True
_EXACT_INT = 1 << 53


def _interval_text(breaks: list) -> str | None:
    """``",".join(map(str, pd.IntervalIndex.from_breaks(breaks)))`` for one or two sorted breaks
    that are Python ints (of at most 53 bits) or floats (not NaN); None for anything else."""
    kinds = {type(b) for b in breaks}
    if not kinds <= {int, float}:
        return None
    if float in kinds:
        if any(b != b for b in breaks) or any(type(b) is int and abs(b) >= _EXACT_INT for b in breaks):
            return None
        breaks = [float(b) for b in breaks]
    elif any(abs(b) >= _EXACT_INT for b in breaks):
        return None
    if len(breaks) < 2:
        return ""
    return f"({breaks[0]!r}, {breaks[1]!r}]"


_INTERVAL = re.compile(r"\(\s*([^,\]]+?)\s*,\s*([^,\]]+?)\s*\]")


def entry_key(value_or_threshold: Any) -> str:
    """What identifies a facet entry across analyses: its ``value_or_threshold`` string, except
    that a threshold interval ``"(t, max]"`` is identified by its threshold alone, as a number
    (``"(30, 66]"``, ``"(30.0, 66.0]"`` and ``"(30, 70]"`` — the same facet ``> 30`` on data with
    another maximum — all give ``"(30, *]"``). ``clarion monitor`` matches baseline and current
    entries with it."""
    s = str(value_or_threshold)
    m = _INTERVAL.fullmatch(s.strip())
    if m is None:
        return s
    t = number_of(m.group(1))
    if t is None:
        return s
    return f"({int(t) if float(t).is_integer() else t}, *]"


def _columns(cols: list) -> np.ndarray | None:
    """The 1-D arrays ``cols`` as the C-contiguous columns of one [N, B] array (None for none)."""
    if not cols:
        return None
    if len(cols) == 1:  # a contiguous column viewed as [N, 1]: no copy
        return np.ascontiguousarray(cols[0]).reshape(-1, 1)
    return np.ascontiguousarray(np.column_stack(cols))


def _binary_seen(codes: np.ndarray) -> np.ndarray:
    """The codes (0 and/or 1) that occur in a binary code array, without sorting it."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.int32)
    n1 = int(np.count_nonzero(codes))
    return np.array([c for c, ok in ((0, n1 < codes.size), (1, n1 > 0)) if ok], dtype=np.int32)


def _numeric_positive(x: np.ndarray, values: list) -> np.ndarray:
    """int8 1 where the numeric array ``x`` equals one of the numbers ``values`` (the label rule
    on numeric columns)."""
    if x.dtype.kind == "b":
        want_t = any(v == 1 for v in values)
        want_f = any(v == 0 for v in values)
        xb = x.view(np.int8)
        y = (
            xb
            if (want_t and not want_f)
            else (1 - xb if want_f and not want_t else np.full(x.shape, int(want_t and want_f), np.int8))
        )
        return np.ascontiguousarray(y, dtype=np.int8)
    if len(values) == 1:
        return (x == values[0]).view(np.int8)
    return np.isin(x, np.asarray(values)).view(np.int8)


def _pad_axis(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    if a.shape[axis] == size:
        return a
    shape = list(a.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=a.dtype)  # (np.pad with zeros, without its ~10 us of set-up)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


# ------------------------------------------------------------------------------------------------
# the one-pass path (State.fast_count)

#: the largest slot table (and count table) the one-pass path counts into; wider batches take the
#: general path (it keeps grouped_counts' chunking, and so its weighted sums, unchanged)
_SLOT_CELLS_MAX = 1 << 18


#: the largest slot table whose occupied-cell bitmap keys the pattern memo (bounds its memory:
#: at most 256 keys of this many bytes per state)
_MEMO_CELLS_MAX = 1 << 14
#: guessed integer ranges that failed before a State stops guessing (a stream whose ranges wander)
_HINT_MISSES_MAX = 8
#: the widest integer range kept as a hint (slot_codes' own limit also depends on the batch)
_RANGE_HINT_MAX = 1 << 20


class _RangeHints:
    """Integer ranges of a State's columns (role -> ``(dtype, lo, span)``). ``guessing``: a view
    that hands them to :func:`slot_codes` (and notes whether one was taken); else the record,
    which measures each column and widens its range to the hull of those measured."""

    __slots__ = ("known", "guessing", "used", "misses", "pending")

    def __init__(self, known: dict | None = None) -> None:
        self.guessing = known is not None
        self.known = {} if known is None else known
        self.used = False
        self.misses = 0
        self.pending: dict = {}  # ranges of sampled guesses, known once their pass counted


#: an integer column of at least this many rows without a known range is first counted in the
#: range of a strided sample of it (:func:`_sampled_range`), which spares its min/max pass
_SAMPLE_RANGE_MIN_ROWS = 1 << 16
_SAMPLE_RANGE_ROWS = 2048


def _sampled_range(col: Any) -> tuple | None:
    """``(dtype, lo, span)`` of a strided sample of ``_SAMPLE_RANGE_ROWS`` rows of a 1-D integer
    numpy column of at least ``_SAMPLE_RANGE_MIN_ROWS`` rows (a guess at its range, see
    :meth:`State._codes`), else None. Every value of the sample is one of the column's, so when
    the count pass finds no row outside [lo, lo + span - 1] (nor the value just below it, which
    lands in the missing slot and is refused after the pass), that is the column's exact range."""
    if type(col) is not np.ndarray or col.ndim != 1 or col.dtype.kind != "i" or len(col) < _SAMPLE_RANGE_MIN_ROWS:
        return None
    sample = col[:: len(col) // _SAMPLE_RANGE_ROWS]
    lo, hi = int(sample.min()), int(sample.max())
    return (col.dtype, lo, hi - lo + 1)


class _SlowPath(Exception):
    """This batch takes the general path (State.encode + State.count)."""


def _key_of(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _slot_key(sc: SlotCodes, j: int) -> Any:
    if j == 0:
        return _MISSING
    v = _key_of(sc.value(j))
    return _MISSING if is_missing_value(v) else v


_MISSING = object()


def _distinct_keys(sc: SlotCodes, present: np.ndarray) -> bool:
    """Whether the slots that occur stand for distinct vocabulary entries (then each count cell
    receives the rows of one slot only, as it does on the general path)."""
    keys = [_slot_key(sc, int(j)) for j in present]
    try:
        return len(set(keys)) == len(keys)
    except TypeError:  # pragma: no cover - unhashable values are refused by the vocabulary too
        return False


def _commit_vocab(vocab: Vocabulary, sc: SlotCodes, present: np.ndarray) -> np.ndarray:
    """Adds the values of the slots that occur to ``vocab`` (in slot order, as
    :meth:`Vocabulary.encode` adds a column's values); returns the code of each slot.

    The codes of a slot map the vocabulary has seen before (same key) are cached on it: a value's
    code never changes, so a batch whose values all have codes adds nothing and looks nothing up."""
    cache = vocab.__dict__.setdefault("_slot_codes", {})
    hit = cache.get(sc.key) if sc.key is not None else None
    if hit is not None:
        lut, known = hit
        if known[present].all():
            return lut
    with vocab._lock:
        lut = np.zeros(sc.size, dtype=np.int32) if hit is None else hit[0].copy()
        known = np.zeros(sc.size, dtype=bool) if hit is None else hit[1].copy()
        known[0] = True
        for j in present:
            if known[j]:
                continue
            u = sc.value(int(j))
            lut[j] = 0 if is_missing_value(u) else vocab._add(u)
            known[j] = True
        if sc.key is not None:
            if len(cache) > 64:
                cache.clear()
            cache[sc.key] = (lut, known)
    return lut


# ------------------------------------------------------------------------------------------------
# counting state


@dataclass
class FacetState:
    name: Any
    threshold: float | None
    vocab: Vocabulary = field(default_factory=Vocabulary)
    seen: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=bool))  # per code
    col_max: Any = None
    values: list | None = None  # facet_values: codes are binary (0 = facet a, 1 = facet d)
    # facet_values: some distinct values of the column, kept while a selected value has not occurred
    # (for the error that names the values seen)
    sample: list = field(default_factory=list)
    # counts: "pre" [V, K, 2]; "labels" [B1, V, K, 2, 2]; "scores" [B2, T, V, K, 2, 2] (V axis = -4/-3)
    counts: dict = field(default_factory=dict)
    # bootstrap replicates of the same tables, each with a leading [R] axis (Accumulator only)
    boot: dict = field(default_factory=dict)

    @property
    def matcher(self) -> Matcher:
        m = self.__dict__.get("_matcher")
        if m is None or m.values != self.values:
            m = self.__dict__["_matcher"] = Matcher(self.values)
        return m

    @property
    def n_codes(self) -> int:
        return 2 if self.binary else len(self.vocab)

    @property
    def binary(self) -> bool:
        return self.threshold is not None or self.values is not None


class State:
    """Counts of everything a :class:`Spec` needs, growable and mergeable."""

    def __init__(self, spec: Spec, *, weighted: bool | None = None) -> None:
        self.spec = spec
        self.label_vocab = Vocabulary()
        self.label_max: Any = None
        self.group_vocab = Vocabulary() if spec.group_variable is not None else None
        self.group_missing = False
        self.model_kinds: list[str] | None = None
        self.facets = {f: FacetState(f, spec.facet_threshold[f], values=spec.facet_values[f]) for f in spec.facets}
        self.n_rows = 0
        self.weighted = spec.weights is not None if weighted is None else weighted
        self.lock = threading.RLock()
        self.matcher = Matcher(spec.label_values) if spec.label_values is not None else None
        self.label_sample: list = []  # some label values, kept while a label value has not occurred

    # -- encoding ------------------------------------------------------------------------------

    def _positive(
        self, col: Any, arg: str, name: Any, compat: str, track: bool, seen_out: list | None = None
    ) -> np.ndarray:
        """1 where the label (``track``) or a model's predicted label is positive.

        Predictions (``track=False``) may not be missing in either compat mode. ``seen_out``
        receives the batch's distinct values when they were hashed (not on the numeric fast path)."""
        spec = self.spec
        missing_ok = compat == "smclarify" and track
        if spec.label_threshold is not None:
            x = to_numeric(col, arg, name)
            nan = np.isnan(x)
            if not missing_ok and nan.any():
                row = int(np.flatnonzero(nan)[0])
                raise ValueError(
                    MSG_PRED_MISSING.format(model=name, row=row)
                    if not track
                    else MSG_LABEL_MISSING.format(arg=arg, name=name, row=row)
                )
            if track and x.size and not nan.all():
                m = _native_max(x, col)
                with self.lock:
                    self.label_max = combine_max(self.label_max, m)
            return (x > spec.label_threshold).view(np.int8)
        fast = self._positive_numeric(col, arg, name, compat, track)
        if fast is not None:
            return fast
        vocab = self.label_vocab if track else Vocabulary()
        codes, seen = vocab.encode(col)
        if not missing_ok and seen.size and seen[0] == 0:
            row = int(np.flatnonzero(codes == 0)[0])
            raise ValueError(
                MSG_PRED_MISSING.format(model=name, row=row)
                if not track
                else MSG_LABEL_MISSING.format(arg=arg, name=name, row=row)
            )
        batch_values = [vocab.values[c - 1] for c in seen if c > 0]
        bad = self.matcher.incomparable(batch_values)
        if bad:
            raise ValueError(
                MSG_KIND.format(
                    arg="label_values" if track else "predicted_label",
                    values=repr(bad) if track else f"label_values {bad!r}",
                    name=name,
                    seen=seen_string(batch_values),
                )
            )
        if seen_out is not None:
            seen_out.extend(batch_values)
        return self._label_lut(vocab)[codes]

    def _label_lut(self, vocab: Vocabulary) -> np.ndarray:
        """lut[code] = 1 when the vocabulary value of ``code`` is a positive label value."""
        cached = getattr(vocab, "_positive_lut", None)
        if cached is not None and cached.size == len(vocab):
            return cached
        values = list(vocab.values)
        lut = np.zeros(len(values) + 1, dtype=np.int8)
        for j, v in enumerate(values):
            lut[j + 1] = bool(self.matcher.given_matching(v))
        vocab._positive_lut = lut  # the vocabulary only grows, so size keys the cache
        return lut

    def _positive_numeric(self, col: Any, arg: str, name: Any, compat: str, track: bool) -> np.ndarray | None:
        """Fast path for numpy-typed bool/int/float columns with numeric label values: no hashing.

        Only the label values that occur are recorded in the label vocabulary (that is all the
        "value never occurs" check needs)."""
        values = self.matcher.numbers()  # "1" is the number 1 (the matching rule)
        if values is None:
            return None
        if isinstance(col, pd.Series) and isinstance(col.dtype, np.dtype):
            x = col.to_numpy()
        elif isinstance(col, np.ndarray):
            x = col
        else:
            return None
        if x.ndim != 1 or x.dtype.kind not in "biuf":
            return None
        if x.dtype.kind == "f":
            nan = np.isnan(x)
            if (compat == "clarion" or not track) and nan.any():
                row = int(np.flatnonzero(nan)[0])
                raise ValueError(
                    MSG_PRED_MISSING.format(model=name, row=row)
                    if not track
                    else MSG_LABEL_MISSING.format(arg=arg, name=name, row=row)
                )
        y = _numeric_positive(x, values)
        if track:
            if len(values) == 1:
                occurred = values if y.any() else []
            else:
                occurred = [v for v in values if np.any(x == v)]
            with self.label_vocab._lock:
                for v in occurred:
                    self.label_vocab._add(v)
                short = len(self.label_vocab.values) < len(values)
            if short and self.n_rows == 0:  # the first batch, when a label value has not occurred
                _add_sample(self.label_sample, _distinct_sample(x))
        return y

    def _facet_codes(self, fs: FacetState, col: Any) -> tuple[np.ndarray, np.ndarray]:
        if fs.threshold is not None:
            x = to_numeric(col, "facet_threshold", fs.name)
            finite = ~np.isnan(x)
            if finite.any():
                m = _native_max(x, col)
                with self.lock:
                    fs.col_max = combine_max(fs.col_max, m)
            codes = (x > fs.threshold).view(np.int8).astype(np.int32)
            return codes, _binary_seen(codes)
        if fs.values is not None:
            return self._selected_codes(fs, col)
        return fs.vocab.encode(col)

    def _selected_codes(self, fs: FacetState, col: Any) -> tuple[np.ndarray, np.ndarray]:
        """facet_values: 1 for rows whose value is selected, else 0 (missing included); the
        selected values that occur are recorded in ``fs.vocab``."""
        matcher = fs.matcher
        values = matcher.numbers()  # "1" is the number 1 (the matching rule); None: not all numbers
        x = None
        if values is not None:
            if isinstance(col, pd.Series) and isinstance(col.dtype, np.dtype) and col.dtype.kind in "biuf":
                x = col.to_numpy()
            elif isinstance(col, np.ndarray) and col.ndim == 1 and col.dtype.kind in "biuf":
                x = col
        if x is not None:
            d = (x == values[0]) if len(values) == 1 else np.isin(x, np.asarray(values))
            occurred = values if len(values) == 1 and d.any() else [v for v in values if np.any(x == v)]
            if len(values) == 1 and not d.any():
                occurred = []
        else:
            local, uniques, present = factorize(col)
            lut = np.zeros(len(uniques) + 1, dtype=np.int8)
            occurred = []
            batch_values = []
            for j, u in enumerate(uniques):
                if present is not None and not present[j]:
                    continue
                k = u.item() if isinstance(u, np.generic) else u
                batch_values.append(k)
                hits = matcher.given_matching(k)
                if hits:
                    lut[j + 1] = 1
                    occurred.extend(hits)  # the configured values, as given: the absence check looks them up
            bad = matcher.incomparable(batch_values)
            if bad:
                raise ValueError(
                    MSG_KIND.format(arg="facet_values", values=repr(bad), name=fs.name, seen=seen_string(batch_values))
                )
            d = lut[np.asarray(local, dtype=np.intp) + 1]
        with fs.vocab._lock:
            for v in occurred:
                fs.vocab._add(v)
            short = len(fs.vocab.values) < len(fs.values)
        if short and self.n_rows == 0:  # the first batch, when a selected value has not occurred
            _add_sample(fs.sample, batch_values if x is None else _distinct_sample(x))
        codes = d.view(np.int8).astype(np.int32) if d.dtype == bool else d.astype(np.int32)
        return codes, _binary_seen(codes)

    def encode(self, table: Table, compat: str) -> dict:
        """Everything one batch contributes, as arrays (no counting yet)."""
        spec = self.spec
        out: dict[str, Any] = {"n": table.n}
        label_seen: list | None = [] if spec.label_values is not None else None
        out["y"] = self._positive(
            table.col(spec.label, "label"), "label", spec.label, compat, track=True, seen_out=label_seen
        )
        w = None
        if spec.weights is not None:
            w = table.source(spec.weights, "weights")
            w = to_numeric(w, "weights", spec.weights if isinstance(spec.weights, str) else "<array>")
        out["w"] = w
        g = None
        if self.group_vocab is not None:
            gcol = table.source(spec.group_variable, "group_variable")
            g, gseen = self.group_vocab.encode(gcol)
            if gseen.size and gseen[0] == 0:
                if compat == "clarion":
                    raise ValueError(MSG_GROUP_MISSING.format(row=int(np.flatnonzero(g == 0)[0])))
                with self.lock:
                    self.group_missing = True
        out["g"] = g
        # models
        lab_cols, score_cols, kinds = [], [], []
        for name, src in spec.models:
            col = (
                table.codes_col(src, "predicted_label")
                if isinstance(src, str)
                else table.source(src, "predicted_label")
            )
            if not isinstance(col, pd.Categorical) and spec.label_values is not None and is_float_column(col):
                s = to_numeric(col, "predicted_label", name)
                bad = np.flatnonzero(~np.isfinite(s))
                if bad.size:  # NaN > t is False: a NaN score would silently count as a negative prediction
                    raise ValueError(
                        MSG_SCORE_NAN.format(
                            model=name, row=int(bad[0]), value="NaN" if np.isnan(s[bad[0]]) else s[bad[0]]
                        )
                    )
                score_cols.append(s)
                kinds.append("scores")
            else:
                pred_seen: list | None = [] if label_seen else None
                lab_cols.append(self._positive(col, "predicted_label", name, compat, track=False, seen_out=pred_seen))
                kinds.append("labels")
                if pred_seen and label_seen:
                    self._check_predicted_values(name, pred_seen, label_seen)
        if spec.models:
            with self.lock:
                if self.model_kinds is None:
                    self.model_kinds = kinds
                elif self.model_kinds != kinds:
                    j = next(i for i, (a, b) in enumerate(zip(self.model_kinds, kinds)) if a != b)
                    raise ValueError(
                        MSG_MODEL_KIND.format(model=spec.models[j][0], was=self.model_kinds[j], now=kinds[j])
                    )
        out["preds"] = _columns(lab_cols)
        out["scores"] = _columns(score_cols)
        out["facets"] = {}
        for f, fs in self.facets.items():
            out["facets"][f] = self._facet_codes(fs, table.col(f, "facet"))
        return out

    def _check_predicted_values(self, model: Any, preds: list, labels: list) -> None:
        """A model's predicted labels must be values of the label (same batch): "Y"/"N" predictions
        for a "yes"/"no" label would otherwise all count as negative."""
        if any(self.matcher.given_matching(p) for p in preds):
            return
        known = Matcher(labels)
        if any(known.given_matching(p) for p in preds):
            return
        raise ValueError(
            MSG_PRED_UNKNOWN.format(
                model=model,
                preds=seen_string(preds),
                label=self.spec.label,
                seen=seen_string(labels),
                values=self.spec.label_values,
            )
        )

    # -- counting ------------------------------------------------------------------------------

    def count(
        self,
        enc: dict,
        *,
        n_bootstrap: int = 0,
        seed: int | None = None,
        row_offset: int = 0,
        backend: str = "auto",
        n_threads: int | None = None,
        rows: np.ndarray | None = None,
        span: int | None = None,
    ) -> dict:
        """Count one encoded batch: {facet: (V, K, {kind: counts})} with the V and K it used.

        ``rows`` / ``span``: the encoded rows sit at positions ``rows`` of ``span`` consecutive
        global rows starting at ``row_offset`` (the others are left out as group -1), so that a
        subset of a batch (one time window) draws the bootstrap weights of its own global rows.
        """
        K = len(self.group_vocab) if self.group_vocab is not None else 1

        def spread(a: np.ndarray | None, fill: int = 0) -> np.ndarray | None:
            if a is None or rows is None:
                return a
            out = np.full((span,) + a.shape[1:], fill, dtype=a.dtype)
            out[rows] = a
            return out

        if rows is not None:
            enc = {**enc, **{k: spread(enc[k]) for k in ("y", "w", "preds", "scores")}}
        kw = dict(
            weights=enc["w"],
            n_bootstrap=n_bootstrap,
            seed=seed,
            row_offset=row_offset,
            backend=backend,
            n_threads=n_threads,
        )
        lead = 1 if n_bootstrap else 0
        # the encoder's arrays (host numpy, 1-D codes, 2-D preds, float weights) with a valid seed and
        # offset go to the kernel without the public wrapper's argument checks
        prepared = (
            isinstance(row_offset, (int, np.integer))
            and not isinstance(row_offset, bool)
            and row_offset >= 0
            and (
                not n_bootstrap
                or (
                    seed is not None
                    and isinstance(n_bootstrap, (int, np.integer))
                    and n_bootstrap > 0
                    and isinstance(seed, (int, np.integer))
                    and 0 <= seed < 2**64
                )
            )
            and isinstance(enc["y"], np.ndarray)
            and enc["y"].ndim == 1
            and (enc["w"] is None or (isinstance(enc["w"], np.ndarray) and enc["w"].shape == enc["y"].shape))
            and (enc["preds"] is None or (isinstance(enc["preds"], np.ndarray) and enc["preds"].ndim == 2))
        )
        pkw = (
            dict(
                n_bootstrap=int(n_bootstrap),
                seed=int(seed or 0),
                row_offset=int(row_offset),
                backend=backend,
                n_threads=n_threads,
            )
            if prepared
            else {}
        )
        result = {}
        for f, fs in self.facets.items():
            codes, seen = enc["facets"][f]
            V = fs.n_codes
            groups = codes if enc["g"] is None else codes * np.int32(K) + enc["g"]
            groups = spread(np.asarray(groups, dtype=np.int32), -1)
            G = V * K
            counts = {}
            if prepared:  # the arrays are ours (host numpy, valid shapes): skip the wrapper's checks
                if enc["preds"] is None and enc["scores"] is None:
                    c = grouped_counts_prepared(groups, enc["y"], None, enc["w"], G, 2, 1, **pkw)
                    counts["pre"] = c.reshape(c.shape[:lead] + (V, K, 2))
                if enc["preds"] is not None:
                    c = grouped_counts_prepared(groups, enc["y"], enc["preds"], enc["w"], G, 2, 2, **pkw)
                    c = c if lead else c[0]
                    counts["labels"] = c.reshape(c.shape[: lead + 1] + (V, K, 2, 2))
            else:
                if enc["preds"] is None and enc["scores"] is None:
                    c = grouped_counts(groups, enc["y"], n_groups=G, n_labels=2, **kw)
                    counts["pre"] = c.reshape(c.shape[:lead] + (V, K, 2))
                if enc["preds"] is not None:
                    c = grouped_counts(groups, enc["y"], enc["preds"], n_groups=G, n_labels=2, n_preds=2, **kw)
                    counts["labels"] = c.reshape(c.shape[: lead + 1] + (V, K, 2, 2))
            if enc["scores"] is not None:
                th = np.nextafter(np.asarray(self.spec.thresholds, dtype=np.float64), np.inf)
                order = np.argsort(th, kind="stable")
                c = grouped_threshold_counts(groups, enc["y"], enc["scores"], th[order], n_groups=G, n_labels=2, **kw)
                c = c.reshape(c.shape[: lead + 2] + (V, K, 2, 2))
                inv = np.empty_like(order)
                inv[order] = np.arange(order.size)
                counts["scores"] = np.take(c, inv, axis=lead + 1)
            result[f] = (V, K, seen, counts)
        return result

    # -- the one-pass path (issue 21) --------------------------------------------------------------

    def fast_count(
        self,
        table: Table,
        compat: str,
        *,
        backend: str = "auto",
        n_threads: int | None = None,
        keep: dict | None = None,
        team: bool = False,
    ) -> dict | None:
        """:meth:`encode` + :meth:`count` of one batch in one pass over its columns per facet.

        Every column becomes its slot codes (:func:`clarion.bias._encode.slot_codes`: categorical
        and boolean columns as they are, integers by offset, other columns hashed once), and the
        slot-count kernel counts each combination of (facet, group, label, prediction) slots; which
        values occur, the vocabulary codes, the positive labels and the final count table all follow
        from that small table. The counts equal :meth:`count`'s (integer counts exactly; weighted
        sums bit for bit: the kernel adds each row's weight where ``grouped_counts`` would).

        Returns the batch as :meth:`count` does, or None when the batch needs the general path:
        probability scores, several models, a column the slot kernel does not take, too many
        values, another backend, or anything the general path reports as an error (it then raises
        it, with its message). The state changes only when the counts are returned (a threshold's
        column maximum excepted: recording it twice changes nothing).

        ``keep``: a dict that receives, with the counts, the batch's ``"plan"`` (its slot codes
        and lookup tables) and ``"raws"`` (per facet, the slot table the count pass filled): an
        accumulator's compiled stream is built from them and notes the batch's pattern without a
        second pass. ``team``: the count pass runs on the stream's persistent helper team
        (``clarion._counts.slot_counts_prepared``'s ``team``).
        """
        spec = self.spec
        if table.n == 0 or len(spec.models) > 1 or compat not in ("clarion", "smclarify"):
            return None
        hints = self.__dict__.setdefault("_range_hints", _RangeHints())
        if hints.misses < _HINT_MISSES_MAX:
            guess = _RangeHints(hints.known)
            out = self._fast_count(table, compat, backend, n_threads, guess, keep, team)
            if out is not None:
                for role, h in guess.pending.items():  # sampled ranges that held: measured
                    hints.known.setdefault(role, h)
            if out is not None or not guess.used:
                return out
            hints.misses += 1  # a row outside a guessed range (or a refusal): once more, measured
        return self._fast_count(table, compat, backend, n_threads, hints, keep, team)

    def _fast_count(
        self,
        table: Table,
        compat: str,
        backend: str,
        n_threads: int | None,
        hints: _RangeHints,
        keep: dict | None = None,
        team: bool = False,
    ) -> dict | None:
        try:
            plan = self._slot_plan(table, compat, hints)
            if plan is None:
                return None
            return self._slot_run(plan, table.n, compat, backend, n_threads, keep, team)
        except _SlowPath:
            return None
        except (TypeError, ValueError):  # the general path raises it again, with its message
            return None

    @staticmethod
    def _codes(col: Any, role: Any, hints: _RangeHints | None, hashing: bool = True) -> SlotCodes | None:
        """:func:`slot_codes` of a column; an integer column of a stream takes the range of the
        batches before it (``hints``), which spares its min/max pass."""
        if hints is None:
            return slot_codes(col, hashing=hashing)
        h = hints.known.get(role) if hints.guessing else None
        sampled = False
        if h is None and hints.guessing:
            h = _sampled_range(col)
            sampled = h is not None
        sc = slot_codes(col, h, hashing=hashing)
        if sc is None or sc.key is None or sc.key[0] != "range":
            return sc
        if h is not None and sc.key[1:] == h:
            hints.used = True
            if sampled:
                # (a sample's min and max occur in the column: counted without a refusal, the
                # range is the column's own, as measured; refused, this pass is discarded)
                hints.pending[role] = h
            return sc
        dt, lo, span = sc.key[1:]  # measured: the hull of the ranges seen (it settles)
        h = hints.known.get(role)
        if h is not None and h[0] == dt:
            end = max(lo + span, h[1] + h[2])
            lo = min(lo, h[1])
            span = end - lo
        if span <= _RANGE_HINT_MAX:
            hints.known[role] = (dt, lo, span)
        return sc

    def _cached_part(self, role: Any, sc: SlotCodes, build: Any) -> dict:
        """``build(sc)`` (a column's lookup tables, derived from its values alone), cached by the
        slot codes' key: the batches of a stream usually share their values' list."""
        if sc.key is None:
            return {**build(sc), "sc": sc}
        cache = self.__dict__.setdefault("_part_cache", {})
        hit = cache.get((role, sc.key))
        if hit is None:
            if len(cache) > 256:
                cache.clear()
            hit = cache[(role, sc.key)] = build(sc)
        return {**hit, "sc": sc}

    def _slot_label(self, col: Any, name: Any, compat: str, track: bool, hints: _RangeHints | None = None) -> dict:
        """Slot codes and positive lookup table of the label (``track``) or a model's labels."""
        spec = self.spec
        if spec.label_threshold is not None:
            y = self._positive(col, "label" if track else "predicted_label", name, compat, track)
            sc = SlotCodes(y, 1, 3, [0, 1], None)
            return {"sc": sc, "lut": np.array([0, 0, 1], dtype=np.int32), "kind": "threshold"}
        sc = self._codes(col, "label" if track else "pred", hints)
        if sc is None:
            raise _SlowPath
        return self._cached_part("label", sc, self._label_part)

    def _label_part(self, sc: SlotCodes) -> dict:
        values = self.matcher.numbers()
        if values is not None and sc.uvals is not None:  # what _positive_numeric takes
            slots = np.arange(1, sc.size)
            lut = np.zeros(sc.size, dtype=np.int32)
            lut[1:] = _numeric_positive(sc.values_array(slots), values)
            return {"lut": lut, "kind": "numeric", "values": values}
        if sc.uvals is not None and sc.size > _SLOT_CELLS_MAX:
            raise _SlowPath  # a wide integer range matched by text: the general path lists what occurs
        keys = [sc.value(j) for j in range(1, sc.size)]
        lut = np.zeros(sc.size, dtype=np.int32)
        for j, u in enumerate(keys):
            lut[j + 1] = bool(self.matcher.given_matching(u))
        return {"lut": lut, "kind": "vocab", "keys": keys}

    def _slot_vocab(self, col: Any, role: Any = None, hints: _RangeHints | None = None) -> dict:
        sc = self._codes(col, role, hints)
        if sc is None:
            raise _SlowPath
        return self._cached_part("vocab", sc, self._vocab_part)

    @staticmethod
    def _vocab_part(sc: SlotCodes) -> dict:
        miss = np.zeros(sc.size, dtype=bool)
        if sc.uvals is None or sc.uvals.dtype.kind == "f":  # values that stand for a missing value
            miss[1:] = [is_missing_value(sc.value(j)) for j in range(1, sc.size)]
        return {"lut": np.arange(sc.size, dtype=np.int32), "kind": "vocab", "miss": miss}

    def _slot_facet(self, fs: FacetState, col: Any, hints: _RangeHints | None = None) -> dict:
        if fs.threshold is not None:
            if type(col) is np.ndarray and col.ndim == 1 and col.dtype.kind == "i" and col.size:
                # an integer column: its own values as slots (no pass to compare them with the
                # threshold), each slot's side of it in a lookup table; the column maximum is that
                # of the slots that occur (committed in _slot_run)
                sc = self._codes(col, ("facet", fs.name), hints, hashing=False)
                if sc is not None and sc.key is not None and sc.key[0] == "range":
                    return self._cached_part(("facet", fs.name), sc, lambda sc: self._threshold_part(fs, sc))
            codes, _ = self._facet_codes(fs, col)
            return {"sc": SlotCodes(codes, 1, 3, [0, 1], None), "lut": np.array([0, 0, 1], np.int32), "kind": "binary"}
        if fs.values is None:
            return self._slot_vocab(col, ("facet", fs.name), hints)
        sc = self._codes(col, ("facet", fs.name), hints)
        if sc is None:
            raise _SlowPath
        return self._cached_part(("facet", fs.name), sc, lambda sc: self._selected_part(fs, sc))

    @staticmethod
    def _threshold_part(fs: FacetState, sc: SlotCodes) -> dict:
        """facet_threshold on an integer range: lut[slot] = 1 when the slot's value, as a float64
        (what :meth:`_facet_codes` compares), is above the threshold."""
        lut = np.zeros(sc.size, dtype=np.int32)
        x = sc.values_array(np.arange(1, sc.size))
        lut[1:] = x.astype(np.float64) > fs.threshold
        return {"lut": lut, "kind": "threshold_range"}

    @staticmethod
    def _selected_part(fs: FacetState, sc: SlotCodes) -> dict:
        values = fs.matcher.numbers()
        lut = np.zeros(sc.size, dtype=np.int32)
        if values is not None and sc.uvals is not None and sc.uvals.dtype.kind in "biuf":
            x = sc.values_array(np.arange(1, sc.size))
            lut[1:] = (x == values[0]) if len(values) == 1 else np.isin(x, np.asarray(values))
            return {"lut": lut, "kind": "selected_numeric", "values": values}
        hits = []
        for j in range(1, sc.size):
            u = sc.value(j)
            k = u.item() if isinstance(u, np.generic) else u
            h = [] if is_missing_value(k) else fs.matcher.given_matching(k)
            hits.append((k, h))
            lut[j] = 1 if h else 0
        return {"lut": lut, "kind": "selected", "hits": hits}

    def _slot_plan(self, table: Table, compat: str, hints: _RangeHints | None = None) -> dict | None:
        """The batch's columns as slot codes, in :meth:`encode`'s order (no state change)."""
        spec = self.spec
        plan: dict[str, Any] = {}
        ycol = table.codes_col(spec.label, "label") if spec.label_threshold is None else table.col(spec.label, "label")
        plan["y"] = self._slot_label(ycol, spec.label, compat, True, hints)
        w = None
        if spec.weights is not None:
            w = table.source(spec.weights, "weights")
            w = to_numeric(w, "weights", spec.weights if isinstance(spec.weights, str) else "<array>")
            w = np.ascontiguousarray(w, dtype=np.float64)
        plan["w"] = w
        plan["g"] = None
        if self.group_vocab is not None:
            gv = spec.group_variable
            gcol = table.codes_col(gv, "group_variable") if isinstance(gv, str) else table.source(gv, "group_variable")
            plan["g"] = self._slot_vocab(gcol, "group", hints)
        plan["p"] = None
        if spec.models:
            name, src = spec.models[0]
            col = (
                table.codes_col(src, "predicted_label")
                if isinstance(src, str)
                else table.source(src, "predicted_label")
            )
            if not isinstance(col, pd.Categorical) and spec.label_values is not None and is_float_column(col):
                return None  # scores: the threshold kernel
            plan["p"] = self._slot_label(col, name, compat, False, hints)
            plan["p"]["name"] = name
            if self.model_kinds is not None and self.model_kinds != ["labels"]:
                return None
        plan["facets"] = {
            f: self._slot_facet(
                fs, table.col(f, "facet") if fs.threshold is not None else table.codes_col(f, "facet"), hints
            )
            for f, fs in self.facets.items()
        }
        plan["hinted"] = hints is not None and hints.used
        return plan

    @staticmethod
    def _present(raw: np.ndarray, axis: int) -> np.ndarray:
        """Slots of column ``axis`` of a slot table that some row holds."""
        other = tuple(a for a in range(raw.ndim) if a != axis)
        return np.flatnonzero(raw.any(axis=other) if other else raw)

    @staticmethod
    def _all_present(raw: np.ndarray) -> list:
        """:meth:`_present` of every axis of a slot table: the first axis from the maxima of its
        rows, the others from the occupied cells of the maxima over the first axis (numpy's
        reductions over several axes that are not the first cost ~50 us on a table of a few
        thousand cells; this, ~20 us for all axes)."""
        if raw.ndim == 1:
            return [np.flatnonzero(raw)]
        lead = raw.reshape(raw.shape[0], -1)  # (counts are >= 0: a maximum of 0 is an empty slot)
        first = np.flatnonzero(lead.max(axis=1, initial=0))
        rest = lead.max(axis=0, initial=0).reshape(raw.shape[1:])
        coords = np.unravel_index(np.flatnonzero(rest), rest.shape)
        return [first] + [np.flatnonzero(np.bincount(c, minlength=n)) for c, n in zip(coords, rest.shape)]

    def _label_occurrence(self, part: dict, present: np.ndarray, compat: str, track: bool) -> list | None:
        """Checks of the label's (or a model's) values that occur; returns the batch's values (vocab path)."""
        missing_ok = compat == "smclarify" and track
        if present.size and present[0] == 0 and not missing_ok:
            raise _SlowPath  # a missing label / prediction: the general path names its row
        if part["kind"] != "vocab":
            return None
        key = part["sc"].key
        memo = self.__dict__.setdefault("_checked", {})
        mkey = None if key is None else (key, present.tobytes())
        hit = memo.get(mkey) if mkey is not None else None
        if hit is not None:
            return hit
        vals = [part["keys"][j - 1] for j in present if j > 0]
        if any(is_missing_value(u) for u in vals):
            raise _SlowPath
        batch_values = [_key_of(u) for u in vals]
        if self.matcher.incomparable(batch_values):
            raise _SlowPath
        if mkey is not None:
            if len(memo) > 256:
                memo.clear()
            memo[mkey] = batch_values
        return batch_values

    def _slot_run(
        self,
        plan: dict,
        n: int,
        compat: str,
        backend: str,
        n_threads: int | None,
        keep: dict | None = None,
        team: bool = False,
    ) -> dict | None:
        yp, gp, pp, w = plan["y"], plan["g"], plan["p"], plan["w"]
        K_old = len(self.group_vocab) if self.group_vocab is not None else 1
        P = 2 if pp is not None else 1
        raws: dict = {}
        mapped: dict = {}
        for f, fp in plan["facets"].items():
            parts = [fp] + ([gp] if gp is not None else []) + [yp] + ([pp] if pp is not None else [])
            sizes = [p["sc"].size for p in parts]
            if math.prod(sizes) > _SLOT_CELLS_MAX:
                return None
            fs = self.facets[f]
            V_max = 2 if fs.binary else len(fs.vocab) + sizes[0]
            K_max = K_old + (gp["sc"].size if gp is not None else 0)
            if V_max * K_max * 2 * P > _SLOT_CELLS_MAX:  # keeps the kernel's chunking that of grouped_counts
                return None
            codes = [p["sc"].codes for p in parts]
            offsets = [p["sc"].offset for p in parts]
            if w is None:
                res = slot_counts_prepared(codes, offsets, sizes, backend=backend, n_threads=n_threads, team=team)
            else:
                Fm = 2 if fp["kind"] in ("binary", "selected", "selected_numeric", "threshold_range") else sizes[0]
                Km = gp["sc"].size if gp is not None else 1
                luts = [fp["lut"]] + ([gp["lut"]] if gp is not None else []) + [yp["lut"]]
                strides = [Km * 2 * P] + ([2 * P] if gp is not None else []) + [P]
                if pp is not None:
                    luts.append(pp["lut"])
                    strides.append(1)
                luts = [np.ascontiguousarray(lt, dtype=np.int32) for lt in luts]
                res = slot_counts_prepared(
                    codes,
                    offsets,
                    sizes,
                    weights=w,
                    luts=luts,
                    map_strides=strides,
                    mapped_cells=Fm * Km * 2 * P,
                    backend=backend,
                    n_threads=n_threads,
                )
                if res is not None:
                    mapped[f] = res[1].reshape(Fm, Km, 2, P)
            if res is None:
                return None
            raws[f] = res[0]
        memo_key = None
        if w is None and self.n_rows > 0:  # a batch like one counted before: its result, reused
            memo_key = self._pattern_key(plan, raws)
            if memo_key is not None:
                hit = self.__dict__.setdefault("_pattern_memo", {}).get(memo_key)
                if hit is not None:  # (stored patterns have no integer row in slot 0: see below)
                    if keep is not None:
                        keep.update(plan=plan, raws=raws)
                    return self._from_pattern(hit, raws)
        if plan.get("hinted"):  # a guessed range: the value just below it lands in slot 0
            for f, fp in plan["facets"].items():
                parts = [fp] + ([gp] if gp is not None else []) + [yp] + ([pp] if pp is not None else [])
                for ax, p in enumerate(parts):
                    key = p["sc"].key
                    if key is not None and key[0] == "range" and raws[f].take(0, axis=ax).any():
                        raise _SlowPath  # (an integer column has no missing value) measure it
        # which slots occur (any facet's table holds every row)
        f0, raw0 = next(iter(raws.items()))
        present0 = self._all_present(raw0)
        ax_y = 2 if gp is not None else 1
        y_present = present0[ax_y]
        label_seen = self._label_occurrence(yp, y_present, compat, True)
        g_present = present0[1] if gp is not None else None
        g_missing = False
        if gp is not None:
            g_missing = bool(g_present.size and g_present[0] == 0) or bool(gp["miss"][g_present].any())
            if g_missing and compat == "clarion":
                raise _SlowPath
            if w is not None and not _distinct_keys(gp["sc"], g_present):
                raise _SlowPath
        pred_seen = None
        if pp is not None:
            p_present = present0[-1]
            pred_seen = self._label_occurrence(pp, p_present, compat, False)
            if pred_seen and label_seen:
                self._check_predicted_values(pp["name"], pred_seen, label_seen)
        f_present = {}
        for f, fp in plan["facets"].items():
            pres = present0[0] if f is f0 else self._present(raws[f], 0)
            f_present[f] = pres
            if fp["kind"] == "selected":
                batch_values = [fp["hits"][j - 1][0] for j in pres if j > 0]
                batch_values = [v for v in batch_values if not is_missing_value(v)]
                if self.facets[f].matcher.incomparable(batch_values):
                    raise _SlowPath
            elif fp["kind"] == "vocab" and w is not None and not _distinct_keys(fp["sc"], pres):
                raise _SlowPath
        # -- commit, in encode's order: label, group, models, facets
        if yp["kind"] != "threshold":
            self._commit_label(yp, y_present)
        glut = None
        if gp is not None:
            glut = _commit_vocab(self.group_vocab, gp["sc"], g_present)
            if g_missing:
                with self.lock:
                    self.group_missing = True
        if pp is not None:
            with self.lock:
                if self.model_kinds is None:
                    self.model_kinds = ["labels"]
                elif self.model_kinds != ["labels"]:  # pragma: no cover - checked in the plan
                    raise ValueError("predicted_label: model kind changed")
        K = len(self.group_vocab) if self.group_vocab is not None else 1
        result = {}
        memo_parts: dict = {}
        for f, fp in plan["facets"].items():
            fs = self.facets[f]
            pres = f_present[f]
            if fp["kind"] == "vocab":
                flut = _commit_vocab(fs.vocab, fp["sc"], pres)
            else:
                if fp["kind"] == "threshold_range":
                    # the column's maximum, as _native_max takes it (an int); slots are the values in
                    # order, and an integer range has no missing slot
                    if pres.size and pres[-1] > 0:
                        top = fp["sc"].value(int(pres[-1]))
                        with self.lock:
                            fs.col_max = combine_max(fs.col_max, top)
                elif fp["kind"] != "binary":
                    self._commit_selected(fs, fp, pres)
                flut = fp["lut"]
            V = fs.n_codes
            seen = np.flatnonzero(np.bincount(flut[pres]))  # (np.unique's sort: ~10 us; codes are >= 0)
            ylut = yp["lut"]
            if w is None:
                raw = raws[f]
                idx = flut.astype(np.int64).reshape((-1,) + (1,) * (raw.ndim - 1)) * (K * 2 * P)
                ax = 1
                if gp is not None:
                    idx = idx + glut.astype(np.int64).reshape((1, -1) + (1,) * (raw.ndim - 2)) * (2 * P)
                    ax = 2
                shape = [1] * raw.ndim
                shape[ax] = -1
                idx = idx + ylut.astype(np.int64).reshape(shape) * P
                if pp is not None:
                    idx = idx + pp["lut"].astype(np.int64).reshape((1,) * (raw.ndim - 1) + (-1,))
                flat = np.broadcast_to(idx, raw.shape).ravel()
                # float64 sums of integer counts below 2**53 are exact
                out = np.bincount(flat, weights=raw.ravel(), minlength=V * K * 2 * P).astype(np.int64)
            else:
                m = mapped[f]
                out = np.zeros((V, K, 2, P), dtype=np.float64)
                fsl = pres if fp["kind"] == "vocab" else np.arange(2)
                fdst = flut[fsl] if fp["kind"] == "vocab" else fsl
                if gp is not None:
                    gsl = g_present
                    out[np.ix_(fdst, glut[gsl])] = m[np.ix_(fsl, gsl)]
                else:
                    out[fdst] = m[fsl]
            if pp is None:
                counts = {"pre": out.reshape(V, K, 2)}
            else:
                counts = {"labels": out.reshape(1, V, K, 2, 2)}
            result[f] = (V, K, seen.astype(np.int32), counts)
            if memo_key is not None:
                memo_parts[f] = (
                    np.ascontiguousarray(flat),
                    V * K * 2 * P,
                    (V, K, 2) if pp is None else (1, V, K, 2, 2),
                )
        if memo_key is not None:
            self._store_pattern(plan, raws, memo_parts, result)
        if keep is not None:
            keep.update(plan=plan, raws=raws)
        return result

    def _pattern_key(self, plan: dict, raws: dict) -> tuple | None:
        """What decides everything :meth:`_slot_run` does after its count pass: the columns' slot
        maps (their keys), the vocabulary sizes and which cells of the slot tables hold rows. Two
        batches with one key make the same checks, commit the same values (the second adds
        nothing: vocabularies only grow, so equal sizes mean nothing was added in between) and map
        their slot tables into the count table alike (None: some column has no key)."""
        sig = [plan["y"]["sc"].key, None if plan["g"] is None else plan["g"]["sc"].key]
        sig.append(None if plan["p"] is None else plan["p"]["sc"].key)
        if sig[0] is None or (plan["g"] is not None and sig[1] is None) or (plan["p"] is not None and sig[2] is None):
            return None
        for f, fp in plan["facets"].items():
            k = fp["sc"].key
            if k is None or raws[f].size > _MEMO_CELLS_MAX:
                return None
            sig.append((k, self.facets[f].n_codes, np.not_equal(raws[f], 0).tobytes()))
        sig.append(len(self.group_vocab) if self.group_vocab is not None else 1)
        return tuple(sig)

    def _store_pattern(self, plan: dict, raws: dict, parts: dict, result: dict) -> None:
        key = self._pattern_key(plan, raws)  # the sizes after this batch's commits
        if key is None:  # pragma: no cover - the key existed before the commits
            return
        memo = self.__dict__.setdefault("_pattern_memo", {})
        if len(memo) > 256:
            memo.clear()
        memo[key] = {f: (*parts[f], result[f][0], result[f][1], result[f][2], next(iter(result[f][3]))) for f in parts}

    @staticmethod
    def _from_pattern(hit: dict, raws: dict) -> dict:
        result = {}
        for f, (flat, cells, shape, V, K, seen, kind) in hit.items():
            out = np.bincount(flat, weights=raws[f].ravel(), minlength=cells).astype(np.int64)
            result[f] = (V, K, seen, {kind: out.reshape(shape)})
        return result

    def _commit_label(self, yp: dict, present: np.ndarray) -> None:
        """What :meth:`_positive` records of the label's values that occur."""
        sc = yp["sc"]
        if yp["kind"] == "numeric":
            values = yp["values"]
            occ = present[present > 0]
            x = sc.values_array(occ)
            y = yp["lut"][occ]
            if len(values) == 1:
                occurred = values if y.any() else []
            else:
                occurred = [v for v in values if np.any(x == v)]
            with self.label_vocab._lock:
                for v in occurred:
                    self.label_vocab._add(v)
                short = len(self.label_vocab.values) < len(values)
            if short and self.n_rows == 0:
                _add_sample(self.label_sample, [u.item() if isinstance(u, np.generic) else u for u in x][:10])
            return
        _commit_vocab(self.label_vocab, sc, present)

    def _commit_selected(self, fs: FacetState, fp: dict, present: np.ndarray) -> None:
        """What :meth:`_selected_codes` records of the selected values that occur."""
        occ = present[present > 0]
        if fp["kind"] == "selected_numeric":
            values = fp["values"]
            x = fp["sc"].values_array(occ)
            d = fp["lut"][occ]
            if len(values) == 1:
                occurred = values if d.any() else []
            else:
                occurred = [v for v in values if np.any(x == v)]
            sample = [u.item() if isinstance(u, np.generic) else u for u in x if not is_missing_value(u)][:10]
        else:
            occurred, sample = [], []
            for j in occ:
                k, h = fp["hits"][j - 1]
                if is_missing_value(k):
                    continue
                sample.append(k)
                occurred.extend(h)
        with fs.vocab._lock:
            for v in occurred:
                fs.vocab._add(v)
            short = len(fs.vocab.values) < len(fs.values)
        if short and self.n_rows == 0:
            _add_sample(fs.sample, sample)

    def _grown(self, arr: np.ndarray, kind: str, V: int, K: int) -> np.ndarray:
        vax = -3 if kind == "pre" else -4
        return _pad_axis(_pad_axis(arr, vax, V), vax + 1, K)

    def add_counts(self, batch: dict, n_rows: int, boot: dict | None = None) -> None:
        """Add counted batch tables (and their bootstrap replicates ``boot``, counted with
        ``n_bootstrap``) into the state (thread-safe; pads to grown vocabularies)."""
        with self.lock:
            K = len(self.group_vocab) if self.group_vocab is not None else 1
            if boot is None and self._add_same_shape(batch, K):
                self.n_rows += n_rows
                return
            for f, (_, _, seen, counts) in batch.items():
                fs = self.facets[f]
                V = fs.n_codes
                if fs.seen.size < V:
                    fs.seen = _pad_axis(fs.seen, 0, V)
                fs.seen[seen] = True
                for store, tables in ((fs.counts, counts), (fs.boot, None if boot is None else boot[f][3])):
                    for kind, c in (tables or {}).items():
                        c = self._grown(c, kind, V, K)
                        old = store.get(kind)
                        if old is None:
                            store[kind] = c.copy()
                            continue
                        old = self._grown(old, kind, V, K)
                        if old.dtype == np.result_type(old.dtype, c.dtype):
                            np.add(old, c, out=old)  # the state's own array (never handed out): in place
                            store[kind] = old
                        else:
                            store[kind] = old + c
            self.n_rows += n_rows

    def _add_same_shape(self, batch: dict, K: int) -> bool:
        """:meth:`add_counts`' loop when nothing grows (the usual batch of a stream): every table
        has the state's shape and dtype, every facet's ``seen`` its size. False (nothing added)
        otherwise. Called under the lock."""
        for f, (_, _, _, counts) in batch.items():
            fs = self.facets[f]
            V = fs.n_codes
            if fs.seen.size != V:
                return False
            for kind, c in counts.items():
                old = fs.counts.get(kind)
                if (
                    old is None
                    or old.shape != c.shape
                    or old.dtype != c.dtype
                    or c.shape[-3 if kind == "pre" else -4 :][:2] != (V, K)
                ):
                    return False
        for f, (_, _, seen, counts) in batch.items():
            fs = self.facets[f]
            fs.seen[seen] = True
            for kind, c in counts.items():
                np.add(fs.counts[kind], c, out=fs.counts[kind])
        return True

    def update(self, table: Table, compat: str = "clarion", **count_kw: Any) -> dict:
        enc = self.encode(table, compat)
        batch = self.count(enc, **count_kw)
        self.add_counts(batch, table.n)
        return enc

    # -- assembly ------------------------------------------------------------------------------

    def label_value_or_threshold(self, compat: str = "clarion") -> str:
        spec = self.spec
        if spec.label_threshold is not None:
            return interval_string(spec.label_threshold, self.label_max, compat)
        return ",".join(map(str, spec.label_values))

    def check_label_values(self) -> None:
        spec = self.spec
        if spec.label_values is None:
            if self.label_max is not None and not self.label_max > spec.label_threshold:
                raise ValueError(MSG_NO_POSITIVE.format(t=spec.label_threshold, name=spec.label, max=self.label_max))
            return
        occurred = _occurred(spec.label_values, self.label_vocab.values)
        for v in spec.label_values:
            if not any(v is o for o in occurred):
                seen = list(self.label_vocab.values)
                _add_sample(seen, self.label_sample)
                raise ValueError(
                    MSG_VALUE_ABSENT.format(arg="label_values", value=v, name=spec.label, seen=seen_string(seen))
                )

    def entries(self, fs: FacetState, compat: str) -> tuple[list[str], np.ndarray, list]:
        """Labels, selection matrix [E, V] and selected codes per entry, in canonical order."""
        V = fs.n_codes
        seen = _pad_axis(fs.seen, 0, V)
        if fs.threshold is not None:
            sel = np.zeros((1, V))
            sel[0, 1] = 1.0
            return [interval_string(fs.threshold, fs.col_max, compat)], sel, [[1]]
        if fs.values is not None:
            occurred = _occurred(fs.values, fs.vocab.values)
            for v in fs.values:
                if not any(v is o for o in occurred):
                    seen = list(fs.vocab.values)
                    _add_sample(seen, fs.sample)
                    raise ValueError(
                        MSG_VALUE_ABSENT.format(arg="facet_values", value=v, name=fs.name, seen=seen_string(seen))
                    )
            sel = np.zeros((1, V))
            sel[0, 1] = 1.0
            return [",".join(map(str, fs.values))], sel, [[1]]
        present = [c for c in np.flatnonzero(seen) if c != 0]
        vals = [fs.vocab.values[c - 1] for c in present]
        order = _sort_key_values(vals)
        codes = [int(present[i]) for i in order]
        labels = [str(vals[i]) for i in order]
        sel_codes = [[c] for c in codes]
        if compat == "smclarify" and seen[0]:
            labels.append("nan")
            sel_codes.append([])
        sel = np.zeros((len(labels), V))
        for e, cs in enumerate(sel_codes):
            sel[e, cs] = 1.0
        return labels, sel, sel_codes

    def _k_order(self) -> np.ndarray:
        if self.group_vocab is None:
            return np.zeros(1, dtype=np.intp)
        vals = self.group_vocab.values
        return np.array([0] + [i + 1 for i in _sort_key_values(vals)], dtype=np.intp)

    def tensors(self, fs: FacetState, sel: np.ndarray, counts: dict | None = None) -> tuple[Any, Any]:
        """(pre [..., E, 2, K, 2, 1], post [..., M, E, 2, K, 2, 2] or None) for one facet."""
        counts = fs.counts if counts is None else counts
        V = fs.n_codes
        K = len(self.group_vocab) if self.group_vocab is not None else 1
        korder = self._k_order()
        post = []
        if "labels" in counts:
            post.append(self._grown(counts["labels"], "labels", V, K))
        if "scores" in counts:
            c = self._grown(counts["scores"], "scores", V, K)
            post.append(c.reshape(c.shape[:-6] + (c.shape[-6] * c.shape[-5],) + c.shape[-4:]))
        if post:
            full = np.concatenate(post, axis=-5) if len(post) > 1 else post[0]
            pre = full[..., :1, :, :, :, :].sum(axis=-1, keepdims=True)[..., 0, :, :, :, :]
        else:
            full = None
            pre = self._grown(counts["pre"], "pre", V, K)[..., None]

        def split(c: np.ndarray) -> np.ndarray:
            c = np.take(c.astype(np.float64, copy=False), korder, axis=-3)
            d = np.einsum("ev,...vkyp->...ekyp", sel, c)
            total = c.sum(axis=-4)
            a = total[..., None, :, :, :] - d
            return np.stack([a, d], axis=-4)

        return split(pre), (None if full is None else split(full))

    def model_rows(self) -> tuple[list, np.ndarray | None]:
        """(model, threshold) per post row in the user's order, and the permutation from count order."""
        spec = self.spec
        if not spec.models:
            return [], None
        kinds = self.model_kinds or []
        lab = [m for (m, _), k in zip(spec.models, kinds) if k == "labels"]
        sc = [m for (m, _), k in zip(spec.models, kinds) if k == "scores"]
        count_order = [(m, None) for m in lab] + [(m, t) for m in sc for t in spec.thresholds]
        rows = []
        for (m, _), k in zip(spec.models, kinds):
            if k == "labels":
                rows.append((m, None))
            else:
                rows.extend((m, t) for t in spec.thresholds)
        perm = np.array([count_order.index(r) for r in rows], dtype=np.intp)
        if not spec.multi_model:
            rows = [(None, None) for _ in rows]
        return rows, perm

    def assemble(
        self,
        *,
        methods: Any = "all",
        stage: str = "both",
        compat: str = "clarion",
        boot: dict | None = None,
        confidence: float | None = None,
        ft: Any = None,
        n_bootstrap: int = 0,
    ) -> BiasReport:
        """Evaluate the metrics on the current counts (``boot``: replicate counts per facet)."""
        if compat not in ("clarion", "smclarify"):
            raise ValueError(f"compat must be 'clarion' or 'smclarify', got {compat!r}")
        with self.lock:
            pre_names, post_names = normalize_methods(methods, stage, bool(self.spec.models))
            if compat == "clarion":
                self.check_label_values()
            rows, perm = self.model_rows()
            has_group = self.group_vocab is not None
            results = []
            for f, fs in self.facets.items():
                labels, sel, sel_codes = self.entries(fs, compat)
                pre, post = self.tensors(fs, sel)
                bpre = bpost = None
                if boot is not None:
                    bpre, bpost = self.tensors(fs, sel, boot[f])
                if post is not None:
                    post = np.take(post, perm, axis=-6)
                    if bpost is not None:
                        bpost = np.take(bpost, perm, axis=-6)
                for stage_name, names, tens, btens in (
                    ("pre_training", pre_names, pre, bpre),
                    ("post_training", post_names, post, bpost),
                ):
                    if not names:
                        continue
                    count_names = [n for n in names if n in COUNT_METRICS]
                    res = compute(
                        tens, count_names, compat=compat, has_group=has_group, missing_subgroup=self.group_missing
                    )
                    values, reasons = {}, {}
                    for n, (v, r) in res.items():
                        values[n] = v.reshape(-1, len(labels))
                        reasons[n] = r.reshape(-1, len(labels))
                    fr = FacetResult(stage=stage_name, facet=f, entries=labels, values=values, reasons=reasons)
                    if btens is not None and count_names:
                        bres = compute(
                            btens, count_names, compat=compat, has_group=has_group, missing_subgroup=self.group_missing
                        )
                        for n, (v, _) in bres.items():
                            lo, hi = percentile_interval(v, confidence)
                            fr.ci_low[n] = lo.reshape(-1, len(labels))
                            fr.ci_high[n] = hi.reshape(-1, len(labels))
                    if "FT" in names:
                        M = len(rows)
                        vals = np.full((M, len(labels)), np.nan)
                        reas = np.zeros((M, len(labels)), dtype=np.int16)
                        for m in range(M):
                            for e in range(len(labels)):
                                v, err = (
                                    ft(f, sel_codes[e], m)
                                    if ft is not None
                                    else (np.nan, "FlipTest needs the feature rows, which an Accumulator does not keep")
                                )
                                vals[m, e] = v
                                if err:
                                    fr.errors[("FT", m, e)] = err
                                    reas[m, e] = -1
                        fr.values["FT"], fr.reasons["FT"] = vals, reas
                    results.append(fr)
            return BiasReport(
                label=self.spec.label,
                label_value_or_threshold=self.label_value_or_threshold(compat),
                models=rows or [(None, None)],
                multi_model=self.spec.multi_model,
                compat=compat,
                confidence=confidence if boot is not None else None,
                results=results,
                n_bootstrap=n_bootstrap,
            )


def _occurred(given: list, vocab_values: list) -> list:
    """The configured values (the objects themselves) that some recorded value matches."""
    m = Matcher(given)
    out: list = []
    for u in vocab_values:
        out.extend(m.given_matching(u))
    return out


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over axis 0 (order statistics, no interpolation).

    ``low = v_(floor(R·α/2))``, ``high = v_(ceil(R·(1 − α/2)) − 1)`` of the sorted replicates,
    α = 1 − confidence. NaN when any replicate is undefined (a resample without a needed cell).
    """
    R = values.shape[0]
    alpha = 1.0 - confidence
    s = np.sort(values, axis=0)
    lo_i = min(max(int(math.floor(R * alpha / 2)), 0), R - 1)
    hi_i = min(max(int(math.ceil(R * (1 - alpha / 2))) - 1, 0), R - 1)
    bad = np.isnan(values).any(axis=0)
    lo = np.where(bad, np.nan, s[lo_i])
    hi = np.where(bad, np.nan, s[hi_i])
    return lo, hi


# ------------------------------------------------------------------------------------------------
# merging states (vocabularies differ between processes: codes are remapped by value)


def _scatter_axis(a: np.ndarray, axis: int, lut: np.ndarray, size: int) -> np.ndarray:
    """out[..., lut[j], ...] = a[..., j, ...] along ``axis`` (lut injective), other slots 0."""
    a = np.moveaxis(a, axis, 0)
    out = np.zeros((size,) + a.shape[1:], dtype=a.dtype)
    out[lut[: a.shape[0]]] = a
    return np.moveaxis(out, 0, axis)


def _vocab_lut(ours: Vocabulary, theirs: Vocabulary) -> np.ndarray:
    lut = np.zeros(len(theirs), dtype=np.intp)
    with ours._lock:
        for j, v in enumerate(theirs.values):
            lut[j + 1] = ours._add(v)
    return lut


def merge_states(ours: State, theirs: State) -> None:
    """Add ``theirs`` into ``ours`` (same Spec), remapping codes by value."""
    if theirs is ours:
        raise ValueError("merge: cannot merge an accumulator into itself")
    with ours.lock, theirs.lock:
        if ours.model_kinds is not None and theirs.model_kinds is not None and ours.model_kinds != theirs.model_kinds:
            raise ValueError(f"merge: prediction kinds differ ({ours.model_kinds} vs {theirs.model_kinds})")
        if ours.weighted != theirs.weighted:
            raise ValueError("merge: one state is weighted and the other is not")
        if ours.model_kinds is None:
            ours.model_kinds = theirs.model_kinds
        for v in theirs.label_vocab.values:
            with ours.label_vocab._lock:
                ours.label_vocab._add(v)
        _add_sample(ours.label_sample, theirs.label_sample)
        if theirs.label_max is not None:
            ours.label_max = combine_max(ours.label_max, theirs.label_max)
        klut = None
        if ours.group_vocab is not None:
            klut = _vocab_lut(ours.group_vocab, theirs.group_vocab)
            ours.group_missing |= theirs.group_missing
        K = len(ours.group_vocab) if ours.group_vocab is not None else 1
        for f, tfs in theirs.facets.items():
            fs = ours.facets[f]
            _add_sample(fs.sample, tfs.sample)
            if fs.binary:
                vlut = np.arange(2, dtype=np.intp)
                for v in tfs.vocab.values:
                    with fs.vocab._lock:
                        fs.vocab._add(v)
                if tfs.col_max is not None:
                    fs.col_max = combine_max(fs.col_max, tfs.col_max)
            else:
                vlut = _vocab_lut(fs.vocab, tfs.vocab)
            V = fs.n_codes
            seen = np.zeros(V, dtype=bool)
            seen[: fs.seen.size] = fs.seen
            seen[vlut[: tfs.seen.size][tfs.seen]] = True
            fs.seen = seen
            for store, tables in ((fs.counts, tfs.counts), (fs.boot, tfs.boot)):
                for kind, c in tables.items():
                    vax = -3 if kind == "pre" else -4
                    c = _scatter_axis(c, vax, vlut, V)
                    c = _scatter_axis(c, vax + 1, klut, K) if klut is not None else c
                    old = store.get(kind)
                    store[kind] = c if old is None else ours._grown(old, kind, V, K) + c
        ours.n_rows += theirs.n_rows
