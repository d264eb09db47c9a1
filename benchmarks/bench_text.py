"""Benchmark text Kernel SHAP (clarion.explain.text): is masking small next to the model call?

For documents of ``--tokens`` tokens (spaCy token units, English), one record's whole coalition
plan (``S = 2 M + 2048`` coalitions, M = tokens) is turned into synthetic texts (the masking step,
K = 1 background row, mask ``[MASK]``) and the same texts are scored by three models:

* ``dict``: a hand-written bag-of-words scorer (``str.split`` + a dict lookup per word) — the
  cheapest model a text could have (a floor, not a realistic model);
* ``tfidf-logreg``: scikit-learn ``TfidfVectorizer`` + ``LogisticRegression`` fitted on 2,000
  generated documents (a realistic small text classifier);
* ``count-linear``: ``CountVectorizer`` + ``LinearRegression``.

Reported per document size: masking seconds per record, model seconds on the same synthetic texts,
and their ratio (masking / model; < 1 means the model is the cost); plus segmentation (spaCy) per
record, the coalition plan + WLS operator (built once per distinct number of players M, then
cached), and a whole ``TextShap.explain`` of one record (plan cached) against the bare model call
on the same number of rows. All in one run, best of ``--repeat``.

    python benchmarks/bench_text.py
    python benchmarks/bench_text.py --tokens 128 512 --repeat 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from clarion.explain import text as tx

VOCAB = (
    "good great bad awful movie plot acting cast fine boring slow fast story director music scene "
    "the a and of to is was it in that this with for but not very really quite"
).split()


def best(fn, repeat):
    t = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    weights = {w: float(rng.normal()) for w in VOCAB}
    train = [" ".join(rng.choice(VOCAB, size=rng.integers(20, 200))) for _ in range(2000)]
    score = np.array([sum(weights[w] for w in d.split()) for d in train])
    tfidf = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=200)).fit(train, score > np.median(score))
    count = make_pipeline(CountVectorizer(), LinearRegression()).fit(train, score)

    def dict_model(texts):
        return np.array([sum(weights.get(w, 0.0) for w in t.split()) for t in texts])

    models = {
        "dict": dict_model,
        "tfidf-logreg": lambda t: tfidf.predict_proba(t)[:, 1],
        "count-linear": count.predict,
    }
    rows = []
    for n_tok in args.tokens:
        doc = " ".join(rng.choice(VOCAB, size=n_tok))
        t_seg, spans = best(lambda: tx.segment(doc, "token", "english"), args.repeat)
        M = len(spans)
        rec = tx._Record([doc], [spans])
        ts = tx.TextShap(dict_model, "[MASK]", seed=0)
        t0 = time.perf_counter()
        Z, _, _, _ = ts._plan(M)  # once per distinct number of players, then cached
        t_plan = time.perf_counter() - t0
        B = np.array([["[MASK]"]], dtype=object)
        x = np.array([doc], dtype=object)
        t_mask, synth = best(lambda: ts._synthetic(rec, x, Z, B, [0], []), args.repeat)
        texts = list(synth[:, 0])
        for name, model in models.items():
            t_model, _ = best(lambda m=model: m(texts), args.repeat)
            warm = tx.TextShap(model, "[MASK]", seed=0)
            warm._plans[M] = ts._plan(M)  # the plan of this M is already built (see plan_s)
            t_explain, _ = best(lambda w=warm: w.explain([doc]), args.repeat)
            t_bare, _ = best(lambda m=model: m(texts + [doc, doc]), args.repeat)
            rows.append(
                {
                    "tokens": M,
                    "coalitions": int(Z.shape[0]) - 2,  # the plan, without all-absent and all-present
                    "model": name,
                    "segment_s": t_seg,
                    "plan_s": t_plan,
                    "mask_s": t_mask,
                    "model_s": t_model,
                    "mask_over_model": t_mask / t_model,
                    "explain_s": t_explain,
                    "bare_model_s": t_bare,
                    "explain_over_model": t_explain / t_bare,
                }
            )
    info = {"python": platform.python_version(), "machine": platform.machine(), "rows": rows}
    print(
        "| tokens | coalitions | model | plan + operator (once per M) | segment / record | masking / record "
        "| model on the same texts | masking / model | TextShap.explain / bare model |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['tokens']} | {r['coalitions']:,} | {r['model']} | {r['plan_s']:.2f} s "
            f"| {r['segment_s'] * 1e3:.1f} ms "
            f"| {r['mask_s'] * 1e3:.1f} ms | {r['model_s'] * 1e3:.1f} ms | {r['mask_over_model']:.2f} "
            f"| {r['explain_over_model']:.2f}× |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
