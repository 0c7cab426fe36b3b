"""Expression backends: mediapipe blendshapes (52-d), HSEmotion logits (8-d), Deep3DFaceRecon `exp` (64-d).

The Deep3DFaceRecon network and the BFM file declaration live in swapbench.faces.deep3d (shared with
Face-Adapter); they are re-exported here."""

from __future__ import annotations

import numpy as np
import torch

from swapbench.faces.deep3d import BFM_MODEL_FRONT, Deep3DReconNet
from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import features_from_rows, to_uint8_rgb
from swapbench.weights import WeightFile, register

__all__ = ["BFM_MODEL_FRONT", "Deep3DExpression", "Deep3DReconNet", "HSEmotion", "MediapipeBlendshapes"]

HSEMOTION_B0_VGAF = register(
    WeightFile(
        name="hsemotion/enet_b0_8_best_vgaf",
        filename="enet_b0_8_best_vgaf.onnx",
        format="onnx",
        url="https://github.com/HSE-asavchenko/face-emotion-recognition/raw/main/models/affectnet_emotions/onnx/enet_b0_8_best_vgaf.onnx",
        licence="Apache-2.0 (HSE-asavchenko/face-emotion-recognition); trained on AffectNet",
        note="the file hsemotion-onnx 0.3.1 downloads into ~/.hsemotion",
    )
)[0]

DEEP3D_NET = register(
    WeightFile(
        name="deep3d/epoch_20",
        filename="epoch_20.pth",
        format="state_dict",  # a dict holding net_recon
        url="https://drive.google.com/drive/folders/1liaIxn9smpudjjqMaWWRpP0mXRW_qRPP",
        licence="MIT (sicxu/Deep3DFaceRecon_pytorch); trained on CelebA, LFW, 300W-LP, IJB-A, LS3D-W, FFHQ",
        note="checkpoints/face_recon_feat0.2_augment/epoch_20.pth of the Deep3DFaceRecon_pytorch README (Google Drive)",
    ),
    WeightFile(
        name="deep3d/similarity_Lm3D_all",
        filename="similarity_Lm3D_all.mat",
        format="mat",
        url="https://github.com/sicxu/Deep3DFaceRecon_pytorch/raw/master/BFM/similarity_Lm3D_all.mat",
        licence="MIT (sicxu/Deep3DFaceRecon_pytorch)",
        note="the 3D landmarks the official code aligns faces to (BFM/ folder of the repository)",
    ),
)


class MediapipeBlendshapes(FeatureBackend):
    """MediaPipe FaceLandmarker's 52 blendshape scores (ARKit-style names, in the model's fixed order)."""

    name = "mediapipe_blendshapes"
    family = "expression"
    dim = 52
    input = "aligned RGB face crop (any size; 256 FFHQ-aligned in the engine), uint8 after rounding"
    licence = "Apache-2.0 (MediaPipe face_landmarker.task)"

    def extract(self, images: torch.Tensor) -> Features:
        from swapbench.faces.mediapipe import shared

        results = shared().run(to_uint8_rgb(images))
        return features_from_rows([None if r is None else r.blendshapes for r in results], self.dim, self.name)


class HSEmotion(FeatureBackend):
    """HSEmotion EfficientNet-B0 (enet_b0_8_best_vgaf) emotion logits, as hsemotion-onnx computes them.

    Preprocessing of hsemotion-onnx 0.3.1: cv2.resize (bilinear) of the RGB face to 224x224, /255,
    ImageNet mean/std; the ONNX input is named "input" and the first output holds 8 logits
    (Anger, Contempt, Disgust, Fear, Happiness, Neutral, Sadness, Surprise). The logits are the features.
    """

    name = "hsemotion"
    family = "expression"
    dim = 8
    weights = (HSEMOTION_B0_VGAF,)
    input = "RGB face crop, cv2.resize to 224x224 (bilinear), /255, ImageNet mean/std (hsemotion-onnx 0.3.1)"
    licence = HSEMOTION_B0_VGAF.licence
    size = 224

    def __init__(self, files=None, device="cpu"):
        import onnxruntime as ort

        super().__init__(files, device)
        self.session = ort.InferenceSession(str(self.open(HSEMOTION_B0_VGAF)), providers=["CPUExecutionProvider"])

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        import cv2

        x = cv2.resize(image, (self.size, self.size)) / 255
        x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
        return x.transpose(2, 0, 1).astype(np.float32)

    def extract(self, images: torch.Tensor) -> Features:
        batch = np.stack([self.preprocess(a) for a in to_uint8_rgb(images)])
        logits = self.session.run(None, {"input": batch})[0]
        n = len(batch)
        return Features(values=torch.from_numpy(np.asarray(logits, dtype=np.float32)), ok=torch.ones(n, dtype=torch.bool),
                        reasons=[None] * n)


