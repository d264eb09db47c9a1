"""Kernel SHAP over units of text (Clarify's ``methods.shap.text_config``).

Each text feature of a record is cut into units (tokens, sentences or paragraphs, by spaCy's blank
pipelines: rule-based, offline, no model download) and every unit is one player; the other
(tabular) features are players as in :class:`clarion.explain.KernelShap`. A unit that is absent
from a coalition is replaced by the baseline's value of its text column (Clarify's mask string,
empty by default: the unit is dropped); the text between units (spaces, newlines) is kept, so a
synthetic text is the record's text with some units replaced. The game is Clarify's:

.. math:: v(z) = g\\Big(\\sum_k \\pi_k f(h(x, b_k, z))\\Big)

with one background row per baseline row (its tabular values and its mask strings). The number
of players varies per record (N units); records with the same number of players share one
coalition plan and one weighted least-squares operator (``_kernels.coalition_plan`` and
``_kernels.wls_operator``, cached per distinct M), so the attributions of a record are
:math:`\\phi = L (y - v(0)) + c\\,(v(1) - v(0))` — the same solve as tabular Kernel SHAP, with a
per-record base value :math:`v(0)` (all units masked). The model is called on batches of
synthetic rows from several records; masking is a gather of precomputed pieces (see
``benchmarks/bench_text.py``: it costs a small fraction of any model call).
"""

from __future__ import annotations

import difflib
import re
import secrets
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from clarion import _backend, options
from clarion.explain import _kernels
from clarion.explain._kernel_shap import ShapConditioningWarning
from clarion.explain._model import prediction_function

__all__ = [
    "CLARIFY_LANGUAGES",
    "GRANULARITIES",
    "TextExplanation",
    "TextShap",
    "language_code",
    "segment",
]

#: Clarify's ``text_config.granularity`` values.
GRANULARITIES = ("token", "sentence", "paragraph")

#: Clarify's ``text_config.language`` names (analysis config) → spaCy language codes. Clarify's API
#: (``ClarifyTextConfig``) takes the ISO 639-1/639-3 codes instead; both are accepted.
CLARIFY_LANGUAGES: dict[str, str] = {
    "afrikaans": "af",
    "albanian": "sq",
    "arabic": "ar",
    "armenian": "hy",
    "basque": "eu",
    "bengali": "bn",
    "bulgarian": "bg",
    "catalan": "ca",
    "chinese": "zh",
    "croatian": "hr",
    "czech": "cs",
    "danish": "da",
    "dutch": "nl",
    "english": "en",
    "estonian": "et",
    "finnish": "fi",
    "french": "fr",
    "german": "de",
    "greek": "el",
    "gujarati": "gu",
    "hebrew": "he",
    "hindi": "hi",
    "hungarian": "hu",
    "icelandic": "is",
    "indonesian": "id",
    "irish": "ga",
    "italian": "it",
    "japanese": "ja",
    "kannada": "kn",
    "kyrgyz": "ky",
    "latvian": "lv",
    "ligurian": "lij",
    "lithuanian": "lt",
    "luxembourgish": "lb",
    "macedonian": "mk",
    "malayalam": "ml",
    "marathi": "mr",
    "multi-language": "xx",
    "nepali": "ne",
    "norwegian bokmål": "nb",
    "persian": "fa",
    "polish": "pl",
    "portuguese": "pt",
    "romanian": "ro",
    "russian": "ru",
    "sanskrit": "sa",
    "serbian": "sr",
    "setswana": "tn",
    "sinhala": "si",
    "slovak": "sk",
    "slovenian": "sl",
    "spanish": "es",
    "swedish": "sv",
    "tagalog": "tl",
    "tamil": "ta",
    "tatar": "tt",
    "telugu": "te",
    "thai": "th",
    "turkish": "tr",
    "ukrainian": "uk",
    "urdu": "ur",
    "vietnamese": "vi",
    "yoruba": "yo",
}
_CODES = frozenset(CLARIFY_LANGUAGES.values())
#: spaCy settings for languages whose default tokenizer needs a third-party package
_SPACY_CONFIG = {"vi": {"nlp": {"tokenizer": {"use_pyvi": False}}}}

