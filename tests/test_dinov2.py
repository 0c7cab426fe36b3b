"""dinov2_vitl14: DINOv2 CLS features through transformers from a model folder, and FD-DINOv2.

A tiny random-weight Dinov2Model saved with save_pretrained stands for the facebook/dinov2-large
snapshot; the full-size configuration is not instantiated (CPU time).

tests/golden/dinov2_dgm_eval.npz: dgm-eval @ 74c79f7 `DINOv2Encoder` (default clean_resize=False) on a tiny
DINOv2 built with facebookresearch/dinov2 @ b8931f7's `DinoVisionTransformer` (the torch.hub code dgm-eval
loads: 518 table, interpolate_offset 0.1, layer scale), 32 wide, 2 blocks, with `hub_weights()` below mapped to
the hub's keys, fed the two 256 sample crops as PIL images. Stand-ins only for torchvision (Resize((224, 224),
BICUBIC) on a PIL image = PIL resize, ToTensor = / 255, Normalize). It holds the two CLS features, the per-
channel means of the network input and a 32 x 32 patch of the 8-bit resized t1_2 crop.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from faces import sample_crops, to_tensor
from PIL import Image
from random_weights import random_state_dict

from swapbench.metrics import build_backend
from swapbench.metrics.backends.common import IMAGENET_MEAN, IMAGENET_STD, imagenet_normalize
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


def dgm_eval_transform(images: torch.Tensor) -> torch.Tensor:
    """dgm-eval's DINOv2Encoder.transform on the 8-bit images: PIL bicubic resize to 224, / 255, ImageNet normalisation."""
    out = []
    for rgb in (images * 255).round().byte().permute(0, 2, 3, 1).numpy():
        x = torch.from_numpy(np.asarray(Image.fromarray(rgb).resize((224, 224), Image.BICUBIC)).copy()).float() / 255
        out.append((x.permute(2, 0, 1) - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1))
    return torch.stack(out)


@torch.no_grad()
def test_features_are_the_normed_cls_token_of_the_resized_image(folder):
    from transformers import Dinov2Model

    backend = build_backend("dinov2_vitl14", weights_dir=folder.parent)
    images = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    feats = backend.extract(images)
    assert feats.ok.all() and feats.values.shape == (3, 32) and backend.dim == 32
    model = Dinov2Model.from_pretrained(folder).eval()
    out = model(pixel_values=dgm_eval_transform(images))
    cls = out.last_hidden_state[:, 0]  # the CLS token; transformers applies the final layer norm to it
    np.testing.assert_allclose(cls.mean(1).numpy(), 0, atol=1e-5)  # normed (unit layer-norm scale at init)
    np.testing.assert_allclose(feats.values.numpy(), cls.numpy(), rtol=0, atol=1e-5)
    # one image at a time gives the same features (no batch effects)
    np.testing.assert_allclose(backend.extract(images[:1]).values.numpy(), feats.values[:1].numpy(), atol=1e-5)


def hub_weights(model) -> dict:
    """The golden's weights: random_weights.py on the transformers keys, with position embeddings of unit scale
    (the He scale of a [1, 1370, D] table, ~0.008, would hide how they are resampled) and layer scales of 1."""
    state = random_state_dict(model.state_dict())
    pos = "embeddings.position_embeddings"
    state[pos] = torch.randn(state[pos].shape, generator=torch.Generator().manual_seed(0))
    return {k: torch.ones_like(v) if "layer_scale" in k else v for k, v in state.items()}


@torch.no_grad()
def test_matches_dgm_eval_on_the_hub_network(tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    golden = np.load(Path(__file__).parent / "golden" / "dinov2_dgm_eval.npz")
    model = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                                     patch_size=14, image_size=518))  # the hub's 37 x 37 position table
    model.load_state_dict(hub_weights(model))
    model.save_pretrained(tmp_path / DINOV2_LARGE.filename)
    backend = DINOv2Features({DINOV2_LARGE.name: tmp_path / DINOV2_LARGE.filename})
    assert backend.feature_name == "dinov2_vitl14/dgm_eval"  # stored apart from features of another preprocessing
    images = to_tensor(*(sample_crops()[str(n)] for n in golden["names"]))
    x = backend.preprocess(images)
    resized = (x[1] * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) * 255
    np.testing.assert_array_equal(resized.permute(1, 2, 0).round().byte().numpy()[100:132, 100:132],
                                  golden["dgm_eval_resized_t1_2_patch"])  # the same 8-bit PIL resize
    np.testing.assert_allclose(x.double().mean((2, 3)).numpy(), golden["dgm_eval_input_mean"], rtol=0, atol=1e-6)
    # measured 6e-8 (features up to 0.33): the same computation in float32
    feats = backend.extract(images).values.numpy()
    np.testing.assert_allclose(feats, golden["dgm_eval_feature"], rtol=0, atol=1e-5)
    # transformers' own resampling of the table (output size 16, not scale (16 + 0.1) / 37) and a float resize
    # are what the backend removes: measured 5.7e-4 away, far outside the tolerance
    model.eval()
    plain = F.interpolate(images, size=(224, 224), mode="bicubic", antialias=True)
    assert np.abs(model(pixel_values=imagenet_normalize(plain)).pooler_output.numpy() - golden["dgm_eval_feature"]).max() > 1e-4


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


def test_full_size_position_table_on_meta():
    """facebook/dinov2-large's configuration (518 px, patch 14: a 37 x 37 table) gets the 16 x 16 table of 224."""
    from transformers import Dinov2Config, Dinov2Model

    from swapbench.metrics.backends.dinov2 import hub_position_embeddings

    with torch.device("meta"):
        model = Dinov2Model(Dinov2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                         patch_size=14, image_size=518, layerscale_value=1.0))
    assert tuple(model.embeddings.position_embeddings.shape) == (1, 1 + 37 * 37, 1024)
    hub_position_embeddings(model, 224)
    assert tuple(model.embeddings.position_embeddings.shape) == (1, 1 + 16 * 16, 1024)
