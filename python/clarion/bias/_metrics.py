r"""Layer 3 of the bias engine: every count-based metric as a pure function of a count tensor.

The input is one float64 array ``C[..., 2, K, 2, P]``:

* axis -4: facet group, 0 = facet a (the rest), 1 = facet d (the selected rows);
* axis -3: subgroup of the group variable (``K = 1`` without one);
* axis -2: observed label, 0 = negative, 1 = positive;
* axis -1: predicted label, 0 / 1 (``P = 1`` when there are no predictions: pre-training only).

Any leading axes (facet values, models, thresholds, bootstrap replicates) are carried through:
each function returns ``(value, reason)`` arrays of the leading shape, where ``reason`` is 0 for
a defined value and otherwise a code into :data:`MESSAGES`. No Python loop runs over the leading
axes, so 1,000 bootstrap replicates cost one vectorised evaluation.

Two conventions (``compat``):

* ``"clarion"``: an undefined value (0/0, an empty group, no group variable) is NaN with a reason;
  a limit that is truly infinite (x/0 with x > 0) is ±inf; ∞ − ∞ is NaN with a reason;
  KL, JS, LP, TVD and KS use the full label distribution of both groups.
* ``"smclarify"``: smclarify 0.5's arithmetic: 0/0 → 0, x/0 → ±inf, a difference of two +inf
  ratios → 0, the shared-support rule for KL … KS, and its error messages (the value is then NaN
  with the message as reason, as a failed metric in a smclarify report).

The formulas are in ``docs/metrics.md`` and in the metric registry,
:data:`clarion.bias.registry.METRIC_INFO`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = [
    "ALL_METRICS",
    "COUNT_METRICS",
    "MESSAGES",
    "METRIC_INFO",
    "POST_TRAINING",
    "PRE_TRAINING",
    "compute",
]

from clarion.bias.registry import METRIC_INFO, metric_names

#: metric names of each stage, sorted (the registry, :mod:`clarion.bias.registry`, keeps Clarify's order)
PRE_TRAINING = tuple(sorted(metric_names("pre")))
POST_TRAINING = tuple(sorted(metric_names("post")))
ALL_METRICS = PRE_TRAINING + POST_TRAINING
COUNT_METRICS = tuple(m for m in ALL_METRICS if m != "FT")

# Reason texts. Index 0 means "no error". smclarify's messages are verbatim.
MESSAGES: list[str] = [""]
_MSG_INDEX: dict[str, int] = {}


def _m(text: str) -> int:
    if text not in _MSG_INDEX:
        _MSG_INDEX[text] = len(MESSAGES)
        MESSAGES.append(text)
    return _MSG_INDEX[text]


# clarion reasons
R_D_EMPTY = _m("facet d is empty: no row (or no weight) has the selected value(s)")
R_A_EMPTY = _m("facet a is empty: every row (or all the weight) has the selected value(s)")
R_NO_GROUP = _m("no group_variable was given")
R_NO_POS = _m("no row has a positive label")
R_NO_NEG = _m("no row has a negative label")
R_NO_PRED_POS = _m("no row has a positive predicted label")
R_NO_PRED_NEG = _m("no row has a negative predicted label")
R_CDD_NO_SUBGROUP = _m("no subgroup of group_variable has both outcomes, so no subgroup disparity is defined")
R_DI_ZERO = _m("neither facet has a positive prediction (0/0)")
R_DCA_A = _m("facet a has no positive label and no positive prediction (0/0)")
R_DCA_D = _m("facet d has no positive label and no positive prediction (0/0)")
R_DCA_INF = _m("both facets have positive labels but no positive predictions (inf - inf)")
R_DCR_A = _m("facet a has no negative label and no negative prediction (0/0)")
R_DCR_D = _m("facet d has no negative label and no negative prediction (0/0)")
R_DCR_INF = _m("both facets have negative labels but no negative predictions (inf - inf)")
R_RD_A = _m("facet a has no positive label: its recall is 0/0")
R_RD_D = _m("facet d has no positive label: its recall is 0/0")
R_SD_A = _m("facet a has no negative label: its specificity is 0/0")
R_SD_D = _m("facet d has no negative label: its specificity is 0/0")
R_DAR_A = _m("facet a has no positive prediction: its precision is 0/0")
R_DAR_D = _m("facet d has no positive prediction: its precision is 0/0")
R_DRR_A = _m("facet a has no negative prediction: its negative predictive value is 0/0")
R_DRR_D = _m("facet d has no negative prediction: its negative predictive value is 0/0")
R_TE_A = _m("facet a has no false negative and no false positive (0/0)")
R_TE_D = _m("facet d has no false negative and no false positive (0/0)")
R_TE_INF = _m("both facets have false negatives but no false positives (inf - inf)")
R_GE_EMPTY = _m("there are no rows")
R_GE_ALL_FN = _m("every row is a false negative: the mean benefit is 0")
# smclarify 0.5 messages (verbatim)
S_CI_A = _m("CI: negated facet set is empty. Check that x[~facet] has non-zero length.")
S_CI_D = _m("CI: facet set is empty. Check that x[facet] has non-zero length.")
S_DPL_A = _m("Negative facet set is empty.")
S_DPL_D = _m("Facet set is empty.")
S_SHARED = _m("No instance of common facet found, dataset may be too small")
S_NO_GROUP = _m("Group variable is empty or not provided")
S_NO_POS = _m("No positive labels in set")
S_NO_NEG = _m("No negative labels in set")
S_DI_A = _m("Negated facet set is empty")
S_D = _m("Facet set is empty")
S_A = _m("Negated Facet set is empty")
S_DCO_D = _m("DCO: Facet set is empty")
S_DCO_A = _m("DCO: Negated Facet set is empty")
S_DLA_D = _m("DLA: Facet set is empty")
S_DLA_A = _m("DLA: Negated Facet set is empty")
S_DLR_D = _m("DLR: Facet set is empty")
S_DLR_A = _m("DLR: Negated Facet set is empty")
S_GE_EMPTY = _m("dataset must be non-empty")
S_GE_ALL_FN = _m(
    "All predicted labels are false negatives. There should be at least one prediction that is not false negative."
)


class _Out:
    """A value array and its reason codes; the first reason set wins."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = np.array(value, dtype=np.float64)
        self.reason = np.zeros(self.value.shape, dtype=np.int16)
        self.failed = False  # (whether a reason was written: done() has NaNs to set)

    def fail(self, mask: Any, code: int) -> _Out:
        mask = np.asarray(mask)
        # the usual case: nothing fails (no broadcast, no write); a bool mask's bytes are 0 or 1
        # (read without numpy's reduction machinery: a few arrays of a few values per metric)
        if not (mask.tobytes().strip(b"\x00") if mask.dtype == np.bool_ else mask.any()):
            return self
        mask = np.broadcast_to(mask, self.reason.shape) & (self.reason == 0)
        self.reason[mask] = code
        self.failed = True
        return self

    def done(self) -> tuple[np.ndarray, np.ndarray]:
        if self.failed:
            self.value[self.reason != 0] = np.nan
        return self.value, self.reason


