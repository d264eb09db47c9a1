"""clarion.analyze end to end: the real demo (Toronto arrests), Clarify's analysis.json structure key
by key, bias numbers equal to clarion.bias.report, SHAP equal to KernelShap with the same seed,
chunked = whole, CSV = JSON Lines = JSON = Parquet, skipped rows, escaping, streaming past the memory
budget, and the report in a real headless browser."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from clarion import analysis as A
from clarion.cli import EXIT_OK, main
from clarion.config import POST_TRAINING_METHODS, PRE_TRAINING_METHODS

pytest.importorskip("sklearn")


def engines(*names):
    """The engine modules a test needs (skipped until their issues have landed)."""
    mods = [pytest.importorskip(f"clarion.{n}") for n in names]
    return mods[0] if len(mods) == 1 else mods


ALL = ("bias", "explain", "models")


def models_mod():
    return engines("models")


EVIL = "<script>alert(1)</script>"


# ---- helpers -----------------------------------------------------------------------------------


def assert_docs_close(a, b, path="$", rel=1e-10):
    """Same JSON structure; numbers equal to ``rel`` (SHAP batches may round differently)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_docs_close(a[k], b[k], f"{path}.{k}", rel)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_docs_close(x, y, f"{path}[{i}]", rel)
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert b == pytest.approx(a, rel=rel, abs=1e-12), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def synthetic(n=240, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    x1 = rng.normal(size=n).round(4)
    x2 = rng.integers(0, 10, n)
    logit = x1 + 0.2 * x2 - 1 + 0.8 * (g == "a")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": y})


def fit(df, features=("x1", "x2", "g")):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features = list(features)
    cat = [c for c in features if df[c].dtype == object or str(df[c].dtype).startswith("str")]
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cat)], remainder="passthrough")
    return Pipeline([("p", pre), ("m", LogisticRegression())]).fit(df[features], df["y"])


def config(**extra):
    cfg = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "methods": {
            "pre_training_bias": {"methods": "all"},
            "post_training_bias": {"methods": "all"},
            "shap": {"num_clusters": 3, "seed": 1},
            "pdp": {"top_k_features": 2, "grid_resolution": 5},
            "report": {"name": "report", "title": "synthetic"},
        },
        "predictor": {"probability": 1},
    }
    cfg.update(extra)
    return cfg


def load(out):
    return json.loads((out / "analysis.json").read_text())


# ---- the demo ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    engines(*ALL)
    pytest.importorskip("sklego")
    from clarion.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, overwrite=True, progress=False)
    return out, result


