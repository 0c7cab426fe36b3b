"""ReliableSwap's retrained SimSwap generators (ygtxr1997/ReliableSwap @ f26c030) as swapbench methods.

"reliableswap_simswap" is ReliableSwap w/ SimSwap (`G_mouth1_st5`: cycle-triplet training plus the MouthNet
feature); "simswap_retrained" is the SimSwap the ReliableSwap authors retrained as their baseline
(`G_tmp_sv4_off`, "off": with SimSwap's official ArcFace). Both are the generator of
modules/layers/simswap/fs_networks_fix.py, loaded as inference/ffplus/eval.py EvaluatorSimSwap does:

  identity  the 256 source in [-1,1] (no warp: the trans_matrix warp is commented out in this generator),
            bilinear (align_corners=True) to 112, the ArcFace, L2-normalised; G_mouth1_st5 appends MouthNet's
            raw 128-d feature of the 112 crop's mouth (latent 640). The ArcFace is insightface's ms1mv3
            IResNet-100 for G_mouth1_st5 and SimSwap's SE-ResNet-101 (arcface_checkpoint.tar, loaded as
            `['model'].module`) for G_tmp_sv4_off, fed [-1,1] RGB instead of the ImageNet normalisation it
            was trained with, as in training.
  generator SimSwap's 224 layout (swapbench.methods.simswap.networks.Generator) with latent 512 or 640,
            on the 256 target in [-1,1]; its last convolution is the result (no tanh, no (x+1)/2).
  post      (option, off as evaluated: eval.py applies it only to files whose name holds "post") hair and
            background from the target, the same step as reliableswap_faceshifter's.
  result    clamped to [-1,1]; the method returns (result + 1) / 2.
No mouth helper: the evaluation blends it only into ReliableSwap's FaceShifter results.

Unlike the FaceShifter files, these generator files hold the generator only (and its unused trans_matrix
buffer): the ArcFace and MouthNet come from their own files. The official loaders use strict=False; this
port loads every file strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from swapbench.faces.iresnet import iresnet50, iresnet100
from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.methods.faceshifter.method import (
    BAIDU,
    ONEDRIVE,
    SPACE,
    FaceShifter,
    _empty,
)
from swapbench.methods.faceshifter.nets import ID_DIM, MOUTH_CROP, MOUTH_DIM, TRANS_MATRIX, identity_vector
from swapbench.methods.simswap.method import ARCFACE_FILE as SIMSWAP_ARCFACE_FILE
from swapbench.methods.simswap.networks import ArcFace, Generator
from swapbench.weights import WeightFile

LICENCE = "research / non-commercial only (ReliableSwap README)"  # these files hold no ArcFace
ST5_FILE = WeightFile(
    name="reliableswap/G_mouth1_st5",
    filename="G_mouth1_st5.pth",
    url=BAIDU,
    licence=LICENCE,
    manual=True,
    note=("ReliableSwap w/ SimSwap: reliableswap_weights/extracted_pth/G_mouth1_st5.pth on Baidu (code ygss) or "
          f"the author's OneDrive folder {ONEDRIVE}; not on the author's Hugging Face Space; no checksum is published"),
)
SV4_FILE = WeightFile(
    name="reliableswap/G_tmp_sv4_off",
    filename="G_tmp_sv4_off.pth",
    url=BAIDU,
    licence=LICENCE,
    manual=True,
    note=("SimSwap retrained by the ReliableSwap authors: reliableswap_weights/extracted_pth/G_tmp_sv4_off.pth on "
          f"Baidu (code ygss) or the author's OneDrive folder {ONEDRIVE}; not on the author's Hugging Face Space;"
          " no checksum is published"),
)
MS1MV3_FILE = WeightFile(
    name="reliableswap/ms1mv3_arcface_r100_fp16",
    filename="ms1mv3_arcface_r100_fp16_backbone.pth",
    url=f"{SPACE}/arcface/ms1mv3_arcface_r100_fp16/backbone.pth",
    licence="insightface arcface_torch model (MS1MV3): non-commercial research only",
    note=("insightface's ms1mv3_arcface_r100_fp16 backbone.pth (IResNet-100 state dict), as ReliableSwap's"
          " modules/third_party/arcface/weights/ms1mv3_arcface_r100_fp16/backbone.pth; the author's Space holds"
          " the folder; also in the third-party weights on Baidu (code ygss); no checksum is published by the authors"),
)
MOUTH_FILE = WeightFile(
    name="reliableswap/mouth_net_28_56_84_112",
    filename="mouth_net_28_56_84_112.pth",
    url=f"{SPACE}/arcface/mouth_net_28_56_84_112.pth",
    licence=LICENCE,
    note="ReliableSwap's MouthNet ('FixerNet'): the IResNet-50 backbone state dict, from the author's Hugging Face Space",
)
ST5_ARCFACE_GAINS = {"bn3.weight": 0.2}  # damps IResNet's residual branches in random weights


def random_weights(seed: int = 0, depth: int = 100, files=None) -> dict[str, dict[str, torch.Tensor]]:
    """Deterministic random state dicts of the files named in `files` (default: every file) in the official
    layouts. depth < 100: reduced encoders (one block per stage for both ArcFaces and MouthNet) for parity tests."""
    from swapbench.faces.parsing import BiSeNet
    from swapbench.methods.ghost.random_weights import random_state_dict
    from swapbench.methods.simswap.method import ARCFACE_RANDOM_GAINS

    out: dict[str, dict[str, torch.Tensor]] = {}
    drawn: dict[str, torch.Tensor] = {}  # each value depends only on (seed, key, shape): draw it once
    for wf, mouth in ((ST5_FILE, True), (SV4_FILE, False)):
        with torch.device("meta"):
            template = RetrainedGenerator(mouth).state_dict()
        fresh = {k: v for k, v in template.items() if k not in drawn or drawn[k].shape != v.shape}
        drawn.update(random_state_dict(fresh, seed))
        out[wf.name] = {k: drawn[k] for k in template}
        out[wf.name]["trans_matrix"] = torch.tensor([TRANS_MATRIX])
    with torch.device("meta"):
        encoders = {MS1MV3_FILE.name: (arcface_net("ms1mv3", depth), ST5_ARCFACE_GAINS),
                    MOUTH_FILE.name: (mouth_backbone(depth), ST5_ARCFACE_GAINS),
                    SIMSWAP_ARCFACE_FILE.name: (arcface_net("simswap", depth), ARCFACE_RANDOM_GAINS),
                    PARSER_WEIGHTS.name: (BiSeNet(), None)}
    for name, (net, gains) in encoders.items():
        if files is None or name in files:
            out[name] = random_state_dict(net.state_dict(), seed, gains)
    return {k: v for k, v in out.items() if files is None or k in files}


def arcface_net(kind: str, depth: int = 100) -> torch.nn.Module:
    """The identity encoder of a variant: insightface's IResNet-100 ("ms1mv3") or SimSwap's SE-ResNet-101
    ("simswap"); depth < 100 gives one block per stage, the reduced configuration of the parity tests."""
    if kind == "ms1mv3":
        from swapbench.faces.iresnet import IResNet

        return iresnet100() if depth == 100 else IResNet((1, 1, 1, 1))
    return ArcFace() if depth == 100 else ArcFace((1, 1, 1, 1))


def mouth_backbone(depth: int = 100) -> torch.nn.Module:
    """MouthNet's IResNet-50 (fc over 4 x 4 cells, 128 features); depth < 100: one block per stage."""
    if depth == 100:
        return iresnet50(MOUTH_DIM, fc_scale=4 * 4)
    from swapbench.faces.iresnet import IResNet

    return IResNet((1, 1, 1, 1), MOUTH_DIM, fc_scale=4 * 4)


