"""The public surface: every lazily imported submodule exists, every name in an ``__all__`` is
defined and documented, and ``import clarion`` pulls in no optional dependency."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import clarion

PUBLIC_MODULES = [
    "clarion",
    "clarion.bias",
    "clarion.bias.fliptest",
    "clarion.explain",
    "clarion.models",
    "clarion.config",
    "clarion.analysis",
    "clarion.monitor",
    "clarion.dataset",
    "clarion.cli",
]


@pytest.mark.parametrize("name", sorted(clarion._SUBMODULES))
def test_lazy_submodules_import(name):
    assert getattr(clarion, name) is importlib.import_module(f"clarion.{name}")


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        clarion.nope  # noqa: B018


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_is_defined_and_documented(module):
    mod = importlib.import_module(module)
    assert mod.__doc__, f"{module} has no docstring"
    for name in mod.__all__:
        obj = getattr(mod, name)
        if callable(obj) or isinstance(obj, type):
            assert obj.__doc__ and obj.__doc__.strip(), f"{module}.{name} has no docstring"


def test_import_pulls_in_no_optional_dependency():
    code = (
        "import sys, clarion, clarion.bias, clarion.explain, clarion.models; "
        "heavy = {'sklearn', 'scipy', 'shap', 'dask', 'distributed', 'xgboost', 'onnxruntime', 'uvicorn', "
        "'starlette', 'cupy', 'smclarify'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
