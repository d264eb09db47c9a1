"""Text Kernel SHAP (clarion.explain.text, methods.shap.text_config): segmentation, Clarify's
languages, the closed form of additive (bag-of-words) models in exact and sampled mode, a brute-force
Shapley oracle for a non-additive model, mixed text + tabular records, the config section, the job's
Clarify-shaped outputs and report, and text through a real jsonlines endpoint."""

from __future__ import annotations

import itertools
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("spacy")

from clarion.config import AnalysisConfig, ConfigError
from clarion.explain.text import (
    CLARIFY_LANGUAGES,
    GRANULARITIES,
    TextShap,
    language_code,
    segment,
)

#: Clarify's analysis-config language names (SageMaker developer guide, text_config.language)
CLARIFY_NAMES = (
    "chinese danish dutch english french german greek italian japanese lithuanian multi-language "
    "polish portuguese romanian russian spanish afrikaans albanian arabic armenian basque bengali "
    "bulgarian catalan croatian czech estonian finnish gujarati hebrew hindi hungarian icelandic "
    "indonesian irish kannada kyrgyz latvian ligurian luxembourgish macedonian malayalam marathi nepali "
    "persian sanskrit serbian setswana sinhala slovak slovenian swedish tagalog tamil tatar telugu thai "
    "turkish ukrainian urdu vietnamese yoruba"
).split() + ["norwegian bokmål"]
#: Clarify's API (ClarifyTextConfig.Language) codes
CLARIFY_CODES = (
    "af sq ar hy eu bn bg ca zh hr cs da nl en et fi fr de el gu he hi hu is id ga it kn ky lv lt lb mk "
    "ml mr ne nb fa pl pt ro ru sa sr tn si sk sl es sv tl ta tt te tr uk ur yo lij xx"
).split()

WEIGHTS = {"good": 2.0, "great": 1.25, "bad": -1.5, "awful": -2.5, "not": -0.5, "[MASK]": 0.3}


def additive(texts) -> np.ndarray:
    """A hand-written bag-of-words scorer: the sum of the weights of the space-separated words."""
    return np.array([sum(WEIGHTS.get(w, 0.0) for w in str(t).split()) for t in np.asarray(texts, dtype=object)])


def closed_form(units: list[str], mask: str) -> np.ndarray:
    """Shapley values of an additive model: each unit's contribution minus the mask's."""
    m = sum(WEIGHTS.get(w, 0.0) for w in mask.split())
    return np.array([sum(WEIGHTS.get(w, 0.0) for w in u.split()) - m for u in units])


def brute_force(v, M: int) -> np.ndarray:
    """Exact Shapley values by enumerating every coalition (the oracle)."""
    phi = np.zeros(M)
    for j in range(M):
        others = [i for i in range(M) if i != j]
        for r in range(M):
            for S in itertools.combinations(others, r):
                w = math.factorial(r) * math.factorial(M - r - 1) / math.factorial(M)
                z = np.zeros(M, bool)
                z[list(S)] = True
                z1 = z.copy()
                z1[j] = True
                phi[j] += w * (v(z1) - v(z))
    return phi


# -- segmentation and languages ------------------------------------------------------------------
def test_token_sentence_paragraph_spans():
    text = "Good  movie. Not bad!\n\n  Second para here.\nSame para."
    tok = segment(text, "token", "english")
    assert [text[a:b] for a, b in tok] == [
        "Good", "movie", ".", "Not", "bad", "!", "Second", "para", "here", ".", "Same", "para", ".",
    ]  # fmt: skip
    sents = [text[a:b] for a, b in segment(text, "sentence", "en")]
    assert sents == ["Good  movie.", "Not bad!", "Second para here.", "Same para."]
    paras = [text[a:b] for a, b in segment(text, "paragraph", "english")]
    assert paras == ["Good  movie. Not bad!", "Second para here.\nSame para."]
    assert segment("", "token") == [] and segment("   \n\n ", "paragraph") == []


def test_every_clarify_language_maps_and_unknown_is_refused():
    assert sorted(CLARIFY_LANGUAGES) == sorted(CLARIFY_NAMES)
    # the analysis config also names three languages the API's code list lacks
    assert set(CLARIFY_LANGUAGES.values()) == set(CLARIFY_CODES) | {"ja", "th", "vi"}
    for code in CLARIFY_CODES:
        assert language_code(code) == code
    assert language_code("English") == "en" and language_code("multi-language") == "xx"
    with pytest.raises(ValueError, match="did you mean 'english'"):
        language_code("englsh")
    with pytest.raises(ValueError, match="granularity must be one of"):
        segment("a b", "word")
    assert GRANULARITIES == ("token", "sentence", "paragraph")


