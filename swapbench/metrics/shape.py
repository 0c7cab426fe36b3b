"""Shape error: L2 distance between the 3D face-shape (identity) coefficients of a swap and its source."""

from __future__ import annotations

from torch import Tensor

from swapbench.metrics.columns import Column
from swapbench.metrics.pairwise import PairwiseMetric


class ShapeError(PairwiseMetric):
    r"""Mean over pairs of :math:`\lVert s_{swap} - s_{source} \rVert_2`.

    Features come from a shape backend: Deep3DFaceRecon's 80 identity (`id`) coefficients of the BFM
    shape basis (`deep3d_id`), the same network and alignment as the `deep3d_exp` expression backend.
    A swap that carries the source's face shape has a small error.

    Example:
        >>> import torch
        >>> m = ShapeError()
        >>> m.update(torch.tensor([3]), torch.tensor([[0., 0., 1.]]), torch.tensor([[0., 2., 1.]]))
        >>> float(m.compute()["value"])
        2.0
    """

    columns = (Column("shape_error", "Shape err", False),)
    higher_is_better = False

    def pair_values(self, swap: Tensor, source: Tensor) -> Tensor:
        return (swap - source).norm(dim=1)
