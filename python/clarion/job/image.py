"""The image job: a folder of PNG / JPEG images (``dataset_type`` ``application/x-image``) explained
by Kernel SHAP over superpixels (``methods.shap.image_config``), with Clarify's outputs.

Outputs (Clarify's names where its CV jobs have them)::

    shap_<image>.jpeg             classification: the image's superpixels beside the heat map of
                                  the predicted label (blue raises the score, red lowers it)
    shap_<image>_box<k>.jpeg      object detection: the heat map of the k-th explained object (1-based)
    <image>_objects.jpeg          object detection: the explained objects' boxes
    explanations_shap/<image>_segments.npy  the superpixel map (H, W) the values refer to
    analysis.json                 ``explanations.image_shap``: per image the Shapley value of every
                                  superpixel, per label (classification) or per object (detection)

Images are read and explained one at a time, so memory holds one image and its masked batches.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
MSG_NO_IMAGES = "{path}: no PNG or JPEG images (files ending in .png, .jpg or .jpeg)"
MSG_BAD_IMAGE = "{path}: not a readable PNG or JPEG image ({error})"


def list_images(path: str) -> list[str]:
    """The image files under ``path`` (a folder, searched recursively, in sorted order; or one file)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    out = []
    for d, dirs, files in os.walk(path):
        dirs.sort()
        out += [os.path.join(d, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    if not out:
        raise ValueError(MSG_NO_IMAGES.format(path=path))
    return out


def read_image(path: str) -> np.ndarray:
    """A PNG / JPEG file as uint8 pixels: (H, W) for greyscale, else (H, W, 3) RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
            return np.asarray(im.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(MSG_BAD_IMAGE.format(path=path, error=exc)) from None


class ImageSource:
    """The images of a job (a folder or one file), in the shape of the tabular source's counters."""

    def __init__(self, data: Any) -> None:
        self.path = os.fspath(data)
        self.files = list_images(self.path)
        self.reader = None
        self.skipped = 0
        self.skipped_examples: list[str] = []

    def name(self, file: str) -> str:
        """The image's name: its path relative to the folder, without extension ('/' → '_')."""
        root = self.path if os.path.isdir(self.path) else os.path.dirname(self.path)
        rel = os.path.splitext(os.path.relpath(file, root))[0]
        return rel.replace(os.sep, "_").replace("/", "_")


def _label(names: list[Any] | None, k: int) -> str:
    return str(names[k]) if names is not None and k < len(names) else f"label{k}"


def run_images(job: Any, finish: Any) -> Any:
    """Explain every image of ``job.source`` and write the outputs (see the module docstring)."""
    from clarion._io import atomic_write_bytes
    from clarion._progress import Progress
    from clarion.explain.image import ImageShap
    from clarion.job.model import endpoint_for
    from clarion.report.image import boxes_image, encode_image, heatmap_image

    cfg, src = job.cfg, job.source
    sc = cfg.shap
    ic = sc.image_config
    p = cfg.predictor
    model = job.model_arg
    if model is None and p is not None and p.endpoint_url:
        model = endpoint_for(cfg, p.endpoint_url)
    if model is None:
        raise ValueError(
            "an image job needs a model: a callable on image batches (model=), --model module:attribute, "
            "or an endpoint (--endpoint / predictor.endpoint_url with content_type image/jpeg, image/png "
            "or application/x-npy)"
        )
    label_headers = list(p.label_headers) if p is not None and p.label_headers is not None else None
    od = ic.model_type == "OBJECT_DETECTION"
    explainer = ImageShap(
        model,
        model_type=ic.model_type,
        num_segments=ic.num_segments,
        segment_compactness=ic.segment_compactness,
        max_objects=ic.max_objects,
        iou_threshold=ic.iou_threshold,
        context=ic.context,
        probability_threshold=cfg.probability_threshold if od else None,
        baseline=_baseline(sc.baseline, job.base_dir),
        num_samples=sc.num_samples,
        use_logit=sc.use_logit,
        seed=job.seed,
        output_names=label_headers,
        memory_budget=job.budget,
    )
    seg_dir = os.path.join(job.out_dir, "explanations_shap")
    os.makedirs(seg_dir, exist_ok=True)
    bar = Progress("images", unit="images", enabled=job.progress)
    entries = []
    for file in src.files:
        name = src.name(file)
        x = read_image(file)
        e = explainer.explain([x], names=[name])
        seg, v, ev, pr = e.segments[0], e.values[0], e.expected_values[0], e.predictions[0]
        np.save(os.path.join(seg_dir, f"{name}_segments.npy"), seg)
        entry: dict[str, Any] = {
            "image": name,
            "file": os.path.relpath(file, src.path) if os.path.isdir(src.path) else os.path.basename(file),
            "height": int(x.shape[0]),
            "width": int(x.shape[1]),
            "num_segments": int(seg.max()) + 1,
            "num_samples": int(e.num_samples[0]),
            "exact": bool(e.exact[0]),
            "segments": f"explanations_shap/{name}_segments.npy",
        }
        heatmaps = []
        if od:
            objs = e.objects[0]
            entry["objects"] = []
            for j in range(objs.shape[0]):
                fn = f"shap_{name}_box{j + 1}.jpeg"
                atomic_write_bytes(os.path.join(job.out_dir, fn), encode_image(heatmap_image(x, e.heatmap(0, j), seg)))
                lab = _label(label_headers, int(objs[j, 0]))
                entry["objects"].append(
                    {
                        "object": j + 1,
                        "label": lab,
                        "score": float(objs[j, 1]),
                        "box": [float(t) for t in objs[j, 2:6]],
                        "expected_value": float(ev[j]),
                        "prediction": float(pr[j]),
                        "shap_values": [float(t) for t in v[j]],
                    }
                )
                heatmaps.append({"object": j + 1, "label": lab, "prediction": float(objs[j, 1]), "file": fn})
            fn = f"{name}_objects.jpeg"
            atomic_write_bytes(os.path.join(job.out_dir, fn), encode_image(boxes_image(x, objs)))
            entry["objects_file"] = fn
        else:
            k = int(np.argmax(pr))
            fn = f"shap_{name}.jpeg"
            atomic_write_bytes(os.path.join(job.out_dir, fn), encode_image(heatmap_image(x, e.heatmap(0, k), seg)))
            entry["predicted_label"] = _label(label_headers, k)
            entry["labels"] = {
                _label(label_headers, d): {
                    "expected_value": float(ev[d]),
                    "prediction": float(pr[d]),
                    "shap_values": [float(t) for t in v[:, d]],
                }
                for d in range(v.shape[1])
            }
            heatmaps.append(
                {
                    "label": _label(label_headers, k),
                    "prediction": float(pr[k]),
                    "expected_value": float(ev[k]),
                    "file": fn,
                }
            )
        entry["heatmaps"] = heatmaps
        entries.append(entry)
        bar.update(1)
    bar.close()
    job.n_rows = len(entries)
    job.notes.insert(0, f"{len(entries):,} images explained from {src.path}")
    analysis = {
        "version": "1.0",
        "explanations": {
            "image_shap": {
                "model_type": ic.model_type,
                "num_segments": ic.num_segments,
                "segment_compactness": ic.segment_compactness,
                "seed": int(job.seed),
                "images": entries,
            }
        },
    }
    return job._write(analysis, None, None, finish)


def _baseline(b: Any, base_dir: str) -> Any:
    """methods.shap.baseline for images: absent → each image's mean colour; an image file path."""
    if b is None:
        return "mean"
    if isinstance(b, str):
        path = b if os.path.isabs(b) else os.path.join(base_dir, b)
        return read_image(path)
    return np.asarray(b, dtype=np.float64)
