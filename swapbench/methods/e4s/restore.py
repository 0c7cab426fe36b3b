"""E4S's restoration stage: GPEN face restoration with Real-ESRNet x4 super-resolution.

E4S (face_swap.py) restores the reenacted 256x256 face with GPEN's `FaceEnhancement.process`
(in_size 512, GPEN-BFR-512, use_sr, realesrnet x4). `Restorer` reproduces it on one BGR uint8 image:

1. super-resolution: RGB [0, 1] -> RRDBNet x4 -> clamp [0, 1] -> x255, rounded to uint8 (BGR);
2. the input itself is resized (cv2 bilinear) to the SR size: detection and crops use this upscaled
   input, not the SR image;
3. RetinaFace-R50 detections with score >= 0.9 (NMS 0.4); per face:
   - a similarity transform (Umeyama) of its 5 landmarks onto the sphereface 96x112 reference points,
     made square and padded by 0.25 on each side, scaled to 512 -> `cv2.warpAffine` crop 512x512
     (flags=3: OpenCV's warpAffine treats INTER_AREA as bilinear);
   - GPEN: BGR -> RGB [-1, 1] -> FullGenerator -> [0, 1] clip, x255, truncated to uint8;
   - ParseNet mask of the restored face: every class but background, hat and cloth is 255; the
     20-pixel border is zeroed, then two Gaussian blurs (101x101, sigma 11), /255;
   - faces under 100 px: the restored face is smoothed with a 3x3 binomial kernel;
   - face and mask are warped back with the inverse transform (estimated from the reference points
     with the forward scale, as the official code does) and kept where this mask exceeds the masks
     pasted so far;
4. `cv2.convertScaleAbs(sr * (1 - mask) + faces * mask)`; with no face over the threshold the result
   is the SR image itself (no GPEN).

The networks are in rrdbnet.py, gpen.py, retinaface.py and parsenet.py; the glue here uses OpenCV as
the official code does, so that resampling and rounding match it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from swapbench.methods.e4s.gpen import FullGenerator
from swapbench.methods.e4s.parsenet import ParseNet
from swapbench.methods.e4s.retinaface import SCORE_THRESHOLD, RetinaFace, detect
from swapbench.methods.e4s.rrdbnet import RRDBNet
from swapbench.weights import WeightFile, WeightsError, check_fits, load

GPEN_HOST = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models"
GPEN_LICENCE = "© Alibaba 2021, for academic and non-commercial use only (yangxy/GPEN README)"

GPEN_WEIGHTS = WeightFile(
    name="e4s/GPEN-BFR-512", filename="GPEN-BFR-512.pth", url=f"{GPEN_HOST}/GPEN-BFR-512.pth",
    licence=GPEN_LICENCE, note="GPEN blind face restoration at 512 (E4S's restoration stage)",
)
REALESRNET_WEIGHTS = WeightFile(
    name="e4s/realesrnet_x4", filename="realesrnet_x4.pth", url=f"{GPEN_HOST}/realesrnet_x4.pth",
    licence=GPEN_LICENCE + "; the Real-ESRNet network is BSD-3-Clause (xinntao/Real-ESRGAN)",
    note="Real-ESRNet x4 (RRDBNet, 23 blocks, 32 features) under the key params_ema, from GPEN's release",
)
RETINAFACE_WEIGHTS = WeightFile(
    name="e4s/RetinaFace-R50", filename="RetinaFace-R50.pth", url=f"{GPEN_HOST}/RetinaFace-R50.pth",
    licence=GPEN_LICENCE + "; the detector is MIT (biubug6/Pytorch_Retinaface)",
    note="RetinaFace with a ResNet-50 trunk; keys carry a DataParallel 'module.' prefix",
)
PARSENET_WEIGHTS = WeightFile(
    name="e4s/ParseNet-latest", filename="ParseNet-latest.pth", url=f"{GPEN_HOST}/ParseNet-latest.pth",
    licence=GPEN_LICENCE + "; ParseNet is chaofengc's (PSFRGAN)",
    note="ParseNet face parser, 19 CelebAMask-HQ classes at 512",
)
RESTORE_WEIGHTS = (GPEN_WEIGHTS, REALESRNET_WEIGHTS, RETINAFACE_WEIGHTS, PARSENET_WEIGHTS)

FACE_SIZE = 512
# sphereface's 5 points in its 96x112 crop (eyes, nose tip, mouth corners)
SPHEREFACE_POINTS = np.array([[30.29459953, 51.69630051], [65.53179932, 51.50139999], [48.02519989, 71.73660278],
                              [33.54930115, 92.3655014], [62.72990036, 92.20410156]])
SPHEREFACE_SIZE = (96, 112)
INNER_PADDING = 0.25
# ParseNet classes kept in the paste mask: all but 0 background, 14 hat, 18 cloth
DROPPED_CLASSES = (0, 14, 18)
MASK_BORDER = 20
SMALL_FACE = 100
SMOOTH_KERNEL = np.array([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]], np.float32)


def reference_points(size: int = FACE_SIZE) -> np.ndarray:
    """The five target points in the size x size crop: the 96x112 reference squared to 112x112,
    padded by INNER_PADDING of its side on each side (168x168), scaled to `size`."""
    square = max(SPHEREFACE_SIZE)
    points = SPHEREFACE_POINTS + (square - np.array(SPHEREFACE_SIZE)) / 2
    pad = square * INNER_PADDING * 2
    points = points + pad / 2
    return points * (np.float32(size) / np.int64(square + round(pad)))  # float64, as the official dtypes give


def umeyama(src: np.ndarray, dst: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Least-squares similarity transform src -> dst (Umeyama 1991) as a 3x3 matrix, and its scale.

    With `scale` given, only rotation and translation are estimated. Same arithmetic (dtypes and
    operation order) as the copy in GPEN's align_faces.py, so the crops match it exactly.
    """
    dim = src.shape[1]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / src.shape[0]
    d = np.ones((dim,), dtype=np.double)
    if np.linalg.det(cov) < 0:
        d[dim - 1] = -1
    T = np.eye(dim + 1, dtype=np.double)
    U, S, V = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    if rank == 0:
        return np.nan * T, float("nan")
    if rank == dim - 1 and np.linalg.det(U) * np.linalg.det(V) <= 0:
        flip = d.copy()
        flip[dim - 1] = -1
        T[:dim, :dim] = U @ np.diag(flip) @ V
    elif rank == dim - 1:
        T[:dim, :dim] = U @ V
    else:
        T[:dim, :dim] = U @ np.diag(d) @ V
    if scale is None:
        scale = 1.0 / src_c.var(axis=0).sum() * (S @ d)
    T[:dim, dim] = dst_mean - scale * (T[:dim, :dim] @ src_mean.T)
    T[:dim, :dim] *= scale
    return T, scale


