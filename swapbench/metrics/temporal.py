"""Temporal metrics of a swapped clip: identity drift, landmark jitter, flicker (warping error), VBench flickering.

Pure functions on arrays (numpy in, floats out), one clip of T frames at a time; the engine feeds them per
clip and aggregates over clips. No library computes these quantities, so they are written here; the optical
flow itself comes from OpenCV (DIS, offline, no weights) or, optionally, torchvision's RAFT.

Conventions (docs/metrics.md, "Temporal metrics"):

- frames: uint8 [T, H, W, 3]; masks: bool [T, H, W] (the face region); landmarks: [T, K, 2] pixels (x, y).
- flow[t] is the *backward* flow from frame t+1 to frame t, [T-1, H, W, 2] (dx, dy) in pixels:
  frame[t+1](x) ~ frame[t](x + flow[t](x)). Warping frame t onto frame t+1 then samples frame t at
  x + flow[t](x) for every pixel x of frame t+1 (cv2.remap, bilinear on float32 frames; OpenCV quantises
  the sample positions to 1/32 px). A pixel counts when mask[t+1] holds there and its sample position lies
  inside frame t ([0, W-1] x [0, H-1]): pixels whose flow leaves the frame are excluded, never filled in
  from the border.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from swapbench import weights
from swapbench.metrics.columns import Column

TEMPORAL_COLUMNS = (
    Column("id_drift", "ID drift", False, decimals=4),  # std over frames of the identity cosine to the source
    Column("id_consistency", "ID f2f cos", True, decimals=4),  # mean cosine of consecutive frames' embeddings
    Column("lmk_jitter", "Lmk jitter", False, decimals=4),  # fraction of the inter-ocular distance per frame
    Column("warp_error", "Warp err", False, decimals=2),  # warping error of the swap clip (0-255)
    Column("flicker", "Flicker", False, decimals=2),  # warping error of the swap minus that of the target (0-255)
    Column("temporal_flickering", "VBench flick", True, decimals=4),  # VBench's score in [0, 1], 1 = no change
)

FLOW_METHODS = ("dis", "raft")
RAFT_LARGE = weights.WeightFile("torchvision/raft_large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                                url="https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                                licence="BSD-3-Clause (torchvision)", note="flow method 'raft' only; needs torchvision")


def identity_drift(cos_to_source: np.ndarray) -> float:
    """Standard deviation over frames (ddof=0) of the identity cosine of each swapped frame to the source.
    NaN marks a frame without a value (no face found): it is left out."""
    cos = np.asarray(cos_to_source, dtype=np.float64)
    _check(cos.ndim == 1, f"cos_to_source must be [T], got shape {cos.shape}")
    cos = cos[~np.isnan(cos)]
    _check(len(cos) >= 2, f"identity drift needs 2 frames with a value, got {len(cos)}")
    _check(np.isfinite(cos).all(), "cos_to_source holds infinite values")
    return float(cos.std())


def identity_consistency(embeddings: np.ndarray) -> float:
    """Mean cosine similarity of the identity embeddings of consecutive frames ([T, D]). A frame whose row
    holds NaN has no embedding (no face found): the two transitions it takes part in are left out."""
    emb = np.asarray(embeddings, dtype=np.float64)
    _check(emb.ndim == 2, f"embeddings must be [T, D], got shape {emb.shape}")
    valid = ~np.isnan(emb).any(axis=1)
    pairs = _transitions(valid)
    _check(pairs.any(), "identity consistency needs 2 consecutive frames with an embedding, found none")
    norms = np.linalg.norm(emb[valid], axis=1, keepdims=True)
    _check(np.isfinite(norms).all() and (norms > 0).all(), "embeddings hold infinite values or all-zero rows")
    unit = np.full_like(emb, np.nan)
    unit[valid] = emb[valid] / norms
    cos = (unit[1:] * unit[:-1]).sum(axis=1)[pairs]
    return float(cos.mean())


def landmark_jitter(swap_lmk: np.ndarray, target_lmk: np.ndarray, eyes=(0, 1)) -> float:
    r"""Mean over t of mean_k ||(s[t+1] - s[t]) - (g[t+1] - g[t])|| / IOD(g[t]).

    s: the swap's landmarks, g: the target's, so the target's own motion is subtracted and a moving head
    costs nothing. IOD is the target's inter-ocular distance at frame t. `eyes` names the two eye
    landmarks: two indices (5-point layouts: (0, 1)) or two index sequences averaged into eye centres
    (68 points: (range(36, 42), range(42, 48))). A frame with NaN in either clip's landmarks has none (no
    face found): the transitions it takes part in are left out.
    """
    s = np.asarray(swap_lmk, dtype=np.float64)
    g = np.asarray(target_lmk, dtype=np.float64)
    _check(s.shape == g.shape and s.ndim == 3 and s.shape[2] == 2,
           f"landmarks must be two [T, K, 2] arrays of one shape, got {s.shape} and {g.shape}")
    pairs = _transitions(~(np.isnan(s).any(axis=(1, 2)) | np.isnan(g).any(axis=(1, 2))))
    _check(pairs.any(), "landmark jitter needs 2 consecutive frames with landmarks in both clips, found none")
    iod = np.linalg.norm(_eye_centre(g, eyes[0]) - _eye_centre(g, eyes[1]), axis=1)[:-1][pairs]
    _check((iod > 0).all(), "the target's inter-ocular distance is 0 on some frame")
    residual = (np.diff(s, axis=0) - np.diff(g, axis=0))[pairs]  # [pairs, K, 2]
    per_frame = np.linalg.norm(residual, axis=2).mean(axis=1) / iod
    _check(np.isfinite(per_frame).all(), "landmarks hold infinite values")
    return float(per_frame.mean())


def target_flow(target: np.ndarray, method: str = "dis", weights_dir=None) -> np.ndarray:
    """Backward optical flow of consecutive target frames, [T-1, H, W, 2] float32 (module docstring).

    `dis`: OpenCV's DIS (medium preset) on the grey frames; offline, no weights. `raft`: torchvision's
    RAFT-large with the user's copy of its weight file (raft_large_C_T_SKHT_V2-ff5fadd5.pth); needs
    torchvision, which swapbench does not install.
    """
    frames = _frames(target, "target")
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        # calc(I0, I1) gives I0(x) ~ I1(x + flow(x)): I0 = frame t+1, I1 = frame t.
        return np.stack([dis.calc(grey[t + 1], grey[t], None) for t in range(len(frames) - 1)])
    if method == "raft":
        return _raft_flow(frames, weights_dir)
    raise ValueError(f"unknown flow method {method!r}; known: {', '.join(FLOW_METHODS)}")


def warping_error(frames: np.ndarray, flow: np.ndarray, mask: np.ndarray) -> float:
    """Mean over t of the masked mean absolute difference (0-255, over pixels and channels) between
    frame t warped onto frame t+1 with flow[t] and frame t+1 itself. Transitions where no pixel counts
    are left out of the mean; a clip where none counts is an error."""
    frames = _frames(frames, "frames")
    t_count, h, w = frames.shape[:3]
    flow = np.asarray(flow, dtype=np.float32)
    mask = np.asarray(mask)
    _check(flow.shape == (t_count - 1, h, w, 2), f"flow must be [{t_count - 1}, {h}, {w}, 2], got {flow.shape}")
    _check(mask.shape == (t_count, h, w) and mask.dtype == bool, f"mask must be bool [{t_count}, {h}, {w}], "
           f"got {mask.dtype} {mask.shape}")
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    errors = []
    for t in range(t_count - 1):
        map_x, map_y = grid_x + flow[t, ..., 0], grid_y + flow[t, ..., 1]
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        keep = mask[t + 1] & inside
        if not keep.any():
            continue
        # float32 frames: a uint8 remap would round the interpolated values.
        warped = cv2.remap(frames[t].astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        errors.append(np.abs(warped[keep] - frames[t + 1][keep].astype(np.float32)).mean(dtype=np.float64))
    _check(bool(errors), "no pixel of the mask has a flow landing inside the previous frame")
    return float(np.mean(errors))


def flicker(swap: np.ndarray, target: np.ndarray, mask: np.ndarray, flow: np.ndarray | None = None) -> float:
    """warping_error(swap) - warping_error(target), both with the target's flow and the same mask: what the
    swap adds to the flicker that flow errors and the target's own changes already leave."""
    _check(np.shape(swap) == np.shape(target), f"swap and target clips differ in shape: "
           f"{np.shape(swap)} vs {np.shape(target)}")
    if flow is None:
        flow = target_flow(target)
    return warping_error(swap, flow, mask) - warping_error(target, flow, mask)


