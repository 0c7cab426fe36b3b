"""Gaze error: angle in degrees between the gaze directions of a swap and its target."""

from __future__ import annotations

import torch
from torch import Tensor

from swapbench.metrics.columns import Column
from swapbench.metrics.pairwise import PairwiseMetric


def gaze_vector(pitch_yaw_deg: Tensor) -> Tensor:
    """Unit gaze vectors [B, 3] from [B, 2] (pitch, yaw) in degrees.

    The convention of L2CS-Net and GazeHub (camera frame, x right, y down, z away from the
    camera; looking into the camera is (0, 0, -1)): g = (-cos p sin y, -sin p, -cos p cos y).
    So yaw > 0 looks towards the image's left and pitch > 0 looks up.
    """
    p, y = torch.deg2rad(pitch_yaw_deg[:, 0]), torch.deg2rad(pitch_yaw_deg[:, 1])
    return torch.stack([-p.cos() * y.sin(), -p.sin(), -p.cos() * y.cos()], dim=1)


class GazeError(PairwiseMetric):
    r"""Mean over pairs of the angle :math:`\angle(g_{swap}, g_{target})` in degrees.

    Features are [B, 2] (pitch, yaw) in degrees from a gaze backend (`l2cs`, `mediapipe_iris_gaze`).
    The angle is atan2(|a x b|, a . b), exact for identical directions where acos is not.

    Example:
        >>> import torch
        >>> m = GazeError()
        >>> m.update(torch.tensor([0]), torch.tensor([[0., 30.]]), torch.tensor([[0., -15.]]))
        >>> round(float(m.compute()["value"]), 6)
        45.0
    """

    columns = (Column("gaze_error", "Gaze err (°)", False),)
    higher_is_better = False

    def pair_values(self, swap: Tensor, target: Tensor) -> Tensor:
        a, b = gaze_vector(swap), gaze_vector(target)
        return torch.rad2deg(torch.atan2(torch.linalg.cross(a, b).norm(dim=1), (a * b).sum(dim=1)))
