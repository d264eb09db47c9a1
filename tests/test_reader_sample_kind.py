"""The type sample's quick rule decided on the whole sample at once (issue 21 part 3).

``clarion.dataset._sample_kind`` decides the usual sampled columns (all words, all plain integers,
all plain decimals of at most 15 digits) with one pattern over the values joined by line breaks;
it must give exactly what the value-by-value rule (``_sample_kind_each``) gives for any sample.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.dataset import _sample_kind, _sample_kind_each

_digits = st.text("0123456789", min_size=1, max_size=18)
_value = st.one_of(
    _digits,
    st.builds(lambda d: "-" + d, _digits),
    st.builds(lambda a, b: f"{a}.{b}", _digits, _digits),
    st.builds(lambda a, b: f"-{a}.{b}", _digits, st.text("0", min_size=1, max_size=4)),
    st.sampled_from(
        [
            "F",
            "M",
            "abc",
            "inf",
            "Inf",
            "-INF",
            "nan",
            "NaN",
            "é",
            "x y",
            " 12",
            "12 ",
            "1.",
            ".5",
            "1e5",
            "+3",
            "0x1F",
            "1,000",
            "",
            " ",
            "a\nb",
            "1\n2",
            "info",
            "\t",
            "--1",
            "1.2.3",
        ]
    ),
    st.text(max_size=6),
)


def _each(values):
    if not all(type(v) is str for v in values):
        return None
    nonempty = [v for v in values if v.strip()]
    return "text" if not nonempty else _sample_kind_each(nonempty)


@settings(max_examples=600, deadline=None)
@given(st.lists(_value, max_size=40))
def test_whole_sample_rule_equals_value_by_value(values):
    arr = np.array(values, dtype=object)
    assert _sample_kind(arr) == _each(values)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["int", "dec", "word"]), st.integers(1, 300), st.integers(0, 2**16))
def test_usual_columns(kind, n, seed):
    rng = np.random.default_rng(seed)
    if kind == "int":
        values = [str(v) for v in rng.integers(-(10**15) + 1, 10**15, n)]
    elif kind == "dec":
        values = [f"{v:.3f}" for v in rng.normal(0, 1e4, n)]
    else:
        values = list(rng.choice(["F", "M", "north", "south-east", "N/A"], n))
    arr = np.array(values, dtype=object)
    assert _sample_kind(arr) == _each(values)


def test_known_answers():
    assert _sample_kind(np.array(["12", "-3", "007"], dtype=object)) == "int"
    assert _sample_kind(np.array(["1.50", "2.00"], dtype=object)) == "float"
    assert _sample_kind(np.array(["1.00", "2.0"], dtype=object)) == "int"
    assert _sample_kind(np.array(["F", "M"], dtype=object)) == "text"
    assert _sample_kind(np.array(["1234567890123456"], dtype=object)) is None  # 16 digits: the general rule
    assert _sample_kind(np.array(["123456789012.3456"], dtype=object)) is None
    assert _sample_kind(np.array(["inf", "x"], dtype=object)) is None  # "inf" may be a number
    assert _sample_kind(np.array(["a\nb", "c"], dtype=object)) == "text"
    assert _sample_kind(np.array(["", " "], dtype=object)) == "text"
