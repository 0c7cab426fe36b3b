"""Download registered weight files into the weights cache, verified before they can be used.

Three kinds of source, chosen from the registry entry:

- ``https://…``: fetched with pooch's ``HTTPDownloader`` into ``<dest>/<filename>.part``. Pooch itself
  cannot resume (its downloader opens the output with ``"w+b"`` and ``pooch.retrieve`` streams into a
  randomly named temporary file that it deletes on failure), so we give its downloader our ``.part`` file
  opened for appending, a ``Range: bytes=N-`` header, and a requests response hook that checks the server
  really answered ``206`` from byte N (or restarts from zero when it ignores the range). The ``.part``
  file survives an interrupted download; the next attempt fetches only the rest.
- ``hf://owner/repo[@revision]/path``: ``huggingface_hub.hf_hub_download`` (which honours ``HF_HOME``,
  ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` and resumes by itself); the verified file in the Hugging Face
  cache is hard-linked (or copied) into the weights directory under the registered file name.
- anything else, or ``manual=True``: instructions to follow by hand.

A file reaches its final name only through ``os.replace`` after its sha256 (when published) and size
(when known) match, so a half-written or corrupt file is never found by ``weights.locate``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from swapbench import weights
from swapbench.weights import WeightFile

CHUNK = 1 << 16  # bytes per read and per write of a streamed download
TIMEOUT = (10, 60)  # seconds to connect, seconds without a byte before giving up
RETRY_WAIT = 1.0  # seconds before resuming a download whose connection dropped


class DownloadError(RuntimeError):
    """A weight file could not be downloaded or did not verify. The message is one line."""


@dataclass
class Outcome:
    file: WeightFile
    action: str  # "present" | "downloaded" | "manual"
    path: Path | None
    message: str


def source_kind(f: WeightFile) -> str:
    """"http" (direct link), "hf" (Hugging Face Hub) or "manual" (instructions only)."""
    if f.manual or not f.url:
        return "manual"
    scheme = urlsplit(f.url).scheme
    if scheme == "hf":
        return "hf"
    return "http" if scheme in ("http", "https") else "manual"


def parse_hf(url: str) -> tuple[str, str, str | None]:
    """``hf://owner/repo[@revision]/path/in/repo`` -> (repo_id, filename, revision)."""
    parts = url.removeprefix("hf://").split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"bad Hugging Face url {url!r}: expected hf://owner/repo[@revision]/path")
    owner, repo, filename = parts
    repo, _, revision = repo.partition("@")
    return f"{owner}/{repo}", filename, revision or None


def target_dir(weights_dir=None) -> Path:
    """The first search directory that exists or can be created, and is writable."""
    tried = []
    for d in weights.search_dirs(weights_dir):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            tried.append(str(d))
            continue
        if os.access(d, os.W_OK):
            return d
        tried.append(str(d))
    raise DownloadError(f"no writable weights directory (tried {', '.join(tried)}): pass --weights-dir")


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def instructions(f: WeightFile, weights_dir=None) -> str:
    where = weights.search_dirs(weights_dir)
    lines = [f"{f.name} ({f.filename}) cannot be downloaded automatically."]
    lines.append(f"  get it from: {f.url}" if f.url else "  the official release publishes no download link")
    if f.note:
        lines.append(f"  note: {f.note}")
    lines.append(f"  licence: {f.licence}")
    lines.append(f"  then put it at {where[0] / f.filename}")
    if len(where) > 1:
        lines.append(f"  (or in any of: {', '.join(map(str, where[1:]))})")
    if f.sha256:
        lines.append(f"  expected sha256: {f.sha256}")
    return "\n".join(lines)


