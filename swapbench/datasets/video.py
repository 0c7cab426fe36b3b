"""Single frames of videos, decoded with PyAV by seeking instead of decoding the whole video.

Frames are addressed by their index in presentation order (0 = the first frame shown). "k evenly
spaced frames" of a video with n frames are the indices `np.rint(np.linspace(0, n - 1, k))`: the
first and the last frame and k - 2 frames evenly between them (numpy rounds halves to even). n is the
stream's frame count from the container header, or, when the header has none, the number of video
packets (one packet per frame in every format FaceForensics++ uses).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


class VideoError(ValueError):
    pass


def _av():
    try:
        import av
    except ImportError:
        raise VideoError("reading video frames needs PyAV: pip install av") from None
    return av


def spaced_indices(n_frames: int, k: int) -> list[int]:
    """Indices of k evenly spaced frames of a video with n_frames frames."""
    if n_frames < 1 or k < 1:
        raise VideoError(f"cannot space {k} frames over a video of {n_frames} frames")
    return [int(i) for i in np.rint(np.linspace(0, n_frames - 1, k))]


def frame_count(path: str | Path) -> int:
    av = _av()
    with av.open(str(path)) as container:
        return _count(container, container.streams.video[0])


def _count(container, stream) -> int:
    if stream.frames:
        return int(stream.frames)
    n = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0)
    return n


def read_frame(path: str | Path, index: int | None = None, spaced: tuple[int, int] | None = None) -> np.ndarray:
    """Frame `index` of the video, or frame i of k evenly spaced frames when spaced=(i, k); RGB uint8.

    Seeks to the key frame at or before the wanted frame and decodes forward from there, so reading
    one frame costs at most one group of pictures, not the whole video.
    """
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            n = _count(container, stream)
            if spaced is not None:
                i, k = spaced
                if not 0 <= i < k:
                    raise VideoError(f"{path}: spaced frame {i}/{k} is out of range")
                index = spaced_indices(n, k)[i]
            if index is None or not 0 <= index < n:
                raise VideoError(f"{path}: frame {index} is out of range (the video has {n} frames)")
            return _decode_at(container, stream, index, path)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from None


def _decode_at(container, stream, index: int, path) -> np.ndarray:
    rate = stream.average_rate or stream.guessed_rate
    if not rate or stream.time_base is None:
        return _decode_sequential(container, stream, index, path)
    start = stream.start_time or 0
    step = 1 / (Fraction(rate) * stream.time_base)  # one frame in time-base units
    target = start + index * step
    container.seek(int(target), stream=stream, backward=True, any_frame=False)
    for frame in container.decode(stream):
        if frame.pts is None:
            container.seek(0)
            return _decode_sequential(container, stream, index, path)
        if frame.pts >= target - step / 2:
            return frame.to_ndarray(format="rgb24")
    raise VideoError(f"{path}: frame {index} could not be decoded")


def _decode_sequential(container, stream, index: int, path) -> np.ndarray:
    # Without timestamps only counting decoded frames identifies a frame.
    for i, frame in enumerate(container.decode(stream)):
        if i == index:
            return frame.to_ndarray(format="rgb24")
    raise VideoError(f"{path}: frame {index} could not be decoded")
