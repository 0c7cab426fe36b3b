"""FSLSD-HiRes (Xu et al., "High-resolution Face Swapping via Latent Semantics Disentanglement",
CVPR 2022) as a swapbench method.

Faithful to the official inference (cnnlstm/FSLSD_HiRes @ 4cf0869, test.py train() lines 80-131 and
dataset.py), which per pair does:

  latents   source W+ codes [18, 512] (pSp FFHQ encoder + latent_avg, precomputed officially);
  landmarks 106 LaPa points of source and target in 256-pixel units (H3R, precomputed officially),
            each rasterised to a one-hot [106, 256, 256] map (map[i, y, x] = 1 at the truncated (x, y);
            the official Gaussian cast to uint8 keeps only the peak); source then target -> 212 channels;
  delta     encoder_lmk(maps) -> 7 latent deltas; W = source + [delta, 0 x 11]; rows 11-17 replaced by
            the target's codes; W = bald_model(W, coeff 2);
  features  generator features of W (stored noise), GPEN features of the 1024 target in [-1, 1];
  mask      target face (list2 ids 1, 6, 7, 4, 5, 3, 2, 11, 12) + mouth (10), resized to 1024
            (bilinear), dilated by a 50 x 50 box (24 px up/left, 25 px down/right);
  decode    decoder(source features, target features, mask), progressive mask resizing;
  output    save_image(normalize, range (-1, 1)): clamp, to [0, 1], * 255 + 0.5, uint8. No paste: the
            background is the decoder's reconstruction.

Here:
  - the crops are swapbench's `celebahq` template at 1024 (the FFHQ geometry of the CelebA-HQ images
    the official data come from);
  - source W+ codes: the pSp FFHQ encoder (psp_ffhq_encode.pt, own port in nets.GradualEncoder) on
    the source crop resized to 256 (bilinear with antialiasing, like PIL's resize), normalised to
    [-1, 1], plus latent_avg. The target's codes (rows 11-17) come from the same encoder;
  - landmarks: H3R HRNet-W18 LaPa 106 (swapbench.methods.fslsd.h3r) on the crop resized to 256, whole
    image as the box, flip test on, as torchalign.FacialLandmarkDetector(img_256) does;
  - mask: swapbench's BiSeNet parser on the target crop at 512 (the size of the CelebAMask-HQ PNGs
    the official code reads), its 19-class labels remapped to the CelebAMask-HQ list2 ids the
    official dataset code expects (FSLSD's README names BiSeNet for new images);
  - `inputs=released` (celebahq protocol) reads the official release's precomputed codes, landmarks and
    label PNGs instead of running pSp, H3R and BiSeNet; landmarks and mask are carried from the image
    into the crop by the crop's transform (a near-identity on CelebA-HQ images);
  - `swap()` runs pairs one at a time, as the official test (batch 1): a swap is then bit-identical at
    any batch size (the networks take batches, see `generate()`);
  - `generator_size` < 1024 (tests, CPU smoke runs) builds the same networks at a reduced output
    side (the checkpoint must match); the output is resized to the crop side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from swapbench.datasets.layouts import celebahq_image
from swapbench.datasets.protocol import DataError
from swapbench.faces import warp
from swapbench.faces.parsing import CLASS_INDEX, BiSeNet, FaceParser
from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.fslsd.h3r import H3R, H3R_FILE
from swapbench.methods.fslsd.nets import (
    BALD_COEFF,
    COARSE,
    MIX_FROM,
    BaldMapping,
    Decoder,
    GPENEncoder,
    LandmarkEncoder,
    PSPEncoder,
    strip_module,
)
from swapbench.methods.stylegan2 import Generator
from swapbench.weights import WeightFile, WeightsError, check_fits

CODE = "https://github.com/cnnlstm/FSLSD_HiRes"
FSLSD_FILE = WeightFile(
    name="fslsd/CELEBA-HQ-1024",
    filename="CELEBA-HQ-1024.pt",
    url="https://drive.google.com/file/d/1LH4RlxaPnrHAiWEDm3LDp5Sz9H02bzXU/view?usp=sharing",
    licence="no licence stated in cnnlstm/FSLSD_HiRes (all rights reserved; research use by the authors' release); "
            "the generator is StyleGAN2 FFHQ (NVIDIA Source Code License-NC)",
    note="the checkpoint link of the FSLSD_HiRes README (Google Drive): a dict of five DDP state dicts "
         "(encoder_lmk, encoder_target, generator, decoder, bald_model); put it in the weights directory",
    manual=True,
)
PSP_FILE = WeightFile(
    name="fslsd/psp_ffhq_encode",
    filename="psp_ffhq_encode.pt",
    url="https://drive.google.com/file/d/1bMTNWkh5LArlaWSc_wa8VKyq2V42T2z0/view?usp=sharing",
    licence="MIT (eladrich/pixel2style2pixel); StyleGAN2 FFHQ decoder weights NVIDIA Source Code License-NC",
    note="pSp 'StyleGAN Inversion' FFHQ encoder from the pixel2style2pixel README (Google Drive); FSLSD's "
         "source latents are its codes with latent_avg added (FSLSD issue #10). Only the encoder and latent_avg are read",
    manual=True,
)

# CelebAMask-HQ g_mask.py "list2" ids, which the official dataset.py reads (1 skin ... 18 cloth)
LIST2 = ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
         "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
LIST2_FROM_BISENET = torch.tensor([LIST2.index(name) for name in sorted(CLASS_INDEX, key=CLASS_INDEX.get)])
FACE_IDS = (1, 6, 7, 4, 5, 3, 2, 11, 12)  # dataset.encode_segmentation_rgb, no_neck=True
MOUTH_ID = 10
MASK_SIZE = 1024
PARSE_SIZE = 512
DILATE = 50
MAP_SIZE = 256
RELEASED_PROTOCOL = "celebahq"  # inputs=released: the protocol whose images the release precomputed
N_LANDMARKS = 106


@dataclass(frozen=True)
class FSLSDOptions:
    # Reduced generator side for tests and CPU smoke runs (the checkpoint must match); 1024 officially.
    generator_size: int = 1024
    # Where the W+ codes, 106 landmarks and target mask come from: "computed" by pSp, H3R and BiSeNet from
    # the crops (any image), or "released": read from the official release's precomputed CelebA-HQ
    # folders CelebA-HQ-latent/<N>.npy, CelebA-HQ-landmark/<N>.npy and CelebA-HQ-mask/<N>.png beside
    # CelebA-HQ-img (celebahq protocol only; what the official test reads). "released" needs only
    # CELEBA-HQ-1024.pt.
    inputs: Literal["computed", "released"] = "computed"


def landmark_maps(points: torch.Tensor, size: int = MAP_SIZE) -> torch.Tensor:
    """[B, N, 2] (x, y) points -> one-hot maps [B, N, size, size]: 1 at (y, x) = (int(y), int(x)) truncated
    toward zero, nothing for points at -1 or outside the map (the official uint8 Gaussian)."""
    b, n, _ = points.shape
    xy = points.to(torch.float64).trunc().long()  # python int() truncates toward zero
    skip = (points[..., 0] == -1) | (points[..., 1] == -1)
    ok = ~skip & (xy >= 0).all(-1) & (xy < size).all(-1)
    maps = torch.zeros(b, n, size * size, dtype=torch.float32, device=points.device)
    flat = (xy[..., 1] * size + xy[..., 0]).clamp(0, size * size - 1)
    maps.scatter_(2, flat[..., None], ok[..., None].float())
    return maps.view(b, n, size, size)


def mask_from_list2(labels: torch.Tensor, size: int = MASK_SIZE, dilate: int = DILATE) -> torch.Tensor:
    """list2 label maps [B, 1, h, w] -> the official target mask [B, 1, size, size]: face + mouth maps,
    bilinear resize (cv2.resize INTER_LINEAR), 50 x 50 box dilation with cv2's centred anchor."""
    face = torch.isin(labels, torch.tensor(FACE_IDS, device=labels.device)).double()
    mask = face + (labels == MOUTH_ID).double()
    if mask.shape[-1] != size:
        mask = F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False)
    # cv2.dilate, kernel ones(k, k), anchor k // 2: out[y] = max(src[y - k//2 .. y + k - 1 - k//2]), border 0
    # (a box maximum is separable: rows, then columns)
    a = dilate // 2
    mask = F.pad(mask, (a, dilate - 1 - a, a, dilate - 1 - a))
    mask = F.max_pool2d(mask, (dilate, 1), stride=1)
    return F.max_pool2d(mask, (1, dilate), stride=1).float()


