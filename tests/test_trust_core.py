"""Issue 13 items 8 and 15: every compiled kernel reads its arrays right or refuses them.

* The public wrappers accept any layout numpy can describe (byte-swapped, strided, negative or
  zero strides, misaligned, read-only, Fortran order) and any documented dtype, and give the
  numpy reference's answer on the same values.
* Each binding of the private ``clarion._core`` refuses, with a ValueError naming the argument,
  every array it cannot read as "C-contiguous, aligned, native-endian T", every size whose
  arithmetic would overflow int64, negative sizes, length mismatches and out-of-range indices.
  Calls that could crash the process on a regression run in a subprocess (with a memory cap),
  so that a regression fails the test instead of killing pytest.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clarion
from clarion import _backend, _counts, _reference
from clarion.bias.fliptest import flip_test
from clarion.explain import _kernels

pytestmark = pytest.mark.skipif(not _backend.has_core(), reason="compiled extension unavailable")

# ---- layouts ------------------------------------------------------------------------------------

LAYOUTS = ("native", "byteswap", "strided", "negative", "misaligned", "readonly", "fortran")


def relayout(a: np.ndarray, how: str) -> np.ndarray:
    """The same values as ``a`` in another memory layout."""
    if how == "native":
        return a
    if how == "byteswap":
        return a.astype(a.dtype.newbyteorder())
    if how == "strided":
        return np.repeat(a, 2, axis=0)[::2]
    if how == "negative":
        return a[::-1].copy()[::-1]
    if how == "misaligned":
        buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
        v = buf[1:].view(a.dtype).reshape(a.shape)
        v[...] = a
        return v
    if how == "readonly":
        v = a.copy()
        v.flags.writeable = False
        return v
    if how == "fortran":
        return np.asfortranarray(a)
    raise AssertionError(how)


def layouts(n: int = 2):
    """A chain of up to ``n`` relayouts (e.g. byte-swapped and then strided)."""
    return st.lists(st.sampled_from(LAYOUTS), min_size=1, max_size=n)


def apply_layouts(a, chain):
    if a is None:
        return None
    for how in chain:
        a = relayout(a, how)
    return a


def native(a):
    return None if a is None else np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))


CODE_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


@st.composite
def counts_problems(draw):
    n = draw(st.integers(0, 40))
    G = draw(st.integers(1, 4))
    L = draw(st.integers(1, 3))
    P = draw(st.integers(1, 3))
    B = draw(st.sampled_from([None, 1, 3]))
    groups = np.array(draw(st.lists(st.integers(-1, G - 1), min_size=n, max_size=n)), dtype=np.int64)
    labels = np.array(draw(st.lists(st.integers(0, L - 1), min_size=n, max_size=n)), dtype=np.int64)
    preds = None
    if draw(st.booleans()):
        shape = (n,) if B is None else (n, B)
        preds = np.array(
            draw(st.lists(st.integers(0, P - 1), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
            dtype=np.int64,
        ).reshape(shape)
    weights = None
    if draw(st.booleans()):  # small integers: every backend sums them exactly
        weights = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=np.float64)
        weights = weights.astype(draw(st.sampled_from(["float32", "float64", "int64", ">f8", ">f4", ">i8"])))
    gdt = draw(st.sampled_from(CODE_DTYPES[:4]))  # groups hold -1: signed only
    ldt = draw(st.sampled_from(CODE_DTYPES + ("bool",) if L <= 2 else CODE_DTYPES))
    if draw(st.booleans()):
        gdt, ldt = np.dtype(gdt).newbyteorder(">"), np.dtype(ldt).newbyteorder(">")
    groups, labels = groups.astype(gdt), labels.astype(ldt)
    if preds is not None:
        preds = preds.astype(draw(st.sampled_from(CODE_DTYPES)))
    R = draw(st.sampled_from([0, 0, 2]))
    return groups, labels, preds, weights, G, L, P, R


@settings(max_examples=150, deadline=None)
@given(counts_problems(), layouts(), layouts(), layouts(), layouts())
def test_grouped_counts_any_layout_equals_reference(problem, lg, ll, lp, lw):
    groups, labels, preds, weights, G, L, P, R = problem
    seed = 7 if R else None
    got = clarion.grouped_counts(
        apply_layouts(groups, lg),
        apply_layouts(labels, ll),
        apply_layouts(preds, lp),
        weights=apply_layouts(weights, lw),
        n_groups=G,
        n_labels=L,
        n_preds=P if preds is not None else None,
        n_bootstrap=R,
        seed=seed,
        backend="cpu",
        n_threads=2,
    )
    want = _reference.grouped_counts(
        native(groups),
        native(labels),
        native(preds),
        native(weights),
        G,
        L,
        P if preds is not None else 1,
        n_bootstrap=R,
        seed=seed or 0,
    )
    if preds is None:
        want = want[..., 0]
    if preds is None or preds.ndim == 1:
        want = want[:, 0]
    if R == 0:
        want = want[0]
    np.testing.assert_array_equal(got, want)


@settings(max_examples=100, deadline=None)
@given(
    counts_problems(),
    st.sampled_from(["float32", "float64", ">f4", ">f8"]),
    layouts(),
    layouts(),
    layouts(),
    st.lists(st.floats(-1, 2, width=32), max_size=5),
)
def test_grouped_threshold_counts_any_layout_equals_reference(problem, sdt, ls, lw, lt, thresholds):
    groups, labels, _, weights, G, L, _, R = problem
    n = groups.shape[0]
    scores = (np.arange(n * 2, dtype=np.float64).reshape(n, 2) % 7 / 5.0).astype(sdt)
    th = np.sort(np.array(thresholds, dtype=np.float64)).astype(">f8")
    seed = 3 if R else None
    got = clarion.grouped_threshold_counts(
        groups,
        labels,
        apply_layouts(scores, ls),
        apply_layouts(th, lt),
        weights=apply_layouts(weights, lw),
        n_groups=G,
        n_labels=L,
        n_bootstrap=R,
        seed=seed,
        backend="cpu",
        n_threads=2,
    )
    want = _reference.grouped_threshold_counts(
        native(groups), native(labels), native(scores), native(th), native(weights), G, L, n_bootstrap=R, seed=seed or 0
    )
    if R == 0:
        want = want[0]
    np.testing.assert_array_equal(got, want)


def test_big_endian_weights_issue_example():
    """The issue's example: big-endian weights 1..4 came back as ~1e-319."""
    g = np.array([0, 1, 0, 1], dtype=">i8")
    y = np.array([0, 0, 1, 1], dtype=">i8")
    w = np.array([1.0, 2.0, 3.0, 4.0], dtype=">f8")
    np.testing.assert_array_equal(clarion.grouped_counts(g, y, weights=w, backend="cpu"), [[1.0, 3.0], [2.0, 4.0]])
    s = np.array([0.1, 0.5, 0.7, 0.9], dtype=">f8")
    got = clarion.grouped_threshold_counts(g, y, s, np.array([0.5], ">f8"), weights=w, backend="cpu")
    np.testing.assert_array_equal(got, [[[[1.0, 0.0], [0.0, 3.0]], [[0.0, 2.0], [0.0, 4.0]]]])


