"""FaceShifter and ReliableSwap w/ FaceShifter, with ReliableSwap's released checkpoints, as swapbench methods.

FaceShifter's authors released no weights; the public FaceShifter checkpoints are ReliableSwap's
(ygtxr1997/ReliableSwap @ f26c030): `G_tmp_v5.pth` (FaceShifter retrained by the ReliableSwap authors)
and `G_mouth1_t38_post.pth` (ReliableSwap w/ FaceShifter, with MouthNet), plus the mouth-helper
generator `G_t34_helper_post.pth` that the authors' evaluation blends into the mouth. Each file is a
whole-generator state dict (AEI-Net, the ArcFace IResNet-100, the `trans_matrix` buffer, MouthNet
for mouth1): loaded strictly.

Pipeline of the authors' evaluation (inference/ffplus/eval.py EvaluatorFaceShifter), on 256 crops aligned
to the 5-point FFHQ template (`ffhq5_256`; the authors located the points with PIPNet-98, swapbench
with dlib's 68 points), images in [-1,1]:
  1. swap = G(source, target): identity by the `id_path` option (warp: the fixed trans_matrix zoom before
     ArcFace, as evaluation, demo and FaceSwappingAllInOne; infer: no warp, as faceshifter_infer.py).
  2. `post`: BiSeNet labels of the target (nearest-upsampled to 512, ImageNet-normalised, argmax), mask
     of background + hair bilinearly (align_corners=True) back to 256, SoftErosion(17, 0.9, 7);
     result = mask * target + (1 - mask) * swap: hair and background come from the target.
  3. `mouth_helper` (ReliableSwap): the helper generator swaps the same pair; the mouth mask (labels
     11-13 of the result) goes through the official uint8 path: `(m + 1) * 127.5` truncated (the code
     reads a 0/1 mask as if it were in [-1,1], so outside the mouth it is 127/255), cv2.dilate with
     the tuple (20, 20) (which OpenCV reads as a 2 x 1 kernel of ones, not a 20 x 20 dilation), an
     11 x 11 Gaussian blur, / 255; result = helper * m + result * (1 - m). "evaluated" keeps that (about a
     50/50 average of the two generators outside the mouth); "mask01" reads the mask as [0,1] (what the
     code meant); "off" skips the helper.
The output is (result + 1) / 2, kept in float (the evaluation scores the float tensor).

The masks go through OpenCV's uint8 dilate and blur (as officially, bit for bit) and torch elsewhere.
Per-pair differences from the official evaluation: the official mouth mask of a batch is the first
image's (`[0]`) and SoftErosion normalises by the batch maximum; it ran at batch size 1, which is
what swapbench does per pair at any batch size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.faces.parsing import BiSeNet
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.faceshifter.nets import IMAGENET_MEAN, IMAGENET_STD, TRANS_MATRIX, FaceShifterGenerator
from swapbench.methods.ghost.random_weights import random_state_dict
from swapbench.methods.megafs.nets import SoftErosion
from swapbench.weights import WeightFile, WeightsError, check_fits

LICENCE = "research / non-commercial only (ReliableSwap README); the embedded ArcFace is insightface's (non-commercial)"
SPACE = "hf://spaces/ygtxr1997/ReliableSwap_Demo/weights"  # the author's Hugging Face Space
BAIDU = "https://pan.baidu.com/s/1z6VgH3TA7qCJtw9cqDKJUg"
ONEDRIVE = ("https://mail2sysueducn-my.sharepoint.com/:f:/g/personal/yuang7_mail2_sysu_edu_cn/"
            "Er3PYJbeSF5BlcVOnsUlbSgB0bukUOX2d95xJWe7_dtAAQ?e=ag2yxg")

VANILLA_FILE = WeightFile(
    name="faceshifter/G_tmp_v5",
    filename="G_tmp_v5.pth",
    url=BAIDU,
    licence=LICENCE,
    manual=True,
    note=("FaceShifter retrained by the ReliableSwap authors: reliableswap_weights/extracted_pth/G_tmp_v5.pth on "
          f"Baidu (code ygss) or the author's OneDrive folder {ONEDRIVE}; no checksum is published"),
)
RELIABLESWAP_FILE = WeightFile(
    name="reliableswap/G_mouth1_t38_post",
    filename="G_mouth1_t38_post.pth",
    url=f"{SPACE}/extracted/G_mouth1_t38_post.pth",
    licence=LICENCE,
    sha256="9cb7e021a8af0eb4197abb90148254d25495ee7adf80ce1e35435dc81c7c487d",
    note="ReliableSwap w/ FaceShifter (MouthNet, c_id 640), from the author's Hugging Face Space",
)
HELPER_FILE = WeightFile(
    name="reliableswap/G_t34_helper_post",
    filename="G_t34_helper_post.pth",
    url=f"{SPACE}/extracted/G_t34_helper_post.pth",
    licence=LICENCE,
    sha256="0192f044350b8020c45251d7f2e80ecbc39ec32b4b8129f142cee76f1b917458",
    note="mouth-helper FaceShifter generator of ReliableSwap's evaluation, from the author's Hugging Face Space",
)

POST_LABELS = (0, 17)  # background, hair: taken from the target
MOUTH_LABELS = (11, 12, 13)  # mouth, upper lip, lower lip
PARSE_SIZE = 512
DILATE_KERNEL = np.ones((2, 1), np.uint8)  # what cv2.dilate makes of the official `(20, 20)` argument
BLUR = (11, 11)
# Random parser weights: the main head leans towards background, hair and mouth, so that the masks
# of the parity tests are neither empty nor full (each value: logit shift / mean feature sum 230).
PARSER_BIAS = {0: 5.9, 17: 3.4, 11: 2.0, 12: 2.4}


def random_weights(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Deterministic random state dicts of every file, in the official layouts (the helper is the
    vanilla layout with the same values as G_tmp_v5; the parser leans as PARSER_BIAS says). Keys of the
    same shape in two files hold the same tensor (the same values, drawn once): treat them as read-only."""
    out = {}
    drawn: dict[str, torch.Tensor] = {}  # each value depends only on (seed, key, shape): draw it once
    for wf, mouth in ((RELIABLESWAP_FILE, True), (VANILLA_FILE, False)):
        with torch.device("meta"):
            template = FaceShifterGenerator(mouth).state_dict()
        fresh = {k: v for k, v in template.items() if k not in drawn or drawn[k].shape != v.shape}
        drawn.update(random_state_dict(fresh, seed, {"bn3.weight": 0.2}))  # bn3: damps IResNet's residual branches
        sd = {k: drawn[k] for k in template}
        sd["trans_matrix"] = torch.tensor([TRANS_MATRIX])
        if mouth:
            sd["mouth_net.vgg_mean"] = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
            sd["mouth_net.vgg_std"] = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        out[wf.name] = sd
    out[HELPER_FILE.name] = out[VANILLA_FILE.name]
    with torch.device("meta"):
        template = BiSeNet().state_dict()
    parser = random_state_dict(template, seed)
    head = parser["conv_out.conv_out.weight"]
    for label, shift in PARSER_BIAS.items():
        head[label] += shift / 230.0
    out[PARSER_WEIGHTS.name] = parser
    return out


