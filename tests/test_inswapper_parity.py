"""INSwapper against insightface itself: the installed package's INSwapper and ArcFaceONNX classes run
on the same small random-weight ONNX files (tests/inswapper_model.py, tests/arcface_onnx_model.py),
the same image (insightface's t1.jpg) and the same five points, as in its example (faces sorted by
x, faces[2] swapped into the others).

The official code is the inswapper.py of insightface 2.1 (= 7fadd42 = bbbb45c4 but for the session's
providers). Tolerances:
  - on insightface's own crops the swap is bit-identical (0 grey levels): same blobs, same float32
    latent arithmetic, same onnxruntime graph, same truncation;
  - swapbench's engine samples its crops with kornia (float bilinear) instead of cv2.warpAffine's
    fixed-point bilinear, so a few crop pixels differ by one grey level (mean 0.07 levels on t1.jpg);
    through this network the swap moves by 0.075 levels on average, 1 at most (bounds 0.5 and 4);
  - paste_back reproduces insightface's formula with the same OpenCV calls: within one grey level
    (measured: identical on all six faces of t1.jpg).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import insightface
import numpy as np
import pytest
import torch
from arcface_onnx_model import write_arcface_like_onnx
from inswapper_model import write_inswapper_like_onnx
from insightface.app.common import Face
from insightface.model_zoo.arcface_onnx import ArcFaceONNX as OfficialArcFace
from insightface.model_zoo.inswapper import INSwapper as OfficialINSwapper
from insightface.utils import face_align

from swapbench.faces import templates, warp
from swapbench.faces.insightface_arcface import W600K_R50
from swapbench.methods.base import FaceBatch
from swapbench.methods.inswapper import INSWAPPER_128, INSwapper, paste_back

T1 = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inswapper")
    write_inswapper_like_onnx(folder / INSWAPPER_128.filename, seed=1)
    write_arcface_like_onnx(folder / W600K_R50.filename, seed=2)
    return {INSWAPPER_128.name: folder / INSWAPPER_128.filename, W600K_R50.name: folder / W600K_R50.filename}


@pytest.fixture(scope="module")
def scene():
    """t1.jpg (BGR, as insightface reads it) and the five points of its faces, sorted by x like the example."""
    from swapbench.faces import detect

    bgr = cv2.imread(str(T1))
    faces = sorted(detect.detect(bgr[:, :, ::-1].copy()), key=lambda f: f.box[0])
    assert len(faces) == 6
    # float32 values (SCRFD's) held as float64, as swapbench's detectors hand them over: skimage fits
    # float32 points in float32, which moves insightface's own matrix by ~1e-5 from the float64 fit
    return bgr, [templates.five_points(f.landmarks).astype(np.float32).astype(np.float64) for f in faces]


@pytest.fixture(scope="module")
def official(files, scene):
    """insightface's results: source face 2 into faces 0 and 4, without and with paste-back."""
    bgr, kps = scene
    recognition = OfficialArcFace(model_file=str(files[W600K_R50.name]))
    swapper = OfficialINSwapper(model_file=str(files[INSWAPPER_128.name]))
    source = Face(kps=kps[2])
    recognition.get(bgr, source)
    out = {"latent": np.dot(source.normed_embedding.reshape(1, -1), swapper.emap)}
    out["latent"] /= np.linalg.norm(out["latent"])
    for t in (0, 4):
        target = Face(kps=kps[t])
        out[t] = swapper.get(bgr, target, source, paste_back=False)
        out[t, "pasted"] = swapper.get(bgr, target, source, paste_back=True)
    return out


@pytest.fixture(scope="module")
def method(files):
    m = INSwapper()
    m.load_weights(files)
    return m


def _batch(crops_bgr: list[np.ndarray]) -> FaceBatch:
    images = warp.from_uint8(np.stack([c[:, :, ::-1] for c in crops_bgr]))
    return FaceBatch(images, torch.zeros(len(crops_bgr), 68, 2), [f"p{i}" for i in range(len(crops_bgr))])


def test_template_and_matrix_are_insightfaces(scene):
    _, kps = scene
    for k in kps:
        np.testing.assert_array_equal(templates.estimate_transform("insightface_128", k), face_align.estimate_norm(k, 128))


