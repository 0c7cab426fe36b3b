"""H3R 106-point LaPa landmark detector (baoshengyu/H3R @ 52a8bde, models/lapa/hrnet18_256x256_p2).

FSLSD-HiRes's landmarks come from this model (its first test.py imported torchalign's
FacialLandmarkDetector); the official release ships them precomputed for CelebA-HQ, in 256-pixel units.
Written from the H3R code (torchalign/backbone/hrnet.py, heatmap_head/*, api.py); parameter names are
those of torchalign.FacialLandmarkDetector, so model.pth loads strictly:

- backbone: HRNet-W18 (stem of two stride-2 3x3 convs, layer1 of 4 bottlenecks, stages 2-4 with 1, 4
  and 3 modules of 2, 3 and 4 branches of 4 basic blocks, widths 18/36/72/144, fuse layers with
  nearest upsampling and strided 3x3 convs); output: the four branches bilinearly resized
  (align_corners=False) to the 64 x 64 branch and concatenated (270 channels);
- heatmap_head: 1x1 conv 270 -> 270, BN, ReLU, 1x1 conv -> 2 x 106 "binary" heatmaps; the second set
  is decoded per landmark as the softmax-weighted mean of the positions of its 9 highest scores,
  times the stride 4;
- detect(images): ImageNet normalisation, the net on the image and on its mirror (flip test: x -> 255 - x
  and the LaPa flip order), the mean of both. With no box (the whole 256 image, as FSLSD's 256-pixel
  landmarks imply) the crop and its inverse are the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.weights import WeightFile

H3R_FILE = WeightFile(
    name="fslsd/h3r_lapa_hrnet18",
    filename="h3r_lapa_hrnet18_256x256_p2.pth",
    url="https://github.com/baoshengyu/H3R/raw/master/models/lapa/hrnet18_256x256_p2/model.pth",
    licence="no licence stated in baoshengyu/H3R; trained on LaPa (JDAI-CV, research use)",
    note="H3R models/lapa/hrnet18_256x256_p2/model.pth (Git LFS; also in the README's Google Drive zip "
         "https://drive.google.com/file/d/148gJAnPfgfWl-xc6eLIcjQy9a0HM6Fu9/view); save it under this name",
    sha256="899718abfc201d28bfe78c946143821a8134a935bde6cc3b833ab6e4b57504c4",  # the Git LFS object id
)

SIZE = 256
STRIDE = 4.0
TOPK = 9
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FLIP_ORDER = (
    32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15,
    14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 46, 45, 44,
    43, 42, 50, 49, 48, 47, 37, 36, 35, 34, 33, 41, 40, 39, 38, 51, 52, 53,
    54, 65, 64, 63, 62, 61, 60, 59, 58, 57, 56, 55, 79, 78, 77, 76, 75, 82,
    81, 80, 83, 70, 69, 68, 67, 66, 73, 72, 71, 74, 90, 89, 88, 87, 86, 85,
    84, 95, 94, 93, 92, 91, 100, 99, 98, 97, 96, 103, 102, 101, 105, 104,
)  # models/lapa/hrnet18_256x256_p2/config.yaml INPUT.FLIP_ORDER
WIDTHS = (18, 36, 72, 144)
MODULES = (1, 4, 3)  # stages 2, 3, 4


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + x)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        if cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        skip = self.downsample(x) if hasattr(self, "downsample") else x
        return F.relu(out + skip)


class HRModule(nn.Module):
    """Parallel branches of 4 basic blocks, then every output branch sums all inputs brought to its scale."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(w, w) for _ in range(4)]) for w in widths)
        fuse = []
        for i in range(n):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:  # 1x1 conv + BN, nearest upsampling by 2^(j - i)
                    row.append(nn.Sequential(nn.Conv2d(widths[j], widths[i], 1, bias=False), nn.BatchNorm2d(widths[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:  # i - j strided 3x3 convs, ReLU between them, the last to widths[i]
                    steps = [_conv_bn(widths[j], widths[j], 3, 2) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(widths[j], widths[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse) if n > 1 else None

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [b(x) for b, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(F.relu(y))
        return out


class HRNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.layer1 = nn.Sequential(Bottleneck(64, 64), *[Bottleneck(256, 64) for _ in range(3)])
        pre = [256]
        for s, n_mod in enumerate(MODULES):
            cur = list(WIDTHS[: s + 2])
            trans: list[nn.Module | None] = []
            for i, w in enumerate(cur):
                if i < len(pre):
                    trans.append(_conv_bn(pre[i], w, 3) if pre[i] != w else None)
                else:  # a new branch from the lowest-resolution one
                    trans.append(nn.Sequential(*[_conv_bn(pre[-1], w if k == i - len(pre) else pre[-1], 3, 2)
                                                 for k in range(i + 1 - len(pre))]))
            setattr(self, f"transition{s + 1}", nn.ModuleList(trans))
            setattr(self, f"stage{s + 2}", nn.Sequential(*[HRModule(tuple(cur)) for _ in range(n_mod)]))
            pre = cur

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for s in range(len(MODULES)):
            trans = getattr(self, f"transition{s + 1}")
            xs = [ys[i] if t is None else t(ys[i] if i < len(ys) else ys[-1]) for i, t in enumerate(trans)]
            ys = getattr(self, f"stage{s + 2}")(xs)
        size = ys[0].shape[-2:]
        return torch.cat([F.interpolate(y, size=size, mode="bilinear", align_corners=False) for y in ys], 1)


class BinaryHeadBlock(nn.Module):
    def __init__(self, cin: int = sum(WIDTHS), proj: int = sum(WIDTHS), n_points: int = 106):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(cin, proj, 1, bias=False), nn.BatchNorm2d(proj), nn.ReLU(),
                                    nn.Conv2d(proj, 2 * n_points, 1, bias=False))

    def forward(self, x):
        n, _, h, w = x.shape
        return self.layers(x).view(n, 2, -1, h, w)


class HeatmapHead(nn.Module):
    def __init__(self, n_points: int = 106):
        super().__init__()
        self.head = BinaryHeadBlock(n_points=n_points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heat = self.head(x)[:, 1]
        n, c, _, w = heat.shape
        score, index = heat.reshape(n, c, 1, -1).topk(TOPK, dim=-1)
        coord = torch.cat([index % w, index // w], dim=2)
        return STRIDE * (coord * F.softmax(score, dim=-1)).sum(-1)


class H3R(nn.Module):
    """torchalign.FacialLandmarkDetector for models/lapa/hrnet18_256x256_p2."""

    def __init__(self):
        super().__init__()
        self.backbone = HRNet18()
        self.heatmap_head = HeatmapHead(106)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised [B, 3, 256, 256] -> [B, 106, 2] (x, y) in input pixels, no flip test."""
        return self.heatmap_head(self.backbone(x))

    def detect(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, 256, 256] in [0, 1] -> landmarks [B, 106, 2] with the flip test."""
        mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
        data = (images.float() - mean) / std
        lm = self(data)
        data = data.flip(dims=[-1])
        lm_flip = self(data)
        lm_flip[..., 0] = data.shape[-1] - 1 - lm_flip[..., 0]
        # not a buffer: a module built on `meta` and moved with to_empty would hold garbage indices there
        lm_flip = lm_flip[:, torch.tensor(FLIP_ORDER, device=images.device)]
        return (lm + lm_flip) / 2.0