def _empty(module: torch.nn.Module) -> torch.nn.Module:
    return module.to_empty(device="cpu")


class FaceShifter(SwapMethod):
    """FaceShifter (AEI-Net) with ReliableSwap's retrained checkpoint G_tmp_v5."""

    name = "faceshifter"
    description = "FaceShifter (AEI-Net + ArcFace), the checkpoint retrained by ReliableSwap (G_tmp_v5)"
    paper = "FaceShifter: Towards High Fidelity And Occlusion Aware Face Swapping (arXiv 2019); weights: ReliableSwap (2023)"
    code = "https://github.com/ygtxr1997/ReliableSwap"
    crop = "ffhq5"
    size = 256
    mouth: ClassVar[bool] = False
    weights = (VANILLA_FILE, PARSER_WEIGHTS)

    @dataclass(frozen=True)
    class Options:
        id_path: Literal["warp", "infer"] = "warp"  # warp: evaluation, demo, FaceSwappingAllInOne
        post: bool = False  # hair and background from the target (the evaluation does it for *_post files)

    def __init__(self, options=None):
        if isinstance(options, Mapping):
            options = self.Options(**options)
        super().__init__(options)
        self._build_networks()
        self.parser = None
        if any(wf is PARSER_WEIGHTS for wf, _, _ in self._parts()):  # only where a mask is made
            with torch.device("meta"):  # every value comes from load_weights
                parser = BiSeNet()
            self.parser = _empty(parser)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.smooth_mask = SoftErosion(17, 0.9, 7)
        self.weights = tuple(wf for wf, _, _ in self._parts())  # the parser only where a mask is made
        self.weights_loaded = False
        self.eval()

    def _build_networks(self) -> None:
        """The generator (and, for ReliableSwap, the mouth helper), uninitialised: load_weights fills every value."""
        with torch.device("meta"):
            generator = FaceShifterGenerator(self.mouth)
        self.generator = _empty(generator)
        if self.mouth:  # ReliableSwap's mouth helper is a vanilla FaceShifter generator
            with torch.device("meta"):
                helper = FaceShifterGenerator(mouth=False)
            self.helper = _empty(helper)

    def _variant_hint(self, state: Mapping) -> str:
        """Why a generator file of the other variant does not fit (with or without MouthNet), or ''."""
        has_mouth = any(str(k).startswith("mouth_net.") for k in state)
        if has_mouth == self.mouth:
            return ""
        return (" (a MouthNet file such as G_mouth1_*: use reliableswap_faceshifter)" if has_mouth
                else " (a file without MouthNet, such as G_tmp_v5: use faceshifter)")

    def _parts(self):
        """(file, module, what) of each file these options need; the class declares (generator, parser[, helper])."""
        declared = type(self).weights
        parts = ((declared[0], self.generator, "FaceShifter generator"),)
        if self.options.post or self.mouth:  # the parser makes the post and mouth masks
            parts += ((declared[1], self.parser, "BiSeNet face parser"),)
        return parts

    def load_weights(self, state: dict[str, object]) -> None:
        parts = self._parts()
        for wf, _, _ in parts:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: no state dict was given for {wf.filename} ({wf.name})")
        for wf, module, what in parts:  # check every file before changing anything
            sd = state[wf.name]
            hint = self._variant_hint(sd) if module is self.generator and isinstance(sd, Mapping) else ""
            check_fits(module, sd, wf, what + hint, finite=True)
        for wf, module, _ in parts:
            # assign: the modules take the loaded fp32 tensors instead of copying them (the untouched
            # uninitialised storage is freed), which halves the peak memory of ~2 GB of generators
            sd = {k: v.float() if v.is_floating_point() else v for k, v in state[wf.name].items()}
            module.load_state_dict(sd, strict=True, assign=True)
        self.weights_loaded = True

    def _require_weights(self) -> None:
        if not self.weights_loaded:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the networks are uninitialised")

    # -- the pipeline, step by step (each step is checked by the parity test) --

    def labels(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 512, 512] BiSeNet labels of [-1,1] images, preprocessed as the official _get_any_mask."""
        x = F.interpolate(images.float(), size=(PARSE_SIZE, PARSE_SIZE), mode="nearest")
        # softmax before argmax, as officially: it decides the rare pixels whose top logits differ by rounding
        return self.parser((x * 0.5 + 0.5 - self.mean) / self.std)[0].softmax(1).argmax(1)

    @staticmethod
    def region_mask(labels: torch.Tensor, keep, size: int) -> torch.Tensor:
        """[B, 1, size, size] in [0,1]: the pixels labelled `keep`, resized bilinearly (align_corners=True)."""
        m = torch.isin(labels, torch.tensor(keep, device=labels.device)).float()[:, None]
        return F.interpolate(m, size=(size, size), mode="bilinear", align_corners=True)

    def post_process(self, swap: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        soft = self.smooth_mask(self.region_mask(self.labels(target), POST_LABELS, target.shape[-1]))[0]
        return soft * target + (1 - soft) * swap

    @torch.no_grad()
    def generate(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Source and target [B,3,256,256] in [-1,1] -> the method's result in [-1,1]."""
        self._require_weights()
        out = self.generator(source, target, self.options.id_path)
        return self.post_process(out, target) if self.options.post else out

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        out = self.generate(source.image.float() * 2 - 1, target.image.float() * 2 - 1)
        return (out + 1) / 2