def test_broadcast_inputs_equal_reference():
    """Zero strides (numpy.broadcast_to) are read as the values they show."""
    n = 50
    g = np.broadcast_to(np.int64(1), (n,))
    y = np.arange(n, dtype=np.int64) % 2
    p = np.broadcast_to(np.array([[0, 1, 2]], dtype=np.int32), (n, 3))
    w = np.broadcast_to(np.float64(2.5), (n,))
    got = clarion.grouped_counts(g, y, p, weights=w, n_groups=2, n_labels=2, n_preds=3, backend="cpu")
    want = clarion.grouped_counts(
        g.copy(), y, p.copy(), weights=w.copy(), n_groups=2, n_labels=2, n_preds=3, backend="numpy"
    )
    np.testing.assert_array_equal(got, want)


def test_prepared_path_converts_byte_order():
    """The accumulator's fast path (grouped_counts_prepared) gets the same conversion."""
    g = np.array([0, 1, 0, 1], dtype=">i4")
    y = np.array([0, 0, 1, 1], dtype=">i4")
    p = np.array([[1], [0], [1], [1]], dtype=">i4")
    w = np.array([1.0, 2.0, 3.0, 4.0], dtype=">f8")
    got = _counts.grouped_counts_prepared(g, y, p, w, 2, 2, 2, backend="cpu")
    want = _reference.grouped_counts(native(g), native(y), native(p), native(w), 2, 2, 2)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_declared_size_zero_still_checks_codes(backend):
    """n_groups=0 / n_labels=0 with counted rows: an error naming the argument, as the reference
    says (the CPU kernel used to return an empty table without looking at the rows)."""
    with pytest.raises(ValueError, match=r"groups: code 0 at row 0 is outside \[0, 0\)"):
        clarion.grouped_counts([0, 1], [0, 0], n_groups=0, backend=backend)
    with pytest.raises(ValueError, match=r"labels: code 0 at row 0 is outside \[0, 0\)"):
        clarion.grouped_threshold_counts([0, 1], [0, 0], [0.1, 0.2], [0.5], n_labels=0, backend=backend)
    with pytest.raises(ValueError, match=r"preds: code 0 at row 0 is outside \[0, 0\)"):
        clarion.grouped_counts([0, 1], [0, 0], [0, 0], n_preds=0, backend=backend)
    # rows left out (-1) need no cell, and zero batch columns are an empty batch
    assert clarion.grouped_counts([-1, -1], [0, 0], n_groups=0, backend=backend).shape == (0, 1)
    empty = clarion.grouped_counts([0, 1], [0, 0], np.zeros((2, 0), np.int64), n_preds=2, backend=backend)
    assert empty.shape == (0, 2, 1, 2)


# ---- explain and FlipTest wrappers ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(2, 4),
    st.integers(1, 3),
    st.sampled_from(["float64", "float32"]),
    layouts(),
    layouts(),
    layouts(),
    layouts(),
)
def test_shap_kernels_any_layout_equal_reference(N, M, K, dt, lx, lb, lz, lc):
    rng = np.random.default_rng(N * 100 + M * 10 + K)
    P = M + 1
    X = rng.normal(size=(N, P)).astype(dt)
    B = rng.normal(size=(K, P)).astype(dt)
    Z = (rng.random((5, M)) < 0.5).astype(np.uint8)
    cp = np.array([-1] + list(range(M)), dtype=np.int32)
    S = Z.shape[0]
    got = _kernels.mask(
        "cpu", apply_layouts(X, lx), apply_layouts(B, lb), apply_layouts(Z, lz), apply_layouts(cp, lc), 0, N * S, 2
    )
    np.testing.assert_array_equal(got, _reference.shap_mask(X, B, Z, cp, 0, N * S))

    F = rng.normal(size=(N * S * K, 2))
    pi = np.full(K, 1.0 / K)
    Y = _kernels.reduce("cpu", apply_layouts(F, lx), apply_layouts(pi, lb), 0, 2)
    np.testing.assert_array_equal(Y, _reference.shap_reduce(F, pi, 0))

    w = np.full(S, 1.0 / S)
    L, c, _ = _kernels.wls_operator("cpu", apply_layouts(Z, lz), apply_layouts(w, lc))
    L_ref, c_ref, _ = _reference.shap_wls_operator(Z, w)
    np.testing.assert_allclose(L, L_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c, c_ref, rtol=1e-9, atol=1e-12)

    LT = np.ascontiguousarray(L.T)
    base = np.zeros(2)
    phi = _kernels.apply(
        "cpu", apply_layouts(Y, lx), apply_layouts(base, lb), apply_layouts(LT, lz), 0, N * S, np.zeros((N, M, 2)), 2
    )
    np.testing.assert_array_equal(phi, _reference.shap_apply(Y, base, LT, 0, N * S, np.zeros((N, M, 2))))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 8), layouts(), layouts())
