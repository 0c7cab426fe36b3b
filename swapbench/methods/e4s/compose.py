"""E4S's steps around the RGI model: parser input, mask swap, texture swap, final blend.

Each follows the official code (e4s2022/e4s @ d30bdc7):

- `bicubic_downsample`: the parser's input (face_parsing_demo.py BicubicDownSample): a separable
  bicubic kernel (a = -0.5) of 4 * factor taps, reflect padding, stride `factor`, rows then columns.
  Not swapbench's antialiased bilinear parser input: E4S's masks come from this path.
- `swap_masks`: swap_head_mask_revisit_considerGlass (utils/swap_face_mask.py, hair_first=True):
  the target's background, neck, ears, earrings and hair, the driven face's lip, brows, eyes, nose, skin
  and mouth inside the non-background, the target's glasses on top; unassigned pixels become skin.
- `swap_style_vectors`: swap_comp_style_vector (face_swap.py): regions {1, 2, 3, 5, 6, 7, 8, 9} from the
  driven face, the rest from the target; an absent driven ear (all-zero vector) gives the mean of the
  two vectors, i.e. half the target's (kept), an absent driven mouth gives the target's. Per pair (the
  official code runs one pair at a time; its sums are over the batch).
- `blend`: the default (non-Laplacian) paste: foreground = swapped mask not in {background, hair,
  earrings}; dilated by an 11 x 11 square (geodesic border: a max filter) at the mask's size; resized
  bilinearly to the image; then cast to uint8 *before* scaling by 255, as the official
  `255 * mask.astype(np.uint8)`: only pixels exactly 1.0 survive, so the soft mask is binarised (and
  eroded by the interpolation's ramp). smooth_face_boundry then erodes it with an 11 x 11 square
  (border 255), Gaussian-blurs it (11 x 11, sigma 2) and alpha-composites the generated face, cast to
  uint8 by truncation (tensor2im), over the target with PIL. The hole pixels the official code adds
  to the foreground are skin already (so that line changes nothing; under torch >= 2 it raises an
  IndexError, a 5-D boolean index on a 4-D tensor).

The blend runs OpenCV and PIL on uint8 images, per image, for their exact rounding (the official
operations); the rest is torch.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# seg12 ids (swapbench.faces.parsing.SEG12_CLASSES)
BACKGROUND, LIP, BROWS, EYES, HAIR, NOSE, SKIN, EARS, NECK, MOUTH, GLASSES, EARRINGS = range(12)
FROM_DRIVEN = (LIP, BROWS, EYES, NOSE, SKIN, EARS, NECK, MOUTH)  # every region but 0, 4, 10, 11
BLEND_BACKGROUND = (BACKGROUND, EARRINGS, HAIR)
OUTER_DILATION = 5  # official outer_dilation: 11 x 11 squares


def bicubic_kernel(factor: int, a: float = -0.5) -> torch.Tensor:
    """The 4 * factor taps of BicubicDownSample, normalised to sum 1."""
    size = 4 * factor
    x = (torch.arange(size, dtype=torch.float64) - size // 2 + 0.5) / factor
    ax = x.abs()
    k = torch.where(ax <= 1, (a + 2) * ax**3 - (a + 3) * ax**2 + 1,
                    torch.where(ax < 2, a * ax**3 - 5 * a * ax**2 + 8 * a * ax - 4 * a, torch.zeros_like(ax)))
    k = k.float()
    return k / k.sum()


def bicubic_downsample(images: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, H / factor, W / factor]: rows, then columns, reflect-padded."""
    c = images.shape[1]
    k = bicubic_kernel(factor).to(images.device, images.dtype)
    pad = 4 * factor - factor
    lo, hi = pad // 2, pad - pad // 2
    x = F.pad(images, (0, 0, lo, hi), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(factor, 1), groups=c)
    x = F.pad(x, (lo, hi, 0, 0), mode="reflect")
    return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, factor), groups=c)


