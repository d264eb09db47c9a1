"""Streaming bias accumulator: update with batches, merge across processes, persist, report.

The state is the count tensor of every facet (plus the vocabularies that name its codes), so
it is small, and adding two states is adding counts: merging is associative and commutative
and any split of the rows gives the report of all rows at once (exactly, for integer counts).

Serialized format (``to_bytes``), version 1, all integers little-endian::

    magic    8 bytes   b"CLRNBIAS"
    version  uint32    1
    hlen     uint64    length of the header
    header   hlen bytes UTF-8 JSON: {"config": ..., "windows": [{"key", "state"}, ...]}; each state
                       lists its vocabularies (values tagged with their type), maxima, flags and,
                       per count array, {"facet", "kind", "dtype", "shape", "offset", "nbytes"}
    blob     the count arrays, C order, at the offsets the header gives
    sha256   32 bytes  digest of everything before it

Nothing is unpickled or evaluated; a wrong magic, version, digest, length or configuration is
refused with a ``ValueError`` that says which.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from typing import Any, Literal

import numpy as np
import pandas as pd

from clarion.bias._encode import Vocabulary
from clarion.bias._engine import Spec, State, Table, merge_states
from clarion.bias._result import BiasReport

__all__ = ["FORMAT_VERSION", "MAGIC", "Accumulator"]

MAGIC = b"CLRNBIAS"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sIQ")

MSG_CORRUPT = "from_bytes: {what}"
MSG_CONFIG = "{op}: the accumulators were built with different configurations ({key} differs: {a!r} vs {b!r})"
MSG_SOURCE = ("{arg}: an Accumulator reads columns of each batch by name; got {kind} (pass the column name so "
              "every batch provides it)")


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
    raise TypeError(f"to_bytes: cannot serialize a value of type {type(v).__name__} ({v!r}); supported: bool, int, "
                    "float, str, Timestamp")


def _untag(t: list) -> Any:
    kind, v = t
    return {"b": bool, "i": int, "f": float, "s": str, "t": pd.Timestamp}[kind](v)


def _window_key(ts: pd.Timestamp) -> str:
    return ts.isoformat()


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

    Notes
    -----
    ``update`` costs one count-kernel pass over the batch, whatever was seen before; it is
    thread-safe (encoding and counting run concurrently, the addition is locked). FlipTest needs
    the rows and is reported as an error entry.
    """

    def __init__(self, *, label: Any, facet: Any, facet_values: Any = None, facet_threshold: Any = None,
                 label_values: Any = None, label_threshold: float | None = None, predicted_label: Any = None,
                 probability_threshold: float | list[float] = 0.5, group_variable: Any = None, weights: Any = None,
                 window: str | None = None, time_column: str | None = None,
                 compat: Literal["clarion", "smclarify"] = "clarion") -> None:
        if compat not in ("clarion", "smclarify"):
            raise ValueError(f"compat must be 'clarion' or 'smclarify', got {compat!r}")
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
        self._config = dict(label=label, facet=facet, facet_values=facet_values, facet_threshold=facet_threshold,
                            label_values=label_values, label_threshold=label_threshold,
                            predicted_label=predicted_label, probability_threshold=probability_threshold,
                            group_variable=group_variable, weights=weights, window=window, time_column=time_column,
                            compat=compat)
        json.dumps(self._config_json())  # fail early on values that cannot be persisted
        self.spec = Spec.build(label=label, facet=facet, facet_values=facet_values, facet_threshold=facet_threshold,
                               label_values=label_values, label_threshold=label_threshold,
                               predicted_label=predicted_label, probability_threshold=probability_threshold,
                               group_variable=group_variable, weights=weights)
        self.window = window
        self.time_column = time_column
        self.compat = compat
        self._states: dict[str, State] = {}
        self._lock = threading.Lock()

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

    def update(self, batch: Any) -> Accumulator:
        """Count one batch (DataFrame, pyarrow Table / RecordBatch, or dict of arrays).

        Values first seen in this batch extend the vocabularies; earlier counts stay valid.
        Returns ``self``.
        """
        table = Table(batch)
        if table.n == 0:
            return self
        if self.window is None:
            self._state("all").update(table, self.compat)
            return self
        t = pd.to_datetime(pd.Series(np.asarray(table.col(self.time_column, "time_column"))))
        if t.isna().any():
            raise ValueError(f"time_column: missing timestamp at row {int(np.flatnonzero(t.isna())[0])}")
        start = t.dt.floor(self.window)
        for key_ts, idx in pd.Series(np.arange(table.n)).groupby(start.to_numpy()).groups.items():
            rows = np.asarray(idx)
            sub = _take(table, rows)
            self._state(_window_key(pd.Timestamp(key_ts))).update(Table(sub), self.compat)
        return self

    def merge(self, other: Accumulator) -> Accumulator:
        """Add another accumulator's counts (same configuration) into this one; returns ``self``."""
        if not isinstance(other, Accumulator):
            raise TypeError(f"merge: expected an Accumulator, got {type(other).__name__}")
        self._check_same(other, "merge")
        for key, st in list(other._states.items()):
            merge_states(self._state(key), st)
        return self

    @property
    def n_rows(self) -> int:
        """Rows counted so far (all windows)."""
        return sum(s.n_rows for s in self._states.values())

    def windows(self) -> list[str]:
        """Window start times (ISO format) that hold counts, sorted; ``["all"]`` without windows."""
        return sorted(self._states)

    # -- report ---------------------------------------------------------------------------------

    def report(self, methods: str | list[str] = "all", *, stage: Literal["pre", "post", "both"] = "both",
               window: str | list[str] | None = None) -> BiasReport:
        """The :class:`BiasReport` of every row counted so far (or of the given window(s)).

        Identical to :func:`clarion.bias.report` on the same rows (FT excepted: it needs rows).
        """
        keys = self.windows() if window is None else ([window] if isinstance(window, str) else list(window))
        for k in keys:
            if k not in self._states:
                raise ValueError(f"window: {k!r} holds no counts; windows: {self.windows()}")
        if not keys:
            raise ValueError("report: no rows were counted yet")
        if len(keys) == 1:
            return self._states[keys[0]].assemble(methods=methods, stage=stage, compat=self.compat)
        total = State(self.spec)
        for k in keys:
            merge_states(total, self._states[k])
        return total.assemble(methods=methods, stage=stage, compat=self.compat)

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
                    "n_rows": st.n_rows, "weighted": st.weighted, "model_kinds": st.model_kinds,
                    "label_vocab": [_tag(v) for v in st.label_vocab.values],
                    "label_max": None if st.label_max is None else _tag(st.label_max),
                    "group_vocab": None if st.group_vocab is None else [_tag(v) for v in st.group_vocab.values],
                    "group_missing": st.group_missing, "facets": [], "arrays": [],
                }
                for fs in st.facets.values():
                    sj["facets"].append({"vocab": [_tag(v) for v in fs.vocab.values], "seen": fs.seen.tolist(),
                                         "col_max": None if fs.col_max is None else _tag(fs.col_max)})
                    for kind, c in fs.counts.items():
                        b = np.ascontiguousarray(c).astype(c.dtype.newbyteorder("<"), copy=False).tobytes()
                        sj["arrays"].append({"facet": len(sj["facets"]) - 1, "kind": kind, "dtype": c.dtype.str,
                                             "shape": list(c.shape), "offset": offset, "nbytes": len(b)})
                        blobs.append(b)
                        offset += len(b)
            windows.append({"key": key, "state": sj})
        header = json.dumps({"config": self._config_json(), "windows": windows}, sort_keys=True).encode()
        body = _HEAD.pack(MAGIC, FORMAT_VERSION, len(header)) + header + b"".join(blobs)
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes, *, like: Accumulator | None = None) -> Accumulator:
        """Rebuild an accumulator from :meth:`to_bytes` output.

        Parameters
        ----------
        data : bytes
            The serialized state.
        like : Accumulator, optional
            When given, the stored configuration must equal ``like``'s (else ``ValueError``).
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_bytes: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < _HEAD.size + 32:
            raise ValueError(MSG_CORRUPT.format(what=f"truncated input ({len(data)} bytes)"))
        magic, version, hlen = _HEAD.unpack_from(data)
        if magic != MAGIC:
            raise ValueError(MSG_CORRUPT.format(what=f"not a clarion bias accumulator (magic {magic!r})"))
        if version != FORMAT_VERSION:
            raise ValueError(MSG_CORRUPT.format(what=f"format version {version} is not supported (this clarion "
                                                f"reads version {FORMAT_VERSION})"))
        body, digest = data[:-32], data[-32:]
        if hashlib.sha256(body).digest() != digest:
            raise ValueError(MSG_CORRUPT.format(what="checksum mismatch: the data is corrupted or truncated"))
        start = _HEAD.size + hlen
        if start > len(body):
            raise ValueError(MSG_CORRUPT.format(what="truncated header"))
        doc = json.loads(body[_HEAD.size:start].decode())
        acc = cls(**cls._config_from_json(doc["config"]))
        if like is not None:
            like._check_same(acc, "from_bytes")
        blob = memoryview(body)[start:]
        for w in doc["windows"]:
            sj = w["state"]
            st = State(acc.spec)
            st.n_rows = int(sj["n_rows"])
            st.weighted = bool(sj["weighted"])
            st.model_kinds = sj["model_kinds"]
            st.label_vocab = Vocabulary([_untag(v) for v in sj["label_vocab"]])
            st.label_max = None if sj["label_max"] is None else _untag(sj["label_max"])
            if sj["group_vocab"] is not None:
                st.group_vocab = Vocabulary([_untag(v) for v in sj["group_vocab"]])
            st.group_missing = bool(sj["group_missing"])
            facets = list(st.facets.values())
            if len(facets) != len(sj["facets"]):
                raise ValueError(MSG_CORRUPT.format(what="facet count does not match the configuration"))
            for fs, fj in zip(facets, sj["facets"]):
                fs.vocab = Vocabulary([_untag(v) for v in fj["vocab"]])
                fs.seen = np.array(fj["seen"], dtype=bool)
                fs.col_max = None if fj["col_max"] is None else _untag(fj["col_max"])
            for a in sj["arrays"]:
                end = a["offset"] + a["nbytes"]
                if end > len(blob):
                    raise ValueError(MSG_CORRUPT.format(what="an array runs past the end of the data"))
                arr = np.frombuffer(blob[a["offset"]:end], dtype=np.dtype(a["dtype"])).reshape(a["shape"])
                facets[a["facet"]].counts[a["kind"]] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
            acc._states[w["key"]] = st
        return acc


def Mapping_types() -> tuple:  # noqa: N802 - tiny helper kept private by __all__
    from collections.abc import Mapping  # noqa: PLC0415

    return (Mapping,)


def _take(table: Table, rows: np.ndarray) -> Any:
    data = table.data
    if isinstance(data, pd.DataFrame):
        return data.iloc[rows]
    if hasattr(data, "take") and type(data).__module__.startswith("pyarrow"):
        return data.take(rows)
    return {k: np.asarray(table.col(k, "data"))[rows] for k in table.columns}
