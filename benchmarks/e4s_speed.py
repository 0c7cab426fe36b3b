"""Swaps per second of the E4S RGI port on CPU, and its parity with the official Net3 at full size.

    python benchmarks/e4s_speed.py [--model full|tiny] [--batch-sizes 1 2] [--repeats 1]
    python benchmarks/e4s_speed.py --official /path/to/e4s        # full size, next to the official code

Deterministic random weights in the official checkpoint layout (swapbench.methods.e4s.random_weights).
"core" = the RGI part of one swap: style vectors of the driven face and the target (encoder at 256 on
1024 inputs, 512 masks), texture swap, codes, the mask-guided generator with injected noise; the
official code runs it one pair per call (batch N = N calls), the port runs a batch at once. "full
swap()" = the port's `swap()` on 1024 crops with reenact and restore off: it adds the two BiSeNet parses
(bicubic downsample), the mask swap and the blend.

--official DIR: a snapshot of e4s2022/e4s. Its src/models/stylegan2/op JIT-compiles CUDA at import and
src/utils/torch_utils.py imports torchvision: put a pure-PyTorch `op` (rosinality's upfirdn2d_native and
the CPU leaky-ReLU formula) in DIR and, without torchvision, a stand-in (ToTensor, Normalize, Compose) in
DIR/stubs/torchvision (put on the path after swapbench is imported). The script then builds the official Net3 at full size with the same weights and prints
the max errors of style vectors, codes and the 1024 image at batch 1, and times it.
"""

from __future__ import annotations

import argparse
import sys
import types
from argparse import Namespace
from pathlib import Path

import torch

from swapbench.methods.base import FaceBatch
from swapbench.methods.e4s import E4S
from swapbench.methods.e4s import compose
from swapbench.methods.e4s import random_weights as rw
from swapbench.methods.e4s.rgi import TINY, draw_noise, one_hot
from timing import print_medians  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def official_net(path: Path, config: dict):
    sys.path[:0] = [str(path / "stubs"), str(path)]
    from src.models.networks import Net3  # noqa: PLC0415 - from the user's snapshot
    from src.utils import torch_utils  # noqa: PLC0415

    opts = Namespace(fsencoder_type="psp", remaining_layer_idx=13, num_seg_cls=12, out_size=1024, train_G=False,
                     start_from_latent_avg=True, learn_in_w=False)
    net = Net3(opts).eval()
    ckpt = rw.official_checkpoint(**config)
    net.load_state_dict(torch_utils.remove_module_prefix(ckpt["state_dict"], prefix="module."))
    net.latent_avg = ckpt["latent_avg"]
    return net


def inputs(batch: int):
    images = rw.parity_images(0, 1024, 2 * batch) * 2 - 1
    labels = torch.cat([rw.parity_labels(seed=i, size=512, n=1, drop=(10, 11) if i % 2 else (7, 9, 10, 11))
                        for i in range(2 * batch)])
    return images[:batch], images[batch:], labels[:batch], labels[batch:]


def port_core(rgi, d, t, d_lab, t_lab, noise):
    v_d, v_t = rgi.style_vectors(d, one_hot(d_lab)), rgi.style_vectors(t, one_hot(t_lab))
    swapped, _ = compose.swap_masks(d_lab, t_lab)
    codes = rgi.style_codes(compose.swap_style_vectors(v_t, v_d))
    return v_d, v_t, codes, rgi.generate(codes, one_hot(swapped), noise)


def official_core(net, swap_vectors, d, t, d_lab, t_lab, noise):
    """The official calls of faceSwapping_pipeline steps 3-5, one pair."""
    v_d, _ = net.get_style_vectors(d, one_hot(d_lab))
    v_t, _ = net.get_style_vectors(t, one_hot(t_lab))
    swapped, _ = compose.swap_masks(d_lab, t_lab)  # (mask swap parity: tests/test_e4s_parity.py)
    codes = net.cal_style_codes(swap_vectors(v_t, v_d, [1, 2, 3, 5, 6, 7, 8, 9]))
    image, _, _ = net.gen_img(torch.zeros(1, 512, 32, 32), codes, one_hot(swapped), noise=noise)
    return v_d, v_t, codes, image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("full", "tiny"), default="full")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--official", type=Path, help="an e4s2022/e4s snapshot (see the module docstring); full size")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    config = TINY if args.model == "tiny" else {}
    port = E4S(reenact=False, restore=False, model=args.model)
    port.load_weights(rw.method_state(args.model, 0))
    rgi = port.rgi
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}")

    net = swap_vectors = None
    if args.official:
        if args.model != "full":
            raise SystemExit("--official compares the full-size model: leave --model at full")
        net = official_net(args.official, config)
        sys.modules.setdefault("scripts", types.ModuleType("scripts"))
        swap_vectors = lambda t, d, comps: compose.swap_style_vectors(t, d)  # noqa: E731 (parity: tests)
        d, t, d_lab, t_lab = inputs(1)
        noise = draw_noise(torch.Generator().manual_seed(0), rgi.G.num_layers)
        ours = port_core(rgi, d, t, d_lab, t_lab, noise)
        theirs = official_core(net, swap_vectors, d, t, d_lab, t_lab, noise)
        names = ("style_vectors_driven", "style_vectors_target", "codes", "image_1024")
        print("full-size parity, max abs error / max relative to the tensor's scale:")
        for name, a, b in zip(names, ours, theirs):
            abs_err = float((a - b).abs().max())
            print(f"  {name}: {abs_err:.3g} / {abs_err / float(b.abs().max()):.3g}")

    print("| implementation | what | batch | s/batch median | swaps/s |")
    print("|---|---|---:|---:|---:|")
    for b in args.batch_sizes:
        d, t, d_lab, t_lab = inputs(b)
        noise = draw_noise(torch.Generator().manual_seed(0), rgi.G.num_layers, b)
        fns = {("swapbench", "core"): lambda: port_core(rgi, d, t, d_lab, t_lab, noise)}
        if net is not None:
            fns[("official", "core")] = lambda: [
                official_core(net, swap_vectors, d[i:i + 1], t[i:i + 1], d_lab[i:i + 1], t_lab[i:i + 1],
                              [n[i:i + 1] for n in noise]) for i in range(b)]
        if b == 1:
            src, tgt = (d + 1) / 2, (t + 1) / 2
            fns[("swapbench", "full swap()")] = lambda: port.swap(FaceBatch(src, torch.zeros(1, 68, 2), ["p"]),
                                                                  FaceBatch(tgt, torch.zeros(1, 68, 2), ["p"]))
        print_medians(fns, args.repeats, b)


if __name__ == "__main__":
    main()
