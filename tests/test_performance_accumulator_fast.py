"""``PerformanceAccumulator.update`` on the bias accumulator's stream / one-pass path (issue 21,
the job's accumulators).

Without weights and scores a batch is counted as ``Accumulator.update`` counts it (the compiled
stream, else one slot-count pass per facet) and the rows per (facet value, label) are read off the
count tables. Checked on hypothesis-generated batches against

* the update before this change (``_Legacy`` below: ``State.update`` and a ``numpy.bincount`` of
  the rows of every batch), result by result, bit for bit (the JSON of ``result()``, and the
  errors with their messages);
* a plain numpy count of every group's rows, label rows and confusion matrix;

with label vs score predictions, weights, facets by value / by threshold / all values, batches of
0, 1 and many rows, categories that grow between batches (a new categorical dtype per batch, as
the reader makes them), NaN scores, any split of the rows into batches, and threads.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion import bias
from clarion.bias import _engine as eng
from clarion.bias import accumulator as acc_mod
from clarion.bias import performance as perf
from clarion.bias.performance import PerformanceAccumulator

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _Legacy(PerformanceAccumulator):
    """The update before the job round of issue 21: every batch through ``State.update`` and one
    ``numpy.bincount`` of its rows per facet (with a score, the calibration sums as now)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._steady = None

    def update(self, batch):
        table = eng.Table(batch)
        enc = self.state.update(table, "clarion")
        y = np.asarray(enc["y"], dtype=np.intp)
        w = enc["w"]
        _, _, roc_j = self._roles()
        s = enc["scores"][:, roc_j] if roc_j is not None else None
        if s is not None:
            b = np.searchsorted(np.arange(1, perf.CALIBRATION_BINS) / perf.CALIBRATION_BINS, s, side="left")
        for f in self.spec.facets:
            codes = np.asarray(enc["facets"][f][0], dtype=np.intp)
            V = max(self.state.facets[f].n_codes, int(codes.max()) + 1 if codes.size else 0)
            self.rows[f] = perf._grow(self.rows[f], V)
            self.rows[f] += np.bincount(codes * 2 + y, minlength=2 * V).reshape(V, 2)
            if s is not None:
                self.cal[f] = perf._grow(self.cal[f], V)
                idx = (codes * perf.CALIBRATION_BINS + b) * 2 + y
                size = V * perf.CALIBRATION_BINS * 2
                ww = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
                parts = [
                    np.bincount(idx, minlength=size).astype(object),
                    np.asarray(perf._exact_sums(idx, ww, size), dtype=object),
                    np.asarray(perf._exact_sums(idx, ww * s, size), dtype=object),
                ]
                self.cal[f] = self.cal[f] + np.stack(parts, axis=-1).reshape(V, perf.CALIBRATION_BINS, 2, 3)
        return self

    def _rows(self, f, fs, V):
        return perf._grow(self.rows[f], V)


def _json(acc) -> str:
    try:
        return json.dumps(acc.result().to_dict(), sort_keys=True, default=str)
    except ValueError as exc:
        return f"ValueError: {exc}"


