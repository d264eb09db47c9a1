"""Model adapters and batching: one way to get fast, batched, checked predictions from "a model".

Every analysis that needs predictions (post-training bias without a predicted-label column,
Kernel SHAP, partial dependence) goes through :func:`as_model`, which turns any of

* a Python callable ``f(X) -> scores`` (numpy in, array out; ``accepts="pandas"`` or
  ``accepts="cupy"`` for callables that want a DataFrame or data on the GPU);
* a scikit-learn estimator or Pipeline (probabilities for classifiers by default);
* an xgboost ``Booster``, ``XGBClassifier`` / ``XGBRegressor`` or a saved ``.json`` / ``.ubj``
  model file (predictions through xgboost's in-place prediction; a file saved from
  ``XGBClassifier`` gives ``predict_proba``'s columns, one saved from a ``Booster`` its raw
  output);
* an ONNX model (``.onnx`` file or an ``onnxruntime.InferenceSession``);
* a scikit-learn model saved with skops (``.skops``, loaded with skops' trusted-types API);
* an HTTP endpoint speaking the SageMaker invocation protocol (:class:`Endpoint`, or an
  ``http://`` / ``https://`` URL);
* an existing :class:`Model`

into a :class:`Model` whose :meth:`Model.predict` returns a float64 array of shape
``(n_rows, n_outputs)`` (a one-output model gives ``(n, 1)``), checked to have one row per
input row.

**No code from data.** Model files are loaded only through formats that hold data, not code:
xgboost's JSON/UBJSON, ONNX, and skops (which refuses every type not on its trusted list).
Pickle and joblib files (``.pkl``, ``.pickle``, ``.joblib``) are refused: unpickling runs
arbitrary code, and a model path may come from a config file. Heavy dependencies (xgboost,
onnxruntime, skops, cupy) are imported only when a model of that kind is used.
"""

from __future__ import annotations

import csv
import http.client
import json
import math
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from clarion._backend import is_device_array

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "Endpoint",
    "EndpointError",
    "EndpointResponseError",
    "Model",
    "ModelFileError",
    "as_model",
]

Accepts = Literal["numpy", "pandas", "cupy"]
Output = Literal["label", "probability", "score"]

#: bytes of input (plus the output estimate) one model call may hold; larger inputs are chunked
DEFAULT_MEMORY_BUDGET = 1 << 30

CONTENT_TYPES = ("text/csv", "application/jsonlines", "application/json")

# Error messages (module constants so that tests can match them).
MSG_WRONG_ROWS = "model {name!r} returned {got} rows of predictions for {n} input rows"
MSG_BAD_NDIM = "model {name!r} returned an array of shape {shape}; expected (n,) or (n, n_outputs)"
MSG_NOT_NUMERIC = "model {name!r} returned non-numeric predictions (dtype {dtype})"
MSG_NAMES_COUNT = (
    "model {name!r} returned {got} outputs per row, but {n} output names (label_headers) were given: "
    "{names}; give one name per output"
)
MSG_OUTPUTS_CHANGED = "model {name!r} returned {got} outputs per row, earlier calls returned {expected}"
MSG_PICKLE = (
    "refusing to load {path!r}: pickle/joblib files run arbitrary code when loaded, and clarion never "
    "unpickles anything that a config or data file can point to. Save the model with skops "
    "(skops.io.dump -> .skops), xgboost (save_model -> .json/.ubj) or ONNX (.onnx), or pass the "
    "fitted Python object itself to as_model"
)
MSG_SKOPS_UNTRUSTED = (
    "refusing to load {path!r}: it contains types that skops does not trust by default: {types}. "
    "If you trust this file, name each of them as a trusted type: the config key "
    "predictor.trusted_types, the command-line flag --trusted TYPE (repeatable; clarion analyze, "
    "clarion monitor, clarion serve) or as_model(path, trusted=[...])"
)
MSG_MODEL_FILE_BAD = (
    "cannot load the model file {path!r} as {fmt}: {why}. The file holds {what}"
)
MSG_MODEL_FILE_PICKLE = (
    "refusing to load {path!r}: its name says {fmt}, but the file holds a pickle (Python's object "
    "serialisation, which runs arbitrary code when loaded: a pickle renamed?). "
    "Save the model with skops (skops.io.dump -> .skops), xgboost (save_model -> .json/.ubj) or ONNX "
    "(.onnx), or pass the fitted Python object itself to as_model"
)
MSG_FEATURES_MISMATCH = (
    "model {name!r} does not take the columns clarion sends it: {detail}. The model declares "
    "{declared}; clarion sends the columns {sent}{hint}"
)
MSG_ENDPOINT_TIMEOUT = "timed out: no complete answer within timeout={timeout:g} s (connect, send and the whole answer)"
MSG_UNKNOWN_MODEL = (
    "as_model cannot use {what}: expected a callable, a scikit-learn estimator, an xgboost model, "
    "an onnxruntime session, an Endpoint, a Model, an http(s) URL or a model file "
    "(.json/.ubj xgboost, .onnx, .skops)"
)
MSG_ENDPOINT_HTTP = "endpoint {url} answered HTTP {status} for the batch starting at row {row}: {message}"
MSG_ENDPOINT_RETRIES = (
    "endpoint {url} failed for the batch starting at row {row} after {attempts} attempts; last error: {message}"
)
MSG_ENDPOINT_COUNT = (
    "endpoint {url} returned {got} predictions for the batch starting at row {row}, which has {n} rows"
)
MSG_ENDPOINT_PARSE = "endpoint {url}: cannot parse the response for the batch starting at row {row}: {message}"
MSG_JSON_INF = (
    "X row {row}, column {col} is {value}: JSON cannot carry infinities (NaN is sent as null); "
    "use content_type='text/csv' or replace them"
)
MSG_ROW_TOO_LARGE = "row {row} alone takes {size} bytes, more than max_payload_bytes={limit}"


# --------------------------------------------------------------------------------------------
# array helpers


def _is_device_array(a: Any) -> bool:
    return type(a) is not np.ndarray and is_device_array(a)


def _is_dataframe(X: Any) -> bool:
    mod = type(X).__module__
    return mod.startswith("pandas") and hasattr(X, "columns") and hasattr(X, "iloc")


def _n_rows(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    return len(X)


def _slice_rows(X: Any, start: int, stop: int) -> Any:
    if _is_dataframe(X):
        return X.iloc[start:stop]
    return X[start:stop]


def _row_bytes(X: Any) -> int:
    """Approximate bytes per row of X (for the memory budget)."""
    if type(X) is np.ndarray and X.ndim == 2:
        return max(1, X.shape[1] * X.itemsize)
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) == 0:
        return 8
    width = math.prod(shape[1:]) if len(shape) > 1 else 1
    dtype = getattr(X, "dtype", None)  # DataFrames have dtypes, not dtype: 8 bytes a cell
    itemsize = getattr(dtype, "itemsize", 8) or 8
    return max(1, int(width) * int(itemsize))


def _cupy():
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError("this model works on cupy arrays; install clarion[gpu] (cupy)") from exc
    return cupy


# --------------------------------------------------------------------------------------------
# the Model


