"""Face preparation: every protocol image is decoded, detected and cropped once per crop convention.

Crops are PNG files addressed by the hash of their pixels, recorded in the store with their
landmarks (crop pixels) and the image->crop transform. A crop made by one run is reused by every
later run, method and metric that needs the same (image content, convention, detector).

The detector (`face.detector`) and the multi-face policy are part of a crop's key (bench.layout.face_key),
so switching detectors or policies never reuses crops made another way.

Decoding, detection, landmarks and alignment run in `workers` processes (spawned, each with its own
detector, one torch and one OpenCV thread), in protocol order. A batched detector's network (SCRFD,
FAN) can instead run in the calling process on the device, `detect_batch` images per forward: the
workers decode and make the network inputs (and FAN's dlib HOG boxes), the calling process aligns
and writes those crops. Every store row is written by the calling process in protocol order, so crops
and rows are the same bit for bit whatever the number of workers or the batch (tests/test_scale.py).
Stored landmarks are the detector's 68 dlib-compatible points where it has them, else its own points
(5 for scrfd); methods that need 68 points fail per pair on other counts.
"""

from __future__ import annotations

import itertools
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
    """Write atomically: a killed process never leaves a half-written file under the final name.

    zlib level 1: a 256 px crop encodes in about a quarter of the default level's time (6) for files about
    12% larger; the pixels, which name and identify every file, are the same."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(arr).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def prepare(protocol, conventions, store: Store, multi_face: str = "largest", stage=None,
            detector: str = detect.DEFAULT_DETECTOR, weights_dir=None, workers: int | None = 1,
            device: str = "cpu", detect_batch: int = 1) -> dict:
    """{(image key, convention): Crop} for every image of the protocol, faces found by `detector`.

    stage: a progress stage (bench.progress) advanced per image, or None.
    workers: processes for decoding, detection and alignment (None: the number of cores; 1: in-process).
    detect_batch: for a batched detector (scrfd, face_alignment), the number of images whose network
    inputs go through one forward on `device` in this process, the rest of the work staying in the
    workers; 1: each worker runs the whole detector on the CPU, image by image."""
    # unknown name or missing model files: fail before any work
    det = detect.get_detector(detector, weights_dir, device if detect_batch > 1 else "cpu")
    keys = list(protocol.images)
    workers = min(default_workers() if workers is None else max(int(workers), 1), len(keys))
    batched = det.batched and detect_batch > 1
    jobs = ((protocol.location(key), conventions, store.files, multi_face, detector, weights_dir, batched)
            for key in keys)
    crops: dict = {}
    with _results(jobs, workers, store) as results:
        if batched:
            results = _detect_in_batches(results, det, detect_batch, store.files, multi_face)
        for key, (image_sha, work) in zip(keys, results):
            for convention, crop in _record(image_sha, work, store, detector, multi_face).items():
                crops[key, convention] = crop
            store.put_image(protocol.hash, key, image_sha)
            if stage is not None:
                stage.advance()
    return crops


def _detect_in_batches(results, det, size: int, files, multi_face):
    """(image sha, work) per image, in order, from the workers' results: the detector's network on the
    proposals of `size` images at a time, then those images' faces aligned and cropped here."""
    chunk, pending = [], 0
    for r in itertools.chain(results, [None]):
        if r is not None:
            chunk.append(r)
            pending += isinstance(r, _Pending)
            if pending < size:
                continue
        todo = [r for r in chunk if isinstance(r, _Pending)]
        outputs = iter(det.forward([r.proposal for r in todo]) if todo else [])
        for r in chunk:
            if isinstance(r, _Pending):
                faces = det.finish(r.proposal, next(outputs))
                yield r.image_sha, _crops(r.image, r.image_sha, faces, r.todo, r.out, files, det.name, multi_face)
            else:
                yield r
        chunk, pending = [], 0


@dataclass
class _Pending:
    """An image whose faces wait for the detector's network: what a worker sends back to the batch."""

    image: np.ndarray
    image_sha: str
    proposal: object
    todo: list  # conventions still to crop
    out: dict  # the conventions already settled


class _results:
    """The per-image results of _work in protocol order: in this process, or from a pool of workers.

    Workers see which (image, face key) rows exist through a read-only snapshot of the faces table
    taken before they start, so they never open the store."""

    def __init__(self, jobs, workers, store):
        self.jobs, self.workers, self.store, self.pool = jobs, workers, store, None

    def __enter__(self):
        if self.workers <= 1:
            return (_work(*job, known=_Known(self.store)) for job in self.jobs)
        import multiprocessing

        known = _snapshot(self.store)
        self.pool = multiprocessing.get_context("spawn").Pool(self.workers, _init_worker, (known,))
        return self.pool.imap(_work_in_pool, self.jobs, chunksize=1)

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate() if exc[0] else self.pool.close()
            self.pool.join()


