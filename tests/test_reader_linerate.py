"""The reader's line-rate path (issue 21 part 3): the next chunk read on a thread
(``Reader.prefetch``), the CSV text columns coded by the compiled ``text_codes_cpu``, and the
line finding's block sizes.

Every fast path is compared with the path without it: the same chunks (frames, starts, lines,
coded columns), the same skips (counted when the chunk that holds them is taken), the same errors
(file, line, column) at the same point of the iteration, and the same ``analysis.json``; the
compiled kernel with its numpy reference on generated text. The thread is checked to hold at
most two chunks and to end with the iteration, however it ends.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clarion
import clarion.job.source as job_source
import clarion.report
from clarion import _core, _reference, dataset
from clarion.dataset import DataError, read_dataset

THREAD = "clarion-reader-prefetch"

# ---- the compiled text codes ------------------------------------------------------------------

# values that share their first 8 bytes, differ by a trailing NUL (the kernel pads words with
# zeros), are empty, non-ASCII or long
EDGE = ["", "a", "a\x00", "a\x00\x00", "abcdefgh", "abcdefghi", "abcdefghj", "abcdefgh\x00", "é", "ÿ" * 9, "F", "M"]
values_strategy = st.lists(st.sampled_from(EDGE) | st.text(max_size=12) | st.integers(0, 300).map(str), max_size=400)


def _kernel_and_reference(offsets, data):
    codes, first = _core.text_codes_cpu(offsets, data)
    ref_codes, ref_first = _reference.text_codes(offsets, data)
    assert codes.dtype == np.int32 and first.dtype == np.int64
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)
    return codes, first


@settings(max_examples=60, deadline=None)
@given(values=values_strategy, start=st.integers(0, 5), large=st.booleans())
def test_text_codes_arrow_buffers(values, start, large):
    """On an Arrow string / large_string array's own buffers (a slice: offsets not from 0)."""
    arr = pa.array(values, pa.large_string() if large else pa.string()).slice(min(start, len(values)))
    n = len(arr)
    bufs = arr.buffers()
    width = 8 if large else 4
    offsets = np.frombuffer(bufs[1], dtype=np.int64 if large else np.int32, count=n + 1, offset=arr.offset * width)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
    codes, first = _kernel_and_reference(offsets, data)
    got = [arr[int(first[c])].as_py() for c in codes]
    assert got == arr.to_pylist()  # each row's code names a row with its value


@settings(max_examples=60, deadline=None)
@given(values=values_strategy)
def test_text_codes_exact_buffer(values):
    """On a data array that ends with the last value (no padding: the last values' words are
    read byte by byte)."""
    raw = [v.encode("utf-8") for v in values]
    data = np.frombuffer(b"".join(raw), dtype=np.uint8) if raw else np.empty(0, np.uint8)
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in raw], dtype=np.int64)]).astype(np.int64)
    codes, first = _kernel_and_reference(offsets, data.copy())
    assert len(first) == len(set(raw))


def test_text_codes_edges():
    codes, first = _kernel_and_reference(np.zeros(1, np.int32), np.empty(0, np.uint8))
    assert len(codes) == 0 and len(first) == 0
    one = np.frombuffer(b"x", dtype=np.uint8)
    codes, first = _kernel_and_reference(np.array([0, 1], np.int32), one)
    assert codes.tolist() == [0] and first.tolist() == [0]
    many = [str(i % 5000) for i in range(20000)]  # the table grows many times
    raw = "".join(many).encode()
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in many])]).astype(np.int64)
    codes, first = _kernel_and_reference(offsets, np.frombuffer(raw, dtype=np.uint8))
    assert len(first) == 5000 and codes[-1] == 4999


@pytest.mark.parametrize(
    "offsets", [np.array([0, 3], np.int32), np.array([2, 1], np.int64), np.array([-1, 0], np.int32)]
)
def test_text_codes_refuses_offsets_outside_the_data(offsets):
    with pytest.raises(ValueError, match="offsets: row 0"):
        _core.text_codes_cpu(offsets, np.frombuffer(b"ab", dtype=np.uint8))


def test_text_codes_refuses_wrong_dtypes():
    with pytest.raises(ValueError, match="data"):
        _core.text_codes_cpu(np.array([0, 1], np.int32), np.array([1], np.int64))
    with pytest.raises(ValueError, match="offsets"):
        _core.text_codes_cpu(np.array([0, 1], np.float64), np.frombuffer(b"a", dtype=np.uint8))


