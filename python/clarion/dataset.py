"""Reading analysis input files in chunks: CSV, JSON Lines, tabular JSON and Parquet.

Every reader yields :class:`Chunk` objects (a pandas DataFrame plus the global index of its first
row and the source line numbers), so that bias counts accumulate chunk by chunk and memory stays
bounded. Malformed records raise :class:`DataError` naming the file, the line (or record) number
and the column; with ``skip_bad_rows=True`` they are skipped and counted instead (the count is in
:attr:`Reader.skipped`).

Column types are fixed from the first 1,000 rows, whatever the chunk size: a column whose sampled
values parse as numbers (all but 1%, or all but one) is numeric, and a non-numeric value in it is a
malformed record (not a silent NaN). Integers are read exactly: an integer column is int64; one
whose sampled integers go beyond int64 is uint64 (all of them in 0 .. 2**64 - 1), or, when no
64-bit type holds them, exact decimal text (such values are identifiers). A chunk with a missing
value is float64 only when every value is exact as a float (|v| <= 2**53), else exact Python
numbers (object). An integer beyond int64 in a column typed int64 by the sample is a malformed
record. Two distinct integers never become one value.

JSON records that are objects (JSON Lines records, or what ``features`` selects) are matched by
key name: the first record's keys fix the columns; a record with a missing or an extra key is a
malformed record. The first record (or ``headers``) fixes how many values a row has.

Text columns named in ``codes`` (CSV, Parquet) come as dictionary codes: CSV text is coded by a
compiled first-seen hash over pyarrow's string buffers (``text_codes_cpu``; Parquet: its dictionary
pages), and each chunk's small dictionary is mapped onto one running vocabulary per column, so that
every chunk's column is a ``pandas.Categorical`` of the same categories object while no new value
appears (counting them needs no hashing of strings). :meth:`Chunk.plain` gives the values back;
missing values, errors and skips are as without codes.

CSV and Parquet files are read two chunks ahead on a thread (``prefetch``, :data:`PREFETCH_BLOCKS`):
the next blocks are read and parsed (pyarrow releases the GIL) while the caller builds, types and
uses this one; skips are counted and errors raised when the caller takes the block that holds
them, as without the thread.
A Parquet batch is prepared on that thread (numbers as writable views of the buffers Arrow decoded
them into, coded text coded into its vocabulary where every value is known) and made a frame once
on the caller's: where no row can be dropped (every number of its final type, no required column
that could hold a missing value) it is typed and coded before its frame is built (CSV blocks too).
The Parquet type sample reads only the text columns of the first rows: a number or boolean column
without a null in its row groups' statistics is typed by its Arrow type.

A CSV block whose columns are numbers and coded text is parsed by the compiled ``csv_block_cpu``
(numbers and codes straight from the bytes, on the reader's thread and every core) when it is
certain to give what pyarrow's parse gives; any other block (a quote, a number outside a strict
grammar, another field count, ...) goes the pyarrow way, unchanged. ``usecols`` limits the chunks
to some columns: the others are neither converted nor checked (a CSV line's field count still is).

The text formats (CSV, JSON Lines, JSON) are UTF-8, with or without a byte-order mark, plain or
gzip-compressed (read transparently). A file in another format than ``dataset_type`` (Parquet read
as CSV, a zip archive, ...) is refused with an error naming the file, ``dataset_type`` and what
the file is.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import re
import threading
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Chunk", "DataError", "Reader", "decode_codes", "decode_column", "read_dataset"]

DEFAULT_CHUNK_ROWS = 200_000
TYPE_SAMPLE_ROWS = 1000
# JSON Lines / JSON records: a header check looks this many records ahead (CSV: lines).
HEADER_PEEK = 20

# Error messages (tests import them).
MSG_WRONG_FORMAT = "{path}: the file is {what} but dataset_type is {dataset_type!r}{hint}"
MSG_NOT_UTF8 = (
    "not UTF-8 text (byte 0x{byte:02x} at position {pos}); clarion reads UTF-8 text files "
    "(convert it, e.g. iconv -f latin1 -t utf-8)"
)
MSG_HEADERS_ORDER = (
    "{path}: line {line} lists the names of `headers` in another order ({found}); `headers` "
    "must list the columns in the file's order ({expected}), or be left out to use the file's "
    "header line"
)
MSG_HEADERS_DIFFER = (
    "{path}: line {line} looks like a header line ({found}) but differs from `headers` "
    "({expected}): only in the file {only_file}, only in `headers` {only_headers}; make "
    "`headers` equal the file's header line, or leave `headers` out"
)
MSG_HEADERS_COUNT = (
    "{path}: `headers` lists {n} names but the file has {m} columns (line {line} has {m} "
    "fields); list one name per column"
)
MSG_HEADERS_VALUES = (
    "{path}: `headers` lists {n} names but the first record ({unit} {line}) has {m} values "
    "({what}); list one name per value"
)
MSG_HEADERS_KEYS = (
    "{path}: `headers` names {names} but the records' keys are {keys}; with records that are "
    "objects, `headers` must list their keys (in any order) and then the names of the label and "
    "predicted label, or be left out"
)
MSG_RECORD_KEYS = "keys differ from the first record's: {diff}"
MSG_INT_RANGE = (
    f"{{value}} is beyond the 64-bit integer range of this column (typed int64 from the first {TYPE_SAMPLE_ROWS} rows)"
)

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_BOM = b"\xef\xbb\xbf"
# What a file's first bytes say it is (a text type may be gzip-compressed; nothing else).
_MAGIC = (
    (b"PAR1", "a Parquet file", "application/x-parquet"),
    (b"\x1f\x8b", "gzip-compressed", None),
    (b"PK\x03\x04", "a zip archive", None),
    (b"BZh", "bzip2-compressed", None),
    (b"\xfd7zXZ\x00", "xz-compressed", None),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", None),
    (b"\xff\xfe", "UTF-16 text (a byte-order mark FF FE)", None),
    (b"\xfe\xff", "UTF-16 text (a byte-order mark FE FF)", None),
)


class DataError(ValueError):
    """A malformed input record; the message names the file, the line/record and the column."""


@dataclass
class Chunk:
    """A block of input rows. ``start`` is the global index of its first (kept) row.

    ``coded`` names the columns the reader gave as dictionary codes (see ``Reader.codes``): each is
    a ``pandas.Categorical`` whose categories list every value seen so far in the file, in
    first-seen order (one categories object shared by consecutive chunks while no new value
    appears), mapped to the dtype the column has without codes. :meth:`plain` is the frame as the
    reader gives it without codes."""

    frame: Any  # pandas.DataFrame
    start: int
    lines: np.ndarray  # 1-based source line (CSV, JSON Lines) or record number of every row
    coded: dict[str, Any] = field(default_factory=dict)
    _plain: Any = field(default=None, repr=False)

    def plain(self) -> Any:
        """The frame with its coded columns as values again (object strings for CSV, the Parquet
        column's own string dtype), equal to what the reader gives without ``codes``; the frame
        itself when nothing is coded. Built once per chunk."""
        if not self.coded:
            return self.frame
        if self._plain is None:
            self._plain = decode_codes(self.frame, self.coded)
        return self._plain


def decode_codes(frame: Any, coded: dict[str, Any]) -> Any:
    """``frame`` with each categorical column of ``coded`` (column name -> dtype) turned back into
    its values in that dtype (a missing value, code -1, as None before the dtype's conversion)."""
    import pandas as pd

    out = {c: decode_column(frame[c], coded.get(c)) for c in frame.columns}
    return pd.DataFrame(out, index=frame.index, copy=False)


def decode_column(col: Any, dtype: Any) -> Any:
    """One column of :func:`decode_codes`: the Series ``col``, when categorical and ``dtype`` is
    not None, as its values in ``dtype`` (same index and name); else ``col`` itself."""
    import pandas as pd

    if dtype is None or not isinstance(col.dtype, pd.CategoricalDtype):
        return col
    cats = col.dtype.categories
    vals = np.empty(len(cats) + 1, dtype=object)
    vals[:-1] = cats.to_numpy(dtype=object)
    vals[-1] = None  # code -1: missing
    return pd.Series(vals[col.array.codes], index=col.index, dtype=dtype, name=col.name)


#: The raw blocks the prefetch thread reads ahead of the caller (:meth:`Reader._prefetched`): 2
#: since session 19 (1 before), so that a block that takes the caller longer than the next read
#: does not leave the thread idle (a 1e6-row Parquet file: the reader alone ~1.5 ms and the job
#: ~1 ms faster); memory holds the caller's chunk and at most this many read ahead.
PREFETCH_BLOCKS = 2


@dataclass
class Reader:
    """Iterates an input file as chunks; see :func:`read_dataset`."""

    path: str
    dataset_type: str
    headers: list[str] | None = None
    features: str | None = None
    label: str | int | None = None
    predicted_label: str | int | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    skip_bad_rows: bool = False
    required: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    _numeric: dict[str, str] | None = None
    _types: dict[str, str] | None = None  # the sampled types, once known (see columns())
    _names: list[str] | None = None
    _vocabs: dict[str, Any] = field(default_factory=dict)  # coded column -> _Vocabulary
    _plain_dtypes: dict[str, Any] = field(default_factory=dict)  # coded column -> dtype without codes
    #: CSV and Parquet: read and parse the next chunk on a thread while the caller uses this one
    #: (see :meth:`_prefetched`); the chunks, skips and errors are the same either way.
    prefetch: bool = True
    #: The columns the chunks hold (in the file's order), or None for every column. The other
    #: columns are not converted and their values not checked (a CSV line's field count still is);
    #: :meth:`columns` still names every column. A name that is no column is a DataError.
    usecols: tuple[str, ...] | None = None
    _held: Any = field(default=None, repr=False)  # (thread id, skips) while a prefetch thread reads
    _pq_meta: Any = field(default=None, repr=False)  # Parquet: (file's size, mtime, inode; its FileMetaData)

    def __iter__(self) -> Iterator[Chunk]:
        self.skipped = 0
        self.skipped_examples = []
        self._numeric = None
        self._vocabs = {}
        self._plain_dtypes = {}
        kind = self.dataset_type
        it = self._raw(kind)
        if self._types is None:
            self._types = self._infer_types(kind)
        self._numeric = self._types
        self.skipped = 0
        self.skipped_examples = []
        if self.prefetch and kind in ("text/csv", "application/x-parquet"):
            it = self._prefetched(it)
        yield from self._chunks(it)

    def _chunks(self, it) -> Iterator[Chunk]:
        """The chunks of the raw frames ``it`` (CSV blocks: their frames built here, the coded
        text columns coded): typed, checked and coded. A Parquet batch or CSV block that
        :meth:`_block_chunk` can take is typed and coded on its arrays and made a frame once.
        ``it`` is closed (its file with it) when they end, on an error, or when the caller stops."""
        start = 0
        try:
            for frame, lines in it:
                if type(frame) is _PendingFrame and _CSV_BLOCK_FRAMES:
                    frame = frame.block(self._vocabs)
                if type(frame) is _ArrowBlock:  # a Parquet batch or CSV block: as it is where that is certain
                    got = self._block_chunk(frame)
                    if got is not None:
                        if len(got[0]):
                            yield Chunk(got[0], start, lines, got[1])
                            start += len(got[0])
                        continue
                    frame = frame.frame()
                frame, lines = self._typed(_built(frame, self._vocabs), lines)
                if len(frame) == 0:
                    continue
                coded = self._global_codes(frame) if self._plain_dtypes else {}
                yield Chunk(frame.reset_index(drop=True), start, lines, coded)
                start += len(frame)
        finally:
            it.close()

    def _prefetched(self, chunks: Iterator[Any]) -> Iterator[Any]:
        """The raw blocks ``chunks`` read ahead on a thread: blocks ``k + 1`` .. ``k + b`` (``b``:
        :data:`PREFETCH_BLOCKS`) are read and parsed (pyarrow releases the GIL) while the caller
        builds, types and uses block ``k``; at most these ``b + 1`` are held. The thread reads a
        block more each time the caller takes one. The skips met while reading a block are counted
        when the caller takes it, and an
        error is raised when the caller asks for the block it stopped, so ``skipped``,
        ``skipped_examples`` and every exception come as without the thread, in file order. The
        thread stops (and the file is closed) when the blocks end, on an error, or when the caller
        stops iterating."""
        import queue

        asks: queue.SimpleQueue = queue.SimpleQueue()  # True: read the next chunk; False: stop
        got: queue.SimpleQueue = queue.SimpleQueue()  # (chunk, exception or None, skips, done)
        held: list[str] = []

        def work() -> None:
            nonlocal held
            self._held = (threading.get_ident(), held)  # (what _bad defers to the caller's turn)
            try:
                while asks.get():
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        got.put((None, None, held, True))
                        return
                    except BaseException as exc:  # noqa: BLE001 - given to the caller in its turn
                        got.put((None, exc, held, True))
                        return
                    got.put((chunk, None, held, False))
                    held = []
                    self._held = (threading.get_ident(), held)
            finally:
                chunks.close()  # (closes the file; a no-op once the chunks ended)

        thread = threading.Thread(target=work, name="clarion-reader-prefetch", daemon=True)
        thread.start()
        for _ in range(max(1, PREFETCH_BLOCKS)):
            asks.put(True)
        try:
            while True:
                chunk, exc, skips, done = got.get()
                for text in skips:
                    self._skip(text)
                if exc is not None:
                    raise exc
                if done:
                    return
                asks.put(True)  # the next chunk, read while the caller uses this one
                yield chunk
                chunk = None
        finally:
            asks.put(False)
            thread.join()
            self._held = None

    def numeric_columns(self) -> list[str] | None:
        """The columns the type sample made numeric (their values are checked as numbers), once
        :meth:`columns` has fixed the types; None before."""
        return None if self._types is None else list(self._types)

    def columns(self) -> list[str]:
        """The column names, from the rows that fix the column types (the first
        ``TYPE_SAMPLE_ROWS`` rows; malformed records are passed over while looking, whatever
        ``skip_bad_rows``). The sampled types are kept for the iterations that follow (unless a
        record was passed over and ``skip_bad_rows`` is off: the iteration then meets it and
        reports it), so that the first rows are read and typed once."""
        if self._names is not None:
            return list(self._names)
        skip = self.skip_bad_rows
        self.skip_bad_rows = True
        self.skipped = 0
        try:
            types = self._infer_types(self.dataset_type)
            clean = self.skipped == 0
        finally:
            self.skip_bad_rows = skip
            self.skipped = 0
            self.skipped_examples = []
        if self._names is None:
            raise DataError(f"{self.path}: no data rows")
        if skip or clean:
            self._types = types
        return list(self._names)

    def _coded_columns(self, names: list[str]) -> list[str]:
        """The columns of ``codes`` that are read as dictionary codes: text columns (not typed
        numeric by the sample); none before the types are known."""
        if not self.codes or self._numeric is None:
            return []
        return [c for c in names if c in self.codes and c not in self._numeric]

    def _selected(self, names: list[str]) -> list[str]:
        """The columns of ``names`` the chunks hold: those of ``usecols`` in the file's order, or
        all of them (also while the types are sampled: :meth:`columns` names every column). A
        name of ``usecols`` that is no column, or a ``required`` column left out of it, is a
        DataError."""
        if self.usecols is None or self._numeric is None:
            return names
        _check_usecols(self.usecols)
        use = set(self.usecols)
        missing = [c for c in self.usecols if c not in names]
        if missing:
            import difflib

            close = difflib.get_close_matches(str(missing[0]), [str(n) for n in names], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"{self.path}: `usecols` names {missing} not among the columns {names}{hint}")
        left = [c for c in self.required if c not in use]
        if left:
            raise DataError(f"{self.path}: required columns {left} are not in `usecols` {list(self.usecols)}")
        return names if len(use) == len(names) else [c for c in names if c in use]

    def _global_codes(self, frame) -> dict[str, Any]:
        """Each coded column of ``frame`` (a categorical of the chunk's own values, or text where
        the chunk went the line-by-line way) as codes into the column's running vocabulary, in
        place; returns ``Chunk.coded``. Values new to the vocabulary are appended in the order
        they first occur among the kept rows (what ``pandas.factorize`` of the values gives), so
        the categories are the file's values in first-seen order. A column whose vocabulary would
        pass ``MAX_CODES`` values goes back to its values from that chunk on."""
        coded = {}
        for c, dtype in self._plain_dtypes.items():
            if c not in frame.columns:
                continue
            col = frame[c]
            new, is_coded = self._global_column(c, dtype, col.array, col)
            if new is not None:
                frame[c] = new  # (a Categorical as the column, on the frame's index; or values)
            if is_coded:
                coded[c] = dtype
        return coded

    def _global_column(self, c: str, dtype: Any, values: Any, col: Any = None) -> tuple[Any, bool]:
        """One column of :meth:`_global_codes`: ``values`` (a Categorical of the chunk's own
        values, or text; ``col`` the Series it is, if any) coded into the running vocabulary of
        ``c``. Returns (the column's new values, or None when they stay as they are; whether the
        column is coded)."""
        import pandas as pd

        voc = self._vocabs.get(c)
        cat = isinstance(values.dtype, pd.CategoricalDtype)
        if voc is None:  # gone to values (MAX_CODES): a block read as codes before, as values
            return (_decoded(values, dtype, col) if cat else None), False
        if values.dtype is voc.dtype:  # coded into the vocabulary as it is (_Vocabulary.known)
            return None, True
        given = None
        if cat:
            given = values
            local = given.codes
            uniq = values.dtype.categories.to_numpy(dtype=object)
            if len(uniq) <= 256:  # (values the vocabulary took since the reader's thread looked)
                got = voc.known([(uniq, local)])
                if got is not None:
                    return got, True
        else:  # text (the line-by-line path)
            src = col if col is not None else pd.Series(values, copy=False)
            local, uniq = pd.factorize(src.to_numpy(dtype=object), use_na_sentinel=True)
            uniq = np.asarray(uniq, dtype=object)
        got = voc.categorical(local, uniq, given)
        if got is None:  # too many values: the column's values from here on
            del self._vocabs[c]
            return (_decoded(values, dtype, col) if cat else None), False
        return (None if got is given else got), True

    def _block_chunk(self, block: _ArrowBlock) -> tuple[Any, dict[str, Any]] | None:
        """The chunk frame and ``Chunk.coded`` of a Parquet batch or CSV block, built once from its arrays,
        where :meth:`_typed` would take the frame as it is (every numeric column already of its
        final type, or of a narrower one that it widens: ``_WIDENED``; no missing value in a
        required column: :func:`_present`) and no row is dropped:
        the coded columns are coded into their vocabularies (:meth:`_global_column`) before the
        frame is made (the same frame as through :meth:`_typed` and :meth:`_global_codes`,
        without fetching its columns back). None otherwise (the caller then goes the general
        way)."""
        import pandas as pd

        if len(block) == 0:
            return None  # (the general way: what _typed says of an empty frame)
        dtypes = block.dtypes()
        numeric = self._numeric
        widen = {}
        for c, kind in numeric.items():
            dt = dtypes.get(c)
            if dt is None or (kind, dt) in _FINAL:
                continue
            to = _WIDENED.get((kind, dt))
            if to is None:
                return None
            widen[c] = to
        for c in self.required:
            dt = dtypes.get(c)
            if dt is None or not (isinstance(dt, np.dtype) and dt.kind in "iub" or _present(block.column_values(c))):
                return None  # (absent, or holding a missing value: _typed says which)
        for c, to in widen.items():  # (what _typed makes of them: the same numbers, widened)
            block.put(c, block.column_values(c).astype(to))
        coded = {}
        for c, dtype in self._plain_dtypes.items():
            if c not in dtypes:
                continue
            new, is_coded = self._global_column(c, dtype, block.column_values(c))
            if new is not None:
                block.put(c, new)
            if is_coded:
                coded[c] = dtype
        frame = block.frame()
        index = frame.index  # (a range index stored in pandas metadata: the chunk's is 0 .. n - 1)
        if not (type(index) is pd.RangeIndex and index.start == 0 and index.step == 1):
            frame = frame.reset_index(drop=True)
        return frame, coded

    def _raw(self, kind: str):
        if kind == "text/csv":
            gen = self._csv()
        elif kind == "application/jsonlines":
            gen = self._jsonlines()
        elif kind == "application/json":
            gen = self._json()
        elif kind == "application/x-parquet":
            gen = self._parquet()
        else:
            raise ValueError(f"dataset_type {kind!r} is not readable by clarion")
        self._check_format()
        return self._guard(gen)

    def _guard(self, gen):
        """``gen``, with an unreadable file (a damaged gzip stream, an I/O error) as a DataError."""
        try:
            yield from gen
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{self.path}: cannot read the file ({exc})") from None

    def _check_format(self) -> None:
        """Refuse a file whose first bytes say it is not in ``dataset_type`` (a gzip-compressed
        text file is fine: it is read through gzip)."""
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read the file ({exc.strerror or exc})") from None
        what, real = _what(head)
        parquet = self.dataset_type == "application/x-parquet"
        if parquet:
            if real == "application/x-parquet":
                return
            if what is None:
                what = (
                    "empty"
                    if not head
                    else "text that looks like JSON"
                    if head.lstrip(_BOM + b" \t\r\n")[:1] in (b"{", b"[")
                    else "not Parquet (no PAR1 magic bytes; text such as CSV?)"
                )
            hint = "; set dataset_type to the file's format (text/csv, application/jsonlines, application/json)"
            raise DataError(
                MSG_WRONG_FORMAT.format(path=self.path, what=what, dataset_type=self.dataset_type, hint=hint)
            )
        if what == "gzip-compressed":
            try:
                with gzip.open(self.path, "rb") as fh:
                    inner = fh.read(8)
            except (OSError, EOFError, zlib.error) as exc:
                raise DataError(f"{self.path}: gzip-compressed, but cannot be decompressed ({exc})") from None
            what, real = _what(inner)
            if what is not None:
                what = f"gzip-compressed and {what}"
        if what is not None:
            hint = (
                f"; set dataset_type to {real!r}"
                if real
                else "; clarion reads UTF-8 text: convert it (e.g. iconv -f utf-16 -t utf-8)"
                if "UTF-16" in what
                else "; clarion reads plain or gzip-compressed text: decompress it first"
            )
            raise DataError(
                MSG_WRONG_FORMAT.format(path=self.path, what=what, dataset_type=self.dataset_type, hint=hint)
            )

    def _open_binary(self):
        """The file as bytes: decompressed when gzip-compressed, without a UTF-8 byte-order mark."""
        with open(self.path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        fh = gzip.open(self.path, "rb") if gz else open(self.path, "rb")  # the caller closes it
        try:
            if fh.read(3) != _BOM:
                fh.seek(0)
        except BaseException:
            fh.close()
            raise
        return fh

    def _parquet_file(self, read_dictionary: list[str] | None = None) -> Any:
        """``pyarrow.parquet.ParquetFile`` of the file, its footer parsed once while the file is
        unchanged (the same size, modification time and inode): the type sample and the pass
        share it."""
        import pyarrow.parquet as pq

        st = os.stat(self.path)
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        held = self._pq_meta
        meta = held[1] if held is not None and held[0] == key else None
        pf = pq.ParquetFile(self.path, metadata=meta, read_dictionary=read_dictionary)
        if meta is None:
            self._pq_meta = (key, pf.metadata)
        return pf

    def _infer_types(self, kind: str) -> dict[str, str]:
        """Numeric columns, from the first TYPE_SAMPLE_ROWS rows whatever the chunk size: a text
        column is numeric when most of its non-empty sampled values parse as numbers and at most
        1% of them (or one value) do not. Kinds: "float", "int" (int64), "uint" (uint64: integers
        beyond int64, all in 0 .. 2**64 - 1) and "bigint" (integers beyond 64 bits: exact text)."""
        import pandas as pd

        self._numeric = None  # no column is coded while the types are sampled
        if _FAST_SAMPLE and kind == "application/x-parquet" and self.headers is None:
            self._check_format()  # (the error the frames' way gives first)
            try:
                pf = self._parquet_file()
            except Exception:  # noqa: BLE001 - the frames' way reads the file and gives the error
                pf = None
            quick = None if pf is None else _parquet_sample_kinds(self.path, pf)
            if quick is not None:  # (plain columns, every one decided from Arrow: see there)
                self._names = [str(c) for c in quick]
                return {c: k for c, k in quick.items() if k != "text"}
        frames, n = [], 0
        chunk_rows = self.chunk_rows
        if kind in ("text/csv", "application/x-parquet"):  # read no more than the sample
            self.chunk_rows = min(chunk_rows, TYPE_SAMPLE_ROWS)
        try:
            for frame, _ in self._raw(kind):
                frames.append(frame)
                n += len(frame)
                if n >= TYPE_SAMPLE_ROWS:
                    break
        finally:
            self.chunk_rows = chunk_rows
        numeric: dict[str, str] = {}
        if not frames:
            return numeric
        quick = _coded_sample_kinds(frames) if _FAST_SAMPLE else None
        if quick is not None:  # (one CSV block, every column decided on its distinct values)
            self._names = [str(c) for c in quick]
            return {c: k for c, k in quick.items() if k != "text"}
        frames = [_built(f, self._vocabs) for f in frames]
        sample = _concat_exact(frames).iloc[:TYPE_SAMPLE_ROWS]
        self._names = [str(c) for c in sample.columns]
        for c in sample.columns:
            col = sample[c]
            if pd.api.types.is_bool_dtype(col.dtype):
                continue
            if pd.api.types.is_numeric_dtype(col.dtype):
                if not pd.api.types.is_integer_dtype(col.dtype):
                    numeric[c] = "float"
                else:
                    numeric[c] = (
                        "uint"
                        if pd.api.types.is_unsigned_integer_dtype(col.dtype) and col.dtype.itemsize == 8
                        else "int"
                    )
                continue
            if _FAST_SAMPLE and (col.dtype == object or isinstance(col.dtype, pd.StringDtype)):
                quick = _sample_kind(col.to_numpy(dtype=object))
                if quick is not None:
                    if quick != "text":
                        numeric[c] = quick
                    continue
            present = col[col.notna()]
            # a JSON number with a fraction or an exponent (a Python float) makes a float column,
            # whether the chunks put it in a float64 column or beside a null in an object column
            json_float = any(type(v) is float for v in present)
            nonempty = present.astype(str)
            nonempty = nonempty[nonempty.str.strip().str.len() > 0]
            if len(nonempty) == 0:
                continue
            vals, exact, _ = _parse_numbers(nonempty.reset_index(drop=True))
            ok = ~np.isnan(vals)
            bad = int((~ok).sum())
            if ok.mean() > 0.5 and bad <= max(1, len(ok) // 100):
                integral = bool(np.all(_integral(vals, exact)[ok]))
                if not integral or json_float:
                    numeric[c] = "float"
                    continue
                ints = [int(v) for v in (exact[ok] if exact is not None else vals[ok])]
                lo, hi = min(ints), max(ints)
                numeric[c] = (
                    "int"
                    if lo >= _INT64_MIN and hi <= _INT64_MAX
                    else "uint"
                    if lo >= 0 and hi <= _UINT64_MAX
                    else "bigint"
                )
        return numeric

    def read_all(self) -> tuple[Any, np.ndarray]:
        """The whole file as one DataFrame, plus source line numbers."""
        chunks = list(self)
        if not chunks:
            raise DataError(f"{self.path}: no data rows")
        return _concat_exact([c.frame for c in chunks]), np.concatenate([c.lines for c in chunks])

    # ---- errors ---------------------------------------------------------------------------------

    def _bad(self, where: str, message: str) -> None:
        text = f"{self.path}: {where}: {message}"
        if not self.skip_bad_rows:
            raise DataError(text)
        held = self._held
        if held is not None and held[0] == threading.get_ident():  # the prefetch thread's
            held[1].append(text)
            return
        self._skip(text)

    def _skip(self, text: str) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 5:
            self.skipped_examples.append(text)

    # ---- type fixing shared by all formats ------------------------------------------------------

    def _typed(self, frame, lines):
        """Apply the sampled column types; find unparseable numbers, integers beyond a column's
        type and missing required values."""
        import pandas as pd

        unit = "line" if self.dataset_type in ("text/csv", "application/jsonlines") else "record"
        dtypes = dict(zip(frame.columns, frame.dtypes))  # (one call: a column fetch costs ~13 us)
        # int64 columns of an "int" column and float64 columns of a "float" one: already their
        # final values (what _number_column gives them), kept as they are
        final = {
            c
            for c, dt in dtypes.items()
            if (self._numeric.get(c), dt) in (("int", np.dtype(np.int64)), ("float", np.dtype(np.float64)))
        }
        no_missing = all(
            c in dtypes and isinstance(dtypes[c], np.dtype) and dtypes[c].kind in "iub" for c in self.required
        )
        if no_missing and len(final) == len(self._numeric.keys() & dtypes.keys()):
            return frame, lines  # every number final, no required value can be missing: as it came
        keep = np.ones(len(frame), dtype=bool)
        out, exact = {}, {}
        for c in frame.columns:
            col = frame[c]
            kind = self._numeric.get(c)
            if c in final:
                out[c] = col  # every value is a number of the column's type (a float may be NaN)
                continue
            if kind is not None:
                vals, ex, bad = _parse_numbers(col)
                for i in np.flatnonzero(bad):
                    if keep[i]:
                        self._bad(f"{unit} {lines[i]}, column {c!r}", f"{col.iloc[i]!r} is not a number")
                        keep[i] = False
                if kind == "int" and ex is not None:
                    for i in np.flatnonzero(_out_of_int64(vals, ex)):
                        if keep[i]:
                            self._bad(
                                f"{unit} {lines[i]}, column {c!r}", MSG_INT_RANGE.format(value=_show(col.iloc[i]))
                            )
                            keep[i] = False
                col = pd.Series(vals, index=frame.index)
                exact[c] = ex
            out[c] = col
        if exact:  # (else every column is as it came)
            frame = pd.DataFrame(out)
        for c in self.required:
            if c not in frame.columns:
                raise DataError(f"{self.path}: column {c!r} not found (columns: {list(frame.columns)})")
            col = frame[c]
            if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iub":  # no missing value
                continue
            missing = col.isna().to_numpy().copy()  # pandas 3 hands out read-only views
            if isinstance(col.dtype, pd.CategoricalDtype):  # a coded column: its empty value
                empty = np.array([len(str(v)) == 0 for v in col.dtype.categories] + [False])
                missing |= empty[col.array.codes]
            elif col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
                missing |= (col.astype(str).str.len() == 0).to_numpy()
            for i in np.flatnonzero(missing & keep):
                self._bad(f"{unit} {lines[i]}, column {c!r}", "missing value")
                keep[i] = False
        if not keep.all():
            frame = frame[keep]
            lines = lines[keep]
        for c, kind in self._numeric.items():
            if c not in frame.columns or c in final:
                continue
            ex = exact.get(c)
            frame[c] = _number_column(
                frame[c].to_numpy(np.float64), None if ex is None else ex[keep], kind, frame.index
            )
        return frame, lines

    # ---- formats --------------------------------------------------------------------------------

    def _csv(self):
        """CSV rows in chunks of ``chunk_rows`` kept rows. Each chunk is first parsed by pyarrow's
        vectorised CSV parser (all fields as text, exactly the strings the ``csv`` module gives, and
        numeric columns converted when their types are known); a chunk it cannot take whole (a
        wrong field count, a quoted field it might read differently, a line break inside quotes,
        invalid UTF-8) is re-read by the line-by-line ``csv`` path, which locates every malformed
        record. Chunk boundaries, line numbers, errors and skip counts are those of the
        line-by-line path."""
        import pandas as pd

        with self._open_binary() as fh:
            src = _Lines(fh, self.path)
            reader = _CsvRecords(csv.reader(src), src, self.path)
            first = next(reader, None)
            while first is not None and not first:
                first = next(reader, None)
            if first is None:
                raise DataError(f"{self.path}: empty file")
            if self.headers is None:
                names, pending = [f.strip() for f in first], None
            elif [f.strip() for f in first] == list(self.headers):
                names, pending = list(self.headers), None
            else:
                self._check_csv_headers([f.strip() for f in first], src.n)
                names, pending = list(self.headers), (first, src.n)
            if len(set(names)) != len(names):
                raise DataError(f"{self.path}: duplicate column names in the header")
            use = self._selected(names)
            for c in self._coded_columns(use):
                self._vocabs[c] = _Vocabulary()
                self._plain_dtypes[c] = np.dtype(object)
            n = len(names)
            while True:
                rows: list[list[str]] = []
                lines: list[int] = []
                if pending is not None:
                    fields, lineno = pending
                    pending = None
                    if len(fields) != n:
                        self._bad(f"line {lineno}", f"expected {n} fields, got {len(fields)}")
                    else:
                        rows.append(fields)
                        lines.append(lineno)
                need = self.chunk_rows - len(rows)
                if need == 0:
                    yield _text_frame(rows, names, use), np.asarray(lines, dtype=np.int64)
                    continue
                fast = self._csv_fast(src, names, need)
                if fast is not None:
                    frame, flines = fast
                    if len(frame) == 0 and not rows:
                        return
                    if rows:
                        head = _text_frame(rows, names, use)
                        frame = pd.concat([head, frame.build(self._vocabs)], ignore_index=True) if len(frame) else head
                        flines = np.concatenate([np.asarray(lines, dtype=np.int64), flines])
                    yield frame, flines
                    if len(frame) < self.chunk_rows:
                        return
                    continue
                # the line-by-line path for this chunk
                done = True
                for fields in reader:
                    lineno = src.n
                    if not fields:
                        continue
                    if len(fields) != n:
                        self._bad(f"line {lineno}", f"expected {n} fields, got {len(fields)}")
                        continue
                    rows.append(fields)
                    lines.append(lineno)
                    if len(rows) >= self.chunk_rows:
                        done = False
                        break
                if rows:
                    yield _text_frame(rows, names, use), np.asarray(lines, dtype=np.int64)
                if done:
                    return

    def _check_csv_headers(self, first: list[str], line: int) -> None:
        """``headers`` given and the first line differs from them: refuse a first line that is a
        header in another order or with other names, and a ``headers`` list whose length is not the
        file's column count (the first line and the next lines all have another field count)."""
        hdr = [str(h) for h in self.headers]
        if len(first) == len(hdr):
            names = {h.casefold() for h in hdr}
            shared = {f.casefold() for f in first if f.casefold() in names and not _is_number(f)}
            if shared and sorted(first) == sorted(hdr):
                raise DataError(MSG_HEADERS_ORDER.format(path=self.path, line=line, found=first, expected=hdr))
            if shared and len(shared) * 2 >= len(hdr):  # (names compared ignoring case)
                raise DataError(
                    MSG_HEADERS_DIFFER.format(
                        path=self.path,
                        line=line,
                        found=first,
                        expected=hdr,
                        only_file=[f for f in first if f not in hdr],
                        only_headers=[h for h in hdr if h not in first],
                    )
                )
            return
        if not any(k == len(hdr) for k in self._peek_field_counts()):
            raise DataError(MSG_HEADERS_COUNT.format(path=self.path, n=len(hdr), m=len(first), line=line))

    def _peek_field_counts(self) -> list[int]:
        """Field counts of the first HEADER_PEEK non-blank CSV records after the first (as far as
        they can be read)."""
        counts: list[int] = []
        with self._open_binary() as fh:
            src = _Lines(fh, self.path)
            reader = csv.reader(src)
            try:
                next(reader, None)
                for fields in reader:
                    if fields:
                        counts.append(len(fields))
                        if len(counts) >= HEADER_PEEK:
                            break
            except (DataError, csv.Error, OSError, EOFError, zlib.error):
                pass
        return counts

    def _csv_fast(self, src: _Lines, names: list[str], need: int):
        """The next ``need`` non-blank lines parsed as a block (the columns of ``usecols``), or None
        (lines given back to ``src``) when the line-by-line path must read them.

        The lines are found in a block of bytes by one vectorised pass (:meth:`_Lines.take_block`).
        A plain block (no quotes; numbers in a strict grammar; see :meth:`_csv_compiled`) whose
        columns are numbers and coded text is parsed by the compiled ``csv_block_cpu`` straight
        into its columns. Any other block is parsed by pyarrow on its threads with the numeric
        columns typed as the sample decided (:meth:`_csv_typed`); when that parse is not certain to
        give what the ``csv`` module and :func:`_parse_numbers` give, the block is parsed with
        every column as text and the numbers converted column by column (:func:`_fast_number`).
        With ``usecols``, a block with bytes that are not UTF-8 goes the line-by-line way (which
        names the line), as without it."""
        import pandas as pd
        import pyarrow as pa

        got = src.take_block(need)
        if got is None:
            return None
        data, lines, count = got
        use = self._selected(names)
        if not len(lines):
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in use}), lines
        out = self._csv_compiled(data, names, use, len(lines))
        if out is not None:
            return _PendingFrame(out, len(lines)), lines
        if b'"' in data and not all(_CSV_QUOTED.fullmatch(b) is not None for b in data.splitlines() if b'"' in b):
            src.unread(data, count)
            return None
        if len(use) < len(names) and not data.isascii() and not _is_utf8(data):
            src.unread(data, count)  # (pyarrow checks the columns it converts only)
            return None
        out = self._csv_typed(data, names, len(lines))
        if out is None:
            table = _arrow_csv(data, names, {c: pa.string() for c in use}, include=use)
            if table is None or table.num_rows != len(lines):
                src.unread(data, count)
                return None
            out = {}
            for c in use:
                col = table.column(c)
                if c in self._vocabs:
                    out[c] = col  # (coded when the frame is built)
                    continue
                vals = _fast_number(col, self._numeric[c]) if self._numeric and c in self._numeric else None
                out[c] = col.to_numpy(zero_copy_only=False) if vals is None else vals
        return _PendingFrame(out, len(lines)), lines

    def _csv_compiled(self, data: bytes, names: list[str], use: list[str], rows: int):
        """A block parsed by the compiled ``csv_block_cpu`` (numpy twin:
        ``clarion._reference.csv_block``) when every column of ``use`` is an "int" or "float"
        column (sampled types) or a coded text column: numbers as int64 / float64 arrays, coded
        text as each value's code and the values (:class:`_CodedText`), the columns not in
        ``use`` not converted; while the types are sampled, every column as text (an object array
        of its values, as pyarrow's path gives it). None (the pyarrow path) for any other block (a
        text column not coded, a "uint" or "bigint" column), or when the parser declines it: a
        quote, a line with another field count, a number outside its strict grammar or beyond the
        exact range, an empty number, text that is not UTF-8, a lone carriage return. Off when
        ``_COMPILED_CSV`` is False. Threads: ``CLARION_NUM_THREADS``, or every core."""
        if not _COMPILED_CSV or len(data) >= _CSV_BLOCK_MAX_BYTES:
            return None
        from clarion._counts import env_threads

        numeric = self._numeric or {}
        wanted = set(use)
        kinds = np.zeros(len(names), dtype=np.int8)  # 0: not converted
        for j, c in enumerate(names):
            if c not in wanted:
                continue
            kind = (
                3
                if c in self._vocabs or self._numeric is None  # (the type sample: every column is text)
                else _CSV_BLOCK_KINDS.get(numeric.get(c), 0)
            )
            if kind == 0:
                return None
            kinds[j] = kind
        # (threads: CLARION_NUM_THREADS, or every core; the parts cut at most one per 8,192 lines)
        status, _, n, cols = _io_kernel("csv_block")(np.frombuffer(data, dtype=np.uint8), kinds, env_threads())
        if status != 0 or n != rows:
            return None
        out = {}
        for c, col in zip(names, cols):
            if type(col) is tuple:  # text: coded when the frame is built, or its values
                text = _CodedText(col[0], col[2])  # (kept coded while the types are sampled)
                out[c] = text if c in self._vocabs or self._numeric is None else text.array()
            elif col is not None:
                out[c] = col
        return out

    def _csv_typed(self, data: bytes, names: list[str], rows: int):
        """A block parsed with its numeric columns typed (int64 / uint64 / float64, text columns
        as text), as numpy columns equal to what :func:`_fast_number` gives; None when the block
        needs the column-by-column conversion: a value pyarrow's number parser reads where pandas
        does not or otherwise (hexadecimal integers; blanks around a value, which it trims), a
        value it refuses, NaN / inf text, floats where a value is not exact, or another row count.
        Only the columns of ``usecols`` are converted."""
        import pyarrow as pa

        use = self._selected(names)
        kinds = {c: k for c, k in (self._numeric or {}).items() if c in use and k != "bigint"}
        if not kinds or b"\t" in data or (b" " in data and _blank_next_to_field_end(data)):
            return None
        if (b"x" in data and b"0x" in data) or (b"X" in data and b"0X" in data):
            return None
        arrow = {"int": pa.int64(), "uint": pa.uint64(), "float": pa.float64()}
        types = {c: arrow[kinds[c]] if c in kinds else pa.string() for c in use}
        table = _arrow_csv(data, names, types, typed=True, include=use)
        if table is None or table.num_rows != rows:
            return None
        out = {}
        for c in use:
            col = table.column(c)
            kind = kinds.get(c)
            if kind is None:
                out[c] = col if c in self._vocabs else col.to_numpy(zero_copy_only=False)  # (coded later)
                continue
            nulls = col.null_count
            if kind == "uint" and nulls:
                return None
            vals = col.to_numpy(zero_copy_only=False)
            if kind == "int" and nulls:  # float64 with NaN: exact only below 2**53
                vals = vals.astype(np.float64, copy=False)
                if np.any(np.abs(vals[~np.isnan(vals)]) >= _EXACT_FLOAT):
                    return None
            if kind == "float":
                vals = np.asarray(vals, dtype=np.float64)
                nan = np.isnan(vals)
                if int(nan.sum()) != nulls or not np.all(np.abs(vals[~nan]) < 2.0**63):
                    return None
            out[c] = vals
        return out

    def _jmespaths(self):
        import jmespath

        out = []
        for key, path in (
            ("features", self.features),
            ("label", self.label),
            ("predicted_label", self.predicted_label),
        ):
            if not isinstance(path, str) or (key == "features" and not path):
                out.append(None)
                continue
            try:
                out.append(jmespath.compile(path))
            except jmespath.exceptions.JMESPathError as exc:
                raise DataError(f"{self.path}: {key} {path!r} is not a valid JMESPath expression ({exc})") from None
        return out

    def _jsonlines(self):
        """JSON Lines records: one JSON value per line (blank lines skipped); ``features`` selects
        the feature values in each (a list, or an object whose keys name them); ``label`` and
        ``predicted_label`` select one value each, appended after the features."""
        import jmespath

        feat, lab, pred = self._jmespaths()
        paths = [p for p in (lab, pred) if p is not None]

        def records():
            lineno = 0
            with self._open_binary() as fh:
                for raw in fh:
                    parts = raw.splitlines() if b"\r" in raw and raw.count(b"\r") != raw.count(b"\r\n") else (raw,)
                    for part in parts:
                        lineno += 1
                        if not part.strip():
                            continue
                        try:
                            text = part.decode("utf-8")
                        except UnicodeDecodeError as exc:
                            yield lineno, None, MSG_NOT_UTF8.format(byte=part[exc.start], pos=exc.start + 1)
                            continue
                        try:
                            rec = json.loads(text)
                        except json.JSONDecodeError as exc:
                            yield lineno, None, f"invalid JSON ({exc.msg})"
                            continue
                        except RecursionError:
                            yield lineno, None, "invalid JSON (nested too deeply)"
                            continue
                        try:
                            values = feat.search(rec) if feat is not None else rec
                            extra = [p.search(rec) for p in paths]
                        except (jmespath.exceptions.JMESPathError, RecursionError) as exc:
                            yield lineno, None, f"JMESPath failed on this record ({exc})"
                            continue
                        yield lineno, (values, feat is None), extra

        yield from self._rows(records(), "line")

    def _json(self):
        """Tabular JSON: one document; ``features`` selects a list of records (lists of values, or
        objects whose keys name them); ``label`` / ``predicted_label`` select lists as long."""
        import jmespath

        feat, lab, pred = self._jmespaths()
        with self._open_binary() as fh:
            data = fh.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            pos = exc.start - data.rfind(b"\n", 0, exc.start)  # 1-based, within the line
            raise DataError(
                f"{self.path}: line {line}: " + MSG_NOT_UTF8.format(byte=data[exc.start], pos=pos)
            ) from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{self.path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        except RecursionError:
            raise DataError(f"{self.path}: invalid JSON (nested too deeply)") from None
        if feat is None:
            raise DataError(f"{self.path}: application/json needs the features JMESPath")
        try:
            rows = feat.search(doc)
            cols = [p.search(doc) for p in (lab, pred) if p is not None]
        except (jmespath.exceptions.JMESPathError, RecursionError) as exc:
            raise DataError(f"{self.path}: JMESPath failed on the document ({exc})") from None
        if not isinstance(rows, list):
            raise DataError(f"{self.path}: features {self.features!r} did not select a list of records")
        paths = [p for p in (self.label, self.predicted_label) if isinstance(p, str)]
        for path, v in zip(paths, cols):
            if not isinstance(v, list) or len(v) != len(rows):
                raise DataError(f"{self.path}: {path!r} did not select a list of {len(rows)} values")
        yield from self._rows(((i + 1, (r, False), [c[i] for c in cols]) for i, r in enumerate(rows)), "record")

    def _rows(self, records, unit: str):
        """Frames of ``chunk_rows`` rows from JSON records ``(number, (values, whole), extra)`` or
        ``(number, None, error)``. Records that are objects are aligned by key name with the first
        one (a record with other keys is malformed); the first record fixes the number of values,
        or ``headers`` does."""
        extras = [str(p) for p in (self.label, self.predicted_label) if isinstance(p, str)]
        drop = set(extras) if self.features is None else set()  # the label is not a feature
        headers = None if self.headers is None else [str(h) for h in self.headers]
        mode = names = nameset = columns = None
        width = len(headers) if headers is not None else None
        held: list[tuple[int, int]] = []  # (number, values) of records before one of headers' width
        rows, lines = [], []
        what = f"features {self.features!r}" if self.features else "the record"
        for number, sel, extra in records:
            if sel is None:
                self._bad(f"{unit} {number}", extra)
                continue
            values, whole = sel
            if isinstance(values, dict):
                if whole and drop:
                    values = {k: v for k, v in values.items() if k not in drop}
                if mode is None:
                    mode = "object"
                    names = list(values)
                    if headers is not None:
                        hf = headers[: max(0, len(headers) - len(extras))]
                        if set(hf) == set(names) and len(hf) == len(names):
                            names = hf
                        elif set(hf) & set(names):
                            raise DataError(MSG_HEADERS_KEYS.format(path=self.path, names=headers, keys=names))
                    nameset = set(names)
                if mode != "object":
                    self._bad(f"{unit} {number}", f"{what} is an object, but the first record's is a list")
                    continue
                if len(values) == len(names) and values.keys() == nameset:
                    row = [values[k] for k in names]
                else:
                    diff = [f"missing key {k!r}" for k in names if k not in values] + [
                        f"unexpected key {k!r}" for k in values if k not in nameset
                    ]
                    self._bad(f"{unit} {number}", MSG_RECORD_KEYS.format(diff=", ".join(diff)))
                    continue
            elif isinstance(values, list):
                if mode is None:
                    mode = "list"
                if mode != "list":
                    self._bad(
                        f"{unit} {number}", f"{what} is a list, but the first record's is an object with keys {names}"
                    )
                    continue
                row = list(values)
            else:
                got = "nothing" if values is None else type(values).__name__
                self._bad(f"{unit} {number}", f"{what} did not select a list or an object (got {got})")
                continue
            row += extra
            if width is None:
                width = len(row)
            if len(row) != width:
                if headers is not None and columns is None:
                    held.append((number, len(row)))
                    if len(held) >= HEADER_PEEK:
                        break
                    continue
                self._bad(f"{unit} {number}", f"expected {width} values, got {len(row)}")
                continue
            if columns is None:
                columns = self._jsonl_headers(names if mode == "object" else None, width, extras)
                for n, k in held:
                    self._bad(f"{unit} {n}", f"expected {width} values, got {k}")
                held = []
            rows.append(row)
            lines.append(number)
            if len(rows) >= self.chunk_rows:
                yield self._frame_from_rows(rows, columns, lines)
                rows, lines = [], []
        if held:
            n, k = held[0]
            parts = " + ".join(["features"] + [f"{p!r}" for p in extras])
            raise DataError(
                MSG_HEADERS_VALUES.format(path=self.path, n=len(headers), unit=unit, line=n, m=k, what=parts)
            )
        if rows:
            yield self._frame_from_rows(rows, columns, lines)

    def _frame_from_rows(self, rows, columns, lines):
        """A frame of rows (the columns of ``usecols``); a row holding a list or an object as a
        value of a used column is malformed."""
        import pandas as pd

        use = self._selected(list(columns))
        if len(use) < len(columns):  # (the other values are not looked at)
            at = [list(columns).index(c) for c in use]
            rows, columns = [[r[j] for j in at] for r in rows], use
        frame = pd.DataFrame(rows, columns=columns)
        for j, c in enumerate(columns):  # integers beside a missing value or a float: kept exact
            if (
                frame[c].dtype.kind == "f"
                and bool(np.any(np.abs(frame[c].to_numpy()) > _EXACT_FLOAT))
                and any(type(r[j]) is int and abs(r[j]) > _EXACT_FLOAT for r in rows)
            ):
                frame[c] = pd.Series([r[j] for r in rows], dtype=object)
        lines = np.asarray(lines, dtype=np.int64)
        nested = np.zeros(len(frame), dtype=bool)
        first: dict[int, str] = {}
        used = None if self.usecols is None else set(self.usecols)  # (also while the types are sampled)
        for c in frame.columns:
            col = frame[c]
            if col.dtype != object or (used is not None and c not in used):
                continue
            found = col.map(type).isin((list, dict)).to_numpy()
            for i in np.flatnonzero(found & ~nested):
                first[i] = c
            nested |= found
        if nested.any():
            unit = "line" if self.dataset_type == "application/jsonlines" else "record"
            for i in np.flatnonzero(nested):
                v = frame[first[i]].iloc[i]
                self._bad(
                    f"{unit} {lines[i]}, column {first[i]!r}",
                    f"a {'list' if isinstance(v, list) else 'object'} is not a single value",
                )
            kept = [r for r, bad in zip(rows, nested) if not bad]  # (column types from the kept rows only)
            return self._frame_from_rows(kept, columns, lines[~nested])
        return frame, lines

    def _jsonl_headers(self, names, width, extras):
        if self.headers is not None:
            return [str(h) for h in self.headers]
        n_feat = width - len(extras)
        base = names if names is not None and len(names) == n_feat else [f"column_{i}" for i in range(n_feat)]
        cols = [str(b) for b in base] + extras
        if len(set(cols)) != len(cols):
            dup = sorted({c for c in cols if cols.count(c) > 1})
            raise DataError(f"{self.path}: duplicate column names {dup}; name the columns with `headers`")
        return cols

    def _parquet(self):
        """Parquet row batches; integer columns with nulls stay exact (Python ints, not float64);
        ``headers`` selects columns by name."""
        import pyarrow as pa

        try:
            pf = self._parquet_file()
            columns = None
            if self.headers is not None:  # only these columns are read
                names = list(pf.schema_arrow.names)
                missing = [h for h in self.headers if h not in names]
                if missing:
                    raise DataError(
                        f"{self.path}: columns {missing} from `headers` not found in the Parquet "
                        f"file (columns: {names})"
                    )
                columns = list(self.headers)
            if self.usecols is not None and self._numeric is not None:  # (usecols: only those)
                every = columns if columns is not None else [str(c) for c in pf.schema_arrow.names]
                use = self._selected(every)
                if len(use) < len(every):
                    columns = use
            schema = pf.schema_arrow
            coded = [
                c
                for c in self._coded_columns(list(schema.names) if columns is None else columns)
                if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)
            ]
            if coded:  # text read as dictionary codes (its dictionary pages, not one string per row)
                pf = self._parquet_file(read_dictionary=coded)
                for c in coded:
                    self._vocabs[c] = _Vocabulary()
                    self._plain_dtypes[c] = pa.array([], type=schema.field(c).type).to_pandas().dtype
            batches = pf.iter_batches(batch_size=self.chunk_rows, columns=columns)
            if coded:  # (dictionary batches end at row groups: regrouped into chunks of chunk_rows)
                batches = _rebatched(batches, self.chunk_rows)
            fast = _FAST_PARQUET and _LEAN_PARQUET
            start = 1
            while True:
                batch = next(batches, None)
                if batch is None:
                    return
                if fast:  # (made a frame where it is used: Reader._block_chunk)
                    frame = _arrow_block(batch, coded, self._vocabs, columns)
                elif coded:
                    frame = _coded_frame(batch, coded, self._vocabs)
                else:
                    frame = batch.to_pandas(integer_object_nulls=True)
                if columns is not None and type(frame) is not _ArrowBlock:
                    frame = frame[columns]
                lines = np.arange(start, start + len(frame), dtype=np.int64)
                start += len(frame)
                yield frame, lines
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.path}: not a readable Parquet file ({exc})") from None


#: A coded column (``Reader.codes``) keeps at most this many distinct values as codes; beyond, its
#: values are given as they are from the chunk where the vocabulary would pass it.
MAX_CODES = 32_000


def _code_dtype(n: int) -> Any:
    """The codes' dtype pandas gives a Categorical of ``n`` categories."""
    return np.int8 if n < 127 else np.int16 if n < 32767 else np.int32


class _Vocabulary:
    """A coded column's values in first-seen order, and the categorical dtype that names them (one
    object, replaced only when a value is added)."""

    def __init__(self) -> None:
        self.index: dict = {}
        self.values: list = []
        self.dtype = _categories([])  # (no value yet: one shared empty dtype)

    def categorical(self, local: np.ndarray, values: np.ndarray, given: Any = None) -> Any:
        """Codes ``local`` (-1: missing) into ``values`` as a Categorical of this vocabulary, which
        takes the values new to it in the order their rows come; None when it would pass
        ``MAX_CODES`` values (nothing is added then). ``given``: the Categorical ``local`` and
        ``values`` come from, returned itself when it is already that Categorical (its dtype the
        vocabulary's own object, its codes the vocabulary's: a first block, or one with the
        vocabulary's values in its order)."""
        import pandas as pd

        index = self.index
        remap = np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))
        new = remap < 0
        if new.any():
            order = _first_seen(local, new)  # new values in the order they first occur
            if len(self.values) + len(order) > MAX_CODES:
                return None
            for j in order:
                v = values[j]
                remap[j] = index[v] = len(self.values)
                self.values.append(v)
            if len(order):
                self.dtype = _categories(self.values)  # (the cached dtype a block of these values has)
        remap = np.append(remap, -1).astype(_code_dtype(len(self.values)))
        if (
            given is not None
            and given.dtype is self.dtype
            and given.codes.dtype == remap.dtype
            and bool(np.all(remap[:-1] == np.arange(len(remap) - 1)))
        ):
            return given  # (remap is the identity: remap[local] is local)
        # (every code is in range by construction: the check is skipped)
        return pd.Categorical.from_codes(_remapped(remap, local), dtype=self.dtype, validate=False)

    def known(self, parts: list[tuple[list, Any]]) -> Any:
        """A block's coded column as a Categorical of this vocabulary's dtype (``parts``: for each
        piece of the block, its values and its codes into them, -1 for a missing value), or None
        when one of the values is not in the vocabulary yet (the block then goes through
        :meth:`categorical`, which adds values in the order their rows come). Nothing is added
        here, so it may run on the reader's thread while the caller adds values: it codes against
        the dtype it reads first, whose values keep their codes (values are only appended, and
        ``index`` names a value before ``dtype`` does). :meth:`Reader._global_codes` takes such a
        column as it is while its dtype is still the vocabulary's (``dtype is`` the current one)."""
        import pandas as pd

        dtype = self.dtype
        n = len(dtype.categories)
        index = self.index
        cd = _code_dtype(n)
        out = []
        for values, codes in parts:
            remap = np.empty(len(values) + 1, dtype=cd)
            for j, v in enumerate(values):
                k = index.get(v)
                if k is None or k >= n:
                    return None
                remap[j] = k
            remap[-1] = -1
            out.append(_remapped(remap, codes))
        codes = (np.concatenate(out) if len(out) > 1 else out[0]) if out else np.empty(0, dtype=cd)
        # (every code is in range by construction: the check is skipped)
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _first_seen(local: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The codes ``j`` with ``new[j]`` that occur in ``local`` (codes, -1 for a missing value), in
    the order of their first occurrence (what ``pandas.unique`` of the rows holding them gives).
    Few values: each one's first row found by a comparison and a (short-circuiting) ``argmax``,
    not a hash of every row."""
    import pandas as pd

    cand = np.flatnonzero(new)
    if len(cand) > 32 or len(local) == 0:
        rows = np.take(np.append(new, False), local)  # (local -1, a missing value: never new)
        return pd.unique(local[rows])
    first = np.fromiter((np.argmax(local == int(j)) for j in cand), dtype=np.int64, count=len(cand))
    hit = local[first] == cand
    return cand[hit][np.argsort(first[hit], kind="stable")].astype(local.dtype)


def _remapped(remap: np.ndarray, local: np.ndarray) -> np.ndarray:
    """``remap[local]`` (``local`` codes 0 .. len(remap) - 2, or -1 for ``remap[-1]``). Codes into
    int8 (fewer than 127 values: every code fits a byte, -1 as 0xFF) go through
    ``bytearray.translate`` (a 256-byte table, no index conversion: about a third of ``np.take``'s
    time on 100,000 int32 codes, half on int8 ones)."""
    if len(remap) > 1 and remap[-1] == -1 and np.array_equal(remap[:-1], np.arange(len(remap) - 1)):
        if local.dtype != remap.dtype:  # (the codes as they are, in the codes' dtype)
            return local.astype(remap.dtype)
        return local.copy() if not local.flags.writeable else local
    if remap.dtype == np.int8 and local.dtype.kind == "i" and local.ndim == 1 and len(local) >= 4096:
        table = np.arange(256, dtype=np.uint8)
        r = remap.view(np.uint8)
        table[: len(r) - 1] = r[:-1]
        table[255] = r[-1]  # (-1 as a byte)
        small = local if local.dtype == np.int8 else local.astype(np.int8)  # (codes -1 .. 125: exact)
        return np.frombuffer(bytearray(small.tobytes()).translate(table.tobytes()), dtype=np.int8)
    return np.take(remap, local)


def _rebatched(batches, rows: int):
    """Record batches regrouped as tables of ``rows`` rows (the last one may hold fewer)."""
    import pyarrow as pa

    held, n = [], 0
    for b in batches:
        while len(b):
            take = min(rows - n, len(b))
            held.append(b.slice(0, take))
            n += take
            b = b.slice(take)
            if n == rows:
                yield pa.Table.from_batches(held)
                held, n = [], 0
    if held:
        yield pa.Table.from_batches(held)


def _coded_frame(table, coded: list[str], vocabs: dict | None = None) -> Any:
    """A Parquet table as a frame: the coded (dictionary) columns as Categoricals of the table's
    values, the others as ``to_pandas`` gives them (the plain numeric columns taken straight from
    their Arrow buffers where that is the same frame: :func:`_plain_columns`). A coded column
    whose values are all in its vocabulary in ``vocabs`` already comes coded into it
    (:meth:`_Vocabulary.known`)."""
    import pandas as pd

    def categorical(c):
        voc = None if vocabs is None else vocabs.get(c)
        if voc is not None:
            got = voc.known(_dictionary_parts(table.column(c)))
            if got is not None:
                return got
        return _local_categorical(table.column(c))

    names = table.column_names
    plain = _plain_columns(table, coded) if _LEAN_PARQUET else {}
    if plain is None:
        plain = {}
    rest_names = [c for c in names if c not in coded and c not in plain]
    if rest_names or not plain:
        rest = table.select(rest_names).to_pandas(integer_object_nulls=True)
        index = rest.index  # (a stored pandas index becomes the frame's index, as to_pandas makes it)
    else:
        rest, index = None, pd.RangeIndex(table.num_rows)
    if rest is None:  # every column an array of its own: the frame built from them as they are
        cols = {c: categorical(c) if c in coded else plain[c] for c in names}
        return pd.DataFrame(cols, index=index, copy=False)
    cols = {}
    for c in names:
        if c in coded:
            cols[c] = pd.Series(categorical(c), index=index, copy=False)
        elif c in plain:
            cols[c] = pd.Series(plain[c], index=index, copy=False)
        elif c in rest.columns:
            cols[c] = rest[c]
    return pd.DataFrame(cols, index=index, copy=False)


#: Parquet batches prepared on the reader's thread and made frames where they are used
#: (:func:`_arrow_block`, :meth:`Reader._block_chunk`); off: each batch made a frame on the
#: reader's thread and typed and coded as a frame (the chunks are the same; tests compare).
_FAST_PARQUET = True
#: CSV blocks typed and coded before their frame is made, as Parquet batches
#: (:meth:`Reader._block_chunk`); off: made a frame, then typed and coded (tests compare).
_CSV_BLOCK_FRAMES = True
_INT64, _FLOAT64 = np.dtype(np.int64), np.dtype(np.float64)
#: (sampled kind, dtype) pairs :meth:`Reader._typed` keeps as they are, and those it widens (no
#: value missing: integers to int64, floats to float64, the same numbers)
_FINAL = {("int", _INT64), ("float", _FLOAT64), ("uint", np.dtype(np.uint64))}
_WIDENED = {
    **{("int", np.dtype(t)): _INT64 for t in ("int8", "int16", "int32", "uint8", "uint16", "uint32")},
    **{("float", np.dtype(t)): _FLOAT64 for t in ("float16", "float32")},
}


class _ArrowBlock:
    """A Parquet batch's columns as the reader's thread prepares them: the plain numeric columns
    as numpy arrays over the decoded buffers (:func:`_plain_columns`, ``owned``), the coded text
    columns as Categoricals (coded into their vocabularies where every value is known), the other
    columns through ``to_pandas`` (``rest``, a frame); ``names`` in the chunk's order. Made a frame
    by :meth:`frame` on the caller's thread (see :meth:`Reader._block_chunk`). A CSV block's
    columns come so too (:meth:`_PendingFrame.block`; ``series``: every column made a Series, so
    that an object column stays object)."""

    __slots__ = ("cols", "names", "rest", "rows", "series")

    def __init__(self, names: list[str], cols: dict, rest: Any, rows: int, series: bool = False) -> None:
        self.names, self.cols, self.rest, self.rows, self.series = names, cols, rest, rows, series

    def __len__(self) -> int:
        return self.rows

    def dtypes(self) -> dict[str, Any]:
        """Each column's dtype, as the frame will have it."""
        out = {c: v.dtype for c, v in self.cols.items()}
        if self.rest is not None:
            out.update(zip(self.rest.columns, self.rest.dtypes))
        return {c: out[c] for c in self.names if c in out}

    def column_values(self, c: str) -> Any:
        """Column ``c``'s values (a numpy array, a Categorical, or an extension array)."""
        return self.cols[c] if c in self.cols else self.rest[c].array

    def put(self, c: str, values: Any) -> None:
        """Replace column ``c``'s values (an array, a Categorical, or a Series on a range index)."""
        if self.rest is not None and c in self.rest.columns:
            self.rest = self.rest.drop(columns=[c])
        self.cols[c] = values

    def frame(self) -> Any:
        """The batch as the frame :func:`_coded_frame` makes (columns in ``names``' order; the
        index ``to_pandas`` gives the other columns, else a range index): each array taken as it
        is (no copy; a Categorical's dtype kept)."""
        import pandas as pd

        rest = self.rest
        if rest is None:
            cols = {c: self.cols[c] for c in self.names}
            if self.series:
                cols = {c: v if isinstance(v, pd.Series) else _column_series(v) for c, v in cols.items()}
            # (numbers and Categoricals taken as they are: the same frame as from Series, in half the time)
            return _frame_of(cols)
        index = rest.index
        cols = {}
        for c in self.names:
            if c in self.cols:
                v = self.cols[c]
                cols[c] = v.set_axis(index) if isinstance(v, pd.Series) else pd.Series(v, index=index, copy=False)
            elif c in rest.columns:
                cols[c] = rest[c]
        return _frame_of(cols, index)


#: names of a chunk's columns -> the column index pandas makes of them (:func:`_frame_of`)
_COLUMN_INDEXES: dict = {}
#: chunks made frames with a kept column index (:func:`_frame_of`); off: ``pd.DataFrame(cols)``
_KEPT_COLUMN_INDEX = True


def _frame_of(cols: dict, index: Any = None) -> Any:
    """``pd.DataFrame(cols, index=index, copy=False)``, the same frame, without making its column
    index from the names again: the frame is made with the keys 0 .. k - 1 (a range index, ~60 µs
    less than inferring a string index from the names) and then given the index pandas makes of
    these names, made once per distinct names (every chunk of a read then has the same column
    index object, as the slices of one frame do, which the accumulator's compiled fetch knows)."""
    import pandas as pd

    if not _KEPT_COLUMN_INDEX or not cols:
        return pd.DataFrame(cols, index=index, copy=False)
    key = tuple((type(c), c) for c in cols)
    columns = _COLUMN_INDEXES.get(key)
    if columns is None:
        if len(_COLUMN_INDEXES) >= 256:
            _COLUMN_INDEXES.clear()
        # (the index pandas makes of a dict's keys, whatever they are: built from an empty frame)
        columns = _COLUMN_INDEXES[key] = pd.DataFrame(dict.fromkeys(cols, ()), copy=False).columns
    frame = pd.DataFrame(dict(zip(range(len(cols)), cols.values())), index=index, copy=False)
    frame.columns = columns
    return frame


def _arrow_block(batch: Any, coded: list[str], vocabs: dict, columns: list[str] | None) -> Any:
    """A Parquet batch (or table) the reader decoded and holds alone, prepared on the reader's
    thread: an :class:`_ArrowBlock`, or the frame :func:`_coded_frame` makes (its ``columns``) for
    a file whose pandas metadata stores an index or renames a column, or a batch with a name twice
    (``to_pandas`` then decides the frame). Coded columns: as :func:`_coded_frame` codes them."""
    import pyarrow as pa

    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    names = list(table.column_names)
    plain = _plain_columns(table, coded, owned=True) if len(set(names)) == len(names) else None
    if plain is None:
        frame = _coded_frame(table, coded, vocabs) if coded else table.to_pandas(integer_object_nulls=True)
        return frame if columns is None else frame[columns]
    cols = dict(plain)
    for c in coded:
        if c in names:
            col = table.column(c)
            voc = vocabs.get(c)
            got = None if voc is None else voc.known(_dictionary_parts(col))
            cols[c] = _local_categorical(col) if got is None else got
    rest_names = [c for c in names if c not in cols]
    rest = table.select(rest_names).to_pandas(integer_object_nulls=True) if rest_names else None
    return _ArrowBlock(names if columns is None else list(columns), cols, rest, table.num_rows)


def _present(values: Any) -> bool:
    """Whether a required column's values (a block's: :meth:`Reader._block_chunk`) certainly hold
    no value :meth:`Reader._typed` counts missing: a Categorical without code -1 whose categories
    have no empty text, or floats without NaN. False for anything else (it then decides)."""
    import pandas as pd

    if isinstance(values, np.ndarray):
        return values.dtype.kind == "f" and not np.isnan(values).any()
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        codes = values.codes
        if len(codes) and codes.min() < 0:
            return False
        return all(len(str(v)) for v in values.categories)
    return False


def _decoded(values: Any, dtype: Any, col: Any = None) -> Any:
    """A coded column (the Categorical ``values``; ``col``: its Series, if any) as its values in
    ``dtype`` (:func:`decode_column`)."""
    import pandas as pd

    return decode_column(pd.Series(values, copy=False) if col is None else col, dtype)


#: Take plain numeric Parquet columns straight from their Arrow buffers (:func:`_plain_columns`);
#: off: every column through ``to_pandas`` (the frames are the same; tests compare).
_LEAN_PARQUET = True
_PLAIN_ARROW = {
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float",
    "double",
    "bool",
}


def _plain_columns(table, coded: list[str], owned: bool = False) -> dict[str, np.ndarray] | None:
    """The columns of ``table`` (not in ``coded``) that ``to_pandas`` gives as plain numpy arrays of
    their Arrow type: integers, floats (not half) and booleans without nulls, whose stored pandas
    metadata (if any) names the same numpy dtype and the same column name; as writable numpy
    arrays. None when the table's pandas metadata stores an index column or renames a column
    (``to_pandas`` then makes an index or other names: the whole table goes through it).
    ``owned``: the caller alone holds ``table`` (a batch the reader decoded, used once): a column
    of one chunk is then a writable view of its decoded buffer (:func:`_owned_array`), no copy."""
    meta = table.schema.pandas_metadata
    stored: dict[str, Any] = {}
    if meta is not None:
        if any(not isinstance(ix, dict) for ix in meta.get("index_columns", [])):
            return None  # (a range index is metadata only; a named index is a column)
        for m in meta.get("columns", []):
            if m.get("name") != m.get("field_name"):
                return None
            stored[m.get("field_name")] = m.get("numpy_type")
    out = {}
    for c, col in zip(table.column_names, table.columns):
        if c in coded or str(col.type) not in _PLAIN_ARROW or col.null_count:
            continue
        if meta is not None and c in stored and stored[c] != col.type.to_pandas_dtype().__name__:
            continue  # (e.g. a pandas nullable "Int64" stored as int64: to_pandas restores it)
        out[c] = _owned_array(col) if owned else _writable(col.to_numpy())
    return out


def _owned_array(col: Any) -> np.ndarray:
    """A plain numeric column without nulls (:func:`_plain_columns`) of a table whose caller alone
    holds it, as a writable numpy array: a view of its values buffer when that is one chunk and
    a mutable buffer (what Arrow's Parquet reader allocates and fills for each batch: writing
    into it changes only the rows of this column of this batch), else a writable copy."""
    if col.num_chunks == 1:
        ch = col.chunk(0)
        bufs = ch.buffers()
        t = ch.type
        if len(bufs) == 2 and bufs[1] is not None and bufs[1].is_mutable and t.bit_width % 8 == 0 and t.bit_width:
            dt = np.dtype(t.to_pandas_dtype())
            if dt.itemsize * 8 == t.bit_width:
                return np.frombuffer(bufs[1], dtype=dt, count=len(ch), offset=ch.offset * dt.itemsize)
    return _writable(col.to_numpy())


def _writable(a: np.ndarray) -> np.ndarray:
    """``a``, or a writable copy of it when it is read-only (a view of an Arrow buffer: pandas
    writes into a frame's arrays in place). The copy's memory comes from pyarrow's memory pool,
    which keeps freed memory for the next chunk: a fresh allocation per chunk costs the first
    touch of every page (~250 us for 400 KB against ~15 us for the copy itself)."""
    if a.flags.writeable:
        return a
    if a.dtype.hasobject:
        return a.copy()
    import pyarrow as pa

    out = np.frombuffer(pa.allocate_buffer(a.nbytes), dtype=a.dtype)
    if a.nbytes:
        np.copyto(out, a)
    return out.reshape(a.shape)


def _dictionary_parts(col: Any) -> list[tuple[list, np.ndarray]]:
    """A pyarrow dictionary column's pieces as (values, codes into them; -1 for a null)."""
    parts = []
    for ch in col.chunks:
        d = ch.dictionary.to_pylist()
        idx = ch.indices
        if idx.null_count:
            idx = idx.fill_null(-1)
        parts.append((d, idx.to_numpy(zero_copy_only=False)))
    return parts


def _local_categorical(col: Any) -> Any:
    """A pyarrow dictionary column (one dictionary per parsed block) as one Categorical of the
    block's values (first-seen order across the blocks; a null as code -1)."""
    import pandas as pd

    table: dict = {}
    parts = []
    for ch in col.chunks:
        d = ch.dictionary.to_pylist()
        m = np.fromiter((table.setdefault(v, len(table)) for v in d), dtype=np.int64, count=len(d))
        idx = ch.indices
        nulls = idx.null_count > 0
        if nulls:  # a null: the code after the dictionary's, mapped to -1
            idx = idx.fill_null(len(d))
        parts.append((m, idx.to_numpy(zero_copy_only=False), nulls))
    values = list(table)
    cd = _code_dtype(len(values))
    out = []
    for m, idx, nulls in parts:  # (a dictionary in the column's order, no null: its indices as they are)
        same = not nulls and (len(m) == 0 or bool(m[-1] == len(m) - 1 and np.all(m == np.arange(len(m)))))
        out.append(idx.astype(cd) if same else np.take(np.append(m, -1).astype(cd), idx))
    codes = (np.concatenate(out) if len(out) > 1 else out[0]) if out else np.empty(0, dtype=cd)
    # (every code is in range by construction: the check is skipped)
    return pd.Categorical.from_codes(codes, dtype=_categories(values), validate=False)


def _categories(values: list) -> Any:
    """The CategoricalDtype of ``values`` (unordered, object categories); the last few small ones
    are kept, so that blocks with the same values share one dtype (building one costs ~50 us)."""
    import pandas as pd

    if len(values) > 256:
        return pd.CategoricalDtype(pd.Index(values, dtype=object))
    key = tuple((type(v), v) for v in values)  # ("1" and 1, 1 and True are other values)
    got = _DTYPES.get(key)
    if got is None:
        if len(_DTYPES) >= 64:
            _DTYPES.clear()
        got = _DTYPES[key] = pd.CategoricalDtype(pd.Index(values, dtype=object))
    return got


_DTYPES: dict = {}


class _CodedText:
    """A text column of a block coded by the compiled CSV parser: each row's code (int32, the
    block's values in first-seen order) and the values (str)."""

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: list) -> None:
        self.codes, self.values = codes, values

    def categorical(self) -> Any:
        """The column as :func:`_text_categorical` makes it from pyarrow's strings: a Categorical
        of the block's values in first-seen order."""
        import pandas as pd

        # (the kernel's codes are in range by construction: the check is skipped; blocks with the
        # same values share one dtype)
        codes = self.codes.astype(_code_dtype(len(self.values)))
        return pd.Categorical.from_codes(codes, dtype=_categories(self.values), validate=False)

    def array(self) -> np.ndarray:
        """The column's values (an object array of str)."""
        values = np.empty(len(self.values), dtype=object)
        values[:] = self.values
        return values[self.codes]