def temporal_flickering(frames: np.ndarray) -> float:
    """VBench's temporal flickering score: (255 - mean_t mean|frame[t+1] - frame[t]|) / 255.

    The mean absolute difference runs over every pixel and channel of consecutive frames (float32, as
    VBench's cv2.absdiff), then over the T-1 transitions. A score in [0, 1], higher is better: 1 for a
    static clip. VBench's leaderboard further rescales it with (score - 0.6293) / (1 - 0.6293); this is
    the raw score.
    """
    frames = _frames(frames, "frames").astype(np.float32)
    mae = [np.abs(frames[t + 1] - frames[t]).mean() for t in range(len(frames) - 1)]
    return (255.0 - float(np.mean(mae))) / 255.0


def score_clip(swap: np.ndarray, target: np.ndarray, mask: np.ndarray, *,
               cos_to_source: np.ndarray | None = None, swap_embeddings: np.ndarray | None = None,
               swap_lmk: np.ndarray | None = None, target_lmk: np.ndarray | None = None, eyes=(0, 1),
               flow: np.ndarray | None = None, flow_method: str = "dis", weights_dir=None) -> dict[str, float]:
    """Every temporal column of one clip that its inputs allow, keyed by column name.

    swap, target: uint8 [T, H, W, 3]; mask: bool [T, H, W] face region; cos_to_source: [T] identity cosine
    of each swapped frame to the source; swap_embeddings: [T, D] the swapped frames' identity embeddings;
    swap_lmk, target_lmk: [T, K, 2]; flow: the target's flow, computed with `flow_method` when not given.
    """
    if flow is None:
        flow = target_flow(target, flow_method, weights_dir)
    values = {}
    if cos_to_source is not None:
        values["id_drift"] = identity_drift(cos_to_source)
    if swap_embeddings is not None:
        values["id_consistency"] = identity_consistency(swap_embeddings)
    if swap_lmk is not None and target_lmk is not None:
        values["lmk_jitter"] = landmark_jitter(swap_lmk, target_lmk, eyes)
    values["warp_error"] = warping_error(swap, flow, mask)
    values["flicker"] = values["warp_error"] - warping_error(target, flow, mask)
    values["temporal_flickering"] = temporal_flickering(swap)
    return values