@settings(max_examples=40, deadline=None)
@given(blocks=st.lists(st.lists(st.none() | st.sampled_from(EDGE), max_size=30), max_size=5))
def test_text_categorical_equals_dictionary_merge(blocks):
    """``_text_categorical`` (the kernel, per parsed block) gives the Categorical the dictionary
    path gives: first-seen order across blocks, a null as code -1."""
    col = pa.chunked_array([pa.array(b, pa.string()) for b in blocks], type=pa.string())
    got = dataset._text_categorical(col)
    ref = dataset._local_categorical(
        pa.chunked_array([c.dictionary_encode() for c in col.chunks], type=pa.dictionary(pa.int32(), pa.string()))
    )
    assert list(got.categories) == list(ref.categories)
    np.testing.assert_array_equal(np.asarray(got.codes), np.asarray(ref.codes))
    assert got.codes.dtype == ref.codes.dtype
    assert [None if pd.isna(v) else v for v in got] == [v for b in blocks for v in b]


# ---- the prefetch thread ----------------------------------------------------------------------

TEXTS = ["a", "b", "", "NA", "x,y", 'say "hi"', " a", "é", "1", "c"]
HEADER = ["t", "y", "n", "g", "p"]


def _csv(rows, header=HEADER) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue()


def _read(path, prefetch, dataset_type="text/csv", **kw):
    """Every chunk with the reader's skip count and examples when it came, then how the iteration
    ended (None, or the error's type and message)."""
    r = read_dataset(path, dataset_type, prefetch=prefetch, **kw)
    seen = []
    try:
        for c in r:
            seen.append((c, r.skipped, list(r.skipped_examples)))
    except (DataError, ValueError) as exc:
        return seen, f"{type(exc).__name__}: {exc}", r
    return seen, None, r


def _same_reads(path, dataset_type="text/csv", **kw):
    off = _read(path, False, dataset_type, **kw)
    on = _read(path, True, dataset_type, **kw)
    _assert_same_reads(on, off)
    return on[0], on[1]


def _assert_same_reads(on, off):
    """Two :func:`_read` results: the same chunks (frames, codes, lines), skips and ending."""
    (on, end_on, r_on), (off, end_off, r_off) = on, off
    assert end_on == end_off
    assert (r_on.skipped, r_on.skipped_examples) == (r_off.skipped, r_off.skipped_examples)
    assert len(on) == len(off)
    for (a, sa, ea), (b, sb, eb) in zip(on, off):
        assert (a.start, sa, ea, list(a.coded)) == (b.start, sb, eb, list(b.coded))
        np.testing.assert_array_equal(a.lines, b.lines)
        pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
        pd.testing.assert_frame_equal(a.plain(), b.plain(), check_exact=True)
    assert not _prefetch_threads()


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == THREAD and t.is_alive()]


row = st.tuples(
    st.sampled_from(TEXTS),
    st.sampled_from(["Y", "N"]),
    st.integers(-5, 5),
    st.sampled_from(TEXTS),
    st.sampled_from("YN"),
)
# a malformed line: a wrong field count, a non-number in the numeric column, an empty label
BAD = ["a,Y,1\n", "a,Y,zz,g,N\n", "a,,1,g,N\n"]


def _csv_with_bad_lines(tmp_path_factory, rows, bad):
    """A CSV of ``rows`` with the lines ``bad`` names (row, text) replaced."""
    lines = _csv(rows).splitlines(keepends=True)
    for at, text in bad:
        if at < len(rows):
            lines[at + 1] = text
    path = tmp_path_factory.mktemp("p") / "d.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _write(frame: pd.DataFrame, folder, fmt: str, row_group_size: int) -> tuple:
    """``frame`` written into ``folder`` as Parquet (row groups of ``row_group_size``) or CSV: the
    file's path and dataset type."""
    if fmt == "parquet":
        path = folder / "d.parquet"
        frame.to_parquet(path, index=False, row_group_size=row_group_size)
        return path, "application/x-parquet"
    path = folder / "d.csv"
    frame.to_csv(path, index=False)
    return path, "text/csv"


#: a CSV of up to 40 rows with bad lines among them, read in chunks, skipping or not, as codes or not
#: (also read at every prefetch depth by test_reader_prefetch_depth)
READ_CASES = dict(
    rows=st.lists(row, min_size=1, max_size=40),
    chunk_rows=st.integers(1, 9),
    bad=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(BAD)), max_size=4),
    skip=st.booleans(),
    codes=st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**READ_CASES)
