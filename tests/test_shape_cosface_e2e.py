"""The CosFace identity backend and the shape family selected by config, through a whole run."""

import json
import sqlite3

import numpy as np
from conftest import bench
from random_weights import random_state_dict
from scipy.io import savemat
from test_cosface import state

from swapbench.metrics.backends.cosface import CASIA_WEIGHTS
from swapbench.metrics.backends.expression import Deep3DReconNet

RUN = ("run", "--no-progress", "--method", "source,target", "--subset", "2", "--batch-size", "2")


def test_cosface_and_shape_error_from_the_command_line(tmp_path):
    import torch

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(state("casia"), weights / CASIA_WEIGHTS.filename)
    torch.save({"net_recon": random_state_dict(Deep3DReconNet().state_dict()), "epoch": 20}, weights / "epoch_20.pth")
    lm = np.random.default_rng(0).normal(size=(68, 3)) * 0.3
    savemat(weights / "similarity_Lm3D_all.mat", {"lm": lm})
    store = tmp_path / "r.sqlite"
    proc = bench(*RUN, "--weights-dir", str(weights), "--set",
                 "metrics={identity: cosface_sphere20_casia, shape: deep3d_id}", store=store)
    assert "Shape err" in proc.stdout and "`cosface_sphere20_casia`" in proc.stdout, proc.stdout
    db = sqlite3.connect(store)
    values = {}
    for method, run_id, provenance in db.execute("SELECT method, run_id, provenance FROM runs WHERE status='complete'"):
        rows = db.execute("SELECT metric, value FROM pair_values WHERE run_id=?", (run_id,)).fetchall()
        values[method] = {m: [v for mm, v in rows if mm == m] for m in ("id_cosine", "shape_error")}
        assert json.loads(provenance)["backends"]["shape"]["name"] == "deep3d_id"
    # the source baseline returns the source: same CosFace feature, same shape coefficients
    np.testing.assert_allclose(values["source"]["id_cosine"], 1.0, atol=1e-5)
    np.testing.assert_allclose(values["source"]["shape_error"], 0.0, atol=1e-4)
    assert len(values["target"]["shape_error"]) == 2 and min(values["target"]["shape_error"]) > 1e-3
