"""as_model adapters, Model checks, memory-budget chunking and overlapped chunk prediction."""

from __future__ import annotations

import operator
import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.models import Endpoint, Model, as_model

RNG = np.random.default_rng(7)
X_NUM = RNG.normal(size=(240, 4))
Y_BIN = (X_NUM[:, 0] + 0.5 * X_NUM[:, 1] + RNG.normal(scale=0.3, size=240) > 0).astype(int)
Y_MULTI = np.digitize(X_NUM[:, 0] + X_NUM[:, 2], [-0.7, 0.7])
Y_REG = X_NUM @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * RNG.normal(size=240)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": RNG.integers(18, 80, size=240).astype(float),
            "income": RNG.normal(50, 10, size=240),
            "city": RNG.choice(["paris", "lyon", "nice"], size=240),
        }
    )


# -- callables and Model checks ------------------------------------------------------------------


def test_callable_1d_becomes_one_column_float64():
    m = as_model(lambda X: X.sum(axis=1).astype(np.float32))
    out = m.predict(X_NUM)
    assert out.dtype == np.float64 and out.shape == (240, 1)
    np.testing.assert_array_equal(out[:, 0], X_NUM.sum(axis=1).astype(np.float32))
    assert m.n_outputs == 1 and m.output_names == ["label0"]


def test_callable_2d_and_label_headers():
    m = as_model(lambda X: X[:, :2] * 2, label_headers=["a", "b"])
    np.testing.assert_array_equal(m.predict(X_NUM), X_NUM[:, :2] * 2)
    assert m.n_outputs == 2 and m.output_names == ["a", "b"]


def test_model_passthrough_and_url():
    m = Model(lambda X: X[:, 0])
    assert as_model(m) is m
    e = as_model("http://127.0.0.1:9/invocations")
    assert isinstance(e, Endpoint) and as_model(e) is e
    with pytest.raises(ValueError, match="existing Model"):
        as_model(m, output="label")


def test_wrong_row_count_raises():
    m = Model(lambda X: X[:-1, 0], name="short")
    with pytest.raises(ValueError, match=r"returned 239 rows of predictions for 240 input rows"):
        m.predict(X_NUM)


def test_bad_rank_non_numeric_and_changed_outputs():
    with pytest.raises(ValueError, match="shape"):
        Model(lambda X: np.zeros((len(X), 2, 2))).predict(X_NUM)
    with pytest.raises(TypeError, match="non-numeric"):
        Model(lambda X: np.array(["x"] * len(X))).predict(X_NUM)
    width = iter([1, 2])
    m = Model(lambda X: np.zeros((len(X), next(width))))
    m.predict(X_NUM)
    with pytest.raises(ValueError, match="returned 2 outputs per row, earlier calls returned 1"):
        m.predict(X_NUM)


def test_empty_input_after_outputs_known():
    m = Model(lambda X: X[:, :3])
    m.predict(X_NUM[:5])
    out = m.predict(X_NUM[:0])
    assert out.shape == (0, 3) and out.dtype == np.float64


def test_unknown_object_and_bad_arguments():
    with pytest.raises(TypeError, match="as_model cannot use"):
        as_model(42)
    with pytest.raises(ValueError, match="accepts"):
        Model(lambda X: X, accepts="torch")
    with pytest.raises(ValueError, match="memory_budget"):
        Model(lambda X: X, memory_budget=0)


# -- memory budget chunking and overlap ----------------------------------------------------------


def test_memory_budget_splits_calls_and_keeps_order():
    sizes: list[int] = []

    def fn(X):
        sizes.append(len(X))
        return X[:, [0, 3]]

    row = X_NUM.shape[1] * 8 + 8 * 2
    m = Model(fn, n_outputs=2, memory_budget=row * 50)
    out = m.predict(X_NUM)
    np.testing.assert_array_equal(out, X_NUM[:, [0, 3]])
    assert sizes == [50, 50, 50, 50, 40]
    sizes.clear()
    m = Model(fn, batch_rows=100)
    np.testing.assert_array_equal(m.predict(X_NUM), X_NUM[:, [0, 3]])
    assert sizes == [100, 100, 40]


@settings(max_examples=30)
@given(n=st.integers(0, 300), budget_rows=st.integers(1, 120), width=st.integers(1, 5))
def test_chunked_equals_unchunked(n, budget_rows, width):
    X = np.arange(n * width, dtype=np.float64).reshape(n, width)
    per_row = width * 8 + 8
    m = Model(lambda A: A.sum(axis=1), n_outputs=1, memory_budget=per_row * budget_rows)
    np.testing.assert_array_equal(m.predict(X), X.sum(axis=1, keepdims=True))


def test_predict_chunks_overlaps_production_with_the_model_call():
    produced_second = threading.Event()

    def chunks():
        for i in range(4):
            if i == 1:
                produced_second.set()
            yield X_NUM[i * 60 : (i + 1) * 60]

    overlapped = []

    def fn(X):
        # while the model runs on chunk 0, the producer must already be making chunk 1
        if not overlapped:
            overlapped.append(produced_second.wait(timeout=10))
        return X[:, 0]

    m = Model(fn)
    out = np.concatenate(list(m.predict_chunks(chunks(), prefetch=1)))
    assert overlapped == [True]
    np.testing.assert_array_equal(out[:, 0], X_NUM[:, 0])


