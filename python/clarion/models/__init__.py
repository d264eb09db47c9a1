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
input row. :meth:`Model.select` restricts a model to one output or to its predicted label.

**No code from data.** Model files are loaded only through formats that hold data, not code:
xgboost's JSON/UBJSON, ONNX, and skops (which refuses every type not on its trusted list).
Pickle and joblib files (``.pkl``, ``.pickle``, ``.joblib``) are refused: unpickling runs
arbitrary code, and a model path may come from a config file. Heavy dependencies (xgboost,
onnxruntime, skops, scikit-learn, cupy) are imported only when a model of that kind is used.

Modules: :mod:`._base` (the :class:`Model`), :mod:`.adapters` (:func:`as_model` and one adapter
per kind of model), :mod:`.files` (model files: sniffing, refusing pickles, the child-process
check), :mod:`.endpoint` (the HTTP client), :mod:`.wire` (the SageMaker wire format, shared with
:mod:`clarion.serve`).
"""

from __future__ import annotations

from clarion.models import wire
from clarion.models._base import (
    DEFAULT_MEMORY_BUDGET,
    MSG_BAD_NDIM,
    MSG_FEATURES_MISMATCH,
    MSG_NAMES_COUNT,
    MSG_NOT_NUMERIC,
    MSG_OUTPUTS_CHANGED,
    MSG_SELECT_INDEX,
    MSG_WRONG_ROWS,
    Model,
)
from clarion.models._base import (
    Accepts as Accepts,
)
from clarion.models._base import (
    Output as Output,
)
from clarion.models.adapters import MSG_UNKNOWN_MODEL, as_model
from clarion.models.endpoint import (
    MSG_ENDPOINT_COUNT,
    MSG_ENDPOINT_HTTP,
    MSG_ENDPOINT_PARSE,
    MSG_ENDPOINT_RETRIES,
    MSG_ENDPOINT_TIMEOUT,
    Endpoint,
    EndpointError,
    EndpointResponseError,
)
from clarion.models.files import (
    MODEL_CHECK_MEMORY,
    MODEL_CHECK_TIMEOUT,
    MSG_MODEL_FILE_BAD,
    MSG_MODEL_FILE_PICKLE,
    MSG_PICKLE,
    MSG_SKOPS_UNTRUSTED,
    ModelFileError,
)
from clarion.models.wire import (
    CONTENT_TYPES,
    MSG_JSON_INF,
    MSG_RECORD_TEMPLATE,
    MSG_ROW_TOO_LARGE,
    check_record_template,
)

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_MEMORY_BUDGET",
    "MODEL_CHECK_MEMORY",
    "MODEL_CHECK_TIMEOUT",
    "MSG_BAD_NDIM",
    "MSG_ENDPOINT_COUNT",
    "MSG_ENDPOINT_HTTP",
    "MSG_ENDPOINT_PARSE",
    "MSG_ENDPOINT_RETRIES",
    "MSG_ENDPOINT_TIMEOUT",
    "MSG_FEATURES_MISMATCH",
    "MSG_JSON_INF",
    "MSG_MODEL_FILE_BAD",
    "MSG_MODEL_FILE_PICKLE",
    "MSG_NAMES_COUNT",
    "MSG_NOT_NUMERIC",
    "MSG_OUTPUTS_CHANGED",
    "MSG_PICKLE",
    "MSG_RECORD_TEMPLATE",
    "MSG_ROW_TOO_LARGE",
    "MSG_SELECT_INDEX",
    "MSG_SKOPS_UNTRUSTED",
    "MSG_UNKNOWN_MODEL",
    "MSG_WRONG_ROWS",
    "Endpoint",
    "EndpointError",
    "EndpointResponseError",
    "Model",
    "ModelFileError",
    "as_model",
    "check_record_template",
    "wire",
]
