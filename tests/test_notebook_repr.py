"""Notebook views: ``_repr_html_`` of BiasReport, Explanation and AnalysisResult (escaped, with the
numbers), and the Explanation plots drawn from the values (bars, points and colours checked)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pytest

from clarion import bias, explain
from clarion.job.outputs import AnalysisResult

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

from clarion.explain import plots  # noqa: E402

EVIL = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def explanation(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(["x", "y"], n),
            "d": rng.normal(size=n),
        }
    )

    def f(Z):
        return (
            2 * np.asarray(Z["a"], float)
            + np.asarray(Z["b"], float)
            + (np.asarray(Z["c"]) == "x")
            + 0.1 * np.asarray(Z["d"], float)
        )

    return explain.KernelShap(f, X.iloc[:8], seed=0).explain(X), X


# ---- _repr_html_ -----------------------------------------------------------------------------------


def test_bias_report_html_escapes_and_shows_every_metric():
    df = pd.DataFrame({"y": [1, 0, 1, 1, 0, 1], "f": [EVIL, EVIL, "b", "b", "b", EVIL], "p": [1, 0, 0, 1, 1, 1]})
    rep = bias.report(df, label="y", facet="f", label_values=[1], predicted_label="p", methods=["DPL", "DI", "CI"])
    out = rep._repr_html_()
    assert EVIL not in out and html.escape(EVIL) in out
    frame = rep.to_frame()
    for r in frame.itertuples():
        assert f"<b>{r.metric}</b>" in out
        assert ("n/a" if np.isnan(r.value) else f"{r.value:.4g}") in out
    assert out.count("<tr>") == len(frame) + 1


def test_explanation_html_lists_the_global_importance():
    e, _ = explanation()
    e.feature_names[0] = EVIL  # a feature name from data is escaped
    out = e._repr_html_()
    assert EVIL not in out and html.escape(EVIL) in out
    g = e.global_importance()
    for name, v in g.items():
        assert f"{html.escape(str(name))}</th><td style='text-align:right'>{v:.4g}</td>" in out


def test_analysis_result_html_shows_groups_and_escapes():
    perf = bias.group_performance(
        pd.DataFrame({"y": [1, 0, 1, 1], "f": [EVIL, EVIL, "b", "b"], "s": [0.9, 0.2, 0.4, 0.8]}),
        label="y",
        facet="f",
        label_values=[1],
        probability="s",
    ).to_dict()
    entries = [dict(e, metrics=[{"name": "DPPL", "description": "d", "value": 0.25}]) for e in perf["facets"]["f"]]
    doc = {
        "version": "1.0",
        "post_training_bias_metrics": {
            "label": "y",
            "label_value_or_threshold": "1",
            "facets": {"f": entries},
            "model_performance": perf["model_performance"],
        },
    }
    res = AnalysisResult("out", doc, {"report_html": f"out/{EVIL}.html"}, 4)
    out = res._repr_html_()
    assert EVIL not in out and html.escape(EVIL) in out
    assert "<b>rows analysed:</b> 4" in out
    assert "model: accuracy 0.750 (base rate 0.750)" in out  # 0.9, 0.2 right; 0.4 wrong; 0.8 right
    g = perf["facets"]["f"][0]["group_statistics"]["facet_d"]
    assert f"<td style='text-align:right'>{g['rows']:,}</td>" in out
    assert f"{g['observed_positive_rate']:.1%}" in out


# ---- plots -----------------------------------------------------------------------------------------


def test_bar_draws_one_bar_per_feature_of_its_mean_abs_value():
    e, _ = explanation()
    ax = e.plot_bar()
    g = e.global_importance("mean_abs")
    widths = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(widths, g.to_numpy(), rtol=1e-12)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    ys = [p.get_y() for p in ax.patches]
    # the largest on top: the first bar has the highest y position
    assert ys == sorted(ys, reverse=True)
    assert [lab for _, lab in sorted(zip(ax.get_yticks(), labels), reverse=True)] == list(g.index)
    assert [t.get_text() for t in ax.texts] == [f"+{v:.3g}" for v in g]
    assert all(matplotlib.colors.to_hex(p.get_facecolor()) == plots.RED for p in ax.patches)


def test_bar_sums_the_rest_beyond_max_display():
    e, _ = explanation()
    ax = plots.bar(e, max_display=2)
    g = e.global_importance("mean_abs")
    widths = [p.get_width() for p in ax.patches]
    assert widths[0] == pytest.approx(g.iloc[0]) and widths[1] == pytest.approx(g.iloc[1:].sum())
    assert "Sum of 3 other features" in [t.get_text() for t in ax.get_yticklabels()]
    with pytest.raises(ValueError, match="max_display must be an integer >= 1"):
        plots.bar(e, max_display=0)


def test_beeswarm_places_every_value_and_colours_by_feature_value():
    e, X = explanation()
    ax = e.plot_beeswarm(max_display=3)
    g = e.global_importance("mean_abs")
    top = list(g.index[:3])
    pts = [c for c in ax.collections if len(c.get_offsets())]
    assert len(pts) == 3
    names = list(e.feature_names)
    for pos, (coll, feat) in enumerate(zip(pts, top)):
        off = np.asarray(coll.get_offsets())
        np.testing.assert_allclose(off[:, 0], e.values[:, names.index(feat)], rtol=1e-12)
        row = 2 - pos  # the most important feature on the top row
        assert np.all(np.abs(off[:, 1] - row) <= 0.4 + 1e-12)
        if feat == "c":  # not numeric: grey
            assert {matplotlib.colors.to_hex(c) for c in coll.get_facecolors()} == {"#777777"}
        else:  # colour follows the feature value: the row with the largest value is the reddest
            arr = np.asarray(coll.get_array())
            x = X[feat].to_numpy()
            lo, hi = np.percentile(x, [5, 95])
            np.testing.assert_allclose(arr, np.clip((x - lo) / (hi - lo), 0, 1), rtol=1e-12)
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]), reverse=True)
    assert ticks == list(zip([2, 1, 0], top))


def test_dependence_plots_shap_value_against_feature_value():
    e, X = explanation()
    ax = e.plot_dependence("a", color_by="b")
    off = np.asarray(ax.collections[0].get_offsets())
    np.testing.assert_allclose(off[:, 0], X["a"].to_numpy())
    np.testing.assert_allclose(off[:, 1], e.values[:, list(e.feature_names).index("a")])
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()), X["b"].to_numpy())
    assert ax.get_xlabel() == "a"
    # a categorical feature: one x position per category (jittered by at most 0.15), labelled
    ax = plots.dependence(e, "c")
    off = np.asarray(ax.collections[0].get_offsets())
    codes = (X["c"] == "y").to_numpy().astype(float)  # sorted categories: x -> 0, y -> 1
    assert np.all(np.abs(off[:, 0] - codes) <= 0.15)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y"]
    with pytest.raises(ValueError, match=r"feature: 'aa' is not an explained feature \(did you mean 'a'\?\)"):
        e.plot_dependence("aa")


def test_output_choice_for_several_outputs():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=20), "b": rng.normal(size=20)})

    def f(Z):
        a = np.asarray(Z["a"], float)
        return np.column_stack([a, -2 * a + np.asarray(Z["b"], float), a * 0])

    e = explain.KernelShap(f, X.iloc[:5], seed=0).explain(X)
    with pytest.raises(ValueError, match="output: the explanation has 3 outputs"):
        plots.bar(e)
    ax = plots.bar(e, output=1)
    want = np.abs(e.values[:, :, 1]).mean(axis=0)
    np.testing.assert_allclose(sorted((p.get_width() for p in ax.patches), reverse=True), sorted(want, reverse=True))
    with pytest.raises(ValueError, match="output: 7 is not one of"):
        plots.bar(e, output=7)
    two = explain.KernelShap(lambda Z: f(Z)[:, :2], X.iloc[:5], seed=0).explain(X)
    vals, name = plots.output_values(two)  # two outputs: the second (a binary classifier's positive class)
    np.testing.assert_array_equal(vals, two.values[:, :, 1])


def test_matplotlib_is_imported_lazily():
    import subprocess
    import sys

    code = (
        "import sys, clarion, clarion.explain, clarion.explain.plots, clarion.bias; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
