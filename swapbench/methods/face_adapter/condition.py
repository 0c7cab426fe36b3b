"""Face-Adapter's inputs around the diffusion model: crops, 3DMM landmark image, masks, blending.

Written from the official `infer.py` (face swapping branch) and `face_adapter_pipline.draw_pts70_batch`,
FaceAdapter/Face-Adapter 6e31388:

- 256 crop: a least-squares similarity (the official float32 normal equations, cv2.solve) from the five
  points (eye centres, nose tip, mouth corners) of the 512 crop to the ArcFace template at 256 (the official `mean_face_lm5p_256` is insightface's
  template shifted by 8 and doubled, i.e. swapbench's `arcface_256`), cv2.warpAffine bilinear on the
  8-bit 512 crop. The ArcFace input is that crop in [-1, 1] resized to 128 (bilinear, no antialias).
- landmark image: 68 BFM landmarks (target pose/expression, source identity coefficients) and two gaze
  points (pupil offset x eye-corner distance + eye centre, eyes 36/39 and 42/45), rounded to integer
  pixels and drawn as filled radius-2 circles on a black 256 canvas in matplotlib's `rainbow` colours
  (channels written in reverse order, as the official BGR tuple in an RGB array), then warped back to
  the 512 crop by the inverse of the 256 alignment (cv2 bilinear, WARP_INVERSE_MAP), in [-1, 1].
- masks: BiSeNet labels of the target (the official code feeds it the [-1, 1] crop *without* ImageNet
  normalisation and upsamples the first output to 512 bilinearly); face = max(face-with-ears,
  maxpool65(inner face)) * (1 - occlusions), maxpool5; control image = landmarks * face + target * (1 - face);
  blend mask = avgpool17(maxpool17(face)) on a 16-pixel zero border; result = gen * blend + target * (1 - blend).
- CLIP input: transformers' default `CLIPImageProcessor` (shortest side 224 bicubic, centre crop,
  OpenAI mean/std) on the 8-bit 512 crop.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from swapbench.faces import parsing
from swapbench.faces.templates import arcface_points, five_points

FACE = parsing.FACE_ADAPTER_FACE
FACE_WITH_EAR = parsing.FACE_ADAPTER_FACE_WITH_EAR
OCCLUSION = parsing.FACE_ADAPTER_OCCLUSION


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, S, S] in [0, 1] -> [B, S, S, 3] uint8 (rounded)."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(arrays: np.ndarray, device=None) -> torch.Tensor:
    """[B, S, S, 3] uint8 -> [B, 3, S, S] in [-1, 1] (ToTensor + Normalize(0.5, 0.5))."""
    x = torch.from_numpy(np.ascontiguousarray(arrays)).permute(0, 3, 1, 2).contiguous().float().div(255)  # as ToTensor
    return ((x - 0.5) / 0.5).to(device)


def align_matrix_256(landmarks: np.ndarray) -> np.ndarray:
    """2x3 similarity from 512-crop pixels to the 256 ArcFace-template crop, from 68 or 5 points.

    The official arithmetic (data/datasets_faceswap.py `get_affine_transform`), which a float64 least squares
    misses by up to 6e-4 px (a level on up to 3% of the crop's pixels): the five points in float32, as
    insightface's `kps`; the 4 x 4 normal equations of (a, b, tx, ty) in x' = a x - b y + tx, y' = b x + a y + ty,
    each per-point term computed in float32 and summed in float64 point by point; cv2.solve(DECOMP_SVD)."""
    import cv2

    src = five_points(landmarks).astype(np.float32)
    dst = arcface_points(256).astype(np.float32)
    x, y, u, v = src[:, 0], src[:, 1], dst[:, 0], dst[:, 1]
    terms = np.stack([x * x + y * y, x, y, x * u + y * v, x * v - y * u, u, v])  # float32, one row per sum
    sq, sx, sy, bu, bv, su, sv = np.cumsum(terms.astype(np.float64), axis=1)[:, -1]  # in point order
    n = float(len(src))
    a = np.array([[sq, 0, sx, sy], [0, sq, -sy, sx], [sx, -sy, n, 0], [sy, sx, 0, n]])
    ok, (ca, cb, tx, ty) = cv2.solve(a, np.array([bu, bv, su, sv]), flags=cv2.DECOMP_SVD)
    m = np.array([[ca[0], -cb[0], tx[0]], [cb[0], ca[0], ty[0]]])
    if not ok or not np.isfinite(m).all() or abs(ca[0] ** 2 + cb[0] ** 2) < 1e-12:
        raise ValueError("degenerate landmarks: no similarity transform")
    return m


def crop_256(images_u8: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    import cv2

    return np.stack([cv2.warpAffine(a, m, (256, 256), flags=cv2.INTER_LINEAR) for a, m in zip(images_u8, matrices)])


def arcface_input(crop256: torch.Tensor) -> torch.Tensor:
    """[-1, 1] 256 crops -> the 128 input of the identity network (F.interpolate bilinear)."""
    return F.interpolate(crop256, size=(128, 128), mode="bilinear", align_corners=False)


def gaze_points(pts68: torch.Tensor, pupil: torch.Tensor) -> torch.Tensor:
    """[B, 2, 2]: the two gaze points of the landmark image."""
    def eye(a, b, off):
        length = (pts68[:, b] - pts68[:, a]).pow(2).sum(1, keepdim=True).sqrt()
        return off * length + (pts68[:, a] + pts68[:, b]) * 0.5
    return torch.stack([eye(36, 39, pupil[:, :2]), eye(42, 45, pupil[:, 2:4])], dim=1)


def _rainbow_colours(n: int) -> list[tuple[int, int, int]]:
    from matplotlib import colormaps

    rgba = colormaps["rainbow"](np.linspace(0, 1, n))
    rgb = (255 * rgba).astype(int)[:, :3]
    return [(int(c[2]), int(c[1]), int(c[0])) for c in rgb]


def landmark_image(pts68: torch.Tensor, pupil: torch.Tensor, matrices: np.ndarray, size: int = 512) -> torch.Tensor:
    """[B, 3, size, size] in [-1, 1]: the 70 points drawn at 256 and warped back to the crop."""
    import cv2

    pts = torch.cat([pts68, gaze_points(pts68, pupil)], dim=1).detach().cpu().numpy().round().astype(int)
    colours = _rainbow_colours(pts.shape[1])
    out = []
    for row, m in zip(pts, matrices):
        canvas = np.zeros((256, 256, 3), np.uint8)
        for (x, y), c in zip(row, colours):
            canvas = cv2.circle(canvas, (int(x), int(y)), radius=2, color=c, thickness=-1)
        out.append(cv2.warpAffine(canvas, np.asarray(m, np.float64), (size, size),
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT))
    return from_uint8(np.stack(out), pts68.device)


@torch.no_grad()
def parse_labels(bisenet: torch.nn.Module, target: torch.Tensor, size: int = 512) -> torch.Tensor:
    """[B, 1, size, size] labels as `infer.py`: BiSeNet on the [-1, 1] crop (no ImageNet normalisation)."""
    logits = bisenet(target)[0]
    return F.interpolate(logits.float(), size=(size, size), mode="bilinear").argmax(1, keepdim=True)


def _isin(labels: torch.Tensor, keep) -> torch.Tensor:
    return torch.isin(labels, torch.tensor(keep, device=labels.device)).float()


def face_mask(labels: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] 0/1 face mask of the swap from [B, 1, H, W] labels."""
    inner = _isin(labels, FACE)
    m = torch.maximum(_isin(labels, FACE_WITH_EAR), F.max_pool2d(inner, kernel_size=65, stride=1, padding=32))
    m = m * (1 - _isin(labels, OCCLUSION))
    return F.max_pool2d(m, kernel_size=5, stride=1, padding=2)


def blend_mask(face: torch.Tensor) -> torch.Tensor:
    s = face.shape[-1]
    m = F.pad(face, (16, 16, 16, 16), "constant", 0)
    m = F.max_pool2d(m, kernel_size=17, stride=1, padding=8)
    m = F.avg_pool2d(m, kernel_size=17, stride=1, padding=8)
    return m[:, :, 16:16 + s, 16:16 + s]


def clip_input(images_u8: np.ndarray, device=None) -> torch.Tensor:
    """transformers' default CLIPImageProcessor on 8-bit crops -> [B, 3, 224, 224]."""
    from PIL import Image
    from transformers import CLIPImageProcessor

    proc = CLIPImageProcessor()
    return proc(images=[Image.fromarray(a) for a in images_u8], return_tensors="pt").pixel_values.to(device)
