"""The same analyses on Dask collections, with the numbers of a single-machine run.

clarion does not schedule work itself on a cluster: it builds Dask task graphs and lets
``dask.distributed`` (or any Dask scheduler) run them, retry them when a worker dies, and move
the data. The public entry points accept Dask collections directly and delegate here:

* :func:`clarion.bias.report` on a ``dask.dataframe.DataFrame`` (or a 2-D ``dask.array``, whose
  columns are then named 0, 1, ...) -> :func:`bias_report`;
* :meth:`clarion.explain.KernelShap.explain` on a Dask DataFrame / array -> :func:`explain`;
* :func:`clarion.explain.partial_dependence` on a Dask DataFrame / array ->
  :func:`partial_dependence`.

What travels (see ``docs/scaling.md``):

* **bias** -- every partition is encoded and counted by the compiled count kernel into its own
  count state (the :class:`clarion.bias.Accumulator` state: count tensors and the vocabularies
  that name their codes). States are merged *by value* in a tree reduction (``split_every``
  states per task), and the metrics are evaluated once, on the client, from the merged counts.
  Unweighted counts are integers, so the result is bit for bit the single-machine one; weighted
  counts are float sums in another order (equal to ~1 ulp). Bootstrap replicates draw their
  Poisson weights from the *global* row index (the kernel's ``row_offset``): the encoded columns
  of every partition are kept on the workers while the partition lengths give each partition's
  first global row, then the replicates are counted from the kept encodings (the data is read
  once), so the intervals are identical too.
* **FlipTest** -- exact: the feature rows of each FT facet are gathered once into one task
  result (facet a, the reference set of the k-NN search), which Dask ships once to every worker
  that holds a partition; each partition then queries its own facet-d rows against it with the
  compiled kd-tree, and only ``(F+, F-, n_d)`` come back. Facet a keeps its global row order, so
  ties are broken exactly as on one machine.
* **Kernel SHAP** -- the explainer (coalition plan, operator, background, model) is one task
  result shipped once per worker; partitions are explained independently with the same plan, so
  every row's attributions equal the single-machine ones (bit for bit when the model's output
  for a row does not depend on the other rows of its batch -- trees, element-wise functions; a
  BLAS-based model may round differently in the last bit for another batch size). :func:`shap_frame` gives the local
  attributions as a lazy Dask DataFrame, so ``shap_frame(...).to_parquet(path)`` writes them per
  partition without collecting them.
* **partial dependence** -- the grid needs the exact quantiles of each feature column, so those
  columns (N values each) are gathered; then every partition sums ``f`` over its rows for the
  whole grid and the (G x D) partial sums are added in a tree reduction.

Nothing here imports Dask until a Dask collection is actually passed.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NANNY_TRIM_KEY",
    "analyze",
    "bias_report",
    "cluster",
    "cluster_client",
    "explain",
    "is_dask_collection",
    "on_cluster",
    "partial_dependence",
    "shap_frame",
]

MSG_SOURCE = ("{arg}: with a Dask collection give column names (every partition must hold the column); got "
              "{kind}")
MSG_DATA = "data must be a dask.dataframe.DataFrame or a 2-D dask.array; got {t}"
MSG_ARRAY_NDIM = "{arg}: a dask array must be 2-D (rows x columns), got {ndim}-D"
MSG_SPLIT = "split_every must be an integer >= 2, got {value!r}"


# ------------------------------------------------------------------------------------------------
# detection and partitions


def is_dask_collection(x: Any) -> bool:
    """True when ``x`` is a Dask collection (never imports Dask: no Dask object can exist unless
    Dask was imported by whoever made it)."""
    if "dask" not in sys.modules:
        return False
    mod = type(x).__module__ or ""
    if not mod.startswith("dask"):  # dask.*, dask_cudf, dask_expr ...
        return False
    import dask  # noqa: PLC0415

    return bool(dask.is_dask_collection(x))


def _is_dask_array(x: Any) -> bool:
    import dask.array as da  # noqa: PLC0415

    return isinstance(x, da.Array)


def _frame_of(data: Any, arg: str = "data") -> Any:
    """A Dask DataFrame for a Dask DataFrame, or a 2-D Dask array (columns 0..P-1)."""
    import dask.dataframe as dd  # noqa: PLC0415

    if _is_dask_array(data):
        if data.ndim != 2:
            raise ValueError(MSG_ARRAY_NDIM.format(arg=arg, ndim=data.ndim))
        return dd.from_dask_array(data.rechunk({1: -1}))
    if isinstance(data, dd.DataFrame):
        return data
    raise TypeError(MSG_DATA.format(t=type(data).__name__))


def _partitions(data: Any, arg: str) -> tuple[list, Any, bool]:
    """(delayed partitions, meta, is_frame): pandas frames, or 2-D array blocks for an array."""
    import dask.dataframe as dd  # noqa: PLC0415

    if _is_dask_array(data):
        if data.ndim != 2:
            raise ValueError(MSG_ARRAY_NDIM.format(arg=arg, ndim=data.ndim))
        arr = data.rechunk({1: -1})
        return list(arr.to_delayed().ravel()), arr._meta, False  # noqa: SLF001
    if isinstance(data, dd.DataFrame):
        return list(data.to_delayed()), data._meta, True  # noqa: SLF001
    raise TypeError(MSG_DATA.format(t=type(data).__name__).replace("data ", f"{arg} ", 1))


def _check_split(split_every: Any) -> int:
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ValueError(MSG_SPLIT.format(value=split_every))
    return int(split_every)


def _tree(items: list, combine: Callable[[list], Any], split_every: int, name: str) -> Any:
    """Tree reduction of delayed ``items``: ``combine`` on groups of ``split_every`` per level."""
    from dask import delayed  # noqa: PLC0415

    if not items:
        return delayed(combine, pure=True)([])
    level = list(items)
    while len(level) > 1:
        level = [delayed(combine, pure=True, name=f"{name}-combine")(level[i:i + split_every])
                 for i in range(0, len(level), split_every)]
    return level[0]


def _compute(*objs: Any) -> tuple:
    import dask  # noqa: PLC0415

    return dask.compute(*objs)


# ------------------------------------------------------------------------------------------------
# bias: count state per partition, merged by value


def _dump_state(st: Any) -> dict:
    """A picklable copy of a bias ``State`` (which holds locks): vocabularies, flags and counts."""
    return {
        "n_rows": st.n_rows, "weighted": st.weighted, "model_kinds": st.model_kinds,
        "label_vocab": list(st.label_vocab.values), "label_max": st.label_max,
        "group_vocab": None if st.group_vocab is None else list(st.group_vocab.values),
        "group_missing": st.group_missing,
        "facets": {f: {"vocab": list(fs.vocab.values), "seen": fs.seen, "col_max": fs.col_max, "counts": fs.counts}
                   for f, fs in st.facets.items()},
    }


def _load_state(spec: Any, d: dict, *, counts: bool = True) -> Any:
    from clarion.bias._encode import Vocabulary  # noqa: PLC0415
    from clarion.bias._engine import State  # noqa: PLC0415

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


def _bias_encode(part: Any, spec: Any, compat: str, index: int, backend: str, n_threads: int | None,
                 keep: bool) -> tuple[dict, dict | None, int]:
    """Encode and count one partition: (state dump, the encoded columns when ``keep``, rows)."""
    from clarion.bias._engine import State, Table  # noqa: PLC0415

    if isinstance(part, np.ndarray):
        part = pd.DataFrame(part)
    table = Table(part)
    st = State(spec)
    try:
        enc = st.encode(table, compat)
    except ValueError as exc:
        raise ValueError(f"{exc} (row numbers count from the start of partition {index})") from None
    st.add_counts(st.count(enc, backend=backend, n_threads=n_threads), table.n)
    return _dump_state(st), (enc if keep else None), table.n


def _bias_partition(part: Any, spec: Any, compat: str, index: int, backend: str,
                    n_threads: int | None) -> tuple[dict, None]:
    """Counts of one partition (no bootstrap): (state dump, None)."""
    return _bias_encode(part, spec, compat, index, backend, n_threads, False)[0], None


def _encoded_len(item: tuple) -> int:
    return item[2]


def _bias_boot(item: tuple, spec: Any, offset: int, n_bootstrap: int, seed: int, backend: str,
               n_threads: int | None) -> tuple[dict, dict]:
    """Bootstrap replicate counts of an encoded partition whose first row is global row ``offset``."""
    dump, enc, _ = item
    st = _load_state(spec, dump)  # same vocabularies, so the same codes as ``enc``
    rep = st.count(enc, n_bootstrap=n_bootstrap, seed=seed, row_offset=offset, backend=backend, n_threads=n_threads)
    boot = _dump_state(st)
    for f, (_, _, _, counts) in rep.items():
        boot["facets"][f]["counts"] = counts
    return dump, boot


def _merge_dumped(spec: Any, dumps: list) -> dict | None:
    from clarion.bias._engine import merge_states  # noqa: PLC0415

    dumps = [d for d in dumps if d is not None]
    if not dumps:
        return None
    total = _load_state(spec, dumps[0])
    for d in dumps[1:]:
        merge_states(total, _load_state(spec, d))
    return _dump_state(total)


def _merge_pairs(spec: Any, items: list) -> tuple[dict | None, dict | None]:
    return _merge_dumped(spec, [a for a, _ in items]), _merge_dumped(spec, [b for _, b in items])


def _part_len(part: Any) -> int:
    return len(part)


class _DistFlipTests:
    """FlipTest of a report on a Dask collection, exact (facet a gathered once per facet, shipped
    once per worker; each partition queries its own facet-d rows)."""

    def __init__(self, parts: list, meta: Any, spec: Any, state_dump: dict, state: Any, compat: str,
                 split_every: int) -> None:
        from clarion.bias._engine import Table  # noqa: PLC0415
        from clarion.bias._report import _FlipTests  # noqa: PLC0415

        self.parts, self.spec, self.dump, self.state, self.compat = parts, spec, state_dump, state, compat
        self.split_every = split_every
        self._cache: dict = {}
        _FlipTests(Table(meta), spec, state, None, compat)  # validates ``features`` on the columns

    def _facet(self, facet: Any) -> dict:
        from dask import delayed  # noqa: PLC0415

        fs = self.state.facets[facet]
        _, _, sel_codes = self.state.entries(fs, self.compat)
        n_models = max(1, len(self.state.model_rows()[0]))
        combos = [(tuple(c), m) for c in sel_codes for m in range(n_models)]
        rows = [delayed(_ft_rows, pure=True)(p, self.spec, self.dump, self.compat, facet) for p in self.parts]
        ref = delayed(_ft_gather, pure=True)(rows)
        counts = [delayed(_ft_query, pure=True)(r, ref, combos) for r in rows]
        total = _tree(counts, _ft_add, self.split_every, "clarion-ft")
        (res,) = _compute(total)
        return res

    def __call__(self, facet: Any, codes: list, m: int) -> tuple[float, str | None]:
        if facet not in self._cache:
            self._cache[facet] = self._facet(facet)
        res = self._cache[facet]
        if "error" in res:
            return math.nan, res["error"]
        fp, fm, nd, na = res["counts"][(tuple(codes), m)]
        from clarion.bias._report import empty_facet_reason  # noqa: PLC0415

        reason = empty_facet_reason(self.compat, nd, na)
        if reason:
            return math.nan, reason
        if res.get("feature_error"):
            return math.nan, res["feature_error"]
        if (tuple(codes), m) in res["errors"]:
            return math.nan, res["errors"][(tuple(codes), m)]
        return (fp - fm) / nd, None


def _ft_rows(part: Any, spec: Any, dump: dict, compat: str, facet: Any) -> dict:
    """Facet codes (in the merged vocabulary), features and predicted-positive masks of a partition."""
    from clarion.bias._engine import Table  # noqa: PLC0415
    from clarion.bias._report import _FlipTests  # noqa: PLC0415

    if isinstance(part, np.ndarray):
        part = pd.DataFrame(part)
    table = Table(part)
    st = _load_state(spec, dump, counts=False)  # same codes as the merged state
    enc = st.encode(table, compat)
    ft = _FlipTests(table, spec, st, enc, compat)
    X, err = ft.features(facet)
    n_models = max(1, len(st.model_rows()[0])) if spec.models else 0
    P = np.column_stack([ft.pred(m) for m in range(n_models)]) if n_models else np.zeros((table.n, 0), bool)
    return {"codes": enc["facets"][facet][0], "X": X, "P": P, "error": err}


def _ft_gather(rows: list) -> dict:
    err = next((r["error"] for r in rows if r["error"]), None)
    codes = np.concatenate([r["codes"] for r in rows]) if rows else np.zeros(0, np.int32)
    if err:
        return {"codes": codes, "X": None, "P": None, "error": err}
    return {"codes": codes, "X": np.concatenate([r["X"] for r in rows]), "P": np.concatenate([r["P"] for r in rows]),
            "error": None}


def _ft_query(rows: dict, ref: dict, combos: list) -> dict:
    """(F+, F-, n_d, n_a) of this partition's facet-d rows against all of facet a, per combo."""
    from clarion.bias.fliptest import flip_test  # noqa: PLC0415

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


