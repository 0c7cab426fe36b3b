"""Swaps per second of the GHOST port on CPU, with deterministic random weights.

    python benchmarks/ghost_speed.py [--batch-sizes 1 8] [--num-blocks 2] [--repeats 3]
    python benchmarks/ghost_speed.py --official /path/to/sber-swap

One swap = ArcFace embedding of the 224 source crop + AEI-Net on the target crop + resizes, i.e.
`Ghost.swap`. With --official, the official networks (network/AEI_Net.py and the
arcface_model/iresnet.py that its download_models.sh fetches) get the same weights and the same
tensors, so the comparison measures the network code only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from swapbench.methods.base import FaceBatch
from swapbench.methods.ghost.method import ARCFACE_FILE, GENERATOR_FILES, Ghost, random_weights
from timing import timed_interleaved  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def official_swap(path: Path, num_blocks: int, state: dict):
    sys.path.insert(0, str(path))
    from arcface_model.iresnet import iresnet100  # noqa: PLC0415 - from the user's sber-swap checkout
    from network.AEI_Net import AEI_Net  # noqa: PLC0415

    g = AEI_Net("unet", num_blocks=num_blocks, c_id=512).eval()
    g.load_state_dict(state[GENERATOR_FILES[num_blocks].name])
    arc = iresnet100(fp16=False).eval()
    arc.load_state_dict(state[ARCFACE_FILE.name])

    @torch.no_grad()
    def swap(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        emb = arc(F.interpolate((source - 0.5) / 0.5, scale_factor=0.5, mode="bilinear", align_corners=True))
        x = (F.interpolate(target, size=(256, 256), mode="bilinear") - 0.5) / 0.5
        y, _ = g(x, emb)
        return F.interpolate(y * 0.5 + 0.5, size=(224, 224), mode="bilinear")

    return swap


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--num-blocks", type=int, default=2, choices=[1, 2, 3])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--official", type=Path, help="path of a sber-swap checkout with arcface_model/iresnet.py")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    state = random_weights(args.num_blocks, seed=0)
    ours = Ghost(num_blocks=args.num_blocks)
    ours.load_weights(state)
    impls = {"swapbench": lambda s, t: ours.swap(FaceBatch(s, None), FaceBatch(t, None))}
    if args.official:
        impls["official"] = official_swap(args.official, args.num_blocks, state)

    print(f"GHOST {args.num_blocks} block(s), CPU, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| implementation | batch | s/batch (min) | s/batch (median) | swaps/s (best) | swaps/s (median) |")
    print("|---|---|---|---|---|---|")
    for b in args.batch_sizes:
        src, tgt = torch.rand(b, 3, 224, 224), torch.rand(b, 3, 224, 224)
        times = timed_interleaved({k: (lambda fn=fn: fn(src, tgt)) for k, fn in impls.items()}, args.repeats)
        for label, ts in times.items():
            lo, med = min(ts), statistics.median(ts)
            print(f"| {label} | {b} | {lo:.2f} | {med:.2f} | {b / lo:.2f} | {b / med:.2f} |", flush=True)

if __name__ == "__main__":
    main()
