"""Precision and recall of a generated distribution against a reference one.

PRD (Sajjadi et al., "Assessing Generative Models via Precision and Recall", NeurIPS 2018):
cluster the union of real and generated features into 20 clusters with mini-batch k-means,
compare the two cluster histograms P (reference) and Q (generated) along 1001 directions
lambda = tan(angle), angle in [eps, pi/2 - eps]::

    alpha(lambda) = sum_i min(lambda * P_i, Q_i)      (precision)
    beta(lambda)  = alpha(lambda) / lambda            (recall)

averaged over 10 clusterings, and summarised by max F_8 (recall-like) and max F_1/8
(precision-like). Seeded here: run r uses one numpy RandomState(seed) drawn in sequence, which is
what the reference implementation does when numpy's global seed is set.

Improved precision/recall (Kynkäänniemi et al., NeurIPS 2019): each real feature has a ball of
radius = distance to its k-th nearest real neighbour (k = 3); precision is the fraction of
generated features inside some real ball, recall the fraction of real features inside some
generated ball.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans


@dataclass
class PRDResult:
    precision: np.ndarray  # [num_angles]
    recall: np.ndarray  # [num_angles]
    f_8: float  # max F_8: recall-like summary
    f_1_8: float  # max F_1/8: precision-like summary
    n_fake: int
    n_ref: int


def prd_curve(eval_dist: np.ndarray, ref_dist: np.ndarray, num_angles: int = 1001, epsilon: float = 1e-10):
    """PRD curve of two discrete distributions over the same states."""
    if not 0 < epsilon < 0.1:
        raise ValueError(f"epsilon must be in (0, 0.1), got {epsilon}")
    if not 3 <= num_angles <= 1e6:
        raise ValueError(f"num_angles must be in [3, 1e6], got {num_angles}")
    slopes = np.tan(np.linspace(epsilon, np.pi / 2 - epsilon, num_angles))
    precision = np.minimum(np.asarray(ref_dist)[None, :] * slopes[:, None], np.asarray(eval_dist)[None, :]).sum(1)
    recall = precision / slopes
    if max(precision.max(), recall.max()) > 1.001:  # beyond rounding: the inputs are not distributions
        raise ValueError("precision or recall above 1: inputs must be probability vectors")
    return np.clip(precision, 0, 1), np.clip(recall, 0, 1)


def cluster_histograms(eval_data: np.ndarray, ref_data: np.ndarray, num_clusters: int, random_state):
    """Cluster the union with mini-batch k-means; normalised histograms of each side over the clusters."""
    data = np.vstack([eval_data, ref_data])
    labels = MiniBatchKMeans(n_clusters=num_clusters, n_init=10, random_state=random_state).fit(data).labels_
    count = lambda x: np.bincount(x, minlength=num_clusters) / len(x)  # noqa: E731
    return count(labels[: len(eval_data)]), count(labels[len(eval_data):])


def f_beta(precision, recall, beta: float, epsilon: float = 1e-10):
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall + epsilon)


def max_f_beta_pair(precision, recall, beta: float = 8) -> tuple[float, float]:
    """(max F_beta, max F_1/beta) over the curve."""
    if beta <= 0:
        raise ValueError("beta must be positive")
    return float(np.max(f_beta(precision, recall, beta))), float(np.max(f_beta(precision, recall, 1 / beta)))


def prd(eval_features, ref_features, num_clusters: int = 20, num_angles: int = 1001, num_runs: int = 10,
        seed: int = 0, enforce_balance: bool = True) -> PRDResult:
    """PRD of generated features [N, D] against reference features [M, D] (numpy or torch).

    The paper requires N == M, since k-means is biased towards the larger set; pass a random subset
    of the larger side or set enforce_balance=False (not recommended).
    """
    eval_data = _numpy64(eval_features)
    ref_data = _numpy64(ref_features)
    if enforce_balance and len(eval_data) != len(ref_data):
        raise ValueError(f"PRD needs as many generated as reference features, got {len(eval_data)} and {len(ref_data)}")
    rng = np.random.RandomState(seed)
    curves = [prd_curve(*cluster_histograms(eval_data, ref_data, num_clusters, rng), num_angles)
              for _ in range(num_runs)]
    precision = np.mean([c[0] for c in curves], axis=0)
    recall = np.mean([c[1] for c in curves], axis=0)
    f8, f18 = max_f_beta_pair(precision, recall, 8)
    return PRDResult(precision, recall, f8, f18, len(eval_data), len(ref_data))


def subsample_to_match(eval_features, ref_features, seed: int = 0):
    """Random subset of the larger side, as large as the smaller one (PRD wants equal sizes), float64."""
    eval_data, ref_data = _numpy(eval_features), _numpy(ref_features)
    n = min(len(eval_data), len(ref_data))
    rng = np.random.RandomState(seed)
    pick = lambda x: x if len(x) == n else x[np.sort(rng.choice(len(x), n, replace=False))]  # noqa: E731
    # Picked before the cast: the larger side is never copied whole.
    return _numpy64(pick(eval_data)), _numpy64(pick(ref_data))


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def _numpy64(x) -> np.ndarray:
    return np.asarray(_numpy(x), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Improved precision and recall (k-NN manifolds)


def _blocks(x: torch.Tensor, batch_size: int):
    """(start, float64 copy of rows start:start+batch_size): features are held in their stored precision
    and converted a block at a time."""
    for start in range(0, len(x), batch_size):
        yield start, x[start:start + batch_size].to(torch.float64)


def _distances(queries: torch.Tensor, support: torch.Tensor, batch_size: int):
    """For each block of queries, its exact float64 distances to each block of the support, in order:
    (query start, support start, [b_q, b_s] distances). Memory is O(batch_size * D + batch_size²)."""
    for q_start, q in _blocks(queries, batch_size):
        for s_start, s in _blocks(support, batch_size):
            yield q_start, s_start, torch.cdist(q, s, compute_mode="donot_use_mm_for_euclid_dist")


def knn_radii(features, k: int = 3, batch_size: int = 1024) -> torch.Tensor:
    """Distance of each feature to its k-th nearest neighbour in the same set (itself excluded)."""
    features = _torch(features)
    # The k+1 smallest distances of each row so far; they include the zero distance of each point to itself.
    nearest = torch.full((len(features), k + 1), float("inf"), dtype=torch.float64)
    for q_start, _, d in _distances(features, features, batch_size):
        rows = slice(q_start, q_start + len(d))
        both = torch.cat([nearest[rows], d], dim=1)
        nearest[rows] = both.topk(k + 1, dim=1, largest=False, sorted=True).values
    return nearest[:, k]


def _inside_manifold(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, batch_size: int) -> torch.Tensor:
    inside = torch.zeros(len(queries), dtype=torch.bool)
    for q_start, s_start, d in _distances(queries, support, batch_size):
        rows = slice(q_start, q_start + len(d))
        inside[rows] |= (d <= radii[None, s_start:s_start + d.shape[1]]).any(dim=1)
    return inside


def _torch(x) -> torch.Tensor:
    return x.detach().cpu() if torch.is_tensor(x) else torch.from_numpy(np.asarray(x))


@dataclass
class PrecisionRecall:
    precision: float
    recall: float
    k: int
    n_fake: int
    n_ref: int


def improved_precision_recall(real_features, fake_features, k: int = 3, batch_size: int = 1024) -> PrecisionRecall:
    """Kynkäänniemi et al. 2019 precision and recall of fake [N, D] against real [M, D] features.

    Exact pairwise distances in float64, in blocks of batch_size rows on each side: memory is
    O(batch_size * D + batch_size²) beyond the features themselves, kept in their own precision.
    """
    real, fake = _torch(real_features), _torch(fake_features)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"need more than k={k} features on each side, got {len(real)} real and {len(fake)} fake")
    precision = _inside_manifold(fake, real, knn_radii(real, k, batch_size), batch_size).double().mean()
    recall = _inside_manifold(real, fake, knn_radii(fake, k, batch_size), batch_size).double().mean()
    return PrecisionRecall(float(precision), float(recall), k, len(fake), len(real))