def download(f: WeightFile, weights_dir=None, *, progress: bool = True, retries: int = 2) -> Outcome:
    """Make ``f`` present and verified in the weights directories; return what was done.

    Raises DownloadError (one-line message) when the file cannot be fetched or does not verify.
    """
    kind = source_kind(f)
    st = weights.status(f, weights_dir)
    if st.status.startswith("present"):
        return Outcome(f, "present", st.path, f"{f.name}: already {st.status} at {st.path}")
    if kind == "manual":
        return Outcome(f, "manual", None, instructions(f, weights_dir))
    dest = target_dir(weights_dir) / f.filename
    actual = _fetch_hf(f, dest, progress) if kind == "hf" else _fetch_http(f, dest, progress, retries)
    # A run takes the first match in search order: make sure that is the file just verified.
    used = weights.locate(f, weights_dir)
    if used != dest:
        raise DownloadError(f"downloaded {dest}, but {used} comes first in the search order and a run would "
                            f"use it ({weights.status(f, weights_dir).status}): remove it")
    sha = f"sha256 {actual} verified" if f.sha256 else f"sha256 {actual}, no published checksum to compare with"
    return Outcome(f, "downloaded", dest, f"{f.name}: downloaded to {dest} ({sha})")


def _verify_and_place(f: WeightFile, src: Path, dest: Path) -> str:
    """Check ``src`` (a .part file) against the registry entry, move it to ``dest``; return its sha256."""
    size = src.stat().st_size
    actual = weights.sha256_of(src)
    problem = None
    if f.sha256 is not None:
        if actual != f.sha256:
            problem = f"does not match its checksum: expected sha256 {f.sha256}, got {actual}"
    elif f.size is not None and size != f.size:
        problem = f"has {size:,} bytes, expected {f.size:,}"
    if problem:  # a corrupt .part must not be resumed either
        src.unlink()
        raise DownloadError(f"{f.filename} from {f.url} {problem}; nothing was saved")
    os.replace(src, dest)
    return actual


# --- direct links -------------------------------------------------------------------------------------