def test_demo_analysis_json_has_clarifys_structure(demo):
    out, result = demo
    doc = load(out)
    assert list(doc) == ["version", "pre_training_bias_metrics", "post_training_bias_metrics", "explanations"]
    assert doc["version"] == "1.0"
    for stage, names in (
        ("pre_training_bias_metrics", PRE_TRAINING_METHODS),
        ("post_training_bias_metrics", POST_TRAINING_METHODS),
    ):
        sec = doc[stage]
        # clarion's additions (Clarify readers ignore them): the data set's / the model's numbers
        extra = {"dataset"} if stage.startswith("pre") else {"model_performance"}
        assert set(sec) == {"label", "label_value_or_threshold", "facets"} | extra
        assert sec["label"] == "released" and sec["label_value_or_threshold"] == "Yes"
        assert list(sec["facets"]) == ["colour", "sex"]
        for facet, value in (("colour", "Black"), ("sex", "Female")):
            entries = sec["facets"][facet]
            # + the numbers behind the metrics per group (and the threshold curve of the scored model)
            extra = {"group_statistics"} | (set() if stage.startswith("pre") else {"threshold_curve"})
            assert len(entries) == 1 and set(entries[0]) == {"value_or_threshold", "metrics"} | extra
            assert entries[0]["value_or_threshold"] == value
            metrics = entries[0]["metrics"]
            assert sorted(m["name"] for m in metrics) == sorted(names)
            assert [m["name"] for m in metrics] == sorted(m["name"] for m in metrics)  # Clarify orders by name
            for m in metrics:
                assert (
                    {"name", "description", "value"}
                    <= set(m)
                    <= {"name", "description", "value", "error", "ci_low", "ci_high"}
                )
                assert isinstance(m["description"], str) and m["description"]
                v = m["value"]
                assert v in ("Infinity", "-Infinity", None) or (isinstance(v, (int, float)) and math.isfinite(v))
                assert (v is None) == ("error" in m)
    shap = doc["explanations"]["kernel_shap"]
    assert list(shap) == ["Yes"]  # predictor.label_headers names the explained output
    assert set(shap["Yes"]) == {"global_shap_values", "expected_value"}
    from clarion.demo import FEATURES

    assert sorted(shap["Yes"]["global_shap_values"]) == sorted(FEATURES)
    pdp = doc["explanations"]["pdp"]
    assert len(pdp) == 3
    top3 = sorted(shap["Yes"]["global_shap_values"].items(), key=lambda kv: -abs(kv[1]))[:3]
    assert [e["feature_name"] for e in pdp] == [k for k, _ in top3]
    for e in pdp:
        assert set(e) == {
            "feature_name",
            "data_type",
            "feature_values",
            "model_predictions",
            "label_headers",
            "data_distribution",
        }
        assert e["label_headers"] == ["Yes"]
        assert e["data_type"] in ("numerical", "categorical")
        assert len(e["model_predictions"]) == 1
        assert len(e["feature_values"]) == len(e["model_predictions"][0]) == len(e["data_distribution"])
        assert sum(e["data_distribution"]) == pytest.approx(1.0)
    # the other outputs
    local = pd.read_csv(out / "explanations_shap" / "out.csv")
    assert local.shape == (5226, len(FEATURES)) and list(local.columns) == [f"{f}_Yes" for f in FEATURES]
    assert (out / "explanations_shap" / "baseline.csv").exists()
    written = json.loads((out / "analysis_config.json").read_text())
    assert written["label"] == "released"
    if written["predictor"].get("model_uri"):  # the demo's model file reproduces the model's predictions
        from clarion.demo import load_data, train_model

        df = load_data()
        model = models_mod().as_model(str(out / written["predictor"]["model_uri"]))
        np.testing.assert_array_equal(model.predict(df[FEATURES]), train_model(df).predict_proba(df[FEATURES]))
    assert (out / "report.html").exists() and (out / "report.md").exists()
    assert result.n_rows == 5226 and result.skipped_rows == 0
    s = result.summary()
    assert s.splitlines()[-1] == f"report: {out / 'report.html'}"
    assert "largest disparities:" in s and "top features (Yes):" in s
    # the demo's model decides both ways (at 0.5 it released 97.8% of arrestees: a degenerate model)
    mp = doc["post_training_bias_metrics"]["model_performance"]
    assert 0.6 < mp["predicted_positive_rate"] < 0.9 and mp["confusion_matrix"]["TN"] > 250
    assert s.splitlines()[1].startswith("model: accuracy ") and " rows) vs " in s  # group sizes


def test_demo_bias_equals_bias_report(demo):
    out, _ = demo
    bias = engines("bias")
    from clarion.demo import FEATURES, load_data, train_model

    df = load_data()
    model = train_model(df)
    threshold = json.loads((out / "analysis_config.json").read_text())["probability_threshold"]
    pred = np.where(model.predict_proba(df[FEATURES])[:, list(model.classes_).index("Yes")] > threshold, "Yes", "No")
    data = df.assign(predicted_label=pred)
    doc = load(out)
    for sec in doc.values():  # clarion's additions (compared with clarion.bias.group_performance elsewhere)
        for entries in (sec.get("facets") or {}).values() if isinstance(sec, dict) else ():
            for e in entries:
                e.pop("group_statistics", None)
                e.pop("threshold_curve", None)
    for facet, value in (("colour", "Black"), ("sex", "Female")):
        want = bias.report(
            data,
            label="released",
            facet=facet,
            facet_values=[value],
            label_values=["Yes"],
            predicted_label="predicted_label",
            group_variable="year",
            confidence=0.95,
            n_bootstrap=200,
            seed=0,
        ).to_dict()
        want = json.loads(json.dumps(want, default=float).replace("NaN", "null"))
        for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
            got = doc[stage]["facets"][facet]
            exp = want[stage]["facets"][facet]
            assert_docs_close(exp, got, f"{stage}.{facet}", rel=1e-12)


