"""The :class:`Model`: batched, checked predictions from a prediction function.

Every adapter in :mod:`clarion.models` (callables, scikit-learn, xgboost, ONNX, skops, HTTP
endpoints) builds a :class:`Model`; its :meth:`Model.predict` returns a float64 array of shape
``(n_rows, n_outputs)`` (a one-output model gives ``(n, 1)``), checked to have one row per input
row, in chunks that fit a memory budget. :meth:`Model.select` restricts a model to one output (or
several) or to its predicted label.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from clarion._backend import is_device_array

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "MSG_BAD_NDIM",
    "MSG_FEATURES_MISMATCH",
    "MSG_NAMES_COUNT",
    "MSG_NOT_NUMERIC",
    "MSG_OUTPUTS_CHANGED",
    "MSG_SELECT_INDEX",
    "MSG_WRONG_ROWS",
    "Model",
]

#: what a prediction function is fed: a numpy array, a pandas DataFrame, a cupy array, or the
#: input as given (``"any"``: no conversion)
Accepts = Literal["numpy", "pandas", "cupy", "any"]
#: which prediction an adapter returns
Output = Literal["label", "probability", "score"]

#: bytes of input (plus the output estimate) one model call may hold; larger inputs are chunked
DEFAULT_MEMORY_BUDGET = 1 << 30

# Error messages (module constants so that tests can match them).
MSG_WRONG_ROWS = "model {name!r} returned {got} rows of predictions for {n} input rows"
MSG_BAD_NDIM = "model {name!r} returned an array of shape {shape}; expected (n,) or (n, n_outputs)"
MSG_NOT_NUMERIC = "model {name!r} returned non-numeric predictions (dtype {dtype})"
MSG_NAMES_COUNT = (
    "model {name!r} returned {got} outputs per row, but {n} output names (label_headers) were given: "
    "{names}; give one name per output"
)
MSG_OUTPUTS_CHANGED = "model {name!r} returned {got} outputs per row, earlier calls returned {expected}"
MSG_FEATURES_MISMATCH = (
    "model {name!r} does not take the columns clarion sends it: {detail}. The model declares "
    "{declared}; clarion sends the columns {sent}{hint}"
)
MSG_SELECT_INDEX = "{key}: output index {index} but the model returns {d} outputs"


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
    accepts : {"numpy", "pandas", "cupy", "any"}, default "numpy"
        What ``fn`` wants: a numpy array, a pandas DataFrame (built with ``feature_names`` as
        columns when the caller passes an array) or a cupy array on the GPU (host input is copied
        to the device and the result copied back; device input stays on the device and the
        result is a cupy array). ``"any"`` passes the input as given (a DataFrame stays a
        DataFrame with its dtypes; device input stays on the device).
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
    output : {"label", "probability", "score"}, optional
        Which prediction ``fn`` returns, when known (the adapters set it; plain callables: None).
    classes : sequence, optional
        The class values of a classifier's probability outputs, in output order and in their own
        type (scikit-learn's ``classes_``); :attr:`output_names` holds them as strings.

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
        output: str | None = None,
        classes: Sequence[Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if accepts not in ("numpy", "pandas", "cupy", "any"):
            raise ValueError(f"accepts must be 'numpy', 'pandas', 'cupy' or 'any', got {accepts!r}")
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
        #: which prediction the model returns ("label", "probability", "score"), when known
        self.output: str | None = output
        #: a classifier's class values for its probability outputs, in their own type, when known
        self.classes: list[Any] | None = None if classes is None else list(classes)
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

    @property
    def fn(self) -> Callable[[Any], Any]:
        """The prediction function as the adapter built it: called on what :attr:`accepts` says,
        it returns the model's raw output, without :meth:`predict`'s chunking and checks."""
        return self._fn

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
                detail = f"{len(cols) - n} extra column(s)" if len(cols) > n else f"{n - len(cols)} missing column(s)"
            declared = f"{n} features (no names)"
        if detail is not None:
            raise ValueError(
                MSG_FEATURES_MISMATCH.format(name=self.name, detail=detail, declared=declared, sent=cols, hint=hint)
            )

    # -- views ---------------------------------------------------------------------------------

    def select(self, *, label: int | None = None, probability: int | Sequence[int] | None = None) -> Model:
        """A view of this model restricted to one output (or several), or to its predicted label.

        Parameters
        ----------
        label : int, optional
            Index of the output that holds the predicted label: the view returns that output
            alone, named ``"label"`` (its :attr:`output` is ``"label"``).
        probability : int or sequence of int, optional
            Index (or indices, in the order wanted) of the score output(s) to keep, named as in
            this model (its :attr:`output` is ``"probability"``).

        Give exactly one of the two.

        Returns
        -------
        Model
            ``predict(X)`` calls this model (with its chunking and checks) and returns the chosen
            columns, float64 ``(n, 1)`` (or ``(n, len(probability))``). An :class:`Endpoint`
            overrides this to parse the chosen field from its answers instead.

        Raises
        ------
        ValueError
            Neither or both given, or a negative index; an index at or past this model's number
            of outputs (``MSG_SELECT_INDEX``), at once when that number is known, else on the
            first ``predict``.
        """
        if (label is None) == (probability is None):
            raise ValueError("select() takes exactly one of label= and probability=")
        key = "label" if label is not None else "probability"
        raw = label if label is not None else probability
        if isinstance(raw, (int, np.integer)):
            cols = [raw]
        elif isinstance(raw, (list, tuple)):
            cols = list(raw)
        else:
            cols = []
        if not cols or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0 for c in cols):
            raise ValueError(f"{key} must be an output index (an integer >= 0) or a list of them, got {raw!r}")
        if key == "label" and len(cols) != 1:
            raise ValueError(f"label must be one output index, got {raw!r}")
        cols = [int(c) for c in cols]
        if self._n_outputs is not None:
            _check_select(cols, key, self._n_outputs)
        return _Selection(self, cols, key)

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
        parts = [
            self._predict_one(_slice_rows(X, s, min(s + step, n)), min(s + step, n) - s, s) for s in range(0, n, step)
        ]
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
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
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
        if accepts == "any":
            return X, _is_device_array(X)
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
                raise ValueError(
                    MSG_NAMES_COUNT.format(name=self.name, got=d, n=len(self._output_names), names=self._output_names)
                )
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


def _check_select(cols: list[int], key: str, d: int) -> None:
    for c in cols:
        if c >= d:
            raise ValueError(MSG_SELECT_INDEX.format(key=key, index=c, d=d))


class _Selection(Model):
    """:meth:`Model.select`'s view: the parent's predictions, restricted to some columns."""

    def __init__(self, parent: Model, cols: list[int], key: str) -> None:
        def fn(X: Any) -> Any:
            out = parent.predict(X)
            _check_select(cols, key, int(out.shape[1]))
            return out[:, cols]

        # the parent chunks its input to its own budget: one call of the view is one call of it
        super().__init__(
            fn,
            accepts="any",
            n_outputs=len(cols),
            feature_names=parent.feature_names,
            name=parent.name,
            memory_budget=1 << 62,
            output=key,
            output_names=["label"] if key == "label" else None,
        )
        self.parent = parent
        self.columns = cols
        self.declared_feature_names = parent.declared_feature_names
        self.declared_n_features = parent.declared_n_features
        if key == "probability" and parent.classes is not None and max(cols) < len(parent.classes):
            self.classes = [parent.classes[c] for c in cols]

    @property
    def output_names(self) -> list[str] | None:
        if self._output_names is not None:
            return self._output_names
        names = self.parent.output_names
        if names is not None and max(self.columns) < len(names):
            return [names[c] for c in self.columns]
        return [f"label{c}" for c in self.columns]
