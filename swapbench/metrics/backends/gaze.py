"""Gaze backends: [B, 2] (pitch, yaw) in degrees in L2CS-Net's convention.

Convention (L2CS-Net / GazeHub): camera frame with x right, y down, z away from the camera; the gaze
vector is g = (-cos p sin y, -sin p, -cos p cos y), so looking into the camera is (0, 0), yaw > 0
looks towards the image's left and pitch > 0 looks up. Gaze is in the camera frame: it includes the
head's rotation, as L2CS-Net's does. `swapbench.metrics.gaze.gaze_vector` builds g.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import (
    expected_bins,
    features_from_rows,
    imagenet_normalize,
    to_uint8_rgb,
)
from swapbench.faces.resnet import ResNetTrunk
from swapbench.weights import WeightFile, register, strip_prefix

L2CS_GAZE360 = register(
    WeightFile(
        name="l2cs/L2CSNet_gaze360",
        filename="L2CSNet_gaze360.pkl",
        url="https://drive.google.com/drive/folders/17p6ORr-JQJcw-eYtG2WGNiuS_qVKwdWd",
        licence="MIT (Ahmednull/L2CS-Net); trained on Gaze360",
        note="Google Drive folder linked from the L2CS-Net README; take L2CSNet_gaze360.pkl",
    )
)[0]

# MediaPipe mesh indices (subject's right eye first; the iris centres are 468 and 473)
_EYES = (
    {"iris": 468, "corners": (33, 133), "lids": (159, 145)},
    {"iris": 473, "corners": (362, 263), "lids": (386, 374)},
)
# Iris-centre displacement per unit sine of the eye's rotation, in half eye widths: an eyeball
# radius of about 12 mm over half a palpebral fissure of about 15 mm (anthropometric averages).
IRIS_GAIN = 0.8


def head_rotation(transform: np.ndarray) -> np.ndarray:
    """Nearest rotation to the 3x3 part of MediaPipe's face-to-camera transform (x right, y up, z to the viewer)."""
    u, _, vt = np.linalg.svd(np.asarray(transform, dtype=np.float64)[:3, :3])
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def iris_gaze(landmarks: np.ndarray, transform: np.ndarray, width: int, height: int) -> np.ndarray:
    """(pitch, yaw) in degrees from MediaPipe's iris and eye landmarks.

    Approximation: landmarks are taken into the head's frame (undoing the head rotation of the
    transform matrix, orthographic camera). In each eye, the iris centre's horizontal offset from the
    midpoint of the eye corners and its vertical offset from the midpoint of the lids, in half eye
    widths, are sin(angle) * IRIS_GAIN of an eyeball rotating about its centre. The two eyes' unit
    vectors are averaged, rotated back by the head rotation into the camera frame and converted to
    L2CS-Net's (pitch, yaw).
    """
    rot = head_rotation(transform)
    # image coordinates -> camera frame with y up and z towards the viewer (mediapipe z grows away)
    pts = landmarks.astype(np.float64) * np.array([width, -height, -width])
    head = pts @ rot  # rows are rot.T @ p: the head's frame
    vectors = []
    for eye in _EYES:
        a, b = head[eye["corners"][0]], head[eye["corners"][1]]
        half = np.linalg.norm((a - b)[:2]) / 2
        iris = head[eye["iris"]]
        h = (iris[0] - (a[0] + b[0]) / 2) / half
        v = (iris[1] - (head[eye["lids"][0]][1] + head[eye["lids"][1]][1]) / 2) / half
        th, tv = np.arcsin(np.clip(h / IRIS_GAIN, -1, 1)), np.arcsin(np.clip(v / IRIS_GAIN, -1, 1))
        vectors.append([np.sin(th) * np.cos(tv), np.sin(tv), np.cos(th) * np.cos(tv)])
    g = rot @ np.mean(vectors, axis=0)
    g = np.array([g[0], -g[1], -g[2]]) / np.linalg.norm(g)  # -> x right, y down, z away from the camera
    pitch = np.degrees(np.arcsin(-g[1]))
    yaw = np.degrees(np.arctan2(-g[0], -g[2]))
    return np.array([pitch, yaw])


class MediapipeIrisGaze(FeatureBackend):
    """Gaze from MediaPipe's iris landmarks within the eye corners and lids (a geometric approximation)."""

    name = "mediapipe_iris_gaze"
    family = "gaze"
    dim = 2
    input = "aligned RGB face crop (any size; 256 FFHQ-aligned in the engine), uint8 after rounding"
    licence = "Apache-2.0 (MediaPipe face_landmarker.task)"

    def extract(self, images: torch.Tensor) -> Features:
        from swapbench.faces.mediapipe import shared

        arrays = to_uint8_rgb(images)
        results = shared().run(arrays)
        rows = [
            None if r is None else iris_gaze(r.landmarks, r.transform, a.shape[1], a.shape[0])
            for r, a in zip(results, arrays)
        ]
        return features_from_rows(rows, self.dim, self.name)


class L2CS(ResNetTrunk):
    """L2CS-Net (Abdelrahman et al. 2022): ResNet-50 with two 90-bin heads; state_dict keys of the release.

    The first output comes from fc_yaw_gaze and is the horizontal angle. (The official training, test and
    pipeline code name it `pitch`, as they do label[0] of GazeHub's Gaze360 labels; but their `gazeto3d`
    and `draw_gaze` both use it as the horizontal angle, so the layer names are right and those variable
    names are not.)
    """

    def __init__(self, num_bins: int = 90):
        super().__init__()
        self.fc_yaw_gaze = nn.Linear(2048, num_bins)
        self.fc_pitch_gaze = nn.Linear(2048, num_bins)
        self.fc_finetune = nn.Linear(2048 + 3, 3)  # unused; present in the released checkpoints

    def forward(self, x: torch.Tensor):
        f = self.features(x)
        return self.fc_yaw_gaze(f), self.fc_pitch_gaze(f)

    @staticmethod
    def angles(logits) -> torch.Tensor:
        """[B, 2] (pitch, yaw) in degrees: expectation over 4-degree bins starting at -180."""
        yaw_logits, pitch_logits = logits
        return torch.stack([expected_bins(pitch_logits, 4.0, -180.0), expected_bins(yaw_logits, 4.0, -180.0)], dim=1)


def l2cs_preprocess(images: torch.Tensor) -> torch.Tensor:
    """The official pipeline: face crop cv2.resize'd to 224 (bilinear), then Resize(448), ImageNet mean/std."""
    x = F.interpolate(images, size=(224, 224), mode="bilinear", align_corners=False)
    x = F.interpolate(x, size=(448, 448), mode="bilinear", align_corners=False)
    return imagenet_normalize(x)


class L2CSGaze(FeatureBackend):
    """L2CS-Net gaze (Gaze360 model)."""

    name = "l2cs"
    family = "gaze"
    dim = 2
    weights = (L2CS_GAZE360,)
    input = ("RGB face crop resized to 224 (bilinear) then to 448 (bilinear), ImageNet mean/std, as the "
             "official pipeline; the official crops are tight RetinaFace boxes")
    licence = L2CS_GAZE360.licence

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        self.model = L2CS()
        self.model.load_state_dict(strip_prefix(self.open(L2CS_GAZE360)), strict=True)
        self.model.eval().to(self.device)

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        values = L2CS.angles(self.model(l2cs_preprocess(images.to(self.device, torch.float32)))).float().cpu()
        n = values.shape[0]
        return Features(values=values, ok=torch.ones(n, dtype=torch.bool), reasons=[None] * n)
