"""The SageMaker invocation wire format, both sides: what :class:`~clarion.models.Endpoint` sends
and reads, and what :mod:`clarion.serve` reads and answers.

Requests (:func:`encode_rows`, :func:`batches`; the server's :func:`parse_request`):

* ``text/csv``: one row per line, no header;
* ``application/jsonlines``: one ``content_template`` per row with ``$features`` replaced by the
  row as a JSON list (default ``{"features":$features}``);
* ``application/json``: ``content_template`` with ``$records`` (the batch as a JSON list) or
  ``$record`` (one row per request), each record built from ``record_template`` (``$features``,
  ``$features_kvp``, ``$feature_names`` or ``"${name}"`` per feature).

Responses (:class:`ResponseParser`; the server's :func:`format_response`): CSV lines with a column
index for the label / probability, or JSON (Lines) with a JMESPath expression for them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from clarion.models._base import _is_dataframe

__all__ = [
    "CONTENT_TYPES",
    "MSG_JSON_INF",
    "MSG_NOT_SCALAR",
    "MSG_CSV_WIDTH",
    "MSG_RECORD_TEMPLATE",
    "MSG_ROW_TOO_LARGE",
    "MSG_TOO_DEEP",
    "RequestError",
    "ResponseError",
    "ResponseParser",
    "batches",
    "check_record_template",
    "encode_rows",
    "format_response",
    "parse_request",
]

#: the request and response formats of the SageMaker invocation protocol
CONTENT_TYPES = ("text/csv", "application/jsonlines", "application/json")

MSG_JSON_INF = (
    "X row {row}, column {col} is {value}: JSON cannot carry infinities (NaN is sent as null); "
    "use content_type='text/csv' or replace them"
)
MSG_ROW_TOO_LARGE = "row {row} alone takes {size} bytes, more than max_payload_bytes={limit}"
MSG_TOO_DEEP = "JSON nested too deeply to parse"
MSG_CSV_WIDTH = "CSV record {record} has {got} fields, the first record has {want}"
MSG_NOT_SCALAR = "record {record}, feature {feature}: expected a number, string, boolean or null, got {kind}"


class RequestError(ValueError):
    """A request that the server cannot read (malformed CSV / JSON, records of the wrong shape):
    the client's error, answered 400."""


class ResponseError(ValueError):
    """An answer that the client cannot read.

    Attributes
    ----------
    got : int or None
        The number of predictions found, when that is what is wrong (else None).
    text : str
        The start of the answer, when ``got`` is set.
    """

    def __init__(self, message: str, *, got: int | None = None, text: str = "") -> None:
        super().__init__(message)
        self.got = got
        self.text = text


# --------------------------------------------------------------------------------------------
# requests (client side)

# record_template placeholders, as Clarify reads them: "${name}" (the double quotes are part of the
# placeholder; a bare ${name} is read the same), $features_kvp, $feature_names, $features
_RECORD_PLACEHOLDER = re.compile(r'"\$\{([^}]+)\}"|\$\{([^}]+)\}|\$features_kvp|\$feature_names|\$features')
MSG_RECORD_TEMPLATE = (
    "record_template {template!r}: {why}. It takes $features (the row's values as a list; $feature_names "
    'may come with it), or exactly one $features_kvp (an object of name: value), or a "${{name}}" '
    "placeholder per feature (the double quotes are part of the placeholder)"
)


def check_record_template(rt: str) -> None:
    """Check a ``record_template`` (Clarify's placeholders); ``ValueError`` (``MSG_RECORD_TEMPLATE``)
    saying what is wrong."""
    tokens = [m.group(0) for m in _RECORD_PLACEHOLDER.finditer(rt)]
    per_feature = [t for t in tokens if t.startswith(("${", '"${'))]
    kvp = tokens.count("$features_kvp")
    feats = tokens.count("$features")
    if not tokens:
        why = "it has no placeholder"
    elif kvp and len(tokens) != 1:
        why = "$features_kvp must be its only placeholder"
    elif per_feature and len(per_feature) != len(tokens):
        why = '"${name}" placeholders cannot be mixed with $features / $feature_names'
    elif not per_feature and not kvp and feats == 0:
        why = "$feature_names needs $features beside it"
    else:
        return
    raise ValueError(MSG_RECORD_TEMPLATE.format(template=rt, why=why))


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _cell_csv(v: Any) -> str:
    if isinstance(v, float):
        return "" if v != v else float.__repr__(v)
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, np.floating):
        return _cell_csv(float(v))
    if v is None:
        return ""
    s = str(v)
    if any(c in s for c in ',"\n\r'):
        s = '"' + s.replace('"', '""') + '"'
    return s


