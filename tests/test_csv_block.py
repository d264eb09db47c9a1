"""The compiled CSV block parser (``csv_block_cpu``, issue 21 part 3) and the reader's use of it.

The kernel is compared with its numpy/Python twin ``clarion._reference.csv_block`` on generated
blocks (numbers, words, empty fields, quotes, blanks, non-ASCII and invalid UTF-8, ``\\r\\n``,
blank lines, wrong field counts) for every thread count and ways of cutting the block into parts:
the same columns, codes, first rows and values, or the same decline with the same reason. Its
floats are checked against pyarrow's parser bit for bit, and every decline reason is hit. The
reader's chunks, skips and errors with the compiled path on and off (``_COMPILED_CSV``) are the
same on generated CSV files.
"""

from __future__ import annotations

import os
import struct
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import _backend, _core, _reference, dataset
from clarion.dataset import DataError, read_dataset

SKIP, INT, FLOAT, TEXT = 0, 1, 2, 3

# ---- the kernel against its twin ---------------------------------------------------------------

# fields that are odd for some kind: each declines somewhere, or is an edge of a grammar
ODD = [
    b"",
    b'"x"',
    b'a"b',
    b" 1",
    b"1 ",
    b"\t1",
    b"0x1f",
    b"+1",
    b"nan",
    b"NaN",
    b"inf",
    b"-inf",
    b"1e400",
    b"1e-400",
    b"4.9e-324",
    b"2.2250738585072014e-308",
    b"2.225073858507201e-308",
    b"9223372036854775808",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"999999999999999999",
    b"1234567890123456789",
    b"0000000000000000001",
    b"1.",
    b".5",
    b"-",
    b"-.5",
    b"1e5",
    b"1E+05",
    b"1e-5",
    b"1e12345",
    b"1.5e",
    b"0e999",
    b"-0",
    b"-0.0",
    b"0.000e-999",
    b"1\r2",
    b"a\rb",
    b"\xff",
    b"\xc3",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\xf4\x90\x80\x80",
    b"\xf0\x9f\x99\x82",
    b"caf\xc3\xa9",
    b"a b",
    b"a\x00",
    b"x" * 20,
]

WORDS = st.text(alphabet=st.characters(blacklist_characters=',"\r\n', blacklist_categories=("Cs",)), max_size=6).map(
    lambda s: s.encode("utf-8")
)
INTS = st.one_of(st.integers(-50, 50), st.integers(-(10**18) + 1, 10**18 - 1), st.integers(-(10**6), 10**6)).map(
    lambda v: str(v).encode()
)


def _float_text(v: float, how: int) -> bytes:
    if how == 0:
        return repr(v).encode()
    if how == 1:
        return f"{v:.3f}".encode()
    if how == 2:
        return f"{v:.12e}".encode()
    return f"{v:.17g}".encode()


FLOATS = st.one_of(
    st.builds(
        _float_text, st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6), st.integers(0, 3)
    ),
    st.builds(
        _float_text,
        st.floats(allow_nan=False, allow_infinity=False, min_value=-(2.0**63), max_value=2.0**63),
        st.integers(0, 3),
    ),
    st.builds(lambda a, b: f"{a}.{b:03d}".encode(), st.integers(-999, 999), st.integers(0, 999)),
)
ANY = st.one_of(st.sampled_from(ODD), WORDS, INTS, FLOATS)
VALID = {SKIP: WORDS, INT: INTS, FLOAT: FLOATS, TEXT: st.one_of(WORDS, st.sampled_from([b"F", b"M", b"", b"\xc3\xa9"]))}