def test_fliptest_any_layout_equals_reference(n_a, n_d, la, ld):
    rng = np.random.default_rng(n_a * 13 + n_d)
    xa = rng.integers(0, 3, size=(n_a, 2)).astype(">f8")
    xd = rng.integers(0, 3, size=(n_d, 2)).astype(">f4")
    ya = rng.integers(0, 2, size=n_a)
    yd = rng.integers(0, 2, size=n_d)
    got = flip_test(apply_layouts(xa, la), apply_layouts(xd, ld), ya, yd, k=1, backend="cpu")
    want = flip_test(native(xa), native(xd).astype(np.float64), ya, yd, k=1, backend="numpy")
    assert (got.f_plus, got.f_minus) == (want.f_plus, want.f_minus)


# ---- the private bindings, called directly with hostile arguments ------------------------------

_PRELUDE = textwrap.dedent(
    """
    import re
    import numpy as np
    from clarion import _core

    def i64(*v):
        return np.array(v, dtype=np.int64)

    def expect(label, pattern, fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except ValueError as e:
            ok = re.search(pattern, str(e)) is not None
            print("OK" if ok else "FAIL", label, "" if ok else f"wrong message: {e}", flush=True)
        except BaseException as e:
            print("FAIL", label, type(e).__name__, e, flush=True)
        else:
            print("FAIL", label, "no error", flush=True)

    def expect_ok(label, fn, check):
        try:
            ok = check(fn())
        except BaseException as e:
            print("FAIL", label, type(e).__name__, e, flush=True)
        else:
            print("OK" if ok else "FAIL", label, flush=True)
    """
)


def _limit_memory():  # pragma: no cover - runs in the child
    import resource

    cap = 4 << 30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run_isolated(body: str) -> None:
    """Runs the ``expect(...)`` calls of ``body`` in a child interpreter with a 4 GiB address-space
    cap; fails on a crash (any signal), a missing line or any FAIL."""
    code = _PRELUDE + textwrap.dedent(body)
    n_cases = code.count("\nexpect(") + code.count("\nexpect_ok(")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(clarion.__file__).parent.parent), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        preexec_fn=_limit_memory if sys.platform != "win32" else None,
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the child died (exit {proc.returncode}):\n{report}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("OK", "FAIL"))]
    assert len(lines) == n_cases, report
    failed = [ln for ln in lines if ln.startswith("FAIL")]
    assert not failed, "\n".join(failed)


def test_counts_binding_wrapped_table_size_cannot_write_out_of_bounds():
    """Item 15's crash: n_groups * n_labels wraps around to 4, a 4-cell `out` matches, and group
    code 2**40 (inside [0, n_groups)) indexes cell 2**42 of it (SIGSEGV before the fix)."""
    run_isolated(
        """
        g = i64(2**40, 0); y = i64(0, 0)
        expect("wrapped table", r"count table.*too large", _core.grouped_counts_cpu, g, y, None, None,
               np.zeros(4, np.int64), 2**62 + 1, 4, 1, 0, 0, 0, 1)
        expect("wrapped weighted table", r"count table.*too large", _core.grouped_counts_cpu, g, y, None,
               np.ones(2), np.zeros(4), 2**62 + 1, 4, 1, 0, 0, 0, 1)
        expect("wrapped threshold table", r"too large", _core.grouped_threshold_counts_cpu, g, y, np.zeros(2),
               np.zeros(1), None, np.zeros(16, np.int64), 2**62 + 1, 4, 0, 0, 0, 1)
        """
    )


def test_counts_binding_refuses_overflowing_sizes():
    """Item 15: sizes whose product overflows int64 used to wrap to a small table that `out`
    matched, and the kernel then wrote out of bounds (SIGSEGV)."""
    run_isolated(
        """
        g = i64(0, 0, 0); z = np.zeros(0, np.int64)
        f = _core.grouped_counts_cpu
        expect("G*L wraps to 0", r"count table.*too large", f, g, g, None, None, z, 2**62, 4, 1, 0, 0, 0, 1)
        expect("G*L*P wraps to 0", r"count table.*too large", f, g, g, g, None, z, 2**32, 2**16, 2**16, 0, 0, 0, 1)
        expect("R wraps", r"count table.*too large", f, g, g, None, None, z, 4, 1, 1, 2**62, 0, 0, 1)
        expect("R*B*G wraps to 0", r"count table.*too large", f, g, g, np.zeros((3, 4), np.int64), None, z,
               2**62, 1, 1, 0, 0, 0, 1)
        expect("weighted", r"count table.*too large", f, g, g, None, np.ones(3), np.zeros(0), 2**62, 4, 1, 0, 0, 0, 1)
        expect("row_offset + n", r"row_offset \\+ n_rows.*too large", f, g, g, None, None, np.zeros(1, np.int64),
               1, 1, 1, 2, 0, 2**63 - 2, 1)
        t = _core.grouped_threshold_counts_cpu
        s = np.zeros(3)
        expect("threshold table", r"count table.*too large", t, g, g, s, np.zeros(4), None, z, 2**61, 1, 0, 0, 0, 1)
        expect("histogram", r"too large", t, g, g, s, np.zeros(1), None, z, 2**62, 2, 0, 0, 0, 1)
        """
    )


