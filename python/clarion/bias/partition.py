"""Partition-level operations of the bias engine: what a scheduler runs on each part of the data.

:func:`clarion.bias.report` counts all rows in one pass. A scheduler that splits the rows into
partitions (:mod:`clarion.distributed` on Dask) runs the same engine piece by piece with these
operations and adds no math of its own:

* :func:`count_partition` encodes and counts one partition into a count state, returned as a
  plain dict (:func:`state_to_dict`: picklable, no locks);
* :func:`bootstrap_partition` counts the bootstrap replicates of an encoded partition whose
  first row has global number ``offset`` (replicate draws are keyed on the global row, so the
  intervals equal the one-shot ones);
* :func:`merge_state_dicts` / :func:`merge_pairs` merge states by value (a tree reduction);
* :func:`report_from_states` evaluates the metrics once from the merged states;
* FlipTest: :func:`check_flip_features` (on the columns, before any partition is read),
  :func:`flip_rows` (a partition's facet codes, features and predicted-positive masks),
  :func:`flip_gather` (facet a's rows, the k-NN reference), :func:`flip_query` (a
  partition's facet-d rows against it), :func:`flip_add`, :func:`flip_combos` and
  :func:`flip_result` (the metric value from the summed counts).

A state dict holds the vocabularies that name the codes; a partition encoded with
``state_from_dict(spec, merged, counts=False)`` uses the merged state's codes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from clarion.bias._encode import Vocabulary
from clarion.bias._engine import Spec, State, Table, merge_states, normalize_methods
from clarion.bias._report import FlipTests, check_bootstrap, empty_facet_reason
from clarion.bias._result import BiasReport

__all__ = [
    "FlipTests",
    "Spec",
    "State",
    "Table",
    "bootstrap_partition",
    "check_bootstrap",
    "check_columns",
    "check_flip_features",
    "count_partition",
    "empty_facet_reason",
    "flip_add",
    "flip_combos",
    "flip_gather",
    "flip_query",
    "flip_result",
    "flip_rows",
    "merge_pairs",
    "merge_state_dicts",
    "merge_states",
    "normalize_methods",
    "report_from_states",
    "state_from_dict",
    "state_to_dict",
]


def state_to_dict(st: State) -> dict:
    """A picklable copy of a count ``State`` (which holds locks): vocabularies, flags and counts."""
    return {
        "n_rows": st.n_rows,
        "weighted": st.weighted,
        "model_kinds": st.model_kinds,
        "label_vocab": list(st.label_vocab.values),
        "label_max": st.label_max,
        "group_vocab": None if st.group_vocab is None else list(st.group_vocab.values),
        "group_missing": st.group_missing,
        "facets": {
            f: {"vocab": list(fs.vocab.values), "seen": fs.seen, "col_max": fs.col_max, "counts": fs.counts}
            for f, fs in st.facets.items()
        },
    }


def state_from_dict(spec: Spec, d: dict, *, counts: bool = True) -> State:
    """The ``State`` of :func:`state_to_dict`'s output; ``counts=False`` keeps only the
    vocabularies (a state that encodes with the same codes and holds no rows)."""
    st = State(spec, weighted=d["weighted"])
    st.n_rows = d["n_rows"] if counts else 0
    st.model_kinds = None if d["model_kinds"] is None else list(d["model_kinds"])
    st.label_vocab = Vocabulary(d["label_vocab"])
    st.label_max = d["label_max"]
    if d["group_vocab"] is not None:
        st.group_vocab = Vocabulary(d["group_vocab"])
    st.group_missing = d["group_missing"]
    for f, fd in d["facets"].items():
        fs = st.facets[f]
        fs.vocab = Vocabulary(fd["vocab"])
        fs.col_max = fd["col_max"]
        if counts:
            fs.seen = fd["seen"].copy()
            fs.counts = {k: v.copy() for k, v in fd["counts"].items()}
    return st


def _table(part: Any) -> Table:
    return Table(pd.DataFrame(part) if isinstance(part, np.ndarray) else part)


def count_partition(
    part: Any,
    spec: Spec,
    compat: str,
    *,
    index: int = 0,
    backend: str = "auto",
    n_threads: int | None = None,
    keep: bool = False,
) -> tuple[dict, dict | None, int]:
    """Encode and count one partition: ``(state dict, the encoded columns when keep, rows)``.

    An error names the partition (``index``): its row numbers count from the partition's start."""
    table = _table(part)
    st = State(spec)
    try:
        enc = st.encode(table, compat)
    except ValueError as exc:
        raise ValueError(f"{exc} (row numbers count from the start of partition {index})") from None
    st.add_counts(st.count(enc, backend=backend, n_threads=n_threads), table.n)
    return state_to_dict(st), (enc if keep else None), table.n