def _raft_flow(frames: np.ndarray, weights_dir) -> np.ndarray:
    try:
        from torchvision.models.optical_flow import raft_large
    except ImportError as exc:
        raise ImportError("flow method 'raft' needs torchvision (not installed with swapbench: "
                          "`pip install torchvision` matching your torch), or use the default 'dis'") from exc
    import torch

    path = weights.resolve([RAFT_LARGE], weights_dir)[RAFT_LARGE.name]
    model = raft_large(weights=None)
    state = weights.load(RAFT_LARGE, path)
    weights.check_fits(model, state, RAFT_LARGE, "torchvision RAFT-large")
    model.load_state_dict(state)
    model.eval()
    h, w = frames.shape[1:3]
    pad_h, pad_w = -h % 8, -w % 8  # RAFT needs sides divisible by 8
    x = torch.tensor(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # a copy: frames may be read-only
    x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    with torch.inference_mode():  # model(I0, I1) gives I0(x) ~ I1(x + flow(x)), the last refinement last
        flows = [model(x[t + 1:t + 2], x[t:t + 1])[-1][0, :, :h, :w] for t in range(len(frames) - 1)]
    return torch.stack(flows).permute(0, 2, 3, 1).numpy().astype(np.float32)


def _frames(frames: np.ndarray, what: str) -> np.ndarray:
    frames = np.asarray(frames)
    _check(frames.ndim == 4 and frames.shape[3] == 3 and len(frames) >= 2 and frames.dtype == np.uint8,
           f"{what} must be uint8 [T, H, W, 3] with T >= 2, got {frames.dtype} {frames.shape}")
    return frames


def _transitions(valid: np.ndarray) -> np.ndarray:
    """[T-1] bool: both frames of transition t -> t+1 are valid."""
    return valid[1:] & valid[:-1]


def _eye_centre(lmk: np.ndarray, index: int | Sequence[int]) -> np.ndarray:
    return lmk[:, index] if np.ndim(index) == 0 else lmk[:, list(index)].mean(axis=1)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
