"""Deep3DFaceRecon (Deng et al. 2019) 3DMM regressor and the Basel Face Model landmark projection.

One implementation for every user: the `deep3d_exp` expression backend (swapbench.metrics) reads the
`exp` coefficients; Face-Adapter (swapbench.methods.face_adapter) mixes the source's identity with the
target's expression and pose and projects the 68 BFM landmarks for its spatial condition.

- `Deep3DReconNet`: the R-Net, a torchvision-layout ResNet-50 trunk (swapbench.faces.resnet) and one 1x1
  convolution per coefficient group on the pooled 2048-d feature. Deep3DFaceRecon_pytorch has seven
  groups (id 80, exp 64, tex 80, angle 3, gamma 27, txy 2, tz 1 = 257); Face-Adapter's
  `ResNet50_nofc(..., 257 + 4)` adds an eighth (pupil 4 = 261). Face-Adapter's checkpoint spells the
  head list `fianl_layers` and its loader strips `module.`; `face_adapter_state_dict` renames both to
  this module's keys. Face-Adapter folds every BatchNorm into the preceding convolution after loading
  (`fuse_module`); that changes rounding only (~1e-6), so the port keeps the BatchNorms.
- `BFMLandmarks`: what Face-Adapter's `BFM.get_lm68` computes from coefficients: shape = mean shape
  (recentred) + id and exp bases, rotation from the three angles (R = Rz Ry Rx, applied to row
  vectors), translation, camera at distance 10 looking down -z, pinhole projection with focal
  1015 * S / 224 and centre S / 2, the 68 keypoint vertices, y flipped to image rows (S - 1 - y).
  Only `meanshape`, `idBase`, `exBase` and `keypoints` of BFM_model_front.mat are read.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from swapbench.faces.resnet import ResNetTrunk
from swapbench.weights import WeightFile, register

BFM_MODEL_FRONT = register(
    WeightFile(
        name="deep3d/BFM_model_front",
        filename="BFM_model_front.mat",
        format="mat",
        url="https://faces.dmi.unibas.ch/bfm/main.php?nav=1-2&id=downloads",
        licence="Basel Face Model 2009 licence (registration; non-commercial research)",
        note=("built by Deep3DFaceRecon_pytorch from 01_MorphableModel.mat (BFM09, registration required) and "
              "Exp_Pca.bin (Guo et al.); Face-Adapter ships the same file as third_party/BFM_model_front.mat. "
              "Not needed for the deep3d_exp coefficients; needed for Face-Adapter's landmarks"),
        manual=True,  # the Basel page asks for a registration before it gives 01_MorphableModel.mat
    )
)[0]

DEEP3D_HEADS = (80, 64, 80, 3, 27, 2, 1)  # id, exp, tex, angle, gamma, txy, tz
FACE_ADAPTER_HEADS = DEEP3D_HEADS + (4,)  # + pupil (gaze) offsets


class Deep3DReconNet(nn.Module):
    """Deep3DFaceRecon's R-Net: ResNet-50 trunk and 1x1-conv heads on the pooled feature.

    Key names follow the checkpoint's `net_recon` entry: backbone.* (torchvision ResNet-50 without fc)
    and final_layers.{i}. Output [B, sum(head_dims)]: id 0:80, exp 80:144, tex 144:224, angle 224:227,
    gamma 227:254, translation 254:257 (and pupil 257:261 with FACE_ADAPTER_HEADS).
    """

    def __init__(self, head_dims: tuple[int, ...] = DEEP3D_HEADS):
        super().__init__()
        self.head_dims = tuple(head_dims)
        self.backbone = ResNetTrunk()
        self.final_layers = nn.ModuleList([nn.Conv2d(2048, d, 1, bias=True) for d in self.head_dims])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone.features(x)[:, :, None, None]
        return torch.cat([layer(f) for layer in self.final_layers], dim=1).flatten(1)

    @staticmethod
    def exp(coeffs: torch.Tensor) -> torch.Tensor:
        return coeffs[:, 80:144]

    @staticmethod
    def shape_id(coeffs: torch.Tensor) -> torch.Tensor:
        """The 80 identity (face-shape) coefficients."""
        return coeffs[:, 0:80]


def face_adapter_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Face-Adapter's d3dfr_res50_nofc.pth keys -> Deep3DReconNet(FACE_ADAPTER_HEADS) keys."""
    out = {}
    for k, v in sd.items():
        k = k.removeprefix("module.")
        if k.startswith("fianl_layers."):
            k = "final_layers." + k[len("fianl_layers."):]
        out[k] = v
    return out


class BFMLandmarks(nn.Module):
    """68 projected BFM landmarks from 3DMM coefficients, in the pixels of a size x size crop."""

    def __init__(self, bfm: Mapping[str, np.ndarray] | None = None, *, size: int = 256, camera_distance: float = 10.0,
                 n_vertices: int = 35709):
        super().__init__()
        n3 = 3 * n_vertices if bfm is None else int(np.asarray(bfm["meanshape"]).size)
        self.register_buffer("meanshape", torch.zeros(n3 // 3, 3))
        self.register_buffer("id_base", torch.zeros(n3, 80))
        self.register_buffer("exp_base", torch.zeros(n3, 64))
        self.register_buffer("keypoints", torch.zeros(68, dtype=torch.long))
        self.size = size
        self.camera_distance = camera_distance
        self.focal = 1015.0 * size / 224.0
        if bfm is not None:
            self.load_bfm(bfm)

    def load_bfm(self, bfm: Mapping[str, np.ndarray]) -> None:
        """Fill the buffers from a loaded BFM_model_front.mat (scipy.io.loadmat dict)."""
        mean = torch.from_numpy(np.asarray(bfm["meanshape"], np.float32)).reshape(-1, 3)
        self.meanshape.copy_(mean - mean.mean(0, keepdim=True))  # recentred, as Face-Adapter's BFM(recenter=True)
        self.id_base.copy_(torch.from_numpy(np.asarray(bfm["idBase"], np.float32)))
        self.exp_base.copy_(torch.from_numpy(np.asarray(bfm["exBase"], np.float32)))
        self.keypoints.copy_(torch.from_numpy(np.asarray(bfm["keypoints"]).astype(np.int64).reshape(68) - 1))

    @staticmethod
    def rotation(angles: torch.Tensor) -> torch.Tensor:
        """[B, 3, 3] matrices applied as `points @ R` (the transpose of Rz @ Ry @ Rx)."""
        x, y, z = angles[:, 0], angles[:, 1], angles[:, 2]
        one, zero = torch.ones_like(x), torch.zeros_like(x)
        rx = torch.stack([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], 1).view(-1, 3, 3)
        ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1).view(-1, 3, 3)
        rz = torch.stack([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], 1).view(-1, 3, 3)
        return (rz @ ry @ rx).transpose(1, 2)

    def forward(self, coeffs: torch.Tensor) -> torch.Tensor:
        """[B, >=257] coefficients -> [B, 68, 2] landmarks (x, y) in crop pixels."""
        b = coeffs.shape[0]
        shape = (self.id_base @ coeffs[:, 0:80].T + self.exp_base @ coeffs[:, 80:144].T).T.reshape(b, -1, 3)
        shape = shape[:, self.keypoints] + self.meanshape[self.keypoints]
        pts = shape @ self.rotation(coeffs[:, 224:227]) + coeffs[:, None, 254:257]
        z = self.camera_distance - pts[..., 2]
        c = self.size / 2
        u = (self.focal * pts[..., 0] + c * z) / z
        v = (self.focal * pts[..., 1] + c * z) / z
        return torch.stack([u, self.size - 1 - v], dim=-1)