@st.composite
def blocks(draw, max_rows=40):
    """(block bytes, kinds): rows of fields valid for their kinds, some odd ones when noisy, blank
    lines, \\n or \\r\\n line ends, a last line with or without its line break."""
    kinds = draw(st.lists(st.sampled_from([SKIP, INT, FLOAT, TEXT]), min_size=1, max_size=5))
    noisy = draw(st.booleans())
    n = draw(st.integers(0, max_rows))
    lines = []
    for _ in range(n):
        if draw(st.integers(0, 15)) == 0:
            lines.append(b"")
            continue
        row = [draw(ANY) if noisy and draw(st.integers(0, 30)) == 0 else draw(VALID[k]) for k in kinds]
        if noisy and draw(st.integers(0, 40)) == 0:
            row = row[:-1] if draw(st.booleans()) else [*row, b"1"]
        lines.append(b",".join(row))
    ends = [draw(st.sampled_from([b"\n", b"\n", b"\r\n"])) for _ in lines]
    data = b"".join(line + end for line, end in zip(lines, ends))
    if lines and draw(st.booleans()):
        data = data[: -len(ends[-1])]  # the last line without its break
    return data, np.asarray(kinds, dtype=np.int8)


def _same(got, ref):
    assert got[:3] == ref[:3]
    if ref[3] is None:
        assert got[3] is None
        return
    assert len(got[3]) == len(ref[3])
    for g, r in zip(got[3], ref[3]):
        if r is None:
            assert g is None
        elif isinstance(r, tuple):
            assert g[0].dtype == np.int32 and g[1].dtype == np.int64
            np.testing.assert_array_equal(g[0], r[0])
            np.testing.assert_array_equal(g[1], r[1])
            assert g[2] == r[2] and all(type(v) is str for v in g[2])
        else:
            assert g.dtype == r.dtype
            np.testing.assert_array_equal(g.view(np.int64), r.view(np.int64))  # (floats bit for bit)


def _kernel(data: bytes, kinds, **kw):
    return _core.csv_block_cpu(np.frombuffer(data, dtype=np.uint8), kinds, **kw)


@settings(max_examples=250, deadline=None)
@given(block=blocks())
def test_kernel_equals_twin(block):
    data, kinds = block
    ref = _reference.csv_block(np.frombuffer(data, dtype=np.uint8), kinds)
    for threads, part_lines in ((1, 8192), (2, 1), (3, 2), (8, 1), (5, 3), (0, 1)):
        _same(_kernel(data, kinds, n_threads=threads, part_lines=part_lines), ref)


@settings(max_examples=25, deadline=None)
@given(block=blocks(max_rows=12), reps=st.integers(1500, 2500), threads=st.integers(1, 8))
def test_default_parts_around_the_split(block, reps, threads):
    """Blocks of ~8,192 to ~30,000 lines cut at the default part size (1 to 3 parts)."""
    data, kinds = block
    if not data or not data.endswith(b"\n"):
        data += b"\n"
    big = data * reps
    ref = _reference.csv_block(np.frombuffer(big, dtype=np.uint8), kinds)
    _same(_kernel(big, kinds, n_threads=threads), ref)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(FLOATS, min_size=1, max_size=50))
def test_floats_as_pyarrow_parses_them(values):
    """Every float the kernel takes is the double pyarrow's CSV parser reads, bit for bit."""
    data = b"\n".join(values) + b"\n"
    status, _, rows, cols = _kernel(data, np.array([FLOAT], dtype=np.int8))
    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=["v"]),
        convert_options=pacsv.ConvertOptions(column_types={"v": pa.float64()}),
    )
    arrow = table.column("v").to_numpy()
    if status == 0:
        assert rows == len(values)
        np.testing.assert_array_equal(cols[0].view(np.int64), arrow.view(np.int64))
    else:  # (declined: beyond the exact range only, these are all in the grammar)
        assert status == 5


def test_floats_correctly_rounded():
    """Halfway and near-halfway decimals, 15-digit fast forms and 17-digit round trips."""
    rng = np.random.default_rng(7)
    bits = rng.integers(0x3000000000000000, 0x43E0000000000000, 20_000, dtype=np.int64)
    vals = bits.view(np.float64)
    texts = [repr(float(v)).encode() for v in vals]
    texts += [f"{float(v):.15g}".encode() for v in vals[:5000]]
    texts += [b"9007199254740993", b"9007199254740993.0", b"0.1", b"0.30000000000000004", b"123456789012345.6"]
    texts += [b"2.5000000000000004", b"1.00000000000000011102230246251565404236316680908203125"]
    data = b"\n".join(texts) + b"\n"
    status, reason, rows, cols = _kernel(data, np.array([FLOAT], dtype=np.int8), n_threads=2, part_lines=1000)
    assert status == 0, reason
    want = np.array([float(t) for t in texts])
    np.testing.assert_array_equal(cols[0].view(np.int64), want.view(np.int64))
    arrow = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=["v"]),
        convert_options=pacsv.ConvertOptions(column_types={"v": pa.float64()}),
    )
    np.testing.assert_array_equal(cols[0].view(np.int64), arrow.column("v").to_numpy().view(np.int64))