class _PendingFrame:
    """A parsed CSV block's columns (numpy arrays; the coded text columns as Arrow strings, or as
    :class:`_CodedText` from the compiled parser), made a frame by :meth:`build` where the block
    is used (the caller's thread when the reader reads ahead: the thread that reads only parses)."""

    __slots__ = ("cols", "rows")

    def __init__(self, cols: dict, rows: int) -> None:
        self.cols, self.rows = cols, rows

    def __len__(self) -> int:
        return self.rows

    def build(self, vocabs: dict) -> Any:
        """The frame: each column an array of its own (pyarrow's output, copied where it is a
        read-only view of an Arrow buffer: :func:`_writable`), taken as it is, without consolidating copies; a text
        column read for coding is coded while ``vocabs`` (the reader's running vocabularies) has
        it, else its values (a vocabulary that passed ``MAX_CODES`` since the block was read)."""
        return self.block(vocabs).frame()

    def block(self, vocabs: dict) -> _ArrowBlock:
        """The columns :meth:`build` makes a frame of, as an :class:`_ArrowBlock`."""
        cols = {}
        text = False  # (an object column: a Series keeps it object, not pandas' string dtype)
        for c, v in self.cols.items():
            if type(v) is _CodedText:  # coded by the compiled parser
                if c in vocabs:
                    voc = vocabs[c]
                    got = None if voc is None else voc.known([(v.values, v.codes)])
                    cols[c] = v.categorical() if got is None else got
                    continue
                v = v.array()
            elif not isinstance(v, np.ndarray):  # a text column read for coding
                if c in vocabs:
                    cols[c] = _text_categorical(v)
                    continue
                v = v.to_numpy(zero_copy_only=False)
            v = _writable(v)
            text = text or v.dtype == object
            cols[c] = v
        return _ArrowBlock(list(cols), cols, None, self.rows, series=text)


