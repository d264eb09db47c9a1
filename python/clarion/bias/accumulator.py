"""Streaming bias accumulator: update with batches, merge across processes, persist, report.

The state is the count tensor of every facet (plus the vocabularies that name its codes), so
it is small, and adding two states is adding counts: merging is associative and commutative
and any split of the rows gives the report of all rows at once (exactly, for integer counts).

With ``n_bootstrap=R`` the state also keeps R Poisson-bootstrap replicates of every count table
(the kernel's ``grouped_counts(..., n_bootstrap=R, seed=s, row_offset=o)``): replicate r weights
the row with global number i by a counter-based Poisson(1) draw keyed on (seed, r, i). Rows are
numbered by the accumulator (the rows it has been given, in order) or explicitly with
``update(batch, row_offset=o)``, so replicate tables of any split, and of states built
independently with correct global offsets and merged in any order, add up to the one-shot ones
bit for bit (integer counts), and ``report(confidence=...)`` equals
``clarion.bias.report(all rows, confidence=..., n_bootstrap=R, seed=s)``.

Serialized format (``to_bytes``), version 2, all integers little-endian::

    magic    8 bytes   b"CLRNBIAS"
    version  uint32    2
    hlen     uint64    length of the header
    header   hlen bytes UTF-8 JSON: {"config": ..., "rows": {"next": int, "ranges": [[start, end], ...]},
                       "windows": [{"key", "state"}, ...]}; ``config`` includes ``n_bootstrap`` and
                       ``seed``; ``rows`` are the global row numbers counted (half-open, disjoint,
                       sorted) and the next implicit row number; each state lists its vocabularies
                       (values tagged with their type), maxima, flags and, per count array,
                       {"facet", "kind", "boot", "dtype", "shape", "offset", "nbytes"} (``boot``:
                       a replicate array, leading axis R)
    blob     the count arrays, C order, at the offsets the header gives
    sha256   32 bytes  digest of everything before it

Version 1 (no replicates, no ``rows``, no ``boot`` key) is still read: its rows count as numbered
``0 .. n_rows - 1``. Nothing is unpickled or evaluated; a wrong magic, version, digest, length or
configuration is refused with a ``ValueError`` that says which, and so is a state whose digest is
right but whose content breaks an invariant (see :meth:`Accumulator.from_bytes`): the digest
detects accidents, the checks detect edits.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from typing import Any, Literal

import numpy as np
import pandas as pd

from clarion import _backend, _counts, options
from clarion.bias._encode import Matcher, Vocabulary, is_missing_value
from clarion.bias._engine import Spec, State, Table, _RangeHints, _SlowPath, merge_states
from clarion.bias._result import BiasReport

__all__ = ["FORMAT_VERSION", "MAGIC", "Accumulator"]

MAGIC = b"CLRNBIAS"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_HEAD = struct.Struct("<8sIQ")

MSG_CORRUPT = "from_bytes: {what}"
MSG_CONFIG = "{op}: the accumulators were built with different configurations ({key} differs: {a!r} vs {b!r})"
MSG_OVERLAP = (
    "{op}: global rows {a}..{b} are already counted (with n_bootstrap > 0 every row needs its own "
    "global number: give each batch's row_offset so that the parts do not overlap)"
)
MSG_NO_BOOT = (
    "confidence: this Accumulator keeps no bootstrap replicates; create it with n_bootstrap=R "
    "(and a seed) to get intervals"
)
MSG_SOURCE = (
    "{arg}: an Accumulator reads columns of each batch by name; got {kind} (pass the column name so "
    "every batch provides it)"
)


#: batches the one-pass path counts in a row (the compiled stream declining them) after which the
#: stream is rebuilt only every this many batches: a stream whose slot maps keep changing
_STREAM_MISSES_MAX = 8
#: the compiled stream takes a batch pattern over once the one-pass path has counted it in this
#: many batches or this many rows: small batches with a value seen once or twice are often one-offs
#: (each accepted pattern holds a key of a byte per slot), and the one-pass path's own pattern
#: memo serves a small pattern's third batch; a pattern seen in 10,000 rows is taken over at once
_STREAM_SIGHTINGS = 3
_STREAM_SIGHTING_ROWS = 10_000
#: the most slots a column of the compiled stream may have (its pattern keeps a byte per slot)
_STREAM_SLOTS_MAX = 4096
#: rows up to which ``allow`` counts a batch on one thread (grouped_counts' chunk). A steady
#: batch's pass (``SlotStream.add``) picks its own threads: a persistent team of
#: CLARION_NUM_THREADS - 1 helpers from 4,096 rows and 128 KiB of codes (see docs/scaling.md)
_STREAM_ROWS_PER_THREAD = 1 << 16
#: a one-pass batch of at least this many rows wakes the count team's helpers before it is
#: prepared (``_core.team_wake``), and keeps them watching this many microseconds: the batch's
#: count pass then finds them awake (asleep, they join it tens of microseconds late: the first
#: update of a 100,000-row numeric stream counted ~150 us instead of ~75 us, issue 21)
_TEAM_WAKE_ROWS = 1 << 14
_TEAM_WAKE_HOLD_US = 1000


_CATEGORICAL = pd.Categorical

# CLARION_BACKEND, read on every update as the kernels read it (setting it takes effect at once):
# os.environ's own mapping (what os.environ.get reads, without the KeyError it raises and catches
# for an unset variable, ~1 us) where this Python has one
_ENV = getattr(os.environ, "_data", None)
_ENV_BACKEND = (
    os.environ.encodekey("CLARION_BACKEND") if _ENV is not None and hasattr(os.environ, "encodekey") else None
)


_ENV_THREADS = (
    os.environ.encodekey("CLARION_NUM_THREADS") if _ENV is not None and hasattr(os.environ, "encodekey") else None
)


def _backend_forced() -> bool:
    """Whether ``CLARION_BACKEND`` is set (non-empty)."""
    if _ENV_BACKEND is not None and type(_ENV) is dict:
        return bool(_ENV.get(_ENV_BACKEND))
    return bool(os.environ.get("CLARION_BACKEND"))


def _stream_threads() -> int:
    """``CLARION_NUM_THREADS`` as :func:`clarion._counts.env_threads` reads it (0: all cores),
    without its ~1 us when the variable is unset."""
    if _ENV_THREADS is not None and type(_ENV) is dict and not _ENV.get(_ENV_THREADS):
        return 0
    return _counts.env_threads()


def _wake_team() -> None:
    """Readies the count team's helpers for the count pass of a one-pass batch about to be
    prepared (``_core.team_wake``; nothing with another backend forced or an older core)."""
    if _backend_forced() or not _backend.has_core():
        return
    wake = getattr(_backend.core(), "team_wake", None)
    if wake is not None:
        wake(_stream_threads(), _TEAM_WAKE_HOLD_US)


def _check_row_offset(row_offset: Any) -> None:
    if isinstance(row_offset, bool) or not isinstance(row_offset, (int, np.integer)) or row_offset < 0:
        raise ValueError(f"row_offset must be a non-negative integer, got {row_offset!r}")


def _frame_columns(df: pd.DataFrame, names: list, locs: list | None = None) -> list | None:
    """The arrays of a DataFrame's columns ``names`` straight from its blocks (a categorical
    column as its ``pandas.Categorical``, a numpy column as a 1-D view), or None when that is not
    possible (a missing or repeated name, a MultiIndex, pandas internals that differ): the caller
    then takes the general path, which names a missing column.

    ``locs``: ``[(columns, positions)]`` of an earlier frame, reused when this frame's column index
    is that one or a view of it (``Index.is_``: the batches ``iloc`` cuts from one frame share it)
    and updated otherwise."""
    try:  # (a MultiIndex's get_loc of a partial key is a slice or a mask: declined below)
        mgr = df._mgr  # guarded: pandas' block manager (DataFrame.__getitem__ costs ~3 us a column)
        blocks, blknos, blklocs = mgr.blocks, mgr.blknos, mgr.blklocs
        columns = df.columns
        hit = locs[0] if locs is not None else None  # (one reference: threads replace it whole)
        if hit is not None and columns.is_(hit[0]):
            pos = hit[1]
        else:
            pos = [columns.get_loc(name) for name in names]
            if any(type(i) is not int for i in pos):
                return None
            if locs is not None:
                locs[0] = (columns, pos)
        out = []
        for i in pos:
            v = blocks[blknos[i]].values
            out.append(v[blklocs[i]] if type(v) is np.ndarray and v.ndim == 2 else v)
        return out
    except (AttributeError, TypeError, IndexError, KeyError, ValueError):
        return None


def _object_blocks(df: pd.DataFrame) -> bool:
    """Whether a DataFrame may hold an object column: True unless its blocks (pandas' block
    manager) are all of other dtypes."""
    try:  # guarded: pandas' internals (True: the caller looks at the columns)
        for b in df._mgr.blocks:
            dt = b.dtype  # (an extension dtype's column is never a numpy object array)
            if isinstance(dt, np.dtype) and dt.kind == "O":
                return True
        return False
    except (AttributeError, TypeError):
        return True


def _uncoded_zero(lut: np.ndarray) -> np.ndarray:
    """A copy of a slot -> code table whose slot 0 has no code (-1); the engine caches ``lut``."""
    out = lut.copy()
    if out.size:
        out[0] = -1
    return out


class _Stream:
    """The compiled steady state of an accumulator's stream (``_core.SlotStream``, issue 21).

    A stream's batches usually keep their columns' slot maps (the same categorical dtype, an
    integer range, a boolean) and their values: then the general path's checks and vocabulary
    commits repeat themselves, and only the counts differ. The stream holds, per column, the slot
    map and the slot -> count-table code tables, and the *patterns* (which slots of each column
    occur) of the batches the one-pass path has counted; a batch with an accepted pattern is
    counted, mapped and added into the state's tables in one compiled call (the GIL released for
    the count pass, the state's lock held for the addition). Anything else (a new value, a
    missing value, a row outside an integer range, a bad weight, a grown vocabulary, another
    dtype) is declined before anything changes, and the batch takes the one-pass / general path,
    which counts it or raises its error.
    """

    __slots__ = ("core", "state", "names", "kinds", "expect", "weighted", "maps", "locs", "misses", "compiled")

    def __init__(self, core: Any, state: State, names: list, kinds: list, expect: list, weighted: bool, maps: list):
        self.core, self.state, self.names, self.kinds = core, state, names, kinds
        self.expect, self.weighted, self.maps = expect, weighted, maps
        self.locs: list = [None]  # (a frame's column index, the names' positions in it)
        # the compiled fetch (``SlotStream.add_frame``): frames it could not read in a row, and
        # whether this core has it (a stale extension without it keeps the Python fetch)
        self.misses = 0
        self.compiled = not weighted and hasattr(core, "add_frame")

    # -- per batch ----------------------------------------------------------------------------

    def arrays(self, batch: Any) -> tuple[list, Any, int] | None:
        """The batch's code arrays in the stream's column order, its weights and its length, or
        None when a column does not fit the stream's slot maps."""
        if type(batch) is pd.DataFrame:
            cols = _frame_columns(batch, self.names, self.locs)
            if cols is None:
                return None
        elif isinstance(batch, dict):
            try:
                table = Table(batch)  # (checks the lengths of every column, as the general path)
                cols = [table.codes_col(name, "") for name in self.names]
            except (ValueError, TypeError):
                return None
        else:
            return None
        out = []
        for c, kind, exp in zip(cols, self.kinds, self.expect):
            c = self._accepted(c, kind, exp)
            if c is None:
                return None
            out.append(c)
        w = None
        if self.weighted:
            w = cols[-1]
            if type(w) is not np.ndarray or w.ndim != 1 or w.dtype.kind not in "fiu":
                return None
            if w.dtype != np.float64:  # what the general path's to_numeric makes of it
                w = w.astype(np.float64)
        return out, w, len(out[0])

    def _frame_arrays(self, df: pd.DataFrame) -> tuple[list, Any, int] | None:
        """:meth:`arrays` of an unweighted stream's DataFrame batch, in one loop over the
        columns (the same lookups and checks); once it has read a frame, the compiled fetch
        (``SlotStream.add_frame``) is primed with what it found (the columns' positions, the
        categorical dtypes accepted), so that the next frames like it are read without Python."""
        try:  # (as _frame_columns)
            mgr = df._mgr
            blocks, blknos, blklocs = mgr.blocks, mgr.blknos, mgr.blklocs
            columns = df.columns
            locs = self.locs
            hit = locs[0]
            if hit is not None and columns.is_(hit[0]):
                pos = hit[1]
            else:
                pos = [columns.get_loc(name) for name in self.names]
                if any(type(i) is not int for i in pos):
                    return None
                locs[0] = (columns, pos)
            out = []
            for i, kind, exp in zip(pos, self.kinds, self.expect):
                c = blocks[blknos[i]].values
                if type(c) is np.ndarray and c.ndim == 2:
                    c = c[blklocs[i]]
                c = self._accepted(c, kind, exp)
                if c is None:
                    return None
                out.append(c)
            misses = self.misses
            if self.compiled and (misses < _STREAM_MISSES_MAX or not misses % _STREAM_MISSES_MAX):
                # (primed only when the next frame tries the compiled fetch: see add)
                dtypes = [exp[0] if kind == "cat" else None for kind, exp in zip(self.kinds, self.expect)]
                self.core.prime_frame(df, pos, dtypes, _CATEGORICAL)
            return out, None, len(out[0])
        except (AttributeError, TypeError, IndexError, KeyError, ValueError):
            return None

    def _accepted(self, c: Any, kind: str, exp: Any) -> np.ndarray | None:
        """Column ``c`` as the stream reads it (an integer / boolean array of the stream's dtype,
        a categorical's codes in the stream's categories), or None: not a steady-state column."""
        tc = type(c)
        if tc is np.ndarray:
            if kind == "cat" or (c.dtype is not exp and c.dtype != exp):
                return None
            return c
        if tc is not _CATEGORICAL or kind != "cat":
            return None
        dt = c.dtype
        if dt is not exp[0] and not self._same_categories(dt, exp):
            return None
        codes = getattr(c, "_ndarray", None)  # (the codes: what ``_codes`` returns, ~0.1 us less)
        if type(codes) is not np.ndarray:
            codes = getattr(c, "_codes", None)
            if type(codes) is not np.ndarray:
                return None
        return codes

    @staticmethod
    def _same_categories(dt: Any, exp: list) -> bool:
        """Whether a categorical dtype lists the stream's categories in its order (then its codes
        are the stream's slots): ``exp`` is [the dtype last accepted, the stream's own dtype]; a
        reader makes a new dtype for every chunk, so the one last accepted is remembered."""
        ref = exp[1]
        if not isinstance(dt, pd.CategoricalDtype):
            return False
        a, b = dt.categories, ref.categories
        if a.dtype != b.dtype or not a.equals(b):
            return False
        exp[0] = dt
        return True

    def add(self, batch: Any) -> int | bytes:
        """Counts and adds the batch when it is in the steady state: its length; else 0 or the
        batch's pattern (bytes, not accepted yet), and nothing changed (the caller takes the
        one-pass path)."""
        if type(batch) is pd.DataFrame and not self.weighted:
            if _backend_forced():
                return 0
            # the steady state: the columns read from the frame's blocks, counted and added in one
            # compiled call (-1: a frame it does not know, read below in Python, which primes it);
            # a stream whose frames it keeps missing (a new column index per frame) tries it again
            # only every _STREAM_MISSES_MAX-th frame
            misses = self.misses
            if self.compiled and (misses < _STREAM_MISSES_MAX or not misses % _STREAM_MISSES_MAX):
                status = self.core.add_frame(batch, _stream_threads())
                if type(status) is not int or status >= 0:
                    self.misses = 0
                    return status
                self.misses = misses + 1
            got = self._frame_arrays(batch)
        else:
            got = self.arrays(batch)
        if got is None or _backend_forced():
            return 0
        arrays, w, n = got
        threads = _stream_threads()
        status = self.core.add(arrays, w, threads)
        if status == 4:  # e.g. a strided column (a frame built from a 2-D array): contiguous copies
            w = None if w is None else np.ascontiguousarray(w)
            status = self.core.add([np.ascontiguousarray(a) for a in arrays], w, threads)
        if type(status) is bytes:
            return status
        return n if status == 0 else 0

    def allow(self, batch: Any) -> int:
        """Accepts the pattern of a batch the one-pass path has just counted (0: accepted)."""
        got = self.arrays(batch)
        if got is None:
            return 4
        arrays, w, n = got
        threads = 1 if n <= _STREAM_ROWS_PER_THREAD else _counts.env_threads()
        w = None if w is None else np.ascontiguousarray(w)
        return self.core.allow([np.ascontiguousarray(a) for a in arrays], w, threads)

    # -- building -----------------------------------------------------------------------------

    @staticmethod
    def same_maps(a: _Stream, b: _Stream) -> bool:
        """Whether two streams read the same columns through the same slot maps (then a pattern
        accepted by one means the same values for the other)."""
        if a.names != b.names or a.kinds != b.kinds or a.weighted != b.weighted:
            return False
        for ka, ma, mb in zip(a.kinds, a.maps, b.maps):
            if ka == "cat":
                if ma[0] != mb[0] or ma[1].dtype != mb[1].dtype or not ma[1].equals(mb[1]):
                    return False
            elif ma != mb:
                return False
        return True

    @classmethod
    def build(cls, st: State, table: Table, batch: Any, compat: str, plan: dict | None = None) -> _Stream | None:
        """The stream of a state, its slot maps taken from ``batch`` (just counted by the one-pass
        path, so its values have codes), or None where the compiled stream does not apply:
        a label threshold, a facet threshold on a column that is not an integer range, several
        models or scores, columns that are not categorical / integer / boolean, wide slot maps,
        another backend. ``plan``: the batch's slot plan as the one-pass path made it
        (``State.fast_count``'s ``keep``), else made again here."""
        if not _backend.has_core() or _backend_forced():
            return None
        core = _backend.core()
        if not hasattr(core, "SlotStream") or (type(batch) is not pd.DataFrame and not isinstance(batch, dict)):
            return None
        spec = st.spec
        if spec.label_threshold is not None or len(spec.models) > 1 or st.n_rows == 0:
            return None
        # (a facet_threshold on an integer range is a 0 / 1 lookup table of its slots, as selected
        # facet values are; on another column its slot codes have no key: declined below)
        if spec.models and st.model_kinds != ["labels"]:
            return None
        names = list(st.facets) + ([spec.group_variable] if spec.group_variable is not None else [])
        names += [spec.label] + ([spec.models[0][1]] if spec.models else [])
        locs: list = [None]  # (the frame's column positions: the stream's own, without weights)
        if type(batch) is pd.DataFrame:
            first = _frame_columns(batch, names, locs)
        else:
            try:
                first = [table.codes_col(name, "") for name in names]
            except (ValueError, TypeError):
                first = None
        if first is None or not all(
            type(c) is pd.Categorical or (type(c) is np.ndarray and c.dtype.kind in "ib") for c in first
        ):  # a column that is hashed per batch (strings, floats): no slot map to keep
            return None
        if plan is None:
            hints = st.__dict__.get("_range_hints")
            try:
                plan = st._slot_plan(table, compat, _RangeHints(hints.known if hints is not None else {}))
            except (_SlowPath, TypeError, ValueError):
                return None
            if plan is None:
                return None
        K = len(st.group_vocab) if st.group_vocab is not None else 1
        kind = "pre" if not spec.models else "labels"
        cols = [(f, plan["facets"][f], st.facets[f]) for f in st.facets]
        if plan["g"] is not None:
            cols.append((spec.group_variable, plan["g"], "group"))
        cols.append((spec.label, plan["y"], "label"))
        if plan["p"] is not None:
            cols.append((spec.models[0][1], plan["p"], "pred"))
        names, kinds, expect, maps = [], [], [], []
        itemsizes, booleans, offsets, sizes, codes, wmaps = [], [], [], [], [], []
        V, facet_slots, counts, tables, vocabs, vocab_sizes = [], [], [], [], [], []
        for name, part, role in cols:
            sc = part["sc"]
            key = sc.key
            if key is None or sc.size > _STREAM_SLOTS_MAX:
                return None
            if key[0] == "categorical":
                dt = key[1].obj
                kinds.append("cat")
                expect.append([dt, dt])
                maps.append(("cat", dt.categories))
                itemsizes.append(sc.codes.dtype.itemsize)
                booleans.append(False)
            elif key[0] == "range":
                kinds.append("int")
                expect.append(key[1])
                maps.append(("int", key[1], key[2], key[3]))
                itemsizes.append(key[1].itemsize)
                booleans.append(False)
            elif key[0] == "bool":
                kinds.append("bool")
                expect.append(np.dtype(bool))
                maps.append(("bool",))
                itemsizes.append(1)
                booleans.append(True)
            else:  # a hashed column: its codes are the batch's own
                return None
            names.append(name)
            offsets.append(sc.offset)
            sizes.append(sc.size)
            # slot 0 is a missing value for a categorical; an integer range or a boolean has none:
            # its slot 0 is the value just below the range (lo - 1), which this stream's maps
            # cannot name, so it has no code (-1: a batch holding it is declined and counted by
            # the one-pass path; it was once counted as a missing value here, silently)
            uncoded_zero = key[0] != "categorical"
            if isinstance(role, str) and role != "group":  # label, prediction: positive or not
                lut = np.asarray(part["lut"], dtype=np.int32)
                codes.append(_uncoded_zero(lut) if uncoded_zero else lut)
                wmaps.append(lut)  # (the weighted sums' axis: its indices stay valid)
                continue
            vocab = st.group_vocab if role == "group" else role.vocab
            if role != "group" and part["kind"] != "vocab":  # selected facet values: 0 / 1
                lut = np.asarray(part["lut"], dtype=np.int32)
                codes.append(_uncoded_zero(lut) if uncoded_zero else lut)
                wmaps.append(lut)
                axis = 2
            else:
                axis = K if role == "group" else role.n_codes
                found = vocab.codes_of(sc.slot_values())
                code = np.array(
                    [-1 if uncoded_zero else 0] + [-1 if c is None or c >= axis else c for c in found], dtype=np.int32
                )
                codes.append(code)
                wmaps.append(np.arange(sc.size, dtype=np.int32))
            if role == "group" or part["kind"] == "vocab":  # its size decides the codes' axis
                vocabs.append(vocab.values)
                vocab_sizes.append(len(vocab.values))
                if len(vocab.values) + 1 != axis:
                    return None
            if role == "group":
                continue
            fs = role
            if fs.seen.size != axis:
                return None
            t = fs.counts.get(kind)
            want = (axis, K, 2) if kind == "pre" else (1, axis, K, 2, 2)
            dtype = np.float64 if st.weighted else np.int64
            if t is None or t.shape != want or t.dtype != dtype or not t.flags.c_contiguous or not t.flags.writeable:
                return None
            V.append(axis)
            facet_slots.append(part["kind"] == "vocab")
            counts.append(fs.counts)
            tables.append(t)
        if spec.weights is not None:
            names.append(spec.weights)
        try:
            core_stream = core.SlotStream(
                len(st.facets),
                plan["g"] is not None,
                plan["p"] is not None,
                spec.weights is not None,
                K,
                V,
                itemsizes,
                booleans,
                offsets,
                sizes,
                codes,
                wmaps,
                facet_slots,
                st.lock,
                st,
                counts,
                kind,
                tables,
                vocabs,
                vocab_sizes,
                _STREAM_SIGHTINGS,
                _STREAM_SIGHTING_ROWS,
            )
        except ValueError:  # pragma: no cover - a vocabulary grew while the stream was built
            return None
        stream = cls(core_stream, st, names, kinds, expect, spec.weights is not None, maps)
        if spec.weights is None:  # the same names in the same order: its fetch needs no lookup
            stream.locs = locs
        return stream


