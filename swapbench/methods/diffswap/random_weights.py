"""Deterministic random weights in DiffSwap's official checkpoint layout (tests and speed benchmarks).

Each tensor depends only on (seed, key, shape) (swapbench.methods.ghost.random_weights), so the official
code and the port get the same values without storing them. The EMA copy of the UNet is drawn under its
own keys, so it differs from the raw UNet weights: a port that loaded the raw weights would fail parity.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from swapbench.methods.ghost.random_weights import random_tensor

RANDOM_PREFIXES = ("model.diffusion_model.", "model_ema.diffusion_model", "first_stage_model.", "cond_stage_model.")
# Damps the residual branches of the ArcFace IResNet (49 blocks at full size).
GAINS = {"bn3.weight": 0.2}


def random_official_state(manifest: Mapping[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """{key: tensor} for every network weight of a manifest ({key: shape} of the official state dict).

    Schedule buffers (betas, alphas_cumprod, ...) are left out (they are computed, not learnt), and so are
    LitEma's counters; model_ema.decay / num_updates are set to their initial values.
    """
    out: dict[str, torch.Tensor] = {}
    for key, shape in manifest.items():
        if key == "model_ema.decay":
            out[key] = torch.tensor(0.9999)
        elif key == "model_ema.num_updates":
            out[key] = torch.tensor(0, dtype=torch.int)
        elif key.startswith(RANDOM_PREFIXES):
            like = torch.empty(shape, device="meta", dtype=torch.long if key.endswith("num_batches_tracked") else torch.float32)
            gain = next((g for s, g in GAINS.items() if key.endswith(s) and ".face_model." in key), 1.0)
            out[key] = random_tensor(key, like, seed, gain)
    return out
