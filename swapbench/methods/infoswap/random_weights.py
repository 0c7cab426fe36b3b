"""Deterministic random weights in the official InfoSwap file layouts, and seeded parity inputs.

For the parity goldens (the harness that ran the official code imports these functions, so both sides
hold bit-identical values), the end-to-end test and the speed benchmark. Each tensor comes from its own
generator seeded by (seed, key) (swapbench.methods.ghost.random_weights). The smoothing kernels hold 1,
as the official constructor writes them; the read-out statistics are random in the official format.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from swapbench.methods.ghost.random_weights import _generator, random_state_dict
from swapbench.methods.infoswap.nets import AII512, IIB, MAP_CHANNELS, MAP_SIDES, READOUTS, AttributeDecoder, Encoder128

# Damps the IR-SE residual branches (the last BatchNorm before SE) so 24 units keep activations of order one.
ENCODER_GAINS = {"res_layer.4.weight": 0.2}
STATS_SAMPLES = 20001  # n_samples of the released statistics


def _meta_state(make) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return make().state_dict()


@lru_cache(maxsize=4)
def model_states(mode: str = "smooth", seed: int = 0, div: int = 1) -> dict[str, dict[str, torch.Tensor]]:
    """{"G", "E", "I", "encoder"}: random state dicts (cached: treat as read-only); div: channel divisor."""
    iib = random_state_dict(_meta_state(lambda: IIB(mode == "smooth", div)), seed)
    for k in iib:
        if k.endswith(".smooth.conv.weight"):
            iib[k] = torch.ones_like(iib[k])
    return {
        "G": random_state_dict(_meta_state(lambda: AII512(div)), seed),
        "E": random_state_dict(_meta_state(lambda: AttributeDecoder(div)), seed),
        "I": iib,
        "encoder": random_state_dict(_meta_state(lambda: Encoder128(div)), seed, ENCODER_GAINS),
    }


def readout_state(i: int, seed: int = 0, div: int = 1) -> dict[str, torch.Tensor]:
    """Statistics of encoder map i as the official files hold them: m, s (sum of squared deviations),
    n_samples [1] and neuron_nonzero (int64); about 5% of the neurons inactive."""
    shape = (MAP_CHANNELS[i] // div, MAP_SIDES[i], MAP_SIDES[i])
    g = _generator(seed, f"readout_layer{i}")
    n = STATS_SAMPLES
    std = 0.2 + torch.rand(shape, generator=g)
    return {
        "m": 0.3 * torch.randn(shape, generator=g),
        "s": std**2 * (n - 1),
        "n_samples": torch.tensor([n]),
        "neuron_nonzero": torch.where(torch.rand(shape, generator=g) < 0.05, 100, n - 5).long(),
    }


def method_state(mode: str = "smooth", seed: int = 0, div: int = 1) -> dict[str, object]:
    """{WeightFile.name: contents} for `InfoSwap.load_weights`."""
    from swapbench.methods.infoswap.method import ENCODER_FILE, READOUT_FILES, model_files

    states = model_states(mode, seed, div)
    out = {wf.name: states[part] for part, wf in model_files(mode).items()}
    out[ENCODER_FILE.name] = states["encoder"]
    out.update({wf.name: readout_state(i, seed, div) for i, wf in enumerate(READOUT_FILES)})
    return out


def parity_images(seed: int = 0, size: int = 512, n: int = 2) -> torch.Tensor:
    """[n, 3, size, size] smooth random images in [0, 1] (low-res noise, bilinearly enlarged)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 32, size // 32, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
