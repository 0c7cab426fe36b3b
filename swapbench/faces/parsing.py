"""Face parsing: BiSeNet of zllrunning/face-parsing.PyTorch, 19 CelebAMask-HQ classes.

The network follows the official model.py/resnet.py: a ResNet-18 context path whose 1/8 features
stand in for the spatial path, attention refinement at 1/16 and 1/32, a feature fusion module, and
three heads (main at 1/8, auxiliary at 1/8 and 1/16) upsampled bilinearly (align_corners=True) to
the input size. Module names match the official ones, so the released 79999_iter.pth (a plain
state_dict) loads with strict=True. Unlike the official resnet.py, constructing the network
downloads nothing: every weight comes from the checkpoint.

Preprocessing is the official test.py's: RGB resized to 512 x 512 (bilinear), ImageNet mean/std,
argmax of the main head. Methods preprocess differently (REFace downsamples a 1024 crop with a
bicubic kernel; Face-Adapter feeds [-1, 1] without ImageNet normalisation); swapbench parses every
face the same way and records it.

Class indices are the official ones (prepropess_data.py's attribute list after background). The
keep-lists below are the masks methods and metrics build from them, translated to these indices.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from swapbench.weights import WeightFile, load, register, resolve

CLASSES = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}
INPUT_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _indices(*names: str) -> tuple[int, ...]:
    return tuple(sorted(CLASS_INDEX[n] for n in names))


# REFace eval_tool/ID_retrieval/ID_retrieval.py masks both the swap and the source to these regions
# before ArcFace embedding. Its CelebA-HQ list [1,2,4,5,8,9,6,7,10,11,12] is in REFace's own
# CelebAMask-HQ order (process_CelebA_mask.py: skin, nose, eye_g, l_eye, r_eye, l_brow, r_brow,
# l_ear, r_ear, mouth, u_lip, l_lip, ...); its FFHQ list [1,2,3,5,6,7,9] is in the 12-class "seg12"
# order (lip, eyebrows, eyes, nose, skin, ears, mouth). Both name the same regions: the face
# without hair, glasses, earrings, neck or hat.
REFACE_ID_KEEP = _indices("skin", "l_brow", "r_brow", "l_eye", "r_eye", "l_ear", "r_ear", "nose",
                          "mouth", "u_lip", "l_lip")
# REFace's "ff++" list [1,2,4,5,8,9], read in its CelebAMask-HQ order: skin, nose, eyes, ears.
# (Its comment "FFHQ or FF++" next to the seg12 list leaves the order ambiguous in the source.)
REFACE_ID_KEEP_FFPP = _indices("skin", "nose", "l_eye", "r_eye", "l_ear", "r_ear")
# REFace's generation mask (remove_mask_tar_FFHQ, seg12 [1,2,3,5,6,7,9]): the region it inpaints.
REFACE_SWAP_REGION = REFACE_ID_KEEP
# Face-Adapter infer.py: `face`, `face_withear` and the occluders `occ` it removes from the mask.
FACE_ADAPTER_FACE = (1, 2, 3, 4, 5, 10, 11, 12, 13)
FACE_ADAPTER_FACE_WITH_EAR = tuple(i for i in range(1, 14) if i not in (6, 9))
FACE_ADAPTER_OCCLUSION = (6, 9, 15, 18)
# The inner face: skin and features, no ears, hair, glasses, neck. A common blending region.
INNER_FACE = FACE_ADAPTER_FACE

# REFace's 12-class scheme (face_parsing_demo.py __ffhq_masks_to_faceParser_mask_detailed).
SEG12_CLASSES = ("background", "lip", "eyebrows", "eyes", "hair", "nose", "skin", "ears", "belowface",
                 "mouth", "eye_glass", "ear_rings")
_SEG12_FROM_19 = {
    "u_lip": 1, "l_lip": 1, "l_brow": 2, "r_brow": 2, "l_eye": 3, "r_eye": 3, "hair": 4, "nose": 5,
    "skin": 6, "l_ear": 7, "r_ear": 7, "neck": 8, "mouth": 9, "eye_g": 10, "ear_r": 11,
}  # neck_l, cloth and hat become background, as in REFace
SEG12_LOOKUP = torch.tensor([_SEG12_FROM_19.get(name, 0) for name in CLASSES])

WEIGHTS = register(
    WeightFile(
        name="face_parsing/bisenet_79999_iter",
        filename="79999_iter.pth",
        url="https://drive.google.com/open?id=154JgKpzCPW82qINcVieuPH3fZ2e0P812",
        licence="code MIT (zllrunning/face-parsing.PyTorch); weights trained on CelebAMask-HQ, non-commercial research use",
        note="the pre-trained model link of the face-parsing.PyTorch README (Google Drive, fetched with gdown)",
    )
)[0]


def to_seg12(labels: torch.Tensor) -> torch.Tensor:
    """Map 19-class labels to REFace's 12-class scheme."""
    return SEG12_LOOKUP.to(labels.device)[labels]