class Model:
    """A model that turns rows into a float64 ``(n, n_outputs)`` array of predictions.

    Build one with :func:`as_model` (which picks the right adapter) or directly from a callable.

    Parameters
    ----------
    fn : callable
        ``fn(X) -> array`` returning one prediction (scalar or vector) per row of ``X``.
    accepts : {"numpy", "pandas", "cupy"}, default "numpy"
        What ``fn`` wants: a numpy array, a pandas DataFrame (built with ``feature_names`` as
        columns when the caller passes an array) or a cupy array on the GPU (host input is copied
        to the device and the result copied back; device input stays on the device and the
        result is a cupy array).
    n_outputs : int, optional
        Outputs per row, if known before the first call (otherwise learned from it).
    output_names : list of str, optional
        Names of the outputs (Clarify's ``label_headers``); default ``label0``, ``label1``, ...
    feature_names : list of str, optional
        Column names for ``accepts="pandas"`` models called with arrays.
    name : str, optional
        Shown in error messages.
    memory_budget : int, default ``DEFAULT_MEMORY_BUDGET`` (1 GiB)
        Largest input, in bytes, passed to ``fn`` at once; larger inputs are split into row chunks.
    batch_rows : int, optional
        Also cap the rows per call of ``fn``.
    label_values : array-like, optional
        For label outputs with non-numeric classes: the class values, whose index is returned.

    Notes
    -----
    ``predict`` adds only shape checks and a dtype conversion to the model call, so calling a
    ``Model`` costs the same as calling the model (the benchmark ``benchmarks/bench_models.py``
    measures it). :meth:`predict_chunks` overlaps producing the next input chunk (in a
    background thread) with the model call on the current one.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        accepts: Accepts = "numpy",
        n_outputs: int | None = None,
        output_names: Sequence[str] | None = None,
        feature_names: Sequence[str] | None = None,
        name: str | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        batch_rows: int | None = None,
        label_values: Sequence[Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if accepts not in ("numpy", "pandas", "cupy"):
            raise ValueError(f"accepts must be 'numpy', 'pandas' or 'cupy', got {accepts!r}")
        if int(memory_budget) <= 0:
            raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
        if batch_rows is not None and int(batch_rows) <= 0:
            raise ValueError(f"batch_rows must be positive, got {batch_rows!r}")
        if n_outputs is not None and int(n_outputs) <= 0:
            raise ValueError(f"n_outputs must be positive, got {n_outputs!r}")
        self._fn = fn
        self.accepts: Accepts = accepts
        self._n_outputs = None if n_outputs is None else int(n_outputs)
        self._output_names = None if output_names is None else [str(s) for s in output_names]
        if self._output_names is not None and self._n_outputs is None:
            self._n_outputs = len(self._output_names)
        if self._output_names is not None and len(self._output_names) != self._n_outputs:
            raise ValueError(
                f"output_names has {len(self._output_names)} names but the model has {self._n_outputs} outputs"
            )
        self.feature_names = None if feature_names is None else [str(s) for s in feature_names]
        self._called = False  # whether a call has returned outputs (fixing n_outputs)
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.memory_budget = int(memory_budget)
        self.batch_rows = None if batch_rows is None else int(batch_rows)
        self.label_values = None if label_values is None else np.asarray(label_values, dtype=object)
        #: the feature names the model was fitted on (scikit-learn ``feature_names_in_``, xgboost
        #: ``feature_names``, ONNX input names), when it declares them
        self.declared_feature_names: list[str] | None = None
        #: the number of features the model takes (``n_features_in_``, xgboost ``num_features``,
        #: the ONNX input's width), when it declares it
        self.declared_n_features: int | None = None

    # -- metadata ------------------------------------------------------------------------------

    @property
    def n_outputs(self) -> int | None:
        """Outputs per row (``D``); ``None`` until known (for opaque callables: after a call)."""
        return self._n_outputs

    @property
    def output_names(self) -> list[str] | None:
        """Names of the outputs (``label_headers``, class names, or ``label0``, ``label1``, ...)."""
        if self._output_names is None and self._n_outputs is not None:
            return [f"label{i}" for i in range(self._n_outputs)]
        return self._output_names

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, accepts={self.accepts!r}, n_outputs={self._n_outputs})"

    def _declare_features(self, names: Sequence[Any] | None, n: int | None) -> Model:
        if names is not None:
            names = [str(c) for c in names]
            if not names:
                names = None
        self.declared_feature_names = names
        if n is not None and int(n) <= 0:
            n = None
        self.declared_n_features = len(names) if names is not None else (None if n is None else int(n))
        return self

    def check_features(self, columns: Sequence[Any], *, hint: str = "") -> None:
        """Check, before any call, that ``columns`` (the feature columns that will be sent, in
        order) are the features the model declares (names, order and count).

        Parameters
        ----------
        columns : sequence of str
            The feature columns, in the order they are sent.
        hint : str, optional
            Appended to the message (e.g. which config key removes a column).

        Raises
        ------
        ValueError
            Naming the extra and the missing columns (``MSG_FEATURES_MISMATCH``). Models that
            declare nothing (callables, endpoints) pass.
        """
        cols = [str(c) for c in columns]
        names, n = self.declared_feature_names, self.declared_n_features
        detail = None
        if names is not None:
            extra = [c for c in cols if c not in names]
            missing = [c for c in names if c not in cols]
            if extra or missing:
                parts = []
                if extra:
                    parts.append(f"extra column(s) {extra}, which the model was not fitted on")
                if missing:
                    parts.append(f"missing column(s) {missing}, which the model needs")
                detail = "; ".join(parts)
            elif cols != names:
                detail = "the same columns in another order (the model reads them by position)"
            declared = f"{len(names)} features {names}"
        elif n is not None:
            if len(cols) != n:
                detail = (f"{len(cols) - n} extra column(s)" if len(cols) > n
                          else f"{n - len(cols)} missing column(s)")
            declared = f"{n} features (no names)"
        if detail is not None:
            raise ValueError(MSG_FEATURES_MISMATCH.format(name=self.name, detail=detail, declared=declared,
                                                          sent=cols, hint=hint))

    # -- prediction ----------------------------------------------------------------------------

    def __call__(self, X: Any) -> Any:
        return self.predict(X)

    def predict(self, X: Any) -> Any:
        """Predict every row of ``X``.

        Parameters
        ----------
        X : numpy array, pandas DataFrame or cupy array, shape (n, n_features)

        Returns
        -------
        ndarray of float64, shape (n, n_outputs)
            A cupy array when ``X`` is one and the model is cupy-native; numpy otherwise.

        Raises
        ------
        ValueError
            The model returned a different number of rows than it was given, an array of the wrong
            rank, or a different number of outputs than on earlier calls.
        TypeError
            The model returned non-numeric values.
        """
        n = _n_rows(X)
        step = self._chunk_rows(X)
        if n <= step:
            return self._predict_one(X, n, 0)
        parts = [self._predict_one(_slice_rows(X, s, min(s + step, n)), min(s + step, n) - s, s)
                 for s in range(0, n, step)]
        return self._concat(parts)

    def predict_chunks(self, chunks: Iterable[Any], *, prefetch: int = 1) -> Iterator[Any]:
        """Predict a stream of input chunks, producing the next chunk while the model runs.

        The iterable is consumed in a background thread, up to ``prefetch`` chunks ahead, so the
        work that makes a chunk (e.g. the SHAP masking kernel, which releases the GIL) overlaps
        the model call on the previous one. Results come out in input order.

        Parameters
        ----------
        chunks : iterable of arrays / DataFrames
        prefetch : int, default 1
            Chunks produced ahead of the model; 0 disables the background thread.

        Yields
        ------
        ndarray of float64, shape (rows of the chunk, n_outputs)
        """
        if prefetch <= 0:
            for chunk in chunks:
                yield self.predict(chunk)
            return
        q: queue.Queue = queue.Queue(maxsize=int(prefetch))
        stop = threading.Event()
        done = object()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for chunk in chunks:
                    if not put((chunk, None)):
                        return
            except BaseException as exc:  # handed to the consumer, re-raised there
                put((None, exc))
                return
            put(done)

        thread = threading.Thread(target=produce, name="clarion-chunk-producer", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    break
                chunk, exc = item
                if exc is not None:
                    raise exc
                yield self.predict(chunk)
        finally:
            stop.set()
            thread.join()

    # -- internals -----------------------------------------------------------------------------

    def _chunk_rows(self, X: Any) -> int:
        per_row = _row_bytes(X) + 8 * (self._n_outputs or 1)
        rows = max(1, self.memory_budget // per_row)
        if self.batch_rows is not None:
            rows = min(rows, self.batch_rows)
        return rows

    def _prepare(self, X: Any) -> tuple[Any, bool]:
        """Convert X to what fn accepts; the flag says whether X was on the device."""
        accepts = self.accepts
        if accepts == "numpy":
            if type(X) is np.ndarray:
                return X, False
            if _is_dataframe(X):
                return X.to_numpy(), False
            if _is_device_array(X):
                return _cupy().asnumpy(X), True
            return np.asarray(X), False
        if accepts == "pandas":
            if _is_dataframe(X):
                return X, False
            on_device = _is_device_array(X)
            arr = _cupy().asnumpy(X) if on_device else np.asarray(X)
            import pandas as pd

            if arr.ndim != 2:
                raise ValueError(f"X must be 2-D (rows x features), got shape {arr.shape}")
            cols = self.feature_names
            if cols is not None and len(cols) != arr.shape[1]:
                raise ValueError(
                    f"X has {arr.shape[1]} columns but model {self.name!r} expects {len(cols)} features {cols}"
                )
            frame = pd.DataFrame(arr, columns=cols)
            if arr.dtype == object:
                frame = frame.infer_objects()
            return frame, on_device
        # cupy
        if _is_device_array(X):
            return X, True
        cp = _cupy()
        if _is_dataframe(X):
            X = X.to_numpy()
        return cp.asarray(X), False

    def _finish(self, y: Any, n: int, on_device: bool) -> Any:
        if type(y) is np.ndarray and not on_device and y.dtype.kind in "fiub":  # the common case
            if y.ndim == 1:
                y = y.reshape(-1, 1)
            self._check_shape(y, n)
            return y.astype(np.float64, copy=False)
        if _is_device_array(y):
            cp = _cupy()
            if not on_device:
                y = cp.asnumpy(y)
            else:
                if y.ndim == 1:
                    y = y.reshape(-1, 1)
                self._check_shape(y, n)
                return y.astype(cp.float64, copy=False)
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            y = self._to_float(y)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        self._check_shape(y, n)
        y = y.astype(np.float64, copy=False)
        if on_device:
            return _cupy().asarray(y)
        return y

    def _to_float(self, y: np.ndarray) -> np.ndarray:
        if self.label_values is not None and y.dtype.kind in "OUS":
            index = {v: i for i, v in enumerate(self.label_values.tolist())}
            flat = y.ravel().tolist()
            try:
                codes = np.fromiter((index[v] for v in flat), dtype=np.float64, count=len(flat))
            except KeyError as exc:
                raise ValueError(
                    f"model {self.name!r} predicted label {exc.args[0]!r}, which is not one of "
                    f"{self.label_values.tolist()}"
                ) from None
            return codes.reshape(y.shape)
        try:
            return y.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(MSG_NOT_NUMERIC.format(name=self.name, dtype=y.dtype)) from None

    def _check_shape(self, y: Any, n: int) -> None:
        if y.ndim != 2:
            raise ValueError(MSG_BAD_NDIM.format(name=self.name, shape=tuple(y.shape)))
        if y.shape[0] != n:
            raise ValueError(MSG_WRONG_ROWS.format(name=self.name, got=y.shape[0], n=n))
        d = int(y.shape[1])
        if self._n_outputs is None:
            if n == 0 and d == 0:
                return
            self._n_outputs = d
        elif d != self._n_outputs and not (n == 0 and d == 0):
            if not self._called and self._output_names is not None:
                # the count came from the names given (label_headers), not from an earlier call
                raise ValueError(MSG_NAMES_COUNT.format(name=self.name, got=d, n=len(self._output_names),
                                                        names=self._output_names))
            raise ValueError(MSG_OUTPUTS_CHANGED.format(name=self.name, got=d, expected=self._n_outputs))
        self._called = True

    def _predict_one(self, X: Any, n: int, offset: int) -> Any:
        if n == 0 and self._n_outputs is not None:
            if _is_device_array(X) and self.accepts == "cupy":
                return _cupy().empty((0, self._n_outputs), dtype=np.float64)
            return np.empty((0, self._n_outputs), dtype=np.float64)
        xin, on_device = self._prepare(X)
        try:
            y = self._fn(xin)
        except Exception as exc:
            if n == 0:
                raise ValueError(
                    f"model {self.name!r} cannot predict 0 rows and its number of outputs is not known yet"
                ) from exc
            raise
        return self._finish(y, n, on_device)

    def _concat(self, parts: list[Any]) -> Any:
        if parts and _is_device_array(parts[0]):
            return _cupy().concatenate(parts, axis=0)
        return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------------------------
# as_model


_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".dill", ".cloudpickle")


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
        return _from_path(text, output=output, label_headers=label_headers, accepts=accepts,
                          feature_names=feature_names, trusted=trusted, providers=providers, **common)
    mod = type(obj).__module__ or ""
    if mod.startswith("xgboost"):
        return _from_xgboost(obj, output=output, label_headers=label_headers, accepts=accepts,
                             feature_names=feature_names, **common)
    if mod.startswith("onnxruntime"):
        return _from_onnx_session(obj, output=output, label_headers=label_headers,
                                  feature_names=feature_names, **common)
    if hasattr(obj, "fit") and (hasattr(obj, "predict") or hasattr(obj, "predict_proba")):
        return _from_sklearn(obj, output=output, label_headers=label_headers, accepts=accepts,
                             feature_names=feature_names, **common)
    if callable(obj):
        if output is not None:
            raise ValueError("output= applies to estimators, not to plain callables")
        return Model(obj, accepts=accepts or "numpy", output_names=label_headers,
                     feature_names=feature_names, **common)
    raise TypeError(MSG_UNKNOWN_MODEL.format(what=f"an object of type {type(obj).__name__}"))


def _from_path(path: str, *, output, label_headers, accepts, feature_names, trusted, providers,
               **common) -> Model:
    lower = path.lower()
    if lower.endswith(_PICKLE_SUFFIXES):
        raise ValueError(MSG_PICKLE.format(path=path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    if lower.endswith((".json", ".ubj")):
        try:
            import xgboost as xgb
        except ImportError as exc:
            raise ImportError(f"loading {path!r} needs xgboost (pip install xgboost)") from exc
        _check_in_child(path, "xgboost", getattr(xgb, "__version__", ""))
        booster = xgb.Booster(model_file=path)
        obj: Any = booster
        try:  # saved from XGBClassifier/XGBRegressor: keep the estimator's semantics
            kind = json.loads(booster.attr("scikit_learn") or "{}").get("_estimator_type")
        except (ValueError, AttributeError):
            kind = None
        if kind in ("classifier", "regressor"):
            obj = xgb.XGBClassifier() if kind == "classifier" else xgb.XGBRegressor()
            obj.load_model(path)
        model = _from_xgboost(obj, output=output, label_headers=label_headers, accepts=accepts,
                              feature_names=feature_names, **common)
        model.name = os.path.basename(path)
        return model
    if lower.endswith(".onnx"):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError(f"loading {path!r} needs onnxruntime (pip install onnxruntime)") from exc
        _check_in_child(path, "onnx", getattr(ort, "__version__", ""))
        session = ort.InferenceSession(path, providers=list(providers or _onnx_providers(ort)))
        model = _from_onnx_session(session, output=output, label_headers=label_headers,
                                   feature_names=feature_names, **common)
        model.name = os.path.basename(path)
        return model
    if lower.endswith(".skops"):
        try:
            import skops.io as sio
        except ImportError as exc:
            raise ImportError(f"loading {path!r} needs skops (pip install skops)") from exc
        allowed = list(trusted or [])
        fmt = "a skops file (a ZIP archive)"
        what = _sniff(path)
        if what == _PICKLE_CONTENT:
            raise ModelFileError(MSG_MODEL_FILE_PICKLE.format(path=path, fmt=fmt), path=path)
        if what != "a ZIP archive":
            raise ModelFileError(MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why="it is not a ZIP archive",
                                                           what=what), path=path)
        try:
            untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in allowed]
        except Exception as exc:  # noqa: BLE001 - a damaged archive, or a ZIP without skops' schema
            raise ModelFileError(MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why=_why(exc), what=what),
                                 path=path) from None
        if untrusted:
            raise ValueError(MSG_SKOPS_UNTRUSTED.format(path=path, types=untrusted))
        try:
            est = sio.load(path, trusted=allowed or None)
        except Exception as exc:  # noqa: BLE001 - whatever the damaged file makes skops raise
            raise ModelFileError(MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why=_why(exc), what=what),
                                 path=path) from None
        model = as_model(est, output=output, label_headers=label_headers, accepts=accepts,
                         feature_names=feature_names, **common)
        model.name = os.path.basename(path)
        return model
    raise ValueError(MSG_UNKNOWN_MODEL.format(what=f"the file {path!r} (unknown suffix)"))


class ModelFileError(ValueError):
    """A model file that cannot be loaded: damaged, of another format than its name says, or one
    whose loader crashed, ran out of memory or time in the child process that checks it first.

    Attributes
    ----------
    path : str
        The model file.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


