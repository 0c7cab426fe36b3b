"""Head pose backends: (yaw, pitch, roll) in degrees, one Euler convention for all of them.

Convention (Hopenet's, read from its `draw_axis`): yaw > 0 turns the nose towards the image's
left (the subject turns to their right), pitch > 0 raises the face, roll > 0 rotates the face
clockwise in the image. With R the rotation from the face's own frame to the camera frame, both
with x to the image right, y up and z towards the viewer (R = I for a frontal face),
R = Ry(-yaw) @ Rx(-pitch) @ Rz(-roll): yaw is applied first about the vertical axis, then pitch,
then roll (intrinsic Y-X-Z). A horizontal flip of the image negates yaw and roll, keeps pitch.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torch import nn

from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import (
    expected_bins,
    features_from_rows,
    imagenet_normalize,
    resize,
    to_uint8_rgb,
)
from swapbench.faces.resnet import ResNetTrunk
from swapbench.weights import WeightFile, register, strip_prefix

HOPENET_ROBUST = register(
    WeightFile(
        name="hopenet/hopenet_robust_alpha1",
        filename="hopenet_robust_alpha1.pkl",
        url="https://drive.google.com/open?id=1m25PrSE7g9D2q2XJVMR6IA7RaCvWSzCR",
        licence="Apache-2.0 (natanielruiz/deep-head-pose); trained on 300W-LP",
        note="the '300W-LP, alpha 1, robust to image quality' model of the deep-head-pose README (Google Drive)",
    )
)[0]


def euler_from_rotation(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from a face-to-camera rotation (x right, y up, z to the viewer).

    The matrix is first projected on the rotations (SVD), since MediaPipe's transform may carry a scale.
    """
    u, _, vt = np.linalg.svd(np.asarray(rotation, dtype=np.float64)[:3, :3])
    r = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    a, b, c = Rotation.from_matrix(r).as_euler("YXZ", degrees=True)
    return np.array([-a, -b, -c])


class MediapipePose(FeatureBackend):
    """Head pose from MediaPipe FaceLandmarker's facial transformation matrix."""

    name = "mediapipe_pose"
    family = "pose"
    dim = 3
    input = "aligned RGB face crop (any size; 256 FFHQ-aligned in the engine), uint8 after rounding"
    licence = "Apache-2.0 (MediaPipe face_landmarker.task)"

    def extract(self, images: torch.Tensor) -> Features:
        from swapbench.faces.mediapipe import shared

        results = shared().run(to_uint8_rgb(images))
        rows = [None if r is None else euler_from_rotation(r.transform) for r in results]
        return features_from_rows(rows, self.dim, self.name)


# Mesh vertex of MediaPipe's canonical face model nearest to each of dlib's 68 points, derived by
# tools/derive_pnp68_indices.py on the bundled sample faces (9 faces, mean residual 0.07 inter-ocular distances).
DLIB68_TO_MESH = (
    34, 227, 137, 213, 138, 136, 170, 176, 152, 377, 378, 365,
    397, 288, 361, 454, 356, 70, 63, 66, 66, 55, 336, 296,
    334, 293, 300, 168, 197, 5, 4, 166, 20, 2, 326, 305,
    33, 160, 158, 173, 145, 144, 382, 385, 387, 263, 373, 380,
    57, 40, 37, 0, 267, 269, 291, 405, 314, 17, 84, 91,
    78, 38, 12, 312, 407, 317, 14, 87,
)  # fmt: skip


def mean_face_68() -> np.ndarray:
    """[68, 3] 3D mean face (cm; x right, y up, z to the viewer) from MediaPipe's canonical face model."""
    from swapbench.faces.mediapipe import canonical_face_model

    return canonical_face_model()[list(DLIB68_TO_MESH)].astype(np.float64)


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib
    import face_recognition_models

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def pnp_pose(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(yaw, pitch, roll) from 68 image points by cv2.solvePnP against the 3D mean face.

    Pinhole camera with focal length = image width, principal point at the image centre, no distortion.
    """
    import cv2

    model = mean_face_68()
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    ok, rvec, _ = cv2.solvePnP(model, points.astype(np.float64), camera, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    r_cv = cv2.Rodrigues(rvec)[0]  # model -> OpenCV camera (x right, y down, z forward)
    return euler_from_rotation(np.diag([1.0, -1.0, -1.0]) @ r_cv)  # -> camera with y up, z to the viewer


class Pnp68Pose(FeatureBackend):
    """Head pose from dlib's 68 landmarks fitted to a 3D mean face with cv2.solvePnP."""

    name = "pnp68_pose"
    family = "pose"
    dim = 3
    input = ("aligned RGB face crop; dlib HOG detection (1x upsampling) inside the crop, 68-point shape "
             "predictor, PnP with focal length = crop width")
    licence = "dlib models: Boost Software License / CC0 (face_recognition_models); mean face from MediaPipe (Apache-2.0)"

    def extract(self, images: torch.Tensor) -> Features:
        detector, predictor = _dlib_models()
        rows = []
        for img in to_uint8_rgb(images):
            rects = detector(img, 1)
            if not rects:
                rows.append(None)
                continue
            rect = max(rects, key=lambda r: r.area())
            points = np.array([(p.x, p.y) for p in predictor(img, rect).parts()], dtype=np.float64)
            rows.append(pnp_pose(points, img.shape[1], img.shape[0]))
        return features_from_rows(rows, self.dim, self.name)


class Hopenet(ResNetTrunk):
    """Hopenet (Ruiz et al. 2018): ResNet-50 with three 66-bin heads; state_dict keys of the release."""

    def __init__(self, num_bins: int = 66):
        super().__init__()
        self.fc_yaw = nn.Linear(2048, num_bins)
        self.fc_pitch = nn.Linear(2048, num_bins)
        self.fc_roll = nn.Linear(2048, num_bins)
        self.fc_finetune = nn.Linear(2048 + 3, 3)  # unused; present in the released checkpoints

    def forward(self, x: torch.Tensor):
        f = self.features(x)
        return self.fc_yaw(f), self.fc_pitch(f), self.fc_roll(f)

    @staticmethod
    def angles(logits) -> torch.Tensor:
        """[B, 3] (yaw, pitch, roll) in degrees: expectation over 3-degree bins starting at -99."""
        return torch.stack([expected_bins(x, 3.0, -99.0) for x in logits], dim=1)


class HopenetPose(FeatureBackend):
    """Hopenet head pose, the pose backend of REFace's protocol."""

    name = "hopenet"
    family = "pose"
    dim = 3
    weights = (HOPENET_ROBUST,)
    input = ("RGB face crop resized to 224x224 (bilinear, antialiased), ImageNet mean/std; the official "
             "test scripts use a loose face box, Scale(224) + CenterCrop(224)")
    licence = HOPENET_ROBUST.licence

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        self.model = Hopenet()
        self.model.load_state_dict(strip_prefix(self.open(HOPENET_ROBUST)), strict=True)
        self.model.eval().to(self.device)

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        x = imagenet_normalize(resize(images.to(self.device, torch.float32), 224))
        values = Hopenet.angles(self.model(x)).float().cpu()
        n = values.shape[0]
        return Features(values=values, ok=torch.ones(n, dtype=torch.bool), reasons=[None] * n)
