"""One validator per option shared by the config reader, the job and the engines.

A value is checked once, one way, wherever it enters: :mod:`clarion.config` calls these with
``key=`` set to the config key path (``methods.shap.seed``), so the error names the key; the
engines (:mod:`clarion.bias`, :mod:`clarion.explain`) call them with ``key=None`` and the error
names the argument. Every validator raises :class:`ValueError` (the config reader turns it into a
:class:`~clarion.config.ConfigError`) and returns the value normalised (a Python ``int`` /
``float``). This module imports nothing from clarion: every layer may use it.

Options
-------
byte sizes (``memory_budget``)
    :func:`byte_size`. A positive integer number of bytes, or a string: a decimal number
    (``"512"``, ``"1.5"``, ``"2e9"``) followed, after optional spaces, by an optional unit, case
    insensitive: ``B``; decimal ``K``/``KB``, ``M``/``MB``, ``G``/``GB``, ``T``/``TB`` (powers of
    1000); binary ``Ki``/``KiB``, ``Mi``/``MiB``, ``Gi``/``GiB``, ``Ti``/``TiB`` (powers of 1024).
    Fractions of a byte are truncated; the result must be at least 1 byte. Default
    :data:`DEFAULT_MEMORY_BUDGET` (1 GiB).
seeds
    :func:`seed`: an integer in ``[0, 2**64)`` (the engines' seeds are unsigned 64-bit).
    :func:`sub_seed` derives an independent seed for one consumer (bias bootstrap, SHAP plan)
    from a job seed, so that changing one consumer's seed need not change another's.
confidence
    :func:`confidence`: a number in the open interval ``(0, 1)``.
bootstrap replicates (``n_bootstrap``)
    :func:`n_bootstrap`: an integer in ``[low, MAX_N_BOOTSTRAP]``. The engines accept
    ``low = MIN_N_BOOTSTRAP = 1`` (one replicate is the least that defines an interval; the
    :class:`~clarion.bias.Accumulator` also accepts 0, meaning "keep none"); an analysis config
    asks for ``MIN_CONFIG_N_BOOTSTRAP = 10``: a job's report should not print a percentile
    interval from fewer replicates. One upper bound, 100,000, everywhere (a typo such as
    ``10**12`` is an error, not a MemoryError).
chunk rows
    :func:`chunk_rows`: rows per chunk read by the job, an integer >= 1, default
    :data:`DEFAULT_CHUNK_ROWS` (50,000). Results never depend on it.
threads (``n_threads``)
    :func:`threads`: kernel threads, ``None`` (``CLARION_NUM_THREADS`` or every core), ``-1``
    (every core) or a positive integer. ``n_threads`` is the one name; the explainers' older
    ``n_jobs`` is accepted with a :class:`DeprecationWarning` (:func:`threads_alias`).
coalitions (``num_samples``)
    :func:`num_samples`: an integer in ``[MIN_NUM_SAMPLES, MAX_NUM_SAMPLES]`` = ``[2, 1,000,000]``
    (a sampled Kernel SHAP plan needs two coalitions), or ``None`` for the default plan.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import re
import warnings
from typing import Any

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_MEMORY_BUDGET",
    "MAX_NUM_SAMPLES",
    "MAX_N_BOOTSTRAP",
    "MIN_CONFIG_N_BOOTSTRAP",
    "MIN_NUM_SAMPLES",
    "MIN_N_BOOTSTRAP",
    "SEED_LIMIT",
    "byte_size",
    "chunk_rows",
    "confidence",
    "n_bootstrap",
    "num_samples",
    "seed",
    "sub_seed",
    "threads",
    "threads_alias",
]

#: default memory budget of the engines and the job, in bytes (1 GiB)
DEFAULT_MEMORY_BUDGET = 1 << 30
#: default rows per chunk read by the analysis job (results never depend on it)
DEFAULT_CHUNK_ROWS = 50_000
#: seeds are integers in [0, SEED_LIMIT)
SEED_LIMIT = 2**64
#: fewest bootstrap replicates an engine call accepts with ``confidence``
MIN_N_BOOTSTRAP = 1
#: fewest bootstrap replicates an analysis config accepts
MIN_CONFIG_N_BOOTSTRAP = 10
#: most bootstrap replicates anywhere
MAX_N_BOOTSTRAP = 100_000
#: Kernel SHAP coalitions: a sampled plan needs two; the upper bound keeps a typo from a run of days
MIN_NUM_SAMPLES = 2
MAX_NUM_SAMPLES = 1_000_000

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "ki": 2**10,
    "kib": 2**10,
    "mi": 2**20,
    "mib": 2**20,
    "gi": 2**30,
    "gib": 2**30,
    "ti": 2**40,
    "tib": 2**40,
}
_SIZE = re.compile(r"\s*((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*")


def _is_int(v: Any) -> bool:
    """An integer that is not a bool (numpy integers included)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and type(v).__name__ not in ("bool", "bool_")


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and type(v).__name__ not in ("bool", "bool_")


def _fail(key: str | None, name: str, want: str, got: Any, engine_msg: str | None = None) -> ValueError:
    """The error: ``"{key}: expected {want}, got {got!r}"`` (the config's wording) for a config
    value, else ``engine_msg`` or ``"{name} must be {want}, got {got!r}"``."""
    if key is not None:
        return ValueError(f"{key}: expected {want}, got {got!r}")
    return ValueError(engine_msg if engine_msg is not None else f"{name} must be {want}, got {got!r}")


