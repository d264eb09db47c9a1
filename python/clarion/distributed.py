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

MSG_SOURCE = "{arg}: with a Dask collection give column names (every partition must hold the column); got {kind}"
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
    import dask

    return bool(dask.is_dask_collection(x))


def _is_dask_array(x: Any) -> bool:
    import dask.array as da

    return isinstance(x, da.Array)


def _frame_of(data: Any, arg: str = "data") -> Any:
    """A Dask DataFrame for a Dask DataFrame, or a 2-D Dask array (columns 0..P-1)."""
    import dask.dataframe as dd

    if _is_dask_array(data):
        if data.ndim != 2:
            raise ValueError(MSG_ARRAY_NDIM.format(arg=arg, ndim=data.ndim))
        return dd.from_dask_array(data.rechunk({1: -1}))
    if isinstance(data, dd.DataFrame):
        return data
    raise TypeError(MSG_DATA.format(t=type(data).__name__))


def _partitions(data: Any, arg: str) -> tuple[list, Any, bool]:
    """(delayed partitions, meta, is_frame): pandas frames, or 2-D array blocks for an array."""
    import dask.dataframe as dd

    if _is_dask_array(data):
        if data.ndim != 2:
            raise ValueError(MSG_ARRAY_NDIM.format(arg=arg, ndim=data.ndim))
        arr = data.rechunk({1: -1})
        return list(arr.to_delayed().ravel()), arr._meta, False
    if isinstance(data, dd.DataFrame):
        return list(data.to_delayed()), data._meta, True
    raise TypeError(MSG_DATA.format(t=type(data).__name__).replace("data ", f"{arg} ", 1))


def _check_split(split_every: Any) -> int:
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ValueError(MSG_SPLIT.format(value=split_every))
    return int(split_every)


def _tree(items: list, combine: Callable[[list], Any], split_every: int, name: str) -> Any:
    """Tree reduction of delayed ``items``: ``combine`` on groups of ``split_every`` per level."""
    from dask import delayed

    if not items:
        return delayed(combine, pure=True)([])
    level = list(items)
    while len(level) > 1:
        level = [
            delayed(combine, pure=True, name=f"{name}-combine")(level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level[0]


def _compute(*objs: Any) -> tuple:
    import dask

    return dask.compute(*objs)


# ------------------------------------------------------------------------------------------------
# bias: count state per partition, merged by value (the operations are clarion.bias.partition's)


def _part_len(part: Any) -> int:
    return len(part)


class _DistFlipTests:
    """FlipTest of a report on a Dask collection, exact: the schedule of
    :mod:`clarion.bias.partition`'s FlipTest operations (facet a gathered once per facet, shipped
    once per worker; each partition queries its own facet-d rows)."""

    def __init__(
        self, parts: list, meta: Any, spec: Any, state_dump: dict, state: Any, compat: str, split_every: int
    ) -> None:
        from clarion.bias import partition as bp

        self.parts, self.spec, self.dump, self.state, self.compat = parts, spec, state_dump, state, compat
        self.split_every = split_every
        self._cache: dict = {}
        bp.check_flip_features(meta, spec, state, compat)

    def _facet(self, facet: Any) -> dict:
        from dask import delayed

        from clarion.bias import partition as bp

        combos = bp.flip_combos(self.state, facet, self.compat)
        rows = [delayed(bp.flip_rows, pure=True)(p, self.spec, self.dump, self.compat, facet) for p in self.parts]
        ref = delayed(bp.flip_gather, pure=True)(rows)
        counts = [delayed(bp.flip_query, pure=True)(r, ref, combos) for r in rows]
        total = _tree(counts, bp.flip_add, self.split_every, "clarion-ft")
        (res,) = _compute(total)
        return res

    def __call__(self, facet: Any, codes: list, m: int) -> tuple[float, str | None]:
        from clarion.bias import partition as bp

        if facet not in self._cache:
            self._cache[facet] = self._facet(facet)
        return bp.flip_result(self._cache[facet], codes, m, self.compat)


def bias_report(
    data: Any,
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
    methods: str | list[str] = "all",
    stage: str = "both",
    weights: Any = None,
    compat: str = "clarion",
    features: list[str] | None = None,
    confidence: float | None = None,
    n_bootstrap: int = 1000,
    seed: int | None = None,
    backend: str = "auto",
    n_threads: int | None = None,
    split_every: int = 8,
) -> Any:
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
    from dask import delayed

    from clarion.bias import partition as bp

    if compat not in ("clarion", "smclarify"):
        raise ValueError(f"compat must be 'clarion' or 'smclarify', got {compat!r}")
    split_every = _check_split(split_every)
    bp.check_bootstrap(confidence, n_bootstrap, seed)
    _check_sources(predicted_label, group_variable, weights)
    spec = bp.Spec.build(
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
        features=features,
    )
    _, post_names = bp.normalize_methods(methods, stage, bool(spec.models))
    frame = _frame_of(data)
    parts = list(frame.to_delayed())
    meta = frame._meta
    bp.check_columns(meta, spec)
    count = delayed(bp.count_partition, pure=True)
    if confidence is None:
        counted = [
            count(p, spec, compat, index=i, backend=backend, n_threads=n_threads)[0] for i, p in enumerate(parts)
        ]
        merged = _compute(_tree(counted, functools.partial(bp.merge_state_dicts, spec), split_every, "clarion-bias"))[0]
        boot_merged = None
    else:
        # Replicate weights are drawn from the global row index, so each partition needs the rows
        # before it: encode + count once, keep the (small) encoded columns on the workers, learn
        # the lengths, then count the replicates from the kept encodings (the data is read once).
        import dask

        encoded = list(
            dask.persist(
                *[
                    count(p, spec, compat, index=i, backend=backend, n_threads=n_threads, keep=True)
                    for i, p in enumerate(parts)
                ]
            )
        )
        lengths = _compute(*[e[2] for e in encoded])
        offsets = [int(o) for o in np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)[:-1]])]
        seed_i = 0 if seed is None else int(seed)
        counted = [
            delayed(bp.bootstrap_partition, pure=True)(
                e, spec, offsets[i], int(n_bootstrap), seed_i, backend, n_threads
            )
            for i, e in enumerate(encoded)
        ]
        total = _tree(counted, functools.partial(bp.merge_pairs, spec), split_every, "clarion-bias")
        ((merged, boot_merged),) = _compute(total)
    ft = None
    if "FT" in post_names:
        state = bp.State(spec) if merged is None else bp.state_from_dict(spec, merged)
        ft = _DistFlipTests(
            parts, meta, spec, merged if merged is not None else bp.state_to_dict(state), state, compat, split_every
        )
    return bp.report_from_states(
        spec,
        merged,
        boot_merged,
        methods=methods,
        stage=stage,
        compat=compat,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        ft=ft,
    )


