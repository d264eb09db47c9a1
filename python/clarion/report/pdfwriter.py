"""A minimal PDF file writer: numbered objects, Flate streams, the cross-reference table and the
trailer, written as bytes directly (no object model, no per-object formatting pass); and the
objects that embed a subset of a TrueType font (its program, widths and ToUnicode map), cut with
reportlab's TrueType reader and kept per process by character sequence.

Used by :mod:`clarion.report.pdf` for ``report.pdf`` (its pages are laid out there); reportlab
is imported only inside :func:`embed_subsets` (the ``report`` extra).
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from typing import Any

__all__ = ["PdfFile", "embed_subsets", "pdf_text"]


def pdf_text(text: str) -> bytes:
    """``text`` as a PDF text string: ``(...)`` with ``\\``, ``(``, ``)`` escaped where it is
    printable ASCII, else UTF-16BE with its byte order mark, in hex (``<FEFF...>``)."""
    if text.isascii() and text.isprintable():
        return b"(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("ascii") + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode("ascii") + b">"


class PdfFile:
    """A PDF file being written: :meth:`reserve` an object number, :meth:`put` an object's
    body (a dictionary or array, as bytes), :meth:`stream` a stream; :meth:`finish` writes the
    cross-reference table and the trailer. Objects are written in the order they are put."""

    def __init__(self) -> None:
        self.parts: list[bytes] = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
        self.size = len(self.parts[0])
        self.offsets: dict[int, int] = {}
        self.count = 0

    def reserve(self) -> int:
        """A new object number (its object :meth:`put` later)."""
        self.count += 1
        return self.count

    def put(self, body: bytes, num: int | None = None) -> int:
        """Write object ``num`` (a new one when None) with ``body``; returns its number."""
        if num is None:
            num = self.reserve()
        data = b"%d 0 obj\n%s\nendobj\n" % (num, body)
        self.offsets[num] = self.size
        self.parts.append(data)
        self.size += len(data)
        return num

    def stream(self, data: bytes, entries: bytes = b"", compress: bool = True, num: int | None = None) -> int:
        """Write a stream object: ``data`` Flate-compressed (``compress``), or already compressed
        (``entries`` then names the filter); ``entries``: more of its dictionary."""
        if compress:
            data = zlib.compress(data, 1)  # level 1: ~2x faster than the default for ~15% more bytes
            entries = b"/Filter /FlateDecode " + entries
        if num is None:
            num = self.reserve()
        head = b"%d 0 obj\n<< %s/Length %d >>\nstream\n" % (num, entries, len(data))
        self.offsets[num] = self.size
        self.parts += (head, data, b"\nendstream\nendobj\n")
        self.size += len(head) + len(data) + 18
        return num

    def finish(self, root: int, info: int) -> bytes:
        """The whole file: the objects, the cross-reference table, the trailer (its ``/ID`` the
        MD5 of the objects: the same content, the same bytes)."""
        n = self.count
        missing = [k for k in range(1, n + 1) if k not in self.offsets]
        if missing:
            raise ValueError(f"PDF objects reserved but never written: {missing}")
        xref = [b"xref\n0 %d\n0000000000 65535 f \n" % (n + 1)]
        offsets = self.offsets
        xref += [b"%010d 00000 n \n" % offsets[k] for k in range(1, n + 1)]
        body = b"".join(self.parts)
        digest = hashlib.md5(body).hexdigest().encode("ascii")
        trailer = b"trailer\n<< /ID [<%s> <%s>] /Info %d 0 R /Root %d 0 R /Size %d >>\nstartxref\n%d\n%%%%EOF\n" % (
            digest,
            digest,
            info,
            root,
            n + 1,
            len(body),
        )
        return body + b"".join(xref) + trailer


# ---- TrueType subsets ---------------------------------------------------------------------------

_KEPT: OrderedDict[tuple, tuple[bytes, bytes, int, bytes]] = OrderedDict()
_LOCK = threading.Lock()


def _subset_data(font: Any, name: bytes, subset: tuple[int, ...]) -> tuple[bytes, bytes, int, bytes]:
    """(widths array, compressed ToUnicode map, raw program length, compressed program) of
    ``subset`` of ``font`` (reportlab's ``TTFont``), kept per process (the last 48): a subset is
    the same bytes for the same characters in the same order."""
    key = (font.face.filename, name, subset)
    with _LOCK:  # reports may be written from several threads (clarion serve)
        hit = _KEPT.get(key)
        if hit is not None:
            _KEPT.move_to_end(key)
            return hit
    from reportlab.lib.rl_accel import fp_str
    from reportlab.pdfbase.ttfonts import makeToUnicodeCMap

    face = font.face
    widths = b"[ " + fp_str(*map(face.getCharWidth, subset)).encode("ascii") + b" ]"
    cmap = zlib.compress(makeToUnicodeCMap(name.decode("latin-1"), list(subset)).encode("latin-1"))
    raw = face.makeSubset(list(subset))
    hit = (widths, cmap, len(raw), zlib.compress(raw))
    with _LOCK:
        _KEPT[key] = hit
        if len(_KEPT) > 48:  # a subset font is ~20 kB compressed
            _KEPT.popitem(last=False)
    return hit


def embed_subsets(pdf: PdfFile, font: Any, prefix: str, subsets: list[list[int]]) -> dict[str, int]:
    """Write the subsets of ``font`` (reportlab's ``TTFont``) a document used: for subset ``n``
    (the characters coded 0, 1, ... in it) a ``/TrueType`` font named ``/{prefix}+{n}`` with its
    widths, its ToUnicode map and a font descriptor holding the subset's program (``/FontFile2``),
    as reportlab embeds them. Returns resource name -> font object number."""
    from reportlab.lib.rl_accel import fp_str
    from reportlab.pdfbase.ttfonts import FF_NONSYMBOLIC, FF_SYMBOLIC, SUBSETN

    face = font.face
    out: dict[str, int] = {}
    flags = (face.flags & ~FF_NONSYMBOLIC) | FF_SYMBOLIC
    for n, subset in enumerate(subsets):
        base = b"".join((SUBSETN(n), b"+", face.name, face.subfontNameX))
        widths, cmap, size, program = _subset_data(font, base, tuple(subset))
        file_num = pdf.stream(program, b"/Filter /FlateDecode /Length1 %d " % size, compress=False)
        desc = pdf.put(
            b"<< /Ascent %s /CapHeight %s /Descent %s /Flags %d /FontBBox [ %s ] /FontFile2 %d 0 R "
            b"/FontName /%s /ItalicAngle %s /MissingWidth %s /StemV %s /Type /FontDescriptor >>"
            % (
                fp_str(face.ascent).encode(),
                fp_str(face.capHeight).encode(),
                fp_str(face.descent).encode(),
                flags,
                fp_str(*face.bbox).encode(),
                file_num,
                base,
                fp_str(face.italicAngle).encode(),
                fp_str(face.defaultWidth).encode(),
                fp_str(face.stemV).encode(),
            )
        )
        umap = pdf.stream(cmap, b"/Filter /FlateDecode ", compress=False)
        name = f"{prefix}+{n}"
        out[name] = pdf.put(
            b"<< /BaseFont /%s /FirstChar 0 /FontDescriptor %d 0 R /LastChar %d /Name /%s /Subtype /TrueType "
            b"/ToUnicode %d 0 R /Type /Font /Widths %s >>"
            % (base, desc, len(subset) - 1, name.encode("ascii"), umap, widths)
        )
    return out
