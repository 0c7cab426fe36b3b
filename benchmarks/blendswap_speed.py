"""Swaps per second of the BlendSwap port on CPU, with deterministic random weights.

    python benchmarks/blendswap_speed.py [--batch-sizes 1 8] [--repeats 3] [--divisor 1]
    python benchmarks/blendswap_speed.py --official /path/to/BlendFace/swapping

One swap = `BlendSwap.swap`: BlendFace identity of the 112 source, attribute encoder, AAD generator and
mask blend on the 256 target, 8-bit rounding and truncation. With --official, the official `BlendSwap`
module (swapping/blendswap.py, a torchvision stub in place of its unused import) loads the same
random blendswap.pth strictly and runs its forward on the same tensors. Full size needs about 8 GB of
memory with --official (the official module holds the online copies too); --divisor 8 runs the parity
tests' narrow network (widths / 8, iresnet18 identity; the official side then needs those widths).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import types
from pathlib import Path

import torch

from swapbench.methods.base import FaceBatch
from swapbench.methods.blendswap import random_weights as rw
from swapbench.methods.blendswap.method import BLENDSWAP_FILE, BlendSwap
from swapbench.faces.iresnet import iresnet18
from timing import timed_interleaved  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def official_swap(path: Path, state: dict, narrow: bool):
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.transforms", tv.transforms)
    sys.path.insert(0, str(path))
    official = importlib.import_module("blendswap")  # from the user's checkout
    if narrow:
        official.iresnet100 = importlib.import_module("model.iresnet").iresnet18
    model = official.BlendSwap()
    model.load_state_dict(state, strict=True)
    model.eval()

    @torch.no_grad()
    def swap(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.floor(model(target, source) * 255) / 255  # inference.py's astype(uint8), kept in float

    return swap


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--divisor", type=int, default=1, help="divide every width by this (1: the official network)")
    ap.add_argument("--official", type=Path, help="the swapping/ folder of a mapooon/BlendFace checkout")
    args = ap.parse_args(argv)

    narrow = args.divisor != 1
    channels = rw.narrow(args.divisor)
    identity = "iresnet18" if narrow else "iresnet100"
    state = rw.checkpoint(channels, identity, seed=0)

    class Port(BlendSwap):
        pass

    Port.channels = channels
    if narrow:
        Port.identity_net = staticmethod(iresnet18)
    ours = Port()
    ours.load_weights({BLENDSWAP_FILE.name: state})
    impls = {"swapbench": lambda s, t: ours.swap(FaceBatch(s, None), FaceBatch(t, None))}
    if args.official:
        impls["official"] = official_swap(args.official, state, narrow)
    del state

    print(f"BlendSwap widths / {args.divisor} ({identity} identity), CPU, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print("| implementation | batch | s/batch (min) | s/batch (median) | swaps/s (best) | swaps/s (median) |")
    print("|---|---|---|---|---|---|")
    for b in args.batch_sizes:
        g = torch.Generator().manual_seed(b)
        src = (torch.rand(b, 3, 112, 112, generator=g) * 255).round() / 255
        tgt = (torch.rand(b, 3, 256, 256, generator=g) * 255).round() / 255
        times = timed_interleaved({k: (lambda fn=fn: fn(src, tgt)) for k, fn in impls.items()}, args.repeats)
        for label, ts in times.items():
            lo, med = min(ts), statistics.median(ts)
            print(f"| {label} | {b} | {lo:.2f} | {med:.2f} | {b / lo:.2f} | {b / med:.2f} |", flush=True)
    if args.official:
        a, b_ = impls["swapbench"](src, tgt), impls["official"](src, tgt)
        print(f"max abs difference swapbench vs official (batch {src.shape[0]}): {float((a - b_).abs().max()):.2e}")


if __name__ == "__main__":
    main()
