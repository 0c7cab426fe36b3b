"""Crop conventions: template data, transform estimation, FFHQ geometry, mirror symmetry."""

import os
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from faces_testdata import MIRROR_68, astronaut, landmarks68  # noqa: E402

from swapbench.faces import templates as T  # noqa: E402


def _random_similarity(rng, scale_range=(0.5, 3.0)):
    angle = rng.uniform(-0.6, 0.6)
    s = rng.uniform(*scale_range)
    c, si = s * np.cos(angle), s * np.sin(angle)
    return np.array([[c, -si, rng.uniform(-50, 300)], [si, c, rng.uniform(-50, 300)]])


def _inverse(m):
    return np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]


def test_parse_convention():
    assert T.parse_convention("ffhq_1024") == ("ffhq", 1024)
    assert T.parse_convention("arcface_112") == ("arcface", 112)
    for bad in ("ffhq", "ffhq_", "foo_256", "ffhq_-3", "ghost_2x"):
        with pytest.raises(ValueError):
            T.parse_convention(bad)


def test_five_points_from_68():
    lm = np.arange(136, dtype=np.float64).reshape(68, 2)
    five = T.five_points(lm)
    np.testing.assert_allclose(five[0], lm[36:42].mean(0))
    np.testing.assert_allclose(five[1], lm[42:48].mean(0))
    np.testing.assert_allclose(five[2:], lm[[30, 48, 54]])
    np.testing.assert_array_equal(T.five_points(five), five)
    with pytest.raises(ValueError):
        T.five_points(lm[:10])


@pytest.mark.parametrize("size", [112, 224, 128, 256])
def test_arcface_matches_insightface_estimate_norm(size):
    """Same matrix as insightface's own estimate_norm (installed package), incl. the 128 shift."""
    from insightface.utils import face_align

    _, lm, _ = astronaut()
    five = T.five_points(lm)
    expected = face_align.estimate_norm(five.astype(np.float32), size)
    np.testing.assert_allclose(T.estimate_transform(f"arcface_{size}", lm), expected, rtol=1e-5, atol=1e-4)


def test_arcface_size_must_be_112_or_128_multiple():
    with pytest.raises(ValueError):
        T.estimate_transform("arcface_200", astronaut()[1])


def test_similarity_recovers_exact_transform():
    rng = np.random.default_rng(0)
    m = _random_similarity(rng)
    dst = T.ARCFACE_112
    src = T.apply_transform(_inverse(m), dst)  # landmarks that sit exactly on the template under m
    np.testing.assert_allclose(T.estimate_transform("arcface_112", src), m, atol=1e-9)


@pytest.mark.parametrize("pose", range(5))
def test_ghost_picks_the_matching_pose_template(pose):
    rng = np.random.default_rng(pose)
    m = _random_similarity(rng)
    template = T.pose_points(224)[pose]
    src = T.apply_transform(_inverse(m), template)
    got, index = T.best_template(src, T.pose_points(224))
    assert index == pose
    np.testing.assert_allclose(got, m, atol=1e-8)
    np.testing.assert_allclose(T.estimate_transform("ghost_224", src), m, atol=1e-8)


def test_ghost_224_is_insightface_02_src_map():
    # insightface 0.2: src_map = {112: src, 224: src * 2}
    np.testing.assert_allclose(T.pose_points(224), T.INSIGHTFACE_POSES_112 * 2)
    np.testing.assert_allclose(T.pose_points(112), T.INSIGHTFACE_POSES_112)


def test_astronaut_frontal_face_uses_frontal_template_and_lands_on_it():
    _, lm, _ = astronaut()
    five = T.five_points(lm)
    _, index = T.best_template(five, T.pose_points(224))
    assert T.POSE_NAMES[index] == "frontal"
    # A least-squares fit of a real face: eyes and nose within a few pixels of their template
    # points. The astronaut smiles, and dlib's outer-lip corners (48, 54) sit wider than the
    # template's mouth corners, so the mouth residual is larger.
    err = np.linalg.norm(T.apply_transform(T.estimate_transform("arcface_112", lm), five) - T.ARCFACE_112, axis=1)
    assert err[:3].max() < 5.0 and err.max() < 8.0, err


