"""Seconds per REFace swap on CPU, full-size model with random weights, by stage.

    python benchmarks/reface_speed.py [--batch-sizes 1 4] [--steps 50] [--repeats 2] [--threads N]
    python benchmarks/reface_speed.py --official /path/to/REFace   # + the official UNet on the same input

A full 50-step swap of the full-size model takes minutes per pair on a CPU, so this script times the
stages once each and extrapolates: conditioning (two CLIP ViT-L/14 passes, mapper, IR-SE50), the VAE
encode of the inpaint image, ONE classifier-free-guided UNet call (the batched [uncond, cond] pass, so
2B images at 64 x 64 latents), and the VAE decode; a swap = conditioning + encode + steps x UNet +
decode (face parsing and dlib landmarks are small next to it and not included). With --official, the
official `openaimodel.UNetModel` (built from models/REFace/configs/project_ffhq.yaml) runs the same
input; it needs `einops` importable.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from swapbench.methods.reface import model as M
from swapbench.methods.reface.method import REFaceModel
from timing import best  # benchmarks/timing.py (this folder is on sys.path when a script runs)


def fill_random(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.state_dict().items():
            if not p.is_floating_point():
                continue
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / max(1, p[0].numel()) ** 0.5)
            else:
                p.copy_(torch.ones_like(p) if name.endswith(("weight", "running_var")) else torch.zeros_like(p))
    if isinstance(module, REFaceModel):
        M.reset_nonpersistent_buffers(module.cond)


def official_unet(repo: Path):
    sys.path.insert(0, str(repo))
    from omegaconf import OmegaConf  # noqa: PLC0415 - the official code's own dependency

    from ldm.modules.diffusionmodules.openaimodel import UNetModel  # noqa: PLC0415

    cfg = OmegaConf.load(repo / "models/REFace/configs/project_ffhq.yaml").model.params.unet_config.params
    kw = OmegaConf.to_container(cfg)
    kw["use_checkpoint"] = False
    return UNetModel(**kw).eval()


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--official", type=Path, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    net = REFaceModel(M.FULL)
    fill_random(net)
    print(f"built full-size port with random weights in {time.perf_counter() - t:.1f}s; threads {torch.get_num_threads()}")
    off = None
    if args.official:
        off = official_unet(args.official)
        off.load_state_dict({k: torch.randn(v.shape) * 0.01 for k, v in off.state_dict().items()})
    rows = []
    for b in args.batch_sizes:
        g = torch.Generator().manual_seed(b)
        clip_in = torch.randn(b, 3, 224, 224, generator=g)
        img = torch.rand(b, 3, 512, 512, generator=g) * 2 - 1
        lm = torch.rand(b, 136, generator=g) * 512
        x9 = torch.randn(b, 9, 64, 64, generator=g)
        tok = torch.randn(b, 1, 768, generator=g)
        noise = torch.randn(b, 4, 64, 64, generator=g)
        s_cond = best(lambda: net.cond(clip_in, clip_in, lm), args.repeats)
        s_enc = best(lambda: net.encode_inpaint(img, noise), args.repeats)
        s_unet = best(lambda: net.unet_cfg(x9, 981, tok, tok), args.repeats)
        s_dec = best(lambda: net.decode(noise), args.repeats)
        swap = s_cond + s_enc + args.steps * s_unet + s_dec
        row = dict(batch=b, cond=s_cond, encode=s_enc, unet_cfg_call=s_unet, decode=s_dec,
                   per_swap=swap / b)
        if off is not None:
            tt = torch.full((2 * b,), 981, dtype=torch.long)
            row["official_unet_cfg_call"] = best(lambda: off(torch.cat([x9, x9]), tt, context=torch.cat([tok, tok])),
                                                 args.repeats)
        rows.append(row)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    print("\n| batch | conditioning s | VAE encode s | UNet CFG call s | VAE decode s | s per swap (extrapolated, "
          f"{args.steps} steps) |" + (" official UNet CFG call s |" if off is not None else ""))
    print("|---|---|---|---|---|---|" + ("---|" if off is not None else ""))
    for r in rows:
        print(f"| {r['batch']} | {r['cond']:.2f} | {r['encode']:.2f} | {r['unet_cfg_call']:.2f} | {r['decode']:.2f} | "
              f"{r['per_swap']:.0f} |" + (f" {r['official_unet_cfg_call']:.2f} |" if off is not None else ""))


if __name__ == "__main__":
    main()