def _div(x: np.ndarray, y: np.ndarray, compat: str) -> np.ndarray:
    """x / y; smclarify's ``divide`` turns 0/0 into 0 (x/0 is ±inf in both conventions)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.true_divide(x, y)
    if compat == "smclarify":
        r = np.where((x == 0) & (y == 0), 0.0, r)
    return r


def _diff_inf(r1: np.ndarray, r2: np.ndarray, compat: str) -> tuple[np.ndarray, np.ndarray]:
    """r1 - r2 and the mask where both are +inf (smclarify: 0; clarion: undefined)."""
    with np.errstate(invalid="ignore"):
        d = r1 - r2
    both = (r1 == np.inf) & (r2 == np.inf)
    if compat == "smclarify":
        d = np.where(both, 0.0, d)
    return d, both


class _Counts:
    """Named marginals of ``C[..., 2, K, 2, P]`` (computed once, shared by all metrics)."""

    def __init__(self, C: np.ndarray) -> None:
        C = np.asarray(C, dtype=np.float64)
        self.C = C
        g = C.sum(axis=-3)  # [..., 2, 2, P]  (group, y, yhat)
        self.n = g.sum(axis=(-1, -2))  # [..., 2]
        self.ny = g.sum(axis=-1)  # [..., 2(group), 2(y)]
        self.has_pred = C.shape[-1] == 2
        if self.has_pred:
            self.nyhat = g.sum(axis=-2)  # [..., 2(group), 2(yhat)]
            self.TN, self.FP = g[..., 0, 0], g[..., 0, 1]
            self.FN, self.TP = g[..., 1, 0], g[..., 1, 1]
        self.na, self.nd = self.n[..., 0], self.n[..., 1]
        self.a_empty, self.d_empty = self.na == 0, self.nd == 0


def _empty(out: _Out, c: _Counts, compat: str, a_code: int, d_code: int, d_first: bool) -> _Out:
    if compat == "smclarify":
        first, second = (
            ((c.d_empty, d_code), (c.a_empty, a_code)) if d_first else ((c.a_empty, a_code), (c.d_empty, d_code))
        )
        return out.fail(*first).fail(*second)
    return out.fail(c.d_empty, R_D_EMPTY).fail(c.a_empty, R_A_EMPTY)


def _ci(c: _Counts, compat: str) -> _Out:
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (c.na - c.nd) / (c.na + c.nd)
    return _empty(_Out(v), c, compat, S_CI_A, S_CI_D, d_first=False)


def _proportion_diff(c: _Counts, n1: np.ndarray, compat: str) -> _Out:
    with np.errstate(invalid="ignore", divide="ignore"):
        v = n1[..., 0] / c.na - n1[..., 1] / c.nd
    return _empty(_Out(v), c, compat, S_DPL_A, S_DPL_D, d_first=False)


def _distributions(c: _Counts, compat: str):
    """Pa, Pd over y = 0, 1, and the mask of label values to use."""
    with np.errstate(invalid="ignore", divide="ignore"):
        Pa = c.ny[..., 0, :] / c.na[..., None]
        Pd = c.ny[..., 1, :] / c.nd[..., None]
    if compat == "smclarify":
        use = (Pa > 0) & (Pd > 0)
    else:
        use = np.ones(Pa.shape, dtype=bool)
    return Pa, Pd, use


def _divergence_fail(out: _Out, c: _Counts, use: np.ndarray, compat: str) -> _Out:
    if compat == "smclarify":
        return out.fail(~use.any(axis=-1), S_SHARED)
    return out.fail(c.d_empty, R_D_EMPTY).fail(c.a_empty, R_A_EMPTY)


def _xlogy_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p ln(p/q) with 0 ln(0/q) = 0 and p ln(p/0) = inf for p > 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = p * np.log(p / q)
    return np.where(p == 0, 0.0, t)


def _kl(c: _Counts, compat: str) -> _Out:
    Pa, Pd, use = _distributions(c, compat)
    t = np.where(use, _xlogy_ratio(Pa, Pd), 0.0)
    return _divergence_fail(_Out(t[..., 0] + t[..., 1]), c, use, compat)


def _js(c: _Counts, compat: str) -> _Out:
    Pa, Pd, use = _distributions(c, compat)
    P = 0.5 * (Pa + Pd)
    ta = np.where(use, _xlogy_ratio(Pa, P), 0.0)
    td = np.where(use, _xlogy_ratio(Pd, P), 0.0)
    v = 0.5 * ((ta[..., 0] + ta[..., 1]) + (td[..., 0] + td[..., 1]))
    return _divergence_fail(_Out(v), c, use, compat)


def _lp(c: _Counts, compat: str, order: str) -> _Out:
    Pa, Pd, use = _distributions(c, compat)
    x = np.where(use, Pa - Pd, 0.0)
    if order == "LP":
        v = np.sqrt(x[..., 0] * x[..., 0] + x[..., 1] * x[..., 1])
    elif order == "TVD":
        v = 0.5 * (np.abs(x[..., 0]) + np.abs(x[..., 1]))
    else:
        v = np.maximum(np.abs(x[..., 0]), np.abs(x[..., 1]))
    return _divergence_fail(_Out(v), c, use, compat)


def _cdd(c: _Counts, compat: str, predicted: bool, has_group: bool, missing_subgroup: bool) -> _Out:
    X = c.C.sum(axis=-2) if predicted else c.C.sum(axis=-1)  # [..., 2(group), K, 2(outcome)]
    pos_i = X[..., 1].sum(axis=-2)  # [..., K]: positives per subgroup (both facets)
    neg_i = X[..., 0].sum(axis=-2)
    n_i = pos_i + neg_i
    pos_d_i, neg_d_i = X[..., 1, :, 1], X[..., 1, :, 0]
    pos_all, neg_all = pos_i.sum(axis=-1), neg_i.sum(axis=-1)
    if compat == "smclarify" and missing_subgroup:
        # smclarify's np.unique gives NaN its own subgroup whose mask matches nothing: weight 0
        n_i = n_i.copy()
        n_i[..., 0] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        A = pos_d_i / pos_i
        D = neg_d_i / neg_i
    if compat == "smclarify":
        A = np.where(pos_i != 0, A, 0.0)
        D = np.where(neg_i != 0, D, 0.0)
        dd = D - A
        num = (n_i * dd).sum(axis=-1)
        v = _div(num, n_i.sum(axis=-1), compat)
        out = _Out(v)
        if not has_group:
            return out.fail(True, S_NO_GROUP)
        return out.fail(pos_all == 0, S_NO_POS).fail(neg_all == 0, S_NO_NEG)
    ok = (pos_i != 0) & (neg_i != 0)
    w = np.where(ok, n_i, 0.0)
    dd = np.where(ok, D - A, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (w * dd).sum(axis=-1) / w.sum(axis=-1)
    out = _Out(v)
    if not has_group:
        return out.fail(True, R_NO_GROUP)
    out.fail(c.d_empty, R_D_EMPTY).fail(c.a_empty, R_A_EMPTY)
    out.fail(pos_all == 0, R_NO_PRED_POS if predicted else R_NO_POS)
    out.fail(neg_all == 0, R_NO_PRED_NEG if predicted else R_NO_NEG)
    return out.fail(w.sum(axis=-1) == 0, R_CDD_NO_SUBGROUP)


def _di(c: _Counts, compat: str) -> _Out:
    with np.errstate(invalid="ignore", divide="ignore"):
        qa = c.nyhat[..., 0, 1] / c.na
        qd = c.nyhat[..., 1, 1] / c.nd
    out = _Out(_div(qd, qa, compat))
    if compat == "smclarify":
        return out.fail(c.a_empty, S_DI_A).fail(c.d_empty, S_D)
    return _empty(out, c, compat, 0, 0, False).fail((qa == 0) & (qd == 0), R_DI_ZERO)


def _dco(c: _Counts, compat: str, which: str) -> _Out:
    if which == "DCA":
        ra = _div(c.ny[..., 0, 1], c.nyhat[..., 0, 1], compat)
        rd = _div(c.ny[..., 1, 1], c.nyhat[..., 1, 1], compat)
        v, both = _diff_inf(ra, rd, compat)
        codes = (R_DCA_A, R_DCA_D, R_DCA_INF)
    else:
        ra = _div(c.ny[..., 0, 0], c.nyhat[..., 0, 0], compat)
        rd = _div(c.ny[..., 1, 0], c.nyhat[..., 1, 0], compat)
        v, both = _diff_inf(rd, ra, compat)
        codes = (R_DCR_A, R_DCR_D, R_DCR_INF)
    out = _Out(v)
    if compat == "smclarify":
        return out.fail(c.d_empty, S_DCO_D).fail(c.a_empty, S_DCO_A)
    _empty(out, c, compat, 0, 0, False)
    return out.fail(np.isnan(ra), codes[0]).fail(np.isnan(rd), codes[1]).fail(both, codes[2])


def _rate_diff(c: _Counts, compat: str, num: tuple, den: tuple, d_minus_a: bool, codes: tuple, s_codes: tuple) -> _Out:
    """Difference of a per-group rate num/den; num/den are tuples of count arrays added up."""

    def rate(g: int) -> np.ndarray:
        x = sum(a[..., g] for a in num)
        y = sum(a[..., g] for a in den)
        return _div(x, y, compat)

    ra, rd = rate(0), rate(1)
    v, _ = _diff_inf(rd, ra, compat) if d_minus_a else _diff_inf(ra, rd, compat)
    out = _Out(v)
    if compat == "smclarify":
        return out.fail(c.d_empty, s_codes[0]).fail(c.a_empty, s_codes[1])
    _empty(out, c, compat, 0, 0, False)
    return out.fail(np.isnan(ra), codes[0]).fail(np.isnan(rd), codes[1])


def _ad(c: _Counts, compat: str) -> _Out:
    acc_a = _div(c.TP[..., 0] + c.TN[..., 0], c.na, compat)
    acc_d = _div(c.TP[..., 1] + c.TN[..., 1], c.nd, compat)
    v, _ = _diff_inf(acc_a, acc_d, compat)
    return _empty(_Out(v), c, compat, S_A, S_D, d_first=True)


def _te(c: _Counts, compat: str) -> _Out:
    ta = _div(c.FN[..., 0], c.FP[..., 0], compat)
    td = _div(c.FN[..., 1], c.FP[..., 1], compat)
    v, both = _diff_inf(td, ta, compat)
    out = _Out(v)
    if compat == "smclarify":
        return out.fail(c.d_empty, S_D).fail(c.a_empty, S_A)
    _empty(out, c, compat, 0, 0, False)
    return out.fail(np.isnan(ta), R_TE_A).fail(np.isnan(td), R_TE_D).fail(both, R_TE_INF)


def _ge(c: _Counts, compat: str) -> _Out:
    TP, TN = c.TP.sum(axis=-1), c.TN.sum(axis=-1)
    FP, FN = c.FP.sum(axis=-1), c.FN.sum(axis=-1)
    N = TP + TN + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (TP + TN + 2.0 * FP) / N
        r1 = 1.0 / mean
        r2 = 2.0 / mean
        total = -FN + (TP + TN) * (r1 * r1 - 1.0) + FP * (r2 * r2 - 1.0)
        v = total / (N * 2.0)
    out = _Out(v)
    if compat == "smclarify":
        return out.fail(N == 0, S_GE_EMPTY).fail(mean == 0, S_GE_ALL_FN)
    return out.fail(N == 0, R_GE_EMPTY).fail(mean == 0, R_GE_ALL_FN)


def compute(
    C: np.ndarray,
    methods: Iterable[str],
    *,
    compat: str = "clarion",
    has_group: bool = False,
    missing_subgroup: bool = False,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Evaluate count-based metrics on ``C[..., 2, K, 2, P]`` (see the module docstring).

    Parameters
    ----------
    C : ndarray
        Counts (or weighted counts); any leading axes.
    methods : iterable of str
        Metric names among :data:`COUNT_METRICS`; post-training ones need ``P == 2``.
    compat : {"clarion", "smclarify"}
        Edge-case convention.
    has_group : bool
        Whether axis -3 holds the subgroups of a group variable (else CDDL/CDDPL fail).
    missing_subgroup : bool
        Whether subgroup 0 holds rows whose group variable is missing (dropped by smclarify).

    Returns
    -------
    dict
        name → ``(value, reason)``, arrays of the leading shape; ``reason`` indexes
        :data:`MESSAGES` (0 = defined).
    """
    if compat not in ("clarion", "smclarify"):
        raise ValueError(f"compat must be 'clarion' or 'smclarify', got {compat!r}")
    c = _Counts(C)
    if SCALAR_FORMULAS and c.n.size == 2:  # one count table (a facet value, a model): Python floats
        return _compute_one(c, methods, compat, has_group, missing_subgroup)
    table: dict[str, Callable[[], _Out]] = {
        "CI": lambda: _ci(c, compat),
        "DPL": lambda: _proportion_diff(c, c.ny[..., 1], compat),
        "KL": lambda: _kl(c, compat),
        "JS": lambda: _js(c, compat),
        "LP": lambda: _lp(c, compat, "LP"),
        "TVD": lambda: _lp(c, compat, "TVD"),
        "KS": lambda: _lp(c, compat, "KS"),
        "CDDL": lambda: _cdd(c, compat, False, has_group, missing_subgroup),
    }
    if c.has_pred:
        TP, FP, FN, TN = c.TP, c.FP, c.FN, c.TN
        table.update(
            {
                "DPPL": lambda: _proportion_diff(c, c.nyhat[..., 1], compat),
                "DI": lambda: _di(c, compat),
                "DCA": lambda: _dco(c, compat, "DCA"),
                "DCR": lambda: _dco(c, compat, "DCR"),
                "RD": lambda: _rate_diff(c, compat, (TP,), (TP, FN), False, (R_RD_A, R_RD_D), (S_DLA_D, S_DLA_A)),
                "SD": lambda: _rate_diff(c, compat, (TN,), (TN, FP), True, (R_SD_A, R_SD_D), (S_DLA_D, S_DLA_A)),
                "DAR": lambda: _rate_diff(c, compat, (TP,), (TP, FP), False, (R_DAR_A, R_DAR_D), (S_DLR_D, S_DLR_A)),
                "DRR": lambda: _rate_diff(c, compat, (TN,), (TN, FN), True, (R_DRR_A, R_DRR_D), (S_DLR_D, S_DLR_A)),
                "AD": lambda: _ad(c, compat),
                "TE": lambda: _te(c, compat),
                "CDDPL": lambda: _cdd(c, compat, True, has_group, missing_subgroup),
                "GE": lambda: _ge(c, compat),
            }
        )
    out = {}
    for name in methods:
        if name not in table:
            if name in COUNT_METRICS:
                raise ValueError(f"metric {name} needs predicted labels (a count tensor with P == 2)")
            raise ValueError(f"unknown count-based metric {name!r}; known: {', '.join(COUNT_METRICS)}")
        out[name] = table[name]().done()
    return out