def swap_masks(driven: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """seg12 label maps [B, H, W] of the driven (reenacted source) and the target -> (swapped labels,
    hole map: the pixels filled with skin)."""
    placeholder = 99
    res = torch.zeros_like(target)
    res[target == BACKGROUND] = placeholder
    for region in (NECK, EARS, EARRINGS, HAIR):
        res[target == region] = region
    for region in (LIP, BROWS, EYES, NOSE, SKIN, MOUTH):
        res[(driven == region) & (res != placeholder)] = region
    res[target == GLASSES] = GLASSES
    holes = res == 0
    res[holes] = SKIN
    res[res == placeholder] = BACKGROUND
    return res, holes


def swap_style_vectors(target: torch.Tensor, driven: torch.Tensor) -> torch.Tensor:
    """Style vectors [B, 12, D] of the target and the driven face -> the swapped ones."""
    out = target.clone()
    out[:, FROM_DRIVEN] = driven[:, FROM_DRIVEN]
    no_ears = driven[:, EARS].sum(1) == 0
    out[no_ears, EARS] = (target[no_ears, EARS] + driven[no_ears, EARS]) / 2
    no_mouth = driven[:, MOUTH].sum(1) == 0
    out[no_mouth, MOUTH] = target[no_mouth, MOUTH]
    return out


def blend_mask(swapped: torch.Tensor, size: int) -> torch.Tensor:
    """The official full_mask_image: uint8 {0, 255} [B, size, size] from swapped labels [B, h, w]."""
    fg = ~torch.isin(swapped, torch.tensor(BLEND_BACKGROUND, device=swapped.device))
    r = OUTER_DILATION
    full = F.max_pool2d(fg[:, None].float(), 2 * r + 1, stride=1, padding=r)
    full = F.interpolate(full, (size, size), mode="bilinear", align_corners=False)[:, 0]
    return (full >= 1).to(torch.uint8) * 255  # ndarray.astype(uint8) of values in [0, 1], then x 255


def to_uint8(generated: torch.Tensor) -> torch.Tensor:
    """tensor2im: [-1, 1] -> [0, 255] by (x + 1) / 2, clip, x 255, truncation; uint8 [B, 3, H, W]."""
    return (((generated.float() + 1) / 2).clamp(0, 1) * 255).to(torch.uint8)


def smooth_paste(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """smooth_face_boundry(radius=5): uint8 HxWx3 face pasted over the uint8 HxWx3 target through the
    eroded, blurred uint8 mask; uint8 HxWx3."""
    k = 2 * OUTER_DILATION + 1
    eroded = cv2.erode(mask, np.ones((k, k)), borderType=cv2.BORDER_CONSTANT, borderValue=255)
    alpha = cv2.GaussianBlur(eroded, (k, k), sigmaX=0)
    top = Image.fromarray(face).convert("RGBA")
    top.putalpha(Image.fromarray(alpha))
    out = Image.fromarray(target).convert("RGBA")
    out.alpha_composite(top)
    return np.asarray(out.convert("RGB"))


def blend(generated: torch.Tensor, target: torch.Tensor, swapped: torch.Tensor) -> torch.Tensor:
    """Generated faces [B, 3, S, S] in [-1, 1], targets [B, 3, S, S] in [0, 1] (8-bit values) and
    swapped labels [B, h, w] -> blended swaps [B, 3, S, S] in [0, 1] (8-bit values)."""
    size = target.shape[-1]
    if generated.shape[-1] != size:  # reduced generators only
        generated = F.interpolate(generated, (size, size), mode="bilinear", align_corners=False)
    faces = to_uint8(generated).permute(0, 2, 3, 1).cpu().numpy()
    targets = torch.round(target.float() * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    masks = blend_mask(swapped, size).cpu().numpy()
    out = np.stack([smooth_paste(f, t, m) for f, t, m in zip(faces, targets, masks)])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(255).to(target.device)
