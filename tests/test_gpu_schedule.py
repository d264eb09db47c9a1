"""The GPU path's CPU-side checks (issue 20): they run without a device, in CI.

* The floating-point sum schedule shared by the CPU and CUDA drivers (cpp/include/clarion/
  sum_schedule.hpp): a numpy emulation of each driver's loops (the CPU's leaves pulled by threads
  and merged over cell ranges; the GPU's (leaf, replicate, column) threads and level-by-level
  tree kernel) gives the same bits for random sizes, and so does the compiled CPU kernel. The
  former schedules (CPU: <= 64 chunks, left fold; GPU: 256-row chunks) are shown to differ, so
  the comparison can fail.
* No fused multiply-add: the build's flags, the compiled CPU code, and the CUDA kernels' PTX.
* The CUDA bindings' checks on fake ``__cuda_array_interface__`` objects (stream, k-NN arrays).
"""

from __future__ import annotations

import functools
import operator
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clarion
from clarion import _backend, _reference

pytestmark = pytest.mark.skipif(not _backend.has_core(), reason="compiled extension unavailable")

REPO = Path(__file__).resolve().parent.parent
LEAF_ROWS = 1 << 13  # sum_schedule.hpp: kLeafRows
SCRATCH_CELLS = (256 << 20) // 8  # sum_schedule.hpp: kScratchCells


def core():
    return _backend.core()


# -- the schedule --------------------------------------------------------------------------------


