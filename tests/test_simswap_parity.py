"""SimSwap port against the official code (neuralchen/SimSwap @ bd7b768), with deterministic random weights.

How tests/golden/simswap_parity.npz and simswap_manifest.json were made (the script lives outside the
repository and imports the official modules from a snapshot of the repository):
  - manifest: the official ArcFace `ResNet(IRBlock, [3, 4, 23, 3], use_se=True)` (models/arcface_models.py,
    conv3x3 defined as foamliu's), `Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False)` of
    fs_networks.py (224) and fs_networks_512.py (512; also deep=True, the layout of the released 512 file
    as far as third-party reports describe it), and parsing_model/model.py's BiSeNet, built on `meta`.
  - weights: `swapbench.methods.ghost.random_weights.random_state_dict(state, SEED)` (ArcFace with
    {"bn2.weight": 0.2}), loaded with strict=True into the official modules, CPU, fp32.
  - inputs: ghost_inputs.face_crops() (two real 224 crops) as the sources; the same crops bilinearly
    upsampled to 512 as 512 sources; targets: the other face, 2x2-average-pooled to 112 (the generators
    are convolutional and the mask path resizes 512 -> crop size, so a 112 crop runs every code path at
    a quarter of the cost).
  - identity: test_wholeimage_swapsingle.py's Normalize, F.interpolate(size=112), netArc, F.normalize.
  - mask: reverse2original.py's use_mask branch (SpecificNorm, nearest to 512, BiSeNet head 0 argmax,
    encode_segmentation_rgb, cv2.resize to the crop, SoftErosion(17, 0.9, 7), swap*m + target*(1-m)),
    at crop 112 with the 224 generator's swap, and at 512 (no resizes) with that swap upsampled.

Tolerance: 1e-4 of the reference's largest magnitude, in fp32. Measured on the development machine: ArcFace
embeddings and both generators 0 (the same torch operations in the same order), parser labels identical,
soft mask 7.8e-7 and final crop 4.8e-7 (cv2.resize of the float64 maps against torch's float32 bilinear).
Other CPUs' convolution kernels may differ by ~1e-6; any wrong layer, padding, interpolation mode or
normalisation moves outputs by 1e-2 or more. The parser's argmax is compared through label histograms (exact).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ghost_inputs import crops_digest, face_crops
from simswap_inputs import seeded_state, seeded_weights

from swapbench.faces import parsing
from swapbench.methods.simswap.method import SimSwap
from swapbench.methods.simswap.networks import ArcFace, Generator

GOLDEN = "tests/golden/simswap_parity.npz"
MANIFEST = "tests/golden/simswap_manifest.json"
RTOL = 1e-4


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN, allow_pickle=False) as g:
        return {k: g[k] for k in g.files}


def shapes(module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def simswap():
    m = SimSwap()
    m.load_weights(seeded_weights(224))
    return m


@pytest.fixture(scope="module")
def sources(golden):
    c = face_crops()
    assert crops_digest(c) == str(golden["crops_sha256"]), "test inputs changed: the golden no longer applies"
    return torch.from_numpy(c).permute(0, 3, 1, 2).contiguous().float() / 255


@pytest.fixture(scope="module")
def targets(sources):
    return F.avg_pool2d(sources.flip(0), 2)


@pytest.fixture(scope="module")
def swap224(simswap, targets, golden):
    """The 224 generator's output on the golden's targets and (official) embeddings."""
    with torch.no_grad():
        return simswap.generator(targets, torch.from_numpy(golden["emb224"]))


def close(got: torch.Tensor, ref, what: str, rtol: float = RTOL) -> float:
    ref = torch.as_tensor(ref)
    err = (got - ref).abs().max().item()
    assert got.shape == ref.shape, what
    assert err <= rtol * ref.abs().max().item(), f"{what}: max abs error {err:.2e}"
    return err


def test_full_size_layouts_are_the_official_ones():
    manifest = json.load(open(MANIFEST))
    with torch.device("meta"):
        assert shapes(ArcFace()) == manifest["arcface"]
        assert shapes(Generator(224)) == manifest["G_224"]
        assert shapes(Generator(512)) == manifest["G_512"]
        assert shapes(parsing.BiSeNet()) == manifest["bisenet"]
    # the released 512 file (deep=True layout): the official loader keeps exactly the deep=False keys
    extra = sorted(set(manifest["G_512_deep"]) - set(manifest["G_512"]))
    assert extra and all(k.startswith(("down4.", "up4.")) for k in extra)
    assert all(manifest["G_512_deep"][k] == v for k, v in manifest["G_512"].items())


def test_identity_matches_official(simswap, sources, golden):
    # one face per crop size, for time: the 224 crop (every second pixel) and, as simswap_512 feeds its crop
    # through the same nearest resize, a 512 crop (another index pattern)
    close(simswap.identity(sources[:1]), golden["emb224"][:1], "224 embedding")
    x512 = F.interpolate(sources[1:], size=(512, 512), mode="bilinear", align_corners=False)
    close(simswap.identity(x512), golden["emb512"][1:], "512 embedding")


def test_generator_224_matches_official(swap224, golden):
    y = swap224
    close(F.avg_pool2d(y, 4), golden["G224_pool"], "224 generator (pooled)")
    close(y[:, :, 50:66, 50:66], golden["G224_slice"], "224 generator (slice)")


def test_generator_512_matches_official(targets, golden):
    g = Generator(512).eval()
    g.load_state_dict(seeded_state("512"), strict=True)
    with torch.no_grad():
        y = g(targets, torch.from_numpy(golden["emb512"]))
    close(F.avg_pool2d(y, 4), golden["G512_pool"], "512 generator (pooled)")
    close(y[:, :, 50:66, 50:66], golden["G512_slice"], "512 generator (slice)")


def test_mask_and_final_crop_match_official(simswap, targets, swap224, golden):
    labels = simswap.parse(targets)
    hist = torch.stack([torch.bincount(lab.flatten(), minlength=19) for lab in labels])
    assert hist.tolist() == golden["mask224_hist"].tolist()
    mask, enough = simswap.soft_mask(labels, 112)
    assert enough.all()
    close(F.avg_pool2d(mask, 4)[:, 0], golden["mask224_pool"], "soft mask (pooled)")
    close(mask[:, 0, 50:82, 30:62], golden["mask224_slice"], "soft mask (slice)")
    final = simswap.blend(swap224, targets, mask, enough)
    close(F.avg_pool2d(final, 4), golden["final224_pool"], "final crop (pooled)")
    close(final[:, :, 50:66, 50:66], golden["final224_slice"], "final crop (slice)")


def test_mask_at_512_matches_official(simswap, sources, swap224, golden):
    # simswap_512's crops: the parser input needs no resize and the maps keep their size (the mask path
    # depends on the crop size only, so the loaded 224 instance runs it).
    swap = F.interpolate(swap224[:1], size=(512, 512), mode="bilinear", align_corners=False)
    target512 = F.interpolate(sources.flip(0)[:1], size=(512, 512), mode="bilinear", align_corners=False)
    mask, enough = simswap.soft_mask(simswap.parse(target512), 512)
    assert enough.all()
    close(F.avg_pool2d(mask, 16)[:, 0], golden["mask512_pool"], "512 soft mask (pooled)")
    final = simswap.blend(swap, target512, mask, enough)
    close(F.avg_pool2d(final, 16), golden["final512_pool"], "512 final crop (pooled)")
