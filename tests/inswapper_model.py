"""A small random-weight ONNX model with the I/O layout of insightface's inswapper_128.onnx.

Inputs `target` [1, 3, 128, 128] (RGB in [0, 1]) and `source` [1, 512] (the latent), one output
[1, 3, 128, 128]; the 512 x 512 `emap` is the graph's last initializer, used by no node, as in the
real file. The network is a 3x3 convolution of the target whose channels are shifted by a linear map
of the latent, ReLU, a 3x3 convolution and 0.5 + 0.6 tanh: the output depends on both inputs and
on where things are in the crop, and overshoots [0, 1] a little, so clipping is exercised.
"""

from __future__ import annotations

import numpy as np

SIZE = 128


def write_inswapper_like_onnx(path, seed: int = 0, batch: int | str = 1, emap_shape=(512, 512),
                              emap_last: bool = True, fp16_weights: bool = False) -> np.ndarray:
    """Write the model; return its emap. fp16_weights stores the convolution weights as float16 (cast
    back in the graph), as a float16 conversion of the file would."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, (2 / 27) ** 0.5, size=(8, 3, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, size=8).astype(np.float32)
    fc_w = rng.normal(0, 2 / 512 ** 0.5, size=(8, 512)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, size=8).astype(np.float32)
    w2 = rng.normal(0, (1 / 72) ** 0.5, size=(3, 8, 3, 3)).astype(np.float32)
    b2 = rng.normal(0, 0.1, size=3).astype(np.float32)
    emap = rng.normal(0, 1 / 512 ** 0.5, size=emap_shape).astype(np.float32)
    arrays = [("w1", w1), ("b1", b1), ("fc_w", fc_w), ("fc_b", fc_b), ("w2", w2), ("b2", b2),
              ("bias_shape", np.array([-1, 8, 1, 1], np.int64)),
              ("gain", np.array(0.6, np.float32)), ("half", np.array(0.5, np.float32))]
    nodes = []
    if fp16_weights:
        arrays[0] = ("w1_16", w1.astype(np.float16))
        nodes.append(helper.make_node("Cast", ["w1_16"], ["w1"], to=TensorProto.FLOAT))
    nodes += [
        helper.make_node("Conv", ["target", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Gemm", ["source", "fc_w", "fc_b"], ["s"], transB=1),
        helper.make_node("Reshape", ["s", "bias_shape"], ["s4"]),
        helper.make_node("Add", ["c1", "s4"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["r", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Tanh", ["c2"], ["t"]),
        helper.make_node("Mul", ["t", "gain"], ["g"]),
        helper.make_node("Add", ["g", "half"], ["output"]),
    ]
    inits = [numpy_helper.from_array(a, n) for n, a in arrays]
    emap_init = numpy_helper.from_array(emap, "emap")
    inits = inits + [emap_init] if emap_last else [emap_init] + inits
    graph = helper.make_graph(
        nodes, "inswapper_like",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, [batch, 3, SIZE, SIZE]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, [batch, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by older onnxruntime builds too
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return emap
