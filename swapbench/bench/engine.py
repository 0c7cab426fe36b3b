"""`bench run`: a protocol through each method, then through each metric family, into the store.

Orchestration only. Order of work: build every method (options validated) and resolve, open and
validate every weight file of every method, backend and the face detector -> prepare face crops
once for all methods -> per method: swap the pairs not yet swapped -> extract features of images not
yet featurised -> score all pairs from stored features (bench.scoring). Run identity and provenance
live in bench.runinfo, the Lightning plumbing in bench.trainer, the file layout in bench.layout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from swapbench import methods, metrics, weights
from swapbench.bench import layout
from swapbench.bench.clips import smooth_crops, write_clip_videos
from swapbench.bench.prepare import default_workers, prepare
from swapbench.bench.progress import Reporter
from swapbench.bench.runinfo import data_fingerprint, provenance, run_id_for
from swapbench.bench.scoring import score
from swapbench.bench.stages import (
    FeatureExtractor,
    FeatureWriter,
    ImageFiles,
    SwapInputs,
    SwapWriter,
)
from swapbench.bench.store import open_store
from swapbench.bench.trainer import device, is_global_zero, predict, timed, world
from swapbench.datasets import ImageRef, Protocol, load_protocol
from swapbench.faces import detect
from swapbench.registry import UnknownName


@dataclass
class MethodRun:
    """What `bench run` reports per method."""

    method: str
    run_id: str
    pairs: int
    swapped: int = 0
    failed: int = 0
    seconds: float = 0.0
    reused: bool = False
    failures: list = field(default_factory=list)  # (pair_id, stage, reason)


def run(cfg: dict, reporter: Reporter | None = None) -> list[MethodRun]:
    """Run every configured method on the configured protocol; one MethodRun per method."""
    reporter = reporter or Reporter(live=False, enabled=is_global_zero())
    protocol = load_protocol(cfg)  # subset, located under the data root, files checked
    method_classes = [methods.get(name) for name in cfg["methods"]]
    backend_classes = {family: metrics.backend_class(name) for family, name in cfg["metrics"].items()}
    for family, cls in backend_classes.items():
        if family not in metrics.FAMILIES:
            raise UnknownName(f"unknown metric family {family!r}; known: {', '.join(metrics.FAMILIES)}")
        if cls.family != family:
            raise ValueError(f"backend {cfg['metrics'][family]!r} computes {cls.family}, not {family}")
    detector = detect.detector_class(cfg["face"]["detector"])
    instances = [cls.from_config(cfg) for cls in method_classes]  # options checked before any work
    noise = video_noise_keys(protocol, cfg)
    for method in instances:
        method.check_protocol(protocol)
        method.noise_keys = noise

    # Every weight file of every method, backend and the face detector is found, hashed, opened and
    # validated before the first face is detected: a bad file costs seconds, not the face stage.
    needed = list(dict.fromkeys([f for m in instances for f in m.weights]
                                + [f for b in backend_classes.values() for f in b.weights] + list(detector.weights)))
    paths = weights.resolve(needed, cfg["weights_dir"])
    hashes = {f.name: weights.hash_of(f, paths[f.name]) for f in needed}
    for method in instances:
        if method.weights:
            method.load_weights({f.name: weights.load(f, paths[f.name]) for f in method.weights})
    backends = {family: cls.from_config({f.name: paths[f.name] for f in cls.weights}, cfg)
                for family, cls in backend_classes.items()}
    detect.get_detector(detector.name, cfg["weights_dir"])

    import lightning as L

    L.seed_everything(cfg["engine"]["seed"], workers=True, verbose=False)
    # On several nodes each rank writes its own shard, merged by global rank 0 (bench.store.RankStore).
    store = open_store(cfg["store"], cfg["engine"]["num_nodes"], world(cfg)[0] if cfg["engine"]["num_nodes"] > 1 else 0,
                       cfg["engine"].get("shard_dir"))
    eval_convention = cfg["face"]["eval_convention"]
    conventions = sorted({eval_convention} | {c for m in instances for c in (m.convention, m.source_convention)})
    reporter.plan(1 + len(instances) * (2 + len(backends)), f"{protocol.name}: {len(protocol.pairs)} pairs, "
                  f"{len(instances)} method(s), {len(backends)} backend(s)")
    t0 = time.perf_counter()
    face_args = dict(detector=detector.name, weights_dir=cfg["weights_dir"], **detection_device(cfg))
    with reporter.stage("faces", len(protocol.images), f"{detector.name}, {', '.join(conventions)}") as stage:
        crops = prepare(protocol, conventions, store, cfg["face"]["multi_face"], stage,
                        workers=face_workers(cfg, len(protocol.images)), **face_args)
    smooth = int(cfg["face"].get("smooth") or 0)
    if smooth > 1 and protocol.clips is not None:
        crops = smooth_crops(protocol, crops, conventions, store, smooth,
                             lambda c: layout.face_key(c, detector.name, cfg["face"]["multi_face"]))
    # A method's extra input images (e.g. precomputed swaps) are prepared exactly like the protocol's
    # images and fed in place of the source crop, in the source's convention.
    inputs = {}
    locations = {key: protocol.location(key) for key in protocol.images}  # where each crop came from
    for method in instances:
        files = method.input_images(protocol)
        if files is None:
            continue
        inputs[method.name] = {pid: f"{method.name}:{pid}" for pid in files}
        extra = Protocol(f"{protocol.name}/{method.name}", protocol.version, "method inputs",
                         {f"{method.name}:{pid}": ImageRef(f"{method.name}:{pid}", pid, uri)
                          for pid, uri in files.items()}, [])
        locations.update({key: extra.location(key) for key in extra.images})
        with reporter.stage("faces", len(extra.images), f"{method.name} inputs") as stage:
            crops.update(prepare(extra, [method.source_convention], store, cfg["face"]["multi_face"], stage,
                                 workers=face_workers(cfg, len(extra.images)), **face_args))
    face_seconds = time.perf_counter() - t0

    return [_run_method(method, protocol, crops, locations, backends, store, cfg, hashes, face_seconds, reporter,
                        inputs.get(method.name)) for method in instances]


VIDEO_NOISE = ("per_frame", "per_clip")


def video_noise_keys(protocol, cfg) -> dict[str, str]:
    """{pair id: clip id} under engine.video_noise=per_clip (every frame of a clip draws the same noise),
    else empty: each frame's draws are keyed by its own pair id, i.e. by (seed, pair, frame)."""
    choice = cfg["engine"].get("video_noise", "per_frame")
    if choice not in VIDEO_NOISE:
        raise ValueError(f"engine.video_noise={choice!r}; choose one of {', '.join(VIDEO_NOISE)}")
    if choice == "per_frame" or protocol.clips is None:
        return {}
    return {pair_id: clip for clip, pair_ids in protocol.clips.items() for pair_id in pair_ids}


