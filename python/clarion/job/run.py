"""The analysis job: a Clarify analysis config in; ``analysis.json``, local attributions and a report out.

:func:`analyze` is the local, offline equivalent of a SageMaker Clarify processing job. It reads
the data once, in chunks: the bias counts of every facet accumulate chunk by chunk
(:class:`clarion.bias.Accumulator`), the model is called once per chunk for post-training bias,
and the rows that Kernel SHAP and partial dependence need are kept while they fit the memory
budget. When they do not, SHAP streams the file a second time against a baseline clustered from a
uniform sample (so peak memory stays bounded) — the only case with a second read.

Output directory layout (Clarify's names)::

    analysis.json                 Clarify's schema (exact keys and value formats)
    analysis_config.json          the config that produced it
    explanations_shap/out.csv     local SHAP values, one row per input record, input order
    explanations_shap/out.parquet the same, when the input is Parquet
    explanations_shap/out.jsonl   with text_config: per record, per unit of text (clarion.job.text)
    explanations_shap/baseline.csv  the clustered baseline (when the config gave none)
    report.html, report.md        the report (name from ``methods.report.name``)

This module is the pass (:class:`_Job`); the plan, source, model rules, sinks and outputs are its
siblings in :mod:`clarion.job`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from clarion._io import atomic_write_text
from clarion._progress import Progress
from clarion.job.explain import _aggregate, _base_rows, _baseline_frame, _pdp_entry, _values_3d
from clarion.job.model import (
    MSG_MODEL_NONFINITE,
    _check_model_features,
    _load_model,
    _Outputs,
    _Selected,
)
from clarion.job.outputs import AnalysisResult, _CsvSink
from clarion.job.plan import (
    DECIDE_ROWS,
    DEFAULT_NUM_CLUSTERS,
    MAX_CATEGORIES,
    PREDICTED_COLUMN,
    SAMPLE_ROWS,
    _check_values_kind,
    _Facet,
    _make_plan,
    _negative_label,
    _numeric_dtype,
    _resolve,
    _values_or_threshold,
)
from clarion.job.sinks import _Sample
from clarion.job.source import _Source
from clarion.job.windows import WindowSplitter

MSG_PDP_TEXT = "partial dependence is not computed for a text feature (text_config)"

#: Both bias sections of a facet from one ``Accumulator.report(stage="both")`` (one assembly:
#: the entries, count tensors and intervals once) where that gives the two one-stage reports'
#: sections: every method named for its own stage, the same interval settings. Off: one report
#: per stage (tests compare the two).
ONE_REPORT_PER_FACET = True

#: One ``PerformanceAccumulator`` for every facet (the same object listed per facet: one count
#: grid built, the label and predictions read once a chunk) where the facets are distinct columns
#: with the same label, prediction and weight arguments. Off: one per facet (tests compare).
ONE_PERFORMANCE_ACCUMULATOR = True

#: The group statistics read off the bias accumulators' count tables
#: (``PerformanceAccumulator.read_counts``) where they hold them (no weights, score, windows
#: or bootstrap replicates; predicted labels from a column): no second count of the rows. Off:
#: a ``PerformanceAccumulator`` counts them (the outputs are the same; tests compare the two).
PERFORMANCE_FROM_ACCUMULATORS = True

__all__: list[str] = []  # the pass is private to clarion.job; its entry points are in clarion.job.api


class _Job:
    """One analysis: the plan, one streaming pass over the source into the sinks (bias
    accumulators, kept rows or their sample, and with ``windows`` the window splitter), then SHAP
    (the SHAP writer), PDP, and the outputs, each written once."""

    def __init__(
        self,
        cfg,
        data,
        model,
        out_dir,
        base_dir,
        progress,
        skip_bad_rows,
        chunk_rows,
        budget,
        windows: WindowSplitter | None = None,
        dask_client: Any = None,
    ):
        self.cfg, self.model_arg, self.out_dir, self.base_dir = cfg, model, out_dir, base_dir
        self.windows = windows
        self.dask_client = dask_client  # SHAP and PDP run on its workers (clarion.distributed)
        self.progress, self.budget = progress, budget
        if cfg.dataset_type == "application/x-image":  # a folder of images (clarion.job.image)
            from clarion.job.image import ImageSource

            self.source = ImageSource(data)
        else:
            self.source = _Source(cfg, data, chunk_rows=chunk_rows, skip_bad_rows=skip_bad_rows)
        self.notes: list[str] = []
        self.paths: dict[str, str] = {}
        self.seed = cfg.shap.seed if cfg.shap is not None and cfg.shap.seed is not None else 0

    # -- pass 1 -----------------------------------------------------------------------------------
    def run(self, finish: Any = None) -> AnalysisResult:
        """Run the job into ``self.out_dir``. ``finish(doc, job)`` (optional) is called with the
        ``analysis.json`` document once it is written and before the report is: it may write
        files of its own and returns ``(html_section, md_section)`` to end the report with, or None."""
        cfg = self.cfg
        if cfg.dataset_type == "application/x-image":
            from clarion.job.image import run_images

            self.n_rows = 0
            return run_images(self, finish)
        columns = self.source.columns()
        plan = self.plan = _make_plan(cfg, columns)
        if self.windows is not None:
            self.windows.check_columns(columns, plan)
        bias = bool(cfg.pre_training_bias or cfg.post_training_bias)
        self.source.set_required([c for c in (plan.label if bias else None, plan.predicted) if c])
        if bias:  # text in the bias columns comes as dictionary codes (the accumulators' fast path)
            self.source.set_codes([plan.label, *(f.name for f in plan.facets), plan.group, plan.predicted])
        # where predictions made from the model go (a name no input column has)
        self.pred_col = plan.predicted or next(
            n
            for n in (PREDICTED_COLUMN, *(f"{PREDICTED_COLUMN}_{i}" for i in range(1, len(columns) + 2)))
            if n not in columns
        )
        self.outputs = None
        if plan.need_model:
            why = ", ".join(
                w
                for w, on in (
                    ("post-training bias (no predicted_label column)", plan.need_model_rows),
                    ("SHAP", cfg.shap is not None),
                    ("PDP", cfg.pdp is not None),
                )
                if on
            )
            m, selects = _load_model(cfg, self.model_arg, self.base_dir, why)
            _check_model_features(m, plan)
            self.outputs = _Outputs(cfg, m, selects)
        want_ft = cfg.post_training_bias is not None and (
            cfg.post_training_bias.methods == "all" or "FT" in cfg.post_training_bias.methods
        )
        need_rows = cfg.shap is not None or cfg.pdp is not None or want_ft
        if bias and not plan.need_model and not need_rows and self.windows is None:
            # bias only: the other columns are not needed (neither converted nor checked)
            self.source.set_usecols(
                [plan.label, *(f.name for f in plan.facets), plan.group, plan.weights, plan.predicted]
            )
        self.kept: list[Any] | None = [] if need_rows else None
        self.sample = _Sample(SAMPLE_ROWS, self.seed) if need_rows else None
        self.accumulators: list[Any] = []
        self.perf_accumulators: list[Any] = []
        self.perf_read: list[Any] = []  # those reading the accumulators' counts (not updated)
        # the positive class's score, when the model gives one (a name no input column has)
        self.score_col = next(
            n
            for n in (f"{self.pred_col}_score", *(f"{self.pred_col}_score_{i}" for i in range(1, len(columns) + 2)))
            if n not in columns
        )
        self.kept_bytes = 0
        self.n_rows = 0
        self.read_bar = Progress("reading", unit="rows", enabled=self.progress)
        self.model_bar = Progress("model calls", unit="rows", enabled=self.progress and plan.need_model_rows)
        pending: list[Any] = []
        pending_rows = 0
        decided = False
        for chunk in self.source:
            if decided:
                self._process(chunk, bias)
                continue
            pending.append(chunk)
            pending_rows += len(chunk.frame)
            if pending_rows >= DECIDE_ROWS:
                self._decide(pending)
                decided = True
                for c in pending:
                    self._process(c, bias)
                pending = []
        if not decided:
            if not pending:
                raise ValueError(
                    f"{self.source.path}: no data rows"
                    + (f" ({self.source.skipped} malformed rows skipped)" if self.source.skipped else "")
                )
            self._decide(pending)
            for c in pending:
                self._process(c, bias)
        read_bar, model_bar = self.read_bar, self.model_bar
        read_bar.close()
        model_bar.close()
        src = self.source.path if self.source.reader is None else os.path.basename(self.source.path)
        self.notes.insert(0, f"{self.n_rows:,} rows analysed from {src}")
        skipped = self.source.skipped
        if skipped:
            self.notes.insert(1, f"{skipped:,} malformed rows skipped (first: {self.source.skipped_examples[0]})")

        analysis: dict[str, Any] = {"version": "1.0"}
        if bias:
            analysis.update(self._bias_sections(want_ft))
        explanations: dict[str, Any] = {}
        local = feature_values = None
        if cfg.shap is not None:
            shap_block, local, feature_values = self._shap()
            explanations["kernel_shap"] = shap_block
        if cfg.pdp is not None:
            explanations["pdp"] = self._pdp(explanations.get("kernel_shap"))
        if explanations:
            analysis["explanations"] = explanations
        return self._write(analysis, local, feature_values, finish)

    def _process(self, c: Any, bias: bool) -> None:
        if self.windows is None:
            self._process_chunk(c, bias)
            return
        self.windows.add_chunk(c, self.source.path)
        try:
            self._process_chunk(c, bias)
        finally:
            self.windows.end_chunk()

    def _process_chunk(self, c: Any, bias: bool) -> None:
        # ``frame`` has the bias columns' text as codes (for the accumulators); everything else
        # (the model, kept rows, the sample) takes ``c.plain()``, the values as read
        plan, frame = self.plan, c.frame
        self.read_bar.update(len(frame))
        self.n_rows += len(frame)
        pred = None
        if plan.need_model_rows:
            P = self.outputs.predict(c.plain()[plan.features])
            used = self.outputs.used_for_label(P)
            bad = ~np.isfinite(P[:, used])
            if bad.any():
                r, j = (int(i[0]) for i in np.nonzero(bad))
                line = int(c.lines[r]) if c.lines is not None and len(c.lines) > r else "?"
                raise ValueError(
                    MSG_MODEL_NONFINITE.format(output=used[j], value=P[r, used[j]], row=c.start + r, line=line)
                )
            pred = self.outputs.predicted_label(P, plan, c.start)
            score = self.outputs.score(P, plan) if self.cfg.post_training_bias is not None else None
            self.model_bar.update(len(frame))
        else:
            score = None
        if bias:
            batch = self._bias_batch(frame, pred)
            perf_batch = batch
            if score is not None:  # per-group AUC, calibration and threshold curves (clarion.bias.performance)
                perf_batch = batch.assign(**{self.score_col: np.asarray(score, dtype=np.float64)})
            for acc in self.accumulators:
                acc.update(batch)
            if not self.perf_accumulators:
                prob = self.score_col if score is not None else None
                self.perf_accumulators = _performance_accumulators(self.perf_args, prob)
                self._performance_read(prob)
            for pacc in {id(p): p for p in self.perf_accumulators}.values():  # (one shared: counted once)
                if not any(pacc is p for p in self.perf_read):
                    pacc.update(perf_batch)
        if self.kept is not None:
            part = self._rows_to_keep(c.plain(), pred)
            self.kept_bytes += int(part.memory_usage(deep=True).sum())
            self.kept.append(part)
            if self.kept_bytes > self.budget:
                # too big to hold: from here on keep a uniform sample, and stream SHAP later
                start = 0
                for k in self.kept:
                    self.sample.add(k, start)
                    start += len(k)
                self.kept = None
                self.notes.append(
                    f"the rows exceed the memory budget ({self.budget:,} bytes): SHAP streamed "
                    f"the file a second time; the baseline and PDP used a uniform sample of at "
                    f"most {SAMPLE_ROWS:,} rows; FlipTest was not computed"
                )
        elif self.sample is not None:
            self.sample.add(self._rows_to_keep(c.plain(), pred), c.start)

    def _decide(self, chunks: list[Any]) -> None:
        """Equality vs. threshold for the label and every facet, from the first DECIDE_ROWS rows;
        then create one bias accumulator per facet."""
        import pandas as pd

        cfg, plan = self.cfg, self.plan
        from clarion.dataset import decode_codes, decode_column

        if not (cfg.pre_training_bias or cfg.post_training_bias):
            return
        # the first rows of the label and facet columns as read (coded columns decoded: those rows only)
        used = list(dict.fromkeys([plan.label, *(f.name for f in plan.facets)]))
        if len(chunks) == 1:  # (column by column: selecting columns of a frame costs ~0.4 ms)
            c = chunks[0]
            frame = c.frame if len(c.frame) <= DECIDE_ROWS else c.frame.iloc[:DECIDE_ROWS]  # (a slice: ~20 µs)
            head = {n: decode_column(frame[n], c.coded.get(n)) for n in used}
        else:
            parts, left = [], DECIDE_ROWS
            for c in chunks:  # (each pending chunk holds some of the first DECIDE_ROWS rows)
                part = c.frame[used].iloc[:left]
                parts.append(decode_codes(part, c.coded) if c.coded else part)
                left -= len(part)
            head = pd.concat(parts, ignore_index=True)
        plan.label_values, plan.label_threshold = _values_or_threshold(cfg.label_values_or_threshold, head[plan.label])
        _check_values_kind("label_values_or_threshold", plan.label_values, head[plan.label])
        plan.label_numeric = _numeric_dtype(head[plan.label])
        if plan.label_values is not None:
            plan.negative_label = _negative_label(plan.label_values, head[plan.label])
        for i, f in enumerate(plan.facets):
            if f.values is not None:
                f.values, f.threshold = _values_or_threshold(f.values, head[f.name])
                _check_values_kind(f"facet[{i}].value_or_threshold", f.values, head[f.name])
            elif _numeric_dtype(head[f.name]) and head[f.name].nunique() > MAX_CATEGORIES:
                raise ValueError(
                    f"facet {f.name!r}: a numeric facet with many values needs value_or_threshold "
                    f"(a threshold, e.g. [40])"
                )
        pred_col = self.pred_col if cfg.post_training_bias is not None else None
        from clarion import bias

        # Counts accumulate chunk by chunk; with ``confidence`` the accumulators also keep the
        # bootstrap replicate tables (rows numbered in reading order, as one report on all rows).
        n_boot = max(
            [
                m.n_bootstrap
                for m in (cfg.pre_training_bias, cfg.post_training_bias)
                if m is not None and m.confidence is not None
            ],
            default=0,
        )
        # with windows, the window is one more group axis of the counts (the whole-data report is
        # the sum of the windows)
        win = self.windows.accumulator_window() if self.windows is not None else {}
        # group sizes, rates, confusion matrices (and with a score AUC, calibration, curves) per facet
        # value: built with the first chunk, once it is known whether the model gives a score
        self.perf_args = [
            dict(
                label=plan.label,
                facet=f.name,
                facet_values=f.values,
                facet_threshold=f.threshold,
                label_values=plan.label_values,
                label_threshold=plan.label_threshold,
                predicted_label=pred_col,
                probability_threshold=cfg.probability_threshold,
                weights=plan.weights,
            )
            for f in plan.facets
        ]
        for args in self.perf_args:  # the same facet, label and prediction arguments
            self.accumulators.append(
                bias.Accumulator(
                    **args,
                    group_variable=plan.group,
                    **win,
                    n_bootstrap=n_boot,
                    seed=self.seed if n_boot else None,
                )
            )

    def _performance_read(self, probability: Any) -> None:
        """Let the group statistics' accumulators read the bias accumulators' counts (after their
        first update) where they can, instead of counting the rows again (see
        :data:`PERFORMANCE_FROM_ACCUMULATORS`); those that do are listed in ``perf_read``."""
        if not PERFORMANCE_FROM_ACCUMULATORS or probability is not None or self.windows is not None:
            return
        by_id = {id(p): p for p in self.perf_accumulators}
        for key, pacc in by_id.items():
            accs = [a for a, p in zip(self.accumulators, self.perf_accumulators) if id(p) == key]
            if pacc.read_counts(accs):
                self.perf_read.append(pacc)

    def _bias_batch(self, frame: Any, pred: Any) -> Any:
        import pandas as pd

        if pred is None and self.windows is None:
            batch = frame  # the accumulators read their columns by name: nothing to copy
        else:
            plan = self.plan
            cols = list(
                dict.fromkeys(
                    c
                    for c in [plan.label, *(f.name for f in plan.facets), plan.group, plan.weights, plan.predicted]
                    if c
                )
            )
            batch = frame[cols].copy()
            if pred is not None:
                batch[self.pred_col] = pd.Series(pred, index=batch.index)
            if self.windows is not None:
                batch = self.windows.bias_batch(batch, frame)
        # A reader (or the copy above) makes each chunk's column index anew; the compiled stream's
        # fetch (SlotStream.add_frame) knows a frame by its column index's identity, so every batch
        # with the first one's names shares its index (else each chunk misses the fetch and is read
        # in Python: ~0.05-0.1 ms a chunk and accumulator; session 18)
        cols, first = batch.columns, self.__dict__.get("_chunk_columns")
        if first is None:
            self._chunk_columns = cols
        elif cols is not first and len(cols) == len(first) and cols.dtype == first.dtype and cols.equals(first):
            batch.columns = first  # (the same names of the same type: a no-op but for the identity)
        return batch

    def _rows_to_keep(self, frame: Any, pred: Any) -> Any:
        plan = self.plan
        cols = list(
            dict.fromkeys(
                plan.features
                + [f.name for f in plan.facets]
                + [c for c in [plan.label, plan.predicted, plan.join, plan.group, plan.weights] if c]
            )
        )
        part = frame[cols].copy()
        if pred is not None:
            part[self.pred_col] = pred
        if self.windows is not None:
            part = self.windows.kept_rows(part, frame)
        return part

    def _rows(self) -> Any:
        """The kept rows (or the uniform sample), built once after the read."""
        import pandas as pd

        if getattr(self, "_rows_cache", None) is None:
            if self.kept is not None:
                self._rows_cache = pd.concat(self.kept, ignore_index=True) if self.kept else None
                self.kept = [self._rows_cache]
            else:
                self._rows_cache = self.sample.result()
        return self._rows_cache

    # -- bias ---------------------------------------------------------------------------------------
    def _bias_sections(self, want_ft: bool) -> dict[str, Any]:
        from clarion import bias

        cfg, plan = self.cfg, self.plan
        out: dict[str, Any] = {}
        stages = [
            ("pre_training_bias_metrics", "pre", cfg.pre_training_bias),
            ("post_training_bias_metrics", "post", cfg.post_training_bias),
        ]
        asked = {}  # stage -> (methods, interval arguments)
        for _key, stage, mcfg in stages:
            if mcfg is None:
                continue
            methods = mcfg.methods
            if stage == "post" and want_ft:
                from clarion.config import POST_TRAINING_METHODS

                methods = [m for m in (POST_TRAINING_METHODS if methods == "all" else methods) if m != "FT"]
            kw: dict[str, Any] = {}
            if mcfg.confidence is not None:
                kw.update(confidence=mcfg.confidence, n_bootstrap=mcfg.n_bootstrap)
            asked[stage] = (methods, kw)
        both = _one_report_methods(asked) if ONE_REPORT_PER_FACET else None
        reports: dict[int, dict[str, Any]] = {}  # id(accumulator) -> both sections (one report)
        for key, stage, mcfg in stages:
            if mcfg is None:
                continue
            methods, kw = asked[stage]
            section: dict[str, Any] | None = None
            for f, acc, pacc in zip(plan.facets, self.accumulators, self.perf_accumulators):
                if both is not None:
                    if id(acc) not in reports:
                        reports[id(acc)] = acc.report(methods=both, stage="both", **kw).to_dict()
                    part = reports[id(acc)][key]
                else:
                    part = acc.report(methods=methods, stage=stage, **kw).to_dict()[key] if methods else None
                if stage == "post" and want_ft:
                    part = self._with_flip_test(f, part)
                perf = self._perf(pacc)
                stats = perf.facets if stage == "post" else perf.pre_facets
                for e in ((part or {}).get("facets") or {}).get(f.name, []):  # the numbers behind each entry's metrics
                    extra = stats.get(f.name, {}).get(bias.entry_key(e["value_or_threshold"]))
                    if extra is not None:
                        e.update({k: v for k, v in extra.items() if k != "value_or_threshold"})
                if section is None:
                    section = {k: v for k, v in part.items() if k != "facets"}
                    section["facets"] = {}
                    if stage == "pre":
                        section["dataset"] = perf.dataset
                    elif perf.model_performance is not None:
                        section["model_performance"] = perf.model_performance
                for name, entries in part["facets"].items():  # two config entries on one column: both lists
                    section["facets"].setdefault(name, []).extend(entries)
            out[key] = section
        return out

    def _perf(self, pacc: Any) -> Any:
        """A facet's group statistics, entries keyed by :func:`clarion.bias.entry_key` (computed once)."""
        from clarion import bias

        cache = self.__dict__.setdefault("_perf_cache", {})
        if id(pacc) not in cache:
            res = pacc.result()
            for entries in (res.facets, res.pre_facets):
                for name in list(entries):
                    entries[name] = {bias.entry_key(e["value_or_threshold"]): e for e in entries[name]}
            cache[id(pacc)] = res
        return cache[id(pacc)]

    def _with_flip_test(self, f: _Facet, part: dict[str, Any] | None) -> dict[str, Any]:
        """FlipTest needs the rows (nearest neighbours), not counts: computed on the kept rows."""
        from clarion import bias

        cfg, plan = self.cfg, self.plan
        if self.kept is None:
            err = "FlipTest needs every row in memory; the data exceeds the memory budget"
            if part is None:
                acc = self.accumulators[self.plan.facets.index(f)]
                part = acc.report(methods=["DPPL"], stage="post").to_dict()["post_training_bias_metrics"]
                for e in part["facets"][f.name]:
                    e["metrics"] = []
            for e in part["facets"][f.name]:
                e["metrics"].append({"name": "FT", "description": "Flip Test (FT)", "value": None, "error": err})
                e["metrics"].sort(key=lambda m: m["name"])
            return part
        rows = self._rows()
        # FlipTest's neighbours are found in the model's feature space (+ this facet, label, prediction)
        cols = list(
            dict.fromkeys(
                plan.features + [c for c in (f.name, plan.label, self.pred_col, plan.group, plan.weights) if c]
            )
        )
        ft = bias.report(
            rows[cols],
            label=plan.label,
            facet=f.name,
            facet_values=f.values,
            facet_threshold=f.threshold,
            label_values=plan.label_values,
            label_threshold=plan.label_threshold,
            predicted_label=self.pred_col,
            probability_threshold=cfg.probability_threshold,
            group_variable=plan.group,
            weights=plan.weights,
            methods=["FT"],
            stage="post",
        ).to_dict()["post_training_bias_metrics"]
        if part is None:
            return ft
        by_value = {bias.entry_key(e["value_or_threshold"]): e for e in ft["facets"][f.name]}
        for e in part["facets"][f.name]:
            extra = by_value.get(bias.entry_key(e["value_or_threshold"]))
            if extra is not None:
                e["metrics"].extend(m for m in extra["metrics"] if m["name"] == "FT")
                e["metrics"].sort(key=lambda m: m["name"])
        return part

    # -- SHAP ---------------------------------------------------------------------------------------
    def _baseline(self, rows: Any) -> tuple[Any, Any]:
        """(background for KernelShap, DataFrame to save or None when the config gave one)."""
        import pandas as pd

        from clarion import explain

        sc, plan = self.cfg.shap, self.plan
        feats = plan.features
        b = sc.baseline
        if b is None:
            k = min(sc.num_clusters or DEFAULT_NUM_CLUSTERS, len(rows))
            bg = explain.kmeans_baseline(rows[feats], k)
            return bg, _baseline_frame(bg, feats)
        if isinstance(b, str):
            from clarion.dataset import read_dataset

            path = b if os.path.isabs(b) else os.path.join(self.base_dir, b)
            frame, _ = read_dataset(
                path,
                self.cfg.dataset_type,
                headers=feats if self.cfg.dataset_type == "text/csv" else None,
                features=self.cfg.features,
            ).read_all()
        elif b and isinstance(b[0], dict):
            frame = pd.DataFrame.from_records(b)
        else:
            frame = pd.DataFrame(b)
            if frame.shape[1] != len(feats):
                raise ValueError(
                    f"methods.shap.baseline: rows have {frame.shape[1]} values but there are "
                    f"{len(feats)} features {feats}"
                )
            frame.columns = feats
        missing = [c for c in feats if c not in frame.columns]
        if missing:
            raise ValueError(f"methods.shap.baseline: missing feature columns {missing}")
        frame = frame[feats].copy()
        for c in feats:
            if _numeric_dtype(rows[c]):
                v = pd.to_numeric(frame[c])
                # the data's dtype where it holds the values exactly; a fractional baseline value of an
                # integer column (a mean, a k-means centre) stays a float: casting it would silently
                # explain against another baseline (0.5 -> 0)
                exact = not (rows[c].dtype.kind in "iub" and not np.all(np.mod(v.to_numpy(dtype=float), 1) == 0))
                frame[c] = v.astype(rows[c].dtype) if exact else v.astype(np.float64)
        return frame, None

    def _shap(self) -> tuple[dict[str, Any], Any, Any]:
        import pandas as pd

        from clarion import explain

        sc, plan = self.cfg.shap, self.plan
        if sc.text_config is not None:  # units of text are the players (clarion.job.text)
            from clarion.job.text import text_shap

            block, *self.text_sections = text_shap(self)
            return block, None, None
        rows = self._rows()
        bg, baseline_frame = self._baseline(rows)
        if baseline_frame is not None:
            p = os.path.join(self.out_dir, "explanations_shap", "baseline.csv")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            atomic_write_text(p, baseline_frame.to_csv(index=False))
            self.paths["baseline"] = p
        cols = self.outputs.explained(self._n_outputs(rows))
        names = self.outputs.names(len(cols))
        self.explained_cols = cols
        self.shap_model = _Selected(self.outputs.model, cols, rows[plan.features].dtypes)
        kw: dict[str, Any] = {
            "num_samples": sc.num_samples,
            "seed": self.seed,
            "link": "logit" if sc.use_logit else "identity",
            "estimator": sc.estimator or "shap",  # Clarify's scheme unless the config opts in
        }
        if sc.tolerance is not None:
            kw["tolerance"] = sc.tolerance
        if sc.features_to_explain:
            kw["features_to_explain"] = [
                _resolve(f"methods.shap.features_to_explain[{i}]", f, plan.features)
                for i, f in enumerate(sc.features_to_explain)
            ]
        explainer = explain.KernelShap(self.shap_model, bg, **kw)
        feats = kw.get("features_to_explain") or plan.features
        sink = None
        if sc.save_local_shap_values:
            out_csv = os.path.join(self.out_dir, "explanations_shap", "out.csv")
            out_pq = os.path.join(self.out_dir, "explanations_shap", "out.parquet") if self.source.is_parquet else None
            sink = _CsvSink(out_csv, out_pq)
        local_cols = [f"{f}_{lab}" for lab in names for f in feats]
        parts: list[np.ndarray] = []
        bases: list[np.ndarray] = []  # expected values; per row with features_to_explain
        bar = Progress("SHAP", total=self.n_rows, unit="rows", enabled=self.progress)
        done = 0

        def tick(k: int, total: int) -> None:  # explain() reports synthetic rows of this batch
            bar.set(done + int(n_batch * k / max(total, 1)))

        try:
            for X, join in self._shap_batches():
                if self.windows is not None:
                    self.windows.add_explained(X)  # the window of each explained row
                n_batch = len(X)
                e = explainer.explain(self._spread(X[plan.features]), progress=tick if self.progress else None)
                done += n_batch
                vals = _values_3d(e, feats)
                bases.append(_base_rows(e, len(X), len(names)))
                parts.append(vals)
                if sink is not None:
                    frame = pd.DataFrame(vals.transpose(0, 2, 1).reshape(len(X), -1), columns=local_cols)
                    if join is not None:
                        frame.insert(0, plan.join, join.to_numpy())
                    sink.write(frame)
                bar.set(done)
            if sink is not None:
                sink.commit()
                self.paths["local_shap"] = sink.path
                if sink.parquet_path:
                    self.paths["local_shap_parquet"] = sink.parquet_path
        except BaseException:
            if sink is not None:
                sink.abort()
            raise
        finally:
            bar.close()
        allv = np.concatenate(parts, axis=0)
        # one base value per output; with features_to_explain it depends on the row (the other
        # features keep the row's values) and analysis.json reports its mean over the explained rows
        exp = (
            np.concatenate(bases, axis=0).mean(axis=0)
            if "features_to_explain" in kw
            else np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        )
        block: dict[str, Any] = {}
        for d, lab in enumerate(names):
            g = _aggregate(allv[:, :, d], sc.agg_method)
            block[lab] = {
                "global_shap_values": {f: float(v) for f, v in zip(feats, g)},
                "expected_value": float(exp[d]),
            }
        local = pd.DataFrame(allv.transpose(0, 2, 1).reshape(allv.shape[0], -1), columns=local_cols)
        if self.windows is not None:
            self.windows.aggregate_shap(block, local, sc.agg_method)
        feature_values = rows[feats] if self.kept is not None else None
        if feature_values is None:
            local = None  # the strip plot colours need the rows; streamed runs show global bars only
        return block, local, feature_values

    def _shap_batches(self) -> Iterator[tuple[Any, Any]]:
        """Rows to explain in input order: the kept rows, or a second streaming read."""
        plan = self.plan
        step = self.source.chunk_rows if self.source.reader is None else self.source.reader.chunk_rows
        if self.kept is not None:
            rows = self._rows()
            for s in range(0, len(rows), step):
                part = rows.iloc[s : s + step]
                yield part, (part[plan.join] if plan.join else None)
            return
        for c in self.source:
            frame = c.plain()
            yield frame, (frame[plan.join] if plan.join else None)

    def _spread(self, frame: Any) -> Any:
        """``frame`` as partitions on the Dask client's workers (with a client), else as it is."""
        if self.dask_client is None:
            return frame
        from clarion.distributed import on_cluster

        return on_cluster(frame, client=self.dask_client)

    def _n_outputs(self, rows: Any) -> int:
        n = getattr(self.outputs.model, "n_outputs", None)
        if isinstance(n, (int, np.integer)) and n > 0:
            return int(n)
        return self.outputs.predict(rows[self.plan.features].iloc[:1]).shape[1]

    # -- PDP ----------------------------------------------------------------------------------------
    def _pdp(self, shap_block: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        from clarion import explain

        pc, plan = self.cfg.pdp, self.plan
        rows = self._rows()
        if pc.features:
            feats = [_resolve(f"methods.pdp.features[{i}]", f, plan.features) for i, f in enumerate(pc.features)]
        else:
            g = next(iter(shap_block.values()))["global_shap_values"]
            if self.cfg.shap.text_config is not None:  # text columns have no partial dependence
                g = {k: v for k, v in g.items() if _numeric_dtype(rows[k])}
            feats = [k for k, _ in sorted(g.items(), key=lambda kv: -abs(kv[1]))][: pc.top_k_features]
        model = getattr(self, "shap_model", None)
        if model is None:
            model = _Selected(
                self.outputs.model, self.outputs.explained(self._n_outputs(rows)), rows[plan.features].dtypes
            )
        names = self.outputs.names(len(model.cols))  # as the kernel_shap blocks are named
        X = rows[plan.features]
        bar = Progress("PDP", total=len(feats), unit="features", enabled=self.progress)
        entries = []
        text_job = self.cfg.shap is not None and self.cfg.shap.text_config is not None
        for f in feats:
            if text_job and not _numeric_dtype(X[f]):  # Clarify: a failed entry of type free_text
                entries.append({"feature_name": f, "data_type": "free_text", "error": MSG_PDP_TEXT})
                bar.update(1)
                continue
            try:
                pdp = explain.partial_dependence(model, self._spread(X), [f], grid_resolution=pc.grid_resolution)
                entries.append(_pdp_entry(pdp, f, X[f], names))
            except Exception as exc:  # noqa: BLE001 - Clarify reports a failed feature as an entry with "error"
                entries.append(
                    {
                        "feature_name": f,
                        "data_type": "categorical" if not _numeric_dtype(X[f]) else "numerical",
                        "error": str(exc),
                    }
                )
            bar.update(1)
        bar.close()
        return entries

    # -- writing -----------------------------------------------------------------------------------
    def _write(self, analysis: dict[str, Any], local: Any, feature_values: Any, finish: Any) -> AnalysisResult:
        """Every output, each written once: analysis.json, the config, (``finish``'s files), the report."""
        from clarion.report import write_analysis_json, write_report

        cfg = self.cfg
        p_json = os.path.join(self.out_dir, "analysis.json")
        doc = write_analysis_json(p_json, analysis)  # the document as written
        p_cfg = os.path.join(self.out_dir, "analysis_config.json")
        cfg.write(p_cfg)
        self.paths.update(analysis=p_json, config=p_cfg)
        sections = finish(doc, self) if finish is not None else None
        html_section, md_section = sections if sections is not None else (None, None)
        text_sections = getattr(self, "text_sections", None)
        if text_sections:  # the text explanations section, before a finish() section
            html_section = text_sections[0] + (html_section or "")
            md_section = text_sections[1] + ("\n" + md_section if md_section else "")
        rep = cfg.report
        name, title = (rep.name, rep.title) if rep is not None else ("report", "Analysis Report")
        paths = write_report(
            self.out_dir,
            analysis,
            name=name,
            title=title,
            config=cfg.to_dict(),
            local_shap=local,
            feature_values=feature_values,
            notes=self.notes,
            html_section=html_section,
            md_section=md_section,
        )
        self.paths.update({f"report_{k}": v for k, v in paths.items()})  # html, md, and pdf / ipynb when written
        return AnalysisResult(
            self.out_dir,
            doc,
            dict(self.paths),
            self.n_rows,
            self.source.skipped,
            self.source.skipped_examples,
            list(self.notes),
        )


def _one_report_methods(asked: dict[str, tuple[Any, dict[str, Any]]]) -> list[str] | None:
    """The methods of one ``stage="both"`` report that gives both stages' sections as the two
    one-stage reports give them (``asked``: stage -> (methods, interval arguments)), or None:
    both stages asked for, with the same interval arguments, the pre-training methods "all" or
    pre-training names, the post-training ones a non-empty list of post-training names (a name
    of the other stage is an error of the one-stage report: that way it is raised)."""
    from clarion.config import POST_TRAINING_METHODS, PRE_TRAINING_METHODS

    if set(asked) != {"pre", "post"} or asked["pre"][1] != asked["post"][1]:
        return None
    pre, post = asked["pre"][0], asked["post"][0]
    if pre == "all":
        pre = list(PRE_TRAINING_METHODS)
    if not isinstance(pre, list) or not pre or any(m not in PRE_TRAINING_METHODS for m in pre):
        return None
    if not isinstance(post, list) or not post or any(m not in POST_TRAINING_METHODS or m == "FT" for m in post):
        return None
    return [*pre, *post]


def _performance_accumulators(args: list[dict[str, Any]], probability: Any) -> list[Any]:
    """The group statistics' accumulators of the facets ``args`` (one argument set per facet, in
    the plan's order): one ``PerformanceAccumulator`` per facet, or one for all of them, listed
    once per facet (see :data:`ONE_PERFORMANCE_ACCUMULATOR`): its result holds each facet's
    entries as the facet's own accumulator gives them."""
    from clarion.bias import PerformanceAccumulator

    per_facet = ("facet", "facet_values", "facet_threshold")
    names = [a["facet"] for a in args]
    shared = {k: v for k, v in args[0].items() if k not in per_facet}
    if (
        ONE_PERFORMANCE_ACCUMULATOR
        and len(args) > 1
        and all(isinstance(n, str) for n in names)
        and len(set(names)) == len(names)
        and all({k: v for k, v in a.items() if k not in per_facet} == shared for a in args)
    ):
        one = PerformanceAccumulator(
            facet=names,
            facet_values={a["facet"]: a["facet_values"] for a in args},
            facet_threshold={a["facet"]: a["facet_threshold"] for a in args},
            probability=probability,
            **shared,
        )
        return [one] * len(args)
    return [PerformanceAccumulator(**a, probability=probability) for a in args]
