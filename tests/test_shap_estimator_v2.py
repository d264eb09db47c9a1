"""The cubic estimator's degree-5 terms (issue 19, follow-up): the dual form with the fifth-order odd
terms against an explicit numpy primal fit, exactness on degree-5 games, the (M, S) rule that
chooses them, and the explainer end to end (efficiency, determinism, standard errors)."""

from __future__ import annotations

import itertools
from math import comb, factorial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.explain import KernelShap
from clarion.explain import _kernels as K


def _odd_features(Z: np.ndarray, degrees: tuple[int, ...]):
    """X [S, Q] = (z, t_A for |A| in degrees) with t_A = (prod_{i in A} x_i + 1) / 2, x = 2z - 1,
    and the Shapley share of each term, [Q, M] (1/|A| to each member)."""
    M = Z.shape[1]
    x = 2.0 * Z - 1.0
    cols, share = [Z.astype(np.float64)], [np.eye(M)]
    for d in degrees:
        T = np.array(list(itertools.combinations(range(M), d)))
        cols.append((np.prod(x[:, T], axis=2) + 1.0) / 2.0)
        sh = np.zeros((len(T), M))
        sh[np.arange(len(T))[:, None], T] = 1.0 / d
        share.append(sh)
    return np.hstack(cols), np.vstack(share)


def _primal_reference(Z: np.ndarray, w: np.ndarray, ridge: float, gamma: float):
    """Plain numpy: weighted least squares of y on (z, cubic terms, quintic terms), ridge ``ridge``
    on the cubic coefficients and ``ridge / gamma`` on the quintic ones, under sum(coef) = Delta;
    the operator of the fitted surrogate's Shapley values (L, c) and its residual operator
    (r = R y + rdelta Delta)."""
    M = Z.shape[1]
    w = w / w.sum()
    X, T = _odd_features(Z, (3, 5))
    Q = X.shape[1]
    n3 = comb(M, 3)
    A = (X.T * w) @ X
    A[np.arange(M, M + n3), np.arange(M, M + n3)] += ridge
    A[np.arange(M + n3, Q), np.arange(M + n3, Q)] += ridge / gamma
    sol = np.linalg.solve(A, np.hstack([T, np.ones((Q, 1))]))
    U, t = sol[:, :M], sol[:, M]
    XtW = X.T * w
    L = U.T @ XtW - np.outer(T.T @ t, t @ XtW) / t.sum()
    # coefficients theta = A^-1 X'W y - t (1'A^-1 X'W y - Delta) / (1't): Theta y + theta_delta Delta
    Theta = np.linalg.solve(A, XtW) - np.outer(t, t @ XtW) / t.sum()
    R = np.eye(len(Z)) - X @ Theta
    return L, T.T @ t / t.sum(), R, -X @ (t / t.sum())


def _exact(values: np.ndarray, M: int) -> np.ndarray:
    """Shapley values from the values of all 2^M coalitions (bit i of the index = player i)."""
    codes = np.arange(1 << M)
    size = ((codes[:, None] >> np.arange(M)) & 1).sum(axis=1)
    wt = np.array([factorial(s) * factorial(M - s - 1) / factorial(M) for s in range(M)])
    phi = np.empty(M)
    for j in range(M):
        without = codes[((codes >> j) & 1) == 0]
        phi[j] = np.sum((values[without | (1 << j)] - values[without]) * wt[size[without]])
    return phi


@settings(max_examples=12)
@given(
    M=st.integers(5, 9),
    pairs=st.integers(10, 120),
    gamma=st.sampled_from([0.01, 0.1, 1.0]),
    ridge=st.sampled_from([0.01, 0.2]),
    seed=st.integers(0, 1000),
)
def test_quintic_dual_equals_explicit_primal(M, pairs, gamma, ridge, seed):
    S = min(2 * pairs, 2**M - 4)  # not the full plan (that is the exact operator's business)
    Z, w, *_ = K.stratified_plan(M, S, seed)
    got = K._cubic_dual(Z, w / w.sum(), ridge, True, gamma)
    if got is None:  # too few pairs to determine the linear part: the caller falls back
        assert np.linalg.matrix_rank(Z.astype(float)) < M
        return
    L, c, status, extra = got
    Lr, cr, Rr, rdr = _primal_reference(Z, w, ridge, gamma)
    np.testing.assert_allclose(L, Lr, atol=1e-9)
    np.testing.assert_allclose(c, cr, atol=1e-9)
    np.testing.assert_allclose(L.sum(axis=0), 0.0, atol=1e-10)  # efficiency exact
    assert abs(c.sum() - 1.0) < 1e-10
    # the residuals of the same fit (the standard errors' input) and the hat diagonal
    np.testing.assert_allclose(extra["R"], Rr, atol=1e-8)
    np.testing.assert_allclose(extra["rdelta"], rdr, atol=1e-8)
    np.testing.assert_allclose(extra["h"], 1.0 - np.diag(Rr), atol=1e-8)


