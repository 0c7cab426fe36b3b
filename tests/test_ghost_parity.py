"""GHOST port against the official sber-swap code, with deterministic random weights.

How tests/golden/ghost_parity.npz was made (the script lives outside the repository):
  - official code: ai-forever/sber-swap at commit 734f78bc95470baaf5290aba5628164f2ec94442
    (network/AEI_Net.py, network/AADLayer.py, utils/inference/*), plus the arcface_model/iresnet.py
    that download_models.sh fetches from the "arcface" release (insightface arcface_torch's iresnet
    with an fp16 flag); run on CPU in fp32, with `Tensor.cuda` patched to a no-op;
  - weights: `swapbench.methods.ghost.random_weights(num_blocks, SEED)`, loaded with strict=True into
    the official AEI_Net('unet', num_blocks, c_id=512) and iresnet100(fp16=False);
  - inputs: `ghost_inputs.face_crops()` (astronaut, grace_hopper); pair i swaps face i into the other
    face. Identity: netArc(F.interpolate(normalize_and_torch(src), scale_factor=0.5, bilinear,
    align_corners=True)). Target: resize_frames (cv2.resize to 256) + transform_target_to_torch.
    Generator: G(target, embedding) for 1, 2 and 3 blocks (1 and 3 on pair 0 only, for time);
    for 2 blocks also the rest of the pipeline (faceshifter_batch's uint8 cast, cv2.resize to 224).
  - stored: the embeddings, 8x8-average-pooled generator outputs, a 16x16 full-resolution slice,
    the pooled/sliced final 224 images, digests of the official state_dict layouts and of the crops.

Tolerances:
  - embedding and generator: same fp32 CPU ops in a different order (e.g. torch.lerp for the AAD
    mask blend); measured differences were 1.2e-5 on embeddings of magnitude 5 and 3.4e-5 on tanh
    outputs. The bounds (1e-3 relative, 1e-3 absolute) leave room for other CPUs' conv kernels while
    still catching any wrong layer, order, interpolation mode or normalisation (those move outputs by
    1e-2 or more).
  - end to end: swapbench keeps the crops in float and does not truncate to uint8 (see method.py),
    so the final 224 images differ by up to ~2/255 (measured mean 0.6/255, max 1.9/255: mostly the
    official truncation's -0.5/255 bias); bounds: mean 1/255, max 4/255.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ghost_inputs import SEED, crops_digest, face_crops, layout_digest, seeded_weights

from swapbench.methods.ghost import Ghost
from swapbench.methods.ghost.aei_net import AEINet
from swapbench.faces.iresnet import iresnet100
from swapbench.methods.ghost.random_weights import random_state_dict

GOLDEN = "tests/golden/ghost_parity.npz"


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN, allow_pickle=False) as g:
        return {k: g[k] for k in g.files}


@pytest.fixture(scope="module")
def crops(golden):
    c = face_crops()
    assert crops_digest(c) == str(golden["crops_sha256"]), "test inputs changed: the golden no longer applies"
    return torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255  # [2,3,224,224] RGB in [0,1]


@pytest.fixture(scope="module")
def official_target(crops):
    """The generator input the official code builds: cv2.resize of the uint8 crop to 256, normalised."""
    c = face_crops()[::-1]  # pair i: target = the other face
    x = torch.from_numpy(np.stack([cv2.resize(f, (256, 256)) for f in c])).permute(0, 3, 1, 2).float()
    return (x / 255 - 0.5) / 0.5


@pytest.fixture(scope="module")
def ghost2():
    m = Ghost(num_blocks=2)
    m.load_weights(seeded_weights(2))
    return m


def test_layout_is_the_official_one(golden):
    with torch.device("meta"):
        assert layout_digest(iresnet100().state_dict()) == golden["layout_arcface"]
        for n in (1, 2, 3):
            assert layout_digest(AEINet(n).state_dict()) == golden[f"layout_G{n}"], f"{n} blocks"


def test_identity_embedding_matches_official(ghost2, crops, golden):
    emb = ghost2.identity(crops)
    ref = torch.from_numpy(golden["embedding"])
    assert emb.shape == (2, 512)
    assert (emb - ref).abs().max() <= 1e-3 * ref.abs().max()
    assert F.cosine_similarity(emb, ref).min() > 0.99999


def _check_generator(y: torch.Tensor, golden, n: int) -> None:
    assert y.shape[1:] == (3, 256, 256)
    for key, got in (("pool", F.avg_pool2d(y, 8)), ("slice", y[:, :, 120:136, 120:136])):
        ref = torch.from_numpy(golden[f"G{n}_{key}"])
        assert (got - ref).abs().max() <= 1e-3, f"{n} blocks, {key}"
    np.testing.assert_allclose(y.flatten(1).std(1).numpy(), golden[f"G{n}_std"], atol=1e-4)


def test_generator_2_blocks_matches_official(ghost2, official_target, golden):
    emb = torch.from_numpy(golden["embedding"])
    with torch.no_grad():
        _check_generator(ghost2.generator(official_target, emb), golden, 2)


@pytest.mark.parametrize("n", [1, 3])
def test_generator_1_and_3_blocks_match_official(n, official_target, golden):
    with torch.device("meta"):
        g = AEINet(n)
    g = g.to_empty(device="cpu")
    g.load_state_dict(random_state_dict(g.state_dict(), SEED), strict=True)  # = random_weights(n, SEED)'s
    g.eval()
    with torch.no_grad():
        y = g(official_target[:1], torch.from_numpy(golden["embedding"][:1]))
    _check_generator(y, golden, n)


def test_swap_pipeline_matches_official(ghost2, crops, golden):
    # Identity from the golden embedding, so this checks the pre/postprocessing around the generator.
    out = ghost2.generate(crops.flip(0), torch.from_numpy(golden["embedding"]))
    assert out.shape == (2, 3, 224, 224)
    pooled = F.avg_pool2d(out, 7)
    assert (pooled - torch.from_numpy(golden["final_pool"])).abs().mean() <= 1 / 255
    sl = out[:, :, 100:124, 100:124].permute(0, 2, 3, 1) * 255
    assert (sl - torch.from_numpy(golden["final_slice"]).float()).abs().max() <= 4
    np.testing.assert_allclose(out.mean((1, 2, 3)).numpy(), golden["final_mean"], atol=1 / 255)
