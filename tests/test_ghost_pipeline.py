"""GHOST through the whole `bench run` pipeline with random-weight files in the official format."""


import numpy as np
from conftest import bench, complete_run
from PIL import Image


def test_ghost_runs_end_to_end_with_official_format_files(tmp_path, ghost_weights_dir):
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--no-progress", "--method", "ghost", "--subset", "2", "--batch-size", "2",
                 "--weights-dir", str(ghost_weights_dir), "--set", "metrics={identity: dlib_resnet_v1}", store=store)
    assert "| ghost |" in proc.stdout
    swaps, files, _ = complete_run(store, "ghost")
    assert len(swaps) == 2 and all(swaps.values())
    for pair_id in swaps:
        raw = np.asarray(Image.open(files / "raw" / f"{pair_id}.png"))
        scored = np.asarray(Image.open(files / f"{pair_id}.png"))
        assert raw.shape == (224, 224, 3)  # GHOST's own crop
        assert scored.shape == (256, 256, 3)  # pasted into the ffhq_256 scoring crop
