"""The report's content, built once from an ``analysis.json`` and rendered by every format.

:func:`build_report` turns a document (Clarify's or clarion's) into a :class:`Report`: a list of
sections holding paragraphs, bullet lists, tables and charts (SVG, from :mod:`clarion.report.svg`).
The HTML page (:mod:`clarion.report.html`) and the PDF (:mod:`clarion.report.pdf`) both render
this one object, so they say the same thing.

Reading aids (``docs/reports.md`` documents them):

* each metric is coloured on its own scale: :data:`BANDS` gives, per metric, the largest distance
  from the ideal value that is *fine* and the largest that is *watch*; beyond is *concern*.
  Disparate impact (DI) uses the four-fifths rule: 0.8 ≤ DI ≤ 1.25 is fine.
* a metric is *significant* when its confidence interval excludes the ideal value.
* disparities are ranked by :func:`disparity_score`: the distance of the interval (or of the value,
  when there is none) from the ideal, in units of the metric's fine band, significant ones first;
  CI (representation) and GE (not a comparison of groups) are not ranked.
* the summary warns when the model is degenerate (:func:`model_warnings`).
* clarion's additions to ``analysis.json`` (``group_statistics``, ``model_performance``,
  ``threshold_curve``) are shown when present; Clarify's documents simply lack them.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clarion.bias.registry import METRIC_INFO
from clarion.report.svg import (
    BAND_COLOURS,
    bars,
    curve_chart,
    fmt,
    interval_track,
    line_with_distribution,
    strip_plot,
)

__all__ = [
    "BANDS",
    "DEGENERATE_ACCURACY_MARGIN",
    "DEGENERATE_SHARE",
    "FEW_ROWS",
    "STAGE_TITLES",
    "Bullets",
    "Chart",
    "ChartRow",
    "Para",
    "Report",
    "Section",
    "Span",
    "Table",
    "band_of",
    "band_regions",
    "band_text",
    "build_report",
    "disparity_score",
    "facet_label",
    "feature_label",
    "group_table",
    "largest_disparities",
    "markdown_section",
    "model_warnings",
    "significant",
]

#: the model is degenerate when it predicts one class for at least this share of rows ...
DEGENERATE_SHARE = 0.95
#: ... or when its accuracy is within this of always predicting the majority class
DEGENERATE_ACCURACY_MARGIN = 0.01

#: metric -> (scale, fine, watch): ``|v - ideal|`` up to ``fine`` is fine, up to ``watch`` is
#: watch, beyond is concern. Distances are measured on the metric's scale: ``|ln v|`` for
#: ``"log"`` (a ratio), ``sqrt(v)`` for ``"sqrt"`` (KL and JS grow with the square of a rate
#: difference, so their square root is what compares with the other metrics when ranking). Rate differences use AIF360's
#: ±0.1 fairness band as the concern line and half of it as the fine line; distances between label
#: distributions (TVD, KS, LP, KL, JS) use the values they take for the same differences of rates
#: (binary labels around 0.5); DI uses the four-fifths rule (0.8 .. 1.25 fine, 2/3 .. 1.5 watch).
BANDS: dict[str, tuple[str, float, float]] = {
    "CI": ("linear", 0.2, 0.6),
    "DPL": ("linear", 0.05, 0.1),
    "KL": ("sqrt", 0.005, 0.02),
    "JS": ("sqrt", 0.00125, 0.005),
    "LP": ("linear", 0.05 * math.sqrt(2), 0.1 * math.sqrt(2)),
    "TVD": ("linear", 0.05, 0.1),
    "KS": ("linear", 0.05, 0.1),
    "CDDL": ("linear", 0.05, 0.1),
    "DPPL": ("linear", 0.05, 0.1),
    "DI": ("log", math.log(1.25), math.log(1.5)),
    "DCA": ("linear", 0.1, 0.25),
    "DCR": ("linear", 0.1, 0.25),
    "RD": ("linear", 0.05, 0.1),
    "SD": ("linear", 0.05, 0.1),
    "DAR": ("linear", 0.05, 0.1),
    "DRR": ("linear", 0.05, 0.1),
    "AD": ("linear", 0.05, 0.1),
    "CDDPL": ("linear", 0.05, 0.1),
    "TE": ("linear", 0.1, 0.25),
    "FT": ("linear", 0.05, 0.1),
    "GE": ("linear", 0.05, 0.1),
}

#: metrics that are not a comparison of outcomes between facet d and facet a: not ranked
_NOT_RANKED = ("CI", "GE")

STAGE_TITLES = {
    "pre_training_bias_metrics": "Pre-training bias (data)",
    "post_training_bias_metrics": "Post-training bias (model)",
}

#: the counts each post-training metric divides by: (what, cells of the confusion matrix)
_BASIS = {
    "DPPL": ("predicted positives", ("TP", "FP")),
    "DI": ("predicted positives", ("TP", "FP")),
    "DCA": ("predicted positives", ("TP", "FP")),
    "DCR": ("predicted negatives", ("TN", "FN")),
    "RD": ("observed positives", ("TP", "FN")),
    "SD": ("observed negatives", ("TN", "FP")),
    "DAR": ("predicted positives", ("TP", "FP")),
    "DRR": ("predicted negatives", ("TN", "FN")),
    "TE": ("false positives", ("FP",)),
    "CDDPL": ("predicted negatives", ("TN", "FN")),
}
#: a metric that divides by fewer (weighted) rows than this in either facet is marked "few rows"
FEW_ROWS = 30


# ---- the content model -----------------------------------------------------------------------------


@dataclass
class Span:
    """A run of text. ``style``: "" (plain), "b" (bold), "muted", "err", "flag", "warn", "code",
    "fine" / "watch" / "concern" (a band chip), "br" (a line break; ``text`` is ignored)."""

    text: str
    style: str = ""


@dataclass
class Chart:
    """An SVG chart (inline in HTML; converted to vector graphics in the PDF)."""

    svg: str
    width: float
    height: float
    title: str = ""
    #: the shapes the SVG's generator drew (see :mod:`clarion.report.svg`), or None: report.pdf
    #: draws them instead of reading the SVG back (a chart made from other SVG text has none)
    shapes: list | None = field(default=None, repr=False, compare=False)


Cell = list  # of Span | Chart


@dataclass
class Table:
    """A table: ``header`` strings, ``rows`` of cells (each a list of :class:`Span` / :class:`Chart`);
    ``widths``: relative column widths for paged formats; ``numeric``: the columns of numbers."""

    header: list[str]
    rows: list[list[Cell]]
    cls: str = ""
    widths: list[float] | None = None
    numeric: tuple[int, ...] = ()


@dataclass
class Picture:
    """A raster image file (JPEG / PNG) shown at ``width`` x ``height`` points (paged formats)."""

    path: str
    width: float
    height: float


@dataclass
class Para:
    """A paragraph of spans."""

    parts: list[Span]
    cls: str = ""


@dataclass
class Bullets:
    """A bullet list; each item a list of spans."""

    items: list[list[Span]]


@dataclass
class ChartRow:
    """Charts side by side (wrapping in HTML)."""

    charts: list[Chart]


@dataclass
class Section:
    """``level`` 2: a heading and its blocks; level 3: a card. ``grid``: lay the level-3 subsections
    out side by side."""

    title: str
    level: int
    blocks: list[Any] = field(default_factory=list)
    cls: str = ""
    grid: bool = False


@dataclass
class Report:
    """Everything a report says, in order."""

    title: str
    subtitle: str
    sections: list[Section]
    #: the summary's model warnings (:func:`model_warnings`) and largest disparities' texts
    #: (:func:`largest_disparities`), as every format's summary says them
    warnings: list[str] = field(default_factory=list)
    disparities: list[str] = field(default_factory=list)


# ---- numbers and labels ----------------------------------------------------------------------------


def _num(v: Any) -> float | None:
    """A number of analysis.json as a float: "Infinity" / "-Infinity" (Clarify's) as ±inf; None
    for null, NaN, booleans and anything else."""
    t = type(v)
    if t is float:  # (the common cases first)
        return None if v != v else v
    if t is int:
        return float(v)
    if isinstance(v, str):
        from clarion.monitor.documents import METRIC_STRINGS

        f = METRIC_STRINGS.get(v)
        return None if f is None or math.isnan(f) else f
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _finite(v: Any) -> float | None:
    f = _num(v)
    return f if f is not None and math.isfinite(f) else None


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _count(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


@functools.lru_cache(maxsize=512)  # (of the metric's name and the constant tables alone)
def _guide(name: str) -> tuple[float, float, float, str]:
    info = METRIC_INFO.get(name)
    if info is None:
        return (-1.0, 1.0, 0.0, "")
    return (float(info["axis"][0]), float(info["axis"][1]), float(info["ideal"]), info["reading"])


@functools.lru_cache(maxsize=512)
def _band_spec(name: str) -> tuple[str, float, float]:
    if name in BANDS:
        return BANDS[name]
    lo, hi, _, _ = _guide(name)
    half = (hi - lo) / 2 or 1.0
    return ("linear", 0.1 * half, 0.3 * half)  # a metric clarion does not know: tenths of its axis


def _distance(name: str, v: float) -> float:
    """``v``'s distance from the metric's ideal on its band scale (``|ln v|`` for DI)."""
    scale, _, _ = _band_spec(name)
    if scale == "log":
        if v <= 0:
            return math.inf
        return abs(math.log(v)) if math.isfinite(v) else math.inf
    if scale == "sqrt":
        return math.sqrt(abs(v))
    return abs(v - _guide(name)[2])


def _fine_unit(name: str) -> float:
    """The fine band's edge as a distance on the metric's scale (the ranking's unit)."""
    scale, fine, _ = _band_spec(name)
    return math.sqrt(fine) if scale == "sqrt" else fine


def band_of(name: str, value: float | None) -> str:
    """The metric's band for ``value``: "fine", "watch", "concern", or "n/a" for no value (see
    :data:`BANDS`)."""
    if value is None or math.isnan(value):
        return "n/a"
    scale, fine, watch = _band_spec(name)
    d = abs(value) if scale == "sqrt" else _distance(name, value)
    return "fine" if d <= fine else ("watch" if d <= watch else "concern")


def band_regions(name: str) -> list[tuple[float, float, str]]:
    """The metric's fine and watch bands as value ranges ``(from, to, fill)`` for the charts."""
    return list(_band_regions(name))


@functools.lru_cache(maxsize=512)
def _band_regions(name: str) -> tuple[tuple[float, float, str], ...]:
    scale, fine, watch = _band_spec(name)
    ideal = _guide(name)[2]
    if scale == "log":
        return (
            (math.exp(-watch), math.exp(watch), BAND_COLOURS["watch"][1]),
            (math.exp(-fine), math.exp(fine), BAND_COLOURS["fine"][1]),
        )
    return (
        (ideal - watch, ideal + watch, BAND_COLOURS["watch"][1]),
        (ideal - fine, ideal + fine, BAND_COLOURS["fine"][1]),
    )


@functools.lru_cache(maxsize=512)
def band_text(name: str) -> str:
    """The metric's bands in words, e.g. "fine 0.8–1.25, watch 0.6667–1.5"."""
    scale, fine, watch = _band_spec(name)
    if scale == "log":
        return (
            f"fine {fmt(math.exp(-fine))}–{fmt(math.exp(fine))}, watch {fmt(math.exp(-watch))}–{fmt(math.exp(watch))}"
        )
    ideal = _guide(name)[2]
    lo, hi = METRIC_INFO.get(name, {}).get("range", (-math.inf, math.inf))
    if lo >= ideal:  # a distance: only one side
        return f"fine ≤ {fmt(ideal + fine)}, watch ≤ {fmt(ideal + watch)}"
    return f"fine |v| ≤ {fmt(fine)}, watch |v| ≤ {fmt(watch)}"


def _interval(m: Mapping[str, Any]) -> tuple[float, float] | None:
    lo, hi = _num(m.get("ci_low")), _num(m.get("ci_high"))
    return None if lo is None or hi is None else (lo, hi)


def _one_sided(name: str) -> bool:
    """A distance (KL, JS, LP, TVD, KS, GE): never below its ideal value, so an interval of it
    excludes the ideal whenever the groups differ at all, and says nothing about significance."""
    info = METRIC_INFO.get(name)
    return info is not None and float(info["range"][0]) >= float(info["ideal"])


def significant(m: Mapping[str, Any]) -> bool | None:
    """True when the metric's confidence interval excludes its ideal value, False when it holds
    it, None when there is no interval or the metric is a distance (never below its ideal, so
    its interval cannot test it: read DPL / DPPL for the same groups)."""
    ci = _interval(m)
    if ci is None or _one_sided(str(m.get("name"))):
        return None
    ideal = _guide(str(m.get("name")))[2]
    return not (ci[0] <= ideal <= ci[1])


def disparity_score(m: Mapping[str, Any]) -> tuple[int, float] | None:
    """How far a metric is from no disparity, comparably across metrics: ``(significant, units)``,
    where ``units`` is the distance from the ideal of the interval's nearer end (of the value when
    there is no interval; 0 when the interval holds the ideal) divided by the metric's fine band
    (:data:`BANDS`), and ``significant`` is 1 when the interval excludes the ideal or there is none
    (0 for a distance with an interval, see :func:`significant`).
    Sorting by it descending puts significant disparities first, then larger ones. None for no
    value."""
    name = str(m.get("name"))
    v = _num(m.get("value"))
    if v is None:
        return None
    fine = _fine_unit(name)
    ci = _interval(m)
    if ci is not None and _one_sided(name):  # no test of significance: ranked after those that have one
        return (0, _distance(name, max(ci[0], 0.0)) / fine)
    if ci is None:
        return (1, _distance(name, v) / fine)
    if significant(m):
        return (1, min(_distance(name, ci[0]), _distance(name, ci[1])) / fine)
    return (0, _distance(name, v) / fine)


def _group_stats(entry: Mapping[str, Any]) -> tuple[dict, dict] | None:
    gs = entry.get("group_statistics")
    if not isinstance(gs, Mapping):
        return None
    d, a = gs.get("facet_d"), gs.get("facet_a")
    if not isinstance(d, Mapping) or not isinstance(a, Mapping):
        return None
    return dict(d), dict(a)


_INTERVAL = re.compile(r"^\((.+), (.+)\]$")


def facet_label(facet: str, value: Any, headers: Sequence[str] | None = None) -> str:
    """A facet value as a reader says it: ``age > 40`` for a threshold (``"(40, 91]"``),
    ``sex = female``; a facet given by index (``"1"``) named by its column when ``headers`` know it."""
    name = facet
    if headers is not None and re.fullmatch(r"\d+", str(facet)) and int(facet) < len(headers):
        name = f"{headers[int(facet)]} (column {facet})"
    if value is None or value == "":
        return str(name)
    m = _INTERVAL.match(str(value))
    if m:
        return f"{name} > {m.group(1)}"
    parts = str(value).split(",")
    if len(parts) > 1:
        return f"{name} ∈ {{{', '.join(parts)}}}"
    return f"{name} = {value}"


def feature_label(column: str, labels: Sequence[str] = (), features: Sequence[str] = ()) -> str:
    """A local-attribution column as a feature name: ``checks_Yes`` → ``checks`` when ``Yes`` is an
    explained label, ``credit_score_label0`` → ``credit_score``; with ``features`` known, the
    longest feature the column starts with."""
    col = str(column)
    for lab in sorted((str(x) for x in labels), key=len, reverse=True):
        if lab and col.endswith(f"_{lab}") and len(col) > len(lab) + 1:
            col = col[: -len(lab) - 1]
            break
    else:
        m = re.fullmatch(r"(.+)_label\d+", col)
        if m:
            col = m.group(1)
    if features and col not in features:
        bases = [f for f in features if col.startswith(f"{f}_")]
        if bases:
            return max(bases, key=len)
    return col


# ---- the summary: warnings and ranked disparities ---------------------------------------------------


def _performance(doc: Mapping[str, Any]) -> dict | None:
    """The model's overall statistics: ``post_training_bias_metrics.model_performance``, else the
    first facet entry's two groups added up."""
    sec = doc.get("post_training_bias_metrics")
    if not isinstance(sec, Mapping):
        return None
    mp = sec.get("model_performance")
    if isinstance(mp, Mapping) and isinstance(mp.get("confusion_matrix"), Mapping):
        return dict(mp)
    for entries in (sec.get("facets") or {}).values():
        for e in entries if isinstance(entries, list) else []:
            g = _group_stats(e) if isinstance(e, Mapping) else None
            if g and all(isinstance(x.get("confusion_matrix"), Mapping) for x in g):
                cm = {k: sum(_finite(x["confusion_matrix"].get(k)) or 0.0 for x in g) for k in ("TP", "FP", "FN", "TN")}
                return {"confusion_matrix": cm}
    return None


def model_warnings(doc: Mapping[str, Any]) -> list[str]:
    """Warnings that the model is degenerate, from clarion's ``model_performance`` (or the groups'
    confusion matrices): it predicts one class for at least :data:`DEGENERATE_SHARE` of rows, or
    its accuracy is within :data:`DEGENERATE_ACCURACY_MARGIN` of always predicting the majority
    class. Empty when the document has no such numbers (Clarify's)."""
    mp = _performance(doc)
    if mp is None:
        return []
    cm = {k: _finite(mp["confusion_matrix"].get(k)) for k in ("TP", "FP", "FN", "TN")}
    if any(v is None for v in cm.values()):
        return []
    n = sum(cm.values())
    if n <= 0:
        return []
    out = []
    pos_pred = (cm["TP"] + cm["FP"]) / n
    share, cls = (pos_pred, "positive") if pos_pred >= 0.5 else (1 - pos_pred, "negative")
    if share >= DEGENERATE_SHARE:
        few = cm["TN"] + cm["FN"] if cls == "positive" else cm["TP"] + cm["FP"]
        out.append(
            f"The model is degenerate: it predicts the {cls} class for {share:.1%} of rows "
            f"({_count(n - few)} of {_count(n)}); metrics that divide by its {_count(few)} "
            f"{'negative' if cls == 'positive' else 'positive'} predictions rest on few rows."
        )
    acc = (cm["TP"] + cm["TN"]) / n
    base = (cm["TP"] + cm["FN"]) / n
    majority = max(base, 1 - base)
    if acc - majority < DEGENERATE_ACCURACY_MARGIN:
        where = "below" if acc < majority else f"within {DEGENERATE_ACCURACY_MARGIN * 100:.0f} point of"
        out.append(
            f"The model's accuracy {acc:.3f} is {where} always predicting the majority class "
            f"({majority:.3f}, label positive rate {base:.3f}): it does not clearly beat a constant on "
            "accuracy, so read its disparities with the confusion matrices and ROC AUC below."
        )
    return out


def _few(name: str, stats: tuple[dict, dict] | None) -> bool:
    """Whether the metric divides by fewer than :data:`FEW_ROWS` (weighted) rows in either facet."""
    basis = _BASIS.get(name)
    if stats is None or basis is None:
        return False
    cms = [g.get("confusion_matrix") for g in stats]
    if not all(isinstance(cm, Mapping) for cm in cms):
        return False
    return min(sum(_finite(cm.get(c)) or 0.0 for c in basis[1]) for cm in cms) < FEW_ROWS


def _basis_text(name: str, stats: tuple[dict, dict] | None) -> str:
    """The group sizes and rates behind a metric, e.g. "observed positive 74.1% in d (1,288 rows)
    vs 85.8% in a (3,938 rows)", with the counts it divides by for post-training metrics."""
    if stats is None:
        return ""
    d, a = stats
    rd, ra = _finite(d.get("rows")), _finite(a.get("rows"))
    if "predicted_positive_rate" in d and METRIC_INFO.get(name, {}).get("stage") == "post":
        key, what = "predicted_positive_rate", "predicted positive"
    else:
        key, what = "observed_positive_rate", "observed positive"
    text = (
        f"{what} {_pct(_finite(d.get(key)))} in d ({_count(rd)} rows) vs "
        f"{_pct(_finite(a.get(key)))} in a ({_count(ra)} rows)"
    )
    basis = _BASIS.get(name)
    cd, ca = d.get("confusion_matrix"), a.get("confusion_matrix")
    if basis and isinstance(cd, Mapping) and isinstance(ca, Mapping):
        what, cells = basis
        nd = sum(_finite(cd.get(c)) or 0.0 for c in cells)
        na = sum(_finite(ca.get(c)) or 0.0 for c in cells)
        few = " — few rows" if min(nd, na) < FEW_ROWS else ""
        text += f"; built on {_count(nd)} vs {_count(na)} {what}{few}"
    return text


def largest_disparities(doc: Mapping[str, Any], k: int = 3) -> list[tuple[float, str]]:
    """The ``k`` largest disparities, ranked by :func:`disparity_score` (significant first; then
    those whose counts are not "few rows", see :data:`FEW_ROWS`; then by the distance from ideal in
    units of each metric's fine band), one per facet value and stage (its largest: the other
    metrics of the same groups mostly restate it); each as ``(units, text)``, the text naming the
    metric, its value and interval, the facet value and the group sizes when known."""
    found = []
    for stage, sec in _bias_sections(doc):
        for facet, entries in (sec.get("facets") or {}).items():
            for e in entries:
                stats = _group_stats(e)
                for m in e.get("metrics", []):
                    name = str(m.get("name"))
                    if name in _NOT_RANKED:
                        continue
                    s = disparity_score(m)
                    if s is None:
                        continue
                    found.append(
                        (
                            (s[0], _few(name, stats), s[1]),
                            (stage, facet, str(e.get("value_or_threshold"))),
                            (name, m, e, stats),
                        )
                    )
    found.sort(key=lambda t: (-t[0][0], t[0][1], -t[0][2]))
    out, seen = [], set()
    for s, where, said in found:
        if 0 <= k <= len(out):
            break
        if where not in seen:  # the largest per facet value and stage: the others say the same
            seen.add(where)
            out.append((s[2], _disparity_text(where[0], where[1], *said)))
    return out[:k]


def _disparity_text(stage: str, facet: str, name: str, m: Mapping[str, Any], e: Mapping[str, Any], stats: Any) -> str:
    """A ranked disparity in words (:func:`largest_disparities`): the metric, its value and
    interval, the facet value, the stage and band, the group sizes when known."""
    ci = _interval(m)
    text = f"{name} = {fmt(_num(m.get('value')))}"
    if ci is not None:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]" + (" (significant)" if significant(m) else "")
    text += (
        f" for {facet_label(facet, e.get('value_or_threshold'))} "
        f"({STAGE_TITLES[stage].split(' (')[0].lower()}; {band_of(name, _num(m.get('value')))})"
    )
    basis = _basis_text(name, stats)
    if basis:
        text += f": {basis}"
    return text


def _bias_sections(doc: Mapping[str, Any]):
    for stage in STAGE_TITLES:
        sec = doc.get(stage)
        if sec:
            yield stage, sec


# ---- building the report ---------------------------------------------------------------------------

_BAND_WORD = {"fine": "fine", "watch": "watch", "concern": "concern"}


def _legend() -> Section:
    chips = []
    for b, meaning in (
        ("fine", "within the metric's fine band;"),
        ("watch", "outside it, within the watch band;"),
        ("concern", "beyond the watch band."),
    ):
        chips += [Span(b, b), Span(f" {meaning} ")]
    return Section(
        "How to read the metrics",
        3,
        [
            Para(
                [
                    Span("Colours. ", "b"),
                    *chips,
                    Span(
                        "Each metric is coloured on its own scale (bands per metric in docs/reports.md): "
                        "rate differences are fine within ±0.05 and watch within ±0.1; disparate impact (DI) "
                        "follows the four-fifths rule, fine from 0.8 to 1.25. The shaded regions of each "
                        "chart are the fine (green) and watch (amber) bands; the green line is the ideal."
                    ),
                ]
            ),
            Para(
                [
                    Span("Significance. ", "b"),
                    Span("● excludes ideal", "flag"),
                    Span(
                        " marks a metric whose confidence interval (black whiskers) excludes the ideal value: "
                        "the disparity is unlikely to be sampling noise. An interval that holds the ideal means "
                        "the data cannot tell the difference from no disparity. Distances (KL, JS, LP, TVD, KS, "
                        "GE) are never below 0, so their intervals test nothing and are not marked: read DPL / "
                        "DPPL for the same groups."
                    ),
                ]
            ),
            Para(
                [
                    Span("Ranking. ", "b"),
                    Span(
                        "The summary ranks disparities significant first, then by the distance of the "
                        "interval from the ideal in units of the metric's fine band, so metrics of "
                        "different scales compare. Facet d is the group named in each heading; facet a is "
                        "every other row."
                    ),
                ]
            ),
        ],
        cls="legend",
    )


def _config_section(config: Mapping[str, Any], doc: Mapping[str, Any]) -> Section:
    headers = config.get("headers") if isinstance(config.get("headers"), list) else None
    rows = []
    for key in (
        "dataset_type",
        "label",
        "label_values_or_threshold",
        "facet",
        "group_variable",
        "predicted_label",
        "probability_threshold",
    ):
        if key not in config:
            continue
        v = config[key]
        if key == "facet" and isinstance(v, list):
            v = "; ".join(_config_facet(f, doc, headers) for f in v if isinstance(f, Mapping))
        elif key == "label_values_or_threshold" and isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        elif key in ("label", "group_variable") and isinstance(v, int) and headers and 0 <= v < len(headers):
            v = f"{headers[v]} (column {v})"
        rows.append([[Span(key, "b")], [Span(str(v))]])
    methods = ", ".join(k for k in (config.get("methods") or {}) if k != "report")
    rows.append([[Span("methods", "b")], [Span(methods)]])
    pred = config.get("predictor")
    if isinstance(pred, Mapping) and pred:
        rows.append([[Span("predictor", "b")], [Span(", ".join(f"{k}={v}" for k, v in pred.items()))]])
    return Section("Configuration", 3, [Table(["setting", "value"], rows, cls="config", widths=[1, 4])])


def _config_facet(f: Mapping[str, Any], doc: Mapping[str, Any], headers: list | None) -> str:
    """A config facet as a reader says it: ``age > 40`` when analysis.json shows a threshold,
    ``sex = female``, ``colour ∈ {a, b}``, ``x (every value)``; an index named by its column."""
    key = f.get("name_or_index")
    name = str(key)
    if isinstance(key, int) and not isinstance(key, bool) and headers and 0 <= key < len(headers):
        name = f"{headers[key]} (column {key})"
    vals = f.get("value_or_threshold")
    if not vals:
        return f"{name} (every value)"
    vals = vals if isinstance(vals, list) else [vals]
    threshold = False
    for _, sec in _bias_sections(doc):
        for e in (sec.get("facets") or {}).get(str(key), []):
            if isinstance(e, Mapping) and _INTERVAL.match(str(e.get("value_or_threshold", ""))):
                threshold = True
    if threshold and len(vals) == 1:
        return f"{name} > {vals[0]}"
    if len(vals) == 1:
        return f"{name} = {vals[0]}"
    return f"{name} ∈ {{{', '.join(str(v) for v in vals)}}}"


def _rate_cell(g: Mapping[str, Any], key: str, pct: bool = False) -> list[Span]:
    v = _finite(g.get(key))
    if v is None:
        why = (g.get("undefined") or {}).get(key) if isinstance(g.get("undefined"), Mapping) else None
        return [Span("n/a", "err")] + ([Span(f" ({why})", "muted")] if why else [])
    return [Span(_pct(v) if pct else fmt(v, 3))]


def _group_table(stats: tuple[dict, dict], facet_text: str) -> Table:
    d, a = stats
    post = "confusion_matrix" in d or "predicted_positive_rate" in d
    weighted = any(
        _finite(g.get("weight")) is not None and _finite(g.get("weight")) != _finite(g.get("rows")) for g in stats
    )
    header = ["group", "rows"] + (["weight"] if weighted else []) + ["observed positive"]
    if post:
        header += ["predicted positive", "TP", "FP", "FN", "TN", "accuracy", "precision", "recall", "FPR"]
        if any("roc_auc" in g for g in stats):
            header.append("ROC AUC")
    rows = []
    for tag, g, who in (("d", d, facet_text), ("a", a, "all other rows")):
        row: list[list[Any]] = [[Span(f"{tag}: ", "b"), Span(who)], [Span(_count(_finite(g.get("rows"))))]]
        if weighted:
            row.append([Span(_count(_finite(g.get("weight"))))])
        row.append(_rate_cell(g, "observed_positive_rate", pct=True))
        if post:
            row.append(_rate_cell(g, "predicted_positive_rate", pct=True))
            cm = g.get("confusion_matrix") if isinstance(g.get("confusion_matrix"), Mapping) else {}
            row += [[Span(_count(_finite(cm.get(c))))] for c in ("TP", "FP", "FN", "TN")]
            row += [_rate_cell(g, k) for k in ("accuracy", "precision", "recall", "false_positive_rate")]
            if "ROC AUC" in header:
                row.append(_rate_cell(g, "roc_auc"))
        rows.append(row)
    return Table(header, rows, cls="groups", numeric=tuple(range(1, len(header))))


def group_table(entry: Mapping[str, Any], facet_text: str) -> Table | None:
    """The group statistics of a facet entry (clarion's ``group_statistics``) as a table: facet d
    and facet a, their rows, rates, confusion matrix and accuracy; None when the entry has none."""
    stats = _group_stats(entry)
    return None if stats is None else _group_table(stats, facet_text)


def _metric_table(metrics: list[Mapping[str, Any]]) -> Table:
    rows = []
    for m in metrics:
        name = str(m.get("name"))
        lo, hi, ideal, reading = _guide(name)
        v = _num(m.get("value"))
        ci = _interval(m)
        band = band_of(name, v)
        name_cell = [Span(name, "b"), Span("", "br"), Span(str(m.get("description", "")), "muted")]
        if v is None:
            why = str(m.get("error") or "undefined")
            value_cell = [Span(f"n/a — {why}", "err")]
            chart_cell = [Span(f"n/a: {why}", "muted")]  # no empty chart
        else:
            value_cell = [Span(fmt(v)), Span("", "br"), Span(_BAND_WORD[band], band)]
            shapes: list = []
            chart_cell = [
                Chart(
                    interval_track(
                        v,
                        lo=lo,
                        hi=hi,
                        ideal=ideal,
                        ci=ci,
                        label=name,
                        colour=BAND_COLOURS[band][0],
                        regions=band_regions(name),
                        shapes=shapes,
                    ),
                    260,
                    26,
                    name,
                    shapes,
                )
            ]
        ci_cell: list[Span] = []
        if ci is not None:
            ci_cell = [Span(f"[{fmt(ci[0])}, {fmt(ci[1])}]")]
            if significant(m):
                ci_cell += [Span(" "), Span("● excludes ideal", "flag")]
        rows.append(
            [
                name_cell,
                value_cell,
                ci_cell,
                chart_cell,
                [Span(fmt(ideal))],
                [Span(reading, "muted"), Span("", "br"), Span(band_text(name), "muted")],
            ]
        )
    return Table(
        ["metric", "value", "interval", "value vs ideal", "ideal", "reading"],
        rows,
        cls="metrics",
        widths=[2.2, 1.2, 1.6, 3.2, 0.6, 2.6],
        numeric=(1, 2, 4),
    )


def _curve_charts(curve: Mapping[str, Any]) -> ChartRow | None:
    xs = curve.get("thresholds")
    if not isinstance(xs, list) or not xs:
        return None
    marker = _finite(curve.get("configured_threshold"))
    charts = []
    for key, title, ideal, regions, y_range in (
        ("DPPL", "DPPL (ideal 0)", 0.0, band_regions("DPPL"), None),
        ("DI", "DI (ideal 1, four-fifths band)", 1.0, band_regions("DI"), (0.0, 2.0)),
        ("RD", "RD, equal opportunity (ideal 0)", 0.0, band_regions("RD"), None),
        ("accuracy", "accuracy", None, (), (0.0, 1.0)),
    ):
        ys = curve.get(key)
        if not isinstance(ys, list) or not any(_finite(y) is not None for y in ys):
            continue
        shapes: list = []
        svg = curve_chart(
            xs, ys, marker=marker, ideal=ideal, regions=regions, y_range=y_range, title=title, shapes=shapes
        )
        charts.append(Chart(svg, 250, 150, title, shapes))
    return ChartRow(charts) if charts else None


def _performance_section(doc: Mapping[str, Any]) -> Section | None:
    post = doc.get("post_training_bias_metrics")
    pre = doc.get("pre_training_bias_metrics")
    mp = post.get("model_performance") if isinstance(post, Mapping) else None
    ds = pre.get("dataset") if isinstance(pre, Mapping) else None
    blocks: list[Any] = []
    if isinstance(mp, Mapping):
        cm = mp.get("confusion_matrix") if isinstance(mp.get("confusion_matrix"), Mapping) else {}
        rows = [
            [[Span("rows")], [Span(_count(_finite(mp.get("rows"))))]],
            [[Span("label positive rate")], _rate_cell(mp, "label_positive_rate", pct=True)],
            [[Span("predicted positive rate")], _rate_cell(mp, "predicted_positive_rate", pct=True)],
            [
                [Span("confusion matrix")],
                [Span(" · ".join(f"{c} {_count(_finite(cm.get(c)))}" for c in ("TP", "FP", "FN", "TN")))],
            ],
        ]
        for key, name in (
            ("accuracy", "accuracy"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("false_positive_rate", "false positive rate"),
            ("roc_auc", "ROC AUC"),
        ):
            if key in mp:
                rows.append([[Span(name)], _rate_cell(mp, key)])
        blocks.append(Table(["over all rows", "value"], rows, cls="performance", widths=[2, 3], numeric=(1,)))
    elif isinstance(ds, Mapping):
        blocks.append(
            Table(
                ["over all rows", "value"],
                [
                    [[Span("rows")], [Span(_count(_finite(ds.get("rows"))))]],
                    [[Span("observed positive rate")], _rate_cell(ds, "observed_positive_rate", pct=True)],
                ],
                cls="performance",
                widths=[2, 3],
            )
        )
    if not blocks:
        return None
    return Section("Model performance" if isinstance(mp, Mapping) else "Data set", 3, blocks, cls="performance")


def build_report(
    analysis: Mapping[str, Any],
    *,
    title: str | None = None,
    config: Mapping[str, Any] | None = None,
    local_shap: Any = None,
    feature_values: Any = None,
    notes: list[str] | None = None,
    max_local_rows: int = 400,
) -> Report:
    """The report of ``analysis`` (an ``analysis.json`` document, already validated), for every
    renderer: see :func:`clarion.report.render_html` for the parameters."""
    from clarion import __version__

    if title is None:
        title = ((config or {}).get("methods", {}).get("report", {}) or {}).get("title") or "Analysis Report"
    headers = (config or {}).get("headers") if isinstance((config or {}).get("headers"), list) else None
    sections: list[Section] = []

    # summary
    warnings = model_warnings(analysis)
    disparities = [text for _, text in largest_disparities(analysis)]
    items: list[list[Span]] = [[Span("Warning: ", "warn"), Span(w)] for w in warnings]
    for text in disparities:
        items.append([Span("Largest disparity: ", "b"), Span(text)])
    shap = (analysis.get("explanations") or {}).get("kernel_shap") or {}
    for label, block in shap.items():
        g = block.get("global_shap_values", {})
        top = sorted(g.items(), key=lambda kv: -abs(kv[1]))[:3]
        if top:
            items.append([Span(f"Top features for {label}: ", "b"), Span(", ".join(f"{k} ({fmt(v)})" for k, v in top))])
    items += [[Span(n)] for n in notes or []]
    if items:
        sections.append(Section("Summary", 3, [Bullets(items)], cls="summary"))
    if config:
        sections.append(_config_section(config, analysis))
    perf = _performance_section(analysis)
    if perf is not None:
        sections.append(perf)
    if any(True for _ in _bias_sections(analysis)):
        sections.append(_legend())

    for stage, sec in _bias_sections(analysis):
        top = Section(
            STAGE_TITLES[stage],
            2,
            [
                Para(
                    [
                        Span("label "),
                        Span(str(sec.get("label")), "code"),
                        Span(", positive when "),
                        Span(str(sec.get("label_value_or_threshold")), "code"),
                        Span(
                            ". Each bar runs from the metric's ideal value (green line) to its value, coloured "
                            "by the metric's band; black whiskers are confidence intervals."
                        ),
                    ],
                    cls="muted",
                )
            ],
        )
        sections.append(top)
        for facet, entries in sec.get("facets", {}).items():
            for e in entries:
                label = facet_label(facet, e.get("value_or_threshold"), headers)
                card = Section(label, 3, [], cls="bias")
                stats = _group_stats(e)
                if stats is not None:
                    card.blocks.append(_group_table(stats, label))
                card.blocks.append(_metric_table(e.get("metrics", [])))
                curve = e.get("threshold_curve")
                if isinstance(curve, Mapping):
                    row = _curve_charts(curve)
                    if row is not None:
                        card.blocks.append(
                            Para(
                                [
                                    Span("Threshold trade-off. ", "b"),
                                    Span(
                                        "The same metrics if the model's score were cut at other thresholds "
                                        "(dashed line: the configured threshold)."
                                    ),
                                ],
                                cls="muted",
                            )
                        )
                        card.blocks.append(row)
                sections.append(card)

    if shap:
        sections.append(Section("Feature attributions (Kernel SHAP)", 2))
        for label, block in shap.items():
            g = block.get("global_shap_values", {})
            items_sorted = sorted(g.items(), key=lambda kv: -abs(kv[1]))
            names = [str(k) for k, _ in items_sorted]
            bar_shapes: list = []
            svg = bars(names, [float(v) for _, v in items_sorted], title=f"global SHAP {label}", shapes=bar_shapes)
            sections.append(
                Section(
                    f"Global importance — {label}",
                    3,
                    [
                        Para(
                            [
                                Span(
                                    "expected value (mean model output over the baseline): "
                                    f"{fmt(_num(block.get('expected_value')))}"
                                )
                            ],
                            cls="muted",
                        ),
                        Chart(svg, 560, len(names) * 24 + 10, f"global SHAP {label}", bar_shapes),
                    ],
                    cls="shap",
                )
            )
            if "global_top_shap_text" in block:  # text jobs: each text column's top units (clarion.job.text)
                from clarion.report.text import top_units_by_column

                for col, units in top_units_by_column(block["global_top_shap_text"]).items():
                    rows = [[[Span(str(u))], [Span(fmt(_num(v)))]] for u, v in units.items()]
                    table = Table(["unit", "global value"], rows, numeric=(1,))
                    sections.append(Section(f"Top units — {col}, {label}", 3, [table], cls="shap"))
        if local_shap is not None and len(local_shap):
            features = list(feature_values.columns) if feature_values is not None else list(_first_shap_names(shap))
            sections.append(_local_summary(local_shap, feature_values, max_local_rows, list(shap), features))
    pdp = (analysis.get("explanations") or {}).get("pdp") or []
    if pdp:
        grid = Section("Partial dependence", 2, grid=True)
        sections.append(grid)
        for entry in pdp:
            name = str(entry.get("feature_name"))
            if entry.get("error"):
                grid.blocks.append(Section(name, 3, [Para([Span(str(entry["error"]), "err")])]))
                continue
            xs = entry.get("feature_values", [])
            categorical = entry.get("data_type") == "categorical" or any(
                isinstance(x, (str, bool)) or x is None for x in xs
            )
            heads = entry.get("label_headers")
            pdp_shapes: list = []
            svg = line_with_distribution(
                xs,
                entry.get("model_predictions", []),
                entry.get("data_distribution"),
                series_names=[str(h) for h in heads] if isinstance(heads, list) else (),
                title=f"PDP {name}",
                categorical=categorical,
                shapes=pdp_shapes,
            )
            how = "points" if categorical else "line"
            grid.blocks.append(
                Section(
                    name,
                    3,
                    [
                        Chart(svg, 420, 220, f"PDP {name}", pdp_shapes),
                        Para(
                            [
                                Span(
                                    f"{how}: mean model output with the feature set to each value; grey: share "
                                    "of rows per value"
                                )
                            ],
                            cls="muted",
                        ),
                    ],
                    cls="pdp",
                )
            )
    return Report(
        title,
        f"clarion {__version__} · bias metrics and feature attributions, compatible with SageMaker "
        "Clarify's analysis.json",
        sections,
        warnings,
        disparities,
    )


def _first_shap_names(shap: Mapping[str, Any]) -> list[str]:
    for block in shap.values():
        return [str(k) for k in (block.get("global_shap_values") or {})]
    return []


def _local_summary(
    local_shap: Any, feature_values: Any, max_rows: int, labels: list[str], features: list[str]
) -> Section:
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    def numeric(s: Any) -> bool:  # pandas 3 string columns are not numpy dtypes
        return is_numeric_dtype(s.dtype) and not is_bool_dtype(s.dtype)

    df = local_shap.iloc[:max_rows]
    cols = [c for c in df.columns if numeric(df[c])]
    order = sorted(cols, key=lambda c: -float(np.nanmean(np.abs(df[c].to_numpy(dtype=float)))))[:12]
    values = [df[c].to_numpy(dtype=float).tolist() for c in order]
    colours = None
    if feature_values is not None:
        fv = feature_values.iloc[:max_rows]
        colours = []
        for c in order:
            bases = [f for f in fv.columns if c == f or c.startswith(f"{f}_")]
            base = max(bases, key=len) if bases else None  # "age_group_label0" is age_group's, not age's
            if base is not None and numeric(fv[base]):
                x = fv[base].to_numpy(dtype=float)
                lo, hi = np.nanmin(x), np.nanmax(x)
                colours.append(((x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)).tolist())
            else:
                colours.append([math.nan] * len(fv))
    names = [feature_label(c, labels if len(labels) == 1 else (), features) for c in order]
    if len(labels) > 1:  # several outputs: keep the output in the name
        names = [str(c) for c in order]
    shapes: list = []
    svg = strip_plot(names, values, colours, title="local SHAP summary", shapes=shapes)
    return Section(
        "Local attributions",
        3,
        [
            Para(
                [
                    Span(
                        f"one dot per record (first {len(df)}), x = its attribution; colour: feature value "
                        "from low (blue) to high (red)"
                    )
                ],
                cls="muted",
            ),
            Chart(svg, 560, len(names) * 22 + 26, "local SHAP summary", shapes),
        ],
        cls="local",
    )


_MD_CELL = re.compile(r"(?:\\.|[^|\\])*")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def _md_text(text: str) -> str:
    """Inline Markdown written by :func:`clarion.report.svg.md` back to its text."""
    import html

    return html.unescape(_MD_ESCAPE.sub(r"\1", text.replace("**", "")))


def _md_cells(line: str) -> list[str]:
    inner, pos, out = line.strip()[1:-1], 0, []
    while pos <= len(inner):
        m = _MD_CELL.match(inner, pos)
        out.append(_md_text(m.group().strip()))
        pos = m.end() + 1
    return out


def markdown_section(text: str | None) -> Section | None:
    """A Markdown section that clarion wrote (``clarion monitor``'s drift section: a ``##``
    heading, lines of text, tables) as a :class:`Section`, so that the PDF says what the Markdown
    and HTML reports say. None for no text."""
    if not text or not text.strip():
        return None
    sec: Section | None = None
    blocks: list[Any] = []
    table: list[str] = []

    def flush() -> None:
        if table:
            rows = [_md_cells(r) for r in table if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", r.strip())]
            if rows:
                blocks.append(Table(rows[0], [[[Span(c)] for c in r] for r in rows[1:]]))
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("## ") and sec is None:
            sec = Section(_md_text(line[3:]), 2, blocks)
        elif line.startswith("#"):
            blocks.append(Para([Span(_md_text(line.lstrip("#").strip()), "b")]))
        elif line.strip():
            blocks.append(
                Para([Span(_md_text(line.lstrip("- ").strip()) if line.startswith("- ") else _md_text(line))])
            )
    flush()
    if sec is None:
        sec = Section("", 2, blocks)
    return sec