@pytest.mark.parametrize("size", [256, 1024])
def test_ffhq_astronaut_eyes_at_ffhq_positions(size):
    """FFHQ puts the eyes a quarter of the crop apart, level, a little above the centre.

    With eye-to-eye * 2 >= eye-to-mouth * 1.8 (true for a frontal face) the crop side is 4x the
    eye distance, so the eye centres land at x = 3/8 and 5/8 of the side, y ~ 0.47 of the side.
    """
    _, lm, _ = astronaut()
    m = T.estimate_transform(f"ffhq_{size}", lm)
    eyes = T.apply_transform(m, T.five_points(lm)[:2])
    expected = np.array([[0.375, 0.475], [0.625, 0.475]]) * size
    assert np.abs(eyes - expected).max() < 0.02 * size, eyes


def test_ffhq_quad_follows_download_ffhq():
    """Quad of a face with level eyes: centred 0.1 eye-to-mouth below the eyes, side 4x eye distance."""
    five = np.array([[100.0, 100.0], [140.0, 100.0], [120.0, 120.0], [105.0, 140.0], [135.0, 140.0]])
    quad = T.ffhq_quad(five)
    # eye_to_eye = (40, 0), eye_to_mouth = (0, 40): x = (40, 0) + (40, 0) -> unit, * max(80, 72) = 80
    np.testing.assert_allclose(quad, [[40, 24], [40, 184], [200, 184], [200, 24]], atol=1e-9)


def test_ffhq_matrix_matches_pil_quad_resampling():
    """Our matrix with bilinear warping reproduces FFHQ's PIL QUAD crop pixel for pixel.

    A half-pixel error in the convention would show as a mean difference of about 4/255 here.
    """
    image, lm, _ = astronaut()
    size = 256
    quad = T.ffhq_quad(lm)
    pil = np.asarray(Image.fromarray(image).transform((size, size), Image.QUAD, quad.flatten(), Image.BILINEAR), np.float64)
    ours = cv2.warpAffine(image, T.quad_transform(quad, size), (size, size), flags=cv2.INTER_LINEAR).astype(np.float64)
    inner = slice(8, -8)
    assert np.abs(pil - ours)[inner, inner].mean() < 1.0
    shifted = T.quad_transform(quad, size)
    shifted[:, 2] += 0.5
    worse = np.abs(pil - cv2.warpAffine(image, shifted, (size, size), flags=cv2.INTER_LINEAR))[inner, inner].mean()
    assert worse > 2.0


def test_box_square_centred_on_box():
    m = T.estimate_transform("box_512", np.zeros((68, 2)), box=(100, 50, 200, 250), box_scale=1.5)
    # longer side 200 * 1.5 = 300 px -> 512 px; box centre (150, 150) -> crop centre
    np.testing.assert_allclose(m[:, :2], np.eye(2) * 512 / 300)
    np.testing.assert_allclose(T.apply_transform(m, [[150, 150]]), [[255.5, 255.5]])
    lm = np.array([[10.0, 20.0], [30.0, 60.0]])
    np.testing.assert_allclose(T.estimate_transform("box_64", lm, box_scale=1.0),
                               T.box_transform((10, 20, 30, 60), 64, 1.0))