def test_quintic_terms_make_degree5_games_nearly_exact():
    """A game with degree-5 odd interactions: with the quintic terms (a small ridge) the estimate is
    within the ridge's shrinkage of the exact values; the cubic surrogate alone is far off."""
    M = 9
    rng = np.random.default_rng(0)
    quint = [tuple(rng.choice(M, 5, replace=False)) for _ in range(4)]
    a, c5, B2, C3 = rng.normal(size=M), rng.normal(size=4), rng.normal(size=(M, M)), rng.normal(size=(M, M, M))

    def v(z):
        x = 2 * z - 1
        odd5 = sum(ci * np.prod(x[list(A)]) for ci, A in zip(c5, quint))
        return a @ z + 0.3 * z @ B2 @ z + 0.2 * np.einsum("ijk,i,j,k->", C3, z, z, z) + odd5 + 0.5 * np.prod(x[:4])

    codes = np.arange(1 << M)
    values = np.array([v(z) for z in ((codes[:, None] >> np.arange(M)) & 1).astype(float)])
    exact = _exact(values, M)
    Z, w, *_ = K.stratified_plan(M, 480, seed=2)  # 240 pairs >= 9 + 84 + 126 coefficients
    idx = (Z.astype(np.int64) << np.arange(M)).sum(axis=1)
    y, delta = values[idx] - values[0], values[-1] - values[0]
    L5, c5_, _, _ = K.cubic_operator(Z, w, ridge=1e-4, quintic=1.0)
    L3, c3, _, _ = K.cubic_operator(Z, w, ridge=1e-4, quintic=0.0)
    e5 = np.abs(L5 @ y + c5_ * delta - exact).max()
    e3 = np.abs(L3 @ y + c3 * delta - exact).max()
    assert e5 < 2e-3 and e3 > 30 * e5


def test_quintic_weight_rule_and_the_explainers_operator():
    # total prior variance of the degree-5 block = QUINTIC_WEIGHT x that of the cubic block
    assert K.quintic_weight(12, 2072) == pytest.approx(K.QUINTIC_WEIGHT * 220 / 792)
    assert K.quintic_weight(20, 4096) == pytest.approx(K.QUINTIC_WEIGHT * 1140 / 15504)
    assert K.quintic_weight(20, K.QUINTIC_MAX_DUAL) == 0.0  # S + M + 1 over the cap: cubic alone
    assert K.quintic_weight(4, 14) == 0.0 and K.quintic_weight(40, 1000) == 0.0  # no degree 5 / no cubic terms
    rng = np.random.default_rng(1)
    B, X = rng.normal(size=(4, 10)), rng.normal(size=(3, 10))

    def f(A):
        return np.tanh(A @ np.linspace(-1, 1, 10) + A[:, 0] * A[:, 1] * A[:, 2] * A[:, 3] * A[:, 4])

    ex = KernelShap(f, B, num_samples=400, seed=3)
    Z, w, *_ = K.stratified_plan(10, 400, 3)
    L, c, _, _ = K.cubic_operator(Z, w)  # the default: quintic_weight(10, 400) > 0, dual form
    Lc, cc, _, _ = K.cubic_operator(Z, w, quintic=0.0)
    np.testing.assert_array_equal(ex._L, L)
    np.testing.assert_array_equal(ex._c, c)
    assert np.abs(L - Lc).max() > 1e-4  # the degree-5 terms change the operator
    got = ex.explain(X)
    np.testing.assert_allclose(got.values.sum(axis=1), f(X) - f(B).mean(), atol=1e-12)


def test_quintic_operator_standard_error_terms_are_the_cubic_fits():
    """With the standard-error terms (hat=True) the operator is the same bit for bit, and the
    residual terms are the cubic fit's (the degree-5 terms would shrink the residuals more than
    the error)."""
    Z, w, *_ = K.stratified_plan(10, 400, seed=5)
    assert K.quintic_weight(10, 400) > 0
    L0, c0, _, e0 = K.cubic_operator(Z, w)
    L1, c1, _, e1 = K.cubic_operator(Z, w, hat=True)
    assert e0 is None
    np.testing.assert_array_equal(L1, L0)
    np.testing.assert_array_equal(c1, c0)
    ec = K.cubic_operator(Z, w, hat=True, quintic=0.0)[3]
    assert e1.keys() == ec.keys()
    for key in ec:
        np.testing.assert_array_equal(np.asarray(e1[key]), np.asarray(ec[key]))


def test_explainer_with_quintic_terms_accuracy_determinism_and_std():
    M = 10
    rng = np.random.default_rng(7)
    B, X = rng.normal(size=(5, M)), rng.normal(size=(5, M))
    wts = np.linspace(-1, 1, M)

    def f(A):
        h = np.maximum(A @ np.outer(wts, np.ones(6)) + np.arange(6) * 0.2 - 0.5, 0.0)
        return 1 / (1 + np.exp(-(h.sum(axis=1) - 1.0 + 0.3 * A[:, 0] * A[:, 5] * A[:, 7])))

    ref = KernelShap(f, B, num_samples=2**M - 2).explain(X).values
    q5 = KernelShap(f, B, num_samples=600, seed=2).explain(X, return_std=True)
    old = KernelShap(f, B, num_samples=600, seed=2, estimator="shap").explain(X).values
    assert np.median(np.abs(q5.values - ref)) * 2 < np.median(np.abs(old - ref))
    np.testing.assert_allclose(q5.values.sum(axis=1), f(X) - f(B).mean(), atol=1e-12)
    a = KernelShap(f, B, num_samples=600, seed=2, n_threads=1, memory_budget=4096).explain(X).values
    b = KernelShap(f, B, num_samples=600, seed=2, backend="numpy").explain(X).values
    np.testing.assert_array_equal(a, q5.values)
    np.testing.assert_allclose(b, a, atol=1e-12)
    one = KernelShap(f, B, num_samples=600, seed=2).explain(X[2:3]).values
    np.testing.assert_array_equal(one[0], a[2])  # a row's result depends only on that row
    z = []
    for seed in range(4):
        e = KernelShap(f, B, num_samples=600, seed=seed).explain(X, return_std=True)
        z.append(np.abs(e.values - ref) / e.std)
    rms = np.sqrt(np.mean(np.concatenate(z) ** 2))
    assert 0.3 < rms < 3.0
