"""E4S reenactment (FaceVid2Vid) against the official code (e4s2022/e4s @ d30bdc7,
src/pretrained/face_vid2vid/, scripts/face_swap.py:194-204): checkpoint layout, spectral-norm folding,
quirks, and parity with shared random weights.

tests/golden/e4s_facevid2vid_manifest.json: {key: shape} of the official OcclusionAwareSPADEGenerator,
KPDetector and HEEstimator built from pretrained_ckpts/facevid2vid/vox-256.yaml at full size on the meta
device (torch 2.13; these are plain torch modules and the legacy spectral_norm keys are the same under the
official torch 1.12), i.e. what `00000189-checkpoint.pth.tar`'s three entries hold.

tests/golden/e4s_reenact_parity.npz was made outside the repository by a throw-away script running the
official modules unmodified except for their hard-coded widths (e4s_reenact_inputs.TINY says which), on
CPU, batch 1 per pair as the official pipeline: random_checkpoint(TINY, SEED) loaded strictly; inputs
face_crops_1024() resized with the official `resize(np.array(im) / 255.0, (256, 256))`; pair 0 drives the
astronaut with grace_hopper, pair 1 the reverse; `driven_demo.make_animation(..., cpu=True)` for the
frame, and the same calls one by one (kp_detector, he_estimator, headpose_pred_to_degree,
get_rotation_matrix, keypoint_transformation, generator) for the intermediates; `(pred * 255).astype(uint8)`;
and the official AntiAliasInterpolation2d(3, 0.25) kernel (vox-256's keypoint-detector downsampling).

Tolerance: 1e-4 max abs error (fp32 deterministic networks; the port runs both pairs in one batch, and
some ops in another order: grouped conv with stride for the anti-aliasing, matmul for the soft-argmax).
The truncated uint8 frames may differ by 1 where a value sits on an integer boundary.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from e4s_reenact_inputs import SEED, TINY, digest, face_crops_1024

from swapbench.methods.e4s.facevid2vid_nets import VOX_256, AntiAliasDownsample
from swapbench.methods.e4s.facevid2vid_random import random_checkpoint
from swapbench.methods.e4s.reenact import (FACEVID2VID_WEIGHTS, MODULES, Reenactor, build_networks, checkpoint_layout,
                                           fold_spectral_norm, head_pose_degrees, resize_like_skimage, rotation_matrix,
                                           to_uint8, transform_keypoints)
from swapbench.weights import WeightsError

GOLDEN = Path(__file__).parent / "golden"
TOL = 1e-4


@pytest.fixture(scope="module")
def gold():
    with np.load(GOLDEN / "e4s_reenact_parity.npz") as g:
        return {k: g[k] for k in g.files}


@pytest.fixture(scope="module")
def checkpoint():
    return random_checkpoint(TINY, SEED)


@pytest.fixture(scope="module")
def model(checkpoint):
    return Reenactor.from_checkpoint(checkpoint, TINY)


@pytest.fixture(scope="module")
def crops(gold):
    c = face_crops_1024()
    assert digest(c) == str(gold["crops_sha256"]), "test inputs changed: the golden no longer applies"
    return c


@pytest.fixture(scope="module")
def resized(crops, gold):
    x = np.stack([resize_like_skimage(c) for c in crops])
    assert x.dtype == np.float64 and x.shape == (2, 256, 256, 3)
    assert digest(x) == str(gold["resized_sha256"])  # the official call, bit for bit
    return torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2)  # make_animation's float32 cast


def _err(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def test_checkpoint_layout_matches_the_official_manifest():
    manifest = json.loads((GOLDEN / "e4s_facevid2vid_manifest.json").read_text())
    with torch.device("meta"):
        nets = build_networks()
    for name in MODULES:
        layout = {k: list(s) for k, s in checkpoint_layout(name, nets[name]).items()}
        assert layout == manifest[name], name
        assert list(layout) == list(manifest[name]), f"{name}: key order"
    raw = manifest["generator"]
    assert sum(k.endswith("weight_orig") for k in raw) == 18  # conv_0, conv_1 of 8 blocks, conv_s of 2
    assert not any(k.startswith("decoder.") and k.endswith("conv_0.weight") for k in raw)
    assert manifest["kp_detector"]["down.weight"] == [3, 1, 13, 13]  # the anti-aliasing kernel buffer
    # the random checkpoints of the tests have that layout too
    with torch.device("meta"):
        rand = random_checkpoint()
    assert {n: {k: list(v.shape) for k, v in rand[n].items()} for n in MODULES} == manifest


@pytest.mark.parametrize("shape", [(12, 8, 3), (6, 12, 1)])
def test_spectral_norm_folding_equals_the_legacy_hook_in_eval(shape):
    cout, cin, k = shape
    torch.manual_seed(0)
    sn = torch.nn.utils.spectral_norm(torch.nn.Conv2d(cin, cout, k, padding=k // 2, bias=k == 3))
    x = torch.randn(2, cin, 9, 9)
    for _ in range(3):  # training forwards run power iterations, so u and v are not their initial values
        sn(x)
    sn.eval()
    state = sn.state_dict()
    assert {"weight_orig", "weight_u", "weight_v"} <= set(state) and "weight" not in state
    plain = torch.nn.Conv2d(cin, cout, k, padding=k // 2, bias=k == 3)
    prefixed = {f"c.{key}": v for key, v in state.items()}
    plain.load_state_dict({key[2:]: v for key, v in fold_spectral_norm(prefixed, ["c"]).items()}, strict=True)
    with torch.no_grad():
        ref = sn(x)
        assert (plain(x) - ref).abs().max() <= 1e-6 * ref.abs().max()
        # and not the raw weight: sigma is not 1
        assert (F.conv2d(x, state["weight_orig"], padding=k // 2) - ref).abs().max() > 1e-3


def test_parity_with_the_official_modules(model, resized, gold):
    source, driving = resized, resized.flip(0)
    errs = {}
    with torch.no_grad():
        kp_c = model.kp_detector(source)
        he_s, he_d = model.he_estimator(source), model.he_estimator(driving)
        errs["kp_canonical"] = _err(kp_c, gold["kp_canonical"])
        for key in ("yaw", "pitch", "roll", "t", "exp"):  # yaw from fc_roll, roll from fc_yaw
            errs[key] = _err(he_d[key], gold[key])
        for which, he in (("source", he_s), ("driving", he_d)):
            degrees = torch.stack([head_pose_degrees(he[a]) for a in ("yaw", "pitch", "roll")], dim=1)
            errs[f"degrees_{which}"] = _err(degrees, gold[f"degrees_{which}"]) / 100  # relative: up to 99 degrees
            errs[f"rot_{which}"] = _err(rotation_matrix(*degrees.T), gold[f"rot_{which}"])
        errs["kp_source"] = _err(transform_keypoints(kp_c, he_s), gold["kp_source"])
        errs["kp_driving"] = _err(transform_keypoints(kp_c, he_d), gold["kp_driving"])
        frame = model(source, driving)
    assert frame.shape == (2, 3, 256, 256) and frame.dtype == torch.float32
    errs["prediction_pool"] = _err(F.avg_pool2d(frame, 8), gold["prediction_pool"])
    errs["prediction_slice"] = _err(frame[:, :, 112:144, 112:144], gold["prediction_slice"])
    errs["prediction_std"] = _err(frame.flatten(1).std(1), gold["prediction_std"])
    print({k: f"{v:.1e}" for k, v in errs.items()})
    assert max(errs.values()) <= TOL, errs
    # the official uint8 truncation
    frames = to_uint8(frame).permute(0, 2, 3, 1).numpy()
    diff = np.abs(frames[:, 112:144, 112:144].astype(int) - gold["frame_uint8_slice"].astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_rotation_takes_pi_as_3_14(gold):
    degrees = torch.from_numpy(gold["degrees_source"]).double()
    rot = rotation_matrix(*degrees.T)
    assert _err(rot, gold["rot_source"]) <= 1e-6
    # with the true pi the matrices move by ~1e-4 at these angles (about 35 degrees)
    true_pi = rotation_matrix(*(degrees.T * math.pi / 3.14))
    assert _err(true_pi, gold["rot_source"]) > 5e-5
    # R = R_pitch R_yaw R_roll: a pure roll turns x towards y, a pure yaw turns z towards x
    zero, ninety = torch.zeros(1), torch.full((1,), 90.0)
    r = rotation_matrix(zero, zero, ninety)[0] @ torch.tensor([1.0, 0, 0])
    assert torch.allclose(r, torch.tensor([math.cos(1.57), math.sin(1.57), 0]), atol=1e-6)


def test_the_official_stage_on_uint8_crops(model, crops, gold):
    out = model.reenact_crops(crops[1:], crops[:1])  # pair 1 alone: batch 1 as the official pipeline
    assert out.shape == (1, 256, 256, 3) and out.dtype == np.uint8
    diff = np.abs(out[:, 112:144, 112:144].astype(int) - gold["frame_uint8_slice"][1:].astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    # truncation, not rounding
    assert to_uint8(torch.tensor([0.0, 0.9999, 254.9 / 255, 1.0])).tolist() == [0, 254, 254, 255]


def test_antialiasing_kernel_is_the_official_one(gold):
    # the checkpoint stores it; random checkpoints take the port's, which must be the official one
    kernel = AntiAliasDownsample(3, VOX_256.kp_scale_factor).weight
    assert kernel.shape == (3, 1, 13, 13) and torch.equal(kernel[1, 0], torch.from_numpy(gold["antialias_kernel"]))


def test_resize_like_skimage_antialiases_as_the_official_call(gold):
    img = face_crops_1024()[0]
    out = resize_like_skimage(img)
    assert _err(out[100:116, 120:136], gold["resized_slice"][0]) == 0.0
    # bilinear at the centres of 4x4 blocks (sample positions 4i + 1.5) after a sigma-1.5 Gaussian blur:
    # the plain 4x4 block mean is close, but not equal
    block_mean = img.reshape(256, 4, 256, 4, 3).mean((1, 3)) / 255
    assert 1e-3 < np.abs(out - block_mean).mean() < 2e-2


def test_bad_checkpoints_are_named_with_their_url(checkpoint):
    with pytest.raises(WeightsError, match="he_estimator.*mediafire"):
        Reenactor.from_checkpoint({k: v for k, v in checkpoint.items() if k != "he_estimator"}, TINY)
    bad = {**checkpoint, "generator": dict(checkpoint["generator"])}
    w = bad["generator"].pop("decoder.up_1.conv_1.weight_orig")
    bad["generator"]["decoder.up_1.conv_1.weight"] = w  # a re-saved, already folded copy
    with pytest.raises(WeightsError, match="missing keys.*weight_orig.*unexpected keys.*conv_1.weight"):
        Reenactor.from_checkpoint(bad, TINY)
    with pytest.raises(WeightsError, match="'generator' does not fit FaceVid2Vid \\(vox-256\\).*wrong shapes"):
        Reenactor.from_checkpoint(checkpoint)  # the reduced widths are not vox-256
    assert FACEVID2VID_WEIGHTS.manual and "issue 39" in FACEVID2VID_WEIGHTS.note


def test_loads_the_training_checkpoint_file(tmp_path, checkpoint, model):
    # the official file is a training checkpoint: the three networks beside the discriminator, the
    # optimizers and the epoch; it opens with weights_only and only the three networks are read
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
    path = tmp_path / FACEVID2VID_WEIGHTS.filename
    torch.save({**checkpoint, "discriminator": {"w": torch.zeros(1)}, "optimizer_generator": opt.state_dict(),
                "epoch": 189}, path)
    loaded = Reenactor.from_checkpoint(path, TINY)
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(WeightsError, match="mediafire"):
        Reenactor.from_checkpoint(tmp_path / "missing.pth.tar")
