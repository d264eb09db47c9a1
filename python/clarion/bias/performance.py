r"""Model performance per group and threshold trade-off curves, from count tensors.

The numbers behind the bias metrics: for every facet value, its group *d* (rows with the value)
and the rest *a*, how many rows there are, their label and prediction rates, the confusion
matrix and the rates derived from it, and for a scored model (a probability) the ROC AUC, a
calibration table and the bias metrics at every probability threshold.

Everything comes from one pass over the rows, as count tensors:

* the confusion matrix of each group at the configured decision — :func:`clarion.grouped_counts`
  on the predicted labels (or the threshold counts below at ``probability_threshold``);
* for a score, the confusion matrix of each group at every threshold of a fixed grid
  (``score > t`` for t = 0, 0.001, …, 1, plus the curve thresholds and ``probability_threshold``)
  — one :func:`clarion.grouped_threshold_counts` call per batch. The ROC curve, its AUC and the
  trade-off curves are read off this tensor: no sort, no second pass;
* per facet code and calibration bin, the row count, the weight and the weighted score sum (one
  ``numpy.bincount`` per batch).

Formulas, for a group with weighted confusion cells TP, FP, FN, TN and n = TP + FP + FN + TN:

=========================  =============================  ===================================
key                        formula                        undefined (null) when
=========================  =============================  ===================================
observed_positive_rate     (TP + FN) / n                  n = 0 (empty group)
predicted_positive_rate    (TP + FP) / n                  n = 0
accuracy                   (TP + TN) / n                  n = 0
precision                  TP / (TP + FP)                 no predicted positives
recall                     TP / (TP + FN)                 no observed positives
false_positive_rate        FP / (FP + TN)                 no observed negatives
true_negative_rate         TN / (FP + TN)                 no observed negatives
negative_predictive_value  TN / (TN + FN)                 no predicted negatives
f1                         2TP / (2TP + FP + FN)          no observed or predicted positives
roc_auc                    Σ_j (F_j − F_{j+1}) (T_j + T_{j+1}) / 2 over the grid's ROC points
                           (F, T) = (FP/(FP+TN), TP/(TP+FN)) at ``score > t_j``, plus (1, 1)
                           and (0, 0)                     no observed positives or negatives
=========================  =============================  ===================================

The AUC is exact (equal to ``sklearn.metrics.roc_auc_score``, ties counted ½) when every score
is a multiple of the grid step 0.001 (or any score in [0, 1] rounded to 3 decimals); otherwise
rows of opposite labels whose scores fall in the same grid cell count as ties, so the error is at
most ½ Σ_cells p₊(cell) p₋(cell) (p±: the share of the positives / negatives in the cell).

Calibration: 10 equal-width bins over [0, 1] with edges 0, 0.1, …, 1; bin 0 holds scores ≤ 0.1,
bin i (1 ≤ i ≤ 8) holds 0.1·i < score ≤ 0.1·(i + 1), bin 9 holds scores > 0.9 — the bins of
``sklearn.calibration.calibration_curve(strategy="uniform")``. Per bin: ``rows``, ``mean_score``
(weighted mean) and ``observed_positive_rate`` (weighted); null for an empty bin.

Trade-off curves (``threshold_curve``): at each threshold t of ``thresholds`` (default 0, 0.01, …,
1, plus ``probability_threshold``), the predicted label is ``score > t`` and

* DPPL(t) = q̂_a − q̂_d, q̂_g = (TP_g + FP_g) / n_g — demographic parity;
* DI(t) = q̂_d / q̂_a — disparate impact (the four-fifths rule reads DI ≥ 0.8);
* RD(t) = TP_a/(TP_a+FN_a) − TP_d/(TP_d+FN_d) — equal opportunity (recall difference), with
  Clarify's sign convention (a − d);
* accuracy(t) = (TP + TN) / n over all rows;

evaluated by the same formulas as :func:`clarion.bias.report` (so the value at
``probability_threshold`` equals the report's), null where undefined.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clarion.bias._engine import Spec, State, Table
from clarion.bias._metrics import MESSAGES, compute
from clarion.bias.accumulator import _StreamCounter

__all__ = [
    "CALIBRATION_BINS",
    "COUNT_GRID_STEP",
    "CURVE_THRESHOLDS",
    "GroupPerformance",
    "PerformanceAccumulator",
    "group_performance",
    "threshold_curves",
]

#: the step of the threshold grid that the ROC curve and the AUC are read from
COUNT_GRID_STEP = 0.001
_COUNT_GRID = np.arange(1001, dtype=np.float64) / 1000.0
#: the default thresholds of the trade-off curves: 0, 0.01, ..., 1
CURVE_THRESHOLDS: tuple[float, ...] = tuple(float(x) for x in np.arange(101, dtype=np.float64) / 100.0)
#: equal-width calibration bins over [0, 1]
CALIBRATION_BINS = 10
# batches of up to this many rows are counted on one thread (see PerformanceAccumulator.update)
_ONE_THREAD_ROWS = 1 << 18

R_EMPTY = "empty group"
R_NO_PRED_POS = "no predicted positives"
R_NO_POS = "no observed positives"
R_NO_NEG = "no observed negatives"
R_NO_PRED_NEG = "no predicted negatives"
R_NO_POS_AT_ALL = "no observed or predicted positives"

MSG_PROBABILITY_LABEL = (
    "probability: scores need a classification label given by label_values (with label_threshold a "
    "float prediction is a predicted value, thresholded like the label)"
)
MSG_NEED_MODEL = "give predicted_label (predicted labels) and/or probability (scores of the positive class)"
MSG_THRESHOLDS = "thresholds must be numbers in [0, 1], got {value!r}"
MSG_NO_ROWS = "result: no batch was counted yet (no update, or every update failed)"
MSG_READS_ACCUMULATOR = "update: this PerformanceAccumulator reads Accumulators' counts; update the Accumulators"


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def _num(v: float) -> float | None:
    """A float for JSON: NaN → None (±inf stays and is written as Clarify writes it)."""
    v = float(v)
    return None if v != v else v


def _roc_auc(tp: np.ndarray, fp: np.ndarray, P: float, N: float) -> float:
    if P <= 0 or N <= 0:
        return float("nan")
    tpr = np.concatenate([[1.0], tp / P, [0.0]])
    fpr = np.concatenate([[1.0], fp / N, [0.0]])
    # points go from (1, 1) down to (0, 0) as the threshold rises
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2.0))


def _stats(
    cm: np.ndarray | None,
    label_w: np.ndarray,
    rows: int,
    *,
    roc: tuple[np.ndarray, np.ndarray] | None = None,
    cal: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """One group's statistics. ``cm``: [2 (observed), 2 (predicted)] weighted counts or None (pre);
    ``label_w``: [2] weighted counts of negative / positive labels; ``roc``: (TP, FP) per count
    threshold; ``cal``: (rows, weight, positive weight, score sum) per calibration bin."""
    weight = float(label_w.sum())
    undefined: dict[str, str] = {}
    g: dict[str, Any] = {"rows": int(rows), "weight": weight}
    opr = _ratio(label_w[1], weight)
    if opr != opr:
        undefined["observed_positive_rate"] = R_EMPTY
    g["observed_positive_rate"] = _num(opr)
    if cm is not None:
        tn, fp, fn, tp = (float(x) for x in np.asarray(cm, dtype=np.float64).reshape(4).tolist())
        n = tp + fp + fn + tn
        vals = {
            "predicted_positive_rate": (_ratio(tp + fp, n), R_EMPTY),
            "accuracy": (_ratio(tp + tn, n), R_EMPTY),
            "precision": (_ratio(tp, tp + fp), R_NO_PRED_POS if n > 0 else R_EMPTY),
            "recall": (_ratio(tp, tp + fn), R_NO_POS if n > 0 else R_EMPTY),
            "false_positive_rate": (_ratio(fp, fp + tn), R_NO_NEG if n > 0 else R_EMPTY),
            "true_negative_rate": (_ratio(tn, fp + tn), R_NO_NEG if n > 0 else R_EMPTY),
            "negative_predictive_value": (_ratio(tn, tn + fn), R_NO_PRED_NEG if n > 0 else R_EMPTY),
            "f1": (_ratio(2 * tp, 2 * tp + fp + fn), R_NO_POS_AT_ALL if n > 0 else R_EMPTY),
        }
        g["predicted_positive_rate"] = _num(vals["predicted_positive_rate"][0])
        g["confusion_matrix"] = {"TP": tp, "FP": fp, "FN": fn, "TN": tn}
        for k in list(vals)[1:]:
            g[k] = _num(vals[k][0])
        for k, (v, why) in vals.items():
            if v != v:
                undefined[k] = why
    if roc is not None:
        auc = _roc_auc(roc[0], roc[1], float(label_w[1]), float(label_w[0]))
        g["roc_auc"] = _num(auc)
        if auc != auc:
            undefined["roc_auc"] = R_EMPTY if weight <= 0 else (R_NO_POS if label_w[1] <= 0 else R_NO_NEG)
    if cal is not None:
        c_rows, c_w, c_pos, c_sum = cal
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(c_w > 0, c_sum / np.where(c_w > 0, c_w, 1.0), np.nan)
            rate = np.where(c_w > 0, c_pos / np.where(c_w > 0, c_w, 1.0), np.nan)
        g["calibration"] = {
            "bin_edges": [float(x) for x in np.arange(CALIBRATION_BINS + 1) / CALIBRATION_BINS],
            "rows": [int(x) for x in c_rows],
            "mean_score": [_num(x) for x in mean],
            "observed_positive_rate": [_num(x) for x in rate],
        }
    g["undefined"] = undefined
    return g


@dataclass
class GroupPerformance:
    """Per-group statistics and trade-off curves (see :mod:`clarion.bias.performance`).

    Attributes
    ----------
    dataset : dict
        ``{"rows", "weight", "observed_positive_rate"}`` over all rows.
    model_performance : dict or None
        The statistics of all rows (the keys of a group, plus ``label_positive_rate``); None
        without a model.
    facets : dict
        facet → list of entries ``{"value_or_threshold", "group_statistics": {"facet_d",
        "facet_a"}, "threshold_curve"?}``, in :func:`clarion.bias.report`'s entry order.
    pre_facets : dict
        The same entries with the pre-training statistics only (rows, weight, observed rate).
    """

    dataset: dict[str, Any]
    model_performance: dict[str, Any] | None
    facets: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)
    pre_facets: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"dataset", "model_performance", "facets", "pre_facets"}`` (JSON types; NaN as None)."""
        return {
            "dataset": self.dataset,
            "model_performance": self.model_performance,
            "facets": {str(k): v for k, v in self.facets.items()},
            "pre_facets": {str(k): v for k, v in self.pre_facets.items()},
        }

    def to_frame(self) -> Any:
        """A long table: one row per (facet, value_or_threshold, group ``d``/``a``) and one
        ``all`` row, with the scalar statistics as columns."""
        import pandas as pd

        keys = [
            "rows",
            "weight",
            "observed_positive_rate",
            "predicted_positive_rate",
            "accuracy",
            "precision",
            "recall",
            "false_positive_rate",
            "roc_auc",
        ]
        src = self.facets if self.model_performance is not None else self.pre_facets
        recs = []
        for f, entries in src.items():
            for e in entries:
                for grp in ("d", "a"):
                    g = e["group_statistics"][f"facet_{grp}"]
                    rec = {"facet": f, "value_or_threshold": e["value_or_threshold"], "group": grp}
                    rec.update({k: g.get(k) for k in keys})
                    cm = g.get("confusion_matrix") or {}
                    rec.update({k: cm.get(k) for k in ("TP", "FP", "FN", "TN")})
                    recs.append(rec)
        allg = self.model_performance if self.model_performance is not None else self.dataset
        rec = {"facet": None, "value_or_threshold": None, "group": "all"}
        rec.update({k: allg.get(k) for k in keys})
        cm = allg.get("confusion_matrix") or {}
        rec.update({k: cm.get(k) for k in ("TP", "FP", "FN", "TN")})
        recs.append(rec)
        frame = pd.DataFrame.from_records(recs)
        return frame.dropna(axis=1, how="all").set_index(["facet", "value_or_threshold", "group"])


