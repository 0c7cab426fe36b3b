import numpy as np
import pytest
import torch

from swapbench.methods import all_methods, get
from swapbench.methods.base import FaceBatch, SwapMethod


def batch_of(crops, pairs):
    def stack(keys, j):
        return torch.stack([torch.from_numpy(np.ascontiguousarray(crops[k][j])) for k in keys])

    src, tgt = [s for s, _ in pairs], [t for _, t in pairs]
    return {
        "pair_id": [f"{t}__{s}" for s, t in pairs],
        "source": stack(src, 0).permute(0, 3, 1, 2).float() / 255,
        "target": stack(tgt, 0).permute(0, 3, 1, 2).float() / 255,
        "source_landmarks": stack(src, 1),
        "target_landmarks": stack(tgt, 1),
    }


PAIRS = [("astronaut", "grace_hopper"), ("grace_hopper", "t1_person3"), ("tom_hanks", "astronaut")]


def test_registry_lists_the_three_baselines():
    assert {"target", "source", "classic"} <= set(all_methods())
    with pytest.raises(KeyError, match="unknown method"):
        get("nope")


def test_target_and_source_return_their_inputs(sample_crops):
    b = batch_of(sample_crops, PAIRS)
    assert torch.equal(get("target")().predict_step(b)["image"], b["target"])
    assert torch.equal(get("source")().predict_step(b)["image"], b["source"])


def test_classic_changes_the_face_and_keeps_the_background(sample_crops):
    b = batch_of(sample_crops, PAIRS)
    out = get("classic")().predict_step(b)
    assert out["error"] == [None] * 3
    img = out["image"]
    assert img.shape == b["target"].shape and img.min() >= 0 and img.max() <= 1
    for i in range(3):
        lm = b["target_landmarks"][i]
        x0, y0 = lm.min(0).values.int().tolist()
        x1, y1 = lm.max(0).values.int().tolist()
        inner = (slice(None), slice(y0 + 10, y1 - 10), slice(x0 + 10, x1 - 10))
        diff_face = (img[i][inner] - b["target"][i][inner]).abs().mean()
        assert diff_face > 0.03, "the face region was not replaced"
        corner = (slice(None), slice(0, 20), slice(0, 20))
        assert torch.allclose(img[i][corner], b["target"][i][corner], atol=1 / 255), "background changed"


class Fragile(SwapMethod):
    name = "fragile-test"

    def swap(self, source: FaceBatch, target: FaceBatch):
        if (source.image.mean(dim=(1, 2, 3)) > 0.99).any():
            raise ValueError("white source")
        return target.image


def test_a_failing_pair_does_not_take_its_batch_down(sample_crops):
    b = batch_of(sample_crops, PAIRS)
    b["source"][1] = 1.0
    out = Fragile().predict_step(b)
    assert out["error"][0] is None and out["error"][2] is None
    assert "white source" in out["error"][1]
    assert torch.equal(out["image"][0], b["target"][0])


def test_a_failing_pair_alone_in_its_batch_is_recorded(sample_crops):
    b = batch_of(sample_crops, PAIRS[:1])
    b["source"][0] = 1.0
    out = Fragile().predict_step(b)
    assert out["pair_id"] == b["pair_id"] and "white source" in out["error"][0]
    assert out["image"].shape == b["target"].shape
