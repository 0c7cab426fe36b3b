"""Download registered weight files into the weights cache, verified before they can be used.

One scheme per kind of source, chosen from the registry entry's url (the README lists them):

- ``https://…`` (GitHub release assets, raw files, any direct link): fetched with pooch's
  ``HTTPDownloader`` into ``<dest>/<filename>.part``. Pooch itself cannot resume (its downloader opens the
  output with ``"w+b"`` and ``pooch.retrieve`` streams into a randomly named temporary file that it deletes
  on failure), so we give its downloader our ``.part`` file opened for appending, a ``Range: bytes=N-``
  header, and a requests response hook that checks the server really answered ``206`` from byte N (or
  restarts from zero when it ignores the range). The ``.part`` file survives an interrupted download; the
  next attempt fetches only the rest.
- ``hf://owner/repo[@revision]/path`` (a Hub model repository) and ``hf://spaces/owner/space[@revision]/path``
  (a file of a Hugging Face Space): ``huggingface_hub.hf_hub_download`` (which honours ``HF_HOME``,
  ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` and resumes by itself); the verified file in the Hugging Face
  cache is hard-linked (or copied) into the weights directory under the registered file name.
- ``gdrive://<file id>`` or a Google Drive file link (``drive.google.com/file/d/<id>/…``, ``open?id=<id>``,
  ``uc?id=<id>``): ``gdown``, which handles Drive's virus-scan confirmation page and its cookies.
- ``manual=True``, Drive folders, Baidu Netdisk, OneDrive/SharePoint, ``mailto:`` and anything else:
  instructions (where to get the file, where to put it) instead of a download.

Whatever the source, a file reaches its final name only through ``os.replace`` after it passed the checks
of ``_verify_and_place``: not an HTML page (what a sign-in, licence or quota page looks like when fetched
as a file), the declared size (when known), the published sha256 (when pinned). So a half-written, corrupt
or wrong file is never found by ``weights.locate``. A file without a published sha256 has its hash
recorded at that moment (``weights.recorded``) and compared on every later use.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from swapbench import weights
from swapbench.weights import WeightFile, recorded

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


MANUAL_HOSTS = {  # pages that need a browser (a share page, a sign-in, a captcha): never fetched as a file
    "pan.baidu.com": "a Baidu Netdisk share: open it in a browser, with the extraction code of the note if any",
    "1drv.ms": "a OneDrive share", "onedrive.live.com": "a OneDrive share", "sharepoint.com": "a OneDrive share",
    "cloud.tsinghua.edu.cn": "a Tsinghua cloud folder",
}
DRIVE_FILE = re.compile(r"/file/d/([\w-]{10,})|[?&]id=([\w-]{10,})")


def source_kind(f: WeightFile) -> str:
    """"http" (direct link), "hf" (Hugging Face Hub model or Space file), "gdrive" (a Google Drive file,
    through gdown) or "manual" (instructions only)."""
    if f.manual or not f.url or _manual_reason(f.url):
        return "manual"
    scheme = urlsplit(f.url).scheme
    if scheme == "hf":
        return "hf"
    if scheme == "gdrive" or drive_id(f.url):
        return "gdrive"
    return "http" if scheme in ("http", "https") else "manual"


def _manual_reason(url: str) -> str | None:
    """Why a url cannot be fetched as a file, or None."""
    parts = urlsplit(url)
    host = parts.netloc.lower()
    if parts.scheme == "mailto":
        return f"the authors send it on request: write to {parts.path}"
    if host == "drive.google.com" and "/folders/" in parts.path:
        return "a Google Drive folder: open it and take the file named below"
    return next((why for h, why in MANUAL_HOSTS.items() if host == h or host.endswith("." + h)), None)


def drive_id(url: str) -> str | None:
    """The file id of ``gdrive://<id>`` or of a Google Drive file link; None for anything else."""
    parts = urlsplit(url)
    if parts.scheme == "gdrive":
        return parts.netloc or None
    if parts.netloc.lower() not in ("drive.google.com", "docs.google.com") or "/folders/" in parts.path:
        return None
    m = DRIVE_FILE.search(parts.path + "?" + parts.query)
    return (m.group(1) or m.group(2)) if m else None


