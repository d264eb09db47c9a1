"""Helpers to run smclarify 0.5 as an oracle (see the spec's "Running smclarify as an oracle")."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd


def smclarify_report(
    df: pd.DataFrame,
    *,
    facet: str,
    label: str,
    pred: str | None,
    group: pd.Series | None,
    facet_values=None,
    facet_threshold=None,
    methods_pre=("all",),
    methods_post=("all",),
):
    """Both stages of smclarify's bias_report as {stage: {(value_or_threshold, name): (value, error)}}."""
    from smclarify.bias.report import FacetColumn, LabelColumn, StageType, bias_report

    logging.disable(logging.CRITICAL)
    try:
        df = df.reset_index(drop=True)
        df = df.astype({c: "category" for c in df.columns if df[c].dtype == object or str(df[c].dtype) == "str"})
        sens = (
            list(facet_values)
            if facet_values is not None
            else ([facet_threshold] if facet_threshold is not None else None)
        )
        fc = FacetColumn(name=facet, sensitive_values=sens)
        lc = LabelColumn(name=label, series=df[label], positive_label_values=[True])
        g = None if group is None else group.reset_index(drop=True)
        out = {}
        pre = bias_report(
            df=df.drop(columns=[pred]) if pred else df,
            facet_column=fc,
            label_column=lc,
            stage_type=StageType.PRE_TRAINING,
            metrics=list(methods_pre),
            group_variable=g,
        )
        out["pre_training_bias_metrics"] = pre
        if pred is not None:
            post = bias_report(
                df=df,
                facet_column=fc,
                label_column=lc,
                stage_type=StageType.POST_TRAINING,
                predicted_label_column=LabelColumn(pred, df[pred], [True]),
                metrics=list(methods_post),
                group_variable=g,
            )
            out["post_training_bias_metrics"] = post
    finally:
        logging.disable(logging.NOTSET)
    return {stage: flatten(entries) for stage, entries in out.items()}


def flatten(entries) -> dict:
    flat = {}
    for e in entries:
        for m in e["metrics"]:
            flat[(e["value_or_threshold"], m["name"])] = (m.get("value"), m.get("error"))
    return flat


def number(v):
    if v is None:
        return None
    if isinstance(v, str):
        return {"Infinity": math.inf, "-Infinity": -math.inf}[v]
    return float(v)


def assert_matches(ours: dict, theirs: dict, tol: float = 1e-12) -> None:
    """Every smclarify (value_or_threshold, metric) equals ours: same error text or same number."""
    for stage, flat in theirs.items():
        mine = flatten(ours[stage]["facets"][next(iter(ours[stage]["facets"]))])
        assert set(mine) == set(flat), (stage, sorted(set(mine) ^ set(flat)))
        for key, (v, err) in flat.items():
            mv, merr = mine[key]
            if err is not None:
                assert mv is None and merr == err, (stage, key, mv, merr, err)
                continue
            assert merr is None, (stage, key, merr, v)
            a, b = number(mv), number(v)
            if math.isinf(b):
                assert a == b, (stage, key, a, b)
            else:
                assert abs(a - b) <= tol * max(1.0, abs(b)), (stage, key, a, b)


def random_frame(
    rng: np.random.Generator, n: int, n_facet: int, *, nan_facet: bool = False, p_label=0.5, p_flip=0.3
) -> pd.DataFrame:
    letters = np.array(list("ABCDEFG")[:n_facet], dtype=object)
    facet = letters[rng.integers(0, n_facet, n)]
    if nan_facet and n > 2:
        facet[rng.random(n) < 0.1] = np.nan
    label = rng.random(n) < p_label
    pred = np.where(rng.random(n) < p_flip, ~label, label)
    return pd.DataFrame(
        {
            "f": pd.Series(facet, dtype=object),
            "x1": rng.normal(size=n),
            "x2": rng.integers(0, 5, n).astype(np.int64),
            "y": label,
            "p": pred,
        }
    )
