"""clarion monitor / clarion.monitor.drift_over_time: drift of new data against a baseline, per window.

The synthetic stream: a fixed block of 300 rows (seeded) is the baseline data; the new data is 10
days of it, each day the same rows (shuffled, new timestamps), so without injection every window's
counts are the baseline's counts (same metrics exactly, so the strict Clarify rule never fires).
From day 6 on, the injected stream lowers the positive rate of facet F (labels and predictions)
and shrinks feature ``a`` (the model's most important feature) to almost nothing, so the SHAP
ranking changes.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from clarion.cli import EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, main
from clarion.monitor import TABLE_COLUMNS, check_windows, drift_over_time

DAYS, INJECT_FROM, N = 10, 6, 300
START = pd.Timestamp("2026-03-01")
WINDOWS = [(START + pd.Timedelta(days=d)).isoformat() for d in range(DAYS)]

CONFIG = {
    "dataset_type": "text/csv",
    "label": "y",
    "predicted_label": "pred",
    "label_values_or_threshold": [1],
    "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
    "excluded_columns": ["sex"],
    "methods": {
        "pre_training_bias": {"methods": ["CI", "DPL", "KL", "KS"]},
        "post_training_bias": {"methods": ["DPPL", "DI", "DCA", "RD"]},
        "shap": {"baseline": [[0.0, 0.0, 0.0]], "agg_method": "mean_abs"},
    },
    "predictor": {"model_uri": "model.skops", "probability": 1},
}


def base_block(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, N))
    return pd.DataFrame(
        {
            "sex": np.where(rng.random(N) < 0.4, "F", "M"),
            "a": a,
            "b": b,
            "c": c,
            "y": (rng.random(N) < 0.5).astype(int),
            "pred": (rng.random(N) < 0.5).astype(int),
        }
    )


def injected_block(base: pd.DataFrame) -> pd.DataFrame:
    out = base.copy()
    f = np.flatnonzero(out["sex"].to_numpy() == "F")
    drop = f[: int(0.7 * len(f))]
    out.loc[drop, "y"] = 0
    out.loc[drop, "pred"] = 0
    out["a"] = out["a"] * 0.02
    return out


def stream(inject: bool, *, noisy: bool = False) -> pd.DataFrame:
    """Ten days; each day the baseline's rows (or, ``noisy``, a fresh sample of the same population)."""
    base, parts = base_block(), []
    rng = np.random.default_rng(1)
    for d in range(DAYS):
        day = base_block(100 + d) if noisy else base
        blk = injected_block(day) if inject and d >= INJECT_FROM else day
        blk = blk.sample(frac=1, random_state=d).reset_index(drop=True)
        secs = np.sort(rng.uniform(0, 86_399, len(blk)))
        blk.insert(0, "ts", START + pd.Timedelta(days=d) + pd.to_timedelta(secs, unit="s"))
        parts.append(blk)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    import clarion

    d = tmp_path_factory.mktemp("monitor")
    model = LogisticRegression()
    model.coef_ = np.array([[3.0, 1.2, 1.0]])
    model.intercept_ = np.array([0.0])
    model.classes_ = np.array([0, 1])
    model.n_features_in_ = 3
    dump(model, d / "model.skops")
    (d / "config.json").write_text(json.dumps(CONFIG))
    # without --window the timestamp column is an ordinary column: the config excludes it from the features
    (d / "config_ts.json").write_text(json.dumps({**CONFIG, "excluded_columns": ["sex", "ts"]}))
    base_block().to_csv(d / "base.csv", index=False)
    stream(False).to_csv(d / "clean.csv", index=False)
    stream(True).to_csv(d / "injected.csv", index=False)
    res = clarion.analyze(d / "config.json", d / "base.csv", output_dir=d / "baseline", progress=False)
    return {
        "dir": d,
        "baseline": res.paths["analysis"],
        "config": str(d / "config.json"),
        "analysis": res.analysis,
        "config_ts": str(d / "config_ts.json"),
    }


