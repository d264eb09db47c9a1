"""Issue 13, config part: typos are errors (item 12), numeric keys are range- and type-checked
(item 10, item 21's n_bootstrap bound), value lists have one type, and remote URIs are never
joined onto a local folder (item 22)."""

from __future__ import annotations

import copy
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clarion import config as C
from clarion.cli import EXIT_ERROR, main
from clarion.config import AnalysisConfig, ConfigError, ConfigWarning, read_config

BASE = {
    "dataset_type": "text/csv",
    "headers": ["y", "age", "sex", "income"],
    "label": "y",
    "label_values_or_threshold": [1],
    "facet": [
        {"name_or_index": "sex", "value_or_threshold": ["F"]},
        {"name_or_index": "age", "value_or_threshold": [40]},
    ],
    "group_variable": "age",
    "probability_threshold": 0.5,
    "methods": {
        "pre_training_bias": {"methods": "all"},
        "post_training_bias": {"methods": ["DPPL"], "confidence": 0.9, "n_bootstrap": 100},
        "shap": {"num_clusters": 2, "num_samples": 50, "seed": 1},
        "pdp": {"grid_resolution": 5, "top_k_features": 2},
        "report": {"name": "report", "title": "t"},
    },
    "predictor": {"model_uri": "model.skops", "probability": 1, "label_headers": ["no", "yes"]},
}


def at(path, value, base=BASE):
    """A copy of ``base`` with ``value`` at the dotted ``path`` (list indices as numbers); ``KeyError``
    deletes the key."""
    d = copy.deepcopy(base)
    *parents, last = path.split(".")
    tgt = d
    for k in parents:
        tgt = tgt[int(k)] if isinstance(tgt, list) else tgt[k]
    last = int(last) if isinstance(tgt, list) else last
    if value is KeyError:
        del tgt[last]
    else:
        tgt[last] = value
    return d


