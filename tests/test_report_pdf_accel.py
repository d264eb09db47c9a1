"""report.pdf is the same file with and without reportlab's C accelerator (``rl_accel``, in the
``report`` and ``examples`` extras since session 19: it formats every number of the PDF's
operators, ~1 ms of a bias report's 4.6). Without it reportlab falls back to its own Python
functions (``reportlab.lib.rl_accel``'s ``_py_*``); clarion's writers call whichever is installed.

Checked: ``fp_str`` and ``escapePDF`` of both on hypothesis-generated numbers and strings, and the
demo's report.pdf rendered in a process where ``_rl_accel`` cannot be imported, byte for byte."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("reportlab")
pytest.importorskip("svglib")
_rl_accel = pytest.importorskip("_rl_accel")

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "report_demo"


def _python_rl_accel():
    """reportlab's ``rl_accel`` module as it loads where the C accelerator is missing."""
    import reportlab.lib.rl_accel as installed

    saved = sys.modules.get("_rl_accel")
    sys.modules["_rl_accel"] = None  # type: ignore[assignment]  # an import of it fails
    try:
        spec = importlib.util.spec_from_file_location("_clarion_test_py_rl_accel", installed.__file__)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        if saved is None:
            del sys.modules["_rl_accel"]
        else:
            sys.modules["_rl_accel"] = saved
    return mod


PY = _python_rl_accel()
NUMBERS = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6) | st.sampled_from(
    [0.0, -0.0, 1e-8, -1e-8, 1e-7, 0.5, 1.0, 12.0, 72.0, 595.2756, 841.8898, 0.1234565, 999999.5]
)


def test_the_accelerator_is_the_one_clarion_calls():
    from reportlab.lib.rl_accel import escapePDF, fp_str

    assert fp_str is _rl_accel.fp_str and escapePDF is _rl_accel.escapePDF
    assert PY.fp_str is not _rl_accel.fp_str  # the fallback really is the Python one


@settings(max_examples=400, deadline=None)
@given(st.lists(NUMBERS, min_size=1, max_size=8))
def test_fp_str_is_the_same(values):
    assert _rl_accel.fp_str(*values) == PY.fp_str(*values)
    assert _rl_accel.fp_str(values) == PY.fp_str(values)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_escape_pdf_is_the_same(data):
    assert _rl_accel.escapePDF(data) == PY.escapePDF(data)


RENDER = """
import json, sys
import pandas as pd
{block}
from clarion.report.model import build_report
from clarion.report.pdf import render_report_pdf
doc = json.load(open(sys.argv[1]))
config = json.load(open(sys.argv[2]))
local = pd.read_csv(sys.argv[3])
report = build_report(doc, config=config, local_shap=local)
sys.stdout.buffer.write(render_report_pdf(report))
"""


def _render(block: str) -> bytes:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), *sys.path])}
    args = [str(FIXTURE / "analysis.json"), str(FIXTURE / "analysis_config.json")]
    args.append(str(FIXTURE / "explanations_shap" / "out.csv"))
    out = subprocess.run(
        [sys.executable, "-c", RENDER.format(block=block), *args], env=env, capture_output=True, check=True
    )
    return out.stdout


def test_the_demo_report_pdf_is_the_same_file_without_the_accelerator():
    without = (
        "sys.modules['_rl_accel'] = None\nimport reportlab.lib.rl_accel as m\nassert m.fp_str.__name__ == '_py_fp_str'"
    )
    fast, slow = _render("import _rl_accel"), _render(without)
    assert fast.startswith(b"%PDF-") and len(fast) > 10_000
    assert fast == slow
    doc = json.loads((FIXTURE / "analysis.json").read_text())
    assert doc["pre_training_bias_metrics"]  # (the demo has bias metrics and SHAP: charts and tables)
