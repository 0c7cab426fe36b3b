"""`bench report`: a self-contained static site of the results store, to browse and publish as is.

    index.html                      the protocols
    <protocol>.html                 the leaderboard: sortable columns, 95% intervals, coverage, significance
                                    marks, filters by method and by metric backend
    <protocol>/<method>.html        a run's provenance (config, weights and their sha256, package versions,
                                    git revision, protocol hash, timings) and a gallery of its best and worst
                                    pairs per metric: source, target, swap, the swap pasted back into the frame
    <protocol>_video.html           video protocols: per temporal metric and method, the best and the worst
                                    clip (source | target | swap), played from video/<run id>/<clip>.webm
    <protocol>_prd.svg              PRD curves, when the runs have them
    img/                            web-sized JPEG thumbnails, each written once

Nothing is computed anew: the tables are `tables.collect` (what `bench leaderboard` prints) and their
cells are `tables._cell`, the same text as the markdown; the gallery orders the stored per-pair values.
No script or style is loaded from elsewhere: report.js and report.css are inlined into every page,
so the site opens from the file system and can be served by any static host.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from swapbench.bench import layout
from swapbench.bench.store import Store
from swapbench.leaderboard import tables
from swapbench.metrics import COLUMNS, TEMPORAL_COLUMNS

THUMB = 160  # crops and swaps: longest side in pixels (shown at 128 CSS pixels)
FRAME_THUMB = 320  # the swap pasted back into the target frame
JPEG_QUALITY = 80
GALLERY_PAIRS = 3  # best and worst pairs per metric


def _environment():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("swapbench.leaderboard", "templates"),
                      autoescape=select_autoescape(("html", "j2")), trim_blocks=True, lstrip_blocks=True)
    static = resources.files("swapbench.leaderboard") / "templates"
    env.globals["inline_css"] = (static / "report.css").read_text(encoding="utf-8")
    env.globals["inline_js"] = (static / "report.js").read_text(encoding="utf-8")
    return env


def write(store: Store, out_dir: Path, protocol: str | None = None, include_unpublishable: bool = False,
          gallery_pairs: int = GALLERY_PAIRS) -> list[Path]:
    """Write the site into out_dir; returns the pages written (index first), [] when the store has no runs."""
    out_dir = Path(out_dir)
    df = tables.collect(store, protocol, include_unpublishable)
    if df.empty:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    env = _environment()
    images = _Images(out_dir)
    pages, protocols = [], []
    for (name, phash), part in df.groupby(["protocol", "protocol_hash"], sort=True):
        board = leaderboard_data(part, store)
        board["prd"] = _prd_svg(store, part, out_dir / f"{name}_prd.svg")
        for method in board["methods"]:
            run = store.run(method["run_id"])
            page = out_dir / name / f"{method['name']}.html"
            data = method_data(store, run, images, gallery_pairs)
            _render(env, "method.html.j2", page, root="../", protocol=board, run=data)
            pages.append(page)
        video = video_data(store, part, board, out_dir)
        if video["sections"]:
            board["video_page"] = f"{name}_video.html"
            page = out_dir / board["video_page"]
            _render(env, "video.html.j2", page, root="", video=video)
            pages.append(page)
        page = out_dir / f"{name}.html"
        _render(env, "leaderboard.html.j2", page, root="", protocol=board)
        pages.append(page)
        protocols.append(board)
    index = out_dir / "index.html"
    _render(env, "index.html.j2", index, root="", protocols=protocols)
    return [index] + pages


def _render(env, template: str, path: Path, **context) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(env.get_template(template).render(**context), encoding="utf-8")


# --- the leaderboard ---------------------------------------------------------------------------------------

def leaderboard_data(part: pd.DataFrame, store: Store) -> dict:
    """One protocol's tables as the templates show them, from `tables.collect` rows only."""
    name, phash = part["protocol"].iloc[0], part["protocol_hash"].iloc[0]
    runs = part.drop_duplicates("method").set_index("method")
    order = sorted(runs.index, key=lambda m: tables._sort_key(part, m))
    metrics = [m for m in COLUMNS if m in set(part["metric"])] + sorted(set(part["metric"]) - set(COLUMNS) - {tables.NO_VALUE})
    n_pairs = int(runs["pairs"].iloc[0])
    has_common = "value_common" in part.columns and part["value_common"].notna().any()
    backends = {m: sorted({b for b in part.loc[part["metric"] == m, "backend"] if b}) for m in metrics}
    columns = [{"metric": m, "header": tables._header(m), "label": COLUMNS[m].label if m in COLUMNS else m,
                "higher_is_better": COLUMNS[m].higher_is_better if m in COLUMNS else None,
                "set_level": m in tables.SET_LEVEL, "backends": backends[m]} for m in metrics]
    views = [("common", "On the pairs every listed method evaluated", True)] if has_common else []
    views.append(("all", "Each method on all the pairs it evaluated" if has_common else "Leaderboard", False))
    table_views = []
    for key, title, common in views:
        rows = []
        for method in order:
            cells = []
            for m in metrics:
                hit = part[(part["method"] == method) & (part["metric"] == m)]
                cells.append(_cell(hit.iloc[0], common) if len(hit) else _empty_cell())
            failed = int(runs.loc[method, "pairs_failed"])
            rows.append({"method": method, "cells": cells, "evaluated": n_pairs - failed, "failed": failed,
                         "coverage": f"{n_pairs - failed}/{n_pairs} evaluated, {failed} failed"})
        table_views.append({"key": key, "title": title, "rows": rows})
    reasons = Counter()
    for run_id in runs["run_id"]:
        for f in store.failures(run_id):
            reasons[(f.stage, f.reason)] += 1
    revisions = runs["git_revision"].dropna()
    return {
        "name": name, "hash": phash, "pairs": n_pairs, "columns": columns, "tables": table_views,
        "has_common": has_common,
        "common_text": tables._common_text(part, metrics, n_pairs) if has_common else "",
        "backends": sorted({b for bs in backends.values() for b in bs}),
        "methods": [{"name": m, "run_id": runs.loc[m, "run_id"], "page": f"{name}/{m}.html"} for m in order],
        "not_meaningful": any(not tables.meaningful(r) for _, r in part.iterrows()),
        "footnotes": tables.footnotes(part),
        "min_samples": int(part["min_samples"].dropna().iloc[0]) if part["min_samples"].notna().any() else None,
        **_failures_and_notes(reasons),
        "git_revision": revisions.iloc[0] if len(revisions) else "unknown",
    }


