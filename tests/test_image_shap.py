"""Image Kernel SHAP (clarion.explain.image, Clarify's image_config): the compiled masking kernel
against its numpy reference, Shapley values against closed forms and shap, object detection by IoU
matching, the config section, the image-folder job with its heat maps and report, and images
through a real HTTP endpoint (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("skimage")
PIL = pytest.importorskip("PIL")

import clarion  # noqa: E402
from clarion import _backend, _reference  # noqa: E402
from clarion.config import ConfigError, ConfigWarning, read_config  # noqa: E402
from clarion.explain import ImageShap  # noqa: E402
from clarion.explain.image import (  # noqa: E402
    _match,
    box_iou,
    image_heatmap,
    mask_images,
    segment_image,
)

HAS_CORE = _backend.has_core()


@functools.lru_cache(maxsize=1)
def _digits_model():
    """scikit-learn's digits (shipped with the package) and a small classifier on the 8x8 pixels / 16."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    d = load_digits()
    X = d.images.reshape(len(d.images), -1) / 16
    return d, LogisticRegression(max_iter=200, tol=1e-3).fit(X[:600], d.target[:600])


# ---- the masking kernel ----------------------------------------------------------------------


@st.composite
def mask_case(draw):
    H = draw(st.integers(1, 6))
    W = draw(st.integers(1, 6))
    C = draw(st.sampled_from([None, 1, 3]))
    dtype = draw(st.sampled_from([np.uint8, np.float32, np.float64]))
    M = draw(st.integers(1, 5))
    S = draw(st.integers(0, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (H, W) if C is None else (H, W, C)
    if dtype == np.uint8:
        x = rng.integers(0, 256, shape).astype(np.uint8)
        b = rng.integers(0, 256, shape).astype(np.uint8)
    else:
        x = rng.normal(size=shape).astype(dtype)
        b = rng.normal(size=shape).astype(dtype)
        if draw(st.booleans()):  # NaN and -0.0 pass through the copy untouched
            x.flat[0] = np.nan
            b.flat[-1] = -0.0
    seg = rng.integers(-1, M, (H, W)).astype(np.int32)
    Z = rng.integers(0, 2, (S, M)).astype(np.uint8)
    s0 = draw(st.integers(0, S))
    s1 = draw(st.integers(s0, S))
    return x, b, seg, Z, s0, s1


@pytest.mark.skipif(not HAS_CORE, reason="compiled extension not built")
@settings(max_examples=150, deadline=None)
@given(mask_case())
def test_mask_kernel_matches_numpy_bitwise(case):
    x, b, seg, Z, s0, s1 = case
    got = mask_images(x, b, seg, Z, s0, s1, backend="cpu", n_jobs=2)
    ref = mask_images(x, b, seg, Z, s0, s1, backend="numpy")
    assert got.shape == ref.shape == (s1 - s0,) + x.shape and got.dtype == x.dtype
    assert got.tobytes() == ref.tobytes()  # bit for bit (NaN payloads and signed zeros included)
    # the reference itself, pixel by pixel
    P = x.shape[0] * x.shape[1]
    x2, b2, sg = x.reshape(P, -1), b.reshape(P, -1), seg.reshape(P)
    for i, s in enumerate(range(s0, s1)):
        for p in range(P):
            want = x2[p] if sg[p] < 0 or Z[s, sg[p]] else b2[p]
            assert got.reshape(s1 - s0, P, -1)[i, p].tobytes() == want.tobytes()


@pytest.mark.skipif(not HAS_CORE, reason="compiled extension not built")
def test_mask_kernel_errors_name_the_argument():
    x = np.zeros((2, 2, 3), np.uint8)
    Z = np.ones((2, 2), np.uint8)
    core = _backend.core()
    out = np.empty((2, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"segment\[3\] = 2"):
        core.image_mask_cpu(x.reshape(4, 3), x.reshape(4, 3), np.array([0, 1, 0, 2], np.int32), Z, 0, 2, out, 1)
    with pytest.raises(ValueError, match="baseline must have the shape of image"):
        core.image_mask_cpu(x.reshape(4, 3), np.zeros((3, 3), np.uint8), np.zeros(4, np.int32), Z, 0, 2, out, 1)
    with pytest.raises(ValueError, match=r"coalition range \[s0, s1\)"):
        core.image_mask_cpu(x.reshape(4, 3), x.reshape(4, 3), np.zeros(4, np.int32), Z, 1, 3, out, 1)
    with pytest.raises(ValueError, match="image must be uint8, float32 or float64"):
        core.image_mask_cpu(
            x.reshape(4, 3).astype(np.int16), x.reshape(4, 3).astype(np.int16), np.zeros(4, np.int32), Z, 0, 2, out, 1
        )
    with pytest.raises(ValueError, match="out must not share memory with image"):
        big = np.zeros((3, 4, 3), np.uint8)
        core.image_mask_cpu(big[1], x.reshape(4, 3), np.zeros(4, np.int32), Z, 0, 2, big[1:], 1)


@pytest.mark.gpu
def test_mask_kernel_cuda_matches_cpu_bitwise():
    cupy = pytest.importorskip("cupy")
    if _backend.cuda_device_count() == 0:
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(5)
    for dtype in (np.uint8, np.float32, np.float64):
        x = (rng.random((37, 29, 3)) * 255).astype(dtype)
        b = (rng.random((37, 29, 3)) * 255).astype(dtype)
        seg = rng.integers(-1, 9, (37, 29)).astype(np.int32)
        Z = rng.integers(0, 2, (50, 9)).astype(np.uint8)
        cpu = mask_images(x, b, seg, Z, 3, 41, backend="cpu")
        dev = mask_images(cupy.asarray(x), cupy.asarray(b), cupy.asarray(seg), cupy.asarray(Z), 3, 41)
        assert cupy.asnumpy(dev).tobytes() == cpu.tobytes()


# ---- exactness ---------------------------------------------------------------------------------


def _blocks(H: int, W: int, rows: int, cols: int) -> np.ndarray:
    """Superpixels as a rows x cols grid of blocks, numbered row-major."""
    r = np.minimum(np.arange(H) * rows // H, rows - 1)
    c = np.minimum(np.arange(W) * cols // W, cols - 1)
    return (r[:, None] * cols + c[None, :]).astype(np.int32)


def test_additive_model_exact_and_sampled_equal_the_closed_form():
    rng = np.random.default_rng(0)
    H, W = 20, 24
    img = rng.random((H, W, 3))
    seg = _blocks(H, W, 2, 5)  # M = 10 regions
    wts = rng.normal(size=(H, W, 3))
    # a model summing weighted pixel intensities per region: f(x) = sum_p w_p x_p (two outputs)
    f = lambda B: np.stack([(B * wts).reshape(len(B), -1).sum(1), B.reshape(len(B), -1).sum(1)], axis=1)
    base = 0.3
    truth = np.array([[((img - base) * wts)[seg == m].sum(), (img - base)[seg == m].sum()] for m in range(10)])
    exact = ImageShap(f, baseline=base, num_samples=5000, seed=1).explain(img[None], segments=[seg])
    assert exact.exact == [True] and exact.num_samples == [2**10 - 2]
    np.testing.assert_allclose(exact.values[0], truth, rtol=0, atol=1e-10)
    # sampled (S << 2^M): the game is additive, so the weighted least squares fit is exact too
    sampled = ImageShap(f, baseline=base, num_samples=60, seed=2).explain(img[None], segments=[seg])
    assert sampled.exact == [False]
    np.testing.assert_allclose(sampled.values[0], truth, rtol=0, atol=1e-9)
    # efficiency: sum of attributions = f(x) - f(baseline)
    np.testing.assert_allclose(exact.values[0].sum(0), exact.predictions[0] - exact.expected_values[0], atol=1e-10)


def test_sampled_mode_converges_to_exact_on_a_game_with_interactions():
    rng = np.random.default_rng(1)
    H, W = 12, 12
    img = rng.random((H, W))
    seg = _blocks(H, W, 3, 4)  # M = 12
    masks = [(seg == m) for m in range(12)]

    def f(B):
        s = np.stack([B[:, m].sum(1) for m in masks], axis=1)  # region sums (n, 12)
        return s[:, 0] * s[:, 5] + np.sin(s[:, 3]) * s[:, 7] + s.sum(1)

    exact = ImageShap(f, baseline=0.0, num_samples=5000, seed=0).explain([img], segments=[seg])
    assert exact.exact == [True]
    # hand check of one interaction: s0 * s5 splits equally between regions 0 and 5
    errs = []
    for n in (200, 1000, 3000):
        e = ImageShap(f, baseline=0.0, num_samples=n, seed=7).explain([img], segments=[seg])
        errs.append(np.abs(e.values[0] - exact.values[0]).max())
    assert errs[2] < errs[0] and errs[2] < 0.05 * np.abs(exact.values[0]).max()


def test_classifier_on_digits_matches_shap_kernel_explainer():
    shap = pytest.importorskip("shap")
    d, clf = _digits_model()
    img = np.kron(d.images[3] / 16, np.ones((3, 3)))  # 24 x 24, float64
    f = lambda B: clf.predict_proba(B.reshape(len(B), 8, 3, 8, 3).mean(axis=(2, 4)).reshape(len(B), -1))
    seg = _blocks(24, 24, 2, 4)  # M = 8
    e = ImageShap(f, baseline=0.0, num_samples=1000, seed=0).explain([img], segments=[seg])
    assert e.exact == [True]
    Z1 = np.ones((1, 8), np.uint8)

    def g(z):  # the same game for shap: z (n, M) in {0, 1}
        Z = np.asarray(z > 0.5, np.uint8)
        return f(mask_images(img, np.zeros_like(img), seg, Z))

    ke = shap.KernelExplainer(g, np.zeros((1, 8)))
    sv = np.asarray(ke.shap_values(Z1.astype(float), nsamples=2**8, silent=True))
    sv = sv.reshape(8, 10) if sv.shape[-1] == 10 else sv.reshape(10, 8).T
    np.testing.assert_allclose(e.values[0], sv, atol=1e-8)
    assert np.argmax(e.predictions[0]) == d.target[3]


def test_slic_segments_and_heatmap():
    from skimage import data

    img = data.astronaut()[::8, ::8]  # ships with scikit-image: 64 x 64 RGB
    seg = segment_image(img, num_segments=20, compactness=5)
    assert seg.shape == img.shape[:2] and seg.dtype == np.int32
    M = int(seg.max()) + 1
    assert 2 <= M <= 60 and set(np.unique(seg)) == set(range(M))
    assert seg.reshape(-1)[0] == 0  # labels in raster order of first appearance
    v = np.arange(M, dtype=float)
    np.testing.assert_array_equal(image_heatmap(v, seg), seg.astype(float))


# ---- object detection -------------------------------------------------------------------------


def test_iou_and_matching_by_hand():
    np.testing.assert_allclose(box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]]), [[1 / 7, 1, 0]])
    assert box_iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0  # empty union: 0, not NaN
    obj = np.array([1, 0.9, 0.1, 0.1, 0.5, 0.5])
    dets = np.array(
        [
            [2, 0.99, 0.1, 0.1, 0.5, 0.5],  # another class: never the object
            [1, 0.40, 0.1, 0.1, 0.5, 0.45],  # IoU 0.875
            [1, 0.70, 0.3, 0.3, 0.7, 0.7],  # IoU 0.04/0.28 < 0.5
        ]
    )
    assert _match(dets, obj, 0.5) == 0.40
    assert _match(dets, obj, 0.9) == 0.0
    assert _match(dets[:1], obj, 0.0) == 0.0
    assert _match(np.empty((0, 6)), obj, 0.5) == 0.0


def _detector(boxes):
    """A detector with fixed boxes whose score is the (weighted) pixel sum inside the box: additive
    over superpixels, so the Shapley values have a closed form."""

    def det(B):
        H, W = B.shape[1:3]
        out = []
        for img in B:
            rows = []
            for cls, (x0, y0, x1, y1), w in boxes:
                r0, r1, c0, c1 = int(y0 * H), int(y1 * H), int(x0 * W), int(x1 * W)
                rows.append([cls, float((img[r0:r1, c0:c1] * w).sum()), x0, y0, x1, y1])
            out.append(rows)
        return np.array(out)

    return det


@pytest.mark.parametrize("context", [1.0, 0.0, 0.5])
def test_object_detection_closed_form_per_object(context):
    rng = np.random.default_rng(3)
    H = W = 16
    img = rng.random((H, W))
    seg = _blocks(H, W, 4, 4)  # 16 regions of 4x4
    boxes = [(0, (0.0, 0.0, 0.5, 0.5), 2.0), (1, (0.25, 0.5, 1.0, 1.0), 1.0), (2, (0, 0, 1, 0.25), 0.01)]
    det = _detector(boxes)
    base = 0.2
    e = ImageShap(
        det, model_type="OBJECT_DETECTION", max_objects=2, baseline=base, context=context, num_samples=300, seed=0
    ).explain([img], segments=[seg])
    objs = e.objects[0]
    assert objs.shape == (2, 6) and list(objs[:, 0]) == [0, 1]  # the best two, best first
    for j, (_cls, (x0, y0, x1, y1), w) in enumerate(boxes[:2]):
        inside = np.zeros((H, W), bool)
        inside[int(y0 * H) : int(y1 * H), int(x0 * W) : int(x1 * W)] = True
        # the box's pixels are all this object's: x - b per region inside the box; outside pixels
        # never count (this detector reads only its box), so context does not change the values
        truth = np.array([(w * (img - base))[inside & (seg == m)].sum() for m in range(16)])
        np.testing.assert_allclose(e.values[0][j], truth, atol=1e-9)
        np.testing.assert_allclose(e.predictions[0][j], objs[j, 1], atol=1e-12)


def test_object_detection_box_moves_and_unmatched_scores_zero():
    H, W = 8, 16
    img = np.zeros((H, W), np.uint8)
    img[2:6, 2:6] = 200  # a bright square in the left half
    seg = np.zeros((H, W), np.int32)
    seg[:, 8:] = 1  # M = 2: left and right halves

    def det(B):  # a box around the bright pixels, score = their mean / 255; nothing when none
        out = []
        for im in B:
            ys, xs = np.nonzero(im > 100)
            if len(ys) == 0:
                out.append(np.empty((0, 6)))
                continue
            box = [xs.min() / W, ys.min() / H, (xs.max() + 1) / W, (ys.max() + 1) / H]
            out.append(np.array([[0, im[im > 100].mean() / 255, *box]]))
        return out

    e = ImageShap(det, model_type="OBJECT_DETECTION", baseline=0, iou_threshold=0.5, seed=0).explain(
        [img], segments=[seg]
    )
    s = 200 / 255
    # v(both) = v(left) = s, v(right) = v(none) = 0  =>  phi_left = s, phi_right = 0 (by hand)
    np.testing.assert_allclose(e.values[0], [[s, 0.0]], atol=1e-12)
    assert e.expected_values[0][0] == 0.0


def test_image_shap_argument_errors():
    f = lambda B: np.zeros(len(B))
    with pytest.raises(ValueError, match="model_type must be one of"):
        ImageShap(f, model_type="SEGMENTATION")
    with pytest.raises(ValueError, match="iou_threshold must be in"):
        ImageShap(f, iou_threshold=1.5)
    with pytest.raises(ValueError, match="context must be in"):
        ImageShap(f, context=-0.1)
    with pytest.raises(ValueError, match="feature_extraction_method"):
        ImageShap(f, feature_extraction_method="patches")
    ex = ImageShap(f, seed=0)
    with pytest.raises(ValueError, match=r"images\[0\] must be an image of shape"):
        ex.explain([np.zeros(5)])
    with pytest.raises(ValueError, match=r"images\[0\] holds a non-finite pixel value at \(row 1, column 0\)"):
        ex.explain([np.array([[0.0, 1.0], [np.nan, 0.0]])])
    bad = ImageShap(lambda B: np.zeros((len(B) + 1, 2)), seed=0)
    with pytest.raises(ValueError, match="model returned an array of shape"):
        bad.explain([np.zeros((4, 4))], segments=[_blocks(4, 4, 1, 2)])


# ---- config, job, report ----------------------------------------------------------------------


def _cfg(**image):
    return {
        "dataset_type": "application/x-image",
        "methods": {
            "shap": {"num_samples": 100, "seed": 3, "image_config": {"model_type": "IMAGE_CLASSIFICATION", **image}}
        },
    }


def test_image_config_defaults_and_errors():
    c = read_config(_cfg())
    ic = c.shap.image_config
    assert (ic.num_segments, ic.segment_compactness, ic.max_objects, ic.iou_threshold, ic.context) == (
        20,
        5,
        3,
        0.5,
        1.0,
    )
    assert c.to_dict()["methods"]["shap"]["image_config"]["feature_extraction_method"] == "segmentation"
    with pytest.raises(ConfigError, match="model_type"):
        read_config(_cfg(model_type="OBJECT_DETECT"))
    with pytest.raises(ConfigError, match=r"image_config\.context"):
        read_config(_cfg(context=2))
    with pytest.raises(ConfigError, match=r"image_config\.num_segments"):
        read_config(_cfg(num_segments=0))
    bad = _cfg()
    bad["dataset_type"] = "text/csv"
    with pytest.warns(
        ConfigWarning, match=r"^methods\.shap\.image_config: applies to dataset_type application/x-image"
    ):
        assert read_config(bad).shap.image_config is None  # the SDK writes it for any data: ignored
    tab = _cfg()
    tab["methods"]["shap"]["features_to_explain"] = [0]
    with pytest.raises(ConfigError, match="features_to_explain: not supported with image_config"):
        read_config(tab)
    with pytest.raises(ConfigError, match=r"^predictor\.content_type: must be one of .*application/x-image"):
        read_config({**bad, "methods": {"shap": {}}, "predictor": {"content_type": "image/png"}})
    with pytest.raises(ConfigError, match="methods.shap.image_config"):
        read_config({"dataset_type": "application/x-image", "methods": {"shap": {}}})
    p = read_config({**_cfg(), "predictor": {"content_type": "image/jpg", "label_headers": ["a", "b"]}}).predictor
    assert p.content_type == "image/jpeg"


def _digits_folder(tmp_path, n=3):
    from PIL import Image

    d, clf = _digits_model()
    folder = tmp_path / "digits"
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        im = np.kron(d.images[i] / 16 * 255, np.ones((4, 4))).astype(np.uint8)
        Image.fromarray(im).save(folder / ("sub" if i == 0 else "") / f"d{i}.png")
    (folder / "notes.txt").write_text("not an image")

    def f(B):  # uint8 32x32 pixels -> the 8x8 digit the model was trained on
        b = np.asarray(B, dtype=np.float64).reshape(len(B), 8, 4, 8, 4).mean(axis=(2, 4)) / 255
        return clf.predict_proba(b.reshape(len(B), -1))

    return folder, f, d


def test_analyze_image_folder_writes_clarify_outputs_and_report(tmp_path):
    folder, f, d = _digits_folder(tmp_path)
    cfg = _cfg(num_segments=8)
    cfg["predictor"] = {"label_headers": [f"digit{k}" for k in range(10)]}
    out = tmp_path / "out"
    r = clarion.analyze(cfg, folder, model=f, output_dir=out, progress=False)
    names = sorted(os.listdir(out))
    assert {"shap_d1.jpeg", "shap_d2.jpeg", "shap_sub_d0.jpeg", "analysis.json", "report.html"} <= set(names)
    doc = json.loads((out / "analysis.json").read_text())
    imgs = doc["explanations"]["image_shap"]["images"]
    assert [e["image"] for e in imgs] == ["d1", "d2", "sub_d0"]  # sorted walk: files, then sub/
    for e in imgs:
        seg = np.load(out / e["segments"])
        assert e["num_segments"] == seg.max() + 1
        lab = e["labels"][e["predicted_label"]]
        # efficiency, per label, as written
        assert abs(sum(lab["shap_values"]) - (lab["prediction"] - lab["expected_value"])) < 1e-9
        assert len(lab["shap_values"]) == e["num_segments"]
    assert imgs[0]["predicted_label"] == f"digit{d.target[1]}"
    with PIL.Image.open(out / "shap_d1.jpeg") as im:
        assert im.size == (64, 32)  # segments | heat map
    html = (out / "report.html").read_text()
    assert "Image attributions" in html and "src='shap_d1.jpeg'" in html
    assert "shap_d2.jpeg" in (out / "report.md").read_text()
    assert r.n_rows == 3


def test_analyze_object_detection_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(2)
    Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(folder / "a.png")
    det = _detector([(1, (0.0, 0.0, 0.5, 0.5), 1.0), (0, (0.5, 0.5, 1.0, 1.0), 0.5)])
    cfg = {
        "dataset_type": "application/x-image",
        "probability_threshold": 0.0,
        "methods": {
            "shap": {
                "num_samples": 200,
                "seed": 1,
                "image_config": {"model_type": "OBJECT_DETECTION", "num_segments": 6, "max_objects": 1},
            }
        },
        "predictor": {"label_headers": ["cat", "dog"]},
    }
    out = tmp_path / "out"
    clarion.analyze(cfg, folder, model=det, output_dir=out, progress=False)
    assert {"shap_a_box1.jpeg", "a_objects.jpeg"} <= set(os.listdir(out))
    e = json.loads((out / "analysis.json").read_text())["explanations"]["image_shap"]["images"][0]
    (o,) = e["objects"]
    assert o["label"] == "dog" and o["box"] == [0.0, 0.0, 0.5, 0.5]
    assert abs(sum(o["shap_values"]) - (o["prediction"] - o["expected_value"])) < 1e-9


# ---- endpoints --------------------------------------------------------------------------------


@contextlib.contextmanager
def _image_server(predict, *, detections=False):
    """A real HTTP server on 127.0.0.1 taking image/png, image/jpeg or application/x-npy bodies."""
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    from PIL import Image
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    seen = []

    async def invocations(request):
        body = await request.body()
        ct = request.headers["content-type"]
        seen.append(ct)
        if ct == "application/x-npy":
            batch = np.load(io.BytesIO(body), allow_pickle=False)
        else:
            batch = np.asarray(Image.open(io.BytesIO(body)))[None]
        res = predict(batch)
        doc = [np.asarray(r).tolist() for r in res] if detections else np.asarray(res).tolist()
        if ct != "application/x-npy" and not detections:
            doc = doc[0]
        return Response(json.dumps(doc), media_type="application/json")

    app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", log_config=None)
    )
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert th.is_alive() and time.monotonic() < deadline, "image server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/invocations", seen
    finally:
        server.should_exit = True
        th.join(timeout=10)


def test_endpoint_png_and_npy_give_the_in_process_values(tmp_path):
    from clarion.models import Endpoint

    _, f, d = _digits_folder(tmp_path, n=1)
    img = np.kron(d.images[5] / 16 * 255, np.ones((4, 4))).astype(np.uint8)
    seg = _blocks(32, 32, 2, 3)
    local = ImageShap(f, num_samples=100, seed=0, baseline=0).explain([img], segments=[seg])
    with _image_server(f) as (url, seen):
        for ct in ("image/png", "application/x-npy"):
            with Endpoint(url, content_type=ct, max_batch_rows=16) as ep:
                remote = ImageShap(ep, num_samples=100, seed=0, baseline=0).explain([img], segments=[seg])
            # PNG is lossless and .npy exact: the same numbers as calling the model in process
            np.testing.assert_allclose(remote.values[0], local.values[0], atol=1e-12)
        assert set(seen) == {"image/png", "application/x-npy"}
        with Endpoint(url, content_type="image/jpg") as ep:  # Clarify's default; lossy, so close only
            assert ep.content_type == "image/jpeg" and ep.accept_type == "application/json"
            jpeg = ImageShap(ep, num_samples=100, seed=0, baseline=0).explain([img], segments=[seg])
        assert seen[-1] == "image/jpeg"
        v, p = jpeg.values[0], jpeg.predictions[0]
        np.testing.assert_allclose(v.sum(0), p - jpeg.expected_values[0], atol=1e-9)
        np.testing.assert_allclose(p, local.predictions[0], atol=0.05)
        with Endpoint(url, content_type="image/png") as ep, pytest.raises(ValueError, match="call predict_images"):
            ep.predict(np.zeros((2, 3)))


def test_endpoint_object_detection_npy():
    from clarion.models import Endpoint

    det = _detector([(0, (0.0, 0.0, 0.5, 0.5), 1.0)])
    img = np.random.default_rng(4).random((8, 8))
    seg = _blocks(8, 8, 2, 2)
    local = ImageShap(det, model_type="OBJECT_DETECTION", seed=0, baseline=0).explain([img], segments=[seg])
    with _image_server(det, detections=True) as (url, _):
        with Endpoint(url, content_type="application/x-npy") as ep:
            remote = ImageShap(ep, model_type="OBJECT_DETECTION", seed=0, baseline=0).explain([img], segments=[seg])
    np.testing.assert_allclose(remote.values[0], local.values[0], atol=1e-12)


def test_cli_analyze_endpoint_with_image_folder(tmp_path):
    folder, f, _ = _digits_folder(tmp_path, n=2)
    cfg = _cfg(num_segments=6)
    cfg["predictor"] = {"content_type": "image/png"}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "python"))
    with _image_server(f) as (url, seen):
        proc = subprocess.run(
            [sys.executable, "-m", "clarion", "analyze", "--config", str(tmp_path / "cfg.json"), "--data", str(folder)]
            + ["--endpoint", url, "--output", str(tmp_path / "out")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert {"shap_d1.jpeg", "shap_sub_d0.jpeg", "report.html"} <= set(os.listdir(tmp_path / "out"))
    assert set(seen) == {"image/png"}
    doc = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert len(doc["explanations"]["image_shap"]["images"]) == 2


def test_reference_mask_is_the_documented_rule():
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    b = -x
    seg = np.array([0, 1, -1, 1], np.int32)
    Z = np.array([[1, 0], [0, 1]], np.uint8)
    out = _reference.image_mask(x, b, seg, Z, 0, 2)
    np.testing.assert_array_equal(out[0], [x[0], b[1], x[2], b[3]])
    np.testing.assert_array_equal(out[1], [b[0], x[1], x[2], x[3]])


def test_edge_cases_one_segment_sizes_progress_and_heatmap():
    f = lambda B: np.stack([B.reshape(len(B), -1).sum(1), -B.reshape(len(B), -1).sum(1)], axis=1)
    calls = []
    ex = ImageShap(f, baseline=1.0, num_samples=100, seed=0)
    imgs = [np.full((3, 5), 2.0), np.arange(24.0).reshape(4, 6), np.zeros((1, 1))]
    segs = [np.zeros((3, 5), np.int32), _blocks(4, 6, 1, 3), np.zeros((1, 1), np.int32)]
    e = ex.explain(imgs, segments=segs, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    np.testing.assert_allclose(e.values[0], [[15.0, -15.0]])  # one player: the whole difference
    np.testing.assert_allclose(e.values[2], [[-1.0, 1.0]])  # a 1 x 1 image
    truth = np.array([(np.arange(24.0).reshape(4, 6) - 1)[_blocks(4, 6, 1, 3) == m].sum() for m in range(3)])
    np.testing.assert_allclose(e.values[1][:, 0], truth, atol=1e-10)
    # heat map of the predicted output (output 0 here), per pixel = its superpixel's value
    np.testing.assert_allclose(e.heatmap(1), truth[_blocks(4, 6, 1, 3)])
    np.testing.assert_allclose(e.heatmap(1, 1), -truth[_blocks(4, 6, 1, 3)])
    # pixels of no player (-1) keep their value: a null contribution, NaN on the heat map
    seg = _blocks(4, 6, 1, 3)
    seg[0, 0] = -1
    e2 = ex.explain([np.arange(24.0).reshape(4, 6)], segments=[seg])
    assert np.isnan(e2.heatmap(0)[0, 0])
    assert abs(e2.values[0][:, 0].sum() - (e2.predictions[0][0] - e2.expected_values[0][0])) < 1e-10


def test_rerun_replaces_heat_maps_and_reads_a_baseline_image(tmp_path):
    from PIL import Image

    folder, f, _ = _digits_folder(tmp_path, n=2)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "black.png")
    (tmp_path / "cfg.json").write_text(json.dumps(_cfg(num_segments=4)))
    out = tmp_path / "out"
    clarion.analyze(tmp_path / "cfg.json", folder, model=f, output_dir=out, progress=False)
    assert (out / "shap_sub_d0.jpeg").exists()
    (folder / "sub" / "d0.png").unlink()
    cfg = _cfg(num_segments=4)
    cfg["methods"]["shap"]["baseline"] = "black.png"  # relative to the config's folder
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    clarion.analyze(tmp_path / "cfg.json", folder, model=f, output_dir=out, progress=False, overwrite=True)
    assert not (out / "shap_sub_d0.jpeg").exists()  # the previous run's heat map is gone
    (e,) = json.loads((out / "analysis.json").read_text())["explanations"]["image_shap"]["images"]
    black = f(np.zeros((1, 32, 32), np.uint8))[0]
    np.testing.assert_allclose(e["labels"]["label0"]["expected_value"], black[0], atol=1e-12)