def cli(setup, data, out, *extra):
    d = setup["dir"]
    config = setup["config"] if "--window" in extra else setup["config_ts"]
    return main(
        [
            "monitor",
            "--baseline",
            setup["baseline"],
            "--data",
            str(d / data),
            "--config",
            config,
            "--output",
            str(d / out),
            "--quiet",
            *(() if "--rule" in extra else ("--rule", "baseline")),  # the tests below encode Clarify's rule
            *extra,
        ]
    )


# ---- the windowed API ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def injected(setup):
    d = setup["dir"]
    return drift_over_time(
        setup["baseline"],
        setup["config"],
        d / "injected.csv",
        time_column="ts",
        window="1D",
        output_dir=d / "api_injected",
    )


def test_injected_bias_flagged_exactly_from_its_window(injected):
    assert injected.flagged == WINDOWS[INJECT_FROM:]
    assert not injected.ok
    for w in WINDOWS[:INJECT_FROM]:
        assert injected.results[w].ok
        assert all(s["status"] == "ok" for s in injected.results[w].scores), w
    for w in WINDOWS[INJECT_FROM:]:
        r = injected.results[w]
        metrics = {v["metric_name"] for v in r.violations if v["constraint_check_type"] == "bias_drift_check"}
        assert {"DPL", "DPPL", "DI"} <= metrics  # the injected disparity, pre and post training
        assert "CI" not in metrics  # the facet's share of rows did not change
        shap = [v for v in r.violations if v["constraint_check_type"] == "feature_attribution_drift_check"]
        assert [v["label"] for v in shap] == ["label0"]
    # the whole new data is checked too
    assert not injected.overall.ok


