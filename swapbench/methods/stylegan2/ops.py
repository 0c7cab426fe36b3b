"""StyleGAN2's two custom CUDA ops (rosinality `op/`), written in plain PyTorch.

rosinality/stylegan2-pytorch JIT-compiles `upfirdn2d` and `fused_leaky_relu` as CUDA extensions at
import time, which fails on a machine without a CUDA toolkit. The math is small enough to express
with standard tensor operations, which run on CPU and on any GPU and are differentiable. The
results equal the reference definitions (tested in tests/test_stylegan2_ops.py against a direct,
loop-level transcription of the formulas).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def make_kernel(k: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """A separable 1D kernel turned into its normalised 2D outer product (sum 1), float32."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: Sequence[int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad, FIR-filter, downsample; depthwise on NCHW.

    1. place x[i, j] at (i * up, j * up), zeros elsewhere (H * up x W * up);
    2. pad p0 zeros before and p1 after on both axes (negative pads crop);
    3. true 2D convolution (correlation with the kernel flipped in both axes), "valid";
    4. keep every `down`-th sample from index 0.
    Output side: (H * up + p0 + p1 - kh) // down + 1. `pad` = (p0, p1), the same on x and y.
    """
    up, down = int(up), int(down)
    p0, p1 = _pair(pad)
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    out = x
    if up > 1:  # zero insertion: every sample followed by up - 1 zeros on both axes
        out = x.new_zeros(n, c, h * up, w * up)
        out[:, :, ::up, ::up] = x
    out = F.pad(out, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        hh, ww = out.shape[-2:]
        out = out[:, :, max(-p0, 0): hh - max(-p1, 0), max(-p0, 0): ww - max(-p1, 0)]
    # depthwise: one copy of the flipped kernel per channel (much faster on CPU than folding the
    # channels into the batch with a single-channel convolution)
    weight = torch.flip(kernel, (0, 1)).to(out.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    return F.conv2d(out, weight, stride=down, groups=c)


def fused_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = LRELU_SLOPE, scale: float = LRELU_GAIN
) -> torch.Tensor:
    """scale * leaky_relu(x + bias, negative_slope), the bias broadcast along dim 1 (channels)."""
    if bias is not None:
        shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
        x = x + bias.reshape(shape)
    return F.leaky_relu(x, negative_slope) * scale
