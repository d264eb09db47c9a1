"""The report files of a job: ``clarion.report.write_report`` (HTML, Markdown, PDF, notebook) and
``render_report_pdf`` alone, this tree against a base commit's renderer, measured in the same run.

Cases (each written once into a temporary folder, then rendered by both trees):

* ``bias``: ``clarion analyze`` bias only on ``bench_linerate``'s frame (two facets, a group
  variable, pre- and post-training metrics; no intervals, the job's default): 40 metric charts;
* ``shap``: the demo fixture (``tests/data/report_demo``): Kernel SHAP bars, local SHAP strip
  plot, PDP charts, threshold curves, bias tables with intervals;
* ``drift``: a ``clarion monitor`` output, the drift section's tables in the PDF;
* ``images``: an image job's heat maps drawn into the PDF.

The base renderer is the base commit's ``python/`` (``git archive``), imported in a subprocess with
that ``PYTHONPATH`` (the compiled core copied beside it); old and new alternate round by round and
each takes its best of ``--repeat`` calls per round, the best round kept (the machine is shared).

    python benchmarks/bench_report.py --base efa2140 --rounds 5 --repeat 5
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CASES = ("bias", "shap", "drift", "images")


def make_cases(tmp: str, rows: int) -> dict[str, str]:
    """Write every case's inputs under ``tmp``; returns case -> folder."""
    import numpy as np
    import pandas as pd

    import clarion
    from clarion.cli import main
    from clarion.report.image import encode_image

    sys.path.insert(0, HERE)
    from bench_linerate import ANALYZE_CFG, analyze_frame

    os.makedirs(tmp, exist_ok=True)
    out = {}
    d = os.path.join(tmp, "bias")
    cfg = {**ANALYZE_CFG, "dataset_type": "text/csv"}
    csv = os.path.join(tmp, "bias.csv")
    analyze_frame(rows).to_csv(csv, index=False)
    clarion.analyze(cfg, csv, output_dir=d, progress=False)
    out["bias"] = d

    d = os.path.join(tmp, "shap")
    shutil.copytree(os.path.join(ROOT, "tests", "data", "report_demo"), d)
    out["shap"] = d

    rng = np.random.default_rng(0)

    def block(shift: float, n: int = 2000) -> pd.DataFrame:
        sex = rng.choice(["F", "M"], n)
        y = (rng.random(n) < 0.5).astype(int)
        pred = np.where((sex == "F") & (rng.random(n) < shift), 0, (rng.random(n) < 0.5).astype(int))
        return pd.DataFrame({"sex": sex, "y": y, "pred": pred})

    mcfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "predicted_label": "pred",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": ["F"]}],
        "methods": {"post_training_bias": {"methods": ["DPPL", "DI", "DCA", "RD"]}},
    }
    with open(os.path.join(tmp, "mcfg.json"), "w") as f:
        json.dump(mcfg, f)
    clarion.analyze(mcfg, block(0.0), output_dir=os.path.join(tmp, "mbase"), progress=False)
    block(0.8).to_csv(os.path.join(tmp, "new.csv"), index=False)
    d = os.path.join(tmp, "drift")
    args = ["monitor", "--baseline", os.path.join(tmp, "mbase", "analysis.json"), "--data"]
    main([*args, os.path.join(tmp, "new.csv"), "--config", os.path.join(tmp, "mcfg.json"), "--output", d, "--quiet"])
    out["drift"] = d

    d = os.path.join(tmp, "images")
    os.makedirs(d)
    images = []
    for i in range(6):
        name = f"shap_{i}.jpeg"
        with open(os.path.join(d, name), "wb") as f:
            f.write(encode_image(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)))
        images.append(
            {
                "image": f"img{i}.png",
                "heatmaps": [{"label": "cat", "prediction": 0.75, "expected_value": 0.5, "file": name}],
            }
        )
    doc = {"version": "1.0", "explanations": {"image_shap": {"model_type": "IMAGE_CLASSIFICATION", "images": images}}}
    with open(os.path.join(d, "analysis.json"), "w") as f:
        json.dump(doc, f)
    out["images"] = d
    return out


