"""SCRFD detector: decoding, NMS, and the full ONNX path on a tiny model with SCRFD's signature.

The tiny model is exported here with torch.onnx.export: input "input.1" [1, 3, 640, 640] and the 9
outputs of det_10g.onnx (names "448" ... "500"; scores [N, 1], boxes [N, 4], keypoints [N, 10] for
strides 8, 16, 32 with 2 anchors per cell). Its score is the brightness of each cell, so a bright
spot in the image plants one strong anchor at a known place; boxes and keypoints are constant
offsets plus a small random-weight convolution. The same model also runs through insightface's
own SCRFD class (installed package) for parity.
"""

import os
import sys
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from faces_testdata import astronaut  # noqa: E402

from swapbench.faces import scrfd as S  # noqa: E402
from swapbench.faces.templates import estimate_transform  # noqa: E402
from swapbench.weights import WeightsError  # noqa: E402

OUTPUT_NAMES = ["448", "471", "494", "451", "474", "497", "454", "477", "500"]
BOX_DIST = 2.0  # stride units
KPS_OFFSETS = torch.tensor([-0.6, -0.4, 0.6, -0.4, 0.0, 0.1, -0.5, 0.6, 0.5, 0.6])  # stride units


class TinySCRFD(nn.Module):
    def __init__(self, noise: float, gain: float = 40.0, bias: float = -20.0):
        super().__init__()
        self.gain, self.bias = gain, bias
        torch.manual_seed(0)
        self.noise = nn.ModuleList(nn.Conv2d(1, 2 + 8 + 20, 3, padding=1) for _ in range(3))
        self.scale = noise

    def forward(self, x):
        grey = x.mean(1, keepdim=True)  # (pixel - 127.5) / 128: black -1, white +1
        scores, boxes, kpss = [], [], []
        for i, stride in enumerate((8, 16, 32)):
            cell = F.avg_pool2d(grey, stride)
            rnd = self.scale * torch.tanh(self.noise[i](cell))
            # only stride 8 fires; anchor 1 scores a little below anchor 0
            gain, bias = (self.gain, self.bias) if stride == 8 else (0.0, -10.0)
            logit = torch.cat([gain * cell + bias, gain * cell + bias - 0.5], 1) + rnd[:, :2]
            box = BOX_DIST + rnd[:, 2:10]
            kps = KPS_OFFSETS.view(1, 10, 1, 1).repeat(1, 2, 1, 1) + rnd[:, 10:]
            # [1, A*C, h, w] -> [h*w*A, C]: cells row-major, anchor fastest, as SCRFD lays them out
            scores.append(torch.sigmoid(logit).permute(0, 2, 3, 1).reshape(-1, 1))
            boxes.append(box.permute(0, 2, 3, 1).reshape(-1, 4))
            kpss.append(kps.permute(0, 2, 3, 1).reshape(-1, 10))
        return (*scores, *boxes, *kpss)


def _export(module, path, dynamic_batch=False):
    """det_10g's signature; dynamic_batch: a free batch axis on the input and every output."""
    names = [f"out_{n}" for n in OUTPUT_NAMES]
    axes = {n: {0: "batch"} for n in ["input.1", *names]} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, 640, 640),), str(path), input_names=["input.1"],
                          output_names=names, dynamic_axes=axes, dynamo=False)
    # the TorchScript exporter refuses numeric names; give the outputs det_10g's names afterwards
    model = onnx.load(str(path))
    rename = {f"out_{n}": n for n in OUTPUT_NAMES}
    for node in model.graph.node:
        node.output[:] = [rename.get(o, o) for o in node.output]
    for out in model.graph.output:
        out.name = rename[out.name]
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def exact_model(tmp_path_factory):
    return _export(TinySCRFD(noise=0.0), tmp_path_factory.mktemp("scrfd") / "det_10g.onnx")


@pytest.fixture(scope="module")
def noisy_model(tmp_path_factory):
    # unsaturated scores (no ties at 1.0), so the order of candidates is unambiguous
    return _export(TinySCRFD(noise=0.3, gain=3.0, bias=-1.0), tmp_path_factory.mktemp("scrfd") / "det_10g.onnx")


