"""E4S restoration stage (GPEN + Real-ESRNet x4) against the official code, with shared random weights.

How tests/golden/e4s_restore.npz and e4s_restore_manifest.json were made (script outside the repository):
  - official code: e4s2022/e4s @ d30bdc7180fdfad20722d86cbe12893dc39f3e02, src/pretrained/gpen/
    (FaceEnhancement, RealESRNet, FaceGAN, FaceParse, RetinaFaceDetection, align_faces), on CPU in fp32,
    torchvision 0.28 for RetinaFace's ResNet-50 (its compiled ops left out, unused here);
  - manifest: the official RRDBNet(num_feat 32, num_block 23), RetinaFace(cfg_re50), FullGenerator(512,
    narrow 1) and ParseNet(512, 64, ch_range (32, 256)) built on `meta`, {key: shape} of each;
  - weights: `restore_random_states` on reduced networks (RRDBNet 1 block / 8 features, GPEN narrow
    1/16, ParseNet base 8 / 2 body blocks / channels 8..32; RetinaFace full), loaded strictly into the
    official modules, whose loaders were patched to return them;
  - inputs: a blurred seeded-noise 48x48 BGR image for the whole `FaceEnhancement.process` (SR to 192,
    four detections), and a 64x96 one for RetinaFace's raw outputs.
  - stored: SR (float subsampled and uint8), raw detector outputs, detections and landmarks, the first
    face's crop, inverse transform, GPEN output (float, and uint8 subsampled), ParseNet logits on the crop
    and the paste mask of the restored face (subsampled), the restored image D, and D (subsampled) from
    the same detections with 80 px boxes (the small-face smoothing).

Tolerances: with one torch thread (as the goldens were made) every stage equals the official one bit for
bit. With more threads the convs sum in another order: GPEN's float output moves by ~1e-7, RetinaFace's
outputs by ~1e-5, landmarks by ~5e-5 px, and the paste warps round
a few values of the restored image the other way (89 of 110,592 one level apart at two threads). Bounds:
1e-4 on floats, 1e-3 px on boxes and landmarks, 1 level on under 0.1% of the values of 8-bit images.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from swapbench.methods.e4s import restore as restore_module
from swapbench.methods.e4s.gpen import FullGenerator
from swapbench.methods.e4s.parsenet import ParseNet
from swapbench.methods.e4s.restore import (
    REALESRNET_WEIGHTS,
    RESTORE_WEIGHTS,
    Restorer,
    align_face,
    reference_points,
    retinaface_state,
    sr_state,
)
from swapbench.methods.e4s.restore_random import restore_random_states
from swapbench.methods.e4s.retinaface import RetinaFace, detect
from swapbench.methods.e4s.rrdbnet import RRDBNet
from swapbench.weights import WeightsError

GOLDEN = Path(__file__).parent / "golden"
SR = dict(num_feat=8, num_block=1, num_grow_ch=8)
NARROW = 1 / 16
PARSE = dict(min_feat_size=32, base_ch=8, res_depth=2, ch_range=(8, 32))
FLOAT_TOL = 1e-4


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN / "e4s_restore.npz"))


@pytest.fixture(scope="module")
def restorer():
    torch.manual_seed(0)
    nets = (RRDBNet(SR["num_feat"], SR["num_block"], SR["num_grow_ch"]), RetinaFace(),
            FullGenerator(512, 2, NARROW), ParseNet(512, **PARSE))
    for net, state in zip(nets, restore_random_states(nets, seed=0).values()):
        net.load_state_dict(state, strict=True)
    return Restorer(*nets)


def _uint8_close(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1, f"uint8 outputs differ by {diff.max()} levels"
    assert (diff > 0).mean() < 1e-3, f"{(diff > 0).mean():.2%} of the values differ"


def test_full_size_layouts_equal_the_official_files():
    manifest = json.loads((GOLDEN / "e4s_restore_manifest.json").read_text())
    with torch.device("meta"):
        nets = {"realesrnet_x4.pth[params_ema]": RRDBNet(), "RetinaFace-R50.pth (module. stripped)": RetinaFace(),
                "GPEN-BFR-512.pth": FullGenerator(), "ParseNet-latest.pth": ParseNet()}
    assert set(nets) == set(manifest)
    for name, net in nets.items():
        assert {k: list(v.shape) for k, v in net.state_dict().items()} == manifest[name], name
    # the files' own layouts go through the conversions: params_ema, DataParallel prefixes
    rf = {k: torch.empty(0) for k in manifest["RetinaFace-R50.pth (module. stripped)"]}
    assert set(retinaface_state({f"module.{k}": v for k, v in rf.items()})) == set(rf)
    assert set(retinaface_state({"state_dict": {f"module.{k}": v for k, v in rf.items()}})) == set(rf)
    sr = {k: torch.empty(0) for k in manifest["realesrnet_x4.pth[params_ema]"]}
    assert sr_state({"params_ema": sr, "params": {}}) is sr


def test_weight_declarations_name_direct_links():
    for wf in RESTORE_WEIGHTS:
        assert wf.url.startswith("https://") and wf.url.endswith("/" + wf.filename) and not wf.manual
        assert "non-commercial" in wf.licence


def test_from_files_refuses_a_wrong_file_before_loading():
    with pytest.raises(WeightsError, match="params_ema.*" + REALESRNET_WEIGHTS.url.replace(".", r"\.")):
        Restorer.from_files({}, {"params": {}}, {}, {})
    tiny_sr = {"params_ema": RRDBNet(8, 1, 8).state_dict()}  # a wrong variant: refused, naming the file
    with pytest.raises(WeightsError, match="realesrnet_x4.pth"):
        Restorer.from_files({}, tiny_sr, {}, {})


def test_super_resolution_matches_official(restorer, golden):
    x = torch.from_numpy((golden["input"].astype(np.float32) / 255.0)[:, :, ::-1].transpose(2, 0, 1).copy())
    with torch.no_grad():
        out = restorer.sr(x[None])[0, :, ::4, ::4].numpy()
    assert np.abs(out - golden["sr_float"]).max() <= FLOAT_TOL
    _uint8_close(restorer.super_resolve(golden["input"]), golden["sr"])


def test_retinaface_matches_official(restorer, golden):
    img = np.float32(golden["det_input"]) - (104, 117, 123)
    with torch.no_grad():
        loc, conf, landm = restorer.detector(torch.from_numpy(img.astype(np.float32).transpose(2, 0, 1))[None])
    for mine, key in ((loc, "det_loc"), (conf, "det_conf"), (landm, "det_landm")):
        assert np.abs(mine[0].numpy() - golden[key]).max() <= FLOAT_TOL, key
    up = cv2.resize(golden["input"], golden["sr"].shape[:2][::-1])
    dets, landmarks = detect(restorer.detector, up)
    assert len(dets) == len(golden["dets"]) >= 1
    assert np.abs(dets - golden["dets"]).max() <= 1e-3  # pixels (boxes up to ~400 px) and scores
    assert np.abs(landmarks - golden["landms"]).max() <= 1e-3


def test_face_crop_gpen_and_mask_match_official(restorer, golden):
    np.testing.assert_allclose(reference_points(), golden["reference_5pts"], rtol=0, atol=1e-12)
    up = cv2.resize(golden["input"], golden["sr"].shape[:2][::-1])
    crop, inverse = align_face(up, golden["landms"][0], restorer.reference)
    np.testing.assert_allclose(inverse, golden["tfm_inv0"], rtol=1e-6, atol=1e-6)
    _uint8_close(crop[::4, ::4], golden["crop0"])
    x = (torch.from_numpy(crop) / 255.0 - 0.5) / 0.5
    with torch.no_grad():
        out = restorer.gpen(x.permute(2, 0, 1)[None].flip(1))[0, :, ::8, ::8].numpy()
    assert np.abs(out - golden["gpen_float0"]).max() <= FLOAT_TOL
    face = restorer.restore_face(crop)
    _uint8_close(face[::4, ::4], golden["face0"])
    logits_in = torch.from_numpy((crop[..., ::-1] / 255.0 * 2 - 1).transpose(2, 0, 1).copy())[None].float()
    with torch.no_grad():
        logits = restorer.parser(logits_in)[0][0, :, ::16, ::16].numpy()
    assert np.abs(logits - golden["parse_logits0"]).max() <= FLOAT_TOL
    assert np.abs(restorer.face_mask(face)[::8, ::8] - golden["mask0"]).max() <= FLOAT_TOL


def test_restored_image_matches_official(restorer, golden):
    out = restorer(golden["input"])
    assert out.shape == (192, 192, 3)
    _uint8_close(out, golden["restored"])
    assert np.abs(out.astype(int) - golden["sr"].astype(int)).max() > 10  # faces were pasted


def test_small_faces_are_smoothed_as_official(restorer, golden, monkeypatch):
    """The official detections with 80 px boxes: faces under 100 px are smoothed before the paste."""
    small = golden["dets"].copy()
    small[:, 2:4] = small[:, :2] + 80
    monkeypatch.setattr(restore_module, "detect", lambda net, image: (small, golden["landms"]))
    out = restorer(golden["input"])
    _uint8_close(out[::2, ::2], golden["restored_small"])  # without the smoothing: 796 of 27,648 values differ


def test_no_face_gives_the_super_resolved_image(restorer, golden):
    threshold, restorer.threshold = restorer.threshold, 1.01  # no detection passes
    try:
        _uint8_close(restorer(golden["input"]), golden["sr"])  # official: D = the SR image
    finally:
        restorer.threshold = threshold


def test_bad_input_is_refused(restorer):
    with pytest.raises(ValueError, match="BGR uint8"):
        restorer(np.zeros((8, 8), np.float32))


def test_from_files_loads_full_size_files_in_the_official_layouts(tmp_path):
    with torch.device("meta"):
        nets = {"sr": RRDBNet(), "detector": RetinaFace(), "gpen": FullGenerator(), "parser": ParseNet()}
    # zeros (cheap at full size) with one marked tensor per network, to see that the values arrive
    states = {n: {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in net.state_dict().items()} for n, net in nets.items()}
    marked = {"sr": "conv_last.weight", "detector": "body.conv1.weight", "gpen": "generator.input.input",
              "parser": "out_mask_conv.conv2d.weight"}
    for n, key in marked.items():
        states[n][key] = torch.arange(states[n][key].numel(), dtype=torch.float32).reshape(states[n][key].shape)
    torch.save({"params_ema": states["sr"]}, tmp_path / REALESRNET_WEIGHTS.filename)  # read from disk, the official way
    restorer = Restorer.from_files(states["gpen"], tmp_path / REALESRNET_WEIGHTS.filename,
                                   {f"module.{k}": v for k, v in states["detector"].items()}, states["parser"])
    for n, key in marked.items():
        assert torch.equal(getattr(restorer, n).state_dict()[key], states[n][key]), n