def test_demo_shap_equals_kernel_shap_with_the_same_seed(demo):
    out, _ = demo
    explain = engines("explain")
    from clarion.demo import FEATURES, load_data, train_model

    df = load_data()
    model = train_model(df)
    pos = list(model.classes_).index("Yes")
    X = df[FEATURES]
    bg = explain.kmeans_baseline(X, 5)
    # every row is explained with the same seeded plan, so a slice of rows (kept short for speed,
    # from the middle of the file) must match the same rows of out.csv
    rows = slice(2000, 2800)
    e = explain.KernelShap(lambda Z: model.predict_proba(Z)[:, pos], bg, seed=0).explain(X.iloc[rows])
    local = pd.read_csv(out / "explanations_shap" / "out.csv")
    names = list(e.feature_names)
    want = np.asarray(e.values)[:, [names.index(f) for f in FEATURES]]
    np.testing.assert_allclose(local.iloc[rows].to_numpy(), want, rtol=1e-9, atol=1e-12)
    block = load(out)["explanations"]["kernel_shap"]["Yes"]
    assert block["expected_value"] == pytest.approx(float(np.ravel(e.expected_value)[0]), rel=1e-12)
    # global values: Clarify's mean_abs over every record of out.csv
    for f in FEATURES:
        assert block["global_shap_values"][f] == pytest.approx(float(local[f"{f}_Yes"].abs().mean()), rel=1e-9)


def test_demo_report_renders_in_a_real_browser(demo, browser):
    out, _ = demo
    dom = browser.dom(out / "report.html")
    assert "Toronto arrests" in dom
    assert "Pre-training bias" in dom and "Post-training bias" in dom
    assert "Feature attributions" in dom and "Partial dependence" in dom
    assert dom.count('class="track"') >= 2 * 21  # one metric track per metric and facet
    assert dom.count('class="pdp"') == 3 and 'class="strip"' in dom and 'class="bars"' in dom
    img = browser.screenshot(out / "report.html", out / "shot.png", width=1200, height=7000)
    # the charts are drawn: blue SHAP bars and PDP lines, green ideal-value marks, grey distributions
    blue = (img[..., 2] > 200) & (img[..., 0] < 80) & (img[..., 1] < 130)
    green = (img[..., 1] > 120) & (img[..., 0] < 30) & (img[..., 2] < 130)
    assert blue.sum() > 5000 and green.sum() > 200
    # nothing overflows the page horizontally (long error texts wrap)
    right_margin = img[:, 1150:1185]
    assert (np.abs(right_margin - right_margin[0, 0]).sum(axis=2) > 60).mean() < 0.001


# ---- synthetic data: chunking, formats, errors -------------------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    df = synthetic()
    df.to_csv(d / "data.csv", index=False)
    return d, df, fit(df)


def test_chunked_csv_equals_whole(synth, tmp_path):
    engines(*ALL)
    d, df, model = synth
    whole = A.analyze(config(), d / "data.csv", model=model, output_dir=tmp_path / "whole", progress=False)
    chunked = A.analyze(
        config(), d / "data.csv", model=model, output_dir=tmp_path / "chunked", progress=False, chunk_rows=7
    )
    assert_docs_close(whole.analysis, chunked.analysis)
    a = pd.read_csv(tmp_path / "whole" / "explanations_shap" / "out.csv")
    b = pd.read_csv(tmp_path / "chunked" / "explanations_shap" / "out.csv")
    pd.testing.assert_frame_equal(a, b, rtol=1e-10)
    assert len(a) == len(df)
    # and a DataFrame in memory gives the same document
    mem = A.analyze(config(), df, model=model, output_dir=tmp_path / "mem", progress=False)
    assert_docs_close(whole.analysis, mem.analysis)


