from pathlib import Path

import numpy as np
import pytest
import sklearn
import torch
from PIL import Image

from swapbench.leaderboard.prd_plot import plot_prd
from swapbench.metrics.prd import (
    improved_precision_recall,
    max_f_beta_pair,
    prd,
    prd_curve,
    subsample_to_match,
)

GOLDEN = Path(__file__).parent / "golden" / "prd_official.npz"


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


def test_prd_matches_official_implementation(golden):
    """tests/golden/prd_official.npz: msmsajjadi/precision-recall-distributions prd_score.py run on the
    stored features with numpy's global seed 0 (20 clusters, 1001 angles, 10 runs).

    Seeded identically (one RandomState(0) drawn in sequence), the k-means runs are the same and
    the curves agree to rounding: tolerance 1e-9. The golden file was made with the scikit-learn
    version stored in it; another version may change MiniBatchKMeans' random draws, which the
    seed-robustness test below bounds.
    """
    assert str(golden["sklearn_version"]) == sklearn.__version__, "regenerate the golden file for this scikit-learn"
    res = prd(golden["fake"], golden["ref"], seed=0)
    np.testing.assert_allclose(res.precision, golden["precision"], atol=1e-9)
    np.testing.assert_allclose(res.recall, golden["recall"], atol=1e-9)
    assert res.f_8 == pytest.approx(float(golden["f8"]), abs=1e-9)
    assert res.f_1_8 == pytest.approx(float(golden["f1_8"]), abs=1e-9)
    assert res.precision.shape == (1001,) and (res.n_fake, res.n_ref) == (400, 400)


def test_prd_other_seed_is_close(golden):
    # 10 averaged clusterings: another seed moves the curve by a few 1e-3 (measured 3.3e-3).
    res = prd(golden["fake"], golden["ref"], seed=7)
    assert np.abs(res.precision - golden["precision"]).max() < 0.03
    assert res.f_8 == pytest.approx(float(golden["f8"]), abs=0.02)


def test_prd_reflects_mode_dropping(golden):
    # fake covers 7 of the 10 reference modes and adds 1: recall-like F8 < precision-like F1/8 < 1
    res = prd(golden["fake"], golden["ref"], seed=0)
    assert res.f_8 < res.f_1_8 < 0.95
    same = prd(golden["ref"], golden["ref"], seed=0)
    assert same.f_8 > 0.99 and same.f_1_8 > 0.99


def test_prd_curve_on_known_histograms():
    # Disjoint supports: precision and recall are 0 everywhere; identical ones reach (1, 1).
    p, r = prd_curve(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert p.max() == 0 and r.max() == 0
    p, r = prd_curve(np.array([0.5, 0.5]), np.array([0.5, 0.5]), num_angles=1001)
    assert p[500] == pytest.approx(1.0) and r[500] == pytest.approx(1.0)
    assert max_f_beta_pair(p, r) == pytest.approx((1.0, 1.0), abs=1e-6)


def test_prd_enforces_balance(golden):
    with pytest.raises(ValueError, match="as many"):
        prd(golden["fake"][:100], golden["ref"])
    fake, ref = subsample_to_match(golden["fake"][:100], golden["ref"], seed=3)
    assert fake.shape == ref.shape == (100, 16)
    np.testing.assert_array_equal(fake, golden["fake"][:100].astype(np.float64))
    rows = {r.tobytes() for r in golden["ref"].astype(np.float64)}
    assert all(r.tobytes() in rows for r in ref) and len({r.tobytes() for r in ref}) == 100
    assert prd(fake, ref, num_runs=2).n_ref == 100


def _brute_force_pr(real, fake, k):
    def radii(x):
        d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    def coverage(queries, support, r):
        d = np.sqrt(((queries[:, None, :] - support[None, :, :]) ** 2).sum(-1))
        return float((d <= r[None, :]).any(axis=1).mean())

    return coverage(fake, real, radii(real)), coverage(real, fake, radii(fake))


def test_improved_precision_recall_matches_brute_force(golden):
    real, fake = golden["ref"][:300].astype(np.float64), golden["fake"][:250].astype(np.float64)
    expected = _brute_force_pr(real, fake, k=3)
    got = improved_precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=3, batch_size=64)
    # Same float64 distances and the same <= test: identical fractions.
    assert (got.precision, got.recall) == pytest.approx(expected, abs=1e-12)
    assert 0.3 < got.recall < got.precision < 1.0  # dropped modes lower recall, not precision
    assert (got.k, got.n_fake, got.n_ref) == (3, 250, 300)


def test_plot_prd(golden, tmp_path):
    a = prd(golden["fake"], golden["ref"], seed=0, num_runs=2)
    b = prd(golden["ref"], golden["ref"], seed=0, num_runs=2)
    path = plot_prd({"method_a": (a.precision, a.recall), "identity": (b.precision, b.recall)}, tmp_path / "p" / "prd.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 300
        pixels = np.asarray(im.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # curves, axes and legend were drawn
