"""REFace through `bench run` with random-weight files in the official formats (tiny test architecture)."""

import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("diffusers")

from conftest import bench  # noqa: E402
from reface_inputs import write_lightning_checkpoint  # noqa: E402
from swapbench.faces import parsing  # noqa: E402
from swapbench.methods.ghost.random_weights import random_state_dict  # noqa: E402


def test_reface_runs_end_to_end_with_official_format_files(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    write_lightning_checkpoint(weights / "last.ckpt", tiny=True)
    torch.save(random_state_dict(parsing.BiSeNet().state_dict(), 0), weights / "79999_iter.pth")
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--no-progress", "--method", "reface", "--subset", "2", "--batch-size", "2",
                 "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}",
                 "--set", "reface.tiny=true", "--set", "reface.steps=2", store=store,
                 env={"XDG_CACHE_HOME": str(tmp_path / "cache")})  # the converted checkpoint lands here
    assert list((tmp_path / "cache").rglob("reface-diffusers-v1-tiny-*.safetensors"))
    assert "| reface |" in proc.stdout
    db = sqlite3.connect(store)
    (run_id, publishable) = db.execute(
        "SELECT run_id, publishable FROM runs WHERE method='reface' AND status='complete'").fetchone()
    assert not publishable  # the tiny test architecture never reaches a published leaderboard
    rows = db.execute("SELECT pair_id, ok FROM swaps WHERE run_id=?", (run_id,)).fetchall()
    assert len(rows) == 2 and all(ok for _, ok in rows)
    files = store.parent / "r.files" / "runs" / run_id
    for pair_id, _ in rows:
        assert np.asarray(Image.open(files / "raw" / f"{pair_id}.png")).shape == (512, 512, 3)  # REFace's crop
