"""Session 18 (issue 21, report files): the cheaper text paths of ``report.html`` / ``report.md``
say exactly what the code before them said.

The reference for each is that code, kept here verbatim: ``fmt``'s generic tests (the fast path for
a plain float is compared on hypothesis floats, NaN and ±inf included), ``esc`` / ``md`` (texts
without a special character are returned as they are), the analysis document's depth check (only
containers visited, a key path spelled for the message alone) and ``largest_disparities`` (the
texts of the kept disparities only). The pages themselves are compared byte for byte with the
former renderer's golden hashes in ``tests/test_report_fast.py``.
"""

from __future__ import annotations

import copy
import html
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.monitor import documents
from clarion.monitor.documents import MAX_ANALYSIS_DEPTH, AnalysisError, load_analysis
from clarion.report import model
from clarion.report.svg import esc, fmt, md

FIXTURE = Path(__file__).parent / "data" / "report_demo"

# ---- the code before, verbatim -----------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
_LINE_BREAK = re.compile(r"\r\n?|\n")


def ref_esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def ref_md(s: object) -> str:
    return html.escape(_MD_SPECIAL.sub(r"\\\1", _LINE_BREAK.sub(" ", str(s))), quote=False)


def ref_fmt(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def ref_check_depth(doc: Any, check: Any) -> None:
    stack: list[tuple[Any, str, int]] = [(doc, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, (Mapping, list, tuple)):
            if depth > MAX_ANALYSIS_DEPTH:
                raise check.fail(path, f"nested more than {MAX_ANALYSIS_DEPTH} levels deep")
            items = node.items() if isinstance(node, Mapping) else enumerate(node)
            stack.extend((v, documents._key(path, k), depth + 1) for k, v in items)


def ref_largest_disparities(doc: Mapping[str, Any], k: int = 3) -> list[tuple[float, str]]:
    num, fl = model._num, model.facet_label
    found = []
    for stage, sec in model._bias_sections(doc):
        for facet, entries in (sec.get("facets") or {}).items():
            for e in entries:
                stats = model._group_stats(e)
                for m in e.get("metrics", []):
                    name = str(m.get("name"))
                    if name in model._NOT_RANKED:
                        continue
                    s = model.disparity_score(m)
                    if s is None:
                        continue
                    ci = model._interval(m)
                    text = f"{name} = {fmt(num(m.get('value')))}"
                    if ci is not None:
                        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]" + (" (significant)" if model.significant(m) else "")
                    stage_word = model.STAGE_TITLES[stage].split(" (")[0].lower()
                    text += (
                        f" for {fl(facet, e.get('value_or_threshold'))} "
                        f"({stage_word}; {model.band_of(name, num(m.get('value')))})"
                    )
                    basis = model._basis_text(name, stats)
                    if basis:
                        text += f": {basis}"
                    found.append(
                        ((s[0], model._few(name, stats), s[1]), (stage, facet, str(e.get("value_or_threshold"))), text)
                    )
    found.sort(key=lambda t: (-t[0][0], t[0][1], -t[0][2]))
    out, seen = [], set()
    for s, where, text in found:
        if where not in seen:
            seen.add(where)
            out.append((s[2], text))
    return out[:k]


# ---- fmt, esc, md ------------------------------------------------------------------------------------

_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e5, -1e5, 99999.5, 99999.49, 1e-3, -1e-3, 0.00099999, 5e-324, 1.7976931348623157e308]
)


@settings(max_examples=600, deadline=None)
@given(_FLOATS, st.integers(1, 8))
def test_fmt_of_a_float_is_the_generic_formatting(v, digits):
    assert fmt(v, digits) == ref_fmt(v, digits)
    assert fmt(v) == ref_fmt(v)


@pytest.mark.parametrize(
    "v",
    [
        None,
        0,
        7,
        -12345678,
        True,
        np.float64(0.25),
        np.float64("nan"),
        np.float32(1.5),
        np.float32("nan"),
        np.int64(3),
        float("inf"),
        np.float64("-inf"),
    ],
)
def test_fmt_of_other_values_takes_the_generic_path(v):
    assert fmt(v) == ref_fmt(v)
    assert fmt(v, 3) == ref_fmt(v, 3)