_PICKLE_CONTENT = "a pickle (Python object serialisation)"


def _sniff(path: str) -> str:
    """What a file really holds, from its first bytes (for error messages)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"nothing readable ({exc.strerror or exc})"
    if not head:
        return "nothing (it is empty)"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a ZIP archive"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return _PICKLE_CONTENT
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head[:1] == b"{" and head[1:2] in (b"L", b"l", b"i", b"U", b"I", b"$", b"#", b"}"):
        return "UBJSON (xgboost's binary model format)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "JSON text"
    if head[:1] == b"\x08":
        return "binary protobuf data (as in an ONNX model)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of no format clarion recognises"
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        return "binary data of no format clarion recognises"
    return "text that is not JSON"


def _why(exc: BaseException) -> str:
    """The first meaningful line of a loader's error (xgboost prefixes time and source file)."""
    text = str(exc).strip() or type(exc).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("Stack trace")]
    first = lines[0] if lines else text
    first = re.sub(r"^\[\d\d:\d\d:\d\d\]\s*", "", first)
    first = re.sub(r"^\S+\.(?:cc|h|cpp|hpp|py):\d+:\s*", "", first)
    first = "".join(c if c.isprintable() else repr(c)[1:-1] for c in first)
    return first[:500]


# Loading native model files (xgboost JSON/UBJSON, ONNX) runs C++ parsers that can crash the
# process (SIGSEGV) or try to allocate absurd amounts of memory on a damaged file. A model path can
# come from a config file, so each such file is first loaded in a child process with a memory cap
# and a time limit; only a file that loads there is loaded in-process. Each file is checked once
# per process (keyed by path, size and modification time).
_CHILD_SCRIPT = r"""
import json, sys
kind, path, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    import resource
except ImportError:  # not on this platform: the time limit still holds
    resource = None
for name, value in (("RLIMIT_AS", cap), ("RLIMIT_CORE", 0)):
    try:
        resource.setrlimit(getattr(resource, name), (value, value))
    except (AttributeError, ValueError, OSError):
        pass
def answer(**kw):
    sys.stdout.write(json.dumps(kw))
    sys.stdout.flush()
try:
    import numpy
    if kind == "xgboost":
        import xgboost
        booster = xgboost.Booster(model_file=path)
        n = booster.num_features()
        booster.feature_names
        booster.attr("scikit_learn")
        if 0 < n <= 1_000_000:  # one prediction: a model that loads but crashes when used is caught too
            try:
                booster.inplace_predict(numpy.zeros((1, n), dtype=numpy.float32))
            except Exception:  # a Python error here is raised, cleanly, by the real call too
                pass
    else:
        import onnxruntime
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        kinds = {"tensor(float)": numpy.float32, "tensor(double)": numpy.float64, "tensor(int64)": numpy.int64,
                 "tensor(int32)": numpy.int32}
        feeds = {}
        for i in session.get_inputs():
            dims = [d if isinstance(d, int) and 0 < d <= 1_000_000 else 1 for d in (i.shape or [])]
            if i.type not in kinds or numpy.prod(dims) > 10_000_000:
                feeds = None
                break
            feeds[i.name] = numpy.zeros(dims, dtype=kinds[i.type])
        session.get_outputs()
        if feeds:
            try:
                session.run(None, feeds)
            except Exception:
                pass
except MemoryError:
    answer(ok=False, error="loading it needs more memory than the check allows", memory=True)
except BaseException as exc:
    text = str(exc) or type(exc).__name__
    answer(ok=False, error=text[:4000], memory="bad_alloc" in text or "bad alloc" in text)
else:
    answer(ok=True)
"""

