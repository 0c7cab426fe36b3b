"""Aligned face crops.

Convention names are "<template>_<size>", e.g. "ffhq_256". The transform is a 2x3 affine matrix
from image pixels to crop pixels; it is kept with the crop so results can be pasted back.

ffhq: the crop of the FFHQ data set (NVlabs/ffhq-dataset, recreate_aligned_images): an oriented
square centred a little below the eyes, sized from the eye-to-eye and eye-to-mouth vectors of the
68 landmarks. FFHQ's extra step (reflect padding with a blurred border) is replaced by plain
reflection, since the face itself is unaffected.

ghost: the crop GHOST (sber-swap) was trained and evaluated on: 5 points (eye centres, nose tip,
mouth corners) fitted by a similarity transform to each of the five pose templates of insightface
0.2's face_align (src1..src5, left profile to right profile, defined at 112 px and scaled by
size/112) and the template with the smallest summed point error kept, as its estimate_norm does
with mode != 'arcface'. arcface: insightface's single ArcFace template (arcface_dst) the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

from skimage.transform import estimate_transform

TEMPLATES = ("ffhq", "ghost", "arcface")

# insightface 0.2 python-package/insightface/utils/face_align.py, 112x112 pixel coordinates of
# (left eye, right eye, nose tip, left mouth corner, right mouth corner) as seen in the image.
POSE_TEMPLATES_112 = np.array([
    [[51.642, 50.115], [57.617, 49.990], [35.740, 69.007], [51.157, 89.050], [57.025, 89.702]],
    [[45.031, 50.118], [65.568, 50.872], [39.677, 68.111], [45.177, 86.190], [64.246, 86.758]],
    [[39.730, 51.138], [72.270, 51.138], [56.000, 68.493], [42.463, 87.010], [69.537, 87.010]],
    [[46.845, 50.872], [67.382, 50.118], [72.737, 68.111], [48.167, 86.758], [67.236, 86.190]],
    [[54.796, 49.990], [60.771, 50.115], [76.673, 69.007], [55.388, 89.702], [61.257, 89.050]],
])
ARCFACE_112 = np.array([[[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]]])


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


def five_points(lm: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners from 68 landmarks."""
    lm = np.asarray(lm, dtype=np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def best_template_transform(points5: np.ndarray, templates: np.ndarray) -> np.ndarray:
    best, best_error = None, np.inf
    for dst in templates:
        m = estimate_transform("similarity", points5, dst).params[:2]
        error = np.sqrt((((points5 @ m[:, :2].T + m[:, 2]) - dst) ** 2).sum(1)).sum()
        if error < best_error:
            best, best_error = m, error
    return best


def transform(convention: str, landmarks: np.ndarray) -> np.ndarray:
    """2x3 affine matrix mapping image pixels to crop pixels."""
    template, size = parse_convention(convention)
    if template in ("ghost", "arcface"):
        templates = (POSE_TEMPLATES_112 if template == "ghost" else ARCFACE_112) * (size / 112)
        return best_template_transform(five_points(landmarks), templates)
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