def _failures_and_notes(reasons: Counter) -> dict:
    """Failures by (stage, reason), and the methods' notes on pairs they did swap (stage "note"), as
    `bench leaderboard` separates them."""
    return {"failures": [{"stage": s, "reason": r, "count": n} for (s, r), n in sorted(reasons.items()) if s != "note"],
            "notes": [{"reason": r, "count": n} for (s, r), n in sorted(reasons.items()) if s == "note"]}


def _cell(row, common: bool) -> dict:
    """The markdown cell of `bench leaderboard` (tables._cell), its bold mark, the number to sort by, the backend."""
    text = tables._cell(row, common)
    best = text.startswith("**")
    text = text.replace("**", "")
    use_common = common and row["metric"] not in tables.SET_LEVEL
    value = row["value_common"] if use_common else row["value"]
    value_text, _, rest = text.partition(" ")
    shown = value is not None and pd.notna(value) and value_text != "–"  # a hidden FID∞ is not sorted by either
    return {"text": text, "value_text": value_text, "rest": rest, "best": best, "sort": repr(float(value)) if shown else "",
            "backend": row.get("backend") or "", "flagged": not tables.meaningful(row)}


def _empty_cell() -> dict:
    return {"text": "–", "value_text": "–", "rest": "", "best": False, "sort": "", "backend": "", "flagged": False}


def _prd_svg(store: Store, part, path: Path) -> str | None:
    plot = tables._prd_plot(store, part, path, fmt="svg")
    return plot.name if plot else None


# --- the clips of a video protocol -----------------------------------------------------------------------

def video_data(store: Store, part: pd.DataFrame, board: dict, out_dir: Path) -> dict:
    """Per temporal metric and method, the best and the worst clip by the stored per-clip values; their
    WebM files are copied into the site (video/<run id>/<clip>.webm) once."""
    from swapbench.leaderboard import stats

    sections = []
    for metric in [c.name for c in TEMPORAL_COLUMNS]:
        rows = []
        for method in board["methods"]:
            values = stats.pair_table(store.pair_values(method["run_id"]))
            if metric not in values.columns or values[metric].dropna().empty:
                continue
            col = values[metric].dropna().sort_index()
            ranked = col.sort_values(ascending=not COLUMNS[metric].higher_is_better, kind="stable")
            clips = [_clip_item(store, method["run_id"], clip, ranked[clip], metric, out_dir)
                     for clip in dict.fromkeys([ranked.index[0], ranked.index[-1]])]
            rows.append({"method": method["name"], "page": method["page"], "best": clips[0],
                         "worst": clips[1] if len(clips) > 1 else None})
        if rows:
            sections.append({"metric": metric, "label": tables._header(metric), "rows": rows})
    return {"protocol": board["name"], "sections": sections}


