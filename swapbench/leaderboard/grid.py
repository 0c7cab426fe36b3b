"""Comparison grids: one row per pair.

comparison_grid: source | target | each method's swap, as scoring (eval) crops.
frame_grid: the target frame | each method's swap pasted back into that frame (faces.warp).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from swapbench.bench import layout
from swapbench.bench.store import Store

CELL = 128


def comparison_grid(store: Store, part, path: Path, rows: int = 6) -> Path | None:
    if part.empty:
        return None
    runs, order, run, common = _runs(store, part)
    key = layout.face_key_of_run(run["config"], run["config"]["face"]["eval_convention"])
    chosen = _choose(common, rows)
    if not chosen:
        return None
    header = ["SOURCE (input)", "TARGET (input)"] + [f"method: {m}" for m in order]
    canvas = Image.new("RGB", (CELL * len(header), 18 + CELL * len(chosen)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(header):
        draw.text((j * CELL + 4, 3), title, fill="black")
    for i, (pid, source, target) in enumerate(chosen):
        cells = [_crop(store, run["protocol_hash"], source, key), _crop(store, run["protocol_hash"], target, key)]
        cells += [layout.swap_path(store.files, runs.loc[m, "run_id"], pid) for m in order]
        for j, cell in enumerate(cells):
            img = Image.open(cell).convert("RGB").resize((CELL, CELL), Image.Resampling.LANCZOS) if cell else None
            if img is not None:
                canvas.paste(img, (j * CELL, 18 + i * CELL))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _runs(store: Store, part):
    """(runs by method, methods in display order, the first run, pairs every method swapped)."""
    runs = part.drop_duplicates("method").set_index("method")
    order = sorted(runs.index, key=lambda m: (["source", "target", "classic"] + [m]).index(m))
    swaps = [store.swaps(runs.loc[m, "run_id"]) for m in order]
    common = set.intersection(*({p for p, s in s.items() if s.ok} for s in swaps))
    return runs, order, store.run(runs["run_id"].iloc[0]), common


def _choose(pair_ids, rows: int) -> list[tuple[str, str, str]]:
    """A fixed, hash-ordered sample of pairs; rows show different people where possible."""
    chosen, seen = [], set()
    for pid in sorted(pair_ids, key=lambda p: hashlib.sha256(p.encode()).hexdigest()):
        target, source = pid.split("__", 1)
        if source in seen or target in seen:
            continue
        chosen.append((pid, source, target))
        seen |= {source, target}
        if len(chosen) == rows:
            break
    return chosen


FRAME_CELL = 192


def own_paste(store: Store, method: str, run_id: str, pair_id: str, frame: np.ndarray, sha: str) -> np.ndarray | None:
    """The swap pasted into its frame by the method's own paste-back (SwapMethod.frame_paste), from the
    method's raw crop and the target's matrix in the method's convention; None where the method has none
    (or its crop or face record is gone)."""
    from swapbench import methods
    from swapbench.registry import UnknownName

    try:
        cls = methods.get(method)
    except UnknownName:
        return None
    if cls.frame_paste is None:
        return None
    config = store.run(run_id)["config"]
    convention = f"{cls.crop}_{cls.size}"
    raw = layout.raw_swap_path(store.files, run_id, pair_id)
    if convention == config["face"]["eval_convention"] or not raw.is_file():
        raw = layout.swap_path(store.files, run_id, pair_id)
    face = store.face(sha, layout.face_key_of_run(config, convention))
    if face is None or not face["ok"] or face["matrix"] is None or not raw.is_file():
        return None
    return cls.frame_paste(frame, np.asarray(Image.open(raw).convert("RGB")), face["matrix"])


def frame_grid(store: Store, part, path: Path, rows: int = 4) -> Path | None:
    """Target frames and every method's swap pasted back into them. Needs the data on this machine:
    without it (or when a frame's pixels no longer match the run's), returns None and says why."""
    from swapbench.datasets import load_protocol
    from swapbench.datasets.images import ImageError, load_image, pixel_sha
    from swapbench.datasets.protocol import DataError
    from swapbench.faces import warp

    if part.empty:
        return None
    runs, order, run, common = _runs(store, part)
    key = layout.face_key_of_run(run["config"], run["config"]["face"]["eval_convention"])
    try:
        protocol = load_protocol({**run["config"], "data": {**(run["config"].get("data") or {}), "allow_missing": True}})
    except (DataError, OSError, KeyError, ValueError) as exc:  # data set moved or absent: no frames to paste into
        warnings.warn(f"{run['protocol']}: no pasted-back frames ({exc})")
        return None
    cells = []
    for pid, _, target in _choose(common, rows):
        sha = store.image_sha(run["protocol_hash"], target)
        face = store.face(sha, key) if sha else None
        try:
            frame = load_image(protocol.location(target))
        except (ImageError, OSError):
            continue
        if face is None or not face["ok"] or pixel_sha(frame) != sha:
            continue
        row = [frame]
        for m in order:
            own = own_paste(store, m, runs.loc[m, "run_id"], pid, frame, sha)
            if own is not None:
                row.append(own)
                continue
            swap = np.asarray(Image.open(layout.swap_path(store.files, runs.loc[m, "run_id"], pid)).convert("RGB"))
            row.append(warp.paste_into_frame(frame, swap, face["matrix"], face["landmarks"], max_side=2 * FRAME_CELL))
        cells.append(row)
    if not cells:
        return None
    header = ["TARGET frame"] + [f"{m}, pasted back" for m in order]
    canvas = Image.new("RGB", (FRAME_CELL * len(header), 18 + FRAME_CELL * len(cells)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(header):
        draw.text((j * FRAME_CELL + 4, 3), title, fill="black")
    for i, row in enumerate(cells):
        for j, img in enumerate(row):
            tile = ImageOps.pad(Image.fromarray(img), (FRAME_CELL, FRAME_CELL), Image.Resampling.LANCZOS, color="white")
            canvas.paste(tile, (j * FRAME_CELL, 18 + i * FRAME_CELL))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _crop(store, phash, image_key, face_key):
    sha = store.image_sha(phash, image_key)
    face = store.face(sha, face_key) if sha else None
    return layout.crop_path(store.files, face_key, face["crop_sha"]) if face and face["ok"] else None