#: seconds the child that checks a model file may take (plus one per MB of the file)
MODEL_CHECK_TIMEOUT = 120.0
#: address space the child that checks a model file may use (plus 64 bytes per byte of the file)
MODEL_CHECK_MEMORY = 8 << 30

_checked_files: dict[tuple[str, int, int], None] = {}
_checked_lock = threading.Lock()


def _check_cache_entry(path: str, kind: str, version: str) -> str | None:
    """The on-disk record that a file with these exact bytes loaded with this library version
    (``$CLARION_CACHE_DIR``, else ``$XDG_CACHE_HOME/clarion``, else ``~/.cache/clarion``)."""
    import hashlib

    root = os.environ.get("CLARION_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "clarion")
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    safe = re.sub(r"[^0-9A-Za-z.+-]", "_", version)
    return os.path.join(root, "model-checks", f"{kind}-{safe}-{h.hexdigest()}")


def _check_in_child(path: str, kind: str, version: str = "") -> None:
    """Load ``path`` in a child process first; raise :class:`ModelFileError` when it fails there.

    A file that loaded is remembered in this process (path, size, modification time) and on disk
    (its SHA-256 and the loader's version), so the check costs one child process per new file."""
    st = os.stat(path)
    key = (os.path.realpath(path), int(st.st_mtime_ns), int(st.st_size))
    with _checked_lock:
        if key in _checked_files:
            return
    entry = _check_cache_entry(path, kind, version)
    if entry is not None and os.path.exists(entry):
        with _checked_lock:
            _checked_files[key] = None
        return
    fmt = "an xgboost model (JSON / UBJSON)" if kind == "xgboost" else "an ONNX model"
    cap = MODEL_CHECK_MEMORY + 64 * int(st.st_size)
    timeout = MODEL_CHECK_TIMEOUT + st.st_size / 1e6
    # the child finds the loader where this process found it
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(paths))
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD_SCRIPT, kind, os.path.abspath(path), str(cap)],
                              check=False, capture_output=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        why = f"its loader did not finish within {timeout:.0f} s (checked in a child process)"
        raise ModelFileError(MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why=why, what=_sniff(path)),
                             path=path) from None
    try:
        doc = json.loads(proc.stdout.decode("utf-8", "replace") or "null")
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("ok") is True and proc.returncode == 0:
        with _checked_lock:
            _checked_files[key] = None
        if entry is not None:
            try:
                os.makedirs(os.path.dirname(entry), exist_ok=True)
                with open(entry, "w") as f:
                    f.write(os.path.abspath(path) + "\n")
            except OSError:
                pass  # no cache: the next process checks the file again
        return
    if isinstance(doc, dict) and doc.get("ok") is False:
        if doc.get("memory"):
            why = f"its loader asked for more than {cap / 2**30:.0f} GiB of memory (a damaged or truncated file?)"
        else:
            why = _why(RuntimeError(str(doc.get("error"))))
            if kind == "xgboost" and ("ModuleNotFoundError" in why or "No module named" in why):
                why = f"the checking process cannot import xgboost: {why}"
    elif proc.returncode < 0:
        import signal

        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        why = (f"its loader crashed ({name}) when a child process loaded it, so clarion does not load it "
               "(a damaged or truncated file?)")
    else:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = (f"the child process that loads it first exited with status {proc.returncode}"
               + (f": {err[-1][:300]}" if err else "") + " (a damaged or truncated file?)")
    raise ModelFileError(MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why=why, what=_sniff(path)), path=path)