def to_uint8_steps(out: torch.Tensor) -> torch.Tensor:
    """save_image(normalize=True, range=(-1, 1)): clamp to [-1, 1], to [0, 1], uint8 by * 255 + 0.5; in [0, 1]."""
    x = (out.clamp(-1, 1) + 1) / 2
    return x.mul(255).add(0.5).clamp(0, 255).floor() / 255


class FSLSD(SwapMethod):
    name = "fslsd"
    description = ("FSLSD-HiRes (CVPR 2022): pSp W+ source codes + landmark-driven latent delta + bald mapping, "
                   "StyleGAN2 1024 features blended with GPEN target features by a mask-guided decoder")
    paper = "Xu et al., High-resolution Face Swapping via Latent Semantics Disentanglement, CVPR 2022"
    code = CODE
    crop = "celebahq"
    size = 1024
    weights = (FSLSD_FILE, PSP_FILE, H3R_FILE, PARSER_WEIGHTS)
    Options = FSLSDOptions

    def __init__(self, options: FSLSDOptions | None = None, **kwargs):
        if options is None:
            options = FSLSDOptions(**kwargs)
        elif kwargs:
            raise TypeError("pass either options or keyword options, not both")
        super().__init__(options)
        g = options.generator_size
        if g < 16 or g & (g - 1):
            raise ValueError(f"generator_size must be a power of two >= 16, got {g}")
        self.save_hyperparameters(asdict(options))
        if g != 1024:  # a reduced test architecture: its rows never reach a published leaderboard
            self.publishable = False
        with torch.device("meta"):  # every value comes from load_weights
            nets = {"encoder_lmk": LandmarkEncoder(N_LANDMARKS), "encoder_target": GPENEncoder(g // 2),
                    "generator": Generator(g), "decoder": Decoder(8, g), "bald_model": BaldMapping(),
                    "psp": PSPEncoder(), "h3r": H3R(), "parser": BiSeNet()}
        nets = {k: v.to_empty(device="cpu") for k, v in nets.items()}
        self.encoder_lmk, self.encoder_target = nets["encoder_lmk"], nets["encoder_target"]
        self.generator, self.decoder, self.bald_model = nets["generator"], nets["decoder"], nets["bald_model"]
        self.psp, self.h3r = nets["psp"], nets["h3r"]
        self.parser = FaceParser(nets["parser"])
        self.register_buffer("latent_avg", torch.zeros(18, 512), persistent=False)
        self.weights_loaded = False
        self.eval()

    def check_protocol(self, protocol) -> None:
        if self.options.inputs == "released" and protocol.name != RELEASED_PROTOCOL:
            raise ValueError(f"fslsd.inputs=released reads the official precomputed CelebA-HQ files: it needs the "
                             f"{RELEASED_PROTOCOL} protocol, not {protocol.name}")

    # -- weights --

    @classmethod
    def weights_for(cls, options: FSLSDOptions) -> tuple[WeightFile, ...]:
        """inputs=released reads the codes, landmarks and masks: pSp, H3R and BiSeNet are not needed."""
        return (FSLSD_FILE,) if options.inputs == "released" else cls.weights

    def load_weights(self, state: dict[str, object]) -> None:
        for wf in self.weights:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: no contents were given for {wf.filename} ({wf.name})")
        ckpt = state[FSLSD_FILE.name]
        parts_needed = ("encoder_lmk", "encoder_target", "generator", "decoder", "bald_model")
        aux = PSP_FILE in self.weights
        files = ((ckpt, FSLSD_FILE, parts_needed),) + (((state[PSP_FILE.name], PSP_FILE, ("state_dict", "latent_avg")),)
                                                       if aux else ())
        for obj, wf, keys in files:
            if not isinstance(obj, Mapping) or any(k not in obj for k in keys):
                have = sorted(map(str, obj))[:6] if isinstance(obj, Mapping) else type(obj).__name__
                raise WeightsError(f"{wf.filename} ({wf.name}) should be a dict with keys {list(keys)}, "
                                   f"got {have}. Get the official file from {wf.url}")
        parts = [(getattr(self, k), strip_module(ckpt[k]) if isinstance(ckpt[k], Mapping) else ckpt[k], FSLSD_FILE,
                  f"{k} (key '{k}')") for k in parts_needed]
        if aux:
            psp = state[PSP_FILE.name]
            psp_sd = psp["state_dict"]
            if not isinstance(psp_sd, Mapping):
                raise WeightsError(f"{PSP_FILE.filename}: 'state_dict' is not a dict. Get the official file from {PSP_FILE.url}")
            psp_enc = {k[len("encoder."):]: v for k, v in psp_sd.items() if k.startswith("encoder.")}
            avg = psp["latent_avg"]
            if not isinstance(avg, torch.Tensor) or avg.shape[-1] != 512 or avg.numel() not in (512, 18 * 512):
                raise WeightsError(f"{PSP_FILE.filename}: latent_avg should be [18, 512] or [512], got "
                                   f"{getattr(avg, 'shape', type(avg).__name__)}. Get the official file from {PSP_FILE.url}")
            parts += [(self.psp, psp_enc, PSP_FILE, "pSp encoder ('encoder.*' of 'state_dict')"),
                      (self.h3r, state[H3R_FILE.name], H3R_FILE, "H3R landmark detector"),
                      (self.parser.net, state[PARSER_WEIGHTS.name], PARSER_WEIGHTS, "BiSeNet face parser")]
        for module, sd, wf, what in parts:  # check everything before changing anything
            check_fits(module, sd, wf, f"FSLSD {what}")
        for module, sd, _, _ in parts:
            module.load_state_dict(sd, strict=True)
        if aux:
            self.latent_avg.copy_(avg.float().reshape(-1, 512).expand(18, 512))
        self.weights_loaded = True

    # -- the auxiliary inputs (precomputed by the official release for CelebA-HQ) --

    @staticmethod
    def resize_256(images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[-1] != MAP_SIZE:
            x = F.interpolate(x, size=(MAP_SIZE, MAP_SIZE), mode="bilinear", align_corners=False, antialias=True)
        return x

    def latents(self, images: torch.Tensor) -> torch.Tensor:
        """pSp W+ codes [B, 18, 512] (+ latent_avg) of crops [B, 3, S, S] in [0, 1]."""
        return self.psp((self.resize_256(images) - 0.5) / 0.5) + self.latent_avg

    def landmarks(self, images: torch.Tensor) -> torch.Tensor:
        """106 LaPa landmarks [B, 106, 2] in 256-pixel units (H3R on the 256 image, flip test)."""
        return self.h3r.detect(self.resize_256(images))

    def target_mask(self, target: torch.Tensor) -> torch.Tensor:
        """The official dilated face + mouth mask [B, 1, 1024, 1024] from the parser's labels."""
        x = target.float()
        if x.shape[-1] != PARSE_SIZE:
            x = F.interpolate(x, size=(PARSE_SIZE, PARSE_SIZE), mode="bilinear", align_corners=False, antialias=True)
        labels = LIST2_FROM_BISENET.to(x.device)[self.parser.labels(x)]
        return mask_from_list2(labels[:, None])

    # -- the official release's precomputed CelebA-HQ inputs (inputs="released") --

    @staticmethod
    def _released(batch: FaceBatch, folder: str, suffix: str) -> tuple[list[Path], list[int]]:
        """The released files of each row (CelebA-HQ-<folder>/<N><suffix> beside CelebA-HQ-img) and the
        side of each row's source image."""
        paths, sides = [], []
        for where in batch.location or [""] * len(batch):
            found = celebahq_image(where)
            if found is None or batch.matrix is None:
                raise ValueError(f"fslsd.inputs=released reads the official precomputed CelebA-HQ files, but {where!r} "
                                 "is not a CelebA-HQ-img/<N>.jpg image of the celebahq data set")
            root, index = found
            path = root / f"CelebA-HQ-{folder}" / f"{index}{suffix}"
            if not path.is_file():
                raise DataError(f"{path} is missing: unpack the FSLSD_HiRes README's CelebA-HQ data (Google Drive "
                                f"zip with CelebA-HQ-latent, CelebA-HQ-landmark, CelebA-HQ-mask) beside {root / 'CelebA-HQ-img'}")
            paths.append(path)
            sides.append(Image.open(where).size[0])
        return paths, sides

    def released_latents(self, batch: FaceBatch) -> torch.Tensor:
        """W+ codes [B, 18, 512] from CelebA-HQ-latent/<N>.npy (pSp codes + latent_avg, as released)."""
        paths, _ = self._released(batch, "latent", ".npy")
        return torch.stack([torch.from_numpy(np.load(p)).float().reshape(18, 512) for p in paths])

    def released_landmarks(self, batch: FaceBatch) -> torch.Tensor:
        """106 landmarks [B, 106, 2] from CelebA-HQ-landmark/<N>.npy (256-pixel units of the whole image),
        carried into the crop by its transform and returned in 256-pixel units of the crop."""
        paths, sides = self._released(batch, "landmark", ".npy")
        s = batch.image.shape[-1]
        out = []
        for i, (p, side) in enumerate(zip(paths, sides)):
            pts = torch.from_numpy(np.load(p)).double().reshape(-1, 2)
            skip = (pts == -1).any(-1)
            img = (pts + 0.5) * side / MAP_SIZE - 0.5  # pixel centres of the image
            m = batch.matrix[i].double().cpu()
            crop = img @ m[:, :2].T + m[:, 2]
            pts = (crop + 0.5) * MAP_SIZE / s - 0.5
            pts[skip] = -1.0
            out.append(pts.float())
        return torch.stack(out).to(batch.image.device)

    def released_mask(self, batch: FaceBatch) -> torch.Tensor:
        """The official mask of CelebA-HQ-mask/<N>.png (list2 labels: resized to the image, dilated), carried
        into the crop by its transform, then resized to 1024 (a no-op for 1024 crops)."""
        paths, sides = self._released(batch, "mask", ".png")
        masks = []
        for i, (p, side) in enumerate(zip(paths, sides)):
            labels = torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))[..., 0].astype(np.int64))[None, None]
            mask = mask_from_list2(labels, size=side)
            mask = warp.align_batch(mask, batch.matrix[i:i + 1].cpu(), batch.image.shape[-1], antialias=False,
                                    padding_mode="zeros")
            masks.append(mask if mask.shape[-1] == MASK_SIZE else
                         F.interpolate(mask, size=(MASK_SIZE, MASK_SIZE), mode="bilinear", align_corners=False))
        return torch.cat(masks).to(batch.image.device)

    # -- the official network pipeline (test.py lines 80-112) --

    def mix(self, s_code: torch.Tensor, t_code: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Landmark delta on rows 0-6, target rows 11-17, bald mapping: [B, 18, 512]."""
        delta = self.encoder_lmk(maps)
        fusion = s_code.clone()
        fusion[:, :COARSE] = fusion[:, :COARSE] + delta
        fusion = torch.cat([fusion[:, :MIX_FROM], t_code[:, MIX_FROM:]], dim=1)
        return self.bald_model(fusion.reshape(fusion.shape[0], -1), BALD_COEFF).view(t_code.shape)

    def generate(self, s_code: torch.Tensor, t_code: torch.Tensor, s_lmk: torch.Tensor, t_lmk: torch.Tensor,
                 target_in: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Raw decoder output [B, 3, G, G] (about [-1, 1]). target_in: [B, 3, G, G] in [-1, 1]; landmarks in
        256-pixel units; mask [B, 1, 1024, 1024]."""
        maps = torch.cat([landmark_maps(s_lmk), landmark_maps(t_lmk)], dim=1)
        w = self.mix(s_code, t_code, maps)
        src_feats = self.generator.features(w, noise="buffers")
        tgt_feats = self.encoder_target(target_in)
        return self.decoder(src_feats, tgt_feats, mask)

    @torch.no_grad()
    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        if not self.weights_loaded:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the networks are uninitialised")
        if len(target) > 1:  # batch 1, as officially: bit-identical swaps at any batch size
            return torch.cat([self.swap(source.row(i), target.row(i)) for i in range(len(target))])
        src, tgt = source.image.float(), target.image.float()
        if self.options.inputs == "released":
            codes = torch.cat([self.released_latents(source), self.released_latents(target)]).to(tgt.device)
            lmks = torch.cat([self.released_landmarks(source), self.released_landmarks(target)])
            mask = self.released_mask(target)
        else:
            both = torch.cat([src, tgt])
            codes, lmks, mask = self.latents(both), self.landmarks(both), self.target_mask(tgt)
        g = self.options.generator_size
        t_in = tgt if tgt.shape[-1] == g else F.interpolate(tgt, size=(g, g), mode="bilinear", align_corners=False,
                                                               antialias=True)
        out = self.generate(codes[:1], codes[1:], lmks[:1], lmks[1:], (t_in - 0.5) / 0.5, mask)
        out = to_uint8_steps(out)
        s = tgt.shape[-1]
        if out.shape[-1] != s:  # only with a reduced generator_size
            out = F.interpolate(out, size=(s, s), mode="bilinear", align_corners=False)
        return out
