"""68 landmarks from FAN (2DFAN4, Bulat & Tzimiropoulos 2017), the network of the face-alignment package.

The model is the package's TorchScript release of 2DFAN4 (`2DFAN4_1.6-c827573f02.zip`: the .zip is
TorchScript's own archive format, loaded as is by torch.jit.load; nothing to unpack). Input
[B, 3, 256, 256] RGB in [0, 1], output heatmaps [B, 68, 64, 64]. The face-alignment package is not
a dependency: the crop and the heatmap decoding below follow its utils.py (crop, transform,
get_preds_fromhm) and api.py (get_landmarks_from_image):

- from a detection box (x1, y1, x2, y2): centre = box centre moved up by 0.12 x box height,
  scale = (width + height) / 195 (the package's reference scale), crop side = 200 x scale;
- the crop: the integer corners ul = T^-1(1, 1), br = T^-1(256, 256) (truncated to int), the image
  copied into a zero canvas of that size and resized (cv2 bilinear) to 256 x 256;
- decoding: per heatmap the arg max (1-based column/row), a quarter-pixel step towards the larger
  neighbour on each axis when the peak is not on the border, minus 0.5; back to the image through
  T^-1 at resolution 64, truncated to int as the package does;
- the package's optional flip averaging (flip_input, off by default) is not done.

The package finds faces with its own detectors (S3FD by default, a download); here the boxes come
from dlib's HOG detector, to stay offline. HOG boxes are tighter than S3FD's, so the crop holds a
little less context than with the package's default detector.
"""

from __future__ import annotations

import cv2
import numpy as np

from swapbench.weights import WeightFile, register

RESOLUTION = 256  # crop side fed to the network
HEATMAP = 64  # heatmap side
REFERENCE_SCALE = 195.0  # face-alignment detection/core.py reference_scale
SCALE_FACTOR = 200.0  # crop side = 200 x scale (utils.py)
CENTER_Y_OFFSET = 0.12  # api.py: centre moved up by 0.12 x box height
NUM_LANDMARKS = 68

WEIGHTS = WeightFile(
    name="face_alignment/2DFAN4",
    filename="2DFAN4_1.6-c827573f02.zip",
    format="torchscript",
    url="https://www.adrianbulat.com/downloads/python-fan/2DFAN4_1.6-c827573f02.zip",
    licence="BSD-3-Clause (face-alignment, Adrian Bulat)",
    note="TorchScript archive of face-alignment 1.3 (models_urls['1.6']['2DFAN-4']); keep the .zip as it is",
)
register(WEIGHTS)


def centre_scale(box) -> tuple[np.ndarray, float]:
    """The package's crop centre and scale for a detection box (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    centre = np.array([x2 - (x2 - x1) / 2.0, y2 - (y2 - y1) / 2.0])
    centre[1] -= (y2 - y1) * CENTER_Y_OFFSET
    return centre, (x2 - x1 + y2 - y1) / REFERENCE_SCALE


def crop_matrix(centre, scale: float, resolution: float) -> np.ndarray:
    """3x3 T: image -> crop of `resolution` pixels (the package's transform)."""
    h = SCALE_FACTOR * scale
    return np.array([[resolution / h, 0.0, resolution * (-centre[0] / h + 0.5)],
                     [0.0, resolution / h, resolution * (-centre[1] / h + 0.5)],
                     [0.0, 0.0, 1.0]])


def _to_image(point, centre, scale, resolution) -> np.ndarray:
    """T^-1 applied to one crop point, truncated towards zero to int as the package does."""
    p = np.linalg.inv(crop_matrix(centre, scale, resolution)) @ np.array([point[0], point[1], 1.0])
    return np.trunc(p[:2])


def crop(image: np.ndarray, centre, scale: float, resolution: int = RESOLUTION) -> np.ndarray:
    """The 256 x 256 uint8 network input around (centre, scale), zero outside the image."""
    ul = _to_image((1, 1), centre, scale, resolution).astype(int)
    br = _to_image((resolution, resolution), centre, scale, resolution).astype(int)
    canvas = np.zeros((br[1] - ul[1], br[0] - ul[0], image.shape[2]), dtype=np.uint8)
    ht, wd = image.shape[:2]
    # 1-based inclusive ranges, as in the package
    new_x = (max(1, -ul[0] + 1), min(br[0], wd) - ul[0])
    new_y = (max(1, -ul[1] + 1), min(br[1], ht) - ul[1])
    old_x = (max(1, ul[0] + 1), min(br[0], wd))
    old_y = (max(1, ul[1] + 1), min(br[1], ht))
    if new_x[1] >= new_x[0] and new_y[1] >= new_y[0]:
        canvas[new_y[0] - 1:new_y[1], new_x[0] - 1:new_x[1]] = image[old_y[0] - 1:old_y[1], old_x[0] - 1:old_x[1]]
    return cv2.resize(canvas, (resolution, resolution), interpolation=cv2.INTER_LINEAR)


def decode_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[C, H, W] heatmaps -> ([C, 2] (x, y) heatmap coordinates, [C] peak values)."""
    c, h, w = heatmaps.shape
    flat = heatmaps.reshape(c, h * w)
    idx = flat.argmax(1)
    scores = flat[np.arange(c), idx]
    col, row = idx % w, idx // w
    pts = np.stack([col + 1, row + 1], axis=1).astype(np.float32)  # 1-based, as the package
    inner = (col > 0) & (col < w - 1) & (row > 0) & (row < h - 1)
    j = np.nonzero(inner)[0]
    dx = heatmaps[j, row[j], col[j] + 1] - heatmaps[j, row[j], col[j] - 1]
    dy = heatmaps[j, row[j] + 1, col[j]] - heatmaps[j, row[j] - 1, col[j]]
    pts[j] += np.sign(np.stack([dx, dy], axis=1)) * 0.25
    return pts - 0.5, scores


def heatmap_to_image(points: np.ndarray, centre, scale: float, resolution: int = HEATMAP) -> np.ndarray:
    """Heatmap coordinates -> image pixels (int-truncated, as the package returns them), float32."""
    return np.stack([_to_image(p, centre, scale, resolution) for p in points]).astype(np.float32)


class FAN:
    """2DFAN4 TorchScript model: boxes in, 68 landmarks per box out; the network runs on `device`."""

    def __init__(self, net, device="cpu"):
        self.net = net.to(device)  # the TorchScript module, opened by swapbench.weights.load
        self.device = device

    def heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """[N, 256, 256, 3] uint8 network inputs (see `crop`) -> [N, 68, 64, 64] float32 heatmaps, one forward."""
        import torch

        inp = torch.from_numpy(crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0).to(self.device)
        with torch.inference_mode():
            out = self.net(inp)
        if isinstance(out, (list, tuple)):  # hourglass stacks: the last one is the prediction
            out = out[-1]
        if tuple(out.shape[1:]) != (NUM_LANDMARKS, HEATMAP, HEATMAP):
            raise ValueError(f"FAN output {tuple(out.shape)}, expected [N, {NUM_LANDMARKS}, {HEATMAP}, {HEATMAP}]")
        return out.float().cpu().numpy()

    @staticmethod
    def points(heatmaps: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
        """[68, 2] float32 image pixels and [68] heatmap peaks from one box's heatmaps."""
        centre, scale = centre_scale(box)
        pts, scores = decode_heatmaps(heatmaps)
        return heatmap_to_image(pts, centre, scale), scores