def _mirror_matrix(width):
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize("convention", ["arcface_112", "ghost_224", "box_256"])
def test_mirrored_landmarks_give_mirrored_crop(convention):
    """Flip the landmarks (and relabel left/right): the crop positions flip with them.

    Not exact to the pixel: the ArcFace and pose templates are not perfectly symmetric (the
    ArcFace eyes are centred on x = 55.9 and 51.6/51.5 high, the crop centre is x = 55.5).
    """
    image, lm, box = astronaut()
    width = image.shape[1]
    size = T.parse_convention(convention)[1]
    flipped = T.apply_transform(_mirror_matrix(width), lm)[MIRROR_68]
    fbox = (width - 1 - box[2], box[1], width - 1 - box[0], box[3])
    crop = T.apply_transform(T.estimate_transform(convention, lm, box=box), lm)
    crop_flipped = T.apply_transform(T.estimate_transform(convention, flipped, box=fbox), flipped)
    expected = T.apply_transform(_mirror_matrix(size), crop)[MIRROR_68]
    tolerance = 2.0 * size / 112 if convention.startswith(("arcface", "ghost")) else 1e-9
    assert np.abs(crop_flipped - expected).max() < tolerance


def test_ffhq_mirror_is_exact_up_to_its_half_pixel_convention():
    """FFHQ reads landmark values (pixel-centre indices) as PIL continuous coordinates, i.e. half a
    pixel up-left of where the points are. Mirroring moves that bias to the other side, so the
    mirrored crop is the flipped crop shifted by exactly one source pixel along the crop's x axis.
    """
    image, lm, _ = astronaut()
    width, size = image.shape[1], 256
    flipped = T.apply_transform(_mirror_matrix(width), lm)[MIRROR_68]
    m = T.estimate_transform(f"ffhq_{size}", lm)
    m_flipped = T.estimate_transform(f"ffhq_{size}", flipped)
    expected = T.apply_transform(_mirror_matrix(size), T.apply_transform(m, lm))[MIRROR_68]
    diff = T.apply_transform(m_flipped, flipped) - expected
    one_pixel = m_flipped[:, :2] @ [1.0, 0.0]
    np.testing.assert_allclose(diff, np.broadcast_to(one_pixel, diff.shape), atol=1e-6)


def test_flipped_image_gives_mirrored_crop():
    """dlib on the flipped photograph: the eye centres land where the mirrored ones did."""
    image, lm, _ = astronaut()
    lm_flip, _ = landmarks68(image[:, ::-1].copy())
    for convention in ("ffhq_256", "arcface_112"):
        size = T.parse_convention(convention)[1]
        five = T.apply_transform(T.estimate_transform(convention, lm), T.five_points(lm))
        five_flip = T.apply_transform(T.estimate_transform(convention, lm_flip), T.five_points(lm_flip))
        expected = T.apply_transform(_mirror_matrix(size), five)[[1, 0, 2, 4, 3]]
        assert np.abs(five_flip - expected).max() < 0.015 * size, (convention, five_flip - expected)


# The matrix InfoSwap's own alignment (preprocess/mtcnn_pytorch/src/align_trans.py warp_and_crop_face,
# matlab_cp2tform.get_similarity_transform_for_cv2, crop 512) gives for the astronaut's dlib 5 points;
# computed once with the official code, which runs its least squares in float32.
INFOSWAP_ASTRONAUT_512 = np.array([[3.573758238, 0.1790342978, -567.5491076789],
                                   [-0.1790342978, 3.573758238, -79.955245738]])


def test_new_template_points():
    np.testing.assert_allclose(T.ffhq5_points(256)[0], [96.49069, 119.97354])
    # InfoSwap: left eye (38.2946 - 56) * 0.85 + 56 = 40.950, 51.6963 -> 52.342, then x 512/112
    np.testing.assert_allclose(T.arcface85_points(512)[0], np.array([40.95041, 52.341855]) * 512 / 112, rtol=1e-6)
    np.testing.assert_allclose(T.arcface85_points(112).mean(0), (T.ARCFACE_112.mean(0) - 56) * 0.85 + 56)
    np.testing.assert_allclose(T.insightface_points(128), T.arcface_points(128), atol=1e-5)
    with pytest.raises(ValueError):
        T.estimate_transform("insightface_200", astronaut()[1])


