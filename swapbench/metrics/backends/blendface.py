"""BlendFace's identity encoder (mapooon/BlendFace, ICCV 2023) as an identity backend: `blendface_r100`.

The network is insightface arcface_torch's iresnet100 (BlendFace iresnet.py @ 0203d91), the one in
swapbench.faces.iresnet: same 925 keys, so the released `blendface.pt` (a plain state_dict, no prefix)
loads strictly. BlendFace's demo.py feeds 112 x 112 RGB faces aligned to insightface's ArcFace template,
/255, (x - 0.5) / 0.5, fp32, and L2-normalises the 512-d `features` output; here the face is re-aligned
to that template inside the eval crop exactly as the insightface backends do (dlib 5 points, bilinear,
zero border; swapbench.metrics.backends.arcface_onnx). A crop without a face has no embedding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from swapbench.faces.iresnet import iresnet100
from swapbench.faces.warp import align_batch
from swapbench.metrics.backends.arcface_onnx import ARCFACE_SIZE, arcface_matrices
from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.weights import WeightFile, check_fits, register, strip_prefix

BLENDFACE_WEIGHTS = register(
    WeightFile(
        name="blendface/blendface",
        filename="blendface.pt",
        url="https://drive.google.com/file/d/1FSCUC5CbyPKnl5Bbt58tPcKCVOyyt004/view",
        licence="CC BY-NC-SA 4.0 (mapooon/BlendFace code and models): non-commercial, share-alike",
        note="BlendFace README 'checkpoints/blendface.pt' (Google Drive); no checksum published",
        manual=True,  # a Google Drive page, not a direct link
    )
)[0]


class BlendFaceR100(FeatureBackend):
    """BlendFace iresnet100 embeddings of faces re-aligned to the ArcFace 112 template."""

    name = "blendface_r100"
    family = "identity"
    dim = 512
    weights = (BLENDFACE_WEIGHTS,)
    licence = BLENDFACE_WEIGHTS.licence
    input = ("RGB eval crop; dlib HOG + 68 landmarks -> 5 points -> insightface ArcFace template (similarity, "
             "112x112, bilinear, zero border); (x - 0.5) / 0.5; BlendFace iresnet100, L2-normalised")
    arch = staticmethod(iresnet100)  # the released file's network (tests use the same file layout at iresnet18)

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        net = self.arch()
        state = strip_prefix(self.open(BLENDFACE_WEIGHTS))
        check_fits(net, state, BLENDFACE_WEIGHTS, "BlendFace iresnet100 encoder")
        net.load_state_dict(state, strict=True)
        self.module = net.eval().to(self.device)

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        images = images.float()
        matrices, reasons = arcface_matrices(images)
        ok = torch.tensor([m is not None for m in matrices], dtype=torch.bool)
        values = torch.zeros(len(ok), self.dim, dtype=torch.float32)
        if ok.any():
            found = np.stack([m for m in matrices if m is not None])
            crops = align_batch(images[ok.to(images.device)], found, ARCFACE_SIZE, padding_mode="zeros").clamp(0, 1)
            values[ok] = F.normalize(self.module((crops.to(self.device) - 0.5) / 0.5).float().cpu(), dim=1)
        reasons = [None if good else f"{r} ({self.name})" for good, r in zip(ok.tolist(), reasons)]
        return Features(values=values, ok=ok, reasons=reasons)
