"""Video clips in a run: the temporal metrics of each clip, and the clip videos the report plays.

The temporal family is scored per clip (not per frame), from what the run already stored: the swaps
(eval-convention crops), the targets' crops of the same convention, and the identity backend's
embeddings of the swaps and of the source. Everything is computed in the eval crop, where swap and
target frame t share one alignment, so the per-frame re-alignment moves both alike:
- landmarks: the face detector's 68 points, found on the swap crop and on the target crop the same way
  (the `target` baseline then has exactly zero jitter), normalised by the outer eye corners (36, 45);
- face mask: the convex hull of the target crop's 68 points in each frame;
- optical flow: computed on the target crops (swapbench.metrics.temporal.target_flow).
A clip is scored only when every one of its frames was swapped, embedded and has landmarks; otherwise it
is a failure of the family with the frames that are missing (consecutive-frame metrics need every frame).
Per-clip values are stored under the clip id in the run's pair values; aggregates are means over clips
with 95% bootstrap intervals over clips.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from swapbench.bench import layout
from swapbench.faces import detect

EYE_CORNERS = (36, 45)  # outer eye corners of the 68-point scheme: the inter-ocular distance of 300-W
FAMILY = "temporal"


def clip_frames(protocol, clip: str) -> list:
    """The pairs of a clip, in frame order."""
    by_id = {p.pair_id: p for p in protocol.pairs}
    return [by_id[pid] for pid in protocol.clips[clip]]


def _read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def _landmarks(image: np.ndarray, detector) -> np.ndarray | None:
    faces = detector.detect(image)
    if not faces:
        return None
    face, _ = detect.pick(faces, image.shape, "largest")
    return None if face.landmarks68 is None else face.landmarks68.astype(np.float64)


def face_mask(landmarks: np.ndarray, shape) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    return mask.astype(bool)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def score_clips(run_id, protocol, swaps, crops, backends, store, cfg):
    """(values, aggregates, failures) of the temporal family: values (clip id, column, value),
    aggregates as bench.scoring writes them, failures (clip id, "temporal", reason)."""
    from swapbench.bench.scoring import confidence_interval
    from swapbench.metrics import temporal

    ev = cfg["face"]["eval_convention"]
    detector = detect.get_detector(cfg["face"]["detector"], cfg["weights_dir"])
    identity = backends.get("identity")
    flow_method = (cfg.get("video") or {}).get("flow", "dis")
    # what each column's numbers depend on besides the pixels, named in the leaderboard like a backend
    made_by = {"id_drift": identity and identity.feature_name, "id_consistency": identity and identity.feature_name,
               "lmk_jitter": cfg["face"]["detector"], "warp_error": f"{flow_method} flow",
               "flicker": f"{flow_method} flow", "temporal_flickering": "pixels"}
    values, failures, per_column = [], [], {c.name: [] for c in temporal.TEMPORAL_COLUMNS}
    for clip in protocol.clips:
        frames = clip_frames(protocol, clip)
        missing = [p.target for p in frames if p.pair_id not in swaps or not swaps[p.pair_id].ok
                   or not crops[p.target, ev].ok]
        if missing:
            failures.append((clip, FAMILY, f"{len(missing)} of {len(frames)} frames have no swap: {', '.join(missing[:3])}"))
            continue
        swap = np.stack([_read(layout.swap_path(store.files, run_id, p.pair_id)) for p in frames])
        target = np.stack([_read(crops[p.target, ev].path) for p in frames])
        swap_lmk = [_landmarks(f, detector) for f in swap]
        target_lmk = [_landmarks(f, detector) for f in target]
        lost = [p.target for p, s, g in zip(frames, swap_lmk, target_lmk) if s is None or g is None]
        if lost:
            failures.append((clip, FAMILY, f"no 68 landmarks on the swap or target crop of {', '.join(lost[:3])}"))
            continue
        swap_lmk, target_lmk = np.stack(swap_lmk), np.stack(target_lmk)
        mask = np.stack([face_mask(g, target.shape[1:]) for g in target_lmk])
        embeddings = {}
        if identity is not None:
            source = crops[frames[0].source, ev]
            feats = store.features(identity.feature_name, {swaps[p.pair_id].image_sha for p in frames} | {source.sha})
            bad = [p.target for p in frames if not feats[swaps[p.pair_id].image_sha].ok]
            if bad or not feats[source.sha].ok:
                failures.append((clip, FAMILY, "no identity embedding of " + ", ".join(bad[:3] or [frames[0].source])))
            else:
                emb = _unit(np.stack([feats[swaps[p.pair_id].image_sha].vector for p in frames]).astype(np.float64))
                embeddings = {"swap_embeddings": emb,
                              "cos_to_source": emb @ _unit(feats[source.sha].vector.astype(np.float64))}
        clip_values = temporal.score_clip(swap, target, mask, swap_lmk=swap_lmk, target_lmk=target_lmk,
                                          eyes=EYE_CORNERS, flow_method=flow_method, weights_dir=cfg["weights_dir"],
                                          **embeddings)
        for name, value in clip_values.items():
            if np.isfinite(value):
                values.append((clip, name, float(value)))
                per_column[name].append(float(value))
    aggregates = []
    n_clips = len(protocol.clips)
    for name, column in per_column.items():
        if column:
            v = np.asarray(column)
            lo, hi = confidence_interval(v, cfg["engine"]["bootstrap_resamples"], cfg["engine"]["seed"])
            aggregates.append((name, float(v.mean()), lo, hi, len(v), n_clips - len(v), made_by.get(name)))
    return values, aggregates, failures


VP9_OPTIONS = {"crf": 32, "b": 0, "deadline": "realtime", "cpu-used": 8, "row-mt": 1}  # constant quality, fast


def write_clip_videos(run_id, protocol, swaps, crops, store, cfg) -> list:
    """Each fully swapped clip as a WebM (VP9, which Chromium, Firefox and Safari play): source | target |
    swap side by side in the eval crop, at the protocol's frame rate (25 when it has none). Existing files
    are kept (a resumed run writes only the missing ones). Returns the paths of the clips written."""
    from swapbench.datasets.video import write_video

    ev = cfg["face"]["eval_convention"]
    written = []
    for clip in protocol.clips:
        path = layout.clip_video_path(store.files, run_id, clip)
        frames = clip_frames(protocol, clip)
        if path.is_file() or not all(p.pair_id in swaps and swaps[p.pair_id].ok for p in frames):
            continue
        source = _read(crops[frames[0].source, ev].path)
        rows = (np.concatenate([source, _read(crops[p.target, ev].path),
                                _read(layout.swap_path(store.files, run_id, p.pair_id))], axis=1) for p in frames)
        written.append(write_video(path, rows, protocol.fps or 25, codec="libvpx-vp9", options=VP9_OPTIONS))
    return written


def smooth_crops(protocol, crops: dict, conventions, store, window: int, face_key_of) -> dict:
    """face.smooth: the target frames of every clip re-cropped from landmarks averaged over `window`
    frames (centred; fewer at the clip's ends and around frames without a face), so detector noise does
    not shake the crop from frame to frame. Each frame's detected landmarks are kept (mapped into the new
    crop), only the alignment is smoothed. Crops are filed under the face key + "~smooth<window>"; source
    crops and conventions cut from the detector's box (no landmarks to smooth) stay as they are.
    face_key_of(convention): the run's face key of a convention. Returns the updated crops."""
    from swapbench.bench.prepare import Crop, save_png
    from swapbench.datasets.images import load_image, pixel_sha
    from swapbench.faces import templates, warp

    half = window // 2
    out = dict(crops)
    done: set = set()
    for clip in protocol.clips:
        keys = [p.target for p in clip_frames(protocol, clip)]
        for conv in conventions:
            template, size = templates.parse_convention(conv)
            if template == "box" or all((k, conv) in done for k in keys):
                continue
            points = [cv2.invertAffineTransform(crops[k, conv].matrix.astype(np.float64)) if crops[k, conv].ok else None
                      for k in keys]
            points = [None if m is None else templates.apply_transform(m, crops[k, conv].landmarks)
                      for k, m in zip(keys, points)]
            for t, key in enumerate(keys):
                if points[t] is None or (key, conv) in done:
                    continue
                near = [p for p in points[max(0, t - half):t + half + 1] if p is not None]
                matrix = templates.estimate_transform(conv, np.mean(near, axis=0))
                crop = warp.align_image(load_image(protocol.location(key)), matrix, size)
                sha = pixel_sha(crop)
                path = layout.crop_path(store.files, f"{face_key_of(conv)}~smooth{window}", sha)
                if not path.is_file():
                    save_png(crop, path)
                old = crops[key, conv]
                landmarks = np.round(templates.apply_transform(matrix, points[t]), 3).astype(np.float32)
                out[key, conv] = Crop(True, f"{old.reason}; landmarks smoothed over {window} frames", path, sha,
                                      landmarks, matrix, old.image_sha)
                done.add((key, conv))
    return out
