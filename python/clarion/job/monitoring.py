"""The monitor job (``clarion monitor``): the analysis of new data, its drift checks against a
baseline, and their outputs, in one run of the pass.

Besides what :func:`clarion.job.analyze` writes, the run writes

* ``constraint_violations.json`` (Clarify's document, with the compared values in ``scores``; with
  windows, each window's violations carry a ``"window"`` key and ``window_scores`` holds each
  window's compared values);
* with a window: ``drift_over_time.csv`` / ``.parquet`` (the tidy table of
  :class:`clarion.monitor.DriftOverTime`) and ``analysis_by_window.json``;
* the report with a "Drift against the baseline" section, rendered once (the checks run on the
  ``analysis.json`` document before the report is written).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from clarion._io import atomic_write_bytes, atomic_write_text

__all__ = ["MonitorRun", "run_monitor"]


@dataclass
class MonitorRun:
    """What :func:`run_monitor` produced.

    Attributes
    ----------
    result : clarion.job.AnalysisResult
        The analysis of all the new rows.
    overall : clarion.monitor.DriftResult
        Its checks against the baseline.
    over_time : clarion.monitor.DriftOverTime or None
        The per-window checks (with a window).
    violations : dict
        The ``constraint_violations.json`` document.
    """

    result: Any
    overall: Any
    over_time: Any
    violations: dict[str, Any]


def run_monitor(baseline: Any, config: Any, data: Any, *, output_dir: str | os.PathLike, baseline_name: str,
                rules: dict[str, dict[str, float]] | None = None, threshold: float = 0.9,
                time_column: str | None = None, window: str | None = None, **analyze_kw: Any) -> MonitorRun:
    """Analyse ``data`` with ``config`` into ``output_dir`` and check it (per ``window`` of
    ``time_column`` too, when given) against the ``baseline`` document; every file written once.

    ``baseline_name`` names the baseline in the report; ``rules`` / ``threshold`` are those of
    :func:`clarion.monitor.check_analysis`; ``analyze_kw`` go to the analysis (``model``,
    ``progress``, ``overwrite``, ``skip_bad_rows``, ``chunk_rows``, ``memory_budget``)."""
    from clarion import monitor
    from clarion.job.api import _run
    from clarion.job.windows import WindowSplitter, check_window
    from clarion.report import json_document
    from clarion.report.drift import drift_html, drift_markdown

    out = os.fspath(output_dir)
    windows = None
    if window is not None:
        check_window(window)
        if not isinstance(time_column, str) or not time_column:
            raise ValueError(f"time_column: expected a column name, got {time_column!r}")
        windows = WindowSplitter(time_column, window)
        base = monitor.load_analysis(baseline, name="baseline")
    else:
        base = baseline
    state: dict[str, Any] = {}

    def finish(doc: dict[str, Any], job: Any) -> tuple[str, str]:
        """The drift checks on the written analysis, their files, and the report's drift section."""
        here = job.out_dir  # where this run writes (a staged folder that becomes ``out`` on success)
        over_time = None
        if windows is not None:
            over_time = monitor.check_windows(base, windows.documents(job.cfg, job.accumulators), rules=rules,
                                              threshold=threshold, n_rows=dict(sorted(windows.rows.items())))
            over_time.window = window
            over_time.analysis = doc
            over_time.overall = monitor.check_analysis(base, doc, rules=rules, threshold=threshold)
            overall = over_time.overall
            violations = over_time.to_dict()
            _write_table(over_time.table, here)
            atomic_write_text(os.path.join(here, "analysis_by_window.json"),
                              json.dumps(json_document({w: {"n_rows": over_time.n_rows.get(w),
                                                            "analysis": over_time.windows[w]}
                                                        for w in sorted(over_time.windows)}),
                                         indent=2, allow_nan=False) + "\n")
        else:
            overall = monitor.check_analysis(base, doc, rules=rules, threshold=threshold)
            violations = overall.to_dict()
        atomic_write_text(os.path.join(here, "constraint_violations.json"),
                          json.dumps(json_document(violations), indent=2, allow_nan=False) + "\n")
        state.update(overall=overall, over_time=over_time, violations=violations)
        return (drift_html(overall=overall, over_time=over_time, baseline=baseline_name, window=window),
                drift_markdown(overall=overall, over_time=over_time, baseline=baseline_name, window=window))

    result, _ = _run(config, data, output_dir=out, windows=windows, finish=finish, **analyze_kw)
    if state["over_time"] is not None:
        state["over_time"].output = result
    return MonitorRun(result, state["overall"], state["over_time"], state["violations"])


def _write_table(table: Any, out: str) -> None:
    import io

    atomic_write_text(os.path.join(out, "drift_over_time.csv"), table.to_csv(index=False))
    buf = io.BytesIO()  # pyarrow is a base dependency: the Parquet file is always written
    table.to_parquet(buf, index=False)
    atomic_write_bytes(os.path.join(out, "drift_over_time.parquet"), buf.getvalue())
