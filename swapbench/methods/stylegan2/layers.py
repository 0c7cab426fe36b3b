"""StyleGAN2 layers with rosinality/stylegan2-pytorch parameter names, buffers and math.

Equalized learning rate: weights are stored unscaled and multiplied by 1/sqrt(fan_in) (times lr_mul
for linear layers) at every forward pass, as in the rosinality checkpoints. Blur and upsample FIR
kernels are persistent buffers named `kernel`, so the state dicts of the converted official
StyleGAN2 checkpoints load strictly.

Layers (state-dict keys in brackets):
  EqualConv2d [weight, bias?], EqualLinear [weight, bias], FusedLeakyReLU [bias], PixelNorm,
  NoiseInjection [weight], ConstantInput [input], Blur [kernel], Upsample [kernel],
  Downsample [kernel], ModulatedConv2d [weight, modulation.*, blur.kernel?],
  StyledConv [conv.*, noise.weight, activate.bias], ToRGB [conv.*, bias, upsample.kernel?],
  ConvLayer / ResBlock (discriminator-style encoder blocks: downsampling blur + conv, scaled
  leaky ReLU), for encoders that reuse the StyleGAN2 blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.methods.stylegan2.ops import LRELU_GAIN, LRELU_SLOPE, fused_leaky_relu, make_kernel, upfirdn2d

BLUR_KERNEL = (1, 3, 3, 1)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """sqrt(2) * leaky_relu(x + bias, 0.2), bias per channel (dim 1)."""

    def __init__(self, channels: int, negative_slope: float = LRELU_SLOPE, scale: float = LRELU_GAIN):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


class ScaledLeakyReLU(nn.Module):
    def __init__(self, negative_slope: float = LRELU_SLOPE):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope) * LRELU_GAIN


class Blur(nn.Module):
    """FIR low-pass with padding `pad`; the kernel is multiplied by factor^2 after an upsample."""

    def __init__(self, kernel: Sequence[float] = BLUR_KERNEL, pad: tuple[int, int] = (1, 1), upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor**2
        self.register_buffer("kernel", k)
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    def __init__(self, kernel: Sequence[float] = BLUR_KERNEL, factor: int = 2):
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel) * factor**2
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Downsample(nn.Module):
    def __init__(self, kernel: Sequence[float] = BLUR_KERNEL, factor: int = 2):
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel)
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, down=self.factor, pad=self.pad)


class EqualConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with equalized LR; activation "fused_lrelu" applies FusedLeakyReLU with the bias."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: str | None = None):
        super().__init__()
        if activation not in (None, "fused_lrelu"):
            raise ValueError(f"unknown activation {activation!r}")
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias=bias)


class NoiseInjection(nn.Module):
    """x + weight * noise; noise [B or 1, 1, H, W] broadcast over channels, fresh N(0, 1) if None."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if noise is None:
            b, _, h, w = x.shape
            noise = torch.randn((b, 1, h, w), generator=generator, device=x.device, dtype=x.dtype)
        return x + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class ModulatedConv2d(nn.Module):
    """Style-modulated (and by default demodulated) convolution, one grouped conv per batch.

    upsample: transposed conv (stride 2) then Blur(pad (1, 1) for k=3, kernel x4).
    downsample: Blur then a stride-2 conv without padding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, downsample: bool = False, blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.upsample, self.downsample, self.demodulate = upsample, downsample, demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, cin, h, w = x.shape
        k, cout = self.kernel_size, self.out_channels
        s = self.modulation(style).view(b, 1, cin, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(b, cout, 1, 1, 1)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * cin, cout, k, k)
            out = F.conv_transpose2d(x.reshape(1, b * cin, h, w), weight, padding=0, stride=2, groups=b)
            return self.blur(out.reshape(b, cout, out.shape[-2], out.shape[-1]))
        weight = weight.reshape(b * cout, cin, k, k)
        if self.downsample:
            x = self.blur(x)
            out = F.conv2d(x.reshape(1, b * cin, x.shape[-2], x.shape[-1]), weight, padding=0, stride=2, groups=b)
        else:
            out = F.conv2d(x.reshape(1, b * cin, h, w), weight, padding=self.padding, groups=b)
        return out.reshape(b, cout, out.shape[-2], out.shape[-1])


class StyledConv(nn.Module):
    """ModulatedConv2d -> NoiseInjection -> FusedLeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[float] = BLUR_KERNEL, demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate=demodulate,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise, generator))


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation, plus bias, plus the upsampled skip image."""

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True, blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConvLayer(nn.Sequential):
    """rosinality ConvLayer: [Blur] -> EqualConv2d -> [FusedLeakyReLU | ScaledLeakyReLU].

    Keys: `0.*` (conv, or `0.kernel` then `1.*` when downsampling), then the activation's `bias`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[float] = BLUR_KERNEL, bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, padding=padding, stride=stride,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU(LRELU_SLOPE))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """rosinality discriminator ResBlock: two ConvLayers (the second downsampling) plus a 1x1 skip."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)
