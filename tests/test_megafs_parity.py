"""MegaFS port vs the official code: checkpoint layout (manifest) and numerical parity.

tests/golden/megafs_manifest.json: {key: shape} of every checkpoint part, dumped from the official
modules (zyainfal/One-Shot-Face-Swapping-on-Megapixels @ f01b195, inference/megafs.py) built at full
size on the meta device: "e" (HieRFE, in every {ftm,injection,lcr}_final.pth), "s/<type>" (the
FaceTransferModule of each file) and "g_ema" (StyleGAN2 1024 config-f).

All three golden files (this one, megafs_manifest.json, stylegan2_blocks.npz) are written by
`python tools/megafs_goldens.py <official inference/ folder>`, which contains no official code.

tests/golden/megafs_parity.npz was made by running the official inference/megafs.py and
inference/inference.py unmodified on CPU (torch 2.13.0), with three substitutions outside the
official files: a pure-PyTorch `op` module (upfirdn2d / fused_leaky_relu written from their
reference math, loop-free but independent of swapbench's), a stub `torchvision.transforms.functional`
with `normalize` (the only torchvision call), and `Tensor.cuda` / `Module.cuda` made no-ops. Weights:
`swapbench.methods.megafs.random_weights` (seed 0; each tensor from its own seeded generator, so
both sides hold identical values). Inputs: `parity_images(0)` (source, target) at 256, normalised to
[-1, 1] as the official preprocess does. The generator is reduced to 128 x 128 (same code paths:
struct input, upsampling convs, ToRGB skips, stored noise; codes 0-11 used); the full 1024 generator
is compared once by `benchmarks/megafs_speed.py --official` (max abs error 0, docs/benchmark.md). Stored: HieRFE codes + struct of [target,
source], the three swappers' codes, the generator image, the official swap() output (global
min-max, HWC [0, 255]), and the official postprocess() of it on a synthetic CelebAMask-HQ label map
(soft mask and uint8 BGR blend).

Tolerances: 1e-4 (fp32, deterministic networks). Observed: 0 for every stage (same operations in the
same order on the same CPU build; printed with -s).
The uint8 blend is compared exactly except where the float blend lies within 1e-3 of an integer
(truncation can flip there).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from swapbench.methods.megafs import random_weights as rw
from swapbench.methods.megafs.nets import FaceTransferModule, HieRFE, SoftErosion, SoftErosionError
from swapbench.methods.megafs.method import FACE_IDS, MOUTH_ID, MegaFS, minmax
from swapbench.methods.stylegan2 import Generator

GOLDEN = Path(__file__).parent / "golden"
TOL = 1e-4


@pytest.fixture(scope="module")
def gold():
    return dict(np.load(GOLDEN / "megafs_parity.npz"))


@pytest.fixture(scope="module")
def encoder():
    e = HieRFE().eval()
    e.load_state_dict(rw.encoder_state(0))
    return e


def _shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_checkpoint_layout_matches_the_official_manifest():
    manifest = json.loads((GOLDEN / "megafs_manifest.json").read_text())
    with torch.device("meta"):
        assert _shapes(HieRFE()) == manifest["e"]
        for t in ("ftm", "injection", "lcr"):
            assert _shapes(FaceTransferModule(t)) == manifest[f"s/{t}"]
        g = Generator(1024)
    assert _shapes(g) == manifest["g_ema"]
    assert len(manifest["g_ema"]) == 171 and len(manifest["e"]) == 920 and manifest["s/lcr"] == {}


def _err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


@torch.no_grad()
def test_encoder_swappers_generator_and_swap_match_the_official_code(gold, encoder):
    x = (rw.parity_images(0, 256, 2) - 0.5) / 0.5
    src, tgt = x[0:1], x[1:2]
    lats, struct = encoder(torch.cat([tgt, src]))
    errors = {"lats": _err(lats, gold["lats"]), "struct": _err(struct, gold["struct"])}
    for t in ("ftm", "injection", "lcr"):
        sw = FaceTransferModule(t).eval()
        sw.load_state_dict(rw.swapper_state(t, 0))
        errors[f"w_{t}"] = _err(sw(lats[1:], lats[0:1]), gold[f"w_{t}"])
    size = int(gold["generator_size"])
    method = MegaFS(generator_size=size)
    method.encoder = encoder
    method.generator.load_state_dict(rw.generator_state(size, 0))
    method.swapper.load_state_dict(rw.swapper_state("ftm", 0))
    w = method.swapper(lats[1:], lats[0:1])
    errors["image"] = _err(method.generator(w, struct[0:1]), gold["image_ftm"])
    swapped = method.generate(src, tgt)  # min-max in [0, 1]
    # in [0, 1] like every other image here (the golden holds 0..255; min-max scaling by 255 turns float32
    # round-off of the generator, which depends on the thread count, into ~2e-4 of a grey level)
    errors["swap"] = _err(swapped[0].permute(1, 2, 0), gold["swap_ftm"] / 255)
    print("parity max abs errors:", errors)
    assert max(errors.values()) <= TOL, errors
    # sanity: the codes are informative (not saturated by tanh), the two faces differ
    assert 0.01 < float(lats.abs().mean()) < 0.9 and _err(lats[0], lats[1]) > 0.05

    # postprocess: mask from the label map, SoftErosion, blend, uint8 truncation, BGR
    labels = torch.from_numpy(gold["labels"].astype(np.int64))[None, None]
    mask = method.mask_from_labels(labels, size)
    soft, _ = method.smooth_mask(mask)
    assert _err(soft[0, 0], gold["soft_mask"]) <= TOL
    target = torch.from_numpy(gold["target_rgb"]).permute(2, 0, 1)[None].float() / 255
    blended = method.blend(torch.from_numpy(gold["swap_ftm"]).permute(2, 0, 1)[None] / 255, target, mask)
    ours = (blended[0].permute(1, 2, 0) * 255).round().numpy().astype(np.uint8)[:, :, ::-1]
    float_blend = (torch.from_numpy(gold["swap_ftm"]) * soft[0, 0, :, :, None]
                   + torch.from_numpy(gold["target_rgb"]).float() * (1 - soft[0, 0, :, :, None])).numpy()[:, :, ::-1]
    near_integer = np.abs(float_blend - np.round(float_blend)) < 1e-3
    differ = ours != gold["blend_bgr"]
    print("uint8 blend: pixels differing", int(differ.sum()), "of", differ.size)
    assert not (differ & ~near_integer).any(), int(differ.sum())


def test_label_ids_are_the_official_face_and_mouth_classes():
    assert FACE_IDS == (1, 2, 3, 4, 5, 6, 10, 12, 13) and MOUTH_ID == 11


def test_min_max_is_global_over_channels_per_image():
    img = torch.stack([torch.linspace(-2, 3, 48).view(3, 4, 4), torch.linspace(0, 1, 48).view(3, 4, 4)])
    out = minmax(img)
    assert float(out[0].min()) == 0 and float(out[0].max()) == 1
    assert torch.allclose(out[0], (img[0] + 2) / 5) and torch.allclose(out[1], img[1])


def test_encoder_input_is_the_official_preprocess_exactly():
    """cv2.resize of the uint8 1024 crop to a uint8 256 image, .mul_(1/255.0), normalize(0.5, 0.5): equal bit
    for bit (before: a float resize, 0.5/255 off where cv2 rounds, which moved the W+ codes by 2.3e-3)."""
    cv2 = pytest.importorskip("cv2")
    g = torch.Generator().manual_seed(1)
    img = (torch.rand(1024, 1024, 3, generator=g) * 256).to(torch.uint8).numpy()
    img[:8] = 255  # saturated rows: the rounding must not leave [0, 255]
    ref = torch.from_numpy(cv2.resize(img.copy(), (256, 256)).transpose((2, 0, 1))).float().mul_(1 / 255.0)
    ref = (ref - 0.5) / 0.5
    ours = MegaFS.encoder_input(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    assert torch.equal(ours[0], ref)


def test_soft_erosion_edge_cases_raise_a_clear_error():
    se = SoftErosion(17, 0.9, 7)
    with pytest.raises(SoftErosionError, match="empty"):
        se(torch.zeros(1, 1, 64, 64))
    # zero padding erodes the border, so even a full mask keeps pixels below the threshold
    soft, hard = se(torch.ones(1, 1, 64, 64))
    assert torch.isfinite(soft).all() and not hard.all()