def _column_series(v: Any) -> Any:
    """A column of :meth:`_PendingFrame.build` as a Series (an object array stays object)."""
    import pandas as pd

    if isinstance(v, np.ndarray):
        return pd.Series(v, dtype=object if v.dtype == object else v.dtype, copy=False)
    return pd.Series(v, copy=False)  # (a Categorical)


def _text_frame(rows: list[list[str]], names: list[str], use: list[str]) -> Any:
    """Rows of text fields (the line-by-line path) as a frame of the columns ``use``."""
    import pandas as pd

    if len(use) == len(names):
        return pd.DataFrame(rows, columns=names, dtype=object)
    at = [names.index(c) for c in use]
    return pd.DataFrame([[r[j] for j in at] for r in rows], columns=use, dtype=object)


def _check_usecols(usecols: Any) -> None:
    """``usecols``: a non-empty sequence of column names (a string is refused: it is one name)."""
    if isinstance(usecols, (str, bytes)) or not usecols:
        raise ValueError(f"usecols must be a non-empty sequence of column names, got {usecols!r}")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _built(frame: Any, vocabs: dict) -> Any:
    """``frame``, or the frame of a pending block (see :meth:`_PendingFrame.build`,
    :meth:`_ArrowBlock.frame`)."""
    if type(frame) is _ArrowBlock:
        return frame.frame()
    return frame.build(vocabs) if isinstance(frame, _PendingFrame) else frame


