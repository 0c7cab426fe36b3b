"""Real face crops for tests: the bundled sample photographs, cropped around the dlib detection.

Stands in for FFHQ alignment: a square box of 1.8x the dlib box, centred on it, resized to 256.
"""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np
from PIL import Image


def sample_photos() -> dict[str, np.ndarray]:
    import insightface
    import matplotlib.cbook
    import skimage.data

    images = os.path.join(os.path.dirname(insightface.__file__), "data", "images")
    return {
        "astronaut": skimage.data.astronaut(),
        "grace_hopper": np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")),
        "tom_hanks": np.asarray(Image.open(os.path.join(images, "Tom_Hanks_54745.png")).convert("RGB")),
        "t1": np.asarray(Image.open(os.path.join(images, "t1.jpg")).convert("RGB")),
    }


def crop_box(image: np.ndarray, rect, scale: float = 1.8, size: int = 256) -> np.ndarray:
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    s = size / (max(rect.width(), rect.height()) * scale)
    m = np.float32([[s, 0, size / 2 - cx * s], [0, s, size / 2 - cy * s]])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


@functools.lru_cache(maxsize=1)
def sample_crops() -> dict[str, np.ndarray]:
    """name -> uint8 [256, 256, 3] RGB crop; group photo faces are named t1_0 .. t1_5 left to right."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    crops = {}
    for name, image in sample_photos().items():
        rects, scores, _ = detector.run(image, 1)
        if name == "t1":
            rects = sorted(rects, key=lambda r: r.left())
        else:  # the astronaut's mission patch is also detected: keep the most confident box
            rects = [rects[int(np.argmax(scores))]]
        for i, rect in enumerate(rects):
            crops[name if name != "t1" else f"t1_{i}"] = crop_box(image, rect)
    return crops


def to_tensor(*crops: np.ndarray):
    import torch

    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


def smooth_batch(seed: int, n: int = 3, size: int = 256):
    """A FaceBatch of n smooth random images (bilinear 16 px noise) with zero landmarks: inputs for
    methods whose swap does not read landmarks."""
    import torch

    from swapbench.methods.base import FaceBatch

    g = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.interpolate(torch.rand(n, 3, 16, 16, generator=g), size=(size, size), mode="bilinear")
    return FaceBatch(img, torch.zeros(n, 68, 2))