def bootstrap_partition(
    item: tuple,
    spec: Spec,
    offset: int,
    n_bootstrap: int,
    seed: int,
    backend: str = "auto",
    n_threads: int | None = None,
) -> tuple[dict, dict]:
    """Replicate counts of a partition kept by ``count_partition(..., keep=True)`` (``item``),
    whose first row is global row ``offset``: ``(its state dict, the replicates' state dict)``."""
    dump, enc, _ = item
    st = state_from_dict(spec, dump)  # same vocabularies, so the same codes as ``enc``
    rep = st.count(enc, n_bootstrap=n_bootstrap, seed=seed, row_offset=offset, backend=backend, n_threads=n_threads)
    boot = state_to_dict(st)
    for f, (_, _, _, counts) in rep.items():
        boot["facets"][f]["counts"] = counts
    return dump, boot


def merge_state_dicts(spec: Spec, dumps: list) -> dict | None:
    """The merge of state dicts (``None`` entries skipped; ``None`` when there is none)."""
    dumps = [d for d in dumps if d is not None]
    if not dumps:
        return None
    total = state_from_dict(spec, dumps[0])
    for d in dumps[1:]:
        merge_states(total, state_from_dict(spec, d))
    return state_to_dict(total)


def merge_pairs(spec: Spec, items: list) -> tuple[dict | None, dict | None]:
    """Merge ``(counts, replicates)`` pairs of state dicts element-wise."""
    return merge_state_dicts(spec, [a for a, _ in items]), merge_state_dicts(spec, [b for _, b in items])


def check_columns(meta: pd.DataFrame, spec: Spec) -> None:
    """The spec's columns exist in ``meta`` (an empty frame with the columns): the same errors
    as one machine, before any partition is read."""
    t = Table(meta)
    t.col(spec.label, "label")
    for f in spec.facets:
        t.col(f, "facet")
    for _, src in spec.models:
        t.source(src, "predicted_label")
    if spec.group_variable is not None:
        t.source(spec.group_variable, "group_variable")
    if spec.weights is not None:
        t.source(spec.weights, "weights")


def report_from_states(
    spec: Spec,
    merged: dict | None,
    boot_merged: dict | None = None,
    *,
    methods: Any = "all",
    stage: str = "both",
    compat: str = "clarion",
    confidence: float | None = None,
    n_bootstrap: int = 0,
    ft: Any = None,
) -> BiasReport:
    """The report of the merged state dict (and replicates, with ``confidence``); ``ft`` is the
    FlipTest callable (``ft(facet, codes, model) -> (value, reason)``) or None."""
    state = State(spec) if merged is None else state_from_dict(spec, merged)
    boot = None
    if confidence is not None:
        if boot_merged is None:
            raise ValueError("data has no rows; bootstrap intervals need rows")
        aligned = state_from_dict(spec, merged, counts=False)  # the merged state's codes
        merge_states(aligned, state_from_dict(spec, boot_merged))
        boot = {f: fs.counts for f, fs in aligned.facets.items()}
    return state.assemble(
        methods=methods,
        stage=stage,
        compat=compat,
        boot=boot,
        confidence=confidence,
        ft=ft,
        n_bootstrap=int(n_bootstrap) if confidence is not None else 0,
    )


# -- FlipTest ------------------------------------------------------------------------------------


def check_flip_features(meta: pd.DataFrame, spec: Spec, state: State, compat: str) -> None:
    """FlipTest's ``features`` exist in ``meta`` (an empty frame with the columns): the same
    errors as one machine, before any partition is read for FlipTest."""
    FlipTests(Table(meta), spec, state, None, compat)


