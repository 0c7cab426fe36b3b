"""GHOST (ai-forever/sber-swap, Apache-2.0) as a swapbench method.

Faithful to the official inference (inference.py, utils/inference/{core,image_processing,
faceshifter_run,video_processing}.py at commit 734f78bc), which on a 224x224 crop aligned with
insightface's five 5-point templates ("ghost" convention) does:

  identity  RGB crop /255, (x - 0.5) / 0.5, bilinear 224 -> 112 with align_corners=True
            (F.interpolate(scale_factor=0.5)), IResNet-100 in fp32; the raw (not L2-normalised)
            512-d vector conditions the generator.
  target    cv2.resize 224 -> 256 (bilinear), /255, (x - 0.5) / 0.5.
  generator AEI-Net ('unet' encoder, num_blocks AAD units per residual block, c_id=512), run as
            G.half() on the GPU; output tanh, mapped with (y * 0.5 + 0.5) * 255 to uint8.
  output    cv2.resize 256 -> 224 (bilinear) before paste-back.

Deliberate differences, all below one uint8 quantisation step unless the network amplifies them:
  - the crops stay float: the 224 -> 256 -> 224 resizes are torch bilinear (align_corners=False, no
    antialias), which is cv2.INTER_LINEAR's sampling grid without its uint8 rounding, and the output
    is not truncated to uint8 (the official cast truncates, a -0.5/255 bias on average);
  - on CUDA the generator runs under fp16 autocast instead of a .half() copy of the weights (autocast
    keeps normalisations in fp32, so it is at least as accurate); ArcFace stays fp32 as officially;
  - each pair gets its own source embedding (officially one source per batch of video frames).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.ghost.aei_net import AEINet
from swapbench.faces.iresnet import iresnet100
from swapbench.methods.ghost.random_weights import random_state_dict
from swapbench.weights import WeightFile, WeightsError, state_dict_problems

RELEASE = "https://github.com/sberbank-ai/sber-swap/releases/download"  # URLs of download_models.sh
LICENCE = "Apache-2.0 (sber-swap release)"
# Registry name of the method that uses each generator checkpoint.
VARIANTS = {1: "ghost_1block", 2: "ghost", 3: "ghost_3blocks"}
_G_FILENAMES = {1: "G_unet_1block.pth", 2: "G_unet_2blocks.pth", 3: "G_unet_3blocks.pth"}

GENERATOR_FILES: dict[int, WeightFile] = {
    n: WeightFile(
        name=f"ghost/{fn[:-4]}",
        filename=fn,
        url=f"{RELEASE}/sber-swap-v2.0/{fn}",
        licence=LICENCE,
        note=f"AEI-Net generator, unet encoder, {n} AAD block(s) per residual block",
    )
    for n, fn in _G_FILENAMES.items()
}
ARCFACE_FILE = WeightFile(
    name="ghost/arcface_backbone",
    filename="backbone.pth",
    url=f"{RELEASE}/arcface/backbone.pth",
    licence=LICENCE + "; an insightface arcface_torch IResNet-100, whose upstream model terms may also apply",
    note="GHOST's identity encoder, saved as arcface_model/backbone.pth by download_models.sh",
)

# Damps IResNet's residual branches in random weights (see random_state_dict).
ARCFACE_RANDOM_GAINS = {"bn3.weight": 0.2}


def random_weights(num_blocks: int = 2, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Deterministic random state dicts in the official layout, keyed as `Ghost.load_weights` expects."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        g, a = AEINet(num_blocks, c_id=512), iresnet100()
    return {
        GENERATOR_FILES[num_blocks].name: random_state_dict(g.state_dict(), seed),
        ARCFACE_FILE.name: random_state_dict(a.state_dict(), seed, ARCFACE_RANDOM_GAINS),
    }


def _count_aad_units(state: Mapping) -> int:
    """AAD units per residual block of a generator state dict (the N of G_unet_N...)."""
    prefix = "generator.AADBlk1.add_blocks."
    return len({k.split(".")[3] for k in state if str(k).startswith(prefix) and str(k).endswith(".fc1.weight")})


def _check_state_dict(module: nn.Module, state: object, wf: WeightFile, what: str) -> None:
    """Raise a WeightsError naming the file when `state` cannot be loaded strictly into `module`."""
    if not isinstance(state, Mapping):
        raise WeightsError(f"{wf.filename} ({wf.name}) is not a state dict: it holds a {type(state).__name__}")
    problems = state_dict_problems(module.state_dict(), state, finite=True)
    if problems:
        hint = ""
        n = _count_aad_units(state) if what == "generator" else 0
        if n in _G_FILENAMES and _G_FILENAMES[n] != wf.filename:
            hint = f"; its layout is that of {_G_FILENAMES[n]}"
        raise WeightsError(
            f"{wf.filename} ({wf.name}) does not fit the GHOST {what}: {'; '.join(problems)}{hint}."
            f" Download the official file from {wf.url}"
        )


class Ghost(SwapMethod):
    """GHOST face swap: AEI-Net generator conditioned on an ArcFace IResNet-100 identity.

    num_blocks (1, 2 or 3) picks the official generator G_unet_{1block,2blocks,3blocks}.pth; the
    instance's `name` and `weights` follow it (2 blocks, the main model, is "ghost"). The registry also
    lists "ghost_1block" and "ghost_3blocks", the same class with another default, so each checkpoint
    has its own method name on the command line and in result tables.
    """

    name = "ghost"
    description = "GHOST / sber-swap (2022): AEI-Net with unet attribute encoder, ArcFace IResNet-100 identity"
    paper = "GHOST—A New Face Swap Approach for Image and Video Domains (IEEE Access 2022)"
    code = "https://github.com/ai-forever/sber-swap"
    crop = "ghost"
    size = 224
    default_num_blocks: ClassVar[int] = 2
    weights = (GENERATOR_FILES[2], ARCFACE_FILE)

    def __init__(self, num_blocks: int | None = None, options=None):
        super().__init__(options)
        n = self.default_num_blocks if num_blocks is None else num_blocks
        if n not in VARIANTS:
            raise ValueError(f"GHOST num_blocks must be one of {sorted(VARIANTS)}, got {num_blocks!r}")
        self.save_hyperparameters({"num_blocks": n})
        self.num_blocks = n
        self.name = VARIANTS[n]
        self.weights = (GENERATOR_FILES[n], ARCFACE_FILE)
        # Built without initialisation (load_weights overwrites every value): saves seconds per instance.
        with torch.device("meta"):
            generator, arcface = AEINet(n, c_id=512), iresnet100()
        self.generator = generator.to_empty(device="cpu")
        self.arcface = arcface.to_empty(device="cpu")
        self.weights_loaded = False
        self.eval()  # inference only: BatchNorm must use its running statistics

    def load_weights(self, state: dict[str, object]) -> None:
        parts = ((self.weights[0], self.generator, "generator"), (ARCFACE_FILE, self.arcface, "ArcFace backbone"))
        for wf, module, what in parts:  # check every file before changing anything
            if wf.name not in state:
                raise WeightsError(f"{self.name}: no state dict was given for {wf.filename} ({wf.name})")
            _check_state_dict(module, state[wf.name], wf, what)
        for wf, module, _ in parts:
            module.load_state_dict(state[wf.name], strict=True)
        self.weights_loaded = True

    def _require_weights(self) -> None:
        if not self.weights_loaded:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the network is uninitialised")

    @torch.no_grad()
    def identity(self, image: torch.Tensor) -> torch.Tensor:
        """Raw ArcFace embedding [B,512] of 224x224 ghost crops in [0,1]."""
        self._require_weights()
        x = (image.float() - 0.5) / 0.5
        # = F.interpolate(scale_factor=0.5, align_corners=True) on a 224 crop, as officially.
        x = F.interpolate(x, size=(112, 112), mode="bilinear", align_corners=True)
        with torch.autocast(device_type=x.device.type, enabled=False):  # ArcFace runs in fp32
            return self.arcface(x)

    @torch.no_grad()
    def generate(self, target: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        """Swapped crops [B,3,S,S] in [0,1] from target crops [B,3,S,S] in [0,1] and embeddings."""
        self._require_weights()
        x = F.interpolate(target.float(), size=(256, 256), mode="bilinear", align_corners=False)
        x = (x - 0.5) / 0.5
        # The official code runs a .half() copy of G on the GPU; autocast is the mixed-precision equivalent.
        fp16 = torch.autocast("cuda", dtype=torch.float16) if x.is_cuda else contextlib.nullcontext()
        with fp16:
            y = self.generator(x, z_id)
        y = y.float() * 0.5 + 0.5
        return F.interpolate(y, size=target.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        return self.generate(target.image, self.identity(source.image))


class Ghost1Block(Ghost):
    name = "ghost_1block"
    description = "GHOST / sber-swap with 1 AAD unit per residual block (G_unet_1block.pth)"
    default_num_blocks = 1
    weights = (GENERATOR_FILES[1], ARCFACE_FILE)


class Ghost3Blocks(Ghost):
    name = "ghost_3blocks"
    description = "GHOST / sber-swap with 3 AAD units per residual block (G_unet_3blocks.pth)"
    default_num_blocks = 3
    weights = (GENERATOR_FILES[3], ARCFACE_FILE)