def test_counts_binding_refuses_bad_sizes_and_lengths():
    run_isolated(
        """
        g = i64(0, 0, 0); o = np.zeros(1, np.int64)
        f = _core.grouped_counts_cpu
        expect("negative n_groups", r"n_groups must be >= 0", f, g, g, None, None, o, -1, 1, 1, 0, 0, 0, 1)
        expect("negative n_labels", r"n_labels must be >= 0", f, g, g, None, None, o, 1, -5, 1, 0, 0, 0, 1)
        expect("negative n_preds", r"n_preds must be >= 0", f, g, g, g, None, o, 1, 1, -1, 0, 0, 0, 1)
        expect("negative n_boot", r"n_boot must be >= 0", f, g, g, None, None, o, 1, 1, 1, -2, 0, 0, 1)
        expect("negative row_offset", r"row_offset must be >= 0", f, g, g, None, None, o, 1, 1, 1, 0, 0, -1, 1)
        expect("negative n_threads", r"n_threads must be >= 0", f, g, g, None, None, o, 1, 1, 1, 0, 0, 0, -3)
        expect("labels length", r"labels has 2 rows but groups has 3", f, g, i64(0, 0), None, None, o,
               1, 1, 1, 0, 0, 0, 1)
        expect("preds length", r"preds has 4 rows", f, g, g, i64(0, 0, 0, 0), None, o, 1, 1, 1, 0, 0, 0, 1)
        expect("weights length", r"weights has 2 rows", f, g, g, None, np.ones(2), np.zeros(1), 1, 1, 1, 0, 0, 0, 1)
        expect("labels 2-D", r"labels must be 1-D", f, g, np.zeros((3, 2), np.int64), None, None, o,
               1, 1, 1, 0, 0, 0, 1)
        expect("weights 2-D", r"weights must be 1-D", f, g, g, None, np.ones((3, 2)), np.zeros(1), 1, 1, 1, 0, 0, 0, 1)
        expect("preds 3-D", r"preds must be 1-D or 2-D", f, g, g, np.zeros((3, 1, 1), np.int64), None, o,
               1, 1, 1, 0, 0, 0, 1)
        expect("groups 0-D", r"groups must be 1-D", f, np.array(0), g, None, None, o, 1, 1, 1, 0, 0, 0, 1)
        expect("out size", r"out has 1 elements but the table .* has 4", f, g, g, None, None, o, 2, 2, 1, 0, 0, 0, 1)
        t = _core.grouped_threshold_counts_cpu
        expect("scores length", r"scores has 2 rows", t, g, g, np.zeros(2), np.zeros(1), None, o, 1, 1, 0, 0, 0, 1)
        expect("thresholds NaN", r"thresholds: NaN at position 1", t, g, g, np.zeros(3), np.array([0, np.nan]),
               None, np.zeros(4, np.int64), 1, 1, 0, 0, 0, 1)
        expect("thresholds order", r"thresholds must be sorted", t, g, g, np.zeros(3), np.array([1.0, 0.0]),
               None, np.zeros(4, np.int64), 1, 1, 0, 0, 0, 1)
        expect("thresholds 2-D", r"thresholds must be 1-D", t, g, g, np.zeros(3), np.zeros((1, 1)),
               None, np.zeros(2, np.int64), 1, 1, 0, 0, 0, 1)
        """
    )


def test_counts_binding_refuses_layouts_and_dtypes_it_cannot_read():
    """Item 8: a binding called directly with an array it cannot read raises, naming it."""
    run_isolated(
        """
        g = i64(0, 1, 0, 1); o = np.zeros(4, np.int64); od = np.zeros(4)
        f = _core.grouped_counts_cpu
        def swapped(a):
            return a.astype(a.dtype.newbyteorder())
        def misaligned(a):
            buf = np.zeros(a.nbytes + 1, np.uint8)
            v = buf[1:].view(a.dtype)
            v[...] = a
            return v
        def readonly(a):
            a = a.copy(); a.flags.writeable = False
            return a
        args = lambda **kw: [kw.get("groups", g), kw.get("labels", g), kw.get("preds"), kw.get("weights"),
                             kw.get("out", o if kw.get("weights") is None else od), 2, 2, 1, 0, 0, 0, 1]
        expect(">i8 groups", r"groups must be in native byte order", f, *args(groups=swapped(g)))
        expect(">i8 labels", r"labels must be in native byte order", f, *args(labels=swapped(g)))
        expect(">i8 preds", r"preds must be in native byte order", f, *args(preds=swapped(g)))
        expect(">f8 weights", r"weights must be in native byte order", f, *args(weights=swapped(np.ones(4))))
        expect(">f8 out", r"out must be in native byte order", f, *args(weights=np.ones(4), out=swapped(od)))
        expect(">i8 out", r"out must be in native byte order", f, *args(out=swapped(o)))
        expect("strided groups", r"groups must be C-contiguous", f, *args(groups=np.repeat(g, 2)[::2]))
        expect("negative stride labels", r"labels must be C-contiguous", f, *args(labels=g[::-1]))
        expect("zero stride weights", r"weights must be C-contiguous", f,
               *args(weights=np.broadcast_to(np.float64(1.0), (4,))))
        expect("zero stride preds", r"preds must be C-contiguous", f, *args(preds=np.broadcast_to(np.int64(0), (4,))))
        expect("misaligned weights", r"weights must be aligned", f, *args(weights=misaligned(np.ones(4))))
        expect("misaligned groups", r"groups must be aligned", f, *args(groups=misaligned(g)))
        expect("read-only out", r"out must be writeable", f, *args(out=readonly(o)))
        expect("bool groups", r"groups must hold int8/16/32/64 codes.*bool", f, *args(groups=g.astype(bool)))
        expect("uint64 groups", r"groups must hold int8/16/32/64 codes.*uint64", f, *args(groups=g.astype(np.uint64)))
        expect("float32 groups", r"groups must hold int8/16/32/64", f, *args(groups=g.astype(np.float32)))
        expect("object groups", r"groups must hold int8/16/32/64", f, *args(groups=g.astype(object)))
        expect("int8 labels", r"labels must have the dtype of groups", f, *args(labels=g.astype(np.int8)))
        expect("int16 preds", r"preds must have the dtype of groups", f, *args(preds=g.astype(np.int16)))
        expect("int weights", r"weights must be float32 or float64.*int64", f, *args(weights=g))
        expect("object weights", r"weights must be float32 or float64", f, *args(weights=g.astype(object)))
        expect("float out", r"out must be int64 without weights", f, *args(out=od))
        expect("int out", r"out must be float64 with weights", f, *args(weights=np.ones(4), out=o))
        t = _core.grouped_threshold_counts_cpu
        targs = lambda **kw: [g, g, kw.get("scores", np.zeros(4)), kw.get("thresholds", np.zeros(1)), None,
                              np.zeros(8, np.int64), 2, 2, 0, 0, 0, 1]
        expect(">f8 scores", r"scores must be in native byte order", t, *targs(scores=swapped(np.zeros(4))))
        expect(">f8 thresholds", r"thresholds must be in native byte order", t, *targs(thresholds=swapped(np.zeros(1))))
        expect("int scores", r"scores must be float32 or float64", t, *targs(scores=g))
        expect("float32 thresholds", r"thresholds must be float64", t, *targs(thresholds=np.zeros(1, np.float32)))
        expect("strided scores", r"scores must be C-contiguous", t, *targs(scores=np.zeros((4, 2))[:, 0]))
        """
    )