def _ft_add(items: list) -> dict:
    out: dict = {"counts": {}, "errors": {}, "feature_error": None}
    for it in items:
        out["feature_error"] = out["feature_error"] or it["feature_error"]
        out["errors"].update(it["errors"])
        for key, (fp, fm, nd, na) in it["counts"].items():
            a = out["counts"].get(key, (0, 0, 0, na))
            out["counts"][key] = (a[0] + fp, a[1] + fm, a[2] + nd, na)
    return out


def bias_report(data: Any, *, label: Any, facet: Any, facet_values: Any = None, facet_threshold: Any = None,
                label_values: Any = None, label_threshold: float | None = None, predicted_label: Any = None,
                probability_threshold: float | list[float] = 0.5, group_variable: Any = None,
                methods: str | list[str] = "all", stage: str = "both", weights: Any = None,
                compat: str = "clarion", features: list[str] | None = None, confidence: float | None = None,
                n_bootstrap: int = 1000, seed: int | None = None, backend: str = "auto",
                n_threads: int | None = None, split_every: int = 8) -> Any:
    """:func:`clarion.bias.report` on a Dask DataFrame (or 2-D Dask array), on the workers.

    Every partition is counted by the compiled kernel into its own count state; the states are
    merged by value in a tree reduction of ``split_every`` states per task and the metrics are
    evaluated once from the merged counts. Same arguments and result as
    :func:`clarion.bias.report`, except that ``predicted_label``, ``group_variable`` and
    ``weights`` must be column names (arrays cannot be split along the partitions).

    Parameters
    ----------
    data : dask.dataframe.DataFrame or dask.array.Array
        The rows (a 2-D array's columns are named 0, 1, ...).
    label, facet, facet_values, facet_threshold, label_values, label_threshold, predicted_label, \
probability_threshold, group_variable, methods, stage, weights, compat, features, confidence, \
n_bootstrap, seed, backend, n_threads
        As in :func:`clarion.bias.report` (``backend`` / ``n_threads`` apply on each worker).
    split_every : int, default 8
        States merged per reduction task.

    Returns
    -------
    BiasReport
        Identical to the single-machine report of the same rows (bit for bit for unweighted
        counts and their bootstrap intervals; weighted counts are float sums in another order).

    Raises
    ------
    ValueError, TypeError
        As :func:`clarion.bias.report`; errors raised on a worker name the partition.
    """
    from dask import delayed  # noqa: PLC0415

    from clarion.bias._engine import Spec, normalize_methods  # noqa: PLC0415
    from clarion.bias._report import _check_bootstrap  # noqa: PLC0415

    if compat not in ("clarion", "smclarify"):
        raise ValueError(f"compat must be 'clarion' or 'smclarify', got {compat!r}")
    split_every = _check_split(split_every)
    _check_bootstrap(confidence, n_bootstrap, seed)
    _check_sources(predicted_label, group_variable, weights)
    spec = Spec.build(label=label, facet=facet, facet_values=facet_values, facet_threshold=facet_threshold,
                      label_values=label_values, label_threshold=label_threshold, predicted_label=predicted_label,
                      probability_threshold=probability_threshold, group_variable=group_variable, weights=weights,
                      features=features)
    _, post_names = normalize_methods(methods, stage, bool(spec.models))
    frame = _frame_of(data)
    parts = list(frame.to_delayed())
    meta = frame._meta  # noqa: SLF001
    _check_columns(meta, spec)
    if confidence is None:
        counted = [delayed(_bias_partition, pure=True)(p, spec, compat, i, backend, n_threads)
                   for i, p in enumerate(parts)]
    else:
        # Replicate weights are drawn from the global row index, so each partition needs the rows
        # before it: encode + count once, keep the (small) encoded columns on the workers, learn
        # the lengths, then count the replicates from the kept encodings (the data is read once).
        import dask  # noqa: PLC0415

        encoded = list(dask.persist(*[delayed(_bias_encode, pure=True)(p, spec, compat, i, backend, n_threads, True)
                                      for i, p in enumerate(parts)]))
        lengths = _compute(*[delayed(_encoded_len, pure=True)(e) for e in encoded])
        offsets = [int(o) for o in np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)[:-1]])]
        seed_i = 0 if seed is None else int(seed)
        counted = [delayed(_bias_boot, pure=True)(e, spec, offsets[i], int(n_bootstrap), seed_i, backend, n_threads)
                   for i, e in enumerate(encoded)]
    total = _tree(counted, functools.partial(_merge_pairs, spec), split_every, "clarion-bias")
    (merged, boot_merged), = _compute(total)
    from clarion.bias._engine import State, merge_states  # noqa: PLC0415

    state = State(spec) if merged is None else _load_state(spec, merged)
    boot = None
    if confidence is not None:
        if boot_merged is None:
            raise ValueError("data has no rows; bootstrap intervals need rows")
        aligned = _load_state(spec, merged, counts=False)  # the merged state's codes
        merge_states(aligned, _load_state(spec, boot_merged))
        boot = {f: fs.counts for f, fs in aligned.facets.items()}
    ft = None
    if "FT" in post_names:
        ft = _DistFlipTests(parts, meta, spec, merged if merged is not None else _dump_state(state), state, compat,
                            split_every)
    return state.assemble(methods=methods, stage=stage, compat=compat, boot=boot, confidence=confidence, ft=ft,
                          n_bootstrap=int(n_bootstrap) if confidence is not None else 0)


