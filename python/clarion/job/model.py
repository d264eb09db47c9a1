"""The model of a job: loading it from the config (or an argument), and the rules that turn model
outputs into the predicted label (bias) and the explained outputs (SHAP, PDP)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from clarion.job.plan import _Plan

MSG_LABEL_OUTSIDE = (
    "predictor.label: the model's predicted label for row {row} (0-based) is {value!r}, which is not "
    "an index of label_headers (a whole number from 0 to {n} - 1; label_headers: {headers})"
)


MSG_JMESPATH_LOCAL = (
    "predictor.{key}: {value!r} is a JMESPath expression, which selects from an endpoint's "
    "JSON answer; a local model's outputs are columns: give the output's index (0, 1, ...)"
)


MSG_LABEL_HEADERS = (
    "predictor.label_headers: {n} names {headers}, but the model gives {d} outputs, of which "
    "{explained} are explained: give one name per output"
)


MSG_FEATURES_HINT = (
    ". Drop a column the model does not take with `excluded_columns` (an id column can "
    "instead be named in `joinsource_name_or_index`); a column the model needs must be in "
    "the data (and in `headers`)"
)


MSG_NO_MODEL = (
    "predictor: {why} needs a model; pass model= (--model FILE or --endpoint URL) or set "
    "predictor.model_uri / predictor.endpoint_url in the config"
)


MSG_MODEL_NONFINITE = (
    "model: output {output} is {value} for data row {row} (line/record {line} of the input); "
    "post-training bias needs finite model outputs (a NaN score would silently count as a "
    "negative prediction)"
)


class _Outputs:
    """How model outputs become the predicted label (for bias) and the explained outputs (SHAP, PDP).

    * ``predictor.label`` (an output index): that output is the predicted label, as is (mapped
      through ``label_headers`` when given);
    * ``predictor.probability`` (an output index), or a single output: a score; the predicted label
      is positive when score > ``probability_threshold`` (for a label with a numeric threshold the
      output is a predicted value, thresholded like the label);
    * several outputs: with names (``label_headers`` or the model's class names) and two outputs one
      of which is a positive label value, that output is the score as above; otherwise the name of
      the highest output; without names and two outputs, the second is the positive score
      (scikit-learn's class order); otherwise the index of the highest output.

    SHAP and PDP explain the ``probability`` output when given, else every output; they are named
    by ``label_headers`` when it has one name per explained output, else ``label0``, ``label1``…
    """

    def __init__(self, cfg: Any, model: Any, selects_in_model: bool) -> None:
        p = cfg.predictor
        self.model = model
        if p is not None and not selects_in_model:
            for key in ("label", "probability"):  # a JMESPath selects from an endpoint's JSON answer
                if isinstance(getattr(p, key), str):
                    from clarion.config import ConfigError

                    raise ConfigError(MSG_JMESPATH_LOCAL.format(key=key, value=getattr(p, key)))
        self.label_idx = None if p is None or selects_in_model or not isinstance(p.label, int) else p.label
        self.prob_idx = None if p is None or selects_in_model or not isinstance(p.probability, int) else p.probability
        self.label_headers = list(p.label_headers) if p is not None and p.label_headers else None
        self.threshold = cfg.probability_threshold
        self._checked_width: int | None = None
        if selects_in_model and getattr(model, "output", None) == "label":
            # an endpoint answering with its predicted label (predictor.label): that is the label,
            # through label_headers like a local label output, never a score against the threshold
            self.label_idx = 0

    def predict(self, X: Any) -> np.ndarray:
        out = np.asarray(self.model.predict(X), dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.shape[0] != len(X):
            raise ValueError(f"model: returned {out.shape[0]} predictions for {len(X)} rows")
        for idx, key in ((self.label_idx, "predictor.label"), (self.prob_idx, "predictor.probability")):
            if idx is not None and idx >= out.shape[1]:
                raise ValueError(f"{key}: output index {idx} but the model returns {out.shape[1]} outputs")
        if self._checked_width != out.shape[1]:
            self._check_headers(out.shape[1])
            self._checked_width = out.shape[1]
        return out

    def _check_headers(self, d: int) -> None:
        """label_headers name the explained outputs (or every output, with an output index in
        predictor.probability); headers that fit neither would be silently dropped."""
        h = self.label_headers
        if not h or self.label_idx is not None:
            return
        n_explained = 1 if self.prob_idx is not None else d
        if len(h) == n_explained or (self.prob_idx is not None and len(h) == d):
            return
        from clarion.config import ConfigError

        raise ConfigError(MSG_LABEL_HEADERS.format(n=len(h), headers=h, d=d, explained=n_explained))

    def explained(self, P_or_n: np.ndarray | int) -> list[int]:
        if self.prob_idx is not None:
            return [self.prob_idx]
        d = P_or_n if isinstance(P_or_n, int) else P_or_n.shape[1]
        return list(range(d))

    def names(self, n_explained: int) -> list[str]:
        h = self.label_headers
        if h and len(h) == n_explained:
            return [str(x) for x in h]
        if h and self.prob_idx is not None and n_explained == 1 and self.prob_idx < len(h):
            return [str(h[self.prob_idx])]  # headers of every output: the explained one's
        return [f"label{i}" for i in range(n_explained)]

    def used_for_label(self, P: np.ndarray) -> list[int]:
        """The outputs that :meth:`predicted_label` reads (each must be finite)."""
        if self.label_idx is not None:
            return [self.label_idx]
        if self.prob_idx is not None:
            return [self.prob_idx]
        return list(range(P.shape[1]))

    def predicted_label(self, P: np.ndarray, plan: _Plan, first_row: int = 0) -> Any:
        pos = plan.label_values
        if self.label_idx is not None:
            v = P[:, self.label_idx]
            if self.label_headers:
                return _header_of(v, self.label_headers, first_row)
            return v
        if self.prob_idx is not None or P.shape[1] == 1:
            s = P[:, self.prob_idx if self.prob_idx is not None else 0]
            if plan.label_threshold is not None:
                return s
            return self._to_label_space(s > self.threshold, plan)
        if self.label_headers and len(self.label_headers) != P.shape[1]:
            from clarion.config import ConfigError

            raise ConfigError(
                MSG_LABEL_HEADERS.format(
                    n=len(self.label_headers), headers=self.label_headers, d=P.shape[1], explained=P.shape[1]
                )
            )
        names = self.label_headers if self.label_headers else _output_names(self.model)
        names = list(names) if names is not None and len(names) == P.shape[1] else None
        wanted = {str(v) for v in pos} if pos is not None else set()
        hits = [i for i, n in enumerate(names or []) if str(n) in wanted]
        if P.shape[1] == 2:
            # the positive class's score; without a name for it, scikit-learn's (negative, positive) order
            col = hits[0] if len(hits) == 1 else 1
            return self._to_label_space(P[:, col] > self.threshold, plan)
        top = np.argmax(P, axis=1)
        if hits:  # outputs named by label values: the name of the highest output, in the label's type
            return _coerce_array(np.asarray(names, dtype=object)[top], plan.label_numeric)
        return top

    def score(self, P: np.ndarray, plan: _Plan) -> np.ndarray | None:
        """The positive class's score that :meth:`predicted_label` thresholds (for per-group ROC AUC,
        calibration and threshold curves), or None when the predicted label is not a thresholded
        score (a label output, a numeric label threshold, a multi-class argmax)."""
        if self.label_idx is not None or plan.label_values is None:
            return None
        if self.prob_idx is not None or P.shape[1] == 1:
            return P[:, self.prob_idx if self.prob_idx is not None else 0]
        if P.shape[1] != 2 or (self.label_headers and len(self.label_headers) != 2):
            return None
        names = self.label_headers if self.label_headers else _output_names(self.model)
        names = list(names) if names is not None and len(names) == 2 else None
        wanted = {str(v) for v in plan.label_values}
        hits = [i for i, n in enumerate(names or []) if str(n) in wanted]
        return P[:, hits[0] if len(hits) == 1 else 1]

    @staticmethod
    def _to_label_space(positive: np.ndarray, plan: _Plan) -> np.ndarray:
        pos = plan.label_values[0]
        out = np.where(positive, pos, plan.negative_label)
        return out.astype(object) if isinstance(pos, str) else out


def _header_of(v: np.ndarray, headers: list[Any], first_row: int) -> np.ndarray:
    """Predicted label indices (predictor.label) to their label_headers; any output that is not a
    whole number in [0, len(label_headers)) is an error naming the row."""
    n = len(headers)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(v) & (v == np.floor(v)) & (v >= 0) & (v < n)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(MSG_LABEL_OUTSIDE.format(row=first_row + i, value=float(v[i]), n=n, headers=headers))
    return np.asarray(headers, dtype=object)[v.astype(np.int64)]


def _coerce_array(values: np.ndarray, numeric: bool) -> np.ndarray:
    if not numeric:
        return values
    import pandas as pd

    return pd.to_numeric(pd.Series(values)).to_numpy()


def _output_names(model: Any) -> list[Any] | None:
    names = getattr(model, "output_names", None)
    return list(names) if names is not None else None


def _load_model(cfg: Any, model: Any, base_dir: str, why: str) -> tuple[Any, bool]:
    """The model as a clarion Model; the bool says whether it already selects outputs itself (an
    endpoint configured with predictor.label/probability)."""
    p = cfg.predictor
    if model is None and (p is None or not (p.endpoint_url or p.model_uri)):
        raise ValueError(MSG_NO_MODEL.format(why=why))
    from clarion import models

    if model is None and p.endpoint_url:
        model = endpoint_for(cfg, p.endpoint_url)
    elif model is None:
        uri = p.model_uri
        model = uri if os.path.isabs(uri) or "://" in uri else os.path.join(base_dir, uri)
    # label_headers name the *explained* outputs (clarion handles them), not necessarily every
    # model output, so they are not handed to as_model; an Endpoint applies them itself
    trusted = p.trusted_types if p is not None else None
    return models.as_model(model, trusted=trusted), isinstance(model, models.Endpoint)


def _check_model_features(model: Any, plan: Any) -> None:
    """The model's declared features (scikit-learn ``feature_names_in_`` / ``n_features_in_``,
    xgboost feature names / count, ONNX inputs) against the columns clarion sends it."""
    check = getattr(model, "check_features", None)
    if check is not None:
        check(plan.features, hint=MSG_FEATURES_HINT)


def endpoint_for(cfg: Any, url: str, *, timeout: float | None = None, retries: int | None = None) -> Any:
    """A :class:`clarion.models.Endpoint` at ``url`` configured from the config's ``predictor``
    (content and accept types, label/probability selection, templates); ``timeout`` / ``retries``
    override ``predictor.timeout`` / ``predictor.retries``."""
    from clarion import models

    p = cfg.predictor
    ct = (p.content_type if p is not None else None) or (
        cfg.dataset_type
        if cfg.dataset_type in ("text/csv", "application/jsonlines", "application/json")
        else "image/jpeg"
        if cfg.dataset_type == "application/x-image"  # Clarify's CV default
        else "text/csv"
    )
    kw: dict[str, Any] = {"content_type": ct}
    if p is not None:
        kw.update(
            accept_type=p.accept_type,
            label=p.label,
            probability=p.probability,
            label_headers=p.label_headers,
            content_template=p.content_template,
            record_template=p.record_template,
        )
        timeout = p.timeout if timeout is None else timeout
        retries = p.retries if retries is None else retries
    if timeout is not None:
        kw["timeout"] = timeout
    if retries is not None:
        kw["retries"] = retries
    return models.Endpoint(url, **kw)


class _Selected:
    """The model restricted to the explained outputs; a callable taking the feature DataFrame."""

    def __init__(self, model: Any, cols: list[int], dtypes: Any) -> None:
        self.model, self.cols, self.dtypes = model, list(cols), dtypes

    def __call__(self, X: Any) -> np.ndarray:
        import pandas as pd

        if not isinstance(X, pd.DataFrame):  # an array: back to the data's columns and dtypes
            X = pd.DataFrame(np.asarray(X), columns=list(self.dtypes.index)).astype(self.dtypes.to_dict())
        out = np.asarray(self.model.predict(X), dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        out = out[:, self.cols]
        return out[:, 0] if out.shape[1] == 1 else out
