"""DiffSwap through the whole `bench run` pipeline with a random-weight diffswap.pth in the official
layout (the tiny test model: `diffswap.tiny=true`, 2 DDIM steps)."""


import numpy as np
import torch
from conftest import bench, complete_run
from PIL import Image

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
    swaps, files, _ = complete_run(store, "diffswap")
    assert len(swaps) == 2 and all(swaps.values())
    for pair_id in swaps:
        # DiffSwap's own crop is the ffhq_256 scoring crop: stored as is (no raw/ copy)
        swap = np.asarray(Image.open(files / f"{pair_id}.png"))
        assert swap.shape == (256, 256, 3) and swap.std() > 1


def test_missing_checkpoint_stops_before_any_work(tmp_path):
    proc = bench("run", "--no-progress", "--method", "diffswap", "--subset", "2",
                 "--weights-dir", str(tmp_path), store=tmp_path / "r.sqlite", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "diffswap.pth" in out and "cloud.tsinghua.edu.cn" in out
