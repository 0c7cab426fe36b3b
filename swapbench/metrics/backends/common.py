"""Helpers shared by the feature backends."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from swapbench.faces import warp
from swapbench.metrics.backends.base import Features

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_uint8_rgb(images: torch.Tensor) -> list[np.ndarray]:
    """float [B, 3, H, W] in [0, 1] -> list of uint8 [H, W, 3] arrays (what OpenCV/dlib/mediapipe take)."""
    if images.ndim != 4:
        raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
    return list(warp.to_uint8(images))


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def pil_bicubic_uint8(images: torch.Tensor, size: int, center_crop: bool = False) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] -> [B, 3, size, size] in [0, 1], as an image file read and resized with PIL.

    Rounded to uint8, optionally cut to the centred square, resized by PIL's bicubic filter on the 8-bit RGB
    image (antialiased when shrinking; 8-bit output), / 255: what torchvision's Resize does to a PIL image
    (dgm-eval's DINOv2 input) and what CMMD's `_center_crop_and_resize` does. A float resize differs by the
    rounding of the output and by overshoot that PIL clips.
    """
    out = []
    for rgb in to_uint8_rgb(images):
        im = Image.fromarray(rgb)
        if center_crop:
            w, h = im.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            im = im.crop((left, top, left + side, top + side))
        out.append(np.asarray(im.resize((size, size), resample=Image.BICUBIC)))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize with antialiasing, close to PIL's bilinear resize used by torchvision transforms."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def features_from_rows(rows: list, dim: int, backend: str) -> Features:
    """Features from per-image vectors, where None means no face was found."""
    values = torch.zeros(len(rows), dim, dtype=torch.float32)
    ok = torch.zeros(len(rows), dtype=torch.bool)
    reasons = []
    for i, row in enumerate(rows):
        if row is None:
            reasons.append(f"no face found by {backend}")
            continue
        values[i] = torch.as_tensor(np.asarray(row, dtype=np.float32))
        ok[i] = True
        reasons.append(None)
    return Features(values=values, ok=ok, reasons=reasons)


def expected_bins(logits: torch.Tensor, width: float, start: float) -> torch.Tensor:
    """Hopenet/L2CS angle regression: softmax over bins, expectation of the bin index, times width plus start."""
    idx = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (logits.softmax(dim=1) * idx).sum(dim=1) * width + start