class ReliableSwapFaceShifter(FaceShifter):
    """ReliableSwap w/ FaceShifter (G_mouth1_t38_post), with the authors' post-processing and mouth helper."""

    name = "reliableswap_faceshifter"
    description = "ReliableSwap w/ FaceShifter (MouthNet, G_mouth1_t38_post), post-processing and mouth helper as evaluated"
    paper = "ReliableSwap: Boosting General Face Swapping Via Reliable Supervision (arXiv 2306.05356)"
    mouth = True
    weights = (RELIABLESWAP_FILE, PARSER_WEIGHTS, HELPER_FILE)

    @dataclass(frozen=True)
    class Options:
        id_path: Literal["warp", "infer"] = "warp"
        post: bool = True
        # evaluated: the official blend (0/1 mask read as [-1,1]: ~50/50 outside the mouth); mask01; off
        mouth_helper: Literal["evaluated", "mask01", "off"] = "evaluated"

    def _parts(self):
        parts = super()._parts()
        if self.options.mouth_helper != "off":
            parts += ((type(self).weights[2], self.helper, "mouth-helper generator"),)
        return parts

    def mouth_mask(self, labels: torch.Tensor, size: int) -> torch.Tensor:
        """[B,1,S,S] blend weight of the helper from the result's labels, through the official uint8 OpenCV
        path (see the module doc)."""
        m = self.region_mask(labels, MOUTH_LABELS, size)
        if self.options.mouth_helper == "evaluated":
            m = (m + 1) * 127.5  # the official tensor_to_arr, meant for [-1,1] images
        else:
            m = m * 255
        arrays = m[:, 0].cpu().numpy().astype(np.uint8)  # truncates, as officially
        out = [cv2.GaussianBlur(cv2.dilate(a, DILATE_KERNEL), BLUR, 0) for a in arrays]
        return torch.from_numpy(np.stack(out)).to(labels.device, torch.float32)[:, None] / 255

    @torch.no_grad()
    def generate(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = super().generate(source, target)
        if self.options.mouth_helper == "off":
            return out
        helper = self.helper(source, target, self.options.id_path)
        m = self.mouth_mask(self.labels(out), out.shape[-1])
        return helper * m + out * (1 - m)
