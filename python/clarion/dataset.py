"""Reading analysis input files in chunks: CSV, JSON Lines, tabular JSON and Parquet.

Every reader yields :class:`Chunk` objects (a pandas DataFrame plus the global index of its first
row and the source line numbers), so that bias counts accumulate chunk by chunk and memory stays
bounded. Malformed records raise :class:`DataError` naming the file, the line (or record) number
and the column; with ``skip_bad_rows=True`` they are skipped and counted instead (the count is in
:attr:`Reader.skipped`).

Column types are fixed from the first 1,000 rows, whatever the chunk size: a column whose sampled
values parse as numbers (all but 1%, or all but one) is numeric, and a non-numeric value in it is a
malformed record (not a silent NaN).
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np

__all__ = ["Chunk", "DataError", "Reader", "read_dataset"]

DEFAULT_CHUNK_ROWS = 200_000
TYPE_SAMPLE_ROWS = 1000


class DataError(ValueError):
    """A malformed input record; the message names the file, the line/record and the column."""


@dataclass
class Chunk:
    """A block of input rows. ``start`` is the global index of its first (kept) row."""

    frame: Any  # pandas.DataFrame
    start: int
    lines: np.ndarray  # 1-based source line (CSV, JSON Lines) or record number of every row


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
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    _numeric: dict[str, str] | None = None

    def __iter__(self) -> Iterator[Chunk]:
        self.skipped = 0
        self.skipped_examples = []
        self._numeric = None
        kind = self.dataset_type
        it = self._raw(kind)
        self._numeric = self._infer_types(kind)
        self.skipped = 0
        self.skipped_examples = []
        start = 0
        for frame, lines in it:
            frame, lines = self._typed(frame, lines)
            if len(frame) == 0:
                continue
            yield Chunk(frame.reset_index(drop=True), start, lines)
            start += len(frame)

    def _raw(self, kind: str):
        if kind == "text/csv":
            return self._csv()
        if kind == "application/jsonlines":
            return self._jsonlines()
        if kind == "application/json":
            return self._json()
        if kind == "application/x-parquet":
            return self._parquet()
        raise ValueError(f"dataset_type {kind!r} is not readable by clarion")

    def _infer_types(self, kind: str) -> dict[str, str]:
        """Numeric columns, from the first TYPE_SAMPLE_ROWS rows whatever the chunk size: a text
        column is numeric when most of its non-empty sampled values parse as numbers and at most
        1% of them (or one value) do not."""
        import pandas as pd

        frames, n = [], 0
        for frame, _ in self._raw(kind):
            frames.append(frame)
            n += len(frame)
            if n >= TYPE_SAMPLE_ROWS:
                break
        numeric: dict[str, str] = {}
        if not frames:
            return numeric
        sample = pd.concat(frames, ignore_index=True).iloc[:TYPE_SAMPLE_ROWS]
        for c in sample.columns:
            col = sample[c]
            if pd.api.types.is_bool_dtype(col.dtype):
                continue
            if pd.api.types.is_numeric_dtype(col.dtype):
                numeric[c] = "int" if pd.api.types.is_integer_dtype(col.dtype) else "float"
                continue
            nonempty = col[col.notna()].astype(str)
            nonempty = nonempty[nonempty.str.strip().str.len() > 0]
            if len(nonempty) == 0:
                continue
            num = pd.to_numeric(nonempty, errors="coerce")
            ok = num.notna()
            bad = int((~ok).sum())
            if ok.mean() > 0.5 and bad <= max(1, len(ok) // 100):
                vals = num[ok].to_numpy(float)
                with np.errstate(invalid="ignore"):  # inf text: a float column
                    numeric[c] = "int" if np.all(np.mod(vals, 1) == 0) else "float"
        return numeric

    def read_all(self) -> tuple[Any, np.ndarray]:
        """The whole file as one DataFrame, plus source line numbers."""
        import pandas as pd

        chunks = list(self)
        if not chunks:
            raise DataError(f"{self.path}: no data rows")
        return (pd.concat([c.frame for c in chunks], ignore_index=True),
                np.concatenate([c.lines for c in chunks]))

    # ---- errors ---------------------------------------------------------------------------------

    def _bad(self, where: str, message: str) -> None:
        text = f"{self.path}: {where}: {message}"
        if not self.skip_bad_rows:
            raise DataError(text)
        self.skipped += 1
        if len(self.skipped_examples) < 5:
            self.skipped_examples.append(text)

    # ---- type fixing shared by all formats ------------------------------------------------------

    def _typed(self, frame, lines):
        """Apply the first chunk's column types; find unparseable numbers and missing required values."""
        import pandas as pd

        unit = "line" if self.dataset_type in ("text/csv", "application/jsonlines") else "record"
        keep = np.ones(len(frame), dtype=bool)
        out = {}
        for c in frame.columns:
            col = frame[c]
            if c in self._numeric and not pd.api.types.is_numeric_dtype(col.dtype):
                s = col.astype(object)
                empty = s.isna() | (s.astype(str).str.strip() == "")
                num = pd.to_numeric(s.where(~empty, None), errors="coerce")
                bad = np.flatnonzero((num.isna() & ~empty).to_numpy())
                for i in bad:
                    if keep[i]:
                        self._bad(f"{unit} {lines[i]}, column {c!r}", f"{s.iloc[i]!r} is not a number")
                        keep[i] = False
                col = num
            out[c] = col
        frame = pd.DataFrame(out)
        for c in self.required:
            if c not in frame.columns:
                raise DataError(f"{self.path}: column {c!r} not found (columns: {list(frame.columns)})")
            col = frame[c]
            missing = col.isna().to_numpy().copy()  # pandas 3 hands out read-only views
            if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
                missing |= (col.astype(str).str.len() == 0).to_numpy()
            for i in np.flatnonzero(missing & keep):
                self._bad(f"{unit} {lines[i]}, column {c!r}", "missing value")
                keep[i] = False
        if not keep.all():
            frame = frame[keep]
            lines = lines[keep]
        for c, kind in self._numeric.items():
            if c not in frame.columns:
                continue
            vals = pd.to_numeric(frame[c], errors="coerce")
            with np.errstate(invalid="ignore"):  # inf: not integral
                integral = kind == "int" and vals.notna().all() and np.all(np.mod(vals.to_numpy(float), 1) == 0)
            frame[c] = vals.astype(np.int64) if integral else vals.astype(np.float64)
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
        import csv

        import pandas as pd

        with open(self.path, "rb") as fh:
            src = _Lines(fh)
            reader = csv.reader(src)
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
                names, pending = list(self.headers), (first, src.n)
            if len(set(names)) != len(names):
                raise DataError(f"{self.path}: duplicate column names in the header")
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
                    yield pd.DataFrame(rows, columns=names, dtype=object), np.asarray(lines, dtype=np.int64)
                    continue
                fast = self._csv_fast(src, names, need)
                if fast is not None:
                    frame, flines = fast
                    if len(frame) == 0 and not rows:
                        return
                    if rows:
                        head = pd.DataFrame(rows, columns=names, dtype=object)
                        frame = pd.concat([head, frame], ignore_index=True) if len(frame) else head
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
                    yield pd.DataFrame(rows, columns=names, dtype=object), np.asarray(lines, dtype=np.int64)
                if done:
                    return

    def _csv_fast(self, src: _Lines, names: list[str], need: int):
        """The next ``need`` non-blank lines parsed by pyarrow, or None (lines given back to
        ``src``) when the line-by-line path must read them."""
        import pandas as pd
        import pyarrow as pa
        import pyarrow.csv as pacsv

        block = src.take(need)
        if not block:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in names}), np.zeros(0, dtype=np.int64)
        blank = _blank(block)
        while len(block) - int(blank.sum()) < need:
            more = src.take(need - (len(block) - int(blank.sum())))
            if not more:
                break
            block.extend(more)
            blank = np.concatenate([blank, _blank(more)])
        first_line = src.n - len(block) + 1
        data = b"".join(block)
        ok = True
        if b'"' in data:
            ok = all(_CSV_QUOTED.fullmatch(b.rstrip(b"\r\n")) is not None for b in block if b'"' in b)
        table = None
        if ok:
            try:
                table = pacsv.read_csv(
                    pa.py_buffer(data),
                    read_options=pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(data) + 1)),
                    parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
                    convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                         strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                         null_values=[]))
            except (pa.ArrowInvalid, pa.ArrowException):
                table = None
        kept = np.flatnonzero(~blank)
        if table is None or table.num_rows != len(kept):
            src.unread(block)
            return None
        out = {}
        for c in names:
            col = table.column(c)
            vals = _fast_number(col, self._numeric[c]) if self._numeric and c in self._numeric else None
            out[c] = pd.Series(col.to_numpy(zero_copy_only=False) if vals is None else vals,
                               dtype=object if vals is None else vals.dtype)
        return pd.DataFrame(out), (first_line + kept).astype(np.int64)

    def _jsonlines(self):
        import jmespath

        feat = jmespath.compile(self.features) if self.features else None
        lab = jmespath.compile(str(self.label)) if isinstance(self.label, str) else None
        pred = jmespath.compile(str(self.predicted_label)) if isinstance(self.predicted_label, str) else None
        rows, lines, names = [], [], None
        with open(self.path, encoding="utf-8") as fh:
            for lineno, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError as exc:
                    self._bad(f"line {lineno}", f"invalid JSON ({exc.msg})")
                    continue
                if feat is not None:
                    values = feat.search(rec)
                    if isinstance(values, dict):
                        names_here = list(values)
                        values = list(values.values())
                    else:
                        names_here = None
                    if not isinstance(values, list):
                        self._bad(f"line {lineno}", f"features {self.features!r} did not select a list")
                        continue
                    row = list(values)
                    if names is None:
                        names = names_here
                elif isinstance(rec, dict):
                    row = list(rec.values())
                    names = names or list(rec)
                else:
                    row = list(rec)
                extra = []
                if lab is not None:
                    extra.append(lab.search(rec))
                if pred is not None:
                    extra.append(pred.search(rec))
                rows.append(row + extra)
                lines.append(lineno)
                if len(rows) >= self.chunk_rows:
                    yield self._frame_from_rows(rows, names, lines)
                    rows, lines = [], []
        if rows:
            yield self._frame_from_rows(rows, names, lines)

    def _frame_from_rows(self, rows, names, lines):
        import pandas as pd

        widths = {len(r) for r in rows}
        headers = self._jsonl_headers(names, max(widths))
        expected = len(headers)
        keep_rows, keep_lines = [], []
        for r, ln in zip(rows, lines):
            if len(r) != expected:
                self._bad(f"line {ln}", f"expected {expected} values, got {len(r)}")
                continue
            keep_rows.append(r)
            keep_lines.append(ln)
        return pd.DataFrame(keep_rows, columns=headers), np.asarray(keep_lines, dtype=np.int64)

    def _jsonl_headers(self, names, width):
        extra = [x for x in (self.label, self.predicted_label) if isinstance(x, str)]
        if self.headers is not None:
            if len(self.headers) != width:
                raise DataError(f"{self.path}: headers has {len(self.headers)} names but records have {width} values")
            return list(self.headers)
        n_feat = width - len(extra)
        base = names if names is not None and len(names) == n_feat else [f"column_{i}" for i in range(n_feat)]
        return list(base) + [str(e) for e in extra]

    def _json(self):
        import jmespath

        with open(self.path, encoding="utf-8") as fh:
            try:
                doc = json.load(fh)
            except json.JSONDecodeError as exc:
                raise DataError(f"{self.path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        if self.features is None:
            raise DataError(f"{self.path}: application/json needs the features JMESPath")
        rows = jmespath.search(self.features, doc)
        if not isinstance(rows, list):
            raise DataError(f"{self.path}: features {self.features!r} did not select a list of records")
        cols = [rows]
        for path in (self.label, self.predicted_label):
            if isinstance(path, str):
                v = jmespath.search(path, doc)
                if not isinstance(v, list) or len(v) != len(rows):
                    raise DataError(f"{self.path}: {path!r} did not select a list of {len(rows)} values")
                cols.append(v)
        full = [list(r) + [c[i] for c in cols[1:]] for i, r in enumerate(rows)]
        lines = np.arange(1, len(full) + 1, dtype=np.int64)
        for s in range(0, len(full), self.chunk_rows):
            yield self._frame_from_rows(full[s : s + self.chunk_rows], None, lines[s : s + self.chunk_rows])

    def _parquet(self):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.path)
        start = 1
        for batch in pf.iter_batches(batch_size=self.chunk_rows):
            frame = batch.to_pandas()
            if self.headers is not None:
                missing = [h for h in self.headers if h not in frame.columns]
                if missing:
                    raise DataError(f"{self.path}: columns {missing} from headers not found in the Parquet file")
                frame = frame[list(self.headers)]
            lines = np.arange(start, start + len(frame), dtype=np.int64)
            start += len(frame)
            yield frame, lines



