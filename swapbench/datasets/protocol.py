"""Protocols: a named, versioned list of (source, target) pairs over a set of images.

A protocol's hash covers its name, version, every image reference and every pair, and is recorded
with every result, so two numbers are only compared when they were made on the same pairs.

The pair list and where the pixels are on this machine are kept apart: images of a data set have
URIs like `data://celebahq/CelebA-HQ-img/28000.jpg`, relative to the data set's root, and the
hash is computed from those. `swapbench.datasets.load_protocol` attaches a `locate` function that
maps them to the user's files, so the hash never depends on where the user keeps the data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

DATA_SCHEME = "data://"


class DataError(FileNotFoundError):
    """A data set is missing or incomplete; the message says what was expected where and how to get it."""


@dataclass(frozen=True)
class ImageRef:
    key: str  # unique within the protocol
    identity: str  # who is in the picture; the identity gallery groups sources by it
    uri: str  # where the pixels come from, see swapbench.datasets.images.load_image; data:// is located


@dataclass(frozen=True)
class Pair:
    source: str  # image key of the identity donor
    target: str  # image key of the face that receives the identity

    @property
    def pair_id(self) -> str:
        return f"{self.target}__{self.source}"


@dataclass
class Protocol:
    name: str
    version: str
    description: str
    images: dict[str, ImageRef]
    pairs: list[Pair]
    subset_of: str | None = field(default=None)
    # Video protocols: clip id -> the ids of its pairs in frame order (one pair per frame; see
    # swapbench.datasets.clips). None for still-image protocols.
    clips: dict[str, list[str]] | None = field(default=None)
    fps: float | None = field(default=None)  # the frame rate clips are played back at
    # data:// URI -> loadable URI on this machine; set by swapbench.datasets.load_protocol, not hashed.
    locate: Callable[[str], str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        for p in self.pairs:
            for key in (p.source, p.target):
                if key not in self.images:
                    raise ValueError(f"protocol {self.name}: pair {p.pair_id} names unknown image {key!r}")
        ids = [p.pair_id for p in self.pairs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"protocol {self.name}: duplicate pairs")
        if self.clips is not None:
            known = set(ids)
            for clip, pair_ids in self.clips.items():
                if not pair_ids or not set(pair_ids) <= known:
                    raise ValueError(f"protocol {self.name}: clip {clip} is empty or names unknown pairs")

    @property
    def hash(self) -> str:
        doc = {
            "name": self.name,
            "version": self.version,
            "images": sorted((r.key, r.identity, r.uri) for r in self.images.values()),
            "pairs": [(p.source, p.target) for p in self.pairs],
        }
        if self.clips is not None:  # image protocols keep the hashes they had before clips existed
            doc["clips"] = self.clips
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def subset(self, n: int | None) -> "Protocol":
        """A deterministic subset of n pairs (n clips of a video protocol): those whose sha256(pair id,
        or clip id) sort first.

        Hash order is independent of the listing order and stable when a protocol grows, so the
        same --subset N picks the same pairs on every machine.
        """
        units = self.clips if self.clips is not None else {p.pair_id: [p.pair_id] for p in self.pairs}
        if not n or n >= len(units):
            return self
        chosen = sorted(units, key=lambda u: hashlib.sha256(u.encode()).hexdigest())[:n]
        keep = {pid for u in chosen for pid in units[u]}
        pairs = [p for p in self.pairs if p.pair_id in keep]
        used = {k for p in pairs for k in (p.source, p.target)}
        clips = None if self.clips is None else {u: ids for u, ids in self.clips.items() if u in set(chosen)}
        return Protocol(
            f"{self.name}", self.version, self.description,
            {k: v for k, v in self.images.items() if k in used}, pairs, subset_of=self.hash, clips=clips,
            fps=self.fps, locate=self.locate,
        )

    def location(self, key: str) -> str:
        """Where the pixels of image `key` are on this machine (a URI for images.load_image)."""
        uri = self.images[key].uri
        if not uri.startswith(DATA_SCHEME):
            return uri
        if self.locate is None:
            raise DataError(f"protocol {self.name}: image {key} ({uri}) is in a data set that has not been located; "
                            "load the protocol with swapbench.datasets.load_protocol(cfg)")
        return self.locate(uri)

    def sources(self) -> list[str]:
        """Image keys of the source gallery, in first-use order."""
        return list(dict.fromkeys(p.source for p in self.pairs))