def test_prefetch_gives_the_same_chunks_skips_and_errors(tmp_path_factory, rows, chunk_rows, bad, skip, codes):
    path = _csv_with_bad_lines(tmp_path_factory, rows, bad)
    kw = {"codes": ("t", "y", "g", "p")} if codes else {}
    _same_reads(path, chunk_rows=chunk_rows, skip_bad_rows=skip, required=("y",), **kw)


def test_prefetch_error_after_the_chunks_before_it(tmp_path):
    """Skip off: the chunks before the bad line come first, then its error (line and column)."""
    rows = [["a", "Y", i, "g", "N"] for i in range(30)]
    lines = _csv(rows).splitlines(keepends=True)
    lines[21] = "a,Y,zz,g,N\n"  # line 22
    path = tmp_path / "d.csv"
    path.write_text("".join(lines))
    on, end = _same_reads(path, chunk_rows=4)
    assert len(on) == 5  # rows 1-20 (lines 2-21); the chunk of line 22 is not given
    assert end == f"DataError: {path}: line 22, column 'n': 'zz' is not a number"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_prefetch_parquet_and_csv_same_chunks(tmp_path, fmt):
    rng = np.random.default_rng(5)
    n = 700
    t = [None if i % 13 == 0 else v for i, v in enumerate(rng.choice(["a", "b", "", "é"], n).tolist())]
    frame = pd.DataFrame(
        {
            "t": pd.array(t, dtype=object),
            "y": rng.choice(["Y", "N"], n),
            "n": rng.integers(0, 9, n),
            "g": rng.choice(["u", "v"], n),
            "p": rng.choice(["Y", "N"], n),
        }
    )
    path, kind = _write(frame, tmp_path, fmt, 50)
    for codes in ((), ("t", "y", "g")):
        on, end = _same_reads(path, kind, chunk_rows=64, codes=codes)
        assert end is None and sum(len(c.frame) for c, _, _ in on) == n


def _big_csv(tmp_path, n=60):
    path = tmp_path / "d.csv"
    path.write_text(_csv([["a", "Y", i, "g", "N"] for i in range(n)]))
    return path


def _open_fds(path):
    fds = "/proc/self/fd"
    if not os.path.isdir(fds):
        return 0
    out = 0
    for f in os.listdir(fds):
        try:
            out += os.readlink(os.path.join(fds, f)) == str(path)
        except OSError:
            pass
    return out


def test_thread_ends_with_the_iteration(tmp_path):
    path = _big_csv(tmp_path)
    r = read_dataset(path, "text/csv", chunk_rows=7)
    assert sum(len(c.frame) for c in r) == 60
    assert not _prefetch_threads() and _open_fds(path) == 0


@pytest.mark.parametrize("how", ["close", "del", "break"])
def test_thread_ends_when_the_caller_stops(tmp_path, how):
    path = _big_csv(tmp_path)
    r = read_dataset(path, "text/csv", chunk_rows=7)
    it = iter(r)
    first = next(it)
    assert first.start == 0 and len(first.frame) == 7
    assert _prefetch_threads()  # reading the next chunk (or done with it, waiting)
    if how == "close":
        it.close()
    elif how == "del":
        del it
    else:
        for k, _ in enumerate(it):
            if k == 1:
                break
        it.close()
    assert not _prefetch_threads() and _open_fds(path) == 0


def test_thread_ends_on_an_error(tmp_path):
    rows = [["a", "Y", i, "g", "N"] for i in range(20)]
    text = _csv(rows).replace("\na,Y,12,g,N\n", "\na,Y,twelve,g,N\n")
    path = tmp_path / "d.csv"
    path.write_text(text)
    r = read_dataset(path, "text/csv", chunk_rows=5)
    got = []
    with pytest.raises(DataError, match=r"line 14, column 'n': 'twelve' is not a number"):
        for c in r:
            got.append(len(c.frame))
    assert got == [5, 5]
    assert not _prefetch_threads() and _open_fds(path) == 0


