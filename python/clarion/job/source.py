"""The source: chunks of the input (a file through :mod:`clarion.dataset`, an in-memory
DataFrame, or a Dask DataFrame computed partition by partition), with the rows' input positions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Read the bias columns that hold text as dictionary codes (``clarion.dataset.Reader.codes``):
#: the accumulators count their codes without hashing strings. Off: every column as the reader
#: gives it without codes (the outputs are the same; tests compare the two).
DICTIONARY_CODES = True

#: Read CSV / Parquet chunks ahead on a thread (``clarion.dataset.Reader.prefetch``): the parse
#: of the next chunks overlaps the counting of this one. Off: one thread (the outputs are
#: the same; tests compare the two).
PREFETCH = True

#: ... except for a file that holds at most one chunk (a CSV file of at most ``chunk_rows`` bytes:
#: every record takes one byte at least, its line break; a Parquet file of at most ``chunk_rows``
#: rows by its footer): there is nothing to overlap, and the thread's start and hand-off are all it
#: would add. Off: such a file is read on the thread too (the outputs are the same; tests compare).
ONE_CHUNK_WITHOUT_THREAD = True


def _at_most_one_chunk(path: str, dataset_type: str, chunk_rows: int) -> bool:
    """Whether the file ``path`` surely holds at most ``chunk_rows`` records (False when unsure)."""
    try:
        if dataset_type == "text/csv":
            return os.path.getsize(path) <= chunk_rows
        if dataset_type == "application/x-parquet":
            import pyarrow.parquet as pq

            return pq.read_metadata(path).num_rows <= chunk_rows
    except Exception:  # noqa: BLE001 - unsure: the reader meets (and reports) what is wrong
        return False
    return False


#: Leave out the text columns a job does not use (``clarion.dataset.Reader.usecols``): a
#: bias-only job without a model or time windows reads its label, facet, group, weight and
#: predicted-label columns and every numeric column (whose values are checked as numbers, as
#: when every column is read); the other text columns are not converted. Off: every column is
#: read. The outputs, errors and skips are the same either way (tests compare the two).
ONLY_USED_COLUMNS = True


def _is_dask_frame(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame (without importing Dask when it is not loaded)."""
    import sys

    if "dask.dataframe" not in sys.modules:
        return False
    import dask.dataframe as dd

    return isinstance(data, dd.DataFrame)


class _Source:
    """Chunks of the input (a file through :mod:`clarion.dataset`, or an in-memory DataFrame)."""

    def __init__(self, cfg: Any, data: Any, *, chunk_rows: int, skip_bad_rows: bool) -> None:
        import pandas as pd

        self.skip_bad_rows = skip_bad_rows
        self._skipped: list[str] = []
        self.frame = None
        self.reader = None
        self.is_parquet = False
        self.partitions = None
        if isinstance(data, pd.DataFrame):
            self.frame = data.reset_index(drop=True)
            self.chunk_rows = chunk_rows
            self.path = "<DataFrame>"
        elif _is_dask_frame(data):
            # A Dask DataFrame streams partition by partition (computed on the cluster, counted
            # here): the same chunks, row numbers and checks as an in-memory DataFrame.
            self.partitions = data
            self.frame = data._meta
            self.chunk_rows = chunk_rows
            self.path = "<dask DataFrame>"
        else:
            from clarion.dataset import read_dataset

            self.path = os.fspath(data)
            self.is_parquet = cfg.dataset_type == "application/x-parquet"
            label = cfg.label if cfg.dataset_type in ("application/jsonlines", "application/json") else None
            pred = cfg.predicted_label if label is not None else None
            self.reader = read_dataset(
                self.path,
                cfg.dataset_type,
                headers=cfg.headers,
                features=cfg.features,
                label=label,
                predicted_label=pred,
                chunk_rows=chunk_rows,
                skip_bad_rows=skip_bad_rows,
            )
            self.reader.prefetch = PREFETCH and not (
                ONE_CHUNK_WITHOUT_THREAD and _at_most_one_chunk(self.path, cfg.dataset_type, chunk_rows)
            )

    def columns(self) -> list[str]:
        """The column names. A file's come from the reader's type sample (its first rows, read
        and typed once: the pass reuses the types)."""
        if self.frame is not None:
            return [str(c) for c in self.frame.columns]
        return [str(c) for c in self.reader.columns()]

    def set_required(self, cols: list[str]) -> None:
        if self.reader is not None:
            self.reader.required = tuple(cols)
        else:
            self._required = cols

    def set_codes(self, cols: list[str]) -> None:
        """Read these columns, where they hold text, as dictionary codes (a file only; see
        :data:`DICTIONARY_CODES`). Chunks then carry them as categoricals; ``Chunk.plain()`` is
        the frame without codes."""
        if self.reader is not None and DICTIONARY_CODES:
            self.reader.codes = tuple(dict.fromkeys(c for c in cols if c))

    def set_usecols(self, cols: list[str]) -> None:
        """Read only these columns and the numeric ones (a file only; see
        :data:`ONLY_USED_COLUMNS`): a numeric column's values are still checked as numbers, so
        a malformed record stops (or is skipped) as when every column is read; only text columns
        the job does not use are left out. Nothing changes while the types are not known."""
        if self.reader is None or not ONLY_USED_COLUMNS:
            return
        if self.reader.dataset_type not in ("text/csv", "application/x-parquet"):
            return  # (a JSON value that is a list or an object is malformed in any column)
        numeric = self.reader.numeric_columns()
        if numeric is None:
            return
        self.reader.usecols = tuple(dict.fromkeys([*(c for c in cols if c), *numeric]))

    def __iter__(self) -> Iterator[Any]:
        if self.reader is not None:
            yield from self.reader
            return
        self._skipped = []
        if self.partitions is None:
            yield from self._frame_chunks(self.frame, 0, 0)
            return
        first_row, start = 0, 0
        for i in range(self.partitions.npartitions):
            part = self.partitions.get_partition(i).compute().reset_index(drop=True)
            for chunk in self._frame_chunks(part, first_row, start):
                start += len(chunk.frame)
                yield chunk
            first_row += len(part)

    def _frame_chunks(self, f: Any, first_row: int, start: int) -> Iterator[Any]:
        """Chunks of ``f``, whose first row is row ``first_row`` of the input; ``start`` counts the
        rows kept before it."""
        from clarion.dataset import Chunk, DataError

        keep = np.ones(len(f), dtype=bool)
        for c in getattr(self, "_required", []):
            if c not in f.columns:
                raise DataError(f"{self.path}: column {c!r} not found (columns: {list(f.columns)})")
            for i in np.flatnonzero(f[c].isna().to_numpy() & keep):
                msg = f"{self.path}: row {first_row + i}, column {c!r}: missing value"
                if not self.skip_bad_rows:
                    raise DataError(msg)
                keep[i] = False
                self._skipped.append(msg)
        rows = np.flatnonzero(keep)
        for s in range(0, len(rows), self.chunk_rows):
            idx = rows[s : s + self.chunk_rows]
            yield Chunk(f.iloc[idx].reset_index(drop=True), start, first_row + idx + 1)
            start += len(idx)

    @property
    def skipped(self) -> int:
        return self.reader.skipped if self.reader is not None else len(self._skipped)

    @property
    def skipped_examples(self) -> list[str]:
        return list(self.reader.skipped_examples) if self.reader is not None else self._skipped[:5]
