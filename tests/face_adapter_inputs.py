"""Face-Adapter test helpers: a weights folder of random-weight files in the official layouts.

The tiny configuration is the one the parity goldens were made with (tests/test_face_adapter_parity.py):
diffusers UNet / ControlNet / VAE and a transformers CLIP vision tower built from the configs below and
saved with `save_pretrained` (the folders a user downloads have the same layout), the token decoders at
width 64 / 8 tokens / 1 layer, ArcFace iresnet18, D3DFR ResNet-50 and BiSeNet at full size, a random BFM
stand-in (100 vertices, numpy RandomState(3)) and a random [1, 8, 64] empty-prompt embedding
(RandomState(10)). Values come from swapbench.methods.ghost.random_weights.random_state_dict, seeded per
key, so the official code and the port get identical weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from swapbench.faces import parsing
from swapbench.faces.deep3d import FACE_ADAPTER_HEADS, Deep3DReconNet
from swapbench.methods.ghost.random_weights import random_state_dict
from swapbench.faces.iresnet import iresnet18

GOLDEN = Path(__file__).parent / "golden"
GRACE_HOPPER = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"

TINY_UNET = {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 1, "block_out_channels": (32, 64),
                 "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"), "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
                 "cross_attention_dim": 64, "attention_head_dim": 2, "norm_num_groups": 32}
TINY_CONTROLNET = {"in_channels": 4, "layers_per_block": 1, "block_out_channels": (32, 64),
                       "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"), "cross_attention_dim": 64,
                       "attention_head_dim": 2, "norm_num_groups": 32, "conditioning_embedding_out_channels": (16, 16, 32, 32)}
TINY_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1, "block_out_channels": (16, 16, 16, 16),
                "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4, "norm_num_groups": 16,
                "sample_size": 512}
SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                 "steps_offset": 1, "prediction_type": "epsilon"}
TINY_CLIP = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2, "image_size": 224,
                 "patch_size": 14, "projection_dim": 32}


def manifest() -> dict[str, dict[str, list[int]]]:
    return json.loads((GOLDEN / "face_adapter_manifest.json").read_text())


def random_bfm(n: int = 100, seed: int = 3) -> dict[str, np.ndarray]:
    """A BFM_model_front.mat stand-in with the real key set (RandomState streams are stable)."""
    r = np.random.RandomState(seed)
    mean = np.stack([r.uniform(-0.8, 0.8, n), r.uniform(-1.0, 0.9, n), r.uniform(-0.4, 0.6, n)], 1).reshape(1, -1)
    kp = r.choice(n, 68, replace=False) + 1
    f = 2 * n
    return {
        "meanshape": mean.astype(np.float32), "idBase": (0.02 * r.randn(3 * n, 80)).astype(np.float32),
        "exBase": (0.02 * r.randn(3 * n, 64)).astype(np.float32), "meantex": r.uniform(0, 255, (1, 3 * n)).astype(np.float32),
        "texBase": r.randn(3 * n, 80).astype(np.float32), "point_buf": r.randint(1, f + 1, (n, 8)).astype(np.float64),
        "tri": r.randint(1, n + 1, (f, 3)).astype(np.float64), "keypoints": kp[None].astype(np.float64),
        "frontmask2_idx": np.arange(1, n + 1)[:, None].astype(np.float64),
        "tri_mask2": r.randint(1, n + 1, (f, 3)).astype(np.float64), "skinmask": np.ones((1, n), np.float64),
    }


def _randomized(module, seed, gains=None, prefix=""):
    """Random values seeded by the key the released file uses (`prefix` + key where a library version
    names its parameters without the prefix the file has, e.g. transformers 5 CLIP without `vision_model.`)."""
    sd = module.state_dict()
    rnd = random_state_dict({prefix + k: v for k, v in sd.items()}, seed, gains)
    module.load_state_dict({k: rnd[prefix + k] for k in sd}, strict=True)
    return module


def official_d3dfr_state(seed: int = 8) -> dict[str, torch.Tensor]:
    """d3dfr_res50_nofc.pth in the official key layout (`fianl_layers`), heads scaled by 0.1."""
    port = Deep3DReconNet(FACE_ADAPTER_HEADS).state_dict()
    official = {(k.replace("final_layers.", "fianl_layers.", 1)): v for k, v in port.items()}
    sd = random_state_dict(official, seed, {"bn3.weight": 0.2})
    return {k: (v * 0.1 if k.startswith("fianl_layers.") else v) for k, v in sd.items()}


def official_token_state(kind: str, seed: int) -> dict[str, torch.Tensor]:
    from swapbench.methods.face_adapter.tokens import ID2Token, Image2Token

    net = ID2Token(512, 64, 8, 1) if kind == "id" else Image2Token(32, 64, 8, 1)
    return random_state_dict(net.state_dict(), seed)


def write_tiny_weights(root: Path) -> Path:
    """Every Face-Adapter file, tiny config, random weights, in the layout the method looks for."""
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        EulerDiscreteScheduler,
        UNet2DConditionModel,
    )
    from scipy.io import savemat
    from transformers import CLIPVisionConfig, CLIPVisionModel

    root = Path(root)
    fa = root / "FaceAdapter"
    (fa / "third_party").mkdir(parents=True, exist_ok=True)
    sd15 = root / "stable-diffusion-v1-5"
    _randomized(UNet2DConditionModel(**TINY_UNET), 1).save_pretrained(sd15 / "unet")
    EulerDiscreteScheduler(**SCHEDULER).save_pretrained(sd15 / "scheduler")
    _randomized(ControlNetModel(**TINY_CONTROLNET), 2).save_pretrained(fa / "controlnet")
    _randomized(AutoencoderKL(**TINY_VAE), 3).save_pretrained(root / "sd-vae-ft-mse")
    clip = CLIPVisionModel(CLIPVisionConfig(**TINY_CLIP))
    prefix = "" if next(iter(clip.state_dict())).startswith("vision_model.") else "vision_model."
    _randomized(clip, 4, prefix=prefix).save_pretrained(fa / "vision_encoder")
    torch.save(official_token_state("id", 5), fa / "net_id2token.pth")
    torch.save(official_token_state("image", 6), fa / "net_image2token.pth")
    torch.save(random_state_dict(iresnet18().state_dict(), 7, {"bn2.weight": 0.3}), fa / "third_party" / "insightface_glint360k.pth")
    torch.save(official_d3dfr_state(8), fa / "third_party" / "d3dfr_res50_nofc.pth")
    torch.save(random_state_dict(parsing.BiSeNet().state_dict(), 9), root / "79999_iter.pth")
    savemat(root / "BFM_model_front.mat", random_bfm())
    empty = torch.from_numpy(np.random.RandomState(10).randn(1, 8, 64).astype(np.float32))
    torch.save(empty, root / "empty_prompt_embedding.pth")
    return root


def parity_inputs() -> tuple[np.ndarray, np.ndarray]:
    """The harness's 512 inputs: grace_hopper rows/cols 0-511 in 4 x 4 blocks; the target mirrored and rolled."""
    from PIL import Image

    img = np.asarray(Image.open(GRACE_HOPPER).convert("RGB"))[:512, :512]
    src = np.ascontiguousarray(img[::4, ::4].repeat(4, 0).repeat(4, 1))
    tgt = np.ascontiguousarray(np.roll(src[:, ::-1], (12, -9), axis=(0, 1)))
    return src, tgt