def _text_categorical(col: Any) -> Any:
    """A pyarrow string column (one chunk per parsed block) as one Categorical of the column's
    values in first-seen order (a null as code -1): the compiled ``text_codes_cpu`` codes each
    block's values from its offsets and bytes (one hash per row, no Python string per row; the
    numpy reference is ``clarion._reference.text_codes``), and the blocks' values are merged as
    :func:`_local_categorical` merges dictionaries."""
    import pandas as pd
    import pyarrow as pa

    text_codes = _io_kernel("text_codes")
    table: dict = {}
    parts = []
    for ch in col.chunks:
        n = len(ch)
        if n == 0:
            continue
        if ch.null_count or not (pa.types.is_string(ch.type) or pa.types.is_large_string(ch.type)):
            enc = ch.dictionary_encode()  # (nulls: their bytes are no value)
            d = enc.dictionary.to_pylist()
            idx = enc.indices
            if idx.null_count:
                idx = idx.fill_null(len(d))
            codes, values, nulls = idx.to_numpy(zero_copy_only=False), d, True
        else:
            wide = pa.types.is_large_string(ch.type)
            bufs = ch.buffers()
            offsets = np.frombuffer(
                bufs[1], dtype=np.int64 if wide else np.int32, count=n + 1, offset=ch.offset * (8 if wide else 4)
            )
            data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, dtype=np.uint8)
            codes, first = text_codes(offsets, data)
            values, nulls = ch.take(pa.array(first)).to_pylist(), False
        m = np.fromiter((table.setdefault(v, len(table)) for v in values), dtype=np.int64, count=len(values))
        parts.append((m, codes, nulls))
    values = list(table)
    cd = _code_dtype(len(values))
    out = []
    for m, codes, nulls in parts:  # each block's codes into the column's (its own when they agree)
        same = not nulls and bool(np.all(m == np.arange(len(m))))
        out.append(codes.astype(cd) if same else np.take(np.append(m, -1).astype(cd), codes))
    codes = (np.concatenate(out) if len(out) > 1 else out[0]) if out else np.empty(0, dtype=cd)
    dtype = pd.CategoricalDtype(pd.Index(values, dtype=object))
    return pd.Categorical.from_codes(codes, dtype=dtype)


