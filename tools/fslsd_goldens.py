"""Regenerate tests/golden/fslsd_manifest.json and fslsd_parity.npz from the official code.

    python tools/fslsd_goldens.py /path/to/FSLSD_HiRes /path/to/H3R [OUT_DIR] [--size 128]

Imports the official modules of cnnlstm/FSLSD_HiRes @ 4cf0869 (models/stylegan2/model.py,
models/encoders/psp_encoders.py, models/encoders/helpers.py, models/nets.py, dataset.py) and of
baoshengyu/H3R @ 52a8bde (torchalign backbone and heatmap head) unmodified on CPU. No official code is
contained here; stand-ins are installed before importing it:
  - `models.stylegan2.op`: the CUDA op package cannot load without CUDA, so tools/megafs_goldens.py's
    pure-PyTorch FusedLeakyReLU / fused_leaky_relu / upfirdn2d (independent of swapbench's ops);
  - mmcv stubs (constant_init, kaiming_init, _BatchNorm: only the unused PixelShufflePack uses them);
  - without torchvision: transforms.Resize as torchvision 0.11's tensor Resize (bilinear,
    align_corners=False, no antialias; the authors' version), an empty transforms.functional and utils.
test.py cannot run (missing criteria/, NCCL, undefined smooth_mask): train() lines 80-112 are restated
below with the official modules; save_image's (normalize=True, range=(-1, 1)) uint8 math is restated.
Random weights: swapbench.methods.fslsd.random_weights (seed 0). The generator, GPEN encoder and
decoder are reduced to --size (128 for the committed file); everything else is full size.
"""
import argparse
import importlib.util
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from swapbench.methods.fslsd import random_weights as rw

ap = argparse.ArgumentParser()
ap.add_argument("official", type=Path, help="a checkout of cnnlstm/FSLSD_HiRes")
ap.add_argument("h3r", type=Path, help="a checkout of baoshengyu/H3R")
ap.add_argument("out", type=Path, nargs="?", default=Path(__file__).parent.parent / "tests" / "golden")
ap.add_argument("--size", type=int, default=128)
args = ap.parse_args()

spec = importlib.util.spec_from_file_location("megafs_goldens", Path(__file__).parent / "megafs_goldens.py")
mg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mg)
mg._install_stand_ins()  # sys.modules["op"] (and a torchvision stand-in if torchvision is absent)
mmcv, cnn, mutils, pw = (types.ModuleType(n) for n in ("mmcv", "mmcv.cnn", "mmcv.utils", "mmcv.utils.parrots_wrapper"))
cnn.constant_init = cnn.kaiming_init = lambda *a, **k: None
pw._BatchNorm = torch.nn.modules.batchnorm._BatchNorm
mmcv.cnn, mmcv.utils, mutils.parrots_wrapper = cnn, mutils, pw
sys.modules.update({"mmcv": mmcv, "mmcv.cnn": cnn, "mmcv.utils": mutils, "mmcv.utils.parrots_wrapper": pw})
try:
    import torchvision.transforms  # noqa: F401
    RESIZE_STAND_IN = False
except ImportError:
    RESIZE_STAND_IN = True
if RESIZE_STAND_IN or "torchvision" not in sys.modules or not hasattr(sys.modules["torchvision.transforms"], "Resize"):
    class Resize:  # torchvision 0.11 tensor Resize(int) on square inputs
        def __init__(self, size, interpolation="bilinear"):
            self.size = size

        def __call__(self, img):
            s = self.size
            return img if img.shape[-1] == s else F.interpolate(img, size=(s, s), mode="bilinear", align_corners=False)

    tv = sys.modules["torchvision"]
    sys.modules["torchvision.transforms"].Resize = Resize
    tv.utils = types.ModuleType("torchvision.utils")
    sys.modules["torchvision.utils"] = tv.utils
else:
    raise SystemExit("run without torchvision: modern torchvision antialiases tensor Resize (the authors' 0.11 did not)")
sys.path.insert(0, str(args.official))
import models.stylegan2  # noqa: F401  (the package, before the op override is looked up)

sys.modules["models.stylegan2.op"] = sys.modules["op"]
import cv2
import dataset as D
from models import nets as N
from models.encoders import psp_encoders as PE
from models.stylegan2 import model as M

OUT, G = args.out, args.size
torch.set_grad_enabled(False)
shapes = lambda m: {k: list(v.shape) for k, v in m.state_dict().items()}
prefixed = lambda m: {f"module.{k}": v for k, v in shapes(m).items()}

# 1. manifest, full size on meta, as test.py builds the modules (DDP adds "module.")
with torch.device("meta"):
    mods = {
        "encoder_lmk": PE.GradualLandmarkEncoder(106 * 2),
        "encoder_target": M.GPENEncoder(512),
        "generator": M.Generator(1024, 512, 8),
        "decoder": M.Decoder(8, 1024),
        "bald_model": N.F_mapping(mapping_lrmul=1, mapping_layers=18, mapping_fmaps=512, mapping_nonlinearity="linear"),
    }
    psp = PE.GradualStyleEncoder(50, "ir_se")
