"""GHOST through the whole `bench run` pipeline with random-weight files in the official format."""

import sqlite3

import numpy as np
import torch
from conftest import bench
from PIL import Image

from swapbench.methods.ghost import Ghost
from swapbench.methods.ghost.method import random_weights


def test_ghost_runs_end_to_end_with_official_format_files(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    ghost = Ghost()
    for name, state in random_weights(2, seed=0).items():
        torch.save(state, weights / next(f.filename for f in ghost.weights if f.name == name))
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--no-progress", "--method", "ghost", "--subset", "2", "--batch-size", "2",
                 "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}", store=store)
    assert "| ghost |" in proc.stdout
    db = sqlite3.connect(store)
    (run_id,) = db.execute("SELECT run_id FROM runs WHERE method='ghost' AND status='complete'").fetchone()
    rows = db.execute("SELECT pair_id, ok FROM swaps WHERE run_id=?", (run_id,)).fetchall()
    assert len(rows) == 2 and all(ok for _, ok in rows)
    files = store.parent / "r.files" / "runs" / run_id
    for pair_id, _ in rows:
        raw = np.asarray(Image.open(files / "raw" / f"{pair_id}.png"))
        scored = np.asarray(Image.open(files / f"{pair_id}.png"))
        assert raw.shape == (224, 224, 3)  # GHOST's own crop
        assert scored.shape == (256, 256, 3)  # pasted into the ffhq_256 scoring crop
