"""clarion.options: one validator per shared option, used by the config reader and the engines
alike; the metric registry read by config, report and monitor; engines that never import the
scheduling layer."""

from __future__ import annotations

import ast
import pathlib
import warnings

import numpy as np
import pytest

import clarion
from clarion import config as C
from clarion import dispatch, options
from clarion.bias import registry

PKG = pathlib.Path(clarion.__file__).parent


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1GiB", 1 << 30),
        ("1gib", 1 << 30),
        ("1Gi", 1 << 30),
        ("1.5G", 1_500_000_000),
        ("2e9", 2_000_000_000),
        ("512 MiB", 512 << 20),
        ("500MB", 500_000_000),
        ("10k", 10_000),
        ("4096", 4096),
        (" 1 TB ", 10**12),
        ("1.5e3B", 1500),
        (".5KiB", 512),
        (4096, 4096),
        (np.int64(7), 7),
        (2e9, 2_000_000_000),
    ],
)
def test_byte_size_grammar(text, want):
    assert options.byte_size(text) == want


@pytest.mark.parametrize(
    "bad", ["lots", "", "1 GiBs", "-1GiB", "0", 0, -5, True, None, "1e400", float("inf"), "1..2G", 1.5]
)
def test_byte_size_refuses(bad):
    with pytest.raises(ValueError, match="memory_budget"):
        options.byte_size(bad)
    with pytest.raises(ValueError, match=r"^job\.memory_budget: "):
        options.byte_size(bad, key="job.memory_budget")


def test_the_two_budget_parsers_agree():
    from clarion.explain._common import parse_budget

    for text in ("1GiB", "1gib", "1.5G", "2e9", "512 MiB"):
        assert parse_budget(text) == options.byte_size(text)


def test_errors_name_the_config_key_or_the_argument():
    with pytest.raises(ValueError, match=r"^methods\.shap\.seed: expected an integer in \[0, "):
        options.seed(-1, key="methods.shap.seed")
    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\*\*64\)"):
        options.seed(2**64)
    with pytest.raises(ValueError, match=r"^x\.confidence: expected a number in \(0, 1\)"):
        options.confidence(1.0, key="x.confidence")
    with pytest.raises(ValueError, match=r"^confidence must be a number in \(0, 1\)"):
        options.confidence(float("nan"))
    with pytest.raises(ValueError, match=r"^methods\.shap\.num_samples: expected an integer in \[2, 1,000,000\]"):
        options.num_samples(1, key="methods.shap.num_samples")
    with pytest.raises(ValueError, match=r"^n_threads must be None, -1 or a positive integer"):
        options.threads(0)
    with pytest.raises(ValueError, match=r"^chunk_rows: must be an integer >= 1"):
        options.chunk_rows(0)
    assert options.threads(None) is None and options.threads(-1) == -1 and options.threads(np.int32(3)) == 3


def test_config_uses_the_options_validators():
    base = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "f"}],
        "methods": {"shap": {"num_samples": 1}},
    }
    with pytest.raises(C.ConfigError, match=r"^methods\.shap\.num_samples: expected an integer in \[2, 1,000,000\]"):
        C.AnalysisConfig.from_dict(base)
    base["methods"] = {"pre_training_bias": {"confidence": 0.9, "n_bootstrap": options.MIN_CONFIG_N_BOOTSTRAP - 1}}
    with pytest.raises(C.ConfigError, match=r"^methods\.pre_training_bias\.n_bootstrap: expected an integer in \[10, "):
        C.AnalysisConfig.from_dict(base)
    assert (C.MAX_N_BOOTSTRAP, C.MIN_NUM_SAMPLES, C.MAX_NUM_SAMPLES, C.SEED_LIMIT) == (
        options.MAX_N_BOOTSTRAP,
        options.MIN_NUM_SAMPLES,
        options.MAX_NUM_SAMPLES,
        options.SEED_LIMIT,
    )


