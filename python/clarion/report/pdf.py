"""``report.pdf``: the report of :func:`clarion.report.model.build_report` as a paginated PDF.

Made with reportlab (its platypus layout engine) and svglib:

* the content is the same :class:`~clarion.report.model.Report` the HTML page renders;
* fonts are embedded: Bitstream Vera (regular, bold, italic), the TrueType family reportlab ships
  with itself, so no system font is needed and every reader shows the same glyphs (a character
  Vera lacks is replaced, see :data:`GLYPH_SUBSTITUTES`);
* tables repeat their header row on every page and split only between rows;
* charts are vector graphics: the report's own SVG charts drawn from the shapes their generator
  drew (:func:`shape_ops`, ``Chart.shapes``), else straight from their SVG (:func:`svg_ops`, as
  svglib reads it; svglib itself for an SVG beyond the report's vocabulary), so they are the
  HTML's charts, not screenshots of them;
* table cells are runs of styled text wrapped as ``Paragraph`` wraps them, and a report table is
  one flowable laid out as reportlab's ``Table`` lays it out (see :func:`render_report_pdf`);
* the pages are laid out with platypus's rules and the file written directly (``_direct_pdf``,
  :mod:`clarion.report.pdfwriter`); platypus itself (``_platypus_pdf``) is the reference, and
  the path of what that layout does not cover.

reportlab and svglib are the ``report`` extra (``pip install 'clarion[report]'``); without them
:func:`render_pdf` raises :class:`ModuleNotFoundError` saying so.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from clarion.report.model import Bullets, Chart, ChartRow, Para, Picture, Report, Section, Span, Table, build_report

__all__ = ["FONT", "GLYPH_SUBSTITUTES", "render_pdf", "render_report_pdf", "shape_ops", "svg_ops"]

#: the embedded font family's name in the PDF
FONT = "ClarionVera"
#: characters the report uses that Vera has no glyph for -> what is drawn instead
GLYPH_SUBSTITUTES = {"●": "•", "→": "->", "∈": "in", "⚠": "!", "✓": "v"}

_COLOURS = {
    "muted": "#6b7280",
    "err": "#b91c1c",
    "flag": "#b91c1c",
    "warn": "#b91c1c",
    "code": "#1f2937",
    "fine": "#1d4ed8",
    "watch": "#92400e",
    "concern": "#b91c1c",
}
_BACKS = {"fine": "#dbeafe", "watch": "#fef3c7", "concern": "#fee2e2", "code": "#f1f5f9"}


def _require() -> None:
    from clarion.report.formats import require_format

    require_format("pdf")


def _register_fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    import reportlab

    here = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    for suffix, file, bold, italic in (
        ("", "Vera.ttf", 0, 0),
        ("-Bold", "VeraBd.ttf", 1, 0),
        ("-Italic", "VeraIt.ttf", 0, 1),
        ("-BoldItalic", "VeraBI.ttf", 1, 1),
    ):
        font = TTFont(FONT + suffix, os.path.join(here, file))
        _keep_subsets(font)
        pdfmetrics.registerFont(font)
        addMapping(FONT, bold, italic, FONT + suffix)


def _keep_subsets(font: Any) -> None:
    """Make ``font`` (an embedded TrueType font) keep the subsets it writes: a subset (the glyphs
    of up to 256 characters, as reportlab's ``makeSubset`` cuts them, its widths and its ToUnicode
    map, Flate-compressed as reportlab compresses them) is the same bytes for the same characters
    in the same order, and consecutive reports use the same characters; kept per character
    sequence (the last 16 subsets, with their widths and maps). The PDF objects are reportlab's
    ``TTFont.addObjects`` and ``TTFontFace.addSubsetObjects``, with those bytes."""
    import threading
    import types
    from collections import OrderedDict

    from reportlab.pdfbase import pdfdoc
    from reportlab.pdfbase.ttfonts import FF_NONSYMBOLIC, FF_SYMBOLIC, SUBSETN, TTFont, makeToUnicodeCMap

    face = font.face
    kept: OrderedDict[tuple, Any] = OrderedDict()
    lock = threading.Lock()
    flate = pdfdoc.PDFArray([pdfdoc.PDFName(pdfdoc.PDFZCompress.pdfname)])

    class Formatted(pdfdoc.PDFObject):
        """A PDF value formatted once (a subset's widths)."""

        def __init__(self, data: bytes) -> None:
            self.data = data

        def format(self, document: Any) -> bytes:
            return self.data

    def keep(key: tuple, make: Any) -> Any:
        with lock:  # documents may be written from several threads (clarion serve)
            hit = kept.get(key)
            if hit is not None:
                kept.move_to_end(key)
                return hit
        hit = make()
        with lock:
            kept[key] = hit
            if len(kept) > 48:  # a subset font is ~20 kB compressed
                kept.popitem(last=False)
        return hit

    def stream(content: bytes, compressed: bool, **entries: Any) -> Any:
        out = pdfdoc.PDFStream()
        out.content = content
        out.dictionary.dict.update(entries)
        if compressed:  # already compressed: the filter named, not applied again
            out.dictionary["Filter"] = flate
        return out

    def add_objects(self: Any, doc: Any) -> None:
        try:
            state = self.state[doc]
        except KeyError:
            state = self.state[doc] = TTFont.State(self._asciiReadable)
        state.frozen = 1
        z = bool(doc.compression)
        for n, subset in enumerate(state.subsets):
            internalName = self.getSubsetInternalName(n, doc)[1:]
            baseFontName = b"".join((SUBSETN(n), b"+", face.name, face.subfontNameX)).decode("pdfdoc")
            pdfFont = pdfdoc.PDFTrueTypeFont()
            pdfFont.__Comment__ = f"Font {self.fontName} subset {n}"
            pdfFont.Name = internalName
            pdfFont.BaseFont = baseFontName
            pdfFont.FirstChar = 0
            pdfFont.LastChar = len(subset) - 1
            key = tuple(subset)
            widths = keep(("w", key), lambda s=subset: pdfdoc.PDFArray(list(map(face.getCharWidth, s))).format(doc))
            pdfFont.Widths = Formatted(widths)

            def cmap(name: str = baseFontName, s: list[int] = subset) -> bytes:
                text = makeToUnicodeCMap(name, s).encode("latin-1")
                return pdfdoc.PDFZCompress.encode(text) if z else text

            cmapStream = stream(keep(("u", z, baseFontName, key), cmap), z)
            pdfFont.ToUnicode = doc.Reference(cmapStream, "toUnicodeCMap:" + baseFontName)
            pdfFont.FontDescriptor = face.addSubsetObjects(doc, baseFontName, subset)
            doc.Reference(pdfFont, internalName)
            doc.idToObject["BasicFonts"].dict[internalName] = pdfFont
        del self.state[doc]

    def add_subset_objects(self: Any, doc: Any, fontname: str, subset: list[int]) -> Any:
        z = bool(doc.compression)

        def cut() -> tuple[int, bytes]:
            raw = self.makeSubset(subset)
            return len(raw), pdfdoc.PDFZCompress.encode(raw) if z else raw

        size, data = keep(("f", z, *subset), cut)
        fontFileRef = doc.Reference(stream(data, z, Length1=size), f"fontFile:{self.filename}({fontname})")
        fontDescriptor = pdfdoc.PDFDictionary(
            {
                "Type": "/FontDescriptor",
                "Ascent": self.ascent,
                "CapHeight": self.capHeight,
                "Descent": self.descent,
                "Flags": (self.flags & ~FF_NONSYMBOLIC) | FF_SYMBOLIC,
                "FontBBox": pdfdoc.PDFArray(self.bbox),
                "FontName": pdfdoc.PDFName(fontname),
                "ItalicAngle": self.italicAngle,
                "StemV": self.stemV,
                "FontFile2": fontFileRef,
                "MissingWidth": self.defaultWidth,
            }
        )
        return doc.Reference(fontDescriptor, "fontDescriptor:" + fontname)

    font.addObjects = types.MethodType(add_objects, font)
    face.addSubsetObjects = types.MethodType(add_subset_objects, face)


#: id of a font's character map -> (the map, kept alive; the characters it draws)
_DRAWN: dict[int, tuple[Any, set[str]]] = {}


class _Glyphs:
    """Replaces characters the embedded font cannot draw."""

    def __init__(self) -> None:
        from reportlab.pdfbase import pdfmetrics

        self.cmap = cmap = pdfmetrics.getFont(FONT).face.charToGlyph
        # characters the font draws (or that need no glyph): a property of the font, so kept for
        # the process (each report's renderer would otherwise check its texts' characters again)
        kept = _DRAWN.get(id(cmap))
        if kept is None or kept[0] is not cmap:
            kept = _DRAWN[id(cmap)] = (cmap, set())
        self.known: set[str] = kept[1]

    def __call__(self, text: str) -> str:
        known = self.known
        if known.issuperset(text):
            return text
        if all(ord(c) in self.cmap or c in "\n\t" for c in text):
            known.update(text)
            return text
        out = []
        for c in text:
            if ord(c) in self.cmap or c in "\n\t":
                out.append(c)
            else:
                sub = GLYPH_SUBSTITUTES.get(c, "?")
                out.append(sub if all(ord(x) in self.cmap for x in sub) else "?")
        return "".join(out)


# ---- PDF operators written directly (the content reportlab's canvas and text objects write) ------


_FP_STR: Any = None
_ESCAPE: Any = None


def _escape() -> Any:
    """reportlab's escaping of a PDF string's bytes (its C accelerator's when installed)."""
    global _ESCAPE
    if _ESCAPE is None:
        from reportlab.lib.rl_accel import escapePDF

        _ESCAPE = escapePDF
    return _ESCAPE


def _fp_str() -> Any:
    """reportlab's number formatting for PDF operators (its C accelerator's when installed)."""
    global _FP_STR
    if _FP_STR is None:
        from reportlab.lib.rl_accel import fp_str

        _FP_STR = fp_str
    return _FP_STR


#: a number -> ``fp_str`` of it: the report's coordinates repeat from page to page and report to
#: report (the columns, rows and the charts' one-decimal positions), and ``fp_str`` is ~0.4 µs a
#: call; ``fp_str(a, b, ...)`` is ``fp_str(a) + " " + fp_str(b) ...``
_FP: dict[float, str] = {}


def _fp(v: float) -> str:
    """``fp_str(v)``, kept (:data:`_FP`); use as ``_FP.get(v) or _fp(v)``."""
    s = (_FP_STR or _fp_str())(v)
    if len(_FP) > 65536:
        _FP.clear()
    _FP[v] = s
    return s


#: (a chart's scale, its height) -> the operator that puts its SVG coordinates (y down) on the page
_CM: dict[tuple[float, float], str] = {}

#: (id of a colour, operator) -> (the colour, kept alive so that its id stays its own; the
#: operator written): the report's few colours
_RG: dict[tuple[int, str], tuple[Any, str]] = {}


def _rg(colour: Any, op: str = "rg") -> str:
    """``colour`` (an RGB reportlab colour, opaque: the report's) as its PDF fill (``rg``) or
    stroke (``RG``) operator, as reportlab's ``setFillColor`` / ``setStrokeColor`` write it."""
    got = _RG.get((id(colour), op))
    if got is not None and got[0] is colour:
        return got[1]
    text = f"{(_FP_STR or _fp_str())(colour.red, colour.green, colour.blue)} {op}"
    if len(_RG) > 4096:
        _RG.clear()
    _RG[(id(colour), op)] = (colour, text)
    return text


class _Ink:
    """One document's text as PDF text operators, encoded as reportlab's text objects encode a
    TrueType font's text: each character's code assigned in the font's subsets of this document
    (``splitString``, the same state), so the subset fonts reportlab embeds when it saves the file
    have every glyph drawn. Printable ASCII, which reportlab's "ASCII readable" subsets code as
    itself, is written without the per-character loop; a string's operators are kept for the
    document (a report repeats most of its strings)."""

    def __init__(self, doc: Any) -> None:
        from reportlab.lib.rl_accel import escapePDF

        self.doc = doc
        self.escape = escapePDF
        self.fonts: dict[str, tuple[Any, dict[int, str], bool, dict[str, list[tuple[int, str]]]]] = {}
        self.plains: dict[tuple[str, float], Any] = {}

    def plain(self, name: str, size: float) -> Any:
        """``(state key, Tf operator)`` of subset 0 of font ``name`` at ``size`` where the font codes
        printable ASCII as itself (such text is written as it is), else False."""
        got = self.plains.get((name, size))
        if got is None:
            font, names, same, _ = self.fonts.get(name) or self._font(name)
            got = False
            if same:
                iname = names.get(0)
                if iname is None:
                    iname = names[0] = font.getSubsetInternalName(0, self.doc)
                got = ((name, size, 0), f"{iname} {(_FP_STR or _fp_str())(size)} Tf")
            self.plains[(name, size)] = got
        return got

    def _font(self, name: str) -> tuple[Any, dict[int, str], bool, dict[str, list[tuple[int, str]]]]:
        from reportlab.pdfbase import pdfmetrics

        font = pdfmetrics.getFont(name)
        state = font._assignState(self.doc)
        # printable ASCII coded as itself in subset 0 (reportlab's ``ttfAsciiReadable``)
        same = all(state.assignments.get(c) == c for c in range(32, 127))
        entry = self.fonts[name] = (font, {}, same, {})
        return entry

    def show(self, out: list[str], name: str, size: float, text: str, state: list[Any]) -> None:
        """Append ``text`` in font ``name`` at ``size`` to ``out`` (the body of a text object):
        ``Tf`` where the font, size or subset changes (``state[0]``), then ``Tj``."""
        entry = self.fonts.get(name)
        if entry is None:
            entry = self._font(name)
        font, names, same, known = entry
        segments = known.get(text)
        if segments is None:
            if same and text.isascii() and text.isprintable():
                segments = [(0, f"({self.escape(text.encode('ascii'))}) Tj")]
            else:
                segments = [(k, f"({self.escape(b)}) Tj") for k, b in font.splitString(text, self.doc)]
            known[text] = segments
        for subset, op in segments:
            key = (name, size, subset)
            if key != state[0]:
                iname = names.get(subset)
                if iname is None:
                    iname = names[subset] = font.getSubsetInternalName(subset, self.doc)
                out.append(f"{iname} {(_FP_STR or _fp_str())(size)} Tf")
                state[0] = key
            out.append(op)


def _ink(canv: Any) -> _Ink:
    """The text encoder of ``canv``'s document (made on first use)."""
    ink = getattr(canv, "_clarion_ink", None)
    if ink is None or ink.doc is not canv._doc:
        ink = _Ink(canv._doc)
        canv._clarion_ink = ink
    return ink


# ---- fast text: runs of styled text, wrapped, split and drawn as reportlab's Paragraph does -------------

_SPACE_SHRINK = 0.05  # reportlab's ``spaceShrinkage``: a line may overrun by 5% of its spaces


def _flowable_base() -> type:
    from reportlab.platypus.flowables import Flowable

    return Flowable


class _Word(list):
    """A word's pieces; ``space``: the run the space before it is drawn in."""

    space: Any = None


class _Run:
    """A piece of text in one font and colour (``back``: a chip's background)."""

    __slots__ = ("back", "colour", "font", "text")

    def __init__(self, text: str, font: str, colour: Any, back: Any = None) -> None:
        self.text, self.font, self.colour, self.back = text, font, colour, back


def _text_class() -> type:
    """:class:`_Text` is made on first use: its base class is reportlab's (an optional dependency)."""
    global _TEXT_CLASS
    if _TEXT_CLASS is None:
        _TEXT_CLASS = _make_text_class(_flowable_base())
        _TEXT_CLASS.own_draw = _TEXT_CLASS.draw  # the draw the direct writer mirrors
    return _TEXT_CLASS


_TEXT_CLASS: type | None = None
_CHART_CLASS: type | None = None


def _make_text_class(base: type) -> type:
    from reportlab.lib.rl_accel import fp_str
    from reportlab.pdfbase.pdfmetrics import stringWidth

    widths: dict[tuple[str, str, float], float] = {}
    broken: dict[tuple, tuple[list[list[tuple[int, str]]], tuple[float, ...]]] = {}  # text -> its lines

    def width(text: str, font: str, size: float) -> float:
        key = (text, font, size)
        w = widths.get(key)
        if w is None:
            if len(widths) > 50_000:
                widths.clear()
            w = widths[key] = stringWidth(text, font, size)
        return w

    class _Text(base):  # type: ignore[misc, valid-type]
        """A paragraph or a table cell: runs of styled text (bold, colours, chips, line breaks)
        wrapped greedily at spaces as reportlab's ``Paragraph`` wraps them (same space shrinkage,
        long words split, overrunning lines' spaces shrunk), split at a page's foot as it splits
        (no orphans), drawn into a text object; no markup to parse, so a text costs a few string
        widths (cached) and one text run per style change."""

        def __init__(
            self, runs: list[_Run | None], size: float, leading: float, before: float = 0.0, after: float = 0.0
        ) -> None:
            super().__init__()
            self.runs, self.size, self.leading = runs, size, leading
            self.backs = any(r is not None and r.back is not None for r in runs)  # chips
            self.spaceBefore, self.spaceAfter = before, after
            self._aw = -1.0
            self.lines: list[list[tuple[_Run, str]]] = []
            self.squeeze: list[float] = []

        def _words(self) -> list[Any]:
            """Words (lists of (run, text) pieces: a word may change style mid-way), None = break;
            each word's ``space``: the run the space before it is drawn in, as Paragraph draws it
            (the run the space is in; a run of spaces only: the run of the text before it)."""
            words: list[Any] = []
            cur: _Word = _Word()
            space = None
            last = None  # the run of the last piece of text
            for r in self.runs:
                if r is None:
                    if cur:
                        words.append(cur)
                    words.append(None)
                    cur, space = _Word(), None
                    continue
                text = r.text
                parts = text.split()
                here = r if parts else last
                if text[:1].isspace():
                    if cur:
                        words.append(cur)
                        cur = _Word()
                    space = here
                for k, part in enumerate(parts):
                    if k:
                        if cur:
                            words.append(cur)
                            cur = _Word()
                        space = r
                    if not cur:
                        cur.space = space
                    cur.append((r, part))
                    last = r
                if text[-1:].isspace():
                    if cur:
                        words.append(cur)
                        cur = _Word()
                    space = here
            if cur:
                words.append(cur)
            return words

        def _split_long(self, word: list[tuple[_Run, str]], room: float, max_w: float) -> list[Any]:
            """A word wider than the column, cut into pieces that fit (the first into ``room``)."""
            out, cur, cur_w, limit = [], [], 0.0, room
            for run, text in word:
                piece = ""
                for ch in text:
                    w = width(ch, run.font, self.size)
                    if cur_w + w > limit and (cur or piece):
                        if piece:
                            cur.append((run, piece))
                        out.append(cur)
                        cur, piece, cur_w, limit = [], "", 0.0, max_w
                    piece += ch
                    cur_w += w
                if piece:
                    cur.append((run, piece))
            if cur:
                out.append(cur)
            if out:  # the first piece keeps the space before the word (its run, its width)
                first = _Word(out[0])
                first.space = getattr(word, "space", None)
                out[0] = first
            return out

        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            if aw != self._aw:
                self._aw = aw
                self.lines = self._break(aw)
            self.width, self.height = aw, len(self.lines) * self.leading
            return self.width, self.height

        def split(self, aw: float, ah: float) -> list[Any]:
            """At a page's foot: the lines that fit and the rest, as ``Paragraph`` splits (no
            orphan: at least two lines stay, else the whole text moves on; widows allowed)."""
            if not self.runs or aw < 1e-8 or ah < 1e-8:
                return []
            self.wrap(aw, ah)
            fit = int(ah / self.leading)
            if fit <= 1:
                return []
            if len(self.lines) <= fit:
                return [self]
            parts = []
            for part in (slice(0, fit), slice(fit, None)):
                t = _Text(self.runs, self.size, self.leading, self.spaceBefore, self.spaceAfter)
                t._aw, t.lines, t.squeeze = aw, self.lines[part], self.squeeze[part]
                parts.append(t)
            return parts

        def _break(self, max_w: float) -> list[list[tuple[_Run, str]]]:
            size = self.size
            runs = self.runs
            if len(runs) % 2 and None not in runs[::2] and runs[1::2].count(None) == len(runs) // 2:
                # one run per line (most cells: a value, a value and its band below it): no break
                # where each fits, as wide as its words and single spaces (Paragraph's sum)
                fast = [[(r, r.text)] for r in runs[::2]]
                for ((r, t),) in fast:
                    if not (t and width(t, r.font, size) <= max_w - 1e-6 and " ".join(t.split()) == t):
                        break
                else:
                    self.squeeze = [0.0] * len(fast)
                    return fast
            # the same texts (the legends, repeated headings) break the same way: kept by content
            key = (size, max_w, *((None if r is None else (r.text, r.font)) for r in runs))
            hit = broken.get(key)
            if hit is not None:
                self.squeeze = list(hit[1])
                return [[(runs[k], t) for k, t in line] for line in hit[0]]
            lines = self._break_words(max_w)
            index = {id(r): k for k, r in enumerate(runs)}
            if len(broken) > 4096:
                broken.clear()
            broken[key] = ([[(index[id(r)], t) for r, t in line] for line in lines], tuple(self.squeeze))
            return lines

        def _break_words(self, max_w: float) -> list[list[tuple[_Run, str]]]:
            size = self.size
            lines: list[list[tuple[_Run, str]]] = []
            self.squeeze = squeeze = []  # per line: its word space, < 0 where it overruns
            line: list[Any] = []  # words

            def close(line: list[Any], cur: float) -> None:
                lines.append([p for w in line for p in w])
                gaps = len(line) // 2  # words and the spaces between them
                squeeze.append((max_w - cur) / gaps if cur > max_w + 1e-8 and gaps else 0.0)

            cur = 0.0
            spaces = 0.0  # the widths of the spaces on the line
            words = self._words()
            i = 0
            while i < len(words):
                word = words[i]
                i += 1
                if word is None:
                    close(line, cur)
                    line, cur, spaces = [], 0.0, 0.0
                    continue
                ww = sum(width(t, r.font, size) for r, t in word)
                # the space before the word, in the font of the run it is in (Paragraph measures a
                # space that starts a run in that run's font, not in the previous word's)
                sw = width(" ", (getattr(word, "space", None) or line[-1][-1][0]).font, size) if line else 0.0
                new = cur + sw + ww
                if line and new > max_w + _SPACE_SHRINK * (spaces + sw):
                    if ww > max_w:  # a long word: its first piece fills this line (as Paragraph's)
                        space = getattr(word, "space", None)  # the split fills the room after
                        room = max_w - cur - (width(" ", space.font, size) if space is not None else sw)
                        if width(word[0][1][0], word[0][0].font, size) <= room:
                            words[i - 1 : i] = self._split_long(word, room, max_w)
                            i -= 1
                            continue
                        close(line, cur)  # not one letter fits: next line
                        line, cur, spaces = [], 0.0, 0.0
                        words[i - 1 : i] = self._split_long(word, max_w, max_w)
                        i -= 1
                        continue
                    close(line, cur)
                    line, cur, spaces = [word], ww, 0.0
                    continue
                if not line and ww > max_w:
                    pieces = self._split_long(word, max_w, max_w)
                    if len(pieces) > 1:
                        words[i - 1 : i] = pieces
                        i -= 1
                        continue
                if line:
                    line.append([(getattr(word, "space", None) or line[-1][-1][0], " ")])
                    spaces += sw
                line.append(word)
                cur = new
            if line:
                close(line, cur)
            if not any(words):  # no text: no lines (an empty Paragraph is 0 high)
                lines.clear()
                squeeze.clear()
            return lines

        def emit(self, canv: Any, out: list[str], x0: float, y0: float, state: list[Any], ink: _Ink) -> None:
            """Draw at ``(x0, y0)`` (the box's bottom left): the text's operators appended to
            ``out`` (the body of one PDF text object, ``BT`` ... ``ET``), the chips' backgrounds
            straight onto ``canv`` (under the text, which is drawn when ``out`` is); ``state``:
            ``[font, colour]`` last set in ``out``, kept up to date; ``ink``: the document's text
            encoder (:class:`_Ink`)."""
            size, leading = self.size, self.leading
            top = y0 + self.height - size  # the first baseline one font size down, as Paragraph's
            add = out.append
            show = ink.show
            backs = self.backs
            for n, line in enumerate(self.lines):
                y = top - n * leading
                if backs and any(r.back is not None for r, _ in line):
                    x = x0
                    for r, t in line:  # a chip's background, as canvas.setFillColor + rect draw it
                        w = width(t, r.font, size)
                        if r.back is not None and t != " ":
                            canv._code.append(f"{_rg(r.back)} n {fp_str(x, y + size - leading, w, leading)} re f*")
                        x += w
                add(f"1 0 0 1 {_FP.get(x0) or _fp(x0)} {_FP.get(y) or _fp(y)} Tm")
                squeeze = self.squeeze[n]
                if squeeze:  # an overrunning line's spaces shrink to fit, as Paragraph draws it
                    add(f"{fp_str(squeeze)} Tw")
                if len(line) == 1:  # one piece (most lines)
                    r, t = line[0]
                    if r.colour is not state[1]:
                        add(_rg(r.colour))
                        state[1] = r.colour
                    show(out, r.font, size, t, state)
                    continue
                k = 0
                while k < len(line):  # runs of one style together, one string each
                    r = line[k][0]
                    j = k + 1
                    while j < len(line) and line[j][0].font == r.font and line[j][0].colour is r.colour:
                        j += 1
                    if r.colour is not state[1]:
                        add(_rg(r.colour))
                        state[1] = r.colour
                    show(out, r.font, size, "".join(t for _, t in line[k:j]) if j - k > 1 else line[k][1], state)
                    k = j
                if squeeze:
                    add("0 Tw")

        def draw(self) -> None:
            out: list[str] = ["BT 1 0 0 1 0 0 Tm"]  # as reportlab's beginText(0, 0) starts it
            self.emit(self.canv, out, 0, 0, [None, None], _ink(self.canv))
            out.append("ET")
            self.canv._code.append(" ".join(out))

    _Text.measure = staticmethod(width)  # a string's width (kept), for the direct writer's cells
    return _Text


# ---- fast charts: the report's own SVG vocabulary drawn straight onto the page --------------------

#: SVG user units (CSS pixels) -> PDF points, as svglib converts them
_PX = 0.75
_TAG = re.compile(r"<(/?)([A-Za-z]+)((?:\s+[\w:-]+=\"[^\"]*\")*)\s*(/?)>|([^<]+)")
_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PATH_TOKEN = re.compile(r"[MmLlHhVvZz]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INHERITED = ("fill", "stroke", "stroke-width", "stroke-dasharray", "font-size", "font-weight", "text-anchor")
_SHAPES = {"rect", "line", "path", "circle", "polyline"}
#: the attributes the fast converter reads (``opacity`` svglib ignores too; labels and classes do
#: not draw); any other attribute (``style``, ``transform``, ``fill-opacity``...) -> svglib
_KNOWN = {
    *_INHERITED,
    *("x", "y", "width", "height", "x1", "y1", "x2", "y2", "cx", "cy", "r", "points", "d"),
    *("class", "role", "aria-label", "viewBox", "opacity", "xmlns"),
}


#: (a rect's or solid line's kind, numbers, stroked, filled) -> its path operators (the chart painter's)
_SHAPE_PATHS: dict[tuple, str] = {}
#: (a shape's tag as written, its inherited style) -> its ops (svg_ops' reading of it)
_SHAPE_OPS: dict[tuple[str, tuple], tuple[tuple, ...]] = {}


class _Unsupported(ValueError):
    """An SVG the fast converter does not cover (svglib converts it instead)."""


_COLOURS_CACHE: dict[str, Any] = {}


def _colour(value: str | None) -> Any:
    """An SVG paint -> a reportlab colour (None for ``none``), as svglib reads it."""
    if value is None or value == "none":
        return None
    c = _COLOURS_CACHE.get(value)
    if c is None:
        from reportlab.lib import colors

        v = value.strip()
        if re.fullmatch(r"#[0-9a-fA-F]{6}", v):
            c = colors.HexColor(v)
        elif re.fullmatch(r"#[0-9a-fA-F]{3}", v):
            c = colors.HexColor("#" + "".join(ch * 2 for ch in v[1:]))
        elif m := re.fullmatch(r"rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)", v):
            c = colors.Color(*(int(m.group(k)) / 255 for k in (1, 2, 3)))
        elif v in ("black", "white"):
            c = colors.black if v == "black" else colors.white
        else:
            raise _Unsupported(f"colour {value!r}")
        if len(_COLOURS_CACHE) > 4096:
            _COLOURS_CACHE.clear()
        _COLOURS_CACHE[value] = c
    return c


def _path_points(d: str) -> tuple[list[tuple[str, float, float]], bool]:
    """A path's ``d`` (M, L, H, V, Z; absolute or relative) -> absolute (op, x, y), closed."""
    toks = _PATH_TOKEN.findall(d)
    out: list[tuple[str, float, float]] = []
    x = y = x0 = y0 = 0.0
    cmd = ""
    closed = False
    k = 0
    while k < len(toks):
        t = toks[k]
        if t.isalpha():
            cmd = t
            k += 1
            if cmd in "Zz":
                closed = True
                x, y = x0, y0
            continue
        if cmd in "MmLl":
            dx, dy = float(toks[k]), float(toks[k + 1])
            k += 2
            rel = cmd.islower() and bool(out)
            x, y = (x + dx, y + dy) if rel else (dx, dy)
            if cmd in "Mm":
                out.append(("M", x, y))
                x0, y0 = x, y
                cmd = "l" if cmd == "m" else "L"  # pairs after a moveto are linetos
            else:
                out.append(("L", x, y))
        elif cmd in "HhVv":
            v = float(t)
            k += 1
            if cmd == "H":
                x = v
            elif cmd == "h":
                x += v
            elif cmd == "V":
                y = v
            else:
                y += v
            out.append(("L", x, y))
        else:
            raise _Unsupported(f"path {d!r}")
    return out, closed


#: a tag's text between ``<`` and ``>`` -> its reading by :data:`_TAG` (closing, name, attributes,
#: empty, the tag as written): the report's charts repeat most of their tags
_TAGS: dict[str, tuple[str, str, str, str, str]] = {}


def _tokens(svg: str) -> list[tuple[Any, Any, Any, Any, Any, Any]]:
    """``svg`` as :data:`_TAG` reads it: per tag ``(closing, name, attributes, empty, None, the
    tag as written)``, per text between tags ``(None, None, None, None, text, None)``. Cut at
    ``<`` and ``>`` (a tag's reading kept by its text); an SVG with a ``<`` that does not open a
    tag :data:`_TAG` reads, or a ``>`` inside an attribute, is read by the expression itself."""
    pieces = svg.split("<")
    out: list[tuple[Any, Any, Any, Any, Any, Any]] = []
    if pieces[0]:
        out.append((None, None, None, None, pieces[0], None))
    for piece in pieces[1:]:
        head, gt, chars = piece.partition(">")
        got = _TAGS.get(head)
        if got is None:
            m = _TAG.fullmatch(f"<{head}>") if gt else None
            if m is None:  # not a tag as the expression reads it: its reading, whole
                return [(*m.groups(), m.group(0) if m.group(2) else None) for m in _TAG.finditer(svg)]
            if len(_TAGS) > 20_000:
                _TAGS.clear()
            got = _TAGS[head] = (*m.groups()[:4], m.group(0))
        out.append((got[0], got[1], got[2], got[3], None, got[4]))
        if chars:
            out.append((None, None, None, None, chars, None))
    return out


def svg_ops(svg: str) -> tuple[float, float, list[tuple]]:
    """The report's SVG chart as ``(width, height, ops)`` in SVG units (y down): ``("rect", x, y, w,
    h, fill, stroke, stroke_width, dash)``, ``("line", x1, y1, x2, y2, stroke, stroke_width, dash)``,
    ``("poly", points, fill, stroke, stroke_width, dash, closed)`` (polylines and paths; points are
    ``(op, x, y)``), ``("circle", cx, cy, r, fill, stroke, stroke_width, dash)``, ``("text", x, y,
    text, anchor, bold, size, fill)``; styles inherited from ``<g>`` as svglib inherits them, SVG's
    defaults (black fill, no stroke, width 1). Raises :class:`_Unsupported` for anything else."""
    stack: list[dict[str, str]] = [{}]
    keys: list[tuple] = [()]  # the inherited styles of ``stack``, as keys of :data:`_SHAPE_OPS`
    ops: list[tuple] = []
    size: tuple[float, float] | None = None
    text_at: tuple[dict[str, str], list[str]] | None = None
    skip = 0  # inside <title>
    for closing, tag, attrs, empty, chars, whole in _tokens(svg):
        if chars is not None:
            if text_at is not None and not skip:
                text_at[1].append(chars)
            elif chars.strip() and not skip:
                raise _Unsupported("text outside <text>")
            continue
        if closing:
            if tag == "title":
                skip -= 1
            elif tag == "g":
                stack.pop()
                keys.pop()
            elif tag == "text":
                if text_at is None:
                    raise _Unsupported("</text>")
                a, chunks = text_at
                text = _text_of("".join(chunks))
                if text:
                    weight = a.get("font-weight", "normal")
                    ops.append(
                        (
                            "text",
                            float(a.get("x", 0)),
                            float(a.get("y", 0)),
                            text,
                            a.get("text-anchor", "start"),
                            weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 600),
                            float(a.get("font-size", 12)),
                            _colour(a.get("fill", "black")),
                        )
                    )
                text_at = None
            continue
        if tag in _SHAPES and size is not None and not skip and text_at is None:
            key = (whole, keys[-1])  # a shape (its tag as written, in its inherited style)
            hit = _SHAPE_OPS.get(key)
            if hit is not None:
                ops.extend(hit)
                continue
            made = len(ops)
        else:
            key = None
        a = dict(_ATTR.findall(attrs))
        if not a.keys() <= _KNOWN:
            raise _Unsupported(f"<{tag}> attributes {sorted(a.keys() - _KNOWN)}")
        if tag == "title":
            if not empty:
                skip += 1
            continue
        if skip or text_at is not None:
            raise _Unsupported(f"<{tag}> inside <title> or <text>")
        if tag == "svg":
            if size is not None:
                raise _Unsupported("nested <svg>")
            w, h = float(a["width"]), float(a["height"])
            box = a.get("viewBox")
            if box is not None and [float(v) for v in box.replace(",", " ").split()] != [0, 0, w, h]:
                raise _Unsupported(f"viewBox {box!r}")
            size = (w, h)
            continue
        if size is None:
            raise _Unsupported(f"<{tag}> before <svg>")
        style = {**stack[-1], **{k: v for k, v in a.items() if k in _INHERITED}}
        if tag == "g":
            if not empty:
                stack.append(style)
                keys.append(tuple(sorted(style.items())))
            continue
        if tag == "text":
            if empty:
                continue
            text_at = ({**style, **a}, [])
            continue
        if tag not in _SHAPES:
            raise _Unsupported(f"<{tag}>")
        fill = _colour(style.get("fill", "black"))
        stroke = _colour(style.get("stroke"))
        sw = float(style.get("stroke-width", 1))
        dash_s = style.get("stroke-dasharray", "none")
        dash = None if dash_s == "none" else [float(v) for v in _NUM.findall(dash_s)]
        if tag == "rect":
            ops.append(
                ("rect", float(a["x"]), float(a["y"]), float(a["width"]), float(a["height"]), fill, stroke, sw, dash)
            )
        elif tag == "line":
            ops.append(("line", float(a["x1"]), float(a["y1"]), float(a["x2"]), float(a["y2"]), stroke, sw, dash))
        elif tag == "circle":
            ops.append(("circle", float(a["cx"]), float(a["cy"]), float(a["r"]), fill, stroke, sw, dash))
        elif tag == "polyline":
            v = [float(t) for t in _NUM.findall(a.get("points", ""))]
            pts = [("M" if k == 0 else "L", v[k], v[k + 1]) for k in range(0, len(v) - 1, 2)]
            if pts:
                ops.append(("poly", pts, fill, stroke, sw, dash, False))
        else:  # path
            pts, closed = _path_points(a.get("d", ""))
            if pts:
                ops.append(("poly", pts, fill, stroke, sw, dash, closed))
        if key is not None:  # the same shape reads the same (the bands and axes of a metric repeat)
            if len(_SHAPE_OPS) > 20_000:
                _SHAPE_OPS.clear()
            _SHAPE_OPS[key] = tuple(ops[made:])
    if size is None or text_at is not None or skip or len(stack) != 1:
        raise _Unsupported("unbalanced SVG")
    return size[0], size[1], ops


def _text_of(chunks: str) -> str:
    """A ``<text>`` element's characters as :func:`svg_ops` reads them: entities decoded, line
    breaks and tabs as spaces, runs of spaces as one, trimmed."""
    text = html.unescape(chunks).replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    text = text.strip()
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def shape_ops(shapes: list) -> tuple[float, float, list[tuple]] | None:
    """A chart's shapes, as its generator drew them (:mod:`clarion.report.svg`), as :func:`svg_ops`
    reads its SVG: the paints as reportlab colours, the texts as read. None where the shapes are
    not what the SVG reads (a number that is not finite: ``float`` of its text may not be it; a
    paint ``svg_ops`` does not read) or are malformed: the SVG is then read as before."""
    colours = _COLOURS_CACHE
    try:
        kind, w, h = shapes[0]
        if kind != "svg" or not math.isfinite(w + h):
            return None
        ops: list[tuple] = []
        add = ops.append
        for s in shapes[1:]:
            kind = s[0]
            dash = None
            if kind == "rect":
                _, x, y, ww, hh, fill, stroke, sw, dash = s
                if not math.isfinite(x + y + ww + hh + sw):
                    return None
                fill = colours.get(fill) or _colour(fill)
                stroke = None if stroke is None else colours.get(stroke) or _colour(stroke)
                add(("rect", x, y, ww, hh, fill, stroke, sw, dash))
            elif kind == "line":
                _, x1, y1, x2, y2, stroke, sw, dash = s
                if not math.isfinite(x1 + y1 + x2 + y2 + sw):
                    return None
                add(
                    (
                        "line",
                        x1,
                        y1,
                        x2,
                        y2,
                        None if stroke is None else colours.get(stroke) or _colour(stroke),
                        sw,
                        dash,
                    )
                )
            elif kind == "circle":
                _, cx, cy, r, fill, stroke, sw, dash = s
                if not math.isfinite(cx + cy + r + sw):
                    return None
                fill = colours.get(fill) or _colour(fill)
                stroke = None if stroke is None else colours.get(stroke) or _colour(stroke)
                add(("circle", cx, cy, r, fill, stroke, sw, dash))
            elif kind == "poly":
                _, pts, fill, stroke, sw, dash, closed = s
                if not math.isfinite(sum(x + y for _, x, y in pts) + sw):
                    return None
                fill = None if fill is None else colours.get(fill) or _colour(fill)
                stroke = None if stroke is None else colours.get(stroke) or _colour(stroke)
                if pts:
                    add(("poly", pts, fill, stroke, sw, dash, closed))
            elif kind == "text":
                _, x, y, chunks, anchor, bold, size, fill = s
                if not math.isfinite(x + y + size):
                    return None
                text = _text_of(chunks)
                if text:
                    add(("text", x, y, text, anchor, bold, size, colours.get(fill) or _colour(fill)))
            else:
                return None
            if dash is not None and not math.isfinite(sum(dash)):
                return None
    except (_Unsupported, TypeError, ValueError):
        return None
    return w, h, ops


_KAPPA = 0.5522847498307936  # a quarter circle's Bézier control distance (4/3 (sqrt 2 - 1)), radius 1


def _dot(cx: float, cy: float, r: float, paint: str = "f*") -> str:
    """A circle as PDF path operators: the four Bézier quarters reportlab's ``circle`` draws
    (from the rightmost point, counter-clockwise), painted with ``paint`` (filled even-odd, as it
    fills, by default)."""
    k = _KAPPA * r
    a, b, c, d = cx + r, cx - r, cy + r, cy - r
    return (
        f"n {a:.3f} {cy:.3f} m {a:.3f} {cy + k:.3f} {cx + k:.3f} {c:.3f} {cx:.3f} {c:.3f} c "
        f"{cx - k:.3f} {c:.3f} {b:.3f} {cy + k:.3f} {b:.3f} {cy:.3f} c "
        f"{b:.3f} {cy - k:.3f} {cx - k:.3f} {d:.3f} {cx:.3f} {d:.3f} c "
        f"{cx + k:.3f} {d:.3f} {a:.3f} {cy - k:.3f} {a:.3f} {cy:.3f} c {paint}"
    )


#: (stroke, fill, non-zero winding) -> the operator that paints a path (reportlab's ``PATH_OPS``)
_PATH_OPS = {(0, 0, 0): "n", (0, 0, 1): "n", (1, 0, 0): "S", (1, 0, 1): "S", (0, 1, 0): "f*", (0, 1, 1): "f"}
_PATH_OPS.update({(1, 1, 0): "B*", (1, 1, 1): "B"})


def _chart_class() -> type:
    global _CHART_CLASS
    if _CHART_CLASS is None:
        _CHART_CLASS = _make_chart_class(_flowable_base())
        _CHART_CLASS.own_draw = _CHART_CLASS.draw
    return _CHART_CLASS


def _make_chart_class(base: type) -> type:
    from reportlab.lib.rl_accel import fp_str
    from reportlab.pdfbase.pdfmetrics import stringWidth

    class _SvgChart(base):  # type: ignore[misc, valid-type]
        """One of the report's SVG charts as vector graphics: the ops of :func:`svg_ops` drawn in
        the SVG's own coordinates (scaled px -> pt and to ``scale``), text in the embedded font."""

        def __init__(self, w: float, h: float, ops: list[tuple], scale: float, glyphs: Any) -> None:
            super().__init__()
            self.ops, self.k, self.glyphs = ops, _PX * scale, glyphs
            self.width, self.height = w * self.k, h * self.k

        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            return self.width, self.height

        def draw_at(self, c: Any, x: float, y: float) -> None:
            """``drawOn(c, x, y)``: the operators its save, translate, draw and restore write."""
            c._code.append(f"q 1 0 0 1 {_FP.get(x) or _fp(x)} {_FP.get(y) or _fp(y)} cm")
            self.paint(c)
            c._code.append("Q")

        def draw(self) -> None:
            self.paint(self.canv)

        def paint(self, c: Any) -> None:
            add = c._code.append  # the operators reportlab's canvas calls write, written directly
            add("q")
            key = (self.k, self.height)  # SVG coordinates: y down
            cm = _CM.get(key)
            if cm is None:
                if len(_CM) > 4096:
                    _CM.clear()
                cm = _CM[key] = f"{fp_str(self.k, 0, 0, -self.k, 0, self.height)} cm"
            add(cm)
            fill_c = stroke_c = width = dash = None
            texts = []
            for op in self.ops:
                kind = op[0]
                if kind == "text":
                    texts.append(op)
                    continue
                if kind == "line":
                    _, x1, y1, x2, y2, stroke, sw, d = op
                    if stroke is None:
                        continue
                    fill = None
                else:
                    fill, stroke, sw, d = op[-4:] if kind != "poly" else op[2:6]
                if fill is not None and fill is not fill_c:
                    add(_rg(fill))
                    fill_c = fill
                if stroke is not None:
                    if stroke is not stroke_c:
                        add(_rg(stroke, "RG"))
                        stroke_c = stroke
                    if sw != width:
                        add(f"{fp_str(sw)} w")
                        width = sw
                    if d != dash:
                        add(f"[{fp_str(d or [])}] 0 d")
                        dash = d
                s, f = int(stroke is not None), int(fill is not None)
                if kind == "rect" or kind == "line":
                    # a band's or an axis' path repeats in every chart of its kind: kept (by what
                    # the path is made of: its numbers and paint, not the op's colours, whose
                    # hashing is Python code)
                    key = (kind, op[1], op[2], op[3], op[4], s, f)
                    path = _SHAPE_PATHS.get(key) if d is None else None
                    if path is None:
                        fp = _FP.get
                        if kind == "rect":
                            _, r0, r1, r2, r3 = op[:5]
                            path = (
                                f"n {fp(r0) or _fp(r0)} {fp(r1) or _fp(r1)} {fp(r2) or _fp(r2)} {fp(r3) or _fp(r3)} re "
                                f"{_PATH_OPS[s, f, 0]}"
                            )
                        else:
                            a, b = (
                                f"{fp(x1) or _fp(x1)} {fp(y1) or _fp(y1)}",
                                f"{fp(x2) or _fp(x2)} {fp(y2) or _fp(y2)}",
                            )
                            path = f"n {a} m {b} l S"
                        if d is None:
                            if len(_SHAPE_PATHS) > 20_000:
                                _SHAPE_PATHS.clear()
                            _SHAPE_PATHS[key] = path
                    add(path)
                elif kind == "circle":
                    # the path canvas.circle writes (the strip plot has thousands of dots)
                    add(_dot(op[1], op[2], op[3], _PATH_OPS[s, f, 0]))
                else:
                    pts = op[1]
                    path = " ".join(f"{fp_str(x, y)} {'m' if o == 'M' else 'l'}" for o, x, y in pts)
                    add(f"n {path}{' h' if op[6] else ''} {_PATH_OPS[s, f, 1]}")
            if texts:
                ink = _ink(c)
                for _, x, y, text, anchor, bold, sz, fill in texts:
                    if fill is None:
                        continue
                    text = self.glyphs(text)
                    name = FONT + "-Bold" if bold else FONT
                    if anchor in ("end", "middle"):
                        w = stringWidth(text, name, sz)
                        x -= w if anchor == "end" else w / 2
                    # one text object per label, as svglib's drawing has (text extractors keep them
                    # apart): upright text at (x, y)
                    out = ["BT 1 0 0 1 0 0 Tm", _rg(fill), f"1 0 0 -1 {fp_str(x, y)} Tm"]
                    ink.show(out, name, sz, text, [None, None])
                    out.append("ET")
                    add(" ".join(out))
            add("Q")

    return _SvgChart


_GRID_CLASS: type | None = None
_KEEP_CLASS: type | None = None


def _keep_together_class() -> type:
    """reportlab's ``KeepTogether`` that measures the report's own flowables (texts, tables,
    charts) without copying the page's frame first: reportlab copies it so that flowables that
    add content while measured (none of these) cannot change it; anything else is measured as
    ``KeepTogether`` measures it."""
    global _KEEP_CLASS
    if _KEEP_CLASS is None:
        from reportlab.platypus import KeepTogether
        from reportlab.platypus.flowables import _listWrapOn

        own = (_text_class(), _grid_class(), _chart_class())

        class _Plain:
            """The canvas as the measuring sees it: no document template, so no frame to copy."""

        class _KeepTogether(KeepTogether):
            def wrap(self, aW: float, aH: float) -> tuple[float, float]:
                if not all(type(f) in own for f in self._content):
                    return super().wrap(aW, aH)
                dims: list[tuple[float, float]] = []
                W, H = _listWrapOn(self._content, aW, _Plain(), dims=dims)
                self._H = H
                self._H0 = dims and dims[0][1] or 0
                self._wrapInfo = aW, aH
                return W, 0xFFFFFF  # force a split, as KeepTogether

        _KEEP_CLASS = _KeepTogether
    return _KEEP_CLASS


def _grid_class() -> type:
    global _GRID_CLASS
    if _GRID_CLASS is None:
        _GRID_CLASS = _make_grid_class(_flowable_base())
        _GRID_CLASS.own_draw = _GRID_CLASS.draw
    return _GRID_CLASS


def _make_grid_class(base: type) -> type:
    from reportlab.lib.rl_accel import fp_str

    text_class = _text_class()
    chart_class = _chart_class()

    class _Grid(base):  # type: ignore[misc, valid-type]
        """A report table as reportlab's ``Table`` lays it out with the report's style (fixed
        column widths; padding 3 left/right, 2 top/bottom; cells centred vertically; the header row
        shaded and repeated on every page; a thin line below each row; split between rows only),
        drawn in one pass: every cell's text into one text object, the charts in place.

        ``rows``: the header row first; each cell a list of flowables (:class:`_Text`, charts)."""

        PAD_X, PAD_Y = 3.0, 2.0

        def __init__(self, rows: list[list[list[Any]]], widths: list[float], head: Any, line: Any) -> None:
            super().__init__()
            self.rows, self.widths, self.head, self.line = rows, widths, head, line
            self.hAlign = "LEFT"
            self.heights: list[float] | None = None
            self.sizes: list[list[list[float]]] = []
            self.width = sum(widths)

        def _measure(self) -> list[float]:
            if self.heights is None:
                heights = []
                sizes = []  # per row, per cell: its flowables' heights
                for row in self.rows:
                    h = 0.0
                    hs = []
                    for cell, w in zip(row, self.widths):
                        cs = [f.wrap(w - 2 * self.PAD_X, 0xFFFFFFF)[1] for f in cell]
                        hs.append(cs)
                        h = max(h, sum(cs))
                    sizes.append(hs)
                    heights.append(h + 2 * self.PAD_Y)
                self.heights, self.sizes = heights, sizes
            return self.heights

        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            self.height = sum(self._measure())
            return self.width, self.height

        def split(self, aw: float, ah: float) -> list[Any]:
            heights = self._measure()
            used, n = heights[0], 1
            while n < len(heights) and used + heights[n] <= ah:
                used += heights[n]
                n += 1
            if n <= 1 or n >= len(heights):  # not even one row fits (or all do: no split)
                return []
            parts = []
            sizes = self.sizes
            for rows, hs, ss in (
                (self.rows[:n], heights[:n], sizes[:n]),
                ([self.rows[0], *self.rows[n:]], [heights[0], *heights[n:]], [sizes[0], *sizes[n:]]),
            ):
                g = _Grid(rows, self.widths, self.head, self.line)
                g.heights, g.sizes = hs, ss
                parts.append(g)
            return parts

        def draw(self) -> None:
            self.paint(self.canv)

        def paint(self, c: Any) -> None:
            """Draw at the origin: the operators appended to ``c._code`` (a canvas, or the page of
            the direct writer), as the canvas calls that draw it write them."""
            heights = self._measure()
            top = sum(heights)
            code = c._code
            code.append(f"{_rg(self.head)} n {fp_str(0, top - heights[0], self.width, heights[0])} re f*")
            out: list[str] = ["BT 1 0 0 1 0 0 Tm"]  # as reportlab's beginText(0, 0) starts it
            add = out.append
            ink = _ink(c)
            show = ink.show
            state: list[Any] = [None, None]
            y_top = top
            bottoms = []
            pad = self.PAD_X
            for row, rh, row_sizes in zip(self.rows, heights, self.sizes):
                bottom = y_top - rh
                bottoms.append(bottom)
                x = 0.0
                for cell, w, sizes in zip(row, self.widths, row_sizes):
                    y = bottom + (rh + sum(sizes)) / 2  # centred: Table's VALIGN MIDDLE with equal padding
                    for f, h in zip(cell, sizes):
                        y -= h
                        if type(f) is not text_class:
                            if type(f) is chart_class:
                                f.draw_at(c, x + pad, y)
                            else:
                                f.drawOn(c, x + pad, y)
                            continue
                        lines = f.lines
                        if len(lines) != 1 or len(lines[0]) != 1 or f.backs or f.squeeze[0]:
                            f.emit(c, out, x + pad, y, state, ink)
                            continue
                        # one line of one piece (most cells): what emit writes for it
                        r, t = lines[0][0]
                        add(f"1 0 0 1 {fp_str(x + pad, y + h - f.size)} Tm")
                        if r.colour is not state[1]:
                            add(_rg(r.colour))
                            state[1] = r.colour
                        show(out, r.font, f.size, t, state)
                    x += w
                y_top = bottom
            out.append("ET")
            code.append(" ".join(out))  # every cell's text in one text object
            # a thin line below each row (saveState, setStrokeColor, setLineWidth(0.25),
            # setLineCap(1), setLineJoin(1), line, restoreState)
            code.append(f"q {_rg(self.line, 'RG')} .25 w 1 J 1 j")
            right = fp_str(self.width)
            code += [f"n 0 {fp_str(b)} m {right} {fp_str(b)} l S" for b in bottoms]
            code.append("Q")

    return _Grid


class _Renderer:
    def __init__(self, width: float) -> None:
        from reportlab.lib.styles import ParagraphStyle

        _register_fonts()
        self.glyphs = _Glyphs()
        self.width = width
        base = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11)
        self.styles = {
            "title": ParagraphStyle("title", parent=base, fontName=FONT + "-Bold", fontSize=18, leading=22),
            "h2": ParagraphStyle(
                "h2", parent=base, fontName=FONT + "-Bold", fontSize=14, leading=18, spaceBefore=12, spaceAfter=4
            ),
            "h3": ParagraphStyle(
                "h3", parent=base, fontName=FONT + "-Bold", fontSize=11, leading=14, spaceBefore=10, spaceAfter=4
            ),
            "body": ParagraphStyle("body2", parent=base, spaceAfter=4),
            "muted": ParagraphStyle("muted", parent=base, textColor="#6b7280", spaceAfter=4),
            "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5),
            "head": ParagraphStyle("head", parent=base, fontName=FONT + "-Bold", fontSize=7.5, leading=9.5),
            "bullet": ParagraphStyle("bullet", parent=base, leftIndent=12, bulletIndent=2, spaceAfter=2),
        }
        self.charts: dict[str, Any] = {}  # an SVG -> its parsed ops (False: svglib converts it)
        self.metrics: dict[str, tuple[bool, Any, tuple[float, float, float, float]]] = {}  # style -> para()'s
        from reportlab.lib import colors

        self.hex = {
            k: colors.HexColor(v) for k, v in {**_COLOURS, **{"back-" + b: c for b, c in _BACKS.items()}}.items()
        }
        self.black = colors.black
        self.muted = colors.HexColor("#6b7280")
        self.hex["table-head"], self.hex["table-line"] = colors.HexColor("#f1f5f9"), colors.HexColor("#e2e8f0")

    # -- text ------------------------------------------------------------------------------------
    def runs(self, spans: list[Span], bold: bool = False, colour: Any = None) -> list[_Run | None]:
        """``spans`` as the runs of a :class:`_Text`: bold, colours and chips as the report's
        markup has always styled them (``b`` bold; ``flag`` / ``warn`` bold in their colour; the
        band chips bold on their background, ``code`` on its background; ``muted`` / ``err`` in
        their colour); ``bold`` / ``colour``: the style's own font and colour."""
        regular, heavy = (FONT + "-Bold", FONT + "-Bold") if bold else (FONT, FONT + "-Bold")
        plain = self.black if colour is None else colour
        out: list[_Run | None] = []
        for s in spans:
            st = s.style
            if st == "br":
                out.append(None)
                continue
            t = self.glyphs(s.text)
            if not t:
                continue
            if st == "b":
                out.append(_Run(t, heavy, plain))
            elif st in ("flag", "warn"):
                out.append(_Run(t, heavy, self.hex[st]))
            elif st in _BACKS:
                out.append(_Run(t, regular if st == "code" else heavy, self.hex[st], self.hex["back-" + st]))
            elif st in _COLOURS:
                out.append(_Run(t, regular, self.hex[st]))
            else:
                out.append(_Run(t, regular, plain))
        return out

    def para(self, spans: list[Span], style: str = "body") -> Any:
        """A paragraph in one of :attr:`styles` (``title``, ``h2``, ``h3``, ``body``, ``muted``,
        ``cell``, ``head``): runs of styled text wrapped as reportlab's ``Paragraph`` wraps them,
        with the style's font, size, leading, colour and space before / after."""
        bold, colour, sizes = self.metrics.get(style) or self.style_metrics(style)
        return (_TEXT_CLASS or _text_class())(self.runs(spans, bold=bold, colour=colour), *sizes)

    def style_metrics(self, style: str) -> tuple[bool, Any, tuple[float, float, float, float]]:
        """(bold, colour, (size, leading, space before, space after)) of a style: its
        ParagraphStyle's attributes, read once (each read walks its parents)."""
        st = self.styles[style]
        got = self.metrics[style] = (
            st.fontName.endswith("-Bold"),
            self.muted if style == "muted" else None,
            (st.fontSize, st.leading, st.spaceBefore, st.spaceAfter),
        )
        return got

    # -- charts ------------------------------------------------------------------------------------
    def drawing(self, chart: Chart, max_width: float) -> Any:
        """``chart`` as vector graphics no wider than ``max_width``: drawn from the shapes its
        generator drew (:func:`shape_ops`: what :func:`svg_ops` reads from its SVG, without the
        parse), else straight from its SVG (:func:`svg_ops`), or, for an SVG beyond the report's
        own vocabulary, through svglib."""
        shapes = chart.shapes
        parsed = None if shapes is None else shape_ops(shapes)
        if parsed is None:
            parsed = self.charts.get(chart.svg)
        if parsed is None:
            try:
                parsed = svg_ops(chart.svg)
            except (_Unsupported, KeyError, ValueError, IndexError):
                parsed = False
            self.charts[chart.svg] = parsed
        if parsed is False:
            return self.svglib_drawing(chart, max_width)
        w, h, ops = parsed
        scale = min(1.0, max_width / (w * _PX)) if w else 1.0
        return _chart_class()(w, h, ops, scale, self.glyphs)

    def svglib_drawing(self, chart: Chart, max_width: float) -> Any:
        from reportlab.graphics.shapes import Drawing, Group, String
        from svglib.svglib import svg2rlg

        d = svg2rlg(io.BytesIO(chart.svg.encode("utf-8")))
        if d is None:  # not reachable for the report's own SVG; keep the page whole regardless
            return self.para([Span(f"[chart: {chart.title}]", "muted")])

        def fix(node: Any) -> None:
            if isinstance(node, String):
                bold = "Bold" in (node.fontName or "")
                node.fontName = FONT + ("-Bold" if bold else "")
                node.text = self.glyphs(node.text)
            if isinstance(node, (Group, Drawing)):
                for c in node.contents:
                    fix(c)

        fix(d)
        d.initialFontName = FONT  # the drawing's default font (reportlab's is Helvetica, not embedded)
        scale = min(1.0, max_width / d.width) if d.width else 1.0
        if scale < 1.0:
            d.width, d.height = d.width * scale, d.height * scale
            d.scale(scale, scale)
        return d

    # -- blocks ------------------------------------------------------------------------------------
    def table(self, t: Table) -> Any:
        widths = _table_widths(t, self.width)
        rows = [[[self.para([Span(h)], "head")] for h in t.header]]
        for r in t.rows:
            row = []
            for i, cell in enumerate(r):
                charts = [self.drawing(p, widths[i] - 6) for p in cell if isinstance(p, Chart)]
                spans = [p for p in cell if isinstance(p, Span)]
                row.append(charts + [self.para(spans, "cell")] if spans or not charts else charts)
            rows.append(row)
        return _grid_class()(rows, widths, self.hex["table-head"], self.hex["table-line"])

    def chart_row(self, row: ChartRow) -> Any:
        from reportlab.platypus import Table as RLTable

        per = self.width / max(len(row.charts), 1)
        cells = [self.drawing(c, per - 8) for c in row.charts]
        t = RLTable([cells], colWidths=[per] * len(cells), hAlign="LEFT")
        t.setStyle([("FONTNAME", (0, 0), (-1, -1), FONT)])
        return t

    def blocks(self, blocks: list[Any]) -> list[Any]:
        from reportlab.platypus import ListFlowable, ListItem, Spacer

        out: list[Any] = []
        for b in blocks:
            if isinstance(b, Para):
                out.append(self.para(b.parts, "muted" if b.cls == "muted" else "body"))
            elif isinstance(b, Bullets):
                out.append(
                    ListFlowable(
                        [ListItem(self.para(it, "body"), leftIndent=12) for it in b.items],
                        bulletType="bullet",
                        bulletFontName=FONT,
                        start="•",
                        leftIndent=12,
                    )
                )
            elif isinstance(b, Chart):
                out.append(self.drawing(b, self.width))
            elif isinstance(b, ChartRow):
                out.append(self.chart_row(b))
            elif isinstance(b, Picture):
                from reportlab.platypus import Image

                scale = min(1.0, self.width / b.width) if b.width > 0 else 1.0
                out.append(Image(b.path, width=b.width * scale, height=b.height * scale, hAlign="LEFT"))
            elif isinstance(b, Table):
                out += [self.table(b), Spacer(1, 6)]
            elif isinstance(b, Section):
                out += self.section(b)
            else:
                raise TypeError(f"report block {type(b).__name__}")
        return out

    def section(self, sec: Section) -> list[Any]:
        from reportlab.platypus import CondPageBreak, KeepTogether, Spacer

        head = self.para([Span(sec.title)], "h2" if sec.level == 2 else "h3")
        if sec.grid and sec.blocks:  # side by side, three to a row, as the HTML's grid
            from reportlab.platypus import Table as RLTable

            per = self.width / 3
            inner = _Renderer.__new__(_Renderer)
            inner.__dict__.update(self.__dict__, width=per - 10)
            cells = [
                [inner.para([Span(b.title)], "h3"), *inner.blocks(b.blocks)]
                if isinstance(b, Section)
                else inner.blocks([b])
                for b in sec.blocks
            ]
            rows = [cells[i : i + 3] + [""] * (3 - len(cells[i : i + 3])) for i in range(0, len(cells), 3)]
            grid = RLTable(rows, colWidths=[per] * 3, hAlign="LEFT", splitInRow=0)
            grid.setStyle([("FONTNAME", (0, 0), (-1, -1), FONT), ("VALIGN", (0, 0), (-1, -1), "TOP")])
            return [CondPageBreak(108), KeepTogether([head, grid]), Spacer(1, 4)]
        body = self.blocks(sec.blocks)
        # a heading never ends a page: it stays with what follows it
        first = [_keep_together_class()([head, body[0]])] if body else [head]
        return [CondPageBreak(108), *first, *body[1:], Spacer(1, 4)]


