"""Former home of the windowed analysis job; kept so that ``clarion.monitor.drift_over_time`` and
older imports keep working. The windowed job is :func:`clarion.job.analyze_windowed` (windows are
a sink of the one pass: :mod:`clarion.job.windows`)."""

from __future__ import annotations

from clarion.job.api import analyze_windowed
from clarion.job.windows import (
    WINDOW_START_COLUMN,
    WindowedAnalysis,
    check_window,
    is_fixed,
    window_keys,
)

__all__ = ["WINDOW_START_COLUMN", "WindowedAnalysis", "analyze_windowed", "check_window", "is_fixed", "window_keys"]
