"""clarion.bias.Accumulator: any batch split and merge order equals the one-shot report."""

from __future__ import annotations

import threading

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


def data(seed: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "f": rng.choice(list("abcde"), n),
            "h": rng.random(n),
            "y": rng.integers(0, 2, n),
            "g": rng.choice(list("xyz"), n),
            "s": rng.random(n),
        }
    )
    df["p"] = np.where(rng.random(n) < 0.3, 1 - df.y, df.y)
    return df


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 1000),
    cuts=st.lists(st.integers(1, 299), max_size=6, unique=True),
    order=st.randoms(use_true_random=False),
)
def test_any_split_and_merge_order_equals_one_shot(seed, cuts, order):
    df = data(seed)
    want = cb.report(df, methods=METHODS, **KW).to_frame()
    bounds = [0, *sorted(cuts), len(df)]
    accs = [cb.Accumulator(**KW).update(df.iloc[a:b]) for a, b in zip(bounds, bounds[1:])]
    order.shuffle(accs)
    while len(accs) > 1:  # random merge tree
        i = order.randrange(len(accs) - 1)
        accs[i].merge(accs.pop(i + 1))
    got = accs[0].report(METHODS).to_frame()
    pd.testing.assert_frame_equal(got, want)
    assert accs[0].n_rows == len(df)


def test_new_categories_in_later_batches():
    df = data(1)
    first = df[df.f.isin(["a", "b"])]
    later = df[~df.f.isin(["a", "b"])]
    acc = cb.Accumulator(**KW).update(first)
    assert set(acc.report(METHODS).to_frame().value_or_threshold) >= {"a", "b"}
    acc.update(later)
    want = cb.report(pd.concat([first, later]), methods=METHODS, **KW).to_frame()
    pd.testing.assert_frame_equal(acc.report(METHODS).to_frame(), want)


def test_serialization_round_trip_and_refusals(tmp_path):
    df = data(2)
    acc = cb.Accumulator(**KW).update(df.iloc[:100]).update(df.iloc[100:])
    raw = acc.to_bytes()
    assert raw.startswith(MAGIC)
    (tmp_path / "state.bin").write_bytes(raw)
    back = cb.Accumulator.from_bytes((tmp_path / "state.bin").read_bytes(), like=acc)
    pd.testing.assert_frame_equal(back.report(METHODS).to_frame(), acc.report(METHODS).to_frame())
    back.update(df.iloc[:10])  # still usable
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="checksum mismatch"):
        cb.Accumulator.from_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="checksum|truncated"):
        cb.Accumulator.from_bytes(raw[:-40])
    with pytest.raises(ValueError, match="truncated input"):
        cb.Accumulator.from_bytes(raw[:10])
    with pytest.raises(ValueError, match="not a clarion bias accumulator"):
        cb.Accumulator.from_bytes(b"PK" + raw[2:])
    other = cb.Accumulator(**{**KW, "label_values": [0]})
    with pytest.raises(ValueError, match="label_values differs"):
        cb.Accumulator.from_bytes(raw, like=other)
    with pytest.raises(ValueError, match="merge: the accumulators were built with different configurations"):
        other.merge(acc)


def test_concurrent_updates_equal_sequential():
    df = data(3, 2000)
    parts = np.array_split(np.arange(len(df)), 16)
    acc = cb.Accumulator(**KW)
    threads = [threading.Thread(target=acc.update, args=(df.iloc[p],)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pd.testing.assert_frame_equal(acc.report(METHODS).to_frame(), cb.report(df, methods=METHODS, **KW).to_frame())


def test_time_windows():
    df = data(4, 240)
    df["t"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(240) * 30, unit="s")  # 2 hours
    acc = cb.Accumulator(**KW, window="1h", time_column="t").update(df.iloc[:150]).update(df.iloc[150:])
    assert acc.windows() == ["2026-01-01T00:00:00", "2026-01-01T01:00:00"]
    first = acc.report(METHODS, window="2026-01-01T00:00:00").to_frame()
    pd.testing.assert_frame_equal(first, cb.report(df.iloc[:120], methods=METHODS, **KW).to_frame())
    pd.testing.assert_frame_equal(acc.report(METHODS).to_frame(), cb.report(df, methods=METHODS, **KW).to_frame())
    back = cb.Accumulator.from_bytes(acc.to_bytes())
    assert back.windows() == acc.windows()
    with pytest.raises(ValueError, match="window: 'x' holds no counts"):
        acc.report(METHODS, window="x")


def test_fliptest_is_an_error_entry_and_bad_config():
    df = data(5, 50)
    rep = cb.Accumulator(label="y", facet="f", label_values=[1], predicted_label="p").update(df).report(["FT"])
    assert "Accumulator does not keep" in rep.to_frame().error.iloc[0]
    with pytest.raises(ValueError, match="predicted_label: an Accumulator reads columns"):
        cb.Accumulator(label="y", facet="f", label_values=[1], predicted_label=np.zeros(3))
    with pytest.raises(ValueError, match="window: give time_column"):
        cb.Accumulator(label="y", facet="f", label_values=[1], window="1h")
    with pytest.raises(ValueError, match="report: no rows"):
        cb.Accumulator(label="y", facet="f", label_values=[1]).report()


def test_selected_facet_values_stream_merge_and_persist():
    df = data(6)
    kw = dict(
        label="y", facet=["f", "g"], facet_values={"f": ["b", "e"], "g": ["z"]}, label_values=[1], predicted_label="p"
    )
    want = cb.report(df, methods=METHODS, **kw).to_frame()
    a = cb.Accumulator(**kw).update(df[df.f != "e"])  # "e" only arrives in the second state
    b = cb.Accumulator(**kw).update(df[df.f == "e"])
    merged = cb.Accumulator.from_bytes(b.to_bytes()).merge(cb.Accumulator.from_bytes(a.to_bytes()))
    pd.testing.assert_frame_equal(merged.report(METHODS).to_frame(), want)
    with pytest.raises(ValueError, match="facet_values: value 'e' does not occur in column 'f'"):
        a.report(METHODS)