def test_predict_chunks_reraises_producer_errors_and_stops():
    def chunks():
        yield X_NUM[:10]
        raise KeyError("broken chunk")

    m = Model(lambda X: X[:, 0])
    it = m.predict_chunks(chunks())
    assert next(it).shape == (10, 1)
    with pytest.raises(KeyError, match="broken chunk"):
        next(it)
    # no prefetch: same results, no thread
    out = list(m.predict_chunks([X_NUM[:3], X_NUM[3:7]], prefetch=0))
    assert [o.shape[0] for o in out] == [3, 4]


def test_predict_chunks_abandoned_early_does_not_hang():
    def chunks():
        for _ in range(100):
            yield X_NUM[:5]

    it = Model(lambda X: X[:, 0]).predict_chunks(chunks(), prefetch=2)
    next(it)
    it.close()  # joins the producer thread


# -- scikit-learn --------------------------------------------------------------------------------


def test_sklearn_classifier_outputs():
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(X_NUM, Y_MULTI)
    m = as_model(clf)
    np.testing.assert_array_equal(m.predict(X_NUM), clf.predict_proba(X_NUM))
    assert m.output_names == ["0", "1", "2"] and m.accepts == "numpy"
    np.testing.assert_array_equal(as_model(clf, output="label").predict(X_NUM)[:, 0], clf.predict(X_NUM))
    np.testing.assert_array_equal(as_model(clf, output="score").predict(X_NUM), clf.decision_function(X_NUM))
    with pytest.raises(ValueError, match="output must be"):
        as_model(clf, output="logits")


def test_sklearn_binary_score_and_regressor():
    from sklearn.linear_model import LinearRegression, LogisticRegression

    clf = LogisticRegression().fit(X_NUM, Y_BIN)
    s = as_model(clf, output="score")
    np.testing.assert_array_equal(s.predict(X_NUM)[:, 0], clf.decision_function(X_NUM))
    assert s.output_names == ["1"]
    reg = LinearRegression().fit(X_NUM, Y_REG)
    r = as_model(reg)
    np.testing.assert_array_equal(r.predict(X_NUM)[:, 0], reg.predict(X_NUM))
    with pytest.raises(ValueError, match="predict_proba"):
        as_model(reg, output="probability")


def test_sklearn_pipeline_on_dataframes_gets_dataframes():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    df = _frame()
    y = np.where((df["income"] > 50) & (df["city"] != "nice"), "yes", "no")
    pipe = Pipeline(
        [
            ("prep", ColumnTransformer([("city", OneHotEncoder(), ["city"])], remainder="passthrough")),
            ("lr", LogisticRegression()),
        ]
    ).fit(df, y)
    m = as_model(pipe)
    assert m.accepts == "pandas" and m.feature_names == ["age", "income", "city"]
    np.testing.assert_array_equal(m.predict(df), pipe.predict_proba(df))
    # an object array (e.g. from a masking kernel) is turned back into a typed DataFrame
    np.testing.assert_array_equal(m.predict(df.to_numpy(dtype=object)), pipe.predict_proba(df))
    # string labels come back as indices into classes_
    lab = as_model(pipe, output="label")
    codes = lab.predict(df)[:, 0]
    np.testing.assert_array_equal(pipe.classes_[codes.astype(int)], pipe.predict(df))
    with pytest.raises(ValueError, match="expects 3 features"):
        m.predict(df.to_numpy(dtype=object)[:, :2])


# -- xgboost -------------------------------------------------------------------------------------


def test_xgboost_classifier_regressor_and_booster():
    xgb = pytest.importorskip("xgboost")
    clf = xgb.XGBClassifier(n_jobs=1, n_estimators=15, max_depth=3).fit(X_NUM, Y_BIN)
    np.testing.assert_array_equal(as_model(clf).predict(X_NUM), clf.predict_proba(X_NUM))
    np.testing.assert_array_equal(as_model(clf, output="label").predict(X_NUM)[:, 0], clf.predict(X_NUM))
    np.testing.assert_array_equal(
        as_model(clf, output="score").predict(X_NUM)[:, 0], clf.predict(X_NUM, output_margin=True)
    )
    multi = xgb.XGBClassifier(n_jobs=1, n_estimators=10, max_depth=3).fit(X_NUM, Y_MULTI)
    np.testing.assert_array_equal(as_model(multi).predict(X_NUM), multi.predict_proba(X_NUM))
    reg = xgb.XGBRegressor(n_jobs=1, n_estimators=10).fit(X_NUM, Y_REG)
    np.testing.assert_array_equal(as_model(reg).predict(X_NUM)[:, 0], reg.predict(X_NUM))
    booster = clf.get_booster()
    direct = booster.predict(xgb.DMatrix(X_NUM))
    np.testing.assert_array_equal(as_model(booster).predict(X_NUM)[:, 0], direct)
    np.testing.assert_array_equal(
        as_model(booster, output="score").predict(X_NUM)[:, 0], booster.predict(xgb.DMatrix(X_NUM), output_margin=True)
    )


