"""SimSwap (neuralchen/SimSwap, ACM MM 2020) as two swapbench methods: "simswap" (224 people model) and
"simswap_512" (512 beta).

Faithful to the official whole-image inference (test_wholeimage_swapsingle.py, models/fs_model.py,
util/reverse2original.py at commit bd7b768) on the crops its aligner makes (insightface's five 224
templates = swapbench's `ghost_224`; the 5-point FFHQ template at 512 = `ffhq5_512`):

  identity  source crop RGB in [0,1], ImageNet mean/std, F.interpolate to 112x112 in the default
            *nearest* mode (at 512 the encoder sees an FFHQ-framed face), SE-ResNet-101 ArcFace, L2-normalised.
  generator target crop RGB in [0,1], not normalised; output (tanh + 1) / 2.
  mask      (`use_mask`, on in every official command) BiSeNet on the *target* crop: ImageNet mean/std,
            nearest upsampling to 512 (swapbench's parser resizes bilinearly; this method keeps the official
            path), argmax of the main head; face = labels {1,2,3,4,5,6,10,12,13}, mouth = {11}; fewer than
            20 such pixels: the raw swap; else the two maps resized bilinearly to the crop, summed, softened by
            SoftErosion(17, 0.9, 7) and blended: swap * m + target * (1 - m).

The paste-back into the image (erode, blur, alpha blend, uint8 truncation, watermark) is the engine's.

Weights: the generators are plain state dicts inside release zips (manual download). The 512 file holds
more than the deep=False network the official code builds; the official loader silently keeps the keys
the network has (BaseModel.load_network), so this port does the same, names every ignored key in each
swap's note, and refuses a file that lacks a key or has another shape (where the official code would
run with random layers). The ArcFace file is a pickled nn.Module in two published layouts (2023: the bare
module; 2020: foamliu's training dict with a DataParallel `model`); both are opened without running
their code (format "pickled_module") and flattened to the state dict this network loads strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from swapbench.faces import parsing
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.ghost.random_weights import random_state_dict
from swapbench.methods.simswap.networks import ArcFace, Generator, SoftErosion
from swapbench.weights import WeightFile, WeightsError, check_fits, state_dict_problems

RELEASE = "https://github.com/neuralchen/SimSwap/releases/download"
LICENCE = "CC BY-NC 4.0 (SimSwap code and release; academic and non-commercial use only)"

GENERATOR_FILES = {
    224: WeightFile(
        name="simswap/people_latest_net_G", filename="latest_net_G.pth", url=f"{RELEASE}/1.0/checkpoints.zip",
        licence=LICENCE, sha256="24caf144e9aabd5acd1127b06f13ed3528240adb9e747d77a94ac3f33e672330", size=220_243_703,
        manual=True,
        note="the 224 'people' generator: checkpoints/people/latest_net_G.pth inside checkpoints.zip; unzip it"
             " and put latest_net_G.pth in the weights directory (sha256 as two independent mirrors publish it)",
    ),
    512: WeightFile(
        name="simswap/512_550000_net_G", filename="550000_net_G.pth", url=f"{RELEASE}/512_beta/512.zip",
        licence=LICENCE, manual=True,
        note="the 512 beta generator: checkpoints/512/550000_net_G.pth inside 512.zip; unzip it and put"
             " 550000_net_G.pth in the weights directory (no checksum is published)",
    ),
}
# Every class the two published layouts of arcface_checkpoint.tar name, each read as an inert stand-in:
# foamliu's `models.*` (2020 training dict), SimSwap's `models.arcface_models.*` (the 2023 re-save), the
# torch modules inside, and the 2020 dict's DataParallel wrapper and SGD optimizer (dropped on loading).
_TORCH_MODULES = tuple(f"torch.nn.modules.{name}" for name in (
    "activation.PReLU", "activation.Sigmoid", "batchnorm.BatchNorm1d", "batchnorm.BatchNorm2d",
    "container.Sequential", "conv.Conv2d", "dropout.Dropout", "linear.Linear", "pooling.AdaptiveAvgPool2d",
    "pooling.MaxPool2d"))
ARCFACE_CLASSES = (
    *(f"{module}.{cls}" for module in ("models", "models.arcface_models")
      for cls in ("ResNet", "IRBlock", "SEBlock", "ArcMarginModel")),
    *_TORCH_MODULES, "torch.nn.parallel.data_parallel.DataParallel", "torch.optim.sgd.SGD",
    "collections.defaultdict", "builtins.dict", "builtins.set",
)
ARCFACE_FILE = WeightFile(
    name="simswap/arcface_checkpoint", filename="arcface_checkpoint.tar", url=f"{RELEASE}/1.0/arcface_checkpoint.tar",
    licence="no licence published (foamliu/InsightFace-v2 model, trained on MS1M-RetinaFace: non-commercial research)",
    format="pickled_module", pickle_classes=ARCFACE_CLASSES,
    note="a pickled SE-ResNet-101 module (re-uploaded 2023-04-25; the 2020 training checkpoint also loads);"
         " its code is never run",
)
PARSER_FILE = parsing.WEIGHTS

IMAGENET_MEAN = torch.tensor(parsing.IMAGENET_MEAN).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor(parsing.IMAGENET_STD).view(1, 3, 1, 1)
FACE_LABELS = (1, 2, 3, 4, 5, 6, 10, 12, 13)  # skin, brows, eyes, glasses, nose, lips (encode_segmentation_rgb)
MOUTH_LABEL = 11
MIN_MASK_PIXELS = 20  # the official `tgt_mask.sum() >= 5000` on 0/255 maps
ARCFACE_RANDOM_GAINS = {"bn2.weight": 0.2}  # damps the 33 residual branches in random weights


def random_weights(crop: int = 224, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Deterministic random state dicts in the official layouts (ArcFace as its flattened module)."""
    with torch.device("meta"):
        g, a, p = Generator(crop), ArcFace(), parsing.BiSeNet()
    return {GENERATOR_FILES[crop].name: random_state_dict(g.state_dict(), seed),
            ARCFACE_FILE.name: random_state_dict(a.state_dict(), seed, ARCFACE_RANDOM_GAINS),
            PARSER_FILE.name: random_state_dict(p.state_dict(), seed)}


