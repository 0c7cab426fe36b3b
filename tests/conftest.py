import matplotlib.cbook
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image


def _square_256(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return np.asarray(Image.fromarray(rgb[top:top + s, left:left + s]).resize((256, 256), Image.LANCZOS))


@pytest.fixture(scope="session")
def real_images() -> torch.Tensor:
    """astronaut, coffee, chelsea (scikit-image) and grace_hopper (matplotlib) as [4, 3, 256, 256] in [0, 1]."""
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = np.asarray(Image.open(fh).convert("RGB"))
    rgbs = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), hopper]
    return torch.stack([torch.from_numpy(_square_256(im).copy()).permute(2, 0, 1) for im in rgbs]).float() / 255
