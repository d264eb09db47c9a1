"""The optional report formats (PDF, notebook) and the packages they need (the ``report`` extra)."""

from __future__ import annotations

__all__ = ["FORMAT_MODULES", "missing_formats", "require_format"]

#: the optional report formats and the packages each needs (the ``report`` extra)
FORMAT_MODULES = {"pdf": ("reportlab", "svglib"), "ipynb": ("nbformat",)}


#: the modules found installed (a module found stays found: only the missing are looked for again)
_FOUND: set[str] = set()


def _installed(module: str) -> bool:
    if module in _FOUND:
        return True
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook that refuses it, a broken package
        return False
    if found:
        _FOUND.add(module)
    return found


def missing_formats() -> dict[str, str]:
    """The optional report formats that cannot be written here: ``{"pdf": why, "ipynb": why}``
    for those whose packages (:data:`FORMAT_MODULES`) are not installed; empty when all are."""
    out = {}
    for fmt, mods in FORMAT_MODULES.items():
        gone = [m for m in mods if not _installed(m)]
        if gone:
            out[fmt] = (
                f"writing report.{fmt} needs {' and '.join(mods)} (missing: {', '.join(gone)}): "
                "pip install 'clarion[report]'"
            )
    return out


def require_format(fmt: str) -> None:
    """Raise :class:`ModuleNotFoundError` (naming the module and the ``report`` extra) when the
    optional format ``fmt`` ("pdf" or "ipynb") cannot be written here."""
    for m in FORMAT_MODULES.get(fmt, ()):
        if not _installed(m):
            raise ModuleNotFoundError(missing_formats()[fmt], name=m)
