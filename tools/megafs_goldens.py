"""Regenerate tests/golden/megafs_manifest.json, megafs_parity.npz and stylegan2_blocks.npz.

    python tools/megafs_goldens.py /path/to/One-Shot-Face-Swapping-on-Megapixels/inference [OUT_DIR]

Runs the official inference/megafs.py and inference/inference.py (zyainfal/One-Shot-Face-Swapping-
on-Megapixels @ f01b195) unmodified on CPU. No official code is contained here; three stand-ins are
installed before importing it:
  - `op`: rosinality's CUDA op package cannot be built without CUDA, so a module with
    FusedLeakyReLU / fused_leaky_relu / upfirdn2d written from the reference math (zero-stuffing by
    assignment + grouped convolution), independent of swapbench's stylegan2.ops;
  - `torchvision.transforms.functional.normalize` if torchvision is absent (inference.py's only use);
  - Tensor.cuda / Module.cuda as no-ops (the official code hard-codes .cuda()).
Weights: swapbench.methods.megafs.random_weights (seed 0) and random_generator_state; inputs:
parity_images(0). The generator is reduced to 128 for the committed parity file (argument --size).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import swapbench.methods.stylegan2 as P
from swapbench.methods.megafs import random_weights as rw
from swapbench.methods.stylegan2 import random_generator_state


def _install_stand_ins() -> None:
    op = types.ModuleType("op")

    def upfirdn2d(x, k, up=1, down=1, pad=(0, 0)):
        n, c, h, w = x.shape
        p0, p1 = pad
        out = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
        out[:, :, ::up, ::up] = x
        out = F.pad(out, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
        out = out[:, :, max(-p0, 0): out.shape[2] - max(-p1, 0), max(-p0, 0): out.shape[3] - max(-p1, 0)]
        kk = torch.flip(k, [0, 1]).view(1, 1, *k.shape).repeat(c, 1, 1, 1)
        return F.conv2d(out, kk, groups=c)[:, :, ::down, ::down]

    def fused_leaky_relu(x, bias, negative_slope=0.2, scale=2 ** 0.5):
        return F.leaky_relu(x + bias.view([1, -1] + [1] * (x.ndim - 2)), negative_slope) * scale

    class FusedLeakyReLU(nn.Module):
        def __init__(self, channel, negative_slope=0.2, scale=2 ** 0.5):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(channel))
            self.negative_slope, self.scale = negative_slope, scale

        def forward(self, x):
            return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)

    op.upfirdn2d, op.fused_leaky_relu, op.FusedLeakyReLU = upfirdn2d, fused_leaky_relu, FusedLeakyReLU
    sys.modules["op"] = op
    try:
        import torchvision.transforms.functional  # noqa: F401
    except ImportError:
        tv, tvt, tvf = (types.ModuleType(n) for n in ("torchvision", "torchvision.transforms",
                                                      "torchvision.transforms.functional"))
        tvf.normalize = lambda t, mean, std, inplace=False: (
            (t - torch.as_tensor(mean, dtype=t.dtype).view(-1, 1, 1)) / torch.as_tensor(std, dtype=t.dtype).view(-1, 1, 1))
        tv.transforms, tvt.functional = tvt, tvf
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tvt, "torchvision.transforms.functional": tvf})
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self


def synthetic_labels() -> np.ndarray:
    """A 512 x 512 CelebAMask-HQ-style label map: skin, an eye, nose, mouth, lower lip, hair, neck."""
    yy, xx = np.mgrid[:512, :512]
    lab = np.zeros((512, 512), np.uint8)
    for (cx, cy, rx, ry), v in (((256, 270, 150.0, 200.0), 1), ((200, 220, 30.0, 12.0), 4), ((256, 300, 20.0, 40.0), 10),
                                ((256, 380, 50.0, 12.0), 11), ((256, 392, 55.0, 8.0), 13)):
        lab[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1] = v
    lab[yy < 90] = 17
    lab[yy > 470] = 14
    return lab


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("official", type=Path, help="the official inference/ folder")
    ap.add_argument("out", type=Path, nargs="?", default=Path(__file__).parent.parent / "tests" / "golden")
    ap.add_argument("--size", type=int, default=128, help="generator size of the parity file")
    args = ap.parse_args()
    _install_stand_ins()
    sys.path.insert(0, str(args.official))
    import cv2
    import inference as offinf
    import megafs as off

    torch.set_grad_enabled(False)
    gen_size = args.size

    def build_ftm(t):
        return off.FaceTransferModule(num_blocks=3 if t == "ftm" else 1, swap_indice=4, num_latents=18, typ=t)

    with torch.device("meta"):
        e = off.HieRFE(off.resnet50(False), num_latents=[4, 6, 8], depth=50)
        ss = {t: build_ftm(t) for t in ("ftm", "injection", "lcr")}
        g = off.Generator(1024, 512, 8, channel_multiplier=2)

    def shapes(m):
        return {k: list(v.shape) for k, v in m.state_dict().items()}

    manifest = {"source": "zyainfal/One-Shot-Face-Swapping-on-Megapixels@f01b195 inference/megafs.py",
                "e": shapes(e), **{f"s/{t}": shapes(m) for t, m in ss.items()}, "g_ema": shapes(g)}
    (args.out / "megafs_manifest.json").write_text(json.dumps(manifest, separators=(",", ":")))

    enc = off.HieRFE(off.resnet50(False), num_latents=[4, 6, 8], depth=50).eval()
    enc.load_state_dict(rw.encoder_state(0))
    gen = off.Generator(gen_size, 512, 8, channel_multiplier=2).eval()
    gen.load_state_dict(rw.generator_state(gen_size, 0), strict=True)
    imgs = rw.parity_images(0, 256, 2)  # source, target in [0, 1]
    x = (imgs - 0.5) / 0.5
    src, tgt = x[0:1], x[1:2]
    lats, struct = enc(torch.cat([tgt, src]))
    res = {"lats": lats.numpy(), "struct": struct.numpy()}
    for t in ("ftm", "injection", "lcr"):
        sw = build_ftm(t).eval()
        sw.load_state_dict(rw.swapper_state(t, 0))
        res[f"w_{t}"] = sw(lats[1:], lats[0:1]).numpy()
        if t != "ftm":
            continue
        img, _ = gen(struct[0:1], [sw(lats[1:], lats[0:1]), None], randomize_noise=False)
        res["image_ftm"] = img.numpy()
        me = types.SimpleNamespace(encoder=enc, swapper=sw, generator=gen, size=gen_size,
                                   smooth_mask=offinf.SoftErosion(17, 0.9, 7))
        swapped = offinf.MegaFS.swap(me, src, tgt)  # the official swap(): HWC float [0, 255]
        res["swap_ftm"] = swapped.astype(np.float32)
        lab = synthetic_labels()
        tmask = offinf.encode_segmentation_rgb(np.stack([lab] * 3, 2))
        tgt_rgb = cv2.resize((imgs[1].permute(1, 2, 0).numpy() * 255).astype(np.uint8), (gen_size, gen_size))
        res["labels"], res["target_rgb"] = lab, tgt_rgb
        res["blend_bgr"] = offinf.MegaFS.postprocess(me, swapped, tgt_rgb, tmask)
        face = cv2.resize(tmask, (gen_size, gen_size))[:, :, :2].sum(2) / 255.0
        res["soft_mask"] = me.smooth_mask(torch.from_numpy(face).float()[None, None])[0][0, 0].numpy()
    np.savez_compressed(args.out / "megafs_parity.npz", generator_size=gen_size, **res)

    # rosinality blocks (the copy in megafs.py) on seeded parameters and their own FIR kernels
    gen_ = torch.Generator().manual_seed(0)
    xb = torch.randn(2, 8, 16, 16, generator=gen_)
    style = torch.randn(2, 16, generator=gen_)
    v = torch.randn(2, 16, generator=gen_)
    cases = {
        "convlayer": (lambda m: m.ConvLayer(8, 12, 3), lambda mod: mod(xb)),
        "convlayer_down": (lambda m: m.ConvLayer(8, 12, 3, downsample=True), lambda mod: mod(xb)),
        "convlayer_nobias": (lambda m: m.ConvLayer(8, 12, 1, downsample=True, bias=False), lambda mod: mod(xb)),
        "resblock": (lambda m: m.ResBlock(8, 12), lambda mod: mod(xb)),
        "modconv_down": (lambda m: m.ModulatedConv2d(8, 12, 3, 16, downsample=True), lambda mod: mod(xb, style)),
        "modconv_up": (lambda m: m.ModulatedConv2d(8, 12, 3, 16, upsample=True), lambda mod: mod(xb, style)),
        "modconv_nodemod": (lambda m: m.ModulatedConv2d(8, 12, 1, 16, demodulate=False), lambda mod: mod(xb, style)),
        "equallinear_act": (lambda m: m.EqualLinear(16, 24, lr_mul=0.01, activation="fused_lrelu"), lambda mod: mod(v)),
        "downsample": (lambda m: m.Downsample([1, 3, 3, 1]), lambda mod: mod(xb)),
        "upsample": (lambda m: m.Upsample([1, 3, 3, 1]), lambda mod: mod(xb)),
    }
    blocks = {"x": xb.numpy(), "style": style.numpy(), "v": v.numpy()}
    for name, (build, run) in cases.items():
        theirs = build(off)
        sd = {k: (t if k.endswith("kernel") else random_generator_state({k: t}, 0)[k])
              for k, t in theirs.state_dict().items()}
        assert set(sd) == set(build(P).state_dict()), name
        theirs.load_state_dict(sd, strict=True)
        blocks[name] = run(theirs).numpy()
    np.savez_compressed(args.out / "stylegan2_blocks.npz", **blocks)
    print("wrote", *(args.out / f for f in ("megafs_manifest.json", "megafs_parity.npz", "stylegan2_blocks.npz")))


if __name__ == "__main__":
    main()
