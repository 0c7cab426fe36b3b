"""Face-Adapter through `bench run` with random-weight files in the official layouts (tiny test config)."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from conftest import complete_run
from face_adapter_inputs import write_tiny_weights

from swapbench import cli
from swapbench.methods.face_adapter.method import FaceAdapter


def test_face_adapter_runs_end_to_end_with_official_layout_files(tmp_path, capsys, monkeypatch):
    weights = write_tiny_weights(tmp_path / "weights")
    # in process: the random UNet and VAE cannot match the published sha256 of the real ones
    monkeypatch.setattr(FaceAdapter, "weights", tuple(
        dataclasses.replace(w, members=tuple(dataclasses.replace(m, sha256=()) for m in w.members))
        for w in FaceAdapter.weights))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = tmp_path / "r.sqlite"
    rc = cli.main(["run", "--no-progress", "--method", "face_adapter", "--subset", "2", "--batch-size", "2",
                   "--weights-dir", str(weights), "--set", "metrics={identity: dlib_resnet_v1}",
                   "--set", "face_adapter.tiny=true", "--set", "face_adapter.steps=2", "--store", str(store)])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "| face_adapter |" in out
    swaps, files, publishable = complete_run(store, "face_adapter")
    assert not publishable  # the tiny test configuration never reaches a published leaderboard
    assert len(swaps) == 2 and all(swaps.values())
    for pair_id in swaps:
        assert np.asarray(Image.open(files / "raw" / f"{pair_id}.png")).shape == (512, 512, 3)
