"""Swaps per second of the InfoSwap port on CPU, and its full-size parity with the official code.

    python benchmarks/infoswap_speed.py [--batch-sizes 1 2] [--repeats 2] [--divisor 1]
    python benchmarks/infoswap_speed.py --official /path/to/InfoSwap-master

Deterministic random weights in the official layouts (swapbench.methods.infoswap.random_weights;
--divisor 4 for the reduced test networks). "run" = encoder maps, ten bottleneck layers with their
restricted encoder passes, decoder and AII512 generator on BGR [-1, 1] inputs, i.e. the body of the
official inference(); the official demo handles one pair per call (batch N = N calls), the port runs
the batch at once. "swap()" adds the per-pair noise draws and the RGB/BGR conversions.

--official DIR: a checkout of GGGHSL/InfoSwap-master. Its modules are imported unmodified; utils.py
(torchvision, matplotlib, MTCNN) is replaced by a stand-in holding the one name aii_generator imports
and never uses. The official modules are driven pair by pair in the order of inference_demo.py
(B = 1, the noise drawn from the global generator after torch.manual_seed), and the script prints the
full-size max abs errors of the identity vector and the generator output against the port's, which
draws the same numbers from a seeded generator.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from swapbench.methods.base import FaceBatch
from swapbench.methods.infoswap import InfoSwap
from swapbench.methods.infoswap import random_weights as rw
from swapbench.methods.infoswap.method import BOTTLENECKS, ReadoutStats, draw_noise, to_network
from timing import print_medians  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def official(path: Path, div: int):
    """The official encoder, IIB, decoder and generator (full size) holding the random weights."""
    if div != 1:
        raise SystemExit("--official compares the released (divisor 1) networks")
    sys.path.insert(0, str(path))
    sys.modules["utils"] = types.SimpleNamespace(ConvexUpsample=None)
    from modules.aii_generator import AII512  # noqa: PLC0415 - from the user's checkout
    from modules.decoder512 import UnetDecoder512  # noqa: PLC0415
    from modules.encoder128 import Backbone128  # noqa: PLC0415
    from modules.iib import IIB  # noqa: PLC0415

    states = rw.model_states("smooth", 0, 1)
    nets = types.SimpleNamespace(encoder=Backbone128(50, 0.6, "ir_se"), G=AII512(), decoder=UnetDecoder512(),
                                 iib=IIB(1536, [64, 64, 64, 64, 128, 128, 128, 128, 256, 256], "cpu", smooth=True,
                                         kernel_size=1))
    for net, part in ((nets.encoder, "encoder"), (nets.G, "G"), (nets.decoder, "E"), (nets.iib, "I")):
        net.load_state_dict(states[part], strict=True)
        net.eval()
    return nets


def official_swap(nets, stats: ReadoutStats, xs: torch.Tensor, xt: torch.Tensor, seed: int):
    """One pair through the official modules, as inference_demo.py drives them; returns (identity, Y)."""
    enc = nets.encoder
    enc(F.interpolate(torch.cat((xs, xt))[:, :, 37:475, 37:475], size=[128, 128], mode="bilinear",
                      align_corners=True), cache_feats=True)
    feats = enc.features
    readouts = [(feats[i] - stats.mean[i]) / torch.max(stats.std[i], torch.tensor(0.01)) for i in range(11)]
    torch.manual_seed(seed)
    identity, attributes, lambdas = 0.0, [], []
    for i in range(BOTTLENECKS):
        r = feats[i]
        z, lam, _ = getattr(nets.iib, f"iba_{i}")(r, readouts, m_r=stats.mean[i], std_r=stats.std[i],
                                                  active_neurons=stats.active[i])
        identity = identity + enc.restrict_forward(z, i)
        m_s = r[:1].mean(dim=0)
        eps_s = torch.randn(size=r[1:].shape) * m_s + m_s  # the official std_s is the mean too
        attributes.append(r[1:] * (1.0 - lam[1:]) + lam[1:] * eps_s)
        lambdas.append(lam[1:])
    identity = (identity / float(BOTTLENECKS))[:1]
    attributes[0] = xt
    z_attr, z_lambda = nets.decoder(attributes, lambs=lambdas, use_lambda=True)
    return identity, nets.G(identity, z_attr, z_lambda)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--divisor", type=int, default=1, choices=[1, 2, 4])
    ap.add_argument("--official", type=Path, help="an InfoSwap-master checkout (see the module docstring)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    div = args.divisor
    port = InfoSwap(channel_divisor=div)
    port.load_weights(rw.method_state("smooth", 0, div))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, channel divisor {div}")

    nets = official(args.official, div) if args.official else None
    if nets is not None:
        x = to_network(rw.parity_images(0))
        trace = {}
        y = port.run(x[:1], x[1:], [draw_noise(torch.Generator().manual_seed(1234))], trace)
        oid, oy = official_swap(nets, port.stats, x[:1], x[1:], 1234)
        err = lambda a, b: float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())  # noqa: E731
        print("full-size parity, max abs error:", {"identity": err(trace["identity"], oid), "y": err(y, oy)},
              f"(max |y| {float(oy.abs().max()):.3f})")

    print("| implementation | what | batch | s/batch median | swaps/s |")
    print("|---|---|---:|---:|---:|")
    for b in args.batch_sizes:
        imgs = rw.parity_images(1, 512, 2 * b)
        xs, xt = to_network(imgs[:b]), to_network(imgs[b:])
        noise = [draw_noise(torch.Generator().manual_seed(k), div) for k in range(b)]
        fns = {("swapbench", "run"): lambda: port.run(xs, xt, noise)}
        if nets is not None:
            fns[("official", "run")] = lambda: [official_swap(nets, port.stats, xs[i:i + 1], xt[i:i + 1], i)
                                               for i in range(b)]
        if b == 1:
            ids = ["p0"]
            fns[("swapbench", "swap()")] = lambda: port.swap(FaceBatch(imgs[:1], torch.zeros(1, 68, 2), ids),
                                                             FaceBatch(imgs[1:2], torch.zeros(1, 68, 2), ids))
        print_medians(fns, args.repeats, b)


if __name__ == "__main__":
    main()