_OWN_RENDERER = _Renderer  # the renderer the direct writer lays out as platypus does


# ---- the direct writer: platypus's layout of the report's flowables, written without platypus ------


class _Fallback(Exception):
    """Content the direct writer does not lay out (a chart svglib converts, a picture, a grid cell
    holding more than texts and charts, a flowable too large for a page): the report goes
    through platypus."""


class _Space:
    """``Spacer(1, height)``."""

    __slots__ = ("height",)

    def __init__(self, height: float) -> None:
        self.height = height


class _Cond:
    """``CondPageBreak(height)``: a new page where less than ``height`` is left."""

    __slots__ = ("height",)

    def __init__(self, height: float) -> None:
        self.height = height


class _Keep:
    """``KeepTogether(content)``: on a new page when it does not fit where it is."""

    __slots__ = ("content",)

    def __init__(self, content: list[Any]) -> None:
        self.content = content


class _List:
    """``ListFlowable`` of bulleted texts (``leftIndent`` 12, a 12 pt bullet): whole where it fits,
    else item by item."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class _Row:
    """``chart_row``'s one-row ``Table`` of charts: columns ``per`` wide, reportlab's default cell
    padding (6 left, 3 below and above), each chart at its cell's bottom left; not split."""

    __slots__ = ("cells", "height", "per")

    def __init__(self, cells: list[Any], per: float) -> None:
        self.cells, self.per = cells, per
        self.height = max(c.height for c in cells) + 6


