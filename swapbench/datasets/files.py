"""Protocols stored as versioned JSON files in swapbench/datasets/protocols/.

A file holds the pair list only; images are data:// URIs relative to the data set's root, so a
protocol lists (with its pair count and hash) on a machine without the data, and its hash is the
same on every machine. Two kinds of file:

- image pairs: "image_uri" (a template over {key}) and "pairs": [[target, source], ...];
  each image is its own identity.
- video pairs: "video_uri" (a template over {video}), "frames_per_video": k and
  "video_pairs": [[target video, source video], ...]; frame i of the source video goes into
  frame i of the target video, for i < k evenly spaced frames; the identity is the video.
  With "source_frame": j, every pair takes frame j of the source video instead (ReliableSwap's
  evaluation swaps the first frame of the source into each target frame).
- video clips: "video_uri", "clip_pairs": [[target video, source video], ...], "clip_frames": T,
  "clip_start" and "source_frame": every frame of frames clip_start .. clip_start + T - 1 of the target
  gets the identity of frame source_frame of the source (see swapbench.datasets.clips).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from swapbench.datasets.protocol import ImageRef, Pair, Protocol

# Package data, read through importlib.resources so it works from a wheel, a zip or a checkout.
PROTOCOL_DIR = resources.files("swapbench.datasets") / "protocols"


def protocol_names() -> list[str]:
    return sorted(p.name[:-5] for p in PROTOCOL_DIR.iterdir() if p.name.endswith(".json"))


def frame_key(video: str, i: int) -> str:
    return f"{video}_frame{i}"


def load_protocol_file(path, frames: int | None = None) -> Protocol:
    """A protocol file: a path or an importlib.resources Traversable; frames: T of a clip protocol."""
    doc = json.loads((path if hasattr(path, "read_text") else Path(path)).read_text(encoding="utf-8"))
    if "clip_pairs" in doc:
        from swapbench.datasets.clips import from_file

        return from_file(doc, frames)
    if doc.get("pairs_columns", ["target", "source"]) != ["target", "source"]:
        raise ValueError(f"{path}: pairs must be [target, source]")
    images: dict[str, ImageRef] = {}
    pairs: list[Pair] = []
    if "video_pairs" in doc:
        k = int(doc["frames_per_video"])
        source_frame = doc.get("source_frame")
        for target, source in doc["video_pairs"]:
            frames = [(target, range(k)), (source, range(k) if source_frame is None else [int(source_frame)])]
            for video, indices in frames:
                for i in indices:
                    key = frame_key(video, i)
                    images[key] = ImageRef(key, video, doc["video_uri"].format(video=video) + f"#spaced={i}/{k}")
            pairs += [Pair(source=frame_key(source, i if source_frame is None else int(source_frame)),
                           target=frame_key(target, i)) for i in range(k)]
    else:
        for target, source in doc["pairs"]:
            for key in (target, source):
                images[key] = ImageRef(key, key, doc["image_uri"].format(key=key))
            pairs.append(Pair(source=source, target=target))
    return Protocol(doc["name"], str(doc["version"]), doc["description"], images, pairs)


def packaged(name: str):
    """A PROTOCOLS entry: a function that reads the packaged protocol file `name`."""
    def make(frames: int | None = None) -> Protocol:
        return load_protocol_file(PROTOCOL_DIR / f"{name}.json", frames)

    make.__name__ = name
    return make
