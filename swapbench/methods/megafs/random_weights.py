"""Deterministic random weights in the official MegaFS file layout, and seeded parity inputs.

Generating the 242M encoder values takes seconds, so the state dicts are cached per seed: treat
them as read-only (load_state_dict copies them).

Used by the parity goldens (the harness that ran the official code imports these functions, so both
sides get bit-identical weights), the end-to-end test and the speed benchmark.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from swapbench.methods.ghost.random_weights import random_state_dict
from swapbench.methods.megafs.nets import FaceTransferModule, HieRFE
from swapbench.methods.stylegan2 import Generator, random_generator_state

# Damps the ResNet's residual branches so 18 bottlenecks keep activations of order one and the
# tanh'd codes stay away from +-1 (informative for parity, not saturated).
ENCODER_GAINS = {"bn3.weight": 0.2}


@lru_cache(maxsize=2)
def encoder_state(seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        e = HieRFE()
    return random_state_dict(e.state_dict(), seed, ENCODER_GAINS)


@lru_cache(maxsize=2)
def swapper_state(swap_type: str, seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        s = FaceTransferModule(swap_type)
    return random_state_dict(s.state_dict(), seed)


def generator_state(size: int = 1024, seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        g = Generator(size)
    return random_generator_state(g.state_dict(), seed)


def official_files(swap_type: str, generator_size: int = 1024, seed: int = 0) -> dict[str, dict]:
    """{filename: object} as the official files hold them: {type}_final.pth = {"e", "s"},
    stylegan2-ffhq-config-f.pth = {"g_ema", "latent_avg"}."""
    return {
        f"{swap_type}_final.pth": {"e": encoder_state(seed), "s": swapper_state(swap_type, seed)},
        "stylegan2-ffhq-config-f.pth": {"g_ema": generator_state(generator_size, seed),
                                        "latent_avg": torch.zeros(512)},
    }


def parity_images(seed: int = 0, size: int = 256, n: int = 2) -> torch.Tensor:
    """[n, 3, size, size] smooth random images in [0, 1] (low-res noise, bilinearly enlarged)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 16, size // 16, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


@lru_cache(maxsize=2)
def parser_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from swapbench.faces.parsing import BiSeNet

    with torch.device("meta"):
        p = BiSeNet()
    return random_state_dict(p.state_dict(), seed)


def method_state(swap_type: str = "ftm", generator_size: int = 1024, seed: int = 0) -> dict[str, object]:
    """{WeightFile.name: contents} for `MegaFS.load_weights` (random parser included)."""
    from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
    from swapbench.methods.megafs.method import STYLEGAN_FILE, SWAP_FILES

    files = official_files(swap_type, generator_size, seed)
    return {SWAP_FILES[swap_type].name: files[f"{swap_type}_final.pth"],
            STYLEGAN_FILE.name: files["stylegan2-ffhq-config-f.pth"], PARSER_WEIGHTS.name: parser_state(seed)}