def test_shap_bindings_refuse_hostile_arguments():
    run_isolated(
        """
        def swapped(a):
            return a.astype(a.dtype.newbyteorder())
        X = np.zeros((2, 3)); Z = np.zeros((4, 2), np.uint8); cp = np.array([0, 1, -1], np.int32)
        m = _core.shap_mask_cpu
        expect(">f8 X", r"X must be in native byte order", m, swapped(X), X, Z, cp, 0, 1, np.empty((2, 3)), 1)
        expect(">f8 B", r"B must be in native byte order", m, X, swapped(X), Z, cp, 0, 1, np.empty((2, 3)), 1)
        expect(">i4 col_player", r"col_player must be in native byte order", m, X, X, Z, swapped(cp), 0, 1,
               np.empty((2, 3)), 1)
        expect("f32 B with f64 X", r"B must be float64", m, X, X.astype(np.float32), Z, cp, 0, 1, np.empty((2, 3)), 1)
        expect("strided X", r"X must be C-contiguous", m, np.zeros((2, 6))[:, ::2], X, Z, cp, 0, 1,
               np.empty((2, 3)), 1)
        ro = np.empty((2, 3)); ro.flags.writeable = False
        expect("read-only out", r"out must be writeable", m, X, X, Z, cp, 0, 1, ro, 1)
        expect("int X", r"X must be float32 or float64", m, X.astype(np.int64), X, Z, cp, 0, 1, np.empty((2, 3)), 1)
        expect("bool Z", r"Z must be uint8", m, X, X, Z.astype(bool), cp, 0, 1, np.empty((2, 3)), 1)
        expect("pair range past N*S", r"pair range", m, X, X, Z, cp, 0, 9, np.empty((18, 3)), 1)
        expect("negative q0", r"pair range", m, X, X, Z, cp, -1, 1, np.empty((4, 3)), 1)
        expect("N*S overflows", r"N \\* S.*too large", m, np.empty((2**59, 0)), np.empty((1, 0)),
               np.zeros((32, 2), np.uint8), np.empty(0, np.int32), 0, 0, np.empty((0, 0)), 1)
        expect("negative n_threads", r"n_threads must be >= 0", m, X, X, Z, cp, 0, 1, np.empty((2, 3)), -1)
        r = _core.shap_reduce_cpu
        expect("R*K overflows", r"F is too large", r, np.empty((0, 0)), np.full(32, 1 / 32), 0, np.empty((2**59, 0)),
               1)
        expect(">f8 F", r"F must be in native byte order", r, swapped(np.zeros((4, 1))), np.full(2, 0.5), 0,
               np.empty((2, 1)), 1)
        expect(">f8 pi", r"pi must be in native byte order", r, np.zeros((4, 1)), swapped(np.full(2, 0.5)), 0,
               np.empty((2, 1)), 1)
        expect("link", r"link must be 0 or 1", r, np.zeros((4, 1)), np.full(2, 0.5), 7, np.empty((2, 1)), 1)
        a = _core.shap_apply_cpu
        LT = np.zeros((4, 2))
        expect(">f8 LT", r"LT must be in native byte order", a, np.zeros((4, 1)), np.zeros(1), swapped(LT), 0, 4,
               np.zeros((1, 2, 1)), 1)
        expect("apply N*S overflows", r"N \\* S.*too large", a, np.zeros((0, 0)), np.zeros(0), np.zeros((64, 2)),
               0, 0, np.zeros((2**58, 2, 0)), 1)
        expect("apply pair range", r"pair range", a, np.zeros((8, 1)), np.zeros(1), LT, 0, 8, np.zeros((1, 2, 1)), 1)
        w = _core.shap_wls_operator
        expect("too many players", r"at most 46341", w, np.zeros((0, 50000), np.uint8), np.zeros(0),
               np.zeros((50000, 0)), np.zeros(50000))
        expect(">f8 w", r"w must be in native byte order", w, Z, swapped(np.ones(4)), np.zeros((2, 4)), np.zeros(2))
        Lr = np.zeros((2, 4)); Lr.flags.writeable = False
        expect("read-only L", r"L must be writeable", w, Z, np.ones(4), Lr, np.zeros(2))
        c = _core.shap_coalition_plan
        expect("n_samples > 2**M - 2", r"n_samples must be <= 2\\*\\*M - 2", c, 2, 5, 0, True,
               np.zeros((5, 2), np.uint8), np.zeros(5), np.zeros(5, np.int64))
        expect(">i8 block", r"block must be in native byte order", c, 3, 2, 0, True, np.zeros((2, 3), np.uint8),
               np.zeros(2), swapped(np.zeros(2, np.int64)))
        expect("short w", r"w needs n_samples entries", c, 3, 2, 0, True, np.zeros((2, 3), np.uint8), np.zeros(1),
               np.zeros(2, np.int64))
        """
    )


def test_knn_binding_refuses_hostile_arguments():
    run_isolated(
        """
        def swapped(a):
            return a.astype(a.dtype.newbyteorder())
        xa = np.zeros((3, 2)); ya = np.zeros(3, np.uint8); xd = np.zeros((2, 2))
        pos = np.zeros(2, np.int64); v = np.zeros(2, np.uint8)
        k = _core.knn_vote_cpu
        expect(">f8 xa", r"xa must be in native byte order", k, swapped(xa), ya, xd, pos, v, 1, 1)
        expect(">f8 xd", r"xd must be in native byte order", k, xa, ya, swapped(xd), pos, v, 1, 1)
        expect(">i8 positives", r"positives must be in native byte order", k, xa, ya, xd, swapped(pos), v, 1, 1)
        expect("bool ya", r"ya must be uint8", k, xa, ya.astype(bool), xd, pos, v, 1, 1)
        expect("float32 xa", r"xa must be float64", k, xa.astype(np.float32), ya, xd, pos, v, 1, 1)
        expect("strided xd", r"xd must be C-contiguous", k, xa, ya, np.zeros((2, 4))[:, ::2], pos, v, 1, 1)
        ro = np.zeros(2, np.uint8); ro.flags.writeable = False
        expect("read-only votes", r"votes must be writeable", k, xa, ya, xd, pos, ro, 1, 1)
        expect("NaN xa", r"xa: non-finite value at row 1, column 0", k, np.array([[0, 0], [np.nan, 0], [1, 1]]),
               ya, xd, pos, v, 1, 1)
        expect("inf xd", r"xd: non-finite value at row 0, column 1", k, xa, ya, np.array([[0, np.inf], [0, 0]]),
               pos, v, 1, 1)
        expect("k > n_a", r"k = 4 must be in \\[1, n_a = 3\\]", k, xa, ya, xd, pos, v, 4, 1)
        expect("ya length", r"ya must have one entry per row of xa", k, xa, np.zeros(2, np.uint8), xd, pos, v, 1, 1)
        expect("negative n_threads", r"n_threads must be >= 0", k, xa, ya, xd, pos, v, 1, -1)
        """
    )


