"""Regression checks: compare a run with golden results under per-metric tolerances.

A golden file (JSON, stable key order, human-readable) describes a run — protocol, subset, methods,
metric backends, seed — and holds its aggregates, a fixed sample of per-pair values, the tolerance of
each metric with the reason for it, and the package versions and git revision that produced it.
`bench check GOLDEN` runs (or reuses from the store) that run and compares; `--update` rewrites it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from swapbench.bench import config as config_mod
from swapbench.bench.store import Store

RUN_KEYS = ("protocol", "subset", "methods", "metrics", "fid", "face", "data_root")
ENGINE_KEYS = ("seed", "bootstrap_resamples")
PAIRS_PER_METHOD = 6

# Used when a golden file is created; each golden file carries its own copy, edited there if need be.
DEFAULT_TOLERANCES = {
    "id_cosine": {"abs": 1e-5, "why": "dlib descriptors are float32 and computed on the CPU by dlib's own code: "
                  "identical on one machine; 1e-5 allows last-bit changes of float32 sums across dlib/BLAS builds"},
    "id_top1": {"abs": 0.0, "why": "a fraction of 0/1 hits: any change means a swap's nearest identity changed"},
    "id_top5": {"abs": 0.0, "why": "a fraction of 0/1 hits: any change means a swap's ranking changed"},
    "pose_error": {"abs": 1e-3, "why": "mediapipe's TFLite (XNNPACK) landmarks are float32: identical on one "
                   "machine and build; 1e-3 degrees allows kernel changes between mediapipe releases"},
    "expression_error": {"abs": 1e-4, "why": "blendshape scores in [0, 1] from float32 TFLite: as pose_error"},
    "gaze_error": {"abs": 1e-3, "why": "iris landmarks from float32 TFLite, degrees: as pose_error"},
    "fid": {"abs": 1e-3, "why": "the golden run is recomputed with the same batch size and torch build, so the "
            "float32 Inception features are identical; but with fewer images than feature dimensions the "
            "covariances are rank-deficient and FID's square root turns a 2e-6 feature change into ~1 FID unit, "
            "so a new torch build or batch size needs --update (the leaderboard flags such FIDs)"},
    "fid_inf": {"abs": 1e-2, "why": "a line fitted through FIDs of seeded random subsets: each has FID's "
                "sensitivity to float32 feature changes below 2048 images (see fid), so the intercept gets a "
                "looser bound; a new torch build or batch size needs --update"},
    "kid": {"abs": 1e-6, "why": "unbiased polynomial-kernel MMD in float64 on the same float32 Inception features: "
            "smooth in the features (unlike FID's square root), so identical features give identical values to "
            "rounding; KID values here are ~1e-3..1e-1, so 1e-6 catches any real change"},
    "kid_std": {"abs": 1e-6, "why": "spread of KID over seeded random subsets: as kid"},
    "prd_f8": {"abs": 1e-3, "why": "seeded k-means on float32 features: identical on one machine; a k-means or BLAS "
               "change can move a boundary point to another cluster"},
    "prd_f1_8": {"abs": 1e-3, "why": "as prd_f8"},
    "precision": {"abs": 0.0, "why": "a fraction of 0/1 k-NN memberships: any change means a swap left the manifold"},
    "recall": {"abs": 0.0, "why": "a fraction of 0/1 k-NN memberships"},
}
FALLBACK_TOLERANCE = {"abs": 1e-4, "why": "default for metrics without a specific tolerance"}


@dataclass
class Finding:
    method: str
    metric: str
    pair: str | None  # None for an aggregate
    old: float | None
    new: float | None
    tol: float

    @property
    def ok(self) -> bool:
        if self.old is None or self.new is None:
            return self.old is None and self.new is None
        return abs(self.new - self.old) <= self.tol

    @property
    def where(self) -> str:
        return f"{self.method} {self.metric}" + (f" pair {self.pair}" if self.pair else "")


def config_for(golden: dict, store: str | None, data_root: str | None = None) -> dict:
    run = golden["run"]
    overrides = {k: run[k] for k in RUN_KEYS if k in run}
    if data_root is not None:  # where the data is on this machine; not part of the golden file
        overrides["data_root"] = data_root
    overrides["engine"] = {k: run[k] for k in ENGINE_KEYS if k in run}
    overrides["store"] = store
    return config_mod.load((), overrides)


def sample_pairs(pair_ids, n=PAIRS_PER_METHOD) -> list[str]:
    return sorted(sorted(pair_ids, key=lambda p: hashlib.sha256(p.encode()).hexdigest())[:n])


def results_of(store: Store, run_ids: list[str]) -> tuple[dict, dict, dict]:
    """(aggregates {method: {metric: value}}, pair values {method: {pair: {metric: value}}}, provenance)."""
    aggregates, pairs, provenance = {}, {}, {}
    for run_id in run_ids:
        run = store.run(run_id)
        method = run["method"]
        aggregates[method] = {m: a["value"] for m, a in sorted(store.aggregates(run_id).items())}
        values: dict = {}
        for pair_id, metric, value in store.pair_values(run_id):
            values.setdefault(pair_id, {})[metric] = value
        pairs[method] = values
        provenance = run["provenance"]
    return aggregates, pairs, provenance


def compare(golden: dict, aggregates: dict, pairs: dict) -> list[Finding]:
    tol = golden["tolerances"]
    findings = []
    for method, metrics in golden["aggregates"].items():
        for metric, old in metrics.items():
            t = tol.get(metric, FALLBACK_TOLERANCE)["abs"]
            findings.append(Finding(method, metric, None, old, aggregates.get(method, {}).get(metric), t))
    for method, by_pair in golden["pairs"].items():
        for pair, metrics in by_pair.items():
            for metric, old in metrics.items():
                t = tol.get(metric, FALLBACK_TOLERANCE)["abs"]
                new = pairs.get(method, {}).get(pair, {}).get(metric)
                findings.append(Finding(method, metric, pair, old, new, t))
    return findings


def make_golden(cfg: dict, aggregates: dict, pairs: dict, provenance: dict, previous: dict | None) -> dict:
    tolerances = dict((previous or {}).get("tolerances", {}))
    for metric in sorted({m for a in aggregates.values() for m in a}):
        tolerances.setdefault(metric, DEFAULT_TOLERANCES.get(metric, FALLBACK_TOLERANCE))
    run = {k: cfg[k] for k in RUN_KEYS if k in cfg}
    run["data_root"] = (previous or {}).get("run", {}).get("data_root")  # a machine's path is not recorded
    run.update({k: cfg["engine"][k] for k in ENGINE_KEYS})
    return {
        "description": (previous or {}).get("description", f"regression check of {cfg['protocol']}"),
        "run": run,
        "tolerances": tolerances,
        "aggregates": aggregates,
        "pairs": {m: {p: by_pair[p] for p in sample_pairs(by_pair)} for m, by_pair in pairs.items()},
        "produced_by": {
            "swapbench": provenance.get("swapbench"),
            "git_revision": provenance.get("git_revision"),
            "packages": provenance.get("packages"),
            "protocol_hash": provenance.get("protocol", {}).get("hash"),
        },
    }


def write_golden(path: Path, golden: dict) -> None:
    path.write_text(json.dumps(golden, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
