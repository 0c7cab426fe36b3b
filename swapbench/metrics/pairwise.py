"""One pattern for every metric that compares a swap with a reference, pair by pair.

Each `update` appends the pair ids and one value per pair to "cat" states, so under DDP the
states of all processes are gathered. `compute` keeps one value per pair id: Lightning's
DistributedSampler pads the last shard with repeated samples, and counting those twice moves
the mean (101 pairs on 2 processes were evaluated as 102).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat


class PairwiseMetric(Metric):
    """Mean over unique pairs of `pair_values(swap, target)`.

    Subclasses implement `pair_values(swap [B, D], target [B, D]) -> [B]` (float64 inputs).
    `compute()` returns {"value": float64 mean over unique pairs (nan when empty),
    "pair_index": sorted unique pair ids, "pair_values": the value of each of those pairs}.
    Rows whose features could not be computed must be left out by the caller.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("pair_index", default=[], dist_reduce_fx="cat")
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def pair_values(self, swap: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def update(self, pair_index: Tensor, swap: Tensor, target: Tensor) -> None:
        pair_index = torch.as_tensor(pair_index, device=self.device).long().reshape(-1)
        if swap.shape != target.shape or swap.shape[0] != pair_index.numel():
            raise ValueError(
                f"expected pair_index [B] and swap/target [B, D] of equal shape, got "
                f"{tuple(pair_index.shape)}, {tuple(swap.shape)}, {tuple(target.shape)}"
            )
        values = self.pair_values(swap.to(self.device, torch.float64), target.to(self.device, torch.float64))
        self.pair_index.append(pair_index)
        self.values.append(values.reshape(-1))

    def compute(self) -> dict:
        if isinstance(self.pair_index, list) and not self.pair_index:
            empty = torch.zeros(0, dtype=torch.float64, device=self.device)
            return {"value": torch.tensor(float("nan"), dtype=torch.float64), "pair_index": empty.long(),
                    "pair_values": empty}
        index = dim_zero_cat(self.pair_index)
        values = dim_zero_cat(self.values)
        unique, inverse = torch.unique(index, return_inverse=True)
        # position of the first occurrence of every unique id
        positions = torch.arange(index.numel(), device=index.device)
        first = torch.full_like(unique, index.numel()).scatter_reduce(0, inverse, positions, "amin")
        kept = values[first]
        return {"value": kept.mean(), "pair_index": unique, "pair_values": kept}
