"""Face preparation: every protocol image is decoded, detected and cropped once per crop convention.

Crops are PNG files addressed by the hash of their pixels, recorded in the store with their
landmarks (crop pixels) and the image->crop transform. A crop made by one run is reused by every
later run, method and metric that needs the same (image content, convention, detector).

The detector (`face.detector`) and the multi-face policy are part of a crop's key (bench.layout.face_key),
so switching detectors or policies never reuses crops made another way.
Stored landmarks are the detector's 68 dlib-compatible points where it has them, else its own points
(5 for scrfd); methods that need 68 points fail per pair on other counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from swapbench.bench.layout import crop_path, face_key
from swapbench.bench.store import Store
from swapbench.datasets.images import ImageError, load_image, pixel_sha
from swapbench.faces import detect, templates, warp


@dataclass
class Crop:
    ok: bool
    reason: str | None  # why there is no crop; for a crop, the multi-face choice
    path: Path | None = None
    sha: str | None = None
    landmarks: np.ndarray | None = None
    matrix: np.ndarray | None = None
    image_sha: str | None = None


def save_png(arr: np.ndarray, path: Path) -> None:
    """Write atomically: a killed process never leaves a half-written file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(arr).save(tmp, format="PNG")
    os.replace(tmp, path)


def prepare(protocol, conventions, store: Store, multi_face: str = "largest", stage=None,
            detector: str = detect.DEFAULT_DETECTOR, weights_dir=None) -> dict:
    """{(image key, convention): Crop} for every image of the protocol, faces found by `detector`.

    stage: a progress stage (bench.progress) advanced per image, or None."""
    detect.get_detector(detector, weights_dir)  # unknown name or missing model files: fail before any work
    crops: dict = {}
    for key in protocol.images:
        for convention, crop in _prepare_image(protocol.location(key), conventions, store, multi_face,
                                                 detector, weights_dir).items():
            crops[key, convention] = crop
        store.put_image(protocol.hash, key, crop.image_sha)
        if stage is not None:
            stage.advance()
    return crops


def _prepare_image(uri, conventions, store, multi_face, detector=detect.DEFAULT_DETECTOR, weights_dir=None) -> dict:
    try:
        image = load_image(uri)
    except ImageError as exc:
        return {c: Crop(False, f"unreadable image: {exc}") for c in conventions}
    image_sha = pixel_sha(image)
    out, faces = {}, None
    for convention in conventions:
        key = face_key(convention, detector, multi_face)
        row = store.face(image_sha, key)
        if row is not None and (not row["ok"] or crop_path(store.files, key, row["crop_sha"]).is_file()):
            out[convention] = _crop_from_row(row, store, key, image_sha)
            continue
        if faces is None:
            faces = detect.detect(image, detector, weights_dir)
        try:
            face, choice = detect.pick(faces, image.shape, multi_face, detector)
        except detect.NoFaceError as exc:
            store.put_face(image_sha, key, False, str(exc), detector=detector)
            out[convention] = Crop(False, str(exc), image_sha=image_sha)
            continue
        choice = f"{detector}: {choice}"
        # 68 dlib-compatible points where the detector has them, else its 5 (scrfd)
        points = face.landmarks68 if face.landmarks68 is not None else face.landmarks
        matrix = templates.estimate_transform(convention, points, box=face.box)
        _, size = templates.parse_convention(convention)
        crop = warp.align_image(image, matrix, size)
        sha = pixel_sha(crop)
        save_png(crop, crop_path(store.files, key, sha))
        # Rounded as stored, so a resumed run feeds methods exactly the same numbers.
        landmarks = np.round(templates.apply_transform(matrix, points), 3).astype(np.float32)
        store.put_face(image_sha, key, True, choice, landmarks, matrix, sha, detector=detector)
        out[convention] = Crop(True, choice, crop_path(store.files, key, sha), sha, landmarks, matrix, image_sha)
    return out


def _crop_from_row(row, store, convention, image_sha) -> Crop:
    if not row["ok"]:
        return Crop(False, row["reason"], image_sha=image_sha)
    return Crop(True, row["reason"], crop_path(store.files, convention, row["crop_sha"]), row["crop_sha"],
                row["landmarks"], row["matrix"], image_sha)
