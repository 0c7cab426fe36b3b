"""Shared inputs of the DiffSwap tests: two real 256 face crops, their dlib landmarks, the random-weight seed.

The parity golden (tests/golden/diffswap_parity.npz) stores the landmarks and a digest of the crops; the
crops themselves are rebuilt here from images that ship with scikit-image and matplotlib.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from tests.ghost_inputs import crops_digest, face_crops  # noqa: F401 - re-exported

GOLDEN = Path(__file__).parent / "golden"
SEED = 20241119  # seed of the random weights in the parity golden
NOISE_SEED = 1234  # torch.manual_seed before the official sampler (the port: a Generator with this seed)
STEPS = 5  # DDIM steps of the parity run: LDM's uniform discretisation gives exactly 5 (t = 801 ... 1)


def crops256() -> np.ndarray:
    """[2, 256, 256, 3] uint8 RGB: astronaut and grace_hopper, as 256 crops."""
    return np.stack([cv2.resize(c, (256, 256), interpolation=cv2.INTER_CUBIC) for c in face_crops()])


def landmarks256(crops: np.ndarray) -> np.ndarray:
    """[N, 68, 2] dlib landmarks (HOG detector, the 68-point model of face_recognition_models) of 256 crops."""
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    out = []
    for img in crops:
        box = max(detector(img, 1), key=lambda r: r.area())
        shape = predictor(img, box)
        out.append([(p.x, p.y) for p in shape.parts()])
    return np.asarray(out, np.float64)


def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "diffswap_parity.npz") as z:
        return dict(z)


def manifest(name: str) -> dict[str, list[int]]:
    return json.loads((GOLDEN / name).read_text())


def template(name: str) -> dict[str, torch.Tensor]:
    """Meta tensors with the keys and shapes of an official state dict manifest."""
    return {k: torch.empty(v, device="meta") for k, v in manifest(name).items()}


@functools.cache
def tiny_official_state() -> dict[str, torch.Tensor]:
    """Random weights in the official layout of the tiny model (the parity golden's weights); do not mutate."""
    from swapbench.methods.diffswap.random_weights import random_official_state

    return random_official_state(manifest("diffswap_tiny_manifest.json"), SEED)
