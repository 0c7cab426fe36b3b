"""SCRFD face detector (insightface det_10g.onnx) with 5 keypoints, run through onnxruntime.

The pre- and post-processing follow insightface's python-package model_zoo/scrfd.py:

- the image keeps its aspect ratio, is resized (cv2 bilinear) to fit a 640 x 640 canvas and padded
  with black at the bottom/right; RGB, (pixel - 127.5) / 128, NCHW;
- the network returns, per stride 8/16/32, scores [N, 1], box distances [N, 4] and keypoint offsets
  [N, 10] in stride units, N = (640 / stride)^2 x 2 anchors (with a leading batch axis in newer
  exports); anchor centres are the cell corners (x * stride, y * stride), both anchors of a cell
  share it, and the anchor index runs fastest;
- boxes are anchor -/+ distances (left, top, right, bottom), keypoints anchor + offsets; scores
  >= 0.5 are kept, boxes and points are divided by the resize factor, and a greedy NMS at IoU 0.4
  (insightface's, with its +1 pixel areas) keeps the best of overlapping boxes.

Keypoints are (left eye, right eye, nose tip, left mouth corner, right mouth corner) as seen in the
image: the 5-point order of swapbench.faces.templates, so they feed estimate_transform directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from swapbench.weights import WeightFile, register, resolve

INPUT_SIZE = 640
INPUT_MEAN = 127.5
INPUT_STD = 128.0
DET_THRESH = 0.5
NMS_THRESH = 0.4

_PACKS = "https://github.com/deepinsight/insightface/releases/download/v0.7/{}.zip"
_LICENCE = "insightface model packs: non-commercial research use only (code MIT)"
# sha256 and size as published in insightface's server/backend/insightface_server/models/packages.py;
# the two packs ship the same SCRFD-10GF file under two names.
_SHA256 = "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91"
WEIGHTS = {
    "buffalo_l": WeightFile(
        name="insightface/buffalo_l/det_10g", filename="det_10g.onnx", format="onnx", url=_PACKS.format("buffalo_l"),
        licence=_LICENCE, sha256=_SHA256, size=16_923_827, manual=True,
        note="det_10g.onnx is inside buffalo_l.zip: unzip the pack and put det_10g.onnx in the weights directory",
    ),
    "antelopev2": WeightFile(
        name="insightface/antelopev2/scrfd_10g_bnkps", filename="scrfd_10g_bnkps.onnx", format="onnx",
        url=_PACKS.format("antelopev2"), licence=_LICENCE, sha256=_SHA256, size=16_923_827,
        manual=True,
        note="scrfd_10g_bnkps.onnx is inside antelopev2.zip: unzip the pack and put scrfd_10g_bnkps.onnx in the weights directory",
    ),
}
# The files are members of zip packs, which `bench weights download` cannot unpack: manual=True makes it
# print the instructions instead of fetching the zip under the .onnx name.
register(*WEIGHTS.values())

# insightface's layouts by output count: (strides, anchors per cell, keypoints present)
_LAYOUTS = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}


@dataclass
class Detection:
    box: np.ndarray  # [4] float32: x1, y1, x2, y2 in image pixels
    score: float
    kps: np.ndarray | None  # [5, 2] float32 (x, y) in image pixels, or None for models without keypoints


def anchor_centres(height: int, width: int, stride: int, num_anchors: int) -> np.ndarray:
    """[height * width * num_anchors, 2] (x, y) anchor centres; row-major cells, anchor fastest."""
    ys, xs = np.mgrid[:height, :width]
    centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, num_anchors, axis=0)


def distance2bbox(points: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Boxes from anchor points and (left, top, right, bottom) distances."""
    return np.concatenate([points - distance[:, :2], points + distance[:, 2:4]], axis=1)


