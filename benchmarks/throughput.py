"""End-to-end throughput of `bench run`, broken down by stage, against the naive way of scoring swaps.

    python benchmarks/throughput.py                      # samples protocol + a ~1000-pair synthetic one
    python benchmarks/throughput.py --synthetic-pairs 0  # samples only
    python benchmarks/throughput.py --accelerator gpu --methods ghost classic   # on an NVIDIA GPU

--accelerator gpu|cpu places the engine's Trainer and the forwards measured alone on that device
(GHOST gets deterministic random weights in the official file format unless --weights-dir holds the real
ones: speed does not depend on the weights). Face detection (dlib HOG) runs on the CPU either way.

For each protocol: a fresh store, one `engine.run` with the default offline backends, and
  - end-to-end pairs/s and peak resident memory,
  - the engine's own stage timings (faces = decode + detect + align, swap, each backend's features, scoring),
  - the model-forward time of each stage measured directly at the same batch size (method.swap and
    backend.extract on the same crops), and the engine overhead = end-to-end / sum of forward times,
  - the naive way, as papers' scripts do it: one pair at a time, every image decoded and detected again,
    every metric model reloaded for every pair; pairs/s and the ratio to the engine.
Results are printed as markdown.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

import swapbench.faces.mediapipe  # noqa: F401  (first: it ignores a stray SIGPROF, see there)
from swapbench import methods, metrics
from swapbench.bench import config, engine
from swapbench.bench.prepare import prepare
from swapbench.bench.stages import read_png
from swapbench.bench.store import Store
from swapbench.datasets import ImageRef, Pair, Protocol, get_protocol, registered
from swapbench.datasets.images import load_image
from swapbench.faces import detect, templates, warp
from swapbench.methods.base import FaceBatch


def synthetic_protocol(root: Path, n_pairs: int) -> Protocol:
    """Variants of the bundled faces (mirror, scale, brightness) as distinct 'identities', all pairs, subset."""
    samples = get_protocol("samples")
    images = {}
    for key, ref in samples.images.items():
        base = Image.fromarray(load_image(ref.uri))
        variants = {
            "a": base, "b": base.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            "c": base.resize((int(base.width * 1.5), int(base.height * 1.5))),
            "d": ImageEnhance.Brightness(base).enhance(0.8),
        }
        for tag, img in variants.items():
            path = root / f"{key}_{tag}.png"
            img.save(path)
            images[path.stem] = ImageRef(path.stem, path.stem, str(path))
    keys = sorted(images)
    pairs = [Pair(s, t) for s in keys for t in keys if s != t]
    return Protocol("synthetic", "1", "augmented bundled faces", images, pairs).subset(n_pairs)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_of(accelerator: str) -> torch.device:
    """The torch device of `--accelerator`: cuda for gpu (checked), cpu for cpu."""
    if accelerator == "gpu":
        if not torch.cuda.is_available():
            raise SystemExit("--accelerator gpu: torch sees no CUDA device (torch.cuda.is_available() is False)")
        return torch.device("cuda")
    return torch.device("cpu")


def build_method(name, cfg, device):
    """A method as the engine builds it (options, weights), on `device`, in eval mode."""
    from swapbench import weights

    method = methods.get(name).from_config(cfg)
    if method.weights:
        paths = weights.resolve(method.weights, cfg["weights_dir"])
        method.load_weights({f.name: weights.load(f, paths[f.name]) for f in method.weights})
    return method.to(device).eval()


def build_backend(name, cfg, device):
    backend = metrics.build_backend(name, cfg)  # as the engine builds it
    if backend.module is not None:
        backend.module.to(device)
    backend.device = device
    return backend


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def random_ghost_weights(folder: Path) -> Path:
    """GHOST's files in the official format with deterministic random weights (for timing only)."""
    from swapbench.methods.ghost import Ghost
    from swapbench.methods.ghost.method import random_weights

    folder.mkdir(parents=True, exist_ok=True)
    ghost = Ghost()
    for name, state in random_weights(ghost.num_blocks, seed=0).items():
        torch.save(state, folder / next(f.filename for f in ghost.weights if f.name == name))
    return folder


