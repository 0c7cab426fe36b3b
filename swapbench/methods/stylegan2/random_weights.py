"""Deterministic random StyleGAN2 generator weights in the rosinality layout (tests, benchmarks).

Each tensor comes from its own torch.Generator seeded by (seed, key) (swapbench's shared
random-weights scheme), so any implementation with the same layout gets identical values.
Equalized-LR weights are N(0, 1) as in training initialisation; modulation biases are 1 + small;
noise strengths are small; FIR `kernel` buffers keep their true values (they are constants that the
checkpoints carry); `noises.*` are N(0, 1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch


def _generator(seed: int, key: str) -> torch.Generator:
    # The same (seed, key) -> stream rule as swapbench.methods.ghost.random_weights.
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def random_generator_state(template: Mapping[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values for every key of a Generator state dict (template from `Generator().state_dict()`,
    possibly on the meta device); kernel buffers are rebuilt from their definition."""
    from swapbench.methods.stylegan2.ops import make_kernel

    out: dict[str, torch.Tensor] = {}
    base = make_kernel((1, 3, 3, 1))
    for key, like in template.items():
        g = _generator(seed, key)
        shape = like.shape
        if key.endswith("kernel"):
            # Blur after an upsampling conv and Upsample carry the kernel x4; others x1.
            scale = 4.0 if (".conv.blur." in key or key.endswith("upsample.kernel")) else 1.0
            out[key] = base * scale
        elif key.endswith("modulation.bias"):
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith("noise.weight"):
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif key.endswith("bias"):
            out[key] = 0.1 * torch.randn(shape, generator=g)
        else:  # weights, input.input, noises.*
            out[key] = torch.randn(shape, generator=g)
    return out