def align_face(image: np.ndarray, landmarks: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 512 crop of one face ([10] landmarks x1..x5, y1..y5) and the 2x3 transform back to the image."""
    src = np.float32(landmarks).reshape(2, 5).T
    ref = np.float32(reference)
    forward, scale = umeyama(src, ref)
    inverse, _ = umeyama(ref, src, scale=1.0 / scale)
    crop = cv2.warpAffine(image, forward[:2], (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_AREA)
    return crop, inverse[:2]


def _state(value, wf: WeightFile):
    """A state dict given directly, or read from a path with the file's declared format."""
    if isinstance(value, Mapping):
        return value
    return load(wf, Path(os.fspath(value)))


class Restorer:
    """GPEN restoration with x4 super-resolution on one BGR uint8 image (see the module docstring)."""

    def __init__(self, sr: RRDBNet, detector: RetinaFace, gpen: FullGenerator, parser: ParseNet,
                 device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.sr, self.detector, self.gpen, self.parser = (m.to(self.device).eval() for m in (sr, detector, gpen, parser))
        self.reference = reference_points()
        self.threshold = SCORE_THRESHOLD  # faces scoring below are not restored (official FaceEnhancement.threshold)

    @classmethod
    def from_files(cls, gpen, realesrnet, retinaface, parsenet, device: str | torch.device = "cpu",
                   sizes: Mapping | None = None) -> "Restorer":
        """Build the four networks at their E4S sizes (or `build_reduced(**sizes)`, e.g. REDUCED) and load
        each file (a path or a loaded state dict) strictly; a file that does not fit raises a WeightsError
        naming it and its URL."""
        with torch.device("meta"):  # shapes only until every file has been checked
            nets = build_reduced(**(sizes or {}))
        states = (
            sr_state(_state(realesrnet, REALESRNET_WEIGHTS), REALESRNET_WEIGHTS),
            retinaface_state(_state(retinaface, RETINAFACE_WEIGHTS)),
            _state(gpen, GPEN_WEIGHTS),
            _state(parsenet, PARSENET_WEIGHTS),
        )
        what = ("Real-ESRNet x4", "RetinaFace-R50", "GPEN-BFR-512 FullGenerator", "ParseNet")
        wfs = (REALESRNET_WEIGHTS, RETINAFACE_WEIGHTS, GPEN_WEIGHTS, PARSENET_WEIGHTS)
        for net, state, wf, w in zip(nets, states, wfs, what):  # check all before loading any
            check_fits(net, state, wf, w, finite=True)
        nets = [n.to_empty(device="cpu") for n in nets]
        for net, state in zip(nets, states):
            net.load_state_dict(state, strict=True)
        return cls(*nets, device=device)

    @torch.no_grad()
    def super_resolve(self, bgr: np.ndarray) -> np.ndarray:
        rgb = torch.from_numpy(np.ascontiguousarray((bgr.astype(np.float32) / 255.0)[:, :, ::-1].transpose(2, 0, 1)))
        out = self.sr(rgb[None].to(self.device))[0].float().cpu().clamp_(0, 1).numpy()
        return (out[::-1].transpose(1, 2, 0) * 255.0).round().astype(np.uint8)

    @torch.no_grad()
    def restore_face(self, face_bgr: np.ndarray) -> np.ndarray:
        """GPEN on a 512 BGR uint8 crop -> 512 BGR uint8 (values truncated, as the official tensor2img)."""
        face = cv2.resize(face_bgr, (FACE_SIZE, FACE_SIZE))
        x = (torch.from_numpy(face).to(self.device) / 255.0 - 0.5) / 0.5
        out = self.gpen(x.permute(2, 0, 1)[None].flip(1))
        out = (out * 0.5 + 0.5)[0].permute(1, 2, 0).flip(2)
        return (np.clip(out.float().cpu().numpy(), 0, 1) * 255.0).astype(np.uint8)

    @torch.no_grad()
    def face_mask(self, face_bgr: np.ndarray) -> np.ndarray:
        """ParseNet paste mask of a restored 512 face: float32 in [0, 1], border zeroed, blurred twice."""
        face = cv2.resize(face_bgr, (FACE_SIZE, FACE_SIZE))
        x = torch.from_numpy((face[..., ::-1] / 255.0 * 2 - 1).transpose(2, 0, 1).copy())[None].float()
        labels = self.parser(x.to(self.device))[0].argmax(dim=1)[0].cpu().numpy()
        mask = np.where(np.isin(labels, DROPPED_CLASSES), 0, 255).astype(np.uint8) / 255.0
        b = MASK_BORDER
        mask[:b, :], mask[-b:, :], mask[:, :b], mask[:, -b:] = 0, 0, 0, 0
        for _ in range(2):
            mask = cv2.GaussianBlur(mask, (101, 101), 11)
        return mask.astype(np.float32)

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        """BGR uint8 [H, W, 3] (E4S: the reenacted 256 face) -> restored BGR uint8 [4H, 4W, 3]."""
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ValueError(f"Restorer expects a BGR uint8 image [H, W, 3], got {bgr.dtype} {bgr.shape}")
        sr = self.super_resolve(bgr)
        height, width = sr.shape[:2]
        image = cv2.resize(bgr, (width, height))  # detection and crops run on the upscaled input
        boxes, landmarks = detect(self.detector, image)
        full_mask = np.zeros((height, width), np.float32)
        full_img = np.zeros(image.shape, np.uint8)
        for box, points in zip(boxes, landmarks):
            if box[4] < self.threshold:
                continue
            crop, inverse = align_face(image, points, self.reference)
            face = self.restore_face(crop)
            mask = cv2.warpAffine(cv2.resize(self.face_mask(face), (FACE_SIZE, FACE_SIZE)), inverse, (width, height),
                                  flags=cv2.INTER_AREA)
            if min(box[3] - box[1], box[2] - box[0]) < SMALL_FACE:
                face = cv2.filter2D(face, -1, SMOOTH_KERNEL)
            face = cv2.warpAffine(face, inverse, (width, height), flags=cv2.INTER_AREA)
            gain = (mask - full_mask) > 0  # where this face's mask beats the faces pasted so far
            full_mask[gain], full_img[gain] = mask[gain], face[gain]
        return cv2.convertScaleAbs(sr * (1 - full_mask[:, :, None]) + full_img * full_mask[:, :, None])


def sr_state(checkpoint: Mapping, wf: WeightFile = REALESRNET_WEIGHTS) -> Mapping:
    """The RRDBNet weights of a Real-ESRNet file: its `params_ema` entry (what E4S loads)."""
    if "params_ema" not in checkpoint:
        raise WeightsError(f"{wf.filename} ({wf.name}) has no 'params_ema' entry (keys: {', '.join(map(str, list(checkpoint)[:5]))});"
                           f" download the official file from {wf.url}")
    return checkpoint["params_ema"]


def retinaface_state(checkpoint: Mapping) -> dict:
    """RetinaFace weights without the DataParallel `module.` prefix (under `state_dict` when present)."""
    state = checkpoint.get("state_dict", checkpoint)
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


# The reduced sizes of the parity test and of e4s.model=tiny (RetinaFace stays full: it has no width knob).
REDUCED = dict(sr_blocks=1, sr_feat=8, gpen_narrow=1 / 16,
               parse=dict(min_feat_size=32, base_ch=8, res_depth=2, ch_range=(8, 32)))


def build_reduced(sr_blocks: int = 23, sr_feat: int = 32, gpen_narrow: float = 1.0, parse: Mapping | None = None
                  ) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """The four networks with reduced sizes (tests, benchmarks); defaults are E4S's full sizes."""
    return (RRDBNet(sr_feat, sr_blocks, sr_feat), RetinaFace(), FullGenerator(FACE_SIZE, 2, gpen_narrow),
            ParseNet(**dict(parse or {})))
