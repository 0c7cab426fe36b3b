"""FID∞ (Chong & Forsyth 2020): the subset FID equals torchmetrics' FID on both sides of the feature
dimension, and the extrapolation removes most of the small-n bias on Gaussian features."""

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import _compute_fid

from swapbench.metrics.fid_infinity import fid_infinity, fid_of


def _stats(x):
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("n", [12, 300])  # below and above the feature dimension (32)
def test_fid_of_matches_torchmetrics(n):
    rng = np.random.default_rng(n)
    ref = rng.normal(0, 1, (500, 32))
    fake = rng.normal(0.2, 1.1, (n, 32))
    mr, cr = _stats(ref)
    mf, cf = _stats(fake)
    theirs = float(_compute_fid(*(torch.from_numpy(a) for a in (mr, cr, mf, cf))))
    assert fid_of(fake, mr, cr) == pytest.approx(theirs, rel=1e-6, abs=1e-6)


def test_extrapolation_removes_the_small_n_bias():
    rng = np.random.default_rng(0)
    d = 16
    ref = rng.normal(0, 1, (20000, d))
    mr, cr = _stats(ref)
    same = rng.normal(0, 1, (800, d))  # the true FID is ~0
    result = fid_infinity(same, mr, cr, seed=0)
    assert len(result.sizes) == 15 and result.sizes[-1] == 800
    assert result.fids[-1] > 0.01  # FID at n=800 is biased upwards
    assert abs(result.value) < 0.3 * result.fids[-1]
    assert result.slope > 0 and result.r2 > 0.8
    shifted = fid_infinity(rng.normal(0.5, 1, (800, d)), mr, cr, seed=0)
    assert shifted.value == pytest.approx(d * 0.25, rel=0.15)  # ||mu||^2 = 16 * 0.25


def test_subset_fid_above_the_dimension_is_summed_in_chunks(monkeypatch):
    """Rows `index` of a float32 matrix, moments summed a few rows at a time: the FID of those rows
    taken out and computed in float64 at once (tolerance: float64 rounding of different summation orders)."""
    from swapbench.metrics import fid_infinity as module

    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, (400, 16))
    fake = (rng.normal(0.3, 1.2, (500, 16)) + 100).astype(np.float32)  # far from 0: the shift matters
    index = rng.permutation(500)[:230]
    mr, cr = _stats(ref)
    whole = fid_of(fake[index].astype(np.float64), mr, cr)
    monkeypatch.setattr(module, "CHUNK", 7)
    assert fid_of(fake, mr, cr, index=index) == pytest.approx(whole, rel=1e-9)
    mf, cf = _stats(fake[index].astype(np.float64))
    assert whole == pytest.approx(float(_compute_fid(*(torch.from_numpy(a) for a in (mr, cr, mf, cf)))), rel=1e-6)