def test_source_112_crop_is_a_slice_of_the_128_crop(scene):
    """Same template up to a translation by (8, 0): the same sampling grid. Bit for bit, the warps round
    differently (cv2's fixed-point coordinates, float32 in swapbench's), so a few values move by a level."""
    bgr, kps = scene
    rgb = bgr[:, :, ::-1].copy()
    for k in kps:
        m112, m128 = templates.estimate_transform("insightface_112", k), templates.estimate_transform("insightface_128", k)
        np.testing.assert_allclose(m128 - m112, [[0, 0, 8], [0, 0, 0]], atol=1e-5)  # float32 template + 8
        # swapbench's warps (the engine's crops)
        diff = np.abs(warp.align_image(rgb, m112, 112).astype(int) - warp.align_image(rgb, m128, 128)[:112, 8:120])
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
        # insightface's own warps: norm_crop at 112 against norm_crop2 at 128
        diff = np.abs(face_align.norm_crop(bgr, k, 112).astype(int) - face_align.norm_crop2(bgr, k, 128)[0][:112, 8:120])
        assert diff.max() <= 3 and (diff > 0).mean() < 1e-2
        print(f"slice vs 112 crop, cv2: {(diff > 0).mean():.2%} of values differ, at most {diff.max()} levels")


def _source_crop(bgr, kps) -> np.ndarray:
    """insightface's 128 crop with, in its 112 slice, the norm_crop that insightface's recognition model
    sees (the slice is all of the source crop that INSwapper reads; see the test above for the rest)."""
    crop = face_align.norm_crop2(bgr, kps, 128)[0].copy()
    crop[:112, 8:120] = face_align.norm_crop(bgr, kps, 112)
    return crop


def test_blob_is_opencvs(scene):
    bgr, kps = scene
    aimg, _ = face_align.norm_crop2(bgr, kps[0], 128)
    ours = (warp.from_uint8(aimg[:, :, ::-1].copy())[None] * 255).round() * np.float32(1 / 255)
    theirs = cv2.dnn.blobFromImage(aimg, 1.0 / 255.0, (128, 128), (0.0, 0.0, 0.0), swapRB=True)
    np.testing.assert_array_equal(ours.numpy(), theirs)


def test_latent_matches_insightface(method, scene, official):
    bgr, kps = scene
    source = _batch([_source_crop(bgr, kps[2])])
    np.testing.assert_array_equal(method.latent(source.image), official["latent"])


def test_swap_on_insightface_crops_is_bit_identical(method, scene, official):
    bgr, kps = scene
    source = _batch([_source_crop(bgr, kps[2])] * 2)
    target = _batch([face_align.norm_crop2(bgr, kps[t], 128)[0] for t in (0, 4)])
    out = warp.to_uint8(method.swap(source, target))
    for row, t in zip(out, (0, 4)):
        fake_bgr, matrix = official[t]
        np.testing.assert_array_equal(row[:, :, ::-1], fake_bgr)
        np.testing.assert_array_equal(matrix, templates.estimate_transform("insightface_128", kps[t]))


def test_without_truncation_is_at_most_one_level_above(files, scene, official):
    bgr, kps = scene
    m = INSwapper(INSwapper.Options(truncate=False))
    m.load_weights(files)
    source = _batch([_source_crop(bgr, kps[2])])
    target = _batch([face_align.norm_crop2(bgr, kps[0], 128)[0]])
    y = m.swap(source, target)[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255
    diff = y - official[0][0].astype(np.float32)
    assert diff.min() >= -1e-3 and diff.max() < 1 + 1e-3 and diff.mean() > 0.3  # the truncation's bias


def test_swap_on_engine_crops_is_close(method, scene, official):
    bgr, kps = scene
    rgb = bgr[:, :, ::-1].copy()
    crop = lambda k: warp.align_image(rgb, templates.estimate_transform("insightface_128", k), 128)  # noqa: E731
    source, target = warp.from_uint8(np.stack([crop(kps[2])])), warp.from_uint8(np.stack([crop(kps[0])]))
    insight_crop = face_align.norm_crop2(bgr, kps[0], 128)[0][:, :, ::-1].astype(np.float32)
    crop_err = np.abs(crop(kps[0]).astype(np.float32) - insight_crop)
    assert crop_err.mean() < 1.0
    out = method.swap(FaceBatch(source, torch.zeros(1, 68, 2), ["a"]), FaceBatch(target, torch.zeros(1, 68, 2), ["a"]))
    err = np.abs(warp.to_uint8(out)[0][:, :, ::-1].astype(np.float32) - official[0][0].astype(np.float32))
    print(f"engine crops: crop error mean {crop_err.mean():.3f}, swap error mean {err.mean():.3f} max {err.max():.0f} levels")
    assert err.mean() < 0.5 and err.max() <= 4  # measured: mean 0.075, max 1 level


def test_paste_back_matches_insightface(scene, official):
    bgr, _ = scene
    for t in (0, 4):
        fake_bgr, matrix = official[t]
        ours = paste_back(bgr, fake_bgr, matrix).astype(np.int16)
        assert np.abs(ours - official[t, "pasted"].astype(np.int16)).max() <= 1
        assert (ours != bgr).any()
