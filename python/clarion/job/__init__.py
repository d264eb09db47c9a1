"""The analysis job: a Clarify analysis config and a data set in; ``analysis.json``, local
attributions and a report out.

One home per step:

* :mod:`clarion.job.api`: the entry points (:func:`analyze`, :func:`analyze_windowed`, and
  :func:`run_job`, which ``clarion monitor`` uses to check drift before the report is written);
* :mod:`clarion.job.plan`: config + the data's columns -> what to compute, from which columns
  (decided once);
* :mod:`clarion.job.source`: chunks of the input (files, DataFrames, Dask DataFrames);
* :mod:`clarion.job.run`: the one streaming pass that feeds every chunk into the sinks (bias
  accumulators, the row keeper, the SHAP writer, the window splitter), then the SHAP and PDP
  steps on the kept rows;
* :mod:`clarion.job.sinks`: the row sample kept beyond the memory budget;
* :mod:`clarion.job.windows`: time windows, a group axis of the bias counts and of the SHAP
  aggregation (``clarion monitor``);
* :mod:`clarion.job.model`: the model and the rules that turn its outputs into predicted labels
  and explained outputs;
* :mod:`clarion.job.explain`: SHAP values and partial dependence into Clarify's blocks;
* :mod:`clarion.job.outputs`: the result, the staged output folder, the local-SHAP writer.

:func:`clarion.analyze` is :func:`analyze`; the ``clarion analyze`` / ``clarion monitor``
subcommands (:mod:`clarion.cli`) call the functions here. A Dask client is passed explicitly
(``dask_client=``); nothing here reads a global one.
"""

from __future__ import annotations

from clarion.job.api import analyze, analyze_windowed, run_job
from clarion.job.model import endpoint_for
from clarion.job.outputs import (
    MONITOR_OUTPUT_FILES,
    OUTPUT_FILES,
    AnalysisResult,
    prepare_output_dir,
    staged,
)
from clarion.job.plan import DEFAULT_MEMORY_BUDGET, parse_bytes
from clarion.job.windows import WindowedAnalysis, WindowSplitter, check_window, window_keys

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "MONITOR_OUTPUT_FILES",
    "OUTPUT_FILES",
    "AnalysisResult",
    "WindowSplitter",
    "WindowedAnalysis",
    "analyze",
    "analyze_windowed",
    "check_window",
    "endpoint_for",
    "parse_bytes",
    "prepare_output_dir",
    "run_job",
    "staged",
    "window_keys",
]
