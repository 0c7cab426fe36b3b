"""Face-Adapter as a swapbench method: weight errors before any work, options, batch independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from face_adapter_inputs import parity_inputs, write_tiny_weights

from swapbench.methods import get
from swapbench.methods.base import FaceBatch
from swapbench.methods.face_adapter.method import ID2TOKEN, WEIGHTS, FaceAdapter
from swapbench.weights import WeightsError, load, resolve

FIVE = {"src": [[190, 250], [300, 245], [245, 310], [205, 365], [290, 362]],
        "tgt": [[205, 240], [318, 262], [255, 318], [212, 368], [296, 380]]}


def _landmarks68(five) -> torch.Tensor:
    """68 points whose eye centres, nose tip and mouth corners are the given five (all the method reads)."""
    lm = np.zeros((68, 2), np.float32)
    five = np.asarray(five, np.float32)
    lm[36:42], lm[42:48], lm[30], lm[48], lm[54] = five[0], five[1], five[2], five[3], five[4]
    return torch.from_numpy(lm)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_tiny_weights(tmp_path_factory.mktemp("fa_weights"))


def _method(root, **opts):
    m = FaceAdapter({"tiny": True, **opts})
    m.load_weights({wf.name: load(wf, p) for wf, p in zip(m.weights, (root / wf.filename for wf in m.weights))})
    return m


def test_registry_options_and_declared_weights():
    cls = get("face_adapter")
    assert cls is FaceAdapter and FaceAdapter.Options().steps == 25 and FaceAdapter.Options().guidance == 5.0
    assert FaceAdapter.Options().official_dropout is False
    names = {wf.name for wf in WEIGHTS}
    assert {"face_adapter/FaceAdapter", "face_adapter/stable-diffusion-v1-5", "face_adapter/sd-vae-ft-mse",
            "deep3d/BFM_model_front", "face_adapter/insightface_glint360k"} <= names
    with pytest.raises(ValueError):
        FaceAdapter({"steps": 0})


def test_missing_files_are_all_listed_before_any_work(tmp_path):
    with pytest.raises(WeightsError) as exc:
        resolve(WEIGHTS, tmp_path)
    msg = str(exc.value)
    for wf in WEIGHTS:
        assert wf.filename in msg


def test_folders_are_checked_and_hashed_by_their_members(root, tmp_path):
    """The files read from a folder are required, published checksums checked, and only they are hashed."""
    import dataclasses
    import shutil

    from swapbench.methods.face_adapter.method import FACE_ADAPTER, SD15
    from swapbench.weights import hash_of

    with pytest.raises(WeightsError, match=r"unet/diffusion_pytorch_model.safetensors does not match its checksum: "
                                           r"expected sha256 19da7aaa"):
        resolve([SD15], root)  # random tiny weights are not the Hub's UNet
    unverified = dataclasses.replace(SD15, members=tuple(dataclasses.replace(m, sha256=()) for m in SD15.members))
    assert resolve([unverified], root)[SD15.name] == root / SD15.filename
    copy = tmp_path / "FaceAdapter"
    shutil.copytree(root / "FaceAdapter", copy)
    before = hash_of(FACE_ADAPTER, copy)
    (copy / "README.md").write_text("not read by the method")
    assert hash_of(FACE_ADAPTER, copy) == before
    shutil.copytree(root / SD15.filename / "unet", copy / "pretrained_unet")  # the optional replacement UNet
    assert hash_of(FACE_ADAPTER, copy) != before
    (copy / "controlnet" / "config.json").unlink()
    with pytest.raises(WeightsError, match=r"FaceAdapter lacks controlnet/config.json \(face_adapter/FaceAdapter\)"):
        resolve([FACE_ADAPTER], tmp_path)


def test_a_wrong_token_decoder_file_is_refused_with_its_name(root, tmp_path):
    m = FaceAdapter({"tiny": True})
    state = {wf.name: load(wf, root / wf.filename) for wf in m.weights}
    state[ID2TOKEN.name] = {k: v for k, v in state[ID2TOKEN.name].items() if not k.startswith("id_proj")}
    with pytest.raises(WeightsError, match="net_id2token.pth"):
        m.load_weights(state)


def _batch(pairs, images, key):
    img = torch.from_numpy(np.stack([images[p[key]] for p in pairs])).permute(0, 3, 1, 2).float() / 255
    lm = torch.stack([_landmarks68(FIVE[p[key]]) for p in pairs])
    return FaceBatch(img, lm, [p["id"] for p in pairs])


def test_swaps_do_not_depend_on_the_batch(root):
    """With the official dropout on (the harder case: per-pair dropout masks as well as per-pair noise)."""
    src, tgt = parity_inputs()
    images = {"src": src, "tgt": tgt}
    pairs = [{"id": "p0", "s": "src", "t": "tgt"}, {"id": "p1", "s": "tgt", "t": "src"}, {"id": "p2", "s": "src", "t": "tgt"}]
    m = _method(root, steps=2, official_dropout=True)
    m.seed = 7
    three = m.swap(_batch(pairs, images, "s"), _batch(pairs, images, "t"))
    assert three.shape == (3, 3, 512, 512) and three.min() >= 0 and three.max() <= 1
    for i in (2,):  # the last row of the batch of 3, alone
        one = m.swap(_batch(pairs[i:i + 1], images, "s"), _batch(pairs[i:i + 1], images, "t"))
        diff = (one[0] - three[i]).abs()
        # the decoded image is rounded to 8 bits as officially: batched float noise may flip a rare level
        assert diff.max() <= 1 / 255 + 1e-5 and (diff > 1e-5).float().mean() < 1e-2  # measured: 0.14%
    assert (three[0] - three[2]).abs().max() > 1e-3  # p0 and p2 are the same images with their own noise


def test_preset_reproduces_the_published_ffhq_evaluation():
    from pathlib import Path

    from swapbench.bench import config

    cfg = config.load([Path(__file__).parent.parent / "configs" / "face_adapter_ffhq.yaml"])
    assert cfg["protocol"] == "ffhq" and cfg["subset"] is None and cfg["methods"] == ["face_adapter"]
    assert cfg["metrics"] == {"identity": "arcface_irse50_reface", "pose": "hopenet", "expression": "deep3d_exp",
                              "inception": "fid_helper_inception"}
    assert FaceAdapter.Options(**cfg["face_adapter"]) == FaceAdapter.Options()  # the official sampler settings
