"""BiSeNet face parsing: official checkpoint format, parity with the official model, class lists.

tests/golden/bisenet_parity.npz was made by running the official face-parsing.PyTorch model.py
(zllrunning/face-parsing.PyTorch, outside this repository; its resnet.py ImageNet download
replaced by the state dict below) with `random_state_dict` weights on torch.randn(1, 3, 48, 40)
from a torch.Generator seeded 1234. It holds the main logits, every 4th pixel of the two auxiliary
heads, and the official state_dict's key names and shapes.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from faces_testdata import random_state_dict  # noqa: E402

from swapbench.faces import parsing as P  # noqa: E402
from swapbench.weights import WeightsError  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "bisenet_parity.npz"


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as g:
        return {k: g[k] for k in g.files}


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = P.BiSeNet()
    model.load_state_dict(random_state_dict(model.state_dict()), strict=True)
    return model.eval()


def test_state_dict_keys_and_shapes_match_official(golden):
    ours = P.BiSeNet().state_dict()
    assert list(ours) == list(golden["keys"])
    for (key, value), shape in zip(ours.items(), golden["shapes"]):
        assert list(value.shape) == [int(s) for s in shape[: value.ndim]] and not shape[value.ndim:].any(), key


def test_parity_with_official_model(net, golden):
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(1, 3, 48, 40, generator=g)
    with torch.no_grad():
        out, out16, out32 = net(x)
    # logits of magnitude ~30 after 20 float32 layers: summation order differs by ~1e-5 relative
    np.testing.assert_allclose(out[0].numpy(), golden["out"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(out16[0, :, ::4, ::4].numpy(), golden["out16"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(out32[0, :, ::4, ::4].numpy(), golden["out32"], rtol=1e-4, atol=1e-3)
    assert (out[0].argmax(0).numpy() == golden["labels"]).mean() > 0.999
    assert len(np.unique(golden["labels"])) > 5  # the comparison is not trivially one class


def test_checkpoint_round_trip_strict(tmp_path, net):
    """The official 79999_iter.pth is a plain state_dict: save ours that way, load it back strictly."""
    path = tmp_path / "79999_iter.pth"
    torch.save(net.state_dict(), path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    fresh = P.BiSeNet()
    fresh.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x)[0], net(x)[0])
    bad = dict(state)
    bad.pop("conv_out.conv_out.weight")
    with pytest.raises(RuntimeError):
        P.BiSeNet().load_state_dict(bad, strict=True)


def test_load_face_parser_from_weights_dir(tmp_path, net):
    torch.save(net.state_dict(), tmp_path / P.WEIGHTS.filename)
    parser = P.load_face_parser(tmp_path)
    assert not parser.training
    images = torch.rand(2, 3, 96, 80)
    logits = parser(images)
    assert logits.shape == (2, 19, 96, 80)
    labels = parser.labels(images)
    assert labels.shape == (2, 96, 80) and labels.dtype == torch.int64
    # the parser is the network on the ImageNet-normalised 512 resize
    x = torch.nn.functional.interpolate(images, (512, 512), mode="bilinear", antialias=True)
    mean, std = torch.tensor(P.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(P.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        direct = net((x - mean) / std)[0]
        torch.testing.assert_close(parser(x), direct, rtol=1e-4, atol=1e-3)


def test_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.delenv("SWAPBENCH_WEIGHTS", raising=False)
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    with pytest.raises(WeightsError) as err:
        P.load_face_parser(tmp_path)
    assert "79999_iter.pth" in str(err.value) and P.WEIGHTS.url in str(err.value)


def test_construction_downloads_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access while building the parser")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr("urllib.request.urlopen", refuse)
    P.FaceParser()


def test_class_names_official_order():
    # face-parsing.PyTorch prepropess_data.py: label l = 1 + index in this list, 0 = background
    atts = ['skin', 'l_brow', 'r_brow', 'l_eye', 'r_eye', 'eye_g', 'l_ear', 'r_ear', 'ear_r',
            'nose', 'mouth', 'u_lip', 'l_lip', 'neck', 'neck_l', 'cloth', 'hair', 'hat']
    assert P.CLASSES == ("background", *atts)


def test_reface_keep_lists_agree_across_its_label_orders():
    """REFace's CelebA list (its own CelebAMask-HQ order) and FFHQ list (seg12) name the same regions."""
    reface_celeba_order = ['skin', 'nose', 'eye_g', 'l_eye', 'r_eye', 'l_brow', 'r_brow', 'l_ear', 'r_ear',
                           'mouth', 'u_lip', 'l_lip', 'hair', 'hat', 'ear_r', 'neck_l', 'neck', 'cloth']
    celeba = [1, 2, 4, 5, 8, 9, 6, 7, 10, 11, 12]
    assert tuple(sorted(P.CLASS_INDEX[reface_celeba_order[i - 1]] for i in celeba)) == P.REFACE_ID_KEEP
    ffhq_seg12 = {1, 2, 3, 5, 6, 7, 9}
    assert set(P.to_seg12(torch.tensor(P.REFACE_ID_KEEP)).tolist()) == ffhq_seg12
    others = [i for i in range(19) if i not in P.REFACE_ID_KEEP]
    assert not set(P.to_seg12(torch.tensor(others)).tolist()) & ffhq_seg12
    ffpp = [1, 2, 4, 5, 8, 9]
    assert tuple(sorted(P.CLASS_INDEX[reface_celeba_order[i - 1]] for i in ffpp)) == P.REFACE_ID_KEEP_FFPP


def test_seg12_mapping_and_keep_mask():
    labels = torch.arange(19).view(1, 1, 19)
    seg = P.to_seg12(labels)[0, 0].tolist()
    assert [P.SEG12_CLASSES[s] for s in seg] == [
        "background", "skin", "eyebrows", "eyebrows", "eyes", "eyes", "eye_glass", "ears", "ears", "ear_rings",
        "nose", "mouth", "lip", "lip", "belowface", "background", "background", "hair", "background"]
    mask = P.keep_mask(labels, ["skin", "nose", 17])
    assert mask[0, 0].nonzero().flatten().tolist() == [1, 10, 17]
    assert P.FACE_ADAPTER_FACE_WITH_EAR == (1, 2, 3, 4, 5, 7, 8, 10, 11, 12, 13)
