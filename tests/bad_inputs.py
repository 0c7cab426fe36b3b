"""The bad-input corpus: files that break naive pipelines, written from the bundled sample faces.

Nothing binary is committed: `write_corpus(dir)` builds every file from images that installed
packages ship. EXPECTED maps each file to the outcome a run must record: "ok" (evaluated) or a
fragment of the failure reason.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from swapbench.datasets.images import resolve_uri

ASTRONAUT = "pkg://skimage/data/astronaut.png"
GROUP = "pkg://insightface/data/images/t1.jpg"
NO_FACE = "pkg://skimage/data/coffee.png"

EXPECTED = {
    "truncated.jpg": "not a readable image",
    "empty.jpg": "empty file",
    "png_named.jpg": "ok",
    "grayscale.png": "ok",
    "rgba.png": "ok",
    "sixteen_bit.png": "ok",
    "cmyk.jpg": "ok",
    "exif_rotated.jpg": "ok",
    "tiny.png": "smaller than 32 pixels",
    "huge.png": "ok",
    "no_face.png": "no face found",
    "several_faces.jpg": "ok",  # the largest face is kept and the choice recorded
    "not_an_image.jpg": "not a readable image",
    "missing.jpg": "file not found",  # named by a pair, absent on disk
}


def _open(uri) -> Image.Image:
    path, _ = resolve_uri(uri)
    return Image.open(path).convert("RGB")


def write_corpus(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    face = _open(ASTRONAUT).crop((96, 0, 352, 256))  # 256x256 around the face

    buf = io.BytesIO()
    face.save(buf, format="JPEG", quality=95)
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "empty.jpg").write_bytes(b"")
    face.save(root / "png_named.jpg", format="PNG")
    face.convert("L").save(root / "grayscale.png")
    rgba = face.convert("RGBA")
    alpha = np.full((256, 256), 255, np.uint8)
    alpha[:, :40] = 0  # a transparent strip
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(root / "rgba.png")
    grey16 = (np.asarray(face.convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(root / "sixteen_bit.png")  # uint16 -> a 16-bit PNG
    face.convert("CMYK").save(root / "cmyk.jpg", quality=95)
    rotated = face.transpose(Image.Transpose.ROTATE_90)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... and tagged "rotate 90 CW to display" (undoes ROTATE_90)
    rotated.save(root / "exif_rotated.jpg", exif=exif.tobytes(), quality=95)
    face.resize((16, 16)).save(root / "tiny.png")
    face.resize((8000, 8000), Image.Resampling.BILINEAR).save(root / "huge.png", compress_level=1)
    _open(NO_FACE).save(root / "no_face.png")
    _open(GROUP).save(root / "several_faces.jpg", quality=95)
    (root / "not_an_image.jpg").write_text("this is a text file with an image extension\n")
    return {name: root / name for name in EXPECTED}
