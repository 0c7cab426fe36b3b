"""blendface_r100 against BlendFace's own iresnet.py and demo.py preprocessing.

tests/golden/blendface_parity.npz was produced by running mapooon/BlendFace iresnet.py @ 0203d91
(`iresnet18(fp16=False)`, the same file's tiny configuration of the iresnet100 the release uses) with
random_weights.py's weights, on noise and on the arcface_112 crops swapbench aligns from two sample
crops, with demo.py's /255, (x - 0.5) / 0.5 and F.normalize. The full-size network is checked by its
keys (the official iresnet100's 925) and its parameter count on the meta device.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from faces import sample_crops, to_tensor
from random_weights import norm_keys, random_state_dict

from swapbench.faces.iresnet import iresnet18, iresnet100
from swapbench.metrics import build_backend
from swapbench.metrics.backends.blendface import BLENDFACE_WEIGHTS, BlendFaceR100
from swapbench.weights import WeightsError

GOLDEN = np.load(Path(__file__).parent / "golden" / "blendface_parity.npz")
# float32, 18 layers with batch norms; other summation orders move the last bits only
TOL = dict(rtol=1e-5, atol=1e-5)


class TinyBlendFace(BlendFaceR100):
    arch = staticmethod(iresnet18)


def write(folder: Path) -> dict:
    net = iresnet18()
    torch.save(random_state_dict(net.state_dict(), norm_keys(net)), folder / BLENDFACE_WEIGHTS.filename)
    return {BLENDFACE_WEIGHTS.name: folder / BLENDFACE_WEIGHTS.filename}


def test_full_size_network_is_blendface_iresnet100():
    with torch.device("meta"):
        net = iresnet100()
    assert list(net.state_dict()) == list(GOLDEN["keys100"])
    assert sum(p.numel() for p in net.parameters()) == 65_156_160


@torch.no_grad()
def test_backend_matches_official_encoder(tmp_path):
    backend = TinyBlendFace(write(tmp_path))
    assert list(backend.module.state_dict()) == list(GOLDEN["keys18"])
    noise = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(backend.module(noise).numpy(), GOLDEN["noise_feature"], **TOL)
    crops = sample_crops()
    feats = backend.extract(to_tensor(*(crops[str(n)] for n in GOLDEN["names"])))
    assert feats.ok.all() and feats.values.shape == (2, 512)
    np.testing.assert_allclose(feats.values.numpy(), GOLDEN["feature"], **TOL)
    blank = backend.extract(torch.full((1, 3, 256, 256), 0.5))
    assert not blank.ok.any() and "blendface_r100" in blank.reasons[0]


def test_wrong_file_and_missing_file(tmp_path):
    files = write(tmp_path)
    with pytest.raises(WeightsError, match="BlendFace iresnet100 encoder"):
        BlendFaceR100(files)  # an iresnet18 file is not the release's iresnet100
    (tmp_path / BLENDFACE_WEIGHTS.filename).unlink()
    with pytest.raises(WeightsError) as err:
        build_backend("blendface_r100", weights_dir=tmp_path)
    assert BLENDFACE_WEIGHTS.filename in str(err.value)
