"""The single place where the explainers obtain predictions from a user's model.

:func:`prediction_function` turns a callable or a scikit-learn estimator / Pipeline into
``predict(batch) -> float64 array of shape (n, D)`` with the output checks of issue 4 (wrong row
count, NaN / inf). ``KernelShap`` and ``partial_dependence`` call nothing else, so routing through
``clarion.models.as_model`` later is a one-line change here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

MSG_ROWS = "model returned {got} rows for a batch of {n} rows{where}"
MSG_NONFINITE = "model returned a non-finite value ({value}) at row {row}, output {col}{where}"
MSG_NDIM = "model output must be 1-D or 2-D, got an array of shape {shape}{where}"
MSG_NOT_CALLABLE = (
    "model must be a callable or an estimator with predict_proba/predict, got {type}"
)
MSG_OUTPUTS = "model returned {got} outputs per row, but {want} before{where}"


@dataclass
class Predictor:
    """A model wrapped as ``batch -> (n, D) float64``.

    Attributes
    ----------
    fn : callable
        The raw prediction call.
    output_names : list or None
        Class labels for ``predict_proba`` of a classifier, else None.
    vector_out : bool or None
        Whether the model returns 1-D output (learned from the first call).
    n_outputs : int or None
        ``D``, learned from the first call; later calls must agree.
    """

    fn: Callable[[Any], Any]
    output_names: list[Any] | None = None
    vector_out: bool | None = None
    n_outputs: int | None = None

    def __call__(self, batch: Any, where: str = "") -> Any:
        n = batch.shape[0]
        out = self.fn(batch)
        xp = np
        if hasattr(out, "__cuda_array_interface__"):
            import cupy  # noqa: PLC0415 - device models only

            xp = cupy
            out = cupy.asarray(out, dtype=cupy.float64)
        else:
            if hasattr(out, "to_numpy"):  # pandas / polars outputs
                out = out.to_numpy()
            if type(out).__module__.startswith("scipy.sparse") and hasattr(out, "toarray"):
                out = out.toarray()  # a sparse output (as big as the batch's outputs dense)
            out = np.asarray(out, dtype=np.float64)
        if out.ndim == 0 or out.ndim > 2:
            raise ValueError(MSG_NDIM.format(shape=tuple(out.shape), where=where))
        if out.shape[0] != n:
            raise ValueError(MSG_ROWS.format(got=out.shape[0], n=n, where=where))
        vector = out.ndim == 1
        out = out.reshape(n, -1)
        if self.n_outputs is None:
            self.vector_out, self.n_outputs = vector, out.shape[1]
        elif out.shape[1] != self.n_outputs:
            raise ValueError(MSG_OUTPUTS.format(got=out.shape[1], want=self.n_outputs, where=where))
        bad = ~xp.isfinite(out)
        if bool(bad.any()):
            row, col = (int(v) for v in xp.argwhere(bad)[0])
            raise ValueError(MSG_NONFINITE.format(value=float(out[row, col]), row=row, col=col, where=where))
        return xp.ascontiguousarray(out)


def prediction_function(model: Any) -> Predictor:
    """Wrap ``model`` as a checked ``batch -> (n, D) float64`` function.

    Parameters
    ----------
    model : callable, estimator, or anything :func:`clarion.models.as_model` accepts
        A model file path, an xgboost Booster, an ONNX session, an HTTP ``Endpoint`` or a
        ``clarion.models.Model`` goes through :func:`clarion.models.as_model` (a one-output
        model then gives 1-D attributions, as a plain callable returning 1-D output does).
        A scikit-learn classifier (or Pipeline ending in one) is called through
        ``predict_proba``; another estimator through ``predict``; any other callable is called
        as is. The batch is what the explainer builds: a numpy array, or a DataFrame with the
        original columns and dtypes when the data was a DataFrame.
    """
    if isinstance(model, Predictor):
        return model
    if callable(model) and not hasattr(model, "predict") and not _is_clarion_model(model):
        return Predictor(model)
    if not _is_sklearn_estimator(model):
        return _from_as_model(model)
    if hasattr(model, "predict_proba") or hasattr(model, "predict"):
        is_clf = False
        try:
            from sklearn.base import is_classifier  # noqa: PLC0415 - optional dependency

            is_clf = bool(is_classifier(model))
        except ImportError:  # pragma: no cover - sklearn estimators imply sklearn
            is_clf = False
        if is_clf and hasattr(model, "predict_proba"):
            names = getattr(model, "classes_", None)
            return Predictor(model.predict_proba, None if names is None else list(names))
        if hasattr(model, "predict"):
            return Predictor(model.predict)
        return Predictor(model.predict_proba)
    if callable(model):
        return Predictor(model)
    raise TypeError(MSG_NOT_CALLABLE.format(type=type(model).__name__))


def _is_clarion_model(model: Any) -> bool:
    from clarion.models import Endpoint, Model  # noqa: PLC0415 - light, but only needed here

    return isinstance(model, (Model, Endpoint))


def _is_sklearn_estimator(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator  # noqa: PLC0415 - optional dependency
    except ImportError:  # pragma: no cover - without sklearn nothing is an estimator
        return False
    return isinstance(model, BaseEstimator) and type(model).__module__.split(".")[0] != "xgboost"


def _from_as_model(model: Any) -> Predictor:
    """Route model files, Boosters, ONNX sessions, endpoints and ``Model`` objects via ``as_model``."""
    from clarion.models import as_model  # noqa: PLC0415 - keeps explain importable alone

    m = as_model(model)

    def predict(batch: Any) -> Any:
        out = m.predict(batch)
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out

    names = m.output_names if (m.n_outputs or 0) > 1 else None
    return Predictor(predict, None if names is None else list(names))
