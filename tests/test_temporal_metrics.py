"""Temporal metrics against independent computations on synthetic clips with known answers."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

from swapbench import weights
from swapbench.metrics import temporal
from swapbench.metrics.temporal import (TEMPORAL_COLUMNS, flicker, identity_consistency, identity_drift,
                                        landmark_jitter, score_clip, target_flow, temporal_flickering,
                                        warping_error)


def smooth_field(size: int, seed: int = 0, width: float = 0.06):
    """A periodic band-limited random texture (Fourier coefficients, frequencies) that can be shifted by any
    sub-pixel amount exactly, independently of OpenCV."""
    rng = np.random.default_rng(seed)
    coeffs = np.fft.fft2(rng.standard_normal((size, size)))
    ky, kx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :]
    return coeffs * np.exp(-(kx ** 2 + ky ** 2) / (2 * width ** 2)), kx, ky


def translated_clip(shift=(1.5, -0.75), frames: int = 4, size: int = 128, seed: int = 0) -> np.ndarray:
    """frame[t](x) = I(x - t * shift) for a smooth periodic texture I, in RGB uint8."""
    coeffs, kx, ky = smooth_field(size, seed)
    clip = []
    for t in range(frames):
        dx, dy = t * shift[0], t * shift[1]
        img = np.real(np.fft.ifft2(coeffs * np.exp(-2j * np.pi * (kx * dx + ky * dy))))
        clip.append(img)
    clip = np.stack(clip)
    clip = 128 + 40 * clip / clip[0].std()
    grey = np.clip(np.round(clip), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=3)


def interior(t: int, size: int, border: int) -> np.ndarray:
    mask = np.zeros((t, size, size), bool)
    mask[:, border:-border, border:-border] = True
    return mask


# --- identity -------------------------------------------------------------------------------------------

def test_identity_drift_is_the_population_std_of_the_cosines():
    cos = np.array([0.9, 0.7, 0.8, 0.6])  # mean 0.75, squared deviations .0225 .0025 .0025 .0225
    assert identity_drift(cos) == pytest.approx(math.sqrt(0.05 / 4), abs=1e-12)
    assert identity_drift(np.full(8, 0.42)) == 0.0


def test_identity_consistency_is_the_mean_cosine_of_consecutive_frames():
    angles = np.radians([0, 60, 60, 150])  # consecutive cosines 0.5, 1, 0
    norms = np.array([1.0, 3.0, 0.5, 7.0])  # unnormalised embeddings are compared by angle
    emb = np.stack([np.cos(angles), np.sin(angles), np.zeros(4)], axis=1) * norms[:, None]
    assert identity_consistency(emb) == pytest.approx(0.5, abs=1e-12)


def test_frames_without_a_face_are_left_out_of_the_identity_values():
    cos = np.array([0.9, np.nan, 0.7, 0.8, 0.6])
    assert identity_drift(cos) == pytest.approx(math.sqrt(0.05 / 4), abs=1e-12)
    angles = np.radians([0, 60, 0, 60, 150])  # frame 2 has no face: cosines of 0->1 and 3->4 only
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    emb[2] = np.nan
    assert identity_consistency(emb) == pytest.approx((0.5 + 0.0) / 2, abs=1e-12)
    with pytest.raises(ValueError, match="needs 2 consecutive frames"):
        identity_consistency(emb[[0, 2, 4]])
    with pytest.raises(ValueError, match="all-zero rows"):
        identity_consistency(np.zeros((3, 4)))


# --- landmark jitter ------------------------------------------------------------------------------------

def moving_face(frames: int = 6) -> np.ndarray:
    """Target landmarks (5 points, eyes first) of a head that translates and grows over the clip."""
    base = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 70.0], [45.0, 90.0], [75.0, 90.0]])
    t = np.arange(frames)[:, None, None]
    centre = base.mean(axis=0)
    return centre + (base - centre) * (1 + 0.05 * t) + np.array([3.0, -2.0]) * t


def test_landmark_jitter_is_zero_when_the_swap_follows_the_target():
    target = moving_face()
    assert landmark_jitter(target, target) == 0.0
    # a constant offset (swap landmarks drawn 2 px to the right on every frame) is not jitter either
    assert landmark_jitter(target + np.array([2.0, 0.0]), target) == pytest.approx(0.0, abs=1e-12)


def test_landmark_jitter_with_a_known_per_frame_offset():
    target = moving_face()
    d = 1.5
    offsets = np.array([d if t % 2 == 0 else -d for t in range(len(target))])  # alternating +-d in x
    swap = target.copy()
    swap[..., 0] += offsets[:, None]
    iod = 40.0 * (1 + 0.05 * np.arange(len(target)))  # eye distance of the growing head, per frame
    expected = np.mean(2 * d / iod[:-1])  # every landmark moves 2d relative to the target at every step
    assert landmark_jitter(swap, target) == pytest.approx(expected, rel=1e-12)


def test_landmark_jitter_leaves_out_transitions_of_frames_without_landmarks():
    target = moving_face(6)
    swap = target.copy()
    swap[3, :, 0] += 4.0  # a jump at frame 3...
    expected_all = landmark_jitter(swap, target)
    swap[3] = np.nan  # ...then frame 3 without a face: transitions 2->3 and 3->4 are left out
    assert expected_all > 0 and landmark_jitter(swap, target) == 0.0


def test_landmark_jitter_eye_centres_from_index_groups():
    target = moving_face()
    swap = target + np.random.default_rng(0).normal(0, 1, target.shape)
    # eye "groups" of one point each must give the same value as plain indices
    assert landmark_jitter(swap, target, eyes=([0], [1])) == pytest.approx(landmark_jitter(swap, target))
    # two points per eye averaged: eyes (0, 2) and (1, 2) give centres 20 px apart at t=0
    by_groups = landmark_jitter(swap, target, eyes=((0, 2), (1, 2)))
    assert by_groups == pytest.approx(2 * landmark_jitter(swap, target), rel=1e-12)


# --- optical flow and warping ---------------------------------------------------------------------------

@pytest.mark.parametrize("shift", [(1.5, -0.75), (2.0, 1.0), (0.3, 0.6)])
def test_dis_flow_recovers_a_known_translation(shift):
    clip = translated_clip(shift)
    flow = target_flow(clip)
    assert flow.shape == (3, 128, 128, 2) and flow.dtype == np.float32
    inner = flow[:, 16:-16, 16:-16]
    # backward flow: frame t+1 at x is frame t at x - shift
    err = np.abs(inner - (-np.array(shift, dtype=np.float32)))
    assert np.median(err) < 0.03 and err.max() < 0.15, (np.median(err), err.max())


@pytest.mark.parametrize("shift", [(1.5, -0.75), (0.3, 0.6), (2.0, 1.0)])
def test_the_warping_error_of_a_translated_clip_is_near_zero_inside_the_mask(shift):
    clip = translated_clip(shift)
    mask = interior(len(clip), 128, 16)
    err = warping_error(clip, target_flow(clip), mask)
    true_flow = np.broadcast_to(-np.array(shift, np.float32), (3, 128, 128, 2))
    err_true_flow = warping_error(clip, true_flow, mask)
    if shift[0].is_integer() and shift[1].is_integer():
        assert err_true_flow == 0.0  # integer shifts of one rounded texture: the same pixels, exactly
    # With the true flow, what is left is bilinear interpolation of a sub-pixel shift (about 0.8 grey levels
    # on a texture of standard deviation 40); DIS's flow adds at most 0.1 to it.
    assert err_true_flow < 0.9 and err - err_true_flow < 0.1, (err, err_true_flow)
    # the same clip without motion compensation differs by several grey levels
    assert warping_error(clip, np.zeros((3, 128, 128, 2), np.float32), mask) > 5.0


def test_static_clip_has_zero_flow_flicker_and_jitter():
    clip = np.repeat(translated_clip((0.0, 0.0), frames=5)[:1], 5, axis=0)
    mask = np.ones(clip.shape[:3], bool)
    flow = target_flow(clip)
    assert np.abs(flow).max() < 1e-3
    assert warping_error(clip, flow, mask) == pytest.approx(0.0, abs=1e-3)
    assert flicker(clip, clip, mask) == 0.0
    assert temporal_flickering(clip) == 1.0
    lmk = np.repeat(moving_face(1), 5, axis=0)
    assert landmark_jitter(lmk, lmk) == 0.0


def reference_warping_error(frames, flow, mask):
    """Independent warp for flows that are multiples of 1/32 px (exact under OpenCV's 1/32 quantisation):
    explicit bilinear sampling with numpy indexing."""
    frames = frames.astype(np.float64)
    t_count, h, w = frames.shape[:3]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    errors = []
    for t in range(t_count - 1):
        sx, sy = xs + flow[t, ..., 0], ys + flow[t, ..., 1]
        keep = mask[t + 1] & (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
        x0 = np.clip(np.floor(sx), 0, w - 1).astype(int)
        y0 = np.clip(np.floor(sy), 0, h - 1).astype(int)
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        fx, fy = (sx - np.floor(sx))[..., None], (sy - np.floor(sy))[..., None]
        f = frames[t]
        warped = ((1 - fy) * ((1 - fx) * f[y0, x0] + fx * f[y0, x1]) + fy * ((1 - fx) * f[y1, x0] + fx * f[y1, x1]))
        if keep.any():
            errors.append(np.abs(warped - frames[t + 1])[keep].mean())
    return float(np.mean(errors))


def test_warping_error_matches_an_independent_bilinear_warp():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (4, 24, 32, 3), dtype=np.uint8)
    flow = (rng.integers(-96, 97, (3, 24, 32, 2)) / 32).astype(np.float32)  # up to 3 px, on the 1/32 grid
    mask = rng.random((4, 24, 32)) < 0.7
    assert warping_error(frames, flow, mask) == pytest.approx(reference_warping_error(frames, flow, mask),
                                                              abs=1e-4)


def test_pixels_whose_flow_leaves_the_frame_are_excluded():
    rng = np.random.default_rng(2)
    first = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    second = np.full_like(first, 255)  # the 3 leftmost columns come from outside the first frame: garbage
    second[:, 3:] = first[:, :-3]  # the content moved 3 px to the right
    frames = np.stack([first, second])
    flow = np.zeros((1, 16, 20, 2), np.float32)
    flow[..., 0] = -3.0
    mask = np.ones((2, 16, 20), bool)
    assert warping_error(frames, flow, mask) == 0.0
    only_outside = np.zeros_like(mask)
    only_outside[1, :, :3] = True
    with pytest.raises(ValueError, match="no pixel of the mask"):
        warping_error(frames, flow, only_outside)


# --- flicker under injected noise -----------------------------------------------------------------------

def test_flicker_of_per_frame_gaussian_noise_on_a_static_clip():
    sigma, frames, size = 6.0, 12, 96
    target = np.repeat(translated_clip((0.0, 0.0), frames=1, size=size), frames, axis=0)
    rng = np.random.default_rng(3)
    swap = np.clip(np.round(target + rng.normal(0, sigma, target.shape)), 0, 255).astype(np.uint8)
    mask = np.ones(target.shape[:3], bool)
    # X - Y of two independent N(0, s^2) pixels is N(0, 2 s^2): E|X - Y| = 2 s / sqrt(pi). Rounding to uint8
    # adds variance 1/12 per pixel (+0.2 % here); with 11 x 96 x 96 x 3 differences the sampling error of the
    # mean is 0.2 %: a 2 % tolerance.
    expected = 2 * sigma / math.sqrt(math.pi)
    assert flicker(swap, target, mask) == pytest.approx(expected, rel=0.02)


def test_flicker_subtracts_the_target_motion():
    shift, sigma = (2.0, 1.0), 6.0
    target = translated_clip(shift, frames=6)
    rng = np.random.default_rng(4)
    swap = np.clip(np.round(target + rng.normal(0, sigma, target.shape)), 0, 255).astype(np.uint8)
    mask = interior(len(target), 128, 16)
    flow = target_flow(target)
    same = flicker(target, target, mask, flow)
    assert same == 0.0
    # integer motion: the warp samples noise at (nearly) integer positions, so the expectation stays close to
    # 2 s / sqrt(pi); the flow's residual (< 0.15 px) mixes neighbours and lowers it slightly: 5 %.
    assert flicker(swap, target, mask, flow) == pytest.approx(2 * sigma / math.sqrt(math.pi), rel=0.05)


# --- VBench temporal flickering -------------------------------------------------------------------------

def test_temporal_flickering_is_vbench_score():
    clip = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (100, 110, 100, 110, 100)])
    assert temporal_flickering(clip) == pytest.approx((255 - 10) / 255, abs=1e-12)
    rng = np.random.default_rng(5)
    clip = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    mae = np.mean([np.abs(clip[t + 1].astype(float) - clip[t]).mean() for t in range(4)])
    assert temporal_flickering(clip) == pytest.approx((255 - mae) / 255, abs=1e-6)


# --- clip scores, columns, errors -----------------------------------------------------------------------

def test_score_clip_gives_every_column_from_one_flow():
    target = translated_clip((1.0, 0.5), frames=4)
    swap = target.copy()
    mask = interior(4, 128, 16)
    lmk = np.repeat(moving_face(1), 4, axis=0)
    values = score_clip(swap, target, mask, cos_to_source=np.array([0.5, 0.6, 0.5, 0.6]),
                        swap_embeddings=np.eye(4)[[0, 0, 1, 1]], swap_lmk=lmk, target_lmk=lmk)
    assert set(values) == {c.name for c in TEMPORAL_COLUMNS}
    assert values["id_drift"] == pytest.approx(0.05)
    assert values["id_consistency"] == pytest.approx(2 / 3)
    assert values["lmk_jitter"] == 0.0 and values["flicker"] == 0.0
    assert values["warp_error"] == pytest.approx(warping_error(target, target_flow(target), mask))
    assert values["temporal_flickering"] == pytest.approx(temporal_flickering(target))
    only_pixels = score_clip(swap, target, mask)
    assert set(only_pixels) == {"warp_error", "flicker", "temporal_flickering"}


def test_columns_have_names_directions_labels_and_decimals():
    by_name = {c.name: c for c in TEMPORAL_COLUMNS}
    assert [n for n, c in by_name.items() if c.higher_is_better] == ["id_consistency", "temporal_flickering"]
    assert by_name["flicker"].arrow == "↓" and all(c.label for c in TEMPORAL_COLUMNS)
    assert by_name["flicker"].decimals == 2 and by_name["id_drift"].decimals == 4


def test_bad_inputs_get_clear_messages():
    clip = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        temporal_flickering(clip.astype(np.float32))
    with pytest.raises(ValueError, match="needs 2 frames"):
        identity_drift(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="mask must be bool"):
        warping_error(clip, np.zeros((2, 8, 8, 2), np.float32), np.ones((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="inter-ocular"):
        landmark_jitter(np.zeros((2, 5, 2)), np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="unknown flow method 'farneback'"):
        target_flow(clip, "farneback")


def test_raft_without_torchvision_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision fails, installed or not
    with pytest.raises(ImportError, match="torchvision"):
        target_flow(np.zeros((2, 8, 8, 3), np.uint8), "raft")
    assert temporal.RAFT_LARGE.url.startswith("https://download.pytorch.org/")


class FakeRAFT:
    """Stands in for torchvision's raft_large where torchvision is absent (it is not a swapbench dependency),
    to check the glue around it: the weights file, frame order, [-1, 1] input, padding to multiples of 8 and
    the crop back. Its "flow" is (I0 - I1, I0) of the red channel, times a weight read from the file."""

    def __new__(cls, weights=None):
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = torch.nn.Parameter(torch.zeros(()))

            def forward(self, image1, image2):
                assert image1.shape[-2] % 8 == 0 and image1.shape[-1] % 8 == 0
                flow = torch.cat([image1[:, :1] - image2[:, :1], image1[:, :1]], dim=1) * self.scale
                return [flow * 0, flow]  # RAFT returns every refinement, the last one best

        return Net()


def test_raft_flow_glue_with_a_stand_in_for_torchvision(monkeypatch, tmp_path):
    import torch

    optical_flow = types.ModuleType("torchvision.models.optical_flow")
    optical_flow.raft_large = FakeRAFT
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.models", types.ModuleType("torchvision.models"))
    monkeypatch.setitem(sys.modules, "torchvision.models.optical_flow", optical_flow)
    monkeypatch.setattr(weights, "search_dirs", lambda weights_dir=None: [tmp_path])  # not the user's folders
    clip = np.random.default_rng(6).integers(0, 256, (3, 13, 21, 3), dtype=np.uint8)  # sides not multiples of 8
    with pytest.raises(weights.WeightsError, match="raft_large_C_T_SKHT_V2-ff5fadd5.pth.*download.pytorch.org"):
        target_flow(clip, "raft", weights_dir=tmp_path)
    torch.save({"wrong": torch.zeros(())}, tmp_path / temporal.RAFT_LARGE.filename)
    with pytest.raises(weights.WeightsError, match="does not fit"):
        target_flow(clip, "raft", weights_dir=tmp_path)
    torch.save({"scale": torch.tensor(2.0)}, tmp_path / temporal.RAFT_LARGE.filename)
    flow = target_flow(clip, "raft", weights_dir=tmp_path)
    red = clip[..., 0].astype(np.float32) / 127.5 - 1
    assert flow.shape == (2, 13, 21, 2) and flow.dtype == np.float32
    np.testing.assert_allclose(flow[..., 0], 2 * (red[1:] - red[:-1]), atol=1e-5)  # I0 = frame t+1, I1 = frame t
    np.testing.assert_allclose(flow[..., 1], 2 * red[1:], atol=1e-5)