def _reader_like(frame: pd.DataFrame, cats: dict) -> pd.DataFrame:
    """The frame with its string columns as categoricals whose categories are every value seen so
    far, in first-seen order (``cats`` grows: a new dtype object whenever a value is new), as
    ``clarion.dataset``'s reader gives them."""
    out = {}
    for c in frame.columns:
        col = frame[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            known = cats.setdefault(c, [])
            for v in pd.unique(col.dropna()):
                if v not in known:
                    known.append(v)
            out[c] = pd.Categorical(col, categories=list(known))
        else:
            out[c] = col.to_numpy()
    return pd.DataFrame(out)


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.sampled_from([0, 1, 2, 7, 60, 700]))
    facet_kind = draw(st.sampled_from(["value", "threshold", "all", "int_value", "two"]))
    pred_kind = draw(st.sampled_from(["labels", "labels", "score", "score_and_labels", "none"]))
    weighted = draw(st.booleans())
    categorical = draw(st.booleans())
    label_text = draw(st.booleans())
    nan_score = pred_kind in ("score", "score_and_labels") and draw(st.integers(0, 5)) == 0
    lo = draw(st.sampled_from([-5, 0, 18, 2**40]))
    frame = pd.DataFrame(
        {
            "f": rng.choice(["a", "b", "c", "d"][: draw(st.integers(1, 4))], n).astype(object),
            "age": rng.integers(lo, lo + draw(st.integers(1, 80)), n),
            "y": rng.integers(0, 2, n),
            "p": rng.integers(0, 2, n),
            "s": rng.integers(0, 1001, n) / 1000.0,
            "w": rng.random(n) * 3,
        }
    )
    if label_text:
        frame["y"] = np.where(frame["y"] == 1, "yes", "no").astype(object)
        frame["p"] = np.where(frame["p"] == 1, "yes", "no").astype(object)
    if nan_score and n:
        frame.loc[int(rng.integers(0, n)), "s"] = np.nan
    kw = dict(label="y", label_values=["yes"] if label_text else [1])
    if facet_kind == "value":
        kw.update(facet="f", facet_values=["b"])
    elif facet_kind == "threshold":
        kw.update(facet="age", facet_threshold=lo + draw(st.integers(-1, 40)) + draw(st.sampled_from([0, 0.5])))
    elif facet_kind == "int_value":
        kw.update(facet="age", facet_values=[lo + 1, lo + 3])
    elif facet_kind == "all":
        kw.update(facet="f")
    else:
        kw.update(facet=["f", "age"], facet_threshold={"age": lo + 10})
    if pred_kind in ("labels", "score_and_labels"):
        kw["predicted_label"] = "p"
    if pred_kind in ("score", "score_and_labels"):
        kw["probability"] = "s"
    if weighted:
        kw["weights"] = "w"
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=5)))
    return frame, kw, categorical, [0, *cuts, n]


def _batches(frame, bounds, categorical):
    cats: dict = {}
    parts = [frame.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:])]
    return [_reader_like(p, cats) if categorical else p for p in parts]


def _feed(acc, batches) -> list:
    errors = []
    for b in batches:
        try:
            acc.update(b)
            errors.append(None)
        except ValueError as exc:
            errors.append(str(exc))
    return errors


@SETTINGS
@given(cases())
def test_equals_the_update_before(case):
    """Every batch split, facet kind, model kind, with or without weights: the same errors and
    the same result, bit for bit, as the update before; and any split gives one result."""
    frame, kw, categorical, bounds = case
    batches = _batches(frame, bounds, categorical)
    new, old = PerformanceAccumulator(**kw), _Legacy(**kw)
    assert _feed(new, batches) == _feed(old, batches)
    got = _json(new)
    assert got == _json(old)
    if "weights" in kw:  # (weighted sums are added in another order for another split)
        return
    one = PerformanceAccumulator(**kw)
    errs = _feed(one, _batches(frame, [0, len(frame)], categorical))
    if not any(errs) and not any(_feed(PerformanceAccumulator(**kw), batches)):
        whole = _json(one)
        # (an error's "values seen" lists the values of the first batch: it depends on the split)
        assert whole.startswith("ValueError") == got.startswith("ValueError")
        if not got.startswith("ValueError"):
            assert whole == got


