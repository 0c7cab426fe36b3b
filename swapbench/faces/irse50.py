"""ArcFace IR-SE50 (TreB1eN/InsightFace_Pytorch `Backbone(112, 50, 'ir_se')`, as used by pSp and REFace).

One implementation for every user: REFace's identity input (swapbench.methods.reface) and the
`arcface_irse50_reface` identity backend (swapbench.metrics.backends.irse50), which adds REFace's
ID-retrieval preprocessing. Module names are the keys of the released model_ir_se50.pth (a plain
state_dict), so it loads with strict=True:

- input_layer: 3x3 conv (64, no bias), BatchNorm2d, PReLU;
- body.0 .. body.23: IR-SE units in four stages of 3, 4, 14, 3 units (64, 128, 256, 512 channels,
  the first unit of each stage with stride 2). A unit is res_layer (BatchNorm2d, 3x3 conv, PReLU,
  3x3 conv with the stride, BatchNorm2d, SE module: global mean, 1x1 conv to C/16, ReLU, 1x1 conv,
  sigmoid, times the input) plus shortcut_layer (MaxPool2d(1, stride) when the width is unchanged,
  else a strided 1x1 conv and BatchNorm2d). No activation after the sum;
- output_layer: BatchNorm2d(512), Dropout, flatten (7 x 7 x 512), Linear to 512, BatchNorm1d;
  the embedding is L2-normalised.

`reface_pool_crop` is REFace's `IDLoss.extract_feats` input step (AdaptiveAvgPool2d(256), rows 35:223,
columns 32:220, AdaptiveAvgPool2d(112)), shared by the method and the backend.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.weights import WeightFile, register

IRSE50_WEIGHTS = register(
    WeightFile(
        name="arcface/model_ir_se50",
        filename="model_ir_se50.pth",
        url="https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view",
        licence="code MIT (TreB1eN/InsightFace_Pytorch, pSp); weights trained on MS-Celeb-1M derived data, research use",
        note=("the 'Arcface ID retrieval model' link of the REFace README (the pSp IR-SE50 file, Google Drive); "
              "also in the Hugging Face repo Sanoojan/REFace under Other_dependencies/arcface/"),
    )
)[0]

STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))  # (in, out, units) of IR-50
REFACE_RESIZE = 112
REFACE_POOL = 256
REFACE_CROP = (slice(35, 223), slice(32, 220))  # rows, columns of the 256 image


class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * w


class BottleneckIRSE(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cin == cout:
            self.shortcut_layer = nn.MaxPool2d(1, stride)  # a strided subsampling, no parameters
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            SEModule(cout),
        )

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE50(nn.Module):
    """IR-SE50 on 112 x 112 inputs in [-1, 1]: [B, 3, 112, 112] -> L2-normalised [B, 512]."""

    def __init__(self):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        # output_layer before body: the release's key order
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512), nn.Dropout(0.6), nn.Flatten(), nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512)
        )
        units = []
        for cin, cout, n in STAGES:
            units += [BottleneckIRSE(cin, cout, 2)] + [BottleneckIRSE(cout, cout, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


def reface_pool_crop(x: torch.Tensor) -> torch.Tensor:
    """REFace's IDLoss.extract_feats preprocessing: adaptive pool to 256, crop [35:223, 32:220], pool to 112."""
    x = F.adaptive_avg_pool2d(x, REFACE_POOL)[:, :, REFACE_CROP[0], REFACE_CROP[1]]
    return F.adaptive_avg_pool2d(x, REFACE_RESIZE)