class _Item:
    """``LIIndenter``: a text 12 pt in, its bullet on its first piece."""

    __slots__ = ("bullet", "text")

    def __init__(self, text: Any, bullet: bool) -> None:
        self.text, self.bullet = text, bullet


_BREAK = object()  # FrameBreak: the page ends here
_NULL = object()  # NullActionFlowable
_INDENT = 12.0  # the bullets' leftIndent
_BULLET = 12.0  # the bullets' font size


def _direct_blocks(r: _Renderer, blocks: list[Any], own: tuple[type, type, type]) -> list[Any]:
    """``_Renderer.blocks`` as the direct writer's story (the same flowables, the same order)."""
    text_class, grid_class, chart_class = own
    out: list[Any] = []
    for b in blocks:
        if isinstance(b, Para):
            out.append(r.para(b.parts, "muted" if b.cls == "muted" else "body"))
        elif isinstance(b, Bullets):
            if not b.items:
                raise _Fallback("an empty list")
            out.append(_List([_Item(r.para(it, "body"), True) for it in b.items]))
        elif isinstance(b, Chart):
            d = r.drawing(b, r.width)
            if type(d) is not chart_class:
                raise _Fallback("a chart svglib converts")
            out.append(d)
        elif isinstance(b, Table):
            out += [_direct_table(r, b, own), _Space(6)]
        elif isinstance(b, Section):
            out += _direct_section(r, b, own)
        elif isinstance(b, ChartRow) and b.charts:
            per = r.width / len(b.charts)
            cells = [r.drawing(c, per - 8) for c in b.charts]
            if any(type(d) is not chart_class for d in cells):
                raise _Fallback("a chart svglib converts, in a row")
            out.append(_Row(cells, per))
        else:  # a picture (or a block no renderer knows: platypus says so)
            raise _Fallback(type(b).__name__)
    return out