def _check_sources(predicted_label: Any, group_variable: Any, weights: Any) -> None:
    def is_name(v: Any) -> bool:
        return isinstance(v, str) or (isinstance(v, (int, np.integer)) and not isinstance(v, bool))

    if predicted_label is not None:
        srcs = (
            list(predicted_label.values())
            if isinstance(predicted_label, dict)
            else list(predicted_label)
            if isinstance(predicted_label, (list, tuple))
            else [predicted_label]
        )
        for s in srcs:
            if not is_name(s):
                raise ValueError(MSG_SOURCE.format(arg="predicted_label", kind=type(s).__name__))
    for arg, v in (("group_variable", group_variable), ("weights", weights)):
        if v is not None and not is_name(v):
            raise ValueError(MSG_SOURCE.format(arg=arg, kind=type(v).__name__))


# ------------------------------------------------------------------------------------------------
# Kernel SHAP: the explainer is one task result, shipped once per worker


def explain(
    explainer: Any, X: Any, *, return_std: bool = False, progress: Callable[[int, int], None] | None = None
) -> Any:
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
    from dask import delayed

    from clarion.explain import partition as ep

    parts, meta, is_frame = _partitions(X, "X")
    expl = delayed(explainer, pure=True, traverse=False)
    tasks = [delayed(ep.explain_partition, pure=True)(expl, p, return_std) for p in parts]
    results = _run_with_progress(tasks, progress, [delayed(_part_len, pure=True)(p) for p in parts])
    data = [r[3] for r in results]
    values = np.concatenate([r[0] for r in results]) if results else ep.empty_values(explainer)
    std = None
    if return_std:
        std = np.concatenate([r[1] for r in results]) if results else np.zeros_like(values)
    if results and results[0][2] is not None:
        expected = np.concatenate([r[2] for r in results])
    else:
        expected = explainer.expected_value
    row_samples = None  # num_samples="auto": coalitions evaluated per row
    if results and results[0][4] is not None:
        row_samples = np.concatenate([r[4] for r in results])
    rows = (pd.concat(list(data)) if is_frame else _concat_blocks(data)) if data else meta
    return ep.Explanation(
        np.ascontiguousarray(values),
        expected,
        explainer.feature_names,
        rows,
        output_names=explainer.output_names,
        std=std,
        exact=explainer.exact_,
        num_samples=int(row_samples.max()) if row_samples is not None and len(row_samples) else explainer.num_samples_,
        player_columns=explainer.player_columns,
        row_samples=row_samples,
    )


def _concat_blocks(blocks: list) -> Any:
    if hasattr(blocks[0], "__cuda_array_interface__"):
        import cupy  # device partitions only

        return cupy.concatenate(blocks)
    return np.concatenate(blocks)


