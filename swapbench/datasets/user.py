"""Protocols over the user's own images: a folder (every ordered pair) or a CSV of pairs.

`--protocol folder:DIR`  every image under DIR; identity = the sub-folder an image is in
                         (DIR/<person>/<image>), or the file name for images directly in DIR;
                         every ordered (source, target) pair of two different identities.
`--protocol csv:FILE`    one pair per row: columns source,target[,source_identity,target_identity];
                         relative paths are relative to `data_root` when it is set, else to the
                         CSV's folder. Without identity columns each image is its own identity.

Image URIs are data://user/<path relative to the root>, so the protocol hash does not depend on
where the folder is; absolute paths in a CSV stay absolute (and are part of the hash).
"""

from __future__ import annotations

import csv
from itertools import permutations
from pathlib import Path

from swapbench.datasets.layouts import fixed_locator
from swapbench.datasets.protocol import DATA_SCHEME, DataError, ImageRef, Pair, Protocol

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def image_key(rel: Path) -> str:
    # Keys name swap files (<target>__<source>.png): no path separators, no double underscores.
    return "-".join(rel.with_suffix("").parts).replace("__", "_")


def _add(images: dict, rel: Path, identity: str, uri: str) -> str:
    key = image_key(rel)
    if key in images and images[key].uri != uri:
        raise ValueError(f"two images map to the same key {key!r}: {images[key].uri} and {uri}")
    if key in images and images[key].identity != identity:
        raise ValueError(f"image {uri} is given two identities: {images[key].identity!r} and {identity!r}")
    images[key] = ImageRef(key, identity, uri)
    return key


def folder_protocol(folder: str | Path) -> Protocol:
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"folder {root} not found")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images: dict[str, ImageRef] = {}
    for path in files:
        rel = path.relative_to(root)
        identity = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        _add(images, rel, identity, f"{DATA_SCHEME}user/{rel.as_posix()}")
    pairs = [Pair(source=s, target=t) for s, t in permutations(images, 2)
             if images[s].identity != images[t].identity]
    if not pairs:
        raise DataError(f"folder {root}: all images show one identity, so there is no pair to swap")
    return Protocol(f"folder-{root.name}", "1", f"all ordered pairs of different identities in {root.name}/",
                    images, pairs, locate=fixed_locator(root))


def csv_protocol(path: str | Path, root: str | Path | None = None) -> Protocol:
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DataError(f"pairs file {path} not found")
    base = Path(root).expanduser().resolve() if root else path.parent
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"source", "target"} <= set(rows[0]):
        raise ValueError(f"{path}: needs a header with columns source,target[,source_identity,target_identity]")
    images: dict[str, ImageRef] = {}
    pairs = []
    for n, row in enumerate(rows, start=2):
        keys = {}
        for role in ("source", "target"):
            value = (row[role] or "").strip()
            if not value:
                raise ValueError(f"{path}:{n}: empty {role}")
            file = Path(value)
            rel, uri = (Path(file.name), str(file)) if file.is_absolute() else (file, f"{DATA_SCHEME}user/{file.as_posix()}")
            identity = (row.get(f"{role}_identity") or "").strip() or image_key(rel)
            keys[role] = _add(images, rel, identity, uri)
        pairs.append(Pair(source=keys["source"], target=keys["target"]))
    return Protocol(f"csv-{path.stem}", "1", f"pairs listed in {path.name}", images, pairs,
                    locate=fixed_locator(base))
