"""FID∞: the extrapolated, bias-free FID of Chong & Forsyth, "Effectively Unbiased FID and Inception
Score and where to find them", CVPR 2020 (github.com/mchong6/FID_IS_infinity).

FID is biased upwards by a term that, for large enough sets, falls linearly in 1/n. FID∞ computes the
FID of random subsets of the swaps at several sizes (15 by default, from a tenth of the set to all of
it; the reference statistics are those of the whole real set), fits FID = a + b/n by least squares
and reports a, the value at 1/n = 0. It is an *estimate*: trust it when the set holds thousands of
images (the paper uses 5 000–50 000) and the fit is good (r² near 1); below the feature dimension
(2048) the covariances are rank-deficient, the 1/n law does not hold yet, and the leaderboard keeps
the † mark on it.

FIDs of subsets are computed on the stored features, with the trace term from the eigenvalues of an
n×n matrix when n is below the feature dimension (the non-zero eigenvalues of Σ_r Σ_f equal those of
X Σ_r Xᵀ/(n−1), X the centred features), so the extrapolation costs little on small runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POINTS = 15
CHUNK = 1024  # rows converted to float64 at a time


@dataclass
class FIDInfinity:
    value: float  # intercept at 1/n = 0
    slope: float
    r2: float
    sizes: list[int]
    fids: list[float]


def fid_of(fake: np.ndarray, ref_mean: np.ndarray, ref_cov: np.ndarray, ref_sqrt: np.ndarray | None = None,
           index: np.ndarray | None = None) -> float:
    """FID of features `fake` [n, d] (or of its rows `index`) against a reference mean and covariance.

    Computed in float64; above the feature dimension the subset's moments are accumulated CHUNK rows
    at a time, so a float32 matrix of many swaps is never copied whole.
    """
    index = np.arange(len(fake)) if index is None else np.asarray(index)
    n, d = len(index), fake.shape[1]
    if n - 1 < d:  # the subset is smaller than a d x d matrix: work on its centred rows
        x = np.asarray(fake[index], np.float64)
        mu = x.mean(axis=0)
        xc = x - mu
        trace_fake = float((xc * xc).sum() / (n - 1))
        a = xc @ ref_cov @ xc.T / (n - 1)
        eig = np.linalg.eigvalsh((a + a.T) / 2)
    else:
        mu, cov = _moments(fake, index)
        trace_fake = float(np.trace(cov))
        s = ref_sqrt if ref_sqrt is not None else _sqrt_psd(ref_cov)
        m = s @ cov @ s
        eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu - np.asarray(ref_mean, np.float64)
    return float(diff @ diff + np.trace(ref_cov) + trace_fake - 2 * tr_sqrt)


def _moments(x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of rows `index` of x, summed CHUNK rows at a time. The rows are
    shifted by the first one, which keeps the sums of products well conditioned."""
    shift = np.asarray(x[index[0]], np.float64)
    total, outer = np.zeros(x.shape[1]), np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, len(index), CHUNK):
        c = np.asarray(x[index[start:start + CHUNK]], np.float64) - shift
        total += c.sum(axis=0)
        outer += c.T @ c
    n = len(index)
    mean = total / n
    return mean + shift, (outer - n * np.outer(mean, mean)) / (n - 1)


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid_infinity(fake: np.ndarray, ref_mean: np.ndarray, ref_cov: np.ndarray, points: int = POINTS,
                 seed: int = 0) -> FIDInfinity:
    """FID at `points` subset sizes from n/10 (at least 2) to n, least-squares line in 1/n, value at 0."""
    fake = np.asarray(fake)  # float32 stays float32: subsets are read from it, not copied
    ref_cov = np.asarray(ref_cov, np.float64)
    n, d = fake.shape
    if n < 4:
        raise ValueError(f"FID∞ needs at least 4 swaps, got {n}")
    sizes = sorted(set(np.linspace(max(2, n // 10), n, points).astype(int).tolist()))
    rng = np.random.default_rng(seed)
    ref_sqrt = _sqrt_psd(ref_cov) if n - 1 >= d else None
    fids = [fid_of(fake, ref_mean, ref_cov, ref_sqrt, index=rng.permutation(n)[:m]) for m in sizes]
    inv = 1.0 / np.asarray(sizes, np.float64)
    y = np.asarray(fids)
    slope, intercept = np.polyfit(inv, y, 1)
    residual = y - (intercept + slope * inv)
    total = ((y - y.mean()) ** 2).sum()
    r2 = float(1 - (residual ** 2).sum() / total) if total > 0 else 1.0
    return FIDInfinity(float(intercept), float(slope), r2, sizes, fids)
