"""The job's entry points: :func:`analyze` (``clarion.analyze``) and :func:`analyze_windowed`
(``clarion monitor --time-column/--window``). Both read the config, check the arguments, stage the
output folder and run the one pass (:class:`clarion.job.run._Job`); windows are a sink of that
pass (:class:`clarion.job.windows.WindowSplitter`), not a second job."""

from __future__ import annotations

import os
from typing import Any

from clarion.job.outputs import AnalysisResult, prepare_output_dir, staged
from clarion.job.plan import DEFAULT_MEMORY_BUDGET, parse_bytes
from clarion.job.run import _Job
from clarion.job.windows import (
    WindowedAnalysis,
    WindowSplitter,
    check_window,
    config_with_time_excluded,
)

__all__ = ["analyze", "analyze_windowed", "run_job"]


def run_job(
    config: Any,
    data: Any,
    *,
    model: Any,
    output_dir: str | os.PathLike,
    progress: bool,
    overwrite: bool,
    skip_bad_rows: bool,
    chunk_rows: int,
    memory_budget: int | str,
    windows: WindowSplitter | None = None,
    finish: Any = None,
    dask_client: Any = None,
    base_dir: str | None = None,
) -> tuple[AnalysisResult, _Job]:
    """Check the arguments, stage ``output_dir`` and run the one pass; returns the result and the
    finished job (its ``cfg``, ``accumulators``, ``out_dir``).

    ``windows``: a :class:`clarion.job.windows.WindowSplitter` (per-window counts and attributions).
    ``finish(doc, job)``: called once ``analysis.json`` is written (``doc``: the document as
    written) and before the report is; it may write files of its own into ``job.out_dir`` (the
    staged folder) and returns ``(html_section, md_section)`` to end the report with, or None.
    ``base_dir``: where the config's relative paths start (default: the config file's folder, or
    the working directory for a config object). The other arguments are :func:`analyze`'s."""
    from clarion.config import read_config

    base_dir = base_dir or (
        os.path.dirname(os.path.abspath(os.fspath(config))) if isinstance(config, (str, os.PathLike)) else os.getcwd()
    )
    cfg = read_config(config)
    if windows is not None:  # the time column is never a model feature
        cfg = config_with_time_excluded(cfg, windows.time_column)
    out_dir = os.fspath(output_dir)
    budget = parse_bytes(memory_budget)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows: must be >= 1, got {chunk_rows}")
    prepare_output_dir(out_dir, overwrite)
    with staged(out_dir) as st:  # the previous results stay until this run has succeeded
        job = _Job(
            cfg, data, model, st.stage, base_dir, progress, skip_bad_rows, chunk_rows, budget, windows, dask_client
        )
        result = job.run(finish)
    return st.moved(result), job


def analyze(
    config: Any,
    data: Any,
    *,
    model: Any = None,
    output_dir: str | os.PathLike,
    progress: bool = True,
    overwrite: bool = False,
    skip_bad_rows: bool = False,
    chunk_rows: int = 50_000,
    memory_budget: int | str = DEFAULT_MEMORY_BUDGET,
    dask_client: Any = None,
) -> AnalysisResult:
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
    dask_client : distributed.Client, optional
        Run Kernel SHAP and partial dependence on this Dask client's workers: the rows to explain
        are split into partitions (:func:`clarion.distributed.on_cluster`) explained with the same
        coalition plan, so the outputs are the local run's. ``clarion analyze --dask-scheduler`` /
        ``--dask-workers`` open one (:class:`clarion.distributed.cluster`).

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
    result, _ = run_job(
        config,
        data,
        model=model,
        output_dir=output_dir,
        progress=progress,
        overwrite=overwrite,
        skip_bad_rows=skip_bad_rows,
        chunk_rows=chunk_rows,
        memory_budget=memory_budget,
        dask_client=dask_client,
    )
    return result


def analyze_windowed(
    config: Any,
    data: Any,
    *,
    time_column: str,
    window: str,
    model: Any = None,
    output_dir: str | os.PathLike,
    progress: bool = False,
    overwrite: bool = False,
    skip_bad_rows: bool = False,
    chunk_rows: int = 50_000,
    memory_budget: int | str = DEFAULT_MEMORY_BUDGET,
    dask_client: Any = None,
) -> WindowedAnalysis:
    """:func:`clarion.analyze` plus per-window bias metrics and global attributions, in one read.

    Parameters are those of :func:`clarion.analyze`, plus ``time_column`` (the timestamp column,
    never used as a model feature) and ``window`` (a pandas frequency, see
    :func:`clarion.job.check_window`).
    """
    check_window(window)
    if not isinstance(time_column, str) or not time_column:
        raise ValueError(f"time_column: expected a column name, got {time_column!r}")
    windows = WindowSplitter(time_column, window)
    result, job = run_job(
        config,
        data,
        model=model,
        output_dir=output_dir,
        progress=progress,
        overwrite=overwrite,
        skip_bad_rows=skip_bad_rows,
        chunk_rows=chunk_rows,
        memory_budget=memory_budget,
        windows=windows,
        dask_client=dask_client,
    )
    return WindowedAnalysis(result, windows.documents(job.cfg, job.accumulators), dict(sorted(windows.rows.items())))