def load(d):
    """from_dict with ConfigWarnings collected (pytest turns stray warnings into errors)."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        c = AnalysisConfig.from_dict(d)
    return c, [str(w.message) for w in rec if issubclass(w.category, ConfigWarning)]


def test_base_config_loads_without_warnings():
    c, msgs = load(BASE)
    assert msgs == [] and c.probability_threshold == 0.5 and AnalysisConfig.from_dict(c.to_dict()) == c


# -- item 12: a key that is neither Clarify's nor clarion's is an error with a did-you-mean -----------


@pytest.mark.parametrize(
    ("path", "value", "suggestion"),
    [
        # the three typos: each silently changed a run (a dropped section, CDDL n/a, every
        # output explained)
        ("methods.post_trainig_bias", {"methods": "all"}, "post_training_bias"),
        ("group_varaible", "age", "group_variable"),
        ("predictor.probabilty", 1, "probability"),
        # every level
        ("labl", "y", "label"),
        ("facet.0.valu_or_threshold", ["F"], "value_or_threshold"),
        ("methods.pre_training_bias.method", "all", "methods"),
        ("methods.post_training_bias.n_boostrap", 10, "n_bootstrap"),
        ("methods.shap.num_sample", 10, "num_samples"),
        ("methods.pdp.grid_resoluton", 10, "grid_resolution"),
        ("methods.report.titel", "x", "title"),
        ("predictor.endpoint_nme", "e", "endpoint_name"),  # a SageMaker-only key is suggested too
        ("predictor.trusted_type", ["x"], "trusted_types"),  # and clarion's predictor keys
    ],
)
def test_unknown_key_is_an_error_naming_the_path_with_a_suggestion(path, value, suggestion):
    shown = re.sub(r"\.(\d+)\.", r"[\1].", path)
    msg = C.MSG_UNKNOWN.format(path=shown, hint=C.MSG_DID_YOU_MEAN.format(name=suggestion))
    assert msg.endswith(f"unknown key (did you mean '{suggestion}'?)")
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        AnalysisConfig.from_dict(at(path, value))


@pytest.mark.parametrize(
    ("path", "listed"),
    [
        ("colour", "dataset_type, excluded_columns, facet, features, group_variable, headers, "),
        ("methods.shap.zzz", "agg_method, baseline, estimator, features_to_explain, image_config, num_clusters, "),
    ],
)
def test_unknown_key_without_a_close_name_lists_the_keys_of_its_object(path, listed):
    with pytest.raises(ConfigError, match=f"^{re.escape(path)}: unknown key; the keys here are {listed}"):
        AnalysisConfig.from_dict(at(path, 1))


def test_unknown_key_is_exit_1_from_the_cli_and_nothing_is_written(tmp_path, capsys):
    data = tmp_path / "d.csv"
    pd.DataFrame(
        {"y": [0, 1, 1, 0], "age": [30, 50, 45, 20], "sex": list("FMFM"), "income": [1.0, 2.0, 3.0, 4.0]}
    ).to_csv(data, index=False)
    cfg = tmp_path / "c.json"
    d = at("methods", {"post_trainig_bias": {"methods": "all"}, "pre_training_bias": {"methods": "all"}})
    cfg.write_text(json.dumps(at("predictor", KeyError, d)))
    out = tmp_path / "out"
    assert main(["analyze", "--config", str(cfg), "--data", str(data), "--output", str(out), "--quiet"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "clarion analyze: error: methods.post_trainig_bias: unknown key (did you mean 'post_training_bias'?)" in err
    assert "Traceback" not in err
    assert not (out / "analysis.json").exists()


def test_predictor_keys_of_clarion_are_known():
    # trusted_types / record_template / timeout / retries are read by clarion.models and the CLI
    d = at(
        "predictor",
        dict(
            BASE["predictor"], trusted_types=["sklearn.ensemble.X"], record_template="$features", timeout=30, retries=2
        ),
    )
    _, msgs = load(d)
    assert msgs == []


# Every key of ANALYSIS_CONFIG_SCHEMA_V1_0 in the SageMaker Python SDK
# (aws/sagemaker-python-sdk, sagemaker-core/src/sagemaker/core/clarify/__init__.py, HEAD a248126),
# the schema that DataConfig, BiasConfig, ModelConfig, ModelPredictedLabelConfig, SHAPConfig,
# PDPConfig, TextConfig, ImageConfig, AsymmetricShapleyValueConfig, SegmentationConfig and
# TimeSeriesDataConfig are validated against by _AnalysisConfigGenerator before a job starts.
SDK_SCHEMA_KEYS = {
    "": [
        "version",
        "dataset_type",
        "dataset_uri",
        "headers",
        "label",
        "predicted_label",
        "features",
        "label_values_or_threshold",
        "probability_threshold",
        "segment_config",
        "facet",
        "facet_dataset_uri",
        "facet_headers",
        "predicted_label_dataset_uri",
        "predicted_label_headers",
        "excluded_columns",
        "joinsource_name_or_index",
        "group_variable",
        "time_series_data_config",
        "methods",
        "predictor",
    ],
    "facet[0]": ["name_or_index", "value_or_threshold"],
    "methods": ["shap", "pre_training_bias", "post_training_bias", "pdp", "report", "asymmetric_shapley_value"],
    "methods.shap": [
        "baseline",
        "num_clusters",
        "use_logit",
        "num_samples",
        "agg_method",
        "save_local_shap_values",
        "text_config",
        "image_config",
        "seed",
        "features_to_explain",
    ],
    "methods.pre_training_bias": ["methods"],
    "methods.post_training_bias": ["methods"],
    "methods.pdp": ["grid_resolution", "features", "top_k_features"],
    "methods.report": ["name", "title"],
    "predictor": [
        "endpoint_name",
        "endpoint_name_prefix",
        "model_name",
        "target_model",
        "instance_type",
        "initial_instance_count",
        "accelerator_type",
        "content_type",
        "accept_type",
        "label",
        "probability",
        "label_headers",
        "content_template",
        "record_template",
        "custom_attributes",
        "time_series_predictor_config",
    ],
}

SDK_CONFIG = {
    "version": "1.0",
    "dataset_type": "text/csv",
    "dataset_uri": "s3://bucket/prefix/train.csv",
    "headers": ["y", "age", "sex", "income", "id", "pred"],
    "label": "y",
    "predicted_label": "pred",
    "features": "features",
    "label_values_or_threshold": [1],
    "probability_threshold": 0.6,
    "segment_config": [
        {
            "config_name": "ages",
            "name_or_index": "age",
            "segments": [["(20, 40]"]],
            "display_aliases": ["young", "rest"],
        }
    ],
    "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
    "facet_dataset_uri": "s3://bucket/prefix/facets.csv",
    "facet_headers": ["id", "sex"],
    "predicted_label_dataset_uri": "s3://bucket/prefix/preds.csv",
    "predicted_label_headers": ["id", "pred"],
    "excluded_columns": ["id"],
    "joinsource_name_or_index": "id",
    "group_variable": "age",
    "time_series_data_config": {
        "target_time_series": "t",
        "item_id": "i",
        "timestamp": "ts",
        "related_time_series": ["r"],
        "static_covariates": ["s"],
        "dataset_format": "columns",
    },
    "methods": {
        "shap": {
            "baseline": [[30, "F", 1000.0]],
            "use_logit": False,
            "num_samples": 100,
            "agg_method": "mean_abs",
            "save_local_shap_values": True,
            "seed": 7,
            "features_to_explain": ["age", "income"],
            "text_config": {"granularity": "token", "language": "english", "max_top_tokens": 50},
            "image_config": {
                "model_type": "IMAGE_CLASSIFICATION",
                "num_segments": 20,
                "segment_compactness": 5,
                "feature_extraction_method": "segmentation",
                "max_objects": 3,
                "iou_threshold": 0.5,
                "context": 1.0,
                "debug": {"image_names": ["a.jpg"], "class_ids": [0], "sample_from": 0, "sample_to": 1},
            },
        },
        "pre_training_bias": {"methods": "all"},
        "post_training_bias": {"methods": ["DPPL", "DI"]},
        "pdp": {"grid_resolution": 15, "features": ["age"], "top_k_features": 10},
        "report": {"name": "report", "title": "Analysis Report"},
        "asymmetric_shapley_value": {"direction": "chronological", "granularity": "timewise"},
    },
    "predictor": {
        "endpoint_name": "my-endpoint",
        "endpoint_name_prefix": "sm-clarify",
        "model_name": "my-model",
        "target_model": "model.tar.gz",
        "instance_type": "ml.m5.xlarge",
        "initial_instance_count": 1,
        "accelerator_type": "ml.eia2.medium",
        "content_type": "application/json",
        "accept_type": "text/csv",
        "label": 0,
        "probability": 1,
        "label_headers": ["no", "yes"],
        "content_template": '{"instances": $records}',
        "record_template": "$features",
        "custom_attributes": "trace=1",
        "time_series_predictor_config": {"forecast": "predictions.mean"},
    },
}

SAGEMAKER_ONLY = {
    "dataset_uri",
    "facet_dataset_uri",
    "facet_headers",
    "predicted_label_dataset_uri",
    "predicted_label_headers",
    "predictor.endpoint_name",
    "predictor.endpoint_name_prefix",
    "predictor.model_name",
    "predictor.target_model",
    "predictor.instance_type",
    "predictor.initial_instance_count",
    "predictor.accelerator_type",
    "predictor.custom_attributes",
}
NOT_IMPLEMENTED = {
    "segment_config",
    "time_series_data_config",
    "methods.asymmetric_shapley_value",
    "predictor.time_series_predictor_config",
}
#: implemented for another dataset_type only: warned about and ignored with this (tabular) data
OTHER_DATA = {"methods.shap.image_config": "applies to dataset_type application/x-image only, ignored for "}


def _get(d, path):
    for k in path.replace("[0]", ".0").split(".") if path else []:
        d = d[int(k)] if isinstance(d, list) else d[k]
    return d


def test_the_sdk_config_fixture_holds_every_key_of_the_sdk_schema():
    for path, keys in SDK_SCHEMA_KEYS.items():
        got = set(_get(SDK_CONFIG, path))
        if path == "methods.shap":
            got.add("num_clusters")  # the "num_clusters" variant below (the SDK refuses it with baseline)
        assert got == set(keys), path


@pytest.mark.parametrize("variant", ["baseline", "num_clusters"])
def test_every_key_the_sdk_writes_loads(variant):
    d = copy.deepcopy(SDK_CONFIG)
    if variant == "num_clusters":  # the SDK refuses both at once (SHAPConfig), so each in turn
        del d["methods"]["shap"]["baseline"]
        d["methods"]["shap"]["num_clusters"] = 3
    # text_config is implemented and, as in the SDK, refused with features_to_explain (test_text_shap)
    del d["methods"]["shap"]["text_config"]
    c, msgs = load(d)
    warned = {m.split(":")[0] for m in msgs}
    assert warned == SAGEMAKER_ONLY | NOT_IMPLEMENTED | set(OTHER_DATA)
    for m in msgs:
        key = m.split(":")[0]
        want = (
            "SageMaker-only key, ignored by clarion; use "
            if key in SAGEMAKER_ONLY
            else OTHER_DATA.get(key, "Clarify key not supported by clarion, ignored (")
        )
        assert m.startswith(f"{key}: {want}"), m
    assert c.probability_threshold == 0.6 and c.predicted_label == "pred" and c.excluded_columns == ["id"]
    assert c.shap.features_to_explain == ["age", "income"] and c.pdp.features == ["age"]
    assert c.predictor.label_headers == ["no", "yes"]
    # SageMaker-only and not-implemented top-level keys are kept in the written config
    again, _ = load(c.to_dict())
    assert again == c and c.to_dict()["segment_config"] == d["segment_config"]


# -- item 10 (and 21's n_bootstrap): every numeric key checked for type, range and bool -------------


@pytest.mark.parametrize(
    "value", [5, -3, 1.0000001, -0.0001, math.nan, math.inf, -math.inf, True, False, "0.5", None, [0.5]]
)
def test_probability_threshold_outside_0_1_or_not_a_number_is_refused(value):
    with pytest.raises(ConfigError, match=r"^probability_threshold: expected a number in \[0, 1\], got "):
        AnalysisConfig.from_dict(at("probability_threshold", value))


@pytest.mark.parametrize("value", [0, 1, 0.0, 0.25, 1.0])
def test_probability_threshold_inside_0_1_is_kept(value):
    c = AnalysisConfig.from_dict(at("probability_threshold", value))
    assert c.probability_threshold == float(value) and type(c.probability_threshold) is float


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        # n_bootstrap: 10**12 was a MemoryError
        (
            "methods.post_training_bias.n_bootstrap",
            10**12,
            r"^methods\.post_training_bias\.n_bootstrap: expected an integer in \[10, 100,000\], got 1000000000000",
        ),
        ("methods.post_training_bias.n_bootstrap", 100_001, r"^methods\.post_training_bias\.n_bootstrap: expected"),
        ("methods.post_training_bias.n_bootstrap", 9, r"^methods\.post_training_bias\.n_bootstrap: expected"),
        ("methods.post_training_bias.n_bootstrap", True, r"^methods\.post_training_bias\.n_bootstrap: expected"),
        ("methods.post_training_bias.n_bootstrap", 100.0, r"^methods\.post_training_bias\.n_bootstrap: expected"),
        (
            "methods.post_training_bias.confidence",
            math.nan,
            r"^methods\.post_training_bias\.confidence: expected a number in \(0, 1\)",
        ),
        ("methods.post_training_bias.confidence", 1, r"^methods\.post_training_bias\.confidence: expected"),
        ("methods.post_training_bias.confidence", True, r"^methods\.post_training_bias\.confidence: expected"),
        # num_samples: one minimum, KernelShap's (2), named by key
        ("methods.shap.num_samples", 1, r"^methods\.shap\.num_samples: expected an integer in \[2, 1,000,000\]"),
        ("methods.shap.num_samples", 10**12, r"^methods\.shap\.num_samples: expected an integer in \[2, 1,000,000\]"),
        ("methods.shap.num_samples", True, r"^methods\.shap\.num_samples: expected"),
        ("methods.shap.num_samples", 50.5, r"^methods\.shap\.num_samples: expected"),
        ("methods.shap.num_clusters", 0, r"^methods\.shap\.num_clusters: expected an integer >= 1, got 0"),
        ("methods.shap.num_clusters", True, r"^methods\.shap\.num_clusters: expected an integer >= 1, got True"),
        ("methods.shap.seed", -1, r"^methods\.shap\.seed: expected an integer in \[0, "),
        ("methods.shap.seed", 2**64, r"^methods\.shap\.seed: expected an integer in \[0, "),
        ("methods.shap.seed", False, r"^methods\.shap\.seed: expected an integer in \[0, "),
        ("methods.shap.seed", 1.5, r"^methods\.shap\.seed: expected an integer in \[0, "),
        ("methods.pdp.grid_resolution", 10**12, r"^methods\.pdp\.grid_resolution: expected an integer in \[2, 1,000\]"),
        ("methods.pdp.grid_resolution", True, r"^methods\.pdp\.grid_resolution: expected"),
        ("methods.pdp.top_k_features", 0, r"^methods\.pdp\.top_k_features: expected an integer >= 1"),
        ("methods.pdp.top_k_features", True, r"^methods\.pdp\.top_k_features: expected an integer >= 1"),
        (
            "methods.shap.agg_method",
            "mean",
            (
                r"^methods\.shap\.agg_method: must be one of .*got 'mean' "
                r"\(did you mean 'median'\?\)"
            ),
        ),
        ("methods.shap.agg_method", ["mean_abs"], r"^methods\.shap\.agg_method: must be one of"),
        (
            "methods.post_training_bias.methods",
            ["DPPL", "DPPL"],
            r"^methods\.post_training_bias\.methods: duplicate entries \['DPPL'\]",
        ),
        (
            "methods.post_training_bias.methods",
            ["DPP"],
            r"^methods\.post_training_bias\.methods\[0\]: must be one of .*\(did you mean 'DPPL'\?\)",
        ),
        ("methods.pdp.features", ["age", "age"], r"^methods\.pdp\.features: duplicate entries \['age'\]"),
        (
            "methods.shap.features_to_explain",
            ["age", "income", "age"],
            r"^methods\.shap\.features_to_explain: duplicate entries \['age'\]",
        ),
        # indices: bool is not an index, an index is >= 0, a name is not empty
        ("predictor.probability", True, r"^predictor\.probability: expected a column index"),
        ("predictor.label", -1, r"^predictor\.label: expected a column index"),
        ("predictor.label", "", r"^predictor\.label: expected a column index"),
        ("label", True, r"^label: expected a column name or index"),
        ("facet.0.name_or_index", False, r"^facet\[0\]\.name_or_index: expected a column name or index"),
        ("predictor.label_headers", [True, False], r"^predictor\.label_headers: expected a non-empty list of names"),
        ("predictor.label_headers", ["yes", "yes"], r"^predictor\.label_headers: duplicate entries \['yes'\]"),
        ("predictor.content_type", "text/xml", r"^predictor\.content_type: must be one of"),
    ],
)
def test_numeric_and_name_keys_are_checked(path, value, message):
    with pytest.raises(ConfigError, match=message):
        AnalysisConfig.from_dict(at(path, value))


def test_n_bootstrap_bound_is_the_documented_one():
    c = AnalysisConfig.from_dict(at("methods.post_training_bias.n_bootstrap", C.MAX_N_BOOTSTRAP))
    assert c.post_training_bias.n_bootstrap == 100_000
    doc = (Path(__file__).parents[1] / "docs" / "config.md").read_text(encoding="utf-8")
    assert "| `n_bootstrap` | int in [10, 100,000] |" in doc


def test_clarify_spellings_are_accepted_lower_cased():
    # Clarify's schema lower-cases agg_method and content/accept types before checking them
    c = AnalysisConfig.from_dict(at("methods.shap.agg_method", "MEAN_ABS"))
    assert c.shap.agg_method == "mean_abs"
    c = AnalysisConfig.from_dict(at("predictor.content_type", "Text/CSV"))
    assert c.predictor.content_type == "text/csv"


def test_baseline_null_with_num_clusters_is_not_both():
    c = AnalysisConfig.from_dict(at("methods.shap.baseline", None))
    assert c.shap.baseline is None and c.shap.num_clusters == 2


# -- value lists: all text or all finite numbers, bool refused -------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("label_values_or_threshold", [True], r"^label_values_or_threshold\[0\]: true/false is not a value here"),
        (
            "label_values_or_threshold",
            ["yes", 1],
            (
                r"^label_values_or_threshold: values must be all text or all "
                r"numbers, got \['yes', 1\]"
            ),
        ),
        (
            "label_values_or_threshold",
            [math.nan],
            r"^label_values_or_threshold\[0\]: expected a finite number, got nan",
        ),
        (
            "label_values_or_threshold",
            [None],
            r"^label_values_or_threshold\[0\]: expected a text or a number, got None",
        ),
        ("label_values_or_threshold", [[1]], r"^label_values_or_threshold\[0\]: expected a text or a number"),
        ("label_values_or_threshold", "1", r"^label_values_or_threshold: expected a non-empty list"),
        ("facet.1.value_or_threshold", [math.inf], r"^facet\[1\]\.value_or_threshold\[0\]: expected a finite number"),
        ("facet.1.value_or_threshold", [-math.inf], r"^facet\[1\]\.value_or_threshold\[0\]: expected a finite number"),
        ("facet.1.value_or_threshold", [math.nan], r"^facet\[1\]\.value_or_threshold\[0\]: expected a finite number"),
        ("facet.0.value_or_threshold", ["F", False], r"^facet\[0\]\.value_or_threshold\[1\]: true/false is not"),
        ("facet.0.value_or_threshold", ["F", 2], r"^facet\[0\]\.value_or_threshold: values must be all text or"),
    ],
)
def test_value_lists_have_one_type(path, value, message):
    with pytest.raises(ConfigError, match=message):
        AnalysisConfig.from_dict(at(path, value))


def test_value_lists_accept_ints_and_floats_and_numpy_numbers():
    c = AnalysisConfig.from_dict(at("label_values_or_threshold", [np.int64(1), 2.5, np.float64(3.0)]))
    assert c.label_values_or_threshold == [1, 2.5, 3.0]
    assert [type(v) for v in c.label_values_or_threshold] == [int, float, float]
    json.dumps(c.to_dict())  # writable: no numpy scalar left


def test_nan_threshold_in_a_json_file_is_refused(tmp_path):
    p = tmp_path / "c.json"  # Python's json reads NaN / Infinity literals
    p.write_text(json.dumps(BASE).replace('"value_or_threshold": [40]', '"value_or_threshold": [NaN]'))
    with pytest.raises(ConfigError, match=r"^facet\[1\]\.value_or_threshold\[0\]: expected a finite number, got nan"):
        read_config(p)


# -- item 22: a remote URI in a path-valued key is not joined onto the config's folder ---------------


@pytest.mark.parametrize(
    "uri", ["s3://bucket/baseline.csv", "https://host/b.csv", "gs://b/x.csv", "file:///tmp/b.csv", "S3://bucket/b.csv"]
)
def test_remote_baseline_is_refused_naming_the_key(uri):
    d = at("methods.shap", {"baseline": uri})
    with pytest.raises(
        ConfigError,
        match=r"^methods\.shap\.baseline: '.*' is a remote URI; clarion reads local "
        r"files only",
    ):
        AnalysisConfig.from_dict(d)


@pytest.mark.parametrize("uri", ["s3://bucket/model.tar.gz", "https://host/model.onnx"])
def test_remote_model_uri_is_refused_naming_the_key(uri):
    with pytest.raises(
        ConfigError, match=r"^predictor\.model_uri: '.*' is a remote URI; .*use predictor\.endpoint_url"
    ):
        AnalysisConfig.from_dict(at("predictor.model_uri", uri))


@pytest.mark.parametrize("path", ["baseline.csv", "data/b.csv", "/abs/b.csv", "C:\\data\\b.csv", "s3_copy/b.csv"])
def test_local_baseline_paths_are_kept(path):
    c = AnalysisConfig.from_dict(at("methods.shap", {"baseline": path}))
    assert c.shap.baseline == path


def test_analyze_with_an_s3_baseline_fails_before_reading_anything(tmp_path):
    import clarion

    d = at("methods", {"shap": {"baseline": "s3://bucket/b.csv"}})
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=r"^methods\.shap\.baseline: 's3://bucket/b\.csv' is a remote URI"):
        clarion.analyze(str(cfg), str(tmp_path / "missing.csv"), output_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


# -- the same class in reading the file: nothing silently dropped, no traceback ---------------------


def test_a_key_given_twice_in_a_json_file_is_an_error(tmp_path):
    p = tmp_path / "c.json"  # json keeps the last "label" silently
    p.write_text(json.dumps(BASE)[:-1] + ', "label": "age"}')
    with pytest.raises(ConfigError, match=r"^config: .*c\.json: key 'label' appears twice in one object"):
        read_config(p)


def test_a_key_given_twice_in_a_yaml_file_is_an_error(tmp_path):
    yaml = pytest.importorskip("yaml")
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(BASE, sort_keys=False) + "label: age\n")
    with pytest.raises(ConfigError, match=r"^config: .*c\.yaml: key 'label' appears twice in one object \(line \d+\)"):
        read_config(p)
    # a YAML merge key that a key of the mapping overrides is not a duplicate
    text = yaml.safe_dump(at("methods", KeyError), sort_keys=False) + (
        "methods:\n  pre_training_bias: &m {methods: all}\n  post_training_bias:\n    <<: *m\n    methods: [DPPL]\n"
    )
    p.write_text(text)
    c = read_config(p)
    assert c.pre_training_bias.methods == "all" and c.post_training_bias.methods == ["DPPL"]


def test_a_utf8_bom_before_the_json_is_accepted(tmp_path):
    p = tmp_path / "c.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(BASE).encode())
    assert read_config(p) == AnalysisConfig.from_dict(BASE)


def test_a_binary_config_names_the_file(tmp_path):
    p = tmp_path / "c.json"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ConfigError, match=r"^config: .*c\.json is not UTF-8 text"):
        read_config(p)


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_deep_nesting_is_a_config_error_not_a_recursion_error(tmp_path, suffix):
    if suffix == "yaml":
        pytest.importorskip("yaml")
    p = tmp_path / f"c.{suffix}"
    p.write_text('{"dataset_type": "text/csv", "segment_config": ' + "[" * 10_000 + "]" * 10_000 + "}")
    with pytest.raises(ConfigError, match=r"^config: nested deeper than 64 levels"):
        read_config(p)
    d = {"dataset_type": "text/csv", "segment_config": [[[[]]]]}
    for _ in range(70):
        d["segment_config"] = [d["segment_config"]]
    with pytest.raises(ConfigError, match=r"^config: nested deeper than 64 levels"):
        AnalysisConfig.from_dict(d)


def test_headers_must_be_non_empty_names():
    for h in ([], ["y", ""], ["y", 1]):
        with pytest.raises(ConfigError, match=r"^headers: expected a non-empty list of non-empty strings"):
            AnalysisConfig.from_dict(at("headers", h))


# -- bounded fuzz: any JSON value at any key either loads (and round-trips) or is a ConfigError -----


def _paths(d, prefix=""):
    for k, v in d.items():
        p = f"{prefix}.{k}" if prefix else k
        yield p
        if isinstance(v, dict):
            yield from _paths(v, p)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for i, x in enumerate(v):
                yield from _paths(x, f"{p}.{i}")


def test_fuzz_any_value_at_any_key_is_loaded_or_a_config_error():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats()
        | st.text(max_size=8)
        | st.sampled_from(["all", "s3://b/k", "age", "sex", "mean_abs", "text/csv", "$features", ""]),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    )
    paths = sorted(set(_paths(BASE)) | set(_paths(SDK_CONFIG)))

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(paths), json_values, st.booleans())
    def check(path, value, sdk):
        base = SDK_CONFIG if sdk else BASE
        try:
            d = at(path, value, base)
        except (KeyError, IndexError, TypeError):
            return  # the path is not in this base
        try:
            c, _ = load(d)
        except ConfigError:
            return
        again, _ = load(c.to_dict())
        assert again == c

    check()


# -- item 12, the rest of the config part: a JMESPath with a local model selects nothing ------------


@pytest.mark.parametrize("key", ["probability", "label"])
def test_a_jmespath_with_a_local_model_file_is_a_config_error(key):
    d = at(f"predictor.{key}", "score")
    with pytest.raises(
        ConfigError,
        match=rf"^predictor\.{key}: 'score' is a JMESPath, which selects from an "
        r"endpoint's JSON response, but a local model returns an array",
    ):
        AnalysisConfig.from_dict(d)
    # with an endpoint it is what Clarify means
    ok = at(
        "predictor",
        {"endpoint_url": "http://localhost:8080/invocations", "accept_type": "application/json", key: "score"},
    )
    assert getattr(AnalysisConfig.from_dict(ok).predictor, key) == "score"


def test_a_jmespath_with_a_model_passed_to_analyze_is_an_error_not_every_output(tmp_path):
    import clarion

    data = tmp_path / "d.csv"
    pd.DataFrame({"y": [0, 1, 1, 0] * 5, "age": list(range(20)), "sex": list("FMFM") * 5}).to_csv(data, index=False)
    d = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
        "methods": {"post_training_bias": {"methods": ["DPPL"]}},
        "predictor": {"endpoint_url": "http://localhost:1/invocations", "probability": "score"},
    }
    d["predictor"].pop("endpoint_url")  # a config written for an endpoint, run with a local model

    def model(X):
        p = np.asarray(X["age"], dtype=float) / 20
        return np.column_stack([1 - p, p])

    with pytest.raises(ValueError, match=r"^predictor\.probability: 'score' is a JMESPath"):
        clarion.analyze(d, str(data), model=model, output_dir=tmp_path / "out", progress=False)


def test_a_value_json_cannot_write_is_refused_when_read_not_when_results_are_written(tmp_path):
    pytest.importorskip("yaml")
    p = tmp_path / "c.yaml"  # YAML reads 2024-01-01 as a date, which analysis_config.json cannot hold
    p.write_text("dataset_uri: 2024-01-01\ndataset_type: text/csv\nmethods: {shap: {}}\n")
    with pytest.raises(
        ConfigError,
        match=r"^dataset_uri: expected a JSON value \(text, number, true/false, null, "
        r"list or object\), got datetime\.date\(2024, 1, 1\)",
    ):
        read_config(p)
    with pytest.raises(ConfigError, match=r"^segment_config\[0\]\.when: expected a JSON value"):
        AnalysisConfig.from_dict(at("segment_config", [{"when": {1, 2}}], SDK_CONFIG))


def test_numpy_numbers_in_a_dict_config_are_read_as_python_numbers(tmp_path):
    d = at("facet.1.name_or_index", np.int64(1))
    d = at("methods.shap.num_samples", np.int32(60), d)
    d = at("probability_threshold", np.float32(0.25), d)
    d = at("methods.shap.use_logit", np.bool_(True), d)
    c = AnalysisConfig.from_dict(d)
    assert type(c.facet[1].name_or_index) is int and type(c.shap.num_samples) is int
    assert c.probability_threshold == 0.25 and c.shap.use_logit is True
    c.write(tmp_path / "c.json")  # would fail at the end of a run with a numpy scalar left in
    assert read_config(tmp_path / "c.json") == c
    assert d["facet"][1]["name_or_index"].__class__ is np.int64  # the caller's dict is not changed
