"""Measurements at protocol scale: the face stage in worker processes, and memory against protocol size.

    python benchmarks/scale.py faces --images 504 --workers 1 2      # face-stage speed-up, 1024 px images
    python benchmarks/scale.py faces --detector scrfd --device cuda --detect-batch 32 --workers 16   # GPU box
    python benchmarks/scale.py memory --pairs 1000 10000              # peak RSS of `bench run` per size
    python benchmarks/scale.py memory --pairs 200 2000 --images 48 --methods target --metrics pose=mediapipe_pose

faces: a synthetic protocol of distinct 1024x1024 PNGs made from the bundled faces (flips, brightness,
zoom), prepared from scratch (fresh store) with each number of workers, interleaved and repeated, so
that load from other processes hits every setting alike. Prints seconds per setting and the speed-up.

memory: each size in a fresh `python -m swapbench.cli run` process (the same images, more pairs:
Protocol.subset of all ordered pairs of 9 x 12 augmented faces), its peak resident memory read from the
child's rusage; prints a table. `uptime`'s load average is printed next to every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance

REPO = Path(__file__).resolve().parents[1]


def load() -> str:
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def variants(n: int, size: int | None):
    """n distinct augmented copies of the bundled faces: (key, PIL image)."""
    from swapbench.datasets import get_protocol
    from swapbench.datasets.images import load_image

    faces = [(k, Image.fromarray(load_image(r.uri))) for k, r in sorted(get_protocol("samples").images.items())]
    per_face = -(-n // len(faces))
    out = []
    for key, base in faces:
        for i in range(per_face):
            img = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else base
            zoom = 1.0 + 0.08 * ((i // 2) % 4)  # crop towards the centre: a different framing
            w, h = img.size
            cw, ch = int(w / zoom), int(h / zoom)
            img = img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
            img = ImageEnhance.Brightness(img).enhance(0.75 + 0.05 * (i // 8))
            if size:
                img = img.resize((size, size), Image.Resampling.BICUBIC)
            out.append((f"{key}_{i:03d}", img))
    return out[:n]


def synthetic(root: Path, n_images: int, size: int | None, n_pairs: int | None = None):
    from swapbench.datasets import ImageRef, Pair, Protocol

    root.mkdir(parents=True, exist_ok=True)
    images = {}
    for key, img in variants(n_images, size):
        path = root / f"{key}.png"
        if not path.exists():
            img.save(path)
        images[key] = ImageRef(key, key.rsplit("_", 1)[0], str(path))
    keys = sorted(images)
    pairs = [Pair(s, t) for s in keys for t in keys if s != t] if n_pairs else []
    protocol = Protocol("synthetic", "1", "augmented bundled faces", images, pairs)
    return protocol.subset(n_pairs) if n_pairs else protocol


def faces(args):
    from swapbench.bench.prepare import prepare
    from swapbench.bench.store import Store

    root = Path(tempfile.mkdtemp(prefix="swapbench-faces-"))
    protocol = synthetic(root / "images", args.images, 1024)
    print(f"{len(protocol.images)} distinct {1024}px images; conventions {args.conventions}; detector {args.detector} "
          f"on {args.device if args.detect_batch > 1 else 'cpu'}, {args.detect_batch} image(s) per forward; {load()}")
    times: dict[int, list[float]] = {w: [] for w in args.workers}
    for rep in range(args.repeats):
        for w in args.workers:
            store_dir = root / f"store-{w}-{rep}"
            t0 = time.perf_counter()
            prepare(protocol, args.conventions, Store(store_dir / "r.sqlite"), workers=w, detector=args.detector,
                    weights_dir=args.weights_dir, device=args.device, detect_batch=args.detect_batch)
            times[w].append(time.perf_counter() - t0)
            print(f"  workers={w} repeat {rep}: {times[w][-1]:.1f} s ({load()})", flush=True)
            shutil.rmtree(store_dir)
    base = min(times[args.workers[0]])
    print(f"\n| workers | best of {args.repeats} (s) | images/s | speed-up |")
    print("|---:|---:|---:|---:|")
    for w, t in times.items():
        print(f"| {w} | {min(t):.1f} | {len(protocol.images) / min(t):.2f} | {base / min(t):.2f}x |")
    print(f"\n{load()}")
    shutil.rmtree(root, ignore_errors=True)


CHILD = """
import json, resource, sys, time
import swapbench.faces.mediapipe  # first: it ignores a stray SIGPROF (see there)
from swapbench.bench import config, engine
from swapbench.datasets import registered
sys.path.insert(0, {bench!r})
import scale
protocol = scale.synthetic(__import__('pathlib').Path({root!r}), {n_images}, None, {pairs})
cfg = config.load((), json.loads({overrides!r}))
t0 = time.perf_counter()
with registered('synthetic', protocol):
    engine.run(cfg)
print(json.dumps({{'seconds': time.perf_counter() - t0,
                   'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def memory(args):
    import json

    root = Path(tempfile.mkdtemp(prefix="swapbench-mem-"))
    metrics = dict(m.split("=", 1) for m in args.metrics) if args.metrics else None
    rows = []
    for pairs in args.pairs:
        store = root / f"store-{pairs}" / "r.sqlite"
        overrides = {"protocol": "synthetic", "methods": args.methods, "store": str(store),
                     "engine": {"batch_size": 8}, **({"metrics": metrics} if metrics else {})}
        code = CHILD.format(bench=str(Path(__file__).parent), root=str(root / "images"), n_images=args.images,
                            pairs=pairs, overrides=json.dumps(overrides))
        before = load()
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.exit(f"exit status {proc.returncode}\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((pairs, res["seconds"], res["rss_mb"], before, load()))
        print(f"  {pairs} pairs: {res['seconds']:.0f} s, peak RSS {res['rss_mb']:.0f} MB ({before} -> {load()})",
              flush=True)
    print(f"\nmethods {', '.join(args.methods)}; backends {', '.join(f'{k}={v}' for k, v in metrics.items()) if metrics else 'the defaults'}; "
          f"{args.images} images")
    print("\n| pairs | seconds | peak RSS (MB) | ratio to first | load before -> after |")
    print("|---:|---:|---:|---:|---|")
    for pairs, sec, rss, b, a in rows:
        print(f"| {pairs} | {sec:.0f} | {rss:.0f} | {rss / rows[0][2]:.2f}x | {b} -> {a} |")
    shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("faces", help="face-stage speed-up with worker processes")
    f.add_argument("--images", type=int, default=504)
    f.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    f.add_argument("--repeats", type=int, default=1)
    f.add_argument("--conventions", nargs="+", default=["ffhq_256"])
    f.add_argument("--detector", default="dlib_hog", help="face.detector (scrfd and face_alignment batch on --device)")
    f.add_argument("--device", default="cpu", help="where a batched detector's network runs, e.g. cuda")
    f.add_argument("--detect-batch", type=int, default=1, help="images per detector forward (engine.detect_batch)")
    f.add_argument("--weights-dir", help="folder with the detector's model files")
    m = sub.add_parser("memory", help="peak resident memory of `bench run` against protocol size")
    m.add_argument("--pairs", type=int, nargs="+", default=[1000, 10000])
    m.add_argument("--images", type=int, default=108, help="distinct images (all sizes use the same ones)")
    m.add_argument("--methods", nargs="+", default=["classic"])
    m.add_argument("--metrics", nargs="+", metavar="FAMILY=BACKEND", help="default: every default backend")
    args = ap.parse_args()
    {"faces": faces, "memory": memory}[args.what](args)


if __name__ == "__main__":
    main()
