"""Issue 13, model items: label outputs outside label_headers (7), declared model features (11),
model-only config keys (12), damaged native model files (14), whole-request endpoint timeout (18),
clear model-file / endpoint errors (21), trusted .skops types from analyze / monitor (23), and
Clarify's record_template (26)."""

from __future__ import annotations

import http.server
import json
import threading
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from clarion import analysis as A
from clarion.analysis import analyze
from clarion.cli import EXIT_ERROR, EXIT_OK, main
from clarion.config import ConfigError, read_config
from clarion.models import Endpoint, EndpointError, ModelFileError, as_model, files


@pytest.fixture(autouse=True)
def _private_model_check_cache(tmp_path, monkeypatch):
    # the on-disk record of checked model files lives in the test's folder, never in ~/.cache
    monkeypatch.setenv("CLARION_CACHE_DIR", str(tmp_path / "cache"))
    files._checked_files.clear()


def _data(path, n=60, seed=0, extra=None):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n).round(4),
            "b": rng.normal(size=n).round(4),
            "g": rng.choice([0, 1], n),
            "y": rng.integers(0, 2, n),
        }
    )
    if extra:
        for k, v in extra.items():
            df[k] = v
    df.to_csv(path, index=False)
    return df


def _post_config(**predictor):
    return {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": [1]}],
        "methods": {"post_training_bias": {"methods": ["DPPL"]}},
        "predictor": predictor,
    }


# ---- item 7: predicted labels outside label_headers -----------------------------------------------


@pytest.mark.parametrize("bad", [-1.0, 0.9, 7.0, np.nan])
def test_label_output_outside_label_headers_names_row_value_and_headers(tmp_path, bad):
    _data(tmp_path / "d.csv")

    def model(X):
        out = (np.asarray(X)[:, 0] > 0).astype(float)
        out[5] = bad  # row 5 of the data
        return out

    # the label column holds 0 / 1, so the headers are those values (a text header like "yes" would
    # be refused by the bias engine as a prediction that can never equal a label value)
    cfg = _post_config(label=0, label_headers=[0, 1])
    # (NaN is refused one step earlier, by the finite-output check of post-training bias)
    want = r"row 5 .*finite model outputs" if np.isnan(bad) else r"row 5 .*label_headers.*\[0, 1\]"
    with pytest.raises(ValueError, match=want) as info:
        analyze(cfg, tmp_path / "d.csv", model=model, output_dir=tmp_path / "out", progress=False)
    assert repr(float(bad)) in str(info.value)
    # the same model without the bad row maps through label_headers
    res = analyze(
        cfg,
        tmp_path / "d.csv",
        model=lambda X: (np.asarray(X)[:, 0] > 0).astype(float),
        output_dir=tmp_path / "ok",
        progress=False,
    )
    assert "post_training_bias_metrics" in res.analysis


def test_label_output_outside_label_headers_later_chunk_counts_rows_from_the_file_start(tmp_path):
    _data(tmp_path / "d.csv", n=50)
    calls = []

    def model(X):
        out = np.zeros(len(X))
        calls.append(len(X))
        if sum(calls) == 50:  # the last chunk: its row 3 is data row 43
            out[3] = 2.0
        return out

    with pytest.raises(ValueError, match=r"row 43 \(0-based\) is 2\.0"):
        analyze(
            _post_config(label=0, label_headers=[0, 1]),
            tmp_path / "d.csv",
            model=model,
            output_dir=tmp_path / "out",
            progress=False,
            chunk_rows=10,
        )


# ---- item 12 (model part): JMESPath with a local model, unusable label_headers --------------------


@pytest.mark.parametrize("key", ["probability", "label"])
def test_jmespath_selector_with_local_model_is_a_config_error(tmp_path, key):
    _data(tmp_path / "d.csv")
    cfg = _post_config(**{key: "predictions[0].score"})
    with pytest.raises(ConfigError, match=rf"predictor\.{key}: 'predictions\[0\]\.score' is a JMESPath"):
        analyze(
            cfg, tmp_path / "d.csv", model=lambda X: np.asarray(X)[:, :2], output_dir=tmp_path / "o", progress=False
        )


