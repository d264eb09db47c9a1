"""The report files of a bias-only ``clarion analyze`` (issue 21 part 3, session 17): what
``clarion.report.write_report`` costs per file, against a floor measured in the same run.

The analysis is the one ``bench_linerate.py`` times (its ``ANALYZE_CFG``: two facets, a group
variable, pre- and post-training metrics, no intervals) on its frame of ``--rows`` rows: the job is
run once and ``write_report``'s arguments captured. Then, in a fresh interpreter per tree and
round (this tree, and with ``--base`` a base commit's ``python/`` from ``git archive``, the
compiled core copied beside it), alternating, each measure the best of ``--repeat`` calls, the
best round kept:

* ``floor``: ``write_analysis_json`` of the same analysis (the file the job writes anyway:
  ``json.dumps`` and an atomic write, fsync included, as every report file is written);
* ``write_report``: the four files (report.html, report.md, report.pdf, report.ipynb);
* per file, rendering only: ``html`` (``build_report`` + the page), ``md``, ``pdf``
  (``render_report_pdf`` of the built report), ``ipynb`` (``render_notebook``);
* ``pdf_fresh`` (session 18): ``render_report_pdf`` of the same report with other numbers each
  call (every float of the analysis scaled; built outside the timer), so that what is kept per
  process by text, width or shape cannot hit the numbers: what a pipeline's next report pays.

    python benchmarks/bench_report_files.py --rows 1000000 --base ca64b72 --rounds 5 --repeat 10
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PARTS = ("floor", "write_report", "html", "md", "pdf", "pdf_fresh", "ipynb")


def perturbed(doc, factor: float):
    """``doc`` with every float multiplied by ``factor``: the same report, other numbers."""
    if isinstance(doc, dict):
        return {k: perturbed(v, factor) for k, v in doc.items()}
    if isinstance(doc, list):
        return [perturbed(v, factor) for v in doc]
    return doc * factor if isinstance(doc, float) else doc


def best_fresh(f, reports: list) -> float:
    """The best of ``f(report)`` over ``reports`` (each drawn once: no number seen before)."""
    out = []
    for r in reports:
        t0 = time.perf_counter()
        f(r)
        out.append(time.perf_counter() - t0)
    return min(out)


def capture(tmp: str, rows: int) -> str:
    """Run the job once on ``rows`` rows; pickle ``write_report``'s arguments; returns the file."""
    sys.path.insert(0, HERE)
    from bench_linerate import ANALYZE_CFG, analyze_frame

    import clarion
    import clarion.report

    csv = os.path.join(tmp, "data.csv")
    analyze_frame(rows).to_csv(csv, index=False)
    calls = []
    real = clarion.report.write_report

    def spy(*a, **kw):
        calls.append((a, kw))
        return real(*a, **kw)

    clarion.report.write_report = spy
    try:
        cfg = {**ANALYZE_CFG, "dataset_type": "text/csv"}
        clarion.analyze(cfg, csv, output_dir=os.path.join(tmp, "job"), progress=False)
    finally:
        clarion.report.write_report = real
    (_, analysis), kw = calls[0]
    path = os.path.join(tmp, "args.pkl")
    with open(path, "wb") as f:
        pickle.dump((analysis, kw), f)
    return path


def best(f, repeat: int) -> float:
    f()  # warm: imports, fonts, caches a job's second call finds
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return min(out)


