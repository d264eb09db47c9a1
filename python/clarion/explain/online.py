"""Online explainability: each request's predictions and the Kernel SHAP attributions of its
records, in SageMaker Clarify's response format (``clarion serve MODEL --explain CONFIG``).

:class:`OnlineExplainer` builds everything that does not depend on the request once: the model
adapter, the baseline, the coalition plan and the least-squares operator (one :class:`KernelShap`),
so a request pays only for its own model calls (the records, and the synthetic rows
``baseline rows x n_samples`` per explained record), the masking and one small matrix product.
It is safe to call from several threads at once (the server runs requests concurrently). With
``ShapConfig.TextConfig`` the text features are explained per unit of text through
:class:`~clarion.explain.TextShap` instead (each unit's attribution with its ``description``).

The response (:meth:`OnlineExplanation.to_dict`) is Clarify's, field for field::

    {"version": "1.0",
     "predictions": {"content_type": "text/csv", "data": "0.71\\n0.12\\n"},
     "label_headers": ["approved"],                       # when known
     "explanations": {"kernel_shap": [                   # {} when no record is explained
         [{"feature_header": "age",                       # when known
           "attributions": [{"attribution": [0.031]}]},   # one value per explained output
          ...],                                           # one object per feature
         null]}}                                          # a record EnableExplanations skipped

See ``docs/online-explainability.md`` for the mapping of every ``ClarifyExplainerConfig`` key.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clarion.explain._baseline import Baseline
from clarion.explain._kernel_shap import KernelShap
from clarion.models import as_model
from clarion.models.wire import CONTENT_TYPES, RequestError, format_response

__all__ = [
    "DEFAULT_ONLINE_MEMORY_BUDGET",
    "ENABLE_EXPLANATIONS_HEADER",
    "MSG_ENABLE_RESULT",
    "MSG_RECORD_VALUE",
    "MSG_RECORD_WIDTH",
    "RESPONSE_VERSION",
    "OnlineExplainer",
    "OnlineExplanation",
]

#: Clarify's response schema version
RESPONSE_VERSION = "1.0"
#: the HTTP header of ``InvokeEndpoint``'s ``EnableExplanations`` (overrides the config's per request)
ENABLE_EXPLANATIONS_HEADER = "X-Amzn-SageMaker-Enable-Explanations"
#: largest synthetic batch (bytes) one request builds at once unless ``max_payload_bytes`` says
#: otherwise: bounded, so that concurrent requests cannot hold gigabytes each
DEFAULT_ONLINE_MEMORY_BUDGET = 64 * 1024 * 1024

MSG_RECORD_WIDTH = (
    "record {record} has {got} feature values but the explainer's baseline has {want}; "
    "the request was not explained (its other records are valid: resend them without this one)"
)
MSG_RECORD_VALUE = (
    "record {record}, feature {feature}: {value!r} is not a number (the baseline's feature {feature} is "
    "numeric); the request was not explained (resend its other records without this one)"
)
MSG_ENABLE_RESULT = (
    "{source} {expr!r} gave {got!r} for record {record}, not true or false (it is evaluated on each "
    "record's prediction: a JSON list of the outputs for text/csv, the record's object for JSON)"
)
MSG_ENABLE_SYNTAX = "{source}: {expr!r} is not a valid JMESPath expression: {why}"
MSG_OUTPUT_INDEX = "{key}: {got} is not an output of the model, which has {n} output(s) (0..{last})"
MSG_OUTPUT_ATTR = (
    "{key}: {expr!r} must select model outputs from the served record {probe} (a number or a list of "
    "numbers from its scores), got {got!r}"
)
MSG_HEADERS = "{key}: {got} names for the {want} features of the baseline"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


@functools.lru_cache(maxsize=64)
def _compiled(expr: str) -> Any:
    import jmespath

    return jmespath.compile(expr)


def _rows_to_input(rows: Sequence[Sequence[Any]], columns: Sequence[str] | None) -> Any:
    """Parsed records as the explainer's input: a float64 array when every value is a number (or
    missing), else a DataFrame (text columns kept as text)."""
    if all(v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool)) for r in rows for v in r):
        return np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    frame = pd.DataFrame([list(r) for r in rows], columns=list(columns) if columns is not None else None)
    return frame.infer_objects()


class OnlineExplanation:
    """One request's predictions and the attributions of its explained records.

    Attributes
    ----------
    predictions : ndarray, shape (n, D)
        The model's outputs for the n records.
    content_type : str
        The format of :attr:`data` (the request's ``Accept``).
    data : str
        The predictions as the plain model server answers them in ``content_type``.
    explained : ndarray of bool, shape (n,)
        Which records ``EnableExplanations`` selected.
    values : ndarray, shape (n_explained, M, n_out)
        Kernel SHAP attributions of the explained records (in order), per feature and explained
        output (in link space: log-odds with ``use_logit``).
    expected_value : ndarray, shape (n_out,), or (n_explained, n_out) with text features
        The base value of each explained output: ``values[i].sum(axis=0) = g(f(x_i)) - expected_value``
        (with text features ``v(0)`` depends on the record's number of units: one row per record).
    feature_headers, feature_types, label_headers : list of str or None
    text_records : list or None
        With text features (``TextConfig``): per explained record, Clarify's feature objects, a text
        feature with one attribution per unit of text and its ``description`` (``partial_text``,
        ``start_idx``); ``values`` then holds each feature's sum over its units.
    """

    def __init__(
        self,
        predictions: np.ndarray,
        content_type: str,
        data: str,
        explained: np.ndarray,
        values: np.ndarray,
        expected_value: np.ndarray,
        feature_headers: list[str] | None,
        feature_types: list[str] | None,
        label_headers: list[str] | None,
        text_records: list[list[dict[str, Any]]] | None = None,
    ) -> None:
        self.predictions = predictions
        self.text_records = text_records
        self.content_type = content_type
        self.data = data
        self.explained = explained
        self.values = values
        self.expected_value = expected_value
        self.feature_headers = feature_headers
        self.feature_types = feature_types
        self.label_headers = label_headers

    def __repr__(self) -> str:
        return (
            f"OnlineExplanation({self.predictions.shape[0]} records, {int(self.explained.sum())} explained, "
            f"values shape {self.values.shape})"
        )

    def kernel_shap(self) -> list[list[dict[str, Any]] | None]:
        """Clarify's ``explanations.kernel_shap``: per record, ``None`` when it was not explained, else
        one object per feature: ``feature_header`` / ``feature_type`` when known and ``attributions``
        ``[{"attribution": [value per explained output]}]``."""
        if self.text_records is not None:
            recs = iter(self.text_records)
            return [next(recs) if e else None for e in self.explained.tolist()]
        M = self.values.shape[1]
        heads = self.feature_headers
        types = self.feature_types
        out: list[list[dict[str, Any]] | None] = []
        rows = iter(self.values.tolist())
        for e in self.explained.tolist():
            if not e:
                out.append(None)
                continue
            v = next(rows)
            rec = []
            for j in range(M):
                item: dict[str, Any] = {}
                if heads is not None:
                    item["feature_header"] = heads[j]
                if types is not None:
                    item["feature_type"] = types[j]
                item["attributions"] = [{"attribution": v[j]}]
                rec.append(item)
            out.append(rec)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The response body as Clarify documents it (``version``, ``predictions``, ``label_headers``
        when known, ``explanations``: ``{}`` when no record was explained)."""
        body: dict[str, Any] = {
            "version": RESPONSE_VERSION,
            "predictions": {"content_type": self.content_type, "data": self.data},
        }
        if self.label_headers is not None:
            body["label_headers"] = list(self.label_headers)
        body["explanations"] = {"kernel_shap": self.kernel_shap()} if self.explained.any() else {}
        return body

    def to_json(self) -> bytes:
        """:meth:`to_dict` as UTF-8 JSON (``application/json``); floats written shortest round-trip,
        so a client reads back exactly the computed values."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode()


class OnlineExplainer:
    r"""Predictions plus Kernel SHAP attributions per request, built once, called many times.

    For each record :math:`x` selected by ``enable_explanations``, the attributions are
    :class:`KernelShap`'s: the Shapley values of
    :math:`v(z) = g\big(\sum_k \pi_k f(h(x, b_k, z))\big)` over the baseline rows :math:`b_k`
    (link :math:`g` the identity, or the logit with ``use_logit``), estimated with one coalition
    plan of ``n_samples = min(num_samples, 2^M - 2)`` coalitions (default ``2 M + 2048``), built
    once here; each explained row satisfies :math:`\sum_j \phi_j = g(f(x)) - g(\sum_k \pi_k f(b_k))`.
    ``OnlineExplainer(model, B, num_samples=S, seed=s, estimator=e).explain(X)`` gives exactly
    ``KernelShap(model, B, num_samples=S, seed=s, estimator=e).explain(X[selected])``.

    Parameters
    ----------
    model
        Anything :func:`clarion.models.as_model` accepts (a fitted estimator, a model file, a
        callable, an :class:`~clarion.models.Endpoint`...).
    baseline : ndarray, DataFrame, Baseline or list of records
        The SHAP baseline (Clarify's ``ShapBaseline``): K rows with the records' P features.
    num_samples : int, optional
        ``NumberOfSamples``: coalitions per record (default ``2 M + 2048``, capped at ``2^M - 2``).
    seed : int, optional
        ``Seed`` of the coalition plan (None: drawn once; every request then shares the plan).
    use_logit : bool, default False
        ``UseLogit``: explain the log-odds of the outputs.
    estimator : {"shap", "cubic"}, default "shap"
        The Kernel SHAP estimator (:class:`KernelShap`'s ``estimator``; ``ShapConfig.Estimator``, a
        clarion addition): ``"shap"`` gives Clarify's (and the shap package's) numbers, ``"cubic"``
        the paired, third-order-surrogate estimator (more accurate for the same samples).
    text_granularity : {"token", "sentence", "paragraph"}, optional
        ``ShapConfig.TextConfig.Granularity``: explain the text features by units of text through
        :class:`~clarion.explain.TextShap` (each unit a player; the other features players as
        usual). The text features are those ``feature_types`` marks ``"text"`` (default: every
        feature when the records have one, else every column whose baseline values are all
        text). A text feature's baseline value is the string that replaces an absent unit (empty:
        the unit is dropped, Clarify's default). None: tabular Kernel SHAP.
    text_language : str, default "en"
        ``ShapConfig.TextConfig.Language`` (ISO 639-1 / 639-3 code; ``"xx"`` for mixed text).
    enable_explanations : str, optional
        ``EnableExplanations``: a JMESPath boolean expression evaluated on each record's prediction
        (a JSON list of its outputs for ``text/csv``, its ``{"scores": [...], ...}`` object for
        JSON Lines / JSON); None explains every record.
    feature_headers : list of str, optional
        ``FeatureHeaders``: one name per feature, returned as ``feature_header`` (default: the
        model's feature names when it has them).
    feature_types : list of str, optional
        ``FeatureTypes`` (``"numerical"`` / ``"categorical"``), returned as ``feature_type``.
    label_headers : list of str, optional
        ``LabelHeaders``, returned as ``label_headers`` (default: a classifier's classes of the
        explained outputs).
    probability_index : int, optional
        ``ProbabilityIndex``: explain this output of the model only (default: every output).
    probability_attribute : str, optional
        ``ProbabilityAttribute``: a JMESPath selecting the explained output(s) from the served JSON
        record ``{"scores": [...]}`` (e.g. ``"scores[1]"``).
    max_record_count : int, optional
        ``MaxRecordCount``: the most records one model call may carry (synthetic batches are split).
    max_payload_bytes : int, optional
        The most bytes of synthetic rows built for one model call (``MaxPayloadInMB``; default
        :data:`DEFAULT_ONLINE_MEMORY_BUDGET`).
    n_threads : int, optional
        Threads of the masking and reduction kernels (default: all cores).
    keys : mapping, optional
        The name each argument has in error messages (:meth:`from_config` passes the config's key
        paths, e.g. ``"InferenceConfig.ProbabilityIndex"``).

    Attributes
    ----------
    model : clarion.models.Model
        The model as served (its calls capped at ``max_record_count`` rows).
    n_features, n_outputs : int
        P (the baseline's columns, each a player) and D (the model's outputs).
    outputs : list of int
        The explained outputs (``probability_index`` / ``probability_attribute``, else all).
    num_samples, seed : int
        Coalitions in the plan and its seed (drawn once when not given).
    expected_value : ndarray, shape (len(outputs),)
        The base value of each explained output (link space).
    feature_headers, feature_types, label_headers : list of str or None
    max_record_count : int or None
    features_attribute : str or None
        JMESPath of the feature values in JSON records (``FeaturesAttribute`` / ``ContentTemplate``;
        :meth:`from_config` only).
    config : clarion.config.explainer.ExplainerConfig or None
        The config it was built from (:meth:`from_config` only).
    keys : dict
        The name of each argument in error messages.

    Raises
    ------
    ValueError
        A bad argument, naming it (a :class:`~clarion.config.ConfigError` from :meth:`from_config`).
    """

    def __init__(
        self,
        model: Any,
        baseline: Any,
        *,
        num_samples: int | None = None,
        seed: int | None = None,
        use_logit: bool = False,
        estimator: str = "shap",
        text_granularity: str | None = None,
        text_language: str = "en",
        enable_explanations: str | None = None,
        feature_headers: Sequence[str] | None = None,
        feature_types: Sequence[str] | None = None,
        label_headers: Sequence[str] | None = None,
        probability_index: int | None = None,
        probability_attribute: str | None = None,
        max_record_count: int | None = None,
        max_payload_bytes: int | None = None,
        n_threads: int | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        key = {
            "baseline": "baseline",
            "enable_explanations": "enable_explanations",
            "feature_headers": "feature_headers",
            "feature_types": "feature_types",
            "probability_index": "probability_index",
            "probability_attribute": "probability_attribute",
            "max_record_count": "max_record_count",
            "text_granularity": "text_granularity",
            "text_language": "text_language",
            "estimator": "estimator",
            **(keys or {}),
        }
        self.keys = key
        m = as_model(model)
        if max_record_count is not None:
            if isinstance(max_record_count, bool) or not isinstance(max_record_count, (int, np.integer)):
                raise ValueError(f"{key['max_record_count']}: expected an integer >= 1, got {max_record_count!r}")
            if max_record_count < 1:
                raise ValueError(f"{key['max_record_count']}: expected an integer >= 1, got {max_record_count!r}")
            m = copy.copy(m)
            m.batch_rows = int(max_record_count) if m.batch_rows is None else min(m.batch_rows, int(max_record_count))
        self.model = m
        self.max_record_count = None if max_record_count is None else int(max_record_count)
        self.enable_explanations = enable_explanations
        self._enable = (
            None if enable_explanations is None else self._compile(enable_explanations, key["enable_explanations"])
        )
        self._text: Any = None
        self._shap: Any = None
        self.text_granularity = text_granularity
        self.text_language = text_language if text_granularity is not None else None
        if text_granularity is not None:
            if estimator != "shap":
                raise ValueError(
                    f"{key['estimator']}: {estimator!r} does not apply to text features (TextShap runs "
                    "Clarify's estimator, 'shap')"
                )
            P, D = self._init_text(
                m,
                baseline,
                feature_headers,
                feature_types,
                text_granularity,
                text_language,
                num_samples,
                seed,
                use_logit,
            )
            self._finite_baseline = False
        else:
            if isinstance(baseline, list):  # records: text cells make a DataFrame, named as the model's columns
                width = len(baseline[0]) if baseline else 0
                names = next((n for n in (m.feature_names, feature_headers) if n is not None and len(n) == width), None)
                baseline = _rows_to_input(baseline, names)
            data = baseline.data if isinstance(baseline, Baseline) else baseline
            self._frame = isinstance(data, pd.DataFrame)
            self._columns = list(data.columns) if self._frame else None
            self._numeric = (not self._frame) or all(k in "fiub" for k in data.dtypes.map(lambda d: d.kind))
            # f(x) of the records being explained is the request's predictions (KernelShap.explain's
            # predictions=), not a second model call
            self._shap = KernelShap(
                m,
                baseline,
                num_samples=num_samples,
                seed=seed,
                link="logit" if use_logit else "identity",
                estimator=estimator,
                memory_budget=DEFAULT_ONLINE_MEMORY_BUDGET if max_payload_bytes is None else max_payload_bytes,
                n_threads=n_threads,
            )
            # every synthetic row is made of a record's values and the baseline's: when both are
            # finite numbers, scikit-learn's finiteness check of each synthetic batch (a pass over
            # all of it) cannot fail, and is skipped (see _synthetic_context)
            self._finite_baseline = (not self._frame) and bool(np.isfinite(np.asarray(data, dtype=np.float64)).all())
            P, D = self._shap.M, int(self._shap.n_outputs)
            self.num_samples = self._shap.num_samples_
            self.seed = self._shap.seed_
        self.n_features = P
        self.n_outputs = D
        self.use_logit = bool(use_logit)
        self.outputs = self._outputs(probability_index, probability_attribute, D)
        if feature_headers is not None:
            feature_headers = [str(h) for h in feature_headers]
            if len(feature_headers) != P:
                raise ValueError(MSG_HEADERS.format(key=key["feature_headers"], got=len(feature_headers), want=P))
        elif m.feature_names is not None and len(m.feature_names) == P:
            feature_headers = list(m.feature_names)
        if feature_types is not None:
            feature_types = list(feature_types)
            if len(feature_types) != P:
                raise ValueError(MSG_HEADERS.format(key=key["feature_types"], got=len(feature_types), want=P))
        self.feature_headers = feature_headers
        self.feature_types = feature_types
        if label_headers is not None:
            label_headers = [str(h) for h in label_headers]
        elif m.classes is not None and len(m.classes) == D:
            label_headers = [str(m.classes[k]) for k in self.outputs]
        self.label_headers = label_headers
        # the names predicted_label takes in JSON answers, as the plain server gives them
        self._answer_names = label_headers if label_headers is not None and len(label_headers) == D else m.output_names
        if self._text is not None:
            # text: the base value depends on the record (its number of units): per explanation
            self.expected_value = None
            self._explain_text(self._text_base[:1])  # start-up check, as below
            return
        ev = np.asarray(self._shap.expected_value, dtype=np.float64).reshape(-1)
        self.expected_value = ev[self.outputs]
        # one explanation now: a model that cannot predict a synthetic batch fails at start-up, not
        # on the first request, and the explainer's lazily built state exists before threads share it
        data = baseline.data if isinstance(baseline, Baseline) else baseline
        self._shap.explain(data.iloc[:1] if isinstance(data, pd.DataFrame) else data[:1])

    def _init_text(
        self,
        m: Any,
        baseline: Any,
        feature_headers: Sequence[str] | None,
        feature_types: Sequence[str] | None,
        granularity: str,
        language: str,
        num_samples: int | None,
        seed: int | None,
        use_logit: bool,
    ) -> tuple[int, int]:
        """The text explainer (:class:`TextShap`): its baseline, text columns and the model's number
        of outputs (the baseline predicted once). Returns (P, D)."""
        from clarion.explain.text import GRANULARITIES, TextShap, language_code

        key = self.keys
        if granularity not in GRANULARITIES:
            raise ValueError(f"{key['text_granularity']}: must be one of {list(GRANULARITIES)}, got {granularity!r}")
        language_code(language, key["text_language"])
        if isinstance(baseline, Baseline):
            baseline = baseline.data
        if isinstance(baseline, pd.DataFrame):
            frame = baseline.astype(object)
        else:
            rows = [list(r) for r in (baseline if isinstance(baseline, list) else np.asarray(baseline, dtype=object))]
            width = len(rows[0]) if rows else 0
            if not rows or any(len(r) != width for r in rows):
                raise ValueError(f"{key['baseline']}: expected one or more records of the same width")
            frame = pd.DataFrame(rows, dtype=object)
        P = frame.shape[1]
        names = next((n for n in (m.feature_names, feature_headers) if n is not None and len(n) == P), None)
        frame.columns = [str(c) for c in (names if names is not None else frame.columns)]
        self._columns = list(frame.columns)
        if feature_types is not None and len(feature_types) == P:
            text = [j for j, t in enumerate(feature_types) if t == "text"]
        elif P == 1:
            text = [0]
        else:
            text = [j for j in range(P) if all(isinstance(v, str) for v in frame.iloc[:, j])]
        if not text:
            raise ValueError(f'{key["text_granularity"]}: no text feature (mark them "text" in {key["feature_types"]})')
        self._text_cols = text
        for j in range(P):
            col = frame.iloc[:, j]
            if j in text:
                frame.iloc[:, j] = ["" if _missing(v) else v if isinstance(v, str) else str(v) for v in col]
            else:
                num = pd.to_numeric(col, errors="coerce")
                if not (num.isna() & col.notna()).any():
                    frame[frame.columns[j]] = num
        self._frame, self._numeric = True, False
        # the model's input: a 1-D array of strings for one text feature (as TextShap and a text
        # pipeline take it), else a DataFrame with the columns
        self._strings = P == 1
        self._text_base = frame.iloc[:, 0].to_numpy(dtype=object) if self._strings else frame
        self._text_dtypes = frame.dtypes
        y = self.model.predict(self._text_base)
        D = 1 if y.ndim == 1 else int(y.shape[1])
        self._text = TextShap(
            m,
            list(self._text_base) if self._strings else frame,
            text_features=None if self._strings else [self._columns[j] for j in text],
            granularity=granularity,
            language=language,
            num_samples=num_samples,
            seed=seed,
            link="logit" if use_logit else "identity",
        )
        self._text_lock = threading.Lock()
        self.num_samples = num_samples
        self.seed = self._text.seed_
        return P, D

    def _text_input(self, X: Any) -> Any:
        """A request's records as the text explainer's model takes them (RequestError naming the
        first bad record)."""
        P = self.n_features
        if isinstance(X, pd.DataFrame):
            rows = X.astype(object).to_numpy().tolist()
        elif isinstance(X, list):
            rows = [list(r) for r in X]
        else:
            A = np.asarray(X, dtype=object)
            rows = [[v] for v in A] if A.ndim == 1 and P == 1 else A.tolist()
        for i, r in enumerate(rows):
            if len(r) != P:
                raise RequestError(MSG_RECORD_WIDTH.format(record=i, got=len(r), want=P))
        frame = pd.DataFrame(rows, columns=self._columns, dtype=object)
        for j in range(P):
            col = frame.iloc[:, j]
            if j in self._text_cols:
                frame.iloc[:, j] = ["" if _missing(v) else v if isinstance(v, str) else str(v) for v in col]
            elif self._text_dtypes.iloc[j].kind in "fiub":
                num = pd.to_numeric(col, errors="coerce")
                bad = np.flatnonzero(num.isna().to_numpy() & col.notna().to_numpy())
                if len(bad):
                    raise RequestError(MSG_RECORD_VALUE.format(record=int(bad[0]), feature=j, value=col.iloc[bad[0]]))
                frame[frame.columns[j]] = num
        if self._strings:
            return frame.iloc[:, 0].to_numpy(dtype=object)
        return frame

    def _explain_text(self, rows: Any) -> tuple[np.ndarray, np.ndarray, list[list[dict[str, Any]]]]:
        """(values (n, P, k) per feature, expected (n, k), Clarify's per-record feature objects)."""
        # TextShap's plan cache (per number of units) is shared and not thread-safe: concurrent
        # requests' text explanations run one at a time
        with self._text_lock:
            te = self._text.explain(list(rows) if self._strings else rows.reset_index(drop=True))
        out = self.outputs
        vals = te.feature_values()[:, :, out]
        expected = np.asarray(te.expected_value, dtype=np.float64).reshape(len(te), -1)[:, out]
        heads, types = self.feature_headers, self.feature_types
        col = {"text": 0} if self._strings else {c: j for j, c in enumerate(self._columns)}
        records = []
        for v, pl in zip(te.values, te.players):
            v = np.asarray(v, dtype=np.float64).reshape(len(pl), self.n_outputs)
            feats: list[dict[str, Any]] = []
            for j in range(self.n_features):
                item: dict[str, Any] = {}
                if heads is not None:
                    item["feature_header"] = heads[j]
                if types is not None:
                    item["feature_type"] = types[j]
                elif j in self._text_cols:
                    item["feature_type"] = "text"
                item["attributions"] = []
                feats.append(item)
            for a, p in enumerate(pl):
                att: dict[str, Any] = {"attribution": [float(v[a, k]) for k in out]}
                if p["type"] == "text":
                    att["description"] = {"partial_text": p["text"], "start_idx": int(p["start"])}
                feats[col[p["feature"]]]["attributions"].append(att)
            records.append(feats)
        return vals, expected, records

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        model: Any,
        config: Any,
        *,
        base_dir: str | os.PathLike | None = None,
        n_threads: int | None = None,
    ) -> OnlineExplainer:
        """The explainer a ``ClarifyExplainerConfig`` describes (a JSON file, a dict or a
        :class:`clarion.config.explainer.ExplainerConfig`).

        Raises
        ------
        clarion.config.ConfigError
            A bad key or value, naming its path; also a config that does not fit the model (a
            ``ProbabilityIndex`` past its outputs, ``FeatureHeaders`` of another length than the
            baseline, a baseline the model cannot predict).
        """
        from clarion.config import ConfigError
        from clarion.config.explainer import parse_baseline, read_explainer_config

        cfg = read_explainer_config(config, base_dir=base_dir)
        pre = cfg.prefix
        inf = pre + "InferenceConfig."
        rows = parse_baseline(
            cfg.baseline, cfg.baseline_mime_type, features_attribute=cfg.features_attribute, path=cfg.baseline_path
        )
        keys = {
            "baseline": cfg.baseline_path,
            "enable_explanations": pre + "EnableExplanations",
            "feature_headers": inf + "FeatureHeaders",
            "feature_types": inf + "FeatureTypes",
            "probability_index": inf + "ProbabilityIndex",
            "probability_attribute": inf + "ProbabilityAttribute",
            "max_record_count": inf + "MaxRecordCount",
            "text_granularity": pre + "ShapConfig.TextConfig.Granularity",
            "text_language": pre + "ShapConfig.TextConfig.Language",
            "estimator": pre + "ShapConfig.Estimator",
        }
        try:
            explainer = cls(
                model,
                rows,
                num_samples=cfg.number_of_samples,
                seed=cfg.seed,
                use_logit=cfg.use_logit,
                estimator=cfg.estimator,
                text_granularity=cfg.text_granularity,
                text_language=cfg.text_language or "en",
                enable_explanations=cfg.enable_explanations,
                feature_headers=cfg.feature_headers,
                feature_types=cfg.feature_types,
                label_headers=cfg.label_headers,
                probability_index=cfg.probability_index,
                probability_attribute=cfg.probability_attribute,
                max_record_count=cfg.max_record_count,
                max_payload_bytes=None if cfg.max_payload_in_mb is None else cfg.max_payload_in_mb << 20,
                n_threads=n_threads,
                keys=keys,
            )
        except ConfigError:
            raise
        except ValueError as exc:
            msg = str(exc)
            if any(msg.startswith(k) for k in keys.values()):
                raise ConfigError(msg) from None
            raise ConfigError(f"{cfg.baseline_path}: {msg}") from None
        explainer.config = cfg
        explainer.features_attribute = cfg.features_attribute
        return explainer

    config: Any = None
    #: JMESPath of the feature values in JSON records (``FeaturesAttribute`` / ``ContentTemplate``)
    features_attribute: str | None = None

    def __repr__(self) -> str:
        return (
            f"OnlineExplainer({self.model!r}, features={self.n_features}, outputs={self.outputs}, "
            f"num_samples={self.num_samples}, seed={self.seed})"
        )

    def _synthetic_context(self, rows: Any) -> Any:
        """``sklearn.config_context(assume_finite=True)`` (this thread only) when the records and the
        baseline are finite numbers and scikit-learn is loaded: the synthetic rows then hold finite
        numbers only, so its check of every batch would pass; else no change."""
        sk = sys.modules.get("sklearn")
        if (
            sk is None
            or not self._finite_baseline
            or type(rows) is not np.ndarray
            or rows.dtype.kind != "f"
            or not np.isfinite(rows).all()
        ):
            return contextlib.nullcontext()
        return sk.config_context(assume_finite=True)

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _compile(expr: Any, source: str) -> Any:
        from jmespath.exceptions import JMESPathError

        if not isinstance(expr, str) or not expr:
            raise ValueError(f"{source}: expected a JMESPath expression, got {expr!r}")
        try:
            return _compiled(expr)
        except JMESPathError as exc:
            raise ValueError(MSG_ENABLE_SYNTAX.format(source=source, expr=expr, why=str(exc).splitlines()[0])) from None

    def _outputs(self, index: Any, attribute: Any, D: int) -> list[int]:
        key = self.keys
        if index is not None and attribute is not None:
            raise ValueError(f"give {key['probability_index']} or {key['probability_attribute']}, not both")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < D:
                raise ValueError(MSG_OUTPUT_INDEX.format(key=key["probability_index"], got=index, n=D, last=D - 1))
            return [int(index)]
        if attribute is not None:
            expr = self._compile(attribute, key["probability_attribute"])
            probe: dict[str, Any] = {"scores": [float(k) for k in range(D)]}
            if D > 1 and self.model.output_names is not None:
                probe["predicted_label"] = self.model.output_names[0]
            got = expr.search(probe)
            vals = got if isinstance(got, list) else [got]
            ok = bool(vals) and all(
                isinstance(v, float) and v.is_integer() and 0 <= v < D and not isinstance(v, bool) for v in vals
            )
            if not ok:
                raise ValueError(
                    MSG_OUTPUT_ATTR.format(key=key["probability_attribute"], expr=attribute, probe=probe, got=got)
                )
            return [int(v) for v in vals]
        return list(range(D))

    def _input(self, X: Any) -> Any:
        """The request's records in the baseline's form; RequestError naming the first bad record."""
        if self._text is not None:
            return self._text_input(X)
        P = self.n_features
        if isinstance(X, list):
            X = _rows_to_input(X, self._columns)
        if isinstance(X, pd.DataFrame):
            if X.shape[1] != P:
                raise RequestError(MSG_RECORD_WIDTH.format(record=0, got=X.shape[1], want=P))
            if self._numeric:
                for j in range(P):
                    col = X.iloc[:, j]
                    if col.dtype.kind not in "fiub":
                        num = pd.to_numeric(col, errors="coerce")
                        bad = np.flatnonzero(num.isna().to_numpy() & col.notna().to_numpy())
                        if len(bad):
                            raise RequestError(
                                MSG_RECORD_VALUE.format(record=int(bad[0]), feature=j, value=col.iloc[bad[0]])
                            )
                return np.ascontiguousarray(X.apply(pd.to_numeric).to_numpy(dtype=np.float64))
            X = X.copy()
            X.columns = self._columns
            return X
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != P:
            got = X.shape[1] if X.ndim == 2 else X.size
            raise RequestError(MSG_RECORD_WIDTH.format(record=0, got=got, want=P))
        if self._frame:
            return pd.DataFrame(X, columns=self._columns).infer_objects()
        if X.dtype.kind not in "fiub":
            return self._input(pd.DataFrame(X))
        return np.ascontiguousarray(X, dtype=np.float64)

    def _selected(self, y: np.ndarray, data: str, accept: str, expr: Any, source: str) -> np.ndarray:
        n = y.shape[0]
        if expr is None:
            return np.ones(n, dtype=bool)
        if accept == "text/csv":
            records: list[Any] = y.tolist()
        elif accept == "application/jsonlines":
            records = [json.loads(ln) for ln in data.splitlines() if ln.strip()]
        else:
            records = json.loads(data)["predictions"]
        sel = np.empty(n, dtype=bool)
        for i, rec in enumerate(records):
            v = expr.search(rec)
            if not isinstance(v, bool):
                raise RequestError(MSG_ENABLE_RESULT.format(source=source, expr=expr.expression, got=v, record=i))
            sel[i] = v
        return sel

    def predict(self, X: Any) -> np.ndarray:
        """The model's outputs ``(n, D)`` for the records (chunked to ``max_record_count``)."""
        with np.errstate(over="ignore"):
            return np.asarray(self.model.predict(self._input(X)), dtype=np.float64)

    def explain(
        self,
        X: Any,
        *,
        accept: str = "text/csv",
        enable_explanations: str | None = None,
        predictions: np.ndarray | None = None,
    ) -> OnlineExplanation:
        """Predict the records of one request and explain those ``EnableExplanations`` selects.

        Parameters
        ----------
        X : ndarray, DataFrame or list of records, shape (n, P)
        accept : {"text/csv", "application/jsonlines", "application/json"}
            Format of the predictions' ``data`` (and so of the records ``EnableExplanations`` sees).
        enable_explanations : str, optional
            Overrides the configured expression for this request (the
            ``X-Amzn-SageMaker-Enable-Explanations`` header).
        predictions : ndarray (n, D), optional
            The model's outputs for ``X`` when the caller already has them.

        Returns
        -------
        OnlineExplanation

        Raises
        ------
        clarion.models.wire.RequestError
            A record of the wrong width or with text where the baseline is numeric (naming the
            record), an ``EnableExplanations`` that does not compile or gives no true/false.
        """
        if accept not in CONTENT_TYPES:
            raise ValueError(f"accept must be one of {list(CONTENT_TYPES)}, got {accept!r}")
        Xi = self._input(X)
        if enable_explanations is not None:
            source = ENABLE_EXPLANATIONS_HEADER
            try:
                expr = self._compile(enable_explanations, source)
            except ValueError as exc:
                raise RequestError(str(exc)) from None
        else:
            source, expr = self.keys["enable_explanations"], self._enable
        if predictions is None:
            with np.errstate(over="ignore"):
                y = np.asarray(self.model.predict(Xi), dtype=np.float64)
        else:
            y = np.asarray(predictions, dtype=np.float64)
        data = format_response(y, accept, self._answer_names).decode()
        sel = self._selected(y, data, accept, expr, source)
        k = len(self.outputs)
        expected, text_records = self.expected_value, None
        if sel.any():
            rows = Xi[sel] if not isinstance(Xi, pd.DataFrame) else Xi.iloc[np.flatnonzero(sel)]
            if self._text is not None:
                vals, expected, text_records = self._explain_text(rows)
            else:
                with self._synthetic_context(rows):
                    vals = self._shap.explain(rows, predictions=y[sel]).values
                vals = vals[:, :, None] if vals.ndim == 2 else vals[:, :, self.outputs]
        else:
            vals = np.zeros((0, self.n_features, k))
            if self._text is not None:
                expected, text_records = np.zeros((0, k)), []
        return OnlineExplanation(
            y,
            accept,
            data,
            sel,
            vals,
            expected,
            self.feature_headers,
            self.feature_types,
            self.label_headers,
            text_records=text_records,
        )

    __call__ = explain