#: an object-string column is read through its learned values while they number at most this many
_TEXT_VALUES_MAX = _STREAM_SLOTS_MAX


class _TextColumn:
    """An object-string column of an accumulator's batches, read as codes (issue 21, part 2).

    Hashing an object column per batch (``pandas.factorize``: its ``is_string_array`` check, its
    hash table, the batch's values matched against the vocabulary) is most of what such a batch
    costs. ``codes`` (``_core.ObjectCodes``) learns the str values of every batch the accumulator
    has counted; a later batch whose every row is a str learned before becomes a
    ``pandas.Categorical`` over the values learned (``dtype``: one dtype while no value is added,
    so the batches of a stream share their slot maps, their pattern memo and the compiled stream).
    Its values were all counted before, so it adds nothing to a vocabulary and checks nothing the
    counted batches did not pass: its counts, vocabularies and errors are the general path's. A
    batch with a missing value, another type or a value not learned yet keeps the object path.
    """

    __slots__ = ("codes", "cat")

    def __init__(self, core: Any) -> None:
        self.codes = core.ObjectCodes()
        self.cat: tuple[int, Any] = (0, None)  # (values learned, their CategoricalDtype): one reference

    def categorical(self, arr: np.ndarray) -> pd.Categorical | None:
        """``arr`` (a 1-D object array) over the values learned, or None."""
        size, dtype = self.cat
        n = len(self.codes)
        if n != size:
            if not 0 < n <= _TEXT_VALUES_MAX:
                return None
            try:
                dtype = pd.CategoricalDtype(self.codes.values())
            except (TypeError, ValueError):  # e.g. a lone surrogate, which pandas' str dtype refuses
                dtype = None
            size = n
            self.cat = (size, dtype)
        if dtype is None:  # (these values: the object path)
            return None
        # (the codes' dtype: pandas' for that many categories)
        itemsize = 1 if size < 127 else 2 if size < 32767 else 4
        codes = self.codes.encode(arr, size, itemsize)
        if codes is None:
            return None
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


