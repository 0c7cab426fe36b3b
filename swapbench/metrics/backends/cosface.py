"""CosFace identity backends: MuggleWang's sphere20 (CosFace_pytorch net.py) in its two released files.

The network (MuggleWang/CosFace_pytorch net.py `sphere(type=20)`, MIT): four stages, each a 3x3
stride-2 convolution with bias and a PReLU, then 1, 2, 4, 1 residual blocks (conv 3x3 without bias,
PReLU, conv, PReLU, plus the input); 64, 128, 256, 512 channels; no batch norm; a linear layer from
the flattened 512 x 7 x W map to a raw 512-d feature. Its keys: `layerK.0` (conv), `layerK.1`
(PReLU), `layerK.N.conv1/prelu1/conv2/prelu2` and `fc`, 46 in all. Written here because no package
ships it.

Two files are in circulation, with the same 46 keys; only `fc.weight` tells them apart:

- `cosface_sphere20_casia`: `CosFace_ACC99.28.pth`, 112 x 96 input (fc from 512*7*6), the model of
  the CASIA face-swapping survey. As its eval_faceswap/face_recognition does: 5 points, the survey's
  112 x 96 template and its similarity (both point sets centred and divided by their pooled standard
  deviation, orthogonal-Procrustes rotation without reflection check, scale = ratio of the spreads:
  not the least-squares scale), bilinear warp with a zero border; RGB in [-1, 1]; the feature is
  concat(f(face), f(hflip(face))), 1024-d, L2-normalised.
- `cosface_sphere20_vggface2`: `net_sphere20_data_vggface2_acc_9955.pth`, 112 x 112 input (fc from
  512*7*7), used by ReliableSwap and FaceSwappingAllInOne. Input rule `cosface.input`:
  `arcface` (default: the face re-aligned to the ArcFace-112 template), `resize` (ReliableSwap's FF++
  eval: the whole crop resized bilinearly, align_corners=True, to 112, no alignment) or `theta`
  (FaceSwappingAllInOne's metrics/cosface @ ed38c1e for FFHQ-aligned crops: in [-1, 1], resize to 512,
  its fixed affine theta through affine_grid/grid_sample with a zero border, resize to 112, all
  bilinear with align_corners=True; the zero border is mid-grey, as it is zero in [-1, 1]). Raw 512-d
  feature, L2-normalised.

The 5 points come from dlib inside the eval crop (as for the insightface backends); the survey
instead aligns a swap with the target's landmarks, so numbers can differ where the swap moves the face.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swapbench.faces import templates
from swapbench.faces.warp import align_batch
from swapbench.metrics.backends.arcface_onnx import arcface_matrices
from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.weights import WeightFile, WeightsError, check_fits, register, strip_prefix

# The CASIA survey's 112 x 96 template (face_align.py): SphereFace's, with eye and mouth heights equalised.
CASIA_TEMPLATE = np.array([[30.2946, 51.6963], [65.5318, 51.6963], [48.0252, 71.7366],
                           [33.5493, 92.3655], [62.7299, 92.3655]])
CASIA_SIZE = (112, 96)  # rows, columns
ARCFACE_SIZE = 112
INPUT_RULES = ("arcface", "resize", "theta")
# FaceSwappingAllInOne's theta (metrics/cosface/__init__.py @ ed38c1e), as written there: an FFHQ-aligned face
# at 512 -> roughly the ArcFace framing; the translation is divided by 512 although theta is in [-1, 1] units.
FSAIO_THETA = torch.tensor([[1.07695457, -0.03625215, -1.56352194 / 512],
                            [0.03625215, 1.07695457, -5.32134629 / 512]])
FSAIO_SIZE = 512
_LICENCE = ("code MIT (MuggleWang/CosFace_pytorch); weights trained on {} (research-only data set), "
            "distributed by third parties")

CASIA_WEIGHTS, VGGFACE2_WEIGHTS = register(
    WeightFile(
        name="cosface/sphere20_casia",
        filename="CosFace_ACC99.28.pth",
        url="https://huggingface.co/budong123/CASIA_FaceSwapping_Models",
        licence=_LICENCE.format("CASIA-WebFace"),
        note=("the CASIA face-swapping survey's CosFace (README 'Pretrained Models'; also Baidu "
              "pan.baidu.com/s/1fXdbuc_qfOLQjdjGwjSQLg, password 6vkk); no checksum published"),
        manual=True,
    ),
    WeightFile(
        name="cosface/sphere20_vggface2",
        filename="net_sphere20_data_vggface2_acc_9955.pth",
        url="https://pan.baidu.com/s/1jtGYuYEhgzTOeXm1Aed_NA",
        licence=_LICENCE.format("VGGFace2"),
        note=("ReliableSwap's weights/third_party/cosface/ (Baidu, code ygss; environment_preparation.md); "
              "no checksum published"),
        manual=True,
    ),
)
FC_IN = {CASIA_WEIGHTS.name: 512 * 7 * 6, VGGFACE2_WEIGHTS.name: 512 * 7 * 7}


class Block(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.prelu1 = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.prelu2 = nn.PReLU(channels)

    def forward(self, x):
        return x + self.prelu2(self.conv2(self.prelu1(self.conv1(x))))


class Sphere20(nn.Module):
    """sphere20: [B, 3, 112, W] in [-1, 1] -> raw [B, 512]; W = 96 (fc_in 21504) or 112 (fc_in 25088)."""

    def __init__(self, fc_in: int = 512 * 7 * 6):
        super().__init__()
        channels, blocks = (3, 64, 128, 256, 512), (1, 2, 4, 1)
        for k, n in enumerate(blocks):
            stage = [nn.Conv2d(channels[k], channels[k + 1], 3, 2, 1), nn.PReLU(channels[k + 1])]
            setattr(self, f"layer{k + 1}", nn.Sequential(*stage, *(Block(channels[k + 1]) for _ in range(n))))
        self.fc = nn.Linear(fc_in, 512)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.flatten(1))


def load_sphere20(state: dict, wf: WeightFile) -> Sphere20:
    """The sphere20 of one of the two files; the other file (same keys, other fc) is named as such."""
    state = strip_prefix(state)
    shape = tuple(state["fc.weight"].shape) if isinstance(state.get("fc.weight"), torch.Tensor) else None
    expected = (512, FC_IN[wf.name])
    if shape is not None and shape != expected:
        other = next((f for f in (CASIA_WEIGHTS, VGGFACE2_WEIGHTS) if (512, FC_IN[f.name]) == shape), None)
        which = (f"it is the other CosFace variant, {other.name} ({other.filename})" if other else
                 "it is neither CosFace variant")
        raise WeightsError(
            f"{wf.filename} ({wf.name}) has fc.weight {shape}, not {expected}: {which}. "
            f"{CASIA_WEIGHTS.name} ({CASIA_WEIGHTS.filename}) has fc.weight (512, {FC_IN[CASIA_WEIGHTS.name]}) "
            f"for 112x96 input; {VGGFACE2_WEIGHTS.name} ({VGGFACE2_WEIGHTS.filename}) has (512, "
            f"{FC_IN[VGGFACE2_WEIGHTS.name]}) for 112x112. Get the right file from {wf.url}")
    net = Sphere20(FC_IN[wf.name])
    check_fits(net, state, wf, "CosFace sphere20")
    net.load_state_dict(state, strict=True)
    return net.eval()


def casia_similarity(points: np.ndarray) -> np.ndarray:
    """2x3 image -> 112x96 matrix of the CASIA survey (face_align.py) from 5 points [5, 2]."""
    src = np.asarray(points, np.float64)
    c_src, c_dst = src.mean(0), CASIA_TEMPLATE.mean(0)
    s_src, s_dst = (src - c_src).std(), (CASIA_TEMPLATE - c_dst).std()  # pooled over x and y
    if not np.isfinite(s_src) or s_src < 1e-9:
        raise ValueError("degenerate landmarks: no similarity transform")
    u, _, vt = np.linalg.svd(((src - c_src) / s_src).T @ ((CASIA_TEMPLATE - c_dst) / s_dst))
    rotation = (u @ vt).T
    scale = s_dst / s_src
    return np.hstack([scale * rotation, (c_dst - scale * rotation @ c_src)[:, None]])


def theta_warp(images: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] -> [B, 3, 112, 112] in [0, 1], FaceSwappingAllInOne's input of non-112 crops."""
    x = F.interpolate(images * 2 - 1, size=(FSAIO_SIZE, FSAIO_SIZE), mode="bilinear", align_corners=True)
    grid = F.affine_grid(FSAIO_THETA.to(x).expand(len(x), 2, 3), list(x.shape), align_corners=True)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)  # 0 in [-1, 1]: grey
    return (F.interpolate(x, size=(ARCFACE_SIZE, ARCFACE_SIZE), mode="bilinear", align_corners=True) + 1) / 2


