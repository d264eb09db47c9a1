"""Online explainability, follow-up of issue 16: ``KernelShap.explain(predictions=)`` (the
records' f(x) from the caller instead of a second model call), the OnlineExplainer's per-request
work, and the estimator choice in the explainer config (``ShapConfig.Estimator``).

Attributions are compared with :class:`clarion.explain.KernelShap` run with the same baseline,
samples and seed; model calls are counted with a counting callable.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from clarion.explain import KernelShap, OnlineExplainer

RNG = np.random.default_rng(1619)
X = RNG.normal(size=(200, 6))
Y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 3] > 0).astype(int)
CLF = LogisticRegression().fit(X, Y)
BASE = X[:5]
W = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])


class Counting:
    """A model that counts its calls (and the rows it was given)."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0
        self.rows = 0

    def __call__(self, A):
        self.calls += 1
        self.rows += A.shape[0]
        return self.fn(A)


def _proba(A):
    return CLF.predict_proba(A)


def _score(A):
    return A @ W + 0.25 * A[:, 0] * A[:, 1]


# ------------------------------------------------------------------------------------------------
# item 1: KernelShap.explain(predictions=)


@pytest.mark.parametrize(
    ("fn", "link", "estimator", "std"),
    [
        (_proba, "identity", "shap", False),
        (_proba, "logit", "shap", True),
        (_proba, "logit", "cubic", False),
        (_score, "identity", "cubic", True),
        (_score, "identity", "shap", False),
    ],
)
def test_predictions_give_the_same_attributions_with_one_call_fewer(fn, link, estimator, std):
    rows = X[10:17]
    model = Counting(fn)
    ks = KernelShap(model, BASE, num_samples=40, seed=3, link=link, estimator=estimator)
    model.calls = model.rows = 0
    ref = ks.explain(rows, return_std=std)
    calls, n_rows = model.calls, model.rows
    model.calls = model.rows = 0
    got = ks.explain(rows, return_std=std, predictions=fn(rows))
    assert model.calls == calls - 1  # f(x) of the rows was the only call on X itself
    assert model.rows == n_rows - len(rows)
    np.testing.assert_array_equal(got.values, ref.values)
    np.testing.assert_array_equal(got.expected_value, ref.expected_value)
    if std:
        np.testing.assert_array_equal(got.std, ref.std)


def test_predictions_are_used_as_f_of_x():
    # efficiency holds against the given predictions: sum_j phi_j = f(x) - E f(b) (identity link)
    rows = X[:3]
    ks = KernelShap(_score, BASE, num_samples=64, seed=0, estimator="shap")
    given = _score(rows) + np.array([1.0, -2.0, 0.5])
    e = ks.explain(rows, predictions=given)
    np.testing.assert_allclose(e.values.sum(axis=1), given - ks.expected_value, rtol=0, atol=1e-9)


@pytest.mark.parametrize("shape", ["1d", "2d"])
def test_predictions_of_a_one_output_model_take_either_shape(shape):
    rows = X[:4]
    ks = KernelShap(_score, BASE, num_samples=30, seed=2, estimator="shap")
    p = _score(rows)
    got = ks.explain(rows, predictions=p if shape == "1d" else p[:, None])
    np.testing.assert_array_equal(got.values, ks.explain(rows).values)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (np.zeros((3, 3)), r"shape \(3, 2\), got shape \(3, 3\)"),
        (np.zeros(3), r"shape \(3, 2\), got shape \(3,\)"),
        (np.zeros((2, 2)), r"got shape \(2, 2\)"),
        (np.array([[0.1, 0.9], [np.nan, 0.5], [0.2, 0.8]]), r"got nan at row 1, output 0"),
        (np.array([[0.1, 0.9], [0.5, 0.5], [0.2, np.inf]]), r"got inf at row 2, output 1"),
        ([["a", "b"]] * 3, "non-numbers"),
    ],
)
def test_bad_predictions_are_refused_naming_the_argument(bad, why):
    ks = KernelShap(_proba, BASE, num_samples=30, seed=2)
    with pytest.raises(ValueError, match=r"^predictions must be the model's outputs on X.*" + why):
        ks.explain(X[:3], predictions=bad)


