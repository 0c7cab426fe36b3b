"""A cheap deterministic feature extractor for tests of the FID bookkeeping (not of Inception)."""

import torch
import torch.nn.functional as F
from torch import nn


class TinyExtractor(nn.Module):
    """Images [B, 3, H, W] -> [B, 32]: 8x8 average pool, then a fixed seeded projection and tanh."""

    num_features = 32

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("proj", torch.randn(3 * 64, self.num_features, generator=g) / 8)

    def forward(self, images):
        return torch.tanh(F.adaptive_avg_pool2d(images.float(), 8).flatten(1) @ self.proj * 4)


def image_set(n: int, seed: int, gamma: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 1, 1, generator=g)  # per-image colour, so the features vary between images
    return (base * 0.6 + torch.rand(n, 3, 32, 32, generator=g) * 0.4) ** gamma
