"""The base of every per-pair metric (identity, pose, expression, gaze).

Each metric keeps, for every pair it has seen, the pair's index and its values (cat states, so
torchmetrics gathers them across DDP processes). compute() keeps one row per pair index: a
DistributedSampler pads the last shard with repeated samples, and counting those twice would move
the mean (101 pairs on 2 processes were evaluated as 102). The per-pair values go to the results
store; aggregates are their means.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from swapbench.metrics.columns import Column


class PairwiseMetric(Metric):
    """Subclasses declare their result `columns` and implement `pair_values(*inputs)`.

    `pair_values` gets float64 inputs and returns [B, len(names)], or [B] for one column.
    `compute()` returns {"pair_index": sorted unique pair indices, <name>: per-pair values for each
    name}; a one-column metric also returns "pair_values" and their mean "value" (nan when empty).
    Rows whose features could not be computed must be left out by the caller.
    """

    columns: tuple[Column, ...] = ()
    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("pair_index", default=[], dist_reduce_fx="cat")
        self.add_state("values", default=[], dist_reduce_fx="cat")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def pair_values(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, pair_index: torch.Tensor, *inputs: torch.Tensor) -> None:
        pair_index = torch.as_tensor(pair_index, device=self.device).long().reshape(-1)
        inputs = tuple(x.to(self.device, torch.float64) if x.is_floating_point() else x.to(self.device) for x in inputs)
        if any(x.shape[0] != pair_index.numel() for x in inputs):
            raise ValueError(f"expected {pair_index.numel()} rows in every input, got {[tuple(x.shape) for x in inputs]}")
        values = self.pair_values(*inputs).double().reshape(pair_index.numel(), len(self.names))
        self.pair_index.append(pair_index)
        self.values.append(values)

    def compute(self) -> dict[str, torch.Tensor]:
        # States are lists of batches here, or one tensor once synced across DDP processes.
        index = dim_zero_cat(self.pair_index) if len(self.pair_index) else torch.zeros(0, dtype=torch.long)
        values = dim_zero_cat(self.values) if len(self.values) else torch.zeros(0, len(self.names), dtype=torch.float64)
        unique, first = _first_occurrence(index)
        out = {"pair_index": unique}
        for j, name in enumerate(self.names):
            out[name] = values[first, j]
        if len(self.names) == 1:
            out["pair_values"] = out[self.names[0]]
            out["value"] = out["pair_values"].mean() if len(unique) else torch.tensor(float("nan"), dtype=torch.float64)
        return out


def _first_occurrence(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    unique, inverse = torch.unique(index, sorted=True, return_inverse=True)
    positions = torch.arange(len(index), device=index.device)
    first = torch.full((len(unique),), len(index), dtype=torch.long, device=index.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first
