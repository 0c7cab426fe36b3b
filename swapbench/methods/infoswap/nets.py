"""InfoSwap's networks (GGGHSL/InfoSwap-master @ 0484ef5), written from the official modules' behaviour.

Module names are the keys of the released state dicts, so the files load with strict=True:

- `Encoder128`: the 128-input IR-SE50 face encoder (modules/model_128_ir_se50.pth). The units are
  swapbench.faces.irse50's; the head is `output_layer128` (fc 512*8*8 -> 512). It returns the 25
  intermediate maps the bottleneck reads (input layer, then every IR-SE unit) and can restart from
  any of them (`restricted`).
- `IIB`: the information bottleneck, one `IBLayer` per restricted map (iba_0 .. iba_9). Each reads
  the 11 normalised read-out maps, predicts a per-element mask lambda in (0, 1) and mixes the map with
  noise: Z = R*lambda + (1 - lambda)*eps. In "smooth" mode each layer also holds the depthwise
  Gaussian of kernel size 1 (`smooth.conv`), a per-channel scale that is 1 in the released file.
- `AttributeDecoder`: the U-Net that turns the target's bottlenecked maps (and the masks) into
  attribute maps (the official `UnetDecoder512`).
- `AII512`: the generator, AAD-style blocks whose blend mask also sees lambda.

Written by hand because no library has these networks; only the IR-SE unit is shared with the rest of
swapbench. Every module takes `div`, a divisor of all channel widths (1: the released networks): the
parity tests run the same code at div=4 (1/16 of the work), with the same spatial sizes and unit counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.faces.irse50 import STAGES, BottleneckIRSE
from swapbench.methods.ghost.aei_net import UpSkip, down4x4  # the same U-Net blocks as GHOST

BOTTLENECKS = 10  # N in the official demo: maps 0..9 are restricted
READOUTS = 11  # maps 0..10 feed the read-out network
# Channels of encoder maps 0..10: input layer, then IR-SE units 1..10.
MAP_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 128, 256, 256, 256)
# Spatial side of encoder maps 0..10 for a 128 input.
MAP_SIDES = (128, 64, 64, 64, 32, 32, 32, 32, 16, 16, 16)


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class Encoder128(nn.Module):
    """IR-SE50 on 128 x 128 BGR faces in [-1, 1]."""

    def __init__(self, div: int = 1):
        super().__init__()
        c0, c_out = 64 // div, 512 // div
        self.input_layer = nn.Sequential(nn.Conv2d(3, c0, 3, 1, 1, bias=False), nn.BatchNorm2d(c0), nn.PReLU(c0))
        units = []
        for cin, cout, n in STAGES:
            cin, cout = cin // div, cout // div
            units += [BottleneckIRSE(cin, cout, 2)] + [BottleneckIRSE(cout, cout, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        self.output_layer128 = nn.Sequential(
            nn.BatchNorm2d(c_out), nn.Dropout(0.6), nn.Flatten(), nn.Linear(c_out * 8 * 8, c_out), nn.BatchNorm1d(c_out)
        )

    def maps(self, x: torch.Tensor, count: int = READOUTS) -> list[torch.Tensor]:
        """The first `count` intermediate maps: the input layer's output, then each unit's."""
        out = [self.input_layer(x)]
        for unit in self.body[: count - 1]:
            out.append(unit(out[-1]))
        return out

    def restricted(self, z: torch.Tensor, index: int) -> torch.Tensor:
        """The L2-normalised embedding when map `index` is replaced by z (runs units index.. to the end)."""
        return F.normalize(self.output_layer128(self.body[index:](z)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.restricted(self.input_layer(x), 0)


class Smooth(nn.Module):
    """The official depthwise Gaussian of kernel size 1: a per-channel scale (1 in the released files)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class IBLayer(nn.Module):
    """Mask network of one restricted map: 1x1 convs from the stacked read-outs to lambda."""

    def __init__(self, in_c: int, out_c: int, smooth: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, in_c // 2, 1)
        self.conv2 = nn.Conv2d(in_c // 2, out_c * 2, 1)
        self.conv3 = nn.Conv2d(out_c * 2, out_c, 1)
        self.smooth = Smooth(out_c) if smooth else None

    def mask(self, readouts: Sequence[torch.Tensor], side: tuple[int, int]) -> torch.Tensor:
        """lambda [B, out_c, H, W] from the normalised read-out maps, resized to the restricted map's side."""
        x = torch.cat([F.interpolate(r, size=side, mode="bilinear", align_corners=True) for r in readouts], dim=1)
        x = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        lam = torch.sigmoid(x.clamp(-5, 5))
        return self.smooth(lam) if self.smooth is not None else lam


class IIB(nn.Module):
    def __init__(self, smooth: bool = True, div: int = 1):
        super().__init__()
        in_c = sum(MAP_CHANNELS) // div
        for i in range(BOTTLENECKS):
            setattr(self, f"iba_{i}", IBLayer(in_c, MAP_CHANNELS[i] // div, smooth))

    def layer(self, i: int) -> IBLayer:
        return getattr(self, f"iba_{i}")


class AttributeDecoder(nn.Module):
    """The official UnetDecoder512: attribute maps (finest last) and mask maps (coarsest first)."""

    def __init__(self, div: int = 1):
        super().__init__()
        c = [n // div for n in (16, 32, 64, 128, 256, 512, 1024, 2048)]
        self.conv_0 = nn.Conv2d(3, c[1], 4, 2, 1, bias=False)
        self.conv_1 = nn.Sequential(nn.PixelShuffle(2), nn.Conv2d(c[0], c[1], 3, 1, 1, bias=False))
        self.conv_2 = nn.Conv2d(c[2], c[2], 3, 1, 1, bias=False)
        self.conv_3 = nn.Conv2d(c[3], c[3], 3, 1, 1, bias=False)
        self.conv_4 = nn.Conv2d(c[4], c[4], 3, 1, 1, bias=False)
        self.conv_5 = nn.Conv2d(c[4], c[5], 4, 2, 1, bias=False)
        self.conv_6 = nn.Conv2d(c[5], c[6], 4, 2, 1, bias=False)
        self.conv7 = down4x4(c[6], c[6])
        widths = ((c[6], c[6]), (c[7], c[5]), (c[6], c[4]), (c[5], c[3]), (c[4], c[2]), (c[3], c[1]))
        for k, (cin, cout) in enumerate(widths, start=1):
            setattr(self, f"deconv{k}", UpSkip(cin, cout))

    def pyramid(self, first: torch.Tensor, maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The six skip maps, 256^2 .. 8^2, from `first` (already at 256^2) and maps 1..9."""
        return [
            first,
            self.conv_2(up2(maps[1])),
            self.conv_3(torch.cat((maps[2], maps[3]), 1)),
            self.conv_4(torch.cat((maps[4], maps[5]), 1)),
            self.conv_5(torch.cat((maps[6], maps[7]), 1)),
            self.conv_6(torch.cat((maps[8], maps[9]), 1)),
        ]

    def forward(self, target: torch.Tensor, maps: Sequence[torch.Tensor], lambdas: Sequence[torch.Tensor]):
        """target [B,3,512,512]; maps/lambdas: the 10 restricted-map lists (maps[0] unused: the image
        takes its place). Returns (8 attribute maps 4^2 .. 512^2, 8 mask maps 4^2 .. 512^2)."""
        skips = self.pyramid(self.conv_0(target), maps)
        z = [self.conv7(skips[5])]
        for k in range(6):
            z.append(getattr(self, f"deconv{k + 1}")(z[-1], skips[5 - k]))
        z.append(up2(z[-1]))

        lam_skips = self.pyramid(self.conv_1(lambdas[0]), lambdas)
        lam = [up2(lam_skips[0])] + lam_skips + [self.conv7(lam_skips[5])]
        return z, lam[::-1]


class AIILayer(nn.Module):
    """Adaptive identity/attribute mixing: (1 - M)*(attribute FiLM) + M*(identity FiLM) on the instance-normalised h."""

    def __init__(self, c_h: int, c_attr: int, c_id: int, c_lamb: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_attr, c_h, 1)
        self.conv2 = nn.Conv2d(c_attr, c_h, 1)
        self.fc1 = nn.Linear(c_id, c_h)
        self.fc2 = nn.Linear(c_id, c_h)
        self.conv_2h = nn.Conv2d(c_h + c_lamb, 1, 1)

    def forward(self, h_in, z_attr, z_id, lam):
        h = F.instance_norm(h_in)
        m = torch.sigmoid(self.conv_2h(torch.cat((h, lam), 1)))
        a = self.conv1(z_attr) * h + self.conv2(z_attr)
        i = self.fc1(z_id)[:, :, None, None] * h + self.fc2(z_id)[:, :, None, None]
        return (1 - m) * a + m * i


class AIIBlock(nn.Module):
    def __init__(self, cin: int, cout: int, c_attr: int, c_id: int, c_lamb: int):
        super().__init__()
        self.AAD1 = AIILayer(cin, c_attr, c_id, c_lamb)
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1, bias=False)
        self.AAD2 = AIILayer(cin, c_attr, c_id, c_lamb)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        if cin != cout:
            self.AAD3 = AIILayer(cin, c_attr, c_id, c_lamb)
            self.conv3 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.reshape = cin != cout

    def forward(self, h, z_attr, z_id, lam):
        x = self.conv1(F.leaky_relu(self.AAD1(h, z_attr, z_id, lam), 0.01))
        x = self.conv2(F.leaky_relu(self.AAD2(x, z_attr, z_id, lam), 0.01))
        if self.reshape:
            h = self.conv3(F.leaky_relu(self.AAD3(h, z_attr, z_id, lam), 0.01))
        return x + h


# (cin, cout, c_attr, c_lamb) of AADBlk1..8, at 4^2 .. 512^2.
AII512_BLOCKS = ((1024, 1024, 1024, 1024), (1024, 1024, 2048, 1024), (1024, 1024, 1024, 512),
                 (1024, 512, 512, 256), (512, 256, 256, 128), (256, 128, 128, 64), (128, 64, 64, 32),
                 (64, 3, 64, 32))


class AII512(nn.Module):
    """The generator: identity [B,512] + attribute and mask maps -> BGR face [B,3,512,512] in [-1, 1]."""

    def __init__(self, div: int = 1):
        super().__init__()
        c_id, c_top = 512 // div, 1024 // div
        self.up1 = nn.ConvTranspose2d(c_id, c_top, 2, 1, 0)
        self.up2 = nn.ConvTranspose2d(c_top, c_top, 2, 2, 0)
        for k, (cin, cout, c_attr, c_lamb) in enumerate(AII512_BLOCKS, start=1):
            cout = cout if cout == 3 else cout // div  # the last block makes the 3 image channels
            setattr(self, f"AADBlk{k}", AIIBlock(cin // div, cout, c_attr // div, c_id, c_lamb // div))
        # Never used in the forward pass, but stored in the released file (a strict load needs it).
        self.deconv = nn.ConvTranspose2d(32 // div, 3, 4, 2, 1, bias=False)

    def forward(self, z_id, z_attr, lam):
        m = self.up2(self.up1(z_id[:, :, None, None]))
        for k in range(len(AII512_BLOCKS)):
            m = getattr(self, f"AADBlk{k + 1}")(m, z_attr[k], z_id, lam[k])
            if k < len(AII512_BLOCKS) - 1:
                m = up2(m)
        return torch.tanh(m)
