"""ParseNet (chaofengc's face parser, as GPEN ships it): 19 CelebAMask-HQ classes at 512x512.

An encoder of residual blocks down to 32x32, ten residual blocks, a decoder back to 512, and two
heads: the parsing logits and an image (unused by the restoration). Every 3x3 conv pads by
reflection; residual convs are conv -> BatchNorm -> LeakyReLU(0.2) (no activation after the
second); shortcuts and heads are plain convs with bias. Key names follow GPEN's `ParseNet`
(`ParseNet-latest.pth`): encoder.{i}, body.{i}, decoder.{i}, out_img_conv, out_mask_conv, each
conv under `.conv2d`, each norm under `.norm.norm`. Written here: no library ships this network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class NormWrap(nn.Module):
    """BatchNorm2d under the attribute path `norm.norm` of the official checkpoint."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ParseConv(nn.Module):
    """[nearest x2] -> reflection pad -> conv (stride 2 for 'down') -> [BatchNorm] -> [LeakyReLU 0.2]."""

    def __init__(self, cin: int, cout: int, scale: str = "none", norm: bool = False, relu: bool = False):
        super().__init__()
        self.up = scale == "up"
        self.conv2d = nn.Conv2d(cin, cout, 3, 2 if scale == "down" else 1, bias=not norm)
        self.norm = NormWrap(cout) if norm else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        if self.norm is not None:
            x = self.norm(x)
        return F.leaky_relu(x, 0.2) if self.relu else x


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, scale: str = "none"):
        super().__init__()
        # identity when nothing changes, else a plain conv doing the same rescale (official name)
        self.shortcut_func = None if (scale == "none" and cin == cout) else ParseConv(cin, cout, scale)
        self.conv1 = ParseConv(cin, cout, "up" if scale == "up" else "none", norm=True, relu=True)
        self.conv2 = ParseConv(cout, cout, "down" if scale == "down" else "none", norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut_func is None else self.shortcut_func(x)
        return identity + self.conv2(self.conv1(x))


class ParseNet(nn.Module):
    """[B, 3, S, S] RGB in [-1, 1] -> (19-class logits [B, 19, S, S], image [B, 3, S, S]).

    GPEN builds it with size 512, min_feat_size 32, base_ch 64, res_depth 10, ch_range (32, 256).
    """

    def __init__(self, size: int = 512, min_feat_size: int = 32, base_ch: int = 64, parsing_ch: int = 19,
                 res_depth: int = 10, ch_range: tuple[int, int] = (32, 256)):
        super().__init__()

        def clip(c: int) -> int:
            return max(ch_range[0], min(c, ch_range[1]))

        steps = int(math.log2(size // min(size, min_feat_size)))
        encoder: list[nn.Module] = [ParseConv(3, base_ch)]
        ch = base_ch
        for _ in range(steps):
            encoder.append(ResidualBlock(clip(ch), clip(ch * 2), "down"))
            ch *= 2
        self.encoder = nn.Sequential(*encoder)
        self.body = nn.Sequential(*(ResidualBlock(clip(ch), clip(ch)) for _ in range(res_depth)))
        decoder = []
        for _ in range(steps):
            decoder.append(ResidualBlock(clip(ch), clip(ch // 2), "up"))
            ch //= 2
        self.decoder = nn.Sequential(*decoder)
        self.out_img_conv = ParseConv(clip(ch), 3)
        self.out_mask_conv = ParseConv(clip(ch), parsing_ch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.encoder(x)
        x = self.decoder(feat + self.body(feat))
        return self.out_mask_conv(x), self.out_img_conv(x)
