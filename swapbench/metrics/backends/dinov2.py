"""DINOv2 ViT-L/14 CLS features for the set-level metrics (FD-DINOv2, Stein et al., NeurIPS 2023).

Stein et al. (dgm-eval) embed each image with DINOv2 ViT-L/14 after a bicubic resize to 224 and ImageNet
normalisation and take the final-layer-normed CLS token (1024-d); the Fréchet distance on these features
is their FD_DINOv2. The network loads through transformers (`Dinov2Model`, whose `pooler_output` is that
normed CLS token) from a user-supplied folder (a snapshot of facebook/dinov2-large). The backend belongs
to the set-level family, so a run that names it (`metrics: {inception: dinov2_vitl14}`) gets FID, KID,
PRD and precision/recall on DINOv2 features, recorded under the backend's name, with the reference
statistics cached per backend like Inception's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import imagenet_normalize
from swapbench.weights import Member, WeightFile, register

DINOV2_SIZE = 224
DINOV2_LARGE = register(
    WeightFile(
        name="dinov2/vitl14", filename="dinov2-large", format="folder", url="hf://facebook/dinov2-large",
        licence="Apache-2.0 (facebook/dinov2-large)", manual=True,
        members=(Member(("config.json",)), Member(("model.safetensors", "pytorch_model.bin"))),
        note="transformers snapshot of facebook/dinov2-large (`huggingface-cli download facebook/dinov2-large "
             "--local-dir dinov2-large`); the Hub publishes no checksums"),
)[0]


class DINOv2Features(FeatureBackend):
    """DINOv2 ViT-L/14 normed CLS token of images resized (bicubic) to 224 and ImageNet-normalised."""

    name = "dinov2_vitl14"
    family = "inception"  # the set-level family: FID and the other set metrics on these features
    dim = 1024
    weights = (DINOV2_LARGE,)
    licence = DINOV2_LARGE.licence
    input = "RGB in [0, 1]; bicubic (antialiased) resize to 224; ImageNet mean/std; Dinov2Model pooler_output"

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        from transformers import Dinov2Model

        model = Dinov2Model.from_pretrained(str(self.open(DINOV2_LARGE)))
        self.dim = model.config.hidden_size  # 1024 for ViT-L/14 (other sizes in tests)
        self.module = model.eval().to(self.device)

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        x = F.interpolate(images.float(), size=(DINOV2_SIZE, DINOV2_SIZE), mode="bicubic", align_corners=False,
                          antialias=True)
        values = self.module(pixel_values=imagenet_normalize(x).to(self.device)).pooler_output.float().cpu()
        ok = torch.isfinite(values).all(dim=1)
        return Features(values, ok, [None if o else "non-finite DINOv2 features" for o in ok.tolist()])
