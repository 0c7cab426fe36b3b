"""Shared inputs of the GHOST tests: two real face crops and the seed of the random weights."""

from __future__ import annotations

import functools
import hashlib

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

from swapbench.methods.ghost.method import random_weights

SEED = 20240601  # seed of swapbench.methods.ghost.random_weights in the parity golden

# Square boxes (top, bottom, left, right) around the faces, placed so the eyes sit near 46% of the
# crop height as in insightface's 5-point templates; resized to 224 they stand in for "ghost" crops.
ASTRONAUT_BOX = (22, 202, 130, 310)
GRACE_HOPPER_BOX = (49, 409, 93, 453)


def face_crops() -> np.ndarray:
    """[2, 224, 224, 3] uint8 RGB: scikit-image's astronaut and matplotlib's grace_hopper."""
    astronaut = skimage.data.astronaut()
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        grace = np.asarray(im.convert("RGB"))
    crops = []
    for image, (t, b, l, r) in ((astronaut, ASTRONAUT_BOX), (grace, GRACE_HOPPER_BOX)):
        crops.append(cv2.resize(np.ascontiguousarray(image[t:b, l:r]), (224, 224), interpolation=cv2.INTER_AREA))
    return np.stack(crops)


def crops_digest(crops: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(crops).tobytes()).hexdigest()


def layout_digest(state_dict) -> str:
    """sha256 of every (key, shape, dtype) of a state dict, in order."""
    text = "".join(f"{k} {tuple(v.shape)} {v.dtype}\n" for k, v in state_dict.items())
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def seeded_weights(num_blocks: int = 2) -> dict:
    """random_weights(num_blocks, SEED), made once per test session (several seconds each); do not mutate."""
    return random_weights(num_blocks, SEED)
