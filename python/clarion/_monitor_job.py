"""The analysis job of :func:`clarion.analyze`, with time windows as one more group axis.

:func:`analyze_windowed` runs the same job (same config semantics, same outputs) and, in the same
single read of the data, also keeps

* the bias counts per time window (:class:`clarion.bias.Accumulator` with ``window`` /
  ``time_column``: the window is just another group axis of the count tensor; the whole-data
  report is the sum of the windows' counts, so nothing is counted twice), and
* the local SHAP attributions of every explained row with its window, aggregated per window with
  the config's ``agg_method`` exactly as the global values are aggregated over all rows.

It wraps the job class of :mod:`clarion.analysis` (subclass hooks on the chunk, the kept rows and
the SHAP batches) rather than changing it. The time column is never a model feature: it is added
to ``excluded_columns`` (the written ``analysis_config.json`` shows it there).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clarion import analysis as _analysis

__all__ = ["WINDOW_START_COLUMN", "WindowedAnalysis", "analyze_windowed", "check_window", "is_fixed", "window_keys"]


#: the column of window starts the job adds to the bias batches for calendar windows
WINDOW_START_COLUMN = "__clarion_window_start__"


def is_fixed(window: str) -> bool:
    """True for a fixed-length frequency (``"1D"``, ``"6h"``), False for a calendar one (``"ME"``)."""
    import pandas as pd

    try:
        pd.Timestamp("2000-01-01").floor(window)
    except ValueError:
        return False
    return True


def check_window(window: str) -> str:
    """Validate a window frequency (a pandas frequency string); returns it.

    * fixed frequencies (``"1D"``, ``"7D"``, ``"6h"``, ``"15min"``): a row's window starts at its
      time floored to the frequency (windows aligned on the Unix epoch);
    * calendar frequencies of one unit (``"MS"``/``"ME"`` months, ``"QS"``/``"QE"`` quarters,
      ``"YS"``/``"YE"`` years, ``"W"``/``"W-MON"`` weeks, ``"B"`` business days, ``"SMS"``…): a
      row's window is the calendar period that contains its day, named by its first day. A
      ``…S`` (begin) frequency starts the period on the anchor (``"MS"``: the 1st); an end-anchored
      one (``"ME"``, ``"W"`` = weeks ending on Sunday) ends it on the anchor, as
      ``pandas.Series.resample`` bins them (``"W"``: Monday to Sunday). For months, ``"MS"`` and
      ``"ME"`` give the same windows.

    Multiples of calendar frequencies (``"2ME"``) and intraday calendar frequencies (business
    hours) are refused, as is a non-positive length: ``ValueError`` naming the value.
    """
    import pandas as pd

    try:
        off = pd.tseries.frequencies.to_offset(window)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"window: {window!r} is not a pandas frequency ({exc})") from None
    if off.n <= 0:
        raise ValueError(f"window: must be a positive length, got {window!r}")
    if is_fixed(window):
        if off.nanos <= 0:
            raise ValueError(f"window: must be a positive length, got {window!r}")
        return window
    if off.n != 1:
        raise ValueError(f"window: {window!r}: a calendar frequency must be a single unit (e.g. 'ME', 'QS', 'W'), "
                         f"not a multiple; use a fixed length such as '14D' instead")
    if isinstance(off, (pd.offsets.BusinessHour, pd.offsets.CustomBusinessHour)) or (
            isinstance(off, pd.offsets.Week) and off.weekday is None):
        raise ValueError(f"window: {window!r} is not supported; use a fixed length (e.g. '1h', '7D') or a calendar "
                         f"period of a day or longer (e.g. 'W', 'ME')")
    return window


def _window_starts(t: Any, window: str) -> Any:
    """The start of the window of each (parsed) timestamp; see :func:`check_window`."""
    import pandas as pd

    if is_fixed(window):
        return t.dt.floor(window)
    off = pd.tseries.frequencies.to_offset(window)
    day = t.dt.normalize()
    uniq = pd.Series(day.unique())
    one = pd.Timedelta(days=1)
    if "End" in type(off).__name__ or isinstance(off, pd.offsets.Week):  # the period ends on the anchor
        start = [off.rollback(d - one) + one for d in uniq]
    else:  # the period starts on the anchor
        start = [off.rollback(d) for d in uniq]
    lookup = pd.Series(start, index=uniq.to_numpy())
    return pd.Series(lookup.reindex(day.to_numpy()).to_numpy(), index=t.index).dt.normalize()


def window_keys(times: Any, window: str, *, column: str = "time_column", where: Any = None) -> np.ndarray:
    """The window of each timestamp, named as :class:`clarion.bias.Accumulator` names windows: the
    window start (:func:`check_window`), in ISO format (timezone-aware times keep their offset in the name).

    ``where(i)`` (optional) locates row ``i`` in error messages (e.g. "data.csv: line 12").
    A missing or unparseable timestamp raises ``ValueError`` naming the column and the row."""
    names, inv = _window_codes(_window_starts(_parse_times(times, column, where), window))
    return names[inv]


def _parse_times(times: Any, column: str, where: Any) -> Any:
    """The timestamps as a datetime Series; missing/unparseable values raise (see :func:`window_keys`)."""
    import pandas as pd

    s = pd.Series(np.asarray(times)) if not isinstance(times, pd.Series) else times.reset_index(drop=True)
    try:
        t = pd.to_datetime(s)
    except (ValueError, TypeError):
        t = None
    if t is None:  # e.g. ISO timestamps with and without a time of day in one column
        try:
            t = pd.to_datetime(s, format="ISO8601")
        except (ValueError, TypeError):
            t = None
    if t is None:
        t = pd.to_datetime(s, errors="coerce", format="mixed")
        bad = np.flatnonzero(t.isna().to_numpy() & s.notna().to_numpy())
        at = f"{where(int(bad[0]))}, " if where is not None and len(bad) else ""
        raise ValueError(f"{at}column {column!r}: "
                         + (f"{s.iloc[int(bad[0])]!r} is not a timestamp" if len(bad) else "values are not timestamps"))
    if t.isna().any():
        i = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise ValueError(f"{where(i) + ', ' if where is not None else ''}column {column!r}: missing timestamp"
                         + ("" if where is not None else f" at row {i}"))
    return t


def _window_codes(starts: Any) -> tuple[np.ndarray, np.ndarray]:
    """(distinct window names, index of each row's name) for the window starts of the rows."""
    import pandas as pd

    start = starts.to_numpy()
    uniq, inv = np.unique(start, return_inverse=True)
    return np.array([pd.Timestamp(u).isoformat() for u in uniq], dtype=object), inv.reshape(-1)


@dataclass
class WindowedAnalysis:
    """What :func:`analyze_windowed` produced.

    Attributes
    ----------
    result : clarion.analysis.AnalysisResult
        The whole-data analysis (what :func:`clarion.analyze` returns for the same inputs).
    windows : dict
        Window start (ISO) -> an ``analysis.json``-shaped document of that window's rows (bias
        sections without FlipTest, which needs the rows; ``explanations.kernel_shap`` with the
        window's global attributions).
    n_rows : dict
        Window start -> rows in the window.
    """

    result: Any
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_rows: dict[str, int] = field(default_factory=dict)


class _WindowedJob(_analysis._Job):
    def __init__(self, *args: Any, time_column: str, window: str) -> None:
        super().__init__(*args)
        self.time_column, self.window = time_column, window
        self.window_rows: dict[str, int] = {}
        self.window_shap: dict[str, dict[str, Any]] = {}
        self._shap_times: list[np.ndarray] = []
        self.window_accs: list[Any] = []

    def run(self) -> Any:
        tc = self.time_column
        columns = self.source.columns()
        if tc not in columns:
            raise ValueError(f"time_column: column {tc!r} not found in the data (columns: {columns})")
        if WINDOW_START_COLUMN in columns:
            raise ValueError(f"data: column {WINDOW_START_COLUMN!r} is reserved for clarion's window starts")
        plan = _analysis._make_plan(self.cfg, columns)
        for role, col in (("label", plan.label), ("predicted_label", plan.predicted), ("weights", plan.weights),
                          ("group_variable", plan.group), *(("facet", f.name) for f in plan.facets)):
            if col == tc:
                raise ValueError(f"time_column: {tc!r} is the {role} column; the time column must be a column "
                                 f"of its own")
        return super().run()

    # -- pass 1: one read; the window is a group axis of the counts -------------------------------
    def _process(self, c: Any, bias: bool) -> None:
        path = self.source.path

        def where(i: int) -> str:
            return f"{path}: line {int(c.lines[i])}" if c.lines is not None and len(c.lines) > i else path

        t = _parse_times(c.frame[self.time_column], self.time_column, where)
        starts = _window_starts(t, self.window)
        names, inv = _window_codes(starts)
        for k, m in zip(names.tolist(), np.bincount(inv, minlength=len(names)).tolist()):
            self.window_rows[k] = self.window_rows.get(k, 0) + int(m)
        self._chunk = (c.frame, t, starts)  # for _bias_batch on the same frame
        try:
            super()._process(c, bias)
        finally:
            self._chunk = None

    def _decide(self, chunks: list[Any]) -> None:
        super()._decide(chunks)
        from clarion import bias

        # fixed windows: the Accumulator floors the time column itself; calendar windows: the job
        # adds each row's window start (a midnight), which flooring to the day leaves as it is
        win, col = (self.window, self.time_column) if is_fixed(self.window) else ("1D", WINDOW_START_COLUMN)
        for acc in self.accumulators:
            kw = {k: v for k, v in acc._config.items() if k not in ("window", "time_column")}
            self.window_accs.append(bias.Accumulator(**kw, window=win, time_column=col))
        self.accumulators = list(self.window_accs)  # the whole-data report is the sum of the windows

    def _bias_batch(self, frame: Any, pred: Any) -> Any:
        batch = super()._bias_batch(frame, pred)
        chunk = getattr(self, "_chunk", None)
        if chunk is not None and chunk[0] is frame:
            _, t, starts = chunk
        else:
            t = _parse_times(frame[self.time_column], self.time_column, None)
            starts = _window_starts(t, self.window)
        batch[self.time_column] = t.to_numpy()  # parsed: the Accumulator floors these very times
        if not is_fixed(self.window):
            batch[WINDOW_START_COLUMN] = starts.to_numpy()
        return batch

    def _rows_to_keep(self, frame: Any, pred: Any) -> Any:
        part = super()._rows_to_keep(frame, pred)
        if self.time_column not in part.columns:
            part[self.time_column] = frame[self.time_column].to_numpy()
        return part

    # -- SHAP: remember each explained row's window --------------------------------------------------
    def _shap_batches(self) -> Any:
        self._shap_times = []
        for X, join in super()._shap_batches():
            self._shap_times.append(window_keys(X[self.time_column], self.window))
            yield X, join

    def _shap(self) -> tuple[dict[str, Any], Any, Any]:
        import pandas as pd

        sc = self.cfg.shap
        streamed = self.kept is None
        forced = streamed and not sc.save_local_shap_values
        if forced:  # the streamed run keeps no local values in memory: read them back from out.csv
            sc.save_local_shap_values = True
        try:
            block, local, feature_values = super()._shap()
            values = local
            if values is None:
                values = pd.read_csv(self.paths["local_shap"])
        finally:
            if forced:
                sc.save_local_shap_values = False
                for key in ("local_shap", "local_shap_parquet"):
                    p = self.paths.pop(key, None)
                    if p and os.path.exists(p):
                        os.unlink(p)
        keys = np.concatenate(self._shap_times) if self._shap_times else np.empty(0, dtype=object)
        if len(keys) != len(values):
            raise RuntimeError(f"internal: {len(values)} local attributions for {len(keys)} timestamps")
        for k in sorted(set(keys.tolist())):
            rows = keys == k
            out: dict[str, Any] = {}
            for label, b in block.items():
                feats = list(b["global_shap_values"])
                v = values.loc[rows, [f"{f}_{label}" for f in feats]].to_numpy(np.float64)
                g = _analysis._aggregate(v, sc.agg_method)
                out[label] = {"global_shap_values": {f: float(x) for f, x in zip(feats, g)},
                              "expected_value": b["expected_value"]}
            self.window_shap[k] = out
        return block, local, feature_values

    # -- per-window documents ----------------------------------------------------------------------
    def window_documents(self) -> dict[str, dict[str, Any]]:
        cfg = self.cfg
        from clarion.config import POST_TRAINING_METHODS, PRE_TRAINING_METHODS

        docs: dict[str, dict[str, Any]] = {k: {"version": "1.0"} for k in sorted(self.window_rows)}
        stages = [("pre_training_bias_metrics", "pre", cfg.pre_training_bias, PRE_TRAINING_METHODS),
                  ("post_training_bias_metrics", "post", cfg.post_training_bias, POST_TRAINING_METHODS)]
        for key, stage, mcfg, every in stages:
            if mcfg is None or not self.window_accs:
                continue
            methods = [m for m in (every if mcfg.methods == "all" else mcfg.methods) if m != "FT"]
            if not methods:
                continue
            templates: dict[int, dict[str, Any]] = {}
            for w in self.window_accs[0].windows():
                section: dict[str, Any] | None = None
                for i, acc in enumerate(self.window_accs):
                    try:
                        part = acc.report(methods=methods, stage=stage, window=w).to_dict()[key]
                    except ValueError as exc:  # e.g. the facet value or the positive label absent from the window
                        if i not in templates:
                            templates[i] = acc.report(methods=methods, stage=stage).to_dict()[key]
                        part = _failed(templates[i], f"not computable on this window's rows: {exc}")
                    if section is None:
                        section = {k: v for k, v in part.items() if k != "facets"}
                        section["facets"] = {}
                    for name, entries in part["facets"].items():  # two config entries on one column: both
                        section["facets"].setdefault(name, []).extend(entries)
                docs.setdefault(w, {"version": "1.0"})[key] = section
        for w, block in self.window_shap.items():
            docs.setdefault(w, {"version": "1.0"})["explanations"] = {"kernel_shap": block}
        return docs


def _failed(section: dict[str, Any], error: str) -> dict[str, Any]:
    """``section`` with every metric value null and ``error`` set (Clarify's form of a failed metric)."""
    return {**{k: v for k, v in section.items() if k != "facets"},
            "facets": {f: [{"value_or_threshold": e["value_or_threshold"],
                            "metrics": [{"name": m["name"], "description": m["description"], "value": None,
                                         "error": error} for m in e["metrics"]]} for e in entries]
                       for f, entries in section["facets"].items()}}


def _config_with_time_excluded(cfg: Any, time_column: str) -> Any:
    cfg = copy.deepcopy(cfg)
    excluded = list(cfg.excluded_columns or [])
    if time_column not in excluded:
        excluded.append(time_column)
    cfg.excluded_columns = excluded
    return cfg


def analyze_windowed(config: Any, data: Any, *, time_column: str, window: str, model: Any = None,
                     output_dir: str | os.PathLike, progress: bool = False, overwrite: bool = False,
                     skip_bad_rows: bool = False, chunk_rows: int = 50_000,
                     memory_budget: int | str = _analysis.DEFAULT_MEMORY_BUDGET) -> WindowedAnalysis:
    """:func:`clarion.analyze` plus per-window bias metrics and global attributions, in one read.

    Parameters are those of :func:`clarion.analyze`, plus ``time_column`` (the timestamp column,
    never used as a model feature) and ``window`` (a pandas frequency, see :func:`check_window`).
    """
    from clarion.config import read_config

    check_window(window)
    if not isinstance(time_column, str) or not time_column:
        raise ValueError(f"time_column: expected a column name, got {time_column!r}")
    base_dir = os.path.dirname(os.path.abspath(os.fspath(config))) if isinstance(config, (str, os.PathLike)) \
        else os.getcwd()
    cfg = _config_with_time_excluded(read_config(config), time_column)
    out_dir = os.fspath(output_dir)
    budget = _analysis.parse_bytes(memory_budget)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows: must be >= 1, got {chunk_rows}")
    _analysis._prepare_output_dir(out_dir, overwrite)
    with _analysis._staged(out_dir) as staged:  # the previous results stay until this run has succeeded
        job = _WindowedJob(cfg, data, model, staged.stage, base_dir, progress, skip_bad_rows, chunk_rows, budget,
                           time_column=time_column, window=window)
        result = job.run()
    return WindowedAnalysis(staged.moved(result), job.window_documents(), dict(sorted(job.window_rows.items())))
