"""Deterministic random weights in the official E4S checkpoint layout (parity goldens, end-to-end tests,
speed benchmark).

Each tensor comes from its own generator seeded by (seed, key) (swapbench.methods.ghost.random_weights),
so the official Net3 and this port get identical values. The harness that ran the official code for
tests/golden/e4s_*.npz imports these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

from swapbench.methods.e4s.rgi import ENCODER_WIDTHS, REMAINING_LAYERS, RGI, TINY
from swapbench.methods.ghost.random_weights import _generator, random_state_dict
from swapbench.methods.stylegan2 import random_generator_state



# (background, face) logit shift of the tiny model's RetinaFace class heads: with restore_random's bias
# hundreds of anchors of a 1024 image pass 0.9 (minutes of GPEN on CPU); with this about one does
TINY_FACE_DAMP = 3.5


@lru_cache(maxsize=2)
def rgi_state(generator_size: int = 1024, remaining_layers: int = REMAINING_LAYERS,
              encoder_widths: Sequence[int] = ENCODER_WIDTHS, generator_channels: int | None = None,
              seed: int = 0) -> dict[str, torch.Tensor]:
    """Random Net3 state dict (no `module.` prefix); cached: treat as read-only (loading copies it)."""
    with torch.device("meta"):
        net = RGI(generator_size, remaining_layers, encoder_widths, generator_channels)
    template = net.state_dict()
    gen = {k: v for k, v in template.items() if k.startswith("G.")}
    rest = {k: v for k, v in template.items() if not k.startswith("G.")}
    state = random_state_dict(rest, seed)
    for key, like in rest.items():
        g = _generator(seed, key)
        if like.ndim == 1 and key.startswith("encoder."):  # PReLU slopes
            state[key] = 0.25 + 0.05 * torch.randn(like.shape, generator=g)
        elif key.startswith("MLPs.") and key.endswith("weight"):  # EqualLinear: unit variance, scaled at run time
            state[key] = torch.randn(like.shape, generator=g)
    state.update(random_generator_state(gen, seed))
    return state


def latent_avg(n_latent: int = 18, seed: int = 0) -> torch.Tensor:
    return 0.5 * torch.randn(n_latent, 512, generator=_generator(seed, "latent_avg"))


def official_checkpoint(generator_size: int = 1024, remaining_layers: int = REMAINING_LAYERS,
                        encoder_widths: Sequence[int] = ENCODER_WIDTHS, generator_channels: int | None = None,
                        seed: int = 0) -> dict[str, object]:
    """iteration_300000.pt as the official training saves it (coach.py): `state_dict` with the
    DataParallel `module.` prefix, `state_dict_ema` (the same tensors here), `opts`, `latent_avg`."""
    state = {f"module.{k}": v for k, v in rgi_state(generator_size, remaining_layers, encoder_widths, generator_channels,
                                                                seed).items()}
    n_latent = 2 * generator_size.bit_length() - 4
    return {"state_dict": state, "state_dict_ema": dict(state), "latent_avg": latent_avg(n_latent, seed),
            "opts": {"out_size": generator_size, "remaining_layer_idx": remaining_layers, "num_seg_cls": 12,
                     "fsencoder_type": "psp", "start_from_latent_avg": True, "learn_in_w": False}}


def parity_images(seed: int = 0, size: int = 256, n: int = 2) -> torch.Tensor:
    """[n, 3, size, size] smooth random images in [0, 1] (low-res noise, bilinearly enlarged)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(size // 16, 2), max(size // 16, 2), generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def parity_labels(seed: int = 0, size: int = 64, n: int = 2, drop: Sequence[int] = (10, 11)) -> torch.Tensor:
    """[n, size, size] blocky random seg12 label maps (8 x 8 cells), without the classes in `drop`
    (glasses and earrings are often absent: the absent-region paths run)."""
    g = torch.Generator().manual_seed(seed + 1)
    keep = torch.tensor([c for c in range(12) if c not in drop])
    cells = keep[torch.randint(len(keep), (n, size // 8, size // 8), generator=g)]
    return cells.repeat_interleave(8, 1).repeat_interleave(8, 2)


def parser_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random BiSeNet weights (79999_iter.pth layout)."""
    from swapbench.faces.parsing import BiSeNet

    with torch.device("meta"):
        net = BiSeNet()
    return random_state_dict(net.state_dict(), seed)


def method_state(model: str = "tiny", seed: int = 0, reenact: bool = False, restore: bool = False
                 ) -> dict[str, object]:
    """{WeightFile.name: contents} of the files `e4s` needs with these options, each in its official layout
    (torch.save them under their file names for a run); model "tiny": the reduced RGI, FaceVid2Vid and
    restoration networks of e4s.model=tiny."""
    from swapbench.faces.parsing import WEIGHTS as PARSER_WEIGHTS
    from swapbench.methods.e4s.method import E4S_WEIGHTS

    config = TINY if model == "tiny" else {}
    state = {E4S_WEIGHTS.name: official_checkpoint(**config, seed=seed), PARSER_WEIGHTS.name: parser_state(seed)}
    if reenact:
        from swapbench.methods.e4s import facevid2vid_nets
        from swapbench.methods.e4s.facevid2vid_random import random_checkpoint
        from swapbench.methods.e4s.reenact import FACEVID2VID_WEIGHTS

        reenact_config = facevid2vid_nets.TINY if model == "tiny" else facevid2vid_nets.VOX_256
        state[FACEVID2VID_WEIGHTS.name] = random_checkpoint(reenact_config, seed)
    if restore:
        from swapbench.methods.e4s import restore as r
        from swapbench.methods.e4s.restore_random import restore_random_states

        with torch.device("meta"):
            nets = r.build_reduced(**(r.REDUCED if model == "tiny" else {}))
        states = restore_random_states(nets, seed)
        if model == "tiny":  # RetinaFace sees the 4x upscaled 256 face (1024 px): keep its faces to a few
            for level in range(3):
                key = f"ClassHead.{level}.conv1x1.bias"
                bias = states["detector"][key]
                states["detector"][key] = bias - torch.tensor([-1.0, 1.0]).repeat(bias.numel() // 2) * TINY_FACE_DAMP
        state[r.GPEN_WEIGHTS.name] = states["gpen"]
        state[r.REALESRNET_WEIGHTS.name] = {"params_ema": states["sr"]}  # as realesrnet_x4.pth
        state[r.RETINAFACE_WEIGHTS.name] = {f"module.{k}": v for k, v in states["detector"].items()}  # DataParallel
        state[r.PARSENET_WEIGHTS.name] = states["parser"]
    return state