@pytest.mark.skipif(
    not hasattr(_backend.core(), "grouped_counts_cuda") if _backend.has_core() else True,
    reason="CUDA kernels not compiled",
)
def test_cuda_bindings_check_sizes_before_any_device_call():
    """The CUDA bindings take device arrays as CUDA Array Interface descriptions and check them
    like the CPU bindings (dtype, layout, lengths, sizes without overflow, aliasing) on the host
    before any launch, so these calls raise without a GPU. An absent preds/weights is None; a
    present one with pointer 0 and elements is refused."""
    run_isolated(
        """
        _next = [1 << 20]

        def dev(shape, typestr="<i8", ptr=None, strides=None, readonly=False, **extra):
            if ptr is None:  # distinct, aligned, far apart: never overlapping
                ptr = _next[0]
                _next[0] += 1 << 36
            return {"data": (ptr, readonly), "shape": tuple(shape), "strides": strides, "typestr": typestr,
                    "version": 3, **extra}

        class Cai:  # an object exposing the interface, as cupy arrays do
            def __init__(self, desc):
                self.__cuda_array_interface__ = desc

        c = _core.grouped_counts_cuda
        g = dev((3,))

        def cargs(groups=g, labels=None, preds=None, weights=None, out=None, sizes=(1, 1, 1, 0, 0, 0)):
            labels = dev((3,)) if labels is None else labels
            out = dev((1,)) if out is None else out
            return (groups, labels, preds, weights, out, *sizes, 0)

        expect("table overflow", r"count table.*too large", c, *cargs(sizes=(2**62, 4, 1, 0, 0, 0)))
        expect("negative n_groups", r"n_groups must be >= 0", c, *cargs(sizes=(-1, 1, 1, 0, 0, 0)))
        expect("negative row_offset", r"row_offset must be >= 0", c, *cargs(sizes=(1, 1, 1, 0, 0, -1)))
        expect("row_offset + n", r"row_offset \\+ n_rows.*too large", c, *cargs(sizes=(1, 1, 1, 0, 0, 2**63 - 2)))
        expect("null groups", r"groups is a null device pointer", c, *cargs(groups=dev((3,), ptr=0)))
        expect("null preds", r"preds is a null device pointer", c, *cargs(preds=dev((3,), ptr=0)))
        expect("null weights", r"weights is a null device pointer", c, *cargs(weights=dev((3,), "<f8", ptr=0)))
        expect("big-endian groups", r"groups must be in native byte order", c, *cargs(groups=dev((3,), ">i8")))
        expect("big-endian tuple", r"labels must be in native byte order", c,
               *cargs(labels=(8, (3,), None, ">i8")))
        expect("strided groups", r"groups must be C-contiguous", c, *cargs(groups=dev((3,), strides=(16,))))
        expect("negative stride", r"labels must be C-contiguous", c, *cargs(labels=dev((3,), strides=(-8,))))
        expect("misaligned groups", r"groups must be aligned", c, *cargs(groups=dev((3,), ptr=(1 << 20) + 4)))
        expect("read-only out", r"out must be writeable", c, *cargs(out=dev((1,), readonly=True)))
        expect("labels length", r"labels has 2 rows but groups has 3", c, *cargs(labels=dev((2,))))
        expect("labels dtype", r"labels must have the dtype of groups \\(int64\\), got int32", c,
               *cargs(labels=dev((3,), "<i4")))
        expect("uint groups", r"groups must hold int8/16/32/64 codes.*uint64", c, *cargs(groups=dev((3,), "<u8")))
        expect("preds 3-D", r"preds must be 1-D or 2-D", c, *cargs(preds=dev((3, 1, 1))))
        expect("int weights", r"weights must be float32 or float64.*int64", c, *cargs(weights=dev((3,))))
        expect("float out", r"out must be int64 without weights", c, *cargs(out=dev((1,), "<f8")))
        expect("int out", r"out must be float64 with weights", c, *cargs(weights=dev((3,), "<f8")))
        expect("out size", r"out has 1 elements but the table .* has 4", c, *cargs(sizes=(2, 2, 1, 0, 0, 0)))
        expect("batched out size", r"out has 1 elements but the table .* has 6", c,
               *cargs(preds=dev((3, 3)), sizes=(1, 1, 2, 0, 0, 0)))
        expect("out aliases groups", r"out must not share memory with groups", c,
               *cargs(out=dev((1,), ptr=g["data"][0] + 8)))
        expect("host array", r"groups must be a device array .*ndarray", c, *cargs(groups=np.zeros(3, np.int64)))
        expect("interface object", r"groups must be in native byte order", c, *cargs(groups=Cai(dev((3,), ">i8"))))
        expect("incomplete description", r"needs 'data', 'shape' and 'typestr'", c,
               *cargs(groups={"data": (8, False)}))
        expect("masked", r"masked device arrays", c, *cargs(groups=dev((3,), mask=dev((3,), "|b1"))))
        expect("bad typestr", r"groups: not a valid device array description", c,
               *cargs(groups=dev((3,), "not a type")))
        expect("negative extent", r"groups: negative extent", c, *cargs(groups=dev((-3,))))
        expect("shape overflow", r"groups is too large", c, *cargs(groups=dev((2**40, 2**40))))
        expect("bytes overflow", r"groups is too large", c, *cargs(groups=dev((2**61,))))
        expect("strides per axis", r"strides must have one entry per axis", c,
               *cargs(groups=dev((3,), strides=(8, 8))))
        t = _core.grouped_threshold_counts_cuda

        def targs(thresholds=None, scores=None, out=None, sizes=(1, 1, 0, 0, 0)):
            thresholds = dev((4,), "<f8") if thresholds is None else thresholds
            scores = dev((3,), "<f8") if scores is None else scores
            out = dev((1,)) if out is None else out
            return (g, dev((3,)), scores, thresholds, None, out, *sizes, 0)

        expect("threshold overflow", r"too large", t, *targs(sizes=(2**61, 1, 0, 0, 0)))
        expect("null thresholds", r"thresholds is a null device pointer", t, *targs(dev((4,), "<f8", ptr=0)))
        expect("float32 thresholds", r"thresholds must be float64", t, *targs(dev((4,), "<f4")))
        expect("int scores", r"scores must be float32 or float64", t, *targs(scores=dev((3,))))
        expect("threshold out size", r"out has 1 elements but the table .* has 16", t,
               *targs(sizes=(2, 1, 0, 0, 0)))
        m = _core.shap_mask_cuda
        X = dev((2, 3), "<f8")
        Z = dev((2, 2), "|u1")
        cp = dev((3,), "<i4")
        expect("mask B overflow", r"B is too large", m, X, dev((2**62, 3), "<f8"), Z, cp, 0, 1, dev((2, 3), "<f8"), 0)
        expect("mask B dtype", r"B must be float64", m, X, dev((2, 3), "<f4"), Z, cp, 0, 1, dev((2, 3), "<f8"), 0)
        expect("mask int X", r"X must be float32 or float64", m, dev((2, 3)), X, Z, cp, 0, 1, dev((2, 3), "<f8"), 0)
        expect("mask Z dtype", r"Z must be uint8", m, X, X, dev((2, 2), "|b1"), cp, 0, 1, dev((2, 3), "<f8"), 0)
        expect("mask col_player", r"col_player must have one entry per column", m, X, X, Z, dev((2,), "<i4"), 0, 1,
               dev((2, 3), "<f8"), 0)
        expect("mask pair range", r"pair range", m, X, X, Z, cp, 0, 9, dev((18, 3), "<f8"), 0)
        expect("mask out rows", r"out must have \\(q1 - q0\\) \\* K rows", m, X, X, Z, cp, 0, 1,
               dev((3, 3), "<f8"), 0)
        expect("mask N*S overflows", r"N \\* S.*too large", m, dev((2**59, 0), "<f8"), dev((1, 0), "<f8"),
               dev((2**5, 1), "|u1"), dev((0,), "<i4"), 0, 1, dev((1, 0), "<f8"), 0)
        expect("mask out aliases X", r"out must not share memory with X", m, X, X, Z, cp, 0, 1,
               dev((2, 3), "<f8", ptr=X["data"][0]), 0)
        r = _core.shap_reduce_cuda
        expect("reduce overflow", r"F is too large", r, dev((0, 0), "<f8"), dev((32,), "<f8"), 0,
               dev((2**59, 0), "<f8"), 0)
        expect("reduce shape", r"F must have shape", r, dev((3, 1), "<f8"), dev((2,), "<f8"), 0, dev((2, 1), "<f8"), 0)
        expect("reduce link", r"link must be 0 or 1", r, dev((4, 1), "<f8"), dev((2,), "<f8"), 7, dev((2, 1), "<f8"), 0)
        expect("reduce read-only Y", r"Y must be writeable", r, dev((4, 1), "<f8"), dev((2,), "<f8"), 0,
               dev((2, 1), "<f8", readonly=True), 0)
        a = _core.shap_apply_cuda
        expect("apply overflow", r"N \\* S.*too large", a, dev((0, 0), "<f8"), dev((0,), "<f8"), dev((64, 2), "<f8"), 0,
               0, dev((2**58, 2, 0), "<f8"), 0)
        expect("apply pair range", r"pair range", a, dev((8, 1), "<f8"), dev((1,), "<f8"), dev((4, 2), "<f8"), 0, 8,
               dev((1, 2, 1), "<f8"), 0)
        expect("apply phi shape", r"phi must have shape", a, dev((4, 1), "<f8"), dev((1,), "<f8"), dev((4, 2), "<f8"),
               0, 4, dev((1, 3, 1), "<f8"), 0)
        k = _core.knn_vote_cuda
        expect("knn overflow", r"xa is too large", k, 8, 8, 8, 8, 8, 2**62, 1, 4, 1, 0)
        """
    )


