"""Comparison grid: one row per pair, columns source | target | each method's swap (eval crops)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from swapbench.bench.prepare import crop_path
from swapbench.bench.store import Store

CELL = 128


def comparison_grid(store: Store, part, path: Path, rows: int = 6) -> Path | None:
    runs = part.drop_duplicates("method").set_index("method")
    if runs.empty:
        return None
    order = sorted(runs.index, key=lambda m: (["source", "target", "classic"] + [m]).index(m))
    run = store.run(runs["run_id"].iloc[0])
    convention = run["config"]["face"]["eval_convention"]
    phash = run["protocol_hash"]
    swaps = {m: store.swaps(runs.loc[m, "run_id"]) for m in order}
    common = set.intersection(*({p for p, (ok, _, _) in s.items() if ok} for s in swaps.values()))
    chosen, seen = [], set()
    for pid in sorted(common, key=lambda p: hashlib.sha256(p.encode()).hexdigest()):
        target, source = pid.split("__", 1)
        if source in seen or target in seen:
            continue  # prefer rows that show different people
        chosen.append((pid, source, target))
        seen |= {source, target}
        if len(chosen) == rows:
            break
    if not chosen:
        return None
    header = ["SOURCE (input)", "TARGET (input)"] + [f"method: {m}" for m in order]
    canvas = Image.new("RGB", (CELL * len(header), 18 + CELL * len(chosen)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(header):
        draw.text((j * CELL + 4, 3), title, fill="black")
    for i, (pid, source, target) in enumerate(chosen):
        cells = [_crop(store, phash, source, convention), _crop(store, phash, target, convention)]
        cells += [store.files / "runs" / runs.loc[m, "run_id"] / f"{pid}.png" for m in order]
        for j, cell in enumerate(cells):
            img = Image.open(cell).convert("RGB").resize((CELL, CELL), Image.Resampling.LANCZOS) if cell else None
            if img is not None:
                canvas.paste(img, (j * CELL, 18 + i * CELL))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _crop(store, phash, key, convention):
    sha = store.image_sha(phash, key)
    face = store.face(sha, convention) if sha else None
    return crop_path(store, convention, face["crop_sha"]) if face and face["ok"] else None
