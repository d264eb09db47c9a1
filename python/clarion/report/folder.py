"""Re-render a report from an existing ``analysis.json`` (clarion's or Clarify's) and the files beside it.

This is what ``clarion report`` (:mod:`clarion.cli.report`) runs.

``clarion report OUT/analysis.json -o report.html`` writes one self-contained HTML page; the output's
extension chooses the format (:data:`FORMATS`): ``.html`` / ``.htm``, ``.md`` (Markdown), ``.pdf``
(paginated PDF, needs the ``report`` extra) or ``.ipynb`` (a notebook that rebuilds the tables and
charts from ``analysis.json``; needs nbformat); any other extension is refused. Files found
beside ``analysis.json`` are used when present: the config summary from ``analysis_config.json``,
the local-attribution summary from ``explanations_shap/out.csv`` and, in a ``clarion monitor``
output folder, the drift section from ``constraint_violations.json`` (with
``drift_over_time.parquet`` / ``.csv`` for the per-window charts).

Every input is validated before anything is written: a malformed ``analysis.json`` (or config,
or ``constraint_violations.json``) raises :class:`clarion.monitor.AnalysisError`, a ``ValueError``
naming the file and the key path.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["FORMATS", "MSG_FORMAT", "render_file"]

#: output extensions ``clarion report`` writes (case-insensitive) -> the format
FORMATS = {".html": "html", ".htm": "html", ".md": "markdown", ".pdf": "pdf", ".ipynb": "notebook"}
MSG_FORMAT = "output: {path}: clarion report cannot write {ext}; it writes {formats}"


def _format_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(
            MSG_FORMAT.format(
                path=path, ext=f"a {ext!r} file" if ext else "a file without an extension", formats=", ".join(FORMATS)
            )
        )
    return FORMATS[ext]


def _load_config(path: str) -> dict[str, Any]:
    """The analysis config, checked where the report reads it (names the file and the key)."""
    from clarion.monitor.documents import AnalysisError, load_json

    cfg = load_json(path, name="config")

    def need(ok: bool, key: str, what: str, v: Any) -> None:
        if not ok:
            got = (
                type(v).__name__
                if not isinstance(v, (list, dict))
                else ("a list" if isinstance(v, list) else "an object")
            )
            raise AnalysisError(f"config: {path}: {key}: expected {what}, got {got}")

    need(isinstance(cfg, dict), "(top level)", "a JSON object (an analysis config)", cfg)
    methods = cfg.get("methods")
    if methods is not None:
        need(isinstance(methods, dict), "methods", "an object", methods)
        report = methods.get("report")
        if report is not None:
            need(isinstance(report, dict), "methods.report", "an object", report)
            title = report.get("title")
            need(title is None or isinstance(title, str), "methods.report.title", "a string", title)
    if cfg.get("facet") is not None:
        need(isinstance(cfg["facet"], list), "facet", "a list", cfg["facet"])
        for i, f in enumerate(cfg["facet"]):
            need(isinstance(f, dict), f"facet[{i}]", "an object", f)
    if cfg.get("predictor") is not None:
        need(isinstance(cfg["predictor"], dict), "predictor", "an object", cfg["predictor"])
    return cfg


def _drift(here: str) -> tuple[Any, Any, str, str | None] | None:
    """(overall, over_time, baseline, window) rebuilt from a ``clarion monitor`` output folder, or
    None when ``here`` has no ``constraint_violations.json``."""
    from clarion.monitor.documents import load_violations
    from clarion.monitor.drift import DriftResult
    from clarion.monitor.windows import TABLE_COLUMNS, DriftOverTime

    path = os.path.join(here, "constraint_violations.json")
    if not os.path.exists(path):
        return None
    doc = load_violations(path)
    violations = doc.get("violations", [])
    overall = DriftResult([v for v in violations if "window" not in v], list(doc.get("scores", [])))
    over_time = None
    if doc.get("window_scores") is not None:
        import pandas as pd

        results = {
            w: DriftResult(
                [{k: x for k, x in v.items() if k != "window"} for v in violations if v.get("window") == w], list(sc)
            )
            for w, sc in doc["window_scores"].items()
        }
        table = pd.DataFrame(columns=list(TABLE_COLUMNS))
        for name in ("drift_over_time.parquet", "drift_over_time.csv"):
            tpath = os.path.join(here, name)
            if os.path.exists(tpath):
                table = _read_table(tpath, results)
                break
        over_time = DriftOverTime(table, results)
    return overall, over_time, doc.get("baseline") or "", doc.get("window")


def _capture_counts(here: str) -> dict[str, int] | None:
    """``capture_join.json`` of a ``clarion monitor --capture`` output folder (None without one);
    a malformed file raises :class:`clarion.monitor.AnalysisError` naming it."""
    from clarion.monitor.documents import AnalysisError, load_json

    path = os.path.join(here, "capture_join.json")
    if not os.path.exists(path):
        return None
    doc = load_json(path, name="capture_join")
    if not isinstance(doc, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in doc.items()
    ):
        raise AnalysisError(f"capture_join: {path}: expected an object of counts (names to whole numbers >= 0)")
    return doc


def _read_table(path: str, results: dict[str, Any]) -> Any:
    """``drift_over_time.parquet`` / ``.csv``, its windows named as in ``results``."""
    import pandas as pd

    from clarion.monitor.documents import AnalysisError
    from clarion.monitor.windows import TABLE_COLUMNS

    try:
        t = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path, dtype={"window": str})
    except ImportError:  # no Parquet reader: the CSV beside it has the same table
        return _read_table(path[: -len(".parquet")] + ".csv", results) if path.endswith(".parquet") else None
    except (ValueError, OSError) as exc:
        raise AnalysisError(f"{path}: cannot read the drift table: {exc}") from None
    missing = [c for c in TABLE_COLUMNS if c not in t.columns]
    if missing:
        raise AnalysisError(f"{path}: columns {missing} missing (expected {list(TABLE_COLUMNS)})")
    by_time = {}
    for w in results:
        try:
            by_time[pd.Timestamp(w)] = w
        except ValueError:
            raise AnalysisError(f"constraint_violations.json: window_scores: key {w!r} is not a timestamp") from None
    names = []
    for i, w in enumerate(t["window"]):
        try:
            key = by_time.get(pd.Timestamp(w))
        except (ValueError, TypeError):
            key = None
        if key is None:
            raise AnalysisError(
                f"{path}: row {i + 1}: window {w!r} is not one of constraint_violations.json's window_scores"
            )
        names.append(pd.Timestamp(key))
    t = t.assign(window=pd.Series(names, index=t.index, dtype=object))
    try:
        for c in ("value", "baseline"):
            t[c] = t[c].astype("float64")
    except (ValueError, TypeError) as exc:
        raise AnalysisError(f"{path}: column {c!r}: {exc}") from None
    return t


def render_file(
    analysis_path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    title: str | None = None,
    config_path: str | os.PathLike | None = None,
) -> str:
    """Render ``analysis_path`` to ``output`` (HTML for ``.html`` / ``.htm``, Markdown for ``.md``,
    PDF for ``.pdf``, a notebook for ``.ipynb``), atomically; with the drift section (not in the
    notebook) when ``analysis_path`` lies in a ``clarion monitor`` output.

    Parameters
    ----------
    analysis_path : path
        An ``analysis.json`` written by clarion or by SageMaker Clarify.
    output : path
        The report file to write.
    title : str, optional
        Report title (default: ``methods.report.title`` of the config, else "Analysis Report").
    config_path : path, optional
        The analysis config (default: ``analysis_config.json`` beside ``analysis_path``, if any).

    Returns
    -------
    str
        The written path.

    Raises
    ------
    ValueError
        ``output`` has another extension (:data:`MSG_FORMAT`); an input is malformed
        (:class:`clarion.monitor.AnalysisError`, naming the file and the key path).
    ImportError
        ``.pdf`` without reportlab / svglib, ``.ipynb`` without nbformat (``pip install
        'clarion[report]'``); nothing is written.
    """
    from clarion._io import atomic_write_bytes, atomic_write_text
    from clarion.monitor.documents import AnalysisError, load_analysis
    from clarion.report import render_html, render_markdown
    from clarion.report.drift import drift_html, drift_markdown

    out = os.fspath(output)
    fmt = _format_of(out)
    if fmt in ("pdf", "notebook"):  # a missing package is said before any work
        from clarion.report.formats import require_format

        require_format("pdf" if fmt == "pdf" else "ipynb")
    analysis_path = os.fspath(analysis_path)
    doc = load_analysis(analysis_path, name="analysis")
    known = ("pre_training_bias_metrics", "post_training_bias_metrics", "explanations")
    if not any(k in doc for k in known):
        raise AnalysisError(f"analysis: {analysis_path} has none of {list(known)}; is it an analysis.json?")
    here = os.path.dirname(os.path.abspath(analysis_path))
    if config_path is None and os.path.exists(os.path.join(here, "analysis_config.json")):
        config_path = os.path.join(here, "analysis_config.json")
    config = _load_config(os.fspath(config_path)) if config_path is not None else None
    if title is None:
        title = ((config or {}).get("methods") or {}).get("report") or {}
        title = title.get("title") or "Analysis Report"
    if fmt == "notebook":
        from clarion.report.notebook import relative_path, render_notebook

        atomic_write_text(out, render_notebook(relative_path(analysis_path, out), title=title))
        return out
    drift = _drift(here)
    capture = _capture_counts(here) if drift is not None else None
    # an image job's heat maps stay beside analysis.json: link them from where the report goes
    image_dir = os.path.relpath(here, os.path.dirname(os.path.abspath(out))).replace(os.sep, "/")
    image_dir = "" if image_dir == "." else image_dir
    if fmt == "markdown":
        text = render_markdown(doc, title=title, image_dir=image_dir)
        if drift is not None:
            overall, over_time, baseline, window = drift
            text = (
                text.rstrip("\n")
                + "\n"
                + drift_markdown(
                    overall=overall, over_time=over_time, baseline=baseline, window=window, capture=capture
                )
                + "\n"
            )
    else:
        local = None
        local_path = os.path.join(here, "explanations_shap", "out.csv")
        if os.path.exists(local_path):
            import pandas as pd

            try:
                local = pd.read_csv(local_path)
            except (ValueError, OSError) as exc:
                raise AnalysisError(f"{local_path}: cannot read the local attributions: {exc}") from None
            join = (config or {}).get("joinsource_name_or_index")
            if isinstance(join, str) and join in local.columns:
                local = local.drop(columns=[join])
        if fmt == "pdf":
            from clarion.report.model import build_report, markdown_section
            from clarion.report.pdf import render_report_pdf

            report = build_report(doc, title=title, config=config, local_shap=local)
            from clarion.report.image import image_sections

            images = image_sections(doc, os.path.dirname(os.path.abspath(analysis_path)))
            if images is not None:
                report.sections.append(images)
            if drift is not None:
                overall, over_time, baseline, window = drift
                report.sections.append(
                    markdown_section(
                        drift_markdown(
                            overall=overall, over_time=over_time, baseline=baseline, window=window, capture=capture
                        )
                    )
                )
            atomic_write_bytes(out, render_report_pdf(report))
            return out
        text = render_html(doc, title=title, config=config, local_shap=local, image_dir=image_dir)
        if drift is not None:
            overall, over_time, baseline, window = drift
            at = text.rfind("</main>")
            text = (
                text[:at]
                + drift_html(overall=overall, over_time=over_time, baseline=baseline, window=window, capture=capture)
                + text[at:]
            )
    atomic_write_text(out, text)
    return out
