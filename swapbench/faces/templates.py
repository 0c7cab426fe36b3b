"""Alignment templates: how each crop convention maps an image to an S x S face crop.

A convention is named "<template>_<size>", e.g. "arcface_112", "ghost_224", "ffhq_256", "ffhq5_512",
"arcface85_512", "box_512".
`estimate_transform(convention, landmarks)` returns a 2x3 float64 matrix M that maps image pixel
coordinates to crop pixel coordinates, (x', y') = M @ (x, y, 1). Pixel coordinates follow the
cv2/kornia convention: the centre of pixel (i, j) is at x = j, y = i, so the matrix can be handed
to cv2.warpAffine or kornia's warp_affine (align_corners=True) unchanged, and inverted for
paste-back.

Templates:

- arcface: insightface's 5-point ArcFace template (python-package/insightface/utils/face_align.py,
  `arcface_dst`, defined on a 112 crop), fitted with a least-squares similarity transform. Other
  sizes follow insightface's estimate_norm: multiples of 112 scale the template by size/112,
  multiples of 128 scale it by size/128 and shift it right by 8 * size/128 (the rule of insightface
  >= 0.7.2's estimate_norm; before 0.7.2 there was no shift), in float64.
- insightface: the arcface rule computed exactly as insightface >= 0.7.2's estimate_norm computes it,
  template and scaling in float32, so the matrix is the one `face_align.norm_crop(img, lmk, size)`
  (INSwapper's 128 target crop) warps with, bit for bit. `arcface` differs from it only by that float32
  rounding: under 1e-4 in the matrix (tests), a level on a handful of pixels of a cv2 crop.
- ghost: the five pose templates of insightface 0.2-0.6 face_align (src1..src5, left profile to
  right profile, on a 112 crop; `src_map = {112: src, 224: src * 2}`). estimate_norm(lmk, size,
  mode='None') fits a similarity to each one and keeps the template with the smallest summed point
  distance. GHOST (ai-forever/sber-swap, insightface_func/face_detect_crop_single.py and
  utils/inference/image_processing.py) crops its 224 inputs this way.
- ffhq: the oriented square of NVlabs/ffhq-dataset download_ffhq.py (recreate_aligned_images), built
  from the eye centres and the mouth corners, at any output size. FFHQ samples the square with PIL's
  QUAD transform, whose output pixel i covers the continuous source point quad(i + 0.5) and whose
  bilinear filter reads source pixel index p at p + 0.5; the matrix below reproduces that geometry.
  FFHQ's other steps (a pre-shrink for large faces, reflect padding with a blurred border, a 4096
  intermediate) change pixel values, not where the face lands.
- celebahq: the CelebA-HQ (PGGAN) crop of tkarras/progressive_growing_of_gans dataset_tool.py
  (create_celebahq), which MegaFS and other 1024 CelebA-HQ methods expect. Its oriented square is
  FFHQ's construction (same factors 2.0 / 1.8 / 0.1, FFHQ copied it) applied to CelebA's 5-point
  annotations after adding 0.5 to the eye and mouth midpoints (integer pixel indices -> PIL
  continuous coordinates); the square is sampled with PIL QUAD at 4096 (quad + 0.5, like FFHQ)
  then reduced 4x to 1024, which keeps the geometry. So the celebahq crop is the ffhq crop of a
  quad shifted by +0.5 source pixels. Its other steps (shrink, border crop, reflect padding with a
  blurred border, the released JPEG-artefact deltas) change pixel values, not where the face lands.
- ffhq5: a 5-point least-squares similarity (skimage, as arcface) to the fixed FFHQ-aligned landmark
  positions of SimSwap's `ffhq_src` (SimSwap insightface_func/utils/face_align_ffhqandnewarc.py, defined
  on a 512 crop, scaled by size/512), which SimSwap-512 and ReliableSwap (mode "ffhq", 256) crop with.
  Not the ffhq quad above, which is built from the eyes and mouth alone: the two frame a face alike, but
  the astronaut's five points land 2-6 px apart between ffhq_512 and ffhq5_512.
- arcface85: InfoSwap's template (preprocess/mtcnn_pytorch/src/align_trans.py, ReliableSwap calls it
  "mtcnn"): the ArcFace points shrunk x0.85 about (56, 56), scaled by size/112. InfoSwap fits it with
  MATLAB-style cp2tform (matlab_cp2tform.py): the least-squares similarity from the template to the
  image points, inverted. That is not the forward fit of the other templates: for a real face the two
  put points up to ~4 px apart on a 512 crop, so `inverse_similarity` reproduces cp2tform. cp2tform also
  tries a mirrored fit and keeps it when its residual is smaller; a mirrored crop of a face whose points
  are in order never wins (checked on 3000 random faces), so only the non-reflective fit is made here.
- box: a square around a face detection box (left, top, right, bottom), `box_scale` times its
  longer side, axis aligned. Without a box, the landmarks' bounding box is used.

Landmarks may be dlib's 68 points or 5 points in insightface order (left eye, right eye, nose tip,
left mouth corner, right mouth corner, "left" meaning left in the image). From 68 points, the eye
centres are the means of 36-41 and 42-47, the nose tip is 30, the mouth corners 48 and 54.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import estimate_transform as _estimate

TEMPLATES = ("arcface", "insightface", "ghost", "ffhq", "celebahq", "ffhq5", "arcface85", "box")

# insightface python-package/insightface/utils/face_align.py `arcface_dst`, 112 x 112 crop.
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

# SimSwap insightface_func/utils/face_align_ffhqandnewarc.py `ffhq_src`, 512 x 512 crop.
FFHQ5_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043],
     [313.08905, 371.15118]],
    dtype=np.float64,
)

# InfoSwap align_trans.py: the ArcFace points shrunk x0.85 about the centre of the 112 crop.
ARCFACE85_SHRINK = 0.85

# insightface 0.2 face_align src1..src5 (112 x 112): left profile, left, frontal, right, right profile.
INSIGHTFACE_POSES_112 = np.array(
    [
        [[51.642, 50.115], [57.617, 49.990], [35.740, 69.007], [51.157, 89.050], [57.025, 89.702]],
        [[45.031, 50.118], [65.568, 50.872], [39.677, 68.111], [45.177, 86.190], [64.246, 86.758]],
        [[39.730, 51.138], [72.270, 51.138], [56.000, 68.493], [42.463, 87.010], [69.537, 87.010]],
        [[46.845, 50.872], [67.382, 50.118], [72.737, 68.111], [48.167, 86.758], [67.236, 86.190]],
        [[54.796, 49.990], [60.771, 50.115], [76.673, 69.007], [55.388, 89.702], [61.257, 89.050]],
    ],
    dtype=np.float64,
)
POSE_NAMES = ("left_profile", "left", "frontal", "right", "right_profile")

# The crop-side multiple of the detection box for the box template. 1.8 x the dlib box holds the
# whole head; landmark models that want context (mediapipe) find faces reliably on such crops.
BOX_SCALE = 1.8

# FFHQ crop geometry (download_ffhq.py): half-side = max(2 * eye-to-eye, 1.8 * eye-to-mouth),
# centre = eye midpoint + 0.1 * eye-to-mouth.
FFHQ_EYE_FACTOR = 2.0
FFHQ_MOUTH_FACTOR = 1.8
FFHQ_CENTRE_SHIFT = 0.1


def parse_convention(convention: str) -> tuple[str, int]:
    """Split "ffhq_256" into ("ffhq", 256); raise ValueError for unknown names."""
    template, _, size = convention.rpartition("_")
    if template not in TEMPLATES or not size.isdigit() or int(size) <= 0:
        raise ValueError(f"unknown crop convention {convention!r}: expected '<template>_<size>' with template in {TEMPLATES}")
    return template, int(size)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """[5, 2] float64: eye centres, nose tip, mouth corners, from 68 or 5 landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape == (5, 2):
        return lm
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks must be [68, 2] (dlib) or [5, 2], got {lm.shape}")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def arcface_points(size: int) -> np.ndarray:
    """The ArcFace template for a size x size crop, scaled as insightface's estimate_norm does."""
    if size % 112 == 0:
        return ARCFACE_112 * (size / 112)
    if size % 128 == 0:
        pts = ARCFACE_112 * (size / 128)
        pts[:, 0] += 8.0 * size / 128
        return pts
    raise ValueError(f"arcface crops must be a multiple of 112 or 128 pixels, got {size}")


