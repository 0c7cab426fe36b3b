"""The crops the engine hands to a method are contiguous NCHW tensors (as torchvision's ToTensor gives the
official code), not channels-last views: on CPU torch's GroupNorm on a channels-last tensor is far less exact."""

from __future__ import annotations

import numpy as np
import torch

from swapbench.bench.prepare import Crop, save_png
from swapbench.bench.stages import SwapInputs
from swapbench.bench.trainer import loader
from swapbench.faces.warp import from_uint8
from swapbench.methods.base import SwapMethod


def _crop(path, seed):
    img = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    save_png(img, path)
    return Crop(True, None, path, landmarks=np.zeros((68, 2), np.float32), matrix=np.eye(2, 3))


class Recorder(SwapMethod):
    name = "layout_recorder"
    size = 64

    def swap(self, source, target):
        self.seen = (source.image, target.image)
        return target.image


def test_method_receives_contiguous_nchw_crops(tmp_path):
    items = [(f"p{i}", _crop(tmp_path / f"s{i}.png", i), _crop(tmp_path / f"t{i}.png", 10 + i), "s", "t") for i in range(3)]
    batch = next(iter(loader(SwapInputs(items), {"engine": {"batch_size": 3, "num_workers": 0}})))
    method = Recorder()
    out = method.predict_step(batch)
    assert out["error"] == [None] * 3
    for image in method.seen:
        assert image.shape == (3, 3, 64, 64)
        assert image.is_contiguous(), f"strides {image.stride()}: channels-last in memory"


def test_from_uint8_is_contiguous_and_groupnorm_stays_exact():
    arr = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    x = from_uint8(arr)
    assert x.is_contiguous() and from_uint8(arr[0]).is_contiguous()
    assert torch.equal(x, torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255)
    # a tensor of scale ~7, as inside a VAE encoder: GroupNorm within 1e-5 of float64 (channels-last: ~6e-4)
    h = torch.nn.functional.interpolate(x, scale_factor=4) * 7 + 3
    gn = torch.nn.GroupNorm(1, 3, affine=False)
    err = (gn(h) - gn(h.double())).abs().max().item()
    assert err < 1e-5, err
