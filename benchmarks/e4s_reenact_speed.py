"""Seconds per reenactment of E4S's FaceVid2Vid stage on CPU, full size (vox-256), random weights.

    python benchmarks/e4s_reenact_speed.py [--repeats 2] [--batch-sizes 1 2]
    python benchmarks/e4s_reenact_speed.py --official /path/to/e4s   # an e4s2022/e4s checkout

One reenactment = `Reenactor.forward` on a 256 source and a 256 driving frame (keypoints of the source,
head pose and expression of both, the SPADE generator) and the official uint8 truncation. With
--official, the official modules (src/pretrained/face_vid2vid, built from pretrained_ckpts/facevid2vid/
vox-256.yaml) load the same random checkpoint strictly and run `driven_demo.make_animation(..., cpu=True)`
on the same images, batch 1 as the official pipeline. The max abs difference of the two frames is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from swapbench.methods.e4s.facevid2vid_random import random_checkpoint
from swapbench.methods.e4s.reenact import Reenactor, to_uint8
from timing import timed_interleaved  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def official_reenact(root: Path, checkpoint: dict):
    import yaml

    sys.path.insert(0, str(root))
    from src.pretrained.face_vid2vid import driven_demo as dd  # noqa: PLC0415 (from the user's checkout)
    from src.pretrained.face_vid2vid.modules.generator import OcclusionAwareSPADEGenerator
    from src.pretrained.face_vid2vid.modules.keypoint_detector import HEEstimator, KPDetector

    cfg = yaml.safe_load((root / "pretrained_ckpts/facevid2vid/vox-256.yaml").read_text())["model_params"]
    common = cfg["common_params"]
    nets = (OcclusionAwareSPADEGenerator(**cfg["generator_params"], **common),
            KPDetector(**cfg["kp_detector_params"], **common), HEEstimator(**cfg["he_estimator_params"], **common))
    for net, name in zip(nets, ("generator", "kp_detector", "he_estimator")):
        net.load_state_dict(checkpoint[name], strict=True)
        net.eval()

    def reenact(source: np.ndarray, driving: np.ndarray) -> np.ndarray:  # [256, 256, 3] float in [0, 1]
        return dd.make_animation(source, [driving], *nets, estimate_jacobian=False, cpu=True)[0]

    return reenact


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--official", type=Path, help="root of an e4s2022/e4s checkout (official side at batch 1)")
    args = ap.parse_args(argv)

    checkpoint = random_checkpoint()
    ours = Reenactor.from_checkpoint(checkpoint)
    official = official_reenact(args.official, checkpoint) if args.official else None
    del checkpoint

    print(f"FaceVid2Vid (vox-256, full size), CPU, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| implementation | batch | s/batch (min) | s/batch (median) | s per image (median) |")
    print("|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for b in args.batch_sizes:
        src, drv = torch.rand(b, 3, 256, 256, generator=g), torch.rand(b, 3, 256, 256, generator=g)
        fns = {"swapbench": lambda: to_uint8(ours(src, drv))}
        if official and b == 1:
            as_np = lambda x: x[0].permute(1, 2, 0).double().numpy()  # noqa: E731
            fns["official"] = lambda: (official(as_np(src), as_np(drv)) * 255).astype(np.uint8)
        for label, ts in timed_interleaved(fns, args.repeats, warmup=0).items():
            lo, med = min(ts), statistics.median(ts)
            print(f"| {label} | {b} | {lo:.2f} | {med:.2f} | {med / b:.2f} |", flush=True)
        if len(fns) == 2:
            a = ours(src, drv)[0].permute(1, 2, 0).numpy()
            ref = official(as_np(src), as_np(drv))
            diff = np.abs(to_uint8(torch.from_numpy(a)).numpy().astype(int) - (ref * 255).astype(np.uint8).astype(int))
            print(f"frames swapbench vs official: max abs difference {np.abs(a - ref).max():.1e} (float), "
                  f"{diff.max()} (uint8, {(diff == 0).mean():.2%} of the values equal)")

if __name__ == "__main__":
    main()