def distance2kps(points: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """[N, K, 2] keypoints from anchor points and [N, 2K] (dx, dy) offsets."""
    return points[:, None, :] + distance.reshape(len(distance), distance.shape[1] // 2, 2)


def nms(boxes: np.ndarray, scores: np.ndarray, thresh: float = NMS_THRESH) -> list[int]:
    """Greedy NMS as insightface computes it: +1 in widths, heights and areas (pixel-inclusive boxes)."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= thresh]
    return keep


def decode(outputs: list[np.ndarray], input_hw: tuple[int, int], threshold: float = DET_THRESH):
    """Candidates from raw network outputs, in network-input pixels.

    outputs: the session's outputs in model order (all scores, then all boxes, then all keypoints).
    Returns scores [N], boxes [N, 4], kps [N, 5, 2] or None; unsorted, before NMS.
    """
    if len(outputs) not in _LAYOUTS:
        raise ValueError(f"not an SCRFD model: {len(outputs)} outputs (expected one of {sorted(_LAYOUTS)})")
    strides, num_anchors, use_kps = _LAYOUTS[len(outputs)]
    fmc = len(strides)
    outs = [o[0] if o.ndim == 3 else o for o in outputs]  # exports with a batch axis: [1, N, C]
    scores, boxes, kpss = [], [], []
    for i, stride in enumerate(strides):
        h, w = input_hw[0] // stride, input_hw[1] // stride
        centres = anchor_centres(h, w, stride, num_anchors)
        score = outs[i].reshape(-1)
        if score.shape[0] != len(centres):
            raise ValueError(f"stride {stride}: {score.shape[0]} scores for {len(centres)} anchors")
        keep = np.where(score >= threshold)[0]
        scores.append(score[keep])
        boxes.append(distance2bbox(centres[keep], outs[i + fmc][keep] * stride))
        if use_kps:
            kpss.append(distance2kps(centres[keep], outs[i + 2 * fmc][keep] * stride))
    return (np.concatenate(scores), np.concatenate(boxes).astype(np.float32),
            np.concatenate(kpss).astype(np.float32) if use_kps else None)


class SCRFD:
    """insightface SCRFD detector on an ONNX file (det_10g.onnx / scrfd_10g_bnkps.onnx)."""

    def __init__(self, model_path: str | Path, *, input_size: int = INPUT_SIZE, det_thresh: float = DET_THRESH,
                 nms_thresh: float = NMS_THRESH, providers=("CPUExecutionProvider",)):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(model_path), providers=list(providers))
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_names = [o.name for o in self.session.get_outputs()]
        # Exports with a free batch axis keep it in the outputs ([B, N, C]); det_10g.onnx has neither.
        self.batch_free = not isinstance(inp.shape[0], int) and len(self.session.get_outputs()[0].shape) == 3
        if len(self.output_names) not in _LAYOUTS:
            raise ValueError(f"{model_path} is not an SCRFD model: {len(self.output_names)} outputs")
        self.input_size = input_size
        self.det_thresh = det_thresh
        self.nms_thresh = nms_thresh

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """RGB uint8 [H, W, 3] -> blob [1, 3, S, S] float32 and the resize factor."""
        size = self.input_size
        h, w = image.shape[:2]
        if h / w > 1.0:
            new_h, new_w = size, int(size / (h / w))
        else:
            new_w, new_h = size, int(size * (h / w))
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
        blob = (canvas.astype(np.float32) - INPUT_MEAN) / INPUT_STD
        return blob.transpose(2, 0, 1)[None].copy(), new_h / h

    def run(self, blobs: list[np.ndarray]) -> list[list[np.ndarray]]:
        """The network's outputs for each [1, 3, S, S] blob: one call for all where the model's batch axis
        is free, else one call per blob."""
        if self.batch_free and len(blobs) > 1:
            outputs = self.session.run(self.output_names, {self.input_name: np.concatenate(blobs)})
            return [[o[i:i + 1] for o in outputs] for i in range(len(blobs))]
        return [self.session.run(self.output_names, {self.input_name: blob}) for blob in blobs]

    def postprocess(self, outputs: list[np.ndarray], scale: float, image_shape, max_num: int = 0) -> list[Detection]:
        """Detections from one image's network outputs, best score first (or, with max_num, insightface's pick)."""
        scores, boxes, kpss = decode(outputs, (self.input_size, self.input_size), self.det_thresh)
        boxes, kpss = boxes / scale, (kpss / scale if kpss is not None else None)
        order = scores.argsort()[::-1]
        keep = order[nms(boxes[order], scores[order], self.nms_thresh)]
        if max_num > 0 and len(keep) > max_num:
            keep = keep[_pick(boxes[keep], image_shape, max_num)]
        return [Detection(boxes[i], float(scores[i]), None if kpss is None else kpss[i]) for i in keep]

    def detect(self, image: np.ndarray, max_num: int = 0) -> list[Detection]:
        """Faces in an RGB uint8 image, best score first (or, with max_num, insightface's pick)."""
        blob, scale = self.preprocess(image)
        return self.postprocess(self.run([blob])[0], scale, image.shape, max_num)


def _pick(boxes: np.ndarray, shape, max_num: int) -> np.ndarray:
    """insightface's max_num choice: large boxes near the image centre ('default' metric)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cy, cx = shape[0] // 2, shape[1] // 2
    offset = ((boxes[:, 0] + boxes[:, 2]) / 2 - cx) ** 2 + ((boxes[:, 1] + boxes[:, 3]) / 2 - cy) ** 2
    return np.argsort(area - offset * 2.0)[::-1][:max_num]


def load_scrfd(pack: str = "buffalo_l", weights_dir=None, **kwargs) -> SCRFD:
    """SCRFD-10GF from an insightface model pack; a missing file raises swapbench's WeightsError."""
    if pack not in WEIGHTS:
        raise ValueError(f"unknown insightface pack {pack!r}; choose from {sorted(WEIGHTS)}")
    path = resolve([WEIGHTS[pack]], weights_dir)[WEIGHTS[pack].name]
    return SCRFD(path, **kwargs)
