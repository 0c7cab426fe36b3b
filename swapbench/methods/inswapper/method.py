"""INSwapper: insightface's inswapper_128.onnx, run with onnxruntime the way insightface runs it.

The official artefact is the ONNX file, and the official inference is insightface's own class
(python-package/insightface/model_zoo/inswapper.py, `INSwapper.get`, unchanged from bbbb45c4 to
7fadd42 apart from the session's providers). On insightface's 128 ArcFace crop of the target (the
112 template scaled by 128/128 and shifted 8 px right, face_align.estimate_norm since pip 0.7.2) it does:

  source   buffalo_l's w600k_r50 on the 112 ArcFace crop of the source ([-1, 1] RGB), the embedding
           L2-normalised (normed_embedding); latent = normed_embedding @ emap, L2-normalised again.
           emap is the graph's last initializer, a 512 x 512 float32 matrix used by no node.
  target   the uint8 crop as RGB / 255, NCHW.
  network  session.run({target, source: latent}) -> [1, 3, 128, 128], nominally in [0, 1].
  output   clip(255 * pred, 0, 255).astype(uint8): truncated to 8 bits (RGB -> BGR for cv2).

Here the engine's insightface_128 crop is that crop (same template, same matrix bit for bit; the engine samples it with
kornia instead of cv2.warpAffine, and rounds it to 8 bits here as insightface's uint8 warp does). The
112 source crop is not warped again: the 128 template is the 112 one translated by (8, 0) at the same
scale, so its least-squares similarity differs only by that translation and the 112 crop is exactly
the slice [0:112, 8:120] of the 128 crop (same sampling grid). Everything else is the official
arithmetic in numpy float32; the truncation is the default (`truncate`), as it costs nothing.

The graph has a fixed batch of 1, so pairs run one at a time (the w600k_r50 embedding too), which
also keeps each swap independent of batch size and composition. On a GPU both sessions use
onnxruntime's CUDA provider in fp32, as officially; the configured torch precision does not apply.

`paste_back` is insightface's paste_back=True blend (an eroded, blurred square mask of the warped
crop); the leaderboard's frame grids draw INSwapper's swaps in their frames with it (`frame_paste`).
The scoring carries swaps into the scoring crop with the engine's landmark-hull paste like every
other method's. The fake_diff mask that insightface computes
but leaves unused is not reproduced.

Written by hand: the latent arithmetic and the paste-back formula are a few numpy/OpenCV lines that no
library provides; the network itself is the official file, run by onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from swapbench.faces.insightface_arcface import W600K_R50, ArcFaceONNX, onnx_providers, to_pixels
from swapbench.methods.base import FaceBatch, SwapMethod
from swapbench.weights import WeightFile, WeightsError, register, sha256_of

SIZE = 128
LATENT = 512
# The 112 ArcFace crop inside the 128 crop: rows 0..111, columns 8..119.
ARCFACE_ROWS, ARCFACE_COLS = slice(0, 112), slice(8, 120)

LICENCE = ("insightface: models for non-commercial research purposes only (README, License); since "
           "2025-11-24 'for inswapper series face swap models (e.g., inswapper_128.onnx ...), please contact "
           "contact@insightface.ai for licensing'")
INSWAPPER_128 = WeightFile(
    name="insightface/inswapper_128", filename="inswapper_128.onnx", format="onnx",
    url="https://github.com/deepinsight/insightface/tree/master/examples/in_swapper",
    licence=LICENCE,
    # insightface never published a checksum: this is the one every redistribution of the file shares.
    sha256="e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af", size=554_253_681,
    manual=True,
    note=("no official download exists any more (the v0.7 release asset and the example's Google Drive link "
          "are gone); insightface asks users to contact contact@insightface.ai for licensing. Supply the file "
          "yourself (554,253,681 bytes, sha256 e4a3f08c...9e16af) and put it in the weights directory"),
)
INSWAPPER_128_FP16 = register(WeightFile(
    name="facefusion/inswapper_128_fp16", filename="inswapper_128_fp16.onnx", format="onnx",
    url="https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0/inswapper_128_fp16.onnx",
    licence="a float16 conversion of inswapper_128.onnx by facefusion, not insightface's; " + LICENCE,
    sha256="6d51a9278a1f650cffefc18ba53f38bf2769bf4bbff89267822cf72945f8a38b", size=277_680_638,
    note="third-party float16 conversion; used only with the option inswapper.model=inswapper_128_fp16",
))[0]
MODEL_FILES = {"inswapper_128": INSWAPPER_128, "inswapper_128_fp16": INSWAPPER_128_FP16}


@dataclass(frozen=True)
class Graph:
    """What a file holds that INSwapper relies on: its inputs, output, emap and whether it is float16."""

    inputs: tuple[tuple[str, tuple], ...]
    outputs: tuple[tuple[str, tuple], ...]
    emap_name: str
    emap: np.ndarray
    float16: bool


def read_graph(path) -> Graph:
    """The inputs, outputs and last initializer (emap) of an ONNX file, as insightface reads them."""
    import onnx
    from onnx import TensorProto, numpy_helper

    graph = onnx.load(str(path)).graph
    dims = lambda v: tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)  # noqa: E731
                           for d in v.type.tensor_type.shape.dim)
    initialized = {i.name for i in graph.initializer}
    inputs = tuple((v.name, dims(v)) for v in graph.input if v.name not in initialized)
    last = graph.initializer[-1] if graph.initializer else None
    return Graph(inputs, tuple((v.name, dims(v)) for v in graph.output), last.name if last is not None else "",
                 numpy_helper.to_array(last) if last is not None else np.zeros(0, np.float32),
                 any(i.data_type == TensorProto.FLOAT16 for i in graph.initializer))


def graph_problems(g: Graph, float16_expected: bool) -> list[str]:
    """Why a file cannot be run as inswapper_128 (empty: it can)."""
    problems = []
    if len(g.inputs) != 2 or len(g.outputs) != 1:
        problems.append(f"expected 2 inputs and 1 output, found {len(g.inputs)} and {len(g.outputs)}")
    else:
        (_, target), (_, source), (_, out) = g.inputs[0], g.inputs[1], g.outputs[0]
        if target[1:] != (3, SIZE, SIZE) or source[1:] != (LATENT,) or tuple(out[1:]) != (3, SIZE, SIZE):
            problems.append(f"expected inputs [1,3,128,128] and [1,512] and an output [1,3,128,128], found "
                            f"{[list(s) for _, s in g.inputs]} -> {[list(s) for _, s in g.outputs]}")
    if g.emap.shape != (LATENT, LATENT) or g.emap.dtype not in (np.float32, np.float16):
        problems.append(f"its last initializer {g.emap_name!r} is {g.emap.dtype} {list(g.emap.shape)}, not the "
                        "512 x 512 float emap insightface reads from that position (a re-exported or optimised "
                        "copy can reorder initializers)")
    elif g.emap.dtype == np.float16 and not float16_expected:
        problems.append("its emap is float16")
    if g.float16 and not float16_expected:
        problems.append("it holds float16 weights: it looks like the third-party inswapper_128_fp16 conversion, "
                        "which runs only with the option inswapper.model=inswapper_128_fp16")
    return problems


def paste_back(frame: np.ndarray, swap: np.ndarray, matrix) -> np.ndarray:
    """insightface's paste_back=True: a uint8 swap [128, 128, 3] blended into its uint8 frame [H, W, 3].

    matrix: frame -> crop (2 x 3). The crop and a white square are warped back (cv2 bilinear, zero
    border); the square, thresholded at 20, is eroded by max(s // 10, 10) and blurred with a
    (2 max(s // 20, 5) + 1)^2 Gaussian, s = int(sqrt(height * width)) of its extent, and the blend is
    truncated to uint8. Channel order does not matter (frame and swap must share it).
    """
    h, w = frame.shape[:2]
    back = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    warped = cv2.warpAffine(swap, back, (w, h), borderValue=0.0)
    mask = cv2.warpAffine(np.full(swap.shape[:2], 255, np.float32), back, (w, h), borderValue=0.0)
    mask[mask > 20] = 255
    rows, cols = np.nonzero(mask == 255)
    side = int(np.sqrt((rows.max() - rows.min()) * (cols.max() - cols.min())))
    erode = max(side // 10, 10)
    mask = cv2.erode(mask, np.ones((erode, erode), np.uint8), iterations=1)
    blur = 2 * max(side // 20, 5) + 1
    mask = (cv2.GaussianBlur(mask, (blur, blur), 0) / 255)[:, :, None]
    return (mask * warped + (1 - mask) * frame.astype(np.float32)).astype(np.uint8)


class INSwapper(SwapMethod):
    """insightface's inswapper_128.onnx on 128 ArcFace crops, with buffalo_l's w600k_r50 source identity."""

    name = "inswapper"
    description = ("INSwapper (insightface, 2022): inswapper_128.onnx, the swapper of roop and FaceFusion; "
                   "source latent from buffalo_l w600k_r50 through emap")
    paper = "no paper (insightface inswapper_128, 2022)"
    code = "https://github.com/deepinsight/insightface/tree/master/examples/in_swapper"
    crop = "insightface"  # insightface >= 0.7.2 estimate_norm at 128, float32 template: its matrix bit for bit
    size = SIZE
    weights = (INSWAPPER_128, W600K_R50)
    frame_paste = staticmethod(paste_back)  # insightface's paste_back=True, for the frame grids

    @dataclass(frozen=True)
    class Options:
        # inswapper_128_fp16: facefusion's third-party float16 conversion, never used unless named here
        model: Literal["inswapper_128", "inswapper_128_fp16"] = "inswapper_128"
        # truncate the output to 8 bits as insightface does (astype(uint8) after clip(255 * pred))
        truncate: bool = True

    @classmethod
    def weights_for(cls, options) -> tuple:
        """The swapper file the `model` option names, and the source identity model."""
        return (MODEL_FILES[options.model], W600K_R50)

    def __init__(self, options=None):
        super().__init__(options)
        self.paths: dict[str, Path] = {}
        self.emap: np.ndarray | None = None
        self.emap_name = ""
        self._sessions: dict[str, tuple] = {}  # device -> (swapper session, ArcFaceONNX)
        self.detector: str | None = None  # the run's face detector, noted on each swap unless it is SCRFD

    @classmethod
    def from_config(cls, cfg: dict) -> "INSwapper":
        method = super().from_config(cfg)
        method.detector = (cfg.get("face") or {}).get("detector")
        return method

    def load_weights(self, state: dict[str, object]) -> None:
        swapper_file = self.weights[0]
        for wf in self.weights:
            if wf.name not in state:
                raise WeightsError(f"{self.name}: no file was given for {wf.filename} ({wf.name})")
        path = Path(state[swapper_file.name])
        try:
            graph = read_graph(path)
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise WeightsError(f"{path} ({swapper_file.name}) is not a readable ONNX model ({exc}); "
                               f"{swapper_file.note or swapper_file.url}") from None
        problems = graph_problems(graph, float16_expected=self.options.model == "inswapper_128_fp16")
        if problems:
            raise WeightsError(f"{path} ({swapper_file.name}) is not {swapper_file.filename} as insightface runs it: "
                               f"{'; '.join(problems)}. Where to get it: {swapper_file.url}")
        self.paths = {wf.name: Path(state[wf.name]) for wf in self.weights}
        # Only the published files make publishable rows (random-weight test files never do). The engine
        # has hashed them already (sha256_of caches by path, size and time), so this costs nothing there.
        self.publishable = all(wf.sha256 is not None and sha256_of(self.paths[wf.name]) == wf.sha256
                               for wf in self.weights)
        self.emap = graph.emap.astype(np.float32)
        self.emap_name = graph.emap_name
        self._sessions = {}

    def _models(self, device: str):
        """The swapper session and the w600k_r50 model for a device, made once (after load_weights)."""
        if self.emap is None:
            raise RuntimeError(f"{self.name}: load_weights() was not called; no model file is open")
        if device not in self._sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3  # the unused emap initializer draws a warning on every load
            swapper = ort.InferenceSession(str(self.paths[self.weights[0].name]), opts,
                                           providers=list(onnx_providers(device)))
            self._sessions[device] = (swapper, ArcFaceONNX(self.paths[W600K_R50.name], device))
        return self._sessions[device]

    def latent(self, source: torch.Tensor) -> np.ndarray:
        """The latents [B, 512] of source insightface_128 crops [B, 3, 128, 128] in [0, 1]: emap . normed embedding."""
        _, arcface = self._models(_device(source))
        rows = []
        for crop in source[:, :, ARCFACE_ROWS, ARCFACE_COLS]:  # one by one: the result never depends on the batch
            embedding = arcface.features(crop[None])
            latent = np.dot(embedding / np.linalg.norm(embedding), self.emap)  # numpy float32, as insightface
            rows.append(latent / np.linalg.norm(latent))
        return np.concatenate(rows).astype(np.float32)

    def generate(self, target: torch.Tensor, latent: np.ndarray) -> torch.Tensor:
        """Swapped crops [B, 3, 128, 128] in [0, 1] from target insightface_128 crops in [0, 1] and latents [B, 512]."""
        swapper, _ = self._models(_device(target))
        (target_name, _), (source_name, _) = [(i.name, i.shape) for i in swapper.get_inputs()]
        blobs = (to_pixels(target) * np.float32(1 / 255)).numpy()  # blobFromImage(scalefactor=1/255, swapRB)
        out = []
        for x, z in zip(blobs, latent):  # the official graph has a fixed batch of 1
            pred = swapper.run(None, {target_name: x[None], source_name: z[None]})[0]
            pixels = np.clip(255 * pred, 0, 255)
            out.append(np.trunc(pixels) / np.float32(255) if self.options.truncate else pixels / np.float32(255))
        return torch.from_numpy(np.concatenate(out).astype(np.float32)).to(target.device)

    @torch.no_grad()
    def swap(self, source: FaceBatch, target: FaceBatch) -> torch.Tensor:
        out = self.generate(target.image, self.latent(source.image))
        if self.detector not in (None, "scrfd"):  # insightface aligns both faces on SCRFD's five points
            for pair_id in target.pair_id:
                self.note(pair_id, f"crops on {self.detector} 5 points, not insightface's SCRFD")
        return out


def _device(images: torch.Tensor) -> str:
    return str(images.device)
