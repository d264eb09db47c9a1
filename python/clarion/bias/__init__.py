"""Bias metrics over sensitive groups, compatible with SageMaker Clarify / smclarify.

* :func:`report` — every pre- and post-training metric for one or several facets, models and
  probability thresholds, from one count pass over the rows per facet;
* :class:`Accumulator` — the same report over batches that arrive over time (update, merge,
  persist), holding only count tensors;
* :class:`BiasReport` — the result: ``to_frame()`` and ``to_dict()`` (analysis.json sections);
* :func:`group_performance` / :func:`threshold_curves` — rows, rates, confusion matrix, accuracy,
  precision, recall, FPR, ROC AUC and calibration per facet group, and DPPL / DI / RD / accuracy
  across probability thresholds, from count tensors (:mod:`clarion.bias.performance`);
* :func:`interval_string` — the one format of a threshold's ``value_or_threshold`` (``"(30, 66]"``)
  and :func:`entry_key`, which identifies a facet entry across analyses (a threshold by its value).

The engine has three layers that the report, the accumulator, chunked readers and Dask
partitions share: column encoding (:mod:`clarion.bias._encode`), counting with
:func:`clarion.grouped_counts` (:mod:`clarion.bias._engine`), and metrics as pure functions of
a count tensor (:mod:`clarion.bias._metrics`). FlipTest lives in :mod:`clarion.bias.fliptest`.
What is known about each metric (stage, ideal value, range, inputs it needs...) is in one
registry, :data:`METRIC_INFO` (:mod:`clarion.bias.registry`), which the config reader, the
reports and the monitor read.
"""

from __future__ import annotations

from clarion.bias._engine import entry_key, interval_string
from clarion.bias._metrics import (
    ALL_METRICS,
    COUNT_METRICS,
    POST_TRAINING,
    PRE_TRAINING,
)
from clarion.bias._report import report
from clarion.bias._result import BiasReport
from clarion.bias.accumulator import Accumulator
from clarion.bias.performance import GroupPerformance, PerformanceAccumulator, group_performance, threshold_curves
from clarion.bias.registry import METRIC_INFO, ideal_value, metric_names

__all__ = [
    "ALL_METRICS",
    "COUNT_METRICS",
    "METRIC_INFO",
    "POST_TRAINING",
    "PRE_TRAINING",
    "Accumulator",
    "BiasReport",
    "GroupPerformance",
    "PerformanceAccumulator",
    "entry_key",
    "group_performance",
    "ideal_value",
    "interval_string",
    "metric_names",
    "report",
    "threshold_curves",
]