# -- scikit-learn ------------------------------------------------------------------------------


def _is_classifier(est: Any) -> bool:
    try:
        from sklearn.base import is_classifier

        return bool(is_classifier(est))
    except Exception:
        return hasattr(est, "classes_") and hasattr(est, "predict_proba")


def _from_sklearn(est, *, output, label_headers, accepts, feature_names, **common) -> Model:
    classifier = _is_classifier(est)
    if output is None:
        output = "probability" if classifier and hasattr(est, "predict_proba") else (
            "score" if not classifier else "label")
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
    return Model(fn, accepts=accepts, output_names=names, feature_names=feature_names,
                 name=type(est).__name__, label_values=label_values, **common)._declare_features(
        _attr(est, "feature_names_in_"), _attr(est, "n_features_in_"))


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

        return Model(fn, accepts=accepts or "numpy", output_names=names, feature_names=feature_names,
                     name="xgboost.Booster", **common)._declare_features(*_booster_features(booster))
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
    return Model(fn, accepts=accepts or "numpy", output_names=names, feature_names=feature_names,
                 name=type(obj).__name__, **common)._declare_features(*_booster_features(booster))


# -- ONNX --------------------------------------------------------------------------------------

_ONNX_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(float16)": np.float16, "tensor(string)": object,
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
        return Model(fn, accepts="numpy", output_names=names, feature_names=feature_names,
                     name=f"onnx:{chosen}", **common)._declare_features(None, width)
    # one input per column (skl2onnx with a DataFrame): feed the columns by name
    specs = [(i.name, _ONNX_DTYPES.get(i.type, np.float32)) for i in inputs]

    def fn_frame(frame):
        feeds = {}
        for col, dtype in specs:
            values = frame[col].to_numpy().reshape(-1, 1)
            feeds[col] = values.astype(dtype) if dtype is not object else values.astype(str).astype(object)
        return _onnx_result(session.run([chosen], feeds)[0])

    return Model(fn_frame, accepts="pandas", output_names=names,
                 feature_names=feature_names or [s[0] for s in specs], name=f"onnx:{chosen}",
                 **common)._declare_features([s[0] for s in specs], None)


def _onnx_result(y: Any) -> Any:
    if isinstance(y, list) and y and isinstance(y[0], dict):  # ZipMap: a list of {class: prob}
        keys = list(y[0].keys())
        return np.array([[row[k] for k in keys] for row in y], dtype=np.float64)
    return y


# --------------------------------------------------------------------------------------------
# HTTP endpoints


class EndpointError(RuntimeError, OSError):
    """An endpoint call failed: an HTTP 4xx answer, or retries exhausted on transient faults.

    An ``OSError`` (the failure of an outside system, like a file that cannot be read) as well
    as a ``RuntimeError``, so that callers and the command line report it as one message.

    Attributes
    ----------
    first_row : int
        Row number (0-based, in the input of ``predict``) of the first row of the failed batch.
    status : int or None
        The last HTTP status, or None for connection errors and timeouts.
    server_message : str
        The server's answer (first 1000 characters) or the connection error.
    """

    def __init__(self, message: str, *, first_row: int, status: int | None, server_message: str) -> None:
        super().__init__(message)
        self.first_row = first_row
        self.status = status
        self.server_message = server_message


