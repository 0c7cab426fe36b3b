"""CMMD against the authors' published formula, and the clip_vitl14_336 backend from a model folder."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swapbench import metrics
from swapbench.metrics import build_backend
from swapbench.metrics.backends.clip import CLIP_L14_336, CLIP_MEAN, CLIP_STD
from swapbench.metrics.cmmd import cmmd
from swapbench.weights import WeightsError


def authors_mmd(x, y, sigma=10.0, scale=1000.0):
    """google-research cmmd distance.py `mmd`, transcribed to numpy float64."""
    x_sq, y_sq = np.diag(x @ x.T), np.diag(y @ y.T)
    gamma = 1 / (2 * sigma ** 2)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + y_sq[:, None] + y_sq[None, :])))
    return scale * (k_xx + k_yy - 2 * k_xy)


def test_cmmd_matches_authors_formula(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 16)); x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.normal(0.3, 1, size=(70, 16)); y /= np.linalg.norm(y, axis=1, keepdims=True)
    expected = authors_mmd(x, y)
    assert expected > 1e-3
    assert abs(cmmd(x, y) - expected) <= 1e-9
    monkeypatch.setattr("swapbench.metrics.cmmd.BLOCK", 7)  # blocked sums give the same value
    assert abs(cmmd(x, y) - expected) <= 1e-9
    assert abs(cmmd(x, x)) <= 1e-12


def test_clip_family_is_set_level():
    fam = metrics.FAMILIES["clip"]
    assert fam.compares_with == "reference" and [c.name for c in fam.columns] == ["cmmd"]
    assert metrics.backend_class("clip_vitl14_336").family == "clip"


@torch.no_grad()
def test_clip_backend_from_folder(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=56, patch_size=14, projection_dim=24)
    folder = tmp_path / CLIP_L14_336.filename
    CLIPVisionModelWithProjection(cfg).save_pretrained(folder)
    backend = build_backend("clip_vitl14_336", weights_dir=tmp_path)
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    feats = backend.extract(images)
    assert feats.ok.all() and feats.values.shape == (3, 24)
    model = CLIPVisionModelWithProjection.from_pretrained(folder).eval()
    x = F.interpolate(images, size=(56, 56), mode="bicubic", antialias=True)
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    expected = F.normalize(model(pixel_values=x).image_embeds, dim=1)
    np.testing.assert_allclose(feats.values.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    (folder / "config.json").unlink()
    with pytest.raises(WeightsError):
        build_backend("clip_vitl14_336", weights_dir=tmp_path)


def test_cmmd_through_a_run(tmp_path):
    import sqlite3

    from conftest import bench
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=56, patch_size=14, projection_dim=24)
    CLIPVisionModelWithProjection(cfg).save_pretrained(tmp_path / "w" / CLIP_L14_336.filename)
    store = tmp_path / "r.sqlite"
    proc = bench("run", "--no-progress", "--method", "source", "--subset", "2", "--batch-size", "2",
                 "--weights-dir", str(tmp_path / "w"), "--set", "metrics={clip: clip_vitl14_336}",
                 "--set", "fid.knn_k=1", store=store)
    assert "CMMD" in proc.stdout, proc.stdout
    db = sqlite3.connect(store)
    rows = db.execute("SELECT metric, value FROM aggregates").fetchall()
    value = dict(rows)["cmmd"]
    assert value > 0 and np.isfinite(value)
