"""Deterministic random FaceVid2Vid checkpoints in the official layout, for parity tests, loading tests
and speed benchmarks without the real file (whose official link is dead).

`random_checkpoint(config, seed)` is the dict the official training checkpoint holds for the three
networks E4S loads: raw spectral-norm keys (`weight_orig`, `weight_u`, `weight_v`) in the SPADE blocks,
the anti-aliasing kernel buffer as the official module computes it. Values come from
swapbench.methods.ghost.random_weights (seeded by key), so the official modules get the same tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from swapbench.methods.e4s.facevid2vid_nets import VOX_256, FaceVid2VidConfig
from swapbench.methods.e4s.reenact import MODULES, build_networks, checkpoint_layout, spectral_norm_convs
from swapbench.methods.ghost.random_weights import random_state_dict

# Damped last norms of the residual branches and small heads keep the deep estimator's activations,
# the keypoints and the head-pose softmaxes in an informative range.
NORM_GAINS = {"norm3.weight": 0.3}
HEAD_SCALE = {"fc_t.weight": 0.5, "fc_exp.weight": 0.5, "fc_roll.weight": 40.0, "fc_pitch.weight": 40.0,
              "fc_yaw.weight": 40.0}


def random_checkpoint(config: FaceVid2VidConfig = VOX_256, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    with torch.device("meta"):
        nets = build_networks(config)
    checkpoint = {}
    for name in MODULES:
        net = nets[name]
        template = {k: torch.empty(s) for k, s in checkpoint_layout(name, net).items()}
        template.update({k: v for k, v in net.state_dict().items() if not v.is_floating_point()})  # int64 counters
        state = random_state_dict(template, seed=seed + MODULES.index(name), norm_gains=NORM_GAINS)
        for key, scale in HEAD_SCALE.items():
            if key in state:
                state[key] = state[key] * scale
        if name == "kp_detector":
            state["down.weight"] = type(net.down)(3, config.kp_scale_factor).weight
        for conv in spectral_norm_convs(net) if name == "generator" else ():
            # u, v as one power iteration leaves them: unit v, u = W v / |W v|, so sigma > 0
            w = state[f"{conv}.weight_orig"].reshape(state[f"{conv}.weight_orig"].shape[0], -1)
            v = F.normalize(state[f"{conv}.weight_v"], dim=0)
            state[f"{conv}.weight_v"], state[f"{conv}.weight_u"] = v, F.normalize(w @ v, dim=0)
        checkpoint[name] = state
    return checkpoint
