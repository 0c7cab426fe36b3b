"""Several photographs of one person, for identity tests.

The bundled samples hold one photograph per person. face_recognition's source distribution on PyPI
(MIT) carries test photographs of two people: three different photographs of Barack Obama and one of
Joe Biden. The archive is fetched once with pip from the package index (the one source every set-up
of this project can reach), checked against its sha256 and unpacked into the user cache.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image
from platformdirs import user_cache_dir

SDIST = "face_recognition-1.3.0.tar.gz"
SDIST_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
PHOTOS = {"obama_1": "obama.jpg", "obama_2": "obama2.jpg", "obama_3": "obama3.jpg", "biden": "biden.jpg"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photo_dir() -> Path:
    root = Path(user_cache_dir("swapbench")) / "testdata" / "face_recognition-1.3.0"
    if all((root / name).is_file() for name in PHOTOS.values()):
        return root
    archive = root.parent / SDIST
    if not archive.is_file() or _sha256(archive) != SDIST_SHA256:
        root.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--disable-pip-version-check", "-q", "-d", str(root.parent), "face_recognition==1.3.0"],
                       check=True)
    assert _sha256(archive) == SDIST_SHA256, f"{archive} does not have the expected sha256"
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for name in PHOTOS.values():
            member = tar.getmember(f"face_recognition-1.3.0/tests/test_images/{name}")
            (root / name).write_bytes(tar.extractfile(member).read())
    return root


def photos() -> dict[str, np.ndarray]:
    """name -> RGB uint8 photograph (obama_1, obama_2, obama_3, biden)."""
    root = photo_dir()
    return {key: np.asarray(Image.open(root / name).convert("RGB")) for key, name in PHOTOS.items()}
