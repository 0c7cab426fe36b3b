"""The OpenCV calls the ports make give, bit for bit, what OpenCV 4 (the official code's OpenCV) gives.

tests/golden/opencv_calls.npz was written by tests/opencv_calls.py under opencv-python-headless 4.10.0.84 and
is equal under 4.14.0.94. Under OpenCV 5.1 the two warpAffine calls differ (up to 3 and 4 levels, on 33%
and 26% of pixels): such an OpenCV fails here instead of moving the ports' parity silently.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from opencv_calls import calls

GOLDEN = np.load(Path(__file__).parent / "golden" / "opencv_calls.npz")


def test_opencv_is_the_4_line():
    assert cv2.__version__.startswith("4."), f"OpenCV {cv2.__version__}: swapbench's parity holds under OpenCV 4"


@pytest.mark.parametrize("name", sorted(GOLDEN.files))
def test_call_equals_opencv4(name):
    out = calls()[name]
    want = GOLDEN[name]
    assert out.dtype == want.dtype and out.shape == want.shape
    diff = np.abs(out.astype(np.int64) - want.astype(np.int64))
    assert diff.max() == 0, f"{name}: {int((diff > 0).sum())} values differ from OpenCV 4, by up to {diff.max()}"