def test_window_numbers_are_the_engines_on_the_window_rows(setup, injected):
    """Per-window bias = clarion.bias.report on that day's rows; per-window SHAP = mean |local| of them."""
    from clarion import bias

    d = setup["dir"]
    data = pd.read_csv(d / "injected.csv", parse_dates=["ts"])
    day = data["ts"].dt.floor("1D")
    local = pd.read_csv(injected.output.paths["local_shap"])
    assert len(local) == len(data)
    for k in (0, INJECT_FROM, DAYS - 1):
        w = WINDOWS[k]
        rows = data[day == pd.Timestamp(w)]
        ref = bias.report(
            rows,
            label="y",
            facet="sex",
            facet_values=["F"],
            label_values=[1],
            predicted_label="pred",
            methods=["CI", "DPL", "KL", "KS", "DPPL", "DI", "DCA", "RD"],
        ).to_dict()
        for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
            assert injected.windows[w][stage] == ref[stage]
        g = injected.windows[w]["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
        loc = local[(day == pd.Timestamp(w)).to_numpy()]
        for f in ("a", "b", "c"):
            assert g[f] == pytest.approx(loc[f"{f}_label0"].abs().mean(), rel=1e-12)
    assert injected.n_rows == {w: N for w in WINDOWS}


def test_table_structure(injected):
    t = injected.table
    assert tuple(t.columns) == TABLE_COLUMNS
    assert sorted(t["window"].unique()) == [pd.Timestamp(w) for w in WINDOWS]
    assert set(t["check"]) == {"bias_drift_check", "feature_attribution_drift_check"}
    bias = t[t["check"] == "bias_drift_check"]
    assert len(bias) == DAYS * 8  # 8 metrics, one facet value
    assert set(bias["status"]) == {"ok", "violation"}
    nd = t[t["metric"] == "NDCG"].set_index("window")
    assert list(nd.loc[[pd.Timestamp(w) for w in WINDOWS[:INJECT_FROM]], "value"]) == [1.0] * INJECT_FROM
    assert (nd.loc[[pd.Timestamp(w) for w in WINDOWS[INJECT_FROM:]], "value"] < 0.9).all()
    feats = t[t["metric"] == "global_shap_value"]
    assert len(feats) == DAYS * 3 and feats["status"].isna().all()
    assert (t["n_rows"] == N).all()


def test_unchanged_stream_is_never_flagged(setup):
    d = setup["dir"]
    r = drift_over_time(setup["baseline"], setup["config"], d / "clean.csv", time_column="ts", window="1D")
    assert r.ok and r.flagged == [] and r.overall.ok
    assert set(r.table["status"].dropna()) == {"ok"}


#: absolute bounds for sampling noise (300 rows a day, 40 % in facet F): about 2.5 standard errors
NOISE_RULES = {
    "CI": {"lower": 0.05, "upper": 0.35},
    "DPL": {"lower": -0.2, "upper": 0.2},
    "KL": {"upper": 0.1},
    "KS": {"upper": 0.2},
    "DPPL": {"lower": -0.2, "upper": 0.2},
    "DI": {"lower": 0.6, "upper": 1.6},
    "DCA": {"lower": -0.3, "upper": 0.3},
    "RD": {"lower": -0.3, "upper": 0.3},
}


@pytest.mark.parametrize("inject", [False, True])
def test_independent_daily_samples_with_bounds(setup, tmp_path, inject):
    """Each day a fresh sample of the population: with bounds that allow for sampling noise (rules),
    unchanged days are never flagged and the injected bias is flagged exactly from its day."""
    p = tmp_path / "noisy.csv"
    stream(inject, noisy=True).to_csv(p, index=False)
    r = drift_over_time(setup["baseline"], setup["config"], p, time_column="ts", window="1D", rules=NOISE_RULES)
    assert r.flagged == (WINDOWS[INJECT_FROM:] if inject else [])
    bias = r.table[r.table["check"] == "bias_drift_check"]
    assert set(bias["status"]) == ({"ok", "violation"} if inject else {"ok"})
    days = bias["window"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    assert set(days[bias["status"] == "violation"]) == set(WINDOWS[INJECT_FROM:] if inject else [])
    nd = r.table[r.table["metric"] == "NDCG"]
    assert (nd["value"] > 0.95).sum() == (INJECT_FROM if inject else DAYS)


def test_check_windows_on_documents(setup):
    base = setup["analysis"]
    worse = json.loads(json.dumps(base))
    m = next(m for m in worse["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"] if m["name"] == "DPPL")
    m["value"] = (abs(m["value"]) + 0.5) * (1 if m["value"] >= 0 else -1)
    r = check_windows(base, {WINDOWS[1]: worse, WINDOWS[0]: base}, n_rows={WINDOWS[0]: 5, WINDOWS[1]: 6})
    assert r.flagged == [WINDOWS[1]]
    assert [v["metric_name"] for v in r.results[WINDOWS[1]].violations] == ["DPPL"]
    assert r.to_dict()["violations"] == [{**r.results[WINDOWS[1]].violations[0], "window": WINDOWS[1]}]
    assert list(r.table["n_rows"].unique()) == [5, 6]
    with pytest.raises(ValueError, match="not a timestamp"):
        check_windows(base, {"yesterday": base})


# ---- the command line --------------------------------------------------------------------------------


def test_cli_exit_codes(setup, capsys):
    assert cli(setup, "clean.csv", "c1", "--time-column", "ts", "--window", "1D") == EXIT_OK
    assert cli(setup, "clean.csv", "c2") == EXIT_OK
    assert cli(setup, "injected.csv", "c3", "--time-column", "ts", "--window", "1D") == EXIT_VIOLATIONS
    assert cli(setup, "injected.csv", "c4") == EXIT_VIOLATIONS
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--window", "1D"], "--time-column and --window go together"),
        (["--time-column", "ts", "--window", "2ME"], "not a multiple"),
        (["--time-column", "ts", "--window", "fortnight"], "not a pandas frequency"),
        (["--time-column", "when", "--window", "1D"], "column 'when' not found"),
        (["--time-column", "y", "--window", "1D"], "is the label column"),
        (["--threshold", "1.5"], "--threshold"),
    ],
)
def test_cli_bad_input(setup, capsys, extra, message):
    assert cli(setup, "clean.csv", "bad", "--overwrite", *extra) == EXIT_ERROR
    assert message in capsys.readouterr().err


