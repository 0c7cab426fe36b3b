"""Paste-back: a swap made on one crop convention, placed into the target's scoring crop.

Both crops are affine images of the same target frame, so the swap is carried from its crop to
the scoring crop by M_eval @ inv(M_method) without going through the full frame. It replaces the
target only inside a soft mask: the convex hull of the target's 68 landmarks, eroded and blurred,
limited to the area the method's crop covers.
"""

from __future__ import annotations

import cv2
import numpy as np


def hull_mask(landmarks: np.ndarray, size: int, erode: int = 7, blur: int = 15) -> np.ndarray:
    """Soft face mask in [0, 1]: landmark convex hull, eroded by `erode` px and Gaussian-blurred."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks).astype(np.int32)), 255)
    mask = cv2.erode(mask, np.ones((erode, erode), np.uint8))
    return cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), blur / 3)


def to_eval_crop(swap: np.ndarray, target_eval: np.ndarray, m_method: np.ndarray, m_eval: np.ndarray,
                 eval_landmarks: np.ndarray) -> np.ndarray:
    """The swap (method crop, uint8) blended into the target's eval crop (uint8)."""
    size = target_eval.shape[0]
    carry = np.vstack([m_eval, [0, 0, 1]]) @ np.linalg.inv(np.vstack([m_method, [0, 0, 1]]))
    warped = cv2.warpAffine(swap, carry[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    covered = cv2.warpAffine(np.ones(swap.shape[:2], np.float32), carry[:2], (size, size), flags=cv2.INTER_LINEAR)
    mask = (hull_mask(eval_landmarks, size) * covered)[..., None]
    return np.round(mask * warped + (1 - mask) * target_eval).astype(np.uint8)