@pytest.mark.parametrize("convention", ["ffhq5_512", "ffhq5_256", "arcface85_512", "insightface_128"])
def test_new_templates_recover_exact_transform(convention):
    """Landmarks that sit exactly on the template under a similarity give that similarity back."""
    template, size = T.parse_convention(convention)
    points = {"ffhq5": T.ffhq5_points, "arcface85": T.arcface85_points, "insightface": T.insightface_points}[template](size)
    m = _random_similarity(np.random.default_rng(size))
    np.testing.assert_allclose(T.estimate_transform(convention, T.apply_transform(_inverse(m), points)), m, atol=1e-8)


@pytest.mark.parametrize("convention", ["ffhq5_512", "arcface85_512", "insightface_128"])
def test_new_templates_realign_their_own_crop(convention):
    """Crop the astronaut, find her landmarks again on the crop with dlib, align that crop: it is
    (nearly) its own alignment. Bound: the template points move by under 1.5 % of the crop side,
    dlib's own jitter between the photograph and a resampled crop of it."""
    from swapbench.faces.warp import align_image

    image, lm, _ = astronaut()
    size = T.parse_convention(convention)[1]
    crop = align_image(image, T.estimate_transform(convention, lm), size)
    lm_crop, _ = landmarks68(crop)
    again = T.estimate_transform(convention, lm_crop)
    five = T.five_points(lm_crop)
    moved = np.linalg.norm(T.apply_transform(again, five) - five, axis=1)
    assert moved.max() < 0.015 * size, moved


def test_arcface85_is_infoswap_cp2tform():
    """Same matrix as InfoSwap's official alignment to float32 precision (5e-5 px on the points); the
    forward least-squares fit of the other templates would put them ~4 px away on this 512 crop."""
    _, lm, _ = astronaut()
    five = T.five_points(lm)
    ours = T.estimate_transform("arcface85_512", lm)
    official = T.apply_transform(INFOSWAP_ASTRONAUT_512, five)
    assert np.abs(T.apply_transform(ours, five) - official).max() < 5e-5
    forward = T.similarity(five, T.arcface85_points(512))
    assert np.abs(T.apply_transform(forward, five) - official).max() > 2.0


def _bundled_faces():
    sys.path.insert(0, os.path.dirname(__file__))
    from faces import sample_photos

    return [(name, image, T.five_points(landmarks68(image)[0])) for name, image in sample_photos().items()]


def test_insightface_template_is_norm_crop_bit_for_bit():
    """insightface_<size> is insightface's own norm_crop (>= 0.7.2, with the 8 px shift at 128): the same
    matrix and, warped the same way (cv2 bilinear, zero border), the same pixels, on every bundled face.
    arcface_<size> keeps the float64 template: its matrix is within 1e-4 of it (float32 rounding). The engine's own warp
    (kornia, reflection padding) is within four levels of norm_crop (OpenCV 4's 1/32 px positions) wherever
    the crop lies in the photo."""
    from insightface.utils import face_align

    from swapbench.faces.warp import align_image

    for name, image, five in _bundled_faces():
        for size in (112, 128, 256):
            expected = face_align.estimate_norm(five, size)
            ours = T.estimate_transform(f"insightface_{size}", five)
            np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(T.estimate_transform(f"arcface_{size}", five), expected, rtol=0, atol=1e-4)
            official = face_align.norm_crop(image, five, size)
            np.testing.assert_array_equal(cv2.warpAffine(image, ours, (size, size), borderValue=0.0), official)
        engine = align_image(image, T.estimate_transform("insightface_128", five), 128).astype(int)
        inside = cv2.warpAffine(np.full(image.shape[:2], 255, np.uint8), T.estimate_transform("insightface_128", five),
                                (128, 128)) == 255
        # OpenCV 4 (swapbench's pin) rounds cv2's sample positions to 1/32 px: up to 3 levels on the
        # astronaut's sharp edges against kornia's exact float sampling (tests/test_faces_warp.py states the bound)
        assert np.abs(engine - face_align.norm_crop(image, five, 128))[inside].max() <= 4, name
