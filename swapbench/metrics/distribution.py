"""Set-level metrics of the swaps against the real faces of the protocol: FID, KID, PRD and precision/recall.

The real set is every face crop of the protocol (sources and targets, eval convention). Its statistics
come from the reference cache, keyed by the content of the crops and the extractor, so they are
computed once and shared by every method and run. Values are set-level (no per-pair values, no
bootstrap interval); the number of images stands next to each, and FID/PRD below `min_samples`
images are marked as not meaningful in the leaderboard. FID∞ (metrics/fid_infinity.py) is FID
extrapolated to infinitely many swaps, an estimate with the same mark. KID (unbiased at any n) is not marked; its
standard deviation over random subsets (`kid_std`) stands beside it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from swapbench.metrics.columns import Column
from swapbench.metrics.fid import FID
from swapbench.metrics.fid_infinity import CHUNK, fid_infinity
from swapbench.metrics.kid import kid
from swapbench.metrics.prd import improved_precision_recall, prd, subsample_to_match
from swapbench.metrics.refcache import ReferenceStats, RefStatsCache, reference_key


class _Features(nn.Module):
    """Stored features pass straight through: the FID sums are built from them."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x):
        return x


def reference_stats(ref_shas: list[str], ref_features: np.ndarray, feature_name: str, cache_dir=None) -> ReferenceStats:
    name, _, policy = feature_name.partition("/")
    key = reference_key(ref_shas, name, policy)
    return RefStatsCache(cache_dir).get_or_compute(key, lambda: ref_features)


# The same statistics on DINOv2 features are not FID: Stein et al. (dgm-eval) name them FD, FD∞ and KD with the
# encoder. A run with `metrics: {inception: dinov2_vitl14}` stores them under the family's names; the leaderboards
# show them in these columns, never in FID's.
DINOV2_COLUMNS = {
    "fid": Column("fd_dinov2", "FD-DINOv2", False),
    "fid_inf": Column("fd_inf_dinov2", "FD∞-DINOv2 (est.)", False),
    "kid": Column("kd_dinov2", "KD-DINOv2", False),
    "kid_std": Column("kd_dinov2_std", "KD-DINOv2 sd", False),
    "prd_f8": Column("prd_f8_dinov2", "PRD F8 (DINOv2)", True),
    "prd_f1_8": Column("prd_f1_8_dinov2", "PRD F1/8 (DINOv2)", True),
    "precision": Column("precision_dinov2", "P (k=3, DINOv2)", True),
    "recall": Column("recall_dinov2", "R (k=3, DINOv2)", True),
}


class DistributionScores:
    """The set-level columns of the inception family, computed by `score` from stored features."""

    columns = (
        Column("fid", "FID", False),
        Column("fid_inf", "FID∞ (est.)", False),
        Column("kid", "KID", False),
        Column("kid_std", "KID sd", False),
        Column("prd_f8", "PRD F8", True),
        Column("prd_f1_8", "PRD F1/8", True),
        Column("precision", "P (k=3)", True),
        Column("recall", "R (k=3)", True),
    )

    @staticmethod
    def score(fake, ref, options, seed):
        return score(fake, ref, options, seed)


def score(fake: np.ndarray, ref: ReferenceStats, options: dict, seed: int) -> tuple[dict[str, float], dict]:
    """({column: value}, {"prd": (precision, recall)}) for N generated features against the reference.

    `fake` is the one copy of the swaps' features (float32); every metric reads subsets or blocks of
    it, so scoring memory grows by N x D x 4 bytes, not by several float64 copies.
    """
    fid = FID(_Features(fake.shape[1]), min_samples=options["min_samples"])
    fid.set_reference(ref)
    for start in range(0, len(fake), CHUNK):  # torchmetrics makes each update's features float64
        fid.update(torch.from_numpy(fake[start:start + CHUNK]), real=False)
    values = {"fid": float(fid.compute())}
    ref_features = np.asarray(ref.features, dtype=np.float32)
    if len(fake) >= 4:
        values["fid_inf"] = fid_infinity(fake, ref.mean, ref.cov, seed=seed).value
    values["kid"], values["kid_std"] = kid(fake, ref_features, seed=seed)
    ev, rf = subsample_to_match(fake, ref_features, seed=seed)
    curve = prd(ev, rf, num_clusters=min(options["prd_clusters"], len(ev) - 1), num_runs=options["prd_runs"], seed=seed)
    values["prd_f8"], values["prd_f1_8"] = float(curve.f_8), float(curve.f_1_8)
    pr = improved_precision_recall(ref_features, fake, k=options["knn_k"])
    values["precision"], values["recall"] = pr.precision, pr.recall
    return values, {"prd": (curve.precision.tolist(), curve.recall.tolist())}