def _numeric_row_texts(X: Any, rows: list[list[Any]]) -> list[str] | None:
    """``"v1,v2,..."`` for each row of a finite int/float array, via ``repr`` of the whole list
    (C speed; floats in repr are shortest round-trip, the same text ``json`` writes); None when
    X is not such an array."""
    if type(X) is not np.ndarray or X.ndim != 2 or X.dtype.kind not in "fiu" or not rows or not X.shape[1]:
        return None
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        return None
    text = repr(rows)[2:-2].replace(", ", ",")
    return text.split("],[")


def _json_value(v: Any) -> Any:
    """A JSON-ready value: NaN becomes null (missing); infinities raise OverflowError."""
    if isinstance(v, float):
        if v != v:
            return None
        if math.isinf(v):
            raise OverflowError(v)
        return v
    if isinstance(v, np.generic):
        return _json_value(v.item())
    return v


def _rows_and_names(X: Any, feature_names: Sequence[str] | None) -> tuple[list[list[Any]], list[str] | None]:
    names = None if feature_names is None else list(feature_names)
    if _is_dataframe(X):
        if names is None:
            names = [str(c) for c in X.columns]
        rows = X.to_numpy(dtype=object).tolist()
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D (rows x features), got shape {arr.shape}")
        rows = arr.tolist()
    if names is not None and rows and len(rows[0]) != len(names):
        raise ValueError(f"X has {len(rows[0])} columns but feature_names has {len(names)}")
    return rows, names


def encode_rows(
    X: Any,
    *,
    content_type: str,
    content_template: str | None = None,
    record_template: str | None = None,
    feature_names: Sequence[str] | None = None,
) -> tuple[list[bytes], bytes, bytes, bytes]:
    """A request's rows in the SageMaker wire format.

    Parameters
    ----------
    X : 2-D numpy array or pandas DataFrame
    content_type : {"text/csv", "application/jsonlines", "application/json"}
    content_template : str, optional
        JSON Lines: one per row with ``$features`` replaced by the row (a JSON list). JSON: the
        request with ``$records`` (the batch as a JSON list) or ``$record`` (one row).
    record_template : str, optional
        JSON: one record per row (``$features``, ``$features_kvp``, ``$feature_names``,
        ``"${name}"``; see :func:`check_record_template`).
    feature_names : sequence of str, optional
        The features' names (default: the DataFrame's columns).

    Returns
    -------
    (rows, prefix, separator, suffix)
        Each row's bytes; a request body of rows ``a..b`` is
        ``prefix + separator.join(rows[a:b]) + suffix``.

    Raises
    ------
    ValueError
        A row that JSON cannot carry (``MSG_JSON_INF``), a template that needs names it lacks.
    """
    rows, names = _rows_and_names(X, feature_names)
    fast = _numeric_row_texts(X, rows)  # "v1,v2,..." per row, for finite numeric arrays
    if content_type == "text/csv":
        if fast is not None:
            enc = [t.encode() for t in fast]
        else:
            enc = [",".join(map(_cell_csv, r)).encode() for r in rows]
        return enc, b"", b"\n", b"\n"
    dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    if fast is not None and content_type == "application/jsonlines":
        pre, _, post = content_template.partition("$features")
        return [f"{pre}[{t}]{post}".encode() for t in fast], b"", b"\n", b"\n"
    if fast is not None and record_template == "$features":
        enc = [f"[{t}]".encode() for t in fast]
        clean = None
    else:
        enc = None
        clean = _clean_rows(X, rows)
    if content_type == "application/jsonlines":
        pre, _, post = content_template.partition("$features")
        enc = [(pre + dumps(r) + post).encode() for r in clean]
        return enc, b"", b"\n", b"\n"
    # application/json
    rt = record_template
    if ("${" in rt or "$features_kvp" in rt or "$feature_names" in rt) and names is None:
        raise ValueError(f"record_template {rt!r} needs feature_names (or a DataFrame)")
    index = {n: i for i, n in enumerate(names or [])}

    def record(r: list[Any]) -> str:
        def sub(m: re.Match) -> str:
            token = m.group(0)
            feature = m.group(1) if m.group(1) is not None else m.group(2)
            if feature is not None:
                if feature not in index:
                    raise ValueError(
                        f"record_template names feature {feature!r}, not in {names}"
                        + _did_you_mean(feature, names or [])
                    )
                return dumps(r[index[feature]])
            if token == "$features_kvp":
                return dumps(dict(zip(names, r)))
            if token == "$feature_names":
                return dumps(names)
            return dumps(r)

        return _RECORD_PLACEHOLDER.sub(sub, rt)

    if enc is None:
        enc = [record(r).encode() for r in clean]
    key = "$records" if "$records" in content_template else "$record"
    pre, _, post = content_template.partition(key)
    if key == "$records":
        return enc, (pre + "[").encode(), b",", ("]" + post).encode()
    return enc, pre.encode(), b"", post.encode()


