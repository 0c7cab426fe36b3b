"""CMMD against the authors' published formula, and the clip_vitl14_336 backend from a model folder.

tests/golden/cmmd_preprocess.npz: google-research/cmmd's preprocessing of the two 256 sample crops and a
256 x 200 cut of the first: io_util.py `_read_image` / `_center_crop_and_resize` (PIL calls as written;
transcribed because the module imports tensorflow) then embedding.py `_clip_preprocess` (jax.image.resize run
with jax 0.10.2, then scenic's normalize_image; transcribed because the module imports scenic). It holds the
per-channel means of the network input and a 32 x 32 patch of it. scenic's CLIP network itself (flax) is not
run; `openai_clip_feature_56` is openai/CLIP @ d05afc4 clip/model.py `VisionTransformer` (the network scenic
converts its checkpoints from) at 56 px, width 32, 2 layers, 2 heads, patch 14, output 24, with random_weights.py's
weights on the transformers keys mapped to openai's, on that preprocessing at 56 px, L2-normalised as scenic does.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from faces import sample_crops, to_tensor
from PIL import Image

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
    rgb = (images * 255).round().byte().permute(0, 2, 3, 1).numpy()
    x = torch.stack([torch.from_numpy(np.asarray(Image.fromarray(a).resize((56, 56), Image.BICUBIC)).copy()) for a in rgb])
    x = x.permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    expected = F.normalize(model(pixel_values=x).image_embeds, dim=1)
    np.testing.assert_allclose(feats.values.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    (folder / "config.json").unlink()
    with pytest.raises(WeightsError):
        build_backend("clip_vitl14_336", weights_dir=tmp_path)


@torch.no_grad()
def test_clip_preprocessing_matches_cmmd_code(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    golden = np.load(Path(__file__).parent / "golden" / "cmmd_preprocess.npz")
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=336, patch_size=14, projection_dim=24)
    CLIPVisionModelWithProjection(cfg).save_pretrained(tmp_path / CLIP_L14_336.filename)
    backend = build_backend("clip_vitl14_336", weights_dir=tmp_path)
    assert backend.feature_name == "clip_vitl14_336/cmmd"  # stored apart from features of another preprocessing
    crops = sample_crops()
    square = to_tensor(*(crops[str(n)] for n in golden["names"]))
    for tag, images in (("square", square), ("cut", square[:1, :, :, 28:228])):  # 256 x 200: the centred square
        x = backend.preprocess(images).permute(0, 2, 3, 1).numpy()
        assert x.shape[1:] == (336, 336, 3)
        # measured 1.2e-7: the same 8-bit PIL resize; jax.image.resize to the same size moved values by 2e-7 there
        np.testing.assert_allclose(x[:, 150:182, 150:182], golden[f"{tag}_patch"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(x.astype(np.float64).mean((1, 2)), golden[f"{tag}_channel_mean"], rtol=0, atol=1e-6)
    # the float resize the backend used before: up to 2.0 grey levels away (mean 0.28), 0.015 in this patch
    old = F.interpolate(square, size=(336, 336), mode="bicubic", antialias=True)
    old = ((old - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)).permute(0, 2, 3, 1)
    assert np.abs(old.numpy()[:, 150:182, 150:182] - golden["square_patch"]).max() > 1e-3


@torch.no_grad()
def test_clip_embeddings_match_openai_network(tmp_path):
    from random_weights import random_state_dict
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    golden = np.load(Path(__file__).parent / "golden" / "cmmd_preprocess.npz")
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                                                           num_attention_heads=2, image_size=56, patch_size=14,
                                                           projection_dim=24))
    model.load_state_dict(random_state_dict(model.state_dict()))
    model.save_pretrained(tmp_path / CLIP_L14_336.filename)
    backend = build_backend("clip_vitl14_336", weights_dir=tmp_path)
    feats = backend.extract(to_tensor(*(sample_crops()[str(n)] for n in golden["names"])))
    # measured 1.2e-7: the same float32 transformer (tolerance 1e-5 on unit vectors)
    np.testing.assert_allclose(feats.values.numpy(), golden["openai_clip_feature_56"], rtol=0, atol=1e-5)
    assert np.abs(golden["openai_clip_feature_56"][0] - golden["openai_clip_feature_56"][1]).max() > 1e-2


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
