"""ArcFace IR-SE50 and REFace's ID protocol against REFace's official evaluation code.

tests/golden/irse50_reface_parity.npz was produced by running REFace's own
eval_tool/ID_retrieval/ID_retrieval.py (MaskedImagePathDataset with data_name="ffhq", IDLoss, and
src/Face_models/encoders/model_irse.py's Backbone(112, 50, 'ir_se')) on two sample crops, with
stand-ins only for the library calls it makes (albumentations Resize = cv2.resize INTER_LINEAR,
torchvision 0.14 ToTensor / Normalize / tensor Resize = bilinear interpolate without antialiasing).
Its weights are random_weights.py's, regenerated here from the key names. Its masks are the seg12
maps of two 19-class label maps stored in the golden, so the official keep list [1, 2, 3, 5, 6, 7, 9]
(seg12) is checked against parsing.REFACE_ID_KEEP (19 classes): a drawn face-like map
(`labels_synthetic`, with brows, lips, glasses, ears, hair and neck), and the labels swapbench's
BiSeNet gives the crops with random weights (`labels`, what the backend computes from random
79999_iter.pth weights; mostly hair and cloth, so it checks the loading path rather than the mask).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from faces import to_tensor
from random_weights import norm_keys, random_state_dict

from swapbench.faces import parsing
from swapbench.metrics import build_backend
from swapbench.metrics.backends.irse50 import (
    IRSE50,
    IRSE50_WEIGHTS,
    ArcFaceIRSE50REFace,
    ArcFaceIRSE50REFaceFFpp,
    reface_input,
)
from swapbench.weights import WeightsError

GOLDEN = np.load(Path(__file__).parent / "golden" / "irse50_reface_parity.npz")
# Normalised embeddings (entries ~0.05) of a 50-layer float32 network; the convolutions may sum in
# another order on another machine or thread count, which moves the last bits.
EMBED_TOL = dict(rtol=0, atol=1e-5)
# the golden stores the official network input as float16 (values in [-1, 1]: spacing <= 2**-11)
INPUT_TOL = dict(rtol=0, atol=1e-3)


# The two face crops the goldens were computed from, as tests/faces.crop_box made them under OpenCV 5
# (cv2.warpAffine); OpenCV 4, which swapbench pins, rounds sample positions to 1/32 px and gives crops a
# level apart, so the inputs are kept with the goldens instead of re-warped.
CROPS = np.load(Path(__file__).parent / "golden" / "irse50_reface_crops.npz")


def images():
    return to_tensor(*(CROPS[str(n)] for n in GOLDEN["names"]))


def irse50_state_dict():
    """random_weights.py's weights; the last batch norm of each residual branch gets small scales so the
    random network stays well conditioned (activations of order 1, perturbations not amplified)."""
    net = IRSE50()
    sd = net.state_dict()
    return random_state_dict(sd, norm_keys(net), {k for k in sd if k.endswith("res_layer.4.weight")})


def write_checkpoints(folder: Path) -> dict:
    """Random-weight files in the released formats: plain state_dicts (the IR-SE50 file is a legacy archive)."""
    torch.save(irse50_state_dict(), folder / IRSE50_WEIGHTS.filename, _use_new_zipfile_serialization=False)
    bisenet = parsing.BiSeNet()
    torch.save(random_state_dict(bisenet.state_dict()), folder / parsing.WEIGHTS.filename)
    return {IRSE50_WEIGHTS.name: folder / IRSE50_WEIGHTS.filename, parsing.WEIGHTS.name: folder / parsing.WEIGHTS.filename}


@torch.no_grad()
def test_irse50_matches_official_backbone():
    net = IRSE50()
    assert list(net.state_dict()) == list(GOLDEN["keys"])
    net.load_state_dict(irse50_state_dict(), strict=True)
    noise = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(net.eval()(noise).numpy(), GOLDEN["noise_embedding"], **EMBED_TOL)


@torch.no_grad()
def test_reface_pipeline_matches_official():
    """Preprocessing and network on a face-like label map (half the ID crop kept, brows, lips and glasses inside)."""
    labels = torch.from_numpy(GOLDEN["labels_synthetic"].astype(np.int64)).expand(2, -1, -1)
    x = reface_input(images(), parsing.keep_mask(labels, parsing.REFACE_ID_KEEP))
    assert x.shape == (2, 3, 112, 112)
    np.testing.assert_allclose(x[0].numpy(), GOLDEN["net_input_synthetic0"].astype(np.float32), **INPUT_TOL)
    assert 0.3 < (x != 0).float().mean() < 0.7  # the mask keeps part of each face, not all or nothing
    net = IRSE50()
    net.load_state_dict(irse50_state_dict(), strict=True)
    np.testing.assert_allclose(net.eval()(x).numpy(), GOLDEN["embedding_synthetic"], **EMBED_TOL)


@torch.no_grad()
def test_backend_loads_release_files_and_matches_official(tmp_path):
    backend = ArcFaceIRSE50REFace(files=write_checkpoints(tmp_path))
    x = images()
    np.testing.assert_array_equal(backend.module.parser.labels(x).numpy(), GOLDEN["labels"])
    feats = backend.extract(x)
    assert feats.ok.all() and feats.values.shape == (2, 512)
    np.testing.assert_allclose(feats.values.numpy(), GOLDEN["embedding"], **EMBED_TOL)
    # batching: a batch gives what its images give one at a time
    singles = torch.cat([backend.extract(x[i:i + 1]).values for i in range(2)])
    np.testing.assert_allclose(feats.values.numpy(), singles.numpy(), rtol=0, atol=1e-6)


@torch.no_grad()
def test_ffpp_variant_uses_reface_ffpp_keep_list(tmp_path):
    backend = ArcFaceIRSE50REFaceFFpp(files=write_checkpoints(tmp_path))
    assert backend.module.keep == parsing.REFACE_ID_KEEP_FFPP != parsing.REFACE_ID_KEEP
    x = images()
    labels = backend.module.parser.labels(x)
    expected = backend.module.net(reface_input(x, parsing.keep_mask(labels, parsing.REFACE_ID_KEEP_FFPP)))
    np.testing.assert_allclose(backend.extract(x).values.numpy(), expected.numpy(), rtol=0, atol=1e-6)
    # on a face-like map the FF++ list (no brows, mouth, lips) gives another input than the default list
    synthetic = torch.from_numpy(GOLDEN["labels_synthetic"].astype(np.int64))[None]
    ffpp = reface_input(x[:1], parsing.keep_mask(synthetic, parsing.REFACE_ID_KEEP_FFPP))
    assert (ffpp != 0).sum() < (torch.from_numpy(GOLDEN["net_input_synthetic0"].astype(np.float32)) != 0).sum()


def test_checkpoint_with_other_keys_is_rejected(tmp_path):
    files = write_checkpoints(tmp_path)
    sd = irse50_state_dict()
    del sd["body.23.res_layer.5.fc2.weight"]
    torch.save(sd, files[IRSE50_WEIGHTS.name])
    with pytest.raises(RuntimeError, match="body.23.res_layer.5.fc2.weight"):
        ArcFaceIRSE50REFace(files=files)


def test_missing_weights_raise_the_registry_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAPBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    with pytest.raises(WeightsError) as err:
        build_backend(ArcFaceIRSE50REFace)
    msg = str(err.value)
    for f in (IRSE50_WEIGHTS, parsing.WEIGHTS):
        assert f"missing {f.filename}" in msg and f.url in msg
    assert str(tmp_path) in msg