# ---- one count table: the same formulas on Python floats ----------------------------------------------

#: :func:`compute` on a count tensor without leading axes of more than one value (one facet value,
#: one model: what ``clarion analyze`` and most reports evaluate) takes each metric's formula on
#: Python floats (:func:`_compute_one`) instead of numpy calls on arrays of one value: the same
#: IEEE operations in the same order (the marginals, the sums over subgroups and the logarithms
#: are numpy's, as in the array path), so the same numbers and reasons. Off: always the array path
#: (tests compare the two).
SCALAR_FORMULAS = True

_NAN = float("nan")
_INF = float("inf")


def _fdiv(x: float, y: float) -> float:
    """``x / y`` as numpy divides (IEEE: x/±0 is ±inf, 0/0 and nan/0 are NaN)."""
    if y != 0 or y != y:
        return x / y
    if x != x or x == 0:
        return _NAN
    return _INF if (x > 0) == (math.copysign(1.0, y) > 0) else -_INF


def _sdiv(x: float, y: float, smclarify: bool) -> float:
    """:func:`_div` on floats."""
    if smclarify and x == 0 and y == 0:
        return 0.0
    return _fdiv(x, y)


def _sdiff(r1: float, r2: float, smclarify: bool) -> tuple[float, bool]:
    """:func:`_diff_inf` on floats."""
    both = r1 == _INF and r2 == _INF
    return (0.0 if smclarify and both else r1 - r2), both


