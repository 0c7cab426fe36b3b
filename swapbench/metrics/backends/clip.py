"""CLIP ViT-L/14@336 image embeddings for CMMD (Jayasumana et al., CVPR 2024).

The authors (google-research/cmmd, io_util.py and embedding.py) read each image file with PIL, cut the
centred square, resize it to 336 with PIL's bicubic filter (8-bit output), divide by 255, resize with
jax.image.resize (bicubic, to the same 336: the identity), subtract CLIP's mean and divide by its std, and
take scenic's CLIP ViT-L/14@336 image embedding, L2-normalised; CMMD (swapbench.metrics.cmmd) compares
those embeddings. swapbench does the same to the eval crop (rounded to uint8 first). The network loads
through transformers (`CLIPVisionModelWithProjection`, `image_embeds`) from a user-supplied folder (a
snapshot of openai/clip-vit-large-patch14-336); scenic's network itself (flax) is not run here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import pil_bicubic_uint8
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
    """L2-normalised CLIP image embeddings of images resized as CMMD does (PIL bicubic, 8 bit) to the model's size."""

    name = "clip_vitl14_336"
    family = "clip"
    dim = 768
    weights = (CLIP_L14_336,)
    licence = CLIP_L14_336.licence
    input = ("RGB in [0, 1] rounded to uint8; centred square, PIL bicubic resize to 336 (8-bit, CMMD); CLIP mean/std; "
             "image_embeds, L2-normalised")

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        from transformers import CLIPVisionModelWithProjection

        model = CLIPVisionModelWithProjection.from_pretrained(str(self.open(CLIP_L14_336)))
        self.size = model.config.vision_config.image_size if hasattr(model.config, "vision_config") else model.config.image_size
        self.dim = model.config.projection_dim
        self.module = model.eval().to(self.device)

    @property
    def feature_name(self) -> str:
        return f"{self.name}/cmmd"  # features of the earlier float resize are not reused

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> the network's pixel_values [B, 3, size, size], as CMMD's code makes them."""
        x = pil_bicubic_uint8(images, self.size, center_crop=True)
        return (x - x.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)) / x.new_tensor(CLIP_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        emb = self.module(pixel_values=self.preprocess(images).to(self.device)).image_embeds.float().cpu()
        values = F.normalize(emb, dim=1)
        ok = torch.isfinite(values).all(dim=1)
        return Features(values, ok, [None if o else "non-finite CLIP embeddings" for o in ok.tolist()])
