"""Trust fixes: an id joins captured traffic to its label at most once (repeats counted, never
joined twice), and a rerun of an image job removes only the heat maps its previous run wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import clarion
from clarion.capture import CaptureWriter, join

HEADERS = ["g", "a", "y"]


def _label(folder, eid: str, value: str) -> None:
    rec = {
        "groundTruthData": {"data": value, "encoding": "CSV", "observedContentType": "text/csv"},
        "eventMetadata": {"eventId": eid},
        "eventVersion": "0",
    }
    with open(folder / "labels.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")


def _stream(tmp_path, captures, labels):
    cap, gt = tmp_path / "cap", tmp_path / "gt"
    gt.mkdir()
    w = CaptureWriter(cap)
    for body, score, iid in captures:
        w.capture(body.encode(), "text/csv", score.encode(), "text/csv", inference_id=iid)
    w.close()
    for eid, value in labels:
        _label(gt, eid, value)
    return join(cap, gt, headers=HEADERS, probability=0)


def test_each_id_joins_once_and_repeats_are_counted(tmp_path):
    j = _stream(
        tmp_path,
        [
            ("1,0.5", "0.9", "a"),  # joins
            ("1,0.5", "0.9", "a"),  # the same request again (a retry): not joined twice
            ("0,1.5", "0.2", "b"),  # two different requests under one id: neither joins
            ("1,2.5", "0.7", "b"),
            ("0,3.5", "0.4", "c"),  # its label was uploaded twice, identically: joins once
            ("1,4.5", "0.6", "d"),  # its labels disagree: does not join
            ("0,5.5", "0.1", "e"),  # no label yet
        ],
        [("a", "1"), ("b", "0"), ("c", "0"), ("c", "0"), ("d", "1"), ("d", "0"), ("z", "1")],
    )
    assert j.frame["a"].tolist() == [0.5, 3.5]
    assert j.frame["y"].tolist() == [1, 0]
    assert j.frame["predicted_label"].tolist() == [0.9, 0.4]
    s = j.summary()
    assert (s["captures"], s["matched"], s["rows"]) == (7, 2, 2)
    assert (s["duplicate_captures"], s["ambiguous_captures"]) == (1, 3)
    assert (s["duplicate_labels"], s["conflicting_labels"]) == (1, 1)
    assert (s["unmatched_captures"], s["unmatched_labels"]) == (1, 1)
    # every capture is accounted for exactly once
    assert s["matched"] + s["duplicate_captures"] + s["ambiguous_captures"] + s["unmatched_captures"] == 7


def test_a_reused_id_does_not_count_its_label_twice(tmp_path):
    """Before: both captures joined the one label, so its row entered the bias metrics twice."""
    j = _stream(tmp_path, [("1,0.5", "0.9", "x"), ("1,0.5", "0.9", "x"), ("1,0.5", "0.9", "x")], [("x", "1")])
    assert len(j.frame) == 1 and j.duplicate_captures == 2


PIL = pytest.importorskip("PIL")
pytest.importorskip("skimage")


def _folder(tmp_path, n):
    from PIL import Image

    folder = tmp_path / f"imgs{n}"
    folder.mkdir()
    rng = np.random.default_rng(n)
    for i in range(n):
        Image.fromarray((rng.random((12, 12)) * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


IMAGE_CFG = {
    "dataset_type": "application/x-image",
    "methods": {
        "shap": {
            "num_samples": 50,
            "seed": 0,
            "image_config": {"model_type": "IMAGE_CLASSIFICATION", "num_segments": 4},
        }
    },
}


def _model(B):
    b = np.asarray(B, dtype=np.float64).reshape(len(B), -1).mean(axis=1) / 255
    return np.stack([1 - b, b], axis=1)


def test_rerun_removes_its_own_heat_maps_and_keeps_the_users(tmp_path):
    cfg = IMAGE_CFG
    out = tmp_path / "out"
    clarion.analyze(cfg, _folder(tmp_path, 2), model=_model, output_dir=out, progress=False)
    assert {"shap_p0.jpeg", "shap_p1.jpeg"} <= set(os.listdir(out))
    (out / "shap_mine.jpeg").write_bytes(b"the user's own picture")
    (out / "holiday_objects.jpeg").write_bytes(b"another")
    clarion.analyze(cfg, _folder(tmp_path, 1), model=_model, output_dir=out, progress=False, overwrite=True)
    names = set(os.listdir(out))
    assert "shap_p0.jpeg" in names  # written again
    assert "shap_p1.jpeg" not in names  # the previous run's, no longer produced
    assert (out / "shap_mine.jpeg").read_bytes() == b"the user's own picture"
    assert (out / "holiday_objects.jpeg").read_bytes() == b"another"


def test_a_hostile_previous_analysis_json_names_only_plain_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    keep = tmp_path / "keep.jpeg"
    keep.write_bytes(b"x")
    doc = {"explanations": {"image_shap": {"images": [{"heatmaps": [{"file": "../keep.jpeg"}, {"file": 3}]}, 7]}}}
    (out / "analysis.json").write_text(json.dumps(doc))
    cfg = IMAGE_CFG
    clarion.analyze(cfg, _folder(tmp_path, 1), model=_model, output_dir=out, progress=False, overwrite=True)
    assert keep.read_bytes() == b"x"


def test_monitor_windows_over_captured_traffic(tmp_path, capsys):
    """``clarion monitor --capture ... --time-column inference_time --window 1D``: each window's
    metrics are those of the rows captured that day, and the join's counts are in the report."""
    from datetime import datetime, timedelta, timezone

    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    from clarion.bias import report
    from clarion.cli import EXIT_ERROR, EXIT_OK, EXIT_VIOLATIONS, main

    model = LogisticRegression()
    model.coef_, model.intercept_ = np.array([[0.8, 2.0]]), np.array([0.0])
    model.classes_, model.n_features_in_ = np.array([0, 1]), 2
    dump(model, tmp_path / "model.skops")
    cfg = {
        "dataset_type": "text/csv",
        "headers": ["g", "a", "y"],
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": [1]}],
        "methods": {"pre_training_bias": {"methods": ["CI", "DPL"]}, "post_training_bias": {"methods": ["DPPL"]}},
        "predictor": {"model_uri": "model.skops", "probability": 1},
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    rng = np.random.default_rng(5)
    day0 = datetime(2026, 11, 1, 9, tzinfo=timezone.utc)
    cap, gt = tmp_path / "cap", tmp_path / "gt"
    gt.mkdir()
    w = CaptureWriter(cap)
    rows = []
    for k in range(150):
        g, a = int(rng.random() < 0.4), round(float(rng.normal()), 3)
        y = int(rng.random() < 0.3 + 0.3 * g)
        p = float(model.predict_proba([[g, a]])[0, 1])
        t = day0 + timedelta(days=k % 3, minutes=k)
        w.capture(
            f"{g},{a}".encode(), "text/csv", f"{1 - p!r},{p!r}".encode(), "text/csv", inference_id=f"r{k}", time=t
        )
        _label(gt, f"r{k}", str(y))
        rows.append({"g": g, "a": a, "y": y, "predicted_label": p, "day": k % 3})
    w.close()
    truth = pd.DataFrame(rows)
    base_rows = truth.drop(columns="day")
    base_cfg = {**cfg, "predicted_label": "predicted_label", "predictor": {"probability": 1}}
    del base_cfg["headers"]
    baseline = clarion.analyze(base_cfg, base_rows, output_dir=tmp_path / "baseline", progress=False)
    args = ["monitor", "--baseline", baseline.paths["analysis"], "--config", str(tmp_path / "config.json")]
    args += ["--capture", str(cap), "--ground-truth", str(gt), "--output", str(tmp_path / "out")]
    rc = main([*args, "--time-column", "inference_time", "--window", "1D"])
    assert rc in (EXIT_OK, EXIT_VIOLATIONS), capsys.readouterr().err
    out = tmp_path / "out"
    by_window = json.loads((out / "analysis_by_window.json").read_text())
    assert len(by_window) == 3
    for day, (_w, entry) in enumerate(sorted(by_window.items())):
        part = truth[truth["day"] == day]
        assert entry["n_rows"] == len(part)
        rep = report(part, label="y", facet="g", facet_values=[1], label_values=[1], predicted_label="predicted_label")
        want = dict(zip(rep.to_frame()["metric"], rep.to_frame()["value"]))
        doc = entry["analysis"]
        got = {m["name"]: m["value"] for m in doc["post_training_bias_metrics"]["facets"]["g"][0]["metrics"]}
        got.update({m["name"]: m["value"] for m in doc["pre_training_bias_metrics"]["facets"]["g"][0]["metrics"]})
        for m in ("CI", "DPL", "DPPL"):
            assert got[m] == pytest.approx(float(want[m]), rel=1e-12, abs=1e-15), (day, m)
    counts = json.loads((out / "capture_join.json").read_text())
    assert counts["matched"] == counts["rows"] == 150
    html = (out / "report.html").read_text()
    assert "Captured traffic joined with ground truth" in html and "rows checked" in html
    assert "rows checked" in (out / "report.md").read_text()
    # `clarion report` re-renders the folder with the join's counts, and refuses a malformed file
    from clarion.report.folder import render_file

    again = render_file(out / "analysis.json", tmp_path / "again.html")
    assert "Captured traffic joined with ground truth" in Path(again).read_text(encoding="utf-8")
    (out / "capture_join.json").write_text('{"captures": -1}')
    with pytest.raises(ValueError, match="capture_join"):
        render_file(out / "analysis.json", tmp_path / "bad.html")
    # the time column's name may not be one of the captured columns
    rc = main([*args[:-1], str(tmp_path / "out2"), "--time-column", "a", "--window", "1D"])
    assert rc == EXIT_ERROR and "time_column: 'a' is already a column" in capsys.readouterr().err


def test_report_rendered_elsewhere_links_the_heat_maps(tmp_path):
    """``clarion report OUT/analysis.json -o elsewhere/r.html``: the heat maps stay in OUT and are
    linked from where the report is (they were linked as if beside it, so they did not show)."""
    from clarion.cli import EXIT_OK, main

    cfg = IMAGE_CFG
    out = tmp_path / "run" / "out"
    clarion.analyze(cfg, _folder(tmp_path, 1), model=_model, output_dir=out, progress=False)
    assert "src='shap_p0.jpeg'" in (out / "report.html").read_text()
    elsewhere = tmp_path / "site" / "pages"
    elsewhere.mkdir(parents=True)
    for name in ("r.html", "r.md"):
        assert main(["report", str(out / "analysis.json"), "-o", str(elsewhere / name)]) == EXIT_OK
    html = (elsewhere / "r.html").read_text()
    assert "src='../../run/out/shap_p0.jpeg'" in html
    assert (elsewhere / "../../run/out/shap_p0.jpeg").resolve().exists()
    assert "(../../run/out/shap_p0.jpeg)" in (elsewhere / "r.md").read_text()
    # beside analysis.json: plain names, as the job writes them
    assert main(["report", str(out / "analysis.json"), "-o", str(out / "again.html")]) == EXIT_OK
    assert "src='shap_p0.jpeg'" in (out / "again.html").read_text()


def test_timeout_and_retries_with_a_local_model_are_refused(tmp_path, capsys):
    """They only bound endpoint requests; with a local model they used to be ignored silently."""
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    from clarion.cli import EXIT_ERROR, main

    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    dump(model, tmp_path / "m.skops")
    (tmp_path / "d.csv").write_text("x,g,y\n" + "".join(f"{i % 4},{i % 2},{int(i % 4 > 1)}\n" for i in range(20)))
    cfg = {
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": [1]}],
        "methods": {"post_training_bias": {"methods": ["DPPL"]}},
        "predictor": {"model_uri": "m.skops", "probability": 1},
    }
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    base = ["analyze", "--config", str(tmp_path / "c.json"), "--data", str(tmp_path / "d.csv"), "--quiet"]
    for flags in (["--timeout", "5"], ["--retries", "2"], ["--model", str(tmp_path / "m.skops"), "--timeout", "5"]):
        rc = main([*base, "--output", str(tmp_path / "o"), *flags])
        err = capsys.readouterr().err
        assert rc == EXIT_ERROR and "--timeout and --retries apply to an endpoint" in err, err
        assert "Traceback" not in err and not (tmp_path / "o").exists()