def forward_times(cfg, protocol, store, batch_size, device=None) -> dict[str, float]:
    """Seconds spent inside model forwards only, at the engine's batch size, on `device` (default: the CPU)."""
    device = device or torch.device("cpu")
    ev = cfg["face"]["eval_convention"]
    _, size = templates.parse_convention(ev)
    out = {"decode": 0.0, "detect/align": 0.0}
    for ref in protocol.images.values():
        t0 = time.perf_counter()
        image = load_image(ref.uri)
        t1 = time.perf_counter()
        found = detect.detect(image)
        if found:
            face, _ = detect.pick(found, image.shape)
            warp.align_image(image, templates.estimate_transform(ev, face.landmarks), size)
        out["decode"] += t1 - t0
        out["detect/align"] += time.perf_counter() - t1
    crops = prepare(protocol, [ev], store)
    pairs = [p for p in protocol.pairs if crops[p.source, ev].ok and crops[p.target, ev].ok]
    for name in cfg["methods"]:
        method = build_method(name, cfg, device)
        conv = method.convention
        crops.update(prepare(protocol, [conv], store))
        ok = [p for p in pairs if crops[p.source, conv].ok and crops[p.target, conv].ok]
        t = 0.0
        for i in range(0, len(ok), batch_size):
            chunk = ok[i:i + batch_size]
            src = FaceBatch(torch.stack([read_png(crops[p.source, conv].path) for p in chunk]).to(device),
                            torch.stack([torch.from_numpy(crops[p.source, conv].landmarks) for p in chunk]).to(device),
                            [f"{p.source}-{p.target}" for p in chunk])
            tgt = FaceBatch(torch.stack([read_png(crops[p.target, conv].path) for p in chunk]).to(device),
                            torch.stack([torch.from_numpy(crops[p.target, conv].landmarks) for p in chunk]).to(device),
                            [f"{p.source}-{p.target}" for p in chunk])
            _sync(device)
            t0 = time.perf_counter()
            with torch.no_grad():
                method.swap(src, tgt)
            _sync(device)
            t += time.perf_counter() - t0
        out[f"swap/{name}"] = t
    # Backends see as many images as the engine gives them: every swap plus every reference crop.
    refs = list({crops[k, ev].path for p in pairs for k in (p.source, p.target)})
    n_images = len(pairs) * len(cfg["methods"]) + len(refs)
    for family, bname in cfg["metrics"].items():
        backend = build_backend(bname, cfg, device)
        paths = (refs * (n_images // len(refs) + 1))[:n_images]
        t = 0.0
        for i in range(0, len(paths), batch_size):
            batch = torch.stack([read_png(p) for p in paths[i:i + batch_size]]).to(device)
            _sync(device)
            t0 = time.perf_counter()
            with torch.no_grad():
                backend.extract(batch)
            _sync(device)
            t += time.perf_counter() - t0
        out[f"features/{backend.feature_name}"] = t
    return out


def naive(cfg, protocol, n_pairs) -> float:
    """Seconds per pair, one pair at a time, re-decoding, re-detecting and reloading every metric model."""
    ev = cfg["face"]["eval_convention"]
    _, size = templates.parse_convention(ev)
    pairs = protocol.pairs[:n_pairs]
    t0 = time.perf_counter()
    for pair in pairs:
        faces = {}
        for role, key in (("source", pair.source), ("target", pair.target)):
            image = load_image(protocol.images[key].uri)
            found = detect.detect(image)
            if not found:
                break
            face, _ = detect.pick(found, image.shape)
            m = templates.estimate_transform(ev, face.landmarks)
            faces[role] = FaceBatch(warp.from_uint8(warp.align_image(image, m, size))[None],
                                    torch.from_numpy(templates.apply_transform(m, face.landmarks).astype(np.float32))[None])
        if len(faces) < 2:
            continue
        for name in cfg["methods"]:
            swap = methods.get(name).from_config(cfg).swap(faces["source"], faces["target"])
            for bname in cfg["metrics"].values():
                _clear_model_caches()
                backend = metrics.build_backend(bname, cfg)  # reloaded per metric and pair
                backend.extract(swap)
                backend.extract(faces["source"].image)
    return (time.perf_counter() - t0) / max(len(pairs), 1)


def _clear_model_caches():
    from swapbench.faces import detect as d
    from swapbench.metrics.backends import dlib_identity

    for fn in (d._models, dlib_identity._models):
        fn.cache_clear()
    gc.collect()


def run_config(name, args, store) -> dict:
    """The `bench run` config of one measurement: the engine on --accelerator, the chosen backends."""
    overrides = {"protocol": name, "methods": args.methods, "store": str(store),
                 "engine": {"batch_size": args.batch_size, "accelerator": args.accelerator, "devices": args.devices},
                 "weights_dir": str(args.weights_dir) if args.weights_dir else None}
    if args.metrics:
        overrides["metrics"] = dict(m.split("=", 1) for m in args.metrics)
    if args.num_workers is not None:
        overrides["engine"]["num_workers"] = args.num_workers
    return config.load((), overrides)


def bench_protocol(name, protocol, args) -> list[str]:
    tmp = Path(tempfile.mkdtemp())
    cfg = run_config(name, args, tmp / "r.sqlite")
    t0 = time.perf_counter()
    with registered(name, protocol):  # the engine finds a protocol by name; the registry is restored after
        run_ids = [r.run_id for r in engine.run(cfg)]
    wall = time.perf_counter() - t0
    store = Store(cfg["store"])
    stages: dict[str, float] = {}
    for i, run_id in enumerate(run_ids):
        for stage, sec in store.run(run_id)["timings"].items():
            if stage == "faces" and i > 0:
                continue  # face preparation is shared by the methods of one run
            key = f"swap/{store.run(run_id)['method']}" if stage == "swap" else stage
            stages[key] = stages.get(key, 0.0) + sec
    forward = forward_times(cfg, protocol, Store(tmp / "fwd.sqlite"), args.batch_size, device_of(args.accelerator))
    decode, detect = forward["decode"], forward["detect/align"]
    n = len(protocol.pairs) * len(args.methods)
    n_naive = min(args.naive_pairs, len(protocol.pairs))
    naive_s = naive(cfg, protocol, n_naive) if n_naive else float("nan")
    lines = [
        f"### {name}: {len(protocol.pairs)} pairs x {len(args.methods)} methods ({', '.join(args.methods)}), "
        f"batch size {args.batch_size}",
        "",
        f"- end to end: {wall:.1f} s, {n / wall:.2f} swapped-and-scored pairs/s, peak RSS {peak_rss_mb():.0f} MB",
        f"- sum of stage times measured alone (decode, detect/align, swap and backend forwards): "
        f"{sum(forward.values()):.1f} s; engine overhead (end to end / that sum): "
        f"{wall / max(sum(forward.values()), 1e-9):.2f}x",
        (f"- naive (one pair at a time, models reloaded per metric and pair, {n_naive} "
         f"pairs): {len(args.methods) / naive_s:.2f} pairs/s; the engine is {naive_s * n / len(args.methods) / wall:.1f}x faster"
         if n_naive else "- naive way: not measured (--naive-pairs 0)"),
        "",
        "| stage | engine time (s) | model forward (s) |",
        "|---|---:|---:|",
    ]
    # The engine times face preparation as one stage; measured alone it splits into decode and detect/align.
    forward["faces"] = forward.pop("decode") + forward.pop("detect/align")
    lines[-2:-2] = [f"- faces measured alone: decode {decode:.2f} s, detect/align {detect:.2f} s", ""]
    for stage in sorted(set(stages) | set(forward)):
        lines.append(f"| {stage} | {stages.get(stage, float('nan')):.2f} | {forward.get(stage, float('nan')):.2f} |")
    lines.append("")
    shutil.rmtree(tmp, ignore_errors=True)
    return lines


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--methods", nargs="+", default=["classic"])
    ap.add_argument("--metrics", nargs="+", metavar="FAMILY=BACKEND", help="default: every default backend")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--num-workers", type=int, help="engine.num_workers (default: the config's)")
    ap.add_argument("--subset", type=int, help="pairs of the samples protocol (default: all 72)")
    ap.add_argument("--synthetic-pairs", type=int, default=1000)
    ap.add_argument("--naive-pairs", type=int, default=20)
    ap.add_argument("--weights-dir", type=Path, help="weights folder; default for ghost: random weights")
    args = ap.parse_args(argv)
    for m in args.metrics or ():
        if "=" not in m:
            ap.error(f"--metrics expects FAMILY=BACKEND, got {m!r}")
    if args.devices < 1 or args.batch_size < 1:
        ap.error("--devices and --batch-size must be at least 1")
    return args


def machine(accelerator) -> str:
    import platform

    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    if accelerator == "gpu":
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda}); CPU {cpu}"
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads"


def main(argv=None):
    args = parse_args(argv)
    device_of(args.accelerator)  # no GPU for --accelerator gpu: stop before any work
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if "ghost" in args.methods and args.weights_dir is None:
        args.weights_dir = random_ghost_weights(Path(tempfile.mkdtemp()) / "weights")
    out = ["## Throughput", "", f"torch {torch.__version__}, {machine(args.accelerator)}; load {os.getloadavg()[0]:.2f}", ""]
    samples = get_protocol("samples")
    out += bench_protocol("samples", samples.subset(args.subset) if args.subset else samples, args)
    if args.synthetic_pairs:
        root = Path(tempfile.mkdtemp())
        out += bench_protocol("synthetic", synthetic_protocol(root, args.synthetic_pairs), args)
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(out))


if __name__ == "__main__":
    main()