class _Cell:
    """A table cell's text, laid out (as :class:`_Text` lays it out) and ready to draw: per line
    its chips' backgrounds ``(dx, width, fill operator)``, its word spacing (``Tw``, or "") and its
    pieces ``(fill operator, colour, font, text)`` (one per run of one font and colour, as
    ``_Text.emit`` groups them); ``height``: lines x leading."""

    __slots__ = ("height", "leading", "lines", "size", "step")

    def __init__(self, lines: tuple, size: float, leading: float) -> None:
        self.lines, self.size, self.leading = lines, size, leading
        self.height = len(lines) * leading
        step = _STEPS.get(leading)
        if step is None:
            step = _STEPS[leading] = f"0 {(_FP_STR or _fp_str())(-leading)} Td"
        self.step = step  # the next line's start


_STEPS: dict[float, str] = {}  # a leading -> the Td operator that moves one line down
#: (style, the spans' texts and styles, width) -> its _Cell: a text is laid out the same way
#: wherever it is (the headers, metric names, legends and readings repeat in every report)
_CELLS: dict[tuple, _Cell] = {}


def _cell(r: _Renderer, spans: list[Span], style: str, width: float) -> _Cell:
    """``r.para(spans, style)`` wrapped to ``width``, as a :class:`_Cell`."""
    key = (style, width, *[(s.text, s.style) for s in spans])
    got = _CELLS.get(key)
    if got is not None:
        return got
    fp_str = _FP_STR or _fp_str()
    escape = _ESCAPE or _escape()
    text_class = _TEXT_CLASS or _text_class()
    measure = text_class.measure
    bold, colour, (size, leading, _, _) = r.metrics.get(style) or r.style_metrics(style)
    runs = r.runs(spans, bold=bold, colour=colour)
    lines: list[list[tuple[_Run, str]]] | None = None
    squeeze: list[float] = []
    if len(runs) % 2 and None not in runs[::2] and runs[1::2].count(None) == len(runs) // 2:
        # one run per line, each fitting (most cells: a value, a value and its band): each line
        # made as the loops below make it, in one pass (the width measured once)
        done: list | None = []
        limit = width - 1e-6
        for run in runs[::2]:
            t = run.text
            w = measure(t, run.font, size) if t else 0.0
            if not (t and w <= limit and " ".join(t.split()) == t):
                done = None
                break
            back = run.back
            chip = ((0.0, w, _rg(back)),) if back is not None and t != " " else ()
            op = f"({escape(t.encode('ascii'))}) Tj" if t.isascii() and t.isprintable() else None
            done.append((chip, "", ((_rg(run.colour), run.colour, run.font, t, op),)))
        if done is not None:
            got = _Cell(tuple(done), size, leading)
            if len(_CELLS) > 8192:
                _CELLS.clear()
            _CELLS[key] = got
            return got
        # one run per line, each fitting (_Text._break's first case)
        lines = []
        for run in runs[::2]:
            t = run.text
            if not (t and measure(t, run.font, size) <= width - 1e-6 and " ".join(t.split()) == t):
                lines = None
                break
            lines.append([(run, t)])
        squeeze = [0.0] * len(lines or ())
    if lines is None:
        text = text_class(runs, size, leading)
        text.wrap(width, 0xFFFFFFF)
        lines, squeeze = text.lines, text.squeeze
    out = []
    for line, sq in zip(lines, squeeze):
        if len(line) == 1 and not sq:  # one piece (most lines)
            run, text = line[0]
            back = run.back
            chip = ((0.0, measure(text, run.font, size), _rg(back)),) if back is not None and text != " " else ()
            op = f"({escape(text.encode('ascii'))}) Tj" if text.isascii() and text.isprintable() else None
            out.append((chip, "", ((_rg(run.colour), run.colour, run.font, text, op),)))
            continue
        chips = []
        if any(run.back is not None for run, _ in line):
            x = 0.0
            for run, t in line:
                w = measure(t, run.font, size)
                if run.back is not None and t != " ":
                    chips.append((x, w, _rg(run.back)))
                x += w
        pieces = []
        k = 0
        while k < len(line):  # runs of one font and colour together, as _Text.emit draws them
            run = line[k][0]
            j = k + 1
            while j < len(line) and line[j][0].font == run.font and line[j][0].colour is run.colour:
                j += 1
            text = "".join(t for _, t in line[k:j]) if j - k > 1 else line[k][1]
            # printable ASCII: its text operator, written as it is (coded as itself in subset 0)
            op = f"({escape(text.encode('ascii'))}) Tj" if text.isascii() and text.isprintable() else None
            pieces.append((_rg(run.colour), run.colour, run.font, text, op))
            k = j
        out.append((tuple(chips), f"{fp_str(sq)} Tw" if sq else "", tuple(pieces)))
    got = _Cell(tuple(out), size, leading)
    if len(_CELLS) > 8192:
        _CELLS.clear()
    _CELLS[key] = got
    return got


