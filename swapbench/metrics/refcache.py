"""Reference statistics of a real image set, cached on disk and keyed by content.

Features of the real set cost minutes to hours of Inception time, so they are computed once and
reused. The key is a hash of *what was measured* — the pixels of every reference image, the
extractor and the resize policy — never a path: renaming a folder reuses the entry, changing one
pixel or the policy makes a new one. Each entry is an .npz holding the key it was made for and a
sha256 over its arrays, so a stale entry (key mismatch) or a corrupt one (truncated file, checksum
mismatch) is detected and recomputed instead of silently feeding a wrong FID.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import platformdirs
import torch

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CACHE_ENV = "SWAPBENCH_REFSTATS"


def image_digests(images: torch.Tensor) -> list[str]:
    """sha256 of each image's 8-bit pixels and shape ([B, 3, H, W] in [0, 1] or uint8)."""
    if images.dtype != torch.uint8:
        images = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return [hashlib.sha256(repr(tuple(im.shape)).encode() + im.tobytes()).hexdigest() for im in images.cpu().numpy()]


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def reference_key(image_hashes: Iterable[str], extractor: str, policy: str, extra: str = "") -> str:
    """Content key of a reference set: order-independent over images, specific to extractor and policy."""
    payload = json.dumps(
        {"format": FORMAT_VERSION, "extractor": extractor, "policy": policy, "extra": extra,
         "images": sorted(image_hashes)},
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class ReferenceStats:
    key: str
    features: np.ndarray  # [N, D] float32
    mean: np.ndarray  # [D] float64
    cov: np.ndarray  # [D, D] float64, unbiased (N - 1)
    n: int

    @classmethod
    def from_features(cls, features, key: str) -> "ReferenceStats":
        f = np.asarray(features.cpu() if torch.is_tensor(features) else features)
        f64 = f.astype(np.float64)
        return cls(key, f.astype(np.float32), f64.mean(0), np.cov(f64, rowvar=False), len(f))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "key": np.array(self.key),
            "features": np.ascontiguousarray(self.features, np.float32),
            "mean": np.ascontiguousarray(self.mean, np.float64),
            "cov": np.ascontiguousarray(self.cov, np.float64),
            "n": np.array(self.n, np.int64),
        }


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class RefStatsCache:
    """Directory of reference statistics, one ``<key>.npz`` per reference set."""

    def __init__(self, root: str | os.PathLike | None = None):
        root = root or os.environ.get(CACHE_ENV) or Path(platformdirs.user_cache_dir("swapbench")) / "refstats"
        self.root = Path(root).expanduser()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> ReferenceStats | None:
        """The cached statistics for key, or None when absent, stale or corrupt (the reason is logged)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in ("key", "features", "mean", "cov", "n")}
                stored = str(z["checksum"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            log.warning("reference statistics %s are unreadable (%s); recomputing", path, e)
            return None
        if str(arrays["key"]) != key:
            log.warning("reference statistics %s were made for key %s, not %s; recomputing", path, arrays["key"], key)
            return None
        if _checksum(arrays) != stored:
            log.warning("reference statistics %s fail their checksum; recomputing", path)
            return None
        return ReferenceStats(key, arrays["features"], arrays["mean"], arrays["cov"], int(arrays["n"]))

    def save(self, stats: ReferenceStats) -> Path:
        """Write atomically (temporary file + rename), so readers never see a half-written entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        arrays = stats._arrays()
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, checksum=np.array(_checksum(arrays)), **arrays)
            os.replace(tmp, self.path(stats.key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path(stats.key)

    def get_or_compute(self, key: str, compute: Callable[[], "np.ndarray | torch.Tensor"]) -> ReferenceStats:
        """Cached statistics for key, or statistics of ``compute()``'s [N, D] features, stored for next time."""
        stats = self.load(key)
        if stats is None:
            stats = ReferenceStats.from_features(compute(), key)
            self.save(stats)
        return stats
