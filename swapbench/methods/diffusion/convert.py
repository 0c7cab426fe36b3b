"""LDM checkpoints -> diffusers modules, through diffusers' own single-file converters.

An LDM (Lightning) checkpoint holds every sub-model of `LatentDiffusion` in one flat state dict, by
prefix: `model.diffusion_model.` (UNet), `model_ema.` (LitEma copy, keys without dots),
`first_stage_model.` (VAE / VQ), `cond_stage_model.` (conditioning encoder) and method-specific keys.
`split_groups` sorts the keys by prefix so a port can convert what it uses and list what it ignores
(training-only groups such as LPIPS, schedule buffers); `convert_unet` / `convert_vae` call
`diffusers.loaders.single_file_utils.convert_ldm_{unet,vae}_checkpoint`, which rename the keys (and
reshape the VAE's 1x1-conv attention into linear layers).

Converted state dicts are cached by the weights layer (`swapbench.weights.Checkpoint.converted`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

UNET_PREFIX = "model.diffusion_model."
EMA_PREFIX = "model_ema."
VAE_PREFIX = "first_stage_model."
COND_PREFIX = "cond_stage_model."
# DDPM buffers registered by LatentDiffusion.register_schedule: recomputed, never loaded.
SCHEDULE_BUFFERS = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "lvlb_weights", "logvar", "scale_factor", "cond_ids",
})


def split_groups(state: Mapping[str, torch.Tensor], prefixes: Iterable[str]) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """({prefix: {key without prefix: tensor}}, rest) for the given prefixes (longest prefix wins)."""
    order = sorted(prefixes, key=len, reverse=True)
    groups: dict[str, dict[str, torch.Tensor]] = {p: {} for p in prefixes}
    rest: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        p = next((p for p in order if k.startswith(p)), None)
        if p is None:
            rest[k] = v
        else:
            groups[p][k[len(p):]] = v
    return groups, rest


def unwrap_lightning(obj: object) -> dict[str, torch.Tensor]:
    """The model state dict of a Lightning checkpoint (`{"state_dict": ...}`) or of a plain state dict."""
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a state dict or a Lightning checkpoint, got {type(obj).__name__}")
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def convert_unet(state: Mapping[str, torch.Tensor], config: Mapping, extract_ema: bool = False) -> dict[str, torch.Tensor]:
    """`model.diffusion_model.*` (or the LitEma copy) -> `UNet2DConditionModel` keys, by diffusers' converter."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    return dict(convert_ldm_unet_checkpoint(dict(state), dict(config), extract_ema=extract_ema))


def convert_vae(state: Mapping[str, torch.Tensor], config: Mapping) -> dict[str, torch.Tensor]:
    """`first_stage_model.*` -> `AutoencoderKL` keys, by diffusers' converter (attention convs become linears)."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    only_vae = {k: v for k, v in state.items() if k.startswith(VAE_PREFIX)}
    return dict(convert_ldm_vae_checkpoint(only_vae, dict(config)))


