"""How an engine hands a partitioned collection (Dask) to the layer that schedules it.

The engines (:mod:`clarion.bias`, :mod:`clarion.explain`) accept Dask collections in their public
calls, but scheduling belongs above them (:mod:`clarion.distributed`), and an engine must not
import that layer. So the dependency is inverted: a scheduler registers, per operation, the
function that runs it on a collection (:func:`register`), and the engine asks for it
(:func:`handler`) only once it holds a collection. When nothing is registered yet, the provider
module named in :data:`PROVIDERS` is loaded by name (as pandas loads its plotting backend), and
its function of that name is used, so ``clarion.bias.report(dask_frame)`` works without importing
anything first.

Operations: ``"bias.report"``, ``"explain.explain"``, ``"explain.partial_dependence"``. This
module imports nothing from clarion and never imports Dask.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["PROVIDERS", "handler", "is_partitioned", "register"]

#: operation -> (module, function) loaded when no function was registered for the operation
PROVIDERS: dict[str, tuple[str, str]] = {
    "bias.report": ("clarion.distributed", "bias_report"),
    "explain.explain": ("clarion.distributed", "explain"),
    "explain.partial_dependence": ("clarion.distributed", "partial_dependence"),
}

_REGISTERED: dict[str, Callable[..., Any]] = {}


def is_partitioned(x: Any) -> bool:
    """True when ``x`` is a Dask collection (never imports Dask: no Dask object can exist unless
    Dask was imported by whoever made it)."""
    if "dask" not in sys.modules:
        return False
    mod = type(x).__module__ or ""
    if not mod.startswith("dask"):  # dask.*, dask_cudf, dask_expr ...
        return False
    import dask

    return bool(dask.is_dask_collection(x))


def register(operation: str, fn: Callable[..., Any]) -> None:
    """Run ``operation`` on partitioned collections with ``fn`` (called with the engine call's
    arguments, the collection in place of the in-memory data)."""
    if operation not in PROVIDERS:
        raise ValueError(f"unknown operation {operation!r} (known: {', '.join(PROVIDERS)})")
    _REGISTERED[operation] = fn


def handler(operation: str) -> Callable[..., Any]:
    """The function that runs ``operation`` on a partitioned collection."""
    fn = _REGISTERED.get(operation)
    if fn is None:
        module, name = PROVIDERS[operation]
        fn = getattr(importlib.import_module(module), name)
    return fn
