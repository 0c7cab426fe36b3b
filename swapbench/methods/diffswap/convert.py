"""Conversion of DiffSwap's released LDM checkpoint (diffswap.pth) into the port's diffusers modules.

    model_ema.diffusion_model<key without dots>  -> unet.*   the EMA UNet (the official code samples inside
                                                              `ema_scope`; the raw `model.diffusion_model.*`
                                                              weights are only used to list the keys)
    first_stage_model.{encoder,decoder,quant_conv,post_quant_conv}.* -> vq.*   (diffusers' VAE mapping)
    first_stage_model.quantize.embedding.weight      -> vq.quantize.embedding.weight   (same name in diffusers)
    cond_stage_model.*                               -> cond.*   (kept 1:1; FaceConditioner uses the names)

diffusers has no single-file path for an LDM VQ first stage; its AutoencoderKL converter maps the encoder,
decoder and (post_)quant_conv keys of a VQ model too, and the codebook is copied as is. The converters are
called through the shared helpers of swapbench.methods.diffusion.convert.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

UNET_PREFIX = "model.diffusion_model."
EMA_PREFIX = "model_ema."
VQ_PREFIX = "first_stage_model."
COND_PREFIX = "cond_stage_model."


class ConversionError(ValueError):
    pass


def ema_key(unet_key: str) -> str:
    """LitEma's buffer name of a UNet parameter: dots dropped after 'model.' (LitEma.m_name2s_name)."""
    return EMA_PREFIX + unet_key[len("model."):].replace(".", "")


def convert(state: Mapping, unet_config: Mapping, vq_config: Mapping) -> dict[str, torch.Tensor]:
    """diffswap.pth (state dict) -> {'unet.*', 'vq.*', 'cond.*'} in the port's key layout (EMA UNet)."""
    from swapbench.methods.diffusion.convert import convert_unet, convert_vae, unwrap_lightning

    state = unwrap_lightning(state)
    unet_keys = [k for k in state if k.startswith(UNET_PREFIX)]
    if not unet_keys:
        raise ConversionError(f"no {UNET_PREFIX}* keys: not a DiffSwap LatentDiffusion checkpoint")
    missing_ema = [ema_key(k) for k in unet_keys if ema_key(k) not in state]
    if missing_ema:
        raise ConversionError(
            f"{len(missing_ema)} EMA weights missing (e.g. {', '.join(missing_ema[:3])}); the official sampler "
            "uses the EMA UNet (use_ema defaults to True)")
    # The converter looks EMA keys up from the UNet key names; give it only the UNet part.
    unet_part = {k: state[k] for k in unet_keys}
    unet_part.update({ema_key(k): state[ema_key(k)] for k in unet_keys})
    unet = convert_unet(unet_part, unet_config, extract_ema=True)

    vq_part = {k: v for k, v in state.items() if k.startswith(VQ_PREFIX)}
    if not vq_part:
        raise ConversionError(f"no {VQ_PREFIX}* keys (the VQ-f4 first stage)")
    vq = convert_vae(vq_part, vq_config)
    codebook = VQ_PREFIX + "quantize.embedding.weight"
    if codebook not in state:
        raise ConversionError(f"no {codebook} (the VQ codebook)")
    vq["quantize.embedding.weight"] = state[codebook]

    cond = {k[len(COND_PREFIX):]: v for k, v in state.items() if k.startswith(COND_PREFIX)}
    out = {f"unet.{k}": v for k, v in unet.items()}
    out.update({f"vq.{k}": v for k, v in vq.items()})
    out.update({f"cond.{k}": v for k, v in cond.items()})
    return {k: v.contiguous() if isinstance(v, torch.Tensor) else v for k, v in out.items()}