def _run_with_progress(tasks: list, progress: Callable[[int, int], None] | None, lengths: list) -> list:
    if progress is None:
        return list(_compute(*tasks))
    try:
        from distributed import as_completed, get_client

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
    from dask import delayed

    from clarion.explain import partition as ep

    columns = ep.shap_columns(explainer)
    meta = pd.DataFrame({c: pd.Series([], dtype=np.float64) for c in columns})
    expl = delayed(explainer, pure=True, traverse=False)
    frame = _frame_of(X, "X") if _is_dask_array(X) else X
    if _is_dask_array(X):
        arr = X.rechunk({1: -1})
        import dask.dataframe as dd

        blocks = [delayed(ep.shap_partition_frame, pure=True)(b, expl, columns) for b in arr.to_delayed().ravel()]
        return dd.from_delayed(blocks, meta=meta, verify_meta=False)
    _partitions(frame, "X")
    return frame.map_partitions(ep.shap_partition_frame, expl, columns, meta=meta, enforce_metadata=False)


# ------------------------------------------------------------------------------------------------
# partial dependence: gathered grid columns, per-partition partial sums


def partial_dependence(
    model: Any,
    X: Any,
    features: Any,
    *,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.0, 1.0),
    memory_budget: int | str = "1GiB",
    n_threads: int | None = None,
    backend: str = "auto",
    split_every: int = 8,
    n_jobs: int | None = None,
) -> pd.DataFrame:
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
    model, X, features, grid_resolution, percentiles, memory_budget, n_threads, backend
        As in :func:`clarion.explain.partial_dependence` (``X`` a Dask collection).
    split_every : int, default 8
        Partial sums added per reduction task.
    n_jobs : int, optional
        Deprecated name of ``n_threads`` (:class:`DeprecationWarning`), as in
        :func:`clarion.explain.partial_dependence`.

    Returns
    -------
    DataFrame
        Columns ``feature``, ``value``, ``output``, ``average``.
    """
    from dask import delayed

    from clarion import options
    from clarion.explain import partition as ep

    grid_resolution, (lo, hi) = ep.check_pd_arguments(grid_resolution, percentiles)
    split_every = _check_split(split_every)
    predict = ep.prediction_function(model)
    budget = options.byte_size(memory_budget)
    threads = ep.kernel_threads(options.threads_alias(n_threads, n_jobs))
    parts, meta, is_frame = _partitions(X, "X")
    codec = ep.TabularCodec(meta if is_frame else np.empty((0, X.shape[1]), dtype=X.dtype), "X")
    cols = ep.feature_columns(features, codec.columns)
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
    hostcols = [ep.pd_column(codec, j, s) for j, s in zip(cols, gathered[:-2])]
    template = codec.encode(head_np, "X")[:1]
    first = predict(codec.decode(template), where=" (on X row 0)")
    D = first.shape[1]
    outputs = (
        predict.output_names if predict.output_names is not None and len(predict.output_names) == D else list(range(D))
    )
    grids, shown_all = [], []
    for j, col in zip(cols, hostcols):
        grid, shown = ep.pd_grid(codec, template, col, j, grid_resolution, (lo, hi))
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
    sums = [delayed(ep.pd_partial_sums, pure=True)(p, dc, dp, grids, N, budget, threads, backend) for p in parts]
    (avgs,) = _compute(_tree(sums, ep.pd_add, split_every, "clarion-pdp"))
    frames = []
    for (j, shown), avg in zip(shown_all, avgs):
        frames.append(ep.pdp_frame(codec.columns[j], shown, outputs, avg))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------------
# clusters and the analysis job


def cluster_client(scheduler: str | None = None, n_workers: int | None = None, *, threads_per_worker: int = 1) -> Any:
    """A ``distributed.Client`` for ``clarion analyze --dask-scheduler / --dask-workers``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:PORT``).
    n_workers : int, optional
        Without ``scheduler``: start a ``LocalCluster`` of this many worker processes on
        127.0.0.1 (its dashboard on a free port, never 8787); closed with the client.

    Returns
    -------
    distributed.Client
        Use as a context manager; it becomes the default scheduler while open.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None and n_workers is not None:
        raise ValueError("give dask_scheduler or dask_workers, not both")
    if scheduler is not None:
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise ValueError(f"dask_scheduler must be an address like tcp://HOST:PORT, got {scheduler!r}")
        return Client(scheduler)
    if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
        raise ValueError(f"dask_workers must be a positive integer, got {n_workers!r}")
    import dask

    with dask.config.set({NANNY_TRIM_KEY: None}):  # see NANNY_TRIM_KEY
        cluster = LocalCluster(
            n_workers=int(n_workers),
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        )
    client = Client(cluster)
    client._clarion_cluster = cluster  # closed together (Client.close does not close it)
    return client


#: Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc map and
#: unmap every buffer above 128 KiB: the explainers' batch buffers are then page-faulted in on every
#: batch (Kernel SHAP ran ~1.6x slower in a worker). Local clusters started by clarion unset it
#: (``None`` unsets a variable in this Dask setting); docs/scaling.md says how for other clusters.
NANNY_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

#: clients opened by :class:`cluster` and not yet closed (bookkeeping only: nothing reads a client
#: from here)
_ACTIVE: list = []


class cluster:  # a context manager used like a function
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
    import dask
    import dask.dataframe as dd

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
    import clarion  # the public entry point (clarion.analyze), not the job's modules

    with cluster(dask_scheduler, dask_workers) as client:
        return clarion.analyze(*args, dask_client=client, **kwargs)
