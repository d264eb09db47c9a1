"""FlipTest and its exact k-NN vote kernel: C++ / CUDA against the numpy reference, scikit-learn
and smclarify."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion import _backend, _reference
from clarion.bias import fliptest as ft
from clarion.bias.fliptest import FlipTestResult, flip_test


def kernel_votes(backend, xa, ya, xd, k, n_threads=0):
    """positives, votes from the compiled kernel of `backend`."""
    core = _backend.core()
    xa = np.ascontiguousarray(xa, dtype=np.float64)
    xd = np.ascontiguousarray(xd, dtype=np.float64)
    ya = np.ascontiguousarray(ya, dtype=np.uint8)
    if backend == "cpu":
        pos = np.empty(xd.shape[0], dtype=np.int64)
        votes = np.empty(xd.shape[0], dtype=np.uint8)
        core.knn_vote_cpu(xa, ya, xd, pos, votes, k, n_threads)
        return pos, votes.astype(bool)
    import cupy

    pos, votes = ft._vote_cuda(cupy.asarray(xa), cupy.asarray(ya), cupy.asarray(xd), k)
    return pos.get(), votes.get().astype(bool)


@st.composite
def knn_cases(draw, max_a=60, max_d=40, max_m=5):
    """Reference/query rows with many exact distance ties (small integer grids, duplicates)."""
    m = draw(st.integers(1, max_m))
    n_a = draw(st.integers(1, max_a))
    n_d = draw(st.integers(1, max_d))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["grid", "continuous", "duplicates", "constant"]))
    if kind == "grid":  # coordinates on a small integer grid: equal distances everywhere
        span = draw(st.integers(1, 4))
        xa = rng.integers(-span, span + 1, size=(n_a, m)).astype(np.float64)
        xd = rng.integers(-span, span + 1, size=(n_d, m)).astype(np.float64)
    elif kind == "continuous":
        xa, xd = rng.normal(size=(n_a, m)), rng.normal(size=(n_d, m))
    elif kind == "duplicates":  # few distinct rows, repeated; queries at those rows too
        base = rng.normal(size=(max(1, n_a // 4), m))
        xa = base[rng.integers(0, base.shape[0], n_a)]
        xd = np.concatenate([base, rng.normal(size=(n_d, m))])[:n_d]
    else:  # every row identical: the k lowest reference rows are the neighbours
        xa, xd = np.ones((n_a, m)), np.ones((n_d, m))
    labels = draw(st.sampled_from(["random", "all0", "all1"]))
    ya = {"random": rng.random(n_a) < 0.5, "all0": np.zeros(n_a, bool), "all1": np.ones(n_a, bool)}[labels]
    yd = rng.random(n_d) < 0.5
    k = draw(st.one_of(st.just(ft.default_k(n_a)), st.just(n_a), st.integers(1, n_a)))
    return xa, ya, xd, yd, k


@given(case=knn_cases())
def test_kernel_matches_reference_exactly(compiled, case):
    xa, ya, xd, _, k = case
    want_pos, want_votes = _reference.knn_vote(xa, ya, xd, k)
    got_pos, got_votes = kernel_votes(compiled, xa, ya, xd, k)
    np.testing.assert_array_equal(got_pos, want_pos)
    np.testing.assert_array_equal(got_votes, want_votes)


@given(case=knn_cases())
def test_flip_test_matches_reference_backend(compiled, case):
    xa, ya, xd, yd, k = case
    want = flip_test(xa, xd, ya, yd, k=k, backend="numpy")
    got = flip_test(*compiled.put(xa, xd, ya, yd), k=k, backend=compiled)
    assert got == want
    assert got.f_plus + got.f_minus <= got.n_d
    assert got.value == (got.f_plus - got.f_minus) / got.n_d


def reference_flip_test(xa, xd, ya, yd, k):
    """FT straight from the definition, on the reference vote."""
    _, votes = _reference.knn_vote(xa, ya, xd, k)
    f_plus = int(np.sum(yd & ~votes))
    f_minus = int(np.sum(~yd & votes))
    return FlipTestResult((f_plus - f_minus) / len(yd), f_plus, f_minus, k, len(ya), len(yd))


@pytest.mark.parametrize(
    ("m", "n_a", "n_d", "k", "grid"),
    [
        (3, 4000, 1500, 5, False),
        (2, 3000, 1000, 5, True),
        (1, 2000, 800, 7, True),
        (6, 3000, 600, 40, False),
        (4, 2500, 500, 4, True),
    ],
)
def test_cpu_tree_larger_inputs(m, n_a, n_d, k, grid):
    """Deep trees, heavy ties (integer grids), a heap-based neighbour set (k > 32), an even k."""
    rng = np.random.default_rng(n_a + m)
    if grid:
        xa = rng.integers(0, 6, size=(n_a, m)).astype(float)
        xd = rng.integers(0, 6, size=(n_d, m)).astype(float)
    else:
        xa, xd = rng.normal(size=(n_a, m)) * [10.0**j for j in range(m)], rng.normal(size=(n_d, m))
    ya, yd = rng.random(n_a) < 0.3, rng.random(n_d) < 0.6
    want_pos, _ = _reference.knn_vote(xa, ya, xd, k)
    got_pos, _ = kernel_votes("cpu", xa, ya, xd, k)
    np.testing.assert_array_equal(got_pos, want_pos)
    assert flip_test(xa, xd, ya, yd, k=k, backend="cpu") == reference_flip_test(xa, xd, ya, yd, k)


def test_result_independent_of_thread_count():
    rng = np.random.default_rng(7)
    xa, xd = rng.integers(0, 5, size=(3000, 3)).astype(float), rng.normal(size=(2000, 3))
    ya = rng.random(3000) < 0.5
    runs = [kernel_votes("cpu", xa, ya, xd, 5, n_threads=t)[0] for t in (1, 2, 3, 8)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


@settings(max_examples=30)
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 6),
    n_a=st.integers(1, 80),
    n_d=st.integers(1, 40),
    k_frac=st.floats(0, 1),
)
def test_votes_match_sklearn_on_tie_free_data(seed, m, n_a, n_d, k_frac):
    """KNeighborsClassifier (uniform weights, Euclidean) gives the same votes, even k included."""
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(seed)
    xa, xd = rng.normal(size=(n_a, m)), rng.normal(size=(n_d, m))
    ya = rng.random(n_a) < 0.5
    k = 1 + int(k_frac * (n_a - 1))
    want = KNeighborsClassifier(n_neighbors=k).fit(xa, ya).predict(xd)
    _, got = kernel_votes("cpu", xa, ya, xd, k)
    np.testing.assert_array_equal(got, want)


def test_default_k_follows_smclarify():
    rng = np.random.default_rng(0)
    for n_a, want in [(1, 1), (9, 1), (10, 5), (500, 5)]:
        r = flip_test(rng.normal(size=(n_a, 2)), rng.normal(size=(3, 2)), rng.random(n_a) < 0.5, [True] * 3)
        assert (r.k, r.n_a, r.n_d) == (want, n_a, 3)


def test_small_hand_example():
    # a: x = 0, 1, 2 with predictions 1, 1, 0; d: x = 0.1 (pred 0), 1.9 (pred 1), 1.0 (pred 1); k = 1.
    # Nearest a-rows: 0 (1), 2 (0), 1 (1): F+ = 1 (row 1.9), F- = 1 (row 0.1) -> FT = 0.
    r = flip_test([[0.0], [1.0], [2.0]], [[0.1], [1.9], [1.0]], [True, True, False], [False, True, True])
    assert r == FlipTestResult(0.0, 1, 1, 1, 3, 3)
    # Tie: the d-row 0.5 is equidistant from a-rows 0 and 1: the lower index (row 0, label 0) wins.
    r = flip_test([[0.0], [1.0]], [[0.5]], [False, True], [True], k=1)
    assert (r.f_plus, r.f_minus, r.value) == (1, 0, 1.0)
    r = flip_test([[1.0], [0.0]], [[0.5]], [False, True], [True], k=1)
    assert (r.f_plus, r.f_minus, r.value) == (1, 0, 1.0)
    r = flip_test([[1.0], [0.0]], [[0.5]], [True, False], [False], k=1)
    assert (r.f_plus, r.f_minus, r.value) == (0, 1, -1.0)
    # Even k with a split vote: negative.
    r = flip_test([[0.0], [1.0]], [[0.5]], [False, True], [False], k=2)
    assert (r.f_plus, r.f_minus) == (0, 0)


def test_all_same_predictions_and_k_equals_n_a():
    rng = np.random.default_rng(3)
    xa, xd = rng.normal(size=(40, 3)), rng.normal(size=(25, 3))
    r = flip_test(xa, xd, np.ones(40, bool), np.ones(25, bool))
    assert (r.f_plus, r.f_minus, r.value) == (0, 0, 0.0)
    r = flip_test(xa, xd, np.ones(40, bool), np.zeros(25, bool))
    assert (r.f_plus, r.f_minus, r.value) == (0, 25, -1.0)
    ya = np.arange(40) < 21  # 21 of 40 positive: every d-row votes positive with k = n_a
    r = flip_test(xa, xd, ya, np.zeros(25, bool), k=40)
    assert (r.f_minus, r.value) == (25, -1.0)


def test_dataframe_and_integer_inputs():
    rng = np.random.default_rng(5)
    a = pd.DataFrame({"age": rng.integers(18, 80, 60), "income": rng.normal(size=60), "flag": rng.random(60) < 0.5})
    d = pd.DataFrame({"age": rng.integers(18, 80, 30), "income": rng.normal(size=30), "flag": rng.random(30) < 0.5})
    pa, pdd = pd.Series(rng.random(60) < 0.5), pd.Series(rng.integers(0, 2, 30))
    got = flip_test(a, d, pa, pdd)
    want = flip_test(a.to_numpy(float), d.to_numpy(float), pa.to_numpy(), pdd.to_numpy().astype(bool), backend="numpy")
    assert got == want


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([1.0, 2.0], [[1.0]], [True, False], [True]), {}, ft.MSG_NDIM.format(arg="features_a", shape=(2,))),
        (([[1.0, 2.0]], [[1.0]], [True], [True]), {}, ft.MSG_COLUMNS.format(got=1, want=2)),
        ((np.zeros((2, 0)), np.zeros((1, 0)), [True, False], [True]), {}, ft.MSG_NO_COLUMNS.format(arg="features_a")),
        (
            ([[1.0]], [[1.0]], [True, False], [True]),
            {},
            ft.MSG_PRED_LENGTH.format(arg="pred_a", got=2, features="features_a", n=1),
        ),
        (([[1.0]], [[1.0]], [True], [2]), {}, ft.MSG_PRED_VALUE.format(arg="pred_d", value=2, row=0)),
        (([[1.0]], [[1.0]], [True], np.array(["x"])), {}, ft.MSG_PRED_DTYPE.format(arg="pred_d", dtype="<U1")),
        (([[1.0]], [[1.0]], [[True]], [True]), {}, ft.MSG_PRED_NDIM.format(arg="pred_a", shape=(1, 1))),
        (([[1.0]], np.zeros((0, 1)), [True], []), {}, ft.MSG_EMPTY_D),
        ((np.zeros((0, 1)), [[1.0]], [], [True]), {}, ft.MSG_EMPTY_A),
        (([[1.0], [2.0]], [[1.0]], [True, False], [True]), {"k": 3}, ft.MSG_K.format(n_a=2, k=3)),
        (([[1.0], [2.0]], [[1.0]], [True, False], [True]), {"k": 0}, ft.MSG_K.format(n_a=2, k=0)),
        (([[1.0], [2.0]], [[1.0]], [True, False], [True]), {"k": True}, ft.MSG_K.format(n_a=2, k=True)),
        (([[1.0], [2.0]], [[1.0]], [True, False], [True]), {"k": 1.0}, ft.MSG_K.format(n_a=2, k=1.0)),
        (
            ([[1.0, 0.0], [2.0, np.nan]], [[1.0, 0.0]], [True, False], [True]),
            {},
            ft.MSG_NONFINITE.format(arg="features_a", value=np.nan, row=1, col=1),
        ),
        (
            ([[1.0]], [[1.0], [np.inf], [-np.inf]], [True], [True] * 3),
            {},
            ft.MSG_NONFINITE.format(arg="features_d", value=np.inf, row=1, col=0),
        ),
        (
            (np.array([["a"]]), [[1.0]], [True], [True]),
            {},
            ft.MSG_DTYPE.format(arg="features_a", dtype="<U1", where=""),
        ),
    ],
)
def test_bad_input(args, kwargs, message):
    with pytest.raises(ValueError) as info:
        flip_test(*args, **kwargs)
    assert str(info.value) == message


def test_bad_dataframe_columns_are_named():
    a = pd.DataFrame({"x": [1.0, 2.0], "city": ["a", "b"]})
    with pytest.raises(ValueError, match=r"features_a: .*numeric or bool.* in column 'city'"):
        flip_test(a, a, [True, False], [True, False])
    a = pd.DataFrame({"x": [1.0, 2.0], "y": [0.5, None]})
    with pytest.raises(ValueError, match=r"features_d: non-finite value nan at row 1, column 1 \('y'\)"):
        flip_test(a.fillna(0), a, [True, False], [True, False])


def test_nullable_pandas_predictions():
    xa, xd = [[0.0], [1.0]], [[0.1], [0.9]]
    got = flip_test(xa, xd, pd.Series([True, False], dtype="boolean"), pd.Series([1, 0], dtype="Int64"), k=1)
    assert got == flip_test(xa, xd, [True, False], [True, False], k=1)
    with pytest.raises(ValueError, match=r"pred_d: value nan at row 1 is not a boolean"):
        flip_test(xa, xd, [True, False], pd.Series([True, None], dtype="boolean"))


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        flip_test([[1.0]], [[1.0]], [True], [True], backend="gpu")


# ---- smclarify as the oracle -------------------------------------------------------------------


def smclarify_ft(xa, xd, ya, yd):
    pytest.importorskip("smclarify")
    from smclarify.bias.metrics import FT

    df = pd.DataFrame(np.concatenate([xa, xd]), columns=[f"f{j}" for j in range(xa.shape[1])])
    facet = pd.Series(np.r_[np.zeros(len(xa), bool), np.ones(len(xd), bool)])
    pred = pd.Series(np.r_[ya, yd].astype(bool))
    logging.disable(logging.CRITICAL)
    try:
        return FT(df, facet, pred)
    finally:
        logging.disable(logging.NOTSET)


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 5), n_a=st.integers(1, 120), n_d=st.integers(1, 60))
def test_matches_smclarify_ft(seed, m, n_a, n_d):
    rng = np.random.default_rng(seed)
    xa, xd = rng.normal(size=(n_a, m)), rng.normal(size=(n_d, m))  # continuous: no distance ties
    ya, yd = rng.random(n_a) < 0.5, rng.random(n_d) < 0.5
    want = smclarify_ft(xa, xd, ya, yd)
    got = flip_test(xa, xd, ya, yd)
    assert abs(got.value - want) <= 1e-12


def test_matches_smclarify_ft_mixed_columns():
    """Integer, bool and float feature columns, through a DataFrame, at a size with a deep tree."""
    rng = np.random.default_rng(11)
    n = 3000
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.lognormal(10, 1, n),
            "score": rng.normal(size=n),
            "member": rng.random(n) < 0.3,
        }
    )
    df["income"] += rng.random(n)  # income ties broken: smclarify's tree order is then irrelevant
    facet = rng.random(n) < 0.35
    pred = rng.random(n) < 0.5
    want = smclarify_ft(df[~facet].to_numpy(float), df[facet].to_numpy(float), pred[~facet], pred[facet])
    got = flip_test(df[~facet], df[facet], pred[~facet], pred[facet])
    assert abs(got.value - want) <= 1e-12


@pytest.mark.gpu
def test_cuda_reruns_identical_and_large_k_falls_back(cuda):
    """Distances are rounded the same way on both sides (no FMA, knn.hpp), so the CUDA votes equal
    the CPU votes bit for bit and reruns are identical."""
    rng = np.random.default_rng(9)
    xa, xd = rng.integers(0, 4, size=(5000, 3)).astype(float), rng.normal(size=(3000, 3))
    ya = rng.random(5000) < 0.4
    first = kernel_votes("cuda", xa, ya, xd, 5)
    second = kernel_votes("cuda", xa, ya, xd, 5)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[0], kernel_votes("cpu", xa, ya, xd, 5)[0])
    np.testing.assert_array_equal(first[1], kernel_votes("cpu", xa, ya, xd, 5)[1])
    k = int(_backend.core().KNN_CUDA_MAX_K) + 1
    yd = rng.random(3000) < 0.5
    got = flip_test(*cuda.put(xa, xd, ya, yd), k=k)
    assert got == flip_test(xa, xd, ya, yd, k=k, backend="cpu")