def test_cli_bad_baseline(setup, capsys, tmp_path):
    d = setup["dir"]
    args = ["monitor", "--data", str(d / "clean.csv"), "--config", setup["config"], "--quiet"]
    assert main([*args, "--baseline", str(tmp_path / "none.json"), "--output", str(tmp_path / "o1")]) == EXIT_ERROR
    assert "baseline: file not found" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{not json")
    assert main([*args, "--baseline", str(tmp_path / "broken.json"), "--output", str(tmp_path / "o2")]) == EXIT_ERROR
    assert "is not valid JSON" in capsys.readouterr().err
    no_shap = {k: v for k, v in setup["analysis"].items() if k != "explanations"}
    (tmp_path / "no_shap.json").write_text(json.dumps(no_shap))
    assert main([*args, "--baseline", str(tmp_path / "no_shap.json"), "--output", str(tmp_path / "o3")]) == EXIT_ERROR
    assert "no explanations.kernel_shap" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()  # refused before the analysis ran
    (tmp_path / "rules.json").write_text(json.dumps({"DPPL": {"lower": "low"}}))
    assert (
        main(
            [
                *args,
                "--baseline",
                setup["baseline"],
                "--output",
                str(tmp_path / "o4"),
                "--rules",
                str(tmp_path / "rules.json"),
            ]
        )
        == EXIT_ERROR
    )
    assert "rules['DPPL']" in capsys.readouterr().err


def test_cli_written_files(setup):
    d = setup["dir"]
    assert cli(setup, "injected.csv", "files", "--time-column", "ts", "--window", "1D") == EXIT_VIOLATIONS
    out = d / "files"
    for name in (
        "analysis.json",
        "analysis_config.json",
        "constraint_violations.json",
        "drift_over_time.csv",
        "drift_over_time.parquet",
        "analysis_by_window.json",
        "report.html",
        "report.md",
    ):
        assert (out / name).is_file(), name
    cv = json.loads((out / "constraint_violations.json").read_text())
    assert cv["version"] == "1.0" and set(cv) == {"version", "violations", "scores", "window_scores", "window"}
    overall = [v for v in cv["violations"] if "window" not in v]
    windowed = [v for v in cv["violations"] if "window" in v]
    assert overall and sorted({v["window"] for v in windowed}) == WINDOWS[INJECT_FROM:]
    for v in cv["violations"]:
        if v["constraint_check_type"] == "bias_drift_check":
            assert set(v) - {"window"} == {
                "facet",
                "facet_value",
                "metric_name",
                "constraint_check_type",
                "description",
                "explanation",
                "baseline",
                "current",
                "current_interval",
                "rule",
            }
            assert v["rule"] == {"name": "baseline"} and v["current_interval"] is None
            assert v["description"].startswith("Value ") and v["facet"] == "sex" and v["facet_value"] == "F"
        else:
            assert v["constraint_check_type"] == "feature_attribution_drift_check"
            assert set(v) - {"window"} == {
                "label",
                "metric_name",
                "constraint_check_type",
                "description",
                "explanation",
                "baseline",
                "current",
                "current_interval",
                "rule",
            }
            assert v["rule"] == {"name": "ndcg_threshold", "threshold": 0.9} and v["baseline"] == 1.0
            assert v["metric_name"] == "shap"
    assert sorted(cv["window_scores"]) == WINDOWS
    csv = pd.read_csv(out / "drift_over_time.csv", parse_dates=["window"])
    pq = pd.read_parquet(out / "drift_over_time.parquet")
    assert tuple(csv.columns) == tuple(pq.columns) == TABLE_COLUMNS
    assert len(csv) == len(pq) == DAYS * (8 + 3 + 1)
    np.testing.assert_allclose(csv["value"].to_numpy(), pq["value"].to_numpy(), rtol=1e-12)
    by_window = json.loads((out / "analysis_by_window.json").read_text())
    assert sorted(by_window) == WINDOWS and by_window[WINDOWS[0]]["n_rows"] == N
    assert set(by_window[WINDOWS[0]]["analysis"]) == {
        "version",
        "pre_training_bias_metrics",
        "post_training_bias_metrics",
        "explanations",
    }
    cfg = json.loads((out / "analysis_config.json").read_text())
    assert "ts" in cfg["excluded_columns"]  # the time column is never a model feature
    html = (out / "report.html").read_text()
    assert html.index("Drift against the baseline") < html.index("</main>")
    assert html.count('class="drift"') == 8 + 2  # one chart per bias metric, NDCG and SHAP values per label
    assert html.count('class="baseline"') >= 8 + 1 + 3
    assert "2026-03-07" in html
    md = (out / "report.md").read_text()
    assert "## Drift against the baseline" in md and f"first {WINDOWS[INJECT_FROM]}" in md


def test_cli_overwrite_replaces_previous_run(setup):
    d = setup["dir"]
    assert cli(setup, "injected.csv", "again", "--time-column", "ts", "--window", "1D") == EXIT_VIOLATIONS
    assert cli(setup, "clean.csv", "again") == EXIT_ERROR  # not empty, no --overwrite
    assert cli(setup, "clean.csv", "again", "--overwrite") == EXIT_OK
    out = d / "again"
    assert not (out / "drift_over_time.csv").exists() and not (out / "analysis_by_window.json").exists()
    assert json.loads((out / "constraint_violations.json").read_text())["violations"] == []


def test_clarify_shaped_baseline(setup, tmp_path):
    """A baseline as SageMaker Clarify writes it: strings for infinities, null + error for a failed
    metric, descriptions, label_value_or_threshold; only post-training bias and SHAP."""
    cur = setup["analysis"]
    post = {m["name"]: m["value"] for m in cur["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"]}
    clarify = {
        "version": "1.0",
        "post_training_bias_metrics": {
            "label": "y",
            "label_value_or_threshold": "1",
            "facets": {
                "sex": [
                    {
                        "value_or_threshold": "F",
                        "metrics": [
                            {
                                "name": "DCA",
                                "description": "Difference in Conditional Acceptance (DCA)",
                                "value": None,
                                "error": "Denominator is 0",
                            },
                            {"name": "DI", "description": "Disparate Impact (DI)", "value": "Infinity"},
                            {
                                "name": "DPPL",
                                "description": "Difference in Positive Proportions in Predicted Labels (DPPL)",
                                "value": post["DPPL"] * 2 if post["DPPL"] else 0.3,
                            },
                            {"name": "RD", "description": "Recall Difference (RD)", "value": 0.0},
                        ],
                    }
                ]
            },
        },
        "explanations": {
            "kernel_shap": {"label0": {"global_shap_values": {"a": 0.05, "b": 0.5, "c": 0.2}, "expected_value": 0.5}}
        },
    }
    p = tmp_path / "clarify_analysis.json"
    p.write_text(json.dumps(clarify))
    d = setup["dir"]
    code = main(
        [
            "monitor",
            "--baseline",
            str(p),
            "--data",
            str(d / "clean.csv"),
            "--config",
            setup["config_ts"],
            "--output",
            str(tmp_path / "out"),
            "--quiet",
            "--rule",
            "baseline",
        ]
    )
    assert code == EXIT_VIOLATIONS
    cv = json.loads((tmp_path / "out" / "constraint_violations.json").read_text())
    got = sorted((v["constraint_check_type"], v.get("metric_name")) for v in cv["violations"])
    expected = [("feature_attribution_drift_check", "shap")]  # current ranking a > b > c vs baseline b > c > a
    if post["RD"] not in (0, 0.0):
        expected.append(("bias_drift_check", "RD"))
    assert got == sorted(expected)
    status = {s["metric_name"]: s for s in cv["scores"] if "stage" in s}
    assert status["DCA"]["status"] == "unchecked" and "baseline value is null" in status["DCA"]["reason"]
    assert status["DI"]["status"] == "ok"  # nothing is farther from 1 than an infinite baseline
    assert status["DPPL"]["status"] == "ok"
    assert status["CI"]["status"] == "unchecked"  # pre-training metrics are not in this baseline
    nd = next(s for s in cv["scores"] if s.get("metric_name") == "shap")
    assert 0 < nd["ndcg"] < 0.9 and math.isfinite(nd["ndcg"])


def test_drift_chart_escapes_and_marks():
    from clarion.report.drift import time_series

    svg = time_series(
        ["2026-03-01T00:00:00", "2026-03-02T00:00:00", "<b>"],
        [[0.1, math.inf, math.nan]],
        baselines=[0.05],
        status=[["ok", "violation", None]],
        series_names=["<i>x</i>"],
    )
    assert "<i>" not in svg and "&lt;i&gt;" in svg and "<b>" not in svg
    assert svg.count('class="baseline"') == 1 and "stroke-dasharray" in svg
    assert 'class="pt violation"' in svg  # the infinite value, on the edge, in red
    assert svg.count("<circle") == 1  # NaN leaves a gap
    assert os.linesep not in svg


def test_windows_same_when_streamed_with_intervals_and_time_zones(setup, tmp_path):
    """The per-window results do not depend on how the job holds the rows: SHAP streamed past a tiny
    memory budget (local values read back, not left behind), bootstrap intervals on (rows collected
    for the whole-data report, counts per window), time-zone-aware timestamps, small chunks."""
    d = setup["dir"]
    data = stream(True)
    data["ts"] = data["ts"].dt.tz_localize("UTC")
    p = tmp_path / "tz.csv"
    data.to_csv(p, index=False)
    cfg = json.loads(json.dumps(CONFIG))
    cfg["predictor"]["model_uri"] = str(d / "model.skops")
    cfg["methods"]["shap"]["save_local_shap_values"] = False
    ref = drift_over_time(setup["baseline"], cfg, p, time_column="ts", window="1D")
    cfg["methods"]["post_training_bias"].update(confidence=0.9, n_bootstrap=20)
    other = drift_over_time(
        setup["baseline"],
        cfg,
        p,
        time_column="ts",
        window="1D",
        memory_budget=20_000,
        chunk_rows=700,
        output_dir=tmp_path / "out",
    )
    assert [w.endswith("+00:00") for w in ref.flagged] == [True] * (DAYS - INJECT_FROM)
    assert other.flagged == ref.flagged and len(ref.flagged) == DAYS - INJECT_FROM
    assert any("memory budget" in n for n in other.output.notes)  # SHAP was streamed
    assert not (tmp_path / "out" / "explanations_shap" / "out.csv").exists()
    assert "ci_low" in json.dumps(other.analysis["post_training_bias_metrics"])
    a, b = ref.table, other.table
    pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
    np.testing.assert_allclose(a["value"].to_numpy(), b["value"].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize(("value", "message"), [("", "missing timestamp"), ("soon", "'soon' is not a timestamp")])
def test_bad_timestamp_is_located(setup, tmp_path, capsys, value, message):
    data = stream(False)
    data["ts"] = data["ts"].astype(str)
    data.loc[1234, "ts"] = value
    data.to_csv(tmp_path / "bad.csv", index=False)
    d = setup["dir"]
    code = main(
        [
            "monitor",
            "--baseline",
            setup["baseline"],
            "--data",
            str(tmp_path / "bad.csv"),
            "--config",
            setup["config"],
            "--output",
            str(tmp_path / "out"),
            "--quiet",
            "--time-column",
            "ts",
            "--window",
            "1D",
            "--chunk-rows",
            "1000",
        ]
    )
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"bad.csv: line {1234 + 2}, column 'ts': {message}" in err, err
    assert d.exists()


def test_drift_report_renders_in_a_real_browser(setup, browser):
    d = setup["dir"]
    assert cli(setup, "injected.csv", "browser", "--time-column", "ts", "--window", "1D") == EXIT_VIOLATIONS
    dom = browser.dom(d / "browser" / "report.html")
    assert "Drift against the baseline" in dom
    assert dom.count('class="drift"') == 10
    assert dom.count('class="pt violation"') == 8 * (DAYS - INJECT_FROM)  # 7 bias metrics (not CI) + NDCG
    img = browser.screenshot(d / "browser" / "report.html", d / "browser" / "shot.png", width=1200, height=6000)
    red = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)  # violation points
    assert red.sum() > 8 * (DAYS - INJECT_FROM) * 20
    right_margin = img[:, 1150:1185]  # nothing overflows the page horizontally
    assert (np.abs(right_margin - right_margin[0, 0]).sum(axis=2) > 60).mean() < 0.001


@pytest.mark.parametrize(
    ("window", "resample", "march_31", "length"),
    [
        ("ME", {"rule": "MS"}, "2026-03-01", pd.DateOffset(months=1)),
        ("W", {"rule": "W", "label": "left"}, "2026-03-30", pd.DateOffset(weeks=1)),
        ("QS", {"rule": "QS"}, "2026-01-01", pd.DateOffset(months=3)),
    ],
)
def test_calendar_windows(setup, tmp_path, window, resample, march_31, length):
    """Calendar windows (months, weeks ending on Sunday, quarters) hold the rows pandas' resample puts
    in the same period; their bias metrics are bias.report on those rows."""
    from clarion import bias

    rng = np.random.default_rng(5)
    data = base_block(11).iloc[:240].reset_index(drop=True)
    ts = pd.Timestamp("2026-01-20") + pd.to_timedelta(np.sort(rng.uniform(0, 100 * 86400, len(data))), unit="s")
    data.insert(0, "ts", ts)
    data.loc[5, "ts"] = pd.Timestamp("2026-03-31 23:59:59")  # the last second of a month, quarter and week
    data.to_csv(tmp_path / "cal.csv", index=False)
    r = drift_over_time(setup["baseline"], setup["config"], tmp_path / "cal.csv", time_column="ts", window=window)
    t = pd.to_datetime(data["ts"])
    counts = pd.Series(1, index=t).sort_index().resample(**resample).sum()
    counts = counts[counts > 0]
    if resample.get("label") == "left":  # weeks: resample labels (Sunday, Sunday]; the window starts on Monday
        counts.index = counts.index + pd.Timedelta(days=1)
    assert r.n_rows == {k.isoformat(): int(v) for k, v in counts.items()}
    w = pd.Timestamp(march_31).isoformat()
    rows = data[(t >= pd.Timestamp(w)) & (t < pd.Timestamp(w) + length)]
    assert len(rows) == r.n_rows[w] and 5 in rows.index
    ref = bias.report(
        rows,
        label="y",
        facet="sex",
        facet_values=["F"],
        label_values=[1],
        predicted_label="pred",
        methods=["DPPL", "DI", "DCA", "RD"],
        stage="post",
    ).to_dict()
    assert r.windows[w]["post_training_bias_metrics"] == ref["post_training_bias_metrics"]


def test_window_without_the_facet_value_is_unchecked(setup, tmp_path):
    """A window with no row of facet F cannot have F's metrics: they are null with the reason, the
    checks are 'unchecked', and no other window is affected."""
    data = stream(False)
    day3 = data["ts"].dt.floor("1D") == pd.Timestamp(WINDOWS[3])
    data = data[~(day3 & (data["sex"] == "F"))]
    data.to_csv(tmp_path / "nof.csv", index=False)
    r = drift_over_time(setup["baseline"], setup["config"], tmp_path / "nof.csv", time_column="ts", window="1D")
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        for m in r.windows[WINDOWS[3]][stage]["facets"]["sex"][0]["metrics"]:
            assert m["value"] is None and "not computable on this window's rows" in m["error"]
    bias3 = [s for s in r.results[WINDOWS[3]].scores if "stage" in s]
    assert len(bias3) == 8 and {s["status"] for s in bias3} == {"unchecked"}
    assert r.flagged == [] and all(r.results[w].ok for w in WINDOWS)
    t = r.table[(r.table["check"] == "bias_drift_check")]
    assert set(t.loc[t["window"] == pd.Timestamp(WINDOWS[3]), "status"]) == {"unchecked"}
    assert set(t.loc[t["window"] != pd.Timestamp(WINDOWS[3]), "status"]) == {"ok"}


def test_cli_endpoint_gives_the_same_checks(setup):
    """--endpoint (a model served over HTTP by clarion serve) gives the same analysis and violations
    as the model file."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    from skops.io import load

    from clarion.serve import ModelServer

    d = setup["dir"]
    model = load(d / "model.skops", trusted=["sklearn.linear_model._logistic.LogisticRegression"])
    with ModelServer(model) as url:
        assert (
            cli(setup, "injected.csv", "ep", "--time-column", "ts", "--window", "1D", "--endpoint", url)
            == EXIT_VIOLATIONS
        )
    assert cli(setup, "injected.csv", "file", "--time-column", "ts", "--window", "1D") == EXIT_VIOLATIONS
    a = json.loads((d / "ep" / "constraint_violations.json").read_text())
    b = json.loads((d / "file" / "constraint_violations.json").read_text())
    assert [(v.get("window"), v["metric_name"]) for v in a["violations"]] == [
        (v.get("window"), v["metric_name"]) for v in b["violations"]
    ]
    ta = pd.read_csv(d / "ep" / "drift_over_time.csv")
    tb = pd.read_csv(d / "file" / "drift_over_time.csv")
    np.testing.assert_allclose(ta["value"].to_numpy(), tb["value"].to_numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("only", ["bias", "shap"])
def test_bias_only_and_shap_only_configs(setup, tmp_path, only):
    d = setup["dir"]
    cfg = json.loads(json.dumps(CONFIG))
    cfg["predictor"]["model_uri"] = str(d / "model.skops")
    if only == "bias":
        del cfg["methods"]["shap"], cfg["predictor"]  # predicted labels are in the data: no model at all
    else:
        del cfg["methods"]["pre_training_bias"], cfg["methods"]["post_training_bias"]
    r = drift_over_time(setup["baseline"], cfg, d / "injected.csv", time_column="ts", window="1D")
    assert r.flagged == WINDOWS[INJECT_FROM:]
    checks = {"bias": {"bias_drift_check"}, "shap": {"feature_attribution_drift_check"}}[only]
    assert set(r.table["check"]) == checks
    assert {v["constraint_check_type"] for w in r.flagged for v in r.results[w].violations} == checks
    assert r.n_rows == {w: N for w in WINDOWS}


def test_default_interval_rule_quiet_on_fresh_samples_loud_on_injection(setup, capsys):
    """The default rule (no --rule): fresh samples of the baseline's population pass; the injected
    change is named, and the summary shows every check with baseline, current, interval and rule."""
    d = setup["dir"]
    stream(False, noisy=True).to_csv(d / "noisy.csv", index=False)
    assert cli(setup, "noisy.csv", "rule_noisy", "--rule", "interval") == EXIT_OK
    out = d / "rule_injected"
    code = main(
        [
            "monitor",
            "--baseline",
            setup["baseline"],
            "--data",
            str(d / "injected.csv"),
            "--config",
            setup["config_ts"],
            "--output",
            str(out),
        ]
    )
    assert code == EXIT_VIOLATIONS
    printed = capsys.readouterr().out
    assert "checks:" in printed and "rule interval at 99.3750%" in printed
    cv = json.loads((out / "constraint_violations.json").read_text())
    bias = [v for v in cv["violations"] if v["constraint_check_type"] == "bias_drift_check"]
    assert "DPPL" in {v["metric_name"] for v in bias}
    for v in bias:
        assert v["rule"]["name"] == "interval" and v["rule"]["confidence"] == pytest.approx(1 - 0.05 / 8)
        assert v["baseline"] is not None and len(v["current_interval"]) == 2
    assert all("current_interval" in s and "rule" in s for s in cv["scores"] if "stage" in s)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| current interval | rule |" in md and "interval at 99.3750%" in md
