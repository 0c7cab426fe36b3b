"""The FSLSD-HiRes networks (cnnlstm/FSLSD_HiRes @ 4cf0869), written from the official behaviour.

Module and parameter names are those of the official modules, so the sub-dicts of CELEBA-HQ-1024.pt
load strictly once their DDP `module.` prefix is stripped (`strip_module`):

- `GradualEncoder`: the pSp-style feature-pyramid encoder on an IR-SE50 body (the units are
  swapbench.faces.irse50's). With `in_channels=212, n_styles=7` it is FSLSD's
  GradualLandmarkEncoder ("encoder_lmk": one-hot landmark maps of source and target -> 7 latent
  deltas; only the coarse (16 x 16) and middle (32 x 32) pyramid levels, no `latlayer2`); with
  `in_channels=3, n_styles=18` it is pSp's GradualStyleEncoder (the FFHQ encoder that made the
  official source latents). The style blocks are strided 3x3 convs with LeakyReLU(0.01) down to
  1 x 1, then an equalized linear layer. Upsampling in the pyramid is bilinear with
  align_corners=True.
- `GPENEncoder(size=512)` ("encoder_target"): a 1x1 ConvLayer then seven downsampling ConvLayers
  (rosinality blur + stride-2 conv + FusedLeakyReLU); applied to the 2 * size target it returns the
  8 feature maps from 8 x 8 up to 2 * size, matching the generator's features.
- `Decoder(8, 1024)` ("decoder"): per level, source (generator) and target (GPEN) features are
  blended with the mask, concatenated with the previous output and upsampled by a plain
  ConvTranspose2d (k3, s2) and the rosinality blur (kernel x 4, pad (1, 1)); the last level is
  Conv2d(64, 16) -> FusedLeakyReLU -> Conv2d(16, 3), raw output. The mask is resized to every level
  in turn, from the previous level's mask (1024 -> 8 -> 16 -> ... -> 1024), bilinear without
  antialiasing, as torchvision 0.11's tensor Resize did in the authors' environment.
- `BaldMapping` ("bald_model", the official F_mapping): 18 per-latent linear maps (weights scaled by
  1/sqrt(512) at run time, bias not scaled, no nonlinearity); out = coeff * map(w) + w.
- the generator is swapbench.methods.stylegan2.Generator; FSLSD uses its `features()`.

Written by hand: no library provides these (they are the official model's own blocks); the
StyleGAN2 layers are swapbench's shared ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.faces.irse50 import STAGES, BottleneckIRSE
from swapbench.methods.stylegan2 import (
    Blur,
    ConvLayer,
    EqualLinear,
    FusedLeakyReLU,
    channels_for,
)

N_LATENT = 18
COARSE = 7  # encoder_lmk predicts deltas for latents 0..6
MIX_FROM = N_LATENT - COARSE  # 11: latents 11..17 come from the target
BALD_COEFF = 2.0


def strip_module(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the DistributedDataParallel `module.` prefix of every key (keys without it stay)."""
    return {(k.removeprefix("module.")): v for k, v in state.items()}


