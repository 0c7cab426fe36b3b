"""DiffSwap's target-guided DDIM sampler (ldm/models/diffusion/ddim.py of wl-zhao/DiffSwap), on diffusers.

Timesteps and alphas_cumprod come from a diffusers `DDIMScheduler` configured as LDM's DDIM ("uniform"
discretisation = diffusers' "leading" spacing with steps_offset=1; alphas_prev of the last step is
alphas_cumprod[0], i.e. set_alpha_to_one=False). The step itself is written by hand because the official
update differs from `DDIMScheduler.step`:

    pred_x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t)
    e'      = e - s sqrt(a_t) (pred_x0 - x0)                 target guidance, s = tgt_scale
    x_prev  = sqrt(a_prev) pred_x0 + sqrt(1 - a_prev) e'      pred_x0 is NOT recomputed from e'

`step(e')` would recompute pred_x0 from the guided noise (off by ~5e-2 after one step). Before every
model call the known region is re-noised from the target latent (x = q_sample(x0, t)*mask + x*(1-mask)).

Noise: each pair has its own torch.Generator. Per pair and in this order, the official code draws the
start noise, then at every step the q_sample noise of the blend and the eta=0 noise of the DDIM step
(multiplied by sigma = 0, but drawn); the port draws the same tensors in the same order so that, at batch
size 1 on the CPU, a generator seeded like the official global RNG gives the official latents.

alphas_cumprod are LDM's (float64 cumprod stored as float32; swapbench.methods.diffusion.schedule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

LINEAR_START, LINEAR_END, TRAIN_STEPS = 0.0015, 0.0195, 1000


def scheduler(steps: int):
    """The shared LDM DDIMScheduler (LDM's alphas_cumprod) with DiffSwap's schedule, set to `steps`."""
    from swapbench.methods.diffusion.schedule import ldm_ddim_scheduler

    sch = ldm_ddim_scheduler(LINEAR_START, LINEAR_END, TRAIN_STEPS)
    sch.set_timesteps(steps)
    return sch


def _randn(shape: Sequence[int], generators: Sequence[torch.Generator], device) -> torch.Tensor:
    from swapbench.methods.diffusion.noise import randn_per_pair

    return randn_per_pair(generators, shape, device=device)


@torch.no_grad()
def guided_ddim(
    denoise: Callable[[torch.Tensor, int], torch.Tensor],
    x0: torch.Tensor,
    keep: torch.Tensor,
    generators: Sequence[torch.Generator],
    steps: int = 200,
    tgt_scale: float = 0.01,
) -> torch.Tensor:
    """Sample latents [B,C,H,W]. x0: target latents; keep: [B,1,H,W] 1 = known region (the target's).

    denoise(x, t) -> predicted noise. generators: one per pair (see the module docstring).
    """
    sch = scheduler(steps)
    ac = sch.alphas_cumprod.to(x0.device)
    shape = x0.shape[1:]
    x = _randn(shape, generators, x0.device)
    ratio = TRAIN_STEPS // steps
    for t in sch.timesteps.tolist():
        a_t = ac[t]
        a_prev = ac[t - ratio] if t - ratio >= 0 else ac[0]
        blend_noise = _randn(shape, generators, x0.device)
        known = a_t.sqrt() * x0 + (1.0 - a_t).sqrt() * blend_noise  # LDM q_sample(x0, t)
        x = known * keep + (1.0 - keep) * x
        e = denoise(x, t)
        pred_x0 = (x - (1.0 - a_t).sqrt() * e) / a_t.sqrt()
        e = e - tgt_scale * a_t.sqrt() * (pred_x0 - x0)
        x = a_prev.sqrt() * pred_x0 + (1.0 - a_prev).sqrt() * e
        _randn(shape, generators, x0.device)  # the eta = 0 step noise: drawn, times sigma = 0
    return x
