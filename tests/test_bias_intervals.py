"""Bootstrap confidence intervals of clarion.bias.report (issue 9)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import clarion
import clarion.bias as cb
from clarion import _reference
from clarion.bias import _engine, _metrics

COUNT = list(_metrics.COUNT_METRICS)


def data(seed, n):
    rng = np.random.default_rng(seed)
    f = rng.choice(["a", "d"], n)
    y = (rng.random(n) < np.where(f == "a", 0.5, 0.4)).astype(int)
    p = np.where(rng.random(n) < 0.2, 1 - y, y)
    return pd.DataFrame({"f": f, "y": y, "p": p, "g": rng.choice(["u", "v"], n), "x": rng.normal(size=n)})


def test_intervals_in_frame_and_dict_and_fliptest_excluded():
    df = data(0, 400)
    rep = cb.report(
        df,
        label="y",
        facet="f",
        facet_values=["d"],
        label_values=[1],
        predicted_label="p",
        group_variable="g",
        confidence=0.9,
        n_bootstrap=200,
        seed=5,
    )
    fr = rep.to_frame()
    assert {"ci_low", "ci_high"} <= set(fr.columns)
    counted = fr[fr.metric != "FT"]
    ok = counted.value.notna()
    assert (counted.ci_low[ok] <= counted.value[ok] + 1e-12).mean() > 0.9
    assert (counted.ci_low[ok] <= counted.ci_high[ok]).all()
    assert fr[fr.metric == "FT"].ci_low.isna().all()
    d = rep.to_dict()
    m = {x["name"]: x for x in d["pre_training_bias_metrics"]["facets"]["f"][0]["metrics"]}
    assert m["DPL"]["ci_low"] <= m["DPL"]["value"] <= m["DPL"]["ci_high"]
    again = cb.report(
        df,
        label="y",
        facet="f",
        facet_values=["d"],
        label_values=[1],
        predicted_label="p",
        group_variable="g",
        confidence=0.9,
        n_bootstrap=200,
        seed=5,
    ).to_frame()
    pd.testing.assert_frame_equal(fr, again)  # same seed, identical intervals


def test_intervals_equal_explicit_numpy_poisson_weighted_counts():
    df = data(1, 150)
    R, seed = 64, 11
    rep = cb.report(
        df,
        label="y",
        facet="f",
        facet_values=["d"],
        label_values=[1],
        predicted_label="p",
        methods=["DPL", "DI", "AD"],
        confidence=0.8,
        n_bootstrap=R,
        seed=seed,
    )
    fr = rep.to_frame().set_index("metric")
    d = (df.f == "d").to_numpy().astype(int)
    C = np.zeros((R, 2, 1, 2, 2))
    rows = np.arange(len(df))
    for r in range(R):
        w = _reference.poisson1_draws(seed, r, rows).astype(float)
        np.add.at(C[r], (d, 0, df.y.to_numpy(), df.p.to_numpy()), w)
    vals = _metrics.compute(C, ["DPL", "DI", "AD"])
    for name in ("DPL", "DI", "AD"):
        lo, hi = _engine.percentile_interval(vals[name][0], 0.8)
        assert fr.loc[name, "ci_low"] == lo and fr.loc[name, "ci_high"] == hi, name


def test_intervals_shrink_like_one_over_sqrt_n():
    widths = []
    for n in (2000, 8000, 32000):
        rep = cb.report(
            data(2, n),
            label="y",
            facet="f",
            facet_values=["d"],
            label_values=[1],
            methods=["DPL", "CI"],
            confidence=0.95,
            n_bootstrap=300,
            seed=1,
        )
        fr = rep.to_frame().set_index("metric")
        widths.append((fr.ci_high - fr.ci_low).to_numpy())
    for small, large in zip(widths, widths[1:]):
        ratio = small / large
        assert np.all((ratio > 1.6) & (ratio < 2.5)), ratio


def test_coverage_of_binomial_dpl_is_nominal():
    """1,000 simulated data sets (two groups of 300, p = 0.5 and 0.4): the 95% interval covers the
    true DPL = 0.1 in 93-97% of them. All data sets go through the bootstrap kernel in one call
    (group code = data set × 2 + facet), then the report's formula and interval code."""
    S, n, R = 1000, 300, 200
    rng = np.random.default_rng(2026)
    groups = np.repeat(np.arange(2 * S, dtype=np.int32), n)
    p = np.where(groups % 2 == 0, 0.5, 0.4)
    labels = (rng.random(groups.size) < p).astype(np.int8)
    counts = clarion.grouped_counts(groups, labels, n_groups=2 * S, n_labels=2, n_bootstrap=R, seed=7)
    C = counts.reshape(R, S, 2, 1, 2, 1).astype(float)  # [R, S, group(a, d), K, y, yhat]
    dpl, _ = _metrics.compute(C, ["DPL"])["DPL"]
    lo, hi = _engine.percentile_interval(dpl, 0.95)
    coverage = np.mean((lo <= 0.1) & (0.1 <= hi))
    assert 0.93 <= coverage <= 0.97, coverage


def test_bad_bootstrap_arguments():
    df = data(3, 50)
    with pytest.raises(ValueError, match="n_bootstrap must be a positive integer"):
        cb.report(df, label="y", facet="f", label_values=[1], confidence=0.9, n_bootstrap=0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        cb.report(df, label="y", facet="f", label_values=[1], confidence=0.9, seed=-1)
    assert math.isnan(_engine.percentile_interval(np.array([[np.nan], [1.0]]), 0.9)[0][0])


def test_bootstrap_driver_reports_the_first_bad_row_and_is_thread_independent():
    """The blocked CPU bootstrap driver (blocks of 256 rows, chunks of 65,536) keeps the kernel's
    contract: first offending row named, same floating sums for any thread count."""
    rng = np.random.default_rng(0)
    n = 150_000
    g = rng.integers(0, 3, n).astype(np.int32)
    lab = rng.integers(0, 2, n).astype(np.int32)
    w = rng.random(n)
    bad = g.copy()
    bad[[70_001, 100_000]] = 7
    with pytest.raises(ValueError, match="groups: code 7 at row 70001"):
        clarion.grouped_counts(bad, lab, n_groups=3, n_labels=2, n_bootstrap=3, seed=1, backend="cpu")
    one = clarion.grouped_counts(
        g, lab, weights=w, n_groups=3, n_labels=2, n_bootstrap=4, seed=9, n_threads=1, backend="cpu"
    )
    two = clarion.grouped_counts(
        g, lab, weights=w, n_groups=3, n_labels=2, n_bootstrap=4, seed=9, n_threads=2, backend="cpu"
    )
    assert np.array_equal(one, two)
    ref = clarion.grouped_counts(
        g[:3000], lab[:3000], weights=w[:3000], n_groups=3, n_labels=2, n_bootstrap=4, seed=9, backend="numpy"
    )
    got = clarion.grouped_counts(
        g[:3000], lab[:3000], weights=w[:3000], n_groups=3, n_labels=2, n_bootstrap=4, seed=9, backend="cpu"
    )
    np.testing.assert_allclose(got, ref, rtol=1e-12)
