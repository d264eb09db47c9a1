"""clarion: local, fast bias metrics and Kernel SHAP attributions, compatible with SageMaker Clarify.

The top level is kept light: heavy submodules (``clarion.bias``, ``clarion.explain``, ...) are
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from clarion._counts import grouped_counts, grouped_threshold_counts
from clarion._version import __version__

__all__ = [
    "CudaError",
    "__version__",
    "analyze",
    "build_info",
    "grouped_counts",
    "grouped_threshold_counts",
]

_SUBMODULES = {
    "bias",
    "explain",
    "models",
    "config",
    "analysis",
    "report",
    "monitor",
    "distributed",
    "dataset",
    "serve",
    "testing",
}


def build_info() -> dict[str, Any]:
    """What this installation of clarion was built with and can use right now.

    Returns
    -------
    dict
        ``version`` (str), ``backends`` (compiled backends, e.g. ``["cpu", "cuda"]``; ``"numpy"``
        is always available as the reference), ``cuda_compiled`` (bool: the CUDA kernels were
        compiled into this build), ``cuda_version`` (str or None), ``cuda_archs`` (list of
        architectures compiled, e.g. ``["80-real", "90-real", "90-virtual"]``), ``cuda_device``
        (bool: a CUDA device is usable now) and ``hardware_threads`` (int).
    """
    from clarion import _backend

    if _backend.has_core():
        info = dict(_backend.core().compiled_info())
    else:
        info = {"backends": [], "cuda_compiled": False, "cuda_version": None, "cuda_archs": [], "hardware_threads": 0}
    info["backends"] = list(info["backends"])
    info["cuda_archs"] = list(info["cuda_archs"])
    info["version"] = __version__
    info["cuda_device"] = _backend.cuda_device_count() > 0
    return info


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"clarion.{name}")
    if name == "analyze":  # the analysis job (clarion.analysis.analyze), imported on first use
        return importlib.import_module("clarion.analysis").analyze
    if name == "CudaError":
        from clarion import _backend

        return _backend.core().CudaError if _backend.has_core() else RuntimeError
    raise AttributeError(f"module 'clarion' has no attribute {name!r}")
