"""``clarion monitor``: analyse new data and check it for bias and attribution drift against a baseline.

::

    clarion monitor --baseline baseline/analysis.json --data today.csv --config analysis_config.json \\
        --output monitor/2026-03-10 [--model model.skops | --endpoint URL] \\
        [--time-column ts --window 1D] [--rule interval|baseline] [--rules rules.json] [--threshold 0.9] \\
        [--overwrite] [--quiet]

Writes into ``--output`` what ``clarion analyze`` writes (``analysis.json``, ``analysis_config.json``,
``explanations_shap/``, ``report.html``, ``report.md``), plus

* ``constraint_violations.json``: Clarify's document (``{"version": "1.0", "violations": [...]}``)
  with the compared values in ``scores``; with windows, each window's violations carry a
  ``"window"`` key and ``window_scores`` holds each window's compared values;
* with ``--time-column``/``--window``: ``drift_over_time.csv`` and ``drift_over_time.parquet`` (the
  tidy table of :class:`clarion.monitor.DriftOverTime`) and ``analysis_by_window.json`` (each
  window's analysis document);
* a "Drift against the baseline" section at the end of ``report.html`` / ``report.md``.

Exit code (:mod:`clarion.cli`): ``EXIT_OK`` (0) when no check is violated, ``EXIT_VIOLATIONS`` (3)
when any is (overall or in any window), ``EXIT_ERROR`` (1) on bad input (missing or malformed
baseline, config, data, model, window), before any output is written where it can be detected early.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from clarion._io import atomic_write_bytes, atomic_write_text
from clarion.cli._common import (
    EXIT_OK,
    EXIT_VIOLATIONS,
    add_input_arguments,
    add_model_arguments,
    add_run_arguments,
    cli_warnings,
    model_from_args,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``clarion monitor``."""
    parser.add_argument(
        "--baseline", required=True, help="the baseline analysis.json (clarion analyze or SageMaker Clarify output)"
    )
    add_input_arguments(parser, data_required=False)  # --config (as for the baseline), --data (new data), --output
    add_model_arguments(parser)  # --model | --endpoint, --trusted TYPE, --timeout SECONDS, --retries N
    parser.add_argument("--time-column", help="timestamp column: check each --window of the data separately")
    parser.add_argument(
        "--window", help="window: a pandas frequency, a fixed length (1D, 6h, 7D) or a calendar period (ME, W, QS)"
    )
    parser.add_argument(
        "--rules",
        help='JSON file {METRIC: {"lower": x, "upper": y}}: absolute bounds '
        "replacing the baseline rule for those bias metrics",
    )
    parser.add_argument(
        "--rule",
        choices=("interval", "baseline"),
        default="interval",
        help="bias-drift rule: 'interval' (default: the current value's bootstrap interval, Bonferroni-"
        "corrected over the checks, must overlap the baseline's allowed range; at most 5%% of runs on "
        "unchanged data alarm) or 'baseline' (Clarify's: any value farther from the ideal than the baseline)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.9, help="NDCG below which attributions have drifted (default 0.9)"
    )
    add_run_arguments(parser)  # --overwrite, --skip-bad-rows, --chunk-rows, --memory-budget, --quiet
    _add_capture_arguments(parser)


def _add_capture_arguments(parser: argparse.ArgumentParser) -> None:
    """``--capture DIR --ground-truth GT [--start ISO] [--end ISO]`` (instead of ``--data``)."""
    parser.add_argument(
        "--capture", metavar="DIR", help="captured traffic (clarion serve --capture or SageMaker data capture)"
    )
    parser.add_argument("--ground-truth", metavar="GT", help="SageMaker-format ground-truth records for --capture")
    parser.add_argument("--start", metavar="ISO", help="with --capture: first inference time checked (inclusive)")
    parser.add_argument("--end", metavar="ISO", help="with --capture: inference time where the check ends (exclusive)")


def run(args: argparse.Namespace) -> int:
    """``clarion monitor``: returns an exit code of :mod:`clarion.cli`."""
    with cli_warnings("monitor"):
        return _run(args)


def _read_rules(path: str | None) -> dict[str, dict[str, float]] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            rules = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"--rules: file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--rules: {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(rules, dict):
        raise TypeError(
            f"--rules: expected a JSON object {{METRIC: {{'lower': x, 'upper': y}}}}, got {type(rules).__name__}"
        )
    for name, r in rules.items():
        if (
            not isinstance(r, dict)
            or not r
            or not set(r) <= {"lower", "upper"}
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in r.values())
        ):
            raise ValueError(f"--rules: rules[{name!r}]: expected {{'lower': x, 'upper': y}} with numbers, got {r!r}")
    return rules