@pytest.mark.parametrize(
    ("lang", "text", "n"),
    [("german", "Das ist gut.", 4), ("spanish", "¿Qué tal? Muy bien.", 7), ("xx", "hello мир", 2), ("vi", "Tôi ổn", 2)],
)
def test_segmentation_in_other_languages(lang, text, n):
    assert len(segment(text, "token", lang)) == n


def test_chinese_tokens_are_characters_without_a_download():
    assert [t for t in ("好电影".__getitem__(slice(a, b)) for a, b in segment("好电影", "token", "chinese"))] == [
        "好",
        "电",
        "影",
    ]


# -- exactness -----------------------------------------------------------------------------------
TEXTS = ["the good movie was great", "bad awful bad not good", "good", "", "great great not bad movie ok"]


@pytest.mark.parametrize("mask", ["", "[MASK]"])
def test_exact_mode_equals_closed_form_of_additive_model(mask):
    e = TextShap(additive, mask or None, seed=5).explain(TEXTS)
    for t, v, pl, base, exact in zip(TEXTS, e.values, e.players, e.expected_value, e.exact):
        units = [p["text"] for p in pl]
        assert units == t.split()
        assert v.shape == (len(units), 1)
        np.testing.assert_allclose(v[:, 0], closed_form(units, mask), rtol=0, atol=1e-10)
        assert exact
        # base value: every unit masked
        assert base[0] == pytest.approx(additive([" ".join([mask] * len(units))])[0], abs=1e-12)
        assert v.sum() + base[0] == pytest.approx(additive([t])[0], abs=1e-10)


def test_sampled_mode_on_long_text_equals_closed_form():
    rng = np.random.default_rng(0)
    words = np.array([w for w in WEIGHTS if w != "[MASK]"] + ["movie", "plot", "the"])
    texts = [" ".join(rng.choice(words, size=n)) for n in (14, 18, 18, 25)]
    ts = TextShap(additive, "[MASK]", num_samples=300, seed=2)
    e = ts.explain(texts)
    assert not any(e.exact)
    for t, v in zip(texts, e.values):
        np.testing.assert_allclose(v[:, 0], closed_form(t.split(), "[MASK]"), rtol=0, atol=1e-9)
    assert sorted(ts._plans) == [14, 18, 25]  # one plan + operator per distinct number of players
    # a budget below the three plans: least recently used plans are evicted, values unchanged
    small = TextShap(additive, "[MASK]", num_samples=300, seed=2, memory_budget="140KiB")
    e2 = small.explain(texts)
    assert list(small._plans) == [18, 25]  # 14 was evicted
    for a, b in zip(e.values, e2.values):
        np.testing.assert_array_equal(a, b)


def _nonadditive(texts) -> np.ndarray:
    s = additive(texts)
    return 1 / (1 + np.exp(-s)) + 0.1 * (np.array(["not" in str(t).split() for t in texts]) * s) ** 2


def test_nonadditive_exact_mode_matches_brute_force_and_sampled_converges():
    text = "good not bad great movie awful not good the film"
    words = text.split()
    M = len(words)

    def v(z):
        return _nonadditive([" ".join(w if keep else "[MASK]" for w, keep in zip(words, z))])[0]

    oracle = brute_force(v, M)
    exact = TextShap(_nonadditive, "[MASK]", seed=1).explain([text])
    assert exact.exact == [True]
    np.testing.assert_allclose(exact.values[0][:, 0], oracle, rtol=0, atol=1e-10)
    errs = []
    for ns in (60, 240, 960):
        e = TextShap(_nonadditive, "[MASK]", num_samples=ns, seed=3).explain([text])
        errs.append(float(np.linalg.norm(e.values[0][:, 0] - oracle)))
        assert e.values[0][:, 0].sum() == pytest.approx(oracle.sum(), abs=1e-10)  # efficiency holds
    assert errs[2] < errs[0] and errs[2] < 0.05 * np.linalg.norm(oracle)