class _Table:
    """A report table as :class:`_Grid` lays it out and draws it, its texts :class:`_Cell` s."""

    PAD_X, PAD_Y = 3.0, 2.0
    __slots__ = ("head", "height", "heights", "line", "rows", "sizes", "widths", "width")

    def __init__(self, rows: list, widths: list[float], heights: list[float], sizes: list, head: str, line: str):
        self.rows, self.widths, self.heights, self.sizes = rows, widths, heights, sizes
        self.head, self.line = head, line
        self.width = sum(widths)
        self.height = sum(heights)

    def split(self, room: float) -> list[Any]:
        """``_Grid.split``: the rows that fit under the header, and the header with the rest."""
        heights = self.heights
        used, n = heights[0], 1
        while n < len(heights) and used + heights[n] <= room:
            used += heights[n]
            n += 1
        if n <= 1 or n >= len(heights):
            return []
        rows, sizes = self.rows, self.sizes
        return [
            _Table(rows[:n], self.widths, heights[:n], sizes[:n], self.head, self.line),
            _Table(
                [rows[0], *rows[n:]],
                self.widths,
                [heights[0], *heights[n:]],
                [sizes[0], *sizes[n:]],
                self.head,
                self.line,
            ),
        ]

    def paint(self, page: _Page, ink: _Ink, chart_class: type) -> None:
        """``_Grid.paint``: the header's shade, every cell's text in one text object, the charts
        in place, a thin line below each row."""
        from reportlab.lib.rl_accel import fp_str

        heights = self.heights
        top = self.height
        code = page._code
        code.append(f"{self.head} n {fp_str(0, top - heights[0], self.width, heights[0])} re f*")
        out = ["BT 1 0 0 1 0 0 Tm"]
        add = out.append
        show, plain = ink.show, ink.plain
        fp = _FP.get
        plains: dict[tuple[str, float], Any] = {}
        state: list[Any] = [None, None]  # [font key, colour] last set: in locals, synced around show
        font_key = colour_now = None
        y_top = top
        bottoms = []
        cols = []  # each column's left (its text's x) and that number written
        x = self.PAD_X
        for w in self.widths:
            cols.append((x, fp(x) or _fp(x)))
            x += w
        for row, rh, row_sizes in zip(self.rows, heights, self.sizes):
            bottom = y_top - rh
            bottoms.append(bottom)
            for cell, (x, xs), sizes in zip(row, cols, row_sizes):
                y = bottom + (rh + sum(sizes)) / 2
                for f, h in zip(cell, sizes):
                    y -= h
                    if type(f) is chart_class:
                        f.draw_at(page, x, y)
                        continue
                    size = f.size
                    base = y + h - size
                    for n, (chips, tw, pieces) in enumerate(f.lines):
                        if chips:
                            leading = f.leading
                            ly = base - n * leading
                            for dx, cw, fill in chips:
                                code.append(f"{fill} n {fp_str(x + dx, ly + size - leading, cw, leading)} re f*")
                        # the first line placed, the next ones one leading below it (Td)
                        add(f.step if n else f"1 0 0 1 {xs} {fp(base) or _fp(base)} Tm")
                        if tw:
                            add(tw)
                        for fill, colour, font, text, op in pieces:
                            if colour is not colour_now:
                                add(fill)
                                colour_now = colour
                            if op is not None:
                                tf = plains.get((font, size))
                                if tf is None:
                                    tf = plains[(font, size)] = plain(font, size)
                                if tf:
                                    if tf[0] != font_key:
                                        add(tf[1])
                                        font_key = tf[0]
                                    add(op)
                                    continue
                            state[0], state[1] = font_key, colour_now
                            show(out, font, size, text, state)
                            font_key, colour_now = state
                        if tw:
                            add("0 Tw")
            y_top = bottom
        add("ET")
        code.append(" ".join(out))
        code.append(f"q {self.line} .25 w 1 J 1 j")
        right = _FP.get(self.width) or _fp(self.width)
        for b in bottoms:
            b = _FP.get(b) or _fp(b)
            code.append(f"n 0 {b} m {right} {b} l S")
        code.append("Q")