def test_jsonlines_json_and_parquet_equal_csv(synth, tmp_path):
    engines(*ALL)
    d, df, model = synth
    csv = A.analyze(config(), d / "data.csv", model=model, output_dir=tmp_path / "csv", progress=False)
    jl = tmp_path / "data.jsonl"
    with open(jl, "w") as fh:
        fh.writelines(
            json.dumps({"features": [r.x1, int(r.x2), r.g], "label": int(r.y)}) + "\n"
            for r in df.itertuples(index=False)
        )
    cfg = config(
        dataset_type="application/jsonlines", features="features", label="label", headers=["x1", "x2", "g", "y"]
    )
    got = A.analyze(cfg, jl, model=model, output_dir=tmp_path / "jl", progress=False, chunk_rows=50)
    assert_docs_close(csv.analysis, got.analysis)
    js = tmp_path / "data.json"  # tabular JSON: JMESPaths select the feature rows and the labels
    js.write_text(
        json.dumps(
            {"rows": [[r.x1, int(r.x2), r.g] for r in df.itertuples(index=False)], "labels": [int(v) for v in df["y"]]}
        )
    )
    cfg = config(dataset_type="application/json", features="rows", label="labels", headers=["x1", "x2", "g", "y"])
    got = A.analyze(cfg, js, model=model, output_dir=tmp_path / "js", progress=False, chunk_rows=64)
    assert_docs_close(csv.analysis, got.analysis)
    pq = tmp_path / "data.parquet"
    df.to_parquet(pq)
    got = A.analyze(
        config(dataset_type="application/x-parquet"),
        pq,
        model=model,
        output_dir=tmp_path / "pq",
        progress=False,
        chunk_rows=64,
    )
    assert_docs_close(csv.analysis, got.analysis)
    local = pd.read_parquet(tmp_path / "pq" / "explanations_shap" / "out.parquet")
    pd.testing.assert_frame_equal(local, pd.read_csv(tmp_path / "csv" / "explanations_shap" / "out.csv"), rtol=1e-10)


def test_skip_bad_rows_counts_them_in_the_report(synth, tmp_path):
    engines("bias")
    d, df, _model = synth
    lines = (d / "data.csv").read_text().splitlines()
    lines.insert(5, "1.0,2,a")  # line 6: wrong field count
    lines.insert(9, "1.0,oops,a,1")  # line 10: unparseable number in a numeric column
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    cfg = config(methods={"pre_training_bias": {"methods": "all"}})
    with pytest.raises(ValueError, match=r"bad\.csv: line 6: expected 4 fields, got 3"):
        A.analyze(cfg, bad, output_dir=tmp_path / "o1", progress=False)
    r = A.analyze(cfg, bad, output_dir=tmp_path / "o2", progress=False, skip_bad_rows=True)
    assert r.skipped_rows == 2 and r.n_rows == len(df)
    clean = A.analyze(cfg, d / "data.csv", output_dir=tmp_path / "o3", progress=False)
    assert_docs_close(clean.analysis, r.analysis)
    assert "2 malformed rows skipped" in (tmp_path / "o2" / "report.html").read_text()
    assert "2 malformed rows skipped" in r.summary()


def test_a_column_named_like_a_script_is_escaped(tmp_path):
    engines("bias")
    df = synthetic().rename(columns={"g": EVIL})
    cfg = config(
        facet=[{"name_or_index": EVIL, "value_or_threshold": ["b"]}],
        methods={"pre_training_bias": {"methods": ["CI", "DPL"]}},
    )
    A.analyze(cfg, df, output_dir=tmp_path / "o", progress=False)
    html = (tmp_path / "o" / "report.html").read_text()
    assert EVIL not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert EVIL in load(tmp_path / "o")["pre_training_bias_metrics"]["facets"]  # the JSON keeps the real name


def test_predicted_label_column_needs_no_model(tmp_path):
    bias = engines("bias")
    df = synthetic()
    df["pred"] = (df["x1"] > 0).astype(int)
    cfg = config(predicted_label="pred", methods={"post_training_bias": {"methods": ["DPPL", "DI", "AD"]}})
    del cfg["predictor"]
    r = A.analyze(cfg, df, output_dir=tmp_path / "o", progress=False)
    want = bias.report(
        df,
        label="y",
        facet="g",
        facet_values=["b"],
        label_values=[1],
        predicted_label="pred",
        methods=["DPPL", "DI", "AD"],
        stage="post",
    ).to_dict()["post_training_bias_metrics"]
    got = json.loads(json.dumps(r.analysis["post_training_bias_metrics"]))
    # clarion's additions (tests/test_group_performance.py checks their numbers): a predicted_label
    # column gives group statistics without scores, so no threshold curve
    assert got.pop("model_performance")["rows"] == len(df)
    for e in got["facets"]["g"]:
        assert "confusion_matrix" in e.pop("group_statistics")["facet_d"] and "threshold_curve" not in e
    assert_docs_close(json.loads(json.dumps(want)), got, rel=1e-12)


