"""Where the standard face data sets keep their files, and how a protocol's data:// URIs find them.

swapbench never downloads a data set (each has its own registration and licence). The data-set root
comes from the config (`data_root`, `--data-root`) or $SWAPBENCH_DATA; both may point at a folder
holding one sub-folder per data set (ffhq/, celebahq/, ffpp/) or at one data set's own folder.
A missing or incomplete data set is a DataError that says what was expected where and how to get it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from swapbench.datasets.protocol import DATA_SCHEME, DataError, Protocol

DATA_ENV = "SWAPBENCH_DATA"
console = Console(stderr=True)


@dataclass(frozen=True)
class Layout:
    name: str  # the data set's name in data:// URIs and its default folder under the data root
    title: str
    obtain: str  # where and how a user gets the data set

    def marker(self, options: dict) -> str:
        """A folder, relative to the data set's root, that identifies the root."""
        raise NotImplementedError

    def path(self, rest: str, root: Path, options: dict) -> Path:
        """The file of `data://<name>/<rest>` under root."""
        return root / rest

    def expected(self, options: dict) -> str:
        return f"{self.marker(options)}/"


class CelebAHQ(Layout):
    """CelebAMask-HQ: CelebA-HQ-img/<N>.jpg (N = 0..29999) and CelebAMask-HQ-mask-anno/<N // 2000>/<NNNNN>_<part>.png."""

    def marker(self, options):
        return "CelebA-HQ-img"

    def path(self, rest, root, options):
        path = root / rest
        png = path.with_suffix(".png")  # some re-distributions converted the JPEGs to PNG
        return png if not path.is_file() and png.is_file() else path

    def expected(self, options):
        return "CelebA-HQ-img/<N>.jpg"


def celebahq_masks(root: str | Path, index: int) -> dict[str, Path]:
    """The CelebAMask-HQ part masks of image `index` that exist, keyed by part name (skin, hair, l_eye, ...)."""
    folder = Path(root) / "CelebAMask-HQ-mask-anno" / str(index // 2000)
    prefix = f"{index:05d}_"
    return {p.stem[len(prefix):]: p for p in sorted(folder.glob(f"{prefix}*.png"))}


# The part order of zllrunning/face-parsing.PyTorch's CelebAMask-HQ preparation (label = position + 1),
# which swapbench's BiSeNet parser and MegaFS's README label table use; a later part overwrites an earlier
# one where two annotations overlap. (The data set's own g_mask.py numbers the parts in another order.)
CELEBAHQ_PARTS = ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r", "nose",
                  "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat")
CELEBAHQ_MASK_SIDE = 512


def celebahq_image(location: str | Path) -> tuple[Path, int] | None:
    """(data-set root, image index) of a CelebA-HQ-img/<N>.jpg (or .png) path; None for any other path."""
    path = Path(location)
    if path.parent.name != "CelebA-HQ-img" or not path.stem.isdigit():
        return None
    return path.parent.parent, int(path.stem)