def test_n_bootstrap_minimums():
    assert options.n_bootstrap(1) == 1  # the engines' minimum
    with pytest.raises(ValueError, match="n_bootstrap must be a positive integer"):
        options.n_bootstrap(0)
    assert options.n_bootstrap(0, low=0) == 0  # an Accumulator keeping no replicates
    with pytest.raises(ValueError, match=r"n_bootstrap must be an integer in \[1, 100,000\]"):
        options.n_bootstrap(options.MAX_N_BOOTSTRAP + 1)
    assert options.MIN_CONFIG_N_BOOTSTRAP == C.MIN_N_BOOTSTRAP == 10


def test_n_jobs_is_a_deprecated_alias_of_n_threads():
    from clarion.explain import KernelShap, partial_dependence

    rng = np.random.default_rng(0)
    B, X = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))

    def f(A):
        return A.sum(axis=1)

    want = KernelShap(f, B, seed=1, n_threads=1).explain(X).values
    with pytest.warns(DeprecationWarning, match="n_jobs is deprecated; use n_threads"):
        got = KernelShap(f, B, seed=1, n_jobs=1).explain(X).values
    np.testing.assert_array_equal(want, got)
    with pytest.warns(DeprecationWarning, match="n_jobs is deprecated"):
        partial_dependence(f, X, 0, n_jobs=1)
    with pytest.raises(ValueError, match="give n_threads only"):
        KernelShap(f, B, n_threads=1, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        partial_dependence(f, X, 0, n_threads=-1)


def test_sub_seed_is_deterministic_and_separates_consumers():
    a, b = options.sub_seed(7, "bias.bootstrap"), options.sub_seed(7, "shap")
    assert a != b and a == options.sub_seed(7, "bias.bootstrap")
    assert 0 <= a < options.SEED_LIMIT and options.sub_seed(8, "shap") != b
    with pytest.raises(ValueError, match="job_seed"):
        options.sub_seed(-1, "shap")


def test_one_metric_registry():
    from clarion import monitor
    from clarion.bias import METRIC_INFO, _metrics
    from clarion.report import METRIC_GUIDE

    assert METRIC_INFO is registry.METRIC_INFO is _metrics.METRIC_INFO
    assert C.PRE_TRAINING_METHODS == ("CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL")
    assert C.POST_TRAINING_METHODS == (
        "DPPL",
        "DI",
        "DCA",
        "DCR",
        "RD",
        "SD",
        "DAR",
        "DRR",
        "AD",
        "CDDPL",
        "TE",
        "FT",
        "GE",
    )
    assert set(METRIC_GUIDE) == set(METRIC_INFO)
    for name, info in METRIC_INFO.items():
        assert METRIC_GUIDE[name][2] == info["ideal"] == registry.ideal_value(name)
        assert set(info["needs"]) <= {"label", "prediction", "group", "features"}
        assert ("prediction" in info["needs"]) == (info["stage"] == "post")
        lo, hi = info["axis"]
        assert np.isfinite([lo, hi]).all() and lo < hi and info["reading"]
    assert registry.ideal_value("DI") == 1.0 and registry.ideal_value("nope") == 0.0
    assert not hasattr(monitor, "IDEAL")


def _imports(path: pathlib.Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize(
    "path",
    sorted(p.relative_to(PKG).as_posix() for pkg in ("bias", "explain") for p in (PKG / pkg).glob("*.py"))
    + ["options.py", "dispatch.py"],
)
def test_engines_do_not_import_upper_layers(path):
    upper = (
        "clarion.distributed",
        "clarion.analysis",
        "clarion.cli",
        "clarion.job",
        "clarion.monitor",
        "clarion.report",
        "clarion.serve",
        "clarion._monitor_job",
        "clarion.monitor_cli",
    )
    bad = sorted(m for m in _imports(PKG / path) if m.startswith(upper))
    assert not bad, f"{path} imports {bad}"


def test_options_and_dispatch_import_nothing_from_clarion():
    for name in ("options.py", "dispatch.py"):
        assert not [m for m in _imports(PKG / name) if m.startswith("clarion")], name


def test_dispatch_registry():
    assert not dispatch.is_partitioned(np.zeros(3)) and not dispatch.is_partitioned([1, 2])
    with pytest.raises(ValueError, match="unknown operation"):
        dispatch.register("bias.nope", print)
    assert set(dispatch.PROVIDERS) == {"bias.report", "explain.explain", "explain.partial_dependence"}