def test_scikit_learn_bag_of_words_on_text_the_test_writes():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(4)
    vocab = ["good", "great", "bad", "awful", "plot", "acting", "fine", "boring"]
    coef = dict(zip(vocab, rng.normal(size=len(vocab))))
    docs = [" ".join(rng.choice(vocab, size=rng.integers(3, 9))) for _ in range(300)]
    y = np.array([sum(coef[w] for w in d.split()) for d in docs])
    pipe = make_pipeline(CountVectorizer(), LinearRegression()).fit(docs, y)
    lr = pipe[-1]
    w = dict(zip(pipe[0].get_feature_names_out(), lr.coef_))
    texts = ["good plot but boring acting", "awful awful fine", "great"]
    e = TextShap(pipe.predict, None, seed=0).explain(texts)
    for t, v in zip(texts, e.values):
        np.testing.assert_allclose(v[:, 0], [w.get(u, 0.0) for u in t.split()], rtol=0, atol=1e-10)
        assert v.sum() + e.expected_value[0, 0] == pytest.approx(pipe.predict([t])[0], abs=1e-10)


def test_mixed_text_and_tabular_record():
    def model(X: pd.DataFrame) -> np.ndarray:
        return additive(X["review"]) + 0.5 * X["rating"].to_numpy() - 2.0 * (X["genre"] == "drama").to_numpy()

    X = pd.DataFrame({"rating": [4.0, 1.0], "review": ["good movie", "bad not great"], "genre": ["drama", "comedy"]})
    bg = pd.DataFrame({"rating": [3.0, 2.0], "review": ["[MASK]", ""], "genre": ["comedy", "drama"]})
    assert TextShap(model, bg).explain(X.iloc[:1]).text_features == ["review", "genre"]  # default: strings
    e = TextShap(model, bg, text_features=["review"], seed=0).explain(X)
    assert e.text_features == ["review"]
    for n in range(2):
        pl, v = e.players[n], e.values[n][:, 0]
        units = [p["text"] for p in pl if p["type"] == "text"]
        masked = np.mean([closed_form(units, m) for m in ("[MASK]", "")], axis=0)  # uniform background
        np.testing.assert_allclose(v[: len(units)], masked, atol=1e-10)
        assert [p["feature"] for p in pl[len(units) :]] == ["rating", "genre"]
        assert v[len(units)] == pytest.approx(0.5 * (X["rating"][n] - 2.5), abs=1e-10)
        assert v[len(units) + 1] == pytest.approx(-2.0 * ((X["genre"][n] == "drama") - 0.5), abs=1e-10)
    fv = e.feature_values()
    assert fv.shape == (2, 3, 1)
    rec = e.to_records()[0]["explanations"]
    assert [f["feature_header"] for f in rec] == ["rating", "review", "genre"]
    assert [f["feature_type"] for f in rec] == ["numerical", "text", "categorical"]
    assert rec[1]["attributions"][1]["description"] == {"partial_text": "movie", "start_idx": 5}


def test_multi_output_logit_link_and_determinism():
    def proba(texts):
        s = additive(texts)
        p = 1 / (1 + np.exp(-s))
        return np.stack([1 - p, p], axis=1)

    texts = ["good not bad", "awful great movie the end"]
    a = TextShap(proba, "", link="logit", num_samples=20, seed=9).explain(texts)
    b = TextShap(proba, "", link="logit", num_samples=20, seed=9).explain(texts)
    for va, vb, t, base in zip(a.values, b.values, texts, a.expected_value):
        assert va.shape[1] == 2
        np.testing.assert_array_equal(va, vb)
        p = proba([t])[0]
        np.testing.assert_allclose(va.sum(axis=0) + base, np.log(p / (1 - p)), atol=1e-10)
    # logit of an additive score: the closed form holds in log-odds for the positive class
    np.testing.assert_allclose(a.values[0][:, 1], closed_form(texts[0].split(), ""), atol=1e-9)


def test_top_units_and_edge_cases():
    e = TextShap(additive, "", seed=0).explain(["good bad", "good", "bad bad movie", ""])
    top = e.top_units("mean_abs", max_top=2)["text"][0]
    assert top == {"good": 2.0, "bad": 1.5} or list(top) == ["good", "bad"]
    assert e.values[3].shape == (0, 1)  # no units: no players
    assert e.values[1][0, 0] == pytest.approx(2.0)  # one player: v(1) - v(0)
    assert top["good"] == pytest.approx(2.0) and top["bad"] == pytest.approx(1.5)
    med = e.top_units("median")["text"][0]
    assert med["bad"] == pytest.approx(-1.5) and med["movie"] == pytest.approx(0.0)