def test_online_request_predicts_its_records_once():
    # one request: the records' predictions (one call) and the synthetic batches; no second call
    # on the records for f(x), so the same number of calls as a bare KernelShap.explain
    rows = X[20:23]
    served = Counting(_proba)
    ox = OnlineExplainer(served, BASE, num_samples=40, seed=4)
    bare = Counting(_proba)
    ks = KernelShap(bare, BASE, num_samples=40, seed=4, estimator="shap")
    ks.explain(rows[:1])  # both past their first (lazily built) call
    served.calls = served.rows = bare.calls = bare.rows = 0
    got = ox.explain(rows)
    ref = ks.explain(rows)
    assert served.calls == bare.calls
    assert served.rows == bare.rows
    np.testing.assert_array_equal(got.values, ref.values)
    np.testing.assert_array_equal(got.predictions, _proba(rows))


# ------------------------------------------------------------------------------------------------
# item 2: per-request work (scikit-learn's finiteness check of the synthetic batches skipped when
# every value in them is finite; the operator transposed once)


def test_skipping_sklearns_check_changes_no_number_and_does_not_leak():
    import sklearn

    rows = X[30:34]
    ox = OnlineExplainer(CLF, BASE, num_samples=40, seed=6)
    ref = KernelShap(CLF, BASE, num_samples=40, seed=6, estimator="shap").explain(rows)
    for _ in range(2):  # the second call reuses the transposed operator
        got = ox.explain(rows)
        np.testing.assert_array_equal(got.values, ref.values)
    assert sklearn.get_config()["assume_finite"] is False


def test_missing_values_still_reach_a_model_that_takes_them():
    from sklearn.ensemble import HistGradientBoostingClassifier

    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, Y)
    rows = X[40:43].copy()
    rows[1, 2] = np.nan  # the synthetic rows of this record hold NaN: no assume_finite
    ox = OnlineExplainer(hgb, BASE, num_samples=40, seed=6)
    ref = KernelShap(hgb, BASE, num_samples=40, seed=6, estimator="shap").explain(rows)
    np.testing.assert_array_equal(ox.explain(rows).values, ref.values)


def test_a_model_that_refuses_missing_values_still_refuses_them():
    rows = X[40:43].copy()
    rows[1, 2] = np.nan
    ox = OnlineExplainer(CLF, BASE, num_samples=40, seed=6)
    with pytest.raises(ValueError, match="NaN"):
        ox.explain(rows)


# ------------------------------------------------------------------------------------------------
# item 3: ShapConfig.Estimator (a clarion addition)


def _csv(rows) -> str:
    return "\n".join(",".join(repr(float(v)) for v in r) for r in rows)


def _config(**shap):
    return {
        "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": _csv(BASE)}, "NumberOfSamples": 40, "Seed": 8, **shap}
    }


@pytest.mark.parametrize("estimator", ["cubic", "shap"])
def test_served_attributions_are_kernel_shaps_with_the_configured_estimator(estimator):
    rows = X[50:54]
    ox = OnlineExplainer.from_config(CLF, _config(Estimator=estimator))
    assert ox.config.estimator == estimator
    ref = KernelShap(CLF, BASE, num_samples=40, seed=8, estimator=estimator).explain(rows)
    got = ox.explain(rows)
    np.testing.assert_array_equal(got.values, ref.values)
    body = got.to_dict()["explanations"]["kernel_shap"]
    served = np.array([[f["attributions"][0]["attribution"] for f in rec] for rec in body])
    np.testing.assert_array_equal(served, ref.values)


def test_estimator_defaults_to_clarifys():
    rows = X[50:52]
    ox = OnlineExplainer.from_config(CLF, _config())
    assert ox.config.estimator == "shap"
    shap_ref = KernelShap(CLF, BASE, num_samples=40, seed=8, estimator="shap").explain(rows).values
    cubic_ref = KernelShap(CLF, BASE, num_samples=40, seed=8, estimator="cubic").explain(rows).values
    got = ox.explain(rows).values
    np.testing.assert_array_equal(got, shap_ref)
    assert not np.array_equal(got, cubic_ref)  # the two estimators differ on this sampled plan


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("cubicc", r"ShapConfig\.Estimator: .*'cubicc'.*did you mean 'cubic'"),
        ("exact", r"ShapConfig\.Estimator: .*'exact'"),
        (3, r"ShapConfig\.Estimator: .*3"),
    ],
)
def test_a_bad_estimator_is_refused_naming_its_key(value, why):
    from clarion.config import ConfigError

    with pytest.raises(ConfigError, match=why):
        OnlineExplainer.from_config(CLF, _config(Estimator=value))
    with pytest.raises(ConfigError, match="ClarifyExplainerConfig." + why):
        OnlineExplainer.from_config(CLF, {"ClarifyExplainerConfig": _config(Estimator=value)})
