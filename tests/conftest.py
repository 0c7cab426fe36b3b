"""Shared helpers and fixtures of the test suite, and the rules a new test follows.

The suite runs in two pytest-xdist workers (`-n 2 --dist loadfile` in pyproject.toml): each test file whole in
one of them, in an order that differs from a one-process run (`-n 0`), each worker's torch on its share of
the cores (one thread each on 2 cores). A new test:

- Writes only under its own `tmp_path` / `tmp_path_factory` (or a monkeypatched cache directory), never
  into the checkout or the user's cache, store or weights folders; it asks the OS for a free port
  (bind to port 0) when it needs one. Two files run at the same time, so nothing may assume it is alone.
- Leaves module-level state as it found it (registries, settings): with `--dist loadfile` a worker runs
  several files in an order that differs from the one-process run, so a leak reaches other files. Use
  `monkeypatch`, and `swapbench.datasets.registered` to run a protocol by name; an autouse fixture
  below fails a test that leaves the protocol registry changed.
- Reuses the session fixtures below instead of building the same thing again: `samples_run` (a full
  default `bench run` and its store: read it, do not write into it), `samples_leaderboard` (`bench
  leaderboard` on that store), `sample_crops`, `real_images`, `ghost_weights_dir` (GHOST's files).
  Something expensive that several files need becomes a session fixture built with `shared_dir`,
  which builds it once for all workers.
- Keeps a module's expensive objects (a loaded model, a batch of faces) in module-scoped fixtures:
  `--dist loadfile` builds them once.
- Does not depend on the torch thread count: float32 results move with the reduction order, so it compares
  tensors within a tolerance that covers that, never a hash or exact equality of values derived through a
  threshold (truncation to uint8, argmax labels) unless it allows the values at the threshold; check it with
  OMP_NUM_THREADS=1 and 2. Subprocesses that bind Unix sockets (torch DDP, multiprocessing) get a short
  TMPDIR (tempfile.mkdtemp(dir="/tmp")): an AF_UNIX path has at most 107 bytes. A subprocess is waited for
  with a timeout that kills it (its process group) and reports its output, written to files, not pipes.
- Checks a port's parity on a tiny configuration and the full size on the `meta` device; writes
  full-size weight files only where the test is about those files (loading, an end-to-end run), once
  per method: one set of random official-format files that every test of the method reads (a module
  fixture, or a session fixture built with `shared_dir` when several files need them).
- Does not repeat an end-to-end run that a golden `bench check` in .ci/run does (celebahq_fixture,
  ffpp_fixture); tests/golden/samples.json is checked here, in tests/test_check.py, on `samples_run`.
- Stays cheap: `.ci/run` prints the 15 slowest tests (`--durations`), and docs/benchmark.md
  ("Test suite") lists where the time goes. A new method's tests stay under 2 minutes of CPU time.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

# test helpers (faces.py, random_weights.py, bad_inputs.py) import as top-level modules, also in spawned processes
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np
import pytest
from filelock import FileLock

import swapbench.faces.mediapipe  # noqa: E402,F401  (ignores the stray SIGPROF, see there)

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_finish(session):
    """pytest-xdist workers share the cores: each worker's torch gets its share of them, counted over the
    workers that have a file to run (with `--dist loadfile`, one file leaves the other worker idle)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        busy = min(workers, len({item.path for item in session.items}))
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // busy))


def bench(*args, store=None, check=True, timeout=900, env=None):
    """Run the `bench` command line in a subprocess, as a user would."""
    cmd = [sys.executable, "-m", "swapbench.cli", *args]
    if store is not None and args and args[0] in ("run", "leaderboard"):
        cmd += ["--store", str(store)]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def complete_run(store, method: str) -> tuple[dict, Path, bool]:
    """The complete run of `method` in a results store: ({pair id: ok}, its files folder, publishable)."""
    import sqlite3

    db = sqlite3.connect(store)
    (run_id, publishable) = db.execute(
        "SELECT run_id, publishable FROM runs WHERE method=? AND status='complete'", (method,)).fetchone()
    swaps = dict(db.execute("SELECT pair_id, ok FROM swaps WHERE run_id=?", (run_id,)).fetchall())
    return swaps, Path(store).parent / f"{Path(store).stem}.files" / "runs" / run_id, bool(publishable)