def _run(args: argparse.Namespace) -> int:
    from clarion import monitor

    # -- everything that can be checked before the analysis runs ------------------------------------
    if (args.time_column is None) != (args.window is None):
        raise ValueError("--time-column and --window go together (the timestamp column and the window length)")
    if args.window is not None:
        from clarion.job import check_window

        check_window(args.window)
    if not 0 <= args.threshold <= 1:
        raise ValueError(f"--threshold: must lie in [0, 1], got {args.threshold!r}")
    rules = _read_rules(args.rules)
    _capture_input(args)
    base = monitor.check_baseline(args.baseline, args.config)
    args.rule = getattr(args, "rule", "interval")
    # the config the job runs with: the capture join's derived one when --capture is given
    args.confidence, args.run_config = None, getattr(args, "job_config", None) or args.config
    args.base_dir = os.path.dirname(os.path.abspath(os.fspath(args.config)))  # the config's relative paths
    if args.rule == "interval":  # the run's intervals at the corrected level (docs/monitoring.md)
        args.run_config, args.confidence = monitor.interval_config(args.run_config, base)
    from clarion.job import prepare_output_dir, staged

    prepare_output_dir(args.output, args.overwrite)
    # every file of this run (the analysis's and the drift files) goes into a temporary folder that
    # replaces the previous results only when the whole command has succeeded
    with staged(args.output) as st:
        result, overall, over_time, doc = _monitor(args, base, rules, st.stage)
    st.moved(result)
    n_viol = len(doc["violations"])
    if getattr(args, "joined", None) is not None and not args.quiet:
        print("capture join: " + ", ".join(f"{k} {v}" for k, v in args.joined.summary().items()), file=sys.stdout)
    if not args.quiet:
        print(_summary(result, overall, over_time, n_viol), file=sys.stdout)
    return EXIT_VIOLATIONS if n_viol else EXIT_OK