def test_error_in_the_callers_work_stops_the_thread(tmp_path):
    path = _big_csv(tmp_path)
    with pytest.raises(RuntimeError, match="caller"):
        for _ in read_dataset(path, "text/csv", chunk_rows=7):
            raise RuntimeError("caller")
    assert not _prefetch_threads() and _open_fds(path) == 0


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_at_most_two_chunks_and_the_next_one_is_read_ahead(tmp_path, monkeypatch, depth):
    """While the caller holds chunk k, the thread has read blocks k + 1 .. k + depth (read ahead,
    ``dataset.PREFETCH_BLOCKS``: 1 until session 19, 2 since) and no more."""
    monkeypatch.setattr(dataset, "PREFETCH_BLOCKS", depth)
    made = []
    real = dataset.Reader._prefetched

    def counted(self, it):
        def blocks():
            try:
                for block in it:
                    made.append(len(block[1]))
                    yield block
            finally:
                it.close()

        return real(self, blocks())

    monkeypatch.setattr(dataset.Reader, "_prefetched", counted)
    path = _big_csv(tmp_path)
    total = 9  # 60 rows in chunks of 7
    for k, _ in enumerate(read_dataset(path, "text/csv", chunk_rows=7)):
        want = min(k + 1 + depth, total)
        deadline = time.monotonic() + 10
        while len(made) < want and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.02)  # (room for a chunk too many to show)
        assert len(made) == want
    assert len(made) == total


def test_other_formats_and_off_run_without_a_thread(tmp_path, monkeypatch):
    started = []
    real = threading.Thread.start

    def spy(self):
        started.append(self.name)
        return real(self)

    monkeypatch.setattr(threading.Thread, "start", spy)
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"a": i, "y": i % 2}) + "\n" for i in range(10)))
    assert len(list(read_dataset(path, "application/jsonlines", chunk_rows=3))) == 4
    assert len(list(read_dataset(_big_csv(tmp_path), "text/csv", chunk_rows=7, prefetch=False))) == 9
    assert THREAD not in started
    assert len(list(read_dataset(_big_csv(tmp_path), "text/csv", chunk_rows=7))) == 9
    assert started.count(THREAD) == 1


# ---- the line finding's block sizes -----------------------------------------------------------


@pytest.mark.parametrize("short_first", [True, False])
@pytest.mark.parametrize("chunk_rows", [1000, 4999])
def test_line_length_change_keeps_chunks_and_lines(tmp_path, short_first, chunk_rows):
    """The first block's line length is measured on 64 KiB; lines much longer or shorter further
    on still give chunks of ``chunk_rows`` rows with their own line numbers, blank lines skipped."""
    short = [["a", "Y", i, "g", "N"] for i in range(6000)]
    long = [["x" * 200, "N", i, "h" * 50, "Y"] for i in range(3000)]
    rows = short + long if short_first else long + short
    text = _csv(rows)
    lines = text.splitlines(keepends=True)
    lines.insert(5000, "\n")  # a blank line (line 5001): no row, line numbers go on
    path = tmp_path / "d.csv"
    path.write_text("".join(lines))
    chunks = list(read_dataset(path, "text/csv", chunk_rows=chunk_rows, codes=("t",)))
    assert [len(c.frame) for c in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
    got = pd.concat([c.plain() for c in chunks], ignore_index=True)
    want = pd.DataFrame(rows, columns=HEADER)
    pd.testing.assert_frame_equal(got, want.astype({"t": object, "y": object, "g": object, "p": object}))
    all_lines = np.concatenate([c.lines for c in chunks])
    expect = np.arange(2, len(rows) + 3)
    np.testing.assert_array_equal(all_lines, expect[expect != 5001])


# ---- the job ----------------------------------------------------------------------------------

CFG = {
    "dataset_type": "text/csv",
    "label": "y",
    "label_values_or_threshold": ["Y"],
    "facet": [{"name_or_index": "t", "value_or_threshold": ["a"]}, {"name_or_index": "n", "value_or_threshold": [2]}],
    "group_variable": "g",
    "predicted_label": "p",
    "methods": {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}},
}


@pytest.fixture
def no_report(monkeypatch):
    """The report files are renderings of analysis.json (compared here): not written."""
    monkeypatch.setattr(clarion.report, "write_report", lambda *a, **kw: {})


def _analyze(cfg, path, out, prefetch, monkeypatch, **kw):
    monkeypatch.setattr(job_source, "PREFETCH", prefetch)
    try:
        res = clarion.analyze(cfg, path, output_dir=out, progress=False, overwrite=True, **kw)
    except (DataError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return (out / "analysis.json").read_text(), res.skipped_rows, res.skipped_examples, res.notes


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(row, min_size=2, max_size=40),
    chunk_rows=st.integers(1, 12),
    bad=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(BAD)), max_size=3),
    skip=st.booleans(),
)
def test_analysis_identical_with_prefetch(tmp_path_factory, monkeypatch, no_report, rows, chunk_rows, bad, skip):
    path = _csv_with_bad_lines(tmp_path_factory, rows, bad)
    tmp = tmp_path_factory.mktemp("o")
    off = _analyze(CFG, path, tmp / "off", False, monkeypatch, chunk_rows=chunk_rows, skip_bad_rows=skip)
    on = _analyze(CFG, path, tmp / "on", True, monkeypatch, chunk_rows=chunk_rows, skip_bad_rows=skip)
    assert on == off
    assert not _prefetch_threads()


