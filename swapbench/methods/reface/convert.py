"""REFace's Lightning checkpoint (`last.ckpt`) -> the port's modules.

Groups of the official `LatentDiffusion.state_dict()` (manifest: tests/golden/reface_manifest.json)
and where each goes:

| official prefix | port | how |
|---|---|---|
| `model.diffusion_model.` | `unet.` (UNet2DConditionModel) | diffusers `convert_ldm_unet_checkpoint` |
| `first_stage_model.` | `vae.` (AutoencoderKL) | diffusers `convert_ldm_vae_checkpoint` |
| `cond_stage_model.model.vision_model.`, `.visual_projection.` | `cond.clip.` | same names (transformers CLIP) |
| `cond_stage_model.mapper2.`, `.final_ln2.` | `cond.mapper2.`, `cond.final_ln2.` | same names |
| `proj_out_source.`, `proj_out_target.`, `ID_proj_out.`, `landmark_proj_out.`, `learnable_vector` | `cond.` + same name | as is |
| `face_ID_model.facenet.` | `cond.facenet.` (swapbench.faces.irse50.IRSE50) | same names |

Ignored, and listed by `convert_checkpoint`: the CLIP text tower (`cond_stage_model.model.text_model.`,
`text_projection`, `logit_scale`), the unused 1024-wide mapper (`cond_stage_model.mapper.`, `final_ln`,
`projection_back`), training-only LPIPS (`lpips_loss.`), the DDPM schedule buffers (recomputed by the
scheduler), `position_ids` buffers of both CLIP towers (persistent in the transformers 4.19.2 the official environment
pins, so the released checkpoint carries them; today's transformers no longer saves them), and any
`model_ema.` copy (REFace trains with use_ema: false).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from swapbench.methods.diffusion.convert import SCHEDULE_BUFFERS, convert_unet, convert_vae
from swapbench.methods.reface.model import Arch

CONVERTER_VERSION = "reface-diffusers-v1"  # part of the conversion cache key: bump when the mapping changes

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
RENAMES = (  # official prefix -> port prefix (taken as is)
    ("cond_stage_model.model.vision_model.", "cond.clip.vision_model."),
    ("cond_stage_model.model.visual_projection.", "cond.clip.visual_projection."),
    ("cond_stage_model.mapper2.", "cond.mapper2."),
    ("cond_stage_model.final_ln2.", "cond.final_ln2."),
    ("proj_out_source.", "cond.proj_out_source."),
    ("proj_out_target.", "cond.proj_out_target."),
    ("ID_proj_out.", "cond.ID_proj_out."),
    ("landmark_proj_out.", "cond.landmark_proj_out."),
    ("face_ID_model.facenet.", "cond.facenet."),
)
IGNORED_PREFIXES = (
    "cond_stage_model.model.text_model.", "cond_stage_model.model.text_projection",
    "cond_stage_model.model.logit_scale", "cond_stage_model.mapper.", "cond_stage_model.final_ln.",
    "cond_stage_model.projection_back.", "lpips_loss.", "model_ema.",
)


def ignored(key: str) -> bool:
    return key in SCHEDULE_BUFFERS or key.startswith(IGNORED_PREFIXES) or key.endswith("position_ids")


def ignored_groups(keys) -> dict[str, int]:
    """{group: number of keys} of ignored checkpoint keys, e.g. {"lpips_loss.": 28, "schedule buffers": 12}."""
    out: dict[str, int] = {}
    for k in keys:
        g = ("schedule buffers" if k in SCHEDULE_BUFFERS else "position_ids buffers" if k.endswith("position_ids")
             else next((p for p in IGNORED_PREFIXES if k.startswith(p)), k))
        out[g] = out.get(g, 0) + 1
    return out


def convert_checkpoint(state: Mapping[str, torch.Tensor], arch: Arch) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """(port state dict with `unet.` / `vae.` / `cond.` prefixes, ignored keys, unknown keys)."""
    out: dict[str, torch.Tensor] = {}
    ign, unknown = [], []
    for k, v in state.items():
        if k == "learnable_vector":
            out["cond.learnable_vector"] = v
            continue
        if k.startswith((UNET_PREFIX, VAE_PREFIX)):
            continue
        if ignored(k):  # first: a position_ids buffer lies under a renamed prefix (cond_stage_model.model.vision_model.)
            ign.append(k)
            continue
        new = next((dst + k[len(src):] for src, dst in RENAMES if k.startswith(src)), None)
        if new is not None:
            out[new] = v
        else:
            unknown.append(k)
    if any(k.startswith(UNET_PREFIX) for k in state):
        out.update({f"unet.{k}": v for k, v in convert_unet(state, arch.unet_config()).items()})
    if any(k.startswith(VAE_PREFIX) for k in state):
        out.update({f"vae.{k}": v for k, v in convert_vae(state, arch.vae_config()).items()})
    return out, sorted(ign), sorted(unknown)