def _monitor(args: argparse.Namespace, base: Any, rules: Any, out: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The analysis and its drift checks in one run of the job, every file written into ``out``.

    The checks run on the ``analysis.json`` document once the job has written it and before it
    writes the report (the job's ``finish`` step), so the report is rendered once, with the drift
    section; per window when ``--window`` is given (the window splitter is a sink of the same pass).
    """
    from clarion import monitor
    from clarion.job import WindowSplitter, run_job
    from clarion.report import json_document
    from clarion.report.drift import drift_html, drift_markdown

    model: Any = model_from_args(args)  # --model / --endpoint with --trusted, --timeout, --retries
    window, baseline_name = args.window, os.fspath(args.baseline)
    windows = WindowSplitter(args.time_column, window) if window is not None else None
    if windows is not None:
        base = monitor.load_analysis(base, name="baseline")
    state: dict[str, Any] = {}

    def finish(doc: dict[str, Any], job: Any) -> tuple[str, str]:
        here = job.out_dir  # the job's staged folder (it becomes ``out`` when the job succeeds)
        over_time = None
        if windows is not None:
            over_time = monitor.check_windows(
                base,
                windows.documents(job.cfg, job.accumulators),
                rules=rules,
                threshold=args.threshold,
                rule=args.rule,
                confidence=args.confidence,
                n_rows=dict(sorted(windows.rows.items())),
            )
            over_time.window = window
            over_time.analysis = doc
            over_time.overall = monitor.check_analysis(
                base, doc, rules=rules, threshold=args.threshold, rule=args.rule, confidence=args.confidence
            )
            overall = over_time.overall
            violations = over_time.to_dict()
            _write_table(over_time.table, here)
            atomic_write_text(
                os.path.join(here, "analysis_by_window.json"),
                json.dumps(
                    json_document(
                        {
                            w: {"n_rows": over_time.n_rows.get(w), "analysis": over_time.windows[w]}
                            for w in sorted(over_time.windows)
                        }
                    ),
                    indent=2,
                    allow_nan=False,
                )
                + "\n",
            )
        else:
            overall = monitor.check_analysis(
                base, doc, rules=rules, threshold=args.threshold, rule=args.rule, confidence=args.confidence
            )
            violations = overall.to_dict()
        atomic_write_text(
            os.path.join(here, "constraint_violations.json"),
            json.dumps(json_document(violations), indent=2, allow_nan=False) + "\n",
        )
        state.update(overall=overall, over_time=over_time, violations=violations)
        joined = getattr(args, "joined", None)
        capture = joined.summary() if joined is not None else None
        if capture is not None:  # staged with the rest: a failed run leaves the previous counts
            atomic_write_text(os.path.join(here, "capture_join.json"), json.dumps(capture, indent=2) + "\n")
        kw = {"baseline": baseline_name, "window": window, "capture": capture}
        return (
            drift_html(overall=overall, over_time=over_time, **kw),
            drift_markdown(overall=overall, over_time=over_time, **kw),
        )

    result, _ = run_job(
        args.run_config,
        args.data,
        model=model,
        output_dir=out,
        progress=not args.quiet,
        overwrite=True,
        skip_bad_rows=args.skip_bad_rows,
        chunk_rows=args.chunk_rows,
        memory_budget=args.memory_budget,
        windows=windows,
        finish=finish,
        base_dir=args.base_dir,
    )
    if state["over_time"] is not None:
        state["over_time"].output = result
    return result, state["overall"], state["over_time"], state["violations"]


def _capture_input(args: argparse.Namespace) -> None:
    """With ``--capture``: join the captured traffic with ``--ground-truth`` into ``args.data`` (a
    DataFrame) and the config the job runs with into ``args.job_config``."""
    if (args.capture is None) == (args.data is None):
        raise ValueError("give either --data or --capture (with --ground-truth)")
    if args.capture is None:
        if args.ground_truth or args.start or args.end:
            raise ValueError("--ground-truth, --start and --end go with --capture")
        return
    if not args.ground_truth:
        raise ValueError("--capture needs --ground-truth (the labels, joined by inference id)")
    import dataclasses
    from datetime import datetime, timezone

    from clarion.capture import join
    from clarion.config import read_config

    def when(v: str | None, flag: str) -> Any:
        if v is None:
            return None
        try:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{flag}: not an ISO 8601 time: {v!r}") from None
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

    cfg = read_config(args.config)
    if not cfg.headers:
        raise ValueError("--capture: the config's `headers` must name the input's columns, then the label")
    pred = cfg.predicted_label if isinstance(cfg.predicted_label, str) else "predicted_label"
    p = cfg.predictor
    args.joined = join(
        args.capture,
        args.ground_truth,
        headers=cfg.headers,
        prediction_column=pred,
        label=p.label,
        probability=p.probability,
        start=when(args.start, "--start"),
        end=when(args.end, "--end"),
        time_column=args.time_column,
    )
    if len(args.joined.frame) == 0:
        raise ValueError(f"--capture: no captured request joined a label ({args.joined.summary()})")
    base_dir = os.path.dirname(os.path.abspath(args.config))
    if p.model_uri and not os.path.isabs(p.model_uri):
        p = dataclasses.replace(p, model_uri=os.path.join(base_dir, p.model_uri))
    args.data = args.joined.frame
    args.job_config = dataclasses.replace(cfg, headers=None, predicted_label=pred, label=cfg.headers[-1], predictor=p)


def _write_table(table: Any, out: str) -> None:
    import io

    atomic_write_text(os.path.join(out, "drift_over_time.csv"), table.to_csv(index=False))
    buf = io.BytesIO()  # pyarrow is a base dependency: the Parquet file is always written
    table.to_parquet(buf, index=False)
    atomic_write_bytes(os.path.join(out, "drift_over_time.parquet"), buf.getvalue())


def _summary(result: Any, overall: Any, over_time: Any, n_viol: int) -> str:
    lines = [f"rows analysed: {result.n_rows:,}"]
    if overall is not None:
        lines.append(f"violations on all new rows: {len(overall.violations)}")
        for v in overall.violations[:5]:
            where = f"{v['facet']} = {v['facet_value']}" if "facet" in v else v.get("label", "")
            lines.append(f"  {v['constraint_check_type']}: {where} {v['metric_name']}: {v['description']}")
            lines.append(f"    {v.get('explanation', '')}")
        lines.append(_checks(overall))
    if over_time is not None:
        flagged = over_time.flagged
        lines.append(
            f"windows: {len(over_time.results)}, with violations: {len(flagged)}"
            + (f" (first {flagged[0]})" if flagged else "")
        )
    lines.append(f"constraint violations: {n_viol} -> {os.path.join(result.output_dir, 'constraint_violations.json')}")
    lines.append(f"report: {result.paths['report_html']}")
    return "\n".join(lines)


def _checks(overall: Any) -> str:
    """One line per check: baseline, current [interval], rule, status."""
    from clarion.report.drift import check_line

    return "checks:\n" + "\n".join("  " + check_line(sc) for sc in overall.scores)