_TEXT = st.text(alphabet=st.characters(codec="utf-8")) | st.text(alphabet="ab &<>\"'\\`*_[]|~#\r\n\t-")


class _Str(str):
    pass


@settings(max_examples=600, deadline=None)
@given(_TEXT)
def test_esc_and_md_escape_as_before(s):
    assert esc(s) == ref_esc(s)
    assert md(s) == ref_md(s)
    assert esc(_Str(s)) == ref_esc(_Str(s)) and type(esc(_Str(s))) is str
    assert md(_Str(s)) == ref_md(_Str(s)) and type(md(_Str(s))) is str


@pytest.mark.parametrize("v", [None, 3, 2.5, True, ["a|b", "<c>"], {"k": "v&"}, b"x"])
def test_esc_and_md_of_non_strings(v):
    assert esc(v) == ref_esc(v)
    assert md(v) == ref_md(v)


# ---- the document's depth check ----------------------------------------------------------------------


def _nested(depth: int, key: Any, leaf: Any) -> Any:
    node = leaf
    for i in range(depth):
        node = {key: node, "n": i} if i % 3 else [1, node, "x"]
    return node


def _depth_error(fn, doc) -> str | None:
    try:
        fn(doc, documents._Checker("analysis"))
    except AnalysisError as exc:
        return str(exc)
    return None


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, MAX_ANALYSIS_DEPTH + 4),
    st.sampled_from(["k", "a b", "ünï", 'q"uote', "x" * 70, "0"]),
    st.sampled_from([1, "s", None, 2.5, (), [], {}, (1, (2,))]),
    st.integers(0, 3),
)
def test_depth_check_refuses_and_names_as_before(depth, key, leaf, siblings):
    doc = {"version": "1.0", "pre_training_bias_metrics": _nested(depth, key, leaf)}
    for j in range(siblings):  # other branches of other depths (the first failure in visit order)
        doc[f"other{j}"] = _nested(depth - j, f"k{j}", leaf)
    assert _depth_error(documents._check_depth, doc) == _depth_error(ref_check_depth, doc)


def test_depth_check_of_a_dict_that_holds_itself():
    doc: dict = {"version": "1.0"}
    doc["self"] = doc
    msg = _depth_error(documents._check_depth, doc)
    assert msg is not None and msg == _depth_error(ref_check_depth, doc)
    with pytest.raises(AnalysisError, match=f"nested more than {MAX_ANALYSIS_DEPTH} levels deep"):
        load_analysis(doc)


def test_depth_check_of_tuples_and_mappings_that_are_not_dicts():
    from types import MappingProxyType

    deep: Any = 1
    for _ in range(MAX_ANALYSIS_DEPTH + 1):
        deep = (MappingProxyType({"m": deep}),)
    doc = {"version": "1.0", "t": deep}
    msg = _depth_error(documents._check_depth, doc)
    assert msg is not None and msg == _depth_error(ref_check_depth, doc)


# ---- largest_disparities -----------------------------------------------------------------------------


def _demo() -> dict:
    return json.loads((FIXTURE / "analysis.json").read_text())


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_largest_disparities_as_before(data):
    doc = _demo()
    values = st.one_of(st.floats(-3, 3), st.just(None), st.sampled_from(["Infinity", "-Infinity"]), st.floats(0, 2))
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        for entries in doc[stage]["facets"].values():
            for e in entries:
                for m in e["metrics"]:
                    if data.draw(st.booleans()):
                        m["value"] = data.draw(values)
                    if data.draw(st.booleans()):
                        lo = data.draw(st.floats(-2, 2))
                        m["ci_low"], m["ci_high"] = lo, lo + data.draw(st.floats(0, 1))
    k = data.draw(st.integers(-2, 12))
    assert model.largest_disparities(doc, k) == ref_largest_disparities(doc, k)
    assert model.largest_disparities(copy.deepcopy(doc)) == ref_largest_disparities(doc)


def test_band_regions_is_a_fresh_list_each_call():
    a = model.band_regions("DI")
    a.append((0.0, 1.0, "#000"))
    assert model.band_regions("DI") == a[:-1]
    assert model.band_regions("no such metric") == model.band_regions("no such metric")