def _numpy_groups(d_mask, label_pos, pred_pos, w):
    """Plain numpy: rows, label rows and the confusion matrix of the rows in ``d_mask`` and of the
    others (weighted: label / confusion sums of ``w``)."""
    out = {}
    for grp, m in (("facet_d", d_mask), ("facet_a", ~d_mask)):
        ww = w[m]
        y, p = label_pos[m], pred_pos[m]
        out[grp] = {
            "rows": int(m.sum()),
            "weight": float(ww.sum()),
            "TP": float(ww[y & p].sum()),
            "FP": float(ww[~y & p].sum()),
            "FN": float(ww[y & ~p].sum()),
            "TN": float(ww[~y & ~p].sum()),
        }
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([1, 3, 50, 400, 3000]),
    batch=st.sampled_from([1, 7, 64, 1000]),
    threshold=st.sampled_from([None, 20, 40.5, 100]),
    weighted=st.booleans(),
    categorical=st.booleans(),
)
def test_groups_equal_a_plain_numpy_count(seed, n, batch, threshold, weighted, categorical):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M", "X"], n).astype(object),
            "age": rng.integers(18, 90, n),
            "y": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
            "w": rng.random(n) + 0.5,
        }
    )
    if threshold is None:
        kw = dict(facet="sex", facet_values=["F"])
        d_mask = frame["sex"].to_numpy() == "F"
    else:
        kw = dict(facet="age", facet_threshold=threshold)
        d_mask = frame["age"].to_numpy() > threshold
    kw.update(label="y", label_values=[1], predicted_label="pred", weights="w" if weighted else None)
    acc = PerformanceAccumulator(**kw)
    _feed(acc, _batches(frame, list(range(0, n, batch)) + [n], categorical))
    y = frame["y"].to_numpy() == 1
    if not y.any() or not (d_mask.any() or threshold is not None):  # label / facet value absent
        with pytest.raises(ValueError, match="does not occur"):
            acc.result()
        return
    res = acc.result().to_dict()
    w = frame["w"].to_numpy() if weighted else np.ones(n)
    want = _numpy_groups(d_mask, y, frame["pred"].to_numpy() == 1, w)
    got = res["facets"][kw["facet"]][0]["group_statistics"]
    for grp in ("facet_d", "facet_a"):
        g = got[grp]
        assert g["rows"] == want[grp]["rows"]
        assert g["weight"] == pytest.approx(want[grp]["weight"], rel=1e-12)
        for k in ("TP", "FP", "FN", "TN"):
            assert g["confusion_matrix"][k] == pytest.approx(want[grp][k], rel=1e-12, abs=0)
    assert res["dataset"]["rows"] == n


def test_the_job_shape_takes_the_stream(monkeypatch):
    """Reader-like 5,000-row chunks, a facet by value and one by an integer threshold: after the
    first batches every update is one compiled stream call (no general path, no one-pass plan),
    and the result is the update before's."""
    rng = np.random.default_rng(3)
    n = 60_000
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "sex": rng.choice(["F", "M"], n).astype(object),
            "y": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
        }
    )
    batches = _batches(frame, list(range(0, n, 5_000)) + [n], True)
    for facet in (dict(facet="sex", facet_values=["F"]), dict(facet="age", facet_threshold=60)):
        kw = dict(label="y", label_values=[1], predicted_label="pred", **facet)
        hits, general = [], []
        real_add, real_update = acc_mod._Stream.add, eng.State.update

        def add(self, batch, real_add=real_add, hits=hits):
            out = real_add(self, batch)
            hits.append(type(out) is int and out > 0)
            return out

        def update(self, *a, real_update=real_update, general=general, **k):
            general.append(1)
            return real_update(self, *a, **k)

        monkeypatch.setattr(acc_mod._Stream, "add", add)
        monkeypatch.setattr(eng.State, "update", update)
        acc = PerformanceAccumulator(**kw)
        _feed(acc, batches)
        monkeypatch.undo()
        assert not general
        assert all(hits[3:]) and len(hits) >= len(batches) - 2, hits
        old = _Legacy(**kw)
        _feed(old, batches)
        assert _json(acc) == _json(old)


def test_score_and_weights_keep_the_general_path():
    """A score (the calibration's exact sums) and weights (unweighted rows beside weighted
    counts) keep the general path; a float predicted_label turns out a score in its first batch
    and leaves the stream."""
    assert PerformanceAccumulator(label="y", facet="f", label_values=[1], probability="s")._steady is None
    assert (
        PerformanceAccumulator(label="y", facet="f", label_values=[1], predicted_label="p", weights="w")._steady is None
    )
    acc = PerformanceAccumulator(label="y", facet="f", label_values=[1], predicted_label="s")
    assert acc._steady is not None
    df = pd.DataFrame({"y": [1, 0, 1], "f": ["a", "b", "a"], "s": [0.9, 0.2, 0.4]})
    acc.update(df)
    assert acc._steady is None and acc.state.model_kinds == ["scores"]
    old = _Legacy(label="y", facet="f", label_values=[1], predicted_label="s")
    old.update(df)
    assert _json(acc) == _json(old)


