"""Deterministic random weights in the official FSLSD-HiRes file layout, and seeded parity inputs.

Every tensor comes from its own generator seeded by (seed, key) (swapbench's shared scheme), so the
official modules and the port get bit-identical values. Equalized-LR weights (EqualConv2d,
EqualLinear, the bald mapping's dense layers) are N(0, 1) as their run-time scale expects; plain
convolutions are ~ 1/sqrt(fan_in); FIR `kernel` buffers keep their true values. Used by the parity
goldens (the harness that ran the official code imports this module), the end-to-end test and the
speed benchmark. The state dicts are cached per argument set: treat them as read-only.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from swapbench.methods.ghost.random_weights import _generator, random_state_dict
from swapbench.methods.stylegan2 import Generator, make_kernel, random_generator_state

# The last BatchNorm of each IR-SE residual branch is damped so 24 residual sums keep activations of order one.
IRSE_GAINS = {"res_layer.4.weight": 0.2}
CHECKPOINT_PARTS = ("encoder_lmk", "encoder_target", "generator", "decoder", "bald_model")


def _fix(state: dict[str, torch.Tensor], seed: int, equalized: tuple[str, ...], gain: float = 1.0) -> dict:
    """True FIR kernels; N(0, 1) * gain for the equalized weights whose key contains one of `equalized`."""
    base = make_kernel((1, 3, 3, 1))
    for key, t in state.items():
        if key.endswith("kernel"):
            state[key] = base * (4.0 if ".blur." in key and key.startswith("decoder.") else 1.0)
        elif key.endswith("weight") and any(e in key for e in equalized):
            state[key] = gain * torch.randn(t.shape, generator=_generator(seed, key))
    return state


@lru_cache(maxsize=2)
def landmark_encoder_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from swapbench.methods.fslsd.nets import LandmarkEncoder

    with torch.device("meta"):
        e = LandmarkEncoder()
    return _fix(random_state_dict(e.state_dict(), seed, IRSE_GAINS), seed, (".linear.",))


@lru_cache(maxsize=2)
def psp_encoder_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from swapbench.methods.fslsd.nets import PSPEncoder

    with torch.device("meta"):
        e = PSPEncoder()
    return _fix(random_state_dict(e.state_dict(), seed, IRSE_GAINS), seed, (".linear.",))


@lru_cache(maxsize=4)
def target_encoder_state(size: int = 512, seed: int = 0) -> dict[str, torch.Tensor]:
    from swapbench.methods.fslsd.nets import GPENEncoder

    with torch.device("meta"):
        e = GPENEncoder(size)
    return _fix(random_state_dict(e.state_dict(), seed), seed, ("encoder.",))


@lru_cache(maxsize=4)
def decoder_state(out_size: int = 1024, seed: int = 0) -> dict[str, torch.Tensor]:
    from swapbench.methods.fslsd.nets import Decoder

    with torch.device("meta"):
        d = Decoder(8, out_size)
    return _fix(random_state_dict(d.state_dict(), seed), seed, ())


@lru_cache(maxsize=2)
def bald_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from swapbench.methods.fslsd.nets import BaldMapping

    with torch.device("meta"):
        b = BaldMapping()
    # small weights: the residual map stays close to the identity, as a trained one does
    return _fix(random_state_dict(b.state_dict(), seed), seed, ("dense.",), gain=0.1)


@lru_cache(maxsize=4)
def generator_state(size: int = 1024, seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        g = Generator(size)
    return random_generator_state(g.state_dict(), seed)


def checkpoint(generator_size: int = 1024, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """CELEBA-HQ-1024.pt as the official file holds it: five DDP state dicts (`module.` keys)."""
    parts = {
        "encoder_lmk": landmark_encoder_state(seed),
        "encoder_target": target_encoder_state(generator_size // 2, seed),
        "generator": generator_state(generator_size, seed),
        "decoder": decoder_state(generator_size, seed),
        "bald_model": bald_state(seed),
    }
    return {name: {f"module.{k}": v for k, v in sd.items()} for name, sd in parts.items()}


def psp_checkpoint(seed: int = 0) -> dict[str, object]:
    """psp_ffhq_encode.pt's layout as far as the port reads it: state_dict 'encoder.*' keys, latent_avg
    [18, 512] (the decoder keys of the real file are not read)."""
    g = _generator(seed, "latent_avg")
    return {"state_dict": {f"encoder.{k}": v for k, v in psp_encoder_state(seed).items()},
            "latent_avg": 0.5 * torch.randn(18, 512, generator=g), "opts": {"encoder_type": "GradualStyleEncoder"}}


def parity_images(seed: int = 0, size: int = 256, n: int = 2) -> torch.Tensor:
    """[n, 3, size, size] smooth random images in [0, 1] (low-res noise, bilinearly enlarged)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(size // 16, 2), max(size // 16, 2), generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def parity_landmarks(seed: int = 0, n: int = 2) -> torch.Tensor:
    """[n, 106, 2] landmark (x, y) positions in 256-pixel units, some fractional, one point -1 (skipped)."""
    g = torch.Generator().manual_seed(seed + 1)
    pts = 40 + 176 * torch.rand(n, 106, 2, generator=g, dtype=torch.float64)
    pts[:, 5] = -1.0
    return pts.float()


def parity_latents(seed: int = 0, n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 2)
    return torch.randn(n, 18, 512, generator=g)


@lru_cache(maxsize=2)
def h3r_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """H3R LaPa HRNet-W18 (torchalign.FacialLandmarkDetector keys); residual BNs damped."""
    from swapbench.methods.fslsd.h3r import H3R

    with torch.device("meta"):
        h = H3R()
    return random_state_dict(h.state_dict(), seed, {"bn2.weight": 0.5, "bn3.weight": 0.5})
