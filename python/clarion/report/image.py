"""Heat maps of image attributions (Clarify's computer-vision outputs) and their report section.

Colours follow Clarify's CV report: shades of **blue** for superpixels with a positive Shapley
value (they raise the explained score), shades of **red** for negative ones, the intensity
proportional to ``|value| / max |value|`` over the image. A heat-map file shows the image with its
superpixel boundaries (left) beside the heat map blended over the image (right).

Pillow (a dependency of matplotlib and scikit-image, the ``[image]`` extra) encodes the files; it
is imported only when one is written.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "boxes_image",
    "encode_image",
    "has_images",
    "heatmap_image",
    "image_section_html",
    "image_section_markdown",
    "image_sections",
]

_POSITIVE = np.array([0.0, 0.0, 255.0])  # blue: raises the score
_NEGATIVE = np.array([255.0, 0.0, 0.0])  # red: lowers it
_BOUNDARY = np.array([255.0, 255.0, 0.0])
_BOX = np.array([0.0, 255.0, 0.0])


def _rgb(image: Any) -> np.ndarray:
    """The image as float RGB in [0, 255], (H, W, 3)."""
    a = np.asarray(image)
    f = a.astype(np.float64)
    if a.dtype != np.uint8:  # float images: [0, 1] scaled up, anything else min-max normalised
        lo, hi = (float(np.min(f)), float(np.max(f))) if f.size else (0.0, 1.0)
        f = f * 255.0 if lo >= 0 and hi <= 1 else (f - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(f)
    if f.ndim == 2:
        f = np.repeat(f[:, :, None], 3, axis=2)
    elif f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    elif f.shape[2] >= 4:
        f = f[:, :, :3]
    elif f.shape[2] == 2:
        f = np.concatenate([f, f[:, :, :1]], axis=2)
    return f


def _boundaries(segments: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour is in another superpixel."""
    b = np.zeros(segments.shape, dtype=bool)
    b[:, :-1] |= segments[:, :-1] != segments[:, 1:]
    b[:-1, :] |= segments[:-1, :] != segments[1:, :]
    return b


def heatmap_image(image: Any, heat: Any, segments: Any, *, alpha: float = 0.6) -> np.ndarray:
    """The side-by-side heat-map picture of one explanation: ``(H, 2 W, 3)`` uint8.

    Parameters
    ----------
    image : array (H, W) or (H, W, C)
    heat : array (H, W)
        Per-pixel attribution (a superpixel's Shapley value on each of its pixels; NaN: none).
    segments : int array (H, W)
    alpha : float
        Largest weight of the colour over the image.
    """
    base = _rgb(image)
    h = np.nan_to_num(np.asarray(heat, dtype=np.float64), nan=0.0)
    scale = float(np.max(np.abs(h))) if h.size else 0.0
    t = np.abs(h) / scale if scale > 0 else np.zeros_like(h)
    colour = np.where((h >= 0)[:, :, None], _POSITIVE, _NEGATIVE)
    wgt = (alpha * t)[:, :, None]
    blended = (1 - wgt) * base + wgt * colour
    left = base.copy()
    left[_boundaries(np.asarray(segments))] = _BOUNDARY
    return np.clip(np.rint(np.concatenate([left, blended], axis=1)), 0, 255).astype(np.uint8)


