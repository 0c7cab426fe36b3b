"""The celebahq crop template (CelebA-HQ / PGGAN alignment, used by MegaFS)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from faces_testdata import astronaut  # noqa: E402

from swapbench.faces import templates as T  # noqa: E402

CORNERS = np.array([[0.0, 0.0], [1023.0, 0.0], [0.0, 1023.0], [1023.0, 1023.0], [511.5, 511.5]])


def test_celebahq_quad_is_pggan_create_celebahq():
    """PGGAN dataset_tool.py: eye/mouth midpoints + 0.5, FFHQ's factors (2.0, 1.8, 0.1)."""
    five = np.array([[100.0, 100.0], [140.0, 100.0], [120.0, 120.0], [105.0, 140.0], [135.0, 140.0]])
    np.testing.assert_allclose(T.celebahq_quad(five), [[40.5, 24.5], [40.5, 184.5], [200.5, 184.5], [200.5, 24.5]])
    assert T.parse_convention("celebahq_1024") == ("celebahq", 1024)


@pytest.mark.parametrize("angle", [0.0, 0.3])
def test_a_celebahq_crop_realigned_through_the_template_is_the_identity(angle):
    """Crop a face the CelebA-HQ way, map its landmarks into the crop, align the crop again: the
    second transform must be the identity within 0.5 px at every crop corner (measured: 5e-13 px;
    the construction is similarity-equivariant and the +0.5 shift is consistent with the pixel-centre
    convention of quad_transform, so it is exact up to rounding)."""
    _, lm, _ = astronaut()
    c, s = np.cos(angle), np.sin(angle)
    lm = (lm - 256) @ np.array([[c, -s], [s, c]]).T + 256  # a tilted face as well
    m = T.estimate_transform("celebahq_1024", lm)
    in_crop = T.apply_transform(m, lm)
    again = T.estimate_transform("celebahq_1024", in_crop)
    err = np.abs(T.apply_transform(again, CORNERS) - CORNERS).max()
    print("re-alignment corner error (px):", err)
    assert err < 0.5, err
    # the eyes land where CelebA-HQ puts them: about level (the square bisects eye line and mouth axis), 1/4 of the side apart, a little above the centre
    eyes = T.five_points(in_crop)[:2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.01 * 1024 and abs((eyes[1, 0] - eyes[0, 0]) / 1024 - 0.25) < 0.02
    # and the crop differs from FFHQ's by the half-pixel shift only
    ffhq = T.apply_transform(T.estimate_transform("ffhq_1024", lm), lm)
    assert 0 < np.abs(ffhq - in_crop).max() < 1024 / 250
