"""Shared inputs of the FaceShifter / ReliableSwap tests: two real 256 face crops, the weight seed and the
seeded random weights, drawn once per test process."""

from __future__ import annotations

import functools

import cv2
import numpy as np
from ghost_inputs import ASTRONAUT_BOX, GRACE_HOPPER_BOX, crops_digest, layout_digest  # noqa: F401
from ghost_inputs import face_crops as _ghost_crops

SEED = 20240607  # seed of swapbench.methods.faceshifter.random_weights in the parity golden


def face_crops() -> np.ndarray:
    """[2, 256, 256, 3] uint8 RGB: astronaut and grace_hopper, the GHOST test faces resized to 256."""
    return np.stack([cv2.resize(c, (256, 256), interpolation=cv2.INTER_CUBIC) for c in _ghost_crops()])


@functools.cache
def seeded_weights() -> dict:
    """random_weights(SEED): {file name: state dict} of every file (seconds to draw); do not mutate."""
    from swapbench.methods.faceshifter.method import random_weights

    return random_weights(SEED)
