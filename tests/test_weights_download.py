"""`bench weights` and `bench weights download` against a local HTTP server (127.0.0.1 only).

The server supports Range requests and can drop a connection after N bytes, so resuming is tested
for real: the server log shows what each request asked for and how many bytes it got.
"""

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from swapbench import cli, weights
from swapbench.weights import WeightFile, download

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Serves server.files[path]; honours `Range: bytes=N-`; drops after server.drop[path] bytes once."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # a stuck client cannot hold a server thread for longer

    def do_HEAD(self):
        self.serve(body=False)

    def do_GET(self):
        self.serve(body=True)

    def serve(self, body):
        srv = self.server
        rng = self.headers.get("Range")
        entry = {"method": self.command, "path": self.path, "range": rng, "sent": 0}
        srv.log.append(entry)
        if self.path not in srv.files:
            entry["status"] = 404
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = srv.files[self.path]
        start = 0
        if rng and srv.ranges:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                entry["status"] = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        entry["status"] = 206 if start or (rng and srv.ranges) else 200
        for k, v in srv.extra_headers.get(self.path, {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if not body:
            return
        chunk = data[start:]
        drop = srv.drop.pop(self.path, None)
        if drop is not None:  # send N bytes, then close the connection mid-body
            chunk = chunk[:drop]
            self.close_connection = True
        entry["sent"] = len(chunk)  # logged before writing: the client may finish reading before this thread resumes
        self.wfile.write(chunk)
        self.wfile.flush()
        if drop is not None:
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.files, srv.drop, srv.log, srv.extra_headers, srv.ranges = {}, {}, [], {}, True
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def wdir(tmp_path, monkeypatch):
    """An empty weights directory; the environment variable and the user cache point into tmp too."""
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(download, "RETRY_WAIT", 0.0)
    d = tmp_path / "weights"
    d.mkdir()
    return d


@pytest.fixture
def registry():
    """Register test-only entries; they are removed afterwards so the real registry stays clean."""
    added = []

    def add(**kw):
        f = WeightFile(**{"licence": "test-only", **kw})
        weights.register(f)
        added.append(f.name)
        return f

    yield add
    for name in added:
        weights.FILES.discard(name)


def run_cli(capsys, monkeypatch, *argv):
    monkeypatch.setattr(cli, "console", Console(width=400))  # one table row per line
    monkeypatch.setattr(cli, "err", Console(stderr=True, width=400))
    rc = cli.main(list(argv))
    out, errtext = capsys.readouterr()
    return rc, out, errtext


def test_download_succeeds_and_verifies(server, wdir, registry):
    server.files["/w/model.pth"] = PAYLOAD
    f = registry(name="test/model", filename="model.pth", url=server.url + "/w/model.pth", sha256=SHA,
                 size=len(PAYLOAD))
    out = download.download(f, wdir, progress=True)
    assert out.action == "downloaded" and out.path == wdir / "model.pth"
    assert (wdir / "model.pth").read_bytes() == PAYLOAD
    assert not (wdir / "model.pth.part").exists()
    assert f"sha256 {SHA} verified" in out.message
    assert weights.resolve([f], wdir) == {"test/model": wdir / "model.pth"}
    # A second call finds the verified file and sends no request.
    n = len(server.log)
    assert download.download(f, wdir).action == "present" and len(server.log) == n


def test_interrupted_download_resumes_with_range(server, wdir, registry):
    server.files["/w/big.pth"] = PAYLOAD
    server.drop["/w/big.pth"] = 4 * download.CHUNK  # 262,144 of 300,000 bytes, then the connection drops
    f = registry(name="test/big", filename="big.pth", url=server.url + "/w/big.pth", sha256=SHA)
    with pytest.raises(download.DownloadError, match="interrupted at .*dropped.*run the same command again to resume"):
        download.download(f, wdir, progress=False, retries=0)
    part = wdir / "big.pth.part"
    assert not (wdir / "big.pth").exists(), "a partial file must never sit under the final name"
    kept = part.stat().st_size
    assert 0 < kept <= 4 * download.CHUNK and part.read_bytes() == PAYLOAD[:kept]
    assert weights.status(f, wdir).status == "missing"

    out = download.download(f, wdir, progress=False, retries=0)
    assert out.action == "downloaded" and (wdir / "big.pth").read_bytes() == PAYLOAD and not part.exists()
    first, second = [e for e in server.log if e["method"] == "GET"]
    assert first["range"] is None and first["sent"] == 4 * download.CHUNK
    assert second["range"] == f"bytes={kept}-" and second["status"] == 206
    assert second["sent"] == len(PAYLOAD) - kept  # only the rest was fetched


def test_dropped_connection_is_resumed_within_one_call(server, wdir, registry):
    server.files["/w/big.pth"] = PAYLOAD
    server.drop["/w/big.pth"] = 2 * download.CHUNK
    f = registry(name="test/big", filename="big.pth", url=server.url + "/w/big.pth", sha256=SHA)
    out = download.download(f, wdir, progress=False, retries=1)
    assert out.action == "downloaded" and (wdir / "big.pth").read_bytes() == PAYLOAD
    ranges = [e["range"] for e in server.log if e["method"] == "GET"]
    assert ranges[0] is None and re.fullmatch(r"bytes=\d+-", ranges[1]) and len(ranges) == 2


def test_server_ignoring_range_restarts_from_zero(server, wdir, registry):
    server.files["/w/big.pth"] = PAYLOAD
    server.ranges = False  # answers 200 with the whole file whatever Range says
    (wdir / "big.pth.part").write_bytes(b"\0" * 1000)  # a stale partial file that is not a prefix
    f = registry(name="test/big", filename="big.pth", url=server.url + "/w/big.pth", sha256=SHA)
    download.download(f, wdir, progress=False)
    assert (wdir / "big.pth").read_bytes() == PAYLOAD
    assert server.log[-1]["range"] == "bytes=1000-" and server.log[-1]["status"] == 200


def test_complete_part_file_past_end_starts_over(server, wdir, registry):
    server.files["/w/big.pth"] = PAYLOAD
    (wdir / "big.pth.part").write_bytes(PAYLOAD + b"junk")  # longer than the file: server says 416
    f = registry(name="test/big", filename="big.pth", url=server.url + "/w/big.pth", sha256=SHA)
    download.download(f, wdir, progress=False, retries=1)
    assert (wdir / "big.pth").read_bytes() == PAYLOAD
    assert [e["status"] for e in server.log] == [416, 200]


def test_corrupted_file_is_rejected(server, wdir, registry):
    bad = bytearray(PAYLOAD)
    bad[1234] ^= 0xFF
    server.files["/w/model.pth"] = bytes(bad)
    f = registry(name="test/model", filename="model.pth", url=server.url + "/w/model.pth", sha256=SHA)
    with pytest.raises(download.DownloadError) as info:
        download.download(f, wdir, progress=False)
    msg = str(info.value)
    assert f"expected sha256 {SHA}" in msg and f"got {hashlib.sha256(bad).hexdigest()}" in msg
    assert "nothing was saved" in msg and "\n" not in msg
    assert not (wdir / "model.pth").exists() and not (wdir / "model.pth.part").exists()
    assert weights.status(f, wdir).status == "missing"
    with pytest.raises(weights.WeightsError, match="or run `bench weights download test/model`"):
        weights.resolve([f], wdir)  # a run still stops before any work, and says how to get the file


def test_file_without_url_prints_instructions(server, wdir, registry, capsys, monkeypatch):
    registry(name="test/gated", filename="gated.pth", url="", sha256=SHA,
                 note="fill in the licence form at the authors' page")
    rc, out, errtext = run_cli(capsys, monkeypatch, "weights", "download", "test/gated", "--weights-dir", str(wdir))
    assert rc == 1  # the file is still not there
    assert "cannot be downloaded automatically" in out and f"then put it at {wdir / 'gated.pth'}" in out
    assert "fill in the licence form" in out and SHA in out
    assert not server.log and not list(wdir.iterdir())  # not even a lock
    # The same for a form-protected file that does have a page to visit.
    g = registry(name="test/form", filename="form.pth", url="https://example.org/form", manual=True)
    assert download.download(g, wdir).action == "manual"
    assert "get it from: https://example.org/form" in download.instructions(g, wdir)


def test_no_network_is_one_line_without_traceback(wdir, registry, capsys, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry(name="test/offline", filename="offline.pth", url=f"http://127.0.0.1:{port}/offline.pth", sha256=SHA)
    rc, out, errtext = run_cli(capsys, monkeypatch, "weights", "download", "test/offline",
                               "--weights-dir", str(wdir), "--no-progress")
    assert rc != 0
    lines = errtext.strip().splitlines()
    assert len(lines) == 1, errtext
    assert "no connection to 127.0.0.1" in lines[0] and "Connection refused" in lines[0]
    assert "Traceback" not in errtext + out
    assert [p.name for p in wdir.iterdir()] == [".locks"]  # no .part, no file under the final name


def test_weights_lists_present_missing_and_mismatch(server, wdir, registry, capsys, monkeypatch):
    registry(name="test/good", filename="good.pth", url=server.url + "/good.pth", sha256=SHA, size=len(PAYLOAD))
    registry(name="test/bad", filename="bad.pth", url=server.url + "/bad.pth", sha256=SHA)
    registry(name="test/absent", filename="absent.pth", url="hf://owner/repo/absent.pth", sha256=SHA)
    registry(name="test/nosha", filename="nosha.pth", url="", manual=True)
    (wdir / "good.pth").write_bytes(PAYLOAD)
    (wdir / "bad.pth").write_bytes(PAYLOAD[:-1])
    (wdir / "nosha.pth").write_bytes(b"x")
    (wdir / "absent.pth.part").write_bytes(PAYLOAD[:5000])
    rc, out, errtext = run_cli(capsys, monkeypatch, "weights", "--weights-dir", str(wdir), "--format", "json")
    assert rc == 0
    rows = {r["file"]: r for r in json.loads(out)}
    good = rows["good.pth"]
    assert (good["status"], good["size"], good["sha256"], good["source"]) == ("present", len(PAYLOAD), SHA, "http")
    assert good["licence"] == "test-only" and good["used_by"] == [] and good["path"] == str(wdir / "good.pth")
    assert rows["bad.pth"]["status"] == "checksum mismatch"
    assert rows["absent.pth"]["status"].startswith("missing (5,000 bytes downloaded") and rows["absent.pth"]["source"] == "hf"
    assert rows["nosha.pth"]["status"] == "present (unverified)" and rows["nosha.pth"]["source"] == "manual"
    assert f"{wdir} (--weights-dir / config weights_dir)" in errtext
    # ...and a run refuses the mismatching file before any work, naming both checksums.
    with pytest.raises(weights.WeightsError, match=f"expected sha256 {SHA}, got {hashlib.sha256(PAYLOAD[:-1]).hexdigest()}"):
        weights.resolve([weights.FILES.get("test/bad")], wdir)


def test_select_by_name_filename_and_user(registry):
    from swapbench.bench.catalogue import select
    from swapbench.methods.ghost import ARCFACE_FILE, GENERATOR_FILES

    a = registry(name="test/a", filename="a.pth", url="https://example.org/a")
    b = registry(name="test/b", filename="b.pth", url="https://example.org/b")
    assert select(["test/a"]) == [a] and select(["b.pth"]) == [b]
    # users are derived from the classes that declare a file
    assert select([], ["ghost"]) == [GENERATOR_FILES[2], ARCFACE_FILE]
    assert select(["a.pth"], ["ghost_1block"]) == [a, GENERATOR_FILES[1], ARCFACE_FILE]
    with pytest.raises(KeyError, match="unknown weight file 'nope'"):
        select(["nope"])
    with pytest.raises(KeyError, match="no weight files are used by 'm9'"):
        select([], ["m9"])


def test_hf_url_parsing():
    assert download.parse_hf("hf://owner/repo/sub/dir/w.safetensors") == ("owner/repo", "sub/dir/w.safetensors", None, "model")
    assert download.parse_hf("hf://owner/repo@v1.0/w.bin") == ("owner/repo", "w.bin", "v1.0", "model")
    assert download.parse_hf("hf://spaces/owner/demo@abc123/weights/g.pth") == ("owner/demo", "weights/g.pth", "abc123", "space")
    with pytest.raises(ValueError):
        download.parse_hf("hf://owner/w.bin")
    with pytest.raises(ValueError):
        download.parse_hf("hf://spaces/owner/w.bin")


@pytest.mark.parametrize("url, kind", [
    ("hf://owner/repo/w.pth", "hf"),
    ("hf://spaces/owner/space/weights/w.pth", "hf"),
    ("https://github.com/o/r/releases/download/v1/w.pth", "http"),
    ("https://github.com/o/r/raw/0123abc/w.mat", "http"),
    ("gdrive://154JgKpzCPW82qINcVieuPH3fZ2e0P812", "gdrive"),
    ("https://drive.google.com/open?id=154JgKpzCPW82qINcVieuPH3fZ2e0P812", "gdrive"),
    ("https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view?usp=sharing", "gdrive"),
    ("https://drive.google.com/uc?id=1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn&export=download", "gdrive"),
    ("https://drive.google.com/drive/folders/17p6ORr-JQJcw-eYtG2WGNiuS_qVKwdWd", "manual"),
    ("https://pan.baidu.com/s/1z6VgH3TA7qCJtw9cqDKJUg", "manual"),
    ("https://mail2sysueducn-my.sharepoint.com/:f:/g/personal/x/Er3P?e=ag2yxg", "manual"),
    ("https://1drv.ms/u/s!abc", "manual"),
    ("mailto:authors@example.org", "manual"),
    ("ftp://example.org/w.pth", "manual"),
])
def test_every_url_form_has_one_route(url, kind):
    f = WeightFile(name="test/form", filename="w.pth", url=url, licence="test-only")
    assert download.source_kind(f) == kind
    if kind == "gdrive":
        assert download.drive_id(url) in url


def test_declared_urls_all_route_somewhere_sensible():
    """The two files #31 found: the Basel registration page is manual, BiSeNet's Drive link goes to gdown;
    no declared file that is fetched automatically points at a page (a Drive folder, Baidu, a form)."""
    from swapbench.bench.catalogue import weight_files

    files = {name: f for name, (f, _) in weight_files().items()}
    assert download.source_kind(files["deep3d/BFM_model_front"]) == "manual"
    assert download.source_kind(files["face_parsing/bisenet_79999_iter"]) == "gdrive"
    for f in files.values():
        kind = download.source_kind(f)
        assert kind in ("hf", "http", "gdrive", "manual"), f.name
        if kind == "http":  # direct links only: release assets, raw files, files served as such
            assert "drive.google.com" not in f.url and "main.php" not in f.url, f.name


HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n"


def test_html_page_where_a_weight_file_is_expected_is_refused(server, wdir, registry):
    """A server that answers a weight URL with a web page (as a registration or Drive page does)."""
    server.files["/w/page.pth"] = HTML_PAGE
    f = registry(name="test/page", filename="page.pth", url=server.url + "/w/page.pth")
    with pytest.raises(download.DownloadError) as info:
        download.download(f, wdir, progress=False)
    msg = str(info.value)
    assert "web page (HTML)" in msg and server.url + "/w/page.pth" in msg and str(wdir / "page.pth") in msg
    assert "download page.pth by hand" in msg and "\n" not in msg
    assert not (wdir / "page.pth").exists() and not (wdir / "page.pth.part").exists()


def test_html_content_type_is_refused_before_the_body(server, wdir, registry):
    server.files["/w/page.pth"] = PAYLOAD  # even a binary body is not read when the server says text/html
    server.extra_headers["/w/page.pth"] = {"Content-Type": "text/html; charset=utf-8"}
    f = registry(name="test/page", filename="page.pth", url=server.url + "/w/page.pth")
    with pytest.raises(download.DownloadError, match="web page .Content-Type text/html"):
        download.download(f, wdir, progress=False)
    assert not (wdir / "page.pth").exists() and not (wdir / "page.pth.part").exists()


def test_size_far_from_the_declared_one_is_refused(server, wdir, registry):
    server.files["/w/small.pth"] = PAYLOAD[:1000]
    f = registry(name="test/small", filename="small.pth", url=server.url + "/w/small.pth", size=len(PAYLOAD))
    with pytest.raises(download.DownloadError, match=f"announces 1,000 bytes where {len(PAYLOAD):,} are declared"):
        download.download(f, wdir, progress=False)
    assert not (wdir / "small.pth").exists() and not (wdir / "small.pth.part").exists()  # nothing written
    # Whatever the source (gdown and the Hub announce no size to us), the file itself is measured.
    part = wdir / "small.pth.part"
    part.write_bytes(PAYLOAD[:1000])
    with pytest.raises(download.DownloadError, match=f"has 1,000 bytes where {len(PAYLOAD):,} are declared"):
        download._verify_and_place(f, part, wdir / "small.pth")
    assert not (wdir / "small.pth").exists() and not part.exists()


def test_no_published_checksum_is_recorded_at_download_and_compared_afterwards(server, wdir, registry, capsys, monkeypatch):
    server.files["/w/free.pth"] = PAYLOAD
    f = registry(name="test/free", filename="free.pth", url=server.url + "/w/free.pth")
    rc, out, _ = run_cli(capsys, monkeypatch, "weights", "--weights-dir", str(wdir), "--format", "json")
    row = next(r for r in json.loads(out) if r["file"] == "free.pth")
    assert row["sha256"] == "not published: recorded at first download, compared afterwards"
    out = download.download(f, wdir, progress=False)
    record = wdir / ".sha256" / "free.pth.sha256"
    assert record.read_text() == f"{SHA}  free.pth\n" and str(record) in out.message
    assert weights.status(f, wdir).status == "present (matches the sha256 recorded at download)"
    assert weights.resolve([f], wdir) == {"test/free": wdir / "free.pth"}
    rc, out, _ = run_cli(capsys, monkeypatch, "weights", "--weights-dir", str(wdir), "--format", "json")
    row = next(r for r in json.loads(out) if r["file"] == "free.pth")
    assert row["sha256"] == f"not published; recorded at download: {SHA}"
    # The file changes under the user: the listing and a run both say so.
    (wdir / "free.pth").write_bytes(PAYLOAD[:-1] + b"!")
    assert weights.status(f, wdir).status == "checksum mismatch"
    with pytest.raises(weights.WeightsError) as info:
        weights.resolve([f], wdir)
    msg = str(info.value)
    assert f"changed since it was downloaded: its sha256 was recorded as {SHA}" in msg and str(record) in msg
    # Deleting the record accepts the replacement, unverified.
    record.unlink()
    assert weights.status(f, wdir).status == "present (unverified)" and weights.resolve([f], wdir)


def test_listing_shows_pinned_hashes_and_filters_with_for(capsys, monkeypatch, wdir):
    from swapbench.methods.face_adapter.method import SD15_UNET_SHA256, VAE_SHA256

    rc, out, _ = run_cli(capsys, monkeypatch, "weights", "--for", "face_adapter", "--weights-dir", str(wdir),
                         "--format", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rc == 0 and all("face_adapter" in r["used_by"] for r in rows.values())
    assert "ghost/G_unet_2blocks" not in rows and "face_adapter/stable-diffusion-v1-5" in rows
    assert all(h in rows["face_adapter/stable-diffusion-v1-5"]["sha256"] for h in SD15_UNET_SHA256)
    assert rows["face_adapter/sd-vae-ft-mse"]["sha256"].endswith(VAE_SHA256[0])
    assert rows["face_adapter/FaceAdapter"]["sha256"] == "not published: recorded at first download, compared afterwards"
    assert rows["deep3d/BFM_model_front"]["source"] == "manual"


def test_google_drive_goes_through_gdown(wdir, registry, monkeypatch):
    """Routing without network: gdown's download is replaced by one that writes what Drive would give."""
    import gdown

    calls = []

    def fake_download(id=None, output=None, **kw):  # noqa: A002 - gdown's own argument name
        calls.append((id, kw.get("resume")))
        Path(output).write_bytes(answer)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    f = registry(name="test/drive", filename="drive.pth", sha256=SHA,
                 url="https://drive.google.com/open?id=154JgKpzCPW82qINcVieuPH3fZ2e0P812")
    answer = HTML_PAGE  # Drive's "quota exceeded" or sign-in page
    with pytest.raises(download.DownloadError, match="web page .HTML.*drive.google.com/open"):
        download.download(f, wdir, progress=False)
    assert not (wdir / "drive.pth").exists() and not (wdir / "drive.pth.part").exists()
    answer = PAYLOAD
    out = download.download(f, wdir, progress=False)
    assert out.action == "downloaded" and (wdir / "drive.pth").read_bytes() == PAYLOAD
    assert calls == [("154JgKpzCPW82qINcVieuPH3fZ2e0P812", True)] * 2
    g = registry(name="test/drive2", filename="drive2.pth", url="gdrive://1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn")
    download.download(g, wdir, progress=False)
    assert calls[-1][0] == "1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn"
    assert (wdir / ".sha256" / "drive2.pth.sha256").read_text().startswith(SHA)


def test_gdown_refusal_is_one_clear_line(wdir, registry, monkeypatch):
    import gdown
    from gdown.exceptions import FileURLRetrievalError

    def refuse(**kw):
        raise FileURLRetrievalError("Too many users have viewed or downloaded this file recently.\nTry later.")

    monkeypatch.setattr(gdown, "download", refuse)
    f = registry(name="test/drive", filename="drive.pth", url="gdrive://154JgKpzCPW82qINcVieuPH3fZ2e0P812")
    with pytest.raises(download.DownloadError) as info:
        download.download(f, wdir, progress=False)
    msg = str(info.value)
    assert "Google Drive would not give drive.pth" in msg and "Too many users" in msg and "\n" not in msg
    assert f"put it at {wdir / 'drive.pth'}" in msg


def test_space_files_go_through_the_hub_as_a_space(wdir, registry, monkeypatch, tmp_path):
    import huggingface_hub

    cached = tmp_path / "hfcache" / "g.pth"
    cached.parent.mkdir()
    calls = []

    def fake_hf_hub_download(repo_id, filename, revision=None, repo_type=None):
        calls.append((repo_id, filename, revision, repo_type))
        return str(cached)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    f = registry(name="test/space", filename="g.pth",
                 url="hf://spaces/ygtxr1997/ReliableSwap_Demo@main/weights/extracted/g.pth")
    cached.write_bytes(HTML_PAGE)  # an LFS pointer page or an error page in the cache is not placed
    with pytest.raises(download.DownloadError, match="web page"):
        download.download(f, wdir, progress=False)
    cached.write_bytes(PAYLOAD)
    assert download.download(f, wdir, progress=False).action == "downloaded"
    assert (wdir / "g.pth").read_bytes() == PAYLOAD
    assert calls[-1] == ("ygtxr1997/ReliableSwap_Demo", "weights/extracted/g.pth", "main", "space")


def test_manual_entries_say_where_to_get_it_and_where_to_put_it(wdir, registry):
    baidu = registry(name="test/baidu", filename="b.pth", url="https://pan.baidu.com/s/1z6VgH3TA7qCJtw9cqDKJUg",
                     note="extraction code ygss")
    text = download.download(baidu, wdir).message
    assert "Baidu Netdisk" in text and "extraction code ygss" in text and f"then put it at {wdir / 'b.pth'}" in text
    mail = registry(name="test/mail", filename="m.pth", url="mailto:authors@example.org")
    assert "write to authors@example.org" in download.download(mail, wdir).message
    from swapbench.faces.deep3d import BFM_MODEL_FRONT as form

    text = download.instructions(form, wdir)
    assert "registration" in text and "faces.dmi.unibas.ch" in text and str(wdir / "BFM_model_front.mat") in text
    with pytest.raises(weights.WeightsError) as info:
        weights.resolve([form], wdir)
    assert "bench weights download" not in str(info.value)  # it cannot: the message sends the user to the page


HF_SCRIPT = """
import json, sys
from swapbench import weights
from swapbench.weights import download
f = weights.WeightFile(name="test/hf", filename="hfmodel.bin", url="hf://owner/repo/sub/model.bin",
                       sha256=sys.argv[2], licence="test-only")
weights.register(f)
try:
    out = download.download(f, sys.argv[1], progress=False)
    print(json.dumps({"action": out.action, "path": str(out.path)}))
except download.DownloadError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_hugging_face_download_uses_hf_home_and_offline_mode(server, tmp_path):
    """hf:// files go through huggingface_hub (HF_HOME, HF_ENDPOINT, HF_HUB_OFFLINE), then are verified."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    path = "/owner/repo/resolve/main/sub/model.bin"
    server.files[path] = PAYLOAD
    server.extra_headers[path] = {"X-Repo-Commit": commit, "ETag": f'"{SHA}"'}
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": server.url, "HF_HUB_DISABLE_TELEMETRY": "1",
           "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop(weights.WEIGHTS_ENV, None)
    env.pop("HF_HUB_OFFLINE", None)

    def run(wd, sha=SHA, **extra):
        proc = subprocess.run([sys.executable, "-c", HF_SCRIPT, str(wd), sha], capture_output=True, text=True,
                              timeout=60, cwd=REPO, env={**env, **extra})
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    out = run(tmp_path / "w1")
    assert out == {"action": "downloaded", "path": str(tmp_path / "w1" / "hfmodel.bin")}
    assert (tmp_path / "w1" / "hfmodel.bin").read_bytes() == PAYLOAD
    blobs = list((tmp_path / "hf" / "hub" / "models--owner--repo" / "blobs").iterdir())
    assert len(blobs) == 1 and blobs[0].read_bytes() == PAYLOAD  # the Hugging Face cache under HF_HOME
    assert any(e["method"] == "GET" and e["path"] == path for e in server.log)

    # Offline: served from the HF cache without a single request.
    n = len(server.log)
    out = run(tmp_path / "w2", HF_HUB_OFFLINE="1")
    assert out["action"] == "downloaded" and (tmp_path / "w2" / "hfmodel.bin").read_bytes() == PAYLOAD
    assert len(server.log) == n

    # Offline and not cached: a clear one-line error.
    out = run(tmp_path / "w3", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty_hf"))
    assert "cannot download hfmodel.bin from the Hugging Face Hub" in out["error"] and "\n" not in out["error"]

    # A cached file that does not match the registered checksum is not placed in the weights dir.
    out = run(tmp_path / "w4", "0" * 64, HF_HUB_OFFLINE="1")
    assert f"expected sha256 {'0' * 64}, got {SHA}" in out["error"]
    assert not (tmp_path / "w4" / "hfmodel.bin").exists()


def test_folder_status_tells_a_missing_member_from_a_changed_one(wdir):
    good = b"unet weights"
    f = WeightFile(name="test/folder", filename="model", url="hf://owner/repo", licence="test-only", format="folder",
                   members=(weights.Member(("unet/model.safetensors",), (hashlib.sha256(good).hexdigest(),)),
                            weights.Member(("model_index.json",))))
    folder = wdir / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "model.safetensors").write_bytes(good)
    assert weights.status(f, wdir).status == "incomplete"  # model_index.json is missing
    (folder / "model_index.json").write_text("{}")
    assert weights.status(f, wdir).status == "present"
    (folder / "unet" / "model.safetensors").write_bytes(b"other weights")
    assert weights.status(f, wdir).status == "checksum mismatch"
    with pytest.raises(weights.WeightsError, match="model.safetensors does not match its checksum"):
        weights.resolve([f], wdir)
