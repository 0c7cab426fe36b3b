"""Reference methods that bound and anchor every leaderboard.

target  — returns the target face unchanged: the attribute upper bound (zero pose/expression error)
          and the identity lower bound.
source  — returns the source face unchanged: the identity upper bound (ID top-1 = 100%).
classic — a classical landmark-based swap: the source face is warped triangle by triangle onto the
          target's 68-landmark geometry (Delaunay triangulation of the target landmarks), its colour
          is matched to the target skin (mean/std in Lab inside the face), and it is blended into the
          target with Poisson (seamless) cloning.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from scipy.spatial import Delaunay

from swapbench.faces import warp
from swapbench.methods.base import FaceBatch, SwapMethod


class Target(SwapMethod):
    name = "target"
    description = "returns the target face (attribute upper bound)"

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        return target.image.clone()


class Source(SwapMethod):
    name = "source"
    description = "returns the source face (identity upper bound)"

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        return source.image.clone()


class Classic(SwapMethod):
    name = "classic"
    description = "Delaunay warp onto target landmarks + Lab colour transfer + Poisson blending (OpenCV)"

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        for role, batch in (("source", source), ("target", target)):
            if tuple(batch.landmarks.shape[-2:]) != (68, 2):
                raise ValueError(f"classic needs 68 dlib-compatible landmarks, the {role} crop has "
                                 f"{batch.landmarks.shape[-2]} (face.detector scrfd gives 5 points; "
                                 f"use dlib_hog, face_alignment or mediapipe)")
        out = []
        for i in range(len(target)):
            src = warp.to_uint8(source.image[i])
            tgt = warp.to_uint8(target.image[i])
            res = classic_swap(src, source.landmarks[i].cpu().numpy(), tgt, target.landmarks[i].cpu().numpy())
            out.append(warp.from_uint8(res))
        return torch.stack(out).to(target.image.device)


INNER_MOUTH = set(range(60, 68))


def warp_triangles(src: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp of src onto base so that src_pts land on dst_pts (Delaunay triangles of dst_pts).

    Triangles inside the inner lips are left to base: an open target mouth keeps its own
    teeth instead of a stretched closed source mouth.
    """
    out = base.astype(np.float32)
    h, w = base.shape[:2]
    for tri in Delaunay(dst_pts).simplices:
        if INNER_MOUTH.issuperset(tri.tolist()):
            continue
        s, d = src_pts[tri].astype(np.float32), dst_pts[tri].astype(np.float32)
        x, y, bw, bh = cv2.boundingRect(d)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
        if x1 <= x0 or y1 <= y0:
            continue
        m = cv2.getAffineTransform(s, (d - [x0, y0]).astype(np.float32))
        patch = cv2.warpAffine(src, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillConvexPoly(mask, np.round(d - [x0, y0]).astype(np.int32), 1)
        region = out[y0:y1, x0:x1]
        region[mask > 0] = patch[mask > 0]
    return out


def match_colour(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Give src (inside mask) the Lab mean and standard deviation of ref (inside mask)."""
    s = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    inside = mask > 0
    for c in range(3):
        sm, ss = s[..., c][inside].mean(), s[..., c][inside].std() + 1e-6
        rm, rs = r[..., c][inside].mean(), r[..., c][inside].std() + 1e-6
        s[..., c] = (s[..., c] - sm) * (rs / ss) + rm
    return cv2.cvtColor(np.clip(s, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def classic_swap(src: np.ndarray, src_lm: np.ndarray, tgt: np.ndarray, tgt_lm: np.ndarray) -> np.ndarray:
    h, w = tgt.shape[:2]
    warped = warp_triangles(src, src_lm, tgt_lm, tgt).round().astype(np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(tgt_lm).astype(np.int32)), 255)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8))
    mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 0, 0, 0, 0  # seamlessClone needs a margin
    if mask.sum() == 0:
        raise ValueError("target landmarks enclose no area")
    warped = match_colour(warped, tgt, mask)
    x, y, bw, bh = cv2.boundingRect(mask)
    return cv2.seamlessClone(warped, tgt, mask, (x + bw // 2, y + bh // 2), cv2.NORMAL_CLONE)
