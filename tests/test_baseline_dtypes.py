"""methods.shap.baseline values keep their value whatever the data's dtype: a fractional baseline
value of an integer column (a mean, a k-means centre) is explained as that value, not cast to an
integer (before the fix 0.5 became 0 and the whole explanation moved to another baseline, silently)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clarion


def _data():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 3, 120), "b": rng.normal(size=120)})
    df["y"] = (df.a + df.b > 0.5).astype(int)
    return df


def _linear(X):
    X = np.asarray(X, dtype=np.float64)
    return 0.3 * X[:, 0] - 0.7 * X[:, 1] + 0.1


@pytest.mark.parametrize("base_a", [0.5, 1, 2.25])
def test_baseline_value_of_an_integer_column_is_kept(tmp_path, base_a):
    df = _data()
    df.to_csv(tmp_path / "d.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "headers": ["a", "b", "y"],
        "methods": {"shap": {"baseline": [[base_a, 0.25]], "num_samples": 2, "seed": 1}},
    }
    r = clarion.analyze(cfg, tmp_path / "d.csv", model=_linear, output_dir=tmp_path / "out", progress=False)
    block = next(iter(r.analysis["explanations"]["kernel_shap"].values()))
    # a linear model's base value is the model at the baseline row, and its Shapley values are
    # w_j (x_j - baseline_j): global mean |phi| per feature
    assert block["expected_value"] == pytest.approx(0.3 * base_a - 0.7 * 0.25 + 0.1, abs=1e-12)
    assert block["global_shap_values"]["a"] == pytest.approx(np.abs(0.3 * (df.a - base_a)).mean(), abs=1e-12)
    assert block["global_shap_values"]["b"] == pytest.approx(np.abs(-0.7 * (df.b - 0.25)).mean(), abs=1e-12)
