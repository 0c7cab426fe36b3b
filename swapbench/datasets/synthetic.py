"""The synthetic video fixture: a bundled photograph moved by a small smooth affine motion and a
lighting change, written losslessly with PyAV, for tests and CI without FaceForensics++.

Deterministic (no random numbers): frame t of T is the photo rotated by 3 deg * sin(2 pi t / T), scaled by
1 + 0.03 sin(...), shifted by (6, 4) px * sin(...) and multiplied by a gain 1 + 0.08 sin(...), each with
its own phase, so head motion and lighting are slow and smooth, as in a talking-head video. With
`motion=0` and `lighting=0` every frame is the photo itself (a static clip: no jitter, no flicker).

`write_fixture(folder)` writes a `folder_video:` folder: the target video `grace_hopper.mkv` (FFV1, lossless)
and two source photographs, `astronaut.png` and `tom_hanks.png`.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from swapbench.datasets.images import load_image
from swapbench.datasets.samples import _SINGLE
from swapbench.datasets.video import write_video

FRAMES = 24
SIZE = 256
FPS = 25
TARGET = "grace_hopper"
SOURCES = ("astronaut", "tom_hanks")
# grace_hopper.jpg is 512x600 with the face in its upper middle: a square around the face
_FACE_BOX = (96, 40, 416, 360)


def base_frame() -> np.ndarray:
    l, t, r, b = _FACE_BOX
    photo = load_image(_SINGLE[TARGET])[t:b, l:r]
    return cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def frame_transform(t: int, frames: int = FRAMES, motion: float = 1.0) -> np.ndarray:
    """The 2x3 affine of frame t: rotation and scale about the centre, then a shift."""
    phase = 2 * math.pi * t / frames
    angle = 3.0 * motion * math.sin(phase)
    scale = 1 + 0.03 * motion * math.sin(phase + 1.0)
    m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), angle, scale)
    m[:, 2] += motion * np.array([6.0 * math.sin(phase + 2.0), 4.0 * math.sin(phase + 0.5)])
    return m


def gain(t: int, frames: int = FRAMES, lighting: float = 1.0) -> float:
    return 1 + 0.08 * lighting * math.sin(2 * math.pi * t / frames + 0.3)


def clip_frames(frames: int = FRAMES, motion: float = 1.0, lighting: float = 1.0) -> list[np.ndarray]:
    base = base_frame().astype(np.float32)
    out = []
    for t in range(frames):
        moved = cv2.warpAffine(base, frame_transform(t, frames, motion), (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        out.append(np.clip(np.rint(moved * gain(t, frames, lighting)), 0, 255).astype(np.uint8))
    return out


def write_fixture(folder: str | Path, frames: int = FRAMES, motion: float = 1.0, lighting: float = 1.0) -> Path:
    """A folder_video: folder with the target clip and the source photographs; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder / f"{TARGET}.mkv", clip_frames(frames, motion, lighting), FPS, codec="ffv1")
    from PIL import Image

    for name in SOURCES:
        Image.fromarray(load_image(_SINGLE[name])).save(folder / f"{name}.png")
    return folder
