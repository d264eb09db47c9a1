"""clarion.analysis: the parts of the analysis job that stand on their own (no engine needed):
output-directory rules, located data errors, config-to-plan decisions, sampling, aggregation,
progress bars, the CLI's exit codes and ``clarion report``."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd
import pytest

from clarion import analysis as A
from clarion.cli import EXIT_ERROR, EXIT_OK, main
from clarion.dataset import DataError
from clarion.job import prepare_output_dir
from clarion.job.explain import _aggregate
from clarion.job.model import _Outputs
from clarion.job.plan import _make_plan, _negative_label, _Plan, _values_or_threshold
from clarion.job.sinks import _Sample
from clarion.job.source import _Source

EVIL = "<script>alert(1)</script>"


def bias_config(**extra):
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "methods": {"pre_training_bias": {"methods": "all"}},
    }
    cfg.update(extra)
    return cfg


def write_csv(path, n=30, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n).round(4), "g": rng.choice(["a", "b"], n), "y": rng.integers(0, 2, n)})
    df.to_csv(path, index=False)
    return df


# ---- output directory --------------------------------------------------------------------------


def test_existing_output_dir_is_refused_without_overwrite(tmp_path):
    data = tmp_path / "d.csv"
    write_csv(data)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists and is not empty.*--overwrite"):
        A.analyze(bias_config(), data, output_dir=out, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    # an existing *empty* directory is fine to write into: the refusal is about losing files
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_output_dir(str(empty), overwrite=False)


def test_overwrite_removes_only_previous_outputs(tmp_path):
    from clarion.report import missing_formats

    data = tmp_path / "d.csv"
    write_csv(data)
    out = tmp_path / "out"
    (out / "explanations_shap").mkdir(parents=True)
    (out / "explanations_shap" / "out.parquet").write_text("stale")
    (out / "analysis.json").write_text("{}")
    (out / "notes.txt").write_text("user file")
    prepare_output_dir(str(out), overwrite=True)  # a check only: nothing goes before the run succeeds
    assert (out / "analysis.json").read_text() == "{}"
    A.analyze(bias_config(), data, output_dir=out, progress=False, overwrite=True)
    optional = [f"report.{ext}" for ext in ("ipynb", "pdf") if ext not in missing_formats()]  # the report extra
    assert sorted(os.listdir(out)) == sorted(
        ["analysis.json", "analysis_config.json", "notes.txt", "report.html", "report.md", *optional]
    )
    assert (out / "notes.txt").read_text() == "user file"


def test_cli_refuses_existing_output_with_exit_code(tmp_path, capsys):
    data = tmp_path / "d.csv"
    write_csv(data)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(bias_config()))
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("")
    code = main(["analyze", "--config", str(cfg), "--data", str(data), "--output", str(out), "--quiet"])
    assert code == EXIT_ERROR
    assert "--overwrite" in capsys.readouterr().err


def test_cli_bad_config_names_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(bias_config(dataset_type="text/tsv")))
    code = main(
        ["analyze", "--config", str(cfg), "--data", str(tmp_path / "d.csv"), "--output", str(tmp_path / "o"), "--quiet"]
    )
    assert code == EXIT_ERROR
    assert "dataset_type" in capsys.readouterr().err


# ---- data errors -------------------------------------------------------------------------------


def test_malformed_row_error_names_file_line_and_column(tmp_path):
    data = tmp_path / "d.csv"
    write_csv(data, n=30)
    lines = data.read_text().splitlines()
    lines[6] = lines[6].replace(lines[6].split(",")[0], "abc", 1)  # line 7: x is not a number
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d\.csv: line 7, column 'x': 'abc' is not a number"):
        A.analyze(bias_config(), data, output_dir=tmp_path / "o", progress=False)
    lines[6] = "1.0,b"  # now a wrong field count on line 7
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d\.csv: line 7: expected 3 fields, got 2"):
        A.analyze(bias_config(), data, output_dir=tmp_path / "o2", progress=False)


def test_missing_label_is_a_malformed_row(tmp_path):
    data = tmp_path / "d.csv"
    write_csv(data, n=30)
    lines = data.read_text().splitlines()
    lines[12] = ",".join(lines[12].split(",")[:2]) + ","
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 13, column 'y': missing value"):
        A.analyze(bias_config(), data, output_dir=tmp_path / "o", progress=False)


def test_columns_named_in_the_config_must_exist(tmp_path):
    data = tmp_path / "d.csv"
    write_csv(data)
    with pytest.raises(ValueError, match=r"facet\[0\]\.name_or_index: column 'sex' not found"):
        A.analyze(bias_config(facet=[{"name_or_index": "sex"}]), data, output_dir=tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match=r"label: column index 7 is out of range for 3 columns"):
        A.analyze(bias_config(label=7), data, output_dir=tmp_path / "o2", progress=False)


def test_a_needed_model_that_is_missing_is_an_error(tmp_path):
    data = tmp_path / "d.csv"
    write_csv(data)
    cfg = bias_config(methods={"shap": {}})
    with pytest.raises(ValueError, match=r"predictor: SHAP needs a model.*--model"):
        A.analyze(cfg, data, output_dir=tmp_path / "o", progress=False)
    cfg = bias_config(methods={"post_training_bias": {"methods": ["DPPL"]}})
    with pytest.raises(ValueError, match=r"post-training bias \(no predicted_label column\) needs a model"):
        A.analyze(cfg, data, output_dir=tmp_path / "o2", progress=False)


# ---- what to compute ---------------------------------------------------------------------------


def test_plan_features_exclude_label_prediction_weights_join_and_excluded():
    from clarion.config import read_config

    cfg = read_config(
        bias_config(
            predicted_label="p",
            weights="w",
            joinsource_name_or_index="id",
            excluded_columns=[1],
            methods={"shap": {}},
            label=5,
        )
    )
    plan = _make_plan(cfg, ["id", "drop_me", "x", "g", "w", "y", "p"])
    assert plan.label == "y" and plan.predicted == "p" and plan.join == "id"
    assert plan.features == ["x", "g"]
    assert plan.need_model and not plan.need_model_rows


@pytest.mark.parametrize(
    ("values", "column", "expected"),
    [
        ([1], [0, 1, 1, 0], ([1], None)),  # a 0/1 label: equality, never "> 1"
        (["1"], [0, 1, 1, 0], ([1], None)),  # text in the config, ints in the data
        ([60], list(range(18, 90)), (None, 60.0)),  # age with many values: threshold
        ([0.5], [0.1, 0.7, 0.2], (None, 0.5)),  # a value not in the column: threshold
        (["b", "c"], ["a", "b", "c"], (["b", "c"], None)),  # categories: a union
        ([1, 2], [1, 2, 3], ([1, 2], None)),  # two numbers: always equality (Clarify)
        ([1], ["0", "1"], (["1"], None)),  # numbers in the config, text in the data
    ],
)
def test_value_or_threshold_semantics(values, column, expected):
    assert _values_or_threshold(values, pd.Series(column)) == expected


def test_negative_label_value_in_the_label_type():
    assert _negative_label(["Yes"], pd.Series(["Yes", "No"])) == "No"
    assert _negative_label(["Yes"], pd.Series(["Yes"])) == "not Yes"
    assert _negative_label([1], pd.Series([1, 1])) == 0


class _Proba:
    output_names = ["No", "Yes"]

    def predict(self, X):
        s = np.asarray(X["s"], dtype=float)
        return np.column_stack([1 - s, s])


def test_predicted_label_from_model_outputs():
    from clarion.config import read_config

    cfg = read_config(
        bias_config(methods={"post_training_bias": {}}, label_values_or_threshold=["Yes"], probability_threshold=0.6)
    )
    plan = _Plan(["s", "y"], "y", None, [], None, None, None, ["s"], label_values=["Yes"], negative_label="No")
    X = pd.DataFrame({"s": [0.1, 0.6, 0.61, 0.9]})
    out = _Outputs(cfg, _Proba(), selects_in_model=False)
    P = out.predict(X)
    # two named outputs, one of them the positive label: its score > probability_threshold
    assert out.predicted_label(P, plan).tolist() == ["No", "No", "Yes", "Yes"]
    assert out.explained(P) == [0, 1] and out.names(2) == ["label0", "label1"]
    cfg.predictor = read_config(bias_config(predictor={"probability": 1, "label_headers": ["Yes"]})).predictor
    out = _Outputs(cfg, _Proba(), selects_in_model=False)
    assert out.predicted_label(P, plan).tolist() == ["No", "No", "Yes", "Yes"]
    assert out.explained(P) == [1] and out.names(1) == ["Yes"]
    with pytest.raises(ValueError, match="model: returned 1 predictions for 2 rows"):
        _Outputs(cfg, type("M", (), {"predict": lambda self, X: np.zeros((1, 2))})(), False).predict(X.iloc[:2])


def test_sample_does_not_depend_on_chunking():
    df = pd.DataFrame({"a": np.arange(1000)})
    whole = _Sample(100, seed=3)
    whole.add(df, 0)
    chunked = _Sample(100, seed=3)
    for s in range(0, 1000, 77):
        chunked.add(df.iloc[s : s + 77], s)
    pd.testing.assert_frame_equal(whole.result(), chunked.result())
    r = whole.result()["a"].to_numpy()
    assert len(r) == 100 and np.all(np.diff(r) > 0)  # input order kept


def test_global_aggregation_formulas():
    v = np.array([[1.0, -2.0], [-3.0, 4.0], [2.0, 0.0]])
    np.testing.assert_allclose(_aggregate(v, "mean_abs"), [2.0, 2.0])
    np.testing.assert_allclose(_aggregate(v, "mean_sq"), [14 / 3, 20 / 3])
    np.testing.assert_allclose(_aggregate(v, "median"), [1.0, 0.0])


def test_parse_bytes():
    assert A.parse_bytes("1GiB") == 1 << 30
    assert A.parse_bytes("500MB") == 500_000_000
    assert A.parse_bytes(4096) == 4096
    with pytest.raises(ValueError, match="memory_budget"):
        A.parse_bytes("lots")


def test_progress_bar_non_tty_prints_one_line_per_task():
    from clarion._progress import Progress

    buf = io.StringIO()
    with Progress("SHAP", total=10, stream=buf) as p:
        for _ in range(5):
            p.update(2)
    assert buf.getvalue().count("\n") == 1 and "10/10 rows" in buf.getvalue()
    buf = io.StringIO()
    Progress("reading", stream=buf, enabled=False).update(5)
    assert buf.getvalue() == ""


# ---- clarion report ----------------------------------------------------------------------------

CLARIFY_DOC = {  # the shape SageMaker Clarify writes (spec §3), values made up
    "version": "1.0",
    "pre_training_bias_metrics": {
        "label": "approved",
        "label_value_or_threshold": "1",
        "facets": {
            EVIL: [
                {
                    "value_or_threshold": "female",
                    "metrics": [
                        {"name": "CI", "description": "Class Imbalance (CI)", "value": 0.18},
                        {
                            "name": "DPL",
                            "description": "Difference in Positive Proportions in Labels (DPL)",
                            "value": 0.072,
                        },
                    ],
                }
            ]
        },
    },
    "post_training_bias_metrics": {
        "label": "approved",
        "label_value_or_threshold": "1",
        "facets": {
            EVIL: [
                {
                    "value_or_threshold": "female",
                    "metrics": [
                        {"name": "DI", "description": "Disparate Impact (DI)", "value": "Infinity"},
                        {
                            "name": "FT",
                            "description": "Flip Test (FT)",
                            "value": None,
                            "error": "FlipTest does not support non-numeric columns",
                        },
                    ],
                }
            ]
        },
    },
    "explanations": {
        "kernel_shap": {"label0": {"global_shap_values": {"age": 0.05, "income": 0.11}, "expected_value": 0.43}},
        "pdp": [
            {
                "feature_name": "income",
                "data_type": "numerical",
                "feature_values": [1.0, 2.0],
                "model_predictions": [[0.2, 0.5]],
                "data_distribution": [0.6, 0.4],
            }
        ],
    },
}


def test_report_rerenders_a_clarify_analysis_json(tmp_path, capsys):
    p = tmp_path / "analysis.json"
    p.write_text(json.dumps(CLARIFY_DOC))
    (tmp_path / "explanations_shap").mkdir()
    pd.DataFrame({"age_label0": [0.1, -0.2], "income_label0": [0.3, 0.0]}).to_csv(
        tmp_path / "explanations_shap" / "out.csv", index=False
    )
    out = tmp_path / "r" / "report.html"
    assert main(["report", str(p), "-o", str(out), "--title", "T & T"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text()
    assert "<title>T &amp; T</title>" in html
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Flip Test" in html and "FlipTest does not support non-numeric columns" in html
    assert 'class="strip"' in html  # the local-attribution summary came from out.csv
    assert main(["report", str(p), "-o", str(tmp_path / "r.md")]) == EXIT_OK
    assert "| DI | ∞ |" in (tmp_path / "r.md").read_text()


def test_report_errors_have_exit_code(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.json")]) == EXIT_ERROR
    assert "file not found" in capsys.readouterr().err
    bad = tmp_path / "a.json"
    bad.write_text('{"foo": 1}')
    assert main(["report", str(bad)]) == EXIT_ERROR
    assert "is it an analysis.json" in capsys.readouterr().err


def test_analyze_is_a_lazy_top_level_name():
    import subprocess
    import sys

    code = (
        "import sys, clarion; assert 'clarion.analysis' not in sys.modules; "
        "from clarion.analysis import analyze; assert clarion.analyze is analyze"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    )


def test_dataframe_rows_with_a_missing_label_raise_or_are_skipped():
    from clarion.config import read_config

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": list("abab"), "y": [1, None, 0, 1]})
    src = _Source(read_config(bias_config()), df, chunk_rows=2, skip_bad_rows=False)
    src.set_required(["y"])
    with pytest.raises(DataError, match=r"<DataFrame>: row 1, column 'y': missing value"):
        list(src)
    src = _Source(read_config(bias_config()), df, chunk_rows=2, skip_bad_rows=True)
    src.set_required(["y"])
    chunks = list(src)
    assert [c.start for c in chunks] == [0, 2] and src.skipped == 1
    assert pd.concat([c.frame for c in chunks])["x"].tolist() == [1.0, 3.0, 4.0]


def test_cli_shows_config_warnings_as_plain_lines(tmp_path, capsys):
    data = tmp_path / "d.csv"
    write_csv(data)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(bias_config(dataset_uri="s3://bucket/x.csv", segment_config=[])))
    out = tmp_path / "o"
    out.mkdir()
    (out / "x").write_text("")  # refused after the config is read: no engine needed
    assert main(["analyze", "--config", str(cfg), "--data", str(data), "--output", str(out), "--quiet"]) == EXIT_ERROR
    err = capsys.readouterr().err.splitlines()
    assert (
        "clarion analyze: warning: dataset_uri: SageMaker-only key, ignored by clarion; use the --data "
        "argument (local path)" in err
    )
    assert (
        "clarion analyze: warning: segment_config: Clarify key not supported by clarion, ignored "
        "(segments are not supported yet)" in err
    )