#: Parse plain CSV blocks with the compiled ``csv_block_cpu`` (:meth:`Reader._csv_compiled`); off:
#: always the pyarrow path (tests compare the two).
_COMPILED_CSV = True
_CSV_BLOCK_KINDS = {"int": 1, "float": 2}  # the sampled types it reads (text: 3, coded columns)
_CSV_BLOCK_MAX_BYTES = 2**31 - 1  # (its codes are int32)

# A CSV line the csv module and pyarrow read alike: unquoted fields without quotes, or fields
# wholly quoted with doubled quotes inside.
_CSV_QUOTED = re.compile(rb'(?:"(?:[^"]|"")*"|[^",]*)(?:,(?:"(?:[^"]|"")*"|[^",]*))*')
_INT_TEXT = r"^-?[0-9]+$"


#: Decide the sampled type of a column of short plain numbers or of plain words without parsing
#: each value with pandas (:func:`_sample_kind`); off: always the general rule (tests compare).
_FAST_SAMPLE = True
_SAMPLE_INT = re.compile(r"-?[0-9]{1,15}")
_SAMPLE_DEC = re.compile(r"-?([0-9]{1,15})\.([0-9]{1,15})")
# ASCII text that no number parser reads as a number (no digit, no "inf"); NaN text is no number
# for the type rule either
_SAMPLE_WORD = re.compile(r"(?![\s\S]*[iI][nN][fF])[^0-9]*")


