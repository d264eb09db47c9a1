"""The job's SHAP step for ``methods.shap.text_config`` (Clarify's NLP explainability).

Every non-numeric feature column is text (a one-word category is then one unit, masked by its
baseline value — the same game as tabular masking); numeric columns are tabular players. Outputs:

* ``analysis.json`` ``explanations.kernel_shap.<label>``: ``global_shap_values`` per feature (a
  text column's value aggregates, over records, the sum of its units' attributions),
  ``expected_value`` (the mean of the per-record base values ``v(0)``: every unit masked) and
  ``global_top_shap_text`` ``{column: {unit: value}}`` (``max_top_tokens`` units by aggregated
  value over their occurrences, ``agg_method`` as for features);
* ``explanations_shap/out.jsonl``: one JSON object per record, in input order, in the layout of
  Clarify's text explanations (``feature_header``, ``feature_type``, ``attributions`` with
  ``attribution`` per label and ``description.partial_text`` / ``start_idx`` per unit), with
  ``join_source_value`` when the config has ``joinsource_name_or_index``;
* the report: each record's text with its units highlighted (:mod:`clarion.report.text`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from clarion._progress import Progress
from clarion.job.explain import _aggregate
from clarion.job.model import _Selected
from clarion.job.outputs import _CsvSink
from clarion.job.plan import DEFAULT_NUM_CLUSTERS, _numeric_dtype

__all__: list[str] = []


def _text_baseline(job: Any, rows: Any, text_cols: list[str]) -> tuple[Any, Any]:
    """(background frame or Baseline, frame to save or None): the config's baseline (a text
    column's value is its mask string), else k-means of the numeric columns with every text
    column's mask the empty string (Clarify's default: masked units are dropped)."""
    import pandas as pd

    from clarion import explain

    feats = job.plan.features
    if job.cfg.shap.baseline is not None:
        frame, _ = job._baseline(rows)
        for c in text_cols:
            frame[c] = frame[c].astype(object).where(frame[c].notna(), "").astype(str)
        return frame, None
    tab = [c for c in feats if c not in text_cols]
    if not tab:
        frame = pd.DataFrame({c: [""] for c in feats})
        return frame, frame
    k = min(job.cfg.shap.num_clusters or DEFAULT_NUM_CLUSTERS, len(rows))
    bg = explain.kmeans_baseline(rows[tab], k)
    data = bg.data if isinstance(bg.data, pd.DataFrame) else pd.DataFrame(np.asarray(bg.data), columns=tab)
    data = data.reset_index(drop=True)
    for c in text_cols:
        data[c] = ""
    data = data[feats]
    return explain.Baseline(data, np.asarray(bg.weights)), data


def _filled(frame: Any, text_cols: list[str]) -> Any:
    """``frame`` with the empty cells of its text columns as the empty text (a CSV reads them as NaN)."""
    return frame.assign(**{c: frame[c].astype(object).where(frame[c].notna(), "") for c in text_cols})


def _explain_part(explainer: Any, frame: Any) -> Any:
    """One part of a batch, explained on a Dask worker (module level: pickled by reference)."""
    return explainer.explain(frame)


def _parts(job: Any, explainer: Any, frame: Any, join: Any, remote: Any) -> Iterator[tuple[Any, Any, Any]]:
    """(explanation, its records, their join values) for ``frame``, in input order: in this
    process, or, with the job's Dask client, in parts spread over its workers (``remote``: the
    explainer scattered to them). A record's attributions depend only on that record (one plan
    per number of players, seeded), so the parts give the numbers of one call."""
    if remote is None or len(frame) < 2:
        yield explainer.explain(frame), frame, join
        return
    client = job.dask_client
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    step = max(1, -(-len(frame) // (4 * n_workers)))  # about four parts per worker: they balance
    starts = range(0, len(frame), step)
    futs = [client.submit(_explain_part, remote, frame.iloc[a : a + step], pure=False) for a in starts]
    try:
        for a, fut in zip(starts, futs):
            yield fut.result(), frame.iloc[a : a + step], (join.iloc[a : a + step] if join is not None else None)
    finally:
        for fut in futs:
            fut.cancel()


def text_shap(job: Any) -> tuple[dict[str, Any], str, str]:
    """Run text SHAP for the job; returns (the ``kernel_shap`` block, report HTML section,
    report Markdown section)."""
    from clarion._io import atomic_write_text
    from clarion.explain.text import TextShap
    from clarion.report.text import render_text_section

    sc, plan = job.cfg.shap, job.plan
    tc = sc.text_config
    feats = plan.features
    rows = job._rows()
    text_cols = [c for c in feats if not _numeric_dtype(rows[c])]
    if not text_cols:
        raise ValueError(
            f"methods.shap.text_config: no text column among the features {feats} (every feature is numeric)"
        )
    bg, to_save = _text_baseline(job, rows, text_cols)
    if to_save is not None:
        p = os.path.join(job.out_dir, "explanations_shap", "baseline.csv")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        atomic_write_text(p, to_save.to_csv(index=False))
        job.paths["baseline"] = p
    n_out = getattr(job.outputs.model, "n_outputs", None)
    if not (isinstance(n_out, (int, np.integer)) and n_out > 0):  # one call on a first row, empty cells as ""
        n_out = job.outputs.predict(_filled(rows[feats].iloc[:1], text_cols)).shape[1]
    cols = job.outputs.explained(int(n_out))
    names = job.outputs.names(len(cols))
    job.explained_cols = cols
    job.shap_model = _Selected(job.outputs.model, cols, rows[feats].dtypes)
    explainer = TextShap(
        job.shap_model,
        bg,
        text_features=text_cols,
        granularity=tc.granularity,
        language=tc.language,
        num_samples=sc.num_samples,
        seed=job.seed,
        link="logit" if sc.use_logit else "identity",
        memory_budget=job.budget,
    )
    sink = None
    if sc.save_local_shap_values:
        sink = _CsvSink(os.path.join(job.out_dir, "explanations_shap", "out.jsonl"), None)
    per_col: list[np.ndarray] = []
    bases: list[np.ndarray] = []
    shown_records: list[dict[str, Any]] = []
    shown_texts: list[dict[str, str]] = []
    values: list[np.ndarray] = []
    players: list[list[dict[str, Any]]] = []
    bar = Progress("SHAP (text)", total=job.n_rows, unit="rows", enabled=job.progress)
    # with a Dask client the records are explained on its workers (the explainer sent once)
    remote = job.dask_client.scatter(explainer, broadcast=True) if job.dask_client is not None else None
    try:
        for X, batch_join in job._shap_batches():
            if job.windows is not None:
                job.windows.add_explained(X)  # the window of each explained row
            for e, frame, join in _parts(job, explainer, _filled(X[feats], text_cols), batch_join, remote):
                per_col.append(e.feature_values())
                bases.append(e.expected_value)
                values.extend(e.values)
                players.extend(e.players)
                recs = e.to_records()
                if join is not None:
                    for r, j in zip(recs, join.tolist()):
                        r["join_source_value"] = j.item() if hasattr(j, "item") else j
                if sink is not None:
                    sink.fh.write("".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in recs))
                room = 50 - len(shown_records)
                if room > 0:
                    shown_records.extend(recs[:room])
                    shown_texts.extend(
                        {c: str(frame[c].iloc[i]) for c in text_cols} for i in range(min(room, len(recs)))
                    )
                bar.update(len(frame))
        if sink is not None:
            sink.commit()
            job.paths["local_shap"] = sink.path
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        bar.close()
    allv = np.concatenate(per_col, axis=0)  # (N, P, D)
    exp = np.concatenate(bases, axis=0).mean(axis=0)
    # global_top_shap_text from every record's units
    from clarion.explain.text import TextExplanation

    whole = TextExplanation(values, np.concatenate(bases, axis=0), players, feats, text_cols, None, [])
    top = whole.top_units(sc.agg_method, tc.max_top_tokens)
    block: dict[str, Any] = {}
    for d, lab in enumerate(names):
        g = _aggregate(allv[:, :, d], sc.agg_method)
        block[lab] = {
            "global_shap_values": {f: float(v) for f, v in zip(feats, g)},
            "expected_value": float(exp[d]),
            "global_top_shap_text": {c: top[c][d] for c in text_cols},
        }
    if job.windows is not None:  # per window: the columns' totals, aggregated as the global values
        import pandas as pd

        local = pd.DataFrame(
            allv.transpose(0, 2, 1).reshape(allv.shape[0], -1), columns=[f"{f}_{lab}" for lab in names for f in feats]
        )
        job.windows.aggregate_shap(block, local, sc.agg_method)
    html = render_text_section(shown_records, shown_texts, names)  # the top units: report/html.py
    job.notes.append(
        f"text explanations: {tc.granularity} units ({tc.language}) of {', '.join(text_cols)}; "
        f"local attributions in explanations_shap/out.jsonl"
    )
    md = "## Text explanations\n\nEach record's units and their attributions: explanations_shap/out.jsonl.\n"
    return block, html, md