def celebahq_label_map(root: str | Path, index: int) -> np.ndarray:
    """The part annotations of image `index` merged into one [512, 512] uint8 label map (0: background),
    labels in CELEBAHQ_PARTS order. A DataError names the folder when the image has no annotation."""
    from PIL import Image

    masks = celebahq_masks(root, index)
    if not masks:
        folder = Path(root) / "CelebAMask-HQ-mask-anno" / str(index // 2000)
        raise DataError(f"no CelebAMask-HQ annotation of image {index}: expected {folder}/{index:05d}_<part>.png "
                        "(CelebAMask-HQ.zip unpacked whole)")
    labels = np.zeros((CELEBAHQ_MASK_SIDE, CELEBAHQ_MASK_SIDE), np.uint8)
    for label, part in enumerate(CELEBAHQ_PARTS, 1):
        if part in masks:
            mask = np.asarray(Image.open(masks[part]).convert("L"))
            if mask.shape != labels.shape:
                raise DataError(f"{masks[part]}: {mask.shape[1]}x{mask.shape[0]} pixels, CelebAMask-HQ annotations "
                                f"are {CELEBAHQ_MASK_SIDE}x{CELEBAHQ_MASK_SIDE}")
            labels[mask != 0] = label
    return labels


class FFHQ(Layout):
    """FFHQ: <images>/<NNN00>/<NNNNN>.png in folders of 1000 (images1024x1024, thumbnails128x128), or flat."""

    def marker(self, options):
        return options.get("ffhq_images") or "images1024x1024"

    def path(self, rest, root, options):
        images = root / self.marker(options)
        name = Path(rest).name
        nested = images / f"{int(Path(rest).stem) // 1000 * 1000:05d}" / name
        flat = images / name  # a resized copy without the 1000-image folders (e.g. images512/)
        return flat if not nested.is_file() and flat.is_file() else nested

    def expected(self, options):
        return f"{self.marker(options)}/<NNN00>/<NNNNN>.png"


class FFPP(Layout):
    """FaceForensics++: original_sequences/youtube/<raw|c23|c40>/videos/<NNN>.mp4."""

    def marker(self, options):
        return f"original_sequences/youtube/{options.get('ffpp_compression') or 'c23'}/videos"

    def path(self, rest, root, options):
        return root / self.marker(options) / rest

    def expected(self, options):
        return f"{self.marker(options)}/<NNN>.mp4"


class Folder(Layout):
    """A folder of the user's own images; its root is given by the protocol itself."""

    def marker(self, options):
        return "."


LAYOUTS: dict[str, Layout] = {
    "celebahq": CelebAHQ(
        "celebahq", "CelebA-HQ (CelebAMask-HQ)",
        "request it at https://github.com/switchablenorms/CelebAMask-HQ (download links in its README; "
        "non-commercial research use), unpack CelebAMask-HQ.zip"),
    "ffhq": FFHQ(
        "ffhq", "FFHQ",
        "download it with the script of https://github.com/NVlabs/ffhq-dataset "
        "(`python download_ffhq.py --images` or `--thumbs`; see its README for the licences)"),
    "ffpp": FFPP(
        "ffpp", "FaceForensics++",
        "fill in the form linked from https://github.com/ondyari/FaceForensics (dataset/README.md) to receive "
        "the download script, then `python download-FaceForensics.py <root> -d original -c c23 -t videos`"),
}


def data_bases(data_root: str | None) -> tuple[list[Path], str]:
    """Folders to search, and where they came from (for messages)."""
    if data_root:
        return [Path(data_root).expanduser()], "data_root"
    if os.environ.get(DATA_ENV):
        return [Path(os.environ[DATA_ENV]).expanduser()], f"${DATA_ENV}"
    return [], ""


def find_root(layout: Layout, data_root: str | None, options: dict) -> Path:
    """The data set's root: <base>/<name> or <base> itself, whichever holds the layout's marker folder."""
    bases, origin = data_bases(data_root)
    candidates = [c for b in bases for c in (b / layout.name, b)]
    for c in candidates:
        if (c / layout.marker(options)).is_dir():
            return c
    where = (f"under {' or '.join(str(c) for c in candidates)} ({origin})" if candidates
             else "but no data root is set: pass --data-root DIR, set data_root in a config, "
                  f"or set ${DATA_ENV}")
    raise DataError(
        f"{layout.title} not found: expected {layout.expected(options)} {where}. The data root is a folder "
        f"holding {layout.name}/ (or the data set's own folder). swapbench does not download data sets: "
        f"{layout.obtain}.")


def make_locator(protocol: Protocol, data_root: str | None, options: dict):
    """A Protocol.locate function for the data sets the protocol's URIs name (their roots found now)."""
    names = {ref.uri[len(DATA_SCHEME):].partition("/")[0] for ref in protocol.images.values()
             if ref.uri.startswith(DATA_SCHEME)}
    unknown = names - set(LAYOUTS)
    if unknown:
        raise DataError(f"protocol {protocol.name}: unknown data set(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(LAYOUTS)}")
    roots = {name: find_root(LAYOUTS[name], data_root, options) for name in names}

    def locate(uri: str) -> str:
        name, _, rest = uri[len(DATA_SCHEME):].partition("/")
        rest, sep, fragment = rest.partition("#")
        return str(LAYOUTS[name].path(rest, roots[name], options)) + sep + fragment

    return locate


def fixed_locator(root: Path):
    """A Protocol.locate function for data://<anything>/<relative path> under one folder."""
    def locate(uri: str) -> str:
        rest = uri[len(DATA_SCHEME):].partition("/")[2]
        rest, sep, fragment = rest.partition("#")
        return str(root / rest) + sep + fragment

    return locate


def missing_files(protocol: Protocol) -> dict[str, str]:
    """{image key: the file it needs} for images whose file does not exist."""
    out = {}
    for key in protocol.images:
        uri = protocol.location(key)
        path = uri.partition("#")[0]
        if "://" not in path and not Path(path).expanduser().is_file():
            out[key] = path
    return out


def check_files(protocol: Protocol, allow_missing: bool, hint: str = "") -> dict[str, str]:
    """Stop on an incomplete data set, or (allow_missing) warn: the pairs that need the files then fail."""
    missing = missing_files(protocol)
    if not missing:
        return missing
    used = {k for p in protocol.pairs for k in (p.source, p.target)}
    affected = sum(1 for p in protocol.pairs if p.source in missing or p.target in missing)
    examples = ", ".join(list(missing.values())[:3])
    summary = (f"protocol {protocol.name}: {len(missing)} of {len(used)} images are missing "
               f"(e.g. {examples}), needed by {affected} of {len(protocol.pairs)} pairs")
    if not allow_missing:
        raise DataError(f"{summary}. The data set is incomplete{hint}. To run on the files that are present, "
                        "set data.allow_missing=true (--set data.allow_missing=true): pairs without their files "
                        "are then recorded as failures, and the leaderboard's coverage shows them.")
    console.print(f"[yellow]warning:[/yellow] {summary}; they are recorded as failed pairs (data.allow_missing)",
                  highlight=False)
    return missing
