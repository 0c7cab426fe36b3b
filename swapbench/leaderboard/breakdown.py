"""Leaderboards per group of pairs: `bench leaderboard --by source_identity|target_identity|pose_bin`.

Each group gets the same table as the whole protocol (headline values on the pairs of the group that
every method evaluated, bold best and ties, all-pairs values, coverage within the group), so a reader
sees where a method breaks. Set-level metrics (FID, KID, …) are not split into groups.

- source_identity / target_identity: the identity of the protocol's image (the sub-folder of a
  folder protocol, the person of the bundled samples, the video of FF++); where the protocol's files are
  gone (a folder or pairs file deleted or moved) or its name is not registered here, the image key. On FF++ the grouping by target identity (the
  target video, one per video pair) is written by default.
- pose_bin: the absolute yaw of the *target* face from the run's pose backend on its scoring crop:
  `frontal` (< 15°), `15–45°`, `>45°`; pairs whose target has no pose go to `unknown`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from swapbench.bench import layout
from swapbench.bench.scoring import confidence_interval
from swapbench.bench.store import Store
from swapbench.leaderboard import stats, tables
from swapbench.registry import UnknownName

BY = ("source_identity", "target_identity", "pose_bin")


def pose_bin(yaw: float | None) -> str:
    if yaw is None or not np.isfinite(yaw):
        return "unknown"
    a = abs(float(yaw))
    return "frontal" if a < 15 else ("15–45°" if a <= 45 else ">45°")


def _identities(run: dict) -> dict[str, str]:
    """image key -> identity, from the run's protocol; {} when it cannot be rebuilt here."""
    from swapbench import datasets

    spec = run["config"].get("protocol", run["protocol"])
    try:
        if spec.startswith("folder:"):
            protocol = datasets.folder_protocol(spec[len("folder:"):])
        elif spec.startswith("csv:"):
            protocol = datasets.csv_protocol(spec[len("csv:"):], run["config"].get("data_root"))
        else:
            protocol = datasets.get_protocol(spec)
    except (FileNotFoundError, UnknownName):  # DataError too: a folder or pairs file that is gone, or a
        return {}  # protocol not registered here (its plugin gone). Any other error is a bug: it is raised
    return {k: r.identity for k, r in protocol.images.items()}


def _target_yaw(store: Store, run: dict, targets, backend: str) -> dict[str, float]:
    key = layout.face_key_of_run(run["config"], run["config"]["face"]["eval_convention"])
    crop_of = {}
    for t in targets:
        sha = store.image_sha(run["protocol_hash"], t)
        face = store.face(sha, key) if sha else None
        if face and face["ok"] and face["crop_sha"]:
            crop_of[t] = face["crop_sha"]
    feats = store.features(backend, set(crop_of.values()))
    return {t: float(feats[c].vector[0]) for t, c in crop_of.items() if c in feats and feats[c].ok}


def groups(store: Store, part: pd.DataFrame, by: str) -> dict[str, str]:
    """pair id -> group, for every pair any run of this protocol table has values or failures for."""
    if by not in BY:
        raise ValueError(f"unknown breakdown {by!r}; choose one of {', '.join(BY)}")
    run_ids = list(part.drop_duplicates("method")["run_id"])
    pair_ids = set()
    for r in run_ids:
        pair_ids |= {p for p, _, _ in store.pair_values(r)} | {f.pair_id for f in store.failures(r)}
        pair_ids |= set(store.swaps(r))
    run = store.run(run_ids[0])
    if by == "pose_bin":
        backend = next((b for m, b in zip(part["metric"], part["backend"]) if m == "pose_error" and b), None)
        yaw = _target_yaw(store, run, {p.split("__", 1)[0] for p in pair_ids}, backend) if backend else {}
        return {p: pose_bin(yaw.get(p.split("__", 1)[0])) for p in pair_ids}
    identity = _identities(run)
    side = 0 if by == "target_identity" else 1  # pair id: "<target>__<source>"
    return {p: identity.get(p.split("__", 1)[side], p.split("__", 1)[side]) for p in pair_ids}


def group_frame(store: Store, part: pd.DataFrame, pairs: set[str], loaded: dict | None = None) -> pd.DataFrame:
    """The collect() frame of one protocol restricted to a group of pairs (per-pair metrics only).
    loaded: {run_id: (pair table, failed pair ids, engine config)} to avoid re-reading per group."""
    loaded = loaded if loaded is not None else _load(store, part)
    rows = []
    for _, first in part.drop_duplicates("method").iterrows():
        table, all_failed, engine = loaded[first["run_id"]]
        t = table[table.index.isin(pairs)]
        failed = all_failed & pairs
        common = {**first.to_dict(), "pairs": len(pairs), "pairs_failed": len(failed)}
        backends = dict(zip(part.loc[part["method"] == first["method"], "metric"],
                            part.loc[part["method"] == first["method"], "backend"]))
        added = False
        for metric in t.columns:
            if metric in tables.SET_LEVEL:
                continue
            v = t[metric].dropna().to_numpy()
            if not len(v):
                continue
            lo, hi = confidence_interval(v, engine["bootstrap_resamples"], engine["seed"])
            rows.append({**common, "metric": metric, "value": float(v.mean()), "ci_low": lo, "ci_high": hi,
                         "n": len(v), "n_failed": len(pairs) - len(v), "backend": backends.get(metric, "")})
            added = True
        if not added:
            rows.append({**common, "metric": tables.NO_VALUE, "value": float("nan"), "ci_low": None, "ci_high": None,
                         "n": 0, "n_failed": len(pairs), "backend": ""})
    df = pd.DataFrame(rows)
    return tables.add_common_pairs(df, store, pairs, {r: v[0] for r, v in loaded.items()})


def _load(store: Store, part: pd.DataFrame) -> dict:
    out = {}
    for run_id in part.drop_duplicates("method")["run_id"]:
        out[run_id] = (stats.pair_table(store.pair_values(run_id)), {f.pair_id for f in store.failures(run_id)},
                       store.run(run_id)["config"]["engine"])
    return out


def markdown(df: pd.DataFrame, store: Store, by: str) -> str:
    """One section per protocol and group, each with the leaderboard table of that group."""
    out = []
    for (protocol, _), part in df.groupby(["protocol", "protocol_hash"], sort=True):
        by_pair = groups(store, part, by)
        names = sorted(set(by_pair.values()), key=lambda g: (g == "unknown", g))
        if by == "pose_bin":
            order = ["frontal", "15–45°", ">45°", "unknown"]
            names = [g for g in order if g in names]
        loaded = _load(store, part)
        for g in names:
            pairs = {p for p, x in by_pair.items() if x == g}
            text = tables.markdown(group_frame(store, part, pairs, loaded), store)
            out.append(text.replace(f"## {protocol}\n", f"## {protocol} — {by}: {g} ({len(pairs)} pairs)\n", 1))
    return "\n".join(out)
