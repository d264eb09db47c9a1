"""clarion on a real dask.distributed LocalCluster: the same numbers as one machine.

One module-scoped cluster (scheduler and two single-threaded worker processes with nannies on
127.0.0.1) serves every test; the worker-failure test kills a worker process while a computation
runs and checks that Dask's retry gives identical results.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import clarion.bias as cb  # noqa: E402
from clarion import distributed as cdist  # noqa: E402
from clarion.explain import KernelShap, partial_dependence  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )  # not 8787: another cluster may hold it
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _data(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n) + (s == "a")
    y = (x1 + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return pd.DataFrame(
        {
            "y": y,
            "s": s,
            "age": rng.integers(18, 80, n),
            "g": rng.choice(["u", "v", "w"], n),
            "x1": x1,
            "x2": x2,
            "score": 1 / (1 + np.exp(-(x1 + 0.3 * x2))),
            "pred": (x1 + x2 > 0.2).astype(np.int64),
            "w": rng.random(n) * 3,
        }
    )


def _same(a, b, exact: bool = True) -> None:
    fa, fb = a.to_frame(), b.to_frame()
    if exact:
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)
    else:
        pd.testing.assert_frame_equal(fa, fb, rtol=1e-12)
    if exact and not a.multi_model:
        assert a.to_dict() == b.to_dict()


BIAS_CASES = [
    dict(label="y", label_values=[1], facet="s", predicted_label="pred"),
    dict(
        label="y",
        label_values=[1],
        facet=["s", "age"],
        facet_threshold={"age": 40},
        group_variable="g",
        predicted_label={"m1": "score", "m2": "pred"},
        probability_threshold=[0.3, 0.5, 0.7],
    ),
    dict(label="y", label_values=[1], facet="s", facet_values=["b", "d"], stage="pre", compat="smclarify"),
]


@pytest.mark.parametrize("kw", BIAS_CASES)
def test_bias_report_identical(client, kw):
    df = _data()
    ddf = dd.from_pandas(df, npartitions=7)
    _same(cb.report(df, **kw), cb.report(ddf, **kw))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 60),
    nparts=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    one_class=st.booleans(),
    missing=st.booleans(),
    zero_w=st.booleans(),
)
def test_bias_identical_property(client, n, nparts, seed, one_class, missing, zero_w):
    """Any data and any split: missing facet values, one label class, zero weights, tiny partitions."""
    rng = np.random.default_rng(seed)
    s = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    if missing:
        s[rng.random(n) < 0.3] = None
    df = pd.DataFrame(
        {
            "y": np.zeros(n, int) if one_class else rng.integers(0, 2, n),
            "s": s,
            "p": rng.integers(0, 2, n),
            "w": np.where(rng.random(n) < 0.3, 0.0, 1.0) if zero_w else 1.0,
        }
    )
    ddf = dd.from_pandas(df, npartitions=min(nparts, n))
    for kw in (
        dict(label="y", label_values=[1], facet="s", predicted_label="p", compat="smclarify"),
        dict(
            label="y",
            label_values=[0],
            facet="s",
            predicted_label="p",
            weights="w",
            methods=["CI", "DPL", "DPPL", "DI", "AD"],
        ),
    ):
        try:
            want = cb.report(df, **kw)
        except ValueError as exc:  # e.g. no row of a label value: the same error from the cluster
            with pytest.raises(ValueError, match=re.escape(str(exc).split(" (")[0])):
                cb.report(ddf, **kw)
            continue
        _same(want, cb.report(ddf, **kw), exact="weights" not in kw)


def test_bias_intervals_identical_with_global_row_offsets(client):
    df = _data(2000, seed=1)
    kw = dict(
        label="y",
        label_values=[1],
        facet="s",
        predicted_label="score",
        methods=["CI", "DPL", "DPPL", "DI"],
        confidence=0.9,
        n_bootstrap=64,
        seed=11,
    )
    one = cb.report(df, **kw)
    many = cb.report(dd.from_pandas(df, npartitions=5), **kw)
    _same(one, many)
    ci = one.to_frame()
    assert ci["ci_low"].notna().any()
    # a different split gives the same replicates (Poisson draws keyed on the global row index)
    _same(one, cb.report(dd.from_pandas(df, npartitions=3), **kw))


def test_bias_weighted_equal(client):
    df = _data(2500, seed=2)
    kw = dict(label="y", label_values=[1], facet="s", predicted_label="pred", weights="w", methods="all", stage="both")
    _same(cb.report(df, **kw), cb.report(dd.from_pandas(df, npartitions=4), **kw), exact=False)


def test_bias_partitions_without_some_facet_groups(client):
    df = _data(1200, seed=3).sort_values("s", kind="stable").reset_index(drop=True)
    ddf = dd.from_pandas(df, npartitions=6, sort=False)
    # sorted by facet: most partitions hold one facet value only; one more partition has no rows
    full = dd.concat([ddf, dd.from_pandas(df.iloc[:0], npartitions=1)])
    seen = [set(p["s"]) for p in full.to_delayed() for p in [p.compute()]]
    assert sum(len(s) < 4 for s in seen) >= 5 and seen[-1] == set()
    kw = dict(label="y", label_values=[1], facet="s", predicted_label="pred", group_variable="g")
    _same(cb.report(df, **kw), cb.report(full, **kw))
    kw2 = dict(label="y", label_values=[1], facet="s", facet_values=["d"], predicted_label="pred")
    _same(cb.report(df, **kw2), cb.report(full, **kw2))


def test_bias_fliptest_exact(client):
    df = _data(900, seed=4)
    kw = dict(
        label="y",
        label_values=[1],
        facet="s",
        predicted_label="pred",
        features=["x1", "x2"],
        methods=["FT", "DPPL"],
        stage="post",
    )
    one = cb.report(df, **kw)
    many = cb.report(dd.from_pandas(df, npartitions=4), **kw)
    _same(one, many)
    assert np.isfinite(one.to_frame()["value"]).all()


def test_bias_dask_array_and_errors(client):
    rng = np.random.default_rng(5)
    arr = np.column_stack([rng.integers(0, 2, 500), rng.integers(0, 3, 500), rng.integers(0, 2, 500)])
    kw = dict(label=0, label_values=[1], facet=1, predicted_label=2)
    _same(cb.report(pd.DataFrame(arr), **kw), cb.report(da.from_array(arr, chunks=(120, 3)), **kw))
    ddf = dd.from_pandas(_data(100), npartitions=2)
    with pytest.raises(ValueError, match="predicted_label: with a Dask collection give column names"):
        cb.report(ddf, label="y", label_values=[1], facet="s", predicted_label=np.zeros(100))
    with pytest.raises(ValueError, match="facet: column 'nope' is not in the data"):
        cb.report(ddf, label="y", label_values=[1], facet="nope")
    with pytest.raises(ValueError, match="label_values: value 7 does not occur"):
        cb.report(ddf, label="y", label_values=[7], facet="s")


def _model():
    """A tree ensemble: its output for a row does not depend on the other rows of the batch (a
    BLAS-based model's can, in the last bits, which no batching scheme controls)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    df = _data(600, seed=6)
    X = df[["x1", "x2", "age", "score"]]
    return HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, df["y"]), X


