"""MegaFS networks: HieRFE encoder and the three face-transfer modules (FTM, injection, LCR).

Written from the official inference code (zyainfal/One-Shot-Face-Swapping-on-Megapixels @ f01b195,
inference/megafs.py) with the same module names, so `{ftm,injection,lcr}_final.pth` (keys "e", "s")
load strictly. Plain torch.nn: nothing here needs diffusers/kornia.

HieRFE: a torchvision-v1.5 ResNet-50 with an extra 5th stage (2 bottlenecks, stride 2, 2048 ch),
an FPN over stages 2-5 (p4 = conv+BN of stage 5, 4x4, the "struct"; p3/p2/p1 = conv+BN+ReLU
laterals with bilinear align_corners=True top-down adds), and 4/6/8 "styleMapping" heads (stride-2
conv + BN + LeakyReLU(0.01), log2(side) times) from p3 (8x8), p2 (16x16) and p1 (32x32) giving 18
W+ codes, squashed by tanh. Input: 256x256 RGB in [-1, 1].

FaceTransferModule keeps the target's codes 0-3 and swaps 4-17:
  ftm        14 TransferCells (3 rounds of sigmoid-selector / tanh-shifter updates of the source and
             target codes from their concatenation) blended by sigmoid(weight) [1, 14, 512];
  injection  14 InjectionResBlocks (AdaIN-like: BN(att) * (1 + gamma(idd)) + beta(idd));
  lcr        no parameters: target codes 0-3, source codes 4-17.
The official `nn.LeakyReLU(True)` in TransferCell/InjectionResBlock sets negative_slope=True=1.0,
i.e. an identity; it is reproduced as nn.Identity (no parameters either way).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.faces.resnet import (
    Bottleneck,  # torchvision ResNet-50 v1.5 block, shared
)

SWAP_TYPES = ("ftm", "injection", "lcr")
LATENT_SPLIT = (4, 6, 8)
NUM_LATENTS = 18
SWAP_INDEX = 4


class ResNet5(nn.Module):
    """ResNet-50 (v1.5) with a fifth stage; returns the outputs of stages 2, 3, 4 and 5."""

    def __init__(self, layers=(3, 4, 6, 3, 2)):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(64, layers[0], 1)
        self.layer2 = self._layer(128, layers[1], 2)
        self.layer3 = self._layer(256, layers[2], 2)
        self.layer4 = self._layer(512, layers[3], 2)
        self.layer5 = self._layer(512, layers[4], 2)

    def _layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        # As in the official _make_layer, every stage's first block has a projection shortcut
        # (stride != 1, or a channel change; layer5 changes neither but has stride 2).
        down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        mods = [Bottleneck(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        mods += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer2(self.layer1(x))
        c2 = self.layer3(c1)
        c3 = self.layer4(c2)
        c4 = self.layer5(c3)
        return c1, c2, c3, c4


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=True), nn.BatchNorm2d(cout), nn.ReLU())


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class FPN(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = ResNet5()
        self.output1 = _conv_bn_relu(512, 512)
        self.output2 = _conv_bn_relu(1024, 512)
        self.output3 = _conv_bn_relu(2048, 512)
        self.output4 = nn.Sequential(nn.Conv2d(2048, 512, 3, 1, 1, bias=True), nn.BatchNorm2d(512))

    def forward(self, x: torch.Tensor):
        c1, c2, c3, c4 = self.backbone(x)
        p4 = self.output4(c4)
        p3 = self.output3(c3)
        p2 = self.output2(c2) + _up2(p3)
        p1 = self.output1(c1) + _up2(p2)
        return p4, p3, p2, p1


class StyleMapping(nn.Module):
    """log2(side) x [stride-2 conv 3x3, BN, LeakyReLU(0.01)]: a side x side map to one code [B, 1, 512]."""

    def __init__(self, side: int):
        super().__init__()
        mods: list[nn.Module] = []
        for _ in range(int(math.log2(side))):
            mods += [nn.Conv2d(512, 512, 3, 2, 1, bias=True), nn.BatchNorm2d(512), nn.LeakyReLU(0.01, inplace=True)]
        self.convs = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x).flatten(1)[:, None]


class HieRFE(nn.Module):
    """Hierarchical representation face encoder: 256x256 [-1, 1] -> (W+ [B, 18, 512] in (-1, 1), struct [B, 512, 4, 4])."""

    def __init__(self, split=LATENT_SPLIT):
        super().__init__()
        self.fpn = FPN()
        self.act = nn.Tanh()
        self.mapping1 = nn.ModuleList(StyleMapping(8) for _ in range(split[0]))
        self.mapping2 = nn.ModuleList(StyleMapping(16) for _ in range(split[1]))
        self.mapping3 = nn.ModuleList(StyleMapping(32) for _ in range(split[2]))

    def forward(self, x: torch.Tensor):
        p4, p3, p2, p1 = self.fpn(x)
        codes = [m(p3) for m in self.mapping1] + [m(p2) for m in self.mapping2] + [m(p1) for m in self.mapping3]
        return self.act(torch.cat(codes, 1)), p4


def _mlp(out_act: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(1024, 256), nn.ReLU(True), nn.Linear(256, 512), out_act)


class TransferCell(nn.Module):
    def __init__(self, num_blocks: int):
        super().__init__()
        self.idd_selectors = nn.ModuleList(_mlp(nn.Sigmoid()) for _ in range(num_blocks))
        self.idd_shifters = nn.ModuleList(_mlp(nn.Tanh()) for _ in range(num_blocks))
        self.att_selectors = nn.ModuleList(_mlp(nn.Sigmoid()) for _ in range(num_blocks))
        self.att_shifters = nn.ModuleList(_mlp(nn.Tanh()) for _ in range(num_blocks))

    def forward(self, idd: torch.Tensor, att: torch.Tensor):
        for sel_i, shi_i, sel_a, shi_a in zip(self.idd_selectors, self.idd_shifters, self.att_selectors,
                                              self.att_shifters):
            fuse = torch.cat([idd, att], 1)  # both updates read the codes before this round
            idd, att = idd * sel_i(fuse) + shi_i(fuse), att * sel_a(fuse) + shi_a(fuse)
        return idd, att


class InjectionBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.idd_linears = nn.Sequential(nn.Linear(512, 512), nn.ReLU(True))
        self.idd_selectors = nn.Linear(512, 512)
        self.idd_shifters = nn.Linear(512, 512)
        self.att_bns = nn.BatchNorm1d(512, affine=False)

    def forward(self, idd: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        h = self.idd_linears(idd)
        return self.att_bns(att) * (1 + self.idd_selectors(h)) + self.idd_shifters(h)


class _InjectionPath(nn.Module):
    """Keys `0.*` (InjectionBlock) and `2.*` (Linear); index 1 is the identity "LeakyReLU(True)"."""

    def __init__(self):
        super().__init__()
        self.add_module("0", InjectionBlock())
        self.add_module("1", nn.Identity())
        self.add_module("2", nn.Linear(512, 512))

    def forward(self, idd: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        return getattr(self, "2")(getattr(self, "0")(idd, att))


class InjectionResBlock(nn.Module):
    def __init__(self, num_blocks: int):
        super().__init__()
        self.att_path1 = nn.ModuleList(_InjectionPath() for _ in range(num_blocks))
        self.att_path2 = nn.ModuleList(_InjectionPath() for _ in range(num_blocks))

    def forward(self, idd: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        for p1, p2 in zip(self.att_path1, self.att_path2):
            att = p2(idd, p1(idd, att)) + att
        return att


class FaceTransferModule(nn.Module):
    """(source codes, target codes) [B, 18, 512] -> swapped codes [B, 18, 512]."""

    def __init__(self, typ: str = "ftm", num_blocks: int | None = None, swap_index: int = SWAP_INDEX,
                 num_latents: int = NUM_LATENTS):
        super().__init__()
        if typ not in SWAP_TYPES:
            raise ValueError(f"swap type must be one of {SWAP_TYPES}, got {typ!r}")
        self.type, self.swap_index = typ, swap_index
        n = num_latents - swap_index
        if num_blocks is None:
            num_blocks = 3 if typ == "ftm" else 1  # as in the official inference.py
        if typ == "ftm":
            self.blocks = nn.ModuleList(TransferCell(num_blocks) for _ in range(n))
            self.weight = nn.Parameter(torch.randn(1, n, 512))
        elif typ == "injection":
            self.blocks = nn.ModuleList(InjectionResBlock(num_blocks) for _ in range(n))

    def forward(self, idd: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        k = self.swap_index
        if self.type == "lcr":
            return torch.cat([att[:, :k], idd[:, k:]], 1)
        if self.type == "ftm":
            pairs = [blk(idd[:, k + i], att[:, k + i]) for i, blk in enumerate(self.blocks)]
            idds = torch.stack([p[0] for p in pairs], 1)
            atts = torch.stack([p[1] for p in pairs], 1)
            scale = torch.sigmoid(self.weight)
            high = scale * idds + (1 - scale) * atts
        else:
            high = torch.stack([blk(idd[:, k + i], att[:, k + i]) for i, blk in enumerate(self.blocks)], 1)
        return torch.cat([att[:, :k], high], 1)


class SoftErosion(nn.Module):
    """MegaFS's mask softener (inference.py): iterated min with a cone-kernel blur, then threshold.

    Kernel: max(d) - d for d the distance to the centre of a k x k grid, normalised to sum 1. Forward
    on [B, 1, H, W] masks: (iterations - 1) times x = min(x, blur(x)); x = blur(x); pixels >= threshold
    become 1 and the others are divided by their maximum, per mask. The official code divides by the
    maximum over the whole tensor (it runs on one mask); per mask is the same for batch 1.
    An empty mask (all below threshold with maximum 0) gives NaN officially and a mask with no pixel
    below the threshold raises there; here both raise SoftErosionError naming the case.
    """

    def __init__(self, kernel_size: int = 17, threshold: float = 0.9, iterations: int = 7):
        super().__init__()
        r = kernel_size // 2
        ax = torch.arange(float(kernel_size))
        yy, xx = torch.meshgrid(ax, ax, indexing="ij")
        dist = torch.sqrt((xx - r) ** 2 + (yy - r) ** 2)
        k = dist.max() - dist
        self.register_buffer("weight", (k / k.sum())[None, None], persistent=False)
        self.padding, self.iterations, self.threshold = r, iterations, threshold

    def forward(self, x: torch.Tensor):
        x = x.float()
        w = self.weight.to(x.dtype)
        for _ in range(self.iterations - 1):
            x = torch.minimum(x, F.conv2d(x, w, padding=self.padding))
        x = F.conv2d(x, w, padding=self.padding)
        mask = x >= self.threshold
        below = torch.where(mask, torch.zeros_like(x), x)
        peak = below.flatten(1).amax(1)
        if (~mask).flatten(1).sum(1).eq(0).any():
            raise SoftErosionError("the face mask covers the whole crop: no pixel below the SoftErosion threshold")
        if (peak <= 0).any():
            raise SoftErosionError("the face mask is empty (no face/mouth pixels): SoftErosion would divide by 0")
        x = torch.where(mask, torch.ones_like(x), x / peak.view(-1, 1, 1, 1))
        return x, mask


class SoftErosionError(ValueError):
    """A face mask that MegaFS's SoftErosion cannot normalise (empty, or full)."""
