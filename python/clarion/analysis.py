"""The analysis job: a Clarify analysis config in; ``analysis.json``, local attributions and a report out.

:func:`analyze` is the local, offline equivalent of a SageMaker Clarify processing job. It reads
the data once, in chunks: the bias counts of every facet accumulate chunk by chunk
(:class:`clarion.bias.Accumulator`), the model is called once per chunk for post-training bias,
and the rows that Kernel SHAP and partial dependence need are kept while they fit the memory
budget. When they do not, SHAP streams the file a second time against a baseline clustered from a
uniform sample (so peak memory stays bounded) — the only case with a second read.

Output directory layout (Clarify's names)::

    analysis.json                 Clarify's schema (exact keys and value formats)
    analysis_config.json          the config that produced it
    explanations_shap/out.csv     local SHAP values, one row per input record, input order
    explanations_shap/out.parquet the same, when the input is Parquet
    explanations_shap/baseline.csv  the clustered baseline (when the config gave none)
    report.html, report.md        the report (name from ``methods.report.name``)

This module is also the ``clarion analyze`` subcommand (:func:`add_arguments`, :func:`run`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clarion._io import atomic_write_text, create_temp_file, staged_output_dir
from clarion._progress import Progress
from clarion.distributed import add_arguments as dask_arguments
from clarion.distributed import cli_cluster
from clarion.distributed import on_cluster as dask_rows

__all__ = ["AnalysisResult", "add_arguments", "analyze", "run"]

DEFAULT_MEMORY_BUDGET = 1 << 30
#: rows sampled (uniformly, seeded) for the baseline and PDP when the rows exceed the memory budget
SAMPLE_ROWS = 100_000
#: rows used to decide how a config value is matched (equality vs. threshold); independent of chunking
DECIDE_ROWS = 1000
#: a single numeric value on a numeric column with at most this many distinct values (in the first
#: DECIDE_ROWS rows) that contains it selects by equality; otherwise it is a threshold
MAX_CATEGORIES = 20
DEFAULT_NUM_CLUSTERS = 10
PREDICTED_COLUMN = "predicted_label"

OUTPUT_FILES = ("analysis.json", "analysis_config.json", "explanations_shap/out.csv",
                "explanations_shap/out.parquet", "explanations_shap/baseline.csv")
#: what ``clarion monitor`` writes besides (a later run into the same folder removes them too)
MONITOR_OUTPUT_FILES = ("constraint_violations.json", "drift_over_time.csv", "drift_over_time.parquet",
                        "analysis_by_window.json")

MSG_EXISTS = ("output directory {path} already exists and is not empty; pass overwrite=True "
              "(--overwrite) to write into it")
MSG_LABEL_OUTSIDE = ("predictor.label: the model's predicted label for row {row} (0-based) is {value!r}, which is not "
                     "an index of label_headers (a whole number from 0 to {n} - 1; label_headers: {headers})")
MSG_JMESPATH_LOCAL = ("predictor.{key}: {value!r} is a JMESPath expression, which selects from an endpoint's "
                      "JSON answer; a local model's outputs are columns: give the output's index (0, 1, ...)")
MSG_LABEL_HEADERS = ("predictor.label_headers: {n} names {headers}, but the model gives {d} outputs, of which "
                     "{explained} are explained: give one name per output")
MSG_FEATURES_HINT = (". Drop a column the model does not take with `excluded_columns` (an id column can "
                     "instead be named in `joinsource_name_or_index`); a column the model needs must be in "
                     "the data (and in `headers`)")
MSG_NO_MODEL = ("predictor: {why} needs a model; pass model= (--model FILE or --endpoint URL) or set "
                "predictor.model_uri / predictor.endpoint_url in the config")
MSG_COLUMN = "{key}: column {name!r} not found in the data (columns: {columns})"
MSG_INDEX = "{key}: column index {index} is out of range for {n} columns"
MSG_VALUE_KIND = ("{key}: {values!r} can never equal a value of column {name!r}, which holds numbers (values seen: "
                  "{seen}); give numbers (text that is a decimal number, like \"1\", is that number)")
MSG_MODEL_NONFINITE = ("model: output {output} is {value} for data row {row} (line/record {line} of the input); "
                       "post-training bias needs finite model outputs (a NaN score would silently count as a "
                       "negative prediction)")


# ---- small helpers --------------------------------------------------------------------------------


def parse_bytes(v: int | str) -> int:
    """``"1GiB"``, ``"512MB"``, ``"2e9"`` or an int -> bytes."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        if v <= 0:
            raise ValueError(f"memory_budget: must be positive, got {v!r}")
        return int(v)
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([KMGT]?i?B?)?\s*", str(v))
    if not m:
        raise ValueError(f"memory_budget: expected bytes like '1GiB' or '500MB', got {v!r}")
    unit = (m.group(2) or "").upper().rstrip("B")
    mult = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "KI": 1 << 10, "MI": 1 << 20, "GI": 1 << 30,
            "TI": 1 << 40}[unit]
    n = int(float(m.group(1)) * mult)
    if n <= 0:
        raise ValueError(f"memory_budget: must be positive, got {v!r}")
    return n


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _numeric_dtype(s: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _coerce_values(values: list[Any], sample: Any) -> list[Any]:
    """Config values in the column's type: "1" for an int column is 1, 1 for a text column "1"."""
    import pandas as pd

    if _numeric_dtype(sample):
        out = []
        for v in values:
            if isinstance(v, str):
                try:
                    f = float(v)
                    v = int(f) if f.is_integer() else f
                except ValueError:
                    pass
            out.append(v)
        return out
    if pd.api.types.is_bool_dtype(sample.dtype):
        return [v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1", "yes") for v in values]
    return [str(v) if _is_number(v) else v for v in values]


def _check_values_kind(key: str, values: list[Any] | None, sample: Any) -> None:
    """Values (after :func:`_coerce_values`) that are text on a numeric column can never match:
    an error naming the config key and the column, not a count of nothing (or numpy's
    DType promotion error)."""
    if values is None or not _numeric_dtype(sample):
        return
    bad = [v for v in values if not _is_number(v)]
    if bad:
        seen = ", ".join(repr(v) for v in sample.dropna().unique().tolist()[:10]) or "none"
        raise ValueError(MSG_VALUE_KIND.format(key=key, values=bad, name=sample.name, seen=seen))


def _values_or_threshold(values: list[Any], sample: Any) -> tuple[list[Any] | None, float | None]:
    """Clarify's ``value_or_threshold`` semantics, made explicit: one numeric value on a numeric
    column is a threshold (selected ⇔ value > t) unless the column looks categorical (at most
    MAX_CATEGORIES distinct values in the first rows) and contains that value; anything else is a
    list of values matched by equality (a union)."""
    values = _coerce_values(values, sample)
    if len(values) == 1 and _is_number(values[0]) and _numeric_dtype(sample):
        distinct = set(sample.dropna().unique().tolist())
        if not (len(distinct) <= MAX_CATEGORIES and values[0] in distinct):
            return None, values[0]  # as given: [30] is "(30, 66]" on an integer column, as Clarify writes it
    return values, None


@dataclass
class AnalysisResult:
    """What :func:`analyze` wrote.

    Attributes
    ----------
    output_dir : str
    analysis : dict
        The ``analysis.json`` document.
    paths : dict
        ``analysis``, ``config``, ``report_html``, ``report_md``, and when written ``local_shap``,
        ``local_shap_parquet``, ``baseline``.
    n_rows : int
        Rows analysed.
    skipped_rows : int
        Malformed rows skipped (``skip_bad_rows=True``).
    skipped_examples : list of str
        The first few skipped rows' errors.
    notes : list of str
        Remarks shown in the report (skipped rows, streamed SHAP...).
    """

    output_dir: str
    analysis: dict[str, Any]
    paths: dict[str, str]
    n_rows: int
    skipped_rows: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def largest_disparities(self, k: int = 3) -> list[str]:
        """The ``k`` bias metrics farthest from their ideal value (relative to their range)."""
        from clarion.report.html import _largest_disparities

        return [text for _, text in _largest_disparities(self.analysis, k)]

    def top_features(self, k: int = 3) -> dict[str, list[tuple[str, float]]]:
        """Per explained output, the ``k`` features with the largest global SHAP value."""
        shap = (self.analysis.get("explanations") or {}).get("kernel_shap") or {}
        return {label: sorted(block["global_shap_values"].items(), key=lambda kv: -abs(kv[1]))[:k]
                for label, block in shap.items()}

    def summary(self) -> str:
        """A few lines for the end of a run: rows, largest disparities, top features, and (last) the report path."""
        lines = [f"rows analysed: {self.n_rows:,}"
                 + (f" ({self.skipped_rows:,} malformed rows skipped)" if self.skipped_rows else "")]
        dis = self.largest_disparities()
        if dis:
            lines.append("largest disparities:")
            lines += [f"  {i + 1}. {t}" for i, t in enumerate(dis)]
        for label, top in self.top_features().items():
            lines.append(f"top features ({label}): " + ", ".join(f"{k} ({v:.4g})" for k, v in top))
        lines.append(f"report: {self.paths['report_html']}")
        return "\n".join(lines)


# ---- the plan: what to compute, from which columns -------------------------------------------------


@dataclass
class _Facet:
    name: str
    values: list[Any] | None
    threshold: float | None


@dataclass
class _Plan:
    columns: list[str]
    label: str | None
    predicted: str | None  # a predicted-label column in the data
    facets: list[_Facet]
    group: str | None
    weights: str | None
    join: str | None
    features: list[str]
    label_values: list[Any] | None = None
    label_threshold: float | None = None
    label_numeric: bool = False
    negative_label: Any = None
    need_model_rows: bool = False  # model called on the data rows (post-training bias)
    need_model: bool = False


def _resolve(key: str, v: str | int | None, columns: list[str]) -> str | None:
    if v is None:
        return None
    if isinstance(v, int):
        if not 0 <= v < len(columns):
            raise ValueError(MSG_INDEX.format(key=key, index=v, n=len(columns)))
        return columns[v]
    if v not in columns:
        raise ValueError(MSG_COLUMN.format(key=key, name=v, columns=columns))
    return v


def _make_plan(cfg: Any, columns: list[str]) -> _Plan:
    label_key, pred_key = cfg.label, cfg.predicted_label
    if cfg.dataset_type in ("application/jsonlines", "application/json"):
        # label / predicted_label are JMESPaths into each record; the reader appends their values
        # after the features, named by them (or by the last entries of ``headers``)
        extra = [k for k in (label_key, pred_key) if isinstance(k, str)]
        tail = columns[len(columns) - len(extra):]
        named = dict(zip(extra, tail))
        label_key = named.get(label_key, label_key) if isinstance(label_key, str) else label_key
        pred_key = named.get(pred_key, pred_key) if isinstance(pred_key, str) else pred_key
    label = _resolve("label", label_key, columns)
    pred = _resolve("predicted_label", pred_key, columns)
    facets = [_Facet(_resolve(f"facet[{i}].name_or_index", f.name_or_index, columns), f.value_or_threshold, None)
              for i, f in enumerate(cfg.facet)] if (cfg.pre_training_bias or cfg.post_training_bias) else []
    group = _resolve("group_variable", cfg.group_variable, columns)
    weights = _resolve("weights", cfg.weights, columns)
    join = _resolve("joinsource_name_or_index", cfg.joinsource_name_or_index, columns)
    excluded = {_resolve(f"excluded_columns[{i}]", c, columns) for i, c in enumerate(cfg.excluded_columns or [])}
    drop = {label, pred, weights, join} | excluded
    features = [c for c in columns if c not in drop]
    if not features and (cfg.shap or cfg.pdp or (cfg.post_training_bias and pred is None)):
        raise ValueError("features: no feature columns left after removing the label, predicted label, "
                         "excluded and weight columns")
    plan = _Plan(columns, label, pred, facets, group, weights, join, features)
    plan.need_model_rows = bool(cfg.post_training_bias) and pred is None
    plan.need_model = plan.need_model_rows or cfg.shap is not None or cfg.pdp is not None
    return plan


# ---- data source ---------------------------------------------------------------------------------


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
            self.reader = read_dataset(self.path, cfg.dataset_type, headers=cfg.headers, features=cfg.features,
                                       label=label, predicted_label=pred, chunk_rows=chunk_rows,
                                       skip_bad_rows=skip_bad_rows)

    def columns(self) -> list[str]:
        if self.frame is not None:
            return [str(c) for c in self.frame.columns]
        from clarion.dataset import read_dataset

        r = self.reader
        peek = read_dataset(r.path, r.dataset_type, headers=r.headers, features=r.features, label=r.label,
                            predicted_label=r.predicted_label, chunk_rows=DECIDE_ROWS, skip_bad_rows=True)
        for chunk in peek:
            return [str(c) for c in chunk.frame.columns]
        raise ValueError(f"{self.path}: no data rows")

    def set_required(self, cols: list[str]) -> None:
        if self.reader is not None:
            self.reader.required = tuple(cols)
        else:
            self._required = cols

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


class _Sample:
    """A uniform sample of at most ``size`` rows that does not depend on the chunking: every row gets
    a key from one seeded stream in row order; the rows with the smallest keys are kept."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.rng = size, np.random.default_rng(seed)
        self.frame = None
        self.keys = np.empty(0)
        self.rows = np.empty(0, dtype=np.int64)

    def add(self, frame: Any, start: int) -> None:
        import pandas as pd

        keys = self.rng.random(len(frame))
        rows = np.arange(start, start + len(frame))
        if self.frame is None:
            allf, allk, allr = frame.reset_index(drop=True), keys, rows
        else:
            allf = pd.concat([self.frame, frame], ignore_index=True)
            allk, allr = np.concatenate([self.keys, keys]), np.concatenate([self.rows, rows])
        if len(allk) > self.size:
            keep = np.sort(np.argpartition(allk, self.size)[: self.size])
            allf, allk, allr = allf.iloc[keep].reset_index(drop=True), allk[keep], allr[keep]
        self.frame, self.keys, self.rows = allf, allk, allr

    def result(self) -> Any:
        order = np.argsort(self.rows, kind="stable")
        return self.frame.iloc[order].reset_index(drop=True)


class _CsvSink:
    """Appends DataFrame chunks to a CSV (and optionally Parquet) under a temporary name; ``commit``
    renames them into place, so a reader never sees half a file."""

    def __init__(self, path: str, parquet_path: str | None) -> None:
        d = os.path.dirname(path)
        os.makedirs(d, exist_ok=True)
        self.path, self.parquet_path = path, parquet_path
        fd, self.tmp = create_temp_file(d, "-out.csv")  # mode from the umask, like every output
        self.fh = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self.header = True
        self.pq_writer = None
        self.pq_tmp = None

    def write(self, frame: Any) -> None:
        frame.to_csv(self.fh, index=False, header=self.header)
        self.header = False
        if self.parquet_path:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.pq_writer is None:
                fd, self.pq_tmp = create_temp_file(os.path.dirname(self.parquet_path), "-out.parquet")
                os.close(fd)
                self.pq_writer = pq.ParquetWriter(self.pq_tmp, table.schema)
            self.pq_writer.write_table(table)

    def commit(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.path)
        if self.pq_writer is not None:
            self.pq_writer.close()
            os.replace(self.pq_tmp, self.parquet_path)

    def abort(self) -> None:
        for closer in (self.fh.close, getattr(self.pq_writer, "close", lambda: None)):
            try:
                closer()
            except Exception:  # noqa: BLE001 - cleanup after another error
                pass
        for p in (self.tmp, self.pq_tmp):
            if p and os.path.exists(p):
                os.unlink(p)


# ---- model outputs --------------------------------------------------------------------------------


class _Outputs:
    """How model outputs become the predicted label (for bias) and the explained outputs (SHAP, PDP).

    * ``predictor.label`` (an output index): that output is the predicted label, as is (mapped
      through ``label_headers`` when given);
    * ``predictor.probability`` (an output index), or a single output: a score; the predicted label
      is positive when score > ``probability_threshold`` (for a label with a numeric threshold the
      output is a predicted value, thresholded like the label);
    * several outputs: with names (``label_headers`` or the model's class names) and two outputs one
      of which is a positive label value, that output is the score as above; otherwise the name of
      the highest output; without names and two outputs, the second is the positive score
      (scikit-learn's class order); otherwise the index of the highest output.

    SHAP and PDP explain the ``probability`` output when given, else every output; they are named
    by ``label_headers`` when it has one name per explained output, else ``label0``, ``label1``…
    """

    def __init__(self, cfg: Any, model: Any, selects_in_model: bool) -> None:
        p = cfg.predictor
        self.model = model
        if p is not None and not selects_in_model:
            for key in ("label", "probability"):  # a JMESPath selects from an endpoint's JSON answer
                if isinstance(getattr(p, key), str):
                    from clarion.config import ConfigError

                    raise ConfigError(MSG_JMESPATH_LOCAL.format(key=key, value=getattr(p, key)))
        self.label_idx = None if p is None or selects_in_model or not isinstance(p.label, int) else p.label
        self.prob_idx = None if p is None or selects_in_model or not isinstance(p.probability, int) else p.probability
        self.label_headers = list(p.label_headers) if p is not None and p.label_headers else None
        self.threshold = cfg.probability_threshold
        self._checked_width: int | None = None
        if selects_in_model and getattr(model, "output", None) == "label":
            # an endpoint answering with its predicted label (predictor.label): that is the label,
            # through label_headers like a local label output, never a score against the threshold
            self.label_idx = 0

    def predict(self, X: Any) -> np.ndarray:
        out = np.asarray(self.model.predict(X), dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.shape[0] != len(X):
            raise ValueError(f"model: returned {out.shape[0]} predictions for {len(X)} rows")
        for idx, key in ((self.label_idx, "predictor.label"), (self.prob_idx, "predictor.probability")):
            if idx is not None and idx >= out.shape[1]:
                raise ValueError(f"{key}: output index {idx} but the model returns {out.shape[1]} outputs")
        if self._checked_width != out.shape[1]:
            self._check_headers(out.shape[1])
            self._checked_width = out.shape[1]
        return out

    def _check_headers(self, d: int) -> None:
        """label_headers name the explained outputs (or every output, with an output index in
        predictor.probability); headers that fit neither would be silently dropped."""
        h = self.label_headers
        if not h or self.label_idx is not None:
            return
        n_explained = 1 if self.prob_idx is not None else d
        if len(h) == n_explained or (self.prob_idx is not None and len(h) == d):
            return
        from clarion.config import ConfigError

        raise ConfigError(MSG_LABEL_HEADERS.format(n=len(h), headers=h, d=d, explained=n_explained))

    def explained(self, P_or_n: np.ndarray | int) -> list[int]:
        if self.prob_idx is not None:
            return [self.prob_idx]
        d = P_or_n if isinstance(P_or_n, int) else P_or_n.shape[1]
        return list(range(d))

    def names(self, n_explained: int) -> list[str]:
        h = self.label_headers
        if h and len(h) == n_explained:
            return [str(x) for x in h]
        if h and self.prob_idx is not None and n_explained == 1 and self.prob_idx < len(h):
            return [str(h[self.prob_idx])]  # headers of every output: the explained one's
        return [f"label{i}" for i in range(n_explained)]

    def used_for_label(self, P: np.ndarray) -> list[int]:
        """The outputs that :meth:`predicted_label` reads (each must be finite)."""
        if self.label_idx is not None:
            return [self.label_idx]
        if self.prob_idx is not None:
            return [self.prob_idx]
        return list(range(P.shape[1]))

    def predicted_label(self, P: np.ndarray, plan: _Plan, first_row: int = 0) -> Any:
        pos = plan.label_values
        if self.label_idx is not None:
            v = P[:, self.label_idx]
            if self.label_headers:
                return _header_of(v, self.label_headers, first_row)
            return v
        if self.prob_idx is not None or P.shape[1] == 1:
            s = P[:, self.prob_idx if self.prob_idx is not None else 0]
            if plan.label_threshold is not None:
                return s
            return self._to_label_space(s > self.threshold, plan)
        if self.label_headers and len(self.label_headers) != P.shape[1]:
            from clarion.config import ConfigError

            raise ConfigError(MSG_LABEL_HEADERS.format(n=len(self.label_headers), headers=self.label_headers,
                                                       d=P.shape[1], explained=P.shape[1]))
        names = self.label_headers if self.label_headers else _output_names(self.model)
        names = list(names) if names is not None and len(names) == P.shape[1] else None
        wanted = {str(v) for v in pos} if pos is not None else set()
        hits = [i for i, n in enumerate(names or []) if str(n) in wanted]
        if P.shape[1] == 2:
            # the positive class's score; without a name for it, scikit-learn's (negative, positive) order
            col = hits[0] if len(hits) == 1 else 1
            return self._to_label_space(P[:, col] > self.threshold, plan)
        top = np.argmax(P, axis=1)
        if hits:  # outputs named by label values: the name of the highest output, in the label's type
            return _coerce_array(np.asarray(names, dtype=object)[top], plan.label_numeric)
        return top

    @staticmethod
    def _to_label_space(positive: np.ndarray, plan: _Plan) -> np.ndarray:
        pos = plan.label_values[0]
        out = np.where(positive, pos, plan.negative_label)
        return out.astype(object) if isinstance(pos, str) else out


def _header_of(v: np.ndarray, headers: list[Any], first_row: int) -> np.ndarray:
    """Predicted label indices (predictor.label) to their label_headers; any output that is not a
    whole number in [0, len(label_headers)) is an error naming the row."""
    n = len(headers)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(v) & (v == np.floor(v)) & (v >= 0) & (v < n)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(MSG_LABEL_OUTSIDE.format(row=first_row + i, value=float(v[i]), n=n, headers=headers))
    return np.asarray(headers, dtype=object)[v.astype(np.int64)]


def _coerce_array(values: np.ndarray, numeric: bool) -> np.ndarray:
    if not numeric:
        return values
    import pandas as pd

    return pd.to_numeric(pd.Series(values)).to_numpy()


def _output_names(model: Any) -> list[Any] | None:
    names = getattr(model, "output_names", None)
    return list(names) if names is not None else None


def _negative_label(values: list[Any], sample: Any) -> Any:
    """A label value that is not positive, in the label column's type (to map predictions into the
    label's space): the first observed one, else a made-up value of the same type."""
    pos = set(values)
    for v in sample.dropna().unique().tolist():
        if v not in pos:
            return v
    first = values[0]
    if isinstance(first, str):
        return "not " + first
    if isinstance(first, bool):
        return not first
    return min(v for v in values if _is_number(v)) - 1


# ---- the job -------------------------------------------------------------------------------------


def _prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    """Refuse an output folder that exists and is not empty, unless ``overwrite``. Nothing is
    deleted here: the run writes into a temporary sibling folder that replaces the previous
    results only when it succeeds (:func:`_staged`)."""
    if os.path.exists(output_dir):
        if not os.path.isdir(output_dir):
            raise FileExistsError(f"output directory {output_dir} exists and is not a directory")
        if os.listdir(output_dir) and not overwrite:
            raise FileExistsError(MSG_EXISTS.format(path=output_dir))


def _previous_outputs(output_dir: str) -> list[str]:
    """The files (relative paths) that an earlier run wrote into ``output_dir``: Clarify's files,
    ``clarion monitor``'s, everything in ``explanations_shap/``, and the report under the name its
    ``analysis_config.json`` gave. A successful run removes them; any other file stays."""
    import json

    names = [*OUTPUT_FILES, *MONITOR_OUTPUT_FILES]
    shap_dir = os.path.join(output_dir, "explanations_shap")
    for d, _dirs, files in os.walk(shap_dir):
        names += [os.path.relpath(os.path.join(d, f), output_dir) for f in files]
    report = "report"
    try:
        with open(os.path.join(output_dir, "analysis_config.json"), encoding="utf-8") as fh:
            rep = (json.load(fh).get("methods") or {}).get("report") or {}
        if isinstance(rep.get("name"), str) and rep["name"]:
            report = rep["name"]
    except (OSError, ValueError, AttributeError, RecursionError):
        pass  # no readable config: the default report name
    return names + [f"{report}.html", f"{report}.md"]


@dataclass
class _Stage:
    """Where a run writes (``stage``) and where its results go on success (``out_dir``)."""

    out_dir: str
    stage: str = ""

    def moved(self, result: AnalysisResult) -> AnalysisResult:
        """``result`` with its paths rewritten from the stage to ``out_dir``."""
        def at(p: str) -> str:
            rel = os.path.relpath(p, self.stage)
            return p if rel.startswith("..") else os.path.join(self.out_dir, rel)

        result.output_dir = self.out_dir
        result.paths = {k: at(v) for k, v in result.paths.items()}
        return result


@contextlib.contextmanager
def _staged(out_dir: str) -> Iterator[_Stage]:
    """``with _staged(out_dir) as s:`` write the run into ``s.stage``; on success it replaces the
    previous results in ``out_dir`` (stale files of the previous run removed, the user's kept); on
    failure or interrupt ``out_dir`` is left as it was."""
    s = _Stage(out_dir)
    with staged_output_dir(out_dir, _previous_outputs) as s.stage:
        yield s


def _load_model(cfg: Any, model: Any, base_dir: str, why: str) -> tuple[Any, bool]:
    """The model as a clarion Model; the bool says whether it already selects outputs itself (an
    endpoint configured with predictor.label/probability)."""
    p = cfg.predictor
    if model is None and (p is None or not (p.endpoint_url or p.model_uri)):
        raise ValueError(MSG_NO_MODEL.format(why=why))
    from clarion import models

    if model is None and p.endpoint_url:
        model = _endpoint(cfg, p.endpoint_url)
    elif model is None:
        uri = p.model_uri
        model = uri if os.path.isabs(uri) or "://" in uri else os.path.join(base_dir, uri)
    # label_headers name the *explained* outputs (clarion handles them), not necessarily every
    # model output, so they are not handed to as_model; an Endpoint applies them itself
    trusted = p.trusted_types if p is not None else None
    return models.as_model(model, trusted=trusted), isinstance(model, models.Endpoint)


def _check_model_features(model: Any, plan: Any) -> None:
    """The model's declared features (scikit-learn ``feature_names_in_`` / ``n_features_in_``,
    xgboost feature names / count, ONNX inputs) against the columns clarion sends it."""
    check = getattr(model, "check_features", None)
    if check is not None:
        check(plan.features, hint=MSG_FEATURES_HINT)


def _endpoint(cfg: Any, url: str, *, timeout: float | None = None, retries: int | None = None) -> Any:
    from clarion import models

    p = cfg.predictor
    ct = (p.content_type if p is not None else None) or (
        cfg.dataset_type if cfg.dataset_type in ("text/csv", "application/jsonlines", "application/json")
        else "text/csv")
    kw: dict[str, Any] = {"content_type": ct}
    if p is not None:
        kw.update(accept_type=p.accept_type, label=p.label, probability=p.probability,
                  label_headers=p.label_headers, content_template=p.content_template,
                  record_template=p.record_template)
        timeout = p.timeout if timeout is None else timeout
        retries = p.retries if retries is None else retries
    if timeout is not None:
        kw["timeout"] = timeout
    if retries is not None:
        kw["retries"] = retries
    return models.Endpoint(url, **kw)


def _cli_model(args: argparse.Namespace) -> Any:
    """The model for ``clarion analyze`` / ``clarion monitor``: ``--model`` / ``--endpoint`` (else
    the config's predictor), with ``--trusted`` (added to ``predictor.trusted_types``),
    ``--timeout`` and ``--retries`` (over ``predictor.timeout`` / ``predictor.retries``) applied.
    None: :func:`analyze` loads the config's own model itself."""
    trusted = list(getattr(args, "trusted", None) or [])
    timeout, retries = getattr(args, "timeout", None), getattr(args, "retries", None)
    if timeout is not None and not 0 < timeout < float("inf"):
        raise ValueError(f"--timeout: must be a positive number of seconds, got {timeout!r}")
    if retries is not None and not 0 <= retries <= 100:
        raise ValueError(f"--retries: must be a whole number from 0 to 100, got {retries!r}")
    if args.model is None and args.endpoint is None and not trusted and timeout is None and retries is None:
        return None
    from clarion import models
    from clarion.config import read_config

    cfg = read_config(args.config)
    p = cfg.predictor
    url = args.endpoint or (p.endpoint_url if args.model is None and p is not None else None)
    if url:
        return _endpoint(cfg, url, timeout=timeout, retries=retries)
    path = args.model
    if path is None:
        if p is None or not p.model_uri:
            return None  # no model anywhere: analyze() says so if the config needs one
        path = p.model_uri if os.path.isabs(p.model_uri) or "://" in p.model_uri else os.path.join(
            os.path.dirname(os.path.abspath(args.config)), p.model_uri)
    if not trusted:
        return path  # loaded by analyze() only when needed, with predictor.trusted_types
    return models.as_model(path, trusted=[*(p.trusted_types or [] if p is not None else []), *trusted])


def analyze(config: Any, data: Any, *, model: Any = None, output_dir: str | os.PathLike,
            progress: bool = True, overwrite: bool = False, skip_bad_rows: bool = False,
            chunk_rows: int = 50_000, memory_budget: int | str = DEFAULT_MEMORY_BUDGET) -> AnalysisResult:
    """Run every method of an analysis config on a data set and write Clarify's outputs.

    Parameters
    ----------
    config : path, dict or AnalysisConfig
        A Clarify ``analysis_config.json`` (JSON or YAML path, dict, or
        :class:`clarion.config.AnalysisConfig`). Relative paths inside it (``predictor.model_uri``,
        ``methods.shap.baseline``) are relative to the config file's folder.
    data : path, pandas.DataFrame or dask.dataframe.DataFrame
        The data set, in the config's ``dataset_type`` (``text/csv``, ``application/jsonlines``,
        ``application/json``, ``application/x-parquet``), or a DataFrame. A Dask DataFrame (e.g.
        from ``dd.read_parquet`` on a cluster) streams through the job partition by partition,
        with the same outputs as the same rows in one pandas DataFrame.
    model : optional
        Anything :func:`clarion.models.as_model` accepts (an estimator, a callable, a model file
        path, a :class:`clarion.models.Endpoint`). Default: ``predictor.model_uri`` or
        ``predictor.endpoint_url`` of the config. Needed for SHAP, PDP and for post-training bias
        without a ``predicted_label`` column.
    output_dir : path
        Where to write (see the module docstring for the layout). Refused when it exists and is
        not empty, unless ``overwrite``.
    progress : bool
        Progress bars on stderr (reading, model calls, SHAP, PDP).
    overwrite : bool
        Write into an existing, non-empty ``output_dir`` (this run's files replace earlier ones).
    skip_bad_rows : bool
        Skip malformed records (wrong field count, an unparseable number in a numeric column, a
        missing label) and count them in the report, instead of raising
        :class:`clarion.dataset.DataError` with the file, row and column.
    chunk_rows : int
        Rows per chunk read. Results do not depend on it.
    memory_budget : int or str
        Bytes the rows kept for SHAP / PDP / FlipTest may take (default 1 GiB). Beyond it SHAP
        streams the file a second time, and the baseline and PDP use a uniform sample of
        ``SAMPLE_ROWS`` rows.

    Returns
    -------
    AnalysisResult
        The ``analysis.json`` document, the written paths, the row and skip counts.

    Raises
    ------
    clarion.config.ConfigError
        An invalid config (the message names the key).
    clarion.dataset.DataError
        A malformed record (file, row and column in the message).
    FileExistsError
        ``output_dir`` exists and is not empty, without ``overwrite``.
    ValueError
        A column the config names is missing, a needed model is absent, or the model's output
        does not fit (wrong row count, output index out of range).
    """
    from clarion.config import read_config

    base_dir = os.path.dirname(os.path.abspath(os.fspath(config))) if isinstance(config, (str, os.PathLike)) \
        else os.getcwd()
    cfg = read_config(config)
    out_dir = os.fspath(output_dir)
    budget = parse_bytes(memory_budget)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows: must be >= 1, got {chunk_rows}")
    _prepare_output_dir(out_dir, overwrite)
    with _staged(out_dir) as staged:  # the previous results stay until this run has succeeded
        job = _Job(cfg, data, model, staged.stage, base_dir, progress, skip_bad_rows, chunk_rows, budget)
        result = job.run()
    return staged.moved(result)


class _Job:
    def __init__(self, cfg, data, model, out_dir, base_dir, progress, skip_bad_rows, chunk_rows, budget):
        self.cfg, self.model_arg, self.out_dir, self.base_dir = cfg, model, out_dir, base_dir
        self.progress, self.budget = progress, budget
        self.source = _Source(cfg, data, chunk_rows=chunk_rows, skip_bad_rows=skip_bad_rows)
        self.notes: list[str] = []
        self.paths: dict[str, str] = {}
        self.seed = cfg.shap.seed if cfg.shap is not None and cfg.shap.seed is not None else 0

    # -- pass 1 -----------------------------------------------------------------------------------
    def run(self) -> AnalysisResult:
        cfg = self.cfg
        columns = self.source.columns()
        plan = self.plan = _make_plan(cfg, columns)
        bias = bool(cfg.pre_training_bias or cfg.post_training_bias)
        self.source.set_required([c for c in (plan.label if bias else None, plan.predicted) if c])
        # where predictions made from the model go (a name no input column has)
        self.pred_col = plan.predicted or next(n for n in (PREDICTED_COLUMN, *(f"{PREDICTED_COLUMN}_{i}" for i in
                                                                                range(1, len(columns) + 2)))
                                               if n not in columns)
        self.outputs = None
        if plan.need_model:
            why = ", ".join(w for w, on in (("post-training bias (no predicted_label column)", plan.need_model_rows),
                                            ("SHAP", cfg.shap is not None), ("PDP", cfg.pdp is not None)) if on)
            m, selects = _load_model(cfg, self.model_arg, self.base_dir, why)
            _check_model_features(m, plan)
            self.outputs = _Outputs(cfg, m, selects)
        want_ft = cfg.post_training_bias is not None and (
            cfg.post_training_bias.methods == "all" or "FT" in cfg.post_training_bias.methods)
        need_rows = cfg.shap is not None or cfg.pdp is not None or want_ft
        self.kept: list[Any] | None = [] if need_rows else None
        self.sample = _Sample(SAMPLE_ROWS, self.seed) if need_rows else None
        self.accumulators: list[Any] = []
        self.kept_bytes = 0
        self.n_rows = 0
        self.read_bar = Progress("reading", unit="rows", enabled=self.progress)
        self.model_bar = Progress("model calls", unit="rows", enabled=self.progress and plan.need_model_rows)
        pending: list[Any] = []
        pending_rows = 0
        decided = False
        for chunk in self.source:
            if decided:
                self._process(chunk, bias)
                continue
            pending.append(chunk)
            pending_rows += len(chunk.frame)
            if pending_rows >= DECIDE_ROWS:
                self._decide(pending)
                decided = True
                for c in pending:
                    self._process(c, bias)
                pending = []
        if not decided:
            if not pending:
                raise ValueError(f"{self.source.path}: no data rows"
                                 + (f" ({self.source.skipped} malformed rows skipped)" if self.source.skipped else ""))
            self._decide(pending)
            for c in pending:
                self._process(c, bias)
        read_bar, model_bar = self.read_bar, self.model_bar
        read_bar.close()
        model_bar.close()
        src = self.source.path if self.source.reader is None else os.path.basename(self.source.path)
        self.notes.insert(0, f"{self.n_rows:,} rows analysed from {src}")
        skipped = self.source.skipped
        if skipped:
            self.notes.insert(1, f"{skipped:,} malformed rows skipped (first: {self.source.skipped_examples[0]})")

        analysis: dict[str, Any] = {"version": "1.0"}
        if bias:
            analysis.update(self._bias_sections(want_ft))
        explanations: dict[str, Any] = {}
        local = feature_values = None
        if cfg.shap is not None:
            shap_block, local, feature_values = self._shap()
            explanations["kernel_shap"] = shap_block
        if cfg.pdp is not None:
            explanations["pdp"] = self._pdp(explanations.get("kernel_shap"))
        if explanations:
            analysis["explanations"] = explanations
        return self._write(analysis, local, feature_values)

    def _process(self, c: Any, bias: bool) -> None:
        plan, frame = self.plan, c.frame
        self.read_bar.update(len(frame))
        self.n_rows += len(frame)
        pred = None
        if plan.need_model_rows:
            P = self.outputs.predict(frame[plan.features])
            used = self.outputs.used_for_label(P)
            bad = ~np.isfinite(P[:, used])
            if bad.any():
                r, j = (int(i[0]) for i in np.nonzero(bad))
                line = int(c.lines[r]) if c.lines is not None and len(c.lines) > r else "?"
                raise ValueError(MSG_MODEL_NONFINITE.format(output=used[j], value=P[r, used[j]], row=c.start + r,
                                                            line=line))
            pred = self.outputs.predicted_label(P, plan, c.start)
            self.model_bar.update(len(frame))
        if bias:
            batch = self._bias_batch(frame, pred)
            for acc in self.accumulators:
                acc.update(batch)
        if self.kept is not None:
            part = self._rows_to_keep(frame, pred)
            self.kept_bytes += int(part.memory_usage(deep=True).sum())
            self.kept.append(part)
            if self.kept_bytes > self.budget:
                # too big to hold: from here on keep a uniform sample, and stream SHAP later
                start = 0
                for k in self.kept:
                    self.sample.add(k, start)
                    start += len(k)
                self.kept = None
                self.notes.append(f"the rows exceed the memory budget ({self.budget:,} bytes): SHAP streamed "
                                  f"the file a second time; the baseline and PDP used a uniform sample of at "
                                  f"most {SAMPLE_ROWS:,} rows; FlipTest was not computed")
        elif self.sample is not None:
            self.sample.add(self._rows_to_keep(frame, pred), c.start)

    def _decide(self, chunks: list[Any]) -> None:
        """Equality vs. threshold for the label and every facet, from the first DECIDE_ROWS rows;
        then create one bias accumulator per facet."""
        import pandas as pd

        cfg, plan = self.cfg, self.plan
        head = pd.concat([c.frame for c in chunks], ignore_index=True).iloc[:DECIDE_ROWS]
        if not (cfg.pre_training_bias or cfg.post_training_bias):
            return
        plan.label_values, plan.label_threshold = _values_or_threshold(cfg.label_values_or_threshold, head[plan.label])
        _check_values_kind("label_values_or_threshold", plan.label_values, head[plan.label])
        plan.label_numeric = _numeric_dtype(head[plan.label])
        if plan.label_values is not None:
            plan.negative_label = _negative_label(plan.label_values, head[plan.label])
        for i, f in enumerate(plan.facets):
            if f.values is not None:
                f.values, f.threshold = _values_or_threshold(f.values, head[f.name])
                _check_values_kind(f"facet[{i}].value_or_threshold", f.values, head[f.name])
            elif _numeric_dtype(head[f.name]) and head[f.name].nunique() > MAX_CATEGORIES:
                raise ValueError(f"facet {f.name!r}: a numeric facet with many values needs value_or_threshold "
                                 f"(a threshold, e.g. [40])")
        pred_col = self.pred_col if cfg.post_training_bias is not None else None
        from clarion import bias

        # Counts accumulate chunk by chunk; with ``confidence`` the accumulators also keep the
        # bootstrap replicate tables (rows numbered in reading order, as one report on all rows).
        n_boot = max([m.n_bootstrap for m in (cfg.pre_training_bias, cfg.post_training_bias)
                      if m is not None and m.confidence is not None], default=0)
        for f in plan.facets:
            self.accumulators.append(bias.Accumulator(
                label=plan.label, facet=f.name, facet_values=f.values, facet_threshold=f.threshold,
                label_values=plan.label_values, label_threshold=plan.label_threshold,
                predicted_label=pred_col, probability_threshold=cfg.probability_threshold,
                group_variable=plan.group, weights=plan.weights, n_bootstrap=n_boot,
                seed=self.seed if n_boot else None))

    def _bias_batch(self, frame: Any, pred: Any) -> Any:
        import pandas as pd

        plan = self.plan
        cols = list(dict.fromkeys(c for c in [plan.label, *(f.name for f in plan.facets), plan.group, plan.weights,
                                                plan.predicted] if c))
        batch = frame[cols].copy()
        if pred is not None:
            batch[self.pred_col] = pd.Series(pred, index=batch.index)
        return batch

    def _rows_to_keep(self, frame: Any, pred: Any) -> Any:
        plan = self.plan
        cols = list(dict.fromkeys(plan.features + [f.name for f in plan.facets]
                                  + [c for c in [plan.label, plan.predicted, plan.join, plan.group, plan.weights] if c]))
        part = frame[cols].copy()
        if pred is not None:
            part[self.pred_col] = pred
        return part

    def _rows(self) -> Any:
        """The kept rows (or the uniform sample), built once after the read."""
        import pandas as pd

        if getattr(self, "_rows_cache", None) is None:
            if self.kept is not None:
                self._rows_cache = pd.concat(self.kept, ignore_index=True) if self.kept else None
                self.kept = [self._rows_cache]
            else:
                self._rows_cache = self.sample.result()
        return self._rows_cache

    # -- bias ---------------------------------------------------------------------------------------
    def _bias_sections(self, want_ft: bool) -> dict[str, Any]:
        cfg, plan = self.cfg, self.plan
        out: dict[str, Any] = {}
        stages = [("pre_training_bias_metrics", "pre", cfg.pre_training_bias),
                  ("post_training_bias_metrics", "post", cfg.post_training_bias)]
        for key, stage, mcfg in stages:
            if mcfg is None:
                continue
            methods = mcfg.methods
            if stage == "post" and want_ft:
                from clarion.config import POST_TRAINING_METHODS

                methods = [m for m in (POST_TRAINING_METHODS if methods == "all" else methods) if m != "FT"]
            section: dict[str, Any] | None = None
            for f, acc in zip(plan.facets, self.accumulators):
                kw: dict[str, Any] = {"methods": methods, "stage": stage}
                if mcfg.confidence is not None:
                    kw.update(confidence=mcfg.confidence, n_bootstrap=mcfg.n_bootstrap)
                part = acc.report(**kw).to_dict()[key] if methods else None
                if stage == "post" and want_ft:
                    part = self._with_flip_test(f, part)
                if section is None:
                    section = {k: v for k, v in part.items() if k != "facets"}
                    section["facets"] = {}
                for name, entries in part["facets"].items():  # two config entries on one column: both lists
                    section["facets"].setdefault(name, []).extend(entries)
            out[key] = section
        return out

    def _with_flip_test(self, f: _Facet, part: dict[str, Any] | None) -> dict[str, Any]:
        """FlipTest needs the rows (nearest neighbours), not counts: computed on the kept rows."""
        from clarion import bias

        cfg, plan = self.cfg, self.plan
        if self.kept is None:
            err = "FlipTest needs every row in memory; the data exceeds the memory budget"
            if part is None:
                acc = self.accumulators[self.plan.facets.index(f)]
                part = acc.report(methods=["DPPL"], stage="post").to_dict()["post_training_bias_metrics"]
                for e in part["facets"][f.name]:
                    e["metrics"] = []
            for e in part["facets"][f.name]:
                e["metrics"].append({"name": "FT", "description": "Flip Test (FT)", "value": None, "error": err})
                e["metrics"].sort(key=lambda m: m["name"])
            return part
        rows = self._rows()
        # FlipTest's neighbours are found in the model's feature space (+ this facet, label, prediction)
        cols = list(dict.fromkeys(plan.features + [c for c in (f.name, plan.label, self.pred_col, plan.group,
                                                                   plan.weights) if c]))
        ft = bias.report(rows[cols], label=plan.label, facet=f.name, facet_values=f.values,
                         facet_threshold=f.threshold, label_values=plan.label_values,
                         label_threshold=plan.label_threshold, predicted_label=self.pred_col,
                         probability_threshold=cfg.probability_threshold, group_variable=plan.group,
                         weights=plan.weights, methods=["FT"], stage="post"
                         ).to_dict()["post_training_bias_metrics"]
        if part is None:
            return ft
        by_value = {bias.entry_key(e["value_or_threshold"]): e for e in ft["facets"][f.name]}
        for e in part["facets"][f.name]:
            extra = by_value.get(bias.entry_key(e["value_or_threshold"]))
            if extra is not None:
                e["metrics"].extend(m for m in extra["metrics"] if m["name"] == "FT")
                e["metrics"].sort(key=lambda m: m["name"])
        return part

    # -- SHAP ---------------------------------------------------------------------------------------
    def _baseline(self, rows: Any) -> tuple[Any, Any]:
        """(background for KernelShap, DataFrame to save or None when the config gave one)."""
        import pandas as pd

        from clarion import explain

        sc, plan = self.cfg.shap, self.plan
        feats = plan.features
        b = sc.baseline
        if b is None:
            k = min(sc.num_clusters or DEFAULT_NUM_CLUSTERS, len(rows))
            bg = explain.kmeans_baseline(rows[feats], k)
            return bg, _baseline_frame(bg, feats)
        if isinstance(b, str):
            from clarion.dataset import read_dataset

            path = b if os.path.isabs(b) else os.path.join(self.base_dir, b)
            frame, _ = read_dataset(path, self.cfg.dataset_type,
                                    headers=feats if self.cfg.dataset_type == "text/csv" else None,
                                    features=self.cfg.features).read_all()
        elif b and isinstance(b[0], dict):
            frame = pd.DataFrame.from_records(b)
        else:
            frame = pd.DataFrame(b)
            if frame.shape[1] != len(feats):
                raise ValueError(f"methods.shap.baseline: rows have {frame.shape[1]} values but there are "
                                 f"{len(feats)} features {feats}")
            frame.columns = feats
        missing = [c for c in feats if c not in frame.columns]
        if missing:
            raise ValueError(f"methods.shap.baseline: missing feature columns {missing}")
        frame = frame[feats].copy()
        for c in feats:
            if _numeric_dtype(rows[c]):
                frame[c] = pd.to_numeric(frame[c]).astype(rows[c].dtype)
        return frame, None

    def _shap(self) -> tuple[dict[str, Any], Any, Any]:
        import pandas as pd

        from clarion import explain

        sc, plan = self.cfg.shap, self.plan
        rows = self._rows()
        bg, baseline_frame = self._baseline(rows)
        if baseline_frame is not None:
            p = os.path.join(self.out_dir, "explanations_shap", "baseline.csv")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            atomic_write_text(p, baseline_frame.to_csv(index=False))
            self.paths["baseline"] = p
        cols = self.outputs.explained(self._n_outputs(rows))
        names = self.outputs.names(len(cols))
        self.explained_cols = cols
        self.shap_model = _Selected(self.outputs.model, cols, rows[plan.features].dtypes)
        kw: dict[str, Any] = {"num_samples": sc.num_samples, "seed": self.seed,
                              "link": "logit" if sc.use_logit else "identity"}
        if sc.features_to_explain:
            kw["features_to_explain"] = [_resolve(f"methods.shap.features_to_explain[{i}]", f, plan.features)
                                         for i, f in enumerate(sc.features_to_explain)]
        explainer = explain.KernelShap(self.shap_model, bg, **kw)
        feats = kw.get("features_to_explain") or plan.features
        sink = None
        if sc.save_local_shap_values:
            out_csv = os.path.join(self.out_dir, "explanations_shap", "out.csv")
            out_pq = os.path.join(self.out_dir, "explanations_shap", "out.parquet") if self.source.is_parquet else None
            sink = _CsvSink(out_csv, out_pq)
        local_cols = [f"{f}_{lab}" for lab in names for f in feats]
        parts: list[np.ndarray] = []
        bases: list[np.ndarray] = []  # expected values; per row with features_to_explain
        bar = Progress("SHAP", total=self.n_rows, unit="rows", enabled=self.progress)
        done = 0

        def tick(k: int, total: int) -> None:  # explain() reports synthetic rows of this batch
            bar.set(done + int(n_batch * k / max(total, 1)))

        try:
            for X, join in self._shap_batches():
                n_batch = len(X)
                e = explainer.explain(dask_rows(X[plan.features]), progress=tick if self.progress else None)
                done += n_batch
                vals = _values_3d(e, feats)
                bases.append(_base_rows(e, len(X), len(names)))
                parts.append(vals)
                if sink is not None:
                    frame = pd.DataFrame(vals.transpose(0, 2, 1).reshape(len(X), -1), columns=local_cols)
                    if join is not None:
                        frame.insert(0, plan.join, join.to_numpy())
                    sink.write(frame)
                bar.set(done)
            if sink is not None:
                sink.commit()
                self.paths["local_shap"] = sink.path
                if sink.parquet_path:
                    self.paths["local_shap_parquet"] = sink.parquet_path
        except BaseException:
            if sink is not None:
                sink.abort()
            raise
        finally:
            bar.close()
        allv = np.concatenate(parts, axis=0)
        # one base value per output; with features_to_explain it depends on the row (the other
        # features keep the row's values) and analysis.json reports its mean over the explained rows
        exp = (np.concatenate(bases, axis=0).mean(axis=0) if "features_to_explain" in kw
               else np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64)))
        block: dict[str, Any] = {}
        for d, lab in enumerate(names):
            g = _aggregate(allv[:, :, d], sc.agg_method)
            block[lab] = {"global_shap_values": {f: float(v) for f, v in zip(feats, g)},
                          "expected_value": float(exp[d])}
        local = pd.DataFrame(allv.transpose(0, 2, 1).reshape(allv.shape[0], -1), columns=local_cols)
        feature_values = rows[feats] if self.kept is not None else None
        if feature_values is None:
            local = None  # the strip plot colours need the rows; streamed runs show global bars only
        return block, local, feature_values

    def _shap_batches(self) -> Iterator[tuple[Any, Any]]:
        """Rows to explain in input order: the kept rows, or a second streaming read."""
        plan = self.plan
        step = self.source.chunk_rows if self.source.reader is None else self.source.reader.chunk_rows
        if self.kept is not None:
            rows = self._rows()
            for s in range(0, len(rows), step):
                part = rows.iloc[s : s + step]
                yield part, (part[plan.join] if plan.join else None)
            return
        for c in self.source:
            yield c.frame, (c.frame[plan.join] if plan.join else None)

    def _n_outputs(self, rows: Any) -> int:
        n = getattr(self.outputs.model, "n_outputs", None)
        if isinstance(n, (int, np.integer)) and n > 0:
            return int(n)
        return self.outputs.predict(rows[self.plan.features].iloc[:1]).shape[1]

    # -- PDP ----------------------------------------------------------------------------------------
    def _pdp(self, shap_block: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        from clarion import explain

        pc, plan = self.cfg.pdp, self.plan
        rows = self._rows()
        if pc.features:
            feats = [_resolve(f"methods.pdp.features[{i}]", f, plan.features) for i, f in enumerate(pc.features)]
        else:
            g = next(iter(shap_block.values()))["global_shap_values"]
            feats = [k for k, _ in sorted(g.items(), key=lambda kv: -abs(kv[1]))][: pc.top_k_features]
        model = getattr(self, "shap_model", None)
        if model is None:
            model = _Selected(self.outputs.model, self.outputs.explained(self._n_outputs(rows)),
                              rows[plan.features].dtypes)
        names = self.outputs.names(len(model.cols))  # as the kernel_shap blocks are named
        X = rows[plan.features]
        bar = Progress("PDP", total=len(feats), unit="features", enabled=self.progress)
        entries = []
        for f in feats:
            try:
                pdp = explain.partial_dependence(model, dask_rows(X), [f], grid_resolution=pc.grid_resolution)
                entries.append(_pdp_entry(pdp, f, X[f], names))
            except Exception as exc:  # noqa: BLE001 - Clarify reports a failed feature as an entry with "error"
                entries.append({"feature_name": f, "data_type": "categorical" if not _numeric_dtype(X[f])
                                else "numerical", "error": str(exc)})
            bar.update(1)
        bar.close()
        return entries

    # -- writing -----------------------------------------------------------------------------------
    def _write(self, analysis: dict[str, Any], local: Any, feature_values: Any) -> AnalysisResult:
        from clarion.report import write_analysis_json, write_report

        cfg = self.cfg
        p_json = os.path.join(self.out_dir, "analysis.json")
        write_analysis_json(p_json, analysis)
        p_cfg = os.path.join(self.out_dir, "analysis_config.json")
        cfg.write(p_cfg)
        rep = cfg.report
        name, title = (rep.name, rep.title) if rep is not None else ("report", "Analysis Report")
        paths = write_report(self.out_dir, analysis, name=name, title=title, config=cfg.to_dict(),
                             local_shap=local, feature_values=feature_values, notes=self.notes)
        self.paths.update(analysis=p_json, config=p_cfg, report_html=paths["html"], report_md=paths["md"])
        import json

        with open(p_json, encoding="utf-8") as fh:
            doc = json.load(fh)
        return AnalysisResult(self.out_dir, doc, dict(self.paths), self.n_rows, self.source.skipped,
                              self.source.skipped_examples, list(self.notes))


# ---- engine adapters (thin: the engines' public APIs are fixed by their issues) --------------------


class _Selected:
    """The model restricted to the explained outputs; a callable taking the feature DataFrame."""

    def __init__(self, model: Any, cols: list[int], dtypes: Any) -> None:
        self.model, self.cols, self.dtypes = model, list(cols), dtypes

    def __call__(self, X: Any) -> np.ndarray:
        import pandas as pd

        if not isinstance(X, pd.DataFrame):  # an array: back to the data's columns and dtypes
            X = pd.DataFrame(np.asarray(X), columns=list(self.dtypes.index)).astype(self.dtypes.to_dict())
        out = np.asarray(self.model.predict(X), dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        out = out[:, self.cols]
        return out[:, 0] if out.shape[1] == 1 else out


def _values_3d(e: Any, feats: list[str]) -> np.ndarray:
    v = np.asarray(e.values, dtype=np.float64)
    if v.ndim == 2:
        v = v[:, :, None]
    if v.shape[1] != len(feats):  # values for every feature; keep the explained ones
        names = list(e.feature_names)
        v = v[:, [names.index(f) for f in feats], :]
    return v


def _base_rows(e: Any, n: int, d: int) -> np.ndarray:
    """The explanation's expected value as ``(n, d)``: one row per explained row, one column per
    explained output (a global base value, shape () or (d,), is repeated; a per-row one, as with
    ``features_to_explain``, shape (n,) or (n, d), is kept per row)."""
    ev = np.asarray(e.expected_value, dtype=np.float64)
    if ev.ndim == np.ndim(e.values) - 1:  # per row
        return ev.reshape(n, d)
    return np.broadcast_to(ev.reshape(1, d), (n, d))


def _aggregate(v: np.ndarray, agg: str) -> np.ndarray:
    """Clarify's global aggregation over records: mean |φ|, median φ (signed) or mean φ²."""
    if agg == "mean_abs":
        return np.mean(np.abs(v), axis=0)
    if agg == "mean_sq":
        return np.mean(v * v, axis=0)
    return np.median(v, axis=0)


def _baseline_frame(bg: Any, feats: list[str]) -> Any:
    import pandas as pd

    if isinstance(bg, pd.DataFrame):
        return bg
    for attr in ("data", "frame", "centers"):
        v = getattr(bg, attr, None)
        if v is not None:
            return v if isinstance(v, pd.DataFrame) else pd.DataFrame(np.asarray(v), columns=feats)
    if isinstance(bg, tuple):
        return _baseline_frame(bg[0], feats)
    return pd.DataFrame(np.asarray(bg), columns=feats)


def _pdp_entry(pdp: Any, feature: str, col: Any, label_headers: list[str] | None = None) -> dict[str, Any]:
    """Clarify's PdpEntry from clarion's tidy partial_dependence output, with the data distribution
    (share of rows per bucket: the buckets of the grid's centres, i.e. rows nearest each grid value,
    a value on a bucket edge counted in the upper bucket; per category for categorical features) and
    ``label_headers`` naming the lists of ``model_predictions``."""
    import pandas as pd

    df = pdp if isinstance(pdp, pd.DataFrame) else pd.DataFrame(pdp)
    if "feature" in df.columns:
        df = df[df["feature"] == feature]
    value_col = next(c for c in ("value", "grid_value", "feature_value", "x") if c in df.columns)
    pred_col = next(c for c in ("prediction", "average", "mean_prediction", "pdp", "y") if c in df.columns)
    out_col = next((c for c in ("output", "label", "target") if c in df.columns), None)
    grid = list(dict.fromkeys(df[value_col].tolist()))
    if out_col is None:
        preds = [df[pred_col].astype(float).tolist()]
    else:
        preds = [g.set_index(value_col).loc[grid, pred_col].astype(float).tolist()
                 for _, g in df.groupby(out_col, sort=False)]
    numeric = _numeric_dtype(col)
    vals = col.dropna()
    if numeric:
        g = np.asarray(grid, dtype=np.float64)
        order = np.argsort(g)
        edges = (g[order][1:] + g[order][:-1]) / 2
        idx = np.searchsorted(edges, vals.to_numpy(np.float64), side="right")
        counts = np.bincount(idx, minlength=len(g)).astype(np.float64)
        dist = np.empty(len(g))
        dist[order] = counts
        feature_values = [float(x) for x in g]
    else:
        vc = vals.astype(str).value_counts()
        dist = np.asarray([vc.get(str(x), 0) for x in grid], dtype=np.float64)
        feature_values = [x.item() if hasattr(x, "item") else x for x in grid]
    dist = dist / max(len(vals), 1)
    entry = {"feature_name": feature, "data_type": "numerical" if numeric else "categorical",
             "feature_values": feature_values, "model_predictions": preds}
    if label_headers is not None:
        entry["label_headers"] = [str(h) for h in label_headers]
    entry["data_distribution"] = [float(x) for x in dist]
    return entry


# ---- command line --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``clarion analyze``."""
    parser.add_argument("--config", required=True, help="analysis_config.json (or .yaml)")
    parser.add_argument("--data", required=True, help="the data file (CSV, JSON Lines, JSON or Parquet)")
    parser.add_argument("--output", required=True, help="output directory")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--model", help="a model file clarion.models.as_model reads (overrides predictor.model_uri)")
    g.add_argument("--endpoint", help="an HTTP model endpoint URL (overrides predictor.endpoint_url)")
    model_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty directory")
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="skip malformed records (counted in the report) instead of stopping")
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="rows per chunk read (default 50000)")
    parser.add_argument("--memory-budget", default="1GiB", help="memory for kept rows (default 1GiB)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no summary")
    dask_arguments(parser)  # --dask-scheduler / --dask-workers (clarion.distributed)


def model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--trusted``, ``--timeout``, ``--retries`` (clarion analyze and clarion monitor)."""
    parser.add_argument("--trusted", action="append", default=None, metavar="TYPE",
                        help="extra type to trust when loading a .skops model (repeatable; adds to "
                             "predictor.trusted_types)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="seconds one endpoint request may take in all (overrides predictor.timeout; "
                             "default 60)")
    parser.add_argument("--retries", type=int, default=None, metavar="N",
                        help="extra attempts on transient endpoint faults (overrides predictor.retries; "
                             "default 3)")


class _cli_warnings:
    """Show warnings (unknown config keys, SageMaker-only keys...) as one plain line each."""

    def __init__(self, command: str) -> None:
        self.command = command
        self._ctx = None

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("default")

        def show(message, category, filename, lineno, file=None, line=None):
            print(f"clarion {self.command}: warning: {message}", file=sys.stderr)

        warnings.showwarning = show

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def run(args: argparse.Namespace) -> int:
    """``clarion analyze``: returns an exit code of :mod:`clarion.cli`."""
    with _cli_warnings("analyze"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from clarion.cli import EXIT_OK

    model = _cli_model(args)
    with cli_cluster(args):  # a Dask client while --dask-scheduler / --dask-workers is given
        result = analyze(args.config, args.data, model=model, output_dir=args.output, progress=not args.quiet,
                         overwrite=args.overwrite, skip_bad_rows=args.skip_bad_rows, chunk_rows=args.chunk_rows,
                         memory_budget=args.memory_budget)
    if not args.quiet:
        print(result.summary(), file=sys.stdout)
    return EXIT_OK

