"""Video protocols: clips of T consecutive frames, every frame of the target clip swapped with one
fixed frame (or photograph) of the source.

A clip is a list of frame pairs (one Pair per frame, in frame order), so clips go through the same
face preparation, swap and store as still pairs, and a run resumes frame by frame. Frame images are
`<video>#frame=i` URIs decoded with PyAV (swapbench.datasets.video), hashed and cached like images.
Key names: frame i of video V is `V_frame<i>`; the pair of target frame i of clip C is
`V_frame<i>__<source key>`; clip ids are `<target>_<source>` (FF++'s name of the manipulated video).

`ffpp_video` (protocols/ffpp_video.json): the FaceSwap manipulation pairs of FF++'s test split, K clips of
T frames; `--subset K` takes K clips, `video.frames=T` (default the file's `clip_frames`) the first T.
`folder_video:DIR`: every photograph of DIR (a source; identity = its file name) with every video of
DIR (a target clip of its first T frames, fewer when the video is shorter).
"""

from __future__ import annotations

from pathlib import Path

from swapbench.datasets.layouts import fixed_locator
from swapbench.datasets.protocol import DATA_SCHEME, DataError, ImageRef, Pair, Protocol
from swapbench.datasets.user import IMAGE_SUFFIXES, image_key
from swapbench.datasets.video import VIDEO_SUFFIXES, VideoError, frame_count, frame_rate

DEFAULT_FRAMES = 32


def frame_key(video: str, i: int) -> str:
    return f"{video}_frame{i}"


def clip_protocol(name: str, version: str, description: str, clip_pairs, video_uri: str, frames: int,
                  start: int = 0, source_frame: int | None = 0, source_uri: str | None = None,
                  fps: float | None = None, identities: dict | None = None) -> Protocol:
    """clip_pairs: (target video, source, frames of this clip or None for `frames`).
    The source is frame `source_frame` of the source video, or the image source_uri.format(source=...)."""
    if frames < 1 or start < 0:
        raise ValueError(f"protocol {name}: clips need at least one frame and a start >= 0 (got {frames}, {start})")
    images: dict[str, ImageRef] = {}
    pairs: list[Pair] = []
    clips: dict[str, list[str]] = {}
    identity = (identities or {}).get
    for target, source, length in clip_pairs:
        if source_uri is None:
            source_key = frame_key(source, source_frame)
            images[source_key] = ImageRef(source_key, identity(source, source),
                                          video_uri.format(video=source) + f"#frame={source_frame}")
        else:
            source_key = source
            images[source_key] = ImageRef(source_key, identity(source, source), source_uri.format(source=source))
        clip = []
        for i in range(start, start + (length or frames)):
            key = frame_key(target, i)
            images[key] = ImageRef(key, identity(target, target), video_uri.format(video=target) + f"#frame={i}")
            pair = Pair(source=source_key, target=key)
            pairs.append(pair)
            clip.append(pair.pair_id)
        clips[f"{target}_{source}"] = clip
    return Protocol(name, version, description, images, pairs, clips=clips, fps=fps)


def from_file(doc: dict, frames: int | None = None) -> Protocol:
    """A packaged video protocol file (see protocols/README.md), with T = frames or the file's clip_frames."""
    t = int(frames or doc["clip_frames"])
    version = str(doc["version"]) + ("" if t == int(doc["clip_frames"]) else f"+T{t}")
    return clip_protocol(doc["name"], version, doc["description"],
                         [(target, source, None) for target, source in doc["clip_pairs"]],
                         doc["video_uri"], t, int(doc.get("clip_start", 0)), int(doc.get("source_frame", 0)),
                         fps=doc.get("fps"))


def folder_video_protocol(folder: str | Path, frames: int | None = None) -> Protocol:
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"folder {root} not found")
    files = sorted(p for p in root.iterdir() if p.is_file())
    photos = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if not photos or not videos:
        raise DataError(f"folder {root}: a folder_video: protocol needs source photographs "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))}) and target videos ({', '.join(sorted(VIDEO_SUFFIXES))}) "
                        f"side by side; found {len(photos)} photographs and {len(videos)} videos")
    t = int(frames or DEFAULT_FRAMES)
    lengths = {}
    for v in videos:
        try:
            lengths[image_key(Path(v.name))] = (v.name, min(t, frame_count(v)))
        except (VideoError, OSError) as exc:
            raise DataError(f"{v}: not a readable video ({exc})") from None
    sources = {image_key(Path(p.name)): p.name for p in photos}
    clip_pairs = [(target, source, n) for target, (_, n) in lengths.items() for source in sources if source != target]
    if not clip_pairs:
        raise DataError(f"folder {root}: every photograph has the name of the video, so there is no pair to swap")
    # URIs are relative to the folder (data://user/...), so the hash does not depend on where it is
    names = {key: name for key, (name, _) in lengths.items()}
    protocol = clip_protocol(
        f"folder_video-{root.name}", "1", f"every photograph x every video of {root.name}/, clips of up to {t} frames",
        clip_pairs, DATA_SCHEME + "user/{video}", t, 0, source_uri=DATA_SCHEME + "user/{source}")
    # the formatted keys above are the file keys; map them back to the file names
    images = {}
    for key, ref in protocol.images.items():
        base, _, fragment = ref.uri.partition("#")
        stem = base[len(DATA_SCHEME + "user/"):]
        name = names.get(stem) or sources.get(stem)
        images[key] = ImageRef(key, ref.identity, f"{DATA_SCHEME}user/{name}" + (f"#{fragment}" if fragment else ""))
    # clips play back at the first video's rate (the metrics do not depend on it)
    return Protocol(protocol.name, protocol.version, protocol.description, images, protocol.pairs,
                    clips=protocol.clips, fps=frame_rate(videos[0]), locate=fixed_locator(root))
