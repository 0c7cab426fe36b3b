"""DiffSwap (CVPR 2023, wl-zhao/DiffSwap) as a swapbench method, rebuilt on diffusers.

Faithful to the released inference (tests/faceswap_portrait.py + pipeline.py at commit c316952f) on
256 FFHQ-aligned crops ("ffhq_256", the official crop_ffhq at output_size 256):

  latent     z = VQ-f4 encoder + quant_conv of the target in [-1,1], unquantised, scale 1 (3x64x64).
  tokens     context [B,5,256] = [landmarks, identity, eyes, nose, mouth]:
             - landmarks: the TARGET's 68 points / 256 through landmark_encoder. The paper's 3D-aware
               landmark swap (3DMM) is not in the release; the released code, and this port, use the
               target's own landmarks;
             - identity: the source through F.affine_grid/grid_sample to the ArcFace 112 template
               (theta from a similarity of 5 points, as face_align_portrait.py), iresnet100's
               un-normalised embedding, then id_fc;
             - organs: convex hulls of the SOURCE's eye/nose/mouth landmarks (eyes merged), resized to
               64 (nearest), masked averages of an organ latent, organ_fc, then + self-attention.
               The official code takes the organ latent from torch.roll(target latents, 1) over the batch,
               so a swap depends on the other pairs of its batch (with batch 1 it is the pair's own target
               latent). Default here: each pair's own target latent; `organ_latent_roll=True` reproduces
               the roll (results then depend on batch composition).
  sampler    target-guided DDIM, `steps` (200) with guidance `tgt_scale` (0.01), eta 0, no CFG, the EMA
             UNet; known region = outside the target's 68-point hull (re-noised at every step).
  decode     VQ decode (quantises first), clamp((x+1)/2).
  blend      Laplacian-pyramid blend of the generated crop into the target under the target's hull
             (repair_by_mask), bit-exact in its uint8 arithmetic (`blend=False` returns the raw crop).

Deliberate differences: the five points of the ArcFace grid come from the engine's 68 landmarks (eye
centres, nose tip, mouth corners) instead of a separate MTCNN run, and the similarity is a least-squares
(Umeyama) fit of template -> image, which equals cp2tform's non-reflective similarity; landmarks come from the engine's
detector (dlib HOG + 68-point model by default, as officially, but on the original frame rather than
re-detected on the 256 crop); the final paste into the frame is done by the engine. On CUDA the ArcFace
body runs in fp32 (officially under fp16 autocast).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import ConvexHull

from swapbench.faces.templates import ARCFACE_112, five_points, similarity
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.diffswap import blend as blending
from swapbench.methods.diffswap.convert import ConversionError, convert
from swapbench.methods.diffswap.nets import FaceConditioner, Size, build_unet, build_vq, unet_config, vq_config
from swapbench.methods.diffswap.sampler import guided_ddim
from swapbench.weights import Checkpoint, WeightFile, WeightsError, state_dict_problems

CONVERTER_VERSION = "diffswap-diffusers-1"  # cache tag of converted checkpoints; bump when convert() changes

CHECKPOINT = WeightFile(
    name="diffswap/diffswap",
    filename="diffswap.pth",
    url="https://cloud.tsinghua.edu.cn/d/962ccd4b243442a3a144/?p=%2Fcheckpoints%2FDiffSwap&mode=list",
    licence="no licence file in wl-zhao/DiffSwap (all rights reserved); research use. Contains an insightface "
            "glint360k iresnet100, whose upstream terms (non-commercial research) also apply",
    format="checkpoint",
    note="LatentDiffusion checkpoint: UNet with its EMA copy, VQ-f4 first stage, FaceEmbedder (incl. the "
         "glint360k iresnet100). Download it from the Tsinghua cloud folder checkpoints/DiffSwap; converted to "
         "diffusers (EMA UNet) on load",
    manual=True,
)

IDX = np.arange(68)
# Portrait's organ order (l_eye, r_eye, nose, mouth); merge_eyes turns it into [eyes, nose, mouth].
ORGANS = (IDX[36:42], IDX[42:48], IDX[27:36], IDX[48:68])
BASE = 256  # landmarks are divided by the 256 base resolution; hulls are drawn at 256


def hull_mask(points01: np.ndarray, size: int = BASE) -> np.ndarray:
    """Portrait.extract_convex_hull: filled convex hull of float32 points in [0,1] at size x size (bool)."""
    pts = np.asarray(points01, np.float32) * np.float32(size)
    hull = ConvexHull(pts)
    poly = pts[hull.vertices].astype(np.int32)
    return cv2.fillPoly(np.zeros((size, size)), pts=[poly], color=(255, 255, 255)) > 0


def organ_masks(landmarks01: np.ndarray) -> np.ndarray:
    """[3, 256, 256] float32: [left|right eye, nose, mouth] hulls of one face's 68 landmarks in [0,1]."""
    m = [hull_mask(landmarks01[i]) for i in ORGANS]
    return np.stack([m[0] | m[1], m[2], m[3]]).astype(np.float32)


