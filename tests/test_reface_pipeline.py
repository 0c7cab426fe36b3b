"""REFace through `bench run` with random-weight files in the official formats (tiny test architecture)."""


import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("diffusers")

from conftest import bench, complete_run  # noqa: E402
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
    swaps, files, publishable = complete_run(store, "reface")
    assert not publishable  # the tiny test configuration never reaches a published leaderboard
    assert len(swaps) == 2 and all(swaps.values())
    for pair_id in swaps:
        assert np.asarray(Image.open(files / "raw" / f"{pair_id}.png")).shape == (512, 512, 3)  # REFace's crop
