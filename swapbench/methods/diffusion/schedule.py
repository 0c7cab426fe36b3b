"""The LDM noise schedule and DDIM sampler as a diffusers `DDIMScheduler`.

LDM (`make_beta_schedule("linear")`) squares a float64 linspace between sqrt(linear_start) and
sqrt(linear_end): diffusers' `beta_schedule="scaled_linear"`. LDM's DDIM ('uniform' discretisation)
runs the timesteps 1, 1 + c, ..., with c = 1000 // steps, uses alphas_cumprod[0] as the last
"previous" alpha, and predicts eps: diffusers' `timestep_spacing="leading"`, `steps_offset=1`,
`set_alpha_to_one=False`, `clip_sample=False`. With those settings `DDIMScheduler.step` computes LDM's
`p_sample_ddim` (pred_x0, direction, sigma) step for step. diffusers computes alphas_cumprod in float32;
LDM in float64 then casts; `ldm_ddim_scheduler` stores LDM's values, so the two agree bit for bit.

Difference: for step counts that do not divide 1000 LDM's `make_ddim_timesteps` can return one step
more than asked (S=6 -> 7 steps; S=3 fails); diffusers returns exactly S. The official settings (50)
are identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def ldm_alphas_cumprod(linear_start: float, linear_end: float, num_train_timesteps: int = 1000) -> torch.Tensor:
    """LDM's alphas_cumprod: float64 "linear" (squared linspace) betas, cumprod, cast to float32."""
    betas = torch.linspace(linear_start**0.5, linear_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).to(torch.float32)


def ldm_ddim_timesteps(steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """The timesteps diffusers runs for `steps` (descending); LDM's 'uniform' ones where it has S of them."""
    c = num_train_timesteps // steps
    return [i * c + 1 for i in range(steps)][::-1]


def ldm_ddim_scheduler(linear_start: float, linear_end: float, num_train_timesteps: int = 1000):
    """A diffusers DDIMScheduler with an LDM model's schedule (e.g. 0.00085, 0.012 for SD-1.x based models)."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_start=linear_start,
        beta_end=linear_end,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )
    ac = ldm_alphas_cumprod(linear_start, linear_end, num_train_timesteps)
    sched.alphas_cumprod = ac
    sched.final_alpha_cumprod = ac[0].clone()
    return sched


def ddim_cfg_step(
    scheduler,
    eps_uncond: torch.Tensor,
    eps_cond: torch.Tensor,
    guidance_scale: float,
    t: int,
    latents: torch.Tensor,
    eta: float = 0.0,
    generators: Sequence[torch.Generator] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step on a classifier-free-guided eps: returns (x_prev, pred_x0), both [B, C, H, W].

    eps = eps_uncond + s * (eps_cond - eps_uncond), as LDM's sampler. For eta > 0 the variance noise of
    row i comes from generators[i] (LDM draws it from the global RNG at every step, even at eta = 0;
    swapbench draws only when it is used).
    """
    from swapbench.methods.diffusion.noise import randn_per_pair

    eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
    variance_noise = None
    if eta > 0:
        if generators is None:
            raise ValueError("eta > 0 needs one generator per pair")
        variance_noise = randn_per_pair(generators, latents.shape[1:], device=latents.device, dtype=latents.dtype)
    out = scheduler.step(eps, t, latents, eta=eta, variance_noise=variance_noise, return_dict=True)
    return out.prev_sample, out.pred_original_sample
