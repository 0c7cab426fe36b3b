"""dinov2_vitl14: DINOv2 CLS features through transformers from a model folder, and FD-DINOv2.

A tiny random-weight Dinov2Model saved with save_pretrained stands for the facebook/dinov2-large
snapshot; the full-size configuration is not instantiated (CPU time)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swapbench.metrics import build_backend
from swapbench.metrics.backends.common import imagenet_normalize
from swapbench.metrics.backends.dinov2 import DINOV2_LARGE, DINOv2Features
from swapbench.metrics.distribution import reference_stats
from swapbench.metrics.fid import FID
from swapbench.weights import WeightsError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       patch_size=14, image_size=224)
    path = tmp_path_factory.mktemp("w") / DINOV2_LARGE.filename
    Dinov2Model(cfg).save_pretrained(path)
    return path


@torch.no_grad()
def test_features_are_the_normed_cls_token_of_the_resized_image(folder):
    from transformers import Dinov2Model

    backend = build_backend("dinov2_vitl14", weights_dir=folder.parent)
    images = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    feats = backend.extract(images)
    assert feats.ok.all() and feats.values.shape == (3, 32) and backend.dim == 32
    model = Dinov2Model.from_pretrained(folder).eval()
    x = imagenet_normalize(F.interpolate(images, size=(224, 224), mode="bicubic", antialias=True))
    out = model(pixel_values=x)
    cls = out.last_hidden_state[:, 0]  # the CLS token; transformers applies the final layer norm to it
    np.testing.assert_allclose(cls.mean(1).numpy(), 0, atol=1e-5)  # normed (unit layer-norm scale at init)
    np.testing.assert_allclose(feats.values.numpy(), cls.numpy(), rtol=0, atol=1e-5)
    # one image at a time gives the same features (no batch effects)
    np.testing.assert_allclose(backend.extract(images[:1]).values.numpy(), feats.values[:1].numpy(), atol=1e-5)


def test_fd_dinov2_equals_torchmetrics_frechet_distance(folder, tmp_path):
    from torchmetrics.image.fid import _compute_fid

    backend = DINOv2Features({DINOV2_LARGE.name: folder})
    g = torch.Generator().manual_seed(2)
    real = backend.extract(torch.rand(40, 3, 64, 64, generator=g)).values.numpy()
    fake = backend.extract(torch.rand(40, 3, 64, 64, generator=g) ** 2).values.numpy()
    stats = reference_stats([str(i) for i in range(40)], real, backend.feature_name, tmp_path)

    class Passthrough(torch.nn.Module):
        num_features = backend.dim

        def forward(self, x):
            return x

    fid = FID(Passthrough())
    fid.set_reference(stats)
    fid.update(torch.from_numpy(fake), real=False)
    r, f = torch.from_numpy(real).double(), torch.from_numpy(fake).double()
    expected = _compute_fid(r.mean(0), torch.cov(r.T), f.mean(0), torch.cov(f.T))
    assert float(expected) > 0.01
    np.testing.assert_allclose(float(fid.compute()), float(expected), rtol=1e-6)
    assert len(list(tmp_path.glob("*.npz"))) == 1  # the reference statistics were cached


def test_missing_folder_stops_before_any_work(tmp_path):
    with pytest.raises(WeightsError) as err:
        build_backend("dinov2_vitl14", weights_dir=tmp_path)
    assert DINOV2_LARGE.filename in str(err.value)
