"""Outputs: the result object, the output folder (refused when not empty without overwrite;
written into a staged sibling that replaces the previous results only on success), and the
streamed local-SHAP table writer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from clarion._io import create_temp_file, staged_output_dir

OUTPUT_FILES = (
    "analysis.json",
    "analysis_config.json",
    "explanations_shap/out.csv",
    "explanations_shap/out.parquet",
    "explanations_shap/baseline.csv",
)


#: what ``clarion monitor`` writes besides (a later run into the same folder removes them too)
MONITOR_OUTPUT_FILES = (
    "constraint_violations.json",
    "drift_over_time.csv",
    "drift_over_time.parquet",
    "analysis_by_window.json",
    "capture_join.json",
)


MSG_EXISTS = (
    "output directory {path} already exists and is not empty; pass overwrite=True (--overwrite) to write into it"
)


@dataclass
class AnalysisResult:
    """What :func:`analyze` wrote.

    Attributes
    ----------
    output_dir : str
    analysis : dict
        The ``analysis.json`` document.
    paths : dict
        ``analysis``, ``config``, ``report_html``, ``report_md``, and when written ``report_pdf``,
        ``report_ipynb`` (with the ``report`` extra installed), ``local_shap``, ``local_shap_parquet``,
        ``baseline``.
    n_rows : int
        Rows analysed.
    skipped_rows : int
        Malformed rows skipped (``skip_bad_rows=True``).
    skipped_examples : list of str
        The first few skipped rows' errors.
    notes : list of str
        Remarks shown in the report (skipped rows, streamed SHAP...).
    """

    output_dir: str
    analysis: dict[str, Any]
    paths: dict[str, str]
    n_rows: int
    skipped_rows: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def largest_disparities(self, k: int = 3) -> list[str]:
        """The ``k`` largest disparities, one per facet value and stage, ranked comparably across
        metrics (:func:`clarion.report.model.largest_disparities`), each with its group sizes."""
        from clarion.report.html import largest_disparities

        return [text for _, text in largest_disparities(self.analysis, k)]

    def _repr_html_(self) -> str:
        """A notebook's view: rows, the model line, each facet value's groups (rows, observed and
        predicted positive rates, accuracy), the largest disparities, top features and the files;
        every string escaped."""
        import html

        esc = html.escape

        def num(v: Any, pct: bool = False) -> str:
            if v is None:
                return "n/a"
            if isinstance(v, str):
                return esc(v)
            return f"{v:.1%}" if pct else f"{v:.4g}"

        parts = [f"<p><b>rows analysed:</b> {self.n_rows:,}"]
        if self.skipped_rows:
            parts[0] += f" ({self.skipped_rows:,} malformed rows skipped)"
        parts[0] += "</p>"
        perf = self.model_performance_line()
        if perf:
            parts.append(f"<p>{esc(perf)}</p>")
        rows = []
        for key in ("post_training_bias_metrics", "pre_training_bias_metrics"):
            for facet, entries in ((self.analysis.get(key) or {}).get("facets") or {}).items():
                for e in entries:
                    gs = e.get("group_statistics")
                    if not gs:
                        continue
                    for grp in ("d", "a"):
                        g = gs[f"facet_{grp}"]
                        rows.append(
                            f"<tr><td>{esc(str(facet))}</td><td>{esc(str(e.get('value_or_threshold')))}</td>"
                            f"<td>{grp}</td><td style='text-align:right'>{g.get('rows', 0):,}</td>"
                            f"<td style='text-align:right'>{num(g.get('observed_positive_rate'), True)}</td>"
                            f"<td style='text-align:right'>{num(g.get('predicted_positive_rate'), True)}</td>"
                            f"<td style='text-align:right'>{num(g.get('accuracy'))}</td></tr>"
                        )
            if rows:
                break  # the post-training groups hold the pre-training numbers too
        if rows:
            parts.append(
                "<table><thead><tr><th>facet</th><th>value</th><th>group</th><th>rows</th>"
                "<th>observed positive</th><th>predicted positive</th><th>accuracy</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>"
            )
        dis = self.largest_disparities()
        if dis:
            items = "".join(f"<li>{esc(t)}</li>" for t in dis)  # each names its group sizes
            parts.append(f"<p><b>largest disparities</b></p><ol>{items}</ol>")
        for label, top in self.top_features().items():
            feats = ", ".join(f"{esc(str(k))} ({v:.4g})" for k, v in top)
            parts.append(f"<p><b>top features ({esc(str(label))}):</b> {feats}</p>")
        files = "".join(f"<li>{esc(k)}: <code>{esc(str(v))}</code></li>" for k, v in self.paths.items())
        parts.append(f"<details><summary>files</summary><ul>{files}</ul></details>")
        return "<div>" + "".join(parts) + "</div>"

    def model_performance_line(self) -> str | None:
        """One line on the model over the analysed rows (``model_performance`` of analysis.json):
        accuracy against the label's base rate, the share predicted positive, ROC AUC when scored."""
        mp = (self.analysis.get("post_training_bias_metrics") or {}).get("model_performance")
        if not mp or mp.get("accuracy") is None:
            return None
        parts = [f"accuracy {mp['accuracy']:.3f}"]
        if mp.get("label_positive_rate") is not None:
            parts[0] += f" (base rate {max(mp['label_positive_rate'], 1 - mp['label_positive_rate']):.3f})"
        if mp.get("predicted_positive_rate") is not None:
            parts.append(f"predicts the positive label for {mp['predicted_positive_rate']:.1%} of rows")
        if mp.get("roc_auc") is not None:
            parts.append(f"ROC AUC {mp['roc_auc']:.3f}")
        return "model: " + ", ".join(parts)

    def top_features(self, k: int = 3) -> dict[str, list[tuple[str, float]]]:
        """Per explained output, the ``k`` features with the largest global SHAP value."""
        shap = (self.analysis.get("explanations") or {}).get("kernel_shap") or {}
        return {
            label: sorted(block["global_shap_values"].items(), key=lambda kv: -abs(kv[1]))[:k]
            for label, block in shap.items()
        }

    def summary(self) -> str:
        """A few lines for the end of a run: rows, largest disparities, top features, and (last) the report path."""
        lines = [
            f"rows analysed: {self.n_rows:,}"
            + (f" ({self.skipped_rows:,} malformed rows skipped)" if self.skipped_rows else "")
        ]
        perf = self.model_performance_line()
        if perf:
            lines.append(perf)
        dis = self.largest_disparities()
        if dis:
            lines.append("largest disparities:")
            lines += [f"  {i + 1}. {t}" for i, t in enumerate(dis)]  # each names its group sizes
        for label, top in self.top_features().items():
            lines.append(f"top features ({label}): " + ", ".join(f"{k} ({v:.4g})" for k, v in top))
        missing = [f"report.{k}" for k in ("pdf", "ipynb") if f"report_{k}" not in self.paths]
        if missing:
            lines.append(f"{' and '.join(missing)} not written: pip install 'clarion[report]' to get them")
        lines.append(f"report: {self.paths['report_html']}")
        return "\n".join(lines)


def prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    """Refuse an output folder that exists and is not empty, unless ``overwrite``. Nothing is
    deleted here: the run writes into a temporary sibling folder that replaces the previous
    results only when it succeeds (:func:`staged`)."""
    if os.path.exists(output_dir):
        if not os.path.isdir(output_dir):
            raise FileExistsError(f"output directory {output_dir} exists and is not a directory")
        if os.listdir(output_dir) and not overwrite:
            raise FileExistsError(MSG_EXISTS.format(path=output_dir))


def _previous_outputs(output_dir: str) -> list[str]:
    """The files (relative paths) that an earlier run wrote into ``output_dir``: Clarify's files,
    ``clarion monitor``'s, everything in ``explanations_shap/``, and the report under the name its
    ``analysis_config.json`` gave. A successful run removes them; any other file stays."""
    import json

    names = [*OUTPUT_FILES, *MONITOR_OUTPUT_FILES, *_previous_image_files(output_dir)]
    shap_dir = os.path.join(output_dir, "explanations_shap")
    for d, _dirs, files in os.walk(shap_dir):
        names += [os.path.relpath(os.path.join(d, f), output_dir) for f in files]
    report = "report"
    try:
        with open(os.path.join(output_dir, "analysis_config.json"), encoding="utf-8") as fh:
            rep = (json.load(fh).get("methods") or {}).get("report") or {}
        if isinstance(rep.get("name"), str) and rep["name"]:
            report = rep["name"]
    except (OSError, ValueError, AttributeError, RecursionError):
        pass  # no readable config: the default report name
    return names + [f"{report}.{ext}" for ext in ("html", "md", "pdf", "ipynb")]


