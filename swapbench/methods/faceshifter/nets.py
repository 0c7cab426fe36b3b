"""FaceShifter's generator as ReliableSwap released it (`FSGenerator`): AEI-Net, ArcFace, optional MouthNet.

The AEI-Net math is GHOST's (same multi-level attribute encoder, same AAD layer); only the residual
block's module names differ (`AAD1`/`conv1`, `AAD2`/`conv2`, shortcut `AAD3`/`conv3` instead of GHOST's
`add_blocks`), so the encoder and AAD layer are reused from swapbench.methods.ghost.aei_net and the
block is written here with the official names. Parameter names follow ReliableSwap's module tree
(`G.generator.AADBlk1.AAD1.fc1.weight`, `iresnet.layer1.0.conv1.weight`, `mouth_net.backbone.fc.weight`,
buffer `trans_matrix`), so an extracted `G_*.pth` loads with strict=True.

Identity (FSGenerator.forward): the 256 source in [-1,1] is warped by the fixed `trans_matrix` (kornia
warp_affine, bilinear, zero padding, align_corners=True; path "warp", used by the authors' evaluation and
demo) or not (path "infer", faceshifter_infer.py), resized bilinearly (align_corners=True) to 112, embedded
by IResNet-100 and L2-normalised. MouthNet variants append the raw 128-d output of an IResNet-50 (fc over
4 x 4 cells) on the 112 crop's rows 56:112, columns 28:84: c_id = 640.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from swapbench.methods.ghost.aei_net import ATTR, GEN, AADLayer, AttributeEncoder, _upsample2
from swapbench.faces.iresnet import iresnet50, iresnet100

# The fixed ~1.078x zoom, +1.93 degree rotation and shift applied to the source before ArcFace (256 crop).
TRANS_MATRIX = ((1.07695457, -0.03625215, -1.56352194), (0.03625215, 1.07695457, -5.32134629))
MOUTH_CROP = (28, 56, 84, 112)  # (x1, y1, x2, y2) in the 112 ArcFace input: the mouth
MOUTH_DIM = 128
ID_DIM = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AADResBlk(nn.Module):
    """AAD1 -> ReLU -> conv1 -> AAD2 -> ReLU -> conv2, plus h (or AAD3 -> ReLU -> conv3 when cin != cout)."""

    def __init__(self, cin: int, cout: int, c_attr: int, c_id: int):
        super().__init__()
        self.AAD1 = AADLayer(cin, c_attr, c_id)
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1, bias=False)
        self.AAD2 = AADLayer(cin, c_attr, c_id)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        if cin != cout:
            self.AAD3 = AADLayer(cin, c_attr, c_id)
            self.conv3 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.has_shortcut = cin != cout

    def forward(self, h: torch.Tensor, z_attr: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.relu(self.AAD1(h, z_attr, z_id)))
        x = self.conv2(F.relu(self.AAD2(x, z_attr, z_id)))
        if self.has_shortcut:
            h = self.conv3(F.relu(self.AAD3(h, z_attr, z_id)))
        return x + h


class AADGenerator(nn.Module):
    def __init__(self, c_id: int):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(c_id, 1024, kernel_size=2)  # identity vector -> 1024 x 2x2
        for k, ((cin, cout), c_attr) in enumerate(zip(GEN, ATTR)):
            setattr(self, f"AADBlk{k + 1}", AADResBlk(cin, cout, c_attr, c_id))

    def forward(self, z_attr: list[torch.Tensor], z_id: torch.Tensor) -> torch.Tensor:
        # (the official F.interpolate by z_attr[0].H // 2 after up1 is the identity at 256)
        h = self.up1(z_id[:, :, None, None])
        for k in range(8):
            h = getattr(self, f"AADBlk{k + 1}")(h, z_attr[k], z_id)
            if k < 7:
                h = _upsample2(h)
        return torch.tanh(h)


class AEINet(nn.Module):
    def __init__(self, c_id: int):
        super().__init__()
        self.encoder = AttributeEncoder()
        self.generator = AADGenerator(c_id)

    def forward(self, target: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        return self.generator(self.encoder(target), z_id)


class MouthNet(nn.Module):
    """ReliableSwap's mouth identity: IResNet-50 over the 56 x 56 mouth crop, raw 128-d output."""

    def __init__(self):
        super().__init__()
        self.backbone = iresnet50(MOUTH_DIM, fc_scale=4 * 4)
        # unused at inference, but saved in every mouth1 file
        self.register_buffer("vgg_mean", torch.tensor(IMAGENET_MEAN).view(3, 1, 1))
        self.register_buffer("vgg_std", torch.tensor(IMAGENET_STD).view(3, 1, 1))

    def forward(self, face112: torch.Tensor) -> torch.Tensor:
        x1, y1, x2, y2 = MOUTH_CROP
        return self.backbone(face112[:, :, y1:y2, x1:x2])


def identity_vector(source: torch.Tensor, arcface: nn.Module, mouth_net=None) -> torch.Tensor:
    """[B, c_id] of [-1,1] sources: bilinear (align_corners=True) to 112, ArcFace, L2-normalised; with a mouth
    network (a callable on the 112 input, e.g. MouthNet), its raw 128-d feature appended (ReliableSwap's
    FaceShifter and SimSwap variants)."""
    face112 = F.interpolate(source, size=(112, 112), mode="bilinear", align_corners=True)
    z = F.normalize(arcface(face112), dim=-1)
    if mouth_net is not None:
        z = torch.cat([z, mouth_net(face112)], dim=-1)
    return z


class FaceShifterGenerator(nn.Module):
    """Source and target 256 crops in [-1,1] -> swap in [-1,1] (the official FSGenerator)."""

    def __init__(self, mouth: bool = False):
        super().__init__()
        self.mouth_net = MouthNet() if mouth else None
        self.G = AEINet(ID_DIM + (MOUTH_DIM if mouth else 0))
        self.iresnet = iresnet100()
        self.register_buffer("trans_matrix", torch.tensor([TRANS_MATRIX]))

    def identity(self, source: torch.Tensor, path: str = "warp") -> torch.Tensor:
        """[B, c_id]: the L2-normalised ArcFace embedding (plus the raw mouth feature) of 256 sources."""
        if path == "warp":
            m = self.trans_matrix.expand(source.shape[0], 2, 3)
            source = kornia.geometry.transform.warp_affine(source, m, source.shape[-2:], align_corners=True)
        elif path != "infer":
            raise ValueError(f"unknown identity path {path!r} (warp or infer)")
        return identity_vector(source, self.iresnet, self.mouth_net)

    def forward(self, source: torch.Tensor, target: torch.Tensor, path: str = "warp") -> torch.Tensor:
        return self.G(target, self.identity(source, path))
