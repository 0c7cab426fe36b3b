"""DiffSwap through the whole `bench run` pipeline with a random-weight diffswap.pth in the official
layout (the tiny test model: `diffswap.tiny=true`, 2 DDIM steps)."""

import sqlite3

import numpy as np
import torch
from PIL import Image

from conftest import bench
from swapbench.methods.diffswap import CHECKPOINT
from tests import diffswap_inputs as inp


def test_diffswap_runs_end_to_end_with_an_official_format_file(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save({"state_dict": inp.tiny_official_state()}, weights / CHECKPOINT.filename)
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--no-progress", "--method", "diffswap", "--subset", "2", "--batch-size", "2",
                 "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}",
                 "--set", "diffswap.tiny=true", "--set", "diffswap.steps=2", store=store)
    assert "| diffswap |" in proc.stdout
    db = sqlite3.connect(store)
    (run_id,) = db.execute("SELECT run_id FROM runs WHERE method='diffswap' AND status='complete'").fetchone()
    rows = db.execute("SELECT pair_id, ok FROM swaps WHERE run_id=?", (run_id,)).fetchall()
    assert len(rows) == 2 and all(ok for _, ok in rows)
    files = store.parent / "r.files" / "runs" / run_id
    for pair_id, _ in rows:
        # DiffSwap's own crop is the ffhq_256 scoring crop: stored as is (no raw/ copy)
        swap = np.asarray(Image.open(files / f"{pair_id}.png"))
        assert swap.shape == (256, 256, 3) and swap.std() > 1


def test_missing_checkpoint_stops_before_any_work(tmp_path):
    proc = bench("run", "--no-progress", "--method", "diffswap", "--subset", "2",
                 "--weights-dir", str(tmp_path), store=tmp_path / "r.sqlite", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "diffswap.pth" in out and "cloud.tsinghua.edu.cn" in out
