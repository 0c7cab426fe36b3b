"""E4S RGI port vs the official code: checkpoint layout (manifest) and numerical parity per stage.

tests/golden/e4s_manifest.json: {key: shape} of the official Net3 (e4s2022/e4s @ d30bdc7,
src/models/networks.py, opts out_size 1024, remaining_layer_idx 13, 12 classes) built at full size on
the meta device, with the DataParallel `module.` prefix its checkpoint's `state_dict` carries, and the
shape of `latent_avg`, which the checkpoint holds beside the state dict.

tests/golden/e4s_parity.npz was made by running the official code on CPU (torch 2.13.0) outside the
repository, with these substitutions outside the official model code: rosinality's own
`upfirdn2d_native` and the CPU leaky-ReLU formula in place of the JIT-compiled CUDA ops, a stub
torchvision (ToTensor / Normalize / Compose), `.cuda()` removed from the parser's mean/std constants,
and stand-ins for the reenactment and restoration imports of scripts/face_swap.py (not run).
Weights: `swapbench.methods.e4s.random_weights` (seed 0, the same values on both sides).
Reduced config (`random_weights.TINY`): generator 32 px with widths capped at 32, K = 5 regional
layers, encoder widths (8, 16, 32, 64, 64). It goes through every code path of the full model:
per-region and plain convs and ToRGBs, the ToRGB at row K reading region 0's code, latent_avg rows
past K. Inputs: `parity_images(0, 512)` in [-1, 1], blocky 64 x 64 label maps (the driven one without
ears and mouth: the texture-swap fallbacks run; the mask swap leaves holes). Stored: style vectors of
the driven face and the target, the swapped mask and holes, swapped vectors, codes, the generator
output with injected noise (and a batch of two with regions absent from one image), the blend's
mask and the blended RGBA image (at 64 -> 128 instead of 512 -> 1024), and BicubicDownSample(2).

Tolerances: 1e-4 relative to the tensor's scale for float stages (fp32, deterministic; the region
means are computed as a masked sum here, a masked_select mean officially); exact for label maps and
the uint8 blend except at most a few pixels off by one where the truncation sits on a float boundary.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from swapbench.methods.e4s import compose
from swapbench.methods.e4s import random_weights as rw
from swapbench.methods.e4s.rgi import RGI, one_hot, strip_module_prefix

GOLDEN = Path(__file__).parent / "golden"
TOL = 1e-4


def rel_err(ours: torch.Tensor, theirs: np.ndarray) -> float:
    theirs = torch.from_numpy(np.asarray(theirs)).float()
    return float((ours.float() - theirs).abs().max() / theirs.abs().max().clamp(min=1e-12))


@pytest.fixture(scope="module")
def gold():
    return dict(np.load(GOLDEN / "e4s_parity.npz"))


@pytest.fixture(scope="module")
def net():
    with torch.device("meta"):
        model = RGI(**rw.TINY)
    model = model.to_empty(device="cpu").eval()
    model.load(rw.official_checkpoint(**rw.TINY))
    return model


def test_full_size_layout_matches_official_checkpoint():
    manifest = json.loads((GOLDEN / "e4s_manifest.json").read_text())
    with torch.device("meta"):
        model = RGI()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: v for k, v in strip_module_prefix(manifest["state_dict"]).items()}
    assert ours == theirs
    assert len(ours) == 344 and sum(p.numel() for p in model.parameters()) == 164_265_868
    assert list(model.latent_avg.shape) == manifest["latent_avg"]
    assert "latent_avg" not in model.state_dict()


def test_checkpoint_loading_uses_state_dict_and_latent_avg(net):
    ckpt = rw.official_checkpoint(**rw.TINY)
    ckpt["state_dict_ema"] = {k: torch.zeros_like(v) for k, v in ckpt["state_dict"].items()}  # must be ignored
    model = net
    model.load(ckpt)
    key = next(iter(ckpt["state_dict"]))
    assert torch.equal(model.state_dict()[key.removeprefix("module.")], ckpt["state_dict"][key])
    assert torch.equal(model.latent_avg, ckpt["latent_avg"])
    broken = dict(ckpt, state_dict={k.removeprefix("module."): v for k, v in list(ckpt["state_dict"].items())[1:]})
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load(broken)


def test_rgi_stages_match_official(net, gold):
    images = rw.parity_images(seed=0, size=512, n=2) * 2 - 1
    d_lab = torch.from_numpy(gold["d_labels"]).long()[None]
    t_lab = torch.from_numpy(gold["t_labels"]).long()[None]
    with torch.no_grad():
        v_d = net.style_vectors(images[:1], one_hot(d_lab))
        v_t = net.style_vectors(images[1:], one_hot(t_lab))
        errs = {"v_d": rel_err(v_d, gold["v_d"]), "v_t": rel_err(v_t, gold["v_t"])}
        assert (v_d[0, compose.EARS] == 0).all() and (v_d[0, compose.MOUTH] == 0).all()
        swapped, holes = compose.swap_masks(d_lab, t_lab)
        assert torch.equal(swapped[0], torch.from_numpy(gold["swapped_mask"]).long())
        assert torch.equal(holes[0], torch.from_numpy(gold["hole_map"])) and holes.any()
        v_s = compose.swap_style_vectors(v_t, v_d)
        errs["v_swapped"] = rel_err(v_s, gold["v_swapped"])
        codes = net.style_codes(v_s)
        errs["codes"] = rel_err(codes, gold["codes"])
        gen = torch.Generator().manual_seed(int(gold["noise_seed"]))
        noise = [torch.randn(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), generator=gen) for i in range(net.G.num_layers)]
        out = net.generate(codes, one_hot(swapped), noise)
        errs["generated"] = rel_err(out, gold["generated"])
        pair = net.generate(torch.cat([codes, net.style_codes(v_d)]), one_hot(torch.cat([swapped, d_lab])),
                            [torch.cat([n, n * 0.5]) for n in noise])
        errs["generated_pair"] = rel_err(pair, gold["generated_pair"])
    print("relative errors", errs)
    assert max(errs.values()) <= TOL, errs


def test_blend_matches_official(gold):
    swapped = torch.from_numpy(gold["swapped_mask"]).long()[None]
    mask = compose.blend_mask(swapped, 128)[0].numpy()
    assert np.array_equal(mask, gold["full_mask"])
    assert set(np.unique(mask)) == {0, 255}  # the official uint8 cast binarises the bilinear mask
    fg = ~torch.isin(swapped[0], torch.tensor(compose.BLEND_BACKGROUND))
    assert np.array_equal(fg.numpy(), gold["foreground"])
    out = compose.smooth_paste(gold["blend_generated"], gold["blend_target"], mask)
    assert np.array_equal(out, gold["blended"][..., :3])
    # through the tensor entry point: the generated face as the official tensor2im saw it
    generated = torch.from_numpy(gold["blend_generated"]).permute(2, 0, 1)[None].float() / 255 * 2 - 1
    target = torch.from_numpy(gold["blend_target"]).permute(2, 0, 1)[None].float() / 255
    blended = compose.blend(generated + 1e-4, target, swapped)  # +1e-4: truncation lands on the same integers
    diff = (blended[0].permute(1, 2, 0).numpy() * 255).round().astype(int) - gold["blended"][..., :3]
    assert np.abs(diff).max() == 0


def test_bicubic_downsample_matches_official(gold):
    small = rw.parity_images(seed=7, size=64, n=1)
    err = rel_err(compose.bicubic_downsample(small, 2), gold["bicubic_out"])
    assert err <= 1e-6, err


def test_texture_swap_is_per_pair():
    t = torch.randn(2, 12, 8)
    d = torch.randn(2, 12, 8)
    d[1, compose.EARS] = 0
    d[0, compose.MOUTH] = 0
    out = compose.swap_style_vectors(t, d)
    assert torch.equal(out[0, compose.EARS], d[0, compose.EARS])
    assert torch.equal(out[1, compose.EARS], t[1, compose.EARS] / 2)
    assert torch.equal(out[0, compose.MOUTH], t[0, compose.MOUTH])
    assert torch.equal(out[1, compose.MOUTH], d[1, compose.MOUTH])
    for r in (0, 4, 10, 11):
        assert torch.equal(out[:, r], t[:, r])
