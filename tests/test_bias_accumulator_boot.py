"""clarion.bias.Accumulator with bootstrap replicates: the intervals of any batch split, of states
built with explicit global row offsets and merged in any order, and of a serialized state equal
the one-shot ``clarion.bias.report(confidence=...)`` exactly."""

from __future__ import annotations

import hashlib
import itertools
import json
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clarion.bias as cb
from clarion.bias.accumulator import MAGIC

METHODS = [m for m in cb.ALL_METRICS if m != "FT"]
KW = dict(
    label="y",
    facet=["f", "h"],
    facet_threshold={"h": 0.5},
    label_values=[1],
    predicted_label={"m": "p", "sc": "s"},
    probability_threshold=[0.3, 0.7],
    group_variable="g",
)
R, SEED, CONF = 40, 7, 0.9


def data(seed: int, n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "f": rng.choice(list("abcde"), n),
            "h": rng.random(n),
            "y": rng.integers(0, 2, n),
            "g": rng.choice(list("xyz"), n),
            "s": rng.random(n),
            # integer-valued weights: float sums are exact, so any split adds up bit for bit
            "w": rng.integers(0, 4, n).astype(np.float64),
        }
    )
    df["p"] = np.where(rng.random(n) < 0.3, 1 - df.y, df.y)
    return df


def one_shot(df: pd.DataFrame, n_bootstrap: int = R, **kw) -> pd.DataFrame:
    return cb.report(df, methods=METHODS, confidence=CONF, n_bootstrap=n_bootstrap, seed=SEED, **KW, **kw).to_frame()


def bounds_of(cuts: list[int], n: int) -> list[tuple[int, int]]:
    b = [0, *sorted(c for c in cuts if 0 < c < n), n]
    return list(itertools.pairwise(b))


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 1000),
    cuts=st.lists(st.integers(1, 239), max_size=5, unique=True),
    weighted=st.booleans(),
    compat=st.sampled_from(["clarion", "smclarify"]),
)
def test_any_split_gives_the_one_shot_intervals(seed, cuts, weighted, compat):
    df = data(seed)
    kw = {"weights": "w"} if weighted else {}
    want = one_shot(df, compat=compat, **kw)
    acc = cb.Accumulator(**KW, **kw, compat=compat, n_bootstrap=R, seed=SEED)
    for a, b in bounds_of(cuts, len(df)):
        acc.update(df.iloc[a:b])
    assert acc.next_row == len(df)
    got = acc.report(METHODS, confidence=CONF).to_frame()
    assert got["ci_low"].notna().any()
    pd.testing.assert_frame_equal(got, want)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 1000),
    cuts=st.lists(st.integers(1, 239), max_size=5, unique=True),
    order=st.randoms(use_true_random=False),
)
def test_explicit_offsets_merged_in_any_order_give_the_one_shot_intervals(seed, cuts, order):
    df = data(seed)
    want = one_shot(df)
    # each part counted by an independent accumulator that knows its global position
    accs = [
        cb.Accumulator(**KW, n_bootstrap=R, seed=SEED).update(df.iloc[a:b], row_offset=a)
        for a, b in bounds_of(cuts, len(df))
    ]
    order.shuffle(accs)
    while len(accs) > 1:  # random merge tree
        i = order.randrange(len(accs) - 1)
        accs[i].merge(accs.pop(i + 1))
    pd.testing.assert_frame_equal(accs[0].report(METHODS, confidence=CONF).to_frame(), want)
    assert accs[0].n_rows == accs[0].next_row == len(df)


def test_batches_out_of_order_with_offsets_and_fewer_replicates():
    df = data(3)
    acc = cb.Accumulator(**KW, n_bootstrap=R, seed=SEED)
    acc.update(df.iloc[150:], row_offset=150).update(df.iloc[:60], row_offset=0).update(df.iloc[60:150], row_offset=60)
    pd.testing.assert_frame_equal(acc.report(METHODS, confidence=CONF).to_frame(), one_shot(df))
    # replicate r does not depend on how many are drawn: the first 15 are a 15-replicate report
    pd.testing.assert_frame_equal(
        acc.report(METHODS, confidence=CONF, n_bootstrap=15).to_frame(), one_shot(df, n_bootstrap=15)
    )
    assert acc.report(METHODS, confidence=CONF, n_bootstrap=15).n_bootstrap == 15
    # without confidence: the plain report, as before
    pd.testing.assert_frame_equal(acc.report(METHODS).to_frame(), cb.report(df, methods=METHODS, **KW).to_frame())


