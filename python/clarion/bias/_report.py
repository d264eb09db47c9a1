"""``clarion.bias.report``: every Clarify bias metric from one count pass per facet."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from clarion import dispatch, options
from clarion.bias._encode import is_numeric_column
from clarion.bias._engine import (
    MSG_FEATURE,
    Spec,
    State,
    Table,
    dtype_of,
    normalize_methods,
    to_numeric,
)
from clarion.bias._result import BiasReport

__all__ = ["report"]

MSG_FT_MISSING = "FlipTest is unavailable: the module clarion.bias.fliptest could not be imported ({err})"
S_FT_NON_NUMERIC = "FlipTest does not support non-numeric columns"


def check_bootstrap(confidence: Any, n_bootstrap: Any, seed: Any) -> None:
    """Check the interval options of :func:`report` (and its Dask twin) with :mod:`clarion.options`:
    ``n_bootstrap`` and ``seed`` only matter with ``confidence``."""
    if confidence is None:
        return
    options.confidence(confidence)
    options.n_bootstrap(n_bootstrap, why=" with confidence=")
    options.seed(seed)


_check_bootstrap = check_bootstrap  # the old private name (clarion.distributed uses it)


def empty_facet_reason(compat: str, nd: int, na: int) -> str | None:
    """Why FlipTest is undefined when facet d (``nd`` rows) or facet a (``na`` rows) is empty."""
    if nd == 0:
        return "Facet set is empty" if compat == "smclarify" else "facet d is empty: no row has the selected value(s)"
    if na == 0:
        return (
            "Negated Facet set is empty"
            if compat == "smclarify"
            else "facet a is empty: every row has the selected value(s)"
        )
    return None


class FlipTests:
    """FlipTest for each (facet, entry, model) of a report, on the rows of ``table``."""

    def __init__(self, table: Table, spec: Spec, state: State, enc: dict, compat: str) -> None:
        self.table, self.spec, self.state, self.enc, self.compat = table, spec, state, enc, compat
        self._X: dict[Any, Any] = {}
        self._preds: dict[int, np.ndarray] = {}
        try:
            from clarion.bias import fliptest  # optional module, written separately

            self.flip_test = fliptest.flip_test
            self.import_error = None
        except ImportError as exc:
            self.flip_test = None
            self.import_error = str(exc)
        self.explicit_error: str | None = None
        if spec.features is not None:
            for name in spec.features:
                col = table.col(name, "features")
                if not is_numeric_column(col):
                    raise ValueError(MSG_FEATURE.format(name=name, dtype=dtype_of(col)))

    def _excluded(self, facet: Any) -> set:
        spec = self.spec
        ex = {spec.label}
        ex |= {src for _, src in spec.models if isinstance(src, str)}
        for extra in (spec.group_variable, spec.weights):
            if isinstance(extra, str):
                ex.add(extra)
        if self.compat == "smclarify":
            ex.add(facet)  # smclarify drops only the facet it is evaluating
        else:
            ex |= set(spec.facets)
        return ex

    def features(self, facet: Any) -> tuple[np.ndarray | None, str | None]:
        if facet in self._X:
            return self._X[facet]
        spec, table = self.spec, self.table
        if spec.features is not None:
            names = list(spec.features)
        else:
            ex = self._excluded(facet)
            names = [c for c in table.columns if c not in ex]
            if self.compat == "smclarify":
                if any(not is_numeric_column(table.col(c, "features")) for c in names):
                    self._X[facet] = (None, S_FT_NON_NUMERIC)
                    return self._X[facet]
            else:
                names = [c for c in names if is_numeric_column(table.col(c, "features"))]
        if not names:
            self._X[facet] = (None, "FlipTest has no numeric feature column to compare rows on")
            return self._X[facet]
        X = np.empty((table.n, len(names)), dtype=np.float64)
        for j, c in enumerate(names):
            X[:, j] = to_numeric(table.col(c, "features"), "features", c)
        self._X[facet] = (X, None)
        return self._X[facet]

    def pred(self, m: int) -> np.ndarray:
        """Predicted-positive mask of post row m (user order)."""
        if m not in self._preds:
            spec = self.spec
            kinds = self.state.model_kinds
            # map post row m to (model index, threshold)
            flat = []
            lab_i = sc_i = 0
            for k in kinds:
                if k == "labels":
                    flat.append(("labels", lab_i, None))
                    lab_i += 1
                else:
                    flat.extend(("scores", sc_i, t) for t in spec.thresholds)
                    sc_i += 1
            kind, j, t = flat[m]
            if kind == "labels":
                self._preds[m] = self.enc["preds"][:, j].astype(bool)
            else:
                self._preds[m] = self.enc["scores"][:, j] > t
        return self._preds[m]

    def __call__(self, facet: Any, codes: list, m: int) -> tuple[float, str | None]:
        fcodes, _ = self.enc["facets"][facet]
        d = np.isin(fcodes, codes) if codes else np.zeros(fcodes.shape, dtype=bool)
        nd = int(d.sum())
        na = d.size - nd
        reason = empty_facet_reason(self.compat, nd, na)
        if reason:
            return math.nan, reason
        X, err = self.features(facet)
        if err:
            return math.nan, err
        if self.flip_test is None:
            return math.nan, MSG_FT_MISSING.format(err=self.import_error)
        p = self.pred(m)
        try:
            res = self.flip_test(X[~d], X[d], p[~d], p[d])
        except ValueError as exc:
            return math.nan, str(exc)
        return float(res.value), None


_FlipTests = FlipTests  # the old private name (clarion.distributed uses it)


def report(
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
    stage: Literal["pre", "post", "both"] = "both",
    weights: Any = None,
    compat: Literal["clarion", "smclarify"] = "clarion",
    features: list[str] | None = None,
    confidence: float | None = None,
    n_bootstrap: int = 1000,
    seed: int | None = None,
    backend: str = "auto",
    n_threads: int | None = None,
) -> BiasReport:
    r"""Clarify's pre- and post-training bias metrics, from one count pass over the rows per facet.

    Rows fall in facet *d* (the selected group) or facet *a* (every other row, including rows
    whose facet value is missing). With counts ``n_g`` (rows of group g), ``n_g(1)`` (positive
    labels), ``n^_g(1)`` (positive predictions) and the confusion cells ``TP_g, FP_g, FN_g,
    TN_g``:

    ===== ========================================================== ===========
    name  formula                                                    ideal
    ===== ========================================================== ===========
    CI    (n_a − n_d) / (n_a + n_d)                                  0
    DPL   n_a(1)/n_a − n_d(1)/n_d                                    0
    KL    Σ_y Pa(y) ln(Pa(y)/Pd(y)),  Pg(y) = n_g(y)/n_g             0
    JS    ½[KL(Pa‖P) + KL(Pd‖P)],  P = ½(Pa + Pd)                    0
    LP    (Σ_y (Pa(y) − Pd(y))²)^½                                   0
    TVD   ½ Σ_y |Pa(y) − Pd(y)|                                      0
    KS    max_y |Pa(y) − Pd(y)|                                      0
    CDDL  Σ_i n_i (n_di(0)/n_i(0) − n_di(1)/n_i(1)) / Σ_i n_i        0
    DPPL  n^_a(1)/n_a − n^_d(1)/n_d                                  0
    DI    (n^_d(1)/n_d) / (n^_a(1)/n_a)                              1
    DCA   n_a(1)/n^_a(1) − n_d(1)/n^_d(1)                            0
    DCR   n_d(0)/n^_d(0) − n_a(0)/n^_a(0)                            0
    RD    TP_a/(TP_a+FN_a) − TP_d/(TP_d+FN_d)                        0
    SD    TN_d/(TN_d+FP_d) − TN_a/(TN_a+FP_a)                        0
    DAR   TP_a/(TP_a+FP_a) − TP_d/(TP_d+FP_d)                        0
    DRR   TN_d/(TN_d+FN_d) − TN_a/(TN_a+FN_a)                        0
    AD    (TP_a+TN_a)/n_a − (TP_d+TN_d)/n_d                          0
    TE    FN_d/FP_d − FN_a/FP_a                                      0
    CDDPL CDDL with predicted labels                                 0
    FT    (F₊ − F₋)/n_d, k-NN of facet d's rows among facet a        0
    GE    Σ_i ((b_i/b̄)² − 1) / (2N),  b = ŷ − y + 1 (all rows)       0
    ===== ========================================================== ===========

    (subgroups i of ``group_variable`` for CDDL/CDDPL). Ranges, meanings and every difference
    from smclarify are in ``docs/metrics.md``.

    Parameters
    ----------
    data : pandas.DataFrame, pyarrow.Table, dict of 1-D arrays, or Dask DataFrame / 2-D array
        The rows. A Dask collection is counted on its workers by
        :func:`clarion.distributed.bias_report` (same numbers).
    label : str
        Observed label column.
    facet : str or list of str
        Sensitive column(s); each is reported separately (one count pass each).
    facet_values : value, list, or dict facet → list, optional
        Values whose rows form facet d (their union). A value that does not occur is an error.
        Without ``facet_values`` / ``facet_threshold`` every occurring value is reported against
        the rest, all from the same count pass (entries in sorted value order).
    facet_threshold : number or dict facet → number, optional
        Numeric facet: facet d is ``value > threshold`` (Clarify's exclusive lower bound).
    label_values : value or list, optional
        Observed label values that count as positive, matched by equality (``1`` matches ``1``
        and ``1.0`` and ``True``, never ``"1"``). Every listed value must occur.
    label_threshold : number, optional
        Numeric label: positive is ``label > threshold``.
    predicted_label : str, list of str, dict name → column/array, 2-D array, optional
        Predictions of one or several models. Bool, integer, string or categorical predictions
        are labels made binary like the observed label; float predictions with ``label_values``
        are scores, positive when ``score > probability_threshold``. All models and thresholds
        are counted in the same pass (the kernel's batch axis).
    probability_threshold : float or list of float, default 0.5
        Score threshold(s); a list evaluates every threshold.
    group_variable : str or array, optional
        Subgroup column for CDDL / CDDPL.
    methods : "all" or list of str
        Metric names (CI, DPL, KL, JS, LP, TVD, KS, CDDL; DPPL, DI, DCA, DCR, RD, SD, DAR, DRR,
        AD, CDDPL, TE, FT, GE).
    stage : {"pre", "post", "both"}
        Which stage(s) to report; post-training needs ``predicted_label``.
    weights : str or array, optional
        Row weights (finite, ≥ 0): every count-based metric uses weighted counts (FT does not).
    compat : {"clarion", "smclarify"}
        ``"clarion"``: undefined values are NaN with a reason, infinite limits ±inf, divergences
        use both groups' full label distributions. ``"smclarify"``: smclarify 0.5's numbers
        (0/0 → 0, shared support, its error texts).
    features : list of str, optional
        FlipTest feature columns (default: every numeric column that is not a label, facet,
        prediction, group-variable or weight column; with ``compat="smclarify"`` a non-numeric
        remaining column makes FT fail as in smclarify).
    confidence : float in (0, 1), optional
        Adds ``ci_low`` / ``ci_high`` percentile intervals from ``n_bootstrap`` Poisson bootstrap
        replicates (computed by the count kernel in one more pass) for every count-based metric.
    n_bootstrap : int, default 1000
        Replicates for the intervals.
    seed : int, optional
        Bootstrap seed (default 0); the same seed gives identical intervals on every backend.
    backend, n_threads
        Passed to :func:`clarion.grouped_counts`.

    Returns
    -------
    BiasReport
        ``to_frame()`` (long table) and ``to_dict()`` (analysis.json bias sections).

    Raises
    ------
    ValueError
        A missing column, a facet or label value that does not occur, a missing label, NaN
        scores, conflicting or unknown options: the message names the argument and the value.
    TypeError
        A threshold on a non-numeric column, or ``data`` of an unsupported type.
    """
    if dispatch.is_partitioned(data):  # same report, counted on the Dask workers (clarion.distributed)
        return dispatch.handler("bias.report")(
            data,
            label=label,
            facet=facet,
            facet_values=facet_values,
            facet_threshold=facet_threshold,
            label_values=label_values,
            label_threshold=label_threshold,
            predicted_label=predicted_label,
            probability_threshold=probability_threshold,
            group_variable=group_variable,
            methods=methods,
            stage=stage,
            weights=weights,
            compat=compat,
            features=features,
            confidence=confidence,
            n_bootstrap=n_bootstrap,
            seed=seed,
            backend=backend,
            n_threads=n_threads,
        )
    if compat not in ("clarion", "smclarify"):
        raise ValueError(f"compat must be 'clarion' or 'smclarify', got {compat!r}")
    check_bootstrap(confidence, n_bootstrap, seed)
    spec = Spec.build(
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
    _, post_names = normalize_methods(methods, stage, bool(spec.models))
    table = Table(data)
    state = State(spec)
    # one pass over the columns when nothing needs the encoded rows themselves (FT, the replicates)
    fast = confidence is None and "FT" not in post_names
    batch = state.fast_count(table, compat, backend=backend, n_threads=n_threads) if fast else None
    enc = None
    if batch is None:
        enc = state.encode(table, compat)
        batch = state.count(enc, backend=backend, n_threads=n_threads)
    state.add_counts(batch, table.n)
    boot = None
    if confidence is not None:
        rep = state.count(
            enc,
            n_bootstrap=int(n_bootstrap),
            seed=0 if seed is None else int(seed),
            backend=backend,
            n_threads=n_threads,
        )
        boot = {f: counts for f, (_, _, _, counts) in rep.items()}
    ft = FlipTests(table, spec, state, enc, compat) if "FT" in post_names else None
    return state.assemble(
        methods=methods,
        stage=stage,
        compat=compat,
        boot=boot,
        confidence=confidence,
        ft=ft,
        n_bootstrap=int(n_bootstrap) if confidence is not None else 0,
    )
