"""Adapters: :func:`as_model` turns anything that predicts into a :class:`~clarion.models.Model`.

* a Python callable ``f(X) -> scores`` (numpy in, array out; ``accepts="pandas"`` or
  ``accepts="cupy"`` for callables that want a DataFrame or data on the GPU, ``accepts="any"``
  for those that take the input as given);
* a scikit-learn estimator or Pipeline (probabilities for classifiers by default);
* an xgboost ``Booster``, ``XGBClassifier`` / ``XGBRegressor`` or a saved ``.json`` / ``.ubj``
  model file (predictions through xgboost's in-place prediction; a file saved from
  ``XGBClassifier`` gives ``predict_proba``'s columns, one saved from a ``Booster`` its raw
  output);
* an ONNX model (``.onnx`` file or an ``onnxruntime.InferenceSession``);
* a scikit-learn model saved with skops (``.skops``, loaded with skops' trusted-types API);
* an HTTP endpoint speaking the SageMaker invocation protocol (:class:`Endpoint`, or an
  ``http://`` / ``https://`` URL);
* an existing :class:`Model`.

A new model format is one more branch here (and, for a file format, one in :mod:`.files`). Heavy
dependencies (xgboost, onnxruntime, skops, scikit-learn) are imported only when a model of that
kind is used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from clarion.models._base import DEFAULT_MEMORY_BUDGET, Accepts, Model, Output
from clarion.models.endpoint import Endpoint
from clarion.models.files import MSG_PICKLE, PICKLE_SUFFIXES, check_in_child, load_skops

__all__ = ["MSG_UNKNOWN_MODEL", "as_model"]

MSG_UNKNOWN_MODEL = (
    "as_model cannot use {what}: expected a callable, a scikit-learn estimator, an xgboost model, "
    "an onnxruntime session, an Endpoint, a Model, an http(s) URL or a model file "
    "(.json/.ubj xgboost, .onnx, .skops)"
)


def as_model(
    obj: Any,
    *,
    output: Output | str | None = None,
    label_headers: Sequence[Any] | None = None,
    accepts: Accepts | None = None,
    feature_names: Sequence[str] | None = None,
    trusted: Sequence[str] | None = None,
    providers: Sequence[str] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    batch_rows: int | None = None,
) -> Model:
    """Turn anything that predicts into a :class:`Model`.

    Parameters
    ----------
    obj
        One of: a :class:`Model` (returned as is) or :class:`Endpoint`; an ``http://`` or
        ``https://`` URL (an :class:`Endpoint` with default settings); a path to a model file
        (``.json`` / ``.ubj`` xgboost, ``.onnx``, ``.skops``); a scikit-learn estimator or
        Pipeline; an xgboost ``Booster``, ``XGBClassifier`` or ``XGBRegressor``; an
        ``onnxruntime.InferenceSession``; a Python callable ``f(X) -> predictions``.
        Pickle/joblib files are refused (they run code when loaded; see the module docstring).
    output : {"label", "probability", "score"} or str, optional
        Which prediction: classifiers default to ``"probability"`` (``predict_proba``, one
        column per class), ``"label"`` is ``predict`` and ``"score"`` the decision function /
        margin (regressors: ``predict``). For ONNX models also the name of an output; for an
        :class:`Endpoint`, ``"label"`` or ``"probability"`` picks which of its configured fields
        to return.
    label_headers : sequence, optional
        Names of the outputs (Clarify's ``label_headers``). For label outputs with non-numeric
        labels, the label values in the order whose index is returned.
    accepts : {"numpy", "pandas", "cupy"}, optional
        Override what the model is fed. Callables default to numpy; ``"cupy"`` makes a
        cupy-native callable keep device data on the device. scikit-learn models fitted on a
        DataFrame default to ``"pandas"``.
    feature_names : sequence of str, optional
        Column names used to build DataFrames for ``accepts="pandas"``.
    trusted : sequence of str, optional
        ``.skops`` files: extra types to trust (see ``skops.io.get_untrusted_types``).
    providers : sequence of str, optional
        ONNX files: onnxruntime execution providers. Default: the CUDA provider when onnxruntime
        has it and clarion sees a CUDA device, else the CPU provider.
    memory_budget, batch_rows
        See :class:`Model`.

    Returns
    -------
    Model
        ``predict(X)`` gives float64 ``(n, n_outputs)``.

    Raises
    ------
    ValueError
        Unknown ``output``, a pickle/joblib path, an unsupported file suffix, untrusted types in
        a ``.skops`` file.
    TypeError
        ``obj`` is nothing that predicts.
    """
    common = {"memory_budget": memory_budget, "batch_rows": batch_rows}
    if isinstance(obj, Endpoint):
        if output is not None or label_headers is not None:
            return obj.with_options(output=output, label_headers=label_headers)
        return obj
    if isinstance(obj, Model):
        if output is not None or label_headers is not None or accepts is not None:
            raise ValueError("output/label_headers/accepts cannot be changed on an existing Model")
        return obj
    if isinstance(obj, os.PathLike) or isinstance(obj, str):
        text = os.fspath(obj)
        if isinstance(obj, str) and text.lower().startswith(("http://", "https://")):
            return Endpoint(text, label_headers=label_headers, output=output)
        return _from_path(
            text,
            output=output,
            label_headers=label_headers,
            accepts=accepts,
            feature_names=feature_names,
            trusted=trusted,
            providers=providers,
            **common,
        )
    mod = type(obj).__module__ or ""
    if mod.startswith("xgboost"):
        return _from_xgboost(
            obj, output=output, label_headers=label_headers, accepts=accepts, feature_names=feature_names, **common
        )
    if mod.startswith("onnxruntime"):
        return _from_onnx_session(
            obj, output=output, label_headers=label_headers, feature_names=feature_names, **common
        )
    if hasattr(obj, "fit") and (hasattr(obj, "predict") or hasattr(obj, "predict_proba")):
        return _from_sklearn(
            obj, output=output, label_headers=label_headers, accepts=accepts, feature_names=feature_names, **common
        )
    if callable(obj):
        if output is not None:
            raise ValueError("output= applies to estimators, not to plain callables")
        return Model(obj, accepts=accepts or "numpy", output_names=label_headers, feature_names=feature_names, **common)
    raise TypeError(MSG_UNKNOWN_MODEL.format(what=f"an object of type {type(obj).__name__}"))


def _from_path(path: str, *, output, label_headers, accepts, feature_names, trusted, providers, **common) -> Model:
    lower = path.lower()
    if lower.endswith(PICKLE_SUFFIXES):
        raise ValueError(MSG_PICKLE.format(path=path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    if lower.endswith((".json", ".ubj")):
        try:
            import xgboost as xgb
        except ImportError as exc:
            raise ImportError(f"loading {path!r} needs xgboost (pip install xgboost)") from exc
        check_in_child(path, "xgboost", getattr(xgb, "__version__", ""))
        booster = xgb.Booster(model_file=path)
        obj: Any = booster
        try:  # saved from XGBClassifier/XGBRegressor: keep the estimator's semantics
            kind = json.loads(booster.attr("scikit_learn") or "{}").get("_estimator_type")
        except (ValueError, AttributeError):
            kind = None
        if kind in ("classifier", "regressor"):
            obj = xgb.XGBClassifier() if kind == "classifier" else xgb.XGBRegressor()
            obj.load_model(path)
        model = _from_xgboost(
            obj, output=output, label_headers=label_headers, accepts=accepts, feature_names=feature_names, **common
        )
        model.name = os.path.basename(path)
        return model
    if lower.endswith(".onnx"):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError(f"loading {path!r} needs onnxruntime (pip install onnxruntime)") from exc
        check_in_child(path, "onnx", getattr(ort, "__version__", ""))
        session = ort.InferenceSession(path, providers=list(providers or _onnx_providers(ort)))
        model = _from_onnx_session(
            session, output=output, label_headers=label_headers, feature_names=feature_names, **common
        )
        model.name = os.path.basename(path)
        return model
    if lower.endswith(".skops"):
        est = load_skops(path, trusted)
        model = as_model(
            est, output=output, label_headers=label_headers, accepts=accepts, feature_names=feature_names, **common
        )
        model.name = os.path.basename(path)
        return model
    raise ValueError(MSG_UNKNOWN_MODEL.format(what=f"the file {path!r} (unknown suffix)"))


# -- scikit-learn ------------------------------------------------------------------------------


def _is_classifier(est: Any) -> bool:
    try:
        from sklearn.base import is_classifier

        return bool(is_classifier(est))
    except Exception:  # noqa: BLE001 - any failure of sklearn's check: judge by the attributes
        return hasattr(est, "classes_") and hasattr(est, "predict_proba")


def _from_sklearn(est, *, output, label_headers, accepts, feature_names, **common) -> Model:
    classifier = _is_classifier(est)
    if output is None:
        output = (
            "probability" if classifier and hasattr(est, "predict_proba") else ("score" if not classifier else "label")
        )
    if output not in ("label", "probability", "score"):
        raise ValueError(f"output must be 'label', 'probability' or 'score', got {output!r}")
    classes = getattr(est, "classes_", None)
    names: list[str] | None = None
    label_values = None
    if output == "probability":
        if not hasattr(est, "predict_proba"):
            raise ValueError(f"output='probability' needs predict_proba, which {type(est).__name__} lacks")
        fn = est.predict_proba
        if classes is not None and np.ndim(classes) == 1:
            names = [str(c) for c in classes]
    elif output == "label":
        fn = est.predict
        names = ["label"]
        if classes is not None and np.ndim(classes) == 1 and np.asarray(classes).dtype.kind not in "fiub":
            label_values = list(classes)
    else:
        if classifier:
            if not hasattr(est, "decision_function"):
                raise ValueError(f"output='score' needs decision_function, which {type(est).__name__} lacks")
            fn = est.decision_function
            if classes is not None and len(classes) == 2:
                names = [str(classes[1])]
            elif classes is not None:
                names = [str(c) for c in classes]
        else:
            fn = est.predict
    if label_headers is not None:
        names = [str(h) for h in label_headers]
        if output == "label" and label_values is not None:
            label_values = list(label_headers)
            names = ["label"]
    if accepts is None:
        accepts = "pandas" if hasattr(est, "feature_names_in_") else "numpy"
    if feature_names is None and hasattr(est, "feature_names_in_"):
        feature_names = list(est.feature_names_in_)
    probability_classes = list(classes) if output == "probability" and classes is not None else None
    return Model(
        fn,
        accepts=accepts,
        output_names=names,
        feature_names=feature_names,
        name=type(est).__name__,
        label_values=label_values,
        output=output,
        classes=probability_classes,
        **common,
    )._declare_features(_attr(est, "feature_names_in_"), _attr(est, "n_features_in_"))


def _attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - properties of unfitted estimators raise
        return None


def _booster_features(booster: Any) -> tuple[list[str] | None, int | None]:
    try:
        n = int(booster.num_features())
    except Exception:  # noqa: BLE001 - an old or empty booster
        n = None
    return booster.feature_names, n


# -- xgboost -----------------------------------------------------------------------------------


def _from_xgboost(obj, *, output, label_headers, accepts, feature_names, **common) -> Model:
    import xgboost as xgb

    names = None if label_headers is None else [str(h) for h in label_headers]
    if isinstance(obj, xgb.Booster):
        booster, kwargs = obj, {}
        if output in (None, "probability"):
            predict_type = "value"
        elif output == "score":
            predict_type = "margin"
        else:
            raise ValueError(
                f"output={output!r} is not available for a raw xgboost Booster (use 'probability' "
                "or 'score', or pass the XGBClassifier)"
            )

        def fn(X):
            return booster.inplace_predict(X, predict_type=predict_type, **kwargs)

        return Model(
            fn,
            accepts=accepts or "numpy",
            output_names=names,
            feature_names=feature_names,
            name="xgboost.Booster",
            output=output or "probability",
            **common,
        )._declare_features(*_booster_features(booster))
    if not isinstance(obj, xgb.XGBModel):
        raise TypeError(MSG_UNKNOWN_MODEL.format(what=f"an object of type {type(obj).__name__}"))
    booster = obj.get_booster()
    best = getattr(obj, "best_iteration", None)
    kwargs = {"iteration_range": (0, int(best) + 1)} if best is not None else {}
    classifier = isinstance(obj, xgb.XGBClassifier)
    if output is None:
        output = "probability" if classifier else "score"
    if output not in ("label", "probability", "score"):
        raise ValueError(f"output must be 'label', 'probability' or 'score', got {output!r}")
    if output == "label":
        fn = obj.predict
        names = names or ["label"]
    elif output == "probability":
        if not classifier:
            raise ValueError(f"output='probability' needs a classifier, got {type(obj).__name__}")

        def fn(X):
            p = booster.inplace_predict(X, predict_type="value", **kwargs)
            if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1 and obj.n_classes_ == 2):
                p = p.reshape(-1)
                return np.stack([1.0 - p, p], axis=1)  # what XGBClassifier.predict_proba returns
            return p

        if names is None and getattr(obj, "classes_", None) is not None:
            names = [str(c) for c in obj.classes_]
    else:
        predict_type = "margin" if classifier else "value"

        def fn(X):
            return booster.inplace_predict(X, predict_type=predict_type, **kwargs)

    if feature_names is None and hasattr(obj, "feature_names_in_"):
        feature_names = list(obj.feature_names_in_)
    return Model(
        fn,
        accepts=accepts or "numpy",
        output_names=names,
        feature_names=feature_names,
        name=type(obj).__name__,
        output=output,
        **common,
    )._declare_features(*_booster_features(booster))


# -- ONNX --------------------------------------------------------------------------------------

_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float16)": np.float16,
    "tensor(string)": object,
    "tensor(bool)": np.bool_,
}


def _onnx_providers(ort) -> list[str]:
    from clarion import _backend

    if "CUDAExecutionProvider" in ort.get_available_providers() and _backend.cuda_device_count() > 0:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _from_onnx_session(session, *, output, label_headers, feature_names, **common) -> Model:
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    out_names = [o.name for o in outputs]
    if output is None or output == "probability":
        prob = [o for o in out_names if "prob" in o.lower()]
        if output == "probability" and not prob:
            raise ValueError(f"ONNX model has no probability output among {out_names}")
        chosen = prob[0] if prob else out_names[0]
    elif output in out_names:
        chosen = output
    elif output == "label":
        lab = [o for o in out_names if "label" in o.lower()]
        if not lab:
            raise ValueError(f"ONNX model has no label output among {out_names}")
        chosen = lab[0]
    elif output == "score":
        non_label = [o for o in out_names if "label" not in o.lower()]
        chosen = non_label[0] if non_label else out_names[0]
    else:
        raise ValueError(f"output must be 'label', 'probability', 'score' or one of {out_names}, got {output!r}")
    names = None if label_headers is None else [str(h) for h in label_headers]
    if len(inputs) == 1:
        in_name = inputs[0].name
        dtype = _ONNX_DTYPES.get(inputs[0].type, np.float32)

        def fn(X):
            arr = np.asarray(X)
            if dtype is not object:
                arr = np.ascontiguousarray(arr, dtype=dtype)
            return _onnx_result(session.run([chosen], {in_name: arr})[0])

        shape = list(inputs[0].shape or [])
        width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        return Model(
            fn, accepts="numpy", output_names=names, feature_names=feature_names, name=f"onnx:{chosen}", **common
        )._declare_features(None, width)
    # one input per column (skl2onnx with a DataFrame): feed the columns by name
    specs = [(i.name, _ONNX_DTYPES.get(i.type, np.float32)) for i in inputs]

    def fn_frame(frame):
        feeds = {}
        for col, dtype in specs:
            values = frame[col].to_numpy().reshape(-1, 1)
            feeds[col] = values.astype(dtype) if dtype is not object else values.astype(str).astype(object)
        return _onnx_result(session.run([chosen], feeds)[0])

    return Model(
        fn_frame,
        accepts="pandas",
        output_names=names,
        feature_names=feature_names or [s[0] for s in specs],
        name=f"onnx:{chosen}",
        **common,
    )._declare_features([s[0] for s in specs], None)


def _onnx_result(y: Any) -> Any:
    if isinstance(y, list) and y and isinstance(y[0], dict):  # ZipMap: a list of {class: prob}
        keys = list(y[0].keys())
        return np.array([[row[k] for k in keys] for row in y], dtype=np.float64)
    return y
