"""A small random-weight ONNX model with the I/O layout of insightface's ArcFace recognition files.

One float32 input [batch, 3, 112, 112] (dynamic batch, or a fixed one), one output [batch, 512]:
a strided convolution, ReLU, flatten and a fully connected layer, so the embedding depends on where
things are in the crop (an alignment error changes it), with weights from a seeded generator.
"""

from __future__ import annotations

import numpy as np


def write_arcface_like_onnx(path, seed: int = 0, input_name: str = "input.1", output_name: str = "683",
                            batch: int | str = "None") -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, (2 / (3 * 8 * 8)) ** 0.5, size=(8, 3, 8, 8)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, size=8).astype(np.float32)
    fc_w = rng.normal(0, (1 / (8 * 14 * 14)) ** 0.5, size=(512, 8 * 14 * 14)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, size=512).astype(np.float32)
    nodes = [
        helper.make_node("Conv", [input_name, "conv_w", "conv_b"], ["c"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], [output_name], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "arcface_like",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, 512])],
        initializer=[numpy_helper.from_array(a, n) for a, n in
                     ((conv_w, "conv_w"), (conv_b, "conv_b"), (fc_w, "fc_w"), (fc_b, "fc_b"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by older onnxruntime builds too
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
