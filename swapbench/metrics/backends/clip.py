"""CLIP ViT-L/14@336 image embeddings for CMMD (Jayasumana et al., CVPR 2024).

The authors embed each image with CLIP ViT-L/14 at 336 px (bicubic resize, CLIP's mean and std) and
L2-normalise the projected image embedding; CMMD (swapbench.metrics.cmmd) compares those embeddings.
The network loads through transformers (`CLIPVisionModelWithProjection`, `image_embeds`) from a
user-supplied folder (a snapshot of openai/clip-vit-large-patch14-336). Eval crops are square, so the
resize needs no centre crop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.weights import Member, WeightFile, register

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_L14_336 = register(
    WeightFile(
        name="clip/vit-large-patch14-336", filename="clip-vit-large-patch14-336", format="folder",
        url="hf://openai/clip-vit-large-patch14-336", licence="MIT (openai/CLIP)", manual=True,
        members=(Member(("config.json",)), Member(("model.safetensors", "pytorch_model.bin"))),
        note="transformers snapshot of openai/clip-vit-large-patch14-336 (`huggingface-cli download "
             "openai/clip-vit-large-patch14-336 --local-dir clip-vit-large-patch14-336`); no checksums published"),
)[0]


class CLIPEmbeddings(FeatureBackend):
    """L2-normalised CLIP image embeddings of images resized (bicubic) to the model's size."""

    name = "clip_vitl14_336"
    family = "clip"
    dim = 768
    weights = (CLIP_L14_336,)
    licence = CLIP_L14_336.licence
    input = "RGB in [0, 1]; bicubic (antialiased) resize to 336; CLIP mean/std; image_embeds, L2-normalised"

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        from transformers import CLIPVisionModelWithProjection

        model = CLIPVisionModelWithProjection.from_pretrained(str(self.open(CLIP_L14_336)))
        self.size = model.config.vision_config.image_size if hasattr(model.config, "vision_config") else model.config.image_size
        self.dim = model.config.projection_dim
        self.module = model.eval().to(self.device)

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        x = F.interpolate(images.float(), size=(self.size, self.size), mode="bicubic", align_corners=False, antialias=True)
        mean, std = x.new_tensor(CLIP_MEAN).view(1, 3, 1, 1), x.new_tensor(CLIP_STD).view(1, 3, 1, 1)
        emb = self.module(pixel_values=((x - mean) / std).to(self.device)).image_embeds.float().cpu()
        values = F.normalize(emb, dim=1)
        ok = torch.isfinite(values).all(dim=1)
        return Features(values, ok, [None if o else "non-finite CLIP embeddings" for o in ok.tolist()])
