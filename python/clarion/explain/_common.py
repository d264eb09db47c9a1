"""Small shared helpers of the explainers: budgets, thread counts, chunk sizes (the options
themselves are checked by :mod:`clarion.options`)."""

from __future__ import annotations

from typing import Any

from clarion import options

MSG_INDEX = "{arg}: index {index} is out of range: there are {n} {what} (0..{last})"


def parse_budget(value: Any, arg: str = "memory_budget") -> int:
    """Bytes from an int or a size string: :func:`clarion.options.byte_size` (its grammar)."""
    return options.byte_size(value, name=arg)


def check_n_jobs(n_jobs: Any, arg: str = "n_jobs") -> int | None:
    """Kernel threads: :func:`clarion.options.threads` (None, -1 or a positive integer)."""
    return options.threads(n_jobs, name=arg)


def bytes_per_row(P: int, itemsize: int, D: int, is_frame: bool) -> int:
    """Memory one synthetic row costs while its batch is alive: the masked row, its decoded copy
    (DataFrame input), and the model output with its float64 conversion."""
    return P * itemsize * (2 if is_frame else 1) + 16 * max(D, 1)