def insightface_points(size: int) -> np.ndarray:
    """arcface_points as insightface >= 0.7.2 computes them: float32 template, scale and shift (float32)."""
    if size % 112 and size % 128:
        raise ValueError(f"insightface crops must be a multiple of 112 or 128 pixels, got {size}")
    ratio = np.float32(size / 112 if size % 112 == 0 else size / 128)
    pts = ARCFACE_112.astype(np.float32) * ratio
    if size % 112:
        pts[:, 0] += np.float32(8.0 * size / 128)
    return pts


def ffhq5_points(size: int) -> np.ndarray:
    """SimSwap's FFHQ-aligned 5 points for a size x size crop."""
    return FFHQ5_512 * (size / 512)


def arcface85_points(size: int) -> np.ndarray:
    """InfoSwap's ArcFace template shrunk x0.85 about (56, 56), for a size x size crop."""
    return ((ARCFACE_112 - 56.0) * ARCFACE85_SHRINK + 56.0) * (size / 112)


def pose_points(size: int) -> np.ndarray:
    """[5, 5, 2]: the five insightface pose templates scaled to a size x size crop."""
    return INSIGHTFACE_POSES_112 * (size / 112)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (Umeyama) mapping src points onto dst points."""
    # float32 template points stay float32: skimage then rounds as it does in insightface's estimate_norm.
    dst = np.asarray(dst) if np.asarray(dst).dtype == np.float32 else np.asarray(dst, np.float64)
    m = _estimate("similarity", np.asarray(src, np.float64), dst).params[:2]
    if not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-12:
        raise ValueError("degenerate landmarks: no similarity transform")
    return m.copy()


def inverse_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 similarity mapping src onto dst, fitted the way MATLAB's cp2tform (InfoSwap) fits it: the
    least-squares similarity from dst onto src, inverted (residuals measured in src space)."""
    back = np.vstack([similarity(dst, src), [0.0, 0.0, 1.0]])
    return np.linalg.inv(back)[:2].copy()


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map [N, 2] points through a 2x3 matrix."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def best_template(points5: np.ndarray, templates: np.ndarray) -> tuple[np.ndarray, int]:
    """Fit a similarity to each template; keep the one with the smallest summed point distance.

    This is insightface 0.2's estimate_norm with mode != 'arcface'; ties keep the first template.
    """
    best, best_index, best_error = None, -1, np.inf
    for i, dst in enumerate(templates):
        m = similarity(points5, dst)
        error = np.linalg.norm(apply_transform(m, points5) - dst, axis=1).sum()
        if error < best_error:
            best, best_index, best_error = m, i, error
    return best, best_index


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """FFHQ's crop square as 4 corners (top-left, bottom-left, bottom-right, top-right), float64.

    Only the eye centres and the mouth corners enter, so 5-point landmarks work as well as 68.
    """
    pts = five_points(landmarks)
    eye_left, eye_right, mouth_left, mouth_right = pts[0], pts[1], pts[3], pts[4]
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg
    # The x axis bisects the eye line and the mouth direction turned by -90 degrees.
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * FFHQ_EYE_FACTOR, np.hypot(*eye_to_mouth) * FFHQ_MOUTH_FACTOR)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * FFHQ_CENTRE_SHIFT
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def celebahq_quad(landmarks: np.ndarray) -> np.ndarray:
    """CelebA-HQ's crop square (PGGAN dataset_tool.py create_celebahq): FFHQ's square + 0.5 px."""
    return ffhq_quad(landmarks) + 0.5