def _curve_grid(thresholds: Sequence[float] | None) -> np.ndarray:
    if thresholds is None:
        return np.asarray(CURVE_THRESHOLDS, dtype=np.float64)
    try:
        t = np.asarray(list(thresholds), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(MSG_THRESHOLDS.format(value=thresholds)) from None
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or t.min() < 0 or t.max() > 1:
        raise ValueError(MSG_THRESHOLDS.format(value=thresholds))
    return np.unique(t)


class PerformanceAccumulator:
    """The counts behind :class:`GroupPerformance`, fed batch by batch (``clarion analyze`` feeds
    one per facet in its single pass).

    Parameters
    ----------
    label, facet, facet_values, facet_threshold, label_values, label_threshold, weights
        As in :func:`clarion.bias.report` (columns by name).
    predicted_label : str, optional
        Column of predicted labels (the model's decision).
    probability : str, optional
        Column of scores of the positive class (needs ``label_values``).
    probability_threshold : float, default 0.5
        The configured decision threshold on ``probability`` (used for the confusion matrix when
        there is no ``predicted_label``, and marked on the curves).
    thresholds : sequence of float, optional
        Thresholds of the trade-off curves (default :data:`CURVE_THRESHOLDS`).
    """

    def __init__(
        self,
        *,
        label: Any,
        facet: Any,
        facet_values: Any = None,
        facet_threshold: Any = None,
        label_values: Any = None,
        label_threshold: Any = None,
        predicted_label: Any = None,
        probability: Any = None,
        probability_threshold: float = 0.5,
        weights: Any = None,
        thresholds: Sequence[float] | None = None,
    ) -> None:
        if probability is not None and label_values is None:
            raise ValueError(MSG_PROBABILITY_LABEL)
        # models named by their columns (errors then name the column); a float predicted_label with
        # label_values is a score too (clarion.bias.report's rule): it gets the threshold grid as well
        self.pred_name = predicted_label if isinstance(predicted_label, str) else "predicted_label"
        self.prob_name = probability if isinstance(probability, str) else "probability"
        if self.prob_name == self.pred_name:
            self.prob_name = f"{self.prob_name} (probability)"
        models: dict[str, Any] = {}
        if predicted_label is not None:
            models[self.pred_name] = predicted_label
        if probability is not None:
            models[self.prob_name] = probability
        self.curve_t = _curve_grid(thresholds)
        pt = float(probability_threshold)
        if thresholds is None:
            count_t, count_list = _default_count_grid(pt)
        else:
            count_t = np.unique(np.concatenate([_COUNT_GRID, self.curve_t, [pt]]))
            count_list = count_t.tolist()
        self.spec = Spec.build(
            label=label,
            facet=facet,
            facet_values=facet_values,
            facet_threshold=facet_threshold,
            label_values=label_values,
            label_threshold=label_threshold,
            predicted_label=models or None,
            probability_threshold=list(count_list) if label_values is not None else pt,  # (Python floats)
            weights=weights,
        )
        self.count_t = count_t
        self.threshold = pt
        self.state = State(self.spec)
        # per facet, with weights: unweighted rows [V, 2 (label)] (without weights they are the count
        # tables' own, summed in _rows); with scores [V, bins, 2, 3 (rows, weight, score sum)]
        self.rows: dict[Any, np.ndarray] = {f: np.zeros((0, 2), dtype=np.int64) for f in self.spec.facets}
        self.cal: dict[Any, np.ndarray] = {
            f: np.zeros((0, CALIBRATION_BINS, 2, 3), dtype=object) for f in self.spec.facets
        }
        # without weights and scores a batch is counted as Accumulator.update counts it: the compiled
        # stream, else the one-pass path (one slot-count pass per facet), else the general path below
        # (the stream reads its columns by name: predicted labels given as an array take the general path)
        self._steady: _StreamCounter | None = None
        if weights is None and probability is None and (predicted_label is None or isinstance(predicted_label, str)):
            self._steady = _StreamCounter(self.state)
        self._reads: dict[Any, State] | None = None  # facet -> the Accumulator state it reads (read_counts)

    def read_counts(self, accumulators: Sequence[Any]) -> bool:
        """Take the counts of bias :class:`clarion.bias.Accumulator` objects instead of counting
        the rows a second time: one accumulator per facet of this one, each made with this one's
        label, facet (that one), label and predicted-label arguments. Returns whether it could;
        where it could not, nothing changes (update this one as usual).

        Possible before this one's first update, for accumulators that have counted a batch, with
        no weights, no time windows and no bootstrap replicates, whose predicted label (if any) is
        one column of predicted labels (not scores), as this one's. Their tables then hold the
        rows per (facet value, group of the group variable, label, prediction); summed over the
        group variable they are this class's own tables (integer counts: the same numbers,
        whatever the order of the sums). ``result()`` then follows the accumulators' later
        updates, and ``update()`` raises (update the accumulators)."""
        if self._reads is not None or any(fs.counts for fs in self.state.facets.values()):
            return False
        if self.spec.weights is not None or self.prob_name in {n for n, _ in self.spec.models}:
            return False
        facets = list(self.spec.facets)
        if len(accumulators) != len(facets):
            return False
        reads = {}
        for f, acc in zip(facets, accumulators):
            st = acc._states.get("all") if acc.window is None and len(acc._states) == 1 else None
            spec = acc.spec
            if st is None or acc.n_bootstrap or spec.weights is not None or list(spec.facets) != [f]:
                return False
            if (spec.facet_values.get(f), spec.facet_threshold.get(f)) != (
                self.spec.facet_values.get(f),
                self.spec.facet_threshold.get(f),
            ):
                return False
            if f not in st.facets or not st.facets[f].counts:
                return False
            if [src for _, src in spec.models] != [src for _, src in self.spec.models]:
                return False
            if spec.models and (not isinstance(spec.models[0][1], str) or st.model_kinds != ["labels"]):
                return False
            if (spec.label, spec.label_values, spec.label_threshold) != (
                self.spec.label,
                self.spec.label_values,
                self.spec.label_threshold,
            ):
                return False
            reads[f] = st
        self._reads = reads
        self._steady = None
        return True

    def update(self, batch: Any) -> PerformanceAccumulator:
        """Count a batch (a DataFrame, pyarrow table or dict of arrays holding the columns).

        Without weights and a score (a predicted label, or no model) a batch costs what
        :meth:`clarion.bias.Accumulator.update` costs: the compiled stream or one slot-count pass
        per facet, the rows per (facet value, label) read off the count tables afterwards. With
        weights or a score it is encoded and counted by the general path (``State.update``), plus
        one ``numpy.bincount`` per facet of the unweighted rows (weights) and the calibration sums
        (score)."""
        if self._reads is not None:
            raise ValueError(MSG_READS_ACCUMULATOR)
        steady = self._steady
        if steady is not None and steady.count(batch):
            return self
        table = Table(batch)
        # a batch of up to _ONE_THREAD_ROWS rows is counted on the calling thread: starting the
        # kernel's threads costs more than they save there, and under load (a reader thread
        # parsing the next chunk) they wait for a core; the counts never depend on the threads
        kw = {"n_threads": 1} if table.n <= _ONE_THREAD_ROWS else {}
        st = self.state
        enc = st.update(table, "clarion", **kw)
        if steady is not None and st.model_kinds is not None and st.model_kinds != ["labels"]:
            self._steady = None  # a float predicted_label: a score, for every batch
        weighted = self.spec.weights is not None
        _, _, roc_j = self._roles()
        s = enc["scores"][:, roc_j] if roc_j is not None else None
        if not weighted and s is None:
            return self
        y = np.asarray(enc["y"], dtype=np.intp)
        w = enc["w"]
        if s is not None:
            # bin b: edges[b] < s <= edges[b + 1] (bin 0 takes s <= 0.1, the last s > 0.9)
            inner = np.arange(1, CALIBRATION_BINS) / CALIBRATION_BINS
            b = np.searchsorted(inner, s, side="left")
        for f in self.spec.facets:
            codes = np.asarray(enc["facets"][f][0], dtype=np.intp)
            V = max(st.facets[f].n_codes, int(codes.max()) + 1 if codes.size else 0)
            if weighted:
                rows = np.bincount(codes * 2 + y, minlength=2 * V).reshape(V, 2)
                with st.lock:
                    self.rows[f] = _grow(self.rows[f], V) + _grow(rows, self.rows[f].shape[0])
            if s is not None:
                idx = (codes * CALIBRATION_BINS + b) * 2 + y
                size = V * CALIBRATION_BINS * 2
                ww = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
                # exact sums (Python integers in units of 2**-_EXACT_UNIT): any split of the rows into
                # batches, and any order, gives the same bits
                parts = [
                    np.bincount(idx, minlength=size).astype(object),
                    np.asarray(_exact_sums(idx, ww, size), dtype=object),
                    np.asarray(_exact_sums(idx, ww * s, size), dtype=object),
                ]
                cal = np.stack(parts, axis=-1).reshape(V, CALIBRATION_BINS, 2, 3)
                with st.lock:
                    self.cal[f] = _grow(self.cal[f], V) + _grow(cal, self.cal[f].shape[0])
        return self

    def _rows(self, f: Any, fs: Any, V: int) -> np.ndarray:
        """Unweighted rows per (facet code, label) [V, 2]: without weights, any count table of the
        facet summed over the group and prediction axes (every row is counted once in each)."""
        if self.spec.weights is not None:
            return _grow(self.rows[f], V)
        c = fs.counts
        if "labels" in c:
            r = c["labels"][0].sum(axis=(1, 3))  # [V, K, 2, 2] -> [V, 2]
        elif "scores" in c:
            r = c["scores"][0, 0].sum(axis=(1, 3))
        elif "pre" in c:
            r = c["pre"].sum(axis=1)  # [V, K, 2] -> [V, 2]
        else:
            r = np.zeros((0, 2), dtype=np.int64)
        return _grow(r, V)

    def _roles(self, st: State | None = None) -> tuple[int | None, int | None, int | None]:
        """(index among the label models of the decision, index among the score models of the
        decision, index among the score models of the ROC / calibration score), by what each
        model turned out to be (labels or scores) in the first batch (of the counts ``st``)."""
        kinds = (self.state if st is None else st).model_kinds or []
        names = [n for n, _ in self.spec.models]
        labs = [n for n, k in zip(names, kinds) if k == "labels"]
        scs = [n for n, k in zip(names, kinds) if k == "scores"]
        lab_j = labs.index(self.pred_name) if self.pred_name in labs else None
        roc = self.prob_name if self.prob_name in scs else (self.pred_name if self.pred_name in scs else None)
        roc_j = None if roc is None else scs.index(roc)
        cm_j = None if lab_j is not None else (scs.index(self.pred_name) if self.pred_name in scs else roc_j)
        return lab_j, cm_j, roc_j

    # -- results -----------------------------------------------------------------------------------
    def _split(self, c: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(d [..., E, ...], a [..., E, ...], total [...]) of a tensor whose axis 0 is the facet code."""
        c = c.astype(np.float64, copy=False)
        # np.tensordot(sel, c, axes=(1, 0)), as it computes it (one dot of the two as matrices),
        # without its Python set-up
        d = np.dot(sel, c.reshape(c.shape[0], math.prod(c.shape[1:]))).reshape(sel.shape[:1] + c.shape[1:])
        total = c.sum(axis=0)
        return d, total[None] - d, total

    def result(self) -> GroupPerformance:
        """The statistics (and curves, with a score) of the rows counted so far (``ValueError``
        before any batch was counted)."""
        if self._reads is not None:
            facets: dict[Any, list] = {}
            pre_facets: dict[Any, list] = {}
            dataset = model_perf = None
            for f, st in self._reads.items():
                with st.lock:
                    st.check_label_values()
                    pre_facets[f], post, ds, mp = self._facet(f, st.facets[f], st)
                dataset = dataset or ds
                if post is not None:
                    facets[f] = post
                    model_perf = model_perf or mp
            return GroupPerformance(dataset=dataset, model_performance=model_perf, facets=facets, pre_facets=pre_facets)
        st = self.state
        with st.lock:
            if not any(fs.counts for fs in st.facets.values()):  # (no update, or every one failed)
                raise ValueError(MSG_NO_ROWS)
            st.check_label_values()
            facets = {}
            pre_facets = {}
            dataset = model_perf = None
            for f, fs in st.facets.items():
                pre_facets[f], post, ds, mp = self._facet(f, fs, st)
                dataset = dataset or ds
                if post is not None:
                    facets[f] = post
                    model_perf = model_perf or mp
            if dataset is None:  # pragma: no cover - a Spec always has a facet
                dataset = {"rows": 0, "weight": 0.0, "observed_positive_rate": None}
            return GroupPerformance(dataset=dataset, model_performance=model_perf, facets=facets, pre_facets=pre_facets)

    def _facet(self, f: Any, fs: Any, st: State) -> tuple[list, list | None, dict, dict | None]:
        """(pre-training entries, post-training entries or None, dataset, model performance) of a
        facet (``fs``, a facet state of the counts ``st``)."""
        labels, sel, _ = st.entries(fs, "clarion")
        V = fs.n_codes
        sel = sel[:, :V]
        rows = self._rows(f, fs, V).astype(np.float64)
        rd, ra, rt = self._split(rows, sel)  # unweighted rows per label
        if "pre" in fs.counts:
            lab = _grow(fs.counts["pre"], V).sum(axis=1)
        elif "labels" in fs.counts:
            lab = _grow(fs.counts["labels"][0], V).sum(axis=(1, 3))
        else:
            lab = _grow(fs.counts["scores"][0, 0], V).sum(axis=(1, 3))
        ld, la, lt = self._split(lab, sel)
        cm_d = cm_a = cm_t = None
        roc = None
        lab_j, cm_j, roc_j = self._roles(st)

        def scores(j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            sc = np.moveaxis(fs.counts["scores"][j], 0, 1)  # [V, T, K, 2, 2]
            return self._split(_grow(sc, V).sum(axis=2), sel)  # [E, T, 2, 2] x 2, [T, 2, 2]

        if lab_j is not None:
            lc = _grow(fs.counts["labels"][lab_j], V)
            cm_d, cm_a, cm_t = self._split(lc.reshape(V, -1, 2, 2).sum(axis=1), sel)
        elif cm_j is not None:
            sd, sa, stt = scores(cm_j)
            j = int(np.searchsorted(self.count_t, self.threshold))
            cm_d, cm_a, cm_t = sd[:, j], sa[:, j], stt[j]
        if roc_j is not None:
            roc = scores(roc_j)
            cd, ca, ctot = _exact_split(_grow(self.cal[f], V), sel)

        def group(i: int | None, which: str, pre: bool) -> dict[str, Any]:
            if i is None:
                r, lw, cm = rt, lt, cm_t
            else:
                r = (rd if which == "d" else ra)[i]
                lw = (ld if which == "d" else la)[i]
                cm = None if cm_d is None else (cm_d if which == "d" else cm_a)[i]
            if pre or cm is None:
                return _stats(None, lw, int(round(r.sum())))
            kw: dict[str, Any] = {}
            if roc is not None:
                t = roc[2] if i is None else (roc[0] if which == "d" else roc[1])[i]
                kw["roc"] = (t[:, 1, 1], t[:, 0, 1])
                c = ctot if i is None else (cd if which == "d" else ca)[i]  # [bins, 2, 3]
                kw["cal"] = (
                    c[:, :, 0].sum(axis=1).round().astype(np.int64),
                    c[:, :, 1].sum(axis=1),
                    c[:, 1, 1],
                    c[:, :, 2].sum(axis=1),
                )
            return _stats(cm, lw, int(round(r.sum())), **kw)

        pre = [
            {
                "value_or_threshold": v,
                "group_statistics": {"facet_d": group(i, "d", True), "facet_a": group(i, "a", True)},
            }
            for i, v in enumerate(labels)
        ]
        g = group(None, "", True)
        dataset = {k: g[k] for k in ("rows", "weight", "observed_positive_rate")}
        if cm_d is None:
            return pre, None, dataset, None
        curves = self._curves(roc, labels) if roc is not None else None
        post = []
        for i, v in enumerate(labels):
            e: dict[str, Any] = {
                "value_or_threshold": v,
                "group_statistics": {"facet_d": group(i, "d", False), "facet_a": group(i, "a", False)},
            }
            if curves is not None:
                e["threshold_curve"] = curves[i]
            post.append(e)
        model_perf = group(None, "", False)
        model_perf["label_positive_rate"] = model_perf["observed_positive_rate"]
        return pre, post, dataset, model_perf

    def _curves(self, roc: tuple[np.ndarray, np.ndarray, np.ndarray], labels: list[str]) -> list[dict[str, Any]]:
        sd, sa, stt = roc  # [E, T, 2, 2], [E, T, 2, 2], [T, 2, 2]
        t_all = np.unique(np.concatenate([self.curve_t, [self.threshold]]))
        idx = np.searchsorted(self.count_t, t_all)
        # the post-training layout of clarion.bias: [T, E, 2 (a, d), K = 1, 2, 2]
        C = np.stack([sa[:, idx], sd[:, idx]], axis=2)[:, :, :, None]
        C = np.moveaxis(C, 1, 0)
        res = compute(C, ["DPPL", "DI", "RD"])
        tot = stt[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            n = tot.sum(axis=(1, 2))
            acc = np.where(n > 0, (tot[:, 0, 0] + tot[:, 1, 1]) / np.where(n > 0, n, 1.0), np.nan)
        out = []
        for e in range(len(labels)):
            curve: dict[str, Any] = {
                "thresholds": [float(x) for x in t_all],
                "configured_threshold": self.threshold,
            }
            undefined: dict[str, str] = {}
            for name in ("DPPL", "DI", "RD"):
                v, r = res[name]
                curve[name] = [_num(x) for x in v[:, e]]
                reasons = sorted({MESSAGES[int(k)] for k in r[:, e] if k > 0 and MESSAGES[int(k)]})
                if reasons:
                    undefined[name] = "; ".join(reasons)
            curve["accuracy"] = [_num(x) for x in acc]
            curve["undefined"] = undefined
            out.append(curve)
        return out


@functools.lru_cache(maxsize=8)
def _default_count_grid(threshold: float) -> tuple[np.ndarray, tuple[float, ...]]:
    """The count thresholds with the default curve thresholds and ``threshold`` (the array, read
    only, and its values as Python floats), made once per threshold."""
    t = np.unique(np.concatenate([_COUNT_GRID, np.asarray(CURVE_THRESHOLDS, dtype=np.float64), [threshold]]))
    t.flags.writeable = False
    return t, tuple(t.tolist())


def _grow(a: np.ndarray, V: int) -> np.ndarray:
    if a.shape[0] >= V:
        return a
    pad = np.zeros((V - a.shape[0],) + a.shape[1:], dtype=a.dtype)
    return np.concatenate([a, pad], axis=0)


#: every finite float64 is an integer multiple of 2**-1074; with frexp's 53-bit mantissas, sums are
#: kept as Python integers in units of 2**-_EXACT_UNIT
_EXACT_UNIT = 1074 + 53
_EXACT_BLOCK = 1 << 24  # rows per bincount: 26-bit + 27-bit halves stay exact in float64 sums


def _exact_sums(idx: np.ndarray, values: np.ndarray, size: int) -> list[int]:
    """The exact sum of ``values`` per cell ``idx`` (Python integers, units 2**-_EXACT_UNIT).

    Each value is split into its exponent and two integer halves of its mantissa; the halves are
    summed per (cell, exponent) with float64 bincounts, exact for up to 2**26 rows per block, and
    shifted into one integer per cell. So the result is independent of how the rows were batched."""
    out = [0] * size
    for start in range(0, len(values), _EXACT_BLOCK):
        v = values[start : start + _EXACT_BLOCK]
        k0 = idx[start : start + _EXACT_BLOCK]
        m, e = np.frexp(v)
        mi = np.ldexp(m, 53)  # an integer, |mi| < 2**53
        hi = np.trunc(mi / 2.0**27)
        lo = mi - hi * 2.0**27
        ue, ecode = np.unique(e, return_inverse=True)
        k = k0 * len(ue) + ecode.reshape(-1)
        sh = np.bincount(k, weights=hi, minlength=size * len(ue)).reshape(size, len(ue))
        sl = np.bincount(k, weights=lo, minlength=size * len(ue)).reshape(size, len(ue))
        for c, j in zip(*np.nonzero((sh != 0) | (sl != 0))):
            out[c] += ((int(sh[c, j]) << 27) + int(sl[c, j])) << (int(ue[j]) - 53 + _EXACT_UNIT)
    return out


def _exact_split(c: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`PerformanceAccumulator._split` of a [V, bins, 2, 3] object tensor of exact sums
    (rows, weight, score sum), returned as floats (each sum rounded once)."""
    total = c.sum(axis=0)
    d = np.stack([c[sel[e] > 0].sum(axis=0) if (sel[e] > 0).any() else total * 0 for e in range(sel.shape[0])])
    a = total[None] - d
    scale = np.array([1, 1 << _EXACT_UNIT, 1 << _EXACT_UNIT], dtype=object)

    def as_float(x: np.ndarray) -> np.ndarray:
        return np.vectorize(lambda num, den: num / den, otypes=[np.float64])(x, scale)

    return as_float(d), as_float(a), as_float(total)


def group_performance(
    data: Any,
    *,
    label: Any,
    facet: Any,
    facet_values: Any = None,
    facet_threshold: Any = None,
    label_values: Any = None,
    label_threshold: float | None = None,
    predicted_label: Any = None,
    probability: Any = None,
    probability_threshold: float = 0.5,
    weights: Any = None,
    thresholds: Sequence[float] | None = None,
) -> GroupPerformance:
    r"""Model performance per facet group (d: the value's rows, a: the rest), from one count pass.

    For each facet entry (as :func:`clarion.bias.report` lists them) and each of its groups:
    ``rows``, ``weight``, ``observed_positive_rate`` = (TP+FN)/n, ``predicted_positive_rate`` =
    (TP+FP)/n, the weighted ``confusion_matrix``, ``accuracy`` = (TP+TN)/n, ``precision`` =
    TP/(TP+FP), ``recall`` = TP/(TP+FN), ``false_positive_rate`` = FP/(FP+TN) — each None when its
    denominator is 0, with the reason under ``undefined`` — and, with ``probability``, the
    ``roc_auc`` (trapezoid over the ROC of ``score > t`` on a 0.001 grid: exact for scores rounded
    to 3 decimals), a 10-bin ``calibration`` table and the ``threshold_curve`` (DPPL, DI, RD and
    overall accuracy at each threshold). The module docstring has every formula.

    Parameters
    ----------
    data : pandas.DataFrame, pyarrow.Table or dict of 1-D arrays
    label, facet, facet_values, facet_threshold, label_values, label_threshold, weights
        As in :func:`clarion.bias.report`.
    predicted_label : str or array, optional
        Predicted labels (in the label's values or 0/1/bool).
    probability : str or array, optional
        Scores of the positive class (needs ``label_values``); without ``predicted_label`` the
        decision is ``probability > probability_threshold``.
    probability_threshold : float, default 0.5
    thresholds : sequence of float in [0, 1], optional
        The trade-off curve's thresholds (default 0, 0.01, …, 1); ``probability_threshold`` is
        always added.

    Returns
    -------
    GroupPerformance
        ``to_dict()`` (the ``group_statistics`` objects of ``analysis.json``) and ``to_frame()``.

    Raises
    ------
    ValueError
        As :func:`clarion.bias.report` (missing columns, absent values, NaN scores), no model, or
        thresholds outside [0, 1].
    """
    if predicted_label is None and probability is None:
        raise ValueError(MSG_NEED_MODEL)
    acc = PerformanceAccumulator(
        label=label,
        facet=facet,
        facet_values=facet_values,
        facet_threshold=facet_threshold,
        label_values=label_values,
        label_threshold=label_threshold,
        predicted_label=predicted_label,
        probability=probability,
        probability_threshold=probability_threshold,
        weights=weights,
        thresholds=thresholds,
    )
    return acc.update(data).result()


def threshold_curves(
    data: Any,
    *,
    label: Any,
    facet: Any,
    probability: Any,
    label_values: Any,
    facet_values: Any = None,
    facet_threshold: Any = None,
    probability_threshold: float = 0.5,
    weights: Any = None,
    thresholds: Sequence[float] | None = None,
) -> Any:
    r"""Bias and accuracy across probability thresholds, from one threshold-count pass.

    At each threshold t (default 0, 0.01, …, 1, plus ``probability_threshold``) the prediction is
    ``score > t``, and per facet entry:

    * DPPL(t) = q̂_a − q̂_d with q̂_g = n̂_g(1) / n_g (ideal 0);
    * DI(t) = q̂_d / q̂_a (ideal 1; four-fifths rule: DI ≥ 0.8);
    * RD(t) = TP_a/(TP_a+FN_a) − TP_d/(TP_d+FN_d), the equal-opportunity (recall) difference with
      Clarify's sign (ideal 0);
    * accuracy(t) = (TP + TN) / n over all rows.

    All thresholds come from one :func:`clarion.grouped_threshold_counts` pass; the values are those
    of :func:`clarion.bias.report` at each threshold (NaN where undefined).

    Returns
    -------
    pandas.DataFrame
        Index (facet, value_or_threshold, threshold); columns DPPL, DI, RD, accuracy and
        ``configured`` (True at ``probability_threshold``).
    """
    import pandas as pd

    perf = group_performance(
        data,
        label=label,
        facet=facet,
        facet_values=facet_values,
        facet_threshold=facet_threshold,
        label_values=label_values,
        probability=probability,
        probability_threshold=probability_threshold,
        weights=weights,
        thresholds=thresholds,
    )
    recs = []
    for f, entries in perf.facets.items():
        for e in entries:
            c = e["threshold_curve"]
            for j, t in enumerate(c["thresholds"]):
                recs.append(
                    {
                        "facet": f,
                        "value_or_threshold": e["value_or_threshold"],
                        "threshold": t,
                        **{k: (np.nan if c[k][j] is None else c[k][j]) for k in ("DPPL", "DI", "RD", "accuracy")},
                        "configured": t == c["configured_threshold"],
                    }
                )
    return pd.DataFrame.from_records(recs).set_index(["facet", "value_or_threshold", "threshold"])
