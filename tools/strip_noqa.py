#!/usr/bin/env python3
"""Remove the codes of unused ``noqa`` comments (ruff's RUF100) and keep the reason written after them.

``ruff check --fix`` fixes RUF100 by deleting the whole comment, so ``# noqa: PLC0415 - optional
dependency`` loses "optional dependency". This script asks ruff which codes are unused (not
enabled, or not triggered) and edits only those: ``# noqa: PLC0415 - optional dependency`` becomes
``# optional dependency``; ``# noqa: E402, PLC0415`` becomes ``# noqa: E402``; a bare unused
``# noqa: PLC0415`` goes.

Usage: ``python tools/strip_noqa.py python tests benchmarks`` (then ``ruff check`` again).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

NOQA = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)(?P<rest>.*)$")
QUOTED = re.compile(r"`([A-Z]+[0-9]+)`")


def unused(paths: list[str]) -> dict[Path, dict[int, set[str]]]:
    """file -> line (1-based) -> unused codes on that line's noqa."""
    out = subprocess.run(
        # with the project's rule set (`--select RUF100` alone would call every other code unused)
        ["ruff", "check", "--extend-select", "RUF100", "--output-format", "json", "--exit-zero", *paths],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[Path, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for item in json.loads(out):
        if item["code"] == "RUF100":
            found[Path(item["filename"])][item["noqa_row"]] |= set(QUOTED.findall(item["message"]))
    return found


def strip_line(line: str, drop: set[str]) -> str:
    m = NOQA.search(line)
    if m is None:
        return line
    codes = [c.strip() for c in m["codes"].split(",")]
    keep = [c for c in codes if c not in drop]
    rest = m["rest"]
    if keep:
        comment = "# noqa: " + ", ".join(keep) + rest
    else:
        reason = rest.strip().lstrip("-—:;").strip()
        comment = f"# {reason}" if reason else ""
    return (line[: m.start()] + comment).rstrip()


def main(paths: list[str]) -> int:
    changed = 0
    for path, lines in unused(paths or ["."]).items():
        text = path.read_text(encoding="utf-8").split("\n")
        for row, drop in lines.items():
            new = strip_line(text[row - 1], drop)
            if new != text[row - 1]:
                text[row - 1] = new
                changed += 1
        path.write_text("\n".join(text), encoding="utf-8")
    print(f"{changed} noqa comment(s) edited")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
