"""The compiled CSV block parser (``csv_block_cpu``, issue 21 part 3) beside pyarrow, same run.

Two parts, on the bias bench file of ``bench_linerate.py`` (columns age, income, sex, region, y,
pred; the job's bias columns y, sex, age, region, pred read as codes):

1. **One block** of ``--block-rows`` lines: ``csv_block_cpu`` (numbers parsed, the text columns
   coded) on 1 thread and on every core, against ``pyarrow.csv.read_csv`` of the same bytes with the
   same column types (text as strings, not coded: pyarrow does less) and the line finding
   (``csv_lines_cpu``) that precedes both.
2. **The reader**: ``clarion.read_dataset`` over the whole file, every chunk taken, with the
   compiled path on and off (``clarion.dataset._COMPILED_CSV``), with every column or only the
   job's bias columns (``usecols``), against ``pyarrow.csv.read_csv`` of the file (the floor).

Cases are interleaved round by round; times are the best of ``--repeat`` rounds (a shared machine:
read the ratios of one run).

Usage::

    python benchmarks/bench_csv_block.py                 # 1e6 rows, 100,000-row chunks
    python benchmarks/bench_csv_block.py --rows 1e5 --repeat 9
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_linerate import BIAS_COLUMNS, analyze_frame

import clarion.dataset as ds
from clarion import _core


def paired(fns, repeat):
    t = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            t[i].append(time.perf_counter() - t0)
    return [min(x) for x in t]


def ms(v):
    return f"{v * 1e3:.2f} ms"


def part_block(df, block_rows, repeat):
    text = df.iloc[:block_rows].to_csv(index=False, header=False).encode()
    data = np.frombuffer(text, dtype=np.uint8)
    names = list(df.columns)
    # as the reader parses them: numbers typed by the sample, the bias text columns coded
    by_name = {"age": 1, "income": 2, "sex": 3, "region": 3, "y": 1, "pred": 1}
    kinds = np.array([by_name[c] for c in names], dtype=np.int8)
    arrow_types = {c: pa.int64() if k == 1 else pa.float64() if k == 2 else pa.string() for c, k in zip(names, kinds)}
    opts = (
        pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(text) // 4 + 1)),
        pacsv.ConvertOptions(column_types=arrow_types, strings_can_be_null=False),
    )
    assert _core.csv_block_cpu(data, kinds, 1)[0] == 0
    one, every, arrow, lines = paired(
        [
            lambda: _core.csv_block_cpu(data, kinds, 1),
            lambda: _core.csv_block_cpu(data, kinds, 0),
            lambda: pacsv.read_csv(pa.py_buffer(text), read_options=opts[0], convert_options=opts[1]),
            lambda: _core.csv_lines_cpu(data, block_rows, True),
        ],
        repeat,
    )
    print(f"\nOne block: {block_rows:,} lines, {len(text) / 1e6:.2f} MB, {os.cpu_count()} cores\n")
    print(
        "| csv_block_cpu, 1 thread | csv_block_cpu, every core | pyarrow read_csv (typed, text not "
        "coded) | line finding | 1 thread / pyarrow | every core / pyarrow |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {ms(one)} | {ms(every)} | {ms(arrow)} | {ms(lines)} | {one / arrow:.2f}× | {every / arrow:.2f}× |")


def part_reader(path, chunk_rows, repeat):
    def reader(compiled, usecols):
        def run():
            ds._COMPILED_CSV = compiled
            try:
                for _ in ds.read_dataset(path, "text/csv", chunk_rows=chunk_rows, codes=BIAS_COLUMNS, usecols=usecols):
                    pass
            finally:
                ds._COMPILED_CSV = True

        return run

    cases = [
        ("pyarrow read_csv of the file (floor)", lambda: pacsv.read_csv(path)),
        ("reader, pyarrow path, every column", reader(False, None)),
        ("reader, compiled blocks, every column", reader(True, None)),
        ("reader, pyarrow path, usecols = bias columns", reader(False, BIAS_COLUMNS)),
        ("reader, compiled blocks, usecols = bias columns", reader(True, BIAS_COLUMNS)),
    ]
    times = paired([fn for _, fn in cases], repeat)
    floor = times[0]
    print(f"\nThe reader: {os.path.getsize(path) / 1e6:.1f} MB, chunks of {chunk_rows:,} rows\n")
    print("| case | time | / floor |")
    print("|---|---:|---:|")
    for (name, _), t in zip(cases, times):
        print(f"| {name} | {ms(t)} | {t / floor:.2f}× |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=float, default=1e6)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--block-rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    df = analyze_frame(int(args.rows))
    part_block(df, min(args.block_rows, len(df)), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.csv")
        df.to_csv(path, index=False)
        part_reader(path, args.chunk_rows, args.repeat)


if __name__ == "__main__":
    main()