def _sample_kind(values: np.ndarray) -> str | None:
    """The type rule of :meth:`Reader._infer_types` for a sampled column of Python strings, where
    it is decided without pandas: "text" when more values than the rule forgives are words
    (ASCII without a digit or "inf": not numbers whatever the parser), "int" / "float" when every
    non-blank value is a plain decimal of at most 15 digits (``-12``, ``3.50``: exact, parsed
    alike by every parser, integral exactly when its fraction is zeros); None otherwise (the
    general rule decides).

    The usual columns (all words, all plain integers, all plain decimals) are decided by one
    pattern over the values joined by line breaks (:func:`_sample_kind_whole`); any other sample
    value by value (:func:`_sample_kind_each`, the same answers)."""
    if set(map(type, values)) - {str}:  # (C-level loops: a sample is 1,000 values a column)
        return None
    nonempty = list(filter(str.strip, values))
    if not nonempty:
        return "text"  # (no value to decide on: not numeric)
    quick = _sample_kind_whole(nonempty, len(nonempty) > 1)
    return _sample_kind_each(nonempty) if quick is _EACH else quick


#: the pandas types (Parquet's pandas metadata) of the columns :func:`_parquet_sample_kinds` types
_PQ_SAMPLE_PANDAS_TYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    + ["float16", "float32", "float64", "unicode"]
)