def _clip_item(store: Store, run_id: str, clip: str, value: float, metric: str, out_dir: Path) -> dict | None:
    source = layout.clip_video_path(store.files, run_id, clip)
    if not source.is_file():
        return None
    rel = f"video/{run_id}/{clip}.webm"
    if not (out_dir / rel).is_file():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out_dir / rel)
    return {"clip": clip, "src": rel, "text": _format(metric, value)}


# --- a method's page -------------------------------------------------------------------------------------

def method_data(store: Store, run: dict, images: _Images, k: int = GALLERY_PAIRS) -> dict:
    prov = run["provenance"]
    users = [(f"method {run['method']}", prov.get("method") or {}),
             (f"face detector {(prov.get('face_detector') or {}).get('name', '')}", prov.get("face_detector") or {})]
    users += [(f"{family}: {b['name']}", b) for family, b in sorted((prov.get("backends") or {}).items())]
    weights = [{"use": use, "files": sorted((d.get("weights_sha256") or {}).items())} for use, d in users]
    failures = Counter((f.stage, f.reason) for f in store.failures(run["run_id"]))
    return {
        "method": run["method"], "run_id": run["run_id"], "protocol": run["protocol"],
        "protocol_hash": run["protocol_hash"], "protocol_info": prov.get("protocol") or {},
        "git_revision": prov.get("git_revision") or "unknown", "swapbench": prov.get("swapbench"),
        "python": prov.get("python"), "packages": sorted((prov.get("packages") or {}).items()),
        "options": prov.get("method", {}).get("options") or {}, "seed": prov.get("seed"),
        "config": yaml.safe_dump(run["config"], sort_keys=True, allow_unicode=True),
        "weights": weights, "timings": sorted(run["timings"].items()),
        "total_seconds": sum(run["timings"].values()),
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run["created"])),
        "updated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run["updated"])),
        **_failures_and_notes(failures),
        "gallery": gallery(store, run, images, k),
    }


def gallery(store: Store, run: dict, images: _Images, k: int = GALLERY_PAIRS) -> list[dict]:
    """Per per-pair metric: the k best and k worst pairs by their stored values (ties: by pair id)."""
    from swapbench.leaderboard import stats

    values = stats.pair_table(store.pair_values(run["run_id"]))
    if values.empty:
        return []
    frames = _Frames(store, run)
    sections = []
    for metric in [m for m in COLUMNS if m in values.columns] + sorted(set(values.columns) - set(COLUMNS)):
        if metric in tables.TEMPORAL:  # per clip, not per pair: the protocol's video page shows them
            continue
        col = values[metric].dropna().sort_index()
        if col.empty:
            continue
        higher = COLUMNS[metric].higher_is_better if metric in COLUMNS else True
        ranked = col.sort_values(ascending=not higher, kind="stable")
        best = list(ranked.index[:k])
        worst = [p for p in reversed(ranked.index[max(0, len(ranked) - k):]) if p not in best] if k else []
        sections.append({
            "metric": metric, "label": tables._header(metric),
            "best": [_pair_item(store, run, p, values.loc[p], images, frames, metric) for p in best],
            "worst": [_pair_item(store, run, p, values.loc[p], images, frames, metric) for p in worst],
        })
    return sections


def _pair_item(store: Store, run: dict, pair_id: str, row: pd.Series, images: _Images, frames: _Frames,
               metric: str) -> dict:
    target, source = pair_id.split("__", 1)
    key = layout.face_key_of_run(run["config"], run["config"]["face"]["eval_convention"])
    shots = []
    for label, key_ in (("source", source), ("target", target)):
        sha = store.image_sha(run["protocol_hash"], key_)
        face = store.face(sha, key) if sha else None
        path = layout.crop_path(store.files, key, face["crop_sha"]) if face and face["ok"] else None
        shots.append({"label": label, "src": images.thumb(path, f"crops/{face['crop_sha'][:20]}.jpg", THUMB)
                      if path else None, "title": key_})
    swap = layout.swap_path(store.files, run["run_id"], pair_id)
    shots.append({"label": "swap", "src": images.thumb(swap, f"runs/{run['run_id']}/{pair_id}.jpg", THUMB),
                  "title": f"{run['method']}: {pair_id}"})
    rel = f"runs/{run['run_id']}/{pair_id}_frame.jpg"
    pasted = images.existing(rel) or images.array(frames.pasted(target, swap), rel)
    shots.append({"label": "pasted back", "src": pasted, "title": f"{run['method']}: {pair_id}, in the target frame"})
    order = [m for m in COLUMNS if m in row.index] + sorted(set(row.index) - set(COLUMNS))
    vals = [{"label": tables._header(m), "text": _format(m, row[m]), "this": m == metric} for m in order if pd.notna(row[m])]
    return {"pair_id": pair_id, "source": source, "target": target, "shots": shots, "scores": vals}


