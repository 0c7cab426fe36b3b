"""E4S with both stages on (reenact=true, restore=true), at the reduced sizes of e4s.model=tiny.

The stages have their own parity tests (test_e4s_reenact.py, test_e4s_restore.py); this checks the
method's wiring: the driven face equals what the stage modules give when called directly on the same
crops (skimage resize -> Reenactor -> to_uint8 truncation -> RGB to BGR -> Restorer -> BGR to RGB), the
swap runs through, and the run id carries the options.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from faces import smooth_batch

from swapbench.methods.base import FaceBatch
from swapbench.methods.e4s import E4S
from swapbench.methods.e4s import random_weights as rw
from swapbench.methods.e4s.reenact import resize_like_skimage, to_uint8

SIZE = 512  # the method takes any crop size >= 512; the restorer's output (1024) is resized to it


@pytest.fixture(scope="module")
def e4s():
    m = E4S(model="tiny")  # reenact and restore on, the official defaults
    m.load_weights(rw.method_state("tiny", seed=0, reenact=True, restore=True))
    return m


def _crops():
    src, tgt = smooth_batch(1, n=1, size=SIZE), smooth_batch(2, n=1, size=SIZE)
    return FaceBatch(src.image, src.landmarks, ["p0"]), FaceBatch(tgt.image, tgt.landmarks, ["p0"])


def test_swap_drives_the_stages_as_called_directly(e4s, monkeypatch):
    src, tgt = _crops()
    seen = []
    driven_of = e4s.driven
    monkeypatch.setattr(e4s, "driven", lambda *x: seen.append(driven_of(*x)) or seen[-1])
    out = e4s.swap(src, tgt)
    assert out.shape == tgt.image.shape and torch.isfinite(out).all()
    (driven,) = seen

    crops = [torch.round(x.image[0] * 255).to(torch.uint8).permute(1, 2, 0).numpy() for x in (src, tgt)]
    small = [torch.from_numpy(resize_like_skimage(c)).permute(2, 0, 1)[None].float() for c in crops]
    moved = to_uint8(e4s.reenactor(*small))[0].permute(1, 2, 0).numpy()  # RGB uint8 256
    faces = []
    restore_face = e4s.restorer.restore_face
    monkeypatch.setattr(e4s.restorer, "restore_face", lambda crop: faces.append(crop) or restore_face(crop))
    restored = e4s.restorer(np.ascontiguousarray(moved[:, :, ::-1]))[:, :, ::-1]  # BGR in and out; RGB 1024
    assert restored.shape == (1024, 1024, 3)
    assert len(faces) >= 1  # the face branch (GPEN, ParseNet mask, paste) ran
    expected = F.interpolate(torch.from_numpy(restored.copy()).permute(2, 0, 1)[None].float(), (SIZE, SIZE),
                             mode="bicubic", align_corners=False).clamp(0, 255).round() / 255
    assert driven.shape == (1, 3, SIZE, SIZE)
    assert torch.equal(driven, expected)
    assert (driven - src.image).abs().mean() > 0.01  # not the source passed through

    monkeypatch.undo()
    off = E4S(model="tiny", reenact=False, restore=False)
    off.load_weights(rw.method_state("tiny", seed=0))
    assert (off.swap(src, tgt) - out).abs().max() > 1e-3  # the stages change the result


def test_run_id_carries_the_stage_options():
    from swapbench.bench import config
    from swapbench.bench.runinfo import run_id_for
    from swapbench.datasets import get_protocol

    cfg, samples = config.load(), get_protocol("samples")
    ids = set()
    for reenact, restore in ((True, True), (True, False), (False, False)):
        method = E4S(model="tiny", reenact=reenact, restore=restore)
        assert method.option_values()["reenact"] is reenact and method.option_values()["restore"] is restore
        ids.add(run_id_for(cfg, samples, method, {wf.name: "h" for wf in E4S.weights}))
    assert len(ids) == 3
