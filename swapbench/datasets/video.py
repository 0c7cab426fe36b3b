"""Single frames of videos, decoded with PyAV by seeking instead of decoding the whole video.

Frames are addressed by their index in presentation order (0 = the first frame shown). "k evenly
spaced frames" of a video with n frames are the indices `np.rint(np.linspace(0, n - 1, k))`: the
first and the last frame and k - 2 frames evenly between them (numpy rounds halves to even). n is the
stream's frame count from the container header, or, when the header has none, the number of video
packets (one packet per frame in every format FaceForensics++ uses).

Clips read frame after frame (`#frame=i`, `#frame=i+1`, ...): each process keeps the decoder of the
last video it read open, so the next frame of a clip is decoded once instead of from the previous key
frame again (FF++ c23 has a key frame every 250 frames: a 32-frame clip would decode ~4000 frames).
One decoder per process: memory does not grow with the number of clips.
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


def frame_rate(path: str | Path) -> float | None:
    """The stream's average frame rate (frames per second), None when the container does not say."""
    av = _av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        return float(rate) if rate else None


def _count(container, stream) -> int:
    if stream.frames:
        return int(stream.frames)
    n = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0)
    return n


FORWARD_LIMIT = 64  # frames the open decoder runs forward to reach a wanted frame before seeking instead


class _OpenVideo:
    """The video this process read last: its container, frame count and a decoder positioned after
    the last frame returned."""

    def __init__(self, av, path: str):
        self.path, self.mtime = path, Path(path).stat().st_mtime_ns
        self.container = av.open(path)
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"{path}: no video stream")
        self.stream = self.container.streams.video[0]
        self.n = _count(self.container, self.stream)
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.step = 1 / (Fraction(rate) * self.stream.time_base) if rate and self.stream.time_base else None
        self.start = self.stream.start_time or 0
        self.frames, self.next_index = None, 0

    def index_of(self, frame) -> int:
        return int(round((frame.pts - self.start) / self.step))

    def read(self, index: int) -> np.ndarray:
        if self.step is None:  # no timestamps: counting frames from the start identifies a frame
            self.container.seek(0)
            self.frames = None
            return _decode_sequential(self.container, self.stream, index, self.path)
        if self.frames is None or not self.next_index <= index < self.next_index + FORWARD_LIMIT:
            target = self.start + index * self.step
            self.container.seek(int(target), stream=self.stream, backward=True, any_frame=False)
            self.frames = self.container.decode(self.stream)
        for frame in self.frames:
            if frame.pts is None:
                self.frames = None
                self.container.seek(0)
                return _decode_sequential(self.container, self.stream, index, self.path)
            got = self.index_of(frame)
            if got >= index:
                self.next_index = got + 1
                return frame.to_ndarray(format="rgb24")
        self.frames = None
        raise VideoError(f"{self.path}: frame {index} could not be decoded")

    def close(self):
        self.container.close()


_OPEN: _OpenVideo | None = None


def _open(av, path: str) -> _OpenVideo:
    global _OPEN
    if _OPEN is not None and (_OPEN.path != path or _OPEN.mtime != Path(path).stat().st_mtime_ns):
        _OPEN.close()
        _OPEN = None
    if _OPEN is None:
        _OPEN = _OpenVideo(av, path)
    return _OPEN


def read_frame(path: str | Path, index: int | None = None, spaced: tuple[int, int] | None = None) -> np.ndarray:
    """Frame `index` of the video, or frame i of k evenly spaced frames when spaced=(i, k); RGB uint8.

    Seeks to the key frame at or before the wanted frame and decodes forward from there, so reading
    one frame costs at most one group of pictures, not the whole video; the next frames of a clip
    continue from there (see the module docstring).
    """
    global _OPEN
    av = _av()
    if index is not None and spaced is None:
        try:
            video = _open(av, str(path))
            if not 0 <= index < video.n:
                raise VideoError(f"{path}: frame {index} is out of range (the video has {video.n} frames)")
            return video.read(index)
        except av.error.FFmpegError as exc:
            if _OPEN is not None:
                _OPEN.close()
            _OPEN = None
            raise VideoError(f"{path}: not a readable video ({exc})") from None
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


def write_video(path: str | Path, frames, fps: int | Fraction = 25, codec: str = "libvpx-vp9",
                options: dict | None = None) -> Path:
    """Encode RGB uint8 frames [H, W, 3] (one size) with PyAV; the container follows the suffix.

    codec "ffv1" (with a .mkv) is lossless RGB, for fixtures whose pixels tests compare exactly;
    "libvpx-vp9" (with a .webm) is what browsers play. Written to a temporary name first, then renamed.
    """
    av = _av()
    if codec not in av.codecs_available:
        raise VideoError(f"this PyAV build has no {codec} encoder (PyAV {av.__version__})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    frames = list(frames)
    if not frames:
        raise VideoError(f"{path}: no frames to write")
    h, w = frames[0].shape[:2]
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = w, h
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        stream.options = {k: str(v) for k, v in (options or {}).items()}
        for arr in frames:
            if arr.shape[:2] != (h, w):
                raise VideoError(f"{path}: frames of different sizes ({arr.shape[1]}x{arr.shape[0]} vs {w}x{h})")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.replace(path)
    return path