def _table_widths(t: Table, width: float) -> list[float]:
    """A report table's column widths on a frame ``width`` wide: its relative ``widths``, else
    proportional to the longest text in each column, within bounds."""
    n = len(t.header)
    rel = t.widths if t.widths and len(t.widths) == n else None
    if rel is None:
        lens = [
            max([len(h)] + [sum(len(p.text) for p in row[i] if isinstance(p, Span)) for row in t.rows])
            for i, h in enumerate(t.header)
        ]
        rel = [min(max(x, 4), 40) for x in lens]
    total = sum(rel)
    return [width * w / total for w in rel]


def _direct_table(r: _Renderer, t: Table, own: tuple[type, type, type]) -> _Table:
    """``_Renderer.table`` as a :class:`_Table`: the same widths, cells and heights."""
    chart_class = own[2]
    widths = _table_widths(t, r.width)
    inner = [w - 2 * _Table.PAD_X for w in widths]
    pad_y = 2 * _Table.PAD_Y
    head = [[_cell(r, [Span(h)], "head", w)] for h, w in zip(t.header, inner)]
    rows = [head]
    hs = [h[0].height for h in head]
    sizes = [[[h] for h in hs]]
    heights = [max(hs) + pad_y]
    get = _CELLS.get
    for row in t.rows:
        cells = []
        row_sizes = []
        tallest = 0.0
        for i, parts in enumerate(row):
            w = inner[i]
            for p in parts:
                if type(p) is not Span:
                    break
            else:  # spans only (most cells): _cell, its key made here (a hit costs no call)
                f = get(("cell", w, *[(p.text, p.style) for p in parts])) or _cell(r, parts, "cell", w)
                h = f.height
                cells.append((f,))
                row_sizes.append((h,))
                if h > tallest:
                    tallest = h
                continue
            cell = []
            spans = []
            for p in parts:
                if isinstance(p, Chart):
                    d = r.drawing(p, w)
                    if type(d) is not chart_class:
                        raise _Fallback("a chart svglib converts, in a table")
                    cell.append(d)
                elif isinstance(p, Span):
                    spans.append(p)
            if spans or not cell:
                cell.append(_cell(r, spans, "cell", w))
            cs = [f.height for f in cell]
            cells.append(cell)
            row_sizes.append(cs)
            tallest = max(tallest, sum(cs))
        rows.append(cells)
        sizes.append(row_sizes)
        heights.append(tallest + pad_y)
    return _Table(rows, widths, heights, sizes, _rg(r.hex["table-head"]), _rg(r.hex["table-line"], "RG"))