def test_parquet_analysis_identical_with_prefetch(tmp_path, monkeypatch, no_report):
    rng = np.random.default_rng(7)
    n = 900
    frame = pd.DataFrame(
        {
            "t": rng.choice(["a", "b", "", "é"], n),
            "y": rng.choice(["Y", "N"], n),
            "n": rng.integers(0, 5, n),
            "g": rng.choice(["u", "v", "w"], n),
            "p": rng.choice(["Y", "N"], n),
        }
    )
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, index=False, row_group_size=100)
    cfg = dict(CFG, dataset_type="application/x-parquet")
    off = _analyze(cfg, path, tmp_path / "off", False, monkeypatch, chunk_rows=128)
    on = _analyze(cfg, path, tmp_path / "on", True, monkeypatch, chunk_rows=128)
    assert not isinstance(on, str) and on == off


# ---- the type sample's quick rule -------------------------------------------------------------

SAMPLE_TEXT = [
    "",
    " ",
    "a",
    "F",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "x1",
    "1",
    "-2",
    "007",
    "3.50",
    "2.00",
    "-0.0",
    "1e5",
    " 4",
    "5 ",
    "+6",
    ".5",
    "5.",
    "0x1A",
    "1,5",
    "١٢",
    "é",
    "123456789012345",
    "1234567890123456",
    "12345678.1234567",
    "12345678.12345678",
    "9" * 20,
    "-",
    ".",
    "True",
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cols=st.lists(
        st.lists(st.sampled_from(SAMPLE_TEXT) | st.integers(-99, 99).map(str), min_size=1, max_size=60),
        min_size=1,
        max_size=4,
    ),
    filler=st.sampled_from(["1", "2.5", "w", ""]),
    fill=st.integers(0, 150),
)
def test_sample_types_quick_rule_agrees(tmp_path_factory, monkeypatch, cols, filler, fill):
    """The quick rule (:func:`clarion.dataset._sample_kind`) and the general one type the sampled
    columns alike (a filler makes the 1%-of-bad-values allowance count)."""
    n = max(len(c) for c in cols) + fill
    frame = pd.DataFrame({f"c{j}": (c + [filler] * n)[:n] for j, c in enumerate(cols)})
    tmp = tmp_path_factory.mktemp("s")
    frame.to_csv(tmp / "d.csv", index=False)
    frame.to_parquet(tmp / "d.parquet", index=False)  # (pandas' string dtype when read back)
    for name, kind in (("d.csv", "text/csv"), ("d.parquet", "application/x-parquet")):
        got = {}
        for quick in (True, False):
            monkeypatch.setattr(dataset, "_FAST_SAMPLE", quick)
            try:
                got[quick] = read_dataset(tmp / name, kind)._infer_types(kind)
            except DataError as exc:
                got[quick] = str(exc)
        assert got[True] == got[False]


# ---- the compiled line finding ----------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([b"a", b",", b"\n", b"\r", b"\r\n", b" ", b'"', b"\xc3\xa9", b"\x8a"]), max_size=300
    ).map(b"".join),
    need=st.integers(0, 12),
    at_eof=st.booleans(),
)
def test_csv_lines_matches_reference(data, need, at_eof):
    arr = np.frombuffer(data, dtype=np.uint8)
    kept, count, cut, lone = _core.csv_lines_cpu(arr, need, at_eof)
    ref = _reference.csv_lines(arr, need, at_eof)
    assert kept.dtype == np.int64
    np.testing.assert_array_equal(kept, ref[0])
    assert (count, cut, lone) == ref[1:]