def test_xgboost_early_stopping_uses_best_iteration():
    xgb = pytest.importorskip("xgboost")
    clf = xgb.XGBClassifier(n_jobs=1, n_estimators=200, early_stopping_rounds=3, learning_rate=0.5)
    clf.fit(X_NUM[:160], Y_BIN[:160], eval_set=[(X_NUM[160:], Y_BIN[160:])], verbose=False)
    assert clf.best_iteration < 199
    np.testing.assert_array_equal(as_model(clf).predict(X_NUM), clf.predict_proba(X_NUM))


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_model_files(tmp_path, suffix):
    xgb = pytest.importorskip("xgboost")
    clf = xgb.XGBClassifier(n_jobs=1, n_estimators=10, max_depth=3).fit(X_NUM, Y_MULTI)
    path = tmp_path / f"model{suffix}"
    clf.save_model(path)
    m = as_model(str(path))
    np.testing.assert_array_equal(m.predict(X_NUM), clf.predict_proba(X_NUM))
    assert m.name == f"model{suffix}"
    assert as_model(path).predict(X_NUM[:3]).shape == (3, 3)  # os.PathLike too
    binary = xgb.XGBClassifier(n_jobs=1, n_estimators=10, max_depth=3).fit(X_NUM, Y_BIN)
    binary.save_model(path)
    np.testing.assert_array_equal(as_model(path).predict(X_NUM), binary.predict_proba(X_NUM))
    raw = tmp_path / f"raw{suffix}"
    binary.get_booster().save_model(raw)  # a bare Booster file: its raw output, one column
    np.testing.assert_array_equal(as_model(raw).predict(X_NUM)[:, 0], binary.predict_proba(X_NUM)[:, 1])


# -- ONNX ----------------------------------------------------------------------------------------


def test_onnx_file_and_session(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(X_NUM, Y_MULTI)
    onx = skl2onnx.convert_sklearn(
        clf, initial_types=[("X", FloatTensorType([None, 4]))], options={id(clf): {"zipmap": False}}, target_opset=17
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    X32 = X_NUM.astype(np.float32)
    label, prob = session.run(None, {"X": X32})
    m = as_model(str(path))
    np.testing.assert_array_equal(m.predict(X_NUM), prob)
    np.testing.assert_allclose(m.predict(X_NUM), clf.predict_proba(X_NUM), atol=1e-5)
    np.testing.assert_array_equal(as_model(session, output="label").predict(X_NUM)[:, 0], label)
    with pytest.raises(ValueError, match="output must be"):
        as_model(session, output="nope")


def test_onnx_zipmap_output(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(X_NUM, Y_BIN)
    onx = skl2onnx.convert_sklearn(clf, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=17)
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    _, maps = session.run(None, {"X": X_NUM.astype(np.float32)})
    expected = np.array([[d[0], d[1]] for d in maps])
    np.testing.assert_array_equal(as_model(session).predict(X_NUM), expected)


# -- skops and refused formats -------------------------------------------------------------------


def test_skops_file_and_trusted_types(tmp_path):
    sio = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    clf = LogisticRegression().fit(X_NUM, Y_BIN)
    path = tmp_path / "m.skops"
    sio.dump(clf, path)
    np.testing.assert_array_equal(as_model(str(path)).predict(X_NUM), clf.predict_proba(X_NUM))
    pipe = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(X_NUM, Y_BIN)
    risky = tmp_path / "risky.skops"
    sio.dump(pipe, risky)
    with pytest.raises(ValueError, match=r"_operator\.neg"):
        as_model(str(risky))
    m = as_model(str(risky), trusted=["_operator.neg"])
    np.testing.assert_array_equal(m.predict(X_NUM), pipe.predict_proba(X_NUM))


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "model.pickle"])
def test_pickle_files_are_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"not even opened")
    with pytest.raises(ValueError, match="pickle/joblib files run arbitrary code"):
        as_model(str(path))


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        as_model(str(tmp_path / "nope.onnx"))
    other = tmp_path / "m.h5"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match="unknown suffix"):
        as_model(str(other))


# -- cupy ----------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_cupy_native_callable_keeps_device_data():
    cp = pytest.importorskip("cupy")
    from clarion import _backend

    if _backend.cuda_device_count() == 0:
        pytest.skip("no CUDA device")
    m = as_model(lambda A: cp.stack([A.sum(axis=1), A[:, 0]], axis=1), accepts="cupy")
    Xd = cp.asarray(X_NUM)
    out = m.predict(Xd)
    assert isinstance(out, cp.ndarray) and out.dtype == cp.float64 and out.shape == (240, 2)
    np.testing.assert_array_equal(cp.asnumpy(out), np.stack([X_NUM.sum(axis=1), X_NUM[:, 0]], axis=1))
    host = m.predict(X_NUM)  # host input: result comes back to the host
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, cp.asnumpy(out))
    # a numpy model fed device data returns device data
    n = as_model(lambda A: A[:, 0])
    assert isinstance(n.predict(Xd), cp.ndarray)