def _previous_image_files(output_dir: str) -> list[str]:
    """The heat maps and box images that the previous run's ``analysis.json`` names
    (``explanations.image_shap.images[*].heatmaps[*].file`` and ``objects_file``, written by
    :mod:`clarion.job.image`). Only files named there are the previous run's: a user's own
    ``shap_*.jpeg`` beside them is not, and stays. A name that is not a plain file name of
    ``output_dir`` (a path, ``..``) is ignored."""
    import json

    path = os.path.join(output_dir, "analysis.json")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    if b"image_shap" not in raw and b"\\" not in raw:
        return []  # (no key of the document can be "image_shap": its text, or an escape, would show)
    try:
        with open(path, encoding="utf-8") as fh:
            images = json.load(fh)["explanations"]["image_shap"]["images"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return []
    out: list[str] = []
    for entry in images if isinstance(images, list) else []:
        if not isinstance(entry, dict):
            continue
        maps = entry.get("heatmaps")
        names = [h.get("file") for h in maps if isinstance(h, dict)] if isinstance(maps, list) else []
        names.append(entry.get("objects_file"))
        out += [n for n in names if isinstance(n, str) and n and n == os.path.basename(n) and n not in (".", "..")]
    return out


@dataclass
class _Stage:
    """Where a run writes (``stage``) and where its results go on success (``out_dir``)."""

    out_dir: str
    stage: str = ""

    def moved(self, result: AnalysisResult) -> AnalysisResult:
        """``result`` with its paths rewritten from the stage to ``out_dir``."""

        def at(p: str) -> str:
            rel = os.path.relpath(p, self.stage)
            return p if rel.startswith("..") else os.path.join(self.out_dir, rel)

        result.output_dir = self.out_dir
        result.paths = {k: at(v) for k, v in result.paths.items()}
        return result


@contextlib.contextmanager
def staged(out_dir: str) -> Iterator[_Stage]:
    """``with staged(out_dir) as s:`` write the run into ``s.stage``; on success it replaces the
    previous results in ``out_dir`` (stale files of the previous run removed, the user's kept); on
    failure or interrupt ``out_dir`` is left as it was."""
    s = _Stage(out_dir)
    with staged_output_dir(out_dir, _previous_outputs) as s.stage:
        yield s


class _CsvSink:
    """Appends DataFrame chunks to a CSV (and optionally Parquet) under a temporary name; ``commit``
    renames them into place, so a reader never sees half a file."""

    def __init__(self, path: str, parquet_path: str | None) -> None:
        d = os.path.dirname(path)
        os.makedirs(d, exist_ok=True)
        self.path, self.parquet_path = path, parquet_path
        fd, self.tmp = create_temp_file(d, "-out.csv")  # mode from the umask, like every output
        self.fh = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self.header = True
        self.pq_writer = None
        self.pq_tmp = None

    def write(self, frame: Any) -> None:
        frame.to_csv(self.fh, index=False, header=self.header)
        self.header = False
        if self.parquet_path:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.pq_writer is None:
                fd, self.pq_tmp = create_temp_file(os.path.dirname(self.parquet_path), "-out.parquet")
                os.close(fd)
                self.pq_writer = pq.ParquetWriter(self.pq_tmp, table.schema)
            self.pq_writer.write_table(table)

    def commit(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.path)
        if self.pq_writer is not None:
            self.pq_writer.close()
            os.replace(self.pq_tmp, self.parquet_path)

    def abort(self) -> None:
        for closer in (self.fh.close, getattr(self.pq_writer, "close", lambda: None)):
            try:
                closer()
            except Exception:  # noqa: BLE001 - cleanup after another error
                pass
        for p in (self.tmp, self.pq_tmp):
            if p and os.path.exists(p):
                os.unlink(p)
