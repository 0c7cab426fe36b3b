"""KID on stored-feature-like arrays: the same as torchmetrics' poly_mmd on the same subsets and as its
KernelInceptionDistance on whole sets; unbiased (near 0 for two draws of one distribution at small n,
where FID is not); and a column of the set-level scores that the leaderboard shows without †."""

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd

from swapbench.metrics import kid


def _features(n, d=64, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1, (n, d)) + shift).astype(np.float32)


def test_poly_mmd_matches_torchmetrics_on_the_same_subsets():
    real, fake = _features(90, seed=1), _features(70, shift=0.3, seed=2)
    worst = 0.0
    for r, f in kid.subsets(len(real), len(fake), count=10, size=50, seed=0):
        ours = kid.poly_mmd(real[r], fake[f])
        theirs = float(poly_mmd(torch.from_numpy(real[r]).double(), torch.from_numpy(fake[f]).double()))
        worst = max(worst, abs(ours - theirs))
    assert worst < 1e-10, worst
    mean, std = kid.kid(fake, real, count=10, size=50, seed=0)
    assert std > 0 and mean > 0


class _PassThrough(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def test_kid_matches_torchmetrics_metric_on_whole_sets():
    real, fake = _features(40, seed=3), _features(40, shift=0.5, seed=4)
    metric = KernelInceptionDistance(feature=_PassThrough(real.shape[1]), subsets=3, subset_size=40).double()
    metric.update(torch.from_numpy(real).double(), real=True)
    metric.update(torch.from_numpy(fake).double(), real=False)
    theirs_mean, theirs_std = (float(x) for x in metric.compute())
    ours_mean, ours_std = kid.kid(fake, real, size=40)
    assert ours_mean == pytest.approx(theirs_mean, abs=1e-9)
    assert ours_std == pytest.approx(theirs_std, abs=1e-9) and ours_std == 0.0


def test_kid_is_unbiased_at_small_n():
    """Two draws of one distribution: KID averages to ~0 at n=30 (FID would be far above 0)."""
    values = [kid.kid(_features(30, seed=2 * s), _features(30, seed=2 * s + 1))[0] for s in range(40)]
    spread = np.std(values) / np.sqrt(len(values))
    assert abs(np.mean(values)) < 3 * spread
    shifted = kid.kid(_features(30, shift=1.0, seed=5), _features(30, seed=6))[0]
    assert shifted > 10 * spread


def test_kid_is_a_set_level_column_without_dagger():
    import pandas as pd

    from swapbench.leaderboard.tables import SET_LEVEL, meaningful
    from swapbench.metrics import COLUMNS

    assert {"kid", "kid_std"} <= SET_LEVEL and "kid" in COLUMNS
    small = {"metric": "kid", "n": 72, "min_samples": 2048}
    assert meaningful(pd.Series(small)) and not meaningful(pd.Series({**small, "metric": "fid"}))