def _clean_rows(X: Any, rows: list[list[Any]]) -> list[list[Any]]:
    if type(X) is np.ndarray and X.dtype.kind in "iub":
        return rows
    if type(X) is np.ndarray and X.dtype.kind == "f":
        if np.isinf(X).any():
            i, j = np.argwhere(np.isinf(X))[0]
            raise ValueError(MSG_JSON_INF.format(row=int(i), col=int(j), value=X[i, j]))
        if not np.isnan(X).any():
            return rows
    out = []
    for i, r in enumerate(rows):
        try:
            out.append([_json_value(v) for v in r])
        except OverflowError:
            j = next(k for k, v in enumerate(r) if isinstance(v, (float, np.floating)) and math.isinf(v))
            raise ValueError(MSG_JSON_INF.format(row=i, col=j, value=r[j])) from None
    return out


def batches(
    enc: list[bytes], pre: bytes, sep: bytes, post: bytes, *, max_rows: int, max_bytes: int
) -> list[tuple[int, int]]:
    """Split encoded rows (from :func:`encode_rows`) into requests: contiguous ``(start, stop)``
    ranges of at most ``max_rows`` rows and ``max_bytes`` bytes of body, each as long as it can be.

    Raises
    ------
    ValueError
        One row alone is larger than ``max_bytes`` (``MSG_ROW_TOO_LARGE``).
    """
    limit = max_bytes
    fixed = len(pre) + len(post)
    step = max_rows
    out: list[tuple[int, int]] = []
    start, size = 0, fixed
    for i, row in enumerate(enc):
        add = len(row) + (len(sep) if i > start else 0)
        if fixed + len(row) > limit:
            raise ValueError(MSG_ROW_TOO_LARGE.format(row=i, size=fixed + len(row), limit=limit))
        if i > start and (i - start >= step or size + add > limit):
            out.append((start, i))
            start, size = i, fixed
            add = len(row)
        size += add
    if start < len(enc):
        out.append((start, len(enc)))
    return out


# --------------------------------------------------------------------------------------------
# responses (client side)


