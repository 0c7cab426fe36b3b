"""ArcFace IResNet (insightface arcface_torch layout): GHOST's, DiffSwap's, Face-Adapter's and FaceShifter's identity
encoders, BlendSwap's and the blendface_r100 backend's BlendFace encoder, ReliableSwap's MouthNet (iresnet50).

Input: [B,3,112,112] in [-1,1], RGB. Output: the 512-d embedding (not L2-normalised: GHOST and
DiffSwap feed the raw vector to their generators). Parameter names follow arcface_torch's `iresnet100` so GHOST's
released arcface_model/backbone.pth loads with strict=True.
"""

from __future__ import annotations

import torch
from torch import nn


class IBasicBlock(nn.Module):
    """Pre-activation-style block: BN, 3x3 conv, BN, PReLU, 3x3 conv (strided), BN, plus shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    def __init__(self, layers=(3, 13, 30, 3), num_features: int = 512, fc_scale: int = 7 * 7):
        # fc_scale: cells of the last feature map (7 x 7 at 112 px; ReliableSwap's MouthNet: 4 x 4 at 56 px)
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, (cout, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = [IBasicBlock(cin, cout, stride=2)] + [IBasicBlock(cout, cout) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.bn2 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout(0.0)  # kept for the module layout; identity at inference
        self.fc = nn.Linear(512 * fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))

    def layer4_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """[B, H*W, 512]: the layer-4 feature map as tokens (Face-Adapter's identity input; 8 x 8 at 128 px)."""
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.flatten(2).transpose(1, 2)


def iresnet100() -> IResNet:
    return IResNet((3, 13, 30, 3))


def iresnet50(num_features: int = 512, fc_scale: int = 7 * 7) -> IResNet:
    return IResNet((3, 4, 14, 3), num_features, fc_scale)


def iresnet18() -> IResNet:
    return IResNet((2, 2, 2, 2))
