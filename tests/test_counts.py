"""grouped_counts / grouped_threshold_counts: every backend against the numpy reference."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import clarion
from clarion import _counts, _reference
from clarion.testing import CODE_DTYPES, counts_cases


def assert_same_counts(got, want, weighted):
    got = got.get() if hasattr(got, "get") else got
    assert got.shape == want.shape
    if weighted:
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    else:
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


def reference_counts(case, **kw):
    return clarion.grouped_counts(
        case.groups,
        case.labels,
        case.preds,
        weights=case.weights,
        n_groups=case.n_groups,
        n_labels=case.n_labels,
        n_preds=case.n_preds,
        backend="numpy",
        **kw,
    )


@given(case=counts_cases())
def test_grouped_counts_matches_reference(compiled, case):
    backend = compiled
    want = reference_counts(case)
    g, lab, p, w = backend.put(case.groups, case.labels, case.preds, case.weights)
    got = clarion.grouped_counts(
        g, lab, p, weights=w, n_groups=case.n_groups, n_labels=case.n_labels, n_preds=case.n_preds, backend=backend
    )
    assert_same_counts(got, want, case.weights is not None)


@given(
    case=counts_cases(max_batch=2),
    n_boot=st.integers(1, 5),
    seed=st.integers(0, 2**64 - 1),
    offset=st.integers(0, 2**40),
)
def test_bootstrap_matches_reference(compiled, case, n_boot, seed, offset):
    backend = compiled
    want = reference_counts(case, n_bootstrap=n_boot, seed=seed, row_offset=offset)
    g, lab, p, w = backend.put(case.groups, case.labels, case.preds, case.weights)
    got = clarion.grouped_counts(
        g,
        lab,
        p,
        weights=w,
        n_groups=case.n_groups,
        n_labels=case.n_labels,
        n_preds=case.n_preds,
        n_bootstrap=n_boot,
        seed=seed,
        row_offset=offset,
        backend=backend,
    )
    assert_same_counts(got, want, case.weights is not None)


@given(
    case=counts_cases(max_batch=2, with_weights=True),
    n_boot=st.integers(0, 5),
    seed=st.integers(0, 2**64 - 1),
    offset=st.integers(0, 2**40),
    threads=st.integers(1, 3),
)
def test_cpu_weighted_sums_equal_reference_bitwise_within_one_chunk(case, n_boot, seed, offset, threads):
    """Up to 65,536 rows the CPU fills one table, adding each cell's weights (times the replicate
    draw of add_replicate, grouped_counts.hpp) in row order, as np.bincount does in the reference:
    the float sums agree bit for bit, with or without bootstrap, whatever the thread count."""
    kw = dict(n_bootstrap=n_boot, seed=seed, row_offset=offset) if n_boot else {}
    want = reference_counts(case, **kw)
    got = clarion.grouped_counts(
        case.groups,
        case.labels,
        case.preds,
        weights=case.weights,
        n_groups=case.n_groups,
        n_labels=case.n_labels,
        n_preds=case.n_preds,
        backend="cpu",
        n_threads=threads,
        **kw,
    )
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@given(case=counts_cases(with_scores=True, with_preds=False), n_boot=st.sampled_from([0, 0, 2]))
def test_threshold_counts_matches_reference(compiled, case, n_boot):
    backend = compiled
    kw = dict(n_bootstrap=n_boot, seed=7) if n_boot else {}
    want = clarion.grouped_threshold_counts(
        case.groups,
        case.labels,
        case.scores,
        case.thresholds,
        weights=case.weights,
        n_groups=case.n_groups,
        n_labels=case.n_labels,
        backend="numpy",
        **kw,
    )
    g, lab, s, w = backend.put(case.groups, case.labels, case.scores, case.weights)
    got = clarion.grouped_threshold_counts(
        g, lab, s, case.thresholds, weights=w, n_groups=case.n_groups, n_labels=case.n_labels, backend=backend, **kw
    )
    assert_same_counts(got, want, case.weights is not None)


@pytest.mark.gpu
def test_cuda_equals_cpu_bitwise(cuda):
    """Integer counts (plain, bootstrap, thresholds) are exact on both sides, so CPU and CUDA agree
    bit for bit; weighted sums are reduced in a fixed order on each, so reruns on the GPU are
    bitwise identical (CPU and CUDA chunk the rows differently: they agree to rounding)."""
    rng = np.random.default_rng(21)
    n = 300_001
    g, lab = rng.integers(-1, 40, n).astype(np.int32), rng.integers(0, 3, n).astype(np.int32)
    p, s, w = rng.integers(0, 2, (n, 3)).astype(np.int8), rng.random((n, 2)), rng.exponential(size=n)
    dg, dlab, dp, ds, dw = cuda.put(g, lab, p, s, w)
    sizes = {"n_groups": 40, "n_labels": 3}
    for kw in (sizes, {**sizes, "n_bootstrap": 3, "seed": 11, "row_offset": 5}):
        host = clarion.grouped_counts(g, lab, p, backend="cpu", **kw)
        assert cuda.get(clarion.grouped_counts(dg, dlab, dp, backend="cuda", **kw)).tobytes() == host.tobytes()
        host = clarion.grouped_threshold_counts(g, lab, s, [0.2, 0.5], backend="cpu", **kw)
        dev = clarion.grouped_threshold_counts(dg, dlab, ds, [0.2, 0.5], backend="cuda", **kw)
        assert cuda.get(dev).tobytes() == host.tobytes()
    runs = [cuda.get(clarion.grouped_counts(dg, dlab, dp, weights=dw, backend="cuda", **sizes)) for _ in range(2)]
    assert runs[0].tobytes() == runs[1].tobytes()
    np.testing.assert_allclose(
        runs[0], clarion.grouped_counts(g, lab, p, weights=w, backend="cpu", **sizes), rtol=1e-12
    )


@given(case=counts_cases(with_scores=True, with_preds=False, with_weights=False))
def test_threshold_counts_equal_thresholded_predictions(case):
    """Column t of the threshold kernel equals grouped_counts on (score >= t) predictions."""
    got = clarion.grouped_threshold_counts(
        case.groups, case.labels, case.scores, case.thresholds, n_groups=case.n_groups, n_labels=case.n_labels
    )
    scores = case.scores if case.scores.ndim == 2 else case.scores[:, None]
    for t, thr in enumerate(case.thresholds):
        preds = (scores >= thr).astype(np.int8)
        want = clarion.grouped_counts(
            case.groups, case.labels, preds, n_groups=case.n_groups, n_labels=case.n_labels, n_preds=2, backend="numpy"
        )
        if case.scores.ndim == 1:
            np.testing.assert_array_equal(got[t], want[0])
        else:
            np.testing.assert_array_equal(got[:, t], want)


@given(case=counts_cases(with_preds=True, with_weights=False, max_labels=2, max_preds=2))
def test_reference_agrees_with_sklearn_confusion_matrix(case):
    from sklearn.metrics import confusion_matrix

    counts = reference_counts(case)
    preds = case.preds if case.preds.ndim == 2 else case.preds[:, None]
    counts = counts.reshape(preds.shape[1], case.n_groups, case.n_labels, case.n_preds)
    for b in range(preds.shape[1]):
        for grp in range(case.n_groups):
            m = case.groups == grp
            if not m.any():  # sklearn refuses empty input; the group's table must be all zero
                assert not counts[b, grp].any()
                continue
            want = confusion_matrix(case.labels[m], preds[m, b], labels=range(max(case.n_labels, case.n_preds, 2)))
            np.testing.assert_array_equal(counts[b, grp], want[: case.n_labels, : case.n_preds])


def test_hand_computed_example():
    groups = np.array([0, 0, 1, 1, 1, -1, 0], dtype=np.int8)
    labels = np.array([1, 0, 1, 1, 0, 1, 1], dtype=np.int8)
    preds = np.array([1, 1, 0, 1, 0, 0, 1], dtype=np.int8)
    got = clarion.grouped_counts(groups, labels, preds)
    # group 0: (y=1,p=1) x2, (y=0,p=1) x1; group 1: (1,0), (1,1), (0,0); row 5 left out
    want = np.array([[[0, 1], [0, 2]], [[1, 0], [1, 1]]])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(clarion.grouped_counts(groups, labels), [[1, 2], [1, 2]])
    w = np.array([0.5, 2, 1, 1, 3, 100, 0.25])
    np.testing.assert_array_equal(clarion.grouped_counts(groups, labels, weights=w), [[2.0, 0.75], [3.0, 2.0]])


def test_empty_and_all_left_out(backend):
    e = np.zeros(0, dtype=np.int64)
    got = clarion.grouped_counts(*backend.put(e, e, e), n_groups=2, n_labels=2, n_preds=2, backend=backend)
    assert backend.get(got).shape == (2, 2, 2) and not backend.get(got).any()
    assert clarion.grouped_counts(e, e, backend="numpy" if backend == "numpy" else "auto").shape == (0, 0)
    g = np.full(10, -1, dtype=np.int32)
    lab = np.zeros(10, dtype=np.int32)
    got = clarion.grouped_counts(*backend.put(g, lab), n_groups=3, n_labels=1, backend=backend)
    np.testing.assert_array_equal(backend.get(got), np.zeros((3, 1), dtype=np.int64))


def test_large_input_spans_many_chunks_and_threads():
    rng = np.random.default_rng(0)
    n = 400_003
    g = rng.integers(-1, 50, n)
    lab = rng.integers(0, 2, n)
    p = rng.integers(0, 2, (n, 4))
    w = rng.random(n)
    want = clarion.grouped_counts(g, lab, p, weights=w, backend="numpy")
    for threads in (1, 2, 7):
        got = clarion.grouped_counts(g, lab, p, weights=w, backend="cpu", n_threads=threads)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(
        clarion.grouped_counts(g, lab, p, backend="cpu", n_threads=3),
        clarion.grouped_counts(g, lab, p, backend="numpy"),
    )


def test_weighted_results_are_bitwise_independent_of_thread_count():
    rng = np.random.default_rng(1)
    n = 1_000_000
    g = rng.integers(0, 20, n, dtype=np.int32)
    lab = rng.integers(0, 3, n, dtype=np.int32)
    s = rng.random((n, 2))
    w = rng.exponential(size=n)
    runs = [clarion.grouped_counts(g, lab, weights=w, backend="cpu", n_threads=t) for t in (1, 2, 5, 1)]
    truns = [
        clarion.grouped_threshold_counts(g, lab, s, [0.1, 0.5, 0.9], weights=w, backend="cpu", n_threads=t)
        for t in (1, 3)
    ]
    for r in runs[1:]:
        assert r.tobytes() == runs[0].tobytes()
    assert truns[0].tobytes() == truns[1].tobytes()


def test_bootstrap_replicates_equal_explicit_poisson_weighting():
    rng = np.random.default_rng(2)
    n = 5000
    g = rng.integers(0, 3, n)
    lab = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    got = clarion.grouped_counts(g, lab, p, n_bootstrap=4, seed=123, backend="cpu")
    rows = np.arange(n)
    for r in range(4):
        k = _reference.poisson1_draws(123, r, rows)
        want = np.zeros((3, 2, 2), dtype=np.int64)
        np.add.at(want, (g, lab, p), k)
        np.testing.assert_array_equal(got[r], want)


def test_poisson_draws_have_poisson1_moments():
    k = _reference.poisson1_draws(99, 0, np.arange(2_000_000))
    # Poisson(1): mean 1, variance 1, P(0) = 1/e. Standard errors at n = 2e6 are ~7e-4.
    assert abs(k.mean() - 1) < 4e-3
    assert abs(k.var() - 1) < 6e-3
    assert abs((k == 0).mean() - np.exp(-1)) < 2e-3
    # replicates are (nearly) uncorrelated
    k2 = _reference.poisson1_draws(99, 1, np.arange(2_000_000))
    assert abs(np.corrcoef(k, k2)[0, 1]) < 4e-3


def test_bootstrap_chunks_with_row_offset_sum_to_whole(backend):
    rng = np.random.default_rng(3)
    n = 10_000
    g, lab = backend.put(rng.integers(0, 4, n), rng.integers(0, 2, n))
    whole = clarion.grouped_counts(g, lab, n_bootstrap=3, seed=5, backend=backend)
    cuts = [0, 17, 4000, 4001, n]
    parts = sum(
        backend.get(
            clarion.grouped_counts(
                g[a:b], lab[a:b], n_groups=4, n_labels=2, n_bootstrap=3, seed=5, row_offset=a, backend=backend
            )
        )
        for a, b in zip(cuts[:-1], cuts[1:])
    )
    np.testing.assert_array_equal(parts, backend.get(whole))


@pytest.mark.parametrize("dtype", CODE_DTYPES)
def test_all_code_dtypes_and_mixed_dtypes(dtype):
    g = np.array([0, 1, 1], dtype=dtype)
    lab = np.array([1, 0, 1], dtype=np.int64)
    p = np.array([1, 1, 0], dtype=np.uint8)
    np.testing.assert_array_equal(clarion.grouped_counts(g, lab, p), [[[0, 0], [0, 1]], [[0, 1], [1, 0]]])
    np.testing.assert_array_equal(clarion.grouped_counts(g.astype(bool), lab.astype(bool)), [[0, 1], [1, 1]])


# ---- errors -------------------------------------------------------------------------------------

G3 = np.array([0, 1, 2, 1], dtype=np.int64)
L2 = np.array([0, 1, 1, 0], dtype=np.int64)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(groups=np.array([0, 1, 5, 1]), n_groups=3),
            _counts.MSG_CODE_RANGE.format(arg="groups", value=5, row=2, col="", n=3, hint=" (-1 leaves a row out)"),
        ),
        (
            dict(groups=np.array([0, -2, 1, 1])),
            _counts.MSG_CODE_RANGE.format(arg="groups", value=-2, row=1, col="", n=2, hint=" (-1 leaves a row out)"),
        ),
        (
            dict(labels=np.array([0, 1, -1, 0])),
            _counts.MSG_CODE_RANGE.format(arg="labels", value=-1, row=2, col="", n=2, hint=""),
        ),
        (
            dict(labels=np.array([0, 1, 1, 3]), n_labels=2),
            _counts.MSG_CODE_RANGE.format(arg="labels", value=3, row=3, col="", n=2, hint=""),
        ),
        (
            dict(preds=np.array([[0, 1], [1, 1], [1, 2], [0, 0]]), n_preds=2),
            _counts.MSG_CODE_RANGE.format(arg="preds", value=2, row=2, col=" (column 1)", n=2, hint=""),
        ),
        (dict(weights=np.array([1.0, -0.5, 1.0, 1.0])), _counts.MSG_WEIGHT.format(value=-0.5, row=1)),
        (dict(weights=np.array([1.0, 1.0, np.inf, 1.0])), _counts.MSG_WEIGHT.format(value=np.inf, row=2)),
        (
            dict(weights=np.array([1.0, 1.0, 1.0, np.nan], dtype=np.float32)),
            _counts.MSG_WEIGHT.format(value=np.nan, row=3),
        ),
        (dict(labels=np.array([0, 1, 1])), _counts.MSG_LENGTH.format(arg="labels", got=3, n=4)),
        (dict(weights=np.ones(5)), _counts.MSG_LENGTH.format(arg="weights", got=5, n=4)),
        (
            dict(groups=np.zeros((4, 2), dtype=np.int64)),
            _counts.MSG_NDIM.format(arg="groups", want="1-D", shape=(4, 2)),
        ),
        (dict(n_groups=-1), _counts.MSG_SIZE.format(arg="n_groups", value=-1)),
    ],
)
def test_bad_input_raises_value_error_naming_argument(backend, kwargs, message):
    args = dict(groups=G3, labels=L2, backend=backend)
    args.update(kwargs)
    with pytest.raises(ValueError) as exc:
        clarion.grouped_counts(args.pop("groups"), args.pop("labels"), args.pop("preds", None), **args)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(groups=np.array([0.0, 1.0, 1.0, 0.0])), _counts.MSG_NOT_INTEGER.format(arg="groups", dtype="float64")),
        (dict(labels=np.array(["a", "b", "a", "b"])), _counts.MSG_NOT_INTEGER.format(arg="labels", dtype="<U1")),
        (
            dict(labels=np.array(["a", "b", "a", "b"], dtype=object)),
            _counts.MSG_NOT_INTEGER.format(arg="labels", dtype="object"),
        ),
        (dict(weights=np.array(["1", "2", "3", "4"])), _counts.MSG_NOT_FLOAT.format(arg="weights", dtype="<U1")),
    ],
)
def test_wrong_dtypes_raise_type_error(kwargs, message):
    args = dict(groups=G3, labels=L2)
    args.update(kwargs)
    with pytest.raises(TypeError) as exc:
        clarion.grouped_counts(args.pop("groups"), args.pop("labels"), **args)
    assert str(exc.value) == message


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_threshold_errors(backend):
    s = np.array([0.1, 0.2, np.nan, 0.4])
    with pytest.raises(ValueError, match=r"^scores: NaN at row 2$"):
        clarion.grouped_threshold_counts(G3, L2, s, [0.5], backend=backend)
    s2 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, np.nan]])
    with pytest.raises(ValueError, match=r"^scores: NaN at row 3 \(column 1\)$"):
        clarion.grouped_threshold_counts(G3, L2, s2, [0.5], backend=backend)
    ok = np.array([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError) as exc:
        clarion.grouped_threshold_counts(G3, L2, ok, [0.5, 0.2, 0.9], backend=backend)
    assert str(exc.value) == _counts.MSG_THRESHOLDS_ORDER.format(pos=1, value=0.2, prev=0, prev_value=0.5)
    with pytest.raises(ValueError) as exc:
        clarion.grouped_threshold_counts(G3, L2, ok, [0.1, np.nan], backend=backend)
    assert str(exc.value) == _counts.MSG_THRESHOLDS_NAN.format(pos=1)
    with pytest.raises(TypeError):
        clarion.grouped_threshold_counts(G3, L2, np.array([1, 2, 3, 4]), [0.5], backend=backend)


def test_bootstrap_needs_seed():
    with pytest.raises(ValueError, match="seed is required"):
        clarion.grouped_counts(G3, L2, n_bootstrap=3)


# ---- dispatch and build ---------------------------------------------------------------------------


def test_backend_selection_and_errors(monkeypatch):
    from clarion import _backend

    assert _backend.resolve("auto", G3) == "cpu"
    assert _backend.resolve("numpy", G3) == "numpy"
    monkeypatch.setenv("CLARION_BACKEND", "numpy")
    assert _backend.resolve("auto", G3) == "numpy"
    monkeypatch.setenv("CLARION_BACKEND", "bogus")
    with pytest.raises(ValueError, match="CLARION_BACKEND"):
        _backend.resolve("auto", G3)
    monkeypatch.delenv("CLARION_BACKEND")
    with pytest.raises(ValueError, match="backend must be one of"):
        clarion.grouped_counts(G3, L2, backend="gpu")
    if not clarion.build_info()["cuda_device"]:
        with pytest.raises(RuntimeError, match="backend='cuda'"):
            clarion.grouped_counts(G3, L2, backend="cuda")


def test_build_info_keys():
    info = clarion.build_info()
    assert {"version", "backends", "cuda_compiled", "cuda_version", "cuda_archs", "cuda_device"} <= set(info)
    assert info["version"] == clarion.__version__
    assert "cpu" in info["backends"]
    assert info["cuda_compiled"] == ("cuda" in info["backends"])


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH: a CPU-only build is expected")
def test_cuda_kernels_were_compiled_when_nvcc_exists():
    info = clarion.build_info()
    assert info["cuda_compiled"], "nvcc is on PATH but the build has no CUDA kernels"
    assert info["cuda_version"]
    assert any(a.startswith("80") for a in info["cuda_archs"]) and any(a.startswith("90") for a in info["cuda_archs"])


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, clarion; heavy = [m for m in ('pandas', 'sklearn', 'cupy', 'dask', 'shap', 'scipy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