@pytest.mark.parametrize("probability", [None, "s"])
def test_threads(probability):
    """Eight threads updating one accumulator (fast path, or the general path with a score) give
    the sequential result bit for bit (integer counts and exact calibration sums)."""
    rng = np.random.default_rng(5)
    n = 80_000
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "sex": rng.choice(["F", "M", "X"], n).astype(object),
            "y": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
            "s": rng.integers(0, 1001, n) / 1000.0,
        }
    )
    batches = _batches(frame, list(range(0, n, 2_500)) + [n], True)
    kw = dict(
        label="y", label_values=[1], predicted_label="pred", probability=probability, facet=["sex", "age"],
        facet_values={"sex": ["F"]}, facet_threshold={"age": 50},
    )  # fmt: skip
    seq = PerformanceAccumulator(**kw)
    _feed(seq, batches)
    par = PerformanceAccumulator(**kw)
    errors = []

    def work(part):
        try:
            for b in part:
                par.update(b)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(batches[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert par.state.n_rows == n
    assert _json(par) == _json(seq)
    assert _json(seq) == _json(_Legacy(**kw).update(frame))


def test_group_performance_is_unchanged_for_one_frame():
    """``group_performance`` (one update) equals the update before, weights and all."""
    rng = np.random.default_rng(9)
    n = 2_000
    df = pd.DataFrame(
        {
            "y": rng.integers(0, 2, n),
            "p": rng.integers(0, 2, n),
            "f": rng.choice(list("abc"), n),
            "t": rng.integers(0, 100, n),
            "w": rng.random(n),
        }
    )
    for kw in (
        dict(facet="f"),
        dict(facet="t", facet_threshold=49.5),
        dict(facet="f", weights="w"),
        dict(facet="t", facet_threshold=10, weights="w"),
    ):
        kw.update(label="y", label_values=[1], predicted_label="p")
        got = json.dumps(bias.group_performance(df, **kw).to_dict(), sort_keys=True)
        assert got == _json(_Legacy(**kw).update(df))


def test_predictions_given_as_an_array():
    """``group_performance`` takes predicted labels as an array (or Series) as well as a column
    name: the same result as the update before, facet by value or by threshold."""
    rng = np.random.default_rng(4)
    n = 500
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "f": rng.choice(list("abc"), n), "t": rng.integers(0, 50, n)})
    p = rng.integers(0, 2, n)
    for pred in (p, pd.Series(p)):
        for facet in (dict(facet="f"), dict(facet="t", facet_threshold=20)):
            kw = dict(label="y", label_values=[1], predicted_label=pred, **facet)
            got = json.dumps(bias.group_performance(df, **kw).to_dict(), sort_keys=True)
            assert got == _json(_Legacy(**kw).update(df))


@pytest.mark.parametrize("kind", ["arrow", "dict"])
def test_arrow_and_dict_batches(kind):
    """pyarrow tables and dicts of arrays as batches: the same result as the update before."""
    pa = pytest.importorskip("pyarrow")
    rng = np.random.default_rng(6)
    n = 12_000
    df = pd.DataFrame(
        {
            "y": rng.integers(0, 2, n),
            "f": rng.choice(list("abc"), n),
            "t": rng.integers(0, 50, n),
            "p": rng.integers(0, 2, n),
        }
    )

    def conv(d):
        if kind == "arrow":
            return pa.Table.from_pandas(d, preserve_index=False)
        return {c: d[c].to_numpy() for c in d.columns}

    for facet in (dict(facet="f"), dict(facet="t", facet_threshold=20), dict(facet="f", facet_values=["b"])):
        kw = dict(label="y", label_values=[1], predicted_label="p", **facet)
        new, old = PerformanceAccumulator(**kw), _Legacy(**kw)
        for s in range(0, n, 1_500):
            b = conv(df.iloc[s : s + 1_500].reset_index(drop=True))
            new.update(b)
            old.update(b)
        assert _json(new) == _json(old)