def deep3d_five_points(lm3d_68: np.ndarray) -> np.ndarray:
    """The official load_lm3d: 5 points (eye centres, nose tip, mouth corners) from 68 3D landmarks."""
    idx = np.array([31, 37, 40, 43, 46, 49, 55]) - 1
    p = np.stack([lm3d_68[idx[0]], lm3d_68[idx[[1, 2]]].mean(0), lm3d_68[idx[[3, 4]]].mean(0), lm3d_68[idx[5]], lm3d_68[idx[6]]])
    return p[[1, 2, 0, 3, 4]]


def deep3d_align(image: np.ndarray, lm5: np.ndarray, lm3d5: np.ndarray, size: int = 224, rescale: float = 102.0) -> np.ndarray:
    """The official align_img: scale and translation (no rotation) fitted by least squares (POS) from
    5 image points (y upwards, as the official code flips them) to the 3D landmarks; bicubic resize, crop 224."""
    from PIL import Image

    h0, w0 = image.shape[:2]
    xp = np.stack([lm5[:, 0], h0 - 1 - lm5[:, 1]], axis=1)
    n = len(xp)
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3], a[0::2, 3] = lm3d5, 1
    a[1::2, 4:7], a[1::2, 7] = lm3d5, 1
    k = np.linalg.lstsq(a, xp.reshape(-1), rcond=None)[0]
    s = rescale / ((np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2)
    tx, ty = k[3], k[7]
    w, h = int(w0 * s), int(h0 * s)
    left = int(w / 2 - size / 2 + (tx - w0 / 2) * s)
    up = int(h / 2 - size / 2 + (h0 / 2 - ty) * s)
    img = Image.fromarray(image).resize((w, h), resample=Image.BICUBIC).crop((left, up, left + size, up + size))
    return np.asarray(img)


# MediaPipe indices standing in for the MTCNN 5 points the official code uses:
# iris centres (image-left eye first), nose tip, mouth corners (image-left first).
MEDIAPIPE_5 = ((468,), (473,), (1,), (61,), (291,))


class Deep3DExpression(FeatureBackend):
    """Deep3DFaceRecon_pytorch expression coefficients (64-d `exp`), REFace's expression backend.

    The official test aligns each photo from 5 detected landmarks; here the 5 points come from MediaPipe
    (iris centres, nose tip, mouth corners) found in the aligned crop; rows without a MediaPipe face fail.
    """

    name = "deep3d_exp"
    family = "expression"
    dim = 64
    weights = DEEP3D_NET
    input = ("RGB face crop; 5 MediaPipe points -> the official align_img (scale+translation to "
             "similarity_Lm3D_all.mat, rescale 102, bicubic, 224 crop), RGB in [0, 1]")
    licence = "MIT (sicxu/Deep3DFaceRecon_pytorch)"

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        net, lm3d = self.weights
        ckpt = self.open(net)
        self.model = Deep3DReconNet()
        self.model.load_state_dict(ckpt["net_recon"] if "net_recon" in ckpt else ckpt, strict=True)
        self.model.eval().to(self.device)
        self.lm3d5 = deep3d_five_points(self.open(lm3d)["lm"])

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        from swapbench.faces.mediapipe import shared

        arrays = to_uint8_rgb(images)
        results = shared().run(arrays)
        rows = [None] * len(arrays)
        crops, where = [], []
        for i, (a, r) in enumerate(zip(arrays, results)):
            if r is not None:
                lm5 = np.stack([r.pixels[list(ix)].mean(0) for ix in MEDIAPIPE_5])
                crops.append(deep3d_align(a, lm5, self.lm3d5))
                where.append(i)
        if crops:
            x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(255).to(self.device)
            values = self.coefficients(self.model(x)).cpu().numpy()
            for i, e in zip(where, values):
                rows[i] = e
        return features_from_rows(rows, self.dim, self.name)

    @staticmethod
    def coefficients(coeffs: torch.Tensor) -> torch.Tensor:
        """The backend's part of the 257 coefficients."""
        return Deep3DReconNet.exp(coeffs)


class Deep3DShape(Deep3DExpression):
    """Deep3DFaceRecon_pytorch identity coefficients (80-d `id`, the BFM shape basis): the shape backend.

    Same network, checkpoint and alignment as deep3d_exp; a run with both computes the network twice
    (features are stored per backend)."""

    name = "deep3d_id"
    family = "shape"
    dim = 80

    @staticmethod
    def coefficients(coeffs: torch.Tensor) -> torch.Tensor:
        return Deep3DReconNet.shape_id(coeffs)
