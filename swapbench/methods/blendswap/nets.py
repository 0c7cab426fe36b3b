"""BlendSwap's networks (mapooon/BlendFace swapping/, FaceShifter AEI-Net as mindslab-ai/faceshifter has it).

Module and parameter names follow the official ones, so `blendswap.pth` loads strictly:
`AttributeEncoder` is the official MultilevelAttributesEncoder (keys `Encoder.layer_i.*`,
`Decoder.layer_i.*`), `AADGenerator` the official ADDGenerator (`model.layer_i.{add1,add2,add3,conv1,
conv2,conv3}`, each ADD with `BNorm`, `conv_f`, `fc_1`, `fc_2`, `conv1`, `conv2`).

Channel widths are arguments (default: the official ones) so that the parity tests can run a narrower
network through the same code paths; GHOST's AEI-Net (swapbench.methods.ghost.aei_net) is a different
variant (unet encoder with a different decoder, tanh output, ReLU/LeakyReLU elsewhere), hence its own code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The official encoder widths: input, then the seven stride-2 levels (128^2 ... 2^2 at 256 px).
ENCODER_CHANNELS = (3, 32, 64, 128, 256, 512, 1024, 1024)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    """x2 bilinear with align_corners=True (the official nn.Upsample / UpsamplingBilinear2d)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


def _level(conv: nn.Module, cout: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.LeakyReLU(0.1))


class AttributeEncoder(nn.Module):
    """U-Net attribute encoder: 7 strided convs down, 6 transposed convs up with skip concatenation.

    Returns the 8 attribute maps z_att, coarse to fine: the bottleneck (2^2 at 256 px), the six decoder
    outputs each concatenated (decoder first) with the encoder map of its size, and the last of those
    upsampled x2 to the input size.
    """

    def __init__(self, channels: tuple[int, ...] = ENCODER_CHANNELS):
        super().__init__()
        c = channels
        self.Encoder = nn.ModuleDict({
            f"layer_{i}": _level(nn.Conv2d(c[i], c[i + 1], 4, 2, 1), c[i + 1]) for i in range(7)})
        dec_in = [c[7]] + [2 * c[7 - i] for i in range(1, 6)]  # previous decoder output + its skip
        self.Decoder = nn.ModuleDict({
            f"layer_{i}": _level(nn.ConvTranspose2d(dec_in[i], c[6 - i], 4, 2, 1), c[6 - i]) for i in range(6)})

    @staticmethod
    def attribute_channels(channels: tuple[int, ...] = ENCODER_CHANNELS) -> list[int]:
        """Channels of the 8 attribute maps."""
        c = channels
        return [c[7]] + [c[6 - i] + c[6 - i] for i in range(6)] + [2 * c[1]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for i in range(7):
            x = self.Encoder[f"layer_{i}"](x)
            skips.append(x)
        z_att = [x]
        for i in range(6):
            x = torch.cat((self.Decoder[f"layer_{i}"](x), skips[5 - i]), dim=1)
            z_att.append(x)
        z_att.append(_upsample(x))
        return z_att


class ADD(nn.Module):
    """Adaptive attentional denormalisation: a learned per-pixel mask mixes identity and attribute modulation."""

    def __init__(self, h_channels: int, z_channels: int, id_size: int = 512):
        super().__init__()
        self.BNorm = nn.BatchNorm2d(h_channels)
        self.conv_f = nn.Conv2d(h_channels, 1, 1)
        self.fc_1 = nn.Linear(id_size, h_channels)
        self.fc_2 = nn.Linear(id_size, h_channels)
        self.conv1 = nn.Conv2d(z_channels, h_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(z_channels, h_channels, 3, 1, 1)

    def forward(self, h: torch.Tensor, z_att: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        h = self.BNorm(h)
        m = torch.sigmoid(self.conv_f(h))
        from_id = self.fc_1(z_id)[:, :, None, None] * h + self.fc_2(z_id)[:, :, None, None]
        from_att = self.conv1(z_att) * h + self.conv2(z_att)
        return (1 - m) * from_att + m * from_id


class AADResBlock(nn.Module):
    """Two ADD-ReLU-conv steps plus a shortcut (one more ADD-ReLU-conv when the width changes)."""

    def __init__(self, h_in: int, z_channels: int, h_out: int, id_size: int = 512):
        super().__init__()
        self.add1 = ADD(h_in, z_channels, id_size)
        self.add2 = ADD(h_in, z_channels, id_size)
        self.conv1 = nn.Conv2d(h_in, h_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(h_in, h_out, 3, 1, 1)
        self.reshape = h_in != h_out
        if self.reshape:
            self.add3 = ADD(h_in, z_channels, id_size)
            self.conv3 = nn.Conv2d(h_in, h_out, 3, 1, 1)

    def forward(self, h: torch.Tensor, z_att: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.relu(self.add1(h, z_att, z_id)))
        x = self.conv2(F.relu(self.add2(x, z_att, z_id)))
        shortcut = self.conv3(F.relu(self.add3(h, z_att, z_id))) if self.reshape else h
        return x + shortcut


class AADGenerator(nn.Module):
    """Eight AAD residual blocks from the bottleneck attribute map up to the image; sigmoid output in [0, 1]."""

    def __init__(self, channels: tuple[int, ...] = ENCODER_CHANNELS, id_size: int = 512, out_channels: int = 3):
        super().__init__()
        c = channels
        z = AttributeEncoder.attribute_channels(c)
        h = [c[7], c[7], c[7], c[7], c[5], c[4], c[3], c[2], out_channels]
        self.model = nn.ModuleDict({f"layer_{i}": AADResBlock(h[i], z[i], h[i + 1], id_size) for i in range(8)})

    def forward(self, z_id: torch.Tensor, z_att: list[torch.Tensor]) -> torch.Tensor:
        x = z_att[0]
        for i in range(7):
            x = _upsample(self.model[f"layer_{i}"](x, z_att[i], z_id))
        return torch.sigmoid(self.model["layer_7"](x, z_att[7], z_id))
