"""The import layers of docs/architecture.md, checked on the source by tools/import_graph.py (ast only).

Each rule has an allowlist of the violations that existed when the check was introduced (issue 14).
A violation not on the list fails the test; so does a listed one that no longer exists, so the lists
only shrink: when you remove a violation, delete its line here. ``python tools/import_graph.py
--list`` prints the current violations.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("_clarion_import_graph", ROOT / "tools" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


graph = _load_tool()

# -- allowlists: today's known violations; they may only shrink -------------------------------------

# An engine (bias, explain, models) importing an upper layer, or a library module importing the CLI.
# 6 when the check was introduced; none since issue 14 (the engines reach clarion.distributed through
# clarion.dispatch, the library reaches the CLI nowhere).
UPWARD_ALLOWED: set[str] = set()

# Imports whose two modules lie on a common import cycle. 21 imports (one cycle through 11 modules:
# analysis, _monitor_job, bias, bias._report, distributed, explain, explain._kernel_shap,
# explain._pdp, monitor, report, report.html) when the check was introduced; none since issue 14.
CYCLE_ALLOWED: set[str] = set()

# A private module or name (leading underscore) imported from outside the package that holds it.
# 23 when the check was introduced (21 of them clarion.distributed's reach-ins into the engines,
# which now schedules the public operations of clarion.bias.partition / clarion.explain.partition);
# none since issue 14.
PRIVATE_ALLOWED: set[str] = set()


@pytest.fixture(scope="module")
def found():
    return graph.report()


RULES = {
    "upward": ("upward", UPWARD_ALLOWED),
    "cycles": ("cycle_edges", CYCLE_ALLOWED),
    "private": ("private", PRIVATE_ALLOWED),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_no_new_violation(found, rule):
    key, allowed = RULES[rule]
    new = sorted(set(found[key]) - allowed)
    assert not new, (
        f"new {rule} import(s), against the layers of docs/architecture.md:\n  "
        + "\n  ".join(new)
        + "\n(python tools/import_graph.py --list shows them all)"
    )


@pytest.mark.parametrize("rule", list(RULES))
def test_allowlist_only_shrinks(found, rule):
    key, allowed = RULES[rule]
    gone = sorted(allowed - set(found[key]))
    assert not gone, f"fixed, so delete from {rule.upper()}_ALLOWED in tests/test_layers.py:\n  " + "\n  ".join(gone)


def test_the_checker_sees_each_kind_of_violation(tmp_path):
    """The checker on a made-up package: a check that finds nothing must not be a checker that can't."""
    pkg = tmp_path / "clarion"
    files = {
        "__init__.py": "",
        "_backend.py": "",
        "cli.py": "EXIT_OK = 0\n",
        "distributed.py": "from clarion.bias import fliptest\n",
        "bias/__init__.py": "from clarion.bias._engine import State\n",
        "bias/_engine.py": "State = 1\n_hidden = 2\n",
        "bias/fliptest.py": (
            "from clarion import _backend\n"  # private to clarion, used inside it: fine
            "from ._engine import State\n"  # private to bias, used inside it: fine
            "def f():\n    from clarion import distributed\n"  # lazy, still upward and a cycle
        ),
        "report/__init__.py": "from clarion.bias._engine import State\n",  # private reach-in
        "serve.py": "import clarion.bias._engine as eng\nx = eng._hidden\nfrom clarion.cli import EXIT_OK\n",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    rep = graph.report(pkg)
    assert rep["upward"] == ["clarion.bias.fliptest -> clarion.distributed", "clarion.serve -> clarion.cli"]
    assert rep["cycles"] == [["clarion.bias.fliptest", "clarion.distributed"]]
    assert rep["private"] == [
        "clarion.report -> clarion.bias._engine:State",
        "clarion.serve -> clarion.bias._engine",
        "clarion.serve -> clarion.bias._engine:_hidden",
    ]


# -- docs/architecture.md describes this repository ---------------------------------------------------

_SEARCH = ["", "python", "python/clarion", "cpp", "cpp/include/clarion", "cpp/src", "cpp/bindings", "docs"]
_SEARCH += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "python" / "clarion").iterdir()) if p.is_dir()]


def test_architecture_page_names_only_files_that_exist():
    """Every file named in backticks on docs/architecture.md exists (looked up from the usual roots),
    and nothing points outside the repository."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    names = set(re.findall(r"`([\w./-]+\.(?:py|pyi|hpp|cpp|cu|md|sh|toml|txt))`", text))
    names |= set(re.findall(r"\]\(([^)#]+)", text))  # markdown links
    for block in re.findall(r"```\n(.*?)```", text, flags=re.S):  # the layer diagrams
        names |= {t for t in re.findall(r"(?<![\w<>*.])[\w./-]+(?:\.(?:py|hpp|cpp|cu)|/)(?=[\s,]|$)", block)}
    outside = sorted(n for n in names if n.startswith(("../", "/")) or "://" in n)
    assert not outside, f"docs/architecture.md points outside the repository: {outside}"
    missing = sorted(n for n in names if not any((ROOT / base / n).exists() for base in _SEARCH))
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
