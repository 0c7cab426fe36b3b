"""insightface ArcFace recognition models (ONNX) through onnxruntime: w600k_r50 and glint360k r100.

What insightface's model_zoo/arcface_onnx.py (ArcFaceONNX) does, on swapbench's crops:

- the face is aligned to insightface's 5-point ArcFace template at 112 x 112 (face_align.norm_crop:
  a least-squares similarity, cv2.warpAffine with a zero border). Here the 5 points are found in
  the engine's eval crop by dlib (HOG detector with 1x upsampling and the 68-point predictor, the
  detector of swapbench.faces.detect), the largest face is kept, and the warp runs batched on the
  device (swapbench.faces.warp.align_batch, zero padding like cv2's default border). A crop
  without a face has no embedding and counts as a failure of the identity metrics;
- get_feat: cv2.dnn.blobFromImages(crops, 1 / std, (112, 112), (mean, mean, mean), swapRB=True)
  on BGR crops, i.e. RGB channel order, (pixel - mean) / std, NCHW float32. Both model files are
  PyTorch (arcface_torch) exports without a Sub/Mul input stage, for which ArcFaceONNX picks
  mean = std = 127.5 (the values insightface's model-pack manifest lists for them);
- the ONNX graph has one input (dynamic batch) and one output, the 512-d unnormalised embedding.
  swapbench L2-normalises it (cosine similarity is what the identity metrics compare).
"""

from __future__ import annotations

import numpy as np
import torch

from swapbench.faces import templates
from swapbench.faces.warp import align_batch
from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import to_uint8_rgb
from swapbench.weights import WeightFile, register

ARCFACE_SIZE = 112
CONVENTION = f"arcface_{ARCFACE_SIZE}"

_PACKS = "https://github.com/deepinsight/insightface/releases/download/v0.7/{}.zip"
_LICENCE = "insightface model packs: non-commercial research use only (code MIT)"

# sha256 as published in insightface's server/backend/insightface_server/models/packages.py.
# The files ship inside zip packs, which `bench weights download` cannot unpack: manual=True makes it
# print the pack's URL, what to extract and where to put it instead of fetching the whole zip.
W600K_R50 = register(
    WeightFile(
        name="insightface/buffalo_l/w600k_r50", filename="w600k_r50.onnx", format="onnx", url=_PACKS.format("buffalo_l"),
        licence=_LICENCE + "; trained on WebFace600K",
        sha256="4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
        note="w600k_r50.onnx is inside buffalo_l.zip: extract it",
        manual=True,
    )
)[0]
GLINT360K_R100 = register(
    WeightFile(
        name="insightface/antelopev2/glintr100", filename="glintr100.onnx", format="onnx", url=_PACKS.format("antelopev2"),
        licence=_LICENCE + "; trained on Glint360K",
        sha256="4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf",
        note="glintr100.onnx (ResNet-100 trained on Glint360K) is inside antelopev2.zip: extract it",
        manual=True,
    )
)[0]


def arcface_matrices(images: torch.Tensor) -> tuple[list, list]:
    """Per image: the image -> arcface_112 matrix from dlib's landmarks in it, or None and a reason."""
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
            matrices.append(templates.estimate_transform(CONVENTION, face.landmarks))
            reasons.append(None)
        except ValueError as err:  # degenerate landmarks
            matrices.append(None)
            reasons.append(str(err))
    return matrices, reasons


def blob(crops: torch.Tensor, mean: float, std: float) -> np.ndarray:
    """insightface's blobFromImages preprocessing of RGB crops [B, 3, S, S] in [0, 1]: float32 NCHW.

    The crops are rounded to 8 bits first: insightface warps uint8 images, so its network sees uint8 crops.
    """
    pixels = (crops.detach().float().cpu().clamp(0, 1) * 255).round()
    return ((pixels - mean) / std).numpy().astype(np.float32)


class InsightfaceArcFace(FeatureBackend):
    """An insightface ArcFace ONNX model on arcface_112 crops re-aligned from the eval crop."""

    family = "identity"
    dim = 512
    weight: WeightFile
    input_mean = 127.5
    input_std = 127.5
    input = ("RGB eval crop; dlib HOG + 68 landmarks inside it -> 5 points -> insightface ArcFace template "
             "(similarity, 112x112, bilinear, zero border); RGB, (x*255 - 127.5) / 127.5, NCHW; output L2-normalised")

    def __init__(self, files=None, device="cpu"):
        import onnxruntime as ort

        super().__init__(files, device)
        self.session = ort.InferenceSession(str(self.open(self.weight)), providers=self._providers(ort))
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        if tuple(inp.shape[2:]) != (ARCFACE_SIZE, ARCFACE_SIZE):
            raise ValueError(f"{self.files[self.weight.name]}: expected a 112x112 input, got shape {inp.shape}")
        # Models exported with a fixed batch size are run in chunks of that size.
        self.max_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None

    def _providers(self, ort) -> list[str]:
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

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
        x = blob(crops, self.input_mean, self.input_std)
        step = self.max_batch or max(len(x), 1)
        out = [self.session.run([self.output_name], {self.input_name: x[i:i + step]})[0] for i in range(0, len(x), step)]
        values = torch.from_numpy(np.concatenate(out).astype(np.float32)) if out else torch.zeros(0, self.dim)
        return torch.nn.functional.normalize(values, dim=1)

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