def parse_hf(url: str) -> tuple[str, str, str | None, str]:
    """``hf://owner/repo[@revision]/path`` -> (repo_id, filename, revision, "model");
    ``hf://spaces/owner/space[@revision]/path`` -> (repo_id, filename, revision, "space")."""
    rest = url.removeprefix("hf://")
    repo_type = "model"
    if rest.startswith("spaces/"):
        rest, repo_type = rest.removeprefix("spaces/"), "space"
    parts = rest.split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"bad Hugging Face url {url!r}: expected hf://owner/repo[@revision]/path "
                         "or hf://spaces/owner/space[@revision]/path")
    owner, repo, filename = parts
    repo, _, revision = repo.partition("@")
    return f"{owner}/{repo}", filename, revision or None, repo_type


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
    if f.url and (why := _manual_reason(f.url)):  # otherwise the note says why (a form, a zip to extract)
        lines.append(f"  why by hand: {why}")
    if f.note:
        lines.append(f"  note: {f.note}")
    lines.append(f"  licence: {f.licence}")
    lines.append(f"  then put it at {where[0] / f.filename}")
    if len(where) > 1:
        lines.append(f"  (or in any of: {', '.join(map(str, where[1:]))})")
    if f.sha256:
        lines.append(f"  expected sha256: {f.sha256}")
    else:
        lines.append("  no sha256 is published for it: a file put there by hand is used unverified")
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
    fetch = {"hf": _fetch_hf, "gdrive": _fetch_gdrive}.get(kind)
    actual = fetch(f, dest, progress) if fetch else _fetch_http(f, dest, progress, retries)
    # A run takes the first match in search order: make sure that is the file just verified.
    used = weights.locate(f, weights_dir)
    if used != dest:
        raise DownloadError(f"downloaded {dest}, but {used} comes first in the search order and a run would "
                            f"use it ({weights.status(f, weights_dir).status}): remove it")
    sha = f"sha256 {actual} verified" if f.sha256 else \
        f"sha256 {actual}; none is published: recorded in {recorded.record_path(dest)}, later runs compare with it"
    return Outcome(f, "downloaded", dest, f"{f.name}: downloaded to {dest} ({sha})")


HTML_START = re.compile(rb"\s*(<!doctype\s+html|<html|<head|<body|<meta|<title|<script|<!--)", re.IGNORECASE)


def looks_like_html(head: bytes) -> bool:
    """Whether the first bytes of a file are a web page. No weight format starts like this: zip archives
    (torch.save) start with PK, pickles with 0x80, ONNX with 0x08, MATLAB files with "MATLAB", safetensors
    with a little-endian header length."""
    return bool(HTML_START.match(head.removeprefix(b"\xef\xbb\xbf")))


def _verify_and_place(f: WeightFile, src: Path, dest: Path) -> str:
    """Check ``src`` (a .part file) against the registry entry, move it to ``dest``; return its sha256.
    A file without a published sha256 has the hash recorded (weights.recorded) once it is in place."""
    size = src.stat().st_size
    with open(src, "rb") as fh:
        head = fh.read(512)
    problem = None
    if looks_like_html(head):
        problem = (f"is a web page (HTML), not the weight file: the link leads to a sign-in, licence, quota or "
                   f"confirmation page. Open {f.url} in a browser, download {f.filename} by hand and put it at {dest}")
    elif f.size is not None and size != f.size:
        problem = (f"has {size:,} bytes where {f.size:,} are declared: not the expected file. Check the link in a "
                   f"browser, or download {f.filename} by hand and put it at {dest}")
    elif f.sha256 is not None and (actual := weights.sha256_of(src)) != f.sha256:
        problem = f"does not match its checksum: expected sha256 {f.sha256}, got {actual}"
    if problem:  # a wrong .part must not be resumed either
        src.unlink()
        raise DownloadError(f"{f.filename} from {f.url} {problem}; nothing was saved")
    actual = weights.sha256_of(src)
    os.replace(src, dest)
    if f.sha256 is None:
        recorded.remember(dest, actual)
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
            # Refused before a byte is written: a web page, or a body whose size is not the declared one.
            if r.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/html":
                raise DownloadError(f"{url} answered with a web page (Content-Type text/html), not the weight file: "
                                    f"open it in a browser, download the file by hand and put it at {part.with_suffix('')}")
            if size is not None and "total" in expected and expected["total"] != size:
                raise DownloadError(f"{url} announces {expected['total']:,} bytes where {size:,} are declared: not the "
                                    f"expected file; check the link in a browser, or download the file by hand and "
                                    f"put it at {part.with_suffix('')}")
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

    repo_id, filename, revision, repo_type = parse_hf(f.url)
    where = "Hugging Face Space" if repo_type == "space" else "Hugging Face Hub"
    bars_were_off = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        cached = Path(hf_hub_download(repo_id, filename, revision=revision, repo_type=repo_type))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise DownloadError(f"cannot download {f.filename} from the {where} ({repo_id}): "
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


# --- Google Drive -------------------------------------------------------------------------------------

def _fetch_gdrive(f: WeightFile, dest: Path, progress: bool) -> str:
    """gdown fetches the file (following Drive's "cannot scan for viruses" confirmation for large files)
    into the .part name; gdown keeps its own resumable temporary file beside it until the body is complete."""
    import gdown
    import requests
    from gdown.exceptions import DownloadError as GdownError

    file_id = drive_id(f.url)
    part = part_path(dest)
    part.unlink(missing_ok=True)
    try:
        gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True, timeout=TIMEOUT)
    except GdownError as exc:  # FileURLRetrievalError too: no public link, quota exceeded, file removed
        raise DownloadError(f"Google Drive would not give {f.filename} ({f.url}): {' '.join(str(exc).split())[:300]}; "
                            f"open the link in a browser, download it by hand and put it at {dest}") from None
    except requests.HTTPError as exc:
        raise DownloadError(f"{f.url} answered HTTP {exc.response.status_code} {exc.response.reason}") from None
    except (requests.RequestException, OSError) as exc:
        raise DownloadError(f"cannot download {f.filename}: {_reason(exc, f.url)}") from None
    return _verify_and_place(f, part, dest)
