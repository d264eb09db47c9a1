"""The analysis job's public entry point: :func:`analyze` (also ``clarion.analyze``).

:func:`analyze` is the local, offline equivalent of a SageMaker Clarify processing job. The job
itself lives in :mod:`clarion.job` (plan, source, the one streaming pass, sinks, outputs); this
module keeps the import path ``clarion.analysis`` working.

Output directory layout (Clarify's names)::

    analysis.json                 Clarify's schema (exact keys and value formats)
    analysis_config.json          the config that produced it
    explanations_shap/out.csv     local SHAP values, one row per input record, input order
    explanations_shap/out.parquet the same, when the input is Parquet
    explanations_shap/baseline.csv  the clustered baseline (when the config gave none)
    report.html, report.md        the report (name from ``methods.report.name``)

The ``clarion analyze`` subcommand is :mod:`clarion.cli.analyze`.
"""

from __future__ import annotations

from clarion.job import (
    DEFAULT_MEMORY_BUDGET,
    AnalysisResult,
    analyze,
    analyze_windowed,
    endpoint_for,
    parse_bytes,
)

__all__ = ["DEFAULT_MEMORY_BUDGET", "AnalysisResult", "analyze", "analyze_windowed", "endpoint_for", "parse_bytes"]
