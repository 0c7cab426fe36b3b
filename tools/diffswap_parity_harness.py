"""Runs the official DiffSwap code (wl-zhao/DiffSwap @ c316952f) to make tests/golden/diffswap_*.

Contains no official code: it imports the official modules from a checkout given by DIFFSWAP_SRC (with
einops, easydict and taming-transformers-rom1504 importable, e.g. `pip install --no-deps --target SITE`,
SITE on PYTHONPATH), stubs the imports that only matter for training (pytorch_lightning, torchvision,
IPython), and drives LatentDiffusion / FaceEmbedder / DDIMSampler / Portrait / blending_mask directly on
the CPU, as tests/faceswap_portrait.py and pipeline.py do. Patches (all outside the official files):
  - DDIMSampler.register_buffer keeps tensors on the CPU (officially it moves them to CUDA);
  - torch.load returns {} while FaceEmbedder is built (it loads checkpoints/<face_dataset>_<model>.pth,
    which the random weights overwrite anyway);
  - the tiny model uses face_dataset='wf42m_pfc03_32gpu', face_model='r18' (there is no glint360k r18 config);
  - the affine theta is built from tests' 68-point landmarks (five_points) with the official
    warp_and_crop_face (cp2tform) and the tfm2theta formula of face_align_portrait.py (MTCNN is not run).

Usage: DIFFSWAP_SRC=/path/to/DiffSwap PYTHONPATH=SITE:. python tools/diffswap_parity_harness.py
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SRC = Path(os.environ["DIFFSWAP_SRC"]).resolve()
GOLDEN = REPO / "tests" / "golden"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(SRC))
os.chdir(SRC)

# swapbench (and lightning, which probes torchvision) first, before the stubs below.
from swapbench.faces.templates import five_points  # noqa: E402
from swapbench.methods.diffswap.random_weights import random_official_state  # noqa: E402
from tests import diffswap_inputs as inputs  # noqa: E402


def _stub(name: str, **attrs) -> types.ModuleType:
    import importlib.machinery
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


class _LM(nn.Module):
    @property
    def device(self):
        return torch.device("cpu")


_stub("pytorch_lightning", LightningModule=_LM)
_stub("pytorch_lightning.utilities")
_stub("pytorch_lightning.utilities.distributed", rank_zero_only=lambda f: f)
_stub("torchvision", transforms=None)
_stub("torchvision.utils", make_grid=None)
_stub("torchvision.transforms", ToTensor=None, ToPILImage=None)
_stub("torchvision.transforms.functional", gaussian_blur=None)
_stub("IPython", embed=None)

from ldm.data.portrait import Portrait  # noqa: E402
from ldm.models.diffusion.ddim import DDIMSampler  # noqa: E402
from ldm.models.diffusion.ddpm import LatentDiffusion  # noqa: E402
from data_preprocessing.align.align_trans import get_reference_facial_points, warp_and_crop_face  # noqa: E402
from utils.blending.blending_mask import (  # noqa: E402
    gaussian_pyramid, laplacian_collapse, laplacian_pyr_join, laplacian_pyramid)

DDIMSampler.register_buffer = lambda self, name, attr: setattr(self, name, attr)
_register_schedule = LatentDiffusion.register_schedule


def _cpu_schedule(self, *a, **k):  # the schedule goes through numpy: keep it off the meta device
    with torch.device("cpu"):
        return _register_schedule(self, *a, **k)


LatentDiffusion.register_schedule = _cpu_schedule


def config(tiny: bool) -> dict:
    unet = dict(image_size=64, in_channels=3, out_channels=3, model_channels=224, attention_resolutions=[8, 4, 2],
                num_res_blocks=2, channel_mult=[1, 2, 3, 4], num_head_channels=32, use_spatial_transformer=True,
                transformer_depth=1, context_dim=256)
    dd = dict(double_z=False, z_channels=3, resolution=256, in_channels=3, out_ch=3, ch=128, ch_mult=[1, 2, 4],
              num_res_blocks=2, attn_resolutions=[], dropout=0.0)
    vq = dict(embed_dim=3, n_embed=8192, ddconfig=dd, lossconfig={"target": "torch.nn.Identity"})
    cond = dict(lmk_dim=256, comb_mode="stack", keys=["image", "landmark"], attention=True, merge_eyes=True,
                face_model="r100", affine_crop=True)
    if tiny:
        unet.update(model_channels=32, num_res_blocks=1, context_dim=64)
        dd.update(ch=32, num_res_blocks=1)
        vq.update(n_embed=64)
        cond.update(lmk_dim=64, face_model="r18", face_dataset="wf42m_pfc03_32gpu")
    return dict(
        linear_start=0.0015, linear_end=0.0195, num_timesteps_cond=1, log_every_t=200, timesteps=1000,
        first_stage_key="image", image_size=64, channels=3, cond_stage_trainable=True, cond_stage_key="faceattr",
        conditioning_key="crossattn", monitor="val/loss_simple_ema",
        unet_config={"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": unet},
        first_stage_config={"target": "ldm.models.autoencoder.VQModelInterface", "params": vq},
        cond_stage_config={"target": "ldm.modules.encoders.face_embedder.FaceEmbedder", "params": cond},
    )


def build(tiny: bool, device: str) -> LatentDiffusion:
    load = torch.load
    torch.load = lambda *a, **k: {}
    try:
        with torch.device(device):
            return LatentDiffusion(**config(tiny))
    finally:
        torch.load = load


def write_manifest(model: nn.Module, name: str) -> dict:
    man = {k: list(v.shape) for k, v in model.state_dict().items()}
    (GOLDEN / name).write_text(json.dumps(man, indent=0) + "\n")
    return man


def theta_of(landmarks68: np.ndarray) -> np.ndarray:
    """affine_theta.json's entry: official cp2tform to the ArcFace template + face_align_portrait's tfm2theta."""
    tfm = warp_and_crop_face(None, five_points(landmarks68), get_reference_facial_points(default_square=True),
                             crop_size=(112, 112), return_tfm=True)
    a = np.array([[2 / 255, 0, -1], [0, 2 / 255, -1], [0, 0, 1]])
    b = np.linalg.inv(np.array([[2 / 111, 0, -1], [0, 2 / 111, -1], [0, 0, 1]]))
    return (a @ np.linalg.inv(np.concatenate([tfm, [[0, 0, 1]]])) @ b)[:2]


def portrait_batch(src: np.ndarray, tgt: np.ndarray, lm_src: np.ndarray, lm_tgt: np.ndarray) -> dict:
    """The collated Portrait batch of pairs (src[i], tgt[i]), built with the official Portrait helpers."""
    p = object.__new__(Portrait)
    p.size, p.base_res, p.dilate, p.convex_hull = 256, 256, False, True
    idx = np.arange(68)
    p.landmark_indices = {"l_eye": idx[36:42].tolist(), "r_eye": idx[42:48].tolist(),
                          "nose": idx[27:36].tolist(), "mouth": idx[48:68].tolist()}
    items = []
    for i in range(len(src)):
        ls, lt = torch.tensor(lm_src[i].astype(np.float32)) / 256, torch.tensor(lm_tgt[i].astype(np.float32)) / 256
        item = {"image_src": (src[i] / 127.5 - 1.0).astype(np.float32), "image": (tgt[i] / 127.5 - 1.0).astype(np.float32),
                "mask_organ_src": p.mask_organ_src(ls), "landmark": lt,
                "affine_theta_src": theta_of(lm_src[i]).astype(np.float32), "affine_theta": theta_of(lm_tgt[i]).astype(np.float32)}
        item.update(p.extract_convex_hulls(lt))
        items.append(item)
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}


def official_blend(gen01: torch.Tensor, tgt_uint8: np.ndarray, hull: np.ndarray) -> np.ndarray:
    """perform_swap's uint8 output + pipeline.repair_by_mask (mask written as 0/255 PNG, read back /255)."""
    import cv2
    im1 = np.int32(np.array(gen01.permute(1, 2, 0) * 255).astype(np.uint8))
    im2 = np.int32(tgt_uint8)
    mask = np.uint8((hull.astype(np.float64) * 255).astype(np.uint8) / 255.0)
    gp1, gp2 = gaussian_pyramid(im1), gaussian_pyramid(im2)
    mask_gp = [cv2.resize(mask, (g.shape[1], g.shape[0])) for g in gp1]
    out = laplacian_collapse(laplacian_pyr_join(laplacian_pyramid(gp1), laplacian_pyramid(gp2), mask_gp))
    np.clip(out, 0, 255, out=out)
    return np.uint8(out)


