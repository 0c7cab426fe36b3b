"""Shared inputs of the E4S reenactment tests: two real faces as 1024 uint8 crops, the reduced widths
(facevid2vid_nets.TINY) and the seed of the random weights of the parity golden."""

from __future__ import annotations

import hashlib

import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

from swapbench.methods.e4s.facevid2vid_nets import TINY  # noqa: F401  (re-exported for the tests)

SEED = 20260601
# Square boxes (top, bottom, left, right) around scikit-image's astronaut and matplotlib's grace_hopper.
ASTRONAUT_BOX = (0, 230, 110, 340)
GRACE_HOPPER_BOX = (20, 440, 70, 490)


def face_crops_1024() -> np.ndarray:
    """[2, 1024, 1024, 3] uint8 RGB, PIL bicubic upsampling of the two boxes."""
    astronaut = skimage.data.astronaut()
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        grace = np.asarray(im.convert("RGB"))
    crops = [np.asarray(Image.fromarray(np.ascontiguousarray(img[t:b, l:r])).resize((1024, 1024), Image.BICUBIC))
             for img, (t, b, l, r) in ((astronaut, ASTRONAUT_BOX), (grace, GRACE_HOPPER_BOX))]
    return np.stack(crops)


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
