"""Seconds per Face-Adapter swap on CPU (or GPU), full-size modules with random weights, by stage.

    python benchmarks/face_adapter_speed.py [--batch-sizes 1 4] [--steps 25] [--repeats 1] [--threads N]
    python benchmarks/face_adapter_speed.py --device cuda --precision fp16   # + peak GPU memory per batch

A 25-step swap of the full-size model takes minutes per pair on a CPU, so the stages are timed once each
and a swap is extrapolated: conditioning (D3DFR on source and target, ArcFace iresnet100 layer-4 +
ID2Token, CLIP ViT-H/14 + Image2Token, BiSeNet on the target), ONE classifier-free-guided ControlNet +
UNet call (2B latents of 64 x 64), and the VAE decode at 512; a swap = conditioning + steps x call +
decode. The official pipeline runs the same diffusers modules (UNet, ControlNet, VAE) and the same torch
`nn.TransformerDecoder`s, so its per-stage cost is the port's; there is no separate official timing.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from timing import (
    best,  # benchmarks/timing.py (this folder is on sys.path when a script runs)
)

from swapbench.faces import parsing
from swapbench.methods.face_adapter import condition as C
from swapbench.methods.face_adapter.method import FULL, Adapters

SD15_UNET = {"sample_size": 64, "cross_attention_dim": 768, "attention_head_dim": 8}
SD15_CONTROLNET = {"cross_attention_dim": 768, "attention_head_dim": 8}
SD_VAE = {"block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
          "up_block_types": ("UpDecoderBlock2D",) * 4, "layers_per_block": 2, "latent_channels": 4, "sample_size": 512}
CLIP_H = {"hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 16, "num_hidden_layers": 32,
          "patch_size": 14, "image_size": 224, "projection_dim": 1024, "hidden_act": "gelu"}


def fill_random(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.state_dict().items():
            if not p.is_floating_point():
                continue
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / max(1, p[0].numel()) ** 0.5)
            else:
                p.copy_(torch.ones_like(p) if name.endswith(("weight", "running_var")) else torch.zeros_like(p))
    return module.eval()


def time_batch(b, mods, args, dev, autocast) -> None:
    """Times one batch size and prints the stages and the extrapolated seconds per swap."""
    unet, controlnet, vae, clip, ad, parser = mods
    g = torch.Generator().manual_seed(b)
    x256 = (torch.rand(b, 3, 256, 256, generator=g) * 2 - 1).to(dev)
    x512 = (torch.rand(b, 3, 512, 512, generator=g) * 2 - 1).to(dev)
    clip_in = torch.randn(b, 3, 224, 224, generator=g).to(dev)
    lat = torch.randn(2 * b, 4, 64, 64, generator=g).to(dev)
    tok = torch.randn(2 * b, 77, 768, generator=g).to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def conditioning():
        ad.d3dfr(x256), ad.d3dfr(x256)
        ad.id2token(ad.arcface.layer4_tokens(C.arcface_input(x256)))
        with autocast():
            ad.image2token(clip(pixel_values=clip_in).last_hidden_state.float())
        parser(x512)
        sync()

    def call():
        with autocast():
            down, mid = controlnet(lat, 500, encoder_hidden_states=tok, controlnet_cond=torch.cat([x512, x512]),
                                   return_dict=False)
            unet(lat, 500, encoder_hidden_states=tok, down_block_additional_residuals=down,
                 mid_block_additional_residual=mid, return_dict=False)
        sync()

    def decode():
        with autocast():
            vae.decode(lat[:b] / 0.18215)
        sync()

    tc, tu, td = best(conditioning, args.repeats), best(call, args.repeats), best(decode, args.repeats)
    per_swap = (tc + args.steps * tu + td) / b
    peak = f", peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GiB" if dev.type == "cuda" else ""
    print(f"batch {b}: conditioning {tc:.2f}s, ControlNet+UNet CFG call {tu:.2f}s, decode {td:.2f}s -> "
          f"{per_swap:.1f} s/swap at {args.steps} steps{peak}")


@torch.no_grad()
def main() -> None:
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModel

    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]

    def autocast():
        return torch.autocast(dev.type, dtype=dtype) if dtype is not None and dev.type == "cuda" else contextlib.nullcontext()

    t = time.perf_counter()
    unet = fill_random(UNet2DConditionModel(**SD15_UNET), 1).to(dev)
    controlnet = fill_random(ControlNetModel(**SD15_CONTROLNET), 2).to(dev)
    vae = fill_random(AutoencoderKL(**SD_VAE), 3).to(dev)
    clip = fill_random(CLIPVisionModel(CLIPVisionConfig(**CLIP_H)), 4).to(dev)
    ad = fill_random(Adapters(FULL, 1280), 5).to(dev)
    parser = fill_random(parsing.BiSeNet(), 6).to(dev)
    print(f"built full-size modules with random weights in {time.perf_counter() - t:.1f}s; "
          f"device {dev}, precision {args.precision}, threads {torch.get_num_threads()}")
    mods = (unet, controlnet, vae, clip, ad, parser)
    for b in args.batch_sizes:
        time_batch(b, mods, args, dev, autocast)

if __name__ == "__main__":
    main()
