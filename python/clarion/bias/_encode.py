"""Layer 1 of the bias engine: columns to integer codes with a growable vocabulary.

Every column that defines groups (facet, group variable) or labels is turned into int32 codes
once per call. Code 0 is reserved for a missing value (NaN / None / NA); codes 1, 2, ... are the
distinct values in the order a :class:`Vocabulary` first saw them. A vocabulary can keep growing
across batches (the streaming accumulator): codes already handed out never change, so counts made
with an earlier, smaller vocabulary stay valid when padded with zeros.

Fast paths, fastest first: pandas categoricals (their codes are reused), booleans (a view),
integers with a compact range (an offset and a bincount), pyarrow arrays and pandas' Arrow-backed
strings (Arrow's ``dictionary_encode``), then ``pandas.factorize`` for everything else.
"""

from __future__ import annotations

import math
import numbers
import re
import threading
from typing import Any

import numpy as np
import pandas as pd

from clarion._counts import int_range

__all__ = [
    "Matcher",
    "SlotCodes",
    "Vocabulary",
    "column_values",
    "factorize",
    "is_missing_value",
    "is_numeric_column",
    "number_of",
    "slot_codes",
]

# A compact integer range is encoded by offset (no hashing) when it is at most this many times
# the number of rows (and small in absolute terms).
_INT_RANGE_MAX = 1 << 20
# A vocabulary keeps an integer lookup table (see Vocabulary._encode_known_ints) up to this many values.
_INT_LUT_VALUES = 1 << 12


def is_missing_value(v: Any) -> bool:
    """True for None, NaN, pandas.NA and NaT."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    try:
        return isinstance(v, (float, np.floating)) and math.isnan(v)
    except TypeError:  # pragma: no cover - exotic scalars
        return False


_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def number_of(v: Any) -> int | float | None:
    """The number a value stands for under the matching rule, or None: a finite bool / int /
    float as itself, a string that is a decimal number (``"1"``, ``" 1.0 "``, ``"2e3"``) as that
    number; anything else (other text, NaN, infinities, dates) is not a number."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (bool, int)):
        return int(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, str):
        t = v.strip()
        if not _DECIMAL.fullmatch(t):
            return None
        try:
            return int(t)
        except ValueError:
            f = float(t)
            return f if math.isfinite(f) else None
    return None


def _comparable(a: Any, b: Any) -> bool:
    """Whether two non-missing values can be equal under the matching rule: both numbers (or
    decimal text), or both of one non-numeric type (text and text, date and date)."""
    if number_of(a) is not None and number_of(b) is not None:
        return True
    if isinstance(a, (bool, int, float, np.number, np.bool_)) or isinstance(b, (bool, int, float, np.number, np.bool_)):
        return False
    return isinstance(a, type(b)) or isinstance(b, type(a))


class Matcher:
    """Which column values a list of configured values selects: THE matching rule of label values,
    predicted labels and facet values.

    A configured value selects a column value when they are equal as values: ``1``, ``1.0`` and
    ``True`` are one value, and text that is a decimal number stands for that number (``"1"``
    selects the integer 1 and the float 1.0; the number 1 selects the text ``"1"`` and ``"1.0"``).
    Other text selects equal text only. A configured value that cannot equal any value of the
    column's kind (text that is not a number against a numeric column, a number against a column
    of words) is an error, never a silent "nothing selected": see :meth:`incomparable`.
    """

    def __init__(self, values: list) -> None:
        self.values = list(values)
        self.exact: dict = {}  # hashable value -> given values it stands for
        self.numeric: dict = {}  # number -> given values
        for v in self.values:
            k = _key(v)
            try:
                self.exact.setdefault(k, []).append(v)
            except TypeError:
                pass
            n = number_of(v)
            if n is not None:
                self.numeric.setdefault(n, []).append(v)

    def given_matching(self, u: Any) -> list:
        """The configured values that select the column value ``u`` (empty: none)."""
        if is_missing_value(u):
            return []
        k = _key(u)
        hits: list = []
        try:
            hits = list(self.exact.get(k, []))
        except TypeError:
            pass
        if self.numeric:
            n = number_of(k)
            if n is not None:
                hits += [g for g in self.numeric.get(n, []) if not any(g is h for h in hits)]
        return hits

    def numbers(self) -> list | None:
        """The configured values as numbers (for a numeric column), or None if one is not a number."""
        out = [number_of(v) for v in self.values]
        return None if any(n is None for n in out) else out

    def incomparable(self, seen: list, *, every: bool = False) -> list:
        """Configured values that no value of ``seen`` (a column's non-missing values) can equal;
        with ``every=False`` the list is empty as soon as one pair is comparable (a mixed column
        is matched value by value)."""
        seen = [u for u in seen if not is_missing_value(u)]
        if not seen:
            return []
        bad = [v for v in self.values if not any(_comparable(v, u) for u in seen)]
        if every or len(bad) == len(self.values):
            return bad
        return []


