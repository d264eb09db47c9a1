"""Issue 5's "done when": Kernel SHAP and a post-training bias report computed through a real HTTP
endpoint (``clarion serve`` on 127.0.0.1) equal the in-process ones, and the explainers accept
every model form that ``clarion.models.as_model`` does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from clarion import bias
from clarion.explain import KernelShap, partial_dependence
from clarion.models import Endpoint, as_model
from clarion.serve import ModelServer

FEATURES = ["mean radius", "mean texture", "mean smoothness", "mean symmetry", "worst area", "worst concavity"]


@pytest.fixture(scope="module")
def served():
    data = load_breast_cancer(as_frame=True)
    X = data.data[FEATURES].to_numpy()
    y = data.target.to_numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    with ModelServer(clf) as url:
        yield url, clf, X, y


def p1(clf):
    return lambda Z: clf.predict_proba(Z)[:, 1]


def test_kernel_shap_through_endpoint_equals_in_process(served):
    url, clf, X, _ = served
    background, rows = X[:5], X[100:112]
    local = KernelShap(p1(clf), background, seed=3).explain(rows)
    remote = KernelShap(Endpoint(url, probability=1, max_batch_rows=500), background, seed=3).explain(rows)
    assert remote.values.shape == local.values.shape == (12, len(FEATURES))
    # CSV carries floats with repr precision, so the round trip is exact.
    np.testing.assert_array_equal(remote.values, local.values)
    assert remote.expected_value == pytest.approx(local.expected_value, abs=0)
    # additivity through the endpoint, against direct predictions
    np.testing.assert_allclose(remote.values.sum(1) + remote.expected_value, p1(clf)(rows), atol=1e-10)


def test_model_objects_are_accepted_by_the_explainers(served):
    url, clf, X, _ = served
    background, rows = X[:4], X[200:206]
    direct = KernelShap(clf, background, seed=1).explain(rows)  # predict_proba: two outputs
    wrapped = KernelShap(as_model(clf), background, seed=1).explain(rows)
    np.testing.assert_array_equal(wrapped.values, direct.values)
    pd_direct = partial_dependence(p1(clf), X[:50], [0], grid_resolution=5)
    pd_remote = partial_dependence(Endpoint(url, probability=1), X[:50], [0], grid_resolution=5)
    np.testing.assert_array_equal(pd_remote["average"].to_numpy(), pd_direct["average"].to_numpy())


def test_post_training_bias_through_endpoint_equals_in_process(served):
    url, clf, X, y = served
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["large"] = np.where(frame["mean radius"] > np.median(frame["mean radius"]), "yes", "no")
    frame["label"] = y
    remote_scores = Endpoint(url, probability=1).predict(X)[:, 0]
    np.testing.assert_array_equal(remote_scores, p1(clf)(X))
    kwargs = dict(label="label", label_values=[1], facet="large", facet_values=["yes"], stage="post", features=FEATURES)
    local = bias.report(frame, predicted_label=p1(clf)(X), **kwargs).to_frame()
    remote = bias.report(frame, predicted_label=remote_scores, **kwargs).to_frame()
    pd.testing.assert_frame_equal(remote, local)
    assert set(local["metric"]) >= {"DPPL", "DI", "RD", "FT", "GE"}
