"""DiffSwap port vs the official code (wl-zhao/DiffSwap @ c316952f) on shared random weights, tiny config.

The golden tests/golden/diffswap_parity.npz was made by tools/diffswap_parity_harness.py (which imports the
official modules from a checkout and lists its patches) with the tiny model of the spec (§2.7: UNet 32
channels x [1,2,3,4], 1 res block, 32-wide heads, 64-d tokens; VQ 32 x [1,2,4], 64 codes; ArcFace r18) and
the random weights of swapbench.methods.diffswap.random_weights (seed tests.diffswap_inputs.SEED; the EMA
UNet differs from the raw one, so loading the raw weights would fail these tests). Inputs: two real 256
crops and their dlib landmarks, pairs (astronaut <- grace_hopper, grace_hopper <- astronaut).

Stages: the ArcFace theta, the target latent, the five tokens (each pair alone; both pairs with the
official batch roll), one UNet call, 5 guided DDIM steps (t = 801..1, same noise), the VQ decode, and the
pyramid blend (bit-exact).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swapbench.methods.base import FaceBatch
from swapbench.methods.diffswap import CHECKPOINT, DiffSwap
from swapbench.methods.diffswap import blend as blending
from swapbench.methods.diffswap.method import arcface_theta, hull_mask
from swapbench.methods.diffswap.sampler import guided_ddim
from tests import diffswap_inputs as inp

TOL = 1e-4


@pytest.fixture(scope="module")
def gold():
    return inp.golden()


@pytest.fixture(scope="module")
def crops(gold):
    c = inp.crops256()
    assert inp.crops_digest(inp.face_crops()) and str(gold["crops_sha"]) == inp.crops_digest(c)
    return c


def make_model(**options) -> DiffSwap:
    m = DiffSwap(DiffSwap.Options(tiny=True, steps=inp.STEPS, **options))
    m.load_weights({CHECKPOINT.name: inp.tiny_official_state()})
    return m


@pytest.fixture(scope="module")
def model():
    return make_model()


def pairs(crops, gold, idx):
    """FaceBatches of the pairs idx: source crops[i], target crops[1 - i]."""
    img = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    lm = torch.from_numpy(gold["landmarks"]).float()
    s, t = list(idx), [1 - i for i in idx]
    return FaceBatch(img[s], lm[s]), FaceBatch(img[t], lm[t])


def maxerr(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def relerr(a, b) -> float:
    """Max abs error over the reference's max magnitude (float32 round-off grows with a value's size)."""
    return maxerr(a, b) / max(1.0, float(np.abs(np.asarray(b, np.float64)).max()))


def test_theta_matches_cp2tform(gold):
    for i in range(2):
        assert maxerr(arcface_theta(gold["landmarks"][i].astype(np.float64)), gold[f"theta_{i}"][0]) < 1e-5


def test_target_latent_and_tokens(model, crops, gold):
    for i in range(2):
        src, tgt = pairs(crops, gold, [i])
        z = model.encode(tgt.image)
        # VQ encoder: diffusers' mid-block attention (SDPA) vs LDM's einsum/softmax round differently;
        # measured 4.3e-5 / 1.5e-4 abs on latents up to 3.9 (<= 5e-5 relative).
        assert relerr(z, gold[f"z_{i}"]) < TOL
        ctx = model.context(src, tgt, z)
        assert maxerr(ctx, gold[f"context_{i}"]) < TOL, i
        # from the official latent the tokens agree to ~2e-6
        assert maxerr(model.context(src, tgt, torch.from_numpy(gold[f"z_{i}"])), gold[f"context_{i}"]) < 1e-5


def test_batch_default_is_per_pair_and_roll_option_is_official(crops, gold):
    src, tgt = pairs(crops, gold, [0, 1])
    default, rolled = make_model(), make_model(organ_latent_roll=True)
    z = default.encode(tgt.image)
    own = default.context(src, tgt, z)
    assert maxerr(own, np.concatenate([gold["context_0"], gold["context_1"]])) < TOL
    roll = rolled.context(src, tgt, z)
    assert maxerr(roll, gold["context_batch2_roll"]) < TOL
    # only the organ tokens depend on the roll
    assert maxerr(roll[:, :2], own[:, :2]) == 0 and maxerr(roll[:, 2:], own[:, 2:]) > 1e-3


def test_unet_call(model, gold):
    x, t = torch.from_numpy(gold["unet_x"]), int(gold["unet_t"][0])
    with torch.no_grad():
        e = model.unet(x, t, encoder_hidden_states=torch.from_numpy(gold["context_0"])).sample
    assert maxerr(e, gold["unet_out"]) < TOL


def test_guided_steps_decode_and_blend(model, crops, gold):
    src, tgt = pairs(crops, gold, [0])
    z, ctx = torch.from_numpy(gold["z_0"]), torch.from_numpy(gold["context_0"])
    hull = hull_mask(gold["landmarks"][1].astype(np.float32) / 256)
    keep = 1.0 - torch.from_numpy(hull).float()[None, None]
    keep = (torch.nn.functional.interpolate(keep, size=(64, 64), mode="nearest") > 0).float()
    g = torch.Generator().manual_seed(inp.NOISE_SEED)
    samples = guided_ddim(lambda x, t: model.unet(x, t, encoder_hidden_states=ctx).sample, z, keep, [g],
                          steps=inp.STEPS, tgt_scale=0.01)
    # The random tiny UNet blows the latents up to |x| ~ 90 in 5 steps; measured 1.8e-4 abs (2e-6 relative).
    assert relerr(samples, gold["samples"]) < 1e-5
    # Decode the official latents: positions whose nearest code is ambiguous (within 1e-4) may flip.
    gen = model.decode(torch.from_numpy(gold["samples"]))
    assert maxerr(gen, gold["generated"]) < TOL  # measured 3.6e-6
    assert maxerr(model.decode(samples), gold["generated"]) < TOL  # the port's own latents: 3.4e-6
    # The blend of the official generated crop is bit-exact.
    out = blending.blend(torch.from_numpy(gold["generated"]), tgt.image, hull[None])
    assert maxerr(out[0].permute(1, 2, 0) * 255, gold["blended"]) < 1e-3


def test_guided_step_differs_from_scheduler_step(gold):
    """Why the step is hand-written: DDIMScheduler.step(e') recomputes pred_x0 from the guided noise."""
    from swapbench.methods.diffswap.sampler import scheduler
    sch = scheduler(inp.STEPS)
    x, x0 = torch.from_numpy(gold["unet_x"]), torch.from_numpy(gold["z_0"])
    e = torch.from_numpy(gold["unet_out"])
    t = int(sch.timesteps[2])
    a, ap = sch.alphas_cumprod[t], sch.alphas_cumprod[t - 1000 // inp.STEPS]
    pred = (x - (1 - a).sqrt() * e) / a.sqrt()
    eg = e - 0.01 * a.sqrt() * (pred - x0)
    ours = ap.sqrt() * pred + (1 - ap).sqrt() * eg
    theirs = sch.step(eg, t, x, eta=0.0).prev_sample
    assert maxerr(ours, theirs) > 1e-3


def test_official_200_step_schedule():
    """LDM's make_ddim_timesteps('uniform', 200): t = 996, 991, ..., 1; alphas_cumprod from float64 betas."""
    from swapbench.methods.diffswap.sampler import scheduler
    sch = scheduler(200)
    assert sch.timesteps.tolist() == list(range(996, 0, -5))
    betas = np.linspace(0.0015 ** 0.5, 0.0195 ** 0.5, 1000, dtype=np.float64) ** 2
    assert np.array_equal(sch.alphas_cumprod.numpy(), np.cumprod(1 - betas).astype(np.float32))
