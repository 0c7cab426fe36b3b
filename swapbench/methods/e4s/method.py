"""E4S (Liu et al., "Fine-grained Face Swapping via Regional GAN Inversion", CVPR 2023) as a swapbench method.

Faithful to the official scripts/face_swap.py (e4s2022/e4s @ d30bdc7, `faceSwapping_pipeline` with
need_crop=False, the default blend), which on aligned 1024 x 1024 faces does:

  parse     the target T with BiSeNet after the bicubic 2x downsample -> 12-class mask at 512;
  reenact   FaceVid2Vid drives the source S with T's pose and expression at 256 (`reenact`, default on);
  restore   GPEN-BFR-512 with x4 RealESRNet turns that 256 face into the 1024 driven face D (`restore`,
            default on); D is parsed like T;
  encode    RGI style vectors of D and T (region means of the encoder's features, compose.py);
  swap      mask swap (D's inner face inside T's head) and texture swap (D's inner-face regions, T's
            background, hair, glasses and earrings);
  generate  codes = 12 MLPs + latent_avg, mask-guided StyleGAN2 1024 with fresh noise per layer;
  blend     the generated face pasted over T through the binarised, dilated, eroded and blurred mask.

Here:
  - crops are swapbench's `ffhq_1024` (FFHQ alignment, as the official STIT crop when need_crop is set);
    the crops stand in for the official 1024 PNGs and are taken at 8 bits;
  - the official generator draws fresh noise at every call, so two official runs differ; here each
    pair's noise maps are drawn (in layer order, on the CPU) from `pair_generator` (run seed, pair id);
  - pairs are swapped one at a time, as officially: a swap is identical at any batch size;
  - `reenact` and `restore` call swapbench.methods.e4s.reenact / .restore. Without them D is the source
    crop itself (reenact=false: no pose transfer, the texture comes from the unposed source). With
    reenact on and restore off, the 256 face is enlarged to 1024 bicubically (not an official path);
    restore without reenact is refused (GPEN restores the reenacted 256 face);
  - `model` "tiny" builds the reduced RGI of rgi.TINY, FaceVid2Vid of facevid2vid_nets.TINY and the
    restoration networks of restore.REDUCED (tests and CPU smoke runs with random weights in those
    layouts, random_weights.method_state; never publishable: the official checkpoints are "full").
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
from swapbench.faces.parsing import BiSeNet, FaceParser, to_seg12
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.methods.e4s import compose
from swapbench.methods.e4s.rgi import RGI, TINY, draw_noise, one_hot
from swapbench.weights import WeightFile, WeightsError, check_fits

CODE = "https://github.com/e4s2022/e4s"
PAPER = "Liu et al., Fine-grained Face Swapping via Regional GAN Inversion, CVPR 2023"
E4S_WEIGHTS = WeightFile(
    name="e4s/iteration_300000",
    filename="iteration_300000.pt",
    url="gdrive://1cyJTYRO5G4kcugAcgSJ7cMsE96GzV_hq",
    licence="MIT (e4s2022/e4s LICENSE; no separate licence for the checkpoint)",
    format="state_dict",
    note="the E4S RGI checkpoint of INSTALLATION.md (Google Drive, pretrained_ckpts/e4s/iteration_300000.pt): "
         "a dict with 'state_dict' (module.-prefixed, used), 'state_dict_ema' (unused, as officially), "
         "'latent_avg' and 'opts'",
)
PARSE_SIDE = 512  # the official parser runs on the 2x-downsampled 1024 image


def _stage(name: str):
    """swapbench.methods.e4s.<name>, or None where this build does not have it."""
    try:
        return importlib.import_module(f"swapbench.methods.e4s.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"swapbench.methods.e4s.{name}":
            raise
        return None


def _stage_weights(name: str) -> tuple[WeightFile, ...]:
    """The files a stage reads, in its loader's order: reenact.FACEVID2VID_WEIGHTS; restore.GPEN_WEIGHTS,
    REALESRNET_WEIGHTS, RETINAFACE_WEIGHTS, PARSENET_WEIGHTS (the order of Restorer.from_files)."""
    module = _stage(name)
    if module is None:
        return ()
    if name == "reenact":
        return (module.FACEVID2VID_WEIGHTS,)
    return (module.GPEN_WEIGHTS, module.REALESRNET_WEIGHTS, module.RETINAFACE_WEIGHTS, module.PARSENET_WEIGHTS)


@dataclass(frozen=True)
class E4SOptions:
    reenact: bool = True  # FaceVid2Vid: the source takes the target's pose and expression first (official)
    restore: bool = True  # GPEN-BFR-512 + RealESRNet x4 on the reenacted 256 face (official)
    model: Literal["full", "tiny"] = "full"  # tiny: the reduced RGI of the tests (random weights only)


class E4S(SwapMethod):
    name = "e4s"
    description = "E4S (CVPR 2023): regional GAN inversion, mask and texture swap in a mask-guided StyleGAN2 1024"
    paper = PAPER
    code = CODE
    crop = "ffhq"
    size = 1024
    weights = (E4S_WEIGHTS, PARSER_WEIGHTS) + _stage_weights("reenact") + _stage_weights("restore")
    Options = E4SOptions

    def __init__(self, options: E4SOptions | None = None, **kwargs):
        if options is None:
            options = E4SOptions(**kwargs)
        elif kwargs:
            raise TypeError("pass either options or keyword options, not both")
        for stage, on in (("reenact", options.reenact), ("restore", options.restore)):
            if on and _stage(stage) is None:
                raise ValueError(f"e4s: the {stage} stage (swapbench.methods.e4s.{stage}) is not available in this "
                                 f"build; run with e4s.{stage}=false")
        if options.restore and not options.reenact:
            raise ValueError("e4s.restore=true needs e4s.reenact=true (GPEN restores the reenacted 256 px face)")
        super().__init__(options)
        self.save_hyperparameters(asdict(options))
        config = TINY if options.model == "tiny" else {}
        with torch.device("meta"):  # every value comes from load_weights
            rgi, parser = RGI(**config), BiSeNet()
        self.rgi = rgi.to_empty(device="cpu")
        self.parser = FaceParser(parser.to_empty(device="cpu"))
        self.reenactor = None
        self.restorer = None
        self.weights_loaded = False
        self.eval()

    @classmethod
    def weights_for(cls, options: E4SOptions) -> tuple[WeightFile, ...]:
        files = [E4S_WEIGHTS, PARSER_WEIGHTS]
        if options.reenact:
            files += _stage_weights("reenact")
        if options.restore:
            files += _stage_weights("restore")
        return tuple(files)

    def load_weights(self, state: dict[str, object]) -> None:
        for wf in self.weights:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: no contents were given for {wf.filename} ({wf.name})")
        ckpt = state[E4S_WEIGHTS.name]
        if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "latent_avg" not in ckpt:
            have = sorted(map(str, ckpt))[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
            raise WeightsError(f"{E4S_WEIGHTS.filename} ({E4S_WEIGHTS.name}) should be a dict with 'state_dict' and "
                               f"'latent_avg', got {have}. Get the official file from {E4S_WEIGHTS.url}")
        from swapbench.methods.e4s.rgi import strip_module_prefix

        check_fits(self.rgi, strip_module_prefix(ckpt["state_dict"]), E4S_WEIGHTS, "E4S RGI model (Net3 'state_dict')")
        latent_avg = torch.as_tensor(ckpt["latent_avg"])
        if latent_avg.numel() != self.rgi.latent_avg.numel():
            raise WeightsError(f"{E4S_WEIGHTS.filename}: latent_avg has shape {tuple(latent_avg.shape)}, expected "
                               f"{tuple(self.rgi.latent_avg.shape)}. Get the official file from {E4S_WEIGHTS.url}")
        check_fits(self.parser.net, state[PARSER_WEIGHTS.name], PARSER_WEIGHTS, "BiSeNet face parser")
        self._load_stages(state)
        self.rgi.load(ckpt)
        self.parser.net.load_state_dict(state[PARSER_WEIGHTS.name], strict=True)
        self.weights_loaded = True

    def _load_stages(self, state: dict[str, object]) -> None:
        """FaceVid2Vid and GPEN through their modules' own loaders (they read their files by path)."""
        tiny = self.options.model == "tiny"
        if self.options.reenact:
            from swapbench.methods.e4s.facevid2vid_nets import TINY as REENACT_TINY
            from swapbench.methods.e4s.facevid2vid_nets import VOX_256

            (facevid2vid,) = _stage_weights("reenact")
            self.reenactor = _stage("reenact").Reenactor.from_checkpoint(
                state[facevid2vid.name], REENACT_TINY if tiny else VOX_256).eval()
        if self.options.restore:
            restore = _stage("restore")
            gpen, realesrnet, retinaface, parsenet = (state[wf.name] for wf in _stage_weights("restore"))
            self.restorer = restore.Restorer.from_files(gpen, realesrnet, retinaface, parsenet, device=self.device,
                                                        sizes=restore.REDUCED if tiny else None)

    # -- the pipeline, step by step --

    def parse(self, images: torch.Tensor) -> torch.Tensor:
        """seg12 labels [B, 512, 512] of images [B, 3, S, S] in [0, 1] (S >= 512; the official factor S // 512)."""
        x = compose.bicubic_downsample(images.float(), images.shape[-1] // PARSE_SIDE).clamp(0, 1)
        logits = self.parser.net((x - self.parser.mean) / self.parser.std)[0]
        return to_seg12(logits.argmax(1))

    def driven(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The driven face D [1, 3, S, S] in [0, 1], 8-bit values: the source in the target's pose (reenact),
        restored to S (restore)."""
        if not self.options.reenact:
            return source
        reenact = _stage("reenact")
        small = [torch.from_numpy(reenact.resize_like_skimage(self._uint8(x))).permute(2, 0, 1)[None].float()
                 for x in (source, target)]
        moved = self.reenactor(small[0].to(source.device), small[1].to(source.device))
        moved = torch.floor(moved.clamp(0, 1) * 255)  # (pred * 255).astype(uint8)
        side = target.shape[-1]
        if self.options.restore:
            bgr = moved[0].permute(1, 2, 0).flip(-1).to(torch.uint8).cpu().numpy()
            restored = np.ascontiguousarray(self.restorer(bgr)[:, :, ::-1])
            out = torch.from_numpy(restored).permute(2, 0, 1)[None].float().to(source.device)
            if out.shape[-1] != side:
                out = F.interpolate(out, (side, side), mode="bicubic", align_corners=False).clamp(0, 255).round()
            return out / 255
        up = F.interpolate(moved, (side, side), mode="bicubic", align_corners=False)
        return up.clamp(0, 255).round() / 255

    @staticmethod
    def _uint8(image: torch.Tensor) -> np.ndarray:
        return torch.round(image[0].float().clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    def generate(self, driven: torch.Tensor, target: torch.Tensor, driven_labels: torch.Tensor,
                 target_labels: torch.Tensor, noise) -> tuple[torch.Tensor, torch.Tensor]:
        """(generated face [B, 3, G, G] in about [-1, 1], swapped labels [B, 512, 512])."""
        v_d = self.rgi.style_vectors(driven * 2 - 1, one_hot(driven_labels))
        v_t = self.rgi.style_vectors(target * 2 - 1, one_hot(target_labels))
        swapped, _ = compose.swap_masks(driven_labels, target_labels)
        codes = self.rgi.style_codes(compose.swap_style_vectors(v_t, v_d))
        return self.rgi.generate(codes, one_hot(swapped), noise), swapped

    @torch.no_grad()
    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        if not self.weights_loaded:
            raise RuntimeError(f"{self.name}: load_weights() was not called; the networks are uninitialised")
        if len(target) > 1:  # one pair at a time, as officially
            return torch.cat([self.swap(source.row(i), target.row(i)) for i in range(len(target))])
        tgt = torch.round(target.image.float().clamp(0, 1) * 255) / 255  # the 8-bit target image
        src = torch.round(source.image.float().clamp(0, 1) * 255) / 255
        drv = self.driven(src, tgt)
        t_labels, d_labels = self.parse(tgt), self.parse(drv)
        pair = target.pair_id[0] if target.pair_id else ""
        noise = [n.to(tgt.device) for n in draw_noise(self.pair_generator(pair), self.rgi.G.num_layers)]
        generated, swapped = self.generate(drv, tgt, d_labels, t_labels, noise)
        return compose.blend(generated, tgt, swapped)
