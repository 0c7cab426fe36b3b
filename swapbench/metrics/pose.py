"""Pose error: L2 distance of (yaw, pitch, roll) in degrees between a swap and its target."""

from __future__ import annotations

from torch import Tensor

from swapbench.metrics.columns import Column
from swapbench.metrics.pairwise import PairwiseMetric


class PoseError(PairwiseMetric):
    r"""Mean over pairs of :math:`\lVert (y, p, r)_{swap} - (y, p, r)_{target} \rVert_2` in degrees.

    Features are [B, 3] (yaw, pitch, roll) in degrees from a pose backend (`hopenet`,
    `mediapipe_pose`, `pnp68_pose`), all in the same Euler convention.

    Example:
        >>> import torch
        >>> m = PoseError()
        >>> m.update(torch.tensor([0, 1]), torch.tensor([[3., 4., 0.], [1., 1., 1.]]), torch.tensor([[0., 0., 0.], [1., 1., 1.]]))
        >>> float(m.compute()["value"])
        2.5
    """

    columns = (Column("pose_error", "Pose err (°)", False),)
    higher_is_better = False

    def pair_values(self, swap: Tensor, target: Tensor) -> Tensor:
        return (swap[:, :3] - target[:, :3]).norm(dim=1)