DECLINES = [
    (b'1,2\n3,"4"\n', [INT, INT], 1, "line 2, field 2: a quote character"),
    (b"1,2\n3,4\r5\n", [INT, INT], 2, "line 2, field 2: a carriage return not followed by a line feed"),
    (b"1,2\n3,4\r", [INT, INT], 2, "line 2, field 2: a carriage return not followed by a line feed"),
    (b"1,2\n\n3,4,5\n", [INT, INT], 3, "line 3: more than 2 fields"),
    (b"1,2\r\n3\r\n", [INT, SKIP], 3, "line 2: 1 fields, expected 2"),
    (b"1,x\n", [INT, INT], 4, "line 1, field 2: not a plain integer"),
    (b"1,0x10\n", [INT, FLOAT], 4, "line 1, field 2: not a plain decimal number"),
    (b"1, 2.5\n", [INT, FLOAT], 4, "line 1, field 2: not a plain decimal number"),
    (b"1234567890123456789,1\n", [INT, INT], 5, "line 1, field 1: an integer of more than 18 digits"),
    (
        b"1,9.3e18\n",
        [INT, FLOAT],
        5,
        "line 1, field 2: a number beyond the exact range (not finite, |v| >= 2**63, or below the normal range)",
    ),
    (
        b"1,1e-320\n",
        [INT, FLOAT],
        5,
        "line 1, field 2: a number beyond the exact range (not finite, |v| >= 2**63, or below the normal range)",
    ),
    (b"1,\n", [INT, INT], 6, "line 1, field 2: an empty numeric field"),
    (b"a,\xe9t\xe9\n", [TEXT, TEXT], 7, "line 1, field 2: not valid UTF-8"),
    (b"a,\xed\xa0\x80\n", [TEXT, SKIP], 7, "line 1, field 2: not valid UTF-8"),
]


@pytest.mark.parametrize(("data", "kinds", "status", "reason"), DECLINES)
def test_every_decline(data, kinds, status, reason):
    k = np.asarray(kinds, dtype=np.int8)
    ref = _reference.csv_block(np.frombuffer(data, dtype=np.uint8), k)
    assert ref[:3] == (status, reason, 0) and ref[3] is None
    for threads, part_lines in ((1, 8192), (4, 1)):
        _same(_kernel(data, k, n_threads=threads, part_lines=part_lines), ref)


def test_first_decline_in_block_order():
    """Two problems in two parts: the first line's is reported whatever the parts."""
    data = b"1,2\n" * 50 + b"1,x\n" + b"1,2\n" * 50 + b'"q",2\n'
    k = np.array([INT, INT], dtype=np.int8)
    for threads in (1, 2, 8):
        assert _kernel(data, k, n_threads=threads, part_lines=3)[:2] == (4, "line 51, field 2: not a plain integer")


def test_codes_first_seen_across_parts():
    data = b"".join(f"{v}\n".encode() for v in ["b", "a", "b", "c", "a", "d", "e", "c", "f", "a"] * 3)
    k = np.array([TEXT], dtype=np.int8)
    for threads in (1, 2, 3, 8):
        status, _, rows, (col,) = _kernel(data, k, n_threads=threads, part_lines=1)
        assert status == 0 and rows == 30
        assert col[2] == ["b", "a", "c", "d", "e", "f"]
        np.testing.assert_array_equal(col[1], [0, 1, 3, 5, 6, 8])
        np.testing.assert_array_equal(col[0][:10], [0, 1, 0, 2, 1, 3, 4, 2, 5, 1])


