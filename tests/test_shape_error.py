"""Shape error: the family, its metric against an independent computation, and the deep3d_id backend."""

from pathlib import Path

import numpy as np
import torch
from random_weights import random_state_dict

from swapbench import metrics
from swapbench.metrics.backends.expression import Deep3DExpression, Deep3DReconNet, Deep3DShape
from swapbench.metrics.shape import ShapeError

GOLDEN = Path(__file__).parent / "golden"


def test_shape_error_matches_independent_computation():
    rng = np.random.default_rng(0)
    swap, source = rng.normal(size=(7, 80)), rng.normal(size=(7, 80))
    m = ShapeError()
    m.update(torch.arange(4), torch.from_numpy(swap[:4]), torch.from_numpy(source[:4]))
    m.update(torch.tensor([4, 5, 6, 3]), torch.from_numpy(swap[[4, 5, 6, 3]]), torch.from_numpy(source[[4, 5, 6, 3]]))
    out = m.compute()  # pair 3 seen twice (a padded DDP shard) counts once
    expected = np.sqrt(((swap - source) ** 2).sum(axis=1))
    np.testing.assert_allclose(out["pair_values"].numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(float(out["value"]), expected.mean(), rtol=1e-12)


def test_shape_family_compares_with_the_source_pairwise():
    fam = metrics.FAMILIES["shape"]
    assert fam.compares_with == "source" and not fam.retrieval and metrics.FAMILIES["identity"].retrieval
    assert [(c.name, c.label, c.arrow) for c in fam.columns] == [("shape_error", "Shape err", "↓")]
    assert metrics.backend_class("deep3d_id") is Deep3DShape and Deep3DShape.family == "shape"
    assert Deep3DShape.weights == Deep3DExpression.weights  # the file that already gives expression


@torch.no_grad()
def test_deep3d_id_backend_gives_the_identity_coefficients(tmp_path):
    from faces import sample_crops, to_tensor
    from scipy.io import savemat

    g = np.load(GOLDEN / "deep3d_parity.npz")
    sd = random_state_dict(Deep3DReconNet().state_dict())
    torch.save({"net_recon": sd, "epoch": 20}, tmp_path / "epoch_20.pth")
    lm68 = np.zeros((68, 3))
    lm68[[36, 39]], lm68[[42, 45]], lm68[30], lm68[48], lm68[54] = g["lm3d5"]
    savemat(tmp_path / "similarity_Lm3D_all.mat", {"lm": lm68})
    files = {"deep3d/epoch_20": tmp_path / "epoch_20.pth", "deep3d/similarity_Lm3D_all": tmp_path / "similarity_Lm3D_all.mat"}
    crop = sample_crops()["tom_hanks"]
    x = to_tensor(crop, np.full_like(crop, 128))
    shape = Deep3DShape(files).extract(x)
    assert shape.ok.tolist() == [True, False] and shape.reasons[1] == "no face found by deep3d_id"
    assert shape.values.shape == (2, 80)
    model = Deep3DReconNet()
    model.load_state_dict(sd)
    coeffs = model.eval()(torch.from_numpy(g["aligned"]).permute(2, 0, 1)[None].float() / 255)
    # the backend aligns from its own MediaPipe points, the golden crop from stored ones: sub-pixel
    # differences in the warp move coefficients of size ~3 by up to 1.5e-3 (measured)
    np.testing.assert_allclose(shape.values[:1].numpy(), coeffs[:, 0:80].numpy(), rtol=0, atol=5e-3)
    assert np.abs(shape.values[:1].numpy() - coeffs[:, 80:160].numpy()).max() > 0.1  # not another slice
    # the expression backend reads the next 64 coefficients of the same network output
    exp = Deep3DExpression(files).extract(x)
    both = torch.cat([shape.values[:1], exp.values[:1]], 1)
    backend = Deep3DShape(files)
    from swapbench.faces.mediapipe import shared
    from swapbench.metrics.backends.common import to_uint8_rgb
    from swapbench.metrics.backends.expression import MEDIAPIPE_5, deep3d_align

    a = to_uint8_rgb(x[:1])[0]
    r = shared().run([a])[0]
    lm5 = np.stack([r.pixels[list(ix)].mean(0) for ix in MEDIAPIPE_5])
    own = backend.model(torch.from_numpy(deep3d_align(a, lm5, backend.lm3d5).copy()).permute(2, 0, 1)[None].float() / 255)
    np.testing.assert_allclose(both.numpy(), own[:, 0:144].numpy(), rtol=0, atol=1e-5)