class RetrainedGenerator(Generator):
    """fs_networks_fix.Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False): SimSwap's 224 layout with
    latent 512 (+128 with MouthNet), no tanh, and the unused `trans_matrix` buffer every file holds."""

    def __init__(self, mouth: bool):
        super().__init__(224, latent=ID_DIM + (MOUTH_DIM if mouth else 0), tanh=False)
        self.register_buffer("trans_matrix", torch.tensor([TRANS_MATRIX]))


class SimSwapRetrained(FaceShifter):
    """SimSwap retrained by the ReliableSwap authors (G_tmp_sv4_off), with SimSwap's official ArcFace."""

    name = "simswap_retrained"
    description = "SimSwap retrained by the ReliableSwap authors (G_tmp_sv4_off, SimSwap's ArcFace), 256 crops"
    paper = "SimSwap (ACM MM 2020), retrained in ReliableSwap (arXiv 2306.05356)"
    code = "https://github.com/ygtxr1997/ReliableSwap"
    mouth: ClassVar[bool] = False
    arcface_kind: ClassVar[str] = "simswap"
    encoder_depth: ClassVar[int] = 100  # < 100: the reduced encoders of the parity tests (see arcface_net)
    weights = (SV4_FILE, SIMSWAP_ARCFACE_FILE, PARSER_WEIGHTS)

    @dataclass(frozen=True)
    class Options:
        post: bool = False  # hair and background from the target (eval.py: only for "*post*" files)

    def _build_networks(self) -> None:
        with torch.device("meta"):
            generator = RetrainedGenerator(self.mouth)
            arcface = arcface_net(self.arcface_kind, self.encoder_depth)
            mouth_net = mouth_backbone(self.encoder_depth) if self.mouth else None
        self.generator, self.arcface = _empty(generator), _empty(arcface)
        self.mouth_net = _empty(mouth_net) if self.mouth else None

    def _variant_hint(self, state: Mapping) -> str:
        w = state.get("BottleNeck.0.style1.linear.weight")
        latent = ID_DIM + (MOUTH_DIM if self.mouth else 0)
        if not isinstance(w, torch.Tensor) or w.dim() != 2 or w.shape[1] == latent:
            return ""
        return (" (a MouthNet file, latent 640, such as G_mouth1_st5: use reliableswap_simswap)" if w.shape[1] > latent
                else " (a file without MouthNet, latent 512, such as G_tmp_sv4_off: use simswap_retrained)")

    def _parts(self):
        declared = type(self).weights
        parts = ((declared[0], self.generator, "retrained SimSwap generator"),
                 (declared[1], self.arcface, "ArcFace identity encoder"))
        if self.mouth:
            parts += ((declared[2], self.mouth_net, "MouthNet IResNet-50"),)
        if self.options.post:
            parts += ((PARSER_WEIGHTS, self.parser, "BiSeNet face parser"),)
        return parts

    @torch.no_grad()
    def identity(self, source: torch.Tensor) -> torch.Tensor:
        """[B, 512 or 640]: the identity vector of [-1,1] 256 sources, as the generator's forward computes it."""
        return identity_vector(source, self.arcface, self._mouth_feature if self.mouth_net is not None else None)

    def _mouth_feature(self, face112: torch.Tensor) -> torch.Tensor:
        """MouthNet's raw 128-d feature of the 112 ArcFace input's mouth (the file holds the backbone alone)."""
        x1, y1, x2, y2 = MOUTH_CROP
        return self.mouth_net(face112[:, :, y1:y2, x1:x2])

    @torch.no_grad()
    def generate(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Source and target [B,3,256,256] in [-1,1] -> the method's result, clamped to [-1,1]."""
        self._require_weights()
        out = self.generator(target, self.identity(source))
        if self.options.post:
            out = self.post_process(out, target)
        return out.clamp(-1, 1)


class ReliableSwapSimSwap(SimSwapRetrained):
    """ReliableSwap w/ SimSwap (G_mouth1_st5): insightface ArcFace plus the MouthNet feature."""

    name = "reliableswap_simswap"
    description = "ReliableSwap w/ SimSwap (MouthNet, G_mouth1_st5), as evaluated (no post-processing)"
    paper = "ReliableSwap: Boosting General Face Swapping Via Reliable Supervision (arXiv 2306.05356)"
    mouth = True
    arcface_kind = "ms1mv3"
    weights = (ST5_FILE, MS1MV3_FILE, MOUTH_FILE, PARSER_WEIGHTS)
