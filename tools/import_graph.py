#!/usr/bin/env python3
"""clarion's import graph and its layering rules, from the source alone (ast; nothing is imported).

Usage: ``python tools/import_graph.py [--list] [--json]`` from the repository root. It prints three
counts (upward imports, import cycles, private reach-ins) and, with ``--list``, every violation.
``tests/test_layers.py`` runs the same checks against an allowlist that can only shrink.

The rules (docs/architecture.md, "Layers"):

* **Upward imports.** An engine (``clarion.bias``, ``clarion.explain``, ``clarion.models``) never
  imports an upper layer: the job, the CLI, monitor, report, serve, distributed (and today's
  ``analysis`` / ``_monitor_job`` / ``monitor_cli`` / ``demo``, which are job or CLI code), and no
  library module imports the CLI (``clarion.cli``, ``clarion.monitor_cli``, ``clarion.report.cli``,
  ``clarion.__main__``).
* **Cycles.** No two modules import each other, directly or through others. Every import counts,
  including one inside a function (a lazy import hides a cycle from Python, not from the reader).
* **Private reach-ins.** A name with a leading underscore (a module ``_engine`` or a name
  ``_grid``) belongs to the package that holds it; a module outside that package never imports it.
  ``clarion._backend`` is private to ``clarion`` and so usable everywhere in it;
  ``clarion.explain._pdp`` is private to ``clarion.explain``.

Edges follow grimp's convention: ``from a import b`` is an edge to module ``a.b`` when ``a/b.py``
exists, otherwise to ``a`` (name ``b``); the implicit import of parent packages is not an edge.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "python" / "clarion"

ENGINES = ("clarion.bias", "clarion.explain", "clarion.models")
UPPER = (
    "clarion.job",
    "clarion.cli",
    "clarion.monitor",
    "clarion.report",
    "clarion.serve",
    "clarion.distributed",
    # today's names of job / CLI code (gone once the job and cli packages hold them)
    "clarion.analysis",
    "clarion._monitor_job",
    "clarion.monitor_cli",
    "clarion.demo",
)
CLI = ("clarion.cli", "clarion.monitor_cli", "clarion.report.cli", "clarion.__main__")


@dataclass(frozen=True)
class Import:
    importer: str  # module that holds the import statement
    target: str  # module imported (the module a name comes from, for `from m import name`)
    name: str  # the name imported from `target` ("" when the module itself is imported)
    line: int


def _within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path | None]:
    """Module name -> source file (None for a compiled module without a .py)."""
    out: dict[str, Path | None] = {}
    base = package_dir.parent
    for path in sorted(package_dir.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(base)
        if path.suffix == ".py":
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
        elif path.suffix in (".so", ".pyd", ".pyi"):
            name = ".".join([*rel.parent.parts, path.name.split(".")[0]])
            out.setdefault(name, None)
    return out


def _is_package(name: str, mods: dict[str, Path | None]) -> bool:
    path = mods.get(name)
    return path is not None and path.name == "__init__.py"


def imports(mods: dict[str, Path | None] | None = None) -> list[Import]:
    """Every import between clarion's modules, lazy ones included, and every ``module._private``
    attribute read on a clarion module bound by an import (as an import of that name)."""
    mods = modules() if mods is None else mods
    found: list[Import] = []
    for importer, path in mods.items():
        if path is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = importer if _is_package(importer, mods) else importer.rpartition(".")[0]
        bound: dict[str, str] = {}  # local name -> clarion module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _within(alias.name, ("clarion",)):
                        found.append(Import(importer, _longest_module(alias.name, mods), "", node.lineno))
                        if alias.asname:
                            bound[alias.asname] = _longest_module(alias.name, mods)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if not _within(source, ("clarion",)):
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in mods:
                        found.append(Import(importer, sub, "", node.lineno))
                        bound[alias.asname or alias.name] = sub
                    else:
                        target = _longest_module(source, mods)
                        found.append(Import(importer, target, alias.name, node.lineno))
        # `module._name` on a module bound by an import is the same reach-in as `from module import _name`
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(Import(importer, bound[node.value.id], node.attr, node.lineno))
    return found


def _longest_module(name: str, mods: dict[str, Path | None]) -> str:
    parts = name.split(".")
    while parts and ".".join(parts) not in mods:
        parts.pop()
    return ".".join(parts) or name


def _private_owner(imp: Import, mods: dict[str, Path | None]) -> str | None:
    """The package a private module or name belongs to, or None when nothing private is imported."""
    parts = imp.target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    if imp.name.startswith("_") and not imp.name.startswith("__"):
        return imp.target if _is_package(imp.target, mods) else imp.target.rpartition(".")[0]
    return None


def upward(found: list[Import]) -> list[str]:
    """``importer -> target`` for each engine importing an upper layer or library module importing the CLI."""
    out = set()
    for imp in found:
        if imp.importer == imp.target:
            continue
        if _within(imp.importer, ENGINES) and _within(imp.target, UPPER):
            out.add(f"{imp.importer} -> {imp.target}")
        elif not _within(imp.importer, CLI) and _within(imp.target, CLI):
            out.add(f"{imp.importer} -> {imp.target}")
    return sorted(out)


def private(found: list[Import], mods: dict[str, Path | None] | None = None) -> list[str]:
    """``importer -> target[:name]`` for each import of a private module or name from outside its package."""
    mods = modules() if mods is None else mods
    out = set()
    for imp in found:
        owner = _private_owner(imp, mods)
        if owner is None or _within(imp.importer, (owner,)):
            continue
        out.add(f"{imp.importer} -> {imp.target}" + (f":{imp.name}" if imp.name else ""))
    return sorted(out)


def private_names(found: list[Import]) -> list[str]:
    """``importer -> target:name`` for each private *name* imported from another module, even in the
    same package (informational: the issue's "imports of another module's private names")."""
    return sorted(
        {
            f"{i.importer} -> {i.target}:{i.name}"
            for i in found
            if i.name.startswith("_") and not i.name.startswith("__") and i.importer != i.target
        }
    )


def graph(found: list[Import]) -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for imp in found:
        if imp.importer != imp.target:
            g.setdefault(imp.importer, set()).add(imp.target)
    return g


def cycles(found: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (each a set of mutually reachable modules)."""
    g = graph(found)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:  # iterative Tarjan
        nonlocal counter
        work = [(root, iter(sorted(g.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(g.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        comps.append(sorted(comp))

    for node in sorted(g):
        if node not in index:
            visit(node)
    return sorted(comps)


def cycle_edges(found: list[Import]) -> list[str]:
    """``importer -> target`` for each import whose two ends lie on a common cycle."""
    where = {m: i for i, comp in enumerate(cycles(found)) for m in comp}
    g = graph(found)
    return sorted(f"{a} -> {b}" for a, targets in g.items() for b in targets if a in where and where.get(b) == where[a])


def report(package_dir: Path = PACKAGE_DIR) -> dict[str, list]:
    mods = modules(package_dir)
    found = imports(mods)
    return {
        "upward": upward(found),
        "cycles": cycles(found),
        "cycle_edges": cycle_edges(found),
        "private": private(found, mods),
        "private_names": private_names(found),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print every violation, not only the counts")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    rep = report()
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"upward imports:    {len(rep['upward'])}")
    print(
        f"import cycles:     {len(rep['cycles'])} (modules on a cycle: "
        f"{sum(map(len, rep['cycles']))}, imports on a cycle: {len(rep['cycle_edges'])})"
    )
    print(
        f"private reach-ins: {len(rep['private'])} (across packages; private names imported from "
        f"another module, same package included: {len(rep['private_names'])})"
    )
    if args.list:
        for key in ("upward", "cycle_edges", "private", "private_names"):
            print(f"\n[{key}]")
            for item in rep[key]:
                print(f"  {item}")
        print("\n[cycles]")
        for comp in rep["cycles"]:
            print("  " + " <-> ".join(comp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