def test_csv_lines_edges():
    empty = np.empty(0, np.uint8)
    for at_eof in (True, False):
        kept, count, cut, lone = _core.csv_lines_cpu(empty, 3, at_eof)
        assert (len(kept), count, cut, lone) == (0, 0, 0, False)
    one = np.frombuffer(b"x", dtype=np.uint8)
    assert _core.csv_lines_cpu(one, 1, False)[1:] == (0, 0, False)  # a partial line waits for more
    k, count, cut, lone = _core.csv_lines_cpu(one, 1, True)
    assert (k.tolist(), count, cut, lone) == ([0], 1, 1, False)
    with pytest.raises(ValueError, match="need"):
        _core.csv_lines_cpu(one, -1, True)
    with pytest.raises(ValueError, match="data"):
        _core.csv_lines_cpu(np.zeros(2, np.int32), 1, True)


# ---- the performance counts on one thread -----------------------------------------------------


@pytest.mark.parametrize("probability", [None, "s"])
def test_performance_counts_same_on_one_thread(monkeypatch, probability):
    """``PerformanceAccumulator.update`` counts batches of up to ``_ONE_THREAD_ROWS`` rows on the
    calling thread: the same statistics as on the kernel's threads (weights and scores included)."""
    from clarion.bias import PerformanceAccumulator, _engine
    from clarion.bias import performance as perf

    rng = np.random.default_rng(11)
    n = 30_000
    frame = pd.DataFrame(
        {
            "y": rng.integers(0, 2, n),
            "f": rng.choice(["a", "b", "c"], n),
            "p": rng.integers(0, 2, n),
            "s": rng.random(n),
            "w": rng.random(n) * 3,
        }
    )
    seen = []
    real = _engine.State.count

    def spy(self, enc, **kw):
        seen.append(kw.get("n_threads"))
        return real(self, enc, **kw)

    monkeypatch.setattr(_engine.State, "count", spy)
    out = {}
    for limit in (0, 1 << 18):
        monkeypatch.setattr(perf, "_ONE_THREAD_ROWS", limit)
        acc = PerformanceAccumulator(
            label="y", facet="f", label_values=[1], predicted_label="p", probability=probability, weights="w"
        )
        for s in range(0, n, 7_000):
            acc.update(frame.iloc[s : s + 7_000])
        out[limit] = json.dumps(acc.result().to_dict(), sort_keys=True, default=str)
    assert out[0] == out[1 << 18]
    assert seen == [None] * 5 + [1] * 5


def test_reader_without_the_compiled_extension(tmp_path, monkeypatch):
    """Without ``clarion._core`` the reader takes the numpy twins of its helpers: the same chunks."""
    from clarion import _backend

    rows = [
        [TEXTS[i % len(TEXTS)], "YN"[i % 2], i % 7 - 3, TEXTS[(3 * i) % len(TEXTS)], "NY"[i % 3 > 0]] for i in range(50)
    ]
    text = _csv(rows).replace("\n", "\r\n", 3)  # a few CRLF line ends, then LF
    path = tmp_path / "d.csv"
    path.write_text(text + "\n\n")
    kw = {"chunk_rows": 7, "codes": ("t", "y", "g", "p")}
    compiled, end_c, _ = _read(path, True, **kw)
    monkeypatch.setattr(_backend, "_core", None)
    numpy_twins, end_n, _ = _read(path, True, **kw)
    assert end_c == end_n is None and len(compiled) == len(numpy_twins) == 8
    for (a, _, _), (b, _, _) in zip(compiled, numpy_twins):
        np.testing.assert_array_equal(a.lines, b.lines)
        pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("prefetch", [True, False])
def test_vocabulary_cap_with_blocks_read_ahead(tmp_path, monkeypatch, fmt, prefetch):
    """A column whose vocabulary passes ``MAX_CODES`` goes back to its values from that chunk on,
    also in a block the thread read (for coding) before the vocabulary passed it."""
    monkeypatch.setattr(dataset, "MAX_CODES", 3)
    t = ["a", "b", "a", "c", "d", "a", "e", "b", "f", "a", None, "g"]
    frame = pd.DataFrame({"t": t, "y": ["Y", "N"] * 6, "n": range(12)})
    path, kind = _write(frame, tmp_path, fmt, 2)
    plain = list(read_dataset(path, kind, chunk_rows=2, prefetch=prefetch))
    coded = list(read_dataset(path, kind, chunk_rows=2, codes=("t",), prefetch=prefetch))
    assert [list(c.coded) for c in coded] == [["t"], ["t"], [], [], [], []]
    for a, b in zip(coded, plain):
        pd.testing.assert_frame_equal(a.plain(), b.frame, check_exact=True)
        assert not isinstance(a.frame["t"].dtype, pd.CategoricalDtype) or a.coded
