"""Weights registry: every model file swapbench can use, where it comes from and where it is looked for.

A method or backend declares the files it needs as `WeightFile` entries. The engine resolves them
before any work starts, so a missing or corrupt file stops a run at once with a message that names
the file, its official URL and the path where it was expected.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

WEIGHTS_ENV = "SWAPBENCH_WEIGHTS"


@dataclass(frozen=True)
class WeightFile:
    """One model file from an official release."""

    name: str  # registry key, e.g. "ghost/G_unet_2blocks"
    filename: str  # file name on disk, e.g. "G_unet_2blocks.pth"
    # Official download location: a direct https:// link (release asset), "hf://owner/repo[@revision]/path"
    # for a file on the Hugging Face Hub, or the page to follow for files that need `manual`.
    url: str
    licence: str
    sha256: str | None = None  # None where the official release publishes no checksum
    size: int | None = None  # bytes, where known
    used_by: tuple[str, ...] = ()
    note: str = ""  # e.g. "registration required"
    # The file sits behind a registration or licence form: `bench weights download` prints
    # instructions (url, note, destination) instead of fetching it.
    manual: bool = False


REGISTRY: dict[str, WeightFile] = {}


def register(*files: WeightFile) -> tuple[WeightFile, ...]:
    for f in files:
        known = REGISTRY.get(f.name)
        if known is not None and known != f:
            raise ValueError(f"weight file {f.name!r} registered twice with different metadata")
        REGISTRY[f.name] = f
    return files


class WeightsError(RuntimeError):
    """A weight file is missing or does not match its checksum."""


def search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where weight files are looked for, in order: config/CLI, environment variable, cache directory."""
    dirs = []
    if weights_dir:
        dirs.append(Path(weights_dir).expanduser())
    if os.environ.get(WEIGHTS_ENV):
        dirs.append(Path(os.environ[WEIGHTS_ENV]).expanduser())
    dirs.append(Path(platformdirs.user_cache_dir("swapbench")) / "weights")
    return dirs


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def locate(f: WeightFile, weights_dir=None) -> Path | None:
    for d in search_dirs(weights_dir):
        p = d / f.filename
        if p.is_file():
            return p
    return None


def resolve(files, weights_dir=None) -> dict[str, Path]:
    """Map each file's registry name to its path; raise one error listing every missing or bad file."""
    found, problems = {}, []
    where = search_dirs(weights_dir)
    for f in files:
        p = locate(f, weights_dir)
        if p is None:
            problems.append(
                f"missing {f.filename} ({f.name}): download it from {f.url}"
                f" and put it in {where[0]} (searched: {', '.join(map(str, where))})"
                + (f"; {f.note}" if f.note else "")
                + ("" if f.manual or not f.url.startswith(("https://", "http://", "hf://"))
                   else f"; or run `bench weights download {f.name}`")
            )
            continue
        if f.sha256 is not None:
            actual = sha256_of(p)
            if actual != f.sha256:
                problems.append(f"{p} does not match its checksum: expected sha256 {f.sha256}, got {actual}")
                continue
        found[f.name] = p
    if problems:
        raise WeightsError("weights not available:\n  " + "\n  ".join(problems))
    return found


@dataclass
class WeightStatus:
    file: WeightFile
    path: Path | None
    status: str  # "present" | "missing" | "checksum mismatch" | "present (unverified)"
    sha256: str | None = field(default=None)


def status(f: WeightFile, weights_dir=None, verify: bool = True) -> WeightStatus:
    p = locate(f, weights_dir)
    if p is None:
        return WeightStatus(f, None, "missing")
    if f.sha256 is None or not verify:
        return WeightStatus(f, p, "present (unverified)")
    actual = sha256_of(p)
    return WeightStatus(f, p, "present" if actual == f.sha256 else "checksum mismatch", actual)