def _key(v: Any) -> Any:
    """Dictionary key of a value: numpy scalars become Python scalars (1 == 1.0 == np.int64(1))."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def column_values(col: Any) -> Any:
    """A 1-D column as numpy array, pandas Series, or pyarrow (Chunked)Array, unchanged if possible."""
    if isinstance(col, (pd.Series, np.ndarray)):
        return col
    if isinstance(col, pd.Index):
        return pd.Series(col)
    if isinstance(col, pd.Categorical):  # its codes, not an object array of its values
        return pd.Series(col, copy=False)
    mod = type(col).__module__
    if mod.startswith("pyarrow"):
        return col
    return np.asarray(col)


def is_numeric_column(col: Any) -> bool:
    """True for bool, integer and float columns (numpy, pandas or pyarrow)."""
    col = column_values(col)
    if isinstance(col, pd.Series):
        dt = col.dtype
        if isinstance(dt, np.dtype) and dt.kind in "biuf":  # numpy-backed: no NA mask to consult
            return factorize(col.to_numpy())
        if isinstance(dt, pd.CategoricalDtype):
            return False
        return pd.api.types.is_bool_dtype(dt) or pd.api.types.is_numeric_dtype(dt)
    if isinstance(col, np.ndarray):
        return col.dtype.kind in "biuf"
    import pyarrow as pa  # only for arrow input

    t = col.type
    return pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)


def _arrow_factorize(arr: Any) -> tuple[np.ndarray, list]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    idx = arr.indices
    codes = idx.to_numpy(zero_copy_only=False)
    if idx.null_count:
        codes = np.where(idx.is_null().to_numpy(zero_copy_only=False), -1, codes)
    uniques = arr.dictionary.to_pylist()
    # a NaN inside a float dictionary is a value for Arrow but missing for us
    bad = [i for i, u in enumerate(uniques) if is_missing_value(u)]
    if bad:
        codes = codes.astype(np.int64)
        for i in bad:
            codes[codes == i] = -1
    return codes.astype(np.int64, copy=False), uniques


def factorize(col: Any) -> tuple[np.ndarray, list, np.ndarray | None]:
    """Local codes of a column: ``(codes, uniques, present)``.

    ``codes[i]`` is -1 for a missing value, else an index into ``uniques``. ``present`` is None
    when every unique value occurs in the column, else a bool mask over ``uniques`` (categoricals
    may declare categories that do not occur).
    """
    col = column_values(col)
    if isinstance(col, pd.Series):
        dt = col.dtype
        if isinstance(dt, np.dtype) and dt.kind in "biuf":  # numpy-backed: no NA mask to consult
            return factorize(col.to_numpy())
        if isinstance(dt, pd.CategoricalDtype):
            arr = col.array  # the Categorical itself: its codes without building a Series
            codes = arr.codes
            cats = list(arr.categories)
            present = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0 if len(cats) else np.zeros(0, bool)
            return codes, cats, present
        if dt == np.dtype(object) or isinstance(dt, pd.StringDtype) or str(dt).startswith(("str", "string")):
            arr = col.array
            if type(arr).__name__ in ("ArrowStringArray", "ArrowStringArrayNumpySemantics", "ArrowExtensionArray"):
                try:
                    import pyarrow as pa

                    return (*_arrow_factorize(pa.chunked_array(arr._pa_array)), None)
                except (ImportError, AttributeError):  # pragma: no cover - older pandas internals
                    pass
        if pd.api.types.is_bool_dtype(dt) and not col.hasnans:
            return factorize(col.to_numpy(dtype=bool))
        if pd.api.types.is_integer_dtype(dt) and not col.hasnans and isinstance(dt, np.dtype):
            return factorize(col.to_numpy())
        if pd.api.types.is_float_dtype(dt) and isinstance(dt, np.dtype):
            return factorize(col.to_numpy())
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        return np.asarray(codes), list(uniques), None
    if isinstance(col, np.ndarray):
        if col.ndim != 1:
            raise ValueError(f"expected a 1-D column, got an array of shape {col.shape}")
        kind = col.dtype.kind
        if kind == "b":
            n1 = int(np.count_nonzero(col))
            present = np.array([n1 < col.size, n1 > 0])
            return col.view(np.int8), [False, True], present
        if kind in "iu" and col.size:
            lo, hi = int(col.min()), int(col.max())
            span = hi - lo + 1
            if span <= min(_INT_RANGE_MAX, max(1024, 4 * col.size)):
                off = col - lo if lo != 0 or kind == "u" else col
                cnt = np.bincount(off.astype(np.intp, copy=False), minlength=span)
                idx = np.flatnonzero(cnt)
                if idx.size == span:
                    codes = off
                else:
                    lut = np.full(span, -1, dtype=np.int64)
                    lut[idx] = np.arange(idx.size)
                    codes = lut[off]
                return codes, [int(v) for v in (idx + lo)], None
        if kind in "iufb" or kind in "OUSMm":
            codes, uniques = pd.factorize(col, use_na_sentinel=True)
            return np.asarray(codes), list(uniques), None
        raise TypeError(f"cannot encode a column of dtype {col.dtype}")
    return (*_arrow_factorize(col), None)


class SlotCodes:
    """A column as the slot-count kernel reads it (issue 21): ``slot = codes + offset``, slot 0
    a missing value, slot ``j >= 1`` the value ``uniques[j - 1]``, ``size`` slots in all.

    Which slots occur is left to the count pass (it counts every slot), so building this costs no
    pass over the rows for categoricals and booleans, a min/max for integers, and one hashing pass
    (:func:`factorize`) for everything else. ``uvals``: the uniques as a numpy array of the
    column's dtype when the column is numpy-typed bool/int/float (the engine's numeric matching
    compares them as it compares the column's values), else None.
    """

    __slots__ = ("codes", "offset", "size", "_uniques", "lo", "uvals", "key")

    def __init__(
        self, codes: np.ndarray, offset: int, size: int, uniques: list | None, uvals: Any, lo: int = 0, key: Any = None
    ):
        self.codes, self.offset, self.size = codes, offset, size
        self._uniques, self.uvals, self.lo = uniques, uvals, lo
        # what identifies the slot -> value map across batches (None: nothing cheap does): the
        # engine caches what it derives from the values (lookup tables, vocabulary codes) by it
        self.key = key

    def value(self, slot: int) -> Any:
        """The value of slot ``slot >= 1`` (as :func:`factorize` lists it)."""
        if self._uniques is None:  # an integer range: slot j is lo + j - 1
            return int(self.lo + slot - 1)
        return self._uniques[slot - 1]

    def slot_values(self) -> Any:
        """The values of slots ``1 .. size - 1``, in order (a list, or a range of integers)."""
        if self._uniques is None:
            return range(int(self.lo), int(self.lo) + self.size - 1)
        return self._uniques

    def values_array(self, slots: np.ndarray) -> np.ndarray | None:
        """``uvals`` of the given slots (numeric columns only)."""
        if self.uvals is None:
            return None
        if self._uniques is None:
            return (slots - 1 + self.lo).astype(self.uvals.dtype)
        return self.uvals[slots - 1]


class _Same:
    """A dictionary key that is equal to itself only (identity), holding its object alive."""

    __slots__ = ("obj", "_hash")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self._hash = hash(id(obj))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


# id(dtype) -> (dtype, its categories as a list, the slot map's key): batches share dtypes
_CATEGORY_LISTS: dict = {}


def _categorical_slots(arr: pd.Categorical) -> SlotCodes:
    dt = arr.dtype
    hit = _CATEGORY_LISTS.get(id(dt))
    if hit is None or hit[0] is not dt:
        if len(_CATEGORY_LISTS) > 256:
            _CATEGORY_LISTS.clear()
        hit = _CATEGORY_LISTS[id(dt)] = (dt, dt.categories.tolist(), ("categorical", _Same(dt)))
    cats = hit[1]
    codes = getattr(arr, "_codes", None)  # the codes without the read-only view .codes builds
    if not isinstance(codes, np.ndarray) or codes.ndim != 1:  # pragma: no cover - pandas internals
        codes = arr.codes
    return SlotCodes(codes, 1, len(cats) + 1, cats, None, key=hit[2])


# a boolean column's slot map, shared by every batch (read only)
_BOOL_UNIQUES = [False, True]
_BOOL_UVALS = np.array([False, True])
_BOOL_UVALS.setflags(write=False)
_BOOL_KEY = ("bool",)


def slot_codes(col: Any, range_hint: tuple | None = None, *, hashing: bool = True) -> SlotCodes | None:
    """The :class:`SlotCodes` of a column, or None for a column the slot kernel does not take
    (not 1-D, or a dtype :func:`factorize` refuses).

    ``range_hint``: ``(dtype, lo, span)`` (an integer range's key, ``key[1:]``), the slots an
    integer column of that dtype is given without its min/max pass when the span fits the batch;
    the count pass then refuses a row outside the range (the caller retries without the hint).
    ``hashing=False``: None instead of a hashing pass (:func:`factorize`) for a column that is not
    categorical, boolean or a narrow integer range."""
    if isinstance(col, pd.Categorical):
        return _categorical_slots(col)
    col = column_values(col)
    if isinstance(col, pd.Series):
        dt = col.dtype
        if isinstance(dt, np.dtype) and dt.kind in "biuf":
            col = col.to_numpy()
        elif isinstance(dt, pd.CategoricalDtype):
            return _categorical_slots(col.array)
    if isinstance(col, np.ndarray):
        if col.ndim != 1:
            return None
        kind = col.dtype.kind
        if kind == "b":
            return SlotCodes(col.view(np.int8), 1, 3, _BOOL_UNIQUES, _BOOL_UVALS, key=_BOOL_KEY)
        if kind == "i" and col.size:
            if range_hint is not None and range_hint[0] == col.dtype:
                _, lo, span = range_hint
                if span <= min(_INT_RANGE_MAX, max(1024, 4 * col.size)):
                    return SlotCodes(col, 1 - lo, span + 1, None, col[:0], lo, key=("range", col.dtype, lo, span))
            lo, hi = int_range(col)
            span = hi - lo + 1
            if span <= min(_INT_RANGE_MAX, max(1024, 4 * col.size)) and -(1 << 62) < lo and hi < (1 << 62):
                return SlotCodes(col, 1 - lo, span + 1, None, col[:0], lo, key=("range", col.dtype, lo, span))
    if not hashing:
        return None
    try:
        codes, uniques, present = factorize(col)
    except (TypeError, ValueError):
        return None
    uvals = None
    if isinstance(col, np.ndarray) and col.dtype.kind in "biuf":
        uvals = np.asarray(uniques, dtype=col.dtype)
    codes = np.asarray(codes)
    if codes.dtype.kind != "i":
        codes = codes.astype(np.int64)
    uniques = list(uniques)
    key = None
    if len(uniques) <= 64:
        try:
            key = ("values", str(getattr(col, "dtype", "")), tuple((type(u), u) for u in uniques))
            hash(key)
        except TypeError:
            key = None
    return SlotCodes(codes, 1, len(uniques) + 1, uniques, uvals, key=key)


_OWN_KEYS = (str, int, bool)  # values that are their own dictionary key and never missing


class Vocabulary:
    """Distinct values of a column, in first-seen order; code 0 means "missing".

    Thread-safe: :meth:`encode` may run concurrently on several batches.
    """

    def __init__(self, values: list | None = None) -> None:
        self.values: list = []
        self._index: dict = {}
        self._lut_cache: dict = {}
        # (lut, base): code of integer value v at lut[v - base] (0: not in the vocabulary), for
        # integer columns of later batches; None until an integer column was encoded, or when the
        # vocabulary holds values that compare equal to integers other than int, bool and float.
        self._int_lut: tuple[np.ndarray, int] | None = None
        self._int_lut_size = -1  # len(values) when _int_lut was built
        self._lock = threading.Lock()
        for v in values or []:
            self._add(v)

    def __len__(self) -> int:
        """Number of codes in use, the missing slot included."""
        return len(self.values) + 1

    def _add(self, v: Any) -> int:
        k = _key(v)
        code = self._index.get(k)
        if code is None:
            self.values.append(k)
            code = len(self.values)
            self._index[k] = code
        return code

    def code_of(self, v: Any) -> int | None:
        """Code of a value (0 for a missing value), or None when it was never seen."""
        if is_missing_value(v):
            return 0
        try:
            return self._index.get(_key(v))
        except TypeError:
            return None

    def codes_of(self, values: Any) -> list:
        """:meth:`code_of` of each value, in one loop (str, int and bool values, which are their
        own keys and never missing, are looked up directly)."""
        get = self._index.get
        return [get(v) if type(v) in _OWN_KEYS else self.code_of(v) for v in values]

    def _int_table(self) -> tuple[np.ndarray, int] | None:
        """The integer lookup table of the current values (call with the lock held)."""
        pairs = []
        for k, code in self._index.items():
            if isinstance(k, (bool, int)):
                pairs.append((int(k), code))
            elif isinstance(k, float):
                if k.is_integer():
                    pairs.append((int(k), code))
            elif isinstance(k, numbers.Number):  # Decimal, Fraction, complex: may equal an integer
                return None
        if not pairs:
            return None
        base = min(v for v, _ in pairs)
        span = max(v for v, _ in pairs) - base + 1
        if span > _INT_RANGE_MAX or base < np.iinfo(np.int64).min or base + span - 1 > np.iinfo(np.int64).max:
            return None
        lut = np.zeros(span, dtype=np.int32)
        for v, code in pairs:
            lut[v - base] = code
        return lut, base

    def _encode_known_ints(self, col: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``encode`` of a signed-integer array whose values are all in the vocabulary already
        (a stream's usual batch): a table lookup, no hashing; None when it does not apply."""
        table = self._int_lut
        if table is None:
            return None
        lut, base = table
        lo, hi = int(col.min()), int(col.max())
        span = hi - lo + 1
        if lo < base or hi - base >= lut.size or span > max(1024, 4 * col.size):
            return None
        sub = lut[lo - base : hi - base + 1]
        x = col if col.dtype.itemsize == 8 else col.astype(np.intp)  # col - lo must not wrap
        off = x - lo if lo else x
        present = np.flatnonzero(np.bincount(off.astype(np.intp, copy=False), minlength=span))
        seen = sub[present]
        if not seen.all():  # a value this vocabulary has not seen yet
            return None
        return np.take(sub, off), np.sort(seen)

    def encode(self, col: Any) -> tuple[np.ndarray, np.ndarray]:
        """Codes of a column in this vocabulary (growing it), and the codes that occur.

        Returns ``(codes, seen)``: int32 codes (0 = missing) and the sorted array of codes that
        occur in ``col``.
        """
        col = column_values(col)
        if isinstance(col, pd.Series) and isinstance(col.dtype, np.dtype) and col.dtype.kind == "i":
            col = col.to_numpy()
        ints = isinstance(col, np.ndarray) and col.ndim == 1 and col.dtype.kind == "i" and col.size > 0
        if ints:
            hit = self._encode_known_ints(col)
            if hit is not None:
                return hit
        local, uniques, present = factorize(col)
        local = local.astype(np.int32, copy=False)
        key = None
        if len(uniques) <= 64:  # batches of a stream usually repeat the same local vocabulary
            try:
                key = (tuple(uniques), None if present is None else present.tobytes())
                hash(key)
            except TypeError:
                key = None
        with self._lock:
            hit = self._lut_cache.get(key) if key is not None else None
            if hit is None:
                lut = np.empty(len(uniques) + 1, dtype=np.int32)
                lut[0] = 0
                for j, u in enumerate(uniques):
                    if present is not None and not present[j]:
                        lut[j + 1] = 0  # never used by a row
                        continue
                    lut[j + 1] = 0 if is_missing_value(u) else self._add(u)
                identity = lut.size > 1 and np.array_equal(lut[1:], np.arange(1, lut.size, dtype=np.int32))
                seen = np.unique(lut[1:] if present is None else lut[1:][present])
                hit = (lut, identity, seen)
                if key is not None:
                    if len(self._lut_cache) > 64:
                        self._lut_cache.clear()
                    self._lut_cache[key] = hit
            if ints and self._int_lut_size != len(self.values) and len(self.values) <= _INT_LUT_VALUES:
                self._int_lut = self._int_table()
                self._int_lut_size = len(self.values)
        lut, identity, seen = hit
        codes = local + np.int32(1) if identity else lut[local + 1]
        if local.size and local.min() < 0:
            seen = np.concatenate([[0], seen])
        return codes, seen