IMAGES_PER_WORKER = 64


def face_workers(cfg, n_images: int) -> int:
    """Processes for the face stage: engine.num_workers when set; by default one per core, but only as
    many as get IMAGES_PER_WORKER images each. A spawned worker takes seconds to start (torch, dlib and
    OpenCV imports, the detector's models: about 7.5 s measured for two) against 0.1-0.2 s per image, so
    a few dozen images are done sooner in this process."""
    if cfg["engine"]["num_workers"] is not None:
        return int(cfg["engine"]["num_workers"])
    return max(1, min(default_workers(), n_images // IMAGES_PER_WORKER))


def detection_device(cfg) -> dict:
    """Where a batched detector's network runs and on how many images at once (engine.detect_batch)."""
    where = device(cfg)
    batch = cfg["engine"].get("detect_batch")
    if batch is None:
        batch = cfg["engine"]["batch_size"] if where.startswith("cuda") else 1
    return {"device": where, "detect_batch": int(batch)}


def _run_method(method, protocol, crops, locations, backends, store, cfg, hashes, face_seconds, reporter,
                inputs=None) -> MethodRun:
    t_start = time.perf_counter()
    # The target side (conv) is what the method returns and what is carried into the scoring crop (ev);
    # the source is cropped in its own convention (src_conv, the same unless the method declares one).
    conv, src_conv, ev = method.convention, method.source_convention, cfg["face"]["eval_convention"]
    data_sha = data_fingerprint([(k, ev) for k in protocol.images] + [(k, src_conv) for k in (inputs or {}).values()],
                                crops)
    run_id = run_id_for(cfg, protocol, method, hashes, data_sha)
    existing = store.run(run_id)
    if existing and existing["status"] == "complete" and not cfg["rerun"]:
        reporter.note(f"{method.name}: reusing complete run {run_id}")
        return _summary(method, run_id, protocol, store, time.perf_counter() - t_start, reused=True)
    if existing and existing["status"] != "complete":
        reporter.note(f"{method.name}: resuming run {run_id}")
    store.start_run(run_id, protocol.name, protocol.hash, method.name, method.publishable, cfg,
                    provenance(cfg, protocol, method, hashes, data_sha))
    if is_global_zero():
        store.add_timing(run_id, "faces", face_seconds)

    # Pairs whose faces could not be prepared are failures of the run, with the reason.
    ready, failed = [], []
    for pair in protocol.pairs:
        problems = [f"{role} {key}: {crops[key, c].reason}"
                    for role, key, side in (("source", pair.source, src_conv), ("target", pair.target, conv))
                    for c in dict.fromkeys((side, ev)) if not crops[key, c].ok]
        if problems:
            failed.append((pair.pair_id, "face", "; ".join(problems)))
        elif inputs and not crops[inputs[pair.pair_id], src_conv].ok:
            failed.append((pair.pair_id, "swap", f"{method.name} input: {crops[inputs[pair.pair_id], src_conv].reason}"))
        else:
            ready.append(pair)
    store.put_failures(run_id, failed)
    source_key = {p.pair_id: inputs[p.pair_id] if inputs else p.source for p in ready}

    done = store.swaps(run_id)
    pending = [p for p in ready if p.pair_id not in done
               or (done[p.pair_id].ok and not layout.swap_path(store.files, run_id, p.pair_id).is_file())]
    with reporter.stage("swap", len(pending), method.name) as stage:
        if pending:
            items = [(p.pair_id, crops[source_key[p.pair_id], src_conv], crops[p.target, conv],
                      locations[source_key[p.pair_id]], locations[p.target]) for p in pending]
            # Swaps made on another crop convention are pasted into the target's scoring crop.
            paste = {p.pair_id: (crops[p.target, conv], crops[p.target, ev]) for p in pending} if conv != ev else None
            with timed(store, run_id, "swap"):
                predict(cfg, method, SwapInputs(items), SwapWriter(store, run_id, paste), reporter.callback(stage))
            store.sync()
    swaps = store.swaps(run_id)
    store.put_failures(run_id, [(pid, "swap", s.reason) for pid, s in swaps.items() if not s.ok])

    # Features of every swap and every reference crop the metrics compare against.
    swapped = [p for p in ready if p.pair_id in swaps and swaps[p.pair_id].ok]
    images = {swaps[p.pair_id].image_sha: layout.swap_path(store.files, run_id, p.pair_id) for p in swapped}
    # The identity gallery is every source of the protocol, also those of pairs that failed.
    for key in [k for p in ready for k in (p.source, p.target)] + protocol.sources():
        if crops[key, ev].ok:
            images[crops[key, ev].sha] = crops[key, ev].path
    for family, backend in backends.items():
        name = backend.feature_name
        have = store.feature_shas(name, images)  # presence only: no vector is read into memory
        todo = [(sha, path) for sha, path in images.items() if sha not in have]
        with reporter.stage("features", len(todo), f"{method.name} · {family}: {name}") as stage:
            if todo:
                with timed(store, run_id, f"features/{name}"):
                    predict(cfg, FeatureExtractor(backend), ImageFiles(todo), FeatureWriter(store, name),
                            reporter.callback(stage))
                store.sync()

    with reporter.stage("scoring", len(ready), method.name) as stage, timed(store, run_id, "score"):
        score(run_id, protocol, ready, swaps, crops, backends, store, cfg)
        stage.advance(len(ready))
    if protocol.clips is not None and (cfg.get("video") or {}).get("write_clips", True) and is_global_zero():
        with timed(store, run_id, "clip videos"):
            write_clip_videos(run_id, protocol, swaps, crops, store, cfg)
    store.finish_run(run_id)
    store.sync()
    return _summary(method, run_id, protocol, store, time.perf_counter() - t_start)


def _summary(method, run_id, protocol, store, seconds, reused=False) -> MethodRun:
    swaps = store.swaps(run_id)
    failures = store.failures(run_id)
    failed_pairs = {f.pair_id for f in failures if f.stage in ("face", "swap")}
    return MethodRun(method.name, run_id, len(protocol.pairs), sum(s.ok for s in swaps.values()),
                     len(failed_pairs), seconds, reused, failures)