def _blank_outputs(batched=False):
    outs = []
    for channels in (1, 4, 10):
        for stride in (8, 16, 32):
            n = (640 // stride) ** 2 * 2
            outs.append(np.zeros((n, channels), np.float32))
    if batched:
        outs = [o[None] for o in outs]
    return outs


@pytest.mark.parametrize("batched", [False, True])
def test_decode_planted_anchor(batched):
    outs = _blank_outputs()
    w16 = 640 // 16
    idx = (7 * w16 + 5) * 2 + 1  # stride 16, cell x=5, y=7, second anchor
    outs[1][idx] = 0.9
    outs[4][idx] = [1, 2, 3, 4]
    outs[7][idx] = np.arange(10) / 10
    if batched:
        outs = [o[None] for o in outs]
    scores, boxes, kps = S.decode(outs, (640, 640), 0.5)
    assert scores.tolist() == pytest.approx([0.9])
    anchor = np.array([5 * 16, 7 * 16])
    np.testing.assert_allclose(boxes[0], [80 - 16, 112 - 32, 80 + 48, 112 + 64])
    np.testing.assert_allclose(kps[0], anchor + (np.arange(10) / 10 * 16).reshape(5, 2), rtol=1e-6)


def test_decode_rejects_other_models():
    with pytest.raises(ValueError):
        S.decode(_blank_outputs()[:8], (640, 640))
    outs = _blank_outputs()
    outs[0] = outs[0][:-2]
    with pytest.raises(ValueError):
        S.decode(outs, (640, 640))


def test_anchor_layout():
    c = S.anchor_centres(2, 3, 8, 2)
    np.testing.assert_array_equal(c, [[0, 0], [0, 0], [8, 0], [8, 0], [16, 0], [16, 0],
                                      [0, 8], [0, 8], [8, 8], [8, 8], [16, 8], [16, 8]])


def test_nms_uses_pixel_inclusive_areas():
    boxes = np.array([[0, 0, 9, 9], [5, 0, 14, 9], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    # with +1: intersection 5 x 10 = 50, areas 100: IoU 1/3; without: 4 x 9 / (2 * 81 - 36) = 0.29
    assert S.nms(boxes, scores, 0.3) == [0, 2]
    assert S.nms(boxes, scores, 0.34) == [0, 1, 2]
    assert S.nms(boxes[::-1].copy(), scores[::-1].copy(), 0.3) == [2, 0]  # by score, not by position


def _blob_image(h=600, w=800, centre=(505.0, 265.0), sigma=15.0):
    ys, xs = np.mgrid[:h, :w]
    blob = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma ** 2))
    return np.repeat((255 * blob)[..., None], 3, axis=2).round().astype(np.uint8)


def test_detect_finds_the_planted_face(exact_model):
    """A bright spot at (505, 265) in an 800 x 600 image: resized by 0.8 it sits in the stride-8
    cell (50, 26) of the canvas, whose anchor (400, 208) maps back to (500, 260)."""
    det = S.SCRFD(exact_model)
    found = det.detect(_blob_image())
    assert found and found[0].score > 0.9
    scale = 640 / 800
    centre = np.array([400, 208]) / scale
    np.testing.assert_allclose((found[0].box[:2] + found[0].box[2:]) / 2, centre, atol=1e-3)
    np.testing.assert_allclose(found[0].box[2:] - found[0].box[:2], 2 * BOX_DIST * 8 / scale, atol=1e-3)
    np.testing.assert_allclose(found[0].kps, centre + KPS_OFFSETS.numpy().reshape(5, 2) * 8 / scale, atol=1e-3)
    # neighbours of the peak overlap it by far more than 0.4 IoU: NMS leaves one face
    assert all(np.abs((d.box[:2] + d.box[2:]) / 2 - centre).max() > 2 * BOX_DIST * 8 / scale for d in found[1:])
    # keypoints are in the templates' 5-point order: they align directly
    m = estimate_transform("arcface_112", found[0].kps)
    assert np.isfinite(m).all()


def test_preprocess_letterbox(exact_model):
    det = S.SCRFD(exact_model)
    blob, scale = det.preprocess(np.full((300, 200, 3), 255, np.uint8))  # portrait: height fills 640
    assert blob.shape == (1, 3, 640, 640) and scale == pytest.approx(640 / 300)
    assert blob[0, :, :, :426].min() == pytest.approx((255 - 127.5) / 128)
    assert blob[0, :, :, 427:].max() == pytest.approx(-127.5 / 128)


def test_matches_insightface_scrfd(noisy_model):
    """Same detections as insightface's own SCRFD class on a real photograph (BGR in, as it expects)."""
    from insightface.model_zoo.scrfd import SCRFD as Official

    image = astronaut()[0]
    ours = S.SCRFD(noisy_model).detect(image)
    official = Official(model_file=str(noisy_model))
    official.prepare(-1, input_size=(640, 640), det_thresh=0.5, nms_thresh=0.4)
    det, kpss = official.detect(image[:, :, ::-1].copy(), input_size=(640, 640))
    assert len(ours) == len(det) > 3
    np.testing.assert_allclose(np.stack([d.box for d in ours]), det[:, :4], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose([d.score for d in ours], det[:, 4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.stack([d.kps for d in ours]), kpss, rtol=1e-5, atol=1e-3)
    ours2 = S.SCRFD(noisy_model).detect(image, max_num=2)
    det2, _ = official.detect(image[:, :, ::-1].copy(), input_size=(640, 640), max_num=2)
    np.testing.assert_allclose(np.stack([d.box for d in ours2]), det2[:, :4], rtol=1e-5, atol=1e-3)


def test_weights_registered_and_checked(tmp_path, monkeypatch, exact_model):
    monkeypatch.delenv("SWAPBENCH_WEIGHTS", raising=False)
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    assert S.WEIGHTS["buffalo_l"].name == "insightface/buffalo_l/det_10g" and S.WEIGHTS["buffalo_l"].format == "onnx"
    assert S.WEIGHTS["buffalo_l"].filename == "det_10g.onnx"
    assert S.WEIGHTS["antelopev2"].url.endswith("/v0.7/antelopev2.zip")
    with pytest.raises(WeightsError, match="det_10g.onnx.*buffalo_l.zip"):
        S.load_scrfd("buffalo_l", tmp_path)
    # a file that is not the released detector fails its checksum instead of loading
    (tmp_path / "det_10g.onnx").write_bytes(exact_model.read_bytes())
    with pytest.raises(WeightsError, match="checksum"):
        S.load_scrfd("buffalo_l", tmp_path)
    with pytest.raises(ValueError):
        S.load_scrfd("buffalo_xl", tmp_path)
