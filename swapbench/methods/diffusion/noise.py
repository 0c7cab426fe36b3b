"""Per-pair random draws: a swap depends on the run seed and its pair id only.

Official LDM scripts draw from the global RNG in batch order, so a pair's noise depends on the pairs
before it. swapbench gives every pair its own generator (`SwapMethod.pair_generator`, seeded by (run
seed, pair id)) and draws each pair's slice of a batched tensor from it: the same pair gets the same
noise at batch 1 and batch 4.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def randn_per_pair(
    generators: Sequence[torch.Generator],
    shape: Sequence[int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise [len(generators), *shape]: row i drawn from generators[i] alone.

    Drawn in float32 on each generator's device, then cast, so the values do not depend on the
    precision a method runs at.
    """
    rows = [torch.randn(tuple(shape), generator=g, device=g.device, dtype=torch.float32) for g in generators]
    out = torch.stack(rows)
    return out.to(device=device if device is not None else out.device, dtype=dtype)


def sample_diagonal_gaussian(mean: torch.Tensor, logvar: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """A draw of LDM's DiagonalGaussianDistribution (`mean + std * eps`, logvar clamped to [-30, 20]).

    Equals `diffusers`' `DiagonalGaussianDistribution.sample(generator)` but with one generator per
    batch row; `mean` and `logvar` are [B, C, H, W].
    """
    if mean.shape[0] != len(generators):
        raise ValueError(f"{mean.shape[0]} rows but {len(generators)} generators")
    std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
    eps = randn_per_pair(generators, mean.shape[1:], device=mean.device, dtype=mean.dtype)
    return mean + std * eps
