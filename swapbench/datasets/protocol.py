"""Protocols: a named, versioned list of (source, target) pairs over a set of images.

A protocol's hash covers its name, version, every image reference and every pair, and is recorded
with every result, so two numbers are only compared when they were made on the same pairs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageRef:
    key: str  # unique within the protocol
    identity: str  # who is in the picture; the identity gallery groups sources by it
    uri: str  # where the pixels come from, see swapbench.datasets.images.load_image


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

    def __post_init__(self):
        for p in self.pairs:
            for key in (p.source, p.target):
                if key not in self.images:
                    raise ValueError(f"protocol {self.name}: pair {p.pair_id} names unknown image {key!r}")
        ids = [p.pair_id for p in self.pairs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"protocol {self.name}: duplicate pairs")

    @property
    def hash(self) -> str:
        doc = {
            "name": self.name,
            "version": self.version,
            "images": sorted((r.key, r.identity, r.uri) for r in self.images.values()),
            "pairs": [(p.source, p.target) for p in self.pairs],
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def subset(self, n: int | None) -> "Protocol":
        """A deterministic subset of n pairs: the n pairs whose sha256(pair_id) sort first.

        Hash order is independent of the listing order and stable when a protocol grows, so the
        same --subset N picks the same pairs on every machine.
        """
        if not n or n >= len(self.pairs):
            return self
        chosen = sorted(self.pairs, key=lambda p: hashlib.sha256(p.pair_id.encode()).hexdigest())[:n]
        keep = {p.pair_id for p in chosen}
        pairs = [p for p in self.pairs if p.pair_id in keep]
        used = {k for p in pairs for k in (p.source, p.target)}
        return Protocol(
            f"{self.name}", self.version, self.description,
            {k: v for k, v in self.images.items() if k in used}, pairs, subset_of=self.hash,
        )

    def sources(self) -> list[str]:
        """Image keys of the source gallery, in first-use order."""
        return list(dict.fromkeys(p.source for p in self.pairs))
