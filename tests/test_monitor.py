"""clarion.monitor: bias drift rule and NDCG attribution drift (Clarify's worked example)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.monitor import attribution_drift, bias_drift, ndcg


def shap_doc(values, label="label0"):
    return {"explanations": {"kernel_shap": {label: {"global_shap_values": values, "expected_value": 0.5}}}}


def bias_doc(metrics, facet="sex", value="female", stage="post_training_bias_metrics"):
    return {
        stage: {
            "label": "y",
            "label_value_or_threshold": "1",
            "facets": {
                facet: [
                    {
                        "value_or_threshold": value,
                        "metrics": [{"name": k, "description": k, "value": v} for k, v in metrics.items()],
                    }
                ]
            },
        }
    }


def test_ndcg_docs_worked_example():
    base = {"SAT": 0.70, "GPA": 0.50, "rank": 0.05}
    cur = {"SAT": 0.10, "GPA": 0.20, "rank": 0.70}
    assert ndcg(base, cur) == pytest.approx(0.6876, abs=5e-5)
    r = attribution_drift(shap_doc(base), shap_doc(cur))
    assert not r.ok
    assert r.violations == [
        {
            "label": "label0",
            "metric_name": "shap",
            "constraint_check_type": "feature_attribution_drift_check",
            "description": f"Feature attribution drift {ndcg(base, cur)} exceeds threshold 0.9",
            "baseline": 1.0,
            "current": ndcg(base, cur),
            "current_interval": None,
            "rule": {"name": "ndcg_threshold", "threshold": 0.9},
            "explanation": "NDCG rule: NDCG 0.6876 of the current feature ranking against the baseline's "
            "(1.0 = same ranking) is below the threshold 0.9",
        }
    ]
    assert attribution_drift(shap_doc(base), shap_doc(cur), threshold=0.6).ok


@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.floats(0, 1)), min_size=2, max_size=8))
def test_ndcg_equals_sklearn(pairs):
    from sklearn.metrics import ndcg_score

    base = {f"f{i}": b for i, (b, _) in enumerate(pairs)}
    cur = {f"f{i}": c for i, (_, c) in enumerate(pairs)}
    if all(v == 0 for v in base.values()):
        assert math.isnan(ndcg(base, cur))
        return
    want = ndcg_score(np.array([list(base.values())]), np.array([list(cur.values())]))
    assert ndcg(base, cur) == pytest.approx(want, rel=1e-12)


def test_ndcg_identical_ranking_is_one_and_negative_uses_magnitude():
    assert ndcg({"a": 3, "b": 2, "c": 1}, {"a": 30, "b": 20, "c": 10}) == pytest.approx(1.0)
    assert ndcg({"a": -3, "b": 2, "c": 1}, {"a": -30, "b": 20, "c": 10}) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"only in baseline \['c'\]"):
        ndcg({"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1})


def test_bias_drift_docs_example_and_di_ideal():
    base = bias_doc({"DPPL": 0.2, "DI": 0.8, "AD": 0.1})
    r = bias_drift(base, bias_doc({"DPPL": 0.1, "DI": 1.1, "AD": 0.1}))
    assert r.ok  # closer to the ideal (or equal) everywhere
    r = bias_drift(base, bias_doc({"DPPL": -0.3, "DI": 1.3, "AD": 0.1}))
    assert [v["metric_name"] for v in r.violations] == ["DPPL", "DI"]
    assert r.violations[0] == {
        "facet": "sex",
        "facet_value": "female",
        "metric_name": "DPPL",
        "constraint_check_type": "bias_drift_check",
        "description": "Value -0.3 does not meet the constraint requirement",
        "explanation": "baseline rule: farther from the ideal than the baseline 0.2",
        "baseline": 0.2,
        "current": -0.3,
        "current_interval": None,
        "rule": {"name": "baseline"},
    }


def test_bias_drift_infinities_nulls_and_missing():
    base = bias_doc({"DI": 1.5, "TE": "Infinity", "DCA": 0.5, "RD": None})
    cur = bias_doc({"DI": "Infinity", "TE": "-Infinity", "DCA": None, "RD": 0.2, "SD": 0.1})
    r = bias_drift(base, cur)
    status = {s["metric_name"]: s["status"] for s in r.scores}
    assert status == {"DI": "violation", "TE": "ok", "DCA": "unchecked", "RD": "unchecked", "SD": "unchecked"}
    assert [v["metric_name"] for v in r.violations] == ["DI"]


def test_bias_drift_rules_and_files(tmp_path):
    base = tmp_path / "base.json"
    base.write_text(json.dumps(bias_doc({"DPPL": 0.0, "AD": 0.5})))
    cur = bias_doc({"DPPL": 0.05, "AD": 0.6})
    r = bias_drift(base, cur, rules={"DPPL": {"lower": -0.1, "upper": 0.1}, "AD": {"upper": 0.55}})
    assert [v["metric_name"] for v in r.violations] == ["AD"]
    with pytest.raises(ValueError, match=r"rules\['AD'\]"):
        bias_drift(base, cur, rules={"AD": {"max": 1}})
    with pytest.raises(ValueError, match="baseline: file not found"):
        bias_drift(tmp_path / "nope.json", cur)
    d = r.to_dict()
    assert d["version"] == "1.0" and d["violations"] == r.violations and len(d["scores"]) == 2
