"""clarion.config: Clarify analysis_config.json round trip, defaults, warnings and errors."""

from __future__ import annotations

import json
import warnings

import pytest

from clarion.config import AnalysisConfig, ConfigError, ConfigWarning, read_config

EXAMPLE = {
    "version": "1.0",
    "dataset_type": "text/csv",
    "headers": ["approved", "age", "sex", "income", "region"],
    "label": "approved",
    "label_values_or_threshold": [1],
    "facet": [
        {"name_or_index": "sex", "value_or_threshold": ["female"]},
        {"name_or_index": "age", "value_or_threshold": [60]},
        {"name_or_index": "region"},
    ],
    "group_variable": "region",
    "probability_threshold": 0.5,
    "methods": {
        "pre_training_bias": {"methods": "all"},
        "post_training_bias": {"methods": ["DPPL", "DI", "AD", "FT"]},
        "shap": {
            "num_clusters": 3,
            "num_samples": 200,
            "agg_method": "mean_abs",
            "use_logit": False,
            "save_local_shap_values": True,
            "seed": 7,
        },
        "pdp": {"top_k_features": 3, "grid_resolution": 15},
        "report": {"name": "report", "title": "Loan model analysis"},
    },
    "predictor": {"model_uri": "model.json", "probability": 0},
}


def test_round_trip(tmp_path):
    c = AnalysisConfig.from_dict(EXAMPLE)
    assert c.facet[0].value_or_threshold == ["female"] and c.facet[2].value_or_threshold is None
    assert c.post_training_bias.methods == ["DPPL", "DI", "AD", "FT"]
    assert c.shap.seed == 7 and c.pdp.top_k_features == 3 and c.predictor.probability == 0
    again = AnalysisConfig.from_dict(c.to_dict())
    assert again == c
    path = tmp_path / "analysis_config.json"
    c.write(path)
    assert read_config(path) == c
    assert json.loads(path.read_text())["methods"]["shap"]["num_samples"] == 200


def test_yaml_round_trip(tmp_path):
    pytest.importorskip("yaml")
    c = AnalysisConfig.from_dict(EXAMPLE)
    path = tmp_path / "config.yaml"
    c.write(path)
    assert read_config(path) == c


def test_job_defaults_applied():
    c = AnalysisConfig.from_dict(
        {
            "dataset_type": "TEXT/CSV",
            "label": "y",
            "label_values_or_threshold": [1],
            "facet": [{"name_or_index": 0}],
            "methods": {"shap": {}, "pdp": {}, "report": {}},
        }
    )
    assert c.dataset_type == "text/csv"
    assert c.probability_threshold == 0.5
    assert c.shap.agg_method == "mean_abs" and c.shap.use_logit is False and c.shap.save_local_shap_values is True
    assert c.pdp.top_k_features == 10 and c.pdp.grid_resolution == 15
    assert c.report.name == "report"


def mutate(path, value):
    d = json.loads(json.dumps(EXAMPLE))
    keys = path.split(".")
    tgt = d
    for k in keys[:-1]:
        tgt = tgt[int(k)] if isinstance(tgt, list) else tgt[k]
    last = int(keys[-1]) if isinstance(tgt, list) else keys[-1]
    if value is KeyError:
        del tgt[last]
    else:
        tgt[last] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("dataset_type", "text/xml", r"^dataset_type: must be one of"),
        ("dataset_type", KeyError, r"^dataset_type: required"),
        ("version", "2.0", r"^version: must be one of \['1.0'\], got '2.0'"),
        ("methods", KeyError, r"^methods: required"),
        ("methods", {"report": {}}, r"^methods: no analysis method requested"),
        ("methods.shap.agg_method", "max", r"^methods.shap.agg_method: must be one of"),
        ("methods.shap.use_logit", "yes", r"^methods.shap.use_logit: expected true or false"),
        ("methods.shap.num_samples", 1, r"^methods.shap.num_samples: expected an integer in \[2, 1,000,000\]"),
        ("methods.shap.baseline", [[1, 2]], r"^methods.shap: baseline and num_clusters are mutually exclusive"),
        (
            "methods.post_training_bias.methods",
            ["DPPL", "XX"],
            r"^methods.post_training_bias.methods\[1\]: must be one of",
        ),
        ("methods.pre_training_bias.methods", "some", r"^methods.pre_training_bias.methods: must be one of"),
        ("methods.pre_training_bias.confidence", 1.5, r"^methods.pre_training_bias.confidence: expected a number"),
        ("methods.pdp.grid_resolution", 1, r"^methods.pdp.grid_resolution: expected an integer in \[2, 1,000\]"),
        ("methods.report.name", "../x", r"^methods.report.name: expected a file name"),
        ("facet.0.name_or_index", -1, r"^facet\[0\].name_or_index: expected a column name or index"),
        ("facet.1", {"value_or_threshold": [1]}, r"^facet\[1\].name_or_index: required"),
        ("label", KeyError, r"^label: required for bias metrics"),
        ("label_values_or_threshold", KeyError, r"^label_values_or_threshold: required for bias metrics"),
        ("label_values_or_threshold", [], r"^label_values_or_threshold: expected a non-empty list"),
        ("facet", [], r"^facet: required for bias metrics"),
        ("headers", ["a", "a"], r"^headers: duplicate column names \['a'\]"),
        ("probability_threshold", "0.5", r"^probability_threshold: expected a number"),
        ("predictor.content_type", "image/png", r"^predictor.content_type: must be one of"),
        ("predictor.endpoint_url", "ftp://x", r"^predictor: model_uri and endpoint_url are mutually exclusive"),
        ("predictor.content_template", "{}", r"^predictor.content_template: must contain \$features"),
    ],
)
def test_validation_errors_name_the_key(path, value, message):
    with pytest.raises(ConfigError, match=message):
        AnalysisConfig.from_dict(mutate(path, value))


def test_endpoint_url_must_be_http():
    d = mutate("predictor", {"endpoint_url": "ftp://host/x"})
    with pytest.raises(ConfigError, match=r"^predictor.endpoint_url: expected an http\(s\):// URL"):
        AnalysisConfig.from_dict(d)


def test_json_lines_needs_features():
    d = mutate("dataset_type", "application/jsonlines")
    with pytest.raises(ConfigError, match=r"^features: required for dataset_type application/jsonlines"):
        AnalysisConfig.from_dict(d)
    d["features"] = "features"
    assert AnalysisConfig.from_dict(d).features == "features"


def test_sagemaker_keys_warn_and_are_kept_out_of_the_analysis():
    # an unknown key is an error since issue 13 item 12: tests/test_trust_config.py
    d = mutate("predictor", {"model_name": "m", "instance_type": "ml.m5.large", "probability": 0})
    d["dataset_uri"] = "s3://bucket/data"
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        c = AnalysisConfig.from_dict(d)
    msgs = [str(w.message) for w in rec if issubclass(w.category, ConfigWarning)]
    assert any(
        m.startswith("predictor.model_name: SageMaker-only key, ignored by clarion; use predictor.model_uri")
        for m in msgs
    )
    assert any(m.startswith("dataset_uri: SageMaker-only key") for m in msgs)
    assert c.predictor.sagemaker == {"model_name": "m", "instance_type": "ml.m5.large"}
    assert c.to_dict()["predictor"]["model_name"] == "m"  # preserved on write


def test_read_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        read_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"dataset_type": "text/csv",\n "methods": }')
    with pytest.raises(ConfigError, match=r"is not valid JSON: line 2 column"):
        read_config(bad)
