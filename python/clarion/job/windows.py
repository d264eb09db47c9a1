"""The analysis job of :func:`clarion.analyze`, with time windows as one more group axis.

:func:`clarion.job.analyze_windowed` runs the same job (same config semantics, same outputs) and, in the same
single read of the data, also keeps

* the bias counts per time window (:class:`clarion.bias.Accumulator` with ``window`` /
  ``time_column``: the window is just another group axis of the count tensor; the whole-data
  report is the sum of the windows' counts, so nothing is counted twice), and
* the local SHAP attributions of every explained row with its window, aggregated per window with
  the config's ``agg_method`` exactly as the global values are aggregated over all rows.

The window is a sink of the one pass (:class:`WindowSplitter`), not a second job. The time column
is never a model feature: it is added to ``excluded_columns`` (the written ``analysis_config.json``
shows it there).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clarion.job.explain import _aggregate

__all__ = ["WINDOW_START_COLUMN", "WindowSplitter", "WindowedAnalysis", "check_window", "is_fixed", "window_keys"]


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
        raise ValueError(
            f"window: {window!r}: a calendar frequency must be a single unit (e.g. 'ME', 'QS', 'W'), "
            f"not a multiple; use a fixed length such as '14D' instead"
        )
    if isinstance(off, (pd.offsets.BusinessHour, pd.offsets.CustomBusinessHour)) or (
        isinstance(off, pd.offsets.Week) and off.weekday is None
    ):
        raise ValueError(
            f"window: {window!r} is not supported; use a fixed length (e.g. '1h', '7D') or a calendar "
            f"period of a day or longer (e.g. 'W', 'ME')"
        )
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
        raise ValueError(
            f"{at}column {column!r}: "
            + (f"{s.iloc[int(bad[0])]!r} is not a timestamp" if len(bad) else "values are not timestamps")
        )
    if t.isna().any():
        i = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise ValueError(
            f"{where(i) + ', ' if where is not None else ''}column {column!r}: missing timestamp"
            + ("" if where is not None else f" at row {i}")
        )
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


class WindowSplitter:
    """The window sink of the one pass (:class:`clarion.job.run._Job` with ``windows=``): each
    chunk's rows get their window (counted per window), the bias batches carry the parsed times so
    that the accumulators count per window (the window is a group axis of the count tensor; the
    whole-data report is the sum of the windows), the kept rows keep the time column, and each
    explained row's window groups the local attributions for the per-window global values."""

    def __init__(self, time_column: str, window: str) -> None:
        self.time_column, self.window = time_column, window
        self.rows: dict[str, int] = {}
        self.shap: dict[str, dict[str, Any]] = {}
        self.shap_keys: list[np.ndarray] = []
        self._chunk: tuple[Any, Any, Any] | None = None

    def check_columns(self, columns: list[str], plan: Any) -> None:
        """The time column exists, is a column of its own, and clarion's reserved name is free."""
        tc = self.time_column
        if tc not in columns:
            raise ValueError(f"time_column: column {tc!r} not found in the data (columns: {columns})")
        if WINDOW_START_COLUMN in columns:
            raise ValueError(f"data: column {WINDOW_START_COLUMN!r} is reserved for clarion's window starts")
        for role, col in (
            ("label", plan.label),
            ("predicted_label", plan.predicted),
            ("weights", plan.weights),
            ("group_variable", plan.group),
            *(("facet", f.name) for f in plan.facets),
        ):
            if col == tc:
                raise ValueError(
                    f"time_column: {tc!r} is the {role} column; the time column must be a column of its own"
                )

    def accumulator_window(self) -> dict[str, str]:
        """The ``window`` / ``time_column`` arguments of the bias accumulators: fixed windows are
        floored by the accumulator itself; calendar windows use each row's window start (a
        midnight, which flooring to the day leaves as it is)."""
        if is_fixed(self.window):
            return {"window": self.window, "time_column": self.time_column}
        return {"window": "1D", "time_column": WINDOW_START_COLUMN}

    def add_chunk(self, c: Any, path: str) -> None:
        """Parse the chunk's times and count its rows per window (before the chunk is processed)."""

        def where(i: int) -> str:
            return f"{path}: line {int(c.lines[i])}" if c.lines is not None and len(c.lines) > i else path

        t = _parse_times(c.frame[self.time_column], self.time_column, where)
        starts = _window_starts(t, self.window)
        names, inv = _window_codes(starts)
        for k, m in zip(names.tolist(), np.bincount(inv, minlength=len(names)).tolist()):
            self.rows[k] = self.rows.get(k, 0) + int(m)
        self._chunk = (c.frame, t, starts)

    def end_chunk(self) -> None:
        self._chunk = None

    def bias_batch(self, batch: Any, frame: Any) -> Any:
        """``batch`` with the parsed times (and, for calendar windows, the window starts)."""
        chunk = self._chunk
        if chunk is not None and chunk[0] is frame:
            _, t, starts = chunk
        else:
            t = _parse_times(frame[self.time_column], self.time_column, None)
            starts = _window_starts(t, self.window)
        batch[self.time_column] = t.to_numpy()  # parsed: the Accumulator floors these very times
        if not is_fixed(self.window):
            batch[WINDOW_START_COLUMN] = starts.to_numpy()
        return batch

    def kept_rows(self, part: Any, frame: Any) -> Any:
        """The kept rows with the time column (not a feature, so not kept otherwise)."""
        if self.time_column not in part.columns:
            part[self.time_column] = frame[self.time_column].to_numpy()
        return part

    def add_explained(self, X: Any) -> None:
        """Remember the window of each explained row (in explanation order)."""
        self.shap_keys.append(window_keys(X[self.time_column], self.window))

    def aggregate_shap(self, block: dict[str, Any], values: Any, agg: str) -> None:
        """Per window, the global attributions of its explained rows (``values``: the local
        attributions table, columns ``FEATURE_LABEL``, rows in explanation order), aggregated as
        the global values are."""
        keys = np.concatenate(self.shap_keys) if self.shap_keys else np.empty(0, dtype=object)
        if len(keys) != len(values):
            raise RuntimeError(f"internal: {len(values)} local attributions for {len(keys)} timestamps")
        for k in sorted(set(keys.tolist())):
            rows = keys == k
            out: dict[str, Any] = {}
            for label, b in block.items():
                feats = list(b["global_shap_values"])
                v = values.loc[rows, [f"{f}_{label}" for f in feats]].to_numpy(np.float64)
                g = _aggregate(v, agg)
                out[label] = {
                    "global_shap_values": {f: float(x) for f, x in zip(feats, g)},
                    "expected_value": b["expected_value"],
                }
            self.shap[k] = out

    def documents(self, cfg: Any, accumulators: list[Any]) -> dict[str, dict[str, Any]]:
        """Window start -> an ``analysis.json``-shaped document of that window's rows."""
        from clarion.config import POST_TRAINING_METHODS, PRE_TRAINING_METHODS

        docs: dict[str, dict[str, Any]] = {k: {"version": "1.0"} for k in sorted(self.rows)}
        stages = [
            ("pre_training_bias_metrics", "pre", cfg.pre_training_bias, PRE_TRAINING_METHODS),
            ("post_training_bias_metrics", "post", cfg.post_training_bias, POST_TRAINING_METHODS),
        ]
        for key, stage, mcfg, every in stages:
            if mcfg is None or not accumulators:
                continue
            methods = [m for m in (every if mcfg.methods == "all" else mcfg.methods) if m != "FT"]
            if not methods:
                continue
            templates: dict[int, dict[str, Any]] = {}
            for w in accumulators[0].windows():
                section: dict[str, Any] | None = None
                for i, acc in enumerate(accumulators):
                    try:
                        kw: dict[str, Any] = {}
                        if mcfg.confidence is not None:  # each window's intervals, for the interval rule
                            kw.update(confidence=mcfg.confidence, n_bootstrap=mcfg.n_bootstrap)
                        part = acc.report(methods=methods, stage=stage, window=w, **kw).to_dict()[key]
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
        for w, block in self.shap.items():
            docs.setdefault(w, {"version": "1.0"})["explanations"] = {"kernel_shap": block}
        return docs


def _failed(section: dict[str, Any], error: str) -> dict[str, Any]:
    """``section`` with every metric value null and ``error`` set (Clarify's form of a failed metric)."""
    return {
        **{k: v for k, v in section.items() if k != "facets"},
        "facets": {
            f: [
                {
                    "value_or_threshold": e["value_or_threshold"],
                    "metrics": [
                        {"name": m["name"], "description": m["description"], "value": None, "error": error}
                        for m in e["metrics"]
                    ],
                }
                for e in entries
            ]
            for f, entries in section["facets"].items()
        },
    }


def config_with_time_excluded(cfg: Any, time_column: str) -> Any:
    cfg = copy.deepcopy(cfg)
    excluded = list(cfg.excluded_columns or [])
    if time_column not in excluded:
        excluded.append(time_column)
    cfg.excluded_columns = excluded
    return cfg
