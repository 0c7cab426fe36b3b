"""Batched warps: equality with cv2, batch = one at a time, paste-back round trip, soft masks."""

import os
import sys

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from faces_testdata import astronaut  # noqa: E402

from swapbench.faces import templates as T  # noqa: E402
from swapbench.faces import warp as W  # noqa: E402


def _tensor(image):
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("convention", ["arcface_112", "ghost_224", "ffhq_256", "box_512"])
def test_align_equals_cv2_warp_affine(convention):
    image, lm, box = astronaut()
    size = T.parse_convention(convention)[1]
    m = T.estimate_transform(convention, lm, box=box)
    crop = W.align_batch(_tensor(image), m[None], size, antialias=False)
    ref = cv2.warpAffine(image.astype(np.float32) / 255, m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    # OpenCV 4 (the one swapbench pins) rounds every sample position to 1/32 px (INTER_TAB_SIZE), float
    # images too, where kornia samples exactly: up to 1.3e-2 on this image, 4e-4 on average. A geometry
    # error (half a pixel, a transposed matrix) is tens of times larger.
    diff = np.abs(crop[0].permute(1, 2, 0).numpy() - ref)
    assert diff.max() <= 2e-2 and diff.mean() <= 1e-3, (diff.max(), diff.mean())


def _batch():
    """Four different frames and crops: astronaut, flipped, shifted, and a strong reduction."""
    image, lm, _ = astronaut()
    x = _tensor(image)
    frames = torch.cat([x, x.flip(-1), x.roll(17, -2), x.transpose(-1, -2)])
    flipped = lm.copy()
    flipped[:, 0] = image.shape[1] - 1 - flipped[:, 0]
    lms = [lm, flipped, lm + [0, 17], lm[:, ::-1]]
    mats = np.stack([T.estimate_transform("ffhq_256", p) for p in lms])
    mats[3] = T.estimate_transform("box_64", lms[3], box_scale=3.0)  # shrinks 4x: antialias path
    return frames, mats, lms


@pytest.mark.parametrize("antialias", [False, True])
def test_batch_equals_one_at_a_time(antialias):
    frames, mats, _ = _batch()
    batched = W.align_batch(frames, mats, 256, antialias=antialias)
    single = torch.cat([W.align_batch(frames[i:i + 1], mats[i:i + 1], 256, antialias=antialias) for i in range(4)])
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)
    masks = torch.rand(4, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    pasted = W.paste_back(frames, batched, mats, masks)
    single = torch.cat([W.paste_back(frames[i:i + 1], batched[i:i + 1], mats[i:i + 1], masks[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(pasted, single, atol=1e-6, rtol=0)


def test_antialias_averages_strong_reductions():
    """A 1-pixel checkerboard shrunk 8x: bilinear alone aliases to black/white, area-averaging gives grey."""
    board = torch.from_numpy((np.indices((512, 512)).sum(0) % 2).astype(np.float32))[None, None].expand(1, 3, 512, 512)
    m = np.array([[[1 / 8, 0, 0], [0, 1 / 8, 0]]])
    aliased = W.align_batch(board, m, 64, antialias=False)
    smooth = W.align_batch(board, m, 64, antialias=True)
    assert (aliased[..., 4:-4, 4:-4] - 0.5).abs().mean() > 0.4
    assert (smooth[..., 4:-4, 4:-4] - 0.5).abs().max() < 0.05


@pytest.mark.parametrize("convention, mean_tol, p99_tol", [("ffhq_1024", 0.005, 0.03), ("ffhq_256", 0.015, 0.1)])
def test_paste_back_unmodified_crop_reproduces_frame(convention, mean_tol, p99_tol):
    """Align the astronaut, paste the untouched crop back: the frame comes back.

    Inside the face the result went through bilinear resampling twice (frame -> crop -> frame),
    which smooths edges: at ffhq_1024 the crop is ~3x the face's resolution and the error is
    half-pixel interpolation blur (measured mean 0.002, p99 0.013 in [0, 1]); at ffhq_256 the
    crop is ~1.4x and loses a little more fine detail (mean 0.008, p99 0.053). Outside the mask
    the frame must be untouched to the bit.
    """
    image, lm, _ = astronaut()
    size = T.parse_convention(convention)[1]
    frame = _tensor(image)
    m = T.estimate_transform(convention, lm)
    crop = W.align_batch(frame, m[None], size)
    mask = W.hull_masks(T.apply_transform(m, lm)[None], size)
    out = W.paste_back(frame, crop, m[None], mask)

    alpha = W.paste_back(torch.zeros(1, 1, *frame.shape[-2:]), torch.ones(1, 1, size, size), m[None], mask)[0, 0]
    inside = alpha > 0.99
    assert inside.sum() > 3000  # the face, not a sliver
    err = (out - frame).abs()[0].mean(0)
    assert err[inside].mean() < mean_tol
    assert err[inside].quantile(0.99) < p99_tol
    assert torch.equal(out[0][:, alpha == 0], frame[0][:, alpha == 0])


def test_paste_back_replaces_inside_and_keeps_outside():
    frame = torch.zeros(1, 3, 100, 120)
    m = np.array([[[1.0, 0.0, -20.0], [0.0, 1.0, -30.0]]])  # crop = frame[30:80, 20:70]
    crop = torch.ones(1, 3, 50, 50)
    mask = torch.zeros(1, 1, 50, 50)
    mask[..., 10:40, 10:40] = 1
    out = W.paste_back(frame, crop, m, mask)
    assert torch.equal(out[..., 40:70, 30:60], torch.ones(1, 3, 30, 30))
    assert out.sum().item() == pytest.approx(3 * 30 * 30, abs=0.01)
    # a full mask reaching the crop's edge leaves no dark seam: premultiplied alpha
    out = W.paste_back(torch.full((1, 3, 100, 120), 0.5), crop, m, torch.ones(1, 1, 50, 50))
    assert out.min() >= 0.5 - 1e-6


def test_hull_mask_covers_the_hull_and_softens_its_edge():
    pts = np.array([[[20.0, 20.0], [100.0, 20.0], [100.0, 100.0], [20.0, 100.0], [60.0, 60.0]]])
    hard = W.hull_masks(pts, 128, erode=1, sigma=0)
    assert hard[0, 0, 20:101, 20:101].min() == 1 and hard.sum() == 81 * 81
    soft = W.hull_masks(pts, 128, erode=9, sigma=3)
    assert soft[0, 0, 60, 60] > 0.999  # deep inside
    # erosion by 9 px moves the top edge from row 20 to row 24; the blur centres its ramp there
    assert 0.4 < soft[0, 0, 24, 60] < 0.75
    assert soft[0, 0, 20, 60] < 0.15  # the hull's own edge: already mostly faded
    assert soft[0, 0, 14, 60] < 0.01  # 10 px outside the eroded edge, > 3 sigma
    assert soft[0, 0, 5, 5] == 0


def test_label_masks_keep_listed_classes():
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[0, 10:30, 10:30] = 1
    labels[0, 30:50, 30:50] = 17
    labels[1, 10:50, 10:50] = 10
    mask = W.label_masks(labels, keep=[1, 10], erode=1, sigma=0)
    assert mask[0].sum() == 400 and mask[1].sum() == 1600
    assert mask[0, 0, 40, 40] == 0


def test_paste_into_frame_changes_only_the_face_and_follows_a_preview_shrink():
    image, lm, _ = astronaut()
    m = T.estimate_transform("ffhq_256", lm)
    crop = W.align_image(image, m, 256)
    crop_lm = T.apply_transform(m, lm)

    # An unmodified crop comes back as the frame: exact outside the mask, close inside it.
    same = W.paste_into_frame(image, crop, m, crop_lm)
    hull = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm).astype(np.int32)), 1)
    diff = np.abs(same.astype(int) - image.astype(int)).max(2)
    assert diff[hull == 0].mean() < 0.5 and diff[hull == 1].mean() < 4  # bilinear there and back

    # A changed crop changes the frame only near the landmarks' hull: the mask is eroded by 3.5 px
    # and blurred with sigma 5 px (crop pixels), so at most 3 sigma reach outside it.
    changed = W.paste_into_frame(image, 255 - crop, m, crop_lm) != image
    inside = changed.any(2) & (hull == 1)
    reach = int(np.ceil(3 * W.default_sigma(256) / np.sqrt(abs(np.linalg.det(m[:, :2])))))
    near = cv2.dilate(hull, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    assert changed.any(2)[near == 0].sum() == 0
    assert inside.sum() > 0.8 * hull.sum()

    # With max_side, the frame is shrunk first and the face lands at the shrunk position.
    small = W.paste_into_frame(image, 255 - crop, m, crop_lm, max_side=256)
    assert max(small.shape[:2]) == 256
    scale = 256 / max(image.shape[:2])
    ys, xs = np.nonzero(np.abs(small.astype(int) - cv2.resize(image, small.shape[1::-1], interpolation=cv2.INTER_AREA)).max(2) > 40)
    centre = np.array([xs.mean(), ys.mean()])
    np.testing.assert_allclose(centre, (np.argwhere(inside)[:, ::-1].mean(0) + 0.5) * scale - 0.5, atol=2)