def keep_mask(labels: torch.Tensor, keep) -> torch.Tensor:
    """Boolean mask of the pixels whose label is in `keep` (class indices or names)."""
    idx = [CLASS_INDEX[k] if isinstance(k, str) else int(k) for k in keep]
    return torch.isin(labels, torch.as_tensor(idx, device=labels.device, dtype=labels.dtype))


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, ks: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ks, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _layer(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


class ResNet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 feature maps (no classifier)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 1)
        self.layer2 = _layer(64, 128, 2)
        self.layer3 = _layer(128, 256, 2)
        self.layer4 = _layer(256, 512, 2)

    def forward(self, x):
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


def _global_mean(x):
    return x.mean(dim=(2, 3), keepdim=True)


class AttentionRefinement(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x):
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(_global_mean(feat))))


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1, padding=0)

    def forward(self, x):
        feat8, feat16, feat32 = self.resnet(x)
        avg = self.conv_avg(_global_mean(feat32))  # broadcast over the 1/32 map (nearest upsampling of 1x1)
        up32 = self.conv_head32(F.interpolate(self.arm32(feat32) + avg, feat16.shape[2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(feat16) + up32, feat8.shape[2:], mode="nearest"))
        return feat8, up16, up32


class FeatureFusion(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, ks=1, padding=0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, fsp, fcp):
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_mean(feat)))))
        return feat * atten + feat


class OutputHead(nn.Module):
    def __init__(self, cin: int, cmid: int, n_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cmid)
        self.conv_out = nn.Conv2d(cmid, n_classes, 1, bias=False)

    def forward(self, x):
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet face parser; forward returns (main, aux16, aux32) logits at the input size."""

    def __init__(self, n_classes: int = len(CLASSES)):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, n_classes)
        self.conv_out16 = OutputHead(128, 64, n_classes)
        self.conv_out32 = OutputHead(128, 64, n_classes)

    def forward(self, x):
        size = x.shape[2:]
        feat8, cp8, cp16 = self.cp(x)
        outs = (self.conv_out(self.ffm(feat8, cp8)), self.conv_out16(cp8), self.conv_out32(cp16))
        return tuple(F.interpolate(o, size, mode="bilinear", align_corners=True) for o in outs)


class FaceParser(nn.Module):
    """BiSeNet with its preprocessing: images [B, 3, H, W] RGB in [0, 1] -> logits or labels at H x W."""

    def __init__(self, net: BiSeNet | None = None):
        super().__init__()
        self.net = net if net is not None else BiSeNet()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[2:]
        x = images
        if (h, w) != (INPUT_SIZE, INPUT_SIZE):
            # antialias on reduction, like the PIL bilinear resize of the official test.py
            x = F.interpolate(x, (INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
        logits = self.net((x - self.mean) / self.std)[0]
        if (h, w) != (INPUT_SIZE, INPUT_SIZE):
            logits = F.interpolate(logits, (h, w), mode="bilinear", align_corners=False)
        return logits

    @torch.no_grad()
    def labels(self, images: torch.Tensor) -> torch.Tensor:
        """[B, H, W] int64 class indices (see CLASSES)."""
        return self.forward(images).argmax(1)


def load_face_parser(weights_dir=None, device: str | torch.device = "cpu") -> FaceParser:
    """The released BiSeNet (79999_iter.pth), in eval mode; a missing file raises WeightsError."""
    path = resolve([WEIGHTS], weights_dir)[WEIGHTS.name]
    net = BiSeNet()
    net.load_state_dict(load(WEIGHTS, path), strict=True)
    return FaceParser(net).to(device).eval()
