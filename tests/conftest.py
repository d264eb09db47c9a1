"""Shared test fixtures: hypothesis profiles, the backends a kernel test runs on, a real browser."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from clarion.testing import available_backends

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# -- backends: one test body, every backend ---------------------------------------------------------


class Backend(str):
    """A backend name (``"numpy"``, ``"cpu"`` or ``"cuda"``, passed as ``backend=`` as it is) that
    also moves test arrays to the memory its kernels read and back."""

    def put(self, *arrays):
        """``arrays`` on this backend's device (cupy arrays for cuda; None stays None)."""
        if self != "cuda":
            return arrays
        import cupy

        return tuple(None if a is None else cupy.asarray(a) for a in arrays)

    def get(self, a):
        """``a`` as a numpy array."""
        return a.get() if hasattr(a, "get") else np.asarray(a)


BACKENDS = dict(available_backends())


def backend_params(*names: str) -> list:
    """pytest params for ``names``: cuda marked ``gpu``; an unavailable backend is skipped with the
    reason (never silently missing)."""
    params = []
    for name in names:
        marks = [pytest.mark.gpu] if name == "cuda" else []
        if BACKENDS[name] is not None:
            marks.append(pytest.mark.skip(reason=f"{name} backend unavailable: {BACKENDS[name]}"))
        params.append(pytest.param(Backend(name), marks=marks, id=name))
    return params


# Session-scoped so that hypothesis' @given tests can take them.
@pytest.fixture(scope="session", params=backend_params("numpy", "cpu", "cuda"))
def backend(request) -> Backend:
    """Every backend: the numpy reference, the compiled CPU kernels, the CUDA kernels."""
    return request.param


@pytest.fixture(scope="session", params=backend_params("cpu", "cuda"))
def compiled(request) -> Backend:
    """The compiled backends, for tests whose oracle is the numpy reference."""
    return request.param


@pytest.fixture(scope="session")
def cuda() -> Backend:
    """The CUDA backend, for CPU-vs-CUDA comparisons; the test is skipped where it is unavailable.
    Mark the test ``gpu`` as well so that ``pytest -m gpu`` selects it."""
    if BACKENDS["cuda"] is not None:
        pytest.skip(f"cuda backend unavailable: {BACKENDS['cuda']}")
    return Backend("cuda")


# -- a real browser -----------------------------------------------------------------------------------


class Browser:
    """Headless chromium: a page's DOM after its scripts ran, and a screenshot as an RGB array."""

    def __init__(self, executable: str):
        self.executable = executable
        self._common = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]

    def dom(self, page: str | Path) -> str:
        """The serialised DOM of the file ``page``."""
        return subprocess.run(
            self._common + ["--dump-dom", _url(page)], capture_output=True, text=True, timeout=120, check=True
        ).stdout

    def screenshot(self, page: str | Path, shot: str | Path, *, width: int, height: int) -> np.ndarray:
        """A ``width`` x ``height`` screenshot of the file ``page``, saved at ``shot``, as an int array
        [height, width, 3]."""
        from PIL import Image

        subprocess.run(
            self._common + [f"--screenshot={shot}", f"--window-size={width},{height}", _url(page)],
            capture_output=True,
            timeout=120,
            check=True,
        )
        img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        assert img.shape[:2] == (height, width)
        return img


def _url(page: str | Path) -> str:
    return "file://" + str(page)


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="session")
def browser() -> Browser:
    """A real headless browser; the test is skipped where there is none (.ci/run installs Debian's)."""
    path = _chromium()
    if path is None:
        pytest.skip("no chromium (install Debian's chromium; .ci/run does)")
    return Browser(path)