@pytest.fixture(autouse=True)
def _protocol_registry_unchanged():
    """Fails a test that leaves the protocol registry changed: every later test of its process would see
    it. A benchmark script's `samples` subset set for good once gave the later files of an xdist worker a
    3-image `samples` protocol (swapbench.datasets.registered is the scoped way)."""
    from swapbench.datasets import PROTOCOLS

    before = dict(PROTOCOLS)
    yield
    changed = sorted(k for k in before.keys() | PROTOCOLS.keys() if before.get(k) is not PROTOCOLS.get(k))
    PROTOCOLS.clear()
    PROTOCOLS.update(before)
    assert not changed, f"the test left these protocols registered or replaced: {', '.join(changed)}"


@pytest.fixture(scope="session")
def sample_crops():
    """Aligned ffhq_256 crops and landmarks of the bundled samples, keyed by image key."""
    from swapbench.datasets import get_protocol
    from swapbench.datasets.images import load_image
    from swapbench.faces import detect, templates, warp

    out = {}
    for key, ref in get_protocol("samples").images.items():
        image = load_image(ref.uri)
        face, _ = detect.pick(detect.detect(image), image.shape)
        m = templates.estimate_transform("ffhq_256", face.landmarks)
        out[key] = (warp.align_image(image, m, 256), templates.apply_transform(m, face.landmarks).astype(np.float32))
    return out


def shared_dir(tmp_path_factory, name: str, build) -> Path:
    """A folder that `build(folder)` fills once per test run, shared by all pytest-xdist workers.

    The first worker that asks builds it under the run's base temporary folder; the others wait on a
    file lock and reuse it. Without xdist it is an ordinary session folder. pytest removes it with
    the run's other temporary folders."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the folder that holds every worker's base folder
    folder = base / "shared" / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{folder}.lock"):
        if not (folder / ".complete").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half way
            folder.mkdir()
            build(folder)
            (folder / ".complete").touch()
    return folder


@pytest.fixture(scope="session")
def samples_run(tmp_path_factory):
    """One full default `bench run` into a fresh store, shared by the end-to-end tests (all workers).
    Read it only: tests of other files read it at the same time."""
    def build(folder):
        # 1.3 min on an idle machine; the limit only catches a hang (a loaded machine took over 15 min)
        proc = bench("run", "--no-progress", store=folder / "results.sqlite", timeout=3600)
        (folder / "stdout.txt").write_text(proc.stdout)
        (folder / "stderr.txt").write_text(proc.stderr)

    folder = shared_dir(tmp_path_factory, "samples_run", build)
    proc = subprocess.CompletedProcess(["bench", "run", "--no-progress"], 0, (folder / "stdout.txt").read_text(),
                                       (folder / "stderr.txt").read_text())
    return folder / "results.sqlite", proc


@pytest.fixture(scope="session")
def samples_leaderboard(samples_run, tmp_path_factory):
    """`bench leaderboard --out FOLDER` on the samples_run store, once for all workers:
    (FOLDER with the markdown, csv and figures, the printed markdown). Read only."""
    def build(folder):
        proc = bench("leaderboard", "--out", str(folder / "lb"), store=samples_run[0])
        (folder / "stdout.txt").write_text(proc.stdout)

    folder = shared_dir(tmp_path_factory, "samples_leaderboard", build)
    return folder / "lb", (folder / "stdout.txt").read_text()


@pytest.fixture(scope="session")
def ghost_weights_dir(tmp_path_factory):
    """GHOST's two files (G_unet_2blocks.pth, backbone.pth) in the official format, written once for all
    workers: the parity golden's random weights (ghost_inputs.seeded_weights(2)). Read only."""
    import torch
    from ghost_inputs import seeded_weights

    from swapbench.methods.ghost import Ghost

    def build(folder):
        filename = {f.name: f.filename for f in Ghost().weights}
        for name, state in seeded_weights(2).items():
            torch.save(state, folder / filename[name])

    return shared_dir(tmp_path_factory, "ghost_weights", build)


def _square_256(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return np.asarray(Image.fromarray(rgb[top:top + s, left:left + s]).resize((256, 256), Image.LANCZOS))


@pytest.fixture(scope="session")
def real_images():
    """astronaut, coffee, chelsea (scikit-image) and grace_hopper (matplotlib) as [4, 3, 256, 256] in [0, 1]."""
    import matplotlib.cbook
    import skimage.data
    import torch
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = np.asarray(Image.open(fh).convert("RGB"))
    rgbs = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), hopper]
    return torch.stack([torch.from_numpy(_square_256(im).copy()).permute(2, 0, 1) for im in rgbs]).float() / 255