def main() -> None:
    torch.set_num_threads(1)
    write_manifest(build(False, "meta"), "diffswap_manifest.json")
    model = build(True, "cpu").eval()
    man = write_manifest(model, "diffswap_tiny_manifest.json")
    state = random_official_state(man, inputs.SEED)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all(not k.startswith(("model.", "model_ema.diff", "first_stage", "cond_stage")) for k in missing), missing
    fe = model.cond_stage_model
    fe.affine_crop = True
    fe.swap = True  # faceswap_portrait.py sets both

    crops = inputs.crops256()
    lm = inputs.landmarks256(crops)
    src, tgt = crops, crops[::-1].copy()
    lm_src, lm_tgt = lm, lm[::-1].copy()
    out = {"crops_sha": np.array(inputs.crops_digest(crops)), "landmarks": lm.astype(np.float32)}

    with torch.no_grad():
        # Tokens, each pair alone (batch 1: z_src = roll(z, 1) is the pair's own target latent) and both
        # pairs in one batch (the official roll takes pair 0's organ latent from pair 1's target).
        for i in range(2):
            b = portrait_batch(src[i:i + 1], tgt[i:i + 1], lm_src[i:i + 1], lm_tgt[i:i + 1])
            z, c = model.get_input(b, "image", force_c_encode=True, swap=True)
            out[f"context_{i}"], out[f"z_{i}"] = c.numpy(), z.numpy()
            out[f"id_feat_{i}"] = b["id_feat"].numpy()
            out[f"theta_{i}"] = b["affine_theta_src"].numpy()
        b2 = portrait_batch(src, tgt, lm_src, lm_tgt)
        _, c2 = model.get_input(b2, "image", force_c_encode=True, swap=True)
        out["context_batch2_roll"] = c2.numpy()

        # One UNet call (EMA weights, as the official sampler runs inside ema_scope).
        b = portrait_batch(src[:1], tgt[:1], lm_src[:1], lm_tgt[:1])
        z, c = model.get_input(b, "image", force_c_encode=True, swap=True)
        g = torch.Generator().manual_seed(7)
        x = torch.randn(z.shape, generator=g)
        with model.ema_scope():
            out["unet_x"], out["unet_t"] = x.numpy(), np.array([501])
            out["unet_out"] = model.apply_model(x, torch.tensor([501]), c).numpy()

            # STEPS guided DDIM steps (perform_swap): known-region mask from the target's landmark hull.
            mask = (1 - b["mask"].float())[:, None]
            mask = torch.nn.functional.interpolate(mask, size=z.shape[-2:], mode="nearest")
            mask[mask > 0] = 1
            mask[mask <= 0] = 0
            sampler = DDIMSampler(model, tgt_scale=0.01)
            torch.manual_seed(inputs.NOISE_SEED)
            samples, _ = sampler.sample(inputs.STEPS, 1, (3, 64, 64), c, eta=0.0, x0=z, mask=mask, verbose=False)
        out["samples"] = samples.numpy()
        dec = model.decode_first_stage(samples)
        gen = torch.clamp((dec + 1.0) / 2.0, min=0.0, max=1.0)
        out["generated"] = gen.numpy()
        out["blended"] = official_blend(gen[0], tgt[0], b["mask"][0].numpy())
    np.savez_compressed(GOLDEN / "diffswap_parity.npz", **out)
    print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
    main()