def test_label_headers_that_fit_no_output_are_a_config_error(tmp_path):
    _data(tmp_path / "d.csv")
    cfg = _post_config(label_headers=["x", "y", "z"])
    with pytest.raises(ConfigError, match=r"predictor\.label_headers: 3 names .* the model gives 2 outputs"):
        analyze(
            cfg, tmp_path / "d.csv", model=lambda X: np.asarray(X)[:, :2], output_dir=tmp_path / "o", progress=False
        )
    # with an output index, headers naming every output name the explained one
    cfg = _post_config(probability=1, label_headers=["no", "yes"])
    cfg["methods"]["shap"] = {"baseline": [[0.0, 0.0, 0]], "num_samples": 20, "seed": 0}
    res = analyze(
        cfg,
        tmp_path / "d.csv",
        model=lambda X: np.asarray(X, dtype=float)[:, :2],
        output_dir=tmp_path / "ok",
        progress=False,
    )
    assert list(res.analysis["explanations"]["kernel_shap"]) == ["yes"]


# ---- item 11: the model's declared features --------------------------------------------------------


def _sk_pipeline_by_name(train):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ct = ColumnTransformer([("num", StandardScaler(), ["a", "b", "g"])])
    return make_pipeline(ct, LogisticRegression()).fit(train[["a", "b", "g"]], train["y"])


def test_sklearn_model_with_an_extra_id_column_names_it_and_the_keys(tmp_path):
    df = _data(tmp_path / "d.csv", extra={"id": np.arange(60)})
    est = _sk_pipeline_by_name(df)
    with pytest.raises(ValueError, match=r"extra column\(s\) \['id'\].*excluded_columns.*joinsource_name_or_index"):
        analyze(_post_config(), tmp_path / "d.csv", model=est, output_dir=tmp_path / "o", progress=False)
    ok = analyze(
        {**_post_config(), "excluded_columns": ["id"]},
        tmp_path / "d.csv",
        model=est,
        output_dir=tmp_path / "ok",
        progress=False,
    )
    assert "post_training_bias_metrics" in ok.analysis
    ok = analyze(
        {**_post_config(), "joinsource_name_or_index": "id"},
        tmp_path / "d.csv",
        model=est,
        output_dir=tmp_path / "ok2",
        progress=False,
    )
    assert "post_training_bias_metrics" in ok.analysis


def test_sklearn_model_with_a_missing_column_names_it(tmp_path):
    df = _data(tmp_path / "d.csv")
    est = _sk_pipeline_by_name(df)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['b'\]"):
        analyze(
            {**_post_config(), "excluded_columns": ["b"]},
            tmp_path / "d.csv",
            model=est,
            output_dir=tmp_path / "o",
            progress=False,
        )


def test_columns_in_another_order_are_refused(tmp_path):
    df = _data(tmp_path / "d.csv")
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression().fit(df[["b", "a", "g"]], df["y"])
    with pytest.raises(ValueError, match="same columns in another order"):
        analyze(_post_config(), tmp_path / "d.csv", model=est, output_dir=tmp_path / "o", progress=False)


def test_xgboost_file_counts_features_and_names_the_key(tmp_path):
    xgb = pytest.importorskip("xgboost")
    df = _data(tmp_path / "d.csv", extra={"id": np.arange(60)})
    model = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(df[["a", "b", "g"]].to_numpy(), df["y"])
    path = tmp_path / "m.json"
    model.save_model(path)
    cfg = _post_config(model_uri=str(path))
    with pytest.raises(ValueError, match=r"1 extra column\(s\).*3 features \(no names\).*excluded_columns"):
        analyze(cfg, tmp_path / "d.csv", output_dir=tmp_path / "o", progress=False)
    ok = analyze({**cfg, "excluded_columns": ["id"]}, tmp_path / "d.csv", output_dir=tmp_path / "ok", progress=False)
    assert "post_training_bias_metrics" in ok.analysis


