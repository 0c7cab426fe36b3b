"""SimSwap's networks, written from the official behaviour (neuralchen/SimSwap @ bd7b768).

- `Generator`: `Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False)` of models/fs_networks.py
  (224 model) and models/fs_networks_512.py (512 beta: 32-channel first layer, extra down0/up0 stages).
  Its residual blocks inject the identity through `ApplyStyle` after a parameter-free instance norm
  with eps 1e-8 (torch's InstanceNorm2d has eps 1e-5 and another formula, so it is written here).
- `ArcFace`: the SE-IR ResNet-101 of foamliu/InsightFace-v2 that SimSwap's arcface_checkpoint.tar pickles
  (models/arcface_models.py): `ResNet(IRBlock, [3, 4, 23, 3], use_se=True)`; conv3x3 = k3, padding 1,
  no bias (SimSwap's copy calls conv3x3 without defining it). No library ships this network.
- `SoftErosion`: util/reverse2original.py's mask softener (a cone kernel, iterated min, threshold), batched
  with per-face normalisation as the official code does face by face.

Module and parameter names follow the official ones, so the official state dicts load strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LATENT = 512  # ArcFace embedding size, the latent of every ApplyStyle
N_BLOCKS = 9


class InstanceNorm(nn.Module):
    """x - mean, divided by sqrt(mean of squares + 1e-8), per sample and channel; no parameters."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        x = x - x.mean((2, 3), keepdim=True)
        return x * torch.rsqrt((x * x).mean((2, 3), keepdim=True) + self.eps)


class ApplyStyle(nn.Module):
    """Identity injection: x * (1 + scale) + shift, scale and shift a linear map of the latent."""

    def __init__(self, channels: int, latent: int = LATENT):
        super().__init__()
        self.linear = nn.Linear(latent, 2 * channels)

    def forward(self, x, latent):
        scale, shift = self.linear(latent).view(-1, 2, x.size(1), 1, 1).unbind(1)
        return x * (scale + 1.0) + shift


def _padded_conv(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), InstanceNorm())


class AdainBlock(nn.Module):
    """ResnetBlock_Adain: two reflection-padded convolutions, each normalised and styled; x + y, no activation after."""

    def __init__(self, dim: int = 512, latent: int = LATENT):
        super().__init__()
        self.conv1, self.style1 = _padded_conv(dim), ApplyStyle(dim, latent)
        self.conv2, self.style2 = _padded_conv(dim), ApplyStyle(dim, latent)

    def forward(self, x, latent):
        y = F.relu(self.style1(self.conv1(x), latent))
        return x + self.style2(self.conv2(y), latent)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


