"""insightface ArcFace recognition models (ONNX) through onnxruntime: w600k_r50 and glint360k r100.

What insightface's model_zoo/arcface_onnx.py (ArcFaceONNX) does, on swapbench's crops:

- the face is aligned to insightface's 5-point ArcFace template at 112 x 112 (face_align.norm_crop:
  a least-squares similarity, cv2.warpAffine with a zero border). Here the 5 points are found in
  the engine's eval crop by dlib (HOG detector with 1x upsampling and the 68-point predictor, the
  detector of swapbench.faces.detect), the largest face is kept, and the warp runs batched on the
  device (swapbench.faces.warp.align_batch, zero padding like cv2's default border). A crop
  without a face has no embedding and counts as a failure of the identity metrics;
- get_feat and the graph's input and output: swapbench.faces.insightface_arcface (shared with the
  methods that condition on an insightface embedding). swapbench L2-normalises the embedding (cosine
  similarity is what the identity metrics compare).
"""

from __future__ import annotations

import numpy as np
import torch

from swapbench.faces import templates
from swapbench.faces.insightface_arcface import (
    ARCFACE_SIZE,
    GLINT360K_R100,
    INPUT_MEAN,
    INPUT_STD,
    W600K_R50,
    ArcFaceONNX,
    blob,
)
from swapbench.faces.warp import align_batch
from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import to_uint8_rgb
from swapbench.weights import WeightFile

CONVENTION = f"arcface_{ARCFACE_SIZE}"
__all__ = ["GLINT360K_R100", "W600K_R50", "blob", "InsightfaceArcFace", "InsightfaceW600kR50", "InsightfaceGlint360kR100"]


def arcface_matrices(images: torch.Tensor, estimate=None) -> tuple[list, list]:
    """Per image: the image -> arcface_112 matrix from dlib's landmarks in it, or None and a reason.

    estimate: landmarks [68, 2] -> 2x3 matrix, for another template (default: arcface_112)."""
    from swapbench.faces import detect

    matrices, reasons = [], []
    for img in to_uint8_rgb(images):
        faces = detect.detect(img)
        if not faces:
            matrices.append(None)
            reasons.append("no face found by dlib HOG in the crop")
            continue
        face, _ = detect.pick(faces, img.shape, "largest")
        try:
            matrices.append(estimate(face.landmarks) if estimate else templates.estimate_transform(CONVENTION, face.landmarks))
            reasons.append(None)
        except ValueError as err:  # degenerate landmarks
            matrices.append(None)
            reasons.append(str(err))
    return matrices, reasons



class InsightfaceArcFace(FeatureBackend):
    """An insightface ArcFace ONNX model on arcface_112 crops re-aligned from the eval crop."""

    family = "identity"
    dim = 512
    weight: WeightFile
    input_mean = INPUT_MEAN
    input_std = INPUT_STD
    input = ("RGB eval crop; dlib HOG + 68 landmarks inside it -> 5 points -> insightface ArcFace template "
             "(similarity, 112x112, bilinear, zero border); RGB, (x*255 - 127.5) / 127.5, NCHW; output L2-normalised")

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        self.model = ArcFaceONNX(self.open(self.weight), str(self.device), self.input_mean, self.input_std)
        self.max_batch = self.model.max_batch

    def align(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        """arcface_112 crops [N, 3, 112, 112] of the images with a face, their row mask [B] and reasons [B]."""
        matrices, reasons = arcface_matrices(images)
        ok = torch.tensor([m is not None for m in matrices], dtype=torch.bool)
        if not ok.any():
            return images.new_zeros(0, 3, ARCFACE_SIZE, ARCFACE_SIZE), ok, reasons
        found = np.stack([m for m in matrices if m is not None])
        crops = align_batch(images[ok.to(images.device)].float(), found, ARCFACE_SIZE, padding_mode="zeros")
        return crops.clamp(0, 1), ok, reasons

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings [N, 512] of arcface_112 RGB crops [N, 3, 112, 112] in [0, 1]."""
        return self.model.embed(crops)

    def extract(self, images: torch.Tensor) -> Features:
        crops, ok, reasons = self.align(images)
        values = torch.zeros(len(ok), self.dim, dtype=torch.float32)
        if len(crops):
            values[ok] = self.embed(crops)
        reasons = [None if good else f"{r} ({self.name})" for good, r in zip(ok.tolist(), reasons)]
        return Features(values=values, ok=ok, reasons=reasons)


class InsightfaceW600kR50(InsightfaceArcFace):
    """ArcFace ResNet-50 trained on WebFace600K: the recognition model of insightface's buffalo_l pack."""

    name = "insightface_w600k_r50"
    weight = W600K_R50
    weights = (W600K_R50,)
    licence = W600K_R50.licence


class InsightfaceGlint360kR100(InsightfaceArcFace):
    """ArcFace ResNet-100 trained on Glint360K: the recognition model of insightface's antelopev2 pack."""

    name = "insightface_glint360k_r100"
    weight = GLINT360K_R100
    weights = (GLINT360K_R100,)
    licence = GLINT360K_R100.licence