def worker(args_path: str, repeat: int, out_dir: str) -> dict:
    """In the tree on ``sys.path``: the best of ``repeat`` calls of each part."""
    from clarion.report import html as rhtml
    from clarion.report import render_markdown, write_analysis_json, write_report
    from clarion.report.model import build_report
    from clarion.report.notebook import render_notebook
    from clarion.report.pdf import render_report_pdf

    with open(args_path, "rb") as f:
        analysis, kw = pickle.load(f)
    os.makedirs(out_dir, exist_ok=True)
    keep = ("title", "config", "local_shap", "feature_values", "notes")
    bkw = {k: kw[k] for k in keep if k in kw}
    title = kw.get("title") or "Analysis Report"
    md_of = getattr(rhtml, "render_report_markdown", None)  # this tree's write_report path (session 17)

    report = build_report(analysis, **bkw)
    # the same report with other numbers, once each (a pipeline's next report: nothing kept by
    # text, width or shape hits its numbers)
    fresh = [build_report(perturbed(analysis, 1 + 0.0137 * k), **bkw) for k in range(1, repeat + 1)]

    def md() -> None:  # as write_report renders it: this tree from the page's Report (session 17)
        if md_of is not None:
            md_of(analysis, report, title=title)
        else:
            render_markdown(analysis, title=title)

    return {
        "floor": best(lambda: write_analysis_json(os.path.join(out_dir, "analysis.json"), analysis), repeat),
        "write_report": best(lambda: write_report(out_dir, analysis, **kw), repeat),
        "html": best(
            lambda: rhtml.with_images(rhtml.render_report_html(build_report(analysis, **bkw)), analysis), repeat
        ),
        "md": best(md, repeat),
        "pdf": best(lambda: render_report_pdf(report), repeat),
        "pdf_fresh": best_fresh(render_report_pdf, fresh),
        "ipynb": best(lambda: render_notebook("analysis.json", title=report.title), repeat),
    }


def run_worker(pythonpath: str, args_path: str, repeat: int, out_dir: str) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", args_path, "--repeat", str(repeat), "--out", out_dir]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def base_tree(commit: str, tmp: str) -> str:
    """The base commit's ``python/`` (with this tree's compiled core beside it)."""
    dest = os.path.join(tmp, "base")
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "python"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    for so in glob.glob(os.path.join(ROOT, "python", "clarion", "_core*")):
        shutil.copy(so, os.path.join(dest, "python", "clarion"))
    return os.path.join(dest, "python")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the analysed CSV")
    ap.add_argument("--base", help="a commit whose write_report is timed beside this tree's")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.repeat, a.out)))
        return
    new_path = os.path.join(ROOT, "python")
    sys.path.insert(0, new_path)
    with tempfile.TemporaryDirectory() as tmp:
        args_path = capture(tmp, a.rows)
        trees = [("new", new_path)]
        if a.base:
            trees.insert(0, (f"base {a.base}", base_tree(a.base, tmp)))
        results: dict[str, dict] = {}
        for _ in range(a.rounds):
            for name, path in trees:  # alternating
                r = run_worker(path, args_path, a.repeat, os.path.join(tmp, "out", name.split()[0]))
                b = results.get(name)
                results[name] = r if b is None else {k: min(v, b[k]) for k, v in r.items()}
        for name, r in results.items():
            print(json.dumps({"tree": name, "rows": a.rows, **{f"{k}_ms": round(v * 1e3, 2) for k, v in r.items()}}))
        print()
        print(
            "| tree | floor (analysis.json) | write_report | ÷ floor | html | md | pdf | pdf, other numbers | ipynb |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in results.items():
            ms = {k: r[k] * 1e3 for k in PARTS}
            print(
                f"| {name} | {ms['floor']:.2f} ms | {ms['write_report']:.1f} ms | "
                f"{r['write_report'] / r['floor']:.1f} | {ms['html']:.1f} ms | {ms['md']:.1f} ms | "
                f"{ms['pdf']:.1f} ms | {ms['pdf_fresh']:.1f} ms | {ms['ipynb']:.2f} ms |"
            )
        if a.base:
            o, n = results[trees[0][0]], results["new"]
            print()
            print(
                f"write_report: {o['write_report'] / n['write_report']:.2f}x faster than {a.base}; "
                f"pdf {o['pdf'] / n['pdf']:.2f}x (other numbers: {o['pdf_fresh'] / n['pdf_fresh']:.2f}x)"
            )


if __name__ == "__main__":
    main()
