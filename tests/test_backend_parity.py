"""Hopenet, L2CS-Net and Deep3DFaceRecon ports against the official model code.

Goldens in tests/golden/ were produced by running the official model definitions
(natanielruiz/deep-head-pose code/hopenet.py, Ahmednull/L2CS-Net l2cs/model.py,
sicxu/Deep3DFaceRecon_pytorch models/networks.py and util/preprocess.py align_img) with torchvision's
Bottleneck and the deterministic weights of random_weights.py, on a real face and on noise.
The ports get the same weights (generated from the key names) and must give the same outputs.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from random_weights import random_state_dict

from swapbench.metrics import build_backend
from swapbench.metrics.backends.common import imagenet_normalize
from swapbench.metrics.backends.expression import Deep3DReconNet, deep3d_align
from swapbench.metrics.backends.gaze import L2CS, L2CS_GAZE360, L2CSGaze
from swapbench.metrics.backends.pose import HOPENET_ROBUST, Hopenet, HopenetPose
from swapbench.weights import WeightsError

GOLDEN = Path(__file__).parent / "golden"
# float32 through 50 layers in a different module layout: summation order may differ slightly
LOGIT_TOL = dict(rtol=1e-4, atol=1e-4)
ANGLE_TOL = dict(rtol=0, atol=2e-3)  # degrees


def golden(name):
    return np.load(GOLDEN / f"{name}.npz")


def face_and_noise():
    """[2, 3, 224, 224] in [0, 1]-space normalised inputs: the golden face crop and seeded noise."""
    face = torch.from_numpy(golden("face_224")["image"]).permute(2, 0, 1)[None].float() / 255
    noise = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    return face, noise


def save_official_format(state_dict, path):
    # the released .pkl files are legacy (pre-zip) torch.save archives of a plain state_dict
    torch.save(state_dict, path, _use_new_zipfile_serialization=False)


@torch.no_grad()
def test_hopenet_matches_official():
    g = golden("hopenet_parity")
    model = Hopenet()
    assert list(model.state_dict().keys()) == list(g["keys"])
    model.load_state_dict(random_state_dict(model.state_dict()), strict=True)
    face, noise = face_and_noise()
    yaw, pitch, roll = model.eval()(torch.cat([imagenet_normalize(face), noise]))
    for ours, name in ((yaw, "yaw"), (pitch, "pitch"), (roll, "roll")):
        np.testing.assert_allclose(ours.numpy(), g[name], **LOGIT_TOL)
    np.testing.assert_allclose(Hopenet.angles((yaw, pitch, roll)).numpy(), g["angles"], **ANGLE_TOL)


@torch.no_grad()
def test_hopenet_backend_loads_official_checkpoint(tmp_path):
    path = tmp_path / HOPENET_ROBUST.filename
    save_official_format(random_state_dict(Hopenet().state_dict()), path)
    backend = HopenetPose(files={HOPENET_ROBUST.name: path})
    face, _ = face_and_noise()
    feats = backend.extract(face)
    assert feats.values.shape == (1, 3) and feats.ok.all()
    np.testing.assert_allclose(feats.values.numpy(), golden("hopenet_parity")["angles"][:1], **ANGLE_TOL)


def test_hopenet_rejects_a_checkpoint_with_other_keys(tmp_path):
    sd = random_state_dict(Hopenet().state_dict())
    del sd["fc_finetune.weight"]
    path = tmp_path / HOPENET_ROBUST.filename
    save_official_format(sd, path)
    with pytest.raises(RuntimeError, match="fc_finetune.weight"):
        HopenetPose(files={HOPENET_ROBUST.name: path})


def test_missing_weights_raise_the_registry_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAPBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    for backend, wf in ((HopenetPose, HOPENET_ROBUST), (L2CSGaze, L2CS_GAZE360)):
        with pytest.raises(WeightsError, match=f"missing {wf.filename}") as err:
            build_backend(backend)
        assert wf.url in str(err.value) and str(tmp_path) in str(err.value)


@torch.no_grad()
def test_l2cs_matches_official():
    g = golden("l2cs_parity")
    model = L2CS()
    assert list(model.state_dict().keys()) == list(g["keys"])
    model.load_state_dict(random_state_dict(model.state_dict()), strict=True)
    face, noise = face_and_noise()
    x = torch.nn.functional.interpolate(torch.cat([imagenet_normalize(face), noise]), size=(448, 448), mode="bilinear")
    yaw_logits, pitch_logits = model.eval()(x)
    np.testing.assert_allclose(yaw_logits.numpy(), g["out0"], **LOGIT_TOL)
    np.testing.assert_allclose(pitch_logits.numpy(), g["out1"], **LOGIT_TOL)
    # the official pipeline calls the first output "pitch"; it is fc_yaw_gaze, the horizontal angle
    pitch_yaw = L2CS.angles((yaw_logits, pitch_logits)).numpy()
    np.testing.assert_allclose(pitch_yaw[:, 1], g["pipeline_pitch"], **ANGLE_TOL)
    np.testing.assert_allclose(pitch_yaw[:, 0], g["pipeline_yaw"], **ANGLE_TOL)


@torch.no_grad()
def test_l2cs_backend_loads_official_checkpoint(tmp_path):
    path = tmp_path / L2CS_GAZE360.filename
    save_official_format(random_state_dict(L2CS().state_dict()), path)
    face, _ = face_and_noise()
    feats = L2CSGaze(files={L2CS_GAZE360.name: path}).extract(face)
    g = golden("l2cs_parity")
    np.testing.assert_allclose(feats.values.numpy()[0], [g["pipeline_yaw"][0], g["pipeline_pitch"][0]], **ANGLE_TOL)


@torch.no_grad()
def test_deep3d_recon_net_matches_official():
    g = golden("deep3d_parity")
    model = Deep3DReconNet()
    assert list(model.state_dict().keys()) == list(g["keys"])
    model.load_state_dict(random_state_dict(model.state_dict()), strict=True)
    face, noise = face_and_noise()
    coeffs = model.eval()(torch.cat([face, noise.clamp(-2, 2) / 4 + 0.5]))
    assert coeffs.shape == (2, 257)
    np.testing.assert_allclose(coeffs.numpy(), g["coeffs"], **LOGIT_TOL)
    np.testing.assert_allclose(Deep3DReconNet.exp(coeffs).numpy(), g["coeffs"][:, 80:144], **LOGIT_TOL)


def test_deep3d_alignment_matches_official_align_img():
    from faces import sample_crops

    g = golden("deep3d_parity")
    ours = deep3d_align(sample_crops()["tom_hanks"], g["lm5"].astype(np.float64), g["lm3d5"])
    assert ours.shape == (224, 224, 3)
    # same PIL resize and crop box: identical pixels
    np.testing.assert_array_equal(ours, g["aligned"])


@torch.no_grad()
def test_deep3d_backend_end_to_end(tmp_path):
    from faces import sample_crops, to_tensor
    from scipy.io import savemat

    from swapbench.metrics.backends.expression import Deep3DExpression

    g = golden("deep3d_parity")
    sd = random_state_dict(Deep3DReconNet().state_dict())
    torch.save({"net_recon": sd, "epoch": 20}, tmp_path / "epoch_20.pth")  # the official checkpoint layout
    lm68 = np.zeros((68, 3))  # a landmark file whose official 5-point reduction is the golden's
    lm68[[36, 39]], lm68[[42, 45]], lm68[30], lm68[48], lm68[54] = g["lm3d5"]
    savemat(tmp_path / "similarity_Lm3D_all.mat", {"lm": lm68})
    backend = Deep3DExpression(files={"deep3d/epoch_20": tmp_path / "epoch_20.pth",
                                      "deep3d/similarity_Lm3D_all": tmp_path / "similarity_Lm3D_all.mat"})
    crop = sample_crops()["tom_hanks"]
    feats = backend.extract(to_tensor(crop, np.full_like(crop, 128)))
    assert feats.ok.tolist() == [True, False] and feats.reasons[1] == "no face found by deep3d_exp"
    model = Deep3DReconNet()
    model.load_state_dict(sd)
    expected = Deep3DReconNet.exp(model.eval()(torch.from_numpy(g["aligned"]).permute(2, 0, 1)[None].float() / 255))
    np.testing.assert_allclose(feats.values[:1].numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