class ResponseParser:
    """Reads an endpoint's answers: the predictions, one row of values per input row.

    Parameters
    ----------
    accept_type : {"text/csv", "application/jsonlines", "application/json"}
    field : int or str, optional
        Where the wanted values are: a column index (CSV) or a JMESPath expression (JSON Lines:
        per line; JSON: over the document, yielding one item per row). Absent, the line (CSV,
        JSON Lines) or document (JSON) itself holds the number(s); a CSV cell holding a JSON list
        is expanded.
    output : {"probability", "label"}, default "probability"
        ``"label"``: one value per row is required.
    label_headers : sequence, optional
        Maps a predicted value that is one of these names to its index.
    one_per_request : bool, default False
        Each request carried one record (``$record``): a JSON answer may be the prediction itself.
    """

    def __init__(
        self,
        accept_type: str,
        *,
        field: int | str | None = None,
        output: str = "probability",
        label_headers: Sequence[Any] | None = None,
        one_per_request: bool = False,
    ) -> None:
        self.accept_type = accept_type
        self.output = output
        self._field = field
        self._label_headers = None if label_headers is None else list(label_headers)
        self._one_per_request = one_per_request
        self._jmes = None
        if accept_type != "text/csv" and field is not None:
            import jmespath

            self._jmes = jmespath.compile(field)

    @staticmethod
    def _bad(first_row: int, message: str) -> ResponseError:
        return ResponseError(message)

    def _value(self, v: Any, first_row: int, i: int) -> list[float]:
        if isinstance(v, list):
            return [self._scalar(x, first_row, i) for x in v]
        return [self._scalar(v, first_row, i)]

    def _scalar(self, v: Any, first_row: int, i: int) -> float:
        if isinstance(v, bool):
            return float(v)
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            s = v.strip()
            try:
                return float(s)
            except ValueError:
                pass
            if self._label_headers is not None:
                for k, h in enumerate(self._label_headers):
                    if str(h) == s:
                        return float(k)
            raise self._bad(
                first_row,
                f"row {first_row + i}: value {v!r} is not a number"
                + ("" if self._label_headers is None else f" nor one of label_headers {self._label_headers}"),
            )
        raise self._bad(first_row, f"row {first_row + i}: value {v!r} is not a number")

    def parse(self, data: bytes, n: int, first_row: int = 0) -> np.ndarray:
        """The predictions in an answer for ``n`` rows, float64 ``(n, values per row)``.

        ``first_row`` (the batch's first row in the caller's input) only numbers the rows in
        messages.

        Raises
        ------
        ResponseError
            The answer does not parse, has another number of predictions than rows
            (:attr:`ResponseError.got` set), or values that are not numbers.
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._bad(first_row, f"not UTF-8: {exc}") from None
        inner = _explainer_predictions(text)
        if inner is not None:  # Clarify's online explainability answer: the predictions are inside
            ctype, text = inner
            if ctype.split(";")[0].strip().lower() != self.accept_type:
                raise self._bad(first_row, f"the explainer's predictions are {ctype!r}, not {self.accept_type!r}")
        values: list[Any]
        if self.accept_type == "text/csv":
            lines = [ln for ln in text.splitlines() if ln.strip()]
            rows = list(csv.reader(lines))
            col = self._field
            if col is None and len(rows) == 1 and n > 1 and len(rows[0]) == n:
                rows = [[v] for v in rows[0]]  # one line holding one score per row
            if len(rows) != n:
                raise ResponseError(f"{len(rows)} predictions for {n} rows", got=len(rows), text=text[:1000])
            if "[" not in text:  # fast path: a rectangular table of numbers
                try:
                    table = np.array(rows if col is None else [r[col] for r in rows], dtype=np.float64)
                except (ValueError, IndexError):
                    pass  # the slow path below says which row and value is wrong
                else:
                    if self.output != "label" or table.ndim == 1 or table.shape[1] == 1:
                        return table.reshape(n, -1)
            values = []
            for i, r in enumerate(rows):
                if col is not None:
                    if not -len(r) <= col < len(r):
                        raise self._bad(first_row, f"row {first_row + i} has {len(r)} columns, no column {col}")
                    r = [r[col]]
                cells: list[Any] = []
                for c in r:
                    c = c.strip()
                    if c.startswith("["):
                        try:
                            cells.extend(json.loads(c))
                        except json.JSONDecodeError:
                            raise self._bad(first_row, f"row {first_row + i}: cell {c!r} is not a JSON list") from None
                    else:
                        cells.append(c)
                values.append(cells if len(cells) != 1 else cells[0])
        elif self.accept_type == "application/jsonlines":
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if len(lines) != n:
                raise ResponseError(f"{len(lines)} predictions for {n} rows", got=len(lines), text=text[:1000])
            values = []
            for i, ln in enumerate(lines):
                try:
                    doc = json.loads(ln)
                except json.JSONDecodeError as exc:
                    raise self._bad(first_row, f"line {i + 1}: {exc}") from None
                v = self._jmes.search(doc) if self._jmes is not None else doc
                if v is None:
                    raise self._bad(first_row, f"row {first_row + i}: {self._field!r} found nothing in {ln[:200]}")
                values.append(v)
        else:
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise self._bad(first_row, f"{exc} (body starts {text[:200]!r})") from None
            v = self._jmes.search(doc) if self._jmes is not None else doc
            if (
                self._one_per_request
                and n == 1
                and not (isinstance(v, list) and len(v) == 1 and isinstance(v[0], list))
            ):
                v = [v]
            if not isinstance(v, list):
                raise self._bad(
                    first_row,
                    f"expected a list of predictions, got {str(v)[:200]}"
                    + ("" if self._field else " (set probability=/label= to a JMESPath)"),
                )
            if len(v) != n:
                raise ResponseError(f"{len(v)} predictions for {n} rows", got=len(v), text=text[:1000])
            values = v
        out = [self._value(v, first_row, i) for i, v in enumerate(values)]
        widths = {len(r) for r in out}
        if len(widths) > 1:
            raise self._bad(first_row, f"rows have different numbers of values: {sorted(widths)}")
        if self.output == "label" and widths and widths != {1}:
            raise self._bad(first_row, f"label {self._field!r} gives {widths.pop()} values per row, expected 1")
        return np.array(out, dtype=np.float64).reshape(n, -1)


def _explainer_predictions(text: str) -> tuple[str, str] | None:
    """``(content_type, data)`` of the predictions in a SageMaker Clarify online explainability
    answer (``{"version": ..., "predictions": {"content_type": ..., "data": ...}, "explanations":
    ...}``), or None when ``text`` is not one."""
    if not text.lstrip().startswith("{") or '"explanations"' not in text or '"predictions"' not in text:
        return None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict) or "version" not in doc or "explanations" not in doc:
        return None
    pred = doc.get("predictions")
    if not isinstance(pred, dict) or not isinstance(pred.get("data"), str):
        return None
    ctype = pred.get("content_type")
    return (ctype if isinstance(ctype, str) else "", pred["data"])


# --------------------------------------------------------------------------------------------
# the server side


def _loads(text: str) -> Any:
    """``json.loads``; nesting deeper than the parser's recursion limit is the client's error (400).
    A parsed document is never walked recursively: records and feature values are checked one
    level at a time, and a nested value where a feature value belongs is refused (MSG_NOT_SCALAR)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise RequestError(MSG_TOO_DEEP) from None


