"""Tabular data in code space: numeric columns as floats, categorical / string / bool columns as
integer codes (exact in float64), so masking is a plain copy of numbers; decoding rebuilds a
DataFrame with the original dtypes for the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MSG_COLUMNS = "{arg} must have the columns of the background: {detail}"
MSG_NCOLS = "{arg} has {got} columns but the background has {want}"
MSG_NDIM = "{arg} must be 2-D (rows x columns), got shape {shape}"
MSG_DTYPE = (
    "{arg}: column {col!r} has dtype {dtype}, which cannot be explained (numeric, bool, "
    "categorical and string columns are supported)"
)
MSG_ARRAY_DTYPE = (
    "{arg} is a numpy array of dtype {dtype}; pass numeric arrays, or a pandas DataFrame for "
    "categorical / string columns"
)

MSG_SPARSE = (
    "{arg} is a scipy.sparse matrix of shape {shape}; clarion explains dense rows, and densified it "
    "would take {size} bytes, more than memory_budget ({budget} bytes): pass fewer rows, or a larger "
    "memory_budget"
)
MSG_SPARSE_TYPE = (
    "{arg} is a scipy.sparse matrix; pass it densified (.toarray()) or to the explainer, which densifies it"
)
DEFAULT_DENSE_BUDGET = 1 << 30

_NUM, _BOOL, _CAT, _OBJ = "num", "bool", "cat", "obj"


def is_sparse(data: Any) -> bool:
    """Whether ``data`` is a scipy.sparse matrix or array (without importing scipy)."""
    return type(data).__module__.startswith("scipy.sparse") and hasattr(data, "toarray")


def densify(data: Any, arg: str, budget: int = DEFAULT_DENSE_BUDGET) -> Any:
    """``data`` as a dense numpy array when it is scipy.sparse and fits ``budget`` bytes dense;
    anything else unchanged. Raises ValueError naming ``arg`` when it does not fit."""
    if not is_sparse(data):
        return data
    shape = tuple(int(n) for n in data.shape)
    size = int(np.prod(shape, dtype=object)) * max(np.dtype(data.dtype).itemsize, 1)
    if size > budget:
        raise ValueError(MSG_SPARSE.format(arg=arg, shape=shape, size=size, budget=budget))
    return np.asarray(data.toarray())


class TabularCodec:
    """Encodes an array/DataFrame to a float matrix and decodes model batches back.

    Built from the background; later data (rows to explain) must have the same columns, and new
    category values are appended to the code tables (codes of known values never change).
    """

    def __init__(self, data: Any, arg: str = "background"):
        self.is_frame = isinstance(data, pd.DataFrame)
        if self.is_frame:
            self.columns = list(data.columns)
            self.dtypes = list(data.dtypes)
            self.kinds = []
            self.categories: list[list[Any] | None] = []
            for col, dt in zip(self.columns, self.dtypes):
                kind = _kind(dt)
                if kind is None:
                    raise TypeError(MSG_DTYPE.format(arg=arg, col=col, dtype=dt))
                self.kinds.append(kind)
                self.categories.append([] if kind in (_CAT, _OBJ) else None)
            for j, kind in enumerate(self.kinds):
                if kind == _CAT:  # codes follow the dtype's own category order
                    self.categories[j] = list(self.dtypes[j].categories)
            self.index: list[dict[Any, int] | None] = [
                None if c is None else {v: i for i, v in enumerate(c)} for c in self.categories
            ]
            self.dtype = np.dtype(np.float64)
        else:
            if is_sparse(data):
                raise TypeError(MSG_SPARSE_TYPE.format(arg=arg))
            arr = np.asarray(data) if not _is_device(data) else data
            if arr.ndim != 2:
                raise ValueError(MSG_NDIM.format(arg=arg, shape=tuple(arr.shape)))
            if arr.dtype.kind not in "biuf":
                raise TypeError(MSG_ARRAY_DTYPE.format(arg=arg, dtype=arr.dtype))
            self.columns = list(range(arr.shape[1]))
            self.orig_dtype = arr.dtype
            self.dtype = np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)
        self.n_columns = len(self.columns)

    @property
    def column_names(self) -> list[str]:
        return [str(c) for c in self.columns]

    def encode(self, data: Any, arg: str) -> Any:
        """(n, P) float matrix of ``data`` (C-contiguous; a cupy array for device input)."""
        if self.is_frame:
            if not isinstance(data, pd.DataFrame):
                raise TypeError(f"{arg} must be a pandas DataFrame like the background, got {type(data).__name__}")
            cols = list(data.columns)
            if cols != self.columns:
                missing = [c for c in self.columns if c not in cols]
                extra = [c for c in cols if c not in self.columns]
                detail = (
                    f"missing {missing}, unexpected {extra}" if missing or extra else "columns are in another order"
                )
                raise ValueError(MSG_COLUMNS.format(arg=arg, detail=detail))
            out = np.empty((len(data), self.n_columns), dtype=np.float64)
            for j, col in enumerate(self.columns):
                s = data[col]
                kind = self.kinds[j]
                if kind == _NUM:
                    if _kind(s.dtype) != _NUM:
                        raise TypeError(
                            MSG_DTYPE.format(arg=arg, col=col, dtype=s.dtype) + " (numeric in the background)"
                        )
                    out[:, j] = s.to_numpy(dtype=np.float64, na_value=np.nan)
                elif kind == _BOOL:
                    out[:, j] = s.to_numpy(dtype=np.float64)
                else:
                    out[:, j] = self._codes(j, s)
            return out
        if _is_device(data):
            import cupy

            arr = data
            if arr.ndim != 2:
                raise ValueError(MSG_NDIM.format(arg=arg, shape=tuple(arr.shape)))
            if arr.shape[1] != self.n_columns:
                raise ValueError(MSG_NCOLS.format(arg=arg, got=arr.shape[1], want=self.n_columns))
            return cupy.ascontiguousarray(arr, dtype=self.dtype)
        if isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        if is_sparse(data):
            raise TypeError(MSG_SPARSE_TYPE.format(arg=arg))
        arr = np.asarray(data)
        if arr.ndim != 2:
            raise ValueError(MSG_NDIM.format(arg=arg, shape=tuple(arr.shape)))
        if arr.dtype.kind not in "biuf":
            raise TypeError(MSG_ARRAY_DTYPE.format(arg=arg, dtype=arr.dtype))
        if arr.shape[1] != self.n_columns:
            raise ValueError(MSG_NCOLS.format(arg=arg, got=arr.shape[1], want=self.n_columns))
        return np.ascontiguousarray(arr, dtype=self.dtype)

    def encode_column(self, j: int, s: Any) -> np.ndarray:
        """Column ``j`` of the data (its values ``s``) in code space, as :meth:`encode` writes it
        (categorical codes are added to the codec's tables, as :meth:`encode` does)."""
        if not self.is_frame:
            return np.asarray(s, dtype=self.dtype)
        kind = self.kinds[j]
        if kind == _NUM:
            return s.to_numpy(dtype=np.float64, na_value=np.nan)
        if kind == _BOOL:
            return s.to_numpy(dtype=np.float64)
        return self._codes(j, s)

    def _codes(self, j: int, s: pd.Series) -> np.ndarray:
        """Codes of a categorical / string column; NaN / None get code -1 (decoded back to NaN)."""
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        table = self.index[j]
        cats = self.categories[j]
        remap = np.empty(len(uniques), dtype=np.float64)
        for i, v in enumerate(uniques):
            code = table.get(v)
            if code is None:
                code = len(cats)
                table[v] = code
                cats.append(v)
            remap[i] = code
        out = np.full(len(s), -1.0)
        ok = codes >= 0
        out[ok] = remap[codes[ok]]
        return out

    def decode(self, mat: Any) -> Any:
        """What the model sees: the matrix itself for array data, else a DataFrame with the
        original column names and dtypes."""
        if not self.is_frame:
            if _is_device(mat) or self.orig_dtype == self.dtype:
                return mat
            return mat.astype(self.orig_dtype)
        cols = {}
        for j, col in enumerate(self.columns):
            v = mat[:, j]
            kind, dt = self.kinds[j], self.dtypes[j]
            if kind == _NUM:
                cols[col] = v if dt == np.float64 else _cast_numeric(v, dt)
            elif kind == _BOOL:
                cols[col] = pd.array(v != 0, dtype=dt) if dt != np.bool_ else v != 0
            else:
                codes = v.astype(np.int64)
                cats = self.categories[j]
                if kind == _CAT:
                    if len(cats) == len(dt.categories):
                        cols[col] = pd.Categorical.from_codes(codes, dtype=dt)
                    else:
                        cols[col] = pd.Categorical.from_codes(codes, categories=cats, ordered=bool(dt.ordered))
                else:
                    table = np.empty(len(cats) + 1, dtype=object)
                    table[: len(cats)] = cats
                    table[len(cats)] = np.nan
                    vals = table[np.where(codes < 0, len(cats), codes)]
                    cols[col] = pd.array(vals, dtype=dt)
        return pd.DataFrame(cols, copy=False)


def _cast_numeric(v: np.ndarray, dt: Any) -> Any:
    if isinstance(dt, np.dtype):
        if dt.kind in "iu" and np.isnan(v).any():
            return v  # a missing value in an integer column: keep float
        return v.astype(dt)
    return (
        pd.array(v, dtype=dt)
        if not (getattr(dt, "kind", "f") in "iu" and np.isnan(v).any())
        else pd.array(np.where(np.isnan(v), None, v), dtype=dt)
    )


def _kind(dt: Any) -> str | None:
    if isinstance(dt, pd.CategoricalDtype):
        return _CAT
    if pd.api.types.is_bool_dtype(dt):
        return _BOOL
    if pd.api.types.is_numeric_dtype(dt):
        return _NUM
    if pd.api.types.is_string_dtype(dt) or pd.api.types.is_object_dtype(dt):
        return _OBJ
    return None


def _is_device(a: Any) -> bool:
    return hasattr(a, "__cuda_array_interface__")
