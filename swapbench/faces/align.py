"""Aligned face crops.

Convention names are "<template>_<size>", e.g. "ffhq_256". The transform is a 2x3 affine matrix
from image pixels to crop pixels; it is kept with the crop so results can be pasted back.

ffhq: the crop of the FFHQ data set (NVlabs/ffhq-dataset, recreate_aligned_images): an oriented
square centred a little below the eyes, sized from the eye-to-eye and eye-to-mouth vectors of the
68 landmarks. FFHQ's extra step (reflect padding with a blurred border) is replaced by plain
reflection, since the face itself is unaffected.
"""

from __future__ import annotations

import cv2
import numpy as np

TEMPLATES = ("ffhq",)


def parse_convention(convention: str) -> tuple[str, int]:
    template, _, size = convention.rpartition("_")
    if template not in TEMPLATES or not size.isdigit():
        raise ValueError(f"unknown crop convention {convention!r}; expected one of {TEMPLATES} + '_<size>'")
    return template, int(size)


def ffhq_quad(lm: np.ndarray) -> np.ndarray:
    """The FFHQ crop square (4 corners: top-left, bottom-left, bottom-right, top-right) from 68 landmarks."""
    lm = np.asarray(lm, dtype=np.float64)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def transform(convention: str, landmarks: np.ndarray) -> np.ndarray:
    """2x3 affine matrix mapping image pixels to crop pixels."""
    template, size = parse_convention(convention)
    quad = ffhq_quad(landmarks)
    dst = np.array([[0, 0], [0, size], [size, size]], dtype=np.float32)
    return cv2.getAffineTransform(quad[:3].astype(np.float32), dst).astype(np.float64)


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp an RGB uint8 image into a size x size crop; strong reductions are pre-shrunk to avoid aliasing."""
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    shrink = int(np.floor(1 / scale / 2)) if scale < 0.5 else 1
    if shrink > 1:
        h, w = image.shape[:2]
        image = cv2.resize(image, (max(1, w // shrink), max(1, h // shrink)), interpolation=cv2.INTER_AREA)
        fx, fy = (w // shrink) / w, (h // shrink) / h
        matrix = matrix @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]
