"""Comparing accumulator states, for the tests of the one-pass count paths (issue 21): a state's
every field as plain values, equality with NaN equal to NaN, and the general (reference) update."""

from __future__ import annotations

import math

from clarion.bias._engine import State, Table


def snapshot(state: State) -> dict:
    out = {
        "label_vocab": list(state.label_vocab.values),
        "label_sample": list(state.label_sample),
        "label_max": state.label_max,
        "group_vocab": None if state.group_vocab is None else list(state.group_vocab.values),
        "group_missing": state.group_missing,
        "model_kinds": state.model_kinds,
        "n_rows": state.n_rows,
    }
    for f, fs in state.facets.items():
        out[f] = {
            "vocab": list(fs.vocab.values),
            "sample": list(fs.sample),
            "col_max": fs.col_max,
            "seen": fs.seen.tolist(),
            "counts": {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in fs.counts.items()},
        }
    return out


def same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN (vocabularies hold no NaN, samples might)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def general_update(state: State, table: Table, compat: str) -> None:
    batch = state.count(state.encode(table, compat))
    state.add_counts(batch, table.n)


def update_both(acc, want: State, batch, compat: str) -> tuple[str | None, str | None]:
    """``batch`` into an Accumulator (its own paths) and into ``want`` (the general update):
    the error message of each (None: counted).

    A batch without rows changes nothing in an Accumulator (``update`` returns before reading
    it), so it is not given to ``want`` either: the general update of zero rows still records
    what its encoding saw (a model kind, zero count tables padded to vocabularies grown by an
    earlier batch that failed), none of which is a count. Those zeros made the comparison of the
    two states fail on rare hypothesis draws (a failed batch, then an empty one)."""
    err_a = err_b = None
    try:
        acc.update(batch)
    except ValueError as exc:
        err_a = str(exc)
    try:
        table = Table(batch)
        if table.n == 0:
            return err_a, None
        general_update(want, table, compat)
    except ValueError as exc:
        err_b = str(exc)
    return err_a, err_b