def test_shap_identical(client):
    model, X = _model()
    e = KernelShap(model, X.iloc[:15], num_samples=200, seed=3)
    rows = X.iloc[:90]
    one = e.explain(rows, return_std=True)
    many = e.explain(dd.from_pandas(rows, npartitions=4), return_std=True)
    np.testing.assert_array_equal(one.values, many.values)
    np.testing.assert_array_equal(one.std, many.std)
    np.testing.assert_array_equal(one.expected_value, many.expected_value)
    pd.testing.assert_frame_equal(one.to_frame(), many.to_frame())
    # features_to_explain: per-row base values come back per partition
    f = lambda Z: np.asarray(Z)[:, 0] * np.asarray(Z)[:, 1] + np.asarray(Z)[:, 2]
    arr = X.to_numpy()[:60]
    e2 = KernelShap(f, arr[:10], features_to_explain=[0, 1, 3], seed=9)
    a = e2.explain(arr)
    b = e2.explain(da.from_array(arr, chunks=(25, 2)))
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.expected_value, b.expected_value)


def test_shap_progress_reports_rows_as_partitions_finish(client):
    model, X = _model()
    e = KernelShap(model, X.iloc[:8], num_samples=60, seed=2)
    rows = X.iloc[:50]
    calls = []
    got = e.explain(dd.from_pandas(rows, npartitions=5), progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(got.values, e.explain(rows).values)
    assert len(calls) == 5 and calls[-1] == (50, 50)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_shap_frame_to_parquet_without_collecting(client, tmp_path):
    model, X = _model()
    e = KernelShap(model, X.iloc[:10], num_samples=100, seed=1)
    rows = X.iloc[:80]
    lazy = cdist.shap_frame(e, dd.from_pandas(rows, npartitions=4))
    path = tmp_path / "shap"
    lazy.to_parquet(str(path))
    files = sorted(p.name for p in path.glob("*.parquet"))
    assert len(files) == 4
    back = pd.read_parquet(path).sort_index()
    want = e.explain(rows).values
    cols = [f"{o}/{n}" for o in model.classes_ for n in e.feature_names]
    assert list(back.columns) == cols
    np.testing.assert_array_equal(back.to_numpy(), want.transpose(0, 2, 1).reshape(len(rows), -1))


def test_partial_dependence_equal(client):
    _, X = _model()
    Xc = X.assign(cat=np.where(X["x1"] > 0, "hi", "lo"))
    f = lambda Z: (Z["x1"] + (Z["cat"] == "hi").astype(float) * 2 + Z["age"] / 50).to_numpy()
    one = partial_dependence(f, Xc, ["x1", "cat", "age"], grid_resolution=7)
    many = partial_dependence(f, dd.from_pandas(Xc, npartitions=5), ["x1", "cat", "age"], grid_resolution=7)
    pd.testing.assert_frame_equal(one, many, rtol=1e-12)
    g = lambda Z: np.column_stack([np.tanh(Z[:, 0]) + Z[:, 3] * Z[:, 1], Z[:, 2] / 80])
    p1 = partial_dependence(g, X.to_numpy(), [0, 3])
    p2 = partial_dependence(g, da.from_array(X.to_numpy(), chunks=(150, 4)), [0, 3])
    pd.testing.assert_frame_equal(p1, p2, rtol=1e-12)


def _slow(frame: pd.DataFrame) -> pd.DataFrame:
    time.sleep(0.4)
    return frame


def test_worker_killed_mid_computation_recovered(client):
    df = _data(4000, seed=7)
    n_parts = 16
    pieces = np.array_split(np.arange(len(df)), n_parts)
    from dask import delayed

    ddf = dd.from_delayed([delayed(_slow)(df.iloc[ix]) for ix in pieces], meta=df.iloc[:0], verify_meta=False)
    kw = dict(
        label="y",
        label_values=[1],
        facet="s",
        predicted_label="score",
        group_variable="g",
        confidence=0.9,
        n_bootstrap=16,
        seed=2,
    )
    want = cb.report(df, **kw)
    out: dict = {}

    def run():
        try:
            out["report"] = cb.report(ddf, **kw)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    victim = None
    deadline = time.time() + 30
    while victim is None and time.time() < deadline:
        busy = [w for w, tasks in client.processing().items() if tasks]
        if busy and any("_slow" in str(k) or "bias" in str(k) for w in busy for k in client.processing()[w]):
            victim = busy[0]
        else:
            time.sleep(0.05)
    assert victim is not None, "no worker started the computation"
    time.sleep(0.5)  # let it hold some results, then kill the process (its nanny starts a new one)
    pid = client.run(os.getpid, workers=[victim])[victim]
    assert t.is_alive(), "the computation finished before the worker could be killed"
    os.kill(pid, signal.SIGKILL)
    t.join(120)
    assert not t.is_alive()
    if "error" in out:
        raise out["error"]
    _same(want, out["report"])
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.scheduler_info()["workers"]


@pytest.mark.gpu
def test_gpu_workers_explain_cupy_partitions(cuda, client):
    import cupy

    rng = np.random.default_rng(18)
    W = rng.normal(size=(6, 2))
    f_dev = lambda Z: cupy.tanh(Z @ cupy.asarray(W))
    B, X = rng.normal(size=(5, 6)), rng.normal(size=(40, 6))
    e = KernelShap(f_dev, cupy.asarray(B), num_samples=100, seed=4)
    one = e.explain(cupy.asarray(X))
    many = e.explain(da.from_array(cupy.asarray(X), chunks=(10, 6), asarray=False))
    np.testing.assert_array_equal(one.values, many.values)


def test_analysis_job_explains_on_the_cluster(client, tmp_path):
    """``clarion analyze --dask-*``: SHAP and PDP of the analysis job run on the workers, same outputs."""
    from sklearn.linear_model import LogisticRegression

    from clarion import analysis

    rng = np.random.default_rng(8)
    n = 400
    df = pd.DataFrame({"x1": rng.normal(size=n).round(4), "x2": rng.integers(0, 10, n), "g": rng.choice([0, 1], n)})
    df["y"] = (df["x1"] + 0.1 * df["x2"] + rng.normal(size=n) > 0.5).astype(int)
    model = LogisticRegression().fit(df[["x1", "x2", "g"]], df["y"])
    cfg = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": [1]}],
        "methods": {
            "pre_training_bias": {"methods": "all"},
            "post_training_bias": {"methods": "all"},
            "shap": {"num_clusters": 3, "seed": 1, "num_samples": 50},
            "pdp": {"top_k_features": 2, "grid_resolution": 5},
        },
        "predictor": {"probability": 1},
    }
    df.to_csv(tmp_path / "data.csv", index=False)
    local = analysis.analyze(cfg, tmp_path / "data.csv", model=model, output_dir=tmp_path / "local", progress=False)
    calls = []
    orig = cdist.explain

    def spy(*a, **k):
        calls.append(a[1].npartitions)
        return orig(*a, **k)

    cdist.explain = spy
    try:
        with cdist.cluster(client=client) as c:
            dist = analysis.analyze(
                cfg, tmp_path / "data.csv", model=model, output_dir=tmp_path / "dist", progress=False, dask_client=c
            )
    finally:
        cdist.explain = orig
    assert calls and all(c >= 2 for c in calls)
    a = pd.read_csv(tmp_path / "local" / "explanations_shap" / "out.csv")
    b = pd.read_csv(tmp_path / "dist" / "explanations_shap" / "out.csv")
    # a linear model's probabilities depend on the BLAS batch in the last bits: equal to 1e-12
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    la, da_ = local.analysis, dist.analysis
    assert la["pre_training_bias_metrics"] == da_["pre_training_bias_metrics"]
    for lab, blk in la["explanations"]["kernel_shap"].items():
        other = da_["explanations"]["kernel_shap"][lab]
        assert blk["expected_value"] == other["expected_value"]
        for f, v in blk["global_shap_values"].items():
            assert other["global_shap_values"][f] == pytest.approx(v, rel=1e-12, abs=1e-15)
    for pa, pb in zip(la["explanations"]["pdp"], da_["explanations"]["pdp"]):
        assert pa["feature_values"] == pb["feature_values"]
        np.testing.assert_allclose(pa["model_predictions"], pb["model_predictions"], rtol=1e-12)


