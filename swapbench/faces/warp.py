"""Batched face warps on the device: aligned crops, paste-back and soft blending masks.

Matrices are the 2x3 image -> crop matrices of `swapbench.faces.templates` (pixel-centre
coordinates, as cv2.warpAffine). kornia's warp_affine with align_corners=True uses the same
convention, so a crop made here equals cv2.warpAffine with the same matrix up to float rounding.

Images are float tensors [B, C, H, W] (any range; masks in [0, 1]). Every function works on a
whole batch; samples never influence each other, so a batch gives the same result as its samples
warped one at a time.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d
from kornia.geometry.transform import warp_affine
from kornia.image import draw_convex_polygon
from kornia.morphology import erosion
from scipy.spatial import ConvexHull


# The two conversions below run in numpy: they are elementwise passes over one crop or batch, which
# torch splits over its intra-op threads; on a busy CPU each such pass waited milliseconds for a
# thread (24 ms against 0.1 ms for a 256 px crop with 2 threads on 2 loaded cores). Same values:
# float32 division by 255 and round-half-to-even (torch.round, np.rint) in both.
def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float images in [0, 1], [3, H, W] or [B, 3, H, W] -> uint8 [H, W, 3] or [B, H, W, 3] (rounded, C-contiguous)."""
    if images.ndim not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"expected images [3, H, W] or [B, 3, H, W], got {tuple(images.shape)}")
    arr = images.detach().to("cpu", torch.float32).numpy()
    arr = np.rint(np.clip(arr, 0, 1) * np.float32(255)).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(arr, -3, -1))


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] or [B, H, W, 3] -> float [3, H, W] or [B, 3, H, W] in [0, 1] (a new array: inputs may be read-only).

    C-contiguous (NCHW in memory, as torchvision's ToTensor gives the official code): a channels-last
    layout reaches the methods through the engine's loaders, and on CPU torch's GroupNorm on it is about
    1000x less exact (REFace's posterior moved by 9e-5 relative). The uint8 transpose is the cheap copy."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(images), -1, -3)).astype(np.float32) / np.float32(255))


def align_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """One RGB uint8 image -> its size x size uint8 crop (align_batch on a batch of one)."""
    return to_uint8(align_batch(from_uint8(image)[None], matrix, size))[0]


def _as_matrices(matrices, like: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(matrices) if not torch.is_tensor(matrices) else matrices)
    m = m.to(device=like.device, dtype=torch.float64)
    if m.ndim == 2:
        m = m[None]
    if m.shape[1:] != (2, 3):
        raise ValueError(f"matrices must be [B, 2, 3], got {tuple(m.shape)}")
    return m


def invert_affine(matrices: torch.Tensor) -> torch.Tensor:
    """Inverse of [B, 2, 3] affine matrices (crop -> image for an image -> crop matrix)."""
    full = torch.cat([matrices, matrices.new_tensor([0.0, 0.0, 1.0]).expand(matrices.shape[0], 1, 3)], dim=1)
    return torch.linalg.inv(full)[:, :2]


def _shrink(image: torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Area-downsample an image that the warp would shrink by more than 2x, to avoid aliasing.

    Bilinear sampling reads only 4 source pixels per output pixel, so a strong reduction skips most
    of the source. Averaging blocks of k x k pixels first keeps every source pixel in the crop.
    """
    scale = math.sqrt(abs(float(torch.linalg.det(matrix[:, :2]))))
    k = int(1 / scale / 2) if scale < 0.5 else 1
    h, w = image.shape[-2:]
    if k <= 1 or min(h, w) // k < 2:
        return image, matrix
    small = F.interpolate(image[None], size=(h // k, w // k), mode="area")[0]
    fx, fy = w / (w // k), h / (h // k)
    # small pixel j covers big pixels [j * fx, (j + 1) * fx): its centre is at fx * (j + 0.5) - 0.5.
    to_big = matrix.new_tensor([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
    return small, matrix @ to_big


def align_batch(images: torch.Tensor, matrices, size: int, *, antialias: bool = True,
                padding_mode: str = "reflection") -> torch.Tensor:
    """Warp images [B, C, H, W] into size x size crops with image -> crop matrices [B, 2, 3].

    antialias: area-downsample first where a crop shrinks the image by more than 2x (per sample).
    padding_mode: kornia/grid_sample padding outside the image ("reflection", "border", "zeros").
    """
    m = _as_matrices(matrices, images)
    if m.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {m.shape[0]} matrices")
    if antialias:
        pairs = [_shrink(img, mat) for img, mat in zip(images, m)]
        if any(p[0].shape != images.shape[1:] for p in pairs):
            # Shrunk samples differ in size; warp them one by one (same maths as the batched call).
            return torch.cat([
                warp_affine(img[None], mat[None].to(images.dtype), (size, size), mode="bilinear",
                            padding_mode=padding_mode, align_corners=True)
                for img, mat in pairs
            ])
    return warp_affine(images, m.to(images.dtype), (size, size), mode="bilinear",
                       padding_mode=padding_mode, align_corners=True)


def paste_back(frames: torch.Tensor, crops: torch.Tensor, matrices, masks: torch.Tensor) -> torch.Tensor:
    """Blend crops [B, C, S, S] back into frames [B, C, H, W] under masks [B, 1, S, S] in [0, 1].

    The crop is warped with the inverse matrix as premultiplied alpha (crop * mask, and the mask),
    so pixels beyond the crop's edge, which bilinear sampling mixes with zero padding, lose weight
    in the mask by exactly the amount they lose in the colour, and no dark seam appears.
    """
    m = _as_matrices(matrices, frames)
    inv = invert_affine(m).to(frames.dtype)
    h, w = frames.shape[-2:]
    masks = masks.to(frames.dtype)
    colour = warp_affine(crops.to(frames.dtype) * masks, inv, (h, w), mode="bilinear",
                         padding_mode="zeros", align_corners=True)
    alpha = warp_affine(masks, inv, (h, w), mode="bilinear", padding_mode="zeros",
                        align_corners=True).clamp(0, 1)
    return frames * (1 - alpha) + colour


def default_erode(size: int) -> int:
    """Erosion kernel side for a size-pixel crop: 7 px at 256 (odd, at least 1)."""
    return max(1, int(round(size * 7 / 256)) // 2 * 2 + 1)


def default_sigma(size: int) -> float:
    """Gaussian blur sigma for a size-pixel crop: 5 px at 256."""
    return size * 5 / 256


def soften(masks: torch.Tensor, erode: int | None = None, sigma: float | None = None) -> torch.Tensor:
    """Erode binary masks [B, 1, S, S] with an erode x erode square, then Gaussian-blur them.

    Eroding first pulls the blend inside the face, so the blur fades the swap out before the
    mask's edge (jaw line, hair line) instead of across it.
    """
    size = masks.shape[-1]
    erode = default_erode(size) if erode is None else erode
    sigma = default_sigma(size) if sigma is None else sigma
    out = masks.float()
    if erode > 1:
        out = erosion(out, torch.ones(erode, erode, device=out.device), border_type="constant", border_value=0.0)
    if sigma > 0:
        k = 2 * math.ceil(3 * sigma) + 1
        out = gaussian_blur2d(out, (k, k), (sigma, sigma), border_type="constant")
    return out.clamp(0, 1)


def hull_masks(landmarks, size: int, erode: int | None = None, sigma: float | None = None,
               device=None) -> torch.Tensor:
    """Soft masks [B, 1, size, size]: convex hull of each sample's landmarks (crop pixels), softened.

    landmarks: [B, K, 2] (x, y) in crop pixel coordinates, tensor or array.
    """
    pts = landmarks.detach().cpu().double().numpy() if torch.is_tensor(landmarks) else np.asarray(landmarks, np.float64)
    if device is None:
        device = landmarks.device if torch.is_tensor(landmarks) else "cpu"
    hulls = [torch.as_tensor(p[ConvexHull(p).vertices], dtype=torch.float32, device=device) for p in pts]
    binary = torch.zeros(len(hulls), 1, size, size, device=device)
    draw_convex_polygon(binary, hulls, torch.ones(len(hulls), 1, device=device))
    return soften(binary, erode, sigma)


def label_masks(labels: torch.Tensor, keep, erode: int | None = None, sigma: float | None = None) -> torch.Tensor:
    """Soft masks [B, 1, S, S] of the pixels whose parsing label is in `keep`, softened.

    labels: [B, S, S] integer class map (e.g. swapbench.faces.parsing labels).
    """
    keep_t = torch.as_tensor(list(keep), device=labels.device, dtype=labels.dtype)
    return soften(torch.isin(labels, keep_t)[:, None].float(), erode, sigma)


def carry_into(targets: torch.Tensor, crops: torch.Tensor, m_crop, m_target, target_landmarks) -> torch.Tensor:
    """Blend crops made on one convention into crops of another convention of the same frames.

    targets [B, C, S, S]: the frames' crops under m_target (image -> target crop); crops [B, C, s, s]:
    results on crops under m_crop (image -> crop); target_landmarks [B, K, 2] in target-crop pixels.
    The crop is carried by m_crop . inv(m_target) without a trip through the full frame and replaces
    the target inside the landmarks' convex hull (eroded and blurred at the crop's scale).
    """
    m_crop, m_target = _as_matrices(m_crop, targets), _as_matrices(m_target, targets)
    full = m_target.new_tensor([0.0, 0.0, 1.0]).expand(m_target.shape[0], 1, 3)
    target_to_crop = m_crop @ torch.linalg.inv(torch.cat([m_target, full], dim=1))  # [B, 2, 3]
    lm = torch.as_tensor(np.asarray(target_landmarks) if not torch.is_tensor(target_landmarks) else target_landmarks)
    lm = lm.to(device=targets.device, dtype=torch.float64)
    lm_crop = lm @ target_to_crop[:, :, :2].transpose(1, 2) + target_to_crop[:, None, :, 2]
    masks = hull_masks(lm_crop, crops.shape[-1], device=targets.device)
    return paste_back(targets, crops, target_to_crop, masks)


def paste_into_frame(frame: np.ndarray, crop: np.ndarray, matrix, crop_landmarks, max_side: int | None = None,
                     masks: torch.Tensor | None = None) -> np.ndarray:
    """A face crop (uint8 [S, S, 3]) pasted back into its full frame (uint8 [H, W, 3]).

    matrix: image -> crop (the crop's convention); crop_landmarks [K, 2] in crop pixels give the
    soft hull mask. max_side: shrink the frame first (for previews); the matrix follows the shrink.
    masks: hull_masks(crop_landmarks[None], S) when the caller already has it (several swaps of one frame).
    """
    m = np.asarray(matrix, dtype=np.float64)
    h, w = frame.shape[:2]
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        frame = F.interpolate(from_uint8(frame)[None], size=(nh, nw), mode="area")
        # small pixel j's centre lies at big (j + 0.5) * w / nw - 0.5 (as in _shrink)
        fx, fy = w / nw, h / nh
        m = m @ np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
    else:
        frame = from_uint8(frame)[None]
    if masks is None:
        masks = hull_masks(np.asarray(crop_landmarks, np.float64)[None], crop.shape[0])
    return to_uint8(paste_back(frame, from_uint8(crop)[None], m[None], masks))[0]
