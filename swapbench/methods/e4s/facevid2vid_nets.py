"""FaceVid2Vid networks as E4S runs them (vox-256.yaml, `gen="spade"`; e4s2022/e4s
src/pretrained/face_vid2vid/modules/ @ d30bdc7): the canonical-keypoint detector, the head pose and
expression estimator, and the occlusion-aware SPADE generator with its dense motion network.

Hand-written (no library has them); the module tree and names are the official ones, so the three
state dicts of the official checkpoint load strictly (after reenact.fold_spectral_norm). Only the path
E4S uses is built: no Jacobians (estimate_jacobian is False in vox-256.yaml), occlusion map on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from swapbench.methods.e4s.facevid2vid_blocks import (ConvNormAct, Hourglass3d, ResBlock3d, ResBottleneck,
                                                       SPADEResBlock, coordinate_grid)


@dataclass(frozen=True)
class FaceVid2VidConfig:
    """The widths of the three networks. Defaults: E4S's pretrained_ckpts/facevid2vid/vox-256.yaml
    (and the SPADE decoder's hard-coded widths). Smaller values keep every code path for CPU tests."""

    num_kp: int = 15
    feature_channel: int = 32  # channels of the 3-D appearance volume the dense motion network reads
    # canonical keypoint detector
    kp_block_expansion: int = 32
    kp_max_features: int = 1024
    kp_num_blocks: int = 5
    kp_reshape_channel: int = 16384
    kp_reshape_depth: int = 16
    kp_temperature: float = 0.1
    kp_scale_factor: float = 0.25
    # head pose / expression estimator (the official code fixes its stage widths to 256...2048)
    he_block_expansion: int = 64
    he_widths: tuple[int, int, int, int] = (256, 512, 1024, 2048)
    num_bins: int = 66
    # generator
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6
    spade_hidden: int = 128
    # dense motion network
    dm_block_expansion: int = 32
    dm_max_features: int = 1024
    dm_num_blocks: int = 5
    dm_reshape_depth: int = 16
    dm_compress: int = 4


VOX_256 = FaceVid2VidConfig()
# Every width reduced, every code path kept (tests, e4s.model=tiny). The official side of the parity test is
# a copy of the official modules whose hard-coded widths are reduced to match: SPADEDecoder ic 256 -> 16,
# oc 64 -> 4, label_nc 256 -> 16, SPADE nhidden 128 -> 8, HEEstimator stage widths 256/512/1024/2048 ->
# 32/64/128/256.
TINY = FaceVid2VidConfig(
    num_kp=6, feature_channel=4,
    kp_block_expansion=4, kp_max_features=32, kp_num_blocks=3, kp_reshape_channel=128, kp_reshape_depth=4,
    he_block_expansion=16, he_widths=(32, 64, 128, 256),
    block_expansion=4, max_features=16, reshape_channel=4, reshape_depth=4, num_resblocks=2, spade_hidden=8,
    dm_block_expansion=4, dm_max_features=32, dm_num_blocks=3, dm_reshape_depth=4, dm_compress=2)


class AntiAliasDownsample(nn.Module):
    """Gaussian blur (sigma = (1/scale - 1)/2, zero padding) then subsampling by 1/scale. The kernel is
    a persistent buffer, `weight`, stored in the checkpoint."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        g = torch.exp(-t ** 2 / (2 * sigma ** 2))
        kernel = g[:, None] * g[None, :]
        self.register_buffer("weight", (kernel / kernel.sum()).expand(channels, 1, size, size).clone())
        self.stride, self.pad = int(1 / scale), size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.pad, groups=x.shape[1])


class KPHourglass(nn.Module):
    """2-D encoder down to a few pixels, a 1x1 conv whose channels are reshaped into a depth axis,
    then 3-D up blocks (no skip connections)."""

    def __init__(self, c: FaceVid2VidConfig):
        super().__init__()
        width = lambda i: min(c.kp_max_features, c.kp_block_expansion * 2 ** i)  # noqa: E731
        n = c.kp_num_blocks
        self.down_blocks = nn.Sequential()
        for i in range(n):
            self.down_blocks.add_module(f"down{i}", ConvNormAct(3 if i == 0 else width(i), width(i + 1), 3, 1,
                                                                resample="down"))
        self.conv = nn.Conv2d(width(n), c.kp_reshape_channel, 1)
        self.up_blocks = nn.Sequential()
        for i in range(n):
            self.up_blocks.add_module(f"up{i}", ConvNormAct(width(n - i), width(n - i - 1), 3, 1, dims=3,
                                                            resample="up"))
        self.depth, self.out_channels = c.kp_reshape_depth, width(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.down_blocks(x))
        b, ch, h, w = out.shape
        return self.up_blocks(out.view(b, ch // self.depth, self.depth, h, w))


class KPDetector(nn.Module):
    """Canonical 3-D keypoints: soft-argmax (softmax / temperature) of one heatmap volume per keypoint,
    as (x, y, z) in [-1, 1]. Input: [B, 3, 256, 256] in [0, 1]; output [B, num_kp, 3]."""

    def __init__(self, c: FaceVid2VidConfig):
        super().__init__()
        self.predictor = KPHourglass(c)
        self.kp = nn.Conv3d(self.predictor.out_channels, c.num_kp, 3, padding=1)
        self.temperature = c.kp_temperature
        self.down = AntiAliasDownsample(3, c.kp_scale_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.kp(self.predictor(self.down(x)))
        b, k, d, h, w = logits.shape
        heat = F.softmax(logits.view(b, k, -1) / self.temperature, dim=2)
        return heat @ coordinate_grid(d, h, w, logits).view(-1, 3)


class HEEstimator(nn.Module):
    """Head pose (66-bin logits of yaw, pitch, roll), translation [3] and expression offsets
    [num_kp * 3] from a ResNet-style bottleneck network. Returns the official dict, with its quirk:
    'yaw' comes from `fc_roll` and 'roll' from `fc_yaw` (the checkpoint was trained that way)."""

    def __init__(self, c: FaceVid2VidConfig):
        super().__init__()
        w1, w2, w3, w4 = c.he_widths
        self.conv1 = nn.Conv2d(3, c.he_block_expansion, 7, padding=3, stride=2)
        self.norm1 = nn.BatchNorm2d(c.he_block_expansion)
        self.conv2, self.norm2 = nn.Conv2d(c.he_block_expansion, w1, 1), nn.BatchNorm2d(w1)
        self.block1 = self._stage("b1", w1, 3)
        self.conv3, self.norm3 = nn.Conv2d(w1, w2, 1), nn.BatchNorm2d(w2)
        self.block2 = ResBottleneck(w2, stride=2)
        self.block3 = self._stage("b3", w2, 3)
        self.conv4, self.norm4 = nn.Conv2d(w2, w3, 1), nn.BatchNorm2d(w3)
        self.block4 = ResBottleneck(w3, stride=2)
        self.block5 = self._stage("b5", w3, 5)
        self.conv5, self.norm5 = nn.Conv2d(w3, w4, 1), nn.BatchNorm2d(w4)
        self.block6 = ResBottleneck(w4, stride=2)
        self.block7 = self._stage("b7", w4, 2)
        self.fc_roll = nn.Linear(w4, c.num_bins)
        self.fc_pitch = nn.Linear(w4, c.num_bins)
        self.fc_yaw = nn.Linear(w4, c.num_bins)
        self.fc_t = nn.Linear(w4, 3)
        self.fc_exp = nn.Linear(w4, 3 * c.num_kp)

    @staticmethod
    def _stage(prefix: str, channels: int, n: int) -> nn.Sequential:
        stage = nn.Sequential()
        for i in range(n):
            stage.add_module(f"{prefix}_{i}", ResBottleneck(channels, stride=1))
        return stage

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = F.max_pool2d(F.relu(self.norm1(self.conv1(x))), 3, stride=2, padding=1)
        out = self.block1(F.relu(self.norm2(self.conv2(out))))
        out = self.block3(self.block2(F.relu(self.norm3(self.conv3(out)))))
        out = self.block5(self.block4(F.relu(self.norm4(self.conv4(out)))))
        out = self.block7(self.block6(F.relu(self.norm5(self.conv5(out)))))
        out = out.mean((2, 3))
        return {"yaw": self.fc_roll(out), "pitch": self.fc_pitch(out), "roll": self.fc_yaw(out),
                "t": self.fc_t(out), "exp": self.fc_exp(out)}


def keypoint_gaussians(kp: torch.Tensor, d: int, h: int, w: int) -> torch.Tensor:
    """[B, K, d, h, w]: exp(-|grid - kp|^2 / (2 * 0.01)) for each keypoint."""
    grid = coordinate_grid(d, h, w, kp)
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / 0.01)


class DenseMotionNetwork(nn.Module):
    """From the source and driving keypoints to a dense 3-D backward flow [B, d, h, w, 3] (a softmax
    mix of one translation per keypoint and the identity) and an occlusion map [B, 1, h, w]."""

    def __init__(self, c: FaceVid2VidConfig):
        super().__init__()
        channels = (c.num_kp + 1) * (c.dm_compress + 1)
        self.hourglass = Hourglass3d(c.dm_block_expansion, channels, c.dm_num_blocks, c.dm_max_features)
        self.mask = nn.Conv3d(self.hourglass.out_channels, c.num_kp + 1, 7, padding=3)
        self.compress = nn.Conv3d(c.feature_channel, c.dm_compress, 1)
        self.norm = nn.BatchNorm3d(c.dm_compress)
        self.occlusion = nn.Conv2d(self.hourglass.out_channels * c.dm_reshape_depth, 1, 7, padding=3)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor):
        feature = F.relu(self.norm(self.compress(feature)))
        b, ch, d, h, w = feature.shape
        k = kp_source.shape[1]
        identity = coordinate_grid(d, h, w, feature)[None, None]  # [1, 1, d, h, w, 3]
        # where each driving position samples the source, under each keypoint's translation; identity first
        shifted = identity - kp_driving[:, :, None, None, None] + kp_source[:, :, None, None, None]
        motions = torch.cat([identity.expand(b, 1, d, h, w, 3), shifted], dim=1)  # [B, K+1, d, h, w, 3]
        deformed = F.grid_sample(feature.repeat_interleave(k + 1, dim=0), motions.reshape(b * (k + 1), d, h, w, 3),
                                 align_corners=False).view(b, k + 1, ch, d, h, w)
        heat = keypoint_gaussians(kp_driving, d, h, w) - keypoint_gaussians(kp_source, d, h, w)
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1)[:, :, None]
        prediction = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w))
        mask = F.softmax(self.mask(prediction), dim=1)  # [B, K+1, d, h, w]
        deformation = (motions * mask[..., None]).sum(dim=1)
        occlusion = torch.sigmoid(self.occlusion(prediction.flatten(1, 2)))
        return deformation, occlusion


class SPADEDecoder(nn.Module):
    """Six SPADE residual blocks at 64x64 conditioned on the warped feature, two nearest 2x upsamplings
    with SPADE blocks, then conv and sigmoid: the 256x256 frame in [0, 1]."""

    def __init__(self, channels: int, out_channels: int, hidden: int):
        super().__init__()
        wide = 2 * channels
        self.fc = nn.Conv2d(channels, wide, 3, padding=1)
        for i in range(6):
            self.add_module(f"G_middle_{i}", SPADEResBlock(wide, wide, channels, hidden))
        self.up_0 = SPADEResBlock(wide, channels, channels, hidden)
        self.up_1 = SPADEResBlock(channels, out_channels, channels, hidden)
        self.conv_img = nn.Conv2d(out_channels, 3, 3, padding=1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.fc(feature)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


class OcclusionAwareSPADEGenerator(nn.Module):
    """Source image -> 3-D appearance volume -> warped by the keypoint motion -> masked by the occlusion
    map -> SPADE decoder. Inputs: source [B, 3, 256, 256] in [0, 1], keypoints [B, num_kp, 3]."""

    def __init__(self, c: FaceVid2VidConfig):
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(c)
        self.first = ConvNormAct(3, c.block_expansion, 3, 1)
        width = lambda i: min(c.max_features, c.block_expansion * 2 ** i)  # noqa: E731
        self.down_blocks = nn.ModuleList(ConvNormAct(width(i), width(i + 1), 3, 1, resample="down")
                                         for i in range(c.num_down_blocks))
        self.second = nn.Conv2d(width(c.num_down_blocks), c.max_features, 1)
        self.resblocks_3d = nn.Sequential()
        for i in range(c.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(c.reshape_channel))
        channels = c.block_expansion * 2 ** c.num_down_blocks
        self.third = ConvNormAct(c.max_features, channels, 3, 1, leaky=True)
        self.fourth = nn.Conv2d(channels, channels, 1)
        self.decoder = SPADEDecoder(channels, c.block_expansion, c.spade_hidden)
        self.reshape = (c.reshape_channel, c.reshape_depth)

    def forward(self, source: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> torch.Tensor:
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        volume = self.resblocks_3d(out.view(b, *self.reshape, h, w))
        deformation, occlusion = self.dense_motion_network(volume, kp_driving, kp_source)
        warped = F.grid_sample(volume, deformation, align_corners=False)
        out = self.fourth(self.third(warped.flatten(1, 2)))
        return self.decoder(out * occlusion)
