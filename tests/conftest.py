import os
import subprocess
import sys
from pathlib import Path

# test helpers (faces.py, random_weights.py, bad_inputs.py) import as top-level modules, also in spawned processes
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np
import pytest

import swapbench.faces.mediapipe  # noqa: E402,F401  (ignores the stray SIGPROF, see there)

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session")
def samples_run(tmp_path_factory):
    """One full default `bench run` into a fresh store, shared by the end-to-end tests."""
    store = tmp_path_factory.mktemp("store") / "results.sqlite"
    proc = bench("run", "--no-progress", store=store)
    return store, proc


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