def _parquet_sample_kinds(path: str, pf: Any = None) -> dict[str, str] | None:
    """The sampled kinds of a Parquet file's columns from its first ``TYPE_SAMPLE_ROWS`` rows as
    Arrow columns, where they are what :meth:`Reader._infer_types` gives for those rows as pandas
    frames: booleans and numbers without a null typed by their Arrow type (bool: not numeric;
    uint64: "uint"; other integers "int"; floats "float"), strings without a null by
    :func:`_sample_kind_whole` on their distinct values (as :func:`_sample_kind`). None (the
    frames decide) for any other file: a null in the sample, another type, a stored index or a
    renamed column in the pandas metadata, no rows, a string column that the whole-sample rule
    does not decide, or an error while reading. ``pf``: the file opened (``pyarrow.parquet.
    ParquetFile``), if it is.

    Only the string columns are read (and any other whose row groups' statistics do not say it
    has no null where the sample is: :func:`_sample_without_nulls`); a boolean or number column is
    typed by its Arrow type alone."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        if pf is None:
            pf = pq.ParquetFile(path)
        if pf.metadata.num_rows == 0:
            return None
        schema = pf.schema_arrow
        meta = schema.pandas_metadata
        if meta is not None:
            if any(not isinstance(i, dict) for i in meta.get("index_columns") or []):
                return None  # (a stored index: not a column of the frames)
            by_field = {c.get("field_name"): c for c in meta.get("columns") or []}
            for field in schema:
                c = by_field.get(field.name)
                if c is None or c.get("name") != field.name:
                    return None
                kind = c.get("pandas_type")
                text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
                if kind not in _PQ_SAMPLE_PANDAS_TYPES and not (text and kind == "object"):
                    return None  # (an object column of text: pandas 3 writes its strings so)
        kinds: dict[str, str] = {}
        read: list[str] = []
        clean = _sample_without_nulls(pf.metadata)
        for field in schema:
            name, t = field.name, field.type
            if pa.types.is_boolean(t):
                kinds[name] = "text"  # (not numeric)
            elif pa.types.is_integer(t):
                kinds[name] = "uint" if t == pa.uint64() else "int"
            elif pa.types.is_floating(t):
                kinds[name] = "float"
            elif pa.types.is_string(t) or pa.types.is_large_string(t):
                kinds[name] = ""  # (decided on its values below)
                read.append(name)
                continue
            else:
                return None
            if name not in clean:
                read.append(name)  # (its nulls are looked for in its values)
        if list(kinds) != list(schema.names):
            return None
        if not read:
            return kinds
        batches, n = [], 0
        for b in pf.iter_batches(batch_size=TYPE_SAMPLE_ROWS, columns=read):
            batches.append(b)
            n += b.num_rows
            if n >= TYPE_SAMPLE_ROWS:
                break
        table = pa.Table.from_batches(batches, schema=batches[0].schema).slice(0, TYPE_SAMPLE_ROWS)
        for name, col in zip(table.column_names, table.columns):
            if col.null_count:
                return None
            if kinds[name]:
                continue
            values = pc.unique(col).to_pylist()
            kind = _sample_kind_distinct(
                values, lambda i, col=col, values=values: int(pc.sum(pc.equal(col, values[i])).as_py() or 0)
            )
            if kind is None:
                return None
            kinds[name] = kind
        return kinds
    except Exception:  # noqa: BLE001 - the frames' way reads the file and gives the error
        return None


def _sample_without_nulls(meta: Any) -> set[str]:
    """The top-level columns of a Parquet file (its ``FileMetaData``) whose statistics say they
    hold no null in the row groups that hold the first ``TYPE_SAMPLE_ROWS`` rows: a column stored
    as one leaf of its own name, every such row group with a null count of 0."""
    rows, groups = 0, []
    for i in range(meta.num_row_groups):
        if rows >= TYPE_SAMPLE_ROWS:
            break
        groups.append(meta.row_group(i))
        rows += groups[-1].num_rows
    names = [meta.schema.column(j).path for j in range(meta.num_columns)]
    clean = set()
    for j, name in enumerate(names):
        if "." in name or names.count(name) > 1:
            continue  # (a nested column's leaf)
        for g in groups:
            st = g.column(j).statistics
            if st is None or not st.has_null_count or st.null_count != 0:
                break
        else:
            clean.add(name)
    return clean


def _coded_sample_kinds(frames: list) -> dict[str, str] | None:
    """The sampled kinds of a type sample that is one block of the compiled CSV parser (every
    column :class:`_CodedText`), each decided on the column's distinct values
    (:func:`_sample_kind_coded`): what :meth:`Reader._infer_types` gives for the block's frame,
    without building it. None when the sample is another or a column is not decided so."""
    if len(frames) != 1 or type(frames[0]) is not _PendingFrame or frames[0].rows > TYPE_SAMPLE_ROWS:
        return None
    kinds = {}
    for c, v in frames[0].cols.items():
        kind = _sample_kind_coded(v) if type(v) is _CodedText else None
        if kind is None:
            return None
        kinds[c] = kind
    return kinds


def _sample_kind_coded(text: _CodedText) -> str | None:
    """:func:`_sample_kind` of ``text.array()`` (a sampled CSV column coded by the compiled
    parser), decided on the column's distinct values where the whole-sample rule decides (every
    value a word, or every value a plain decimal: properties of the set of values; the row count
    matters only for "more than one word"); None where it does not (the caller then types the
    column from its values, as :func:`_sample_kind` would)."""
    return _sample_kind_distinct(text.values, lambda i: int(np.count_nonzero(text.codes == i)))


def _sample_kind_distinct(values: list, count: Any) -> str | None:
    """:func:`_sample_kind` of a column whose distinct values are ``values`` (each occurring;
    ``count(i)``: how many times ``values[i]`` does), where the whole-sample rule decides; None
    where it does not."""
    if set(map(type, values)) - {str}:
        return None
    nonblank = [i for i, v in enumerate(values) if v.strip()]
    if not nonblank:
        return "text"
    many = len(nonblank) > 1 or count(nonblank[0]) > 1
    quick = _sample_kind_whole([values[i] for i in nonblank], many)
    return None if quick is _EACH else quick


#: :func:`_sample_kind_whole`'s answer where the sample is decided value by value
_EACH = object()
_DIGIT_BYTES = b"0123456789"


def _sample_kind_whole(nonempty: list[str], many: bool) -> Any:
    """The whole-sample rule on the non-blank values ``nonempty`` (any multiplicity: the answer
    depends on which values occur, and ``many``, whether more than one value does): "text" when
    every value is a word, "int" / "float" when every value is a plain decimal of at most 15
    digits, else ``_EACH``. A word: ASCII without a digit or "inf" in any case (the joined text
    holds neither; neither can span a line break); a plain decimal: ``-?[0-9]+(\\.[0-9]+)?``
    (values of at most 15 characters have at most 15 digits; longer ones are counted by the
    pattern with the look-ahead)."""
    joined = "\n".join(nonempty)
    if joined.count("\n") != len(nonempty) - 1:  # (a value holds a line break of its own)
        return _EACH
    if many and joined.isascii():
        raw = joined.encode("ascii")
        if len(raw.translate(None, _DIGIT_BYTES)) == len(raw) and b"inf" not in raw.lower():
            return "text"  # every value a word: more than the rule forgives
    if max(map(len, nonempty)) <= 15:
        decimals = _SAMPLE_PLAIN_DECIMALS.fullmatch(joined) is not None
    else:
        decimals = _SAMPLE_ALL_DECIMALS.fullmatch(joined) is not None
    if decimals:
        return "float" if _SAMPLE_FRACTION.search(joined) is not None else "int"
    return _EACH


# the whole sample at once: plain decimals of at most 15 digits (the lookahead counts the digits of
# each value), and a fraction not all zeros
_SAMPLE_ALL_DECIMALS = re.compile(
    r"(?:(?=-?(?:[0-9]\.?){1,15}(?:\n|\Z))-?[0-9]+(?:\.[0-9]+)?)(?:\n(?=-?(?:[0-9]\.?){1,15}(?:\n|\Z))-?[0-9]+(?:\.[0-9]+)?)*"
)
# (the same without the digit count: for values of at most 15 characters)
_SAMPLE_PLAIN_DECIMALS = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:\n-?[0-9]+(?:\.[0-9]+)?)*")
_SAMPLE_FRACTION = re.compile(r"\.[0-9]*[1-9]")


def _sample_kind_each(nonempty: list[str]) -> str | None:
    """:func:`_sample_kind` of the non-blank values ``nonempty``, value by value."""
    words = sum(1 for v in nonempty if v.isascii() and _SAMPLE_WORD.fullmatch(v) is not None)
    if words > max(1, len(nonempty) // 100):
        return "text"
    integral = True
    for v in nonempty:
        if _SAMPLE_INT.fullmatch(v) is not None:
            continue
        m = _SAMPLE_DEC.fullmatch(v)
        if m is None or len(m.group(1)) + len(m.group(2)) > 15:
            return None
        integral = integral and m.group(2).strip("0") == ""
    return "int" if integral else "float"


def _blank_next_to_field_end(data: bytes) -> bool:
    """Whether a space in ``data`` may start or end a field, quoted or not (pyarrow's number
    parser trims those; such a block is converted column by column, as pandas reads the text).
    A space inside a text value (``a b``, ``"say ""hi"" "``) is not one."""
    arr = np.frombuffer(data, dtype=np.uint8)
    pad = np.concatenate([_EDGE_PAD, arr, _EDGE_PAD])
    at = np.flatnonzero(pad == 32)
    edge = _FIELD_EDGE
    prev1, prev2, next1, next2 = pad[at - 1], pad[at - 2], pad[at + 1], pad[at + 2]
    return bool(
        np.isin(prev1, edge).any()
        or np.isin(next1, edge).any()
        or ((prev1 == 34) & np.isin(prev2, edge)).any()  # an opening quote, then a space
        or ((next1 == 34) & np.isin(next2, edge)).any()  # a space, then a closing quote
    )


_FIELD_EDGE = np.frombuffer(b",\n\r", dtype=np.uint8)
_EDGE_PAD = np.frombuffer(b"\n\n", dtype=np.uint8)  # the start and the end of the block are field edges


def _arrow_csv(data: bytes, names: list[str], types: dict, typed: bool = False, include: list[str] | None = None):
    """``data`` (whole CSV lines, no line break inside a value) parsed by ``pyarrow.csv`` with the
    given column types, or None when pyarrow rejects it. Text columns are exactly the strings the
    ``csv`` module gives (no NA conversion); with ``typed``, an empty numeric field is null. With
    ``include``, only those columns are converted (every line's field count is still checked)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        return pacsv.read_csv(
            pa.py_buffer(data),
            # blocks of >= 1 MiB parsed on pyarrow's threads (no line break inside a value here)
            read_options=pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(data) // 4 + 1)),
            parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=None if include is None or len(include) == len(names) else include,
                strings_can_be_null=False,
                quoted_strings_can_be_null=typed,
                null_values=[""] if typed else [],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None


class _Lines:
    """The lines of a binary file, split as text mode with ``newline=""`` splits them (on ``\\n``,
    ``\\r\\n`` and ``\\r``), iterable as text for ``csv.reader`` and taken in blocks of bytes for
    the vectorised parser (:meth:`take_block`); ``n`` counts the lines handed out. Bytes read ahead
    of the lines handed out wait in ``tail`` (they start at a line start)."""

    def __init__(self, fh, path: str) -> None:
        self.fh = fh
        self.path = path
        self.buf: deque[bytes] = deque()
        self.tail = b""
        self.eof = False
        self.n = 0
        self.line_bytes = 64.0  # mean bytes per line, from the blocks taken
        self.measured = False  # whether line_bytes was measured

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if not self.buf and self.tail:
            tail, self.tail = self.tail, b""
            if not tail.endswith(b"\n") and not self.eof:
                tail += self.fh.readline()  # complete the last line (also a \r\n cut in two)
            self.buf.extend(tail.splitlines(keepends=True))
        if self.buf:
            b = self.buf.popleft()
        else:
            b = self.fh.readline()
            if not b:
                raise StopIteration
            if b"\r" in b and b.count(b"\r") != b.count(b"\r\n"):
                parts = b.splitlines(keepends=True)
                b = parts[0]
                self.buf.extend(parts[1:])
        self.n += 1
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{self.path}: line {self.n}: " + MSG_NOT_UTF8.format(byte=b[exc.start], pos=exc.start + 1)
            ) from None

    def take_block(self, need: int):
        """The next lines up to and including the ``need``-th non-blank one (all that is left at the
        end of the file), as ``(data, kept, count)``: their bytes, the 1-based line numbers of the
        non-blank ones and how many lines they are. None (nothing taken) when a line in them ends
        in a lone ``\\r``: the line-by-line path reads those. Lines are found with one vectorised
        pass over bytes read in blocks; no Python object per line."""
        data = b"".join(self.buf) + self.tail
        self.buf.clear()
        self.tail = b""
        if not self.measured and not self.eof:  # the first block: the line length from 64 KiB
            more = self.fh.read(1 << 16)
            if more:
                data += more
            else:
                self.eof = True
            if data.count(b"\n"):
                self.line_bytes = len(data) / data.count(b"\n")
        self.measured = True
        # read about what ``need`` lines take, at the mean line length seen so far
        size = max(1 << 16, int(need * self.line_bytes * 1.02) + 4096 - len(data))
        while True:
            done = self.eof
            if not done:
                more = self.fh.read(size)
                if more:
                    data += more
                    size *= 2
                else:
                    self.eof = done = True
            # the lines up to the need-th non-blank one, blanks ("\n", "\r\n": no fields) passed over
            kept, count, cut, lone_cr = _csv_lines(np.frombuffer(data, dtype=np.uint8), need, done)
            if len(kept) >= need or done:
                break
            if count:  # read about what the missing lines take, at the lines' mean length
                size = max(size, int((need - len(kept)) * cut / count * 1.1) + 4096)
        if lone_cr:
            self.tail = data
            return None
        block, rest = data[:cut], data[cut:]
        self.tail = rest
        if count:
            self.line_bytes = len(block) / count
        first = self.n + 1
        self.n += count
        return block, (first + kept).astype(np.int64), count

    def unread(self, block: bytes, count: int) -> None:
        """Give back what :meth:`take_block` took."""
        self.tail = block + self.tail
        self.n -= count


def _csv_lines(data: np.ndarray, need: int, at_eof: bool) -> tuple[np.ndarray, int, int, bool]:
    """The lines of CSV bytes up to the ``need``-th non-blank one (see ``_Lines.take_block``):
    ``(kept, count, cut, lone_cr)`` from the compiled ``csv_lines_cpu`` (numpy reference:
    ``clarion._reference.csv_lines``)."""
    return _io_kernel("csv_lines")(data, need, at_eof)


