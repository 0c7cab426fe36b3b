"""REFace's networks on diffusers and transformers, plus the parts neither library has.

From the libraries (built from configs, weights from the checkpoint):
- denoiser: `diffusers.UNet2DConditionModel`, the SD-1.x UNet with a 9-channel `conv_in` (inputs in
  Paint-by-Example order: noisy latents 4, masked-image latents 4, mask 1) and one 768-d
  cross-attention token;
- first stage: `diffusers.AutoencoderKL` (the SD-v1 VAE), scale factor 0.18215;
- CLIP ViT-L/14 vision tower with its projection: `transformers.CLIPVisionModelWithProjection`,
  whose `vision_model.*` / `visual_projection.*` keys are those of the checkpoint's CLIPModel.

Written here because no library has them (REFace's own modules):
- `Mapper`: REFace's `xf.Transformer(n_ctx=1, width=768, layers=5, heads=1)` ("mapper2"): pre-LN
  residual blocks of a qkv self-attention (q|k|v split inside each head, q and k each scaled by
  ch^-1/4, softmax in float32) and a 4x GELU MLP. With one token the softmax is 1; the attention is
  computed anyway, as officially;
- `Conditioner`: the conditioning pathway (`LatentDiffusion.conditioning_with_feat` at inference):
  c = proj_out_source(clip(source)) + proj_out_target(clip(target)),
  c2 = ID_proj_out(IR-SE50(source)), lm = landmark_proj_out(68 landmarks),
  token = (1.0 c + 10.0 c2 + 0.05 lm) / 11.05; the unconditional token is `learnable_vector`.
  IR-SE50 is swapbench.faces.irse50 (one implementation, shared with the identity backend).

`Arch` holds the sizes: `FULL` is the released model; `TINY` is a test-only reduction (32-wide UNet and
VAE, a 2-layer CLIP; the 768-wide REFace parts and IR-SE50 stay full size because the official code
hard-codes them) used by the parity and end-to-end tests on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.faces.irse50 import IRSE50, reface_pool_crop

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TOKEN = 768  # REFace's conditioning width (hard-coded officially)
CLIP_WEIGHT, ID_WEIGHT, LANDMARK_WEIGHT = 1.0, 10.0, 0.05
SCALE_FACTOR = 0.18215
LINEAR_START, LINEAR_END = 0.00085, 0.012  # models/REFace/configs/project_ffhq.yaml


@dataclass(frozen=True)
class Arch:
    """Sizes of the denoiser, the VAE and the CLIP tower (LDM config names in comments)."""

    unet_channels: tuple[int, ...] = (320, 640, 1280, 1280)  # model_channels * channel_mult
    unet_layers: int = 2  # num_res_blocks
    unet_heads: int = 8  # num_heads
    vae_channels: tuple[int, ...] = (128, 256, 512, 512)  # ch * ch_mult
    vae_layers: int = 2
    clip_hidden: int = 1024
    clip_layers: int = 24
    clip_heads: int = 16
    clip_intermediate: int = 4096
    clip_patch: int = 14
    resolution: int = 512  # pixel size the model runs at; latents are resolution // 8

    def unet_config(self) -> dict:
        n = len(self.unet_channels)
        return dict(
            sample_size=self.resolution // 8, in_channels=9, out_channels=4,
            # attention_resolutions [4, 2, 1]: every level but the last has cross-attention
            down_block_types=("CrossAttnDownBlock2D",) * (n - 1) + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n - 1),
            block_out_channels=self.unet_channels, layers_per_block=self.unet_layers,
            attention_head_dim=self.unet_heads,  # diffusers' legacy name: the number of heads
            cross_attention_dim=TOKEN, use_linear_projection=False, norm_num_groups=32,
            flip_sin_to_cos=True, freq_shift=0, act_fn="silu", center_input_sample=False,
        )

    def vae_config(self) -> dict:
        n = len(self.vae_channels)
        return dict(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=self.vae_channels,
            layers_per_block=self.vae_layers, latent_channels=4, norm_num_groups=32,
            sample_size=self.resolution, scaling_factor=SCALE_FACTOR, act_fn="silu",
        )

    def clip_config(self):
        from transformers import CLIPVisionConfig

        return CLIPVisionConfig(
            hidden_size=self.clip_hidden, intermediate_size=self.clip_intermediate,
            num_hidden_layers=self.clip_layers, num_attention_heads=self.clip_heads, image_size=224,
            patch_size=self.clip_patch, projection_dim=TOKEN, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        )


FULL = Arch()
# Test-only: the spec's tiny config (UNet model_channels 32, channel_mult [1,2,4,4], 1 res block,
# 2 heads; VAE ch 32; CLIP 64 wide, 2 layers, patch 32), at 128 px (16 x 16 latents).
TINY = Arch(unet_channels=(32, 64, 128, 128), unet_layers=1, unet_heads=2, vae_channels=(32, 64, 128, 128),
            vae_layers=1, clip_hidden=64, clip_layers=2, clip_heads=2, clip_intermediate=128, clip_patch=32,
            resolution=128)


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back (xf.LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class _QKVAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_qkv = nn.Linear(width, 3 * width)
        self.c_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, width = x.shape
        ch = width // self.heads
        qkv = self.c_qkv(x).view(b, n, self.heads, 3 * ch)
        q, k, v = qkv.split(ch, dim=-1)  # split inside each head
        s = 1.0 / math.sqrt(math.sqrt(ch))
        w = torch.einsum("bthc,bshc->bhts", q * s, k * s)
        w = torch.softmax(w.float(), dim=-1).to(w.dtype)
        return self.c_proj(torch.einsum("bhts,bshc->bthc", w, v).reshape(b, n, width))


class _MLP(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = _QKVAttention(width, heads)
        self.ln_1 = LayerNorm32(width)
        self.mlp = _MLP(width)
        self.ln_2 = LayerNorm32(width)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Mapper(nn.Module):
    """REFace's mapper2 (xf.Transformer): [B, n, width] -> [B, n, width]."""

    def __init__(self, width: int = TOKEN, layers: int = 5, heads: int = 1):
        super().__init__()
        self.resblocks = nn.ModuleList([_Block(width, heads) for _ in range(layers)])

    def forward(self, x):
        for block in self.resblocks:
            x = block(x)
        return x


