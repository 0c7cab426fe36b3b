"""DINOv2 ViT-L/14 CLS features for the set-level metrics (FD-DINOv2, Stein et al., NeurIPS 2023).

Stein et al. (layer6ai-labs/dgm-eval @ 74c79f7, `DINOv2Encoder`, default `clean_resize=False`) read each
image file with PIL, resize it with torchvision's `Resize((224, 224), BICUBIC)` (PIL's bicubic on the
8-bit image, 8-bit output), divide by 255, normalise with the ImageNet mean and std and take the torch.hub
`dinov2_vitl14` output: the final-layer-normed CLS token (1024-d); the Fréchet distance on these features
is their FD_DINOv2. swapbench does the same to the eval crop (rounded to uint8 first). The network loads
through transformers (`Dinov2Model`, whose `pooler_output` is that normed CLS token) from a user-supplied
folder (a snapshot of facebook/dinov2-large). One difference is removed here: the hub model resamples its
37 x 37 position embeddings to the 16 x 16 grid of a 224 input with scale factor (16 + 0.1) / 37 (its
`interpolate_offset`, bicubic, no antialias), transformers with output size 16, which samples other
positions; the backend resamples them once the hub's way at load time (`hub_position_embeddings`).

The backend belongs to the set-level family, so a run that names it (`metrics: {inception: dinov2_vitl14}`)
gets the family's Fréchet distance, KID, PRD and precision/recall on DINOv2 features, stored under
`dinov2_vitl14/dgm_eval` with the reference statistics cached like Inception's; the leaderboards show them
as FD-DINOv2, FD∞-DINOv2, KD-DINOv2 and PRD / P / R (DINOv2), never in FID's columns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import imagenet_normalize, pil_bicubic_uint8
from swapbench.weights import Member, WeightFile, register

DINOV2_SIZE = 224
HUB_INTERPOLATE_OFFSET = 0.1  # dinov2/hub/backbones.py `interpolate_offset`
DINOV2_LARGE = register(
    WeightFile(
        name="dinov2/vitl14", filename="dinov2-large", format="folder", url="hf://facebook/dinov2-large",
        licence="Apache-2.0 (facebook/dinov2-large)", manual=True,
        members=(Member(("config.json",)), Member(("model.safetensors", "pytorch_model.bin"))),
        note="transformers snapshot of facebook/dinov2-large (`huggingface-cli download facebook/dinov2-large "
             "--local-dir dinov2-large`); the Hub publishes no checksums"),
)[0]


def hub_position_embeddings(model, size: int) -> None:
    """Resample a transformers Dinov2Model's position embeddings for `size` inputs as the torch.hub model does.

    The hub's `interpolate_pos_encoding` calls bicubic interpolation with scale factor (grid + 0.1) / M on the
    M x M table (no antialias, in float32); the result replaces the table, so transformers, seeing a table of the
    input's grid, uses it as is.
    """
    emb = model.embeddings
    pos = emb.position_embeddings.data
    side, grid = round((pos.shape[1] - 1) ** 0.5), size // model.config.patch_size
    if side == grid:
        return
    scale = (grid + HUB_INTERPOLATE_OFFSET) / side
    table = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    table = F.interpolate(table, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    table = table.permute(0, 2, 3, 1).reshape(1, grid * grid, -1).to(pos.dtype)
    emb.position_embeddings = nn.Parameter(torch.cat([pos[:, :1], table], dim=1), requires_grad=False)


class DINOv2Features(FeatureBackend):
    """DINOv2 ViT-L/14 normed CLS token of images resized as dgm-eval does (PIL bicubic, 8 bit) to 224."""

    name = "dinov2_vitl14"
    family = "inception"  # the set-level family: FID and the other set metrics on these features
    dim = 1024
    weights = (DINOV2_LARGE,)
    licence = DINOV2_LARGE.licence
    input = ("RGB in [0, 1] rounded to uint8; PIL bicubic resize to 224 (8-bit, dgm-eval); ImageNet mean/std; "
             "Dinov2Model pooler_output with the hub's position-embedding resampling")

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        from transformers import Dinov2Model

        model = Dinov2Model.from_pretrained(str(self.open(DINOV2_LARGE)))
        self.dim = model.config.hidden_size  # 1024 for ViT-L/14 (other sizes in tests)
        hub_position_embeddings(model, DINOV2_SIZE)
        self.module = model.eval().to(self.device)

    @property
    def feature_name(self) -> str:
        return f"{self.name}/dgm_eval"  # features and reference statistics of the earlier float resize are not reused

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> the network's pixel_values [B, 3, 224, 224], as dgm-eval makes them."""
        return imagenet_normalize(pil_bicubic_uint8(images, DINOV2_SIZE))

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        values = self.module(pixel_values=self.preprocess(images).to(self.device)).pooler_output.float().cpu()
        ok = torch.isfinite(values).all(dim=1)
        return Features(values, ok, [None if o else "non-finite DINOv2 features" for o in ok.tolist()])
