"""AEI-Net, the generator of GHOST (Groshev et al. 2022, ai-forever/sber-swap), 'unet' attribute encoder.

A multi-level attribute encoder (a U-Net over the 256x256 target) gives eight feature maps from 2x2 to
256x256; the generator starts from the identity vector and, at each of those resolutions, runs an
AAD residual block that mixes attribute features and identity with a learned per-pixel mask.

Parameter names follow the official module tree (`encoder.conv1.0.weight`,
`generator.AADBlk2.add_blocks.3.fc1.weight`, ...) so the released G_unet_{1block,2blocks,3blocks}.pth
state dicts load with strict=True.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Output channels of the encoder's down path, and of each decoder step before its skip is concatenated.
DOWN = (32, 64, 128, 256, 512, 1024, 1024)
UP = (1024, 512, 256, 128, 64, 32)
# Channels of the eight attribute maps z_attr1..z_attr8 (2x2 ... 256x256) of the unet encoder.
ATTR = (1024, 2048, 1024, 512, 256, 128, 64, 64)
# (input, output) channels of the generator's eight AAD residual blocks.
GEN = ((1024, 1024), (1024, 1024), (1024, 1024), (1024, 512), (512, 256), (256, 128), (128, 64), (64, 3))


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


def down4x4(cin: int, cout: int) -> nn.Sequential:
    """4x4 stride-2 conv, BatchNorm, LeakyReLU(0.1): halves the resolution."""
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1))


class UpSkip(nn.Module):
    """4x4 stride-2 transposed conv, BatchNorm, LeakyReLU(0.1), then concatenation of the skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat((F.leaky_relu(self.bn(self.deconv(x)), 0.1), skip), dim=1)


class AttributeEncoder(nn.Module):
    """U-Net encoder of the target face; returns the eight attribute maps, coarsest first."""

    def __init__(self):
        super().__init__()
        chans = (3,) + DOWN
        for i in range(7):
            setattr(self, f"conv{i + 1}", down4x4(chans[i], chans[i + 1]))
        cin = DOWN[-1]
        for i, cout in enumerate(UP):
            setattr(self, f"deconv{i + 1}", UpSkip(cin, cout))
            cin = 2 * cout  # the skip has as many channels as the decoder output

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(7):
            x = getattr(self, f"conv{i + 1}")(x)
            feats.append(x)
        attrs = [feats[-1]]  # 1024 x 2x2
        for i in range(6):
            attrs.append(getattr(self, f"deconv{i + 1}")(attrs[-1], feats[5 - i]))
        attrs.append(_upsample2(attrs[-1]))  # 64 x 256x256
        return attrs


class AADLayer(nn.Module):
    """Adaptive Attentional Denormalization.

    h is instance-normalised, then modulated twice: by the attribute map (1x1 convs give a per-pixel
    scale and shift) and by the identity (linear layers give a per-channel scale and shift). A mask
    predicted from h chooses, per pixel, between the two: out = (1 - M) * A + M * I.
    """

    def __init__(self, c_x: int, c_attr: int, c_id: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_attr, c_x, 1)  # attribute scale
        self.conv2 = nn.Conv2d(c_attr, c_x, 1)  # attribute shift
        self.fc1 = nn.Linear(c_id, c_x)  # identity scale
        self.fc2 = nn.Linear(c_id, c_x)  # identity shift
        self.conv_h = nn.Conv2d(c_x, 1, 1)  # mask logits

    def forward(self, h: torch.Tensor, z_attr: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        h = F.instance_norm(h, eps=1e-5)
        a = self.conv1(z_attr) * h + self.conv2(z_attr)
        i = self.fc1(z_id)[:, :, None, None] * h + self.fc2(z_id)[:, :, None, None]
        m = torch.sigmoid(self.conv_h(h))
        return torch.lerp(a, i, m)


class AADChain(nn.Sequential):
    """[AADLayer, ReLU, 3x3 conv] repeated; the layout (indices 0, 2, 3, 5, ...) is the official one."""

    def __init__(self, cin: int, cout: int, c_attr: int, c_id: int, n: int):
        layers = []
        for k in range(n):
            out = cout if k == n - 1 else cin
            layers += [AADLayer(cin, c_attr, c_id), nn.ReLU(), nn.Conv2d(cin, out, 3, 1, 1, bias=False)]
        super().__init__(*layers)

    def forward(self, h: torch.Tensor, z_attr: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        for k in range(0, len(self), 3):
            h = self[k + 2](self[k + 1](self[k](h, z_attr, z_id)))
        return h


class AADResBlock(nn.Module):
    """`num_blocks` AAD units on the main path; when the channel count changes, the shortcut is one more."""

    def __init__(self, cin: int, cout: int, c_attr: int, c_id: int, num_blocks: int):
        super().__init__()
        self.add_blocks = AADChain(cin, cout, c_attr, c_id, num_blocks)
        self.last_add_block = AADChain(cin, cout, c_attr, c_id, 1) if cin != cout else None

    def forward(self, h: torch.Tensor, z_attr: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        shortcut = h if self.last_add_block is None else self.last_add_block(h, z_attr, z_id)
        return self.add_blocks(h, z_attr, z_id) + shortcut


class AADGenerator(nn.Module):
    def __init__(self, c_id: int = 512, num_blocks: int = 2):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(c_id, 1024, kernel_size=2)  # identity vector -> 1024 x 2x2
        for k, ((cin, cout), c_attr) in enumerate(zip(GEN, ATTR)):
            setattr(self, f"AADBlk{k + 1}", AADResBlock(cin, cout, c_attr, c_id, num_blocks))

    def forward(self, z_attr: list[torch.Tensor], z_id: torch.Tensor) -> torch.Tensor:
        h = self.up1(z_id[:, :, None, None])
        for k in range(8):
            h = getattr(self, f"AADBlk{k + 1}")(h, z_attr[k], z_id)
            if k < 7:
                h = _upsample2(h)
        return torch.tanh(h)


class AEINet(nn.Module):
    """GHOST generator: target [B,3,256,256] in [-1,1] and identity [B,c_id] -> swap in [-1,1]."""

    def __init__(self, num_blocks: int = 2, c_id: int = 512):
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        self.encoder = AttributeEncoder()
        self.generator = AADGenerator(c_id, num_blocks)

    def forward(self, target: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        return self.generator(self.encoder(target), z_id)
