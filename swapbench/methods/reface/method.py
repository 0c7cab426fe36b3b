"""REFace (Baliah et al., "Realistic and Efficient Face Swapping: A Unified Approach with Diffusion
Models", WACV 2025; github.com/Sanoojan/REFace, MIT code) as a swapbench method, on diffusers.

Faithful to the official inference (scripts/inference_swap_selected.py, ldm/models/diffusion/ddpm.py
`conditioning_with_feat`, ldm/models/diffusion/ddim.py, ldm/data/video_swap_dataset.py, commit f73bd8d)
on FFHQ-aligned crops ("ffhq" convention): the target at 512, the source at 1024 (`source_size`), per pair:

  masks    BiSeNet labels (swapbench.faces.parsing) of the source and of the target, kept classes
           parsing.REFACE_SWAP_REGION (seg12 [1,2,3,5,6,7,9]: lips, brows, eyes, nose, skin, ears, mouth).
  source   the 1024 uint8 crop resized straight to 224 (cv2 INTER_LINEAR), as the official script resizes
           its aligned 1024 source; [0,1], CLIP-normalised, times the source mask (parsed at 512, resized
           to 224: bilinear, no antialias, as torchvision 0.14 on tensors), cast to fp16 and back.
  target   crop in [-1,1]; inpaint image = target * (1 - face mask) (the face becomes mid-grey);
           CLIP input: (x+1)/2, CLIP-normalised, resized to 224 (bilinear, no antialias), not masked.
  landmarks dlib frontal detector (upsample 1) + 68-point predictor on the uint8 target crop, the first
           face, (x, y) in crop pixels flattened to 136 values; zeros when no face is found (noted per pair).
  token    Conditioner (model.py): (1.0 CLIP + 10.0 ID + 0.05 landmarks) / 11.05, one 768-d token;
           unconditional token `learnable_vector`.
  latents  z_inpaint = 0.18215 * a *sampled* VAE posterior draw; mask at latent size (bilinear, no
           antialias); UNet input cat([x_t, z_inpaint, mask]) (Paint-by-Example order).
  sampler  DDIM (diffusers DDIMScheduler with LDM's schedule, swapbench.methods.diffusion), 50 steps,
           eta 0, classifier-free guidance 3.5 on a batched [uncond, cond] UNet call; no known-region
           blending, no paste: the decoded 512 image is the swap, clamp((x + 1) / 2), to 8 bits by truncation
           as the script saves it (`(255. * x).astype(np.uint8)`, `official_8bit`).

Randomness: the posterior draw and the start latents (and the DDIM variance noise when eta > 0) come
from the pair's own generator (`pair_generator`), in the official order (posterior, then start noise),
so a swap does not depend on the batch. Officially both come from the global RNG after seed_everything(42).

Deliberate differences: the official script aligns 1024 crops and resizes the target to 512 (PIL bicubic)
and parses 1024 -> 512 bicubic downsamples; swapbench hands the method its 512 "ffhq" target crop and a
1024 source crop, and parses the target crop and a bilinear (antialiased) 512 downsample of the source.
Until the source came at 1024, its 224 CLIP input was made from the 512 crop. That moved the input by
(mean / 99th percentile of the absolute difference, levels of 255) 0.27 / 1.7 on the nine bundled faces,
which span a few hundred pixels in their photos so that both crops are upsampled, and by 0.5-2.6 / 4-17 on
1024 images with full detail as FFHQ and CelebA-HQ sources have (skimage's retina, hubble, gravel and
astronaut test images standing in): cv2's linear resize reads only 2 x 2 source pixels per output pixel,
so what it aliases depends on the size it starts from. On CUDA the UNet, VAE and CLIP run under the configured autocast (fp16 by default, as
`--precision autocast` officially); IR-SE50 and the token arithmetic stay fp32.

`Options.tiny` selects model.TINY, a test-only reduced architecture for CPU end-to-end tests with
random-weight checkpoints; it is part of the run id like every option.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from swapbench.faces import parsing
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.diffusion import ldm_ddim_scheduler, randn_per_pair
from swapbench.methods.diffusion.convert import unwrap_lightning
from swapbench.methods.diffusion.schedule import ddim_cfg_step
from swapbench.methods.reface import model as M
from swapbench.methods.reface.convert import CONVERTER_VERSION, convert_checkpoint, ignored_groups
from swapbench.weights import Checkpoint, WeightFile, WeightsError, state_dict_problems

log = logging.getLogger(__name__)

CHECKPOINT = WeightFile(
    name="reface/last",
    filename="last.ckpt",
    url="hf://Sanoojan/REFace/last.ckpt",
    licence=("code MIT (Sanoojan/REFace); model derived from Paint-by-Example / Stable Diffusion v1-4 "
             "(CreativeML Open RAIL-M use restrictions apply) and trained on CelebAMask-HQ: non-commercial use only"),
    format="checkpoint",
    note=("REFace's Lightning checkpoint (UNet, VAE, CLIP ViT-L/14, mapper, projections, IR-SE50); converted "
          "to diffusers on first use and cached as safetensors keyed by its sha256"),
)
PARSER = parsing.WEIGHTS


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if device.type == "cuda" and dtype is not None:
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def official_8bit(images01: torch.Tensor) -> torch.Tensor:
    """The script's PNG: `(255. * x).astype(np.uint8)` of the float32 [0, 1] image, truncation (not rounding:
    43% of values would differ by one level), back in [0, 1] as exact k / 255 values."""
    return torch.floor(images01.float() * 255.0) / 255.0


def dlib_landmarks(images: torch.Tensor) -> tuple[torch.Tensor, list[bool]]:
    """REFace's `get_landmarks` before the projection: [B, 136] (x0, y0, x1, ...) in crop pixels, found flags."""
    from swapbench.faces.detect import _models

    detector, predictor = _models()
    # as officially: the [-1, 1] tensor back to 8 bits by truncation (a value like 37.99998 becomes 37)
    x = (images.detach().float().cpu() - 0.5) / 0.5
    arr = np.ascontiguousarray((255.0 * ((x + 1.0) / 2.0)).permute(0, 2, 3, 1).numpy().astype(np.uint8))
    rows, found = [], []
    for img in arr:
        faces = detector(img, 1)
        if len(faces) == 0:
            rows.append(np.zeros(136, np.float32))
            found.append(False)
            continue
        shape = predictor(img, faces[0])
        rows.append(np.array([[p.x, p.y] for p in shape.parts()], np.float32).reshape(136))
        found.append(True)
    return torch.from_numpy(np.stack(rows)), found


