"""Shared pieces of the latent-diffusion face swappers (REFace, DiffSwap), built on diffusers.

Both official repositories vendor CompVis `ldm`; swapbench runs them on diffusers' modules instead and
keeps here only what the ports share:

- `schedule`: the LDM noise schedule and DDIM timesteps expressed as a diffusers `DDIMScheduler`
  (`ldm_ddim_scheduler(linear_start, linear_end)`), with `alphas_cumprod` set to LDM's float64-computed
  values so the schedule is bit-identical to the official one, and `ddim_cfg_step`, one DDIM step of
  a classifier-free-guided eps prediction through `scheduler.step` with per-pair variance noise.
- `convert`: LDM (Lightning) checkpoint -> diffusers state dicts through diffusers' own single-file
  converters (`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`), group splitting by key
  prefix with the groups that are not used listed (the converted result is cached by the weights layer,
  `swapbench.weights.Checkpoint.converted`, keyed by the file's sha256, so a conversion runs once).
- `noise`: per-pair randomness. Every random draw of a swap (start latents, the sampled VAE posterior,
  DDIM variance noise for eta > 0) comes from that pair's own `torch.Generator`
  (`SwapMethod.pair_generator(pair_id, device)`, seeded by (run seed, pair id)); `randn_per_pair` draws
  one slice per generator and stacks them, so a swap does not depend on batch size or composition.

Heavy imports (diffusers, safetensors) happen inside the functions, never at import time.
"""

from swapbench.methods.diffusion.convert import convert_unet, convert_vae, split_groups, unwrap_lightning
from swapbench.methods.diffusion.noise import randn_per_pair, sample_diagonal_gaussian
from swapbench.methods.diffusion.schedule import (
    ddim_cfg_step,
    ldm_alphas_cumprod,
    ldm_ddim_scheduler,
    ldm_ddim_timesteps,
)

__all__ = [
    "convert_unet",
    "convert_vae",
    "split_groups",
    "unwrap_lightning",
    "ddim_cfg_step",
    "ldm_alphas_cumprod",
    "ldm_ddim_scheduler",
    "ldm_ddim_timesteps",
    "randn_per_pair",
    "sample_diagonal_gaussian",
]
