"""Swaps per second of the MegaFS port on CPU, and its full-size (1024) parity with the official code.

    python benchmarks/megafs_speed.py [--batch-sizes 1 2] [--repeats 2] [--swap-type ftm]
    python benchmarks/megafs_speed.py --official /path/to/One-Shot-Face-Swapping-on-Megapixels/inference

Deterministic random weights (swapbench.methods.megafs.random_weights, full size: HieRFE, the
swapper and the 1024 StyleGAN2). "core" = HieRFE on [target, source] + swapper + generator + global
min-max, i.e. the official `MegaFS.swap()`, which handles one pair per call (batch N = N calls);
the port runs the batch at once. "full" = the port's `swap()` on 1024 crops, which adds the BiSeNet
mask, SoftErosion and the blend.

--official DIR: a checkout of the official `inference/` folder. Its megafs.py imports rosinality's
`op` package, whose CUDA build fails at import on a machine without CUDA: put a pure-PyTorch `op`
module (FusedLeakyReLU, fused_leaky_relu, upfirdn2d) on PYTHONPATH first. Without torchvision, a
stand-in `torchvision.transforms.functional.normalize` (the only call inference.py makes) is
provided here, and `.cuda()` calls are made no-ops. Then the script also compares, at full size, the official and ported HieRFE codes
and struct, swapper codes, 1024 generator image and min-max output, and prints the max abs errors.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch

from swapbench.methods.base import FaceBatch
from swapbench.methods.megafs import MegaFS, MegaFSInjection, MegaFSLCR
from swapbench.methods.megafs import random_weights as rw
from timing import print_medians  # benchmarks/timing.py (this folder is on sys.path when a script runs)

CLASSES = {"ftm": MegaFS, "injection": MegaFSInjection, "lcr": MegaFSLCR}


def official(path: Path, swap_type: str):
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    try:
        import torchvision.transforms.functional  # noqa: F401, PLC0415
    except ImportError:
        tv, tvt, tvf = (types.ModuleType(n) for n in ("torchvision", "torchvision.transforms",
                                                      "torchvision.transforms.functional"))
        tvf.normalize = lambda t, mean, std, inplace=False: (
            (t - torch.as_tensor(mean).view(-1, 1, 1)) / torch.as_tensor(std).view(-1, 1, 1))
        tv.transforms, tvt.functional = tvt, tvf
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tvt, "torchvision.transforms.functional": tvf})
    sys.path.insert(0, str(path))
    import inference as off_inf  # noqa: PLC0415 - from the user's checkout
    import megafs as off  # noqa: PLC0415

    enc = off.HieRFE(off.resnet50(False), num_latents=[4, 6, 8], depth=50).eval()
    enc.load_state_dict(rw.encoder_state(0))
    sw = off.FaceTransferModule(num_blocks=3 if swap_type == "ftm" else 1, swap_indice=4, num_latents=18,
                                typ=swap_type).eval()
    sw.load_state_dict(rw.swapper_state(swap_type, 0))
    gen = off.Generator(1024, 512, 8, channel_multiplier=2).eval()
    gen.load_state_dict(rw.generator_state(1024, 0), strict=False)
    me = types.SimpleNamespace(encoder=enc, swapper=sw, generator=gen, size=1024)
    return me, off_inf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--swap-type", choices=sorted(CLASSES), default="ftm")
    ap.add_argument("--official", type=Path, help="the official inference/ folder (see the module docstring)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    port = CLASSES[args.swap_type]()
    port.load_weights(rw.method_state(args.swap_type, 1024, 0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, swap type {args.swap_type}")

    off = None
    if args.official:
        off = official(args.official, args.swap_type)
        me, off_inf = off
        x = (rw.parity_images(0, 256, 2) - 0.5) / 0.5
        src, tgt = x[0:1], x[1:2]
        lats, struct = port.encoder(torch.cat([tgt, src]))
        olats, ostruct = me.encoder(torch.cat([tgt, src]))
        w, ow = port.swapper(lats[1:], lats[0:1]), me.swapper(olats[1:], olats[0:1])
        img = port.generator(w, struct[0:1])
        oimg, _ = me.generator(ostruct[0:1], [ow, None], randomize_noise=False)
        ours = port.generate(src, tgt)[0].permute(1, 2, 0).numpy() * 255
        theirs = off_inf.MegaFS.swap(me, src, tgt)
        err = lambda a, b: float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())  # noqa: E731
        print("full-size parity, max abs error:",
              {"lats": err(lats, olats), "struct": err(struct, ostruct), "w": err(w, ow),
               "image_1024": err(img, oimg), "swap_0_255": err(ours, theirs)})

    print("| implementation | what | batch | s/batch median | swaps/s |")
    print("|---|---|---:|---:|---:|")
    for b in args.batch_sizes:
        imgs = rw.parity_images(1, 256, 2 * b)
        src_in, tgt_in = (imgs[:b] - 0.5) / 0.5, (imgs[b:] - 0.5) / 0.5
        fns = {("swapbench", "core"): lambda: port.generate(src_in, tgt_in)}
        if off is not None:
            me, off_inf = off
            fns[("official", "core")] = lambda: [off_inf.MegaFS.swap(me, src_in[i:i + 1], tgt_in[i:i + 1])
                                                for i in range(b)]
        if b == 1:
            big = torch.nn.functional.interpolate(imgs, size=(1024, 1024), mode="bilinear")
            fns[("swapbench", "full swap()")] = lambda: port.swap(FaceBatch(big[:1], torch.zeros(1, 68, 2)),
                                                                  FaceBatch(big[1:2], torch.zeros(1, 68, 2)))
        print_medians(fns, args.repeats, b)


if __name__ == "__main__":
    main()