@pytest.mark.skipif(
    not _backend.has_core()
    or not hasattr(_backend.core(), "grouped_counts_cuda")
    or _backend.core().cuda_device_count() > 0,
    reason="needs the CUDA kernels compiled and no CUDA device (fake pointers)",
)
def test_cuda_bindings_pass_valid_descriptions_to_the_driver():
    """The other side of the checks above: valid descriptions (dict, tuple or an object with
    __cuda_array_interface__; optional arrays None or present) pass every check and reach the
    CUDA driver, which here (no device) raises CudaError instead of a ValueError."""
    run_isolated(
        """
        _next = [1 << 20]

        def dev(shape, typestr="<i8", strides=None):
            _next[0] += 1 << 36
            return {"data": (_next[0], False), "shape": tuple(shape), "strides": strides, "typestr": typestr,
                    "version": 3}

        class Cai:
            def __init__(self, desc):
                self.__cuda_array_interface__ = desc

        def cuda_error(fn, *args):  # True when the call got past the checks to the driver
            try:
                fn(*args)
            except _core.CudaError:
                return True
            return False

        g, y = dev((3,), "<i4"), dev((3,), "<i4")
        c, t = _core.grouped_counts_cuda, _core.grouped_threshold_counts_cuda
        expect_ok("counts", lambda: cuda_error(c, g, y, None, None, dev((2, 2)), 2, 2, 1, 0, 0, 0, 0), bool)
        expect_ok("counts, all arrays", lambda: cuda_error(
            c, Cai(g), y, dev((3, 2), "<i4"), dev((3,), "<f4"), dev((3, 2, 2, 2, 4), "<f8"), 2, 2, 4, 3, 7, 5, 0),
            bool)
        pt = (_next[0] + (1 << 30), (3,), (4,), "<i4")  # a tuple, with explicit C strides
        expect_ok("counts, tuple", lambda: cuda_error(c, pt, y, None, None, dev((2, 2)), 2, 2, 1, 0, 0, 0, 0),
                  bool)
        expect_ok("threshold counts", lambda: cuda_error(
            t, g, y, dev((3, 2), "<f8"), dev((4,), "<f8"), dev((3,), "<f8"), dev((2, 4, 2, 2, 2), "<f8"), 2, 2,
            0, 0, 0, 0), bool)
        expect_ok("mask", lambda: cuda_error(
            _core.shap_mask_cuda, dev((2, 3), "<f4"), dev((2, 3), "<f4"), dev((2, 2), "|u1"), dev((3,), "<i4"),
            0, 4, dev((8, 3), "<f4"), 0), bool)
        expect_ok("reduce", lambda: cuda_error(
            _core.shap_reduce_cuda, dev((4, 1), "<f8"), dev((2,), "<f8"), 1, dev((2, 1), "<f8"), 0), bool)
        expect_ok("apply", lambda: cuda_error(
            _core.shap_apply_cuda, dev((4, 1), "<f8"), dev((1,), "<f8"), dev((4, 2), "<f8"), 0, 4,
            dev((1, 2, 1), "<f8"), 0), bool)
        """
    )