def _first(v: float, *fails: tuple[Any, int]) -> tuple[float, int]:
    """``_Out(v).fail(...)...done()`` on one value: the first failing mask's code (value NaN)."""
    for mask, code in fails:
        if mask:
            return _NAN, code
    return v, 0


def _np_sum(values: list[float]) -> float:
    """numpy's sum of ``values`` (its pairwise order, as the array path sums a subgroup axis)."""
    return np.add.reduce(np.array(values, dtype=np.float64)).item()


def _logs(args: list[float]) -> list[float]:
    """``numpy.log`` of ``args`` (numpy's logarithm, as the array path takes it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.array(args, dtype=np.float64)).tolist()


def _compute_one(
    c: _Counts, methods: Iterable[str], compat: str, has_group: bool, missing_subgroup: bool
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`compute` on a count tensor whose leading axes hold one value, each formula on floats."""
    sm = compat == "smclarify"
    lead = c.n.shape[:-1]
    na, nd = c.n.reshape(2).tolist()
    ny = c.ny.reshape(4).tolist()  # [g * 2 + y]
    a_empty, d_empty = na == 0, nd == 0
    if sm:
        empty = {
            "CI": ((a_empty, S_CI_A), (d_empty, S_CI_D)),
            "DPL": ((a_empty, S_DPL_A), (d_empty, S_DPL_D)),
            "AD": ((d_empty, S_D), (a_empty, S_A)),
        }
    clarion_empty = ((d_empty, R_D_EMPTY), (a_empty, R_A_EMPTY))
    dist: list[Any] = []  # (Pa, Pd, use), made once

    def distributions() -> tuple[list[float], list[float], list[bool]]:
        if not dist:
            Pa = [_fdiv(ny[0], na), _fdiv(ny[1], na)]
            Pd = [_fdiv(ny[2], nd), _fdiv(ny[3], nd)]
            use = [Pa[y] > 0 and Pd[y] > 0 for y in (0, 1)] if sm else [True, True]
            dist.extend((Pa, Pd, use))
        return dist[0], dist[1], dist[2]

    def divergence(v: float, use: list[bool]) -> tuple[float, int]:
        if sm:
            return _first(v, (not (use[0] or use[1]), S_SHARED))
        return _first(v, *clarion_empty)

    def xlogy(p: list[float], q: list[float]) -> list[float]:
        logs = _logs([_fdiv(p[y], q[y]) for y in (0, 1)])
        return [0.0 if p[y] == 0 else p[y] * logs[y] for y in (0, 1)]

    def proportion(n1: list[float], key: str) -> tuple[float, int]:
        v = _fdiv(n1[0], na) - _fdiv(n1[1], nd)
        return _first(v, *(empty[key] if sm else clarion_empty))

    def ci() -> tuple[float, int]:
        return _first(_fdiv(na - nd, na + nd), *(empty["CI"] if sm else clarion_empty))

    def kl() -> tuple[float, int]:
        Pa, Pd, use = distributions()
        t = xlogy(Pa, Pd)
        t = [t[y] if use[y] else 0.0 for y in (0, 1)]
        return divergence(t[0] + t[1], use)

    def js() -> tuple[float, int]:
        Pa, Pd, use = distributions()
        P = [0.5 * (Pa[y] + Pd[y]) for y in (0, 1)]
        ta, td = xlogy(Pa, P), xlogy(Pd, P)
        ta = [ta[y] if use[y] else 0.0 for y in (0, 1)]
        td = [td[y] if use[y] else 0.0 for y in (0, 1)]
        return divergence(0.5 * ((ta[0] + ta[1]) + (td[0] + td[1])), use)

    def lp(order: str) -> tuple[float, int]:
        Pa, Pd, use = distributions()
        x = [Pa[y] - Pd[y] if use[y] else 0.0 for y in (0, 1)]
        if order == "LP":
            v = math.sqrt(x[0] * x[0] + x[1] * x[1])
        elif order == "TVD":
            v = 0.5 * (abs(x[0]) + abs(x[1]))
        else:
            u, w = abs(x[0]), abs(x[1])
            v = u if u != u else (w if w != w or w > u else u)  # numpy.maximum: a NaN wins
        return divergence(v, use)

    def cdd(predicted: bool) -> tuple[float, int]:
        X = c.C.sum(axis=-2) if predicted else c.C.sum(axis=-1)  # [..., 2(group), K, 2(outcome)]
        pos, neg = X[..., 1].sum(axis=-2), X[..., 0].sum(axis=-2)  # [..., K] (numpy's sums, as _cdd)
        pos_all, neg_all = pos.sum(axis=-1).item(), neg.sum(axis=-1).item()
        K = X.shape[-2]
        pos_i, neg_i = pos.reshape(K).tolist(), neg.reshape(K).tolist()
        pos_d, neg_d = X[..., 1, :, 1].reshape(K).tolist(), X[..., 1, :, 0].reshape(K).tolist()
        n_i = [p + q for p, q in zip(pos_i, neg_i)]
        A = [_fdiv(x, y) for x, y in zip(pos_d, pos_i)]
        D = [_fdiv(x, y) for x, y in zip(neg_d, neg_i)]
        if sm:
            if missing_subgroup:
                n_i[0] = 0.0
            A = [a if p != 0 else 0.0 for a, p in zip(A, pos_i)]
            D = [d if q != 0 else 0.0 for d, q in zip(D, neg_i)]
            num = _np_sum([n * (d - a) for n, d, a in zip(n_i, D, A)])
            v = _sdiv(num, _np_sum(n_i), sm)
            if not has_group:
                return _first(v, (True, S_NO_GROUP))
            return _first(v, (pos_all == 0, S_NO_POS), (neg_all == 0, S_NO_NEG))
        ok = [p != 0 and q != 0 for p, q in zip(pos_i, neg_i)]
        w = [n if k else 0.0 for n, k in zip(n_i, ok)]
        dd = [d - a if k else 0.0 for d, a, k in zip(D, A, ok)]
        w_all = _np_sum(w)
        v = _fdiv(_np_sum([x * y for x, y in zip(w, dd)]), w_all)
        if not has_group:
            return _first(v, (True, R_NO_GROUP))
        return _first(
            v,
            *clarion_empty,
            (pos_all == 0, R_NO_PRED_POS if predicted else R_NO_POS),
            (neg_all == 0, R_NO_PRED_NEG if predicted else R_NO_NEG),
            (w_all == 0, R_CDD_NO_SUBGROUP),
        )

    table: dict[str, Callable[[], tuple[float, int]]] = {
        "CI": ci,
        "DPL": lambda: proportion([ny[1], ny[3]], "DPL"),
        "KL": kl,
        "JS": js,
        "LP": lambda: lp("LP"),
        "TVD": lambda: lp("TVD"),
        "KS": lambda: lp("KS"),
        "CDDL": lambda: cdd(False),
    }
    if c.has_pred:
        nyhat = c.nyhat.reshape(4).tolist()
        TN, FP = c.TN.reshape(2).tolist(), c.FP.reshape(2).tolist()
        FN, TP = c.FN.reshape(2).tolist(), c.TP.reshape(2).tolist()

        def di() -> tuple[float, int]:
            qa, qd = _fdiv(nyhat[1], na), _fdiv(nyhat[3], nd)
            v = _sdiv(qd, qa, sm)
            if sm:
                return _first(v, (a_empty, S_DI_A), (d_empty, S_D))
            return _first(v, *clarion_empty, (qa == 0 and qd == 0, R_DI_ZERO))

        def dco(which: str) -> tuple[float, int]:
            if which == "DCA":
                ra, rd = _sdiv(ny[1], nyhat[1], sm), _sdiv(ny[3], nyhat[3], sm)
                v, both = _sdiff(ra, rd, sm)
                codes = (R_DCA_A, R_DCA_D, R_DCA_INF)
            else:
                ra, rd = _sdiv(ny[0], nyhat[0], sm), _sdiv(ny[2], nyhat[2], sm)
                v, both = _sdiff(rd, ra, sm)
                codes = (R_DCR_A, R_DCR_D, R_DCR_INF)
            if sm:
                return _first(v, (d_empty, S_DCO_D), (a_empty, S_DCO_A))
            return _first(v, *clarion_empty, (ra != ra, codes[0]), (rd != rd, codes[1]), (both, codes[2]))

        def rate_diff(num: tuple, den: tuple, d_minus_a: bool, codes: tuple, s_codes: tuple) -> tuple[float, int]:
            ra, rd = (_sdiv(sum(a[g] for a in num), sum(a[g] for a in den), sm) for g in (0, 1))
            v, _ = _sdiff(rd, ra, sm) if d_minus_a else _sdiff(ra, rd, sm)
            if sm:
                return _first(v, (d_empty, s_codes[0]), (a_empty, s_codes[1]))
            return _first(v, *clarion_empty, (ra != ra, codes[0]), (rd != rd, codes[1]))

        def ad() -> tuple[float, int]:
            acc_a = _sdiv(TP[0] + TN[0], na, sm)
            acc_d = _sdiv(TP[1] + TN[1], nd, sm)
            v, _ = _sdiff(acc_a, acc_d, sm)
            return _first(v, *(empty["AD"] if sm else clarion_empty))

        def te() -> tuple[float, int]:
            ta, td = _sdiv(FN[0], FP[0], sm), _sdiv(FN[1], FP[1], sm)
            v, both = _sdiff(td, ta, sm)
            if sm:
                return _first(v, (d_empty, S_D), (a_empty, S_A))
            return _first(v, *clarion_empty, (ta != ta, R_TE_A), (td != td, R_TE_D), (both, R_TE_INF))

        def ge() -> tuple[float, int]:
            tp, tn = c.TP.sum(axis=-1).item(), c.TN.sum(axis=-1).item()  # (numpy's sums, as the array path)
            fp, fn = c.FP.sum(axis=-1).item(), c.FN.sum(axis=-1).item()
            N = tp + tn + fp + fn
            mean = _fdiv(tp + tn + 2.0 * fp, N)
            r1, r2 = _fdiv(1.0, mean), _fdiv(2.0, mean)
            total = -fn + (tp + tn) * (r1 * r1 - 1.0) + fp * (r2 * r2 - 1.0)
            v = _fdiv(total, N * 2.0)
            return _first(
                v, (N == 0, S_GE_EMPTY if sm else R_GE_EMPTY), (mean == 0, S_GE_ALL_FN if sm else R_GE_ALL_FN)
            )

        table.update(
            {
                "DPPL": lambda: proportion([nyhat[1], nyhat[3]], "DPL"),
                "DI": di,
                "DCA": lambda: dco("DCA"),
                "DCR": lambda: dco("DCR"),
                "RD": lambda: rate_diff((TP,), (TP, FN), False, (R_RD_A, R_RD_D), (S_DLA_D, S_DLA_A)),
                "SD": lambda: rate_diff((TN,), (TN, FP), True, (R_SD_A, R_SD_D), (S_DLA_D, S_DLA_A)),
                "DAR": lambda: rate_diff((TP,), (TP, FP), False, (R_DAR_A, R_DAR_D), (S_DLR_D, S_DLR_A)),
                "DRR": lambda: rate_diff((TN,), (TN, FN), True, (R_DRR_A, R_DRR_D), (S_DLR_D, S_DLR_A)),
                "AD": ad,
                "TE": te,
                "CDDPL": lambda: cdd(True),
                "GE": ge,
            }
        )
    names, values, reasons = [], [], []
    for name in methods:
        if name not in table:
            if name in COUNT_METRICS:
                raise ValueError(f"metric {name} needs predicted labels (a count tensor with P == 2)")
            raise ValueError(f"unknown count-based metric {name!r}; known: {', '.join(COUNT_METRICS)}")
        v, r = table[name]()
        names.append(name)
        values.append(v)
        reasons.append(r)
    V = np.array(values, dtype=np.float64)
    R = np.array(reasons, dtype=np.int16)
    return {name: (V[i : i + 1].reshape(lead), R[i : i + 1].reshape(lead)) for i, name in enumerate(names)}