def _io_kernel(name: str) -> Any:
    """The reader's compiled helper ``<name>_cpu``, or its numpy twin ``clarion._reference.<name>``
    (same results, slower) when the compiled extension is unavailable."""
    from clarion import _backend

    if _backend.has_core():
        return getattr(_backend.core(), f"{name}_cpu")
    from clarion import _reference

    return getattr(_reference, name)


class _CsvRecords:
    """``csv.reader`` records, with the csv module's errors (a field over its size limit, ...) as a
    DataError naming the line."""

    def __init__(self, reader, src: _Lines, path: str) -> None:
        self.reader, self.src, self.path = reader, src, path

    def __iter__(self):
        return self

    def __next__(self) -> list[str]:
        try:
            return next(self.reader)
        except csv.Error as exc:
            raise DataError(f"{self.path}: line {self.src.n}: {exc}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fast_number(col, kind: str):
    """A text column as numbers the way the precise path (:func:`_parse_numbers`,
    :func:`_number_column`) reads it, or None when any value needs the precise path (whitespace,
    NaN/inf text, hex, values where a float is not exact, not a number)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "bigint":
        return None
    empty = pc.equal(pc.binary_length(col), 0)
    col = pc.if_else(empty, pa.scalar(None, pa.string()), col)
    try:
        if kind in ("int", "uint") and pc.all(pc.match_substring_regex(col, _INT_TEXT)).as_py() is not False:
            if kind == "uint":
                if col.null_count or pc.any(pc.starts_with(col, "-")).as_py():
                    return None
                return col.cast(pa.uint64()).to_numpy(zero_copy_only=False)
            ints = col.cast(pa.int64())
            if ints.null_count:  # float64 with NaN: exact only below 2**53
                lo, hi = pc.min(ints).as_py(), pc.max(ints).as_py()
                if lo is not None and max(abs(lo), abs(hi)) >= _EXACT_FLOAT:
                    return None
            return ints.to_numpy(zero_copy_only=False)
        if kind == "uint":
            return None
        vals = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    vals = np.asarray(vals, dtype=np.float64)
    nan = np.isnan(vals)
    limit = _EXACT_FLOAT if kind == "int" else 2.0**63
    if int(nan.sum()) != col.null_count or not np.all(np.abs(vals[~nan]) < limit):
        return None
    return vals


def _concat_exact(frames: list) -> Any:
    """``pandas.concat`` of chunks (ignoring their index) that keeps integers exact: chunks may
    type an integer column differently (int64; float64 where a value is missing; exact Python
    numbers), and pandas would turn int64 beside float64 into float64, merging integers beyond
    2**53. Such a column becomes exact Python numbers (object) instead."""
    import pandas as pd

    if len(frames) > 1:
        cast = []
        for c in frames[0].columns:
            kinds = {f[c].dtype.kind for f in frames if c in f.columns}
            if len(kinds) > 1 and kinds & {"i", "u", "O"} and any(_beyond_float(f[c]) for f in frames if c in f):
                cast.append(c)
        if cast:
            frames = [f.astype({c: object for c in cast if c in f.columns}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def _beyond_float(col) -> bool:
    """Whether a column holds an integer that float64 cannot hold exactly."""
    kind = col.dtype.kind
    if kind in "iu":
        return len(col) > 0 and (int(col.max()) > _EXACT_FLOAT or int(col.min()) < -_EXACT_FLOAT)
    if kind == "O":
        return any(type(v) is int and abs(v) > _EXACT_FLOAT for v in col)
    return False


def _what(head: bytes) -> tuple[str | None, str | None]:
    """(what the file is, its dataset_type if clarion reads it) from its first bytes, or
    (None, None) for anything else (text)."""
    for magic, what, real in _MAGIC:
        if head.startswith(magic):
            return what, real
    return None, None


def _show(v: Any) -> str:
    """A value for a message, at most 40 characters."""
    t = v.strip() if isinstance(v, str) else repr(v)
    return t if len(t) <= 40 else f"{t[:18]}...{t[-18:]} ({len(t)} characters)"


_INT_LITERAL = re.compile(r"[+-]?[0-9]+")
_EXACT_FLOAT = 2.0**53  # integers up to this size are exact as float64


def _parse_numbers(col) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """A column as numbers, the way ``pandas.to_numeric`` reads text: ``(vals, exact, bad)``.

    ``vals`` is float64 (NaN for an empty or missing value); ``exact`` is None when every value is
    exactly its float, else the integer column itself (int64 / uint64), or an object array holding
    the exact value of each row (a Python int for an integer, even beyond float64's 53 bits, else
    the float); ``bad`` marks the non-empty values that are not numbers."""
    import pandas as pd

    n = len(col)
    if pd.api.types.is_numeric_dtype(col.dtype) and isinstance(col.dtype, np.dtype):
        arr = col.to_numpy()
        vals = arr.astype(np.float64)
        exact = None
        if arr.dtype.kind in "iu" and n and (int(arr.max()) > _EXACT_FLOAT or int(arr.min()) < -_EXACT_FLOAT):
            exact = arr  # an integer array is its own exact value
        return vals, exact, np.zeros(n, dtype=bool)
    s = col.astype(object)
    empty = (s.isna() | (s.astype(str).str.strip() == "")).to_numpy()
    clean = s.where(~empty, None)
    vals = None
    try:
        num = pd.to_numeric(clean, errors="coerce")
        if num.dtype != object:
            vals = num.to_numpy(np.float64)
    except (OverflowError, TypeError, ValueError):
        pass
    if vals is None:  # huge Python ints and the like: one value at a time
        vals = np.array([_float_of(v) for v in clean], dtype=np.float64)
    bad = np.isnan(vals) & ~empty
    # values whose float may not be exact: integers (as text or as ints) of 2**53 and beyond
    big = np.flatnonzero(~np.isnan(vals) & (np.abs(vals) >= _EXACT_FLOAT))
    exact = None
    if big.size:
        raw = clean.to_numpy(object)
        exact = vals.astype(object)
        for i in big:
            v = raw[i]
            if isinstance(v, str):
                t = v.strip()
                if _INT_LITERAL.fullmatch(t):
                    try:
                        exact[i] = int(t)
                    except ValueError:  # beyond Python's digit limit for int(str)
                        pass
            elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
                exact[i] = int(v)
    return vals, exact, bad


def _float_of(v: Any) -> float:
    """One value as ``pandas.to_numeric`` would read it (NaN when not a number)."""
    import pandas as pd

    if v is None or isinstance(v, (bool, np.bool_)):
        return float("nan")
    if isinstance(v, (int, np.integer)):
        try:
            return float(v)
        except OverflowError:
            return float("inf") if v > 0 else float("-inf")
    try:
        return float(pd.to_numeric(pd.Series([v], dtype=object), errors="coerce").astype(np.float64).iloc[0])
    except (OverflowError, TypeError, ValueError):
        return float("nan")


def _integral(vals: np.ndarray, exact: np.ndarray | None) -> np.ndarray:
    """Which values are integers (an exact Python int always is)."""
    if exact is not None and exact.dtype != object:
        return np.ones(len(vals), dtype=bool)
    with np.errstate(invalid="ignore"):  # inf: not integral
        out = np.mod(vals, 1) == 0
    if exact is not None:
        out |= np.fromiter((type(v) is int for v in exact), dtype=bool, count=len(exact))
    return out


def _out_of_int64(vals: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Integers beyond int64 (exact values; a non-integral float is not one)."""
    if exact.dtype != object:
        return exact > _INT64_MAX if exact.dtype.kind == "u" else np.zeros(len(exact), dtype=bool)
    cand = np.flatnonzero(~np.isnan(vals) & (np.abs(vals) >= 2.0**62))
    out = np.zeros(len(vals), dtype=bool)
    for i in cand:
        v = exact[i]
        if type(v) is float and (not np.isfinite(v) or v % 1):
            continue
        out[i] = not (_INT64_MIN <= int(v) <= _INT64_MAX)
    return out


def _number_column(vals: np.ndarray, exact: np.ndarray | None, kind: str, index):
    """A numeric column in its final dtype. "float": float64. "int": int64 when every value is an
    integer (none missing), else float64 when every value is exact as a float, else exact Python
    numbers (object). "uint": uint64 when every value is an integer in 0 .. 2**64 - 1, else exact
    Python numbers. "bigint" (integers no 64-bit type holds): decimal text, exact (``str`` of the
    integer, so that ``"007"`` and ``"7"`` are one value; missing as NaN), like any text column:
    values beyond 64 bits are identifiers, and a config value such as ``1e20`` is matched to
    them as text."""
    import pandas as pd

    if kind == "float":
        return pd.Series(vals, index=index, dtype=np.float64)
    if len(vals) == 0:
        return pd.Series([], index=index, dtype={"int": np.int64, "uint": np.uint64}.get(kind, object))
    if exact is not None and exact.dtype != object:  # an int64 / uint64 column: no value missing
        if kind == "int":  # (values beyond int64 were malformed records)
            return pd.Series(exact.astype(np.int64, copy=False), index=index)
        if kind == "uint" and (exact.dtype.kind == "u" or exact.min() >= 0):
            return pd.Series(exact.astype(np.uint64, copy=False), index=index)
        return _as_text(exact.astype(object), index)
    integral = _integral(vals, exact)
    if not np.isnan(vals).any() and bool(np.all(integral)) and kind != "bigint":
        if exact is None:  # every value exact as a float: below 2**53
            if kind == "int":
                return pd.Series(vals.astype(np.int64), index=index)
            if not np.any(vals < 0):
                return pd.Series(vals.astype(np.uint64), index=index)
        else:
            ints = [int(v) for v in exact]
            lo, hi = min(ints), max(ints)
            if kind == "int" and lo >= _INT64_MIN and hi <= _INT64_MAX:
                return pd.Series(np.array(ints, dtype=np.int64), index=index)
            if kind == "uint" and lo >= 0 and hi <= _UINT64_MAX:
                return pd.Series(np.array(ints, dtype=np.uint64), index=index)
    if kind == "int" and exact is None:
        return pd.Series(vals, index=index, dtype=np.float64)
    out = vals.astype(object) if exact is None else exact.copy()
    for i in np.flatnonzero(integral & np.isfinite(vals)):
        if type(out[i]) is float:
            out[i] = int(out[i])
    if kind == "bigint":
        return _as_text(out, index)
    return pd.Series(out, index=index, dtype=object)


def _as_text(values: np.ndarray, index):
    """Exact numbers as decimal text (NaN stays missing)."""
    import pandas as pd

    return pd.Series([v if type(v) is float and math.isnan(v) else str(v) for v in values], index=index, dtype=object)


def read_dataset(
    path: str | os.PathLike,
    dataset_type: str,
    *,
    headers: list[str] | None = None,
    features: str | None = None,
    label: str | int | None = None,
    predicted_label: str | int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    skip_bad_rows: bool = False,
    required: tuple[str, ...] = (),
    codes: tuple[str, ...] = (),
    prefetch: bool = True,
    usecols: tuple[str, ...] | list[str] | None = None,
) -> Reader:
    """A chunked reader of ``path`` in one of Clarify's dataset types.

    Parameters
    ----------
    path : path
        The input file.
    dataset_type : {"text/csv", "application/jsonlines", "application/json", "application/x-parquet"}
    headers : list of str, optional
        Column names. CSV: when the file's first line equals them it is skipped as a header;
        otherwise every line is data (a first line with the same names in another order, one that
        looks like a header with other names, or headers of another length than the file's
        column count are a DataError naming ``headers``). Without headers the CSV's first line is
        the header. JSON records that are objects: see the module's notes. Parquet: the columns.
    features, label, predicted_label : str, optional
        JMESPath expressions for JSON Lines / JSON records (Clarify's addressing).
    chunk_rows : int
        Rows per chunk.
    skip_bad_rows : bool
        Skip and count malformed records instead of raising :class:`DataError`.
    required : tuple of str
        Columns that must be present and non-empty in every row (e.g. the label).
    codes : tuple of str
        CSV and Parquet: columns to give as dictionary codes where they hold text (not typed
        numeric by the sample): each chunk has them as a ``pandas.Categorical`` whose categories are
        the values seen so far in the file, in first-seen order (one categories object across
        chunks while no new value appears; code -1 for a Parquet null), parsed as codes by pyarrow
        (no Python string per row). ``Chunk.coded`` names them and ``Chunk.plain()`` is the frame
        without codes. A column passing ``MAX_CODES`` distinct values is given as values from the
        chunk where it would. Other formats ignore it.
    prefetch : bool
        CSV and Parquet: read and parse the next chunks on a thread while the caller uses the
        current one (at most :data:`PREFETCH_BLOCKS` + 1 chunks held: three). The chunks, ``skipped``,
        ``skipped_examples`` and every error (raised when the caller asks for the chunk that
        meets it) are the same as without; the thread ends with the iteration (its end, an
        error, or the caller stopping early). Other formats ignore it.
    usecols : sequence of str, optional
        The columns the chunks hold (in the file's order; default: every column). The others are
        not converted and their values not checked (a non-number in an unused numeric column is
        no error), but a CSV line's field count and the file's UTF-8 still are; Parquet reads only
        these columns. ``Reader.columns()`` still names every column. A name that is no column,
        or a ``required`` column left out, is a :class:`DataError` (raised when the chunks are
        read).
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DataError(f"{p}: file not found")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if headers is not None:
        names = [str(h) for h in headers]
        dup = sorted({h for h in names if names.count(h) > 1})
        if dup:
            raise DataError(f"{p}: `headers` lists {dup} more than once")
    reader = Reader(
        p, dataset_type, headers, features, label, predicted_label, chunk_rows, skip_bad_rows, required, tuple(codes)
    )
    reader.prefetch = bool(prefetch)
    if usecols is not None:
        _check_usecols(usecols)
        reader.usecols = tuple(str(c) for c in usecols)
    return reader