def sum_schedule(n_rows: int, cells: int) -> tuple[int, int]:
    """Python twin of sched::sum_schedule: (rows_per_leaf, n_leaves)."""
    if n_rows <= 0:
        return 1, 0
    c = max(cells, 1)
    max_leaves = max(SCRATCH_CELLS // c, 1)
    n_leaves = min(-(-n_rows // LEAF_ROWS), max_leaves)
    per = -(-n_rows // n_leaves)
    return per, -(-n_rows // per)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 10**13), cells=st.integers(0, 10**9))
def test_schedule_twin_matches_the_compiled_one(n, cells):
    per, leaves = sum_schedule(n, cells)
    assert core().sum_schedule(n, cells) == (per, leaves)
    if n == 0:
        assert leaves == 0
        return
    assert (leaves - 1) * per < n <= leaves * per  # every leaf has rows, together all rows
    assert leaves == 1 or leaves * max(cells, 1) <= SCRATCH_CELLS  # partial tables fit the budget
    assert leaves <= -(-n // LEAF_ROWS)  # never more leaves than kLeafRows-row pieces


def contributions(groups, labels, preds, weights, G, L, P, R, seed):
    """(row, cell, value) of every addition into the [R][B][G][L][P] table, rows ascending."""
    n, B = preds.shape
    rows, cells, values, unit_r, unit_b = [], [], [], [], []
    keep = groups >= 0
    for r in range(max(R, 1)):
        k = _reference.poisson1_draws(seed, r, np.arange(n)) if R > 0 else np.ones(n, np.int64)
        for b in range(B):
            c = (((r * B + b) * G + groups) * L + labels) * P + preds[:, b]
            v = weights.astype(np.float64) * k.astype(np.float64)
            rows.append(np.flatnonzero(keep))
            cells.append(c[keep])
            values.append(v[keep])
            unit_r.append(np.full(int(keep.sum()), r))
            unit_b.append(np.full(int(keep.sum()), b))
    cat = np.concatenate
    return cat(rows), cat(cells), cat(values), cat(unit_r), cat(unit_b)


def cpu_emulation(n, total, rows, cells, values, rng):
    """parallel.hpp's run_chunked_ranges on floats: threads pull leaves (any order), each leaf's
    table gets its rows in row order from +0.0; then threads merge cell ranges with the tree."""
    per, n_leaves = sum_schedule(n, total)
    tables = np.zeros((max(n_leaves, 1), total))
    leaf_of = rows // per
    for leaf in rng.permutation(n_leaves):  # the pull order of the threads does not matter
        sel = leaf_of == leaf
        for c in np.unique(cells[sel]):  # a plain Python left fold, row order
            tables[leaf, c] = functools.reduce(operator.add, values[sel & (cells == c)].tolist(), 0.0)
    n_threads = int(rng.integers(1, 5))
    edges = np.linspace(0, total, n_threads + 1).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):  # each thread: the whole tree on its cell range
        s = 1
        while s < n_leaves:
            for j in range((n_leaves - s + 2 * s - 1) // (2 * s)):
                tables[j * 2 * s, lo:hi] += tables[j * 2 * s + s, lo:hi]
            s *= 2
    return tables[0]


def gpu_emulation(n, total, rows, cells, values, unit_r, unit_b, rng, replicate_cells):
    """grouped_counts_cuda.cu: a thread per (leaf, replicate, column, slice of the cells) adds its
    rows in row order into its cells of the leaf's table (threads in any order); then one kernel
    per tree level, its (pair, cell) threads in any order."""
    per, n_leaves = sum_schedule(n, total)
    partial = np.zeros((max(n_leaves, 1), total))
    leaf_of = rows // per
    n_slices = int(rng.integers(1, 5))
    slice_of = (cells % replicate_cells) % n_slices  # the kernel slices the cell within its replicate
    units = sorted({(int(lf), int(r), int(b), int(s)) for lf, r, b, s in zip(leaf_of, unit_r, unit_b, slice_of)})
    for i in rng.permutation(len(units)):
        lf, r, b, s = units[i]
        sel = (leaf_of == lf) & (unit_r == r) & (unit_b == b) & (slice_of == s)
        for c in np.unique(cells[sel]):
            partial[lf, c] = np.cumsum(values[sel & (cells == c)])[-1]  # sequential: 0 + v0 + v1 ...
    s = 1
    while s < n_leaves:
        pairs = (n_leaves - s + 2 * s - 1) // (2 * s)
        for e in rng.permutation(pairs * total):
            j, c = divmod(int(e), total)
            partial[j * 2 * s, c] += partial[j * 2 * s + s, c]
        s *= 2
    return partial[0]


def weighted_case(seed, n, G, L, P, B, R, dtype):
    rng = np.random.default_rng(seed)
    groups = rng.integers(-1, G, n).astype(np.int32)
    labels = rng.integers(0, L, n).astype(np.int32)
    preds = rng.integers(0, P, (n, B)).astype(np.int32)
    # Weights over many magnitudes, so that the order of the additions shows in the last bits.
    weights = (rng.lognormal(0.0, 3.0, n) * (rng.random(n) < 0.9)).astype(dtype)
    return groups, labels, preds, weights


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.integers(0, 40), st.integers(LEAF_ROWS - 3, LEAF_ROWS + 3), st.integers(0, 9 * LEAF_ROWS)),
    G=st.integers(1, 3),
    L=st.integers(1, 2),
    P=st.integers(1, 3),
    B=st.integers(1, 2),
    R=st.sampled_from([0, 0, 2]),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_cpu_order_equals_gpu_order_equals_the_kernel(seed, n, G, L, P, B, R, dtype):
    groups, labels, preds, weights = weighted_case(seed, n, G, L, P, B, R, dtype)
    total = max(R, 1) * B * G * L * P
    rows, cells, values, unit_r, unit_b = contributions(groups, labels, preds, weights, G, L, P, R, seed)
    rng = np.random.default_rng(seed + 1)
    cpu = cpu_emulation(n, total, rows, cells, values, rng)
    gpu = gpu_emulation(n, total, rows, cells, values, unit_r, unit_b, rng, B * G * L * P)
    assert cpu.tobytes() == gpu.tobytes()
    got = clarion.grouped_counts(
        groups, labels, preds, weights=weights, n_groups=G, n_labels=L, n_preds=P,
        n_bootstrap=R, seed=seed, backend="cpu", n_threads=int(rng.integers(1, 4)),
    )  # fmt: skip
    assert np.ascontiguousarray(got, dtype=np.float64).reshape(-1).tobytes() == cpu.tobytes()


def left_fold_chunks(values, cells, rows, total, n, rows_per_chunk):
    """A chunked sum whose chunk partials are added left to right (the former schedules)."""
    out = np.zeros(total)
    for c0 in range(0, n, rows_per_chunk):
        part = np.zeros(total)
        sel = (rows >= c0) & (rows < c0 + rows_per_chunk)
        for c in np.unique(cells[sel]):
            part[c] = np.cumsum(values[sel & (cells == c)])[-1]
        out = out + part
    return out


def test_the_former_schedules_differ_and_the_kernel_follows_the_tree():
    """The comparison above can fail: the schedules before issue 20 (CPU <= 64 chunks of >= 65,536
    rows, GPU chunks of 256 rows, both left folds) give different bits on the same input, and a left
    fold over the new leaves differs from the tree that the compiled kernel follows."""
    n, G = 40 * LEAF_ROWS, 2
    groups, labels, preds, weights = weighted_case(7, n, G, 1, 1, 1, 0, np.float64)
    rows, cells, values, _, _ = contributions(groups, labels, preds, weights, G, 1, 1, 0, 7)
    old_cpu = left_fold_chunks(values, cells, rows, G, n, -(-n // min(-(-n // 65536), 64)))
    old_gpu = left_fold_chunks(values, cells, rows, G, n, -(-n // min(-(-n // 256), 65536)))
    assert old_cpu.tobytes() != old_gpu.tobytes()
    per, _ = sum_schedule(n, G)
    fold = left_fold_chunks(values, cells, rows, G, n, per)
    tree = cpu_emulation(n, G, rows, cells, values, np.random.default_rng(0))
    assert fold.tobytes() != tree.tobytes()
    np.testing.assert_allclose(fold, tree, rtol=1e-12)  # the same sum, other rounding
    got = clarion.grouped_counts(groups, labels, weights=weights, n_groups=G, n_labels=1, backend="cpu")
    assert np.asarray(got).reshape(-1).tobytes() == tree.tobytes()


# -- the k-NN split and merge ----------------------------------------------------------------------


def knn_parts(n_a: int, n_d: int, sms: int) -> int:
    """knn_cuda.cu's split of the reference rows: enough (query, part) threads to fill `sms` SMs,
    at most 32 parts of at least 256 rows."""
    parts = max(1, -(-(sms * 2048) // max(n_d, 1)))
    return min(parts, 32, max(1, n_a // 256))


def knn_split_merge(xa, ya, xd, k, parts):
    """knn_cuda.cu in numpy: part p = rows [n_a p / G, n_a (p + 1) / G) keeps its k closest by
    (distance, row); the merge kernel takes the k closest heads in turn; labels normalised to 0/1."""
    n_a = xa.shape[0]
    dist = np.zeros((xd.shape[0], n_a))
    for j in range(xa.shape[1]):  # knn.hpp's left-to-right sum, no FMA (as _reference.knn_vote)
        t = xd[:, j, None] - xa[None, :, j]
        dist = dist + t * t
    label = (ya != 0).astype(np.int64)
    positives = np.zeros(xd.shape[0], np.int64)
    for q in range(xd.shape[0]):
        lists = []
        for p in range(parts):
            lo, hi = n_a * p // parts, n_a * (p + 1) // parts
            idx = np.arange(lo, hi)
            order = np.lexsort((idx, dist[q, lo:hi]))[:k]
            lists.append([(dist[q, lo + o], lo + o) for o in order])
        heads = [0] * parts
        for _ in range(k):
            cands = [(lists[p][heads[p]], p) for p in range(parts) if heads[p] < len(lists[p])]
            (d, i), p = min(cands)  # (distance, row): the neighbour order
            positives[q] += label[i]
            heads[p] += 1
    return positives


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_a=st.integers(1, 3000),
    n_d=st.integers(1, 12),
    m=st.integers(1, 3),
    k=st.integers(1, 40),
    sms=st.sampled_from([1, 8, 132]),
)
def test_knn_split_over_reference_rows_merges_to_the_exact_neighbours(seed, n_a, n_d, m, k, sms):
    """The CUDA k-NN's split into parts and its merge give the CPU k-d tree's positives exactly
    (integer coordinates: many ties, broken by the lower row), with labels other than 0/1
    normalised as the CPU does."""
    k = min(k, n_a)
    rng = np.random.default_rng(seed)
    xa = rng.integers(0, 4, (n_a, m)).astype(np.float64)
    xd = rng.integers(0, 4, (n_d, m)).astype(np.float64)
    ya = (rng.integers(0, 2, n_a) * rng.choice([1, 7, 255], n_a)).astype(np.uint8)
    parts = knn_parts(n_a, n_d, sms)
    got = knn_split_merge(xa, ya, xd, k, parts)
    pos, votes = np.empty(n_d, np.int64), np.empty(n_d, np.uint8)
    core().knn_vote_cpu(xa, ya, xd, pos, votes, k, 1)
    assert got.tobytes() == pos.tobytes()
    assert (votes == (2 * got > k)).all()


# -- no fused multiply-add -------------------------------------------------------------------------


def test_the_build_turns_fma_contraction_off():
    info = core().compiled_info()
    if platform.python_compiler().startswith(("GCC", "Clang")):
        assert "-ffp-contract=off" in info["cxx_fp_flags"].split()
    if info["cuda_compiled"]:
        assert "--fmad=false" in info["cuda_fp_flags"].split()


_X86_FMA = re.compile(r"\bv?f(n)?m(add|sub)(132|213|231)[sp][sd]\b")
_ARM_FMA = re.compile(r"\bf(n)?m(add|sub)\s")


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump not installed")
def test_the_compiled_cpu_code_has_no_fma_instructions():
    """The extension's host code (every CPU kernel) holds no fused multiply-add instruction."""
    pattern = {"x86_64": _X86_FMA, "AMD64": _X86_FMA, "aarch64": _ARM_FMA, "arm64": _ARM_FMA}.get(platform.machine())
    if pattern is None:
        pytest.skip(f"no FMA pattern for {platform.machine()}")
    so = Path(core().__file__)
    asm = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(so)], capture_output=True, text=True, check=True
    ).stdout
    assert len(asm) > 10_000  # it did disassemble something
    hits = [ln for ln in asm.splitlines() if pattern.search(ln)]
    assert not hits, hits[:5]


def _ptx(source: Path, flags: list[str], tmp_path: Path) -> str:
    out = tmp_path / f"{source.stem}{len(list(tmp_path.iterdir()))}.ptx"
    cmd = ["nvcc", "-std=c++17", "-ptx", "-arch=compute_90", "-DCLARION_WITH_CUDA=1", "-I", str(REPO / "cpp/include")]
    subprocess.run([*cmd, *flags, "-o", str(out), str(source)], check=True, capture_output=True, timeout=300)
    return out.read_text()


_PTX_FMA = re.compile(r"\b(fma\.rn|mad\.rn)\.f(32|64)\b")


def _fma_per_kernel(ptx: str) -> dict[str, int]:
    """Fused multiply-adds per kernel entry (demangled-ish: the entry name's readable part)."""
    counts: dict[str, int] = {}
    name = None
    for line in ptx.splitlines():
        m = re.match(r"(\.visible\s+)?\.entry\s+([\w$]+)\(", line.strip())
        if m:
            name = m.group(2)
            counts[name] = 0
        elif name is not None and _PTX_FMA.search(line):
            counts[name] += 1
    return counts


def _kernel(counts: dict[str, int], stem: str) -> int:
    hits = [v for k, v in counts.items() if stem in k]
    assert hits, f"no kernel named like {stem} in {list(counts)}"
    return sum(hits)


@pytest.mark.skipif(
    shutil.which("nvcc") is None or not (REPO / "cpp/src/shap_cuda.cu").exists(),
    reason="needs nvcc and the source tree",
)
def test_the_cuda_kernels_compile_without_fma(tmp_path):
    """PTX of the SHAP kernels and the k-NN kernels with the build's CUDA flags: the kernels' own
    arithmetic has no fused multiply-add (the apply sum, the reduce sum, the distances). The only
    fma left is inside CUDA's `log` (libdevice implements it with explicit fma; --fmad cannot
    remove it), used by the reduce kernel's logit link: its count is a multiple of a bare `log`
    kernel's. Without --fmad=false the apply kernel does contract (the control: this check can
    fail)."""
    info = core().compiled_info()
    flags = (info["cuda_fp_flags"] or "--fmad=false").split()
    assert "--fmad=false" in flags
    probe = tmp_path / "probe_log.cu"
    probe.write_text("#include <cmath>\n__global__ void probe_log(const double* x, double* y) { *y = log(*x); }\n")
    per_log = _kernel(_fma_per_kernel(_ptx(probe, flags, tmp_path)), "probe_log")
    assert per_log > 0
    shap = _fma_per_kernel(_ptx(REPO / "cpp/src/shap_cuda.cu", flags, tmp_path))
    assert _kernel(shap, "apply_kernel") == 0
    assert _kernel(shap, "mask_kernel") == 0
    assert _kernel(shap, "reduce_kernel") % per_log == 0
    knn = _fma_per_kernel(_ptx(REPO / "cpp/src/knn_cuda.cu", flags, tmp_path))
    assert _kernel(knn, "knn_part_kernel") == 0 and _kernel(knn, "knn_merge_kernel") == 0
    contracted = _fma_per_kernel(_ptx(REPO / "cpp/src/shap_cuda.cu", [], tmp_path))
    assert _kernel(contracted, "apply_kernel") > 0


# -- CUDA bindings: checks on fake device arrays ---------------------------------------------------

_next = [1 << 20]


def dev(shape, typestr="<i8", ptr=None, **extra):
    if ptr is None:  # distinct, aligned, far apart: never overlapping
        _next[0] += 1 << 36
        ptr = _next[0]
    return {"data": (ptr, False), "shape": tuple(shape), "strides": None, "typestr": typestr, "version": 3, **extra}


class Cai:
    def __init__(self, desc):
        self.__cuda_array_interface__ = desc


needs_cuda_build = pytest.mark.skipif(
    not _backend.has_core() or not hasattr(_backend.core(), "grouped_counts_cuda"), reason="CUDA kernels not compiled"
)


def _counts_args(**arrays):
    a = {"groups": dev((3,), "<i4"), "labels": dev((3,), "<i4"), "preds": None, "weights": None, "out": dev((2, 2))}
    a.update(arrays)
    return (a["groups"], a["labels"], a["preds"], a["weights"], a["out"], 2, 2, 1, 0, 0, 0, 0)


@needs_cuda_build
@pytest.mark.parametrize(
    ("stream", "message"),
    [(0, r"groups: 'stream' must be None or a positive integer"), ("7", r"groups: 'stream' must be an integer")],
)
def test_cuda_binding_refuses_a_bad_stream(stream, message):
    with pytest.raises(ValueError, match=message):
        core().grouped_counts_cuda(*_counts_args(groups=Cai(dev((3,), "<i4", stream=stream))))


def _knn_args(**arrays):
    a = {
        "xa": dev((5, 2), "<f8"),
        "ya": dev((5,), "|u1"),
        "xd": dev((3, 2), "<f8"),
        "positives": dev((3,), "<i8"),
        "votes": dev((3,), "|u1"),
    }
    a.update(arrays)
    return a


@needs_cuda_build
@pytest.mark.parametrize(
    ("arrays", "k", "message"),
    [
        ({"xa": dev((5, 2), "<f4")}, 3, r"xa must be float64, got dtype float32"),
        ({"ya": dev((5,), "<i8")}, 3, r"ya must be uint8"),
        ({"xd": dev((3, 4), "<f8")}, 3, r"xa and xd must have the same number of columns"),
        ({"ya": dev((4,), "|u1")}, 3, r"ya must have one entry per row of xa"),
        ({"votes": dev((2,), "|u1")}, 3, r"votes must have one entry per row of xd"),
        ({"xa": dev((5, 2), ">f8")}, 3, r"xa must be in native byte order"),
        ({"xd": {**dev((3, 2), "<f8"), "strides": (8, 24)}}, 3, r"xd must be C-contiguous"),
        ({"positives": {**dev((3,), "<i8"), "data": (1 << 20, True)}}, 3, r"positives must be writeable"),
        ({}, 0, r"k"),
        ({}, 6, r"k"),
    ],
)
def test_cuda_knn_binding_checks_device_arrays(arrays, k, message):
    """knn_vote_cuda takes device arrays and runs knn_vote_cpu's checks on them (it took raw
    integers before: no dtype, shape, stride or aliasing check)."""
    a = _knn_args(**arrays)
    with pytest.raises(ValueError, match=message):
        core().knn_vote_cuda(Cai(a["xa"]), a["ya"], a["xd"], a["positives"], a["votes"], k, 0)


@needs_cuda_build
def test_cuda_knn_binding_refuses_aliased_outputs():
    a = _knn_args()
    with pytest.raises(ValueError, match="votes must not share memory with xd"):
        core().knn_vote_cuda(a["xa"], a["ya"], a["xd"], a["positives"], dev((3,), "|u1", ptr=a["xd"]["data"][0]), 3, 0)


@needs_cuda_build
def test_valid_fake_arrays_get_past_the_checks_to_the_device_queries():
    """Valid descriptions pass every description check and reach the device-side checks: without
    a driver the runtime query raises clarion.CudaError; with one, the fake pointer is found not
    to be device memory (a ValueError naming the argument) -- never a launch on a bad pointer."""
    a = _knn_args()
    calls = [
        lambda: core().knn_vote_cuda(a["xa"], a["ya"], a["xd"], a["positives"], a["votes"], 3, 0),
        lambda: core().grouped_counts_cuda(*_counts_args(groups=Cai(dev((3,), "<i4", stream=1)))),
    ]
    for call in calls:
        if core().cuda_device_count() == 0:
            with pytest.raises(clarion.CudaError):
                call()
        else:
            with pytest.raises(ValueError, match="is not in device memory"):
                call()


# -- tools/gpu-check without a device ---------------------------------------------------------------


def _no_device() -> bool:
    nvsmi = shutil.which("nvidia-smi")
    return nvsmi is None or subprocess.run([nvsmi, "-L"], capture_output=True, check=False).returncode != 0


@pytest.mark.skipif(not _no_device(), reason="a CUDA device is present: tools/gpu-check would run for real")
def test_gpu_check_says_there_is_no_device_and_exits_3():
    proc = subprocess.run(["bash", str(REPO / "tools/gpu-check")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "no CUDA device" in proc.stderr
    assert "pytest" not in proc.stdout  # nothing was run
    bench = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/bench_gpu.py"), "--rows", "1e3"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(clarion.__file__).parent.parent)},
    )
    assert bench.returncode == 3, bench.stderr
    assert "nothing to measure" in bench.stderr