def test_streaming_past_the_memory_budget_gives_the_same_numbers(synth, tmp_path):
    engines(*ALL)
    d, _df, model = synth
    bg = [[0.0, 5, "a"], [0.5, 2, "b"]]
    cfg = config()
    cfg["methods"]["shap"] = {"baseline": bg, "seed": 1}
    cfg["methods"]["post_training_bias"] = {"methods": ["DPPL", "DI", "FT"]}
    held = A.analyze(cfg, d / "data.csv", model=model, output_dir=tmp_path / "held", progress=False, chunk_rows=50)
    streamed = A.analyze(
        cfg,
        d / "data.csv",
        model=model,
        output_dir=tmp_path / "streamed",
        progress=False,
        chunk_rows=50,
        memory_budget=2000,
    )
    assert not (tmp_path / "streamed" / "explanations_shap" / "baseline.csv").exists()  # the config gave one
    a, b = held.analysis, streamed.analysis
    assert_docs_close(a["pre_training_bias_metrics"], b["pre_training_bias_metrics"])
    assert_docs_close(a["explanations"], b["explanations"])
    ft = {m["name"]: m for m in b["post_training_bias_metrics"]["facets"]["g"][0]["metrics"]}["FT"]
    assert ft["value"] is None and "memory budget" in ft["error"]
    for name in ("DPPL", "DI"):
        va = {m["name"]: m for m in a["post_training_bias_metrics"]["facets"]["g"][0]["metrics"]}[name]["value"]
        vb = {m["name"]: m for m in b["post_training_bias_metrics"]["facets"]["g"][0]["metrics"]}[name]["value"]
        assert va == vb
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "held" / "explanations_shap" / "out.csv"),
        pd.read_csv(tmp_path / "streamed" / "explanations_shap" / "out.csv"),
        rtol=1e-10,
    )
    assert any("memory budget" in n for n in streamed.notes)


def test_cli_analyze_end_to_end(synth, tmp_path, capsys):
    engines("bias")
    d, _df, _model = synth
    cfg = config(methods={"pre_training_bias": {"methods": "all"}})
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    code = main(
        [
            "analyze",
            "--config",
            str(tmp_path / "c.json"),
            "--data",
            str(d / "data.csv"),
            "--output",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    assert code == EXIT_OK and capsys.readouterr().out == ""
    code = main(
        [
            "analyze",
            "--config",
            str(tmp_path / "c.json"),
            "--data",
            str(d / "data.csv"),
            "--output",
            str(tmp_path / "o"),
            "--overwrite",
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK
    assert captured.out.strip().splitlines()[-1] == f"report: {tmp_path / 'o' / 'report.html'}"
    assert "largest disparities:" in captured.out
    assert "reading" in captured.err  # progress bars go to stderr


def test_an_endpoint_gives_the_same_analysis_as_the_model_in_process(synth, tmp_path):
    engines(*ALL)
    serve = engines("serve")
    pytest.importorskip("uvicorn")
    d, _df, model = synth
    want = A.analyze(config(), d / "data.csv", model=model, output_dir=tmp_path / "local", progress=False)
    with serve.ModelServer(model) as url:
        cfg = config(predictor={"endpoint_url": url, "probability": 1})
        got = A.analyze(cfg, d / "data.csv", output_dir=tmp_path / "endpoint", progress=False)
        # --endpoint on the command line overrides the config's predictor
        (tmp_path / "c.json").write_text(json.dumps(config()))
        code = main(
            [
                "analyze",
                "--config",
                str(tmp_path / "c.json"),
                "--data",
                str(d / "data.csv"),
                "--output",
                str(tmp_path / "cli"),
                "--endpoint",
                url,
                "--quiet",
            ]
        )
    assert code == EXIT_OK
    assert_docs_close(want.analysis, got.analysis, rel=1e-9)
    assert_docs_close(want.analysis, load(tmp_path / "cli"), rel=1e-9)