class GradualStyleBlock(nn.Module):
    """log2(spatial) x [3x3 stride-2 conv, LeakyReLU(0.01)] to 1 x 1, then EqualLinear."""

    def __init__(self, in_c: int, out_c: int, spatial: int):
        super().__init__()
        self.out_c = out_c
        layers: list[nn.Module] = []
        for i in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(in_c if i == 0 else out_c, out_c, 3, 2, 1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_c))


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class GradualEncoder(nn.Module):
    """IR-SE50 body + feature pyramid + one GradualStyleBlock per latent: [B, C, 256, 256] -> [B, n, 512].

    Latents 0-2 read the 16 x 16 level, 3-6 the 32 x 32 level (c3 upsampled + latlayer1(c2)), 7-17
    the 64 x 64 level (+ latlayer2(c1)); the last level exists only when n_styles > 7.
    """

    COARSE, MIDDLE = 3, 7

    def __init__(self, in_channels: int = 212, n_styles: int = COARSE):
        super().__init__()
        self.n_styles = n_styles
        self.input_layer = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                         nn.PReLU(64))
        units = []
        for cin, cout, n in STAGES:
            units += [BottleneckIRSE(cin, cout, 2)] + [BottleneckIRSE(cout, cout, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        self.styles = nn.ModuleList(
            GradualStyleBlock(512, 512, 16 if i < self.COARSE else 32 if i < self.MIDDLE else 64)
            for i in range(n_styles)
        )
        self.latlayer1 = nn.Conv2d(256, 512, 1)
        if n_styles > self.MIDDLE:
            self.latlayer2 = nn.Conv2d(128, 512, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_layer(x)
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i == 6:
                c1 = x
            elif i == 20:
                c2 = x
        c3 = x
        latents = [self.styles[j](c3) for j in range(min(self.COARSE, self.n_styles))]
        p2 = _upsample_add(c3, self.latlayer1(c2))
        latents += [self.styles[j](p2) for j in range(self.COARSE, min(self.MIDDLE, self.n_styles))]
        if self.n_styles > self.MIDDLE:
            p1 = _upsample_add(p2, self.latlayer2(c1))
            latents += [self.styles[j](p1) for j in range(self.MIDDLE, self.n_styles)]
        return torch.stack(latents, dim=1)


def LandmarkEncoder(landmarks: int = 106) -> GradualEncoder:
    """FSLSD's encoder_lmk: GradualLandmarkEncoder(106 * 2), source then target maps."""
    return GradualEncoder(2 * landmarks, COARSE)


def PSPEncoder() -> GradualEncoder:
    """pSp's GradualStyleEncoder(50, 'ir_se') for a 1024 StyleGAN2 (18 latents), RGB input."""
    return GradualEncoder(3, N_LATENT)


class GPENEncoder(nn.Module):
    """encoder.0 = ConvLayer(3, C[size], 1); encoder.k (k >= 1) = downsampling ConvLayer (3x3).

    forward(x) with x [B, 3, 2 * size, 2 * size] returns the log2(size) - 1 stage outputs, smallest (8 x 8)
    first."""

    def __init__(self, size: int = 512, channel_multiplier: int = 1):
        super().__init__()
        ch = channels_for(channel_multiplier)
        log_size = int(math.log2(size))
        self.n_stages = log_size - 1
        self.encoder = nn.ModuleList([nn.Sequential(ConvLayer(3, ch[size], 1))])
        cin = ch[size]
        for i in range(log_size, 2, -1):
            cout = ch[2 ** (i - 1)]
            self.encoder.append(nn.Sequential(ConvLayer(cin, cout, 3, downsample=True)))
            cin = cout

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.encoder[: self.n_stages]:
            x = stage(x)
            feats.append(x)
        return feats[::-1]


class TransposeBlur(nn.Module):
    """Plain ConvTranspose2d(k3, s2, p0) (2H + 1) then the rosinality blur, kernel x 4, pad (1, 1) (2H)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.upsample_conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=0)
        self.blur = Blur((1, 3, 3, 1), pad=(1, 1), upsample_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.upsample_conv(x))


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision 0.11 tensor Resize(size) of a square mask: bilinear, align_corners=False, no antialias."""
    if mask.shape[-1] == size and mask.shape[-2] == size:
        return mask
    return F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


class Decoder(nn.Module):
    """Mask-blended feature decoder, 8 x 8 to out_size (see the module docstring)."""

    def __init__(self, in_size: int = 8, out_size: int = 1024, channel_multiplier: int = 2):
        super().__init__()
        ch = channels_for(channel_multiplier)
        self.levels = int(math.log2(out_size)) - 2
        self.decoder = nn.ModuleList()
        for r in range(int(math.log2(in_size)), int(math.log2(out_size)) + 1):
            res = 2**r
            cin = ch[res] if res == in_size else 2 * ch[res]
            if res < out_size:
                self.decoder.append(TransposeBlur(cin, ch[res * 2]))
            else:
                self.decoder.append(nn.Sequential(nn.Conv2d(cin, 16, 3, 1, 1), FusedLeakyReLU(16),
                                                  nn.Conv2d(16, 3, 3, 1, 1)))

    def forward(self, source: Sequence[torch.Tensor], target: Sequence[torch.Tensor],
                mask: torch.Tensor) -> torch.Tensor:
        out = None
        for i in range(self.levels):
            mask = resize_mask(mask, source[i].shape[-1])  # from the previous level's mask
            blended = source[i] * mask + target[i] * (1 - mask)
            out = self.decoder[i](blended if out is None else torch.cat([blended, out], dim=1))
        return out


class DenseLayer(nn.Module):
    """F.linear(x, weight / sqrt(fan_in), bias): equalized weight, unscaled bias."""

    def __init__(self, in_dim: int = 512, out_dim: int = 512):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = 1 / math.sqrt(in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class BaldMapping(nn.Module):
    """The official F_mapping (18 linear layers, 'linear' activation): coeff * map(w) + w on [B, 18 * 512]."""

    def __init__(self, n_latent: int = N_LATENT, dim: int = 512):
        super().__init__()
        self.dim = dim
        self.dense = nn.ModuleList(DenseLayer(dim, dim) for _ in range(n_latent))

    def forward(self, latents: torch.Tensor, coeff: float = BALD_COEFF) -> torch.Tensor:
        chunks = latents.split(self.dim, dim=1)
        out = torch.cat([layer(x) for layer, x in zip(self.dense, chunks)], dim=1)
        return coeff * out + latents
