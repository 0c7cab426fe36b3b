import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def bench(*args, store=None, check=True, timeout=900, env=None):
    """Run the `bench` command line in a subprocess, as a user would."""
    cmd = [sys.executable, "-m", "swapbench.bench.cli", *args]
    if store is not None and args and args[0] in ("run", "leaderboard"):
        cmd += ["--store", str(store)]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def sample_crops():
    """Aligned ffhq_256 crops and landmarks of the bundled samples, keyed by image key."""
    from swapbench.datasets import get_protocol
    from swapbench.datasets.images import load_image
    from swapbench.faces import align, detect

    out = {}
    for key, ref in get_protocol("samples").images.items():
        image = load_image(ref.uri)
        face, _ = detect.pick(detect.detect(image), image.shape)
        m = align.transform("ffhq_256", face.landmarks)
        out[key] = (align.warp(image, m, 256), align.apply(m, face.landmarks).astype(np.float32))
    return out


@pytest.fixture(scope="session")
def samples_run(tmp_path_factory):
    """One full default `bench run` into a fresh store, shared by the end-to-end tests."""
    store = tmp_path_factory.mktemp("store") / "results.sqlite"
    proc = bench("run", "--no-progress", store=store)
    return store, proc