class _Sections:
    """``_Renderer.section``'s grid of sections (the partial dependence plots): reportlab's
    ``Table`` of three columns, default padding (6 left and right, 3 above and below), each cell
    its flowables stacked from the top (``VALIGN TOP``) with their spaces between; split between
    rows, no header."""

    PAD_X, PAD_Y = 6.0, 3.0
    __slots__ = ("cells", "height", "heights", "per")

    def __init__(self, cells: list[list[Any]], heights: list[list[float]], per: float) -> None:
        self.cells, self.per = cells, per  # rows of (flowables, their heights) per cell
        self.heights = heights
        self.height = sum(heights)

    def split(self, room: float) -> list[Any]:
        """``Table._splitRows``: the rows that fit, and the rest (none fit: it moves on)."""
        h, n = 0.0, 0
        for rh in self.heights:
            if h + rh > room:
                break
            h += rh
            n += 1
        if n == 0 or n == len(self.heights):
            return []
        return [
            _Sections(self.cells[:n], self.heights[:n], self.per),
            _Sections(self.cells[n:], self.heights[n:], self.per),
        ]


def _sections(r: _Renderer, sec: Section, own: tuple[type, type, type]) -> _Sections:
    """``sec``'s blocks three to a row, as ``_Renderer.section`` puts them in a ``Table``."""
    text_class, _, chart_class = own
    per = r.width / 3
    inner = _Renderer.__new__(_Renderer)
    inner.__dict__.update(r.__dict__, width=per - 10)
    aw = per - 2 * _Sections.PAD_X
    cells = []
    for b in sec.blocks:
        if isinstance(b, Section):
            content = [inner.para([Span(b.title)], "h3"), *_direct_blocks(inner, b.blocks, own)]
        else:
            content = _direct_blocks(inner, [b], own)
        if not content or any(type(f) is not text_class and type(f) is not chart_class for f in content):
            raise _Fallback("a grid cell beyond texts and charts")
        cells.append(content)
    rows, heights = [], []
    for i in range(0, len(cells), 3):
        row = []
        tallest = 0.0
        for content in cells[i : i + 3]:
            hs = [f.wrap(aw, 0xFFFFFFF)[1] for f in content]
            sb = [f.spaceBefore if type(f) is text_class else 0.0 for f in content]
            sa = [f.spaceAfter if type(f) is text_class else 0.0 for f in content]
            # Table._listCellGeom: heights and spaces, less the first's space before and the last's after
            tallest = max(tallest, sum(hs) + sum(sb) + sum(sa) - sb[0] - sa[-1])
            row.append((content, hs, sb, sa))
        if len(row) < 3 and tallest < 24:  # an empty cell's line (its font's 10 pt) could be taller
            raise _Fallback("a short row of the grid")
        rows.append(row)
        heights.append(tallest + 2 * _Sections.PAD_Y)
    return _Sections(rows, heights, per)


def _direct_section(r: _Renderer, sec: Section, own: tuple[type, type, type]) -> list[Any]:
    head = r.para([Span(sec.title)], "h2" if sec.level == 2 else "h3")
    if sec.grid and sec.blocks:  # side by side, three to a row, a heading kept with them
        return [_Cond(108), _Keep([head, _sections(r, sec, own)]), _Space(4)]
    body = _direct_blocks(r, sec.blocks, own)
    first = [_Keep([head, body[0]])] if body else [head]
    return [_Cond(108), *first, *body[1:], _Space(4)]


class _Page:
    """What the flowables draw on in the direct writer: a page's operators (``_code``) and the
    document whose fonts code the text (``_doc``, as a canvas has them)."""

    __slots__ = ("__weakref__", "_clarion_ink", "_code", "_doc")

    def __init__(self, doc: Any) -> None:
        self._code: list[str] = []
        self._doc = doc
        self._clarion_ink: Any = None


class _Doc:
    """The document a TrueType font's subsets are assigned in (reportlab's ``TTFont.state`` is
    keyed by it): the font names it gave out."""

    __slots__ = ("__weakref__", "delayedFonts", "fontMapping")

    def __init__(self) -> None:
        self.fontMapping: dict[str, str] = {}
        self.delayedFonts: list[Any] = []


_FUZZ = 1e-6  # platypus's layout tolerance (rl_config._FUZZ)
_PAGE = (841.8897637795277, 595.2755905511812)  # A4 landscape, points
_MARGIN = 14 * 72 / 25.4  # 14 mm


def _own_classes() -> tuple[type, type, type]:
    return _text_class(), _grid_class(), _chart_class()


def _direct_ok() -> bool:
    """Whether the direct writer draws what platypus would: the renderer is this module's and the
    flowables draw as this module draws them (a test's reference renderer goes through platypus)."""
    if _Renderer is not _OWN_RENDERER:
        return False
    return all(c.draw is c.own_draw for c in _own_classes())


