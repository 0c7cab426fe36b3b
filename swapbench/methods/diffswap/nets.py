"""DiffSwap's networks on diffusers: the denoising UNet, the VQ-f4 first stage and the face conditioner.

Sizes follow configs/diffswap/default-project.yaml of wl-zhao/DiffSwap (commit c316952f). `Size.full()` is
the released model; `Size.tiny()` is the reduced model of the parity tests and the CI end-to-end run
(docs/ports spec §2.7): same block types, head width 32 and five 64-d tokens, about 1/50 of the weights.

The UNet config is written by hand: diffusers' `create_unet_diffusers_config` derives the head count from
LDM's `num_heads`, but DiffSwap sets `num_head_channels: 32` instead, which that builder ignores (it would
fall back to 8 heads). In diffusers' legacy naming `attention_head_dim` is the number of heads per level:
channels // 32 gives LDM's 32-wide heads (level 0 has no attention; its entry is unused).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from swapbench.faces.iresnet import IResNet


@dataclass(frozen=True)
class Size:
    """Widths of one DiffSwap model: UNet, VQ first stage, token width and the ArcFace depth."""

    unet_channels: int = 224
    unet_mult: tuple[int, ...] = (1, 2, 3, 4)
    unet_res_blocks: int = 2
    vq_channels: int = 128
    vq_mult: tuple[int, ...] = (1, 2, 4)
    vq_res_blocks: int = 2
    codes: int = 8192
    token_dim: int = 256  # FaceEmbedder lmk_dim = UNet context_dim
    arcface_layers: tuple[int, ...] = (3, 13, 30, 3)  # iresnet100 (glint360k_r100)

    @classmethod
    def full(cls) -> "Size":
        return cls()

    @classmethod
    def tiny(cls) -> "Size":
        # Spec §2.7; ArcFace iresnet18 (arcface_torch wf42m_pfc03_32gpu_r18 config), test-only.
        return cls(32, (1, 2, 3, 4), 1, 32, (1, 2, 4), 1, 64, 64, (2, 2, 2, 2))


def unet_config(size: Size) -> dict:
    widths = tuple(size.unet_channels * m for m in size.unet_mult)
    n = len(widths)
    return dict(
        sample_size=64,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        block_out_channels=widths,
        layers_per_block=size.unet_res_blocks,
        attention_head_dim=tuple(w // 32 for w in widths),  # = number of heads (legacy naming): 32-wide heads
        cross_attention_dim=size.token_dim,
        transformer_layers_per_block=1,
        use_linear_projection=False,  # LDM SpatialTransformer: 1x1 conv proj_in / proj_out
        norm_num_groups=32,
        norm_eps=1e-5,
        flip_sin_to_cos=True,  # LDM timestep_embedding: [cos, sin]
        freq_shift=0,
        act_fn="silu",
    )


def vq_config(size: Size) -> dict:
    n = len(size.vq_mult)
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(size.vq_channels * m for m in size.vq_mult),
        layers_per_block=size.vq_res_blocks,
        latent_channels=3,
        num_vq_embeddings=size.codes,
        vq_embed_dim=3,
        norm_num_groups=32,
        sample_size=256,
        scaling_factor=1.0,  # DiffSwap's scale_factor is not set: 1.0
    )


def build_unet(size: Size):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**unet_config(size))


def build_vq(size: Size):
    from diffusers import VQModel

    return VQModel(**vq_config(size))


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.GELU(), nn.Linear(hidden, cout))


class FaceConditioner(nn.Module):
    """The five context tokens [landmarks, identity, eyes, nose, mouth] (DiffSwap's FaceEmbedder, swap mode).

    Parameter names are those of the checkpoint's `cond_stage_model.*` so the released weights load 1:1.
    `organ_attention` is diffusers' `Attention` (to_q/to_k/to_v without bias, to_out.0 with bias), which
    is LDM's CrossAttention used as self-attention: 4 heads of 32 channels, softmax(QK^T / sqrt(32)).
    """

    def __init__(self, size: Size):
        super().__init__()
        from diffusers.models.attention_processor import Attention

        d = size.token_dim
        self.face_model = IResNet(size.arcface_layers)
        self.landmark_encoder = _mlp(68 * 2, 4 * d, d)
        self.id_fc = _mlp(512, 2 * d, d)
        self.organ_fc = _mlp(3, d, d)
        self.organ_norm = nn.LayerNorm(d)
        self.organ_attention = Attention(query_dim=d, heads=4, dim_head=32, bias=False, out_bias=True)

    def identity(self, arcface_crop: torch.Tensor) -> torch.Tensor:
        """[B,512] un-normalised ArcFace embedding of [B,3,112,112] crops in [-1,1]."""
        return self.face_model(arcface_crop)

    def forward(self, landmarks01: torch.Tensor, arcface_crop: torch.Tensor, organ_feats: torch.Tensor) -> torch.Tensor:
        """landmarks01 [B,68,2] in [0,1]; arcface_crop [B,3,112,112]; organ_feats [B,3,3] -> context [B,5,D]."""
        b = landmarks01.shape[0]
        lmk = self.landmark_encoder(landmarks01.reshape(b, -1))
        ident = self.id_fc(self.identity(arcface_crop))
        organs = self.organ_fc(organ_feats)
        organs = organs + self.organ_attention(self.organ_norm(organs))
        return torch.cat([torch.stack([lmk, ident], dim=1), organs], dim=1)