def test_bad_input_errors_name_the_argument():
    ts = TextShap(additive, "", seed=0)
    with pytest.raises(ValueError, match=r"column 'review', row 1: expected text, got nan"):
        TextShap(lambda X: additive(X["review"]), None, seed=0).explain(pd.DataFrame({"review": ["a", np.nan]}))
    with pytest.raises(ValueError, match="baseline: required when the data has features other than text"):
        TextShap(lambda X: np.zeros(len(X)), None).explain(pd.DataFrame({"r": [1.0], "t": ["a b"]}))
    with pytest.raises(ValueError, match="text_features: unknown column 'txt'"):
        TextShap(additive, "", text_features=["txt"]).explain(pd.DataFrame({"text": ["a"]}))
    with pytest.raises(ValueError, match="unknown language"):
        TextShap(additive, "", language="klingon")
    with pytest.raises(ValueError, match="model returned 1 rows"):
        TextShap(lambda X: np.zeros(1), "").explain(["a b c"])
    assert len(ts.explain([])) == 0
    with pytest.raises(ValueError, match=r"record 1: 300 players .* over memory_budget .* coarser granularity"):
        TextShap(additive, "", memory_budget="4MiB").explain(["short text", " ".join(["w"] * 300)])


def test_too_few_coalitions_warn():
    from clarion.explain import ShapConditioningWarning

    with pytest.warns(ShapConditioningWarning, match="records with 6 players"):
        e = TextShap(additive, "", num_samples=2, seed=0).explain(["a b c d e f"])
    assert e.values[0].sum() == pytest.approx(0.0, abs=1e-12)  # efficiency still holds


# -- config --------------------------------------------------------------------------------------
def _cfg(shap: dict) -> dict:
    return {"dataset_type": "text/csv", "headers": ["y", "t"], "label": "y", "methods": {"shap": shap}}


