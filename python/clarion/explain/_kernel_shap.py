"""Kernel SHAP with one shared coalition plan and one linear operator (spec: kernel-shap.md)."""

from __future__ import annotations

import secrets
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from clarion import _backend, dispatch, options
from clarion.explain import _kernels
from clarion.explain._baseline import Baseline
from clarion.explain._common import MSG_INDEX, bytes_per_row
from clarion.explain._model import prediction_function
from clarion.explain._tabular import TabularCodec, densify

__all__ = ["Explanation", "KernelShap", "ShapConditioningWarning"]

MSG_EMPTY_BACKGROUND = "background has no rows (K = 0); Kernel SHAP needs at least one background row"
MSG_FEW_PLAYERS = (
    "Kernel SHAP needs at least 2 players (features or groups to explain), got M = {M}; with "
    "one player its attribution is simply f(x) - E f(background)"
)
MSG_NUM_SAMPLES = (
    f"num_samples must be None, 'auto' or an integer in [{options.MIN_NUM_SAMPLES}, "
    f"{options.MAX_NUM_SAMPLES:,}], got {{value!r}}"
)
MSG_ESTIMATOR = "estimator must be 'cubic' or 'shap', got {value!r}"
MSG_TOLERANCE = "tolerance must be a number in (0, 1), got {value!r}"
MSG_AUTO_SHAP = "num_samples='auto' needs estimator='cubic' (shap's scheme has no nested plans)"
MSG_PREDICTIONS = "predictions must be the model's outputs on X: finite numbers of shape {want}, got {got}"
MSG_LINK = "link must be 'identity' or 'logit', got {value!r}"
MSG_WEIGHTS = "background weights must be finite, >= 0 and not all 0 (one per background row)"
MSG_UNKNOWN_COLUMN = "{arg}: unknown column {col!r} (columns: {columns})"
MSG_UNKNOWN_PLAYER = "features_to_explain: unknown feature {name!r} (features: {names})"
MSG_GROUP_OVERLAP = "feature_groups: column {col!r} is in more than one group"
MSG_GROUP_EMPTY = "feature_groups: group {name!r} has no columns"
MSG_SEED = "seed must be None or an integer in [0, 2**64), got {value!r}"
MSG_AGG = "agg must be 'mean_abs', 'median' or 'mean_sq', got {value!r}"

_LINKS = {"identity": 0, "logit": 1}
_STD_GROUPS = 10
_ESTIMATORS = ("cubic", "shap")
#: num_samples="auto": rounds double the coalitions up to this many (or 2^M - 2)
AUTO_MAX_SAMPLES = 1 << 14
_HOST_BATCH_ROWS = 1 << 16
#: the relabelled designs' single pass holds the stacked operator (S K M float64); above this the
#: design stays shared, in every path (S = 4096, M = 30: K up to about 1000)
RELABEL_MAX_OPERATOR_BYTES = 1 << 30


