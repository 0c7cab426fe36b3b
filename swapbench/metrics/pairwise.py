"""The base of every per-pair metric.

Each metric keeps, for every pair it has seen, the pair's index and its values (cat states, so
torchmetrics gathers them across DDP processes). compute() keeps one row per pair index: a
DistributedSampler pads the last shard with repeated samples, and counting those twice would move
the mean. The per-pair values go to the results store; aggregates are their means.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class PairwiseMetric(Metric):
    names: tuple[str, ...] = ()
    full_state_update = False
    is_differentiable = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("pair_index", default=[], dist_reduce_fx="cat")
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def pair_values(self, *inputs: torch.Tensor) -> torch.Tensor:
        """[B, len(names)] float64 values for one batch of pairs."""
        raise NotImplementedError

    def update(self, pair_index: torch.Tensor, *inputs: torch.Tensor) -> None:
        self.pair_index.append(pair_index.long())
        self.values.append(self.pair_values(*inputs).double())

    def compute(self) -> dict[str, torch.Tensor]:
        """{"pair_index": [N] unique, sorted; name: [N] per-pair values, for each name}."""
        # States are lists of batches here, or one tensor once synced across DDP processes.
        index = dim_zero_cat(self.pair_index) if len(self.pair_index) else torch.zeros(0, dtype=torch.long)
        values = dim_zero_cat(self.values) if len(self.values) else torch.zeros(0, len(self.names), dtype=torch.float64)
        unique, first = _first_occurrence(index)
        out = {"pair_index": unique}
        for j, name in enumerate(self.names):
            out[name] = values[first, j]
        return out


def _first_occurrence(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    unique, inverse = torch.unique(index, sorted=True, return_inverse=True)
    positions = torch.arange(len(index), device=index.device)
    first = torch.full((len(unique),), len(index), dtype=torch.long, device=index.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first