def test_xgboost_with_feature_names_names_the_missing_column(tmp_path):
    xgb = pytest.importorskip("xgboost")
    df = _data(tmp_path / "d.csv")
    booster = (
        xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1)
        .fit(df[["a", "b", "g"]].rename(columns={"g": "group"}), df["y"])
        .get_booster()
    )
    m = as_model(booster)
    assert m.declared_feature_names == ["a", "b", "group"] and m.declared_n_features == 3
    with pytest.raises(ValueError, match=r"extra column\(s\) \['g'\].*missing column\(s\) \['group'\]"):
        m.check_features(["a", "b", "g"])
    m.check_features(["a", "b", "group"])


def test_onnx_input_width_is_checked(tmp_path):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    df = _data(tmp_path / "d.csv", extra={"id": np.arange(60)})
    clf = LogisticRegression().fit(df[["a", "b", "g"]].to_numpy(np.float32), df["y"])
    onx = skl2onnx.convert_sklearn(
        clf, initial_types=[("X", FloatTensorType([None, 3]))], target_opset=17, options={id(clf): {"zipmap": False}}
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(onx.SerializeToString())
    cfg = _post_config(model_uri=str(path), probability=1)
    with pytest.raises(ValueError, match=r"onnx.*1 extra column\(s\).*excluded_columns"):
        analyze(cfg, tmp_path / "d.csv", output_dir=tmp_path / "o", progress=False)
    ok = analyze({**cfg, "excluded_columns": ["id"]}, tmp_path / "d.csv", output_dir=tmp_path / "ok", progress=False)
    assert "post_training_bias_metrics" in ok.analysis


def test_models_without_declared_features_are_not_checked():
    m = as_model(lambda X: np.asarray(X)[:, 0])
    assert m.declared_feature_names is None and m.declared_n_features is None
    m.check_features(["anything", "at", "all"])


# ---- item 14: damaged native model files -----------------------------------------------------------


def _xgb_ubj(path):
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1, random_state=0, tree_method="hist").fit(X, y).save_model(
        path
    )
    return path.read_bytes()


# With xgboost 3.2 these truncations of _xgb_ubj's file kill a process that loads them (SIGSEGV);
# on other versions they may only raise. Either way as_model must raise ModelFileError and live on.
CRASHING_TRUNCATIONS = (141, 351, 778)


def test_truncated_ubj_files_give_a_clear_error_and_the_process_lives(tmp_path):
    full = _xgb_ubj(tmp_path / "good.ubj")
    for k in CRASHING_TRUNCATIONS:
        bad = tmp_path / f"cut{k}.ubj"
        bad.write_bytes(full[:k])
        with pytest.raises(
            ModelFileError, match=rf"cannot load the model file '.*cut{k}\.ubj' as an xgboost model"
        ) as info:
            as_model(str(bad))
        assert info.value.path == str(bad) and "UBJSON" in str(info.value)
    m = as_model(str(tmp_path / "good.ubj"))  # still alive, and a good file loads
    assert m.predict(np.zeros((2, 4))).shape == (2, 2)


@pytest.mark.parametrize(
    "name,content,what",
    [
        ("garbage.json", b'{"learner": {"gradient_booster": [1, 2', "JSON text"),
        ("garbage.ubj", bytes(range(256)) * 4, "binary data"),
        ("empty.json", b"", "it is empty"),
        ("pickled.json", b"\x80\x04\x95" + b"\x00" * 40, "a pickle"),
    ],
)
def test_garbage_xgboost_files_name_the_file_and_what_it_holds(tmp_path, name, content, what):
    pytest.importorskip("xgboost")
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ModelFileError, match=rf"'.*{name}'.*The file holds .*{what}"):
        as_model(str(p))