# A CSV line the csv module and pyarrow read alike: unquoted fields without quotes, or fields
# wholly quoted with doubled quotes inside.
_CSV_QUOTED = re.compile(rb'(?:"(?:[^"]|"")*"|[^",]*)(?:,(?:"(?:[^"]|"")*"|[^",]*))*')
_INT_TEXT = r"^-?[0-9]+$"


class _Lines:
    """The lines of a binary file, split as text mode with ``newline=""`` splits them (on ``\\n``,
    ``\\r\\n`` and ``\\r``), iterable as text for ``csv.reader`` and taken in blocks of bytes for
    the vectorised parser; ``n`` counts the lines handed out."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.buf: deque[bytes] = deque()
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
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
        return b.decode("utf-8")

    def take(self, k: int) -> list[bytes]:
        out = [self.buf.popleft() for _ in range(min(k, len(self.buf)))]
        if len(out) < k:
            more = list(islice(self.fh, k - len(out)))
            data = b"".join(more)
            if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
                more = data.splitlines(keepends=True)
                self.buf.extendleft(reversed(more[k - len(out):]))
                more = more[: k - len(out)]
            out.extend(more)
        self.n += len(out)
        return out

    def unread(self, block: list[bytes]) -> None:
        self.buf.extendleft(reversed(block))
        self.n -= len(block)


def _blank(block: list[bytes]) -> np.ndarray:
    """Which lines are empty (the csv module reads no fields from them)."""
    blank = np.fromiter(map(len, block), dtype=np.int64, count=len(block)) <= 2
    for i in np.flatnonzero(blank):
        blank[i] = block[i].strip(b"\r\n") == b""
    return blank


def _fast_number(col, kind: str):
    """A text column as numbers the way ``pandas.to_numeric`` reads it, or None when any value
    needs the precise path (whitespace, NaN/inf text, hex, huge values, not a number)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    empty = pc.equal(pc.binary_length(col), 0)
    col = pc.if_else(empty, pa.scalar(None, pa.string()), col)
    try:
        if kind == "int" and pc.all(pc.match_substring_regex(col, _INT_TEXT)).as_py() is not False:
            return col.cast(pa.int64()).to_numpy(zero_copy_only=False)
        vals = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    vals = np.asarray(vals, dtype=np.float64)
    nan = np.isnan(vals)
    if int(nan.sum()) != col.null_count or not np.all(np.abs(vals[~nan]) < 2.0**63):
        return None
    return vals


def read_dataset(path: str | os.PathLike, dataset_type: str, *, headers: list[str] | None = None,
                 features: str | None = None, label: str | int | None = None,
                 predicted_label: str | int | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 skip_bad_rows: bool = False, required: tuple[str, ...] = ()) -> Reader:
    """A chunked reader of ``path`` in one of Clarify's dataset types.

    Parameters
    ----------
    path : path
        The input file.
    dataset_type : {"text/csv", "application/jsonlines", "application/json", "application/x-parquet"}
    headers : list of str, optional
        Column names. CSV: when the file's first line equals them it is skipped as a header;
        otherwise every line is data. Without headers the CSV's first line is the header.
    features, label, predicted_label : str, optional
        JMESPath expressions for JSON Lines / JSON records (Clarify's addressing).
    chunk_rows : int
        Rows per chunk.
    skip_bad_rows : bool
        Skip and count malformed records instead of raising :class:`DataError`.
    required : tuple of str
        Columns that must be present and non-empty in every row (e.g. the label).
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DataError(f"{p}: file not found")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return Reader(p, dataset_type, headers, features, label, predicted_label, chunk_rows, skip_bad_rows, required)
