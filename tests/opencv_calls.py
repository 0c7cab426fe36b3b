"""The OpenCV calls the ports make, on fixed inputs (shared by tests/test_opencv_calls.py and its golden).

The official implementations ran on OpenCV 4; OpenCV 5 fills polygon edges and rounds its bilinear weights
differently, which moves DiffSwap's masks by a pixel and Face-Adapter's crops by a level. Each entry below is
one call as a port makes it (same flags, dtypes and sizes, smaller images).
"""

from __future__ import annotations

import cv2
import numpy as np


def _image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A fixed uint8 image: smooth gradients plus seeded noise, so interpolation weights show in every pixel."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 127.5 + 60 * np.sin(x / 7.0)[..., None] * np.cos(y / 5.0)[..., None] * np.ones(channels)
    noise = np.random.default_rng(seed).integers(-60, 61, size=(h, w, channels))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def calls() -> dict[str, np.ndarray]:
    out = {}
    # DiffSwap organ / hull masks: fillPoly of an int32 hull on a float64 canvas, vertices on pixel edges
    poly = np.array([[10, 3], [40, 12], [52, 40], [30, 58], [6, 35]], np.int32)
    out["fillpoly_hull"] = cv2.fillPoly(np.zeros((64, 64)), pts=[poly], color=(255, 255, 255)) > 0
    thin = np.array([[5, 5], [60, 20], [6, 7]], np.int32)  # a sliver: edge pixels decide everything
    out["fillpoly_sliver"] = cv2.fillPoly(np.zeros((64, 64)), pts=[thin], color=(255, 255, 255)) > 0
    # Face-Adapter: landmark dots (filled radius-2 circles)
    canvas = np.zeros((32, 32, 3), np.uint8)
    for x, y in ((3, 4), (15, 16), (29, 2)):
        canvas = cv2.circle(canvas, (x, y), radius=2, color=(255, 128, 0), thickness=-1)
    out["circle"] = canvas
    # Face-Adapter: the 256 crop (similarity, INTER_LINEAR) and the landmark image (inverse map)
    img = _image(96, 96)
    angle, scale = 0.3, 0.77
    m = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 20.3],
                  [scale * np.sin(angle), scale * np.cos(angle), -7.1]], np.float64)
    out["warp_linear"] = cv2.warpAffine(img, m, (64, 64), flags=cv2.INTER_LINEAR)
    out["warp_inverse"] = cv2.warpAffine(img[:64, :64], m, (96, 96), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                         borderMode=cv2.BORDER_CONSTANT)
    # REFace source 512 -> 224, MegaFS / FSLSD 1024 -> 256, DiffSwap uint8 masks to each pyramid level
    out["resize_to_224_like"] = cv2.resize(_image(160, 160, seed=1), (70, 70), interpolation=cv2.INTER_LINEAR)
    out["resize_by_4"] = cv2.resize(_image(128, 128, seed=2), (32, 32), interpolation=cv2.INTER_LINEAR)
    mask = (_image(63, 63, 1, seed=3)[..., 0] > 127).astype(np.uint8)
    out["resize_mask_up"] = cv2.resize(mask, (63, 63))  # level 0: same size
    out["resize_mask_level"] = cv2.resize(cv2.resize(mask, (32, 32)), (16, 16))
    return out
