"""MegaFS (Zhu et al., "One Shot Face Swapping on Megapixels", CVPR 2021) as a swapbench method.

Faithful to the official inference (zyainfal/One-Shot-Face-Swapping-on-Megapixels @ f01b195,
inference/inference.py + megafs.py), which on 1024x1024 CelebA-HQ-aligned faces does:

  encode   cv2.resize 1024 -> 256 (INTER_LINEAR), /255, (x - 0.5) / 0.5; HieRFE on [target, source]
           -> W+ codes [18, 512] (tanh) and the target's 4x4 "struct" map;
  swap     FaceTransferModule(source codes, target codes): codes 0-3 from the target, 4-17 mixed
           (ftm), injected (injection) or taken from the source (lcr);
  generate StyleGAN2 FFHQ config-f with the struct replacing the constant input and the stored noise
           buffers (randomize_noise=False);
  output   global min-max over the whole generated tensor (all channels together) to [0, 255]
           (not (x + 1) / 2 with a clamp);
  blend    face + mouth mask of the target (CelebAMask-HQ ids 1-6, 10, 12, 13 and 11) resized to 1024,
           SoftErosion(17, 0.9, 7), swapped * m + target * (1 - m), cast to uint8 by truncation.

Here:
  - the crops come from swapbench's `celebahq` template (the official code never aligns; the data set
    ships aligned) at 1024;
  - the mask comes from swapbench's BiSeNet parser (zllrunning 79999_iter.pth, the parser the
    authors point to for own images, MegaFS issues #7/#26; the same 19-class order) run on the
    target crop at 512, standing in for the CelebAMask-HQ annotation the official code reads
    (those are 512x512 too); with `masks=annotation` (celebahq protocol) the data set's own part
    annotations are merged into a label map (swapbench.datasets.layouts.celebahq_label_map), resized to
    the image and carried into the crop by its transform, as the paper-faithful alternative;
  - the 1024 -> 256 resize gives the official cv2.resize's 8-bit image exactly (each output is the
    rounded-half-up mean of input pixels 4i+1 and 4i+2 in both directions, as cv2 4 computes it), in
    torch so that it runs on the method's device;
  - `truncate` (default True, as officially) floors the blended [0, 255] values like
    ndarray.astype(uint8): a bias of -0.5/255 on average (about -0.002 in [0, 1]) against rounding;
    with truncate=False the float blend is returned;
  - `refine` (default False) re-encodes the blended swap and regenerates it from its own codes and
    struct (the official `refine`), then blends again. The official run() computes this refined
    face but writes the unrefined one again in its 4th panel (inference.py line 131), so the
    official output is the unrefined swap: that is the default here;
  - a pair whose target mask is empty or covers the whole crop fails with SoftErosionError (the
    official SoftErosion gives NaN or raises there); the engine records it as a failed pair;
  - `swap()` runs the pairs of a batch one at a time, as the official code does: the min-max and the
    SoftErosion normalisation are per image, and a swap is bit-identical at any batch size (batched
    convolutions may pick other kernels, and a 1e-7 difference can flip a uint8 truncation). The
    networks take batches (`generate()`), which benchmarks/megafs_speed.py times as "core".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from PIL import Image

from swapbench.datasets.layouts import (
    CELEBAHQ_MASK_SIDE,
    celebahq_image,
    celebahq_label_map,
)
from swapbench.faces import warp
from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.faces.parsing import BiSeNet, FaceParser
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.megafs.nets import (
    SWAP_TYPES,
    FaceTransferModule,
    HieRFE,
    SoftErosion,
)
from swapbench.methods.stylegan2 import Generator
from swapbench.weights import WeightFile, WeightsError, check_fits

CODE = "https://github.com/zyainfal/One-Shot-Face-Swapping-on-Megapixels"
LICENCE = "CC BY-NC 4.0 (the official repository's LICENSE.txt, (c) 2021 CRIPAC, NLPR, CASIA)"
# inference/README.md "Checkpoints": a Google Drive folder, mirrored on Baidu Cloud
# (https://pan.baidu.com/s/1DPNnU9zmkEdef6WT79J5Wg, access code 7nov); inference.py reads ./checkpoint/.
RELEASE_PAGE = "https://drive.google.com/drive/folders/1XDakvzNHDtC7G1d1Zn8MjPbmen4LKLPw"
BAIDU = "Baidu Cloud mirror https://pan.baidu.com/s/1DPNnU9zmkEdef6WT79J5Wg (access code 7nov)"

SWAP_FILES: dict[str, WeightFile] = {
    t: WeightFile(
        name=f"megafs/{t}_final",
        filename=f"{t}_final.pth",
        url=RELEASE_PAGE,
        licence=LICENCE,
        note=f"MegaFS HieRFE encoder ('e') + {t} face transfer module ('s'), from the Google Drive folder of "
             f"inference/README.md or its {BAIDU}; put the file in the weights directory",
        manual=True,
    )
    for t in SWAP_TYPES
}
STYLEGAN_FILE = WeightFile(
    name="megafs/stylegan2-ffhq-config-f",
    filename="stylegan2-ffhq-config-f.pth",
    url=RELEASE_PAGE,
    licence="NVIDIA Source Code License-NC (StyleGAN2 FFHQ config-f weights), converted by rosinality/stylegan2-pytorch",
    note="rosinality-converted StyleGAN2 FFHQ 1024 config-f, in the same Google Drive folder (or its "
         f"{BAIDU}); only 'g_ema' is used. rosinality's convert_weight.py makes the same layout from NVIDIA's "
         "stylegan2-ffhq-config-f.pkl (it writes .pt: rename to .pth)",
    manual=True,
)

FACE_IDS = (1, 2, 3, 4, 5, 6, 10, 12, 13)  # encode_segmentation_rgb, no_neck=True
MOUTH_ID = 11
ENCODER_SIZE = 256
MASK_SIZE = 512  # CelebAMask-HQ annotations are 512 x 512


@dataclass(frozen=True)
class MegaFSOptions:
    refine: bool = False  # official refine pass (computed but discarded by the official run())
    truncate: bool = True  # uint8 truncation of the blend, as officially
    # Reduced generator side for tests and CPU smoke runs (the checkpoint must match); 1024 officially.
    generator_size: int = 1024
    # Where the target's face mask comes from: swapbench's BiSeNet parser (any image), or the data set's
    # own CelebAMask-HQ annotation (celebahq protocol only; what the official inference reads).
    masks: Literal["parser", "annotation"] = "parser"


class MegaFS(SwapMethod):
    """MegaFS with the FTM swapper (the paper's main model); `megafs_injection`, `megafs_lcr` are the others."""

    name = "megafs"
    description = "MegaFS (CVPR 2021): HieRFE + face transfer module (FTM) + StyleGAN2 1024, SoftErosion blend"
    paper = "Zhu et al., One Shot Face Swapping on Megapixels, CVPR 2021"
    code = CODE
    crop = "celebahq"
    size = 1024
    swap_type: ClassVar[str] = "ftm"
    weights = (SWAP_FILES["ftm"], STYLEGAN_FILE, PARSER_WEIGHTS)
    Options = MegaFSOptions

    def __init__(self, options: MegaFSOptions | None = None, **kwargs):
        """options: MegaFS.Options; keyword arguments are a shortcut (MegaFS(generator_size=32))."""
        if options is None:
            options = MegaFSOptions(**kwargs)
        elif kwargs:
            raise TypeError("pass either options or keyword options, not both")
        super().__init__(options)
        self.save_hyperparameters({"swap_type": self.swap_type, **asdict(options)})
        with torch.device("meta"):  # every value comes from load_weights
            encoder, swapper = HieRFE(), FaceTransferModule(self.swap_type)
            generator, parser = Generator(options.generator_size), BiSeNet()
        self.encoder = encoder.to_empty(device="cpu")
        self.swapper = swapper.to_empty(device="cpu")
        self.generator = generator.to_empty(device="cpu")
        self.parser = FaceParser(parser.to_empty(device="cpu"))
        self.smooth_mask = SoftErosion(17, 0.9, 7)
        self.weights_loaded = False
        self.eval()

    @classmethod
    def weights_for(cls, options: MegaFSOptions) -> tuple[WeightFile, ...]:
        """masks=annotation reads the data set's masks: the BiSeNet parser's file is not needed."""
        return tuple(f for f in cls.weights if f is not PARSER_WEIGHTS) if options.masks == "annotation" else cls.weights

    def load_weights(self, state: dict[str, object]) -> None:
        swap_file = self.weights[0]
        for wf in self.weights:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: no contents were given for {wf.filename} ({wf.name})")
        ckpt, gan = state[swap_file.name], state[STYLEGAN_FILE.name]
        for obj, wf, keys in ((ckpt, swap_file, ("e", "s")), (gan, STYLEGAN_FILE, ("g_ema",))):
            if not isinstance(obj, Mapping) or any(k not in obj for k in keys):
                have = sorted(map(str, obj))[:5] if isinstance(obj, Mapping) else type(obj).__name__
                raise WeightsError(f"{wf.filename} ({wf.name}) should be a dict with keys {list(keys)}, "
                                   f"got {have}. Get the official file from {wf.url}")
        parts = ((self.encoder, ckpt["e"], swap_file, "HieRFE encoder ('e')"),
                 (self.swapper, ckpt["s"], swap_file, f"{self.swap_type} transfer module ('s')"),
                 # officially loaded with strict=False; all 171 keys must be there for the result to hold
                 (self.generator, gan["g_ema"], STYLEGAN_FILE, "StyleGAN2 generator ('g_ema')"))
        if PARSER_WEIGHTS in self.weights:
            parts += ((self.parser.net, state[PARSER_WEIGHTS.name], PARSER_WEIGHTS, "BiSeNet face parser"),)
        for module, sd, wf, what in parts:  # check everything before changing anything
            check_fits(module, sd, wf, f"MegaFS {what}")
        for module, sd, _, _ in parts:
            module.load_state_dict(sd, strict=True)
        self.weights_loaded = True

    # -- the pipeline, step by step (each step is used by the parity test) --

    @staticmethod
    def encoder_input(images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] in [0, 1] -> [B, 3, 256, 256] in [-1, 1], as the official preprocess: cv2.resize
        (INTER_LINEAR) of the uint8 image to a uint8 image, `.mul_(1/255.0)`, normalize(0.5, 0.5).

        For S = 1024 (the method's crop) cv2 4's fixed-point result is exactly (a + b + c + d + 2) // 4 of the
        input pixels at rows and columns 4i+1, 4i+2 (tested against cv2); other sides (reduced tests) are
        resampled bilinearly and rounded to 8 bits."""
        x = torch.round(images.float() * 255)  # the 8-bit image the crops were made from
        if x.shape[-1] == 4 * ENCODER_SIZE:
            rows = x[..., 1::4, :] + x[..., 2::4, :]
            x = torch.div(rows[..., 1::4] + rows[..., 2::4] + 2, 4, rounding_mode="floor")
        elif x.shape[-1] != ENCODER_SIZE:
            x = F.interpolate(x, size=(ENCODER_SIZE, ENCODER_SIZE), mode="bilinear", align_corners=False,
                              antialias=False).add(0.5).floor().clamp(0, 255)
        return (x.mul(1 / 255.0) - 0.5) / 0.5

    def generate(self, source_in: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Encoder inputs (256, [-1, 1]) -> min-max normalised swaps [B, 3, G, G] in [0, 1]."""
        b = target_in.shape[0]
        codes, struct = self.encoder(torch.cat([target_in, source_in]))
        w = self.swapper(codes[b:], codes[:b])
        return minmax(self.generator(w, struct[:b], noise="buffers"))

    def regenerate(self, image_in: torch.Tensor) -> torch.Tensor:
        """The official refine(): encode, generate with the image's own codes and struct, min-max."""
        codes, struct = self.encoder(image_in)
        return minmax(self.generator(codes, struct, noise="buffers"))

    def face_mask(self, target: torch.Tensor) -> torch.Tensor:
        """Face + mouth mask [B, 1, S, S] in [0, 1] of the target crops, before SoftErosion."""
        x = F.interpolate(target.float(), size=(MASK_SIZE, MASK_SIZE), mode="bilinear", align_corners=False,
                          antialias=True)
        return self.mask_from_labels(self.parser.labels(x)[:, None], target.shape[-1])

    @staticmethod
    def mask_from_labels(labels: torch.Tensor, size: int) -> torch.Tensor:
        """CelebAMask-HQ label maps [B, 1, h, w] -> face + mouth mask [B, 1, size, size] (bilinear, as
        the official cv2.resize of the 0/255 maps)."""
        face = torch.isin(labels, torch.tensor(FACE_IDS, device=labels.device)).float()
        mask = face + (labels == MOUTH_ID).float()
        if mask.shape[-1] != size:
            mask = F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False)
        return mask

    def annotation_mask(self, target: FaceBatch) -> torch.Tensor:
        """Face + mouth mask [B, 1, S, S] of the targets from their CelebAMask-HQ annotations, before SoftErosion.

        As officially, the 512 label map is resized bilinearly to the image's size; the crop's own
        image -> crop transform then carries it into the crop (a near-identity on CelebA-HQ images)."""
        masks = []
        for i, where in enumerate(target.location):
            found = celebahq_image(where)
            if found is None or target.matrix is None:
                raise ValueError(f"megafs.masks=annotation reads CelebAMask-HQ annotations, but the target {where} is "
                                 "not a CelebA-HQ-img/<N>.jpg image of the celebahq data set")
            labels = torch.from_numpy(celebahq_label_map(*found))[None, None]
            width, height = Image.open(where).size
            face = self.mask_from_labels(labels, CELEBAHQ_MASK_SIDE)
            face = F.interpolate(face, size=(height, width), mode="bilinear", align_corners=False)
            masks.append(warp.align_batch(face, target.matrix[i:i + 1], target.image.shape[-1], antialias=False,
                                          padding_mode="zeros"))
        return torch.cat(masks).to(target.image.device)

    def soft_mask(self, target: torch.Tensor) -> torch.Tensor:
        """SoftErosion(17, 0.9, 7) of the target's face + mouth mask, [B, 1, S, S]."""
        return self.smooth_mask(self.face_mask(target))[0]

    def blend(self, swapped: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """SoftErosion blend of swaps onto the targets (both [B, 3, S, S] in [0, 1]); uint8-truncated if set."""
        return self.paste(swapped, target, self.smooth_mask(mask)[0])

    def paste(self, swapped: torch.Tensor, target: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        """swapped * soft + target * (1 - soft) in [0, 255], truncated to whole steps if set, in [0, 1]."""
        s = target.shape[-1]
        if swapped.shape[-1] != s:  # only with a reduced generator_size
            swapped = F.interpolate(swapped, size=(s, s), mode="bilinear", align_corners=False)
        out = swapped * 255.0 * soft + target.float() * 255.0 * (1 - soft)
        if self.options.truncate:
            out = out.floor()  # ndarray.astype(uint8) truncates; values are >= 0
        return out / 255.0

    @torch.no_grad()
    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        if not self.weights_loaded:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the networks are uninitialised")
        if len(target) > 1:  # per-pair failures (masks) must not take the others down: one pair at a time
            return torch.cat([self.swap(source.row(i), target.row(i)) for i in range(len(target))])
        tgt = target.image.float()
        # first: a pair without a usable mask fails before the networks run
        if self.options.masks == "annotation":
            soft = self.smooth_mask(self.annotation_mask(target))[0]
        else:
            soft = self.soft_mask(tgt)
        swapped = self.generate(self.encoder_input(source.image), self.encoder_input(tgt))
        out = self.paste(swapped, tgt, soft)
        if self.options.refine:
            out = self.paste(self.regenerate(self.encoder_input(out)), tgt, soft)
        return out


def minmax(img: torch.Tensor) -> torch.Tensor:
    """Per image, (x - min) / (max - min) over all channels and pixels (the official global min-max)."""
    flat = img.flatten(1)
    lo, hi = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
    return (img - lo) / (hi - lo)


class MegaFSInjection(MegaFS):
    name = "megafs_injection"
    description = "MegaFS with the injection swapper (injection_final.pth)"
    swap_type = "injection"
    weights = (SWAP_FILES["injection"], STYLEGAN_FILE, PARSER_WEIGHTS)


class MegaFSLCR(MegaFS):
    name = "megafs_lcr"
    description = "MegaFS with latent code replacement (lcr_final.pth; no learned swapper)"
    swap_type = "lcr"
    weights = (SWAP_FILES["lcr"], STYLEGAN_FILE, PARSER_WEIGHTS)
