"""Kernel Inception Distance (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018).

KID is the squared maximum mean discrepancy between the Inception features of the swaps and of the
real faces under the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, with the unbiased estimator
(diagonal terms left out). Unlike FID it is unbiased at any sample size, so it is meaningful on small
runs; its spread over random subsets says how much it would move with another draw. The math is
torchmetrics' `KernelInceptionDistance` (`poly_mmd`), computed here in float64 on stored features with a
seeded generator (tests/test_kid.py checks it against torchmetrics on the same subsets).
"""

from __future__ import annotations

import numpy as np

SUBSETS = 100  # torchmetrics' defaults
SUBSET_SIZE = 1000


def poly_mmd(real: np.ndarray, fake: np.ndarray, degree: int = 3, coef: float = 1.0) -> float:
    """Unbiased MMD² of two equally sized sets under the polynomial kernel (torchmetrics' poly_mmd)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m, gamma = real.shape[0], 1.0 / real.shape[1]
    k_xx = (real @ real.T * gamma + coef) ** degree
    k_yy = (fake @ fake.T * gamma + coef) ** degree
    k_xy = (real @ fake.T * gamma + coef) ** degree
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / m**2)


def subsets(n_real: int, n_fake: int, count: int = SUBSETS, size: int = SUBSET_SIZE, seed: int = 0):
    """(real indices, fake indices) of each random subset; size is capped at the smaller set."""
    m = min(size, n_real, n_fake)
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield rng.permutation(n_real)[:m], rng.permutation(n_fake)[:m]


def kid(fake: np.ndarray, real: np.ndarray, count: int = SUBSETS, size: int = SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
    """(mean, standard deviation) of the unbiased KID over `count` random subsets of `size` images each."""
    if min(len(fake), len(real)) < 2:
        raise ValueError(f"KID needs at least 2 images on each side, got {len(fake)} swaps and {len(real)} real")
    fake, real = np.asarray(fake), np.asarray(real)  # subsets are made float64 one at a time (poly_mmd)
    if len(fake) == len(real) <= size:  # every subset is the whole of both sets: compute it once
        return poly_mmd(real, fake), 0.0
    scores = np.array([poly_mmd(real[r], fake[f]) for r, f in subsets(len(real), len(fake), count, size, seed)])
    return float(scores.mean()), float(scores.std())