_PLAIN = (str, int, float, bool, type(None))


def _plain_config(cfg: dict) -> bool:
    """Whether every value of a configuration is a str, int, float, bool or None, or a list /
    tuple of them: :meth:`Accumulator._config_json` then tags each (no check needed)."""
    for v in cfg.values():
        if type(v) in _PLAIN:
            continue
        if type(v) not in (list, tuple) or any(type(x) not in _PLAIN for x in v):
            return False
    return True


def _tag(v: Any) -> list:
    if isinstance(v, bool):
        return ["b", v]
    if isinstance(v, int):
        return ["i", str(v)]
    if isinstance(v, float):
        return ["f", repr(v)]
    if isinstance(v, str):
        return ["s", v]
    if isinstance(v, pd.Timestamp):
        return ["t", v.isoformat()]
    raise TypeError(
        f"to_bytes: cannot serialize a value of type {type(v).__name__} ({v!r}); supported: bool, int, "
        "float, str, Timestamp"
    )


def _untag(t: list) -> Any:
    kind, v = t
    return {"b": bool, "i": int, "f": float, "s": str, "t": pd.Timestamp}[kind](v)


def _window_key(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def _holds_counts(st: Any) -> bool:
    """Whether a window's state has counted a batch (an empty one included): a state that was
    created by an update that then failed has no count tables."""
    return st.n_rows > 0 or any(fs.counts for fs in st.facets.values())


class Accumulator:
    """Bias counts over batches of rows, for :func:`clarion.bias.report`-identical reports.

    Parameters
    ----------
    label, facet, facet_values, facet_threshold, label_values, label_threshold, predicted_label,
    probability_threshold, group_variable, weights
        As in :func:`clarion.bias.report`, except that every column is given by name (each
        batch must hold it).
    window : str, optional
        A pandas frequency (``"1h"``, ``"1D"``): counts are kept per time window of
        ``time_column`` (window start = the time floored to the frequency).
    time_column : str, optional
        Timestamp column of each batch (required with ``window``).
    compat : {"clarion", "smclarify"}
        Edge-case convention (also decides whether missing labels are errors).
    n_bootstrap : int, default 0
        Poisson bootstrap replicates kept next to the counts (0: none), for
        ``report(confidence=...)``. Replicate ``r`` weights global row ``i`` by the Poisson(1)
        draw keyed on ``(seed, r, i)``, as :func:`clarion.bias.report` does, so the intervals
        equal the one-shot ones. The state grows by a factor ``1 + R``.
    seed : int, optional
        Bootstrap seed in ``[0, 2**64)`` (default 0, as in :func:`clarion.bias.report`).

    Notes
    -----
    ``update`` costs one count-kernel pass over the batch (two with replicates), whatever was
    seen before; it is thread-safe (encoding and counting run concurrently, the row numbering
    and the addition are locked; concurrent batches are numbered in the order they reserve their
    rows). Rows are numbered globally across windows: the whole-data report of a windowed
    accumulator equals the one-shot report with intervals, while a single window's interval uses
    its rows' global numbers (a valid bootstrap, not the same draws as a report on that window
    alone). FlipTest needs the rows and is reported as an error entry.
    """

    def __init__(
        self,
        *,
        label: Any,
        facet: Any,
        facet_values: Any = None,
        facet_threshold: Any = None,
        label_values: Any = None,
        label_threshold: float | None = None,
        predicted_label: Any = None,
        probability_threshold: float | list[float] = 0.5,
        group_variable: Any = None,
        weights: Any = None,
        window: str | None = None,
        time_column: str | None = None,
        compat: Literal["clarion", "smclarify"] = "clarion",
        n_bootstrap: int = 0,
        seed: int | None = None,
    ) -> None:
        if compat not in ("clarion", "smclarify"):
            raise ValueError(f"compat must be 'clarion' or 'smclarify', got {compat!r}")
        n_bootstrap = options.n_bootstrap(n_bootstrap, low=0)  # 0: keep no replicates
        options.seed(seed)
        seed = (0 if seed is None else int(seed)) if n_bootstrap else None
        if isinstance(predicted_label, Mapping_types()):
            bad = [k for k, v in predicted_label.items() if not isinstance(v, str)]
            if bad:
                raise ValueError(MSG_SOURCE.format(arg="predicted_label", kind=f"an array for model {bad[0]!r}"))
        elif predicted_label is not None and not isinstance(predicted_label, (str, list, tuple)):
            raise ValueError(MSG_SOURCE.format(arg="predicted_label", kind=type(predicted_label).__name__))
        for arg, v in (("group_variable", group_variable), ("weights", weights)):
            if v is not None and not isinstance(v, str):
                raise ValueError(MSG_SOURCE.format(arg=arg, kind=type(v).__name__))
        if window is not None:
            if time_column is None:
                raise ValueError("window: give time_column, the timestamp column the windows are cut from")
            try:
                pd.tseries.frequencies.to_offset(window)
            except ValueError as exc:
                raise ValueError(f"window: {window!r} is not a pandas frequency ({exc})") from None
        self._config = dict(
            label=label,
            facet=facet,
            facet_values=facet_values,
            facet_threshold=facet_threshold,
            label_values=label_values,
            label_threshold=label_threshold,
            predicted_label=predicted_label,
            probability_threshold=probability_threshold,
            group_variable=group_variable,
            weights=weights,
            window=window,
            time_column=time_column,
            compat=compat,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        if not _plain_config(self._config):
            json.dumps(self._config_json())  # fail early on values that cannot be persisted
        self.spec = Spec.build(
            label=label,
            facet=facet,
            facet_values=facet_values,
            facet_threshold=facet_threshold,
            label_values=label_values,
            label_threshold=label_threshold,
            predicted_label=predicted_label,
            probability_threshold=probability_threshold,
            group_variable=group_variable,
            weights=weights,
        )
        self.window = window
        self.time_column = time_column
        self.compat = compat
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self._states: dict[str, State] = {}
        self._lock = threading.Lock()
        self._next_row = 0
        self._ranges: list[list[int]] = []  # global rows counted: sorted, disjoint, half-open
        self._stream: _Stream | None = None  # the compiled steady state of a stream (see update)
        self._stream_misses = 0  # batches since the stream last counted one (bounds rebuilding)
        # object-string columns read as codes (_TextColumn): None until a DataFrame batch said
        # whether there are any, False when there are none or the accumulator cannot use them
        self._text: dict | bool | None = None
        self._text_names: list = []
        self._text_index: pd.Index | None = None
        self._text_locs: list = [None]

    # -- config ---------------------------------------------------------------------------------

    def _config_json(self) -> dict:
        def conv(v: Any) -> Any:
            if isinstance(v, dict):
                return {"__dict__": [[conv(k), conv(x)] for k, x in v.items()]}
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if v is None:
                return None
            return _tag(v.item() if isinstance(v, np.generic) else v)

        return {k: conv(v) for k, v in self._config.items()}

    @staticmethod
    def _config_from_json(cfg: dict) -> dict:
        def conv(v: Any) -> Any:
            if isinstance(v, dict):
                return {conv(k): conv(x) for k, x in v["__dict__"]}
            if v is None:
                return None
            if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and v[0] in "bifst" and len(v[0]) == 1:
                return _untag(v)
            return [conv(x) for x in v]

        return {k: conv(v) for k, v in cfg.items()}

    def _check_same(self, other: Accumulator, op: str) -> None:
        a, b = self._config_json(), other._config_json()
        for k in a:
            if a[k] != b.get(k):
                raise ValueError(MSG_CONFIG.format(op=op, key=k, a=self._config[k], b=other._config.get(k)))

    # -- updates --------------------------------------------------------------------------------

    def _state(self, key: str) -> State:
        with self._lock:
            st = self._states.get(key)
            if st is None:
                st = self._states[key] = State(self.spec)
            return st

    # -- row numbering ----------------------------------------------------------------------------

    def _overlap(self, ranges: list[list[int]]) -> tuple[int, int] | None:
        """The first overlap of ``ranges`` with the counted rows (as inclusive row numbers)."""
        for a, b in ranges:
            for c, d in self._ranges:
                if a < d and c < b:
                    return max(a, c), min(b, d) - 1
        return None

    def _add_ranges(self, ranges: list[list[int]]) -> None:
        merged: list[list[int]] = []
        for a, b in sorted(self._ranges + [list(r) for r in ranges if r[1] > r[0]]):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self._ranges = merged

    def _reserve_next(self, n: int) -> None:
        """:meth:`_reserve` of the usual batch (no ``row_offset``): the ``n`` rows right after the
        last batch's."""
        with self._lock:
            o = self._next_row
            ranges = self._ranges
            if ranges and ranges[-1][1] == o:
                ranges[-1][1] = o + n
            else:
                self._add_ranges([[o, o + n]])
            self._next_row = o + n

    def _reserve(self, n: int, row_offset: int | None) -> int:
        """Global number of the batch's first row; records rows [o, o + n) as counted."""
        if row_offset is not None:
            _check_row_offset(row_offset)
        with self._lock:
            o = self._next_row if row_offset is None else int(row_offset)
            if self.n_bootstrap:
                hit = self._overlap([[o, o + n]])
                if hit is not None:
                    raise ValueError(MSG_OVERLAP.format(op="update", a=hit[0], b=hit[1]))
            if self._ranges and self._ranges[-1][1] == o:  # the usual batch: right after the last
                self._ranges[-1][1] = o + n
            else:
                self._add_ranges([[o, o + n]])
            self._next_row = max(self._next_row, o + n)
            return o

    def _release(self, o: int, n: int) -> None:
        """Undo :meth:`_reserve` after a failed count."""
        with self._lock:
            out = []
            for a, b in self._ranges:
                out.extend(r for r in ([a, min(b, o)], [max(a, o + n), b]) if r[1] > r[0])
            self._ranges = out
            if self._next_row == o + n:
                self._next_row = max((b for _, b in out), default=0)

    @property
    def next_row(self) -> int:
        """Global row number an ``update`` without ``row_offset`` gives its first row."""
        return self._next_row

    def _follow(
        self, st: State, table: Table, batch: Any, stream: _Stream | None, key: bytes | None, kept: dict
    ) -> None:
        """After the one-pass path counted ``batch``: note its pattern in the compiled stream
        (``key``, when the stream returned it), else build the stream from the one-pass path's
        plan and note the pattern from its slot tables (``kept``: no second pass); the patterns of
        the stream before carry over when the slot maps are the same. A pattern noted
        ``_STREAM_SIGHTINGS`` times (or in ``_STREAM_SIGHTING_ROWS`` rows) is the stream's to
        count. Gives up for a while on a stream whose batches keep changing."""
        self._stream_misses += 1
        misses = self._stream_misses
        if misses > _STREAM_MISSES_MAX and misses % _STREAM_MISSES_MAX:
            return
        old = self._stream
        if old is not None and old.state is not st:
            old = None
        if key is not None and old is not None and old is stream and old.core.note(key, table.n) == 0:
            return
        # (a batch the stream declined without a key has a new value, a new range, another dtype,
        # or the state's tables grew: the stream's maps no longer fit it)
        new = _Stream.build(st, table, batch, self.compat, kept.get("plan"))
        if new is None:
            return
        if old is not None and _Stream.same_maps(old, new):
            new.core.copy_patterns(old.core)
        raws = kept.get("raws")
        if raws is not None:
            noted = new.core.note_tables([raws[f] for f in st.facets], table.n)
        else:  # pragma: no cover - fast_count fills ``kept`` whenever it counts
            noted = new.allow(batch)
        if noted == 0:
            if new.compiled and type(batch) is pd.DataFrame:
                # primes the compiled fetch with this frame (its columns' positions, the dtypes
                # accepted) before other threads see the stream: the next frame cut from the same
                # one is read without the Python fetch (~10 us of the second batch otherwise: a
                # refused add_frame, the fetch, add)
                new._frame_arrays(batch)
            self._stream = new

    def update(self, batch: Any, *, row_offset: int | None = None) -> Accumulator:
        """Count one batch (DataFrame, pyarrow Table / RecordBatch, or dict of arrays).

        Values first seen in this batch extend the vocabularies; earlier counts stay valid.

        Parameters
        ----------
        batch : DataFrame, pyarrow Table / RecordBatch or dict of arrays
            The rows.
        row_offset : int, optional
            Global row number of the batch's first row (default: :attr:`next_row`, i.e. the rows
            given so far are numbered in order). It keys the bootstrap draws; give it when
            independent accumulators (processes, partitions) count parts of one data set, so
            that their merge equals the one-shot result. With ``n_bootstrap > 0`` a row number
            already counted is a ``ValueError``.

        Returns
        -------
        Accumulator
            ``self``.
        """
        text = self._text
        stream = self._stream
        if text is False and stream is not None and row_offset is None:  # (as _update, one call less)
            n = stream.add(batch)
            if type(n) is int and n:
                self._stream_misses = 0
                self._reserve_next(n)
                return self
            return self._update(batch, row_offset, first=n)
        if text is not False and type(batch) is pd.DataFrame:
            if text is None:
                text = self._text_setup(batch)
            if text:
                conv = self._text_batch(batch, text)
                if conv is None:  # the object path; its values are learned once it counted them
                    self._update(batch, row_offset)
                    self._text_learn(batch, text)
                    return self
                batch = conv
        return self._update(batch, row_offset)

    # -- object-string columns as codes (issue 21, part 2) --------------------------------------

    def _text_setup(self, batch: pd.DataFrame) -> dict | bool:
        """Whether the bias columns of this accumulator's batches include object-string columns
        to read as codes (see :class:`_TextColumn`): the columns of the first DataFrame batch
        decide. Not with time windows or bootstrap replicates (they keep the general path), nor
        with several models or probability scores."""
        spec = self.spec
        out: dict | bool = False
        if not _object_blocks(batch):
            # no numpy object column in the frame (its blocks say so without a lookup per column:
            # ~7 us of a first update after other work): nothing to read as codes
            self._text = False
            return False
        if (
            self.window is None
            and not self.n_bootstrap
            and len(spec.models) <= 1
            and spec.label_threshold is None
            and _backend.has_core()
            and hasattr(_backend.core(), "ObjectCodes")
        ):
            names = list(spec.facets) + ([spec.group_variable] if spec.group_variable is not None else [])
            names += [spec.label] + [m[1] for m in spec.models] + ([spec.weights] if spec.weights is not None else [])
            names = list(dict.fromkeys(n for n in names if isinstance(n, str)))
            cols = _frame_columns(batch, names)
            if cols is None:  # (a column missing: the update raises; the next frame decides)
                return False
            if len(names) == len(set(names)):
                core = _backend.core()
                text = {
                    name: _TextColumn(core)
                    for name, c in zip(names, cols)
                    if type(c) is np.ndarray and c.dtype == object and name != spec.weights
                }
                if text:
                    self._text_names = names
                    self._text_index = pd.Index(names, dtype=object)
                    out = text
        self._text = out
        return out

    def _text_batch(self, batch: pd.DataFrame, text: dict) -> pd.DataFrame | None:
        """The batch's bias columns with its object-string columns as categoricals over their
        learned values (a new frame), or None: a column missing or not an object column any
        more, a row that is not a learned str."""
        cols = _frame_columns(batch, self._text_names, self._text_locs)
        if cols is None:
            return None
        out = []
        for name, c in zip(self._text_names, cols):
            tc = text.get(name)
            if tc is not None:
                if type(c) is not np.ndarray or c.dtype != object:
                    return None
                c = tc.categorical(c)
                if c is None:
                    return None
            elif type(c) is np.ndarray and c.ndim != 1:  # pragma: no cover - _frame_columns gives 1-D views
                return None
            out.append(c)
        try:  # guarded: DataFrame._from_arrays (pandas' own constructor, without the dict round trip)
            return pd.DataFrame._from_arrays(out, columns=self._text_index, index=batch.index, verify_integrity=False)
        except (AttributeError, TypeError, ValueError):  # pragma: no cover - pandas internals
            return pd.DataFrame(dict(zip(self._text_index, out)), index=batch.index, copy=False)

    def _text_learn(self, batch: pd.DataFrame, text: dict) -> None:
        """Learn the str values of a batch's object columns (the batch was counted)."""
        cols = _frame_columns(batch, self._text_names, self._text_locs)
        if cols is None:
            return
        for name, c in zip(self._text_names, cols):
            tc = text.get(name)
            if tc is not None and type(c) is np.ndarray and c.dtype == object and c.ndim == 1:
                tc.codes.learn(c)

    def _update(self, batch: Any, row_offset: int | None, first: Any = None) -> Accumulator:
        """:meth:`update` after the object-string columns were read (see :meth:`update`);
        ``first``: what the compiled stream already answered for this batch (not a count)."""
        stream = self._stream
        key = None
        if stream is not None:  # the steady state of a stream: one compiled call (issue 21)
            if row_offset is not None:
                _check_row_offset(row_offset)
            n = stream.add(batch) if first is None else first
            if type(n) is int:
                if n:
                    self._stream_misses = 0
                    if row_offset is not None:
                        self._reserve(n, row_offset)
                        return self
                    self._reserve_next(n)
                    return self
            else:  # the batch's pattern, not accepted yet: noted once the batch is counted below
                key = n
        table = Table(batch)
        if table.n == 0:
            return self
        if self.window is None and not self.n_bootstrap:  # one pass over the columns (issue 21)
            if table.n >= _TEAM_WAKE_ROWS:
                _wake_team()
            st = self._state("all")
            kept: dict = {}
            fast = st.fast_count(table, self.compat, keep=kept, team=True)
            if fast is not None:
                self._reserve(table.n, row_offset)
                st.add_counts(fast, table.n)
                self._follow(st, table, batch, stream, key, kept)
                return self
        if self.window is None:
            parts = [("all", table, None)]
        else:
            t = pd.to_datetime(pd.Series(np.asarray(table.col(self.time_column, "time_column"))))
            if t.isna().any():
                raise ValueError(f"time_column: missing timestamp at row {int(np.flatnonzero(t.isna())[0])}")
            start = t.dt.floor(self.window)
            parts = []
            for key_ts, idx in pd.Series(np.arange(table.n)).groupby(start.to_numpy()).groups.items():
                rows = np.sort(np.asarray(idx, dtype=np.intp))
                parts.append((_window_key(pd.Timestamp(key_ts)), Table(_take(table, rows)), rows))
        encoded = [(key, self._state(key), sub, rows) for key, sub, rows in parts]
        encoded = [(key, st, st.encode(sub, self.compat), sub.n, rows) for key, st, sub, rows in encoded]
        o = self._reserve(table.n, row_offset)
        try:
            counted = []
            for _, st, enc, n, rows in encoded:
                boot = None
                if self.n_bootstrap:
                    kw: dict[str, Any] = {"row_offset": o}
                    if rows is not None:
                        lo, hi = int(rows[0]), int(rows[-1]) + 1
                        kw["row_offset"] = o + lo
                        if hi - lo != rows.size:
                            kw.update(rows=rows - lo, span=hi - lo)
                    boot = st.count(enc, n_bootstrap=self.n_bootstrap, seed=self.seed, **kw)
                counted.append((st, st.count(enc), n, boot))
        except BaseException:
            self._release(o, table.n)
            raise
        for st, batch_counts, n, boot in counted:
            st.add_counts(batch_counts, n, boot)
        return self

    def merge(self, other: Accumulator) -> Accumulator:
        """Add another accumulator's counts (same configuration) into this one; returns ``self``."""
        if not isinstance(other, Accumulator):
            raise TypeError(f"merge: expected an Accumulator, got {type(other).__name__}")
        if other is self:
            raise ValueError("merge: cannot merge an accumulator into itself")
        self._check_same(other, "merge")
        with self._lock, other._lock:
            if self.n_bootstrap:
                hit = self._overlap(other._ranges)
                if hit is not None:
                    raise ValueError(MSG_OVERLAP.format(op="merge", a=hit[0], b=hit[1]))
            self._add_ranges(other._ranges)
            self._next_row = max(self._next_row, other._next_row)
        for key, st in list(other._states.items()):
            merge_states(self._state(key), st)
        return self

    @property
    def n_rows(self) -> int:
        """Rows counted so far (all windows)."""
        return sum(s.n_rows for s in self._states.values())

    def windows(self) -> list[str]:
        """Window start times (ISO format) that hold counts, sorted; ``["all"]`` without windows.
        A window whose every update failed before counting holds none and is not listed."""
        return sorted(k for k, st in self._states.items() if _holds_counts(st))

    # -- report ---------------------------------------------------------------------------------

    def report(
        self,
        methods: str | list[str] = "all",
        *,
        stage: Literal["pre", "post", "both"] = "both",
        window: str | list[str] | None = None,
        confidence: float | None = None,
        n_bootstrap: int | None = None,
    ) -> BiasReport:
        """The :class:`BiasReport` of every row counted so far (or of the given window(s)).

        Identical to :func:`clarion.bias.report` on the same rows (FT excepted: it needs rows),
        intervals included: with ``confidence`` every count-based metric gains the percentile
        interval of the kept replicates (``low = v_(⌊Rα/2⌋)``, ``high = v_(⌈R(1 − α/2)⌉ − 1)``
        of the sorted replicate values, α = 1 − confidence), the ``ci_low`` / ``ci_high`` of
        ``clarion.bias.report(rows, confidence=..., n_bootstrap=R, seed=seed)``.

        Parameters
        ----------
        methods, stage
            As in :func:`clarion.bias.report`.
        window : str or list of str, optional
            Window(s) to report (default: all rows).
        confidence : float in (0, 1), optional
            Adds bootstrap intervals (needs ``n_bootstrap > 0`` at construction).
        n_bootstrap : int, optional
            Use the first ``n_bootstrap`` kept replicates (default: all). Replicate r does not
            depend on how many are drawn, so this equals a one-shot report with that many.
        """
        keys = self.windows() if window is None else ([window] if isinstance(window, str) else list(window))
        for k in keys:
            if k not in self._states or not _holds_counts(self._states[k]):
                raise ValueError(f"window: {k!r} holds no counts; windows: {self.windows()}")
        if not keys:
            raise ValueError("report: no rows were counted yet")
        R = 0
        if confidence is not None:
            options.confidence(confidence)
            if not self.n_bootstrap:
                raise ValueError(MSG_NO_BOOT)
            R = self.n_bootstrap if n_bootstrap is None else n_bootstrap
            if isinstance(R, bool) or not isinstance(R, (int, np.integer)) or not 1 <= R <= self.n_bootstrap:
                raise ValueError(
                    f"n_bootstrap must be an integer in [1, {self.n_bootstrap}] (the replicates this "
                    f"Accumulator keeps), got {n_bootstrap!r}"
                )
            R = int(R)
        if len(keys) == 1:
            total = self._states[keys[0]]
        else:
            total = State(self.spec)
            for k in keys:
                merge_states(total, self._states[k])
        if not R:
            return total.assemble(methods=methods, stage=stage, compat=self.compat)
        with total.lock:
            boot = {f: {kind: c[:R].copy() for kind, c in fs.boot.items()} for f, fs in total.facets.items()}
        return total.assemble(
            methods=methods, stage=stage, compat=self.compat, boot=boot, confidence=float(confidence), n_bootstrap=R
        )

    # -- persistence ----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The state in the versioned format of this module's docstring."""
        blobs: list[bytes] = []
        offset = 0
        windows = []
        for key in self.windows():
            st = self._states[key]
            with st.lock:
                sj: dict[str, Any] = {
                    "n_rows": st.n_rows,
                    "weighted": st.weighted,
                    "model_kinds": st.model_kinds,
                    "label_vocab": [_tag(v) for v in st.label_vocab.values],
                    "label_max": None if st.label_max is None else _tag(st.label_max),
                    "group_vocab": None if st.group_vocab is None else [_tag(v) for v in st.group_vocab.values],
                    "group_missing": st.group_missing,
                    "facets": [],
                    "arrays": [],
                }
                for fs in st.facets.values():
                    sj["facets"].append(
                        {
                            "vocab": [_tag(v) for v in fs.vocab.values],
                            "seen": fs.seen.tolist(),
                            "col_max": None if fs.col_max is None else _tag(fs.col_max),
                        }
                    )
                    for is_boot, tables in ((False, fs.counts), (True, fs.boot)):
                        for kind, c in tables.items():
                            c = np.ascontiguousarray(c).astype(c.dtype.newbyteorder("<"), copy=False)
                            b = c.tobytes()
                            sj["arrays"].append(
                                {
                                    "facet": len(sj["facets"]) - 1,
                                    "kind": kind,
                                    "boot": is_boot,
                                    "dtype": c.dtype.str,
                                    "shape": list(c.shape),
                                    "offset": offset,
                                    "nbytes": len(b),
                                }
                            )
                            blobs.append(b)
                            offset += len(b)
            windows.append({"key": key, "state": sj})
        with self._lock:
            rows = {"next": self._next_row, "ranges": [list(r) for r in self._ranges]}
        header = json.dumps({"config": self._config_json(), "rows": rows, "windows": windows}, sort_keys=True).encode()
        body = _HEAD.pack(MAGIC, FORMAT_VERSION, len(header)) + header + b"".join(blobs)
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes, *, like: Accumulator | None = None) -> Accumulator:
        """Rebuild an accumulator from :meth:`to_bytes` output.

        Every invariant of the state is checked, not only the digest (which anyone who edits a
        state can recompute): the header's keys and types, the tagged values, the configuration,
        vocabularies without duplicates or missing values, count arrays of the shapes the
        configuration and vocabularies imply, laid out inside the data without overlap, counts
        that are finite and non-negative (integers without weights), every model's and
        threshold's table summing to the state's row count (without weights), the same label
        totals in every table of a state, codes with counts marked as seen, the bootstrap
        replicates present for every table, and the global row ranges sorted, disjoint and
        consistent with the row counts. Any violation is a ``ValueError`` naming it.

        Parameters
        ----------
        data : bytes
            The serialized state.
        like : Accumulator, optional
            When given, the stored configuration must equal ``like``'s (else ``ValueError``).
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_bytes: expected bytes, got {type(data).__name__}")
        try:
            return cls._from_bytes(bytes(data), like)
        except ValueError:
            raise
        except (
            TypeError,
            KeyError,
            IndexError,
            AttributeError,
            RecursionError,
            OverflowError,
            struct.error,
            UnicodeDecodeError,
        ) as exc:  # a safety net: every check below should have caught it first
            raise ValueError(MSG_CORRUPT.format(what=f"malformed state ({type(exc).__name__}: {exc})")) from None

    @classmethod
    def _from_bytes(cls, data: bytes, like: Accumulator | None) -> Accumulator:
        if len(data) < _HEAD.size + 32:
            raise ValueError(MSG_CORRUPT.format(what=f"truncated input ({len(data)} bytes)"))
        magic, version, hlen = _HEAD.unpack_from(data)
        if magic != MAGIC:
            raise ValueError(MSG_CORRUPT.format(what=f"not a clarion bias accumulator (magic {magic!r})"))
        if version not in READABLE_VERSIONS:
            raise ValueError(
                MSG_CORRUPT.format(
                    what=f"format version {version} is not supported (this clarion "
                    f"reads versions {', '.join(map(str, READABLE_VERSIONS))})"
                )
            )
        body, digest = data[:-32], data[-32:]
        if hashlib.sha256(body).digest() != digest:
            raise ValueError(MSG_CORRUPT.format(what="checksum mismatch: the data is corrupted or truncated"))
        start = _HEAD.size + hlen
        if start > len(body):
            raise ValueError(MSG_CORRUPT.format(what="truncated header"))
        try:
            doc = json.loads(body[_HEAD.size : start].decode("utf-8"))
        except (UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(MSG_CORRUPT.format(what=f"the header is not JSON ({type(exc).__name__})")) from None
        except ValueError as exc:
            raise ValueError(MSG_CORRUPT.format(what=f"the header is not JSON ({exc})")) from None
        _keys(doc, {"config", "windows"} | ({"rows"} if version >= 2 else set()), "the header")
        cfg = doc["config"]
        _keys(cfg, set(_CONFIG_KEYS), "config", required=set(_CONFIG_KEYS) if version >= 2 else set())
        try:
            acc = cls(**cls._config_from_json(cfg))
        except ValueError as exc:
            raise ValueError(MSG_CORRUPT.format(what=f"invalid configuration ({exc})")) from None
        except (TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
            raise ValueError(MSG_CORRUPT.format(what=f"invalid configuration ({type(exc).__name__}: {exc})")) from None
        if like is not None:
            like._check_same(acc, "from_bytes")
        blob = memoryview(body)[start:]
        used: list[tuple[int, int]] = []
        windows = _typed(doc["windows"], list, "windows")
        for i, w in enumerate(windows):
            _keys(w, {"key", "state"}, f"windows[{i}]")
            key = _typed(w["key"], str, f"windows[{i}].key")
            if key in acc._states:
                raise ValueError(MSG_CORRUPT.format(what=f"window {key!r} is listed twice"))
            _check_window_key(acc, key)
            acc._states[key] = _load_state(acc, w["state"], blob, used, version, f"windows[{i}].state")
        total = acc.n_rows
        if version >= 2:
            rows = doc["rows"]
            _keys(rows, {"next", "ranges"}, "rows")
            nxt = _count(rows["next"], "rows.next")
            ranges = []
            for j, r in enumerate(_typed(rows["ranges"], list, "rows.ranges")):
                if not isinstance(r, list) or len(r) != 2:
                    raise ValueError(MSG_CORRUPT.format(what=f"rows.ranges[{j}] is not a [start, end] pair"))
                a, b = _count(r[0], f"rows.ranges[{j}]"), _count(r[1], f"rows.ranges[{j}]")
                if not a < b or (ranges and a <= ranges[-1][1]) or b > nxt:
                    raise ValueError(
                        MSG_CORRUPT.format(
                            what=f"rows.ranges[{j}] = {r} is not a non-empty range after "
                            f"the previous one and below rows.next ({nxt})"
                        )
                    )
                ranges.append([a, b])
            covered = sum(b - a for a, b in ranges)
            if (covered != total) if acc.n_bootstrap else (covered > total or (total > 0) != (covered > 0)):
                raise ValueError(
                    MSG_CORRUPT.format(what=f"the row ranges cover {covered} rows but the counts hold {total}")
                )
            acc._next_row = nxt
            acc._ranges = ranges
        else:  # version 1: rows numbered 0 .. n_rows - 1
            acc._next_row = total
            acc._ranges = [[0, total]] if total else []
        return acc


class _StreamCounter:
    """A :class:`State`'s compiled stream and one-pass path, for a caller that numbers no rows and
    keeps no replicates (:class:`clarion.bias.PerformanceAccumulator`): the first two routes of
    :meth:`Accumulator.update`, with its stream kept and rebuilt as :meth:`Accumulator._follow`
    does. :meth:`count` returns False, with nothing changed, for a batch that takes the general
    path (``State.update``) instead: an empty batch, scores, several models, weights the caller
    counts itself, or anything the one-pass path declines."""

    __slots__ = ("state", "compat", "_stream", "_stream_misses")

    def __init__(self, state: State, compat: str = "clarion") -> None:
        self.state, self.compat = state, compat
        self._stream: _Stream | None = None
        self._stream_misses = 0

    def count(self, batch: Any) -> bool:
        """Counts ``batch`` into the state (True), or changes nothing (False)."""
        stream = self._stream
        key = None
        if stream is not None:
            n = stream.add(batch)
            if type(n) is int:
                if n:
                    self._stream_misses = 0
                    return True
            else:  # the batch's pattern, not accepted yet: noted once the batch is counted below
                key = n
        table = Table(batch)
        if table.n == 0:
            return False
        st = self.state
        kept: dict = {}
        fast = st.fast_count(table, self.compat, keep=kept, team=True)
        if fast is None:
            return False
        st.add_counts(fast, table.n)
        self._follow(st, table, batch, stream, key, kept)
        return True

    _follow = Accumulator._follow


_CONFIG_KEYS = (
    "label",
    "facet",
    "facet_values",
    "facet_threshold",
    "label_values",
    "label_threshold",
    "predicted_label",
    "probability_threshold",
    "group_variable",
    "weights",
    "window",
    "time_column",
    "compat",
    "n_bootstrap",
    "seed",
)
_STATE_KEYS = {
    "n_rows",
    "weighted",
    "model_kinds",
    "label_vocab",
    "label_max",
    "group_vocab",
    "group_missing",
    "facets",
    "arrays",
}
_ARRAY_DTYPES = {"<i8": np.dtype("<i8"), "<f8": np.dtype("<f8")}


def _bad(what: str) -> ValueError:
    return ValueError(MSG_CORRUPT.format(what=what))


def _keys(d: Any, allowed: set, where: str, required: set | None = None) -> None:
    if not isinstance(d, dict):
        raise _bad(f"{where} is a {type(d).__name__}, not an object")
    required = allowed if required is None else required
    extra, missing = sorted(set(d) - allowed), sorted(required - set(d))
    if extra or missing:
        raise _bad(f"{where} has unexpected keys {extra} / lacks keys {missing}")


def _typed(v: Any, t: type, where: str) -> Any:
    if not isinstance(v, t) or (t is int and isinstance(v, bool)):
        raise _bad(f"{where} is a {type(v).__name__}, not a {t.__name__}")
    return v


def _count(v: Any, where: str) -> int:
    v = _typed(v, int, where)
    if v < 0:
        raise _bad(f"{where} is negative ({v})")
    return v


def _value(t: Any, where: str) -> Any:
    """A tagged value (see ``_tag``), checked."""
    if not (isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and t[0] in ("b", "i", "f", "s", "t")):
        raise _bad(f"{where} is not a tagged value ([kind, value] with kind b, i, f, s or t): {str(t)[:80]}")
    kind, v = t
    if kind == "b":
        return _typed(v, bool, where)
    _typed(v, str, where)
    try:
        return _untag(t)
    except (ValueError, OverflowError) as exc:
        raise _bad(
            f"{where}: {v[:80]!r} is not a valid {dict(i='integer', f='float', t='timestamp')[kind]} ({exc})"
        ) from None


def _vocab(items: Any, where: str) -> Vocabulary:
    vals = [_value(t, f"{where}[{j}]") for j, t in enumerate(_typed(items, list, where))]
    for j, v in enumerate(vals):
        if is_missing_value(v) or (isinstance(v, float) and not np.isfinite(v)):
            raise _bad(f"{where}[{j}] is a missing value ({v!r}); missing values have no code of their own")
    voc = Vocabulary(vals)
    if len(voc.values) != len(vals):
        raise _bad(f"{where} lists a value twice")
    return voc


def _number(t: Any, where: str) -> Any:
    if t is None:
        return None
    v = _value(t, where)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and np.isnan(v)):
        raise _bad(f"{where} is not a number ({v!r})")
    return v


def _check_window_key(acc: Accumulator, key: str) -> None:
    if acc.window is None:
        if key != "all":
            raise _bad(f"window {key!r} in a state without windows (its only key is 'all')")
        return
    try:
        ok = _window_key(pd.Timestamp(key)) == key
    except (ValueError, TypeError, OverflowError):
        ok = False
    if not ok:
        raise _bad(f"window key {key!r} is not a window start time in ISO format")


def _load_state(acc: Accumulator, sj: Any, blob: memoryview, used: list, version: int, where: str) -> State:
    """One window's :class:`State`, every field checked against the configuration."""
    spec = acc.spec
    _keys(sj, _STATE_KEYS, where)
    st = State(spec)
    st.n_rows = _count(sj["n_rows"], f"{where}.n_rows")
    weighted = _typed(sj["weighted"], bool, f"{where}.weighted")
    if weighted != (spec.weights is not None):
        raise _bad(
            f"{where}.weighted is {weighted} but the configuration {'has' if spec.weights else 'has no'} weights"
        )
    st.weighted = weighted
    kinds = sj["model_kinds"]
    if kinds is not None:
        _typed(kinds, list, f"{where}.model_kinds")
        allowed = ("labels", "scores") if spec.label_values is not None else ("labels",)
        if not spec.models or len(kinds) != len(spec.models) or any(k not in allowed for k in kinds):
            raise _bad(
                f"{where}.model_kinds {str(kinds)[:80]} does not fit the {len(spec.models)} model(s) of the "
                f"configuration"
            )
    elif spec.models and st.n_rows:
        raise _bad(f"{where}.model_kinds is missing for a state with rows and models")
    st.model_kinds = kinds
    st.label_vocab = _vocab(sj["label_vocab"], f"{where}.label_vocab")
    if spec.label_threshold is not None and st.label_vocab.values:
        raise _bad(f"{where}.label_vocab holds values but the label has a threshold")
    st.label_max = _number(sj["label_max"], f"{where}.label_max")
    if st.label_max is not None and spec.label_threshold is None:
        raise _bad(f"{where}.label_max is set but the label has no threshold")
    if sj["group_vocab"] is None:
        if spec.group_variable is not None:
            raise _bad(f"{where}.group_vocab is missing but the configuration has a group_variable")
    else:
        if spec.group_variable is None:
            raise _bad(f"{where}.group_vocab is set but the configuration has no group_variable")
        st.group_vocab = _vocab(sj["group_vocab"], f"{where}.group_vocab")
    st.group_missing = _typed(sj["group_missing"], bool, f"{where}.group_missing")
    if st.group_missing and (st.group_vocab is None or acc.compat != "smclarify"):
        raise _bad(
            f"{where}.group_missing is set, which only a compat='smclarify' state with a group_variable can have"
        )
    facets = list(st.facets.values())
    fjs = _typed(sj["facets"], list, f"{where}.facets")
    if len(facets) != len(fjs):
        raise _bad("facet count does not match the configuration")
    for j, (fs, fj) in enumerate(zip(facets, fjs)):
        fw = f"{where}.facets[{j}]"
        _keys(fj, {"vocab", "seen", "col_max"}, fw)
        fs.vocab = _vocab(fj["vocab"], f"{fw}.vocab")
        if fs.threshold is not None and fs.vocab.values:
            raise _bad(f"{fw}.vocab holds values but the facet has a threshold")
        if fs.values is not None:
            m = Matcher(fs.values)
            if any(not m.given_matching(v) for v in fs.vocab.values):
                raise _bad(f"{fw}.vocab holds a value that is not one of the facet's selected values")
        seen = _typed(fj["seen"], list, f"{fw}.seen")
        if len(seen) > fs.n_codes or any(not isinstance(b, bool) for b in seen):
            raise _bad(f"{fw}.seen must be at most {fs.n_codes} booleans (one per code)")
        fs.seen = np.array(seen, dtype=bool) if seen else np.zeros(1, dtype=bool)
        fs.col_max = _number(fj["col_max"], f"{fw}.col_max")
        if fs.col_max is not None and fs.threshold is None:
            raise _bad(f"{fw}.col_max is set but the facet has no threshold")
    K = len(st.group_vocab) if st.group_vocab is not None else 1
    B1 = sum(k == "labels" for k in kinds or [])
    B2 = sum(k == "scores" for k in kinds or [])
    want_kinds = ({"labels"} if B1 else set()) | ({"scores"} if B2 else set()) if spec.models else {"pre"}
    for a_i, a in enumerate(_typed(sj["arrays"], list, f"{where}.arrays")):
        aw = f"{where}.arrays[{a_i}]"
        _keys(a, {"facet", "kind", "dtype", "shape", "offset", "nbytes"} | ({"boot"} if version >= 2 else set()), aw)
        f_i = _count(a["facet"], f"{aw}.facet")
        if f_i >= len(facets):
            raise _bad(f"{aw}.facet {f_i} is not a facet of the configuration")
        fs = facets[f_i]
        kind = a["kind"]
        if kind not in want_kinds:
            raise _bad(
                f"{aw}.kind {str(kind)[:40]!r} is not one of the tables this configuration counts "
                f"({sorted(want_kinds)})"
            )
        is_boot = _typed(a.get("boot", False), bool, f"{aw}.boot")
        if is_boot and not acc.n_bootstrap:
            raise _bad(f"{aw} is a replicate array but the configuration keeps no replicates")
        store = fs.boot if is_boot else fs.counts
        if kind in store:
            raise _bad(f"{aw}: a second {'replicate ' if is_boot else ''}{kind!r} table for facet {f_i}")
        dt = _ARRAY_DTYPES.get(a["dtype"]) if isinstance(a["dtype"], str) else None
        if dt is None:
            raise _bad(f"{aw}.dtype {str(a['dtype'])[:40]!r} is not one of {sorted(_ARRAY_DTYPES)}")
        shape = [_count(x, f"{aw}.shape") for x in _typed(a["shape"], list, f"{aw}.shape")]
        lead = [acc.n_bootstrap] if is_boot else []
        body = {"pre": [], "labels": [B1], "scores": [B2, len(spec.thresholds)]}[kind]
        tail = [2, 2] if kind != "pre" else [2]
        n = len(lead) + len(body)
        if (
            len(shape) != n + 2 + len(tail)
            or shape[:n] != lead + body
            or shape[n + 2 :] != tail
            or not 1 <= shape[n] <= fs.n_codes
            or not 1 <= shape[n + 1] <= K
        ):
            raise _bad(
                f"{aw}.shape {shape} does not fit the configuration and vocabularies (expected "
                f"{lead + body + ['V<=' + str(fs.n_codes), 'K<=' + str(K)] + tail})"
            )
        off, nbytes = _count(a["offset"], f"{aw}.offset"), _count(a["nbytes"], f"{aw}.nbytes")
        if nbytes != int(np.prod(shape, dtype=object)) * dt.itemsize:
            raise _bad(f"{aw}.nbytes {nbytes} does not match its shape {shape} and dtype {dt.str}")
        if off + nbytes > len(blob):
            raise _bad("an array runs past the end of the data")
        if any(off < e and s < off + nbytes for s, e in used):
            raise _bad(f"{aw} overlaps another array")
        used.append((off, off + nbytes))
        arr = np.frombuffer(blob[off : off + nbytes], dtype=dt).reshape(shape).astype(dt.newbyteorder("="), copy=True)
        if dt.kind == "f" and not np.isfinite(arr).all():
            raise _bad(f"{aw} holds a non-finite count")
        if (arr < 0).any():
            raise _bad(f"{aw} holds a negative count")
        if not st.weighted and (dt.kind != "i"):
            raise _bad(f"{aw}: unweighted counts must be integers (dtype <i8)")
        vaxis = len(shape) - len(tail) - 2
        occupied = np.flatnonzero(arr.sum(axis=tuple(i for i in range(arr.ndim) if i != vaxis)) > 0)
        seen_n = len(fjs[f_i]["seen"])
        if occupied.size and (occupied[-1] >= seen_n or not fs.seen[occupied].all()):
            raise _bad(f"{aw} has counts for a code that the facet's 'seen' list does not mark")
        store[kind] = arr
    for j, fs in enumerate(facets):
        if st.n_rows and set(fs.counts) != want_kinds:
            raise _bad(f"{where}: facet {j} lacks count tables {sorted(want_kinds - set(fs.counts))}")
        if not st.n_rows and (fs.counts or fs.boot):
            raise _bad(f"{where}: a state without rows holds count tables")
        if acc.n_bootstrap and st.n_rows and set(fs.boot) != set(fs.counts):
            raise _bad("the bootstrap replicates are missing for some tables")
    _check_totals(st, facets, where)
    return st


def _check_totals(st: State, facets: list, where: str) -> None:
    """Without weights every model's / threshold's table sums to the row count; in every table
    (and every replicate) the label totals are the same, whatever the facet or model."""
    for boot in (False, True):
        ref = None
        for j, fs in enumerate(facets):
            for kind, c in (fs.boot if boot else fs.counts).items():
                lead = 1 if boot else 0
                # label totals per replicate and per model/threshold slice: [R?, slices, 2]
                n_slice = {"pre": 0, "labels": 1, "scores": 2}[kind]
                y = c[..., None] if kind == "pre" else c
                S = int(np.prod(y.shape[lead : lead + n_slice], dtype=np.int64))
                y = y.reshape(y.shape[:lead] + (S,) + y.shape[lead + n_slice :])
                per = y.sum(axis=(-4, -3, -1))
                if not boot and not st.weighted and not (per.sum(axis=-1) == st.n_rows).all():
                    raise _bad(
                        f"{where}: facet {j}'s {kind!r} table counts {per.sum(axis=-1).ravel()[:4].tolist()} "
                        f"rows, not the state's {st.n_rows}"
                    )
                tot = per[..., :1, :]
                if not np.allclose(per, tot, rtol=1e-9, atol=0):
                    raise _bad(f"{where}: facet {j}'s {kind!r} table has different label totals per model")
                if ref is None:
                    ref = tot
                elif ref.shape != tot.shape or not np.allclose(ref, tot, rtol=1e-9, atol=0):
                    raise _bad(f"{where}: the label totals differ between facets or tables")


def Mapping_types() -> tuple:  # tiny helper kept private by __all__
    from collections.abc import Mapping

    return (Mapping,)


def _take(table: Table, rows: np.ndarray) -> Any:
    data = table.data
    if isinstance(data, pd.DataFrame):
        return data.iloc[rows]
    if hasattr(data, "take") and type(data).__module__.startswith("pyarrow"):
        return data.take(rows)
    return {k: np.asarray(table.col(k, "data"))[rows] for k in table.columns}