manifest = {"source": "cnnlstm/FSLSD_HiRes@4cf0869 (test.py constructors; pSp GradualStyleEncoder from models/encoders/psp_encoders.py)",
            **{k: prefixed(m) for k, m in mods.items()}, "psp_encoder": shapes(psp)}
(OUT / "fslsd_manifest.json").write_text(json.dumps(manifest, separators=(",", ":")))
print("manifest", {k: len(v) for k, v in manifest.items() if k != "source"})

# 2. modules with shared random weights
def load(m, sd):
    m.load_state_dict(sd, strict=True)
    return m.eval()
ck = rw.checkpoint(G, 0)
strip = lambda sd: {k[len("module."):]: v for k, v in sd.items()}
lmk = load(PE.GradualLandmarkEncoder(212), strip(ck["encoder_lmk"]))
tgt_enc = load(M.GPENEncoder(G // 2), strip(ck["encoder_target"]))
gen = load(M.Generator(G, 512, 8), strip(ck["generator"]))
dec = load(M.Decoder(8, G), strip(ck["decoder"]))
bald = load(N.F_mapping(mapping_lrmul=1, mapping_layers=18, mapping_fmaps=512, mapping_nonlinearity="linear"),
            strip(ck["bald_model"]))
pspe = load(PE.GradualStyleEncoder(50, "ir_se"), {k[len("encoder."):]: v for k, v in rw.psp_checkpoint(0)["state_dict"].items()})

# 3. inputs: landmarks (256 px), W+ codes, target image at G, a list2 label map (512, as the data set's PNGs)
lmks = rw.parity_landmarks(0, 2).numpy()  # source, target
codes = rw.parity_latents(0, 2)
s_code, t_code = codes[0:1], codes[1:2]
img = rw.parity_images(0, G, 2)
t_img = (img[1:2] - 0.5) / 0.5
yy, xx = np.mgrid[:512, :512]
lab = np.zeros((512, 512), np.uint8)
lab[((xx - 256) / 150.0) ** 2 + ((yy - 270) / 200.0) ** 2 < 1] = 1   # skin
lab[((xx - 256) / 160.0) ** 2 + ((yy - 120) / 90.0) ** 2 < 1] = 13   # hair (not in the mask)
lab[((xx - 200) / 30.0) ** 2 + ((yy - 220) / 12.0) ** 2 < 1] = 4     # l_eye
lab[((xx - 256) / 20.0) ** 2 + ((yy - 300) / 40.0) ** 2 < 1] = 2     # nose
lab[((xx - 256) / 40.0) ** 2 + ((yy - 380) / 10.0) ** 2 < 1] = 10    # mouth
lab[((xx - 256) / 45.0) ** 2 + ((yy - 392) / 6.0) ** 2 < 1] = 12     # l_lip
lab[:8, :] = 0
png = np.stack([lab] * 3, axis=2)  # cv2.imread of the PNG gives 3 equal channels

t0 = time.time()
# dataset.py __getitem__ (the parts that make the tensors)
s_map = D.SourceICTargetICLM._cords_to_map_np(None, lmks[0])
t_map = D.SourceICTargetICLM._cords_to_map_np(None, lmks[1])
t_mask = D.SourceICTargetICLM.encode_segmentation_rgb(None, png)
t_mask = cv2.resize(t_mask, (1024, 1024))
t_mask = t_mask.transpose((2, 0, 1)).astype(np.float64) / 255.0
t_mask = t_mask[0] + t_mask[1]
t_mask = cv2.dilate(t_mask, np.ones((50, 50)), borderType=cv2.BORDER_CONSTANT, borderValue=0)
# test.py train() lines 80-112, batch 1 (default collate adds the batch axis)
s_map_t = torch.from_numpy(s_map)[None].transpose(1, 3).float()
t_map_t = torch.from_numpy(t_map)[None].transpose(1, 3).float()
mask_t = torch.from_numpy(t_mask)[None].unsqueeze_(1).float()
input_map = torch.cat([s_map_t, t_map_t], dim=1)
t_lmk_code = lmk(input_map)
zero_latent = torch.zeros((1, 18 - 7, 512))
fusion = s_code + torch.cat([t_lmk_code, zero_latent], dim=1)
fusion = torch.cat([fusion[:, :18 - 7], t_code[:, 18 - 7:]], dim=1)
fusion_in = fusion
fusion = bald(fusion.view(fusion.size(0), -1), 2).view(t_code.size())
source_feas = gen([fusion], input_is_latent=True, randomize_noise=False)
target_feas = tgt_enc(t_img)
blend = dec(source_feas, target_feas, mask_t)
# save_image(normalize=True, range=(-1, 1)): clamp, map to [0, 1], * 255 + 0.5, clamp, uint8
u8 = ((blend.clamp(-1, 1) + 1) / 2).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
print(f"official pipeline at G={G}: {time.time() - t0:.1f}s")

# the decoder's progressive mask, level by level (a forward hook-free restatement is not needed: recompute)
masks, m = [], mask_t
for f in source_feas:
    m = sys.modules["torchvision.transforms"].Resize(f.size(2))(m)
    masks.append(m)

t0 = time.time()
psp_in = (rw.parity_images(3, 256, 1) - 0.5) / 0.5
psp_codes = pspe(psp_in)
print(f"pSp encoder: {time.time() - t0:.1f}s")

res = {
    "landmarks": lmks,
    "labels": lab, "map_nonzero": np.argwhere(input_map[0].numpy() > 0).astype(np.int16),
    "map_sum": input_map.sum().numpy(), "mask_1024": t_mask.astype(np.float32),
    "lmk_code": t_lmk_code.numpy(), "fusion_in": fusion_in.numpy(), "fusion": fusion.numpy(),
    # feature maps: the first 2 channels only (the whole maps would be ~40 MB); the output covers all
    **{f"gen_{i}": f[:, :2].numpy() for i, f in enumerate(source_feas)},
    **{f"gpen_{i}": f[:, :2].numpy() for i, f in enumerate(target_feas)},
    "mask_last": masks[-1].numpy(), "mask_8": masks[0].numpy(),
    "out": blend.numpy(), "out_u8": u8.numpy(),
    "psp_codes": psp_codes.numpy(),
}
np.savez_compressed(OUT / "fslsd_parity.npz", **res)
print({k: (v.shape, v.dtype) for k, v in res.items()})

# 4. H3R (baoshengyu/H3R @ 52a8bde, torchalign) HRNet-W18 LaPa head, FacialLandmarkDetector.forward restated
#    on a tensor (no box: the crop and its inverse are the identity on a 256 image)
sys.path.insert(0, str(args.h3r))
from torchalign import api as TA
from torchalign import backbone as TB
from torchalign import heatmap_head as TH

NS = types.SimpleNamespace
cfg = NS(INPUT=NS(SIZE=[256, 256], FLIP=True, FLIP_ORDER=[
        32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15,
        14, 13, 12, 11, 10,  9,  8,  7,  6,  5,  4,  3,  2,  1,  0, 46, 45, 44,
        43, 42, 50, 49, 48, 47, 37, 36, 35, 34, 33, 41, 40, 39, 38, 51, 52, 53,
        54, 65, 64, 63, 62, 61, 60, 59, 58, 57, 56, 55, 79, 78, 77, 76, 75, 82,
        81, 80, 83, 70, 69, 68, 67, 66, 73, 72, 71, 74, 90, 89, 88, 87, 86, 85,
        84, 95, 94, 93, 92, 91, 100, 99, 98, 97, 96, 103, 102, 101, 105, 104]),  # lapa config.yaml
         HEATMAP=NS(DECODER="BinaryHeatmap2Coordinate", BLOCK="BinaryHeadBlock", TOPK=9, STRIDE=4.0,
                    IN_CHANNEL=270, PROJ_CHANNEL=270, OUT_CHANNEL=106))
det = torch.nn.Module()
det.backbone = TB.hrnet18(pretrained=False)
det.heatmap_head = TH.HeatmapHead(cfg)
with torch.device("meta"):
    mdet = torch.nn.Module(); mdet.backbone = TB.hrnet18(pretrained=False); mdet.heatmap_head = TH.HeatmapHead(cfg)
manifest["h3r"] = shapes(mdet)
(OUT / "fslsd_manifest.json").write_text(json.dumps(manifest, separators=(",", ":")))
det.load_state_dict(rw.h3r_state(0), strict=True)
det.eval()
fake = NS(config=cfg)
t0 = time.time()
img256 = rw.parity_images(4, 256, 2)
data = (img256 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
feat = det.backbone(data)
landmark = det.heatmap_head(feat)
data_f = data.flip(dims=[-1])
landmark_ = det.heatmap_head(det.backbone(data_f))
landmark_ = TA.FacialLandmarkDetector.flip_landmark(fake, landmark_, data_f.shape[-1])
landmark_flip = (landmark + landmark_) / 2.0
print(f"H3R: {time.time() - t0:.1f}s")
res.update({"h3r_feat": feat[:, :4].numpy(), "h3r_noflip": landmark.numpy(), "h3r": landmark_flip.numpy()})
np.savez_compressed(OUT / "fslsd_parity.npz", **res)
print("h3r keys", len(manifest["h3r"]))
