r"""Kernel SHAP for images: attributions to superpixels (Clarify's ``methods.shap.image_config``).

Each image is cut into superpixels by scikit-image's SLIC (``num_segments``,
``segment_compactness``); the superpixels are the players. A coalition ``z`` keeps the pixels of
its present superpixels and replaces the others by the baseline image's pixels; the compiled
masking kernel (``cpp/include/clarion/image_mask.hpp``, CPU and CUDA drivers) writes the masked
images of a range of coalitions straight into the model's batch. The game's value is the model's
score for the image:

.. math::

    v_x(z) = g\big(f(x \odot z + b \odot (1 - z))\big), \qquad
    \sum_m \phi_m = g(f(x)) - g(f(b)),

with ``g`` the identity or the logit (``use_logit``) and ``b`` the baseline image. The coalition
plan and the weighted least-squares operator are the tabular Kernel SHAP's
(:func:`clarion.explain._kernels.coalition_plan`, ``wls_operator``), computed once per distinct
number of superpixels and reused for every image with that many; exact mode (every coalition, when
``num_samples >= 2^M - 2``) gives the exact Shapley values of the game.

Object detection (``model_type="OBJECT_DETECTION"``): the model returns, per image, detections
``[class, score, x0, y0, x1, y1]`` (box corners normalised by the image's width and height, as
Clarify expects). The ``max_objects`` highest-scoring detections of the original image (at least
``probability_threshold`` when given) are the objects to explain. For object ``j`` the value of a
coalition is the score of the masked image's detection of the same class whose box overlaps ``j``'s
box best, provided its IoU is at least ``iou_threshold``; 0 when none does. ``context`` in [0, 1]
blends the area outside object ``j``'s box towards the baseline before the game starts
(``context * x + (1 - context) * b``; 1 keeps the surroundings, 0 replaces them by the baseline).

scikit-image is an optional dependency (``pip install clarion[image]``), imported only when an
image is segmented.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from clarion import _backend, _reference, options
from clarion.explain import _kernels

__all__ = [
    "IMAGE_MODEL_TYPES",
    "ImageExplanation",
    "ImageShap",
    "box_iou",
    "image_heatmap",
    "mask_images",
    "segment_image",
]

IMAGE_MODEL_TYPES = ("IMAGE_CLASSIFICATION", "OBJECT_DETECTION")
DEFAULT_NUM_SEGMENTS = 20
DEFAULT_COMPACTNESS = 5.0
DEFAULT_MAX_OBJECTS = 3
DEFAULT_IOU_THRESHOLD = 0.5
DEFAULT_CONTEXT = 1.0

MSG_MODEL_TYPE = "model_type must be one of {choices}, got {value!r}"
MSG_IMAGE_SHAPE = "{arg} must be an image of shape (H, W) or (H, W, C) with H, W >= 1, got shape {shape}"
MSG_IMAGE_DTYPE = "{arg} must hold numbers (uint8 or float), got dtype {dtype}"
MSG_IMAGE_NAN = "{arg} holds a non-finite pixel value at (row {row}, column {col})"
MSG_BASELINE_SHAPE = "baseline must have the shape of image {index} {want}, got {got}"
MSG_SEGMENTS_SHAPE = "segments[{index}] must have shape {want} (the image's height and width), got {got}"
MSG_RANGE = "{arg} must be in {lo_b}{lo}, {hi}{hi_b}, got {value!r}"
MSG_FEATURE_METHOD = 'feature_extraction_method must be "segmentation" (the only method Clarify has), got {value!r}'
MSG_SCORES = "model returned {got} for a batch of {n} images{where}: expected an array of shape ({n}, D) or ({n},)"
MSG_NONFINITE = "model returned a non-finite score ({value}) for image {row}, output {col}{where}"
MSG_DETECTIONS = (
    "object detection model returned {got} for a batch of {n} images{where}: expected, per image, "
    "rows [class, score, x0, y0, x1, y1] (an array of shape ({n}, K, 6) or a list of {n} arrays (K_i, 6))"
)
MSG_SKIMAGE = "segmenting images needs scikit-image (pip install 'clarion[image]' or pip install scikit-image)"
MSG_OUTPUTS = "model returned {got} outputs per image, but {want} before{where}"


# ---- the masking kernel --------------------------------------------------------------------------


def mask_images(
    image: Any,
    baseline: Any,
    segments: Any,
    Z: Any,
    s0: int = 0,
    s1: int | None = None,
    *,
    backend: str | None = None,
    n_jobs: int | None = None,
    out: np.ndarray | None = None,
) -> Any:
    """The masked images of coalitions ``Z[s0:s1]``: superpixels absent from a coalition take the
    baseline's pixels.

    Parameters
    ----------
    image, baseline : array of shape (H, W) or (H, W, C)
        uint8, float32 or float64 (the baseline is cast to the image's dtype). cupy arrays run the
        CUDA kernel.
    segments : int array of shape (H, W)
        The superpixel (player) of each pixel, in [0, M); -1 marks a pixel outside every player
        (it always keeps the image's value).
    Z : uint8 array of shape (S, M)
        Coalitions (1 = present).
    s0, s1 : int
        The range of coalitions to mask (default: all).
    backend : {"auto", "numpy", "cpu", "cuda"}, optional
    n_jobs : int, optional
        CPU threads (-1: all cores).
    out : ndarray, optional
        Host buffer of shape ``(s1 - s0, H, W[, C])`` and the image's dtype to write into.

    Returns
    -------
    array of shape (s1 - s0, H, W[, C])
    """
    S = int(np.shape(Z)[0])
    s1 = S if s1 is None else int(s1)
    impl = _backend.resolve(backend, image, baseline, segments, Z)
    xp = np
    if impl == "cuda":
        import cupy as xp
    x = xp.asarray(image)
    if x.ndim not in (2, 3):
        raise ValueError(MSG_IMAGE_SHAPE.format(arg="image", shape=x.shape))
    shape = x.shape
    C = 1 if x.ndim == 2 else shape[2]
    P = shape[0] * shape[1]
    x2 = xp.ascontiguousarray(x.reshape(P, C))
    b2 = xp.ascontiguousarray(xp.asarray(baseline).astype(x.dtype, copy=False).reshape(P, C))
    seg = xp.ascontiguousarray(xp.asarray(segments).reshape(P).astype(np.int32, copy=False))
    Zc = xp.ascontiguousarray(xp.asarray(Z, dtype=np.uint8))
    if impl == "numpy":
        res = _reference.image_mask(x2, b2, seg, Zc, s0, s1)
        return res.reshape((s1 - s0,) + shape)
    if impl == "cpu":
        if out is None:
            out = np.empty((s1 - s0, P, C), dtype=x.dtype)
        else:
            out = out.reshape(s1 - s0, P, C)
        _backend.core().image_mask_cpu(x2, b2, seg, Zc, int(s0), int(s1), out, _kernels.n_threads(n_jobs))
        return out.reshape((s1 - s0,) + shape)
    res = xp.empty((s1 - s0, P, C), dtype=x.dtype)
    import cupy

    _backend.core().image_mask_cuda(x2, b2, seg, Zc, int(s0), int(s1), res, int(cupy.cuda.get_current_stream().ptr))
    return res.reshape((s1 - s0,) + shape)


# ---- segmentation and geometry -------------------------------------------------------------------


def _check_image(img: Any, arg: str) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1 or (a.ndim == 3 and a.shape[2] < 1):
        raise ValueError(MSG_IMAGE_SHAPE.format(arg=arg, shape=a.shape))
    if a.dtype.kind not in "uif" or a.dtype == np.bool_:
        raise TypeError(MSG_IMAGE_DTYPE.format(arg=arg, dtype=a.dtype))
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(MSG_IMAGE_NAN.format(arg=arg, row=int(bad[0]), col=int(bad[1])))
    if a.dtype.kind in "ui" and a.dtype != np.uint8:
        a = a.astype(np.float64)
    elif a.dtype == np.float16:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def segment_image(
    image: Any,
    *,
    num_segments: int = DEFAULT_NUM_SEGMENTS,
    compactness: float = DEFAULT_COMPACTNESS,
) -> np.ndarray:
    """Superpixels of one image by scikit-image's SLIC, relabelled 0..M-1 in raster order of first
    appearance.

    Parameters
    ----------
    image : array of shape (H, W) or (H, W, C)
    num_segments : int, default 20
        Approximate number of superpixels (SLIC's ``n_segments``).
    compactness : float, default 5
        SLIC's balance of colour and space proximity (higher: squarer superpixels).

    Returns
    -------
    int32 array of shape (H, W)
    """
    try:
        from skimage.segmentation import slic
    except ImportError as exc:  # pragma: no cover - exercised without scikit-image
        raise ImportError(MSG_SKIMAGE) from exc
    a = _check_image(image, "image")
    f = a.astype(np.float64)
    if a.dtype == np.uint8:
        f = f / 255.0
    channel_axis = None if a.ndim == 2 else -1
    if a.ndim == 3 and a.shape[2] not in (3,):
        channel_axis = -1
    labels = slic(
        f,
        n_segments=int(num_segments),
        compactness=float(compactness),
        start_label=0,
        channel_axis=channel_axis,
        convert2lab=bool(a.ndim == 3 and a.shape[2] == 3),
        enforce_connectivity=True,
    )
    _, first = np.unique(labels.reshape(-1), return_index=True)
    order = np.argsort(first)  # labels in order of first appearance
    remap = np.empty(int(labels.max()) + 1, dtype=np.int32)
    uniq = np.unique(labels.reshape(-1))
    remap[uniq[order]] = np.arange(len(uniq), dtype=np.int32)
    return remap[labels].astype(np.int32)


def box_iou(a: Any, b: Any) -> np.ndarray:
    r"""Intersection over union of boxes ``[x0, y0, x1, y1]``: ``(n, 4)`` by ``(m, 4)`` → ``(n, m)``.

    .. math:: \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A| + |B| - |A \cap B|}

    0 when the union is empty (degenerate boxes).
    """
    A = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    B = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(A[:, None, 2], B[None, :, 2]) - np.maximum(A[:, None, 0], B[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(A[:, None, 3], B[None, :, 3]) - np.maximum(A[:, None, 1], B[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(A[:, 2] - A[:, 0], 0, None) * np.clip(A[:, 3] - A[:, 1], 0, None)
    area_b = np.clip(B[:, 2] - B[:, 0], 0, None) * np.clip(B[:, 3] - B[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def image_heatmap(values: Any, segments: Any) -> np.ndarray:
    """Per-pixel attribution map: each pixel gets its superpixel's value (NaN for pixels of no
    superpixel). ``values`` (M,), ``segments`` (H, W) → (H, W) float64."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    seg = np.asarray(segments)
    out = np.full(seg.shape, np.nan)
    inside = seg >= 0
    out[inside] = v[seg[inside]]
    return out


# ---- the explanation -----------------------------------------------------------------------------


class ImageExplanation:
    """Superpixel attributions of N images.

    Attributes
    ----------
    values : list of ndarray
        Per image, ``(M_i, D)`` for a classifier (one column per model output) or ``(J_i, M_i)``
        for a detector (one row per explained object). In link space.
    expected_values : list of ndarray
        Per image, ``g(f(baseline))``: ``(D,)`` for a classifier, ``(J_i,)`` for a detector.
    predictions : list of ndarray
        Per image, ``g(f(image))``: ``(D,)``, or ``(J_i,)`` (the matched score of each object).
    segments : list of ndarray
        Per image, the ``(H, W)`` superpixel map.
    objects : list of ndarray or None
        Detectors: per image, the explained detections ``(J_i, 6)`` ``[class, score, x0, y0, x1,
        y1]``, best first. None for classifiers.
    output_names : list or None
        Names of the classifier's outputs when known.
    model_type : str
    exact : list of bool
        Per image, whether every coalition was enumerated.
    num_samples : list of int
        Per image, coalitions evaluated (S).
    """

    def __init__(
        self,
        values: list[np.ndarray],
        expected_values: list[np.ndarray],
        predictions: list[np.ndarray],
        segments: list[np.ndarray],
        *,
        objects: list[np.ndarray] | None,
        output_names: list[Any] | None,
        model_type: str,
        exact: list[bool],
        num_samples: list[int],
    ) -> None:
        self.values = values
        self.expected_values = expected_values
        self.predictions = predictions
        self.segments = segments
        self.objects = objects
        self.output_names = output_names
        self.model_type = model_type
        self.exact = exact
        self.num_samples = num_samples

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"ImageExplanation({len(self)} images, model_type={self.model_type})"

    def heatmap(self, index: int, target: int | None = None) -> np.ndarray:
        """The ``(H, W)`` attribution map of image ``index``: for a classifier, of output ``target``
        (default: the predicted output, the largest ``predictions`` entry); for a detector, of
        object ``target`` (default 0, the best-scoring one)."""
        v = self.values[index]
        if self.model_type == "OBJECT_DETECTION":
            t = 0 if target is None else int(target)
            return image_heatmap(v[t], self.segments[index])
        t = int(np.argmax(self.predictions[index])) if target is None else int(target)
        return image_heatmap(v[:, t], self.segments[index])


class _Plan:
    """One coalition plan and operator per number of superpixels."""

    def __init__(self, impl: str, num_samples: int | None, seed: int) -> None:
        self.impl, self.num_samples, self.seed = impl, num_samples, seed
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = {}

    def get(self, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """(Z [S, M], L [M, S], c [M], exact) for M >= 2 players."""
        if M not in self._cache:
            cap = 2**M - 2 if M <= 30 else 2**30
            req = 2 * M + 2**11 if self.num_samples is None else int(self.num_samples)
            n = min(req, cap)
            Z, w, _block = _kernels.coalition_plan(self.impl, M, n, self.seed, True)
            L, c, _status = _kernels.wls_operator(self.impl, Z, w)
            exact = M <= 30 and Z.shape[0] == 2**M - 2
            self._cache[M] = (np.ascontiguousarray(Z), L, c, exact)
        return self._cache[M]


def _as_batch_model(model: Any, detections: bool = False) -> Callable[[np.ndarray], Any]:
    """``model`` as ``f(images (B, H, W[, C])) -> raw output``: an object with ``predict_images``
    (an :class:`clarion.models.Endpoint` with an image content type), a plain callable, or a
    clarion Model / scikit-learn estimator (called on the flattened pixels)."""
    pi = getattr(model, "predict_images", None)
    if callable(pi):
        return lambda batch: pi(batch, detections=detections)
    from clarion.models import Model, as_model

    if isinstance(model, Model) or (not callable(model) and hasattr(model, "predict")):
        m = model if isinstance(model, Model) else as_model(model)
        return lambda batch: m.predict(np.asarray(batch).reshape(len(batch), -1))
    if not callable(model):
        raise TypeError(f"model must be a callable on a batch of images, got {type(model).__name__}")
    return model


def _scores(raw: Any, n: int, where: str) -> np.ndarray:
    a = raw.get() if hasattr(raw, "get") and hasattr(raw, "__cuda_array_interface__") else raw
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(MSG_SCORES.format(got=f"a {type(raw).__name__}", n=n, where=where)) from None
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n:
        raise ValueError(MSG_SCORES.format(got=f"an array of shape {a.shape}", n=n, where=where))
    if not np.isfinite(a).all():
        r, c = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(MSG_NONFINITE.format(value=a[r, c], row=int(r), col=int(c), where=where))
    return a


def _detections(raw: Any, n: int, where: str) -> list[np.ndarray]:
    """Per image, (K, 6) float64 detections; padding rows (class < 0, or any NaN) dropped."""
    items = list(raw) if not isinstance(raw, np.ndarray) else [raw[i] for i in range(raw.shape[0])]
    if len(items) != n:
        raise ValueError(MSG_DETECTIONS.format(got=f"{len(items)} entries", n=n, where=where))
    out = []
    for it in items:
        try:
            d = np.asarray(it, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(MSG_DETECTIONS.format(got="a non-numeric entry", n=n, where=where)) from None
        if d.size == 0:
            d = d.reshape(0, 6)
        if d.ndim != 2 or d.shape[1] != 6:
            raise ValueError(MSG_DETECTIONS.format(got=f"an entry of shape {d.shape}", n=n, where=where))
        ok = np.isfinite(d).all(axis=1) & (d[:, 0] >= 0)
        out.append(d[ok])
    return out


def _match(dets: np.ndarray, obj: np.ndarray, iou_threshold: float) -> float:
    """Score of the detection of obj's class with the highest IoU >= iou_threshold (0 if none);
    ties in IoU go to the higher score."""
    if dets.shape[0] == 0:
        return 0.0
    same = dets[dets[:, 0] == obj[0]]
    if same.shape[0] == 0:
        return 0.0
    iou = box_iou(same[:, 2:6], obj[None, 2:6])[:, 0]
    ok = iou >= iou_threshold
    if not ok.any():
        return 0.0
    cand = np.flatnonzero(ok)
    best = cand[np.lexsort((-same[cand, 1], -iou[cand]))[0]]
    return float(same[best, 1])


def _in_range(value: Any, arg: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if isinstance(value, bool) or not (v > lo if lo_open else v >= lo) or not v <= hi:
        raise ValueError(MSG_RANGE.format(arg=arg, lo_b="(" if lo_open else "[", lo=lo, hi=hi, hi_b="]", value=value))
    return v


class ImageShap:
    """Kernel SHAP over superpixels for image classifiers and object detectors (Clarify's
    ``image_config``).

    Parameters
    ----------
    model : callable, Endpoint, clarion Model or estimator
        Called on a batch of images ``(B, H, W[, C])`` (the images' dtype: uint8 for images read
        from files). Classifier: returns scores ``(B, D)`` or ``(B,)``. Detector: per image, rows
        ``[class, score, x0, y0, x1, y1]`` with normalised box corners. A clarion Model or a
        scikit-learn estimator is called on the flattened pixels ``(B, H*W*C)``; an
        :class:`clarion.models.Endpoint` with content type ``image/jpeg``, ``image/png`` or
        ``application/x-npy`` through its ``predict_images``.
    model_type : {"IMAGE_CLASSIFICATION", "OBJECT_DETECTION"}
    num_segments : int, default 20
        Approximate number of superpixels per image (SLIC).
    segment_compactness : float, default 5
        SLIC's compactness.
    feature_extraction_method : {"segmentation"}
        Clarify's only method.
    max_objects : int, default 3
        Detectors: explain the ``max_objects`` best-scoring detections.
    iou_threshold : float, default 0.5
        Detectors: the least IoU for a detection of a masked image to count as the object.
    context : float, default 1
        Detectors: how much of the surroundings of an object's box stays (1: all; 0: the
        surroundings are the baseline's).
    probability_threshold : float, optional
        Detectors: detections of the original image scoring below it are not explained.
    baseline : "mean", number, array or callable, default "mean"
        The image that masked superpixels take: ``"mean"`` (each image's per-channel mean), a
        number (every pixel), an array broadcastable to the image, or ``f(image) -> array``.
    num_samples : int, optional
        Coalitions per image (default ``2 M + 2048``, capped at ``2^M - 2``: exact when it fits).
    use_logit : bool, default False
        Explain ``logit(score)`` (classifiers).
    seed : int, optional
        Seed of the coalition sampling; None draws one (``seed_``).
    output_names : sequence, optional
        Names of a classifier's outputs.
    batch_images : int, default 256
        Masked images per model call at most (also bounded by ``memory_budget``).
    memory_budget : int or str, default "1GiB"
    backend : {"auto", "numpy", "cpu", "cuda"}, optional
    n_jobs : int, optional
        CPU threads of the masking kernel (-1: all cores).
    """

    def __init__(
        self,
        model: Any,
        *,
        model_type: Literal["IMAGE_CLASSIFICATION", "OBJECT_DETECTION"] = "IMAGE_CLASSIFICATION",
        num_segments: int = DEFAULT_NUM_SEGMENTS,
        segment_compactness: float = DEFAULT_COMPACTNESS,
        feature_extraction_method: str = "segmentation",
        max_objects: int = DEFAULT_MAX_OBJECTS,
        iou_threshold: float = DEFAULT_IOU_THRESHOLD,
        context: float = DEFAULT_CONTEXT,
        probability_threshold: float | None = None,
        baseline: Any = "mean",
        num_samples: int | None = None,
        use_logit: bool = False,
        seed: int | None = None,
        output_names: Sequence[Any] | None = None,
        batch_images: int = 256,
        memory_budget: int | str = "1GiB",
        backend: str | None = None,
        n_jobs: int | None = None,
    ) -> None:
        if model_type not in IMAGE_MODEL_TYPES:
            raise ValueError(MSG_MODEL_TYPE.format(choices=list(IMAGE_MODEL_TYPES), value=model_type))
        if feature_extraction_method != "segmentation":
            raise ValueError(MSG_FEATURE_METHOD.format(value=feature_extraction_method))
        if isinstance(num_segments, bool) or not isinstance(num_segments, (int, np.integer)) or num_segments < 1:
            raise ValueError(f"num_segments must be an integer >= 1, got {num_segments!r}")
        if isinstance(max_objects, bool) or not isinstance(max_objects, (int, np.integer)) or max_objects < 1:
            raise ValueError(f"max_objects must be an integer >= 1, got {max_objects!r}")
        self.segment_compactness = _in_range(segment_compactness, "segment_compactness", 0.0, np.inf, lo_open=True)
        self.iou_threshold = _in_range(iou_threshold, "iou_threshold", 0.0, 1.0)
        self.context = _in_range(context, "context", 0.0, 1.0)
        self.probability_threshold = (
            None if probability_threshold is None else _in_range(probability_threshold, "probability_threshold", 0, 1)
        )
        if num_samples is not None:
            num_samples = options.num_samples(num_samples)
        if isinstance(batch_images, bool) or not isinstance(batch_images, (int, np.integer)) or batch_images < 1:
            raise ValueError(f"batch_images must be an integer >= 1, got {batch_images!r}")
        self.model = model
        self._fn = _as_batch_model(model, model_type == "OBJECT_DETECTION")
        self.model_type = model_type
        self.num_segments = int(num_segments)
        self.max_objects = int(max_objects)
        self.baseline = baseline
        self.num_samples = num_samples
        self.use_logit = bool(use_logit)
        self.seed_ = int(secrets.randbits(63)) if seed is None else options.seed(seed)
        self.output_names = None if output_names is None else list(output_names)
        self.batch_images = int(batch_images)
        self._budget = options.byte_size(memory_budget)
        self._backend = backend
        self._threads = _kernels.n_threads(n_jobs)
        impl = _backend.resolve(backend)
        self._plans = _Plan("numpy" if impl == "numpy" else "cpu", num_samples, self.seed_)
        self._n_outputs: int | None = None

    # ------------------------------------------------------------------------------------------
    def _baseline_for(self, x: np.ndarray, index: int) -> np.ndarray:
        b = self.baseline
        if isinstance(b, str):
            if b != "mean":
                raise ValueError(f'baseline must be "mean", a number, an array or a callable, got {b!r}')
            m = x.reshape(-1, 1 if x.ndim == 2 else x.shape[2]).astype(np.float64).mean(axis=0)
            out = np.broadcast_to(m.reshape((1, 1) + (() if x.ndim == 2 else (x.shape[2],))), x.shape)
            if x.dtype == np.uint8:
                out = np.rint(out)
            return np.ascontiguousarray(out.reshape(x.shape).astype(x.dtype))
        if callable(b):
            b = b(x)
        arr = np.asarray(b)
        if arr.ndim == 0:
            return np.full(x.shape, arr, dtype=x.dtype)
        if arr.ndim == 3 and x.ndim == 2 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        try:
            arr = np.broadcast_to(arr, x.shape)
        except ValueError:
            raise ValueError(MSG_BASELINE_SHAPE.format(index=index, want=x.shape, got=np.shape(b))) from None
        arr = _check_image(np.ascontiguousarray(arr), "baseline")
        return np.ascontiguousarray(arr.astype(x.dtype))

    def _link(self, v: np.ndarray) -> np.ndarray:
        if not self.use_logit:
            return v
        p = np.clip(v, 1e-15, 1 - 1e-15)
        return np.log(p / (1 - p))

    def _call(self, batch: np.ndarray, where: str) -> Any:
        return self._fn(batch)

    def _classify(self, batch: np.ndarray, where: str) -> np.ndarray:
        s = _scores(self._call(batch, where), len(batch), where)
        if self._n_outputs is None:
            self._n_outputs = s.shape[1]
        elif s.shape[1] != self._n_outputs:
            raise ValueError(MSG_OUTPUTS.format(got=s.shape[1], want=self._n_outputs, where=where))
        return s

    def _detect(self, batch: np.ndarray, where: str) -> list[np.ndarray]:
        return _detections(self._call(batch, where), len(batch), where)

    def _batch_size(self, x: np.ndarray, S: int) -> int:
        per = max(1, x.nbytes)
        return int(max(1, min(S, self.batch_images, self._budget // per)))

    def _coalition_values(
        self, xs: list[np.ndarray], b: np.ndarray, seg: np.ndarray, Z: np.ndarray, value: Callable, where: str
    ) -> np.ndarray:
        """value(masked batch) for each coalition and each explained image in ``xs`` (images that
        share the same baseline, segments and plan): (len(xs), S, D)."""
        S = Z.shape[0]
        B = self._batch_size(xs[0], S)
        out = None
        buf = np.empty((B,) + xs[0].shape, dtype=xs[0].dtype)
        for j, x in enumerate(xs):
            for s0 in range(0, S, B):
                s1 = min(S, s0 + B)
                masked = mask_images(
                    x, b, seg, Z, s0, s1, backend=self._backend, n_jobs=self._threads, out=buf[: s1 - s0]
                )
                v = value(masked, f"{where} (coalitions {s0}..{s1 - 1})")
                if out is None:
                    out = np.empty((len(xs), S, v.shape[1]))
                out[j, s0:s1] = v
        return out

    def explain(
        self,
        images: Any,
        *,
        segments: Sequence[Any] | None = None,
        names: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImageExplanation:
        """Superpixel attributions of each image.

        Parameters
        ----------
        images : array (N, H, W[, C]) or sequence of arrays (H, W[, C])
            Images may differ in size when given as a sequence (each is then its own model call).
        segments : sequence of int arrays (H, W), optional
            Superpixel maps to use instead of SLIC's (values in [0, M), -1 for no player).
        names : sequence of str, optional
            Image names, for error messages.
        progress : callable, optional
            ``progress(done, total)`` in images.

        Returns
        -------
        ImageExplanation
        """
        imgs = [images[i] for i in range(len(images))]
        if segments is not None and len(segments) != len(imgs):
            raise ValueError(f"segments must have one map per image ({len(imgs)}), got {len(segments)}")
        vals, evs, preds, segs, objs, exact, ns = [], [], [], [], [], [], []
        for i, img in enumerate(imgs):
            label = names[i] if names is not None else f"image {i}"
            x = _check_image(img, f"images[{i}]")
            if segments is None:
                seg = segment_image(x, num_segments=self.num_segments, compactness=self.segment_compactness)
            else:
                seg = np.asarray(segments[i])
                if seg.shape != x.shape[:2]:
                    raise ValueError(MSG_SEGMENTS_SHAPE.format(index=i, want=x.shape[:2], got=seg.shape))
                if seg.dtype.kind not in "iu" or (seg.size and (seg.min() < -1)):
                    raise ValueError(f"segments[{i}] must hold integers >= -1")
                seg = seg.astype(np.int32)
            b = self._baseline_for(x, i)
            where = f" (on {label})"
            if self.model_type == "IMAGE_CLASSIFICATION":
                v, ev, pr, e, S = self._explain_classification(x, b, seg, where)
                objs.append(None)
            else:
                v, ev, pr, e, S, ob = self._explain_detection(x, b, seg, where)
                objs.append(ob)
            vals.append(v)
            evs.append(ev)
            preds.append(pr)
            segs.append(seg)
            exact.append(e)
            ns.append(S)
            if progress is not None:
                progress(i + 1, len(imgs))
        return ImageExplanation(
            vals,
            evs,
            preds,
            segs,
            objects=objs if self.model_type == "OBJECT_DETECTION" else None,
            output_names=self.output_names,
            model_type=self.model_type,
            exact=exact,
            num_samples=ns,
        )

    def _solve(self, Y: np.ndarray, base: np.ndarray, fx: np.ndarray, L: np.ndarray, c: np.ndarray) -> np.ndarray:
        """phi = L (Y - base) + c (f(x) - base): Y (S, D), base and fx (D,) → (M, D)."""
        return L @ (Y - base[None, :]) + c[:, None] * (fx - base)[None, :]

    def _players(self, seg: np.ndarray) -> int:
        return int(seg.max()) + 1 if seg.size and seg.max() >= 0 else 0

    def _explain_classification(self, x, b, seg, where):
        M = self._players(seg)
        fb = self._link(self._classify(np.stack([x, b]), where))
        fx, base = fb[0], fb[1]
        if M == 0:
            return np.zeros((0, fx.shape[0])), base, fx, True, 0
        if M == 1:  # one player: its Shapley value is the whole difference
            return (fx - base)[None, :], base, fx, True, 0
        Z, L, c, exact = self._plans.get(M)
        Y = self._link(self._coalition_values([x], b, seg, Z, self._classify, where)[0])
        return self._solve(Y, base, fx, L, c), base, fx, exact, Z.shape[0]

    def _explain_detection(self, x, b, seg, where):
        dets = self._detect(x[None], where)[0]
        if self.probability_threshold is not None:
            dets = dets[dets[:, 1] >= self.probability_threshold]
        order = np.argsort(-dets[:, 1], kind="stable")[: self.max_objects]
        objs = dets[order]
        J = objs.shape[0]
        M = self._players(seg)
        if J == 0:
            return np.zeros((0, M)), np.zeros(0), np.zeros(0), True, 0, objs
        H, W = x.shape[:2]
        xs = []
        for j in range(J):  # the image of object j's game: its surroundings blended by context
            if self.context >= 1.0:
                xs.append(x)
                continue
            x0, y0, x1, y1 = objs[j, 2:6]
            rows = (np.arange(H) + 0.5) / H
            cols = (np.arange(W) + 0.5) / W
            inside = ((rows >= y0) & (rows <= y1))[:, None] & ((cols >= x0) & (cols <= x1))[None, :]
            blend = self.context * x.astype(np.float64) + (1.0 - self.context) * b.astype(np.float64)
            if x.dtype == np.uint8:
                blend = np.rint(blend)
            if x.ndim == 3:
                inside = inside[:, :, None]
            xs.append(np.ascontiguousarray(np.where(inside, x, blend.astype(x.dtype))))
        shared = self.context >= 1.0

        def matched(batch, where_):
            d = self._detect(batch, where_)
            return np.array([[_match(dk, objs[j], self.iou_threshold) for j in range(J)] for dk in d])

        ends = matched(np.stack(([x] if shared else xs) + [b]), where)  # f(x_j) and f(b) for every object
        if shared:
            fx = ends[0]
        else:
            fx = np.array([ends[j, j] for j in range(J)])
        base = ends[-1]
        if M <= 1:
            v = np.zeros((J, M)) if M == 0 else (fx - base)[:, None]
            return v, base, fx, True, 0, objs
        Z, L, c, exact = self._plans.get(M)
        if shared:
            Y = self._coalition_values([x], b, seg, Z, matched, where)[0]  # (S, J)
            phi = self._solve(Y, base, fx, L, c).T  # (J, M)
        else:
            phi = np.empty((J, M))
            for j in range(J):
                Yj = self._coalition_values([xs[j]], b, seg, Z, matched, where)[0][:, j : j + 1]
                phi[j] = self._solve(Yj, base[j : j + 1], fx[j : j + 1], L, c)[:, 0]
        return phi, base, fx, exact, Z.shape[0], objs
