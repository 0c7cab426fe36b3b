"""Reading images: every input becomes RGB uint8, or a clear reason why it cannot.

URIs: a file path, or `pkg://<package>/<path inside the package>` for files that installed
packages ship, followed by an optional fragment of `&`-separated options:
  `#box=l,t,r,b`    crops a region (used to cut single faces out of group photos);
  `#frame=17`       frame 17 of a video (presentation order, 0 = first);
  `#spaced=3/10`    frame 3 of 10 evenly spaced frames of a video (see swapbench.datasets.video).
`data://<data set>/<path>` URIs of protocols are located first (Protocol.location).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from swapbench.datasets import video
from swapbench.datasets.protocol import DATA_SCHEME

MAX_PIXELS = 150_000_000  # refuse decompression bombs with a clear message (an 8000x8000 photo is 64M)
MIN_SIDE = 32


class ImageError(ValueError):
    pass


def parse_fragment(uri: str) -> tuple[str, dict[str, str]]:
    path, _, frag = uri.partition("#")
    options = dict(item.partition("=")[::2] for item in frag.split("&") if item)
    unknown = set(options) - {"box", "frame", "spaced"}
    if unknown:
        raise ImageError(f"{uri}: unknown URI option(s) {', '.join(sorted(unknown))}")
    return path, options


def resolve_uri(uri: str) -> tuple[Path, tuple[int, int, int, int] | None]:
    path, options = parse_fragment(uri)
    box = tuple(int(v) for v in options["box"].split(",")) if "box" in options else None
    if path.startswith(DATA_SCHEME):
        raise ImageError(f"{uri}: a data-set URI; locate it first (swapbench.datasets.load_protocol)")
    if path.startswith("pkg://"):
        package, _, inner = path[6:].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ImageError(f"{uri}: package {package!r} is not installed (pip install {package})")
        return Path(list(spec.submodule_search_locations)[0]) / inner, box
    return Path(path).expanduser(), box


def load_image(uri: str) -> np.ndarray:
    path, box = resolve_uri(uri)
    _, options = parse_fragment(uri)
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    if "frame" in options or "spaced" in options or path.suffix.lower() in video.VIDEO_SUFFIXES:
        arr = _load_frame(path, options)
    else:
        arr = _load_still(path)
    if box is not None:
        l, t, r, b = box
        arr = arr[max(t, 0):b, max(l, 0):r]
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{path}: {arr.shape[1]}x{arr.shape[0]} is smaller than {MIN_SIDE} pixels")
    return np.ascontiguousarray(arr)


def _load_frame(path: Path, options: dict) -> np.ndarray:
    try:
        if "spaced" in options:
            i, _, k = options["spaced"].partition("/")
            return video.read_frame(path, spaced=(int(i), int(k)))
        if "frame" in options:
            return video.read_frame(path, index=int(options["frame"]))
    except ValueError as exc:  # VideoError, or a malformed number
        raise ImageError(str(exc) if isinstance(exc, video.VideoError) else f"{path}: bad frame option ({exc})") from None
    raise ImageError(f"{path}: a video; say which frame with #frame=N or #spaced=i/k")


def _load_still(path: Path) -> np.ndarray:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # our own limit and message below, not PIL's warning
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageError(f"{path}: {im.width}x{im.height} is larger than {MAX_PIXELS} pixels")
            im = ImageOps.exif_transpose(im)
            im.load()
            arr = _to_rgb8(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None
    return arr


def _to_rgb8(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale the used range to 8 bits instead of clipping.
        a = np.asarray(im, dtype=np.float64)
        a = a * (255.0 / max(a.max(), 1.0))
        return np.repeat(a.round().astype(np.uint8)[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)  # transparent areas become white, not black
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def pixel_sha(arr: np.ndarray) -> str:
    """Content hash of decoded pixels (shape included)."""
    h = hashlib.sha256(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()
