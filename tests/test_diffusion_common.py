"""swapbench.methods.diffusion: the LDM schedule as a diffusers DDIMScheduler, per-pair noise, conversion cache.

The DDIM reference below is LDM's `make_ddim_timesteps('uniform')`, `make_ddim_sampling_parameters`
and `p_sample_ddim` written out from their formulas (float64 schedule cast to float32, eta = 0).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swapbench.methods.base import SwapMethod
from swapbench.methods.diffusion import (
    ddim_cfg_step,
    ldm_alphas_cumprod,
    ldm_ddim_scheduler,
    ldm_ddim_timesteps,
    randn_per_pair,
    sample_diagonal_gaussian,
    split_groups,
    unwrap_lightning,
)

pytest.importorskip("diffusers")


class _Method(SwapMethod):
    name = "test"


def pair_generator(seed, pair_id):
    """The generator a method draws a pair's noise from."""
    method = _Method()
    method.seed = seed
    return method.pair_generator(pair_id)


def _ldm_ddim(steps: int, start=0.00085, end=0.012):
    betas = np.linspace(start**0.5, end**0.5, 1000, dtype=np.float64) ** 2
    ac = torch.tensor(np.cumprod(1.0 - betas)).float()  # LDM stores the float64 cumprod as float32
    c = 1000 // steps
    ts = np.asarray(list(range(0, 1000, c))) + 1
    a = ac[ts]
    a_prev = torch.cat([ac[:1], ac[ts[:-1]]])
    return ts, a, a_prev


def test_schedule_equals_ldm():
    ts, a, a_prev = _ldm_ddim(50)
    sched = ldm_ddim_scheduler(0.00085, 0.012)
    sched.set_timesteps(50)
    assert sched.timesteps.tolist() == ts[::-1].tolist() == ldm_ddim_timesteps(50)
    assert torch.equal(sched.alphas_cumprod[torch.as_tensor(ts)], a)
    assert torch.equal(ldm_alphas_cumprod(0.00085, 0.012)[torch.as_tensor(ts)], a)
    assert float(sched.final_alpha_cumprod) == float(a_prev[0])


def test_ddim_step_equals_ldm_p_sample_ddim():
    ts, a, a_prev = _ldm_ddim(50)
    sched = ldm_ddim_scheduler(0.00085, 0.012)
    sched.set_timesteps(50)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=g)
    for i in [49, 30, 0]:  # index into LDM's ascending list
        eu, ec = torch.randn(2, *x.shape, generator=g)
        e = eu + 3.5 * (ec - eu)
        x0_ref = (x - (1 - a[i]).sqrt() * e) / a[i].sqrt()
        prev_ref = a_prev[i].sqrt() * x0_ref + (1.0 - a_prev[i]).sqrt() * e
        prev, x0 = ddim_cfg_step(sched, eu, ec, 3.5, int(ts[i]), x)
        torch.testing.assert_close(x0, x0_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(prev, prev_ref, rtol=1e-5, atol=1e-5)


def test_noise_is_per_pair():
    ids = ["p0", "p1", "p2"]
    batch = randn_per_pair([pair_generator(7, i) for i in ids], (4, 8, 8))
    alone = randn_per_pair([pair_generator(7, "p1")], (4, 8, 8))
    assert torch.equal(batch[1], alone[0])
    assert not torch.equal(batch[0], batch[1])
    assert not torch.equal(randn_per_pair([pair_generator(8, "p1")], (4, 8, 8)), alone)
    mean, logvar = torch.zeros(3, 4, 2, 2), torch.zeros(3, 4, 2, 2)
    s = sample_diagonal_gaussian(mean, logvar, [pair_generator(7, i) for i in ids])
    assert torch.equal(s[2], sample_diagonal_gaussian(mean[:1], logvar[:1], [pair_generator(7, "p2")])[0])


def test_eta_noise_comes_from_the_pair_generators():
    sched = ldm_ddim_scheduler(0.00085, 0.012)
    sched.set_timesteps(4)
    x = torch.randn(2, 4, 8, 8)
    e = torch.randn(2, 4, 8, 8)
    gens = lambda: [pair_generator(0, "a"), pair_generator(0, "b")]  # noqa: E731
    one, _ = ddim_cfg_step(sched, e, e, 1.0, 751, x, eta=1.0, generators=gens())
    two, _ = ddim_cfg_step(sched, e, e, 1.0, 751, x, eta=1.0, generators=gens())
    solo, _ = ddim_cfg_step(sched, e[1:], e[1:], 1.0, 751, x[1:], eta=1.0, generators=gens()[1:])
    assert torch.equal(one, two) and torch.equal(one[1:], solo)


def test_split_groups_and_lightning_unwrap():
    ckpt = {"state_dict": {"model.diffusion_model.a": torch.zeros(1), "model_ema.b": torch.zeros(1),
                           "first_stage_model.c": torch.zeros(1), "betas": torch.zeros(1)},
            "global_step": 3, "epoch": 1}
    sd = unwrap_lightning(ckpt)
    groups, rest = split_groups(sd, ["model.", "model.diffusion_model.", "first_stage_model."])
    assert groups["model.diffusion_model."] == {"a": sd["model.diffusion_model.a"]}
    assert set(groups["first_stage_model."]) == {"c"} and set(rest) == {"model_ema.b", "betas"}


