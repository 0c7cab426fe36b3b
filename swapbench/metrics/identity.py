"""Identity metrics: cosine similarity of swap and source, and retrieval top-1/top-5.

For each swap, its embedding is compared by cosine similarity with the gallery of source images
of the protocol. Gallery entries of one identity are pooled by their best match, identities are
ranked by that score, and the swap is a top-k hit when its true source identity is among the k
best. The cosine value is with the pair's own source image. Embeddings are L2-normalised first, so
backends with unnormalised descriptors (dlib) are compared by angle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from swapbench.metrics.columns import Column
from swapbench.metrics.pairwise import PairwiseMetric


class IdentityMetric(PairwiseMetric):
    """Per-pair identity values: `id_cosine`, `id_top1` (0/1) and `id_top5` (0/1).

    gallery: [G, D] source embeddings; gallery_identity: [G] integer identity label per entry.
    update(pair_index [B], swap [B, D], source_index [B] (row of the pair's source in the gallery)).
    """

    columns = (
        Column("id_cosine", "ID cos", True),
        Column("id_top1", "ID top-1 %", True, percent=True),
        Column("id_top5", "ID top-5 %", True, percent=True),
    )

    def __init__(self, gallery: torch.Tensor, gallery_identity: torch.Tensor, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("gallery", F.normalize(gallery.double(), dim=1))
        self.register_buffer("gallery_identity", gallery_identity.long())

    def pair_values(self, swap: torch.Tensor, source_index: torch.Tensor) -> torch.Tensor:
        # An elementwise product and a row sum instead of a matmul: BLAS picks kernels by matrix
        # shape, so a matmul's last bits would depend on the batch size and a resumed run could differ.
        sims = (F.normalize(swap.double(), dim=1)[:, None, :] * self.gallery[None]).sum(-1)  # [B, G]
        n_ids = int(self.gallery_identity.max()) + 1
        per_id = torch.full((len(swap), n_ids), -2.0, dtype=sims.dtype, device=sims.device)
        per_id = per_id.scatter_reduce(1, self.gallery_identity.expand_as(sims), sims, reduce="amax")
        true_id = self.gallery_identity[source_index]
        true_score = per_id.gather(1, true_id[:, None])
        rank = (per_id > true_score).sum(1)
        cosine = sims.gather(1, source_index[:, None])[:, 0]
        return torch.stack([cosine, (rank < 1).double(), (rank < 5).double()], dim=1)