def _format(metric: str, value: float) -> str:
    col = COLUMNS.get(metric)
    if col and col.percent:
        return f"{value * 100:.0f}"
    if col and col.decimals is not None:
        return f"{value:.{col.decimals}f}"
    return f"{value:.5f}" if metric in tables.SMALL_VALUES else f"{value:.3f}"


class _Frames:
    """The target frames of a run's protocol, to paste swaps into; none when the data is not on this machine."""

    def __init__(self, store: Store, run: dict):
        from swapbench.datasets import load_protocol
        from swapbench.datasets.protocol import DataError

        self.store, self.run = store, run
        self.key = layout.face_key_of_run(run["config"], run["config"]["face"]["eval_convention"])
        try:
            self.protocol = load_protocol({**run["config"], "data": {**(run["config"].get("data") or {}),
                                                                      "allow_missing": True}})
        except (DataError, OSError, KeyError, ValueError) as exc:
            warnings.warn(f"{run['protocol']}: no pasted-back frames in the report ({exc})")
            self.protocol = None
        self._targets: dict[str, tuple | None] = {}

    def pasted(self, target: str, swap: Path) -> np.ndarray | None:
        from swapbench.faces import warp

        if self.protocol is None or not swap.is_file():
            return None
        if target not in self._targets:
            self._targets[target] = self._target(target)
        if self._targets[target] is None:
            return None
        frame, face, masks = self._targets[target]
        crop = np.asarray(Image.open(swap).convert("RGB"))
        size = crop.shape[0]
        if size not in masks:  # one soft mask per target and crop size, shared by its swaps
            masks[size] = warp.hull_masks(np.asarray(face["landmarks"], np.float64)[None], size)
        return warp.paste_into_frame(frame, crop, face["matrix"], face["landmarks"], max_side=FRAME_THUMB,
                                     masks=masks[size])

    def _target(self, target: str):
        """(frame, face, soft masks by crop size) of a target image, read once; None when it cannot be used."""
        from swapbench.datasets.images import ImageError, load_image, pixel_sha

        sha = self.store.image_sha(self.run["protocol_hash"], target)
        face = self.store.face(sha, self.key) if sha else None
        try:
            frame = load_image(self.protocol.location(target))
        except (ImageError, OSError, KeyError):
            return None
        if face is None or not face["ok"] or pixel_sha(frame) != sha:
            return None  # the data changed since the run: pasting would show another image
        return frame, face, {}


class _Images:
    """Thumbnails under out/img/, each written once; returns paths relative to the site root."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.written: set[str] = set()

    def existing(self, rel: str) -> str | None:
        return f"img/{rel}" if rel in self.written else None

    def thumb(self, path: Path, rel: str, side: int) -> str | None:
        if rel in self.written:
            return f"img/{rel}"
        if not path.is_file():
            return None
        with Image.open(path) as img:
            return self._save(img.convert("RGB"), rel, side)

    def array(self, rgb: np.ndarray | None, rel: str, side: int = FRAME_THUMB) -> str | None:
        return None if rgb is None else self._save(Image.fromarray(rgb), rel, side)

    def _save(self, img: Image.Image, rel: str, side: int) -> str:
        img.thumbnail((side, side), Image.Resampling.LANCZOS)
        dest = self.out_dir / "img" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        img.save(dest, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
        self.written.add(rel)
        return f"img/{rel}"


def site_size(out_dir: Path) -> dict:
    """Files and bytes of a written site, by kind (html, img, svg)."""
    sizes = {"files": 0, "bytes": 0, "html_bytes": 0, "image_bytes": 0, "images": 0}
    for p in Path(out_dir).rglob("*"):
        if p.is_file():
            n = p.stat().st_size
            sizes["files"] += 1
            sizes["bytes"] += n
            if p.suffix == ".html":
                sizes["html_bytes"] += n
            else:
                sizes["image_bytes"] += n
                sizes["images"] += 1
    return sizes