def test_cli_dask_options_are_registered():
    import argparse

    from clarion.cli import analyze as analyze_cli

    p = argparse.ArgumentParser()
    analyze_cli.add_arguments(p)
    args = p.parse_args(["--config", "c", "--data", "d", "--output", "o", "--dask-workers", "2"])
    assert args.dask_workers == 2 and args.dask_scheduler is None
    with pytest.raises(SystemExit):
        p.parse_args(
            [
                "--config",
                "c",
                "--data",
                "d",
                "--output",
                "o",
                "--dask-workers",
                "2",
                "--dask-scheduler",
                "tcp://127.0.0.1:1",
            ]
        )
    with pytest.raises(ValueError, match="dask_scheduler must be an address like tcp://HOST:PORT"):
        cdist.cluster_client("localhost")
    with pytest.raises(ValueError, match="dask_workers must be a positive integer"):
        cdist.cluster_client(None, 0)


def test_cli_analyze_with_dask_workers(tmp_path, capsys, monkeypatch):
    """``clarion analyze --dask-workers 2`` end to end (its own local cluster, progress bars on)."""
    skio = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    from clarion.cli import EXIT_OK, main

    rng = np.random.default_rng(9)
    n = 300
    df = pd.DataFrame({"x1": rng.normal(size=n).round(4), "x2": rng.integers(0, 10, n), "g": rng.choice([0, 1], n)})
    df["y"] = (df["x1"] + 0.1 * df["x2"] + rng.normal(size=n) > 0.5).astype(int)
    model = LogisticRegression().fit(df[["x1", "x2", "g"]], df["y"])
    skio.dump(model, tmp_path / "model.skops")
    df.to_csv(tmp_path / "data.csv", index=False)
    cfg = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": [1]}],
        "methods": {
            "post_training_bias": {"methods": ["DPPL", "DI"]},
            "shap": {"num_clusters": 3, "seed": 1, "num_samples": 30},
        },
        "predictor": {"probability": 1},
    }
    (tmp_path / "cfg.json").write_text(__import__("json").dumps(cfg))
    base = [
        "analyze",
        "--config",
        str(tmp_path / "cfg.json"),
        "--data",
        str(tmp_path / "data.csv"),
        "--model",
        str(tmp_path / "model.skops"),
    ]
    assert main(base + ["--output", str(tmp_path / "local"), "--quiet"]) == EXIT_OK
    seen = []
    orig = cdist.explain
    monkeypatch.setattr(cdist, "explain", lambda e, X, **k: seen.append(X.npartitions) or orig(e, X, **k))
    assert main(base + ["--output", str(tmp_path / "dist"), "--dask-workers", "2"]) == EXIT_OK
    assert seen and seen[0] >= 2  # the rows were explained on the cluster
    assert "SHAP" in capsys.readouterr().err
    a = pd.read_csv(tmp_path / "local" / "explanations_shap" / "out.csv")
    b = pd.read_csv(tmp_path / "dist" / "explanations_shap" / "out.csv")
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)  # BLAS model: last-bit differences only
    assert not cdist._ACTIVE  # the CLI's cluster was closed


