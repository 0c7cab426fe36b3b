"""RetinaFace-R50 (biubug6/Pytorch_Retinaface, as GPEN ships it): the face detector of E4S's restoration.

A torchvision-layout ResNet-50 (swapbench.faces.resnet; keys `body.conv1` .. `body.layer4`, no fc)
taps layer2/3/4 (strides 8/16/32), an FPN and three SSH context modules (256 channels) feed per-level
1x1 heads for 2 anchors per cell: class logits (softmaxed), box offsets and 5 landmarks. Keys equal
the official `RetinaFace(cfg_re50)` state dict once the checkpoint's `module.` prefix is stripped.

`detect` reproduces GPEN's `RetinaFaceDetection.detect` on a BGR uint8 image: mean (104, 117, 123)
subtracted from BGR, images wider than 1500 px shrunk to 1000 px, SSD priors (min sizes 16/32,
64/128, 256/512), variances (0.1, 0.2), score > 0.9, greedy NMS at IoU 0.4 with pixel-inclusive
areas. Written here because no installed library ships this detector (its official code needs
torchvision).
"""

from __future__ import annotations

from math import ceil

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swapbench.faces.resnet import ResNetTrunk
from swapbench.faces.scrfd import nms

MEAN_BGR = (104, 117, 123)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
SCORE_THRESHOLD = 0.9
NMS_THRESHOLD = 0.4
KEEP_TOP_K = 750


def conv_bn(cin: int, cout: int, k: int = 3, relu: bool = True) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm [-> ReLU]; the official conv_bn / conv_bn_no_relu / conv_bn1X1
    (their leaky slope is 0 at 256 channels)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out: int):
        super().__init__()
        self.output1, self.output2, self.output3 = (conv_bn(c, out, 1) for c in in_channels)
        self.merge1, self.merge2 = conv_bn(out, out), conv_bn(out, out)

    def forward(self, c3, c4, c5):
        p5 = self.output3(c5)
        p4 = self.merge2(self.output2(c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest"))
        p3 = self.merge1(self.output1(c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest"))
        return p3, p4, p5


class SSH(nn.Module):
    """Single-stage headless context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv3X3 = conv_bn(cin, cout // 2, relu=False)
        self.conv5X5_1 = conv_bn(cin, cout // 4)
        self.conv5X5_2 = conv_bn(cout // 4, cout // 4, relu=False)
        self.conv7X7_2 = conv_bn(cout // 4, cout // 4)
        self.conv7x7_3 = conv_bn(cout // 4, cout // 4, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.conv5X5_1(x)
        b7 = self.conv7X7_2(b5)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(b5), self.conv7x7_3(b7)], dim=1))


class Head(nn.Module):
    """1x1 conv to anchors x values, flattened to [B, H*W*anchors, values] (NHWC order)."""

    def __init__(self, cin: int, values: int, anchors: int = 2):
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(cin, anchors * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """[B, 3, H, W] mean-subtracted BGR -> (boxes [B, P, 4], class probabilities [B, P, 2], landmarks [B, P, 10])."""

    def __init__(self, out_channels: int = 256):
        super().__init__()
        self.body = ResNetTrunk()
        self.fpn = FPN((512, 1024, 2048), out_channels)
        self.ssh1, self.ssh2, self.ssh3 = (SSH(out_channels, out_channels) for _ in range(3))
        self.ClassHead = nn.ModuleList(Head(out_channels, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(Head(out_channels, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(Head(out_channels, 10) for _ in range(3))

    def forward(self, x: torch.Tensor):
        b = self.body
        x = b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x)))))
        c3 = b.layer2(x)
        c4 = b.layer3(c3)
        c5 = b.layer4(c4)
        feats = [ssh(p) for ssh, p in zip((self.ssh1, self.ssh2, self.ssh3), self.fpn(c3, c4, c5))]
        boxes = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        scores = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        landmarks = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return boxes, F.softmax(scores, dim=-1), landmarks


def priors(height: int, width: int) -> torch.Tensor:
    """SSD anchors [P, 4] (cx, cy, w, h) relative to the image, in the order of the heads' outputs:
    level, row, column, anchor size."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = ceil(height / step), ceil(width / step)
        i, j, s = np.meshgrid(np.arange(rows), np.arange(cols), np.asarray(sizes, np.float64), indexing="ij")
        out.append(np.stack([(j + 0.5) * step / width, (i + 0.5) * step / height, s / width, s / height], -1).reshape(-1, 4))
    return torch.from_numpy(np.concatenate(out).astype(np.float32))


def decode_boxes(loc: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Centre offsets and log-size ratios -> (x1, y1, x2, y2), relative."""
    centre = prior[:, :2] + loc[:, :2] * VARIANCES[0] * prior[:, 2:]
    size = prior[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    top_left = centre - size / 2
    return torch.cat([top_left, size + top_left], dim=1)


def decode_landmarks(pre: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """[P, 10] offsets -> five (x, y) points, relative, interleaved x1, y1, x2, y2, ..."""
    return torch.cat([prior[:, :2] + pre[:, 2 * k: 2 * k + 2] * VARIANCES[0] * prior[:, 2:] for k in range(5)], dim=1)


@torch.no_grad()
def detect(net: RetinaFace, image_bgr: np.ndarray, threshold: float = SCORE_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Faces of a BGR uint8 image: boxes with score [N, 5] (x1, y1, x2, y2, score) and landmarks
    [N, 10] (x1..x5, y1..y5), best first, in image pixels (float32)."""
    img = np.float32(image_bgr)
    shrink = 1.0
    if max(img.shape[:2]) > 1500:  # the official detector runs large images at 1000 px
        shrink = 1000.0 / max(img.shape[:2])
        img = cv2.resize(img, (0, 0), fx=shrink, fy=shrink)
    h, w = img.shape[:2]
    img -= MEAN_BGR
    device = next(net.parameters()).device
    loc, conf, landm = net(torch.from_numpy(img.transpose(2, 0, 1)).unsqueeze(0).to(device))
    prior = priors(h, w).to(device)
    boxes = (decode_boxes(loc[0], prior) * torch.tensor([w, h, w, h], dtype=torch.float32, device=device)).cpu().numpy()
    landmarks = (decode_landmarks(landm[0], prior) * torch.tensor([w, h] * 5, dtype=torch.float32, device=device)).cpu().numpy()
    scores = conf[0, :, 1].cpu().numpy()

    keep = np.where(scores > threshold)[0]
    boxes, landmarks, scores = boxes[keep], landmarks[keep], scores[keep]
    order = scores.argsort()[::-1]
    boxes, landmarks, scores = boxes[order], landmarks[order], scores[order]
    dets = np.hstack((boxes, scores[:, None])).astype(np.float32, copy=False)
    keep = nms(dets[:, :4], dets[:, 4], NMS_THRESHOLD)[:KEEP_TOP_K]
    dets, landmarks = dets[keep], landmarks[keep]
    landmarks = landmarks.reshape(-1, 5, 2).transpose(0, 2, 1).reshape(-1, 10)
    return dets / shrink, landmarks / shrink
