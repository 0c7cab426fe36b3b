"""FaceShifter / ReliableSwap port against the official ReliableSwap code, with deterministic random weights.

How tests/golden/faceshifter_parity.npz and faceshifter_manifest.json were made (the script lives outside
the repository):
  - official code: ygtxr1997/ReliableSwap at commit f26c03008e591622602cef1e898a9fe27731030d
    (modules/networks/faceshifter.py FSGenerator, modules/layers/faceshifter/layers.py AEI_Net,
    modules/third_party/arcface iresnet100 and MouthNet, inference/ffplus/eval.py EvaluatorFaceShifter's
    callback_infer_batch, _get_any_mask and _finetune_mouth, megafs/image_infer.py SoftErosion),
    run on CPU in fp32 with kornia 0.9.0 (the pinned kornia 0.5.8 warp_affine also defaults to
    align_corners=True, read from its wheel);
  - manifest: {key: shape} of FSGenerator(mouth_net_param={'use': False}) and of the mouth1 variant
    ({'use': True, 'feature_dim': 128, 'crop_param': (28, 56, 84, 112)}), built at full size;
  - weights: `swapbench.methods.faceshifter.method.random_weights(SEED)` loaded with strict=True into the
    official modules; the helper is the vanilla generator with the same values; BiSeNet is swapbench's
    (checked against the official one by test_parsing.py's golden) with those random weights;
  - inputs: `faceshifter_inputs.face_crops()`, ToTensor + Normalize(0.5, 0.5); pair i swaps face i into
    the other face. The evaluation's post-processing and mouth helper ran one pair at a time (batch 1, as
    the evaluation does).
  - stored: identity vectors, 8x8-average-pooled images and a 16x16 full-resolution slice of each
    generator output, the post-processed and final results, pooled masks with a 64x64 slice.

Tolerances: identity and images within 1e-4 (relative to the largest value, and absolute on tanh outputs
in [-1,1]): the same fp32 CPU ops, measured differences are reported in docs/benchmark.md. The mouth
mask goes through the official uint8 OpenCV steps and must match exactly. The random parser has near-ties
that flip a few labels (4 or 5 of 524288) with the float32 reduction order, so with the torch thread count;
the final image is compared through the official labels, which keeps every check independent of it.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from faceshifter_inputs import crops_digest, face_crops, seeded_weights

from swapbench.methods.faceshifter.method import (
    DILATE_KERNEL,
    FaceShifter,
    ReliableSwapFaceShifter,
)
from swapbench.methods.faceshifter.nets import FaceShifterGenerator

GOLDEN = "tests/golden/faceshifter_parity.npz"
MANIFEST = "tests/golden/faceshifter_manifest.json"
TOL = 1e-4


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN, allow_pickle=False) as g:
        return {k: g[k] for k in g.files}


@pytest.fixture(scope="module")
def pairs(golden):
    c = face_crops()
    assert crops_digest(c) == str(golden["crops_sha256"]), "test inputs changed: the golden no longer applies"
    x = torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    return x, x.flip(0)  # sources, targets


@pytest.fixture(scope="module")
def reliableswap():
    m = ReliableSwapFaceShifter()
    m.load_weights(seeded_weights())  # the helper takes G_tmp_v5's random values
    return m


@pytest.fixture(scope="module")
def steps(reliableswap, pairs):
    """The evaluated ReliableSwap pipeline (`generate`) on both pairs in one batch, run once, with every
    intermediate recorded on the way (hooks on the networks, wrappers around the pipeline's steps)."""
    src, tgt = pairs
    out = {"labels": []}
    m = reliableswap
    hooks = [m.generator.register_forward_hook(lambda mod, i, o: out.__setitem__("Gm", o)),
             m.helper.register_forward_hook(lambda mod, i, o: out.__setitem__("Gv", o)),
             # the identity vectors, as they enter each AEI-Net
             m.generator.G.register_forward_pre_hook(lambda mod, i: out.__setitem__("id_mouth", i[1])),
             m.helper.G.register_forward_pre_hook(lambda mod, i: out.__setitem__("id_warp", i[1])),
             m.smooth_mask.register_forward_hook(lambda mod, i, o: out.__setitem__("post_mask", o[0]))]

    def record(name, step, many=False):
        def wrapper(*args):
            y = step(*args)
            out[name].append(y) if many else out.__setitem__(name, y)
            return y
        setattr(m, step.__name__, wrapper)  # the instance attribute shadows the method for this run

    record("post", m.post_process)
    record("labels", m.labels, many=True)  # the target's (post mask), then the post result's (mouth mask)
    record("mouth_mask", m.mouth_mask)
    try:
        out["final"] = m.generate(src, tgt)
    finally:
        for h in hooks:
            h.remove()
        for name in ("post_process", "labels", "mouth_mask"):
            delattr(m, name)
    assert [tuple(x.shape) for x in out["labels"]] == [(2, 512, 512)] * 2
    return out


def _close(got: torch.Tensor, ref: np.ndarray, what: str, relative: bool = False) -> float:
    ref = torch.from_numpy(ref)
    err = (got - ref).abs().max().item()
    bound = TOL * (ref.abs().max().item() if relative else 1.0)
    assert err <= bound, f"{what}: max error {err:.3g} > {bound:.3g}"
    return err


def _check_image(y: torch.Tensor, golden, key: str) -> None:
    assert y.shape[1:] == (3, 256, 256)
    _close(F.avg_pool2d(y, 8), golden[f"{key}_pool"], f"{key} pooled")
    _close(y[:, :, 120:136, 120:136], golden[f"{key}_slice"], f"{key} slice")
    np.testing.assert_allclose(y.flatten(1).std(1).numpy(), golden[f"{key}_std"], atol=TOL)


@pytest.mark.parametrize("variant", ["vanilla", "mouth1"])
def test_layout_is_the_official_one(variant):
    manifest = json.load(open(MANIFEST))[variant]
    with torch.device("meta"):
        sd = FaceShifterGenerator(mouth=variant == "mouth1").state_dict()
    assert {k: list(v.shape) for k, v in sd.items()} == manifest
    assert list(sd) == list(manifest)  # the official order, too


def test_identity_matches_official(reliableswap, steps, pairs, golden):
    _close(steps["id_warp"], golden["id_warp"], "identity (warp)", relative=True)
    assert steps["id_mouth"].shape == (2, 640)
    _close(steps["id_mouth"], golden["id_mouth"], "identity + mouth feature", relative=True)
    with torch.no_grad():
        _close(reliableswap.helper.identity(pairs[0], "infer"), golden["id_infer"], "identity (infer)", relative=True)
    # the warp path is not a no-op: the two paths give different embeddings
    assert (golden["id_warp"] - golden["id_infer"]).__abs__().max() > 1e-2


def test_generators_match_official(steps, golden):
    _check_image(steps["Gv"], golden, "Gv")  # G_tmp_v5 layout, also the mouth helper
    _check_image(steps["Gm"], golden, "Gm")  # G_mouth1_t38_post layout


def test_post_processing_matches_official(steps, golden):
    soft = steps["post_mask"]  # of the target's labels
    _close(F.avg_pool2d(soft, 8), golden["post_mask_pool"], "post mask pooled")
    _close(soft[:, :, 120:184, 96:160], golden["post_mask_slice"], "post mask slice")
    assert 0.05 < soft.mean() < 0.95  # the random parser gives a real mask, neither empty nor full
    _check_image(steps["post"], golden, "post")


def test_mouth_helper_blend_matches_official(reliableswap, steps, golden):
    official = torch.from_numpy(golden["labels_post"]).long()
    # The parser's labels of the post-processed result: a few pixels where two logits of the random
    # parser are within rounding of each other flip with the 1e-4 difference of the images.
    flips = (steps["labels"][1] != official).float().mean().item()
    assert flips <= 1e-4, f"{flips:.2%} of the labels differ"
    # From the same labels, the official uint8 OpenCV steps are reproduced exactly.
    m = reliableswap.mouth_mask(official, 256)
    assert (F.avg_pool2d(m, 8) - torch.from_numpy(golden["mouth_mask_pool"])).abs().max() <= 1e-6
    assert torch.equal(m[:, :, 120:184, 96:160], torch.from_numpy(golden["mouth_mask_slice"]))
    # the quirk: outside the mouth the helper weighs 127/255, inside up to 1
    assert m.min() == 127 / 255 and m.max() > 0.6
    # The final image, the helper blended in through the mask of the official labels: within 1e-4 (the
    # helper and the post-processed image carry the generators' float32 differences, the mask is exact;
    # measured 1.2e-5 at 2 torch threads, 1.4e-5 at 1) ...
    y = steps["Gv"] * m + steps["post"] * (1 - m)
    _check_image(y, golden, "final")
    # ... and `generate` blends exactly so, through the mask of its own labels. End to end the image also
    # carries the few label flips, whose number follows the float32 reduction order, so the thread count:
    # 4 flips at 2 or 4 threads, 5 at 1 thread, which moved the 8x8-pooled final image by 2.9e-4 and 1.5e-3.
    own = steps["mouth_mask"]
    assert torch.equal(steps["final"], steps["Gv"] * own + steps["post"] * (1 - own))


def test_dilate_kernel_is_what_opencv_makes_of_the_official_tuple():
    a = (np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)
    assert np.array_equal(cv2.dilate(a, DILATE_KERNEL), cv2.dilate(a, (20, 20), iterations=1))


def test_masks_do_not_depend_on_the_batch(reliableswap, steps, pairs):
    with torch.no_grad():
        alone = reliableswap.post_process(steps["Gm"][1:2], pairs[1][1:2])
        assert torch.equal(alone, steps["post"][1:2])
        assert torch.equal(reliableswap.mouth_mask(reliableswap.labels(alone), 256), steps["mouth_mask"][1:2])


def test_vanilla_faceshifter_swap_alone_equals_its_row_in_a_batch(reliableswap, steps, pairs):
    """FaceShifter with G_tmp_v5 (the helper's random values) on pair 1 alone gives row 1 of the batch."""
    from swapbench.methods.base import FaceBatch

    fs = FaceShifter()
    fs.load_weights({w.name: reliableswap.helper.state_dict() for w in fs.weights})  # G_tmp_v5's values
    one = lambda x: FaceBatch((x[1:2] + 1) / 2, torch.zeros(1, 68, 2), ["p1"])
    y = fs.swap(one(pairs[0]), one(pairs[1]))
    # batch 1 and batch 2 pick different CPU conv kernels: measured 3.2e-5
    assert (y * 2 - 1 - steps["Gv"][1:2]).abs().max() <= 1e-4
