"""Benchmark image Kernel SHAP: the masking step against the model call (issue 18, item 5).

For a 224 x 224 RGB uint8 image cut into ~50 SLIC superpixels and the default plan
(S = 2 M + 2048 coalitions), the same run times

* **mask (clarion)**: the compiled kernel writing all S masked images, in the explainer's batches
  (``clarion.explain.image.mask_images``, 1 thread and all threads);
* **mask (numpy)**: the plain numpy reference of the same step (``np.where`` per batch);
* **model**: the model alone on the same S images (built beforehand, not timed), in the same
  batches: a small convolutional network run by onnxruntime (conv 3->16 stride 2, conv 16->32
  stride 2, global average pool, dense 32->10, softmax; ~20 MFLOP per image, far lighter than any
  production CNN, so the ratio below is a lower bound of the model's share);
* **explain**: ``ImageShap(...).explain([image])`` end to end (segmentation, masking, model
  calls, solve).

The claim: masking is a small fraction of the model's time (``mask / model``), and the
explainer's overhead over the bare model calls (``explain / model``) is small.

    python benchmarks/bench_image.py                      # 224 x 224, 50 segments
    python benchmarks/bench_image.py --size 128 --segments 20 --compactness 10 --repeat 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from clarion.explain.image import ImageShap, _Plan, mask_images, segment_image


def tiny_cnn(seed: int = 0):
    """A small CNN as an onnxruntime session: (B, H, W, 3) uint8 -> (B, 10) probabilities."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array((rng.normal(size=(16, 3, 3, 3)) * 0.1).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.normal(size=(32, 16, 3, 3)) * 0.1).astype(np.float32), "w2"),
        numpy_helper.from_array((rng.normal(size=(32, 10)) * 0.1).astype(np.float32), "w3"),
        numpy_helper.from_array(np.float32([1 / 255]).reshape(()), "scale"),
    ]
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["xf", "scale"], ["xs"]),
        helper.make_node("Transpose", ["xs"], ["xt"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["xt", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "w3"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [None, None, None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 0
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda batch: sess.run(["y"], {"x": np.ascontiguousarray(batch)})[0]


def best(fn, repeat):
    t = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--compactness", type=float, default=40.0, help="SLIC compactness (40: ~50 superpixels here)")
    ap.add_argument("--num-samples", type=int, default=None)
    ap.add_argument("--batch", type=int, default=256, help="masked images per model call (ImageShap's default)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from skimage import data, transform

    img = (transform.resize(data.astronaut(), (args.size, args.size), anti_aliasing=True) * 255).astype(np.uint8)
    seg = segment_image(img, num_segments=args.segments, compactness=args.compactness)
    M = int(seg.max()) + 1
    Z, _, _, _ = _Plan("cpu", args.num_samples, 0).get(M)
    S = Z.shape[0]
    base = np.full_like(img, int(img.mean()))
    model = tiny_cnn()
    B = args.batch
    buf = np.empty((B,) + img.shape, np.uint8)

    def mask(n_jobs=None, backend="cpu"):
        def run():
            for s0 in range(0, S, B):
                s1 = min(S, s0 + B)
                mask_images(img, base, seg, Z, s0, s1, backend=backend, n_jobs=n_jobs, out=buf[: s1 - s0])

        return run

    batches = [mask_images(img, base, seg, Z, s0, min(S, s0 + B), backend="cpu") for s0 in range(0, S, B)]

    def model_only():
        for b in batches:
            model(b)

    ex = ImageShap(model, num_segments=args.segments, segment_compactness=args.compactness, baseline="mean", seed=0)
    res = {
        "mask_clarion_1thread": best(mask(1), args.repeat),
        "mask_clarion_all": best(mask(-1), args.repeat),
        "mask_numpy": best(mask(None, "numpy"), args.repeat),
        "model": best(model_only, args.repeat),
        "explain": best(lambda: ex.explain([img]), args.repeat),
    }
    info = {
        "image": f"{args.size}x{args.size}x3 uint8",
        "segments": M,
        "coalitions": S,
        "batch": B,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }
    out = {**info, "seconds": res, "mask_over_model": res["mask_clarion_1thread"] / res["model"]}
    print(json.dumps(out, indent=2))
    print()
    print(
        "| image | M | S | mask clarion 1 thread | mask clarion all threads | mask numpy | model | explain "
        "| mask / model | explain / model |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ms = {k: f"{v * 1e3:.1f} ms" for k, v in res.items()}
    print(
        f"| {info['image']} | {M} | {S} | {ms['mask_clarion_1thread']} | {ms['mask_clarion_all']} | "
        f"{ms['mask_numpy']} | {ms['model']} | {ms['explain']} | "
        f"{res['mask_clarion_1thread'] / res['model']:.3f} | {res['explain'] / res['model']:.2f} |"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
