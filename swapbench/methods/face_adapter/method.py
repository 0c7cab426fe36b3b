"""Face-Adapter (Han et al., "Face-Adapter for Pre-Trained Diffusion Models with Fine-Grained ID and
Attribute Control", ECCV 2024; github.com/FaceAdapter/Face-Adapter) face swapping as a swapbench method.

Stock parts stay stock: the Stable Diffusion 1.5 UNet (or the release's `pretrained_unet/` when present),
the sd-vae-ft-mse VAE, the released ControlNet, the CLIP ViT-H/14 vision tower and the Euler scheduler
are loaded by diffusers / transformers from their folders as they are. Ported here: the two token
decoders (tokens.py), the spatial condition (landmark image, masks, blending; condition.py) and the
3DMM landmarks (swapbench.faces.deep3d: Deep3DFaceRecon R-Net with the pupil head, BFM projection).

Per pair, as the face swapping branch of the official `infer.py` (6e31388), on swapbench's 512 "ffhq"
crops (the official 512 crop is a detector box x 1.62, re-detected with insightface; swapbench hands
every method its own crop convention, and the 256 crop is fitted from the crop's 68 landmarks):

  identity   ArcFace iresnet100 layer-4 tokens of the source 256 crop at 128 px -> ID2Token -> UNet tokens.
  attributes CLIP last_hidden_state of the *target* 512 crop -> Image2Token -> ControlNet tokens.
  3DMM       D3DFR coefficients of the source and target 256 crops; target coefficients with the source's
             identity (0:80) -> 68 BFM landmarks + 2 gaze points -> landmark image (condition.py).
  control    landmarks inside the target's face mask (BiSeNet), the target elsewhere, in [-1, 1].
  sampler    Euler (the SD1.5 scheduler config, diffusers' EulerDiscreteScheduler), 25 steps, CFG 5.0 with
             the empty-prompt embedding as the negative for both UNet and ControlNet (batch order
             [negative, positive]); start latents from the pair's generator x init_noise_sigma.
  output     VAE decode, rounded to 8 bits (the official pipeline returns a PIL image), blended into the
             target with the feathered face mask, returned at 512 in [0, 1].

Dropout: the official token decoders stay in training mode (dropout 0.1, global RNG), so official swaps
are stochastic. swapbench runs them in eval mode by default; `official_dropout=true` draws the dropout
masks from each pair's generator instead (reproducible, batch independent, but as noisy as the original).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from swapbench.faces import parsing
from swapbench.faces.deep3d import (
    BFM_MODEL_FRONT,
    FACE_ADAPTER_HEADS,
    BFMLandmarks,
    Deep3DReconNet,
    face_adapter_state_dict,
)
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.diffusion import randn_per_pair
from swapbench.methods.face_adapter import condition as C
from swapbench.methods.face_adapter.tokens import ID2Token, Image2Token
from swapbench.faces.iresnet import iresnet18, iresnet100
from swapbench.weights import Member, WeightFile, WeightsError, state_dict_problems

log = logging.getLogger(__name__)

HF = "hf://FaceAdapter/FaceAdapter"
NONCOMMERCIAL = "no licence published with the Face-Adapter code or model card (FaceAdapter/FaceAdapter); research use"
# Folder members (swapbench.weights.Member): what diffusers / transformers read, safetensors before .bin.
_DIFFUSERS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def _model(folder: str, files=_DIFFUSERS, sha256=(), optional=False) -> tuple[Member, Member]:
    return (Member((f"{folder}/config.json",), optional=optional),
            Member(tuple(f"{folder}/{f}" for f in files), sha256, optional))


FACE_ADAPTER = WeightFile(
    name="face_adapter/FaceAdapter", filename="FaceAdapter", format="folder", url=HF, licence=NONCOMMERCIAL,
    manual=True,
    members=(*_model("controlnet"), *_model("vision_encoder", ("model.safetensors", "pytorch_model.bin")),
             *_model("pretrained_unet", optional=True)),
    note="snapshot of the Hugging Face repository FaceAdapter/FaceAdapter (`huggingface-cli download "
         "FaceAdapter/FaceAdapter --local-dir FaceAdapter`): controlnet/ (diffusers ControlNetModel), vision_encoder/ "
         "(transformers CLIPVisionModel) and, where the release has it, pretrained_unet/, which then replaces the "
         "SD1.5 UNet as officially; the Hub publishes no checksums for them")
ID2TOKEN = WeightFile(
    name="face_adapter/net_id2token", filename="FaceAdapter/net_id2token.pth", format="state_dict",
    url=f"{HF}/net_id2token.pth", licence=NONCOMMERCIAL, note="identity token decoder")
IMAGE2TOKEN = WeightFile(
    name="face_adapter/net_image2token", filename="FaceAdapter/net_image2token.pth", format="state_dict",
    url=f"{HF}/net_image2token.pth", licence=NONCOMMERCIAL, note="attribute (CLIP) token decoder")
D3DFR = WeightFile(
    name="face_adapter/d3dfr_res50_nofc", filename="FaceAdapter/third_party/d3dfr_res50_nofc.pth", format="state_dict",
    url=f"{HF}/third_party/d3dfr_res50_nofc.pth", licence=NONCOMMERCIAL,
    note="Deep3DFaceRecon-style ResNet-50 with a pupil head (261 coefficients)")
ARCFACE = WeightFile(
    name="face_adapter/insightface_glint360k", filename="FaceAdapter/third_party/insightface_glint360k.pth",
    format="state_dict", url=f"{HF}/third_party/insightface_glint360k.pth",
    licence="insightface glint360k iresnet100: non-commercial research only", note="ArcFace iresnet100")
# The file at the official repository's commit 6e31388; GitHub publishes no checksum, and a hash set here
# would refuse every test file, so the run records the file's sha256 (82471ac5...7edec0 for the official one).
EMPTY_PROMPT = WeightFile(
    name="face_adapter/empty_prompt_embedding", filename="empty_prompt_embedding.pth", format="checkpoint",
    url="https://github.com/FaceAdapter/Face-Adapter/raw/6e313885188e05740a7c40e12c1b9015c748bf08/empty_prompt_embedding.pth",
    licence="SD1.5 CLIP text encoder output (CreativeML Open RAIL-M)", size=119_591,
    note="fp16 [1, 77, 768] text-encoder output for the empty prompt, from the official GitHub repository "
         "(sha256 82471ac59f40cc793a46b916a4e23ee0c1c69209a95cf281deafac693d7edec0)")
# Git LFS object ids (= sha256) of the Hub files: the SD1.5 UNet as the Hub serves it now (19da...) and an
# earlier upload of the same weights (d27c..., 4 bytes shorter), and the ft-MSE VAE at revision 31f26fde.
SD15_UNET_SHA256 = ("19da7aaa4b880e59d56843f1fcb4dd9b599c28a1d9d9af7c1143057c8ffae9f1",
                    "d27cd69d4a0aa32105087a619f32a51bc087e133be93fe23da92f3c0bcc07d79")
VAE_SHA256 = ("a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815",)
SD15 = WeightFile(
    name="face_adapter/stable-diffusion-v1-5", filename="stable-diffusion-v1-5", format="folder",
    url="hf://stable-diffusion-v1-5/stable-diffusion-v1-5", licence="CreativeML Open RAIL-M", manual=True,
    members=(*_model("unet", sha256=SD15_UNET_SHA256), Member(("scheduler/scheduler_config.json",))),
    note="diffusers snapshot of Stable Diffusion 1.5 (runwayml/stable-diffusion-v1-5); unet/ and scheduler/ are used")
VAE = WeightFile(
    name="face_adapter/sd-vae-ft-mse", filename="sd-vae-ft-mse", format="folder", url="hf://stabilityai/sd-vae-ft-mse",
    licence="MIT (stabilityai/sd-vae-ft-mse)", manual=True,
    members=(Member(("config.json",)), Member(_DIFFUSERS, VAE_SHA256)), note="diffusers AutoencoderKL folder")
PARSER = parsing.WEIGHTS
WEIGHTS = (SD15, VAE, FACE_ADAPTER, ID2TOKEN, IMAGE2TOKEN, D3DFR, ARCFACE, BFM_MODEL_FRONT, EMPTY_PROMPT, PARSER)


@dataclass(frozen=True)
class Arch:
    """Sizes of the ported adapter modules (the diffusers/transformers folders carry their own configs)."""

    token_width: int = 768
    max_length: int = 77
    num_layers: int = 3
    arcface_depth: int = 100


FULL = Arch()
TINY = Arch(token_width=64, max_length=8, num_layers=1, arcface_depth=18)  # TEST ONLY, random-weight folders


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if device.type == "cuda" and dtype is not None:
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


class Adapters(torch.nn.Module):
    """The ported modules whose checkpoints the manifests describe."""

    def __init__(self, arch: Arch = FULL, visual_dim: int = 1280):
        super().__init__()
        self.id2token = ID2Token(512, arch.token_width, arch.max_length, arch.num_layers)
        self.image2token = Image2Token(visual_dim, arch.token_width, arch.max_length, arch.num_layers)
        self.arcface = iresnet100() if arch.arcface_depth == 100 else iresnet18()
        self.d3dfr = Deep3DReconNet(FACE_ADAPTER_HEADS)


class FaceAdapter(SwapMethod):
    """Face-Adapter: SD1.5 + ControlNet with identity / attribute token decoders and 3DMM landmarks."""

    name = "face_adapter"
    description = "Face-Adapter (ECCV 2024): SD1.5 + ControlNet, ArcFace/CLIP token decoders, 3DMM landmarks, Euler 25, CFG 5"
    paper = "Face-Adapter for Pre-Trained Diffusion Models with Fine-Grained ID and Attribute Control, ECCV 2024"
    code = "https://github.com/FaceAdapter/Face-Adapter"
    crop = "ffhq"
    size = 512
    weights = WEIGHTS

    @dataclass(frozen=True)
    class Options:
        steps: int = 25  # infer.py: num_inference_steps=25
        guidance: float = 5.0  # infer.py: guidance_scale=5.0
        official_dropout: bool = False  # True: token decoders in training mode, masks from the pair's generator
        precision: str = "fp16"  # autocast dtype on CUDA for UNet/ControlNet/VAE (official: fp16); bf16, fp32
        tiny: bool = False  # TEST ONLY: reduced adapter modules for random-weight CPU tests

    def __init__(self, options: Options | Mapping | None = None):
        if options is None:
            options = self.Options()
        elif isinstance(options, Mapping):
            options = self.Options(**options)
        if options.steps < 1 or options.guidance < 0 or options.precision not in ("fp16", "bf16", "fp32"):
            raise ValueError(f"invalid Face-Adapter options: {options}")
        super().__init__(options)
        self.save_hyperparameters(asdict(options))
        self.arch = TINY if options.tiny else FULL
        self.weights_loaded = False
        self.parser = parsing.BiSeNet().eval()
        self.bfm = BFMLandmarks(n_vertices=1)
        if options.tiny:
            self.publishable = False

    # --- weights -------------------------------------------------------------------------------------------

    def load_weights(self, state: dict[str, object]) -> None:
        from diffusers import (
            AutoencoderKL,
            ControlNetModel,
            EulerDiscreteScheduler,
            UNet2DConditionModel,
        )
        from transformers import CLIPVisionModel

        for wf in self.weights:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: nothing was given for {wf.filename} ({wf.name})")

        def folder(wf, what, load):
            try:
                return load()
            except (OSError, ValueError) as exc:
                raise WeightsError(f"{state[wf.name]} ({wf.name}) is not a {what} folder: {exc}. Get it from {wf.url}") from exc

        sd15, release = state[SD15.name], state[FACE_ADAPTER.name]
        own_unet = release / "pretrained_unet"
        unet_dir = own_unet if own_unet.is_dir() else sd15 / "unet"
        self.use_stock_modules(
            folder(SD15, "diffusers UNet", lambda: UNet2DConditionModel.from_pretrained(unet_dir)),
            folder(SD15, "diffusers scheduler", lambda: EulerDiscreteScheduler.load_config(sd15 / "scheduler")),
            folder(VAE, "diffusers AutoencoderKL", lambda: AutoencoderKL.from_pretrained(state[VAE.name])),
            folder(FACE_ADAPTER, "diffusers ControlNet", lambda: ControlNetModel.from_pretrained(release / "controlnet")),
            folder(FACE_ADAPTER, "CLIP vision", lambda: CLIPVisionModel.from_pretrained(release / "vision_encoder")))
        self._load(self.adapters.id2token, state[ID2TOKEN.name], ID2TOKEN)
        self._load(self.adapters.image2token, state[IMAGE2TOKEN.name], IMAGE2TOKEN)
        self._load(self.adapters.arcface, state[ARCFACE.name], ARCFACE)
        self._load(self.adapters.d3dfr, face_adapter_state_dict(state[D3DFR.name]), D3DFR)
        self._load(self.parser, state[PARSER.name], PARSER)
        self.adapters.eval()
        try:
            self.bfm = BFMLandmarks(state[BFM_MODEL_FRONT.name], size=256)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise WeightsError(f"{BFM_MODEL_FRONT.filename} ({BFM_MODEL_FRONT.name}) lacks meanshape/idBase/exBase/"
                               f"keypoints: {exc}. See {BFM_MODEL_FRONT.url}") from exc
        empty = state[EMPTY_PROMPT.name]
        if hasattr(empty, "path"):  # the weights layer's Checkpoint: a bare tensor, opened weights-only here
            try:
                empty = torch.load(empty.path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
                raise WeightsError(f"{EMPTY_PROMPT.filename} ({EMPTY_PROMPT.name}) is not readable ({exc}); "
                                   f"download it from {EMPTY_PROMPT.url}") from None
        if not isinstance(empty, torch.Tensor) or empty.numel() != self.arch.max_length * self.arch.token_width:
            raise WeightsError(f"{EMPTY_PROMPT.filename} ({EMPTY_PROMPT.name}) is not a [1, {self.arch.max_length}, "
                               f"{self.arch.token_width}] tensor; download it from {EMPTY_PROMPT.url}")
        self.register_buffer("empty_prompt", empty.float().view(1, self.arch.max_length, self.arch.token_width), persistent=False)
        self.weights_loaded = True

    def use_stock_modules(self, unet, scheduler_config, vae, controlnet, vision) -> None:
        """The diffusers / transformers parts as loaded from their folders, and adapter modules sized for the
        vision tower (their weights follow in load_weights; benchmarks/method_memory.py fills them at random)."""
        self.unet, self.vae, self.controlnet, self.vision = unet.eval(), vae.eval(), controlnet.eval(), vision.eval()
        self.scheduler_config = scheduler_config
        self.adapters = Adapters(self.arch, self.vision.config.hidden_size)

    def _load(self, module: torch.nn.Module, sd, wf: WeightFile) -> None:
        problems = state_dict_problems(module.state_dict(), sd)
        if problems:
            raise WeightsError(f"{wf.filename} ({wf.name}) does not fit Face-Adapter"
                               f"{' (tiny test architecture)' if self.options.tiny else ''}: {'; '.join(problems)}."
                               f" Download the official file from {wf.url}")
        module.load_state_dict(sd, strict=True)

    def _autocast_dtype(self) -> torch.dtype | None:
        return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[self.options.precision]

    # --- pieces --------------------------------------------------------------------------------------------

    @torch.no_grad()
    def identity_tokens(self, src256: torch.Tensor, gens=None) -> torch.Tensor:
        feat = self.adapters.arcface.layer4_tokens(C.arcface_input(src256))
        return self.adapters.id2token.decode(feat, gens)

    @torch.no_grad()
    def attribute_tokens(self, clip_pixels: torch.Tensor, gens=None) -> torch.Tensor:
        hidden = self.vision(pixel_values=clip_pixels).last_hidden_state
        return self.adapters.image2token.decode(hidden, gens)

    @torch.no_grad()
    def landmarks68(self, src256: torch.Tensor, tgt256: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(68 BFM landmarks in the 256 crop, pupil offsets [B, 4]) with the source identity."""
        cs, ct = self.adapters.d3dfr(src256), self.adapters.d3dfr(tgt256)
        ct = torch.cat([cs[:, :80], ct[:, 80:]], dim=1)
        return self.bfm(ct), ct[:, 257:261]

    @torch.no_grad()
    def sample(self, latents: torch.Tensor, control: torch.Tensor, id_tokens: torch.Tensor, attr_tokens: torch.Tensor,
               steps: int | None = None, record: list | None = None) -> torch.Tensor:
        """The Euler CFG loop from start latents (already x init_noise_sigma); returns the final latents."""
        from diffusers import EulerDiscreteScheduler

        opt, dev = self.options, latents.device
        dtype = self._autocast_dtype()
        sched = EulerDiscreteScheduler.from_config(self.scheduler_config)
        sched.set_timesteps(opt.steps, device=dev)
        b = latents.shape[0]
        empty = self.empty_prompt.to(dev).expand(b, -1, -1)
        unet_tokens = torch.cat([empty, id_tokens.float()])
        ctrl_tokens = torch.cat([empty, attr_tokens.float()])
        ctrl_image = torch.cat([control, control]).float()
        x = latents
        for t in sched.timesteps[:steps]:
            xin = sched.scale_model_input(torch.cat([x, x]), t)
            with _autocast(dev, dtype):
                down, mid = self.controlnet(xin, t, encoder_hidden_states=ctrl_tokens, controlnet_cond=ctrl_image,
                                            conditioning_scale=1.0, guess_mode=False, return_dict=False)
                eps = self.unet(xin, t, encoder_hidden_states=unet_tokens, down_block_additional_residuals=down,
                                mid_block_additional_residual=mid, return_dict=False)[0].float()
            eu, ec = eps.chunk(2)
            x = sched.step(eu + opt.guidance * (ec - eu), t, x, return_dict=False)[0]
            if record is not None:
                record.append(x)
        return x

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE decode as the official pipeline's PIL output, back in [-1, 1]: 8-bit rounding included."""
        with _autocast(latents.device, self._autocast_dtype()):
            img = self.vae.decode(latents / self.vae.config.scaling_factor, return_dict=False)[0].float()
        u8 = ((img / 2 + 0.5).clamp(0, 1) * 255).round()
        return u8 / 255 * 2 - 1

    # --- swap ----------------------------------------------------------------------------------------------

    @torch.no_grad()
    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        if not self.weights_loaded:
            raise RuntimeError("face_adapter: load_weights() was not called; the networks are uninitialised")
        ids = source.pair_id or target.pair_id
        if ids is None or len(ids) != len(target):
            raise ValueError("face_adapter draws noise per pair: FaceBatch.pair_id must name every row")
        dev = target.image.device
        gens = [self.pair_generator(pid, dev) for pid in ids]
        src_u8, tgt_u8 = C.to_uint8(source.image), C.to_uint8(target.image)
        m_src = np.stack([C.align_matrix_256(lm) for lm in source.landmarks.detach().cpu().numpy()])
        m_tgt = np.stack([C.align_matrix_256(lm) for lm in target.landmarks.detach().cpu().numpy()])
        return self.generate(src_u8, tgt_u8, m_src, m_tgt, gens)

    @torch.no_grad()
    def generate(self, src_u8: np.ndarray, tgt_u8: np.ndarray, m_src: np.ndarray, m_tgt: np.ndarray, gens,
                 latents: torch.Tensor | None = None, record: dict | None = None, stop_after: int | None = None) -> torch.Tensor:
        """Everything after cropping: 8-bit 512 crops, their 512 -> 256 matrices, one generator per pair.

        Returns [B, 3, 512, 512] in [0, 1]. `record` (tests) receives the intermediate tensors; `stop_after`
        (tests) ends the sampler after that many steps of the schedule."""
        dev = next(self.unet.parameters()).device
        src256 = C.from_uint8(C.crop_256(src_u8, m_src), dev)
        tgt256 = C.from_uint8(C.crop_256(tgt_u8, m_tgt), dev)
        target = C.from_uint8(tgt_u8, dev)
        pts68, pupil = self.landmarks68(src256, tgt256)
        pts_image = C.landmark_image(pts68, pupil, m_tgt, size=target.shape[-1])
        face = C.face_mask(C.parse_labels(self.parser, target))
        control = pts_image * face + target * (1 - face)
        blend = C.blend_mask(face)
        drop = gens if self.options.official_dropout else None
        id_tokens = self.identity_tokens(src256, drop)
        attr_tokens = self.attribute_tokens(C.clip_input(tgt_u8, dev), drop)
        if latents is None:
            lat = target.shape[-1] // 8
            sched_sigma = self._init_noise_sigma()
            latents = randn_per_pair(gens, (self.unet.config.in_channels, lat, lat), device=dev) * sched_sigma
        steps_record: list = []
        z = self.sample(latents, control, id_tokens, attr_tokens, steps=stop_after, record=steps_record)
        gen = self.decode(z)
        out = gen * blend + target * (1 - blend)
        if record is not None:
            record.update(src256=src256, tgt256=tgt256, pts68=pts68, pupil=pupil, pts_image=pts_image, face=face,
                          control=control, blend=blend, id_tokens=id_tokens, attr_tokens=attr_tokens,
                          latents=latents, steps=steps_record, decoded=gen, blended=out)
        return ((out + 1) / 2).clamp(0, 1)

    def _init_noise_sigma(self) -> float:
        from diffusers import EulerDiscreteScheduler

        sched = EulerDiscreteScheduler.from_config(self.scheduler_config)
        sched.set_timesteps(self.options.steps)
        return float(sched.init_noise_sigma)
