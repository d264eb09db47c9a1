"""The metric registry: one entry per Clarify bias metric, read by every layer that names metrics.

:data:`METRIC_INFO` is the one place that lists the metrics and what is known about each: the
bias engine (stage checks, descriptions in results), the config reader (allowed ``methods``,
in Clarify's order), the report renderers (axes, ideal values, one-line readings) and the
monitor (ideal values for drift). Adding a metric: an entry here and its formula in
:mod:`clarion.bias._metrics`.

Each entry is a dict with:

* ``stage``: ``"pre"`` (data only) or ``"post"`` (needs predictions);
* ``description``: smclarify's name, verbatim (KL's spelling included), written in analysis.json;
* ``kind``: how the metric reacts to swapping facets a and d (see below);
* ``range``: the values it can take, ``(low, high)`` (``±inf`` for unbounded);
* ``ideal``: its value when there is no disparity (1 for DI, 0 otherwise); the monitor measures
  drift as the distance from it;
* ``formula``: in counts (``docs/metrics.md`` has the full definitions);
* ``axis``: the finite range a chart draws (unbounded metrics are clipped for drawing only);
* ``needs``: the inputs besides the facet: ``"label"``, ``"prediction"``, ``"group"`` (the
  group variable, CDDL / CDDPL), ``"features"`` (FlipTest);
* ``reading``: one line saying how to read its sign or size.

The dict's order is Clarify's (the order of ``methods: "all"`` in a config and a report).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["METRIC_INFO", "ideal_value", "metric_names"]

# kind classifies how a metric reacts to swapping facets a and d (tests check every class):
#   "difference": a difference of two group rates; swapping a and d negates it (DPL, RD, ...)
#   "ratio": a ratio of two group rates; swapping inverts it (DI)
#   "imbalance": CI, negated by the swap
#   "divergence-symmetric": a distance between the two label distributions (JS, LP, TVD, KS)
#   "divergence": KL(Pa || Pd), not symmetric
#   "conditional": CDDL / CDDPL, a demographic disparity averaged over subgroups
#   "dataset": GE, a function of all rows that does not depend on the facet
#   "individual": FT, a k-nearest-neighbour test on feature rows (not count based)
METRIC_INFO: dict[str, dict[str, Any]] = {
    "CI": dict(
        stage="pre",
        description="Class Imbalance (CI)",
        kind="imbalance",
        range=(-1, 1),
        ideal=0.0,
        formula="(n_a - n_d) / (n_a + n_d)",
        axis=(-1, 1),
        needs=(),
        reading="Positive: facet d has fewer rows than facet a.",
    ),
    "DPL": dict(
        stage="pre",
        description="Difference in Positive Proportions in Labels (DPL)",
        kind="difference",
        range=(-1, 1),
        ideal=0.0,
        formula="n_a(1)/n_a - n_d(1)/n_d",
        axis=(-1, 1),
        needs=("label",),
        reading="Positive: facet a has a higher share of positive labels than facet d.",
    ),
    "KL": dict(
        stage="pre",
        description="Kullback-Liebler Divergence (KL)",
        kind="divergence",
        range=(0, np.inf),
        ideal=0.0,
        formula="sum_y Pa(y) ln(Pa(y)/Pd(y))",
        axis=(0, 1),
        needs=("label",),
        reading="How far d's label distribution diverges from a's (0 = same).",
    ),
    "JS": dict(
        stage="pre",
        description="Jensen-Shannon Divergence (JS)",
        kind="divergence-symmetric",
        range=(0, np.log(2)),
        ideal=0.0,
        formula="(KL(Pa||P) + KL(Pd||P))/2, P = (Pa+Pd)/2",
        axis=(0, math.log(2)),
        needs=("label",),
        reading="Symmetric divergence of the label distributions (0 = same, ln 2 max).",
    ),
    "LP": dict(
        stage="pre",
        description="L-p Norm (LP)",
        kind="divergence-symmetric",
        range=(0, np.sqrt(2)),
        ideal=0.0,
        formula="sqrt(sum_y (Pa(y) - Pd(y))^2)",
        axis=(0, math.sqrt(2)),
        needs=("label",),
        reading="Euclidean distance between the label distributions.",
    ),
    "TVD": dict(
        stage="pre",
        description="Total Variation Distance (TVD)",
        kind="divergence-symmetric",
        range=(0, 1),
        ideal=0.0,
        formula="sum_y |Pa(y) - Pd(y)| / 2",
        axis=(0, 1),
        needs=("label",),
        reading="Half the L1 distance between the label distributions.",
    ),
    "KS": dict(
        stage="pre",
        description="Kolmogorov-Smirnov Distance (KS)",
        kind="divergence-symmetric",
        range=(0, 1),
        ideal=0.0,
        formula="max_y |Pa(y) - Pd(y)|",
        axis=(0, 1),
        needs=("label",),
        reading="Largest gap between the label distributions.",
    ),
    "CDDL": dict(
        stage="pre",
        description="Conditional Demographic Disparity in Labels (CDDL)",
        kind="conditional",
        range=(-1, 1),
        ideal=0.0,
        formula="sum_i n_i (n_di(0)/n_i(0) - n_di(1)/n_i(1)) / sum_i n_i",
        axis=(-1, 1),
        needs=("label", "group"),
        reading="Positive: facet d is over-represented among rejections, within subgroups.",
    ),
    "DPPL": dict(
        stage="post",
        description="Difference in Positive Proportions in Predicted Labels (DPPL)",
        kind="difference",
        range=(-1, 1),
        ideal=0.0,
        formula="n^_a(1)/n_a - n^_d(1)/n_d",
        axis=(-1, 1),
        needs=("prediction",),
        reading="Positive: the model predicts positive more often for facet a than for d.",
    ),
    "DI": dict(
        stage="post",
        description="Disparate Impact (DI)",
        kind="ratio",
        range=(0, np.inf),
        ideal=1.0,
        formula="(n^_d(1)/n_d) / (n^_a(1)/n_a)",
        axis=(0, 2),
        needs=("prediction",),
        reading="Below 1: facet d gets positive predictions at a lower rate than facet a.",
    ),
    "DCA": dict(
        stage="post",
        description="Difference in Conditional Acceptance (DCA)",
        kind="difference",
        range=(-np.inf, np.inf),
        ideal=0.0,
        formula="n_a(1)/n^_a(1) - n_d(1)/n^_d(1)",
        axis=(-1, 1),
        needs=("label", "prediction"),
        reading="Positive: per observed positive, facet a gets fewer positive predictions than d.",
    ),
    "DCR": dict(
        stage="post",
        description="Difference in Conditional Rejection (DCR)",
        kind="difference",
        range=(-np.inf, np.inf),
        ideal=0.0,
        formula="n_d(0)/n^_d(0) - n_a(0)/n^_a(0)",
        axis=(-1, 1),
        needs=("label", "prediction"),
        reading="Positive: per observed negative, facet d gets fewer negative predictions than a.",
    ),
    "RD": dict(
        stage="post",
        description="Recall Difference (RD)",
        kind="difference",
        range=(-1, 1),
        ideal=0.0,
        formula="TP_a/(TP_a+FN_a) - TP_d/(TP_d+FN_d)",
        axis=(-1, 1),
        needs=("label", "prediction"),
        reading="Positive: the model finds a larger share of facet a's true positives (recall).",
    ),
    "SD": dict(
        stage="post",
        description="Specificity Difference (SD)",
        kind="difference",
        range=(-1, 1),
        ideal=0.0,
        formula="TN_d/(TN_d+FP_d) - TN_a/(TN_a+FP_a)",
        axis=(-1, 1),
        needs=("label", "prediction"),
        reading="Positive: the model is more specific for facet d than for facet a.",
    ),
    "DAR": dict(
        stage="post",
        description="Difference in Acceptance Rates (DAR)",
        kind="difference",
        range=(-1, 1),
        ideal=0.0,
        formula="TP_a/(TP_a+FP_a) - TP_d/(TP_d+FP_d)",
        axis=(-1, 1),
        needs=("label", "prediction"),
        reading="Positive: facet a's positive predictions are more often right (precision).",
    ),
    "DRR": dict(
        stage="post",
        description="Difference in Rejection Rates (DRR)",
        kind="difference",
        range=(-1, 1),
        ideal=0.0,
        formula="TN_d/(TN_d+FN_d) - TN_a/(TN_a+FN_a)",
        axis=(-1, 1),
        needs=("label", "prediction"),
        reading="Positive: facet d's negative predictions are more often right.",
    ),
    "AD": dict(
        stage="post",
        description="Accuracy Difference (AD)",
        kind="difference",
        range=(-1, 1),
        ideal=0.0,
        formula="(TP_a+TN_a)/n_a - (TP_d+TN_d)/n_d",
        axis=(-1, 1),
        needs=("label", "prediction"),
        reading="Positive: the model is more accurate for facet a than for facet d.",
    ),
    "CDDPL": dict(
        stage="post",
        description="Conditional Demographic Disparity in Predicted Labels (CDDPL)",
        kind="conditional",
        range=(-1, 1),
        ideal=0.0,
        formula="as CDDL with predicted labels",
        axis=(-1, 1),
        needs=("prediction", "group"),
        reading="As CDDL, on predicted labels.",
    ),
    "TE": dict(
        stage="post",
        description="Treatment Equality (TE)",
        kind="difference",
        range=(-np.inf, np.inf),
        ideal=0.0,
        formula="FN_d/FP_d - FN_a/FP_a",
        axis=(-2, 2),
        needs=("label", "prediction"),
        reading="Difference in the ratio of false negatives to false positives (d − a).",
    ),
    "FT": dict(
        stage="post",
        description="Flip Test (FT)",
        kind="individual",
        range=(-1, 1),
        ideal=0.0,
        formula="(F+ - F-)/n_d over a k-NN of facet a",
        axis=(-1, 1),
        needs=("prediction", "features"),
        reading="Net share of facet d predicted better (> 0) or worse than their nearest facet-a neighbours.",
    ),
    "GE": dict(
        stage="post",
        description="Generalized Entropy (GE)",
        kind="dataset",
        range=(0, np.inf),
        ideal=0.0,
        formula="sum_i ((b_i/mean b)^2 - 1) / (2N), b = yhat - y + 1",
        axis=(0, 1),
        needs=("label", "prediction"),
        reading="Inequality of prediction benefits across individuals (0 = equal).",
    ),
}


def metric_names(stage: str | None = None) -> tuple[str, ...]:
    """Names of the metrics of ``stage`` (``"pre"``, ``"post"``, or None for all), in Clarify's order."""
    return tuple(n for n, info in METRIC_INFO.items() if stage is None or info["stage"] == stage)


def ideal_value(name: str) -> float:
    """The metric's value when there is no disparity (1.0 for DI); 0.0 for a name not in the registry."""
    info = METRIC_INFO.get(name)
    return 0.0 if info is None else float(info["ideal"])