def quad_transform(quad: np.ndarray, size: int) -> np.ndarray:
    """Image -> crop matrix of PIL's QUAD transform of `quad` onto a size x size image.

    PIL maps output continuous coordinates [0, size]^2 onto the quad, sampling output pixel i at
    i + 0.5 and reading source pixel p at p + 0.5; in pixel-centre coordinates this is
    crop = A^-1 (image + 0.5) - 0.5, with A the affine map from [0, size]^2 onto the quad.
    """
    quad = np.asarray(quad, dtype=np.float64)
    origin, down, right = quad[0], quad[1] - quad[0], quad[3] - quad[0]
    a = np.column_stack([right, down]) / size  # crop continuous -> image continuous (linear part)
    a_inv = np.linalg.inv(a)
    return np.column_stack([a_inv, a_inv @ (0.5 - origin) - 0.5])


def box_transform(box, size: int, scale: float = BOX_SCALE) -> np.ndarray:
    """Image -> crop matrix of an axis-aligned square `scale` x the box's longer side."""
    left, top, right, bottom = (float(v) for v in box)
    side = max(right - left, bottom - top) * scale
    if side <= 0:
        raise ValueError(f"empty box {box}")
    s = size / side
    cx, cy = (left + right) / 2, (top + bottom) / 2
    # The box centre lands on the crop centre, (size - 1) / 2 in pixel-centre coordinates.
    return np.array([[s, 0.0, (size - 1) / 2 - s * cx], [0.0, s, (size - 1) / 2 - s * cy]])


def estimate_transform(convention: str, landmarks: np.ndarray, *, box=None, box_scale: float = BOX_SCALE) -> np.ndarray:
    """2x3 float64 matrix mapping image pixels to the crop of `convention`.

    landmarks: [68, 2] dlib points or [5, 2] points (see module docstring), image pixels (x, y).
    box: (left, top, right, bottom), used by the box template only.
    """
    template, size = parse_convention(convention)
    if template == "arcface":
        return similarity(five_points(landmarks), arcface_points(size))
    if template == "insightface":
        return similarity(five_points(landmarks), insightface_points(size))
    if template == "ffhq5":
        return similarity(five_points(landmarks), ffhq5_points(size))
    if template == "arcface85":
        return inverse_similarity(five_points(landmarks), arcface85_points(size))
    if template == "ghost":
        return best_template(five_points(landmarks), pose_points(size))[0]
    if template == "ffhq":
        return quad_transform(ffhq_quad(landmarks), size)
    if template == "celebahq":
        return quad_transform(celebahq_quad(landmarks), size)
    if box is None:
        lm = np.asarray(landmarks, dtype=np.float64)
        box = (*lm.min(0), *lm.max(0))
    return box_transform(box, size, box_scale)
