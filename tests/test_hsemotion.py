"""HSEmotion backend against the hsemotion-onnx package itself, with a small stand-in ONNX model.

The real enet_b0_8_best_vgaf.onnx is not available offline; a tiny model with the same input name
("input", [N, 3, 224, 224]) and an 8-logit output exercises the whole path: preprocessing, batching,
output handling. hsemotion-onnx's HSEmotionRecognizer loads the same file and is the reference.
"""

import numpy as np
import onnx
import pytest
from faces import sample_crops, to_tensor
from onnx import TensorProto, helper, numpy_helper

from swapbench.metrics.backends.expression import HSEMOTION_B0_VGAF, HSEmotion


def tiny_emotion_model(path):
    """input -> 4x4 average pooling -> flatten -> linear to 8 logits (spatial detail reaches the output)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3 * 56 * 56, 8)).astype(np.float32) * 0.05
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        ],
        "tiny_emotions",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 8])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.linspace(-1, 1, 8, dtype=np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


@pytest.fixture()
def model_path(tmp_path):
    path = tmp_path / HSEMOTION_B0_VGAF.filename
    tiny_emotion_model(str(path))
    return path


def test_matches_hsemotion_onnx(model_path, monkeypatch):
    from hsemotion_onnx import facial_emotions

    monkeypatch.setattr(facial_emotions, "get_model_path", lambda name: str(model_path))
    reference = facial_emotions.HSEmotionRecognizer("enet_b0_8_best_vgaf")
    crops = sample_crops()
    faces = [crops[n] for n in ("astronaut", "tom_hanks", "t1_2")]
    _, expected = reference.predict_multi_emotions(faces, logits=True)

    feats = HSEmotion(files={HSEMOTION_B0_VGAF.name: model_path}).extract(to_tensor(*faces))
    assert feats.values.shape == (3, 8) and feats.ok.all()
    # same cv2 resize of the same uint8 pixels; float32 vs float64 normalisation
    np.testing.assert_allclose(feats.values.numpy(), expected, rtol=1e-5, atol=1e-5)
    # the faces differ, so a preprocessing slip would show
    assert np.abs(expected[0] - expected[1]).max() > 1e-3
