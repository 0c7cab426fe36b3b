"""insightface ArcFace ONNX backends with a random-weight model in the official I/O layout.

The reference for the preprocessing is insightface's ArcFaceONNX.get_feat, rewritten in numpy:
norm_crop (cv2.warpAffine of the image with the similarity to the ArcFace template, zero border)
gives a uint8 crop in OpenCV's BGR order, and cv2.dnn.blobFromImages(crops, 1 / 127.5, (112, 112),
(127.5,) * 3, swapRB=True) turns it into the network input.
"""

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
from arcface_onnx_model import write_arcface_like_onnx
from faces import sample_crops, to_tensor

from swapbench import metrics
from swapbench.faces import detect, templates
from swapbench.metrics import build_backend
from swapbench.metrics.backends.arcface_onnx import (
    GLINT360K_R100,
    W600K_R50,
    InsightfaceGlint360kR100,
    InsightfaceW600kR50,
)
from swapbench.weights import WeightsError

NAMES = ("tom_hanks", "grace_hopper", "t1_0", "astronaut")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / W600K_R50.filename
    write_arcface_like_onnx(path, input_name="data", output_name="fc1")  # names are read from the file
    return path


@pytest.fixture(scope="module")
def backend(model_file):
    return InsightfaceW600kR50(files={W600K_R50.name: model_file})


def insightface_reference(image: np.ndarray, model_file) -> np.ndarray:
    """What insightface computes for one RGB crop: dlib 5 points, norm_crop, blobFromImages, the model."""
    face, _ = detect.pick(detect.detect(image), image.shape)
    m = templates.estimate_transform("arcface_112", face.landmarks)
    bgr = cv2.warpAffine(np.ascontiguousarray(image[:, :, ::-1]), m, (112, 112), borderValue=0.0)
    blob = ((bgr[:, :, ::-1].astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]  # swapRB, NCHW
    # the numpy blob is OpenCV's own
    np.testing.assert_allclose(blob, cv2.dnn.blobFromImages([bgr], 1 / 127.5, (112, 112), (127.5,) * 3, swapRB=True),
                               rtol=0, atol=1e-6)
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: blob})[0][0]
    return out / np.linalg.norm(out)


def test_embeddings_match_insightface_pipeline(backend, model_file):
    crops = sample_crops()
    feats = backend.extract(to_tensor(*(crops[n] for n in NAMES)))
    assert feats.ok.all() and feats.values.shape == (len(NAMES), 512)
    np.testing.assert_allclose(feats.values.norm(dim=1).numpy(), 1.0, atol=1e-6)
    for name, got in zip(NAMES, feats.values.numpy()):
        ref = insightface_reference(crops[name], model_file)
        # kornia's float warp rounded to 8 bits vs cv2's fixed-point warp: under OpenCV 4 (swapbench's pin),
        # which rounds sample positions to 1/32 px, crop pixels differ by up to 1.6 levels (0.3 on average,
        # test below), which moves embedding entries (~0.04) by up to 5.2e-4 here (3e-5 under OpenCV 5)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-3)
        assert float(got @ ref) > 0.9999
    sims = feats.values @ feats.values.T
    assert sims[~torch.eye(len(NAMES), dtype=torch.bool)].max() < 0.9  # different faces, different vectors


def test_aligned_crop_is_insightface_norm_crop(backend):
    image = sample_crops()["tom_hanks"]
    crops, ok, _ = backend.align(to_tensor(image))
    face, _ = detect.pick(detect.detect(image), image.shape)
    ref = cv2.warpAffine(image, templates.estimate_transform("arcface_112", face.landmarks), (112, 112), borderValue=0.0)
    diff = np.abs(crops[0].permute(1, 2, 0).numpy() * 255 - ref)
    # OpenCV 4's warpAffine (swapbench's pin) rounds sample positions to 1/32 px and its weights to fixed
    # point: 1.6 levels at most here against kornia's exact float sampling, 0.3 on average
    assert ok.all() and diff.max() <= 2.0 and diff.mean() < 0.3


def test_batch_equals_single_calls_and_no_face_is_a_failure(backend):
    crops = sample_crops()
    grey = np.full_like(crops["tom_hanks"], 128)
    x = to_tensor(crops["tom_hanks"], grey, crops["grace_hopper"], crops["t1_3"])
    batch = backend.extract(x)
    assert batch.ok.tolist() == [True, False, True, True]
    assert batch.reasons[1] == "no face found by dlib HOG in the crop (insightface_w600k_r50)"
    assert batch.reasons[0] is None and batch.values[1].abs().sum() == 0
    for i in range(len(x)):
        single = backend.extract(x[i:i + 1])
        assert single.ok.item() == batch.ok[i].item()
        np.testing.assert_allclose(single.values[0].numpy(), batch.values[i].numpy(), rtol=0, atol=1e-6)


def test_fixed_batch_model_runs_in_chunks(tmp_path, backend):
    path = tmp_path / GLINT360K_R100.filename
    write_arcface_like_onnx(path, batch=1)  # the same weights (seed 0) with a batch axis fixed to 1
    fixed = InsightfaceGlint360kR100(files={GLINT360K_R100.name: path})
    assert fixed.max_batch == 1
    crops = sample_crops()
    x = to_tensor(crops["tom_hanks"], crops["grace_hopper"], crops["t1_0"])
    chunked, batched = fixed.extract(x), backend.extract(x)
    assert chunked.ok.all()
    np.testing.assert_allclose(chunked.values.numpy(), batched.values.numpy(), rtol=0, atol=1e-6)


def test_cards_and_registry():
    backends = metrics.all_backends()
    for cls, card in ((InsightfaceW600kR50, W600K_R50), (InsightfaceGlint360kR100, GLINT360K_R100)):
        assert backends[cls.name] is cls and cls.family == "identity" and cls.dim == 512
        assert cls.weights == (card,) and len(card.sha256) == 64 and card.url.endswith(".zip")
    assert W600K_R50.filename == "w600k_r50.onnx" and GLINT360K_R100.filename == "glintr100.onnx"


def test_missing_weights_raise_the_registry_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAPBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    for cls, card in ((InsightfaceW600kR50, W600K_R50), (InsightfaceGlint360kR100, GLINT360K_R100)):
        with pytest.raises(WeightsError, match=f"missing {card.filename}") as err:
            build_backend(cls)
        assert card.url in str(err.value) and str(tmp_path) in str(err.value)