def test_text_codes_equal_text_codes_kernel():
    """A text column's codes and first rows are text_codes_cpu's on the same values."""
    rng = np.random.default_rng(3)
    words = ["", "a", "abcdefgh", "abcdefghi", "abcdefghj", "é", "ÿ" * 9, "a\x00", "New York"]
    vals = [words[i] for i in rng.integers(0, len(words), 3000)]
    data = ("\n".join(f"{i},{v}" for i, v in enumerate(vals)) + "\n").encode()
    status, _, _, (_, (codes, first, values)) = _kernel(
        data, np.array([SKIP, TEXT], dtype=np.int8), n_threads=4, part_lines=100
    )
    enc = [v.encode() for v in vals]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in enc])]).astype(np.int64)
    ref_codes, ref_first = _core.text_codes_cpu(offsets, np.frombuffer(b"".join(enc), dtype=np.uint8))
    assert status == 0
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)
    assert values == [vals[i] for i in ref_first]


def test_binding_checks_arguments():
    data = np.frombuffer(b"1\n", dtype=np.uint8)
    with pytest.raises(ValueError, match="kinds"):
        _core.csv_block_cpu(data, np.array([1], dtype=np.int64))
    with pytest.raises(ValueError, match=r"kinds\[0\] must be"):
        _core.csv_block_cpu(data, np.array([4], dtype=np.int8))
    with pytest.raises(ValueError, match="at least one field"):
        _core.csv_block_cpu(data, np.array([], dtype=np.int8))
    with pytest.raises(ValueError, match="n_threads"):
        _core.csv_block_cpu(data, np.array([1], dtype=np.int8), n_threads=-1)
    with pytest.raises(ValueError, match="part_lines"):
        _core.csv_block_cpu(data, np.array([1], dtype=np.int8), part_lines=0)
    with pytest.raises(ValueError, match="data"):
        _core.csv_block_cpu(np.zeros(2, dtype=np.int32), np.array([1], dtype=np.int8))


# ---- the reader with the compiled path on and off ----------------------------------------------


def _read(path, compiled, monkeypatch, **kw):
    """(chunks, skipped, examples, error) of a whole read with the compiled path on or off."""
    with monkeypatch.context() as m:
        m.setattr(dataset, "_COMPILED_CSV", compiled)
        reader = read_dataset(path, "text/csv", **kw)
        chunks, error = [], None
        try:
            for c in reader:
                chunks.append(c)
        except DataError as exc:
            error = str(exc)
        return chunks, reader.skipped, list(reader.skipped_examples), error


def _assert_chunks_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.start == y.start and x.coded == y.coded
        np.testing.assert_array_equal(x.lines, y.lines)
        assert x.lines.dtype == y.lines.dtype
        assert list(x.frame.columns) == list(y.frame.columns)
        for c in x.frame.columns:
            u, v = x.frame[c], y.frame[c]
            assert u.dtype == v.dtype, c
            if isinstance(u.dtype, pd.CategoricalDtype):
                assert list(u.cat.categories) == list(v.cat.categories)
                assert u.cat.categories.dtype == v.cat.categories.dtype
                assert u.cat.codes.dtype == v.cat.codes.dtype
                np.testing.assert_array_equal(u.cat.codes.to_numpy(), v.cat.codes.to_numpy())
            elif u.dtype == np.float64:
                np.testing.assert_array_equal(u.to_numpy().view(np.int64), v.to_numpy().view(np.int64))
            else:
                pd.testing.assert_series_equal(u, v, check_exact=True)


def _compare(path, monkeypatch, **kw):
    on = _read(path, True, monkeypatch, **kw)
    off = _read(path, False, monkeypatch, **kw)
    _assert_chunks_equal(on[0], off[0])
    assert on[1:] == off[1:]
    return on


CELLS = {
    "a": st.one_of(INTS, st.sampled_from([b"", b"x", b"1.5", b" 7", b"12345678901234567890", b"007", b"-0", b"+3"])),
    "f": st.one_of(
        FLOATS,
        st.sampled_from([b"", b"nan", b"1e400", b"abc", b"0x1p3", b"1e-400", b"0001.500", b"1E-2", b"-0.0", b"5"]),
    ),
    "s": st.one_of(st.sampled_from([b"F", b"M", b"", b"x y"]), WORDS, st.sampled_from([b'"q,1"', b"\xff"])),
    "r": st.sampled_from([b"A", b"B", b"C", b"\xc3\xa9", b"7"]),
    "t": WORDS,
}


