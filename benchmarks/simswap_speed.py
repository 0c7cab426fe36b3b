"""Swaps per second of the SimSwap port on CPU, with deterministic random weights.

    python benchmarks/simswap_speed.py [--crop 224|512] [--batch-sizes 1 4] [--repeats 3] [--no-mask]
    python benchmarks/simswap_speed.py --official /path/to/SimSwap

One swap = ArcFace embedding of the source crop + generator on the target crop + (by default) the BiSeNet
mask and blend, i.e. `SimSwap.swap`. With --official, the official modules of a SimSwap checkout
(models/fs_networks*.py, models/arcface_models.py, parsing_model/model.py, util/reverse2original.py) get
the same weights and tensors; the official mask path runs face by face with numpy and cv2, as in
reverse2original.py, so the comparison includes that loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from swapbench.methods.base import FaceBatch
from swapbench.methods.simswap.method import (
    ARCFACE_FILE,
    FACE_LABELS,
    GENERATOR_FILES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PARSER_FILE,
    SimSwap,
    SimSwap512,
    random_weights,
)
from timing import timed_interleaved  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def official_swap(path: Path, crop: int, state: dict, use_mask: bool):
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    sys.path.insert(0, str(path))
    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))  # imported, unused by the parser
    import models.arcface_models as arc  # noqa: PLC0415 - from the user's SimSwap checkout
    import parsing_model.resnet as presnet  # noqa: PLC0415
    from parsing_model.model import BiSeNet  # noqa: PLC0415
    from util.reverse2original import SoftErosion, encode_segmentation_rgb  # noqa: PLC0415

    if crop == 224:
        from models.fs_networks import Generator_Adain_Upsample  # noqa: PLC0415
    else:
        from models.fs_networks_512 import Generator_Adain_Upsample  # noqa: PLC0415
    arc.conv3x3 = lambda i, o, stride=1: torch.nn.Conv2d(i, o, 3, stride, 1, bias=False)  # undefined there
    presnet.Resnet18.init_weight = lambda self: None  # would download torchvision's resnet18

    g = Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False).eval()
    g.load_state_dict(state[GENERATOR_FILES[crop].name])
    a = arc.ResNet(arc.IRBlock, [3, 4, 23, 3], use_se=True).eval()
    a.load_state_dict(state[ARCFACE_FILE.name])
    p = BiSeNet(n_classes=19).eval()
    p.load_state_dict(state[PARSER_FILE.name])
    smooth = SoftErosion(kernel_size=17, threshold=0.9, iterations=7)
    assert set(FACE_LABELS) < set(range(19))

    @torch.no_grad()
    def swap(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        latent = F.normalize(a(F.interpolate((source - IMAGENET_MEAN) / IMAGENET_STD, size=(112, 112))), dim=1)
        out = g(target, latent)
        if not use_mask:
            return out
        res = []
        for s, t in zip(out, target):
            labels = p(F.interpolate((t[None] - IMAGENET_MEAN) / IMAGENET_STD, size=(512, 512)))[0][0].numpy().argmax(0)
            maps = encode_segmentation_rgb(labels.astype(np.uint8))
            if maps.sum() < 5000:
                res.append(s)
                continue
            m = torch.from_numpy(cv2.resize(maps, (crop, crop)).transpose(2, 0, 1).copy()).float() / 255
            soft, _ = smooth((m[0] + m[1])[None, None])
            res.append(s * soft[0] + t * (1 - soft[0]))
        return torch.stack(res)

    return swap


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crop", type=int, default=224, choices=[224, 512])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-mask", action="store_true", help="use_mask=False (generator only)")
    ap.add_argument("--official", type=Path, help="path of a SimSwap checkout (neuralchen/SimSwap)")
    args = ap.parse_args(argv)

    use_mask = not args.no_mask
    state = random_weights(args.crop, seed=0)
    cls = SimSwap if args.crop == 224 else SimSwap512
    ours = cls(cls.Options(use_mask=use_mask))
    ours.load_weights(state)
    impls = {"swapbench": lambda s, t: ours.swap(FaceBatch(s, None), FaceBatch(t, None))}
    if args.official:
        impls["official"] = official_swap(args.official, args.crop, state, use_mask)

    print(f"{cls.name}, mask {'on' if use_mask else 'off'}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| implementation | batch | s/batch (min) | s/batch (median) | swaps/s (best) | swaps/s (median) |")
    print("|---|---|---|---|---|---|")
    for b in args.batch_sizes:
        src, tgt = torch.rand(b, 3, args.crop, args.crop), torch.rand(b, 3, args.crop, args.crop)
        times = timed_interleaved({k: (lambda fn=fn: fn(src, tgt)) for k, fn in impls.items()}, args.repeats)
        for label, ts in times.items():
            lo, med = min(ts), statistics.median(ts)
            print(f"| {label} | {b} | {lo:.2f} | {med:.2f} | {b / lo:.2f} | {b / med:.2f} |", flush=True)


if __name__ == "__main__":
    main()
