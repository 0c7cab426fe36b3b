"""CosFace sphere20 backends against MuggleWang's net.py and the CASIA survey's face_align.py.

tests/golden/cosface_parity.npz was produced by running MuggleWang/CosFace_pytorch net.py @ 81de0a9
(`sphere(type=20)`; for the 112x112 variant the same class with fc = Linear(512*7*7, 512), as
ReliableSwap and FaceSwappingAllInOne define it) and the CASIA face-swapping survey's
eval_faceswap/face_recognition/face_align.py @ b6f28bd, with random_weights.py's weights (regenerated
here from the key names). Stand-ins only for library calls: torchvision ToTensor/Normalize(0.5, 0.5)
and PIL hflip. It holds the network on noise inputs, the survey's alignment matrix, its aligned uint8
face and its flip-concatenated feature for two sample crops, with the dlib 5 points they came from.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from faces import sample_crops, to_tensor
from random_weights import random_state_dict

from swapbench.metrics import build_backend
from swapbench.metrics.backends.cosface import (
    CASIA_WEIGHTS,
    VGGFACE2_WEIGHTS,
    CosFaceSphere20CASIA,
    CosFaceSphere20VGGFace2,
    Sphere20,
    casia_similarity,
    load_sphere20,
)
from swapbench.weights import WeightsError

GOLDEN = np.load(Path(__file__).parent / "golden" / "cosface_parity.npz")
# Raw float32 features (|values| up to ~140) of a 20-layer network: identical here (error 0.0);
# another machine's summation order moves the last bits only.
NET_TOL = dict(rtol=1e-5, atol=1e-5)
FC_IN = {"casia": 512 * 7 * 6, "vggface2": 512 * 7 * 7}
WIDTH = {"casia": 96, "vggface2": 112}


def state(tag: str) -> dict:
    return random_state_dict(Sphere20(FC_IN[tag]).state_dict())


def write(folder: Path, wf, tag: str) -> dict:
    torch.save(state(tag), folder / wf.filename)
    return {wf.name: folder / wf.filename}


def images():
    crops = sample_crops()
    return to_tensor(*(crops[str(n)] for n in GOLDEN["names"]))


@pytest.mark.parametrize("tag,wf", [("casia", CASIA_WEIGHTS), ("vggface2", VGGFACE2_WEIGHTS)])
@torch.no_grad()
def test_sphere20_matches_official_network(tag, wf):
    net = load_sphere20(state(tag), wf)
    assert list(net.state_dict()) == list(GOLDEN[f"{tag}_keys"]) and len(GOLDEN[f"{tag}_keys"]) == 46
    noise = torch.randn(2, 3, 112, WIDTH[tag], generator=torch.Generator().manual_seed(0))
    expected = GOLDEN[f"{tag}_noise_feature"]
    assert np.abs(expected).max() > 0.1  # the random network does not collapse to zero
    np.testing.assert_allclose(net(noise).numpy(), expected, **NET_TOL)


def test_full_size_parameter_counts():
    # the counts computed from the official definitions (wave-2 porting notes, Part 4)
    assert sum(p.numel() for p in Sphere20(512 * 7 * 6).parameters()) == 22_666_944
    assert sum(p.numel() for p in Sphere20(512 * 7 * 7).parameters()) == 24_501_952


def test_casia_similarity_matches_survey():
    for name, points in zip(GOLDEN["names"], GOLDEN["points5"]):
        np.testing.assert_allclose(casia_similarity(points), GOLDEN[f"casia_matrix_{name}"], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        casia_similarity(np.zeros((5, 2)))


@torch.no_grad()
def test_casia_backend_matches_survey_pipeline(tmp_path):
    backend = CosFaceSphere20CASIA(files=write(tmp_path, CASIA_WEIGHTS, "casia"))
    x = images()
    crops, ok, _ = backend.crops(x)
    assert ok.all() and crops.shape == (2, 3, 112, 96)
    # the survey warps uint8 with cv2 and rounds; swapbench warps float (measured: mean 0.25, max 2.24 grey levels)
    diff = np.abs(crops.permute(0, 2, 3, 1).numpy() * 255 - GOLDEN["casia_face"])
    assert diff.mean() < 0.5 and diff.max() < 3
    feats = backend.extract(x)
    assert feats.ok.all() and feats.values.shape == (2, 1024)
    cos = (feats.values.double() * torch.from_numpy(GOLDEN["casia_feature"]).double()).sum(1)
    # that rounding is the only difference: measured max |difference| 1e-4 on the unit 1024-d feature
    assert (cos > 0.9999).all(), cos
    np.testing.assert_allclose(feats.values.numpy(), GOLDEN["casia_feature"], rtol=0, atol=1e-3)
    # and the two halves are the face and its mirror image (not equal: the network is not symmetric)
    x_in = crops * 2 - 1
    half = torch.nn.functional.normalize(torch.cat([backend.module(x_in), backend.module(x_in.flip(-1))], 1), dim=1)
    np.testing.assert_allclose(feats.values.numpy(), half.numpy(), rtol=0, atol=1e-6)


@torch.no_grad()
def test_vggface2_input_rules(tmp_path):
    files = write(tmp_path, VGGFACE2_WEIGHTS, "vggface2")
    x = images()
    aligned = CosFaceSphere20VGGFace2(files)
    resized = CosFaceSphere20VGGFace2(files, input_rule="resize")
    assert (aligned.feature_name, resized.feature_name) == ("cosface_sphere20_vggface2", "cosface_sphere20_vggface2/resize")
    fa, fr = aligned.extract(x), resized.extract(x)
    assert fa.ok.all() and fr.ok.all() and fa.values.shape == (2, 512)
    np.testing.assert_allclose(fa.values.norm(dim=1).numpy(), 1.0, atol=1e-6)
    # ReliableSwap: the whole crop, bilinear align_corners=True to 112, [-1, 1]
    ref = torch.nn.functional.interpolate(x, size=(112, 112), mode="bilinear", align_corners=True) * 2 - 1
    np.testing.assert_allclose(fr.values.numpy(), torch.nn.functional.normalize(resized.module(ref)).numpy(), atol=1e-6)
    assert (fa.values - fr.values).abs().max() > 1e-3  # the two rules are different inputs
    # a crop without a face has no feature under ArcFace re-alignment, and one under resize
    blank = torch.full((1, 3, 256, 256), 0.5)
    assert not aligned.extract(blank).ok.any() and "cosface_sphere20_vggface2" in aligned.extract(blank).reasons[0]
    assert resized.extract(blank).ok.all()
    with pytest.raises(ValueError, match="arcface, resize, theta"):
        CosFaceSphere20VGGFace2(files, input_rule="warp")


@torch.no_grad()
def test_vggface2_theta_rule_matches_faceswappingallinone(tmp_path):
    """tests/golden/cosface_theta.npz: FaceSwappingAllInOne @ ed38c1e metrics/cosface `CosFaceImageInfer.infer_tensor`
    run as is (CPU) on the two 256 sample crops in [-1, 1] (ToTensor + Normalize(0.5) written with numpy), with
    random_weights.py's weights in the file it loads; it keeps the network input of the first crop (float16)."""
    golden = np.load(Path(__file__).parent / "golden" / "cosface_theta.npz")
    files = write(tmp_path, VGGFACE2_WEIGHTS, "vggface2")
    backend = CosFaceSphere20VGGFace2(files, input_rule="theta")
    assert backend.feature_name == "cosface_sphere20_vggface2/theta"
    x = to_tensor(*(sample_crops()[str(n)] for n in golden["names"]))
    crops, ok, _ = backend.crops(x)
    assert ok.all() and crops.shape == (2, 3, 112, 112)
    net_input = crops[0] * 2 - 1
    # the golden input is float16 (steps of 2^-11 in [0.5, 1]); the warp itself agrees to float32 rounding
    np.testing.assert_allclose(net_input.numpy(), golden["theta_input_astronaut"].astype(np.float32), rtol=0, atol=1e-3)
    # theta's scale 1.077 reaches past the image at the corners: zero in [-1, 1] (grey), not black
    assert net_input[:, :2, :2].abs().max() < 1e-5 and (x[0, :, :2, :2] * 2 - 1).abs().min() > 0.01
    raw = backend.module(crops * 2 - 1)
    np.testing.assert_allclose(raw.numpy(), golden["theta_feature"], rtol=1e-4, atol=1e-4)
    feats = backend.extract(x)
    np.testing.assert_allclose(feats.values.numpy(), torch.nn.functional.normalize(
        torch.from_numpy(golden["theta_feature"])).numpy(), rtol=0, atol=1e-6)
    # a different input than ReliableSwap's plain resize: the test can tell the rules apart
    resized = CosFaceSphere20VGGFace2(files, input_rule="resize")
    assert (resized.extract(x).values - feats.values).abs().max() > 1e-2