def test_round_trip_through_bytes_keeps_the_replicates():
    df = data(4)
    acc = cb.Accumulator(**KW, weights="w", n_bootstrap=R, seed=SEED).update(df.iloc[:100])
    back = cb.Accumulator.from_bytes(acc.to_bytes(), like=acc)
    assert back.n_bootstrap == R and back.seed == SEED and back.next_row == 100
    back.update(df.iloc[100:])  # continues the global numbering
    pd.testing.assert_frame_equal(back.report(METHODS, confidence=CONF).to_frame(), one_shot(df, weights="w"))
    # a restored state merges with one counted elsewhere
    other = cb.Accumulator(**KW, weights="w", n_bootstrap=R, seed=SEED).update(df.iloc[100:], row_offset=100)
    first = cb.Accumulator.from_bytes(acc.to_bytes())
    first.merge(cb.Accumulator.from_bytes(other.to_bytes()))
    pd.testing.assert_frame_equal(first.report(METHODS, confidence=CONF).to_frame(), one_shot(df, weights="w"))
    assert cb.Accumulator.from_bytes(first.to_bytes()).to_bytes() == first.to_bytes()


def test_windows_keep_working_and_their_sum_is_the_one_shot_report():
    df = data(5, n=300)
    rng = np.random.default_rng(0)
    # unsorted times: a window's rows are scattered over each batch (not contiguous)
    df["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 4 * 24, len(df)), unit="h")
    acc = cb.Accumulator(**KW, window="1D", time_column="t", n_bootstrap=R, seed=SEED)
    for a, b in bounds_of([70, 71, 200], len(df)):
        acc.update(df.iloc[a:b])
    assert len(acc.windows()) == 4
    pd.testing.assert_frame_equal(acc.report(METHODS, confidence=CONF).to_frame(), one_shot(df))
    # a window: its counts are the window's rows; its interval exists and brackets nothing absurd
    w = acc.windows()[1]
    rows = df[df.t.dt.floor("1D") == pd.Timestamp(w)]
    rep = acc.report(METHODS, window=w, confidence=CONF).to_frame()
    plain = cb.report(rows, methods=METHODS, **KW).to_frame()
    pd.testing.assert_frame_equal(rep.drop(columns=["ci_low", "ci_high"]), plain)
    ok = rep["ci_low"].notna() & np.isfinite(rep["value"])
    assert ok.any() and (rep.loc[ok, "ci_low"] <= rep.loc[ok, "ci_high"]).all()
    back = cb.Accumulator.from_bytes(acc.to_bytes())
    pd.testing.assert_frame_equal(back.report(METHODS, confidence=CONF).to_frame(), one_shot(df))


def test_overlapping_row_numbers_are_refused_with_bootstrap():
    df = data(6)
    a = cb.Accumulator(**KW, n_bootstrap=R, seed=SEED).update(df.iloc[:100])
    b = cb.Accumulator(**KW, n_bootstrap=R, seed=SEED).update(df.iloc[100:])  # also numbered from 0
    with pytest.raises(ValueError, match=r"merge: global rows 0\.\.99 are already counted.*row_offset"):
        a.merge(b)
    with pytest.raises(ValueError, match=r"update: global rows 50\.\.99 are already counted"):
        a.update(df.iloc[100:150], row_offset=50)
    with pytest.raises(ValueError, match="row_offset must be a non-negative integer"):
        a.update(df.iloc[100:150], row_offset=-1)
    # a failed count gives its row numbers back: the retry is numbered as the first try was
    bad = df.iloc[100:].copy()
    bad.loc[bad.index[3], "w"] = -1.0
    aw = cb.Accumulator(**KW, weights="w", n_bootstrap=R, seed=SEED).update(df.iloc[:100])
    with pytest.raises(ValueError, match="weight"):
        aw.update(bad)
    assert aw.next_row == 100
    aw.update(df.iloc[100:])
    pd.testing.assert_frame_equal(aw.report(METHODS, confidence=CONF).to_frame(), one_shot(df, weights="w"))
    # without replicates, overlapping numbers do not matter (counts only)
    p = cb.Accumulator(**KW).update(df.iloc[:100])
    p.merge(cb.Accumulator(**KW).update(df.iloc[100:]))
    assert p.n_rows == len(df)


def test_bad_arguments_and_config_mismatch():
    df = data(7)
    with pytest.raises(ValueError, match="n_bootstrap must be a non-negative integer"):
        cb.Accumulator(**KW, n_bootstrap=-1)
    with pytest.raises(ValueError, match="seed must be an integer"):
        cb.Accumulator(**KW, n_bootstrap=5, seed=-3)
    plain = cb.Accumulator(**KW).update(df)
    with pytest.raises(ValueError, match="keeps no bootstrap replicates"):
        plain.report(METHODS, confidence=0.9)
    acc = cb.Accumulator(**KW, n_bootstrap=R, seed=SEED).update(df)
    with pytest.raises(ValueError, match="confidence must be a number in"):
        acc.report(METHODS, confidence=1.5)
    with pytest.raises(ValueError, match=r"n_bootstrap must be an integer in \[1, 40\]"):
        acc.report(METHODS, confidence=0.9, n_bootstrap=41)
    for other in (
        cb.Accumulator(**KW, n_bootstrap=R, seed=SEED + 1),
        cb.Accumulator(**KW, n_bootstrap=R + 1, seed=SEED),
        plain,
    ):
        with pytest.raises(ValueError, match="different configurations"):
            acc.merge(other)
    with pytest.raises(ValueError, match="different configurations"):
        cb.Accumulator.from_bytes(acc.to_bytes(), like=plain)
    # seed None is the one-shot report's default (0)
    pd.testing.assert_frame_equal(
        cb.Accumulator(**KW, n_bootstrap=10).update(df).report(METHODS, confidence=0.9).to_frame(),
        cb.report(df, methods=METHODS, confidence=0.9, n_bootstrap=10, **KW).to_frame(),
    )


def _rewrite(raw: bytes, version: int, edit=None) -> bytes:
    _, _, hlen = struct.unpack_from("<8sIQ", raw)
    head = json.loads(raw[20 : 20 + hlen])
    if edit is not None:
        edit(head)
    h = json.dumps(head, sort_keys=True).encode()
    body = struct.pack("<8sIQ", MAGIC, version, len(h)) + h + raw[20 + hlen : -32]
    return body + hashlib.sha256(body).digest()


def test_version_1_is_still_read_and_unknown_versions_are_refused():
    df = data(8)
    acc = cb.Accumulator(**KW).update(df.iloc[:120])

    def as_v1(head):
        del head["rows"]
        for k in ("n_bootstrap", "seed"):
            del head["config"][k]
        for w in head["windows"]:
            for a in w["state"]["arrays"]:
                del a["boot"]

    old = cb.Accumulator.from_bytes(_rewrite(acc.to_bytes(), 1, as_v1))
    assert old.n_rows == 120 and old.next_row == 120 and old.n_bootstrap == 0
    old.update(df.iloc[120:])
    pd.testing.assert_frame_equal(old.report(METHODS).to_frame(), cb.report(df, methods=METHODS, **KW).to_frame())
    with pytest.raises(ValueError, match=r"format version 3 is not supported \(this clarion reads versions 1, 2\)"):
        cb.Accumulator.from_bytes(_rewrite(acc.to_bytes(), 3))
    boot = cb.Accumulator(**KW, n_bootstrap=R, seed=SEED).update(df)

    def drop_boot(head):
        for w in head["windows"]:
            w["state"]["arrays"] = [a for a in w["state"]["arrays"] if not a["boot"]]

    with pytest.raises(ValueError, match="bootstrap replicates are missing"):
        cb.Accumulator.from_bytes(_rewrite(boot.to_bytes(), 2, drop_boot))


def test_concurrent_updates_with_offsets_equal_the_one_shot_intervals():
    import threading

    df = data(9, n=400)
    acc = cb.Accumulator(**KW, n_bootstrap=R, seed=SEED)
    parts = list(itertools.pairwise(range(0, 401, 50)))
    threads = [threading.Thread(target=acc.update, args=(df.iloc[a:b],), kwargs={"row_offset": a}) for a, b in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pd.testing.assert_frame_equal(acc.report(METHODS, confidence=CONF).to_frame(), one_shot(df))
    # without offsets, concurrent batches take disjoint row numbers (in the order they reserve them)
    imp = cb.Accumulator(**KW, n_bootstrap=R, seed=SEED)
    threads = [threading.Thread(target=imp.update, args=(df.iloc[a:b],)) for a, b in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert imp.next_row == imp.n_rows == len(df)
