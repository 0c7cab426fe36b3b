"""Swaps per second of INSwapper on CPU: swapbench's INSwapper.swap next to insightface's own calls.

    python benchmarks/inswapper_speed.py [--batch-sizes 1 4] [--repeats 3]
    python benchmarks/inswapper_speed.py --model /path/to/inswapper_128.onnx --arcface /path/to/w600k_r50.onnx

Without --model, a random-weight graph of inswapper_128's size is written to a temporary folder
(554 MB, deleted afterwards): the network as its third-party reconstruction describes it (reflect-padded
7x7 and strided 3x3 convolutions to 1024 channels at 32 x 32, six residual blocks whose instance norms
are modulated by a 512 -> 2048 map of the latent, bilinear x2 upsampling back to 128, tanh), 138 M
weights and the 512 x 512 emap last. It has the real file's inputs, outputs and about its arithmetic, not
its weights. Without --arcface, the small ArcFace-layout model of the tests stands in for w600k_r50.

One swap = the source's w600k_r50 embedding, the latent, the swapper graph and the 8-bit output:
  swapbench  INSwapper.swap on 128 crops (pairs one at a time inside the batch: the graph's batch is 1);
  official   insightface's ArcFaceONNX.get on the source face + INSwapper.get(paste_back=False) on the
             target face, on the full t1.jpg with the same five points (it warps its own crops).
Both use onnxruntime's CPU provider with its default threads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' small ArcFace model
from timing import timed_interleaved  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def write_full_size_graph(path: Path, seed: int = 0) -> None:
    """A random-weight graph with inswapper_128's inputs, output, layer sizes and emap (see the docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def conv(x, cin, cout, k, stride=1, pad=0, act=True, name=""):
        w = rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32((2 / (cin * k * k)) ** 0.5)
        y = f"{name}_conv"
        nodes.append(helper.make_node("Conv", [x, const(f"{name}_w", w), const(f"{name}_b", np.zeros(cout, np.float32))],
                                      [y], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4))
        if act:
            nodes.append(helper.make_node("LeakyRelu", [y], [f"{name}_act"], alpha=0.2))
            return f"{name}_act"
        return y

    def reflect(x, p, name):
        nodes.append(helper.make_node("Pad", [x, const(f"{name}_pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))],
                                      [f"{name}_pad"], mode="reflect"))
        return f"{name}_pad"

    def modulated_norm(x, name):
        nodes.append(helper.make_node("InstanceNormalization", [x, const(f"{name}_one", np.ones(1024, np.float32)),
                                                                const(f"{name}_zero", np.zeros(1024, np.float32))],
                                      [f"{name}_n"], epsilon=1e-8))
        w = rng.standard_normal((2048, 512), dtype=np.float32) * np.float32(512 ** -0.5)
        nodes.extend([helper.make_node("Gemm", ["source", const(f"{name}_fc_w", w), const(f"{name}_fc_b", np.zeros(2048, np.float32))],
                                   [f"{name}_style"], transB=1),
                  helper.make_node("Reshape", [f"{name}_style", const(f"{name}_shape", np.array([1, 2048, 1, 1], np.int64))],
                                   [f"{name}_s4"]),
                  helper.make_node("Split", [f"{name}_s4", const(f"{name}_halves", np.array([1024, 1024], np.int64))],
                                   [f"{name}_gamma", f"{name}_beta"], axis=1),
                  helper.make_node("Mul", [f"{name}_n", f"{name}_gamma"], [f"{name}_m"]),
                  helper.make_node("Add", [f"{name}_m", f"{name}_beta"], [f"{name}_out"])])
        return f"{name}_out"

    def upsample(x, name):
        nodes.append(helper.make_node("Resize", [x, "", const(f"{name}_scales", np.array([1, 1, 2, 2], np.float32))],
                                      [f"{name}_up"], mode="linear"))
        return f"{name}_up"

    x = conv(reflect("target", 3, "in"), 3, 128, 7, name="e0")
    x = conv(x, 128, 256, 3, pad=1, name="e1")
    x = conv(x, 256, 512, 3, stride=2, pad=1, name="e2")
    x = conv(x, 512, 1024, 3, stride=2, pad=1, name="e3")
    for i in range(6):
        h = modulated_norm(conv(reflect(x, 1, f"b{i}a"), 1024, 1024, 3, act=False, name=f"b{i}a"), f"b{i}a")
        nodes.append(helper.make_node("Relu", [h], [f"b{i}_relu"]))
        h = modulated_norm(conv(reflect(f"b{i}_relu", 1, f"b{i}b"), 1024, 1024, 3, act=False, name=f"b{i}b"), f"b{i}b")
        nodes.append(helper.make_node("Add", [x, h], [f"b{i}_res"]))
        x = f"b{i}_res"
    x = conv(upsample(x, "u1"), 1024, 512, 3, pad=1, name="d1")
    x = conv(upsample(x, "u2"), 512, 256, 3, pad=1, name="d2")
    x = conv(x, 256, 128, 3, pad=1, name="d3")
    x = conv(reflect(x, 3, "out"), 128, 3, 7, act=False, name="d4")
    nodes += [helper.make_node("Tanh", [x], ["tanh"]),
              helper.make_node("Add", ["tanh", const("one", np.array(1, np.float32))], ["plus"]),
              helper.make_node("Mul", ["plus", const("half", np.array(0.5, np.float32))], ["output"])]
    const("emap", rng.standard_normal((512, 512), dtype=np.float32) * np.float32(512 ** -0.5))
    graph = helper.make_graph(nodes, "inswapper_size",
                              [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
                               helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def main(argv=None) -> None:
    import insightface
    import torch
    from insightface.app.common import Face
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.inswapper import INSwapper as Official
    from insightface.utils import face_align

    from swapbench.faces import detect, templates, warp
    from swapbench.faces.insightface_arcface import W600K_R50
    from swapbench.methods.base import FaceBatch
    from swapbench.methods.inswapper import INSWAPPER_128, INSwapper

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", type=Path, help="inswapper_128.onnx (default: a random graph of its size)")
    ap.add_argument("--arcface", type=Path, help="w600k_r50.onnx (default: the tests' small ArcFace-layout model)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or Path(tmp) / INSWAPPER_128.filename
        if args.model is None:
            write_full_size_graph(model)
        arcface = args.arcface or Path(tmp) / W600K_R50.filename
        if args.arcface is None:
            from arcface_onnx_model import write_arcface_like_onnx

            write_arcface_like_onnx(arcface)

        ours = INSwapper()
        ours.load_weights({INSWAPPER_128.name: model, W600K_R50.name: arcface})
        recognition, official = ArcFaceONNX(model_file=str(arcface)), Official(model_file=str(model))

        bgr = cv2.imread(str(Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"))
        faces = sorted(detect.detect(bgr[:, :, ::-1].copy()), key=lambda f: f.box[0])
        kps = [templates.five_points(f.landmarks) for f in faces]
        crop = lambda k: face_align.norm_crop2(bgr, k, 128)[0][:, :, ::-1].copy()  # noqa: E731
        source_face = kps[2]

        print(f"INSwapper ({'given files' if args.model else 'random graph of inswapper_128 size'}), CPU, "
              f"onnxruntime default threads, {torch.get_num_threads()} torch threads")
        print("| implementation | batch | s/batch (median) | swaps/s (median) |")
        print("|---|---|---|---|")
        for b in args.batch_sizes:
            targets = [kps[i % len(kps)] for i in range(b)]
            src = FaceBatch(warp.from_uint8(np.stack([crop(source_face)] * b)), torch.zeros(b, 68, 2), [str(i) for i in range(b)])
            tgt = FaceBatch(warp.from_uint8(np.stack([crop(k) for k in targets])), torch.zeros(b, 68, 2), src.pair_id)

            def theirs(targets=targets):
                for k in targets:  # one source embedding and one swap per pair, as swapbench does
                    face = Face(kps=source_face.astype(np.float32))
                    recognition.get(bgr, face)
                    official.get(bgr, Face(kps=k.astype(np.float32)), face, paste_back=False)

            times = timed_interleaved({"swapbench": lambda: ours.swap(src, tgt), "insightface": theirs}, args.repeats)
            for label, ts in times.items():
                med = statistics.median(ts)
                print(f"| {label} | {b} | {med:.2f} | {b / med:.3f} |", flush=True)


if __name__ == "__main__":
    main()