def _layout(story: list[Any], page: _Page, footer: Any) -> list[str]:
    """``story`` laid out as platypus lays it out in ``render_report_pdf``'s document (one frame,
    6 pt padding; space before a flowable dropped at a page's top and overlapping the space after
    the one before; texts and tables split at a page's foot, the rest moved on) and drawn: the
    content of each page, footer first."""
    from reportlab.lib.rl_accel import fp_str

    text_class, _, chart_class = _own_classes()
    ink = _ink(page)
    x1, y1 = _MARGIN, _MARGIN + 4
    frame_h = _PAGE[1] - _MARGIN - y1
    X, TOP, P, AW = x1 + 6, y1 + frame_h - 6, y1 + 6, _PAGE[0] - 2 * _MARGIN - 12
    pages: list[str] = []
    st = {"y": TOP, "top": True, "prev": 0.0, "brk": False}

    def before(f: Any) -> float:
        t = type(f)
        if t is text_class:
            return f.spaceBefore
        if t is _Keep:
            return before(f.content[0])
        if t is _List:
            return f.items[0].text.spaceBefore
        if t is _Item:
            return f.text.spaceBefore
        return 0.0

    def after(f: Any) -> float:
        t = type(f)
        if t is text_class:
            return f.spaceAfter
        if t is _Keep:
            return after(f.content[-1])
        if t is _List:
            return f.items[-1].text.spaceAfter
        if t is _Item:
            return f.text.spaceAfter
        return 0.0

    def list_wrap(items: list[Any], aw: float) -> tuple[float, float]:
        """(height, first height) of ``items`` stacked (``_listWrapOn``)."""
        H = pS = 0.0
        first = None
        at = True
        for f in items:
            h = wrap(f, aw, 0xFFFFFFF)
            if first is None:
                first = h
            if h <= _FUZZ:
                continue
            H += h
            if not at:
                H += max(before(f) - pS, 0.0)
            else:
                at = False
            pS = after(f)
            H += pS
        return H - pS, first or 0.0

    def wrap(f: Any, aw: float, ah: float) -> float:
        t = type(f)
        if t is text_class or t is chart_class:
            return f.wrap(aw, ah)[1]
        if t is _Table or t is _Space or t is _Row or t is _Sections:
            return f.height
        if t is _Item:
            return f.text.wrap(aw - _INDENT, ah)[1]
        if t is _List:
            return list_wrap(f.items, aw)[0]
        if t is _Cond:
            return 0.0
        raise _Fallback(f"{t.__name__} inside a KeepTogether")

    def draw(f: Any, x: float, y: float) -> None:
        t = type(f)
        code = page._code
        if t is text_class:
            code.append(f"q 1 0 0 1 {_FP.get(x) or _fp(x)} {_FP.get(y) or _fp(y)} cm")
            out = ["BT 1 0 0 1 0 0 Tm"]  # as Flowable.drawOn + _Text.draw write it
            f.emit(page, out, 0, 0, [None, None], ink)
            out.append("ET")
            code += (" ".join(out), "Q")
        elif t is _Table:
            code.append(f"q 1 0 0 1 {_FP.get(x) or _fp(x)} {_FP.get(y) or _fp(y)} cm")
            f.paint(page, ink, chart_class)
            code.append("Q")
        elif t is chart_class:
            f.draw_at(page, x, y)
        elif t is _Row:
            for k, c in enumerate(f.cells):
                c.draw_at(page, x + k * f.per + 6, y + 3)
        elif t is _Sections:  # Table._drawCell, VALIGN TOP, each row from its top
            top = y + f.height
            for row, rh in zip(f.cells, f.heights):
                for k, (content, hs, sb, sa) in enumerate(row):
                    yy = top - _Sections.PAD_Y + sb[0]
                    for v, h, b, a in zip(content, hs, sb, sa):
                        yy -= b + h
                        draw(v, x + k * f.per + _Sections.PAD_X, yy)
                        yy -= a
                top -= rh
        elif t is _List:  # as _Container.drawOn stacks its items
            yy = y + list_wrap(f.items, AW)[0]
            yt = yy
            pS = 0.0
            last = f.items[-1]
            for item in f.items:
                h = wrap(item, AW, 0xFFFFFFF)
                if h < _FUZZ:
                    continue
                if yt != yy:
                    h += max(before(item) - pS, 0.0)
                yy -= h
                pS = after(item)
                draw(item, x, yy)
                if item is not last:
                    yy -= pS
        elif t is _Item:
            if f.bullet:  # BulletDrawer: the bullet at the indenter's left, its height - 12 up
                out = [f"q 1 0 0 1 {fp_str(x, y)} cm 0 0 0 rg BT 1 0 0 1 0 {fp_str(f.text.height - _BULLET)} Tm"]
                ink.show(out, FONT, _BULLET, "•", [None, None])
                out.append(f"{fp_str(_BULLET * 1.2)} TL T* ET Q")
                code.append(" ".join(out))
            draw(f.text, x + _INDENT, y)

    def add(f: Any) -> bool:
        """Frame._add: drawn where it fits (True), else nothing changes (False)."""
        y = st["y"]
        s = 0.0 if st["top"] else max(before(f) - st["prev"], 0.0)
        room = y - P - s
        t = type(f)
        if room <= 0 or t is _Keep:  # a KeepTogether never fits (it is split)
            return False
        if t is _Cond:
            if room < f.height:
                st["brk"] = True  # a FrameBreak follows
            h = 0.0
        else:
            h = wrap(f, AW, room)
        ny = y - h - s
        if ny < P - _FUZZ:
            return False
        draw(f, X, ny)
        sa = after(f)
        ny -= sa
        st["prev"] = sa
        if ny != y:
            st["top"] = False
        st["y"] = ny
        return True

    def split(f: Any) -> list[Any]:
        """Frame.split: the flowable's pieces for the room left (empty: it moves on)."""
        s = 0.0 if st["top"] else max(before(f) - st["prev"], 0.0)
        room = st["y"] - P - s
        if room <= 0:
            return []
        t = type(f)
        if t is text_class:
            return f.split(AW, room)
        if t is _Table or t is _Sections:
            return f.split(room)
        if t is _Keep:
            H, H0 = list_wrap(f.content, AW)
            at = st["top"]
            c0 = H > room
            if c0 or H0 > room:
                fb = (not at) if c0 else frame_h >= H
                return [_BREAK if fb else _NULL, *f.content]
            return list(f.content)
        if t is _List:
            return list(f.items)
        if t is _Item:
            parts = f.text.split(AW - _INDENT, room)
            return [_Item(p, f.bullet and k == 0) for k, p in enumerate(parts)]
        return []

    def begin() -> None:
        page._code = []
        footer(page._code, ink, len(pages) + 1)
        st.update(y=TOP, top=True, prev=0.0)

    def end() -> None:
        pages.append("\n".join(page._code))
        page._code = []

    flow = story[::-1]  # a stack: the next flowable last
    postponed: dict[int, Any] = {}  # (kept alive: an id is unique while its object lives)
    open_ = False
    while flow:
        if not open_:
            begin()
            open_ = True
        f = flow.pop()
        if f is _BREAK:
            end()
            open_ = False
            continue
        if f is _NULL:
            continue
        if add(f):
            if st["brk"]:
                st["brk"] = False
                flow.append(_BREAK)
            continue
        parts = split(f)
        if parts:
            if parts[0] is _BREAK or parts[0] is _NULL or type(parts[0]) is _Item:
                # actions, and a list's items (``DDIndenter`` s), go back on the list as they are
                flow += parts[::-1]
                continue
            if not add(parts[0]):
                raise _Fallback("a split piece that does not fit")
            flow += parts[:0:-1]
            if st["brk"]:
                st["brk"] = False
                flow.append(_BREAK)
            continue
        if id(f) in postponed:
            raise _Fallback(f"{type(f).__name__} too large for a page")
        postponed[id(f)] = f
        flow.append(f)
        end()
        open_ = False
    if open_:
        end()
    return pages


def _footer_ops(code: list[str], ink: _Ink, title: str, number: int) -> None:
    """The footer of page ``number``: the title at the left, ``page n`` at the right, in grey (the
    operators of saveState, setFillColorRGB, drawString, drawRightString, restoreState)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    fp_str = _fp_str()
    text = f"page {number}"
    margin = _MARGIN
    out = ["q", "0.42 0.45 0.5 rg"]
    for x, t in ((margin, title[:120]), (_PAGE[0] - margin - stringWidth(text, FONT, 7.5), text)):
        out.append(f"BT 1 0 0 1 {fp_str(x, margin - 2)} Tm {fp_str(7.5 * 1.2)} TL")  # drawString's leading
        ink.show(out, FONT, 7.5, t, [None, None])
        out.append("T* ET")  # drawString's textLine moves to the next line
    out.append("Q")
    code.append(" ".join(out))


def _direct_pdf(report: Report) -> bytes:
    """``report`` as platypus would lay it out and draw it (:func:`_layout`), written as a PDF
    file directly (:class:`clarion.report.pdfwriter.PdfFile`); raises :class:`_Fallback` for
    content it does not cover."""
    from reportlab.lib.rl_accel import fp_str
    from reportlab.pdfbase import pdfmetrics

    from clarion.report.pdfwriter import PdfFile, embed_subsets, pdf_text

    r = _Renderer(_PAGE[0] - 2 * _MARGIN)
    own = _own_classes()
    story = [r.para([Span(report.title)], "title"), r.para([Span(report.subtitle)], "muted")]
    for sec in report.sections:
        story += _direct_section(r, sec, own)
    title = r.glyphs(report.title)
    doc = _Doc()
    page = _Page(doc)
    try:
        contents = _layout(story, page, lambda code, ink, n: _footer_ops(code, ink, title, n))
        pdf = PdfFile()
        fonts_num, pages_num = pdf.reserve(), pdf.reserve()
        box = fp_str(0, 0, *_PAGE).encode("ascii")
        kids = []
        for c in contents:
            content = pdf.stream(c.encode("latin-1"))
            kids.append(
                pdf.put(
                    b"<< /Contents %d 0 R /MediaBox [ %s ] /Parent %d 0 R /Resources << /Font %d 0 R "
                    b"/ProcSet [ /PDF /Text ] >> /Rotate 0 /Type /Page >>" % (content, box, pages_num, fonts_num)
                )
            )
        names: dict[str, int] = {}
        for name in doc.fontMapping:
            font = pdfmetrics.getFont(name)
            state = font.state[doc]
            names.update(embed_subsets(pdf, font, state.internalName, state.subsets))
    finally:
        for name in doc.fontMapping:
            pdfmetrics.getFont(name).state.pop(doc, None)
    pdf.put(b"<< " + b" ".join(b"/%s %d 0 R" % (k.encode("ascii"), v) for k, v in names.items()) + b" >>", fonts_num)
    pdf.put(
        b"<< /Count %d /Kids [ %s ] /Type /Pages >>" % (len(kids), b" ".join(b"%d 0 R" % k for k in kids)), pages_num
    )
    root = pdf.put(b"<< /PageMode /UseNone /Pages %d 0 R /Type /Catalog >>" % pages_num)
    info = pdf.put(
        b"<< /Author (clarion) /Creator (clarion) /Producer (clarion) /Subject %s /Title %s >>"
        % (pdf_text(report.subtitle), pdf_text(report.title))
    )
    return pdf.finish(root, info)


def render_report_pdf(report: Report) -> bytes:
    """A :class:`clarion.report.model.Report` as PDF bytes (A4 landscape).

    Laid out as reportlab's platypus lays it out (pages, frames, headings kept with what
    follows, tables split between rows with their header repeated); the texts, the report tables
    and the charts are clarion's own flowables that lay out and draw what reportlab's
    ``Paragraph``, ``Table`` and svglib's drawings did, without their per-cell markup parsing,
    cell geometry and SVG parsing (``tests/test_report_pdf_fast.py``: same words, pages and
    pixels as those). The pages are laid out and the file written directly (platypus's layout
    rules, one content stream per page, the objects, fonts and cross-reference table written as
    bytes: ``tests/test_report_pdf_direct.py``); a report with content that layout does not
    cover (a chart svglib converts, a picture, a grid cell holding more than texts and charts)
    goes through platypus itself."""
    _require()
    if _direct_ok():
        try:
            return _direct_pdf(report)
        except _Fallback:
            pass
    return _platypus_pdf(report)


def _platypus_pdf(report: Report) -> bytes:
    """``render_report_pdf`` through reportlab's platypus and canvas (the reference of the direct
    writer, and the path of the content it does not cover)."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    buf = io.BytesIO()
    page = landscape(A4)
    margin = 14 * mm
    doc = SimpleDocTemplate(
        buf,
        pagesize=page,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin + 4,
        title=report.title,
        author="clarion",
        subject=report.subtitle,
        creator="clarion",
        invariant=1,  # same input, same bytes (no creation date or random document id)
        initialFontName=FONT,  # the pages' initial font is the embedded one (reportlab's is Helvetica)
    )
    r = _Renderer(page[0] - 2 * margin)
    title_text = r.glyphs(report.title)

    from reportlab.pdfbase.pdfmetrics import stringWidth

    fp_str = _fp_str()
    grey = "0.42 0.45 0.5 rg"

    def footer(canvas: Any, d: Any) -> None:
        # the operators of saveState, setFillColorRGB, drawString, drawRightString, restoreState
        ink = _ink(canvas)
        number = f"page {d.page}"
        out = ["q", grey]
        for x, text in ((margin, title_text[:120]), (page[0] - margin - stringWidth(number, FONT, 7.5), number)):
            out.append(f"BT 1 0 0 1 {fp_str(x, margin - 2)} Tm {fp_str(7.5 * 1.2)} TL")  # drawString's leading
            ink.show(out, FONT, 7.5, text, [None, None])
            out.append("T* ET")  # drawString's textLine moves to the next line
        out.append("Q")
        canvas._code.append(" ".join(out))

    story = [r.para([Span(report.title)], "title"), r.para([Span(report.subtitle)], "muted")]
    for sec in report.sections:
        story += r.section(sec)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def render_pdf(
    analysis: Mapping[str, Any],
    *,
    title: str | None = None,
    config: Mapping[str, Any] | None = None,
    local_shap: Any = None,
    feature_values: Any = None,
    notes: list[str] | None = None,
    max_local_rows: int = 400,
) -> bytes:
    """Render ``analysis`` as a PDF (bytes): the content of :func:`clarion.report.render_html`,
    paginated, with embedded fonts and vector charts. Parameters as :func:`clarion.report.render_html`.

    Raises
    ------
    ModuleNotFoundError
        reportlab or svglib is not installed (the message says ``pip install 'clarion[report]'``).
    clarion.monitor.AnalysisError
        ``analysis`` is malformed (the key path named).
    """
    _require()
    from clarion.monitor.documents import load_analysis

    load_analysis(analysis)
    report = build_report(
        analysis,
        title=title,
        config=config,
        local_shap=local_shap,
        feature_values=feature_values,
        notes=notes,
        max_local_rows=max_local_rows,
    )
    return render_report_pdf(report)
