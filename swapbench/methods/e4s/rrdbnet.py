"""RRDBNet (ESRGAN's generator) as Real-ESRNet x4 uses it in E4S's GPEN restoration stage.

Key names follow BasicSR's `RRDBNet` (conv_first, body.{i}.rdb{1,2,3}.conv{1..5}, conv_body,
conv_up1, conv_up2, conv_hr, conv_last), the layout of `realesrnet_x4.pth` under its `params_ema`
key. Only the x4 variant is built (no pixel-unshuffle): E4S loads `realesrnet_x4.pth` with scale 4.
Written here because no installed library ships the network (basicsr and realesrgan pull torchvision).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESIDUAL_SCALE = 0.2  # ESRGAN scales every residual branch by 0.2


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and all earlier outputs (dense connections)."""

    def __init__(self, num_feat: int, num_grow_ch: int):
        super().__init__()
        for i in range(1, 6):
            out = num_feat if i == 5 else num_grow_ch
            setattr(self, f"conv{i}", nn.Conv2d(num_feat + (i - 1) * num_grow_ch, out, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i in range(1, 5):
            feats.append(F.leaky_relu(getattr(self, f"conv{i}")(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """x4 super-resolution: [B, 3, H, W] in [0, 1] (RGB) -> [B, 3, 4H, 4W], unclamped.

    Real-ESRNet x4 as E4S builds it: num_feat 32, num_block 23, num_grow_ch 32.
    """

    def __init__(self, num_feat: int = 32, num_block: int = 23, num_grow_ch: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in (self.conv_up1, self.conv_up2):  # two nearest x2 upsamplings
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))