def _features_of(record: Any, finder: Any) -> Any:
    if finder is not None:
        return finder.search(record)
    if isinstance(record, dict):
        if "features" in record:
            return record["features"]
        return record  # key-value pairs, ordered by the model's feature names
    return record


def _rows_from_records(records: list[Any], finder: Any, feature_names: list[str] | None) -> list[list[Any]]:
    rows = []
    for i, rec in enumerate(records):
        f = _features_of(rec, finder)
        if isinstance(f, dict):
            if feature_names is None:
                raise RequestError(f"record {i} is an object but the model has no feature names")
            missing = [n for n in feature_names if n not in f]
            if missing:
                raise RequestError(f"record {i} lacks features {missing}")
            f = [f[n] for n in feature_names]
        if not isinstance(f, list):
            raise RequestError(f"record {i}: expected a list of feature values, got {_short(f)}")
        for j, v in enumerate(f):
            if v is not None and not isinstance(v, (int, float, str)):  # bool is an int
                raise RequestError(MSG_NOT_SCALAR.format(record=i, feature=j, kind=_short(v)))
        rows.append(f)
    return rows


def _short(v: Any, n: int = 200) -> str:
    """At most ``n`` characters of ``v``'s JSON form (cheap on a large or deep value)."""
    if isinstance(v, (list, dict)):
        kind = "a list" if isinstance(v, list) else "an object"
        return f"{kind} of {len(v)} item{'s' if len(v) != 1 else ''}"
    return repr(v)[:n]


def _to_input(rows: list[list[Any]], feature_names: list[str] | None) -> Any:
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        i = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise RequestError(
            f"records have different numbers of features: {sorted(widths)} (record {i} has {len(rows[i])}, "
            f"record 0 has {len(rows[0])})"
        )
    if rows and all(isinstance(v, (int, float)) and not isinstance(v, bool) or v is None for r in rows for v in r):
        arr = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
        return arr
    import pandas as pd

    frame = pd.DataFrame(
        rows, columns=feature_names if feature_names and rows and len(feature_names) == len(rows[0]) else None
    )
    return frame.infer_objects()


def _short_csv_record(body: bytes, width: int) -> str | None:
    """:data:`MSG_CSV_WIDTH` for the first CSV record with fewer than ``width`` fields (None when
    every record has them: its missing values were written as empty fields)."""
    import csv

    text = body.decode("utf-8", errors="replace")
    for i, row in enumerate(r for r in csv.reader(io.StringIO(text)) if r):
        if len(row) < width:
            return MSG_CSV_WIDTH.format(record=i, got=len(row), want=width)
    return None


