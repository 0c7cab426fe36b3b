"""REFace test helpers: random-weight checkpoints in the official Lightning layout.

The key/shape manifests (tests/golden/reface_manifest.json, full size; reface_tiny_manifest.json, the
test-only tiny config) were dumped from the official `LatentDiffusion` (Sanoojan/REFace f73bd8d,
models/REFace/configs/project_ffhq.yaml; tiny: UNet model_channels 32 / 1 res block / 2 heads, VAE ch 32 /
1 res block, CLIP 64-wide 2-layer vision and 32-wide 1-layer text tower, LPIPS_loss_weight 0) built on the
`meta` device, with the CLIP keys of transformers 4.19.2 (the official pin: both towers' `embeddings.position_ids`
are persistent buffers there, so the released checkpoint has them) and, in the full one, the training-only
`lpips_loss.*` group (LPIPS alex, built since project_ffhq.yaml sets LPIPS_loss_weight 0.1): 2087 keys.
Values come from swapbench.methods.ghost.random_weights.random_state_dict, seeded by each official key, so the official code and the port get identical weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from swapbench.methods.diffusion.convert import SCHEDULE_BUFFERS
from swapbench.methods.ghost.random_weights import random_state_dict

GOLDEN = Path(__file__).parent / "golden"
IRSE_GAINS = {"res_layer.4.weight": 0.3}  # damps IR-SE50's residual branches (as in the goldens)


def manifest(tiny: bool = True) -> dict[str, list[int]]:
    return json.loads((GOLDEN / ("reface_tiny_manifest.json" if tiny else "reface_manifest.json")).read_text())


def random_official_state(tiny: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Official-layout state dict (LatentDiffusion keys) with seeded random values; schedule buffers zero."""
    man = manifest(tiny)
    template = {k: torch.empty(v) for k, v in man.items() if k not in SCHEDULE_BUFFERS}
    sd = random_state_dict(template, seed, IRSE_GAINS)
    sd.update({k: torch.zeros(v) for k, v in man.items() if k in SCHEDULE_BUFFERS})
    return sd


def write_lightning_checkpoint(path: Path, tiny: bool = True, seed: int = 0) -> Path:
    """A Lightning .ckpt as REFace's training writes it (state_dict plus bookkeeping entries)."""
    sd = random_official_state(tiny, seed)
    sd["lpips_loss.net.slice1.0.weight"] = torch.zeros(64, 3, 11, 11)  # training-only group, ignored
    torch.save({"epoch": 1, "global_step": 10, "pytorch-lightning_version": "1.4.2", "state_dict": sd,
                "callbacks": {}, "optimizer_states": [], "lr_schedulers": []}, path)
    return path