def test_text_config_section():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not supported, ignored" warning any more
        c = AnalysisConfig.from_dict(_cfg({"text_config": {"granularity": "sentence", "language": "german"}}))
    tc = c.shap.text_config
    assert (tc.granularity, tc.language, tc.max_top_tokens) == ("sentence", "german", 50)
    d = c.to_dict()["methods"]["shap"]["text_config"]
    assert d == {"granularity": "sentence", "language": "german"}
    assert AnalysisConfig.from_dict(c.to_dict()).shap.text_config == tc
    for bad, msg in [
        ({"language": "english"}, r"text_config.granularity: required"),
        ({"granularity": "word", "language": "english"}, r"text_config.granularity: must be one of"),
        ({"granularity": "token", "language": "englsh"}, r"did you mean 'english'"),
        ({"granularity": "token", "language": "en", "max_top_tokens": 0}, r"max_top_tokens"),
        ({"granularity": "token", "language": "en", "lang": 1}, r"text_config.lang: unknown key"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            AnalysisConfig.from_dict(_cfg({"text_config": bad}))
    with pytest.raises(ConfigError, match="features_to_explain cannot be combined with text_config"):
        AnalysisConfig.from_dict(
            _cfg({"text_config": {"granularity": "token", "language": "en"}, "features_to_explain": ["t"]})
        )


# -- the job -------------------------------------------------------------------------------------
def test_analyze_mixed_text_and_tabular_writes_clarify_outputs(tmp_path):
    from clarion.job import analyze

    data = pd.DataFrame(
        {
            "label": [1, 0, 1, 0],
            "rating": [5.0, 1.0, 4.0, 2.0],
            "review": [np.nan, "good <b>great</b>", "bad awful", "good not bad"],
        }
    )
    data.to_csv(tmp_path / "d.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "label",
        "methods": {
            "shap": {
                "text_config": {"granularity": "token", "language": "english", "max_top_tokens": 3},
                "baseline": [[3.0, "[MASK]"]],
                "agg_method": "mean_abs",
            },
            "pdp": {"top_k_features": 2},  # text columns are never picked for partial dependence
        },
    }
    (tmp_path / "c.json").write_text(json.dumps(cfg))

    def model(X):
        X = np.asarray(X, dtype=object)
        if not all(isinstance(t, str) for t in X[:, 1]):  # a text model: strings only
            raise TypeError("review must be text")
        return additive(X[:, 1]) + 0.5 * X[:, 0].astype(float)

    res = analyze(
        str(tmp_path / "c.json"), str(tmp_path / "d.csv"), model=model, output_dir=str(tmp_path / "o"), progress=False
    )
    block = res.analysis["explanations"]["kernel_shap"]["label0"]
    assert [e["feature_name"] for e in res.analysis["explanations"]["pdp"]] == ["rating"]
    lines = [json.loads(x) for x in (tmp_path / "o" / "explanations_shap" / "out.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    rec = lines[3]["explanations"]
    assert [f["feature_header"] for f in rec] == ["rating", "review"]
    units = [a["description"]["partial_text"] for a in rec[1]["attributions"]]
    assert units == ["good", "not", "bad"]
    got = [a["attribution"][0] for a in rec[1]["attributions"]]
    np.testing.assert_allclose(got, closed_form(units, "[MASK]"), atol=1e-10)
    assert rec[0]["attributions"][0]["attribution"][0] == pytest.approx(0.5 * (2.0 - 3.0))
    assert lines[0]["explanations"][1]["attributions"] == []  # an empty cell (first row) is the empty text
    # global values: mean |per-record total| per column; top units by mean |value| over occurrences
    totals = np.array([[sum(a["attribution"][0] for a in f["attributions"]) for f in r["explanations"]] for r in lines])
    assert block["global_shap_values"] == pytest.approx(dict(zip(["rating", "review"], np.abs(totals).mean(axis=0))))
    top = block["global_top_shap_text"]["review"]
    assert list(top) == ["awful", "bad", "good"] and top["good"] == pytest.approx(2.0 - 0.3)
    assert block["expected_value"] == pytest.approx(np.mean(list(_bases(lines, data["review"], model))))
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Text explanations" in html and "<mark" in html
    # data is escaped (a unit "<" is "&lt;"); the report's own markup may use <b>, the data's may not
    assert "<b>great" not in html and "&lt;</mark>" in html
    assert "Top units" in (tmp_path / "o" / "report.md").read_text()
    from clarion.report import render_html

    again = render_html(res.analysis)  # clarion report re-renders the top units from analysis.json alone
    assert "Top units — review, label0" in again and html.count("Top units") == again.count("Top units") == 1


def _bases(lines, texts, model):
    """The per-record base value v(0): every unit of the text replaced by the mask where it stands
    (the text between units kept) and rating from the baseline."""
    for r, text in zip(lines, texts):
        text = "" if not isinstance(text, str) else text
        out, pos = [], 0
        for a in r["explanations"][1]["attributions"]:
            d = a["description"]
            out += [text[pos : d["start_idx"]], "[MASK]"]
            pos = d["start_idx"] + len(d["partial_text"])
        yield model(np.array([[3.0, "".join(out) + text[pos:]]], dtype=object))[0]


# -- an endpoint -------------------------------------------------------------------------------------
def test_text_through_a_jsonlines_endpoint(tmp_path):
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    from clarion.job import analyze
    from clarion.models import Endpoint
    from clarion.serve import ModelServer

    def model(X):
        X = np.asarray(X, dtype=object)
        return additive(X[:, 1]) + X[:, 0].astype(float)

    X = pd.DataFrame({"rating": [1.5, 2.5], "review": ['good "quoted" movie', "ünïcode bad great"]})
    bg = pd.DataFrame({"rating": [0.5], "review": [""]})
    local = TextShap(model, bg, seed=0).explain(X)
    with ModelServer(model, features="features") as url:
        with Endpoint(
            url,
            content_type="application/jsonlines",
            content_template='{"features":$features}',
            accept_type="application/jsonlines",
            probability="scores[0]",
            max_batch_rows=64,
        ) as ep:
            remote = TextShap(ep, bg, seed=0).explain(X)
            # the same through the job: a Clarify config whose predictor is the jsonlines endpoint
            d = tmp_path / "job"
            d.mkdir()
            X.assign(label=[0, 1]).to_csv(d / "d.csv", index=False)
            cfg = {
                "dataset_type": "text/csv",
                "label": "label",
                "methods": {
                    "shap": {"text_config": {"granularity": "token", "language": "en"}, "baseline": [[0.5, ""]]},
                    "pdp": {"features": ["review"]},
                },
                "predictor": {
                    "endpoint_url": url,
                    "content_type": "application/jsonlines",
                    "content_template": '{"features":$features}',
                    "accept_type": "application/jsonlines",
                    "probability": "scores[0]",
                },
            }
            (d / "c.json").write_text(json.dumps(cfg))
            res = analyze(str(d / "c.json"), str(d / "d.csv"), output_dir=str(d / "o"), progress=False)
    for a, b in zip(local.values, remote.values):
        np.testing.assert_allclose(a, b, atol=1e-12)
    np.testing.assert_allclose(remote.values[1][:, 0], [0.0, -1.5, 1.25, 2.0], atol=1e-10)
    (entry,) = res.analysis["explanations"]["pdp"]  # asked for explicitly: Clarify's failed free_text entry
    assert entry["data_type"] == "free_text" and "text feature" in entry["error"]
    lines = [json.loads(x) for x in (d / "o" / "explanations_shap" / "out.jsonl").read_text().splitlines()]
    for line, v in zip(lines, local.values):
        got = [a["attribution"][0] for f in line["explanations"][::-1] for a in f["attributions"]]
        np.testing.assert_allclose(got, v[:, 0], atol=1e-10)  # units first, then rating


# -- masking against a plain reconstruction --------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    text=st.lists(st.sampled_from([*"ab é.,!\n\t日", "xyz", "  ", "\n\n"]), max_size=30).map("".join),
    mask=st.sampled_from(["", "[MASK]", " ", "<UNK>"]),
    granularity=st.sampled_from(GRANULARITIES),
    seed=st.integers(0, 2**16),
)
def test_synthetic_texts_equal_a_plain_reconstruction(text, mask, granularity, seed):
    """Every synthetic text is the record's text with exactly the absent units replaced by the mask
    (built here by slicing the original text at the unit offsets)."""
    from clarion.explain import text as tx

    spans = tx.segment(text, granularity, "english")
    for a, b in spans:
        assert text[a:b] and not text[a:b].isspace() and text[a:b] == text[a:b].strip()
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    rec = tx._Record([text], [spans])
    rng = np.random.default_rng(seed)
    Z = rng.random((5, len(spans))) < 0.5
    got = tx._masked_texts(rec, 0, Z, mask, None)
    for z, g in zip(Z, got):
        want, pos = [], 0
        for keep, (a, b) in zip(z, spans):
            want += [text[pos:a], text[a:b] if keep else mask]
            pos = b
        assert g == "".join(want) + text[pos:]
    if len(Z):
        assert tx._masked_texts(rec, 0, np.ones((1, len(spans)), bool), mask, None) == [text]


def test_monitor_windows_of_a_text_job(tmp_path):
    """clarion monitor --window on a text config: each window's global value of the text column is
    the aggregation of its records' totals (from out.jsonl)."""
    from clarion.cli import EXIT_OK, main

    pd.DataFrame(
        {
            "label": [1, 0, 1, 0],
            "ts": ["2026-01-01", "2026-01-01", "2026-01-02", "2026-01-02"],
            "review": ["good movie great", "bad awful", "good good", "not bad"],
        }
    ).to_csv(tmp_path / "d.csv", index=False)
    cfg = {
        "dataset_type": "text/csv",
        "label": "label",
        "excluded_columns": ["ts"],
        "methods": {"shap": {"text_config": {"granularity": "token", "language": "en"}, "seed": 0}},
    }
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    (tmp_path / "m.py").write_text(
        "import numpy as np\n"
        "W = {'good': 2.0, 'great': 1.25, 'bad': -1.5, 'awful': -2.5, 'not': -0.5}\n"
        "def predict(X):\n"
        "    return np.array([sum(W.get(w, 0.0) for w in t.split()) for t in np.asarray(X, dtype=object)[:, -1]])\n"
    )
    common = ["--config", str(tmp_path / "c.json"), "--data", str(tmp_path / "d.csv"), "--quiet"]
    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["analyze", *common, "--model", "m:predict", "--output", str(tmp_path / "base")]) == EXIT_OK
        args = ["--baseline", str(tmp_path / "base" / "analysis.json"), "--time-column", "ts", "--window", "1D"]
        code = main(["monitor", *common, *args, "--model", "m:predict", "--output", str(tmp_path / "mon")])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("m", None)
    assert code == EXIT_OK
    by_window = json.loads((tmp_path / "mon" / "analysis_by_window.json").read_text())
    totals = [2.0 + 1.25, -1.5 - 2.5, 4.0, -0.5 - 1.5]  # closed form with the empty mask
    for key, (a, b) in zip(sorted(by_window), [(0, 1), (2, 3)]):
        g = by_window[key]["analysis"]["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
        assert g["review"] == pytest.approx((abs(totals[a]) + abs(totals[b])) / 2, abs=1e-10)
