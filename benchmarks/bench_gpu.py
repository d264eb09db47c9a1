"""GPU benchmarks (issue 20), each against a floor measured in the same run on the same device.

* **counts**: ``grouped_counts`` on device arrays (1e8 rows by default) against the device's
  memory bandwidth: the bytes the kernel must read divided by its time, as a share of (a) the
  bandwidth a device-to-device copy reaches in this run and (b) the theoretical peak from the
  device's memory clock and bus width. Goal: >= 80% of the copy bandwidth.
* **shap**: the masking and background-reduction kernels of one SHAP batch against "the model"
  on the same synthetic rows (a cupy logistic regression: a GEMV and a sigmoid, the cheapest
  model a user would explain, so the overhead ratio is a worst case).
* **fliptest**: the CUDA k-NN vote against the CPU k-d tree (all cores), on a large and on a
  small facet d.

Prints a markdown table (and JSON with ``--json``). Without cupy or a CUDA device it says so and
exits with status 3 (``tools/gpu-check`` relies on it). Every CUDA result is checked equal to
the CPU's before it is timed.

    python benchmarks/bench_gpu.py [--rows 1e8] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

NO_DEVICE = 3


def _device():
    try:
        import cupy
    except ImportError:
        return None, "cupy is not installed (pip install 'clarion[gpu]')"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - no driver raises CUDARuntimeError
        return None, f"no CUDA driver ({exc})"
    if n == 0:
        return None, "no CUDA device"
    import clarion

    if not clarion.build_info().get("cuda_device"):
        return None, "clarion was built without CUDA kernels, or sees no device"
    return cupy, ""


def _time(cupy, fn, repeat: int) -> float:
    """Median seconds of fn() over `repeat` runs after one warm-up, timed with CUDA events."""
    fn()
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return float(np.median(times))


def _peak_bandwidth(cupy) -> float | None:
    """Theoretical DRAM bandwidth (bytes/s) from the device attributes, when the runtime gives them."""
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    clock_khz, bus_bits = props.get("memoryClockRate", 0), props.get("memoryBusWidth", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2.0 * clock_khz * 1e3 * bus_bits / 8.0  # double data rate


def bench_counts(cupy, rows: int, repeat: int) -> list[dict]:
    import clarion

    rng = np.random.default_rng(0)
    out = []
    # The copy floor: read + write of 1 GiB, device to device.
    src = cupy.ones(1 << 27, dtype=cupy.float64)
    dst = cupy.empty_like(src)
    t_copy = _time(cupy, lambda: dst.__setitem__(Ellipsis, src), repeat)
    copy_bw = 2 * src.nbytes / t_copy
    src = dst = None  # free the 2 GiB before the count inputs
    peak = _peak_bandwidth(cupy)
    cases = [("int8 codes, G=50", np.int8, 50, False), ("int32 codes, G=50", np.int32, 50, False)]
    cases.append(("int8 codes, G=50, float32 weights", np.int8, 50, True))
    for name, dtype, G, weighted in cases:
        g = cupy.asarray(rng.integers(0, G, rows, dtype=np.int64).astype(dtype))
        y = cupy.asarray(rng.integers(0, 2, rows).astype(dtype))
        p = cupy.asarray(rng.integers(0, 2, rows).astype(dtype))
        w = cupy.asarray(rng.random(rows, dtype=np.float32)) if weighted else None
        kw = dict(n_groups=G, n_labels=2, n_preds=2, backend="cuda")
        got = clarion.grouped_counts(g, y, p, weights=w, **kw)
        n_check = min(rows, 10_000_000)  # the check on a prefix keeps the CPU side short
        host = clarion.grouped_counts(
            *(cupy.asnumpy(a[:n_check]) for a in (g, y, p)),
            weights=None if w is None else cupy.asnumpy(w[:n_check]),
            n_groups=G, n_labels=2, n_preds=2, backend="cpu",
        )  # fmt: skip
        prefix = clarion.grouped_counts(g[:n_check], y[:n_check], p[:n_check],
                                        weights=None if w is None else w[:n_check], **kw)  # fmt: skip
        assert cupy.asnumpy(prefix).tobytes() == np.asarray(host).tobytes(), f"{name}: CUDA != CPU"
        assert float(cupy.asnumpy(got).sum()) > 0
        t = _time(cupy, lambda: clarion.grouped_counts(g, y, p, weights=w, **kw), repeat)
        nbytes = g.nbytes + y.nbytes + p.nbytes + (0 if w is None else w.nbytes)
        bw = nbytes / t
        out.append(
            {
                "kernel": "grouped_counts",
                "case": f"{rows:.0e} rows, {name}",
                "time_ms": t * 1e3,
                "figure": f"{bw / 1e9:.0f} GB/s read",
                "vs_floor": f"{bw / copy_bw:.0%} of copy ({copy_bw / 1e9:.0f} GB/s)"
                + (f", {bw / peak:.0%} of peak ({peak / 1e9:.0f} GB/s)" if peak else ""),
                "goal": ">= 80% of copy" if not weighted else "(weighted: see README estimate)",
                "ratio": bw / copy_bw,
            }
        )
    return out


def bench_shap(cupy, repeat: int) -> list[dict]:
    from clarion.explain import _kernels

    rng = np.random.default_rng(1)
    N, P, K, S = 64, 32, 100, 256
    q0, q1 = 0, N * S  # one batch: every pair of 64 explained rows
    X, B = cupy.asarray(rng.normal(size=(N, P))), cupy.asarray(rng.normal(size=(K, P)))
    Z = cupy.asarray((rng.random((S, P)) < 0.5).astype(np.uint8))
    col_player = cupy.asarray(np.arange(P, dtype=np.int32))
    pi = cupy.asarray(np.full(K, 1.0 / K))
    coef = cupy.asarray(rng.normal(size=P))

    def model(rows):
        return (1.0 / (1.0 + cupy.exp(-(rows @ coef))))[:, None]

    masked = _kernels.mask("cuda", X, B, Z, col_player, q0, q1, 0)
    F = cupy.ascontiguousarray(model(masked))
    host = _kernels.mask("cpu", *(cupy.asnumpy(a) for a in (X, B, Z, col_player)), q0, q1, 0)
    assert cupy.asnumpy(masked).tobytes() == host.tobytes(), "mask: CUDA != CPU"
    red = _kernels.reduce("cuda", F, pi, 0, 0)
    assert cupy.asnumpy(red).tobytes() == _kernels.reduce("cpu", cupy.asnumpy(F), cupy.asnumpy(pi), 0, 0).tobytes()
    t_mask = _time(cupy, lambda: _kernels.mask("cuda", X, B, Z, col_player, q0, q1, 0), repeat)
    t_reduce = _time(cupy, lambda: _kernels.reduce("cuda", F, pi, 0, 0), repeat)
    t_model = _time(cupy, lambda: model(masked), repeat)
    rows = masked.shape[0]
    return [
        {
            "kernel": "shap mask + reduce",
            "case": f"{rows:.1e} synthetic rows x {P} features",
            "time_ms": (t_mask + t_reduce) * 1e3,
            "figure": f"mask {t_mask * 1e3:.2f} ms ({masked.nbytes / t_mask / 1e9:.0f} GB/s written), "
            f"reduce {t_reduce * 1e3:.2f} ms",
            "vs_floor": f"{(t_mask + t_reduce) / t_model:.2f}x the model ({t_model * 1e3:.2f} ms, logistic GEMV)",
            "goal": "<= 1x the model",
            "ratio": (t_mask + t_reduce) / t_model,
        }
    ]


def bench_fliptest(cupy, repeat: int) -> list[dict]:
    from clarion import _backend

    core = _backend.core()
    out = []
    rng = np.random.default_rng(2)
    for n_a, n_d, m, k in [(200_000, 20_000, 8, 10), (200_000, 300, 8, 10)]:
        xa, xd = rng.normal(size=(n_a, m)), rng.normal(size=(n_d, m))
        ya = (rng.random(n_a) < 0.4).astype(np.uint8)
        pos, votes = np.empty(n_d, np.int64), np.empty(n_d, np.uint8)

        def cpu():
            core.knn_vote_cpu(xa, ya, xd, pos, votes, k, 0)

        t0 = time.perf_counter()
        cpu()
        t_cpu = time.perf_counter() - t0
        dxa, dya, dxd = cupy.asarray(xa), cupy.asarray(ya), cupy.asarray(xd)
        dpos, dvotes = cupy.empty(n_d, cupy.int64), cupy.empty(n_d, cupy.uint8)
        stream = int(cupy.cuda.get_current_stream().ptr)

        def gpu():
            core.knn_vote_cuda(dxa, dya, dxd, dpos, dvotes, k, stream)

        gpu()
        assert cupy.asnumpy(dpos).tobytes() == pos.tobytes(), "knn: CUDA != CPU"
        t_gpu = _time(cupy, gpu, repeat)
        out.append(
            {
                "kernel": "fliptest k-NN",
                "case": f"n_a={n_a:.0e}, n_d={n_d}, m={m}, k={k}",
                "time_ms": t_gpu * 1e3,
                "figure": f"{n_a * n_d / t_gpu / 1e9:.1f} G distances/s",
                "vs_floor": f"{t_cpu / t_gpu:.1f}x the CPU k-d tree ({t_cpu * 1e3:.0f} ms, {os.cpu_count()} cores)",
                "goal": "> 1x the k-d tree",
                "ratio": t_cpu / t_gpu,
            }
        )
    return out


def table(results: list[dict]) -> str:
    lines = ["| kernel | case | time | figure | against the floor | goal |", "|---|---|---:|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['kernel']} | {r['case']} | {r['time_ms']:.2f} ms | {r['figure']} | {r['vs_floor']} | {r['goal']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=float, default=1e8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=None, help="write the results here as JSON")
    ap.add_argument("--only", nargs="*", choices=["counts", "shap", "fliptest"], default=None)
    args = ap.parse_args(argv)
    cupy, why = _device()
    if cupy is None:
        print(f"bench_gpu: {why}; nothing to measure", file=sys.stderr)
        return NO_DEVICE
    only = set(args.only or ["counts", "shap", "fliptest"])
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    results: list[dict] = []
    if "counts" in only:
        results += bench_counts(cupy, int(args.rows), args.repeat)
    if "shap" in only:
        results += bench_shap(cupy, args.repeat)
    if "fliptest" in only:
        results += bench_fliptest(cupy, args.repeat)
    print(f"device: {name}, {props['multiProcessorCount']} SMs; command: python {' '.join(sys.argv)}")
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
