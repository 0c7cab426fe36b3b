"""What a video clip costs against the same frames as single pairs, and memory against the number of clips.

    python benchmarks/video_cost.py cost [--frames 32] [--repeats 2]
    python benchmarks/video_cost.py memory [--clips 1 2 4] [--frames 8]
    python benchmarks/video_cost.py decode [--frames 32] [--gop 250]

cost: the synthetic clip (swapbench.datasets.synthetic, `--frames` frames) swapped by the `classic` baseline
with the identity family (dlib_resnet_v1), once as a `folder_video:` clip and once as `--frames` single
pairs of a `csv:` protocol over the same frames saved as PNG (same source photo, same pixels), each in a
fresh store and a fresh `bench run` process, the two interleaved `--repeats` times (alternating which
goes first). Prints the stored
stage timings per frame; the clip's extra work (the temporal family, the WebM) is listed apart.

memory: one target clip with 1, 2, 4, ... source photographs (that many clips), each size in a fresh
`bench run` process; its peak resident memory from the child's rusage.
decode: the first `--frames` frames of an H.264 video (720x576, key frame every `--gop` frames like FF++'s
c23 encodes) read one by one with `video.read_frame`, with the open decoder (as a run reads a clip) and with
a fresh seek for every frame (as before clips existed); interleaved, 3 times each.
`uptime`'s load average is printed with every figure: on a shared machine compare rows of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ["--method", "classic", "--set", "metrics={identity: dlib_resnet_v1}", "--set", "engine.num_workers=1"]


def load() -> str:
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_run(args, store: Path) -> tuple[dict, float]:
    """(stage timings of the run, peak RSS in MiB) of one `bench run` in a fresh process."""
    cmd = [sys.executable, "-m", "swapbench.cli", "run", *args, *SETTINGS, "--store", str(store)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()}")
    (timings,) = sqlite3.connect(store).execute("SELECT timings FROM runs").fetchone()
    return json.loads(timings), usage.ru_maxrss / 1024


def clip_folder(root: Path, frames: int, sources: int) -> Path:
    from swapbench.datasets import get_protocol, synthetic
    from swapbench.datasets.images import load_image

    folder = root / f"clip{frames}x{sources}"
    folder.mkdir(parents=True, exist_ok=True)
    from swapbench.datasets.video import write_video

    write_video(folder / f"{synthetic.TARGET}.mkv", synthetic.clip_frames(frames), synthetic.FPS, codec="ffv1")
    people = [k for k in sorted(get_protocol("samples").images) if k != synthetic.TARGET][:sources]
    for key in people:
        Image.fromarray(load_image(get_protocol("samples").images[key].uri)).save(folder / f"{key}.png")
    return folder


def frame_pairs(root: Path, clip: Path, frames: int) -> Path:
    """The clip's frames as PNGs and a CSV of (source photo, frame) pairs."""
    from swapbench.datasets import synthetic

    folder = root / "stills"
    folder.mkdir(exist_ok=True)
    source = next(clip.glob("*.png"))
    lines = ["source,target"]
    for t, frame in enumerate(synthetic.clip_frames(frames)):
        Image.fromarray(frame).save(folder / f"frame{t:03d}.png")
        lines.append(f"{source},{folder / f'frame{t:03d}.png'}")
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n")
    return folder / "pairs.csv"


def cost(frames: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = clip_folder(root, frames, 1)
        pairs = frame_pairs(root, clip, frames)
        runs = {"clip": [], "pairs": []}
        for r in range(repeats):
            order = (("clip", f"folder_video:{clip}"), ("pairs", f"csv:{pairs}"))
            for name, protocol in order[::1 if r % 2 == 0 else -1]:  # alternate which goes first
                timings, rss = bench_run(["--protocol", protocol, "--set", f"video.frames={frames}"]
                                         if name == "clip" else ["--protocol", protocol], root / f"{name}{r}.sqlite")
                runs[name].append(timings)
                print(f"{name} run {r}: {', '.join(f'{k} {v:.2f} s' for k, v in timings.items())}; "
                      f"peak RSS {rss:.0f} MiB; {load()}", flush=True)
    stages = sorted({k for rs in runs.values() for t in rs for k in t})
    # load from other processes only ever adds time: the fastest of the repeats is the cleanest figure
    print(f"\nms per frame (fastest of {repeats}), {frames} frames:")
    print("| stage | clip | single pairs |")
    print("|---|---:|---:|")
    for stage in stages:
        cells = [f"{min(t[stage] for t in runs[n] if stage in t) / frames * 1000:.0f}"
                 if any(stage in t for t in runs[n]) else "–" for n in ("clip", "pairs")]
        print(f"| {stage} | {cells[0]} | {cells[1]} |")


def memory(clips: list[int], frames: int) -> None:
    print("| clips | frames | peak RSS (MiB) | load |")
    print("|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for k in clips:
            folder = clip_folder(Path(tmp), frames, k)
            _, rss = bench_run(["--protocol", f"folder_video:{folder}", "--set", f"video.frames={frames}"],
                               Path(tmp) / f"m{k}.sqlite")
            print(f"| {k} | {k * frames} | {rss:.0f} | {load()} |", flush=True)


def decode(frames: int, gop: int) -> None:
    import time

    import av

    from swapbench.datasets import synthetic, video

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 720, 576, "yuv420p"
            stream.options = {"g": str(gop), "crf": "23", "preset": "veryfast"}
            for f in synthetic.clip_frames(frames + 8):
                img = np.asarray(Image.fromarray(f).resize((720, 576)))
                container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            container.mux(stream.encode())
        times = {"open decoder": [], "seek per frame": []}
        for _ in range(3):
            for name in times:
                video._OPEN = None
                t0 = time.perf_counter()
                for i in range(frames):
                    if name == "seek per frame":
                        video._OPEN = None  # forget the decoder: every frame seeks to the key frame again
                    video.read_frame(path, index=i)
                times[name].append(time.perf_counter() - t0)
        for name, ts in times.items():
            print(f"{name}: {min(ts) / frames * 1000:.1f} ms/frame (fastest of 3); {load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost")
    c.add_argument("--frames", type=int, default=32)
    c.add_argument("--repeats", type=int, default=2)
    m = sub.add_parser("memory")
    m.add_argument("--clips", type=int, nargs="+", default=[1, 2, 4])
    m.add_argument("--frames", type=int, default=8)
    d = sub.add_parser("decode")
    d.add_argument("--frames", type=int, default=32)
    d.add_argument("--gop", type=int, default=250)
    args = ap.parse_args()
    if args.what == "cost":
        cost(args.frames, args.repeats)
    elif args.what == "memory":
        memory(args.clips, args.frames)
    else:
        decode(args.frames, args.gop)


if __name__ == "__main__":
    main()