def _fetch_http(f: WeightFile, dest: Path, progress: bool, retries: int) -> str:
    import filelock

    part = part_path(dest)
    # Two processes appending to the same .part would corrupt it. Lock files stay, in one hidden folder
    # (deleting one would let a third process lock a fresh file while a second still holds the old one).
    (dest.parent / ".locks").mkdir(exist_ok=True)
    lock = filelock.FileLock(str(dest.parent / ".locks" / f"{dest.name}.lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DownloadError(f"{part} is being downloaded by another process") from None
    try:
        with _progress(progress) as bar_factory:
            bar = bar_factory(f.filename) if bar_factory else None  # one bar across resumed attempts
            for attempt in range(retries + 1):
                before = part.stat().st_size if part.exists() else 0
                try:
                    _stream(f.url, part, f.size, bar)
                    break
                except _Transient as exc:
                    got = part.stat().st_size if part.exists() else 0
                    if got == before:  # not a dropped connection but no connection at all: do not insist
                        raise DownloadError(f"cannot download {f.filename}: {exc}") from None
                    if attempt == retries and got == 0:
                        raise DownloadError(f"cannot download {f.filename}: {exc}; run the same command again") from None
                    if attempt == retries:
                        raise DownloadError(
                            f"download of {f.filename} interrupted at {got:,} bytes ({exc}); "
                            f"{part} is kept: run the same command again to resume") from None
                    time.sleep(RETRY_WAIT)
        return _verify_and_place(f, part, dest)
    finally:
        if part.exists() and part.stat().st_size == 0:
            part.unlink()  # nothing to resume
        lock.release()


class _Transient(Exception):
    """The connection failed or dropped; resuming may help."""


def _stream(url: str, part: Path, size: int | None, bar) -> None:
    """Append the missing tail of ``url`` to ``part`` with pooch's HTTPDownloader and a Range header."""
    import pooch
    import requests

    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset >= size:
        if offset == size:
            return  # complete already (interrupted between the last byte and the rename): just verify
        part.unlink()
        offset = 0
    expected = {}

    with open(part, "ab") as fh:
        def on_response(r, *args, **kwargs):
            if r.is_redirect or r.status_code >= 400:
                return  # redirects are followed; errors are raised by the downloader
            start = offset
            if offset and r.status_code != 206:  # the server ignored the range: start over
                fh.seek(0)
                fh.truncate()
                start = 0
            elif offset and not r.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                raise DownloadError(f"{url} answered a resumed request with Content-Range "
                                    f"{r.headers.get('Content-Range')!r}; delete {part} and retry")
            if "Content-Length" in r.headers:
                expected["total"] = start + int(r.headers["Content-Length"])
            if bar is not None:
                bar.begin(start)

        downloader = pooch.HTTPDownloader(
            progressbar=bar if bar is not None else False, chunk_size=CHUNK, timeout=TIMEOUT,
            headers={"Range": f"bytes={offset}-"} if offset else {}, hooks={"response": on_response})
        try:
            downloader(url, fh, None)
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 416:
                fh.truncate(0)  # the range is past the end: our partial file is not a prefix of this file
                raise _Transient("the server refused to resume; starting over") from None
            raise DownloadError(f"{url} answered HTTP {exc.response.status_code} {exc.response.reason}") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Transient(_reason(exc, url)) from None
        except requests.RequestException as exc:
            raise DownloadError(f"{url}: {_reason(exc, url)}") from None
    got = part.stat().st_size
    if "total" in expected and got != expected["total"]:
        raise _Transient(f"connection closed after {got:,} of {expected['total']:,} bytes")


def _reason(exc: BaseException, url: str) -> str:
    """A short reason for a network failure (the innermost OS error, e.g. 'Connection refused')."""
    host = urlsplit(url).netloc
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return f"no connection to {host}: {e.strerror} (is the network available?)"
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if isinstance(x, BaseException)]
    text = " ".join(str(exc).split())
    if "IncompleteRead" in text or "Connection broken" in text:
        return f"connection to {host} dropped"
    return f"{type(exc).__name__} from {host}: {text[:200]}"


class _RichBar:
    """The progress-bar object pooch's HTTPDownloader drives (total, update, reset, close), drawn by rich."""

    def __init__(self, progress, description: str):
        self.progress, self.description, self.start, self.task = progress, description, 0, None

    def begin(self, start: int) -> None:
        """Called when the server answers: no bar is drawn for a connection that never happens."""
        self.start = start
        if self.task is None:
            self.task = self.progress.add_task(self.description, total=None)
        self.progress.update(self.task, completed=start)

    @property
    def total(self):
        return self.progress.tasks[self.task].total

    @total.setter
    def total(self, remaining: int) -> None:
        self.progress.update(self.task, total=self.start + remaining if remaining else None)

    def update(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def reset(self) -> None:
        self.progress.update(self.task, completed=self.start)

    def close(self) -> None:
        pass


class _progress:
    """Context manager yielding a factory of rich progress bars (or None when progress is off)."""

    def __init__(self, enabled: bool):
        self.enabled, self.progress = enabled, None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self.progress.start()
        return lambda description: _RichBar(self.progress, description)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False


# --- Hugging Face Hub ---------------------------------------------------------------------------------

def _fetch_hf(f: WeightFile, dest: Path, progress: bool) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
    )
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    repo_id, filename, revision = parse_hf(f.url)
    bars_were_off = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        cached = Path(hf_hub_download(repo_id, filename, revision=revision))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise DownloadError(f"cannot download {f.filename} from the Hugging Face Hub ({repo_id}): "
                            f"{' '.join(str(exc).split())[:300]}") from None
    except (EntryNotFoundError, HfHubHTTPError) as exc:
        raise DownloadError(f"{f.url}: {' '.join(str(exc).split())[:300]}") from None
    except OSError as exc:
        raise DownloadError(f"cannot download {f.filename}: {_reason(exc, f.url)}") from None
    finally:
        if not bars_were_off:
            enable_progress_bars()
    # Link (no extra disk space) or copy the verified file out of the Hugging Face cache, so that
    # `locate` finds it under the registered name; a copy goes through .part like any download.
    part = part_path(dest)
    part.unlink(missing_ok=True)
    try:
        os.link(cached.resolve(), part)
    except OSError:
        shutil.copyfile(cached, part)
    try:
        return _verify_and_place(f, part, dest)
    except DownloadError as exc:
        raise DownloadError(f"{exc} (the Hugging Face cache holds it at {cached})") from None