class CosFaceSphere20(FeatureBackend):
    """MuggleWang's sphere20 CosFace on faces re-aligned inside the eval crop."""

    family = "identity"
    weight: WeightFile

    def __init__(self, files=None, device="cpu"):
        super().__init__(files, device)
        self.module = load_sphere20(self.open(self.weight), self.weight).to(self.device)

    def extract(self, images: torch.Tensor) -> Features:
        crops, ok, reasons = self.crops(images.float())
        values = torch.zeros(len(ok), self.dim, dtype=torch.float32)
        if len(crops):
            with torch.no_grad():
                values[ok] = F.normalize(self.embed(crops.to(self.device) * 2 - 1).float().cpu(), dim=1)
        reasons = [None if good else f"{r} ({self.name})" for good, r in zip(ok.tolist(), reasons)]
        return Features(values=values, ok=ok, reasons=reasons)

    def aligned(self, images: torch.Tensor, estimate):
        """Crops [N, 3, 112, 112] in [0, 1] of the images where dlib finds a face, their mask and reasons."""
        matrices, reasons = arcface_matrices(images, estimate)
        ok = torch.tensor([m is not None for m in matrices], dtype=torch.bool)
        if not ok.any():
            return images.new_zeros(0, 3, ARCFACE_SIZE, ARCFACE_SIZE), ok, reasons
        found = np.stack([m for m in matrices if m is not None])
        return align_batch(images[ok.to(images.device)], found, ARCFACE_SIZE, padding_mode="zeros").clamp(0, 1), ok, reasons


