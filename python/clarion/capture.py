"""Data capture as SageMaker writes it, and the capture + ground-truth join that ``clarion monitor
--capture DIR --ground-truth GT`` checks.

A capture record (one JSON object per line, SageMaker Model Monitor's data-capture format)::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "1,2,3", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "0.7", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<X-Amzn-SageMaker-Inference-Id>",
                       "inferenceTime": "2026-03-10T12:34:56Z"},
     "eventVersion": "0"}

``encoding`` is ``CSV`` (``text/csv``), ``JSON`` (JSON and JSON Lines) or ``BASE64`` (anything
else: ``data`` is the body in base64). ``inferenceId`` is present only when the request carried
the ``X-Amzn-SageMaker-Inference-Id`` header. Ground-truth records (SageMaker's format)::

    {"groundTruthData": {"data": "1", "encoding": "CSV", "observedContentType": "text/csv"},
     "eventMetadata": {"eventId": "<the capture's inferenceId, or its eventId>"},
     "eventVersion": "0"}

Files: :class:`CaptureWriter` writes JSON Lines into hourly folders ``DIR/yyyy/mm/dd/hh/`` (UTC,
the layout Model Monitor reads), one file per writer and hour. **Crash safety (the choice made
here):** every record is one complete line written with a single ``os.write`` on a file opened
with ``O_APPEND``, so a killed server never leaves half a record followed by another one; files
are readable while being written, and the readers (:func:`read_records`) ignore a last line that
has no newline (it can only be a write cut short by a power failure or a full disk) and count it
in ``torn``. There are no temporary files to clean up.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "INFERENCE_ID_HEADER",
    "CaptureWriter",
    "Joined",
    "capture_record",
    "decode",
    "join",
    "read_records",
]

#: the request header whose value becomes ``eventMetadata.inferenceId``
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _encoding(ctype: str) -> str:
    base = ctype.split(";")[0].strip().lower()
    if base == "text/csv":
        return "CSV"
    if base in ("application/json", "application/jsonlines", "application/x-jsonlines"):
        return "JSON"
    return "BASE64"


def _encode(body: bytes, ctype: str) -> tuple[str, str]:
    enc = _encoding(ctype)
    if enc != "BASE64":
        try:
            return body.decode("utf-8"), enc
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "BASE64"


def decode(part: dict[str, Any]) -> str:
    """The text of a capture's ``endpointInput`` / ``endpointOutput`` or of ``groundTruthData``
    (``data`` decoded by its ``encoding``)."""
    data = part.get("data", "")
    if str(part.get("encoding", "")).upper() == "BASE64":
        return base64.b64decode(data).decode("utf-8")
    return data if isinstance(data, str) else json.dumps(data)


def capture_record(
    input_body: bytes,
    input_type: str,
    output_body: bytes,
    output_type: str,
    *,
    inference_id: str | None = None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One SageMaker data-capture record for a request and its response."""
    t = (time or datetime.now(timezone.utc)).astimezone(timezone.utc)
    idata, ienc = _encode(input_body, input_type)
    odata, oenc = _encode(output_body, output_type)
    meta: dict[str, Any] = {"eventId": event_id or str(uuid.uuid4())}
    if inference_id:
        meta["inferenceId"] = inference_id
    meta["inferenceTime"] = t.strftime(_TIME_FORMAT)
    return {
        "captureData": {
            "endpointInput": {"observedContentType": input_type, "mode": "INPUT", "data": idata, "encoding": ienc},
            "endpointOutput": {"observedContentType": output_type, "mode": "OUTPUT", "data": odata, "encoding": oenc},
        },
        "eventMetadata": meta,
        "eventVersion": "0",
    }