def _check_sources(predicted_label: Any, group_variable: Any, weights: Any) -> None:
    def is_name(v: Any) -> bool:
        return isinstance(v, str) or (isinstance(v, (int, np.integer)) and not isinstance(v, bool))

    if predicted_label is not None:
        srcs = (list(predicted_label.values()) if isinstance(predicted_label, dict)
                else list(predicted_label) if isinstance(predicted_label, (list, tuple)) else [predicted_label])
        for s in srcs:
            if not is_name(s):
                raise ValueError(MSG_SOURCE.format(arg="predicted_label", kind=type(s).__name__))
    for arg, v in (("group_variable", group_variable), ("weights", weights)):
        if v is not None and not is_name(v):
            raise ValueError(MSG_SOURCE.format(arg=arg, kind=type(v).__name__))


def _check_columns(meta: pd.DataFrame, spec: Any) -> None:
    """Missing columns fail on the client, before any task runs (same message as one machine)."""
    from clarion.bias._engine import Table  # noqa: PLC0415

    t = Table(meta)
    t.col(spec.label, "label")
    for f in spec.facets:
        t.col(f, "facet")
    for name, src in spec.models:
        t.source(src, "predicted_label")
    if spec.group_variable is not None:
        t.source(spec.group_variable, "group_variable")
    if spec.weights is not None:
        t.source(spec.weights, "weights")


