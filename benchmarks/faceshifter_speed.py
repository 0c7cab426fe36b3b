"""Swaps per second of the FaceShifter / ReliableSwap ports on CPU, with deterministic random weights.

    python benchmarks/faceshifter_speed.py [--method faceshifter] [--batch-sizes 1 4] [--repeats 3]
    python benchmarks/faceshifter_speed.py --official /path/to/ReliableSwap

One swap = `FaceShifter.swap` (identity through the warp path + AEI-Net) or, for reliableswap_faceshifter,
the whole evaluated pipeline (MouthNet generator, post-processing, mouth helper); for reliableswap_simswap and
simswap_retrained, identity + the retrained SimSwap generator + clamp (no post, as evaluated). With --official, the
official FSGenerator (ReliableSwap @ f26c030, modules/networks/faceshifter.py) gets the same weights and
tensors; for ReliableSwap it runs the evaluation's steps one pair at a time, as inference/ffplus/eval.py
does (its mouth mask is the first image's), with swapbench's BiSeNet (the official one needs torchvision).
For the SimSwap variants the official Generator_Adain_Upsample (modules/layers/simswap/fs_networks_fix.py)
runs with the official iresnet100 and MouthNet (reliableswap_simswap) or with swapbench's SimSwap ArcFace
(simswap_retrained: the official class exists only inside the pickled file; it is checked against SimSwap's
code by tests/test_simswap_parity.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from swapbench.methods.base import FaceBatch
from swapbench.methods.faceshifter.method import (
    HELPER_FILE,
    RELIABLESWAP_FILE,
    VANILLA_FILE,
    FaceShifter,
    ReliableSwapFaceShifter,
    random_weights,
)
from swapbench.methods.megafs.nets import SoftErosion
from timing import timed_interleaved  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def official_swap(path: Path, method: str, state: dict, ours: FaceShifter):
    sys.path.insert(0, str(path))
    from modules.networks.faceshifter import FSGenerator  # noqa: PLC0415 - from the user's checkout
    from modules.third_party.arcface import MouthNet, iresnet100  # noqa: PLC0415

    tmp = Path(tempfile.mkdtemp())  # the constructor insists on reading these two files
    torch.save(iresnet100().state_dict(), tmp / "backbone.pth")
    torch.save(MouthNet(None, 128, (28, 56, 84, 112)).backbone.state_dict(), tmp / "mouth.pth")
    mouth = {"use": True, "feature_dim": 128, "crop_param": (28, 56, 84, 112), "weight_path": str(tmp / "mouth.pth")}

    def build(wf, param):
        g = FSGenerator(str(tmp / "backbone.pth"), mouth_net_param=param)
        g.load_state_dict(state[wf.name], strict=True)
        return g.eval()

    if method == "faceshifter":
        g = build(VANILLA_FILE, {"use": False})
        return torch.no_grad()(lambda s, t: (g(s * 2 - 1, t * 2 - 1)[0] + 1) / 2)
    g, helper, erosion = build(RELIABLESWAP_FILE, mouth), build(HELPER_FILE, {"use": False}), SoftErosion(17, 0.9, 7)
    mean, std = ours.mean, ours.std

    def mask(img, labels):
        x = (F.interpolate(img, size=512, mode="nearest") * 0.5 + 0.5 - mean) / std
        parsing = ours.parser(x)[0].softmax(1).argmax(1)
        m = sum((parsing == p).float() for p in labels)[:, None]
        return F.interpolate(m, size=256, mode="bilinear", align_corners=True)

    @torch.no_grad()
    def one(i_s, i_t):
        i_r = g(i_s, i_t)[0]
        hm = erosion(mask(i_t, (0, 17)))[0]
        i_r = hm * i_t + (1 - hm) * i_r
        h = helper(i_s, i_t)[0]
        m = ((mask(i_r, (11, 12, 13)) + 1) * 127.5).permute(0, 2, 3, 1).numpy().astype(np.uint8)[0]
        m = cv2.GaussianBlur(cv2.dilate(m, (20, 20), iterations=1), (11, 11), 0)
        m = torch.tensor(m, dtype=torch.float)[None, None] / 255
        return h * m + i_r * (1 - m)

    return lambda s, t: torch.cat([(one(s[i:i + 1] * 2 - 1, t[i:i + 1] * 2 - 1) + 1) / 2 for i in range(len(s))])


def official_simswap(path: Path, method: str, state: dict, ours):
    sys.path.insert(0, str(path))
    from modules.layers.simswap.fs_networks_fix import Generator_Adain_Upsample  # noqa: PLC0415
    from modules.third_party.arcface import MouthNet, iresnet100  # noqa: PLC0415

    from swapbench.methods.faceshifter import simswap as rs  # noqa: PLC0415

    mouth = method == "reliableswap_simswap"
    param = {"use": True, "feature_dim": 128, "crop_param": (28, 56, 84, 112)} if mouth else {"use": False}
    g = Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False, mouth_net_param=param)
    g.load_state_dict(state[(rs.ST5_FILE if mouth else rs.SV4_FILE).name], strict=True)
    if mouth:
        arc, mnet = iresnet100(pretrained=False, fp16=False), MouthNet(None, 128, (28, 56, 84, 112))
        arc.load_state_dict(state[rs.MS1MV3_FILE.name], strict=True)
        mnet.backbone.load_state_dict(state[rs.MOUTH_FILE.name], strict=True)
        arc, mnet = arc.eval(), mnet.eval()
    else:
        arc, mnet = ours.arcface, None
    g.eval()
    return torch.no_grad()(lambda s, t: (g(s * 2 - 1, t * 2 - 1, arc, mnet).clamp(-1, 1) + 1) / 2)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="faceshifter", choices=["faceshifter", "reliableswap_faceshifter",
                                                                 "reliableswap_simswap", "simswap_retrained"])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--official", type=Path, help="path of a ReliableSwap checkout (f26c030)")
    args = ap.parse_args(argv)

    simswap = args.method in ("reliableswap_simswap", "simswap_retrained")
    if simswap:
        from swapbench.methods.faceshifter import simswap as rs

        state = rs.random_weights(seed=0)
        ours = rs.ReliableSwapSimSwap() if args.method == "reliableswap_simswap" else rs.SimSwapRetrained()
    else:
        state = random_weights(seed=0)
        ours = FaceShifter() if args.method == "faceshifter" else ReliableSwapFaceShifter()
    ours.load_weights(state)
    impls = {"swapbench": lambda s, t: ours.swap(FaceBatch(s, None), FaceBatch(t, None))}
    if args.official:
        make = official_simswap if simswap else official_swap
        impls["official"] = make(args.official, args.method, state, ours)

    print(f"{args.method}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| implementation | batch | s/batch (min) | s/batch (median) | swaps/s (best) | swaps/s (median) |")
    print("|---|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for b in args.batch_sizes:
        src, tgt = torch.rand(b, 3, 256, 256, generator=g), torch.rand(b, 3, 256, 256, generator=g)
        if args.official:  # same result before timing
            diff = (impls["swapbench"](src, tgt) - impls["official"](src, tgt)).abs().max().item()
            print(f"batch {b}: max |swapbench - official| = {diff:.2e}")
        times = timed_interleaved({k: (lambda fn=fn: fn(src, tgt)) for k, fn in impls.items()}, args.repeats)
        for label, ts in times.items():
            lo, med = min(ts), statistics.median(ts)
            print(f"| {label} | {b} | {lo:.2f} | {med:.2f} | {b / lo:.2f} | {b / med:.2f} |", flush=True)


if __name__ == "__main__":
    main()
