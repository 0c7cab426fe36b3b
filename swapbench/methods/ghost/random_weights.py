"""Deterministic random state dicts, for parity tests and speed benchmarks without the real weights.

Each tensor is drawn from its own torch.Generator seeded by a stable hash of (seed, key), so a value
depends only on its key and shape: any implementation with the same state_dict layout (the official
code included) gets bit-identical weights, on any machine, without storing them.

Scales keep activations of order one through deep stacks (BatchNorm statistics near the identity,
convolution and linear weights ~ 1/sqrt(fan-in)), so the outputs stay informative rather than
saturated or vanishing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import torch


def _generator(seed: int, key: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def random_tensor(key: str, like: torch.Tensor, seed: int = 0, gain: float = 1.0) -> torch.Tensor:
    if not like.is_floating_point():  # e.g. BatchNorm num_batches_tracked
        return torch.zeros(like.shape, dtype=like.dtype)
    g = _generator(seed, key)
    shape = like.shape

    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return (torch.rand(shape, generator=g) + 0.5).to(like.dtype)
    t = torch.randn(shape, generator=g)
    if leaf == "running_mean":
        t.mul_(0.1)
    elif leaf == "bias":
        t.mul_(0.05)
    elif like.dim() == 1 and "prelu" in key:
        t.mul_(0.05).add_(0.25)
    elif like.dim() == 1:  # norm scale
        t.mul_(0.1).add_(1.0).mul_(gain)
    else:  # conv / linear weight, [out, in, k...] (or [in, out, k...] for transposed convs)
        t.mul_(1 / math.sqrt(math.prod(shape[1:])))
    return t.to(like.dtype)


def random_state_dict(
    template: Mapping[str, torch.Tensor], seed: int = 0, norm_gains: Mapping[str, float] | None = None
) -> dict[str, torch.Tensor]:
    """A state dict with the keys, shapes and dtypes of `template` and deterministic random values.

    norm_gains: key suffix -> factor on the scale of the normalisation layers whose key ends with it,
    e.g. {"bn3.weight": 0.2} damps the residual branches of a deep ResNet so that 49 residual additions
    do not grow the activations by orders of magnitude.
    """
    norm_gains = dict(norm_gains or {})

    def gain(key: str) -> float:
        return next((g for suffix, g in norm_gains.items() if key.endswith(suffix)), 1.0)

    return {k: random_tensor(k, v, seed, gain(k)) for k, v in template.items()}