def parse_request(
    body: bytes,
    content_type: str,
    *,
    feature_names: Sequence[str] | None = None,
    accepts: str = "numpy",
    features: Any = None,
) -> Any:
    """The rows of a request to a model server (the server side of the wire format).

    Parameters
    ----------
    body : bytes
    content_type : {"text/csv", "application/jsonlines", "application/json"}
        CSV: one row per line, no header. JSON Lines: one record per line. JSON: a list of
        records, one record, or an object with ``instances`` (or what ``features`` finds).
        A record is a list of feature values, or an object whose ``features`` field (or what
        ``features`` finds) holds them, or an object of feature name: value.
    feature_names : sequence of str, optional
        The model's features (names the columns; orders the values of name: value records).
    accepts : str, default "numpy"
        What the model takes (:attr:`clarion.models.Model.accepts`): numeric CSV becomes a
        C-ordered float64 array unless it is ``"pandas"``.
    features : compiled JMESPath expression, optional
        Where the feature values are in JSON / JSON Lines records.

    Returns
    -------
    numpy array or pandas DataFrame

    Raises
    ------
    RequestError
        A malformed request (the client's error).
    """
    finder = features
    feature_names = None if feature_names is None else list(feature_names)
    if content_type == "text/csv":
        import pandas as pd

        if not body.strip():
            raise RequestError("empty request body")
        try:
            frame = pd.read_csv(io.BytesIO(body), header=None)
        except Exception as exc:  # noqa: BLE001 - any parser failure is the client's bad body
            raise RequestError(f"cannot parse CSV: {exc}") from None
        if frame.isna().to_numpy().any():  # pandas fills a short line with NaN: name it instead
            bad = _short_csv_record(body, frame.shape[1])
            if bad is not None:
                raise RequestError(bad)
        names = feature_names
        if names is not None and len(names) == frame.shape[1]:
            frame.columns = names
        if all(k in "fiub" for k in frame.dtypes.map(lambda d: d.kind)):
            if accepts != "pandas":
                # C order, as a client's array would be: BLAS sums F-ordered data differently
                return np.ascontiguousarray(frame.to_numpy(dtype=np.float64))
        return frame
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"body is not UTF-8: {exc}") from None
    try:
        if content_type == "application/jsonlines":
            records = [_loads(ln) for ln in text.splitlines() if ln.strip()]
        else:
            doc = _loads(text)
            if finder is not None and isinstance(doc, dict):
                records = finder.search(doc)
                finder = None
            elif isinstance(doc, dict):
                records = doc["instances"] if "instances" in doc else [doc]  # else: one record
            elif isinstance(doc, list) and doc and not isinstance(doc[0], (list, dict)):
                records = [doc]  # one record given as a flat list of values
            else:
                records = doc
            if not isinstance(records, list):
                raise RequestError('expected a JSON list of records (or {"instances": [...]})')
    except json.JSONDecodeError as exc:
        raise RequestError(f"cannot parse JSON: {exc}") from None
    if not records:
        raise RequestError("no records in the request")
    return _to_input(_rows_from_records(records, finder, feature_names), feature_names)


def format_response(y: np.ndarray, accept: str, names: Sequence[str] | None) -> bytes:
    """A model server's answer: ``y`` (float64 ``(n, D)``) in the ``accept`` format.

    CSV: one line per row with the outputs. JSON Lines: one ``{"scores": [...]}`` per row (plus
    ``"predicted_label"``, the name of the highest score, when ``D > 1`` and ``names`` are given).
    JSON: ``{"predictions": [...]}`` of the same records.
    """
    rows = y.tolist()
    if accept == "text/csv":
        if not rows or not rows[0]:
            return b"\n" * len(rows)
        # repr of the nested list is C speed; floats come out shortest round-trip ("nan"/"inf" too)
        return (repr(rows)[2:-2].replace(", ", ",").replace("],[", "\n") + "\n").encode()
    many = y.shape[1] > 1 and names is not None

    def record(r: list[float]) -> dict[str, Any]:
        rec: dict[str, Any] = {"scores": r}
        if many:
            rec["predicted_label"] = names[int(np.argmax(r))]
        return rec

    if accept == "application/jsonlines":
        return ("\n".join(json.dumps(record(r), separators=(",", ":")) for r in rows) + "\n").encode()
    return json.dumps({"predictions": [record(r) for r in rows]}, separators=(",", ":")).encode()
