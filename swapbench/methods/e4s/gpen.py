"""GPEN-BFR-512's FullGenerator: a StyleGAN2 decoder whose noise inputs are encoder features.

GPEN (yangxy/GPEN, CVPR 2021) encodes the degraded face with a chain of downsampling ConvLayers,
maps the 4x4 code to a style through the usual 8-layer mapping network, and feeds the encoder
feature of each resolution to the decoder in place of noise: `NoiseInjection` concatenates
`weight * feature` to the modulated conv output (`isconcat`), which doubles the channels that the
activation and the next layer see. With features instead of random noise the network is
deterministic.

The StyleGAN2 layers are swapbench's (`swapbench.methods.stylegan2`, pure torch, rosinality names);
only the concatenating StyledConv is new. Keys equal GPEN's `FullGenerator` state dict
(`GPEN-BFR-512.pth`): `generator.{style,input,conv1,to_rgb1,convs,to_rgbs}.*`, `ecd{0..7}.0.*`,
`final_linear.0.*`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from swapbench.methods.stylegan2 import (
    ConstantInput,
    ConvLayer,
    EqualLinear,
    FusedLeakyReLU,
    ModulatedConv2d,
    PixelNorm,
    ToRGB,
)

STYLE_DIM = 512
N_MLP = 8


def gpen_channels(channel_multiplier: int = 2, narrow: float = 1.0) -> dict[int, int]:
    """Feature channels per resolution; `narrow` scales them all (GPEN's option, 1 for BFR-512)."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
            256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {r: int(c * narrow) for r, c in base.items()}


class ConcatNoise(nn.Module):
    """[x, weight * noise] along channels (GPEN's NoiseInjection with isconcat=True)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.weight * noise), dim=1)


class ConcatStyledConv(nn.Module):
    """ModulatedConv2d -> concatenated feature 'noise' -> FusedLeakyReLU over twice the channels."""

    def __init__(self, in_channels: int, out_channels: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, STYLE_DIM, upsample=upsample)
        self.noise = ConcatNoise()
        self.activate = FusedLeakyReLU(2 * out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class GPENDecoder(nn.Module):
    """The StyleGAN2 synthesis part with concatenated feature noise (GPEN's `Generator`)."""

    def __init__(self, size: int, channels: dict[int, int]):
        super().__init__()
        self.log_size = int(math.log2(size))
        self.style = nn.Sequential(PixelNorm(), *(EqualLinear(STYLE_DIM, STYLE_DIM, lr_mul=0.01,
                                                              activation="fused_lrelu") for _ in range(N_MLP)))
        self.input = ConstantInput(channels[4])
        self.conv1 = ConcatStyledConv(channels[4], channels[4])
        self.to_rgb1 = ToRGB(2 * channels[4], STYLE_DIM, upsample=False)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        in_ch = channels[4]
        for i in range(3, self.log_size + 1):
            out_ch = channels[2**i]
            self.convs.append(ConcatStyledConv(2 * in_ch, out_ch, upsample=True))
            self.convs.append(ConcatStyledConv(2 * out_ch, out_ch))
            self.to_rgbs.append(ToRGB(2 * out_ch, STYLE_DIM))
            in_ch = out_ch

    def forward(self, z: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """z [B, 512] (mapped here), features from 4x4 up to `size` (one per resolution)."""
        w = self.style(z)  # one W for every layer
        out = self.conv1(self.input(z.shape[0]), w, features[0])
        skip = self.to_rgb1(out, w)
        for j, feat in enumerate(features[1:]):
            out = self.convs[2 * j](out, w, feat)
            out = self.convs[2 * j + 1](out, w, feat)
            skip = self.to_rgbs[j](out, w, skip)
        return skip


class FullGenerator(nn.Module):
    """GPEN: [B, 3, size, size] RGB in [-1, 1] -> restored [B, 3, size, size], about [-1, 1], unclamped."""

    def __init__(self, size: int = 512, channel_multiplier: int = 2, narrow: float = 1.0):
        super().__init__()
        channels = gpen_channels(channel_multiplier, narrow)
        self.log_size = int(math.log2(size))
        self.generator = GPENDecoder(size, channels)
        self.ecd0 = nn.Sequential(ConvLayer(3, channels[size], 1))
        for k, i in enumerate(range(self.log_size, 2, -1), start=1):  # size -> 4, halving each time
            setattr(self, f"ecd{k}", nn.Sequential(ConvLayer(channels[2**i], channels[2 ** (i - 1)], 3, downsample=True)))
        self.final_linear = nn.Sequential(EqualLinear(channels[4] * 16, STYLE_DIM, activation="fused_lrelu"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = []
        for k in range(self.log_size - 1):
            x = getattr(self, f"ecd{k}")(x)
            features.append(x)
        z = self.final_linear(x.flatten(1))
        return self.generator(z, features[::-1])