def flip_combos(state: State, facet: Any, compat: str) -> list:
    """The (facet-d codes, model row) pairs FlipTest is evaluated for on ``facet``."""
    fs = state.facets[facet]
    _, _, sel_codes = state.entries(fs, compat)
    n_models = max(1, len(state.model_rows()[0]))
    return [(tuple(c), m) for c in sel_codes for m in range(n_models)]


def flip_rows(part: Any, spec: Spec, dump: dict, compat: str, facet: Any) -> dict:
    """Facet codes (in the merged vocabulary ``dump``), features and predicted-positive masks of a
    partition."""
    table = _table(part)
    st = state_from_dict(spec, dump, counts=False)  # same codes as the merged state
    enc = st.encode(table, compat)
    ft = FlipTests(table, spec, st, enc, compat)
    X, err = ft.features(facet)
    n_models = max(1, len(st.model_rows()[0])) if spec.models else 0
    P = np.column_stack([ft.pred(m) for m in range(n_models)]) if n_models else np.zeros((table.n, 0), bool)
    return {"codes": enc["facets"][facet][0], "X": X, "P": P, "error": err}


def flip_gather(rows: list) -> dict:
    """All partitions' :func:`flip_rows` in one (the k-NN reference), in global row order."""
    err = next((r["error"] for r in rows if r["error"]), None)
    codes = np.concatenate([r["codes"] for r in rows]) if rows else np.zeros(0, np.int32)
    if err:
        return {"codes": codes, "X": None, "P": None, "error": err}
    return {
        "codes": codes,
        "X": np.concatenate([r["X"] for r in rows]),
        "P": np.concatenate([r["P"] for r in rows]),
        "error": None,
    }


def flip_query(rows: dict, ref: dict, combos: list) -> dict:
    """(F+, F-, n_d, n_a) of this partition's facet-d rows against all of facet a, per combo."""
    from clarion.bias.fliptest import flip_test

    out: dict = {"counts": {}, "errors": {}, "feature_error": ref["error"]}
    for codes, m in combos:
        sel = np.asarray(codes, dtype=np.int32)
        d_all = np.isin(ref["codes"], sel) if sel.size else np.zeros(ref["codes"].shape, bool)
        na = int((~d_all).sum())
        d = np.isin(rows["codes"], sel) if sel.size else np.zeros(rows["codes"].shape, bool)
        nd = int(d.sum())
        fp = fm = 0
        if nd and na and ref["error"] is None:
            try:
                res = flip_test(ref["X"][~d_all], rows["X"][d], ref["P"][~d_all, m], rows["P"][d, m])
                fp, fm = res.f_plus, res.f_minus
            except ValueError as exc:
                out["errors"][(codes, m)] = str(exc)
        out["counts"][(codes, m)] = (fp, fm, nd, na)
    return out


def flip_add(items: list) -> dict:
    """The sum of :func:`flip_query` results."""
    out: dict = {"counts": {}, "errors": {}, "feature_error": None}
    for it in items:
        out["feature_error"] = out["feature_error"] or it["feature_error"]
        out["errors"].update(it["errors"])
        for key, (fp, fm, nd, na) in it["counts"].items():
            a = out["counts"].get(key, (0, 0, 0, na))
            out["counts"][key] = (a[0] + fp, a[1] + fm, a[2] + nd, na)
    return out


def flip_result(res: dict, codes: list, m: int, compat: str) -> tuple[float, str | None]:
    """FlipTest's ``(value, reason)`` for one combo from the summed counts ``res`` (or a
    ``{"error": ...}`` dict)."""
    if "error" in res:
        return math.nan, res["error"]
    fp, fm, nd, na = res["counts"][(tuple(codes), m)]
    reason = empty_facet_reason(compat, nd, na)
    if reason:
        return math.nan, reason
    if res.get("feature_error"):
        return math.nan, res["feature_error"]
    if (tuple(codes), m) in res["errors"]:
        return math.nan, res["errors"][(tuple(codes), m)]
    return (fp - fm) / nd, None
