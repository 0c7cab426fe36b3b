"""StyleGAN2 building blocks shared by the StyleGAN-based swappers (MegaFS, FSLSD-HiRes).

Pure PyTorch (no compiled ops): runs on CPU and any GPU. Parameter and buffer names follow
rosinality/stylegan2-pytorch, the layout of the converted official checkpoints
(`stylegan2-ffhq-config-f.pt[h]`, key `g_ema`), so they load with strict=True.

- `ops`: `upfirdn2d`, `fused_leaky_relu`, `make_kernel` (the math of rosinality's CUDA ops).
- `layers`: EqualConv2d, EqualLinear, FusedLeakyReLU, ScaledLeakyReLU, PixelNorm, NoiseInjection,
  ConstantInput, Blur, Upsample, Downsample, ModulatedConv2d, StyledConv, ToRGB, ConvLayer, ResBlock.
- `generator`: `Generator` (synthesis from W+ codes, optional 4x4 input replacing the constant,
  stored or per-pair random noise), `channels_for`.
- `random_generator_state`: deterministic random weights in the official layout (tests, benchmarks).

Parity: upfirdn2d / fused_leaky_relu are tested against their reference math; the generator is
tested against MegaFS's official copy of rosinality's Generator (tests/test_megafs_parity.py).
ConvLayer and ResBlock (discriminator-style encoder blocks) are not yet parity-tested; the port
that first uses them should add that test.
"""

from swapbench.methods.stylegan2.generator import Generator, channels_for
from swapbench.methods.stylegan2.layers import (
    Blur,
    ConstantInput,
    ConvLayer,
    Downsample,
    EqualConv2d,
    EqualLinear,
    FusedLeakyReLU,
    ModulatedConv2d,
    NoiseInjection,
    PixelNorm,
    ResBlock,
    ScaledLeakyReLU,
    StyledConv,
    ToRGB,
    Upsample,
)
from swapbench.methods.stylegan2.ops import fused_leaky_relu, make_kernel, upfirdn2d
from swapbench.methods.stylegan2.random_weights import random_generator_state

__all__ = [
    "Blur", "ConstantInput", "ConvLayer", "Downsample", "EqualConv2d", "EqualLinear", "FusedLeakyReLU", "Generator",
    "ModulatedConv2d", "NoiseInjection", "PixelNorm", "ResBlock", "ScaledLeakyReLU", "StyledConv", "ToRGB",
    "Upsample", "channels_for", "fused_leaky_relu", "make_kernel", "random_generator_state", "upfirdn2d",
]
