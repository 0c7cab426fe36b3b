"""ArcFace IR-SE50 (TreB1eN/InsightFace_Pytorch, as used by pSp and REFace) and REFace's ID protocol.

The network follows TreB1eN's `Backbone(112, 50, 'ir_se')`, whose module names are the keys of the
released model_ir_se50.pth (a plain state_dict), so it loads with strict=True:

- input_layer: 3x3 conv (64, no bias), BatchNorm2d, PReLU;
- body.0 .. body.23: IR-SE units in four stages of 3, 4, 14, 3 units (64, 128, 256, 512 channels,
  the first unit of each stage with stride 2). A unit is res_layer (BatchNorm2d, 3x3 conv, PReLU,
  3x3 conv with the stride, BatchNorm2d, SE module: global mean, 1x1 conv to C/16, ReLU, 1x1 conv,
  sigmoid, times the input) plus shortcut_layer (MaxPool2d(1, stride) when the width is unchanged,
  else a strided 1x1 conv and BatchNorm2d). No activation after the sum;
- output_layer: BatchNorm2d(512), Dropout, flatten (7 x 7 x 512), Linear to 512, BatchNorm1d;
  the embedding is L2-normalised.

REFace's ID retrieval (eval_tool/ID_retrieval/ID_retrieval.py, `MaskedImagePathDataset` feeding
`IDLoss`) prepares each image, swap or source alike, as follows, and so does this backend:

1. RGB uint8 image resized to 112 x 112 (albumentations Resize: cv2 INTER_LINEAR);
2. to [-1, 1] ((x / 255 - 0.5) / 0.5);
3. times the face mask: the parsing labels in the keep list set to 1, others 0, resized to 112 x 112
   as a float tensor (torchvision Resize of that time on tensors: bilinear, no antialiasing); masked
   pixels become 0, mid-grey;
4. IDLoss.extract_feats: AdaptiveAvgPool2d(256) (here an upsampling from 112), crop rows 35:223 and
   columns 32:220, AdaptiveAvgPool2d(112), IR-SE50; the last, L2-normalised output is the embedding.

REFace reads its masks from label images parsed beforehand; swapbench parses every image itself with
the BiSeNet of swapbench.faces.parsing (at the eval crop's size), so a swap is masked by its own
parsing. The keep lists are parsing.REFACE_ID_KEEP (REFace's CelebA-HQ and FFHQ lists, which name
the same regions) and parsing.REFACE_ID_KEEP_FFPP (its FF++ list).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swapbench.faces import parsing
from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import to_uint8_rgb
from swapbench.weights import WeightFile, register, strip_prefix

IRSE50_WEIGHTS = register(
    WeightFile(
        name="arcface/model_ir_se50",
        filename="model_ir_se50.pth",
        url="https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view",
        licence="code MIT (TreB1eN/InsightFace_Pytorch, pSp); weights trained on MS-Celeb-1M derived data, research use",
        note=("the 'Arcface ID retrieval model' link of the REFace README (the pSp IR-SE50 file, Google Drive); "
              "also in the Hugging Face repo Sanoojan/REFace under Other_dependencies/arcface/"),
        manual=True,  # a Google Drive page, not a direct link
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


def reface_input(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """REFace's IR-SE50 input [B, 3, 112, 112] from RGB images [B, 3, H, W] in [0, 1] and 0/1 masks [B, H, W]."""
    import cv2

    small = [cv2.resize(a, (REFACE_RESIZE, REFACE_RESIZE), interpolation=cv2.INTER_LINEAR) for a in to_uint8_rgb(images)]
    x = torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5).to(masks.device)
    m = F.interpolate(masks[:, None].float(), size=(REFACE_RESIZE, REFACE_RESIZE), mode="bilinear",
                      align_corners=False, antialias=False)
    x = F.adaptive_avg_pool2d(x * m, REFACE_POOL)[:, :, REFACE_CROP[0], REFACE_CROP[1]]
    return F.adaptive_avg_pool2d(x, REFACE_RESIZE)


class REFaceID(nn.Module):
    """Face parser + IR-SE50: images [B, 3, H, W] RGB in [0, 1] -> embeddings [B, 512] by REFace's protocol."""

    def __init__(self, net: IRSE50, parser: parsing.FaceParser, keep):
        super().__init__()
        self.net, self.parser, self.keep = net, parser, tuple(keep)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        masks = parsing.keep_mask(self.parser.labels(images), self.keep)
        return self.net(reface_input(images, masks))


class ArcFaceIRSE50REFace(FeatureBackend):
    """ArcFace IR-SE50 embeddings of parsing-masked faces, as REFace's ID retrieval computes them."""

    name = "arcface_irse50_reface"
    family = "identity"
    dim = 512
    weights = (IRSE50_WEIGHTS, parsing.WEIGHTS)
    keep = parsing.REFACE_ID_KEEP
    input = ("RGB eval crop; BiSeNet parsing, keep " + ",".join(parsing.CLASSES[i] for i in keep)
             + "; cv2 bilinear resize to 112, [-1, 1], times the mask (bilinear to 112); adaptive pool to 256, "
             "crop [35:223, 32:220], adaptive pool to 112; IR-SE50, L2-normalised")
    licence = IRSE50_WEIGHTS.licence + "; BiSeNet weights: non-commercial research use"

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        net = IRSE50()
        net.load_state_dict(strip_prefix(self.open(IRSE50_WEIGHTS)), strict=True)
        bisenet = parsing.BiSeNet()
        bisenet.load_state_dict(strip_prefix(self.open(parsing.WEIGHTS)), strict=True)
        # `module` is the attribute the engine's feature extractor moves to the device.
        self.module = REFaceID(net, parsing.FaceParser(bisenet), self.keep).eval().to(self.device)

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        values = self.module(images.to(self.device, torch.float32)).float().cpu()
        n = values.shape[0]
        return Features(values=values, ok=torch.ones(n, dtype=torch.bool), reasons=[None] * n)


class ArcFaceIRSE50REFaceFFpp(ArcFaceIRSE50REFace):
    """REFace's ID retrieval with its FF++ keep list (skin, nose, eyes, ears)."""

    name = "arcface_irse50_reface_ffpp"
    keep = parsing.REFACE_ID_KEEP_FFPP
    input = ArcFaceIRSE50REFace.input.replace(
        ",".join(parsing.CLASSES[i] for i in ArcFaceIRSE50REFace.keep),
        ",".join(parsing.CLASSES[i] for i in parsing.REFACE_ID_KEEP_FFPP))
