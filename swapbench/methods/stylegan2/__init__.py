"""StyleGAN2 building blocks shared by the StyleGAN-based swappers (MegaFS, FSLSD-HiRes).

Pure PyTorch (no compiled ops): runs on CPU and any GPU. Parameter and buffer names follow
rosinality/stylegan2-pytorch, the layout of the converted official checkpoints
(`stylegan2-ffhq-config-f.pt[h]`, key `g_ema`), so they load with strict=True.

- `ops`: `upfirdn2d`, `fused_leaky_relu`, `make_kernel` (the math of rosinality's CUDA ops).
- `layers`: EqualConv2d, EqualLinear, FusedLeakyReLU, ScaledLeakyReLU, PixelNorm, NoiseInjection,
  ConstantInput, Blur, Upsample, Downsample, ModulatedConv2d, StyledConv, ToRGB, ConvLayer, ResBlock.
- `generator`: `Generator` (synthesis from W+ codes, optional 4x4 input replacing the constant,
  stored or per-pair random noise; `features()` for the per-resolution features), `channels_for`.
- `random_generator_state`: deterministic random weights in the official layout (tests, benchmarks).

Parity (tests/test_stylegan2_ops.py, tests/test_megafs_parity.py): upfirdn2d and fused_leaky_relu
equal their reference math on random inputs; every layer (ConvLayer with and without downsampling,
ResBlock, ModulatedConv2d up/down/no-demodulation, EqualLinear with lr_mul and activation,
Upsample, Downsample) equals MegaFS's official copy of rosinality's model.py on seeded weights, and
the Generator equals it at 128 (test) and 1024 (benchmarks/megafs_speed.py), max abs error 0.

For a new StyleGAN-based port: build `Generator(size)` and load `g_ema` strictly;
`Generator.features()` returns the output of every resolution block (FSLSD-HiRes's decoder input);
subclass it and override `forward` where the official generator differs otherwise; the module tree
(`conv1`, `to_rgb1`, `convs[2j]` upsampling / `convs[2j+1]` plain, `to_rgbs[j]`, `noises.noise_i`) is
rosinality's.
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
