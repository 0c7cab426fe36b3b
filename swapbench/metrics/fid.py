"""Fréchet Inception Distance of swapped faces against a real reference set.

.. math::  \\mathrm{FID} = \\lVert\\mu_r - \\mu_f\\rVert^2 + \\mathrm{Tr}\\bigl(\\Sigma_r + \\Sigma_f - 2(\\Sigma_r\\Sigma_f)^{1/2}\\bigr)

Built on torchmetrics' FrechetInceptionDistance: its states are float64 sums (sum of features,
sum of outer products, count), so memory does not grow with the number of images and DDP
synchronisation is a sum. swapbench adds:

- the feature extractor is an :class:`~swapbench.metrics.inception.InceptionFeatures` module with a
  named resize policy, and the result carries the extractor and policy names;
- the real statistics can come from the reference cache (:meth:`FID.set_reference`); they are
  held outside the synchronised states so every rank can set them without being counted twice;
- ``update(..., keep=mask)`` drops rows (failed swaps, samples a DistributedSampler repeated);
- the number of images stands next to every value, and a value from fewer than ``min_samples``
  images on either side is flagged as not meaningful (FID is strongly biased for small N).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance, _compute_fid

from swapbench.metrics.refcache import ReferenceStats

DEFAULT_MIN_SAMPLES = 2048  # the feature dimension: below it the covariance is rank-deficient


@dataclass
class FIDResult:
    fid: float
    n_fake: int
    n_ref: int
    min_samples: int
    meaningful: bool  # n_fake and n_ref are both at least min_samples
    extractor: str
    policy: str

    def as_dict(self) -> dict:
        return asdict(self)


def _mean_cov(total: Tensor, outer: Tensor, n: int) -> tuple[Tensor, Tensor]:
    mean = total / n
    return mean, (outer - n * torch.outer(mean, mean)) / (n - 1)


def _cat(state) -> Tensor:
    if isinstance(state, Tensor):
        return state
    return torch.cat(state) if len(state) else torch.zeros(0)


class FID(FrechetInceptionDistance):
    """FID with a swapbench Inception extractor; ``compute()`` returns the value as a float64 tensor.

    Args:
        extractor: module mapping [B, 3, H, W] images in [0, 1] to [B, D] features, with an int
            attribute ``num_features`` (e.g. ``backend.module`` of an InceptionBackend).
        extractor_name, policy: recorded in :class:`FIDResult`.
        min_samples: below this number of images (either side) the value is flagged not meaningful.
        keep_features: also keep the per-image features (``cat`` states, memory O(N)) for PRD and
            precision/recall; the FID sums stay O(1).
    """

    full_state_update = False

    def __init__(self, extractor: nn.Module, extractor_name: str = "", policy: str = "",
                 min_samples: int = DEFAULT_MIN_SAMPLES, keep_features: bool = False, **kwargs):
        super().__init__(feature=extractor, reset_real_features=False, normalize=True, **kwargs)
        self.extractor_name = extractor_name
        self.policy = policy
        self.min_samples = min_samples
        self.keep_features = keep_features
        if keep_features:
            self.add_state("real_features", default=[], dist_reduce_fx="cat")
            self.add_state("fake_features", default=[], dist_reduce_fx="cat")
        dim = self.fake_features_sum.shape[0]
        self.register_buffer("ref_mean", torch.zeros(dim, dtype=torch.float64), persistent=False)
        self.register_buffer("ref_cov", torch.zeros(dim, dim, dtype=torch.float64), persistent=False)
        self.ref_n = 0  # 0: no cached reference, use the real images given to update()
        self._counts = (0, 0)

    @classmethod
    def from_backend(cls, backend, **kwargs) -> "FID":
        """FID on an InceptionBackend (its module, name and resize policy)."""
        return cls(backend.module, extractor_name=backend.name, policy=backend.policy.name, **kwargs)

    def update(self, imgs: Tensor, real: bool, keep: Tensor | None = None) -> None:
        """Add a batch of images [B, 3, H, W] in [0, 1]; rows where ``keep`` is False are ignored."""
        features = self.inception(imgs)
        if keep is not None:
            features = features[keep.to(features.device, torch.bool)]
        f64 = features.double()
        side = "real" if real else "fake"
        setattr(self, f"{side}_features_sum", getattr(self, f"{side}_features_sum") + f64.sum(0))
        setattr(self, f"{side}_features_cov_sum", getattr(self, f"{side}_features_cov_sum") + f64.t() @ f64)
        setattr(self, f"{side}_features_num_samples", getattr(self, f"{side}_features_num_samples") + len(f64))
        if self.keep_features:
            getattr(self, f"{side}_features").append(features.float())

    def reset(self) -> None:
        """Forget generated images; real statistics (and kept real features) stay, as the parent does."""
        real = list(self.real_features) if self.keep_features else None  # reset() clears lists in place
        super().reset()
        if real is not None:
            self.real_features = real

    def set_reference(self, stats: ReferenceStats) -> None:
        """Use cached real statistics instead of real images (set it on every rank)."""
        self.ref_mean = torch.as_tensor(np.asarray(stats.mean), dtype=torch.float64, device=self.ref_mean.device)
        self.ref_cov = torch.as_tensor(np.asarray(stats.cov), dtype=torch.float64, device=self.ref_cov.device)
        self.ref_n = int(stats.n)

    def _reference(self) -> tuple[Tensor, Tensor, int]:
        if self.ref_n:
            return self.ref_mean, self.ref_cov, self.ref_n
        n = int(self.real_features_num_samples)
        if n < 2:
            return self.ref_mean, self.ref_cov, n
        mean, cov = _mean_cov(self.real_features_sum, self.real_features_cov_sum, n)
        return mean, cov, n

    def compute(self) -> Tensor:
        mean_r, cov_r, n_r = self._reference()
        n_f = int(self.fake_features_num_samples)
        self._counts = (n_f, n_r)  # read by result(): states are synchronised only inside compute
        if n_r < 2 or n_f < 2:
            raise RuntimeError(f"FID needs at least 2 real and 2 generated images, got {n_r} and {n_f}")
        mean_f, cov_f = _mean_cov(self.fake_features_sum, self.fake_features_cov_sum, n_f)
        return _compute_fid(mean_r, cov_r, mean_f, cov_f)

    def result(self) -> FIDResult:
        value = float(self.compute())
        n_fake, n_ref = self._counts
        return FIDResult(value, n_fake, n_ref, self.min_samples,
                         n_fake >= self.min_samples and n_ref >= self.min_samples,
                         self.extractor_name, self.policy)

    def reference_stats(self, key: str) -> ReferenceStats:
        """Statistics of the real images given to update() (over all ranks), ready for the cache."""
        if not self.keep_features:
            raise RuntimeError("reference_stats() needs FID(keep_features=True): the cache stores features")
        with self.sync_context():
            features = _cat(self.real_features).double().cpu()
            n = int(self.real_features_num_samples)
            mean, cov = _mean_cov(self.real_features_sum.cpu(), self.real_features_cov_sum.cpu(), n)
        return ReferenceStats(key, features.float().numpy(), mean.numpy(), cov.numpy(), n)

    def gathered_features(self, real: bool = False) -> Tensor:
        """Per-image features [N, D] of one side over all ranks (needs keep_features=True)."""
        if not self.keep_features:
            raise RuntimeError("features are kept only with FID(keep_features=True)")
        with self.sync_context():
            return _cat(self.real_features if real else self.fake_features).clone()