# ------------------------------------------------------------------------------------------------
# Kernel SHAP: the explainer is one task result, shipped once per worker


def _explain_part(explainer: Any, part: Any, return_std: bool) -> tuple:
    e = explainer.explain(part, return_std=return_std)
    per_row = np.ndim(e.expected_value) == e.values.ndim - 1
    return e.values, e.std, (np.asarray(e.expected_value) if per_row else None), part


def explain(explainer: Any, X: Any, *, return_std: bool = False,
            progress: Callable[[int, int], None] | None = None) -> Any:
    """:meth:`clarion.explain.KernelShap.explain` on a Dask DataFrame or 2-D Dask array.

    The explainer (its coalition plan, operator, background and model) becomes one task result
    that Dask ships once to each worker; every partition is explained there with the same plan,
    so each row's attributions equal the single-machine ones (bit for bit when the model's output
    for a row does not depend on the rest of its batch; BLAS-based models can differ in the last
    bit, as they do between batch sizes on one machine). The local values are gathered into
    the returned :class:`~clarion.explain.Explanation` (with ``data`` the computed rows); to keep
    them on the cluster use :func:`shap_frame` and write it with ``to_parquet``.

    Parameters
    ----------
    explainer : KernelShap
    X : dask.dataframe.DataFrame or dask.array.Array
        Rows to explain, with the background's columns.
    return_std : bool, default False
        As in :meth:`KernelShap.explain`.
    progress : callable, optional
        ``progress(done, total)`` in rows, called as partitions finish (with a distributed
        client; otherwise once at the end).

    Returns
    -------
    Explanation
    """
    from dask import delayed  # noqa: PLC0415

    from clarion.explain._kernel_shap import Explanation  # noqa: PLC0415

    parts, meta, is_frame = _partitions(X, "X")
    expl = delayed(explainer, pure=True, traverse=False)
    tasks = [delayed(_explain_part, pure=True)(expl, p, return_std) for p in parts]
    results = _run_with_progress(tasks, progress, [delayed(_part_len, pure=True)(p) for p in parts])
    data = [r[3] for r in results]
    values = np.concatenate([r[0] for r in results]) if results else _empty_values(explainer)
    std = None
    if return_std:
        std = np.concatenate([r[1] for r in results]) if results else np.zeros_like(values)
    if results and results[0][2] is not None:
        expected = np.concatenate([r[2] for r in results])
    else:
        expected = explainer.expected_value
    rows = (pd.concat(list(data)) if is_frame else _concat_blocks(data)) if data else meta
    return Explanation(np.ascontiguousarray(values), expected, explainer.feature_names, rows,
                       output_names=explainer.output_names, std=std, exact=explainer.exact_,
                       num_samples=explainer.num_samples_, player_columns=explainer._player_columns)  # noqa: SLF001


