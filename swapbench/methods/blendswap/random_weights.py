"""Deterministic random weights in the official `blendswap.pth` layout, and seeded parity inputs.

Values come from swapbench.methods.ghost.random_weights (one generator per key), so the official
BlendSwap module and this port load identical tensors. The online copies (`G.`, `E.`, `mask_head.`)
get other values than the EMA copies (`G_ema.` ...), as in a trained file: a port that used the wrong
copy would fail the parity tests.

Used by the parity goldens (the script that ran the official code imported this module), the method
tests, the end-to-end test and the speed benchmark.
"""

from __future__ import annotations

import torch
from torch import nn

from swapbench.methods.blendswap.nets import ENCODER_CHANNELS, AADGenerator, AttributeEncoder
from swapbench.methods.ghost.random_weights import random_state_dict
from swapbench.faces.iresnet import iresnet18, iresnet100

# Damps IResNet's residual branches (as for GHOST's ArcFace) so the embedding stays informative.
IDENTITY_GAINS = {"bn3.weight": 0.2}
IDENTITY_NETS = {"iresnet100": iresnet100, "iresnet18": iresnet18}


def narrow(divisor: int) -> tuple[int, ...]:
    """The official encoder widths divided by `divisor` (the input's 3 channels kept): the parity tests'
    reduced network, which runs the same code paths."""
    return (3,) + tuple(c // divisor for c in ENCODER_CHANNELS[1:])


def checkpoint(channels: tuple[int, ...] = ENCODER_CHANNELS, identity: str = "iresnet100",
               seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the layout of the official BlendSwap module (all 1,825 keys at full size)."""
    with torch.device("meta"):
        parts = {"G": AADGenerator(channels), "E": AttributeEncoder(channels),
                 "mask_head": nn.Conv2d(2 * channels[1], 1, 1)}
        z_e = IDENTITY_NETS[identity]()
    state = {}
    for name in ("G", "E", "Z_e", "mask_head", "G_ema", "E_ema", "mask_head_ema"):  # the official key order
        if name == "Z_e":
            state.update(random_state_dict({f"Z_e.1.{k}": v for k, v in z_e.state_dict().items()}, seed, IDENTITY_GAINS))
            continue
        template = {f"{name}.{k}": v for k, v in parts[name.removesuffix("_ema")].state_dict().items()}
        state.update(random_state_dict(template, seed))
    return state


def parity_images(seed: int, size: int, n: int = 2) -> torch.Tensor:
    """[n, 3, size, size] smooth random images in [0, 1] (low-resolution noise, bilinearly enlarged)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 16, size // 16, generator=g)
    return nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
