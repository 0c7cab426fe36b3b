"""insightface's ArcFace recognition ONNX files and how insightface feeds them (model_zoo/arcface_onnx.py).

Shared by the identity metric backends (swapbench.metrics.backends.arcface_onnx) and by methods that
condition on an insightface embedding (INSwapper's source latent comes from buffalo_l's w600k_r50):

- get_feat: cv2.dnn.blobFromImages(crops, 1 / std, (112, 112), (mean, mean, mean), swapRB=True) on
  BGR uint8 crops, i.e. RGB channel order, (pixel - mean) * (1 / std), NCHW float32. Both files are
  PyTorch (arcface_torch) exports without a Sub/Mul input stage, for which ArcFaceONNX picks
  mean = std = 127.5 (the values insightface's model-pack manifest lists for them);
- the graph has one input (dynamic batch, or a fixed one run in chunks) and one output, the 512-d
  unnormalised embedding; `normed_embedding` is its L2 normalisation.
"""

from __future__ import annotations

import numpy as np
import torch

from swapbench.weights import WeightFile, register

ARCFACE_SIZE = 112
INPUT_MEAN = 127.5
INPUT_STD = 127.5

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


def onnx_providers(device: str) -> tuple:
    """onnxruntime's CUDA provider for a CUDA device where the installed onnxruntime has it, else the CPU."""
    if str(device).startswith("cuda"):
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            index = int(str(device).partition(":")[2] or 0)
            return (("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider")
    return ("CPUExecutionProvider",)


def to_pixels(crops: torch.Tensor) -> torch.Tensor:
    """Float crops in [0, 1] as the 8-bit pixel values insightface's uint8 warps give, float32 on the CPU."""
    return (crops.detach().float().cpu().clamp(0, 1) * 255).round()


def blob(crops: torch.Tensor, mean: float = INPUT_MEAN, std: float = INPUT_STD) -> np.ndarray:
    """insightface's blobFromImages preprocessing of RGB crops [B, 3, S, S] in [0, 1]: float32 NCHW.

    The crops are rounded to 8 bits first: insightface warps uint8 images, so its network sees uint8 crops.
    OpenCV multiplies by the float32 reciprocal of std (a division differs in the last bit).
    """
    return ((to_pixels(crops) - mean) * np.float32(1 / std)).numpy().astype(np.float32)


class ArcFaceONNX:
    """An insightface ArcFace ONNX file in an onnxruntime session: 112 x 112 crops -> normed embeddings."""

    dim = 512

    def __init__(self, path, device: str = "cpu", mean: float = INPUT_MEAN, std: float = INPUT_STD):
        import onnxruntime as ort

        self.path, self.mean, self.std = path, mean, std
        self.session = ort.InferenceSession(str(path), providers=list(onnx_providers(str(device))))
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        if tuple(inp.shape[2:]) != (ARCFACE_SIZE, ARCFACE_SIZE):
            raise ValueError(f"{path}: expected a 112x112 input, got shape {inp.shape}")
        # Models exported with a fixed batch size are run in chunks of that size.
        self.max_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None

    def features(self, crops: torch.Tensor) -> np.ndarray:
        """Raw (unnormalised) float32 embeddings [N, 512] of arcface_112 RGB crops [N, 3, 112, 112] in [0, 1]."""
        x = blob(crops, self.mean, self.std)
        step = self.max_batch or max(len(x), 1)
        out = [self.session.run([self.output_name], {self.input_name: x[i:i + step]})[0] for i in range(0, len(x), step)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings [N, 512] of arcface_112 RGB crops [N, 3, 112, 112] in [0, 1]."""
        return torch.nn.functional.normalize(torch.from_numpy(self.features(crops)), dim=1)
