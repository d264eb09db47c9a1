"""The one place that decides which implementation runs for a given set of arrays.

Rule (see ``docs/architecture.md``):

* arrays on a CUDA device (cupy, or anything with ``__cuda_array_interface__``) run the CUDA
  kernels when they were compiled and a device is usable;
* host arrays run the compiled C++ CPU kernels;
* the plain-numpy reference runs only when asked for (``backend="numpy"`` or the environment
  variable ``CLARION_BACKEND=numpy``) or when the extension could not be imported.

``backend="cuda"`` without a CUDA build or device raises; ``"auto"`` falls back and logs the
fallback once. Nothing else in the package checks for a GPU.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Literal

Backend = Literal["auto", "numpy", "cpu", "cuda"]
BACKENDS: tuple[str, ...] = ("auto", "numpy", "cpu", "cuda")

logger = logging.getLogger("clarion")

try:  # the extension is optional at import time so that the reference still works without it
    from clarion import _core
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    _core = None
    _CORE_IMPORT_ERROR: ImportError | None = exc
else:
    _CORE_IMPORT_ERROR = None

_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        logger.info(message)


def core() -> Any:
    """The compiled module, or raise ImportError saying why it is missing."""
    if _core is None:
        raise ImportError(f"clarion's compiled extension is not available: {_CORE_IMPORT_ERROR}")
    return _core


def has_core() -> bool:
    return _core is not None


@functools.lru_cache(maxsize=1)
def cuda_compiled() -> bool:
    return _core is not None and bool(_core.compiled_info()["cuda_compiled"])


def cuda_device_count() -> int:
    """Usable CUDA devices right now (0 without a CUDA build, driver or device)."""
    if not cuda_compiled():
        return 0
    return int(_core.cuda_device_count())


def is_device_array(a: Any) -> bool:
    """True for arrays living in CUDA device memory (cupy and friends)."""
    return a is not None and hasattr(a, "__cuda_array_interface__")


def resolve(backend: str | None, *arrays: Any) -> str:
    """Pick ``"numpy"``, ``"cpu"`` or ``"cuda"`` for a call on ``arrays``.

    Parameters
    ----------
    backend : {"auto", "numpy", "cpu", "cuda"} or None
        The caller's request; ``None`` and ``"auto"`` defer to ``CLARION_BACKEND`` and then to
        where the arrays live.
    *arrays
        The call's array arguments (``None`` entries are ignored).
    """
    if backend is None:
        backend = "auto"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        env = os.environ.get("CLARION_BACKEND", "").strip().lower()
        if env:
            if env not in BACKENDS:
                raise ValueError(f"CLARION_BACKEND must be one of {BACKENDS}, got {env!r}")
            backend = env
    present = [a for a in arrays if a is not None]
    on_device = [is_device_array(a) for a in present]
    if any(on_device) and not all(on_device):
        raise ValueError(
            "arrays of one call must all live on the same device: got a mix of host (numpy) and CUDA device arrays"
        )
    device = bool(present) and all(on_device)

    if backend == "cuda":
        if not cuda_compiled():
            raise RuntimeError(
                "backend='cuda' was requested but this build of clarion has no CUDA kernels "
                "(rebuild with a CUDA compiler, CLARION_CUDA=ON)"
            )
        if cuda_device_count() == 0:
            raise RuntimeError("backend='cuda' was requested but no usable CUDA device was found")
        if not device:
            raise ValueError("backend='cuda' needs device arrays (cupy); move the inputs with cupy.asarray first")
        return "cuda"
    if backend == "cpu":
        core()
        if device:
            raise ValueError("backend='cpu' needs host arrays; got CUDA device arrays")
        return "cpu"
    if backend == "numpy":
        if device:
            raise ValueError("backend='numpy' needs host arrays; got CUDA device arrays")
        return "numpy"
    # auto
    if device:
        if cuda_compiled() and cuda_device_count() > 0:
            return "cuda"
        _log_once("clarion: CUDA kernels unavailable; device arrays are copied to the host")
        return "cpu" if has_core() else "numpy"
    if has_core():
        return "cpu"
    _log_once(f"clarion: compiled extension unavailable ({_CORE_IMPORT_ERROR}); using numpy")
    return "numpy"
