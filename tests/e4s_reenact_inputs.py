"""Shared inputs of the E4S reenactment tests: two real faces as 1024 uint8 crops, the reduced widths
and the seed of the random weights of the parity golden."""

from __future__ import annotations

import hashlib

import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

from swapbench.methods.e4s.facevid2vid_nets import FaceVid2VidConfig

SEED = 20260601
# Every width reduced, every code path kept. The official side is a copy of the official modules whose
# hard-coded widths are reduced to match: SPADEDecoder ic 256 -> 16, oc 64 -> 4, label_nc 256 -> 16,
# SPADE nhidden 128 -> 8, HEEstimator stage widths 256/512/1024/2048 -> 32/64/128/256.
TINY = FaceVid2VidConfig(
    num_kp=6, feature_channel=4,
    kp_block_expansion=4, kp_max_features=32, kp_num_blocks=3, kp_reshape_channel=128, kp_reshape_depth=4,
    he_block_expansion=16, he_widths=(32, 64, 128, 256),
    block_expansion=4, max_features=16, reshape_channel=4, reshape_depth=4, num_resblocks=2, spade_hidden=8,
    dm_block_expansion=4, dm_max_features=32, dm_num_blocks=3, dm_reshape_depth=4, dm_compress=2)

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