def resize_nearest_free(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision 0.14 tensor Resize: bilinear, align_corners=False, no antialias."""
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def source_clip_input(source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CLIP-normalised masked source [B, 3, 224, 224] from crops [B, 3, S, S] in [0, 1] and 0/1 masks [B, S, S]."""
    import cv2

    from swapbench.faces.warp import to_uint8

    small = np.stack([cv2.resize(a, (224, 224), interpolation=cv2.INTER_LINEAR) for a in to_uint8(source)])
    x = torch.from_numpy(small).permute(0, 3, 1, 2).float().div(255).to(source.device)
    m = resize_nearest_free(mask[:, None].float(), 224)
    x = M.clip_normalize(x) * m
    return x.half().float()  # officially passed as float16, then cast back


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """images at size x size (bilinear, antialiased when shrinking); unchanged when already that size."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def target_clip_input(target: torch.Tensor) -> torch.Tensor:
    """CLIP input of the target [-1, 1] crop: (x+1)/2, CLIP-normalised, resized to 224 (no antialias)."""
    return resize_nearest_free(M.clip_normalize((target + 1.0) / 2.0), 224)


class REFaceModel(torch.nn.Module):
    """UNet + VAE + Conditioner and REFace's sampling loop, on given inputs (no parsing, no dlib)."""

    def __init__(self, arch: M.Arch = M.FULL):
        super().__init__()
        self.arch = arch
        with torch.device("meta"):  # every value comes from the checkpoint
            unet, vae, cond = M.build_unet(arch), M.build_vae(arch), M.Conditioner(arch)
        self.unet, self.vae, self.cond = unet.to_empty(device="cpu"), vae.to_empty(device="cpu"), cond.to_empty(device="cpu")
        M.reset_nonpersistent_buffers(self.cond)  # CLIP's position_ids are not in any checkpoint
        self.eval()

    @torch.no_grad()
    def encode_inpaint(self, inpaint: torch.Tensor, posterior_noise: torch.Tensor) -> torch.Tensor:
        """0.18215 * (mean + std * noise) of the VAE posterior of inpaint images [B, 3, R, R] in [-1, 1]."""
        moments = self.vae.quant_conv(self.vae.encoder(inpaint))
        mean, logvar = moments.chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.float().clamp(-30.0, 20.0))
        return M.SCALE_FACTOR * (mean.float() + std * posterior_noise)

    @torch.no_grad()
    def unet_cfg(self, x9: torch.Tensor, t: int, cond: torch.Tensor, uncond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps_uncond, eps_cond) from one batched UNet call on [uncond, cond], as the official sampler."""
        b = x9.shape[0]
        tt = torch.full((2 * b,), t, device=x9.device, dtype=torch.long)
        eps = self.unet(torch.cat([x9, x9]), tt, encoder_hidden_states=torch.cat([uncond, cond])).sample
        return eps[:b].float(), eps[b:].float()

    @torch.no_grad()
    def sample(self, token: torch.Tensor, z_inpaint: torch.Tensor, mask_lat: torch.Tensor, x_T: torch.Tensor,
               steps: int = 50, guidance_scale: float = 3.5, eta: float = 0.0, generators=None,
               record: list | None = None, dtype: torch.dtype | None = None, stop_after: int | None = None) -> torch.Tensor:
        """DDIM from x_T; returns the final latents. `record` collects (t, x_prev, pred_x0) per step;
        `stop_after` ends after that many steps of the `steps` schedule (tests)."""
        sched = ldm_ddim_scheduler(M.LINEAR_START, M.LINEAR_END)
        sched.set_timesteps(steps)
        uncond = self.cond.unconditional(token.shape[0]).to(token)
        x = x_T
        for t in sched.timesteps.tolist()[:stop_after]:
            x9 = torch.cat([x, z_inpaint, mask_lat], dim=1)
            with _autocast(x.device, dtype):
                eu, ec = self.unet_cfg(x9, t, token, uncond)
            x, x0 = ddim_cfg_step(sched, eu, ec, guidance_scale, t, x, eta=eta, generators=generators)
            if record is not None:
                record.append((t, x, x0))
        return x

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[B, 3, R, R] in [0, 1]."""
        return ((self.vae.decode(z / M.SCALE_FACTOR).sample.float() + 1.0) / 2.0).clamp(0, 1)


