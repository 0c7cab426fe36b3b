"""Tiny data-set trees in the real on-disk layouts, built from the bundled sample faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from swapbench.datasets import get_protocol
from swapbench.datasets.images import load_image

# Single-face sample photographs, one per fixture identity.
FACES = ["t1_person1", "t1_person2", "t1_person3", "t1_person4", "tom_hanks", "astronaut", "grace_hopper"]


def face(i: int, side: int = 256) -> np.ndarray:
    """Sample face i (cycled, mirrored on every second cycle), resized so its longer side is `side`."""
    ref = get_protocol("samples").images[FACES[i % len(FACES)]]
    im = Image.fromarray(load_image(ref.uri))
    if i // len(FACES) % 2:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = side / max(im.size)
    return np.asarray(im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS))


def square(arr: np.ndarray, side: int) -> np.ndarray:
    """Pad to a square (edge colour) and resize: FFHQ and CelebA-HQ images are square."""
    h, w = arr.shape[:2]
    n = max(h, w)
    pad = ((0, n - h), (0, n - w), (0, 0))
    return np.asarray(Image.fromarray(np.pad(arr, pad, mode="edge")).resize((side, side), Image.Resampling.LANCZOS))


def write_video(path: Path, frames, fps: int = 25, gop: int = 4) -> Path:
    """An H.264 MP4 written with PyAV; a short key-frame interval makes seeking cross several GOPs."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": str(gop), "crf": "12", "preset": "ultrafast"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def moving_frames(base: np.ndarray, n: int) -> list[np.ndarray]:
    """n frames of a face that drifts one pixel per frame, with a frame-numbered bright bar at the top."""
    out = []
    for i in range(n):
        f = np.roll(base, i, axis=1).copy()
        f[:8, :] = 0
        f[:8, BAR * i:BAR * i + BAR] = 255  # where the bar is says which frame this is
        out.append(f)
    return out


BAR = 4


def frame_number(frame: np.ndarray) -> int:
    """The frame number written by moving_frames (centre of the bright bar)."""
    bright = np.flatnonzero(frame[:8].mean(axis=(0, 2)) > 128)
    return int(round((bright.mean() - (BAR - 1) / 2) / BAR))


def celebahq_tree(root: Path, keys, side: int = 256) -> Path:
    """CelebAMask-HQ layout: CelebA-HQ-img/<N>.jpg (+ one part mask, as the real tree has)."""
    for i, key in enumerate(sorted(keys)):
        path = root / "CelebA-HQ-img" / f"{key}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(square(face(i), side)).save(path, quality=95)
        mask = root / "CelebAMask-HQ-mask-anno" / str(int(key) // 2000) / f"{int(key):05d}_skin.png"
        mask.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (32, 32), 255).save(mask)
    return root


def ffhq_tree(root: Path, keys, folder: str = "images1024x1024", side: int = 256, flat: bool = False) -> Path:
    """FFHQ layout: <folder>/<NNN00>/<NNNNN>.png in folders of 1000 (or flat)."""
    for i, key in enumerate(sorted(keys)):
        sub = "" if flat else f"{int(key) // 1000 * 1000:05d}"
        path = root / folder / sub / f"{key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(square(face(i), side)).save(path)
    return root


def ffpp_tree(root: Path, videos, n_frames: int = 12, compression: str = "c23") -> Path:
    """FaceForensics++ layout: original_sequences/youtube/<compression>/videos/<NNN>.mp4."""
    for i, video in enumerate(sorted(videos)):
        base = square(face(i), 256)
        write_video(root / "original_sequences" / "youtube" / compression / "videos" / f"{video}.mp4",
                    moving_frames(base, n_frames))
    return root


TREES = {"celebahq": lambda root, sub: celebahq_tree(root, sub.images),
         "ffhq": lambda root, sub: ffhq_tree(root, sub.images),
         "ffpp": lambda root, sub: ffpp_tree(root, {ref.identity for ref in sub.images.values()})}


def build_for_golden(data_root: Path, golden_files) -> list[Path]:
    """The fixture tree each golden file of a data-set protocol reads, under data_root/<protocol>/."""
    import json

    built = []
    for path in golden_files:
        run = json.loads(Path(path).read_text())["run"]
        if run["protocol"] in TREES:
            sub = get_protocol(run["protocol"]).subset(run.get("subset"))
            built.append(TREES[run["protocol"]](data_root / run["protocol"], sub))
    return built


if __name__ == "__main__":
    # python tests/datafixtures.py DATA_ROOT tests/golden/*.json  (then: bench check ... --data-root DATA_ROOT)
    import sys

    for tree in build_for_golden(Path(sys.argv[1]), sys.argv[2:]):
        print(f"built {tree}")
