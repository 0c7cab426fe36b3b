"""Seconds per stage of E4S's restoration port (GPEN + Real-ESRNet x4) on CPU, full size, random weights.

    python benchmarks/e4s_restore_speed.py [--repeats 2] [--size 256]
    python benchmarks/e4s_restore_speed.py --official /path/to/e4s --torchvision /path/to/torchvision-site

The stage runs per image (as the official `FaceEnhancement.process`), so batch N costs N times one
image. Its cost depends on the number of faces over the threshold, so the stages are timed apart:
super-resolution of the 256 input, RetinaFace on the 1024 image, and per face GPEN + ParseNet mask.
With --official (an e4s2022/e4s checkout; --torchvision a folder holding a torchvision package, which
RetinaFace's official code imports), the official modules get the same weights and inputs, and the
max abs difference of each stage's float output is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np
import torch

from swapbench.methods.e4s.restore import Restorer, align_face, build_reduced
from swapbench.methods.e4s.restore_random import restore_random_states
from swapbench.methods.e4s.retinaface import detect
from timing import timed_interleaved  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def official_stages(root: str, tv: str, nets_state: dict):
    sys.path[:0] = [tv, root]
    from src.pretrained.gpen.face_detect.data import cfg_re50  # noqa: PLC0415 - from the user's checkout
    from src.pretrained.gpen.face_detect.facemodels.retinaface import RetinaFace  # noqa: PLC0415
    from src.pretrained.gpen.face_model.gpen_model import FullGenerator  # noqa: PLC0415
    from src.pretrained.gpen.face_parse.parse_model import ParseNet  # noqa: PLC0415
    from src.pretrained.gpen.sr_model.rrdbnet_arch import RRDBNet  # noqa: PLC0415

    nets = {
        "sr": RRDBNet(3, 3, scale=4, num_feat=32, num_block=23, num_grow_ch=32),
        "detector": RetinaFace(cfg=cfg_re50, phase="test"),
        "gpen": FullGenerator(512, 512, 8, 2, narrow=1),
        "parser": ParseNet(512, 512, 32, 64, 19, norm_type="bn", relu_type="LeakyReLU", ch_range=[32, 256]),
    }
    for k, net in nets.items():
        net.load_state_dict(nets_state[k], strict=True)
        net.eval()
    return nets


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--size", type=int, default=256, help="input side (E4S: 256)")
    ap.add_argument("--official", help="e4s2022/e4s checkout (its src/ folder)")
    ap.add_argument("--torchvision", default="", help="folder holding a torchvision package (official RetinaFace)")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)

    nets = build_reduced()  # defaults: E4S's full sizes
    states = restore_random_states(nets, seed=0)
    for net, state in zip(nets, states.values()):
        net.load_state_dict(state, strict=True)
    mine = Restorer(*nets)
    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8), (5, 5), 1.5)
    up = cv2.resize(bgr, (4 * args.size, 4 * args.size))
    _, landmarks = detect(mine.detector, up)
    landmarks = landmarks[0] if len(landmarks) else np.array([0.4, 0.6, 0.5, 0.42, 0.58, 0.45, 0.45, 0.55, 0.65, 0.65]) * 4 * args.size
    crop, _ = align_face(up, landmarks, mine.reference)

    rgb = torch.from_numpy((bgr.astype(np.float32) / 255.0)[:, :, ::-1].transpose(2, 0, 1).copy())[None]
    det_in = torch.from_numpy((np.float32(up) - (104, 117, 123)).astype(np.float32).transpose(2, 0, 1).copy())[None]
    gpen_in = (torch.from_numpy(crop) / 255.0 - 0.5) / 0.5
    gpen_in = gpen_in.permute(2, 0, 1)[None].flip(1).contiguous()
    fns = {
        ("swapbench", "SR x4"): lambda: mine.sr(rgb),
        ("swapbench", "RetinaFace"): lambda: mine.detector(det_in),
        ("swapbench", "GPEN (per face)"): lambda: mine.gpen(gpen_in),
        ("swapbench", "ParseNet (per face)"): lambda: mine.parser(gpen_in),
    }
    if args.official:
        off = official_stages(args.official, args.torchvision, states)
        fns.update({
            ("official", "SR x4"): lambda: off["sr"](rgb),
            ("official", "RetinaFace"): lambda: off["detector"](det_in),
            ("official", "GPEN (per face)"): lambda: off["gpen"](gpen_in)[0],
            ("official", "ParseNet (per face)"): lambda: off["parser"](gpen_in),
        })
        for what in ("SR x4", "RetinaFace", "GPEN (per face)", "ParseNet (per face)"):
            a, b = fns[("swapbench", what)](), fns[("official", what)]()
            a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
            print(f"{what}: max abs difference {max((x - y).abs().max().item() for x, y in zip(a, b)):.2e}")
    print(f"torch threads {torch.get_num_threads()}, input {args.size}x{args.size}")
    # process CPU time next to wall time: on a shared, loaded machine the wall time mostly measures the load
    cpu = {}
    timed = {k: (lambda fn=fn, k=k: cpu.setdefault(k, []).append(_cpu_seconds(fn))) for k, fn in fns.items()}
    wall = timed_interleaved(timed, args.repeats, warmup=0)
    print("| implementation | stage | median wall s | median CPU s | runs |")
    print("|---|---|---|---|---|")
    for impl, what in fns:
        print(f"| {impl} | {what} | {statistics.median(wall[(impl, what)]):.2f} | {statistics.median(cpu[(impl, what)]):.2f} | {args.repeats} |")


def _cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


if __name__ == "__main__":
    main()