class CaptureWriter:
    """Append capture records to hourly JSON Lines files under ``directory/yyyy/mm/dd/hh/``.

    ``percent`` (0-100) of the requests are captured (SageMaker's ``InitialSamplingPercentage``).
    Each record is one ``os.write`` of a whole line on an ``O_APPEND`` file (see the module's
    docstring); the writer is safe to share between threads.
    """

    def __init__(self, directory: str | os.PathLike, percent: float = 100.0, *, seed: int | None = None) -> None:
        percent = float(percent)
        if not 0 <= percent <= 100:
            raise ValueError(f"capture percent: must lie in [0, 100], got {percent!r}")
        self.directory = os.fspath(directory)
        self.percent = percent
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._hour: str | None = None
        self._fd: int | None = None
        self._name = f"{uuid.uuid4().hex}.jsonl"
        self.n_written = 0

    def sampled(self) -> bool:
        """Whether the next request is captured."""
        with self._lock:
            return self.percent >= 100 or self._rng.random() * 100 < self.percent

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` to the file of its ``inferenceTime``'s hour."""
        t = datetime.strptime(record["eventMetadata"]["inferenceTime"], _TIME_FORMAT)
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
        hour = t.strftime("%Y/%m/%d/%H")
        with self._lock:
            if hour != self._hour:
                self._close()
                folder = os.path.join(self.directory, *hour.split("/"))
                os.makedirs(folder, exist_ok=True)
                name = t.strftime("%M-%S-") + self._name
                self._fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._hour = hour
            assert self._fd is not None
            view = memoryview(line)
            while view:  # a regular file takes the whole line in one write; loop only if it did not
                view = view[os.write(self._fd, view) :]
            self.n_written += 1

    def capture(self, input_body: bytes, input_type: str, output_body: bytes, output_type: str, **kw: Any) -> None:
        """Build the record (:func:`capture_record`) and write it."""
        self.write(capture_record(input_body, input_type, output_body, output_type, **kw))

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Close the current file."""
        with self._lock:
            self._close()


@dataclass
class _Read:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: int = 0
    bad: int = 0
    files: int = 0


def read_records(directory: str | os.PathLike) -> _Read:
    """Every JSON record of the ``.jsonl`` (or ``.json``) files under ``directory`` (capture or
    ground truth), in path order. A last line without a newline is skipped and counted in
    ``torn``; a line that is not a JSON object is counted in ``bad``. Hidden files and ``.tmp``
    files are skipped."""
    out = _Read()
    root = os.fspath(directory)
    if not os.path.isdir(root):
        raise ValueError(f"{root}: not a directory")
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        paths += [
            os.path.join(dirpath, f)
            for f in filenames
            if not f.startswith(".") and f.endswith((".jsonl", ".json")) and not f.endswith(".tmp")
        ]
    for p in sorted(paths):
        out.files += 1
        with open(p, "rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        if lines and lines[-1].strip():
            out.torn += 1
        for raw in lines[:-1]:
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                out.bad += 1
                continue
            if isinstance(rec, dict):
                out.records.append(rec)
            else:
                out.bad += 1
    return out


def _rows(text: str, ctype: str, encoding: str) -> list[Any]:
    """The rows of a body: CSV lines as lists of strings, JSON Lines / JSON as values."""
    base = ctype.split(";")[0].strip().lower()
    if base == "text/csv" or (encoding.upper() == "CSV" and "json" not in base):
        return [r for r in csv.reader(io.StringIO(text)) if r]
    text = text.strip()
    if base == "application/json":
        doc = json.loads(text)
        if isinstance(doc, dict):
            for key in ("instances", "predictions"):
                if key in doc:
                    return list(doc[key])
            return [doc]
        return list(doc) if isinstance(doc, list) and doc and isinstance(doc[0], (list, dict)) else [doc]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _features(row: Any) -> list[Any]:
    if isinstance(row, dict):
        row = row.get("features", row)
        if isinstance(row, dict):
            return list(row.values())
    return list(row) if isinstance(row, list) else [row]


def _address(row: Any, key: Any) -> Any:
    """``predictor.probability`` / ``predictor.label`` applied to one output row: an index into a
    CSV row or a ``scores`` list, or a JMESPath into a JSON object."""
    if isinstance(row, list):
        return row[int(key)]
    if isinstance(row, dict):
        if isinstance(key, int):
            return row["scores"][key]
        import jmespath

        return jmespath.search(key, row)
    if key not in (None, 0):
        raise ValueError(f"output {row!r} has no field {key!r}")
    return row


def _prediction(row: Any, label: Any, probability: Any) -> Any:
    key = label if label is not None else probability
    if key is None:
        if isinstance(row, list) and len(row) == 1:
            return row[0]
        if isinstance(row, dict):
            for k in ("predicted_label", "score", "scores"):
                if k in row:
                    v = row[k]
                    return v[-1] if isinstance(v, list) else v
        if isinstance(row, list) and len(row) == 2:
            return row[1]  # two outputs without names: the second is the positive score
        return row
    return _address(row, key)


def _time(s: Any) -> datetime | None:
    if not isinstance(s, str):
        return None
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass
class Joined:
    """The joined rows and the counts of what did not join (reported, never silently dropped)."""

    frame: Any
    captures: int = 0
    matched: int = 0
    unmatched_captures: int = 0
    unmatched_labels: int = 0
    out_of_range: int = 0
    bad_records: int = 0
    torn_lines: int = 0
    duplicate_captures: int = 0
    ambiguous_captures: int = 0
    duplicate_labels: int = 0
    conflicting_labels: int = 0
    label_column: str = ""
    prediction_column: str = ""

    def summary(self) -> dict[str, int]:
        """The counts, as reported by ``clarion monitor``."""
        return {
            "captures": self.captures,
            "matched": self.matched,
            "rows": len(self.frame),
            "unmatched_captures": self.unmatched_captures,
            "unmatched_labels": self.unmatched_labels,
            "captures_out_of_range": self.out_of_range,
            "bad_records": self.bad_records,
            "torn_lines": self.torn_lines,
            "duplicate_captures": self.duplicate_captures,
            "ambiguous_captures": self.ambiguous_captures,
            "duplicate_labels": self.duplicate_labels,
            "conflicting_labels": self.conflicting_labels,
        }


def join(
    capture_dir: str | os.PathLike,
    ground_truth_dir: str | os.PathLike,
    *,
    headers: list[str],
    prediction_column: str = "predicted_label",
    label: Any = None,
    probability: Any = None,
    start: datetime | None = None,
    end: datetime | None = None,
    time_column: str | None = None,
) -> Joined:
    """Join captured traffic with ground truth by inference id (``eventMetadata.inferenceId``, else
    ``eventId``) = the label's ``eventMetadata.eventId``.

    ``headers``: the input's column names, then the label's name (the config's ``headers``).
    ``label`` / ``probability``: ``predictor.label`` / ``predictor.probability``, addressing the
    prediction in each captured output row. ``start`` / ``end``: keep captures whose
    ``inferenceTime`` lies in ``[start, end)``; the rest are counted in ``out_of_range`` (and their
    labels are not counted as unmatched). Returns a :class:`Joined` whose ``frame`` has the input
    columns, the label column and ``prediction_column``, and with ``time_column`` one more column
    of that name holding each capture's ``inferenceTime`` (UTC), for windows over the traffic
    (``clarion monitor --capture ... --time-column NAME --window 1D``); a capture without a
    readable ``inferenceTime`` is then a ``bad_record``.

    An id is joined at most once. Repeats are counted, never joined twice:

    * the same id captured again with the same input and output (a client's retry) joins once;
      the repeats are ``duplicate_captures``;
    * the same id captured for different requests cannot say which request its label belongs to:
      none of them joins, and they are ``ambiguous_captures``;
    * a label uploaded again with the same rows counts once (``duplicate_labels``: the repeats);
      labels that disagree for one id join nothing, and the ids are ``conflicting_labels``.
    """
    import pandas as pd

    if not headers or len(headers) < 2:
        raise ValueError("the config's `headers` must name the captured input's columns and then the label")
    names, label_name = list(headers[:-1]), headers[-1]
    if time_column is not None and (not isinstance(time_column, str) or not time_column):
        raise ValueError(f"time_column: expected a column name, got {time_column!r}")
    if time_column is not None and time_column in (*headers, prediction_column):
        raise ValueError(
            f"time_column: {time_column!r} is already a column of the joined rows "
            f"(headers and {prediction_column!r}); choose another name"
        )
    caps, gts = read_records(capture_dir), read_records(ground_truth_dir)
    bad = caps.bad + gts.bad
    labels: dict[str, list[Any]] = {}
    conflicting: set[str] = set()
    dup_labels = 0
    for g in gts.records:
        try:
            gid = str(g["eventMetadata"]["eventId"])
            part = g["groundTruthData"]
            got = _rows(decode(part), str(part.get("observedContentType", "")), str(part.get("encoding", "")))
        except (KeyError, TypeError, ValueError):
            bad += 1
            continue
        if gid in labels:
            if labels[gid] == got:
                dup_labels += 1
            else:
                conflicting.add(gid)
            continue
        labels[gid] = got
    for gid in conflicting:
        del labels[gid]
    # which request each id names: its (input, output) bodies; an id seen with two requests is ambiguous
    seen: dict[str, tuple[Any, Any]] = {}
    ambiguous: set[str] = set()
    for c in caps.records:
        try:
            meta = c["eventMetadata"]
            cid = str(meta.get("inferenceId") or meta["eventId"])
            body = (c["captureData"]["endpointInput"].get("data"), c["captureData"]["endpointOutput"].get("data"))
        except (KeyError, TypeError, AttributeError):
            continue
        if seen.setdefault(cid, body) != body:
            ambiguous.add(cid)
    used: set[str] = set()
    joined_ids: set[str] = set()
    rows: list[list[Any]] = []
    times: list[datetime] = []
    n_caps = matched = unmatched = out_range = dup_caps = n_ambiguous = 0
    for c in caps.records:
        try:
            meta = c["eventMetadata"]
            cid = str(meta.get("inferenceId") or meta["eventId"])
            t = _time(meta.get("inferenceTime"))
            inp, outp = c["captureData"]["endpointInput"], c["captureData"]["endpointOutput"]
        except (KeyError, TypeError):
            bad += 1
            continue
        n_caps += 1
        if (start is not None or end is not None) and (
            t is None or (start is not None and t < start) or (end is not None and t >= end)
        ):
            out_range += 1
            used.add(cid)
            continue
        if cid in conflicting or cid in ambiguous:
            used.add(cid)
            n_ambiguous += 1
            continue
        if cid not in labels:
            unmatched += 1
            continue
        used.add(cid)
        if cid in joined_ids:
            dup_caps += 1
            continue
        try:
            X = [
                _features(r)
                for r in _rows(decode(inp), str(inp.get("observedContentType", "")), str(inp.get("encoding", "")))
            ]
            P = [
                _prediction(r, label, probability)
                for r in _rows(decode(outp), str(outp.get("observedContentType", "")), str(outp.get("encoding", "")))
            ]
            Y = [r[0] if isinstance(r, list) and len(r) == 1 else r for r in labels[cid]]
            if not (len(X) == len(P) == len(Y)) or any(len(x) != len(names) for x in X):
                raise ValueError("row counts or widths differ")
        except (KeyError, TypeError, ValueError, IndexError):
            bad += 1
            continue
        if time_column is not None and t is None:
            bad += 1  # no time to window it by
            continue
        matched += 1
        joined_ids.add(cid)
        rows += [[*x, y, p] for x, y, p in zip(X, Y, P)]
        times += [t] * len(X)
    frame = pd.DataFrame(rows, columns=[*names, label_name, prediction_column])
    for col in frame.columns:  # CSV values arrive as text: numbers become numbers
        conv = pd.to_numeric(frame[col], errors="coerce")
        if len(frame) and conv.notna().all():
            frame[col] = conv
    if time_column is not None:
        frame[time_column] = pd.to_datetime(pd.Series(times, dtype=object), utc=True)
    return Joined(
        frame=frame,
        captures=n_caps,
        matched=matched,
        unmatched_captures=unmatched,
        unmatched_labels=len(set(labels) - used),
        duplicate_captures=dup_caps,
        ambiguous_captures=n_ambiguous,
        duplicate_labels=dup_labels,
        conflicting_labels=len(conflicting),
        out_of_range=out_range,
        bad_records=bad,
        torn_lines=caps.torn + gts.torn,
        label_column=label_name,
        prediction_column=prediction_column,
    )
