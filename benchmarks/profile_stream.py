"""A steady bias stream to profile (issue 21, part 2): ``Accumulator.update`` on the same frames
over and over, for ``--seconds``, so that a sampling profiler sees the steady state only.

The frames are ``bench_linerate.columns`` (facet with 10 values, label, prediction, group with 5
values) cut into ``--batch``-row frames; the first three updates (the one-pass path, building the
compiled stream) happen before the loop. With ``--first`` the loop instead times fresh
accumulators' first updates (the one-pass path). Prints the mean time per update.

Usage (symbols of the compiled core need a ``RelWithDebInfo`` build: ``cmake -S . -B build/prof
-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLARION_CUDA=OFF && cmake --build build/prof``, its
``_core*.so`` copied next to a copy of ``python/clarion`` on ``PYTHONPATH``)::

    perf record -F 20000 -g python benchmarks/profile_stream.py --kind categorical --batch 10000
    perf report --no-children --sort pid,symbol -g none
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_linerate as bl

import clarion.bias as cb


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["numeric", "categorical", "object"], default="categorical")
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--rows", type=float, default=1e6)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--first", action="store_true", help="time fresh accumulators' first updates instead")
    args = ap.parse_args(argv)
    if args.batch < 1 or args.rows < args.batch:
        ap.error("--batch must be >= 1 and --rows >= --batch")
    df, _, pos, _ = bl.columns(int(args.rows), args.kind)
    kw = dict(label="y", facet="f", label_values=pos, predicted_label="p", group_variable="g")
    parts = [df.iloc[i : i + args.batch] for i in range(0, len(df), args.batch)]
    n = 0
    spent = 0.0
    t_end = time.perf_counter() + args.seconds
    if args.first:
        while time.perf_counter() < t_end:
            acc = cb.Accumulator(**kw)
            t0 = time.perf_counter()
            acc.update(parts[n % len(parts)])
            spent += time.perf_counter() - t0
            n += 1
        print(f"{args.kind}, {args.batch:,}-row first updates: {spent / n * 1e6:.1f} us each ({n} updates)")
        return
    acc = cb.Accumulator(**kw)
    for p in parts[:3]:
        acc.update(p)
    steady = parts[3:] or parts
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        for p in steady:
            acc.update(p)
        spent += time.perf_counter() - t0
        n += len(steady)
    print(f"{args.kind}, {args.batch:,}-row steady updates: {spent / n * 1e6:.2f} us each ({n} updates)")


if __name__ == "__main__":
    main()
