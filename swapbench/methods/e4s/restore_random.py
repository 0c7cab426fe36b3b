"""Deterministic random weights for the restoration networks, in the official layouts (tests, benchmarks).

Values come from swapbench's shared (seed, key) scheme (ghost.random_weights, stylegan2.random_weights),
so the official modules loaded with the same dicts compute the same thing. RetinaFace's class head is
biased so that a few anchors of the coarsest level score above 0.9 (with plain random weights no face
would pass the threshold and the face branch, crop, GPEN, mask and paste, would go untested), and its
box and landmark heads are damped so that boxes and points stay near their anchors.
"""

from __future__ import annotations

import torch

from swapbench.methods.ghost.random_weights import random_state_dict
from swapbench.methods.stylegan2 import random_generator_state

# (background, face) logit biases: +-FACE_BIAS on RetinaFace's stride-32 class head (on a 256 image
# about 4 of its 128 anchors pass 0.9), -+NO_FACE_BIAS on the finer levels, where none should fire
FACE_BIAS = 1.0
NO_FACE_BIAS = 6.0
HEAD_GAIN = 0.3


def restore_random_states(nets, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Random state dicts for (RRDBNet, RetinaFace, FullGenerator, ParseNet) (any sizes; modules may be
    on the meta device), keyed "sr", "detector", "gpen", "parser"."""
    sr, detector, gpen, parser = (n.state_dict() for n in nets)
    det = random_state_dict(detector, seed, {"bn3.weight": 0.2})
    for level in range(3):
        w, b = f"ClassHead.{level}.conv1x1.weight", f"ClassHead.{level}.conv1x1.bias"
        det[w] = det[w] * 0.5
        face = FACE_BIAS if level == 2 else -NO_FACE_BIAS
        det[b] = torch.tensor([-face, face] * (det[b].numel() // 2)) + det[b]
        for head in ("BboxHead", "LandmarkHead"):
            det[f"{head}.{level}.conv1x1.weight"] = det[f"{head}.{level}.conv1x1.weight"] * HEAD_GAIN
    return {
        "sr": random_state_dict(sr, seed),
        "detector": det,
        "gpen": random_generator_state(gpen, seed),
        "parser": random_state_dict(parser, seed),
    }