class _Known:
    """Which (image sha, face key) already have a usable row: ok=False, or a crop whose file exists."""

    def __init__(self, store=None, rows=None):
        self.store, self.rows = store, rows

    def row(self, image_sha, key):
        if self.rows is not None:
            return self.rows.get((image_sha, key))
        row = self.store.face(image_sha, key)
        return None if row is None else (row["ok"], row["crop_sha"])


def _snapshot(store) -> dict:
    return {(sha, key): (bool(ok), crop_sha)
            for sha, key, ok, crop_sha in store.db.execute("SELECT image_sha, convention, ok, crop_sha FROM faces")}


_KNOWN: _Known | None = None


def _init_worker(rows):
    global _KNOWN
    import cv2
    import torch

    torch.set_num_threads(1)  # one core per worker: no oversubscription by the libraries' own threads
    cv2.setNumThreads(1)
    _KNOWN = _Known(rows=rows)


def _work_in_pool(job):
    return _work(*job, known=_KNOWN)


def _work(uri, conventions, files, multi_face, detector, weights_dir, batched, known):
    """One image's (image sha, {convention: ("row",) | ("unreadable", reason) | ("noface", reason) |
    ("crop", ...)}), its crop PNGs written; no store writes. With `batched`, an image that needs the
    detector comes back as a _Pending holding the detector's proposal instead."""
    try:
        image = load_image(uri)
    except ImageError as exc:
        return None, {c: ("unreadable", f"unreadable image: {exc}") for c in conventions}
    image_sha = pixel_sha(image)
    out, todo = {}, []
    for convention in conventions:
        key = face_key(convention, detector, multi_face)
        row = known.row(image_sha, key)
        if row is not None and (not row[0] or crop_path(files, key, row[1]).is_file()):
            out[convention] = ("row",)
        else:
            out[convention] = None  # filled by _crops, in this place: rows are stored in convention order
            todo.append(convention)
    if not todo:
        return image_sha, out
    det = detect.get_detector(detector, weights_dir)
    if batched:
        return _Pending(image, image_sha, det.propose(image), todo, out)
    return image_sha, _crops(image, image_sha, det.detect(image), todo, out, files, detector, multi_face)


def _crops(image, image_sha, faces, todo, out, files, detector, multi_face) -> dict:
    """`out` completed with the crop (or the reason for none) of each convention in `todo`; PNGs written."""
    for convention in todo:
        key = face_key(convention, detector, multi_face)
        try:
            face, choice = detect.pick(faces, image.shape, multi_face, detector)
        except detect.NoFaceError as exc:
            out[convention] = ("noface", str(exc))
            continue
        choice = f"{detector}: {choice}"
        # 68 dlib-compatible points where the detector has them, else its 5 (scrfd)
        points = face.landmarks68 if face.landmarks68 is not None else face.landmarks
        matrix = templates.estimate_transform(convention, points, box=face.box)
        _, size = templates.parse_convention(convention)
        crop = warp.align_image(image, matrix, size)
        sha = pixel_sha(crop)
        save_png(crop, crop_path(files, key, sha))
        # Rounded as stored, so a resumed run feeds methods exactly the same numbers.
        landmarks = np.round(templates.apply_transform(matrix, points), 3).astype(np.float32)
        out[convention] = ("crop", choice, landmarks, matrix, sha)
    return out


def _record(image_sha, work, store, detector, multi_face) -> dict:
    """Store rows and Crops of one image's results, in the order of its conventions."""
    out = {}
    for convention, (kind, *rest) in work.items():
        key = face_key(convention, detector, multi_face)
        if kind == "unreadable":
            out[convention] = Crop(False, rest[0])
        elif kind == "row":
            out[convention] = _crop_from_row(store.face(image_sha, key), store, key, image_sha)
        elif kind == "noface":
            store.put_face(image_sha, key, False, rest[0], detector=detector)
            out[convention] = Crop(False, rest[0], image_sha=image_sha)
        else:
            choice, landmarks, matrix, sha = rest
            store.put_face(image_sha, key, True, choice, landmarks, matrix, sha, detector=detector)
            out[convention] = Crop(True, choice, crop_path(store.files, key, sha), sha, landmarks, matrix, image_sha)
    return out


def _crop_from_row(row, store, convention, image_sha) -> Crop:
    if not row["ok"]:
        return Crop(False, row["reason"], image_sha=image_sha)
    return Crop(True, row["reason"], crop_path(store.files, convention, row["crop_sha"]), row["crop_sha"],
                row["landmarks"], row["matrix"], image_sha)