def _up(cin: int, cout: int) -> nn.Sequential:
    # nn.Upsample(mode="bilinear") without align_corners, i.e. align_corners=False
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                         nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class Generator(nn.Module):
    """Target crop [B,3,H,W] RGB in [0,1] (not normalised) + L2-normalised identity [B,512] -> [B,3,H,W] in [0,1].

    crop 224: 64-channel first layer and three stride-2 stages; crop 512: a 32-channel first layer and
    a fourth stage (down0/up0) around the same 512-channel bottleneck of nine AdaIN blocks.
    latent and tanh=False: ReliableSwap's retrained variant (fs_networks_fix.py), whose identity may carry
    a 128-d mouth feature (latent 640) and whose last convolution is returned as is (no tanh, no rescale).
    """

    def __init__(self, crop: int = 224, latent: int = LATENT, tanh: bool = True):
        super().__init__()
        if crop not in (224, 512):
            raise ValueError(f"SimSwap generators exist for crops 224 and 512, not {crop}")
        self.crop, self.tanh = crop, tanh
        base = 64 if crop == 224 else 32
        self.first_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, base, 7), nn.BatchNorm2d(base), nn.ReLU())
        if crop == 512:
            self.down0 = _down(32, 64)
        self.down1, self.down2, self.down3 = _down(64, 128), _down(128, 256), _down(256, 512)
        self.BottleNeck = nn.ModuleList(AdainBlock(512, latent) for _ in range(N_BLOCKS))
        self.up3, self.up2, self.up1 = _up(512, 256), _up(256, 128), _up(128, 64)
        if crop == 512:
            self.up0 = _up(64, 32)
        self.last_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(base, 3, 7), *([nn.Tanh()] if tanh else []))

    def forward(self, target, latent):
        x = self.first_layer(target)
        if self.crop == 512:
            x = self.down0(x)
        x = self.down3(self.down2(self.down1(x)))
        for block in self.BottleNeck:
            x = block(x, latent)
        x = self.up1(self.up2(self.up3(x)))
        if self.crop == 512:
            x = self.up0(x)
        x = self.last_layer(x)
        return (x + 1) / 2 if self.tanh else x


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class SEBlock(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.PReLU(),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class IRBlock(nn.Module):
    """bn0-conv1-bn1-prelu-conv2-bn2-SE, plus the shortcut, then the same (single-scalar) PReLU again."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cin)
        self.bn1 = nn.BatchNorm2d(cin)
        self.prelu = nn.PReLU()
        self.conv2 = _conv3x3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.se = SEBlock(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        y = self.se(self.bn2(self.conv2(y)))
        return self.prelu(y + (x if self.downsample is None else self.downsample(x)))


class ArcFace(nn.Module):
    """SE-LResNet101E-IR: 112x112 ImageNet-normalised RGB -> raw 512-d embedding (after bn3, not normalised)."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 23, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, bias=False)  # no padding: 112 -> 110
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        widths, cin = (64, 128, 256, 512), 64
        for i, (width, n) in enumerate(zip(widths, layers), start=1):
            stride = 1 if i == 1 else 2
            blocks = [IRBlock(cin, width, stride)] + [IRBlock(width, width) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            cin = width
        self.bn2 = nn.BatchNorm2d(512)
        self.fc = nn.Linear(512 * 7 * 7, 512)
        self.bn3 = nn.BatchNorm1d(512)

    def forward(self, x):
        x = F.max_pool2d(self.prelu(self.bn1(self.conv1(x))), 2)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.bn3(self.fc(self.bn2(x).flatten(1)))  # the dropout before fc is inactive in eval


class SoftErosion(nn.Module):
    """SimSwap's SoftErosion(kernel 17, threshold 0.9, 7 iterations) of a [B,1,H,W] mask.

    The kernel is a cone (max distance - distance to the centre), normalised to sum 1, zero padding.
    After iterations-1 eroding passes (min of the mask and its blur) and one blur, pixels at or above
    the threshold become 1 and the others are divided by their maximum, per face (the official code
    runs one face at a time). An empty mask stays 0 (officially 0/0; that face gets the raw swap anyway).
    """

    def __init__(self, kernel_size: int = 17, threshold: float = 0.9, iterations: int = 7):
        super().__init__()
        r = kernel_size // 2
        ys, xs = torch.meshgrid(torch.arange(float(kernel_size)), torch.arange(float(kernel_size)), indexing="ij")
        dist = ((xs - r) ** 2 + (ys - r) ** 2).sqrt()
        kernel = dist.max() - dist
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)
        self.padding, self.threshold, self.iterations = r, threshold, iterations

    def forward(self, mask):
        x = mask.float()
        for _ in range(self.iterations - 1):
            x = torch.minimum(x, F.conv2d(x, self.kernel, padding=self.padding))
        x = F.conv2d(x, self.kernel, padding=self.padding)
        solid = x >= self.threshold
        rest_max = x.masked_fill(solid, float("-inf")).amax((1, 2, 3), keepdim=True)
        scaled = x / torch.where(rest_max > 0, rest_max, torch.ones_like(rest_max))
        return torch.where(solid, torch.ones_like(x), scaled)
