"""DiffSwap's post-processing: Laplacian-pyramid blending (Burt & Adelson) of the generated crop into the
aligned target under the target's landmark-hull mask (pipeline.repair_by_mask with
utils/blending/blending_mask.py of wl-zhao/DiffSwap), reproduced to the bit.

The official code works on int32 images with scipy.ndimage.correlate1d, whose output keeps the input's
integer type: every 1-D filter pass is computed in double and truncated toward zero. Reduce filters with
[1,5,8,5,1]/20 (scipy's default 'reflect' border, i.e. half-sample symmetric) and keeps every other pixel;
expand zero-stuffs and filters with [1,5,8,5,1]/10 (zero border); 7 reductions give 8 levels. The mask is
resized to each level with cv2.resize (bilinear, uint8). This is done here in float64 torch with the same
operation order as scipy's symmetric-kernel loop (x0*w0 + (x-1 + x1)*w1 + (x-2 + x2)*w2), so the doubles and
their truncation match. kornia's pyramid functions do not fit: pyrdown/pyrup use the [1,4,6,4,1]/16 kernel
and resample bilinearly, not Burt-Adelson's a = 0.4 kernel with integer truncation.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

LEVELS = 7
_K = (8.0, 5.0, 1.0)  # centre, +-1, +-2 taps of [1, 5, 8, 5, 1]


def _shift(x: torch.Tensor, k: int, dim: int, mode: str) -> torch.Tensor:
    """x shifted so that out[i] = x[i + k] along dim, with scipy's 'reflect' (symmetric) or zero border."""
    n = x.shape[dim]
    idx = torch.arange(n, device=x.device) + k
    if mode == "reflect":
        idx = idx.clone()
        idx[idx < 0] = -idx[idx < 0] - 1
        idx[idx >= n] = 2 * n - idx[idx >= n] - 1
        return x.index_select(dim, idx)
    valid = (idx >= 0) & (idx < n)
    out = x.index_select(dim, idx.clamp(0, n - 1))
    shape = [1] * x.dim()
    shape[dim] = n
    return out * valid.view(shape).to(x.dtype)


def _correlate1d_int(x: torch.Tensor, norm: float, dim: int, mode: str) -> torch.Tensor:
    w = [(1.0 / norm) * k for k in _K]  # as numpy: 1.0 / 20 * np.array([1, 5, 8, 5, 1])
    tmp = x * w[0]
    for j in (1, 2):
        tmp = tmp + (_shift(x, -j, dim, mode) + _shift(x, j, dim, mode)) * w[j]
    return torch.trunc(tmp)  # double -> int32 cast of the integer output


def _reduce(img: torch.Tensor) -> torch.Tensor:
    low = _correlate1d_int(_correlate1d_int(img, 20.0, -2, "reflect"), 20.0, -1, "reflect")
    return low[..., ::2, ::2]


def _expand(img: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    up = torch.zeros_like(like)
    up[..., ::2, ::2] = img
    return _correlate1d_int(_correlate1d_int(up, 10.0, -2, "constant"), 10.0, -1, "constant")


def level_masks(mask: np.ndarray, levels: int = LEVELS) -> list[np.ndarray]:
    """mask: [H, W] uint8 0/1 -> the mask resized (cv2 bilinear, uint8) to every pyramid level."""
    out, h, w = [], mask.shape[0], mask.shape[1]
    for _ in range(levels + 1):
        out.append(cv2.resize(mask, (w, h)))
        h, w = (h + 1) // 2, (w + 1) // 2
    return out


@torch.no_grad()
def pyramid_blend(fg: torch.Tensor, bg: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """fg, bg: [B,3,H,W] integer-valued (0..255) images; masks: per level [B,1,h,w] 0/1. -> uint8 [B,3,H,W].

    fg where the mask is 1, bg elsewhere, blended band by band.
    """
    g1, g2 = [fg.double()], [bg.double()]
    for _ in range(len(masks) - 1):
        g1.append(_reduce(g1[-1]))
        g2.append(_reduce(g2[-1]))
    joined = []
    for i, m in enumerate(masks):
        l1 = g1[i] - _expand(g1[i + 1], g1[i]) if i + 1 < len(g1) else g1[i]
        l2 = g2[i] - _expand(g2[i + 1], g2[i]) if i + 1 < len(g2) else g2[i]
        m = m.to(l1)
        joined.append(l1 * m + l2 * (1 - m))
    img = joined[-1]
    for lower in reversed(joined[:-1]):
        img = _expand(img, lower) + lower
    return img.clamp(0, 255).to(torch.uint8)


def blend(generated01: torch.Tensor, target01: torch.Tensor, hulls: np.ndarray) -> torch.Tensor:
    """repair_by_mask on a batch. generated01, target01: [B,3,H,W] in [0,1]; hulls: [B,H,W] bool/0-1.

    The generated crop is truncated to uint8 as perform_swap saves it; the target is rounded to the
    uint8 crop it was made from. Returns [B,3,H,W] in [0,1] (uint8 levels).
    """
    fg = torch.floor(generated01.double().clamp(0, 1) * 255)
    bg = torch.round(target01.double().clamp(0, 1) * 255)
    per_pair = [level_masks(np.asarray(h, np.uint8)) for h in hulls]
    masks = [torch.from_numpy(np.stack([p[i] for p in per_pair]))[:, None].to(fg.device) for i in range(LEVELS + 1)]
    return pyramid_blend(fg, bg, masks).float() / 255.0