@pytest.mark.parametrize("cls,wf,other,wrong_tag", [
    (CosFaceSphere20CASIA, CASIA_WEIGHTS, VGGFACE2_WEIGHTS, "vggface2"),
    (CosFaceSphere20VGGFace2, VGGFACE2_WEIGHTS, CASIA_WEIGHTS, "casia"),
])
def test_wrong_variant_file_is_named(tmp_path, cls, wf, other, wrong_tag):
    """The two files share all 46 keys; the other variant's file is caught by fc.weight and named."""
    torch.save(state(wrong_tag), tmp_path / wf.filename)
    with pytest.raises(WeightsError) as err:
        cls(files={wf.name: tmp_path / wf.filename})
    msg = str(err.value)
    assert f"other CosFace variant, {other.name}" in msg
    assert CASIA_WEIGHTS.filename in msg and VGGFACE2_WEIGHTS.filename in msg and wf.url in msg


def test_missing_file_stops_before_any_work(tmp_path):
    for name in ("cosface_sphere20_casia", "cosface_sphere20_vggface2"):
        with pytest.raises(WeightsError) as err:
            build_backend(name, weights_dir=tmp_path)
        wf = CASIA_WEIGHTS if name.endswith("casia") else VGGFACE2_WEIGHTS
        assert wf.filename in str(err.value)