@pytest.mark.parametrize("value", ["-2", "two", "1.5"])
def test_bad_thread_environment_is_named(monkeypatch, value):
    """The kernels now refuse a negative thread count; CLARION_NUM_THREADS is checked where it
    is read, so the message names the variable (it used to reach the kernel as -2, or fail in
    int() without a name)."""
    monkeypatch.setenv("CLARION_NUM_THREADS", value)
    msg = _counts.MSG_ENV_THREADS.format(value=value)
    with pytest.raises(ValueError, match=re.escape(msg)):
        clarion.grouped_counts([0, 1], [0, 1], backend="cpu")
    with pytest.raises(ValueError, match="CLARION_NUM_THREADS"):
        _kernels.n_threads(None)


def test_thread_environment_accepts_counts(monkeypatch):
    monkeypatch.setenv("CLARION_NUM_THREADS", "3")
    assert _kernels.n_threads(None) == 3
    np.testing.assert_array_equal(clarion.grouped_counts([0, 1], [0, 1], backend="cpu"), [[1, 0], [0, 1]])
    monkeypatch.setenv("CLARION_NUM_THREADS", "0")
    assert _kernels.n_threads(None) == 0


def test_bindings_refuse_outputs_that_alias_inputs():
    """An output sharing memory with an input was cleared or overwritten while the kernel still
    read the input (silently wrong counts); every binding now refuses it."""
    run_isolated(
        """
        buf = np.zeros(8, np.int64)
        g = buf[:4]
        expect("counts out aliases groups", r"out must not share memory with groups", _core.grouped_counts_cpu,
               g, np.zeros(4, np.int64), None, None, buf[2:6], 2, 2, 1, 0, 0, 0, 1)
        wb = np.ones(8)
        expect("counts out aliases weights", r"out must not share memory with weights", _core.grouped_counts_cpu,
               np.zeros(4, np.int64), np.zeros(4, np.int64), None, wb[:4], wb[3:7], 2, 2, 1, 0, 0, 0, 1)
        sb = np.zeros(12)
        expect("threshold out aliases scores", r"out must not share memory with scores",
               _core.grouped_threshold_counts_cpu, np.zeros(4, np.int64), np.zeros(4, np.int64), sb[:4],
               np.zeros(1), np.ones(4), sb[:8], 2, 2, 0, 0, 0, 1)
        X = np.zeros((4, 3))
        expect("mask out aliases X", r"out must not share memory with X", _core.shap_mask_cpu, X, np.zeros((1, 3)),
               np.zeros((2, 2), np.uint8), np.array([0, 1, -1], np.int32), 0, 2, X[:2], 1)
        F = np.zeros((4, 1))
        expect("reduce Y aliases F", r"Y must not share memory with F", _core.shap_reduce_cpu, F, np.full(2, 0.5),
               0, F[:2], 1)
        phi = np.zeros((1, 2, 1))
        expect("apply phi aliases Y", r"phi must not share memory with Y", _core.shap_apply_cpu, phi.reshape(2, 1),
               np.zeros(1), np.zeros((2, 2)), 0, 2, phi, 1)
        v = np.zeros(2, np.uint8)
        expect("knn votes alias ya", r"votes must not share memory with ya", _core.knn_vote_cpu, np.zeros((2, 1)),
               v, np.zeros((2, 1)), np.zeros(2, np.int64), v, 1, 1)
        """
    )


def test_no_thresholds_allocates_nothing_for_a_huge_declared_table():
    """With no thresholds the output is empty whatever n_groups says; the kernel used to allocate
    its (T + 1)-bin histogram anyway: 8 TiB for n_groups = 2**40 (MemoryError, or the OOM killer)."""
    run_isolated(
        """
        import clarion
        g = i64(0, 1, 5); y = i64(0, 1, 0); s = np.array([0.1, 0.2, 0.3])
        expect_ok("public, T = 0", lambda: clarion.grouped_threshold_counts(g, y, s, [], n_groups=2**40,
                                                                            backend="cpu"),
                  lambda out: out.shape == (0, 2**40, 2, 2))
        expect_ok("binding, T = 0", lambda: _core.grouped_threshold_counts_cpu(
            g, y, s, np.zeros(0), None, np.zeros(0, np.int64), 2**40, 2, 0, 0, 0, 1), lambda err: err == (0, -1, -1))
        expect("rows still checked", r"labels: code 1 at row 1 is outside \\[0, 1\\)",
               clarion.grouped_threshold_counts, g, y, s, [], n_groups=2**40, n_labels=1, backend="cpu")
        expect("NaN score still checked", r"scores: NaN at row 2", clarion.grouped_threshold_counts, g, y,
               np.array([0.1, 0.2, np.nan]), [], n_groups=2**40, weights=np.ones(3), backend="cpu")
        """
    )
