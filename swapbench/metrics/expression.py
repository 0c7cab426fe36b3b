"""Expression error: L2 distance between the expression vectors of a swap and its target."""

from __future__ import annotations

from torch import Tensor

from swapbench.metrics.columns import Column
from swapbench.metrics.pairwise import PairwiseMetric


class ExpressionError(PairwiseMetric):
    r"""Mean over pairs of :math:`\lVert e_{swap} - e_{target} \rVert_2`.

    Features come from an expression backend: Deep3DFaceRecon `exp` coefficients (64-d, REFace's
    protocol), mediapipe blendshape scores (52-d) or HSEmotion logits (8-d). Values of different
    backends live on different scales and are never compared with one another.

    Example:
        >>> import torch
        >>> m = ExpressionError()
        >>> m.update(torch.tensor([7]), torch.tensor([[1., 2.]]), torch.tensor([[4., 6.]]))
        >>> float(m.compute()["value"])
        5.0
    """

    columns = (Column("expression_error", "Expr err", False),)
    higher_is_better = False

    def pair_values(self, swap: Tensor, target: Tensor) -> Tensor:
        return (swap - target).norm(dim=1)