def _concat_blocks(blocks: list) -> Any:
    if hasattr(blocks[0], "__cuda_array_interface__"):
        import cupy  # noqa: PLC0415 - device partitions only

        return cupy.concatenate(blocks)
    return np.concatenate(blocks)


def _empty_values(explainer: Any) -> np.ndarray:
    D = explainer._predict.n_outputs  # noqa: SLF001
    if explainer._predict.vector_out:  # noqa: SLF001
        return np.zeros((0, explainer.M))
    return np.zeros((0, explainer.M, D))


def _run_with_progress(tasks: list, progress: Callable[[int, int], None] | None, lengths: list) -> list:
    if progress is None:
        return list(_compute(*tasks))
    try:
        from distributed import as_completed, get_client  # noqa: PLC0415

        client = get_client()
    except (ImportError, ValueError):
        out = list(_compute(*tasks, *lengths))
        n = len(tasks)
        total = int(sum(out[n:]))
        progress(total, total)
        return out[:n]
    lens = client.compute(lengths)
    futs = client.compute(tasks)
    total = int(sum(client.gather(lens)))
    done = 0
    for fut in as_completed(futs):
        done += len(fut.result()[0])
        progress(done, total)
    return client.gather(futs)


def _shap_columns(explainer: Any) -> list[str]:
    names = [str(n) for n in explainer.feature_names]
    if explainer._predict.vector_out:  # noqa: SLF001
        return names
    outs = explainer.output_names
    D = explainer._predict.n_outputs  # noqa: SLF001
    outs = list(outs) if outs is not None and len(outs) == D else list(range(D))
    return [f"{o}/{n}" for o in outs for n in names]


