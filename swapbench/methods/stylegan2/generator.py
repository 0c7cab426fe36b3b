"""The StyleGAN2 synthesis network (rosinality layout), driven by W+ latents.

`Generator(size, style_dim=512, n_mlp=8, channel_multiplier=2)` has exactly the state-dict keys of
rosinality's `Generator` (`style.1..n_mlp`, `input.input`, `conv1`, `to_rgb1`, `convs.*`,
`to_rgbs.*`, `noises.noise_*`), so `g_ema` of a converted official checkpoint loads strictly:
171 keys for FFHQ config-f at 1024.

`max_channels` caps the widths (reduced test models only).
`forward(latents, struct=None, noise="buffers")` synthesises from W+ codes [B, n_latent, style_dim]
(a [B, style_dim] code is repeated). Latent i feeds: 0 conv1, 1 to_rgb1, then per resolution block
j (i = 1 + 2j) the upsampling conv i, the plain conv i + 1 and the to_rgb i + 2, so a 1024 generator
reads 18 codes; extra codes are ignored (rosinality indexes them the same way).
`struct` [B, C4, 4, 4] replaces the constant input (MegaFS feeds its encoder's 4x4 "struct" map).
noise: "buffers" uses the stored `noises.noise_i` (rosinality randomize_noise=False), "random"
draws fresh N(0, 1) per layer from `generator` (pass a per-pair generator for determinism), or a
list of tensors, one per layer.
`features(latents, ...)` returns the output of each resolution block instead of the image (FSLSD-HiRes
feeds these to its decoder); the ToRGB path is skipped there, the features are those of `forward`.
The mapping MLP is `mapping(z)`; it is not used when the input is already in W+.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from swapbench.methods.stylegan2.layers import BLUR_KERNEL, ConstantInput, EqualLinear, PixelNorm, StyledConv, ToRGB


def channels_for(channel_multiplier: int = 2) -> dict[int, int]:
    """Feature channels per resolution (rosinality Generator.channels)."""
    m = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * m, 128: 128 * m, 256: 64 * m, 512: 32 * m, 1024: 16 * m}


class Generator(nn.Module):
    def __init__(self, size: int = 1024, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 blur_kernel: Sequence[float] = BLUR_KERNEL, lr_mlp: float = 0.01, max_channels: int | None = None):
        super().__init__()
        log_size = int(math.log2(size))
        if 2**log_size != size or size < 4:
            raise ValueError(f"StyleGAN2 size must be a power of two >= 4, got {size}")
        self.size, self.style_dim, self.log_size = size, style_dim, log_size
        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu") for _ in range(n_mlp)]
        )
        # max_channels caps every width: reduced generators for tests (the official layout has none)
        self.channels = {r: min(c, max_channels or c) for r, c in channels_for(channel_multiplier).items()}
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.num_layers = (log_size - 2) * 2 + 1
        self.n_latent = log_size * 2 - 2
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty, kept for rosinality's module tree
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = (i + 5) // 2
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, 2**res, 2**res))
        in_ch = self.channels[4]
        for res in range(3, log_size + 1):
            out_ch = self.channels[2**res]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim))
            in_ch = out_ch

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """Z [B, style_dim] -> W [B, style_dim]."""
        return self.style(z)

    def noise_buffers(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def forward(self, latents: torch.Tensor, struct: torch.Tensor | None = None,
                noise: str | Sequence[torch.Tensor | None] = "buffers",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Image [B, 3, size, size] (unbounded, about [-1, 1]) from W+ latents."""
        return self._synthesise(latents, struct, noise, generator, rgb=True)[0]

    def features(self, latents: torch.Tensor, struct: torch.Tensor | None = None,
                 noise: str | Sequence[torch.Tensor | None] = "buffers",
                 generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """The output of every resolution block (after its second conv), 8 x 8 first: [B, C_r, r, r] for
        r = 8 .. size. The ToRGB path is skipped (it does not feed the features)."""
        return self._synthesise(latents, struct, noise, generator, rgb=False)[1]

    def _noises(self, noise: str | Sequence[torch.Tensor | None]) -> Sequence[torch.Tensor | None]:
        if isinstance(noise, str):
            if noise == "buffers":
                return self.noise_buffers()
            if noise == "random":
                return [None] * self.num_layers
            raise ValueError(f"noise must be 'buffers', 'random' or a list of tensors, got {noise!r}")
        noises = list(noise)
        if len(noises) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} noise tensors, got {len(noises)}")
        return noises

    def _synthesise(self, latents: torch.Tensor, struct: torch.Tensor | None,
                    noise: str | Sequence[torch.Tensor | None], generator: torch.Generator | None,
                    rgb: bool) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        if latents.ndim == 2:
            latents = latents[:, None].expand(-1, self.n_latent, -1)
        if latents.shape[1] < self.n_latent:
            raise ValueError(f"a {self.size} generator needs {self.n_latent} latents, got {latents.shape[1]}")
        noises = self._noises(noise)
        out = struct if struct is not None else self.input(latents.shape[0])
        out = self.conv1(out, latents[:, 0], noises[0], generator)
        skip = self.to_rgb1(out, latents[:, 1]) if rgb else None
        feats: list[torch.Tensor] = []
        i = 1
        for up, conv, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noises[1::2], noises[2::2], self.to_rgbs):
            out = up(out, latents[:, i], n1, generator)
            out = conv(out, latents[:, i + 1], n2, generator)
            if rgb:
                skip = to_rgb(out, latents[:, i + 2], skip)
            else:
                feats.append(out)
            i += 2
        return skip, feats