def _pair_batches(
    total: int, K: int, rows_per_batch: int, impl: str, P: int, dtype: Any
) -> Iterator[tuple[int, int, Any]]:
    """The batches ``(q0, q1, buffer)`` of (row, coalition) pairs ``[q0, q1)`` of a pass over
    ``total`` pairs, each pair K synthetic rows of P columns (``buffer``: a reused host array
    for them, None off the CPU). Host batches start cache-sized (2^16 rows) and double while the
    throughput of a whole batch (the caller's mask + model + reduce + solve, timed from one
    ``yield`` to the next) improves by > 10%: models with a high per-call cost get large batches,
    cache-bound models stay small. Results do not depend on the batch sizes, so runs stay
    bit-identical; a model whose output for a row depends on the batch around it sees the same
    batches in every pass of this rule."""
    max_pairs = max(1, rows_per_batch // K)
    pairs = min(max_pairs, max(1, _HOST_BATCH_ROWS // K)) if impl == "cpu" else max_pairs
    tuning, best_rate = impl == "cpu" and pairs < max_pairs, 0.0
    buffer = None
    q0 = 0
    while q0 < total:
        q1 = min(total, q0 + pairs)
        t0 = time.perf_counter()
        if impl == "cpu" and (buffer is None or buffer.shape[0] < (q1 - q0) * K):
            buffer = np.empty(((q1 - q0) * K, P), dtype=dtype)
        yield q0, q1, buffer
        if tuning and q1 - q0 == pairs:
            rate = (q1 - q0) / max(time.perf_counter() - t0, 1e-9)
            if rate > 1.1 * best_rate:
                best_rate, pairs = rate, min(max_pairs, 2 * pairs)
            else:
                tuning, pairs = False, max(1, pairs // 2)
        q0 = q1


class ShapConditioningWarning(UserWarning):
    """The coalition plan does not determine the attributions (too few coalitions): the operator
    was computed by least squares (minimum-norm solution) instead of a Cholesky solve."""


class Explanation:
    """Local Kernel SHAP attributions of N rows, with Clarify's global aggregations.

    Attributes
    ----------
    values : ndarray
        ``(N, M)`` for a model with one output, ``(N, M, D)`` for D outputs. In link space
        (log-odds with ``link="logit"``); each row satisfies
        ``values.sum(axis=1) = g(f(x)) - expected_value``.
    expected_value : float or ndarray of shape (D,)
        The base value ``g(sum_k pi_k f(b_k))``. With ``features_to_explain`` it is per row
        (shape ``(N,)`` or ``(N, D)``): ``g(sum_k pi_k f(x_rest, b_k))``.
    feature_names : list of str
        One name per player (column, or group of columns).
    data : ndarray or DataFrame
        The explained rows as given.
    output_names : list or None
        Output labels (a classifier's ``classes_``) or None.
    std : ndarray or None
        Standard errors of ``values`` from the sampling (``explain(..., return_std=True)``), zeros
        in exact mode; None when not requested.
    exact : bool
        Whether every coalition was enumerated (exact Shapley values of the game).
    num_samples : int
        Coalitions evaluated per row (S; the largest over the rows with ``num_samples="auto"``).
    row_samples : ndarray or None
        With ``num_samples="auto"``: the coalitions evaluated for each row (``(N,)``), else None.
    """

    def __init__(
        self,
        values: np.ndarray,
        expected_value: Any,
        feature_names: list[str],
        data: Any,
        *,
        output_names: list[Any] | None = None,
        std: np.ndarray | None = None,
        exact: bool = False,
        num_samples: int = 0,
        player_columns: list[list[int]] | None = None,
        row_samples: np.ndarray | None = None,
    ):
        self.values = values
        self.expected_value = expected_value
        self.feature_names = list(feature_names)
        self.data = data
        self.output_names = output_names
        self.std = std
        self.exact = exact
        self.num_samples = num_samples
        self._player_columns = player_columns
        self.row_samples = row_samples

    def __repr__(self) -> str:
        return (
            f"Explanation(values shape {self.values.shape}, features {len(self.feature_names)}, "
            f"exact={self.exact}, num_samples={self.num_samples})"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: the shape, the base value and the global importance table."""
        import html

        head = html.escape(repr(self))
        try:
            g = self.global_importance("mean_abs")
        except ValueError:  # pragma: no cover - mean_abs is always valid
            g = None
        if g is None or len(g) == 0:
            return f"<div><p><code>{head}</code></p></div>"
        frame = g.head(20).to_frame() if isinstance(g, pd.Series) else g.head(20)
        rows = "".join(
            "<tr><th style='text-align:left'>{}</th>{}</tr>".format(
                html.escape(str(idx)),
                "".join(f"<td style='text-align:right'>{html.escape(f'{v:.4g}')}</td>" for v in row),
            )
            for idx, row in zip(frame.index, frame.to_numpy())
        )
        cols = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
        ev = np.asarray(self.expected_value, dtype=np.float64)
        base = html.escape(np.array2string(ev, precision=4) if ev.ndim and ev.size <= 8 else f"{ev.mean():.4g}")
        more = f"<p>… {len(g) - 20} more features</p>" if len(g) > 20 else ""
        return (
            f"<div><p><code>{head}</code><br>expected value: {base}</p>"
            f"<table><thead><tr><th>feature</th>{cols}</tr></thead><tbody>{rows}</tbody></table>{more}</div>"
        )

    def plot_bar(self, *, output: Any = None, max_display: int = 10, ax: Any = None) -> Any:
        """Global importance bars (mean |SHAP value|), shap's look: :func:`clarion.explain.plots.bar`."""
        from clarion.explain import plots

        return plots.bar(self, output=output, max_display=max_display, ax=ax)

    def plot_beeswarm(self, *, output: Any = None, max_display: int = 10, ax: Any = None) -> Any:
        """Every row's SHAP values coloured by feature value: :func:`clarion.explain.plots.beeswarm`."""
        from clarion.explain import plots

        return plots.beeswarm(self, output=output, max_display=max_display, ax=ax)

    def plot_dependence(self, feature: Any, *, output: Any = None, color_by: Any = None, ax: Any = None) -> Any:
        """SHAP value against feature value: :func:`clarion.explain.plots.dependence`."""
        from clarion.explain import plots

        return plots.dependence(self, feature, output=output, color_by=color_by, ax=ax)

    def _outputs(self) -> list[Any]:
        D = self.values.shape[2]
        return (
            list(self.output_names) if self.output_names is not None and len(self.output_names) == D else list(range(D))
        )

    def global_importance(self, agg: Literal["mean_abs", "median", "mean_sq"] = "mean_abs") -> pd.Series | pd.DataFrame:
        r"""Clarify's global SHAP values per feature over the N explained rows.

        .. math::

            \text{mean\_abs}_j = \frac1N \sum_n |\phi_{nj}|,\quad
            \text{mean\_sq}_j = \frac1N \sum_n \phi_{nj}^2,\quad
            \text{median}_j = \operatorname{median}_n \phi_{nj}\ \text{(signed)}

        Parameters
        ----------
        agg : {"mean_abs", "median", "mean_sq"}
            Aggregation, as Clarify's ``agg_method``.

        Returns
        -------
        Series or DataFrame
            A Series indexed by feature name for a one-output model, else a DataFrame with one
            column per output; sorted by importance, descending (by ``|median|`` for
            ``"median"``; by the mean over outputs for several outputs). NaN when N = 0.
        """
        if agg not in ("mean_abs", "median", "mean_sq"):
            raise ValueError(MSG_AGG.format(value=agg))
        v = self.values if self.values.ndim == 3 else self.values[:, :, None]
        if v.shape[0] == 0:
            g = np.full(v.shape[1:], np.nan)
        elif agg == "mean_abs":
            g = np.abs(v).mean(axis=0)
        elif agg == "mean_sq":
            g = (v**2).mean(axis=0)
        else:
            g = np.median(v, axis=0)
        key = np.abs(g).mean(axis=1) if agg == "median" else g.mean(axis=1)
        order = np.argsort(-np.nan_to_num(key, nan=-np.inf), kind="stable")
        names = [self.feature_names[i] for i in order]
        if self.values.ndim == 2:
            return pd.Series(g[order, 0], index=pd.Index(names, name="feature"), name=agg)
        return pd.DataFrame(
            g[order], index=pd.Index(names, name="feature"), columns=pd.Index(self._outputs(), name="output")
        )

    def to_frame(self) -> pd.DataFrame:
        """Local values, one row per explained row (Clarify's ``out.csv`` layout).

        Columns are feature names for a one-output model, else a ``(output, feature)``
        MultiIndex. The index is the DataFrame index of ``data`` when it had one.
        """
        index = self.data.index if isinstance(self.data, pd.DataFrame) else None
        if self.values.ndim == 2:
            return pd.DataFrame(self.values, columns=self.feature_names, index=index)
        N, M, D = self.values.shape
        cols = pd.MultiIndex.from_product([self._outputs(), self.feature_names], names=["output", "feature"])
        return pd.DataFrame(self.values.transpose(0, 2, 1).reshape(N, D * M), columns=cols, index=index)

    def to_shap(self) -> Any:
        """A ``shap.Explanation`` (needs shap installed), so shap's plots work on the result."""
        try:
            import shap  # optional
        except ImportError as exc:  # pragma: no cover - exercised without shap
            raise ImportError("to_shap() needs the shap package (pip install shap)") from exc
        N = self.values.shape[0]
        ev = np.asarray(self.expected_value, dtype=np.float64)
        if ev.ndim == self.values.ndim - 1:  # already per row (features_to_explain)
            base = ev.copy()
        else:
            base = np.broadcast_to(ev, (N,) + ev.shape).copy()
        data = None
        if self._player_columns is not None and all(len(c) == 1 for c in self._player_columns):
            cols = [c[0] for c in self._player_columns]
            raw = self.data.to_numpy() if isinstance(self.data, pd.DataFrame) else np.asarray(self.data)
            data = raw[:, cols]
        kwargs = {}
        if self.values.ndim == 3:
            kwargs["output_names"] = [str(o) for o in self._outputs()]
        return shap.Explanation(
            values=self.values, base_values=base, data=data, feature_names=self.feature_names, **kwargs
        )


def _players(columns: list[Any], feature_groups: Any, features_to_explain: Any):
    """col_player [P] (int32, -1 = fixed to x), player names, player -> columns."""
    P = len(columns)
    names_str = [str(c) for c in columns]

    def col_index(col: Any, arg: str) -> int:
        if col in columns:
            return columns.index(col)
        if isinstance(col, str) and col in names_str:
            return names_str.index(col)
        if isinstance(col, (int, np.integer)) and not isinstance(col, bool):
            if 0 <= col < P:
                return int(col)
            raise ValueError(MSG_INDEX.format(arg=arg, index=col, n=P, what="columns", last=P - 1))
        raise ValueError(MSG_UNKNOWN_COLUMN.format(arg=arg, col=col, columns=columns))

    owner = [-1] * P
    groups: list[tuple[str, list[int]]] = []
    if feature_groups is not None:
        items = feature_groups.items() if isinstance(feature_groups, Mapping) else [(None, g) for g in feature_groups]
        for name, cols in items:
            if isinstance(cols, (str, int, np.integer)):
                cols = [cols]
            idx = [col_index(c, "feature_groups") for c in cols]
            if not idx:
                raise ValueError(MSG_GROUP_EMPTY.format(name=name))
            gname = str(name) if name is not None else "+".join(names_str[i] for i in idx)
            for i in idx:
                if owner[i] != -1:
                    raise ValueError(MSG_GROUP_OVERLAP.format(col=columns[i]))
                owner[i] = len(groups)
            groups.append((gname, sorted(set(idx))))
    players = list(groups)
    for i in range(P):
        if owner[i] == -1:
            players.append((names_str[i], [i]))
    players.sort(key=lambda p: p[1][0])
    if features_to_explain is not None:
        if isinstance(features_to_explain, (str, int, np.integer)):
            features_to_explain = [features_to_explain]
        pnames = [p[0] for p in players]
        keep = []
        for f in features_to_explain:
            if f in pnames:
                k = pnames.index(f)
            elif str(f) in pnames:
                k = pnames.index(str(f))
            elif isinstance(f, (int, np.integer)) and not isinstance(f, bool):
                if not 0 <= f < len(players):
                    raise ValueError(
                        MSG_INDEX.format(
                            arg="features_to_explain", index=f, n=len(players), what="features", last=len(players) - 1
                        )
                    )
                k = int(f)
            else:
                raise ValueError(MSG_UNKNOWN_PLAYER.format(name=f, names=pnames))
            if k not in keep:
                keep.append(k)
        players = [players[k] for k in sorted(keep)]
    col_player = np.full(P, -1, dtype=np.int32)
    for j, (_, cols) in enumerate(players):
        col_player[cols] = j
    return col_player, [p[0] for p in players], [p[1] for p in players]


class KernelShap:
    r"""Kernel SHAP attributions whose only real cost is the model.

    Explains a model's outputs by the Shapley values of the game
    :math:`v(z) = g\big(\sum_k \pi_k f(h(x, b_k, z))\big)` (interventional expectation over the
    background, link :math:`g` applied after the average, as shap and Clarify). One coalition
    plan (shap's scheme, seeded) is shared by all rows, so the constrained weighted least-squares
    solve is a fixed operator: :math:`\phi = L y + c\,\Delta` with
    :math:`y_s = v(z_s) - v(0)` and :math:`\Delta = v(1) - v(0)`. The compiled core writes the
    synthetic rows straight into model-sized batches (chunked to ``memory_budget``), averages the
    outputs over the background and applies the operator; the model is called once per batch.

    A player whose columns equal, in a row, their value in every background row (of positive
    weight) changes nothing when masked: it is a null player of that row and gets exactly 0, and
    the row's other players get the least-squares solution with it fixed at 0 (as shap, which
    drops such players per row), so the values still sum to :math:`\Delta`. In exact mode this is
    the Shapley value itself.

    Parameters
    ----------
    model : callable or scikit-learn estimator
        ``f(batch) -> (n,)`` or ``(n, D)``; a classifier (or Pipeline) is called through
        ``predict_proba``, another estimator through ``predict``. The batch is a numpy array, or
        a DataFrame with the background's columns and dtypes when the background is one
        (categorical and string columns are masked as codes and handed back with their dtypes,
        so a Pipeline with a OneHotEncoder works unchanged). A batch is only valid during the
        call: its memory is reused for the next batch, so a model must not keep a reference.
    background : ndarray, DataFrame, scipy.sparse matrix or Baseline
        K background rows (uniform weights), or a weighted :class:`Baseline` such as
        :func:`kmeans_baseline` returns. A sparse matrix is densified (it must fit in
        ``memory_budget`` dense; the rows to explain likewise).
    num_samples : int or "auto", optional
        Coalitions per row; default shap's ``2 M + 2048``, capped at :math:`2^M - 2`. At the cap
        every coalition is enumerated and the result is the exact Shapley value. The cubic
        estimator uses an even number (``num_samples // 2`` complement pairs). ``"auto"`` (cubic
        estimator): coalitions are added in rounds (doubling, from the first budget whose pairs
        are at least half the surrogate's coefficients, up to ``AUTO_MAX_SAMPLES`` = 16384 or
        :math:`2^M - 2`), reusing the model outputs of earlier rounds; a row stops when
        ``max_j std_j / (max_j phi_j - min_j phi_j) <= tolerance`` (worst output), so converged
        rows cost no more model calls (see docs/kernel-shap.md for how the tolerance maps to
        the error, measured).
    estimator : {"cubic", "shap"}, default "cubic"
        ``"cubic"``: complement pairs sampled without replacement, stratified by coalition size
        (small strata enumerated whole), each stratum carrying its exact Shapley-kernel mass, and a
        third-order surrogate fitted on them (:func:`clarion.explain._kernels.cubic_operator`),
        with damped fifth-order terms while ``S + M + 1 <= 4200`` (the dual form's size,
        :func:`clarion.explain._kernels.quintic_weight`): its attributions absorb the game's odd
        part up to degree 3 (5) and converge to the Shapley values. With the identity link, K >= 2
        background rows, a plan that is not exact and every column a player, background row k
        evaluates the plan with its players relabelled by a seeded permutation (row 0 keeps the
        plan), with the operator relabelled alike, so the K per-background games do not share one
        design: ``phi = sum_k pi_k (L[perm_k] (y_k - f(b_k)) + c[perm_k] (f(x) - f(b_k)))``, same
        model evaluations (docs/kernel-shap.md). About 2-10x lower error than
        shap's scheme at the same number of model evaluations (benchmarks/README.md; 1.6-2x on
        a small neural network at some budgets). For M > 31 the cubic terms are left out (too many
        coefficients) and the estimator is the first-order one on the same plan. ``"shap"``:
        shap's KernelExplainer scheme (sampling with replacement, merged duplicates), to
        reproduce its numbers (Clarify's).
    tolerance : float, default 0.01
        Stopping rule of ``num_samples="auto"`` (ignored otherwise).
    seed : int, optional
        Seed of the coalition plan; the same seed gives bit-identical results. None draws one
        (kept in ``seed_``).
    link : {"identity", "logit"}
        ``"logit"`` explains log-odds (Clarify's ``use_logit``), with probabilities clipped to
        ``[1e-15, 1 - 1e-15]``.
    paired : bool, default True
        Pair each sampled coalition with its complement (antithetic sampling, as shap); for
        ``estimator="shap"`` (the cubic estimator always samples pairs).
    feature_groups : mapping name -> columns, or list of column lists, optional
        Columns that act as one player (e.g. one-hot blocks). Other columns are players on their
        own. Players are ordered by their first column.
    features_to_explain : list of feature names or indices, optional
        Players to explain; all other columns always take the explained row's value (so the base
        value is the background average with those columns present, and
        ``sum(phi) = g(f(x)) - g(E f(x_rest, b))``).
    memory_budget : int or str, default "1GiB"
        Bytes for the synthetic rows of one model batch and their outputs (the model's own
        temporaries are not counted). At least one row's K synthetic rows form a batch. On the
        host, batches start at 2^16 rows and double (up to the budget) while throughput improves;
        results never depend on the batch sizes.
    n_threads : int, optional
        CPU threads of the compiled kernels: None (``CLARION_NUM_THREADS`` or all cores), -1
        (all cores) or a positive integer; does not parallelise the model.
    n_jobs : int, optional
        Deprecated name of ``n_threads`` (:class:`DeprecationWarning`).
    backend : {"auto", "numpy", "cpu", "cuda"}
        See :mod:`clarion._backend`. cupy arrays (background and X) use the CUDA kernels; the
        model then receives cupy batches and no synthetic row leaves the GPU.

    Attributes
    ----------
    expected_value : float or ndarray
        Base value ``g(E_pi f(b))``.
    feature_names : list of str
    num_samples_ : int
        Coalitions in the plan (S; with ``num_samples="auto"`` the first round's).
    exact_ : bool
        Whether the plan enumerates every coalition.
    estimator : str
        ``"cubic"`` or ``"shap"``.
    auto_ : bool
        Whether ``num_samples="auto"``.
    seed_ : int
    """

    def __init__(
        self,
        model: Any,
        background: Any,
        *,
        num_samples: int | Literal["auto"] | None = None,
        seed: int | None = None,
        link: Literal["identity", "logit"] = "identity",
        paired: bool = True,
        feature_groups: Mapping[str, Sequence[Any]] | Sequence[Sequence[Any]] | None = None,
        features_to_explain: Sequence[Any] | None = None,
        memory_budget: int | str = "1GiB",
        n_threads: int | None = None,
        backend: str = "auto",
        n_jobs: int | None = None,
        estimator: Literal["cubic", "shap"] = "cubic",
        tolerance: float = 0.01,
    ):
        self._predict = prediction_function(model)
        if estimator not in _ESTIMATORS:
            raise ValueError(MSG_ESTIMATOR.format(value=estimator))
        self.estimator = estimator
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
            raise ValueError(MSG_TOLERANCE.format(value=tolerance))
        self.tolerance = float(tolerance)
        self.auto_ = isinstance(num_samples, str) and num_samples == "auto"
        if self.auto_:
            if estimator != "cubic":
                raise ValueError(MSG_AUTO_SHAP)
            num_samples = None
        if link not in _LINKS:
            raise ValueError(MSG_LINK.format(value=link))
        self.link = link
        self._link = _LINKS[link]
        if not (isinstance(num_samples, str) and num_samples == "auto"):
            num_samples = options.num_samples(num_samples, message=MSG_NUM_SAMPLES)
        seed = options.seed(seed, message=MSG_SEED)
        if seed is None:
            seed = secrets.randbits(63)
        self.seed_ = int(seed)
        self.paired = bool(paired)
        self._budget = options.byte_size(memory_budget)
        self._n_threads = options.threads_alias(n_threads, n_jobs)
        self._threads = _kernels.n_threads(self._n_threads)
        self._backend_req = backend

        data, weights = (
            (background.data, background.weights) if isinstance(background, Baseline) else (background, None)
        )
        data = densify(data, "background", self._budget)
        self._codec = TabularCodec(data, "background")
        B = self._codec.encode(data, "background")
        K = B.shape[0]
        if K == 0:
            raise ValueError(MSG_EMPTY_BACKGROUND)
        self._impl = _backend.resolve(backend, B)
        if weights is None:
            pi = np.full(K, 1.0 / K)
        else:
            pi = np.asarray(weights, dtype=np.float64)
            if pi.shape != (K,) or not np.isfinite(pi).all() or (pi < 0).any() or pi.sum() <= 0:
                raise ValueError(MSG_WEIGHTS)
            pi = pi / pi.sum()
        self._pi_host = pi
        self._B = B
        self._col_player, self.feature_names, self._player_columns = _players(
            self._codec.columns, feature_groups, features_to_explain
        )
        M = len(self.feature_names)
        if M < 2:
            raise ValueError(MSG_FEW_PLAYERS.format(M=M))
        self.M = M
        max_samples = 2**M - 2 if M <= 30 else 2**30
        S_req = 2 * M + 2**11 if num_samples is None else int(num_samples)
        self._n_samples = min(S_req, max_samples)

        xp = self._xp()
        self._pi = xp.asarray(pi)
        Fb = self._predict(self._codec.decode(B), where=" (on the background)")
        self.output_names = self._predict.output_names
        base = _kernels.reduce(self._impl, Fb, self._pi, 0, self._threads)[0]
        self._base_raw = base
        self._base_link = xp.asarray(self._link_fn(base))

        self._plans: dict[int, tuple] = {}
        if self.auto_:
            Q = M + len(_kernels.cubic_terms(M))
            S1 = 512
            while S1 < Q and S1 < AUTO_MAX_SAMPLES:  # pairs >= half the coefficients
                S1 *= 2
            S_max = min(max_samples, AUTO_MAX_SAMPLES)
            self._rounds = [min(S1, S_max)]
            while self._rounds[-1] < S_max:
                self._rounds.append(min(2 * self._rounds[-1], S_max))
            self._n_samples = self._rounds[0]
        if estimator == "shap":
            Z, w, block = _kernels.coalition_plan(self._impl, M, self._n_samples, self.seed_, self.paired)
            L, c, status = _kernels.wls_operator(self._impl, Z, w)
        else:
            # auto: the first round needs the standard-error terms anyway (built once, not twice)
            Z, w, L, c, status = self._plan(self._n_samples, hat=self.auto_)[:5]
            block = np.full(Z.shape[0], -1, dtype=np.int64)
        if status:
            warnings.warn(
                f"the {Z.shape[0]} coalitions of the plan do not determine all {M} attributions "
                f"(num_samples={self._n_samples}); the operator was computed by least squares "
                "(minimum-norm solution). Increase num_samples.",
                ShapConditioningWarning,
                stacklevel=2,
            )
        self._Z, self._w, self._block, self._L, self._c = Z, w, block, L, c
        self._LT: np.ndarray | None = None  # L.T, C-contiguous (built on first use)
        self._status = status
        self._background_constants = None  # (constant-in-background mask, values), computed on first use
        self.num_samples_ = Z.shape[0]
        self.exact_ = M <= 30 and self.num_samples_ == 2**M - 2 and not self.auto_
        # One relabelled design per background row (issue 19): background row k evaluates the plan
        # with its players relabelled by perm_k, so the K per-background games do not share one
        # design; same model evaluations, same operator (relabelled). Only where the game splits
        # over the background rows (identity link) and every column is a player.
        self._relabel = (
            estimator == "cubic"
            and link == "identity"
            and K >= 2
            and not self.exact_
            and bool((self._col_player >= 0).all())
            # the stacked operators (one per plan size; auto: one per round)
            and sum(self._rounds if self.auto_ else [self.num_samples_]) * K * M * 8 <= RELABEL_MAX_OPERATOR_BYTES
        )
        self._perms = _kernels.background_permutations(M, K, self.seed_) if self._relabel else None
        self._stacked = None  # (column -> player map of the K blocks, background rows side by side)
        self._stacked_op: dict[int, tuple] = {}  # _stacked_operator() per plan size
        self._fb = xp.asarray(np.asarray(Fb.get() if self._impl == "cuda" else Fb, dtype=np.float64).reshape(K, -1))

    def _plan(self, n_samples: int, hat: bool) -> tuple:
        """The cubic estimator's plan and operator for ``n_samples`` coalitions, built once:
        ``(Z, w, L, c, status, extra, stratum, n_p, N_p)`` (``extra`` for the standard errors,
        None for an exact plan)."""
        key = int(n_samples)
        got = self._plans.get(key)
        if got is not None and (not hat or got[5] is not None or got[2] is None or self._is_exact(got[0])):
            return got
        Z, w, stratum, n_p, N_p = _kernels.stratified_plan(self.M, key, self.seed_)
        if self._is_exact(Z):
            if not self.auto_:  # every coalition: one order whatever the seed, so runs agree bitwise
                order = np.lexsort(Z.T[::-1])
                Z, w, stratum = Z[order], w[order], stratum[order]
            L, c, status = _kernels.wls_operator(self._impl, Z, w)
            extra = None
        else:
            L, c, status, extra = _kernels.cubic_operator(Z, w, hat=hat)
        got = (Z, w, L, c, status, extra, stratum, n_p, N_p)
        self._plans[key] = got
        return got

    def _is_exact(self, Z: np.ndarray) -> bool:
        return self.M <= 30 and Z.shape[0] == 2**self.M - 2

    # ---------------------------------------------------------------------------------------------
    def _xp(self):
        if self._impl == "cuda":
            import cupy

            return cupy
        return np

    def _link_fn(self, v: Any) -> Any:
        if self._link == 0:
            return v
        xp = self._xp()
        p = xp.clip(v, 1e-15, 1 - 1e-15)
        return xp.log(p / (1 - p))

    @property
    def n_outputs(self) -> int:
        """D, the number of model outputs explained (1 for a 1-D output)."""
        return self._predict.n_outputs

    @property
    def vector_out(self) -> bool:
        """Whether the model returns 1-D output (attributions are then ``(N, M)``, not ``(N, M, D)``)."""
        return self._predict.vector_out

    @property
    def player_columns(self) -> list[list[int]]:
        """The data columns of each player (feature or group), in player order."""
        return self._player_columns

    @property
    def expected_value(self) -> Any:
        ev = np.asarray(self._base_link.get() if hasattr(self._base_link, "get") else self._base_link)
        return float(ev[0]) if self._predict.vector_out else ev.copy()

    def _operators(self, return_std: bool):
        """Stacked transposed operators LT [S, Mo] and c [Mo]: the plan's operator first, then
        (return_std) one per group of sampled draws (spec 7.1)."""
        L, c = self._L, self._c
        if not return_std:
            if self._LT is None:  # the same for every call: transposed once
                self._LT = np.ascontiguousarray(L.T)
            return self._LT, c, 0
        sampled = self._block >= 0
        n_draws = int(self._block.max()) + 1 if sampled.any() else 0
        G = min(_STD_GROUPS, n_draws)
        if G < 2:
            return np.ascontiguousarray(L.T), c, G
        S, M = self._Z.shape
        LT = np.zeros((S, M * (G + 1)))
        cs = np.zeros(M * (G + 1))
        LT[:, :M], cs[:M] = L.T, c
        left = self._w[sampled].sum()
        for g in range(G):
            in_g = sampled & (self._block % G == g)
            sel = ~sampled | in_g
            wg = self._w.copy()
            wg[in_g] *= left / self._w[in_g].sum()
            Lg, cg, _ = _kernels.wls_operator(self._impl, self._Z[sel], wg[sel])
            LT[sel, (g + 1) * M : (g + 2) * M] = Lg.T
            cs[(g + 1) * M : (g + 2) * M] = cg
        return LT, cs, G

    def _null_players(self, Xm: Any) -> np.ndarray | None:
        """``(N, M)`` host mask of the players whose masking changes nothing for a row: every column
        of the player equals, in that row, its value in every background row of positive weight
        (NaN equal to NaN, as the masking copies it). Such a player is a null player of the row's
        game (its Shapley value is exactly 0). None when no row has one."""
        xp = self._xp()
        if self._background_constants is None:
            B = self._B.get() if self._impl == "cuda" else np.asarray(self._B)
            live = B[self._pi_host > 0]
            first = live[0]
            same = (live == first[None, :]) | (np.isnan(live) & np.isnan(first)[None, :])
            self._background_constants = (same.all(axis=0), first)
        const, first = self._background_constants
        if not const.any() or Xm.shape[0] == 0:
            return None
        cand = [j for j, cols in enumerate(self._player_columns) if const[cols].all()]
        if not cand:
            return None
        v = xp.asarray(first)
        eq = (Xm == v[None, :]) | (xp.isnan(Xm) & xp.isnan(v)[None, :])
        null = xp.zeros((Xm.shape[0], self.M), dtype=bool)
        for j in cand:
            null[:, j] = eq[:, self._player_columns[j]].all(axis=1)
        null = null.get() if self._impl == "cuda" else null
        return null if null.any() else None

    def _restricted_values(
        self,
        b: np.ndarray,
        delta: np.ndarray,
        null: np.ndarray,
        Z: np.ndarray | None = None,
        w: np.ndarray | None = None,
    ) -> np.ndarray:
        r"""Attributions of rows with null players: the constrained weighted least-squares solution
        with the null players fixed at 0 (shap drops such players per row the same way).

        With :math:`A = Z^\top W Z` and the accumulated :math:`b = Z^\top W y` of each row, for the
        kept players K: :math:`\phi_K = A_K^{-1}\big(b_K - 1 (1^\top A_K^{-1} b_K - \Delta)/(1^\top
        A_K^{-1} 1)\big)` (spec 2.4, on the principal submatrix), and :math:`\phi_j = 0` exactly for
        the null players, so :math:`\sum_j \phi_j = \Delta` still holds to rounding. In exact mode
        this is the Shapley value (the full solution already has :math:`\phi_{null} = 0`); one small
        solve per distinct null pattern.

        b : (n, M, D); delta : (n, D); null : (n, M) bool; Z, w: the plan (default the explainer's).
        Returns (n, M, D)."""
        M = self.M
        Z = self._Z if Z is None else Z
        w = self._w if w is None else w
        Zf = Z.astype(np.float64)
        A = (Zf.T * w) @ Zf
        pats, inv = np.unique(null, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        out = np.zeros_like(b)
        chunk = max(1, min(self._budget, 64 << 20) // (8 * M * M * 6))  # patterns (and rows) at a time
        eye = np.eye(M)
        for u0 in range(0, len(pats), chunk):
            P = pats[u0 : u0 + chunk]
            keep = ~P
            ones = keep.astype(np.float64)
            Apad = np.where(keep[:, :, None] & keep[:, None, :], A, 0.0) + P[:, :, None] * eye
            try:
                if self._status:
                    raise np.linalg.LinAlgError
                Ainv = np.linalg.inv(Apad)
                # a pattern singular to working precision (a plan too small for the kept players,
                # possible with the cubic estimator's well-posed full operator): pseudo-inverse
                bad = np.abs(Apad @ Ainv - eye).max(axis=(1, 2)) > 1e-8
                if bad.any():
                    Ainv[bad] = np.linalg.pinv(Apad[bad])
            except np.linalg.LinAlgError:
                Ainv = np.linalg.pinv(Apad)
            t = (Ainv @ ones[:, :, None])[:, :, 0]
            s = (ones * t).sum(axis=1)
            ok = s != 0  # s = 0: every player is null
            scale = np.where(ok, 1.0 / np.where(ok, s, 1.0), 0.0)
            R = Ainv - (t * scale[:, None])[:, :, None] * (ones[:, None, :] @ Ainv)
            r = t * scale[:, None]
            R = np.where(keep[:, :, None] & keep[:, None, :], R, 0.0)
            r = np.where(keep, r, 0.0)
            rows_all = np.flatnonzero((inv >= u0) & (inv < u0 + len(P)))
            for a in range(0, len(rows_all), chunk):
                rows = rows_all[a : a + chunk]
                k = inv[rows] - u0
                out[rows] = R[k] @ b[rows] + r[k][:, :, None] * delta[rows][:, None, :]
        out[null] = 0.0
        return out

    def explain(
        self,
        X: Any,
        *,
        progress: Callable[[int, int], None] | None = None,
        return_std: bool = False,
        predictions: Any = None,
    ) -> Explanation:
        """Attributions of every row of ``X``.

        Parameters
        ----------
        X : ndarray, DataFrame, or Dask DataFrame / 2-D array, shape (N, P)
            Rows to explain, with the background's columns. A Dask collection is explained
            partition by partition on its workers (:func:`clarion.distributed.explain`).
        progress : callable, optional
            Called as ``progress(done, total)`` (synthetic rows) after each model batch.
        return_std : bool, default False
            Also estimate standard errors. ``estimator="cubic"``: the design-based standard error
            of the stratified sample of pairs, from the surrogate's residuals
            (:func:`clarion.explain._kernels.stratified_solve`; docs/kernel-shap.md); with the
            relabelled designs per background row, ``std = sqrt(sum_k pi_k^2 std_k^2)`` over the
            background rows' own designs.
            ``estimator="shap"``: the sampled draws are split into G = 10 groups, each group (with
            the enumerated coalitions) gives its own estimate through its own operator in the
            same pass, and ``std = sd_g(phi_g) / sqrt(G)``; NaN when fewer than 2 draws were
            sampled. Zeros in exact mode.
        predictions : array-like, optional
            The model's outputs on ``X`` when the caller already has them, shape ``(N,)`` or
            ``(N, D)`` as the model returns them (``(N, 1)`` also for a one-output model): used as
            ``f(x)`` instead of calling the model on ``X`` again (one model call fewer). They must
            be finite; they are trusted to be the model's (the attributions sum to
            ``g(predictions) - expected_value``).

        Returns
        -------
        Explanation
        """
        if dispatch.is_partitioned(X):  # partitions explained on the workers, same plan
            if predictions is not None:
                raise ValueError("predictions: not supported with a partitioned X (each worker predicts its rows)")
            return dispatch.handler("explain.explain")(self, X, return_std=return_std, progress=progress)
        X = densify(X, "X", self._budget)
        Xm = self._codec.encode(X, "X")
        impl = _backend.resolve(self._backend_req, Xm, self._B)
        if impl != self._impl:
            raise ValueError(f"X must live where the background does (background backend {self._impl!r}, X {impl!r})")
        xp = self._xp()
        N, P = Xm.shape
        S = self.num_samples_
        D = self._predict.n_outputs
        row_bytes = bytes_per_row(P, Xm.dtype.itemsize, D, self._codec.is_frame)
        rows_per_batch = max(1, self._budget // row_bytes)

        # f(x) for every row, in batches (or the caller's predictions).
        if predictions is not None:
            fx = xp.asarray(self._given_predictions(predictions, N, D))
        else:
            fx = xp.empty((N, D))
            for a in range(0, N, rows_per_batch):
                b = min(N, a + rows_per_batch)
                fx[a:b] = self._predict(self._codec.decode(Xm[a:b]), where=f" (on X rows {a}..{b - 1})")
        delta = self._link_fn(fx) - self._base_link[None, :]
        if self.estimator == "cubic" and (return_std or self.auto_):
            return self._explain_rounds(X, Xm, impl, fx, rows_per_batch, progress, return_std)

        if self._relabel:
            values, std, expected = self._relabelled_values(Xm, impl, fx, delta, rows_per_batch, progress)
        else:
            values, std, expected = self._shared_pass(Xm, impl, fx, delta, rows_per_batch, progress, return_std)
        if self._predict.vector_out:
            values = values[:, :, 0]
            std = None if std is None else std[:, :, 0]
        return Explanation(
            np.ascontiguousarray(values),
            expected,
            self.feature_names,
            X,
            output_names=self.output_names,
            std=std,
            exact=self.exact_,
            num_samples=S,
            player_columns=self._player_columns,
        )

    __call__ = explain

    def _shared_pass(
        self,
        Xm: Any,
        impl: str,
        fx: Any,
        delta: Any,
        rows_per_batch: int,
        progress: Callable[[int, int], None] | None,
        return_std: bool,
    ) -> tuple[np.ndarray, np.ndarray | None, Any]:
        """The single pass with one design shared by the background rows: ``(values (N, M, D) on
        the host, std or None, expected value)``."""
        xp = self._xp()
        N, P = Xm.shape
        K = self._B.shape[0]
        M, S = self.M, self.num_samples_
        D = self._predict.n_outputs
        LT, cs, G = self._operators(return_std)
        null = self._null_players(Xm)
        Mb = LT.shape[1]  # columns of the solution operators; then b = Z^T W y for rows with null players
        if null is not None:
            LT = np.hstack([LT, self._Z * self._w[:, None]])
            cs = np.concatenate([cs, np.zeros(M)])
        Mo = LT.shape[1]
        Zd, LTd, cpd = (xp.asarray(self._Z), xp.asarray(LT), xp.asarray(self._col_player))
        phi = xp.zeros((N, Mo, D))
        total = N * S
        for q0, q1, buffer in _pair_batches(total, K, rows_per_batch, impl, P, Xm.dtype):
            syn = _kernels.mask(impl, Xm, self._B, Zd, cpd, q0, q1, self._threads, buffer)
            F = self._predict(self._codec.decode(syn), where=f" (synthetic rows of X rows {q0 // S}..{(q1 - 1) // S})")
            del syn
            Y = _kernels.reduce(impl, F, self._pi, self._link, self._threads)
            del F
            phi = _kernels.apply(impl, Y, self._base_link, LTd, q0, q1, phi, self._threads)
            if progress is not None:
                progress(q1 * K, total * K)
        expected = self.expected_value
        if (self._col_player < 0).any():
            # Columns outside features_to_explain stay at x, so v(0) = g(E_pi f(x_rest, b)) is
            # per row. apply() used the global base; shift by the operator's row sums:
            # sum_s L[:, s] (y_s - v0) = A + (base - v0) L 1.
            v0 = xp.empty((N, D))
            Z0 = xp.zeros((1, M), dtype=np.uint8)
            for a in range(0, N, max(1, rows_per_batch // K)):
                b = min(N, a + max(1, rows_per_batch // K))
                syn = _kernels.mask(impl, Xm[a:b], self._B, Z0, cpd, 0, b - a, self._threads)
                F = self._predict(self._codec.decode(syn), where=f" (v(0) of X rows {a}..{b - 1})")
                v0[a:b] = _kernels.reduce(impl, F, self._pi, self._link, self._threads)
            ell = LTd.sum(axis=0)
            phi += ell[None, :, None] * (self._base_link[None, :] - v0)[:, None, :]
            delta = self._link_fn(fx) - v0
            ev = v0.get() if impl == "cuda" else v0
            expected = ev[:, 0].copy() if self._predict.vector_out else ev
        phi += xp.asarray(cs)[None, :, None] * delta[:, None, :]
        if impl == "cuda":
            phi = phi.get()
            delta = delta.get()
        values = phi[:, :M]
        if null is not None:  # null players get exactly 0, the others the restricted solution
            hit = np.flatnonzero(null.any(axis=1))
            values[hit] = self._restricted_values(phi[hit, Mb:], np.asarray(delta)[hit], null[hit])
        std = None
        if return_std:
            if self.exact_:
                std = np.zeros_like(values)
            elif G < 2:
                std = np.full_like(values, np.nan)
            else:
                sub = phi[:, M:Mb].reshape(N, G, M, D)
                std = np.sqrt(sub.var(axis=1, ddof=1) / G)
            if null is not None:
                std[null] = 0.0
        return values, std, expected

    def _relabelled_values(
        self,
        Xm: Any,
        impl: str,
        fx: Any,
        delta: Any,
        rows_per_batch: int,
        progress: Callable[[int, int], None] | None,
    ) -> tuple[np.ndarray, None, Any]:
        """The single pass with one relabelled design per background row (``self._relabel``). Rows
        with null players keep the shared design (:meth:`_shared_pass` on those rows only), so each
        row's result depends on that row alone."""
        N = Xm.shape[0]
        M, D, K, S = self.M, self._predict.n_outputs, self._B.shape[0], self.num_samples_
        null = self._null_players(Xm)
        hit = np.flatnonzero(null.any(axis=1)) if null is not None else np.zeros(0, dtype=np.int64)
        rest = np.setdiff1d(np.arange(N), hit)
        values = np.zeros((N, M, D))
        total = N * S * K
        if len(hit):
            xp = self._xp()
            h = xp.asarray(hit)
            sub = None if progress is None else (lambda d, t: progress(d, total))
            values[hit] = self._shared_pass(Xm[h], impl, fx[h], delta[h], rows_per_batch, sub, False)[0]
        if len(rest):
            xp = self._xp()
            r = xp.asarray(rest)
            off = len(hit) * S * K
            sub = None if progress is None else (lambda d, t: progress(off + d, total))
            values[rest] = self._relabelled_pass(Xm[r], impl, fx[r], rows_per_batch, sub)
        return values, None, self.expected_value

    def _relabelled_masks(self, impl: str, Xm: Any, Zd: Any, q0: int, q1: int, buffer: Any) -> Any:
        """The synthetic rows of pairs [q0, q1), every background row k with its relabelled design,
        in the shared design's layout (pair-major, background rows innermost: row ``(q - q0) K + k``),
        by one call of the mask kernel on the rows' columns repeated K times against the background
        rows laid side by side as one row, with the column -> player map ``perm_k[col_player]`` on
        block k."""
        xp = self._xp()
        n, (K, P) = q1 - q0, self._B.shape
        S = Zd.shape[0]
        r0, r1 = q0 // S, (q1 - 1) // S + 1
        if self._stacked is None:
            cpd = np.concatenate([perm[self._col_player] for perm in self._perms]).astype(np.int32)
            self._stacked = (xp.asarray(cpd), xp.ascontiguousarray(self._B.reshape(1, K * P)))
        cpd, Bs = self._stacked
        Xs = xp.tile(Xm[r0:r1], (1, K))
        out = None if buffer is None else buffer[: n * K].reshape(n, K * P)
        syn = _kernels.mask(impl, Xs, Bs, Zd, cpd, q0 - r0 * S, q1 - r0 * S, self._threads, out)
        return syn.reshape(n * K, P)

    def _relabel_combine(self, phis: list, xp: Any) -> Any:
        """``sum_k pi_k phi_k[:, perm_k]`` of per-background solutions in the plan's labels
        (``phi_k = L y_k + c (f(x) - f(b_k))``), in a fixed order of k."""
        out = None
        for k, phi_k in enumerate(phis):
            term = float(self._pi_host[k]) * phi_k[:, xp.asarray(self._perms[k])]
            out = term if out is None else out + term
        return out

    def _stacked_operator(self, L: np.ndarray, c: np.ndarray) -> tuple:
        """For the plan of operator ``L`` [M, S], ``c``: ``LT[s K + k, j] = pi_k L[perm_k[j], s]`` (the
        relabelled operators of all background rows, transposed and interleaved like the synthetic
        rows), and the constant terms ``u`` [M, D], ``cbar`` [M] of :meth:`_relabelled_pass`; built
        once per plan size."""
        S = L.shape[1]
        got = self._stacked_op.get(S)
        if got is None:
            pi, M = self._pi_host, self.M
            K = len(pi)
            LT = np.empty((S, K, M))
            ell = L.sum(axis=1)  # L 1
            fb = np.asarray(self._fb.get() if self._impl == "cuda" else self._fb)
            bbar = np.asarray(self._base_link.get() if self._impl == "cuda" else self._base_link)
            u = np.zeros((M, fb.shape[1]))
            cbar = np.zeros(M)
            for k, perm in enumerate(self._perms):
                LT[:, k, :] = pi[k] * L[perm].T
                u += pi[k] * (ell[perm][:, None] * (bbar - fb[k])[None, :] - c[perm][:, None] * fb[k][None, :])
                cbar += pi[k] * c[perm]
            got = (LT.reshape(S * K, M), u, cbar)
            self._stacked_op[S] = got
        return got

    def _relabelled_pass(
        self,
        Xm: Any,
        impl: str,
        fx: Any,
        rows_per_batch: int,
        progress: Callable[[int, int], None] | None,
    ) -> np.ndarray:
        r"""Values (N, M, D) on the host with one relabelled design per background row:
        :math:`\phi = \sum_k \pi_k (L_{\sigma_k} (y_k - f(b_k)) + c_{\sigma_k} (f(x) - f(b_k)))`,
        :math:`y_k[s] = f(x \text{ on } Z[s, \sigma_k], b_k \text{ elsewhere})` (identity link).
        The synthetic rows keep the shared design's layout (pair s, background row k at ``s K + k``),
        so one apply with the stacked operator :meth:`_stacked_operator` (S K rows) accumulates
        :math:`A = \sum_{s,k} \pi_k L[\sigma_k, s] (y_k[s] - \bar f)` in ascending order (results do
        not depend on the batches), and :math:`\phi = A + u + \bar c f(x)` with
        :math:`u = \sum_k \pi_k ((\bar f - f(b_k)) (L 1)_{\sigma_k} - c_{\sigma_k} f(b_k))`,
        :math:`\bar c = \sum_k \pi_k c_{\sigma_k}`. Same model evaluations as the shared design
        (S K per row, one call per batch)."""
        xp = self._xp()
        N, P = Xm.shape
        K = self._B.shape[0]
        M, S, D = self.M, self.num_samples_, self._predict.n_outputs
        LTh, u, cbar = self._stacked_operator(self._L, self._c)
        LTd, u, cbar = xp.asarray(LTh), xp.asarray(u), xp.asarray(cbar)
        Zd = xp.asarray(self._Z)
        one = xp.ones(1)
        phi = xp.zeros((N, M, D))
        total = N * S
        for q0, q1, buffer in _pair_batches(total, K, rows_per_batch, impl, P, Xm.dtype):
            syn = self._relabelled_masks(impl, Xm, Zd, q0, q1, buffer)
            F = self._predict(self._codec.decode(syn), where=f" (synthetic rows of X rows {q0 // S}..{(q1 - 1) // S})")
            del syn
            Y = _kernels.reduce(impl, F, one, 0, self._threads)  # every synthetic row's own value
            del F
            phi = _kernels.apply(impl, Y, self._base_link, LTd, q0 * K, q1 * K, phi, self._threads)
            if progress is not None:
                progress(q1 * K, total * K)
        phi += u[None, :, :] + cbar[None, :, None] * fx[:, None, :]
        return phi.get() if impl == "cuda" else phi

    def _coalition_values_relabelled(self, Xm: Any, Z: np.ndarray, impl: str, rows_per_batch: int) -> np.ndarray:
        """``y[n, s, k, d] = f(x_n on Z[s, perm_k], b_k elsewhere)_d - base_d`` on the host (identity
        link; base = sum_k pi_k f(b_k)), every background row with its relabelled design; the
        batches of :meth:`_coalition_values`."""
        xp = self._xp()
        N, P = Xm.shape
        S, K, D = Z.shape[0], self._B.shape[0], self._predict.n_outputs
        y = np.empty((N * S, K, D))
        if N * S == 0:
            return y.reshape(N, S, K, D)
        Zd = xp.asarray(Z)
        one = xp.ones(1)
        base = np.asarray(self._base_link.get() if impl == "cuda" else self._base_link)
        for q0, q1, buffer in _pair_batches(N * S, K, rows_per_batch, impl, P, Xm.dtype):
            syn = self._relabelled_masks(impl, Xm, Zd, q0, q1, buffer)
            F = self._predict(self._codec.decode(syn), where=" (synthetic rows)")
            del syn
            Y = _kernels.reduce(impl, F, one, 0, self._threads)
            y[q0:q1] = (Y.get() if impl == "cuda" else Y).reshape(q1 - q0, K, D) - base[None, None, :]
        return y.reshape(N, S, K, D)

    def _given_predictions(self, predictions: Any, N: int, D: int) -> np.ndarray:
        """``predictions`` as ``(N, D)`` float64 on the host; ValueError naming the argument."""
        want = f"({N},)" if self._predict.vector_out else f"({N}, {D})"
        p = predictions.get() if hasattr(predictions, "__cuda_array_interface__") else predictions
        if hasattr(p, "to_numpy"):
            p = p.to_numpy()
        try:
            p = np.asarray(p, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                MSG_PREDICTIONS.format(want=want, got=f"a {type(predictions).__name__} of non-numbers")
            ) from None
        if p.shape != (N, D) and not (D == 1 and p.shape == (N,)):
            raise ValueError(MSG_PREDICTIONS.format(want=want, got=f"shape {p.shape}"))
        p = p.reshape(N, D)
        bad = ~np.isfinite(p)
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(MSG_PREDICTIONS.format(want=want, got=f"{p[row, col]} at row {row}, output {col}"))
        return p

    def _coalition_values(self, Xm: Any, Z: np.ndarray, impl: str, rows_per_batch: int) -> np.ndarray:
        """``y[n, s, d] = v_n(Z[s])_d - base_d`` (link space) on the host, for every row of ``Xm``."""
        xp = self._xp()
        N, P = Xm.shape
        S, K, D = Z.shape[0], self._B.shape[0], self._predict.n_outputs
        y = np.empty((N * S, D))
        if N * S == 0:
            return y.reshape(N, S, D)
        Zd, cpd = xp.asarray(Z), xp.asarray(self._col_player)
        base = np.asarray(self._base_link.get() if impl == "cuda" else self._base_link)
        for q0, q1, buffer in _pair_batches(N * S, K, rows_per_batch, impl, P, Xm.dtype):
            syn = _kernels.mask(impl, Xm, self._B, Zd, cpd, q0, q1, self._threads, buffer)
            F = self._predict(self._codec.decode(syn), where=" (synthetic rows)")
            del syn
            Y = _kernels.reduce(impl, F, self._pi, self._link, self._threads)
            y[q0:q1] = (Y.get() if impl == "cuda" else Y) - base[None, :]
        return y.reshape(N, S, D)

    def _explain_rounds(
        self,
        X: Any,
        Xm: Any,
        impl: str,
        fx: Any,
        rows_per_batch: int,
        progress: Callable[[int, int], None] | None,
        return_std: bool,
    ) -> Explanation:
        """The cubic estimator with standard errors, and ``num_samples="auto"``: the rows are taken
        in batches; each batch gets the coalitions of the first round, then (auto) the rows not yet
        converged get the next round's new coalitions, their earlier values reused. Every row's
        result depends on that row only (not on the batch it is in)."""
        xp = self._xp()
        N = Xm.shape[0]
        M, D, K = self.M, self._predict.n_outputs, self._B.shape[0]
        base = np.asarray(self._base_link.get() if impl == "cuda" else self._base_link)
        fxh = np.asarray(fx.get() if impl == "cuda" else fx)
        expected = self.expected_value
        v0 = np.broadcast_to(base, (N, D))
        if (self._col_player < 0).any():  # v(0) per row: the other columns stay at x
            v0 = np.empty((N, D))
            Z0 = xp.zeros((1, M), dtype=np.uint8)
            cpd = xp.asarray(self._col_player)
            step = max(1, rows_per_batch // K)
            for a in range(0, N, step):
                b = min(N, a + step)
                syn = _kernels.mask(impl, Xm[a:b], self._B, Z0, cpd, 0, b - a, self._threads)
                F = self._predict(self._codec.decode(syn), where=f" (v(0) of X rows {a}..{b - 1})")
                r = _kernels.reduce(impl, F, self._pi, self._link, self._threads)
                v0[a:b] = r.get() if impl == "cuda" else r
            expected = v0[:, 0].copy() if self._predict.vector_out else v0.copy()
        lf = self._link_fn(fxh) if impl != "cuda" else np.asarray(self._link_fn(fx).get())
        delta = lf - v0
        shift = v0 - base[None, :]
        null = self._null_players(Xm)
        rounds = self._rounds if self.auto_ else [self.num_samples_]
        values = np.zeros((N, M, D))
        std = np.zeros((N, M, D))
        used = np.zeros(N, dtype=np.int64)
        per_row = rounds[-1] * D * 8 * (M + 4) * (K if self._relabel else 1)
        batch = max(1, self._budget // max(1, per_row))
        has_null = null.any(axis=1) if null is not None else np.zeros(N, dtype=bool)
        fbh = np.asarray(self._fb.get() if impl == "cuda" else self._fb)
        for a in range(0, N, batch):
            rows = np.arange(a, min(N, a + batch))
            # relabelled designs (self._relabel) for the rows without null players; the shared
            # design for the others (and for every row otherwise)
            groups = (
                [(rows[has_null[rows]], False), (rows[~has_null[rows]], True)] if self._relabel else [(rows, False)]
            )
            for active, relabel in groups:
                if not len(active):
                    continue
                y = np.zeros((len(active), 0, K, D) if relabel else (len(active), 0, D))
                S_prev = 0
                for r, S_r in enumerate(rounds):
                    Z, w, L, c, _, extra, stratum, n_p, N_p = self._plan(S_r, hat=True)
                    if relabel:
                        new = self._coalition_values_relabelled(Xm[active], Z[S_prev:], impl, rows_per_batch)
                        y = np.concatenate([y, new], axis=1)  # [n, S, K, D], centred at the base
                        # values: as the single pass (_relabelled_pass), so the two agree bitwise
                        # (the fixed plan's own operator, as the single pass: the one of the
                        # plan built again with the standard-error terms is the same to rounding)
                        LTs, u, cbar = self._stacked_operator(*((L, c) if self.auto_ else (self._L, self._c)))
                        nA = len(active)
                        phi = _kernels._host_apply(impl, y.reshape(nA, -1, D), LTs, self._threads)
                        phi += u[None, :, :] + cbar[None, :, None] * fxh[active][:, None, :]
                        # std = sqrt(sum_k pi_k^2 std_k^2), each background row's design-based one
                        var = []
                        for k in range(K):
                            _, sd_k = _kernels.stratified_solve(
                                impl,
                                y[:, :, k] - (fbh[k] - base)[None, None, :],
                                fxh[active] - fbh[k][None, :],
                                L,
                                c,
                                extra,
                                stratum,
                                n_p,
                                N_p,
                                self._threads,
                            )
                            var.append(sd_k * sd_k * self._pi_host[k])
                        sd = np.sqrt(self._relabel_combine(var, np))
                    else:
                        new = self._coalition_values(Xm[active], Z[S_prev:], impl, rows_per_batch)
                        y = np.concatenate([y, new - shift[active][:, None, :]], axis=1)
                        phi, sd = _kernels.stratified_solve(
                            impl, y, delta[active], L, c, extra, stratum, n_p, N_p, self._threads
                        )
                        if null is not None:
                            nl = null[active]
                            hit = np.flatnonzero(nl.any(axis=1))
                            if len(hit):
                                bz = _kernels._host_apply(impl, y[hit], Z * w[:, None], self._threads)
                                phi[hit] = self._restricted_values(bz, delta[active][hit], nl[hit], Z, w)
                                sd[nl] = 0.0
                    if self.auto_ and r < len(rounds) - 1:
                        spread = phi.max(axis=1) - phi.min(axis=1)
                        top = sd.max(axis=1)
                        ratio = np.where(
                            spread > 0, top / np.where(spread > 0, spread, 1.0), np.where(top > 0, np.inf, 0.0)
                        )
                        done = ratio.max(axis=1) <= self.tolerance
                    else:
                        done = np.ones(len(active), dtype=bool)
                    values[active[done]], std[active[done]] = phi[done], sd[done]
                    used[active[done]] = Z.shape[0]
                    active, y = active[~done], y[~done]
                    S_prev = Z.shape[0]
                    if not len(active):
                        break
            if progress is not None:
                progress(min(N, a + batch), N)
        if self._predict.vector_out:
            values, std = values[:, :, 0], std[:, :, 0]
        exact = bool(N) and bool((used == 2**M - 2).all()) if M <= 30 else False
        return Explanation(
            np.ascontiguousarray(values),
            expected,
            self.feature_names,
            X,
            output_names=self.output_names,
            std=np.ascontiguousarray(std) if return_std else None,
            exact=exact or self.exact_,
            num_samples=int(used.max()) if N else self.num_samples_,
            player_columns=self._player_columns,
            row_samples=used if self.auto_ else None,
        )
