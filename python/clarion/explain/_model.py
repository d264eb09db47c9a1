"""The single place where the explainers obtain predictions from a user's model.

:func:`prediction_function` turns the model into a :class:`clarion.models.Model` (the adapters of
:mod:`clarion.models` decide how a model is called: ``predict_proba`` for a scikit-learn
classifier, ``predict`` for another estimator, in-place prediction for xgboost, an HTTP endpoint...)
and wraps it as ``predict(batch) -> float64 array of shape (n, D)`` with the explainers' output
checks (wrong row count, NaN / inf), whose messages say which batch failed. ``KernelShap`` and
``partial_dependence`` call nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from clarion.models import Model, as_model

MSG_ROWS = "model returned {got} rows for a batch of {n} rows{where}"
MSG_NONFINITE = "model returned a non-finite value ({value}) at row {row}, output {col}{where}"
MSG_NDIM = "model output must be 1-D or 2-D, got an array of shape {shape}{where}"
MSG_NOT_CALLABLE = "model must be a callable or an estimator with predict_proba/predict, got {type}"
MSG_OUTPUTS = "model returned {got} outputs per row, but {want} before{where}"


class CheckedModel:
    """A :class:`clarion.models.Model` as the explainers call it: ``batch -> (n, D) float64``.

    Parameters
    ----------
    model : clarion.models.Model
    raw : bool
        Call the model's prediction function on the batch as the explainer built it (a numpy
        array, a DataFrame with the data's columns and dtypes, or a cupy array) and check its raw
        output here; else call :meth:`Model.predict` (a one-output model then gives 1-D output).
    output_names : list or None
        Class labels of a classifier's probability outputs, else None.

    Attributes
    ----------
    model : clarion.models.Model
    output_names : list or None
    vector_out : bool or None
        Whether the model returns 1-D output (learned from the first call).
    n_outputs : int or None
        ``D``, learned from the first call; later calls must agree.
    """

    def __init__(self, model: Model, *, raw: bool, output_names: list[Any] | None = None) -> None:
        self.model = model
        self.output_names = output_names
        self.vector_out: bool | None = None
        self.n_outputs: int | None = None
        self._fn: Callable[[Any], Any] = model.fn if raw else self._predict

    def _predict(self, batch: Any) -> Any:
        out = self.model.predict(batch)
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out

    def __call__(self, batch: Any, where: str = "") -> Any:
        """Predict ``batch``; ``where`` (e.g. ``" (on the background)"``) ends every message.

        Raises
        ------
        ValueError
            Output of the wrong rank or row count, another number of outputs than before, or a
            NaN / infinite value.
        """
        n = batch.shape[0]
        out = self._fn(batch)
        xp = np
        if hasattr(out, "__cuda_array_interface__"):
            import cupy  # device models only

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


def prediction_function(model: Any) -> CheckedModel:
    """Wrap ``model`` as a checked ``batch -> (n, D) float64`` function.

    Parameters
    ----------
    model : callable, estimator, or anything :func:`clarion.models.as_model` accepts
        A model file path, an xgboost Booster, an ONNX session, an HTTP ``Endpoint`` or a
        ``clarion.models.Model`` goes through :meth:`clarion.models.Model.predict` (a one-output
        model then gives 1-D attributions, as a plain callable returning 1-D output does).
        A scikit-learn classifier (or Pipeline ending in one) is called through
        ``predict_proba``; another estimator through ``predict``; any other callable is called
        as is. The batch is what the explainer builds: a numpy array, or a DataFrame with the
        original columns and dtypes when the data was a DataFrame.
    """
    if isinstance(model, CheckedModel):
        return model
    if callable(model) and not hasattr(model, "predict") and not isinstance(model, Model):
        return CheckedModel(Model(model, accepts="any"), raw=True)
    if not _is_sklearn_estimator(model):
        m = as_model(model)
        names = m.output_names if (m.n_outputs or 0) > 1 else None
        return CheckedModel(m, raw=False, output_names=None if names is None else list(names))
    if hasattr(model, "predict_proba") or hasattr(model, "predict"):
        is_clf = _is_classifier(model)
        if is_clf and hasattr(model, "predict_proba"):
            m = as_model(model, output="probability", accepts="any")
            return CheckedModel(m, raw=True, output_names=m.classes)
        if hasattr(model, "predict"):
            return CheckedModel(as_model(model, output="label" if is_clf else "score", accepts="any"), raw=True)
        return CheckedModel(as_model(model, output="probability", accepts="any"), raw=True)
    if callable(model):
        return CheckedModel(Model(model, accepts="any"), raw=True)
    raise TypeError(MSG_NOT_CALLABLE.format(type=type(model).__name__))


def _is_classifier(model: Any) -> bool:
    try:
        from sklearn.base import is_classifier  # optional dependency
    except ImportError:  # pragma: no cover - sklearn estimators imply sklearn
        return False
    return bool(is_classifier(model))


def _is_sklearn_estimator(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator  # optional dependency
    except ImportError:  # pragma: no cover - without sklearn nothing is an estimator
        return False
    return isinstance(model, BaseEstimator) and type(model).__module__.split(".")[0] != "xgboost"
