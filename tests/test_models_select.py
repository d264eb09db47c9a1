"""Model.select (one output, several, or the label output) and accepts="any"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clarion.models import MSG_SELECT_INDEX, Endpoint, Model, as_model


def _three(X):
    X = np.asarray(X, dtype=np.float64)
    return np.stack([X[:, 0], X[:, 1], X[:, 0] + X[:, 1]], axis=1)


X = np.arange(12, dtype=np.float64).reshape(6, 2)


def test_select_probability_one_and_several_columns():
    m = Model(_three, output_names=["a", "b", "c"])
    one = m.select(probability=2)
    assert one.output == "probability" and one.n_outputs == 1 and one.output_names == ["c"]
    np.testing.assert_array_equal(one.predict(X), _three(X)[:, [2]])
    two = m.select(probability=[2, 0])
    assert two.output_names == ["c", "a"]
    np.testing.assert_array_equal(two.predict(X), _three(X)[:, [2, 0]])


def test_select_label():
    lab = Model(_three).select(label=1)
    assert lab.output == "label" and lab.output_names == ["label"] and lab.n_outputs == 1
    np.testing.assert_array_equal(lab.predict(X), X[:, [1]])


def test_select_index_checked_when_known_and_on_first_call():
    with pytest.raises(ValueError, match="probability: output index 3 but the model returns 3 outputs"):
        Model(_three, n_outputs=3).select(probability=3)
    view = Model(_three).select(label=5)  # outputs unknown until a call
    with pytest.raises(ValueError, match=MSG_SELECT_INDEX.format(key="label", index=5, d=3).replace("(", r"\(")):
        view.predict(X)


@pytest.mark.parametrize(
    "kw",
    [{}, {"label": 0, "probability": 1}, {"label": -1}, {"probability": []}, {"label": [0, 1]}, {"probability": 1.5}],
)
def test_select_arguments(kw):
    with pytest.raises(ValueError):
        Model(_three).select(**kw)


def test_select_keeps_sklearn_classes_and_declared_features():
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(X, columns=["x", "y"])
    est = LogisticRegression().fit(frame, ["n", "y", "n", "y", "n", "y"])
    m = as_model(est)
    assert m.output == "probability" and m.classes == ["n", "y"]
    view = m.select(probability=1)
    assert view.classes == ["y"] and view.output_names == ["y"]
    assert view.declared_feature_names == ["x", "y"]
    np.testing.assert_allclose(view.predict(frame), est.predict_proba(frame)[:, [1]])


def test_accepts_any_passes_the_input_as_given():
    seen = []

    def fn(batch):
        seen.append(type(batch))
        return np.asarray(batch["x"], dtype=np.float64)

    frame = pd.DataFrame({"x": [1.0, 2.0], "k": ["a", "b"]})
    out = Model(fn, accepts="any").predict(frame)
    assert seen == [pd.DataFrame] and out.shape == (2, 1)


def test_endpoint_select_reads_the_field_from_the_answer():
    ep = Endpoint("http://127.0.0.1:9/invocations", probability=1)
    lab = ep.select(label=0)
    assert isinstance(lab, Endpoint) and lab.output == "label" and lab.label == 0 and lab.probability == 1
    js = Endpoint("http://127.0.0.1:9/invocations", content_type="application/json")
    assert js.select(probability="predictions[*].score").probability == "predictions[*].score"
    view = js.select(probability=[0])  # an index into a JSON answer's values: a view
    assert not isinstance(view, Endpoint) and view.output == "probability"
    with pytest.raises(TypeError):
        ep.select(label="predicted_label")
