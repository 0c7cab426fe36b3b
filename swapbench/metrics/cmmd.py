"""CMMD (Jayasumana et al., CVPR 2024): MMD with a Gaussian kernel between CLIP embeddings of swaps and real faces.

The authors' distance (google-research cmmd, distance.py): for L2-normalised CLIP ViT-L/14@336 image
embeddings x (swaps) and y (real), k(a, b) = exp(-||a - b||² / (2 σ²)) with σ = 10, and
CMMD = 1000 · (mean k(x, x') + mean k(y, y') - 2 mean k(x, y)), every mean over all pairs including
the diagonal (the biased estimate, as published). Written here because no installed library has it;
float64, in blocks so that memory stays O(block x N).
"""

from __future__ import annotations

import numpy as np
import torch

from swapbench.metrics.columns import Column

SIGMA = 10.0
SCALE = 1000.0
BLOCK = 4096


def _mean_kernel(a: torch.Tensor, b: torch.Tensor, gamma: float) -> float:
    total = 0.0
    b_sq = (b * b).sum(1)
    for start in range(0, len(a), BLOCK):
        block = a[start:start + BLOCK]
        d2 = (block * block).sum(1)[:, None] + b_sq[None, :] - 2 * block @ b.T
        total += float(torch.exp(-gamma * d2).sum())
    return total / (len(a) * len(b))


def cmmd(x, y, sigma: float = SIGMA, scale: float = SCALE) -> float:
    """CMMD between embeddings x [N, D] and y [M, D] (already L2-normalised, as the authors' embeddings are)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    gamma = 1.0 / (2 * sigma ** 2)
    return scale * (_mean_kernel(x, x, gamma) + _mean_kernel(y, y, gamma) - 2 * _mean_kernel(x, y, gamma))


class CMMDScores:
    """The set-level column of the clip family."""

    columns = (Column("cmmd", "CMMD", False),)

    @staticmethod
    def score(fake: np.ndarray, ref, options: dict, seed: int) -> tuple[dict[str, float], dict]:
        return {"cmmd": cmmd(fake, ref.features)}, {}