def clip_normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def clip_unnormalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x * std + mean


class Conditioner(nn.Module):
    """REFace's conditioning: one cross-attention token [B, 1, 768] and the unconditional token."""

    def __init__(self, arch: Arch = FULL):
        super().__init__()
        from transformers import CLIPVisionModelWithProjection

        self.clip = CLIPVisionModelWithProjection(arch.clip_config())
        self.mapper2 = Mapper(TOKEN, 5, 1)
        self.final_ln2 = LayerNorm32(TOKEN)
        self.proj_out_source = nn.Linear(TOKEN, TOKEN)
        self.proj_out_target = nn.Linear(TOKEN, TOKEN)
        self.ID_proj_out = nn.Linear(512, TOKEN)
        self.landmark_proj_out = nn.Linear(136, TOKEN)
        self.learnable_vector = nn.Parameter(torch.zeros(1, 1, TOKEN))
        self.facenet = IRSE50()

    def clip_token(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """FrozenCLIPEmbedder.forward: pooled CLIP, visual projection, mapper2, final_ln2 -> [B, 1, 768]."""
        z = self.clip(pixel_values=pixel_values).image_embeds  # visual_projection(pooler_output)
        return self.final_ln2(self.mapper2(z.unsqueeze(1)))

    def identity(self, source_clip: torch.Tensor) -> torch.Tensor:
        """IDLoss.extract_feats on the CLIP-normalised masked source: [B, 512], L2-normalised."""
        x = clip_unnormalize(source_clip)
        x = (x - 0.5) / 0.5
        if x.shape[-1] != 256:
            x = reface_pool_crop(x)
        else:  # officially the 256 pool is skipped for 256 inputs
            x = F.adaptive_avg_pool2d(x[:, :, 35:223, 32:220], 112)
        return self.facenet(x)

    def forward(self, source_clip: torch.Tensor, target_clip: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """source_clip, target_clip: CLIP-normalised [B, 3, 224, 224]; landmarks: [B, 136] 512-pixel (x, y).

        Under autocast only the CLIP towers run in reduced precision; IR-SE50, the projections and the
        weighted sum stay float32.
        """
        c_src = self.clip_token(source_clip)
        c_tar = self.clip_token(target_clip)
        with torch.autocast(device_type=source_clip.device.type, enabled=False):
            c = self.proj_out_source(c_src.float()) + self.proj_out_target(c_tar.float())
            c2 = self.ID_proj_out(self.identity(source_clip.float())).unsqueeze(1)
            lm = self.landmark_proj_out(landmarks.float()).unsqueeze(1)
            total = CLIP_WEIGHT + ID_WEIGHT + LANDMARK_WEIGHT
            return (c * CLIP_WEIGHT + c2 * ID_WEIGHT + lm * LANDMARK_WEIGHT) / total

    def unconditional(self, batch: int) -> torch.Tensor:
        return self.learnable_vector.repeat(batch, 1, 1)


def reset_nonpersistent_buffers(cond: Conditioner) -> None:
    """Refill the buffers a state dict does not carry after building on `meta` + to_empty (CLIP's position ids)."""
    emb = cond.clip.vision_model.embeddings
    with torch.no_grad():
        emb.position_ids.copy_(torch.arange(emb.position_ids.shape[-1], device=emb.position_ids.device).expand(1, -1))


def build_unet(arch: Arch = FULL):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**arch.unet_config())


def build_vae(arch: Arch = FULL):
    from diffusers import AutoencoderKL

    return AutoencoderKL(**arch.vae_config())
