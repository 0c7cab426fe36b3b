"""Seconds per swap of the DiffSwap port on CPU (random weights), measured per stage and extrapolated.

    PYTHONPATH=. python benchmarks/diffswap_speed.py [--batch-sizes 1 4] [--steps 200] [--repeats 2] [--tiny]
    DIFFSWAP_SRC=/path/to/DiffSwap PYTHONPATH=SITE:. python benchmarks/diffswap_speed.py --official

A full-size swap runs `steps` (200) UNet calls of 409M parameters at 64x64, minutes per swap on a CPU,
so the script times once per batch size: the fixed part (VQ encode, tokens incl. ArcFace iresnet100, VQ
decode, pyramid blend) and one UNet call, and reports
    seconds/swap = (fixed + steps * unet_call) / batch_size.
With --official it also times the official UNetModel (ldm/modules/diffusionmodules/openaimodel.py, built
from configs/diffswap/default-project.yaml through tools/diffswap_parity_harness.py's import stubs) on the
same inputs; its fixed part is not timed (the official pipeline runs it through files and scripts).
Weights are random (speed does not depend on their values).
"""

from __future__ import annotations

import argparse

import torch

from swapbench.methods.base import FaceBatch
from swapbench.methods.diffswap import DiffSwap
from swapbench.methods.diffswap import blend as blending
from swapbench.methods.diffswap.method import hull_mask
from timing import best  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def random_model(tiny: bool) -> DiffSwap:
    m = DiffSwap(DiffSwap.Options(tiny=tiny))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in m.named_parameters():  # activations of order one (small weights would go denormal)
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            else:
                p.fill_(0.0 if name.endswith("bias") else 1.0)
        for name, b in m.named_buffers():
            if name.endswith("running_var"):
                b.fill_(1.0)
            elif b.is_floating_point():
                b.zero_()
    m.weights_loaded = True
    return m.eval()


def inputs(b: int) -> tuple[FaceBatch, FaceBatch]:
    from tests import diffswap_inputs as inp

    crops = torch.from_numpy(inp.crops256()).permute(0, 3, 1, 2).float() / 255
    lm = torch.from_numpy(inp.golden()["landmarks"]).float()
    s, t = [i % 2 for i in range(b)], [(i + 1) % 2 for i in range(b)]
    ids = [f"p{i}" for i in range(b)]
    return FaceBatch(crops[s], lm[s], ids), FaceBatch(crops[t], lm[t], ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="the tiny test model instead of the released size")
    ap.add_argument("--official", action="store_true", help="also time the official UNetModel (needs DIFFSWAP_SRC)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    m = random_model(args.tiny)
    official = None
    if args.official:
        import tools.diffswap_parity_harness as h  # noqa: PLC0415 - imports the official code

        cfg = h.config(args.tiny)["unet_config"]["params"]
        from ldm.modules.diffusionmodules.openaimodel import UNetModel  # noqa: PLC0415

        official = UNetModel(**cfg).eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {'tiny' if args.tiny else 'full-size'} model")
    for b in args.batch_sizes:
        src, tgt = inputs(b)
        hulls = None

        def fixed():
            nonlocal hulls
            z = m.encode(tgt.image)
            ctx = m.context(src, tgt, z)
            gen = m.decode(z)
            hulls = [hull_mask(lm.numpy() / 256) for lm in tgt.landmarks]
            blending.blend(gen, tgt.image, hulls)
            return z, ctx

        t_fixed = best(fixed, args.repeats, warmup=1)
        z, ctx = fixed()
        x = torch.randn(z.shape)
        t_unet = best(lambda: m.unet(x, 501, encoder_hidden_states=ctx).sample, args.repeats, warmup=1)
        per_swap = (t_fixed + args.steps * t_unet) / b
        line = (f"batch {b}: fixed {t_fixed:.2f} s, one UNet call {t_unet:.2f} s -> {per_swap:.1f} s/swap "
                f"at {args.steps} steps (extrapolated)")
        if official is not None:
            ts = torch.full((b,), 501, dtype=torch.long)
            t_off = best(lambda: official(x, ts, context=ctx), args.repeats, warmup=1)
            line += f"; official UNet call {t_off:.2f} s -> {(t_fixed + args.steps * t_off) / b:.1f} s/swap"
        print(line, flush=True)


if __name__ == "__main__":
    main()
