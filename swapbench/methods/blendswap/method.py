"""BlendSwap (mapooon/BlendFace @ 0203d91, CC BY-NC-SA 4.0) as a swapbench method.

Faithful to the official inference (swapping/inference.py and swapping/blendswap.py):

  source    an ArcFace-112 crop (insightface's 5-point template; swapbench's arcface_112), RGB in
            [0, 1] -> (x - 0.5) / 0.5 -> `Z_e` (an iresnet100, BlendSwap's own copy of the identity
            encoder) -> 512-d embedding, L2-normalised.
  target    an FFHQ-aligned 256 crop (ffhq_256), RGB in [0, 1], not normalised.
  network   the EMA copies: attribute encoder `E_ema` -> 8 maps z_att; AAD generator `G_ema`(z_id, z_att)
            -> sigmoid image; mask = sigmoid(`mask_head_ema`(z_att[-1])) (1x1 conv, target only);
            output = image * mask + target * (1 - mask).
  output    (output * 255).astype(uint8): truncated to 8 bits (`truncate`, the default: it costs nothing).

`blendswap.pth` is the whole BlendSwap state dict (1,825 keys). It is checked strictly, key for key
and shape for shape, as the official strict load does; then only the keys the official inference reads
are kept (`G_ema.`, `E_ema.`, `mask_head_ema.`, `Z_e.1.`, 1,375 keys). The online copies `G.`, `E.`
and `mask_head.` (450 keys, 350M values) are training state, unused at inference, and dropped.

Inputs are rounded to 8 bits first, as the official code reads them from PNG files. Differences from
the official pipeline, which does not align faces itself (its README asks for insightface's norm_crop
source and a happy-jihye/FFHQ-Alignment target):
  - the source crop is swapbench's arcface_112 (insightface's template, kornia bilinear warp) from the
    run's detector points, officially from SCRFD points with cv2.warpAffine;
  - the target crop is swapbench's ffhq_256: the FFHQ quad from the same 68 points, sampled once with
    PIL-QUAD geometry. The official aligner uses face_alignment's FAN 3D landmarks, reflect padding with
    blur outside the image and a Lanczos downscale from 1024: same geometry, other filter
    (docs/reproduce.md, BlendSwap, gives its measured effect).
On CUDA the attribute encoder and generator run under the `precision` autocast (default fp32, as
officially); the identity encoder always runs in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.blendswap.nets import ENCODER_CHANNELS, AADGenerator, AttributeEncoder
from swapbench.faces.iresnet import iresnet100
from swapbench.weights import WeightFile, WeightsError, check_fits, register, state_dict_problems

CODE = "https://github.com/mapooon/BlendFace"
LICENCE = "CC BY-NC-SA 4.0 (mapooon/BlendFace LICENSE.md: code and released models)"
BLENDSWAP_FILE = WeightFile(
    name="blendswap/blendswap",
    filename="blendswap.pth",
    url="https://drive.google.com/file/d/1ssTKnNVGomtrtPl57EOGzKNz62bh6mSs/view?usp=sharing",
    licence=LICENCE,
    note=("the BlendSwap checkpoint of the BlendFace README (Google Drive, about 3 GB, fetched with gdown; no "
          "published checksum, so its sha256 is recorded at download): the whole BlendSwap state dict"),
)
# The BlendFace identity encoder alone (an iresnet100 state dict), the README's "BlendFace" model: not read
# by the swapper (it has its own copy, Z_e), used by the real-file check of tests/blendswap_real.py.
BLENDFACE_FILE = register(WeightFile(
    name="blendswap/blendface",
    filename="blendface.pt",
    url="https://drive.google.com/file/d/1FSCUC5CbyPKnl5Bbt58tPcKCVOyyt004/view?usp=sharing",
    licence=LICENCE,
    note="the BlendFace iresnet100 of the BlendFace README (Google Drive, fetched with gdown)",
))[0]

# Prefix of each part in blendswap.pth -> the attribute of BlendSwap that holds it. Only these are used.
USED = {"G_ema.": "generator", "E_ema.": "encoder", "mask_head_ema.": "mask_head", "Z_e.1.": "identity_encoder"}
UNUSED = ("G.", "E.", "mask_head.")  # the online copies: training state


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is not None and device.type == "cuda":
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def build_parts(channels: tuple[int, ...] = ENCODER_CHANNELS, identity=iresnet100,
                device: str = "cpu") -> dict[str, nn.Module]:
    """The modules the official inference uses, keyed by their attribute name, uninitialised (built on meta,
    then given memory on `device`; "meta": shapes only)."""
    with torch.device("meta"):
        parts = {"generator": AADGenerator(channels), "encoder": AttributeEncoder(channels),
                 "mask_head": nn.Conv2d(2 * channels[1], 1, 1), "identity_encoder": identity()}
    return parts if device == "meta" else {k: m.to_empty(device=device) for k, m in parts.items()}


def expected_layout(parts: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """{key: tensor of its shape} of the whole official file, online copies included."""
    layout = {}
    for prefix in ("G.", "E.", "Z_e.1.", "mask_head.", "G_ema.", "E_ema.", "mask_head_ema."):  # official order
        module = parts[USED.get(prefix) or USED[prefix[:-1] + "_ema."]]
        layout.update({prefix + k: v for k, v in module.state_dict().items()})
    return layout


class BlendSwap(SwapMethod):
    """BlendSwap: AEI-Net (FaceShifter) with a mask head, conditioned on BlendFace's identity embedding."""

    name = "blendswap"
    description = ("BlendSwap (BlendFace, ICCV 2023): AEI-Net swapper with a blending mask head, identity from "
                   "the BlendFace iresnet100 (trained with blended-face augmentation)")
    paper = "BlendFace: Re-designing Identity Encoders for Face-Swapping (ICCV 2023)"
    code = CODE
    crop = "ffhq"
    size = 256
    source_crop = "arcface"  # insightface's ArcFace template, as the README asks (norm_crop)
    source_size = 112
    weights = (BLENDSWAP_FILE,)

    @dataclass(frozen=True)
    class Options:
        # truncate the output to 8 bits as inference.py does ((output * 255).astype(uint8))
        truncate: bool = True
        # autocast dtype of the attribute encoder and generator on CUDA (official: fp32); identity stays fp32
        precision: Literal["fp32", "fp16", "bf16"] = "fp32"

    # The widths and identity network the method builds: the official ones (tests substitute narrower ones).
    channels: tuple[int, ...] = ENCODER_CHANNELS
    identity_net = staticmethod(iresnet100)

    def __init__(self, options=None):
        super().__init__(options)
        # Built without initialisation (load_weights overwrites every value).
        for name, module in build_parts(self.channels, self.identity_net).items():
            setattr(self, name, module)
        if self.channels != ENCODER_CHANNELS or self.identity_net is not iresnet100:
            self.publishable = False  # a reduced test network: its rows never reach a published leaderboard
        self.weights_loaded = False
        self.eval()  # inference only: BatchNorm uses its running statistics, as the official forward forces

    def _parts(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in USED.values()}

    def load_weights(self, state: dict[str, object]) -> None:
        wf = BLENDSWAP_FILE
        if wf.name not in state:
            raise WeightsError(f"{self.name}: no state dict was given for {wf.filename} ({wf.name})")
        full = state[wf.name]
        if not isinstance(full, Mapping):
            raise WeightsError(f"{wf.filename} ({wf.name}) is not a state dict but a {type(full).__name__}."
                               f" Get the official file from {wf.url}")
        # The official load is strict: every key of the whole module, the unused online copies included.
        problems = state_dict_problems(expected_layout(self._parts()), full)
        if problems:
            raise WeightsError(f"{wf.filename} ({wf.name}) is not the BlendSwap checkpoint: {'; '.join(problems)}."
                               f" Get the official file from {wf.url}")
        parts = {attr: {k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)}
                 for prefix, attr in USED.items()}
        for attr, sd in parts.items():  # finite values in what is used, before changing anything
            check_fits(getattr(self, attr), sd, wf, f"BlendSwap {attr}", finite=True)
        for attr, sd in parts.items():
            getattr(self, attr).load_state_dict(sd, strict=True)
        self.weights_loaded = True

    def _require_weights(self) -> None:
        if not self.weights_loaded:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the network is uninitialised")

    @torch.no_grad()
    def identity(self, source: torch.Tensor) -> torch.Tensor:
        """L2-normalised identity embeddings [B, 512] of arcface_112 crops [B, 3, 112, 112] in [0, 1]."""
        self._require_weights()
        with torch.autocast(device_type=source.device.type, enabled=False):
            return F.normalize(self.identity_encoder((source.float() - 0.5) / 0.5))

    @torch.no_grad()
    def generate(self, target: torch.Tensor, z_id: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official forward on ffhq_256 crops [B, 3, 256, 256] in [0, 1]: z_att, output_g, mask and output."""
        self._require_weights()
        target = target.float()
        dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[self.options.precision]
        with _autocast(target.device, dtype):
            z_att = self.encoder(target)
            output_g = self.generator(z_id, z_att).float()
            mask = torch.sigmoid(self.mask_head(z_att[-1])).float()
        return {"z_att": z_att, "output_g": output_g, "mask": mask, "output": output_g * mask + target * (1 - mask)}

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        if source.image.shape[-1] != self.source_size or target.image.shape[-1] != self.size:
            raise ValueError(f"{self.name} takes {self.source_convention} sources and {self.convention} targets, got "
                             f"{source.image.shape[-1]} and {target.image.shape[-1]} px crops")
        to_8_bits = lambda x: torch.round(x.float().clamp(0, 1) * 255) / 255  # noqa: E731 - the official PNG inputs
        out = self.generate(to_8_bits(target.image), self.identity(to_8_bits(source.image)))["output"]
        return torch.floor(out * 255) / 255 if self.options.truncate else out