def test_analysis_job_reads_a_dask_dataframe(client, tmp_path):
    """``clarion.analyze(config, <dask DataFrame>)``: partitions stream through the job as chunks;
    the outputs equal the run on the same rows as a pandas DataFrame, and a missing label is
    located by its global row number."""
    from sklearn.tree import DecisionTreeClassifier

    from clarion import analysis
    from clarion.dataset import DataError

    rng = np.random.default_rng(9)
    n = 300
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n).round(4),
            "x2": rng.integers(0, 10, n),
            "g": rng.choice(["a", "b"], n),
            "y": rng.choice([0, 1], n),
        }
    )
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(df[["x1", "x2"]], df["y"])
    cfg = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "excluded_columns": ["g"],
        "methods": {
            "pre_training_bias": {"methods": "all"},
            "post_training_bias": {"methods": "all"},
            "shap": {"num_clusters": 3, "seed": 1, "num_samples": 20},
        },
        "predictor": {"probability": 1},
    }
    ddf = dd.from_pandas(df, npartitions=4)
    local = analysis.analyze(cfg, df, model=model, output_dir=tmp_path / "local", progress=False, chunk_rows=64)
    dist = analysis.analyze(cfg, ddf, model=model, output_dir=tmp_path / "dist", progress=False, chunk_rows=64)
    assert local.analysis["pre_training_bias_metrics"] == dist.analysis["pre_training_bias_metrics"]
    assert local.analysis["post_training_bias_metrics"] == dist.analysis["post_training_bias_metrics"]
    a = pd.read_csv(tmp_path / "local" / "explanations_shap" / "out.csv")
    b = pd.read_csv(tmp_path / "dist" / "explanations_shap" / "out.csv")
    pd.testing.assert_frame_equal(a, b)

    bad = df.copy()
    bad["y"] = bad["y"].astype("float64")
    bad.loc[250, "y"] = np.nan
    with pytest.raises(DataError, match=r"row 250, column 'y': missing value"):
        analysis.analyze(
            cfg, dd.from_pandas(bad, npartitions=4), model=model, output_dir=tmp_path / "bad", progress=False
        )