def _shap_part_frame(part: Any, explainer: Any, columns: list[str]) -> pd.DataFrame:
    e = explainer.explain(part)
    v = e.values
    if v.ndim == 3:
        N, M, D = v.shape
        v = v.transpose(0, 2, 1).reshape(N, D * M)
    index = part.index if isinstance(part, pd.DataFrame) else None
    return pd.DataFrame(np.ascontiguousarray(v), columns=columns, index=index)


def shap_frame(explainer: Any, X: Any) -> Any:
    """Local attributions of a Dask DataFrame / array as a lazy Dask DataFrame (one per partition).

    Nothing is computed until the result is used, so ``shap_frame(e, X).to_parquet(path)``
    writes one Parquet file per partition from the workers without collecting the values on the
    client. Columns are the feature names for a one-output model, else ``"output/feature"``;
    the index is ``X``'s (a range per block for an array).

    Parameters
    ----------
    explainer : KernelShap
    X : dask.dataframe.DataFrame or dask.array.Array

    Returns
    -------
    dask.dataframe.DataFrame
        float64 columns, one row per row of ``X``, values identical to
        ``explainer.explain(X).to_frame()``.
    """
    from dask import delayed  # noqa: PLC0415

    columns = _shap_columns(explainer)
    meta = pd.DataFrame({c: pd.Series([], dtype=np.float64) for c in columns})
    expl = delayed(explainer, pure=True, traverse=False)
    frame = _frame_of(X, "X") if _is_dask_array(X) else X
    if _is_dask_array(X):
        arr = X.rechunk({1: -1})
        import dask.dataframe as dd  # noqa: PLC0415

        blocks = [delayed(_shap_part_frame, pure=True)(b, expl, columns) for b in arr.to_delayed().ravel()]
        return dd.from_delayed(blocks, meta=meta, verify_meta=False)
    _partitions(frame, "X")
    return frame.map_partitions(_shap_part_frame, expl, columns, meta=meta, enforce_metadata=False)


# ------------------------------------------------------------------------------------------------
# partial dependence: gathered grid columns, per-partition partial sums


def _pd_column(codec: Any, j: int, s: Any) -> np.ndarray:
    """Column j of the data in the codec's code space (as ``TabularCodec.encode`` writes it)."""
    from clarion.explain._tabular import _BOOL, _NUM  # noqa: PLC0415

    if not codec.is_frame:
        return np.asarray(s, dtype=codec.dtype)
    kind = codec.kinds[j]
    if kind == _NUM:
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if kind == _BOOL:
        return s.to_numpy(dtype=np.float64)
    return codec._codes(j, s)  # noqa: SLF001