class REFace(SwapMethod):
    """REFace: inpainting latent diffusion conditioned on CLIP, IR-SE50 identity and landmarks."""

    name = "reface"
    description = "REFace (WACV 2025): face inpainting with a latent diffusion UNet, CLIP + IR-SE50 + landmark token, DDIM 50, CFG 3.5"
    paper = "Realistic and Efficient Face Swapping: A Unified Approach with Diffusion Models, WACV 2025"
    code = "https://github.com/Sanoojan/REFace"
    crop = "ffhq"
    size = 512
    source_size = 1024  # officially the aligned 1024 source goes straight to CLIP's 224
    weights = (CHECKPOINT, PARSER)

    @dataclass(frozen=True)
    class Options:
        steps: int = 50  # DDIM steps (inference_selected.sh: --ddim_steps 50)
        guidance_scale: float = 3.5  # --scale 3.5 in the official scripts
        eta: float = 0.0  # --ddim_eta 0
        precision: str = "fp16"  # autocast dtype on CUDA: fp16 (official --precision autocast), bf16, fp32
        tiny: bool = False  # TEST ONLY: model.TINY, a reduced architecture for CPU tests with random weights

    def __init__(self, options: Options | Mapping | None = None):
        if options is None:
            options = self.Options()
        elif isinstance(options, Mapping):
            options = self.Options(**options)
        if options.steps < 1 or options.eta < 0 or options.precision not in ("fp16", "bf16", "fp32"):
            raise ValueError(f"invalid REFace options: {options}")
        super().__init__(options)
        self.save_hyperparameters(asdict(options))
        self.arch = M.TINY if options.tiny else M.FULL
        self.net = REFaceModel(self.arch)
        self.parser = parsing.FaceParser(parsing.BiSeNet()).eval()
        self.weights_loaded = False
        self.checkpoint_ignored: dict[str, int] = {}  # ignored key groups of the loaded checkpoint
        if options.tiny:
            self.publishable = False

    # --- weights -------------------------------------------------------------------------------------------

    def load_weights(self, state: dict[str, object]) -> None:
        for wf in self.weights:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: nothing was given for {wf.filename} ({wf.name})")
        ckpt = state[CHECKPOINT.name]  # the weights layer's Checkpoint, or an opened dict (tests)
        if isinstance(ckpt, Checkpoint):
            converted = self._converted(ckpt)
        else:
            converted = self._convert(unwrap_lightning(ckpt))
        self._load_converted(converted)
        bisenet = state[PARSER.name]
        try:
            self.parser.net.load_state_dict(bisenet, strict=True)
        except (RuntimeError, TypeError) as exc:
            raise WeightsError(f"{PARSER.filename} ({PARSER.name}) does not fit BiSeNet: {exc}. Download it from {PARSER.url}") from exc
        self.weights_loaded = True

    def _convert(self, sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out, ignored, unknown = convert_checkpoint(sd, self.arch)
        self.checkpoint_ignored = ignored_groups(ignored)  # listed, e.g. LPIPS (training only), CLIP text tower
        log.info("reface: ignored checkpoint groups %s", self.checkpoint_ignored)
        if unknown:
            raise WeightsError(
                f"{CHECKPOINT.filename} ({CHECKPOINT.name}) has {len(unknown)} keys REFace does not have "
                f"(e.g. {', '.join(unknown[:3])}): not REFace's last.ckpt? Download it from {CHECKPOINT.url}")
        return out

    def _converted(self, checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
        """The Lightning file converted to the port's keys, once per file content (cached as safetensors)."""
        tag = CONVERTER_VERSION + ("-tiny" if self.options.tiny else "")
        return checkpoint.converted(tag, lambda sd: self._convert(unwrap_lightning(sd)))

    def _load_converted(self, sd: Mapping[str, torch.Tensor]) -> None:
        problems = state_dict_problems(self.net.state_dict(), sd)
        if problems:
            raise WeightsError(f"{CHECKPOINT.filename} ({CHECKPOINT.name}) does not fit REFace"
                               f"{' (tiny test architecture)' if self.options.tiny else ''}: {'; '.join(problems)}."
                               f" Download the official file from {CHECKPOINT.url}")
        self.net.load_state_dict(sd, strict=True)

    # --- swap ----------------------------------------------------------------------------------------------

    def _autocast_dtype(self) -> torch.dtype | None:
        return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[self.options.precision]

    @torch.no_grad()
    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        if not self.weights_loaded:
            raise RuntimeError("reface: load_weights() was not called; the network is uninitialised")
        ids = source.pair_id or target.pair_id
        if ids is None or len(ids) != len(target):
            raise ValueError("reface draws noise per pair: FaceBatch.pair_id must name every row")
        dev = target.image.device
        res = self.arch.resolution
        # The source stays at its own size (1024) for the CLIP/ID input; it is parsed at the model's size.
        src_img, tgt_img = source.image.float(), target.image.float()
        src_parse = _resized(src_img, res)
        tgt_img = _resized(tgt_img, res)  # a no-op but for the test-only tiny architecture (128 px)
        src_mask = parsing.keep_mask(self.parser.labels(src_parse), parsing.REFACE_SWAP_REGION).float()
        tgt_face = parsing.keep_mask(self.parser.labels(tgt_img), parsing.REFACE_SWAP_REGION).float()

        landmarks, found = dlib_landmarks(tgt_img)
        for pid, ok in zip(ids, found):
            if not ok:
                self.note(pid, "dlib found no face in the target crop: landmark token from zeros (as officially)")
        gens = [self.pair_generator(pid, dev) for pid in ids]
        return self.generate(src_img, src_mask, tgt_img, tgt_face, landmarks.to(dev), gens, out_size=target.image.shape[-1])

    @torch.no_grad()
    def generate(self, src_img, src_mask, tgt_img, tgt_face, landmarks, gens, out_size: int | None = None,
                 posterior_noise=None, x_T=None, record=None) -> torch.Tensor:
        """The sampler on prepared inputs: the source [B, 3, S, S] (any S, resized to 224 for CLIP) and the
        target [B, 3, R, R] in [0, 1], 0/1 masks [B, R, R], landmarks [B, 136]."""
        opt, res, dtype = self.options, self.arch.resolution, self._autocast_dtype()
        dev = tgt_img.device
        target = tgt_img * 2.0 - 1.0
        keep = 1.0 - tgt_face[:, None]
        with _autocast(dev, dtype):
            token = self.net.cond(source_clip_input(src_img, src_mask), target_clip_input(target), landmarks)
        lat = res // 8
        if posterior_noise is None:
            posterior_noise = randn_per_pair(gens, (4, lat, lat), device=dev)
        with _autocast(dev, dtype):
            z_inpaint = self.net.encode_inpaint(target * keep, posterior_noise)
        if x_T is None:
            x_T = randn_per_pair(gens, (4, lat, lat), device=dev)
        mask_lat = resize_nearest_free(keep, lat)
        z = self.net.sample(token.float(), z_inpaint, mask_lat, x_T, opt.steps, opt.guidance_scale, opt.eta, gens,
                            record=record, dtype=dtype)
        with _autocast(dev, dtype):
            out = official_8bit(self.net.decode(z))
        if out_size is not None and out_size != res:
            out = F.interpolate(out, size=(out_size, out_size), mode="bilinear", antialias=True, align_corners=False)
        return out.clamp(0, 1)
