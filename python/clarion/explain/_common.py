"""Small shared helpers of the explainers: budgets, thread counts, chunk sizes."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

MSG_INDEX = "{arg}: index {index} is out of range: there are {n} {what} (0..{last})"

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_budget(value: Any, arg: str = "memory_budget") -> int:
    """Bytes from an int or a string such as ``"1GiB"``, ``"512 MiB"``, ``"2GB"``."""
    if isinstance(value, bool):
        raise ValueError(f"{arg} must be a byte count or a string like '1GiB', got {value!r}")
    if isinstance(value, (int, np.integer)):
        out = int(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"{arg} must be a byte count or a string like '1GiB', got {value!r}")
        out = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    else:
        raise ValueError(f"{arg} must be a byte count or a string like '1GiB', got {value!r}")
    if out <= 0:
        raise ValueError(f"{arg} must be positive, got {value!r}")
    return out


def check_n_jobs(n_jobs: Any) -> int | None:
    if n_jobs is None or n_jobs == -1:
        return n_jobs
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be None, -1 or a positive integer, got {n_jobs!r}")
    return int(n_jobs)


def bytes_per_row(P: int, itemsize: int, D: int, is_frame: bool) -> int:
    """Memory one synthetic row costs while its batch is alive: the masked row, its decoded copy
    (DataFrame input), and the model output with its float64 conversion."""
    return P * itemsize * (2 if is_frame else 1) + 16 * max(D, 1)
