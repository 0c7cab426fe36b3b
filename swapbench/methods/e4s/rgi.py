"""E4S's RGI model ("Net3", e4s2022/e4s src/models/networks.py): regional GAN inversion.

Three parts, with the official module names so the checkpoint's `state_dict` loads strictly once its
DataParallel `module.` prefix is stripped (`strip_module_prefix`):

- `encoder` (`RegionEncoder`): an IR-SE ResNet (pSp's layout, 24 bottlenecks) whose norms are all
  InstanceNorm2d without parameters. The features after bottlenecks 6, 20 and 23 (256 @ 64², 512 @ 32²,
  512 @ 16² on a 256 input) are averaged over each of the 12 regions of a one-hot mask (resized to the
  feature size, nearest); an absent region gives zeros. Style vectors [B, 12, 256 + 512 + 512].
- `MLPs`: one `LocalMLP` per region, EqualLinear(1280 -> 512), LeakyReLU(0.01), EqualLinear(512 -> 13 * 512):
  the region's codes for the first K = 13 generator layers (the W^{r+} space).
- `G` (`MaskedGenerator`): StyleGAN2 1024 (swapbench.methods.stylegan2's rosinality layout) whose
  layers up to 256 px run their modulated convolution once per region, with that region's code, and
  keep each result only inside the region (the one-hot mask resized nearest to the layer's output),
  summing them before the noise and activation. Higher layers run once on region 0's codes, which
  are the average latent.

`latent_avg` [18, 512] is stored beside the state dict in the checkpoint (not in it): codes are
MLP outputs + latent_avg[:K], and latent_avg[K:] for the remaining layers (`style_codes`).

Why by hand: pSp's IR-SE variant, the mask pooling and the mask-guided StyleGAN2 layers exist in no
library; the StyleGAN2 layers themselves come from swapbench.methods.stylegan2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.methods.stylegan2 import EqualLinear, Generator, StyledConv, ToRGB

NUM_REGIONS = 12  # the seg12 classes (swapbench.faces.parsing.SEG12_CLASSES)
REMAINING_LAYERS = 13  # K: generator layers whose codes are regional (official remaining_layer_idx)
ENCODER_SIZE = 256
ENCODER_WIDTHS = (64, 128, 256, 512, 512)  # input layer, then the four stages
STAGE_UNITS = (3, 4, 14, 3)
TAPS = (6, 20, 23)  # bottlenecks whose outputs are pooled per region
# A reduced RGI through every code path of the full one (per-region and plain layers, the ToRGB at row K
# reading region 0): the parity test's config and the method's `model: tiny` (random weights only).
TINY = {"generator_size": 32, "remaining_layers": 5, "encoder_widths": (8, 16, 32, 64, 64), "generator_channels": 32}


def strip_module_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """The official remove_module_prefix: drop the first occurrence of `prefix` in every key."""
    return {k.replace(prefix, "", 1): v for k, v in state.items()}


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * w


class Bottleneck(nn.Module):
    """IR-SE unit with parameter-free instance norms (official bottleneck_IR_SE_Ours)."""

    def __init__(self, in_channels: int, depth: int, stride: int):
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)  # a plain subsampling
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channels, depth, 1, stride, bias=False),
                                                nn.InstanceNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.InstanceNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.InstanceNorm2d(depth),
            SqueezeExcite(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def region_means(features: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] features averaged over each region of a one-hot mask [B, R, H, W] -> [B, R, C].

    The mask is resized to h x w (nearest); a region without a pixel there gives a zero vector."""
    mask = F.interpolate(onehot.float(), size=features.shape[-2:], mode="nearest").bool().to(features.dtype)
    area = mask.sum((2, 3))  # [B, R]
    sums = torch.einsum("bchw,brhw->brc", features, mask)
    return torch.where(area[..., None] > 0, sums / area.clamp(min=1)[..., None], torch.zeros_like(sums))


