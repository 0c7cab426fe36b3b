"""Prepare a folder of wheels for installing swapbench on a machine without internet that has torch.

Rented GPU machines often come with a CUDA build of torch preinstalled and no internet access. Run
this where swapbench is installed and works (same Python version and platform as the GPU machine, or
give --platform/--python-version), copy the folder over, and install from it alone:

    python tools/offline_wheels.py wheels/                 # every dependency but torch, pinned as here
    scp -r wheels/ gpu-box:                                 # or any other way of copying
    pip install --no-index --find-links wheels/ -r wheels/requirements.txt   # on the GPU machine

The folder holds a wheel of swapbench itself and of every package in its dependency closure, at the
versions installed here (the ones the tests ran with), except torch and what only torch needs (its
CUDA libraries, triton, sympy ...), which the GPU machine has. `pip wheel` builds wheels of packages
published only as source archives, so the GPU machine never needs a compiler or an index.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
# Provided by the preinstalled torch: never downloaded, and their own dependencies are not followed.
TORCH = re.compile(r"^(torch|triton|nvidia-.*|pytorch-triton.*)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str = "swapbench", extras: tuple[str, ...] = ()) -> dict[str, str]:
    """{distribution name: installed version} of everything `root[extras]` needs, torch's part left out."""
    pins: dict[str, str] = {}
    todo = [(root, tuple(extras))]
    seen = set()
    while todo:
        name, wanted = todo.pop()
        key = (canonical(name), wanted)
        if key in seen or TORCH.match(canonical(name)):
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        if canonical(name) != canonical(root):
            pins[canonical(dist.metadata["Name"])] = dist.version
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is not None and not any(req.marker.evaluate({**default_environment(), "extra": e})
                                                  for e in (wanted or ("",))):
                continue
            if TORCH.match(canonical(req.name)):
                continue
            try:
                metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                raise SystemExit(f"{req.name} (needed by {name}) is not installed here; install swapbench "
                                 f"with its dependencies first") from None
            todo.append((req.name, tuple(sorted(req.extras))))
    return dict(sorted(pins.items()))


def commands(folder: Path, pins: dict[str, str], platform: str | None, python_version: str | None,
             with_swapbench: bool = True) -> list[list[str]]:
    """The pip commands that fill `folder`."""
    specs = [f"{n}=={v}" for n, v in pins.items()]
    pip = [sys.executable, "-m", "pip"]
    if platform or python_version:  # another target: binary wheels only, as pip download requires
        target = (["--platform", platform] if platform else []) + (
            ["--python-version", python_version] if python_version else [])
        cmds = [pip + ["download", "--no-deps", "--only-binary=:all:", *target, "-d", str(folder), *specs]]
    else:
        cmds = [pip + ["wheel", "--no-deps", "-w", str(folder), *specs]]
    if with_swapbench:
        cmds.append(pip + ["wheel", "--no-deps", "-w", str(folder), str(REPO)])
    return cmds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--extras", nargs="*", default=[], help="swapbench extras to include, e.g. test")
    ap.add_argument("--packages", nargs="*", help="only these distributions (topping up a folder)")
    ap.add_argument("--platform", help="pip's --platform of the GPU machine, e.g. manylinux2014_x86_64")
    ap.add_argument("--python-version", help="the GPU machine's Python, e.g. 3.11")
    ap.add_argument("--dry-run", action="store_true", help="print the pins and commands, download nothing")
    args = ap.parse_args(argv)
    pins = closure("swapbench", tuple(args.extras))
    if args.packages is not None:
        wanted = {canonical(p) for p in args.packages}
        unknown = wanted - set(pins) - {"swapbench"}
        if unknown:
            ap.error(f"not in swapbench's dependencies: {', '.join(sorted(unknown))}")
        pins = {n: v for n, v in pins.items() if n in wanted}
    with_swapbench = args.packages is None or "swapbench" in {canonical(p) for p in args.packages}
    cmds = commands(args.folder, pins, args.platform, args.python_version, with_swapbench)
    requirements = [f"{n}=={v}" for n, v in pins.items()]
    if with_swapbench:
        requirements.append("swapbench" + (f"[{','.join(args.extras)}]" if args.extras else ""))
    if args.dry_run:
        print("\n".join(requirements))
        for cmd in cmds:
            print(" ".join(cmd[2:]))
        return 0
    args.folder.mkdir(parents=True, exist_ok=True)
    for cmd in cmds:
        subprocess.run(cmd, check=True)
    (args.folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
    print(f"{len(list(args.folder.glob('*.whl')))} wheels in {args.folder}; on the machine with torch:\n"
          f"  pip install --no-index --find-links {args.folder} -r {args.folder / 'requirements.txt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