def byte_size(value: Any, *, key: str | None = None, name: str = "memory_budget") -> int:
    """Bytes from a positive integer or a size string (grammar in the module docstring).

    >>> byte_size("1GiB"), byte_size("1.5G"), byte_size("2e9"), byte_size("512 kib"), byte_size(4096)
    (1073741824, 1500000000, 2000000000, 524288, 4096)
    """
    label = key or name
    want = "a byte count or a size such as '1GiB', '512MB' or '2e9'"
    if _is_int(value):
        out = int(value)
    elif _is_real(value):
        if not math.isfinite(value) or value != int(value):  # 1.5 bytes: a unit mistake, not a size
            raise _fail(key, name, want, value, f"{label}: expected {want}, got {value!r}")
        out = int(value)
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value)
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"{label}: expected {want}, got {value!r}")
        f = float(m.group(1)) * _UNITS[m.group(2).lower()]
        if not math.isfinite(f):
            raise ValueError(f"{label}: expected {want}, got {value!r}")
        out = int(f)
    else:
        raise ValueError(f"{label}: expected {want}, got {value!r}")
    if out <= 0:
        raise ValueError(f"{label}: must be positive (at least 1 byte), got {value!r}")
    return out


def seed(
    value: Any,
    *,
    key: str | None = None,
    name: str = "seed",
    allow_none: bool = True,
    message: str | None = None,
) -> int | None:
    """An integer in ``[0, 2**64)`` (``None`` passes through when ``allow_none``).

    ``message`` replaces the engine-side text (a module constant that tests match)."""
    if value is None and allow_none:
        return None
    if not (_is_int(value) and 0 <= value < SEED_LIMIT):
        if key is not None:
            raise _fail(key, name, f"an integer in [0, {SEED_LIMIT - 1:,}]", value)
        raise ValueError(
            (message or "{name} must be an integer in [0, 2**64), got {value!r}").format(name=name, value=value)
        )
    return int(value)


def sub_seed(job_seed: int, consumer: str) -> int:
    """A seed for one ``consumer`` (e.g. ``"bias.bootstrap"``, ``"shap"``) derived from a job seed.

    ``blake2b(f"{job_seed}:{consumer}")``'s first 8 bytes as an unsigned integer, so the
    consumers draw independent streams and one can be reseeded without moving the other.
    Deterministic across platforms and Python versions.
    """
    s = seed(job_seed, name="job_seed", allow_none=False)
    digest = hashlib.blake2b(f"{s}:{consumer}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def confidence(value: Any, *, key: str | None = None, name: str = "confidence") -> float:
    """A number in the open interval ``(0, 1)``."""
    if not (_is_real(value) and math.isfinite(value) and 0 < value < 1):
        if key is not None:
            raise _fail(key, name, "a number in (0, 1)", value)
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def n_bootstrap(
    value: Any,
    *,
    key: str | None = None,
    name: str = "n_bootstrap",
    low: int = MIN_N_BOOTSTRAP,
    high: int = MAX_N_BOOTSTRAP,
    why: str = "",
) -> int:
    """An integer in ``[low, high]`` (see the module docstring for the two minimums).

    Engine-side messages: below ``low`` (or not an integer) "must be a positive integer" (a
    non-negative one when ``low`` is 0); above ``high`` "must be an integer in [low, high]";
    ``why`` is appended to both (e.g. ``" with confidence="``)."""
    if _is_int(value) and low <= value <= high:
        return int(value)
    want = f"an integer in [{low:,}, {high:,}]"
    if key is not None:
        raise _fail(key, name, want, value)
    if _is_int(value) and value > high:
        raise ValueError(f"{name} must be {want}{why}, got {value!r}")
    lower = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low:,}")
    raise ValueError(f"{name} must be {lower} (at most {high:,}){why}, got {value!r}")


def chunk_rows(value: Any, *, key: str | None = None, name: str = "chunk_rows") -> int:
    """Rows per chunk: an integer >= 1."""
    if not (_is_int(value) and value >= 1):
        raise ValueError(f"{key or name}: must be an integer >= 1, got {value!r}")
    return int(value)


def threads(value: Any, *, key: str | None = None, name: str = "n_threads") -> int | None:
    """Kernel threads: ``None`` (``CLARION_NUM_THREADS`` or every core), ``-1`` (every core) or a
    positive integer."""
    if value is None or (_is_int(value) and value == -1):
        return None if value is None else -1
    if not (_is_int(value) and value >= 1):
        if key is not None:
            raise _fail(key, name, "null, -1 or a positive integer", value)
        raise ValueError(f"{name} must be None, -1 or a positive integer, got {value!r}")
    return int(value)


def threads_alias(n_threads: Any, n_jobs: Any, *, stacklevel: int = 3) -> int | None:
    """``n_threads``, accepting the deprecated ``n_jobs`` spelling of the explainers.

    ``n_jobs`` (not None) warns :class:`DeprecationWarning`; giving both is an error."""
    if n_jobs is not None:
        if n_threads is not None:
            raise ValueError("give n_threads only (n_jobs is its deprecated name)")
        warnings.warn(
            "n_jobs is deprecated; use n_threads (the same meaning)",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        return threads(n_jobs, name="n_jobs")
    return threads(n_threads)


def num_samples(
    value: Any, *, key: str | None = None, name: str = "num_samples", message: str | None = None
) -> int | None:
    """Kernel SHAP coalitions: ``None`` (the default plan) or an integer in
    ``[MIN_NUM_SAMPLES, MAX_NUM_SAMPLES]``."""
    if value is None:
        return None
    if not (_is_int(value) and MIN_NUM_SAMPLES <= value <= MAX_NUM_SAMPLES):
        want = f"an integer in [{MIN_NUM_SAMPLES}, {MAX_NUM_SAMPLES:,}]"
        if key is not None:
            raise _fail(key, name, want, value)
        raise ValueError(
            (message or "{name} must be None or " + want + ", got {value!r}").format(name=name, value=value)
        )
    return int(value)
