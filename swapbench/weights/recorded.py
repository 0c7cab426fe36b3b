"""Hashes recorded at download, for weight files whose release publishes no sha256.

`bench weights download` records the sha256 of such a file once it passed its checks (not a web page,
the declared size), in ``.sha256/<file name>.sha256`` beside it (one line in ``sha256sum`` format), and
every later `weights.resolve` (a run) and `weights.status` (`bench weights`) compares the file with it, so
a file that changes under a user is caught. A file put in place by hand has no record and stays
"present (unverified)". Written by hand: this is a small file per weight, nothing a library does.
"""

from __future__ import annotations

from pathlib import Path

RECORD_DIR = ".sha256"  # hidden: a folder weight's own hash (weights.folder_sha256) skips hidden files
NOT_PUBLISHED = "not published: recorded at first download, compared afterwards"


def pinned(f) -> bool:
    """Whether the release publishes a sha256 for the file (or for a member of a folder weight)."""
    return f.sha256 is not None or any(m.sha256 for m in f.members)


def record_path(path: Path) -> Path:
    path = Path(path)
    return path.parent / RECORD_DIR / f"{path.name}.sha256"


def recall(path: Path) -> str | None:
    """The sha256 recorded for the file at `path`, or None."""
    try:
        return record_path(path).read_text().split()[0]
    except (OSError, IndexError):
        return None


def remember(path: Path, sha256: str) -> Path:
    record = record_path(path)
    record.parent.mkdir(exist_ok=True)
    record.write_text(f"{sha256}  {Path(path).name}\n")
    return record


def mismatch(f, path: Path) -> str | None:
    """A message when the file at `path` differs from the hash recorded at its download; None when it
    matches, has no record, or has a published checksum (checked against that instead)."""
    from swapbench.weights import hash_of

    expected = None if pinned(f) else recall(path)
    if expected is None or (actual := hash_of(f, path)) == expected:
        return None
    return (f"{path} ({f.name}) changed since it was downloaded: its sha256 was recorded as {expected} in "
            f"{record_path(path)}, now it is {actual}. Download it again from {f.url} (delete the file first), "
            f"or, if you replaced it on purpose, delete {record_path(path)}")


def listing(f, path: Path | None) -> str:
    """What `bench weights` shows in its sha256 column."""
    if f.sha256 is not None:
        return f.sha256
    published = [f"{m.paths[0]}: {' or '.join(m.sha256)}" for m in f.members if m.sha256]
    if published:
        return "; ".join(published)
    seen = recall(path) if path is not None else None
    return f"not published; recorded at download: {seen}" if seen else NOT_PUBLISHED
