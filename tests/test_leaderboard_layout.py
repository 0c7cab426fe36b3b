"""The leaderboard finds crops where the run filed them: with a non-default detector and multi-face
policy, the SOURCE/TARGET cells of the grid hold faces and the pasted-back frames are written."""

import numpy as np
from conftest import bench
from PIL import Image

from swapbench.leaderboard.grid import CELL


def test_leaderboard_with_another_detector_and_policy(tmp_path):
    store = tmp_path / "r.sqlite"
    bench("run", "--method", "target", "--subset", "3", "--no-progress", "--set", "face.detector=mediapipe",
          "--set", "face.multi_face=central", "--set", "metrics={identity: dlib_resnet_v1}", store=store)
    proc = bench("leaderboard", "--out", str(tmp_path / "lb"), store=store)
    assert "warning" not in proc.stderr
    grid = np.asarray(Image.open(tmp_path / "lb" / "samples_grid.png").convert("L"), dtype=np.float32)
    rows = (grid.shape[0] - 18) // CELL
    assert rows >= 1
    for r in range(rows):
        for c in range(2):  # SOURCE and TARGET cells: faces, not blank paper
            cell = grid[18 + r * CELL:18 + (r + 1) * CELL, c * CELL:(c + 1) * CELL]
            assert cell.std() > 20, (r, c, cell.std())
    assert (tmp_path / "lb" / "samples_frames.png").stat().st_size > 10_000