def arcface_theta(landmarks_px: np.ndarray, size: int = BASE) -> np.ndarray:
    """2x3 affine_grid theta taking the 112 ArcFace crop out of a size x size crop (face_align_portrait.py).

    The official tfm (crop pixels -> 112 template) comes from matlab_cp2tform's similarity, which fits
    the template -> image direction by least squares (residuals in image pixels) and inverts it; theta =
    A inv(tfm) B with pixel<->[-1,1] normalisations 2/(W-1), as the official code builds them (grid_sample
    then runs with align_corners=False). So theta = A S B, S the least-squares similarity template -> image.
    (cp2tform also tries a reflected fit and keeps it if its residual is smaller: never for a real face.)
    """
    inv_tfm = np.vstack([similarity(ARCFACE_112, five_points(landmarks_px)), [0, 0, 1]])
    a = np.array([[2 / (size - 1), 0, -1], [0, 2 / (size - 1), -1], [0, 0, 1]])
    b = np.linalg.inv(np.array([[2 / 111, 0, -1], [0, 2 / 111, -1], [0, 0, 1]]))
    return (a @ inv_tfm @ b)[:2]


def masked_average(z: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """FaceEmbedder.extract_organ_feats: masks [B,3,256,256] -> nearest to z's size -> [B,3,C] averages."""
    m = F.interpolate(masks.float(), z.shape[-2:], mode="nearest")
    return torch.einsum("bchw,bkhw->bkc", z, m) / (m.sum(dim=(-1, -2))[..., None] + 1e-6)


class DiffSwap(SwapMethod):
    """DiffSwap: target-guided masked diffusion in a VQ-f4 latent, conditioned on 5 face tokens."""

    name = "diffswap"
    description = ("DiffSwap (CVPR 2023): masked LDM on VQ-f4 latents, target-guided DDIM 200, identity/landmark/"
                   "organ tokens; target's own landmarks (the paper's 3D-aware landmark swap is not released)")
    paper = "DiffSwap: High-Fidelity and Controllable Face Swapping via 3D-Aware Masked Diffusion, CVPR 2023"
    code = "https://github.com/wl-zhao/DiffSwap"
    crop = "ffhq"
    size = 256
    weights = (CHECKPOINT,)

    @dataclass(frozen=True)
    class Options:
        steps: int = 200  # DDIM steps (perform_swap's ddim_steps)
        tgt_scale: float = 0.01  # target-guidance scale (faceswap_portrait.py --tgt_scale)
        organ_latent_roll: bool = False  # reproduce the official batch roll of the organ latent (batch-dependent)
        blend: bool = True  # Laplacian-pyramid blend into the target (pipeline.repair_by_mask)
        tiny: bool = False  # TEST ONLY: the reduced model of the parity tests (spec §2.7), not the release

    def __init__(self, options: "DiffSwap.Options | None" = None):
        super().__init__(options)
        if not 1 <= self.options.steps <= 1000:
            raise ValueError(f"diffswap.steps must be in 1..1000, got {self.options.steps}")
        self.model_size = Size.tiny() if self.options.tiny else Size.full()
        with torch.device("meta"):  # load_weights overwrites every value
            unet, vq, cond = build_unet(self.model_size), build_vq(self.model_size), FaceConditioner(self.model_size)
        self.unet = unet.to_empty(device="cpu")
        self.vq = vq.to_empty(device="cpu")
        self.cond = cond.to_empty(device="cpu")
        self.weights_loaded = False
        self.eval()

    # ---- weights -------------------------------------------------------------------------------------

    def expected_state(self) -> dict[str, torch.Tensor]:
        out = {f"unet.{k}": v for k, v in self.unet.state_dict().items()}
        out.update({f"vq.{k}": v for k, v in self.vq.state_dict().items()})
        out.update({f"cond.{k}": v for k, v in self.cond.state_dict().items()})
        return out

    def convert(self, state: Mapping) -> dict[str, torch.Tensor]:
        """The official checkpoint in the port's layout (EMA UNet), checked strictly; WeightsError if not."""
        wf = CHECKPOINT
        if not isinstance(state, Mapping):
            raise WeightsError(f"{wf.filename} ({wf.name}) is not a state dict: it holds a {type(state).__name__}")
        try:
            conv = convert(state, unet_config(self.model_size), vq_config(self.model_size))
        except ConversionError as exc:
            raise WeightsError(f"{wf.filename} ({wf.name}) is not DiffSwap's checkpoint: {exc}. "
                               f"Download the official file from {wf.url}") from None
        problems = state_dict_problems(self.expected_state(), conv)
        if problems:
            size = "tiny test" if self.options.tiny else "released"
            raise WeightsError(f"{wf.filename} ({wf.name}) does not fit the {size} DiffSwap model: "
                               f"{'; '.join(problems)}. Download the official file from {wf.url}")
        return conv

    def load_weights(self, state: dict[str, object]) -> None:
        """state[CHECKPOINT.name]: the weights layer's Checkpoint (its conversion is cached as safetensors
        keyed by the file's sha256, so it runs once per file), or an already opened state dict."""
        if CHECKPOINT.name not in state:
            raise WeightsError(f"{self.name}: no state dict was given for {CHECKPOINT.filename} ({CHECKPOINT.name})")
        ckpt = state[CHECKPOINT.name]
        if isinstance(ckpt, Checkpoint):
            conv = ckpt.converted(CONVERTER_VERSION + ("-tiny" if self.options.tiny else ""), self.convert)
        else:
            conv = self.convert(ckpt)
        for prefix, module in (("unet.", self.unet), ("vq.", self.vq), ("cond.", self.cond)):
            module.load_state_dict({k[len(prefix):]: v for k, v in conv.items() if k.startswith(prefix)}, strict=True)
        self.weights_loaded = True

    def _require_weights(self) -> None:
        if not self.weights_loaded:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the network is uninitialised")

    # ---- pieces ---------------------------------------------------------------------------------------

    @property
    def _param_device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @torch.no_grad()
    def encode(self, image01: torch.Tensor) -> torch.Tensor:
        """Target latents [B,3,64,64]: VQ encoder + quant_conv, not quantised."""
        return self.vq.encode(image01.float() * 2 - 1).latents

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.clamp((self.vq.decode(z).sample + 1.0) / 2.0, 0.0, 1.0)

    @torch.no_grad()
    def context(self, source: FaceBatch, target: FaceBatch, z_target: torch.Tensor) -> torch.Tensor:
        """The five tokens [B,5,D]. z_target: the target latents of the batch (organ latents, see Options)."""
        dev = z_target.device
        lm_t = (target.landmarks.detach().cpu().float() / BASE).to(dev)
        lm_s = source.landmarks.detach().cpu().float()
        masks = torch.from_numpy(np.stack([organ_masks((lm / BASE).numpy()) for lm in lm_s])).to(dev)
        z_org = torch.roll(z_target, 1, 0) if self.options.organ_latent_roll else z_target
        organ = masked_average(z_org, masks)
        theta = torch.from_numpy(np.stack([arcface_theta(lm.double().numpy()) for lm in lm_s])).float().to(dev)
        x = source.image.float().to(dev) * 2 - 1
        grid = F.affine_grid(theta, (x.shape[0], 3, 112, 112), align_corners=False)
        crop = F.grid_sample(x, grid, align_corners=False)
        return self.cond(lm_t, crop, organ)

    def generators(self, source: FaceBatch, target: FaceBatch) -> list[torch.Generator]:
        """One torch.Generator per pair, seeded by (run seed, pair id) (SwapMethod.pair_generator).

        Without pair ids (a direct call) each pair is keyed by a digest of its two crops instead."""
        ids = list(target.pair_id or source.pair_id or [])
        if not ids:
            ids = [hashlib.sha256(source.image[i].detach().cpu().numpy().tobytes()
                                  + target.image[i].detach().cpu().numpy().tobytes()).hexdigest()
                   for i in range(len(target))]
        return [self.pair_generator(pid, self._param_device) for pid in ids]

    @torch.no_grad()
    def generate(self, source: FaceBatch, target: FaceBatch, generators: Sequence[torch.Generator]):
        """(generated crops [B,3,256,256] in [0,1] before blending, target hull masks [B,256,256] bool)."""
        self._require_weights()
        if target.image.shape[-1] != self.size:
            raise ValueError(f"{self.name} expects {self.size}x{self.size} ffhq crops, got {tuple(target.image.shape)}")
        dev = self._param_device
        z = self.encode(target.image.to(dev))
        ctx = self.context(source, target, z)
        hulls = np.stack([hull_mask((lm.float() / BASE).numpy()) for lm in target.landmarks.detach().cpu()])
        keep = 1.0 - torch.from_numpy(hulls).float()[:, None].to(dev)
        keep = (F.interpolate(keep, size=z.shape[-2:], mode="nearest") > 0).float()
        samples = guided_ddim(lambda x, t: self.unet(x, t, encoder_hidden_states=ctx).sample, z, keep, generators,
                              self.options.steps, self.options.tgt_scale)
        return self.decode(samples), hulls

    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        gen, hulls = self.generate(source, target, self.generators(source, target))
        if not self.options.blend:
            return gen
        return blending.blend(gen, target.image.to(gen.device), hulls).to(target.image.device)

