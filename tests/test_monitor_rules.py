"""The bias-drift rules on repeated samples of one population (benchmarks/bench_monitor_rules.py,
with fewer runs): the interval rule (``clarion monitor``'s default) is quiet on unchanged data and
names a post-training change of DPPL by 0.1; Clarify's baseline rule alarms on most unchanged runs."""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np
import pytest

from clarion import monitor

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "bench_monitor_rules", os.path.join(HERE, "..", "benchmarks", "bench_monitor_rules.py")
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_interval_rule_quiet_on_unchanged_data_and_loud_on_dppl():
    res = bench.simulate(runs=12, rows=5000, seed=3)
    c = res["counts"]
    assert res["checks"] == 40 and res["confidence"] == pytest.approx(1 - 0.05 / 40)
    for rule in ("interval (baseline with intervals)", "interval (baseline without intervals)"):
        assert c["unchanged"][rule]["any"] <= 2, (rule, c)  # at most 5% expected: 0.6 of 12
        assert c["DPPL +0.1"][rule]["dppl"] >= 9, (rule, c)  # >= 90% expected (looser: 75%)
    assert c["unchanged"]["baseline (Clarify)"]["any"] >= 9, c  # the old default alarms on most runs


def test_interval_scores_carry_baseline_current_interval_and_rule(tmp_path):
    rng = np.random.default_rng(5)
    import clarion

    probe = clarion.analyze(bench.CONFIG, bench.sample(rng, 3000), output_dir=tmp_path / "p", progress=False)
    cfg, level = monitor.interval_config(bench.CONFIG, probe.analysis)
    assert cfg.pre_training_bias.confidence == level and bench.CONFIG["methods"]["pre_training_bias"] == {
        "methods": bench.PRE
    }  # the caller's config is not modified
    assert cfg.post_training_bias.n_bootstrap == monitor.interval_replicates(40)
    base = clarion.analyze(cfg, bench.sample(rng, 3000), output_dir=tmp_path / "b", progress=False).analysis
    cur = clarion.analyze(cfg, bench.sample(rng, 3000, 0.2), output_dir=tmp_path / "c", progress=False).analysis
    r = monitor.check_analysis(base, cur, rule="interval", confidence=level)
    assert len(r.scores) == 40 and {s["status"] for s in r.scores} <= {"ok", "violation"}
    for s in r.scores:
        assert s["rule"]["name"] == "interval" and s["rule"]["confidence"] == level
        assert s["rule"]["allowed_from"] == "baseline interval" and s["allowed"] == s["baseline_interval"]
        lo, hi = s["current_interval"]
        assert lo <= s["current"] <= hi or not math.isfinite(s["current"])
    dppl = [v for v in r.violations if v["metric_name"] == "DPPL" and v["facet"] == "sex"]
    assert dppl and dppl[0]["rule"]["name"] == "interval" and "does not overlap" in dppl[0]["explanation"]
    assert dppl[0]["baseline"] is not None and dppl[0]["current_interval"][0] > dppl[0]["baseline"]
    # without the baseline's intervals: A is the baseline value, C widened by sqrt(2)
    r2 = monitor.check_analysis(bench.strip_intervals(base), cur, rule="interval", confidence=level)
    for s in r2.scores:
        lo, hi = s["current_interval"]
        wlo, whi = s["rule"]["widened"]
        assert s["allowed"] == [s["baseline"], s["baseline"]]
        assert wlo == pytest.approx(s["current"] - math.sqrt(2) * (s["current"] - lo))
        assert whi == pytest.approx(s["current"] + math.sqrt(2) * (hi - s["current"]))
    # --rules bounds are the allowed range under the interval rule
    r3 = monitor.bias_drift(base, cur, rule="interval", rules={"DPPL": {"lower": -1, "upper": 1}})
    assert not [v for v in r3.violations if v["metric_name"] == "DPPL"]
    assert {s["rule"]["allowed_from"] for s in r3.scores if s["metric_name"] == "DPPL"} == {"rules"}


def test_interval_rule_without_current_intervals_is_unchecked_not_ok():
    doc = {
        "post_training_bias_metrics": {
            "facets": {"sex": [{"value_or_threshold": "F", "metrics": [{"name": "DPPL", "value": 0.3}]}]}
        }
    }
    r = monitor.bias_drift(doc, doc, rule="interval")
    assert r.ok and r.scores[0]["status"] == "unchecked" and "no bootstrap interval" in r.scores[0]["reason"]
    with pytest.raises(ValueError, match="rule must be one of"):
        monitor.bias_drift(doc, doc, rule="strict")


def test_interval_confidence_and_replicates():
    assert monitor.interval_confidence(10) == pytest.approx(0.995)
    assert monitor.interval_replicates(40) == 16000 and monitor.interval_replicates(1) == 1000
    with pytest.raises(ValueError):
        monitor.interval_confidence(3, alpha=0)