class EndpointResponseError(EndpointError, ValueError):
    """An endpoint answered 200 with a wrong number of predictions or values that do not parse."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# record_template placeholders, as Clarify reads them: "${name}" (the double quotes are part of the
# placeholder; a bare ${name} is read the same), $features_kvp, $feature_names, $features
_RECORD_PLACEHOLDER = re.compile(r'"\$\{([^}]+)\}"|\$\{([^}]+)\}|\$features_kvp|\$feature_names|\$features')
MSG_RECORD_TEMPLATE = (
    "record_template {template!r}: {why}. It takes $features (the row's values as a list; $feature_names "
    "may come with it), or exactly one $features_kvp (an object of name: value), or a \"${{name}}\" "
    "placeholder per feature (the double quotes are part of the placeholder)"
)


def _check_record_template(rt: str) -> None:
    tokens = [m.group(0) for m in _RECORD_PLACEHOLDER.finditer(rt)]
    per_feature = [t for t in tokens if t.startswith(("${", '"${'))]
    kvp = tokens.count("$features_kvp")
    feats = tokens.count("$features")
    if not tokens:
        why = "it has no placeholder"
    elif kvp and len(tokens) != 1:
        why = "$features_kvp must be its only placeholder"
    elif per_feature and len(per_feature) != len(tokens):
        why = "\"${name}\" placeholders cannot be mixed with $features / $feature_names"
    elif not per_feature and not kvp and feats == 0:
        why = "$feature_names needs $features beside it"
    else:
        return
    raise ValueError(MSG_RECORD_TEMPLATE.format(template=rt, why=why))


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _cell_csv(v: Any) -> str:
    if isinstance(v, float):
        return "" if v != v else float.__repr__(v)
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, np.floating):
        return _cell_csv(float(v))
    if v is None:
        return ""
    s = str(v)
    if any(c in s for c in ',"\n\r'):
        s = '"' + s.replace('"', '""') + '"'
    return s


def _numeric_row_texts(X: Any, rows: list[list[Any]]) -> list[str] | None:
    """``"v1,v2,..."`` for each row of a finite int/float array, via ``repr`` of the whole list
    (C speed; floats in repr are shortest round-trip, the same text ``json`` writes); None when
    X is not such an array."""
    if type(X) is not np.ndarray or X.ndim != 2 or X.dtype.kind not in "fiu" or not rows or not X.shape[1]:
        return None
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        return None
    text = repr(rows)[2:-2].replace(", ", ",")
    return text.split("],[")


def _json_value(v: Any) -> Any:
    """A JSON-ready value: NaN becomes null (missing); infinities raise OverflowError."""
    if isinstance(v, float):
        if v != v:
            return None
        if math.isinf(v):
            raise OverflowError(v)
        return v
    if isinstance(v, np.generic):
        return _json_value(v.item())
    return v


def _expire(conn: http.client.HTTPConnection, expired: threading.Event) -> None:
    """The request on ``conn`` ran past its deadline: shut its socket, which ends the blocked read."""
    expired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _close_connections(conns: set, lock: threading.Lock) -> None:
    with lock:
        for conn in list(conns):
            conn.close()
        conns.clear()


class _HTTPConnection(http.client.HTTPConnection):
    # http.client sends the headers and the body in two writes; without TCP_NODELAY, Nagle's
    # algorithm and the server's delayed ACK add ~40 ms to every request.
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Endpoint(Model):
    """A model behind an HTTP endpoint that speaks the SageMaker invocation protocol.

    Rows are sent as ``POST`` requests in batches of at most ``max_batch_rows`` rows and
    ``max_payload_bytes`` bytes, ``concurrency`` batches at a time, and the answers are put back
    in input order. Connection errors, timeouts, HTTP 429 and 5xx are retried ``retries`` times
    with exponential backoff (``backoff * 2**attempt`` seconds, or the server's ``Retry-After``
    when larger). Anything else raises; the result is never shortened or reordered.

    Parameters
    ----------
    url : str
        ``http://host:port/path``; an empty path means ``/invocations``.
    content_type : {"text/csv", "application/jsonlines", "application/json"}, default "text/csv"
        Request format. CSV: one row per line, no header. JSON Lines: one
        ``content_template`` per row with ``$features`` replaced by the row as a JSON list
        (default ``{"features":$features}``). JSON: ``content_template`` with ``$records`` (the
        batch as a JSON list; default) or ``$record`` (one row per request), each record built
        from ``record_template`` (``$features`` list, default; ``$features_kvp`` object;
        ``$feature_names``; or ``${name}`` per feature).
    accept_type : str, optional
        Response format (default: ``content_type``). CSV: one line per row; ``probability`` /
        ``label`` are column indices (absent: the whole line is the scores; a cell holding a JSON
        list is expanded). JSON Lines: one JSON value per row; JSON: one document;
        ``probability`` / ``label`` are JMESPath expressions (for JSON they must yield a list with
        one item per row). Absent, the line (JSON Lines) or document (JSON) itself must be the
        number(s).
    label, probability : int or str, optional
        Where the predicted label / the scores are (Clarify's ``predictor.label`` /
        ``predictor.probability``).
    output : {"probability", "label"}, optional
        Which one to return when both are given (default: probability when set).
    label_headers : sequence of str, optional
        Names of the score columns; also maps non-numeric predicted labels to their index.
    content_template, record_template : str, optional
        See ``content_type``.
    feature_names : sequence of str, optional
        For ``$features_kvp``, ``$feature_names`` and ``${name}`` (default: DataFrame columns).
    max_batch_rows : int, default 1000
    max_payload_bytes : int, default 6_000_000
    concurrency : int, default 4
        Requests in flight at once.
    timeout : float, default 60
        Seconds one request may take in all (connect, send, and the whole answer, however slowly
        it comes); a request past it is a transient fault (retried). A batch therefore takes at
        most about ``(retries + 1) * timeout`` seconds plus the backoff.
    retries : int, default 3
        Extra attempts after the first on transient faults (connection errors, timeouts, 429, 5xx).
    backoff : float, default 0.1
        Seconds before the first retry; doubles with each one.
    headers : dict, optional
        Extra request headers (e.g. ``X-Amzn-SageMaker-Custom-Attributes``).

    Raises
    ------
    EndpointError
        From ``predict``: HTTP 4xx (other than 429), or retries exhausted; carries the failed
        batch's first row, the status and the server's message.
    EndpointResponseError
        From ``predict``: a 200 answer with the wrong number of predictions or unparseable values.
    """

    def __init__(
        self,
        url: str,
        *,
        content_type: str = "text/csv",
        accept_type: str | None = None,
        label: int | str | None = None,
        probability: int | str | None = None,
        output: str | None = None,
        label_headers: Sequence[Any] | None = None,
        content_template: str | None = None,
        record_template: str | None = None,
        feature_names: Sequence[str] | None = None,
        max_batch_rows: int = 1000,
        max_payload_bytes: int = 6_000_000,
        concurrency: int = 4,
        timeout: float = 60,
        retries: int = 3,
        backoff: float = 0.1,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host[:port]/path, got {url!r}")
        content_type = content_type.lower()
        accept_type = (accept_type or content_type).lower()
        if content_type not in CONTENT_TYPES:
            raise ValueError(f"content_type must be one of {CONTENT_TYPES}, got {content_type!r}")
        if accept_type not in CONTENT_TYPES:
            raise ValueError(f"accept_type must be one of {CONTENT_TYPES}, got {accept_type!r}")
        for arg, value in (("max_batch_rows", max_batch_rows), ("max_payload_bytes", max_payload_bytes),
                           ("concurrency", concurrency)):
            if int(value) <= 0:
                raise ValueError(f"{arg} must be positive, got {value!r}")
        if float(timeout) <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if int(retries) < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        for arg, value in (("label", label), ("probability", probability)):
            if value is None:
                continue
            if accept_type == "text/csv" and not isinstance(value, (int, np.integer)):
                raise ValueError(f"{arg} must be a column index for accept_type text/csv, got {value!r}")
            if accept_type != "text/csv" and not isinstance(value, str):
                raise ValueError(f"{arg} must be a JMESPath string for accept_type {accept_type}, got {value!r}")
        if output is None:
            output = "label" if (label is not None and probability is None) else "probability"
        if output not in ("label", "probability"):
            raise ValueError(f"output must be 'label' or 'probability' for an Endpoint, got {output!r}")
        if output == "label" and label is None:
            raise ValueError("output='label' needs label= (where the predicted label is in the response)")
        if content_type == "application/jsonlines":
            content_template = content_template or '{"features":$features}'
            if "$features" not in content_template:
                raise ValueError(f"content_template for JSON Lines must contain $features, got {content_template!r}")
        elif content_type == "application/json":
            content_template = content_template or "$records"
            if "$records" not in content_template and "$record" not in content_template:
                raise ValueError(
                    f"content_template for JSON must contain $record or $records, got {content_template!r}")
            record_template = record_template or "$features"
            _check_record_template(record_template)
        elif record_template is not None:
            raise ValueError(f"record_template applies to content_type application/json only, not {content_type}")
        self.url = url
        self.content_type = content_type
        self.accept_type = accept_type
        self.label = label
        self.probability = probability
        self.output = output
        self.content_template = content_template
        self.record_template = record_template
        self.max_batch_rows = int(max_batch_rows)
        self.max_payload_bytes = int(max_payload_bytes)
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.extra_headers = dict(headers or {})
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/invocations") + (f"?{parts.query}" if parts.query else "")
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # every worker thread's connection, so that close() (or garbage collection) closes them all
        self._conns: set[http.client.HTTPConnection] = set()
        self._conns_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_connections, self._conns, self._conns_lock)
        self._one_per_request = content_type == "application/json" and "$records" not in content_template
        self._jmes = None
        field = probability if output == "probability" else label
        self._field = field
        if accept_type != "text/csv" and field is not None:
            import jmespath

            self._jmes = jmespath.compile(field)
        headers_out = label_headers
        super().__init__(self._call_endpoint, accepts="numpy", feature_names=feature_names,
                         output_names=None if output == "label" else headers_out, name=url)
        if output == "label":
            self._output_names = ["label"]
            self._n_outputs = 1
        self._label_headers = None if label_headers is None else list(label_headers)

    def with_options(self, *, output: str | None = None, label_headers: Sequence[Any] | None = None) -> Endpoint:
        """A copy of this endpoint returning ``output`` and/or using other ``label_headers``."""
        return Endpoint(
            self.url, content_type=self.content_type, accept_type=self.accept_type, label=self.label,
            probability=self.probability, output=output or self.output,
            label_headers=label_headers if label_headers is not None else self._label_headers,
            content_template=self.content_template, record_template=self.record_template,
            feature_names=self.feature_names, max_batch_rows=self.max_batch_rows,
            max_payload_bytes=self.max_payload_bytes, concurrency=self.concurrency, timeout=self.timeout,
            retries=self.retries, backoff=self.backoff, headers=self.extra_headers,
        )

    def close(self) -> None:
        """Shut the worker threads down and close this thread's connection."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _close_connections(self._conns, self._conns_lock)

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- Model hooks ---------------------------------------------------------------------------

    def _prepare(self, X: Any) -> tuple[Any, bool]:
        if _is_dataframe(X) or type(X) is np.ndarray:
            return X, False
        if _is_device_array(X):
            return _cupy().asnumpy(X), True
        return np.asarray(X), False

    def _chunk_rows(self, X: Any) -> int:
        return max(super()._chunk_rows(X), 1)

    def _predict_one(self, X: Any, n: int, offset: int) -> Any:
        if n == 0:
            if self._n_outputs is None:
                raise ValueError(f"cannot predict 0 rows with endpoint {self.url}: its number of outputs is unknown")
            return np.empty((0, self._n_outputs), dtype=np.float64)
        xin, on_device = self._prepare(X)
        return self._finish(self._call_endpoint(xin, offset), n, on_device)

    # -- encoding ------------------------------------------------------------------------------

    def _rows_and_names(self, X: Any) -> tuple[list[list[Any]], list[str] | None]:
        names = self.feature_names
        if _is_dataframe(X):
            if names is None:
                names = [str(c) for c in X.columns]
            rows = X.to_numpy(dtype=object).tolist()
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-D (rows x features), got shape {arr.shape}")
            rows = arr.tolist()
        if names is not None and rows and len(rows[0]) != len(names):
            raise ValueError(f"X has {len(rows[0])} columns but feature_names has {len(names)}")
        return rows, names

    def _encode_rows(self, X: Any) -> tuple[list[bytes], bytes, bytes, bytes]:
        """Each row's bytes, plus the batch's prefix, separator and suffix."""
        rows, names = self._rows_and_names(X)
        fast = _numeric_row_texts(X, rows)  # "v1,v2,..." per row, for finite numeric arrays
        if self.content_type == "text/csv":
            if fast is not None:
                enc = [t.encode() for t in fast]
            else:
                enc = [",".join(map(_cell_csv, r)).encode() for r in rows]
            return enc, b"", b"\n", b"\n"
        dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
        if fast is not None and self.content_type == "application/jsonlines":
            pre, _, post = self.content_template.partition("$features")
            return [f"{pre}[{t}]{post}".encode() for t in fast], b"", b"\n", b"\n"
        if fast is not None and self.record_template == "$features":
            enc = [f"[{t}]".encode() for t in fast]
            clean = None
        else:
            enc = None
            clean = self._clean_rows(X, rows)
        if self.content_type == "application/jsonlines":
            pre, _, post = self.content_template.partition("$features")
            enc = [(pre + dumps(r) + post).encode() for r in clean]
            return enc, b"", b"\n", b"\n"
        # application/json
        rt = self.record_template
        if ("${" in rt or "$features_kvp" in rt or "$feature_names" in rt) and names is None:
            raise ValueError(f"record_template {rt!r} needs feature_names (or a DataFrame)")
        index = {n: i for i, n in enumerate(names or [])}

        def record(r: list[Any]) -> str:
            def sub(m: re.Match) -> str:
                token = m.group(0)
                feature = m.group(1) if m.group(1) is not None else m.group(2)
                if feature is not None:
                    if feature not in index:
                        raise ValueError(f"record_template names feature {feature!r}, not in {names}"
                                         + _did_you_mean(feature, names or []))
                    return dumps(r[index[feature]])
                if token == "$features_kvp":
                    return dumps(dict(zip(names, r)))
                if token == "$feature_names":
                    return dumps(names)
                return dumps(r)

            return _RECORD_PLACEHOLDER.sub(sub, rt)

        if enc is None:
            enc = [record(r).encode() for r in clean]
        key = "$records" if "$records" in self.content_template else "$record"
        pre, _, post = self.content_template.partition(key)
        if key == "$records":
            return enc, (pre + "[").encode(), b",", ("]" + post).encode()
        return enc, pre.encode(), b"", post.encode()

    @staticmethod
    def _clean_rows(X: Any, rows: list[list[Any]]) -> list[list[Any]]:
        if type(X) is np.ndarray and X.dtype.kind in "iub":
            return rows
        if type(X) is np.ndarray and X.dtype.kind == "f":
            if np.isinf(X).any():
                i, j = np.argwhere(np.isinf(X))[0]
                raise ValueError(MSG_JSON_INF.format(row=int(i), col=int(j), value=X[i, j]))
            if not np.isnan(X).any():
                return rows
        out = []
        for i, r in enumerate(rows):
            try:
                out.append([_json_value(v) for v in r])
            except OverflowError:
                j = next(k for k, v in enumerate(r) if isinstance(v, (float, np.floating)) and math.isinf(v))
                raise ValueError(MSG_JSON_INF.format(row=i, col=j, value=r[j])) from None
        return out

    def _batches(self, enc: list[bytes], pre: bytes, sep: bytes, post: bytes) -> list[tuple[int, int]]:
        limit = self.max_payload_bytes
        fixed = len(pre) + len(post)
        step = 1 if self._one_per_request else self.max_batch_rows
        out: list[tuple[int, int]] = []
        start, size = 0, fixed
        for i, row in enumerate(enc):
            add = len(row) + (len(sep) if i > start else 0)
            if fixed + len(row) > limit:
                raise ValueError(MSG_ROW_TOO_LARGE.format(row=i, size=fixed + len(row), limit=limit))
            if i > start and (i - start >= step or size + add > limit):
                out.append((start, i))
                start, size = i, fixed
                add = len(row)
            size += add
        if start < len(enc):
            out.append((start, len(enc)))
        return out

    # -- transport -----------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = _HTTPSConnection if self._scheme == "https" else _HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.add(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._conns_lock:
                self._conns.discard(conn)

    def _post(self, body: bytes, first_row: int) -> bytes:
        headers = {"Content-Type": self.content_type, "Accept": self.accept_type, **self.extra_headers}
        attempt = 0
        while True:
            status: int | None = None
            wait = self.backoff * (2 ** attempt)
            expired = threading.Event()
            watchdog = None
            try:
                conn = self._connection()
                # the socket timeout bounds each read; the watchdog bounds the whole request (a
                # server that trickles its answer a byte at a time never trips a per-read timeout)
                watchdog = threading.Timer(self.timeout, _expire, (conn, expired))
                watchdog.daemon = True
                watchdog.start()
                conn.request("POST", self._path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                watchdog.cancel()
                if expired.is_set():
                    raise TimeoutError(MSG_ENDPOINT_TIMEOUT.format(timeout=self.timeout))
                if resp.will_close:
                    self._drop_connection()
            except (OSError, http.client.HTTPException) as exc:
                if watchdog is not None:
                    watchdog.cancel()
                self._drop_connection()
                if expired.is_set() or isinstance(exc, TimeoutError):
                    status = None
                    message = MSG_ENDPOINT_TIMEOUT.format(timeout=self.timeout)
                else:
                    message = self._describe(exc)
            else:
                if 200 <= status < 300:
                    return data
                message = data[:1000].decode("utf-8", "replace").strip() or f"(an empty answer, {resp.reason})"
                if status != 429 and status < 500:
                    raise EndpointError(
                        MSG_ENDPOINT_HTTP.format(url=self.url, status=status, row=first_row, message=message),
                        first_row=first_row, status=status, server_message=message)
                hint = _retry_after(resp.getheader("Retry-After"))
                if hint is not None:
                    wait = max(wait, min(hint, self.timeout))
                message = f"HTTP {status}: {message}"
            if attempt >= self.retries:
                raise EndpointError(
                    MSG_ENDPOINT_RETRIES.format(url=self.url, row=first_row, attempts=attempt + 1, message=message),
                    first_row=first_row, status=status, server_message=message)
            time.sleep(wait)
            attempt += 1

    def _describe(self, exc: BaseException) -> str:
        """A connection failure in words, with what to check."""
        where = f"{self._host}:{self._port or (443 if self._scheme == 'https' else 80)}"
        kind = type(exc).__name__
        if isinstance(exc, ConnectionRefusedError):
            return f"{kind}: nothing listens on {where} (is the endpoint server running?)"
        if isinstance(exc, socket.gaierror):
            return f"{kind}: cannot resolve the host {self._host!r} ({exc.strerror or exc})"
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
            return f"{kind}: the server at {where} closed the connection without an answer"
        return f"{kind}: {exc}"

    # -- decoding ------------------------------------------------------------------------------

    def _bad(self, first_row: int, message: str) -> EndpointResponseError:
        return EndpointResponseError(
            MSG_ENDPOINT_PARSE.format(url=self.url, row=first_row, message=message),
            first_row=first_row, status=200, server_message=message)

    def _value(self, v: Any, first_row: int, i: int) -> list[float]:
        if isinstance(v, list):
            return [self._scalar(x, first_row, i) for x in v]
        return [self._scalar(v, first_row, i)]

    def _scalar(self, v: Any, first_row: int, i: int) -> float:
        if isinstance(v, bool):
            return float(v)
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            s = v.strip()
            try:
                return float(s)
            except ValueError:
                pass
            if self._label_headers is not None:
                for k, h in enumerate(self._label_headers):
                    if str(h) == s:
                        return float(k)
            raise self._bad(first_row, f"row {first_row + i}: value {v!r} is not a number"
                            + ("" if self._label_headers is None else f" nor one of label_headers {self._label_headers}"))
        raise self._bad(first_row, f"row {first_row + i}: value {v!r} is not a number")

    def _decode(self, data: bytes, n: int, first_row: int) -> np.ndarray:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._bad(first_row, f"not UTF-8: {exc}") from None
        values: list[Any]
        if self.accept_type == "text/csv":
            lines = [ln for ln in text.splitlines() if ln.strip()]
            rows = list(csv.reader(lines))
            col = self._field
            if col is None and len(rows) == 1 and n > 1 and len(rows[0]) == n:
                rows = [[v] for v in rows[0]]  # one line holding one score per row
            if len(rows) != n:
                raise EndpointResponseError(
                    MSG_ENDPOINT_COUNT.format(url=self.url, got=len(rows), row=first_row, n=n),
                    first_row=first_row, status=200, server_message=text[:1000])
            if "[" not in text:  # fast path: a rectangular table of numbers
                try:
                    table = np.array(rows if col is None else [r[col] for r in rows], dtype=np.float64)
                except (ValueError, IndexError):
                    pass  # the slow path below says which row and value is wrong
                else:
                    if self.output != "label" or table.ndim == 1 or table.shape[1] == 1:
                        return table.reshape(n, -1)
            values = []
            for i, r in enumerate(rows):
                if col is not None:
                    if not -len(r) <= col < len(r):
                        raise self._bad(first_row, f"row {first_row + i} has {len(r)} columns, no column {col}")
                    r = [r[col]]
                cells: list[Any] = []
                for c in r:
                    c = c.strip()
                    if c.startswith("["):
                        try:
                            cells.extend(json.loads(c))
                        except json.JSONDecodeError:
                            raise self._bad(first_row, f"row {first_row + i}: cell {c!r} is not a JSON list") from None
                    else:
                        cells.append(c)
                values.append(cells if len(cells) != 1 else cells[0])
        elif self.accept_type == "application/jsonlines":
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if len(lines) != n:
                raise EndpointResponseError(
                    MSG_ENDPOINT_COUNT.format(url=self.url, got=len(lines), row=first_row, n=n),
                    first_row=first_row, status=200, server_message=text[:1000])
            values = []
            for i, ln in enumerate(lines):
                try:
                    doc = json.loads(ln)
                except json.JSONDecodeError as exc:
                    raise self._bad(first_row, f"line {i + 1}: {exc}") from None
                v = self._jmes.search(doc) if self._jmes is not None else doc
                if v is None:
                    raise self._bad(first_row, f"row {first_row + i}: {self._field!r} found nothing in {ln[:200]}")
                values.append(v)
        else:
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise self._bad(first_row, f"{exc} (body starts {text[:200]!r})") from None
            v = self._jmes.search(doc) if self._jmes is not None else doc
            if self._one_per_request and n == 1 and not (isinstance(v, list) and len(v) == 1
                                                         and isinstance(v[0], list)):
                v = [v]
            if not isinstance(v, list):
                raise self._bad(first_row, f"expected a list of predictions, got {str(v)[:200]}"
                                + ("" if self._field else " (set probability=/label= to a JMESPath)"))
            if len(v) != n:
                raise EndpointResponseError(
                    MSG_ENDPOINT_COUNT.format(url=self.url, got=len(v), row=first_row, n=n),
                    first_row=first_row, status=200, server_message=text[:1000])
            values = v
        out = [self._value(v, first_row, i) for i, v in enumerate(values)]
        widths = {len(r) for r in out}
        if len(widths) > 1:
            raise self._bad(first_row, f"rows have different numbers of values: {sorted(widths)}")
        if self.output == "label" and widths and widths != {1}:
            raise self._bad(first_row, f"label {self._field!r} gives {widths.pop()} values per row, expected 1")
        return np.array(out, dtype=np.float64).reshape(n, -1)

    # -- the call ------------------------------------------------------------------------------

    def _run_batch(self, body: bytes, start: int, stop: int) -> np.ndarray:
        # start/stop are row numbers in the input of predict (chunk offset included)
        return self._decode(self._post(body, start), stop - start, start)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="clarion-endpoint")
            return self._pool

    def _call_endpoint(self, X: Any, offset: int = 0) -> np.ndarray:
        enc, pre, sep, post = self._encode_rows(X)
        local = self._batches(enc, pre, sep, post)
        bodies = [pre + sep.join(enc[s:e]) + post for s, e in local]
        batches = [(s + offset, e + offset) for s, e in local]
        if len(batches) == 1 or self.concurrency == 1:
            parts = [self._run_batch(b, s, e) for b, (s, e) in zip(bodies, batches)]
        else:
            pool = self._executor()
            futures = [pool.submit(self._run_batch, b, s, e) for b, (s, e) in zip(bodies, batches)]
            try:
                parts = [f.result() for f in futures]
            finally:
                for f in futures:
                    f.cancel()
        widths = {p.shape[1] for p in parts}
        if len(widths) > 1:
            raise self._bad(0, f"batches returned different numbers of values per row: {sorted(widths)}")
        return np.concatenate(parts, axis=0)