class RegionEncoder(nn.Module):
    """Style vectors [B, R, w2 + w3 + w4] of 256 x 256 images in [-1, 1] and one-hot region masks.

    widths: the input layer's and the four stages' channels (official: 64, 128, 256, 512, 512);
    smaller widths build a reduced encoder through the same code (tests)."""

    def __init__(self, widths: Sequence[int] = ENCODER_WIDTHS):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.InstanceNorm2d(widths[0]),
                                         nn.PReLU(widths[0]))
        units = []
        for cin, depth, n in zip(widths[:-1], widths[1:], STAGE_UNITS):
            units += [Bottleneck(cin, depth, 2)] + [Bottleneck(depth, depth, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        self.style_dim = widths[2] + widths[3] + widths[4]

    def forward(self, images: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        x = self.input_layer(images)
        taps = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in TAPS:
                taps.append(region_means(x, onehot))
        return torch.cat(taps, dim=2)


class LocalMLP(nn.Module):
    """One region's style vector -> its codes for the first K generator layers [B, K, 512]."""

    def __init__(self, in_dim: int, num_layers: int = REMAINING_LAYERS, style_dim: int = 512):
        super().__init__()
        self.num_layers, self.style_dim = num_layers, style_dim
        self.mlp = nn.Sequential(EqualLinear(in_dim, style_dim), nn.LeakyReLU(),
                                 EqualLinear(style_dim, style_dim * num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).view(-1, self.num_layers, self.style_dim)


def _masked(layer: nn.Module, x: torch.Tensor, styles: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """sum over regions r of layer.conv(x, styles[:, r]) * masks[:, r] (masks at the output size).

    A region that no image of the batch has at this size adds exact zeros and is skipped."""
    out = None
    present = masks.flatten(2).any(2).any(0)
    for r in range(styles.shape[1]):
        if not present[r]:
            continue
        part = layer.conv(x, styles[:, r]) * masks[:, r:r + 1]
        out = part if out is None else out + part
    if out is None:  # an empty mask: the official sum of zeros
        out = layer.conv(x, styles[:, 0]) * 0
    return out


class MaskedGenerator(Generator):
    """StyleGAN2 with E4S's mask-guided injection (official src/models/stylegan2/model.py Generator).

    With K regional layers, a layer at resolution 2^e runs per region when e <= 2 + K // 2 (convs) or
    e < 2 + K // 2 (ToRGBs; conv1 and to_rgb1 always). Code rows: conv1 0, to_rgb1 1, then block
    i = 1, 3, ...: its convs i and i + 1 and ToRGB i + 2, per region while i < K except the ToRGB at
    i + 2 = K, which (like every layer of the blocks from i = K on) reads region 0's row."""

    def __init__(self, size: int = 1024, remaining_layers: int = REMAINING_LAYERS, max_channels: int | None = None):
        super().__init__(size, max_channels=max_channels)
        self.remaining_layers = remaining_layers
        k = remaining_layers
        self.masked_convs = [e <= 2 + k // 2 for e in range(3, self.log_size + 1)]
        self.masked_rgbs = [k == 17 or e < 2 + k // 2 for e in range(3, self.log_size + 1)]

    def _styled(self, layer: StyledConv, x, styles, onehot, noise, masked, generator):
        if not masked:
            return layer(x, styles, noise, generator)
        out_side = x.shape[-1] * 2 if layer.conv.upsample else x.shape[-1]
        masks = F.interpolate(onehot, size=(out_side, out_side), mode="nearest")
        return layer.activate(layer.noise(_masked(layer, x, styles, masks), noise, generator))

    @staticmethod
    def _rgb(layer: ToRGB, x, styles, onehot, skip, masked):
        if not masked:
            return layer(x, styles, skip)
        masks = F.interpolate(onehot, size=x.shape[-2:], mode="nearest")
        out = _masked(layer, x, styles, masks) + layer.bias
        return out + layer.upsample(skip) if skip is not None else out

    def forward(self, codes: torch.Tensor, onehot: torch.Tensor,
                noise: str | Sequence[torch.Tensor | None] = "random",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Image [B, 3, size, size] (unbounded) from regional codes [B, R, n_latent, 512] and one-hot
        masks [B, R, H, W]; noise as in Generator.forward ("random" draws from `generator`)."""
        k = self.remaining_layers
        onehot = onehot.to(codes.dtype)
        noises = self._noises(noise)
        out = self.input(codes.shape[0])
        out = self._styled(self.conv1, out, codes[:, :, 0], onehot, noises[0], True, generator)
        skip = self._rgb(self.to_rgb1, out, codes[:, :, 1], onehot, None, True)
        i = 1
        blocks = zip(self.convs[::2], self.convs[1::2], noises[1::2], noises[2::2], self.to_rgbs,
                     self.masked_convs, self.masked_rgbs)
        for up, conv, n1, n2, to_rgb, masked_conv, masked_rgb in blocks:
            regional = i < k
            row = (lambda j: codes[:, :, j]) if regional else (lambda j: codes[:, 0, j])
            out = self._styled(up, out, row(i), onehot, n1, masked_conv, generator)
            out = self._styled(conv, out, row(i + 1), onehot, n2, masked_conv, generator)
            rgb_codes = row(i + 2) if regional and (k == 17 or i + 2 != k) else codes[:, 0, i + 2]
            skip = self._rgb(to_rgb, out, rgb_codes, onehot, skip, masked_rgb)
            i += 2
        return skip


class RGI(nn.Module):
    """Net3: encoder + 12 MLPs + mask-guided generator; `latent_avg` is a non-persistent buffer that
    `load` fills from the checkpoint's separate entry.

    generator_size / remaining_layers / encoder_widths / generator_channels build reduced models for
    tests (official: 1024, 13, (64, 128, 256, 512, 512), no cap)."""

    def __init__(self, generator_size: int = 1024, remaining_layers: int = REMAINING_LAYERS,
                 encoder_widths: Sequence[int] = ENCODER_WIDTHS, generator_channels: int | None = None,
                 num_regions: int = NUM_REGIONS):
        super().__init__()
        self.encoder = RegionEncoder(encoder_widths)
        self.remaining_layers = remaining_layers
        self.MLPs = nn.ModuleList(LocalMLP(self.encoder.style_dim, remaining_layers if remaining_layers != 17 else 18)
                                  for _ in range(num_regions))
        self.G = MaskedGenerator(generator_size, remaining_layers, generator_channels)
        self.register_buffer("latent_avg", torch.zeros(self.G.n_latent, 512), persistent=False)

    def load(self, checkpoint: Mapping[str, object]) -> None:
        """The official checkpoint dict: `state_dict` (not `state_dict_ema`, as the official inference),
        `module.`-prefixed, loaded strictly; `latent_avg` [n_latent, 512] beside it."""
        self.load_state_dict(strip_module_prefix(checkpoint["state_dict"]), strict=True)
        self.latent_avg.copy_(torch.as_tensor(checkpoint["latent_avg"]).reshape(self.latent_avg.shape))

    def style_vectors(self, images: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, S, S] in [-1, 1] (bilinearly resized to 256, no antialias, as officially) and
        one-hot masks [B, R, H, W] -> style vectors [B, R, D]."""
        x = F.interpolate(images, (ENCODER_SIZE, ENCODER_SIZE), mode="bilinear", align_corners=False)
        return self.encoder(x, onehot)

    def style_codes(self, vectors: torch.Tensor) -> torch.Tensor:
        """Style vectors [B, R, D] -> codes [B, R, n_latent, 512] (official cal_style_codes with
        start_from_latent_avg, not learn_in_w)."""
        k = self.remaining_layers
        codes = torch.stack([mlp(vectors[:, r]) for r, mlp in enumerate(self.MLPs)], dim=1)
        if k == 17:
            return codes + self.latent_avg
        b, r = codes.shape[:2]
        rest = self.latent_avg[k:].expand(b, r, -1, -1)
        return torch.cat([codes + self.latent_avg[:k], rest], dim=2)

    def generate(self, codes: torch.Tensor, onehot: torch.Tensor,
                 noise: str | Sequence[torch.Tensor | None] = "random",
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return self.G(codes, onehot, noise, generator)


def one_hot(labels: torch.Tensor, num_regions: int = NUM_REGIONS) -> torch.Tensor:
    """Label maps [B, H, W] -> float one-hot [B, R, H, W] (official labelMap2OneHot)."""
    return F.one_hot(labels.long(), num_regions).permute(0, 3, 1, 2).float()


def draw_noise(generator: torch.Generator, num_layers: int, batch: int = 1) -> list[torch.Tensor]:
    """The per-layer noise maps [batch, 1, r, r] of a StyleGAN2 with `num_layers` layers, drawn in layer order
    (the official generator draws fresh N(0, 1) maps each call; here they come from a per-pair generator)."""
    return [torch.randn(batch, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), generator=generator)
            for i in range(num_layers)]
