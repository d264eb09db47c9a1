"""The optional report formats (PDF, notebook) and the packages they need (the ``report`` extra)."""

from __future__ import annotations

__all__ = ["FORMAT_MODULES", "missing_formats", "require_format"]

#: the optional report formats and the packages each needs (the ``report`` extra)
FORMAT_MODULES = {"pdf": ("reportlab", "svglib"), "ipynb": ("nbformat",)}


def missing_formats() -> dict[str, str]:
    """The optional report formats that cannot be written here: ``{"pdf": why, "ipynb": why}``
    for those whose packages (:data:`FORMAT_MODULES`) are not installed; empty when all are."""
    import importlib.util

    out = {}
    for fmt, mods in FORMAT_MODULES.items():
        gone = [m for m in mods if importlib.util.find_spec(m) is None]
        if gone:
            out[fmt] = (
                f"writing report.{fmt} needs {' and '.join(mods)} (missing: {', '.join(gone)}): "
                "pip install 'clarion[report]'"
            )
    return out


def require_format(fmt: str) -> None:
    """Raise :class:`ModuleNotFoundError` (naming the module and the ``report`` extra) when the
    optional format ``fmt`` ("pdf" or "ipynb") cannot be written here."""
    import importlib.util

    for m in FORMAT_MODULES.get(fmt, ()):
        if importlib.util.find_spec(m) is None:
            raise ModuleNotFoundError(missing_formats()[fmt], name=m)
