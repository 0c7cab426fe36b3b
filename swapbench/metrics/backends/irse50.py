"""ArcFace IR-SE50 (TreB1eN/InsightFace_Pytorch, as used by pSp and REFace) and REFace's ID protocol.

The network is swapbench.faces.irse50 (shared with the REFace method; its docstring describes the
layers and the keys of the released model_ir_se50.pth, which loads with strict=True).

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
from swapbench.faces.irse50 import (  # noqa: F401 - re-exported: the network lives in faces
    IRSE50,
    IRSE50_WEIGHTS,
    REFACE_CROP,
    REFACE_POOL,
    REFACE_RESIZE,
    STAGES,
    BottleneckIRSE,
    SEModule,
    reface_pool_crop,
)
from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import to_uint8_rgb
from swapbench.weights import strip_prefix

def reface_input(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """REFace's IR-SE50 input [B, 3, 112, 112] from RGB images [B, 3, H, W] in [0, 1] and 0/1 masks [B, H, W]."""
    import cv2

    small = [cv2.resize(a, (REFACE_RESIZE, REFACE_RESIZE), interpolation=cv2.INTER_LINEAR) for a in to_uint8_rgb(images)]
    x = torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5).to(masks.device)
    m = F.interpolate(masks[:, None].float(), size=(REFACE_RESIZE, REFACE_RESIZE), mode="bilinear",
                      align_corners=False, antialias=False)
    return reface_pool_crop(x * m)


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
