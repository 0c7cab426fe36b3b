"""Building blocks of FaceVid2Vid (Wang et al., CVPR 2021) as E4S runs it: the zhanglonghao1992
re-implementation vendored in e4s2022/e4s (src/pretrained/face_vid2vid/modules/util.py @ d30bdc7).

Written here because no library ships these networks. Submodule names follow the official ones, so the
official checkpoint loads strictly; BatchNorm layers are plain torch ones (the official synchronised
BatchNorm computes exactly F.batch_norm with the running statistics in eval).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(d: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """[d, h, w, 3] grid of (x, y, z) in [-1, 1], corners included (the official make_coordinate_grid)."""
    axes = [2 * (torch.arange(n, dtype=like.dtype, device=like.device) / (n - 1)) - 1 for n in (d, h, w)]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([x, y, z], dim=-1)


class ConvNormAct(nn.Module):
    """conv -> BatchNorm -> ReLU (or LeakyReLU 0.01), optionally followed by a 2x2 average pool
    (DownBlock) or preceded by a nearest 2x upsample (UpBlock); 2-D or 3-D. The 3-D versions resample
    only height and width, as the official Down/UpBlock3d."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int, dims: int = 2,
                 resample: str | None = None, leaky: bool = False):
        super().__init__()
        conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
        self.conv = conv(cin, cout, kernel_size=kernel, padding=padding)
        self.norm = norm(cout)
        self.dims, self.resample, self.leaky = dims, resample, leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hw = (2, 2) if self.dims == 2 else (1, 2, 2)
        if self.resample == "up":
            x = F.interpolate(x, scale_factor=hw)
        x = self.norm(self.conv(x))
        x = F.leaky_relu(x) if self.leaky else F.relu(x)
        if self.resample == "down":
            x = F.avg_pool2d(x, 2) if self.dims == 2 else F.avg_pool3d(x, hw)
        return x


class ResBlock3d(nn.Module):
    """Pre-activation residual block: x + conv2(relu(norm2(conv1(relu(norm1(x))))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm1 = nn.BatchNorm3d(channels)
        self.norm2 = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


class ResBottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 bottleneck with post-activation; a 1x1 conv + norm skip when strided."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        mid = channels // 4
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(mid, channels, 1)
        self.norm1, self.norm2, self.norm3 = nn.BatchNorm2d(mid), nn.BatchNorm2d(mid), nn.BatchNorm2d(channels)
        if stride != 1:
            self.skip = nn.Conv2d(channels, channels, 1, stride=stride)
            self.norm4 = nn.BatchNorm2d(channels)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        if self.stride != 1:
            x = self.norm4(self.skip(x))
        return F.relu(out + x)


class Hourglass3d(nn.Module):
    """U-Net over a [B, C, D, H, W] volume (the dense motion network's): `num_blocks` 3-D down blocks,
    as many up blocks, each up block's output concatenated with the matching encoder level, then
    conv-norm-relu. Output channels: block_expansion + in_features (`out_channels`)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        width = lambda i: min(max_features, block_expansion * 2 ** i)  # noqa: E731
        self.encoder = nn.Module()
        self.encoder.down_blocks = nn.ModuleList(
            ConvNormAct(in_features if i == 0 else width(i), width(i + 1), 3, 1, dims=3, resample="down")
            for i in range(num_blocks))
        self.decoder = nn.Module()
        self.decoder.up_blocks = nn.ModuleList(
            ConvNormAct((1 if i == num_blocks - 1 else 2) * width(i + 1), width(i), 3, 1, dims=3, resample="up")
            for i in reversed(range(num_blocks)))
        self.out_channels = block_expansion + in_features
        self.decoder.conv = nn.Conv3d(self.out_channels, self.out_channels, 3, padding=1)
        self.decoder.norm = nn.BatchNorm3d(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = [x]
        for block in self.encoder.down_blocks:
            levels.append(block(levels[-1]))
        out = levels.pop()
        for block in self.decoder.up_blocks:
            out = torch.cat([block(out), levels.pop()], dim=1)
        return F.relu(self.decoder.norm(self.decoder.conv(out)))


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: instance norm (no affine), then a per-pixel scale and shift
    predicted from the label map (here the 64x64 feature itself, nearest-resized to x)."""

    def __init__(self, channels: int, label_channels: int, hidden: int):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        actv = self.mlp_shared(F.interpolate(label, size=x.shape[2:], mode="nearest"))
        return F.instance_norm(x, eps=1e-5) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResBlock(nn.Module):
    """SPADE residual block; its convolutions were trained under spectral norm, whose weights the
    loader folds into plain `weight`s (reenact.fold_spectral_norm)."""

    def __init__(self, fin: int, fout: int, label_channels: int, hidden: int):
        super().__init__()
        mid = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, mid, 3, padding=1)
        self.conv_1 = nn.Conv2d(mid, fout, 3, padding=1)
        self.learned_shortcut = fin != fout
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
        self.norm_0 = SPADE(fin, label_channels, hidden)
        self.norm_1 = SPADE(mid, label_channels, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_channels, hidden)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, label)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, label), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, label), 0.2))
        return shortcut + dx
