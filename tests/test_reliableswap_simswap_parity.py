"""ReliableSwap's retrained SimSwap generators (reliableswap_simswap, simswap_retrained) against the official code.

How tests/golden/reliableswap_simswap_parity.npz and reliableswap_simswap_manifest.json were made (the script
lives outside the repository):
  - official code: ygtxr1997/ReliableSwap at f26c03008e591622602cef1e898a9fe27731030d
    (modules/layers/simswap/fs_networks_fix.py Generator_Adain_Upsample, its forward's identity lines,
    modules/third_party/arcface iresnet100 / IResNet and MouthNet, inference/gradio_demo/tricks.py
    get_any_mask and SoftErosion as eval.py EvaluatorSimSwap uses them for `post`) and SimSwap's
    arcface_models.ResNet (neuralchen/SimSwap @ bd7b768, conv3x3 as foamliu's), CPU, fp32;
  - manifest: {key: shape} of Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False) with
    mouth_net_param {'use': True, 'feature_dim': 128, 'crop_param': (28, 56, 84, 112)} (G_mouth1_st5) and
    {'use': False} (G_tmp_sv4_off), iresnet100 (ms1mv3 backbone.pth) and MouthNet's backbone
    (mouth_net_28_56_84_112.pth), built at full size on `meta`. SimSwap's ArcFace layout is
    tests/golden/simswap_manifest.json's "arcface";
  - weights: `swapbench.methods.faceshifter.simswap.random_weights(SEED, depth=18)`: full-size generators,
    reduced encoders (one block per stage: IResNet(IBasicBlock, [1, 1, 1, 1]) for the ms1mv3 ArcFace and
    MouthNet's backbone, ResNet(IRBlock, [1, 1, 1, 1], use_se=True) for SimSwap's), which run every line of
    the identity path; the full-depth encoders are checked against their official code by
    test_faceshifter_parity.py (IResNet-100, MouthNet) and test_simswap_parity.py (SE-ResNet-101);
  - inputs: the FaceShifter test crops in [-1,1] as sources (256); targets: the other face average-pooled
    to 64 (G_mouth1_st5, and the post-processing, whose 17-pixel soft erosion needs that room) or 32
    (G_tmp_sv4_off): the generator is convolutional, so small targets run every layer at a fraction of the cost;
  - stored: identity vectors, generator outputs, the post-processed result (batch 1, as evaluated).

Tolerance: 1e-4 of the reference's largest magnitude, fp32 (the same torch operations); the final crop is the
clamp of those to [-1,1].
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from faceshifter_inputs import SEED, crops_digest, face_crops

from swapbench.methods.faceshifter.simswap import (
    MOUTH_FILE,
    MS1MV3_FILE,
    ST5_FILE,
    SV4_FILE,
    ReliableSwapSimSwap,
    RetrainedGenerator,
    SimSwapRetrained,
    arcface_net,
    mouth_backbone,
    random_weights,
)
from swapbench.methods.simswap.method import ARCFACE_FILE

GOLDEN = "tests/golden/reliableswap_simswap_parity.npz"
MANIFEST = "tests/golden/reliableswap_simswap_manifest.json"
RTOL = 1e-4


class TinyST5(ReliableSwapSimSwap):
    encoder_depth = 18


class TinySV4(SimSwapRetrained):
    encoder_depth = 18


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN, allow_pickle=False) as g:
        return {k: g[k] for k in g.files}


@pytest.fixture(scope="module")
def inputs(golden):
    c = face_crops()
    assert crops_digest(c) == str(golden["crops_sha256"]), "test inputs changed: the golden no longer applies"
    x = torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    return x, F.avg_pool2d(x.flip(0), 4), F.avg_pool2d(x.flip(0), 8)  # sources, 64 and 32 targets


@pytest.fixture(scope="module")
def methods():
    weights = random_weights(SEED, depth=18)
    st5, sv4 = TinyST5({"post": True}), TinySV4()
    st5.load_weights(weights)
    sv4.load_weights(weights)
    return st5, sv4


def _close(got: torch.Tensor, ref: np.ndarray, what: str) -> float:
    ref = torch.from_numpy(ref)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    err = (got - ref).abs().max().item()
    bound = RTOL * ref.abs().max().item()
    assert err <= bound, f"{what}: max error {err:.3g} > {bound:.3g}"
    return err


def test_full_size_layouts_are_the_official_ones():
    manifest = json.load(open(MANIFEST))
    with torch.device("meta"):
        nets = {"G_mouth1_st5": RetrainedGenerator(True), "G_tmp_sv4_off": RetrainedGenerator(False),
                "ms1mv3_backbone": arcface_net("ms1mv3"), "mouth_net_28_56_84_112": mouth_backbone()}
        simswap_arcface = arcface_net("simswap")
    for name, net in nets.items():
        sd = net.state_dict()
        assert {k: list(v.shape) for k, v in sd.items()} == manifest[name], name
        assert list(sd) == list(manifest[name]), name  # the official order, too
    arc = {k: list(v.shape) for k, v in simswap_arcface.state_dict().items()}
    assert arc == json.load(open("tests/golden/simswap_manifest.json"))["arcface"]
    # the methods build exactly these at full size
    assert [type(n).__name__ for n in (ReliableSwapSimSwap().arcface, SimSwapRetrained().arcface)] == ["IResNet", "ArcFace"]


def test_identity_matches_official(methods, inputs, golden):
    st5, sv4 = methods
    src = inputs[0]
    z5, z4 = st5.identity(src), sv4.identity(src)
    assert z5.shape == (2, 640) and z4.shape == (2, 512)
    _close(z5, golden["id_st5"], "identity + mouth feature (G_mouth1_st5)")
    _close(z4, golden["id_sv4"], "identity, SimSwap ArcFace on [-1,1] (G_tmp_sv4_off)")


def test_generators_match_official(methods, inputs, golden):
    st5, sv4 = methods
    with torch.no_grad():
        _close(st5.generator(inputs[1], torch.from_numpy(golden["id_st5"])), golden["G_st5"], "G_mouth1_st5")
        _close(sv4.generator(inputs[2], torch.from_numpy(golden["id_sv4"])), golden["G_sv4"], "G_tmp_sv4_off")
    assert np.abs(golden["G_st5"]).max() > 1  # no tanh: the clamp of the final crop is not a no-op


def test_post_processing_and_final_crop_match_official(methods, inputs, golden):
    st5, sv4 = methods
    posts = []
    post_process = st5.post_process
    st5.post_process = lambda swap, target: posts.append(post_process(swap, target)) or posts[-1]  # records it
    try:  # the whole pipeline: identity, generator, post, clamp to [-1,1]
        final = st5.generate(inputs[0], inputs[1])
    finally:
        del st5.post_process
    _close(posts[0], golden["post_st5"], "post-processing (hair and background from the target)")
    assert (golden["post_st5"] != golden["G_st5"]).mean() > 0.02  # the random parser's mask is not empty (5 % here)
    _close(final, np.clip(golden["post_st5"], -1, 1), "final crop (G_mouth1_st5, post)")
    _close(sv4.generate(inputs[0], inputs[2]), np.clip(golden["G_sv4"], -1, 1), "final crop (G_tmp_sv4_off)")


def test_batch_of_three_equals_each_pair_alone(methods, inputs):
    """The same pairs at batch 1 and batch 3 give the same swaps (through swap(), as the engine calls it)."""
    from swapbench.methods.base import FaceBatch

    _, sv4 = methods
    src = torch.cat([inputs[0], inputs[0][:1]]).add(1).div(2)  # [0,1], three pairs
    tgt = torch.cat([inputs[2], inputs[2][1:]]).add(1).div(2)
    batch = lambda s, t, ids: FaceBatch(s, torch.zeros(len(ids), 68, 2), ids)  # noqa: E731
    together = sv4.swap(batch(src, src, ["a", "b", "c"]), batch(tgt, tgt, ["a", "b", "c"]))
    for i in range(3):
        alone = sv4.swap(batch(src[i:i + 1], src[i:i + 1], ["x"]), batch(tgt[i:i + 1], tgt[i:i + 1], ["x"]))
        # batch 1 and batch 3 may pick different CPU convolution kernels
        assert (alone - together[i:i + 1]).abs().max() <= 1e-4


def test_random_weights_cover_every_declared_file(methods):
    names = {f.name for f in (*ReliableSwapSimSwap.weights, *SimSwapRetrained.weights)}
    assert names == {ST5_FILE.name, SV4_FILE.name, MS1MV3_FILE.name, MOUTH_FILE.name, ARCFACE_FILE.name,
                     "face_parsing/bisenet_79999_iter"}
