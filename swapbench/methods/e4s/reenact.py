"""E4S stage 2: reenact the source face into the target's head pose and expression with FaceVid2Vid.

What the official pipeline does (e4s2022/e4s @ d30bdc7, scripts/face_swap.py:194-204 and
src/pretrained/face_vid2vid/driven_demo.py), reproduced here:
  - S_256 and T_256 are `skimage.transform.resize(crop_1024 / 255, (256, 256))`: bilinear with Gaussian
    anti-aliasing (sigma 1.5), float64, then float32 for the networks (`resize_like_skimage`);
  - canonical keypoints of the source; head pose, translation and expression of the source and of the
    target; the target's pose, translation and expression are applied to the *source's* canonical
    keypoints (absolute motion: normalize_kp is commented out in the official code);
  - head pose: softmax over 66 bins, expectation * 3 - 99 degrees, radians with pi taken as 3.14;
    R = R_pitch(x) R_yaw(y) R_roll(z); the estimator's 'yaw' is its fc_roll head and 'roll' its fc_yaw
    head (facevid2vid_nets.HEEstimator), as the checkpoint was trained;
  - the frame in [0, 1], then `(frame * 255).astype(uint8)`: truncation, not rounding (`to_uint8`).

The official checkpoint stores the SPADE decoder's convolutions under torch's legacy spectral norm
(`weight_orig`, `weight_u`, `weight_v`); in eval that hook uses W = W_orig / (u . W_orig v) with the
stored u and v and no power iteration, so the loader folds that into plain weights once
(`fold_spectral_norm`) after checking the raw layout strictly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
from skimage.transform import resize
from torch import nn

from swapbench.methods.e4s.facevid2vid_nets import (VOX_256, FaceVid2VidConfig, HEEstimator, KPDetector,
                                                     OcclusionAwareSPADEGenerator)
from swapbench.weights import WeightFile, WeightsError, load, state_dict_problems

FACEVID2VID_WEIGHTS = WeightFile(
    name="e4s/facevid2vid_vox256", filename="00000189-checkpoint.pth.tar", format="state_dict",
    url="https://www.mediafire.com/folder/fcvtkn21j57bb/TalkingHead_Update",
    licence=("none stated: zhanglonghao1992/One-Shot_Free-View_Neural_Talking_Head_Synthesis has no licence "
             "file; trained on VoxCeleb; distributed by e4s2022/e4s (MIT code)"),
    manual=True,
    note=("the FaceVid2Vid 'Vox-256-New' checkpoint E4S uses (INSTALLATION.md); the official mediafire link is "
          "dead (e4s2022/e4s issue 39) and no checksum was ever published. Obtain a copy of "
          "00000189-checkpoint.pth.tar (the training checkpoint with 'generator', 'kp_detector' and "
          "'he_estimator' state dicts) and put it in the weights directory"),
)

MODULES = ("generator", "kp_detector", "he_estimator")  # the checkpoint entries E4S loads
PI = 3.14  # the official get_rotation_matrix converts degrees with this value


def build_networks(config: FaceVid2VidConfig = VOX_256) -> dict[str, nn.Module]:
    return {"generator": OcclusionAwareSPADEGenerator(config), "kp_detector": KPDetector(config),
            "he_estimator": HEEstimator(config)}


def spectral_norm_convs(module: nn.Module) -> list[str]:
    """State-dict prefixes of the convolutions trained under spectral norm (those of the SPADE blocks)."""
    return [name for name, m in module.named_modules()
            if isinstance(m, nn.Conv2d) and name.startswith("decoder.") and name.rsplit(".", 1)[-1] in
            ("conv_0", "conv_1", "conv_s")]


def checkpoint_layout(name: str, module: nn.Module) -> dict[str, torch.Size]:
    """{key: shape} of the module's state dict as the official checkpoint stores it: for each
    spectral-norm convolution, `weight_orig`, `weight_u` [out] and `weight_v` [in * kh * kw]
    in place of `weight`."""
    convs = set(spectral_norm_convs(module)) if name == "generator" else set()
    layout = {}
    for key, value in module.state_dict().items():
        conv, leaf = key.rsplit(".", 1)
        if conv not in convs:
            layout[key] = value.shape
            continue
        weight = module.get_parameter(f"{conv}.weight").shape
        if leaf == "bias":
            layout[key] = value.shape
        if leaf == "bias" or module.get_submodule(conv).bias is None:  # the hook re-registers the weight last
            layout[f"{conv}.weight_orig"] = weight
            layout[f"{conv}.weight_u"] = torch.Size([weight[0]])
            layout[f"{conv}.weight_v"] = torch.Size([weight[1:].numel()])
    return layout


def fold_spectral_norm(state: Mapping[str, torch.Tensor], convs: list[str]) -> dict[str, torch.Tensor]:
    """The weights torch's legacy spectral_norm hook computes in eval: W = W_orig / sigma with
    sigma = u . (W_orig reshaped to [out, -1]) v, from the stored u and v."""
    out = dict(state)
    for conv in convs:
        w = out.pop(f"{conv}.weight_orig")
        u, v = out.pop(f"{conv}.weight_u"), out.pop(f"{conv}.weight_v")
        sigma = torch.dot(u, torch.mv(w.reshape(w.shape[0], -1), v))
        out[f"{conv}.weight"] = w / sigma
    return out


def head_pose_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Expected bin of a 66-bin head-pose head, in degrees: sum(softmax * bin) * 3 - 99."""
    bins = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (logits.softmax(dim=1) * bins).sum(dim=1) * 3 - 99


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] = R_x(pitch) R_y(yaw) R_z(roll), angles in degrees converted with pi = 3.14."""
    yaw, pitch, roll = (a / 180 * PI for a in (yaw, pitch, roll))
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)

    def mat(*rows):
        return torch.stack(rows, dim=1).view(-1, 3, 3)

    r_pitch = mat(one, zero, zero, zero, pitch.cos(), -pitch.sin(), zero, pitch.sin(), pitch.cos())
    r_yaw = mat(yaw.cos(), zero, yaw.sin(), zero, one, zero, -yaw.sin(), zero, yaw.cos())
    r_roll = mat(roll.cos(), -roll.sin(), zero, roll.sin(), roll.cos(), zero, zero, zero, one)
    return r_pitch @ r_yaw @ r_roll


def transform_keypoints(kp_canonical: torch.Tensor, he: dict[str, torch.Tensor]) -> torch.Tensor:
    """R kp + t + expression offsets, with R from the estimated head pose."""
    rot = rotation_matrix(*(head_pose_degrees(he[a]) for a in ("yaw", "pitch", "roll")))
    kp = kp_canonical @ rot.transpose(1, 2)
    return kp + he["t"][:, None, :] + he["exp"].view(kp.shape[0], -1, 3)


class Reenactor(nn.Module):
    """FaceVid2Vid as E4S calls it: the source face driven by the target's pose and expression.

    forward(source, driving): [B, 3, 256, 256] in [0, 1] each -> the reenacted frame [B, 3, 256, 256]
    in [0, 1] (float; `to_uint8` applies the official truncation). Every sample is independent
    (BatchNorm in eval), so batching changes nothing."""

    def __init__(self, config: FaceVid2VidConfig = VOX_256):
        super().__init__()
        self.config = config
        nets = build_networks(config)
        self.generator, self.kp_detector, self.he_estimator = (nets[k] for k in MODULES)
        self.eval()

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike | Mapping,
                        config: FaceVid2VidConfig = VOX_256) -> Reenactor:
        """Load the official training checkpoint (a path, or the dict torch.load returns): its
        'generator', 'kp_detector' and 'he_estimator' entries, each strictly, the generator's
        spectral-norm weights folded. WeightsError names the file and its URL when it does not fit."""
        if not isinstance(checkpoint, Mapping):
            checkpoint = load(FACEVID2VID_WEIGHTS, checkpoint)
        with torch.device("meta"):
            model = cls(config)
        what = f"{FACEVID2VID_WEIGHTS.filename} ({FACEVID2VID_WEIGHTS.name})"
        missing = [k for k in MODULES if not isinstance(checkpoint.get(k), Mapping)]
        if missing:
            raise WeightsError(f"{what} has no {', '.join(map(repr, missing))} state dict (entries: "
                               f"{', '.join(map(str, list(checkpoint)[:8]))}); it is not the FaceVid2Vid "
                               f"checkpoint E4S uses. See {FACEVID2VID_WEIGHTS.url}")
        folded = {}
        for name in MODULES:
            module = getattr(model, name)
            layout = {k: torch.empty(s, device="meta") for k, s in checkpoint_layout(name, module).items()}
            problems = state_dict_problems(layout, checkpoint[name], finite=True)
            if problems:
                widths = "vox-256" if config == VOX_256 else "reduced widths"
                raise WeightsError(f"{what}: its {name!r} does not fit FaceVid2Vid ({widths}): "
                                   f"{'; '.join(problems)}. See {FACEVID2VID_WEIGHTS.url}")
            state = checkpoint[name]
            if name == "generator":
                state = fold_spectral_norm(state, spectral_norm_convs(module))
            folded[name] = state
        model = model.to_empty(device="cpu")
        for name in MODULES:
            getattr(model, name).load_state_dict(folded[name], strict=True)
        return model.eval()

    @torch.no_grad()
    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        kp_canonical = self.kp_detector(source)
        kp_source = transform_keypoints(kp_canonical, self.he_estimator(source))
        kp_driving = transform_keypoints(kp_canonical, self.he_estimator(driving))
        return self.generator(source, kp_driving=kp_driving, kp_source=kp_source)

    def reenact_crops(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The official stage on uint8 RGB crops (1024x1024, any size works) -> uint8 [B, 256, 256, 3]."""
        device = next(self.parameters()).device

        def batch(images):
            x = np.stack([resize_like_skimage(im) for im in images]).astype(np.float32)
            return torch.from_numpy(x).permute(0, 3, 1, 2).to(device)

        return to_uint8(self(batch(sources), batch(targets))).permute(0, 2, 3, 1).cpu().numpy()

    def train(self, mode: bool = True) -> Reenactor:
        return super().train(False)  # inference only: BatchNorm always on its running statistics


def resize_like_skimage(image: np.ndarray, size: int = 256) -> np.ndarray:
    """`skimage.transform.resize(image / 255.0, (size, size))` as the official code calls it: bilinear,
    Gaussian anti-aliasing with sigma (factor - 1) / 2, 'reflect' border; float64 in [0, 1]."""
    return resize(np.asarray(image) / 255.0, (size, size))


def to_uint8(frame: torch.Tensor) -> torch.Tensor:
    """The official `(prediction * 255).astype(np.uint8)`: truncation toward zero."""
    return (frame * 255).to(torch.uint8)
