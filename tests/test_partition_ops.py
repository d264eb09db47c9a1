"""The engines' partition-level public operations (clarion.bias.partition,
clarion.explain.partition) give the one-shot results when run by hand over a split of the rows,
as a scheduler (clarion.distributed) runs them."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import clarion.bias as cb
from clarion.bias import partition as bp
from clarion.explain import KernelShap, partial_dependence
from clarion.explain import partition as ep


def _data(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": (x1 + 0.5 * rng.normal(size=n) > 0).astype(np.int64),
            "s": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "g": rng.choice(["u", "v"], n),
            "x1": x1,
            "x2": rng.normal(size=n),
            "pred": (x1 > 0.1).astype(np.int64),
        }
    )


def _split(df: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    cuts = np.linspace(0, len(df), k + 1).astype(int)
    return [df.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def _tree(items, combine, every=2):
    level = list(items)
    while len(level) > 1:
        level = [combine(level[i : i + every]) for i in range(0, len(level), every)]
    return combine(level)


@pytest.mark.parametrize("confidence", [None, 0.9])
def test_bias_partitions_equal_the_one_shot_report(confidence):
    df = _data()
    kw = dict(label="y", label_values=[1], facet="s", predicted_label="pred", group_variable="g")
    methods = list(cb.COUNT_METRICS)  # FlipTest needs the rows: its own operations, below
    one = cb.report(df, **kw, methods=methods, confidence=confidence, n_bootstrap=20, seed=3)
    spec = bp.Spec.build(**kw)
    bp.check_columns(df.iloc[:0], spec)
    parts = _split(df, 5)
    if confidence is None:
        counted = [(bp.count_partition(p, spec, "clarion", index=i)[0], None) for i, p in enumerate(parts)]
    else:
        kept = [bp.count_partition(p, spec, "clarion", index=i, keep=True) for i, p in enumerate(parts)]
        offsets = np.concatenate([[0], np.cumsum([k[2] for k in kept])[:-1]])
        counted = [bp.bootstrap_partition(k, spec, int(o), 20, 3) for k, o in zip(kept, offsets)]
    merged, boot = _tree(counted, functools.partial(bp.merge_pairs, spec))
    many = bp.report_from_states(spec, merged, boot, methods=methods, confidence=confidence, n_bootstrap=20)
    pd.testing.assert_frame_equal(one.to_frame(), many.to_frame(), check_exact=True)
    # a state survives the round trip through a plain dict
    st = bp.state_from_dict(spec, merged)
    again = bp.state_to_dict(st)
    assert again["n_rows"] == len(df) and again["label_vocab"] == merged["label_vocab"]


def test_bias_partition_errors_name_the_partition():
    df = _data(40)
    df.loc[25, "y"] = np.nan
    spec = bp.Spec.build(label="y", label_values=[1], facet="s")
    with pytest.raises(ValueError, match="partition 1"):
        bp.count_partition(df.iloc[20:], spec, "clarion", index=1)


def test_fliptest_partitions_equal_the_one_shot_value():
    df = _data(600, seed=4)
    kw = dict(label="y", label_values=[1], facet="s", predicted_label="pred", features=["x1", "x2"])
    one = cb.report(df, **kw, methods=["FT"], stage="post")
    spec = bp.Spec.build(**kw)
    parts = _split(df, 3)
    merged = bp.merge_state_dicts(spec, [bp.count_partition(p, spec, "clarion")[0] for p in parts])
    state = bp.state_from_dict(spec, merged)
    combos = bp.flip_combos(state, "s", "clarion")
    rows = [bp.flip_rows(p, spec, merged, "clarion", "s") for p in parts]
    ref = bp.flip_gather(rows)
    res = bp.flip_add([bp.flip_query(r, ref, combos) for r in rows])
    many = bp.report_from_states(
        spec, merged, methods=["FT"], stage="post", ft=lambda facet, codes, m: bp.flip_result(res, codes, m, "clarion")
    )
    pd.testing.assert_frame_equal(one.to_frame(), many.to_frame(), check_exact=True)


def _f(A):
    A = np.asarray(A, dtype=float)
    return np.column_stack([np.tanh(A @ np.arange(1.0, A.shape[1] + 1)), A[:, 0] ** 2])


def test_explain_partitions_equal_the_one_shot_explanation():
    rng = np.random.default_rng(1)
    B, X = rng.normal(size=(6, 4)), rng.normal(size=(9, 4))
    ks = KernelShap(_f, B, seed=5, num_samples=40)
    one = ks.explain(X)
    parts = [ep.explain_partition(ks, X[a:b]) for a, b in ((0, 4), (4, 9))]
    np.testing.assert_array_equal(one.values, np.concatenate([p[0] for p in parts]))
    assert ep.empty_values(ks).shape == (0, 4, 2) and ks.n_outputs == 2 and not ks.vector_out
    cols = ep.shap_columns(ks)
    frame = pd.concat([ep.shap_partition_frame(X[a:b], ks, cols) for a, b in ((0, 4), (4, 9))], ignore_index=True)
    np.testing.assert_array_equal(frame.to_numpy(), one.values.transpose(0, 2, 1).reshape(9, 8))
    assert ks.player_columns == [[0], [1], [2], [3]]


def test_pd_partial_sums_equal_partial_dependence():
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=50), "b": rng.integers(0, 5, 50), "c": rng.choice(["p", "q"], 50)})

    def f(df):
        return np.column_stack([df["a"] * df["b"], (df["c"] == "p").astype(float)])

    one = partial_dependence(f, X, ["a", "b", "c"], grid_resolution=4)
    grid_resolution, percentiles = ep.check_pd_arguments(4, (0.0, 1.0))
    codec = ep.TabularCodec(X.iloc[:0], "X")
    predict = ep.prediction_function(f)
    cols = ep.feature_columns(["a", "b", "c"], codec.columns)
    template = codec.encode(X.iloc[:1], "X")[:1]
    first = predict(codec.decode(template))
    outputs = list(range(first.shape[1]))
    grids, shown = [], []
    for j in cols:
        col = ep.pd_column(codec, j, X[codec.columns[j]])
        grid, sh = ep.pd_grid(codec, template, col, j, grid_resolution, percentiles)
        gx = np.tile(template, (grid.size, 1)).astype(template.dtype)
        gx[:, j] = grid
        grids.append((j, gx))
        shown.append(sh)
    threads = ep.kernel_threads(None)
    sums = ep.pd_add(
        [
            ep.pd_partial_sums(p, codec, predict, grids, len(X), 1 << 20, threads)
            for p in (X.iloc[:20], X.iloc[20:], X.iloc[:0])
        ]
    )
    many = pd.concat(
        [ep.pdp_frame(codec.columns[j], sh, outputs, avg) for (j, _), sh, avg in zip(grids, shown, sums)],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(one, many, rtol=1e-12)