def boxes_image(image: Any, objects: Any) -> np.ndarray:
    """The image with the explained detections' boxes drawn (normalised ``[class, score, x0, y0,
    x1, y1]`` rows): ``(H, W, 3)`` uint8."""
    out = _rgb(image)
    H, W = out.shape[:2]
    for row in np.asarray(objects, dtype=np.float64).reshape(-1, 6):
        x0, x1 = (int(np.clip(round(v * W), 0, W - 1)) for v in (row[2], row[4]))
        y0, y1 = (int(np.clip(round(v * H), 0, H - 1)) for v in (row[3], row[5]))
        out[y0 : y1 + 1, x0] = out[y0 : y1 + 1, x1] = _BOX
        out[y0, x0 : x1 + 1] = out[y1, x0 : x1 + 1] = _BOX
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def encode_image(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    """``rgb`` (H, W, 3) uint8 encoded as JPEG (quality 95) or PNG."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    kw = {"quality": 95} if fmt.upper() in ("JPEG", "JPG") else {}
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="JPEG" if fmt.upper() == "JPG" else fmt.upper(), **kw)
    return buf.getvalue()


def _images(analysis: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    block = (analysis.get("explanations") or {}).get("image_shap") or {}
    imgs = block.get("images") if isinstance(block, Mapping) else None
    return block, [e for e in (imgs or []) if isinstance(e, Mapping)]


def has_images(analysis: Mapping[str, Any]) -> bool:
    """Whether ``analysis`` has image attributions (``explanations.image_shap.images``)."""
    return bool(_images(analysis)[1])


def _fmt(v: Any) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return "n/a"


def _at(image_dir: str, name: Any) -> str:
    """A heat map's link: its file name under ``image_dir`` (a relative URL path, "" = beside)."""
    name = str(name or "")
    return f"{image_dir.rstrip('/')}/{name}" if image_dir and image_dir != "." else name


def image_section_html(analysis: Mapping[str, Any], image_dir: str = "") -> str:
    """The report's image section from ``explanations.image_shap`` ("" when there is none): per
    image, its heat maps with the explained label or object and the prediction. The heat maps are
    linked by relative path: beside the report, or under ``image_dir`` (the analysis folder
    relative to the report's, with ``/``, when the report is written elsewhere). Every string
    from data is escaped."""
    block, imgs = _images(analysis)
    if not imgs:
        return ""
    esc = html.escape
    out = [
        "<h2>Image attributions (Kernel SHAP over superpixels)</h2>"
        f"<p class='muted'>model type {esc(str(block.get('model_type', '')))}; blue: superpixels that raise "
        "the score, red: superpixels that lower it; left: the superpixels.</p><div class='grid'>"
    ]
    for e in imgs:
        for hm in e.get("heatmaps") or []:
            if not isinstance(hm, Mapping):
                continue
            what = (
                f"object {esc(str(hm.get('object')))} (class {esc(str(hm.get('label')))}, "
                f"score {esc(_fmt(hm.get('prediction')))})"
                if "object" in hm
                else f"label {esc(str(hm.get('label')))} (score {esc(_fmt(hm.get('prediction')))}, "
                f"baseline {esc(_fmt(hm.get('expected_value')))})"
            )
            src = esc(_at(image_dir, hm.get("file", "")), quote=True)
            out.append(
                f"<section class='card image'><h3>{esc(str(e.get('image', '')))}</h3>"
                f"<img src='{src}' alt='heat map of {esc(str(e.get('image', '')), quote=True)}' "
                f"style='max-width:100%'><p class='muted'>{what}</p></section>"
            )
    out.append("</div>")
    return "".join(out)


def image_section_markdown(analysis: Mapping[str, Any], image_dir: str = "") -> str:
    """The Markdown twin of :func:`image_section_html` (links to the heat-map files, under
    ``image_dir`` as there)."""
    from urllib.parse import quote

    from clarion.report.svg import md

    _, imgs = _images(analysis)
    if not imgs:
        return ""
    lines = ["## Image attributions", ""]
    for e in imgs:
        for hm in e.get("heatmaps") or []:
            if isinstance(hm, Mapping):
                link = quote(_at(image_dir, hm.get("file", "")))
                lines.append(
                    f"- {md(str(e.get('image', '')))}: {md(str(hm.get('label')))} "
                    f"(score {md(_fmt(hm.get('prediction')))}) — ![heat map]({link})"
                )
    lines.append("")
    return "\n".join(lines)


def image_sections(analysis: Mapping[str, Any], base_dir: str) -> Any:
    """The image section for paged reports (the PDF): per image, its heat maps read from
    ``base_dir`` (the output folder the ``file`` names are relative to) with the explained label or
    object, as :func:`image_section_html` shows them; None without images. A heat map whose file is
    missing is named, not drawn."""
    import os

    from clarion.report.model import Para, Picture, Section, Span

    block, imgs = _images(analysis)
    if not imgs:
        return None
    cards = []
    for e in imgs:
        for hm in e.get("heatmaps") or []:
            if not isinstance(hm, Mapping):
                continue
            what = (
                f"object {hm.get('object')} (class {hm.get('label')}, score {_fmt(hm.get('prediction'))})"
                if "object" in hm
                else f"label {hm.get('label')} (score {_fmt(hm.get('prediction'))}, "
                f"baseline {_fmt(hm.get('expected_value'))})"
            )
            path = os.path.join(base_dir, str(hm.get("file", "")))
            blocks: list[Any] = []
            try:
                from PIL import Image

                with Image.open(path) as im:
                    w, h = im.size
                blocks.append(Picture(os.path.abspath(path), 360.0, 360.0 * h / max(w, 1)))
            except (OSError, ValueError, ImportError):
                blocks.append(Para([Span(f"heat map {hm.get('file')} not found beside the report", "err")]))
            blocks.append(Para([Span(what)], cls="muted"))
            cards.append(Section(str(e.get("image", "")), 3, blocks, cls="image"))
    intro = Para(
        [
            Span(
                f"model type {block.get('model_type', '')}; blue: superpixels that raise the score, red: "
                "superpixels that lower it; left: the superpixels."
            )
        ],
        cls="muted",
    )
    return Section("Image attributions (Kernel SHAP over superpixels)", 2, [intro, *cards])