def _pd_part(part: Any, codec: Any, predict: Any, grids: list, N: int, budget: int, threads: int,
             backend: str) -> list:
    """Sum over this partition's rows of f(x with x_j := v), divided by the global N, per grid."""
    from clarion import _backend  # noqa: PLC0415
    from clarion.explain import _kernels  # noqa: PLC0415
    from clarion.explain._common import bytes_per_row  # noqa: PLC0415

    Xm = codec.encode(part, "X")
    n, P = Xm.shape
    out = []
    if n == 0:
        return [None] * len(grids)
    impl = _backend.resolve(backend, Xm)
    xp = np
    if impl == "cuda":
        import cupy  # noqa: PLC0415

        xp = cupy
    D = predict.n_outputs
    rows_per_batch = max(1, budget // bytes_per_row(P, Xm.dtype.itemsize, D, codec.is_frame))
    bg_rows = min(n, rows_per_batch)
    Z = xp.asarray(np.array([[1, 0]], dtype=np.uint8))
    for j, gx in grids:
        G = gx.shape[0]
        gxd = xp.asarray(gx)
        cp = np.ones(P, dtype=np.int32)
        cp[j] = 0
        cp = xp.asarray(cp)
        avg = xp.zeros((G, D))
        pairs = max(1, rows_per_batch // bg_rows)
        for k0 in range(0, n, bg_rows):
            k1 = min(n, k0 + bg_rows)
            pi = xp.full(k1 - k0, 1.0 / N)
            for q0 in range(0, G, pairs):
                q1 = min(G, q0 + pairs)
                syn = _kernels.mask(impl, gxd, Xm[k0:k1], Z, cp, q0, q1, threads)
                F = predict(codec.decode(syn), where=f" (partial dependence of {codec.columns[j]!r})")
                avg[q0:q1] += _kernels.reduce(impl, F, pi, 0, threads)
        out.append(avg.get() if impl == "cuda" else np.asarray(avg))
    return out


def _pd_add(items: list) -> list:
    items = [it for it in items if it is not None]
    if not items:
        return None
    out = [None if a is None else a.copy() for a in items[0]]
    for it in items[1:]:
        for g, a in enumerate(it):
            if a is not None:
                out[g] = a.copy() if out[g] is None else out[g] + a
    return out


def partial_dependence(model: Any, X: Any, features: Any, *, grid_resolution: int = 20,
                       percentiles: tuple[float, float] = (0.0, 1.0), memory_budget: int | str = "1GiB",
                       n_jobs: int | None = None, backend: str = "auto", split_every: int = 8) -> pd.DataFrame:
    r""":func:`clarion.explain.partial_dependence` on a Dask DataFrame or 2-D Dask array.

    .. math::

        \mathrm{PD}_j(v) = \sum_{p} \frac1N \sum_{n \in p} f(x_n \text{ with } x_{nj} := v)

    The grid of each feature is the single-machine one (bucket centres over the range / present
    values), from
    the feature's column gathered on the client; every partition then computes its partial sums
    for the whole grid with the masking and reduction kernels, and the (G x D) partial sums are
    added in a tree reduction. The result equals the single-machine table up to the order of
    the floating-point additions (relative differences ~1e-16).

    Parameters
    ----------
    model, X, features, grid_resolution, percentiles, memory_budget, n_jobs, backend
        As in :func:`clarion.explain.partial_dependence` (``X`` a Dask collection).
    split_every : int, default 8
        Partial sums added per reduction task.

    Returns
    -------
    DataFrame
        Columns ``feature``, ``value``, ``output``, ``average``.
    """
    from dask import delayed  # noqa: PLC0415

    from clarion.explain import _kernels  # noqa: PLC0415
    from clarion.explain._common import check_n_jobs, parse_budget  # noqa: PLC0415
    from clarion.explain._model import prediction_function  # noqa: PLC0415
    from clarion.explain._pdp import _grid, feature_columns, pdp_frame  # noqa: PLC0415
    from clarion.explain._tabular import TabularCodec  # noqa: PLC0415

    if isinstance(grid_resolution, bool) or not isinstance(grid_resolution, (int, np.integer)) or grid_resolution < 2:
        raise ValueError(f"grid_resolution must be an integer >= 2, got {grid_resolution!r}")
    lo, hi = percentiles
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"percentiles must satisfy 0 <= lo < hi <= 1, got {percentiles!r}")
    split_every = _check_split(split_every)
    predict = prediction_function(model)
    budget = parse_budget(memory_budget)
    threads = _kernels.n_threads(check_n_jobs(n_jobs))
    parts, meta, is_frame = _partitions(X, "X")
    codec = TabularCodec(meta if is_frame else np.empty((0, X.shape[1]), dtype=X.dtype), "X")
    cols = feature_columns(features, codec.columns)
    # the grid columns (and the first row) on the client, encoded in global first-seen order
    if is_frame:
        col_objs = [X[codec.columns[j]] for j in cols]
    else:
        col_objs = [X[:, j] for j in cols]
    head = X.head(1) if is_frame else X[:1]
    gathered = _compute(*col_objs, head, X.shape[0] if not is_frame else X.map_partitions(len).sum())
    N = int(gathered[-1])
    if N == 0:
        raise ValueError("X has no rows; partial dependence averages over the rows of X")
    head_np = gathered[-2]
    hostcols = [_pd_column(codec, j, s) for j, s in zip(cols, gathered[:-2])]
    template = codec.encode(head_np, "X")[:1]
    first = predict(codec.decode(template), where=" (on X row 0)")
    D = first.shape[1]
    outputs = predict.output_names if predict.output_names is not None and len(predict.output_names) == D \
        else list(range(D))
    grids, shown_all = [], []
    for j, col in zip(cols, hostcols):
        grid, shown = _grid(codec, template, col, j, int(grid_resolution), (float(lo), float(hi)))
        if grid.size == 0:
            continue
        gx = np.tile(template, (grid.size, 1)).astype(template.dtype)
        gx[:, j] = grid
        grids.append((j, gx))
        shown_all.append((j, shown))
    if not grids:
        return pd.DataFrame({"feature": [], "value": [], "output": [], "average": []})
    dc = delayed(codec, pure=True, traverse=False)
    dp = delayed(predict, pure=True, traverse=False)
    sums = [delayed(_pd_part, pure=True)(p, dc, dp, grids, N, budget, threads, backend) for p in parts]
    (avgs,) = _compute(_tree(sums, _pd_add, split_every, "clarion-pdp"))
    frames = []
    for (j, shown), avg in zip(shown_all, avgs):
        frames.append(pdp_frame(codec.columns[j], shown, outputs, avg))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------------
# clusters and the analysis job


def cluster_client(scheduler: str | None = None, n_workers: int | None = None, *,
                   threads_per_worker: int = 1) -> Any:
    """A ``distributed.Client`` for ``clarion analyze --dask-scheduler / --dask-workers``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:PORT``).
    n_workers : int, optional
        Without ``scheduler``: start a ``LocalCluster`` of this many worker processes on
        127.0.0.1 (dashboard off); closed with the client.

    Returns
    -------
    distributed.Client
        Use as a context manager; it becomes the default scheduler while open.
    """
    from distributed import Client, LocalCluster  # noqa: PLC0415

    if scheduler is not None and n_workers is not None:
        raise ValueError("give dask_scheduler or dask_workers, not both")
    if scheduler is not None:
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise ValueError(f"dask_scheduler must be an address like tcp://HOST:PORT, got {scheduler!r}")
        return Client(scheduler)
    if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
        raise ValueError(f"dask_workers must be a positive integer, got {n_workers!r}")
    import dask  # noqa: PLC0415

    with dask.config.set({NANNY_TRIM_KEY: None}):  # see NANNY_TRIM_KEY
        cluster = LocalCluster(n_workers=int(n_workers), threads_per_worker=threads_per_worker, processes=True,
                               host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    client._clarion_cluster = cluster  # noqa: SLF001 - closed together (Client.close does not close it)
    return client


#: Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc map and
#: unmap every buffer above 128 KiB: the explainers' batch buffers are then page-faulted in on every
#: batch (Kernel SHAP ran ~1.6x slower in a worker). Local clusters started by clarion unset it
#: (``None`` unsets a variable in this Dask setting); docs/scaling.md says how for other clusters.
NANNY_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

_ACTIVE: list = []  # clients opened by :class:`cluster` and not yet closed (bookkeeping only: nothing reads a client from here)


class cluster:  # noqa: N801 - a context manager used like a function
    """Context manager: a Dask client for clarion's analysis job (``clarion analyze --dask-*``).

    ``with cluster(scheduler=..., n_workers=...) as client:`` opens :func:`cluster_client` (or
    gives None when both are None; ``cluster(client=c)`` gives an open client and leaves it open),
    and closes it (with the local cluster it started) on exit. Pass the client on explicitly, e.g.
    ``clarion.analyze(..., dask_client=client)``: there is no implicit default client.
    """

    def __init__(self, scheduler: str | None = None, n_workers: int | None = None, *, client: Any = None) -> None:
        if client is not None and (scheduler is not None or n_workers is not None):
            raise ValueError("give client, or dask_scheduler / dask_workers, not both")
        self.scheduler, self.n_workers = scheduler, n_workers
        self.client, self._own = client, client is None

    def __enter__(self) -> Any:
        if self.client is None:
            if self.scheduler is None and self.n_workers is None:
                return None
            self.client = cluster_client(self.scheduler, self.n_workers)
        _ACTIVE.append(self.client)
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is None:
            return
        _ACTIVE.remove(self.client)
        if self._own:
            c = getattr(self.client, "_clarion_cluster", None)
            self.client.close()
            if c is not None:
                c.close()
            self.client = None


def on_cluster(frame: Any, *, client: Any = None, rows_per_partition: int = 64) -> Any:
    """``frame`` as a Dask DataFrame spread over the workers of ``client``, or ``frame`` itself
    without a client (or when it is too small to split).

    The analysis job passes the rows it explains through this function when it is given a client,
    so that ``KernelShap.explain`` / ``partial_dependence`` run partition by partition on the
    workers (same numbers). Column dtypes are kept as they are (no conversion to Arrow strings).
    """
    if client is None or not isinstance(frame, pd.DataFrame) or len(frame) < 2:
        return frame
    import dask  # noqa: PLC0415
    import dask.dataframe as dd  # noqa: PLC0415

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    nparts = int(min(max(1, len(frame) // max(1, rows_per_partition)), 4 * n_workers))
    if nparts < 2:
        return frame
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_pandas(frame, npartitions=nparts, sort=False)


def analyze(*args: Any, dask_scheduler: str | None = None, dask_workers: int | None = None, **kwargs: Any) -> Any:
    """:func:`clarion.analyze` with its model work (Kernel SHAP, partial dependence) on Dask.

    Opens :class:`cluster` (a running scheduler, or a local cluster of ``dask_workers``
    processes), runs the analysis job, and closes it. The data is read and counted for bias on
    the client as in a local run; the rows to explain are split into partitions that the workers
    explain with the same coalition plan, so the outputs are the local run's.

    Parameters
    ----------
    *args, **kwargs
        Passed to :func:`clarion.analyze` (with ``dask_client`` the opened client). Kept for
        compatibility: ``with cluster(...) as client: clarion.analyze(..., dask_client=client)``
        is the same.
    dask_scheduler : str, optional
        ``tcp://HOST:PORT`` of a running scheduler.
    dask_workers : int, optional
        Start a local cluster of this many worker processes instead.

    Returns
    -------
    AnalysisResult
    """
    import clarion  # noqa: PLC0415 - the public entry point (clarion.analyze), not the job's modules

    with cluster(dask_scheduler, dask_workers) as client:
        return clarion.analyze(*args, dask_client=client, **kwargs)