def generator_state(module: torch.nn.Module, state: object, wf: WeightFile) -> tuple[dict, list[str]]:
    """(the keys the official loader keeps, the keys it ignores) of a generator file, or a WeightsError.

    BaseModel.load_network loads strictly, else keeps the file's keys the network has; if a key of the
    network is then missing or has another shape it leaves that layer random. That last case is refused.
    """
    if not isinstance(state, Mapping):
        raise WeightsError(f"{wf.filename} ({wf.name}) is not a state dict: it holds a {type(state).__name__}."
                           f" Get the official file from {wf.url}")
    expected = module.state_dict()
    kept = {k: v for k, v in state.items() if k in expected}
    problems = state_dict_problems(expected, kept, finite=True)
    if problems:
        raise WeightsError(f"{wf.filename} ({wf.name}) does not fit the SimSwap {module.crop} generator the official"
                           f" code builds: {'; '.join(problems)}. Get the official file from {wf.url}")
    return kept, sorted(str(k) for k in state if k not in expected)


def grouped(keys: list[str]) -> str:
    """'down4.{0.bias, 0.weight}; up4.{...}': every key, grouped by top-level module."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        head, _, tail = k.partition(".")
        groups.setdefault(head, []).append(tail)
    return "; ".join(f"{h}.{{{', '.join(t)}}}" if any(t) else h for h, t in groups.items())


class SimSwap(SwapMethod):
    """SimSwap: ID-injection generator (9 AdaIN residual blocks) conditioned on an SE-ResNet-101 ArcFace."""

    name = "simswap"
    description = "SimSwap (2020), 224 'people' model: ID injection generator, ArcFace identity, BiSeNet mask"
    paper = "SimSwap: An Efficient Framework For High Fidelity Face Swapping (ACM MM 2020)"
    code = "https://github.com/neuralchen/SimSwap"
    crop = "ghost"  # insightface's five 5-point templates, the lowest-error one per face
    size = 224
    # source_crop / source_size stay None: the official scripts align the source as the target (app.get)
    weights = (GENERATOR_FILES[224], ARCFACE_FILE, PARSER_FILE)

    @dataclass(frozen=True)
    class Options:
        use_mask: bool = True  # --use_mask of every official command: blend inside the target's parsed face
        # ArcFace input: "nearest" as officially (F.interpolate's default); "area": an antialiased average
        arcface_resize: Literal["nearest", "area"] = "nearest"

    def __init__(self, options=None):
        super().__init__(options)
        self.weights = type(self).weights if self.options.use_mask else type(self).weights[:2]
        with torch.device("meta"):  # load_weights overwrites every value
            generator, arcface, parser = Generator(self.size), ArcFace(), parsing.BiSeNet()
        self.generator = generator.to_empty(device="cpu")
        self.arcface = arcface.to_empty(device="cpu")
        self.parser = parser.to_empty(device="cpu") if self.options.use_mask else None
        self.erosion = SoftErosion(17, 0.9, 7)
        self.register_buffer("mean", IMAGENET_MEAN.clone(), persistent=False)
        self.register_buffer("std", IMAGENET_STD.clone(), persistent=False)
        self.ignored_keys: list[str] = []
        self.weights_loaded = False
        self.eval()

    def load_weights(self, state: dict[str, object]) -> None:
        for wf in self.weights:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: no state dict was given for {wf.filename} ({wf.name})")
        g_file = self.weights[0]
        kept, ignored = generator_state(self.generator, state[g_file.name], g_file)
        arc = state[ARCFACE_FILE.name]  # the flat state dict of the pickled module (weights.pickled)
        check_fits(self.arcface, arc, ARCFACE_FILE, "SimSwap ArcFace (SE-ResNet-101)", finite=True)
        if self.parser is not None:
            check_fits(self.parser, state[PARSER_FILE.name], PARSER_FILE, "BiSeNet face parser", finite=True)
            self.parser.load_state_dict(state[PARSER_FILE.name], strict=True)
        self.generator.load_state_dict(kept, strict=True)
        self.arcface.load_state_dict(arc, strict=True)
        self.ignored_keys = ignored
        self.weights_loaded = True

    def _require_weights(self) -> None:
        if not self.weights_loaded:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the network is uninitialised")

    @torch.no_grad()
    def identity(self, image: torch.Tensor) -> torch.Tensor:
        """L2-normalised ArcFace embeddings [B,512] of source crops [B,3,S,S] in [0,1]."""
        self._require_weights()
        x = (image.float() - self.mean) / self.std
        x = F.interpolate(x, size=(112, 112), mode=self.options.arcface_resize)
        with torch.autocast(device_type=x.device.type, enabled=False):  # fp32, as officially
            return F.normalize(self.arcface(x), p=2, dim=1)

    @torch.no_grad()
    def parse(self, target: torch.Tensor) -> torch.Tensor:
        """BiSeNet labels [B,512,512] of target crops in [0,1]: ImageNet mean/std, *nearest* upsampling to 512."""
        x = F.interpolate((target.float() - self.mean) / self.std, size=(parsing.INPUT_SIZE,) * 2, mode="nearest")
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.parser(x)[0].argmax(1)

    def soft_mask(self, labels: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(soft mask [B,1,size,size], whether each face has enough face and mouth pixels) from parser labels."""
        maps = torch.stack([parsing.keep_mask(labels, FACE_LABELS), labels == MOUTH_LABEL], 1).float()
        enough = maps.sum((1, 2, 3)) >= MIN_MASK_PIXELS
        if maps.shape[-1] != size:  # cv2.resize, INTER_LINEAR: no antialiasing
            maps = F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)
        return self.erosion(maps.sum(1, keepdim=True)), enough

    @staticmethod
    def blend(swap: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, enough: torch.Tensor) -> torch.Tensor:
        """swap * mask + target * (1 - mask) where the parser found the face, the raw swap elsewhere."""
        return torch.where(enough[:, None, None, None], swap * mask + target * (1 - mask), swap)

    @torch.no_grad()
    def generate(self, target: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Swapped crops [B,3,S,S] in [0,1]: the generator, then (use_mask) the blend inside the parsed face."""
        self._require_weights()
        target = target.float()
        with torch.autocast(device_type=target.device.type, enabled=False):  # fp32, as officially
            swap = self.generator(target, latent)
        if self.parser is None:
            return swap
        return self.blend(swap, target, *self.soft_mask(self.parse(target), target.shape[-1]))

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        out = self.generate(target.image, self.identity(source.image))
        if self.ignored_keys and target.pair_id:
            text = (f"{self.weights[0].filename}: keys the official loader ignores were ignored"
                    f" ({len(self.ignored_keys)}): {grouped(self.ignored_keys)}")
            for pid in target.pair_id:
                self.note(pid, text)
        return out


class SimSwap512(SimSwap):
    name = "simswap_512"
    description = "SimSwap 512 beta (2021): the 224 design with one more stage, on FFHQ-aligned 512 crops"
    crop = "ffhq5"  # the 5-point FFHQ template of SimSwap's aligner (mode 'ffhq'), least-squares similarity
    size = 512
    weights = (GENERATOR_FILES[512], ARCFACE_FILE, PARSER_FILE)