class CosFaceSphere20CASIA(CosFaceSphere20):
    """CASIA survey's CosFace: 112x96 survey alignment, flip-concatenated 1024-d feature."""

    name = "cosface_sphere20_casia"
    dim = 1024
    weight = CASIA_WEIGHTS
    weights = (CASIA_WEIGHTS,)
    licence = CASIA_WEIGHTS.licence
    input = ("RGB eval crop; dlib HOG + 68 landmarks -> 5 points -> CASIA survey 112x96 template (std-ratio "
             "similarity, bilinear, zero border); [-1, 1]; sphere20 on the face and its mirror, concatenated "
             "(1024-d), L2-normalised")

    def crops(self, images):
        crops, ok, reasons = self.aligned(images, lambda lm: casia_similarity(templates.five_points(lm)))
        return crops[..., :CASIA_SIZE[1]], ok, reasons  # the survey keeps the [0:112, 0:96] corner of the warp

    def embed(self, x):
        return torch.cat([self.module(x), self.module(x.flip(-1))], dim=1)


class CosFaceSphere20VGGFace2(CosFaceSphere20):
    """ReliableSwap's / FaceSwappingAllInOne's CosFace: 112x112 input, raw 512-d feature."""

    name = "cosface_sphere20_vggface2"
    dim = 512
    weight = VGGFACE2_WEIGHTS
    weights = (VGGFACE2_WEIGHTS,)
    licence = VGGFACE2_WEIGHTS.licence
    input = ("RGB eval crop; input rule `cosface.input`: arcface (default; dlib 5 points -> ArcFace 112 template, "
             "bilinear, zero border), resize (whole crop, bilinear align_corners=True to 112, ReliableSwap) or theta "
             "(FaceSwappingAllInOne: resize to 512, its affine theta, grey border, resize to 112); "
             "[-1, 1]; sphere20, L2-normalised")

    def __init__(self, files=None, device="cpu", input_rule: str = "arcface"):
        if input_rule not in INPUT_RULES:
            raise ValueError(f"cosface.input must be one of {', '.join(INPUT_RULES)}, not {input_rule!r}")
        super().__init__(files, device)
        self.input_rule = input_rule

    @classmethod
    def from_config(cls, files, cfg):
        return cls(files, input_rule=(cfg.get("cosface") or {}).get("input", "arcface"))

    @property
    def feature_name(self) -> str:
        return self.name if self.input_rule == "arcface" else f"{self.name}/{self.input_rule}"

    def crops(self, images):
        if self.input_rule == "arcface":
            return self.aligned(images, None)
        x = theta_warp(images) if self.input_rule == "theta" else F.interpolate(
            images, size=(ARCFACE_SIZE, ARCFACE_SIZE), mode="bilinear", align_corners=True)
        return x, torch.ones(len(images), dtype=torch.bool), [None] * len(images)

    def embed(self, x):
        return self.module(x)