MSG_LANGUAGE = "{arg}: unknown language {value!r}{hint}; use one of Clarify's names or ISO codes ({names})"
MSG_GRANULARITY = "{arg}: granularity must be one of {choices}, got {value!r}"
MSG_TEXT = "{arg}: column {col!r}, row {row}: expected text, got {value!r}"
MSG_NO_TEXT_FEATURE = "text_features: unknown column {col!r} (columns: {columns})"
MSG_BASELINE_COLUMNS = "baseline: columns {got} do not match the data's columns {want}"
MSG_SPACY = "text explanations need spaCy (pip install 'clarion[text]'); for language {code!r} spaCy said: {why}"
MSG_NO_BASELINE = (
    "baseline: required when the data has features other than text ({cols}): one or more rows with "
    "a value for every feature (a text column's value is its mask string)"
)

MSG_TOO_LONG = (
    "{where}: {M} players (units of text and tabular features) need a coalition plan of {S} x {M} "
    "and its operator, {need:,} bytes, over memory_budget ({budget:,} bytes); use a coarser "
    "granularity (sentence, paragraph), truncate the text, or raise memory_budget"
)

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")


def language_code(language: str, arg: str = "language") -> str:
    """The spaCy code of a Clarify ``text_config.language`` (a name such as ``"english"`` or
    ``"multi-language"``, or an ISO code such as ``"en"`` / ``"xx"``), case-insensitive.

    Raises
    ------
    ValueError
        An unknown language, naming ``arg`` and the closest names.
    """
    if isinstance(language, str):
        key = language.strip().lower()
        if key in CLARIFY_LANGUAGES:
            return CLARIFY_LANGUAGES[key]
        if key in _CODES:
            return key
    names = sorted(CLARIFY_LANGUAGES)
    close = difflib.get_close_matches(str(language).lower(), names + sorted(_CODES), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(MSG_LANGUAGE.format(arg=arg, value=language, hint=hint, names=", ".join(names)))


def _check_granularity(granularity: str, arg: str = "granularity") -> str:
    if granularity not in GRANULARITIES:
        raise ValueError(MSG_GRANULARITY.format(arg=arg, choices=list(GRANULARITIES), value=granularity))
    return granularity


_PIPELINES: dict[tuple[str, str], Any] = {}


def _pipeline(code: str, granularity: str) -> Any:
    """spaCy's blank pipeline of ``code`` (with a rule-based sentencizer for sentences), cached."""
    key = (code, granularity)
    nlp = _PIPELINES.get(key)
    if nlp is None:
        try:
            import spacy  # optional: clarion[text]

            nlp = spacy.blank(code, config=_SPACY_CONFIG.get(code, {}))
        except ImportError as exc:
            raise ImportError(MSG_SPACY.format(code=code, why=exc)) from exc
        if granularity == "sentence":
            nlp.add_pipe("sentencizer")
        _PIPELINES[key] = nlp
    return nlp


def segment(text: str, granularity: str = "token", language: str = "english") -> list[tuple[int, int]]:
    """The units of ``text`` as ``(start, end)`` character offsets, in order.

    * ``"token"``: spaCy's tokens of the language (words and punctuation; whitespace is not a unit);
    * ``"sentence"``: spaCy's rule-based sentencizer (punctuation-based), each sentence trimmed of
      surrounding whitespace;
    * ``"paragraph"``: text separated by blank lines (a line holding only whitespace).

    ``text[start:end]`` is the unit's text; what lies between units is kept as it is when units
    are masked.
    """
    _check_granularity(granularity)
    if granularity == "paragraph":
        spans, pos = [], 0
        for m in _PARAGRAPH_BREAK.finditer(text):
            spans.append((pos, m.start()))
            pos = m.end()
        spans.append((pos, len(text)))
        return [s for s in (_trim(text, a, b) for a, b in spans) if s is not None]
    doc = _pipeline(language_code(language), granularity)(text)
    if granularity == "token":
        return [(t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]
    return [s for s in (_trim(text, x.start_char, x.end_char) for x in doc.sents) if s is not None]


def _trim(text: str, a: int, b: int) -> tuple[int, int] | None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return (a, b) if b > a else None


class _Record:
    """One record's players: the text units of each text column (pieces to mask), then the tabular
    columns."""

    __slots__ = ("heads", "present", "tails", "units", "n_units")

    def __init__(self, texts: list[str], spans: list[list[tuple[int, int]]]):
        # text c = heads[c] + sum_j (unit_j + gap after unit_j); present[c][j] = unit_j + gap
        self.heads, self.present, self.tails, self.units = [], [], [], []
        for t, sp in zip(texts, spans):
            self.heads.append(t[: sp[0][0]] if sp else t)
            gaps = [t[sp[j][1] : sp[j + 1][0]] for j in range(len(sp) - 1)] + ([t[sp[-1][1] :]] if sp else [])
            self.tails.append(np.asarray(gaps, dtype=object))
            self.present.append(np.asarray([t[a:b] + g for (a, b), g in zip(sp, gaps)], dtype=object))
            self.units.append([(t[a:b], a) for a, b in sp])
        self.n_units = [len(sp) for sp in spans]


def _masked_texts(rec: _Record, c: int, z: np.ndarray, mask: str, absent: np.ndarray | None) -> list[str]:
    """The texts of column ``c`` for the coalitions ``z`` [R, units] (bool): present units as they
    are, absent ones replaced by ``mask`` (the gaps kept)."""
    if z.shape[1] == 0:
        return [rec.heads[c]] * z.shape[0]
    if absent is None:
        absent = mask + rec.tails[c]
    sel = np.where(z, rec.present[c][None, :], absent[None, :])
    head = rec.heads[c]
    return [head + "".join(row) for row in sel.tolist()]


class TextExplanation:
    """Local attributions of N records whose players are units of text (and tabular features).

    Attributes
    ----------
    values : list of ndarray
        One ``(M_n, D)`` array per record (``M_n`` players of record n, D explained outputs), in
        link space; each sums to ``g(f(x_n)) - expected_value[n]``.
    expected_value : ndarray, shape (N, D)
        Per-record base value ``v(0)``: every unit masked and every tabular feature from the
        background (it depends on the record through its number of units).
    players : list of list of dict
        Per record, one dict per player: ``{"feature": column, "type": "text", "text": unit text,
        "start": character offset}`` for a unit, ``{"feature": column, "type": "tabular"}`` for a
        tabular feature.
    feature_names : list of str
        The data's columns.
    text_features : list of str
        The columns explained as text.
    output_names : list or None
        Output labels (a classifier's classes) or None.
    exact : list of bool
        Per record: whether every coalition was enumerated (exact Shapley values).
    """

    def __init__(
        self,
        values: list[np.ndarray],
        expected_value: np.ndarray,
        players: list[list[dict[str, Any]]],
        feature_names: Sequence[str],
        text_features: Sequence[str],
        output_names: list[Any] | None,
        exact: list[bool],
        column_types: dict[str, str] | None = None,
    ) -> None:
        self.values = values
        self.expected_value = expected_value
        self.players = players
        self.feature_names = list(feature_names)
        self.text_features = list(text_features)
        self.output_names = output_names
        self.exact = exact
        self.column_types = dict(column_types or {})

    def __repr__(self) -> str:
        return f"TextExplanation({len(self.values)} records, features {self.feature_names})"

    def __len__(self) -> int:
        return len(self.values)

    def feature_values(self) -> np.ndarray:
        """``(N, P, D)``: per record and data column, the sum of its players' attributions (a text
        column's units summed; 0 for a text column without units)."""
        N, P = len(self.values), len(self.feature_names)
        D = self.expected_value.shape[1] if self.expected_value.ndim == 2 else 1
        out = np.zeros((N, P, D))
        col = {f: i for i, f in enumerate(self.feature_names)}
        for n, (v, pl) in enumerate(zip(self.values, self.players)):
            for j, p in enumerate(pl):
                out[n, col[p["feature"]]] += v[j]
        return out

    def top_units(
        self, agg: Literal["mean_abs", "median", "mean_sq"] = "mean_abs", max_top: int = 50
    ) -> dict[str, list[dict[str, float]]]:
        r"""Clarify's ``global_top_shap_text``: per text column and output d, the ``max_top`` unit
        texts with the largest aggregated attribution over all their occurrences in the records
        (:math:`\frac1{n_u}\sum|\phi|`, the signed median or :math:`\frac1{n_u}\sum\phi^2`, as
        ``agg``), ranked by absolute value. Returns ``{column: [ {text: value}, ... one per
        output ] }``."""
        D = self.expected_value.shape[1]
        out: dict[str, list[dict[str, float]]] = {}
        for f in self.text_features:
            occ: dict[str, list[np.ndarray]] = {}
            for v, pl in zip(self.values, self.players):
                for j, p in enumerate(pl):
                    if p["feature"] == f and p["type"] == "text":
                        occ.setdefault(p["text"], []).append(v[j])
            per_out = []
            for d in range(D):
                vals = {t: _agg(np.asarray([a[d] for a in arr]), agg) for t, arr in occ.items()}
                ranked = sorted(vals.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:max_top]
                per_out.append(dict(ranked))
            out[f] = per_out
        return out

    def to_records(self, label_names: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """One JSON object per record in the layout of Clarify's explanations of text (the online
        explainer's ``kernel_shap`` entry of a record): ``{"explanations": [ {"feature_header":
        column, "feature_type": "text" | "numerical" | "categorical", "attributions":
        [{"attribution": [one value per output], "description": {"partial_text": unit,
        "start_idx": offset}}, ...]}, ...]}`` — one entry per column, in data order; a tabular
        column has one attribution without a description."""
        out = []
        for v, pl in zip(self.values, self.players):
            by_col: dict[str, dict[str, Any]] = {}
            for f in self.feature_names:
                kind = "text" if f in self.text_features else self.column_types.get(f, "numerical")
                by_col[f] = {"feature_header": f, "feature_type": kind, "attributions": []}
            for j, p in enumerate(pl):
                a: dict[str, Any] = {"attribution": [float(x) for x in v[j]]}
                if p["type"] == "text":
                    a["description"] = {"partial_text": p["text"], "start_idx": int(p["start"])}
                by_col[p["feature"]]["attributions"].append(a)
            out.append({"explanations": list(by_col.values())})
        return out


def _agg(a: np.ndarray, agg: str) -> float:
    if a.size == 0:
        return float("nan")
    if agg == "mean_abs":
        return float(np.mean(np.abs(a)))
    if agg == "mean_sq":
        return float(np.mean(a * a))
    return float(np.median(a))


class TextShap:
    r"""Kernel SHAP attributions to units of text, for models over strings (and tabular features).

    Parameters
    ----------
    model : callable, scikit-learn estimator, Endpoint, or anything ``as_model`` accepts
        Called on batches of synthetic records: a 1-D object array of strings when the data is
        a sequence of strings, a DataFrame with the data's columns (and dtypes) when it is a
        DataFrame, else a 2-D object array. Returns ``(n,)`` or ``(n, D)`` scores.
    baseline : DataFrame, sequence of rows, str, or None
        K background rows (uniform weights; or a :class:`~clarion.explain.Baseline` with
        weights). A text column's value in a background row is the string that replaces an
        absent unit (Clarify's baseline for a text feature; e.g. ``"[MASK]"`` or ``"<UNK>"``).
        A single string: that mask for a text-only data set. None: the empty string (masked
        units are dropped, Clarify's default) — only when every feature is text.
    text_features : list of column names, optional
        Columns explained as text. Default: every column holding strings (object / string dtype)
        of a DataFrame; the single column of a sequence of strings.
    granularity : {"token", "sentence", "paragraph"}
        The unit of text (see :func:`segment`).
    language : str
        Clarify's language name or ISO code (``"english"``, ``"en"``, ``"multi-language"``...).
    num_samples : int, optional
        Coalitions per record; default ``2 M + 2048`` capped at ``2^M - 2`` (exact Shapley values
        at the cap), as :class:`KernelShap`, with M the record's number of players.
    seed : int, optional
        Seed of the coalition plans (one plan per distinct M); None draws one (``seed_``).
    link : {"identity", "logit"}
    paired : bool, default True
        Antithetic coalition pairs, as :class:`KernelShap`.
    batch_rows : int, default 8192
        Synthetic rows per model call (rows of several records share a call; a record with more
        is split over several calls).
    memory_budget : int or str, default "1GiB"
        Bytes one record's coalition plan and operator may take (``M × S`` doubles and the ``M × M``
        normal matrix). A longer text is refused with a message naming the record and its
        number of units: use a coarser granularity or truncate the text. Also the bound of the
        plan cache (one plan and operator per distinct number of players, least recently used
        evicted): records are solved as soon as their coalitions are scored, so memory holds the
        plans of the records in one model call and the cache, not one plan per record.
    """

    def __init__(
        self,
        model: Any,
        baseline: Any = None,
        *,
        text_features: Sequence[Any] | None = None,
        granularity: str = "token",
        language: str = "english",
        num_samples: int | None = None,
        seed: int | None = None,
        link: Literal["identity", "logit"] = "identity",
        paired: bool = True,
        batch_rows: int = 8192,
        memory_budget: int | str = "1GiB",
    ) -> None:
        self._predict = prediction_function(model)
        self.granularity = _check_granularity(granularity)
        self.language = language_code(language)
        if self.granularity != "paragraph":
            _pipeline(self.language, self.granularity)  # fail now when spaCy or a language package is missing
        self.num_samples = options.num_samples(num_samples) if num_samples is not None else None
        self.seed_ = secrets.randbits(63) if seed is None else options.seed(seed)
        if link not in ("identity", "logit"):
            raise ValueError(f"link must be 'identity' or 'logit', got {link!r}")
        self._link = link
        self.paired = bool(paired)
        if not isinstance(batch_rows, (int, np.integer)) or batch_rows < 1:
            raise ValueError(f"batch_rows must be a positive integer, got {batch_rows!r}")
        self.batch_rows = int(batch_rows)
        self._budget = options.byte_size(memory_budget)
        self._baseline_arg = baseline
        self._text_features_arg = None if text_features is None else list(text_features)
        try:  # the plans are host arrays: the C++ CPU kernels, or the numpy reference when forced
            impl = _backend.resolve(None, np.empty(0))
        except (ValueError, RuntimeError):  # CLARION_BACKEND=cuda: plans are built on the host anyway
            impl = "cpu"
        self._impl = "numpy" if impl == "numpy" or not _backend.has_core() else "cpu"
        self._plans: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = OrderedDict()

    # -- coalition plans ------------------------------------------------------------------------
    def _n_coalitions(self, M: int) -> int:
        """Coalitions requested for M players: ``2 M + 2048`` (or ``num_samples``), capped at
        ``2^M - 2`` (none for M < 2)."""
        if M < 2:
            return 0
        cap = 2**M - 2 if M <= 30 else 2**30
        return min(2 * M + 2**11 if self.num_samples is None else self.num_samples, cap)

    def _full_plan(self, M: int, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """The plan of M players with the all-absent and all-present coalitions appended:
        (Z [S + 2, M], L [M, S], c [M], exact)."""
        if M < 2:  # 0 or 1 player: phi = v(1) - v(0) (nothing for none)
            return np.vstack([np.zeros((1, M), bool), np.ones((1, M), bool)]), np.zeros((M, 0)), np.ones(M), True
        return self._plan(M, where)

    def _plan(self, M: int, where: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """(Z [S + 2, M] bool — the plan, then all-absent and all-present —, L [M, S], c [M],
        exact) for records of M players; cached per M, least recently used evicted beyond
        ``memory_budget``."""
        got = self._plans.get(M)
        if got is not None:
            self._plans.move_to_end(M)
        if got is None:
            S = self._n_coalitions(M)
            need = 8 * M * (2 * S + M) + S * M
            if need > self._budget:
                raise ValueError(MSG_TOO_LONG.format(where=where, M=M, S=S, need=need, budget=self._budget))
            Z, w, _ = _kernels.coalition_plan(self._impl, M, S, self.seed_, self.paired)
            L, c, status = _kernels.wls_operator(self._impl, Z, w)
            if status:
                warnings.warn(
                    f"the {Z.shape[0]} coalitions of the plan do not determine all {M} attributions of "
                    f"records with {M} players (num_samples={S}); the operator was computed by least "
                    "squares (minimum-norm solution). Increase num_samples.",
                    ShapConditioningWarning,
                    stacklevel=3,
                )
            exact = M <= 30 and Z.shape[0] == 2**M - 2
            Z = np.vstack([Z.astype(bool), np.zeros((1, M), bool), np.ones((1, M), bool)])
            got = (Z, L, c, exact)
            self._plans[M] = got
            size = lambda p: p[0].nbytes + p[1].nbytes + p[2].nbytes  # noqa: E731
            while len(self._plans) > 1 and sum(size(p) for p in self._plans.values()) > self._budget:
                self._plans.popitem(last=False)
        return got

    # -- data -----------------------------------------------------------------------------------
    def _frame(self, X: Any):
        """(values [N, P] object, columns, kind: "strings" | "frame" | "array", dtypes or None)."""
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            return X.to_numpy(dtype=object), [str(c) for c in X.columns], "frame", X.dtypes
        if isinstance(X, str):
            X = [X]
        arr = np.asarray(X, dtype=object)
        if arr.ndim == 1:
            return arr[:, None], ["text"], "strings", None
        if arr.ndim != 2:
            raise ValueError(f"X must be a sequence of strings, a 2-D array or a DataFrame, got shape {arr.shape}")
        return arr, [str(i) for i in range(arr.shape[1])], "array", None

    def _background(self, columns: list[str], text_cols: list[int]):
        """(B [K, P] object, pi [K])."""
        import pandas as pd

        b = self._baseline_arg
        weights = None
        if b is not None and hasattr(b, "weights") and hasattr(b, "data"):
            b, weights = b.data, np.asarray(b.weights, dtype=np.float64)
        if b is None or isinstance(b, str):
            tab = [columns[i] for i in range(len(columns)) if i not in text_cols]
            if tab:
                raise ValueError(MSG_NO_BASELINE.format(cols=tab))
            B = np.full((1, len(columns)), "" if b is None else b, dtype=object)
        elif isinstance(b, pd.DataFrame):
            cols = [str(c) for c in b.columns]
            if sorted(cols) != sorted(columns):
                raise ValueError(MSG_BASELINE_COLUMNS.format(got=cols, want=columns))
            B = b[[b.columns[cols.index(c)] for c in columns]].to_numpy(dtype=object)
        else:
            B = np.asarray(b, dtype=object)
            if B.ndim == 1:
                B = B[:, None] if len(columns) == 1 else B[None, :]
            if B.ndim != 2 or B.shape[1] != len(columns):
                raise ValueError(MSG_BASELINE_COLUMNS.format(got=f"{B.shape[-1]} values", want=columns))
        if B.shape[0] == 0:
            raise ValueError("baseline has no rows")
        for c in text_cols:
            for k in range(B.shape[0]):
                v = B[k, c]
                if v is None or (isinstance(v, float) and np.isnan(v)):
                    B[k, c] = ""
                elif not isinstance(v, str):
                    raise ValueError(MSG_TEXT.format(arg="baseline", col=columns[c], row=k, value=v))
        K = B.shape[0]
        pi = np.full(K, 1.0 / K) if weights is None else weights / weights.sum()
        return B, pi

    def _call(self, rows: np.ndarray, kind: str, columns: list[str], dtypes: Any, where: str) -> np.ndarray:
        import pandas as pd

        if kind == "strings":
            batch: Any = rows[:, 0]
        elif kind == "frame":
            batch = pd.DataFrame(rows, columns=list(dtypes.index))
            batch = batch.astype({c: t for c, t in dtypes.items() if getattr(t, "kind", "O") != "O"})
        else:
            batch = rows
        out = self._predict(batch, where=where)
        return np.asarray(out, dtype=np.float64).reshape(rows.shape[0], -1)

    def _g(self, v: np.ndarray) -> np.ndarray:
        if self._link == "identity":
            return v
        p = np.clip(v, 1e-15, 1 - 1e-15)
        return np.log(p / (1 - p))

    # -- explain --------------------------------------------------------------------------------
    def explain(self, X: Any, *, progress: Callable[[int, int], None] | None = None) -> TextExplanation:
        """Attributions of every record of ``X`` (a sequence of strings, a DataFrame, or a 2-D
        array of records) to its units of text and its tabular features.

        ``progress(done, total)`` is called after each model call (synthetic rows).
        """
        V, columns, kind, dtypes = self._frame(X)
        N, P = V.shape
        if self._text_features_arg is None:
            if kind == "frame":
                text_cols = [
                    i for i, t in enumerate(dtypes) if getattr(t, "kind", "O") == "O" or str(t) in ("string", "str")
                ]
            else:
                text_cols = [i for i in range(P) if all(isinstance(v, str) for v in V[:, i])]
        else:
            text_cols = []
            for f in self._text_features_arg:
                if str(f) not in columns:
                    raise ValueError(MSG_NO_TEXT_FEATURE.format(col=f, columns=columns))
                text_cols.append(columns.index(str(f)))
        text_cols = sorted(set(text_cols))
        tab_cols = [i for i in range(P) if i not in text_cols]
        B, pi = self._background(columns, text_cols)
        K = B.shape[0]

        # segment every record's texts
        records: list[_Record] = []
        for n in range(N):
            texts = []
            for c in text_cols:
                v = V[n, c]
                if not isinstance(v, str):
                    raise ValueError(MSG_TEXT.format(arg="X", col=columns[c], row=n, value=v))
                texts.append(v)
            records.append(_Record(texts, [segment(t, self.granularity, self.language) for t in texts]))

        # Per record: its plan's coalitions, then all-absent and all-present. Records are queued in
        # order into model calls of ``per_call`` coalitions; a record is solved (and its plan
        # reference and outputs dropped) as soon as its last coalition is scored, so memory holds
        # the plans of the records in flight and the cache, not one plan per record.
        Ms = [sum(rec.n_units) + len(tab_cols) for rec in records]
        total = sum(self._n_coalitions(M) + 2 for M in Ms) * K
        values: list[np.ndarray | None] = [None] * N
        bases: list[np.ndarray | None] = [None] * N
        exacts: list[bool] = [True] * N
        open_: dict[int, list[Any]] = {}  # record -> [plan, Y, rows filled]
        pending: list[tuple[int, int, int]] = []  # (record, first coalition, end coalition)
        pending_rows, done = 0, 0

        def flush() -> None:
            nonlocal pending, pending_rows, done
            if not pending:
                return
            rows = np.concatenate(
                [self._synthetic(records[n], V[n], open_[n][0][0][a:b], B, text_cols, tab_cols) for n, a, b in pending]
            )
            first, last = pending[0][0], pending[-1][0]
            F = self._call(rows, kind, columns, dtypes, f" (synthetic rows of records {first}..{last})")
            D = F.shape[1]
            F = (F.reshape(-1, K, D) * pi[None, :, None]).sum(axis=1)
            pos = 0
            for n, a, b in pending:
                st = open_[n]
                if st[1] is None:
                    st[1] = np.empty((st[0][0].shape[0], D))
                st[1][a:b] = F[pos : pos + b - a]
                st[2] += b - a
                pos += b - a
                if st[2] == st[0][0].shape[0]:  # every coalition scored: solve and let go
                    Zn, L, c, exact = st[0]
                    y = self._g(st[1])
                    v0, v1 = y[-2], y[-1]
                    values[n] = L @ (y[:-2] - v0[None, :]) + c[:, None] * (v1 - v0)[None, :]
                    bases[n], exacts[n] = v0, exact
                    del open_[n]
            done += rows.shape[0]
            if progress is not None:
                progress(done, total)
            pending, pending_rows = [], 0

        per_call = max(1, self.batch_rows // K)  # coalitions per model call
        for n, M in enumerate(Ms):
            plan = self._full_plan(M, f"record {n}")
            total += (plan[0].shape[0] - self._n_coalitions(M) - 2) * K  # the plan may merge duplicates
            open_[n] = [plan, None, 0]
            rows_n, a = plan[0].shape[0], 0
            while a < rows_n:
                b = min(rows_n, a + per_call - pending_rows)
                pending.append((n, a, b))
                pending_rows += b - a
                a = b
                if pending_rows >= per_call:
                    flush()
        flush()

        players = []
        for rec in records:
            pl: list[dict[str, Any]] = []
            for ci, c_idx in enumerate(text_cols):
                pl.extend({"feature": columns[c_idx], "type": "text", "text": t, "start": s} for t, s in rec.units[ci])
            pl.extend({"feature": columns[c_idx], "type": "tabular"} for c_idx in tab_cols)
            players.append(pl)
        D = self._predict.n_outputs or 1
        ev = np.asarray(bases).reshape(N, D) if N else np.empty((0, D))
        kinds = {}
        for i in tab_cols:
            numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in V[:, i])
            kinds[columns[i]] = "numerical" if numeric else "categorical"
        return TextExplanation(
            values, ev, players, columns, [columns[i] for i in text_cols], self._predict.output_names, exacts, kinds
        )

    __call__ = explain

    def _synthetic(
        self, rec: _Record, x: np.ndarray, Z: np.ndarray, B: np.ndarray, text_cols: list[int], tab_cols: list[int]
    ) -> np.ndarray:
        """Synthetic rows of coalitions ``Z`` [R, M] of one record: [R K, P] object, row r K + k
        from background row k."""
        R, K, P = Z.shape[0], B.shape[0], B.shape[1]
        out = np.empty((R, K, P), dtype=object)
        j = 0
        for ci, c in enumerate(text_cols):
            m = rec.n_units[ci]
            z = Z[:, j : j + m]
            j += m
            for k in range(K):
                out[:, k, c] = _masked_texts(rec, ci, z, B[k, c], None)
        for c in tab_cols:
            zc = Z[:, j][:, None]
            j += 1
            out[:, :, c] = np.where(zc, x[c], B[None, :, c])
        return out.reshape(R * K, P)