@st.composite
def csv_files(draw):
    cols = draw(st.sampled_from([["a", "f", "s", "r"], ["s", "a"], ["f", "r", "a", "t"], ["a", "f"], ["r"]]))
    n = draw(st.integers(1, 60))
    noisy = draw(st.integers(0, 2))  # 0: clean, 1: a few odd values, 2: more
    clean = {"a": INTS, "f": FLOATS, "s": st.sampled_from([b"F", b"M", b"x y", b"\xc3\xa9"]), "r": CELLS["r"]}
    clean["t"] = WORDS
    lines = [",".join(cols).encode()]
    for _ in range(n):
        if draw(st.integers(0, 20)) == 0:
            lines.append(b"")
            continue
        row = [draw(CELLS[c]) if noisy and draw(st.integers(0, 40 // noisy)) == 0 else draw(clean[c]) for c in cols]
        if noisy and draw(st.integers(0, 60)) == 0:
            row = row[:-1] if len(row) > 1 and draw(st.booleans()) else [*row, b"9"]
        lines.append(b",".join(row))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = eol.join(lines) + (eol if draw(st.booleans()) else b"")
    return data, [c for c in cols if c in ("s", "r", "t") and draw(st.booleans())]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    f=csv_files(),
    chunk_rows=st.integers(1, 25),
    skip=st.booleans(),
    prefetch=st.booleans(),
    use=st.booleans(),
)
def test_reader_compiled_equals_pyarrow_path(f, chunk_rows, skip, prefetch, use):
    data, codes = f
    monkeypatch = pytest.MonkeyPatch()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.csv")
        with open(path, "wb") as fh:
            fh.write(data)
        header = data.split(b"\n", 1)[0].rstrip(b"\r").decode().split(",")
        usecols = tuple(header[::2]) if use else None
        try:
            _compare(
                path,
                monkeypatch,
                chunk_rows=chunk_rows,
                skip_bad_rows=skip,
                codes=codes,
                prefetch=prefetch,
                usecols=usecols,
            )
        finally:
            monkeypatch.undo()


def _clean_file(tmp_path, n=30_000, name="c.csv"):
    rng = np.random.default_rng(5)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50, 10, n).round(3),
            "sex": rng.choice(["F", "M"], n),
            "region": rng.choice(["A", "B", "Zürich", "New York"], n),
            "y": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path, df


def _spy(monkeypatch):
    """The compiled path's results, recorded (None: the block went the pyarrow way)."""
    calls = []
    real = dataset.Reader._csv_compiled

    def spy(self, *a):
        out = real(self, *a)
        if dataset._COMPILED_CSV and self._numeric is not None:  # (not while the types are sampled)
            calls.append(out is not None)
        return out

    monkeypatch.setattr(dataset.Reader, "_csv_compiled", spy)
    return calls


def test_reader_takes_the_compiled_path(tmp_path, monkeypatch):
    """Blocks of numbers and coded text go the compiled way and equal the pyarrow path's chunks
    (codes across chunks, a chunk boundary inside the split of the kernel's parts)."""
    path, df = _clean_file(tmp_path)
    calls = _spy(monkeypatch)
    chunks, skipped, _, error = _compare(path, monkeypatch, chunk_rows=12_345, codes=("sex", "region", "y"))
    assert error is None and skipped == 0
    assert calls and all(calls)
    got = pd.concat([c.plain() for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(
        got.astype({"sex": object, "region": object}), df.astype({"sex": object, "region": object})
    )


def test_reader_uncoded_text_and_uint_go_pyarrow_way(tmp_path, monkeypatch):
    """A text column that is not coded, or a "uint" column (integers beyond int64), sends the block
    the pyarrow way (unless ``usecols`` leaves it out); the type sample's blocks are read as text
    by the kernel (the same sample, see ``_compare``)."""
    path, _ = _clean_file(tmp_path, n=2000)
    calls = _spy(monkeypatch)
    _compare(path, monkeypatch, chunk_rows=500, codes=("sex",))
    assert calls and not any(calls)  # (region is text and not coded)
    calls.clear()
    _compare(path, monkeypatch, chunk_rows=500, codes=("sex",), usecols=("age", "sex", "y"))
    assert calls and all(calls)  # (region not read)
    big = tmp_path / "u.csv"
    big.write_text("u,s\n" + "".join(f"{2**63 + i},{'ab'[i % 2]}\n" for i in range(300)))
    calls.clear()
    chunks, _, _, error = _compare(big, monkeypatch, chunk_rows=100, codes=("s",))
    assert error is None and calls and not any(calls)
    assert chunks[0].frame["u"].dtype == np.uint64
    calls.clear()
    _compare(big, monkeypatch, chunk_rows=100, codes=("s",), usecols=("s",))
    assert calls and all(calls)  # (u not read)


def test_reader_errors_and_skips_located(tmp_path, monkeypatch):
    path, _ = _clean_file(tmp_path, n=3000)
    text = path.read_bytes().split(b"\n")
    text[1500] = b"40,x,F,A,1"  # not a number (line 1501)
    text[2200] = b"40,1.5,F,A"  # a field missing (line 2201)
    path.write_bytes(b"\n".join(text))
    calls = _spy(monkeypatch)
    chunks, skipped, examples, error = _compare(path, monkeypatch, chunk_rows=1000, codes=("sex", "region"))
    assert error is not None and "line 1501" in error and "'income'" in error
    assert any(calls)
    chunks, skipped, examples, error = _compare(
        path, monkeypatch, chunk_rows=1000, codes=("sex", "region"), skip_bad_rows=True
    )
    assert error is None and skipped == 2
    assert "line 1501" in examples[0] and "line 2201" in examples[1]
    assert sum(len(c.frame) for c in chunks) == 2998


def test_reader_without_the_compiled_module(tmp_path, monkeypatch):
    """The numpy twin serves the reader when the compiled module is absent: the same chunks."""
    path, _ = _clean_file(tmp_path, n=1500)
    with_core = _read(path, True, monkeypatch, chunk_rows=600, codes=("sex", "region"))
    monkeypatch.setattr(_backend, "has_core", lambda: False)
    calls = _spy(monkeypatch)
    without = _read(path, True, monkeypatch, chunk_rows=600, codes=("sex", "region"))
    assert calls and all(calls)
    _assert_chunks_equal(with_core[0], without[0])
    assert with_core[1:] == without[1:]


def test_float_bits_struct():
    """(-0.0 keeps its sign, as pyarrow and float() read it.)"""
    status, _, _, (col,) = _kernel(b"-0.0\n-0\n0e5\n", np.array([FLOAT], dtype=np.int8))
    assert status == 0 and [struct.pack("<d", v) for v in col] == [struct.pack("<d", -0.0)] * 2 + [
        struct.pack("<d", 0.0)
    ]


@pytest.mark.parametrize("prefetch", [True, False])
def test_reader_vocabulary_cap_with_compiled_blocks(tmp_path, monkeypatch, prefetch):
    """A coded column whose vocabulary passes ``MAX_CODES`` goes back to values, also for the
    blocks the compiled parser coded before (read ahead): the same chunks as the pyarrow path."""
    monkeypatch.setattr(dataset, "MAX_CODES", 4)
    rows = [f"{i},{['a', 'b', 'c', 'd', 'e', 'f'][min(i // 40, 5)]}\n" for i in range(300)]
    path = tmp_path / "v.csv"
    path.write_text("n,s\n" + "".join(rows))
    calls = _spy(monkeypatch)
    chunks, skipped, _, error = _compare(path, monkeypatch, chunk_rows=50, codes=("s",), prefetch=prefetch)
    assert error is None and any(calls)
    assert [bool(c.coded) for c in chunks] == [True, True, True, False, False, False]
    assert chunks[-1].frame["s"].dtype == object


@pytest.mark.parametrize("nf", [1, 2, 3, 6])
@pytest.mark.parametrize("tail", [b"", b"x"])
def test_densest_rows(nf, tail):
    """Rows of the fewest bytes (empty text fields; one byte when there is one field), with and
    without a last line lacking its break: every row kept, whatever the parts."""
    line = b"," * (nf - 1) + (b"z" if nf == 1 else b"") + b"\n"
    data = line * 997 + (tail + b"," * (nf - 1) if tail else b"")
    kinds = np.full(nf, TEXT, dtype=np.int8)
    ref = _reference.csv_block(np.frombuffer(data, dtype=np.uint8), kinds)
    assert ref[0] == 0 and ref[2] == 997 + (1 if tail else 0)
    for threads, part_lines in ((1, 8192), (3, 1), (8, 7)):
        _same(_kernel(data, kinds, n_threads=threads, part_lines=part_lines), ref)


def test_reader_kernel_threads_from_env(tmp_path, monkeypatch):
    """The reader runs the kernel on ``CLARION_NUM_THREADS`` threads (every core when unset); the
    chunks are the same either way, and a bad value is refused naming the variable."""
    path, _ = _clean_file(tmp_path, n=3000)
    asked = []
    real = dataset._io_kernel

    def kernel(name):
        fn = real(name)
        if name != "csv_block":
            return fn
        return lambda data, kinds, n_threads: asked.append(n_threads) or fn(data, kinds, n_threads)

    monkeypatch.setattr(dataset, "_io_kernel", kernel)
    monkeypatch.setenv("CLARION_NUM_THREADS", "1")
    one = _read(path, True, monkeypatch, chunk_rows=1000, codes=("sex", "region"))
    monkeypatch.delenv("CLARION_NUM_THREADS")
    every = _read(path, True, monkeypatch, chunk_rows=1000, codes=("sex", "region"))
    assert asked == [1] * 4 + [0] * 4  # (the type sample's block, then the three chunks)
    _assert_chunks_equal(one[0], every[0])
    monkeypatch.setenv("CLARION_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="CLARION_NUM_THREADS"):
        list(read_dataset(path, "text/csv", codes=("sex", "region")))


@pytest.mark.parametrize("wrap", ["plain", "bom", "gzip"])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_reader_compiled_bom_gzip_crlf(tmp_path, monkeypatch, wrap, eol):
    """A byte-order mark, gzip and \\r\\n line ends: the compiled blocks equal the pyarrow path's."""
    import gzip

    path, _ = _clean_file(tmp_path, n=2500)
    data = path.read_bytes().replace(b"\n", eol)
    if wrap == "bom":
        data = b"\xef\xbb\xbf" + data
    if wrap == "gzip":
        data = gzip.compress(data)
    path.write_bytes(data)
    calls = _spy(monkeypatch)
    chunks, skipped, _, error = _compare(path, monkeypatch, chunk_rows=777, codes=("sex", "region"))
    assert error is None and skipped == 0 and sum(len(c.frame) for c in chunks) == 2500
    assert calls and all(calls)
    assert list(chunks[0].frame.columns) == ["age", "income", "sex", "region", "y"]


def test_utf8_check_is_pythons():
    """Every two-byte value, and three- / four-byte ones around the overlong, surrogate and
    U+10FFFF edges: the kernel takes a text (or unused) value exactly when Python decodes it."""
    edges = [0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5]
    seconds = [0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0]
    values = [bytes([a, b]) for a in range(256) for b in range(256)]
    values += [bytes([a, b, c]) for a in edges for b in seconds for c in (0x80, 0xBF, 0x41)]
    values += [bytes([a, b, 0x80, c]) for a in edges for b in seconds for c in (0x80, 0xC0)]
    for v in values:
        if any(c in b',\n\r"' for c in v):
            continue
        try:
            v.decode("utf-8")
            want = 0
        except UnicodeDecodeError:
            want = 7
        data = np.frombuffer(v + b"\n", dtype=np.uint8)
        for kind in (TEXT, SKIP):
            assert _core.csv_block_cpu(data, np.array([kind], dtype=np.int8), 1)[0] == want, v