def test_damaged_onnx_files_give_a_clear_error(tmp_path):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    clf = LogisticRegression().fit(X, X[:, 0] > 0)
    good = skl2onnx.convert_sklearn(
        clf, initial_types=[("X", FloatTensorType([None, 3]))], target_opset=17
    ).SerializeToString()
    for name, content in (("cut.onnx", good[: len(good) // 2]), ("noise.onnx", bytes(range(200)) * 3)):
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(ModelFileError, match=rf"cannot load the model file '.*{name}' as an ONNX model"):
            as_model(str(p))
    (tmp_path / "good.onnx").write_bytes(good)
    assert as_model(str(tmp_path / "good.onnx")).predict(X[:3]).shape == (3, 2)


def test_a_checked_file_is_not_checked_again(tmp_path, monkeypatch):
    _xgb_ubj(tmp_path / "good.ubj")
    as_model(str(tmp_path / "good.ubj"))
    runs = []
    monkeypatch.setattr(files.subprocess, "run", lambda *a, **k: runs.append(a) or pytest.fail("child again"))
    as_model(str(tmp_path / "good.ubj"))  # same process: path, size, mtime
    files._checked_files.clear()
    as_model(str(tmp_path / "good.ubj"))  # a new process: the on-disk record of the same bytes
    assert runs == []


def test_cli_reports_a_damaged_model_file_in_one_line(tmp_path, capsys):
    full = _xgb_ubj(tmp_path / "good.ubj")
    (tmp_path / "cut.ubj").write_bytes(full[: CRASHING_TRUNCATIONS[0]])
    _data(tmp_path / "d.csv", extra={"c": 0.0})
    (tmp_path / "c.json").write_text(json.dumps(_post_config(model_uri="cut.ubj")))
    rc = main(
        [
            "analyze",
            "--config",
            str(tmp_path / "c.json"),
            "--data",
            str(tmp_path / "d.csv"),
            "--output",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc == EXIT_ERROR and "cut.ubj" in err and "Traceback" not in err


# ---- item 21 (model part): files that are not what their name says ---------------------------------


def test_pickle_renamed_skops_is_refused_naming_the_file(tmp_path):
    pytest.importorskip("skops")
    import pickle

    p = tmp_path / "model.skops"
    p.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(ModelFileError, match=r"refusing to load '.*model\.skops'.*holds a pickle") as info:
        as_model(str(p))
    assert "BadZipFile" not in str(info.value)


@pytest.mark.parametrize(
    "content,why",
    [
        (b"hello, I am text", "not a ZIP archive"),
        (None, "holds a ZIP archive"),  # a ZIP without skops' schema
    ],
)
def test_other_non_skops_files_name_the_file(tmp_path, content, why):
    pytest.importorskip("skops")
    p = tmp_path / "m.skops"
    if content is None:
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("readme.txt", "no schema here")
    else:
        p.write_bytes(content)
    with pytest.raises(ModelFileError, match=rf"'.*m\.skops'.*{why}"):
        as_model(str(p))


def test_cli_pickle_renamed_skops_exit_1_one_message(tmp_path, capsys):
    import pickle

    pytest.importorskip("skops")
    (tmp_path / "m.skops").write_bytes(pickle.dumps([1, 2, 3]))
    _data(tmp_path / "d.csv")
    (tmp_path / "c.json").write_text(json.dumps(_post_config(model_uri="m.skops")))
    rc = main(
        [
            "analyze",
            "--config",
            str(tmp_path / "c.json"),
            "--data",
            str(tmp_path / "d.csv"),
            "--output",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc == EXIT_ERROR and "m.skops" in err and "pickle" in err and "Traceback" not in err


def test_endpoint_errors_are_reported_by_the_cli_in_one_line(tmp_path, capsys):
    with _server(lambda h, body: h._answer(400, b"feature count is wrong")) as url:
        _data(tmp_path / "d.csv")
        (tmp_path / "c.json").write_text(json.dumps(_post_config(endpoint_url=url)))
        rc = main(
            [
                "analyze",
                "--config",
                str(tmp_path / "c.json"),
                "--data",
                str(tmp_path / "d.csv"),
                "--output",
                str(tmp_path / "o"),
                "--quiet",
                "--retries",
                "0",
            ]
        )
    err = capsys.readouterr().err
    assert rc == EXIT_ERROR and "Traceback" not in err
    assert "answered HTTP 400 for the batch starting at row 0: feature count is wrong" in err
    assert isinstance(EndpointError("x", first_row=0, status=None, server_message=""), OSError)


# ---- HTTP servers on 127.0.0.1 --------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    respond = None  # set per server (with its own list of bodies)
    bodies: list | None = None

    def log_message(self, *args):
        pass

    def _answer(self, status, data, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).bodies.append((self.headers.get("Content-Type"), body))
        type(self).respond(self, body)


class _server:
    def __init__(self, respond):
        self.handler = type("H", (_Handler,), {"respond": staticmethod(respond), "bodies": []})

    def __enter__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/invocations"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def bodies(self):
        return self.handler.bodies


# ---- item 18: a trickling server cannot hold a batch for minutes -----------------------------------


def _trickle(h, body, total=40):
    h.send_response(200)
    h.send_header("Content-Type", "text/csv")
    h.send_header("Content-Length", str(total))
    h.end_headers()
    h.wfile.flush()
    try:
        for _ in range(total):  # one byte a second: never idle for a whole per-read timeout
            h.wfile.write(b"0")
            h.wfile.flush()
            time.sleep(1.0)
    except OSError:  # the client gave up
        pass


def test_timeout_bounds_the_whole_request_not_each_read():
    with _server(_trickle) as url:
        ep = Endpoint(url, timeout=1.5, retries=1, backoff=0.01)
        t0 = time.monotonic()
        with pytest.raises(
            EndpointError,
            match=r"after 2 attempts; last error: timed out: no complete answer "
            r"within timeout=1\.5 s",
        ):
            ep.predict(np.zeros((3, 2)))
        elapsed = time.monotonic() - t0
        ep.close()
    assert elapsed < 10, elapsed  # 2 attempts x 1.5 s (+ backoff); per-read timeouts took 40 s or more


def test_timeout_and_retries_from_config_and_cli(tmp_path):
    cfg = read_config(_post_config(endpoint_url="http://127.0.0.1:9/invocations", timeout=2.5, retries=0))
    assert (cfg.predictor.timeout, cfg.predictor.retries) == (2.5, 0)
    ep = A.endpoint_for(cfg, cfg.predictor.endpoint_url)
    assert (ep.timeout, ep.retries) == (2.5, 0)
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    from clarion.cli import _parser
    from clarion.cli._common import model_from_args

    for command in ("analyze", "monitor"):
        extra = ["--baseline", "b.json"] if command == "monitor" else []
        args = _parser(command).parse_args(
            [
                command,
                "--config",
                str(tmp_path / "c.json"),
                "--data",
                "d.csv",
                "--output",
                "o",
                *extra,
                "--timeout",
                "7",
                "--retries",
                "5",
            ]
        )
        ep = model_from_args(args)
        assert isinstance(ep, Endpoint) and (ep.timeout, ep.retries) == (7.0, 5)
    for bad in ({"timeout": 0}, {"timeout": "60"}, {"retries": -1}, {"retries": 1.5}):
        key = next(iter(bad))
        with pytest.raises(ConfigError, match=rf"predictor\.{key}"):
            read_config(_post_config(endpoint_url="http://127.0.0.1:9/invocations", **bad))


def test_trickling_server_through_analyze_cli_is_bounded(tmp_path, capsys):
    with _server(_trickle) as url:
        _data(tmp_path / "d.csv", n=5)
        (tmp_path / "c.json").write_text(json.dumps(_post_config(endpoint_url=url)))
        t0 = time.monotonic()
        rc = main(
            [
                "analyze",
                "--config",
                str(tmp_path / "c.json"),
                "--data",
                str(tmp_path / "d.csv"),
                "--output",
                str(tmp_path / "o"),
                "--quiet",
                "--timeout",
                "1",
                "--retries",
                "0",
            ]
        )
        elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert rc == EXIT_ERROR and "timed out" in err and elapsed < 15


# ---- item 23: .skops types skops does not trust by default -----------------------------------------


@pytest.fixture
def hgb_skops(tmp_path):
    sio = pytest.importorskip("skops.io")
    from sklearn.ensemble import HistGradientBoostingClassifier

    df = _data(tmp_path / "d.csv")
    est = HistGradientBoostingClassifier(max_iter=5).fit(df[["a", "b", "g"]], df["y"])
    path = tmp_path / "hgb.skops"
    sio.dump(est, path)
    types = sio.get_untrusted_types(file=path)
    assert types  # the reason for the test: skops does not trust these by default
    return path, types


def test_untrusted_skops_error_names_the_types_the_flag_and_the_key(tmp_path, hgb_skops, capsys):
    path, types = hgb_skops
    (tmp_path / "c.json").write_text(json.dumps(_post_config(model_uri=path.name)))
    base = ["analyze", "--config", str(tmp_path / "c.json"), "--data", str(tmp_path / "d.csv"), "--quiet"]
    assert main([*base, "--output", str(tmp_path / "o1")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert all(t in err for t in types) and "--trusted" in err and "predictor.trusted_types" in err
    trusted = [x for t in types for x in ("--trusted", t)]
    assert main([*base, "--output", str(tmp_path / "o2"), *trusted]) == EXIT_OK
    # --model with --trusted
    assert main([*base, "--output", str(tmp_path / "o3"), "--model", str(path), *trusted]) == EXIT_OK


def test_trusted_types_config_key(tmp_path, hgb_skops):
    path, types = hgb_skops
    cfg = _post_config(model_uri=str(path), trusted_types=types)
    res = analyze(cfg, tmp_path / "d.csv", output_dir=tmp_path / "o", progress=False)
    assert "post_training_bias_metrics" in res.analysis
    with pytest.raises(ConfigError, match=r"predictor\.trusted_types"):
        read_config(_post_config(model_uri=str(path), trusted_types="sklearn.x"))


def test_monitor_takes_trusted(tmp_path, hgb_skops, capsys):
    path, types = hgb_skops
    cfg = {**_post_config(model_uri=path.name, trusted_types=types)}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    analyze(tmp_path / "c.json", tmp_path / "d.csv", output_dir=tmp_path / "base", progress=False)
    del cfg["predictor"]["trusted_types"]
    (tmp_path / "c2.json").write_text(json.dumps(cfg))
    base = [
        "monitor",
        "--baseline",
        str(tmp_path / "base" / "analysis.json"),
        "--config",
        str(tmp_path / "c2.json"),
        "--data",
        str(tmp_path / "d.csv"),
        "--quiet",
    ]
    assert main([*base, "--output", str(tmp_path / "m1")]) == EXIT_ERROR
    assert "--trusted" in capsys.readouterr().err
    trusted = [x for t in types for x in ("--trusted", t)]
    assert main([*base, "--output", str(tmp_path / "m2"), *trusted]) == EXIT_OK


# ---- item 26: record_template -----------------------------------------------------------------------


_PRE = {
    "label_values_or_threshold": [1],
    "facet": [{"name_or_index": "A", "value_or_threshold": [1]}],
    "methods": {"pre_training_bias": {"methods": ["CI"]}},
}


def _echo_sum(h, body):
    doc = json.loads(body)
    recs = doc["instances"] if isinstance(doc, dict) and "instances" in doc else doc
    if isinstance(recs, dict):  # $record: one row per request
        recs = [recs]

    def total(v):  # every number in the record
        if isinstance(v, dict):
            return sum(total(x) for x in v.values())
        if isinstance(v, list):
            return sum(total(x) for x in v)
        return v if isinstance(v, (int, float)) else 0

    out = [total(r) for r in recs]
    h._answer(200, json.dumps({"scores": out}).encode())


@pytest.mark.parametrize(
    "content_template,record_template,expected",
    [
        ('{"instances":$records}', "$features", '{"instances":[[0,1],[3,4]]}'),
        ("$records", "$features_kvp", '[{"A":0,"B":1},{"A":3,"B":4}]'),
        ("$records", '{"A":"${A}","B":"${B}"}', '[{"A":0,"B":1},{"A":3,"B":4}]'),
        (
            '{"instances":$records}',
            '{"names":$feature_names,"values":$features}',
            '{"instances":[{"names":["A","B"],"values":[0,1]},{"names":["A","B"],"values":[3,4]}]}',
        ),
    ],
)
def test_record_template_wire_format_as_clarify(content_template, record_template, expected):
    srv = _server(_echo_sum)
    with srv as url:
        cfg = read_config(
            {
                "dataset_type": "text/csv",
                "headers": ["A", "B", "y"],
                "label": "y",
                **_PRE,
                "predictor": {
                    "endpoint_url": url,
                    "content_type": "application/json",
                    "accept_type": "application/json",
                    "content_template": content_template,
                    "record_template": record_template,
                    "probability": "scores",
                },
            }
        )
        assert cfg.predictor.record_template == record_template
        with A.endpoint_for(cfg, url) as ep:
            X = pd.DataFrame({"A": [0, 3], "B": [1, 4]})
            np.testing.assert_array_equal(ep.predict(X)[:, 0], [1.0, 7.0])
    assert srv.bodies == [("application/json", expected.encode())]


def test_record_template_single_record_requests():
    srv = _server(_echo_sum)
    with srv as url:
        cfg = read_config(
            {
                "dataset_type": "text/csv",
                "headers": ["A", "B", "y"],
                "label": "y",
                **_PRE,
                "predictor": {
                    "endpoint_url": url,
                    "content_type": "application/json",
                    "content_template": "$record",
                    "record_template": "$features_kvp",
                    "probability": "scores[0]",
                },
            }
        )
        with A.endpoint_for(cfg, url) as ep:
            out = ep.predict(pd.DataFrame({"A": [0, 3], "B": [1, 4]}))
    np.testing.assert_array_equal(out[:, 0], [1.0, 7.0])
    assert sorted(b for _, b in srv.bodies) == [b'{"A":0,"B":1}', b'{"A":3,"B":4}']


def test_record_template_end_to_end_through_analyze(tmp_path):
    srv = _server(_echo_sum)
    _data(tmp_path / "d.csv")
    with srv as url:
        cfg = _post_config(
            endpoint_url=url,
            content_type="application/json",
            accept_type="application/json",
            content_template='{"instances":$records}',
            record_template='{"x":"${a}","z":"${b}"}',
            probability="scores",
        )
        res = analyze(cfg, tmp_path / "d.csv", output_dir=tmp_path / "o", progress=False)
    assert "post_training_bias_metrics" in res.analysis
    first = json.loads(srv.bodies[0][1])
    df = pd.read_csv(tmp_path / "d.csv")
    assert first["instances"][0] == {"x": df["a"][0], "z": df["b"][0]}


@pytest.mark.parametrize(
    "template,why",
    [
        ("{}", "no placeholder"),
        ('{"a":$features_kvp,"b":$features}', "only placeholder"),
        ('{"a":"${A}","b":$features}', "cannot be mixed"),
        ('{"n":$feature_names}', "needs \\$features"),
    ],
)
def test_bad_record_templates_are_config_errors(template, why):
    with pytest.raises(ConfigError, match=rf"predictor\.record_template.*{why}"):
        read_config(
            {
                "dataset_type": "text/csv",
                "label": "y",
                **_PRE,
                "predictor": {
                    "endpoint_url": "http://127.0.0.1:9/",
                    "content_type": "application/json",
                    "record_template": template,
                },
            }
        )
    with pytest.raises(ConfigError, match=r"predictor\.record_template: applies to content_type application/json"):
        read_config(
            {
                "dataset_type": "text/csv",
                "label": "y",
                **_PRE,
                "predictor": {
                    "endpoint_url": "http://127.0.0.1:9/",
                    "content_type": "text/csv",
                    "record_template": "$features",
                },
            }
        )


def test_record_template_unknown_feature_suggests_a_name():
    ep = Endpoint("http://127.0.0.1:9/", content_type="application/json", record_template='{"x":"${agee}"}')
    with pytest.raises(ValueError, match=r"'agee'.*did you mean 'age'"):
        ep._encode_rows(pd.DataFrame({"age": [1], "income": [2]}))


def test_endpoint_label_answers_are_labels_not_scores(tmp_path):
    # a 3-class endpoint answering {"label": "cat" | "dog" | "fish"}, predictor.label a JMESPath:
    # the answer is the predicted label (through label_headers), never index > probability_threshold
    classes = ["cat", "dog", "fish"]

    def answer(h, body):
        rows = [ln.split(",") for ln in body.decode().strip().splitlines()]
        out = "\n".join(json.dumps({"label": classes[int(float(r[0])) % 3]}) for r in rows).encode()
        h._answer(200, out, "application/jsonlines")

    n = 90
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {"k": np.arange(n) % 3, "g": rng.choice(["a", "b"], n), "y": np.array(classes)[np.arange(n) % 3]}
    ).to_csv(tmp_path / "d.csv", index=False)
    with _server(answer) as url:
        cfg = {
            "dataset_type": "text/csv",
            "label": "y",
            "label_values_or_threshold": ["fish"],
            "facet": [{"name_or_index": "g"}],
            "methods": {"post_training_bias": {"methods": ["AD", "DAR"]}},
            "predictor": {
                "endpoint_url": url,
                "accept_type": "application/jsonlines",
                "label": "label",
                "label_headers": classes,
            },
        }
        res = analyze(cfg, tmp_path / "d.csv", output_dir=tmp_path / "o", progress=False)
    for entry in res.analysis["post_training_bias_metrics"]["facets"]["g"]:
        metrics = {m["name"]: m["value"] for m in entry["metrics"]}
        assert metrics["AD"] == 0.0  # the endpoint is always right, in both groups


def test_endpoint_connection_errors_say_what_to_check():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = rf"nothing listens on 127\.0\.0\.1:{port} \(is the endpoint server running\?\)"
    with Endpoint(f"http://127.0.0.1:{port}/invocations", retries=0) as ep, pytest.raises(EndpointError, match=refused):
        ep.predict(np.zeros((2, 2)))
    empty = r"answered HTTP 404 for the batch starting at row 0: \(an empty answer, Not Found\)"
    with (
        _server(lambda h, body: h._answer(404, b"")) as url,
        Endpoint(url) as ep,
        pytest.raises(EndpointError, match=empty),
    ):
        ep.predict(np.zeros((2, 2)))


def test_label_headers_of_another_length_than_the_outputs_say_so():
    with (
        _server(lambda h, body: h._answer(200, b"0.1,0.9\n0.2,0.8\n", "text/csv")) as url,
        Endpoint(url, label_headers=["a", "b", "c"]) as ep,
        pytest.raises(ValueError, match=r"returned 2 outputs per row, but 3 output names \(label_headers\)"),
    ):
        ep.predict(np.zeros((2, 2)))
    m = as_model(lambda X: np.asarray(X)[:, :2], label_headers=["only"])
    with pytest.raises(ValueError, match=r"returned 2 outputs per row, but 1 output names"):
        m.predict(np.zeros((2, 3)))
