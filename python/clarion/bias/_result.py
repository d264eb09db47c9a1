"""The result object of :func:`clarion.bias.report` and :meth:`clarion.bias.Accumulator.report`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clarion.bias._metrics import MESSAGES, METRIC_INFO

__all__ = ["BiasReport", "FacetResult"]

STAGE_KEYS = {"pre_training": "pre_training_bias_metrics", "post_training": "post_training_bias_metrics"}


@dataclass
class FacetResult:
    """Metrics of one stage and one facet column.

    ``values[name]`` and ``reasons[name]`` are arrays ``[M, E]`` (``M`` model/threshold rows, 1 for
    the pre-training stage; ``E`` facet entries); ``errors`` holds free-text reasons that are not in
    :data:`MESSAGES` (FlipTest) keyed by ``(name, m, e)``.
    """

    stage: str
    facet: str
    entries: list[str]
    values: dict[str, np.ndarray]
    reasons: dict[str, np.ndarray]
    errors: dict[tuple[str, int, int], str] = field(default_factory=dict)
    ci_low: dict[str, np.ndarray] = field(default_factory=dict)
    ci_high: dict[str, np.ndarray] = field(default_factory=dict)

    def error(self, name: str, m: int, e: int) -> str:
        text = self.errors.get((name, m, e))
        if text is not None:
            return text
        return MESSAGES[int(self.reasons[name][m, e])]


def _json_value(v: float) -> Any:
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return float(v)


class BiasReport:
    """Bias metrics of one call, for every stage, facet, facet value and model.

    Attributes
    ----------
    label : str
        The label column.
    label_value_or_threshold : str
        The positive label values joined by ``","``, or the interval ``"(t, max]"``.
    models : list of (str or None, float or None)
        The (model, probability threshold) of each post-training row; ``[(None, None)]`` for a
        single model given as labels.
    multi_model : bool
        Whether ``to_frame`` has ``model`` and ``threshold`` columns.
    compat : str
        The edge-case convention used ("clarion" or "smclarify").
    confidence : float or None
        The level of the bootstrap intervals (``ci_low`` / ``ci_high``), None without intervals.
    results : list of FacetResult
        The raw arrays behind the frame.
    """

    def __init__(
        self,
        *,
        label: str,
        label_value_or_threshold: str,
        models: list[tuple[Any, Any]],
        multi_model: bool,
        compat: str,
        confidence: float | None,
        results: list[FacetResult],
        n_bootstrap: int = 0,
    ) -> None:
        self.label = label
        self.label_value_or_threshold = label_value_or_threshold
        self.models = models
        self.multi_model = multi_model
        self.compat = compat
        self.confidence = confidence
        self.n_bootstrap = n_bootstrap
        self.results = results

    def __repr__(self) -> str:
        facets = sorted({r.facet for r in self.results})
        stages = sorted({r.stage for r in self.results})
        return (
            f"BiasReport(label={self.label!r}, facets={facets}, stages={stages}, models={len(self.models)}, "
            f"compat={self.compat!r}, confidence={self.confidence})"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: one table row per metric (value, interval, ideal, why undefined);
        every string escaped."""
        import html

        frame = self.to_frame()
        keys = [c for c in ("stage", "facet", "value_or_threshold", "model", "threshold") if c in frame.columns]
        has_ci = "ci_low" in frame.columns
        head = [
            "stage",
            "facet",
            "facet value",
            *keys[3:],
            "metric",
            "value",
            *(["interval"] if has_ci else []),
            "ideal",
            "",
        ]

        def num(v: Any) -> str:
            v = float(v)
            return "n/a" if np.isnan(v) else f"{v:.4g}"

        rows = []
        for rec in frame.head(500).itertuples(index=False):
            r = rec._asdict()
            cells = [html.escape(str(r[k]).replace("_training", "")) for k in keys]
            cells += [f"<b>{html.escape(str(r['metric']))}</b>", num(r["value"])]
            if has_ci:
                cells.append("" if np.isnan(r["ci_low"]) else f"[{num(r['ci_low'])}, {num(r['ci_high'])}]")
            cells.append(html.escape(str(METRIC_INFO[r["metric"]].get("ideal", ""))))
            cells.append(f"<span style='color:#777'>{html.escape(str(r['error']))}</span>")
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        more = f"<p>… {len(frame) - 500} more rows (to_frame())</p>" if len(frame) > 500 else ""
        return (
            f"<div><p><code>{html.escape(repr(self))}</code></p><table><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}</div>"
        )

    def _model_rows(self, stage: str) -> list[tuple[Any, Any]]:
        return self.models if stage == "post_training" else [(None, None)]

    def to_frame(self) -> pd.DataFrame:
        """One row per (stage, facet, facet value, [model, threshold,] metric).

        Returns
        -------
        pandas.DataFrame
            Columns ``stage`` ("pre_training" / "post_training"), ``facet``,
            ``value_or_threshold``, ``model`` and ``threshold`` (only when several models or
            thresholds were evaluated), ``metric``, ``value`` (float; NaN when undefined, ±inf
            for an infinite limit), ``description``, ``error`` (why the value is NaN, else ""),
            and ``ci_low`` / ``ci_high`` when confidence intervals were requested.
        """
        parts = []
        for r in self.results:
            rows = self._model_rows(r.stage)
            M, E = len(rows), len(r.entries)
            for name in sorted(r.values):
                v = r.values[name]
                err = [r.error(name, m, e) for m in range(M) for e in range(E)]
                d = {
                    "stage": r.stage,
                    "facet": r.facet,
                    "value_or_threshold": np.tile(np.array(r.entries, dtype=object), M),
                }
                if self.multi_model:
                    d["model"] = np.repeat(np.array([m for m, _ in rows], dtype=object), E)
                    d["threshold"] = np.repeat(np.array([np.nan if t is None else t for _, t in rows], dtype=float), E)
                d.update(metric=name, value=v.reshape(-1), description=METRIC_INFO[name]["description"], error=err)
                if self.confidence is not None:
                    lo = r.ci_low.get(name)
                    hi = r.ci_high.get(name)
                    d["ci_low"] = np.full(M * E, np.nan) if lo is None else lo.reshape(-1)
                    d["ci_high"] = np.full(M * E, np.nan) if hi is None else hi.reshape(-1)
                parts.append(pd.DataFrame(d))
        cols = (
            ["stage", "facet", "value_or_threshold"]
            + (["model", "threshold"] if self.multi_model else [])
            + ["metric", "value", "description", "error"]
            + (["ci_low", "ci_high"] if self.confidence is not None else [])
        )
        if not parts:
            return pd.DataFrame({c: [] for c in cols})
        return pd.concat(parts, ignore_index=True)[cols]

    def _select_model(self, model: Any, threshold: Any) -> int:
        if not self.multi_model and model is None and threshold is None:
            return 0
        hits = [
            i
            for i, (m, t) in enumerate(self.models)
            if (model is None or m == model) and (threshold is None or (t is not None and t == threshold))
        ]
        if len(hits) == 1:
            return hits[0]
        available = ", ".join(f"(model={m!r}, threshold={t!r})" for m, t in self.models)
        if not hits:
            raise ValueError(
                f"to_dict: no evaluated model matches model={model!r}, threshold={threshold!r}; available: {available}"
            )
        raise ValueError(
            f"to_dict: analysis.json holds one model: pass model= and/or threshold= to pick one of {available}"
        )

    def to_dict(self, *, model: Any = None, threshold: Any = None) -> dict[str, Any]:
        """The ``pre_training_bias_metrics`` / ``post_training_bias_metrics`` parts of Clarify's analysis.json.

        Each stage is ``{"label", "label_value_or_threshold", "facets": {facet: [entry, ...]}}``
        and each entry ``{"value_or_threshold", "metrics": [{"name", "description", "value",
        ["error"], ["ci_low", "ci_high"]}, ...]}`` with metrics in name order, as smclarify writes
        them: ±inf become ``"Infinity"`` / ``"-Infinity"``, an undefined value is ``null`` with
        ``"error"``. Interval bounds (when requested) are extra keys Clarify consumers ignore.

        Parameters
        ----------
        model, threshold : optional
            With several models or probability thresholds, the one to write (analysis.json
            holds one model).
        """
        idx = self._select_model(model, threshold)
        out: dict[str, Any] = {}
        for r in self.results:
            m = idx if r.stage == "post_training" else 0
            sec = out.setdefault(
                STAGE_KEYS[r.stage],
                {"label": self.label, "label_value_or_threshold": self.label_value_or_threshold, "facets": {}},
            )
            entries = []
            for e, entry in enumerate(r.entries):
                metrics = []
                for name in sorted(r.values):
                    v = float(r.values[name][m, e])
                    item: dict[str, Any] = {
                        "name": name,
                        "description": METRIC_INFO[name]["description"],
                        "value": _json_value(v),
                    }
                    if item["value"] is None:
                        item["error"] = r.error(name, m, e) or "undefined"
                    if self.confidence is not None and name in r.ci_low:
                        item["ci_low"] = _json_value(float(r.ci_low[name][m, e]))
                        item["ci_high"] = _json_value(float(r.ci_high[name][m, e]))
                    metrics.append(item)
                entries.append({"value_or_threshold": entry, "metrics": metrics})
            sec["facets"][r.facet] = entries
        return out
