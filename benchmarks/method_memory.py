"""Peak memory and seconds of one swap per method and batch size, at full size, with random weights.

    python benchmarks/method_memory.py --device cuda                      # every weighted method, fp16
    python benchmarks/method_memory.py --device cuda --precision bf16 --methods reface diffswap --batch-sizes 1 4
    python benchmarks/method_memory.py --device cpu --methods ghost --batch-sizes 1   # a quick check

Each method is built from its options (`--set name.option=value` as for `bench run`), every parameter and
buffer is filled with deterministic random values (swapbench.methods.ghost.random_weights: the values do not
change the memory a swap needs), and it swaps bundled real faces cropped in its own convention. Samplers
run `--steps` steps (default 2) where the method has a `steps` option: the peak of a step does not depend on
how many steps run, the time does (seconds are per swap at these steps; multiply out for the full sampler).

On CUDA the table gives the memory the weights take, and the peak allocated during a swap of the batch
under autocast (torch.cuda.max_memory_allocated, which excludes the allocator's cache); on CPU the process's
peak resident memory, which includes the interpreter and every library. Output: one markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from swapbench import methods
from swapbench.bench import config
from swapbench.bench.prepare import prepare
from swapbench.bench.stages import read_png
from swapbench.bench.store import Store
from swapbench.datasets import get_protocol
from swapbench.methods.base import FaceBatch
from swapbench.methods.ghost.random_weights import random_state_dict

DEFAULT_METHODS = ("ghost", "megafs", "fslsd", "reface", "diffswap", "face_adapter")
AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=sorted(AUTOCAST), default="fp16",
                   help="autocast dtype on CUDA (CPU always runs fp32)")
    p.add_argument("--steps", type=int, default=2, help="sampler steps, for methods with a `steps` option")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="method options, as `bench run --set`")
    args = p.parse_args(argv)
    unknown = [m for m in args.methods if m not in methods.METHODS.names()]
    if unknown:
        p.error(f"unknown method {unknown[0]!r}; known: {', '.join(methods.METHODS.names())}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is visible to torch here")
    if any(b < 1 for b in args.batch_sizes):
        p.error("--batch-sizes must be positive")
    return args


def build(name: str, overrides: dict, steps: int, device: torch.device):
    """The method at full size with random weights, on the device, in eval mode."""
    cls = methods.get(name)
    section = dict(overrides.get(name, {}))
    if "steps" in {f.name for f in dataclasses.fields(cls.Options)}:
        section.setdefault("steps", steps)
    method = cls.from_config({"engine": {"seed": 0}, name: section})
    if name in STOCK:
        STOCK[name](method)
    state = method.state_dict()
    method.load_state_dict(random_state_dict(state), strict=True)
    method.weights_loaded = True  # the flag every weighted method checks before swapping
    return method.to(device).eval()


# Face-Adapter's stock parts (SD1.5 UNet, ControlNet, VAE, CLIP ViT-H/14 vision tower) are not ported modules:
# its load_weights opens them from diffusers / transformers folders. Here they are built from the released
# architectures' configs (benchmarks/face_adapter_speed.py) and handed over the same way; the full-size BFM,
# the adapters and the empty-prompt embedding are then filled like every other parameter.
FACE_ADAPTER_STOCK = None  # None: full size; tests put tiny configs here


def face_adapter_stock(method) -> None:
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        EulerDiscreteScheduler,
        UNet2DConditionModel,
    )
    from face_adapter_speed import CLIP_H, SD15_CONTROLNET, SD15_UNET, SD_VAE
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from swapbench.faces.deep3d import BFMLandmarks

    c = FACE_ADAPTER_STOCK or {"unet": SD15_UNET, "controlnet": SD15_CONTROLNET, "vae": SD_VAE, "clip": CLIP_H}
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    method.use_stock_modules(UNet2DConditionModel(**c["unet"]), scheduler.config, AutoencoderKL(**c["vae"]),
                             ControlNetModel(**c["controlnet"]), CLIPVisionModel(CLIPVisionConfig(**c["clip"])))
    method.bfm = BFMLandmarks(size=256, n_vertices=c.get("bfm_vertices", 35709))
    method.register_buffer("empty_prompt", torch.randn(1, method.arch.max_length, method.arch.token_width,
                                                       generator=torch.Generator().manual_seed(0)), persistent=False)


STOCK = {"face_adapter": face_adapter_stock}


def faces(method, n: int) -> tuple[FaceBatch, FaceBatch]:
    """n (source, target) pairs of bundled faces, each side cropped in its own convention (cycled)."""
    protocol = get_protocol("samples")
    src_conv, tgt_conv = method.source_convention, method.convention
    with tempfile.TemporaryDirectory() as tmp:
        crops = prepare(protocol, sorted({src_conv, tgt_conv}), Store(Path(tmp) / "s.sqlite"))
        pairs = [p for p in protocol.pairs if crops[p.source, src_conv].ok and crops[p.target, tgt_conv].ok]
        pairs = [pairs[i % len(pairs)] for i in range(n)]

        def batch(keys, convention):
            cs = [crops[k, convention] for k in keys]
            return FaceBatch(torch.stack([read_png(c.path) for c in cs]),
                             torch.stack([torch.from_numpy(c.landmarks) for c in cs]), [p.pair_id for p in pairs],
                             torch.stack([torch.as_tensor(c.matrix, dtype=torch.float64) for c in cs]),
                             [protocol.location(k) for k in keys])

        return batch([p.source for p in pairs], src_conv), batch([p.target for p in pairs], tgt_conv)


def to(batch: FaceBatch, device) -> FaceBatch:
    return dataclasses.replace(batch, image=batch.image.to(device), landmarks=batch.landmarks.to(device))


def measure(method, batch_size: int, device: torch.device, precision: str) -> dict:
    src, tgt = (to(b, device) for b in faces(method, batch_size))
    cuda = device.type == "cuda"
    dtype = AUTOCAST[precision] if cuda else None
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        weights_mb = torch.cuda.memory_allocated(device) / 2**20
    t0 = time.perf_counter()
    with torch.no_grad(), autocast:
        out = method.swap(src, tgt)
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    row = {"shape": tuple(out.shape), "s_per_swap": seconds / batch_size}
    if cuda:
        row.update(weights_mb=weights_mb, peak_mb=torch.cuda.max_memory_allocated(device) / 2**20)
    else:
        row.update(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    overrides = config.parse_set(args.set) if args.set else {}
    cuda = device.type == "cuda"
    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"# One swap per method: {where}, torch {torch.__version__}, "
          f"{args.precision if cuda else 'fp32'}, sampler steps {args.steps}\n")
    head = "| method | batch | s / swap | weights MB | peak allocated MB |" if cuda else "| method | batch | s / swap | peak RSS MB |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in args.methods:
        method = build(name, overrides, args.steps, device)
        for b in args.batch_sizes:
            try:
                r = measure(method, b, device, args.precision)
            except Exception as exc:  # noqa: BLE001 - one failing method must not hide the others' figures
                print(f"| {name} | {b} | failed: {type(exc).__name__}: {str(exc)[:120]} |", flush=True)
                continue
            cells = [f"{r['s_per_swap']:.3f}"] + ([f"{r['weights_mb']:.0f}", f"{r['peak_mb']:.0f}"] if cuda
                                                  else [f"{r['peak_rss_mb']:.0f}"])
            print(f"| {name} | {b} | " + " | ".join(cells) + " |", flush=True)
        del method
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