def case_inputs(folder: str) -> dict:
    """``write_report``'s arguments for a case folder, as ``clarion report`` reads them."""
    import pandas as pd

    with open(os.path.join(folder, "analysis.json")) as f:
        doc = json.load(f)
    kw: dict = {}
    cfg = os.path.join(folder, "analysis_config.json")
    if os.path.exists(cfg):
        with open(cfg) as f:
            kw["config"] = json.load(f)
    local = os.path.join(folder, "explanations_shap", "out.csv")
    if os.path.exists(local):
        kw["local_shap"] = pd.read_csv(local)
    md = os.path.join(folder, "report.md")
    if os.path.exists(md):
        with open(md) as f:
            text = f.read()
        at = text.find("## Drift against the baseline")
        if at >= 0:  # the drift section clarion monitor wrote with the report
            kw["md_section"] = text[at:]
    return {"analysis": doc, **kw}


def worker(folder: str, repeat: int, out_dir: str) -> dict:
    """In the tree on ``sys.path``: best of ``repeat`` write_report and render_report_pdf calls."""
    from clarion.report import write_report
    from clarion.report.image import image_sections
    from clarion.report.model import build_report, markdown_section
    from clarion.report.pdf import render_report_pdf

    inp = case_inputs(folder)
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(folder):  # heat maps stay beside the report
        if name.endswith(".jpeg"):
            shutil.copy(os.path.join(folder, name), out_dir)
    doc = inp.pop("analysis")
    t_write, t_pdf = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        write_report(out_dir, doc, **inp)
        t_write.append(time.perf_counter() - t0)
        report = build_report(doc, config=inp.get("config"), local_shap=inp.get("local_shap"))
        images = image_sections(doc, out_dir)
        if images is not None:
            report.sections.append(images)
        drift = markdown_section(inp.get("md_section"))
        if drift is not None:
            report.sections.append(drift)
        t0 = time.perf_counter()
        render_report_pdf(report)
        t_pdf.append(time.perf_counter() - t0)
    return {"write_report_s": min(t_write), "pdf_s": min(t_pdf)}


def run_worker(pythonpath: str, folder: str, repeat: int, out_dir: str) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", folder, "--repeat", str(repeat), "--out", out_dir]
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
    ap.add_argument("--base", default="efa2140", help="the commit whose renderer is the reference")
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the bias case's CSV")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--keep", help="copy the PDFs of both trees here (to compare them)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.repeat, a.out)))
        return
    new_path = os.path.join(ROOT, "python")
    sys.path.insert(0, new_path)
    with tempfile.TemporaryDirectory() as tmp:
        old_path = base_tree(a.base, tmp)
        folders = make_cases(os.path.join(tmp, "cases"), a.rows)
        rows = []
        for case in a.cases.split(","):
            best = {"old": None, "new": None}
            for _ in range(a.rounds):
                for tree, path in (("old", old_path), ("new", new_path)):  # alternating
                    r = run_worker(path, folders[case], a.repeat, os.path.join(tmp, "out", tree, case))
                    b = best[tree]
                    best[tree] = r if b is None else {k: min(v, b[k]) for k, v in r.items()}
            if a.keep:
                for tree in ("old", "new"):
                    os.makedirs(a.keep, exist_ok=True)
                    shutil.copy(
                        os.path.join(tmp, "out", tree, case, "report.pdf"), os.path.join(a.keep, f"{case}_{tree}.pdf")
                    )
            o, n = best["old"], best["new"]
            rows.append((case, o, n))
            print(
                json.dumps(
                    {
                        "case": case,
                        "write_report_old_ms": round(o["write_report_s"] * 1e3, 1),
                        "write_report_new_ms": round(n["write_report_s"] * 1e3, 1),
                        "write_report_speedup": round(o["write_report_s"] / n["write_report_s"], 2),
                        "pdf_old_ms": round(o["pdf_s"] * 1e3, 1),
                        "pdf_new_ms": round(n["pdf_s"] * 1e3, 1),
                        "pdf_speedup": round(o["pdf_s"] / n["pdf_s"], 2),
                    }
                ),
                flush=True,
            )
        print()
        print("| case | write_report old | write_report new | × | PDF alone old | PDF alone new | × |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for case, o, n in rows:
            print(
                f"| {case} | {o['write_report_s'] * 1e3:.1f} ms | {n['write_report_s'] * 1e3:.1f} ms | "
                f"{o['write_report_s'] / n['write_report_s']:.2f} | {o['pdf_s'] * 1e3:.1f} ms | "
                f"{n['pdf_s'] * 1e3:.1f} ms | {o['pdf_s'] / n['pdf_s']:.2f} |"
            )


if __name__ == "__main__":
    main()
